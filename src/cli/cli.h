/* The caback command: one handler per verb (one file each, src/cli/cmd-<verb>.c), and the options
 * and output helpers every verb shares (src/cli/common.c). */
#pragma once

#include <glib.h>

#include <caback/db.h>
#include <caback/error.h>
#include <caback/json.h>
#include <caback/log.h>
#include <caback/progress.h>
#include <caback/secret.h>

G_BEGIN_DECLS

/* A verb's handler: @argv[0] is the verb's name. Returns FALSE and sets @error on failure; only
 * main() prints the error and chooses the exit status. */
typedef gboolean (*CabackCommandFunc)(int argc, char **argv, GError **error);

gboolean caback_cmd_keyid(int argc, char **argv, GError **error);
gboolean caback_cmd_listkeys(int argc, char **argv, GError **error);
gboolean caback_cmd_fix_clone_ids(int argc, char **argv, GError **error);
gboolean caback_cmd_backup(int argc, char **argv, GError **error);
gboolean caback_cmd_sign(int argc, char **argv, GError **error);
gboolean caback_cmd_verify_signature(int argc, char **argv, GError **error);
gboolean caback_cmd_list(int argc, char **argv, GError **error);
gboolean caback_cmd_restore(int argc, char **argv, GError **error);
gboolean caback_cmd_verify(int argc, char **argv, GError **error);
gboolean caback_cmd_reshare(int argc, char **argv, GError **error);
gboolean caback_cmd_check_stored_keys(int argc, char **argv, GError **error);
gboolean caback_cmd_share_open(int argc, char **argv, GError **error);

/* Options shared by the verbs (filled by GOptionContext). */
typedef struct {
    char *dbdir;
    char *token;
    char *module;
    char *password_file;
    char *password_env;
    char *password_file_k;  /* -k FILE, pk12util's name for -f */
    char *password_value_k; /* -K PASSWORD, pk12util's: refused (wiped from argv) */
    gboolean json;
    gboolean verbose;
    gboolean quiet;
    gint64 max_input_size; /* --max-input-size; 0 when not given */
    gint64 max_kdf_work;   /* --max-kdf-work; 0 when not given */
    gboolean progress;     /* --progress: show the progress line even off a terminal */
    gboolean no_progress;  /* --no-progress */
    gboolean lock;   /* CABACK_COMMON_LOCK: the database is locked while the verb uses it */
    gint wait;       /* --wait SECONDS for another run's lock (default 60) */
} CabackCommonOptions;

typedef enum {
    CABACK_COMMON_DB = 1 << 0,   /* -d, -h/--token, --module, -f/-k, --password-env; -K refused */
    CABACK_COMMON_JSON = 1 << 1, /* --json */
    CABACK_COMMON_LIMITS = 1 << 2, /* --max-input-size, --max-kdf-work (verbs reading PKCS#12) */
    CABACK_COMMON_PROGRESS = 1 << 3, /* --progress, --no-progress (verbs with long work) */
    CABACK_COMMON_LOCK = 1 << 4, /* --wait; caback_cli_open_db locks the database (shared when
                                  * read-only, else exclusive) */
} CabackCommonFlags;

/* Add the shared options selected by @flags (and always -v / -q) to @context as its main
 * entries; @options must outlive the parse. */
void caback_cli_add_common(GOptionContext *context, CabackCommonOptions *options,
                           CabackCommonFlags flags);

/* The error domain of "the verb printed its help (--help) and did nothing else": main exits 0. */
#define CABACK_CLI_HELP (caback_cli_help_quark())
GQuark caback_cli_help_quark(void);

/* Parse the verb's command line; --help prints the verb's help and fails with CABACK_CLI_HELP. an option error becomes CABACK_ERROR_USAGE naming the verb and
 * pointing to "caback help VERB". Applies -v / -q and the input limits (caback_p12_limits_set)
 * from @options (may be NULL). */
gboolean caback_cli_parse(GOptionContext *context, const char *verb,
                          CabackCommonOptions *options, int *argc, char ***argv, GError **error);

/* Set a CABACK_ERROR_USAGE error whose message ends with "(see: caback help @verb)"; returns
 * FALSE so that callers can write "return caback_cli_usage_error(...)". */
gboolean caback_cli_usage_error(GError **error, const char *verb, const char *format, ...)
    G_GNUC_PRINTF(3, 4);

/* For a verb that takes only options: after caback_cli_parse, a CABACK_ERROR_USAGE error naming
 * the first argument left in @argv, if there is one. */
gboolean caback_cli_no_arguments(const char *verb, int argc, char **argv, GError **error);

/* The exit statuses @verb can end with, one "  N  meaning" line each after a heading; the
 * table "caback help VERB" prints. Caller frees. */
char *caback_cli_exit_status_text(const char *verb);

