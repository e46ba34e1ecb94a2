#!/bin/bash
# M-of-N custody (issue 18, doc/custody.md), end to end with real parts: custodian certificates
# and keys made by certutil in their own databases (RSA and EC), shares opened by OpenSSL
# (openssl cms -decrypt) and by caback, the password rebuilt independently by libgfshare's own
# gfcombine. backup --split (refusals that change nothing, 0600 shares, the run log), restore,
# verify and list with --share / --shares-prompt (every 3-subset of 5 restores, every 2-subset
# is exit 3), mistyped, duplicate and foreign shares, a random-subset property test for
# M <= N <= 10, reshare 2-of-3 to 3-of-4 with and without --verify, and no copy of the password
# or a share in caback's memory at exit (gdb, gcore).
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util openssl

T=$TEST_TMP
ITER=(--iterations 1000)
# Everything caback prints and logs in this test, searched at the end for shares and passwords.
ALL=$T/all-output.txt
: >"$ALL"
keep() { cat "$OUT" "$ERR" >>"$ALL"; }
# A fingerprint of a folder: every file's name, mode and SHA-256 (a refusal must change none).
snapshot() { (cd "$1" && find . -type f -printf '%p %m\n' | sort && find . -type f -exec sha256sum {} + | sort); }

# The CA: two keys (the CA signing key and a subsystem key), enough for custody.
CA=$T/ca
make_nssdb "$CA"
make_ca_cert "$CA"
issue_cert "$CA" "subsystemCert cert-pki-ca" "CN=Subsystem,O=EXAMPLE.TEST" u,u,u
CABACK_LOG=$T/caback.log
LOG=(--log "$CABACK_LOG")

# Ten custodians, RSA and EC alternating, each with their own database (and a PEM key for
# OpenSSL).
export FIXTURE_CUSTODIAN_KEY_PEM=1
NAMES=(alice bob carol dave erin frank grace heidi ivan judy)
for i in "${!NAMES[@]}"; do
    n=${NAMES[$i]}
    type=rsa; [ $((i % 2)) -eq 1 ] && type=ec
    make_custodian "$T/cust/$n" "$n" "$type" || { echo "Bail out! cannot make custodian $n"; exit 1; }
done
cert() { echo "$T/cust/$1.pem"; }

# text_share P7M NAME: the text share that custodian NAME reads from P7M with OpenSSL.
text_share() {
    openssl cms -decrypt -inform DER -in "$1" -recip "$T/cust/$2.pem" -inkey "$T/cust/$2.key" |
        sed -n 's/^share: //p'
}

# ---- refusals before anything is written ----
OUTDIR=$T/out
mkdir -m 700 "$OUTDIR"
A=$OUTDIR/ca.p12
make_custodian "$T/cust/old" old rsa -w -30 -v 1
make_custodian "$T/cust/signer" signer rsa --keyUsage digitalSignature
make_custodian "$T/cust/ecsigner" ecsigner ec --keyUsage digitalSignature
snapshot "$OUTDIR" >"$T/before.txt"
refuse() { # STATUS PATTERN DESCRIPTION ARGS...
    local want=$1 pattern=$2 desc=$3; shift 3
    expect_status "$want" "$desc" "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$A" "${ITER[@]}" \
        "${LOG[@]}" "$@"
    keep
    expect_grep "$desc: says why" "$pattern" "$ERR"
    snapshot "$OUTDIR" >"$T/after.txt"
    check "$desc: nothing was written" cmp -s "$T/before.txt" "$T/after.txt"
}
refuse 2 'at least 1 share' "--split 0" --split 0 --custodian "$(cert alice)"
refuse 2 'needs at least 4 custodians, but 3 were given' "--split 4 of 3 (M > N)" \
    --split 4 --custodian "$(cert alice)" --custodian "$(cert bob)" --custodian "$(cert carol)"
refuse 2 'is not a number' "--split x" --split x --custodian "$(cert alice)"
refuse 2 'given twice' "the same certificate twice (PEM and DER)" \
    --split 2 --custodian "$(cert alice)" --custodian "$T/cust/alice.der"
refuse 2 'has expired.*--force' "an expired custodian certificate" \
    --split 1 --custodian "$(cert alice)" --custodian "$T/cust/old.pem"
