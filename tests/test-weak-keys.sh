#!/bin/bash
# Weak keys are named, never trusted silently (issue 16 §5): RSA under 2048 bits, RSA public
# exponent under 65537, EC curves other than P-256/P-384/P-521 and DSA, in files made by openssl.
# list and the restore plan mark such a key with the reason (text and JSON); backup warns; restore
# refuses to give CA trust (C or T) to a certificate whose key is weak unless --allow-weak-keys
# (exit 1, the database byte for byte as before).
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil openssl "$PYTHON3"

T=$TEST_TMP
PW=$T/p12.pass
printf 'Weak keys 1\n' >"$PW"

# make_ca NAME GENPKEY-OPTIONS...: a self-signed CA certificate for a new key, in $T/NAME.p12
# (friendlyName NAME), as openssl writes it.
make_ca() {
    local name=$1; shift
    openssl genpkey "$@" -out "$T/$name.key" 2>/dev/null &&
        openssl req -x509 -new -key "$T/$name.key" -subj "/CN=$name CA" -days 400 \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
            -out "$T/$name.crt" 2>/dev/null &&
        openssl pkcs12 -export -inkey "$T/$name.key" -in "$T/$name.crt" -name "$name" \
            -passout "file:$PW" -out "$T/$name.p12"
}
check "openssl makes an RSA-2048 CA" make_ca good -algorithm RSA -pkeyopt rsa_keygen_bits:2048
check "openssl makes an RSA-1024 CA" make_ca weak1024 -algorithm RSA -pkeyopt rsa_keygen_bits:1024
check "openssl makes an RSA-2048 CA with exponent 3" \
    make_ca exp3 -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -pkeyopt rsa_keygen_pubexp:3
check "openssl makes a secp256k1 CA" make_ca k1 -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1
# NSS cannot import a secp256k1 private key: its certificate alone shows the rule.
check "... and a file with its certificate only" \
    openssl pkcs12 -export -nokeys -in "$T/k1.crt" -name k1 -passout "file:$PW" -out "$T/k1.p12"
check "openssl makes a P-384 CA" make_ca p384 -algorithm EC -pkeyopt ec_paramgen_curve:P-384
openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:1024 -out "$T/dsa.param" 2>/dev/null
check "openssl makes a DSA CA" make_ca dsa -paramfile "$T/dsa.param"

# ---- list ----
for f in weak1024 exp3 k1 dsa good p384; do
    expect_status 0 "list $f.p12" "$CABACK" list "$T/$f.p12" -w "$PW"
    cp "$OUT" "$T/$f.list"
    expect_status 0 "list --json $f.p12" "$CABACK" list "$T/$f.p12" -w "$PW" --json
    cp "$OUT" "$T/$f.json"
done
expect_equal "list: the RSA-1024 certificate and key are weak, with the reason" \
    "  Weak key:     RSA 1024-bit key (under 2048 bits)
  Weak key:     RSA 1024-bit key (under 2048 bits)" "$(grep '^  Weak key:' "$T/weak1024.list")"
expect_grep "list: exponent 3 is weak" '^  Weak key:     RSA public exponent 3 \(under 65537\)$' "$T/exp3.list"
expect_grep "list: secp256k1 is weak" '^  Weak key:     EC key on curve .*secp256k1 \(not P-256, P-384 or P-521\)$' "$T/k1.list"
expect_grep "list: DSA is weak" '^  Weak key:     DSA key$' "$T/dsa.list"
expect_no_grep "list: RSA-2048 is not weak" 'Weak key' "$T/good.list"
expect_no_grep "list: P-384 is not weak" 'Weak key' "$T/p384.list"
json_checks "list --json, RSA-1024" "$T/weak1024.json" \
    "r['certificates'][0]['weak_key'] == 'RSA 1024-bit key (under 2048 bits)'" \
    "r['certificates'][0]['weak_key_rule'] == 'rsa-size'" \
    "r['keys'][0]['weak_key_rule'] == 'rsa-size'"
json_checks "list --json, other rules" "$T/exp3.json" \
    "r['certificates'][0]['weak_key_rule'] == 'rsa-exponent'"
json_checks "list --json, DSA" "$T/dsa.json" "r['certificates'][0]['weak_key_rule'] == 'dsa'"
json_checks "list --json, secp256k1" "$T/k1.json" "r['certificates'][0]['weak_key_rule'] == 'ec-curve'"
json_checks "list --json, strong keys" "$T/good.json" \
    "r['certificates'][0]['weak_key'] is None and r['certificates'][0]['weak_key_rule'] is None" \
    "r['keys'][0]['weak_key'] is None"

# ---- restore: no CA trust for a weak key without --allow-weak-keys ----
cat >"$T/dbdump.py" <<'PY'
import sqlite3, sys
for name in ("cert9.db", "key4.db"):
    db = sqlite3.connect(sys.argv[1] + "/" + name)
    for table in ("nssPublic", "nssPrivate"):
        try:
            cur = db.execute("select * from " + table)
        except sqlite3.OperationalError:
            continue
        cols = [d[0] for d in cur.description]
        for r in sorted(repr([(c, v) for c, v in zip(cols, r) if c != "id" and v is not None])
                        for r in cur):
            print(name, table, r)
