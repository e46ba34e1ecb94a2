#!/bin/bash
# caback restore of files other tools wrote: pk12util, OpenSSL 3 (default, -legacy, empty
# password, no password and no MAC, key only, certificate only) and GnuTLS certtool. Each comes
# back with its key ID, nickname (friendlyName, else the subject CN made unique) and the default
# trust of its role; a second restore is a no-op; a key type NSS cannot import is refused before
# anything changes.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util openssl "$PYTHON3"

SRC=$TEST_TMP/src
make_dogtag_ca "$SRC"
PASS='Interop pass 1'
PW=$TEST_TMP/p12.pass
printf '%s\n' "$PASS" >"$PW"
printf '\n' >"$TEST_TMP/empty.pass"
V=$TEST_TMP/v
make_p12_variants "$SRC" "$V" "$PASS"
sub_id=$(certutil_key_ids "$SRC" | sed -n 's/ NSS Certificate DB:subsystemCert cert-pki-ca$//p')

trust_listing() {
    certutil -L -d "sql:$1" | sed -n '5,$p' |
        sed 's/^\(.*[^ ]\) \{2,\}\([a-zA-Z]*,[a-zA-Z]*,[a-zA-Z]*\) *$/\1|\2/' | sort
}
key_listing() { # without password: the databases here have none
    certutil -K -d "sql:$1" -f "$TEST_TMP/empty.pass" 2>/dev/null |
        sed -n 's/^<[ 0-9]*> *[a-z]* *\([0-9a-f]\{40\}\) *\(.*\)$/\1 \2/p' | sort
}
n=0
fresh() { n=$((n + 1)); DB=$TEST_TMP/db$n; }

# restore_case NAME FILE PASSFILE CA_NICKNAME: into a new database (without password), then again.
restore_case() {
    local name=$1 file=$2 pwfile=$3 ca_nick=$4
    fresh
    run "$CABACK" restore -i "$file" -w "$pwfile" -d "$DB" --create -f "$TEST_TMP/empty.pass"
    if [ "$STATUS" -ne 0 ]; then
        not_ok "$name: restore (exit $STATUS)"; diag "$(cat "$ERR")"; return
    fi
    expect_equal "$name: nicknames and default trust (certutil -L)" \
        "$(printf '%s|CT,C,C\nsubsystemCert cert-pki-ca|u,u,u' "$ca_nick" | sort)" "$(trust_listing "$DB")"
    expect_equal "$name: key ID (certutil -K) as in the source" \
        "$sub_id NSS Certificate DB:subsystemCert cert-pki-ca" "$(key_listing "$DB")"
    run "$CABACK" restore -i "$file" -w "$pwfile" -d "$DB" -f "$TEST_TMP/empty.pass"
    expect_equal "$name: a second restore does nothing" "0 1" \
        "$STATUS $(grep -c 'Nothing to do' "$OUT")"
}

restore_case pk12util "$V/pk12util.p12" "$PW" "caSigningCert cert-pki-ca"
restore_case openssl "$V/openssl.p12" "$PW" "CA Signing Certificate"
restore_case openssl-legacy "$V/openssl-legacy.p12" "$PW" "CA Signing Certificate"
restore_case openssl-empty "$V/openssl-empty.p12" "$TEST_TMP/empty.pass" "CA Signing Certificate"
# openssl -nomac: nothing authenticates the file (issue 15 §1). Refused, and --create's new
# database is removed again; with --allow-unauthenticated restored, trust only from -t.
fresh
expect_status 1 "openssl-nopass: a file without MAC is refused" \
    "$CABACK" restore -i "$V/openssl-nopass.p12" -w "$TEST_TMP/empty.pass" -d "$DB" --create -f "$TEST_TMP/empty.pass"
expect_grep "openssl-nopass: the refusal says it is not authenticated and names the flag" \
    'not authenticated.*--allow-unauthenticated' "$ERR"
check "openssl-nopass: the database --create made is gone again" test ! -e "$DB/cert9.db"
expect_status 0 "openssl-nopass: restored with --allow-unauthenticated" \
    "$CABACK" restore -i "$V/openssl-nopass.p12" -w "$TEST_TMP/empty.pass" -d "$DB" --create -f "$TEST_TMP/empty.pass" \
    --allow-unauthenticated -t "subsystemCert cert-pki-ca=P,,"
expect_grep "openssl-nopass: a file without MAC is warned about" 'warning: .*no MAC' "$ERR"
expect_equal "openssl-nopass: no trust from the file or by role, only from -t (certutil -L)" \
    "$(printf 'CA Signing Certificate|,,\nsubsystemCert cert-pki-ca|Pu,u,u' | sort)" "$(trust_listing "$DB")"
if [ -f "$V/certtool.p12" ]; then
    restore_case certtool "$V/certtool.p12" "$PW" "CA Signing Certificate"
else
    skip "certtool: restore" "certtool is not installed"
fi

# A file without password, restored without -w and without a terminal.
fresh
expect_status 0 "a file without password needs no -w" setsid "$CABACK" restore -i "$V/openssl-nopass.p12" \
    -d "$DB" --create -f "$TEST_TMP/empty.pass" --allow-unauthenticated

