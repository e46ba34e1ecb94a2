/* The throwaway databases caback makes for itself (the drill's, reshare's): a new NSS database
 * in a private temporary folder, with a random password (caback_secret_new_temporary_db_password)
 * that nobody types and that is forgotten when the run ends.
 *
 * NSS signs each trust attribute it writes, and checks each it reads, with a key it derives from
 * the database password by PBKDF2, 10,000 iterations by default: about 50 ms of work for each
 * certificate given trust, minutes for a file of a few thousand CA certificates. Against 192
 * random bits the iterations add nothing. Softoken takes the count from
 * NSS_MAX_MP_PBE_ITERATION_COUNT when a database's password is set and when it is logged in to,
 * so the variable is set to 1 around those two calls only (no other thread is at work then) and
 * put back as it was: no other database sees it, and a value in the caller's environment (0
 * makes NSS refuse the password) is not a throwaway database's. */
#include "config.h"

#include <caback/error.h>
#include <caback/nss-util.h>
#include <caback/restore.h>

#include <pk11pub.h>

#define NSS_ITERATIONS_VARIABLE "NSS_MAX_MP_PBE_ITERATION_COUNT"

/* Set the variable to 1; what it was, for iterations_restore. */
static char *iterations_one(void)
{
    char *saved = g_strdup(g_getenv(NSS_ITERATIONS_VARIABLE));

    g_setenv(NSS_ITERATIONS_VARIABLE, "1", TRUE);
    return saved;
}

static void iterations_restore(char *saved)
{
    if (saved != NULL)
        g_setenv(NSS_ITERATIONS_VARIABLE, saved, TRUE);
    else
        g_unsetenv(NSS_ITERATIONS_VARIABLE);
    g_free(saved);
}

gboolean caback_restore_create_throwaway_db(const char *dir, const CabackSecret *password,
                                            GError **error)
{
    gboolean created = FALSE;
    char *saved = iterations_one();
    gboolean made = caback_restore_create_db(dir, password, &created, error);

    iterations_restore(saved);
    return made;
}

CabackDb *caback_restore_open_throwaway_db(const char *dir, const CabackSecret *password,
                                           GError **error)
{
    CabackDbOptions options = {.dbdir = dir, .password = {.no_prompt = TRUE}};
    CabackDb *db = caback_db_open(&options, error);

    if (db == NULL)
        return NULL;
    char *saved = iterations_one();
    SECStatus rv = PK11_CheckUserPassword(db->slot, password->data);
    iterations_restore(saved);
    if (rv == SECSuccess)
        return db;
    caback_error_set_nss(error, CABACK_ERROR_DATABASE, "cannot log in to the temporary database %s",
                         dir);
    caback_db_close(db, NULL);
    return NULL;
}
