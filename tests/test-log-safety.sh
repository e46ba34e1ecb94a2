#!/bin/bash
# The run log and the state folder are opened safely (issue 15 §4): a log (--log or the default)
# that is a symbolic link, a FIFO, a device or another user's file is refused at once, before the
# run changes anything, and the file behind it is untouched; a state folder that is a link, that
# others may write or that belongs to another user is refused, naming it; latest_backup is read
# only when it is a regular file of this user or root.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil

DB=$TEST_TMP/ca
make_dogtag_ca "$DB"
PW=$TEST_TMP/p12.pass
printf 'log safety p12 pass\n' >"$PW"
FAST=(--iterations 2000)
export CABACK_STATE_DIR=$TEST_TMP/state

# backup_with NAME ARGS...: a backup to $TEST_TMP/NAME.p12 with ARGS, under a 20 s timeout (a
# run that waits on a FIFO would otherwise hang the suite; exit 124 then).
backup_with() {
    local name=$1; shift
    run timeout 20 "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/$name.p12" -w "$PW" \
        "${FAST[@]}" "$@"
}
# refused DESCRIPTION NAME PATTERN: the last backup_with NAME exited 1 with PATTERN in its error
# and wrote no backup.
refused() {
    expect_equal "$1: exit 1" 1 "$STATUS"
    expect_grep "$1: the error says why" "$3" "$ERR"
    check "$1: no backup was written" test ! -e "$TEST_TMP/$2.p12"
}

# ---- --log ----
printf 'precious\n' >"$TEST_TMP/target"
chmod 644 "$TEST_TMP/target"
ln -s "$TEST_TMP/target" "$TEST_TMP/link.log"
backup_with link --log "$TEST_TMP/link.log"
refused "a --log that is a symbolic link" link "the log .*link.log is a symbolic link"
expect_equal "the file behind the link is untouched (contents, mode)" "precious 644" \
    "$(cat "$TEST_TMP/target") $(stat -c %a "$TEST_TMP/target")"

# The JSON twin is checked too.
ln -s "$TEST_TMP/target" "$TEST_TMP/twin.log.jsonl"
backup_with twin --log "$TEST_TMP/twin.log"
refused "a --log whose .jsonl twin is a link" twin "twin.log.jsonl is a symbolic link"
check "and the text log was not started" test ! -e "$TEST_TMP/twin.log"

mkfifo "$TEST_TMP/fifo.log"
backup_with fifo --log "$TEST_TMP/fifo.log"
refused "a --log that is a FIFO (no hang: refused at once)" fifo "fifo.log is a FIFO"

backup_with dev --log /dev/null
refused "a --log that is a device" dev "/dev/null is a character device"

# ---- the default log in the state folder ----
mkdir -m 700 "$CABACK_STATE_DIR"
ln -s "$TEST_TMP/target" "$CABACK_STATE_DIR/caback.log"
backup_with deflink
refused "a default log that is a link" deflink "caback.log is a symbolic link"
rm "$CABACK_STATE_DIR/caback.log"
backup_with good
expect_equal "a good state folder and log: the backup works" 0 "$STATUS"
expect_equal "the log caback made is mode 0600" 600 "$(stat -c %a "$CABACK_STATE_DIR/caback.log")"
chmod 640 "$CABACK_STATE_DIR/caback.log"
backup_with good2
expect_equal "an existing log keeps the mode its owner gave it" "0 640" \
    "$STATUS $(stat -c %a "$CABACK_STATE_DIR/caback.log")"

# ---- the state folder ----
mkdir -m 700 "$TEST_TMP/real-state"
ln -s "$TEST_TMP/real-state" "$TEST_TMP/state-link"
CABACK_STATE_DIR=$TEST_TMP/state-link backup_with statelink
refused "a state folder that is a link" statelink "state folder .*state-link is a symbolic link"
check "nothing was written behind the link" test -z "$(ls -A "$TEST_TMP/real-state")"

mkdir -m 777 "$TEST_TMP/open-state"
chmod 777 "$TEST_TMP/open-state"
CABACK_STATE_DIR=$TEST_TMP/open-state backup_with openstate
refused "a world-writable state folder" openstate "state folder .*open-state is writable by everyone \(mode 0777\)"
chmod 1777 "$TEST_TMP/open-state"
CABACK_STATE_DIR=$TEST_TMP/open-state backup_with sticky
refused "a world-writable state folder, even sticky" sticky "open-state is writable by everyone"

# restore automatic reads latest_backup only from a folder that passes.
CABACK_STATE_DIR=$TEST_TMP/open-state run timeout 20 "$CABACK" restore automatic -d "$TEST_TMP/none" -w "$PW"
expect_equal "restore automatic with a world-writable state folder: exit 1" 1 "$STATUS"
expect_grep "restore automatic names the folder" "open-state is writable by everyone" "$ERR"

# ---- another user's files ----
OTHER=cbk-log-$$
if make_test_user "$OTHER"; then
    : >"$TEST_TMP/foreign.log"
    chown "$OTHER" "$TEST_TMP/foreign.log"
    backup_with foreign --log "$TEST_TMP/foreign.log"
    refused "a --log that belongs to another user" foreign "foreign.log belongs to user $OTHER"
    check "another user's log is left empty" test ! -s "$TEST_TMP/foreign.log"

    mkdir -m 700 "$TEST_TMP/their-state"
    chown "$OTHER" "$TEST_TMP/their-state"
    CABACK_STATE_DIR=$TEST_TMP/their-state backup_with theirstate
    refused "a state folder that belongs to another user" theirstate "their-state belongs to user $OTHER"

    # latest_backup planted by another user (in a folder that passes) is not followed.
    cp "$CABACK_STATE_DIR/latest_backup" "$TEST_TMP/latest.before"
    chown "$OTHER" "$CABACK_STATE_DIR/latest_backup"
    run timeout 20 "$CABACK" restore automatic -d "$TEST_TMP/new" --create -f "$DB.pass" -w "$PW"
    expect_equal "restore automatic refuses another user's latest_backup: exit 1" 1 "$STATUS"
    expect_grep "the error names the pointer and its owner" "latest_backup: it belongs to user $OTHER" "$ERR"
    check "no database was made" test ! -e "$TEST_TMP/new/cert9.db"
    chown root "$CABACK_STATE_DIR/latest_backup"
else
    skip "another user's log and state folder" "cannot create a user here (needs root and useradd)"
fi

# latest_backup that is a link is not followed.
mv "$CABACK_STATE_DIR/latest_backup" "$TEST_TMP/latest.real"
ln -s "$TEST_TMP/latest.real" "$CABACK_STATE_DIR/latest_backup"
run timeout 20 "$CABACK" restore automatic -d "$TEST_TMP/new" --create -f "$DB.pass" -w "$PW"
expect_equal "restore automatic refuses a latest_backup link: exit 1" 1 "$STATUS"
expect_grep "the error says it is a link" "latest_backup: it is a symbolic link" "$ERR"

done_testing
