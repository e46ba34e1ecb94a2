#!/bin/bash
# PBMAC1 (RFC 9579) checked against an independent oracle, tests/pbmac1-oracle.py (Python
# standard library only: hashlib PBKDF2, hmac, its own DER), since no peer installed here verifies
# PBMAC1: files caback backup writes with --mac pbmac1 verify under the oracle; files the oracle
# gives a PBMAC1 MAC (the three valid PRF/HMAC pairs of RFC 9579 appendix A.1-A.3, over files
# OpenSSL and caback wrote) are read by caback list with the right contents; the invalid cases of
# appendix A.4-A.6 (iteration count or salt changed after the MAC was computed, keyLength missing)
# and a wrong password are refused.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil openssl "$PYTHON3"

ORACLE=("$PYTHON3" "$CABACK_SRCDIR/tests/pbmac1-oracle.py")
DB=$TEST_TMP/db
make_dogtag_ca "$DB"

# field NAME: the value of "NAME: value" in the oracle's output ($OUT).
field() { sed -n "s/^$1: //p" "$OUT"; }

# ---- (a) caback writes, the oracle verifies ----
PW_UTF8=$TEST_TMP/utf8.pass
printf 'Schlüssel ☃ pass\n' >"$PW_UTF8"
OTHER=$TEST_TMP/other.pass
printf 'Schlussel ☃ pass\n' >"$OTHER"
CAB=$TEST_TMP/caback.p12
expect_status 0 "caback backup --mac pbmac1 with a non-ASCII password" \
    "$CABACK" backup -d "$DB" -f "$DB.pass" -o "$CAB" -w "$PW_UTF8" --mac pbmac1 \
    --iterations 2000 --force
expect_status 0 "the oracle verifies caback's PBMAC1 MAC (PBKDF2 over the UTF-8 password)" \
    "${ORACLE[@]}" verify -w "$PW_UTF8" "$CAB"
expect_equal "caback: PRF HMAC-SHA256" "HMAC-SHA256" "$(field prf)"
expect_equal "caback: MAC HMAC-SHA256" "HMAC-SHA256" "$(field hmac)"
expect_equal "caback: 2000 PBKDF2 iterations, as asked" "2000" "$(field iterations)"
expect_equal "caback: keyLength 32 (HMAC-SHA256's output size)" "32" "$(field key-length)"
expect_equal "caback: a 16-byte or longer PBKDF2 salt" "yes" \
    "$([ "$(field salt | wc -c)" -gt 32 ] && echo yes || echo no)"
expect_equal "caback: MacData macSalt and iterations repeat the PBKDF2 ones" \
    "$(field salt) $(field iterations)" "$(field macdata-salt) $(field macdata-iterations)"
# The oracle must be able to say no: the same file under another password.
expect_status 1 "the oracle rejects caback's file under another password" \
    "${ORACLE[@]}" verify -w "$OTHER" "$CAB"
expect_equal "the oracle reports the mismatch" "mismatch" "$(field result)"

# ---- (b) the oracle writes, caback reads ----
# An OpenSSL file without MAC (written with no caback code), the base of the RFC 9579 A.1-A.3
# pairs; its key ID as NSS computes it for RSA (SHA-1 of the modulus), from openssl and Python.
PW=$TEST_TMP/p12.pass
printf '1234\n' >"$PW"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TEST_TMP/k.pem" -out "$TEST_TMP/c.pem" \
    -subj "/CN=pbmac1.example.test" -days 30 >/dev/null 2>&1
BASE=$TEST_TMP/nomac.p12
expect_status 0 "openssl pkcs12 -export -nomac" openssl pkcs12 -export -nomac \
    -in "$TEST_TMP/c.pem" -inkey "$TEST_TMP/k.pem" -name "pbmac1 key" -passout "file:$PW" -out "$BASE"
