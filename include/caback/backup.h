/* caback backup: choosing what goes into a backup (certificates that have their private key on
 * the token, each with its key and issuer chain), writing it through the PKCS#12 writer, and
 * verifying the written file before it replaces anything. NSS-touching; the selection keeps NSS
 * references until it is freed, so free it before caback_db_close. */
#pragma once

#include <glib.h>

#include <caback/db.h>
#include <caback/keys.h>
#include <caback/p12.h>
#include <caback/secret.h>

#include <cert.h>
#include <keyhi.h>

G_BEGIN_DECLS

typedef struct CabackBackupCert CabackBackupCert;

/* One private key of the backup (keys are distinct by CKA_ID). */
typedef struct {
    SECKEYPrivateKey *key;  /* owned reference */
    CabackKeyInfo *info;    /* CKA_ID in every form (info->raw_id is the localKeyID) */
    char *nickname;         /* friendlyName: the nickname of its certificate */
    CabackBackupCert *cert; /* the certificate the key is checked against (borrowed) */
} CabackBackupKey;

/* One certificate of the backup. */
struct CabackBackupCert {
    CERTCertificate *cert; /* owned reference */
    char *nickname;        /* as certutil -n takes it; NULL when the certificate has none */
    char *subject;         /* the subject DN as NSS prints it */
    char *trust;           /* the NSS trust string, e.g. "CTu,Cu,Cu" (caback_backup_trust_string) */
    CabackBackupKey *key;  /* its private key (borrowed), NULL for a chain certificate */
    gboolean selected;     /* chosen (has a key) rather than only part of an issuer chain */
};

typedef struct {
    GPtrArray *keys;     /* of CabackBackupKey*, in selection order */
    GPtrArray *certs;    /* of CabackBackupCert*: selected ones first, then the chain */
    GPtrArray *warnings; /* of char*: incomplete chains, keys without certificate... */
    char *token_name;    /* the token the keys come from */
    gboolean certs_only; /* --certs-only: the certificates of the keys, but no key */
} CabackBackupSelection;

void caback_backup_selection_free(CabackBackupSelection *selection);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackBackupSelection, caback_backup_selection_free)

/* Choose what a backup of @db's token holds. With @nicknames NULL or empty: every certificate on
 * the token whose private key is on the token. Otherwise every certificate with one of
 * @nicknames (all of them when a nickname names several, e.g. an old and a re-keyed CA
 * certificate) with its private key. Each selected certificate brings its issuer chain from the
 * database (without keys). Fails with CABACK_ERROR_NOT_FOUND naming every unknown nickname or a
 * nickname none of whose certificates has a private key, or when the token has no certificate
 * with a key; with CABACK_ERROR_NOT_EXPORTABLE naming each key (nickname, key ID, token) that the
 * token marks not extractable, so nothing slow is started in vain. With @certs_only, the same
 * certificates (and chains) without any private key and without the exportability check: for
 * keys that cannot leave their token. */
CabackBackupSelection *caback_backup_select_full(CabackDb *db, const char *const *nicknames,
                                                 gboolean certs_only, GError **error);

/* Called before each slow step: @stage is "export" (wrapping the key into the file) or "verify"
 * (decrypting it again); @index counts from 1 to @total. */
typedef void (*CabackBackupProgress)(const char *stage, guint index, guint total,
                                     const CabackBackupKey *key, gpointer user_data);

/* Encode @selection as a PKCS#12 file through @writer, which the caller made
 * (caback_p12_writer_new) and still owns: made early, its slow key derivations run while the
 * caller opens the database and chooses the keys. For each key a shrouded key bag and its
 * certificate bag sharing friendlyName (the nickname) and localKeyID (the CKA_ID), every
 * certificate bag with its trust flags. Fails with CABACK_ERROR_NOT_EXPORTABLE (naming the key)
 * when the token will not let a key out. The writer is finished here; it can serve
 * caback_backup_verify_bytes afterwards. @progress may be NULL. */
GBytes *caback_backup_encode_writer(CabackDb *db, CabackBackupSelection *selection,
                                    CabackP12Writer *writer, CabackBackupProgress progress,
                                    gpointer user_data, GError **error);

/* What verification found. */
typedef struct {
    guint keys;     /* keys decrypted and matched with their certificate */
    guint certs;    /* certificates found with the right attributes */
    char *mac;      /* the MAC as the reader describes it */
    char *key_alg;  /* how the keys are protected (the first key's description) */
    char *cert_alg; /* how the certificates' safe is protected */
} CabackBackupReport;

