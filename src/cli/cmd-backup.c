/* caback backup (Windows form: caback -backup PASSWORD FILE): every certificate of the token that
 * has its private key there, with the key and the issuer chain, into one PKCS#12 file that is
 * written to a 0600 temporary file, read back and checked, and only then renamed into place. */
#include "config.h"

#include "cli.h"
#include "cli-log.h"

#include <caback/backup.h>
#include <caback/json.h>

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

static gboolean check_empty_password(const CabackSecret *password, const char *where,
                                     GError **error)
{
    if (password->len > 0)
        return TRUE;
    return caback_cli_usage_error(
        error, "backup",
        "the PKCS#12 password %s is empty; a backup of private keys needs "
        "a password, nothing was written",
        where);
}

/* ---- output ---- */

static void append_key_lines(GString *out, const CabackBackupSelection *sel)
{
    for (guint i = 0; i < sel->certs->len; i++) {
        const CabackBackupCert *c = sel->certs->pdata[i];
        if (c->key != NULL)
            g_string_append_printf(
                out, "  %s\n      key ID %s (CS.cfg form %s), trust %s\n",
                c->nickname != NULL ? c->nickname : c->subject, c->key->info->id_hex,
                c->key->info->dogtag_id ? c->key->info->dogtag_id : "-", c->trust);
        else
            g_string_append_printf(out, "  %s\n      %s, no key, trust %s\n",
                                   c->nickname != NULL ? c->nickname : "(no nickname)",
                                   c->selected ? "certificate" : "issuer certificate", c->trust);
        if (c->nickname == NULL || c->key == NULL)
            g_string_append_printf(out, "      subject %s\n", c->subject);
    }
}

static char *selection_text(const CabackDb *db, const CabackBackupSelection *sel,
                            const char *output)
{
    GString *out = g_string_new(NULL);

    g_string_append_printf(out,
                           "Backing up %u private key%s and %u certificate%s from token \"%s\" "
                           "of NSS database %s to %s:\n",
                           sel->keys->len, sel->keys->len == 1 ? "" : "s", sel->certs->len,
                           sel->certs->len == 1 ? "" : "s", sel->token_name, db->dir, output);
    append_key_lines(out, sel);
    return g_string_free(out, FALSE);
}

typedef struct {
    const char *output;
    const CabackP12WriteOptions *write;
    guint custody_threshold;  /* custody: M, else 0 */
    GPtrArray *custodians;    /* custody: CabackCustodian */
    GPtrArray *share_files;   /* custody: the share files written */
    gboolean verified;
    const CabackBackupReport *report;
    const char *sha256;      /* the file's SHA-256 once verified and in place, else NULL */
    gboolean latest_updated; /* latest_backup now points at the file */
} Summary;

static char *summary_text(const CabackBackupSelection *sel, const Summary *s)
{
    const char *keys_alg, *certs_alg, *mac;
    guint iterations = caback_backup_describe_options(s->write, &keys_alg, &certs_alg, &mac);
    GString *out = g_string_new(NULL);

    g_string_append_printf(out, "Wrote %s (mode 0600): %u private key%s, %u certificate%s\n",
                           s->output, sel->keys->len, sel->keys->len == 1 ? "" : "s",
                           sel->certs->len, sel->certs->len == 1 ? "" : "s");
    append_key_lines(out, sel);
    if (sel->certs_only)
        g_string_append(out, "This file holds no private keys (--certs-only): it restores "
                             "certificates and trust flags only; the keys must come from the "
                             "HSM's own backup\n");
    if (s->verified && s->report->key_alg != NULL)
        g_string_append_printf(out, "Keys: %s\n", s->report->key_alg);
    else
        g_string_append_printf(out, "Keys: %s, %u iterations\n", keys_alg, iterations);
    if (s->verified && s->report->cert_alg != NULL)
        g_string_append_printf(out, "Certificates: %s\n", s->report->cert_alg);
    else
        g_string_append_printf(out, "Certificates: %s, %u iterations\n", certs_alg, iterations);
    if (s->verified && s->report->mac != NULL)
        g_string_append_printf(out, "MAC: %s\n", s->report->mac);
    else
        g_string_append_printf(out, "MAC: %s, %u iterations\n", mac, iterations);
    if (s->custody_threshold > 0)
        caback_cli_custody_text(out, s->custody_threshold, s->custodians, s->share_files);
    if (s->verified)
        g_string_append_printf(
            out,
            "Verified: read back with the password%s (MAC checked), %u key%s decrypted and "
            "matched to %s certificate%s by a test signature, %u certificate%s with their "
            "nicknames, key IDs and trust flags\n",
            s->custody_threshold > 0 ? " rebuilt from the shares" : "", s->report->keys, s->report->keys == 1 ? "" : "s",
            s->report->keys == 1 ? "its" : "their", s->report->keys == 1 ? "" : "s",
            s->report->certs, s->report->certs == 1 ? "" : "s");
    else
        g_string_append(out, "Not verified (--no-verify)\n");
    if (s->sha256 != NULL)
        g_string_append_printf(out, "SHA-256: %s\n", s->sha256);
    if (s->latest_updated)
        g_string_append(out, "Recorded as the latest backup (for caback restore automatic)\n");
    else if (!s->verified)
        g_string_append(out, "Not recorded as the latest backup: only a verified backup is "
                             "(caback restore automatic will not pick this file)\n");
    return g_string_free(out, FALSE);
}