/* Free the strings of @options. */
void caback_cli_common_clear(CabackCommonOptions *options);

/* -w FILE / --p12-password-env VAR: the password of the PKCS#12 file a verb reads or writes. */
typedef struct {
    char *file; /* -w, --p12-password-file: the file's first line */
    char *env;  /* --p12-password-env: the variable's name */
} CabackCliP12Password;

/* The two entries of a verb's option table for @p12 (a CabackCliP12Password *), with the verb's
 * help texts; CABACK_CLI_P12_PASSWORD_READ_ENTRIES gives those of the verbs that read the file. */
#define CABACK_CLI_P12_PASSWORD_ENTRIES(p12, file_help, env_help)                                 \
    {"p12-password-file", 'w', 0, G_OPTION_ARG_FILENAME, &(p12)->file, (file_help), "FILE"},      \
    {"p12-password-env", 0, 0, G_OPTION_ARG_STRING, &(p12)->env, (env_help), "VAR"}
#define CABACK_CLI_P12_PASSWORD_READ_ENTRIES(p12)                                                 \
    CABACK_CLI_P12_PASSWORD_ENTRIES(p12, "Read the PKCS#12 password from the first line of FILE", \
                                    "Read the PKCS#12 password from environment variable VAR")

/* The option that gives the password ("-w" or "--p12-password-env"), NULL when neither does:
 * for the usage errors that name it. */
const char *caback_cli_p12_password_option(const CabackCliP12Password *p12);
/* The usage error when both options are given ("give the PKCS#12 password one way"); TRUE when
 * at most one is. */
gboolean caback_cli_p12_password_check(const CabackCliP12Password *p12, GError **error);
/* The password of the PKCS#12 file @path, read once from -w or --p12-password-env (one of them
 * given); NULL with @error set when it cannot be read. */
CabackSecret *caback_cli_p12_password_read(const CabackCliP12Password *p12, const char *path,
                                           GError **error);
void caback_cli_p12_password_clear(CabackCliP12Password *p12);

/* The database options of @options for a library workflow: -d, --token, --module, -f /
 * --password-env, @read_only, and the lock (caback_cli_db_lock_options). */
void caback_cli_db_options(const CabackCommonOptions *options, gboolean read_only,
                           CabackDbOptions *db_options);

/* Open (and log in to) the database named by @options; with CABACK_COMMON_LOCK, locked first
 * (caback_cli_db_lock_options). Which database was opened is a -v detail, a rolled-back change a
 * warning. */
CabackDb *caback_cli_open_db(const CabackCommonOptions *options, gboolean read_only,
                             GError **error);

/* ---- M-of-N custody (src/cli/cli-custody.c, doc/custody.md) ---- */

/* --split M, --custodian FILE..., --custodian-dir DIR of backup and reshare. */
typedef struct {
    char *split;
    char **files;
    char *dir;
    guint threshold; /* M, once caback_cli_custody_check accepted --split */
} CabackCliCustody;

void caback_cli_add_custody_options(GOptionContext *context, CabackCliCustody *custody);
gboolean caback_cli_custody_given(const CabackCliCustody *custody);
/* Usage checks before anything is opened: --split is a number, M and the number of --custodian
 * files fit (caback_custody_check_split; the folder's are counted once read), no other password
 * source (@password_option names the one given, or NULL) and not @no_verify. Sets
 * @custody->threshold. */
gboolean caback_cli_custody_check(CabackCliCustody *custody, const char *verb,
                                  const char *password_option, gboolean no_verify,
                                  GError **error);
/* With --split: share files of an earlier backup to @output are a conflict (CABACK_ERROR_CONFLICT)
 * unless @force, then a warning. */
gboolean caback_cli_custody_check_output(const CabackCliCustody *custody, const char *output,
                                         gboolean force, CabackLogRecord *rec, GError **error);
void caback_cli_log_custody_options(CabackLogRecord *rec, const CabackCliCustody *custody);
/* The custodians (caback_custodians_load; NSS must be open), their warnings printed and logged,
 * M, N and their fingerprints recorded in @rec. */
GPtrArray *caback_cli_custody_load(const CabackCliCustody *custody, const char *verb,
                                   gboolean force, CabackLogRecord *rec, GError **error);
void caback_cli_custody_clear(CabackCliCustody *custody);
/* The summary's custody lines (which share file is for whom); the JSON member is the library's
 * caback_custody_json. */
void caback_cli_custody_text(GString *out, guint threshold, GPtrArray *custodians,
                             GPtrArray *files);

/* --share FILE... and --shares-prompt (M-of-N custody, doc/custody.md) of restore, verify, list
 * and reshare. */
typedef struct {
    char **files;     /* --share FILE, repeatable */
    gboolean prompt;  /* --shares-prompt */
} CabackCliShares;

