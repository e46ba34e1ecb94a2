#!/bin/bash
# Issue 15 §1-2: an archive nothing authenticates (no MAC, no signature; made with openssl
# pkcs12 -export -nomac, a self-signed "CA" inside) is refused by restore, restore automatic and
# verify with nothing changed; with --allow-unauthenticated it is restored without any trust but
# -t's. list names the integrity mode. The signature status (checked / none / skipped) is printed,
# logged (text and JSON) and in --json for restore and verify; --require-signature makes a
# missing, bad or untrusted signature fatal; a backup caback sign marked in latest_backup makes
# restore automatic require its signature.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil openssl sha256sum "$PYTHON3"

T=$TEST_TMP
CA=$T/ca
make_dogtag_ca "$CA"
issue_cert "$CA" "Backup Signer" "CN=Backup Signer,O=EXAMPLE.TEST" u,u,u \
    --keyUsage digitalSignature,nonRepudiation --extKeyUsage emailProtection
PW=$T/p12.pass
printf 'Trust auth pass 5\n' >"$PW"
LOG=$T/runs.log

# db_state DIR: what the database holds (certificates with trust, keys) and its files' hashes.
db_state() {
    certutil -L -d "sql:$1" | tail -n +5 | sort
    certutil -K -d "sql:$1" -f "$1.pass" 2>&1 | sed 's/^<[ 0-9]*>//' | sort
    sha256sum "$1"/cert9.db "$1"/key4.db | cut -d' ' -f1
}
last_json() { grep "\"verb\":\"$1\"" "$LOG.jsonl" | tail -1 >"$T/record.json"; }

# ---- the forged archive: a self-signed "CA" without MAC ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/evil.key" -out "$T/evil.crt" -days 30 \
    -subj "/CN=Evil Root CA/O=FORGED.TEST" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1
NOMAC=$T/nomac.p12
openssl pkcs12 -export -nomac -inkey "$T/evil.key" -in "$T/evil.crt" -name "Evil Root CA" \
    -passout "file:$PW" -keypbe AES-256-CBC -certpbe AES-256-CBC -out "$NOMAC" 2>/dev/null
openssl pkcs12 -in "$NOMAC" -passin "file:$PW" -info -noout >"$T/info" 2>&1
expect_grep "openssl pkcs12 -export -nomac made a file without MAC (openssl -info)" 'MAC is absent' "$T/info"

expect_status 0 "list a file without MAC" "$CABACK" list "$NOMAC" -w "$PW"
expect_grep "list says integrity: none, not authenticated" '^  integrity: none \(NOT AUTHENTICATED' "$OUT"
expect_status 0 "list --json" "$CABACK" list "$NOMAC" -w "$PW" --json
json_checks "list --json" "$OUT" 'r["integrity"] == "none"' 'r["file"]["integrity"] == "none"'

# A database with the CA in it, to compare before and after.
DB=$T/live
make_nssdb "$DB" >/dev/null
certutil -L -d "sql:$CA" -n "$DOGTAG_CA_NICK" -a >"$T/ca.pem"
certutil -A -d "sql:$DB" -n "$DOGTAG_CA_NICK" -t CT,C,C -a -i "$T/ca.pem"
db_state "$DB" >"$T/before"

expect_status 1 "restore refuses a file without MAC or signature" \
    "$CABACK" restore -i "$NOMAC" -w "$PW" -d "$DB" -f "$DB.pass" --log "$LOG"
expect_grep "the refusal says it is not authenticated" 'is not authenticated' "$ERR"
expect_grep "the refusal names --allow-unauthenticated" 'allow-unauthenticated' "$ERR"
expect_grep "the refusal prints signature: none" '^signature: none$' "$OUT"
db_state "$DB" >"$T/after"
check "restore refused: certutil -L/-K and the database files are unchanged" cmp -s "$T/before" "$T/after"
last_json restore
json_checks "the refusal's JSON log" "$T/record.json" 'r["integrity"] == "none"' 'r["signature"] == "none"' \
    'r["result"] != "ok"'

expect_status 1 "verify refuses it" "$CABACK" verify "$NOMAC" -w "$PW"
expect_grep "verify says it is not authenticated and names the flag" 'not authenticated.*--allow-unauthenticated' "$ERR"
expect_status 0 "verify --allow-unauthenticated drills it" "$CABACK" verify "$NOMAC" -w "$PW" --allow-unauthenticated
expect_grep "verify prints integrity: none" '^integrity: none$' "$OUT"

