#!/bin/bash
# restore checks a signature FILE.sig (caback sign, openssl cms -sign) before it reads the archive:
# a valid one against the database's trust or --signature-ca, a tampered archive, a tampered or
# untrusted signature refused with nothing changed, --no-signature-check; and each restore leaves
# a record in the run log (file, SHA-256, keys, database, result, warnings) that holds no password.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util "$PYTHON3"

T=$TEST_TMP
CA=$T/ca
make_dogtag_ca "$CA"
issue_cert "$CA" "Backup Signer" "CN=Backup Signer,O=EXAMPLE.TEST" u,u,u \
    --keyUsage digitalSignature,nonRepudiation --extKeyUsage emailProtection
certutil -L -d "sql:$CA" -n "$DOGTAG_CA_NICK" -a >"$T/ca.pem"
P12_PASSWORD='Restore sig secret 4'
DB_PASSWORD=$(head -n1 "$CA.pass")
PW=$T/p12.pass
printf '%s\n' "$P12_PASSWORD" >"$PW"
LOG=$T/runs.log
ALL_OUTPUT=$T/all-output
: >"$ALL_OUTPUT"
keep() { cat "$OUT" "$ERR" >>"$ALL_OUTPUT"; }

# An unrelated CA with its own email signer, trusted by nobody here.
OTHER=$T/other
make_nssdb "$OTHER"
printf 'y\n-1\ny\n' | certutil -S -x -d "sql:$OTHER" -f "$OTHER.pass" -z "$OTHER.noise" \
    -n "Other CA" -s "CN=Other CA,O=ELSEWHERE.TEST" -t CT,C,C -k rsa -g 2048 -Z SHA256 -v 24 \
    -m 900 -2 --keyUsage certSigning,crlSigning >/dev/null 2>&1
certutil -S -d "sql:$OTHER" -f "$OTHER.pass" -z "$OTHER.noise" -c "Other CA" -n "Other Signer" \
    -s "CN=Other Signer,O=ELSEWHERE.TEST" -t u,u,u -k rsa -g 2048 -Z SHA256 -v 24 -m 901 \
    --keyUsage digitalSignature --extKeyUsage emailProtection >/dev/null 2>&1

ARCHIVE=$T/ca-backup.p12
expect_status 0 "backup of the 5 CA keys" \
    "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$ARCHIVE" -w "$PW" --iterations 2000 --log "$LOG" \
    -n "$DOGTAG_CA_NICK" -n "ocspSigningCert cert-pki-ca" -n "subsystemCert cert-pki-ca" \
    -n "Server-Cert cert-pki-ca" -n "auditSigningCert cert-pki-ca"
SHA=$(sha256sum "$ARCHIVE" | cut -d' ' -f1)
expect_status 0 "sign the backup" \
    "$CABACK" sign "$ARCHIVE" --signer "Backup Signer" -d "$CA" -f "$CA.pass"

# db_state DIR: the database's certificates with trust, and its key IDs with nicknames.
db_state() {
    { certutil -L -d "sql:$1" | tail -n +5 | sort; certutil -K -d "sql:$1" -f "$1.pass" 2>/dev/null |
        sed 's/^<[ 0-9]*>//' | sort; } 2>&1
}
# fresh NAME: a new empty database with the CA's password.
fresh() { make_nssdb "$T/$1" >/dev/null; }
records() { grep -c "\"verb\":\"restore\"" "$LOG.jsonl" 2>/dev/null || echo 0; }
last_record() { grep '"verb":"restore"' "$LOG.jsonl" | tail -1 >"$T/record.json"; }
record_checks() { json_checks "$1" "$T/record.json" "${@:2}"; }

# ---- a new database does not trust the signer: refused, nothing created ----
NEW=$T/new
cp "$CA.pass" "$NEW.pass"
expect_status 1 "restore --create into a new database: the signer is not trusted there" \
    "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$NEW" -f "$NEW.pass" --create --log "$LOG"
keep
expect_grep "the error names the signature and the archive" \
    "signature $ARCHIVE.sig does not vouch for $ARCHIVE" "$ERR"
expect_grep "the error points to --signature-ca" "signature-ca CERTFILE" "$ERR"
check "no database was left behind" test ! -e "$NEW/cert9.db"
expect_equal "one restore record" 1 "$(records)"
last_record
record_checks "refused restore record" \
    "r['result'] == 'ERROR' and 'does not vouch' in r['error']" \
    "r['file'] == '$ARCHIVE'" \
    "r['keys'] == []"

