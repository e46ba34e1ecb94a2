/* Unit tests for the PKCS#12 codec: writer -> reader round trips in every profile, the bag
 * attributes, the number of key derivations, wrong passwords, the password encodings of old
 * writers, damaged input (every truncation, bit flips: errors, never a crash), BER and trailing
 * bytes, files without MAC, and bag types the writer never makes (PBMAC1 is also checked against
 * an independent oracle by tests/test-pbmac1.sh). Keys come from a temporary NSS database made
 * with the real certutil. */
#include "config.h"

#include <caback/db.h>
#include <caback/error.h>
#include <caback/nss-util.h>
#include <caback/names.h>
#include <caback/p12.h>
#include <caback/secret.h>

#include "p12-asn1.h"
#include "p12-pbe.h"

#include <cryptohi.h>
#include <glib/gstdio.h>
#include <secerr.h>
#include <string.h>

#define CA_NICK "CA \xc3\x9cn\xc3\xaf \xe2\x98\x83" /* "CA Ünï ☃": non-ASCII friendly name */
#define EC_NICK "ec server"
#define P12_PASSWORD "s3cret p\xc3\xa4ss" /* non-ASCII: "s3cret päss" */

static char *tmpdir;
static CabackDb *db;

typedef struct {
    CERTCertificate *cert;
    SECKEYPrivateKey *key;
    SECItem *id;
    const char *nick;
    const char *trust;
} Entry;

static Entry entries[2];

/* ---- fixture ---- */

static gboolean sh(const char *command)
{
    g_autofree char *quoted = g_shell_quote(command);
    g_autofree char *line = g_strdup_printf("/bin/sh -c %s", quoted);
    g_autofree char *out = NULL, *err = NULL;
    int status = 0;
    if (!g_spawn_command_line_sync(line, &out, &err, &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL)) {
        g_printerr("# command failed: %s\n# %s\n", command, err != NULL ? err : "");
        return FALSE;
    }
    return TRUE;
}

static gboolean make_database(void)
{
    g_autofree char *certutil = g_find_program_in_path("certutil");
    if (certutil == NULL)
        return FALSE;
    tmpdir = g_dir_make_tmp("test-p12-XXXXXX", NULL);
    g_autofree char *dbdir = g_build_filename(tmpdir, "db", NULL);
    g_autofree char *pass = g_build_filename(tmpdir, "db.pass", NULL);
    g_autofree char *noise = g_build_filename(tmpdir, "noise", NULL);
    g_mkdir(dbdir, 0700);
    g_file_set_contents(pass, "db pass\n", -1, NULL);
    guint8 random[256];
    for (gsize i = 0; i < sizeof(random); i++)
        random[i] = (guint8)g_random_int();
    g_file_set_contents(noise, (const char *)random, sizeof(random), NULL);
    g_autofree char *q_db = g_shell_quote(dbdir);
    g_autofree char *q_pass = g_shell_quote(pass);
    g_autofree char *q_noise = g_shell_quote(noise);
    g_autofree char *q_ca = g_shell_quote(CA_NICK);
    g_autofree char *c1 = g_strdup_printf("certutil -N -d sql:%s -f %s", q_db, q_pass);
    g_autofree char *c2 = g_strdup_printf(
        "certutil -S -x -d sql:%s -f %s -z %s -n %s -s 'CN=Test CA' -t CTu,Cu,Cu -k rsa -g 2048 "
        "-Z SHA256 -v 12 -m 1 >/dev/null 2>&1",
        q_db, q_pass, q_noise, q_ca);
    g_autofree char *c3 = g_strdup_printf("certutil -S -d sql:%s -f %s -z %s -c %s -n '" EC_NICK
                                          "' -s 'CN=ec.example' -t u,u,u "
                                          "-k ec -q nistp256 -Z SHA256 -v 12 -m 2 >/dev/null 2>&1",
                                          q_db, q_pass, q_noise, q_ca);
    if (!sh(c1) || !sh(c2) || !sh(c3))
        return FALSE;

    CabackDbOptions options = {0};
    options.dbdir = dbdir;
    options.password.file = pass;
    options.password.no_prompt = TRUE;
    g_autoptr(GError) error = NULL;
    db = caback_db_open(&options, &error);
    g_assert_no_error(error);
    g_assert_true(caback_db_login(db, &error));

    const char *nicks[2] = {CA_NICK, EC_NICK};
    const char *trusts[2] = {"CTu,Cu,Cu", "u,u,u"};
    for (int i = 0; i < 2; i++) {
        entries[i].nick = nicks[i];
        entries[i].trust = trusts[i];
        entries[i].cert = PK11_FindCertFromNickname(nicks[i], db);
        g_assert_nonnull(entries[i].cert);
        entries[i].key = PK11_FindKeyByAnyCert(entries[i].cert, db);
        g_assert_nonnull(entries[i].key);
        entries[i].id = PK11_GetLowLevelKeyIDForPrivateKey(entries[i].key);
        g_assert_nonnull(entries[i].id);
    }
    return TRUE;
}

static void free_database(void)
{
    for (int i = 0; i < 2; i++) {
        g_clear_pointer(&entries[i].cert, CERT_DestroyCertificate);
        g_clear_pointer(&entries[i].key, SECKEY_DestroyPrivateKey);
        if (entries[i].id != NULL)
            SECITEM_FreeItem(entries[i].id, PR_TRUE);
    }
    if (db != NULL) {
        g_autoptr(GError) error = NULL;
        gboolean clean = caback_db_close(db, &error);
        if (!clean)
            g_printerr("# %s\n", error->message);
        g_assert_true(clean); /* no NSS reference leaked by the codec */
    }
    if (tmpdir != NULL) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
        (void)sh(cmd);
        g_free(tmpdir);
    }
}