# restore automatic of a recorded file without MAC (a planted record).
mkdir -p "$CABACK_STATE_DIR"
chmod 700 "$CABACK_STATE_DIR"
printf 'path=%s\nsha256=%s\nrecorded=%s\n' "$NOMAC" "$(sha256sum "$NOMAC" | cut -d' ' -f1)" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$CABACK_STATE_DIR/latest_backup"
expect_status 1 "restore automatic refuses it too" \
    "$CABACK" restore automatic -w "$PW" -d "$DB" -f "$DB.pass"
expect_grep "restore automatic names --allow-unauthenticated" 'allow-unauthenticated' "$ERR"
db_state "$DB" >"$T/after"
check "restore automatic refused: the database is unchanged" cmp -s "$T/before" "$T/after"

expect_status 0 "restore --allow-unauthenticated restores it" \
    "$CABACK" restore -i "$NOMAC" -w "$PW" -d "$DB" -f "$DB.pass" --allow-unauthenticated
expect_grep "the plan says trust comes only from -t" 'not authenticated.*only.*-t NICKNAME=FLAGS' "$OUT"
trust=$(certutil -L -d "sql:$DB" | sed -n 's/^Evil Root CA  *\([^ ]*\)$/\1/p')
case $trust in *C* | *T* | *P*) not_ok "no trust flag from the file or the role rules (got $trust)" ;;
*) ok "no trust flag from the file or the role rules (certutil -L: $trust)" ;; esac
DB2=$T/second
make_nssdb "$DB2" >/dev/null
expect_status 0 "with -t, the trust comes from -t" \
    "$CABACK" restore -i "$NOMAC" -w "$PW" -d "$DB2" -f "$DB2.pass" --allow-unauthenticated -t "Evil Root CA=C,,"
expect_equal "certutil -L shows the -t flags" "Cu,u,u" "$(certutil -L -d "sql:$DB2" | sed -n 's/^Evil Root CA  *\([^ ]*\)$/\1/p')"

# ---- integrity modes of caback's own files ----
ARCHIVE=$T/ca-backup.p12
expect_status 0 "a caback backup" "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$ARCHIVE" -w "$PW" --iterations 2000
expect_status 0 "list it" "$CABACK" list "$ARCHIVE" -w "$PW"
expect_grep "its integrity is password-mac" '^  integrity: password-mac$' "$OUT"
expect_status 0 "a --mac pbmac1 backup" "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$T/pbmac1.p12" -w "$PW" --iterations 2000 --mac pbmac1
expect_status 0 "list --json of it" "$CABACK" list "$T/pbmac1.p12" -w "$PW" --json
json_checks "pbmac1" "$OUT" 'r["integrity"] == "pbmac1"'

# ---- the signature status, in each mode ----
status_case() { # LABEL EXPECTED_LINE_REGEX: checks the last run's text, JSON log and text log
    expect_grep "$1: the output says it" "$2" "$OUT"
    expect_grep "$1: the text log says it" "signature: ${2#^signature: }" "$LOG"
    last_json "$3"
    json_checks "$1: the JSON log" "$T/record.json" "r[\"signature\"].startswith(\"$4\")"
}
fresh_db() { rm -rf "$T/r"; make_nssdb "$T/r" >/dev/null; certutil -A -d "sql:$T/r" -n "$DOGTAG_CA_NICK" -t CT,C,C -a -i "$T/ca.pem"; }

fresh_db
expect_status 0 "restore without a signature" "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$T/r" -f "$T/r.pass" --log "$LOG"
status_case "none" '^signature: none$' restore none
fresh_db
expect_status 0 "restore --json without a signature" "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$T/r" -f "$T/r.pass" --json
json_checks "none, --json" "$OUT" 'r["signature_status"] == "none"' 'r["signature_line"] == "signature: none"' 'r["integrity"] == "password-mac"'
fresh_db
db_state "$T/r" >"$T/before"
expect_status 1 "--require-signature without a signature" \
    "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$T/r" -f "$T/r.pass" --require-signature
expect_grep "says there is no signature and names --require-signature" 'has no signature.*--require-signature' "$ERR"
db_state "$T/r" >"$T/after"
check "missing signature with --require-signature: the database is unchanged" cmp -s "$T/before" "$T/after"
expect_status 1 "verify --require-signature without a signature" "$CABACK" verify "$ARCHIVE" -w "$PW" --require-signature
expect_status 0 "verify without a signature" "$CABACK" verify "$ARCHIVE" -w "$PW" --log "$LOG"
status_case "verify, none" '^signature: none$' verify none

