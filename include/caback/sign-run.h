/* The signature workflows for a front end (sign-run.c): sign a file with a certificate of the
 * database (caback sign), check a detached signature against the database's trust or a CA file
 * (caback verify-signature). The CMS work itself is cms.c's. */
#pragma once

#include <glib.h>

#include <caback/cms.h>
#include <caback/db.h>

G_BEGIN_DECLS

/* ---- caback sign ---- */

/* What caback_sign_run is asked to do. */
typedef struct {
    CabackDb *db;         /* open and logged in; closed by the caller after caback_sign_result_clear */
    const char *path;     /* the file to sign */
    const char *sig_path; /* where the signature goes */
    const char *signer;   /* the signing certificate's nickname */
    gboolean force;       /* replace an existing @sig_path */
} CabackSignRunOptions;

/* What caback_sign_run did. */
typedef struct {
    CERTCertificate *signer; /* the signing certificate (an NSS reference) */
    char *problem;       /* why the signer does not verify for signing in the database, or NULL */
    char *signing_time;  /* the signing time the signature states, "YYYY-MM-DDTHH:MM:SSZ" */
    char *sha256;        /* the signed file's SHA-256, hex */
    gboolean latest_signed; /* latest_backup is now marked as signed */
} CabackSignResult;

/* Free what @result holds (before the database is closed: the signer is an NSS reference). */
void caback_sign_result_clear(CabackSignResult *result);

/* The checks that spare the user the database password: @path is a regular file
 * (CABACK_ERROR_NOT_FOUND), @sig_path does not exist unless @force (CABACK_ERROR_CONFLICT).
 * Changes nothing. */
gboolean caback_sign_check_paths(const char *path, const char *sig_path, gboolean force,
                                 GError **error);

/* Sign options->path with the certificate options->signer of options->db: refuse a weak signer
 * key or SHA-1 in its chain, and a signer that cmsutil and openssl would reject; call @warning
 * (may be NULL) for a signer that does not verify in the database but can still sign; write the
 * detached signature (caback_cms_write_signature) and, when the file is the recorded latest
 * backup, mark latest_backup as signed (a failure there is a @warning). @result is filled as far
 * as the run went; clear it in every case. */
gboolean caback_sign_run(const CabackSignRunOptions *options,
                         void (*warning)(const char *message, gpointer data), gpointer data,
                         CabackSignResult *result, GError **error);

/* ---- caback verify-signature ---- */

/* What caback_signature_check is asked to do. NSS is open: options->db when the database's trust
 * decides or was named, else a context without a database. */
typedef struct {
    CabackDb *db;            /* the database opened without logging in, or NULL */
    const char *path;        /* the signed file */
    const char *sig_path;    /* its detached signature */
    const char *ca_file;     /* trust only these CA certificates, or NULL: the database's */
    gboolean at_signing_time; /* check the chain at the stated signing time */
} CabackSignatureCheckOptions;

/* What caback_signature_check found. */
typedef struct {
    char *trust;                          /* "the CA file X" or "NSS database X" */
    CERTCertList *anchors;                /* the CA file's certificates, or NULL */
    CabackCmsVerification *verification;  /* the details, when the signature could be decoded */
} CabackSignatureCheck;

/* Free what @check holds (before NSS is closed). */
void caback_signature_check_clear(CabackSignatureCheck *check);

/* Check options->sig_path over options->path (caback_cms_verify) against the CA file or the
 * database. Returns FALSE with @error when the check could not be made at all (the CA file cannot
 * be read); otherwise TRUE, with *@problem set when the signature is not valid (then
 * @check->verification holds what could be decoded, or NULL). */
gboolean caback_signature_check(const CabackSignatureCheckOptions *options,
                                CabackSignatureCheck *check, GError **problem, GError **error);

G_END_DECLS
