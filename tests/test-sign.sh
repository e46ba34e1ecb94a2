#!/bin/bash
# caback sign / verify-signature: detached CMS signatures over a backup, checked both ways
# against NSS cmsutil and openssl cms, tampering, trust, and refusals.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil cmsutil pk12util

T=$TEST_TMP
CA=$T/ca
make_dogtag_ca "$CA"
issue_cert "$CA" "Backup Signer" "CN=Backup Signer,O=EXAMPLE.TEST" u,u,u \
    --keyUsage digitalSignature,nonRepudiation --extKeyUsage emailProtection
issue_cert "$CA" "Code Signer" "CN=Code Signer,O=EXAMPLE.TEST" u,u,u \
    --keyUsage digitalSignature --extKeyUsage codeSigning
issue_cert "$CA" "TLS only" "CN=pki2.example.test,O=EXAMPLE.TEST" u,u,u \
    --keyUsage digitalSignature,keyEncipherment --extKeyUsage serverAuth
certutil -L -d "sql:$CA" -n "$DOGTAG_CA_NICK" -a >"$T/ca.pem"
SIGNER_SUBJECT="CN=Backup Signer,O=EXAMPLE.TEST"
CA_SUBJECT="CN=CA Signing Certificate,OU=pki-tomcat,O=EXAMPLE.TEST Security Domain"

# A database that trusts nothing, and an unrelated CA.
OTHER=$T/other
make_nssdb "$OTHER"
printf 'y\n-1\ny\n' | certutil -S -x -d "sql:$OTHER" -f "$OTHER.pass" -z "$OTHER.noise" \
    -n "Other CA" -s "CN=Other CA,O=ELSEWHERE.TEST" -t CT,C,C -k rsa -g 2048 -Z SHA256 -v 24 \
    -m 900 -2 --keyUsage certSigning,crlSigning >/dev/null 2>&1
certutil -L -d "sql:$OTHER" -n "Other CA" -a >"$T/other-ca.pem"

ARCHIVE=$T/ca-backup.p12
head -c 300000 /dev/urandom >"$ARCHIVE"
SHA=$(sha256sum "$ARCHIVE" | cut -d' ' -f1)

# ---- caback sign ----
expect_status 0 "sign with an email-signing certificate" \
    "$CABACK" sign "$ARCHIVE" --signer "Backup Signer" -d "$CA" -f "$CA.pass"
check "signature written to FILE.sig" test -s "$ARCHIVE.sig"
expect_equal "signature file mode 0644" 644 "$(stat -c %a "$ARCHIVE.sig")"
expect_grep "sign names the signer" "signer: +$SIGNER_SUBJECT" "$OUT"
expect_grep "sign prints the SHA-256" "$SHA" "$OUT"
cp "$ARCHIVE.sig" "$T/first.sig"

# ---- peers verify caback's signature ----
run cmsutil -D -n -h 1 -c "$ARCHIVE" -i "$ARCHIVE.sig" -d "sql:$CA" -u 4
expect_grep "cmsutil -D verifies caback's signature (email signer usage)" \
    'signer0.status=GoodSignature' "$OUT"
run cmsutil -D -n -h 1 -c "$T/other-ca.pem" -i "$ARCHIVE.sig" -d "sql:$CA" -u 4
expect_grep "cmsutil -D sees a digest mismatch for another file" \
    'signer0.status=DigestMismatch' "$OUT"
if command -v openssl >/dev/null 2>&1; then
    expect_status 0 "openssl cms -verify accepts caback's signature (smimesign purpose)" \
        openssl cms -verify -binary -inform DER -in "$ARCHIVE.sig" -content "$ARCHIVE" \
        -CAfile "$T/ca.pem" -out /dev/null
    run openssl cms -cmsout -print -inform DER -in "$ARCHIVE.sig"
    expect_grep "the signature is detached (no content inside)" 'eContent: <ABSENT>' "$OUT"
    expect_grep "the signature uses SHA-256" 'algorithm: sha256 ' "$OUT"
    expect_grep "the signature carries a signing time" 'signingTime' "$OUT"
    expect_grep "the signature carries the signer's certificate" 'CN=Backup Signer' "$OUT"
else
    for t in accept detached sha256 time cert; do skip "openssl check $t" "openssl is not installed"; done
fi

