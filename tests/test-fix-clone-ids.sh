#!/bin/bash
# caback fix-clone-ids on a Dogtag-like CA database and a CS.cfg written from it: the audit of a
# correct file changes nothing; after a re-key the dry run prints the diff (checked against
# diff -u and patch) and the real run rewrites exactly the stale values, keeping a byte-identical
# copy, the mode and the owner; MISSING tags, no cloning.list, legacy sslserver entries, token
# prefixes, an EC key, two certificates sharing a nickname, JSON, wrong password, missing file.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil openssl "$PYTHON3"

DB=$TEST_TMP/ca
make_dogtag_ca "$DB"
CONF=$TEST_TMP/conf
mkdir -p "$CONF"
CFG=$CONF/CS.cfg
SUB_NICK="subsystemCert cert-pki-ca"

# A CS.cfg as Dogtag writes it, then touched by hand: a comment at the top, irregular spacing
# before '=' on the subsystem key ID (as published in the RHCS guide), a '!' comment, and a last
# line with spaces and no final newline.
make_cscfg "$DB" "$TEST_TMP/plain.cfg"
{
    printf '# CS.cfg of pki-tomcat, edited by hand\n'
    sed 's/^cloning\.subsystem\.privkey\.id=/cloning.subsystem.privkey.id     =/' "$TEST_TMP/plain.cfg"
    printf '! end of the Dogtag part\n  ca.crl.MasterCRL.enable = true'
} >"$CFG"
chmod 0640 "$CFG"
if [ "$(id -u)" = 0 ]; then chown 4321:8765 "$CFG"; fi
OWNER=$(stat -c %u:%g "$CFG")
cp -p "$CFG" "$TEST_TMP/original.cfg"

old_id=$(sed -n 's/^cloning\.subsystem\.privkey\.id *=//p' "$CFG")
old_modulus=$(sed -n 's/^cloning\.subsystem\.pubkey\.modulus=//p' "$CFG")
backups() { find "$CONF" -maxdepth 1 -name 'CS.cfg.*' | sort; }

# JSON checks: python3 parses the document and checks the statuses, and the key IDs against
# certutil -K.
cat >"$TEST_TMP/check.py" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
want = dict(kv.split('=', 1) for kv in sys.argv[4].split(',') if kv)
ids = {}
for line in open(sys.argv[3]):
    kid, nick = line.rstrip('\n').split(' ', 1)
    ids[nick.replace('NSS Certificate DB:', '')] = kid
assert doc["file"] == sys.argv[2], doc["file"]
assert isinstance(doc["has_cloning_list"], bool)
got = {e["tag"]: e["status"] for e in doc["entries"]}
assert got == want, (got, want)
for e in doc["entries"]:
    assert set(e) >= {"tag", "nickname", "status", "old_id", "new_id", "nss_id", "changes", "reason"}, e
    assert e.get("dogtag_id") == e["new_id"], e
    if e["status"] == "MISSING":
        assert e["reason"] and e["new_id"] is None, e
        continue
    assert e["nss_id"] == ids[e["nickname"]], e
    v = int.from_bytes(bytes.fromhex(e["nss_id"]), 'big', signed=True)
    assert e["new_id"] == (('-' + format(-v, 'x')) if v < 0 else format(v, 'x')), e
    assert (e["status"] == "OK") == (e["changes"] == []), e
    assert (e["status"] == "OK") == (e["old_id"] == e["new_id"]), e
print("changed=%s backup=%s" % (str(doc["changed"]).lower(), doc["backup"]))
EOF
check_json() { # FILE-ARG STATUSES EXPECTED-TAIL
    certutil_key_ids "$DB" >"$TEST_TMP/ids.txt"
    cp "$OUT" "$TEST_TMP/out.json"
    run "$PYTHON3" "$TEST_TMP/check.py" "$TEST_TMP/out.json" "$1" "$TEST_TMP/ids.txt" "$2"
    if [ "$STATUS" -eq 0 ] && [ "$(cat "$OUT")" = "$3" ]; then ok "--json: $2, $3"; else
        not_ok "--json: $2, $3"; diag "$(cat "$OUT" "$ERR")" "$(head -c 1500 "$TEST_TMP/out.json")"
    fi
}

# ---- a correct file: all OK, nothing written ----
expect_status 0 "audit of a correct CS.cfg" "$CABACK" fix-clone-ids "$CFG" -d "$DB" -f "$DB.pass"
for tag in signing ocsp_signing subsystem audit_signing; do
    expect_grep "$tag is OK" "^$tag +OK +" "$OUT"
