#!/bin/bash
# caback listkeys / -K against certutil -K on the same database: key IDs, nicknames, indexes,
# orphans after a re-key, JSON, and the password matrix (file, password.conf, environment, wrong,
# none without a terminal, database without password).
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil setsid

DB=$TEST_TMP/ca
make_dogtag_ca "$DB"

# "INDEX ID NICKNAME" lines of certutil -K, with the internal token's "NSS Certificate DB:"
# prefix removed (caback prints nicknames as certutil -n and CS.cfg take them).
certutil_listing() {
    certutil -K -d "sql:$1" -f "$1.pass" 2>/dev/null |
        sed -n 's/^< *\([0-9]*\)> *\([a-zA-Z]*\) *\([0-9a-f]\{40\}\) *\(.*\)$/\1 \2 \3 \4/p' |
        sed 's/ NSS Certificate DB:/ /'
}
# The same fields from caback's table.
caback_listing() {
    sed -n 's/^ *\([0-9][0-9]*\)  \([a-zA-Z]*\) *[0-9?]* *\([0-9a-f]\{40\}\) *-\{0,1\}[0-9a-f]* *\(.*\)$/\1 \2 \3 \4/p' "$1"
}

expect_status 0 "listkeys with -f (plain password file)" "$CABACK" listkeys -d "$DB" -f "$DB.pass"
caback_listing "$OUT" >"$TEST_TMP/caback.txt"
certutil_listing "$DB" >"$TEST_TMP/certutil.txt"
expect_equal "five keys listed" 5 "$(wc -l <"$TEST_TMP/caback.txt")"
check "index, type, key ID and nickname equal certutil -K's" cmp "$TEST_TMP/certutil.txt" "$TEST_TMP/caback.txt"
[ -s "$TEST_TMP/caback.txt" ] || diag "$(cat "$OUT")"
expect_equal "the set of (key ID, nickname) equals certutil_key_ids" \
    "$(certutil_key_ids "$DB" | sed 's/ NSS Certificate DB:/ /')" \
    "$(cut -d' ' -f3- "$TEST_TMP/caback.txt" | sort)"
expect_grep "the table names the CA signing certificate" ' caSigningCert cert-pki-ca$' "$OUT"
expect_grep "the table shows key sizes" '^ *0  rsa +2048 ' "$OUT"

expect_status 0 "-K is listkeys" "$CABACK" -K -d "$DB" -f "$DB.pass"
caback_listing "$OUT" >"$TEST_TMP/alias.txt"
check "-K prints the same keys" cmp "$TEST_TMP/caback.txt" "$TEST_TMP/alias.txt"

# --json: checked against certutil -K, with the Dogtag form recomputed by Python.
cat >"$TEST_TMP/check.py" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
want = {}
for line in open(sys.argv[2]):
    index, ktype, kid, nick = line.rstrip('\n').split(' ', 3)
    want[int(index)] = (ktype, kid, None if nick == '(orphan)' else nick)
assert doc["database"] == sys.argv[3], doc["database"]
assert doc["token"] == "NSS Certificate DB", doc["token"]
keys = doc["keys"]
assert len(keys) == len(want), (len(keys), len(want))
for k in keys:
    ktype, kid, nick = want[k["index"]]
    assert k["type"] == ktype and k["id"] == kid and k["nickname"] == nick, (k, want[k["index"]])
    assert k["orphan"] == (nick is None), k
    v = int.from_bytes(bytes.fromhex(kid), 'big', signed=True)
    assert k["dogtag_id"] == (('-' + format(-v, 'x')) if v < 0 else format(v, 'x')), k
    assert isinstance(k["size"], int) and k["size"] == int(sys.argv[4] if ktype == 'rsa' else 256), k
print(sum(1 for k in keys if k["orphan"]))
EOF
expect_status 0 "--json" "$CABACK" listkeys --json -d "$DB" -f "$DB.pass"
cp "$OUT" "$TEST_TMP/keys.json"
run "$PYTHON3" "$TEST_TMP/check.py" "$TEST_TMP/keys.json" "$TEST_TMP/certutil.txt" "$DB" 2048
expect_equal "--json equals certutil -K, no orphan" "0 0" "$STATUS $(cat "$OUT")"
[ "$STATUS" -eq 0 ] || diag "$(cat "$ERR")"

# Re-keying a subsystem certificate leaves its old key without a certificate: an orphan.
old_id=$(certutil_key_ids "$DB" | sed -n 's/^\([0-9a-f]*\) NSS Certificate DB:subsystemCert cert-pki-ca$/\1/p')
rekey_cert "$DB" "subsystemCert cert-pki-ca"
expect_status 0 "listkeys after a re-key" "$CABACK" listkeys -d "$DB" -f "$DB.password.conf"
caback_listing "$OUT" >"$TEST_TMP/caback.txt"
certutil_listing "$DB" >"$TEST_TMP/certutil.txt"
check "after the re-key the listing equals certutil -K's" cmp "$TEST_TMP/certutil.txt" "$TEST_TMP/caback.txt"
expect_grep "the old subsystem key is an orphan" "^ *[0-9]+  rsa +2048  $old_id +-?[0-9a-f]+ +\\(orphan\\)$" "$OUT"
expect_equal "six keys, one orphan" "6 1" "$(wc -l <"$TEST_TMP/caback.txt") $(grep -c '(orphan)' "$TEST_TMP/caback.txt")"

