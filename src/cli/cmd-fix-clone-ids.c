/* caback fix-clone-ids: check the cloning.<tag>.privkey.id (and public key) entries of a Dogtag
 * CS.cfg against the keys of the NSS database, and rewrite the stale ones in place.
 *
 * The database is opened read-only. The file is changed only when some entry is stale, and then
 * only in those values: a copy CS.cfg.<epoch-ms> is written first, then the new text goes to a
 * temporary file in the same folder that is renamed over CS.cfg, with the same mode and owner. */
#include "config.h"

#include "cli.h"
#include "cli-log.h"

#include <caback/atomic-file.h>
#include <caback/clone-ids.h>
#include <caback/cscfg.h>
#include <caback/json.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Long values (a 2048-bit modulus has 512 digits) are shortened in the table; the diff and the
 * JSON carry them whole. */
static char *short_value(const char *value)
{
    gsize n = strlen(value);

    if (n == 0)
        return g_strdup("(empty)");
    if (n <= 44)
        return g_strdup(value);
    return g_strdup_printf("%.16s...%s (%" G_GSIZE_FORMAT " digits)", value, value + n - 8, n);
}

static const char *display(const char *s)
{
    return s != NULL ? s : "-";
}

static void print_table(const char *path, const char *dbdir, const char *token,
                        const GPtrArray *results)
{
    int tagw = 3, nickw = 8;

    caback_cli_info("CS.cfg: %s", path);
    caback_cli_info("NSS database: %s (token \"%s\")", dbdir, token);
    if (results->len == 0)
        return;
    for (guint i = 0; i < results->len; i++) {
        const CabackCloneResult *r = results->pdata[i];
        tagw = MAX(tagw, (int)strlen(r->tag));
        nickw = MAX(nickw, (int)strlen(display(r->nickname)));
    }
    caback_cli_info("%-*s  %-7s  %-*s  %s", tagw, "TAG", "STATUS", nickw, "NICKNAME",
                    "cloning.<tag>.privkey.id");
    for (guint i = 0; i < results->len; i++) {
        const CabackCloneResult *r = results->pdata[i];
        const char *status = caback_clone_status_name(r->status);
        const char *nick = display(r->nickname);
        const char *old_id = r->old_id != NULL && *r->old_id != '\0' ? r->old_id : "(empty)";

        switch (r->status) {
        case CABACK_CLONE_OK:
            caback_cli_info("%-*s  %-7s  %-*s  %s", tagw, r->tag, status, nickw, nick, old_id);
            break;
        case CABACK_CLONE_STALE: {
            gboolean id_changes = FALSE;
            for (guint j = 0; j < r->changes->len; j++) {
                const CabackCsCfgChange *c = r->changes->pdata[j];
                id_changes |= g_str_has_suffix(c->key, ".privkey.id");
            }
            if (id_changes)
                caback_cli_info("%-*s  %-7s  %-*s  %s -> %s", tagw, r->tag, status, nickw, nick,
                                old_id, r->new_id);
            else
                caback_cli_info("%-*s  %-7s  %-*s  %s (public key entries differ)", tagw, r->tag,
                                status, nickw, nick, old_id);
            for (guint j = 0; j < r->changes->len; j++) {
                const CabackCsCfgChange *c = r->changes->pdata[j];
                if (g_str_has_suffix(c->key, ".privkey.id"))
                    continue;
                g_autofree char *o = short_value(c->old_value);
                g_autofree char *n = short_value(c->new_value);
                caback_cli_info("%-*s    %s: %s -> %s", tagw, "", c->key, o, n);
            }
            break;
        }
        case CABACK_CLONE_MISSING:
            caback_cli_info("%-*s  %-7s  %-*s  %s", tagw, r->tag, status, nickw, nick, old_id);
            caback_cli_info("%-*s    %s", tagw, "", r->reason);
            break;
        }
    }
}

static void print_json(const char *path, const char *dbdir, gboolean has_list,
                       const GPtrArray *results, gboolean changed, const char *backup)
{
    g_autoptr(CabackJson) json = caback_cli_json_object_new();

    caback_cli_json_path(json, "file", path);
    caback_json_string(json, "database", dbdir);
    caback_json_bool(json, "has_cloning_list", has_list);
    caback_json_begin_array(json, "entries");
    for (guint i = 0; i < results->len; i++) {
        const CabackCloneResult *r = results->pdata[i];
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "tag", r->tag);
        caback_json_string(json, "nickname", r->nickname);
        caback_json_string(json, "status", caback_clone_status_name(r->status));
        caback_json_string(json, "old_id", r->old_id);
        caback_json_string(json, "new_id", r->new_id);
        caback_json_string(json, "nss_id", r->nss_id);
        /* the key's Dogtag form, the value the entry must have (new_id) */
        caback_json_string(json, "dogtag_id", r->new_id);
        caback_json_begin_array(json, "changes");
        for (guint j = 0; j < r->changes->len; j++) {
            const CabackCsCfgChange *c = r->changes->pdata[j];
            caback_json_begin_object(json, NULL);
            caback_json_string(json, "key", c->key);
            caback_json_string(json, "old", c->old_value);
            caback_json_string(json, "new", c->new_value);
            caback_json_end_object(json);
        }
        caback_json_end_array(json);
        caback_json_string(json, "reason", r->reason);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
    caback_json_bool(json, "changed", changed);
    caback_json_string(json, "backup", backup);
    caback_cli_json_object_print(json);
}

