#!/bin/bash
# restore shows the backup's date (its signing time, else its record in the run log) and warns
# when the run log records a newer backup of the same database; --require-latest refuses then,
# and when the date cannot be told (issue 22 §4). The backups are made by caback backup and
# pk12util; the older backup's record is moved back a day in the log (backups made within one
# second would otherwise share a time), and signatures with a chosen time come from cms-maker.py.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util "$PYTHON3"
"$PYTHON3" -c 'import cryptography' 2>/dev/null || {
    echo "1..0 # SKIP python3 cryptography is not installed"; exit 0; }

T=$TEST_TMP
CA=$T/ca
make_dogtag_ca "$CA"
printf 'Fresh p12 pass 3\n' >"$T/p12.pass"
OLD=$T/old.p12
NEW=$T/new.p12
OTHERDB=$T/otherdb
make_dogtag_ca "$OTHERDB"
expect_status 0 "an older backup" "$CABACK" backup -d "$CA" -f "$CA.pass" -o "$OLD" -w "$T/p12.pass" \
    --iterations 2000 -n "$DOGTAG_CA_NICK"
expect_status 0 "a newer backup of the same database" "$CABACK" backup -d "$CA" -f "$CA.pass" \
    -o "$NEW" -w "$T/p12.pass" --iterations 2000 -n "$DOGTAG_CA_NICK" -n "subsystemCert cert-pki-ca"
expect_status 0 "a later backup of another database" "$CABACK" backup -d "$OTHERDB" -f "$OTHERDB.pass" \
    -o "$T/elsewhere.p12" -w "$T/p12.pass" --iterations 2000 -n "$DOGTAG_CA_NICK"
