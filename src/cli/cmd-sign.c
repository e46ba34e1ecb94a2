/* caback sign: a detached CMS signature (SHA-256, signing time, signer's certificate chain) over
 * a file, written next to it as FILE.sig, so that tampering with a backup is detected before it
 * is restored. */
#include "config.h"

#include "cli.h"

#include <caback/json.h>
#include <caback/sign-run.h>

static void on_warning(const char *message, gpointer data)
{
    (void)data;
    caback_cli_warning("%s", message);
}

static void print_json(const char *path, const char *sig_path, const char *signer_nick,
                       const CabackSignResult *r)
{
    g_autoptr(CabackJson) json = caback_cli_json_object_new();
    caback_cli_json_path(json, "file", path);
    caback_json_string(json, "signature", sig_path);
    caback_json_string(json, "signer", signer_nick);
    caback_json_string(json, "subject", r->signer->subjectName);
    caback_json_string(json, "issuer", r->signer->issuerName);
    caback_json_string(json, "signing_time", r->signing_time);
    caback_json_string(json, "digest_algorithm", "SHA-256");
    caback_json_string(json, "sha256", r->sha256);
    caback_json_string(json, "warning", r->problem);
    caback_json_bool(json, "latest_backup_signed", r->latest_signed);
    caback_json_string(json, "nickname", signer_nick);
    caback_json_begin_array(json, "signers");
    caback_json_begin_object(json, NULL);
    caback_json_string(json, "subject", r->signer->subjectName);
    caback_json_string(json, "issuer", r->signer->issuerName);
    caback_json_string(json, "nickname", signer_nick);
    caback_json_end_object(json);
    caback_json_end_array(json);
    caback_cli_json_object_print(json);
}

static void print_text(const char *path, const char *sig_path, const char *signer_nick,
                       const CabackSignResult *r)
{
    caback_cli_info("Signed %s: signature written to %s", path, sig_path);
    caback_cli_info("  signer:       %s (\"%s\")", r->signer->subjectName, signer_nick);
    caback_cli_info("  issuer:       %s", r->signer->issuerName);
    caback_cli_info("  signing time: %s", r->signing_time);
    caback_cli_info("  SHA-256:      %s", r->sha256);
    if (r->latest_signed)
        caback_cli_info("Recorded: the latest backup is signed; caback restore automatic "
                        "now requires this signature");
}

/* The options of caback sign: one table for the parser and the help. */
static GOptionContext *sign_context(char **signer_nick, char **output, gboolean *force,
                                    CabackCommonOptions *common)
{
    const GOptionEntry entries[] = {
        {"signer", 's', 0, G_OPTION_ARG_STRING, signer_nick,
         "Nickname of the signing certificate (its private key must be in the database)",
         "NICKNAME"},
        {"output", 'o', 0, G_OPTION_ARG_FILENAME, output,
         "Write the signature to SIGFILE (default: FILE.sig)", "SIGFILE"},
        {"force", 0, 0, G_OPTION_ARG_NONE, force, "Replace an existing signature file", NULL},
        {NULL}};
    GOptionContext *context = g_option_context_new("FILE");

    g_option_context_set_summary(
        context, "Sign FILE (a backup) with a detached CMS signature: SHA-256, a signing-time "
                 "attribute and the signer's\ncertificate chain, in DER, written to FILE.sig.");
    g_option_context_set_description(
        context,
        "The signature is checked by \"caback verify-signature FILE\", by NSS (cmsutil -D -n -h 1 "
        "-u 4 -c FILE -i FILE.sig\n-d sql:DIR, which prints signer0.status=GoodSignature and not "
        "the file) and by OpenSSL (openssl cms -verify -binary -inform DER -in "
        "FILE.sig -content FILE -CAfile CA.pem).\nThe signing certificate should allow email "
        "signing (key usage digitalSignature or nonRepudiation,\nextended key usage "
        "emailProtection or none) or object signing (codeSigning).\n"
        "An existing signature file is not replaced without --force (exit status 4).\n\n"
        "Example: caback sign /backup/ca.p12 --signer \"Backup Signer\" -d /root/signing-db\n");
    g_option_context_add_main_entries(context, entries, NULL);
    caback_cli_add_common(context, common, CABACK_COMMON_DB | CABACK_COMMON_JSON);
    return context;
}

static gboolean check_arguments(int argc, const char *signer_nick, GError **error)
{
    if (argc != 2) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    argc < 2 ? "no file to sign given (see: caback help sign)"
                             : "only one file can be signed at a time (see: caback help sign)");
        return FALSE;
    }
    if (signer_nick == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "--signer NICKNAME is required: the certificate whose key signs the file "
                    "(see: caback help sign)");
        return FALSE;
    }
    return TRUE;
}

gboolean caback_cmd_sign(int argc, char **argv, GError **error)
{
    CabackCommonOptions common = {0};
    g_autofree char *signer_nick = NULL;
    g_autofree char *output = NULL;
    gboolean force = FALSE;
    g_autoptr(GOptionContext) context = sign_context(&signer_nick, &output, &force, &common);
    gboolean ok = FALSE;
    g_autoptr(CabackDb) db = NULL;
    g_autofree char *sig_path = NULL;
    CabackSignResult result = {0};

    if (!caback_cli_parse(context, "sign", &common, &argc, &argv, error) ||
        !check_arguments(argc, signer_nick, error))
        goto out;
    const char *path = argv[1];
    sig_path = output != NULL ? g_strdup(output) : g_strconcat(path, ".sig", NULL);
    if (!caback_sign_check_paths(path, sig_path, force, error))
        goto out;
    db = caback_cli_open_db(&common, TRUE, error);
    if (db == NULL)
        goto out;
    CabackSignRunOptions options = {
        .db = db, .path = path, .sig_path = sig_path, .signer = signer_nick, .force = force};
    if (!caback_sign_run(&options, on_warning, NULL, &result, error))
        goto out;
    if (common.json)
        print_json(path, sig_path, signer_nick, &result);
    else
        print_text(path, sig_path, signer_nick, &result);
    ok = TRUE;
out:
    caback_sign_result_clear(&result);
    if (db != NULL && !caback_db_close(g_steal_pointer(&db), ok ? error : NULL))
        ok = FALSE;
    caback_cli_common_clear(&common);
    return ok;
}
