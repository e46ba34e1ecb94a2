#!/bin/bash
# The command line as a contract scripts can trust (issue 21): nothing that looks like work does
# nothing; each failure kind has its documented exit status; the message names the right option.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil "$PYTHON3"

DB=$TEST_TMP/ca
make_dogtag_ca "$DB"
PW=$TEST_TMP/p12.pass
printf 'Contract pass 1\n' >"$PW"
F=$TEST_TMP/ca.p12
expect_status 0 "fixture: a backup of the CA" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$F" -w "$PW" --iterations 2000

# tree_state DIR: every file below DIR with its SHA-256, to prove that a run changed nothing.
# The database's files; caback.lock (the empty lock file every locking run makes beside the
# database, see --wait) is not the database's contents.
tree_state() { (cd "$1" && find . -type f ! -name caback.lock -print0 | sort -z | xargs -0r sha256sum); }

# ---- 1. Nothing that looks like work may silently do nothing ----

# -h is the token, as in certutil and pk12util; help is --help.
expect_status 0 "backup -h internal writes the backup" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -h internal -o "$TEST_TMP/h.p12" -w "$PW" --iterations 2000
check "backup -h internal wrote the file" test -s "$TEST_TMP/h.p12"
expect_no_grep "backup -h prints no help" '^Usage:' "$OUT"
expect_status 1 "backup -h NO-SUCH-TOKEN fails naming the token" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -h no-such-token -o "$TEST_TMP/h2.p12" -w "$PW"
expect_grep "the message names the token -h gave" 'no-such-token' "$ERR"
check "nothing was written for a token that is not there" test ! -e "$TEST_TMP/h2.p12"
expect_status 0 "restore -h internal --dry-run plans" \
    "$CABACK" restore -i "$F" -w "$PW" -d "$DB" -f "$DB.pass" -h internal --dry-run
expect_grep "restore -h prints the plan, not help" 'Restore plan for' "$OUT"
expect_status 0 "listkeys -h internal lists the keys" "$CABACK" listkeys -d "$DB" -f "$DB.pass" -h internal
expect_grep "listkeys -h lists the CA key" 'caSigningCert cert-pki-ca' "$OUT"
for verb in backup restore verify listkeys list keyid fix-clone-ids sign verify-signature; do
    expect_status 0 "caback $verb --help" "$CABACK" "$verb" --help
    expect_grep "$verb --help prints its usage" "^Usage:" "$OUT"
    expect_status 0 "caback help $verb" "$CABACK" help "$verb"
done
expect_status 0 "caback help restore" "$CABACK" help restore
expect_grep "help restore documents -h as the token" '^  -h, --token=NAME' "$OUT"

# restore --dry-run exits as the real run would: DST has another CA under the CA's nickname.
DST=$TEST_TMP/dst
make_nssdb "$DST"
make_dogtag_ca "$TEST_TMP/other"
certutil -L -d "sql:$TEST_TMP/other" -n "$DOGTAG_CA_NICK" -a >"$TEST_TMP/other-ca.pem"
certutil -A -d "sql:$DST" -f "$DST.pass" -n "$DOGTAG_CA_NICK" -t "C,C,C" -a -i "$TEST_TMP/other-ca.pem"
tree_state "$DST" >"$TEST_TMP/dst.before"
expect_status 4 "restore --dry-run with a conflict exits 4, as the real run" \
    "$CABACK" restore -i "$F" -w "$PW" -d "$DST" -f "$DST.pass" --dry-run
expect_grep "the dry run says the restore would stop" 'dry run: 1 conflict' "$ERR"
expect_grep "the dry run names --replace and --rename" '\-\-replace or \-\-rename' "$ERR"
expect_status 4 "the real restore exits 4 too" "$CABACK" restore -i "$F" -w "$PW" -d "$DST" -f "$DST.pass"
tree_state "$DST" >"$TEST_TMP/dst.after"
check "neither run changed the database" cmp -s "$TEST_TMP/dst.before" "$TEST_TMP/dst.after"
expect_status 0 "restore --dry-run --rename has no conflict left" \
    "$CABACK" restore -i "$F" -w "$PW" -d "$DST" -f "$DST.pass" --dry-run --rename

