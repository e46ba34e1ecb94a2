#!/bin/bash
# caback restore: round trip of the Dogtag-like fixture CA (backup -> restore into a fresh
# database: same nicknames, trust flags and key IDs), a second restore is a no-op, conflicts stop
# with exit 4 and no change, --replace keeps the old keys (orphans), --rename, --trust, --dry-run,
# --create, the all-or-nothing undo (a failure injected at every step leaves the database
# byte-for-byte as it was), wrong password, damaged files, --json, "restore automatic" without a backup, and the
# Windows form "caback -restore PASSWORD FILE" (the password disappears from ps).
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util "$PYTHON3"

SRC=$TEST_TMP/src
make_dogtag_ca "$SRC"
PW=$TEST_TMP/p12.pass
printf 'Restore pass 1\n' >"$PW"
NEWPW=$TEST_TMP/new.pass
printf 'New DB pass 1\n' >"$NEWPW"

# "nickname|trust" lines of certutil -L, sorted.
trust_listing() {
    certutil -L -d "sql:$1" | sed -n '5,$p' |
        sed 's/^\(.*[^ ]\) \{2,\}\([a-zA-Z]*,[a-zA-Z]*,[a-zA-Z]*\) *$/\1|\2/' | sort
}
# "ID NICKNAME" lines of certutil -K (orphans included), sorted, with password file $2.
key_listing() {
    certutil -K -d "sql:$1" -f "$2" 2>/dev/null |
        sed -n 's/^<[ 0-9]*> *[a-z]* *\([0-9a-f]\{40\}\) *\(.*\)$/\1 \2/p' | sort
}
# Everything the database holds, object by object (every attribute, row ids left out), sorted:
# two snapshots are equal only when the run left the database exactly as it was.
cat >"$TEST_TMP/dbdump.py" <<'EOF'
import sqlite3, sys
for name in ("cert9.db", "key4.db"):
    db = sqlite3.connect(sys.argv[1] + "/" + name)
    for table in ("nssPublic", "nssPrivate"):
        try:
            cur = db.execute("select * from " + table)
        except sqlite3.OperationalError:
            continue
        cols = [d[0] for d in cur.description]
        rows = sorted(repr([(c, v) for c, v in zip(cols, r) if c != "id" and v is not None])
                      for r in cur)
        for r in rows:
            print(name, table, r)
EOF
snapshot() {
    { trust_listing "$1"; key_listing "$1" "$2"; "$PYTHON3" "$TEST_TMP/dbdump.py" "$1"; } >"$3"
}
unchanged() { # DESCRIPTION DIR PASSFILE BEFORE
    snapshot "$2" "$3" "$TEST_TMP/after.txt"
    if cmp -s "$4" "$TEST_TMP/after.txt"; then ok "$1"; else
        not_ok "$1"; diag "$(diff "$4" "$TEST_TMP/after.txt" | head -20)"
    fi
}

# ---- the backup to restore ----
if "$CABACK" help backup >/dev/null 2>&1; then
    expect_status 0 "caback backup of the fixture CA" \
        "$CABACK" backup -d "$SRC" -f "$SRC.pass" -o "$TEST_TMP/full.p12" -w "$PW" --iterations 2000
    FILES=("$TEST_TMP/full.p12")
else
    # Until caback backup exists: one pk12util file per nickname.
    FILES=()
    while read -r nick; do
        f="$TEST_TMP/pk-${#FILES[@]}.p12"
        pk12util -o "$f" -n "$nick" -d "sql:$SRC" -k "$SRC.pass" -w "$PW" >/dev/null
        FILES+=("$f")
    done < <(trust_listing "$SRC" | cut -d'|' -f1)
    skip "caback backup of the fixture CA" "caback backup not built; pk12util files used"
fi
restore_all() { # DB [OPTIONS...]
    local db=$1 f rc=0; shift
    for f in "${FILES[@]}"; do
        "$CABACK" restore -i "$f" -w "$PW" -d "$db" "$@" >>"$OUT" 2>>"$ERR" </dev/null || rc=$?
    done
    return $rc
}