done
expect_no_grep "sslserver (no cloning entries) is not reported" '^sslserver' "$OUT"
check "the file is unchanged byte for byte" cmp "$CFG" "$TEST_TMP/original.cfg"
expect_equal "no backup is written" "" "$(backups)"

expect_status 0 "--json audit" "$CABACK" fix-clone-ids --json "$CFG" -d "$DB" -f "$DB.password.conf"
check_json "$CFG" "signing=OK,ocsp_signing=OK,subsystem=OK,audit_signing=OK" "changed=false backup=None"

# ---- re-key the subsystem certificate ----
rekey_cert "$DB" "$SUB_NICK"
new_nss=$(certutil_key_ids "$DB" | sed -n "s/^\([0-9a-f]*\) NSS Certificate DB:$SUB_NICK\$/\1/p")
new_id=$(dogtag_id "$new_nss")
new_modulus=$(certutil -L -d "sql:$DB" -n "$SUB_NICK" -a | openssl x509 -noout -modulus |
    sed 's/^Modulus=//' | tr 'A-F' 'a-f' | sed 's/^0*//')
check "the re-key changed the key ID" test -n "$new_id" -a "$new_id" != "$old_id"

# The expected file: the original with exactly the two values replaced.
sed -e "s/^\(cloning\.subsystem\.privkey\.id     =\)$old_id\$/\1$new_id/" \
    -e "s/^\(cloning\.subsystem\.pubkey\.modulus=\)$old_modulus\$/\1$new_modulus/" \
    "$TEST_TMP/original.cfg" >"$TEST_TMP/expected.cfg"
expect_equal "the expected file differs in two lines" 2 \
    "$(diff "$TEST_TMP/original.cfg" "$TEST_TMP/expected.cfg" | grep -c '^>')"

# ---- dry run ----
expect_status 6 "--dry-run after the re-key says changes are needed" "$CABACK" fix-clone-ids --dry-run "$CFG" -d "$DB" -f "$DB.pass"
cp "$OUT" "$TEST_TMP/dry.txt"
expect_grep "subsystem is STALE, old -> new" "^subsystem +STALE +$SUB_NICK +$old_id -> $new_id\$" "$OUT"
expect_grep "the diff removes the old ID" "^-cloning\.subsystem\.privkey\.id     =$old_id\$" "$OUT"
expect_grep "the diff adds the new ID" "^\+cloning\.subsystem\.privkey\.id     =$new_id\$" "$OUT"
expect_grep "the diff adds the new modulus" "^\+cloning\.subsystem\.pubkey\.modulus=$new_modulus\$" "$OUT"
expect_grep "signing stays OK" '^signing +OK ' "$OUT"
check "--dry-run changes nothing" cmp "$CFG" "$TEST_TMP/original.cfg"
expect_equal "--dry-run writes no backup" "" "$(backups)"
# The diff equals diff -u's (after the header lines), and patch applies it.
sed -n '/^--- /,$p' "$TEST_TMP/dry.txt" | tail -n +3 >"$TEST_TMP/mine.diff"
diff -u "$TEST_TMP/original.cfg" "$TEST_TMP/expected.cfg" | tail -n +3 >"$TEST_TMP/gnu.diff"
check "the diff body equals diff -u's" cmp "$TEST_TMP/mine.diff" "$TEST_TMP/gnu.diff"
if command -v patch >/dev/null 2>&1; then
    cp "$TEST_TMP/original.cfg" "$TEST_TMP/patched.cfg"
    sed -n '/^--- /,$p' "$TEST_TMP/dry.txt" | patch -s "$TEST_TMP/patched.cfg" >/dev/null 2>&1
    check "patch applies the dry-run diff and gives the expected file" cmp "$TEST_TMP/patched.cfg" "$TEST_TMP/expected.cfg"
else
    skip "patch applies the dry-run diff" "patch is not installed"
fi

expect_status 6 "--dry-run --json with changes needed" "$CABACK" fix-clone-ids --dry-run --json "$CFG" -d "$DB" -f "$DB.pass"
check_json "$CFG" "signing=OK,ocsp_signing=OK,subsystem=STALE,audit_signing=OK" "changed=false backup=None"
check "--dry-run --json changes nothing" cmp "$CFG" "$TEST_TMP/original.cfg"

