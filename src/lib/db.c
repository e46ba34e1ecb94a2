/* NSS database contexts: default folder, opening, token selection, login and clean shutdown. */
#include "config.h"

#include <caback/db.h>
#include <caback/cscfg.h>
#include <caback/error.h>
#include <caback/nss-util.h>

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <secerr.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

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
    /* caback_db_login logs the key reader in with it, and wipes it before it returns. */
    if (db->want_reader && PK11_IsInternalKeySlot(slot)) {
        caback_secret_free(db->login_password);
        db->login_password = caback_secret_new(secret->data, secret->len);
    }
    return PORT_Strdup(secret->data);
}

/* The first non-empty SQLite rollback journal of the database in @dir (a change that did not
 * finish), or NULL. */
static char *hot_journal(const char *dir)
{
    static const char *const names[] = {"key4.db-journal", "cert9.db-journal"};
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *path = g_build_filename(dir, names[i], NULL);
        GStatBuf st;
        if (g_stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
            return g_steal_pointer(&path);
    }
    return NULL;
}

/* "key4.db is locked by process N" when another process holds a lock on a database file of @dir
 * (SQLite locks byte ranges with fcntl), else NULL. Only called when no database of @dir is open
 * in this process: closing the descriptor drops this process's own locks on the file. */
static char *lock_holder(const char *dir)
{
    static const char *const names[] = {"key4.db", "cert9.db"};
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *path = g_build_filename(dir, names[i], NULL);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        int r = fcntl(fd, F_GETLK, &lock);
        close(fd);
        if (r == 0 && lock.l_type != F_UNLCK)
            return g_strdup_printf("%s is locked by process %ld", names[i], (long)lock.l_pid);
    }
    return NULL;
}

/* "DIR cannot be written: Read-only file system" (or the same for a database file) when this
 * process may not write the folder or a database file of @dir, else NULL. */
static char *not_writable(const char *dir)
{
    static const char *const names[] = {"key4.db", "cert9.db"};
    if (access(dir, W_OK) != 0) {
        int e = errno;
        return g_strdup_printf("%s cannot be written: %s", dir, g_strerror(e));
    }
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *path = g_build_filename(dir, names[i], NULL);
        if (access(path, F_OK) == 0 && access(path, W_OK) != 0) {
            int e = errno;
            return g_strdup_printf("%s cannot be written: %s", path, g_strerror(e));
        }
    }
    return NULL;
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

void caback_token_uri_clear(CabackTokenUri *uri)
{
    g_clear_pointer(&uri->token, g_free);
    g_clear_pointer(&uri->manufacturer, g_free);
    g_clear_pointer(&uri->serial, g_free);
    g_clear_pointer(&uri->model, g_free);
}

static int hex_value(char c)
{
    return g_ascii_isxdigit(c) ? g_ascii_xdigit_value(c) : -1;
}

/* RFC 7512 values are percent-encoded UTF-8; a stray '%' is an error rather than a guess. */
static char *percent_decode(const char *text, gsize len, GError **error)
{
    GString *out = g_string_sized_new(len + 1);

    for (gsize i = 0; i < len; i++) {
        if (text[i] != '%') {
            g_string_append_c(out, text[i]);
            continue;
        }
        int hi = i + 1 < len ? hex_value(text[i + 1]) : -1;
        int lo = i + 2 < len ? hex_value(text[i + 2]) : -1;
        /* %00 would cut the C string short and select a different token. */
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "bad percent escape \"%.*s\" in PKCS#11 URI value \"%.*s\" (write a "
                        "byte as %%XX, e.g. a space as %%20)",
                        (int)MIN(3, len - i), text + i, (int)len, text);
            g_string_free(out, TRUE);
            return NULL;
        }
        g_string_append_c(out, (char)(hi * 16 + lo));
        i += 2;
    }
    return g_string_free(out, FALSE);
}

