#!/bin/bash
# Bounded work on any file (issue 16 §3): PKCS#12 files over the input size limit refused before
# they are read, from a file or a pipe, by list, restore and verify, with both sizes and
# --max-input-size; the sum of the key derivations of one file capped (--max-kdf-work) with the
# figure; iteration counts above the per-derivation limit (2^63 and 2^100 too) reported as too
# large with the number and the limit, negative and zero ones as such. Every refusal leaves the
# database byte-identical. Peak memory of list and restore on a file of many small certificates,
# and of verify on one of 10,000, under 4x its size + 64 MB. No certificate searched for by its
# value in the pair checks of restore and verify.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil openssl "$PYTHON3"

EDIT=$CABACK_SRCDIR/tests/p12-edit.py
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=limits \
    -keyout "$TEST_TMP/k.pem" -out "$TEST_TMP/c.pem" -days 30 2>/dev/null
PW=$TEST_TMP/p12.pass
printf 'Limits pass 1\n' >"$PW"
F=$TEST_TMP/a.p12
# OpenSSL 3: PBES2 certificate safe, PBES2 key, HMAC-SHA256 MAC, each 3,000 iterations with its
# own salt: three derivations, 9,000 iterations in all.
openssl pkcs12 -export -in "$TEST_TMP/c.pem" -inkey "$TEST_TMP/k.pem" -name limits \
    -passout "file:$PW" -iter 3000 -out "$F"

DB=$TEST_TMP/db
make_nssdb "$DB"
# The database's files byte for byte (caback.lock, the lock file restore takes, is not data).
snapshot() { (cd "$1" && sha256sum -- cert9.db key4.db pkcs11.txt) >"$2"; }
snapshot "$DB" "$TEST_TMP/before.txt"
unchanged() { snapshot "$DB" "$TEST_TMP/now.txt"; check "$1" cmp -s "$TEST_TMP/before.txt" "$TEST_TMP/now.txt"; }

# ---- input size ----
BIG=$TEST_TMP/big.p12
truncate -s 67108865 "$BIG" # 64 MiB + 1, sparse: nothing is read to refuse it
for verb in list verify restore; do
    case $verb in
    list) args=(list "$BIG" -w "$PW") ;;
    verify) args=(verify "$BIG" -w "$PW") ;;
    restore) args=(restore -i "$BIG" -w "$PW" -d "$DB" -f "$DB.pass") ;;
    esac
    expect_status 1 "$verb: a file of 64 MiB + 1 byte is refused" "$CABACK" "${args[@]}"
    expect_grep "$verb: the message gives both sizes and the option" \
        'big\.p12 is too large: 67108865 bytes, above caback.s limit of 67108864 bytes.*--max-input-size 67108865' "$ERR"
done
unchanged "the refused restore changed nothing"
expect_status 1 "--max-input-size lets it through to the parser" \
    "$CABACK" list "$BIG" -w "$PW" --max-input-size 67108865
expect_grep "... which finds no PKCS#12 file in zeros" 'not a PKCS#12 file' "$ERR"
expect_status 1 "a smaller --max-input-size refuses a real file" \
    "$CABACK" list "$F" -w "$PW" --max-input-size 100
expect_grep "... with its size" "a\.p12 is too large: $(stat -c %s "$F") bytes, above caback.s limit of 100 bytes" "$ERR"
run sh -c 'head -c 67108900 /dev/zero | "$1" list /dev/stdin -w "$2"' sh "$CABACK" "$PW"
check "a pipe giving more than 64 MiB is refused (exit 1)" test "$STATUS" -eq 1
expect_grep "... after at most the limit was read" 'at least.*67108865 bytes, above caback.s limit of 67108864' "$ERR"
run sh -c 'cat "$3" | "$1" list /dev/stdin -w "$2"' sh "$CABACK" "$PW" "$F"
check "a small file through a pipe is read" test "$STATUS" -eq 0
expect_status 2 "a negative --max-input-size is a usage error" \
    "$CABACK" list "$F" -w "$PW" --max-input-size -5

# ---- the work of one file's derivations ----
expect_status 0 "the file lists under the default work limit" "$CABACK" list "$F" -w "$PW"
expect_status 1 "--max-kdf-work below the file's 9,000 iterations refuses it" \
    "$CABACK" list "$F" -w "$PW" --max-kdf-work 8999
expect_grep "... with the figure, the limit and the option" \
    'would take 9000 key-derivation iterations.*limit of 8999 for one file.*--max-kdf-work 9000' "$ERR"
expect_status 0 "--max-kdf-work at the figure reads it" "$CABACK" list "$F" -w "$PW" --max-kdf-work 9000
expect_status 1 "restore under a too low --max-kdf-work" \
    "$CABACK" restore -i "$F" -w "$PW" -d "$DB" -f "$DB.pass" --max-kdf-work 5000