#define NEED_DB()                                                                                  \
    do {                                                                                           \
        if (db == NULL) {                                                                          \
            g_test_skip("certutil is not installed");                                              \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static CabackSecret *secret(const char *s)
{
    return caback_secret_new(s, strlen(s));
}

/* ---- writing helpers ---- */

/* Write a file with @n_keys keys (entries in turn) and their certificates. */
static GBytes *write_file(CabackP12Profile profile, CabackP12MacKind mac, guint iterations,
                          int n_keys, gboolean with_certs, const char *password)
{
    CabackP12WriteOptions options = {profile, mac, iterations};
    g_autoptr(CabackSecret) pw = secret(password);
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackP12Writer) w = caback_p12_writer_new(&options, pw, &error);
    g_assert_no_error(error);
    for (int i = 0; i < n_keys; i++) {
        Entry *e = &entries[i % 2];
        g_autofree char *name = i < 2 ? g_strdup(e->nick) : g_strdup_printf("%s %d", e->nick, i);
        g_assert_true(caback_p12_writer_add_key(w, e->key, name, e->id, db, &error));
        g_assert_no_error(error);
        if (with_certs) {
            g_assert_true(caback_p12_writer_add_cert(w, e->cert, name, e->id, e->trust, &error));
            g_assert_no_error(error);
        }
    }
    GBytes *bytes = caback_p12_writer_finish(w, &error);
    g_assert_no_error(error);
    g_assert_nonnull(bytes);
    /* The writer cannot be reused. */
    g_assert_null(caback_p12_writer_finish(w, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_FAILED);
    return bytes;
}

static CabackP12File *read_bytes(GBytes *bytes, const char *password, GError **error)
{
    g_autoptr(CabackSecret) pw = password != NULL ? secret(password) : NULL;
    gsize len;
    const guint8 *data = g_bytes_get_data(bytes, &len);
    return caback_p12_read(data, len, pw, "test.p12", error);
}

static gboolean bytes_equal_item(GBytes *b, const SECItem *item)
{
    gsize len;
    const guint8 *d = g_bytes_get_data(b, &len);
    return b != NULL && len == item->len && memcmp(d, item->data, len) == 0;
}

static Entry *entry_for(const char *name)
{
    for (int i = 0; i < 2; i++)
        if (g_str_has_prefix(name, entries[i].nick))
            return &entries[i];
    g_assert_not_reached();
    return NULL;
}

static const char *warning_matching(const CabackP12Info *info, const char *needle)
{
    for (guint i = 0; i < info->warnings->len; i++)
        if (strstr(info->warnings->pdata[i], needle) != NULL)
            return info->warnings->pdata[i];
    return NULL;
}

/* The public value NSS makes CKA_ID from (RSA modulus, EC point), as restore passes it. */
static SECItem *public_value(CERTCertificate *cert, SECKEYPublicKey **pub_out)
{
    SECKEYPublicKey *pub = CERT_ExtractPublicKey(cert);
    g_assert_nonnull(pub);
    *pub_out = pub;
    switch (pub->keyType) {
    case rsaKey:
        return &pub->u.rsa.modulus;
    case ecKey:
        return &pub->u.ec.publicValue;
    default:
        g_assert_not_reached();
        return NULL;
    }
}

/* Sign with @priv and verify with @cert's public key: the imported key is the right one. */
static void assert_pair(SECKEYPrivateKey *priv, CERTCertificate *cert)
{
    static const guint8 msg[] = "caback pairs this key with its certificate";
    g_autoptr(SECKEYPublicKey) pub = CERT_ExtractPublicKey(cert);
    SECOidTag alg = SEC_GetSignatureAlgorithmOidTag(priv->keyType, SEC_OID_SHA256);
    SECItem sig = {siBuffer, NULL, 0};
    g_assert_cmpint(SEC_SignData(&sig, msg, sizeof(msg), priv, alg), ==, SECSuccess);
    g_assert_cmpint(VFY_VerifyData(msg, sizeof(msg), pub, &sig, alg, NULL), ==, SECSuccess);
    SECITEM_FreeItem(&sig, PR_FALSE);
}

/* Read @bytes and check every bag against the database entries; import and describe each key
 * in a session, checking that it pairs with its certificate. */
static void check_round_trip(GBytes *bytes, int n_keys, const char *mac_prefix,
                             const char *protection_prefix)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackP12File) file = read_bytes(bytes, P12_PASSWORD, &error);
    g_assert_no_error(error);
    const CabackP12Info *info = caback_p12_file_info(file);
    g_assert_nonnull(info->mac);
    g_assert_true(g_str_has_prefix(info->mac, mac_prefix));
    g_assert_cmpuint(info->warnings->len, ==, 0);

    GPtrArray *certs = caback_p12_file_certs(file);
    GPtrArray *keys = caback_p12_file_keys(file);
    g_assert_cmpuint(certs->len, ==, n_keys);
    g_assert_cmpuint(keys->len, ==, n_keys);
    g_assert_cmpuint(caback_p12_file_crls(file)->len, ==, 0);

    for (guint i = 0; i < certs->len; i++) {
        CabackP12Cert *c = certs->pdata[i];
        Entry *e = entry_for(c->attrs.friendly_name);
        g_assert_true(bytes_equal_item(c->der, &e->cert->derCert));
        g_assert_true(bytes_equal_item(c->attrs.local_key_id, e->id));
        g_assert_cmpstr(c->attrs.trust_flags, ==, e->trust);
        g_assert_true(g_str_has_prefix(c->protection, protection_prefix));
    }
    g_autoptr(PK11SlotInfo) slot = PK11_GetInternalSlot();
    for (guint i = 0; i < keys->len; i++) {
        CabackP12Key *k = keys->pdata[i];
        Entry *e = entry_for(k->attrs.friendly_name);
        g_assert_true(k->shrouded);
        g_assert_cmpint(k->index, ==, i);
        g_assert_true(bytes_equal_item(k->attrs.local_key_id, e->id));
        g_assert_null(k->attrs.trust_flags);
        g_assert_true(g_str_has_prefix(k->protection, protection_prefix));

        KeyType type;
        guint bits;
        g_assert_true(caback_p12_key_describe(file, k, slot, &type, &bits, &error));
        g_assert_no_error(error);
        g_assert_cmpint(type, ==, e->key->keyType);
        g_assert_cmpuint(bits, ==, e->key->keyType == rsaKey ? 2048 : 256);
        g_assert_cmpstr(k->algorithm_oid, ==,
                        e->key->keyType == rsaKey ? "1.2.840.113549.1.1.1" : "1.2.840.10045.2.1");

        SECKEYPublicKey *pub = NULL;
        SECItem *value = public_value(e->cert, &pub);
        SECKEYPrivateKey *priv = caback_p12_key_import(file, k, slot, k->attrs.friendly_name, value,
                                                       FALSE, TRUE, NULL, &error);
        g_assert_no_error(error);
        g_assert_nonnull(priv);
        /* CKA_ID is derived from the public value, as in the source database. */
        g_autoptr(SECItem) id = PK11_GetLowLevelKeyIDForPrivateKey(priv);
        g_assert_true(SECITEM_ItemsAreEqual(id, e->id));
        g_autofree char *label = PK11_GetPrivateKeyNickname(priv);
        g_assert_cmpstr(label, ==, k->attrs.friendly_name);
        assert_pair(priv, e->cert);
        caback_p12_key_discard(priv);
        SECKEY_DestroyPublicKey(pub);
    }
}

/* ---- round trips ---- */

static void test_modern(void)
{
    NEED_DB();
    g_autoptr(GBytes) bytes =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000, 2, TRUE, P12_PASSWORD);
    check_round_trip(bytes, 2, "HMAC-SHA256, 1000 iterations",
                     "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), 1000 iterations");
}

static void test_legacy(void)
{
    NEED_DB();
    g_autoptr(GBytes) bytes =
        write_file(CABACK_P12_LEGACY, CABACK_P12_MAC_HMAC, 0, 2, TRUE, P12_PASSWORD);
    check_round_trip(bytes, 2, "HMAC-SHA1, 2048 iterations", "PBE-SHA1-3DES, 2048 iterations");
}

/* RFC 9579's rules for what caback writes: PBKDF2 with salt, iteration count, the required
 * keyLength (32) and HMAC-SHA256 as PRF; HMAC-SHA256 as messageAuthScheme; a 32-byte MAC. */
static void test_pbmac1(void)
{
    NEED_DB();
    g_autoptr(GBytes) bytes =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_PBMAC1, 1000, 2, TRUE, P12_PASSWORD);
    check_round_trip(bytes, 2, "PBMAC1 (PBKDF2-HMAC-SHA256, HMAC-SHA256), 1000 iterations",
                     "PBES2");

    g_autoptr(PLArenaPool) arena = PORT_NewArena(1024);
    P12Pfx pfx;
    memset(&pfx, 0, sizeof(pfx));
    SECItem der = {siBuffer, (unsigned char *)g_bytes_get_data(bytes, NULL),
                   (unsigned int)g_bytes_get_size(bytes)};
    g_assert_cmpint(SEC_QuickDERDecodeItem(arena, &pfx, p12_pfx_template, &der), ==, SECSuccess);
    g_assert_nonnull(pfx.mac_data);
    g_assert_true(p12_oid_is(&pfx.mac_data->mac.algorithm.algorithm, SEC_OID_PKCS5_PBMAC1));
    g_assert_cmpuint(pfx.mac_data->mac.digest.len, ==, 32);
    P12Pbes2Params params;
    memset(&params, 0, sizeof(params));
    g_assert_cmpint(SEC_ASN1DecodeItem(arena, &params, p12_pbes2_params_template,
                                       &pfx.mac_data->mac.algorithm.parameters),
                    ==, SECSuccess);
    g_assert_true(p12_oid_is(&params.kdf.algorithm, SEC_OID_PKCS5_PBKDF2));
    g_assert_true(p12_oid_is(&params.scheme.algorithm, SEC_OID_HMAC_SHA256));
    P12Pbkdf2Params kdf;
    memset(&kdf, 0, sizeof(kdf));
    g_assert_cmpint(
        SEC_ASN1DecodeItem(arena, &kdf, p12_pbkdf2_params_template, &params.kdf.parameters), ==,
        SECSuccess);
    guint64 v = 0;
    g_assert_true(p12_uint_get(&kdf.key_length, 1000, &v));
    g_assert_cmpuint(v, ==, 32);
    g_assert_true(p12_uint_get(&kdf.iterations, G_MAXUINT64, &v));
    g_assert_cmpuint(v, ==, 1000);
    g_assert_cmpuint(kdf.salt.len, ==, 16);
    g_assert_nonnull(kdf.prf);
    g_assert_true(p12_oid_is(&kdf.prf->algorithm, SEC_OID_HMAC_SHA256));
}

