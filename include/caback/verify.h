/* caback verify, the restore drill: prove that a backup can be restored, without touching the live
 * CA. The file is decoded, decrypted and restored (with the restore code itself) into a throwaway
 * NSS database in a private temporary folder, every key signs a test value that its certificate
 * verifies, the chain of every certificate is checked there with the file's CA certificates as
 * the only trust anchors, and expiry dates are reported. Optionally the result is compared with
 * an inventory of the live database, taken beforehand in a separate, read-only run, so that a
 * stale backup (one that lacks keys or certificates the database holds) is found.
 *
 * NSS-touching; the comparison (caback_verify_compare) is plain data. */
#pragma once

#include <glib.h>

#include <caback/json.h>
#include <caback/keyid.h>
#include <caback/log.h>
#include <caback/progress.h>
#include <caback/secret.h>

#include <caback/db.h>
#include <caback/secret.h>

G_BEGIN_DECLS

/* Certificates expiring within this many days are reported. */
#define CABACK_VERIFY_EXPIRY_DAYS 30

/* ---- the live database (taken before the drill; plain data, no NSS reference) ---- */

/* A certificate that a full backup of the token takes: one with its private key on the token, or
 * a certificate of such a certificate's issuer chain. */
typedef struct {
    char *nickname; /* NULL when it has none */
    char *subject;
    char *serial_hex; /* uppercase hex, as openssl -serial */
    GBytes *der;
    gboolean has_key;     /* its private key is on the token */
    GBytes *ckaid;        /* has_key: the key's CKA_ID as the token holds it */
    gboolean id_known;    /* has_key, and that CKA_ID is a key ID (1 to 20 bytes) */
    CabackKeyId id;       /* id_known: the key ID (shown as caback_verify_key_id_text says) */
    GBytes *key_id;       /* has_key: the key ID NSS derives from the certificate's public key
                           * (what a restored key gets), NULL when unknown */
    gboolean extractable; /* has_key: FALSE when the token marks the key not extractable */
    char *trust;          /* (addition) its trust flags as certutil -L prints them */
} CabackVerifyDbCert;

/* A private key of the live token. */
typedef struct {
    char *nickname;       /* its certificate's nickname; NULL when it has none (an orphan: a
                           * pending re-key, or the old key of one) */
    GBytes *ckaid;        /* CKA_ID as the token holds it */
    gboolean id_known;    /* that CKA_ID is a key ID (1 to 20 bytes) */
    CabackKeyId id;       /* id_known: the key ID */
    GBytes *key_id;       /* the key ID of its public value, NULL when NSS cannot tell */
    gboolean extractable; /* FALSE when the token marks it not extractable */
} CabackVerifyDbKey;

typedef struct {
    char *dir;            /* the database folder */
    char *token;          /* the token's name */
    gboolean internal;    /* the token is the database's own */
    GPtrArray *certs;     /* of CabackVerifyDbCert*: what a full backup of the token holds */
    GPtrArray *all_certs; /* of GBytes* (DER): every certificate the database shows */
    GPtrArray *all_keys;  /* of GBytes*: for every private key of the token, its CKA_ID and the key
                           * ID of its public value (when NSS can tell it) */
    GPtrArray *notes;     /* of char*: orphan keys, incomplete chains */
    GPtrArray *keys;        /* of CabackVerifyDbKey*: every private key of the token */
    GPtrArray *trusted_cas; /* of GBytes*: the DER subjects of the certificates the database
                             * trusts as CAs (C or T in any trust field) */
} CabackVerifyInventory;

/* An empty inventory of @dir / @token (for caback_verify_inventory and tests); its arrays free
 * their elements (CabackVerifyDbCert made with g_new0 and g_strdup / g_bytes_new fields). */
CabackVerifyInventory *caback_verify_inventory_new(const char *dir, const char *token);
void caback_verify_inventory_free(CabackVerifyInventory *inventory);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackVerifyInventory, caback_verify_inventory_free)

/* Take the inventory of @db's token (opened, logged in; only read). Fails with
 * CABACK_ERROR_NOT_FOUND when the token has no certificate with a private key (nothing to compare
 * a backup with), CABACK_ERROR_DATABASE when NSS cannot list it. */
CabackVerifyInventory *caback_verify_inventory(CabackDb *db, GError **error);

/* ---- the drill ---- */

typedef struct {
    char *nickname;   /* as restored (NULL for a key without certificate) */
    const char *type; /* "rsa", "ec"... (static) */
    guint bits;
    GBytes *key_id; /* 20 bytes, the same ID as bytes; NULL when unknown */
    gboolean id_known; /* id is the restored key's ID (the run log records it) */
    CabackKeyId id;    /* certutil -K shows caback_keyid_to_token_hex, CS.cfg holds
                        * caback_keyid_to_token_dogtag (20 bytes: _to_nss, _to_dogtag) */
    gboolean signs; /* a test signature made with the restored key verifies with its
                     * restored certificate */
    char *problem;  /* why not, or NULL */
} CabackVerifyKey;

