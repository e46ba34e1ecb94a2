/* One whole restore for a front end (src/lib/restore-run.c): the database opened or created,
 * the file read once, its signature, integrity and date judged, the plan made against the
 * database, and the import with its checks; the front end only turns options into
 * CabackRestoreRunOptions and what the hooks show it into text or JSON. The stages themselves are
 * restore.h's (plan, apply, undo), cms.h's (signature) and freshness.h's (date). NSS-touching. */
#pragma once

#include <glib.h>

#include <caback/db.h>
#include <caback/freshness.h>
#include <caback/json.h>
#include <caback/log.h>
#include <caback/progress.h>
#include <caback/restore.h>
#include <caback/secret.h>

G_BEGIN_DECLS

/* What caback_restore_run is asked to do. */
typedef struct {
    CabackDbOptions db;            /* the database; read_only is set by the run (dry_run), the
                                    * lock fields by the caller (shared with dry_run) */
    const char *path;              /* the PKCS#12 file */
    const char *recorded_sha256;   /* "restore automatic": the SHA-256 recorded, else NULL */
    gboolean recorded_signed;      /* "restore automatic": caback sign ran on the recorded file */
    const CabackSecret *password;  /* the PKCS#12 password when already known, else NULL */
    CabackPasswordSource password_source; /* else where it comes from (empty: the prompt) */
    CabackRestoreOptions restore;  /* conflicts, trust, weak keys, extractability */
    gboolean create;               /* --create: make the database when it does not exist */
    gboolean dry_run;              /* plan and change nothing */
    const char *signature_ca;      /* check FILE.sig against these CA certificates only */
    gboolean no_signature_check;
    gboolean require_signature;
    gboolean at_signing_time;
    gboolean allow_unauthenticated;
    gboolean require_latest;
    const char *log_path;          /* the run log read for the backup's date (NULL: default) */
    const char *checker_program;   /* caback itself, run as "check-stored-keys", or NULL */
    CabackLogRecord *record;       /* this run's record (may be NULL): file, digest, signature,
                                    * integrity, database, keys and warnings go into it */
} CabackRestoreRunOptions;

/* The signature FILE.sig, as the run decided it. */
typedef struct {
    char *path;               /* FILE.sig */
    gboolean exists;          /* there is one */
    gboolean checked;
    char *sha256;             /* the file's digest the signature was checked against */
    const char *status_word;  /* "checked", "none" or "skipped" once decided */
    char *status;             /* the whole status after "signature: " */
    char *signers;            /* their subjects, "; "-separated (when checked) */
    char *signing_time;       /* the first signer's stated time (ISO 8601 UTC), or NULL */
    char *checked_at;         /* the time the signer's chain was checked at, or NULL */
    gboolean at_signing_time; /* that was the signing time (--at-signing-time), not now */
} CabackRestoreSignature;

/* The backup's date and what the run log says about newer backups of its database. */
typedef struct {
    char *time;                /* the signing time, else the time of its record in the run log */
    const char *source;        /* "signing time", "run log" (static), or NULL when unknown */
    char *log;                 /* the JSON-lines log read */
    GPtrArray *records;        /* CabackBackupRecord* of that log */
    CabackFreshness freshness; /* pointing into records */
} CabackRestoreBackupDate;

typedef enum {
    CABACK_RESTORE_OUTCOME_NONE,      /* stopped before a plan */
    CABACK_RESTORE_OUTCOME_REFUSED,   /* CA trust for a weak key: nothing changed */
    CABACK_RESTORE_OUTCOME_PLANNED,   /* dry run */
    CABACK_RESTORE_OUTCOME_CONFLICT,  /* conflicts: nothing changed */
    CABACK_RESTORE_OUTCOME_UNCHANGED, /* nothing to do */
    CABACK_RESTORE_OUTCOME_RESTORED,
} CabackRestoreOutcome;

