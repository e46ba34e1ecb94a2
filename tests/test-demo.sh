#!/bin/bash
# make demo works: it runs every step on a fresh demo CA and shows the expected results.
. "$CABACK_SRCDIR/tests/lib.sh"

demo=$TEST_TMP/demo-ca
run bash "$CABACK_SRCDIR/tests/demo.sh" "$CABACK" "$demo"
if [ "$STATUS" -eq 0 ]; then ok "demo runs to the end"; else
    not_ok "demo exit $STATUS"; diag "$(tail -30 "$OUT")" "$(tail -30 "$ERR")"; fi
expect_grep "demo lists the CA signing key" 'caSigningCert cert-pki-ca' "$OUT"
expect_grep "demo prints a Dogtag-form key ID" '(^|[ :])-?[0-9a-f]{20,40}$' "$OUT"
expect_grep "demo finds the re-keyed subsystem stale" 'STALE' "$OUT"
check "demo CS.cfg was repaired and its backup kept" ls "$demo"/CS.cfg.[0-9]*
check "demo backup file exists and is mode 0600" test "$(stat -c %a "$demo/ca-backup.p12")" = 600
run "$CABACK" fix-clone-ids "$demo/CS.cfg" -d "$demo/alias" -f "$demo/alias.pass"
expect_equal "after the demo the CS.cfg is all OK" 0 "$STATUS"
# The backup really holds the CA: pk12util lists 5 keys from it.
if command -v pk12util >/dev/null; then
    run pk12util -l "$demo/ca-backup.p12" -w "$demo/p12.pass"
    expect_equal "pk12util reads the demo backup" 0 "$STATUS"
fi
expect_grep "demo lists the backup's keys" 'caSigningCert cert-pki-ca' "$OUT"
# The restored database holds the same keys as the source (compared with certutil itself).
printf '%s\n' "$(cat "$demo/restored.pass")" >"$TEST_TMP/restored.pass"
src_ids=$(certutil -K -d "sql:$demo/alias" -f "$demo/alias.pass" 2>/dev/null | grep -o '[0-9a-f]\{40\}' | sort)
dst_ids=$(certutil -K -d "sql:$demo/restored" -f "$demo/restored.pass" 2>/dev/null | grep -o '[0-9a-f]\{40\}' | sort)
# The re-keyed subsystem's old key is an orphan in the source and is not backed up.
missing=$(comm -23 <(echo "$src_ids") <(echo "$dst_ids") | wc -l)
extra=$(comm -13 <(echo "$src_ids") <(echo "$dst_ids") | wc -l)
expect_equal "restored database has every certified key of the demo CA (1 orphan left out)" "1 0" "$missing $extra"
done_testing
