/* caback verify FILE: the restore drill. The file is restored into a throwaway database and every
 * key and certificate checked there (caback_verify_run, src/lib/verify-run.c); with -d the live
 * database is read first (read-only, in its own NSS run) and compared with the file. This file
 * parses the options and prints the report. Exit 0 only when the backup is complete and
 * restorable. */
#include "config.h"

#include "cli.h"
#include "cli-log.h"

#include <caback/digest.h>
#include <caback/json.h>
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

/* ---- output ---- */

static char *date_text(GDateTime *t)
{
    return t != NULL ? g_date_time_format(t, "%Y-%m-%dT%H:%M:%SZ") : NULL;
}

static const char *display_name(const char *nickname, const char *subject)
{
    return nickname != NULL ? nickname : subject;
}

static void json_items(CabackJson *json, const char *key, const GPtrArray *items)
{
    caback_json_begin_array(json, key);
    for (guint i = 0; i < items->len; i++) {
        const CabackVerifyItem *it = items->pdata[i];
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "type", it->kind);
        caback_json_string(json, "nickname", it->nickname);
        caback_json_string(json, "nss_id", it->nss_id);
        caback_json_string(json, "dogtag_id", it->dogtag_id);
        caback_json_string(json, "subject", it->subject);
        caback_json_string(json, "serial", it->serial_hex);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
}

static void json_keys(CabackJson *json, const GPtrArray *keys)
{
    caback_json_begin_array(json, "keys");
    for (guint i = 0; i < keys->len; i++) {
        const CabackVerifyKey *k = keys->pdata[i];
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "nickname", k->nickname);
        caback_json_string(json, "nss_id", k->nss_id);
        caback_json_string(json, "dogtag_id", k->dogtag_id);
        caback_json_string(json, "type", k->type);
        caback_json_int_or_null(json, "size", k->bits > 0, k->bits);
        caback_json_bool(json, "signature_ok", k->signs);
        caback_json_string(json, "problem", k->problem);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
}

static void json_certs(CabackJson *json, const GPtrArray *certs)
{
    caback_json_begin_array(json, "certificates");
    for (guint i = 0; i < certs->len; i++) {
        const CabackVerifyCert *c = certs->pdata[i];
        g_autofree char *nb = date_text(c->not_before);
        g_autofree char *na = date_text(c->not_after);
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "nickname", c->nickname);
        caback_json_string(json, "subject", c->subject);
        caback_json_string(json, "issuer", c->issuer);
        caback_json_string(json, "serial", c->serial_hex);
        caback_json_string(json, "trust", c->trust);
        caback_json_bool(json, "has_key", c->has_key);
        caback_json_string(json, "not_before", nb);
        caback_json_string(json, "not_after", na);
        caback_json_int_or_null(json, "days_left", c->not_after != NULL, c->days_left);
        caback_json_bool(json, "chain_ok", c->chain_ok);
        caback_json_string(json, "chain", c->chain);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
}

/* The certificates expired or expiring soon (@expired_only: the expired CA and key-holding
 * ones, "expired_certificates"). */
static void json_expiry(CabackJson *json, const char *key, const GPtrArray *certs,
                        gboolean expired_only)
{
    caback_json_begin_array(json, key);
    for (guint i = 0; i < certs->len; i++) {
        const CabackVerifyCert *c = certs->pdata[i];
        g_autofree char *na = date_text(c->not_after);
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "nickname", c->nickname);
        caback_json_string(json, "subject", c->subject);
        caback_json_string(json, "serial", c->serial_hex);
        caback_json_string(json, "not_after", na);
        if (expired_only) {
            caback_json_bool(json, "ca", c->is_ca);
        } else {
            caback_json_int(json, "days_left", c->days_left);
            caback_json_bool(json, "expired", c->days_left < 0);
        }
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
}

static void json_trust_differences(CabackJson *json, const GPtrArray *differences)
{
    caback_json_begin_array(json, "trust_differences");
    for (guint i = 0; i < differences->len; i++) {
        const CabackVerifyTrustDiff *d = differences->pdata[i];
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "nickname", d->nickname);
        caback_json_string(json, "subject", d->subject);
        caback_json_string(json, "serial", d->serial_hex);
        caback_json_string(json, "backup_trust", d->backup_trust);
        caback_json_string(json, "database_trust", d->database_trust);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
}

static void json_rootless(CabackJson *json, const GPtrArray *chains)
{
    caback_json_begin_array(json, "chains_without_root");
    for (guint i = 0; i < chains->len; i++) {
        const CabackVerifyRootless *x = chains->pdata[i];
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "top", x->top);
        caback_json_string(json, "missing_root", x->issuer);
        caback_json_strings(json, "certificates", x->certificates);
        caback_json_bool(json, "trusted_by_database", x->trusted_by_database);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
}

static char *report_json(const CabackVerifyReport *r, const CabackVerifyResult *vs)
{
    g_autoptr(CabackJson) json = caback_cli_json_object_new();

    caback_cli_json_path(json, "file", r->path);
    caback_json_string(json, "sha256", r->sha256);
    caback_json_string(json, "integrity", r->integrity);
    caback_json_string(json, "signature_status", vs->signature_word);
    caback_json_printf(json, "signature_line", vs->signature_status != NULL ? "signature: %s" : NULL,
                       vs->signature_status);
    json_keys(json, r->keys);
    json_certs(json, r->certs);
    caback_json_bool(json, "chain_ok", r->chain_ok);
    json_expiry(json, "expiring", r->expiring, FALSE);
    caback_json_string(json, "database", r->database);
    caback_json_string(json, "token", r->token);
    json_items(json, "missing_from_backup", r->missing_from_backup);
    json_items(json, "not_in_database", r->not_in_database);
    caback_json_bool(json, "stale", r->stale);
    json_trust_differences(json, r->trust_differences);
    json_items(json, "missing_keys", r->missing_keys);
    json_items(json, "keys_without_certificate", r->keys_without_certificate);
    json_rootless(json, r->chains_without_root);
    json_expiry(json, "expired_certificates", r->expired, TRUE);
    caback_json_strings(json, "notes", r->notes);
    caback_json_strings(json, "problems", r->problems);
    caback_json_bool(json, "restorable", r->restorable);
    caback_json_end_object(json);
    return g_strdup(caback_json_text(json));
}

