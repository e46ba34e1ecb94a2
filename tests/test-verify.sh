#!/bin/bash
# caback verify, the restore drill: a good backup is restorable (exit 0, --json read by Python);
# compared with the database it came from it is complete; a backup of a subset, or an older
# backup after a re-key, is stale and names what it lacks (exit 1); a wrong password is exit 3;
# a damaged file (a flipped byte, truncated, not PKCS#12) is exit 1 without a crash; a file
# whose chain is incomplete fails; an expired certificate is reported; the temporary folder of
# the drill is gone after every run; each run is logged without the passwords.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util openssl "$PYTHON3"

DB=$TEST_TMP/ca
make_dogtag_ca "$DB"
PW=$TEST_TMP/p12.pass
P12_PASSWORD='Verify p12 pass 9'
printf '%s\n' "$P12_PASSWORD" >"$PW"
FAST=(--iterations 2000)
export TMPDIR=$TEST_TMP/tmp
mkdir -p "$TMPDIR"
SUB="subsystemCert cert-pki-ca"

# no_drill_left DESCRIPTION: the drill's temporary folders are all gone.
no_drill_left() {
    local left
    left=$(find "$TMPDIR" -mindepth 1 -maxdepth 1 | head -5)
    if [ -z "$left" ]; then ok "$1: no temporary folder left"; else
        not_ok "$1: left in TMPDIR: $left"
    fi
}

# json_check FILE PYTHON-EXPRESSION...: each expression, over the parsed JSON "j", must be true.
json_check() {
    local file=$1; shift
    "$PYTHON3" - "$file" "$@" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
for expr in sys.argv[2:]:
    print(('PASS ' if eval(expr) else 'FAIL ') + expr)
EOF
}
# report_checks DESCRIPTION FILE EXPR...: one TAP line per expression.
report_checks() {
    local desc=$1 file=$2 line; shift 2
    while IFS= read -r line; do
        case $line in
        PASS\ *) ok "$desc: ${line#PASS }" ;;
        *) not_ok "$desc: ${line#FAIL }"; diag "$(head -c 1500 "$file")" ;;
        esac
    done < <(json_check "$file" "$@" 2>&1)
}

expect_status 0 "backup of the fixture CA" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/full.p12" -w "$PW" "${FAST[@]}"
FULL_SHA=$(sha256sum "$TEST_TMP/full.p12" | cut -d' ' -f1)

# ---- a good backup ----
expect_status 0 "verify a good backup" "$CABACK" verify "$TEST_TMP/full.p12" -w "$PW"
expect_grep "summary: restorable, 5 keys, 5 certificates" \
    "full.p12: restorable: 5 of 5 keys restored and signing for their certificates, 5 certificates, chains verified" "$OUT"
expect_grep "summary gives the SHA-256" "$FULL_SHA" "$OUT"
no_drill_left "good backup"
cp "$OUT" "$TEST_TMP/good.out"
# The throwaway database's work factor is the drill's own: NSS's variable in the caller's
# environment (0 makes NSS refuse to set a password) changes nothing.
NSS_MAX_MP_PBE_ITERATION_COUNT=0 expect_status 0 "verify with NSS_MAX_MP_PBE_ITERATION_COUNT=0 set" \
    "$CABACK" verify "$TEST_TMP/full.p12" -w "$PW"
check "the same report" cmp "$TEST_TMP/good.out" "$OUT"
no_drill_left "with the variable set"

expect_status 0 "verify a good backup against its database" \
    "$CABACK" verify "$TEST_TMP/full.p12" -w "$PW" -d "$DB" -f "$DB.pass"
expect_grep "complete against the database" "complete against NSS database $DB" "$OUT"

export VERIFY_PW=$P12_PASSWORD
expect_status 0 "verify --json with --p12-password-env" \
    "$CABACK" verify "$TEST_TMP/full.p12" --p12-password-env VERIFY_PW -d "$DB" -f "$DB.pass" --json
cp "$OUT" "$TEST_TMP/good.json"
certutil_key_ids "$DB" | cut -d' ' -f1 | sort | tr '\n' ' ' >"$TEST_TMP/ids.txt"
report_checks "good --json" "$TEST_TMP/good.json" \
    "j['restorable'] is True" "j['chain_ok'] is True" \
    "j['sha256'] == '$FULL_SHA'" \
    "len(j['keys']) == 5 and all(k['signature_ok'] for k in j['keys'])" \
    "' '.join(sorted(k['nss_id'] for k in j['keys'])) + ' ' == open('$TEST_TMP/ids.txt').read()" \
    "len(j['certificates']) == 5 and all(c['chain_ok'] for c in j['certificates'])" \
    "[c['trust'] for c in j['certificates'] if c['nickname'] == 'caSigningCert cert-pki-ca'] == ['CTu,Cu,Cu']" \
    "j['missing_from_backup'] == [] and j['not_in_database'] == []" \
    "j['expiring'] == [] and j['problems'] == []" \
    "j['database'] == '$DB'"
