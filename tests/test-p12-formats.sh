#!/bin/bash
# The PKCS#12 files other tools write, made here with the real tools, read by caback list with
# the same certificates and keys as OpenSSL finds in them (issue 17 section 3):
#  - openssl pkcs12 -export with every -keypbe/-certpbe algorithm it can write (PKCS#12 PBE,
#    PKCS#5 v1, PBES2 with each cipher), each MAC digest, RSA and EC keys, no MAC, no encryption;
#  - PBES2 variants openssl pkcs12 cannot choose (the PBKDF2 PRF, scrypt, ciphers) through
#    openssl pkcs8 -topk8 and tests/p12-wrap.py, which also writes a MAC with an empty salt;
#  - certtool --to-p12 with its --pkcs-cipher choices, pk12util -o with its ciphers and MAC
#    digests, pyca/cryptography's encryption builders, Java keytool keystores;
#  - what caback cannot use (ARIA, CAST5, Blowfish, SM4, SEED, AES-OFB/CFB, the PKCS#5 v1 RC2
#    variants with MD5 or MD2, SHA-3 and SHA-512/t digests, scrypt beyond its bounds) is
#    refused with exit 1 and named by name and OID, never as a wrong password.
# The oracle is `openssl pkcs12 -nodes` read by tests/p12-facts.py (pyca/cryptography): certificate
# SHA-256 fingerprints and NSS key IDs (SHA-1 of the RSA modulus or the EC point).
. "$CABACK_SRCDIR/tests/lib.sh"
need openssl
if ! "$PYTHON3" -c 'import cryptography' 2>/dev/null; then
    echo "1..0 # SKIP python3-cryptography is not installed"
    exit 0
fi

WRAP="$PYTHON3 $CABACK_SRCDIR/tests/p12-wrap.py"
FACTS="$PYTHON3 $CABACK_SRCDIR/tests/p12-facts.py"
D=$TEST_TMP
PW='pä ss:=w'
printf '%s\n' "$PW" >"$D/pw"

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/rsa.key" -out "$D/rsa.crt" -subj /CN=rsa \
    -days 30 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/ec.key" \
    -out "$D/ec.crt" -subj /CN=ec -days 30 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$D/ec384.key" \
    -out "$D/ec384.crt" -subj /CN=ec384 -days 30 2>/dev/null
for k in rsa ec ec384; do
    openssl x509 -in "$D/$k.crt" -outform der -out "$D/$k.der"
done

# same_as_openssl NAME FILE [PASSFILE]: caback list --json and openssl pkcs12 -nodes agree.
passed=0
same_as_openssl() {
    local name=$1 f=$2 pwfile=${3:-$D/pw}
    run "$CABACK" list --json -w "$pwfile" "$f"
    if [ "$STATUS" -ne 0 ]; then
        not_ok "$name: caback list exit $STATUS"
        diag "$(head -c 1500 "$ERR")"
        return
    fi
    cp "$OUT" "$D/caback.json"
    if ! openssl pkcs12 -in "$f" -passin "file:$pwfile" -nodes -legacy >"$D/openssl.pem" \
        2>"$D/openssl.err"; then
        not_ok "$name: the oracle (openssl pkcs12) cannot read it"
        diag "$(head -c 800 "$D/openssl.err")"
        return
    fi
    local want got
    want=$($FACTS openssl "$D/openssl.pem")
    got=$($FACTS caback "$D/caback.json")
    if [ -n "$want" ] && [ "$want" = "$got" ]; then
        ok "$name: caback lists the certificates and keys openssl finds"
        passed=$((passed + 1))
    else
        not_ok "$name: caback and openssl differ"
        diag "openssl:" "$want" "caback:" "$got"
    fi
}

# refused NAME FILE PATTERN: caback list exits 1 (not 3: not the password's fault) and names it.
refused=0
refused() {
    local name=$1 f=$2 pattern=$3
    run "$CABACK" list -w "$D/pw" "$f"
    if [ "$STATUS" -eq 1 ] && grep -Eq -- "$pattern" "$ERR"; then
        ok "$name: refused (exit 1), named: $pattern"
        refused=$((refused + 1))
    else
        not_ok "$name: exit $STATUS, expected 1 and /$pattern/"
        diag "$(head -c 1000 "$ERR")"
    fi
}