# ---- --signature-ca: the CA that issued the signer ----
expect_status 0 "restore --create --signature-ca CA.pem" \
    "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$NEW" -f "$NEW.pass" --create \
    --signature-ca "$T/ca.pem" --log "$LOG"
keep
expect_grep "restore says the signature is valid and who signed" \
    "Signature $ARCHIVE.sig is valid: CN=Backup Signer,O=EXAMPLE.TEST signed" "$OUT"
expect_grep "restore names the SHA-256 the signature covers" "$SHA" "$OUT"
expect_equal "the 5 keys are in the new database" 5 \
    "$(certutil -K -d "sql:$NEW" -f "$NEW.pass" 2>/dev/null | grep -c '^<')"
last_record
certutil_key_ids "$CA" | grep -v "Backup Signer" | awk '{print $1}' | sort | tr '\n' ' ' >"$T/ids.txt"
record_checks "restore record" \
    "r['verb'] == 'restore' and r['result'] == $RESTORE_RESULT and r['error'] is None" \
    "r['database'] == '$NEW'" \
    "r['file'] == '$ARCHIVE' and r['sha256'] == '$SHA'" \
    "' '.join(sorted(k['nss_id'] for k in r['keys'])) + ' ' == open('$T/ids.txt').read()" \
    "'caSigningCert cert-pki-ca' in [k['nickname'] for k in r['keys']]" \
    "'--signature-ca' in r['command'] and '--create' in r['command']"
result=$("$PYTHON3" -c "import json; r = json.load(open('$T/record.json')); print($RESTORE_RESULT)")
expect_grep "text record of the restore" "^[0-9T:-]{19}Z restore $result\$" "$LOG"

# ---- the same database, its own trust: valid, nothing to do ----
expect_status 0 "restore into the database that trusts the signer's CA" \
    "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$CA" -f "$CA.pass" --json --log "$LOG"
keep
json_checks "restore --json" "$OUT" \
    "r['signature'] == '$ARCHIVE.sig' and r['signature_checked'] is True" \
    "r['signers'] == 'CN=Backup Signer,O=EXAMPLE.TEST' and r['sha256'] == '$SHA'" \
    "r['result'] == 'unchanged'"

# ---- tampering ----
cp "$ARCHIVE" "$T/good.p12"
cp "$ARCHIVE.sig" "$T/good.p12.sig"
fresh t1
db_state "$T/t1" >"$T/t1.before"
# One byte changed inside the archive (its MAC would catch it too, but later: the signature
# check comes first and reads no password).
"$PYTHON3" -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=1; open(p,'wb').write(b)" "$ARCHIVE"
expect_status 1 "a tampered archive is refused" \
    "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$T/t1" -f "$T/t1.pass" --signature-ca "$T/ca.pem" --log "$LOG"
keep
expect_grep "the error says the signature does not match" "does not vouch for $ARCHIVE: .*does not match" "$ERR"
expect_equal "nothing changed in the database" "$(cat "$T/t1.before")" "$(db_state "$T/t1")"
cp "$T/good.p12" "$ARCHIVE"

"$PYTHON3" -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[-40]^=0x40; open(p,'wb').write(b)" "$ARCHIVE.sig"
expect_status 1 "a tampered signature is refused" \
    "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$T/t1" -f "$T/t1.pass" --signature-ca "$T/ca.pem" --log "$LOG"
keep
expect_grep "the error names the signature file" "$ARCHIVE.sig" "$ERR"
expect_equal "nothing changed after the bad signature" "$(cat "$T/t1.before")" "$(db_state "$T/t1")"

# ---- --no-signature-check: restores, and the log says the signature was not checked ----
expect_status 0 "--no-signature-check restores despite the bad signature" \
    "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$T/t1" -f "$T/t1.pass" --no-signature-check --log "$LOG"
keep
expect_no_grep "no signature line without the check" "Signature .* is valid" "$OUT"
last_record
record_checks "record of the unchecked restore" \
    "r['result'] == 'WARNING' and '--no-signature-check' in r['command']" \
    "any('was not checked (--no-signature-check)' in w for w in r['warnings'])"
expect_grep "the text record marks it WARNING" "^    WARNING: signature $ARCHIVE.sig was not checked" "$LOG"
cp "$T/good.p12.sig" "$ARCHIVE.sig"

expect_status 2 "--signature-ca with --no-signature-check is a usage error" \
    "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$T/t1" -f "$T/t1.pass" --no-signature-check \
    --signature-ca "$T/ca.pem" --log "$LOG"
keep

# ---- a signer from another CA ----
expect_status 0 "sign the archive with the other CA's signer" \
    "$CABACK" sign "$ARCHIVE" --signer "Other Signer" -d "$OTHER" -f "$OTHER.pass" -o "$T/other.sig"
