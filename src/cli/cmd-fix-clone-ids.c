/* caback fix-clone-ids: check the cloning.<tag>.privkey.id (and public key) entries of a Dogtag
 * CS.cfg against the keys of the NSS database, and rewrite the stale ones in place. The work is
 * caback_clone_ids_fix (src/lib/clone-fix.c); this file turns the options into its call and what
 * it found into the table, the dry run's diff or JSON. */
#include "config.h"

#include "cli.h"
#include "cli-log.h"

#include <caback/clone-ids.h>
#include <caback/json.h>

#include <string.h>

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

/* A STALE tag's row: old -> new key ID, or "public key entries differ"; then each other entry
 * that changes. */
static void print_stale(const CabackCloneResult *r, int tagw, int nickw, const char *old_id)
{
    const char *status = caback_clone_status_name(r->status);
    const char *nick = display(r->nickname);
    gboolean id_changes = FALSE;

    for (guint j = 0; j < r->changes->len; j++) {
        const CabackCsCfgChange *c = r->changes->pdata[j];
        id_changes |= g_str_has_suffix(c->key, ".privkey.id");
    }
    if (id_changes) {
        g_autofree char *new_id = caback_keyid_to_token_dogtag(&r->key_id);
        caback_cli_info("%-*s  %-7s  %-*s  %s -> %s", tagw, r->tag, status, nickw, nick, old_id,
                        new_id);
    } else {
        caback_cli_info("%-*s  %-7s  %-*s  %s (public key entries differ)", tagw, r->tag, status,
                        nickw, nick, old_id);
    }
    for (guint j = 0; j < r->changes->len; j++) {
        const CabackCsCfgChange *c = r->changes->pdata[j];
        if (g_str_has_suffix(c->key, ".privkey.id"))
            continue;
        g_autofree char *o = short_value(c->old_value);
        g_autofree char *n = short_value(c->new_value);
        caback_cli_info("%-*s    %s: %s -> %s", tagw, "", c->key, o, n);
    }
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
        case CABACK_CLONE_STALE:
            print_stale(r, tagw, nickw, old_id);
            break;
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
        g_autofree char *new_id = r->has_key ? caback_keyid_to_token_dogtag(&r->key_id) : NULL;
        g_autofree char *nss_id = r->has_key ? caback_keyid_to_token_hex(&r->key_id) : NULL;
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "tag", r->tag);
        caback_json_string(json, "nickname", r->nickname);
        caback_json_string(json, "status", caback_clone_status_name(r->status));
        caback_json_string(json, "old_id", r->old_id);
        caback_json_string(json, "new_id", new_id);
        caback_json_string(json, "nss_id", nss_id);
        /* the key's Dogtag form, the value the entry must have (new_id) */
        caback_json_string(json, "dogtag_id", new_id);
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

/* What the run found and did: the table (and the diff of a dry run), or the JSON object. */
static void on_finished(const CabackCloneFix *fix, gpointer data)
{
    const CabackCommonOptions *common = data;

    if (common->json) {
        print_json(fix->path, fix->dbdir, fix->has_list, fix->results, fix->backup != NULL,
                   fix->backup);
        return;
    }
    print_table(fix->path, fix->dbdir, fix->token, fix->results);
    if (fix->diff != NULL) {
        caback_cli_info("Dry run: %u entries would change; nothing was written:", fix->changes);
        g_print("%s", fix->diff);
    } else if (fix->backup != NULL) {
        caback_cli_info("Fixed %u entries in %s; the previous file is kept as %s", fix->changes,
                        fix->path, fix->backup);
    } else if (fix->results->len > 0) {
        caback_cli_info("No entry needs a change; %s was not changed.", fix->path);
    }
}

static gboolean run(const char *path, const CabackCommonOptions *common, gboolean dry_run,
                    CabackLogRecord *rec, GError **error)
{
    CabackCloneFixOptions options = {.path = path, .dry_run = dry_run, .record = rec};
    CabackCloneFixHooks hooks = {caback_cli_show_message, on_finished, (gpointer)common};

    caback_cli_db_options(common, TRUE, &options.db);
    return caback_clone_ids_fix(&options, &hooks, error);
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
