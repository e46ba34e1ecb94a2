#!/bin/bash
# Signatures judged at the verifier's time and strength (issue 22 §1-2): signers checked now, not
# at the signing time they claim (--at-signing-time only on request, and then said so); signing
# times in the future refused; weak signer keys and SHA-1 in the chain refused by verify-signature,
# sign and restore; several SignerInfos each judged; a .sig with trailing bytes, not a regular file
# or over 1 MiB refused without blocking. Signatures come from tests/cms-maker.py, which states any
# signing time and uses keys the real tools would refuse.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util openssl "$PYTHON3"
"$PYTHON3" -c 'import cryptography' 2>/dev/null || {
    echo "1..0 # SKIP python3 cryptography is not installed"; exit 0; }

T=$TEST_TMP
M=$T/m
mkdir -p "$M"
MAKER="$PYTHON3 $CABACK_SRCDIR/tests/cms-maker.py"
DAY=86400
cert() { $MAKER cert "$M" "$@" 2>/dev/null || echo "cms-maker cert $* failed" >&2; }
sig() { $MAKER sign "$FILE" "$@" 2>/dev/null || echo "cms-maker sign $* failed" >&2; }
jcheck() { local d=$1; shift; cp "$OUT" "$T/out.json"; json_checks "$d" "$T/out.json" "$@"; }

# The CA (valid for years around now) and its signers.
cert root --ca --days-before 1000 --days-after 3650
cert good --issuer root
cert expired --issuer root --days-before 400 --days-after -300
cert notyet --issuer root --days-before -365 --days-after 730
cert weak1024 --issuer root --key rsa:1024
cert exp3 --issuer root --key rsa:2048:3
cert dsasig --issuer root --key dsa:2048
cert ecsig --issuer root --key ec:p256
cert inter1 --ca --issuer root --hash sha1
cert via1 --issuer inter1
cert inter256 --ca --issuer root
cert via256 --issuer inter256
if openssl genrsa -out "$M/r512.pem" 512 2>/dev/null; then
    cert weak512 --issuer root --key "file:$M/r512.pem"
fi
ROOT=$M/root.pem
FILE=$T/ca-backup.p12
head -c 50000 /dev/urandom >"$FILE"
SHA=$(sha256sum "$FILE" | cut -d' ' -f1)
SUBJ() { echo "O=CMS MAKER.TEST,CN=$1"; }

# ---- §1: the verifier's time ----
sig "$T/good.sig" --signer "$M/good"
expect_status 0 "a signer valid now, signed now" "$CABACK" verify-signature "$FILE" "$T/good.sig" --ca "$ROOT"
expect_grep "text says it was checked now" "checked at: +20[0-9-]+T[0-9:]+Z \(now\)" "$OUT"
expect_status 0 "the same, --json" "$CABACK" verify-signature "$FILE" "$T/good.sig" --ca "$ROOT" --json
jcheck "checked now" 'r["valid"] is True' 'r["at_signing_time"] is False' \
    'r["signers"][0]["checked_at_signing_time"] is False' \
    'r["signers"][0]["checked_at"] is not None' 'r["signers"][0]["future_signing_time"] is False' \
    'r["signers"][0]["weak_key"] is None' 'r["signers"][0]["weak_certificate"] is None'

# An expired signer with a back-dated signing time: accepted before, refused now.
sig "$T/backdated.sig" --signer "$M/expired" --time-offset $((-350 * DAY))
expect_status 1 "an expired signer with a back-dated signing time is refused" \
    "$CABACK" verify-signature "$FILE" "$T/backdated.sig" --ca "$ROOT"
expect_grep "says it is expired now" "not trusted .* at [0-9T:-]+Z \(now\): SEC_ERROR_EXPIRED_CERTIFICATE" "$ERR"
expect_grep "and points to --at-signing-time" "\-\-at-signing-time" "$ERR"
expect_status 1 "the same, --json" "$CABACK" verify-signature "$FILE" "$T/backdated.sig" --ca "$ROOT" --json
jcheck "expired now" 'r["valid"] is False' 'r["signers"][0]["signature_ok"] is True' \
    'r["signers"][0]["trusted_for"] is None' 'r["signers"][0]["checked_at_signing_time"] is False' \
    '"EXPIRED" in r["signers"][0]["problem"]'
expect_status 0 "--at-signing-time accepts it, checked when it was signed" \
    "$CABACK" verify-signature "$FILE" "$T/backdated.sig" --ca "$ROOT" --at-signing-time
