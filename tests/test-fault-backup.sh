# Faults during a backup: kill -9 at 20 moments spread over a run of about 1.5 s (raised
# iterations) and at 10 moments of a run at the default 600,000 iterations, every other one with a
# previous file at the target (the target then holds nothing, the previous file byte for byte, or
# a complete new file; never a partial one; the temporary file has no name while it is written
# (O_TMPFILE), so a killed run leaves none behind);
# a full file system, a file size limit and a read-only folder (a clear error naming the file, exit
# status 1, the previous file intact, no temporary file left). The figures are printed as comments
# for doc/reliability.md.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util "$PYTHON3"

DB=$TEST_TMP/ca
make_dogtag_ca "$DB"
PW=$TEST_TMP/p12.pass
printf 'Fault backup pass 3\n' >"$PW"
OUTDIR=$TEST_TMP/out
mkdir -p "$OUTDIR"
TARGET=$OUTDIR/ca.p12

backup() { "$CABACK" backup -q -d "$DB" -f "$DB.pass" -o "$1" -w "$PW" "${@:2}"; }
temps() { find "$1" -maxdepth 1 -name '.*.caback-tmp-*' | wc -l; }
# complete FILE: the file opens with the password and holds the 5 keys.
complete() { "$CABACK" list "$1" -w "$PW" --json 2>/dev/null | "$PYTHON3" -c 'import json, sys; sys.exit(0 if len(json.load(sys.stdin)["keys"]) == 5 else 1)'; }
now() { "$PYTHON3" -c 'import time; print(time.monotonic())'; }

backup "$OUTDIR/previous.p12" --iterations 2000
check "a previous backup to put at the target" complete "$OUTDIR/previous.p12"