typedef struct {
    char *nickname;
    char *subject;
    char *issuer;
    char *serial_hex;
    char *trust; /* as restored, e.g. "CTu,Cu,Cu" */
    gboolean has_key;
    GBytes *der;
    GDateTime *not_before; /* UTC; NULL when unreadable */
    GDateTime *not_after;
    gint64 days_left;        /* whole days from now to not_after; negative once expired */
    gboolean chain_ok;       /* the chain verifies up to a CA certificate of the file */
    char *chain;             /* the usages it verifies for ("SSL server, ..."), or why it fails */
    gboolean checked_at_now; /* FALSE: out of its validity now, checked at a time within it */
    gboolean is_ca;          /* (addition) a CA certificate */
} CabackVerifyCert;

/* A certificate whose trust flags differ between the backup and the database. */
typedef struct {
    char *nickname;
    char *subject;
    char *serial_hex;
    char *backup_trust;   /* what a restore of the file sets */
    char *database_trust; /* what the live database has */
} CabackVerifyTrustDiff;

/* A chain of the file that ends below its root: the certificate at its top is not
 * self-signed and its issuer is not in the file. */
typedef struct {
    char *top;            /* the subject of the highest certificate of the file in the chain */
    char *issuer;         /* the missing root's (issuer's) name */
    GBytes *issuer_der;   /* its DER name, to find it in the live database */
    GPtrArray *certificates; /* char*: the file's certificates whose chain this is */
    gboolean trusted_by_database; /* the live database trusts a CA of that name */
} CabackVerifyRootless;

/* One difference between the backup and the live database. */
typedef struct {
    const char *kind; /* "key" or "certificate" (static) */
    char *nickname;
    gboolean id_known; /* keys: id is the key's ID */
    CabackKeyId id;    /* keys */
    GBytes *ckaid;     /* keys of the database: the CKA_ID as the token holds it; else NULL */
    char *subject;    /* certificates */
    char *serial_hex; /* certificates */
} CabackVerifyItem;

typedef struct {
    char *path;
    char *sha256;        /* of the bytes verified, 64 lower-case hex digits */
    GPtrArray *keys;     /* of CabackVerifyKey* */
    GPtrArray *certs;    /* of CabackVerifyCert* (each certificate once) */
    gboolean chain_ok;   /* every certificate's chain verifies */
    GPtrArray *expiring; /* of CabackVerifyCert* (borrowed): expired, or expiring within
                          * CABACK_VERIFY_EXPIRY_DAYS days */
    gboolean compared;   /* caback_verify_compare was called */
    char *database;      /* the database compared with, or NULL */
    char *token;
    GPtrArray *missing_from_backup; /* of CabackVerifyItem*: in the database, not in the file */
    GPtrArray *not_in_database;     /* of CabackVerifyItem*: in the file, not in the database */
    GPtrArray *notes;               /* of char*: warnings that do not make it unrestorable */
    GPtrArray *problems; /* of char*: why the backup is not restorable (empty when it is) */
    gboolean restorable; /* problems is empty */
    /* The drill's findings, each also a line of notes or problems. */
    GPtrArray *trust_differences; /* of CabackVerifyTrustDiff* (compare): stale */
    GPtrArray *missing_keys;      /* of CabackVerifyItem*: every private key of the database the
                                   * file lacks, with or without certificate (compare): stale */
    GPtrArray *keys_without_certificate; /* of CabackVerifyItem*: keys of the file without a
                                          * certificate in it: not restorable */
    GPtrArray *chains_without_root; /* of CabackVerifyRootless*: not restorable unless the
                                     * database trusts the root (caback_verify_judge) */
    GPtrArray *expired;  /* of CabackVerifyCert* (borrowed): expired CA certificates and
                          * certificates with their key (system certificates) */
    gboolean stale;      /* compared, and the database holds what the file lacks or trusts
                          * differently */
    const char *integrity; /* caback_p12_integrity of the file (static), once read */
} CabackVerifyReport;

/* An empty report for @path (for caback_verify_file and tests): not restorable until the drill
 * says so; its arrays free their elements (made with g_new0, g_strdup, g_bytes_new...). */
CabackVerifyReport *caback_verify_report_new(const char *path);
void caback_verify_report_free(CabackVerifyReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackVerifyReport, caback_verify_report_free)

/* Run the drill on the PKCS#12 file @path with @password: make a private temporary folder (mode
 * 0700, under $TMPDIR) holding a new NSS database protected by a random password, restore the
 * file into it as caback restore does, check every key and certificate there, shut NSS down and
 * remove the folder, on every path. NSS must not be initialised by any other context (take the
 * inventory first, and close it). Fails with CABACK_ERROR_NOT_FOUND / CABACK_ERROR_IO when the
 * file cannot be read, CABACK_ERROR_BAD_PASSWORD for a wrong password (a damaged file whose MAC
 * no longer matches looks the same), CABACK_ERROR_PKCS12 for a damaged or unsupported file, and
 * with the restore's own error when the restore into the empty database fails. A key that does
 * not sign or a chain that does not verify is not an error: the report lists it as a problem. */
