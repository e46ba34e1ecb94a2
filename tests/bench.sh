#!/bin/bash
# make bench: caback beside its peers (NSS pk12util and certutil) on the same work, on this machine,
# in one run. Builds its own fixtures with certutil, runs each case BENCH_RUNS times (default 5)
# for caback and for the peer, and prints the medians, the ratio caback/peer and the target of
# issue 7 (PASS or MISS). Nothing here is a test: make check never runs it.
#
# Environment: CABACK (the binary), BENCH_PBKDF2 (tests/bench-pbkdf2), BENCH_RUNS (5: runs of each
# case; the pk12util loop of case 4 runs min(3, BENCH_RUNS) times), BENCH_SAMPLE (how many of the 200
# nicknames that loop times, default 25; its time is that sample's time scaled to 200, and the table
# says so; 200 times it all), BENCH_RSA_SAMPLE (the same for the RSA reference rows, default 10).
#
# Cases 6, 7 and 10 (tests/bench-scale.sh, also alone: make bench-scale) time work that must
# grow linearly with the input: restore planning of 100,000 certificates, fix-clone-ids on a
# 10 MB CS.cfg, restore and verify of 10,000 certificates with their keys; their "peer" column is
# the same work on a tenth of the input, so the ratio column is the growth for 10x the input.
# Cases 8 to 10 (there too) measure peak memory: its "peer" column is the limit, 4x the file's
# size + 64 MB, so the ratio column is the share of it used. The scale cases take about an hour
# at their defaults (BENCH_VERIFY_CERTS, BENCH_KEYS and BENCH_PAIRS make them smaller).
#
# Case 4 runs on 200 EC P-256 keys (its targets) and again on 200 RSA-2048 keys, for reference:
# with RSA, NSS's key database alone takes longer than the targets allow (see doc/performance.md),
# and the table prints that floor, measured here, beside caback's time.
#
# The machine may be busy with other work: caback and its peer run alternately (caback, peer,
# caback, peer, ...), so that a burst of load falls on both, and medians are compared.
. "$CABACK_SRCDIR/tests/lib.sh"

RUNS=${BENCH_RUNS:-5}
SAMPLE=${BENCH_SAMPLE:-25}
RSA_SAMPLE=${BENCH_RSA_SAMPLE:-10}
PBKDF2=${BENCH_PBKDF2:-$CABACK_BUILDDIR/tests/bench-pbkdf2}
T=$TEST_TMP
ITERATIONS=600000
# caback backup records its latest verified file and a run log in the state folder: keep both in
# the benchmark's temporary folder (removed at the end), never in /var/lib/caback.
export CABACK_STATE_DIR=$T/state
mkdir -p "$CABACK_STATE_DIR"

for tool in certutil pk12util openssl "$CABACK" "$PBKDF2" "$PYTHON3"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool is missing (run ./bootstrap, then make bench)" >&2; exit 1; }
done

say() { printf '%s\n' "$*" >&2; }

# elapsed CMD...: run CMD (output discarded), print its wall time in seconds; stop the benchmark
# when it fails, since a failed run would be timed as a fast one.
elapsed() {
    local start=$EPOCHREALTIME
    if ! "$@" >/dev/null 2>"$T/last-error"; then
        say "bench: this command failed, so its time means nothing:"
        say "  $*"
        sed 's/^/  /' "$T/last-error" >&2
        exit 1
    fi
    "$PYTHON3" -c 'import sys; print("%.4f" % (float(sys.argv[2]) - float(sys.argv[1])))' \
        "$start" "$EPOCHREALTIME"
}

# median TIME...: the middle value (the mean of the two middle ones for an even count).
median() {
    "$PYTHON3" -c 'import statistics, sys; print("%.4f" % statistics.median(map(float, sys.argv[1:])))' "$@"
}

