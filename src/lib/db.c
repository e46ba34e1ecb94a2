/* NSS database contexts: default folder, opening, token selection, login and clean shutdown. */
#include "config.h"

#include <caback/db.h>
#include <caback/error.h>
#include <caback/nss-util.h>

#include <secerr.h>
#include <string.h>

char *caback_db_default_dir(GError **error)
{
    const char *env = g_getenv("CABACK_DBDIR");
    if (env != NULL && *env != '\0')
        return g_strdup(env);

    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GDir) dir = g_dir_open("/var/lib/pki", 0, NULL);
    if (dir != NULL) {
        const char *name;
        while ((name = g_dir_read_name(dir)) != NULL) {
            g_autofree char *alias = g_build_filename("/var/lib/pki", name, "alias", NULL);
            if (g_file_test(alias, G_FILE_TEST_IS_DIR))
                g_ptr_array_add(found, g_steal_pointer(&alias));
        }
    }
    if (found->len == 1)
        return g_strdup(found->pdata[0]);
    if (found->len == 0)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "no NSS database given and no Dogtag instance found under /var/lib/pki; "
                    "give the database folder with -d DIR or set CABACK_DBDIR");
    else
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "no NSS database given and %u Dogtag instances exist under /var/lib/pki; "
                    "choose one with -d DIR (for example -d %s)",
                    found->len, (const char *)found->pdata[0]);
    return NULL;
}

char *caback_db_password_callback(PK11SlotInfo *slot, PRBool retry, void *arg)
{
    CabackDb *db = arg;

    /* NSS calls again after a wrong password; answering NULL stops it, so a token's PIN is tried
     * exactly once and can never be locked by a loop. */
    if (retry || db == NULL)
        return NULL;

    g_autofree char *what = NULL;
    const char *token = PK11_GetTokenName(slot);
    if (PK11_IsInternalKeySlot(slot))
        what = g_strdup_printf("password for the NSS database %s", db->dir);
    else
        what = g_strdup_printf("PIN for token \"%s\"", token);
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackSecret) secret = caback_password_read(
        &db->password, PK11_IsInternalKeySlot(slot) ? "internal" : token, what, FALSE, &error);
    if (secret == NULL) {
        /* The callback cannot return a GError; keep it for caback_db_login to report. */
        g_clear_error(&db->password_error);
        db->password_error = g_steal_pointer(&error);
        return NULL;
    }
    return PORT_Strdup(secret->data);
}

static gboolean check_dir(const char *dir, GError **error)
{
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                    "NSS database folder %s does not exist; give the right folder with -d, or "
                    "create a database with: certutil -N -d sql:%s",
                    dir, dir);
        return FALSE;
    }
    g_autofree char *cert9 = g_build_filename(dir, "cert9.db", NULL);
    g_autofree char *key4 = g_build_filename(dir, "key4.db", NULL);
    if (!g_file_test(cert9, G_FILE_TEST_EXISTS) || !g_file_test(key4, G_FILE_TEST_EXISTS)) {
        g_autofree char *cert8 = g_build_filename(dir, "cert8.db", NULL);
        if (g_file_test(cert8, G_FILE_TEST_EXISTS))
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                        "%s holds an old-format (DBM) NSS database; convert it first with: "
                        "certutil --upgrade-merge --source-dir %s -d sql:%s (or certutil -K -X "
                        "-d sql:%s, which upgrades it in place)",
                        dir, dir, dir, dir);
        else
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                        "%s is not an NSS database (no cert9.db and key4.db); give the right "
                        "folder with -d, or create one with: certutil -N -d sql:%s",
                        dir, dir);
        return FALSE;
    }
    return TRUE;
}

static PK11SlotInfo *find_token(const char *name, GError **error)
{
    if (name == NULL || g_strcmp0(name, "internal") == 0 ||
        g_strcmp0(name, "Internal Key Storage Token") == 0)
        return PK11_GetInternalKeySlot();

    PK11SlotInfo *slot = PK11_FindSlotByName(name);
    if (slot != NULL)
        return slot;

    g_autoptr(GString) names = g_string_new(NULL);
    g_autoptr(PK11SlotList) list = PK11_GetAllTokens(CKM_INVALID_MECHANISM, PR_FALSE, PR_FALSE, NULL);
    for (PK11SlotListElement *le = list != NULL ? list->head : NULL; le != NULL; le = le->next) {
        if (!PK11_IsPresent(le->slot))
            continue;
        g_string_append_printf(names, "%s\"%s\"", names->len > 0 ? ", " : "",
                               PK11_GetTokenName(le->slot));
    }
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                "token \"%s\" not found; the tokens that exist are: %s (\"internal\" is the "
                "database's own key token)",
                name, names->str);
    return NULL;
}