SHA_OLD=$(sha256sum "$OLD" | cut -d' ' -f1)
SHA_NEW=$(sha256sum "$NEW" | cut -d' ' -f1)
JSONL=$CABACK_STATE_DIR/caback.log.jsonl
[ -f "$JSONL" ] || JSONL=$(ls "$CABACK_STATE_DIR"/*.jsonl | head -1)
# The older backup's record, one day earlier.
"$PYTHON3" - "$JSONL" "$SHA_OLD" <<'PY'
import json, sys
path, sha = sys.argv[1], sys.argv[2]
lines = open(path).read().splitlines()
out = []
for line in lines:
    r = json.loads(line)
    if r.get("verb") == "backup" and r.get("sha256") == sha:
        line = line.replace('"time":"%s"' % r["time"], '"time":"2020-01-02T03:04:05Z"', 1)
    out.append(line)
open(path, "w").write("\n".join(out) + "\n")
PY
check "the older record now says 2020" grep -q '"time":"2020-01-02T03:04:05Z"' "$JSONL"

TARGET=$T/target
make_nssdb "$TARGET"
db_state() {
    { certutil -L -d "sql:$1" | tail -n +5 | sort
      certutil -K -d "sql:$1" -f "$1.pass" 2>/dev/null | sed 's/^<[ 0-9]*>//' | sort; } 2>&1
}
R=(restore -d "$TARGET" -f "$TARGET.pass" -w "$T/p12.pass" --no-signature-check)
jcheck() { local d=$1; shift; cp "$OUT" "$T/out.json"; json_checks "$d" "$T/out.json" "$@"; }

# ---- an older backup from the run log ----
expect_status 0 "restoring the older backup works (dry run)" "$CABACK" "${R[@]}" -i "$OLD" --dry-run
expect_grep "it shows the recorded date" "Backup date: 2020-01-02T03:04:05Z \(when caback backup wrote it, from the run log\)" "$OUT"
expect_grep "it warns of the newer backup, naming it" \
    "warning: .*records a newer backup of the same database .*: .*new.p12, made at 20[0-9-]+T[0-9:]+Z \(SHA-256 $SHA_NEW\)" "$ERR"
expect_no_grep "the other database's later backup is not named" "elsewhere.p12" "$ERR"
expect_status 0 "--json" "$CABACK" "${R[@]}" -i "$OLD" --dry-run --json
jcheck "older backup" "r['backup_time'] == '2020-01-02T03:04:05Z'" "r['backup_time_source'] == 'run log'" \
    "r['newer_backup']['file'] == '$NEW'" "r['newer_backup']['sha256'] == '$SHA_NEW'"
grep '"verb":"restore"' "$JSONL" | tail -1 >"$T/record.json"
json_checks "the log records the warning" "$T/record.json" \
    'any("newer backup" in w for w in r["warnings"])'

before=$(db_state "$TARGET")
expect_status 1 "--require-latest refuses the older backup" "$CABACK" "${R[@]}" -i "$OLD" --require-latest
expect_grep "saying why and what to do" \
    "\-\-require-latest: the run log .* records a newer backup .*new.p12.*nothing was restored" "$ERR"
expect_equal "nothing changed" "$before" "$(db_state "$TARGET")"
expect_status 1 "--require-latest --json" "$CABACK" "${R[@]}" -i "$OLD" --require-latest --json --dry-run

# ---- the newest backup ----
expect_status 0 "the newest backup passes --require-latest" \
    "$CABACK" "${R[@]}" -i "$NEW" --require-latest --dry-run --json
jcheck "newest" "r['newer_backup'] is None" "r['backup_time_source'] == 'run log'"
expect_status 0 "and is restored" "$CABACK" "${R[@]}" -i "$NEW" --require-latest
expect_no_grep "without a warning" "newer backup" "$ERR"

# ---- dates from signatures; a file the log does not know, matched by its keys ----
M=$T/m
mkdir -p "$M"
MAKER="$PYTHON3 $CABACK_SRCDIR/tests/cms-maker.py"
$MAKER cert "$M" root --ca --days-before 1000 2>/dev/null
$MAKER cert "$M" signer --issuer root 2>/dev/null
pk12util -o "$T/copy.p12" -n "$DOGTAG_CA_NICK" -d "sql:$CA" -k "$CA.pass" -W "Fresh p12 pass 3" >/dev/null 2>&1
$MAKER sign "$T/copy.p12" "$T/copy.p12.sig" --signer "$M/signer" --time-offset -172800 2>/dev/null
RS=(restore -d "$TARGET" -f "$TARGET.pass" -w "$T/p12.pass" --signature-ca "$M/root.pem" --dry-run)
expect_status 0 "a pk12util copy signed two days ago" "$CABACK" "${RS[@]}" -i "$T/copy.p12"
expect_grep "its date is the signing time" "Backup date: [0-9T:-]+Z \(the signing time of its signature\)" "$OUT"
expect_grep "a newer backup holding its key is named" "records a newer backup .*new.p12" "$ERR"
expect_status 0 "--json" "$CABACK" "${RS[@]}" -i "$T/copy.p12" --json
jcheck "signed copy" "r['backup_time_source'] == 'signing time'" "r['backup_time'] == r['signing_time']" \
    "r['newer_backup']['file'] == '$NEW'"
$MAKER sign "$T/copy.p12" "$T/copy.p12.sig" --signer "$M/signer" 2>/dev/null
expect_status 0 "signed now, it is newer than every recorded backup" \
    "$CABACK" "${RS[@]}" -i "$T/copy.p12" --require-latest --json
jcheck "signed now" "r['newer_backup'] is None"

# ---- no date at all ----
rm -f "$T/copy.p12.sig"
expect_status 0 "an unsigned, unrecorded file: the date is unknown" \
    "$CABACK" "${R[@]}" -i "$T/copy.p12" --dry-run
expect_grep "it says so" "Backup date: unknown \(.*copy.p12 is not signed .* no backup with its SHA-256 is recorded" "$OUT"
expect_status 0 "--json" "$CABACK" "${R[@]}" -i "$T/copy.p12" --dry-run --json
jcheck "unknown date" "r['backup_time'] is None" "r['backup_time_source'] is None" "r['newer_backup'] is None"
expect_status 1 "--require-latest refuses a file whose date cannot be told" \
    "$CABACK" "${R[@]}" -i "$T/copy.p12" --dry-run --require-latest
expect_grep "saying why" "cannot tell whether .*copy.p12 is the newest backup" "$ERR"

done_testing