/* Whether @path still holds exactly the bytes caback read: Dogtag rewrites CS.cfg itself, and a
 * change made meanwhile must not be overwritten with an edit of the older text. */
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

static char *missing_summary(const GPtrArray *results, guint *count)
{
    g_autoptr(GString) text = g_string_new(NULL);

    *count = 0;
    for (guint i = 0; i < results->len; i++) {
        const CabackCloneResult *r = results->pdata[i];
        if (r->status != CABACK_CLONE_MISSING)
            continue;
        (*count)++;
        g_string_append_printf(text, "%s%s: %s", text->len > 0 ? "; " : "", r->tag, r->reason);
    }
    return g_strdup(text->str);
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

static gboolean run(const char *path, const CabackCommonOptions *common, gboolean dry_run,
                    CabackLogRecord *rec, GError **error)
{
    g_autoptr(CabackCsCfg) cfg = caback_cscfg_read_file(path, error);
    if (cfg == NULL)
        return FALSE;
    if (!looks_like_cscfg(cfg)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG,
                    "%s is not a Dogtag CS.cfg (it has no cs.type, no <subsystem>.cert.list and "
                    "no cloning.* entry); nothing was checked. Give the instance's CS.cfg, e.g. "
                    "/var/lib/pki/pki-tomcat/ca/conf/CS.cfg",
                    path);
        return FALSE;
    }

    /* The file to change is the symlink's target, so that the link stays a link. */
    g_autofree char *real = realpath(path, NULL);
    struct stat st;
    if (real == NULL || stat(real, &st) != 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot examine %s: %s", path,
                    g_strerror(e));
        return FALSE;
    }
    if (!S_ISREG(st.st_mode)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG,
                    "%s is not a regular file; give the path of the instance's CS.cfg", path);
        return FALSE;
    }

    gboolean has_list = caback_cscfg_has_cloning_list(cfg);
    if (!has_list)
        caback_cli_note(
            "%s has no cloning.list: Dogtag 10.9 and later do not use the cloning.* entries (a "
            "clone takes its keys from the PKCS#12 file); the entries present are checked anyway",
            path);

    CabackDb *db = caback_cli_open_db(common, TRUE, error);
    if (db == NULL)
        return FALSE;
    caback_cli_log_database(rec, db);
    g_autofree char *dbdir = g_strdup(db->dir);
    g_autofree char *token = g_strdup(db->token_name);
    g_autoptr(GPtrArray) results = caback_clone_ids_audit(db, cfg, error);
    /* Close before writing anything: a leaked NSS reference is a failure to report first. */
    if (!caback_db_close(db, results != NULL ? error : NULL) || results == NULL)
        return FALSE;

    if (results->len == 0)
        caback_cli_note("%s has no cloning.<tag>.privkey.id entries: nothing to check", path);

    g_autoptr(GPtrArray) changes = g_ptr_array_new();
    for (guint i = 0; i < results->len; i++) {
        const CabackCloneResult *r = results->pdata[i];
        if (r->nss_id != NULL)
            caback_log_record_add_key(rec, r->nickname, r->nss_id, r->new_id);
        for (guint j = 0; j < r->notes->len; j++)
            caback_cli_detail("%s: %s", r->tag, (const char *)r->notes->pdata[j]);
        for (guint j = 0; j < r->changes->len; j++)
            g_ptr_array_add(changes, r->changes->pdata[j]);
        if (r->legacy_problem)
            caback_cli_log_warning(rec,
                                   "tag %s: Dogtag before 10.5.6 cannot decode the key ID %s (its "
                                   "short form loses the sign); such a clone needs a newer Dogtag",
                                   r->tag, r->new_id);
    }

    g_autoptr(GBytes) fixed = NULL;
    if (changes->len > 0) {
        fixed = caback_cscfg_apply(cfg, changes, error);
        if (fixed == NULL)
            return FALSE;
    }

    g_autofree char *backup = NULL;
    if (fixed != NULL && !dry_run) {
        if (!unchanged_since_read(real, cfg, error))
            return FALSE;
        backup = write_backup(real, cfg, &st, error);
        if (backup == NULL)
            return FALSE;
        gsize len = 0;
        const guint8 *data = g_bytes_get_data(fixed, &len);
        if (!caback_atomic_file_replace(real, data, len, st.st_mode & 07777, st.st_uid, st.st_gid,
                                        TRUE, error)) {
            g_prefix_error(error, "%s was not changed (its copy %s stays): ", path, backup);
            return FALSE;
        }
    }

    if (common->json) {
        print_json(path, dbdir, has_list, results, backup != NULL, backup);
    } else {
        print_table(path, dbdir, token, results);
        if (fixed != NULL && dry_run) {
            gsize old_len = 0;
            const guint8 *old = caback_cscfg_data(cfg, &old_len);
            g_autofree char *diff = caback_cscfg_unified_diff(
                path, old, old_len, g_bytes_get_data(fixed, NULL), g_bytes_get_size(fixed));
            caback_cli_info("Dry run: %u entries would change; nothing was written:", changes->len);
            g_print("%s", diff);
        } else if (backup != NULL) {
            caback_cli_info("Fixed %u entries in %s; the previous file is kept as %s", changes->len,
                            path, backup);
        } else if (results->len > 0) {
            caback_cli_info("No entry needs a change; %s was not changed.", path);
        }
    }

    guint missing = 0;
    g_autofree char *why = missing_summary(results, &missing);
    if (missing > 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "%u of %u tags could not be checked%s: %s", missing, results->len,
                    changes->len > 0
                        ? (dry_run ? " (the others would be fixed)" : " (the others were fixed)")
                        : "",
                    why);
        return FALSE;
    }
    /* The dry run is a check a script can act on: "changes needed" has its own status. */
    if (dry_run && changes->len > 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CHANGES_NEEDED,
                    "dry run: %u entries of %s are stale and would change; nothing was written. "
                    "Run without --dry-run (the instance stopped) to fix them",
                    changes->len, path);
        return FALSE;
    }
    return TRUE;
}

