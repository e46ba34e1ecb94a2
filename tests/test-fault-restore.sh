#!/bin/bash
# Faults during a restore and around the database: kill -9 at 20 moments spread over a restore
# into a new database (it then opens, and a rerun of the same restore completes and reaches the
# state of an uninterrupted one); a database locked by another process and a read-only database
# (a clear error naming the database, nothing changed). Figures as comments for
# doc/reliability.md.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util "$PYTHON3"

CA=$TEST_TMP/ca
make_dogtag_ca "$CA"
PW=$TEST_TMP/p12.pass
printf 'Fault restore pass 5\n' >"$PW"
FILE=$TEST_TMP/ca.p12
"$CABACK" backup -q -d "$CA" -f "$CA.pass" -o "$FILE" -w "$PW" --iterations 20000 ||
    not_ok "the backup to restore"

# The half-made states a kill leaves are the point here: caback's warnings about them are expected.
# state DIR: what a database holds, as certutil shows it: nicknames with trust, keys with IDs.
state() {
    certutil -L -d "sql:$1" 2>&1 | tail -n +5 | sed 's/  */ /g' | sort
    certutil -K -d "sql:$1" -f "$1.pass" 2>&1 | sed -n 's/^<[ 0-9]*> *//p' | sed 's/  */ /g' | sort
}
restore() { "$CABACK" restore -q -i "$FILE" -w "$PW" -d "$1" -f "$1.pass" --create; }

REF=$TEST_TMP/reference
cp "$CA.pass" "$REF.pass"
restore "$REF"
state "$REF" >"$TEST_TMP/reference.state"
# rerun DB WHAT: the same restore again into DB, after a kill described by WHAT. Status 1 (and
# the error as a comment) when it fails, 2 (and the difference) when DB then differs from the
# reference restore, 0 when it reaches exactly the reference state.
rerun() {
    if ! "$CABACK" restore -q -i "$FILE" -w "$PW" -d "$1" -f "$1.pass" --create >"$TEST_TMP/rerun.out" 2>&1; then
        diag "$2: the rerun failed: $(head -c 600 "$TEST_TMP/rerun.out")"
        return 1
    fi
    if [ "$(state "$1")" != "$(cat "$TEST_TMP/reference.state")" ]; then
        diag "$2: after the rerun the database differs from the reference:"
        diag "$(diff <(state "$1") "$TEST_TMP/reference.state")"
        return 2
    fi
}
expect_equal "the reference restore holds 5 keys" 5 "$(grep -c 'cert-pki-ca$' <(certutil -K -d "sql:$REF" -f "$REF.pass" 2>/dev/null))"