KEY_ID=$(openssl rsa -in "$TEST_TMP/k.pem" -noout -modulus | sed 's/^Modulus=//' |
    "$PYTHON3" -c 'import hashlib, sys
print(hashlib.sha1(bytes.fromhex(sys.stdin.read().strip())).hexdigest())')
FPR=$(openssl x509 -in "$TEST_TMP/c.pem" -noout -fingerprint -sha256 | sed 's/^.*=//')

# contents JSON: "MAC|#keys|#certs|name|subject|type size|key ID|fingerprint", from the output
# of caback list --json.
contents() {
    "$PYTHON3" -c 'import json, sys
d = json.load(open(sys.argv[1]))
k, c = d["keys"], d["certificates"]
print("|".join([d["file"]["mac"] or "-", str(len(k)), str(len(c)), k[0]["friendly_name"] or "-",
    c[0]["subject"], "%s %s" % (k[0]["type"], k[0]["size"]), k[0]["id"],
    c[0]["sha256_fingerprint"]]))' "$1"
}

# RFC 9579 A.1: PRF and HMAC SHA-256; A.2: PRF SHA-512, HMAC SHA-256; A.3: PRF and HMAC SHA-512.
for pair in "sha256 sha256" "sha512 sha256" "sha512 sha512"; do
    read -r prf mac <<<"$pair"
    label="PBKDF2-HMAC-${prf^^}, HMAC-${mac^^}"
    f=$TEST_TMP/oracle-$prf-$mac.p12
    expect_status 0 "the oracle gives the OpenSSL file a PBMAC1 MAC ($label)" \
        "${ORACLE[@]}" rewrite -w "$PW" --prf "$prf" --hmac "$mac" --iterations 2048 -o "$f" "$BASE"
    expect_status 0 "the oracle verifies its own file ($label)" "${ORACLE[@]}" verify -w "$PW" "$f"
    expect_status 0 "caback list reads it ($label)" "$CABACK" list "$f" -w "$PW" --json
    expect_equal "caback list: MAC, one key, its certificate, name, key ID, fingerprint ($label)" \
        "PBMAC1 ($label), 2048 iterations|1|1|pbmac1 key|CN=pbmac1.example.test|rsa 2048|$KEY_ID|$FPR" \
        "$(contents "$OUT")"
    expect_status 3 "caback list: wrong password -> exit 3 ($label)" \
        "$CABACK" list "$f" -w "$OTHER"
    expect_grep "caback list: the error says wrong password ($label)" 'wrong password' "$ERR"
done

# caback's own five-key file with its MAC replaced by the oracle's (the SHA-512 pair), MacData's
# macSalt and iterations, which PBMAC1 does not use, set as in RFC 9579's examples ("NOT USED", 1).
RE=$TEST_TMP/caback-resealed.p12
expect_status 0 "the oracle re-MACs caback's file (PBKDF2-HMAC-SHA512, HMAC-SHA512, 3000)" \
    "${ORACLE[@]}" rewrite -w "$PW_UTF8" --prf sha512 --hmac sha512 --iterations 3000 \
    -o "$RE" "$CAB"
expect_status 0 "caback list reads it with the non-ASCII password" \
    "$CABACK" list "$RE" -w "$PW_UTF8"
expect_grep "caback list: the oracle's MAC" \
    '^  MAC: +PBMAC1 \(PBKDF2-HMAC-SHA512, HMAC-SHA512\), 3000 iterations$' "$OUT"
expect_grep "caback list: all five keys and certificates" \
    '^  Holds 5 certificate\(s\), 5 key\(s\)' "$OUT"
expect_grep "caback list: trust flags kept" 'CTu,Cu,Cu' "$OUT"

# ---- (c) RFC 9579 A.4-A.6: refused ----
# Each invalid file carries the MAC that is right for salt $SALT and 2048 iterations (the value
# of a good file made the same way); only the parameters written beside it differ.
SALT=00112233445566778899aabbccddeeff
GOOD=$TEST_TMP/good.p12
"${ORACLE[@]}" rewrite -w "$PW" --salt "$SALT" --iterations 2048 -o "$GOOD" "$BASE"
run "${ORACLE[@]}" verify -w "$PW" "$GOOD"
good_mac=$(field mac-value)
expect_status 0 "the good file: caback list accepts it" "$CABACK" list "$GOOD" -w "$PW"
"${ORACLE[@]}" rewrite -w "$PW" --salt "$SALT" --iterations 2048 --claim-iterations 2049 \
    -o "$TEST_TMP/bad-iter.p12" "$BASE"
"${ORACLE[@]}" rewrite -w "$PW" --salt "$SALT" --iterations 2048 \
    --claim-salt ffeeddccbbaa99887766554433221100 -o "$TEST_TMP/bad-salt.p12" "$BASE"
"${ORACLE[@]}" rewrite -w "$PW" --salt "$SALT" --iterations 2048 --omit-key-length \
    -o "$TEST_TMP/no-length.p12" "$BASE"
for n in bad-iter bad-salt; do
    f=$TEST_TMP/$n.p12
    expect_status 1 "$n: the oracle finds the MAC wrong" "${ORACLE[@]}" verify -w "$PW" "$f"
    expect_equal "$n: it is the good file's MAC value" "$good_mac" "$(field mac-value)"
    expect_status 3 "$n: caback list refuses it as a MAC mismatch" "$CABACK" list "$f" -w "$PW"
    expect_grep "$n: the error says the MAC check failed" 'MAC check failed' "$ERR"
done
f=$TEST_TMP/no-length.p12
expect_status 3 "no-length: the oracle refuses a PBMAC1 without keyLength" \
    "${ORACLE[@]}" verify -w "$PW" "$f"
expect_equal "no-length: it is the good file's MAC value" "$good_mac" "$(field mac-value)"
expect_status 1 "no-length: caback list refuses it" "$CABACK" list "$f" -w "$PW"
expect_grep "no-length: the error names the missing keyLength" \
    'no PBKDF2 keyLength, which RFC 9579 requires' "$ERR"

# ---- (d) a wrong password, on caback's own file ----
expect_status 3 "caback list: caback's PBMAC1 file with a wrong password -> exit 3" \
    "$CABACK" list "$CAB" -w "$OTHER"

done_testing