CabackDb *caback_db_open(const CabackDbOptions *options, GError **error)
{
    g_autofree char *given = NULL;

    if (options->dbdir != NULL)
        given = g_strdup(options->dbdir);
    else if ((given = caback_db_default_dir(error)) == NULL)
        return NULL;

    const char *path = given;
    if (g_str_has_prefix(path, "sql:"))
        path += 4;
    else if (g_str_has_prefix(path, "dbm:")) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                    "%s: old-format (DBM) NSS databases are not supported; convert it with "
                    "certutil --upgrade-merge",
                    given);
        return NULL;
    }

    g_autoptr(CabackDb) db = g_new0(CabackDb, 1);
    db->dir = g_canonicalize_filename(path, NULL);
    db->spec = g_strdup_printf("sql:%s", db->dir);
    db->password_file = g_strdup(options->password.file);
    db->password_env = g_strdup(options->password.env_var);
    db->password.file = db->password_file;
    db->password.env_var = db->password_env;
    db->password.no_prompt = options->password.no_prompt;

    if (!check_dir(db->dir, error))
        return NULL;

    PRUint32 flags = NSS_INIT_NOROOTINIT | NSS_INIT_OPTIMIZESPACE;
    if (options->read_only)
        flags |= NSS_INIT_READONLY;
    db->context = NSS_InitContext(db->spec, "", "", "", NULL, flags);
    if (db->context == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "cannot open NSS database %s (is it readable%s, and not locked by "
                             "another program?)",
                             db->dir, options->read_only ? "" : " and writable");
        return NULL;
    }
    PK11_SetPasswordFunc(caback_db_password_callback);

    db->slot = find_token(options->token, error);
    if (db->slot == NULL)
        return NULL;
    db->token_name = g_strdup(PK11_GetTokenName(db->slot));
    return g_steal_pointer(&db);
}

gboolean caback_db_login(CabackDb *db, GError **error)
{
    if (!PK11_NeedLogin(db->slot) || PK11_IsLoggedIn(db->slot, db))
        return TRUE;
    g_clear_error(&db->password_error);
    if (PK11_Authenticate(db->slot, PR_TRUE, db) == SECSuccess)
        return TRUE;
    if (db->password_error != NULL) {
        /* No password could be read at all: not a wrong password (exit 1, not 3). */
        g_propagate_error(error, g_steal_pointer(&db->password_error));
        return FALSE;
    }

    if (PK11_IsInternalKeySlot(db->slot))
        caback_error_set_nss_code(error, CABACK_ERROR_BAD_PASSWORD, SEC_ERROR_BAD_PASSWORD,
                                  "cannot log in to NSS database %s: the password is wrong or "
                                  "missing; check -f / --password-env",
                                  db->dir);
    else
        caback_error_set_nss_code(error, CABACK_ERROR_BAD_PASSWORD, SEC_ERROR_BAD_PASSWORD,
                                  "cannot log in to token \"%s\": the PIN is wrong or missing "
                                  "(not retried, so the token is not locked); check -f "
                                  "(hardware-%s=...) / --password-env",
                                  db->token_name, db->token_name);
    return FALSE;
}

gboolean caback_db_close(CabackDb *db, GError **error)
{
    gboolean ok = TRUE;

    if (db == NULL)
        return TRUE;
    if (db->slot != NULL)
        PK11_FreeSlot(db->slot);
    if (db->context != NULL && NSS_ShutdownContext(db->context) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "NSS database %s did not shut down cleanly (a reference was leaked; "
                             "this is a bug in caback, please report it)",
                             db->dir);
        ok = FALSE;
    }
    g_free(db->dir);
    g_free(db->spec);
    g_free(db->token_name);
    g_free(db->password_file);
    g_free(db->password_env);
    g_clear_error(&db->password_error);
    g_free(db);
    return ok;
}

void caback_db_free(CabackDb *db)
{
    caback_db_close(db, NULL);
}