# ---- openssl pkcs12 -export: every PBE it writes, for the keys and the certificates ----------
for alg in PBE-SHA1-3DES PBE-SHA1-2DES PBE-SHA1-RC2-40 PBE-SHA1-RC2-128 PBE-SHA1-RC4-40 PBE-SHA1-RC4-128 \
    PBE-MD5-DES PBE-SHA1-DES PBE-SHA1-RC2-64 aes-128-cbc aes-192-cbc aes-256-cbc camellia-128-cbc camellia-192-cbc \
    camellia-256-cbc des-ede3-cbc des-cbc rc2-cbc rc2-40-cbc rc2-64-cbc; do
    for k in rsa ec; do
        f=$D/ossl-$alg-$k.p12
        if openssl pkcs12 -export -legacy -inkey "$D/$k.key" -in "$D/$k.crt" -name "$k $alg" \
            -keypbe "$alg" -certpbe "$alg" -passout "file:$D/pw" -out "$f" 2>/dev/null; then
            same_as_openssl "openssl -keypbe/-certpbe $alg, $k key" "$f"
        else
            skip "openssl -keypbe $alg, $k key" "this openssl cannot write it"
        fi
    done
done

# ---- every MAC digest openssl writes that NSS has ----
for md in md5 sha1 sha224 sha256 sha384 sha512; do
    f=$D/ossl-mac-$md.p12
    openssl pkcs12 -export -inkey "$D/ec384.key" -in "$D/ec384.crt" -macalg "$md" \
        -passout "file:$D/pw" -out "$f" 2>/dev/null
    same_as_openssl "openssl -macalg $md (EC P-384 key)" "$f"
done

# ---- no MAC, one MAC iteration, no encryption, an empty password ----
openssl pkcs12 -export -inkey "$D/rsa.key" -in "$D/rsa.crt" -nomac -passout "file:$D/pw" \
    -out "$D/nomac.p12"
same_as_openssl "openssl -nomac" "$D/nomac.p12"
openssl pkcs12 -export -inkey "$D/rsa.key" -in "$D/rsa.crt" -nomaciter -noiter \
    -passout "file:$D/pw" -out "$D/noiter.p12"
same_as_openssl "openssl -nomaciter -noiter" "$D/noiter.p12"
openssl pkcs12 -export -inkey "$D/ec.key" -in "$D/ec.crt" -keypbe NONE -certpbe NONE \
    -passout "file:$D/pw" -out "$D/plain.p12"
same_as_openssl "openssl -keypbe NONE -certpbe NONE (plain key bag)" "$D/plain.p12"
printf '\n' >"$D/empty.pw"
openssl pkcs12 -export -inkey "$D/rsa.key" -in "$D/rsa.crt" -passout pass: -out "$D/empty.p12"
same_as_openssl "openssl with an empty password" "$D/empty.p12" "$D/empty.pw"

# ---- PBES2 variants through openssl pkcs8 -topk8 and p12-wrap.py ----
wrap_key() { # NAME KEY CERT.der PKCS8-OPTIONS...: a PFX around the key openssl pkcs8 encrypted
    local name=$1 key=$2 cert=$3
    shift 3
    if ! openssl pkcs8 -topk8 -in "$key" -passout "file:$D/pw" -outform der \
        -out "$D/$name.p8" "$@" 2>"$D/pkcs8.err"; then
        return 1
    fi
    $WRAP -o "$D/$name.p12" -p "$PW" --epki "$D/$name.p8" --cert "$cert" --name "$name"
}
for prf in hmacWithSHA1 hmacWithSHA224 hmacWithSHA256 hmacWithSHA384 hmacWithSHA512; do
    wrap_key "prf-$prf" "$D/rsa.key" "$D/rsa.der" -v2 aes-256-cbc -v2prf "$prf"
    same_as_openssl "PBES2 with PBKDF2-$prf" "$D/prf-$prf.p12"
done
for c in aes-128-cbc aes-192-cbc camellia-256-cbc des-ede3-cbc des-cbc rc2-cbc rc2-40-cbc; do
    if wrap_key "v2-$c" "$D/ec.key" "$D/ec.der" -v2 "$c" -v2prf hmacWithSHA1 \
        -provider legacy -provider default; then
        same_as_openssl "PBES2 (PBKDF2-HMAC-SHA1, $c) from openssl pkcs8" "$D/v2-$c.p12"
    else
        skip "PBES2 with $c from openssl pkcs8" "this openssl cannot write it"
    fi