gboolean caback_token_uri_parse(const char *text, CabackTokenUri *uri, GError **error)
{
    static const char *const object_attrs[] = {"object",
                                               "id",
                                               "type",
                                               "library-description",
                                               "library-manufacturer",
                                               "library-version",
                                               "slot-description",
                                               "slot-id",
                                               "slot-manufacturer",
                                               NULL};

    memset(uri, 0, sizeof *uri);
    if (g_ascii_strncasecmp(text, "pkcs11:", 7) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "\"%s\" is not a PKCS#11 URI (it must start with \"pkcs11:\")", text);
        return FALSE;
    }
    const char *path = text + 7;
    if (strchr(path, '?') != NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "PKCS#11 URI \"%s\" has a query part (after \"?\"); caback takes the PIN only "
                    "from -f / --password-env / the prompt and the module from the database or "
                    "--module, so leave the query out",
                    text);
        return FALSE;
    }
    g_auto(GStrv) parts = g_strsplit(path, ";", -1);
    for (guint i = 0; parts[i] != NULL; i++) {
        const char *part = parts[i];
        if (*part == '\0')
            continue;
        const char *eq = strchr(part, '=');
        if (eq == NULL || eq == part) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "PKCS#11 URI \"%s\": \"%s\" is not an attribute=value pair", text, part);
            goto fail;
        }
        g_autofree char *name = g_strndup(part, eq - part);
        char **field = NULL;
        if (strcmp(name, "token") == 0)
            field = &uri->token;
        else if (strcmp(name, "manufacturer") == 0)
            field = &uri->manufacturer;
        else if (strcmp(name, "serial") == 0)
            field = &uri->serial;
        else if (strcmp(name, "model") == 0)
            field = &uri->model;
        if (field == NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "PKCS#11 URI \"%s\": attribute \"%s\" %s; only token, manufacturer, "
                        "serial and model select a token (e.g. pkcs11:token=NAME)",
                        text, name,
                        g_strv_contains(object_attrs, name) ? "does not select a token"
                                                            : "is not known");
            goto fail;
        }
        if (*field != NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "PKCS#11 URI \"%s\" gives attribute \"%s\" twice", text, name);
            goto fail;
        }
        *field = percent_decode(eq + 1, strlen(eq + 1), error);
        if (*field == NULL)
            goto fail;
    }
    if (uri->token == NULL && uri->manufacturer == NULL && uri->serial == NULL &&
        uri->model == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "PKCS#11 URI \"%s\" names no token; write e.g. pkcs11:token=NAME", text);
        return FALSE;
    }
    return TRUE;
fail:
    caback_token_uri_clear(uri);
    return FALSE;
}

/* A CK_TOKEN_INFO text field: fixed width, padded with spaces. */
static gboolean padded_equal(const unsigned char *field, gsize width, const char *want)
{
    gsize n = width;
    while (n > 0 && field[n - 1] == ' ')
        n--;
    return strlen(want) == n && memcmp(field, want, n) == 0;
}

static gboolean uri_matches(const CabackTokenUri *uri, PK11SlotInfo *slot)
{
    CK_TOKEN_INFO info;

    if (uri->token != NULL && g_strcmp0(PK11_GetTokenName(slot), uri->token) != 0)
        return FALSE;
    if (uri->manufacturer == NULL && uri->serial == NULL && uri->model == NULL)
        return TRUE;
    if (PK11_GetTokenInfo(slot, &info) != SECSuccess)
        return FALSE;
    return (uri->manufacturer == NULL ||
            padded_equal(info.manufacturerID, sizeof info.manufacturerID, uri->manufacturer)) &&
           (uri->serial == NULL ||
            padded_equal(info.serialNumber, sizeof info.serialNumber, uri->serial)) &&
           (uri->model == NULL || padded_equal(info.model, sizeof info.model, uri->model));
}

