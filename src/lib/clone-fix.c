/* caback fix-clone-ids as one call: read the CS.cfg, check it is one, audit its cloning.<tag>.*
 * entries against the database (clone-ids.c), and write the stale values back safely (a copy
 * first, then an atomic replace of the file as it was read). The front end only shows what the
 * hooks hand it. */
#include "config.h"

#include <caback/atomic-file.h>
#include <caback/clone-ids.h>
#include <caback/cscfg.h>
#include <caback/error.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const CabackCloneFixOptions *options;
    const CabackCloneFixHooks *hooks;
    CabackCloneFix pub;
    CabackCsCfg *cfg;
    char *real;        /* the file to change: the link's target */
    struct stat st;    /* its mode and owner */
    GPtrArray *changes; /* CabackCsCfgChange* of every tag (not owned) */
    GBytes *fixed;     /* the new text, when something changes */
} FixRun;

static void fix_run_clear(FixRun *run)
{
    caback_cscfg_free(run->cfg);
    free(run->real);
    g_clear_pointer(&run->changes, g_ptr_array_unref);
    g_clear_pointer(&run->fixed, g_bytes_unref);
    g_free((char *)run->pub.dbdir);
    g_free((char *)run->pub.token);
    g_clear_pointer((GPtrArray **)&run->pub.results, g_ptr_array_unref);
    g_free((char *)run->pub.diff);
    g_free((char *)run->pub.backup);
}

/* Show a line through the hooks; a warning is recorded in the run's record too. */
static void say(FixRun *run, CabackRunLevel level, const char *format, ...) G_GNUC_PRINTF(3, 4);
static void say(FixRun *run, CabackRunLevel level, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    caback_run_say_valist(run->hooks->message, run->hooks->data, run->options->record, level,
                          format, args);
    va_end(args);
}

/* Any text parses as a properties file; a file that is none of Dogtag's must not pass as one
 * with "nothing to check". */
static gboolean looks_like_cscfg(const CabackCsCfg *cfg)
{
    g_autofree char *subsystem = caback_cscfg_subsystem(cfg);
    const GPtrArray *entries = caback_cscfg_entries(cfg);

    if (subsystem != NULL)
        return TRUE;
    for (guint i = 0; i < entries->len; i++) {
        const CabackCsCfgEntry *e = entries->pdata[i];
        if (g_str_has_prefix(e->key, "cloning."))
            return TRUE;
    }
    return FALSE;
}

/* Read the CS.cfg, refuse what is not one, and find the file to change: the symlink's target,
 * so that the link stays a link. */
static gboolean read_cscfg(FixRun *run, GError **error)
{
    const char *path = run->options->path;

    run->cfg = caback_cscfg_read_file(path, error);
    if (run->cfg == NULL)
        return FALSE;
    if (!looks_like_cscfg(run->cfg)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG,
                    "%s is not a Dogtag CS.cfg (it has no cs.type, no <subsystem>.cert.list and "
                    "no cloning.* entry); nothing was checked. Give the instance's CS.cfg, e.g. "
                    "/var/lib/pki/pki-tomcat/ca/conf/CS.cfg",
                    path);
        return FALSE;
    }
    run->real = realpath(path, NULL);
    if (run->real == NULL || stat(run->real, &run->st) != 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot examine %s: %s", path,
                    g_strerror(e));
        return FALSE;
    }
    if (!S_ISREG(run->st.st_mode)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG,
                    "%s is not a regular file; give the path of the instance's CS.cfg", path);
        return FALSE;
    }
    return TRUE;
}

