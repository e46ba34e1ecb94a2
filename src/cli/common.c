/* Options, database opening and output helpers shared by every verb. */
#include "config.h"

#include "cli.h"

#include <caback/p12.h>
#include <caback/json.h>
#include <caback/secret.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int caback_cli_verbosity = 0;
gboolean caback_cli_json_mode = FALSE;
static char *json_body;        /* the verb's result object, as caback_json_text wrote it */
static GPtrArray *json_warnings; /* every warning printed, for the envelope */

G_DEFINE_QUARK(caback-cli-help-quark, caback_cli_help)

void caback_cli_add_common(GOptionContext *context, CabackCommonOptions *options,
                           CabackCommonFlags flags)
{
    const GOptionEntry db_entries[] = {
        {"dbdir", 'd', 0, G_OPTION_ARG_FILENAME, &options->dbdir,
         "NSS database folder, with or without sql: (default: $CABACK_DBDIR, else the only "
         "Dogtag instance's alias folder)",
         "DIR"},
        /* -h as in certutil and pk12util: a job written for them must not get the help text
         * and exit 0 having done nothing. */
        {"token", 'h', 0, G_OPTION_ARG_STRING, &options->token,
         "Token holding the keys: its name or a PKCS#11 URI pkcs11:token=NAME, as certutil -h "
         "takes it (default: the database's internal key token)",
         "NAME"},
        {"module", 0, 0, G_OPTION_ARG_FILENAME, &options->module,
         "Load this PKCS#11 module (an HSM's .so) for this run only; the database's pkcs11.txt "
         "is not changed",
         "PATH"},
        {"password-file", 'f', 0, G_OPTION_ARG_FILENAME, &options->password_file,
         "Database password or token PIN: the file's first line, or Dogtag password.conf lines "
         "internal=... / hardware-TOKEN=...",
         "FILE"},
        {"password-env", 0, 0, G_OPTION_ARG_STRING, &options->password_env,
         "Read the database password or token PIN from environment variable VAR", "VAR"},
        /* pk12util's names: -k FILE is -f; -K PASSWORD is refused (see caback_cli_parse). */
        {"pk12util-password-file", 'k', G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME,
         &options->password_file_k, "The same as -f (pk12util's -k)", "FILE"},
        {"pk12util-password", 'K', G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING,
         &options->password_value_k, "Refused: use -f FILE or --password-env VAR", "PASSWORD"},
        {NULL}};
    const GOptionEntry json_entries[] = {
        {"json", 0, 0, G_OPTION_ARG_NONE, &options->json, "Print the result as JSON", NULL},
        {NULL}};
    const GOptionEntry limit_entries[] = {
        {"max-input-size", 0, 0, G_OPTION_ARG_INT64, &options->max_input_size,
         "Read PKCS#12 files of up to BYTES bytes (default: 67108864, 64 MiB)", "BYTES"},
        {"max-kdf-work", 0, 0, G_OPTION_ARG_INT64, &options->max_kdf_work,
         "Allow up to N key-derivation iterations in all for one PKCS#12 file (default: "
         "100000000)",
         "N"},
        {NULL}};
    const GOptionEntry progress_entries[] = {
        {"progress", 0, 0, G_OPTION_ARG_NONE, &options->progress,
         "Show a progress line on standard error even when it is not a terminal", NULL},
        {"no-progress", 0, 0, G_OPTION_ARG_NONE, &options->no_progress,
         "Show no progress line (-q and --json show none either)", NULL},
        {NULL}};
    const GOptionEntry lock_entries[] = {
        {"wait", 0, 0, G_OPTION_ARG_INT, &options->wait,
         "Wait at most SECONDS for another caback run on the same database to finish (default "
         "60; 0: do not wait)",
         "SECONDS"},
        {NULL}};
    const GOptionEntry output_entries[] = {
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &options->verbose, "Print more detail", NULL},
        {"quiet", 'q', 0, G_OPTION_ARG_NONE, &options->quiet, "Print errors only", NULL},
        {NULL}};

    if (flags & CABACK_COMMON_DB)
        g_option_context_add_main_entries(context, db_entries, NULL);
    if (flags & CABACK_COMMON_JSON)
        g_option_context_add_main_entries(context, json_entries, NULL);
    if (flags & CABACK_COMMON_LIMITS)
        g_option_context_add_main_entries(context, limit_entries, NULL);
    if (flags & CABACK_COMMON_PROGRESS)
        g_option_context_add_main_entries(context, progress_entries, NULL);
    if (flags & CABACK_COMMON_LOCK) {
        options->lock = TRUE;
        options->wait = 60;
        g_option_context_add_main_entries(context, lock_entries, NULL);
    }
    g_option_context_add_main_entries(context, output_entries, NULL);
}

