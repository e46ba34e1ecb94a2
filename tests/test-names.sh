#!/bin/bash
# Names are shown as they are, and never imported as a disguise (issue 16 §6): a friendlyName
# with control characters, a bidi override, an embedded NUL or invalid UTF-16, in files made by
# openssl (-name with the bytes; the NUL and the lone surrogate patched into a file with plain
# safes, then MACed again by tests/pbmac1-oracle.py), is shown escaped in list, the restore plan,
# the log and JSON, whole (never cut at the NUL); restore refuses it as a nickname (exit 4, the
# database unchanged) unless --rename, which restores it under the cleaned name it prints.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil openssl "$PYTHON3"

T=$TEST_TMP
PW=$T/p12.pass
printf 'Names 1\n' >"$PW"
ORACLE=("$PYTHON3" "$CABACK_SRCDIR/tests/pbmac1-oracle.py")
CA="caSigningCert cert-pki-ca"

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -subj "/CN=Names CA" -days 30 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out "$T/ca.crt" 2>/dev/null
# p12 OUT NAME: the CA and its key under friendlyName NAME, both safes plain (the names are in
# the file as they are, for patching).
p12() {
    openssl pkcs12 -export -inkey "$T/ca.key" -in "$T/ca.crt" -name "$2" -certpbe NONE \
        -passout "file:$PW" -out "$1"
}
# patch IN OUT FROM TO: replace the UTF-16BE bytes of FROM (hex) by TO (hex) everywhere in IN
# (the same length, so the DER stays valid), then give OUT a new MAC.
patch() {
    "$PYTHON3" - "$1" "$T/patched.p12" "$3" "$4" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
old, new = bytes.fromhex(sys.argv[3]), bytes.fromhex(sys.argv[4])
assert len(old) == len(new) and data.count(old) == 2, data.count(old)
open(sys.argv[2], "wb").write(data.replace(old, new))
PY
    "${ORACLE[@]}" rewrite -w "$PW" -o "$2" "$T/patched.p12"
}

check "openssl: a name with a bidi override (U+202E)" p12 "$T/bidi.p12" "$(printf 'caSigning\xe2\x80\xaeexe.txt')"
check "openssl: a name with an escape sequence" p12 "$T/ctl.p12" "$(printf 'red\x1b[31malert')"
# "cert-pki-caQevil": Q (U+0051) becomes NUL; C code would read "caSigningCert cert-pki-ca".
p12 "$T/nul-src.p12" "${CA}Qevil"
check "a name with an embedded NUL (patched, MACed again)" patch "$T/nul-src.p12" "$T/nul.p12" 00510065 00000065
p12 "$T/sur-src.p12" "loneQsurrogate"
check "a name with a lone UTF-16 surrogate (patched, MACed again)" patch "$T/sur-src.p12" "$T/sur.p12" 00510073 d8000073
check "a plain name for comparison" p12 "$T/plain.p12" "Names CA"

# ---- list: shown escaped and whole, in text and JSON ----
for f in bidi ctl nul sur plain; do
    expect_status 0 "list $f.p12" "$CABACK" list "$T/$f.p12" -w "$PW"
    cp "$OUT" "$T/$f.list"
    expect_status 0 "list --json $f.p12" "$CABACK" list "$T/$f.p12" -w "$PW" --json
    cp "$OUT" "$T/$f.json"
done
expect_grep "list: the bidi override escaped" '^Certificate 1: "caSigning\\u202eexe\.txt"$' "$T/bidi.list"
expect_grep "list: the escape sequence escaped" '^Certificate 1: "red\\x1b\[31malert"$' "$T/ctl.list"
expect_grep "list: the NUL escaped, the name whole" "^Certificate 1: \"$CA\\\\x00evil\"$" "$T/nul.list"
expect_grep "list: the key's name too" "^Key 1: \"$CA\\\\x00evil\"$" "$T/nul.list"
expect_grep "list: the lone surrogate escaped" '^Certificate 1: "lone\\ud800surrogate"$' "$T/sur.list"
expect_grep "list says what is wrong and what restore does" \
    "^  Name:         holds an embedded NUL \(shown escaped\); restore uses it as a nickname only with --rename, cleaned to \"${CA}_evil\"$" "$T/nul.list"
