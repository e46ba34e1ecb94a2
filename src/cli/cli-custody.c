/* The custody options of the verbs (doc/custody.md): backup's --split, --custodian and
 * --custodian-dir (also reshare's), and --share / --shares-prompt of restore, verify, list and
 * reshare. The work is the library's (custody-flow.h); this is parsing, logging and printing. */
#include "config.h"

#include "cli.h"
#include "cli-log.h"

#include <caback/custody-flow.h>
#include <caback/custody.h>
#include <caback/digest.h>
#include <caback/log.h>
#include <caback/names.h>

#include <string.h>

/* ---- --split / --custodian / --custodian-dir ---- */

void caback_cli_add_custody_options(GOptionContext *context, CabackCliCustody *custody)
{
    const GOptionEntry entries[] = {
        {"split", 0, 0, G_OPTION_ARG_STRING, &custody->split,
         "M-of-N custody: make a random password, split it so that any M of the custodians "
         "open the file together, one share file each (FILE.share-I-of-N.p7m); see "
         "doc/custody.md",
         "M"},
        {"custodian", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &custody->files,
         "With --split: a custodian's certificate (PEM or DER; RSA with keyEncipherment or EC "
         "with keyAgreement); repeat for each, in share order",
         "FILE"},
        {"custodian-dir", 0, 0, G_OPTION_ARG_FILENAME, &custody->dir,
         "With --split: every certificate (*.pem, *.crt, *.cer, *.der) in DIR, by name", "DIR"},
        {NULL}};
    g_option_context_add_main_entries(context, entries, NULL);
}

gboolean caback_cli_custody_given(const CabackCliCustody *custody)
{
    return custody->split != NULL || custody->files != NULL || custody->dir != NULL;
}

gboolean caback_cli_custody_check(CabackCliCustody *custody, const char *verb,
                                  const char *password_option, gboolean no_verify,
                                  GError **error)
{
    if (custody->split == NULL) {
        if (custody->files != NULL || custody->dir != NULL)
            return caback_cli_usage_error(error, verb,
                                          "--custodian and --custodian-dir go with --split M");
        return TRUE;
    }
    gint64 m = 0;
    if (!g_ascii_string_to_signed(custody->split, 10, G_MININT32, G_MAXINT32, &m, NULL))
        return caback_cli_usage_error(error, verb,
                                      "--split \"%s\" is not a number; give how many custodians "
                                      "must come together to open the file, e.g. --split 3",
                                      custody->split);
    guint n = g_strv_length(custody->files != NULL ? custody->files : (char *[]){NULL});
    /* The folder's certificates are counted once read; what can be told now is said now. */
    if (custody->dir == NULL &&
        !caback_custody_check_split(verb, m, n, NULL, error))
        return FALSE;
    if (m < 1)
        return caback_custody_check_split(verb, m, 1, NULL, error);
    if (password_option != NULL)
        return caback_cli_usage_error(error, verb,
                                      "--split makes a random password that nobody knows; it "
                                      "cannot be combined with %s",
                                      password_option);
    if (no_verify)
        return caback_cli_usage_error(error, verb,
                                      "--split always verifies the file with the password rebuilt "
                                      "from the shares; drop --no-verify");
    custody->threshold = (guint)m;
    return TRUE;
}

gboolean caback_cli_custody_check_output(const CabackCliCustody *custody, const char *output,
                                         gboolean force, CabackLogRecord *rec, GError **error)
{
    if (custody->threshold == 0)
        return TRUE;
    g_autoptr(GPtrArray) existing = caback_share_files_existing(output);
    if (existing->len == 0)
        return TRUE;
    g_autofree char *first = caback_name_escape(existing->pdata[0], NULL);
    if (!force) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%s already exists (%u share file%s of an earlier backup to %s); nothing was "
                    "written (use --force to replace the backup and its shares)",
                    first, existing->len, existing->len == 1 ? "" : "s", output);
        return FALSE;
    }
    caback_cli_log_warning(rec,
                           "%u share file%s of an earlier backup to %s (%s%s) will not open the "
                           "new file; those the new shares do not replace stay: destroy them",
                           existing->len, existing->len == 1 ? "" : "s", output, first,
                           existing->len > 1 ? ", ..." : "");
    return TRUE;
}

void caback_cli_log_custody_options(CabackLogRecord *rec, const CabackCliCustody *custody)
{
    if (custody->split != NULL)
        caback_log_record_add_option(rec, "--split", custody->split);
    for (char **f = custody->files; f != NULL && *f != NULL; f++)
        caback_log_record_add_option(rec, "--custodian", *f);
    if (custody->dir != NULL)
        caback_log_record_add_option(rec, "--custodian-dir", custody->dir);
}