no_drill_left "--json"

# ---- a backup of a subset, compared with the whole database ----
expect_status 0 "backup of one certificate (-n)" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/sub.p12" -w "$PW" "${FAST[@]}" -n "$SUB"
expect_status 0 "the subset alone is restorable (its CA certificate comes along)" \
    "$CABACK" verify "$TEST_TMP/sub.p12" -w "$PW"
expect_status 1 "the subset against the database is incomplete" \
    "$CABACK" verify "$TEST_TMP/sub.p12" -w "$PW" -d "$DB" -f "$DB.pass"
expect_grep "the error says the backup is stale" "is not restorable as it is: the backup is stale" "$ERR"
for nick in "ocspSigningCert cert-pki-ca" "Server-Cert cert-pki-ca" "auditSigningCert cert-pki-ca" \
    "$DOGTAG_CA_NICK"; do
    expect_grep "names the missing key of $nick" "the key of \"$nick\" \\(key ID [0-9a-f]{40}\\)" "$ERR"
done
expect_no_grep "does not name what the file has" "\"$SUB\"" "$ERR"
expect_grep "summary says STALE" "NOT restorable.*STALE against NSS database" "$OUT"
expect_status 1 "the subset against the database, --json" \
    "$CABACK" verify "$TEST_TMP/sub.p12" -w "$PW" -d "$DB" -f "$DB.pass" --json
cp "$OUT" "$TEST_TMP/sub.json"
report_checks "subset --json" "$TEST_TMP/sub.json" \
    "j['restorable'] is False and j['chain_ok'] is True" \
    "sorted(m['nickname'] for m in j['missing_from_backup'] if m['type'] == 'key') == ['Server-Cert cert-pki-ca', 'auditSigningCert cert-pki-ca', 'caSigningCert cert-pki-ca', 'ocspSigningCert cert-pki-ca']" \
    "sorted(m['nickname'] for m in j['missing_from_backup'] if m['type'] == 'certificate') == ['Server-Cert cert-pki-ca', 'auditSigningCert cert-pki-ca', 'ocspSigningCert cert-pki-ca']" \
    "j['not_in_database'] == []"

# ---- an older backup after a re-key ----
cp -a "$DB" "$TEST_TMP/rekeyed"
cp "$DB.pass" "$TEST_TMP/rekeyed.pass"
cp "$DB.noise" "$TEST_TMP/rekeyed.noise"
rekey_cert "$TEST_TMP/rekeyed" "$SUB"
NEW_ID=$(certutil_key_ids "$TEST_TMP/rekeyed" | sed -n "s/^\([0-9a-f]*\) NSS Certificate DB:$SUB\$/\1/p")
OLD_SERIAL=$(certutil -L -d "sql:$DB" -n "$SUB" -a | openssl x509 -noout -serial | sed 's/^serial=//')
expect_status 1 "the old backup against the re-keyed database" \
    "$CABACK" verify "$TEST_TMP/full.p12" -w "$PW" -d "$TEST_TMP/rekeyed" -f "$DB.pass" --json
cp "$OUT" "$TEST_TMP/rekey.json"
expect_grep "stale, naming the re-keyed nickname and its new key ID" \
    "the backup is stale.*the key of \"$SUB\" \\(key ID $NEW_ID\\)" "$ERR"
report_checks "re-keyed --json" "$TEST_TMP/rekey.json" \
    "j['restorable'] is False" \
    "[(m['type'], m['nickname'], m['nss_id']) for m in j['missing_from_backup']] == [('certificate', '$SUB', None), ('key', '$SUB', '$NEW_ID')]" \
    "[(m['type'], m['nickname'], m['serial']) for m in j['not_in_database']] == [('certificate', '$SUB', '$OLD_SERIAL')]" \
    "any('no longer has' in n for n in j['notes'])"
expect_status 0 "a new backup of the re-keyed database" \
    "$CABACK" backup -d "$TEST_TMP/rekeyed" -f "$DB.pass" -o "$TEST_TMP/new.p12" -w "$PW" "${FAST[@]}"
# The old key stays in the database without a certificate, and caback backup does not take it:
# the new backup lacks a key the database holds, which the drill says (issue 22 §5).
expect_status 1 "the new backup lacks the old key left without certificate: stale" \
    "$CABACK" verify "$TEST_TMP/new.p12" -w "$PW" -d "$TEST_TMP/rekeyed" -f "$DB.pass"
