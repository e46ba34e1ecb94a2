#!/bin/bash
# The drill tells the whole truth (issue 22 §5): each finding has its own line and JSON field.
# Trust flags that differ from the live database's and a live private key the backup lacks (a
# pending re-key) make the backup stale; a key without a certificate in the file, a chain without
# its root (unless the live database trusts that root: the intermediate is not taken for an
# anchor by its role) and an expired CA certificate (unless --allow-expired) make it not
# restorable (a cycle of issuers too); an expired system certificate is reported. Backups are
# made with caback backup, certutil, pk12util and openssl; certificates with chosen dates by
# tests/cms-maker.py.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util openssl "$PYTHON3"
"$PYTHON3" -c 'import cryptography' 2>/dev/null || {
    echo "1..0 # SKIP python3 cryptography is not installed"; exit 0; }

T=$TEST_TMP
DB=$T/ca
make_dogtag_ca "$DB"
PW=$T/p12.pass
printf 'Findings p12 pass 9\n' >"$PW"
FAST=(--iterations 2000)
CA_NICK=$DOGTAG_CA_NICK
expect_status 0 "a full backup" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$T/full.p12" -w "$PW" "${FAST[@]}"
jcheck() { local d=$1; shift; cp "$OUT" "$T/out.json"; json_checks "$d" "$T/out.json" "$@"; }
copy_db() { cp -a "$DB" "$T/$1"; cp "$DB.pass" "$T/$1.pass"; cp "$DB.noise" "$T/$1.noise"; }

# ---- the control: nothing to find ----
expect_status 0 "the full backup against its own database" \
    "$CABACK" verify "$T/full.p12" -w "$PW" -d "$DB" -f "$DB.pass" --json
jcheck "no finding" "r['restorable'] is True and r['stale'] is False" "r['trust_differences'] == []" \
    "r['missing_keys'] == []" "r['keys_without_certificate'] == []" \
    "r['chains_without_root'] == []" "r['expired_certificates'] == []"

# ---- trust flags differ ----
copy_db trust
certutil -M -d "sql:$T/trust" -f "$T/trust.pass" -n "$CA_NICK" -t "C,C,C"
expect_status 1 "trust flags changed in the database since the backup: stale" \
    "$CABACK" verify "$T/full.p12" -w "$PW" -d "$T/trust" -f "$T/trust.pass"
expect_grep "its own line, naming both" \
    "^problem: the backup is stale: a restore of it would set other trust flags .*certificate \"$CA_NICK\" \(serial 0x[0-9A-F]+\): CTu,Cu,Cu in the backup, Cu,Cu,Cu in the database" "$OUT"
expect_grep "the summary says STALE" "NOT restorable: .*STALE against" "$OUT"
expect_status 1 "--json" "$CABACK" verify "$T/full.p12" -w "$PW" -d "$T/trust" -f "$T/trust.pass" --json
jcheck "trust" "r['stale'] is True and r['restorable'] is False" \
    "[(d['nickname'], d['backup_trust'], d['database_trust']) for d in r['trust_differences']] == [('$CA_NICK', 'CTu,Cu,Cu', 'Cu,Cu,Cu')]" \
    "r['missing_keys'] == [] and r['missing_from_backup'] == []"

# ---- a pending re-key: a key the backup lacks ----
copy_db pending
certutil -R -d "sql:$T/pending" -f "$T/pending.pass" -z "$T/pending.noise" -k rsa -g 2048 \
    -s "CN=Subsystem Certificate,OU=pki-tomcat,O=EXAMPLE.TEST Security Domain" -o "$T/rekey.csr" >/dev/null 2>&1
NEW_KEY=$(comm -13 <(certutil_key_ids "$DB" | cut -d' ' -f1 | sort) \
    <(certutil_key_ids "$T/pending" | cut -d' ' -f1 | sort))
check "certutil -R left a new key without certificate" test -n "$NEW_KEY"
expect_status 1 "a database with a pending re-key: stale" \
    "$CABACK" verify "$T/full.p12" -w "$PW" -d "$T/pending" -f "$T/pending.pass"
expect_grep "its own line, naming the key" \
    "^problem: the backup is stale: .* holds private keys the file lacks: key $NEW_KEY \(no certificate: a pending re-key" "$OUT"
expect_status 1 "--json" "$CABACK" verify "$T/full.p12" -w "$PW" -d "$T/pending" -f "$T/pending.pass" --json
jcheck "pending re-key" "r['stale'] is True" \
    "[(m['nss_id'], m['nickname']) for m in r['missing_keys']] == [('$NEW_KEY', None)]" \
    "r['trust_differences'] == []"