# ---- round trip into a fresh database ----
DST=$TEST_TMP/dst
cp "$NEWPW" "$DST.pass"
: >"$OUT"; : >"$ERR"
STATUS=0; restore_all "$DST" --create -f "$NEWPW" || STATUS=$?
expect_equal "restore --create into a new database (exit 0)" 0 "$STATUS"
[ "$STATUS" -eq 0 ] || diag "$(cat "$ERR")"
expect_equal "same nicknames and trust flags (certutil -L) as the source" \
    "$(trust_listing "$SRC")" "$(trust_listing "$DST")"
expect_equal "same key IDs and nicknames (certutil -K) as the source" \
    "$(key_listing "$SRC" "$SRC.pass")" "$(key_listing "$DST" "$DST.pass")"
expect_grep "the output says each key pairs with its certificate" 'pair\(s\) checked: each key signs a test value' "$OUT"
ca_id=$(key_listing "$SRC" "$SRC.pass" | sed -n 's/ NSS Certificate DB:caSigningCert cert-pki-ca$//p')
ca_dogtag=$("$CABACK" keyid --to dogtag "$ca_id")
expect_grep "the CA key ID is printed ready for CS.cfg" "^ +cloning\\.signing\\.privkey\\.id=$ca_dogtag\$" "$OUT"
expect_grep "the certutil -K form is printed too" "^ +$ca_id\$" "$OUT"
check "the new database's folder is private (0700)" test "$(stat -c %a "$DST")" = 700

# ---- a second restore is a no-op ----
snapshot "$DST" "$DST.pass" "$TEST_TMP/before.txt"
: >"$OUT"; : >"$ERR"
STATUS=0; restore_all "$DST" -f "$DST.pass" || STATUS=$?
expect_equal "second restore (exit 0)" 0 "$STATUS"
expect_grep "second restore: nothing to do" 'Nothing to do' "$OUT"
expect_no_grep "second restore adds nothing" '^  add ' "$OUT"
unchanged "second restore leaves the database exactly as it was" "$DST" "$DST.pass" "$TEST_TMP/before.txt"

# ---- --json ----
F=${FILES[0]}
expect_status 0 "--json (second restore)" "$CABACK" restore -i "$F" -w "$PW" -d "$DST" -f "$DST.pass" --json
cp "$OUT" "$TEST_TMP/restore.json"
cat >"$TEST_TMP/check_json.py" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["result"] == sys.argv[2], doc["result"]
assert doc["conflicts"] == 0 and doc["changes"] == 0, doc
assert all(c["action"] == "skip" for c in doc["certificates"]), doc["certificates"]
keys = {k["nickname"]: k for k in doc["keys"]}
assert all(k["action"] == "skip" for k in keys.values()), keys
ca = keys["caSigningCert cert-pki-ca"]
assert ca["id"] == sys.argv[3] and ca["cscfg"] == "cloning.signing.privkey.id=" + sys.argv[4], ca
print(len(doc["certificates"]), len(doc["keys"]))
EOF
run "$PYTHON3" "$TEST_TMP/check_json.py" "$TEST_TMP/restore.json" unchanged "$ca_id" "$ca_dogtag"
check "--json is one document python3 parses, with the plan and key IDs" test "$STATUS" -eq 0
[ "$STATUS" -eq 0 ] && [ "${#FILES[@]}" -eq 1 ] && expect_equal "--json lists 5 certificates and 5 keys" "5 5" "$(cat "$OUT")"
[ "$STATUS" -eq 0 ] || diag "$(cat "$ERR")"

# ---- trust changed since the backup: the file's trust attribute sets it back ----
if [ "${#FILES[@]}" -eq 1 ]; then
    certutil -M -d "sql:$DST" -f "$DST.pass" -n "caSigningCert cert-pki-ca" -t "C,C,C"
    snapshot "$DST" "$DST.pass" "$TEST_TMP/before.txt"
    run env CABACK_TEST_RESTORE_FAIL_STEP=1 "$CABACK" restore -i "$F" -w "$PW" -d "$DST" -f "$DST.pass"
    expect_equal "a failure while setting trust back (exit 1, undone)" "1 1" \
        "$STATUS $(grep -c 'every change of this run was undone' "$ERR")"
    unchanged "... leaves the changed trust as it was" "$DST" "$DST.pass" "$TEST_TMP/before.txt"
    expect_status 0 "restore into a database whose CA trust was changed" "$CABACK" restore -i "$F" -w "$PW" -d "$DST" -f "$DST.pass"
    expect_grep "the plan says the trust changes back" '^  trust +certificate "caSigningCert cert-pki-ca": already in the database; its trust changes from Cu?,Cu?,Cu? to CTu,Cu,Cu \(Dogtag trust attribute in the file\)' "$OUT"
    expect_equal "the trust flags are the source's again" "$(trust_listing "$SRC")" "$(trust_listing "$DST")"