expect_grep "... is refused before the MAC's derivation" 'would take 6000 key-derivation iterations' "$ERR"
unchanged "the refused restore changed nothing"
expect_status 1 "verify under a too low --max-kdf-work" \
    "$CABACK" verify "$F" -w "$PW" --max-kdf-work 5000
printf 'wrong pass\n' >"$TEST_TMP/wrong.pass"
expect_status 3 "a wrong password is still a wrong password" \
    "$CABACK" list "$F" -w "$TEST_TMP/wrong.pass"

# ---- iteration counts ----
try_count() { # DESCRIPTION NEW PATTERN
    "$PYTHON3" "$EDIT" iterations "$F" "$TEST_TMP/it.p12" 3000 "$2"
    expect_status 1 "iteration count $1: refused" "$CABACK" list "$TEST_TMP/it.p12" -w "$PW"
    expect_grep "iteration count $1: $3" "$3" "$ERR"
    expect_no_grep "iteration count $1: not called zero or negative" 'zero or negative' "$ERR"
}
try_count "10,000,001" 10000001 'iteration count 10000001 is too large: above caback.s limit of 10000000'
try_count "2^63" 9223372036854775808 'iteration count 9223372036854775808 is too large: above caback.s limit of 10000000'
try_count "2^64 + 1" 18446744073709551617 'iteration count 18446744073709551617 is too large: above caback.s limit of 10000000'
try_count "2^100" 1267650600228229401496703205376 'iteration count 1267650600228229401496703205376 is too large'
try_count "-1" -1 'iteration count is negative'
try_count "0" 0 'iteration count is zero'
expect_status 1 "restore of a file with 2^63 iterations" \
    "$CABACK" restore -i "$TEST_TMP/it.p12" -w "$PW" -d "$DB" -f "$DB.pass"
unchanged "... changed nothing"

# ---- peak memory ----
# list and restore --dry-run, text and JSON, of a file of 30,000 small certificates peak under 4x
# its size + 64 MB (the child's maximum resident size, from Python's getrusage); a decoded
# certificate kept per entry made that 144 to 308 MB for this 15 MB file. Not in the sanitizer
# build, whose shadow memory and quarantine are most of the figure there.
if grep -qa __asan_init "$CABACK"; then
    skip "peak memory of list and restore on 30,000 certificates" "sanitizer build"
