/* caback backup (Windows form: caback -backup PASSWORD FILE): every certificate of the token that
 * has its private key there, with the key and the issuer chain, into one PKCS#12 file that is
 * written to a 0600 temporary file, read back and checked, and only then renamed into place. */
#include "config.h"

#include "cli.h"
#include "cli-backup.h"
#include "cli-log.h"
#include "cli-windows.h"

#include <caback/backup.h>

#include <string.h>

typedef struct {
    char *output;
    char **nicknames;
    char *cscfg;
    gboolean include_sslserver;
    CabackCliP12Password p12; /* -w, --p12-password-env */
    char *iterations;
    gboolean legacy;
    char *mac;
    gboolean force;
    gboolean no_verify;
    gboolean certs_only;
    gboolean allow_shared_folder;
    char *log_path;
    CabackCliCustody custody; /* --split, --custodian, --custodian-dir */
} BackupOptions;

static void backup_options_clear(BackupOptions *o)
{
    g_free(o->output);
    g_strfreev(o->nicknames);
    g_free(o->cscfg);
    caback_cli_p12_password_clear(&o->p12);
    g_free(o->iterations);
    g_free(o->mac);
    g_free(o->log_path);
    caback_cli_custody_clear(&o->custody);
}

typedef struct {
    BackupOptions *o;
    CabackCommonOptions *common;
    CabackP12WriteOptions write;
    CabackSecret *password; /* the PKCS#12 password, when already known */
    char **nicknames;
    CabackLogRecord *rec; /* this run's log record */
    CabackDb *db;         /* while the backup runs */
    GPtrArray *custodians; /* --split: CabackCustodian, while the database is open */
} BackupRun;

/* ---- the work, once the options are known ---- */

static gboolean run_backup(BackupRun *run, GError **error)
{
    BackupOptions *o = run->o;
    CabackBackupResult result = {0};
    g_autofree char *summary = NULL;

    CabackDbOptions db_options;
    caback_cli_db_options(run->common, TRUE, &db_options);
    db_options.key_reader = TRUE; /* keys read out of key4.db on two processors */
    run->db = caback_db_open_login(&db_options, caback_cli_show_message, NULL, error);
    if (run->db == NULL)
        return FALSE;
    caback_cli_log_database(run->rec, run->db);
    /* The custodians' certificates are checked before anything else is done. */
    if (o->custody.threshold > 0 &&
        (run->custodians = caback_cli_custody_load(&o->custody, "backup", o->force, run->rec,
                                                   error)) == NULL) {
        caback_db_close(g_steal_pointer(&run->db), NULL);
        return FALSE;
    }

    CabackBackupRunOptions options = {.db = run->db,
                                      .output = o->output,
                                      .nicknames = (const char *const *)run->nicknames,
                                      .certs_only = o->certs_only,
                                      .write = run->write,
                                      .password = run->password,
                                      .force = o->force,
                                      .no_verify = o->no_verify,
                                      .allow_shared_folder = o->allow_shared_folder,
                                      .custody_threshold = o->custody.threshold,
                                      .custodians = run->custodians};
    CabackCliBackupView view = {run->db, o->output, run->common->json, run->rec};
    CabackBackupHooks hooks = caback_cli_backup_hooks(&view);
    gboolean ok = caback_backup_run(&options, &hooks, &result, error);
    if (ok) {
        if (result.sha256 != NULL)
            caback_log_record_set_file_sha256(run->rec, result.sha256);
        summary = run->common->json ? caback_backup_run_json(&options, &result)
                                    : caback_cli_backup_summary_text(&options, &result);
    }
    /* The selection holds NSS references: release them before NSS shuts down. */
    caback_backup_result_clear(&result);
    g_clear_pointer(&run->custodians, g_ptr_array_unref);
    if (!caback_db_close(g_steal_pointer(&run->db), ok ? error : NULL))
        ok = FALSE;
    if (ok && run->common->json)
        caback_cli_json_print(summary);
    else if (ok)
        caback_cli_info("%s", g_strchomp(summary));
    return ok;
}

/* The run's command for the log, rebuilt from the options: names of files and variables only,
 * never the password (the Windows form's password argument is left out). */