# fix-clone-ids --dry-run: 6 when changes are needed; a file that is not a CS.cfg is an error.
make_cscfg "$DB" "$TEST_TMP/CS.cfg"
expect_status 0 "fix-clone-ids --dry-run on a right CS.cfg" \
    "$CABACK" fix-clone-ids --dry-run "$TEST_TMP/CS.cfg" -d "$DB" -f "$DB.pass"
cp "$TEST_TMP/CS.cfg" "$TEST_TMP/stale.cfg"
sed -i 's/^\(cloning\.subsystem\.privkey\.id=\).*/\11234/' "$TEST_TMP/stale.cfg"
cp "$TEST_TMP/stale.cfg" "$TEST_TMP/stale.orig"
expect_status 6 "fix-clone-ids --dry-run with a stale entry: changes needed" \
    "$CABACK" fix-clone-ids --dry-run "$TEST_TMP/stale.cfg" -d "$DB" -f "$DB.pass"
expect_grep "the message says entries would change" 'dry run: [0-9]+ entries of .* would change' "$ERR"
check "the dry run wrote nothing" cmp -s "$TEST_TMP/stale.cfg" "$TEST_TMP/stale.orig"
printf 'hello=world\n# not a CS.cfg\n' >"$TEST_TMP/hosts.cfg"
expect_status 1 "fix-clone-ids on a file that is not a CS.cfg" \
    "$CABACK" fix-clone-ids "$TEST_TMP/hosts.cfg" -d "$DB" -f "$DB.pass"
expect_grep "the message says it is not a CS.cfg" 'is not a Dogtag CS.cfg' "$ERR"
expect_status 1 "fix-clone-ids --dry-run on a file that is not a CS.cfg" \
    "$CABACK" fix-clone-ids --dry-run /etc/hostname -d "$DB" -f "$DB.pass"

# keyid: option-like arguments are options, refused by name; negative IDs still work.
for opt in -d -f -h --token --dbdir; do
    expect_status 2 "keyid $opt is refused" "$CABACK" keyid "$opt" "$DB" a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3
    expect_grep "keyid $opt: the message names $opt" "so $opt is not one of its options" "$ERR"
    expect_equal "keyid $opt prints no ID" "" "$(cat "$OUT")"
done
expect_status 2 "keyid -c is refused" "$CABACK" keyid -c ab
expect_grep "keyid -c: the message names -c" 'Unknown option -c' "$ERR"
expect_status 0 "keyid still takes a negative Dogtag ID" "$CABACK" keyid --to nss -314bd3fd90753fe3687d358d
expect_status 0 "keyid still takes -1" "$CABACK" keyid --to nss -1

# The Windows form: PASSWORD FILE, checked; the password is never logged.
mkdir "$TEST_TMP/win"
(cd "$TEST_TMP/win" && "$CABACK" -backup out.p12 'Sup3rSecret!' -d "$DB" -f "$DB.pass" \
    --log "$TEST_TMP/win.log" >"$OUT" 2>"$ERR") && STATUS=0 || STATUS=$?
expect_equal "caback -backup FILE PASSWORD (swapped) is a usage error" 2 "$STATUS"
expect_grep "the message gives the order PASSWORD FILE" 'the order is PASSWORD FILE' "$ERR"
expect_no_grep "the message does not print the password" 'Sup3rSecret' "$ERR"
expect_equal "nothing was written" "" "$(ls "$TEST_TMP/win")"
expect_no_grep "the log does not hold the password" 'Sup3rSecret' "$TEST_TMP/win.log"
expect_no_grep "the JSON log does not hold the password" 'Sup3rSecret' "$TEST_TMP/win.log.jsonl"
expect_status 2 "caback -restore FILE PASSWORD (swapped) is a usage error" \
    "$CABACK" -restore "$F" 'Sup3rSecret!' -d "$DST" -f "$DST.pass"
expect_grep "-restore: the message gives the order" 'the order is PASSWORD FILE' "$ERR"
(cd "$TEST_TMP/win" && "$CABACK" -backup 'Sup3rSecret!' out.p12 -d "$DB" -f "$DB.pass" \
    --log "$TEST_TMP/win.log" >"$OUT" 2>"$ERR") && STATUS=0 || STATUS=$?