# ---- caback verifies its own signature ----
expect_status 0 "verify-signature against the database's trust" \
    "$CABACK" verify-signature "$ARCHIVE" -d "$CA"
expect_grep "valid" "^Signature .* is valid" "$OUT"
expect_grep "prints the signer" "signer: +$SIGNER_SUBJECT" "$OUT"
expect_grep "prints the signing time" "signing time: +20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z" "$OUT"
expect_grep "prints the digest of the file" "digest: +SHA-256 $SHA" "$OUT"
expect_grep "says it is trusted for email signing" "trusted by: .*(email signing)" "$OUT"
expect_status 0 "verify-signature with --ca and no database" \
    "$CABACK" verify-signature "$ARCHIVE" "$ARCHIVE.sig" --ca "$T/ca.pem"
expect_grep "trusted by the CA file" "trusted by: +the CA file" "$OUT"

expect_status 0 "verify-signature --json" "$CABACK" verify-signature "$ARCHIVE" -d "$CA" --json
cp "$OUT" "$T/out.json"
run "$PYTHON3" -c '
import json, re, sys
r = json.load(open(sys.argv[1]))
s = r["signers"][0]
assert r["valid"] is True and r["error"] is None, r
assert r["sha256"] == sys.argv[2] and s["digest"] == sys.argv[2], r
assert s["digest_algorithm"] == "SHA-256" and s["signature_ok"] is True
assert s["subject"] == "CN=Backup Signer,O=EXAMPLE.TEST", s
assert s["issuer"].startswith("CN=CA Signing Certificate"), s
assert s["trusted_for"] == "email signing" and s["problem"] is None
assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s["signing_time"]), s
' "$T/out.json" "$SHA"
expect_equal "--json output parsed by python3" 0 "$STATUS"
[ "$STATUS" -eq 0 ] || diag "$(cat "$ERR")"

# ---- refusals by sign ----
expect_status 4 "an existing signature is not replaced" \
    "$CABACK" sign "$ARCHIVE" --signer "Backup Signer" -d "$CA" -f "$CA.pass"
expect_grep "says to use --force" "already exists.*--force" "$ERR"
check "the old signature is untouched" cmp -s "$ARCHIVE.sig" "$T/first.sig"
expect_status 0 "--force replaces it" \
    "$CABACK" sign "$ARCHIVE" --signer "Backup Signer" -d "$CA" -f "$CA.pass" --force -q
export CABACK_TEST_PW="$FIXTURE_DB_PASSWORD"
expect_status 0 "-o writes elsewhere, --json, password from the environment" \
    "$CABACK" sign "$ARCHIVE" --signer "Backup Signer" -d "$CA" --password-env CABACK_TEST_PW \
    -o "$T/elsewhere.sig" --json
cp "$OUT" "$T/out.json"
run "$PYTHON3" -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["signature"].endswith("elsewhere.sig") and r["sha256"] == sys.argv[2], r
assert r["subject"] == "CN=Backup Signer,O=EXAMPLE.TEST" and r["digest_algorithm"] == "SHA-256"
' "$T/out.json" "$SHA"
expect_equal "sign --json parsed by python3" 0 "$STATUS"
expect_status 0 "the -o signature verifies" \
    "$CABACK" verify-signature "$ARCHIVE" "$T/elsewhere.sig" --ca "$T/ca.pem"
expect_status 1 "a certificate that cannot sign (serverAuth only) is refused" \
    "$CABACK" sign "$ARCHIVE" --signer "TLS only" -d "$CA" -f "$CA.pass" -o "$T/tls.sig"
expect_grep "says why" "cannot sign: SEC_ERROR_INADEQUATE_CERT_TYPE" "$ERR"
check "no signature left behind" test ! -e "$T/tls.sig"
expect_status 1 "an unknown signer" \
    "$CABACK" sign "$ARCHIVE" --signer "No Such Cert" -d "$CA" -f "$CA.pass" -o "$T/x.sig"
expect_grep "names the nickname" 'no certificate "No Such Cert"' "$ERR"
printf 'wrong\n' >"$T/wrong.pass"
expect_status 3 "a wrong database password" \
    "$CABACK" sign "$ARCHIVE" --signer "Backup Signer" -d "$CA" -f "$T/wrong.pass" -o "$T/x.sig"