/* The default count, and the cost of a backup: two derivations whatever the number of keys,
 * two more to read it all back. */
static void test_default_iterations_and_cost(void)
{
    NEED_DB();
    guint before = caback_p12_derivations();
    g_autoptr(GBytes) bytes =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 0, 5, TRUE, P12_PASSWORD);
    g_assert_cmpuint(caback_p12_derivations() - before, ==, 2);

    before = caback_p12_derivations();
    check_round_trip(bytes, 5, "HMAC-SHA256, 600000 iterations",
                     "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), 600000 iterations");
    g_assert_cmpuint(caback_p12_derivations() - before, ==, 2);
}

static void test_key_only_and_cert_only(void)
{
    NEED_DB();
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) keys =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000, 2, FALSE, P12_PASSWORD);
    g_autoptr(CabackP12File) kf = read_bytes(keys, P12_PASSWORD, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(caback_p12_file_keys(kf)->len, ==, 2);
    g_assert_cmpuint(caback_p12_file_certs(kf)->len, ==, 0);
    g_assert_cmpuint(caback_p12_file_info(kf)->safes->len, ==, 1);
    g_assert_cmpstr(caback_p12_file_info(kf)->safes->pdata[0], ==, "plain");

    CabackP12WriteOptions options = {CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000};
    g_autoptr(CabackSecret) pw = secret(P12_PASSWORD);
    g_autoptr(CabackP12Writer) w = caback_p12_writer_new(&options, pw, &error);
    g_assert_true(caback_p12_writer_add_cert(w, entries[0].cert, NULL, NULL, NULL, &error));
    g_autoptr(GBytes) certs = caback_p12_writer_finish(w, &error);
    g_assert_no_error(error);
    g_autoptr(CabackP12File) cf = read_bytes(certs, P12_PASSWORD, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(caback_p12_file_keys(cf)->len, ==, 0);
    g_assert_cmpuint(caback_p12_file_certs(cf)->len, ==, 1);
    CabackP12Cert *c = caback_p12_file_certs(cf)->pdata[0];
    g_assert_null(c->attrs.friendly_name);
    g_assert_null(c->attrs.local_key_id);
    g_assert_null(c->attrs.trust_flags);
}

static void test_not_extractable_import(void)
{
    NEED_DB();
    g_autoptr(GBytes) bytes =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000, 1, TRUE, P12_PASSWORD);
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackP12File) file = read_bytes(bytes, P12_PASSWORD, &error);
    g_assert_no_error(error);
    CabackP12Key *k = caback_p12_file_keys(file)->pdata[0];
    g_autoptr(PK11SlotInfo) slot = PK11_GetInternalSlot();
    SECKEYPublicKey *pub = NULL;
    SECItem *value = public_value(entries[0].cert, &pub);
    SECKEYPrivateKey *priv =
        caback_p12_key_import(file, k, slot, NULL, value, FALSE, FALSE, NULL, &error);
    g_assert_no_error(error);
    SECItem attr = {siBuffer, NULL, 0};
    g_assert_cmpint(PK11_ReadRawAttribute(PK11_TypePrivKey, priv, CKA_EXTRACTABLE, &attr), ==,
                    SECSuccess);
    g_assert_cmpuint(attr.len, ==, 1);
    g_assert_cmpuint(attr.data[0], ==, 0);
    SECITEM_FreeItem(&attr, PR_FALSE);
    assert_pair(priv, entries[0].cert);
    caback_p12_key_discard(priv);

    /* The writer refuses such a key with the not-exportable code. */
    CabackP12WriteOptions options = {CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000};
    g_autoptr(CabackSecret) pw = secret(P12_PASSWORD);
    g_autoptr(CabackP12Writer) w = caback_p12_writer_new(&options, pw, &error);
    priv = caback_p12_key_import(file, k, slot, NULL, value, FALSE, FALSE, NULL, &error);
    g_assert_no_error(error);
    g_assert_false(caback_p12_writer_add_key(w, priv, "locked", NULL, NULL, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_NOT_EXPORTABLE);
    g_assert_nonnull(strstr(error->message, "locked"));
    caback_p12_key_discard(priv);
    SECKEY_DestroyPublicKey(pub);
}

