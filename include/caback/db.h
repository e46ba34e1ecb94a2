/* Opening an NSS database (and choosing its token) for one run of caback. */
#pragma once

#include <glib.h>

#include <caback/db-lock.h>
#include <caback/progress.h>
#include <caback/secret.h>

#include <nss.h>
#include <pk11pub.h>
#include <secmod.h>

G_BEGIN_DECLS

typedef struct {
    const char *dbdir;               /* -d: folder, with or without "sql:"; NULL for the default */
    const char *token;               /* --token: NULL or "internal" for the internal key token, a
                                      * token name, or a PKCS#11 URI "pkcs11:token=..." */
    const char *module;              /* --module: a PKCS#11 module to load for this run only */
    CabackPasswordSource password;   /* -f / --password-env / prompt */
    gboolean read_only;              /* open without write access */
    CabackDbLockMode lock;           /* lock the folder (caback.lock) before the first read:
                                      * NONE (the default), SHARED or EXCLUSIVE */
    guint lock_wait;                 /* seconds to wait for another run's lock (--wait) */
    CabackDbLockNotify lock_notify;  /* told when the wait starts (may be NULL) */
    gpointer lock_notify_data;
    gboolean key_reader;             /* open CabackDb.reader at login (see there) */
} CabackDbOptions;

typedef struct {
    NSSInitContext *context;
    char *dir;         /* the folder, without "sql:" */
    char *spec;        /* "sql:<dir>", as given to NSS */
    PK11SlotInfo *slot; /* the selected token (owned reference) */
    char *token_name;  /* its name as NSS reports it */
    SECMODModule *user_module; /* --module, loaded for this run and unloaded by caback_db_close */
    CabackPasswordSource password;
    char *password_file;
    char *password_env;
    GError *password_error; /* why the password callback could not give a password, if it
                             * failed (no terminal, unreadable file...); reported by login */
    gboolean rolled_back;   /* a change that a killed process left half done was rolled back
                             * when the database was opened (see caback_db_open) */
    CabackDbLock *lock;     /* options->lock, held until caback_db_close shut NSS down */
    /* With options->key_reader, when the selected token is NSS's own: the same key database
     * opened a second time by caback_db_login (read-only, without its certificates, logged in),
     * so that keys can be read out of key4.db on two processors. Softoken reads a key under one
     * lock per opening of the database (each private attribute decrypted and checked with its
     * own PBKDF2), so one opening reads one key at a time. NULL when it could not be opened:
     * everything then goes through @slot, as it always can. */
    PK11SlotInfo *reader;
    int reader_dirfd;         /* the folder @reader was opened through, or -1 */
    gboolean want_reader;     /* options->key_reader */
    CabackSecret *login_password; /* the password, kept only while caback_db_login runs */
} CabackDb;

/* The database folder to use when -d is not given: $CABACK_DBDIR, else the alias folder of the
 * only Dogtag instance under /var/lib/pki. Fails with CABACK_ERROR_USAGE, saying to use -d. */
char *caback_db_default_dir(GError **error);

/* Initialise NSS on the database of @options (in its own NSS context, so several can be open) and
 * select the token. Does not log in (see caback_db_login). With options->lock, the folder is
 * locked first (caback_db_lock), before anything of the database is read. On failure nothing
 * stays open (nor locked). */
CabackDb *caback_db_open(const CabackDbOptions *options, GError **error);

/* Log in to the selected token if it needs it, reading the password from the database's password
 * source. A wrong password is CABACK_ERROR_BAD_PASSWORD; there is no retry. */
gboolean caback_db_login(CabackDb *db, GError **error);

/* caback_db_open and caback_db_login, telling @message (may be NULL) which database and token
 * were opened (CABACK_RUN_DETAIL) and that a change a stopped process left half done was rolled
 * back (CABACK_RUN_WARNING). */
CabackDb *caback_db_open_login(const CabackDbOptions *options, CabackRunMessageFunc message,
                               gpointer data, GError **error);

/* Release the slot and shut the NSS context down. Returns FALSE (CABACK_ERROR_DATABASE) when NSS
 * reports that a reference was leaked (SEC_ERROR_BUSY); @db is freed in every case. */
gboolean caback_db_close(CabackDb *db, GError **error);

/* caback_db_close that ignores a busy shutdown, for g_autoptr on error paths. */
void caback_db_free(CabackDb *db);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackDb, caback_db_free)

/* What a PKCS#11 URI (RFC 7512) selects a token by: each field is NULL when the URI does not
 * name it; values are percent-decoded. */
typedef struct {
    char *token;
    char *manufacturer;
    char *serial;
    char *model;
} CabackTokenUri;

void caback_token_uri_clear(CabackTokenUri *uri);

/* Parse @text, a PKCS#11 URI such as "pkcs11:token=My%20HSM;serial=42", into @uri (pure, no NSS).
 * Only the token attributes token, manufacturer, serial and model are accepted: any other
 * attribute, a query part or a bad percent escape fails with CABACK_ERROR_USAGE saying why. */
gboolean caback_token_uri_parse(const char *text, CabackTokenUri *uri, GError **error);

/* The PK11 password callback used for every token: returns the password read from the CabackDb
 * passed as its argument, and NULL when NSS retries (so a wrong PIN never loops). */
char *caback_db_password_callback(PK11SlotInfo *slot, PRBool retry, void *arg);

G_END_DECLS