else
    skip "trust set back from the file's trust attribute" "pk12util files have no trust attribute"
fi

# ---- conflicts: another CA with the same nicknames ----
# (A database without password: NSS encrypts every private attribute with the password, which
# makes each of the many runs below slower and tests nothing more.)
OTHER=$TEST_TMP/other
make_dogtag_ca "$OTHER" ""
snapshot "$OTHER" "$OTHER.pass" "$TEST_TMP/other-before.txt"
expect_status 4 "restore into a database with other certificates under the same nicknames" \
    "$CABACK" restore -i "$F" -w "$PW" -d "$OTHER" -f "$OTHER.pass"
expect_grep "the plan names the conflict" '^  CONFLICT +certificate "caSigningCert cert-pki-ca": the database has a different certificate' "$OUT"
expect_grep "the error says what to do" 'nothing was changed.*--replace.*--rename' "$ERR"
unchanged "a conflict changes nothing" "$OTHER" "$OTHER.pass" "$TEST_TMP/other-before.txt"
expect_status 4 "--json with a conflict" "$CABACK" restore -i "$F" -w "$PW" -d "$OTHER" -f "$OTHER.pass" --json
cp "$OUT" "$TEST_TMP/conflict.json"
run "$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["result"]=="conflict" and d["conflicts"]>0; print("ok")' "$TEST_TMP/conflict.json"
expect_equal "--json reports the conflict" "0 ok" "$STATUS $(cat "$OUT")"

# ---- all or nothing: a failure at any step undoes the whole run ----
cp -a "$OTHER" "$TEST_TMP/undo"; cp "$OTHER.pass" "$TEST_TMP/undo.pass"
UNDO=$TEST_TMP/undo
undo_ok=0 undo_bad=0 steps=0
# Steps of this run: 5 old certificates removed, 5 keys and their public keys stored, 5
# certificates imported, trust set on 2 of them (u,u,u needs none: NSS derives "u" from the key),
# 22 in all, and a 23rd once every change is made (before the keys are checked). Each kind is
# tried, the first and the last.
for step in 1 5 6 7 15 16 17 20 22 23 24; do
    run env CABACK_TEST_RESTORE_FAIL_STEP=$step "$CABACK" restore -i "$F" -w "$PW" -d "$UNDO" -f "$UNDO.pass" --replace
    [ "$STATUS" -eq 0 ] && break # past the last step
    steps=$((steps + 1))
    snapshot "$UNDO" "$UNDO.pass" "$TEST_TMP/after.txt"
    if [ "$STATUS" -eq 1 ] && grep -q 'every change of this run was undone' "$ERR" &&
        grep -q "CABACK_TEST_RESTORE_FAIL_STEP=$step" "$ERR" &&
        cmp -s "$TEST_TMP/other-before.txt" "$TEST_TMP/after.txt"; then
        undo_ok=$((undo_ok + 1))
    else
        undo_bad=$((undo_bad + 1))
        diag "step $step: exit $STATUS" "$(cat "$ERR")" "$(diff "$TEST_TMP/other-before.txt" "$TEST_TMP/after.txt" | head)"
    fi
done
check "a failure injected at $steps steps of --replace: exit 1, 'undone', the database exactly as before; step 24 is past the end" \
    test "$undo_bad" -eq 0 -a "$undo_ok" -eq 10 -a "$STATUS" -eq 0
run env CABACK_TEST_RESTORE_FAIL_STEP=2 "$CABACK" restore -i "$F" -w "$PW" -d "$TEST_TMP/fresh-undo" --create -f "$NEWPW"
expect_equal "a failed restore --create leaves no database behind" "1 no" \
    "$STATUS $(test -e "$TEST_TMP/fresh-undo" && echo yes || echo no)"
