#!/bin/bash
# caback backup: the Dogtag-like fixture CA into one PKCS#12 file, read back by OpenSSL, pk12util
# and GnuTLS certtool and imported by pk12util; --legacy, --mac pbmac1, JSON, selection by
# nickname and by CS.cfg, the Windows form, and the safety rules (no overwrite without --force,
# failures leave no temporary file and the old file byte-identical, mode 0600 under umask 000).
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util openssl "$PYTHON3"

DB=$TEST_TMP/ca
make_dogtag_ca "$DB"
PW=$TEST_TMP/p12.pass
printf 'Backup pass 1\n' >"$PW"
FAST=(--iterations 2000)

# "ID|nickname|trust" of every key of DB, as certutil -K / -L print them.
expected_keys() {
    local dir=$1
    certutil -L -d "sql:$dir" | sed -n '5,$p' |
        sed 's/^\(.*[^ ]\) \{2,\}\([a-zA-Z]*,[a-zA-Z]*,[a-zA-Z]*\) *$/\1|\2/' | sort -u >"$TEST_TMP/trust.txt"
    certutil_key_ids "$dir" | sed 's/ NSS Certificate DB:/ /' | while read -r id nick; do
        printf '%s|%s|%s\n' "$id" "$nick" "$(sed -n "s/^$nick|//p" "$TEST_TMP/trust.txt" | head -1)"
    done
}
expected_keys "$DB" >"$TEST_TMP/expected.txt"
expect_equal "fixture: five keys with trust flags" 5 "$(grep -c '|.*|[a-zA-Z]' "$TEST_TMP/expected.txt")"

# The no temp-file check: nothing named like caback's temporary files in DIR.
no_temp_in() {
    find "$1" -maxdepth 1 -name '.*.caback-tmp-*' | grep -q . && return 1
    return 0
}

# Reads a PKCS#12 file with openssl pkcs12 -info and checks it against expected.txt: the
# algorithms, the number of keys, each key's friendlyName and localKeyID, the modulus of each key
# against its certificate's, the trust attribute of each certificate. Prints "PASS text" or
# "FAIL text" lines.
cat >"$TEST_TMP/p12check.py" <<'EOF'
import re, subprocess, sys
path, pwfile, expected_file, profile, iterations = sys.argv[1:6]
extra = sys.argv[6:]
expected = {}
for line in open(expected_file):
    kid, nick, trust = line.rstrip('\n').split('|')
    expected[kid] = (nick, trust)
p = subprocess.run(['openssl', 'pkcs12', '-info', '-nodes', '-in', path,
                    '-passin', 'file:' + pwfile] + extra, capture_output=True, text=True)
def report(ok, text):
    print(('PASS ' if ok else 'FAIL ') + text)
report(p.returncode == 0, ' '.join(['openssl pkcs12 -info'] + extra) + ' reads the file (MAC checked)'
       + ('' if p.returncode == 0 else ': ' + p.stderr[-300:].replace('\n', ' ')))
if p.returncode != 0:
    sys.exit(0)
info = p.stderr
if profile == 'modern':
    want_mac = 'MAC: sha256, Iteration %s' % iterations
    want_alg = 'PBES2, PBKDF2, AES-256-CBC, Iteration %s, PRF hmacWithSHA256' % iterations
else:
    want_mac = 'MAC: sha1, Iteration %s' % iterations
    want_alg = 'pbeWithSHA1And3-KeyTripleDES-CBC, Iteration %s' % iterations
report(want_mac in info, 'MAC is "%s"' % want_mac)
safes = re.findall(r'PKCS7 Encrypted data: (.*)', info)
report(safes == [want_alg], 'certificates in one encrypted safe: %s' % want_alg
       + ('' if safes == [want_alg] else ' (got %s)' % safes))
keybags = re.findall(r'Shrouded Keybag: (.*)', info)
good = len(keybags) == len(expected) and all(k == want_alg for k in keybags)
report(good, '%d shrouded key bags, each %s' % (len(expected), want_alg)
       + ('' if good else ' (got %s)' % keybags))