/* The tokens NSS can see, for error messages: "A", "B". */
static char *token_names_text(void)
{
    GString *names = g_string_new(NULL);
    g_autoptr(PK11SlotList) list =
        PK11_GetAllTokens(CKM_INVALID_MECHANISM, PR_FALSE, PR_FALSE, NULL);
    for (PK11SlotListElement *le = list != NULL ? list->head : NULL; le != NULL; le = le->next) {
        if (!PK11_IsPresent(le->slot))
            continue;
        g_string_append_printf(names, "%s\"%s\"", names->len > 0 ? ", " : "",
                               PK11_GetTokenName(le->slot));
    }
    if (names->len == 0)
        g_string_append(names, "(none)");
    return g_string_free(names, FALSE);
}

static PK11SlotInfo *find_token_by_uri(const char *text, GError **error)
{
    CabackTokenUri uri;
    PK11SlotInfo *found = NULL;
    guint matches = 0;

    if (!caback_token_uri_parse(text, &uri, error))
        return NULL;
    g_autoptr(PK11SlotList) list =
        PK11_GetAllTokens(CKM_INVALID_MECHANISM, PR_FALSE, PR_FALSE, NULL);
    for (PK11SlotListElement *le = list != NULL ? list->head : NULL; le != NULL; le = le->next) {
        if (!PK11_IsPresent(le->slot) || !uri_matches(&uri, le->slot))
            continue;
        /* The same token may be listed once per mechanism group; count tokens, not entries. */
        if (found != NULL && found == le->slot)
            continue;
        if (found != NULL)
            PK11_FreeSlot(found);
        found = PK11_ReferenceSlot(le->slot);
        matches++;
    }
    caback_token_uri_clear(&uri);
    if (matches == 1)
        return found;
    if (found != NULL)
        PK11_FreeSlot(found);
    g_autofree char *names = token_names_text();
    if (matches == 0)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "no token matches PKCS#11 URI \"%s\"; the tokens that exist are: %s (a "
                    "token of an HSM appears once its module is in the database's pkcs11.txt, "
                    "or with --module PATH)",
                    text, names);
    else
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "%u tokens match PKCS#11 URI \"%s\"; add serial=... to choose one (the "
                    "tokens are: %s)",
                    matches, text, names);
    return NULL;
}

static PK11SlotInfo *find_token(const char *name, GError **error)
{
    /* Every name certutil, pk12util and Dogtag give the internal key token ("internal", "NSS
     * Certificate DB", its FIPS name...) means the database's own token, in FIPS mode too. */
    if (name == NULL || caback_cscfg_token_is_internal(name))
        return PK11_GetInternalKeySlot();
    if (g_ascii_strncasecmp(name, "pkcs11:", 7) == 0)
        return find_token_by_uri(name, error);

    PK11SlotInfo *slot = PK11_FindSlotByName(name);
    if (slot != NULL)
        return slot;

    g_autofree char *names = token_names_text();
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                "token \"%s\" not found; the tokens that exist are: %s (\"internal\" is the "
                "database's own key token; an HSM's token appears once its module is in the "
                "database's pkcs11.txt, see modutil -list, or with --module PATH)",
                name, names);
    return NULL;
}

/* Load @path for this process only: SECMOD_LoadUserModule does not write pkcs11.txt, unlike
 * modutil -add / SECMOD_AddNewModule, so the database stays as it was. */
static SECMODModule *load_user_module(const char *path, GError **error)
{
    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "--module %s: no such file; give the path of the HSM vendor's PKCS#11 "
                    "library (a .so file)",
                    path);
        return NULL;
    }
    if (strchr(path, '"') != NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "--module %s: the path contains a double quote, which an NSS module spec "
                    "cannot hold; use a link without one",
                    path);
        return NULL;
    }
    g_autofree char *spec =
        g_strdup_printf("name=\"caback --module %s\" library=\"%s\"", path, path);
    SECMODModule *module = SECMOD_LoadUserModule(spec, NULL, PR_FALSE);
    if (module == NULL || !module->loaded) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "cannot load PKCS#11 module %s (--module); check that it is the "
                             "vendor's PKCS#11 library and that its own configuration is in "
                             "place",
                             path);
        if (module != NULL)
            SECMOD_DestroyModule(module);
        return NULL;
    }
    return module;
}