expect_equal "caback -backup PASSWORD FILE writes the backup" 0 "$STATUS"
check "the Windows form wrote out.p12" test -s "$TEST_TMP/win/out.p12"
expect_grep "the log names the file" 'out\.p12' "$TEST_TMP/win.log"
expect_no_grep "the log does not hold the password" 'Sup3rSecret' "$TEST_TMP/win.log"

# restore --create: a new or empty folder only; a failure removes the database it made.
mkdir "$TEST_TMP/busy"
printf 'keep me\n' >"$TEST_TMP/busy/notes.txt"
tree_state "$TEST_TMP/busy" >"$TEST_TMP/busy.before"
expect_status 4 "restore --create into a folder with other files is refused" \
    "$CABACK" restore -i "$F" -w "$PW" -d "$TEST_TMP/busy" --create -f "$PW"
expect_grep "the message says new or empty folder only" 'new or empty folder only' "$ERR"
expect_no_grep "the message does not say the folder does not exist" 'does not exist' "$ERR"
tree_state "$TEST_TMP/busy" >"$TEST_TMP/busy.after"
check "the folder is as it was" cmp -s "$TEST_TMP/busy.before" "$TEST_TMP/busy.after"
expect_status 4 "restore --create --dry-run into that folder exits as the real run" \
    "$CABACK" restore -i "$F" -w "$PW" -d "$TEST_TMP/busy" --create -f "$PW" --dry-run
expect_status 1 "restore without --create into a folder without a database" \
    "$CABACK" restore -i "$F" -w "$PW" -d "$TEST_TMP/busy" -f "$PW"
expect_grep "the message says the folder holds no database" 'holds no NSS database' "$ERR"
mkdir "$TEST_TMP/empty"
expect_status 0 "restore --create into an empty folder" \
    "$CABACK" restore -i "$F" -w "$PW" -d "$TEST_TMP/empty" --create -f "$PW"
printf 'wrong\n' >"$TEST_TMP/wrong.pass"
expect_status 3 "restore --create with a wrong PKCS#12 password" \
    "$CABACK" restore -i "$F" -w "$TEST_TMP/wrong.pass" -d "$TEST_TMP/new" --create -f "$PW"
expect_grep "the message says the new database was removed" 'database that --create made in .* was removed' "$ERR"
check "no database is left" test ! -e "$TEST_TMP/new"

# ---- 5. certutil and pk12util habits ----
expect_status 0 "-k FILE is -f, as in pk12util" "$CABACK" listkeys -d "$DB" -k "$DB.pass"
expect_grep "listkeys -k lists the keys" 'caSigningCert cert-pki-ca' "$OUT"
expect_status 2 "-K PASSWORD is refused" "$CABACK" listkeys -d "$DB" -K 'Fixture-K-Secret'
expect_grep "-K: the message points to -f and --password-env" '\-f FILE.*--password-env VAR' "$ERR"
expect_no_grep "-K: the message does not echo the password" 'Fixture-K-Secret' "$ERR"
expect_status 2 "-K on backup is refused before anything is written" \
    "$CABACK" backup -d "$DB" -K 'Fixture-K-Secret' -o "$TEST_TMP/k.p12" -w "$PW"
check "backup -K wrote nothing" test ! -e "$TEST_TMP/k.p12"
expect_status 2 "-k and -f together" "$CABACK" listkeys -d "$DB" -k "$DB.pass" -f "$DB.pass"
DBPW=$(cat "$DB.pass") expect_status 2 "-f with --password-env is refused as -w with --p12-password-env" \
    "$CABACK" listkeys -d "$DB" -f "$DB.pass" --password-env DBPW
expect_grep "the message names -f and --password-env" '\-f FILE or --password-env VAR, not both' "$ERR"
for tok in "NSS Certificate DB" "Internal Key Storage Token" internal; do
    expect_status 0 "--token \"$tok\" is the internal token" "$CABACK" listkeys -d "$DB" -f "$DB.pass" --token "$tok"