# Bags on stdout: "Bag Attributes" / attribute lines, then a PEM block.
bags, attrs, pem = [], {}, None
for line in p.stdout.splitlines():
    if line.startswith('Bag Attributes'):
        attrs = {}
    elif line.startswith('    ') and ': ' in line and pem is None:
        k, v = line.strip().split(': ', 1)
        attrs[k] = v.strip()
    elif line.startswith('-----BEGIN '):
        pem = [line]
    elif line.startswith('-----END '):
        pem.append(line)
        bags.append((attrs, '\n'.join(pem) + '\n'))
        attrs, pem = {}, None
    elif pem is not None:
        pem.append(line)
def modulus(pem, kind):
    r = subprocess.run(['openssl', kind, '-noout', '-modulus'], input=pem, capture_output=True,
                       text=True)
    return r.stdout.strip()
def key_id(attrs):
    return attrs.get('localKeyID', '').replace(' ', '').lower()
keys = [(a, modulus(pem, 'rsa')) for a, pem in bags if 'PRIVATE KEY' in pem]
certs = [(a, modulus(pem, 'x509')) for a, pem in bags if 'CERTIFICATE' in pem]
report(len(keys) == len(expected), '%d keys decrypted by openssl (got %d)' % (len(expected), len(keys)))
report(sorted(key_id(a) for a, _ in keys) == sorted(expected),
       'the key localKeyIDs are the certutil -K IDs')
cert_by_id = {key_id(a): (a, m) for a, m in certs if key_id(a)}
bad = {'name': [], 'modulus': [], 'cert_name': [], 'trust': []}
for a, m in keys:
    kid = key_id(a)
    nick, trust = expected.get(kid, ('?', '?'))
    ca, cm = cert_by_id.get(kid, ({}, None))
    if a.get('friendlyName') != nick:
        bad['name'].append('%s: %s' % (kid, a.get('friendlyName')))
    if cm is None or cm != m or not m.startswith('Modulus='):
        bad['modulus'].append(kid)
    if ca.get('friendlyName') != nick:
        bad['cert_name'].append('%s: %s' % (kid, ca.get('friendlyName')))
    if ca.get('2.16.840.1.113730.5.1.1.1') != trust:
        bad['trust'].append('%s: %s, expected %s' % (nick, ca.get('2.16.840.1.113730.5.1.1.1'), trust))
def summary(kind, text):
    report(not bad[kind], text + ('' if not bad[kind] else ' (wrong: %s)' % '; '.join(bad[kind])))
summary('name', 'every key bag has its certificate nickname as friendlyName')
summary('modulus', 'every key has the modulus of the certificate with the same localKeyID')
summary('cert_name', 'every certificate bag has the nickname as friendlyName')
summary('trust', 'every certificate bag carries the Dogtag trust attribute of certutil -L')
EOF
# p12check DESCRIPTION FILE PROFILE ITERATIONS [OPENSSL OPTIONS]: one TAP line per check.
p12check() {
    local desc=$1 file=$2; shift 2
    "$PYTHON3" "$TEST_TMP/p12check.py" "$file" "$PW" "$TEST_TMP/expected.txt" "$@" >"$TEST_TMP/check.out" 2>&1
    [ -s "$TEST_TMP/check.out" ] || echo "FAIL the checker printed nothing" >"$TEST_TMP/check.out"
    while read -r status text; do
        if [ "$status" = PASS ]; then ok "$desc: $text"; else not_ok "$desc: $text"; fi
    done <"$TEST_TMP/check.out"
}

# ---- the whole CA, modern defaults (600,000 iterations: the one slow run) ----
OUTDIR=$TEST_TMP/out
mkdir -p "$OUTDIR"
P12=$OUTDIR/ca.p12
expect_status 0 "backup of the whole fixture CA with the default 600,000 iterations" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$P12" -w "$PW"
cp "$OUT" "$TEST_TMP/summary.txt"
expect_grep "says what it selects before the work" '^Backing up 5 private keys and 5 certificates from token "NSS Certificate DB"' "$TEST_TMP/summary.txt"
expect_grep "the summary names the file and counts" "^Wrote $P12 \\(mode 0600\\): 5 private keys, 5 certificates" "$TEST_TMP/summary.txt"
ca_id=$(sed -n 's/|caSigningCert cert-pki-ca|.*//p' "$TEST_TMP/expected.txt")
ca_dogtag=$("$CABACK" keyid --to dogtag "$ca_id")
expect_grep "the summary gives the CA key ID in both forms" "key ID $ca_id \\(CS.cfg form $ca_dogtag\\), trust CTu,Cu,Cu" "$TEST_TMP/summary.txt"
expect_grep "the summary names the algorithms and iterations" '^Keys: PBES2 \(PBKDF2-HMAC-SHA256, AES-256-CBC\), 600000 iterations' "$TEST_TMP/summary.txt"
expect_grep "the summary names the MAC" '^MAC: HMAC-SHA256, 600000 iterations' "$TEST_TMP/summary.txt"
expect_grep "the summary reports the verification" '^Verified: .*MAC checked.*5 keys decrypted and matched' "$TEST_TMP/summary.txt"
expect_no_grep "no progress lines when standard error is not a terminal" '\[1/5\]' "$ERR"
expect_equal "the file is mode 0600" 600 "$(stat -c %a "$P12")"
check "no temporary file is left" no_temp_in "$OUTDIR"
p12check "default" "$P12" modern 600000

