/* caback verify-signature: check a detached CMS signature (from caback sign, cmsutil -S -T or
 * openssl cms -sign) over a file against an NSS database's trust or a given CA certificate. */
#include "config.h"

#include "cli.h"

#include <caback/digest.h>
#include <caback/json.h>
#include <caback/nss-util.h>
#include <caback/sign-run.h>

static char *format_unix(gint64 t)
{
    if (t < 0)
        return NULL;
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
    return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : NULL;
}

static void print_json(const char *path, const char *sig_path, const char *trust,
                       gboolean at_signing_time, const CabackCmsVerification *v,
                       const GError *problem)
{
    g_autoptr(CabackJson) json = caback_cli_json_object_new();

    caback_cli_json_path(json, "file", path);
    caback_json_string(json, "signature", sig_path);
    caback_json_bool(json, "valid", problem == NULL);
    caback_json_string(json, "trust", trust);
    caback_json_bool(json, "at_signing_time", at_signing_time);
    caback_json_bool(json, "signature_refused", v != NULL && v->signature_refused);
    caback_json_int(json, "trailing_bytes", v != NULL ? (gint64)v->trailing_bytes : 0);
    caback_json_string(json, "sha256", v != NULL ? v->sha256 : NULL);
    caback_json_begin_array(json, "signers");
    for (guint i = 0; v != NULL && i < v->signers->len; i++) {
        const CabackCmsSigner *s = v->signers->pdata[i];
        g_autofree char *when = format_unix(s->signing_time);
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "subject", s->subject);
        caback_json_string(json, "issuer", s->issuer);
        caback_json_string(json, "serial", s->serial);
        caback_json_string(json, "nickname", s->nickname);
        caback_json_string(json, "signing_time", when);
        caback_json_string(json, "digest_algorithm", s->digest_algorithm);
        caback_json_string(json, "digest", s->digest);
        caback_json_bool(json, "signature_ok", s->signature_ok);
        caback_json_string(json, "trusted_for", s->trusted_for);
        g_autofree char *checked_at = format_unix(s->checked_at);
        caback_json_string(json, "checked_at", checked_at);
        caback_json_bool(json, "checked_at_signing_time", s->at_signing_time);
        caback_json_bool(json, "future_signing_time", s->future_signing_time);
        caback_json_string(json, "weak_key", s->weak_key);
        caback_json_string(json, "weak_certificate", s->weak_certificate);
        caback_json_string(json, "problem", s->problem);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
    caback_json_string(json, "error", problem != NULL ? problem->message : NULL);
    caback_cli_json_object_print(json);
}

static void print_text(const CabackCmsVerification *v, gboolean valid)
{
    void (*out)(const char *, ...) = valid ? caback_cli_info : caback_cli_detail;

    if (valid)
        out("Signature %s on %s is valid.", v->signature, v->file);
    for (guint i = 0; i < v->signers->len; i++) {
        const CabackCmsSigner *s = v->signers->pdata[i];
        g_autofree char *when = format_unix(s->signing_time);
        out("  signer:       %s", s->subject != NULL ? s->subject : "(unknown)");
        out("  issuer:       %s", s->issuer != NULL ? s->issuer : "(unknown)");
        out("  signing time: %s", when != NULL ? when : "(not stated in the signature)");
        if (s->digest != NULL)
            out("  digest:       %s %s", s->digest_algorithm, s->digest);
        g_autofree char *checked_at = format_unix(s->checked_at);
        if (checked_at != NULL)
            out("  checked at:   %s (%s)", checked_at,
                s->at_signing_time ? "the signing time, --at-signing-time: the signer may have "
                                     "expired since"
                                   : "now");
        if (s->trusted_for != NULL)
            out("  trusted by:   %s (%s)", v->trust, s->trusted_for);
    }
}