/* The exit statuses each verb can end with: the one table that "caback help VERB" prints and
 * caback(1)'s EXIT STATUS repeats (test-contract.sh checks that every status a verb gives in
 * its tests is listed here for it). */
static const struct {
    const char *verb;
    const char *lines[8];
} exit_table[] = {
    {"listkeys",
     {"0  the keys were listed", "1  failure (the database or token cannot be opened or read)",
      "2  usage error", "3  wrong database password or token PIN", NULL}},
    {"keyid",
     {"0  every ID was converted", "1  standard input cannot be read",
      "2  usage error, or an invalid ID (the valid ones are still printed)", NULL}},
    {"fix-clone-ids",
     {"0  every entry is right, or the stale ones were fixed",
      "1  a tag is MISSING (the others are still fixed), the file is not a CS.cfg, or another "
      "failure",
      "2  usage error", "3  wrong database password or token PIN",
      "4  CS.cfg changed while caback was checking it; nothing was written",
      "6  --dry-run: some entries would change (nothing was written)", NULL}},
    {"backup",
     {"0  the backup was written and verified",
      "1  failure (nothing was left under the file's name)", "2  usage error",
      "3  wrong database password or token PIN", "4  the output file exists (--force replaces it)",
      "5  a private key cannot leave its token (--certs-only backs up the rest)", NULL}},
    {"sign",
     {"0  the signature was written", "1  failure (the signer cannot sign, a file is missing)",
      "2  usage error", "3  wrong database password or token PIN",
      "4  the signature file exists (--force replaces it)", NULL}},
    {"verify-signature",
     {"0  the signature is valid and its signer trusted",
      "1  not valid: the file does not match, the signer is not trusted, or a file is missing",
      "2  usage error", "3  wrong database password or token PIN", NULL}},
    {"list",
     {"0  the file was shown", "1  failure (the file is damaged, unsupported or missing)",
      "2  usage error",
      "3  wrong PKCS#12 password (\"or the file is damaged\" when caback has no record to tell)",
      NULL}},
    {"restore",
     {"0  restored, or nothing to do (--dry-run: the plan has no conflict)",
      "1  failure: nothing changed (a bad or untrusted signature, a damaged file, a failed "
      "step undone)",
      "2  usage error", "3  wrong database password, token PIN or PKCS#12 password",
      "4  a conflict with the database (--dry-run too), or --create on a folder that holds "
      "other files; nothing changed",
      NULL}},
    {"reshare",
     {"0  reshared, pending (--verify), confirmed or dropped (--abort)",
      "1  failure: nothing changed (the archive cannot be read or restored, a certificate would "
      "be lost)",
      "2  usage error (a custodian certificate refused, M and N do not fit)",
      "3  too few, mistyped or foreign shares, or a new share that is not the pending one",
      "4  a reshare is pending already, share files exist, or the archive changed since the "
      "reshare began",
      NULL}},
    {"verify",
     {"0  complete and restorable",
      "1  not restorable (stale, damaged, a key that does not sign) or another failure",
      "2  usage error", "3  wrong PKCS#12 password or database password", NULL}},
    {"share-open",
     {"0  the share was printed or written", "1  failure (no key here opens the share, a file "
      "is missing)", "2  usage error",
      "3  wrong database password or token PIN, or the file is damaged or not a share",
      "4  the -o file exists (--force replaces it)", NULL}},
    {"check-stored-keys",
     {"0  the requests were answered", "1  failure", "2  usage error",
      "3  wrong database password or token PIN", NULL}},
};