printf 'wrong\n' >"$TEST_TMP/wrong.pass"
run "$CABACK" restore -i "$F" -w "$TEST_TMP/wrong.pass" -d "$TEST_TMP/fresh-wrong" --create -f "$NEWPW"
expect_equal "restore --create with a wrong PKCS#12 password: exit 3, no database left" "3 no" \
    "$STATUS $(test -e "$TEST_TMP/fresh-wrong" && echo yes || echo no)"

# ---- --replace: the restored certificates take the nicknames, the old keys stay ----
old_ids=$(key_listing "$OTHER" "$OTHER.pass" | cut -d' ' -f1)
expect_status 0 "--replace" "$CABACK" restore -i "$F" -w "$PW" -d "$OTHER" -f "$OTHER.pass" --replace
cp "$OUT" "$TEST_TMP/replace.out"
expect_equal "after --replace the nicknames and trust equal the source's" \
    "$(trust_listing "$SRC")" "$(trust_listing "$OTHER")"
orphans=$(key_listing "$OTHER" "$OTHER.pass" | grep -c ' (orphan)$')
kept=0
for id in $old_ids; do key_listing "$OTHER" "$OTHER.pass" | grep -q "^$id (orphan)\$" && kept=$((kept + 1)); done
expect_equal "--replace deletes no private key: the 5 old keys are orphans (certutil -K)" "5 5" "$orphans $kept"
first_old=$(echo "$old_ids" | head -1)
expect_grep "--replace names the old keys it leaves in the database" "private key $first_old .*stays in the database" "$TEST_TMP/replace.out"
expect_equal "the restored keys are there with their certificates" \
    "$(key_listing "$SRC" "$SRC.pass")" "$(key_listing "$OTHER" "$OTHER.pass" | grep -v ' (orphan)$')"

# ---- --rename ----
RN=$TEST_TMP/rename
make_nssdb "$RN"
issue() { # DIR NICK SUBJECT: a self-signed CA under the nickname
    printf 'y\n-1\ny\n' | certutil -S -x -d "sql:$1" -f "$1.pass" -z "$1.noise" -n "$2" -s "$3" \
        -t "CT,C,C" -k rsa -g 2048 -v 12 -m 7 -2 >/dev/null 2>&1
}
issue "$RN" "caSigningCert cert-pki-ca" "CN=Someone else"
expect_status 0 "--rename" "$CABACK" restore -i "$F" -w "$PW" -d "$RN" -f "$RN.pass" --rename
expect_grep "--rename imports under NICKNAME (restored 1)" '^caSigningCert cert-pki-ca \(restored 1\)\|CTu,Cu,Cu$' <(trust_listing "$RN")
expect_grep "--rename keeps the database's own certificate" '^caSigningCert cert-pki-ca\|CTu,Cu,Cu$' <(trust_listing "$RN")
expect_grep "--rename says so in the plan" '^  rename +certificate "caSigningCert cert-pki-ca \(restored 1\)"' "$OUT"
expect_status 2 "--replace and --rename together" "$CABACK" restore -i "$F" -w "$PW" -d "$RN" -f "$RN.pass" --rename --replace