expect_grep "list: the reader's warning" '^  Warning:      the friendlyName "caSigning\\u202eexe\.txt" holds bidi override characters' "$T/bidi.list"
for f in bidi ctl nul sur; do
    if LC_ALL=C grep -q "$(printf '[\x01-\x1f]')" "$T/$f.list" || grep -qF "$(printf '\xe2\x80\xae')" "$T/$f.list"; then
        not_ok "list $f: no raw control or bidi character"; else ok "list $f: no raw control or bidi character"; fi
done
expect_no_grep "list: a plain name has no Name line" '^  Name:' "$T/plain.list"
json_checks "list --json: the NUL name" "$T/nul.json" \
    "r['certificates'][0]['friendly_name'] == '$CA\\\\x00evil'" \
    "r['keys'][0]['friendly_name'] == '$CA\\\\x00evil'" \
    "'an embedded NUL' in r['certificates'][0]['friendly_name_problem']"
json_checks "list --json: the bidi name" "$T/bidi.json" \
    "r['certificates'][0]['friendly_name'] == 'caSigning\\\\u202eexe.txt'" \
    "'bidi' in r['certificates'][0]['friendly_name_problem']"
json_checks "list --json: a plain name" "$T/plain.json" \
    "r['certificates'][0]['friendly_name'] == 'Names CA' and r['certificates'][0]['friendly_name_problem'] is None"

# ---- restore: never a nickname as it is ----
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
LOG=$T/restore.log
snapshot "$DB" "$T/before.txt"
for f in bidi ctl nul sur; do
    expect_status 4 "restore of $f.p12: the name is a conflict" \
        "$CABACK" restore -i "$T/$f.p12" -w "$PW" -d "$DB" -f "$DB.pass" --log "$LOG"
    expect_grep "the plan says why and what --rename would do" \
        '^  CONFLICT  certificate ".*": its friendlyName ".*\\(u202e|x1b|x00|ud800).*" holds .*, so it is not used as an NSS nickname; use --rename to restore it as ".*_.*"$' "$OUT"
    expect_status 4 "restore --replace of $f.p12: still a conflict" \
        "$CABACK" restore -i "$T/$f.p12" -w "$PW" -d "$DB" -f "$DB.pass" --replace --log "$LOG"
    unchanged "the refused $f restores left the database exactly as it was" "$DB" "$T/before.txt"
done
expect_status 4 "restore --dry-run --json of the NUL name" \
    "$CABACK" restore -i "$T/nul.p12" -w "$PW" -d "$DB" -f "$DB.pass" --dry-run --json --log "$LOG"
json_checks "the plan in JSON" "$OUT" \
    "r['certificates'][0]['action'] == 'conflict'" \
    "r['certificates'][0]['friendly_name'] == '$CA\\\\x00evil'" \
    "r['certificates'][0]['friendly_name_problem'] == 'an embedded NUL'" \
    "r['certificates'][0]['nickname'] == '${CA}_evil'"

expect_status 0 "restore --rename of the NUL name" \
    "$CABACK" restore -i "$T/nul.p12" -w "$PW" -d "$DB" -f "$DB.pass" --rename --log "$LOG"
expect_grep "the plan prints the cleaned name" \
    "^  rename    certificate \"${CA}_evil\", trust CTu,Cu,Cu .*" "$OUT"
expect_grep "... and why" "its friendlyName \"$CA\\\\x00evil\" holds an embedded NUL; restored under the cleaned name \"${CA}_evil\"" "$OUT"
certutil -L -d "sql:$DB" >"$T/certs.txt"
expect_grep "the database has the cleaned nickname" "^${CA}_evil +CTu,Cu,Cu$" "$T/certs.txt"
expect_no_grep "and not the name cut at the NUL" "^$CA +" "$T/certs.txt"
expect_status 0 "restore --rename of the bidi name" \
    "$CABACK" restore -i "$T/bidi.p12" -w "$PW" -d "$DB" -f "$DB.pass" --rename --log "$LOG"
expect_grep "... already in the database under the cleaned NUL name: left as it is" \
    "already in the database as \"${CA}_evil\" \(the file calls it \"caSigning\\\\u202eexe.txt\"\)" "$OUT"

# ---- the log: escaped too ----
for f in "$LOG" "$LOG.jsonl"; do
    if grep -qF "$(printf '\xe2\x80\xae')" "$f" || LC_ALL=C grep -q "$(printf '\x1b')" "$f"; then
        not_ok "no raw bidi or escape character in $(basename "$f")"; else
        ok "no raw bidi or escape character in $(basename "$f")"; fi
done
expect_grep "the log names the restored key by its cleaned name" "key: \"${CA}_evil\"" "$LOG"

done_testing