static void test_writer_refusals(void)
{
    g_autoptr(GError) error = NULL;
    CabackP12WriteOptions options = {CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000};
    g_autoptr(CabackSecret) empty = secret("");
    g_assert_null(caback_p12_writer_new(&options, empty, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    g_clear_error(&error);
    g_assert_null(caback_p12_writer_new(&options, NULL, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    g_clear_error(&error);
    g_autoptr(CabackSecret) latin1 = caback_secret_new("p\xe4ss", 4);
    g_assert_null(caback_p12_writer_new(&options, latin1, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    g_clear_error(&error);
    options.iterations = P12_MAX_ITERATIONS + 1;
    g_autoptr(CabackSecret) pw = secret("x");
    g_assert_null(caback_p12_writer_new(&options, pw, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
}

/* ---- derivations ahead of time ---- */

/* Write @bytes to a file of the temporary folder; returns its path. */
static char *save_file(GBytes *bytes, const char *name)
{
    char *path = g_build_filename(tmpdir, name, NULL);
    gsize len;
    const guint8 *data = g_bytes_get_data(bytes, &len);
    g_assert_true(g_file_set_contents(path, (const char *)data, (gssize)len, NULL));
    return path;
}

/* caback_p12_writer_prepare_verify: reading the file back costs derivations of its own (the
 * writer's keys are not lent to the reader), they serve only the file they were made for and
 * the password they were derived from, and a damaged MAC is still caught with them. */
static void test_verify_ahead(void)
{
    NEED_DB();
    g_autoptr(GError) error = NULL;
    CabackP12WriteOptions options = {CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 20000};
    g_autoptr(CabackSecret) pw = secret(P12_PASSWORD);
    guint before = caback_p12_derivations();
    g_autoptr(CabackP12Writer) w = caback_p12_writer_new(&options, pw, &error);
    g_assert_no_error(error);
    caback_p12_writer_prepare_verify(w);
    for (int i = 0; i < 2; i++) {
        g_assert_true(caback_p12_writer_add_key(w, entries[i].key, entries[i].nick, entries[i].id,
                                                db, &error));
        g_assert_true(caback_p12_writer_add_cert(w, entries[i].cert, entries[i].nick,
                                                 entries[i].id, entries[i].trust, &error));
    }
    g_autoptr(GBytes) bytes = caback_p12_writer_finish(w, &error);
    g_assert_no_error(error);
    g_autofree char *path = save_file(bytes, "ahead.p12");

    g_autoptr(CabackP12File) file = caback_p12_read_file_verify(path, pw, w, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(caback_p12_file_keys(file)->len, ==, 2);
    g_assert_cmpuint(caback_p12_file_certs(file)->len, ==, 2);
    g_autoptr(PK11SlotInfo) slot = PK11_GetInternalSlot();
    for (int i = 0; i < 2; i++) {
        CabackP12Key *k = caback_p12_file_keys(file)->pdata[i];
        Entry *e = entry_for(k->attrs.friendly_name);
        SECKEYPublicKey *pub = NULL;
        SECItem *value = public_value(e->cert, &pub);
        SECKEYPrivateKey *priv =
            caback_p12_key_import(file, k, slot, NULL, value, FALSE, FALSE, NULL, &error);
        g_assert_no_error(error);
        assert_pair(priv, e->cert);
        caback_p12_key_discard(priv);
        SECKEY_DestroyPublicKey(pub);
    }
    /* Two to write (PBES2, MAC), two more to read back: none shared. */
    g_assert_cmpuint(caback_p12_derivations() - before, ==, 4);

    /* Another password derives its own keys and fails the MAC. */
    g_autoptr(CabackSecret) wrong = secret("not the password");
    g_assert_null(caback_p12_read_file_verify(path, wrong, w, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD);
    g_clear_error(&error);

    /* A damaged MAC is caught with the keys derived ahead. */
    gsize len = 0;
    const guint8 *data = g_bytes_get_data(bytes, &len);
    g_autofree guint8 *copy = g_memdup2(data, len);
    copy[len - 40] ^= 0x01; /* inside the MAC value, near the end of the PFX */
    g_autoptr(GBytes) damaged_bytes = g_bytes_new(copy, len);
    g_autofree char *damaged = save_file(damaged_bytes, "ahead-damaged.p12");
    g_autoptr(CabackP12File) bad = caback_p12_read_file_verify(damaged, pw, w, &error);
    g_assert_null(bad);
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD); /* "MAC check failed" */
    g_clear_error(&error);

    /* Another file (other salts) read with this writer's keys: derived afresh, and it opens. */
    g_autoptr(GBytes) other =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000, 1, TRUE, P12_PASSWORD);
    g_autofree char *other_path = save_file(other, "other.p12");
    before = caback_p12_derivations();
    g_autoptr(CabackP12File) of = caback_p12_read_file_verify(other_path, pw, w, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(caback_p12_file_keys(of)->len, ==, 1);
    g_assert_cmpuint(caback_p12_derivations() - before, ==, 2);
}

/* A writer dropped before it is used (a backup that stops at its selection) ends its
 * background derivations cleanly. */
static void test_writer_dropped(void)
{
    g_autoptr(GError) error = NULL;
    CabackP12WriteOptions options = {CABACK_P12_MODERN, CABACK_P12_MAC_PBMAC1, 20000};
    g_autoptr(CabackSecret) pw = secret(P12_PASSWORD);
    for (int i = 0; i < 3; i++) {
        CabackP12Writer *w = caback_p12_writer_new(&options, pw, &error);
        g_assert_no_error(error);
        if (i > 0)
            caback_p12_writer_prepare_verify(w);
        caback_p12_writer_free(w);
    }
}

/* Threads asking for the same key at once share one derivation. */
static void test_key_cache_shared(void)
{
    g_autoptr(GError) error = NULL;
    guint8 salt_bytes[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    SECItem salt = {siBuffer, salt_bytes, sizeof(salt_bytes)};
    SECAlgorithmID *alg = PK11_CreatePBEV2AlgorithmID(SEC_OID_PKCS5_PBES2, SEC_OID_AES_256_CBC,
                                                      SEC_OID_HMAC_SHA256, 32, 50000, &salt);
    g_assert_nonnull(alg);
    P12PbeInfo info;
    g_assert_true(p12_pbe_info_parse(alg, &info, &error));
    g_autoptr(P12Passwords) passwords = p12_passwords_new(P12_PASSWORD, strlen(P12_PASSWORD));
    const SECItem *pw = passwords->variants[0].pbkdf2[0];
    g_autoptr(P12KeyCache) cache = p12_key_cache_new();

    guint before = caback_p12_derivations();
    P12Jobs *jobs = p12_jobs_new();
    for (int i = 0; i < 4; i++)
        p12_jobs_add_pbe(jobs, cache, pw, alg, &info);
    CK_MECHANISM_TYPE mech;
    g_autoptr(SECItem) param = NULL;
    g_autoptr(PK11SymKey) key = p12_pbe_key(cache, pw, alg, &info, &mech, &param, &error);
    g_assert_no_error(error);
    g_assert_nonnull(key);
    g_assert_true(p12_key_cache_ready(cache, pw, info.cache_id));
    p12_jobs_free(jobs, FALSE);
    g_assert_cmpuint(caback_p12_derivations() - before, ==, 1);

    /* Other password bytes are another key. */
    const SECItem *bmp = passwords->variants[0].bmp;
    g_assert_false(p12_key_cache_ready(cache, bmp, info.cache_id));
    p12_pbe_info_clear(&info);
    SECOID_DestroyAlgorithmID(alg, PR_TRUE);
}

/* ---- passwords ---- */

static void test_wrong_password(void)
{
    NEED_DB();
    g_autoptr(GBytes) bytes =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000, 1, TRUE, P12_PASSWORD);
    const char *wrong[] = {"s3cret pass", "", NULL};
    for (int i = 0; i < 3; i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(CabackP12File) file = read_bytes(bytes, wrong[i], &error);
        g_assert_null(file);
        g_assert_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD);
        g_assert_nonnull(strstr(error->message, "wrong password for test.p12 (MAC check failed)"));
        g_assert_cmpint(caback_error_exit_code(error), ==, CABACK_EXIT_BAD_PASSWORD);
    }
}

static GBytes *strip_mac(GBytes *bytes);

/* The password is checked first: with a MAC, a wrong password costs the MAC's derivation only
 * (the safes' and keys' keys are not derived); without a MAC, the first safe's derivations (the
 * UTF-8 and, for files of NSS < 3.31, the BMPString encoding), not one per safe or key. */
static void test_wrong_password_costs_one_derivation(void)
{
    NEED_DB();
    g_autoptr(GBytes) bytes =
        write_file(CABACK_P12_LEGACY, CABACK_P12_MAC_HMAC, 1000, 2, TRUE, P12_PASSWORD);
    g_autoptr(GError) error = NULL;
    guint before = caback_p12_derivations();
    g_autoptr(CabackP12File) file = read_bytes(bytes, "wrong pass", &error);
    g_assert_null(file);
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD);
    g_assert_cmpuint(caback_p12_derivations() - before, ==, 1);
    g_clear_error(&error);

    g_autoptr(GBytes) full =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000, 2, TRUE, P12_PASSWORD);
    g_autoptr(GBytes) nomac = strip_mac(full);
    before = caback_p12_derivations();
    g_autoptr(CabackP12File) bad = read_bytes(nomac, "wrong pass", &error);
    g_assert_null(bad);
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD);
    g_assert_cmpuint(caback_p12_derivations() - before, <=, 2);
}

/* The work of one file's distinct derivations is capped: a modern file of 1,000 iterations
 * derives two keys (MAC, shared PBES2 key), 2,000 iterations in all; below that the file is
 * refused before any derivation, with the figure; at it, read. */
static void test_kdf_work_cap(void)
{
    NEED_DB();
    g_autoptr(GBytes) bytes =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000, 2, TRUE, P12_PASSWORD);
    CabackP12Limits saved, limits = {0, 1999};
    caback_p12_limits_get(&saved);
    caback_p12_limits_set(&limits);
    g_autoptr(GError) error = NULL;
    guint before = caback_p12_derivations();
    g_autoptr(CabackP12File) refused = read_bytes(bytes, P12_PASSWORD, &error);
    g_assert_null(refused);
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12);
    g_assert_nonnull(strstr(error->message, "2000 key-derivation iterations"));
    g_assert_nonnull(strstr(error->message, "limit of 1999"));
    g_assert_nonnull(strstr(error->message, "--max-kdf-work 2000"));
    g_assert_cmpuint(caback_p12_derivations() - before, ==, 0);
    g_clear_error(&error);

    limits.max_kdf_work = 2000;
    caback_p12_limits_set(&limits);
    g_autoptr(CabackP12File) file = read_bytes(bytes, P12_PASSWORD, &error);
    g_assert_no_error(error);
    CabackP12Key *k = caback_p12_file_keys(file)->pdata[1];
    KeyType type;
    guint bits;
    g_assert_true(caback_p12_key_describe(file, k, NULL, &type, &bits, &error));
    g_assert_no_error(error);
    caback_p12_limits_set(&saved);

    /* The input size limit, on bytes in memory too. */
    CabackP12Limits small = {g_bytes_get_size(bytes) - 1, 0};
    caback_p12_limits_set(&small);
    g_autoptr(CabackP12File) big = read_bytes(bytes, P12_PASSWORD, &error);
    g_assert_null(big);
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12);
    g_autofree char *sizes = g_strdup_printf("%" G_GSIZE_FORMAT " bytes, above caback's limit of "
                                             "%" G_GSIZE_FORMAT " bytes",
                                             g_bytes_get_size(bytes), g_bytes_get_size(bytes) - 1);
    g_assert_nonnull(strstr(error->message, sizes));
    caback_p12_limits_set(&saved);
}

/* The account itself: each (password, parameters) pair charged once, all or none, scrypt
 * priced as 2·N·r·p, saturating instead of wrapping. */
static void test_kdf_charge(void)
{
    CabackP12Limits saved, limits = {0, 1000};
    caback_p12_limits_get(&saved);
    caback_p12_limits_set(&limits);
    g_autoptr(P12KeyCache) cache = p12_key_cache_new();
    caback_p12_limits_set(&saved);
    guint8 a_bytes[] = "pass A", b_bytes[] = "pass B";
    SECItem a = {siBuffer, a_bytes, 6}, b = {siBuffer, b_bytes, 6};
    g_autoptr(GBytes) id1 = g_bytes_new_static("id-1", 4);
    g_autoptr(GBytes) id2 = g_bytes_new_static("id-2", 4);
    g_autoptr(GError) error = NULL;

    P12KdfCharge first[] = {{&a, id1, 400}, {&a, id1, 400}};
    g_assert_true(p12_kdf_charge(cache, first, 2, "test", &error));
    g_assert_cmpuint(p12_kdf_spent(cache), ==, 400);
    g_assert_true(p12_kdf_charge(cache, first, 1, "test", &error));
    g_assert_cmpuint(p12_kdf_spent(cache), ==, 400);
    /* Another password is another derivation. */
    P12KdfCharge second[] = {{&b, id1, 400}, {&a, id2, 400}};
    g_assert_false(p12_kdf_charge(cache, second, 2, "the keys of test", &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12);
    g_assert_nonnull(strstr(error->message, "deriving the keys of test would take 1200"));
    g_assert_cmpuint(p12_kdf_spent(cache), ==, 400);
    g_clear_error(&error);
    g_assert_true(p12_kdf_charge(cache, second, 1, "test", &error));
    g_assert_cmpuint(p12_kdf_spent(cache), ==, 800);
    P12KdfCharge huge[] = {{&a, id2, G_MAXUINT64}};
    g_assert_false(p12_kdf_charge(cache, huge, 1, "test", &error));
    g_assert_nonnull(strstr(error->message, "at least 18446744073709551615"));
    g_clear_error(&error);

    g_assert_cmpuint(p12_kdf_work_iterations(600000), ==, 600000);
    g_assert_cmpuint(p12_kdf_work_scrypt(16384, 8, 1), ==, 262144);
    g_assert_cmpuint(p12_kdf_work_scrypt(G_GUINT64_CONSTANT(1) << 62, 8, 1), ==, G_MAXUINT64);
}

/* OpenSSL 1.0.2 widened each byte of the UTF-8 password into one BMP character. A file whose
 * PKCS#12 KDF saw that is, byte for byte, a file written with the password read as Latin-1
 * ("pÃ¤ss" for "päss"): the legacy profile uses only the PKCS#12 KDF, so it makes one. */
static void test_openssl_102_password(void)
{
    NEED_DB();
    g_autofree char *mojibake =
        g_convert(P12_PASSWORD, -1, "UTF-8", "ISO-8859-1", NULL, NULL, NULL);
    g_autoptr(GBytes) bytes =
        write_file(CABACK_P12_LEGACY, CABACK_P12_MAC_HMAC, 0, 2, TRUE, mojibake);
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackP12File) file = read_bytes(bytes, P12_PASSWORD, &error);
    g_assert_no_error(error);
    g_assert_nonnull(warning_matching(caback_p12_file_info(file), "OpenSSL 1.0.2"));
    g_assert_cmpuint(caback_p12_file_certs(file)->len, ==, 2);
    CabackP12Key *k = caback_p12_file_keys(file)->pdata[0];
    KeyType type;
    guint bits;
    g_assert_true(caback_p12_key_describe(file, k, NULL, &type, &bits, &error));
    g_assert_no_error(error);
}

/* Re-encode the PFX of @bytes without its MacData. */
static GBytes *strip_mac(GBytes *bytes)
{
    g_autoptr(PLArenaPool) arena = PORT_NewArena(1024);
    P12Pfx pfx;
    memset(&pfx, 0, sizeof(pfx));
    SECItem der = {siBuffer, (unsigned char *)g_bytes_get_data(bytes, NULL),
                   (unsigned int)g_bytes_get_size(bytes)};
    g_assert_cmpint(SEC_ASN1DecodeItem(arena, &pfx, p12_pfx_template, &der), ==, SECSuccess);
    SECItem *octets = SEC_ASN1EncodeItem(arena, NULL, &pfx.auth_safe, p12_content_info_template);
    P12PfxOut out;
    memset(&out, 0, sizeof(out));
    out.version = pfx.version;
    out.auth_safe = *octets;
    SECItem *result = SEC_ASN1EncodeItem(arena, NULL, &out, p12_pfx_out_template);
    g_assert_nonnull(result);
    return g_bytes_new(result->data, result->len);
}

static void test_no_mac(void)
{
    NEED_DB();
    g_autoptr(GBytes) full =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000, 2, TRUE, P12_PASSWORD);
    g_autoptr(GBytes) bytes = strip_mac(full);
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackP12File) file = read_bytes(bytes, P12_PASSWORD, &error);
    g_assert_no_error(error);
    const CabackP12Info *info = caback_p12_file_info(file);
    g_assert_null(info->mac);
    g_assert_cmpint(info->mac_iterations, ==, 0);
    g_assert_nonnull(warning_matching(info, "no MAC"));
    g_assert_cmpuint(caback_p12_file_certs(file)->len, ==, 2);

    /* Without a MAC, a wrong password shows when the certificate safe will not decrypt. */
    g_autoptr(CabackP12File) bad = read_bytes(bytes, "nope", &error);
    g_assert_null(bad);
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD);
    g_assert_nonnull(strstr(error->message, "no MAC"));
}

