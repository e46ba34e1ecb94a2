/* Checking the cloning.<tag>.* entries of a Dogtag CS.cfg against the keys of an NSS database:
 * for each tag, the certificate CS.cfg names, its private key, the key's CKA_ID and public key
 * in the forms Dogtag writes. NSS-touching; the CS.cfg rules themselves are in cscfg.h. */
#pragma once

#include <glib.h>

#include <caback/cscfg.h>
#include <caback/db.h>
#include <caback/keyid.h>
#include <caback/log.h>
#include <caback/progress.h>

G_BEGIN_DECLS

/* What the database holds for one nickname. Plain data: no NSS reference is kept. */
typedef struct {
    guint n_certs;      /* certificates with this nickname on the token (2 or more after a
                         * re-key that kept the old certificate) */
    char *cert_summary; /* the certificate used: serial number and validity, for messages */
    char *other_certs;  /* the other certificates with this nickname, "; "-separated; NULL
                         * when there is only one */
    gboolean rsa;       /* the key is an RSA key */
    CabackKeyId id;     /* the private key's CKA_ID, as the token holds it: certutil -K prints
                         * caback_keyid_to_token_hex, Dogtag writes caback_keyid_to_token_dogtag
                         * (new BigInteger(id).toString(16)) */
    char *modulus;      /* RSA: modulus as Dogtag writes it (lowercase hex, no leading zeros);
                         * "" for other keys */
    char *exponent;     /* RSA: public exponent, same form; "" for other keys */
    char *encoded;      /* other keys: hex of the certificate's SubjectPublicKeyInfo DER; ""
                         * for RSA */
} CabackCloneKey;

void caback_clone_key_free(CabackCloneKey *key);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackCloneKey, caback_clone_key_free)

/* Find the certificate @nickname (without a token prefix) on the selected token of @db, the one
 * NSS returns as current when several share the nickname (the newest valid), and its private key
 * on that token. Fails with CABACK_ERROR_NOT_FOUND, naming the nickname, the token and the
 * database, when there is no such certificate or no private key for it, or when the key's ID is
 * empty or longer than 20 bytes (no CS.cfg key ID); with CABACK_ERROR_DATABASE when NSS cannot
 * read the key's ID or public key. */
CabackCloneKey *caback_clone_ids_find_key(CabackDb *db, const char *nickname, GError **error);

typedef enum {
    CABACK_CLONE_OK,      /* every entry matches the key */
    CABACK_CLONE_STALE,   /* some entries differ: see changes */
    CABACK_CLONE_MISSING, /* the key cannot be found: see reason */
} CabackCloneStatus;

/* "OK", "STALE" or "MISSING". */
const char *caback_clone_status_name(CabackCloneStatus status);

/* The result for one tag. */
typedef struct {
    char *tag;
    char *nickname;     /* as CS.cfg gives it (maybe "token:nickname"); NULL when none */
    char *nickname_key; /* the CS.cfg key it came from; NULL when none */
    CabackCloneStatus status;
    char *old_id;       /* cloning.<tag>.privkey.id as CS.cfg has it */
    gboolean has_key;   /* the key was found (not MISSING) */
    CabackKeyId key_id; /* has_key: its CKA_ID; the entry's value must be its Dogtag form
                         * (caback_keyid_to_token_dogtag) */
    GPtrArray *changes; /* of CabackCsCfgChange*: the entries to rewrite (empty unless STALE) */
    char *reason;       /* MISSING: why, and which nickname to look for; else NULL */
    gboolean legacy_problem; /* Dogtag before 10.5.6 cannot decode the key's Dogtag form
                              * (see keyid.h) */
    GPtrArray *notes;        /* of char*: details for -v (which certificate was used, ...) */
} CabackCloneResult;

void caback_clone_result_free(CabackCloneResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackCloneResult, caback_clone_result_free)

/* Check every tag of caback_cscfg_clone_entries(@cfg) against the selected token of @db (logged
 * in). A tag whose key cannot be found is MISSING, not an error. Returns a new array of
 * CabackCloneResult* (with a free function); fails only when the database itself fails. */
GPtrArray *caback_clone_ids_audit(CabackDb *db, const CabackCsCfg *cfg, GError **error);

/* ---- the whole check and repair of a CS.cfg (src/lib/clone-fix.c) ---- */

/* What caback_clone_ids_fix is asked to do. */
typedef struct {
    const char *path;        /* the CS.cfg (a link is followed: its target is changed) */
    CabackDbOptions db;      /* the database holding the keys; opened read-only */
    gboolean dry_run;        /* change nothing: the diff is made instead */
    CabackLogRecord *record; /* this run's record (may be NULL): database, keys, warnings */
} CabackCloneFixOptions;

/* What the run found and did, as the hooks see it (valid only during the call). */
typedef struct {
    const char *path;          /* as given */
    const char *dbdir;         /* the database folder */
    const char *token;         /* the token's name */
    gboolean has_list;         /* CS.cfg has a cloning.list */
    const GPtrArray *results;  /* CabackCloneResult*, one per tag */
    guint changes;             /* the entries that differ */
    gboolean dry_run;
    const char *diff;          /* dry run with changes: the unified diff of the change */
    const char *backup;        /* the copy CS.cfg.<epoch-ms> when the file was changed, else NULL */
} CabackCloneFix;

/* How caback_clone_ids_fix talks to its front end; every member may be NULL. */
typedef struct {
    /* A line to show (CABACK_RUN_NOTE for "no cloning.list", "nothing to check"); a warning is
     * recorded in options->record too. */
    CabackRunMessageFunc message;
    /* The audit is done and the file changed (or not): before the verdict. */
    void (*finished)(const CabackCloneFix *fix, gpointer data);
    gpointer data;
} CabackCloneFixHooks;

/* Check the cloning.<tag>.* entries of options->path against the keys of options->db
 * (caback_clone_ids_audit) and, unless dry_run, rewrite the stale values: a copy
 * CS.cfg.<epoch-ms> with the file's mode and owner is written first, then the new text replaces
 * the file atomically, only if the file still holds the bytes that were read
 * (CABACK_ERROR_CONFLICT otherwise). A file that is not a CS.cfg is CABACK_ERROR_CSCFG. After
 * the finished hook: fails with CABACK_ERROR_NOT_FOUND when a tag is MISSING (the others are
 * still fixed), and with CABACK_ERROR_CHANGES_NEEDED when a dry run found stale entries. */
gboolean caback_clone_ids_fix(const CabackCloneFixOptions *options,
                              const CabackCloneFixHooks *hooks, GError **error);

G_END_DECLS