done
for prefix in "internal:" "NSS Certificate DB:"; do
    rm -f "$TEST_TMP/n.p12"
    expect_status 0 "backup -n \"${prefix}NICK\"" "$CABACK" backup -d "$DB" -f "$DB.pass" \
        -n "${prefix}$DOGTAG_CA_NICK" -o "$TEST_TMP/n.p12" -w "$PW" --iterations 2000
    expect_status 0 "list -i FILE, as restore -i" "$CABACK" list -i "$TEST_TMP/n.p12" -w "$PW"
    expect_grep "the backup of -n ${prefix}NICK holds the CA certificate" "$DOGTAG_CA_NICK" "$OUT"
done
expect_status 2 "-n internal:NICK with another token is a usage error" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" --token no-such-token -n "internal:$DOGTAG_CA_NICK" -o "$TEST_TMP/n2.p12" -w "$PW"
expect_grep "the message names -n and --token" '\-n "internal:.*--token "no-such-token"' "$ERR"
expect_status 2 "list -i FILE and FILE together" "$CABACK" list -i "$F" "$F" -w "$PW"
expect_status 0 "restore -n stays a dry run" "$CABACK" restore -i "$F" -w "$PW" -d "$DB" -f "$DB.pass" -n
expect_grep "restore -n says Dry run" 'Dry run: nothing was changed' "$OUT"
expect_status 0 "restore --create --token \"NSS Certificate DB\"" \
    "$CABACK" restore -i "$F" -w "$PW" -d "$TEST_TMP/longname" --create -f "$PW" --token "NSS Certificate DB"

