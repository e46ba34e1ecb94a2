#!/bin/bash
# caback and hardware tokens (SoftHSM2, one token folder per run through SOFTHSM2_CONF):
# a CA key generated on the token by certutil -h cannot leave it (listkeys says so, backup stops
# with exit 5 naming it, --certs-only writes certificates and trust only and list says so);
# keys imported into a token as extractable back up and restore into a second token with their
# key IDs and nicknames; --non-extractable; token PINs from hardware-TOKEN= lines; a wrong PIN is
# exit 3; an unknown token lists the tokens that exist; --module loads a module for one run
# without changing pkcs11.txt; PKCS#11 URIs select tokens.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil modutil pk12util openssl softhsm2-util "$PYTHON3"
if ! find_softhsm_lib; then
    echo "1..0 # SKIP libsofthsm2.so not found"
    exit 0
fi

# json_get FILE EXPR: evaluate EXPR over the JSON document d of FILE, print the result.
json_get() {
    "$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
# The key IDs and nicknames certutil -K prints for token $2 of database $1 (PIN file $3).
token_key_ids() {
    certutil -K -d "sql:$1" -h "$2" -f "$3" 2>/dev/null |
        sed -n 's/^<[ 0-9]*> *[a-z]* *\([0-9a-f]\{40\}\) *\(.*\)$/\1 \2/p' | sort
}
# The same without the "TOKEN:" prefix (certutil -K prints a key's own label when it has one,
# as pk12util gives it, else its certificate's TOKEN:nickname).
bare_key_ids() {
    token_key_ids "$@" | sed 's/^\([0-9a-f]*\) \(NSS Certificate DB\|hsm-[a-z]\):/\1 /'
}

PIN_A=$FIXTURE_DB_PASSWORD
PIN_B='Token B pin 2'
PIN_C='Token C pin 3'
make_softhsm_token hsm-a "$PIN_A"
make_softhsm_token hsm-b "$PIN_B"
make_softhsm_token hsm-c "$PIN_C"
make_softhsm_token hsm-d "$PIN_C"
P12PW=$TEST_TMP/p12.pass
printf 'HSM backup pass 1\n' >"$P12PW"

# ---- A CA whose signing key was generated on the token: it never leaves it ----
DB=$TEST_TMP/ca
make_dogtag_ca "$DB"
modutil -dbdir "sql:$DB" -add softhsm -libfile "$SOFTHSM_LIB" -force >/dev/null 2>&1
# certutil cannot keep the trust on the token (SoftHSM has no NSS trust objects) and fails at
# that last step; certutil -M then puts the trust in the database, as Dogtag's installer does.
printf 'y\n-1\ny\n' | certutil -S -x -h hsm-a -d "sql:$DB" -f "$DB.pass" -z "$DB.noise" -n hsmCA \
    -s "CN=HSM CA Signing" -t CTu,Cu,Cu -k rsa -g 2048 -m 900 -2 --keyUsage certSigning,crlSigning >/dev/null 2>&1
certutil -M -d "sql:$DB" -f "$DB.pass" -n hsm-a:hsmCA -t CTu,Cu,Cu
hsm_id=$(token_key_ids "$DB" hsm-a "$DB.pass" | sed -n 's/ hsm-a:hsmCA$//p')
check "fixture: certutil -h made the CA key on the token" test -n "$hsm_id"
printf 'internal=%s\nhardware-hsm-a=%s\n' "$FIXTURE_DB_PASSWORD" "$PIN_A" >"$TEST_TMP/a.conf"

run "$CABACK" listkeys -d "$DB" --token hsm-a -f "$TEST_TMP/a.conf" --json
expect_equal "listkeys --token hsm-a --json" 0 "$STATUS"
cp "$OUT" "$TEST_TMP/a.json"
expect_equal "the token's key: its ID, not extractable, sensitive, cert on the token, trust in the database" \
    "$hsm_id hsm-a:hsmCA False True hsm-a NSS Certificate DB" \
    "$(json_get "$TEST_TMP/a.json" '" ".join(str(x) for k in d["keys"] for x in (k["id"], k["nickname"], k["extractable"], k["sensitive"], k["cert_token"], k["trust_token"]))')"
run "$CABACK" listkeys -d "$DB" --token hsm-a -f "$TEST_TMP/a.conf"
expect_grep "the table says the key cannot leave the token" 'export: NO, the key cannot leave the token \(extractable no, sensitive yes\); certificate on hsm-a, trust on NSS Certificate DB' "$OUT"

OUTDIR=$TEST_TMP/out
mkdir "$OUTDIR"
expect_status 5 "backup of the token's non-extractable CA key" \
    "$CABACK" backup -d "$DB" --token hsm-a -f "$TEST_TMP/a.conf" -o "$OUTDIR/hsm.p12" -w "$P12PW" --iterations 2000
expect_grep "... names the key, its ID and token" "\"hsm-a:hsmCA\" \\(key ID $hsm_id, CS.cfg form -?[0-9a-f]+, token \"hsm-a\"\\)" "$ERR"
expect_grep "... says why" 'marked not extractable' "$ERR"
expect_grep "... suggests the vendor's tool and --certs-only" "HSM vendor's own backup tool.*--certs-only" "$ERR"
check "... and writes nothing" test ! -e "$OUTDIR/hsm.p12"

expect_status 0 "backup --certs-only of the same token" \
    "$CABACK" backup -d "$DB" --token hsm-a -f "$TEST_TMP/a.conf" -o "$OUTDIR/certs.p12" -w "$P12PW" --iterations 2000 --certs-only
expect_grep "the summary says the file holds no keys" '^This file holds no private keys' "$OUT"
expect_grep "... 0 private keys, 1 certificate" '^Wrote .*: 0 private keys, 1 certificate$' "$OUT"
run "$CABACK" backup -d "$DB" --token hsm-a -f "$TEST_TMP/a.conf" -o "$OUTDIR/certs2.p12" -w "$P12PW" --iterations 2000 --certs-only --json
expect_equal "--json: certs_only true, no keys" "0 True 0" "$STATUS $(json_get /dev/stdin 'd["certs_only"], len(d["keys"])' <"$OUT" | tr -d '(),')"
run "$CABACK" list -w "$P12PW" "$OUTDIR/certs.p12"
expect_grep "list says the file holds no private keys" 'This file holds no private keys' "$OUT"
expect_grep "... and has the CA certificate with the database's trust" 'CTu,Cu,Cu' "$OUT"
run "$CABACK" list -w "$P12PW" --json "$OUTDIR/certs.p12"
expect_equal "list --json: \"keys\": [] and \"certs_only\": true" "0 [] True" \
    "$STATUS $(json_get /dev/stdin 'd["keys"], d["certs_only"]' <"$OUT" | tr -d '(),')"
run pk12util -l "$OUTDIR/certs.p12" -w "$P12PW"
expect_equal "pk12util -l reads the file: one certificate, no key bag" "0 1 0" \
    "$STATUS $(grep -c '^Certificate' "$OUT") $(grep -c '^Key' "$OUT")"

# The same CA by -n TOKEN:nickname and by a PKCS#11 URI (percent-encoded, with its serial).
expect_status 5 "-n hsm-a:hsmCA refuses the same way" \
    "$CABACK" backup -d "$DB" -f "$TEST_TMP/a.conf" -n hsm-a:hsmCA -o "$OUTDIR/n.p12" -w "$P12PW" --iterations 2000
serial_a=$(softhsm2-util --show-slots | awk '/Serial number:/ {s=$3} /Label: *hsm-a *$/ {print s}')
expect_status 0 "--token pkcs11:token=hsm%2Da;serial=... selects the token" \
    "$CABACK" listkeys -d "$DB" --token "pkcs11:token=hsm%2Da;serial=$serial_a" -f "$TEST_TMP/a.conf"
expect_grep "... and lists its key" " $hsm_id .*hsm-a:hsmCA" "$OUT"
expect_status 1 "a URI that matches no token" \
    "$CABACK" listkeys -d "$DB" --token "pkcs11:token=hsm-a;serial=0000" -f "$TEST_TMP/a.conf"
expect_grep "... lists the tokens that exist" '"hsm-a"' "$ERR"
expect_status 2 "a URI with an object attribute is refused" \
    "$CABACK" listkeys -d "$DB" --token "pkcs11:token=hsm-a;object=hsmCA" -f "$TEST_TMP/a.conf"
expect_grep "... saying which attribute" '"object" does not select a token' "$ERR"
expect_status 2 "a bad percent escape is refused" \
    "$CABACK" listkeys -d "$DB" --token "pkcs11:token=hsm%2" -f "$TEST_TMP/a.conf"

# fix-clone-ids: a CS.cfg naming the HSM's CA key as "token:nickname", the token chosen by URI.
printf 'cs.type=CA\nca.cert.list=signing\nca.cert.signing.nickname=hsmCA\nca.signing.tokenname=hsm-a\ncloning.list=signing\ncloning.module.token=hsm-a\ncloning.signing.nickname=hsm-a:hsmCA\ncloning.signing.privkey.id=1234\ncloning.signing.tokenname=hsm-a\n' >"$TEST_TMP/CS.cfg"
run "$CABACK" fix-clone-ids "$TEST_TMP/CS.cfg" -d "$DB" --token "pkcs11:token=hsm-a" -f "$TEST_TMP/a.conf"
expect_equal "fix-clone-ids --token URI with a token:nickname in CS.cfg" 0 "$STATUS"
expect_equal "... writes the HSM key's ID" "cloning.signing.privkey.id=$(dogtag_id "$hsm_id")" \
    "$(grep '^cloning\.signing\.privkey\.id=' "$TEST_TMP/CS.cfg")"

# PINs: a wrong PIN is exit 3 without a retry; an unknown token lists the tokens.
printf 'internal=%s\nhardware-hsm-a=wrong pin\n' "$FIXTURE_DB_PASSWORD" >"$TEST_TMP/bad.conf"
expect_status 3 "a wrong PIN (hardware-hsm-a=) is exit 3" \
    "$CABACK" backup -d "$DB" --token hsm-a -f "$TEST_TMP/bad.conf" -o "$OUTDIR/x.p12" -w "$P12PW" --certs-only
expect_grep "... says the PIN was not retried" 'PIN is wrong.*not retried' "$ERR"
expect_status 3 "a wrong PIN from --password-env is exit 3" \
    env PIN=nope "$CABACK" listkeys -d "$DB" --token hsm-a --password-env PIN
expect_status 0 "the right PIN from --password-env works" \
    env PIN="$PIN_A" "$CABACK" listkeys -d "$DB" --token hsm-a --password-env PIN
expect_status 1 "an unknown token" "$CABACK" listkeys -d "$DB" --token no-such-token -f "$TEST_TMP/a.conf"
expect_grep "... the error lists the tokens that exist" 'token "no-such-token" not found; the tokens that exist are: .*"NSS Certificate DB".*"hsm-a"' "$ERR"

# ---- Keys imported with pk12util -i -h: NSS marks them not extractable ----
"$CABACK" backup -q -d "$DB" -f "$DB.pass" -o "$TEST_TMP/internal.p12" -w "$P12PW" --iterations 2000
want=$(certutil_key_ids "$DB" | sed 's/ NSS Certificate DB:/ /' | sort)
DBB=$TEST_TMP/dbb
make_nssdb "$DBB"
modutil -dbdir "sql:$DBB" -add softhsm -libfile "$SOFTHSM_LIB" -force >/dev/null 2>&1
printf '%s\n' "$PIN_B" >"$TEST_TMP/b.pin"
printf 'internal=%s\nhardware-hsm-b=%s\nhardware-hsm-e=%s\n' "$FIXTURE_DB_PASSWORD" "$PIN_B" "$PIN_B" >"$TEST_TMP/b.conf"
run pk12util -i "$TEST_TMP/internal.p12" -h hsm-b -d "sql:$DBB" -k "$TEST_TMP/b.pin" -w "$P12PW"
expect_equal "fixture: pk12util -i -h hsm-b imports caback's backup of the internal keys" 0 "$STATUS"
expect_equal "fixture: the keys are on hsm-b with the source's key IDs" "$want" "$(bare_key_ids "$DBB" hsm-b "$TEST_TMP/b.pin")"
run "$CABACK" listkeys -d "$DBB" --token hsm-b -f "$TEST_TMP/b.conf" --json
expect_equal "listkeys: pk12util's keys are sensitive and not extractable" "5 False True" \
    "$(json_get /dev/stdin 'len(d["keys"]), any(k["extractable"] for k in d["keys"]), all(k["sensitive"] is True for k in d["keys"])' <"$OUT" | tr -d '(),')"
expect_status 5 "... so backup --token hsm-b refuses, naming all 5 keys" \
    "$CABACK" backup -d "$DBB" --token hsm-b -f "$TEST_TMP/b.conf" -o "$OUTDIR/b0.p12" -w "$P12PW" --iterations 2000
expect_equal "... each with token \"hsm-b\"" 5 "$(grep -o 'token "hsm-b"' "$ERR" | wc -l)"

# caback restore into a token: the keys are there, but SoftHSM2 made them not extractable
# (NSS cannot ask for CKA_EXTRACTABLE when it unwraps), and restore warns about it.
make_softhsm_token hsm-e "$PIN_B"
make_softhsm_token hsm-f "$PIN_B"
printf 'internal=%s\nhardware-hsm-e=%s\nhardware-hsm-f=%s\n' "$FIXTURE_DB_PASSWORD" "$PIN_B" "$PIN_B" >"$TEST_TMP/e.conf"
expect_status 0 "restore --token hsm-f" \
    "$CABACK" restore -i "$TEST_TMP/internal.p12" -w "$P12PW" -d "$DBB" --token hsm-f -f "$TEST_TMP/e.conf"
expect_grep "... warns that the token made the keys not extractable" 'token "hsm-f" made 5 of the restored keys not extractable' "$ERR"
expect_equal "... the keys are on hsm-f with the source's key IDs" "$want" "$(bare_key_ids "$DBB" hsm-f "$TEST_TMP/b.pin")"

# ---- Keys put on a token as extractable: backup and restore round trip ----
# The fixture's keys and certificates as PEM files, one key per file.
openssl pkcs12 -in "$TEST_TMP/internal.p12" -passin "file:$P12PW" -nocerts -nodes 2>/dev/null |
    awk -v dir="$TEST_TMP" '/-----BEGIN PRIVATE KEY-----/ {n++} n {print > (dir "/key" n ".pem")}'
run "$PYTHON3" "$CABACK_SRCDIR/tests/p11-import-extractable.py" "$SOFTHSM_LIB" hsm-e "$PIN_B" "$TEST_TMP"/key*.pem
if [ "$STATUS" -eq 77 ]; then
    skip "extractable keys on a token" "the Python cryptography package is missing"
    done_testing
    exit
fi
expect_equal "fixture: 5 extractable keys created on hsm-e with C_CreateObject" 0 "$STATUS"
for nick in "$DOGTAG_CA_NICK" "ocspSigningCert cert-pki-ca" "subsystemCert cert-pki-ca" "Server-Cert cert-pki-ca" "auditSigningCert cert-pki-ca"; do
    certutil -L -d "sql:$DB" -n "$nick" -a >"$TEST_TMP/cert.pem"
    trust=$(certutil -L -d "sql:$DB" | sed -n "s/^$nick  *\([^ ]*\) *$/\1/p")
    certutil -A -d "sql:$DBB" -h hsm-e -f "$TEST_TMP/b.pin" -n "$nick" -t "$trust" -a -i "$TEST_TMP/cert.pem" >/dev/null 2>&1
    certutil -M -d "sql:$DBB" -f "$DBB.pass" -n "hsm-e:$nick" -t "$trust" >/dev/null 2>&1
done
expect_equal "fixture: certutil -A -h hsm-e put the certificates with their keys" "$want" "$(bare_key_ids "$DBB" hsm-e "$TEST_TMP/b.pin")"
run "$CABACK" listkeys -d "$DBB" --token hsm-e -f "$TEST_TMP/b.conf" --json
expect_equal "listkeys: the keys on hsm-e are extractable and sensitive" "5 True True" \
    "$(json_get /dev/stdin 'len(d["keys"]), all(k["extractable"] is True for k in d["keys"]), all(k["sensitive"] is True for k in d["keys"])' <"$OUT" | tr -d '(),')"
expect_equal "listkeys: the CA certificate is on hsm-e, its trust in the database" "hsm-e|NSS Certificate DB" \
    "$(json_get /dev/stdin '[k["cert_token"] + "|" + str(k["trust_token"]) for k in d["keys"] if k["nickname"] == "hsm-e:caSigningCert cert-pki-ca"][0]' <"$OUT")"
expect_status 0 "backup --token hsm-e works as from the internal token" \
    "$CABACK" backup -d "$DBB" --token hsm-e -f "$TEST_TMP/b.conf" -o "$OUTDIR/b.p12" -w "$P12PW" --iterations 2000
expect_grep "... 5 keys" '^Wrote .*: 5 private keys' "$OUT"
expect_grep "... verified" '^Verified: .*5 keys decrypted' "$OUT"
expect_grep "... with the CA's trust" 'trust CTu,Cu,Cu' "$OUT"
run "$CABACK" list -w "$P12PW" --json "$OUTDIR/b.p12"
expect_equal "the backup holds the source's key IDs and nicknames" "$want" \
    "$(json_get /dev/stdin 'chr(10).join(sorted(k["id"] + " " + k["friendly_name"] for k in d["keys"]))' <"$OUT")"
expect_equal "... and is not certs-only" "False" "$(json_get /dev/stdin 'd["certs_only"]' <"$OUT")"

# ---- Restore into a second token, loaded with --module into a database without modules ----
DBC=$TEST_TMP/dbc
make_nssdb "$DBC"
cp "$DBC/pkcs11.txt" "$TEST_TMP/pkcs11.txt.orig"
printf 'internal=%s\nhardware-hsm-c=%s\nhardware-hsm-d=%s\n' "$FIXTURE_DB_PASSWORD" "$PIN_C" "$PIN_C" >"$TEST_TMP/c.conf"
expect_status 1 "without --module the token of a database without modules is not found" \
    "$CABACK" listkeys -d "$DBC" --token hsm-c -f "$TEST_TMP/c.conf"
expect_grep "... and the error points to --module" 'with --module PATH' "$ERR"
expect_status 0 "restore --module --token hsm-c" \
    "$CABACK" restore -i "$OUTDIR/b.p12" -w "$P12PW" -d "$DBC" --module "$SOFTHSM_LIB" --token hsm-c -f "$TEST_TMP/c.conf"
check "pkcs11.txt is byte-identical after restore --module" cmp -s "$DBC/pkcs11.txt" "$TEST_TMP/pkcs11.txt.orig"
expect_grep "... which warns that SoftHSM2 made the keys not extractable" 'token "hsm-c" made 5 of the restored keys not extractable' "$ERR"
expect_status 0 "listkeys --module --token 'pkcs11:token=hsm-c'" \
    "$CABACK" listkeys -d "$DBC" --module "$SOFTHSM_LIB" --token "pkcs11:token=hsm-c" -f "$TEST_TMP/c.conf" --json
cp "$OUT" "$TEST_TMP/c.json"
check "pkcs11.txt is byte-identical after listkeys --module" cmp -s "$DBC/pkcs11.txt" "$TEST_TMP/pkcs11.txt.orig"
# A copy of the database with the module registered lets certutil look at the token.
cp -r "$DBC" "$TEST_TMP/dbc-copy"
modutil -dbdir "sql:$TEST_TMP/dbc-copy" -add softhsm -libfile "$SOFTHSM_LIB" -force >/dev/null 2>&1
printf '%s\n' "$PIN_C" >"$TEST_TMP/c.pin"
expect_equal "certutil -K: the keys are on hsm-c with the same key IDs and nicknames" \
    "$want" "$(bare_key_ids "$TEST_TMP/dbc-copy" hsm-c "$TEST_TMP/c.pin")"
# SoftHSM2 makes keys NSS unwraps not extractable (NSS cannot ask otherwise), and restore says so.
expect_equal "restored keys are sensitive (and, on SoftHSM2, not extractable)" "5 False True" \
    "$(json_get "$TEST_TMP/c.json" 'len(d["keys"]), any(k["extractable"] for k in d["keys"]), all(k["sensitive"] is True for k in d["keys"])' | tr -d '(),')"
expect_equal "the CA certificate's trust is in the database" "CTu,Cu,Cu" \
    "$(certutil -L -d "sql:$TEST_TMP/dbc-copy" -h all -f "$TEST_TMP/c.pin" 2>/dev/null | sed -n 's/^hsm-c:caSigningCert cert-pki-ca  *\([^ ]*\) *$/\1/p')"
expect_status 0 "a second restore into hsm-c" \
    "$CABACK" restore -i "$OUTDIR/b.p12" -w "$P12PW" -d "$DBC" --module "$SOFTHSM_LIB" --token hsm-c -f "$TEST_TMP/c.conf"
expect_grep "... does nothing" 'Nothing to do' "$OUT"

expect_status 0 "restore --non-extractable into hsm-d" \
    "$CABACK" restore -i "$OUTDIR/b.p12" -w "$P12PW" -d "$DBC" --module "$SOFTHSM_LIB" --token hsm-d -f "$TEST_TMP/c.conf" --non-extractable
run "$CABACK" listkeys -d "$DBC" --module "$SOFTHSM_LIB" --token hsm-d -f "$TEST_TMP/c.conf" --json
expect_equal "... the keys are neither extractable nor readable" "5 False True" \
    "$(json_get /dev/stdin 'len(d["keys"]), any(k["extractable"] for k in d["keys"]), all(k["sensitive"] is True for k in d["keys"])' <"$OUT" | tr -d '(),')"
expect_status 5 "... so backup from hsm-d refuses" \
    "$CABACK" backup -d "$DBC" --module "$SOFTHSM_LIB" --token hsm-d -f "$TEST_TMP/c.conf" -o "$OUTDIR/d.p12" -w "$P12PW" --iterations 2000
expect_status 0 "backup --certs-only --module --token hsm-c" \
    "$CABACK" backup -q -d "$DBC" --module "$SOFTHSM_LIB" --token hsm-c -f "$TEST_TMP/c.conf" -o "$OUTDIR/c.p12" -w "$P12PW" --iterations 2000 --certs-only
check "pkcs11.txt is still byte-identical" cmp -s "$DBC/pkcs11.txt" "$TEST_TMP/pkcs11.txt.orig"
# --non-extractable works on the internal token too.
DBI=$TEST_TMP/dbi
make_nssdb "$DBI"
expect_status 0 "restore --non-extractable into the internal token" \
    "$CABACK" restore -q -i "$OUTDIR/b.p12" -w "$P12PW" -d "$DBI" -f "$DBI.pass" --non-extractable
run "$CABACK" listkeys -d "$DBI" -f "$DBI.pass" --json
expect_equal "... its keys are not extractable" "5 False" \
    "$(json_get /dev/stdin 'len(d["keys"]), any(k["extractable"] for k in d["keys"])' <"$OUT" | tr -d '(),')"
expect_status 2 "--module with a missing file" \
    "$CABACK" listkeys -d "$DBC" --module "$TEST_TMP/no-such.so" --token hsm-c -f "$TEST_TMP/c.conf"

done_testing