expect_grep "the orphan key is noted" "warning: .*no certificate" "$ERR"
expect_grep "and is a finding of its own" "^problem: the backup is stale: .* holds private keys the file lacks: key [0-9a-f]+ \(no certificate" "$OUT"

# ---- wrong passwords ----
printf 'not the password\n' >"$TEST_TMP/wrong.pass"
expect_status 3 "wrong PKCS#12 password" "$CABACK" verify "$TEST_TMP/full.p12" -w "$TEST_TMP/wrong.pass"
expect_grep "says the password is wrong (the file is unchanged)" \
    "wrong password for .*full.p12 .*; the file is unchanged since caback backup wrote it .*, so the password is wrong" "$ERR"
no_drill_left "wrong password"
printf 'wrong db password\n' >"$TEST_TMP/wrongdb.pass"
expect_status 3 "wrong database password" \
    "$CABACK" verify "$TEST_TMP/full.p12" -w "$PW" -d "$DB" -f "$TEST_TMP/wrongdb.pass"

# ---- damaged files ----
# flip FILE OFFSET: invert the byte at OFFSET in place.
flip() {
    "$PYTHON3" -c 'import sys
p, o = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read()); b[o] ^= 0xff; open(p, "wb").write(bytes(b))' "$1" "$2"
}
SIZE=$(stat -c %s "$TEST_TMP/full.p12")
expect_status 0 "backup to be damaged" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/flipped.p12" -w "$PW" "${FAST[@]}"
flip "$TEST_TMP/flipped.p12" $((SIZE / 2))
expect_status 1 "a flipped byte in a recorded backup" \
    "$CABACK" verify "$TEST_TMP/flipped.p12" -w "$PW" --json
expect_grep "says damaged or changed, with both digests" \
    "flipped.p12 is damaged or was changed after caback backup wrote it: its SHA-256 is now [0-9a-f]{64}, but the latest_backup pointer recorded [0-9a-f]{64}" "$ERR"
report_checks "damaged --json" "$OUT" "j['restorable'] is False and 'damaged' in j['error']['message']"
no_drill_left "flipped byte"

# A copy nobody recorded: a wrong MAC cannot be told from a wrong password.
cp "$TEST_TMP/full.p12" "$TEST_TMP/copy.p12"
flip "$TEST_TMP/copy.p12" $((SIZE / 2))
run "$CABACK" verify "$TEST_TMP/copy.p12" -w "$PW"
if [ "$STATUS" -eq 1 ] || [ "$STATUS" -eq 3 ]; then ok "a flipped byte in an unrecorded copy: exit $STATUS"; else
    not_ok "a flipped byte in an unrecorded copy: exit $STATUS"; diag "$(cat "$ERR")"
fi
[ "$STATUS" -ne 3 ] || expect_grep "exit 3 says the file may be damaged" "or the file is damaged" "$ERR"

head -c $((SIZE / 2)) "$TEST_TMP/full.p12" >"$TEST_TMP/truncated.p12"
expect_status 1 "a truncated backup" "$CABACK" verify "$TEST_TMP/truncated.p12" -w "$PW"
expect_grep "names the file" "truncated.p12" "$ERR"
certutil -L -d "sql:$DB" -n "$DOGTAG_CA_NICK" -r >"$TEST_TMP/cert.der"
expect_status 1 "a certificate instead of a PKCS#12 file" "$CABACK" verify "$TEST_TMP/cert.der" -w "$PW"
: >"$TEST_TMP/empty.p12"
expect_status 1 "an empty file" "$CABACK" verify "$TEST_TMP/empty.p12" -w "$PW"
expect_status 1 "a missing file" "$CABACK" verify "$TEST_TMP/nothing.p12" -w "$PW"
no_drill_left "damaged files"

# ---- a file whose chain is incomplete ----
openssl pkcs12 -in "$TEST_TMP/sub.p12" -passin "file:$PW" -nokeys -clcerts -out "$TEST_TMP/leaf.crt" 2>/dev/null
openssl pkcs12 -in "$TEST_TMP/sub.p12" -passin "file:$PW" -nocerts -nodes -out "$TEST_TMP/leaf.key" 2>/dev/null
openssl pkcs12 -export -in "$TEST_TMP/leaf.crt" -inkey "$TEST_TMP/leaf.key" -name "$SUB" \
    -passout "file:$PW" -out "$TEST_TMP/leaf.p12"
expect_status 1 "a key and certificate without their CA certificate" \
    "$CABACK" verify "$TEST_TMP/leaf.p12" -w "$PW"