/* NSS before 3.31 fed the BMPString password (with its 00 00) to PBKDF2. Build such a safe:
 * take caback's certificate safe, decrypt it with the UTF-8 key and encrypt it again under the
 * key PBKDF2 derives from the BMPString; drop the MAC (which could only be made with the old
 * encoding too). */
static void test_nss_pre_331_password(void)
{
    NEED_DB();
    CabackP12WriteOptions options = {CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000};
    g_autoptr(CabackSecret) pw = secret(P12_PASSWORD);
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackP12Writer) w = caback_p12_writer_new(&options, pw, &error);
    g_assert_true(caback_p12_writer_add_cert(w, entries[1].cert, "old nss", NULL, NULL, &error));
    g_autoptr(GBytes) written = caback_p12_writer_finish(w, &error);
    g_assert_no_error(error);

    g_autoptr(PLArenaPool) arena = PORT_NewArena(1024);
    P12Pfx pfx;
    memset(&pfx, 0, sizeof(pfx));
    SECItem der = {siBuffer, (unsigned char *)g_bytes_get_data(written, NULL),
                   (unsigned int)g_bytes_get_size(written)};
    g_assert_cmpint(SEC_ASN1DecodeItem(arena, &pfx, p12_pfx_template, &der), ==, SECSuccess);
    SECItem auth = {siBuffer, NULL, 0};
    g_assert_cmpint(
        SEC_ASN1DecodeItem(arena, &auth, SEC_OctetStringTemplate, &pfx.auth_safe.content), ==,
        SECSuccess);
    P12ContentInfo **cis = NULL;
    g_assert_cmpint(SEC_ASN1DecodeItem(arena, &cis, p12_content_infos_template, &auth), ==,
                    SECSuccess);
    g_assert_nonnull(cis[0]);
    g_assert_null(cis[1]);
    P12EncryptedData ed;
    memset(&ed, 0, sizeof(ed));
    g_assert_cmpint(SEC_ASN1DecodeItem(arena, &ed, p12_encrypted_data_template, &cis[0]->content),
                    ==, SECSuccess);
    P12PbeInfo info;
    g_assert_true(p12_pbe_info_parse(&ed.info.algorithm, &info, &error));
    g_autoptr(P12Passwords) passwords = p12_passwords_new(P12_PASSWORD, strlen(P12_PASSWORD));
    g_autoptr(P12KeyCache) cache = p12_key_cache_new();
    CK_MECHANISM_TYPE mech;
    g_autoptr(SECItem) param = NULL;
    g_autoptr(PK11SymKey) utf8_key = p12_pbe_key(cache, passwords->variants[0].pbkdf2[0],
                                                 &ed.info.algorithm, &info, &mech, &param, &error);
    g_assert_no_error(error);
    SECItem *plain = p12_decrypt(utf8_key, mech, param, &ed.info.encrypted);
    g_assert_nonnull(plain);
    g_autoptr(SECItem) param2 = NULL;
    g_autoptr(PK11SymKey) bmp_key = p12_pbe_key(cache, passwords->variants[0].bmp,
                                                &ed.info.algorithm, &info, &mech, &param2, &error);
    g_assert_no_error(error);
    SECItem *again = p12_encrypt(arena, bmp_key, mech, param2, plain);
    SECITEM_ZfreeItem(plain, PR_TRUE);
    g_assert_nonnull(again);
    ed.info.encrypted = *again;
    SECItem *ed_der = SEC_ASN1EncodeItem(arena, NULL, &ed, p12_encrypted_data_template);
    SECItem *ci = p12_encode_content_info(arena, SEC_OID_PKCS7_ENCRYPTED_DATA, ed_der);
    SECItem *list[2] = {ci, NULL};
    SECItem **listp = list;
    SECItem *safe = SEC_ASN1EncodeItem(arena, NULL, &listp, p12_sequence_of_any_template);
    SECItem *octets = p12_encode_octet_string(arena, safe);
    SECItem *auth_ci = p12_encode_content_info(arena, SEC_OID_PKCS7_DATA, octets);
    P12PfxOut out = {pfx.version, *auth_ci, {siBuffer, NULL, 0}};
    SECItem *result = SEC_ASN1EncodeItem(arena, NULL, &out, p12_pfx_out_template);
    p12_pbe_info_clear(&info);

    g_autoptr(GBytes) bytes = g_bytes_new(result->data, result->len);
    g_autoptr(CabackP12File) file = read_bytes(bytes, P12_PASSWORD, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(caback_p12_file_certs(file)->len, ==, 1);
    CabackP12Cert *c = caback_p12_file_certs(file)->pdata[0];
    g_assert_cmpstr(c->attrs.friendly_name, ==, "old nss");
}