refuse 2 'forbids encryption.*keyEncipherment' "an RSA certificate without keyEncipherment" \
    --split 1 --custodian "$(cert alice)" --custodian "$T/cust/signer.pem"
refuse 2 'forbids encryption.*keyAgreement' "an EC certificate without keyAgreement" \
    --split 1 --custodian "$(cert bob)" --custodian "$T/cust/ecsigner.pem"
refuse 2 'custodians' "--split without custodians" --split 2
refuse 2 'go with --split' "--custodian without --split" --custodian "$(cert alice)"
printf 'pw\n' >"$T/pw"
refuse 2 'cannot be combined with -w' "--split with -w" --split 1 --custodian "$(cert alice)" -w "$T/pw"
refuse 2 'drop --no-verify' "--split with --no-verify" --split 1 --custodian "$(cert alice)" --no-verify
ln -s "$(cert alice)" "$T/alice-link.pem"
refuse 1 'symbolic link' "a custodian certificate given as a symbolic link" \
    --split 1 --custodian "$T/alice-link.pem"
head -c 70000 /dev/urandom >"$T/big.pem"
refuse 2 'more than the 65536' "a custodian file above the size cap" --split 1 --custodian "$T/big.pem"
mkdir "$T/emptydir"
refuse 2 'holds no certificate file' "an empty --custodian-dir" --split 1 --custodian-dir "$T/emptydir"
# 256 custodians: one more than GF(2^8) has points (EC certificates made by Python's
# cryptography, which is quick; caback refuses before using any).
if "$PYTHON3" -c 'import cryptography' 2>/dev/null; then
    mkdir "$T/many"
    "$PYTHON3" - "$T/many" <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
now = datetime.datetime.now(datetime.timezone.utc)
for i in range(256):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "custodian %d" % i)])
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
         .public_key(key.public_key()).serial_number(i + 1)
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=30))
         .sign(key, hashes.SHA256()))
    open("%s/c%03d.pem" % (sys.argv[1], i), "wb").write(c.public_bytes(serialization.Encoding.PEM))
PY
    refuse 2 'at most 255' "256 custodians (N > 255)" --split 2 --custodian-dir "$T/many"
else
    skip "256 custodians (N > 255)" "python3-cryptography is not installed"
fi

# ---- 3 of 5, RSA and EC custodians ----
FIVE=(alice bob carol dave erin)
cust_args=()
for n in "${FIVE[@]}"; do cust_args+=(--custodian "$(cert "$n")"); done
expect_status 0 "backup --split 3 with 5 custodians (RSA and EC)" \
    "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$A" "${ITER[@]}" "${LOG[@]}" --split 3 "${cust_args[@]}"
keep
cp "$OUT" "$T/backup-out.txt"
check "the archive was written" test -s "$A"
modes=""
for i in 1 2 3 4 5; do
    f=$A.share-$i-of-5.p7m
    modes="$modes $(stat -c %a "$f" 2>/dev/null || echo missing)"
done
expect_equal "five share files, each mode 0600" " 600 600 600 600 600" "$modes"
expect_equal "the archive is mode 0600" 600 "$(stat -c %a "$A")"
expect_grep "the summary says 3 of 5" 'any 3 of these 5 custodians' "$T/backup-out.txt"
expect_grep "the summary names share 2's custodian" 'share 2: .*ca\.p12\.share-2-of-5\.p7m' "$T/backup-out.txt"
expect_grep "verified with the password rebuilt from the shares" 'rebuilt from the shares' "$T/backup-out.txt"
expect_grep "the run log records 3 of 5" 'custody: 3 of 5 shares' "$CABACK_LOG"
for i in 1 2 3 4 5; do
    fp=$(openssl x509 -in "$(cert "${FIVE[$((i - 1))]}")" -outform DER | sha256sum | cut -c1-64)
    expect_grep "the run log records custodian $i's fingerprint" "custodian: share $i  sha256 $fp" "$CABACK_LOG"
done
expect_grep "the JSON log records the custody" '"custody":\{"threshold":3,"count":5,"custodians":\[' "$CABACK_LOG.jsonl"

# --split 1 is allowed with a warning; --force takes an expired certificate, with a warning.
expect_status 0 "--split 1 with --force and an expired custodian certificate" \
    "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$OUTDIR/one.p12" "${ITER[@]}" "${LOG[@]}" \
    --split 1 --custodian "$(cert alice)" --custodian "$T/cust/old.pem" --force