# ---- a key without certificate in the file ----
pk12util -o "$T/sub.p12" -n "subsystemCert cert-pki-ca" -d "sql:$DB" -k "$DB.pass" -W exportpw >/dev/null 2>&1
openssl pkcs12 -in "$T/sub.p12" -passin pass:exportpw -nodes -nocerts -out "$T/sub.key" 2>/dev/null
openssl pkcs12 -export -nocerts -inkey "$T/sub.key" -passout "file:$PW" -out "$T/keyonly.p12" 2>/dev/null
SUB_KEY=$(certutil_key_ids "$DB" | sed -n 's/^\([0-9a-f]*\) .*subsystemCert cert-pki-ca$/\1/p')
expect_status 1 "a file whose key has no certificate: not restorable" \
    "$CABACK" verify "$T/keyonly.p12" -w "$PW"
expect_grep "its own line" "^problem: key $SUB_KEY has no certificate in the file" "$OUT"
expect_grep "the summary does not say restorable" "NOT restorable: 0 of 1 key" "$OUT"
expect_status 1 "--json" "$CABACK" verify "$T/keyonly.p12" -w "$PW" --json
jcheck "key without certificate" "r['restorable'] is False" \
    "[k['nss_id'] for k in r['keys_without_certificate']] == ['$SUB_KEY']"

# ---- a chain without its root ----
M=$T/m
mkdir -p "$M"
MAKER="$PYTHON3 $CABACK_SRCDIR/tests/cms-maker.py"
$MAKER cert "$M" root --ca --days-before 100 --days-after 3000 2>/dev/null
$MAKER cert "$M" inter --ca --issuer root --days-before 50 --days-after 2000 2>/dev/null
$MAKER cert "$M" leaf --issuer inter 2>/dev/null
openssl pkcs12 -export -inkey "$M/leaf.key" -in "$M/leaf.pem" -certfile "$M/inter.pem" -name leaf \
    -passout "file:$PW" -out "$T/rootless.p12" 2>/dev/null
expect_status 1 "a leaf and its intermediate without the root: not restorable" \
    "$CABACK" verify "$T/rootless.p12" -w "$PW"
expect_grep "its own line, naming the top and the missing root" \
    "^problem: the chain of .*\"leaf\".* has no root in the file: it ends at \"O=CMS MAKER.TEST,CN=inter\", whose issuer \"O=CMS MAKER.TEST,CN=root\" is not in the file" "$OUT"
expect_grep "the intermediate is not taken for the root" "chains NOT verified" "$OUT"
expect_status 1 "--json" "$CABACK" verify "$T/rootless.p12" -w "$PW" --json
jcheck "rootless" "r['restorable'] is False and r['chain_ok'] is False" \
    "[(x['top'], x['missing_root'], x['trusted_by_database']) for x in r['chains_without_root']] == [('O=CMS MAKER.TEST,CN=inter', 'O=CMS MAKER.TEST,CN=root', False)]" \
    "all(c['chain_ok'] is False for c in r['certificates'])"
# A live database that trusts the root: the chain is whole there (the root is then only what a
# full backup of that database would take, which makes this file stale there, not unrestorable).
LIVE=$T/live
make_nssdb "$LIVE"
certutil -A -d "sql:$LIVE" -f "$LIVE.pass" -n root -t CT,C,C -i "$M/root.pem"
pk12util -i "$T/rootless.p12" -d "sql:$LIVE" -k "$LIVE.pass" -w "$PW" >/dev/null 2>&1
INTER_NICK=$(certutil -L -d "sql:$LIVE" | grep -i "inter" | sed 's/  .*//' | head -1)
[ -n "$INTER_NICK" ] && certutil -M -d "sql:$LIVE" -f "$LIVE.pass" -n "$INTER_NICK" -t CT,C,C
expect_status 1 "the same file against a database that trusts its root" \
    "$CABACK" verify "$T/rootless.p12" -w "$PW" -d "$LIVE" -f "$LIVE.pass" --json
jcheck "rootless, root trusted" "[x['trusted_by_database'] for x in r['chains_without_root']] == [True]" \
    "any('holds no root' in n for n in r['notes'])" \
    "not any('has no root' in p for p in r['problems'])" \
    "[m['nickname'] for m in r['missing_from_backup']] == ['root']"

