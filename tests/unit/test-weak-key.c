/* Unit tests for caback/weak-key.h on real keys made by openssl: each rule of the weak-key rule
 * is met by a key that breaks it and a key at its edge that does not. */
#include "config.h"

#include <caback/nss-util.h>
#include <caback/weak-key.h>

#include <glib/gstdio.h>
#include <nss.h>
#include <string.h>

static char *tmpdir;

/* Run openssl with @argv (NULL-terminated, without "openssl"); fails the test on error. */
static void openssl(const char *const *argv)
{
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    g_ptr_array_add(args, (char *)"openssl");
    for (const char *const *a = argv; *a != NULL; a++)
        g_ptr_array_add(args, (char *)*a);
    g_ptr_array_add(args, NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *err = NULL;
    int status = 0;
    g_assert_true(g_spawn_sync(tmpdir, (char **)args->pdata, NULL,
                               G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                               &err, &status, &error));
    g_assert_no_error(error);
    if (!g_spawn_check_wait_status(status, &error))
        g_error("openssl %s failed: %s", argv[0], err);
}

/* Generate a key with "openssl genpkey" and the given -pkeyopt values (NULL-terminated after
 * @algorithm), and return its SubjectPublicKeyInfo, DER, as openssl writes it. */
static GBytes *genpkey(const char *algorithm, ...)
{
    static guint serial;
    g_autofree char *priv = g_strdup_printf("%s/key%u.pem", tmpdir, ++serial);
    g_autofree char *pub = g_strdup_printf("%s/key%u.spki", tmpdir, serial);
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    va_list ap;

    g_ptr_array_add(args, (char *)"genpkey");
    g_ptr_array_add(args, (char *)"-algorithm");
    g_ptr_array_add(args, (char *)algorithm);
    va_start(ap, algorithm);
    for (const char *opt = va_arg(ap, const char *); opt != NULL; opt = va_arg(ap, const char *)) {
        g_ptr_array_add(args, (char *)"-pkeyopt");
        g_ptr_array_add(args, (char *)opt);
    }
    va_end(ap);
    g_ptr_array_add(args, (char *)"-out");
    g_ptr_array_add(args, priv);
    g_ptr_array_add(args, NULL);
    openssl((const char *const *)args->pdata);
    const char *const export[] = {"pkey", "-in", priv, "-pubout", "-outform", "DER", "-out", pub,
                                  NULL};
    openssl(export);
    g_autoptr(GError) error = NULL;
    char *der = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(pub, &der, &len, &error));
    g_assert_no_error(error);
    return g_bytes_new_take(der, len);
}

static CERTSubjectPublicKeyInfo *decode_spki(GBytes *der)
{
    gsize len = 0;
    SECItem item = {siBuffer, (unsigned char *)g_bytes_get_data(der, &len), 0};
    item.len = (unsigned)len;
    return SECKEY_DecodeDERSubjectPublicKeyInfo(&item);
}

/* Check @der with both entry points; they must agree. Returns the reason (caller frees). */
static char *check(GBytes *der, CabackWeakKey expected)
{
    g_autoptr(CERTSubjectPublicKeyInfo) spki = decode_spki(der);
    g_assert_nonnull(spki);
    char *reason = NULL;
    g_assert_cmpstr(caback_weak_key_name(caback_weak_key_check_spki(spki, &reason)), ==,
                    caback_weak_key_name(expected));
    g_assert_true((reason == NULL) == (expected == CABACK_WEAK_KEY_NONE));
    g_assert_cmpint(caback_weak_key_check_spki(spki, NULL), ==, expected);
    g_autoptr(SECKEYPublicKey) key = SECKEY_ExtractPublicKey(spki);
    if (expected != CABACK_WEAK_KEY_UNREADABLE) {
        g_assert_nonnull(key);
        g_autofree char *again = NULL;
        g_assert_cmpint(caback_weak_key_check(key, &again), ==, expected);
        g_assert_cmpstr(again, ==, reason);
    }
    if (reason != NULL)
        for (const char *c = reason; *c != '\0'; c++)
            g_assert_true(g_ascii_isprint(*c));
    return reason;
}

static void test_rsa_size(void)
{
    g_autoptr(GBytes) k2048 = genpkey("RSA", "rsa_keygen_bits:2048", NULL);
    g_autoptr(GBytes) k2047 = genpkey("RSA", "rsa_keygen_bits:2047", NULL);
    g_autoptr(GBytes) k1024 = genpkey("RSA", "rsa_keygen_bits:1024", NULL);
    g_autoptr(GBytes) k512 = genpkey("RSA", "rsa_keygen_bits:512", NULL);

    g_assert_null(check(k2048, CABACK_WEAK_KEY_NONE));
    g_autofree char *r2047 = check(k2047, CABACK_WEAK_KEY_RSA_SIZE);
    g_assert_cmpstr(r2047, ==, "RSA 2047-bit key (under 2048 bits)");
    g_autofree char *r1024 = check(k1024, CABACK_WEAK_KEY_RSA_SIZE);
    g_assert_cmpstr(r1024, ==, "RSA 1024-bit key (under 2048 bits)");
    g_autofree char *r512 = check(k512, CABACK_WEAK_KEY_RSA_SIZE);
    g_assert_cmpstr(r512, ==, "RSA 512-bit key (under 2048 bits)");
}

