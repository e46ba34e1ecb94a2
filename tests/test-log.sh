#!/bin/bash
# The run log of backup and fix-clone-ids (verify's records are in test-verify.sh): one record per
# run in the text log and its JSON-lines twin, with the database, the file and its SHA-256, each
# key and nickname, warnings and errors; both files mode 0600 even under umask 000; the passwords
# used (database, PKCS#12, the Windows form's argument) in no log line, output or error message;
# $CABACK_STATE_DIR and --log respected; a log that cannot be written only warns; latest_backup
# points at the newest verified backup and is left alone by --no-verify and failed backups.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil openssl "$PYTHON3"

DB=$TEST_TMP/ca
make_dogtag_ca "$DB"
P12_PASSWORD='Log p12 secret 7'
PW=$TEST_TMP/p12.pass
printf '%s\n' "$P12_PASSWORD" >"$PW"
FAST=(--iterations 2000)
STATE=$TEST_TMP/state-a
export CABACK_STATE_DIR=$STATE
LOG=$STATE/caback.log
SUB="subsystemCert cert-pki-ca"
ALL_OUTPUT=$TEST_TMP/all-output
: >"$ALL_OUTPUT"

# keep: collect this run's output and errors, to look for passwords at the end.
keep() { cat "$OUT" "$ERR" >>"$ALL_OUTPUT"; }

# last_record VERB: the last JSON line of the log for VERB, in $TEST_TMP/record.json.
last_record() {
    grep "\"verb\":\"$1\"" "${2:-$LOG}.jsonl" | tail -1 >"$TEST_TMP/record.json"
}
# record_checks DESCRIPTION EXPR...: each Python expression over the record "r" must hold.
record_checks() { json_checks "$1" "$TEST_TMP/record.json" "${@:2}"; }
mode_of() { stat -c %a "$1"; }
records() { grep -c . "$1.jsonl" 2>/dev/null || echo 0; }

# ---- backup ----
umask 000
expect_status 0 "backup under umask 000" \
    "$CABACK" backup -d "$DB" -f "$DB.password.conf" -o "$TEST_TMP/one.p12" -w "$PW" "${FAST[@]}"
keep
umask 022
ONE_SHA=$(sha256sum "$TEST_TMP/one.p12" | cut -d' ' -f1)
check "the log is in \$CABACK_STATE_DIR" test -f "$LOG"
expect_equal "text log mode 0600" 600 "$(mode_of "$LOG")"
expect_equal "JSON log mode 0600" 600 "$(mode_of "$LOG.jsonl")"
expect_equal "state folder mode 0700" 700 "$(mode_of "$STATE")"
expect_equal "one record" 1 "$(records "$LOG")"
expect_grep "text record: time, verb, result" "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z backup OK$" "$LOG"
expect_grep "text record: database" "^    database: $DB$" "$LOG"
expect_grep "text record: file" "^    file: $TEST_TMP/one.p12$" "$LOG"
expect_grep "text record: its SHA-256" "^    sha256: $ONE_SHA$" "$LOG"
expect_grep "text record: command with file names only" \
    "^    command: caback backup -d $DB -f $DB.password.conf -o $TEST_TMP/one.p12 -w $PW --iterations 2000$" "$LOG"
certutil_key_ids "$DB" | sed 's/ NSS Certificate DB:/ /' >"$TEST_TMP/keys.txt"
while read -r id nick; do
    expect_grep "text record: key line of $nick" "^    key: \"$nick\"  nss $id  dogtag $(dogtag_id "$id")$" "$LOG"
done <"$TEST_TMP/keys.txt"
last_record backup
awk '{print $1}' "$TEST_TMP/keys.txt" | sort | tr '\n' ' ' >"$TEST_TMP/ids.txt"
record_checks "JSON record" \
    "r['result'] == 'OK' and r['error'] is None and r['warnings'] == []" \
    "r['database'] == '$DB' and r['token'] is None" \
    "r['file'] == '$TEST_TMP/one.p12' and r['sha256'] == '$ONE_SHA'" \
    "' '.join(sorted(k['nss_id'] for k in r['keys'])) + ' ' == open('$TEST_TMP/ids.txt').read()" \
    "sorted(k['nickname'] for k in r['keys'])[0] == 'Server-Cert cert-pki-ca' and len(r['keys']) == 5" \
    "r['user'] != '' and r['host'] != '' and r['time'].endswith('Z')"

LATEST=$STATE/latest_backup
expect_grep "latest_backup points at the verified backup" "^path=$TEST_TMP/one.p12$" "$LATEST"
expect_grep "latest_backup holds its SHA-256" "^sha256=$ONE_SHA$" "$LATEST"
expect_equal "latest_backup mode 0600" 600 "$(mode_of "$LATEST")"
expect_grep "the output says it was recorded" "Recorded as the latest backup" "$TEST_TMP/all-output"