keep
expect_grep "--split 1 warns that it is not custody" 'warning: --split 1: each of the 2 custodians can open the backup alone' "$ERR"
expect_grep "--force warns about the expired certificate" 'warning: .*old\.pem.* has expired \(used because of --force\)' "$ERR"

# Each custodian opens their share with OpenSSL and their own key.
declare -A SHARE
for i in 1 2 3 4 5; do
    n=${FIVE[$((i - 1))]}
    SHARE[$i]=$(text_share "$A.share-$i-of-5.p7m" "$n")
    printf '%s\n' "${SHARE[$i]}" >"$T/share$i.txt"
done
check "openssl cms -decrypt opens an RSA custodian's share" test -n "${SHARE[1]}"
check "openssl cms -decrypt opens an EC custodian's share" test -n "${SHARE[2]}"
check "custodian 2's key does not open custodian 1's share" \
    sh -c '! openssl cms -decrypt -inform DER -in "$1" -recip "$2" -inkey "$3" >/dev/null 2>&1' _ \
    "$A.share-1-of-5.p7m" "$(cert bob)" "$T/cust/bob.key"

# libgfshare's own gfcombine rebuilds the password from three shares' bytes, and OpenSSL opens
# the archive with it: the shares are what the issue says, independently of caback's code.
if command -v gfcombine >/dev/null 2>&1; then
    mkdir "$T/gf"
    for i in 1 3 5; do
        "$PYTHON3" - "${SHARE[$i]}" "$T/gf/secret.$(printf '%03d' "$i")" <<'PY'
import base64, sys
text = sys.argv[1][len("CBK1-"):].replace("-", "")
raw = base64.b32decode(text + "=" * (-len(text) % 8))
# format, i, M, N, archive tag (8), split ID (8), share (32), checksum (4)
open(sys.argv[2], "wb").write(raw[4 + 16:4 + 16 + 32])
PY
    done
    gfcombine -o "$T/gf/secret" "$T/gf/secret.001" "$T/gf/secret.003" "$T/gf/secret.005"
    PASSWORD=$("$PYTHON3" -c 'import base64,sys; print(base64.urlsafe_b64encode(open(sys.argv[1],"rb").read()).decode().rstrip("="))' "$T/gf/secret")
    expect_status 0 "gfcombine's password opens the archive in OpenSSL" \
        openssl pkcs12 -in "$A" -passin "pass:$PASSWORD" -nokeys -info
    rm -rf "$T/gf"
else
    PASSWORD=""
    skip "gfcombine's password opens the archive in OpenSSL" "gfcombine (libgfshare-bin) is not installed"
fi

# Every 3-subset restores into a new database; every 2-subset is exit 3 and changes nothing.
subsets3=()
subsets2=()
for a in 1 2 3 4 5; do for b in 1 2 3 4 5; do
    [ "$b" -gt "$a" ] || continue
    subsets2+=("$a $b")
    for c in 1 2 3 4 5; do [ "$c" -gt "$b" ] && subsets3+=("$a $b $c"); done