/* The folder @options name (-d, else the default one) with its "sql:" prefix taken off, into
 * *@path (which points into the returned string, g_free). "dbm:" is refused. */
static char *database_folder(const CabackDbOptions *options, const char **path, GError **error)
{
    g_autofree char *given = NULL;

    if (options->dbdir != NULL)
        given = g_strdup(options->dbdir);
    else if ((given = caback_db_default_dir(error)) == NULL)
        return NULL;

    *path = given;
    if (g_str_has_prefix(given, "sql:")) {
        *path = given + 4;
    } else if (g_str_has_prefix(given, "dbm:")) {
        const char *dir = given + 4;
        g_autofree char *cert9 = g_build_filename(dir, "cert9.db", NULL);
        if (g_file_test(cert9, G_FILE_TEST_EXISTS)) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "-d %s: the dbm: prefix asks for an old-format (DBM) database, but %s "
                        "holds a current one (cert9.db); give -d %s or -d sql:%s",
                        given, dir, dir, dir);
            return NULL;
        }
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                    "%s: old-format (DBM) NSS databases are not supported; convert it with "
                    "certutil --upgrade-merge",
                    given);
        return NULL;
    }
    return g_steal_pointer(&given);
}

/* NSS_InitContext failed on @db: say why as well as the folder shows it (another program holds
 * it, it cannot be written, an interrupted change is left), with NSS's error. */
static void set_open_error(const CabackDb *db, gboolean read_only, GError **error)
{
    g_autofree char *left = hot_journal(db->dir);
    g_autofree char *holder = lock_holder(db->dir);
    g_autofree char *unwritable = read_only ? NULL : not_writable(db->dir);
    g_autofree char *why =
        holder != NULL
            ? g_strdup_printf("%s, which has it open: stop that program or wait until it is "
                              "done, then run caback again",
                              holder)
        : unwritable != NULL
            ? g_strdup_printf("%s, and this command changes the database: run it where the "
                              "database can be written (as its owner, on a file system "
                              "mounted read-write)",
                              unwritable)
            : g_strdup_printf("is it readable%s, and not locked by another program?",
                              read_only ? "" : " and writable");
    caback_error_set_nss(error, CABACK_ERROR_DATABASE, "cannot open NSS database %s (%s)%s%s%s",
                         db->dir, why,
                         left != NULL ? "; a change to it was interrupted (" : "",
                         left != NULL ? left : "",
                         left != NULL ? " is left), and it can be rolled back only with "
                                        "write access: run caback listkeys -d DIR as the "
                                        "database's owner, on a writable file system"
                                      : "");
}

/* Open @db's NSS context, read-only when @read_only (after rolling back a change a killed
 * process left half done). */
static gboolean init_context(CabackDb *db, gboolean read_only, GError **error)
{
    PRUint32 flags = NSS_INIT_NOROOTINIT | NSS_INIT_OPTIMIZESPACE;
    g_autofree char *journal = hot_journal(db->dir);
    if (read_only && journal != NULL) {
        /* A process killed in the middle of a change (kill -9, a crash, power loss) leaves
         * SQLite's journal behind; SQLite rolls the change back at the next opening that may
         * write, and a read-only opening fails until then. Roll it back now: the database
         * returns to its last complete state, which is what it was before that change. */
        NSSInitContext *rw = NSS_InitContext(db->spec, "", "", "", NULL, flags);
        if (rw != NULL && NSS_ShutdownContext(rw) == SECSuccess) {
            g_autofree char *still = hot_journal(db->dir);
            db->rolled_back = still == NULL;
        }
    }
    if (read_only)
        flags |= NSS_INIT_READONLY;
    db->context = NSS_InitContext(db->spec, "", "", "", NULL, flags);
    if (db->context == NULL) {
        set_open_error(db, read_only, error);
        return FALSE;
    }
    return TRUE;
}