check "no signature after a wrong password" test ! -e "$T/x.sig"
expect_status 2 "--signer is required" "$CABACK" sign "$ARCHIVE" -d "$CA" -f "$CA.pass"
expect_status 1 "a missing file" \
    "$CABACK" sign "$T/nope.p12" --signer "Backup Signer" -d "$CA" -f "$CA.pass"

# ---- caback verifies the peers' signatures ----
run cmsutil -S -T -G -H SHA256 -Y NONE -N "Backup Signer" -d "sql:$CA" -f "$CA.pass" \
    -i "$ARCHIVE" -o "$T/cmsutil.sig"
expect_equal "cmsutil -S -T made a detached signature" 0 "$STATUS"
expect_status 0 "caback verifies cmsutil's signature (database trust)" \
    "$CABACK" verify-signature "$ARCHIVE" "$T/cmsutil.sig" -d "$CA"
expect_status 0 "caback verifies cmsutil's signature (--ca)" \
    "$CABACK" verify-signature "$ARCHIVE" "$T/cmsutil.sig" --ca "$T/ca.pem"

if command -v openssl >/dev/null 2>&1; then
    pk12util -o "$T/signer.p12" -n "Backup Signer" -d "sql:$CA" -k "$CA.pass" -W exportpw >/dev/null
    openssl pkcs12 -in "$T/signer.p12" -passin pass:exportpw -nodes -nocerts -out "$T/signer.key" 2>/dev/null
    openssl pkcs12 -in "$T/signer.p12" -passin pass:exportpw -clcerts -nokeys -out "$T/signer.crt" 2>/dev/null
    run openssl cms -sign -binary -outform DER -signer "$T/signer.crt" -inkey "$T/signer.key" \
        -in "$ARCHIVE" -out "$T/openssl.sig"
    expect_equal "openssl cms -sign made a detached signature" 0 "$STATUS"
    expect_status 0 "caback verifies openssl's signature (--ca)" \
        "$CABACK" verify-signature "$ARCHIVE" "$T/openssl.sig" --ca "$T/ca.pem"
    expect_status 0 "caback verifies openssl's signature (database trust)" \
        "$CABACK" verify-signature "$ARCHIVE" "$T/openssl.sig" -d "$CA"
    openssl cms -sign -binary -outform PEM -md sha512 -signer "$T/signer.crt" \
        -inkey "$T/signer.key" -in "$ARCHIVE" -out "$T/openssl-pem.sig"
    expect_status 0 "caback verifies a PEM, SHA-512 openssl signature" \
        "$CABACK" verify-signature "$ARCHIVE" "$T/openssl-pem.sig" --ca "$T/ca.pem"
    expect_grep "with the SHA-512 digest" "digest: +SHA-512 [0-9a-f]{128}$" "$OUT"
    openssl cms -sign -binary -noattr -outform DER -signer "$T/signer.crt" \
        -inkey "$T/signer.key" -in "$ARCHIVE" -out "$T/noattr.sig"
    expect_status 0 "caback verifies a signature without signed attributes" \
        "$CABACK" verify-signature "$ARCHIVE" "$T/noattr.sig" --ca "$T/ca.pem"
    expect_grep "and says it states no signing time" "not stated in the signature" "$OUT"
    if openssl cms -sign -binary -outform DER -md sha1 -signer "$T/signer.crt" \
        -inkey "$T/signer.key" -in "$ARCHIVE" -out "$T/sha1.sig" 2>/dev/null; then
        expect_status 1 "a SHA-1 signature is refused" \
            "$CABACK" verify-signature "$ARCHIVE" "$T/sha1.sig" --ca "$T/ca.pem"
        expect_grep "naming the digest" "uses the digest SHA-1" "$ERR"
    else
        skip "a SHA-1 signature is refused" "this openssl does not sign with SHA-1"
        skip "naming the digest" "this openssl does not sign with SHA-1"
    fi
else
    for t in made ca db pem sha512 noattr notime sha1 sha1msg; do skip "openssl $t" "openssl is not installed"; done
fi

# ---- tampering ----
cp "$ARCHIVE" "$T/tampered.p12"
printf 'X' | dd of="$T/tampered.p12" bs=1 seek=1000 conv=notrunc 2>/dev/null
cp "$ARCHIVE.sig" "$T/tampered.p12.sig"
expect_status 1 "a tampered archive is refused" "$CABACK" verify-signature "$T/tampered.p12" -d "$CA"
expect_grep "signature does not match the file" \
    "signature does not match .*tampered.p12 \(the file was changed after signing, or the signature" "$ERR"