/* Audit the entries against the database, which is closed again before anything is written. */
static gboolean audit(FixRun *run, GError **error)
{
    const CabackCloneFixOptions *o = run->options;
    CabackDbOptions db_options = o->db;

    db_options.read_only = TRUE;
    CabackDb *db = caback_db_open_login(&db_options, run->hooks->message, run->hooks->data, error);
    if (db == NULL)
        return FALSE;
    if (o->record != NULL)
        caback_log_record_set_database(
            o->record, db->dir,
            db->slot != NULL && PK11_IsInternalKeySlot(db->slot) ? NULL : db->token_name);
    run->pub.dbdir = g_strdup(db->dir);
    run->pub.token = g_strdup(db->token_name);
    GPtrArray *results = caback_clone_ids_audit(db, run->cfg, error);
    run->pub.results = results;
    /* Close before writing anything: a leaked NSS reference is a failure to report first. */
    return caback_db_close(db, results != NULL ? error : NULL) && results != NULL;
}

/* Record each tag's key, show its notes (-v), warn about IDs old Dogtag cannot read, and collect
 * the changes of every tag. */
static void take_results(FixRun *run)
{
    const GPtrArray *results = run->pub.results;

    run->changes = g_ptr_array_new();
    for (guint i = 0; i < results->len; i++) {
        const CabackCloneResult *r = results->pdata[i];
        if (r->has_key && run->options->record != NULL)
            caback_log_record_add_key(run->options->record, r->nickname, &r->key_id);
        for (guint j = 0; j < r->notes->len; j++)
            say(run, CABACK_RUN_DETAIL, "%s: %s", r->tag, (const char *)r->notes->pdata[j]);
        for (guint j = 0; j < r->changes->len; j++)
            g_ptr_array_add(run->changes, r->changes->pdata[j]);
        if (r->legacy_problem) {
            g_autofree char *dogtag_id = caback_keyid_to_token_dogtag(&r->key_id);
            say(run, CABACK_RUN_WARNING,
                "tag %s: Dogtag before 10.5.6 cannot decode the key ID %s (its short form loses "
                "the sign); such a clone needs a newer Dogtag",
                r->tag, dogtag_id);
        }
    }
    run->pub.changes = run->changes->len;
}

/* Whether the file still holds exactly the bytes caback read: Dogtag rewrites CS.cfg itself, and
 * a change made meanwhile must not be overwritten with an edit of the older text. */
static gboolean unchanged_since_read(const char *path, const CabackCsCfg *cfg, GError **error)
{
    g_autofree char *now = NULL;
    gsize now_len = 0, len = 0;
    const guint8 *data = caback_cscfg_data(cfg, &len);
    g_autoptr(GError) local = NULL;

    if (!g_file_get_contents(path, &now, &now_len, &local)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot read %s again: %s", path,
                    local->message);
        return FALSE;
    }
    if (now_len != len || memcmp(now, data, len) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%s changed while caback was checking it (is the Dogtag instance running? "
                    "stop it first); nothing was written, run the command again",
                    path);
        return FALSE;
    }
    return TRUE;
}

/* Write the copy <real>.<epoch-ms> of the file as read, with its mode and owner; a name that
 * already exists is never replaced (the next millisecond is tried). Returns the copy's path. */
static char *write_backup(const char *real, const CabackCsCfg *cfg, const struct stat *st,
                          GError **error)
{
    gsize len = 0;
    const guint8 *data = caback_cscfg_data(cfg, &len);
    gint64 ms = g_get_real_time() / 1000;

    for (int attempt = 0; attempt < 100; attempt++) {
        g_autoptr(GError) local = NULL;
        g_autofree char *backup = g_strdup_printf("%s.%" G_GINT64_FORMAT, real, ms + attempt);
        if (caback_atomic_file_replace(backup, data, len, st->st_mode & 07777, st->st_uid,
                                       st->st_gid, FALSE, &local))
            return g_steal_pointer(&backup);
        if (!g_error_matches(local, CABACK_ERROR, CABACK_ERROR_CONFLICT)) {
            g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                       "cannot keep a copy of %s before changing it, so it was "
                                       "not changed: ",
                                       real);
            return NULL;
        }
    }
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                "cannot find a free name %s.<epoch-ms> for the copy of %s; it was not changed",
                real, real);
    return NULL;
}