char *caback_cli_exit_status_text(const char *verb)
{
    GString *s = g_string_new("Exit status (each code means the same in every verb; see caback(1)):\n");

    for (gsize i = 0; i < G_N_ELEMENTS(exit_table); i++) {
        if (strcmp(exit_table[i].verb, verb) != 0)
            continue;
        for (int j = 0; exit_table[i].lines[j] != NULL; j++)
            g_string_append_printf(s, "  %s\n", exit_table[i].lines[j]);
    }
    return g_string_free(s, FALSE);
}

/* pk12util's -K takes the password itself; caback refuses it, and wipes it from the command line
 * first so that ps stops showing it (GLib keeps only a copy, freed with the options). */
static void wipe_k_password(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        char *value = NULL;
        if (strcmp(argv[i], "-K") == 0 && i + 1 < argc)
            value = argv[i + 1];
        else if (strncmp(argv[i], "-K", 2) == 0 && argv[i][2] != '\0')
            value = argv[i] + 2;
        else if (strncmp(argv[i], "--pk12util-password=", 20) == 0)
            value = argv[i] + 20;
        else if (strcmp(argv[i], "--pk12util-password") == 0 && i + 1 < argc)
            value = argv[i + 1];
        if (value != NULL)
            caback_secret_wipe(value, strlen(value));
    }
}

gboolean caback_cli_parse(GOptionContext *context, const char *verb,
                          CabackCommonOptions *options, int *argc, char ***argv, GError **error)
{
    g_autoptr(GError) local = NULL;

    /* GLib's own help takes -h, which is the token in NSS's tools; caback answers --help itself
     * (and "caback help VERB"), and without exit(): the handler returns, main exits 0. */
    g_option_context_set_help_enabled(context, FALSE);
    for (int i = 1; i < *argc; i++) {
        if (strcmp((*argv)[i], "--") == 0)
            break;
        if (strcmp((*argv)[i], "--help") == 0) {
            g_autofree char *help = g_option_context_get_help(context, TRUE, NULL);
            g_autofree char *table = caback_cli_exit_status_text(verb);
            g_print("%s%s", help, table);
            g_set_error(error, CABACK_CLI_HELP, 0, "the help of caback %s was printed", verb);
            return FALSE;
        }
    }
    wipe_k_password(*argc, *argv);
    if (!g_option_context_parse(context, argc, argv, &local)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE, "%s (see: caback help %s)",
                    local->message, verb);
        return FALSE;
    }
    if (options != NULL && (options->max_input_size < 0 || options->max_kdf_work < 0))
        return caback_cli_usage_error(error, verb, "--%s must be a positive number",
                                      options->max_input_size < 0 ? "max-input-size"
                                                                  : "max-kdf-work");
    if (options != NULL && (options->max_input_size > 0 || options->max_kdf_work > 0)) {
        CabackP12Limits limits = {(guint64)options->max_input_size,
                                  (guint64)options->max_kdf_work};
        caback_p12_limits_set(&limits);
    }
    if (options != NULL && options->password_value_k != NULL) {
        caback_secret_wipe(options->password_value_k, strlen(options->password_value_k));
        return caback_cli_usage_error(
            error, verb,
            "-K gives the database password on the command line, where other users can see it "
            "(pk12util -K); caback does not take it there: give it with -f FILE (pk12util's -k "
            "FILE works too) or --password-env VAR");
    }
    if (options != NULL && options->password_file_k != NULL) {
        if (options->password_file != NULL)
            return caback_cli_usage_error(error, verb,
                                          "-k is pk12util's name for -f; give the database "
                                          "password file once");
        options->password_file = g_steal_pointer(&options->password_file_k);
    }
    if (options != NULL && options->password_file != NULL && options->password_env != NULL)
        return caback_cli_usage_error(error, verb,
                                      "give the database password or token PIN one way: -f FILE "
                                      "or --password-env VAR, not both");
    if (options != NULL && options->lock && options->wait < 0)
        return caback_cli_usage_error(error, verb, "--wait %d: give the seconds to wait, 0 or more",
                                      options->wait);
    if (options != NULL && options->verbose)
        caback_cli_verbosity = 1;
    if (options != NULL && options->quiet)
        caback_cli_verbosity = -1;
    if (options != NULL && options->progress && options->no_progress)
        return caback_cli_usage_error(error, verb, "choose --progress or --no-progress, not both");
    if (options != NULL)
        caback_cli_progress_setup(verb, options);
    return TRUE;
}

