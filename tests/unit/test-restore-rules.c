/* Unit tests for the rules of caback restore that need no NSS (caback/restore-rules.h):
 * default trust by role, audit-signing detection, trust strings and --trust arguments, renamed
 * nicknames, the CS.cfg tags of Dogtag nicknames. */
#include "config.h"

#include <caback/error.h>
#include <caback/restore-rules.h>

#include <string.h>

static void test_default_trust(void)
{
    const char *why = NULL;

    /* is_ca, self_signed, has_key, audit */
    g_assert_cmpstr(caback_restore_default_trust(TRUE, TRUE, TRUE, FALSE, &why), ==, "CTu,Cu,Cu");
    g_assert_nonnull(strstr(why, "self-signed CA"));
    g_assert_cmpstr(caback_restore_default_trust(TRUE, TRUE, FALSE, FALSE, &why), ==, "CT,C,C");
    g_assert_cmpstr(caback_restore_default_trust(TRUE, FALSE, FALSE, FALSE, &why), ==, "CT,C,C");
    g_assert_nonnull(strstr(why, "without its key"));
    g_assert_cmpstr(caback_restore_default_trust(FALSE, FALSE, TRUE, TRUE, &why), ==, "u,u,Pu");
    g_assert_nonnull(strstr(why, "audit"));
    g_assert_cmpstr(caback_restore_default_trust(FALSE, FALSE, TRUE, FALSE, &why), ==, "u,u,u");
    /* A subordinate CA with its key is not self-signed: it gets what any certificate with its
     * key gets. */
    g_assert_cmpstr(caback_restore_default_trust(TRUE, FALSE, TRUE, FALSE, &why), ==, "u,u,u");
    /* Neither CA nor key: no trust at all. */
    g_assert_cmpstr(caback_restore_default_trust(FALSE, FALSE, FALSE, FALSE, &why), ==, ",,");
    g_assert_cmpstr(caback_restore_default_trust(FALSE, TRUE, FALSE, TRUE, NULL), ==, ",,");
    /* Every default is a valid trust string. */
    for (int i = 0; i < 16; i++)
        g_assert_true(caback_restore_trust_valid(
            caback_restore_default_trust(i & 1, i & 2, i & 4, i & 8, NULL)));
}

static void test_audit_signing(void)
{
    /* Dogtag's nickname, any case, any instance name. */
    g_assert_true(
        caback_restore_is_audit_signing("auditSigningCert cert-pki-ca", FALSE, FALSE, 0, TRUE));
    g_assert_true(
        caback_restore_is_audit_signing("AUDITSIGNINGCERT cert-x KRA", FALSE, FALSE, 0, FALSE));
    /* The profile: digitalSignature + nonRepudiation, or nonRepudiation alone, no EKU. */
    g_assert_true(caback_restore_is_audit_signing(NULL, FALSE, TRUE, 0xc0, FALSE));
    g_assert_true(caback_restore_is_audit_signing("signer", FALSE, TRUE, 0x40, FALSE));
    /* Not: digitalSignature only, extra bits, an EKU, a CA, no key usage at all. */
    g_assert_false(caback_restore_is_audit_signing(NULL, FALSE, TRUE, 0x80, FALSE));
    g_assert_false(caback_restore_is_audit_signing(NULL, FALSE, TRUE, 0xe0, FALSE));
    g_assert_false(caback_restore_is_audit_signing(NULL, FALSE, TRUE, 0xc0, TRUE));
    g_assert_false(caback_restore_is_audit_signing(NULL, TRUE, TRUE, 0xc0, FALSE));
    g_assert_false(
        caback_restore_is_audit_signing("Server-Cert cert-pki-ca", FALSE, FALSE, 0, FALSE));
}

static void test_trust_valid(void)
{
    const char *good[] = {",,", "CTu,Cu,Cu", "CT,C,C", "u,u,Pu", "P,,", "p,p,p", "w,c,T"};
    const char *bad[] = {"", ",", "u,u", "u,u,u,u", "CT,C,X", "ct,c,c ", "C T,C,C", "I,,", "G,,"};

    for (gsize i = 0; i < G_N_ELEMENTS(good); i++)
        g_assert_true(caback_restore_trust_valid(good[i]));
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
        g_assert_false(caback_restore_trust_valid(bad[i]));
    g_assert_false(caback_restore_trust_valid(NULL));
}