# ---- wrong password, damaged files: exit status, clear error, no change ----
snapshot "$DST" "$DST.pass" "$TEST_TMP/before.txt"
printf 'not the password\n' >"$TEST_TMP/wrong.pass"
expect_status 3 "wrong PKCS#12 password" "$CABACK" restore -i "$F" -w "$TEST_TMP/wrong.pass" -d "$DST" -f "$DST.pass"
expect_grep "the error says the password is wrong" '[Pp]assword' "$ERR"
size=$(stat -c %s "$F")
head -c $((size / 2)) "$F" >"$TEST_TMP/truncated.p12"
expect_status 1 "truncated file" "$CABACK" restore -i "$TEST_TMP/truncated.p12" -w "$PW" -d "$DST" -f "$DST.pass"
expect_grep "the error names the file and says what is wrong" 'truncated\.p12.*([Tt]runcated|damaged|malformed|not a PKCS#12|length|end)' "$ERR"
"$PYTHON3" -c 'import sys; d=bytearray(open(sys.argv[1],"rb").read()); d[1]^=0x04; open(sys.argv[2],"wb").write(d)' "$F" "$TEST_TMP/flipped.p12"
expect_status 1 "a flipped byte in the file's structure" "$CABACK" restore -i "$TEST_TMP/flipped.p12" -w "$PW" -d "$DST" -f "$DST.pass"
expect_grep "the error names the damaged file" 'flipped\.p12' "$ERR"
"$PYTHON3" -c 'import sys; d=bytearray(open(sys.argv[1],"rb").read()); d[len(d)//2]^=0x01; open(sys.argv[2],"wb").write(d)' "$F" "$TEST_TMP/flipped2.p12"
run "$CABACK" restore -i "$TEST_TMP/flipped2.p12" -w "$PW" -d "$DST" -f "$DST.pass"
check "a flipped byte inside the MAC-protected content: refused (exit 1 or 3), no crash" \
    test "$STATUS" -eq 1 -o "$STATUS" -eq 3
expect_status 1 "a missing file" "$CABACK" restore -i "$TEST_TMP/none.p12" -w "$PW" -d "$DST" -f "$DST.pass"
unchanged "wrong password and damaged files change nothing" "$DST" "$DST.pass" "$TEST_TMP/before.txt"

# ---- --dry-run ----
DRY=$TEST_TMP/dry
make_nssdb "$DRY"
snapshot "$DRY" "$DRY.pass" "$TEST_TMP/dry-before.txt"
expect_status 0 "--dry-run" "$CABACK" restore -i "$F" -w "$PW" -d "$DRY" -f "$DRY.pass" --dry-run
expect_grep "--dry-run prints the plan with the default trust of each certificate" '^  add +certificate "caSigningCert cert-pki-ca", trust CTu,Cu,Cu' "$OUT"
expect_grep "--dry-run says nothing changed" 'Dry run: nothing was changed' "$OUT"
unchanged "--dry-run changes nothing" "$DRY" "$DRY.pass" "$TEST_TMP/dry-before.txt"
expect_status 0 "--dry-run --create on a missing database" "$CABACK" restore -i "$F" -w "$PW" -d "$TEST_TMP/nodb" --create --dry-run
check "--dry-run --create creates nothing" test ! -e "$TEST_TMP/nodb"

# ---- --create ----
expect_status 1 "a missing database without --create" "$CABACK" restore -i "$F" -w "$PW" -d "$TEST_TMP/missing" -f "$NEWPW"
expect_grep "the error says how to create the database" 'does not exist; add --create' "$ERR"
check "nothing was created" test ! -e "$TEST_TMP/missing"
printf '\n' >"$TEST_TMP/empty.pass"
expect_status 0 "--create with an empty password (-f)" "$CABACK" restore -i "$F" -w "$PW" -d "$TEST_TMP/nopw" --create -f "$TEST_TMP/empty.pass"
cp "$TEST_TMP/empty.pass" "$TEST_TMP/nopw.pass"
expect_equal "a database without password is usable by certutil" \
    "$(trust_listing "$SRC")" "$(trust_listing "$TEST_TMP/nopw")"

# ---- "restore automatic" (tests/test-restore-automatic.sh has the rest) ----
expect_status 1 "restore automatic without a recorded backup" env CABACK_STATE_DIR="$TEST_TMP/empty-state" "$CABACK" restore automatic
expect_grep "restore automatic says no backup is recorded" 'no newest backup is recorded' "$ERR"
expect_status 2 "restore without -i" "$CABACK" restore -d "$DST"

# ---- --trust ----
TR=$TEST_TMP/trust
make_nssdb "$TR"
expect_status 0 "--trust overrides the file's and the default trust" "$CABACK" restore -i "$F" -w "$PW" \
    -d "$TR" -f "$TR.pass" --trust "Server-Cert cert-pki-ca=P,," --trust "caSigningCert cert-pki-ca=C,C,C"