/* For --json when the drill could not even start: the same object, with what is known. */
static char *failure_json(const char *path, const GError *error)
{
    g_autoptr(CabackJson) json = caback_json_new();
    /* Read again only a regular file: a FIFO written once would block here for ever. */
    g_autofree char *sha = g_file_test(path, G_FILE_TEST_IS_REGULAR)
                               ? caback_digest_file_sha256_hex(path, NULL)
                               : NULL;

    caback_json_begin_object(json, NULL);
    caback_cli_json_path(json, "file", path);
    caback_json_string(json, "sha256", sha);
    caback_json_bool(json, "restorable", FALSE);
    caback_json_string(json, "error", error != NULL ? error->message : NULL);
    caback_json_end_object(json);
    return g_strdup(caback_json_text(json));
}

static void print_details(const CabackVerifyReport *r)
{
    for (guint i = 0; i < r->keys->len; i++) {
        const CabackVerifyKey *k = r->keys->pdata[i];
        caback_cli_info("  key %s %s %u of \"%s\": %s", k->nss_id ? k->nss_id : "?", k->type,
                        k->bits, k->nickname ? k->nickname : "(no certificate)",
                        k->signs ? "signs, verified with its certificate"
                                 : (k->problem ? k->problem : "not checked"));
    }
    for (guint i = 0; i < r->certs->len; i++) {
        const CabackVerifyCert *c = r->certs->pdata[i];
        g_autofree char *na = date_text(c->not_after);
        caback_cli_info("  certificate \"%s\", serial 0x%s, trust %s, valid until %s: %s%s%s",
                        display_name(c->nickname, c->subject), c->serial_hex, c->trust,
                        na ? na : "?", c->chain_ok ? "chain verifies (" : "chain fails: ", c->chain,
                        c->chain_ok ? ")" : "");
    }
}

static char *summary_line(const CabackVerifyReport *r)
{
    GString *s = g_string_new(NULL);
    guint signing = 0;

    for (guint i = 0; i < r->keys->len; i++)
        signing += ((const CabackVerifyKey *)r->keys->pdata[i])->signs ? 1 : 0;
    g_string_append_printf(s,
                           "%s: %s: %u of %u key%s restored and signing for %s certificate%s, "
                           "%u certificate%s, chains %s",
                           r->path, r->restorable ? "restorable" : "NOT restorable", signing,
                           r->keys->len, r->keys->len == 1 ? "" : "s",
                           r->keys->len == 1 ? "its" : "their", r->keys->len == 1 ? "" : "s",
                           r->certs->len, r->certs->len == 1 ? "" : "s",
                           r->chain_ok ? "verified" : "NOT verified");
    if (r->compared)
        g_string_append_printf(s, ", %s against NSS database %s", r->stale ? "STALE" : "complete",
                               r->database);
    if (r->expiring->len > 0)
        g_string_append_printf(s, ", %u certificate%s expired or expiring", r->expiring->len,
                               r->expiring->len == 1 ? "" : "s");
    g_string_append_printf(s, " (SHA-256 %s)", r->sha256);
    return g_string_free(s, FALSE);
}

static void warn_expiring(const CabackVerifyReport *r, CabackLogRecord *rec)
{
    for (guint i = 0; i < r->expiring->len; i++) {
        const CabackVerifyCert *c = r->expiring->pdata[i];
        g_autofree char *na = date_text(c->not_after);
        if (c->days_left < 0)
            caback_cli_log_warning(rec, "certificate \"%s\" (serial 0x%s) expired on %s",
                                   display_name(c->nickname, c->subject), c->serial_hex, na);
        else
            caback_cli_log_warning(
                rec,
                "certificate \"%s\" (serial 0x%s) expires on %s, in %" G_GINT64_FORMAT " day%s",
                display_name(c->nickname, c->subject), c->serial_hex, na, c->days_left,
                c->days_left == 1 ? "" : "s");
    }
}

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
        g_autofree char *text = failure_json(path, *error);
        caback_cli_json_print(text);
    }
}

static void on_unauthenticated(const char *path, const GError *error, gpointer data)
{
    const VerifyCli *cli = data;
    if (cli->common->json) {
        g_autofree char *text = failure_json(path, error);
        g_print("%s", text);
    }
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
    warn_expiring(report, rec);
    if (common->json) {
        g_autofree char *text = report_json(report, &result);
        caback_cli_json_print(text);
    } else {
        if (caback_cli_verbosity > 0)
            print_details(report);
        /* Each finding that makes the backup stale or not restorable, on its own line. */
        for (guint i = 0; i < report->problems->len; i++)
            caback_cli_info("problem: %s", (const char *)report->problems->pdata[i]);
        g_autofree char *line = summary_line(report);
        caback_cli_info("%s", line);
    }

    if (report->restorable)
        return TRUE;
    g_autoptr(GString) why = g_string_new(NULL);
    for (guint i = 0; i < report->problems->len; i++)
        g_string_append_printf(why, "%s%s", i > 0 ? "; " : "",
                               (const char *)report->problems->pdata[i]);
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED, "%s is not restorable as it is: %s", path,
                why->str);
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