static void test_parse_trust(void)
{
    g_autofree char *nick = NULL, *flags = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_true(
        caback_restore_parse_trust("caSigningCert cert-pki-ca=CTu,Cu,Cu", &nick, &flags, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(nick, ==, "caSigningCert cert-pki-ca");
    g_assert_cmpstr(flags, ==, "CTu,Cu,Cu");
    g_clear_pointer(&nick, g_free);
    g_clear_pointer(&flags, g_free);

    /* Split at the last '=': a nickname may contain one. */
    g_assert_true(caback_restore_parse_trust("CN=Root=CT,C,C", &nick, &flags, &error));
    g_assert_cmpstr(nick, ==, "CN=Root");
    g_assert_cmpstr(flags, ==, "CT,C,C");

    const char *bad[] = {"no-equals", "=CT,C,C", "nick=", "nick=CT,C", "nick=Z,,"};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        char *n = NULL, *f = NULL;
        g_clear_error(&error);
        g_assert_false(caback_restore_parse_trust(bad[i], &n, &f, &error));
        g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
        g_assert_nonnull(strstr(error->message, bad[i]));
        g_assert_null(n);
        g_assert_null(f);
    }
}

/* Every --trust of a run into one table; the last flags of a nickname given twice win, and a
 * bad argument fails naming it. */
static void test_parse_trust_list(void)
{
    const char *const args[] = {"a=CT,C,C", "b=u,u,u", "a=,,", NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(GHashTable) trust = caback_restore_parse_trust_list(args, &error);

    g_assert_no_error(error);
    g_assert_cmpuint(g_hash_table_size(trust), ==, 2);
    g_assert_cmpstr(g_hash_table_lookup(trust, "a"), ==, ",,");
    g_assert_cmpstr(g_hash_table_lookup(trust, "b"), ==, "u,u,u");

    g_autoptr(GHashTable) none = caback_restore_parse_trust_list(NULL, &error);
    g_assert_nonnull(none);
    g_assert_cmpuint(g_hash_table_size(none), ==, 0);

    const char *const bad[] = {"a=CT,C,C", "oops", "b=Z,,", NULL};
    g_assert_null(caback_restore_parse_trust_list(bad, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    g_assert_nonnull(strstr(error->message, "\"oops\""));
}

/* Options that exclude each other: --replace with --rename, and --no-signature-check with what
 * only a checked signature means; the first pair given is named. */
static void test_exclusive_choices(void)
{
    g_autoptr(GError) error = NULL;

    g_assert_true(caback_restore_check_conflict_choice(TRUE, FALSE, &error));
    g_assert_true(caback_restore_check_conflict_choice(FALSE, TRUE, &error));
    g_assert_no_error(error);
    g_assert_false(caback_restore_check_conflict_choice(TRUE, TRUE, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    g_assert_nonnull(strstr(error->message, "--replace and --rename exclude each other"));
    g_clear_error(&error);

    g_assert_true(caback_restore_check_signature_choices(TRUE, FALSE, FALSE, FALSE, &error));
    g_assert_true(caback_restore_check_signature_choices(FALSE, TRUE, TRUE, TRUE, &error));
    g_assert_no_error(error);
    static const struct {
        gboolean at, require, ca;
        const char *named;
    } cases[] = {
        {TRUE, TRUE, TRUE, "--at-signing-time says when to check the signature that"},
        {FALSE, TRUE, TRUE, "--require-signature asks for the signature check that"},
        {FALSE, FALSE, TRUE, "--signature-ca says whom to trust for the signature check that"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_assert_false(caback_restore_check_signature_choices(TRUE, cases[i].at, cases[i].require,
                                                              cases[i].ca, &error));
        g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
        g_assert_true(g_str_has_prefix(error->message, cases[i].named));
        g_assert_nonnull(strstr(error->message, "--no-signature-check skips; give one or the "
                                                "other"));
        g_clear_error(&error);
    }
}

static void test_renamed(void)
{
    g_autofree char *a = caback_restore_renamed("caSigningCert cert-pki-ca", 1);
    g_autofree char *b = caback_restore_renamed("x", 12);

    g_assert_cmpstr(a, ==, "caSigningCert cert-pki-ca (restored 1)");
    g_assert_cmpstr(b, ==, "x (restored 12)");
}

static void test_cscfg_tag(void)
{
    g_assert_cmpstr(caback_restore_cscfg_tag("caSigningCert cert-pki-ca"), ==, "signing");
    g_assert_cmpstr(caback_restore_cscfg_tag("ocspSigningCert cert-pki-ca"), ==, "ocsp_signing");
    g_assert_cmpstr(caback_restore_cscfg_tag("subsystemCert cert-pki-tomcat"), ==, "subsystem");
    g_assert_cmpstr(caback_restore_cscfg_tag("Server-Cert cert-pki-ca"), ==, "sslserver");
    g_assert_cmpstr(caback_restore_cscfg_tag("auditSigningCert cert-pki-ca"), ==, "audit_signing");
    g_assert_cmpstr(caback_restore_cscfg_tag("storageCert cert-pki-kra"), ==, "storage");
    g_assert_cmpstr(caback_restore_cscfg_tag("transportCert cert-pki-kra"), ==, "transport");
    g_assert_cmpstr(caback_restore_cscfg_tag("HSM:caSigningCert cert-pki-ca"), ==, "signing");
    g_assert_null(caback_restore_cscfg_tag("caSigningCert"));
    g_assert_null(caback_restore_cscfg_tag("My Server"));
    g_assert_null(caback_restore_cscfg_tag(NULL));
}

static void test_action_names(void)
{
    g_assert_cmpstr(caback_restore_action_name(CABACK_RESTORE_ADD), ==, "add");
    g_assert_cmpstr(caback_restore_action_name(CABACK_RESTORE_SKIP), ==, "skip");
    g_assert_cmpstr(caback_restore_action_name(CABACK_RESTORE_TRUST), ==, "trust");
    g_assert_cmpstr(caback_restore_action_name(CABACK_RESTORE_CONFLICT), ==, "conflict");
    g_assert_cmpstr(caback_restore_action_name(CABACK_RESTORE_REPLACE), ==, "replace");
    g_assert_cmpstr(caback_restore_action_name(CABACK_RESTORE_RENAME), ==, "rename");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/restore/default-trust", test_default_trust);
    g_test_add_func("/restore/audit-signing", test_audit_signing);
    g_test_add_func("/restore/trust-valid", test_trust_valid);
    g_test_add_func("/restore/parse-trust", test_parse_trust);
    g_test_add_func("/restore/parse-trust-list", test_parse_trust_list);
    g_test_add_func("/restore/exclusive-choices", test_exclusive_choices);
    g_test_add_func("/restore/renamed", test_renamed);
    g_test_add_func("/restore/cscfg-tag", test_cscfg_tag);
    g_test_add_func("/restore/action-names", test_action_names);
    return g_test_run();
}
