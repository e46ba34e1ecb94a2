#!/bin/bash
# caback restore into one token of a database that has several (issue 17 §2, issue 15 §5):
# NSS keeps the trust of a certificate on a token that cannot hold trust objects (SoftHSM) with a
# copy of it, under the same nickname, in the internal token. A restore into token B while the
# internal token names a different certificate the same is a conflict explained in the plan
# (exit 4, nothing changed), and --rename restores it; when the internal token holds the same
# certificate already, its trust is that copy's. All or nothing, proved: the apply step is made
# to fail at each of its points (keys, public keys, certificates, trust objects, NSS's copies in
# the internal token, trust changes of existing objects; into the SoftHSM token and into the
# internal token), and every object of every token (p11tool, certutil -h all) and every row of
# cert9.db and key4.db (ids included) must be as before. The undo removes only what the run
# recorded creating: another token's objects under the same nicknames stay.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil modutil softhsm2-util p11tool "$PYTHON3"
if ! find_softhsm_lib; then
    echo "1..0 # SKIP libsofthsm2.so not found"
    exit 0
fi

PIN=$FIXTURE_DB_PASSWORD
SRC=$TEST_TMP/src
make_dogtag_ca "$SRC"
OTHER=$TEST_TMP/other
make_dogtag_ca "$OTHER"
PW=$TEST_TMP/p12.pass
printf 'Token undo pass 1\n' >"$PW"
F=$TEST_TMP/full.p12
"$CABACK" backup -q -d "$SRC" -f "$SRC.pass" -o "$F" -w "$PW" --iterations 2000 ||
    not_ok "the backup to restore"
CA_NICK=$DOGTAG_CA_NICK
AUDIT_NICK="auditSigningCert cert-pki-ca"

make_softhsm_token tok-a "$PIN"
make_softhsm_token tok-b "$PIN"
DB=$TEST_TMP/db
make_nssdb "$DB"
modutil -dbdir "sql:$DB" -add softhsm -libfile "$SOFTHSM_LIB" -force >/dev/null 2>&1
CONF=$TEST_TMP/password.conf
printf 'internal=%s\nhardware-tok-a=%s\nhardware-tok-b=%s\n' "$PIN" "$PIN" "$PIN" >"$CONF"

# Everything the database and its tokens hold: certutil's view of every token, every object of
# each SoftHSM token with its attributes as p11tool lists them (private keys too, logged in),
# and every row of every table of cert9.db and key4.db with its id. One exception: the
# "sig_cert_*" rows of key4.db's metaData are NSS's MACs over trust attributes, made with a fresh
# salt each time an attribute is written; an undo that writes a trust object's old values back
# gets new MAC bytes for the same values. Those rows are compared by id (which object and
# attribute), the values they authenticate by the nssPublic rows.
cat >"$TEST_TMP/dbrows.py" <<'PY'
import sqlite3, sys
for name in ("cert9.db", "key4.db"):
    db = sqlite3.connect("file:" + sys.argv[1] + "/" + name + "?mode=ro", uri=True)
    for (table,) in db.execute("select name from sqlite_master where type = 'table' order by name"):
        cur = db.execute('select * from "%s"' % table)
        cols = [d[0] for d in cur.description]
        rows = []
        for r in cur:
            row = list(zip(cols, r))
            if table == "metaData" and str(r[0]).startswith("sig_cert_"):
                row = row[:1]
            rows.append(repr(row))
        for r in sorted(rows):
            print(name, table, r)
PY
snapshot() {
    {
        certutil -L -d "sql:$DB" -h all -f "$DB.pass" 2>&1 | sed -n '5,$p' | sort
        certutil -K -d "sql:$DB" -h all -f "$DB.pass" 2>&1 | sed 's/^<[ 0-9]*>//' | sort
        for t in tok-a tok-b; do
            echo "== token $t"
            GNUTLS_PIN=$PIN p11tool --provider "$SOFTHSM_LIB" --login --list-all \
                "pkcs11:token=$t" 2>&1 | grep -v '^Object [0-9]*:' | sort
        done
        "$PYTHON3" "$TEST_TMP/dbrows.py" "$DB"
    } >"$1"
}
# objects FILE: how many objects and rows a snapshot compares.
objects() { grep -c -E '^(cert9|key4)\.db (nssPublic|nssPrivate) |^	URL: ' "$1"; }
unchanged() { # DESCRIPTION BEFORE
    snapshot "$TEST_TMP/after.txt"
    if cmp -s "$2" "$TEST_TMP/after.txt"; then ok "$1"; else
        not_ok "$1"; diag "$(diff "$2" "$TEST_TMP/after.txt" | head -20)"
    fi
}
restore_into() { # TOKEN [OPTIONS...]
    local token=$1; shift
    run "$CABACK" restore -i "$F" -w "$PW" -d "$DB" --token "$token" -f "$CONF" "$@"
}