expect_grep "the chain failure names the missing issuer" \
    "the chain of certificate \"$SUB\" .* does not verify: the issuer \"CN=CA Signing Certificate" "$ERR"

# ---- an expired certificate ----
EXP=$TEST_TMP/expiring
cp -a "$DB" "$EXP"
cp "$DB.pass" "$EXP.pass"
cp "$DB.noise" "$EXP.noise"
issue_cert "$EXP" "oldCert" "CN=Old Certificate,O=EXAMPLE.TEST Security Domain" "u,u,u" -w -24
expect_status 0 "backup with an expired certificate" \
    "$CABACK" backup -d "$EXP" -f "$EXP.pass" -o "$TEST_TMP/expiring.p12" -w "$PW" "${FAST[@]}" -n oldCert
expect_status 0 "an expired certificate does not make a backup unrestorable" \
    "$CABACK" verify "$TEST_TMP/expiring.p12" -w "$PW" --json
cp "$OUT" "$TEST_TMP/expiring.json"
expect_grep "warns about it" "warning: certificate \"oldCert\" \\(serial 0x[0-9A-F]+\\) (expired on|expires on)" "$ERR"
report_checks "expiring --json" "$TEST_TMP/expiring.json" \
    "[e['nickname'] for e in j['expiring']] == ['oldCert']" \
    "[c['chain_ok'] for c in j['certificates'] if c['nickname'] == 'oldCert'] == [True]"

# ---- usage ----
expect_status 2 "no file" "$CABACK" verify -w "$PW"
expect_status 2 "-w and --p12-password-env together" \
    "$CABACK" verify "$TEST_TMP/full.p12" -w "$PW" --p12-password-env VERIFY_PW
expect_status 2 "-f without -d" "$CABACK" verify "$TEST_TMP/full.p12" -w "$PW" -f "$DB.pass"
no_drill_left "every run"

# ---- a drill killed before it cleaned up ----
# The folder of a process that is gone is removed by the next drill; one of a live process stays.
DEAD=$(sh -c 'echo $$')
mkdir -p "$TMPDIR/caback-verify-$DEAD-AbC123" "$TMPDIR/caback-verify-$$-XyZ789"
echo keys >"$TMPDIR/caback-verify-$DEAD-AbC123/key4.db"
expect_status 0 "a drill after a killed one" "$CABACK" verify "$TEST_TMP/full.p12" -w "$PW"
check "the killed drill's folder is gone" test ! -e "$TMPDIR/caback-verify-$DEAD-AbC123"
check "a live process's folder is left alone" test -d "$TMPDIR/caback-verify-$$-XyZ789"
rmdir "$TMPDIR/caback-verify-$$-XyZ789"
# A real kill -9 in the middle of a drill at the default iterations (about a second of work).
"$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/default.p12" -w "$PW" >/dev/null 2>&1
"$CABACK" verify "$TEST_TMP/default.p12" -w "$PW" >/dev/null 2>&1 &
victim=$!
for _ in $(seq 100); do
    [ -n "$(find "$TMPDIR" -mindepth 1 -maxdepth 1 -name 'caback-verify-*')" ] && break
    sleep 0.02
done
kill -9 "$victim" 2>/dev/null; wait "$victim" 2>/dev/null
check "the killed drill left its folder (the case the sweep is for)" \
    sh -c 'find "$1" -mindepth 1 -maxdepth 1 -name "caback-verify-*" | grep -q .' _ "$TMPDIR"
expect_status 0 "a drill after a drill killed with kill -9" "$CABACK" verify "$TEST_TMP/full.p12" -w "$PW"
no_drill_left "after the killed drill and a new one"

# ---- the log ----
LOG=$CABACK_STATE_DIR/caback.log
expect_grep "text log has verify records" "^[0-9T:-]+Z verify OK$" "$LOG"
expect_grep "and failed ones" "^[0-9T:-]+Z verify ERROR$" "$LOG"
report_checks "first verify record" <(grep '"verb":"verify"' "$LOG.jsonl" | head -1) \
    "j['result'] == 'OK' and j['file'] == '$TEST_TMP/full.p12' and j['sha256'] == '$FULL_SHA'" \
    "len(j['keys']) == 5"
for f in "$LOG" "$LOG.jsonl" "$TEST_TMP"/*.json; do
    if grep -qF -- "$P12_PASSWORD" "$f" || grep -qF -- "$FIXTURE_DB_PASSWORD" "$f"; then
        not_ok "no password in $(basename "$f")"
    else ok "no password in $(basename "$f")"; fi
done

done_testing