cp "$T/other.sig" "$ARCHIVE.sig"
fresh t2
db_state "$T/t2" >"$T/t2.before"
expect_status 1 "a signature by a signer of an untrusted CA is refused" \
    "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$T/t2" -f "$T/t2.pass" --signature-ca "$T/ca.pem" --log "$LOG"
keep
expect_grep "the error names the untrusted signer" "Other Signer" "$ERR"
expect_equal "nothing changed after the untrusted signature" "$(cat "$T/t2.before")" "$(db_state "$T/t2")"
cp "$T/good.p12.sig" "$ARCHIVE.sig"

# ---- a signature made by openssl cms ----
if command -v openssl >/dev/null 2>&1; then
    pk12util -o "$T/signer.p12" -n "Backup Signer" -d "sql:$CA" -k "$CA.pass" -W signer >/dev/null 2>&1
    openssl pkcs12 -in "$T/signer.p12" -passin pass:signer -nodes -nocerts -out "$T/signer.key" 2>/dev/null
    certutil -L -d "sql:$CA" -n "Backup Signer" -a >"$T/signer.crt"
    openssl cms -sign -binary -outform DER -md sha256 -in "$ARCHIVE" -signer "$T/signer.crt" \
        -inkey "$T/signer.key" -out "$ARCHIVE.sig"
    fresh t3
    expect_status 0 "restore accepts a signature made by openssl cms -sign" \
        "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$T/t3" -f "$T/t3.pass" --signature-ca "$T/ca.pem" --log "$LOG"
    keep
    expect_grep "openssl's signature is reported valid" "Signature $ARCHIVE.sig is valid" "$OUT"
    cp "$T/good.p12.sig" "$ARCHIVE.sig"
else
    skip "openssl cms signature" "openssl is not installed"
    skip "openssl cms signature valid" "openssl is not installed"
fi

# ---- no signature at all: restored on the MAC alone; --signature-ca then refuses ----
rm -f "$ARCHIVE.sig"
fresh t4
expect_status 0 "an unsigned archive restores" \
    "$CABACK" restore -v -i "$ARCHIVE" -w "$PW" -d "$T/t4" -f "$T/t4.pass" --log "$LOG"
keep
cat "$OUT" "$ERR" >"$T/t4.out"
expect_grep "verbose output says there is no signature" "No signature $ARCHIVE.sig" "$T/t4.out"
fresh t5
expect_status 1 "--signature-ca on an unsigned archive is refused" \
    "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$T/t5" -f "$T/t5.pass" --signature-ca "$T/ca.pem" --log "$LOG"
keep
expect_grep "the error says the signature is missing" "has no signature $ARCHIVE.sig" "$ERR"
cp "$T/good.p12.sig" "$ARCHIVE.sig"

# ---- the Windows form and the environment: their passwords stay out of the log ----
fresh t6
expect_status 0 "caback -restore PASSWORD FILE with a signed archive" \
    "$CABACK" -restore "$P12_PASSWORD" "$ARCHIVE" -d "$T/t6" -f "$T/t6.pass" --signature-ca "$T/ca.pem" --log "$LOG"
keep
fresh t7
export RESTORE_SIG_PW=$P12_PASSWORD
expect_status 0 "restore with --p12-password-env" \
    "$CABACK" restore -i "$ARCHIVE" --p12-password-env RESTORE_SIG_PW -d "$T/t7" -f "$T/t7.pass" \
    --signature-ca "$T/ca.pem" --log "$LOG"
keep
expect_status 3 "a wrong PKCS#12 password is recorded as an error" \
    "$CABACK" restore -i "$ARCHIVE" -w "$CA.pass" -d "$T/t7" -f "$T/t7.pass" --signature-ca "$T/ca.pem" --log "$LOG"
keep
last_record
record_checks "record of the wrong password" "r['result'] == 'ERROR' and r['error'] is not None"

# ---- no password anywhere ----
expect_equal "a record per restore run" 14 "$(records)"
for f in "$LOG" "$LOG.jsonl" "$ALL_OUTPUT"; do
    check "PKCS#12 password not in $(basename "$f")" sh -c '! grep -qF -- "$1" "$2"' _ "$P12_PASSWORD" "$f"
    check "database password not in $(basename "$f")" sh -c '! grep -qF -- "$1" "$2"' _ "$DB_PASSWORD" "$f"
done
expect_equal "the log stays mode 0600" 600 "$(stat -c %a "$LOG")"

done_testing