done; done
expect_equal "10 subsets of 3 and 10 of 2" "10 10" "${#subsets3[@]} ${#subsets2[@]}"
printf '%s\n' "$FIXTURE_DB_PASSWORD" >"$T/newdb.pass"
for s in "${subsets3[@]}"; do
    args=()
    for i in $s; do args+=(--share "$T/share$i.txt"); done
    db=$T/restored-${s// /}
    expect_status 0 "restore with shares $s" \
        "$CABACK" restore -i "$A" -d "$db" --create -f "$T/newdb.pass" "${LOG[@]}" "${args[@]}"
    keep
done
expect_equal "the restored database holds the CA's keys" "$(certutil_key_ids "$CA" | cut -d' ' -f1)" \
    "$(cp "$T/newdb.pass" "$T/restored-135.pass"; certutil_key_ids "$T/restored-135" | cut -d' ' -f1)"
DB2=$T/restored-123
snapshot "$DB2" >"$T/db-before.txt"
for s in "${subsets2[@]}"; do
    args=()
    for i in $s; do args+=(--share "$T/share$i.txt"); done
    expect_status 3 "restore with only shares $s" \
        "$CABACK" restore -i "$A" -d "$DB2" -f "$T/newdb.pass" "${LOG[@]}" "${args[@]}"
    keep
    expect_grep "shares $s: \"2 of 3 shares given\"" '2 of 3 shares given' "$ERR"
done
snapshot "$DB2" >"$T/db-after.txt"
check "the refused restores changed nothing in the database" cmp -s "$T/db-before.txt" "$T/db-after.txt"

# list and verify take shares too; a .p7m share opens with the custodian's database in -d.
expect_status 0 "list with a .p7m share (-d: alice's database) and two text shares" \
    "$CABACK" list "$A" --share "$A.share-1-of-5.p7m" -d "$T/cust/alice" -f "$T/cust/alice.pass" \
    --share "$T/share2.txt" --share "$T/share4.txt"
keep
expect_grep "list shows the CA certificate" 'caSigningCert cert-pki-ca' "$OUT"
expect_status 2 "list without -d cannot open a .p7m share" \
    "$CABACK" list "$A" --share "$A.share-1-of-5.p7m" --share "$T/share2.txt" --share "$T/share4.txt"
keep
expect_status 0 "verify (the restore drill) with shares 2, 4, 5" \
    "$CABACK" verify "$A" --share "$T/share2.txt" --share "$T/share4.txt" --share "$T/share5.txt" "${LOG[@]}"
keep
expect_grep "the verify run log records 3 of 5" 'verify OK' "$CABACK_LOG"
expect_status 2 "--share and -w together are refused" \
    "$CABACK" list "$A" --share "$T/share2.txt" -w "$T/pw"
keep

# Mistyped, duplicate and foreign shares are named by index and file, before any derivation.
"$PYTHON3" - "$T/share2.txt" "$T/typo.txt" <<'PY'
import sys
s = open(sys.argv[1]).read().strip()
i = len(s) // 2
while s[i] == "-":
    i += 1
c = "A" if s[i] != "A" else "B"
open(sys.argv[2], "w").write(s[:i] + c + s[i + 1:] + "\n")
PY
expect_status 3 "a mistyped share" "$CABACK" list "$A" --share "$T/share1.txt" --share "$T/typo.txt" --share "$T/share3.txt"
keep
expect_grep "the mistyped share is named by its file" 'typo\.txt' "$ERR"
expect_status 3 "a share given twice" "$CABACK" list "$A" --share "$T/share1.txt" --share "$T/share1.txt" --share "$T/share3.txt"
keep
expect_grep "the duplicate is named by index and both files" 'share 1 is given twice: .*share1\.txt and .*share1\.txt' "$ERR"
B=$OUTDIR/other.p12
expect_status 0 "a second backup with the same custodians (--json)" \
    "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$B" "${ITER[@]}" "${LOG[@]}" --split 3 "${cust_args[@]}" --json
keep
json_checks "backup --split --json" "$OUT" 'r["ok"] is True' 'r["custody"]["threshold"] == 3' \
    'r["custody"]["count"] == 5' '[s["index"] for s in r["custody"]["shares"]] == [1, 2, 3, 4, 5]' \
    'r["custody"]["shares"][1]["file"].endswith("/other.p12.share-2-of-5.p7m")' \
    'r["custody"]["shares"][1]["custodian"] == "CN=bob,O=Custodians.TEST"' \
    'len(r["custody"]["shares"][4]["fingerprint"]) == 64'
text_share "$B.share-2-of-5.p7m" bob >"$T/other2.txt"
expect_status 3 "a share of another backup" "$CABACK" list "$A" --share "$T/share1.txt" --share "$T/other2.txt" --share "$T/share3.txt"
keep
expect_grep "the foreign share is named by index and file, as of another archive" 'share 2 \(.*other2\.txt\) is for another archive' "$ERR"

# Share files of an earlier backup to the same name: a conflict unless --force.
cp "$A.share-1-of-5.p7m" "$OUTDIR/ca2.p12.share-1-of-5.p7m"
snapshot "$OUTDIR" >"$T/before.txt"
expect_status 4 "a share file of an earlier backup to the same name is a conflict" \
    "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$OUTDIR/ca2.p12" "${ITER[@]}" "${LOG[@]}" --split 2 "${cust_args[@]}"
keep
snapshot "$OUTDIR" >"$T/after.txt"
check "the conflict changed nothing" cmp -s "$T/before.txt" "$T/after.txt"
rm -f "$OUTDIR/ca2.p12.share-1-of-5.p7m"

# --shares-prompt: typed one at a time, without echo, "N of 3 given"; a typo is asked again.
PTY=("$PYTHON3" "$CABACK_SRCDIR/tests/prompt-pty.py")
"${PTY[@]}" "$T/pty.json" "text:${SHARE[4]}" "text:$(cat "$T/typo.txt")" "text:${SHARE[2]}" \
    "text:${SHARE[5]}" -- "$CABACK" list "$A" --shares-prompt >/dev/null 2>&1
json_checks "--shares-prompt" "$T/pty.json" \
    'r["exit"] == 0' 'r["prompts"] == 4' '"1 of 3 given" in r["output"]' \
    '"2 of 3 given" in r["output"]' '"type it again" in r["output"]'
"$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["output"])' "$T/pty.json" >>"$ALL"
check "the typed shares were not echoed" sh -c '! grep -qF "$1" "$2"' _ "${SHARE[4]}" "$T/pty.json"

# ---- property: random M <= N <= 10, a random M-subset opens, a random (M-1)-subset does not ----
P=$T/prop
mkdir -m 700 "$P"
RANDOM=$$
for round in 1 2 3 4; do
    n=$((RANDOM % 10 + 1))
    m=$((RANDOM % n + 1))
    args=()
    for ((i = 0; i < n; i++)); do args+=(--custodian "$(cert "${NAMES[$i]}")"); done
    f=$P/r$round.p12
    expect_status 0 "property $round: backup --split $m of $n" \
        "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$f" "${ITER[@]}" "${LOG[@]}" --split "$m" "${args[@]}"
    keep
    picked=$(shuf -i 1-"$n" -n "$m" --random-source=<(yes "$round$n$m") | tr '\n' ' ')
    shares=()
    for i in $picked; do
        text_share "$f.share-$i-of-$n.p7m" "${NAMES[$((i - 1))]}" >"$P/r$round-$i.txt"
        shares+=(--share "$P/r$round-$i.txt")
    done
    expect_status 0 "property $round: shares $picked open it" "$CABACK" list "$f" "${shares[@]}"
    keep
    if [ "$m" -gt 1 ]; then
        expect_status 3 "property $round: $((m - 1)) of them do not" "$CABACK" list "$f" "${shares[@]:2}"
        keep
        expect_grep "property $round: \"$((m - 1)) of $m shares given\"" "$((m - 1)) of $m shares given" "$ERR"
    fi
done

# ---- reshare 2 of 3 to 3 of 4 ----
R=$T/reshare
mkdir -m 700 "$R"
RA=$R/ca.p12
expect_status 0 "backup --split 2 of 3 (alice, bob, carol)" \
    "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$RA" "${ITER[@]}" "${LOG[@]}" --split 2 \
    --custodian "$(cert alice)" --custodian "$(cert bob)" --custodian "$(cert carol)"
keep
for i in 1 2 3; do text_share "$RA.share-$i-of-3.p7m" "${NAMES[$((i - 1))]}" >"$R/old$i.txt"; done
NEW=(dave erin frank grace)
new_args=()
for n in "${NEW[@]}"; do new_args+=(--custodian "$(cert "$n")"); done
old_sha=$(sha256sum "$RA" | cut -c1-64)

# With --verify: pending until each new custodian confirmed; the old set stays valid meanwhile.
expect_status 0 "reshare --verify to 3 of 4 (dave, erin, frank, grace)" \
    "$CABACK" reshare "$RA" --share "$R/old1.txt" --share "$R/old3.txt" --split 3 "${new_args[@]}" \
    --verify "${ITER[@]}" "${LOG[@]}"
keep
expect_equal "the archive is unchanged while pending" "$old_sha" "$(sha256sum "$RA" | cut -c1-64)"
pmodes=$(stat -c %a "$RA.pending" "$RA.pending.state" "$RA".pending.share-*-of-4.p7m 2>/dev/null | sort -u | tr '\n' ' ')
expect_equal "the pending files are mode 0600" "600 " "$pmodes"
expect_equal "four pending share files" 4 "$(ls "$RA".pending.share-*-of-4.p7m | wc -l)"
expect_status 0 "the old shares still open the archive while pending" \
    "$CABACK" list "$RA" --share "$R/old2.txt" --share "$R/old3.txt"
keep
for i in 1 2 3 4; do text_share "$RA.pending.share-$i-of-4.p7m" "${NEW[$((i - 1))]}" >"$R/new$i.txt"; done
cp "$RA.pending.state" "$T/state-before"
expect_status 3 "--confirm with an old share is refused" \
    "$CABACK" reshare "$RA" --confirm --share "$R/old1.txt" "${LOG[@]}"
keep
check "the refused confirmation recorded nothing" cmp -s "$T/state-before" "$RA.pending.state"
expect_status 4 "a second reshare while one is pending is refused" \
    "$CABACK" reshare "$RA" --share "$R/old1.txt" --share "$R/old3.txt" --split 2 "${new_args[@]}" "${ITER[@]}"
keep
if command -v flock >/dev/null 2>&1; then
    expect_status 4 "a confirmation while another run holds the reshare lock is refused" \
        flock "$RA.reshare-lock" "$CABACK" reshare "$RA" --confirm --share "$R/new1.txt"
    keep
    expect_grep "the refusal says another reshare is running" 'another caback reshare of .* is running' "$ERR"
    check "the locked-out confirmation recorded nothing" cmp -s "$T/state-before" "$RA.pending.state"
    rm -f "$RA.reshare-lock"
else
    skip "a confirmation while another run holds the reshare lock is refused" "flock is not installed"
fi
expect_status 0 "dave and erin confirm (--json)" \
    "$CABACK" reshare "$RA" --confirm --share "$R/new1.txt" --share "$R/new2.txt" "${LOG[@]}" --json
keep
json_checks "reshare --confirm --json" "$OUT" 'r["ok"] is True' 'r["pending"] is True' \
    'r["confirmed"] == 2' 'r["waiting"] == [3, 4]' "r[\"old_sha256\"] == \"$old_sha\""
expect_status 0 "the confirmation is shown again without --json" \
    "$CABACK" reshare "$RA" --confirm --share "$R/new2.txt"
keep
expect_grep "two of four confirmed" 'Confirmed: 2 of 4; waiting for share 3, 4' "$OUT"
expect_equal "still the old archive" "$old_sha" "$(sha256sum "$RA" | cut -c1-64)"
expect_status 0 "frank confirms with his .p7m share and his database" \
    "$CABACK" reshare "$RA" --confirm --share "$RA.pending.share-3-of-4.p7m" -d "$T/cust/frank" \
    -f "$T/cust/frank.pass" "${LOG[@]}"
keep
expect_status 0 "grace confirms last: the new archive goes in place" \
    "$CABACK" reshare "$RA" --confirm --share "$R/new4.txt" "${LOG[@]}"
keep
check "the archive changed" test "$(sha256sum "$RA" | cut -c1-64)" != "$old_sha"
check "no pending file is left" sh -c '! ls "$1".pending* >/dev/null 2>&1' _ "$RA"
expect_equal "four new share files, mode 0600" "600 600 600 600" \
    "$(stat -c %a "$RA".share-{1,2,3,4}-of-4.p7m | tr '\n' ' ' | sed 's/ $//')"
expect_grep "the old 3-share files are listed as opening nothing" 'share-1-of-3\.p7m opens nothing' "$OUT"
expect_status 3 "the old shares cannot open the new archive" \
    "$CABACK" list "$RA" --share "$R/old1.txt" --share "$R/old2.txt"
keep
expect_grep "an old share is named as of another archive" 'is for another archive' "$ERR"
expect_status 3 "two new shares are not enough (3 of 4)" \
    "$CABACK" list "$RA" --share "$R/new1.txt" --share "$R/new4.txt"
keep
expect_grep "\"2 of 3 shares given\"" '2 of 3 shares given' "$ERR"
expect_status 0 "three new shares restore the new archive" \
    "$CABACK" restore -i "$RA" -d "$T/restored-new" --create -f "$T/newdb.pass" \
    --share "$R/new1.txt" --share "$R/new3.txt" --share "$R/new4.txt" "${LOG[@]}"
keep

# Without --verify: in place at once; --abort drops a pending one and changes nothing else.
expect_status 0 "reshare 3 of 4 back to 2 of 3 without --verify" \
    "$CABACK" reshare "$RA" --share "$R/new2.txt" --share "$R/new3.txt" --share "$R/new4.txt" \
    --split 2 --custodian "$(cert alice)" --custodian "$(cert bob)" --custodian "$(cert carol)" \
    "${ITER[@]}" "${LOG[@]}"
keep
for i in 1 2; do text_share "$RA.share-$i-of-3.p7m" "${NAMES[$((i - 1))]}" >"$R/again$i.txt"; done
expect_status 0 "the newest shares open it" "$CABACK" list "$RA" --share "$R/again1.txt" --share "$R/again2.txt"
keep
expect_status 3 "the 3-of-4 shares no longer do" \
    "$CABACK" list "$RA" --share "$R/new1.txt" --share "$R/new2.txt" --share "$R/new3.txt"
keep
snapshot "$R" >"$T/r-before.txt"
expect_status 0 "reshare --verify, then --abort" \
    "$CABACK" reshare "$RA" --share "$R/again1.txt" --share "$R/again2.txt" --split 2 \
    --custodian "$(cert dave)" --custodian "$(cert erin)" --verify "${ITER[@]}"
keep
expect_status 0 "--abort" "$CABACK" reshare "$RA" --abort
keep
snapshot "$R" >"$T/r-after.txt"
check "after --abort the folder is as before the reshare" cmp -s "$T/r-before.txt" "$T/r-after.txt"
expect_status 3 "reshare with a share of another backup is refused" \
    "$CABACK" reshare "$RA" --share "$R/again1.txt" --share "$T/other2.txt" --split 2 \
    --custodian "$(cert dave)" --custodian "$(cert erin)" "${ITER[@]}"
keep
snapshot "$R" >"$T/r-after.txt"
check "the refused reshare changed nothing" cmp -s "$T/r-before.txt" "$T/r-after.txt"

# ---- no copy of the password or a share in caback's memory at exit ----
# As test-secrets-memory.sh does: caback under gdb, stopped in exit(), a core written by gcore and
# searched for the password (from gfcombine), each share's text form and its raw bytes, and the
# secret; a core taken while the backup checks its file must show the password (the search works).
gfpassword() { # SHARE-TEXT-FILE... : the archive password rebuilt by gfcombine from these shares
    local f i=0 dir=$T/gfp
    rm -rf "$dir"; mkdir "$dir"
    for f in "$@"; do
        "$PYTHON3" - "$(head -1 "$f")" "$dir" <<'PY'
import base64, sys
text = sys.argv[1][len("CBK1-"):].replace("-", "")
raw = base64.b32decode(text + "=" * (-len(text) % 8))
open("%s/secret.%03d" % (sys.argv[2], raw[1]), "wb").write(raw[20:52])
open("%s/raw.%03d" % (sys.argv[2], raw[1]), "wb").write(raw[20:52])
PY
    done
    gfcombine -o "$dir/secret" "$dir"/secret.[0-9]* || return 1
    "$PYTHON3" -c 'import base64,sys; print(base64.urlsafe_b64encode(open(sys.argv[1],"rb").read()).decode().rstrip("="))' "$dir/secret"
}
search_core() { # DESCRIPTION CORE PASSWORD SHARE-TEXT-FILE...: one TAP line per secret form
    local desc=$1 core=$2 pw=$3 line; shift 3
    while IFS= read -r line; do
        case $line in
        PASS\ *) ok "$desc: ${line#PASS }" ;;
        *) not_ok "$desc: ${line#FAIL }" ;;
        esac
    done < <("$PYTHON3" - "$core" "$pw" "$T/gfp" "$@" <<'PY'
import glob, os, sys
sys.path.insert(0, os.path.join(os.environ["CABACK_SRCDIR"], "tests"))
from core_memory import FORMS, process_memory, tail_of
core = process_memory(sys.argv[1])
probes = [("password", sys.argv[2])] + [("share text of " + f.split("/")[-1], open(f).readline().strip()) for f in sys.argv[4:]]
for label, text in probes:
    for form in FORMS:
        n = core.count(text.encode(form)) + core.count(tail_of(text).encode(form))
        print(("PASS " if n == 0 else "FAIL ") + "no %s in %s (%d found)" % (label, form, n))
for f in sorted(glob.glob(sys.argv[3] + "/raw.*")) + [sys.argv[3] + "/secret"]:
    raw = open(f, "rb").read()
    n = core.count(raw) + core.count(tail_of(raw))
    print(("PASS " if n == 0 else "FAIL ") + "no bytes of %s (%d found)" % (f.split("/")[-1], n))
PY
    )
}
if ! command -v gdb >/dev/null 2>&1 || ! command -v gfcombine >/dev/null 2>&1; then
    skip "no password or share in memory at exit" "gdb or gfcombine is not installed"