gboolean caback_cmd_fix_clone_ids(int argc, char **argv, GError **error)
{
    CabackCommonOptions common = {0};
    gboolean dry_run = FALSE;
    g_autofree char *log_path = NULL;
    g_autoptr(GOptionContext) context = g_option_context_new("CS.cfg");
    const GOptionEntry entries[] = {
        {"dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run,
         "Print the changes as a unified diff and change nothing", NULL},
        CABACK_CLI_LOG_ENTRY(&log_path),
        {NULL}};
    gboolean ok = FALSE;
    CabackLogRecord *rec = NULL;

    g_option_context_set_summary(
        context,
        "Check the cloning.<tag>.privkey.id entries of a Dogtag CS.cfg (and the\n"
        "pubkey.modulus, pubkey.exponent and pubkey.encoded entries of the same tag) against\n"
        "the keys of the NSS database, and rewrite the stale ones. Each tag is reported as OK,\n"
        "STALE (old -> new value) or MISSING (no certificate or key for its nickname).");
    g_option_context_set_description(
        context,
        "Only the stale values change; every other byte of the file stays as it was. A copy\n"
        "CS.cfg.<epoch-ms> with the same mode and owner is kept first. The database is opened\n"
        "read-only. Exit status: 0 all tags OK or fixed, 1 a tag is MISSING (the others are\n"
        "still fixed), the file is not a CS.cfg, or another failure, 2 usage error, 3 wrong\n"
        "password, 4 the file changed meanwhile, 6 --dry-run found entries to change. Example, with the instance stopped:\n"
        "  caback fix-clone-ids /var/lib/pki/pki-tomcat/ca/conf/CS.cfg --dry-run \\\n"
        "      -d /var/lib/pki/pki-tomcat/alias -f /var/lib/pki/pki-tomcat/conf/password.conf\n");
    g_option_context_add_main_entries(context, entries, NULL);
    caback_cli_add_common(context, &common,
                          CABACK_COMMON_DB | CABACK_COMMON_JSON | CABACK_COMMON_LOCK);

    if (!caback_cli_parse(context, "fix-clone-ids", &common, &argc, &argv, error))
        goto out;
    if ((rec = caback_cli_log_begin("fix-clone-ids", log_path, error)) == NULL)
        goto out;
    caback_cli_log_common(rec, &common);
    caback_cli_log_flag(rec, "--dry-run", dry_run);
    caback_cli_log_option(rec, "--log", log_path);
    for (int i = 1; i < argc; i++)
        caback_log_record_add_arg(rec, argv[i]);
    if (argc != 2) {
        if (argc < 2)
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "give the CS.cfg file to check (see: caback help fix-clone-ids)");
        else
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "unexpected argument \"%s\": give one CS.cfg file (see: caback help "
                        "fix-clone-ids)",
                        argv[2]);
        goto out;
    }
    caback_cli_log_file(rec, argv[1]);
    ok = run(argv[1], &common, dry_run, rec, error);
out:
    caback_cli_log_finish(g_steal_pointer(&rec), ok, error, log_path);
    caback_cli_common_clear(&common);
    return ok;
}