static void test_rsa_pss(void)
{
    g_autoptr(GBytes) pss = genpkey("RSA-PSS", "rsa_keygen_bits:1024", NULL);
    g_autoptr(CERTSubjectPublicKeyInfo) spki = decode_spki(pss);
    g_assert_nonnull(spki);
    g_autofree char *reason = NULL;
    /* NSS 3.87 reads RSA-PSS keys: then the size rule applies; a version that cannot read them
     * must still call the key weak. */
    CabackWeakKey weak = caback_weak_key_check_spki(spki, &reason);
    g_assert_true(weak == CABACK_WEAK_KEY_RSA_SIZE || weak == CABACK_WEAK_KEY_UNREADABLE);
}

static void test_rsa_exponent(void)
{
    g_autoptr(GBytes) e3 = genpkey("RSA", "rsa_keygen_bits:2048", "rsa_keygen_pubexp:3", NULL);
    g_autoptr(GBytes) e65535 =
        genpkey("RSA", "rsa_keygen_bits:2048", "rsa_keygen_pubexp:65535", NULL);
    g_autoptr(GBytes) e65539 =
        genpkey("RSA", "rsa_keygen_bits:2048", "rsa_keygen_pubexp:65539", NULL);
    g_autoptr(GBytes) ebig =
        genpkey("RSA", "rsa_keygen_bits:2048", "rsa_keygen_pubexp:4294967297", NULL);

    g_autofree char *r3 = check(e3, CABACK_WEAK_KEY_RSA_EXPONENT);
    g_assert_cmpstr(r3, ==, "RSA public exponent 3 (under 65537)");
    g_autofree char *r65535 = check(e65535, CABACK_WEAK_KEY_RSA_EXPONENT);
    g_assert_cmpstr(r65535, ==, "RSA public exponent 65535 (under 65537)");
    g_assert_null(check(e65539, CABACK_WEAK_KEY_NONE));
    g_assert_null(check(ebig, CABACK_WEAK_KEY_NONE));

    /* openssl refuses to make a key with an even exponent: take a real key and change its
     * exponent to 65538 and to a 9-byte even value in NSS's decoded form. */
    g_autoptr(CERTSubjectPublicKeyInfo) spki = decode_spki(e65539);
    g_autoptr(SECKEYPublicKey) key = SECKEY_ExtractPublicKey(spki);
    g_assert_nonnull(key);
    unsigned char even[] = {0x00, 0x01, 0x00, 0x02};
    key->u.rsa.publicExponent.data = even;
    key->u.rsa.publicExponent.len = sizeof even;
    g_autofree char *r_even = NULL;
    g_assert_cmpint(caback_weak_key_check(key, &r_even), ==, CABACK_WEAK_KEY_RSA_EXPONENT);
    g_assert_cmpstr(r_even, ==, "RSA public exponent 65538 (even)");
    unsigned char long_even[] = {0x80, 0, 0, 0, 0, 0, 0, 0, 0x10};
    key->u.rsa.publicExponent.data = long_even;
    key->u.rsa.publicExponent.len = sizeof long_even;
    g_autofree char *r_long = NULL;
    g_assert_cmpint(caback_weak_key_check(key, &r_long), ==, CABACK_WEAK_KEY_RSA_EXPONENT);
    g_assert_cmpstr(r_long, ==, "RSA public exponent of 72 bits (even)");
    key->u.rsa.publicExponent.len = 0;
    g_assert_cmpint(caback_weak_key_check(key, NULL), ==, CABACK_WEAK_KEY_RSA_EXPONENT);
    /* Give the key its own exponent back before it is destroyed (the arena owns that one). */
    g_autoptr(SECKEYPublicKey) fresh = SECKEY_ExtractPublicKey(spki);
    key->u.rsa.publicExponent = fresh->u.rsa.publicExponent;
}