elif grep -qa __asan_init "$CABACK"; then
    skip "no password or share in memory at exit" "AddressSanitizer build (its cores hold the shadow memory)"
else
    M=$T/mem
    mkdir -m 700 "$M"
    if core_at_breakpoint "$M/backup.core" exit \
        backup -d "$CA" -f "$CA.pass" -o "$M/m.p12" "${ITER[@]}" --split 2 \
        --custodian "$(cert alice)" --custodian "$(cert bob)"; then
        ok "backup --split under gdb: stopped in exit() with a core"
        text_share "$M/m.p12.share-1-of-2.p7m" alice >"$M/s1.txt"
        text_share "$M/m.p12.share-2-of-2.p7m" bob >"$M/s2.txt"
        MPW=$(gfpassword "$M/s1.txt" "$M/s2.txt")
        search_core "backup --split at exit" "$M/backup.core" "$MPW" "$M/s1.txt" "$M/s2.txt"
        rm -f "$M/backup.core"
        if core_at_breakpoint "$M/list.core" exit \
            list "$M/m.p12" --share "$M/s1.txt" --share "$M/s2.txt"; then
            ok "list --share under gdb: stopped in exit() with a core"
            search_core "list --share at exit" "$M/list.core" "$MPW" "$M/s1.txt" "$M/s2.txt"
        else
            not_ok "list --share under gdb: stopped in exit() with a core"; diag "$(tail -5 "$M/list.core.gdb")"
        fi
        rm -f "$M/list.core"
        # The control: while list checks the shares' archive, the password is in memory.
        if core_at_breakpoint "$M/held.core" caback_p12_read \
            list "$M/m.p12" --share "$M/s1.txt" --share "$M/s2.txt"; then
            "$PYTHON3" - "$M/held.core" "$MPW" <<'PY' >"$M/held.txt"