# ---- pk12util and certtool read it; pk12util imports it ----
run pk12util -l "$P12" -w "$PW"
expect_equal "pk12util -l reads the file" 0 "$STATUS"
expect_equal "pk12util -l sees 5 shrouded keys" 5 "$(grep -c '^Key(shrouded):' "$OUT")"
expect_equal "pk12util -l sees 5 certificates with their keys" 5 "$(grep -c '^Certificate(has private key):' "$OUT")"
expect_equal "pk12util -l shows the nicknames as friendly names" \
    "$(cut -d'|' -f2 "$TEST_TMP/expected.txt" | sort)" \
    "$(sed -n '/^Key(shrouded):/,/^$/s/^    Friendly Name: //p' "$OUT" | sort)"
expect_grep "pk12util -l names PBES2 for the keys" 'Encryption algorithm: PKCS #5 Password Based Encryption v2' "$OUT"

NEW=$TEST_TMP/imported
make_nssdb "$NEW"
run pk12util -i "$P12" -d "sql:$NEW" -k "$NEW.pass" -w "$PW"
expect_equal "pk12util -i imports the file into a fresh database" 0 "$STATUS"
[ "$STATUS" -eq 0 ] || diag "$(cat "$OUT" "$ERR")"
# certutil -K names keys by their label when they have one (pk12util gives them one), else by
# "NSS Certificate DB:" and the certificate's nickname.
expect_equal "after the import, certutil -K shows the same key IDs and nicknames" \
    "$(certutil_key_ids "$DB" | sed 's/ NSS Certificate DB:/ /')" \
    "$(certutil_key_ids "$NEW" | sed 's/ NSS Certificate DB:/ /')"

if command -v certtool >/dev/null 2>&1; then
    run certtool --p12-info --inder --infile "$P12" --password "$(head -1 "$PW")"
    expect_equal "certtool --p12-info reads the file" 0 "$STATUS"
    expect_grep "certtool checks the HMAC-SHA256 MAC" 'MAC: SHA256' "$OUT"
    expect_equal "certtool sees 5 PKCS #8 encrypted keys" 5 "$(grep -c 'Type: PKCS #8 Encrypted key' "$OUT")"
    expect_equal "certtool sees AES-256-CBC for every key and the certificates" 6 "$(grep -c 'Cipher: AES-256-CBC' "$OUT")"
    expect_equal "certtool shows the key IDs of certutil -K" \
        "$(cut -d'|' -f1 "$TEST_TMP/expected.txt" | sort | sed 's/../&:/g;s/:$//' | tr a-f A-F)" \
        "$(sed -n '/Type: PKCS #8 Encrypted key/,/Key ID/s/.*Key ID: //p' "$OUT" | sort)"
    expect_equal "certtool shows the friendly names" \
        "$(cut -d'|' -f2 "$TEST_TMP/expected.txt" | sort)" \
        "$(sed -n '/Type: Certificate/,/Friendly/s/.*Friendly name: //p' "$OUT" | sort)"
else
    skip "certtool --p12-info" "certtool is not installed"
fi

# ---- --json (fast iterations from here on) ----
cat >"$TEST_TMP/jsoncheck.py" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
expected = {}
for line in open(sys.argv[2]):
    kid, nick, trust = line.rstrip('\n').split('|')
    expected[kid] = (nick, trust)