done
wrap_key v1-md5-des "$D/rsa.key" "$D/rsa.der" -v1 PBE-MD5-DES -provider legacy -provider default
same_as_openssl "PKCS#5 v1 pbeWithMD5AndDES-CBC shrouded key" "$D/v1-md5-des.p12"
wrap_key v1-sha1-des "$D/ec.key" "$D/ec.der" -v1 PBE-SHA1-DES -provider legacy -provider default
same_as_openssl "PKCS#5 v1 pbeWithSHA1AndDES-CBC shrouded key" "$D/v1-sha1-des.p12"
wrap_key v1-sha1-rc2 "$D/ec.key" "$D/ec.der" -v1 PBE-SHA1-RC2-64 -provider legacy -provider default
same_as_openssl "PKCS#5 v1 pbeWithSHA1AndRC2-CBC shrouded key" "$D/v1-sha1-rc2.p12"

# scrypt (RFC 7914), OpenSSL's defaults and others within caback's bounds.
wrap_key scrypt "$D/rsa.key" "$D/rsa.der" -scrypt
same_as_openssl "PBES2 with scrypt (N=16384, r=8, p=1)" "$D/scrypt.p12"
expect_grep "caback names scrypt and its parameters" 'scrypt N=16384 r=8 p=1' "$D/caback.json"
wrap_key scrypt-ec "$D/ec.key" "$D/ec.der" -scrypt -scrypt_N 1024 -scrypt_r 4 -scrypt_p 3 \
    -v2 aes-128-cbc
same_as_openssl "PBES2 with scrypt (N=1024, r=8, p=3, AES-128-CBC), EC key" "$D/scrypt-ec.p12"
# Beyond the bounds: refused before any derivation (the ciphertext is never reached).
$WRAP -o "$D/scrypt-2g.p12" -p "$PW" --scrypt-epki 2097152,8,1 --cert "$D/ec.der"
refused "scrypt N=2^21, r=8 (2 GiB)" "$D/scrypt-2g.p12" 'scrypt.*above caback.s limit of 1 GiB'
$WRAP -o "$D/scrypt-slow.p12" -p "$PW" --scrypt-epki 524288,8,8 --cert "$D/ec.der"
refused "scrypt N=2^19, r=8, p=8 (too much work)" "$D/scrypt-slow.p12" \
    'scrypt.*above caback.s limit of 16,777,216 block mixes'
$WRAP -o "$D/scrypt-bad.p12" -p "$PW" --scrypt-epki 1000,8,1 --cert "$D/ec.der"
refused "scrypt with N not a power of two" "$D/scrypt-bad.p12" 'N must be a power of two'

# A MAC whose salt is empty (GnuTLS writes it): valid.
$WRAP -o "$D/empty-salt.p12" -p "$PW" --epki "$D/prf-hmacWithSHA256.p8" --cert "$D/rsa.der" \
    --mac-salt ''
same_as_openssl "a MAC with an empty salt" "$D/empty-salt.p12"
$WRAP -o "$D/empty-salt-sha1.p12" -p "$PW" --pkcs8 <(openssl pkcs8 -topk8 -nocrypt \
    -in "$D/ec.key" -outform der) --cert "$D/ec.der" --mac sha1 --mac-salt '' --mac-iter 1
same_as_openssl "a SHA-1 MAC with an empty salt and one iteration, plain key bag" \
    "$D/empty-salt-sha1.p12"
run "$CABACK" list -w "$D/empty.pw" "$D/empty-salt.p12"
expect_equal "a MAC with an empty salt still tells a wrong password (exit 3)" 3 "$STATUS"

