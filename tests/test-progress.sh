#!/bin/bash
# The progress line of backup, restore and verify: on standard error only, when it is a terminal
# or with --progress; never with --no-progress, -q or --json; rewritten in place (\r) with what is
# done, of how much, and the time elapsed, and cleared at the end.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil

DB=$TEST_TMP/alias
make_dogtag_ca "$DB"
PW=$TEST_TMP/p12.pass
printf 'progress p12 pass\n' >"$PW"
FAST=(--iterations 2000)
cr=$'\r'
clear=$'\r\033[K'

expect_status 0 "backup --progress" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/a.p12" -w "$PW" "${FAST[@]}" --progress
expect_grep "the line says what is done, of how much, and the time" \
    'caback backup: \[5/5\] checking the private key of "[^"]+" \([0-9a-f]{40}\) \([0-9]+\.[0-9] s\)' "$ERR"
expect_grep "the encrypting step is shown too" '\[[1-5]/5\] encrypting the private key of' "$ERR"
check "the line is rewritten in place (carriage returns, no line per key)" \
    test "$(grep -c 'checking the private key' "$ERR")" -le 1
check "the line is cleared at the end" test "$(tail -c 4 "$ERR")" = "$clear"
expect_no_grep "standard output carries no progress" "$cr|\[[0-9]+/[0-9]+\]" "$OUT"

expect_status 0 "backup to a file, without --progress" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/b.p12" -w "$PW" "${FAST[@]}"
expect_no_grep "no progress when standard error is not a terminal" '\[[0-9]+/5\]' "$ERR"
expect_status 0 "backup --progress -q" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/c.p12" -w "$PW" "${FAST[@]}" --progress -q
check "-q turns the progress off" test ! -s "$ERR"
expect_status 0 "backup --progress --json" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/d.p12" -w "$PW" "${FAST[@]}" --progress --json
expect_no_grep "--json turns the progress off" '\[[0-9]+/5\]' "$ERR"
check "--json output is still one JSON document" "$PYTHON3" -c 'import json,sys; json.load(open(sys.argv[1]))' "$OUT"
expect_status 2 "--progress with --no-progress is a usage error" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/e.p12" -w "$PW" --progress --no-progress
check "the refused run wrote nothing" test ! -e "$TEST_TMP/e.p12"

printf 'restored db pass\n' >"$TEST_TMP/new.pass"
expect_status 0 "restore --progress" "$CABACK" restore -i "$TEST_TMP/a.p12" -w "$PW" -d "$TEST_TMP/new" --create -f "$TEST_TMP/new.pass" --progress --no-signature-check
expect_grep "restore shows the keys it stores" 'caback restore: \[5/5\] storing keys' "$ERR"
expect_grep "restore shows the certificates it stores" 'caback restore: \[[0-9]+/[0-9]+\] storing certificates' "$ERR"
expect_no_grep "restore: standard output carries no progress" "$cr" "$OUT"

expect_status 0 "verify --progress" "$CABACK" verify "$TEST_TMP/a.p12" -w "$PW" --progress
expect_grep "verify shows the key checks" 'caback verify: \[5/5\] checking that each key signs' "$ERR"
expect_grep "verify shows the chain checks" 'caback verify: \[[0-9]+/[0-9]+\] checking the chain of each certificate' "$ERR"
expect_status 0 "verify --no-progress" "$CABACK" verify "$TEST_TMP/a.p12" -w "$PW" --no-progress
expect_no_grep "--no-progress shows none" "$cr" "$ERR"

if command -v script >/dev/null 2>&1; then
    script -qec "\"$CABACK\" verify \"$TEST_TMP/a.p12\" -w \"$PW\"" /dev/null >"$TEST_TMP/tty.txt" 2>&1 </dev/null
    expect_grep "on a terminal verify shows the line without --progress" '\[5/5\] checking that each key signs' "$TEST_TMP/tty.txt"
else
    skip "progress on a terminal" "script is not installed"
fi
done_testing