# Relative -o, passwords from environment variables, --json.
export DBPW=$FIXTURE_DB_PASSWORD P12PW=$P12_PASSWORD
STATUS=0
(cd "$TEST_TMP" && exec "$CABACK" backup -d "$DB" --password-env DBPW -o two.p12 \
    --p12-password-env P12PW "${FAST[@]}" -n "$SUB" --json) >"$OUT" 2>"$ERR" </dev/null || STATUS=$?
expect_equal "backup with passwords from the environment, --json" 0 "$STATUS"
keep
TWO_SHA=$(sha256sum "$TEST_TMP/two.p12" | cut -d' ' -f1)
"$PYTHON3" -c 'import json, sys; j = json.load(open(sys.argv[1]))
sys.exit(0 if j["sha256"] == sys.argv[2] and j["latest_backup"] is True else 1)' \
    "$OUT" "$TWO_SHA" && ok "--json gives sha256 and latest_backup" || not_ok "--json gives sha256 and latest_backup"
last_record backup
record_checks "record of the second backup" \
    "r['file'] == '$TEST_TMP/two.p12' and r['sha256'] == '$TWO_SHA'" \
    "'--password-env DBPW' in r['command'] and '--p12-password-env P12PW' in r['command']" \
    "' -o two.p12 ' in r['command'] and \"-n 'subsystemCert cert-pki-ca'\" in r['command']" \
    "[k['nickname'] for k in r['keys']] == ['$SUB']"
expect_grep "latest_backup follows the newest verified backup" "^path=$TEST_TMP/two.p12$" "$LATEST"

# --no-verify: logged, but not the latest backup.
expect_status 0 "backup --no-verify" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/unverified.p12" -w "$PW" "${FAST[@]}" --no-verify
keep
expect_grep "the output says it is not recorded as the latest" "Not recorded as the latest backup" "$OUT"
expect_grep "latest_backup still points at the verified one" "^path=$TEST_TMP/two.p12$" "$LATEST"
last_record backup
UNVERIFIED_SHA=$(sha256sum "$TEST_TMP/unverified.p12" | cut -d' ' -f1)
record_checks "record of --no-verify" \
    "r['command'].endswith('--no-verify') and r['sha256'] == '$UNVERIFIED_SHA'"

# A failed backup: logged as ERROR, the pointer untouched.
expect_status 4 "backup refused: the file exists" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/one.p12" -w "$PW" "${FAST[@]}"
keep
last_record backup
record_checks "record of the refused backup" \
    "r['result'] == 'ERROR' and 'already exists' in r['error']"
expect_grep "latest_backup unchanged after a failure" "^path=$TEST_TMP/two.p12$" "$LATEST"
expect_grep "text log marks the error" "^    ERROR: .*one.p12 already exists" "$LOG"

WRONG_DB_PASSWORD='Wr0ng.db-pw 5'
printf '%s\n' "$WRONG_DB_PASSWORD" >"$TEST_TMP/wrong.pass"
expect_status 3 "backup with a wrong database password" \
    "$CABACK" backup -d "$DB" -f "$TEST_TMP/wrong.pass" -o "$TEST_TMP/three.p12" -w "$PW" "${FAST[@]}"
keep
last_record backup
record_checks "record of the wrong password" "r['result'] == 'ERROR' and 'log in' in r['error']"

# The Windows form: the password is an argument, and still never logged.
expect_status 0 "caback -backup PASSWORD FILE" \
    "$CABACK" -backup "$P12_PASSWORD" "$TEST_TMP/win.p12" -d "$DB" -f "$DB.pass" --iterations 2000
keep
last_record backup
record_checks "record of the Windows form" \
    "r['file'] == '$TEST_TMP/win.p12' and r['result'] == 'WARNING'" \
    "any('command line' in w for w in r['warnings'])"
expect_grep "text log marks the warning" "^    WARNING: a password given on the command line" "$LOG"

# A warning of the selection (an orphan key after a re-key) is in the record.
cp -a "$DB" "$TEST_TMP/rekeyed"
cp "$DB.pass" "$TEST_TMP/rekeyed.pass"
cp "$DB.noise" "$TEST_TMP/rekeyed.noise"
rekey_cert "$TEST_TMP/rekeyed" "$SUB"
expect_status 0 "backup of a re-keyed database" \
    "$CABACK" backup -d "$TEST_TMP/rekeyed" -f "$DB.pass" -o "$TEST_TMP/rekeyed.p12" -w "$PW" "${FAST[@]}"
keep
last_record backup
record_checks "record of the re-keyed backup" \
    "r['result'] == 'WARNING' and any('orphan' in w for w in r['warnings'])"

