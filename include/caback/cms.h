/* Detached CMS (PKCS#7) signatures over files: SignedData with a SHA-256 digest, a signing-time
 * attribute and the signer's certificate chain, as "cmsutil -S -T -G" and "openssl cms -sign
 * -binary" make them, and their verification against an NSS database's trust or a given CA.
 *
 * Signer certificates are accepted for email signing (certUsageEmailSigner: key usage
 * digitalSignature or nonRepudiation, extended key usage emailProtection or none; the usage
 * cmsutil checks by default and the one openssl's default smimesign purpose matches) and, failing
 * that, for object signing (certUsageObjectSigner: extended key usage codeSigning). Both are
 * checked at the verifier's time (now), as openssl cms -verify does: a signing time the
 * signature states is information, never the clock. Checking at that stated time instead is an
 * explicit choice (CabackCmsVerifyOptions.at_signing_time, for old backups whose signer has
 * since expired), and the result says so. A signing time later than now (beyond
 * CABACK_CMS_CLOCK_SKEW) is refused either way.
 *
 * Strength: a signer whose key is weak (include/caback/weak-key.h, the same rule as for restored
 * keys) is refused, and so is SHA-1 (or MD5) in the signer's certificate chain, as it is in the
 * CMS digest. */
#pragma once

#include <glib.h>

#include <caback/db.h>

#include <cert.h>

G_BEGIN_DECLS

/* The certificate @nickname of @db with its private key, for signing: "TOKEN:nickname" and, when
 * @db's token is not the internal one, the nickname on that token are looked up. Fails with
 * CABACK_ERROR_NOT_FOUND when there is no such certificate or it has no private key in @db. */
CERTCertificate *caback_cms_find_signer(CabackDb *db, const char *nickname, GError **error);

/* How far a signing time may lie ahead of the verifier's clock (seconds): clocks drift. */
#define CABACK_CMS_CLOCK_SKEW 300

/* The largest signature file read (bytes): a CMS signature with a certificate chain is a few
 * kilobytes. */
#define CABACK_CMS_SIGNATURE_MAX (1024 * 1024)

/* Why @signer's strength would make caback refuse its signatures: its key is weak (the reason of
 * caback_weak_key_check_spki) or a certificate of its chain (found in the open databases and
 * temporary certificates, at @when) is signed with SHA-1 or MD5; NULL when neither. *@weak_key
 * (may be NULL) receives caback_weak_key_name of the key's weakness, or NULL; *@weak_cert (may
 * be NULL) the subject of the certificate signed with a weak digest (caller frees), or NULL.
 * The self-signature of a root is not judged: a root is trusted as it is, not for its
 * signature. Caller frees the result. */
char *caback_cms_signer_weakness(CERTCertificate *signer, PRTime when, const char **weak_key,
                                 char **weak_cert);

/* Why @signer would not be accepted by caback_cms_verify_file against the database's own trust
 * at this moment, or NULL when it would be; caller frees. *@unusable (may be NULL) tells whether
 * no trust can help (unsuitable key usage or certificate type, expired), as opposed to an issuer
 * this database does not trust, whose signatures can still be checked elsewhere with --ca. */
char *caback_cms_check_signer(CERTCertificate *signer, void *wincx, gboolean *unusable);

/* A detached SignedData over the bytes of @path (read in pieces), signed with @signer's private
 * key (@wincx: the CabackDb for its password) and stating @signing_time (Unix time),
 * DER-encoded. */
GBytes *caback_cms_sign_file(const char *path, CERTCertificate *signer, void *wincx,
                             gint64 signing_time, GError **error);

/* caback_cms_sign_file written to @sig_path through an atomic file (mode 0644); an existing
 * @sig_path is refused with CABACK_ERROR_CONFLICT unless @replace. */
gboolean caback_cms_write_signature(const char *path, const char *sig_path, CERTCertificate *signer,
                                    void *wincx, gint64 signing_time, gboolean replace,
                                    GError **error);

