/* caback sign: a detached CMS signature (SHA-256, signing time, signer's certificate chain) over
 * a file, written next to it as FILE.sig, so that tampering with a backup is detected before it
 * is restored. */
#include "config.h"

#include "cli.h"

#include <caback/cms.h>
#include <caback/digest.h>
#include <caback/json.h>
#include <caback/log.h>
#include <caback/nss-util.h>
#include <caback/weak-key.h>

#include <string.h>

gboolean caback_cmd_sign(int argc, char **argv, GError **error)
{
    CabackCommonOptions common = {0};
    g_autofree char *signer_nick = NULL;
    g_autofree char *output = NULL;
    gboolean force = FALSE;
    const GOptionEntry entries[] = {
        {"signer", 's', 0, G_OPTION_ARG_STRING, &signer_nick,
         "Nickname of the signing certificate (its private key must be in the database)",
         "NICKNAME"},
        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
         "Write the signature to SIGFILE (default: FILE.sig)", "SIGFILE"},
        {"force", 0, 0, G_OPTION_ARG_NONE, &force, "Replace an existing signature file", NULL},
        {NULL}};
    g_autoptr(GOptionContext) context = g_option_context_new("FILE");

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
    caback_cli_add_common(context, &common, CABACK_COMMON_DB | CABACK_COMMON_JSON);

    gboolean ok = FALSE;
    g_autoptr(CabackDb) db = NULL;
    g_autoptr(CERTCertificate) signer = NULL;
    g_autofree char *sig_path = NULL;
    g_autofree char *sha256 = NULL;
    g_autofree char *problem = NULL;
    g_autoptr(GDateTime) now = NULL;
    g_autofree char *when = NULL;

    if (!caback_cli_parse(context, "sign", &common, &argc, &argv, error))
        goto out;
    if (argc != 2) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    argc < 2 ? "no file to sign given (see: caback help sign)"
                             : "only one file can be signed at a time (see: caback help sign)");
        goto out;
    }
    if (signer_nick == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "--signer NICKNAME is required: the certificate whose key signs the file "
                    "(see: caback help sign)");
        goto out;
    }
    const char *path = argv[1];
    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "%s does not exist or is not a regular file; give the backup file to sign",
                    path);
        goto out;
    }
    sig_path = output != NULL ? g_strdup(output) : g_strconcat(path, ".sig", NULL);
    /* Refuse before asking for a password; the atomic commit checks again without a window. */
    if (!force && g_file_test(sig_path, G_FILE_TEST_EXISTS)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%s already exists; it was left untouched (use --force to replace it)",
                    sig_path);
        goto out;
    }

    db = caback_cli_open_db(&common, TRUE, error);
    if (db == NULL)
        goto out;
    signer = caback_cms_find_signer(db, signer_nick, error);
    if (signer == NULL)
        goto out;
    {
        /* A weak key, or SHA-1 in the chain: every caback verifier refuses such signatures. */
        const char *weak_key = NULL;
        g_autofree char *weak_cert = NULL;
        g_autofree char *weakness =
            caback_cms_signer_weakness(signer, PR_Now(), &weak_key, &weak_cert);
        if (weakness != NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                        "certificate \"%s\" cannot sign: %s; caback verify-signature and "
                        "caback restore refuse such signatures. Sign with a certificate whose "
                        "key is RSA of at least %d bits (exponent 65537) or EC on P-256, P-384 "
                        "or P-521, issued with SHA-256 or better",
                        signer_nick, weakness, CABACK_WEAK_KEY_MIN_RSA_BITS);
            goto out;
        }
    }
    gboolean unusable = FALSE;
    problem = caback_cms_check_signer(signer, db, &unusable);
    if (problem != NULL && unusable) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "certificate \"%s\" (%s) cannot sign: %s; caback, cmsutil and openssl "
                    "would reject its signatures. Use a valid certificate whose key usage allows "
                    "digitalSignature "
                    "or nonRepudiation and whose extended key usage, if any, includes "
                    "emailProtection (or codeSigning)",
                    signer_nick, signer->subjectName, problem);
        goto out;
    }
    if (problem != NULL)
        caback_cli_warning("certificate \"%s\" (%s) does not verify for signing in NSS database "
                           "%s: %s; the signature will be accepted only where its issuer %s is "
                           "trusted (caback verify-signature --ca CACERT, restore --signature-ca CERTFILE)",
                           signer_nick, signer->subjectName, db->dir, problem, signer->issuerName);
    now = g_date_time_new_now_utc();
    if (!caback_cms_write_signature(path, sig_path, signer, db, g_date_time_to_unix(now), force,
                                    error))
        goto out;
    sha256 = caback_digest_file_sha256_hex(path, error);
    if (sha256 == NULL)
        goto out;

    /* Signing the recorded latest backup is recorded too: from now on "restore automatic"
     * requires this signature, so that removing it cannot pass for a backup never signed. */
    gboolean latest_signed = FALSE;
    {
        g_autofree char *latest = NULL, *latest_sha = NULL;
        g_autofree char *absolute = g_canonicalize_filename(path, NULL);
        if (caback_state_get_latest_backup_full(&latest, &latest_sha, NULL, NULL) &&
            strcmp(latest, absolute) == 0 && g_ascii_strcasecmp(latest_sha, sha256) == 0) {
            g_autoptr(GError) e = NULL;
            latest_signed = caback_state_set_latest_backup_signed(latest, latest_sha, TRUE, &e);
            if (!latest_signed)
                caback_cli_warning("%s is the latest recorded backup, but latest_backup could "
                                   "not be marked as signed: %s",
                                   path, e->message);
        }
    }

    when = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
    if (common.json) {
        g_autoptr(CabackJson) json = caback_json_new();
        g_autofree char *absolute = g_canonicalize_filename(path, NULL);
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "file", absolute);
        caback_json_string(json, "signature", sig_path);
        caback_json_string(json, "signer", signer_nick);
        caback_json_string(json, "subject", signer->subjectName);
        caback_json_string(json, "issuer", signer->issuerName);
        caback_json_string(json, "signing_time", when);
        caback_json_string(json, "digest_algorithm", "SHA-256");
        caback_json_string(json, "sha256", sha256);
        caback_json_string(json, "warning", problem);
        caback_json_bool(json, "latest_backup_signed", latest_signed);
        caback_json_string(json, "nickname", signer_nick);
        caback_json_begin_array(json, "signers");
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "subject", signer->subjectName);
        caback_json_string(json, "issuer", signer->issuerName);
        caback_json_string(json, "nickname", signer_nick);
        caback_json_end_object(json);
        caback_json_end_array(json);
        caback_json_end_object(json);
        caback_cli_json_print(caback_json_text(json));
    } else {
        caback_cli_info("Signed %s: signature written to %s", path, sig_path);
        caback_cli_info("  signer:       %s (\"%s\")", signer->subjectName, signer_nick);
        caback_cli_info("  issuer:       %s", signer->issuerName);
        caback_cli_info("  signing time: %s", when);
        caback_cli_info("  SHA-256:      %s", sha256);
        if (latest_signed)
            caback_cli_info("Recorded: the latest backup is signed; caback restore automatic "
                            "now requires this signature");
    }
    ok = TRUE;
out:
    g_clear_pointer(&signer, CERT_DestroyCertificate);
    if (db != NULL && !caback_db_close(g_steal_pointer(&db), ok ? error : NULL))
        ok = FALSE;
    caback_cli_common_clear(&common);
    return ok;
}
