#!/bin/bash
# caback restore automatic: the newest verified backup, refused when gone or changed.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil

db=$TEST_TMP/alias
make_dogtag_ca "$db"
printf 'automatic restore p12 pass\n' >"$TEST_TMP/p12.pass"

expect_status 1 "no recorded backup yet" "$CABACK" restore automatic -d "$TEST_TMP/none" -w "$TEST_TMP/p12.pass"
expect_grep "says no backup is recorded" 'no newest backup is recorded' "$ERR"

expect_status 0 "backup records the newest backup" \
    "$CABACK" backup -d "$db" -f "$db.pass" -o "$TEST_TMP/old.p12" -w "$TEST_TMP/p12.pass" --iterations 2000
expect_status 0 "a second backup becomes the newest" \
    "$CABACK" backup -d "$db" -f "$db.pass" -o "$TEST_TMP/new.p12" -w "$TEST_TMP/p12.pass" --iterations 2000

printf 'restored db pass\n' >"$TEST_TMP/restored.pass"
expect_status 0 "restore automatic restores it" \
    "$CABACK" restore automatic -d "$TEST_TMP/restored" --create -f "$TEST_TMP/restored.pass" -w "$TEST_TMP/p12.pass"
expect_grep "names the newest backup" "new\.p12" "$OUT"
src=$(certutil_key_ids "$db" | cut -d' ' -f1 | sort)
printf '%s\n' "restored db pass" >"$TEST_TMP/restored.pass"
dst=$(certutil -K -d "sql:$TEST_TMP/restored" -f "$TEST_TMP/restored.pass" 2>/dev/null | grep -o '[0-9a-f]\{40\}' | sort)
expect_equal "restored database has the source's key IDs" "$src" "$dst"

expect_status 2 "automatic with -i is a usage error" \
    "$CABACK" restore automatic -i "$TEST_TMP/old.p12" -d "$TEST_TMP/restored" -f "$TEST_TMP/restored.pass" -w "$TEST_TMP/p12.pass"

cp "$TEST_TMP/new.p12" "$TEST_TMP/new.p12.orig"
printf '\0' >>"$TEST_TMP/new.p12"
listing_before=$(certutil -L -d "sql:$TEST_TMP/restored")
expect_status 1 "a modified newest backup is refused" \
    "$CABACK" restore automatic -d "$TEST_TMP/restored" -f "$TEST_TMP/restored.pass" -w "$TEST_TMP/p12.pass"
expect_grep "says the file changed since it was verified" 'changed since it was verified' "$ERR"
expect_equal "database unchanged after the refusal" "$listing_before" "$(certutil -L -d "sql:$TEST_TMP/restored")"

mv "$TEST_TMP/new.p12.orig" "$TEST_TMP/moved.p12"
rm -f "$TEST_TMP/new.p12"
expect_status 1 "a moved newest backup is refused" \
    "$CABACK" restore automatic -d "$TEST_TMP/restored" -f "$TEST_TMP/restored.pass" -w "$TEST_TMP/p12.pass"
expect_grep "says the file is gone" 'is gone' "$ERR"
expect_no_grep "no password in the error" 'automatic restore p12 pass|restored db pass' "$ERR"
done_testing