static void test_ec(void)
{
    static const char *const good[] = {"P-256", "P-384", "P-521"};
    for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autofree char *opt = g_strdup_printf("ec_paramgen_curve:%s", good[i]);
        g_autoptr(GBytes) k = genpkey("EC", opt, NULL);
        g_assert_null(check(k, CABACK_WEAK_KEY_NONE));
    }
    g_autoptr(GBytes) k1 = genpkey("EC", "ec_paramgen_curve:secp256k1", NULL);
    g_autofree char *r1 = check(k1, CABACK_WEAK_KEY_EC_CURVE);
    g_assert_nonnull(strstr(r1, "secp256k1"));
    g_assert_nonnull(strstr(r1, "(not P-256, P-384 or P-521)"));

    /* A curve NSS has no name for is shown by its OID. */
    g_autoptr(GBytes) bp = genpkey("EC", "ec_paramgen_curve:brainpoolP256r1", NULL);
    g_autoptr(CERTSubjectPublicKeyInfo) spki = decode_spki(bp);
    g_autofree char *rbp = NULL;
    CabackWeakKey wbp = caback_weak_key_check_spki(spki, &rbp);
    g_assert_cmpint(wbp, ==, CABACK_WEAK_KEY_EC_CURVE);
    g_assert_cmpstr(rbp, ==,
                    "EC key on unknown curve OID.1.3.36.3.3.2.8.1.1.7 (not P-256, P-384 or P-521)");

    /* P-256 spelled out as explicit parameters is still refused: the parameters could be any
     * curve. */
    g_autoptr(GBytes) ex = genpkey("EC", "ec_paramgen_curve:P-256", "ec_param_enc:explicit", NULL);
    g_autoptr(CERTSubjectPublicKeyInfo) exspki = decode_spki(ex);
    g_assert_nonnull(exspki);
    g_assert_cmpint(caback_weak_key_check_spki(exspki, NULL), !=, CABACK_WEAK_KEY_NONE);
}

static void test_dsa(void)
{
    g_autofree char *params = g_build_filename(tmpdir, "dsa.params", NULL);
    const char *const gen[] = {"genpkey",       "-genparam", "-algorithm",
                               "DSA",           "-pkeyopt",  "dsa_paramgen_bits:1024",
                               "-out",          params,      NULL};
    openssl(gen);
    g_autofree char *priv = g_build_filename(tmpdir, "dsa.pem", NULL);
    g_autofree char *pub = g_build_filename(tmpdir, "dsa.spki", NULL);
    const char *const key[] = {"genpkey", "-paramfile", params, "-out", priv, NULL};
    openssl(key);
    const char *const export[] = {"pkey", "-in", priv, "-pubout", "-outform", "DER", "-out", pub,
                                  NULL};
    openssl(export);
    char *der = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(pub, &der, &len, NULL));
    g_autoptr(GBytes) bytes = g_bytes_new_take(der, len);
    g_autofree char *reason = check(bytes, CABACK_WEAK_KEY_DSA);
    g_assert_cmpstr(reason, ==, "DSA key");
}

static void test_unreadable(void)
{
    /* Ed25519: NSS 3.87 cannot decode it, so it cannot be vouched for. */
    g_autoptr(GBytes) ed = genpkey("ED25519", NULL);
    g_autoptr(CERTSubjectPublicKeyInfo) spki = decode_spki(ed);
    g_assert_nonnull(spki);
    g_autofree char *reason = NULL;
    CabackWeakKey weak = caback_weak_key_check_spki(spki, &reason);
    g_assert_cmpint(weak, !=, CABACK_WEAK_KEY_NONE);
    g_assert_nonnull(reason);

    g_assert_cmpint(caback_weak_key_check(NULL, NULL), ==, CABACK_WEAK_KEY_UNREADABLE);
    g_assert_cmpint(caback_weak_key_check_spki(NULL, NULL), ==, CABACK_WEAK_KEY_UNREADABLE);
    g_assert_cmpstr(caback_weak_key_name(CABACK_WEAK_KEY_UNREADABLE), ==, "unreadable");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_autofree char *path = g_find_program_in_path("openssl");
    if (path == NULL) {
        g_test_skip("openssl is not installed");
        return g_test_run();
    }
    if (NSS_NoDB_Init(NULL) != SECSuccess)
        g_error("NSS_NoDB_Init failed");
    tmpdir = g_dir_make_tmp("caback-test-weak-key-XXXXXX", NULL);
    g_assert_nonnull(tmpdir);
    g_test_add_func("/weak-key/rsa-size", test_rsa_size);
    g_test_add_func("/weak-key/rsa-pss", test_rsa_pss);
    g_test_add_func("/weak-key/rsa-exponent", test_rsa_exponent);
    g_test_add_func("/weak-key/ec", test_ec);
    g_test_add_func("/weak-key/dsa", test_dsa);
    g_test_add_func("/weak-key/unreadable", test_unreadable);
    int ret = g_test_run();
    g_autofree char *rm = g_strdup_printf("rm -rf '%s'", tmpdir);
    (void)!system(rm);
    g_free(tmpdir);
    if (NSS_Shutdown() != SECSuccess)
        g_error("NSS_Shutdown: an NSS reference was leaked");
    return ret;
}
