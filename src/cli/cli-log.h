/* The run log from the command's side: the --log option's help text, the options every verb
 * records (never a password: none is ever given to a record), and finishing a record without letting a
 * log failure change the verb's result. The record itself is caback/log.h. */
#pragma once

#include "cli.h"

#include <caback/log.h>

G_BEGIN_DECLS

/* The --log entry's help text and argument name, shared so that every verb says the same. */
#define CABACK_CLI_LOG_HELP                                                                        \
    "Append this run's record to FILE and FILE.jsonl (default: caback.log in the state folder)"
#define CABACK_CLI_LOG_ARG "FILE"
/* The --log entry of a verb's option table, filling @path (a char **). */
#define CABACK_CLI_LOG_ENTRY(path)                                                                 \
    {"log", 0, 0, G_OPTION_ARG_FILENAME, (path), CABACK_CLI_LOG_HELP, CABACK_CLI_LOG_ARG}

/* Before a run of @verb starts: the log @log_path (NULL: the default) is checked
 * (caback_log_check: a link, a FIFO or another user's file stops the run before it changes
 * anything) and the run's record made. NULL with @error set when the log is refused. */
CabackLogRecord *caback_cli_log_begin(const char *verb, const char *log_path, GError **error);

/* Record the flag @name in @record's command when @given. */
void caback_cli_log_flag(CabackLogRecord *record, const char *name, gboolean given);

/* Record "@name @value" in @record's command when @value is not NULL (a file or variable name,
 * never what it holds). */
void caback_cli_log_option(CabackLogRecord *record, const char *name, const char *value);

/* Record -w / --p12-password-env (the names only). */
void caback_cli_log_p12_password(CabackLogRecord *record, const CabackCliP12Password *p12);

/* Record @path, made absolute, as the file the run reads or writes. */
void caback_cli_log_file(CabackLogRecord *record, const char *path);

/* Record the shared database options of @common (-d, --token, --module, -f, --password-env) in
 * @record's command; file and variable names only, never what they hold. */
void caback_cli_log_common(CabackLogRecord *record, const CabackCommonOptions *common);

/* Record @db's folder and, when it is not the database's own, its token. */
void caback_cli_log_database(CabackLogRecord *record, const CabackDb *db);

/* Print a warning (as caback_cli_warning) and add it to @record (which may be NULL). */
void caback_cli_log_warning(CabackLogRecord *record, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* Finish @record (NULL allowed) with the verb's outcome: @ok, else *@error. The record is
 * appended to @log_path (NULL: the default log) and freed. A log that cannot be written is a
 * warning on stderr, never a failure of the verb, whose work is done. */
void caback_cli_log_finish(CabackLogRecord *record, gboolean ok, GError *const *error,
                           const char *log_path);

/* The SHA-256 (64 lower-case hex digits) that caback recorded for the backup file @path when it
 * wrote it: from the latest_backup pointer when it names @path, else from the last successful
 * backup record for @path in the JSON-lines twin of @log_path (NULL: the default log). NULL when
 * nothing was recorded. *@source (may be NULL) says where it was found; caller frees both. */
char *caback_cli_recorded_sha256(const char *path, const char *log_path, char **source);

/* After reading the PKCS#12 file @path failed with @error: a MAC that does not match looks the
 * same for a wrong password and a damaged file, so the SHA-256 caback backup recorded (in the log
 * @log_path, NULL for the default) tells them apart. A file whose digest differs is "damaged"
 * (CABACK_ERROR_PKCS12, exit 1, whatever @error said); an unchanged one means the password is
 * wrong; without a record the message says "wrong password, or the file is damaged". Other
 * errors are left as they are. @actual_sha256 is the digest of the bytes that were read (NULL:
 * @path is read again, only when it is a regular file). */
void caback_cli_explain_p12_failure(const char *path, const char *actual_sha256,
                                    const char *log_path, GError **error);

G_END_DECLS