gboolean caback_cli_usage_error(GError **error, const char *verb, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    caback_error_usage_valist(error, verb, format, args);
    va_end(args);
    return FALSE;
}

gboolean caback_cli_no_arguments(const char *verb, int argc, char **argv, GError **error)
{
    if (argc <= 1)
        return TRUE;
    return caback_cli_usage_error(error, verb, "unexpected argument \"%s\"; %s takes only options",
                                  argv[1], verb);
}

void caback_cli_common_clear(CabackCommonOptions *options)
{
    g_clear_pointer(&options->dbdir, g_free);
    g_clear_pointer(&options->token, g_free);
    g_clear_pointer(&options->module, g_free);
    g_clear_pointer(&options->password_file, g_free);
    g_clear_pointer(&options->password_env, g_free);
    g_clear_pointer(&options->password_file_k, g_free);
    g_clear_pointer(&options->password_value_k, g_free);
}

const char *caback_cli_p12_password_option(const CabackCliP12Password *p12)
{
    return p12->file != NULL  ? "-w"
           : p12->env != NULL ? "--p12-password-env"
                              : NULL;
}

gboolean caback_cli_p12_password_check(const CabackCliP12Password *p12, GError **error)
{
    if (p12->file == NULL || p12->env == NULL)
        return TRUE;
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                "give the PKCS#12 password one way: -w FILE or --p12-password-env VAR, not both");
    return FALSE;
}

CabackSecret *caback_cli_p12_password_read(const CabackCliP12Password *p12, const char *path,
                                           GError **error)
{
    CabackPasswordSource source = {.file = p12->file, .env_var = p12->env};
    g_autofree char *what = g_strdup_printf("password of PKCS#12 file %s", path);

    return caback_p12_password_read(&source, what, FALSE, error);
}

void caback_cli_p12_password_clear(CabackCliP12Password *p12)
{
    g_clear_pointer(&p12->file, g_free);
    g_clear_pointer(&p12->env, g_free);
}

static void lock_notify(CabackDbLockEvent event, const char *message, gpointer data)
{
    (void)data;
    if (event == CABACK_DB_LOCK_WAITING) {
        caback_cli_progress_clear();
        g_printerr("caback: %s\n", message);
    }
    else
        caback_cli_warning("%s", message);
}

void caback_cli_db_lock_options(const CabackCommonOptions *options, gboolean read_only,
                                CabackDbOptions *db_options)
{
    db_options->lock = !options->lock ? CABACK_DB_LOCK_NONE
                       : read_only    ? CABACK_DB_LOCK_SHARED
                                      : CABACK_DB_LOCK_EXCLUSIVE;
    db_options->lock_wait = options->wait > 0 ? (guint)options->wait : 0;
    db_options->lock_notify = lock_notify;
    db_options->lock_notify_data = NULL;
}

void caback_cli_db_options(const CabackCommonOptions *options, gboolean read_only,
                           CabackDbOptions *db_options)
{
    *db_options = (CabackDbOptions){
        .dbdir = options->dbdir,
        .token = options->token,
        .module = options->module,
        .password = {.file = options->password_file, .env_var = options->password_env},
        .read_only = read_only,
    };
    caback_cli_db_lock_options(options, read_only, db_options);
}