/* ---- damaged input ---- */

static void assert_damage_error(const GError *error)
{
    g_assert_nonnull(error);
    g_assert_true(error->domain == CABACK_ERROR);
    if (error->code != CABACK_ERROR_PKCS12 && error->code != CABACK_ERROR_BAD_PASSWORD)
        g_error("unexpected error code %d: %s", error->code, error->message);
}

static void test_truncated(void)
{
    NEED_DB();
    g_autoptr(GBytes) bytes =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1, 2, TRUE, P12_PASSWORD);
    gsize len;
    const guint8 *data = g_bytes_get_data(bytes, &len);
    g_autoptr(CabackSecret) pw = secret(P12_PASSWORD);
    guint truncated_messages = 0;
    for (gsize n = 0; n < len; n++) {
        g_autoptr(GError) error = NULL;
        /* A copy of exactly n bytes, so a read past the end is a sanitizer report. */
        g_autofree guint8 *copy = g_memdup2(data, n > 0 ? n : 1);
        g_autoptr(CabackP12File) file = caback_p12_read(copy, n, pw, "cut.p12", &error);
        g_assert_null(file);
        assert_damage_error(error);
        g_assert_nonnull(strstr(error->message, "cut.p12"));
        if (strstr(error->message, "truncated") != NULL)
            truncated_messages++;
    }
    /* Every cut after the first bytes of the header is reported as truncation. */
    g_assert_cmpuint(truncated_messages, >=, len - 8);
}

static void test_bit_flips(void)
{
    NEED_DB();
    g_autoptr(GBytes) bytes =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1, 2, TRUE, P12_PASSWORD);
    gsize len;
    const guint8 *data = g_bytes_get_data(bytes, &len);
    g_autoptr(CabackSecret) pw = secret(P12_PASSWORD);
    g_autofree guint8 *copy = g_memdup2(data, len);
    guint accepted = 0;
    const guint8 masks[] = {0x01, 0x80, 0xff};
    for (gsize i = 0; i < len; i++) {
        for (gsize m = 0; m < G_N_ELEMENTS(masks); m++) {
            g_autoptr(GError) error = NULL;
            copy[i] ^= masks[m];
            g_autoptr(CabackP12File) file = caback_p12_read(copy, len, pw, "flip.p12", &error);
            copy[i] ^= masks[m];
            if (file == NULL) {
                assert_damage_error(error);
                continue;
            }
            accepted++;
            /* What is accepted must still be usable without crashing. */
            GPtrArray *keys = caback_p12_file_keys(file);
            for (guint k = 0; k < keys->len; k++) {
                KeyType type;
                guint bits;
                g_autoptr(GError) kerr = NULL;
                if (!caback_p12_key_describe(file, keys->pdata[k], NULL, &type, &bits, &kerr))
                    assert_damage_error(kerr);
            }
        }
    }
    /* Only the few bytes the MAC does not cover (the version, say) may change unnoticed. */
    g_test_message("%u of %" G_GSIZE_FORMAT " flipped files were accepted", accepted, len * 3);
    g_assert_cmpuint(accepted, <, 40);
}

static void test_not_pkcs12(void)
{
    g_autoptr(CabackSecret) pw = secret("x");
    const char *inputs[] = {"-----BEGIN CERTIFICATE-----\n", "hello", "\x30\x03\x02\x01\x03",
                            "\x30\x80\x00\x00"};
    for (gsize i = 0; i < G_N_ELEMENTS(inputs); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(CabackP12File) file = caback_p12_read(
            (const guint8 *)inputs[i], strlen(inputs[i]) + (i >= 2 ? 1 : 0), pw, "x.p12", &error);
        g_assert_null(file);
        g_assert_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12);
    }
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackP12File) file =
        caback_p12_read((const guint8 *)"-----BEGIN", 10, pw, "x.pem", &error);
    g_assert_null(file);
    g_assert_nonnull(strstr(error->message, "PEM"));
    g_clear_error(&error);
    g_assert_null(caback_p12_read_file("/nonexistent/x.p12", pw, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_IO);
}

static void test_trailing_bytes(void)
{
    NEED_DB();
    g_autoptr(GBytes) bytes =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000, 1, TRUE, P12_PASSWORD);
    gsize len;
    const guint8 *data = g_bytes_get_data(bytes, &len);
    g_autoptr(CabackSecret) pw = secret(P12_PASSWORD);
    for (int garbage = 0; garbage < 2; garbage++) {
        g_autofree guint8 *padded = g_malloc0(len + 7);
        memcpy(padded, data, len);
        if (garbage)
            memcpy(padded + len, "garbage", 7);
        g_autoptr(GError) error = NULL;
        g_autoptr(CabackP12File) file = caback_p12_read(padded, len + 7, pw, "pad.p12", &error);
        g_assert_no_error(error);
        const char *w = warning_matching(caback_p12_file_info(file), "7 ");
        g_assert_nonnull(w);
        g_assert_nonnull(strstr(w, garbage ? "other data" : "zero bytes"));
        g_assert_cmpuint(caback_p12_file_keys(file)->len, ==, 1);
    }
}

/* BER as Windows and Java write it: indefinite lengths and a chunked (constructed) OCTET
 * STRING for the authenticated safe. The MAC covers the reassembled octets, so it still holds. */
