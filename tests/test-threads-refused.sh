#!/bin/bash
# No crash or hang when the system refuses a thread (issue 16 §1): the key derivations started
# in the background (the KDF jobs of backup), the parallel derivations of list / restore /
# verify and the parallel key work run on the threads the system gives, or serially on the
# calling thread when it gives none; the results are the same as without a limit. Two ways to
# refuse threads:
# - ulimit -v with a thread stack size (ulimit -s) larger than the address space left: every
#   pthread_create fails for lack of memory, the process itself runs. Not under AddressSanitizer,
#   which reserves terabytes of address space (a TAP skip there; the next way covers it).
# - RLIMIT_NPROC (prlimit) for a user of its own, which root cannot be held to: 1 process means
#   no thread at all, 2 means one more thread.
# Each run is under `timeout`, so a hang is a failure (exit 124), not a stuck suite.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil prlimit setpriv timeout

DB=$TEST_TMP/ca
make_dogtag_ca "$DB"
PW=$TEST_TMP/p12.pass
printf 'threads refused p12 pass\n' >"$PW"
FAST=(--iterations 20000)
ASAN=no
grep -qa __asan_init "$CABACK" && ASAN=yes

# The reference: what the same verbs give without any limit.
"$CABACK" backup -q -d "$DB" -f "$DB.pass" -o "$TEST_TMP/ref.p12" -w "$PW" "${FAST[@]}" ||
    not_ok "reference backup"
"$CABACK" list --json "$TEST_TMP/ref.p12" -w "$PW" >"$TEST_TMP/ref.list" || not_ok "reference list"
key_ids() { certutil -K -d "sql:$1" -f "$1.pass" 2>/dev/null | sed -n 's/^<[ 0-9]*> [a-z]* *\([0-9a-f]*\) .*/\1/p' | sort; }
REF_KEYS=$(key_ids "$DB")

# verbs LABEL WRAPPER...: backup, list, verify and restore under WRAPPER (a command prefix that
# sets the limit), each checked for its exit status and its result. $W is a folder the
# wrapped process may write.
verbs() {
    local label=$1; shift
    rm -rf "$W/out.p12" "$W/new" "$W/new.pass" "$W/state"
    cp "$DB.pass" "$W/new.pass"
    run timeout 300 "$@" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$W/out.p12" -w "$PW" "${FAST[@]}"
    expect_equal "$label: backup exits 0 (no crash, no hang)" 0 "$STATUS"
    [ "$STATUS" -eq 0 ] || diag "$(head -c 1500 "$ERR")"
    run timeout 300 "$@" "$CABACK" list --json "$TEST_TMP/ref.p12" -w "$PW"
    expect_equal "$label: list exits 0" 0 "$STATUS"
    check "$label: list shows what it shows without a limit" cmp -s "$OUT" "$TEST_TMP/ref.list"
    run timeout 300 "$@" "$CABACK" verify "$W/out.p12" -w "$PW"
    expect_equal "$label: verify of the backup made under the limit exits 0" 0 "$STATUS"
    [ "$STATUS" -eq 0 ] || diag "$(head -c 1500 "$ERR")"
    run timeout 300 "$@" "$CABACK" restore -i "$TEST_TMP/ref.p12" -w "$PW" -d "$W/new" --create -f "$W/new.pass"
    expect_equal "$label: restore exits 0" 0 "$STATUS"
    [ "$STATUS" -eq 0 ] || diag "$(head -c 1500 "$ERR")"
    expect_equal "$label: the restored keys are the source's" "$REF_KEYS" "$(key_ids "$W/new")"
}

# ---- ulimit -v: no memory for a thread's stack ----
W=$TEST_TMP/v
mkdir -m 700 "$W"
export CABACK_STATE_DIR=$W/state
if [ "$ASAN" = yes ]; then
    skip "ulimit -v" "AddressSanitizer reserves more address space than any useful ulimit -v; RLIMIT_NPROC below covers this build"
else
    # A 1 GiB default thread stack in 768 MiB of address space: every thread is refused, while
    # caback itself (its main stack grows as used) runs.
    verbs "ulimit -v (no thread possible)" bash -c 'ulimit -s 1048576 && ulimit -v 786432 && exec "$@"' limit
fi

# ---- RLIMIT_NPROC, for a user of its own ----
OTHER=cbk-thr-$$
if make_test_user "$OTHER"; then
    W=$TEST_TMP/n
    mkdir -m 700 "$W"
    chown "$OTHER" "$W"
    chmod 755 "$TEST_TMP"
    chmod 644 "$DB"/*.db "$DB.pass" "$PW" "$TEST_TMP/ref.p12"
    chmod 755 "$DB"
    as_other=(setpriv --reuid="$OTHER" --regid="$(id -g "$OTHER")" --clear-groups
        env CABACK_STATE_DIR="$W/state")
    if [ "$ASAN" = yes ]; then
        # LeakSanitizer needs a thread of its own at exit, which this limit refuses; the other
        # checks (use after free, double free) stay on. Reports go where this user may write.
        as_other+=(ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:log_path=$W/asan")
    fi
    for n in 1 2; do
        verbs "RLIMIT_NPROC $n (as $OTHER)" prlimit --nproc="$n:$n" "${as_other[@]}"
    done
    if [ "$ASAN" = yes ]; then
        reports=$(find "$W" -maxdepth 1 -name 'asan*' -size +0 | head -3)
        expect_equal "no sanitizer report under RLIMIT_NPROC" "" "$reports"
        [ -z "$reports" ] || diag "$(cat $reports | head -40)"
    fi
else
    skip "RLIMIT_NPROC" "cannot create a user here (needs root and useradd)"
fi

done_testing