# ---- 3. --json: one object on every outcome, valid against doc/caback-json.schema.json ----
SCHEMA=$CABACK_SRCDIR/doc/caback-json.schema.json
# expect_json EXIT DESCRIPTION EXPRESSION COMMAND...: COMMAND exits EXIT and prints one JSON
# object that validates, whose exit is EXIT and for which the Python EXPRESSION over j holds.
expect_json() {
    local want=$1 desc=$2 expr=$3; shift 3
    expect_status "$want" "$desc" "$@"
    if "$PYTHON3" "$CABACK_SRCDIR/tests/json-check.py" "$SCHEMA" "$OUT" "$STATUS" "$expr" \
        2>"$TEST_TMP/jc.err" >>"$TEST_TMP/seen-status.txt"; then
        ok "$desc: one JSON object, valid, exit $want"
    else
        not_ok "$desc: JSON"; diag "$(cat "$TEST_TMP/jc.err")" "$(head -c 1500 "$OUT")"
    fi
}
if "$PYTHON3" -c 'import jsonschema' 2>/dev/null; then
    ERRC="j['error']['code']"
    expect_json 0 "listkeys --json" "j['verb'] == 'listkeys' and j['ok'] and all(k['nss_id'] == k['id'] for k in j['keys'])" \
        "$CABACK" listkeys -d "$DB" -f "$DB.pass" --json
    expect_json 0 "-K --json (the alias)" "j['verb'] == 'listkeys'" "$CABACK" -K -d "$DB" -f "$DB.pass" --json
    expect_json 3 "listkeys --json, wrong password" "$ERRC == 'bad_password'" \
        "$CABACK" listkeys -d "$DB" -f "$TEST_TMP/wrong.pass" --json
    expect_json 2 "listkeys --json, unknown option" "$ERRC == 'usage' and '--bogus' in j['error']['message']" \
        "$CABACK" listkeys --bogus --json
    expect_json 1 "listkeys --json, no database" "not j['ok']" "$CABACK" listkeys -d "$TEST_TMP/nodb" --json
    expect_json 0 "keyid --json" "j['ids'][0]['nss_id'] == 'a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3' and j['ids'][0]['dogtag_id'] == '-584f6bb4847c688d65b373650c563d4690b6390d'" \
        "$CABACK" keyid --json a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3
    expect_json 2 "keyid --json, an invalid ID" "$ERRC == 'usage' and len(j['ids']) == 1" \
        "$CABACK" keyid --json a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3 zz
    expect_json 0 "fix-clone-ids --json" "j['file'] == '$TEST_TMP/CS.cfg' and all(e['dogtag_id'] == e['new_id'] for e in j['entries'])" \
        "$CABACK" fix-clone-ids --json "$TEST_TMP/CS.cfg" -d "$DB" -f "$DB.pass"
    expect_json 6 "fix-clone-ids --dry-run --json, changes needed" "$ERRC == 'changes_needed' and any(e['status'] == 'STALE' for e in j['entries'])" \
        "$CABACK" fix-clone-ids --dry-run --json "$TEST_TMP/stale.cfg" -d "$DB" -f "$DB.pass"
    expect_json 1 "fix-clone-ids --json, not a CS.cfg" "$ERRC == 'cscfg'" \
        "$CABACK" fix-clone-ids --json "$TEST_TMP/hosts.cfg" -d "$DB" -f "$DB.pass"
    (cd "$TEST_TMP" && "$CABACK" backup -d "$DB" -f "$DB.pass" -o j.p12 -w "$PW" --iterations 2000 --json >"$OUT" 2>"$ERR") && STATUS=0 || STATUS=$?
    expect_equal "backup --json with a relative -o" 0 "$STATUS"
    check "backup --json: valid, file absolute" "$PYTHON3" "$CABACK_SRCDIR/tests/json-check.py" "$SCHEMA" "$OUT" 0 "j['file'] == '$TEST_TMP/j.p12'"
    expect_json 4 "backup --json, the file exists" "$ERRC == 'conflict'" \
        "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/j.p12" -w "$PW" --json
    expect_json 3 "backup --json, wrong database password" "$ERRC == 'bad_password'" \
        "$CABACK" backup -d "$DB" -f "$TEST_TMP/wrong.pass" -o "$TEST_TMP/j2.p12" -w "$PW" --json
    expect_json 0 "list --json" "all(k['nss_id'] == k['id'] for k in j['keys']) and any(c['trust'] == 'CTu,Cu,Cu' for c in j['certificates'])" \
        "$CABACK" list "$F" -w "$PW" --json
    expect_json 3 "list --json, wrong password" "$ERRC == 'bad_password'" "$CABACK" list "$F" -w "$TEST_TMP/wrong.pass" --json
    expect_json 0 "restore --json, nothing to do" "j['result'] == 'unchanged' and j['file'] == '$F'" \
        "$CABACK" restore -i "$F" -w "$PW" -d "$DB" -f "$DB.pass" --json
    expect_json 4 "restore --dry-run --json with a conflict" "$ERRC == 'conflict' and j['conflicts'] == 1 and j['result'] == 'planned'" \
        "$CABACK" restore -i "$F" -w "$PW" -d "$DST" -f "$DST.pass" --dry-run --json
    expect_json 3 "restore --json, wrong password" "$ERRC == 'bad_password'" \
        "$CABACK" restore -i "$F" -w "$TEST_TMP/wrong.pass" -d "$DST" -f "$DST.pass" --json
    SUB="subsystemCert cert-pki-ca"
    expect_json 0 "restore --json: trust as certutil prints it (u,u, with its key is u,u,u)" \
        "[c['trust'] for c in j['certificates'] if c['nickname'] == '$SUB'] == ['u,u,u']" \
        "$CABACK" restore -i "$F" -w "$PW" -d "$TEST_TMP/trustdb" --create -f "$PW" --trust "$SUB=u,u," --json
    certutil -L -d "sql:$TEST_TMP/trustdb" >"$TEST_TMP/trust.txt"
    expect_grep "certutil -L shows the same u,u,u" "^$SUB +u,u,u\$" "$TEST_TMP/trust.txt"
    expect_json 0 "verify --json" "j['restorable'] is True and j['file'] == '$F'" "$CABACK" verify "$F" -w "$PW" --json
    expect_json 3 "verify --json, wrong password" "$ERRC == 'bad_password' and j['restorable'] is False" \
        "$CABACK" verify "$F" -w "$TEST_TMP/wrong.pass" --json
    issue_cert "$DB" "Backup Signer" "CN=Backup Signer,O=EXAMPLE.TEST" u,u,u \
        --keyUsage digitalSignature,nonRepudiation --extKeyUsage emailProtection
    head -c 1000 /dev/urandom >"$TEST_TMP/data.bin"
    cp "$TEST_TMP/data.bin" "$TEST_TMP/data.bin.copy"
    expect_json 0 "sign --json" "j['signers'][0]['nickname'] == 'Backup Signer' and j['file'] == '$TEST_TMP/data.bin'" \
        "$CABACK" sign "$TEST_TMP/data.bin" --signer "Backup Signer" -d "$DB" -f "$DB.pass" --json
    expect_json 1 "sign --json, no such signer" "$ERRC == 'not_found' or not j['ok']" \
        "$CABACK" sign "$TEST_TMP/data.bin.copy" --signer "No Such Signer" -d "$DB" -f "$DB.pass" --json
    certutil -L -d "sql:$DB" -n "$DOGTAG_CA_NICK" -a >"$TEST_TMP/ca.pem"
    expect_json 0 "verify-signature --json" "j['valid'] is True and j['signers'][0]['subject'] == 'CN=Backup Signer,O=EXAMPLE.TEST'" \
        "$CABACK" verify-signature "$TEST_TMP/data.bin" --ca "$TEST_TMP/ca.pem" --json
    printf 'changed' >>"$TEST_TMP/data.bin"
    expect_json 1 "verify-signature --json, a changed file" "j['valid'] is False and j['error']['message']" \
        "$CABACK" verify-signature "$TEST_TMP/data.bin" --ca "$TEST_TMP/ca.pem" --json
    expect_json 2 "check-stored-keys --json (it has no --json: a usage error, still one object)" "$ERRC == 'usage'" \
        "$CABACK" check-stored-keys -d "$DB" --json
    expect_json 2 "an unknown verb with --json" "j['verb'] == 'frobnicate' and $ERRC == 'usage'" "$CABACK" frobnicate --json
    expect_json 0 "warnings are an array of strings in the envelope" "any('10.5.6' in w for w in j['warnings'])" \
        "$CABACK" keyid --json -314bd3fd90753fe3687d358d
