/* caback reshare: new custodians (and a new password) for an archive under M-of-N custody, as
 * Vault's "operator rekey" does; with --verify the new archive waits until each new custodian has
 * confirmed their share (--confirm). The work is custody-reshare.c's; doc/custody.md tells the
 * ceremony. */
#include "config.h"

#include "cli.h"
#include "cli-log.h"

#include <caback/backup.h>
#include <caback/custody-flow.h>
#include <caback/custody.h>
#include <caback/digest.h>
#include <caback/json.h>

#include <string.h>

typedef struct {
    CabackCliShares shares;   /* the current shares; with --confirm, the new ones */
    CabackCliCustody custody; /* the new split */
    gboolean verify;
    gboolean confirm;
    gboolean abort;
    gboolean force;
    gboolean allow_shared_folder;
    char *iterations;
    char *log_path;
} ReshareOptions;

static void log_options(CabackLogRecord *rec, const char *archive, const ReshareOptions *o,
                        const CabackCommonOptions *common)
{
    caback_cli_log_common(rec, common);
    if (archive != NULL) {
        caback_log_record_add_arg(rec, archive);
        caback_cli_log_file(rec, archive);
    }
    caback_cli_log_shares(rec, &o->shares);
    caback_cli_log_custody_options(rec, &o->custody);
    caback_cli_log_flag(rec, "--verify", o->verify);
    caback_cli_log_flag(rec, "--confirm", o->confirm);
    caback_cli_log_flag(rec, "--abort", o->abort);
    caback_cli_log_flag(rec, "--force", o->force);
    caback_cli_log_flag(rec, "--allow-shared-folder", o->allow_shared_folder);
    caback_cli_log_option(rec, "--iterations", o->iterations);
    caback_cli_log_option(rec, "--log", o->log_path);
}

/* The new custodians, read and checked before the current shares are asked for, in an NSS
 * context that ends here (the reshare reads them again inside its own): copies without their
 * certificates, for the summary. */
static GPtrArray *check_custodians(const ReshareOptions *o, CabackLogRecord *rec,
                                   GError **error)
{
    NSSInitContext *nss = caback_nss_nodb_open(error);
    if (nss == NULL)
        return NULL;
    g_autoptr(GPtrArray) loaded = caback_cli_custody_load(&o->custody, "reshare", o->force, rec,
                                                          error);
    GPtrArray *copies = NULL;
    if (loaded != NULL) {
        copies = g_ptr_array_new_with_free_func((GDestroyNotify)caback_custodian_free);
        for (guint i = 0; i < loaded->len; i++) {
            const CabackCustodian *c = loaded->pdata[i];
            CabackCustodian *copy = g_new0(CabackCustodian, 1);
            copy->path = g_strdup(c->path);
            copy->fingerprint = g_strdup(c->fingerprint);
            copy->subject = g_strdup(c->subject);
            copy->key_type = c->key_type;
            g_ptr_array_add(copies, copy);
        }
    }
    g_clear_pointer(&loaded, g_ptr_array_unref);
    if (!caback_nss_nodb_close(nss, copies != NULL ? error : NULL))
        g_clear_pointer(&copies, g_ptr_array_unref);
    return copies;
}

static void print_result(const char *archive, const CabackReshareResult *r, GPtrArray *custodians,
                         const char *done, gboolean json)
{
    if (json) {
        g_autoptr(CabackJson) j = caback_cli_json_object_new();
        caback_cli_json_path(j, "file", archive);
        caback_json_string(j, "result", done);
        caback_json_bool(j, "pending", r->pending);
        caback_json_string(j, "old_sha256", r->old_sha256);
        caback_json_string(j, "sha256", r->sha256);
        if (custodians != NULL)
            caback_custody_json(j, r->threshold, custodians, r->share_files);
        caback_json_int(j, "confirmed", r->confirmed);
        caback_json_begin_array(j, "waiting");
        for (guint i = 0; r->waiting != NULL && i < r->waiting->len; i++)
            caback_json_int(j, NULL, GPOINTER_TO_UINT(r->waiting->pdata[i]));
        caback_json_end_array(j);
        caback_json_strings(j, "stale_share_files", r->stale);
        caback_cli_json_object_print(j);
        return;
    }
    GString *out = g_string_new(NULL);
    if (r->pending) {
        g_autofree char *pending = caback_reshare_pending_path(archive);
        g_string_append_printf(out,
                               "%s: the new archive %s (SHA-256 %s) waits for the new custodians; "
                               "%s and its shares stay valid until then.\n",
                               done, pending, r->sha256, archive);
        if (custodians != NULL)
            caback_cli_custody_text(out, r->threshold, custodians, r->share_files);
        g_string_append_printf(out, "Confirmed: %u of %u; waiting for share", r->confirmed,
                               r->count);
        for (guint i = 0; i < r->waiting->len; i++)
            g_string_append_printf(out, "%s %u", i == 0 ? "" : ",",
                                   GPOINTER_TO_UINT(r->waiting->pdata[i]));
        g_string_append_printf(out,
                               ".\nEach new custodian runs: caback share-open SHARE.p7m -d "
                               "THEIR_DB -o FILE, then caback reshare %s --confirm --share FILE\n",
                               archive);
    } else {
        g_string_append_printf(out,
                               "%s: %s now has a new password (SHA-256 %s, was %s); the old "
                               "shares no longer open it.\n",
                               done, archive, r->sha256, r->old_sha256);
        if (custodians != NULL)
            caback_cli_custody_text(out, r->threshold, custodians, r->share_files);
        else
            for (guint i = 0; r->share_files != NULL && i < r->share_files->len; i++)
                g_string_append_printf(out, "  share %u: %s\n", i + 1,
                                       (const char *)r->share_files->pdata[i]);
        for (guint i = 0; r->stale != NULL && i < r->stale->len; i++)
            g_string_append_printf(out, "Old share file %s opens nothing any more: destroy it\n",
                                   (const char *)r->stale->pdata[i]);
    }
    caback_cli_info("%s", g_strchomp(out->str));
    g_string_free(out, TRUE);
}