assert doc["file"] == sys.argv[3], doc["file"]
assert doc["verified"] is True and doc["iterations"] == 2000, doc
assert doc["mac"] == "HMAC-SHA256" and doc["profile"] == "modern", doc
# One shared PBES2 key and one MAC key to write, the same two again to check: 4, for 5 keys.
assert doc["key_derivations"] == 4, doc["key_derivations"]
assert doc["algorithms"]["keys"] == "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC)", doc["algorithms"]
keys = doc["keys"]
assert sorted(k["nss_id"] for k in keys) == sorted(expected), keys
for k in keys:
    nick, trust = expected[k["nss_id"]]
    assert k["nickname"] == nick, k
    v = int.from_bytes(bytes.fromhex(k["nss_id"]), 'big', signed=True)
    assert k["dogtag_id"] == (('-' + format(-v, 'x')) if v < 0 else format(v, 'x')), k
    assert k["subject"].startswith("CN="), k
certs = doc["certificates"]
assert len(certs) == 5 and all(c["has_key"] for c in certs), certs
for c in certs:
    assert c["trust"] == expected[c["nss_id"]][1], c
print(len(keys))
EOF
expect_status 0 "--json" "$CABACK" backup --json -d "$DB" -f "$DB.pass" -o "$OUTDIR/json.p12" -w "$PW" "${FAST[@]}"
cp "$OUT" "$TEST_TMP/backup.json"
run "$PYTHON3" "$TEST_TMP/jsoncheck.py" "$TEST_TMP/backup.json" "$TEST_TMP/expected.txt" "$OUTDIR/json.p12"
expect_equal "--json: keys, IDs in both forms, trust, algorithms (checked by python3)" "0 5" "$STATUS $(cat "$OUT")"
[ "$STATUS" -eq 0 ] || diag "$(cat "$ERR")"
p12check "--iterations 2000" "$OUTDIR/json.p12" modern 2000

# ---- --legacy, --mac pbmac1 ----
expect_status 0 "--legacy" "$CABACK" backup -q -d "$DB" -f "$DB.pass" -o "$OUTDIR/legacy.p12" -w "$PW" --legacy
expect_equal "-q prints nothing" "" "$(cat "$OUT")"
p12check "--legacy" "$OUTDIR/legacy.p12" legacy 2048 -legacy
run pk12util -l "$OUTDIR/legacy.p12" -w "$PW"
expect_equal "pk12util -l reads the --legacy file: 5 keys" "0 5" "$STATUS $(grep -c '^Key(shrouded):' "$OUT")"
expect_grep "pk12util names 3DES for the --legacy keys" 'Encryption algorithm: PKCS #12 V2 PBE With SHA-1 And 3KEY Triple DES-CBC' "$OUT"

expect_status 0 "--mac pbmac1" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$OUTDIR/pbmac1.p12" -w "$PW" --mac pbmac1 "${FAST[@]}"
expect_grep "--mac pbmac1 is verified and reported" '^MAC: PBMAC1' "$OUT"
run openssl asn1parse -inform DER -in "$OUTDIR/pbmac1.p12"
expect_grep "--mac pbmac1 writes the PBMAC1 OID" ':PBMAC1|1\.2\.840\.113549\.1\.5\.14' "$OUT"
expect_status 2 "--legacy with --mac pbmac1 is a usage error" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$OUTDIR/x.p12" -w "$PW" --legacy --mac pbmac1
expect_grep "the usage error says why" 'cannot be combined' "$ERR"
check "nothing written for the usage error" test ! -e "$OUTDIR/x.p12"

# ---- overwriting, --force, failures keep the old file ----
cp "$P12" "$TEST_TMP/ca.p12.orig"
expect_status 4 "an existing file is not replaced" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$P12" -w "$PW" "${FAST[@]}"
expect_grep "the refusal says how to replace it" 'already exists.*--force' "$ERR"
check "the refused file is byte-identical" cmp -s "$P12" "$TEST_TMP/ca.p12.orig"

expect_status 1 "an unknown nickname" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$P12" -w "$PW" --force -n "no such cert" "${FAST[@]}"
expect_grep "the error names the unknown nickname" 'no certificate with nickname "no such cert"' "$ERR"
check "unknown nickname: the old file is byte-identical" cmp -s "$P12" "$TEST_TMP/ca.p12.orig"

printf 'wrong password\n' >"$TEST_TMP/wrong.pass"
expect_status 3 "a wrong database password" "$CABACK" backup -d "$DB" -f "$TEST_TMP/wrong.pass" -o "$P12" -w "$PW" --force "${FAST[@]}"
check "wrong password: the old file is byte-identical" cmp -s "$P12" "$TEST_TMP/ca.p12.orig"

