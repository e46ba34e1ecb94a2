#!/bin/bash
# make bench, cases 6, 7 and 10 (issue 16 §4): work that must grow linearly with the input;
# cases 8 to 10 (issue 16 §3): peak memory against the file's size.
#  6. restore --dry-run of a file of 100,000 certificates into an empty database, beside the same
#     with 10,000: under 15 s, and the 100k/10k time ratio at most 12 (quadratic planning gave
#     694 s and a ratio near 100).
#  7. fix-clone-ids on a 10 MB CS.cfg made of backslash continuations (runs of backslashes, the
#     case that was quadratic: 800 KB took 30 s), beside the same at 1 MB: under 3 s, the ratio at
#     most 12, and peak memory (/usr/bin/time's maximum resident size) under 3x the file.
#  8. peak memory of list and restore --dry-run (text and JSON) on 30,000 and 100,000
#     certificates, and of verify (text and JSON) on 10,000 and 100,000: under 4x the file's
#     size + 64 MB (a decoded certificate kept per entry gave about 10x: 466 MB for list of the
#     51 MB file).
#  9. peak memory on a file of 100,000 keys without certificates (the bound of case 8).
# 10. a restore into a new database, a dry run of the same file again into it, a backup and a
#     listkeys of that database, and verify, of 10,000 certificates with their keys beside 1,000:
#     each ratio at most 12, memory as case 8 (not for backup, which no bound covers).
# Sourced by tests/bench.sh (its rows join the table), or run alone (make bench-scale), when it
# prints its own rows. Timing is a benchmark here, never a test.
if [ -z "${ROWS:-}" ]; then
    . "$CABACK_SRCDIR/tests/lib.sh"
    T=$TEST_TMP
    RUNS=${BENCH_RUNS:-3}
    ROWS=$T/rows
    : >"$ROWS"
    row() { printf '%s|%s|%s|%s|%s\n' "$@" >>"$ROWS"; }
    say() { printf '%s\n' "$*" >&2; }
    median() {
        "$PYTHON3" -c 'import statistics, sys; print("%.4f" % statistics.median(map(float, sys.argv[1:])))' "$@"
    }
    ratio() { "$PYTHON3" -c 'import sys; print("%.3f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$1" "$2"; }
    SCALE_ALONE=1
fi
SCALE_RUNS=${BENCH_SCALE_RUNS:-$((RUNS < 3 ? RUNS : 3))}
for tool in openssl certutil /usr/bin/time "$PYTHON3"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool is missing" >&2; exit 1; }
done

# timed VAR_S VAR_KB CMD...: run CMD SCALE_RUNS times (output discarded); the median wall time
# (s) and the largest peak resident size (KB) go to VAR_S and VAR_KB.
timed() {
    local var_s=$1 var_kb=$2 i times=() kb=0 k; shift 2
    for ((i = 1; i <= SCALE_RUNS; i++)); do
        if ! /usr/bin/time -f '%e %M' -o "$T/time.out" "$@" >/dev/null 2>"$T/last-error"; then
            say "bench: this command failed, so its time means nothing:" "  $*"
            sed 's/^/  /' "$T/last-error" >&2
            exit 1
        fi
        read -r s k <"$T/time.out"
        times+=("$s")
        [ "$k" -gt "$kb" ] && kb=$k
    done
    printf -v "$var_s" '%s' "$(median "${times[@]}")"
    printf -v "$var_kb" '%s' "$kb"
    say "  $*: ${times[*]} s, peak $kb KB"
}
verdict() { "$PYTHON3" -c 'import sys; print("PASS" if all(float(a) <= float(b) for a, b in zip(sys.argv[1::2], sys.argv[2::2])) else "MISS")' "$@"; }

# ---- case 6 ----
say "case 6: restore --dry-run of 10,000 and 100,000 certificates (building the files)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj /CN=bench-cert-0000000/O=EXAMPLE.TEST -keyout "$T/scale.key" -out "$T/scale.pem" \
    -days 300 -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null
openssl x509 -in "$T/scale.pem" -outform DER -out "$T/scale.der"
"$PYTHON3" "$CABACK_SRCDIR/tests/bench-certs.py" "$T/scale.der" 10000 "$T/certs10k.p12"
"$PYTHON3" "$CABACK_SRCDIR/tests/bench-certs.py" "$T/scale.der" 100000 "$T/certs100k.p12"
make_nssdb "$T/scaledb"
timed P10_S P10_KB "$CABACK" restore -i "$T/certs10k.p12" -d "$T/scaledb" -f "$T/scaledb.pass" --dry-run --allow-unauthenticated
timed P100_S P100_KB "$CABACK" restore -i "$T/certs100k.p12" -d "$T/scaledb" -f "$T/scaledb.pass" --dry-run --allow-unauthenticated
P_RATIO=$(ratio "$P100_S" "$P10_S")
P100_MB=$(stat -c %s "$T/certs100k.p12" | awk '{printf "%.1f", $1 / 1048576}')
row "6. restore --dry-run, 100,000 certificates ($P100_MB MB; peer column: 10,000)" "$P100_S" "$P10_S" "<= 15 s, <= 12x" "$(verdict "$P100_S" 15 "$P_RATIO" 12)"
row "6. ... its peak memory, MB (peer column: the file's size)" "$((P100_KB / 1024))" "$P100_MB" "(reference)" "-"

# ---- case 7 ----
say "case 7: fix-clone-ids on CS.cfg files of 1 MB and 10 MB of continuation lines"
CFGCA=$T/cfgca
make_dogtag_ca "$CFGCA"
make_cscfg "$CFGCA" "$T/base.cfg"
# scale_cfg OUT MB: the Dogtag CS.cfg, then entries continued over lines of three backslashes
# (each an odd run, so every line continues and the runs join), up to MB megabytes.
scale_cfg() {
    "$PYTHON3" - "$T/base.cfg" "$1" "$2" <<'EOF'
import sys
base = open(sys.argv[1], "rb").read()
size = int(float(sys.argv[3]) * 1000000)
out = [base]
n = len(base)
k = 0
while n < size:
    entry = b"bench.continued.%d=start\\\n" % k + b"\\\\\\\n" * 20000 + b"    end\n"
    out.append(entry)
    n += len(entry)
    k += 1
open(sys.argv[2], "wb").write(b"".join(out)[:max(size, len(base))].rsplit(b"\n", 1)[0] + b"\n")
EOF
}
scale_cfg "$T/cs1.cfg" 1
scale_cfg "$T/cs10.cfg" 10
timed F1_S F1_KB "$CABACK" fix-clone-ids "$T/cs1.cfg" -d "$CFGCA" -f "$CFGCA.pass" --dry-run
timed F10_S F10_KB "$CABACK" fix-clone-ids "$T/cs10.cfg" -d "$CFGCA" -f "$CFGCA.pass" --dry-run
F_RATIO=$(ratio "$F10_S" "$F1_S")
F10_BYTES=$(stat -c %s "$T/cs10.cfg")
F_MEM=$("$PYTHON3" -c 'import sys; print("%.2f" % (int(sys.argv[1]) * 1024 / int(sys.argv[2])))' "$F10_KB" "$F10_BYTES")
row "7. fix-clone-ids, 10 MB CS.cfg of continuations (peer column: 1 MB)" "$F10_S" "$F1_S" "<= 3 s, <= 12x" "$(verdict "$F10_S" 3 "$F_RATIO" 12)"
row "7. ... its peak memory / file size (whole process; peer column: 1)" "$F_MEM" "1" "< 3x" "$(verdict "$F_MEM" 2.9999)"

# ---- case 8 ----
# Issue 16 §3: list, restore and verify peak under 4x the file's size + 64 MB (maximum resident
# size, /usr/bin/time's %M), on files of many small certificates. A reference, measured once
# per command: the file of 30,000 certificates and the one of 100,000 of case 6, in text and
# JSON; verify restores every certificate into a temporary database and checks each there
# (about 7 minutes for 100,000 on 2 cores), so it runs on files of BENCH_VERIFY_CERTS
# certificates (default "10000 100000"; 0 leaves it out), in text and JSON.
say "case 8: peak memory of list, restore --dry-run and verify on files of many certificates"
"$PYTHON3" "$CABACK_SRCDIR/tests/bench-certs.py" "$T/scale.der" 30000 "$T/certs30k.p12"
: >"$T/empty.pass"
# peak VAR_KB EXIT CMD...: run CMD once (output discarded), which must exit with EXIT; its peak
# resident size (KB) goes to VAR_KB.
peak() {
    local var_kb=$1 want=$2 rc=0; shift 2
    /usr/bin/time -f '%M' -o "$T/time.out" "$@" >/dev/null 2>"$T/last-error" || rc=$?
    if [ "$rc" != "$want" ]; then
        say "bench: this command exited with $rc, not $want, so its memory means nothing:" "  $*"
        sed 's/^/  /' "$T/last-error" >&2
        exit 1
    fi
    printf -v "$var_kb" '%s' "$(tail -n 1 "$T/time.out")"
    say "  $*: peak $(tail -n 1 "$T/time.out") KB"
}
# mem_row NAME FILE KB: a row of KB (in MB) against 4x FILE's size + 64 MB.
mem_row() {
    local limit_kb=$(((4 * $(stat -c %s "$2") + 64 * 1048576) / 1024))
    row "$1" "$(($3 / 1024))" "$((limit_kb / 1024))" "<= 4x file + 64 MB" "$(verdict "$3" "$limit_kb")"
}
for n in 30k 100k; do
    f=$T/certs$n.p12
    mb=$(stat -c %s "$f" | awk '{printf "%.1f", $1 / 1048576}')
    peak KB 0 "$CABACK" list "$f"
    mem_row "8. list, $n certificates ($mb MB), peak MB (peer column: the limit)" "$f" "$KB"
    peak KB 0 "$CABACK" list --json "$f"
    mem_row "8. list --json, $n certificates" "$f" "$KB"
    peak KB 0 "$CABACK" restore -i "$f" -d "$T/scaledb" -f "$T/scaledb.pass" --dry-run --allow-unauthenticated
    mem_row "8. restore --dry-run, $n certificates" "$f" "$KB"
    peak KB 0 "$CABACK" restore -i "$f" -d "$T/scaledb" -f "$T/scaledb.pass" --dry-run --allow-unauthenticated --json
    mem_row "8. restore --dry-run --json, $n certificates" "$f" "$KB"
done
for VERIFY_CERTS in ${BENCH_VERIFY_CERTS:-10000 100000}; do
    [ "$VERIFY_CERTS" -gt 0 ] || continue
    f=$T/certs-verify.p12
    "$PYTHON3" "$CABACK_SRCDIR/tests/bench-certs.py" "$T/scale.der" "$VERIFY_CERTS" "$f"
    # Exit 1: the copies' signatures do not verify (only their names differ), which verify reports.
    peak KB 1 "$CABACK" verify "$f" -w "$T/empty.pass" --allow-unauthenticated --no-signature-check \
        --no-progress --log "$T/verify.log"
    mem_row "8. verify, $VERIFY_CERTS certificates" "$f" "$KB"
    peak KB 1 "$CABACK" verify "$f" -w "$T/empty.pass" --allow-unauthenticated --no-signature-check \
        --no-progress --log "$T/verify.log" --json
    mem_row "8. verify --json, $VERIFY_CERTS certificates" "$f" "$KB"
done

# ---- case 9 ----
# The same bound on a file of BENCH_KEYS (default 100000; 0 leaves the case out) plain EC keys
# without certificates (tests/bench-keys.py), whose paths differ: each key is decrypted to find
# its public key, gets a note, two undo steps, and a report entry. list and restore --dry-run in
# text and JSON, a real restore into a new database and verify (each about 7 minutes for
# 100,000 on 2 cores: every key is stored with a commit of its own).
BENCH_KEYS=${BENCH_KEYS:-100000}
if [ "$BENCH_KEYS" -gt 0 ]; then
    say "case 9: peak memory on a file of $BENCH_KEYS keys without certificates"
    f=$T/keys.p12
    "$PYTHON3" "$CABACK_SRCDIR/tests/bench-keys.py" "$BENCH_KEYS" "$f"
    mb=$(stat -c %s "$f" | awk '{printf "%.1f", $1 / 1048576}')
    peak KB 0 "$CABACK" list "$f" -w "$T/empty.pass"
    mem_row "9. list, $BENCH_KEYS keys ($mb MB), peak MB (peer column: the limit)" "$f" "$KB"
    peak KB 0 "$CABACK" list --json "$f" -w "$T/empty.pass"
    mem_row "9. list --json, $BENCH_KEYS keys" "$f" "$KB"
    peak KB 0 "$CABACK" restore -i "$f" -w "$T/empty.pass" -d "$T/scaledb" -f "$T/scaledb.pass" \
        --dry-run --allow-unauthenticated --log "$T/keys.log"
    mem_row "9. restore --dry-run, $BENCH_KEYS keys" "$f" "$KB"
    peak KB 0 "$CABACK" restore -i "$f" -w "$T/empty.pass" -d "$T/scaledb" -f "$T/scaledb.pass" \
        --dry-run --allow-unauthenticated --json --log "$T/keys.log"
    mem_row "9. restore --dry-run --json, $BENCH_KEYS keys" "$f" "$KB"
    make_nssdb "$T/keysdb"
    peak KB 0 "$CABACK" restore -i "$f" -w "$T/empty.pass" -d "$T/keysdb" -f "$T/keysdb.pass" \
        --allow-unauthenticated --no-progress --log "$T/keys.log"
    mem_row "9. restore into a new database, $BENCH_KEYS keys" "$f" "$KB"
    # Exit 1: a key without certificate cannot be checked, which verify reports for each.
    peak KB 1 "$CABACK" verify "$f" -w "$T/empty.pass" --allow-unauthenticated --no-progress \
        --log "$T/keys.log"
    mem_row "9. verify, $BENCH_KEYS keys" "$f" "$KB"
fi

# ---- case 10 ----
# Certificates with their keys (tests/bench-keys.py --certs): BENCH_PAIRS (default 10000; 0
# leaves the case out) and a tenth of it. A real restore into a new database and verify, timed,
# with the ratio of the two sizes at most 12, and their peak memory against the bound of case 8.
# Then a dry run of the same file again, into the database that now holds it (planning a second
# restore, with the same bound). This class found three faults: a restore of more than about
# 6,000 pairs hung (the second reader's answer pipe filled); each pair's check searched the
# database's certificates by value, so that the checks grew with the square of the pairs (10,000:
# about 227 s of them; 100,000: more than an hour); and planning looked up each certificate
# already present by value too, and each key's certificate through NSS calls that read every
# object of the database (10,000 pairs: 281 s and 113 MB, against 1.2 s into an empty database).
# The backup of that database read every trust object of it for each certificate (228 s), and
# listkeys built each key's certificate from its object (75 s).
BENCH_PAIRS=${BENCH_PAIRS:-10000}
if [ "$BENCH_PAIRS" -gt 0 ]; then
    small=$((BENCH_PAIRS / 10))
    say "case 10: restore and verify of $BENCH_PAIRS and $small certificates with their keys"
    for n in "$small" "$BENCH_PAIRS"; do
        "$PYTHON3" "$CABACK_SRCDIR/tests/bench-keys.py" --certs "$n" "$T/pairs$n.p12"
    done
    : >"$T/pairsdb.pass"
    # A restore of the file of N pairs into a database made new for each run (--create).
    restore_new=(bash -c 'rm -rf "$1" && exec "${@:2}"' restore-new "$T/pairsdb" "$CABACK" restore
        -w "$T/empty.pass" -d "$T/pairsdb" -f "$T/pairsdb.pass" --create --allow-unauthenticated
        --no-progress -q --log "$T/pairs.log" -i)
    # verify, which must exit 1: the self-signed certificates are not trusted CAs, so their
    # chains do not verify, which verify reports.
    verify_1=(bash -c '"$@"; [ $? -eq 1 ]' verify-exit-1 "$CABACK" verify -w "$T/empty.pass"
        --allow-unauthenticated --no-progress --log "$T/pairs.log")
    # A dry run into the database the last restore filled with the same file.
    dry_again=("$CABACK" restore -w "$T/empty.pass" -d "$T/pairsdb" -f "$T/pairsdb.pass"
        --allow-unauthenticated --no-progress -q --dry-run -i)
    # A backup of that database (a new file each run).
    printf 'Bench backup 1\n' >"$T/pairs-out.pass"
    backup_db=(bash -c 'rm -f "$1" && exec "${@:2}"' backup-db "$T/pairs-out.p12" "$CABACK" backup
        -q -d "$T/pairsdb" -f "$T/pairsdb.pass" -o "$T/pairs-out.p12" -w "$T/pairs-out.pass"
        --no-progress --log "$T/pairs.log")
    timed R_SMALL_S R_SMALL_KB "${restore_new[@]}" "$T/pairs$small.p12"
    timed D_SMALL_S D_SMALL_KB "${dry_again[@]}" "$T/pairs$small.p12"
    timed B_SMALL_S B_SMALL_KB "${backup_db[@]}"
    timed L_SMALL_S L_SMALL_KB "$CABACK" listkeys -d "$T/pairsdb" -f "$T/pairsdb.pass"
    timed R_BIG_S R_BIG_KB "${restore_new[@]}" "$T/pairs$BENCH_PAIRS.p12"
    timed D_BIG_S D_BIG_KB "${dry_again[@]}" "$T/pairs$BENCH_PAIRS.p12"
    timed B_BIG_S B_BIG_KB "${backup_db[@]}"
    timed L_BIG_S L_BIG_KB "$CABACK" listkeys -d "$T/pairsdb" -f "$T/pairsdb.pass"
    f=$T/pairs$BENCH_PAIRS.p12
    mb=$(stat -c %s "$f" | awk '{printf "%.1f", $1 / 1048576}')
    row "10. restore into a new database, $BENCH_PAIRS pairs ($mb MB; peer column: $small)" "$R_BIG_S" "$R_SMALL_S" "<= 12x" "$(verdict "$(ratio "$R_BIG_S" "$R_SMALL_S")" 12)"
    mem_row "10. ... its peak memory, MB (peer column: the limit)" "$f" "$R_BIG_KB"
    row "10. restore --dry-run again into that database, $BENCH_PAIRS pairs (peer column: $small)" "$D_BIG_S" "$D_SMALL_S" "<= 12x" "$(verdict "$(ratio "$D_BIG_S" "$D_SMALL_S")" 12)"
    mem_row "10. ... its peak memory, MB (peer column: the limit)" "$f" "$D_BIG_KB"
    row "10. backup of that database, $BENCH_PAIRS pairs (peer column: $small)" "$B_BIG_S" "$B_SMALL_S" "<= 12x" "$(verdict "$(ratio "$B_BIG_S" "$B_SMALL_S")" 12)"
    row "10. listkeys of that database, $BENCH_PAIRS pairs (peer column: $small)" "$L_BIG_S" "$L_SMALL_S" "<= 12x" "$(verdict "$(ratio "$L_BIG_S" "$L_SMALL_S")" 12)"
    timed V_SMALL_S V_SMALL_KB "${verify_1[@]}" "$T/pairs$small.p12"
    timed V_BIG_S V_BIG_KB "${verify_1[@]}" "$f"
    row "10. verify, $BENCH_PAIRS pairs (peer column: $small)" "$V_BIG_S" "$V_SMALL_S" "<= 12x" "$(verdict "$(ratio "$V_BIG_S" "$V_SMALL_S")" 12)"
    mem_row "10. ... its peak memory, MB (peer column: the limit)" "$f" "$V_BIG_KB"
fi

if [ -n "${SCALE_ALONE:-}" ]; then
    echo
    printf '%-78s %9s %9s %7s  %-16s %s\n' "case" "caback" "peer" "ratio" "target" "result"
    while IFS='|' read -r name mine theirs target verdict; do
        printf '%-78s %9s %9s %7s  %-16s %s\n' "$name" "$mine" "$theirs" \
            "$(ratio "$mine" "$theirs")" "$target" "$verdict"
    done <"$ROWS"
fi