# Token A holds a key and a certificate of its own, under a nickname the file also uses
# (another subject, no trust): the undo of a restore into token B must leave them. (certutil
# then fails to set the empty trust, the internal token not being logged in; key and certificate
# are made first.)
certutil -S -x -d "sql:$DB" -h tok-a -f "$DB.pass" -z "$DB.noise" -n "subsystemCert cert-pki-ca" \
    -s "CN=Token A own" -t ",," -k rsa -g 2048 -Z SHA256 -v 24 -m 9001 >/dev/null 2>&1
expect_grep "token A holds a certificate of its own" "^tok-a:subsystemCert cert-pki-ca " \
    <(certutil -L -d "sql:$DB" -h tok-a -f "$DB.pass")

# ---- a different certificate of the internal token holds the CA's nickname ----
certutil -L -d "sql:$OTHER" -n "subsystemCert cert-pki-ca" -a >"$TEST_TMP/clash.pem"
certutil -A -d "sql:$DB" -f "$DB.pass" -n "$CA_NICK" -t "C,C,C" -a -i "$TEST_TMP/clash.pem"
snapshot "$TEST_TMP/clash.before"
restore_into tok-b
expect_equal "token B, the internal token names another subject the same: exit 4" 4 "$STATUS"
expect_grep "the plan explains NSS's copy in the internal token" \
    "CONFLICT  certificate \"$CA_NICK\": NSS keeps the trust flags CTu,Cu,Cu of a certificate on token \"tok-b\" with a copy of it" "$OUT"
expect_grep "... and names --rename" "Use --rename to restore it under another name" "$OUT"
unchanged "... nothing changed, on any token or in any database row" "$TEST_TMP/clash.before"
restore_into tok-b --replace
expect_equal "--replace does not solve it (exit 4)" 4 "$STATUS"
unchanged "... nothing changed" "$TEST_TMP/clash.before"

# Every failure point of the --rename restore into token B: the renamed CA certificate and the
# audit certificate (trust ,,P) make NSS copy them into the internal token, with trust objects.
# fault_points NAME BEFORE TOKEN [OPTIONS...]: fail at step 1, 2, ... until a run completes.
fault_points() {
    local name=$1 before=$2 step=0 bad=0; shift 2
    while [ "$step" -lt 60 ]; do
        step=$((step + 1))
        CABACK_TEST_RESTORE_FAIL_STEP=$step restore_into "$@"
        if [ "$STATUS" = 0 ]; then break; fi
        if [ "$STATUS" != 1 ] || ! grep -q "CABACK_TEST_RESTORE_FAIL_STEP=$step" "$ERR" ||
            ! grep -q "every change of this run was undone" "$ERR"; then
            bad=$((bad + 1)); diag "$name, step $step: exit $STATUS: $(head -c 400 "$ERR")"
        fi
        snapshot "$TEST_TMP/after.txt"
        if ! cmp -s "$before" "$TEST_TMP/after.txt"; then
            bad=$((bad + 1)); diag "$name, step $step left:" "$(diff "$before" "$TEST_TMP/after.txt" | head -12)"
        fi
    done
    POINTS=$((step - 1))
    diag "$name: $POINTS failure points, $(objects "$before") objects and rows compared each time"
    expect_equal "$name: every failure point ($POINTS) undone exactly" 0 "$bad"
}
fault_points "token B, --rename" "$TEST_TMP/clash.before" tok-b --rename
check "... then the run without failure completed (at least 15 points)" test "$POINTS" -ge 15
expect_grep "... restored under a new name" "caSigningCert cert-pki-ca \\(restored 1\\)" "$OUT"
certutil -L -d "sql:$DB" -h all -f "$DB.pass" >"$TEST_TMP/list.txt"
expect_grep "... on token B, with its trust" "^tok-b:caSigningCert cert-pki-ca \\(restored 1\\) +CTu,Cu,Cu" "$TEST_TMP/list.txt"
expect_grep "... the internal token's certificate untouched" "^caSigningCert cert-pki-ca +C,C,C" "$TEST_TMP/list.txt"
expect_grep "... token A's own certificate of the same nickname untouched" \
    "^tok-a:subsystemCert cert-pki-ca +" "$TEST_TMP/list.txt"