import os, sys
sys.path.insert(0, os.path.join(os.environ["CABACK_SRCDIR"], "tests"))
from core_memory import process_memory
print(process_memory(sys.argv[1]).count(sys.argv[2].encode()))
PY
            check "the search finds the password in a core taken while it is in use" test "$(cat "$M/held.txt")" -gt 0
        else
            not_ok "a core while list holds the password"; diag "$(tail -5 "$M/held.core.gdb")"
        fi
        rm -f "$M/held.core"
    else
        not_ok "backup --split under gdb: stopped in exit() with a core"; diag "$(tail -5 "$M/backup.core.gdb")"
    fi
fi

# ---- no share and no password in anything caback printed or logged ----
cat "$CABACK_LOG" "$CABACK_LOG.jsonl" >>"$ALL"
leaks=0
for f in "$T"/share*.txt "$T"/other2.txt "$R"/*.txt "$P"/*.txt; do
    s=$(head -1 "$f")
    [ -n "$s" ] || continue
    # The share's characters without its dashes, as a typed share may come.
    if grep -qF "$s" "$ALL" || grep -qF "$(printf '%s' "$s" | tr -d '-' | cut -c5-40)" "$ALL"; then
        leaks=$((leaks + 1)); diag "share of $f found in caback's output"
    fi
done
expect_equal "no share in stdout, stderr or the run logs" 0 "$leaks"
if [ -n "$PASSWORD" ]; then
    check "the password is nowhere in stdout, stderr or the run logs" sh -c '! grep -qF "$1" "$2"' _ "$PASSWORD" "$ALL"
else
    skip "the password is nowhere in stdout, stderr or the run logs" "gfcombine is not installed"
fi

done_testing