expect_grep "--trust is applied (Server-Cert)" '^Server-Cert cert-pki-ca\|Pu,u,u$' <(trust_listing "$TR")
expect_grep "--trust is applied (CA)" '^caSigningCert cert-pki-ca\|CTu,Cu,Cu$|^caSigningCert cert-pki-ca\|Cu,Cu,Cu$' <(trust_listing "$TR")
expect_grep "the plan says where each trust comes from" 'trust [A-Za-z,]+ \(--trust\)' "$OUT"
expect_status 2 "--trust for a nickname the file does not have" "$CABACK" restore -i "$F" -w "$PW" \
    -d "$TR" -f "$TR.pass" --trust "nobody=P,,"
expect_status 2 "--trust with bad flags" "$CABACK" restore -i "$F" -w "$PW" -d "$TR" -f "$TR.pass" --trust "x=Q,,"

# ---- a renewed certificate (same key) replaces the old one; the key is kept, not orphaned ----
REN=$TEST_TMP/renew-src
cp -a "$SRC" "$REN"; cp "$SRC.pass" "$REN.pass"; cp "$SRC.noise" "$REN.noise"
sub_nick="subsystemCert cert-pki-ca"
sub_id=$(key_listing "$SRC" "$SRC.pass" | sed -n "s/ NSS Certificate DB:$sub_nick\$//p")
certutil -R -d "sql:$REN" -f "$REN.pass" -z "$REN.noise" -k "$sub_id" \
    -s "CN=Subsystem Certificate,OU=pki-tomcat,O=EXAMPLE.TEST Security Domain" -o "$TEST_TMP/renew.req" >/dev/null 2>&1
certutil -C -d "sql:$REN" -f "$REN.pass" -c "caSigningCert cert-pki-ca" -i "$TEST_TMP/renew.req" \
    -o "$TEST_TMP/renew.der" -m 999 -v 24 >/dev/null 2>&1
certutil -D -d "sql:$REN" -n "$sub_nick"
certutil -A -d "sql:$REN" -f "$REN.pass" -n "$sub_nick" -t u,u,u -i "$TEST_TMP/renew.der" >/dev/null
pk12util -o "$TEST_TMP/renew.p12" -n "$sub_nick" -d "sql:$REN" -k "$REN.pass" -w "$PW" >/dev/null
snapshot "$DST" "$DST.pass" "$TEST_TMP/before.txt"
expect_status 4 "a renewed certificate under the same nickname is a conflict" \
    "$CABACK" restore -i "$TEST_TMP/renew.p12" -w "$PW" -d "$DST" -f "$DST.pass"
expect_grep "its key is already there (the same key)" "^  skip +key rsa 2048 $sub_id .*the same key" "$OUT"
unchanged "the conflict changed nothing" "$DST" "$DST.pass" "$TEST_TMP/before.txt"
expect_status 0 "--replace with the renewed certificate" \
    "$CABACK" restore -i "$TEST_TMP/renew.p12" -w "$PW" -d "$DST" -f "$DST.pass" --replace
expect_grep "the plan says the old certificate's key is the renewed one's too" \
    "private key $sub_id .*stays in the database and is the restored certificate's key too" "$OUT"
expect_equal "no key was orphaned or added" "$(key_listing "$SRC" "$SRC.pass")" "$(key_listing "$DST" "$DST.pass")"
expect_grep "the nickname now names the renewed certificate (serial 999)" 'Serial Number: 999' \
    <(certutil -L -d "sql:$DST" -n "$sub_nick")

# ---- both certificates of a renewal under one nickname, one key: pk12util writes the key and
# the CA certificate twice; each is restored once ----
certutil -L -d "sql:$SRC" -n "$sub_nick" -r >"$TEST_TMP/old-sub.der"
certutil -A -d "sql:$REN" -f "$REN.pass" -n "$sub_nick" -t u,u,u -i "$TEST_TMP/old-sub.der" >/dev/null
pk12util -o "$TEST_TMP/two.p12" -n "$sub_nick" -d "sql:$REN" -k "$REN.pass" -w "$PW" >/dev/null
TWO=$TEST_TMP/two
expect_status 0 "a file with the same key and CA certificate twice" \
    "$CABACK" restore -i "$TEST_TMP/two.p12" -w "$PW" -d "$TWO" --create -f "$TEST_TMP/empty.pass"