# ---- --log, a log that cannot be written, another state folder ----
before=$(records "$LOG")
expect_status 0 "backup --log FILE" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/own.p12" -w "$PW" "${FAST[@]}" \
    --log "$TEST_TMP/own.log"
keep
check "--log writes FILE" test -s "$TEST_TMP/own.log"
expect_grep "latest_backup is independent of --log" "^path=$TEST_TMP/own.p12$" "$LATEST"
expect_equal "--log FILE.jsonl mode 0600" 600 "$(mode_of "$TEST_TMP/own.log.jsonl")"
expect_equal "the default log is not written with --log" "$before" "$(records "$LOG")"
last_record backup "$TEST_TMP/own.log"
record_checks "record in --log FILE" "r['command'].endswith('--log $TEST_TMP/own.log')"

expect_status 0 "a log that cannot be written does not fail the backup" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/nolog.p12" -w "$PW" "${FAST[@]}" \
    --log "$TEST_TMP/no-such-folder/x.log"
keep
expect_grep "it warns instead" "warning: this run was not logged: cannot open the log .*no-such-folder/x.log" "$ERR"

CABACK_STATE_DIR=$TEST_TMP/state-b run "$CABACK" backup -d "$DB" -f "$DB.pass" \
    -o "$TEST_TMP/b.p12" -w "$PW" "${FAST[@]}"
keep
expect_equal "backup with another CABACK_STATE_DIR" 0 "$STATUS"
check "its log is in that folder" test -s "$TEST_TMP/state-b/caback.log.jsonl"
expect_grep "and its latest_backup" "^path=$TEST_TMP/b.p12$" "$TEST_TMP/state-b/latest_backup"
expect_grep "the first folder's pointer is untouched" "^path=$TEST_TMP/nolog.p12$" "$LATEST"

# ---- fix-clone-ids ----
CFG=$TEST_TMP/CS.cfg
make_cscfg "$DB" "$CFG"
expect_status 0 "fix-clone-ids on a correct CS.cfg" \
    "$CABACK" fix-clone-ids "$CFG" -d "$DB" -f "$DB.pass"
keep
CFG_SHA=$(sha256sum "$CFG" | cut -d' ' -f1)
last_record fix-clone-ids
# The fixture's keys are random: when one's ID begins with a byte that is only the sign of the
# next (00 then < 80, or ff then >= 80; about 1 run in 60 with 4 keys), fix-clone-ids rightly
# warns that Dogtag before 10.5.6 cannot read its short form, and the record is a WARNING.
SHORT=$SHORT_DOGTAG_ID
record_checks "fix-clone-ids record" \
    "r['result'] == ('WARNING' if any($SHORT(bytes.fromhex(k['nss_id'])) for k in r['keys']) else 'OK')" \
    "len(r['warnings']) == sum($SHORT(bytes.fromhex(k['nss_id'])) for k in r['keys'])" \
    "all('Dogtag before 10.5.6' in w for w in r['warnings']) and r['database'] == '$DB'" \
    "r['file'] == '$CFG' and r['sha256'] == '$CFG_SHA'" \
    "r['command'] == 'caback fix-clone-ids -d $DB -f $DB.pass $CFG'" \
    "len(r['keys']) == 4 and all(k['nss_id'] and k['dogtag_id'] for k in r['keys'])"
SUB_ID=$(grep " $SUB\$" "$TEST_TMP/keys.txt" | cut -d' ' -f1)
record_checks "fix-clone-ids record: the subsystem key in both forms" \
    "['$SUB', '$SUB_ID', '$(dogtag_id "$SUB_ID")'] in [[k['nickname'], k['nss_id'], k['dogtag_id']] for k in r['keys']]"

make_cscfg "$DB" "$TEST_TMP/rekeyed.cfg"
expect_status 6 "fix-clone-ids --dry-run after a re-key (changes needed)" \
    "$CABACK" fix-clone-ids "$TEST_TMP/rekeyed.cfg" -d "$TEST_TMP/rekeyed" -f "$DB.pass" --dry-run
keep
NEW_ID=$(certutil_key_ids "$TEST_TMP/rekeyed" | sed -n "s/^\([0-9a-f]*\) NSS Certificate DB:$SUB\$/\1/p")
last_record fix-clone-ids
record_checks "fix-clone-ids --dry-run record" \
    "' --dry-run ' in r['command'] and r['database'] == '$TEST_TMP/rekeyed'" \
    "'$NEW_ID' in [k['nss_id'] for k in r['keys']]"
expect_status 1 "fix-clone-ids with a missing CS.cfg" \
    "$CABACK" fix-clone-ids "$TEST_TMP/nothing.cfg" -d "$DB" -f "$DB.pass" --log "$TEST_TMP/fix.log"