static void test_ber(void)
{
    NEED_DB();
    g_autoptr(GBytes) bytes =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000, 2, TRUE, P12_PASSWORD);
    g_autoptr(PLArenaPool) arena = PORT_NewArena(1024);
    P12Pfx pfx;
    memset(&pfx, 0, sizeof(pfx));
    SECItem der = {siBuffer, (unsigned char *)g_bytes_get_data(bytes, NULL),
                   (unsigned int)g_bytes_get_size(bytes)};
    g_assert_cmpint(SEC_ASN1DecodeItem(arena, &pfx, p12_pfx_template, &der), ==, SECSuccess);
    SECItem auth = {siBuffer, NULL, 0};
    g_assert_cmpint(
        SEC_ASN1DecodeItem(arena, &auth, SEC_OctetStringTemplate, &pfx.auth_safe.content), ==,
        SECSuccess);
    SECItem *mac = SEC_ASN1EncodeItem(arena, NULL, pfx.mac_data, p12_mac_data_template);

    GByteArray *ber = g_byte_array_new();
    static const guint8 head[] = {0x30, 0x80, 0x02, 0x01, 0x03, 0x30, 0x80, 0x06, 0x09, 0x2a, 0x86,
                                  0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0, 0x80, 0x24, 0x80};
    static const guint8 eoc[2] = {0, 0};
    g_byte_array_append(ber, head, sizeof(head));
    for (unsigned int off = 0; off < auth.len; off += 1000) {
        unsigned int n = MIN(1000, auth.len - off);
        guint8 h[4] = {0x04, 0x82, (guint8)(n >> 8), (guint8)n};
        g_byte_array_append(ber, h, 4);
        g_byte_array_append(ber, auth.data + off, n);
    }
    g_byte_array_append(ber, eoc, 2); /* constructed OCTET STRING */
    g_byte_array_append(ber, eoc, 2); /* [0] */
    g_byte_array_append(ber, eoc, 2); /* ContentInfo */
    g_byte_array_append(ber, mac->data, mac->len);
    g_byte_array_append(ber, eoc, 2); /* PFX */
    g_byte_array_append(ber, eoc, 2); /* and two trailing zero bytes */

    g_autoptr(CabackSecret) pw = secret(P12_PASSWORD);
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackP12File) file = caback_p12_read(ber->data, ber->len, pw, "ber.p12", &error);
    g_byte_array_unref(ber);
    g_assert_no_error(error);
    g_assert_cmpuint(caback_p12_file_keys(file)->len, ==, 2);
    g_assert_cmpuint(caback_p12_file_certs(file)->len, ==, 2);
    g_assert_nonnull(warning_matching(caback_p12_file_info(file), "2 zero bytes"));
}

/* ---- bags the writer never makes ---- */

static SECItem *attr_string(PLArenaPool *arena, SECOidTag tag, const SECItem *oid_item,
                            const guint8 *bmp, unsigned int len)
{
    SECItem s = {siBMPString, (unsigned char *)bmp, len};
    SECItem *value = SEC_ASN1EncodeItem(arena, NULL, &s, SEC_BMPStringTemplate);
    const SECItem *type = oid_item != NULL ? oid_item : &SECOID_FindOIDByTag(tag)->oid;
    return p12_encode_attribute(arena, type, value);
}

static SECItem *make_bag(PLArenaPool *arena, SECOidTag bag_type, const SECItem *value,
                         SECItem **attrs)
{
    P12SafeBagOut bag;
    memset(&bag, 0, sizeof(bag));
    p12_oid_set(arena, &bag.bag_id, bag_type);
    bag.value = *value;
    bag.attributes = attrs;
    return SEC_ASN1EncodeItem(arena, NULL, &bag, p12_safe_bag_out_template);
}

static SECItem *make_typed(PLArenaPool *arena, SECOidTag type, const SECItem *octets)
{
    P12TypedValue tv;
    memset(&tv, 0, sizeof(tv));
    p12_oid_set(arena, &tv.type_id, type);
    tv.value = *p12_encode_octet_string(arena, octets);
    return SEC_ASN1EncodeItem(arena, NULL, &tv, p12_typed_value_template);
}

static SECItem *make_safe(PLArenaPool *arena, SECItem **bags)
{
    return SEC_ASN1EncodeItem(arena, NULL, &bags, p12_sequence_of_any_template);
}

/* A MAC-less file with one plain safe holding a CRL bag, a secret bag, a bag of unknown type
 * and a nested SafeContents bag with a certificate whose friendly name ends in NUL; plus a
 * second certificate whose name holds a control character. */
static void test_other_bags(void)
{
    NEED_DB();
    g_autoptr(PLArenaPool) arena = PORT_NewArena(2048);
    static const guint8 crl[] = {0x30, 0x03, 0x02, 0x01, 0x01}; /* any one DER element */
    SECItem crl_item = {siBuffer, (unsigned char *)crl, sizeof(crl)};
    static const guint8 name_nul[] = {0, 'n', 0, 'u', 0, 'l', 0, 0};
    static const guint8 name_esc[] = {0, 'a', 0, 0x1b, 0, 'b'};
    static const guint8 trust_bad[] = {0, 'x', 0, ';'};

    SECItem *nested_attrs[3] = {
        attr_string(arena, SEC_OID_PKCS9_FRIENDLY_NAME, NULL, name_nul, sizeof(name_nul)),
        attr_string(arena, 0, &p12_oid_trust_flags, trust_bad, sizeof(trust_bad)), NULL};
    SECItem *nested_bags[2] = {
        make_bag(arena, SEC_OID_PKCS12_V1_CERT_BAG_ID,
                 make_typed(arena, SEC_OID_PKCS9_X509_CERT, &entries[0].cert->derCert),
                 nested_attrs),
        NULL};
    SECItem *esc_attrs[2] = {
        attr_string(arena, SEC_OID_PKCS9_FRIENDLY_NAME, NULL, name_esc, sizeof(name_esc)), NULL};
    SECItem *unknown = SEC_ASN1EncodeItem(arena, NULL, &crl_item, SEC_OctetStringTemplate);
    SECItem *bags[6] = {
        make_bag(arena, SEC_OID_PKCS12_V1_CRL_BAG_ID,
                 make_typed(arena, SEC_OID_PKCS9_X509_CRL, &crl_item), NULL),
        make_bag(arena, SEC_OID_PKCS12_V1_SECRET_BAG_ID,
                 make_typed(arena, SEC_OID_PKCS9_X509_CRL, &crl_item), NULL),
        make_bag(arena, SEC_OID_PKCS7_DATA, unknown, NULL),
        make_bag(arena, SEC_OID_PKCS12_V1_SAFE_CONTENTS_BAG_ID, make_safe(arena, nested_bags),
                 NULL),
        make_bag(arena, SEC_OID_PKCS12_V1_CERT_BAG_ID,
                 make_typed(arena, SEC_OID_PKCS9_X509_CERT, &entries[1].cert->derCert), esc_attrs),
        NULL};
    SECItem *safe = make_safe(arena, bags);
    SECItem *ci =
        p12_encode_content_info(arena, SEC_OID_PKCS7_DATA, p12_encode_octet_string(arena, safe));
    SECItem *list[2] = {ci, NULL};
    SECItem **listp = list;
    SECItem *auth = SEC_ASN1EncodeItem(arena, NULL, &listp, p12_sequence_of_any_template);
    SECItem *auth_ci =
        p12_encode_content_info(arena, SEC_OID_PKCS7_DATA, p12_encode_octet_string(arena, auth));
    P12PfxOut out;
    memset(&out, 0, sizeof(out));
    p12_uint_set(arena, &out.version, 3);
    out.auth_safe = *auth_ci;
    SECItem *der = SEC_ASN1EncodeItem(arena, NULL, &out, p12_pfx_out_template);

    g_autoptr(GError) error = NULL;
    g_autoptr(CabackP12File) file = caback_p12_read(der->data, der->len, NULL, "bags.p12", &error);
    g_assert_no_error(error);
    const CabackP12Info *info = caback_p12_file_info(file);
    GPtrArray *certs = caback_p12_file_certs(file);
    g_assert_cmpuint(certs->len, ==, 2);
    CabackP12Cert *c0 = certs->pdata[0], *c1 = certs->pdata[1];
    g_assert_cmpstr(c0->attrs.friendly_name, ==, "nul");
    g_assert_null(c0->attrs.trust_flags);
    g_assert_nonnull(warning_matching(info, "trust flags"));
    g_assert_cmpstr(c0->protection, ==, "none");
    g_assert_cmpuint(c0->attrs.friendly_name_flaws, ==, 0);
    /* A control character is shown escaped, and the name is flagged and cleaned (names.h). */
    g_assert_cmpstr(c1->attrs.friendly_name, ==, "a\\x1bb");
    g_assert_cmpuint(c1->attrs.friendly_name_flaws, ==, CABACK_NAME_CONTROL);
    g_assert_cmpstr(c1->attrs.friendly_name_clean, ==, "a_b");
    g_assert_nonnull(warning_matching(info, "control characters"));
    g_assert_cmpuint(caback_p12_file_crls(file)->len, ==, 1);
    CabackP12Crl *crl0 = caback_p12_file_crls(file)->pdata[0];
    g_assert_true(bytes_equal_item(crl0->der, &crl_item));
    g_assert_nonnull(warning_matching(info, "secret bag"));
    g_assert_nonnull(warning_matching(info, "unknown type"));
    g_assert_nonnull(warning_matching(info, "no MAC"));
}