expect_grep "the second copy of a certificate is skipped" 'the same certificate as certificate [0-9]+ of the file' "$OUT"
expect_grep "the second copy of the key is skipped" 'the same key as key [0-9]+ of the file' "$OUT"
cp "$TEST_TMP/empty.pass" "$TWO.pass"
expect_equal "both certificates under the nickname, the CA once, one key" \
    "caSigningCert cert-pki-ca|CT,C,C $sub_nick|u,u,u $sub_nick|u,u,u 1" \
    "$(trust_listing "$TWO" | tr '\n' ' ')$(key_listing "$TWO" "$TWO.pass" | wc -l)"
expect_status 0 "restoring it again" "$CABACK" restore -i "$TEST_TMP/two.p12" -w "$PW" -d "$TWO" -f "$TWO.pass"
expect_grep "... does nothing" 'Nothing to do' "$OUT"

# ---- same issuer and serial number under another nickname: NSS cannot hold both ----
# (A CA installed again under the same name issues the same serial numbers.)
CLASH=$TEST_TMP/clash
make_nssdb "$CLASH" ""
ca_serial=$(certutil -L -d "sql:$SRC" -n "caSigningCert cert-pki-ca" | sed -n 's/^ *Serial Number: \([0-9]*\) .*/\1/p')
printf 'y\n-1\ny\n' | certutil -S -x -d "sql:$CLASH" -f "$CLASH.pass" -z "$CLASH.noise" -n "Old CA" \
    -s "CN=CA Signing Certificate,OU=pki-tomcat,O=EXAMPLE.TEST Security Domain" -t "CT,C,C" -k rsa \
    -g 2048 -v 12 -m "$ca_serial" -2 >/dev/null 2>&1
snapshot "$CLASH" "$CLASH.pass" "$TEST_TMP/clash-before.txt"
expect_status 4 "a different certificate with the same issuer and serial number is a conflict" \
    "$CABACK" restore -i "$F" -w "$PW" -d "$CLASH" -f "$CLASH.pass" --rename
expect_grep "the plan says why" "same issuer and serial number 0x$(printf '%X' "$ca_serial") \\(nickname \"Old CA\"\\)" "$OUT"
unchanged "the clash changed nothing" "$CLASH" "$CLASH.pass" "$TEST_TMP/clash-before.txt"

# ---- Windows form: caback -restore PASSWORD FILE ----
WIN=$TEST_TMP/win
make_nssdb "$WIN"
pass=$(head -1 "$PW")
expect_status 0 "caback -restore PASSWORD FILE -d DIR" "$CABACK" -restore "$pass" "$F" -d "$WIN" -f "$WIN.pass"
expect_grep "-restore warns that the password is visible to other users" 'warning: a password given on the command line can be seen by other users' "$ERR"
expect_equal "-restore restored the CA" "$(trust_listing "$SRC")" "$(trust_listing "$WIN")"
expect_status 3 "-restore with a wrong password" "$CABACK" -restore "wrong" "$F" -d "$WIN" -f "$WIN.pass"
# The password leaves the process's command line as soon as caback starts: read it from /proc
# while caback waits for its file (a FIFO written only afterwards).
if command -v mkfifo >/dev/null; then
    WIN2=$TEST_TMP/win2
    make_nssdb "$WIN2"
    mkfifo "$TEST_TMP/fifo.p12"
    secret="Visible-Secret-$$"
    "$CABACK" -restore "$secret" "$TEST_TMP/fifo.p12" -d "$WIN2" -f "$WIN2.pass" >"$TEST_TMP/win2.out" 2>&1 &
    pid=$!
    seen=unknown
    for _ in $(seq 50); do
        if [ -r "/proc/$pid/cmdline" ] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$secret"; then
            tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "fifo.p12" && { seen=hidden; break; }
        fi
        sleep 0.1
    done
    # caback now reads the FIFO; give it a file it cannot open with this password.
    cat "$F" >"$TEST_TMP/fifo.p12"
    wait "$pid"
    expect_equal "-restore: ps no longer shows the password" hidden "$seen"
else
    skip "-restore: ps no longer shows the password" "mkfifo missing"
fi

done_testing