void caback_backup_report_clear(CabackBackupReport *report);

/* Check @bytes, the file's contents as read back from the descriptor it was written through
 * (@path only names it in messages; what is checked is exactly these bytes, which the caller then
 * digests and links, never a name read again): read with @password (MAC checked), using the keys
 * that caback_p12_writer_prepare_verify derived again for @writer's file (@writer may be NULL),
 * decrypt every key into a throwaway session object on NSS's internal slot, check that it signs
 * a test value that its certificate's public key verifies, and that every key and certificate of
 * @selection is in the file exactly once with its friendlyName, localKeyID and trust flags, and
 * nothing else is. Fails with CABACK_ERROR_PKCS12 saying what is wrong. Fills @report on
 * success. */
gboolean caback_backup_verify_bytes(CabackBackupSelection *selection, GBytes *bytes,
                                    const char *path, const CabackSecret *password,
                                    CabackP12Writer *writer, CabackBackupProgress progress,
                                    gpointer user_data, CabackBackupReport *report, GError **error);

/* The nicknames of a Dogtag subsystem's system certificates, from the CS.cfg file @path: the
 * tags of <sub>.cert.list (<sub> is the file's subsystem: ca, kra, ocsp, tks or tps) mapped to
 * their nicknames, leaving out sslserver unless @include_sslserver. Fails with
 * CABACK_ERROR_CSCFG when the file has no cert list or a tag has no nickname. A NULL-terminated
 * array; caller frees (g_strfreev). */
char **caback_backup_cscfg_nicknames(const char *path, gboolean include_sslserver, GError **error);

/* @trust as certutil -L prints it and Dogtag stores it in its PKCS#12 trust attribute, e.g.
 * "CTu,Cu,Cu" or "u,u,Pu" (libnss3 does not export CERT_EncodeTrustString). Pure; caller frees. */
char *caback_backup_trust_string(const CERTCertTrust *trust);

/* Describe the algorithms @options writes: @keys and @certs ("PBES2 (PBKDF2-HMAC-SHA256,
 * AES-256-CBC)"), @mac ("HMAC-SHA256"); returns the iteration count used. Static strings. */
guint caback_backup_describe_options(const CabackP12WriteOptions *options, const char **keys,
                                     const char **certs, const char **mac);

/* ---- one whole backup, for a front end (backup-run.c) ---- */

/* What caback_backup_run is asked to do. */
typedef struct {
    CabackDb *db;                 /* open and logged in; closed by the caller after
                                   * caback_backup_result_clear */
    const char *output;           /* the PKCS#12 file to write */
    const char *const *nicknames; /* NULL: every certificate whose key is on the token */
    gboolean certs_only;          /* certificates and trust flags, no private key */
    CabackP12WriteOptions write;  /* profile, MAC, iterations */
    const CabackSecret *password; /* the file's password; NULL: hooks->ask_password */
    gboolean force;               /* replace @output when it exists */
    gboolean no_verify;           /* do not read the file back (it is then not recorded) */
    gboolean allow_shared_folder; /* write into a folder other users may write */
    /* M-of-N custody (doc/custody.md), when custody_threshold > 0: @password must be NULL; the
     * password is made here from 32 random bytes (caback_custody_secret_new) and never leaves
     * the run except split custody_threshold of custodians->len (CabackCustodian of
     * caback_custodians_load), one share file per custodian next to @output
     * (caback_share_set_prepare); the file is verified (no_verify must be FALSE) with the
     * password rebuilt from the shares, and the share files are put in place just before it. */
    guint custody_threshold;
    GPtrArray *custodians;
    /* Do not point latest_backup at @output (reshare's pending file, not a backup of its own). */
    gboolean not_latest;
} CabackBackupRunOptions;

/* How caback_backup_run talks to its front end while it works; every member may be NULL. */
typedef struct {
    /* The selection is made (with its warnings, weak keys among them), before any password is
     * asked for: show or record it. */
    void (*selected)(const CabackBackupSelection *selection, gpointer data);
    /* The password for the new file, when options->password is NULL; NULL and @error to stop. The
     * run frees it (caback_secret_free). */
    CabackSecret *(*ask_password)(gpointer data, GError **error);
    /* Something went wrong that does not fail the run (the latest_backup pointer). */
    void (*warning)(const char *message, gpointer data);
    gpointer data;
} CabackBackupHooks;

