#!/bin/bash
# Interoperability of caback's PKCS#12 codec with its peers, through the test helper p12-tool
# (the codec's writer and reader, before the backup and restore verbs):
#  - files caback writes (modern, legacy, PBMAC1) are read by openssl pkcs12, pk12util (list and
#    import) and GnuTLS certtool, with the same keys, certificates, friendly names, key IDs;
#  - files written by openssl pkcs12 -export (default, -legacy, -nomac, no encryption, empty and
#    non-ASCII passwords), pk12util -o and certtool --to-p12 are read by caback with the same
#    contents openssl reports.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util openssl

P12TOOL=${CABACK_BUILDDIR}/tests/unit/p12-tool
if [ ! -x "$P12TOOL" ]; then
    echo "1..0 # SKIP $P12TOOL is not built (make tests/unit/p12-tool)"
    exit 0
fi

DB=$TEST_TMP/ca
make_dogtag_ca "$DB"
EC_NICK="ec server cert"
_fixture_serial=$((_fixture_serial + 1))
certutil -S -d "sql:$DB" -f "$DB.pass" -z "$DB.noise" -c "$DOGTAG_CA_NICK" -n "$EC_NICK" \
    -s "CN=ec.example.test" -t "u,u,u" -k ec -q nistp256 -Z SHA256 -v 24 -m "$_fixture_serial" \
    >/dev/null 2>&1
NICKS=("$DOGTAG_CA_NICK" "ocspSigningCert cert-pki-ca" "subsystemCert cert-pki-ca"
    "Server-Cert cert-pki-ca" "auditSigningCert cert-pki-ca" "$EC_NICK")

PW=$TEST_TMP/p12.pass           # non-ASCII PKCS#12 password
printf 'caback p\xc3\xa4ss w\xc3\xb6rd\n' >"$PW"
PWVALUE=$(head -n1 "$PW")
EMPTY_PW=$TEST_TMP/empty.pass
printf '\n' >"$EMPTY_PW"