/* One signer of a verified signature. */
typedef struct {
    char *subject;          /* the signer certificate's subject, e.g. "CN=Backup Signer,O=X" */
    char *issuer;           /* its issuer */
    char *serial;           /* its serial number, hex */
    char *nickname;         /* its nickname in the database, or NULL */
    gint64 signing_time;    /* Unix time the signature states, or -1 when it has none */
    char *digest_algorithm; /* "SHA-256" (or SHA-384, SHA-512); NULL when not accepted */
    char *digest;           /* the file's digest with that algorithm, hex */
    gboolean signature_ok;  /* the signature matches the file and the signer's key */
    char *trusted_for;      /* "email signing" or "object signing"; NULL when not trusted */
    char *problem;          /* why this signer is not valid; NULL when valid */
    gint64 checked_at;         /* the time the signer's chain was checked at (Unix), -1: not */
    gboolean at_signing_time;  /* checked_at is the stated signing time (--at-signing-time) */
    gboolean future_signing_time; /* refused: the signing time is later than now */
    const char *weak_key;      /* caback_weak_key_name of the signer key's weakness, or NULL */
    char *weak_certificate;    /* subject of a chain certificate signed with SHA-1/MD5, or NULL */
} CabackCmsSigner;

typedef struct {
    char *file;
    char *signature;
    char *sha256;       /* the file's SHA-256, hex */
    char *trust;        /* what was trusted: "NSS database /x" or "CA file ca.pem" */
    GPtrArray *signers; /* CabackCmsSigner, in the signature's order */
    gboolean signature_refused; /* the signature file was refused before it was decoded: not a
                                   regular file, over the size cap, trailing bytes... */
    gsize trailing_bytes;       /* bytes after the signature's encoding (refused), or 0 */
} CabackCmsVerification;

void caback_cms_verification_free(CabackCmsVerification *verification);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackCmsVerification, caback_cms_verification_free)

/* What caback_cms_verify checks, and against what. */
typedef struct {
    const char *path;      /* the signed file: read when @data is NULL, else only named */
    GBytes *data;          /* the signed file's bytes, already read by the caller, or NULL: the
                              signature is then checked against exactly these bytes */
    const char *sig_path;  /* the signature file */
    CERTCertList *anchors; /* trust only these CA certificates; NULL: the database's trust */
    const char *trust;     /* that source, for messages */
    void *wincx;
    gboolean at_signing_time; /* check the signer's chain at the signing time the signature
                                 states (--at-signing-time) instead of now */
} CabackCmsVerifyOptions;

/* caback_cms_verify_file with the choices of @options (see there). */
gboolean caback_cms_verify(const CabackCmsVerifyOptions *options, CabackCmsVerification **result,
                           GError **error);

/* Verify the detached signature @sig_path (DER, or PEM "CMS"/"PKCS7") over @path. NSS must be
 * open. Signer certificates are taken from the signature and from the open database; they are
 * trusted through @anchors when not NULL (only those CA certificates), else through the database's
 * trust flags, at the current time. @trust describes that source for messages. @sig_path is read
 * only when it is a regular file of at most CABACK_CMS_SIGNATURE_MAX bytes, without following a
 * symbolic link or blocking, and must hold exactly one DER object (no trailing bytes). Returns
 * TRUE when every signer is valid. Fails with CABACK_ERROR_FAILED when the signature does not match the file ("signature
 * does not match FILE (...)"), when a signer is not trusted (naming its subject and issuer), or
 * when @sig_path is not a signature; CABACK_ERROR_NOT_FOUND / _IO when a file cannot be read.
 * *@result (may be NULL) receives the details whenever the signature could be decoded, also on
 * failure, and when the signature file itself was refused (signature_refused). */
gboolean caback_cms_verify_file(const char *path, const char *sig_path, CERTCertList *anchors,
                                const char *trust, void *wincx, CabackCmsVerification **result,
                                GError **error);

/* The certificates of a PEM file (every "CERTIFICATE" block), or its whole contents when it is
 * not PEM (taken as one DER certificate): an array of GBytes. Pure: no NSS. */
GPtrArray *caback_pem_certificates(const char *data, gsize len);

/* The DER bytes of the first PEM block of @data whose label is in @labels (NULL-terminated), or
 * NULL when there is none. Pure: no NSS. */
GBytes *caback_pem_decode_first(const char *data, gsize len, const char *const *labels);

/* The CA certificates of @path (PEM, several allowed, or DER) as temporary certificates, for
 * the @anchors of caback_cms_verify_file. NSS must be open; destroy the list before closing it. */
CERTCertList *caback_cms_load_anchors(const char *path, GError **error);

G_END_DECLS