/* What caback_backup_run did. */
typedef struct {
    CabackBackupSelection *selection; /* what was (or was to be) written; NSS references */
    CabackBackupReport report;        /* what verification found */
    gboolean verified;                /* read back and checked */
    char *sha256;                     /* the file's SHA-256, when verified and in place */
    gboolean latest_updated;          /* latest_backup now points at the file */
    GPtrArray *share_files;           /* char*: custody: the share files in place, index order */
    GPtrArray *share_digests;         /* char*: custody: caback_share_text_digest of each */
} CabackBackupResult;

/* Free what @result holds (before the database is closed: the selection holds NSS references). */
void caback_backup_result_clear(CabackBackupResult *result);

/* The checks that spare the user the password and the key derivations, made again when the file
 * is written: @output is not a folder (CABACK_ERROR_USAGE), its folder exists, is private unless
 * @allow_shared_folder (caback_folder_check_private), and @output does not exist unless @force
 * (CABACK_ERROR_CONFLICT). Changes nothing. */
gboolean caback_backup_check_output(const char *output, gboolean force,
                                    gboolean allow_shared_folder, GError **error);

/* The object caback backup --json prints for the finished run of @options (@result filled by
 * caback_backup_run), as caback_json_text writes it; call it before the database is closed.
 * Caller frees. */
char *caback_backup_run_json(const CabackBackupRunOptions *options,
                             const CabackBackupResult *result);

/* The writer settings of the option values a front end was given: @mac ("hmac", "pbmac1"; NULL
 * for the default), @legacy, @iterations (a whole number from 1 to 10000000; NULL for the
 * default). Every combination that cannot work is CABACK_ERROR_USAGE, naming the option and
 * pointing to "caback help @verb". Pure. */
gboolean caback_backup_write_options(const char *mac, gboolean legacy, const char *iterations,
                                     const char *verb, CabackP12WriteOptions *write,
                                     GError **error);

/* What to back up is chosen one way: --include-sslserver (@include_sslserver) goes with --cscfg
 * (@cscfg), which excludes -n (@nicknames given). CABACK_ERROR_USAGE otherwise. Pure. */
gboolean caback_backup_check_selection(const char *cscfg, gboolean include_sslserver,
                                       gboolean nicknames, GError **error);

/* A backup of private keys needs a password: CABACK_ERROR_USAGE when @password is empty, saying
 * where it was given (@where: "in FILE", "given at the prompt"...) and that nothing was written.
 * Pure. */
gboolean caback_backup_check_password(const CabackSecret *password, const char *where,
                                      GError **error);

/* The password for the new PKCS#12 file from @source (caback_p12_password_read; the prompt asks
 * twice with @confirm), refused when empty (caback_backup_check_password, naming the file, the
 * variable or the prompt it came from). */
CabackSecret *caback_backup_password_read(const CabackPasswordSource *source, gboolean confirm,
                                          GError **error);

/* The nicknames to back up (a NULL-terminated array into *@out; NULL: every certificate whose key
 * is on the token): those of the CS.cfg @cscfg (caback_backup_cscfg_nicknames), else @nicknames
 * with a prefix that names the internal token ("internal:", "NSS Certificate DB:", as certutil
 * and pk12util write them) dropped, which is refused (CABACK_ERROR_USAGE) when @token is not the
 * internal one. */
gboolean caback_backup_nicknames(const char *cscfg, gboolean include_sslserver,
                                 const char *const *nicknames, const char *token, char ***out,
                                 GError **error);

/* Back up options->db's token to options->output: choose the keys (caback_backup_select_full),
 * warn of weak keys, write them through a writer whose derivations start as early as the
 * password is known to a 0600 temporary file next to the output, read it back from that
 * descriptor and check it (caback_backup_verify_bytes) unless no_verify, then link it into place
 * and, when verified, record it as the latest backup, under a lock on the folder. Progress goes
 * to caback_progress_report. Any failure removes the temporary file and leaves an existing
 * output untouched. @result is filled as far as the run went; clear it in every case. */
gboolean caback_backup_run(const CabackBackupRunOptions *options, const CabackBackupHooks *hooks,
                           CabackBackupResult *result, GError **error);

G_END_DECLS