CabackDb *caback_cli_open_db(const CabackCommonOptions *options, gboolean read_only, GError **error)
{
    CabackDbOptions db_options;

    caback_cli_db_options(options, read_only, &db_options);
    return caback_db_open_login(&db_options, caback_cli_show_message, NULL, error);
}

void caback_cli_show(CabackRunLevel level, const char *text)
{
    if (level == CABACK_RUN_INFO)
        caback_cli_info("%s", text);
    else if (level == CABACK_RUN_DETAIL)
        caback_cli_detail("%s", text);
    else if (level == CABACK_RUN_NOTE)
        caback_cli_note("%s", text);
    else
        caback_cli_warning("%s", text);
}

void caback_cli_show_message(CabackRunLevel level, const char *text, gpointer data)
{
    (void)data;
    caback_cli_show(level, text);
}

void caback_cli_info(const char *format, ...)
{
    va_list args;

    if (caback_cli_verbosity < 0)
        return;
    va_start(args, format);
    g_autofree char *text = g_strdup_vprintf(format, args);
    va_end(args);
    caback_cli_progress_clear();
    if (caback_cli_json_mode)
        g_printerr("%s\n", text);
    else
        g_print("%s\n", text);
}

void caback_cli_detail(const char *format, ...)
{
    va_list args;

    if (caback_cli_verbosity < 1)
        return;
    va_start(args, format);
    g_autofree char *text = g_strdup_vprintf(format, args);
    va_end(args);
    caback_cli_progress_clear();
    g_printerr("caback: %s\n", text);
}

void caback_cli_warning(const char *format, ...)
{
    va_list args;

    va_start(args, format);
    g_autofree char *text = g_strdup_vprintf(format, args);
    va_end(args);
    caback_cli_progress_clear();
    /* -q prints errors only; the warning still goes to --json's warnings and to the run log. */
    if (caback_cli_verbosity >= 0 || caback_cli_json_mode)
        g_printerr("caback: warning: %s\n", text);
    if (json_warnings == NULL)
        json_warnings = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(json_warnings, g_strdup(text));
}

void caback_cli_note(const char *format, ...)
{
    va_list args;

    if (caback_cli_verbosity < 0)
        return;
    va_start(args, format);
    g_autofree char *text = g_strdup_vprintf(format, args);
    va_end(args);
    g_printerr("caback: note: %s\n", text);
}

CabackJson *caback_cli_json_object_new(void)
{
    CabackJson *json = caback_json_new();

    caback_json_begin_object(json, NULL);
    return json;
}

void caback_cli_json_object_print(CabackJson *json)
{
    caback_json_end_object(json);
    caback_cli_json_print_take(caback_json_steal_text(json));
}

void caback_cli_json_path(CabackJson *json, const char *key, const char *path)
{
    g_autofree char *absolute = path != NULL ? g_canonicalize_filename(path, NULL) : NULL;

    caback_json_string(json, key, absolute);
}

/* TRUE when g_print would print @text as it is: the console's charset is UTF-8, or @text is
 * ASCII (g_print converts it for any other charset). */
static gboolean prints_as_is(const char *text)
{
    const char *charset;

    if (g_get_console_charset(&charset))
        return TRUE;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        if (*p >= 0x80)
            return FALSE;
    return TRUE;
}

/* g_print("%s", @text), without the copy of the whole text g_print makes first (the result of
 * a file of many certificates is large: issue 16 §3). */
static void print_text(const char *text)
{
    if (prints_as_is(text))
        fputs(text, stdout);
    else
        g_print("%s", text);
}

static void write_stdout(const char *text, gsize len, gpointer data)
{
    (void)data;
    fwrite(text, 1, len, stdout);
}

void caback_cli_json_print(const char *object_text)
{
    if (!caback_cli_json_mode) {
        print_text(object_text);
        return;
    }
    g_free(json_body);
    json_body = g_strdup(object_text);
}

void caback_cli_json_print_take(char *object_text)
{
    if (!caback_cli_json_mode) {
        print_text(object_text);
        g_free(object_text);
        return;
    }
    g_free(json_body);
    json_body = object_text;
}

