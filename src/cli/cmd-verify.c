/* caback verify FILE: the restore drill. The file is restored into a throwaway database and every
 * key and certificate checked there (caback_verify_run, src/lib/verify-run.c); with -d the live
 * database is read first (read-only, in its own NSS run) and compared with the file. This file
 * parses the options and prints the report. Exit 0 only when the backup is complete and
 * restorable. */
#include "config.h"

#include "cli.h"
#include "cli-log.h"
#include "cli-verify.h"

#include <caback/verify.h>

#include <string.h>

typedef struct {
    CabackCliP12Password p12; /* -w, --p12-password-env */
    char *log_path;
    char *max_age_text;    /* --max-age DAYS, as given */
    int max_age;           /* its value; -1 when not given */
    gboolean allow_expired; /* --allow-expired */
    char *recorded_sha256; /* "verify automatic": the SHA-256 caback backup recorded */
    char *signature_ca;
    gboolean no_signature_check;
    gboolean require_signature;
    gboolean allow_unauthenticated;
    CabackCliShares shares; /* --share, --shares-prompt */
} VerifyOptions;

/* ---- the verb ---- */

typedef struct {
    const VerifyOptions *o;
    const CabackCommonOptions *common;
    CabackLogRecord *rec;
} VerifyCli;

static void on_message(CabackRunLevel level, const char *text, gpointer data)
{
    const VerifyCli *cli = data;
    /* --json: standard output carries the JSON document only. */
    if (level != CABACK_RUN_INFO || !cli->common->json)
        caback_cli_show(level, text);
}

static CabackDb *on_open_db(gpointer data, GError **error)
{
    const VerifyCli *cli = data;
    return caback_cli_open_db(cli->common, TRUE, error);
}

static void on_read_failed(const char *path, GError **error, gpointer data)
{
    const VerifyCli *cli = data;
    caback_cli_explain_p12_failure(path, NULL, cli->o->log_path, error);
    if (cli->common->json) {
        g_autofree char *text = caback_verify_failure_json(path, *error);
        caback_cli_json_print(text);
    }
}

static void on_unauthenticated(const char *path, const GError *error, gpointer data)
{
    const VerifyCli *cli = data;
    if (cli->common->json) {
        g_autofree char *text = caback_verify_failure_json(path, error);
        g_print("%s", text);
    }
}

/* Why @report is not restorable: the error names the first few problems (and the run log's
 * record of it), since a file of 10,000 certificates whose chains all fail would otherwise make
 * one line of megabytes. */
static GError *not_restorable(const char *path, const CabackVerifyReport *report)
{
    enum { PROBLEMS_IN_ERROR = 3 };
    g_autoptr(GString) why = g_string_new(NULL);

    for (guint i = 0; i < report->problems->len && i < PROBLEMS_IN_ERROR; i++)
        g_string_append_printf(why, "%s%s", i > 0 ? "; " : "",
                               (const char *)report->problems->pdata[i]);
    if (report->problems->len > PROBLEMS_IN_ERROR)
        g_string_append_printf(why, "; and %u more (the output lists every one)",
                               report->problems->len - PROBLEMS_IN_ERROR);
    return g_error_new(CABACK_ERROR, CABACK_ERROR_FAILED, "%s is not restorable as it is: %s",
                       path, why->str);
}

typedef struct {
    const CabackVerifyReport *report;
    const CabackVerifyResult *result;
} ReportJson;

static void report_members(CabackJson *json, gconstpointer data)
{
    const ReportJson *args = data;

    caback_verify_report_json_members(json, args->report, args->result);
}

static gboolean run(const char *path, VerifyOptions *o, CabackCommonOptions *common,
                    CabackLogRecord *rec, GError **error)
{
    /* M-of-N custody: the password rebuilt from the custodians' shares, checked first. */
    g_autoptr(CabackSecret) password =
        caback_cli_shares_given(&o->shares)
            ? caback_cli_shares_password(common, path, &o->shares, rec, error)
            : caback_cli_p12_password_read(&o->p12, path, error);
    if (password == NULL)
        return FALSE;

    VerifyCli cli = {o, common, rec};
    CabackVerifyHooks hooks = {on_message, on_open_db, on_read_failed, on_unauthenticated, &cli};
    CabackVerifyRunOptions options = {.path = path,
                                      .password = password,
                                      .with_db = common->dbdir != NULL,
                                      .signature_ca = o->signature_ca,
                                      .no_signature_check = o->no_signature_check,
                                      .require_signature = o->require_signature,
                                      .allow_unauthenticated = o->allow_unauthenticated,
                                      .allow_expired = o->allow_expired,
                                      .recorded_sha256 = o->recorded_sha256,
                                      .max_age = o->max_age,
                                      .record = rec};
    g_auto(CabackVerifyResult) result = {0};
    if (!caback_verify_run(&options, &hooks, &result, error))
        return FALSE;
    CabackVerifyReport *report = result.report;

    g_autofree char *source = NULL;
    g_autofree char *recorded = caback_cli_recorded_sha256(path, o->log_path, &source);
    if (recorded != NULL && strcmp(recorded, report->sha256) != 0)
        g_ptr_array_add(report->notes,
                        g_strdup_printf("%s is not the file caback backup wrote under this name: "
                                        "its SHA-256 is %s, %s recorded %s",
                                        path, report->sha256, source, recorded));

    for (guint i = 0; i < report->notes->len; i++)
        caback_cli_log_warning(rec, "%s", (const char *)report->notes->pdata[i]);
    caback_cli_verify_warn_expiring(report, rec);
    g_autoptr(GError) failure = report->restorable ? NULL : not_restorable(path, report);
    if (common->json) {
        /* Streamed with its outcome: the report of a file of many certificates is large. */
        ReportJson args = {report, &result};
        caback_cli_json_stream_result("verify", failure, report_members, &args, FALSE);
    } else {
        if (caback_cli_verbosity > 0)
            caback_cli_verify_print_details(report);
        /* Each finding that makes the backup stale or not restorable, on its own line. */
        for (guint i = 0; i < report->problems->len; i++)
            caback_cli_info("problem: %s", (const char *)report->problems->pdata[i]);
        g_autofree char *line = caback_cli_verify_summary_line(report);
        caback_cli_info("%s", line);
    }
    if (failure == NULL)
        return TRUE;
    g_propagate_error(error, g_steal_pointer(&failure));
    return FALSE;
}

