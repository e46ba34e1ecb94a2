/* caback share-open: a custodian decrypts their share of an archive password (a CMS file made by
 * "caback backup --split") with the key in their own NSS database or token, and gets it as one
 * line of text with a checksum, to hand to the restore. The share is never logged. */
#include "config.h"

#include "cli-log.h"
#include "cli.h"

#include <caback/custody-flow.h>
#include <caback/custody.h>
#include <caback/json.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    CabackCommonOptions common;
    char *output;
    char *log_path;
    gboolean force;
} ShareOpenOptions;

/* The options of caback share-open: one table for the parser and the help. */
static GOptionContext *share_open_context(ShareOpenOptions *o)
{
    const GOptionEntry entries[] = {
        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &o->output,
         "Write the share's text to FILE (mode 0600) instead of standard output", "FILE"},
        {"force", 0, 0, G_OPTION_ARG_NONE, &o->force, "Replace an existing -o FILE", NULL},
        CABACK_CLI_LOG_ENTRY(&o->log_path),
        {NULL}};
    GOptionContext *context = g_option_context_new("SHARE.p7m");

    g_option_context_set_summary(
        context,
        "Decrypt your share of a backup's password (a file ARCHIVE.share-I-of-N.p7m written by\n"
        "caback backup --split) with the key of your custodian certificate, in the NSS database "
        "-d DIR\nor on the token --token NAME, and print it as one line of text with a checksum "
        "(\"CBK1-...\").\nGive that line to the restore (restore --share FILE or "
        "--shares-prompt); it is never logged.");
    g_option_context_set_description(
        context,
        "The file is a CMS EnvelopedData: OpenSSL opens it too (openssl cms -decrypt -inform DER "
        "-in FILE\n-recip CERT.pem -inkey KEY.pem prints the share record).\n"
        "A mistyped share is detected by its checksum when it is given back.\n\n"
        "Example: caback share-open ca.p12.share-2-of-5.p7m -d ~/.pki/nssdb -o /media/usb/share-2\n");
    g_option_context_add_main_entries(context, entries, NULL);
    caback_cli_add_common(context, &o->common, CABACK_COMMON_DB | CABACK_COMMON_JSON);
    return context;
}

static void log_options(CabackLogRecord *rec, const ShareOpenOptions *o, int argc, char **argv)
{
    caback_cli_log_common(rec, &o->common);
    caback_cli_log_option(rec, "-o", o->output);
    caback_cli_log_flag(rec, "--force", o->force);
    caback_cli_log_option(rec, "--log", o->log_path);
    for (int i = 1; i < argc; i++)
        caback_log_record_add_arg(rec, argv[i]);
}

/* Every usage error, once the run's record is made. */
static gboolean check_options(const ShareOpenOptions *o, int argc, char **argv,
                              CabackLogRecord *rec, GError **error)
{
    if (argc != 2)
        return caback_cli_usage_error(error, "share-open",
                                      argc < 2 ? "give the share file to open"
                                               : "give one share file at a time");
    caback_cli_log_file(rec, argv[1]);
    if (o->common.dbdir == NULL)
        /* never the default (the CA's own database): the custodian's key is elsewhere */
        return caback_cli_usage_error(error, "share-open",
                                      "give -d DIR: your NSS database, whose key (or whose "
                                      "token's key, with --token NAME) opens the share");
    if (!caback_share_open_check(o->output, o->force, error))
        return FALSE;
    if (o->common.json && o->output == NULL)
        /* standard output then carries the JSON result only, which scripts keep and log */
        return caback_cli_usage_error(error, "share-open",
                                      "--json needs -o FILE: the share is not put in the JSON "
                                      "output");
    return TRUE;
}

static void print_json(const char *path, const char *output, const CabackShare *share)
{
    g_autoptr(CabackJson) json = caback_cli_json_object_new();
    g_autofree char *archive = caback_share_archive_hex(share);
    caback_cli_json_path(json, "file", path);
    caback_json_int(json, "index", share->index);
    caback_json_int(json, "threshold", share->threshold);
    caback_json_int(json, "count", share->count);
    caback_json_string(json, "archive_sha256", archive);
    caback_cli_json_path(json, "output", output);
    caback_cli_json_object_print(json);
}

/* The share line on standard output with write(2), not stdio: stdout's buffer would keep a copy
 * nobody wipes. */
static gboolean write_line(const CabackShare *share, GError **error)
{
    g_autoptr(CabackSecret) line = caback_share_to_line(share);
    fflush(stdout);
    for (gsize done = 0; done < line->len;) {
        ssize_t n = write(STDOUT_FILENO, line->data + done, line->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "cannot write the share to standard output: %s", g_strerror(errno));
            return FALSE;
        }
        done += (gsize)n;
    }
    return TRUE;
}

/* On standard error: standard output carries the share line alone, so that
 * "caback share-open ... > FILE" gives a file that restore --share reads. */
static gboolean print_text(const ShareOpenOptions *o, const CabackShare *share, GError **error)
{
    g_autofree char *archive = caback_share_archive_hex(share);
    if (!o->common.quiet)
        g_printerr("Share %u of %u (any %u of them open the archive whose SHA-256 is %s)\n",
                   share->index, share->count, share->threshold, archive);
    if (o->output == NULL)
        return write_line(share, error);
    if (!o->common.quiet)
        g_printerr("Written to %s (mode 0600)\n", o->output);
    return TRUE;
}

gboolean caback_cmd_share_open(int argc, char **argv, GError **error)
{
    ShareOpenOptions o = {0};
    g_autoptr(GOptionContext) context = share_open_context(&o);
    g_autoptr(CabackLogRecord) rec = NULL;
    g_autoptr(CabackDb) db = NULL;
    g_autoptr(CabackShare) share = NULL;
    gboolean ok = FALSE;

    if (!caback_cli_parse(context, "share-open", &o.common, &argc, &argv, error) ||
        (rec = caback_cli_log_begin("share-open", o.log_path, error)) == NULL)
        goto out;
    log_options(rec, &o, argc, argv);
    if (!check_options(&o, argc, argv, rec, error))
        goto out;
    db = caback_cli_open_db(&o.common, TRUE, error);
    if (db == NULL)
        goto out;
    caback_cli_log_database(rec, db);
    share = caback_share_open(argv[1], db, o.output, o.force, error);
    if (share == NULL)
        goto out;
    if (o.common.json)
        print_json(argv[1], o.output, share);
    else if (!print_text(&o, share, error))
        goto out;
    ok = TRUE;
out:
    g_clear_pointer(&share, caback_share_free);
    if (db != NULL && !caback_db_close(g_steal_pointer(&db), ok ? error : NULL))
        ok = FALSE;
    caback_cli_log_finish(g_steal_pointer(&rec), ok, error, o.log_path);
    g_free(o.output);
    g_free(o.log_path);
    caback_cli_common_clear(&o.common);
    return ok;
}