/* A piece of a streamed envelope on standard output, converted for the console's charset as
 * g_print converts (a piece ends between two members, never inside a character). */
static void write_console(const char *text, gsize len, gpointer data)
{
    (void)data;
    if (prints_as_is(text))
        fwrite(text, 1, len, stdout);
    else
        g_print("%.*s", (int)len, text);
}

/* The envelope's first members, for the outcome @error: caback, verb, ok, exit, error. */
static CabackJson *envelope_new(const char *verb, const GError *error)
{
    CabackJson *json = caback_json_new();

    caback_json_begin_object(json, NULL);
    caback_json_int(json, "caback", 1);
    caback_json_string(json, "verb", verb);
    caback_json_bool(json, "ok", error == NULL);
    caback_json_int(json, "exit", caback_error_exit_code(error));
    if (error != NULL) {
        caback_json_begin_object(json, "error");
        caback_json_string(json, "code", caback_error_code_name(error));
        caback_json_string(json, "message", error->message);
        caback_json_end_object(json);
    } else {
        caback_json_null(json, "error");
    }
    return json;
}

/* The envelope's last member, "warnings" (unless the verb's result has its own), and its end. */
static void envelope_finish(CabackJson *json, gboolean own_warnings)
{
    if (own_warnings) {
        caback_json_begin_array(json, "warnings");
        for (guint i = 0; json_warnings != NULL && i < json_warnings->len; i++)
            caback_json_string(json, NULL, json_warnings->pdata[i]);
        caback_json_end_array(json);
    }
    caback_json_end_object(json);
    print_text(caback_json_text(json));
    g_clear_pointer(&json_warnings, g_ptr_array_unref);
}

/* The envelope caback_cli_json_stream_result began, when it did; closed by
 * caback_cli_json_finish. */
static CabackJson *json_streamed;
static gboolean json_streamed_has_warnings;

void caback_cli_json_stream_result(const char *verb, const GError *outcome,
                                   CabackCliJsonMembersFunc members, gconstpointer data,
                                   gboolean has_warnings)
{
    if (!caback_cli_json_mode) {
        g_autoptr(CabackJson) json = caback_json_new();
        caback_json_begin_object(json, NULL);
        members(json, data);
        caback_json_end_object(json);
        print_text(caback_json_text(json));
        return;
    }
    g_clear_pointer(&json_body, g_free);
    g_clear_pointer(&json_streamed, caback_json_free);
    json_streamed = envelope_new(verb, outcome);
    caback_json_stream(json_streamed, write_console, NULL);
    members(json_streamed, data);
    json_streamed_has_warnings = has_warnings;
}

void caback_cli_json_finish(const char *verb, const GError *error)
{
    /* Printed with its outcome already: what could change it after is NSS finding a reference
     * left behind (a bug), which standard error and the exit status report. */
    if (json_streamed != NULL) {
        g_autoptr(CabackJson) json = g_steal_pointer(&json_streamed);
        envelope_finish(json, !json_streamed_has_warnings);
        return;
    }
    /* The envelope's names win over a verb's member of the same name (verify and
     * verify-signature had a string "error": its text is error.message now). */
    static const char *const envelope[] = {"caback", "verb", "ok", "exit", "error", NULL};
    g_autoptr(CabackJson) json = envelope_new(verb, error);
    gboolean own_warnings =
        json_body == NULL || !caback_json_text_has_member(json_body, "warnings");

    /* The verb's members are printed as they are merged, not copied into the envelope first,
     * when they print as they are (otherwise g_print converts the whole text at the end). */
    if (json_body != NULL && prints_as_is(caback_json_text(json)) && prints_as_is(json_body))
        caback_json_stream(json, write_stdout, NULL);
    if (json_body != NULL)
        caback_json_merge_members(json, json_body, envelope);
    g_clear_pointer(&json_body, g_free); /* merged: one copy of a large result at a time */
    envelope_finish(json, own_warnings);
}