static void log_options(CabackLogRecord *rec, const char *path, const VerifyOptions *o,
                        const CabackCommonOptions *common)
{
    if (path != NULL) {
        caback_log_record_add_arg(rec, path);
        caback_cli_log_file(rec, path);
    }
    caback_cli_log_common(rec, common);
    caback_cli_log_p12_password(rec, &o->p12);
    caback_cli_log_option(rec, "--signature-ca", o->signature_ca);
    caback_cli_log_flag(rec, "--require-signature", o->require_signature);
    caback_cli_log_flag(rec, "--no-signature-check", o->no_signature_check);
    caback_cli_log_flag(rec, "--allow-unauthenticated", o->allow_unauthenticated);
    caback_cli_log_option(rec, "--log", o->log_path);
    caback_cli_log_flag(rec, "--allow-expired", o->allow_expired);
}

/* What caback help verify says above and below the options. */
static void set_help(GOptionContext *context)
{
    g_option_context_set_summary(
        context,
        "The restore drill: prove that a backup can be restored, without touching the live CA.\n"
        "FILE is decrypted and restored, as caback restore does it, into a throwaway NSS "
        "database in a private\n"
        "temporary folder (removed afterwards); there every key signs a test value that its "
        "certificate verifies,\n"
        "the chain of every certificate is checked with the file's CA certificates as the only "
        "trust, and\n"
        "certificates expired or expiring within 30 days are reported. With -d, the database "
        "is read (read-only)\n"
        "and compared: keys (also those without certificate, such as a pending re-key) and "
        "certificates it holds\n"
        "that FILE lacks, and trust flags that differ, make the backup stale. A key without "
        "certificate in FILE,\n"
        "a chain without its root (unless the database trusts it) and an expired CA "
        "certificate (unless\n"
        "--allow-expired) make it not restorable. Each finding is printed on its own line.");
    g_option_context_set_description(
        context, "Example:\n"
                 "  caback verify ca-backup.p12 -w ca-backup.pass -d /var/lib/pki/pki-tomcat/alias "
                 "-f /var/lib/pki/pki-tomcat/conf/password.conf\n"
                 "\"caback verify automatic\" drills the newest backup that caback backup "
                 "verified and recorded\n"
                 "(refused when its SHA-256 is no longer the recorded one); --max-age DAYS also "
                 "fails when that\n"
                 "backup is older than DAYS days (for a timer: caback-verify.timer).\n"
                 "Exit status: 0 complete and restorable, 1 not restorable (stale, damaged, a key "
                 "or chain fails), 2 usage,\n"
                 "3 wrong password (of FILE, or of the database).\n");
}

/* The options of caback verify: one table for the parser and the help. */
static GOptionContext *verify_context(VerifyOptions *o, CabackCommonOptions *common)
{
    const GOptionEntry entries[] = {
        CABACK_CLI_P12_PASSWORD_ENTRIES(
            &o->p12, "Password of the PKCS#12 file: the file's first line (default: asked)",
            "Read the password of the PKCS#12 file from environment variable VAR"),
        {"signature-ca", 0, 0, G_OPTION_ARG_FILENAME, &o->signature_ca,
         "Check FILE.sig against only the CA certificate(s) in CERTFILE (default: the trust of "
         "the -d database)",
         "CERTFILE"},
        {"require-signature", 0, 0, G_OPTION_ARG_NONE, &o->require_signature,
         "Fail unless FILE.sig is there, valid and trusted", NULL},
        {"no-signature-check", 0, 0, G_OPTION_ARG_NONE, &o->no_signature_check,
         "Do not check FILE.sig", NULL},
        {"allow-unauthenticated", 0, 0, G_OPTION_ARG_NONE, &o->allow_unauthenticated,
         "Verify a file without MAC or checked signature instead of refusing it", NULL},
        CABACK_CLI_LOG_ENTRY(&o->log_path),
        {"allow-expired", 0, 0, G_OPTION_ARG_NONE, &o->allow_expired,
         "An expired CA certificate is reported but does not make the backup unrestorable",
         NULL},
        {"max-age", 0, 0, G_OPTION_ARG_STRING, &o->max_age_text,
         "Fail (exit 1) when the newest recorded backup is older than DAYS days, or none is "
         "recorded",
         "DAYS"},
        {NULL}};
    GOptionContext *context = g_option_context_new("FILE | automatic");

    set_help(context);
    g_option_context_add_main_entries(context, entries, NULL);
    caback_cli_add_share_options(context, &o->shares);
    caback_cli_add_common(context, common,
                          CABACK_COMMON_DB | CABACK_COMMON_JSON | CABACK_COMMON_LIMITS |
                              CABACK_COMMON_PROGRESS |
                              CABACK_COMMON_LOCK);
    return context;
}