keep
last_record fix-clone-ids "$TEST_TMP/fix.log"
record_checks "fix-clone-ids failure record" "r['result'] == 'ERROR' and 'nothing.cfg' in r['error']"

# ---- passwords never reach the log; everything else is logged as it is ----
# A short password that is part of a path: the old redaction logged "(hidden)team" and so
# revealed it. Now the path is logged whole, and "(hidden)" appears nowhere.
mkdir -p "$TEST_TMP/redteam"
printf 'red\n' >"$TEST_TMP/red.pass"
expect_status 0 "backup with password \"red\" into folder redteam" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/redteam/ca.p12" -w "$TEST_TMP/red.pass" \
    "${FAST[@]}" --log "$TEST_TMP/red.log"
expect_grep "the path is logged as it is" "^    file: $TEST_TMP/redteam/ca.p12$" "$TEST_TMP/red.log"
expect_grep "the command is logged as it is" " -o $TEST_TMP/redteam/ca.p12 -w $TEST_TMP/red.pass " \
    "$TEST_TMP/red.log"
expect_no_grep "nothing is replaced by (hidden) in the text log" "hidden" "$TEST_TMP/red.log"
expect_no_grep "nothing is replaced by (hidden) in the JSON log" "hidden" "$TEST_TMP/red.log.jsonl"

# The Windows form with a password that starts with '-': it is the password, not an unknown
# option (which the option parser's error would have quoted).
DASH_PASSWORD="-Secret1-$$"
expect_status 0 "caback -backup -Secret1 FILE works" \
    "$CABACK" -backup "$DASH_PASSWORD" "$TEST_TMP/dash.p12" -d "$DB" -f "$DB.pass" "${FAST[@]}" \
    --log "$TEST_TMP/dash.log"
cat "$OUT" "$ERR" >"$TEST_TMP/dash.out"
DASH_PASSWORD=$DASH_PASSWORD expect_status 0 "the file opens with the password that starts with '-'" \
    "$CABACK" list "$TEST_TMP/dash.p12" --p12-password-env DASH_PASSWORD
DASH_PASSWORD=$DASH_PASSWORD run "$CABACK" -restore "$DASH_PASSWORD" "$TEST_TMP/dash.p12" -d "$DB" \
    -f "$DB.pass" --dry-run --no-signature-check --log "$TEST_TMP/dash.log"
expect_equal "caback -restore -Secret1 FILE --dry-run works" 0 "$STATUS"
cat "$OUT" "$ERR" >>"$TEST_TMP/dash.out"
# Misplaced (options first): refused, and the password is in no message.
expect_status 2 "caback -backup with options before the password is refused" \
    "$CABACK" -backup -d "$DB" "$DASH_PASSWORD" "$TEST_TMP/dash2.p12" -f "$DB.pass" \
    --log "$TEST_TMP/dash.log"
cat "$OUT" "$ERR" >>"$TEST_TMP/dash.out"
expect_status 2 "caback -restore with options before the password is refused" \
    "$CABACK" -restore "$TEST_TMP/dash.p12" -d "$DB" "$DASH_PASSWORD" --log "$TEST_TMP/dash.log"
cat "$OUT" "$ERR" >>"$TEST_TMP/dash.out"
expect_status 2 "caback -restore with an unknown option after the password is refused" \
    "$CABACK" -restore "$DASH_PASSWORD" "$TEST_TMP/dash.p12" -d "$DB" --no-such-option
cat "$OUT" "$ERR" >>"$TEST_TMP/dash.out"
expect_status 2 "caback -backup without FILE is refused" \
    "$CABACK" -backup "$DASH_PASSWORD" -d "$DB" -f "$DB.pass" --log "$TEST_TMP/dash.log"
cat "$OUT" "$ERR" >>"$TEST_TMP/dash.out"
for f in "$TEST_TMP/dash.out" "$TEST_TMP/dash.log" "$TEST_TMP/dash.log.jsonl"; do
    if grep -qF -- "Secret1" "$f"; then not_ok "the '-' password is in $(basename "$f")"; else
        ok "the '-' password is not in $(basename "$f")"; fi
done
check "the '-' backup was logged" grep -q "dash.p12" "$TEST_TMP/dash.log"

# ---- no password anywhere ----
for f in "$LOG" "$LOG.jsonl" "$TEST_TMP/own.log" "$TEST_TMP/own.log.jsonl" "$TEST_TMP/fix.log" \
    "$TEST_TMP/state-b/caback.log" "$STATE/latest_backup" "$ALL_OUTPUT"; do
    for secret in "$P12_PASSWORD" "$FIXTURE_DB_PASSWORD" "$WRONG_DB_PASSWORD"; do
        if grep -qF -- "$secret" "$f"; then not_ok "\"$secret\" in $(basename "$f")"; else
            ok "\"$secret\" not in $(basename "$f")"; fi
    done
done

done_testing