# ---- GnuTLS certtool --to-p12, each --pkcs-cipher ----
if command -v certtool >/dev/null 2>&1; then
    for c in 3des-pkcs12 aes-128 rc2-40 arcfour; do
        certtool --to-p12 --load-privkey "$D/ec.key" --load-certificate "$D/ec.crt" \
            --p12-name "gnutls $c" --password "$PW" --pkcs-cipher "$c" --outder \
            --outfile "$D/gnutls-$c.p12" >/dev/null 2>&1
        same_as_openssl "certtool --to-p12 --pkcs-cipher $c" "$D/gnutls-$c.p12"
    done
    certtool --to-p12 --load-privkey "$D/ec.key" --load-certificate "$D/ec.crt" \
        --p12-name gost --password "$PW" --pkcs-cipher gost28147-tc26z --outder \
        --outfile "$D/gnutls-gost.p12" >/dev/null 2>&1 &&
        refused "certtool --pkcs-cipher gost28147-tc26z" "$D/gnutls-gost.p12" \
            'GOST 28147-89 \(OID 1\.2\.643\.2\.2\.21\)'
else
    skip "certtool --to-p12" "certtool is not installed"
fi

# ---- pk12util -o with each cipher and MAC digest ----
if command -v pk12util >/dev/null 2>&1; then
    PDB=$TEST_TMP/pk12util-db
    make_nssdb "$PDB" ""
    openssl pkcs12 -export -inkey "$D/ec.key" -in "$D/ec.crt" -name nss-ec \
        -passout "file:$D/pw" -out "$D/for-nss.p12"
    pk12util -i "$D/for-nss.p12" -d "sql:$PDB" -w "$D/pw" >/dev/null 2>&1
    for c in "PKCS #12 V2 PBE With SHA-1 And 3KEY Triple DES-CBC" \
        "PKCS #12 V2 PBE With SHA-1 And 40 Bit RC2 CBC" CAMELLIA-256-CBC; do
        pk12util -o "$D/nss.p12" -n nss-ec -d "sql:$PDB" -w "$D/pw" -c "$c" -C "$c" >/dev/null 2>&1
        same_as_openssl "pk12util -o -c/-C \"$c\"" "$D/nss.p12"
    done
    pk12util -o "$D/nss.p12" -n nss-ec -d "sql:$PDB" -w "$D/pw" -M MD5 >/dev/null 2>&1
    same_as_openssl "pk12util -o -M MD5" "$D/nss.p12"
    # NSS feeds PKCS#5 v1 the BMPString of the password (OpenSSL its bytes, so openssl cannot
    # read this file): caback reads both, with what openssl found in the file NSS imported.
    pk12util -o "$D/nss-md5des.p12" -n nss-ec -d "sql:$PDB" -w "$D/pw" \
        -c "PKCS #5 Password Based Encryption with MD5 and DES-CBC" \
        -C "PKCS #5 Password Based Encryption with MD5 and DES-CBC" >/dev/null 2>&1
    openssl pkcs12 -in "$D/for-nss.p12" -passin "file:$D/pw" -nodes >"$D/openssl.pem" 2>/dev/null
    "$CABACK" list --json -w "$D/pw" "$D/nss-md5des.p12" >"$D/caback.json" 2>"$D/err"
    expect_equal "pk12util -o with PKCS#5 v1 MD5-DES: the keys and certificates pk12util read" \
        "$($FACTS openssl "$D/openssl.pem")" "$($FACTS caback "$D/caback.json")"
else
    skip "pk12util -o" "pk12util is not installed"
fi

# ---- pyca/cryptography's serialize_key_and_certificates ----
"$PYTHON3" - "$D" "$PW" <<'PY'
import sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import (BestAvailableEncryption, NoEncryption,
                                                          PrivateFormat, load_pem_private_key, pkcs12)
d, pw = sys.argv[1], sys.argv[2].encode()
key = load_pem_private_key(open(d + "/ec384.key", "rb").read(), None)
cert = x509.load_pem_x509_certificate(open(d + "/ec384.crt", "rb").read())
ca = x509.load_pem_x509_certificate(open(d + "/rsa.crt", "rb").read())
def builder(alg, mac):
    return (PrivateFormat.PKCS12.encryption_builder().kdf_rounds(3000).key_cert_algorithm(alg)
            .hmac_hash(mac).build(pw))
for name, enc in [("best", BestAvailableEncryption(pw)),
                  ("3des-sha1", builder(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC, hashes.SHA1())),
                  ("aes-sha384", builder(pkcs12.PBES.PBESv2SHA256AndAES256CBC, hashes.SHA384()))]:
    data = pkcs12.serialize_key_and_certificates(b"pyca " + name.encode(), key, cert, [ca], enc)
    open("%s/pyca-%s.p12" % (d, name), "wb").write(data)