start=$EPOCHREALTIME
TIMING=$TEST_TMP/timing
cp "$CA.pass" "$TIMING.pass"
restore "$TIMING"
DURATION=$("$PYTHON3" -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$start" "$EPOCHREALTIME")
diag "an uninterrupted restore (database created) takes ${DURATION} s"

kills=0 survivors=0 lingered=0 finished=0 unopenable=0 reruns_failed=0 different=0 partial_seen=0 journals=0
for i in $(seq 1 20); do
    delay=$("$PYTHON3" -c 'import sys; print("%.3f" % (float(sys.argv[1]) * (int(sys.argv[2]) - 0.5) / 20))' "$DURATION" "$i")
    DB=$TEST_TMP/db$i
    cp "$CA.pass" "$DB.pass"
    # caback itself in the background (not a shell function, whose subshell would be the one
    # killed while caback ran on). In the sanitizer build, a kill that lands while the victim (or
    # its second reader) is in LeakSanitizer's check at exit makes the check's tracer report
    # "Unable to get registers from thread": so the victims run without the leak check, which
    # the rerun of the same restore right after (and every other test) still makes.
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        "$CABACK" restore -q -i "$FILE" -w "$PW" -d "$DB" -f "$DB.pass" --create >/dev/null 2>&1 &
    victim=$!
    sleep "$delay"
    kill -9 "$victim" 2>/dev/null
    wait "$victim" 2>/dev/null
    [ $? -eq 0 ] && finished=$((finished + 1))
    kills=$((kills + 1))
    # The restore's second reader (check-stored-keys) is killed by the kernel when the restore
    # dies, but on a busy machine it can take a moment to be gone: a process still there 5 s
    # later is a survivor. (That it is killed, not merely left to end at the end of its input,
    # is shown by test-restore-second-reader.sh, with its input held open.)
    if pgrep -f -- "-d $DB -f" >/dev/null; then
        lingered=$((lingered + 1))
        if ! gone_within 5 pgrep -f -- "-d $DB -f"; then
            survivors=$((survivors + 1))
            diag "kill $i: a caback process survived the kill: $(pgrep -a -f -- "-d $DB -f")"
            pkill -9 -f -- "-d $DB -f"
        fi
    fi
    if [ -e "$DB/cert9.db" ]; then
        # A change cut short leaves SQLite's journal; caback's first opening rolls it back (NSS
        # tools opening read-only cannot until then). certutil -K exits 255 for an empty key
        # list, so its words are checked, not its status.
        ls "$DB"/*-journal >/dev/null 2>&1 && journals=$((journals + 1))
        if ! "$CABACK" listkeys -d "$DB" -f "$DB.pass" >/dev/null 2>&1 ||
            ! certutil -L -d "sql:$DB" >/dev/null 2>&1 ||
            certutil -K -d "sql:$DB" -f "$DB.pass" 2>&1 | grep -q 'failed'; then
            unopenable=$((unopenable + 1))
            diag "kill $i after ${delay} s: the database does not open"
        fi
        [ "$(state "$DB")" != "$(cat "$TEST_TMP/reference.state")" ] && partial_seen=$((partial_seen + 1))
    fi
    rerun "$DB" "kill $i after ${delay} s"
    case $? in
    1) reruns_failed=$((reruns_failed + 1)) ;;
    2) different=$((different + 1)) ;;
    esac
done
diag "kills: $kills (spread over ${DURATION} s), finished before the kill: $finished, interrupted mid-way (database neither empty nor complete): $partial_seen"
diag "kills after which a caback process was still there right after: $lingered (still there 5 s later: $survivors)"
diag "interrupted changes rolled back at the next opening (SQLite journal left): $journals"
diag "databases that did not open: $unopenable, reruns that failed: $reruns_failed, final states different from the reference: $different"
expect_equal "20 kills of a restore: no caback process survives kill -9" 0 "$survivors"
expect_equal "20 kills of a restore: every database opens" 0 "$unopenable"
expect_equal "every rerun of the same restore completes" 0 "$reruns_failed"
expect_equal "every rerun reaches the state of an uninterrupted restore" 0 "$different"
check "some kills hit the restore before it finished" test "$finished" -lt "$kills"

# ---- kills at exact step boundaries (gdb) ----
# The random kills above may miss the short moments between two steps; here caback is stopped
# with gdb right before the Nth call of the NSS function of a step and killed there (SIGKILL,
# as kill -9): after the key and before its public key object (PK11_ImportPublicKey), between two
# certificates (PK11_ImportDERCert), after a certificate and before its trust
# (CERT_ChangeCertTrust), and while the answers of the second reader of the last step are read
# (caback_stored_key_checker_wait: caback check-stored-keys, which dies with the restore). Each
# rerun must reach the reference state.
if command -v gdb >/dev/null 2>&1; then
    points=0 hit=0 exact_failed=0
    for point in PK11_ImportPublicKey:1 PK11_ImportPublicKey:2 PK11_ImportPublicKey:5 \
        caback_stored_key_checker_wait:1 caback_stored_key_checker_wait:5 PK11_ImportDERCert:1 PK11_ImportDERCert:3 PK11_ImportDERCert:5 \
        CERT_ChangeCertTrust:1 CERT_ChangeCertTrust:2; do
        fn=${point%:*} nth=${point#*:}
        points=$((points + 1))
        DB=$TEST_TMP/exact$points
        cp "$CA.pass" "$DB.pass"
        gdb_batch -ex "break $fn" -ex "ignore 1 $((nth - 1))" -ex run -ex 'info breakpoints' -ex 'kill' \
            --args "$CABACK" restore -q -i "$FILE" -w "$PW" -d "$DB" -f "$DB.pass" --create \
            >"$TEST_TMP/exact.gdb" 2>&1 </dev/null
        # gdb says "Thread N "caback" hit Breakpoint 1, ..." once the process has had a second
        # thread, and "Breakpoint 1, ..." when it has had none (the password is checked first,
        # and a file with one key derives it on the calling thread).
        grep -Eq "(hit |^)Breakpoint 1, " "$TEST_TMP/exact.gdb" && hit=$((hit + 1))
        rerun "$DB" "killed at call $nth of $fn" || exact_failed=$((exact_failed + 1))
    done
    diag "kills at step boundaries: $points ($hit stopped at their breakpoint), reruns that failed or differ: $exact_failed"
    diag "kills: $((kills + points)) ($kills at random moments, $points at step boundaries), databases that did not open: $unopenable, reruns that failed or differ: $((reruns_failed + different + exact_failed))"
    expect_equal "kills at step boundaries: every breakpoint was reached" "$points" "$hit"
    expect_equal "kills at step boundaries: every rerun reaches the state of an uninterrupted restore" 0 "$exact_failed"
else
    skip "kills at step boundaries: breakpoints" "gdb is not installed"
    skip "kills at step boundaries: reruns" "gdb is not installed"
fi

# ---- a database locked by another process ----
# NSS keeps its databases in SQLite: another process holding an exclusive transaction on
# key4.db (as a crashed or busy tool would) blocks every writer.
LOCKED=$TEST_TMP/locked
make_dogtag_ca "$LOCKED"
state "$LOCKED" >"$TEST_TMP/locked.before"
"$PYTHON3" - "$LOCKED" "$TEST_TMP/lock-ready" <<'EOF' &
import sqlite3, sys, time, os
conns = []
for name in ("cert9.db", "key4.db"):
    c = sqlite3.connect(os.path.join(sys.argv[1], name), timeout=1, isolation_level=None)
    c.execute("BEGIN EXCLUSIVE")
    conns.append(c)
open(sys.argv[2], "w").close()
time.sleep(60)
EOF
holder=$!
for _ in $(seq 100); do [ -e "$TEST_TMP/lock-ready" ] && break; sleep 0.05; done
start=$EPOCHREALTIME
run "$CABACK" restore -i "$FILE" -w "$PW" -d "$LOCKED" -f "$LOCKED.pass" --replace
WAITED=$("$PYTHON3" -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$start" "$EPOCHREALTIME")
diag "restore into a locked database gave up after ${WAITED} s"
check "locked database: restore fails" test "$STATUS" -ne 0 -a "$STATUS" -lt 6
expect_grep "locked database: the error names the database" "$LOCKED" "$ERR"
expect_grep "locked database: the error says it is in use" "(locked|busy|in use)" "$ERR"
expect_grep "locked database: the error names the process that holds the lock" "locked by process $holder" "$ERR"
run "$CABACK" backup -d "$LOCKED" -f "$LOCKED.pass" -o "$TEST_TMP/locked.p12" -w "$PW" --iterations 2000
check "locked database: backup fails or completes, never crashes" test "$STATUS" -lt 6
[ "$STATUS" -ne 0 ] && expect_grep "locked database: backup's error names the database" "$LOCKED" "$ERR"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
expect_equal "locked database: nothing changed" "$(cat "$TEST_TMP/locked.before")" "$(state "$LOCKED")"

# ---- a read-only database (a read-only bind mount: root ignores file modes) ----
RO=$TEST_TMP/readonly
RO_SRC=$TEST_TMP/readonly-src
make_dogtag_ca "$RO_SRC"
certutil -D -d "sql:$RO_SRC" -n "Server-Cert cert-pki-ca" -f "$RO_SRC.pass"
mkdir -p "$RO"
cp "$RO_SRC.pass" "$RO.pass"
trap 'umount "$RO" 2>/dev/null; _tap_cleanup' EXIT
if mount --bind "$RO_SRC" "$RO" 2>/dev/null && mount -o remount,bind,ro "$RO" 2>/dev/null; then
    state "$RO" >"$TEST_TMP/ro.before"
    run "$CABACK" listkeys -d "$RO" -f "$RO.pass"
    expect_equal "read-only database: listkeys works" 0 "$STATUS"
    run "$CABACK" restore -i "$FILE" -w "$PW" -d "$RO" -f "$RO.pass"
    check "read-only database: restore fails" test "$STATUS" -ne 0 -a "$STATUS" -lt 6
    expect_grep "read-only database: the error names the database" "$RO" "$ERR"
    expect_grep "read-only database: the error says why it cannot be written" "$RO cannot be written: Read-only file system" "$ERR"
    expect_equal "read-only database: nothing changed" "$(cat "$TEST_TMP/ro.before")" "$(state "$RO")"
    run "$CABACK" backup -d "$RO" -f "$RO.pass" -o "$TEST_TMP/ro.p12" -w "$PW" --iterations 2000
    expect_equal "read-only database: backup works (it only reads)" 0 "$STATUS"
    umount "$RO"
else
    umount "$RO" 2>/dev/null
    for t in listkeys fails names says unchanged backup; do skip "read-only database: $t" "cannot make a read-only bind mount here (not root, or no mount permission)"; done
fi

done_testing