else
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj /CN=bench-cert-0000000/O=EXAMPLE.TEST -keyout "$TEST_TMP/many.key" \
        -out "$TEST_TMP/many.pem" -days 30 2>/dev/null
    openssl x509 -in "$TEST_TMP/many.pem" -outform DER -out "$TEST_TMP/many.der"
    MANY=$TEST_TMP/many.p12
    "$PYTHON3" "$CABACK_SRCDIR/tests/bench-certs.py" "$TEST_TMP/many.der" 30000 "$MANY"
    LIMIT_KB=$(((4 * $(stat -c %s "$MANY") + 64 * 1048576) / 1024))
    # peak_within DESCRIPTION COMMAND...: COMMAND exits WANT_RC (default 0) and peaks under
    # LIMIT_KB.
    peak_within() {
        local desc=$1 rc kb
        shift
        read -r rc kb < <("$PYTHON3" -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@")
        if [ "$rc" = "${WANT_RC:-0}" ] && [ "$kb" -le "$LIMIT_KB" ]; then
            ok "$desc: $kb KB, under 4x the file + 64 MB ($LIMIT_KB KB)"
        else
            not_ok "$desc: exit $rc, peak $kb KB, limit $LIMIT_KB KB (4x the file + 64 MB)"
        fi
    }
    peak_within "list, 30,000 certificates" "$CABACK" list "$MANY"
    peak_within "list --json, 30,000 certificates" "$CABACK" list --json "$MANY"
    peak_within "restore --dry-run, 30,000 certificates" "$CABACK" restore -i "$MANY" -d "$DB" \
        -f "$DB.pass" --dry-run --allow-unauthenticated
    peak_within "restore --dry-run --json, 30,000 certificates" "$CABACK" restore -i "$MANY" \
        -d "$DB" -f "$DB.pass" --dry-run --allow-unauthenticated --json
    unchanged "... the dry runs changed nothing"
    # A file of 30,000 plain EC keys without certificates (each key bag, its plan entry and its
    # notes once cost 1.5 KB; at 100,000 keys restore --dry-run went over the bound): list and
    # the dry run, and the run log lists the first 1,000 keys and counts the rest (one line per
    # key made a 12 MB record at 100,000).
    KEYS=$TEST_TMP/many-keys.p12
    "$PYTHON3" "$CABACK_SRCDIR/tests/bench-keys.py" 30000 "$KEYS"
    LIMIT_KB=$(((4 * $(stat -c %s "$KEYS") + 64 * 1048576) / 1024))
    : >"$TEST_TMP/empty.pass"
    peak_within "list, 30,000 keys" "$CABACK" list "$KEYS" -w "$TEST_TMP/empty.pass"
    peak_within "list --json, 30,000 keys" "$CABACK" list --json "$KEYS" -w "$TEST_TMP/empty.pass"
    peak_within "restore --dry-run, 30,000 keys" "$CABACK" restore -i "$KEYS" -d "$DB" \
        -f "$DB.pass" -w "$TEST_TMP/empty.pass" --dry-run --allow-unauthenticated \
        --log "$TEST_TMP/keys.log"
    peak_within "restore --dry-run --json, 30,000 keys" "$CABACK" restore -i "$KEYS" -d "$DB" \
        -f "$DB.pass" -w "$TEST_TMP/empty.pass" --dry-run --allow-unauthenticated --json \
        --log "$TEST_TMP/keys.log"
    unchanged "... the dry runs changed nothing"
    expect_equal "the run log lists 1,000 keys of each run" "2000" \
        "$(grep -c '^    key: (no certificate)  nss [0-9a-f]\{40\}  dogtag ' "$TEST_TMP/keys.log")"
    expect_equal "... and counts all of them" "2" \
        "$(grep -c '^    keys: 30000 in all; the first 1000 are listed above$' "$TEST_TMP/keys.log")"
    expect_equal "... in the JSON lines too" "2" \
        "$(grep -c '"keys_total":30000,' "$TEST_TMP/keys.log.jsonl")"
    # verify, the restore drill, imports every certificate into a temporary database and checks
    # each there: on 10,000 of them (30,000 take minutes; make bench-scale measures them), as
    # make bench-scale makes them: not CA certificates, so that no trust is set and every chain
    # fails (exit 1), the costly case (the reasons are kept, and NSS keeps a CRL cache per
    # issuer).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj /CN=bench-cert-0000000/O=EXAMPLE.TEST -keyout "$TEST_TMP/leaf.key" \
        -out "$TEST_TMP/leaf.pem" -days 300 -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null
    openssl x509 -in "$TEST_TMP/leaf.pem" -outform DER -out "$TEST_TMP/leaf.der"
    VERIFY_MANY=$TEST_TMP/verify-many.p12
    "$PYTHON3" "$CABACK_SRCDIR/tests/bench-certs.py" "$TEST_TMP/leaf.der" 10000 "$VERIFY_MANY"
    LIMIT_KB=$(((4 * $(stat -c %s "$VERIFY_MANY") + 64 * 1048576) / 1024))
    WANT_RC=1 peak_within "verify, 10,000 certificates" "$CABACK" verify "$VERIFY_MANY" \
        -w "$TEST_TMP/empty.pass" --allow-unauthenticated --no-signature-check --no-progress \
        --log "$TEST_TMP/verify.log"
    # The drill opens NSS again every 4,096 chain checks (NSS's CRL cache grows with each
    # issuer until it shuts down): the report of every certificate is whole across the
    # openings, each found in the temporary database and failing on its own signature.
    expect_status 1 "verify --json, 10,000 certificates" "$CABACK" verify "$VERIFY_MANY" \
        -w "$TEST_TMP/empty.pass" --allow-unauthenticated --no-signature-check --no-progress --json
    json_checks "the report of 10,000 certificates across the drill's openings" "$OUT" \
        "len(r['certificates']) == 10000 and len(r['problems']) == 10000" \
        "[c['subject'] for c in r['certificates']][4095:4098] == ['O=EXAMPLE.TEST,CN=bench-cert-%07d' % i for i in (4095, 4096, 4097)]" \
        "sum('SEC_ERROR_BAD_SIGNATURE' in c['chain'] for c in r['certificates']) == 9999" \
        "not any('temporary database' in c['chain'] for c in r['certificates'])" \
        "r['restorable'] is False and r['exit'] == 1"
fi

# ---- no certificate searched for by its value ----
# A restore checks that each key it stored signs for its certificate, and verify's drill checks
# each pair again. Each check found the certificate's object in the database through NSS
# (PK11_GetLowLevelKeyIDForCert, PK11_FindPrivateKeyFromCert), which searches for a certificate
# it did not read from that token by its value: a read of every certificate of the database
# (PK11_FindEncodedCertInSlot), so that n pairs took time in n^2 (10,000: about 227 s of checks;
# 100,000: more than an hour). They are now found by issuer and serial number, which the database
# indexes. gdb counts the searches by value on a file of 30 certificates with their keys: there
# were 30 in the restore and 60 in verify; there must be none. Timing itself is make bench-scale's
# (case 10), never a test.
if ! command -v gdb >/dev/null 2>&1; then
    skip "no certificate searched for by its value" "gdb is not installed"
else
    PAIRS=$TEST_TMP/pairs.p12
    "$PYTHON3" "$CABACK_SRCDIR/tests/bench-keys.py" --certs 30 "$PAIRS"
    : >"$TEST_TMP/empty.pass"
    # searched_by_value COMMAND...: how COMMAND exited and its searches by value (gdb_count_calls).
    searched_by_value() { gdb_count_calls PK11_FindEncodedCertInSlot "$@"; }
    make_nssdb "$TEST_TMP/pairsdb"
    expect_equal "restore of 30 certificates with their keys: exit 0, no certificate searched for by value" \
        "exited normally 0" "$(searched_by_value "$CABACK" restore -q -i "$PAIRS" -w "$TEST_TMP/empty.pass" \
            --allow-unauthenticated -d "$TEST_TMP/pairsdb" -f "$TEST_TMP/pairsdb.pass")"
    expect_equal "... all 30 keys are in the database" 30 \
        "$(certutil -K -d "sql:$TEST_TMP/pairsdb" -f "$TEST_TMP/pairsdb.pass" 2>/dev/null | grep -c 'bench pair')"
    # Exit 1: the self-signed certificates are not trusted CAs, so their chains do not verify.
    expect_equal "verify of the file: exit 1 (untrusted chains), no certificate searched for by value" \
        "exited with code 01 0" "$(searched_by_value "$CABACK" verify -q "$PAIRS" -w "$TEST_TMP/empty.pass" \
            --allow-unauthenticated --log "$TEST_TMP/pairs.log")"
    expect_status 1 "verify --json of the file" "$CABACK" verify --json "$PAIRS" -w "$TEST_TMP/empty.pass" \
        --allow-unauthenticated --log "$TEST_TMP/pairs.log"
    json_checks "... every key is restored and signs for its certificate" "$OUT" \
        "len(r['keys']) == 30" \
        "all(k['signature_ok'] is True and k['problem'] is None for k in r['keys'])" \
        "sorted(k['nickname'] for k in r['keys']) == ['bench pair %07d' % i for i in range(30)]"

    # A backup of that database, listkeys, and verify comparing the file with it (-d), looked up
    # each certificate's key with PK11_FindPrivateKeyFromCert, which searches by value for a
    # certificate NSS did not read from that token; where its trust lives by reading every trust
    # object of the token (PK11_FindGenericObjects); and each key's certificate with
    # PK11_GetCertFromPrivateKey (also inside SECKEY_ConvertToPublicKey), which builds it from its
    # object and finds its trust by its SHA-1 hash, which the database does not index. All n^2 (a
    # backup of 10,000 pairs took 228 s, listkeys 75 s). gdb counts the three; there must be none.
    # costly_lookups COMMAND...: how COMMAND exited and its calls of the three (gdb_count_calls).
    costly_lookups() {
        gdb_count_calls "PK11_FindEncodedCertInSlot PK11_FindGenericObjects PK11_GetCertFromPrivateKey" "$@"
    }
    printf 'Limits backup 1\n' >"$TEST_TMP/pairs-out.pass"
    expect_equal "backup of the 30 pairs: exit 0, no search by value, no read of every trust object" \
        "exited normally 0" "$(costly_lookups "$CABACK" backup -q -d "$TEST_TMP/pairsdb" \
            -f "$TEST_TMP/pairsdb.pass" -o "$TEST_TMP/pairs-out.p12" -w "$TEST_TMP/pairs-out.pass" \
            --iterations 1000 --no-progress)"
    expect_equal "... the backup holds the 30 keys" 30 \
        "$("$CABACK" list "$TEST_TMP/pairs-out.p12" -w "$TEST_TMP/pairs-out.pass" --json |
            "$PYTHON3" -c 'import json,sys; print(len(json.load(sys.stdin)["keys"]))')"
    expect_equal "listkeys of that database: exit 0, no such search" \
        "exited normally 0" "$(costly_lookups "$CABACK" listkeys -d "$TEST_TMP/pairsdb" \
            -f "$TEST_TMP/pairsdb.pass")"
    expect_equal "... it lists the 30 keys with their nicknames" 30 \
        "$("$CABACK" listkeys -d "$TEST_TMP/pairsdb" -f "$TEST_TMP/pairsdb.pass" | grep -c 'bench pair')"
    expect_equal "verify -d of the file against the database: exit 1 (untrusted chains), no such search" \
        "exited with code 01 0" "$(costly_lookups "$CABACK" verify -q "$PAIRS" -w "$TEST_TMP/empty.pass" \
            --allow-unauthenticated -d "$TEST_TMP/pairsdb" -f "$TEST_TMP/pairsdb.pass" \
            --log "$TEST_TMP/pairs.log")"
fi

done_testing