data = pkcs12.serialize_key_and_certificates(b"pyca none", key, cert, [ca], NoEncryption())
open(d + "/pyca-none.p12", "wb").write(data)
PY
for name in best 3des-sha1 aes-sha384; do
    same_as_openssl "pyca serialize_key_and_certificates ($name)" "$D/pyca-$name.p12"
done
same_as_openssl "pyca serialize_key_and_certificates (NoEncryption)" "$D/pyca-none.p12" "$D/empty.pw"

# ---- Java keytool (PKCS12 keystores, the current and the legacy algorithms) ----
if command -v keytool >/dev/null 2>&1 && keytool -help >/dev/null 2>&1; then
    # Java refuses non-ASCII passwords for PBES2 keystores.
    KPW='kt pass:=w'
    printf '%s\n' "$KPW" >"$D/kpw"
    keytool -genkeypair -alias kt-rsa -keyalg RSA -keysize 2048 -dname CN=kt-rsa -validity 30 \
        -storetype PKCS12 -keystore "$D/kt.p12" -storepass "$KPW" >/dev/null 2>&1
    keytool -genkeypair -alias kt-ec -keyalg EC -groupname secp384r1 -dname CN=kt-ec -validity 30 \
        -storetype PKCS12 -keystore "$D/kt.p12" -storepass "$KPW" >/dev/null 2>&1
    same_as_openssl "keytool PKCS12 keystore (RSA and EC P-384)" "$D/kt.p12" "$D/kpw"
    JAVA_TOOL_OPTIONS=-Dkeystore.pkcs12.legacy=true keytool -genkeypair -alias kt-legacy \
        -keyalg RSA -keysize 2048 -dname CN=kt-legacy -validity 30 -storetype PKCS12 \
        -keystore "$D/kt-legacy.p12" -storepass "$KPW" >/dev/null 2>&1
    same_as_openssl "keytool PKCS12 keystore, keystore.pkcs12.legacy (RC2-40, SHA-1 MAC)" \
        "$D/kt-legacy.p12" "$D/kpw"
else
    skip "keytool keystores" "no Java keytool"
fi

# ---- refusals: named by name and OID, exit 1, never "wrong password" ----
for c in aria-128-cbc:'ARIA-128-CBC \(OID 1\.2\.410\.200046\.1\.1\.2\)' \
    cast5-cbc:'CAST5-CBC \(OID 1\.2\.840\.113533\.7\.66\.10\)' \
    bf-cbc:'Blowfish-CBC \(OID 1\.3\.6\.1\.4\.1\.3029\.1\.2\)' \
    sm4-cbc:'SM4-CBC \(OID 1\.2\.156\.10197\.1\.104\.2\)' \
    seed-cbc:'SEED.*\(OID 1\.2\.410\.200004\.1\.4\)' \
    aes-256-ofb:'AES-256-OFB \(OID 2\.16\.840\.1\.101\.3\.4\.1\.43\)' \
    aes-128-cfb:'AES-128-CFB \(OID 2\.16\.840\.1\.101\.3\.4\.1\.4\)' \
    PBE-MD5-RC2-64:'pbeWithMD5AndRC2-CBC \(OID 1\.2\.840\.113549\.1\.5\.6\)'; do
    alg=${c%%:*}
    if openssl pkcs12 -export -legacy -inkey "$D/rsa.key" -in "$D/rsa.crt" -keypbe "$alg" \
        -certpbe "$alg" -passout "file:$D/pw" -out "$D/no-$alg.p12" 2>/dev/null; then
        refused "openssl -keypbe/-certpbe $alg" "$D/no-$alg.p12" "${c#*:}"
    else
        skip "openssl -keypbe $alg" "this openssl cannot write it"
    fi
done
for c in sha3-256:'SHA3-256 \(OID 2\.16\.840\.1\.101\.3\.4\.2\.8\)' \
    sha512-224:'SHA-512/224 \(OID 2\.16\.840\.1\.101\.3\.4\.2\.5\)'; do
    md=${c%%:*}
    openssl pkcs12 -export -inkey "$D/rsa.key" -in "$D/rsa.crt" -macalg "$md" \
        -passout "file:$D/pw" -out "$D/no-mac-$md.p12" 2>/dev/null
    refused "openssl -macalg $md" "$D/no-mac-$md.p12" "${c#*:}"
