#!/bin/bash
# doc/migrate.md, run as written: a Dogtag CA moves from an old host to a new one (two database
# folders standing for the two hosts). The commands below are the guide's, in its order, with the
# guide's paths replaced by this test's folders; at the end the new database must sign as the old
# one did.
. "$CABACK_SRCDIR/tests/lib.sh"
need certutil openssl

old=$TEST_TMP/old   # the old host's /var/lib/pki/pki-tomcat and /root
new=$TEST_TMP/new   # the new host's
mkdir -p "$old/ca/conf" "$new/ca/conf" "$new/root"
make_dogtag_ca "$old/alias"
cp "$old/alias.password.conf" "$old/password.conf"
make_cscfg "$old/alias" "$old/ca/conf/CS.cfg"
issue_cert "$old/alias" "Backup Signer" "CN=Backup Signer,O=EXAMPLE.TEST" "u,u,u" \
    --keyUsage digitalSignature,nonRepudiation --extKeyUsage emailProtection
(umask 077 && printf '%s\n' 'Migrate: the CA, 2026' >"$old/migrate.pass")

# ---- on the old host ----
expect_status 0 "1. backup --cscfg" "$CABACK" backup -d "$old/alias" -f "$old/password.conf" \
    --cscfg "$old/ca/conf/CS.cfg" -w "$old/migrate.pass" -o "$old/ca-migrate.p12"
expect_status 0 "2. sign" "$CABACK" sign "$old/ca-migrate.p12" --signer "Backup Signer" \
    -d "$old/alias" -f "$old/password.conf"
run certutil -L -d "sql:$old/alias" -n "$DOGTAG_CA_NICK" -a
cp "$OUT" "$old/ca.pem"
expect_equal "3. the CA certificate is exported" 0 "$STATUS"
old_fp=$(openssl x509 -in "$old/ca.pem" -noout -fingerprint -sha256)

# ---- transfer ----
cp "$old/ca-migrate.p12" "$old/ca-migrate.p12.sig" "$old/ca.pem" "$new/root/"
cp "$old/ca/conf/CS.cfg" "$new/ca/conf/CS.cfg"
cp "$old/migrate.pass" "$new/root/migrate.pass"
expect_equal "the fingerprints of ca.pem match on both hosts" "$old_fp" \
    "$(openssl x509 -in "$new/root/ca.pem" -noout -fingerprint -sha256)"

# ---- on the new host ----
printf 'internal=%s\n' 'New host DB pass' >"$new/password.conf"
expect_status 0 "4. verify-signature --ca" "$CABACK" verify-signature "$new/root/ca-migrate.p12" \
    --ca "$new/root/ca.pem"
expect_status 0 "5. restore --create --signature-ca" "$CABACK" restore -i "$new/root/ca-migrate.p12" \
    -w "$new/root/migrate.pass" --create -d "$new/alias" -f "$new/password.conf" \
    --signature-ca "$new/root/ca.pem"
expect_status 0 "6. fix-clone-ids finds every cloning entry right" "$CABACK" fix-clone-ids \
    "$new/ca/conf/CS.cfg" -d "$new/alias" -f "$new/password.conf"
expect_equal "6. CS.cfg is unchanged (its key IDs were already the restored keys')" \
    "$(sha256sum <"$old/ca/conf/CS.cfg")" "$(sha256sum <"$new/ca/conf/CS.cfg")"
expect_status 0 "7. verify against the new database" "$CABACK" verify "$new/root/ca-migrate.p12" \
    -w "$new/root/migrate.pass" -d "$new/alias" -f "$new/password.conf"

# ---- the new database is the old CA ----
# (--cscfg leaves the sslserver certificate out: the new host gets its own.)
old_keys=$(certutil_key_ids "$old/alias" | grep -v -e 'Backup Signer' -e 'Server-Cert')
printf '%s\n' 'New host DB pass' >"$new/alias.pass"
new_keys=$(certutil_key_ids "$new/alias")
expect_equal "the new database holds the old one's system keys, same IDs and nicknames" \
    "$old_keys" "$new_keys"
expect_equal "the CA certificate's trust flags came along" \
    "$(certutil -L -d "sql:$old/alias" | grep -F "$DOGTAG_CA_NICK")" \
    "$(certutil -L -d "sql:$new/alias" | grep -F "$DOGTAG_CA_NICK")"
# The new host signs with the CA's key; the old host's database checks it with its own trust.
echo "a test document, signed on the new host" >"$TEST_TMP/doc.txt"
expect_status 0 "the new host signs with the CA signing key" "$CABACK" sign "$TEST_TMP/doc.txt" \
    --signer "$DOGTAG_CA_NICK" -d "$new/alias" -f "$new/password.conf"
expect_status 0 "the old host's database verifies the new host's signature" \
    "$CABACK" verify-signature "$TEST_TMP/doc.txt" -d "$old/alias"
# And the same public key: both databases' CA certificates are one certificate.
expect_equal "the CA certificate is the same certificate" \
    "$(certutil -L -d "sql:$old/alias" -n "$DOGTAG_CA_NICK" -r | sha256sum)" \
    "$(certutil -L -d "sql:$new/alias" -n "$DOGTAG_CA_NICK" -r | sha256sum)"
done_testing
