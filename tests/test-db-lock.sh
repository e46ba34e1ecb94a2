#!/bin/bash
# One caback at a time per NSS database (issue 15 §5): backup, restore, fix-clone-ids and verify
# lock DIR/caback.lock with flock (writers exclusive, readers shared) before they read the
# database; a second run says "waiting for another caback run on DIR (pid N)", waits up to
# --wait SECONDS and then fails with exit 1, the database unchanged. Two restores of different
# files into one database at once both end with their keys in it. The lock file is opened
# safely (a link, a FIFO, another user's file are refused), and a reader that may not write the
# folder still reads.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil "$PYTHON3"

DB=$TEST_TMP/ca
make_dogtag_ca "$DB"
issue_cert "$DB" "extra one" "CN=Extra One,O=EXAMPLE.TEST" "u,u,u"
issue_cert "$DB" "extra two" "CN=Extra Two,O=EXAMPLE.TEST" "u,u,u"
PW=$TEST_TMP/p12.pass
printf 'db lock p12 pass\n' >"$PW"
FAST=(--iterations 2000)
for n in one two; do
    "$CABACK" backup -q -d "$DB" -f "$DB.pass" -n "extra $n" -o "$TEST_TMP/$n.p12" -w "$PW" "${FAST[@]}" ||
        not_ok "backup of extra $n"
done
T=$TEST_TMP/target
make_nssdb "$T"
make_cscfg "$DB" "$TEST_TMP/CS.cfg"
LOCK=$T/caback.lock

snapshot() { cat "$T/cert9.db" "$T/key4.db" | sha256sum | cut -c1-64; }
restore_of() { # restore_of NAME [OPTIONS...]: restore NAME.p12 into $T
    local n=$1; shift
    "$CABACK" restore -i "$TEST_TMP/$n.p12" -w "$PW" -d "$T" -f "$T.pass" "$@"
}

# hold MODE: a process holding a flock on $LOCK (MODE -x or -s) until $TEST_TMP/release exists;
# its pid in $HOLDER (the process that took the lock, as /proc/locks lists it).
hold() {
    rm -f "$TEST_TMP/held" "$TEST_TMP/release"
    "$PYTHON3" - "$LOCK" "$1" "$TEST_TMP/held" "$TEST_TMP/release" <<'PY' &
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT, 0o640)
fcntl.flock(fd, fcntl.LOCK_EX if sys.argv[2] == "-x" else fcntl.LOCK_SH)
open(sys.argv[3], "w").close()
while not os.path.exists(sys.argv[4]):
    time.sleep(0.05)
PY
    HOLDER=$!
    gone_within 30 test ! -e "$TEST_TMP/held" || diag "the holder did not take the lock"
}
release() { : >"$TEST_TMP/release"; wait "$HOLDER" 2>/dev/null; }

# ---- a writer and a holder of the exclusive lock ----
check "the lock file is made beside the database" test -f "$LOCK" -o ! -e "$LOCK"
hold -x
expect_equal "the lock file is a regular file mode 0640" "regular empty file 640" "$(stat -c '%F %a' "$LOCK")"
BEFORE=$(snapshot)
expect_status 1 "restore while another run holds the database, --wait 1" restore_of one --wait 1
expect_grep "it says it waits, naming the folder and the holder's pid" \
    "^caback: waiting for another caback run on $T \(pid $HOLDER\)$" "$ERR"
expect_grep "then it gives up, saying nothing was changed" "still holds NSS database $T after 1 seconds; nothing was changed" "$ERR"
expect_equal "the database is unchanged" "$BEFORE" "$(snapshot)"

expect_status 1 "a reader (backup) with --wait 0 does not wait" \
    "$CABACK" backup -d "$T" -f "$T.pass" -o "$TEST_TMP/r0.p12" -w "$PW" "${FAST[@]}" --wait 0
expect_no_grep "--wait 0: no waiting message" "waiting for" "$ERR"
expect_grep "--wait 0: the error names the holder" "another caback run \(pid $HOLDER\) still holds" "$ERR"
check "--wait 0: no backup written" test ! -e "$TEST_TMP/r0.p12"
expect_status 1 "verify -d waits for the writer too" \
    "$CABACK" verify "$TEST_TMP/one.p12" -w "$PW" -d "$T" -f "$T.pass" --wait 0
expect_status 1 "fix-clone-ids waits for the writer too" \
    "$CABACK" fix-clone-ids --dry-run "$TEST_TMP/CS.cfg" -d "$T" -f "$T.pass" --wait 0
expect_grep "fix-clone-ids names the holder" "another caback run \(pid $HOLDER\)" "$ERR"
release