expect_status 1 "also with --ca" "$CABACK" verify-signature "$T/tampered.p12" --ca "$T/ca.pem"
expect_status 1 "tampered, with --json" \
    "$CABACK" verify-signature "$T/tampered.p12" --ca "$T/ca.pem" --json
cp "$OUT" "$T/out.json"
run "$PYTHON3" -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["valid"] is False and "does not match" in r["error"]["message"], r
assert r["signers"][0]["signature_ok"] is False
' "$T/out.json"
expect_equal "failed --json still parsed by python3" 0 "$STATUS"
if command -v openssl >/dev/null 2>&1; then
    expect_status 4 "openssl agrees the tampered archive does not verify" \
        openssl cms -verify -binary -inform DER -in "$T/tampered.p12.sig" \
        -content "$T/tampered.p12" -CAfile "$T/ca.pem" -out /dev/null
else
    skip "openssl agrees" "openssl is not installed"
fi
expect_status 1 "a signature of another file is refused" \
    "$CABACK" verify-signature "$T/ca.pem" "$ARCHIVE.sig" -d "$CA"
expect_grep "does not match" "signature does not match" "$ERR"

"$PYTHON3" -c '
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[-40] ^= 0x55
open(sys.argv[2], "wb").write(d)
open(sys.argv[3], "wb").write(d[: len(d) // 2])
' "$ARCHIVE.sig" "$T/damaged.sig" "$T/truncated.sig"
expect_status 1 "a damaged signature value is refused" \
    "$CABACK" verify-signature "$ARCHIVE" "$T/damaged.sig" -d "$CA"
expect_grep "says damaged" "damaged or forged" "$ERR"
expect_status 1 "a truncated signature is refused" \
    "$CABACK" verify-signature "$ARCHIVE" "$T/truncated.sig" -d "$CA"
expect_grep "says it is not a signature" "is not a CMS signature" "$ERR"
expect_status 1 "a missing signature" "$CABACK" verify-signature "$T/ca.pem" -d "$CA"
expect_grep "says how to make one" "ca.pem.sig.*caback sign" "$ERR"

# ---- trust ----
expect_status 1 "an untrusted signer is refused" "$CABACK" verify-signature "$ARCHIVE" -d "$OTHER"
expect_grep "names the signer's subject and issuer" \
    "the signer $SIGNER_SUBJECT, issued by $CA_SUBJECT, is not trusted" "$ERR"
expect_grep "and suggests --ca" "\-\-ca" "$ERR"
expect_status 0 "the same signature with --ca of its CA" \
    "$CABACK" verify-signature "$ARCHIVE" -d "$OTHER" --ca "$T/ca.pem"
expect_status 1 "--ca of an unrelated CA is refused" \
    "$CABACK" verify-signature "$ARCHIVE" --ca "$T/other-ca.pem"
expect_grep "names the signer" "the signer $SIGNER_SUBJECT" "$ERR"
expect_status 1 "--ca with a file that is not a certificate" \
    "$CABACK" verify-signature "$ARCHIVE" --ca "$ARCHIVE.sig"

# ---- a code-signing certificate ----
expect_status 0 "sign with a codeSigning certificate" \
    "$CABACK" sign "$ARCHIVE" --signer "Code Signer" -d "$CA" -f "$CA.pass" -o "$T/code.sig"
expect_status 0 "it verifies for object signing against the database (CA trusted C for objects)" \
    "$CABACK" verify-signature "$ARCHIVE" "$T/code.sig" -d "$CA"
expect_grep "trusted for object signing" "\(object signing\)" "$OUT"

# ---- usage ----
expect_status 2 "verify-signature without a file" "$CABACK" verify-signature -d "$CA"
expect_status 2 "verify-signature with too many files" "$CABACK" verify-signature a b c -d "$CA"
expect_status 0 "help sign" "$CABACK" help sign
expect_grep "help shows --signer" "\-\-signer" "$OUT"
expect_status 0 "help verify-signature" "$CABACK" help verify-signature
expect_grep "help shows --ca" "\-\-ca" "$OUT"

done_testing