/* The new text in place of the file, once its copy is kept; a dry run makes the diff instead. */
static gboolean write_fixed(FixRun *run, GError **error)
{
    const char *path = run->options->path;
    gsize len = 0;
    const guint8 *data = g_bytes_get_data(run->fixed, &len);

    if (run->options->dry_run) {
        gsize old_len = 0;
        const guint8 *old = caback_cscfg_data(run->cfg, &old_len);
        run->pub.diff = caback_cscfg_unified_diff(path, old, old_len, data, len);
        return TRUE;
    }
    if (!unchanged_since_read(run->real, run->cfg, error))
        return FALSE;
    run->pub.backup = write_backup(run->real, run->cfg, &run->st, error);
    if (run->pub.backup == NULL)
        return FALSE;
    if (!caback_atomic_file_replace(run->real, data, len, run->st.st_mode & 07777, run->st.st_uid,
                                    run->st.st_gid, TRUE, error)) {
        g_prefix_error(error, "%s was not changed (its copy %s stays): ", path, run->pub.backup);
        return FALSE;
    }
    return TRUE;
}

/* The run's verdict once shown: MISSING tags fail it, and so does a dry run with changes. */
static gboolean verdict(const FixRun *run, GError **error)
{
    const GPtrArray *results = run->pub.results;
    g_autoptr(GString) why = g_string_new(NULL);
    guint missing = 0, changes = run->pub.changes;

    for (guint i = 0; i < results->len; i++) {
        const CabackCloneResult *r = results->pdata[i];
        if (r->status != CABACK_CLONE_MISSING)
            continue;
        missing++;
        g_string_append_printf(why, "%s%s: %s", why->len > 0 ? "; " : "", r->tag, r->reason);
    }
    if (missing > 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "%u of %u tags could not be checked%s: %s", missing, results->len,
                    changes > 0 ? (run->options->dry_run ? " (the others would be fixed)"
                                                         : " (the others were fixed)")
                                : "",
                    why->str);
        return FALSE;
    }
    /* The dry run is a check a script can act on: "changes needed" has its own status. */
    if (run->options->dry_run && changes > 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CHANGES_NEEDED,
                    "dry run: %u entries of %s are stale and would change; nothing was written. "
                    "Run without --dry-run (the instance stopped) to fix them",
                    changes, run->options->path);
        return FALSE;
    }
    return TRUE;
}

static gboolean fix(FixRun *run, GError **error)
{
    const char *path = run->options->path;

    if (!read_cscfg(run, error))
        return FALSE;
    run->pub.has_list = caback_cscfg_has_cloning_list(run->cfg);
    if (!run->pub.has_list)
        say(run, CABACK_RUN_NOTE,
            "%s has no cloning.list: Dogtag 10.9 and later do not use the cloning.* entries (a "
            "clone takes its keys from the PKCS#12 file); the entries present are checked anyway",
            path);
    if (!audit(run, error))
        return FALSE;
    if (run->pub.results->len == 0)
        say(run, CABACK_RUN_NOTE, "%s has no cloning.<tag>.privkey.id entries: nothing to check",
            path);
    take_results(run);
    if (run->changes->len > 0) {
        run->fixed = caback_cscfg_apply(run->cfg, run->changes, error);
        if (run->fixed == NULL || !write_fixed(run, error))
            return FALSE;
    }
    if (run->hooks->finished != NULL)
        run->hooks->finished(&run->pub, run->hooks->data);
    return verdict(run, error);
}

gboolean caback_clone_ids_fix(const CabackCloneFixOptions *options,
                              const CabackCloneFixHooks *hooks, GError **error)
{
    static const CabackCloneFixHooks none = {0};
    FixRun run = {.options = options, .hooks = hooks != NULL ? hooks : &none};

    run.pub.path = options->path;
    run.pub.dry_run = options->dry_run;
    gboolean ok = fix(&run, error);
    fix_run_clear(&run);
    return ok;
}