expect_grep "text says so with the signing time" \
    "checked at: +([0-9T:-]+Z) \(the signing time, --at-signing-time" "$OUT"
SIGNED_AT=$(sed -n 's/.*signing time: *\([0-9T:-]*Z\).*/\1/p' "$OUT")
expect_grep "the time checked at is the signing time" "checked at: +$SIGNED_AT " "$OUT"
expect_status 0 "--at-signing-time --json" \
    "$CABACK" verify-signature "$FILE" "$T/backdated.sig" --ca "$ROOT" --at-signing-time --json
jcheck "checked at the signing time" 'r["valid"] is True and r["at_signing_time"] is True' \
    'r["signers"][0]["checked_at_signing_time"] is True' \
    'r["signers"][0]["checked_at"] == r["signers"][0]["signing_time"]'

# A signer valid only from next year, with a signing time in the future.
sig "$T/future.sig" --signer "$M/notyet" --time-offset $((400 * DAY))
expect_status 1 "a future signing time is refused" \
    "$CABACK" verify-signature "$FILE" "$T/future.sig" --ca "$ROOT"
expect_grep "says it is later than now" "states the signing time .* later than now" "$ERR"
expect_status 1 "also with --at-signing-time" \
    "$CABACK" verify-signature "$FILE" "$T/future.sig" --ca "$ROOT" --at-signing-time --json
jcheck "future time" 'r["valid"] is False' 'r["signers"][0]["future_signing_time"] is True'
sig "$T/ahead10.sig" --signer "$M/good" --time-offset 600
expect_status 1 "a signing time 10 minutes ahead is refused" \
    "$CABACK" verify-signature "$FILE" "$T/ahead10.sig" --ca "$ROOT"
expect_grep "naming the skew allowed" "more than 5 minutes" "$ERR"
sig "$T/ahead2.sig" --signer "$M/good" --time-offset 120
expect_status 0 "2 minutes ahead is clock skew, accepted" \
    "$CABACK" verify-signature "$FILE" "$T/ahead2.sig" --ca "$ROOT"
sig "$T/notime.sig" --signer "$M/good" --time none
expect_status 0 "no signing time: checked now, also with --at-signing-time" \
    "$CABACK" verify-signature "$FILE" "$T/notime.sig" --ca "$ROOT" --at-signing-time --json
jcheck "no signing time" 'r["signers"][0]["signing_time"] is None' \
    'r["signers"][0]["checked_at_signing_time"] is False'
sig "$T/expired-notime.sig" --signer "$M/expired" --time none
expect_status 1 "an expired signer without a signing time is refused" \
    "$CABACK" verify-signature "$FILE" "$T/expired-notime.sig" --ca "$ROOT"

# ---- §2: strength ----
weak_case() { # NAME SIGNER JSON-NAME MESSAGE
    sig "$T/$1.sig" --signer "$M/$2"
    expect_status 1 "$1: refused" "$CABACK" verify-signature "$FILE" "$T/$1.sig" --ca "$ROOT"
    expect_grep "$1: the reason" "the signer $(SUBJ "$2") has a weak key: $4" "$ERR"
    expect_status 1 "$1: --json" "$CABACK" verify-signature "$FILE" "$T/$1.sig" --ca "$ROOT" --json
    jcheck "$1" "r['signers'][0]['weak_key'] == '$3'" 'r["valid"] is False'
}
weak_case rsa1024 weak1024 rsa-size "RSA 1024-bit key"
if [ -e "$M/weak512.pem" ]; then
    weak_case rsa512 weak512 rsa-size "RSA 512-bit key"
else
    for i in 1 2 3 4 5; do skip "RSA-512 case $i" "openssl cannot make an RSA-512 key"; done
fi
weak_case exponent3 exp3 rsa-exponent "RSA public exponent 3"
weak_case dsa dsasig dsa "DSA key"
sig "$T/ec.sig" --signer "$M/ecsig"
expect_status 0 "an EC P-256 signer is accepted" "$CABACK" verify-signature "$FILE" "$T/ec.sig" --ca "$ROOT"

sig "$T/sha1chain.sig" --signer "$M/via1" --chain "$M/inter1"
expect_status 1 "SHA-1 in the signer's chain is refused" \
    "$CABACK" verify-signature "$FILE" "$T/sha1chain.sig" --ca "$ROOT"
expect_grep "naming the certificate and the digest" \
    "the certificate $(SUBJ inter1) in the signer's chain is signed with .*SHA-1" "$ERR"