/* The options of caback verify-signature: one table for the parser and the help. */
static GOptionContext *verify_signature_context(CabackCommonOptions *common, char **ca_file,
                                                gboolean *at_signing_time)
{
    const GOptionEntry entries[] = {
        {"dbdir", 'd', 0, G_OPTION_ARG_FILENAME, &common->dbdir,
         "NSS database whose trusted CAs decide (default: $CABACK_DBDIR, else the only Dogtag "
         "instance's alias folder); not needed with --ca",
         "DIR"},
        {"ca", 0, 0, G_OPTION_ARG_FILENAME, ca_file,
         "Trust only the CA certificate(s) in CERTFILE (PEM, several allowed, or DER) instead of "
         "the database",
         "CERTFILE"},
        {"at-signing-time", 0, 0, G_OPTION_ARG_NONE, at_signing_time,
         "Check the signer's certificate chain at the signing time the signature states instead "
         "of now (for an old backup whose signer has expired since; the output says so)",
         NULL},
        {NULL}};
    GOptionContext *context = g_option_context_new("FILE [SIGFILE]");

    g_option_context_set_summary(
        context, "Check the detached CMS signature SIGFILE (default: FILE.sig) over FILE: the "
                 "signature must match\nthe file's bytes and its signer must be trusted for "
                 "signing.");
    g_option_context_set_description(
        context,
        "Signatures made by caback sign, cmsutil -S -T and openssl cms -sign -binary (DER or "
        "PEM) are accepted,\nwith SHA-256, SHA-384 or SHA-512. The signer's certificate chain must be "
        "valid now (or at the stated\nsigning time with --at-signing-time) for email signing "
        "(the usage cmsutil checks) or for object signing;\na signing time later than now (by "
        "more than 5 minutes) is refused. A weak signer key (RSA under 2048 bits,\nan exponent "
        "under 65537, EC other than P-256/P-384/P-521, DSA) or SHA-1 in the signer's chain is "
        "refused.\nSIGFILE must be a regular file of at most 1 MiB holding one DER object. No "
        "password is needed.\n"
        "Exit status 0: valid; 1: the file does not match, the signer is not trusted, or the "
        "signature is damaged.\n\n"
        "Example: caback verify-signature /backup/ca.p12 --ca /root/ca.pem\n");
    g_option_context_add_main_entries(context, entries, NULL);
    caback_cli_add_common(context, common, CABACK_COMMON_JSON);
    return context;
}

/* FILE and SIGFILE (default FILE.sig) from the arguments left after the options. */
static char *check_arguments(int argc, char **argv, GError **error)
{
    if (argc < 2 || argc > 3) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    argc < 2 ? "no file given: caback verify-signature FILE [SIGFILE]"
                             : "too many arguments: caback verify-signature FILE [SIGFILE]");
        return NULL;
    }
    const char *path = argv[1];
    g_autofree char *sig_path = argc == 3 ? g_strdup(argv[2]) : g_strconcat(path, ".sig", NULL);
    /* A missing FILE is named as such, not as a missing FILE.sig. */
    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "the file to check, %s, does not exist; give the signed file (its signature "
                    "%s is the second argument, when it is not FILE.sig)",
                    path, sig_path);
        return NULL;
    }
    return g_steal_pointer(&sig_path);
}

gboolean caback_cmd_verify_signature(int argc, char **argv, GError **error)
{
    CabackCommonOptions common = {0};
    g_autofree char *ca_file = NULL;
    gboolean at_signing_time = FALSE;
    g_autoptr(GOptionContext) context =
        verify_signature_context(&common, &ca_file, &at_signing_time);
    gboolean ok = FALSE;
    g_autoptr(CabackDb) db = NULL;
    NSSInitContext *nodb = NULL;
    CabackSignatureCheck check = {0};
    g_autofree char *sig_path = NULL;
    g_autoptr(GError) problem = NULL;

    if (!caback_cli_parse(context, "verify-signature", &common, &argc, &argv, error) ||
        (sig_path = check_arguments(argc, argv, error)) == NULL)
        goto out;
    const char *path = argv[1];
    if (ca_file == NULL || common.dbdir != NULL) {
        CabackDbOptions db_options = {.dbdir = common.dbdir, .read_only = TRUE};
        /* Checking needs no private key: the database is opened without logging in. */
        db = caback_db_open(&db_options, error);
        if (db == NULL)
            goto out;
    } else if ((nodb = caback_nss_nodb_open(error)) == NULL) {
        goto out;
    }
    CabackSignatureCheckOptions options = {.db = db,
                                           .path = path,
                                           .sig_path = sig_path,
                                           .ca_file = ca_file,
                                           .at_signing_time = at_signing_time};
    if (!caback_signature_check(&options, &check, &problem, error))
        goto out;
    const CabackCmsVerification *v = check.verification;
    if (problem != NULL && (v == NULL || (v->signature_refused && !common.json))) {
        /* Not even decodable (missing file, not a signature): nothing to show. */
        g_propagate_error(error, g_steal_pointer(&problem));
        goto out;
    }
    if (common.json)
        print_json(path, sig_path, check.trust, at_signing_time, v, problem);
    else
        print_text(v, problem == NULL);
    if (problem != NULL) {
        g_propagate_error(error, g_steal_pointer(&problem));
        goto out;
    }
    ok = TRUE;
out:
    caback_signature_check_clear(&check);
    if (db != NULL && !caback_db_close(g_steal_pointer(&db), ok ? error : NULL))
        ok = FALSE;
    if (nodb != NULL && !caback_nss_nodb_close(nodb, ok ? error : NULL))
        ok = FALSE;
    caback_cli_common_clear(&common);
    return ok;
}