static void log_options(CabackLogRecord *rec, const BackupOptions *o,
                        const CabackCommonOptions *common)
{
    caback_cli_log_common(rec, common);
    if (o->output != NULL) {
        caback_log_record_add_option(rec, "-o", o->output);
        caback_cli_log_file(rec, o->output);
    }
    for (char **n = o->nicknames; n != NULL && *n != NULL; n++)
        caback_log_record_add_option(rec, "-n", *n);
    caback_cli_log_option(rec, "--cscfg", o->cscfg);
    caback_cli_log_flag(rec, "--include-sslserver", o->include_sslserver);
    caback_cli_log_p12_password(rec, &o->p12);
    caback_cli_log_option(rec, "--iterations", o->iterations);
    caback_cli_log_flag(rec, "--legacy", o->legacy);
    caback_cli_log_option(rec, "--mac", o->mac);
    caback_cli_log_flag(rec, "--certs-only", o->certs_only);
    caback_cli_log_flag(rec, "--force", o->force);
    caback_cli_log_flag(rec, "--no-verify", o->no_verify);
    caback_cli_log_flag(rec, "--allow-shared-folder", o->allow_shared_folder);
    caback_cli_log_option(rec, "--log", o->log_path);
    caback_cli_log_custody_options(rec, &o->custody);
}

/* What caback help backup says above and below the options. */
static void set_help(GOptionContext *context)
{
    g_option_context_set_summary(
        context,
        "Back up a CA's private keys and certificates into one PKCS#12 file: by default every "
        "certificate of the token\n"
        "that has its private key there, each with its key and its issuer chain. Every bag "
        "carries the NSS nickname\n"
        "(friendlyName), the NSS key ID (localKeyID, as certutil -K prints it) and, on "
        "certificates, the NSS trust flags\n"
        "(Dogtag's trust attribute). The file is written to a 0600 temporary file next to "
        "FILE, read back and checked\n"
        "(each key must sign for its certificate), and only then renamed to FILE.\n\n"
        "Windows form: caback -backup PASSWORD FILE [-d DIR] [-f FILE] (the password is then "
        "visible to other users).");
    g_option_context_set_description(
        context, "Examples:\n"
                 "  caback backup -d /var/lib/pki/pki-tomcat/alias "
                 "-f /var/lib/pki/pki-tomcat/conf/password.conf -o ca-backup.p12\n"
                 "  caback backup -d DIR -f password.conf --cscfg "
                 "/var/lib/pki/pki-tomcat/ca/conf/CS.cfg -o clone.p12\n"
                 "  caback backup -d DIR -f password.conf -o ca.p12 --split 3 "
                 "--custodian-dir custodians/\n"
                 "Exit status: 0 written and verified, 1 failure, 2 usage, 3 wrong database "
                 "password, 4 FILE exists,\n"
                 "5 a key cannot leave its token.\n");
}

/* The options of caback backup: one table for the parser and the help. */
static GOptionContext *backup_context(BackupOptions *o, CabackCommonOptions *common)
{
    const GOptionEntry entries[] = {
        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &o->output,
         "The PKCS#12 file to write (refused when it exists, unless --force)", "FILE"},
        {"nickname", 'n', 0, G_OPTION_ARG_STRING_ARRAY, &o->nicknames,
         "Back up only this certificate (every certificate with the nickname) and its key; "
         "repeat for more",
         "NICKNAME"},
        {"cscfg", 0, 0, G_OPTION_ARG_FILENAME, &o->cscfg,
         "Back up the system certificates a Dogtag CS.cfg lists (<subsystem>.cert.list), "
         "without sslserver",
         "CS.cfg"},
        {"include-sslserver", 0, 0, G_OPTION_ARG_NONE, &o->include_sslserver,
         "With --cscfg, also back up the sslserver certificate", NULL},
        CABACK_CLI_P12_PASSWORD_ENTRIES(
            &o->p12, "Password for the PKCS#12 file: the file's first line (default: asked twice)",
            "Read the password for the PKCS#12 file from environment variable VAR"),
        {"iterations", 0, 0, G_OPTION_ARG_STRING, &o->iterations,
         "Key derivation iterations (default 600000; 2048 with --legacy)", "N"},
        {"legacy", 0, 0, G_OPTION_ARG_NONE, &o->legacy,
         "Write what Windows Server 2012, Java 8 and OpenSSL 1.0 read: PBE-SHA1-3DES, HMAC-SHA1",
         NULL},
        {"mac", 0, 0, G_OPTION_ARG_STRING, &o->mac,
         "The file's MAC: hmac (default: HMAC-SHA256) or pbmac1 (RFC 9579)", "KIND"},
        {"force", 0, 0, G_OPTION_ARG_NONE, &o->force, "Replace the output file if it exists", NULL},
        {"certs-only", 0, 0, G_OPTION_ARG_NONE, &o->certs_only,
         "Write the certificates and trust flags but no private keys (for keys that cannot "
         "leave an HSM); the file and the summary say so",
         NULL},
        {"no-verify", 0, 0, G_OPTION_ARG_NONE, &o->no_verify,
         "Do not read the file back and check every key before putting it in place (the file "
         "is then not recorded as the latest backup)",
         NULL},
        {"allow-shared-folder", 0, 0, G_OPTION_ARG_NONE, &o->allow_shared_folder,
         "Write into a folder that other users may write (group/world writable without the "
         "sticky bit, or owned by another user); refused by default",
         NULL},
        CABACK_CLI_LOG_ENTRY(&o->log_path),
        {NULL}};
    GOptionContext *context = g_option_context_new(NULL);

    set_help(context);
    g_option_context_add_main_entries(context, entries, NULL);
    caback_cli_add_custody_options(context, &o->custody);
    caback_cli_add_common(context, common,
                          CABACK_COMMON_DB | CABACK_COMMON_JSON | CABACK_COMMON_LIMITS |
                              CABACK_COMMON_PROGRESS |
                              CABACK_COMMON_LOCK);

    return context;
}