# measure_pair MINE THEIRS PREP BODY1 BODY2 [RUNS]: RUNS times (default $RUNS), run the shell
# function PREP (untimed) then BODY1 (timed), then PREP and BODY2 (timed), alternately; the medians
# go to the variables MINE and THEIRS.
measure_pair() {
    local mine=$1 theirs=$2 prep=$3 body1=$4 body2=$5 runs=${6:-$RUNS} t1=() t2=() i t
    for ((i = 1; i <= runs; i++)); do
        "$prep"
        t=$(elapsed "$body1") || exit 1
        t1+=("$t")
        "$prep"
        t=$(elapsed "$body2") || exit 1
        t2+=("$t")
    done
    printf -v "$mine" '%s' "$(median "${t1[@]}")"
    printf -v "$theirs" '%s' "$(median "${t2[@]}")"
    say "  $body1: ${t1[*]} -> median ${!mine} s"
    say "  $body2: ${t2[*]} -> median ${!theirs} s"
}

ROWS=$T/rows
: >"$ROWS"
# row CASE CABACK PEER TARGET-TEXT VERDICT: one line of the table.
row() { printf '%s|%s|%s|%s|%s\n' "$@" >>"$ROWS"; }
ratio() { "$PYTHON3" -c 'import sys; print("%.3f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$1" "$2"; }
at_most() { "$PYTHON3" -c 'import sys; print("PASS" if float(sys.argv[1]) <= float(sys.argv[2]) else "MISS")' "$1" "$2"; }

printf 'P12 bench password\n' >"$T/p12.pass"
PW=$T/p12.pass
NICKS=("$DOGTAG_CA_NICK" "ocspSigningCert cert-pki-ca" "subsystemCert cert-pki-ca"
    "Server-Cert cert-pki-ca" "auditSigningCert cert-pki-ca")

# ---- fixtures ----
say "bench: building the fixtures with certutil (about two minutes: 200 RSA-2048 keys, 2,200 EC keys)"
CA=$T/ca
make_dogtag_ca "$CA"

# certutil commits every certificate and key with an fsync: on a disk, 2,000 of them take minutes.
# The big databases are therefore built in a RAM folder when there is one, then copied next to the
# others, so that every case reads its database from the same disk.
SCRATCH=$T/scratch
if [ -d /dev/shm ] && [ -w /dev/shm ]; then SCRATCH=$(mktemp -d /dev/shm/caback-bench.XXXXXX); fi
trap '_tap_cleanup; rm -rf "$SCRATCH"' EXIT
mkdir -p "$SCRATCH"

# batch_db NAME COUNT KEYTYPE...: the database $T/NAME with COUNT self-signed certificates, each
# with its own key, made by one certutil -B run (one process, not COUNT of them).
batch_db() {
    local name=$1 count=$2 i; shift 2
    local dir=$SCRATCH/$name
    make_nssdb "$dir"
    for ((i = 1; i <= count; i++)); do
        printf -- '-S -d sql:%s -f %s -z %s -n bench-key-%04d -s CN=bench-key-%04d,O=EXAMPLE.TEST -x -t u,u,u %s -Z SHA256 -v 120 -m %d\n' \
            "$dir" "$dir.pass" "$dir.noise" "$i" "$i" "$*" "$((5000 + i))"
    done >"$dir.batch"
    certutil -B -i "$dir.batch" -d "sql:$dir" -f "$dir.pass" >/dev/null 2>&1
    cp -a "$dir" "$dir.pass" "$T/"
    rm -rf "$dir" "$dir".*
    local have
    have=$(certutil -K -d "sql:$T/$name" -f "$T/$name.pass" 2>/dev/null | grep -c '^<')
    if [ "$have" -ne "$count" ]; then
        say "bench: certutil made $have keys in $T/$name instead of $count"
        exit 1
    fi
}
BIG=$T/keys2000
batch_db keys2000 2000 -k ec -q nistp256
MANY=$T/keys200
batch_db keys200 200 -k ec -q nistp256
MANY_RSA=$T/keys200rsa
batch_db keys200rsa 200 -k rsa -g 2048
MANY_NICKS=()
for ((i = 1; i <= 200; i++)); do MANY_NICKS+=("$(printf 'bench-key-%04d' "$i")"); done

# ---- case 1: back up the 5-key CA ----
say "case 1: back up the Dogtag-like 5-key CA at $ITERATIONS iterations"
c1_prep() { rm -f "$T/c1.p12" "$T"/c1-pk12util-*.p12; }
c1_caback() { "$CABACK" backup -q -d "$CA" -f "$CA.pass" -o "$T/c1.p12" -w "$PW"; }
# pk12util_loop DB PREFIX NICKNAME...: pk12util -o once per nickname, as an administrator would
# back up several keys with it (one file each: PREFIX-1.p12, PREFIX-2.p12, ...).
pk12util_loop() {
    local db=$1 prefix=$2 n i=0; shift 2
    for n in "$@"; do
        i=$((i + 1))
        pk12util -o "$prefix-$i.p12" -n "$n" -d "sql:$db" -k "$db.pass" -w "$PW" || return 1
    done
}
c1_pk12util() { pk12util_loop "$CA" "$T/c1-pk12util" "${NICKS[@]}"; }
measure_pair C1_CABACK C1_PEER c1_prep c1_caback c1_pk12util
c1_caback
# What each writes, so that the comparison is seen to be like with like.
# (openssl prints the PBES2 parameters of both files; pk12util -l prints them only for its own).
profile() {
    openssl pkcs12 -info -noout -in "$1" -passin "file:$PW" 2>&1 |
        sed -n 's/^Shrouded Keybag: /keys /p; s/^PKCS7 Encrypted data: /certificates /p; s/^MAC: /MAC /p' |
        sort -u | paste -sd ';' | sed 's/;/; /g'
}
C1_CABACK_PROFILE=$(profile "$T/c1.p12")
C1_PEER_PROFILE=$(profile "$T/c1-pk12util-1.p12")
DERIVATIONS=$("$CABACK" backup --json -d "$CA" -f "$CA.pass" -o "$T/c1-json.p12" -w "$PW" |
    "$PYTHON3" -c 'import json, sys; print(json.load(sys.stdin)["key_derivations"])')
R1=$(ratio "$C1_CABACK" "$C1_PEER")
row "1. backup, 5-key CA, $ITERATIONS iterations (pk12util -o once per nickname)" "$C1_CABACK" "$C1_PEER" "<= 0.2x" "$(at_most "$R1" 0.2)"

# ---- case 5: the floor ----
say "case 5: one PBKDF2-HMAC-SHA256 derivation at $ITERATIONS iterations, in-process with NSS"
mapfile -t ONE < <("$PBKDF2" "$ITERATIONS" $((RUNS < 5 ? 5 : RUNS)))
ONE_DERIVATION=$(median "${ONE[@]}")
CORES=$(nproc)
USED=$((CORES < 2 ? CORES : 2))
FLOOR=$("$PYTHON3" -c 'import sys; print("%.4f" % (float(sys.argv[1]) * int(sys.argv[2]) / int(sys.argv[3])))' "$ONE_DERIVATION" "$DERIVATIONS" "$USED")
say "  one derivation ${ONE[*]} -> median $ONE_DERIVATION s; x $DERIVATIONS derivations / $USED cores = $FLOOR s"
R5=$(ratio "$C1_CABACK" "$FLOOR")
row "5. case 1 against its floor ($DERIVATIONS x $ONE_DERIVATION s / $USED cores)" "$C1_CABACK" "$FLOOR" "<= 1.3x" "$(at_most "$R5" 1.3)"

# ---- case 2: restore the 5-key file into a fresh database ----
say "case 2: restore that file into a fresh database"
c2_prep() { rm -rf "$T/fresh" "$T/fresh."*; make_nssdb "$T/fresh" >/dev/null; }
c2_caback() { "$CABACK" restore -q -i "$T/c1-json.p12" -w "$PW" -d "$T/fresh" -f "$T/fresh.pass"; }
c2_pk12util() { pk12util -i "$T/c1-json.p12" -w "$PW" -d "sql:$T/fresh" -k "$T/fresh.pass"; }
measure_pair C2_CABACK C2_PEER c2_prep c2_caback c2_pk12util
R2=$(ratio "$C2_CABACK" "$C2_PEER")
row "2. restore the 5-key file (pk12util -i)" "$C2_CABACK" "$C2_PEER" "<= 0.5x" "$(at_most "$R2" 0.5)"

# ---- case 3: list 2,000 keys ----
say "case 3: list the keys of a database with 2,000 keys"
nothing() { :; }
c3_caback() { "$CABACK" listkeys -d "$BIG" -f "$BIG.pass"; }
c3_certutil() { certutil -K -d "sql:$BIG" -f "$BIG.pass"; }
measure_pair C3_CABACK C3_PEER nothing c3_caback c3_certutil
R3=$(ratio "$C3_CABACK" "$C3_PEER")
row "3. listkeys, 2,000 keys (certutil -K)" "$C3_CABACK" "$C3_PEER" "<= 1.0x" "$(at_most "$R3" 1.0)"

# ---- case 4: 200 keys ----
[ "$SAMPLE" -gt 200 ] && SAMPLE=200
[ "$RSA_SAMPLE" -gt 200 ] && RSA_SAMPLE=200
FIVE_ARGS=()
for n in "${MANY_NICKS[@]:0:5}"; do FIVE_ARGS+=(-n "$n"); done
C4_DB=$MANY
c4_prep() { rm -f "$T/c4.p12" "$T/c4-5.p12" "$T"/c4-pk12util-*.p12; }
c4_caback() { "$CABACK" backup -q -d "$C4_DB" -f "$C4_DB.pass" -o "$T/c4.p12" -w "$PW"; }
c4_caback5() { "$CABACK" backup -q -d "$C4_DB" -f "$C4_DB.pass" -o "$T/c4-5.p12" -w "$PW" "${FIVE_ARGS[@]}"; }
C4_SAMPLE_N=$SAMPLE
c4_pk12util() { pk12util_loop "$C4_DB" "$T/c4-pk12util" "${MANY_NICKS[@]:0:$C4_SAMPLE_N}"; }
# c4_check: the 200-key backup holds 200 keys.
c4_check() {
    c4_prep
    c4_caback
    local keys
    keys=$(pk12util -l "$T/c4.p12" -w "$PW" 2>/dev/null | grep -c '^Key(shrouded):')
    if [ "$keys" -ne 200 ]; then say "bench: the 200-key backup of $C4_DB holds $keys keys"; exit 1; fi
}
# c4_rows LABEL 200-KEYS 5-KEYS LOOP-SAMPLE-TIME SAMPLE TARGETS(yes|no) FLOOR-NOTE: rows 4a and 4b
# of one key type.
c4_rows() {
    local label=$1 mine=$2 five=$3 sample_time=$4 sample=$5 targets=$6 note=$7
    local peer speedup added loop_note
    peer=$("$PYTHON3" -c 'import sys; print("%.4f" % (float(sys.argv[1]) * 200 / int(sys.argv[2])))' "$sample_time" "$sample")
    speedup=$("$PYTHON3" -c 'import sys; print("%.1f" % (float(sys.argv[2]) / float(sys.argv[1])))' "$mine" "$peer")
    added=$("$PYTHON3" -c 'import sys; print("%.4f" % (float(sys.argv[1]) - float(sys.argv[2])))' "$mine" "$five")
    loop_note="pk12util -o per nickname"
    [ "$sample" -lt 200 ] && loop_note="$loop_note; $sample of 200 timed, x $((200 / sample))"
    if [ "$targets" = yes ]; then
        row "4a. backup, 200 $label keys ($loop_note)" "$mine" "$peer" ">= 20x faster" "$("$PYTHON3" -c 'import sys; print("PASS" if float(sys.argv[1]) >= 20 else "MISS")' "$speedup") (${speedup}x)"
        row "4b. caback, 200 $label keys against 5 of them" "$mine" "$five" "+195 keys < 1 s" "$(at_most "$added" 0.9999) (+${added} s)"
    else
        row "4c. for reference: 200 $label keys (pk12util loop, $sample timed, x $((200 / sample)))" "$mine" "$peer" "(reference)" "${speedup}x faster"
        row "4d. for reference: caback, 200 $label keys against 5 of them" "$mine" "$five" "(reference)" "+${added} s; $note"
    fi
}

say "case 4: back up a database with 200 EC P-256 keys"
measure_pair C4_CABACK C4_CABACK5 c4_prep c4_caback c4_caback5
measure_pair C4_CABACK_AGAIN C4_SAMPLE c4_prep c4_caback c4_pk12util $((RUNS < 3 ? RUNS : 3))
c4_check
c4_rows "EC P-256" "$C4_CABACK" "$C4_CABACK5" "$C4_SAMPLE" "$SAMPLE" yes ""

# The same with RSA-2048 keys, for reference. NSS's key4.db keeps each private attribute
# encrypted and authenticated with its own PBKDF2-HMAC-SHA256 at 10,000 iterations (softoken's
# NSS_MP_PBE_ITERATION_COUNT); reading an RSA-2048 key back costs 14 of them (6 attributes
# decrypted, 6 checked, modulus and public exponent checked), whoever reads it, and one key at a
# time per opening of the database: caback backup reads through two openings, on two processors,
# so the row gives that CPU time and its half.
say "case 4, for reference: the same with 200 RSA-2048 keys"
C4_DB=$MANY_RSA
C4_SAMPLE_N=$RSA_SAMPLE
measure_pair C4R_CABACK C4R_CABACK5 c4_prep c4_caback c4_caback5 $((RUNS < 3 ? RUNS : 3))
measure_pair C4R_CABACK_AGAIN C4R_SAMPLE c4_prep c4_caback c4_pk12util 1
c4_check
mapfile -t KDB < <("$PBKDF2" 10000 $((RUNS < 5 ? 5 : RUNS)))
KDB_ONE=$("$PYTHON3" -c 'import statistics, sys; print("%.6f" % statistics.median(map(float, sys.argv[1:])))' "${KDB[@]}")
KDB_FLOOR=$("$PYTHON3" -c 'import sys; print("%.2f" % (195 * 14 * float(sys.argv[1])))' "$KDB_ONE")
KDB_HALF=$("$PYTHON3" -c 'import sys; print("%.2f" % (float(sys.argv[1]) / 2))' "$KDB_FLOOR")
say "  one PBKDF2 at 10,000 iterations: ${KDB[*]} -> median $KDB_ONE s; 195 RSA keys x 14 = $KDB_FLOOR s"
c4_rows "RSA-2048" "$C4R_CABACK" "$C4R_CABACK5" "$C4R_SAMPLE" "$RSA_SAMPLE" no \
    "key4.db alone: 195 x 14 x $KDB_ONE s = $KDB_FLOOR s of CPU, +$KDB_HALF s on 2 cores"

# ---- cases 6 to 10: linear growth, peak memory (tests/bench-scale.sh) ----
. "$CABACK_SRCDIR/tests/bench-scale.sh"

# ---- the table ----
# The NSS that runs: the package of libnss3 (Debian), else what pkg-config says was built against.
NSS_VERSION=$(dpkg-query -W -f '${Version}' libnss3 2>/dev/null || pkg-config --modversion nss 2>/dev/null)
CPU=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n1)
echo
echo "caback benchmark, $(date -u +%Y-%m-%d): $CORES cores ($CPU), NSS $NSS_VERSION"
echo "medians of $RUNS runs each (case 4's pk12util loop: $((RUNS < 3 ? RUNS : 3)) runs; the RSA reference rows: $((RUNS < 3 ? RUNS : 3)) runs, the loop 1), caback and peer alternating"
echo "caback's file (case 1):   $C1_CABACK_PROFILE"
echo "pk12util's file (case 1): $C1_PEER_PROFILE"
echo "caback's backup reads back and checks (verifies) what it wrote in every run; pk12util does not."
echo
printf '%-78s %9s %9s %7s  %-16s %s\n' "case" "caback s" "peer s" "ratio" "target" "result"
while IFS='|' read -r name mine theirs target verdict; do
    printf '%-78s %9s %9s %7s  %-16s %s\n' "$name" "$mine" "$theirs" "$(ratio "$mine" "$theirs")" "$target" "$verdict"
done <"$ROWS"