# Sorted "cert|key NAME KEYID" lines of `openssl pkcs12 -info -nodes` output on stdin.
openssl_facts() {
    awk '
        /^Bag Attributes/ { name = "-"; id = "-"; next }
        /^ *friendlyName: / { sub(/^ *friendlyName: /, ""); name = $0; next }
        /^ *localKeyID: / { sub(/^ *localKeyID: /, ""); gsub(/ /, ""); id = tolower($0); next }
        /^-----BEGIN CERTIFICATE-----/ { print "cert " name " " id; name = "-"; id = "-" }
        /^-----BEGIN .*PRIVATE KEY-----/ { print "key " name " " id; name = "-"; id = "-" }
    ' | sort
}
# The same facts from p12-tool dump output in a file.
caback_facts() {
    sed -n 's/^\(cert\|key\): name=\(.*\) keyid=\([0-9a-f-]*\) .*$/\1 \2 \3/p' "$1" | sort
}
# matching_pairs OPENSSL_OUTPUT NAME: how many private keys in `openssl pkcs12 -nodes` output
# have the public key of the certificate with the same localKeyID.
matching_pairs() {
    local dir=$TEST_TMP/split-$2 n=0 key crt
    mkdir -p "$dir"
    awk -v dir="$dir" '
        /^ *localKeyID: / { sub(/^ *localKeyID: /, ""); gsub(/ /, ""); id = tolower($0) }
        /^-----BEGIN CERTIFICATE-----/ { out = dir "/" id ".crt" }
        /^-----BEGIN .*PRIVATE KEY-----/ { out = dir "/" id ".key" }
        out != "" { print > out }
        /^-----END/ { close(out); out = "" }
    ' "$1"
    for key in "$dir"/*.key; do
        crt=${key%.key}.crt
        if [ -f "$crt" ] && [ "$(openssl pkey -in "$key" -pubout 2>/dev/null)" = \
            "$(openssl x509 -in "$crt" -pubkey -noout 2>/dev/null)" ]; then
            n=$((n + 1))
        fi
    done
    echo "$n"
}
# "keyid nickname" of every key in the fixture, as certutil -K shows them.
source_ids() {
    certutil_key_ids "$DB" | sed 's/ NSS Certificate DB:/ /'
}

# ---------------------------------------------------------------------------------------------
# caback writes, the peers read
# ---------------------------------------------------------------------------------------------

MODERN=$TEST_TMP/modern.p12
expect_status 0 "p12-tool writes the CA (modern profile, 600000 iterations)" \
    "$P12TOOL" write -d "$DB" -f "$DB.pass" -o "$MODERN" -w "$PW" "${NICKS[@]}"
expect_grep "six keys cost two password derivations" '^derivations: 2$' "$OUT"

expect_status 0 "caback reads its own file back" "$P12TOOL" dump -w "$PW" --describe "$MODERN"
cp "$OUT" "$TEST_TMP/modern.dump"
expect_equal "six keys and six certificates" "6 6" \
    "$(grep -c '^key: ' "$OUT") $(grep -c '^cert: ' "$OUT")"
expect_grep "the CA certificate carries its trust flags" "^cert: name=$DOGTAG_CA_NICK keyid=[0-9a-f]{40} trust=CTu,Cu,Cu " "$OUT"
expect_grep "the audit certificate carries its trust flags" '^cert: name=auditSigningCert cert-pki-ca keyid=[0-9a-f]{40} trust=u,u,Pu ' "$OUT"
expect_grep "the EC key is described" "^key: name=$EC_NICK .* type=ec bits=256 " "$OUT"
expect_grep "reading back costs two derivations" '^derivations: 2$' "$OUT"
expect_equal "key IDs and names equal certutil -K" "$(source_ids)" \
    "$(sed -n 's/^key: name=\(.*\) keyid=\([0-9a-f]*\) .*/\2 \1/p' "$TEST_TMP/modern.dump" | sort)"

expect_status 0 "openssl pkcs12 -info reads the modern file" \
    openssl pkcs12 -info -in "$MODERN" -passin "file:$PW" -nodes
cp "$OUT" "$TEST_TMP/openssl-modern.txt"
expect_grep "openssl: MAC HMAC-SHA256, 600000 iterations" '^MAC: sha256, Iteration 600000' "$ERR"
expect_equal "openssl: six shrouded keys in PBES2/PBKDF2/AES-256-CBC with HMAC-SHA256" 6 \
    "$(grep -c '^Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256' "$ERR")"
expect_grep "openssl: certificates in a PBES2 AES-256-CBC safe" \
    '^PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256' "$ERR"
expect_equal "openssl sees the same names and key IDs as caback" \
    "$(caback_facts "$TEST_TMP/modern.dump")" "$(openssl_facts <"$TEST_TMP/openssl-modern.txt")"
expect_grep "openssl shows the Dogtag trust attribute" '2\.16\.840\.1\.113730\.5\.1\.1\.1: CTu,Cu,Cu' \
    "$TEST_TMP/openssl-modern.txt"

expect_equal "openssl: each of the six keys matches its certificate" 6 \
    "$(matching_pairs "$TEST_TMP/openssl-modern.txt" modern)"

expect_status 0 "pk12util -l lists the modern file" pk12util -l "$MODERN" -w "$PW"
expect_equal "pk12util: six shrouded keys" 6 "$(grep -c 'Key(shrouded):' "$OUT")"
expect_equal "pk12util: six certificates" 6 "$(grep -c '^Certificate' "$OUT")"

IMPORT=$TEST_TMP/imported
make_nssdb "$IMPORT"
expect_status 0 "pk12util -i imports the modern file into a new database" \
    pk12util -i "$MODERN" -d "sql:$IMPORT" -k "$IMPORT.pass" -w "$PW"
expect_equal "pk12util: the imported key IDs and nicknames equal the source's" \
    "$(certutil_key_ids "$DB" | sed 's/ NSS Certificate DB:/ /')" \
    "$(certutil_key_ids "$IMPORT" | sed 's/ NSS Certificate DB:/ /')"

if command -v certtool >/dev/null 2>&1; then
    expect_status 0 "certtool --p12-info reads the modern file" \
        certtool --p12-info --inder --infile "$MODERN" --password "$PWVALUE"
    expect_equal "certtool: six certificates" 6 "$(grep -c 'Type: Certificate' "$OUT")"
    expect_equal "certtool: six shrouded keys" 6 "$(grep -c 'Type: PKCS #8 Encrypted key' "$OUT")"
    expect_grep "certtool: MAC SHA256 with 600000 iterations" 'Iteration count: 600000' "$OUT"
else
    skip "certtool --p12-info reads the modern file" "certtool is not installed"
fi

LEGACY=$TEST_TMP/legacy.p12
expect_status 0 "p12-tool writes the legacy profile" \
    "$P12TOOL" write -d "$DB" -f "$DB.pass" -o "$LEGACY" -w "$PW" --legacy "${NICKS[@]}"
expect_status 0 "openssl pkcs12 -legacy -info reads it" \
    openssl pkcs12 -legacy -info -in "$LEGACY" -passin "file:$PW" -nodes
cp "$OUT" "$TEST_TMP/openssl-legacy.txt"
expect_grep "openssl: MAC HMAC-SHA1, 2048 iterations" '^MAC: sha1, Iteration 2048' "$ERR"
expect_equal "openssl: six keys in pbeWithSHA1And3-KeyTripleDES-CBC" 6 \
    "$(grep -c '^Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048' "$ERR")"
expect_grep "openssl: certificates in pbeWithSHA1And3-KeyTripleDES-CBC" \
    '^PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048' "$ERR"
expect_equal "openssl -legacy sees the same names and key IDs" \
    "$(caback_facts "$TEST_TMP/modern.dump")" "$(openssl_facts <"$TEST_TMP/openssl-legacy.txt")"
expect_status 0 "pk12util -l lists the legacy file" pk12util -l "$LEGACY" -w "$PW"
expect_equal "pk12util: six keys in the legacy file" 6 "$(grep -c 'Key(shrouded):' "$OUT")"
if command -v certtool >/dev/null 2>&1; then
    expect_status 0 "certtool --p12-info reads the legacy file" \
        certtool --p12-info --inder --infile "$LEGACY" --password "$PWVALUE"
else
    skip "certtool --p12-info reads the legacy file" "certtool is not installed"
fi

PBMAC1=$TEST_TMP/pbmac1.p12
expect_status 0 "p12-tool writes a PBMAC1 file" \
    "$P12TOOL" write -d "$DB" -f "$DB.pass" -o "$PBMAC1" -w "$PW" --pbmac1 --iterations 10000 \
    "$DOGTAG_CA_NICK" "$EC_NICK"
expect_status 0 "caback verifies its PBMAC1 MAC" "$P12TOOL" dump -w "$PW" "$PBMAC1"
expect_grep "the MAC is PBMAC1 with PBKDF2-HMAC-SHA256 and HMAC-SHA256" \
    '^mac: PBMAC1 \(PBKDF2-HMAC-SHA256, HMAC-SHA256\), 10000 iterations$' "$OUT"
# OpenSSL verifies PBMAC1 from 3.4 on; older versions only decrypt the file (-nomacver).
ossl_version=$(openssl version | awk '{print $2}')
if printf '3.4.0\n%s\n' "$ossl_version" | sort -V -C; then
    expect_status 0 "openssl $ossl_version verifies the PBMAC1 MAC" \
        openssl pkcs12 -info -in "$PBMAC1" -passin "file:$PW" -noout
else
    expect_status 0 "openssl $ossl_version (no PBMAC1 before 3.4) decrypts the PBMAC1 file with -nomacver" \
        openssl pkcs12 -info -in "$PBMAC1" -passin "file:$PW" -nomacver -nodes
    expect_equal "openssl: two keys in the PBMAC1 file" 2 "$(grep -c '^-----BEGIN .*PRIVATE KEY' "$OUT")"
fi

# caback imports its file into a new database as permanent keys (a minimal restore), then writes
# them out again: the key IDs are certutil's, and every key still pairs with its certificate.
RESTORED=$TEST_TMP/restored
make_nssdb "$RESTORED"
expect_status 0 "caback imports the six keys as permanent keys" \
    "$P12TOOL" import -d "$RESTORED" -f "$RESTORED.pass" -w "$PW" "$MODERN"
expect_equal "certutil -K shows the source's key IDs and nicknames" \
    "$(source_ids)" "$(certutil_key_ids "$RESTORED" | sed 's/ NSS Certificate DB:/ /')"
expect_status 0 "the imported keys can be written out again" \
    "$P12TOOL" write -d "$RESTORED" -f "$RESTORED.pass" -o "$TEST_TMP/again.p12" -w "$PW" \
    --iterations 1000 "${NICKS[@]}"
run openssl pkcs12 -in "$TEST_TMP/again.p12" -passin "file:$PW" -nodes
expect_equal "and each imported key pairs with its certificate" 6 \
    "$(matching_pairs "$OUT" again)"

# ---------------------------------------------------------------------------------------------
# the peers write, caback reads
# ---------------------------------------------------------------------------------------------

OSSL=$TEST_TMP/ossl
mkdir -p "$OSSL"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$OSSL/ca.key" -out "$OSSL/ca.crt" \
    -subj "/CN=OpenSSL Test CA" -days 30 -addext basicConstraints=critical,CA:TRUE 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$OSSL/ee.key" \
    -out "$OSSL/ee.csr" -subj "/CN=ee.example.test" 2>/dev/null
openssl x509 -req -in "$OSSL/ee.csr" -CA "$OSSL/ca.crt" -CAkey "$OSSL/ca.key" -CAcreateserial \
    -out "$OSSL/ee.crt" -days 30 2>/dev/null
printf 'ossl pass\n' >"$OSSL/ascii.pass"

# check_read NAME FILE PWFILE [OPENSSL OPTIONS...]: caback reads FILE and finds what openssl does.
check_read() {
    local name=$1 file=$2 pwfile=$3; shift 3
    expect_status 0 "caback reads $name" "$P12TOOL" dump -w "$pwfile" --describe "$file"
    cp "$OUT" "$TEST_TMP/$name.dump"
    run openssl pkcs12 -info -in "$file" -passin "file:$pwfile" -nodes "$@"
    if [ "$STATUS" -ne 0 ]; then
        not_ok "openssl reads $name"
        diag "$(head -c 1000 "$ERR")"
        return
    fi
    expect_equal "$name: caback finds openssl's certificates, keys, names and key IDs" \
        "$(openssl_facts <"$OUT")" "$(caback_facts "$TEST_TMP/$name.dump")"
}

OPTS=(-inkey "$OSSL/ee.key" -in "$OSSL/ee.crt" -certfile "$OSSL/ca.crt" -name "ee key"
    -caname "OpenSSL CA")
openssl pkcs12 -export "${OPTS[@]}" -passout "file:$PW" -out "$OSSL/default.p12"
check_read openssl-default "$OSSL/default.p12" "$PW"
expect_grep "openssl default: the key is EC P-256" '^key: name=ee key .* type=ec bits=256' \
    "$TEST_TMP/openssl-default.dump"

openssl pkcs12 -export -legacy "${OPTS[@]}" -passout "file:$PW" -out "$OSSL/legacy.p12"
check_read openssl-legacy "$OSSL/legacy.p12" "$PW" -legacy
expect_grep "openssl -legacy: the certificates were in RC2-40" '^safe: encrypted: PBE-SHA1-RC2-40, ' \
    "$TEST_TMP/openssl-legacy.dump"
expect_grep "openssl -legacy: the key in 3DES" '^key: .*protection=PBE-SHA1-3DES, ' \
    "$TEST_TMP/openssl-legacy.dump"

openssl pkcs12 -export -nomac "${OPTS[@]}" -passout "file:$PW" -out "$OSSL/nomac.p12"
check_read openssl-nomac "$OSSL/nomac.p12" "$PW" -nomacver
expect_grep "openssl -nomac: caback warns that there is no MAC" '^warning: the file has no MAC' \
    "$TEST_TMP/openssl-nomac.dump"

openssl pkcs12 -export -keypbe NONE -certpbe NONE "${OPTS[@]}" -passout "file:$PW" \
    -out "$OSSL/plain.p12"
check_read openssl-unencrypted "$OSSL/plain.p12" "$PW"
expect_grep "no encryption: a plain KeyBag" '^key: name=ee key .* shrouded=no protection=none' \
    "$TEST_TMP/openssl-unencrypted.dump"
make_nssdb "$TEST_TMP/plain-db"
expect_status 0 "caback imports the plain KeyBag as a permanent key" \
    "$P12TOOL" import -d "$TEST_TMP/plain-db" -f "$TEST_TMP/plain-db.pass" -w "$PW" "$OSSL/plain.p12"
certutil -K -d "sql:$TEST_TMP/plain-db" -f "$TEST_TMP/plain-db.pass" >"$TEST_TMP/plain-db.keys" 2>&1
expect_grep "certutil -K lists it as an EC key under its friendly name" \
    '^< *0> ec +[0-9a-f]{40} +(NSS Certificate DB:)?ee key$' "$TEST_TMP/plain-db.keys"

openssl pkcs12 -export "${OPTS[@]}" -passout pass: -out "$OSSL/empty.p12"
check_read openssl-empty-password "$OSSL/empty.p12" "$EMPTY_PW"

openssl pkcs12 -export -legacy "${OPTS[@]}" -passout pass: -out "$OSSL/empty-legacy.p12"
check_read openssl-legacy-empty-password "$OSSL/empty-legacy.p12" "$EMPTY_PW" -legacy

openssl pkcs12 -export -macalg sha512 -keypbe AES-128-CBC -certpbe AES-192-CBC "${OPTS[@]}" \
    -passout "file:$OSSL/ascii.pass" -out "$OSSL/sha512.p12"
check_read openssl-sha512-aes128 "$OSSL/sha512.p12" "$OSSL/ascii.pass"
expect_grep "SHA-512 MAC" '^mac: HMAC-SHA512, ' "$TEST_TMP/openssl-sha512-aes128.dump"

expect_status 3 "a wrong password is refused with exit 3" \
    "$P12TOOL" dump -w "$OSSL/ascii.pass" "$OSSL/default.p12"
expect_grep "and the message says the MAC check failed" 'wrong password for .*default\.p12 \(MAC check failed\)' "$ERR"

# pk12util -o writes one nickname per file (with its chain).
expect_status 0 "pk12util -o exports the CA signing key" \
    pk12util -o "$TEST_TMP/pk12util.p12" -n "$DOGTAG_CA_NICK" -d "sql:$DB" -k "$DB.pass" -w "$PW"
check_read pk12util "$TEST_TMP/pk12util.p12" "$PW"
# pk12util's localKeyID is the SHA-1 of the certificate (not CKA_ID): key and certificate share it.
expect_equal "pk12util: the key and its certificate share one localKeyID" 1 \
    "$(sed -n 's/^\(cert\|key\): name=caSigningCert cert-pki-ca keyid=\([0-9a-f]*\) .*/\2/p' \
        "$TEST_TMP/pk12util.dump" | sort -u | wc -l)"

if command -v certtool >/dev/null 2>&1; then
    certtool --load-privkey "$OSSL/ee.key" --load-certificate "$OSSL/ee.crt" --to-p12 --outder \
        --p12-name "certtool key" --password "ossl pass" --outfile "$OSSL/certtool.p12" \
        >/dev/null 2>&1
    check_read certtool "$OSSL/certtool.p12" "$OSSL/ascii.pass"
    # --pkcs-cipher none puts the unencrypted PrivateKeyInfo in a pkcs8ShroudedKeyBag; certtool
    # reads it back (OpenSSL and pk12util do not).
    certtool --load-privkey "$OSSL/ee.key" --load-certificate "$OSSL/ee.crt" --to-p12 --outder \
        --p12-name "certtool plain" --password "ossl pass" --pkcs-cipher none \
        --outfile "$OSSL/certtool-none.p12" >/dev/null 2>&1
    expect_status 0 "caback reads certtool --pkcs-cipher none" \
        "$P12TOOL" dump -w "$OSSL/ascii.pass" --describe "$OSSL/certtool-none.p12"
    expect_grep "its key is read as a plain key of the right type" \
        '^key: name=certtool plain .* shrouded=no protection=none type=ec bits=256 ' "$OUT"
    expect_grep "with a warning that says it was not encrypted" \
        '^warning: shrouded key bag 1 holds an unencrypted PKCS#8 key' "$OUT"
    make_nssdb "$TEST_TMP/none-db"
    expect_status 0 "caback imports that key" \
        "$P12TOOL" import -d "$TEST_TMP/none-db" -f "$TEST_TMP/none-db.pass" \
        -w "$OSSL/ascii.pass" "$OSSL/certtool-none.p12"
    certutil -K -d "sql:$TEST_TMP/none-db" -f "$TEST_TMP/none-db.pass" >"$TEST_TMP/none-db.keys" 2>&1
    expect_grep "certutil -K lists it under its friendly name" \
        '^< *0> ec +[0-9a-f]{40} +(NSS Certificate DB:)?certtool plain$' "$TEST_TMP/none-db.keys"
else
    skip "caback reads certtool --to-p12" "certtool is not installed"
fi

done_testing
