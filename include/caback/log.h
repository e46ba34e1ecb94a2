/* The run log and the state folder.
 *
 * Every backup, restore, fix-clone-ids and verify appends one record to a human-readable log and
 * to its JSON-lines twin (one JSON object per line): time (UTC), user, host, the command (built
 * from the options the verb describes, never from raw argv), database, file and its SHA-256,
 * each key (nickname, NSS and Dogtag IDs), the result (OK, WARNING or ERROR), warnings and the
 * error. Both files are mode 0600 whatever the umask, and each record is written with a single
 * write() in append mode so that concurrent runs do not interleave.
 *
 * The state folder also holds the latest_backup pointer read by "caback restore automatic". */
#pragma once

#include <glib.h>

#include <caback/keyid.h>

G_BEGIN_DECLS

/* The state folder chosen by the rules, without touching the file system: @state_env
 * ($CABACK_STATE_DIR) when set and not empty; else /var/lib/caback when @is_root; else
 * @xdg_state_home/caback when $XDG_STATE_HOME is an absolute path; else
 * @home/.local/state/caback. NULL when no rule applies (no home folder). Caller frees. */
char *caback_state_dir_for(const char *state_env, gboolean is_root, const char *xdg_state_home,
                           const char *home);

/* The state folder for this process (from its environment and effective user), created with
 * mode 0700 (and missing parents) when it does not exist; an existing folder's mode is left as
 * the administrator set it. The folder must be a real folder (not a link), owned by this user or
 * root, and not writable by group or others; else, or when it cannot be made, fails with
 * CABACK_ERROR_IO naming the folder. Caller frees. */
char *caback_state_dir(GError **error);

/* The log used when --log is not given: "caback.log" in the state folder (created). */
char *caback_log_default_path(GError **error);

/* The JSON-lines twin of the log @log_path: "@log_path.jsonl". Caller frees. */
char *caback_log_json_path(const char *log_path);

typedef struct CabackLogRecord CabackLogRecord;

/* A new record for a run of @verb ("backup", "restore", "fix-clone-ids", "verify"); its command
 * starts as "caback VERB". Free it with caback_log_record_finish (or _free to drop it). */
CabackLogRecord *caback_log_record_new(const char *verb);

/* Drop @record without writing it (NULL allowed). */
void caback_log_record_free(CabackLogRecord *record);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackLogRecord, caback_log_record_free)

/* Append one word to the recorded command (quoted for the shell when needed). The verb passes
 * only what is safe to keep: option names, file names, nicknames, variable names; never a
 * password or PIN.
 *
 * Passwords and PINs never reach a record at all: no field is searched for them and nothing is
 * replaced, so every string is logged as it is (a path that happens to contain a short password
 * stays readable, and the log does not reveal the password by hiding it). A verb must keep
 * passwords out of everything it records, error messages included. */
void caback_log_record_add_arg(CabackLogRecord *record, const char *arg);

/* Append @option and, when not NULL, its @value (two words), e.g. ("-d", "/x"). */
void caback_log_record_add_option(CabackLogRecord *record, const char *option, const char *value);

/* The NSS database folder (without "sql:") and the token (NULL for the internal one). */
void caback_log_record_set_database(CabackLogRecord *record, const char *dir, const char *token);

/* The file the run wrote or read (the PKCS#12 archive, the CS.cfg). Its SHA-256 is computed when
 * the record is finished, so it describes the file as the run left it. */
void caback_log_record_set_file(CabackLogRecord *record, const char *path);

/* Record @sha256 (hex) as the file's digest instead of computing it at the end. */
void caback_log_record_set_file_sha256(CabackLogRecord *record, const char *sha256);

/* The run's signature status ("checked (signer ...)", "none", "skipped
 * (--no-signature-check)") and the archive's integrity mode ("password-mac", "pbmac1", "none"),
 * written as "signature:" / "integrity:" lines and JSON members. */
void caback_log_record_set_signature(CabackLogRecord *record, const char *status);
void caback_log_record_set_integrity(CabackLogRecord *record, const char *integrity);

/* The archive is under M-of-N custody (doc/custody.md): @threshold shares of @count
 * open it; @custodians (NULL-terminated, may be NULL) are the custodians' certificate SHA-256
 * fingerprints in share order, for a run that made the shares. Written as a "custody:" line and
 * one "custodian:" line each, and as the JSON member "custody". Never a share or password. */
void caback_log_record_set_custody(CabackLogRecord *record, guint threshold, guint count,
                                   const char *const *custodians);

/* A record lists at most this many keys; the rest are counted. One line per key for a file of
 * 100,000 keys made a 12 MB record, built twice at the end of the run and read again by every
 * later restore (issue 16 §3). */
#define CABACK_LOG_MAX_KEYS 1000