expect_status 1 "SHA-1 chain --json" "$CABACK" verify-signature "$FILE" "$T/sha1chain.sig" --ca "$ROOT" --json
jcheck "SHA-1 chain" "r['signers'][0]['weak_certificate'] == '$(SUBJ inter1)'"
sig "$T/chain256.sig" --signer "$M/via256" --chain "$M/inter256"
expect_status 0 "the same chain with SHA-256 is accepted" \
    "$CABACK" verify-signature "$FILE" "$T/chain256.sig" --ca "$ROOT"

# Several SignerInfos: each is judged; one weak signer fails the whole signature.
sig "$T/two.sig" --signer "$M/good" --signer "$M/ecsig"
expect_status 0 "two good signers" "$CABACK" verify-signature "$FILE" "$T/two.sig" --ca "$ROOT" --json
jcheck "two signers" 'len(r["signers"]) == 2' 'all(s["problem"] is None for s in r["signers"])'
sig "$T/goodweak.sig" --signer "$M/good" --signer "$M/weak1024"
expect_status 1 "a good and a weak signer: refused" \
    "$CABACK" verify-signature "$FILE" "$T/goodweak.sig" --ca "$ROOT" --json
jcheck "good and weak" 'r["signers"][0]["problem"] is None' 'r["signers"][1]["weak_key"] == "rsa-size"' \
    '"weak key" in r["error"]["message"]'

# ---- §2: the .sig file itself ----
sig "$T/trailing.sig" --signer "$M/good" --trailing 7
expect_status 1 "a .sig with bytes after its DER is refused" \
    "$CABACK" verify-signature "$FILE" "$T/trailing.sig" --ca "$ROOT"
expect_grep "saying how many" "has 7 byte\(s\) after its encoding" "$ERR"
expect_status 1 "trailing bytes --json" "$CABACK" verify-signature "$FILE" "$T/trailing.sig" --ca "$ROOT" --json
jcheck "trailing" 'r["trailing_bytes"] == 7' 'r["signature_refused"] is True' 'r["valid"] is False'
cat "$T/good.sig" "$T/good.sig" >"$T/twice.sig"
expect_status 1 "a signature followed by a second copy is refused" \
    "$CABACK" verify-signature "$FILE" "$T/twice.sig" --ca "$ROOT"
mkfifo "$T/fifo.sig"
expect_status 1 "a FIFO .sig is refused without blocking" \
    timeout 60 "$CABACK" verify-signature "$FILE" "$T/fifo.sig" --ca "$ROOT"
expect_grep "it says it is a FIFO" "it is a FIFO; a signature is read only from a regular file" "$ERR"
expect_status 1 "/dev/zero as the .sig is refused without reading it" \
    timeout 60 "$CABACK" verify-signature "$FILE" /dev/zero --ca "$ROOT" --json
expect_grep "a character device" "it is a character device" "$ERR"
jcheck "device" 'r["signature_refused"] is True' 'r["signers"] == []'
ln -s "$T/good.sig" "$T/link.sig"
expect_status 1 "a symbolic link as the .sig is not followed" \
    "$CABACK" verify-signature "$FILE" "$T/link.sig" --ca "$ROOT"
expect_grep "it says so" "symbolic link" "$ERR"
cp "$T/good.sig" "$T/big.sig"
truncate -s 2M "$T/big.sig"
expect_status 1 "a 2 MiB .sig is refused by its size" \
    "$CABACK" verify-signature "$FILE" "$T/big.sig" --ca "$ROOT"
expect_grep "naming the cap" "more than a signature can be \(at most 1048576 bytes" "$ERR"

# ---- §2: caback sign refuses weak signer keys and SHA-1 chains ----
DB=$T/signdb
make_nssdb "$DB"
certutil -A -d "sql:$DB" -n root -t C,C,C -i "$ROOT"
import_signer() { # NAME [CHAIN...]
    local name=$1; shift
    cat "$M/$name.pem" "$@" >"$T/$name.chain.pem"
    openssl pkcs12 -export -inkey "$M/$name.key" -in "$T/$name.chain.pem" -name "$name" \
        -passout pass:x -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256 \
        -out "$T/$name.p12" 2>/dev/null
    pk12util -i "$T/$name.p12" -d "sql:$DB" -k "$DB.pass" -W x >/dev/null 2>&1
}
import_signer good
import_signer weak1024
import_signer via1 "$M/inter1.pem"
expect_status 0 "sign with a strong signer" \
    "$CABACK" sign "$FILE" --signer good -d "$DB" -f "$DB.pass" -o "$T/s-good.sig"
