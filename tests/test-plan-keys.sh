#!/bin/bash
# The restore plan tells the truth about keys (issue 16 §7):
# - a key-only bag under a CA nickname (openssl pkcs12 -nocerts -name "caSigningCert ...") is
#   restored as a key without certificate: no cloning.signing.privkey.id line for it unless the
#   database holds its certificate;
# - a file whose key is not its certificate's (the key bag patched with another key of the same
#   length, the file MACed again) against a database that holds the certificate's key: a
#   conflict (exit 4, the database unchanged) that names both public keys, not "skip: same key";
#   --replace keeps the database's key.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil openssl "$PYTHON3"

T=$TEST_TMP
PW=$T/p12.pass
printf 'Plan keys 1\n' >"$PW"
ORACLE=("$PYTHON3" "$CABACK_SRCDIR/tests/pbmac1-oracle.py")
CA="caSigningCert cert-pki-ca"

# Two RSA-2048 keys whose PKCS#8 encodings have the same length, so that the second can take the
# CA key's place in a file byte for byte (below). That length varies by a few bytes with the key's
# numbers, and a CA key of a rare length may have no match among many new keys: so keys are made
# until two lengths agree, which takes a few (there are about six lengths).
declare -A key_of_length
for i in $(seq 1 40); do
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/k$i.key" 2>/dev/null ||
        { echo "Bail out! openssl cannot make an RSA key"; exit 1; }
    len=$(openssl pkcs8 -topk8 -nocrypt -in "$T/k$i.key" -outform DER | wc -c)
    if [ -n "${key_of_length[$len]:-}" ]; then
        mv "${key_of_length[$len]}" "$T/ca.key"
        mv "$T/k$i.key" "$T/other.key"
        break
    fi
    key_of_length[$len]=$T/k$i.key
done
[ -f "$T/other.key" ] ||
    { echo "Bail out! no two of 40 RSA keys have PKCS#8 encodings of the same length"; exit 1; }
openssl req -x509 -new -key "$T/ca.key" -subj "/CN=Plan CA" -days 30 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out "$T/ca.crt" 2>/dev/null
# nss_id KEYFILE: the NSS key ID of an RSA key (SHA-1 of its modulus), computed here.
nss_id() {
    "$PYTHON3" -c 'import hashlib,sys; print(hashlib.sha1(bytes.fromhex(sys.argv[1])).hexdigest())' \
        "$(openssl rsa -in "$1" -noout -modulus 2>/dev/null | sed 's/^Modulus=//')"
}
CA_ID=$(nss_id "$T/ca.key")

# ---- a key-only bag under the CA's nickname ----
check "openssl: the CA key alone, named as the CA certificate" \
    openssl pkcs12 -export -nocerts -inkey "$T/ca.key" -name "$CA" -passout "file:$PW" -out "$T/keyonly.p12"
DB=$T/db
make_nssdb "$DB"
expect_status 0 "restore of the key-only file" \
    "$CABACK" restore -i "$T/keyonly.p12" -w "$PW" -d "$DB" -f "$DB.pass"
cp "$OUT" "$T/keyonly.out"
expect_grep "the plan says it is a key without certificate" \
    "^  add +key rsa 2048 $CA_ID of \"$CA\": a key without certificate: neither the file nor the database has its certificate" "$T/keyonly.out"
expect_grep "the key IDs report it as such" "^  key without certificate \(\"$CA\"\)$" "$T/keyonly.out"
expect_grep "... with its ID" "^      $CA_ID$" "$T/keyonly.out"
expect_no_grep "and no CS.cfg line is printed for it" "cloning\." "$T/keyonly.out"
expect_grep "the key is in the database" "$CA_ID" <(certutil -K -d "sql:$DB" -f "$DB.pass" 2>/dev/null)

DB2=$T/db2
make_nssdb "$DB2"
expect_status 0 "restore --json of the key-only file" \
    "$CABACK" restore -i "$T/keyonly.p12" -w "$PW" -d "$DB2" -f "$DB2.pass" --dry-run --json
json_checks "JSON: no CS.cfg entry for a key without certificate" "$OUT" \
    "r['keys'][0]['certificate_found'] is False and r['keys'][0]['cscfg'] is None" \
    "r['keys'][0]['id'] == '$CA_ID'"