# A write that fails half-way (file size limit; SIGXFSZ ignored so write() fails with EFBIG):
# the temporary file is removed and the old file stays.
run bash -c 'trap "" XFSZ; ulimit -f 4; exec "$@"' sh "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$P12" -w "$PW" --force "${FAST[@]}"
expect_equal "a write that fails half-way fails (exit 1)" 1 "$STATUS"
expect_grep "the write error names the file" "cannot write $P12" "$ERR"
check "failed write: the old file is byte-identical" cmp -s "$P12" "$TEST_TMP/ca.p12.orig"
check "no temporary file is left after the failures" no_temp_in "$OUTDIR"

if [ "$(id -u)" -ne 0 ]; then
    mkdir "$TEST_TMP/ro"
    chmod 555 "$TEST_TMP/ro"
    RO_TARGET=$TEST_TMP/ro/ca.p12
else
    RO_TARGET=/proc/caback-test.p12 # root may write everywhere except a read-only file system
fi
expect_status 1 "a folder that cannot be written" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$RO_TARGET" -w "$PW" "${FAST[@]}"
expect_grep "the error names the folder" "cannot create a temporary file in $(dirname "$RO_TARGET")" "$ERR"
check "nothing was created there" test ! -e "$RO_TARGET"

expect_status 1 "a folder that does not exist" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$TEST_TMP/nowhere/ca.p12" -w "$PW"
expect_grep "the error says to create the folder" "folder $TEST_TMP/nowhere does not exist" "$ERR"

expect_status 0 "--force replaces the file" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$P12" -w "$PW" --force "${FAST[@]}"
check "--force: the file changed" test -n "$(cmp "$P12" "$TEST_TMP/ca.p12.orig" 2>&1)"
run pk12util -l "$P12" -w "$PW"
expect_equal "--force: the new file is complete" "0 5" "$STATUS $(grep -c '^Key(shrouded):' "$OUT")"

rm -f "$OUTDIR/umask.p12"
run bash -c 'umask 000; exec "$@"' sh "$CABACK" backup -q -d "$DB" -f "$DB.pass" -o "$OUTDIR/umask.p12" -w "$PW" "${FAST[@]}"
expect_equal "with umask 000 the file is still mode 0600" "0 600" "$STATUS $(stat -c %a "$OUTDIR/umask.p12" 2>/dev/null)"

# ---- passwords ----
: >"$TEST_TMP/empty.pass"
expect_status 2 "an empty PKCS#12 password file is refused" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$OUTDIR/empty.p12" -w "$TEST_TMP/empty.pass"
expect_grep "the refusal says the password is empty" 'PKCS#12 password in .* is empty' "$ERR"
EMPTY_P12= expect_status 2 "an empty --p12-password-env is refused" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$OUTDIR/empty.p12" --p12-password-env EMPTY_P12
check "nothing written for an empty password" test ! -e "$OUTDIR/empty.p12"
P12_SECRET="env pass" expect_status 0 "--p12-password-env" "$CABACK" backup -q -d "$DB" -f "$DB.pass" -o "$OUTDIR/env.p12" --p12-password-env P12_SECRET "${FAST[@]}"
run pk12util -l "$OUTDIR/env.p12" -W "env pass"
expect_equal "the --p12-password-env file opens with that password" 0 "$STATUS"
expect_status 1 "no PKCS#12 password and no terminal" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$OUTDIR/noterm.p12" "${FAST[@]}"
expect_grep "the error says how to give the PKCS#12 password" 'give it with -w FILE or --p12-password-env VAR' "$ERR"