/* Encryption caback cannot use is named in the error: here scrypt with PBKDF2's parameters (same
 * OID length as PBKDF2, so the file can be patched in place), which are not scrypt's. A
 * certificate safe under it stops the read; a key under it stays listed and fails when it is
 * used. (Real scrypt files, which caback reads, are in tests/test-p12-formats.sh.) */
static void patch_scrypt(guint8 *data, gsize len)
{
    static const guint8 pbkdf2[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                    0xf7, 0x0d, 0x01, 0x05, 0x0c};
    static const guint8 scrypt[] = {0x06, 0x09, 0x2b, 0x06, 0x01, 0x04,
                                    0x01, 0xda, 0x47, 0x04, 0x0b};
    for (gsize i = 0; i + sizeof(pbkdf2) <= len; i++)
        if (memcmp(data + i, pbkdf2, sizeof(pbkdf2)) == 0)
            memcpy(data + i, scrypt, sizeof(scrypt));
}

static void test_scrypt(void)
{
    NEED_DB();
    g_autoptr(CabackSecret) pw = secret(P12_PASSWORD);
    g_autoptr(GBytes) with_certs =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000, 1, TRUE, P12_PASSWORD);
    gsize len;
    g_autofree guint8 *a = g_bytes_unref_to_data(g_bytes_ref(with_certs), &len);
    patch_scrypt(a, len);
    g_autoptr(GError) error = NULL;
    g_assert_null(caback_p12_read(a, len, pw, "scrypt.p12", &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12);
    g_assert_nonnull(strstr(error->message, "scrypt"));
    g_clear_error(&error);

    g_autoptr(GBytes) keys =
        write_file(CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 1000, 1, FALSE, P12_PASSWORD);
    g_autoptr(GBytes) no_mac = strip_mac(keys);
    g_autofree guint8 *b = g_bytes_unref_to_data(g_bytes_ref(no_mac), &len);
    patch_scrypt(b, len);
    g_autoptr(CabackP12File) file = caback_p12_read(b, len, pw, "scrypt-key.p12", &error);
    g_assert_no_error(error);
    CabackP12Key *k = caback_p12_file_keys(file)->pdata[0];
    g_assert_nonnull(warning_matching(caback_p12_file_info(file), "scrypt"));
    KeyType type;
    guint bits;
    g_assert_false(caback_p12_key_describe(file, k, NULL, &type, &bits, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12);
    g_assert_nonnull(strstr(error->message, "scrypt"));
}

/* ---- pure helpers ---- */

static void test_bmp(void)
{
    static const guint8 snowman_nul[] = {0x26, 0x03, 0x00, 0x41, 0x00, 0x00};
    g_autofree char *a = p12_bmp_to_utf8(snowman_nul, sizeof(snowman_nul));
    g_assert_cmpstr(a, ==,
                    "\xe2\x98\x83"
                    "A");
    static const guint8 pair[] = {0xd8, 0x3d, 0xde, 0x00, 0xd8, 0x00, 0x00, 0x41};
    g_autofree char *b = p12_bmp_to_utf8(pair, sizeof(pair));
    g_assert_cmpstr(b, ==,
                    "\xf0\x9f\x98\x80\xef\xbf\xbd"
                    "A");
    g_autoptr(GByteArray) c = p12_utf8_to_bmp("\xf0\x9f\x98\x80x", 5, TRUE);
    static const guint8 want[] = {0xd8, 0x3d, 0xde, 0x00, 0x00, 0x78, 0x00, 0x00};
    g_assert_cmpmem(c->data, c->len, want, sizeof(want));
    g_assert_null(p12_utf8_to_bmp("\xff", 1, FALSE));
}

static void test_uint(void)
{
    g_autoptr(PLArenaPool) arena = PORT_NewArena(256);
    guint64 values[] = {0, 1, 127, 128, 255, 256, 600000, G_MAXUINT32, G_MAXUINT64};
    for (gsize i = 0; i < G_N_ELEMENTS(values); i++) {
        SECItem item;
        g_assert_true(p12_uint_set(arena, &item, values[i]));
        g_assert_cmpuint(item.data[0] & 0x80, ==, 0);
        guint64 back = 1;
        g_assert_true(p12_uint_get(&item, G_MAXUINT64, &back));
        g_assert_cmpuint(back, ==, values[i]);
    }
    guint8 neg[] = {0x80};
    SECItem n = {siBuffer, neg, 1};
    guint64 out;
    g_assert_false(p12_uint_get(&n, G_MAXUINT64, &out));
    guint8 big[] = {0x01, 0, 0, 0, 0, 0, 0, 0, 0};
    SECItem b = {siBuffer, big, sizeof(big)};
    g_assert_false(p12_uint_get(&b, G_MAXUINT64, &out));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* NSS runs on the test database (its own context); without certutil, on no database. */
    gboolean have_db = make_database();
    if (!have_db) {
        g_test_message("certutil is not installed: the tests that need keys are skipped");
        if (NSS_NoDB_Init(NULL) != SECSuccess)
            g_error("cannot initialise NSS");
    }

    g_test_add_func("/p12/bmp", test_bmp);
    g_test_add_func("/p12/uint", test_uint);
    g_test_add_func("/p12/writer-refusals", test_writer_refusals);
    g_test_add_func("/p12/not-pkcs12", test_not_pkcs12);
    g_test_add_func("/p12/round-trip/modern", test_modern);
    g_test_add_func("/p12/round-trip/legacy", test_legacy);
    g_test_add_func("/p12/round-trip/pbmac1", test_pbmac1);
    g_test_add_func("/p12/round-trip/default-600000-and-cost", test_default_iterations_and_cost);
    g_test_add_func("/p12/key-only-and-cert-only", test_key_only_and_cert_only);
    g_test_add_func("/p12/verify-ahead", test_verify_ahead);
    g_test_add_func("/p12/writer-dropped", test_writer_dropped);
    g_test_add_func("/p12/key-cache-shared", test_key_cache_shared);
    g_test_add_func("/p12/not-extractable", test_not_extractable_import);
    g_test_add_func("/p12/wrong-password", test_wrong_password);
    g_test_add_func("/p12/password/openssl-1.0.2", test_openssl_102_password);
    g_test_add_func("/p12/password/nss-before-3.31", test_nss_pre_331_password);
    g_test_add_func("/p12/no-mac", test_no_mac);
    g_test_add_func("/p12/kdf/wrong-password-one-derivation",
                    test_wrong_password_costs_one_derivation);
    g_test_add_func("/p12/kdf/work-cap", test_kdf_work_cap);
    g_test_add_func("/p12/kdf/charge", test_kdf_charge);
    g_test_add_func("/p12/truncated", test_truncated);
    g_test_add_func("/p12/bit-flips", test_bit_flips);
    g_test_add_func("/p12/trailing-bytes", test_trailing_bytes);
    g_test_add_func("/p12/ber", test_ber);
    g_test_add_func("/p12/other-bags", test_other_bags);
    g_test_add_func("/p12/scrypt", test_scrypt);
    int status = g_test_run();
    free_database();
    if (!have_db && NSS_Shutdown() != SECSuccess)
        g_error("NSS did not shut down cleanly: a reference was leaked");
    return status;
}