/* --confirm: the new custodians' shares, read in an NSS context of their own. */
static gboolean run_confirm(const char *archive, const ReshareOptions *o,
                            const CabackCommonOptions *common, GError **error)
{
    CabackDb *db = NULL;
    NSSInitContext *nss = NULL;
    if (caback_shares_need_db((const char *const *)o->shares.files)) {
        if ((db = caback_cli_open_db(common, TRUE, error)) == NULL)
            return FALSE;
    } else if ((nss = caback_nss_nodb_open(error)) == NULL) {
        return FALSE;
    }
    CabackReshareResult r = {0};
    gboolean ok = caback_reshare_confirm_files(archive, (const char *const *)o->shares.files,
                                               o->shares.prompt, db, &r, error);
    gboolean closed = db != NULL ? caback_db_close(db, ok ? error : NULL)
                                 : caback_nss_nodb_close(nss, ok ? error : NULL);
    if (ok && closed)
        print_result(archive, &r, NULL, r.pending ? "Confirmed" : "Confirmed by all",
                     common->json);
    caback_reshare_result_clear(&r);
    return ok && closed;
}

static gboolean run_reshare(const char *archive, const ReshareOptions *o,
                            const CabackCommonOptions *common, CabackLogRecord *rec,
                            GError **error)
{
    CabackReshareOptions ro = {.archive = archive,
                               .threshold = o->custody.threshold,
                               .custodian_files = (const char *const *)o->custody.files,
                               .custodian_dir = o->custody.dir,
                               .force_custodians = o->force,
                               .verify = o->verify,
                               .allow_shared_folder = o->allow_shared_folder};
    if (!caback_backup_write_options(NULL, FALSE, o->iterations, "reshare", &ro.write, error))
        return FALSE;
    /* The new custodians are checked before anyone types a share. */
    g_autoptr(GPtrArray) custodians = check_custodians(o, rec, error);
    if (custodians == NULL)
        return FALSE;
    g_autoptr(CabackSecret) password =
        caback_cli_shares_password(common, archive, &o->shares, NULL, error);
    if (password == NULL)
        return FALSE;
    ro.password = password;
    CabackReshareResult r = {0};
    gboolean ok = caback_reshare_run(&ro, &r, error);
    if (ok) {
        caback_log_record_set_file_sha256(rec, r.pending ? r.old_sha256 : r.sha256);
        for (guint i = 0; r.stale != NULL && i < r.stale->len; i++)
            caback_log_record_add_warning(rec, "old share file %s opens nothing any more",
                                          (const char *)r.stale->pdata[i]);
        print_result(archive, &r, custodians, r.pending ? "Pending" : "Reshared", common->json);
    }
    caback_reshare_result_clear(&r);
    return ok;
}