# ---- the Windows form ----
expect_status 0 "the Windows form -backup PASSWORD FILE" "$CABACK" -backup "Win pass 1" "$OUTDIR/win.p12" -d "$DB" -f "$DB.pass" "${FAST[@]}"
expect_grep "the Windows form warns that the password is visible" 'password given on the command line can be seen by other users' "$ERR"
run pk12util -l "$OUTDIR/win.p12" -W "Win pass 1"
expect_equal "the Windows-form file opens with that password: 5 keys" "0 5" "$STATUS $(grep -c '^Key(shrouded):' "$OUT")"
expect_status 2 "the Windows form with an empty password is refused" "$CABACK" -backup "" "$OUTDIR/win2.p12" -d "$DB" -f "$DB.pass"
expect_status 2 "the Windows form without FILE is a usage error" "$CABACK" -backup "Win pass 1" -d "$DB" -f "$DB.pass"
# While caback waits for the database password (a FIFO), its command line no longer shows the
# PKCS#12 password.
mkfifo "$TEST_TMP/dbpass.fifo"
"$CABACK" -backup "Visible-Secret-42" "$OUTDIR/win3.p12" -d "$DB" -f "$TEST_TMP/dbpass.fifo" "${FAST[@]}" >/dev/null 2>&1 &
pid=$!
sleep 0.5
tr '\0' ' ' <"/proc/$pid/cmdline" >"$TEST_TMP/cmdline.txt" 2>/dev/null
timeout 20 sh -c 'cat "$1" >"$2"' sh "$DB.pass" "$TEST_TMP/dbpass.fifo"
wait "$pid"
expect_equal "the Windows form succeeds with the password from a FIFO" 0 "$?"
expect_grep "its command line still shows the file" 'win3\.p12' "$TEST_TMP/cmdline.txt"
expect_no_grep "its command line no longer shows the password" 'Visible-Secret-42' "$TEST_TMP/cmdline.txt"

# ---- selection: -n with a re-keyed CA (two certificates, one nickname), --cscfg ----
RK=$TEST_TMP/rekeyed
cp -r "$DB" "$RK"
cp "$DB.pass" "$RK.pass"
cp "$DB.noise" "$RK.noise"
printf 'y\n-1\ny\n' | certutil -S -x -d "sql:$RK" -f "$RK.pass" -z "$RK.noise" -n "$DOGTAG_CA_NICK" \
    -s "CN=CA Signing Certificate,OU=pki-tomcat,O=EXAMPLE.TEST Security Domain" -t "CTu,Cu,Cu" \
    -k rsa -g 2048 -Z SHA256 -v 240 -m 900 -2 --keyUsage certSigning,crlSigning >/dev/null 2>&1
expect_equal "fixture: the re-keyed CA has two certificates named $DOGTAG_CA_NICK" 2 \
    "$(certutil -L -d "sql:$RK" | grep -c "^$DOGTAG_CA_NICK ")"
expect_status 0 "-n with the nickname of two certificates" "$CABACK" backup --json -d "$RK" -f "$RK.pass" -o "$OUTDIR/rekeyed.p12" -w "$PW" -n "$DOGTAG_CA_NICK" "${FAST[@]}"
expect_equal "both certificates and both keys are in the backup" "2 2" \
    "$("$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["keys"]), len(d["certificates"]))' "$OUT")"
expect_equal "their key IDs are the two CA keys of certutil -K" \
    "$(certutil_key_ids "$RK" | sed -n "s/ NSS Certificate DB:$DOGTAG_CA_NICK\$//p" | sort)" \
    "$("$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("\n".join(sorted(k["nss_id"] for k in d["keys"])))' "$OUT")"
run pk12util -l "$OUTDIR/rekeyed.p12" -w "$PW"
expect_equal "pk12util -l sees two keys named $DOGTAG_CA_NICK" 2 "$(grep -A1 '^Key(shrouded):' "$OUT" | grep -c "Friendly Name: $DOGTAG_CA_NICK")"

# The OCSP certificate was issued by the old CA key: its chain must be the old CA certificate.
expect_status 0 "-n of a certificate issued before the re-key" "$CABACK" backup -q -d "$RK" -f "$RK.pass" -o "$OUTDIR/ocsp.p12" -w "$PW" -n "ocspSigningCert cert-pki-ca" "${FAST[@]}"
openssl pkcs12 -in "$OUTDIR/ocsp.p12" -passin "file:$PW" -nokeys -cacerts -out "$TEST_TMP/chain.pem" 2>/dev/null
openssl pkcs12 -in "$OUTDIR/ocsp.p12" -passin "file:$PW" -nokeys -clcerts -out "$TEST_TMP/leaf.pem" 2>/dev/null
run openssl verify -CAfile "$TEST_TMP/chain.pem" "$TEST_TMP/leaf.pem"
expect_equal "the chain in the file is the CA certificate that signed it (openssl verify)" 0 "$STATUS"
[ "$STATUS" -eq 0 ] || diag "$(cat "$OUT" "$ERR")"