/* Add --share and --shares-prompt to @context's main entries; @shares must outlive the parse. */
void caback_cli_add_share_options(GOptionContext *context, CabackCliShares *shares);
/* TRUE when --share or --shares-prompt was given. */
gboolean caback_cli_shares_given(const CabackCliShares *shares);
/* The usage error of @verb when shares and another source of the PKCS#12 password (@other, e.g.
 * "-w"; NULL when none) are both given; TRUE when they are not. */
gboolean caback_cli_shares_exclusive(const CabackCliShares *shares, const char *verb,
                                     const char *other, GError **error);
/* Record the share options in @rec's command (file names only). */
void caback_cli_log_shares(CabackLogRecord *rec, const CabackCliShares *shares);
/* The password of the archive @archive rebuilt from @shares (caback_shares_password): in an NSS
 * context of its own that ends before this returns, with the database of @common opened
 * read-only when a .p7m share needs its keys (else none). @rec (may be NULL) records M and N. */
CabackSecret *caback_cli_shares_password(const CabackCommonOptions *common, const char *archive,
                                         const CabackCliShares *shares,
                                         CabackLogRecord *rec, GError **error);
void caback_cli_shares_clear(CabackCliShares *shares);

/* The progress line (src/cli/cli-progress.c): caback_cli_parse sets it up for the verb from
 * --progress / --no-progress / -q / --json and whether standard error is a terminal; clear it
 * before writing anything else to standard error (the output helpers below and main do). */
void caback_cli_progress_setup(const char *verb, const CabackCommonOptions *options);
void caback_cli_progress_clear(void);
/* Fill the lock fields of @db_options from @options: none without CABACK_COMMON_LOCK, else
 * shared when @read_only and exclusive otherwise, waiting --wait seconds and saying so. */
void caback_cli_db_lock_options(const CabackCommonOptions *options, gboolean read_only,
                                CabackDbOptions *db_options);

/* --json: main sets caback_cli_json_mode when the command line asks for it; standard output then
 * carries one JSON object only (info lines go to standard error). A verb hands its result object
 * (as caback_json_text writes it) to caback_cli_json_print; main prints the envelope
 * {"caback": 1, "verb", "ok", "exit", "error": {"code", "message"}|null, "warnings": [...]} with
 * the verb's members in it, on success and failure alike. */
extern gboolean caback_cli_json_mode;
void caback_cli_json_print(const char *object_text);
/* caback_cli_json_print taking @object_text (caller's, g_malloc'd) over without copying it:
 * the result of a file of many certificates is large (issue 16 §3). */
void caback_cli_json_print_take(char *object_text);
void caback_cli_json_finish(const char *verb, const GError *error);
/* --json, for a verb whose outcome is known (@outcome: NULL for a success, else the error it
 * fails with) and whose result is too large to keep whole (the JSON of a file of many
 * certificates is about twice its size: issue 16 §3): the envelope is printed now, and @members
 * writes the verb's members straight into it as they are made; caback_cli_json_finish then adds
 * "warnings" (unless @has_warnings: the members have their own) and closes it. Without --json
 * the members are printed as one object. */
typedef void (*CabackCliJsonMembersFunc)(CabackJson *json, gconstpointer data);
void caback_cli_json_stream_result(const char *verb, const GError *outcome,
                                   CabackCliJsonMembersFunc members, gconstpointer data,
                                   gboolean has_warnings);
/* A verb's result object: caback_cli_json_object_new opens it, caback_cli_json_object_print
 * closes it and hands it to caback_cli_json_print (the caller still frees @json). */
CabackJson *caback_cli_json_object_new(void);
void caback_cli_json_object_print(CabackJson *json);
/* The member @key holding @path made absolute (g_canonicalize_filename); null for NULL. */
void caback_cli_json_path(CabackJson *json, const char *key, const char *path);

/* Output: info is suppressed by -q, detail needs -v; warnings go to stderr always. */
extern int caback_cli_verbosity; /* -1 quiet, 0 normal, 1 verbose */
void caback_cli_info(const char *format, ...) G_GNUC_PRINTF(1, 2);
void caback_cli_detail(const char *format, ...) G_GNUC_PRINTF(1, 2);
void caback_cli_warning(const char *format, ...) G_GNUC_PRINTF(1, 2);
/* A notice on standard error ("caback: note: ..."; nothing is wrong), silenced by -q. */
void caback_cli_note(const char *format, ...) G_GNUC_PRINTF(1, 2);
/* Show a line a library workflow handed over (its hooks' message): info, detail or warning as
 * above. */
void caback_cli_show(CabackRunLevel level, const char *text);
/* caback_cli_show as a library workflow's message hook (@data unused). */
void caback_cli_show_message(CabackRunLevel level, const char *text, gpointer data);

G_END_DECLS
