#!/bin/bash
# caback restore --token: the keys and certificates go to a PKCS#11 token (SoftHSM2), the trust
# flags to the database (NSS keeps them there), with the same key IDs; a second restore is a
# no-op; a failure in the middle leaves the token and the database as they were; a wrong
# database password (needed for the trust flags) changes nothing.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil modutil softhsm2-util "$PYTHON3"

SOFTHSM_LIB=
for lib in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so /usr/lib64/pkcs11/libsofthsm2.so \
    /usr/lib/*/pkcs11/libsofthsm2.so; do
    [ -f "$lib" ] && SOFTHSM_LIB=$lib && break
done
if [ -z "$SOFTHSM_LIB" ]; then
    echo "1..0 # SKIP libsofthsm2.so not found"
    exit 0
fi

SRC=$TEST_TMP/src
make_dogtag_ca "$SRC"
PW=$TEST_TMP/p12.pass
printf 'Token pass 1\n' >"$PW"
if "$CABACK" help backup >/dev/null 2>&1; then
    "$CABACK" backup -q -d "$SRC" -f "$SRC.pass" -o "$TEST_TMP/full.p12" -w "$PW" --iterations 2000
else
    pk12util -o "$TEST_TMP/full.p12" -n "caSigningCert cert-pki-ca" -d "sql:$SRC" -k "$SRC.pass" -w "$PW" >/dev/null
fi
F=$TEST_TMP/full.p12

export SOFTHSM2_CONF=$TEST_TMP/softhsm2.conf
mkdir "$TEST_TMP/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$TEST_TMP/tokens" >"$SOFTHSM2_CONF"
softhsm2-util --init-token --free --label caback-hsm --pin "$FIXTURE_DB_PASSWORD" --so-pin 5678 >/dev/null
DB=$TEST_TMP/db
make_nssdb "$DB"
modutil -dbdir "sql:$DB" -add softhsm -libfile "$SOFTHSM_LIB" -force >/dev/null 2>&1
printf 'internal=%s\nhardware-caback-hsm=%s\n' "$FIXTURE_DB_PASSWORD" "$FIXTURE_DB_PASSWORD" >"$TEST_TMP/password.conf"

token_keys() {
    certutil -K -d "sql:$DB" -h caback-hsm -f "$DB.pass" 2>/dev/null |
        sed -n 's/^<[ 0-9]*> *[a-z]* *\([0-9a-f]\{40\}\) *\(.*\)$/\1 \2/p' | sort
}
token_certs() {
    certutil -L -d "sql:$DB" -h caback-hsm -f "$DB.pass" | sed -n '5,$p' |
        sed 's/^\(.*[^ ]\) \{2,\}\([a-zA-Z]*,[a-zA-Z]*,[a-zA-Z]*\) *$/\1|\2/' | sort
}
want_keys=$(certutil_key_ids "$SRC" | sed 's/ NSS Certificate DB:/ caback-hsm:/' | sort)
want_certs=$(certutil -L -d "sql:$SRC" | sed -n '5,$p' |
    sed 's/^\(.*[^ ]\) \{2,\}\([a-zA-Z]*,[a-zA-Z]*,[a-zA-Z]*\) *$/caback-hsm:\1|\2/' | sort)
[ "$(echo "$want_keys" | wc -l)" -ge 1 ] || want_keys=x

# A failure at the 3rd step (the 2nd key's import, or a certificate for a single-key file):
# nothing stays on the token or in the database.
run env CABACK_TEST_RESTORE_FAIL_STEP=3 "$CABACK" restore -i "$F" -w "$PW" -d "$DB" --token caback-hsm -f "$TEST_TMP/password.conf"
expect_equal "a failure in the middle (exit 1, undone)" "1 1" "$STATUS $(grep -c 'every change of this run was undone' "$ERR")"
expect_equal "... leaves no key on the token" "" "$(token_keys)"
expect_equal "... and no certificate" "" "$(token_certs)"

printf 'internal=wrong\nhardware-caback-hsm=%s\n' "$FIXTURE_DB_PASSWORD" >"$TEST_TMP/bad.conf"
expect_status 3 "a wrong database password (needed for trust) is refused before any change" \
    "$CABACK" restore -i "$F" -w "$PW" -d "$DB" --token caback-hsm -f "$TEST_TMP/bad.conf"
expect_equal "... nothing on the token" "" "$(token_keys)"

expect_status 0 "restore --token into SoftHSM" "$CABACK" restore -i "$F" -w "$PW" -d "$DB" --token caback-hsm -f "$TEST_TMP/password.conf"
expect_equal "the keys are on the token with the source's key IDs" "$want_keys" "$(token_keys)"
expect_equal "the certificates are on the token with the source's trust flags" "$want_certs" "$(token_certs)"
expect_grep "the key IDs are printed for CS.cfg" '^ +cloning\.signing\.privkey\.id=' "$OUT"
expect_status 0 "a second restore --token" "$CABACK" restore -i "$F" -w "$PW" -d "$DB" --token caback-hsm -f "$TEST_TMP/password.conf"
expect_grep "... does nothing" 'Nothing to do' "$OUT"

done_testing