done
for prf in hmacWithSHA512-224:'1\.2\.840\.113549\.2\.12' hmacWithSHA512-256:'1\.2\.840\.113549\.2\.13' \
    hmacWithMD5:'1\.2\.840\.113549\.2\.6'; do
    name=${prf%%:*}
    wrap_key "prf-$name" "$D/rsa.key" "$D/rsa.der" -v2 aes-256-cbc -v2prf "$name"
    refused "PBES2 with PBKDF2-$name" "$D/prf-$name.p12" "$name \\(OID ${prf#*:}\\)"
done

# ---- keys NSS cannot hold: listed by name, refused by restore before any change ----
openssl genpkey -algorithm ed25519 -out "$D/ed.key" 2>/dev/null
openssl req -x509 -key "$D/ed.key" -out "$D/ed.crt" -subj /CN=ed -days 30 2>/dev/null
openssl genpkey -algorithm x25519 -out "$D/x.key" 2>/dev/null
openssl pkcs12 -export -inkey "$D/ed.key" -in "$D/ed.crt" -certfile "$D/ec384.crt" -name ed \
    -passout "file:$D/pw" -out "$D/ed.p12"
openssl pkcs12 -export -inkey "$D/x.key" -nocerts -passout "file:$D/pw" -out "$D/x.p12" 2>/dev/null
expect_status 0 "caback list reads a file with an Ed25519 key" "$CABACK" list -w "$D/pw" "$D/ed.p12"
expect_grep "list names the key type Ed25519" 'Type: +Ed25519, not importable by NSS \(algorithm OID 1\.3\.101\.112\)' "$OUT"
expect_status 0 "caback list --json, Ed25519" "$CABACK" list --json -w "$D/pw" "$D/ed.p12"
cp "$OUT" "$D/ed.json"
json_checks "list --json, Ed25519" "$D/ed.json" \
    'r["keys"][0]["type"] == "ed25519"' 'r["keys"][0]["importable"] is False' \
    'r["keys"][0]["algorithm_oid"] == "1.3.101.112"'
expect_status 0 "caback list --json, X25519 without certificate" \
    "$CABACK" list --json -w "$D/pw" "$D/x.p12"
cp "$OUT" "$D/x.json"
json_checks "list --json, X25519" "$D/x.json" \
    'r["keys"][0]["type"] == "x25519"' 'r["keys"][0]["importable"] is False'

# EC keys on curves NSS 3.87 has no code for: listed (type "ec", not importable), not an error.
for curve in P-224 secp256k1 brainpoolP256r1; do
    openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$curve" -out "$D/$curve.key" \
        2>/dev/null || { skip "an EC $curve key" "this openssl cannot make it"; continue; }
    openssl req -x509 -key "$D/$curve.key" -out "$D/$curve.crt" -subj "/CN=$curve" -days 30 \
        2>/dev/null
    openssl pkcs12 -export -inkey "$D/$curve.key" -in "$D/$curve.crt" -passout "file:$D/pw" \
        -out "$D/$curve.p12"
    same_as_openssl "an EC key on $curve, which NSS cannot use" "$D/$curve.p12"
    json_checks "list --json, EC $curve" "$D/caback.json" 'r["keys"][0]["type"] == "ec"' \
        'r["keys"][0]["importable"] is False'
done

DB=$TEST_TMP/db
make_nssdb "$DB"
openssl pkcs12 -export -inkey "$D/rsa.key" -in "$D/rsa.crt" -name "already there" \
    -passout "file:$D/pw" -out "$D/first.p12"
"$CABACK" restore -i "$D/first.p12" -w "$D/pw" -d "$DB" -f "$DB.pass" --no-signature-check \
    >/dev/null 2>&1
db_state() {
    certutil -L -d "sql:$DB"
    certutil -K -d "sql:$DB" -f "$DB.pass" 2>&1
    sha256sum "$DB"/cert9.db "$DB"/key4.db | cut -d' ' -f1
}
db_state >"$D/before"
expect_status 1 "restore refuses a file with an Ed25519 key in its plan" \
    "$CABACK" restore -i "$D/ed.p12" -w "$D/pw" -d "$DB" -f "$DB.pass" --no-signature-check