# The same key when the database holds its certificate (without key): a CS.cfg key ID then.
DB3=$T/db3
make_nssdb "$DB3"
certutil -A -d "sql:$DB3" -f "$DB3.pass" -n "$CA" -t "CT,C,C" -a -i "$T/ca.crt"
expect_status 0 "restore of the key-only file beside its certificate" \
    "$CABACK" restore -i "$T/keyonly.p12" -w "$PW" -d "$DB3" -f "$DB3.pass"
expect_grep "its CS.cfg line is printed" "^      cloning\.signing\.privkey\.id=" "$OUT"
expect_no_grep "and it is not called a key without certificate" "key without certificate" "$OUT"

# ---- a file whose key is not its certificate's ----
# Plain key bag and certificate safe, so that the key's PKCS#8 bytes are in the file as they are.
check "openssl: the CA with its key, plain safes" \
    openssl pkcs12 -export -inkey "$T/ca.key" -in "$T/ca.crt" -name "$CA" -keypbe NONE -certpbe NONE \
    -passout "file:$PW" -out "$T/genuine.p12"
openssl pkcs8 -topk8 -nocrypt -in "$T/ca.key" -outform DER -out "$T/ca.p8"
# The other key (made above with the same PKCS#8 length) takes the CA key's place byte for byte.
openssl pkcs8 -topk8 -nocrypt -in "$T/other.key" -outform DER -out "$T/other.p8"
"$PYTHON3" - "$T/genuine.p12" "$T/ca.p8" "$T/other.p8" "$T/swapped-nomac.p12" <<'PY'
import sys
data, old, new = (open(p, "rb").read() for p in sys.argv[1:4])
assert len(old) == len(new) and data.count(old) == 1
open(sys.argv[4], "wb").write(data.replace(old, new))
PY
check "the key bag holds another key (same length), the file MACed again" \
    "${ORACLE[@]}" rewrite -w "$PW" -o "$T/swapped.p12" "$T/swapped-nomac.p12"
OTHER_ID=$(nss_id "$T/other.key")

DB4=$T/db4
make_nssdb "$DB4"
expect_status 0 "the genuine CA and key restored" \
    "$CABACK" restore -i "$T/genuine.p12" -w "$PW" -d "$DB4" -f "$DB4.pass"
snapshot() { { certutil -L -d "sql:$1"; certutil -K -d "sql:$1" -f "$1.pass" 2>&1; } >"$2"; }
snapshot "$DB4" "$T/before.txt"
sha_before=$(cat "$DB4/cert9.db" "$DB4/key4.db" | sha256sum)
expect_status 4 "restore --dry-run of the file with the wrong key: a conflict" \
    "$CABACK" restore -i "$T/swapped.p12" -w "$PW" -d "$DB4" -f "$DB4.pass" --dry-run
cp "$OUT" "$T/swapped.out"
expect_grep "the plan names both public keys" \
    "^  CONFLICT  key rsa 2048 $CA_ID of \"$CA\": the file's key does not match its certificate \"$CA\": the key's public key has ID $OTHER_ID, the certificate's public key has ID $CA_ID, and the database already holds the certificate's key under that ID; use --replace" "$T/swapped.out"
expect_no_grep "and never says it is the same key" "same key" "$T/swapped.out"
expect_status 4 "restore of the file with the wrong key: a conflict" \
    "$CABACK" restore -i "$T/swapped.p12" -w "$PW" -d "$DB4" -f "$DB4.pass"
snapshot "$DB4" "$T/after.txt"
check "the refused restore left the database as it was (certificates, keys)" cmp -s "$T/before.txt" "$T/after.txt"
expect_equal "... byte for byte" "$sha_before" "$(cat "$DB4/cert9.db" "$DB4/key4.db" | sha256sum)"
expect_status 0 "restore --replace keeps the database's key" \
    "$CABACK" restore -i "$T/swapped.p12" -w "$PW" -d "$DB4" -f "$DB4.pass" --replace
expect_grep "the plan says so" "the database's key is kept and the file's is not restored \(--replace\)" "$OUT"
snapshot "$DB4" "$T/after.txt"
check "... and the database still holds only the certificate's key" cmp -s "$T/before.txt" "$T/after.txt"
check "the other key never reached the database" \
    bash -c "! certutil -K -d 'sql:$DB4' -f '$DB4.pass' 2>/dev/null | grep -q $OTHER_ID"

done_testing
