#!/bin/bash
# Issue 16 §4: a restore into a database that already holds the file's certificates (a second
# restore, or a dry run of it) shows their trust as certutil -L shows it, compares explicit
# trust (-t) with what the database stores, and finds those certificates without searching the
# token by value (which made planning grow with the square of the database).
#
# The kinds: a certutil -S CA with -t CT,C,C; a CA with its key and no trust object (pk12util);
# a CA without key, trust ",,"; a leaf with its key (pk12util); and the same file restored into
# a SoftHSM2 token, where NSS keeps the trust with a copy in the internal token.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil pk12util openssl gdb "$PYTHON3"

T=$TEST_TMP
DB=$T/db
make_nssdb "$DB"
PW=$T/p12.pass
printf 'Present trust 1\n' >"$PW"

# ec_cert NAME SUBJECT CA|leaf [ISSUER]: an EC P-256 key NAME.key and certificate NAME.crt,
# self-signed or signed by ISSUER (ISSUER.crt, ISSUER.key).
ec_cert() {
    local name=$1 subject=$2 kind=$3 issuer=${4:-}
    local ext=(-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign")
    [ "$kind" = leaf ] && ext=(-addext "basicConstraints=critical,CA:FALSE"
        -addext "keyUsage=critical,digitalSignature")
    if [ -z "$issuer" ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$name.key" \
            -out "$T/$name.crt" -days 30 -subj "$subject" "${ext[@]}" 2>/dev/null
    else
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$name.key" \
            -out "$T/$name.csr" -subj "$subject" "${ext[@]}" 2>/dev/null &&
            openssl x509 -req -in "$T/$name.csr" -CA "$T/$issuer.crt" -CAkey "$T/$issuer.key" \
                -CAcreateserial -days 30 -copy_extensions copyall -out "$T/$name.crt" 2>/dev/null
    fi
}

# p12_import DB NAME [TOKEN]: NAME.crt with NAME.key into DB (on TOKEN) with pk12util, which
# stores no trust object.
p12_import() {
    openssl pkcs12 -export -inkey "$T/$2.key" -in "$T/$2.crt" -name "$2" -passout "file:$PW" \
        -out "$T/$2.p12"
    pk12util -i "$T/$2.p12" -d "sql:$1" -k "$1.pass" -w "$PW" ${3:+-h "$3"} >/dev/null
}

# certutil_trust DB [TOKEN]: "nickname|trust" lines, as certutil -L shows them.
certutil_trust() {
    certutil -L -d "sql:$1" ${2:+-h "$2"} -f "$1.pass" | sed -n '5,$p' |
        sed 's/^\(.*[^ ]\) \{2,\}\([a-zA-Z]*,[a-zA-Z]*,[a-zA-Z]*\) *$/\1|\2/' | sort
}

# plan_trust FILE: "nickname|trust" of the plan's certificates (restore --dry-run --json).
plan_trust() {
    "$PYTHON3" -c 'import json,sys
for c in json.load(open(sys.argv[1]))["certificates"]:
    print("%s|%s" % (c["nickname"], c["trust"]))' "$1" | sort
}

# ---- the database: four kinds of certificate already present ----
printf 'y\n-1\ny\n' | certutil -S -x -d "sql:$DB" -f "$DB.pass" -z "$DB.noise" -n ca1 \
    -s "CN=Present CA1,O=EXAMPLE.TEST" -t CT,C,C -k ec -q nistp256 -Z SHA256 -v 24 -m 11 -2 \
    --keyUsage certSigning,crlSigning >/dev/null 2>&1
certutil -L -d "sql:$DB" -n ca1 -a >"$T/ca1.crt"
ec_cert ca2 "/CN=Present CA2/O=EXAMPLE.TEST" CA
p12_import "$DB" ca2
ec_cert ca3 "/CN=Present CA3/O=EXAMPLE.TEST" CA
certutil -A -d "sql:$DB" -f "$DB.pass" -n ca3 -t ",," -a -i "$T/ca3.crt"
ec_cert leaf "/CN=present.example.test/O=EXAMPLE.TEST" leaf ca3
p12_import "$DB" leaf
cat "$T/ca1.crt" "$T/ca2.crt" "$T/ca3.crt" >"$T/cas.pem"
F=$T/all.p12
openssl pkcs12 -export -inkey "$T/leaf.key" -in "$T/leaf.crt" -certfile "$T/cas.pem" -name leaf \
    -passout "file:$PW" -out "$F"

expect_equal "the database holds the four kinds as certutil -L shows them" \
    "ca1|CTu,Cu,Cu ca2|u,u,u ca3|,, leaf|u,u,u" "$(certutil_trust "$DB" | tr '\n' ' ' | sed 's/ $//')"

before=$(certutil_trust "$DB"; sha256sum "$DB"/cert9.db "$DB"/key4.db | cut -d' ' -f1)
run "$CABACK" restore -i "$F" -w "$PW" -d "$DB" -f "$DB.pass" --dry-run --json
check "a dry run into the database that holds the file (exit 0)" test "$STATUS" -eq 0
cp "$OUT" "$T/plan.json"
json_checks "every certificate is present" "$T/plan.json" \
    "sorted(c['action'] for c in r['certificates']) == ['skip'] * 4" \
    "all(c['trust_source'] == 'as in the database' for c in r['certificates'])" \
    "all(c['old_trust'] is None for c in r['certificates'])"
expect_equal "the plan shows each certificate's trust as certutil -L does" \
    "$(certutil_trust "$DB")" "$(plan_trust "$T/plan.json")"
json_checks "the trust, pinned" "$T/plan.json" \
    "{c['nickname']: c['trust'] for c in r['certificates']} == {'ca1': 'CTu,Cu,Cu', 'ca2': 'u,u,u', 'ca3': ',,', 'leaf': 'u,u,u'}"
expect_equal "the dry runs changed nothing" "$before" \
    "$(certutil_trust "$DB"; sha256sum "$DB"/cert9.db "$DB"/key4.db | cut -d' ' -f1)"

# ---- explicit trust is compared with what the database stores ----
# ca2 has no trust object: NSS used to report an implied "c" for it, so -t ca2=c,c, looked
# satisfied already and nothing was stored.
run "$CABACK" restore -i "$F" -w "$PW" -d "$DB" -f "$DB.pass" --dry-run --json -t "ca2=c,c,"
cp "$OUT" "$T/plan-t.json"
json_checks "-t ca2=c,c, on a CA without trust object" "$T/plan-t.json" \
    "[c['action'] for c in r['certificates'] if c['nickname'] == 'ca2'] == ['trust']" \
    "[c['old_trust'] for c in r['certificates'] if c['nickname'] == 'ca2'] == ['u,u,u']" \
    "[c['action'] for c in r['certificates'] if c['nickname'] != 'ca2'] == ['skip'] * 3"
run "$CABACK" restore -i "$F" -w "$PW" -d "$DB" -f "$DB.pass" -t "ca2=c,c," --no-progress
check "the restore with -t ca2=c,c, (exit 0)" test "$STATUS" -eq 0
expect_equal "certutil -L shows the trust -t asked for" "ca2|cu,cu,u" \
    "$(certutil_trust "$DB" | grep '^ca2|')"
expect_equal "... and the others as they were" "ca1|CTu,Cu,Cu ca3|,, leaf|u,u,u" \
    "$(certutil_trust "$DB" | grep -v '^ca2|' | tr '\n' ' ' | sed 's/ $//')"
run "$CABACK" restore -i "$F" -w "$PW" -d "$DB" -f "$DB.pass" --dry-run --json -t "ca2=c,c,"
cp "$OUT" "$T/plan-t2.json"
json_checks "the same -t again: nothing to do" "$T/plan-t2.json" \
    "sorted(c['action'] for c in r['certificates']) == ['skip'] * 4" \
    "{c['nickname']: c['trust'] for c in r['certificates']}['ca2'] == 'cu,cu,u'"

# ---- no search by value while planning ----
# PK11_FindCertFromDERCertItem, and PK11_FindCertInSlot for a certificate NSS did not read from
# that token (PK11_FindEncodedCertInSlot), search the token by value, which softoken answers by
# reading every certificate of the database: planning against a database holding n of the
# file's certificates took time in n^2 (2,000: 2.9 s; 5,000: 17.2 s). gdb counts those calls in
# a dry run; there must be none. Timing itself is make bench-scale's (case 10), never a test.
expect_equal "a dry run of 4 present certificates: exit 0, no token searched by value" \
    "exited normally 0" \
    "$(gdb_count_calls "PK11_FindCertFromDERCertItem PK11_FindEncodedCertInSlot" "$CABACK" restore \
        -i "$F" -w "$PW" -d "$DB" -f "$DB.pass" --dry-run)"

# ---- another token: trust kept with the internal token's copy ----
if find_softhsm_lib; then
    make_softhsm_token caback-hsm "$FIXTURE_DB_PASSWORD"
    HDB=$T/hdb
    make_nssdb "$HDB"
    modutil -dbdir "sql:$HDB" -add softhsm -libfile "$SOFTHSM_LIB" -force >/dev/null 2>&1
    printf 'internal=%s\nhardware-caback-hsm=%s\n' "$FIXTURE_DB_PASSWORD" "$FIXTURE_DB_PASSWORD" \
        >"$T/hsm.conf"
    run "$CABACK" restore -i "$F" -w "$PW" -d "$HDB" --token caback-hsm -f "$T/hsm.conf" \
        -t "Present CA1=CT,C,C" -t "Present CA2=,," --no-progress
    check "a restore into the token (exit 0)" test "$STATUS" -eq 0
    [ "$STATUS" -eq 0 ] || diag "$(head -c 3000 "$ERR")"
    hbefore=$(certutil_trust "$HDB" caback-hsm; certutil_trust "$HDB")
    run "$CABACK" restore -i "$F" -w "$PW" -d "$HDB" --token caback-hsm -f "$T/hsm.conf" \
        --dry-run --json
    check "a dry run of it again (exit 0)" test "$STATUS" -eq 0
    cp "$OUT" "$T/hplan.json"
    json_checks "on the token, every certificate is present" "$T/hplan.json" \
        "sorted(c['action'] for c in r['certificates']) == ['skip'] * 4" \
        "all(c['nickname'].startswith('caback-hsm:') for c in r['certificates'])"
    expect_equal "the plan shows the token's certificates as certutil -L -h does" \
        "$(certutil_trust "$HDB" caback-hsm)" "$(plan_trust "$T/hplan.json")"
    expect_equal "the dry run changed nothing" "$hbefore" \
        "$(certutil_trust "$HDB" caback-hsm; certutil_trust "$HDB")"
else
    skip "a restore into a SoftHSM2 token" "libsofthsm2.so not found"
fi

done_testing