# ---- wrong password: exit 3, nothing written ----
printf 'Wrong-Secret-4711\n' >"$TEST_TMP/wrong.pass"
expect_status 3 "wrong database password" "$CABACK" fix-clone-ids "$CFG" -d "$DB" -f "$TEST_TMP/wrong.pass"
expect_no_grep "the wrong password is not printed" 'Wrong-Secret-4711' "$ERR"
check "wrong password: CS.cfg untouched" cmp "$CFG" "$TEST_TMP/original.cfg"
expect_equal "wrong password: no backup" "" "$(backups)"

# ---- the real run ----
before=$(date +%s%3N)
expect_status 0 "fix after the re-key" "$CABACK" fix-clone-ids "$CFG" -d "$DB" -f "$DB.pass"
after=$(date +%s%3N)
expect_grep "the run says what it fixed and where the copy is" "Fixed 2 entries in .*CS\.cfg.*CS\.cfg\.[0-9]+" "$OUT"
check "the fixed file equals the expected file (only the stale values changed)" cmp "$CFG" "$TEST_TMP/expected.cfg"
bk=$(backups)
expect_equal "exactly one backup" 1 "$(printf '%s\n' "$bk" | grep -c .)"
check "the backup is identical to the old file" cmp "$bk" "$TEST_TMP/original.cfg"
ms=${bk##*.}
check "the backup is named CS.cfg.<epoch-ms> of this run" test "$ms" -ge "$before" -a "$ms" -le "$after"
expect_equal "CS.cfg keeps its mode" 640 "$(stat -c %a "$CFG")"
expect_equal "CS.cfg keeps its owner" "$OWNER" "$(stat -c %u:%g "$CFG")"
expect_equal "the backup has the same mode and owner" "640 $OWNER" "$(stat -c '%a %u:%g' "$bk")"
expect_equal "no temporary file is left" "" "$(find "$CONF" -name '.*caback-tmp*')"

expect_status 0 "a second run" "$CABACK" fix-clone-ids "$CFG" -d "$DB" -f "$DB.pass"
expect_equal "the second run says all OK" 4 "$(grep -cE '^[a-z_]+ +OK ' "$OUT")"
check "the second run changes nothing" cmp "$CFG" "$TEST_TMP/expected.cfg"
expect_equal "the second run writes no backup" 1 "$(backups | grep -c .)"

# ---- MISSING: exit 1, the others are fixed, the nickname is named ----
M=$TEST_TMP/missing
mkdir -p "$M"
sed -e 's/^cloning\.audit_signing\.nickname=.*/cloning.audit_signing.nickname=auditSigningCert cert-pki-nosuch/' \
    -e 's/^cloning\.ocsp_signing\.privkey\.id=.*/cloning.ocsp_signing.privkey.id=1234/' \
    "$TEST_TMP/expected.cfg" >"$M/CS.cfg"
cp "$M/CS.cfg" "$TEST_TMP/missing-before.cfg"
expect_status 1 "a nickname that is not in the database" "$CABACK" fix-clone-ids "$M/CS.cfg" -d "$DB" -f "$DB.pass"
expect_grep "audit_signing is MISSING" '^audit_signing +MISSING ' "$OUT"
expect_grep "the message names the nickname to look for" '"auditSigningCert cert-pki-nosuch"' "$ERR"
expect_grep "ocsp_signing was STALE" '^ocsp_signing +STALE +ocspSigningCert cert-pki-ca +1234 -> ' "$OUT"
ocsp_nss=$(certutil_key_ids "$DB" | sed -n 's/^\([0-9a-f]*\) NSS Certificate DB:ocspSigningCert cert-pki-ca$/\1/p')
expect_equal "the stale ocsp_signing ID was fixed anyway" "cloning.ocsp_signing.privkey.id=$(dogtag_id "$ocsp_nss")" \
    "$(grep '^cloning\.ocsp_signing\.privkey\.id=' "$M/CS.cfg")"
expect_equal "only that line changed" 1 "$(diff "$TEST_TMP/missing-before.cfg" "$M/CS.cfg" | grep -c '^>')"
expect_status 1 "MISSING with --json" "$CABACK" fix-clone-ids --json "$M/CS.cfg" -d "$DB" -f "$DB.pass"
check_json "$M/CS.cfg" "signing=OK,ocsp_signing=OK,subsystem=OK,audit_signing=MISSING" "changed=false backup=None"

# ---- no cloning.list: a notice, and the entries are still checked ----
N=$TEST_TMP/nolist
mkdir -p "$N"
grep -v '^cloning\.list=' "$TEST_TMP/expected.cfg" >"$N/CS.cfg"
expect_status 0 "a CS.cfg without cloning.list" "$CABACK" fix-clone-ids "$N/CS.cfg" -d "$DB" -f "$DB.pass"
expect_grep "the notice says so" 'note: .*no cloning\.list.*10\.9' "$ERR"
expect_equal "the entries are still checked" 4 "$(grep -cE '^[a-z_]+ +OK ' "$OUT")"
expect_status 0 "no cloning.list, --json" "$CABACK" fix-clone-ids --json "$N/CS.cfg" -d "$DB" -f "$DB.pass"
check "has_cloning_list is false" "$PYTHON3" -c 'import json,sys; assert json.load(open(sys.argv[1]))["has_cloning_list"] is False' "$OUT"

# ---- legacy cloning.sslserver.*, nickname fallbacks, token prefixes ----
L=$TEST_TMP/legacy
mkdir -p "$L"
{
    grep -v -e '^cloning\.subsystem\.nickname=' -e '^cloning\.ocsp_signing\.nickname=' "$TEST_TMP/expected.cfg"
    printf '\ncloning.sslserver.privkey.id=1\n'
    printf 'cloning.ocsp_signing.nickname=Internal Key Storage Token:ocspSigningCert cert-pki-ca\n'
} >"$L/CS.cfg"
ssl_nss=$(certutil_key_ids "$DB" | sed -n 's/^\([0-9a-f]*\) NSS Certificate DB:Server-Cert cert-pki-ca$/\1/p')
expect_status 0 "legacy sslserver entry and fallbacks" "$CABACK" fix-clone-ids -v "$L/CS.cfg" -d "$DB" -f "$DB.pass"
expect_grep "sslserver is found through ca.cert.sslserver.nickname" "^sslserver +STALE +Server-Cert cert-pki-ca +1 -> $(dogtag_id "$ssl_nss")\$" "$OUT"
expect_grep "-v says where the nickname came from" 'subsystem: nickname "subsystemCert cert-pki-ca" from ca.cert.subsystem.nickname' "$ERR"
expect_grep "the internal token prefix is accepted" '^ocsp_signing +OK ' "$OUT"
expect_equal "the legacy sslserver ID was written" "cloning.sslserver.privkey.id=$(dogtag_id "$ssl_nss")" \
    "$(grep '^cloning\.sslserver\.privkey\.id=' "$L/CS.cfg")"

H=$TEST_TMP/hsm
mkdir -p "$H"
sed 's/^cloning\.subsystem\.nickname=/&NHSM6000:/' "$TEST_TMP/expected.cfg" >"$H/CS.cfg"
expect_status 1 "a key on a hardware token that is not selected" "$CABACK" fix-clone-ids "$H/CS.cfg" -d "$DB" -f "$DB.pass"
expect_grep "the report names the token and --token" '"NHSM6000".*--token' "$OUT"
expect_grep "the error names the token" 'subsystem: .*"NHSM6000"' "$ERR"
check "nothing else needed a change: the file is unchanged" cmp "$H/CS.cfg" <(sed 's/^cloning\.subsystem\.nickname=/&NHSM6000:/' "$TEST_TMP/expected.cfg")

# ---- an EC key: pubkey.encoded is the SubjectPublicKeyInfo DER in hex ----
_fixture_serial=$((_fixture_serial + 1))
certutil -S -d "sql:$DB" -f "$DB.pass" -z "$DB.noise" -c "$DOGTAG_CA_NICK" -n "ecSigningCert cert-pki-ca" \
    -s "CN=EC Signing Certificate,O=EXAMPLE.TEST" -t "u,u,u" -k ec -q nistp256 -Z SHA256 -v 24 \
    -m "$_fixture_serial" >/dev/null 2>&1
E=$TEST_TMP/ec
mkdir -p "$E"
{
    cat "$TEST_TMP/expected.cfg"
    printf '\ncloning.ec.nickname=ecSigningCert cert-pki-ca\ncloning.ec.privkey.id=0\n'
    printf 'cloning.ec.pubkey.encoded=\ncloning.ec.pubkey.exponent=10001\ncloning.ec.pubkey.modulus=abcdef\n'
} >"$E/CS.cfg"
ec_nss=$(certutil_key_ids "$DB" | sed -n 's/^\([0-9a-f]*\) NSS Certificate DB:ecSigningCert cert-pki-ca$/\1/p')
ec_spki=$(certutil -L -d "sql:$DB" -n "ecSigningCert cert-pki-ca" -a | openssl x509 -noout -pubkey |
    openssl pkey -pubin -outform DER | od -An -v -tx1 | tr -d ' \n')
expect_status 0 "an EC key" "$CABACK" fix-clone-ids "$E/CS.cfg" -d "$DB" -f "$DB.pass"
expect_equal "EC: the key ID, the encoded key (openssl's DER), no modulus, no exponent" \
    "$(printf 'cloning.ec.privkey.id=%s\ncloning.ec.pubkey.encoded=%s\ncloning.ec.pubkey.exponent=\ncloning.ec.pubkey.modulus=' "$(dogtag_id "$ec_nss")" "$ec_spki")" \
    "$(grep -e '^cloning\.ec\.privkey' -e '^cloning\.ec\.pubkey' "$E/CS.cfg" | sort)"
check "EC: the encoded key starts like a SubjectPublicKeyInfo" test "${ec_spki:0:4}" = 3059

# ---- two certificates share a nickname: the newest valid one is used, -v says so ----
sleep 1 # a later notBefore than the current subsystem certificate
issue_cert "$DB" "$SUB_NICK" "CN=Subsystem Certificate,OU=pki-tomcat,O=EXAMPLE.TEST Security Domain" u,u,u --extKeyUsage serverAuth,clientAuth
expect_equal "two certificates have the subsystem nickname" 2 \
    "$(certutil -L -d "sql:$DB" -n "$SUB_NICK" 2>/dev/null | grep -c 'Serial Number:')"
newest_nss=$(certutil -L -d "sql:$DB" -n "$SUB_NICK" -a | "$PYTHON3" -c '
import sys, re, subprocess
pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", sys.stdin.read(), re.S)
best = None
for pem in pems:
    out = subprocess.run(["openssl", "x509", "-noout", "-startdate", "-modulus", "-dateopt", "iso_8601"],
                         input=pem, capture_output=True, text=True).stdout
    start = re.search(r"notBefore=(.*)", out).group(1)
    mod = re.search(r"Modulus=(.*)", out).group(1)
    if best is None or start > best[0]:
        best = (start, mod)
print(best[1].lower())' 2>/dev/null)
expect_status 6 "two certificates with one nickname, --dry-run -v" "$CABACK" fix-clone-ids --dry-run -v "$CFG" -d "$DB" -f "$DB.pass"
expect_grep "-v says that 2 certificates share the nickname" "subsystem: 2 certificates have nickname \"$SUB_NICK\"; using the one NSS returns as current" "$ERR"
expect_grep "the newest certificate's modulus is proposed" "^\+cloning\.subsystem\.pubkey\.modulus=${newest_nss#"${newest_nss%%[!0]*}"}\$" "$OUT"
check "the newest modulus was found" test -n "$newest_nss"

# ---- a symbolic link: its target is repaired, the link stays ----
S=$TEST_TMP/link
mkdir -p "$S/etc"
cp "$TEST_TMP/original.cfg" "$S/etc/CS.cfg"
ln -s etc/CS.cfg "$S/CS.cfg"
expect_status 0 "CS.cfg is a symbolic link" "$CABACK" fix-clone-ids "$S/CS.cfg" -d "$DB" -f "$DB.pass"
check "the link is still a link" test -L "$S/CS.cfg"
check "its target was repaired" test "$(grep -c "^cloning\.subsystem\.privkey\.id     =$old_id\$" "$S/etc/CS.cfg")" = 0
check "the backup is next to the target" cmp "$(find "$S/etc" -name 'CS.cfg.*')" "$TEST_TMP/original.cfg"

# ---- errors ----
expect_status 1 "a CS.cfg that does not exist" "$CABACK" fix-clone-ids "$TEST_TMP/nowhere/CS.cfg" -d "$DB" -f "$DB.pass"
expect_grep "the message names the file" "$TEST_TMP/nowhere/CS.cfg" "$ERR"
expect_status 2 "no CS.cfg argument" "$CABACK" fix-clone-ids -d "$DB" -f "$DB.pass"
expect_status 2 "two arguments" "$CABACK" fix-clone-ids "$CFG" "$CFG" -d "$DB" -f "$DB.pass"
expect_status 0 "caback help fix-clone-ids" "$CABACK" help fix-clone-ids
expect_grep "help mentions --dry-run" '\-\-dry-run' "$OUT"

done_testing