GPtrArray *caback_cli_custody_load(const CabackCliCustody *custody, const char *verb,
                                   gboolean force, CabackLogRecord *rec, GError **error)
{
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) custodians = caback_custodians_load(
        (const char *const *)custody->files, custody->dir, force, warnings, error);
    if (custodians == NULL ||
        !caback_custody_check_split(verb, custody->threshold, custodians->len, warnings, error))
        return NULL;
    for (guint i = 0; i < warnings->len; i++)
        caback_cli_log_warning(rec, "%s", (const char *)warnings->pdata[i]);
    g_autoptr(GPtrArray) fingerprints = g_ptr_array_new();
    for (guint i = 0; i < custodians->len; i++)
        g_ptr_array_add(fingerprints, ((CabackCustodian *)custodians->pdata[i])->fingerprint);
    g_ptr_array_add(fingerprints, NULL);
    caback_log_record_set_custody(rec, custody->threshold, custodians->len,
                                  (const char *const *)fingerprints->pdata);
    return g_steal_pointer(&custodians);
}

void caback_cli_custody_clear(CabackCliCustody *custody)
{
    g_free(custody->split);
    g_strfreev(custody->files);
    g_free(custody->dir);
    *custody = (CabackCliCustody){0};
}

void caback_cli_custody_text(GString *out, guint threshold, GPtrArray *custodians,
                             GPtrArray *files)
{
    g_string_append_printf(out,
                           "Custody: the password is random and known to nobody; any %u of these "
                           "%u custodians open the file together:\n",
                           threshold, custodians->len);
    for (guint i = 0; i < custodians->len; i++) {
        const CabackCustodian *c = custodians->pdata[i];
        g_autofree char *file =
            files != NULL && i < files->len ? caback_name_escape(files->pdata[i], NULL) : NULL;
        g_string_append_printf(out, "  share %u: %s\n      for %s (%s, SHA-256 %s)\n", i + 1,
                               file != NULL ? file : "(not written)", c->subject, c->key_type,
                               c->fingerprint);
    }
}

/* ---- --share / --shares-prompt ---- */

void caback_cli_add_share_options(GOptionContext *context, CabackCliShares *shares)
{
    const GOptionEntry entries[] = {
        {"share", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &shares->files,
         "A custodian's share of the archive password (M-of-N custody): a text share "
         "(caback share-open -o) or a .p7m share file that the keys in -d open; repeat for each",
         "FILE"},
        {"shares-prompt", 0, 0, G_OPTION_ARG_NONE, &shares->prompt,
         "Ask for the custodians' shares on the terminal, one at a time, without echo", NULL},
        {NULL}};
    g_option_context_add_main_entries(context, entries, NULL);
}

gboolean caback_cli_shares_given(const CabackCliShares *shares)
{
    return shares->prompt || (shares->files != NULL && shares->files[0] != NULL);
}

gboolean caback_cli_shares_exclusive(const CabackCliShares *shares, const char *verb,
                                     const char *other, GError **error)
{
    if (!caback_cli_shares_given(shares) || other == NULL)
        return TRUE;
    return caback_cli_usage_error(error, verb,
                                  "the archive's password comes from the custodians' shares "
                                  "(--share, --shares-prompt) or from %s, not both",
                                  other);
}

void caback_cli_log_shares(CabackLogRecord *rec, const CabackCliShares *shares)
{
    for (char **f = shares->files; f != NULL && *f != NULL; f++)
        caback_log_record_add_option(rec, "--share", *f);
    if (shares->prompt)
        caback_log_record_add_arg(rec, "--shares-prompt");
}

void caback_cli_shares_clear(CabackCliShares *shares)
{
    g_strfreev(shares->files);
    shares->files = NULL;
}

/* Between two shares typed at the prompt: on standard error, never in --json's warnings. */
static void shares_notify(const char *message, gpointer data)
{
    (void)data;
    caback_cli_progress_clear();
    g_printerr("caback: %s\n", message);
}

CabackSecret *caback_cli_shares_password(const CabackCommonOptions *common, const char *archive,
                                         const CabackCliShares *shares, CabackLogRecord *rec,
                                         GError **error)
{
    CabackDb *db = NULL;
    NSSInitContext *nss = NULL;
    if (caback_shares_need_db((const char *const *)shares->files)) {
        if ((db = caback_cli_open_db(common, TRUE, error)) == NULL)
            return NULL;
    } else if ((nss = caback_nss_nodb_open(error)) == NULL) {
        return NULL;
    }
    CabackSecret *password = NULL;
    g_autoptr(GBytes) sha256 = caback_digest_file(archive, SEC_OID_SHA256, error);
    if (sha256 != NULL) {
        CabackShareSources sources = {.files = (const char *const *)shares->files,
                                      .prompt = shares->prompt,
                                      .db = db,
                                      .notify = shares_notify};
        guint m = 0, n = 0;
        password = caback_shares_password(&sources, g_bytes_get_data(sha256, NULL), archive, &m,
                                          &n, error);
        if (password != NULL && rec != NULL)
            caback_log_record_set_custody(rec, m, n, NULL);
    }
    gboolean closed = db != NULL ? caback_db_close(db, password != NULL ? error : NULL)
                                 : caback_nss_nodb_close(nss, password != NULL ? error : NULL);
    if (!closed) {
        caback_secret_free(password);
        return NULL;
    }
    return password;
}
