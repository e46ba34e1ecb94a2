#!/bin/bash
# M-of-N custody, the envelope and share-open: shares encrypted by caback's library (through the
# test helper custody-tool, as backup --split does) to custodians whose certificates and keys were
# made with certutil in their own databases (RSA 2048 and 3072, EC P-256 and P-384), opened by
# OpenSSL (openssl cms -decrypt prints the record) and by caback share-open with each
# custodian's database; OpenSSL's envelopes opened by caback; wrong custodian, wrong password,
# damaged files, file modes, and no share in the run log.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util openssl sha256sum

TOOL=${CABACK_BUILDDIR}/tests/unit/custody-tool
if [ ! -x "$TOOL" ]; then
    echo "1..0 # SKIP $TOOL is not built (make tests/unit/custody-tool)"
    exit 0
fi
T=$TEST_TMP
export CABACK_STATE_DIR=$T/state
LOG=$T/run.log

# custodian NAME KEYTYPE SERIAL: a database $T/NAME with a self-signed custodian certificate
# "NAME" and its key, NAME.pem (certificate) and NAME.key (PKCS#8 key, exported for OpenSSL).
custodian() {
    local name=$1 type=$2 serial=$3 dir=$T/$1 usage
    make_nssdb "$dir" "pass-$name"
    case $type in
    rsa*) usage=keyEncipherment ;;
    *) usage=keyAgreement ;;
    esac
    local keyopts
    case $type in
    rsa2048) keyopts="-k rsa -g 2048" ;;
    rsa3072) keyopts="-k rsa -g 3072" ;;
    p256) keyopts="-k ec -q nistp256" ;;
    p384) keyopts="-k ec -q secp384r1" ;;
    esac
    # shellcheck disable=SC2086
    certutil -S -x -d "sql:$dir" -f "$dir.pass" -z "$dir.noise" -n "$name" \
        -s "CN=$name Custodian,O=EXAMPLE.TEST" -t ",,u" $keyopts -Z SHA256 -v 24 -m "$serial" \
        --keyUsage "$usage" >/dev/null 2>&1
    certutil -L -d "sql:$dir" -n "$name" -a >"$T/$name.pem"
    printf 'p12-export\n' >"$T/$name.p12pass"
    pk12util -o "$T/$name.p12" -n "$name" -d "sql:$dir" -k "$dir.pass" -w "$T/$name.p12pass" \
        >/dev/null 2>&1
    openssl pkcs12 -in "$T/$name.p12" -nocerts -nodes -passin "file:$T/$name.p12pass" \
        -out "$T/$name.key" 2>/dev/null
}
custodian alice rsa2048 11
custodian bob p256 12
custodian carol rsa3072 13
custodian dave p384 14
custodian erin p256 15
NAMES=(alice bob carol dave erin)
check "custodian keys exported for OpenSSL" test -s "$T/alice.key" -a -s "$T/bob.key" -a -s "$T/dave.key"

ARCHIVE=$T/ca.p12
head -c 20000 /dev/urandom >"$ARCHIVE"
SHA=$(sha256sum "$ARCHIVE" | cut -d' ' -f1)

# ---- 3-of-5 split, one envelope per custodian ----
expect_status 0 "split 3-of-5 for RSA and EC custodians" \
    "$TOOL" split "$ARCHIVE" 3 "$T/alice.pem" "$T/bob.pem" "$T/carol.pem" "$T/dave.pem" "$T/erin.pem"