kills=0 finished=0 partial=0 old_kept=0 empty=0 new_file=0 temps_after_kill=0 temps_after_rerun=0 bad_state=0 survivors=0
# kill_runs N ITERATIONS: N kills spread over a backup at ITERATIONS.
kill_runs() {
    local n=$1 iterations=$2 start duration i delay with_previous victim status
    start=$(now)
    backup "$OUTDIR/timing.p12" --iterations "$iterations" --force
    duration=$("$PYTHON3" -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$start" "$(now)")
    diag "an uninterrupted backup at $iterations iterations takes ${duration} s: $n kills spread over it"
    for i in $(seq 1 "$n"); do
        delay=$("$PYTHON3" -c 'import sys; print("%.3f" % (float(sys.argv[1]) * (int(sys.argv[2]) - 0.5) / int(sys.argv[3])))' "$duration" "$i" "$n")
        rm -f "$TARGET"
        with_previous=$((i % 2))
        [ "$with_previous" -eq 1 ] && cp "$OUTDIR/previous.p12" "$TARGET"
        # caback itself in the background (not a shell function, whose subshell would be the one
        # killed while caback ran on).
        "$CABACK" backup -q -d "$DB" -f "$DB.pass" -o "$TARGET" -w "$PW" --iterations "$iterations" --force >/dev/null 2>&1 &
        victim=$!
        sleep "$delay"
        kill -9 "$victim" 2>/dev/null
        wait "$victim" 2>/dev/null
        status=$?
        kills=$((kills + 1))
        [ "$status" -eq 0 ] && finished=$((finished + 1))
        if pgrep -f -- "-o $TARGET -w" >/dev/null; then
            survivors=$((survivors + 1))
            diag "kill $i: a caback process survived the kill"
        fi
        temps_after_kill=$((temps_after_kill + $(temps "$OUTDIR")))
        if [ ! -e "$TARGET" ]; then
            [ "$with_previous" -eq 1 ] && { partial=$((partial + 1)); diag "kill $i: the previous file is gone"; }
            empty=$((empty + 1))
        elif cmp -s "$TARGET" "$OUTDIR/previous.p12"; then
            old_kept=$((old_kept + 1))
        elif complete "$TARGET"; then
            new_file=$((new_file + 1))
        else
            partial=$((partial + 1))
            diag "kill $i after ${delay} s: $TARGET is neither the previous file nor a complete backup"
        fi
        # The state the run keeps (the latest_backup pointer, the log) stays readable.
        if [ -f "$CABACK_STATE_DIR/latest_backup" ] &&
            ! grep -Eq '^sha256=[0-9a-f]{64}$' "$CABACK_STATE_DIR/latest_backup"; then
            bad_state=$((bad_state + 1))
        fi
        if [ -f "$CABACK_STATE_DIR/caback.log.jsonl" ] &&
            ! "$PYTHON3" -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' "$CABACK_STATE_DIR/caback.log.jsonl"; then
            bad_state=$((bad_state + 1))
            diag "kill $i: a torn line in the JSON log"
        fi
        # A rerun completes and removes what a killed run left.
        if ! backup "$TARGET" --force --iterations 2000 >/dev/null 2>&1 || ! complete "$TARGET"; then
            partial=$((partial + 1))
            diag "kill $i: the rerun did not complete"
        fi
        temps_after_rerun=$((temps_after_rerun + $(temps "$OUTDIR")))
    done
}
kill_runs 20 1500000
kill_runs 10 600000
diag "kills: $kills, finished before the kill: $finished, previous file kept: $old_kept, no file: $empty, complete new file: $new_file"
diag "kills: $kills, partial files: $partial, temp files seen after the kills: $temps_after_kill, temp files left after the reruns: $temps_after_rerun"
expect_equal "30 kills of a backup: no caback process survives kill -9" 0 "$survivors"
expect_equal "30 kills of a backup: no partial file" 0 "$partial"
expect_equal "no temporary file survives a rerun" 0 "$temps_after_rerun"
expect_equal "latest_backup and the JSON log stay readable" 0 "$bad_state"
check "most kills hit the run before it finished" test "$finished" -lt $((kills / 2))
expect_equal "no kill left a temporary file (it has no name until it is complete)" 0 "$temps_after_kill"

# ---- a file size limit (ulimit -f): EFBIG, reported, cleaned up ----
cp "$OUTDIR/previous.p12" "$TARGET"
run bash -c 'ulimit -f 8; exec "$@"' _ "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TARGET" -w "$PW" --force --iterations 2000
expect_equal "file size limit: exit status 1" 1 "$STATUS"
expect_grep "file size limit: the error names the file" "$TARGET" "$ERR"
expect_grep "file size limit: the error says why" "File too large" "$ERR"
check "file size limit: the previous file is intact" cmp -s "$TARGET" "$OUTDIR/previous.p12"
expect_equal "file size limit: no temporary file left" 0 "$(temps "$OUTDIR")"

# ---- a full file system and a read-only folder (a small tmpfs; needs mount, as root) ----
MNT=$TEST_TMP/small
mkdir -p "$MNT"
trap 'umount "$MNT" 2>/dev/null; _tap_cleanup' EXIT
if mount -t tmpfs -o size=20k,mode=0700 caback-test "$MNT" 2>/dev/null; then
    cp "$OUTDIR/previous.p12" "$MNT/ca.p12"
    run "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$MNT/ca.p12" -w "$PW" --force --iterations 2000
    expect_equal "full file system: exit status 1" 1 "$STATUS"
    expect_grep "full file system: the error names the file and says why" "$MNT/ca.p12.*No space left on device" "$ERR"
    check "full file system: the previous file is intact" cmp -s "$MNT/ca.p12" "$OUTDIR/previous.p12"
    expect_equal "full file system: no temporary file left" 0 "$(temps "$MNT")"

    printf 'sign me\n' >"$MNT/other.txt"
    mount -o remount,ro "$MNT"
    run "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$MNT/ca.p12" -w "$PW" --force --iterations 2000
    expect_equal "read-only folder: exit status 1" 1 "$STATUS"
    expect_grep "read-only folder: the error names the file and says why" "$MNT/ca.p12.*Read-only file system" "$ERR"
    check "read-only folder: the previous file is intact" cmp -s "$MNT/ca.p12" "$OUTDIR/previous.p12"
    umount "$MNT"
else
    for t in status error intact temp; do skip "full file system: $t" "cannot mount a small tmpfs here (not root, or no mount permission)"; done
    for t in status error intact; do skip "read-only folder: $t" "cannot mount a small tmpfs here (not root, or no mount permission)"; done
fi

done_testing