# ---- a writer that waits, then runs; two restores at once ----
hold -x
restore_of one --wait 120 >"$TEST_TMP/one.out" 2>"$TEST_TMP/one.err" </dev/null &
P1=$!
restore_of two --wait 120 >"$TEST_TMP/two.out" 2>"$TEST_TMP/two.err" </dev/null &
P2=$!
# Both are waiting before the lock is let go: no race decides the order of events.
gone_within 60 bash -c "! grep -q 'waiting for another' '$TEST_TMP/one.err' || ! grep -q 'waiting for another' '$TEST_TMP/two.err'" ||
    diag "the two restores did not both wait"
release
S1=0; wait "$P1" || S1=$?
S2=0; wait "$P2" || S2=$?
expect_equal "two restores of different files into one database at once: both exit 0" "0 0" "$S1 $S2"
diag "$(cat "$TEST_TMP/one.err" "$TEST_TMP/two.err")"
certutil -L -d "sql:$T" >"$TEST_TMP/certs"
certutil -K -d "sql:$T" -f "$T.pass" >"$TEST_TMP/keys" 2>&1
expect_grep "the first file's certificate is there" "^extra one " "$TEST_TMP/certs"
expect_grep "the second file's certificate is there" "^extra two " "$TEST_TMP/certs"
expect_grep "the first file's key is there" "extra one$" "$TEST_TMP/keys"
expect_grep "the second file's key is there" "extra two$" "$TEST_TMP/keys"

# ---- readers share ----
hold -s
expect_status 0 "a reader (backup) runs while another reader holds the lock" \
    "$CABACK" backup -d "$T" -f "$T.pass" -o "$TEST_TMP/shared.p12" -w "$PW" "${FAST[@]}" --wait 0
expect_no_grep "and does not wait" "waiting for" "$ERR"
BEFORE=$(snapshot)
expect_status 1 "a writer (restore) waits for the reader" restore_of one --wait 1
expect_grep "and says so" "waiting for another caback run on $T \(pid $HOLDER\)" "$ERR"
expect_equal "the database is unchanged" "$BEFORE" "$(snapshot)"
release

expect_status 2 "--wait -1 is a usage error" restore_of one --wait -1

# ---- the lock file itself ----
BEFORE=$(snapshot)
mv "$LOCK" "$TEST_TMP/lock.real"
ln -s "$TEST_TMP/lock.real" "$LOCK"
expect_status 1 "a lock file that is a symbolic link is refused" restore_of one --wait 1 --replace
expect_grep "the error says so" "lock file $LOCK is a symbolic link" "$ERR"
rm "$LOCK"
mkfifo "$LOCK"
run timeout 20 "$CABACK" restore -i "$TEST_TMP/one.p12" -w "$PW" -d "$T" -f "$T.pass" --replace --wait 1
expect_equal "a lock file that is a FIFO is refused at once" 1 "$STATUS"
expect_grep "the error says it is not a regular file" "refusing the lock file $LOCK .*not a regular file" "$ERR"
rm "$LOCK"
expect_equal "the database is unchanged by the refusals" "$BEFORE" "$(snapshot)"

OTHER=cbk-lock-$$
if make_test_user "$OTHER"; then
    : >"$LOCK"
    chown "$OTHER" "$LOCK"
    expect_status 1 "a lock file of another user is refused" restore_of one --wait 1 --replace
    expect_grep "the error names the lock file" "refusing the lock file $LOCK .*belongs to uid $(id -u "$OTHER")" "$ERR"
    expect_equal "the database is unchanged" "$BEFORE" "$(snapshot)"
    rm -f "$LOCK"

    # A reader in a folder it may read but not write: no lock file can be made, and it reads.
    RO=$TEST_TMP/ro
    cp -r "$T" "$RO"
    cp "$T.pass" "$RO.pass"
    rm -f "$RO/caback.lock"
    chmod 755 "$TEST_TMP" "$RO"
    chmod 644 "$RO"/*.db "$RO.pass"
    mkdir -m 700 "$TEST_TMP/theirs"
    chown "$OTHER" "$TEST_TMP/theirs"
    chmod 644 "$PW"
    run setpriv --reuid="$OTHER" --regid="$(id -g "$OTHER")" --clear-groups \
        env CABACK_STATE_DIR="$TEST_TMP/theirs/state" \
        "$CABACK" backup -d "$RO" -f "$RO.pass" -o "$TEST_TMP/theirs/ro.p12" -w "$PW" "${FAST[@]}"
    expect_equal "a reader that may not write the folder still backs up" 0 "$STATUS"
    diag "$(cat "$ERR")"
    expect_grep "and warns that it reads without the lock" "warning: cannot lock NSS database $RO .*reading it without the lock" "$ERR"
    check "no lock file appeared" test ! -e "$RO/caback.lock"
else
    skip "another user's lock file; a reader of a folder it cannot write" "cannot create a user here"
fi

done_testing