else
    skip "--json against the schema" "python3-jsonschema is not installed"
fi

# ---- 2. Exit codes tell failure kinds apart, and match the one table ----
# Every status a verb gave above is in the table "caback help VERB" prints.
if [ -s "$TEST_TMP/seen-status.txt" ]; then
    sort -u "$TEST_TMP/seen-status.txt" | while read -r verb code; do
        [ "$verb" = frobnicate ] && continue
        "$CABACK" help "$verb" >"$TEST_TMP/help.txt" 2>&1
        if grep -Eq "^  $code  " "$TEST_TMP/help.txt"; then echo "ok $verb $code"; else echo "missing $verb $code"; fi
    done >"$TEST_TMP/table.txt"
    expect_no_grep "every exit status seen is in its verb's table (caback help VERB)" '^missing' "$TEST_TMP/table.txt"
fi
for verb in listkeys keyid fix-clone-ids backup sign verify-signature list restore verify share-open check-stored-keys; do
    run "$CABACK" help "$verb"
    expect_grep "help $verb prints the exit-status table" '^Exit status \(each code means the same in every verb' "$OUT"
    codes=$(sed -n 's/^  \([0-9]\)  .*/\1/p' "$OUT" | tr '\n' ' ' | sed 's/ $//')
    man_codes=$("$PYTHON3" - "$CABACK_SRCDIR/doc/caback.1" "$verb" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
part = text[text.index(".SH EXIT STATUS"):]
part = part[:part.index("\n.SH ", 1)]
verb = sys.argv[2].replace("-", "\\-")
m = re.search(r"\n\.TP\n\.B " + re.escape(verb) + r"\n(.*?)(?=\n\.(TP|PP|SH)|$)", part, re.S)
body = re.sub(r"\([^)]*\)", "", m.group(1)) if m else ""
print(" ".join(re.findall(r"\b[0-9]\b", body)))
PY
)
    expect_equal "caback.1 lists the same statuses for $verb as its help" "$codes" "$man_codes"
done