# A key generated without any certificate (EC this time): type and size, orphan in JSON.
certutil -G -d "sql:$DB" -f "$DB.pass" -z "$DB.noise" -k ec -q nistp256 >/dev/null 2>&1
certutil_listing "$DB" >"$TEST_TMP/certutil.txt"
expect_status 0 "--json with an EC orphan key" "$CABACK" listkeys --json -d "$DB" -f "$DB.pass"
cp "$OUT" "$TEST_TMP/keys.json"
run "$PYTHON3" "$TEST_TMP/check.py" "$TEST_TMP/keys.json" "$TEST_TMP/certutil.txt" "$DB" 2048
expect_equal "--json equals certutil -K, two orphans (rsa and ec 256)" "0 2" "$STATUS $(cat "$OUT")"
[ "$STATUS" -eq 0 ] || diag "$(cat "$ERR")"

# Password sources.
export CABACK_TEST_PW="$FIXTURE_DB_PASSWORD"
expect_status 0 "--password-env" "$CABACK" listkeys -d "$DB" --password-env CABACK_TEST_PW
expect_equal "--password-env lists the keys" 7 "$(caback_listing "$OUT" | wc -l)"
expect_status 0 "-f with password.conf" "$CABACK" listkeys -d "sql:$DB" -f "$DB.password.conf"
expect_equal "sql: prefix and password.conf list the keys" 7 "$(caback_listing "$OUT" | wc -l)"

printf 'Wrong-Secret-4711\n' >"$TEST_TMP/wrong.pass"
expect_status 3 "wrong password" "$CABACK" listkeys -d "$DB" -f "$TEST_TMP/wrong.pass"
expect_grep "wrong password names the database" "$DB" "$ERR"
expect_no_grep "the wrong password is not printed" 'Wrong-Secret-4711' "$ERR"
expect_no_grep "nothing printed on stdout for a wrong password" 'Wrong-Secret-4711|rsa' "$OUT"
export CABACK_WRONG_PW=Wrong-Secret-4711
expect_status 3 "wrong password from the environment" "$CABACK" listkeys -d "$DB" --password-env CABACK_WRONG_PW
expect_no_grep "the wrong password is not printed (env)" 'Wrong-Secret-4711' "$ERR"

expect_status 1 "no password source and no terminal" setsid -w "$CABACK" listkeys -d "$DB"
expect_grep "the message names -f and --password-env" '\-f.*--password-env' "$ERR"

expect_status 1 "--password-env names an unset variable" env -u CABACK_UNSET_PW "$CABACK" listkeys -d "$DB" --password-env CABACK_UNSET_PW
expect_grep "the unset variable is named" 'CABACK_UNSET_PW' "$ERR"

expect_status 1 "missing database folder" "$CABACK" listkeys -d "$TEST_TMP/no-such-db" -f "$DB.pass"
expect_grep "the missing folder is named" "$TEST_TMP/no-such-db" "$ERR"
mkdir -p "$TEST_TMP/not-a-db"
expect_status 1 "a folder without a database" "$CABACK" listkeys -d "$TEST_TMP/not-a-db"
expect_grep "the folder is named" "not-a-db" "$ERR"
expect_status 1 "unknown token" "$CABACK" listkeys -d "$DB" -f "$DB.pass" --token "No Such Token"
expect_grep "the token is named" '"No Such Token"' "$ERR"
expect_status 2 "unexpected argument" "$CABACK" listkeys -d "$DB" extra

# A database without a password needs no password option (and never prompts).
NOPW=$TEST_TMP/nopw
make_dogtag_ca "$NOPW" ""
expect_status 0 "database without password, no password option" setsid -w "$CABACK" listkeys -d "$NOPW"
caback_listing "$OUT" >"$TEST_TMP/caback.txt"
certutil_listing "$NOPW" >"$TEST_TMP/certutil.txt"
check "no-password database: listing equals certutil -K's" cmp "$TEST_TMP/certutil.txt" "$TEST_TMP/caback.txt"
expect_equal "no-password database: five keys" 5 "$(wc -l <"$TEST_TMP/caback.txt")"

# An empty database: no keys, not an error.
make_nssdb "$TEST_TMP/empty" ""
expect_status 0 "empty database" "$CABACK" listkeys --json -d "$TEST_TMP/empty"
check "empty database gives an empty key list" "$PYTHON3" -c 'import json,sys; assert json.load(open(sys.argv[1]))["keys"] == []' "$OUT"

# Without -d: $CABACK_DBDIR.
expect_status 0 "CABACK_DBDIR is the default database" env CABACK_DBDIR="$NOPW" "$CABACK" listkeys
caback_listing "$OUT" >"$TEST_TMP/default.txt"
check "CABACK_DBDIR lists that database's keys" cmp "$TEST_TMP/caback.txt" "$TEST_TMP/default.txt"

expect_status 0 "caback help listkeys" "$CABACK" help listkeys
expect_grep "help mentions -K" 'caback -K' "$OUT"

done_testing