# ---- token A: the internal token holds the certificates already (NSS's copies for token B) ----
# Their trust is those copies': kept by default, and the plan says so; an explicit --trust
# changes the trust object that exists in the internal token, and the undo writes its old values
# back by handle. The nickname the internal token gives another subject is no conflict here:
# NSS reuses its copy. Token B's certificates under the same nicknames stay.
snapshot "$TEST_TMP/a.before"
restore_into tok-a --dry-run --rename
expect_grep "token A: the plan keeps the trust of the internal token's copy" \
    "\"$AUDIT_NICK\", trust u,u,Pu \(as the internal token's copy of it has it" "$OUT"
restore_into tok-a --dry-run --rename --trust "$CA_NICK=C,C,C"
expect_grep "... and says when --trust changes it" \
    "the internal token already holds this certificate, where NSS keeps its trust: the trust changes from CT,C,C" "$OUT"
fault_points "token A, internal copies present" "$TEST_TMP/a.before" tok-a --trust "$CA_NICK=C,C,C" --rename
expect_grep "... the CA's trust is the one asked for" "^tok-a:$CA_NICK  +Cu,Cu,Cu" \
    <(certutil -L -d "sql:$DB" -h all -f "$DB.pass")
check "... (at least 15 points)" test "$POINTS" -ge 15
certutil -L -d "sql:$DB" -h all -f "$DB.pass" >"$TEST_TMP/list.txt"
expect_grep "... token B's certificates stay" "^tok-b:$AUDIT_NICK " "$TEST_TMP/list.txt"
expect_grep "... token A has the CA certificate" "^tok-a:caSigningCert cert-pki-ca " "$TEST_TMP/list.txt"

# ---- the internal token: every failure point ----
INT=$TEST_TMP/internal
make_nssdb "$INT"
certutil -L -d "sql:$SRC" -n "$CA_NICK" -a >"$TEST_TMP/ca.pem"
certutil -A -d "sql:$INT" -f "$INT.pass" -n "$CA_NICK" -t "C,C,C" -a -i "$TEST_TMP/ca.pem"
DB_SAVED=$DB
DB=$INT
snapshot "$TEST_TMP/int.before"
restore_int() { run "$CABACK" restore -i "$F" -w "$PW" -d "$INT" -f "$INT.pass" "$@"; }
bad=0 step=0
while [ "$step" -lt 60 ]; do
    step=$((step + 1))
    CABACK_TEST_RESTORE_FAIL_STEP=$step restore_int
    [ "$STATUS" = 0 ] && break
    grep -q "every change of this run was undone" "$ERR" || { bad=$((bad + 1)); diag "internal, step $step: $(head -c 400 "$ERR")"; }
    snapshot "$TEST_TMP/after.txt"
    cmp -s "$TEST_TMP/int.before" "$TEST_TMP/after.txt" ||
        { bad=$((bad + 1)); diag "internal, step $step left:" "$(diff "$TEST_TMP/int.before" "$TEST_TMP/after.txt" | head -12)"; }
done
diag "internal token: $((step - 1)) failure points, $(objects "$TEST_TMP/int.before") objects and rows compared each time"
expect_equal "internal token: every failure point ($((step - 1))) undone exactly" 0 "$bad"
check "... (at least 12 points)" test "$((step - 1))" -ge 12
expect_equal "... the run without failure changed the CA's trust" "CTu,Cu,Cu" \
    "$(certutil -L -d "sql:$INT" | sed -n "s/^$CA_NICK  *\\([^ ]*\\) *\$/\\1/p")"
DB=$DB_SAVED

done_testing