CabackDb *caback_db_open(const CabackDbOptions *options, GError **error)
{
    const char *path = NULL;
    g_autofree char *given = database_folder(options, &path, error);
    if (given == NULL)
        return NULL;

    g_autoptr(CabackDb) db = g_new0(CabackDb, 1);
    db->reader_dirfd = -1;
    db->want_reader = options->key_reader;
    db->dir = g_canonicalize_filename(path, NULL);
    db->spec = g_strdup_printf("sql:%s", db->dir);
    db->password_file = g_strdup(options->password.file);
    db->password_env = g_strdup(options->password.env_var);
    db->password.file = db->password_file;
    db->password.env_var = db->password_env;
    db->password.no_prompt = options->password.no_prompt;

    if (!check_dir(db->dir, error))
        return NULL;
    /* Before the first read (the journal below, NSS's opening): a run that changes the database
     * must not be seen half done, nor two undo each other's work. */
    if (options->lock != CABACK_DB_LOCK_NONE) {
        db->lock = caback_db_lock(db->dir, options->lock, options->lock_wait,
                                  options->lock_notify, options->lock_notify_data, error);
        if (db->lock == NULL)
            return NULL;
    }
    if (!init_context(db, options->read_only, error))
        return NULL;
    PK11_SetPasswordFunc(caback_db_password_callback);

    if (options->module != NULL) {
        db->user_module = load_user_module(options->module, error);
        if (db->user_module == NULL)
            return NULL;
    }
    db->slot = find_token(options->token, error);
    if (db->slot == NULL)
        return NULL;
    db->token_name = g_strdup(PK11_GetTokenName(db->slot));
    return g_steal_pointer(&db);
}

static void close_reader(CabackDb *db)
{
    if (db->reader != NULL) {
        (void)SECMOD_CloseUserDB(db->reader);
        PK11_FreeSlot(db->reader);
        db->reader = NULL;
    }
    if (db->reader_dirfd >= 0)
        close(db->reader_dirfd);
    db->reader_dirfd = -1;
}

/* Open db->reader (see db.h) and log it in with @password (NULL: the database has none, or it
 * was not read in this login). Any failure leaves db->reader NULL and is not an error. */