/* A restore under way, as the hooks see it (valid only during the call). */
typedef struct {
    const CabackRestoreRunOptions *options;
    CabackDb *db;                     /* open (with would_create: an empty stand-in) */
    CabackRestorePlan *plan;          /* once read and planned */
    gboolean would_create;            /* dry run on a database --create would make */
    gboolean created;                 /* --create made the database in this run */
    CabackRestoreSignature signature;
    CabackRestoreBackupDate date;
    CabackRestoreOutcome outcome;     /* once decided */
} CabackRestoreRun;

/* How caback_restore_run talks to its front end; every member may be NULL. */
typedef struct {
    /* A line to show; a warning is recorded in options->record too. */
    void (*message)(CabackRunLevel level, const char *text, gpointer data);
    /* Reading the file failed with *@error: the front end may explain it better (a damaged
     * file or a wrong password, from what its log recorded); @sha256 is of the bytes read. */
    void (*read_failed)(const char *path, const char *sha256, GError **error, gpointer data);
    /* The plan is made (before anything changes). */
    void (*planned)(const CabackRestoreRun *run, gpointer data);
    /* The outcome is decided (run->outcome), before the database is closed. */
    void (*finished)(const CabackRestoreRun *run, gpointer data);
    gpointer data;
} CabackRestoreHooks;

/* What caback_restore_run did. */
typedef struct {
    CabackRestoreOutcome outcome;
    gboolean created; /* --create made the database (removed again when the run failed) */
} CabackRestoreResult;

/* Restore options->path into the database of options->db: open it (or, with create, make it in
 * a new or empty folder; a dry run plans against an empty stand-in), read the file once (its
 * SHA-256 matched against recorded_sha256), check FILE.sig, refuse an unauthenticated file
 * unless allow_unauthenticated, judge the backup's date against the run log, plan, and unless
 * dry_run import all or nothing with each stored key checked (by a second reader,
 * checker_program, when it can run). Refusals (weak keys, conflicts) change nothing; a database
 * --create made is removed again when the run fails. */
gboolean caback_restore_run(const CabackRestoreRunOptions *options,
                            const CabackRestoreHooks *hooks, CabackRestoreResult *result,
                            GError **error);

/* TRUE when the decided outcome of @run is a success (exit 0): not a refusal for weak keys, nor
 * a conflict (a dry run's included). The finished hook may ask. */
gboolean caback_restore_run_succeeds(const CabackRestoreRun *run);

/* The word of @outcome in the JSON member "result": "refused", "planned", "conflict",
 * "unchanged", "restored"; NULL for CABACK_RESTORE_OUTCOME_NONE. */
const char *caback_restore_outcome_name(CabackRestoreOutcome outcome);

/* The JSON object (as caback_json_text writes it) of a run whose outcome is decided, as the
 * finished hook sees it (src/lib/restore-json.c): the file, its signature and date, the database,
 * "result", and the plan's "certificates", "keys" and "notes". Caller frees. */
char *caback_restore_run_json(const CabackRestoreRun *run);
/* Those members, written into the object @json has open (streamed: see
 * caback_list_json_members). */
void caback_restore_run_json_members(CabackJson *json, const CabackRestoreRun *run);

/* The trust @c gets, as certutil -L will show it: with its key restored too, NSS reports u in
 * all three fields ("u,u," is shown "u,u,u"). What the database already has (a skipped
 * certificate) is shown as certutil -L shows it, from the trust domain (never the implied flags
 * NSS gives a certificate built from one token's object). Caller frees. */
char *caback_restore_display_trust(const CabackRestoreCert *c);

/* The members "weak_key" (@reason) and "weak_key_rule" (the rule's name; null for
 * CABACK_WEAK_KEY_NONE) of a certificate or key in --json. */
void caback_restore_json_weak_key(CabackJson *json, CabackWeakKey weak, const char *reason);

/* "restore automatic": the archive the last verified backup recorded in the state folder
 * (*@path), its recorded SHA-256 (*@sha256) and whether caback sign ran on it (*@signed_).
 * Fails with CABACK_ERROR_NOT_FOUND when none is recorded or the file is gone. */
gboolean caback_restore_find_latest(char **path, char **sha256, gboolean *signed_,
                                    GError **error);

G_END_DECLS
