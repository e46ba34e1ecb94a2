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

done_testing
