#!/bin/bash
# The process holds CA keys and passwords: no core dumps (issue 16 §2). caback sets RLIMIT_CORE
# to 0 and PR_SET_DUMPABLE to 0 before anything else, for every verb. Shown on a caback that
# waits on a FIFO for its database password (so it is surely past its first instructions):
# /proc/PID/limits says 0 although it was started under ulimit -c unlimited; prctl(PR_GET_DUMPABLE)
# asked through gdb says 0; and killed with SIGABRT (and SIGSEGV), it leaves no core where a
# control process (sleep) started the same way does leave one.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil

DB=$TEST_TMP/ca
make_nssdb "$DB"
ASAN=no
grep -qa __asan_init "$CABACK" && ASAN=yes
PATTERN=$(cat /proc/sys/kernel/core_pattern 2>/dev/null || echo '|unknown')
# A plain relative pattern ("core", "core.%p") writes the core into the current folder.
case $PATTERN in
'|'* | /*) CORE_IN_CWD=no ;;
*) CORE_IN_CWD=yes ;;
esac

# start_waiting VERB...: caback VERB ... -f FIFO in $W, under ulimit -c unlimited, waiting for
# the FIFO to be opened for writing; its pid in $PID once its limit shows it is past the start.
start_waiting() {
    rm -rf "$W"
    mkdir -p "$W"
    mkfifo "$W/pw.fifo"
    (cd "$W" && ulimit -c unlimited && exec "$CABACK" "$@" -f "$W/pw.fifo" >"$W/out" 2>"$W/err" </dev/null) &
    PID=$!
    gone_within 30 bash -c "! grep -Eq '^Max core file size +0 +0 ' /proc/$PID/limits" ||
        diag "caback $1 did not get to its first instructions"
}
cores_in() { find "$1" -maxdepth 1 -name 'core*' -type f | wc -l; }

for verb in listkeys backup restore; do
    W=$TEST_TMP/$verb
    case $verb in
    listkeys) start_waiting listkeys -d "$DB" ;;
    backup) start_waiting backup -d "$DB" -o "$W/out.p12" -w "$DB.pass" ;;
    restore) start_waiting restore -i "$W/none.p12" -d "$DB" -w "$DB.pass" ;;
    esac
    expect_grep "$verb: RLIMIT_CORE is 0 although it started with ulimit -c unlimited" \
        '^Max core file size +0 +0 ' "/proc/$PID/limits"
    if command -v gdb >/dev/null 2>&1; then
        gdb -q -batch -nx -p "$PID" -ex 'print (int) prctl(3, 0, 0, 0, 0)' -ex detach \
            >"$W/gdb" 2>&1 </dev/null
        expect_grep "$verb: prctl(PR_GET_DUMPABLE) is 0" '^\$1 = 0$' "$W/gdb"
    else
        skip "$verb: prctl(PR_GET_DUMPABLE) is 0" "gdb is not installed"
    fi
    kill -ABRT "$PID"
    S=0; wait "$PID" || S=$?
    expect_equal "$verb: killed by SIGABRT" 134 "$S"
    if [ "$CORE_IN_CWD" = yes ]; then
        expect_equal "$verb: no core file was written" 0 "$(cores_in "$W")"
    fi
done

if [ "$CORE_IN_CWD" = yes ]; then
    # The control: the same start, the same signal, a program that does not refuse cores.
    W=$TEST_TMP/control
    mkdir -p "$W"
    (cd "$W" && ulimit -c unlimited && exec sleep 60) &
    P=$!
    gone_within 10 bash -c "! grep -q sleep /proc/$P/cmdline"
    kill -ABRT "$P"; wait "$P" 2>/dev/null
    check "control: sleep killed the same way leaves a core (so the check above can see one)" \
        test "$(cores_in "$W")" -ge 1
    rm -f "$W"/core*
    if [ "$ASAN" = no ]; then
        # SIGSEGV too (AddressSanitizer catches SIGSEGV and reports instead; not in that build).
        W=$TEST_TMP/segv
        start_waiting listkeys -d "$DB"
        kill -SEGV "$PID"
        S=0; wait "$PID" || S=$?
        expect_equal "listkeys killed by SIGSEGV: exit 139, no core file" "139 0" "$S $(cores_in "$W")"
    fi
else
    skip "no core file after a crash" "core_pattern is \"$PATTERN\" (not a file in the current folder); RLIMIT_CORE and PR_GET_DUMPABLE are checked above"
fi

done_testing