# No terminal to ask for a password: exit 1 in every verb, the message names the options.
if command -v setsid >/dev/null 2>&1; then
    for cmd in "listkeys -d $DB" "backup -d $DB -f $DB.pass -o $TEST_TMP/nt.p12" "list $F" \
        "verify $F" "restore -i $F -d $DB -f $DB.pass --dry-run"; do
        # shellcheck disable=SC2086
        expect_status 1 "no terminal: caback $cmd" setsid -w "$CABACK" $cmd
        expect_grep "no terminal: caback ${cmd%% *} says so and names the option" 'no terminal to ask .*give it with (-f FILE|-w FILE)' "$ERR"
    done
else
    skip "no terminal to ask" "setsid is not installed"
fi

# A damaged file is not a wrong password when caback can tell: the recorded SHA-256 differs.
expect_status 0 "fixture: a second backup, recorded in the log" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/dmg.p12" -w "$PW" --iterations 2000
expect_status 3 "a recorded, unchanged file with a wrong password" "$CABACK" list "$TEST_TMP/dmg.p12" -w "$TEST_TMP/wrong.pass"
expect_grep "the message says the password is wrong (the file is unchanged)" 'unchanged since caback backup wrote it .*so the password is wrong' "$ERR"
"$PYTHON3" -c 'import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0x01; open(p, "wb").write(b)' "$TEST_TMP/dmg.p12"
cp "$TEST_TMP/dmg.p12" "$TEST_TMP/unrecorded.p12"
for verb in list verify; do
    expect_status 1 "$verb of a damaged recorded file: exit 1, not 3" "$CABACK" "$verb" "$TEST_TMP/dmg.p12" -w "$PW"
    expect_grep "$verb says damaged" 'is damaged or was changed after caback backup wrote it' "$ERR"
done
expect_status 1 "restore of a damaged recorded file: exit 1, not 3" \
    "$CABACK" restore -i "$TEST_TMP/dmg.p12" -w "$PW" -d "$DB" -f "$DB.pass" --dry-run
expect_grep "restore says damaged" 'is damaged or was changed after caback backup wrote it' "$ERR"
run "$CABACK" list "$TEST_TMP/unrecorded.p12" -w "$PW"
case $STATUS in
3) expect_grep "an unrecorded damaged file: the message names both causes" 'password is wrong, or the file is damaged' "$ERR" ;;
1) expect_grep "an unrecorded damaged file: a structure error says damaged" 'damaged|malformed|invalid|truncated|not a' "$ERR" ;;
*) not_ok "an unrecorded damaged file: exit $STATUS" ;;
esac

# ---- 4. Messages give the right advice ----
if command -v setsid >/dev/null 2>&1; then
    expect_status 1 "list without a password and no terminal" setsid -w "$CABACK" list "$F"
    expect_grep "list names -w" 'give it with -w FILE or --p12-password-env VAR' "$ERR"
    expect_no_grep "list does not suggest -f, which it refuses" '\-f FILE' "$ERR"
fi
cp "$F" "$TEST_TMP/signed.p12"
expect_status 0 "fixture: a signed backup" "$CABACK" sign "$TEST_TMP/signed.p12" --signer "$DOGTAG_CA_NICK" -d "$DB" -f "$DB.pass"
expect_status 1 "a signed backup restored into a new database" \
    "$CABACK" restore -i "$TEST_TMP/signed.p12" -w "$PW" -d "$TEST_TMP/newsig" --create -f "$PW"
expect_grep "the message suggests --signature-ca" 'restore --signature-ca CERTFILE' "$ERR"
expect_no_grep "the message suggests no bare --ca for restore" 'with --ca CACERT' "$ERR"
expect_grep "and says the database it made was removed" 'database that --create made in .* was removed' "$ERR"
mkdir "$TEST_TMP/folder.p12"
cp "$TEST_TMP/signed.p12.sig" "$TEST_TMP/folder.p12.sig"
expect_status 1 "an unreadable .p12 (a folder) with a signature" \
    "$CABACK" restore -i "$TEST_TMP/folder.p12" -w "$PW" -d "$DB" -f "$DB.pass" --dry-run