expect_grep "the refusal names Ed25519, says nothing changed and offers --skip-unsupported" \
    'Ed25519, OID 1\.3\.101\.112.*nothing was changed.*--skip-unsupported' "$ERR"
db_state >"$D/after"
check "the refused restore changed nothing in the database (certificates, keys, files)" \
    cmp -s "$D/before" "$D/after"
expect_status 0 "restore --skip-unsupported restores the rest" \
    "$CABACK" restore -i "$D/ed.p12" -w "$D/pw" -d "$DB" -f "$DB.pass" --no-signature-check \
    --skip-unsupported --rename
expect_grep "restore --skip-unsupported says what it skipped" \
    'skipped \(--skip-unsupported\).*Ed25519' "$OUT"
certutil -L -d "sql:$DB" >"$D/certs"
expect_grep "the P-384 certificate of the same file is in the database" "^ec384" "$D/certs"
expect_no_grep "no Ed25519 certificate in the database" '^ed ' "$D/certs"

# ---- EC keys without their certificate: the point from the PKCS#8 (RFC 5915 publicKey) ----
openssl pkcs12 -export -inkey "$D/ec.key" -nocerts -passout "file:$D/pw" -out "$D/ec-alone.p12" \
    2>/dev/null
same_as_openssl "an EC key without certificate (shrouded)" "$D/ec-alone.p12"
want_id=$(openssl pkey -in "$D/ec.key" -pubout -outform der | tail -c 65 | sha1sum | cut -d' ' -f1)
expect_grep "its key ID is the SHA-1 of its point" "\"id\": \"$want_id\"" "$D/caback.json"
openssl pkcs12 -export -inkey "$D/ec384.key" -nocerts -keypbe NONE -passout "file:$D/pw" \
    -out "$D/ec-alone-plain.p12" 2>/dev/null
same_as_openssl "an EC P-384 key without certificate (plain key bag)" "$D/ec-alone-plain.p12"
expect_status 0 "restore an EC key without certificate" \
    "$CABACK" restore -i "$D/ec-alone.p12" -w "$D/pw" -d "$DB" -f "$DB.pass" --no-signature-check
certutil -K -d "sql:$DB" -f "$DB.pass" >"$D/keys" 2>&1
expect_grep "certutil -K shows the EC key under the ID of its point" "ec +$want_id" "$D/keys"
# Without the point and without a certificate, NSS 3.87 cannot know the key's ID: named so.
openssl ec -in "$D/ec.key" -no_public -out "$D/ec-nopub.key" 2>/dev/null
openssl pkcs12 -export -inkey "$D/ec-nopub.key" -nocerts -passout "file:$D/pw" \
    -out "$D/ec-nopub-alone.p12" 2>/dev/null
run "$CABACK" list -w "$D/pw" "$D/ec-nopub-alone.p12"
expect_grep "an EC key without point nor certificate: list says why its ID is unknown" \
    'does not carry its public point.*no certificate' "$OUT"
# ... and with its certificate it is read and restored like any key.
openssl pkcs12 -export -inkey "$D/ec-nopub.key" -in "$D/ec.crt" -name "ec no point" \
    -passout "file:$D/pw" -out "$D/ec-nopub.p12"
same_as_openssl "an EC key without point, with its certificate" "$D/ec-nopub.p12"
expect_status 0 "restore an EC key without point, with its certificate" \
    "$CABACK" restore -i "$D/ec-nopub.p12" -w "$D/pw" -d "$DB" -f "$DB.pass" --no-signature-check

# expect_rsa_key_in_db WHAT KEY.pem NICKNAME: certutil -K lists the RSA key of KEY.pem in $DB
# under NICKNAME, by its NSS key ID (the SHA-1 of the modulus).
expect_rsa_key_in_db() {
    local id
    id=$(openssl rsa -in "$2" -noout -modulus 2>/dev/null | cut -d= -f2 |
        "$PYTHON3" -c 'import hashlib,sys; print(hashlib.sha1(bytes.fromhex(sys.stdin.read().strip())).hexdigest())')
    certutil -K -d "sql:$DB" -f "$DB.pass" >"$D/keys" 2>&1
    expect_grep "certutil -K shows $1 RSA key" "rsa +$id .*:$3" "$D/keys"
}