expect_status 1 "sign refuses an RSA-1024 signer" \
    "$CABACK" sign "$FILE" --signer weak1024 -d "$DB" -f "$DB.pass" -o "$T/s-weak.sig"
expect_grep "with the reason" "certificate \"weak1024\" cannot sign: .*weak key: RSA 1024-bit key" "$ERR"
check "no signature written" test ! -e "$T/s-weak.sig"
expect_status 1 "sign refuses a signer whose chain has SHA-1" \
    "$CABACK" sign "$FILE" --signer via1 -d "$DB" -f "$DB.pass" -o "$T/s-via1.sig"
expect_grep "naming the certificate" "$(SUBJ inter1) in the signer's chain is signed with" "$ERR"
check "no signature written" test ! -e "$T/s-via1.sig"

# ---- restore: the same checks, who signed and when, --at-signing-time in the log ----
CA=$T/ca
make_dogtag_ca "$CA"
PW=$T/p12.pass
printf 'Restore strength 5\n' >"$PW"
ARCHIVE=$T/backup.p12
run "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$ARCHIVE" -w "$PW" --iterations 2000 -n "$DOGTAG_CA_NICK"
expect_equal "a real backup to restore" 0 "$STATUS"
TARGET=$T/target
make_nssdb "$TARGET"
LOG=$T/runs.log
RESTORE=(restore -i "$ARCHIVE" -w "$PW" -d "$TARGET" -f "$TARGET.pass" --signature-ca "$ROOT"
    --dry-run --log "$LOG")
restore() { "$CABACK" "${RESTORE[@]}" "$@"; }
FILE=$ARCHIVE
sig "$ARCHIVE.sig" --signer "$M/good"
expect_status 0 "restore with a good signature" restore
expect_grep "says who signed and when" \
    "Signature .* is valid: $(SUBJ good) signed .*backup.p12 at 20[0-9-]+T[0-9:]+Z \(SHA-256" "$OUT"
expect_status 0 "restore --json" restore --json
jcheck "restore signature" 'r["signature_checked"] is True' 'r["signing_time"] is not None' \
    'r["signature_checked_at"] is not None' 'r["signature_at_signing_time"] is False'
sig "$ARCHIVE.sig" --signer "$M/expired" --time-offset $((-350 * DAY))
expect_status 1 "restore refuses an expired signer with a back-dated time" restore
expect_grep "naming the expiry" "EXPIRED_CERTIFICATE" "$ERR"
expect_status 0 "restore --at-signing-time accepts it" restore --at-signing-time
expect_grep "says who signed and when" "$(SUBJ expired) signed .* at [0-9T:-]+Z" "$OUT"
expect_grep "and warns it was checked at the signing time" \
    "checked at the signing time [0-9T:-]+Z \(--at-signing-time\), not now" "$ERR"
grep '"verb":"restore"' "$LOG.jsonl" | tail -1 >"$T/record.json"
json_checks "the log says so" "$T/record.json" \
    'any("--at-signing-time" in w and "signing time" in w for w in r["warnings"])'
expect_status 0 "restore --at-signing-time --json" restore --at-signing-time --json
jcheck "restore at the signing time" 'r["signature_at_signing_time"] is True' \
    'r["signature_checked_at"] == r["signing_time"]'
sig "$ARCHIVE.sig" --signer "$M/weak1024"
expect_status 1 "restore refuses a weak signer key" restore
expect_grep "with the reason" "weak key: RSA 1024-bit key" "$ERR"
sig "$ARCHIVE.sig" --signer "$M/good" --time-offset $((30 * DAY))
expect_status 1 "restore refuses a future signing time" restore
rm -f "$ARCHIVE.sig"
mkfifo "$ARCHIVE.sig"
expect_status 1 "restore refuses a FIFO .sig without blocking" timeout 60 "$CABACK" "${RESTORE[@]}"
expect_grep "it is a FIFO" "FIFO" "$ERR"
rm -f "$ARCHIVE.sig"
expect_status 2 "--at-signing-time with --no-signature-check is a usage error" \
    "$CABACK" restore -i "$ARCHIVE" -w "$PW" -d "$TARGET" -f "$TARGET.pass" --dry-run \
    --no-signature-check --at-signing-time

done_testing
