#!/bin/bash
# caback verify automatic and --max-age: the drill of the newest recorded backup, as the weekly
# caback-verify.timer runs it; a changed file, a missing record and a backup job that stopped
# running all fail it (exit 1).
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil

db=$TEST_TMP/alias
make_dogtag_ca "$db"
printf 'verify automatic p12 pass\n' >"$TEST_TMP/p12.pass"
latest=$CABACK_STATE_DIR/latest_backup

expect_status 1 "verify automatic with no recorded backup" \
    "$CABACK" verify automatic -w "$TEST_TMP/p12.pass"
expect_grep "says no backup is recorded" 'no backup has been recorded yet' "$ERR"
expect_status 2 "--max-age takes a number" \
    "$CABACK" verify automatic -w "$TEST_TMP/p12.pass" --max-age soon
expect_grep "the usage error names --max-age" 'max-age takes a whole number' "$ERR"

expect_status 0 "backup records the newest backup" \
    "$CABACK" backup -d "$db" -f "$db.pass" -o "$TEST_TMP/ca.p12" -w "$TEST_TMP/p12.pass" --iterations 2000
expect_grep "the record carries the time it was made" '^recorded=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "$latest"

expect_status 0 "verify automatic drills the newest backup against the live database" \
    "$CABACK" verify automatic -w "$TEST_TMP/p12.pass" -d "$db" -f "$db.pass" --max-age 1
expect_grep "names the newest backup" "ca\.p12" "$OUT"

# A backup recorded ten days ago: the drill still passes without --max-age, fails with 2 days.
sed -i "s/^recorded=.*/recorded=$(date -u -d '10 days ago' +%Y-%m-%dT%H:%M:%SZ)/" "$latest"
expect_status 0 "an old backup passes without --max-age" \
    "$CABACK" verify automatic -w "$TEST_TMP/p12.pass"
expect_status 1 "an old backup fails --max-age 2" \
    "$CABACK" verify automatic -w "$TEST_TMP/p12.pass" --max-age 2
expect_grep "says how old it is and names --max-age" 'ca\.p12, was made .*10\.0 days ago: older than --max-age 2' "$ERR"
expect_status 1 "--max-age also applies to an explicit file" \
    "$CABACK" verify "$TEST_TMP/ca.p12" -w "$TEST_TMP/p12.pass" --max-age 9
run "$CABACK" verify automatic -w "$TEST_TMP/p12.pass" --max-age 2 --json
json_checks "JSON of the --max-age failure" "$OUT" \
    "any('older than --max-age 2' in p for p in r['problems'])"

# A record from an older caback, without a time: --max-age cannot be judged, so it fails.
sed -i '/^recorded=/d' "$latest"
expect_status 1 "a record without a time fails --max-age" \
    "$CABACK" verify automatic -w "$TEST_TMP/p12.pass" --max-age 30
expect_grep "says the time is missing and how to fix it" 'not when it was made.*run a new backup' "$ERR"

# Another valid backup put in the recorded file's place: not the backup that was verified.
expect_status 0 "a second backup to another name" \
    "$CABACK" backup -d "$db" -f "$db.pass" -o "$TEST_TMP/other.p12" -w "$TEST_TMP/p12.pass" --iterations 2000 --no-verify
cp "$TEST_TMP/other.p12" "$TEST_TMP/ca.p12"
expect_status 1 "verify automatic refuses a file that changed after it was recorded" \
    "$CABACK" verify automatic -w "$TEST_TMP/p12.pass"
expect_grep "says it changed after it was recorded" 'changed after caback backup recorded it' "$ERR"

# A file that is not the newest backup: its digest is the one its backup's record in the run log
# gives (the last successful one), not the latest_backup pointer's.
expect_status 0 "a third backup, now the newest" \
    "$CABACK" backup -d "$db" -f "$db.pass" -o "$TEST_TMP/third.p12" -w "$TEST_TMP/p12.pass" --iterations 2000
expect_grep "the pointer names the third" 'third\.p12' "$latest"
expect_status 0 "verify of the changed file by name (not the newest backup)" \
    "$CABACK" verify "$TEST_TMP/ca.p12" -w "$TEST_TMP/p12.pass"
expect_grep "the log's record says it is not the file backup wrote" \
    'ca\.p12 is not the file caback backup wrote under this name: its SHA-256 is [0-9a-f]{64}, the backup.s record in .*\.jsonl recorded [0-9a-f]{64}' "$ERR"
expect_status 0 "verify of the newest backup by name" \
    "$CABACK" verify "$TEST_TMP/other.p12" -w "$TEST_TMP/p12.pass"
expect_no_grep "the newest backup is the file backup wrote" 'is not the file caback backup wrote' "$ERR"
done_testing
