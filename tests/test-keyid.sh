#!/bin/bash
# caback keyid: key IDs from arguments and stdin, every output form, JSON, the legacy warning,
# refused input (exit 2, naming it), and the whole command against the Python oracle.
. "$CABACK_SRCDIR/tests/lib.sh"

# The worked examples of issue 2 (certutil -K form -> CS.cfg form).
NSS_IDS=(a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3 6006094af3e5d02aaa91426594ca66cb53e73ac0
    ffffffffffffffffceb42c026f8ac01c9782ca73 000000000000000018604db6c7a073ff08338650)
DOGTAG_IDS=(-584f6bb4847c688d65b373650c563d4690b6390d 6006094af3e5d02aaa91426594ca66cb53e73ac0
    -314bd3fd90753fe3687d358d 18604db6c7a073ff08338650)

expect_status 0 "--to dogtag with arguments" "$CABACK" keyid --to dogtag "${NSS_IDS[@]}"
expect_equal "--to dogtag prints the CS.cfg forms in order" "$(printf '%s\n' "${DOGTAG_IDS[@]}")" "$(cat "$OUT")"

# Negative Dogtag IDs are arguments, not options, even without "--".
expect_status 0 "--to nss with Dogtag forms as arguments" "$CABACK" keyid --to nss "${DOGTAG_IDS[@]}"
expect_equal "--to nss prints 40 unsigned digits" "$(printf '%s\n' "${NSS_IDS[@]}")" "$(cat "$OUT")"

expect_status 0 "-- before the IDs" "$CABACK" keyid --to nss -- -1 ff
expect_equal "-- ends the options" "ffffffffffffffffffffffffffffffffffffffff
00000000000000000000000000000000000000ff" "$(cat "$OUT")"

expect_status 0 "--to 0x" "$CABACK" keyid --to 0x -314bd3fd90753fe3687d358d 1
expect_equal "--to 0x prints 0x and 40 digits" "0xffffffffffffffffceb42c026f8ac01c9782ca73
0x0000000000000000000000000000000000000001" "$(cat "$OUT")"

# Other input forms of the same ID.
for form in A7B0944B7B8397729A4C8C9AF3A9C2B96F49C6F3 0xa7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3 \
    0XA7B0944B7B8397729A4C8C9AF3A9C2B96F49C6F3 a7:b0:94:4b:7b:83:97:72:9a:4c:8c:9a:f3:a9:c2:b9:6f:49:c6:f3 \
    A7:B0:94:4B:7B:83:97:72:9A:4C:8C:9A:F3:A9:C2:B9:6F:49:C6:F3 -584F6BB4847C688D65B373650C563D4690B6390D; do
    run "$CABACK" keyid --to dogtag "$form"
    expect_equal "input form $form" "0 -584f6bb4847c688d65b373650c563d4690b6390d" "$STATUS $(cat "$OUT")"
done

# Default output: every form of every ID, readable.
expect_status 0 "default output" "$CABACK" keyid a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3 18604db6c7a073ff08338650
expect_grep "default output names the input" '^input: +a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3$' "$OUT"
expect_grep "default output has the NSS form" '^nss: +a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3$' "$OUT"
expect_grep "default output has the Dogtag form" '^dogtag: +-584f6bb4847c688d65b373650c563d4690b6390d$' "$OUT"
expect_grep "default output has the 0x form" '^0x: +0xa7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3$' "$OUT"
expect_grep "default output: second ID zero-extended" '^nss: +000000000000000018604db6c7a073ff08338650$' "$OUT"
expect_grep "default output marks the legacy problem" '^dogtag: +18604db6c7a073ff08338650 .*10\.5\.6' "$OUT"
expect_equal "default output: 4 lines per ID and a blank line between" 9 "$(wc -l <"$OUT")"
# Values line up: the value column starts at the same place on every line.
expect_equal "default output is aligned" 1 "$(grep -v '^$' "$OUT" | sed 's/^\([a-z0-9]*: *\).*/\1/' | awk '{print length($0)}' | sort -u | wc -l)"

# Standard input: one ID per line, blank lines skipped, spaces and CR trimmed.
printf '%s\n\n   \n  %s  \r\n%s\n' "${NSS_IDS[0]}" "${NSS_IDS[1]}" "${NSS_IDS[2]}" >"$TEST_TMP/ids"
run sh -c '"$1" keyid --to dogtag <"$2"' sh "$CABACK" "$TEST_TMP/ids"
expect_equal "IDs from stdin" "0 $(printf '%s\n' "${DOGTAG_IDS[@]:0:3}")" "$STATUS $(cat "$OUT")"

# --json: one object whose "ids" are objects with every form, parsed by Python's json module.
run "$CABACK" keyid --json "${NSS_IDS[@]}" ba:76
check "--json exits 0" test "$STATUS" -eq 0
cat >"$TEST_TMP/check.py" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["caback"] == 1 and doc["verb"] == "keyid" and doc["ok"] is True, doc
doc = doc["ids"]
nss, dogtag = sys.argv[2].split(), sys.argv[3].split()
assert isinstance(doc, list) and len(doc) == 5, doc
for o, n, d in zip(doc, nss, dogtag):
    assert set(o) >= {"input", "nss", "dogtag", "hex0x", "dogtag_legacy_problem", "nss_id",
                      "dogtag_id"}, o
    assert o["input"] == n and o["nss"] == n and o["dogtag"] == d and o["hex0x"] == "0x" + n, o
    assert o["nss_id"] == o["nss"] and o["dogtag_id"] == o["dogtag"], o
assert [o["dogtag_legacy_problem"] for o in doc] == [False, False, True, True, True], doc
assert doc[4] == {"input": "ba:76", "nss": "0" * 36 + "ba76", "dogtag": "ba76",
                  "hex0x": "0x" + "0" * 36 + "ba76", "dogtag_legacy_problem": True,
                  "nss_id": "0" * 36 + "ba76", "dogtag_id": "ba76"}, doc[4]