PASSWORD_SHA=$(sed -n 's/^password-sha256: //p' "$OUT")
check "the split prints the password's digest, never the password" test ${#PASSWORD_SHA} -eq 64
expect_grep "the shares handed back by the library rebuild the same password" \
    "^rebuilt-password-sha256: $PASSWORD_SHA\$" "$OUT"
for i in 1 2 3 4 5; do
    f=$ARCHIVE.share-$i-of-5.p7m
    expect_equal "share $i: file $(basename "$f") mode 0600" 600 "$(stat -c %a "$f" 2>/dev/null)"
done
expect_status 4 "a second split refuses to replace the share files" \
    "$TOOL" split "$ARCHIVE" 3 "$T/alice.pem" "$T/bob.pem" "$T/carol.pem" "$T/dave.pem" "$T/erin.pem"
head -c 100 /dev/urandom >"$T/other.p12"
expect_status 2 "the same custodian twice is refused" \
    "$TOOL" split "$T/other.p12" 2 "$T/alice.pem" "$T/alice.pem"
expect_grep "naming the certificate" 'CN=alice Custodian,O=EXAMPLE.TEST.* is given twice' "$ERR"
expect_status 2 "M > N is refused" "$TOOL" split "$T/other.p12" 3 "$T/alice.pem" "$T/bob.pem"
check "a refused split writes no share file" test ! -e "$T/other.p12.share-1-of-2.p7m"

# ---- OpenSSL opens each share with the custodian's key ----
i=0
for name in "${NAMES[@]}"; do
    i=$((i + 1))
    f=$ARCHIVE.share-$i-of-5.p7m
    fp=$(openssl x509 -in "$T/$name.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
    expect_status 0 "openssl cms -decrypt opens share $i ($name)" \
        openssl cms -decrypt -inform DER -in "$f" -recip "$T/$name.pem" -inkey "$T/$name.key"
    cp "$OUT" "$T/record-$i.txt"
    expect_grep "share $i: the record states index $i of a 3-of-5 split" \
        "^index: $i\$" "$T/record-$i.txt"
    expect_grep "share $i: threshold and count" '^threshold: 3$' "$T/record-$i.txt"
    expect_grep "share $i: the archive's SHA-256" "^archive-sha256: $SHA\$" "$T/record-$i.txt"
    expect_grep "share $i: the custodian certificate's fingerprint" "^custodian-sha256: $fp\$" \
        "$T/record-$i.txt"
    expect_grep "share $i: the share line" '^share: CBK1(-[A-Z2-7]{6}){15}$' "$T/record-$i.txt"
done
expect_grep "an RSA share uses RSAES-OAEP" 'rsaesOaep' \
    <(openssl asn1parse -inform DER -in "$ARCHIVE.share-1-of-5.p7m")
expect_grep "an EC share uses dhSinglePass-stdDH-sha256kdf-scheme" \
    'dhSinglePass-stdDH-sha256kdf-scheme' <(openssl asn1parse -inform DER -in "$ARCHIVE.share-2-of-5.p7m")
expect_grep "content AES-256-CBC" 'aes-256-cbc' \
    <(openssl asn1parse -inform DER -in "$ARCHIVE.share-2-of-5.p7m")
expect_status 4 "OpenSSL with another custodian's key does not open a share" \
    openssl cms -decrypt -inform DER -in "$ARCHIVE.share-1-of-5.p7m" -recip "$T/carol.pem" \
    -inkey "$T/carol.key"

# ---- share-open with each custodian's own database ----
i=0
for name in "${NAMES[@]}"; do
    i=$((i + 1))
    f=$ARCHIVE.share-$i-of-5.p7m
    expect_status 0 "share-open share $i with $name's database" \
        "$CABACK" share-open "$f" -d "$T/$name" -f "$T/$name.pass" --log "$LOG"
    expect_equal "share $i: share-open prints the share OpenSSL found" \
        "$(sed -n 's/^share: //p' "$T/record-$i.txt")" "$(grep '^CBK1-' "$OUT")"
    expect_grep "share $i: share-open says which share it is (on standard error)" \
        "Share $i of 5 \(any 3 " "$ERR"
    grep '^CBK1-' "$OUT" >"$T/typed-$i.txt"
done
expect_status 0 "share-open -o writes the share to a file" \
    "$CABACK" share-open "$ARCHIVE.share-2-of-5.p7m" -d "$T/bob" -f "$T/bob.pass" \
    -o "$T/share-2.txt" --log "$LOG"
expect_equal "the -o file has mode 0600" 600 "$(stat -c %a "$T/share-2.txt")"
expect_equal "the -o file holds the share and a line end" "$(cat "$T/typed-2.txt")" "$(cat "$T/share-2.txt")"
expect_no_grep "with -o, the share is not printed" 'CBK1-' "$OUT"
cp "$T/share-2.txt" "$T/share-2.before"
expect_status 4 "an existing -o file is refused" \
    "$CABACK" share-open "$ARCHIVE.share-1-of-5.p7m" -d "$T/alice" -f "$T/alice.pass" \
    -o "$T/share-2.txt" --log "$LOG"
check "the refusal left the -o file unchanged" cmp -s "$T/share-2.before" "$T/share-2.txt"
expect_status 0 "--force replaces it" \
    "$CABACK" share-open "$ARCHIVE.share-1-of-5.p7m" -d "$T/alice" -f "$T/alice.pass" \
    -o "$T/share-2.txt" --force --log "$LOG"
expect_equal "and it now holds share 1" "$(cat "$T/typed-1.txt")" "$(cat "$T/share-2.txt")"
expect_equal "still mode 0600" 600 "$(stat -c %a "$T/share-2.txt")"

# ---- refusals ----
expect_status 1 "a wrong custodian's database does not open a share" \
    "$CABACK" share-open "$ARCHIVE.share-1-of-5.p7m" -d "$T/bob" -f "$T/bob.pass" --log "$LOG"
expect_grep "the message names the database and the certificate the share is for" \
    "NSS database $T/bob .*no key opens .*share-1-of-5.p7m.*issued by \"CN=alice Custodian,O=EXAMPLE.TEST\"" "$ERR"
printf 'wrong\n' >"$T/wrong.pass"
expect_status 3 "a wrong database password" \
    "$CABACK" share-open "$ARCHIVE.share-1-of-5.p7m" -d "$T/alice" -f "$T/wrong.pass" --log "$LOG"
expect_status 2 "-d is required" "$CABACK" share-open "$ARCHIVE.share-1-of-5.p7m"
expect_status 2 "--json needs -o" \
    "$CABACK" share-open "$ARCHIVE.share-1-of-5.p7m" -d "$T/alice" -f "$T/alice.pass" --json
expect_status 0 "--json with -o" \
    "$CABACK" share-open "$ARCHIVE.share-1-of-5.p7m" -d "$T/alice" -f "$T/alice.pass" \
    -o "$T/json-share.txt" --json --log "$LOG"
if "$PYTHON3" -c 'import jsonschema' 2>/dev/null; then
    check "--json: one object of caback's schema: index, threshold, count, archive SHA-256" \
        "$PYTHON3" "$CABACK_SRCDIR/tests/json-check.py" "$CABACK_SRCDIR/doc/caback-json.schema.json" \
        "$OUT" 0 "j['verb'] == 'share-open' and j['index'] == 1 and j['threshold'] == 3 and \
j['count'] == 5 and j['archive_sha256'] == '$SHA' and j['output'] == '$T/json-share.txt'"
else
    skip "--json: one object of caback's schema" "python3-jsonschema not installed"
fi
expect_no_grep "--json: no share in the JSON output" 'CBK1-' "$OUT"
ln -s "$ARCHIVE.share-1-of-5.p7m" "$T/link.p7m"
expect_status 1 "a symbolic link is not followed" \
    "$CABACK" share-open "$T/link.p7m" -d "$T/alice" -f "$T/alice.pass" --log "$LOG"
expect_grep "and says so" 'symbolic link' "$ERR"
# damaged: the last byte of the ciphertext, and a truncated file
cp "$ARCHIVE.share-1-of-5.p7m" "$T/damaged.p7m"
size=$(stat -c %s "$T/damaged.p7m")
printf '\001' | dd of="$T/damaged.p7m" bs=1 seek=$((size - 20)) conv=notrunc 2>/dev/null
expect_status 3 "a damaged share is refused" \
    "$CABACK" share-open "$T/damaged.p7m" -d "$T/alice" -f "$T/alice.pass" --log "$LOG"
expect_grep "naming the file" 'damaged.p7m' "$ERR"
head -c 300 "$ARCHIVE.share-1-of-5.p7m" >"$T/truncated.p7m"
expect_status 3 "a truncated share is refused" \
    "$CABACK" share-open "$T/truncated.p7m" -d "$T/alice" -f "$T/alice.pass" --log "$LOG"
# a CMS file that holds something else (OpenSSL, RSA-OAEP SHA-256)
printf 'not a share\n' >"$T/plain.txt"
openssl cms -encrypt -binary -aes256 -in "$T/plain.txt" -outform DER -out "$T/foreign.p7m" \
    -recip "$T/alice.pem" -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 \
    -keyopt rsa_mgf1_md:sha256 2>/dev/null
expect_status 3 "an envelope that holds no share record is refused" \
    "$CABACK" share-open "$T/foreign.p7m" -d "$T/alice" -f "$T/alice.pass" --log "$LOG"
expect_grep "as not a share record" 'not a caback share record' "$ERR"

# ---- OpenSSL's envelopes of a record: caback reads them (OAEP, PKCS#1 v1.5, ECDH SHA-1 KDF) ----
# The record names its custodian certificate, so it is re-encrypted to the same custodian.
openssl cms -encrypt -binary -aes256 -in "$T/record-1.txt" -outform DER -out "$T/ossl-oaep.p7m" \
    -recip "$T/alice.pem" -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 \
    -keyopt rsa_mgf1_md:sha256 2>/dev/null
expect_status 0 "share-open reads OpenSSL's RSA-OAEP envelope" \
    "$CABACK" share-open "$T/ossl-oaep.p7m" -d "$T/alice" -f "$T/alice.pass" --log "$LOG"
expect_equal "with the same share" "$(cat "$T/typed-1.txt")" "$(grep '^CBK1-' "$OUT")"
openssl cms -encrypt -binary -aes128 -in "$T/record-1.txt" -outform DER -out "$T/ossl-v15.p7m" \
    "$T/alice.pem" 2>/dev/null
expect_status 0 "share-open reads OpenSSL's PKCS#1 v1.5 / AES-128 envelope" \
    "$CABACK" share-open "$T/ossl-v15.p7m" -d "$T/alice" -f "$T/alice.pass" --log "$LOG"
openssl cms -encrypt -binary -aes256 -in "$T/record-2.txt" -outform DER -out "$T/ossl-ec.p7m" \
    "$T/bob.pem" 2>/dev/null
expect_status 0 "share-open reads OpenSSL's ECDH envelope (its default SHA-1 KDF)" \
    "$CABACK" share-open "$T/ossl-ec.p7m" -d "$T/bob" -f "$T/bob.pass" --log "$LOG"
expect_equal "with the same share" "$(cat "$T/typed-2.txt")" "$(grep '^CBK1-' "$OUT")"
openssl cms -encrypt -binary -aes256 -in "$T/record-4.txt" -outform DER -out "$T/ossl-ec384.p7m" \
    -recip "$T/dave.pem" -keyopt ecdh_kdf_md:sha384 2>/dev/null
expect_status 0 "share-open reads OpenSSL's ECDH envelope on P-384 with a SHA-384 KDF" \
    "$CABACK" share-open "$T/ossl-ec384.p7m" -d "$T/dave" -f "$T/dave.pass" --log "$LOG"
# a record re-encrypted to another custodian than the one it names
openssl cms -encrypt -binary -aes256 -in "$T/record-1.txt" -outform DER -out "$T/moved.p7m" \
    "$T/carol.pem" 2>/dev/null
expect_status 3 "a record encrypted to another custodian than it states is refused" \
    "$CABACK" share-open "$T/moved.p7m" -d "$T/carol" -f "$T/carol.pass" --log "$LOG"
expect_grep "saying so" 'states another custodian certificate' "$ERR"

# ---- a custodian's key on a token (SoftHSM2 as the smart card) ----
if find_softhsm_lib && command -v softhsm2-util >/dev/null 2>&1 && command -v modutil >/dev/null 2>&1; then
    CARD=$T/card-db
    make_nssdb "$CARD"
    make_softhsm_token card 'card pin 1'
    modutil -dbdir "sql:$CARD" -add softhsm -libfile "$SOFTHSM_LIB" -force >/dev/null 2>&1
    printf 'card pin 1\n' >"$T/card.pin"
    printf 'internal=%s\nhardware-card=card pin 1\n' "$FIXTURE_DB_PASSWORD" >"$T/card.conf"
    pk12util -i "$T/alice.p12" -d "sql:$CARD" -h card -k "$T/card.pin" -w "$T/alice.p12pass" \
        >/dev/null 2>&1
    check "fixture: alice's key and certificate are on the token" \
        grep -q 'card:alice' <(certutil -L -d "sql:$CARD" -h card -f "$T/card.pin" 2>/dev/null)
    # SoftHSM 2.6 does RSA-OAEP with SHA-1 only: OpenSSL's default OAEP envelope of the record
    openssl cms -encrypt -binary -aes256 -in "$T/record-1.txt" -outform DER \
        -out "$T/card-oaep-sha1.p7m" -recip "$T/alice.pem" -keyopt rsa_padding_mode:oaep 2>/dev/null
    expect_status 0 "share-open --token finds the key on the token and opens the share" \
        "$CABACK" share-open "$T/card-oaep-sha1.p7m" -d "$CARD" --token card -f "$T/card.conf" \
        --log "$LOG"
    expect_equal "with the same share" "$(cat "$T/typed-1.txt")" "$(grep '^CBK1-' "$OUT")"
    expect_status 1 "the database's own token has no such key" \
        "$CABACK" share-open "$T/card-oaep-sha1.p7m" -d "$CARD" -f "$T/card.conf" --log "$LOG"
    # caback's own share (OAEP with SHA-256): opened where the token can, else a clear refusal
    run "$CABACK" share-open "$ARCHIVE.share-1-of-5.p7m" -d "$CARD" --token card \
        -f "$T/card.conf" --log "$LOG"
    if [ "$STATUS" -eq 0 ] && [ "$(grep '^CBK1-' "$OUT")" = "$(cat "$T/typed-1.txt")" ]; then
        ok "the token opens caback's RSA-OAEP SHA-256 share"
    elif [ "$STATUS" -eq 1 ] && grep -q 'token "card" cannot decrypt .* RSA-OAEP (SHA-256' "$ERR"; then
        ok "a token without RSA-OAEP SHA-256 is named as the reason (exit 1)"
    else
        not_ok "share-open on the token: exit $STATUS"
        diag "$(cat "$ERR")"
    fi
else
    skip "share-open with a key on a token" "SoftHSM2 or modutil not installed"
fi

# ---- the shares rebuild the password; fewer, mistyped and foreign shares do not ----
expect_status 0 "three text shares rebuild the password" \
    "$TOOL" combine "$ARCHIVE" "$T/typed-1.txt" "$T/typed-3.txt" "$T/typed-5.txt"
expect_equal "the same password the split made" "password-sha256: $PASSWORD_SHA" "$(cat "$OUT")"
expect_status 0 "text and .p7m shares mixed (the .p7m opened with its custodian's database)" \
    "$TOOL" combine "$ARCHIVE" -d "$T/dave" -f "$T/dave.pass" "$T/typed-2.txt" \
    "$ARCHIVE.share-4-of-5.p7m" "$T/typed-5.txt"
expect_equal "the same password" "password-sha256: $PASSWORD_SHA" "$(cat "$OUT")"
expect_status 3 "two shares are too few" "$TOOL" combine "$ARCHIVE" "$T/typed-1.txt" "$T/typed-2.txt"
expect_grep "\"2 of 3 shares given\"" '2 of 3 shares given' "$ERR"
sed 's/^CBK1-\(.\)/CBK1-X/' "$T/typed-3.txt" >"$T/mistyped.txt"
cmp -s "$T/mistyped.txt" "$T/typed-3.txt" && sed -i 's/^CBK1-X/CBK1-Y/' "$T/mistyped.txt"
expect_status 3 "a mistyped share is refused" \
    "$TOOL" combine "$ARCHIVE" "$T/typed-1.txt" "$T/mistyped.txt" "$T/typed-5.txt"
expect_grep "naming its file" 'mistyped.txt is mistyped' "$ERR"
expect_status 3 "a duplicate share is refused" \
    "$TOOL" combine "$ARCHIVE" "$T/typed-1.txt" "$T/typed-1.txt" "$T/typed-5.txt"
expect_grep "naming its index" 'share 1 is given twice' "$ERR"
expect_status 3 "the shares of this archive do not open another" \
    "$TOOL" combine "$T/other.p12" "$T/typed-1.txt" "$T/typed-3.txt" "$T/typed-5.txt"
expect_grep "naming the share" 'share 1 \(.*typed-1.txt\) is for another archive' "$ERR"

# ---- no copy of the share in share-open's memory once it is done ----
# As tests/test-secrets-memory.sh does for passwords: caback runs under gdb, stops in exit(), and
# its memory (the core's PT_LOAD segments) is searched for the share's text and its 32 bytes.
# A core taken while the share is in hand must find it (the search works).
share_in_core() {
    "$PYTHON3" - "$1" "$2" <<'PY'
import base64, os, sys
sys.path.insert(0, os.path.join(os.environ["CABACK_SRCDIR"], "tests"))
from core_memory import process_memory, tail_of
core = process_memory(sys.argv[1])
text = open(sys.argv[2]).read().strip()
body = text[len("CBK1-"):].replace("-", "")
raw = base64.b32decode(body + "=" * (-len(body) % 8))
value = raw[20:52]
# a copy freed without wiping loses its first 16 bytes to malloc's pointers: the tails count too
n = (core.count(text.encode()) + core.count(tail_of(text, 40).encode())
     + core.count(tail_of(value, 16)))
print(n)
PY
}
if grep -qa __asan_init "$CABACK" || ! command -v gdb >/dev/null 2>&1; then
    skip "share-open leaves no copy of the share in memory" "needs gdb and a build without AddressSanitizer"
else
    rm -f "$T/mem-share.txt"
    if core_at_breakpoint "$T/held.core" caback_share_write_text share-open \
        "$ARCHIVE.share-3-of-5.p7m" -d "$T/carol" -f "$T/carol.pass" -o "$T/mem-share.txt" \
        --log "$LOG"; then
        held=$(share_in_core "$T/held.core" "$T/typed-3.txt")
        check "the search finds the share in a core taken while share-open holds it ($held)" \
            test "$held" -gt 0
    else
        not_ok "a core while share-open runs"; diag "$(tail -n 15 "$T/held.core.gdb")"
    fi
    rm -f "$T/held.core" "$T/mem-share.txt"
    for how in stdout file; do
        if [ $how = file ]; then out=(-o "$T/mem-share.txt"); else out=(); fi
        rm -f "$T/mem-share.txt"
        if core_at_breakpoint "$T/exit.core" exit share-open "$ARCHIVE.share-3-of-5.p7m" \
            -d "$T/carol" -f "$T/carol.pass" ${out[@]+"${out[@]}"} --log "$LOG"; then
            left=$(share_in_core "$T/exit.core" "$T/typed-3.txt")
            expect_equal "share-open (share to $how): no copy of the share in memory at exit" 0 "$left"
        else
            not_ok "share-open (share to $how): no core at exit()"
            diag "$(tail -n 15 "$T/exit.core.gdb")"
        fi
        rm -f "$T/exit.core"
    done
fi

# ---- nothing secret in the run log ----
check "share-open wrote run records" test -s "$LOG"
: >"$T/secrets.txt"
for i in 1 2 3 4 5; do sed 's/^CBK1-//' "$T/typed-$i.txt" >>"$T/secrets.txt"; done
if grep -qFf "$T/secrets.txt" "$LOG" "$LOG.jsonl" 2>/dev/null; then
    not_ok "no share in the run log"
else
    ok "no share in the run log"
fi
expect_no_grep "no share text at all in the run log" 'CBK1-' "$LOG"

done_testing