# ---- a cycle of issuers (a hostile file: a issued by b, b by a) ----
# The drill ends, and each chain is reported without root, ending where a walk of n + 1 steps up
# the issuers ends (n certificates), as before the walk was made linear.
C=$T/cycle
mkdir -p "$C"
for x in a b; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=cycle-$x" \
        -keyout "$C/$x.key" -out "$C/$x-self.pem" -days 30 2>/dev/null
done
for pair in a:b b:a; do
    s=${pair%:*} i=${pair#*:}
    openssl req -new -key "$C/$s.key" -subj "/CN=cycle-$s" -out "$C/$s.csr" 2>/dev/null
    openssl x509 -req -in "$C/$s.csr" -CA "$C/$i-self.pem" -CAkey "$C/$i.key" -set_serial 7 \
        -days 30 -out "$C/$s.pem" 2>/dev/null
done
cat "$C/a.pem" "$C/b.pem" >"$C/both.pem"
openssl pkcs12 -export -nokeys -in "$C/both.pem" -passout "file:$PW" -out "$T/cycle.p12" 2>/dev/null
expect_status 1 "a cycle of issuers: not restorable" \
    "$CABACK" verify "$T/cycle.p12" -w "$PW" --json
jcheck "cycle" "r['restorable'] is False and r['chain_ok'] is False" \
    "[(x['top'], x['missing_root']) for x in r['chains_without_root']] == [('CN=cycle-b', 'CN=cycle-a'), ('CN=cycle-a', 'CN=cycle-b')]"

# ---- an expired CA certificate, an expired system certificate ----
$MAKER cert "$M" oldca --ca --days-before 800 --days-after -10 2>/dev/null
openssl pkcs12 -export -inkey "$M/oldca.key" -in "$M/oldca.pem" -name oldca \
    -passout "file:$PW" -out "$T/expiredca.p12" 2>/dev/null
expect_status 1 "an expired CA certificate: not restorable" "$CABACK" verify "$T/expiredca.p12" -w "$PW"
expect_grep "its own line, with --allow-expired" \
    "^problem: CA certificate \"oldca\" \(serial 0x[0-9A-F]+\) expired on [0-9T:-]+Z: .*--allow-expired" "$OUT"
expect_status 1 "--json" "$CABACK" verify "$T/expiredca.p12" -w "$PW" --json
jcheck "expired CA" "r['restorable'] is False" \
    "[(e['nickname'], e['ca']) for e in r['expired_certificates']] == [('oldca', True)]"
expect_status 0 "--allow-expired accepts it" "$CABACK" verify "$T/expiredca.p12" -w "$PW" --allow-expired
expect_grep "and still says it" "warning: CA certificate \"oldca\" .* expired on .*accepted with --allow-expired" "$ERR"
$MAKER cert "$M" oldsys --issuer root --days-before 400 --days-after -5 2>/dev/null
openssl pkcs12 -export -inkey "$M/oldsys.key" -in "$M/oldsys.pem" -certfile "$M/root.pem" -name oldsys \
    -passout "file:$PW" -out "$T/expiredsys.p12" 2>/dev/null
expect_status 0 "an expired system certificate is reported, the backup stays restorable" \
    "$CABACK" verify "$T/expiredsys.p12" -w "$PW" --json
jcheck "expired system certificate" "r['restorable'] is True" \
    "[(e['nickname'], e['ca']) for e in r['expired_certificates']] == [('oldsys', False)]"
expect_grep "its own line" "warning: system certificate \"oldsys\" .* expired on" "$ERR"

# ---- many problems: each on its own line; the error names the first three and counts the rest ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/many.key" \
    -subj /CN=bench-cert-0000000 -addext basicConstraints=critical,CA:FALSE -out "$T/many.pem" \
    -days 30 2>/dev/null
openssl x509 -in "$T/many.pem" -outform DER -out "$T/many.der"
# Six certificates whose subjects were edited after signing: six chains that do not verify.
"$PYTHON3" "$CABACK_SRCDIR/tests/bench-certs.py" "$T/many.der" 6 "$T/many.p12"
: >"$T/empty.pass"
run "$CABACK" verify "$T/many.p12" -w "$T/empty.pass" --allow-unauthenticated
expect_equal "six broken chains: not restorable" 1 "$STATUS"
expect_equal "... one 'problem:' line each" 6 "$(grep -c '^problem: the chain of certificate' "$OUT")"
expect_grep "... the error names the first three and counts the others" \
    'is not restorable as it is: the chain of certificate .*; the chain of certificate .*; the chain of certificate [^;]*; and 3 more \(the output lists every one\)$' "$ERR"

done_testing
