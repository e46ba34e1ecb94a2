#!/bin/bash
# caback list: PKCS#12 files written by caback backup, pk12util, OpenSSL 3 (default, -legacy,
# empty password, no password and no MAC, key only, certificate only) and GnuTLS certtool, each
# compared with what openssl pkcs12 -info reports (bags, friendly names) and with certutil -K
# (key IDs); --json parsed by python3; the password matrix; damaged files; no database touched.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util openssl setsid "$PYTHON3"

SRC=$TEST_TMP/src
make_dogtag_ca "$SRC"
PASS='List pass 1'
PW=$TEST_TMP/p12.pass
printf '%s\n' "$PASS" >"$PW"
V=$TEST_TMP/v
make_p12_variants "$SRC" "$V" "$PASS"
sub_id=$(certutil_key_ids "$SRC" | sed -n 's/ NSS Certificate DB:subsystemCert cert-pki-ca$//p')
sub_dogtag=$("$CABACK" keyid --to dogtag "$sub_id")

# "kind|friendlyName" per bag (cert, key), as openssl pkcs12 -info -nodes prints them on
# standard output: each bag is "Bag Attributes" (with its friendlyName), then the PEM of a
# certificate or a private key.
cat >"$TEST_TMP/openssl_bags.py" <<'EOF'
import sys
name = None
for line in sys.stdin:
    line = line.rstrip("\n")
    if line.startswith("Bag Attributes"):
        name = ""
    elif line.startswith("    friendlyName: ") and name is not None:
        name = line[len("    friendlyName: "):]
    elif line.startswith("-----BEGIN ") and name is not None:
        kind = "cert" if "CERTIFICATE" in line else "crl" if "CRL" in line else "key"
        print(kind + "|" + name)
        name = None
EOF
# The same from caback list --json, with checks of its shape: prints the bag lines, then
# "ids ID..." with each key's NSS ID.
cat >"$TEST_TMP/caback_bags.py" <<'EOF'
import json, re, sys
doc = json.load(open(sys.argv[1]))
f = doc["file"]
assert set(f) >= {"path", "mac", "mac_iterations", "safes", "warnings"}, f
assert (f["mac"] is None) == (f["mac_iterations"] is None), f
for s in f["safes"]:
    assert isinstance(s["protection"], str), s
