/* The signature workflows for a front end: caback_sign_run signs a file with a certificate of the
 * database and records that the latest backup is signed; caback_signature_check checks a detached
 * signature against a CA file or the database's trust. The command line only parses options into
 * these calls and prints their results; the CMS work is cms.c's. */
#include "config.h"

#include <caback/digest.h>
#include <caback/error.h>
#include <caback/log.h>
#include <caback/sign-run.h>
#include <caback/weak-key.h>

#include <string.h>

void caback_sign_result_clear(CabackSignResult *result)
{
    g_clear_pointer(&result->signer, CERT_DestroyCertificate);
    g_clear_pointer(&result->problem, g_free);
    g_clear_pointer(&result->signing_time, g_free);
    g_clear_pointer(&result->sha256, g_free);
}

gboolean caback_sign_check_paths(const char *path, const char *sig_path, gboolean force,
                                 GError **error)
{
    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "%s does not exist or is not a regular file; give the backup file to sign",
                    path);
        return FALSE;
    }
    /* Refuse before asking for a password; the atomic commit checks again without a window. */
    if (!force && g_file_test(sig_path, G_FILE_TEST_EXISTS)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%s already exists; it was left untouched (use --force to replace it)",
                    sig_path);
        return FALSE;
    }
    return TRUE;
}

/* Refuse a signer whose signatures every caback verifier (weak key, SHA-1 in the chain) or
 * cmsutil and openssl (usage, validity) would reject; a signer that only does not verify in the
 * database is kept, with the reason in @result->problem. */
static gboolean check_signer(const CabackSignRunOptions *options, CabackSignResult *result,
                             GError **error)
{
    CERTCertificate *signer = result->signer;
    const char *weak_key = NULL;
    g_autofree char *weak_cert = NULL;
    g_autofree char *weakness = caback_cms_signer_weakness(signer, PR_Now(), &weak_key, &weak_cert);
    if (weakness != NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "certificate \"%s\" cannot sign: %s; caback verify-signature and "
                    "caback restore refuse such signatures. Sign with a certificate whose "
                    "key is RSA of at least %d bits (exponent 65537) or EC on P-256, P-384 "
                    "or P-521, issued with SHA-256 or better",
                    options->signer, weakness, CABACK_WEAK_KEY_MIN_RSA_BITS);
        return FALSE;
    }
    gboolean unusable = FALSE;
    result->problem = caback_cms_check_signer(signer, options->db, &unusable);
    if (result->problem != NULL && unusable) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "certificate \"%s\" (%s) cannot sign: %s; caback, cmsutil and openssl "
                    "would reject its signatures. Use a valid certificate whose key usage allows "
                    "digitalSignature "
                    "or nonRepudiation and whose extended key usage, if any, includes "
                    "emailProtection (or codeSigning)",
                    options->signer, signer->subjectName, result->problem);
        return FALSE;
    }
    return TRUE;
}

/* Signing the recorded latest backup is recorded too: from now on "restore automatic" requires
 * this signature, so that removing it cannot pass for a backup never signed. */
static gboolean mark_latest_signed(const char *path, const char *sha256,
                                   void (*warning)(const char *, gpointer), gpointer data)
{
    g_autofree char *latest = NULL, *latest_sha = NULL;
    g_autofree char *absolute = g_canonicalize_filename(path, NULL);
    if (!caback_state_get_latest_backup_full(&latest, &latest_sha, NULL, NULL) ||
        strcmp(latest, absolute) != 0 || g_ascii_strcasecmp(latest_sha, sha256) != 0)
        return FALSE;
    g_autoptr(GError) e = NULL;
    if (caback_state_set_latest_backup_signed(latest, latest_sha, TRUE, &e))
        return TRUE;
    if (warning != NULL) {
        g_autofree char *message = g_strdup_printf(
            "%s is the latest recorded backup, but latest_backup could not be marked as signed: "
            "%s",
            path, e->message);
        warning(message, data);
    }
    return FALSE;
}

gboolean caback_sign_run(const CabackSignRunOptions *options,
                         void (*warning)(const char *message, gpointer data), gpointer data,
                         CabackSignResult *result, GError **error)
{
    CabackDb *db = options->db;

    result->signer = caback_cms_find_signer(db, options->signer, error);
    if (result->signer == NULL || !check_signer(options, result, error))
        return FALSE;
    if (result->problem != NULL && warning != NULL) {
        g_autofree char *message = g_strdup_printf(
            "certificate \"%s\" (%s) does not verify for signing in NSS database %s: %s; the "
            "signature will be accepted only where its issuer %s is trusted (caback "
            "verify-signature --ca CACERT, restore --signature-ca CERTFILE)",
            options->signer, result->signer->subjectName, db->dir, result->problem,
            result->signer->issuerName);
        warning(message, data);
    }
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    if (!caback_cms_write_signature(options->path, options->sig_path, result->signer, db,
                                    g_date_time_to_unix(now), options->force, error))
        return FALSE;
    result->sha256 = caback_digest_file_sha256_hex(options->path, error);
    if (result->sha256 == NULL)
        return FALSE;
    result->latest_signed = mark_latest_signed(options->path, result->sha256, warning, data);
    result->signing_time = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
    return TRUE;
}

void caback_signature_check_clear(CabackSignatureCheck *check)
{
    /* Every certificate reference must be gone before NSS shuts down. */
    g_clear_pointer(&check->verification, caback_cms_verification_free);
    g_clear_pointer(&check->anchors, CERT_DestroyCertList);
    g_clear_pointer(&check->trust, g_free);
}

gboolean caback_signature_check(const CabackSignatureCheckOptions *options,
                                CabackSignatureCheck *check, GError **problem, GError **error)
{
    if (options->ca_file != NULL) {
        check->anchors = caback_cms_load_anchors(options->ca_file, error);
        if (check->anchors == NULL)
            return FALSE;
        check->trust = g_strdup_printf("the CA file %s", options->ca_file);
    } else {
        check->trust = g_strdup_printf("NSS database %s", options->db->dir);
    }
    CabackCmsVerifyOptions verify = {.path = options->path,
                                     .sig_path = options->sig_path,
                                     .anchors = check->anchors,
                                     .trust = check->trust,
                                     .wincx = options->db,
                                     .at_signing_time = options->at_signing_time};
    caback_cms_verify(&verify, &check->verification, problem);
    return TRUE;
}