static char *summary_json(const CabackDb *db, const CabackBackupSelection *sel, const Summary *s)
{
    const char *keys_alg, *certs_alg, *mac;
    guint iterations = caback_backup_describe_options(s->write, &keys_alg, &certs_alg, &mac);
    g_autoptr(CabackJson) json = caback_json_new();

    caback_json_begin_object(json, NULL);
    caback_cli_json_path(json, "file", s->output);
    caback_json_string(json, "database", db->dir);
    caback_json_string(json, "token", sel->token_name);
    caback_json_begin_array(json, "keys");
    for (guint i = 0; i < sel->keys->len; i++) {
        const CabackBackupKey *k = sel->keys->pdata[i];
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "nickname", k->nickname);
        caback_json_string(json, "nss_id", k->info->id_hex);
        caback_json_string(json, "dogtag_id", k->info->dogtag_id);
        caback_json_string(json, "subject", k->cert->subject);
        caback_json_string(json, "type", k->info->type);
        caback_json_int_or_null(json, "size", k->info->size_bits > 0, k->info->size_bits);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
    caback_json_begin_array(json, "certificates");
    for (guint i = 0; i < sel->certs->len; i++) {
        const CabackBackupCert *c = sel->certs->pdata[i];
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "nickname", c->nickname);
        caback_json_string(json, "subject", c->subject);
        caback_json_string(json, "trust", c->trust);
        caback_json_bool(json, "has_key", c->key != NULL);
        caback_json_string(json, "nss_id", c->key != NULL ? c->key->info->id_hex : NULL);
        caback_json_bool(json, "chain_only", !c->selected);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
    caback_json_string(json, "profile",
                       s->write->profile == CABACK_P12_LEGACY ? "legacy" : "modern");
    caback_json_begin_object(json, "algorithms");
    caback_json_string(json, "keys", keys_alg);
    caback_json_string(json, "certificates", certs_alg);
    caback_json_end_object(json);
    caback_json_string(json, "mac", mac);
    caback_json_int(json, "iterations", iterations);
    caback_json_bool(json, "certs_only", sel->certs_only);
    caback_json_bool(json, "verified", s->verified);
    caback_json_string(json, "sha256", s->sha256);
    caback_json_bool(json, "latest_backup", s->latest_updated);
    if (s->custody_threshold > 0)
        caback_cli_custody_json(json, s->custody_threshold, s->custodians, s->share_files);
    /* What the run cost in password-based key derivations (writing and checking together): the
     * figure the benchmark's floor is made of. */
    caback_json_int(json, "key_derivations", caback_p12_derivations());
    if (s->verified) {
        caback_json_begin_object(json, "verification");
        caback_json_int(json, "keys", s->report->keys);
        caback_json_int(json, "certificates", s->report->certs);
        caback_json_string(json, "mac", s->report->mac);
        caback_json_end_object(json);
    }
    caback_json_strings(json, "warnings", sel->warnings);
    caback_json_end_object(json);
    return g_strdup(caback_json_text(json));
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

/* The selection is made: record its keys, show what will be written, print and record its
 * warnings. */
static void on_selected(const CabackBackupSelection *sel, gpointer data)
{
    BackupRun *run = data;

    for (guint i = 0; i < sel->keys->len; i++) {
        const CabackBackupKey *k = sel->keys->pdata[i];
        caback_log_record_add_key(run->rec, k->nickname, k->info->id_hex, k->info->dogtag_id);
    }
    if (!run->common->json) {
        g_autofree char *text = selection_text(run->db, sel, run->o->output);
        caback_cli_info("%s", g_strchomp(text));
    }
    for (guint i = 0; i < sel->warnings->len; i++)
        caback_cli_log_warning(run->rec, "%s", (const char *)sel->warnings->pdata[i]);
}

/* A password asked at the prompt comes after the summary of what will be written. */
static CabackSecret *ask_p12_password(gpointer data, GError **error)
{
    (void)data;
    CabackPasswordSource source = {0};
    g_autoptr(CabackSecret) password =
        caback_p12_password_read(&source, "password for the new PKCS#12 file", TRUE, error);
    if (password == NULL || !check_empty_password(password, "given at the prompt", error))
        return NULL;
    return g_steal_pointer(&password);
}

static void on_warning(const char *message, gpointer data)
{
    BackupRun *run = data;
    caback_cli_log_warning(run->rec, "%s", message);
}

static gboolean run_backup(BackupRun *run, GError **error)
{
    BackupOptions *o = run->o;
    CabackBackupResult result = {0};
    g_autofree char *summary = NULL;

    run->db = caback_cli_open_db(run->common, TRUE, error);
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
    CabackBackupHooks hooks = {on_selected, ask_p12_password, on_warning, run};
    gboolean ok = caback_backup_run(&options, &hooks, &result, error);
    if (ok) {
        if (result.sha256 != NULL)
            caback_log_record_set_file_sha256(run->rec, result.sha256);
        Summary s = {.output = o->output,
                     .write = &run->write,
                     .custody_threshold = o->custody.threshold,
                     .custodians = run->custodians,
                     .share_files = result.share_files,
                     .verified = result.verified,
                     .report = &result.report,
                     .sha256 = result.sha256,
                     .latest_updated = result.latest_updated};
        summary = run->common->json ? summary_json(run->db, result.selection, &s)
                                    : summary_text(result.selection, &s);
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

/* The Windows form "caback -backup PASSWORD FILE [OPTIONS]" takes the password as its first
 * argument, before the options are parsed: a password that starts with '-' ("-Secret1") is a
 * password then, not an unknown option that the parser's error message would quote. Copy it,
 * blank the argument in place (/proc/PID/cmdline, what ps shows, reads this very memory) and
 * drop it from @argv (NULL-terminated at *@argc), so that nothing later can print it. */
static gboolean take_windows_password(int *argc, char **argv, BackupRun *run, GError **error)
{
    if (*argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "--help-all") == 0)
        return TRUE;
    /* The one PKCS#12 password rule: the argument is copied, then wiped in place. */
    CabackPasswordSource source = {.argument = argv[1]};
    run->password = caback_p12_password_read(&source, "password for the new PKCS#12 file", FALSE,
                                             error);
    if (run->password == NULL)
        return FALSE;
    memmove(&argv[1], &argv[2], (gsize)(*argc - 1) * sizeof *argv);
    (*argc)--;
    return TRUE;
}

/* The rest of the Windows form, after the options are parsed: FILE, the one argument left. */
static gboolean take_windows_arguments(int argc, char **argv, BackupRun *run, GError **error)
{
    BackupOptions *o = run->o;

    /* No argument is quoted here: a misplaced password could be any of them. */
    if (run->password == NULL || argc != 2)
        return caback_cli_usage_error(error, "backup",
                                      "the Windows form is: caback -backup PASSWORD FILE [-d DIR] "
                                      "[-f FILE], with the password first");
    if (!caback_cli_windows_order_check("-backup", run->password->data, argv[1], error)) {
        /* Swapped: FILE is the password; it is wiped from the command line, never kept, and
         * the log, which records o->output, never sees it. */
        caback_secret_wipe(argv[1], strlen(argv[1]));
        return FALSE;
    }
    caback_cli_log_warning(
        run->rec, "a password given on the command line can be seen by other users of this "
                  "machine (ps, /proc) and may stay in the shell history; prefer: caback "
                  "backup -o FILE, with -w FILE, --p12-password-env VAR or the prompt");
    if (o->output != NULL || o->p12.file != NULL || o->p12.env != NULL)
        return caback_cli_usage_error(error, "backup",
                                      "the Windows form caback -backup PASSWORD FILE takes the "
                                      "password and the file as arguments; -o, -w and "
                                      "--p12-password-env belong to caback backup");
    o->output = g_strdup(argv[1]);
    return check_empty_password(run->password, "given on the command line", error);
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
    if (o->include_sslserver && o->cscfg == NULL) {
        caback_cli_usage_error(error, "backup", "--include-sslserver goes with --cscfg CS.cfg");
        return FALSE;
    }
    if (o->cscfg != NULL && o->nicknames != NULL) {
        caback_cli_usage_error(error, "backup",
                               "choose either -n NICKNAME or --cscfg CS.cfg, not both");
        return FALSE;
    }
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
    if (g_file_test(o->output, G_FILE_TEST_IS_DIR)) {
        caback_cli_usage_error(error, "backup",
                               "%s is a folder; give the file to write, e.g. %s/ca-backup.p12",
                               o->output, o->output);
        return FALSE;
    }
    if (!caback_backup_check_output(o->output, o->force, o->allow_shared_folder, error) ||
        !caback_cli_custody_check_output(&o->custody, o->output, o->force, run->rec, error))
        return FALSE;

    if (o->p12.file != NULL || o->p12.env != NULL) {
        CabackPasswordSource source = {.file = o->p12.file,
                                       .env_var = o->p12.env};
        run->password = caback_p12_password_read(&source, "password for the new PKCS#12 file",
                                                FALSE, error);
        if (run->password == NULL)
            return FALSE;
        g_autofree char *where =
            o->p12.file != NULL
                ? g_strdup_printf("in %s", o->p12.file)
                : g_strdup_printf("in environment variable %s", o->p12.env);
        if (!check_empty_password(run->password, where, error))
            return FALSE;
    }

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

    if (windows && !take_windows_password(&argc, argv, &run, error))
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
    gboolean taken = !windows || take_windows_arguments(argc, argv, &run, error);
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