/* After parsing: every usage error, the output's folder, the password from a file or the
 * environment (read here, once) and the nicknames to back up. */
static gboolean check_options(BackupRun *run, gboolean windows, int argc, char **argv,
                              GError **error)
{
    BackupOptions *o = run->o;

    if (!windows && argc > 1) {
        caback_cli_usage_error(
            error, "backup", "unexpected argument \"%s\"; the file to write is given with -o FILE",
            argv[1]);
        return FALSE;
    } else if (o->output == NULL) {
        caback_cli_usage_error(error, "backup", "no output file; give it with -o FILE");
        return FALSE;
    }

    if (!caback_backup_write_options(o->mac, o->legacy, o->iterations, "backup", &run->write,
                                     error))
        return FALSE;
    if (!caback_backup_check_selection(o->cscfg, o->include_sslserver, o->nicknames != NULL,
                                       error))
        return FALSE;
    if (o->p12.file != NULL && o->p12.env != NULL) {
        caback_cli_usage_error(error, "backup",
                               "choose either -w FILE or --p12-password-env VAR for the PKCS#12 "
                               "password, not both");
        return FALSE;
    }
    if (!caback_cli_custody_check(&o->custody, "backup",
                                  windows ? "the Windows form's password"
                                          : caback_cli_p12_password_option(&o->p12),
                                  o->no_verify, error))
        return FALSE;
    if (!caback_backup_check_output(o->output, o->force, o->allow_shared_folder, error) ||
        !caback_cli_custody_check_output(&o->custody, o->output, o->force, run->rec, error))
        return FALSE;

    CabackPasswordSource source = {.file = o->p12.file, .env_var = o->p12.env};
    if ((source.file != NULL || source.env_var != NULL) &&
        (run->password = caback_backup_password_read(&source, FALSE, error)) == NULL)
        return FALSE;

    return caback_backup_nicknames(o->cscfg, o->include_sslserver,
                                   (const char *const *)o->nicknames, run->common->token,
                                   &run->nicknames, error);
}

gboolean caback_cmd_backup(int argc, char **argv, GError **error)
{
    gboolean windows = strcmp(argv[0], "-backup") == 0;
    BackupOptions o = {0};
    CabackCommonOptions common = {0};
    BackupRun run = {.o = &o, .common = &common};
    gboolean ok = FALSE;
    g_autoptr(GOptionContext) context = backup_context(&o, &common);

    if (windows && !caback_cli_windows_backup_password(&argc, argv, &run.password, error))
        goto out;
    if (!caback_cli_parse(context, "backup", &common, &argc, &argv, error)) {
        if (windows)
            caback_cli_windows_parse_error(error, "backup");
        goto out;
    }
    /* A log that is a link, a FIFO or another user's file stops the run before it starts. */
    if ((run.rec = caback_cli_log_begin("backup", o.log_path, error)) == NULL)
        goto out;
    /* The Windows form's password argument was taken out of argv before anything is parsed or
     * recorded. */
    gboolean taken =
        !windows || (caback_cli_windows_backup_file(argc, argv, run.password, &o.p12, &o.output,
                                                    run.rec, error) &&
                     caback_backup_check_password(run.password, "given on the command line",
                                                  error));
    log_options(run.rec, &o, &common);
    if (!taken)
        goto out;
    if (!check_options(&run, windows, argc, argv, error))
        goto out;
    ok = run_backup(&run, error);
out:
    /* Last, after the database is closed: the record says how the run ended. */
    caback_cli_log_finish(g_steal_pointer(&run.rec), ok, error, o.log_path);
    caback_secret_free(run.password);
    g_strfreev(run.nicknames);
    backup_options_clear(&o);
    caback_cli_common_clear(&common);
    return ok;
}