expect_status 0 "sign the backup" "$CABACK" sign "$ARCHIVE" --signer "Backup Signer" -d "$CA" -f "$CA.pass"
fresh_db
expect_status 0 "restore of the signed backup" "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$CA" -f "$CA.pass" --log "$LOG" --dry-run
status_case "checked" '^signature: checked \(signer CN=Backup Signer' restore "checked (signer CN=Backup Signer"
expect_status 0 "restore --json of the signed backup" "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$CA" -f "$CA.pass" --dry-run --json
json_checks "checked, --json" "$OUT" 'r["signature_status"] == "checked"' 'r["signature_line"].startswith("signature: checked (signer CN=Backup Signer")'
expect_status 0 "verify of the signed backup against -d" "$CABACK" verify "$ARCHIVE" -w "$PW" -d "$CA" -f "$CA.pass" --log "$LOG"
status_case "verify, checked" '^signature: checked \(signer CN=Backup Signer' verify "checked (signer"
expect_status 0 "verify --json of the signed backup with --signature-ca" "$CABACK" verify "$ARCHIVE" -w "$PW" --signature-ca "$T/ca.pem" --json
json_checks "verify checked, --json" "$OUT" 'r["signature_status"] == "checked"'

expect_status 0 "restore --no-signature-check" "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$CA" -f "$CA.pass" --log "$LOG" --dry-run --no-signature-check
status_case "skipped" '^signature: skipped \(--no-signature-check\)$' restore "skipped (--no-signature-check)"
expect_status 0 "verify --no-signature-check" "$CABACK" verify "$ARCHIVE" -w "$PW" --no-signature-check --json
json_checks "verify skipped, --json" "$OUT" 'r["signature_status"] == "skipped"' 'r["signature_line"] == "signature: skipped (--no-signature-check)"'
expect_status 2 "--require-signature with --no-signature-check is a usage error" \
    "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$CA" -f "$CA.pass" --require-signature --no-signature-check

# A bad signature (the signature of another file) and an untrusted one (a database without the CA).
cp "$ARCHIVE.sig" "$T/good.sig"
printf 'other\n' >"$T/other.bin"
"$CABACK" sign "$T/other.bin" --signer "Backup Signer" -d "$CA" -f "$CA.pass" >/dev/null 2>&1
cp "$T/other.bin.sig" "$ARCHIVE.sig"
fresh_db
db_state "$T/r" >"$T/before"
expect_status 1 "a bad signature is refused with --require-signature" \
    "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$T/r" -f "$T/r.pass" --require-signature
expect_grep "says the signature does not vouch for the file" 'does not vouch' "$ERR"
db_state "$T/r" >"$T/after"
check "bad signature: the database is unchanged" cmp -s "$T/before" "$T/after"
expect_status 1 "verify refuses the bad signature" "$CABACK" verify "$ARCHIVE" -w "$PW" --signature-ca "$T/ca.pem"
cp "$T/good.sig" "$ARCHIVE.sig"
rm -rf "$T/u"; make_nssdb "$T/u" >/dev/null
db_state "$T/u" >"$T/before"
expect_status 1 "an untrusted signer is refused with --require-signature" \
    "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$T/u" -f "$T/u.pass" --require-signature
db_state "$T/u" >"$T/after"
check "untrusted signature: the database is unchanged" cmp -s "$T/before" "$T/after"

# ---- restore automatic requires the signature of a backup caback sign marked ----
expect_status 0 "a new backup is recorded" "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$T/auto.p12" -w "$PW" --iterations 2000
check "latest_backup is not marked signed yet" sh -c "! grep -q '^signed=yes' '$CABACK_STATE_DIR/latest_backup'"
expect_status 0 "sign the recorded backup" "$CABACK" sign "$T/auto.p12" --signer "Backup Signer" -d "$CA" -f "$CA.pass"
expect_grep "sign says restore automatic now requires the signature" 'restore automatic now requires' "$OUT"
check "latest_backup is marked signed=yes" grep -q '^signed=yes$' "$CABACK_STATE_DIR/latest_backup"
check "the record keeps its recorded= time" grep -q '^recorded=' "$CABACK_STATE_DIR/latest_backup"
expect_status 0 "restore automatic checks the signature" \
    "$CABACK" restore automatic -w "$PW" -d "$CA" -f "$CA.pass" --dry-run
expect_grep "restore automatic: signature: checked" '^signature: checked' "$OUT"
rm "$T/auto.p12.sig"
expect_status 1 "restore automatic refuses the signed backup once its signature is gone" \
    "$CABACK" restore automatic -w "$PW" -d "$CA" -f "$CA.pass" --dry-run
expect_grep "names the missing signature and why it is required" 'has no signature.*was signed' "$ERR"

done_testing
