/* The pure parts of caback backup: the trust-flag string (libnss3 does not export NSS's own
 * encoder, so caback's must agree with NSS's decoder), the PKCS#12 password file, and the
 * nicknames taken from a Dogtag CS.cfg. */
#include "config.h"

#include <caback/backup.h>
#include <caback/error.h>

#include <certdb.h>
#include <glib/gstdio.h>
#include <string.h>

static void test_trust_flags(void)
{
    static const struct {
        unsigned int ssl, email, signing;
        const char *text;
    } cases[] = {
        {0, 0, 0, ",,"},
        {CERTDB_USER, CERTDB_USER, CERTDB_USER, "u,u,u"},
        {CERTDB_VALID_CA, 0, 0, "c,,"},
        {CERTDB_VALID_CA | CERTDB_TRUSTED_CA, 0, 0, "C,,"},
        {CERTDB_VALID_CA | CERTDB_TRUSTED_CLIENT_CA, 0, 0, "T,,"},
        {CERTDB_TERMINAL_RECORD, 0, 0, "p,,"},
        {CERTDB_TERMINAL_RECORD | CERTDB_TRUSTED, 0, 0, "P,,"},
        {CERTDB_SEND_WARN | CERTDB_INVISIBLE_CA | CERTDB_GOVT_APPROVED_CA, 0, 0, "wIG,,"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        CERTCertTrust trust = {cases[i].ssl, cases[i].email, cases[i].signing};
        g_autofree char *text = caback_backup_trust_string(&trust);
        g_assert_cmpstr(text, ==, cases[i].text);
    }
}

/* Every trust string certutil -L prints for a Dogtag instance (and a few others) survives
 * NSS's decoder followed by caback's encoder unchanged. */
static void test_trust_round_trip(void)
{
    static const char *const strings[] = {
        "CTu,Cu,Cu", "u,u,Pu",  "u,u,u",    "CT,C,C",         "C,,", "c,c,c", "P,,", "p,p,p",
        ",,",        "CTu,u,u", "Cu,Cu,Cu", "CTPu,CTPu,CTPu", "T,,", "cw,,"};

    for (gsize i = 0; i < G_N_ELEMENTS(strings); i++) {
        CERTCertTrust trust;
        memset(&trust, 0, sizeof trust);
        g_assert_cmpint(CERT_DecodeTrustString(&trust, strings[i]), ==, SECSuccess);
        g_autofree char *text = caback_backup_trust_string(&trust);
        g_assert_cmpstr(text, ==, strings[i]);
    }
}

static char *write_temp(const char *name, const char *contents)
{
    g_autofree char *dir = g_dir_make_tmp("caback-test-backup-XXXXXX", NULL);
    char *path = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(path, contents, -1, NULL));
    return path;
}

static void remove_temp(const char *path)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_unlink(path);
    g_rmdir(dir);
}