/* The options of caback reshare: one table for the parser and the help. */
static GOptionContext *reshare_context(ReshareOptions *o, CabackCommonOptions *common)
{
    const GOptionEntry entries[] = {
        {"verify", 0, 0, G_OPTION_ARG_NONE, &o->verify,
         "Leave the new archive pending next to ARCHIVE until each new custodian confirmed "
         "their share (--confirm); the old archive and shares stay valid until then",
         NULL},
        {"confirm", 0, 0, G_OPTION_ARG_NONE, &o->confirm,
         "Confirm new shares of a pending reshare (--share FILE from share-open of the pending "
         "share files); the last confirmation puts the new archive in place",
         NULL},
        {"abort", 0, 0, G_OPTION_ARG_NONE, &o->abort,
         "Drop a pending reshare (its files); ARCHIVE and its shares are untouched", NULL},
        {"force", 0, 0, G_OPTION_ARG_NONE, &o->force,
         "Accept custodian certificates that are expired or not for encryption", NULL},
        {"iterations", 0, 0, G_OPTION_ARG_STRING, &o->iterations,
         "Key derivation iterations of the new archive (default 600000)", "N"},
        {"allow-shared-folder", 0, 0, G_OPTION_ARG_NONE, &o->allow_shared_folder,
         "Write into a folder that other users may write; refused by default", NULL},
        CABACK_CLI_LOG_ENTRY(&o->log_path),
        {NULL}};
    GOptionContext *context = g_option_context_new("ARCHIVE");
    g_option_context_set_summary(
        context,
        "Give an archive under M-of-N custody (backup --split) a new random password and a new "
        "share set for new\n"
        "custodians: with M of the current shares, the archive is restored into a private "
        "temporary database and\n"
        "backed up from there (verified with the password rebuilt from the new shares); the "
        "old shares cannot\n"
        "open the new archive. See doc/custody.md.");
    g_option_context_set_description(
        context, "Examples:\n"
                 "  caback reshare ca.p12 --share a.share --share b.share --split 3 "
                 "--custodian-dir new-custodians/\n"
                 "  caback reshare ca.p12 --shares-prompt --split 3 --custodian-dir new/ "
                 "--verify\n"
                 "  caback reshare ca.p12 --confirm --share bob.share\n");
    g_option_context_add_main_entries(context, entries, NULL);
    caback_cli_add_share_options(context, &o->shares);
    caback_cli_add_custody_options(context, &o->custody);
    caback_cli_add_common(context, common,
                          CABACK_COMMON_DB | CABACK_COMMON_JSON | CABACK_COMMON_LIMITS |
                              CABACK_COMMON_PROGRESS);
    return context;
}

/* --confirm and --abort act on a pending reshare: they take no new split. */
static gboolean run_pending(const char *archive, const ReshareOptions *o,
                            const CabackCommonOptions *common, GError **error)
{
    if (caback_cli_custody_given(&o->custody))
        return caback_cli_usage_error(error, "reshare",
                                      "--%s takes no --split / --custodian: the pending reshare "
                                      "already has its custodians",
                                      o->confirm ? "confirm" : "abort");
    if (o->abort) {
        if (caback_cli_shares_given(&o->shares))
            return caback_cli_usage_error(error, "reshare", "--abort takes no share");
        if (!caback_reshare_abort(archive, error))
            return FALSE;
        caback_cli_info("Dropped the pending reshare of %s; %s and its shares are as they were",
                        archive, archive);
        return TRUE;
    }
    if (!caback_cli_shares_given(&o->shares))
        return caback_cli_usage_error(error, "reshare",
                                      "--confirm needs the new custodians' shares: --share FILE "
                                      "(from caback share-open) or --shares-prompt");
    return run_confirm(archive, o, common, error);
}

/* The archive, one of --verify/--confirm/--abort, then the work they ask for. */
static gboolean dispatch(int argc, char **argv, ReshareOptions *o,
                         const CabackCommonOptions *common, CabackLogRecord *rec, GError **error)
{
    if (argc < 2)
        return caback_cli_usage_error(error, "reshare",
                                      "give the archive: caback reshare ARCHIVE ...");
    if (argc > 2)
        return caback_cli_usage_error(error, "reshare",
                                      "give one archive (unexpected argument \"%s\")", argv[2]);
    const char *archive = argv[1];
    if ((int)o->verify + (int)o->confirm + (int)o->abort > 1)
        return caback_cli_usage_error(error, "reshare",
                                      "give one of --verify, --confirm and --abort");
    if (o->confirm || o->abort)
        return run_pending(archive, o, common, error);
    if (o->custody.split == NULL)
        return caback_cli_usage_error(error, "reshare",
                                      "give the new split: --split M with --custodian FILE... or "
                                      "--custodian-dir DIR");
    if (!caback_cli_custody_check(&o->custody, "reshare", NULL, FALSE, error))
        return FALSE;
    if (!caback_cli_shares_given(&o->shares))
        return caback_cli_usage_error(error, "reshare",
                                      "give M of the current shares: --share FILE... or "
                                      "--shares-prompt");
    return run_reshare(archive, o, common, rec, error);
}

gboolean caback_cmd_reshare(int argc, char **argv, GError **error)
{
    CabackCommonOptions common = {0};
    ReshareOptions o = {0};
    CabackLogRecord *rec = NULL;
    gboolean ok = FALSE;
    g_autoptr(GOptionContext) context = reshare_context(&o, &common);

    if (!caback_cli_parse(context, "reshare", &common, &argc, &argv, error) ||
        (rec = caback_cli_log_begin("reshare", o.log_path, error)) == NULL)
        goto out;
    log_options(rec, argc >= 2 ? argv[1] : NULL, &o, &common);
    ok = dispatch(argc, argv, &o, &common, rec, error);
out:
    caback_cli_log_finish(rec, ok, error, o.log_path);
    caback_cli_shares_clear(&o.shares);
    caback_cli_custody_clear(&o.custody);
    g_free(o.iterations);
    g_free(o.log_path);
    caback_cli_common_clear(&common);
    return ok;
}
