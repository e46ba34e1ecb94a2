#!/bin/bash
# restore and restore automatic read the file once (issue 22 §3): the recorded SHA-256, the
# signature check and the restore judge the same bytes, and the output and the log name the
# SHA-256 of the bytes actually restored. The file is swapped while caback waits for its
# PKCS#12 password on a FIFO: the test opens the FIFO for writing, which returns only once caback
# has opened it for reading (so the swap comes after caback chose the file), swaps the file and
# its signature, then writes the password. No timing is involved.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util "$PYTHON3"

T=$TEST_TMP
CA=$T/ca
make_dogtag_ca "$CA"
issue_cert "$CA" "Backup Signer" "CN=Backup Signer,O=EXAMPLE.TEST" u,u,u \
    --keyUsage digitalSignature,nonRepudiation --extKeyUsage emailProtection
certutil -L -d "sql:$CA" -n "$DOGTAG_CA_NICK" -a >"$T/ca.pem"
P12PW='One read p12 pass 7'
printf '%s\n' "$P12PW" >"$T/p12.pass"
LOG=$T/runs.log

# B (the subsystem certificate and key) first, then A (the CA's), which is recorded as newest.
B=$T/b.p12
A=$T/a.p12
expect_status 0 "backup B" "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$B" -w "$T/p12.pass" \
    --iterations 2000 -n "subsystemCert cert-pki-ca"
expect_status 0 "backup A, recorded as the newest" "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$A" \
    -w "$T/p12.pass" --iterations 2000 -n "$DOGTAG_CA_NICK"
for f in "$A" "$B"; do
    run "$CABACK" sign "$f" --signer "Backup Signer" -d "$CA" -f "$CA.pass"
    expect_equal "sign $(basename "$f")" 0 "$STATUS"
done
SHA_A=$(sha256sum "$A" | cut -d' ' -f1)
SHA_B=$(sha256sum "$B" | cut -d' ' -f1)
cp "$A" "$T/a.orig"
cp "$A.sig" "$T/a.orig.sig"
put_back_a() { cp "$T/a.orig" "$A"; cp "$T/a.orig.sig" "$A.sig"; }

# db_state DIR: certificates with trust, and key IDs.
db_state() {
    { certutil -L -d "sql:$1" | tail -n +5 | sort
      certutil -K -d "sql:$1" -f "$1.pass" 2>/dev/null | sed 's/^<[ 0-9]*>//' | sort; } 2>&1
}
last_record() { grep '"verb":"restore"' "$LOG.jsonl" | tail -1 >"$T/record.json"; }

# swapped_run FIFO CABACK-ARGS...: runs caback with its -w FIFO in the background; once caback has
# opened the FIFO, B and its signature are copied over A and the password is written. $STATUS,
# $OUT, $ERR as run sets them. A writer that is never met gives up after 120 s (a failure, not a
# hang).
swapped_run() {
    local fifo=$1; shift
    rm -f "$fifo"
    mkfifo "$fifo"
    STATUS=0
    "$CABACK" "$@" >"$OUT" 2>"$ERR" </dev/null &
    local pid=$!
    timeout 120 bash -c 'exec 3>"$1" && cp "$2" "$3" && cp "$2.sig" "$3.sig" && printf "%s\n" "$4" >&3' \
        _ "$fifo" "$B" "$A" "$P12PW"
    local writer=$?
    wait "$pid" || STATUS=$?
    expect_equal "the swap was made while caback waited for its password" 0 "$writer"
}

# ---- restore automatic: the file swapped after it was chosen ----
TARGET=$T/target
make_nssdb "$TARGET"
before=$(db_state "$TARGET")
swapped_run "$T/pw.fifo" restore automatic -d "$TARGET" -f "$TARGET.pass" -w "$T/pw.fifo" \
    --signature-ca "$T/ca.pem" --log "$LOG"
expect_equal "restore automatic refuses the swapped file" 1 "$STATUS"
expect_grep "it says the newest backup changed, with both digests" \
    "changed since it was verified \(SHA-256 $SHA_B, recorded $SHA_A\)" "$ERR"
expect_no_grep "it never claims the recorded digest for what it read" "SHA-256 $SHA_A, as verified" "$OUT"
expect_equal "nothing was restored" "$before" "$(db_state "$TARGET")"
last_record
json_checks "the log names the bytes read" "$T/record.json" \
    "r['sha256'] == '$SHA_B'" "r['result'] == 'ERROR'"

# ---- restore automatic without a swap: the recorded bytes, said so ----
put_back_a
expect_status 0 "restore automatic of the recorded file" \
    "$CABACK" restore automatic -d "$TARGET" -f "$TARGET.pass" -w "$T/p12.pass" \
    --signature-ca "$T/ca.pem" --log "$LOG"
expect_grep "output names the SHA-256 restored" "newest recorded backup .*a.p12 \(SHA-256 $SHA_A, as verified\)" "$OUT"
expect_grep "the signature was checked on those bytes" "Signature .* is valid: .* \(SHA-256 $SHA_A\)" "$OUT"
last_record
json_checks "the log names them" "$T/record.json" "r['sha256'] == '$SHA_A'" "r['result'] == $RESTORE_RESULT"

# ---- restore -i: what is restored is what was checked, and the output says which ----
TARGET2=$T/target2
make_nssdb "$TARGET2"
put_back_a
swapped_run "$T/pw2.fifo" restore -i "$A" -d "$TARGET2" -f "$TARGET2.pass" -w "$T/pw2.fifo" \
    --signature-ca "$T/ca.pem" --log "$LOG"
expect_equal "restore -i of a file swapped for another validly signed one" 0 "$STATUS"
expect_grep "the output names the bytes read (B's)" "Read .*a.p12: [0-9]+ bytes, SHA-256 $SHA_B" "$OUT"
expect_grep "the signature was checked on them" "Signature .* is valid: .* \(SHA-256 $SHA_B\)" "$OUT"
expect_no_grep "A's digest appears nowhere" "$SHA_A" "$OUT"
check "B's key was restored" grep -q "subsystemCert cert-pki-ca" <(certutil -L -d "sql:$TARGET2")
expect_equal "and only B's key (one): A's CA key was not" 1 \
    "$(certutil -K -d "sql:$TARGET2" -f "$TARGET2.pass" 2>/dev/null | grep -c '^<')"
last_record
json_checks "the log names B's digest" "$T/record.json" "r['sha256'] == '$SHA_B'" "r['result'] == $RESTORE_RESULT"

# ---- --json: sha256 is the digest of the bytes restored ----
put_back_a
TARGET3=$T/target3
make_nssdb "$TARGET3"
expect_status 0 "restore -i --json" "$CABACK" restore -i "$A" -d "$TARGET3" -f "$TARGET3.pass" \
    -w "$T/p12.pass" --signature-ca "$T/ca.pem" --json
cp "$OUT" "$T/out.json"
json_checks "JSON" "$T/out.json" "r['sha256'] == '$SHA_A'" "r['signature_checked'] is True"

done_testing
