/* The run log from the command's side (see cli-log.h). */
#include "config.h"

#include "cli-log.h"

#include <caback/digest.h>
#include <caback/json.h>
#include <caback/secret.h>

#include <pk11pub.h>
#include <stdio.h>
#include <string.h>

void caback_cli_log_common(CabackLogRecord *record, const CabackCommonOptions *common)
{
    caback_cli_log_option(record, "-d", common->dbdir);
    caback_cli_log_option(record, "--token", common->token);
    caback_cli_log_option(record, "--module", common->module);
    caback_cli_log_option(record, "-f", common->password_file);
    caback_cli_log_option(record, "--password-env", common->password_env);
}

CabackLogRecord *caback_cli_log_begin(const char *verb, const char *log_path, GError **error)
{
    if (!caback_log_check(log_path, error))
        return NULL;
    return caback_log_record_new(verb);
}

void caback_cli_log_flag(CabackLogRecord *record, const char *name, gboolean given)
{
    if (given)
        caback_log_record_add_arg(record, name);
}

void caback_cli_log_option(CabackLogRecord *record, const char *name, const char *value)
{
    if (value != NULL)
        caback_log_record_add_option(record, name, value);
}

void caback_cli_log_p12_password(CabackLogRecord *record, const CabackCliP12Password *p12)
{
    caback_cli_log_option(record, "-w", p12->file);
    caback_cli_log_option(record, "--p12-password-env", p12->env);
}

void caback_cli_log_file(CabackLogRecord *record, const char *path)
{
    g_autofree char *absolute = g_canonicalize_filename(path, NULL);

    caback_log_record_set_file(record, absolute);
}

void caback_cli_log_database(CabackLogRecord *record, const CabackDb *db)
{
    caback_log_record_set_database(
        record, db->dir,
        db->slot != NULL && PK11_IsInternalKeySlot(db->slot) ? NULL : db->token_name);
}

void caback_cli_log_warning(CabackLogRecord *record, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    g_autofree char *text = g_strdup_vprintf(format, args);
    va_end(args);
    caback_cli_warning("%s", text);
    if (record != NULL)
        caback_log_record_add_warning(record, "%s", text);
}

void caback_cli_log_finish(CabackLogRecord *record, gboolean ok, GError *const *error,
                           const char *log_path)
{
    g_autoptr(GError) log_error = NULL;
    g_autoptr(GError) unknown = NULL;
    const GError *outcome = NULL;

    if (record == NULL)
        return;
    if (!ok && error != NULL && *error != NULL)
        outcome = *error;
    else if (!ok)
        outcome = unknown =
            g_error_new_literal(CABACK_ERROR, CABACK_ERROR_FAILED, "failed for an unknown reason");
    if (!caback_log_record_finish(record, outcome, log_path, &log_error))
        caback_cli_warning("this run was not logged: %s", log_error->message);
}

/* The sha256 of the last successful "backup" record of the JSON-lines log @jsonl whose file is
 * @absolute. The records are caback's own (src/lib/log.c writes "file" then "sha256"), so a
 * plain search is enough; a line that does not look right is skipped. */
static char *sha_from_log(const char *jsonl, const char *absolute)
{
    g_autofree char *contents = NULL;

    /* Only a log of this user's or root's: another user's file could claim any digest. */
    if (!caback_state_read_file(jsonl, 1024 * 1024 * 1024, &contents, NULL, NULL))
        return NULL;
    g_autofree char *escaped = caback_json_escape(absolute);
    g_autofree char *needle = g_strdup_printf("\"file\":\"%s\",\"sha256\":\"", escaped);
    char *found = NULL;

    /* Each line cut in place (a log read whole is not copied again line by line). */
    for (char *line = contents, *next = NULL; line != NULL; line = next) {
        char *nl = strchr(line, '\n');
        next = nl != NULL ? nl + 1 : NULL;
        if (nl != NULL)
            *nl = '\0';
        if (strstr(line, "\"verb\":\"backup\"") == NULL ||
            strstr(line, "\"result\":\"ERROR\"") != NULL)
            continue;
        const char *at = strstr(line, needle);
        if (at == NULL)
            continue;
        at += strlen(needle);
        gsize n = 0;
        while (g_ascii_isxdigit(at[n]))
            n++;
        if (n != 64 || at[n] != '"')
            continue;
        g_free(found);
        found = g_ascii_strdown(at, 64);
    }
    return found;
}

char *caback_cli_recorded_sha256(const char *path, const char *log_path, char **source)
{
    g_autofree char *absolute = g_canonicalize_filename(path, NULL);
    g_autofree char *latest = NULL;
    g_autofree char *latest_sha = NULL;

    if (source != NULL)
        *source = NULL;
    if (caback_state_get_latest_backup(&latest, &latest_sha, NULL) &&
        strcmp(latest, absolute) == 0) {
        if (source != NULL)
            *source = g_strdup("the latest_backup pointer");
        return g_steal_pointer(&latest_sha);
    }

    g_autofree char *default_path = NULL;
    if (log_path == NULL && (default_path = caback_log_default_path(NULL)) == NULL)
        return NULL;
    g_autofree char *jsonl = caback_log_json_path(log_path != NULL ? log_path : default_path);
    char *sha = sha_from_log(jsonl, absolute);
    if (sha != NULL && source != NULL)
        *source = g_strdup_printf("the backup's record in %s", jsonl);
    return sha;
}

static void append_error(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);
static void append_error(GError **error, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    g_autofree char *more = g_strdup_vprintf(format, args);
    va_end(args);
    char *message = g_strconcat((*error)->message, more, NULL);
    g_free((*error)->message);
    (*error)->message = message;
}

void caback_cli_explain_p12_failure(const char *path, const char *actual_sha256,
                                    const char *log_path, GError **error)
{
    GError *e = error != NULL ? *error : NULL;

    if (e == NULL || e->domain != CABACK_ERROR ||
        (e->code != CABACK_ERROR_BAD_PASSWORD && e->code != CABACK_ERROR_PKCS12))
        return;
    g_autofree char *source = NULL;
    g_autofree char *recorded = caback_cli_recorded_sha256(path, log_path, &source);
    /* The digest of the bytes the verb read, when it has them: reading @path again could give
     * other bytes, or block for ever on a FIFO that was written once. Otherwise only a regular
     * file is read again. */
    g_autofree char *actual = NULL;
    if (actual_sha256 != NULL)
        actual = g_strdup(actual_sha256);
    else if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
        actual = caback_digest_file_sha256_hex(path, NULL);
    if (recorded != NULL && actual != NULL && strcmp(recorded, actual) != 0) {
        g_autofree char *message = g_strdup_printf(
            "%s is damaged or was changed after caback backup wrote it: its SHA-256 is now %s, "
            "but %s recorded %s (%s); restore from another copy or another backup",
            path, actual, source, recorded, e->message);
        g_clear_error(error);
        g_set_error_literal(error, CABACK_ERROR, CABACK_ERROR_PKCS12, message);
    } else if (e->code == CABACK_ERROR_BAD_PASSWORD && recorded != NULL && actual != NULL) {
        append_error(error,
                     "; the file is unchanged since caback backup wrote it (its SHA-256 "
                     "matches %s), so the password is wrong",
                     source);
    } else if (e->code == CABACK_ERROR_BAD_PASSWORD) {
        append_error(error, "; the password is wrong, or the file is damaged (caback has no "
                            "record of its SHA-256 to tell which)");
    }
}