/* One key the run handled: its certificate's nickname (NULL when it has none) and its key ID
 * (NULL when unknown), written in the certutil -K form and the Dogtag CS.cfg form of the ID as
 * its token holds it (caback_keyid_to_token_hex, _to_token_dogtag). The first
 * CABACK_LOG_MAX_KEYS keys are written; the record counts all of them (a "keys:" line and the
 * JSON member "keys_total"). */
void caback_log_record_add_key(CabackLogRecord *record, const char *nickname,
                               const CabackKeyId *id);

/* A warning the run printed; the result becomes WARNING unless the run fails. */
void caback_log_record_add_warning(CabackLogRecord *record, const char *format, ...)
    G_GNUC_PRINTF(2, 3);

/* Use @time (UTC) as the record's time instead of the moment it is finished (for tests). */
void caback_log_record_set_time(CabackLogRecord *record, GDateTime *time);

/* The record as a block of text lines (ending with an empty line), and as one JSON object on one
 * line (ending with "\n"), for the outcome @outcome (NULL when the run succeeded). The file's
 * digest must already be known (set, or computed by _finish). */
char *caback_log_record_format_text(CabackLogRecord *record, const GError *outcome);
char *caback_log_record_format_json(CabackLogRecord *record, const GError *outcome);

/* Finish the run's record: compute the file's SHA-256, then append the record to @log_path (the
 * --log value; NULL for the default in the state folder) and its ".jsonl" twin. @outcome is the
 * verb's error, NULL on success. @record is freed in every case. Returns FALSE when a log cannot
 * be written (CABACK_ERROR_IO, naming the file); the verb should then warn rather than change
 * its own result, since its work is done. */
gboolean caback_log_record_finish(CabackLogRecord *record, const GError *outcome,
                                  const char *log_path, GError **error);

/* Append @len bytes of @text to @path with one write(), creating the file with mode 0600 (an
 * existing file keeps its mode). The file is opened with O_NOFOLLOW | O_APPEND | O_CLOEXEC |
 * O_NONBLOCK and must be a regular file owned by this user or root: a link, a FIFO, a device or
 * another user's file is refused at once (CABACK_ERROR_IO, naming it), never waited on. */
gboolean caback_log_append(const char *path, const char *text, gsize len, GError **error);

/* Before a run starts: FALSE (CABACK_ERROR_IO, naming the file) when the log @log_path (NULL:
 * the default log, whose state folder is then checked too) or its ".jsonl" twin exists and is
 * not something caback may write (see caback_log_append), so that a hostile log stops the run
 * before it changes anything. A log that does not exist yet passes. */
gboolean caback_log_check(const char *log_path, GError **error);

/* Read the whole of @path, a file caback wrote (latest_backup, the JSON-lines log), into
 * *@contents (NUL-terminated, caller frees) and *@length (may be NULL). The file is opened with
 * O_NOFOLLOW and must be a regular file owned by this user or root of at most @max bytes; a
 * missing file is CABACK_ERROR_NOT_FOUND, anything else CABACK_ERROR_IO naming the file. */
gboolean caback_state_read_file(const char *path, gsize max, char **contents, gsize *length,
                                GError **error);

/* Point latest_backup in the state folder at @path (made absolute) with its @sha256 (64 hex
 * digits), replacing the previous pointer atomically. */
gboolean caback_state_set_latest_backup(const char *path, const char *sha256, GError **error);

/* Read latest_backup: the archive's absolute @path and its recorded @sha256 (caller frees both),
 * only from a state folder that passes caback_state_dir's checks and only when the pointer is a
 * regular file owned by this user or root (caback_state_read_file).
 * Fails with CABACK_ERROR_NOT_FOUND when no backup was recorded yet, CABACK_ERROR_FAILED when
 * the pointer is damaged. */
gboolean caback_state_get_latest_backup(char **path, char **sha256, GError **error);

/* When the newest backup was recorded: latest_backup's @path (caller frees) and its recorded=
 * time (UTC; caller unrefs). The same checks and errors as caback_state_get_latest_backup, and
 * CABACK_ERROR_FAILED naming the file when it has no valid time (written by an older caback). */
gboolean caback_state_get_latest_backup_time(char **path, GDateTime **recorded, GError **error);
/* The same, with the "signed=yes" mark: caback sign ran on the recorded backup (the
 * same path and SHA-256), so that restore automatic requires its signature. @is_signed may be
 * NULL. */
gboolean caback_state_set_latest_backup_signed(const char *path, const char *sha256,
                                               gboolean is_signed, GError **error);
gboolean caback_state_get_latest_backup_full(char **path, char **sha256, gboolean *is_signed,
                                             GError **error);
gboolean caback_state_parse_latest_backup_full(const char *contents, const char *where,
                                               char **path, char **sha256, gboolean *is_signed,
                                               GError **error);

/* Parse the contents of a latest_backup file (@where names it in errors). */
gboolean caback_state_parse_latest_backup(const char *contents, const char *where, char **path,
                                          char **sha256, GError **error);

G_END_DECLS
