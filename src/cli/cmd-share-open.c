/* caback share-open: a custodian decrypts their share of an archive password (a CMS file made by
 * "caback backup --split") with the key in their own NSS database or token, and gets it as one
 * line of text with a checksum, to hand to the restore. The share is never logged. */
#include "config.h"

#include "cli-log.h"
#include "cli.h"

#include <caback/custody.h>
#include <caback/json.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

gboolean caback_cmd_share_open(int argc, char **argv, GError **error)
{
    CabackCommonOptions common = {0};
    g_autofree char *output = NULL;
    g_autofree char *log_path = NULL;
    gboolean force = FALSE;
    const GOptionEntry entries[] = {
        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
         "Write the share's text to FILE (mode 0600) instead of standard output", "FILE"},
        {"force", 0, 0, G_OPTION_ARG_NONE, &force, "Replace an existing -o FILE", NULL},
        {"log", 0, 0, G_OPTION_ARG_FILENAME, &log_path, CABACK_CLI_LOG_HELP, CABACK_CLI_LOG_ARG},
        {NULL}};
    g_autoptr(GOptionContext) context = g_option_context_new("SHARE.p7m");
    g_autoptr(CabackLogRecord) rec = NULL;
    g_autoptr(CabackDb) db = NULL;
    g_autoptr(CabackShare) share = NULL;
    g_autofree char *archive = NULL;
    gboolean ok = FALSE;

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
    caback_cli_add_common(context, &common, CABACK_COMMON_DB | CABACK_COMMON_JSON);

    if (!caback_cli_parse(context, "share-open", &common, &argc, &argv, error))
        goto out;
    if (!caback_log_check(log_path, error))
        goto out;
    rec = caback_log_record_new("share-open");
    caback_cli_log_common(rec, &common);
    if (output != NULL)
        caback_log_record_add_option(rec, "-o", output);
    if (force)
        caback_log_record_add_arg(rec, "--force");
    if (log_path != NULL)
        caback_log_record_add_option(rec, "--log", log_path);
    for (int i = 1; i < argc; i++)
        caback_log_record_add_arg(rec, argv[i]);
    if (argc != 2) {
        caback_cli_usage_error(error, "share-open",
                               argc < 2 ? "give the share file to open"
                                        : "give one share file at a time");
        goto out;
    }
    const char *path = argv[1];
    {
        g_autofree char *absolute = g_canonicalize_filename(path, NULL);
        caback_log_record_set_file(rec, absolute);
    }
    if (common.dbdir == NULL) {
        /* never the default (the CA's own database): the custodian's key is elsewhere */
        caback_cli_usage_error(error, "share-open",
                               "give -d DIR: your NSS database, whose key (or whose token's key, "
                               "with --token NAME) opens the share");
        goto out;
    }
    /* Refuse before asking for a password; the atomic commit checks again without a window. */
    if (output != NULL && !force && g_file_test(output, G_FILE_TEST_EXISTS)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%s already exists; it was left untouched (use --force to replace it)",
                    output);
        goto out;
    }
    if (common.json && output == NULL) {
        /* standard output then carries the JSON result only, which scripts keep and log */
        caback_cli_usage_error(error, "share-open",
                               "--json needs -o FILE: the share is not put in the JSON output");
        goto out;
    }

    db = caback_cli_open_db(&common, TRUE, error);
    if (db == NULL)
        goto out;
    caback_cli_log_database(rec, db);
    share = caback_share_read(path, db, error);
    if (share == NULL)
        goto out;
    if (!share->has_custodian) {
        caback_cli_usage_error(error, "share-open",
                               "%s is already an open share (text); give the .p7m file", path);
        goto out;
    }

    {
        GString *hex = g_string_new(NULL);
        for (int i = 0; i < 32; i++)
            g_string_append_printf(hex, "%02x", share->archive_sha256[i]);
        archive = g_string_free(hex, FALSE);
    }
    if (output != NULL) {
        if (!caback_share_write_text(output, share, force, error))
            goto out;
    }

    if (common.json) {
        g_autoptr(CabackJson) json = caback_json_new();
        g_autofree char *file_abs = g_canonicalize_filename(path, NULL);
        g_autofree char *output_abs = g_canonicalize_filename(output, NULL);
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "file", file_abs);
        caback_json_int(json, "index", share->index);
        caback_json_int(json, "threshold", share->threshold);
        caback_json_int(json, "count", share->count);
        caback_json_string(json, "archive_sha256", archive);
        caback_json_string(json, "output", output_abs);
        caback_json_end_object(json);
        caback_cli_json_print(caback_json_text(json));
    } else {
        /* on standard error: standard output carries the share line alone, so that
         * "caback share-open ... > FILE" gives a file that restore --share reads */
        if (!common.quiet)
            g_printerr("Share %u of %u (any %u of them open the archive whose SHA-256 is %s)\n",
                       share->index, share->count, share->threshold, archive);
        if (output != NULL) {
            if (!common.quiet)
                g_printerr("Written to %s (mode 0600)\n", output);
        } else {
            /* write(2), not stdio: stdout's buffer would keep a copy nobody wipes */
            g_autoptr(CabackSecret) line = caback_share_to_line(share);
            fflush(stdout);
            for (gsize done = 0; done < line->len;) {
                ssize_t n = write(STDOUT_FILENO, line->data + done, line->len - done);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0) {
                    g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                                "cannot write the share to standard output: %s",
                                g_strerror(errno));
                    goto out;
                }
                done += (gsize)n;
            }
        }
    }
    ok = TRUE;
out:
    g_clear_pointer(&share, caback_share_free);
    if (db != NULL && !caback_db_close(g_steal_pointer(&db), ok ? error : NULL))
        ok = FALSE;
    caback_cli_log_finish(g_steal_pointer(&rec), ok, error, log_path);
    caback_cli_common_clear(&common);
    return ok;
}