static void open_reader(CabackDb *db, const CabackSecret *password)
{
    if (!db->want_reader || db->reader != NULL || !PK11_IsInternalKeySlot(db->slot))
        return;
    /* Through a descriptor of the folder: NSS opens a folder once under one name (it would
     * hand back the slot it has). Opened as NSS opened it, following a link (Dogtag's alias
     * folder is one); a different database here would only cost speed, since a key of the
     * reader is used only if it has the handle and CKA_ID of the key selected. */
    db->reader_dirfd = open(db->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (db->reader_dirfd < 0)
        return;
    g_autofree char *spec =
        g_strdup_printf("configdir='sql:/proc/self/fd/%d' certPrefix='' keyPrefix='' "
                        "tokenDescription='caback key reader' flags='readOnly,noCertDB'",
                        db->reader_dirfd);
    int saved = PORT_GetError();
    db->reader = SECMOD_OpenUserDB(spec);
    gboolean ok = db->reader != NULL && db->reader != db->slot && PK11_IsPresent(db->reader);
    if (ok && PK11_NeedLogin(db->reader))
        ok = password != NULL && PK11_CheckUserPassword(db->reader, password->data) == SECSuccess;
    if (!ok)
        close_reader(db);
    PORT_SetError(saved);
}

gboolean caback_db_login(CabackDb *db, GError **error)
{
    if (!PK11_NeedLogin(db->slot) || PK11_IsLoggedIn(db->slot, db)) {
        open_reader(db, NULL);
        db->want_reader = FALSE;
        return TRUE;
    }
    g_clear_error(&db->password_error);
    SECStatus rv = PK11_Authenticate(db->slot, PR_TRUE, db);
    if (rv == SECSuccess)
        open_reader(db, db->login_password);
    /* The password is kept by the callback during this login only. */
    db->want_reader = FALSE;
    g_clear_pointer(&db->login_password, caback_secret_free);
    if (rv == SECSuccess)
        return TRUE;
    if (db->password_error != NULL) {
        /* No password could be read at all: not a wrong password (exit 1, not 3). */
        g_propagate_error(error, g_steal_pointer(&db->password_error));
        return FALSE;
    }

    /* The advice names where the password came from: "check -f" after a typed one misleads. */
    const char *from = db->password.file != NULL      ? "check the file -f names"
                       : db->password.env_var != NULL ? "check the variable --password-env names"
                                                      : "it was typed at the prompt; type it again";
    if (PK11_IsInternalKeySlot(db->slot))
        caback_error_set_nss_code(error, CABACK_ERROR_BAD_PASSWORD, SEC_ERROR_BAD_PASSWORD,
                                  "cannot log in to NSS database %s: the password is wrong or "
                                  "missing; %s",
                                  db->dir, from);
    else {
        g_autofree char *line = db->password.file != NULL
                                    ? g_strdup_printf(" (its line hardware-%s=...)", db->token_name)
                                    : g_strdup("");
        caback_error_set_nss_code(error, CABACK_ERROR_BAD_PASSWORD, SEC_ERROR_BAD_PASSWORD,
                                  "cannot log in to token \"%s\": the PIN is wrong or missing "
                                  "(not retried, so the token is not locked); %s%s",
                                  db->token_name, from, line);
    }
    return FALSE;
}

gboolean caback_db_close(CabackDb *db, GError **error)
{
    gboolean ok = TRUE;

    if (db == NULL)
        return TRUE;
    close_reader(db);
    if (db->slot != NULL)
        PK11_FreeSlot(db->slot);
    db->slot = NULL;
    if (db->user_module != NULL) {
        /* Unloaded before the context goes, so that its slots are released while NSS is up. */
        if (SECMOD_UnloadUserModule(db->user_module) != SECSuccess && ok) {
            caback_error_set_nss(error, CABACK_ERROR_DATABASE, "cannot unload PKCS#11 module %s",
                                 db->user_module->dllName);
            ok = FALSE;
        }
        SECMOD_DestroyModule(db->user_module);
        db->user_module = NULL;
    }
    if (db->context != NULL && NSS_ShutdownContext(db->context) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "NSS database %s did not shut down cleanly (a reference was leaked; "
                             "this is a bug in caback, please report it)",
                             db->dir);
        ok = FALSE;
    }
    /* Released only once NSS has let go of the files. */
    caback_db_lock_free(db->lock);
    g_free(db->dir);
    g_free(db->spec);
    g_free(db->token_name);
    g_free(db->password_file);
    g_free(db->password_env);
    g_clear_error(&db->password_error);
    caback_secret_free(db->login_password);
    g_free(db);
    return ok;
}

void caback_db_free(CabackDb *db)
{
    caback_db_close(db, NULL);
}

static void db_say(CabackRunMessageFunc message, gpointer data, CabackRunLevel level,
                   const char *format, ...) G_GNUC_PRINTF(4, 5);
static void db_say(CabackRunMessageFunc message, gpointer data, CabackRunLevel level,
                   const char *format, ...)
{
    va_list args;

    va_start(args, format);
    caback_run_say_valist(message, data, NULL, level, format, args);
    va_end(args);
}

CabackDb *caback_db_open_login(const CabackDbOptions *options, CabackRunMessageFunc message,
                               gpointer data, GError **error)
{
    g_autoptr(CabackDb) db = caback_db_open(options, error);

    if (db == NULL)
        return NULL;
    db_say(message, data, CABACK_RUN_DETAIL, "Opened NSS database %s, token \"%s\"", db->dir,
           db->token_name);
    if (db->rolled_back)
        db_say(message, data, CABACK_RUN_WARNING,
               "NSS database %s was left in the middle of a change by a process that was stopped "
               "(SQLite journal); the change was rolled back and the database is as it was "
               "before it",
               db->dir);
    if (!caback_db_login(db, error))
        return NULL;
    return g_steal_pointer(&db);
}