EOF
check "--json is valid JSON with every form" "$PYTHON3" "$TEST_TMP/check.py" "$OUT" "${NSS_IDS[*]}" "${DOGTAG_IDS[*]}"

# The legacy warning: on stderr, the command still succeeds.
expect_status 0 "a legacy-problem ID is not an error" "$CABACK" keyid --to dogtag 000000000000000018604db6c7a073ff08338650
expect_equal "its CS.cfg form is still printed" 18604db6c7a073ff08338650 "$(cat "$OUT")"
expect_grep "warning on stderr names the ID and Dogtag 10.5.6" 'warning: key ID 000000000000000018604db6c7a073ff08338650.*10\.5\.6' "$ERR"
expect_status 0 "negative legacy-problem ID" "$CABACK" keyid --to nss -314bd3fd90753fe3687d358d
expect_grep "warning for a short negative ID" 'warning: key ID -314bd3fd90753fe3687d358d' "$ERR"
expect_status 0 "an ordinary ID" "$CABACK" keyid a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3 0080000000000000000000000000000000000000
check "no warning for IDs Dogtag always read" test ! -s "$ERR"

# Refused input: exit 2, the message names the input; valid IDs are still printed.
expect_status 2 "not hex" "$CABACK" keyid caSigningCert
expect_grep "error names the input" 'caback keyid: invalid key ID "caSigningCert".*not a hex digit' "$ERR"
expect_status 2 "longer than 20 bytes" "$CABACK" keyid a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3ab
expect_grep "too long is named" '"a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3ab".*longer than a 20-byte' "$ERR"
expect_status 2 "negative below -2^159" "$CABACK" keyid -- -8000000000000000000000000000000000000001
expect_grep "too small is named" '"-8000000000000000000000000000000000000001"' "$ERR"
expect_status 2 "empty argument" "$CABACK" keyid ""
expect_grep "empty is named" 'invalid key ID "": empty' "$ERR"
expect_status 2 "lone -" "$CABACK" keyid -
expect_grep "lone - is named" 'invalid key ID "-"' "$ERR"
expect_status 2 "-0x is refused" "$CABACK" keyid -0x12
expect_grep "-0x is named" 'invalid key ID "-0x12"' "$ERR"
expect_status 2 "valid and invalid IDs together" "$CABACK" keyid --to dogtag zz "${NSS_IDS[0]}" 12:345 "${NSS_IDS[1]}"
expect_equal "the valid IDs are still converted" "$(printf '%s\n' "${DOGTAG_IDS[@]:0:2}")" "$(cat "$OUT")"
expect_grep "first invalid ID named" 'invalid key ID "zz"' "$ERR"
expect_grep "second invalid ID named" 'invalid key ID "12:345"' "$ERR"
expect_grep "a summary counts them" '2 of 4 key IDs are invalid' "$ERR"
printf '%s\nnot-an-id\n' "${NSS_IDS[3]}" >"$TEST_TMP/bad"
run sh -c '"$1" keyid --to dogtag <"$2"' sh "$CABACK" "$TEST_TMP/bad"
expect_equal "invalid line on stdin: exit 2, valid line converted" "2 ${DOGTAG_IDS[3]}" "$STATUS $(cat "$OUT")"
expect_grep "invalid stdin line named" 'invalid key ID "not-an-id"' "$ERR"

# Usage errors.
expect_status 2 "no ID at all (empty stdin)" "$CABACK" keyid
expect_grep "no ID says how to give them" 'no key ID given' "$ERR"
expect_status 2 "--to with an unknown form" "$CABACK" keyid --to base64 1
expect_grep "unknown form is named" '"base64"' "$ERR"
expect_status 2 "--to with --json" "$CABACK" keyid --to nss --json 1
expect_status 2 "unknown option" "$CABACK" keyid --no-such-option 1

expect_status 0 "caback help keyid" "$CABACK" help keyid
expect_grep "help shows --to" '--to=FORM' "$OUT"
expect_grep "help shows --json" '--json' "$OUT"
expect_grep "help explains the exit status for invalid IDs" 'exit status' "$OUT"

# The whole command against the independent oracle, both directions, thousands of IDs.
"$PYTHON3" "$CABACK_SRCDIR/tests/keyid-oracle.py" 5000 >"$TEST_TMP/oracle"
cut -d' ' -f1 "$TEST_TMP/oracle" >"$TEST_TMP/oracle.nss"
cut -d' ' -f2 "$TEST_TMP/oracle" >"$TEST_TMP/oracle.dogtag"
check "oracle gave at least 5000 IDs" test "$(wc -l <"$TEST_TMP/oracle")" -ge 5000
run sh -c '"$1" keyid --to dogtag <"$2"' sh "$CABACK" "$TEST_TMP/oracle.nss"
cp "$OUT" "$TEST_TMP/got.dogtag"
check "nss -> dogtag: every line equals the oracle" cmp "$TEST_TMP/oracle.dogtag" "$TEST_TMP/got.dogtag"
check "nss -> dogtag exits 0" test "$STATUS" -eq 0
expect_equal "one warning per oracle legacy-problem ID" "$(grep -c ' 1$' "$TEST_TMP/oracle")" "$(grep -c 'warning: key ID' "$ERR")"
run sh -c '"$1" keyid --to nss <"$2"' sh "$CABACK" "$TEST_TMP/oracle.dogtag"
cp "$OUT" "$TEST_TMP/got.nss"
check "dogtag -> nss: every line equals the oracle" cmp "$TEST_TMP/oracle.nss" "$TEST_TMP/got.nss"

done_testing