CabackVerifyReport *caback_verify_file(const char *path, const CabackSecret *password,
                                       GError **error);

/* Compare @report with @inventory (pure): every certificate of the inventory must be in the file
 * and every key of the inventory (except those the token will not let out) must be; what the
 * file holds that the database does not is listed too, without being a problem. */
void caback_verify_compare(CabackVerifyReport *report, const CabackVerifyInventory *inventory);

/* The findings that depend on the caller's choices, after caback_verify_compare (or
 * without it, @inventory NULL; pure): a chain without its root is a problem unless @inventory's
 * database trusts that root (then a note), and then the certificates of that chain count as not
 * verified (the restore would trust the top one as a root by its role, which is not proof); an
 * expired CA certificate is a problem unless @allow_expired (then a note); an expired system
 * certificate is a note. */
void caback_verify_judge(CabackVerifyReport *report, const CabackVerifyInventory *inventory,
                         gboolean allow_expired);

/* ---- the whole drill, for a front end (verify-run.c) ---- */

/* What caback_verify_run is asked to do. */
typedef struct {
    const char *path;              /* the PKCS#12 file */
    const CabackSecret *password;  /* its password */
    gboolean with_db;              /* compare with a live database (hooks->open_db opens it);
                                    * its trust also checks the signature */
    const char *signature_ca;      /* check PATH.sig against these CA certificates only */
    gboolean no_signature_check;
    gboolean require_signature;
    gboolean allow_unauthenticated;
    gboolean allow_expired;
    const char *recorded_sha256;   /* "verify automatic": the SHA-256 caback backup recorded */
    int max_age;                   /* --max-age DAYS, -1 when not given */
    CabackLogRecord *record;       /* this run's record (may be NULL) */
} CabackVerifyRunOptions;

/* How caback_verify_run talks to its front end; every member may be NULL but open_db (needed with
 * options->with_db). */
typedef struct {
    /* A line to show; a warning is recorded in options->record too. */
    void (*message)(CabackRunLevel level, const char *text, gpointer data);
    /* Open (and log in to) the live database read-only, for the signature or the inventory;
     * the run closes it (caback_db_close) before the drill. */
    CabackDb *(*open_db)(gpointer data, GError **error);
    /* The drill could not read the file (*@error): the front end may explain it better. */
    void (*read_failed)(const char *path, GError **error, gpointer data);
    /* The file is refused as unauthenticated (@error says so). */
    void (*unauthenticated)(const char *path, const GError *error, gpointer data);
    gpointer data;
} CabackVerifyHooks;

/* What caback_verify_run found. */
typedef struct {
    CabackVerifyReport *report;  /* the drill's judged report, once it ran */
    const char *signature_word;  /* "checked", "none", "skipped" */
    char *signature_status;      /* after "signature: " */
    char *signature_sha256;      /* the bytes the signature was checked over (when checked) */
} CabackVerifyResult;

void caback_verify_result_clear(CabackVerifyResult *result);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CabackVerifyResult, caback_verify_result_clear)

/* The restore drill on options->path: check PATH.sig (over the bytes read once, against
 * signature_ca or the live database's trust), take the live database's inventory when with_db,
 * run the drill (caback_verify_file), refuse a file with neither MAC nor checked signature
 * unless allow_unauthenticated, then compare and judge (caback_verify_compare /
 * caback_verify_judge), the recorded SHA-256 and max_age included. Returns TRUE with
 * result->report filled when the drill ran, restorable or not (report->restorable says); FALSE
 * and @error when it could not run or the file is refused. */
gboolean caback_verify_run(const CabackVerifyRunOptions *options, const CabackVerifyHooks *hooks,
                           CabackVerifyResult *result, GError **error);

/* ---- the report as JSON (verify-json.c) ---- */

/* The certutil -K form of a key's ID in the drill or the database: the lowercase hex of the ID's
 * own bytes (caback_keyid_to_token_hex) when @known, else of @ckaid, a CKA_ID that is no key ID
 * (empty, or over 20 bytes), else NULL when unknown; caller frees. Its CS.cfg form is
 * caback_keyid_to_token_dogtag of a known ID, and none otherwise. */
char *caback_verify_key_id_text(gboolean known, const CabackKeyId *id, GBytes *ckaid);

/* The members caback verify --json prints for a finished drill (@result: the signature's word and
 * line), written into the object @json has open (a streamed writer hands them over as they are
 * made: the report of a file of many certificates is large). */
void caback_verify_report_json_members(CabackJson *json, const CabackVerifyReport *r,
                                       const CabackVerifyResult *result);

/* The object (as caback_json_text writes it; caller frees) when the drill could not start: the file (absolute), its SHA-256 when it is a
 * regular file (a FIFO is not read again), restorable false and @error's message; caller frees. */
char *caback_verify_failure_json(const char *path, const GError *error);

G_END_DECLS