expect_grep "the message names the file" 'cannot read PKCS#12 file .*folder.p12' "$ERR"
expect_no_grep "the message does not blame the signature" 'signature' "$ERR"
expect_status 1 "verify-signature on a missing file" "$CABACK" verify-signature "$TEST_TMP/missing.p12" --ca "$TEST_TMP/ca.pem"
expect_grep "the message names the missing file, not its .sig" 'the file to check, .*missing.p12, does not exist' "$ERR"
expect_no_grep "the message does not say the .sig is missing" 'cannot read the signature' "$ERR"
expect_status 2 "-d dbm:DIR on a cert9.db folder" "$CABACK" listkeys -d "dbm:$DB" -f "$DB.pass"
expect_grep "the message says the folder holds a current database" 'holds a current one \(cert9.db\); give -d' "$ERR"
expect_no_grep "the message does not ask to convert a DBM database" 'upgrade-merge' "$ERR"
expect_status 3 "a wrong password from -f" "$CABACK" listkeys -d "$DB" -f "$TEST_TMP/wrong.pass"
expect_grep "the message points at the file -f names" 'check the file -f names' "$ERR"
WRONG_DB_PW=nope expect_status 3 "a wrong password from --password-env" "$CABACK" listkeys -d "$DB" --password-env WRONG_DB_PW
expect_grep "the message points at the variable" 'check the variable --password-env names' "$ERR"
"$PYTHON3" "$CABACK_SRCDIR/tests/prompt-pty.py" "$TEST_TMP/pty.json" "text:not-the-password" -- \
    "$CABACK" listkeys -d "$DB" >/dev/null 2>&1 || true
check "a wrong password typed at the prompt: the message does not say check -f" "$PYTHON3" -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["exit"] == 3 and "typed at the prompt" in r["output"] and "check -f" not in r["output"] \
    and "-f names" not in r["output"], r' "$TEST_TMP/pty.json"
expect_status 1 "--password-env given a value, not a name" \
    "$CABACK" backup -d "$DB" --password-env 'Sup3r$ecret!' -o "$TEST_TMP/pe.p12" -w "$PW" --log "$TEST_TMP/pe.log"
expect_grep "the message says not set, without the value" 'is not set, and what was given is not a variable' "$ERR"
expect_no_grep "the message does not echo the value" 'Sup3r' "$ERR"
expect_no_grep "the log does not hold the value" 'Sup3r' "$TEST_TMP/pe.log"
expect_no_grep "the JSON log does not hold the value" 'Sup3r' "$TEST_TMP/pe.log.jsonl"
expect_status 0 "-q: a warning is not printed" "$CABACK" keyid -q --to nss -314bd3fd90753fe3687d358d
expect_no_grep "-q prints no warning" 'warning' "$ERR"
expect_status 0 "without -q the warning is printed" "$CABACK" keyid --to nss -314bd3fd90753fe3687d358d
expect_grep "the warning is printed" 'warning: key ID -314bd3fd' "$ERR"
expect_status 0 "help sign" "$CABACK" help sign
expect_grep "help sign's cmsutil line verifies without dumping the file (-n)" 'cmsutil -D -n ' "$OUT"
man_src=$CABACK_SRCDIR/doc/caback.1
expect_equal "the EXAMPLES section has examples" yes \
    "$(sed -n '/^\.SH EXAMPLES/,/^\.SH SEE ALSO/p' "$man_src" | grep -c '^caback ' | awk '{print ($1 >= 5) ? "yes" : "no"}')"
# The keyid pipeline of the man page, on a real CS.cfg (comments, spaces before "=").
pipeline=$(grep -m1 "^sed .*privkey.*caback keyid" "$man_src" | sed 's/\\-/-/g; s/\\e/\\/g')
check "the man page has the keyid pipeline" test -n "$pipeline"
run bash -c "cd '$TEST_TMP' && cp '$CABACK_SRCDIR/data/CS.cfg.sample' CS.cfg && ${pipeline/caback /$CABACK }"
expect_equal "the pipeline exits 0 on data/CS.cfg.sample" 0 "$STATUS"
expect_equal "it converts every cloning.*.privkey.id entry, and nothing else" \
    "$(grep -c '^cloning\.[^.]*\.privkey\.id' "$CABACK_SRCDIR/data/CS.cfg.sample")" "$(grep -Ec '^[0-9a-f]{40}$' "$OUT")"

done_testing