hexid = re.compile(r"^[0-9a-f]{40}$")
for i, c in enumerate(doc["certificates"]):
    assert c["index"] == i, c
    assert re.match(r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$", c["sha256_fingerprint"]), c
    assert c["not_before"].endswith("Z") and c["not_after"].endswith("Z"), c
    assert c["key_in_file"] == (c["key_index"] is not None), c
    assert c["serial"].isdigit() and int(c["serial"]) == int(c["serial_hex"], 16), c
    print("cert|" + (c["friendly_name"] or ""))
ids = []
for i, k in enumerate(doc["keys"]):
    assert k["index"] == i, k
    assert k["importable"] is True and k["type"] == "rsa" and k["size"] == 2048, k
    assert k["algorithm_oid"] == "1.2.840.113549.1.1.1", k
    assert hexid.match(k["id"]), k
    v = int.from_bytes(bytes.fromhex(k["id"]), "big", signed=True)
    assert k["dogtag_id"] == (("-" + format(-v, "x")) if v < 0 else format(v, "x")), k
    if k["certificate_index"] is not None:
        assert doc["certificates"][k["certificate_index"]]["key_index"] == i, k
    print("key|" + (k["friendly_name"] or ""))
    ids.append(k["id"])
print("ids " + " ".join(ids))
EOF

# compare_with_openssl NAME FILE PASSWORD [OPENSSL OPTIONS...]: caback list --json against
# openssl pkcs12 -info: the same bags (kind and friendlyName) in the same order, and key IDs.
compare_with_openssl() {
    local name=$1 file=$2 pass=$3; shift 3
    local pwfile="$TEST_TMP/$name.pass"
    printf '%s\n' "$pass" >"$pwfile"
    if ! openssl pkcs12 -info -in "$file" -passin "pass:$pass" -nodes "$@" 2>/dev/null |
        "$PYTHON3" "$TEST_TMP/openssl_bags.py" | sort >"$TEST_TMP/$name.openssl"; then
        not_ok "$name: openssl pkcs12 -info cannot read the file"
        return
    fi
    run "$CABACK" list "$file" -w "$pwfile" --json
    if [ "$STATUS" -ne 0 ]; then
        not_ok "$name: caback list --json (exit $STATUS)"; diag "$(cat "$ERR")"; return
    fi
    cp "$OUT" "$TEST_TMP/$name.json"
    if ! "$PYTHON3" "$TEST_TMP/caback_bags.py" "$TEST_TMP/$name.json" >"$TEST_TMP/$name.caback" 2>"$TEST_TMP/$name.err"; then
        not_ok "$name: caback list --json is well-formed"; diag "$(cat "$TEST_TMP/$name.err")"; return
    fi
    grep -v '^ids' "$TEST_TMP/$name.caback" | sort >"$TEST_TMP/$name.bags"
    if [ -s "$TEST_TMP/$name.openssl" ] && cmp -s "$TEST_TMP/$name.openssl" "$TEST_TMP/$name.bags"; then
        ok "$name: the same certificates, keys and friendly names as openssl pkcs12 -info ($(wc -l <"$TEST_TMP/$name.bags") bags)"
    else
        not_ok "$name: bags differ from openssl pkcs12 -info"
        diag "openssl:" "$(cat "$TEST_TMP/$name.openssl")" "caback:" "$(cat "$TEST_TMP/$name.bags")"
    fi
}

# ---- every writer ----
compare_with_openssl pk12util "$V/pk12util.p12" "$PASS"
compare_with_openssl openssl "$V/openssl.p12" "$PASS"
compare_with_openssl openssl-legacy "$V/openssl-legacy.p12" "$PASS" -legacy
compare_with_openssl openssl-empty "$V/openssl-empty.p12" ""
compare_with_openssl openssl-nopass "$V/openssl-nopass.p12" ""
compare_with_openssl openssl-keyonly "$V/openssl-keyonly.p12" "$PASS"
compare_with_openssl openssl-certonly "$V/openssl-certonly.p12" "$PASS"
if [ -f "$V/certtool.p12" ]; then
    compare_with_openssl certtool "$V/certtool.p12" "$PASS"
else
    skip "certtool: the same bags as openssl pkcs12 -info" "certtool is not installed"
fi
for name in pk12util openssl openssl-legacy openssl-empty openssl-nopass openssl-keyonly certtool; do
    [ -f "$TEST_TMP/$name.caback" ] || continue
    expect_equal "$name: the key ID is the one certutil -K shows in the source database" \
        "ids $sub_id" "$(grep '^ids' "$TEST_TMP/$name.caback")"
done

# ---- text output ----
expect_status 0 "list (text) of the pk12util file" "$CABACK" list "$V/pk12util.p12" -w "$PW"
expect_grep "the key ID in the certutil -K form" "^  Key ID: +$sub_id " "$OUT"
expect_grep "the key ID in the CS.cfg form" "^  CS.cfg form: +$sub_dogtag " "$OUT"
expect_grep "the MAC and its iterations" '^  MAC: +HMAC-SHA256, [0-9]+ iterations' "$OUT"
expect_grep "the certificate's key is in the file" '^  Key in file: +yes, key 1' "$OUT"
expect_grep "the CA certificate's key is not" '^  Key in file: +no$' "$OUT"
expect_grep "subject, serial, validity, fingerprint" '^  SHA-256: +([0-9A-F]{2}:){31}[0-9A-F]{2}$' "$OUT"
expect_grep "the CA certificate is shown as a self-signed CA" '^  CA: +yes \(self-signed\)$' "$OUT"
expect_status 0 "list of the legacy OpenSSL file" "$CABACK" list "$V/openssl-legacy.p12" -w "$PW"
expect_grep "legacy algorithms are named" 'RC2-40|RC2' "$OUT"
expect_grep "the legacy MAC is named" '^  MAC: +HMAC-SHA1, 2048 iterations' "$OUT"
expect_status 0 "list of a file without password (no -w, no terminal)" setsid "$CABACK" list "$V/openssl-nopass.p12"
expect_grep "a file without MAC is flagged" '^  MAC: +none' "$OUT"
expect_status 0 "list of a file with the empty password (no -w, no terminal)" setsid "$CABACK" list "$V/openssl-empty.p12"
expect_status 0 "list of a key-only file" "$CABACK" list "$V/openssl-keyonly.p12" -w "$PW"
expect_grep "a key without certificate still has its key ID" "^  Key ID: +$sub_id " "$OUT"
expect_grep "... and says it has no certificate in the file" '^  Certificate: +none in the file' "$OUT"

# ---- caback's own backup: trust flags and iteration counts ----
if "$CABACK" help backup >/dev/null 2>&1; then
    expect_status 0 "caback backup of the fixture" "$CABACK" backup -d "$SRC" -f "$SRC.pass" \
        -o "$TEST_TMP/full.p12" -w "$PW" --iterations 2000
    compare_with_openssl caback "$TEST_TMP/full.p12" "$PASS"
    cat >"$TEST_TMP/trust.py" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["file"]["mac_iterations"] == 2000, doc["file"]
assert all(s["iterations"] in (None, 2000) for s in doc["file"]["safes"]), doc["file"]
for c in doc["certificates"]:
    print(c["friendly_name"] + "|" + (c["trust_flags"] or ""))
EOF
    run "$PYTHON3" "$TEST_TMP/trust.py" "$TEST_TMP/caback.json"
    sort "$OUT" >"$TEST_TMP/trust.list"
    certutil -L -d "sql:$SRC" | sed -n '5,$p' |
        sed 's/^\(.*[^ ]\) \{2,\}\([a-zA-Z]*,[a-zA-Z]*,[a-zA-Z]*\) *$/\1|\2/' | sort >"$TEST_TMP/trust.want"
    check "caback backup: the trust flags list shows equal certutil -L's, 2000 iterations" \
        cmp "$TEST_TMP/trust.want" "$TEST_TMP/trust.list"
    expect_equal "caback backup: the key IDs equal certutil -K's" \
        "$(certutil_key_ids "$SRC" | cut -d' ' -f1 | sort | tr '\n' ' ')" \
        "$(grep '^ids' "$TEST_TMP/caback.caback" | cut -d' ' -f2- | tr ' ' '\n' | sort | tr '\n' ' ')"
else
    skip "caback backup file" "caback backup is not built"
fi

# ---- passwords and damaged files ----
printf 'wrong\n' >"$TEST_TMP/wrong.pass"
expect_status 3 "wrong password" "$CABACK" list "$V/openssl.p12" -w "$TEST_TMP/wrong.pass"
expect_grep "the error says the password is wrong" '[Ww]rong password|MAC' "$ERR"
export LIST_PW="$PASS"
expect_status 0 "--p12-password-env" "$CABACK" list "$V/openssl.p12" --p12-password-env LIST_PW
expect_status 1 "a password-protected file, no password given and no terminal" setsid "$CABACK" list "$V/openssl.p12"
expect_grep "the error says how to give the password" '(-w FILE|--p12-password-env)' "$ERR"
expect_status 2 "-w and --p12-password-env together" "$CABACK" list "$V/openssl.p12" -w "$PW" --p12-password-env LIST_PW
head -c 1000 "$V/openssl.p12" >"$TEST_TMP/truncated.p12"
expect_status 1 "a truncated file" "$CABACK" list "$TEST_TMP/truncated.p12" -w "$PW"
expect_grep "the error names the file" 'truncated\.p12' "$ERR"
printf 'this is not a PKCS#12 file\n' >"$TEST_TMP/text.p12"
expect_status 1 "a text file" "$CABACK" list "$TEST_TMP/text.p12" -w "$PW"
: >"$TEST_TMP/empty.p12"
expect_status 1 "an empty file" "$CABACK" list "$TEST_TMP/empty.p12" -w "$PW"
expect_status 1 "a missing file" "$CABACK" list "$TEST_TMP/missing.p12" -w "$PW"
expect_grep "the error names the missing file" 'missing\.p12' "$ERR"
expect_status 2 "no file" "$CABACK" list
expect_status 2 "two files" "$CABACK" list "$V/openssl.p12" "$V/pk12util.p12"

# ---- no database is touched ----
mkdir "$TEST_TMP/empty-home" "$TEST_TMP/cwd"
(cd "$TEST_TMP/cwd" && HOME="$TEST_TMP/empty-home" CABACK_DBDIR="$TEST_TMP/nodb" \
    "$CABACK" list "$V/pk12util.p12" -w "$PW" >/dev/null 2>&1)
check "list creates no file anywhere (no database, no state)" \
    test -z "$(find "$TEST_TMP/cwd" "$TEST_TMP/empty-home" -mindepth 1)" -a ! -e "$TEST_TMP/nodb"

done_testing