cat >"$TEST_TMP/CS.cfg" <<EOF
cs.type=CA
ca.cert.list=signing,ocsp_signing,sslserver,subsystem,audit_signing
ca.signing.nickname=caSigningCert cert-pki-ca
ca.ocsp_signing.nickname=ocspSigningCert cert-pki-ca
ca.sslserver.nickname=Server-Cert cert-pki-ca
ca.subsystem.nickname=subsystemCert cert-pki-ca
ca.audit_signing.nickname=auditSigningCert cert-pki-ca
EOF
nicknames_of() { "$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(",".join(sorted(k["nickname"] for k in d["keys"])))' "$1"; }
expect_status 0 "--cscfg" "$CABACK" backup --json -d "$DB" -f "$DB.pass" -o "$OUTDIR/cscfg.p12" -w "$PW" --cscfg "$TEST_TMP/CS.cfg" "${FAST[@]}"
expect_equal "--cscfg backs up the listed certificates without sslserver" \
    "auditSigningCert cert-pki-ca,caSigningCert cert-pki-ca,ocspSigningCert cert-pki-ca,subsystemCert cert-pki-ca" \
    "$(nicknames_of "$OUT")"
expect_status 0 "--cscfg --include-sslserver" "$CABACK" backup --json -d "$DB" -f "$DB.pass" -o "$OUTDIR/cscfg-ssl.p12" -w "$PW" --cscfg "$TEST_TMP/CS.cfg" --include-sslserver "${FAST[@]}"
expect_equal "--include-sslserver adds Server-Cert" \
    "Server-Cert cert-pki-ca,auditSigningCert cert-pki-ca,caSigningCert cert-pki-ca,ocspSigningCert cert-pki-ca,subsystemCert cert-pki-ca" \
    "$(nicknames_of "$OUT")"
expect_status 2 "--include-sslserver without --cscfg is a usage error" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$OUTDIR/x.p12" -w "$PW" --include-sslserver
sed 's/^ca.subsystem.nickname=.*//' "$TEST_TMP/CS.cfg" >"$TEST_TMP/CS-missing.cfg"
expect_status 1 "--cscfg with a tag without nickname" "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$OUTDIR/x.p12" -w "$PW" --cscfg "$TEST_TMP/CS-missing.cfg"
expect_grep "the error names the tag" 'lists the certificate "subsystem"' "$ERR"
check "no temporary file is left at the end" no_temp_in "$OUTDIR"

# ---- a terminal gets one progress line, rewritten in place and cleared at the end ----
if command -v script >/dev/null 2>&1; then
    script -qec "\"$CABACK\" backup -d \"$DB\" -f \"$DB.pass\" -o \"$OUTDIR/tty.p12\" -w \"$PW\" --iterations 2000" /dev/null >"$TEST_TMP/tty.txt" 2>&1 </dev/null
    expect_equal "on a terminal: the progress line reaches the last key of both steps" "1 1" \
        "$(grep -c '\[5/5\] encrypting the private key of' "$TEST_TMP/tty.txt") $(grep -c '\[5/5\] checking the private key of' "$TEST_TMP/tty.txt")"
else
    skip "progress lines on a terminal" "script is not installed"
fi

# ---- an orphan key (a re-keyed subsystem) is named in a warning, and left out ----
RK=$TEST_TMP/rekeyed
make_dogtag_ca "$RK"
rekey_cert "$RK" "subsystemCert cert-pki-ca"
OLD_ID=$(certutil_key_ids "$RK" | awk '/\(orphan\)/ {print $1}')
expect_equal "certutil -K shows one orphan" 1 "$(printf '%s\n' "$OLD_ID" | grep -c .)"
expect_status 0 "backup of a database with an orphan key" \
    "$CABACK" backup -d "$RK" -f "$RK.pass" -o "$TEST_TMP/rekeyed.p12" -w "$PW" "${FAST[@]}"
expect_grep "the warning counts the orphan" "1 private key on token .* has no certificate and is not in the backup" "$ERR"
expect_grep "the warning names the old key's ID" "orphan\): $OLD_ID" "$ERR"
run "$CABACK" list "$TEST_TMP/rekeyed.p12" -w "$PW"
expect_no_grep "the orphan key is not in the file" "$OLD_ID" "$OUT"

done_testing