/* The usage errors among the options, once the file to verify is known. */
static gboolean check_options(const VerifyOptions *o, const CabackCommonOptions *common,
                              GError **error)
{
    if (o->p12.file != NULL && o->p12.env != NULL) {
        caback_cli_usage_error(error, "verify",
                               "choose either -w FILE or --p12-password-env VAR for the PKCS#12 "
                               "password, not both");
        return FALSE;
    }
    if (!caback_cli_shares_exclusive(&o->shares, "verify",
                                     caback_cli_p12_password_option(&o->p12),
                                     error))
        return FALSE;
    if (o->no_signature_check && (o->require_signature || o->signature_ca != NULL)) {
        caback_cli_usage_error(error, "verify",
                               "%s asks for the signature check that --no-signature-check skips; "
                               "give one or the other",
                               o->require_signature ? "--require-signature" : "--signature-ca");
        return FALSE;
    }
    if (common->dbdir == NULL && (common->token != NULL || common->module != NULL ||
                                 common->password_file != NULL || common->password_env != NULL)) {
        caback_cli_usage_error(error, "verify",
                               "--token, --module, -f and --password-env choose how to read the "
                               "database to compare with; give that database with -d DIR");
        return FALSE;
    }
    return TRUE;
}

gboolean caback_cmd_verify(int argc, char **argv, GError **error)
{
    VerifyOptions o = {.max_age = -1};
    CabackCommonOptions common = {0};
    CabackLogRecord *rec = NULL;
    gboolean ok = FALSE;
    /* Declared before the first "goto out": its cleanup runs at the end of the function. */
    g_autofree char *recorded_path = NULL;
    g_autoptr(GOptionContext) context = verify_context(&o, &common);

    /* A log that is a link, a FIFO or another user's file stops the run before it starts. */
    if (!caback_cli_parse(context, "verify", &common, &argc, &argv, error) ||
        (rec = caback_cli_log_begin("verify", o.log_path, error)) == NULL)
        goto out;
    log_options(rec, argc >= 2 ? argv[1] : NULL, &o, &common);
    caback_cli_log_shares(rec, &o.shares);
    if (argc != 2) {
        if (argc < 2)
            caback_cli_usage_error(error, "verify", "give the PKCS#12 file to verify");
        else
            caback_cli_usage_error(error, "verify",
                                   "unexpected argument \"%s\": give one PKCS#12 file", argv[2]);
        goto out;
    }
    if (o.max_age_text != NULL) {
        guint64 days = 0;
        if (!g_ascii_string_to_unsigned(o.max_age_text, 10, 0, 36500, &days, NULL)) {
            caback_cli_usage_error(error, "verify",
                                   "--max-age takes a whole number of days from 0 to 36500, not "
                                   "\"%s\"",
                                   o.max_age_text);
            goto out;
        }
        o.max_age = (int)days;
        caback_log_record_add_option(rec, "--max-age", o.max_age_text);
    }
    const char *path = argv[1];
    if (strcmp(path, "automatic") == 0) {
        gboolean recorded_signed = FALSE;
        if (!caback_state_get_latest_backup_full(&recorded_path, &o.recorded_sha256,
                                                 &recorded_signed, error))
            goto out;
        /* caback sign ran on it: its signature is required, as by restore automatic. */
        if (recorded_signed && !o.no_signature_check)
            o.require_signature = TRUE;
        path = recorded_path;
        caback_log_record_set_file(rec, path);
        if (!common.json)
            caback_cli_info("Newest recorded backup: %s (SHA-256 %s)", path, o.recorded_sha256);
    }
    if (!check_options(&o, &common, error))
        goto out;
    ok = run(path, &o, &common, rec, error);
out:
    caback_cli_log_finish(g_steal_pointer(&rec), ok, error, o.log_path);
    caback_cli_p12_password_clear(&o.p12);
    g_free(o.log_path);
    g_free(o.recorded_sha256);
    g_free(o.max_age_text);
    g_free(o.signature_ca);
    caback_cli_shares_clear(&o.shares);
    caback_cli_common_clear(&common);
    return ok;
}