PY
snapshot() {
    { certutil -L -d "sql:$1"; certutil -K -d "sql:$1" -f "$1.pass" 2>&1; "$PYTHON3" "$T/dbdump.py" "$1"; } >"$2"
}
unchanged() { # DESCRIPTION DIR BEFORE
    snapshot "$2" "$T/after.txt"
    if cmp -s "$3" "$T/after.txt"; then ok "$1"; else
        not_ok "$1"; diag "$(diff "$3" "$T/after.txt" | head -20)"
    fi
}

DB=$T/db
make_nssdb "$DB"
expect_status 0 "the strong CA is restored with CA trust" \
    "$CABACK" restore -i "$T/good.p12" -w "$PW" -d "$DB" -f "$DB.pass"
snapshot "$DB" "$T/before.txt"
for f in weak1024 exp3; do
    expect_status 1 "restore --dry-run of the $f CA: refused" \
        "$CABACK" restore -i "$T/$f.p12" -w "$PW" -d "$DB" -f "$DB.pass" --dry-run
    expect_grep "the plan marks the $f key weak, and refuses its CA trust" \
        '^            WEAK KEY: RSA .*; CA trust refused \(--allow-weak-keys accepts it\)$' "$OUT"
    expect_status 1 "restore of the $f CA: refused" \
        "$CABACK" restore -i "$T/$f.p12" -w "$PW" -d "$DB" -f "$DB.pass"
    expect_grep "the error names the refusal and the way out" \
        'would get CA trust \(C or T\) although their key is weak .*--allow-weak-keys' "$ERR"
    unchanged "the refused $f restore left the database exactly as it was" "$DB" "$T/before.txt"
done
expect_status 1 "restore --json of the RSA-1024 CA: refused" \
    "$CABACK" restore -i "$T/weak1024.p12" -w "$PW" -d "$DB" -f "$DB.pass" --json
json_checks "restore --json says why" "$OUT" \
    "r['result'] == 'refused' and r['weak_key_refusals'] == 1" \
    "r['certificates'][0]['weak_key'] == 'RSA 1024-bit key (under 2048 bits)'" \
    "r['certificates'][0]['weak_key_refused'] is True" \
    "r['certificates'][0]['weak_key_rule'] == 'rsa-size' and r['keys'][0]['weak_key_rule'] == 'rsa-size'"
unchanged "... and changed nothing" "$DB" "$T/before.txt"

# Other trust than C or T is not CA trust: restored, the weak key still named.
expect_status 0 "restore of the exponent-3 CA with --trust exp3=u,u,u" \
    "$CABACK" restore -i "$T/exp3.p12" -w "$PW" -d "$DB" -f "$DB.pass" --trust "exp3=u,u,u"
expect_grep "its plan still names the weak key" '^            WEAK KEY: RSA public exponent 3 \(under 65537\)$' "$OUT"
expect_status 0 "restore of the RSA-1024 CA with --allow-weak-keys" \
    "$CABACK" restore -i "$T/weak1024.p12" -w "$PW" -d "$DB" -f "$DB.pass" --allow-weak-keys
expect_grep "the plan says CA trust was given to a weak key" \
    'note: certificate "weak1024" gets CA trust CTu,Cu,Cu although its key is weak \(RSA 1024-bit key \(under 2048 bits\)\): --allow-weak-keys' "$OUT"
expect_grep "the RSA-1024 CA is in the database, trusted" '^weak1024 +CTu,Cu,Cu$' <(certutil -L -d "sql:$DB")
expect_grep "the log records --allow-weak-keys" ' --allow-weak-keys' "$CABACK_STATE_DIR/caback.log"

# ---- backup warns ----
expect_status 0 "backup of a database with weak keys" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$T/all.p12" -w "$PW" --iterations 2000
expect_grep "backup warns about the RSA-1024 CA" \
    'warning: certificate "weak1024" \(CN=weak1024 CA\) has a weak key: RSA 1024-bit key \(under 2048 bits\); caback restore will not give it CA trust again without --allow-weak-keys' "$ERR"
expect_grep "backup warns about the exponent-3 key" \
    'warning: certificate "exp3" \(CN=exp3 CA\) has a weak key: RSA public exponent 3 \(under 65537\)$' "$ERR"
expect_no_grep "backup does not warn about the strong CA" 'certificate "good"' "$ERR"
expect_grep "the weak key warning is in the run log" '^    WARNING: certificate "weak1024" .* has a weak key' "$CABACK_STATE_DIR/caback.log"
expect_status 0 "backup --json" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$T/all2.p12" -w "$PW" --iterations 2000 --json
json_checks "backup --json lists the weak keys among its warnings" "$OUT" \
    "sum('has a weak key' in w for w in r['warnings']) == 2"

# ---- the restore drill: a weak key is a note, not a failed drill ----
expect_status 0 "backup of the weak CA alone (trusted with --allow-weak-keys)" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -n weak1024 -o "$T/weak-only.p12" -w "$PW" --iterations 2000
expect_status 0 "verify (the drill) of that backup" "$CABACK" verify "$T/weak-only.p12" -w "$PW"
expect_grep "the drill names the weak CA key and what restore needs" \
    'certificate "weak1024" has a weak key \(RSA 1024-bit key \(under 2048 bits\)\): caback restore gives it CA trust only with --allow-weak-keys' \
    <(cat "$OUT" "$ERR")

done_testing