# ---- 2-key 3DES: NSS 3.87 cannot make its keys; caback derives them through the 3-key KDF ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/two.key" -out "$D/two.crt" -subj /CN=two \
    -days 30 2>/dev/null
if openssl pkcs12 -export -legacy -inkey "$D/two.key" -in "$D/two.crt" -name "two key" \
    -keypbe PBE-SHA1-2DES -certpbe PBE-SHA1-2DES -passout "file:$D/pw" -out "$D/2des.p12" \
    2>/dev/null; then
    printf 'not %s\n' "$PW" >"$D/wrong"
    expect_status 3 "a 2-key 3DES file and a wrong password: exit 3" \
        "$CABACK" list -w "$D/wrong" "$D/2des.p12"
    expect_status 0 "restore a 2-key 3DES file" \
        "$CABACK" restore -i "$D/2des.p12" -w "$D/pw" -d "$DB" -f "$DB.pass" --no-signature-check
    expect_rsa_key_in_db "the 2-key 3DES file's" "$D/two.key" "two key"
else
    skip "2-key 3DES files" "this openssl cannot write them"
fi

# ---- PKCS#5 v1 with SHA-1 (DES, RC2-64): NSS's PBKDF1, key and IV split per RFC 8018 ----
for alg in PBE-SHA1-DES PBE-SHA1-RC2-64; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/v1-$alg.key" -out "$D/v1-$alg.crt" \
        -subj "/CN=v1 $alg" -days 30 2>/dev/null
    if openssl pkcs12 -export -legacy -nomac -inkey "$D/v1-$alg.key" -in "$D/v1-$alg.crt" \
        -name "v1 $alg" -keypbe "$alg" -certpbe "$alg" -passout "file:$D/pw" \
        -out "$D/v1-$alg.p12" 2>/dev/null; then
        printf 'not %s\n' "$PW" >"$D/wrong"
        # Without a MAC, only the decryption's padding can tell a wrong password.
        expect_status 3 "$alg without a MAC and a wrong password: exit 3" \
            "$CABACK" list -w "$D/wrong" "$D/v1-$alg.p12"
        expect_status 0 "restore a $alg file (no MAC: --allow-unauthenticated)" \
            "$CABACK" restore -i "$D/v1-$alg.p12" -w "$D/pw" -d "$DB" -f "$DB.pass" \
            --no-signature-check --allow-unauthenticated
        expect_rsa_key_in_db "the $alg file's" "$D/v1-$alg.key" "v1 $alg"
    else
        skip "$alg files" "this openssl cannot write them"
    fi
done

# ---- the run log has the warning the terminal shows about Dogtag's short key IDs ----
# A key whose ID starts with a byte that is only sign extension (1 in 256 keys): found by trying.
"$PYTHON3" - "$D/short.key" <<'PY'
import hashlib, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
while True:
    k = ec.generate_private_key(ec.SECP256R1())
    point = k.public_key().public_bytes(serialization.Encoding.X962,
                                        serialization.PublicFormat.UncompressedPoint)
    i = hashlib.sha1(point).digest()
    if (i[0] == 0 and i[1] < 0x80) or (i[0] == 0xFF and i[1] >= 0x80):
        break
open(sys.argv[1], "wb").write(k.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
PY
openssl req -x509 -key "$D/short.key" -out "$D/short.crt" -subj /CN=short -days 30 2>/dev/null
openssl pkcs12 -export -inkey "$D/short.key" -in "$D/short.crt" -name "short id" \
    -passout "file:$D/pw" -out "$D/short.p12"
expect_status 0 "restore a key whose CS.cfg ID is short" \
    "$CABACK" restore -i "$D/short.p12" -w "$D/pw" -d "$DB" -f "$DB.pass" --no-signature-check \
    --log "$D/run.log"
expect_grep "the terminal warns about Dogtag before 10.5.6" 'Dogtag before 10\.5\.6' "$ERR"
expect_grep "the run log has the same warning" 'Dogtag before 10\.5\.6' "$D/run.log"

diag "files read like openssl: $passed; refused by name: $refused"
done_testing