static void test_password_file(void)
{
    static const struct {
        const char *contents;
        const char *password;
    } cases[] = {
        {"Secret pass\n", "Secret pass"},
        {"Secret pass\r\nsecond line\n", "Secret pass"},
        {"no newline", "no newline"},
        /* A PKCS#12 password that looks like a password.conf line is still the whole line. */
        {"internal=Secret\n", "internal=Secret"},
        {"hardware-HSM=pin\ninternal=x\n", "hardware-HSM=pin"},
        /* Nothing but the line ending is removed: spaces, '=', ':', a lone '\r' stay. */
        {"  a=b:c  \r\n", "  a=b:c  "},
        {"p\xc3\xa4ss w\xc3\xb6rd\n", "p\xc3\xa4ss w\xc3\xb6rd"},
        {"a\rb\r", "a\rb\r"},
        {"\r\n", ""},
        {"\n", ""},
        {"", ""},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = write_temp("p12.pass", cases[i].contents);
        g_autoptr(GError) error = NULL;
        CabackPasswordSource source = {.file = path};
        g_autoptr(CabackSecret) secret = caback_p12_password_read(&source, "test", FALSE, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(secret->data, ==, cases[i].password);
        g_assert_cmpuint(secret->len, ==, strlen(cases[i].password));
        remove_temp(path);
    }

    g_autoptr(GError) error = NULL;
    CabackPasswordSource missing = {.file = "/nonexistent/p12.pass"};
    g_assert_null(caback_p12_password_read(&missing, "test", FALSE, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_IO);
    g_assert_nonnull(strstr(error->message, "/nonexistent/p12.pass"));
}

static char *joined_nicknames(const char *contents, gboolean include_sslserver, GError **error)
{
    g_autofree char *path = write_temp("CS.cfg", contents);
    g_auto(GStrv) nicks = caback_backup_cscfg_nicknames(path, include_sslserver, error);

    remove_temp(path);
    return nicks != NULL ? g_strjoinv("|", nicks) : NULL;
}

static void test_cscfg(void)
{
    const char *ca = "cs.type=CA\n"
                     "ca.cert.list=signing,ocsp_signing,sslserver,subsystem,audit_signing\n"
                     "ca.signing.nickname=caSigningCert cert-pki-ca\n"
                     "ca.ocsp_signing.nickname=ocspSigningCert cert-pki-ca\n"
                     "ca.sslserver.nickname=Server-Cert cert-pki-ca\n"
                     "ca.subsystem.nickname=subsystemCert cert-pki-ca\n"
                     "ca.audit_signing.nickname=auditSigningCert cert-pki-ca\n";
    g_autoptr(GError) error = NULL;

    g_autofree char *without = joined_nicknames(ca, FALSE, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(without, ==,
                    "caSigningCert cert-pki-ca|ocspSigningCert cert-pki-ca|subsystemCert "
                    "cert-pki-ca|auditSigningCert cert-pki-ca");
    g_autofree char *with = joined_nicknames(ca, TRUE, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(with, ==,
                    "caSigningCert cert-pki-ca|ocspSigningCert cert-pki-ca|Server-Cert "
                    "cert-pki-ca|subsystemCert cert-pki-ca|auditSigningCert cert-pki-ca");

    /* A KRA without cs.type; spaces in the list; the 11.x key, certnickname and cloning.* as
     * fallbacks; an HSM nickname kept whole. */
    g_autofree char *kra =
        joined_nicknames("kra.cert.list= transport , storage,sslserver\n"
                         "kra.cert.transport.nickname=NHSM6000:transportCert cert-pki-kra\n"
                         "kra.storage.nickname=\n"
                         "cloning.storage.nickname=storageCert cert-pki-kra\n",
                         FALSE, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(kra, ==, "NHSM6000:transportCert cert-pki-kra|storageCert cert-pki-kra");
    g_autofree char *ocsp = joined_nicknames("ocsp.cert.list=signing\n"
                                             "ocsp.signing.certnickname=ocspSigningCert x\n",
                                             FALSE, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(ocsp, ==, "ocspSigningCert x");

    /* Errors: no cert list, a tag without nickname (named in the message), only sslserver. */
    g_assert_null(joined_nicknames("a=b\n", FALSE, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG);
    g_clear_error(&error);
    g_assert_null(joined_nicknames("ca.cert.list=signing,subsystem\n"
                                   "ca.signing.nickname=caSigningCert\n",
                                   FALSE, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG);
    g_assert_nonnull(strstr(error->message, "\"subsystem\""));
    g_assert_nonnull(strstr(error->message, "ca.subsystem.nickname"));
    g_clear_error(&error);
    g_assert_null(
        joined_nicknames("ca.cert.list=sslserver\nca.sslserver.nickname=x\n", FALSE, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG);
}

static void test_describe_options(void)
{
    const char *keys, *certs, *mac;
    CabackP12WriteOptions o = {CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 0};

    g_assert_cmpuint(caback_backup_describe_options(&o, &keys, &certs, &mac), ==, 600000);
    g_assert_cmpstr(keys, ==, "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC)");
    g_assert_cmpstr(mac, ==, "HMAC-SHA256");
    o.mac = CABACK_P12_MAC_PBMAC1;
    o.iterations = 2000;
    g_assert_cmpuint(caback_backup_describe_options(&o, &keys, &certs, &mac), ==, 2000);
    g_assert_cmpstr(mac, ==, "PBMAC1 (PBKDF2-HMAC-SHA256, HMAC-SHA256)");
    o = (CabackP12WriteOptions){CABACK_P12_LEGACY, CABACK_P12_MAC_HMAC, 0};
    g_assert_cmpuint(caback_backup_describe_options(&o, &keys, &certs, &mac), ==, 2048);
    g_assert_cmpstr(certs, ==, "PBE-SHA1-3DES (pbeWithSHAAnd3-KeyTripleDES-CBC)");
    g_assert_cmpstr(mac, ==, "HMAC-SHA1");
}

/* What to back up is chosen one way: --include-sslserver only with --cscfg, and --cscfg or -n. */
static void test_check_selection(void)
{
    g_autoptr(GError) error = NULL;

    g_assert_true(caback_backup_check_selection(NULL, FALSE, FALSE, &error));
    g_assert_true(caback_backup_check_selection(NULL, FALSE, TRUE, &error));
    g_assert_true(caback_backup_check_selection("CS.cfg", TRUE, FALSE, &error));
    g_assert_no_error(error);
    g_assert_false(caback_backup_check_selection(NULL, TRUE, FALSE, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    g_assert_nonnull(strstr(error->message, "--include-sslserver goes with --cscfg"));
    g_clear_error(&error);
    g_assert_false(caback_backup_check_selection("CS.cfg", FALSE, TRUE, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    g_assert_nonnull(strstr(error->message, "either -n NICKNAME or --cscfg CS.cfg"));
}

/* An empty password is refused, naming where it came from; the output may not be a folder. */
static void test_check_password_and_output(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackSecret) some = caback_secret_new("x", 1);
    g_autoptr(CabackSecret) none = caback_secret_new("", 0);

    g_assert_true(caback_backup_check_password(some, "given at the prompt", &error));
    g_assert_no_error(error);
    g_assert_false(caback_backup_check_password(none, "given at the prompt", &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    g_assert_nonnull(strstr(error->message, "password given at the prompt is empty"));
    g_clear_error(&error);

    g_autofree char *path = write_temp("empty.pass", "\n");
    CabackPasswordSource source = {.file = path};
    g_assert_null(caback_backup_password_read(&source, FALSE, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    g_autofree char *named = g_strdup_printf("password in %s is empty", path);
    g_assert_nonnull(strstr(error->message, named));
    g_clear_error(&error);

    g_autofree char *dir = g_path_get_dirname(path);
    g_assert_false(caback_backup_check_output(dir, FALSE, TRUE, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    g_assert_nonnull(strstr(error->message, "is a folder; give the file to write"));
    remove_temp(path);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/backup/trust-flags", test_trust_flags);
    g_test_add_func("/backup/trust-round-trip", test_trust_round_trip);
    g_test_add_func("/backup/password-file", test_password_file);
    g_test_add_func("/backup/cscfg", test_cscfg);
    g_test_add_func("/backup/describe-options", test_describe_options);
    g_test_add_func("/backup/check-selection", test_check_selection);
    g_test_add_func("/backup/check-password-and-output", test_check_password_and_output);
    return g_test_run();
}