# ---- key only, then the certificates: the key is found, checked, not imported twice ----
fresh
expect_status 0 "key-only file" "$CABACK" restore -i "$V/openssl-keyonly.p12" -w "$PW" -d "$DB" --create -f "$TEST_TMP/empty.pass"
expect_equal "key-only: the key has its NSS key ID and its friendlyName as label" \
    "$sub_id subsystemCert cert-pki-ca" "$(key_listing "$DB")"
expect_grep "key-only: the output says it could not be checked against a certificate" 'without a certificate.*could not be checked' "$ERR"
expect_status 0 "then the certificates" "$CABACK" restore -i "$V/openssl.p12" -w "$PW" -d "$DB" -f "$TEST_TMP/empty.pass"
expect_grep "the key already there is skipped" "^  skip +key rsa 2048 $sub_id " "$OUT"
expect_grep "the new certificate is checked against the key already there" '1 certificate and key pair\(s\) checked' "$OUT"
expect_equal "one key, now with its certificate" "1 subsystemCert cert-pki-ca|u,u,u" \
    "$(key_listing "$DB" | wc -l) $(trust_listing "$DB" | grep subsystem)"

# ---- certificate only; subject CN made unique ----
fresh
make_nssdb "$DB" ""
printf 'y\n-1\ny\n' | certutil -S -x -d "sql:$DB" -f "$DB.pass" -z "$DB.noise" -n "CA Signing Certificate" \
    -s "CN=Another CA" -t "C,C,C" -k rsa -g 2048 -v 12 -m 9 -2 >/dev/null 2>&1
expect_status 0 "certificate-only file, CN already used as a nickname" "$CABACK" restore \
    -i "$V/openssl-certonly.p12" -w "$PW" -d "$DB" -f "$DB.pass"
expect_grep "the nickname from the CN is made unique" '^CA Signing Certificate \(2\)\|CT,C,C$' <(trust_listing "$DB")
expect_grep "the plan says where the nickname comes from" 'nickname from subject CN, made unique' "$OUT"

# ---- the same certificate under another nickname: left alone ----
fresh
expect_status 0 "pk12util file" "$CABACK" restore -i "$V/pk12util.p12" -w "$PW" -d "$DB" --create -f "$TEST_TMP/empty.pass"
expect_status 0 "then the OpenSSL file of the same certificates" "$CABACK" restore -i "$V/openssl.p12" -w "$PW" -d "$DB" -f "$TEST_TMP/empty.pass"
expect_grep "the CA certificate (no friendlyName) is found under the nickname it has" '^  skip +certificate "caSigningCert cert-pki-ca": already in the database' "$OUT"
expect_equal "nothing was added" "2" "$(trust_listing "$DB" | wc -l)"
openssl pkcs12 -export -in "$V/sub.crt" -inkey "$V/sub.key" -certfile "$V/ca.crt" -name "subsystemCert cert-pki-ca" \
    -caname "Our Root" -passout "pass:$PASS" -out "$TEST_TMP/caname.p12"
expect_status 0 "a file that names the CA certificate differently" "$CABACK" restore -i "$TEST_TMP/caname.p12" -w "$PW" -d "$DB" -f "$TEST_TMP/empty.pass"
expect_grep "the plan says the certificate is there under another nickname, left as it is" \
    'already in the database as "caSigningCert cert-pki-ca" \(the file calls it "Our Root"\); left as it is' "$OUT"

# ---- a key type NSS cannot import ----
if openssl req -x509 -newkey ed25519 -keyout "$TEST_TMP/ed.key" -out "$TEST_TMP/ed.crt" -nodes \
    -subj "/CN=Ed25519 test" -days 30 >/dev/null 2>&1 &&
    openssl pkcs12 -export -in "$TEST_TMP/ed.crt" -inkey "$TEST_TMP/ed.key" -name "ed cert" \
        -passout "pass:$PASS" -out "$TEST_TMP/ed.p12" 2>/dev/null; then
    fresh
    make_nssdb "$DB" ""
    expect_status 1 "a key type NSS cannot import is refused" "$CABACK" restore -i "$TEST_TMP/ed.p12" -w "$PW" -d "$DB" -f "$DB.pass"
    expect_grep "the error names the key and its algorithm OID" 'key 1 \("ed cert"\) cannot be restored.*OID 1\.3\.101\.112' "$ERR"
    expect_equal "nothing was imported" "" "$(trust_listing "$DB")"
    expect_status 0 "list shows it, with its OID" "$CABACK" list "$TEST_TMP/ed.p12" -w "$PW" --json
    cp "$OUT" "$TEST_TMP/ed.json"
    run "$PYTHON3" -c 'import json,sys; k=json.load(open(sys.argv[1]))["keys"][0]; print(k["algorithm_oid"], k["importable"], k["id"])' "$TEST_TMP/ed.json"
    expect_equal "list --json: the key's OID, not importable, no key ID" "1.3.101.112 False None" "$(cat "$OUT")"
else
    skip "a key type NSS cannot import" "openssl cannot make an Ed25519 key"
fi

done_testing
