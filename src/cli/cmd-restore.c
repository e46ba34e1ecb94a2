/* caback restore -i FILE: bring certificates and keys back from a PKCS#12 file into an NSS
 * database, losing nothing and breaking nothing: plan first (add / already present / conflict),
 * then import all or nothing, then check each key against its certificate and print the key IDs
 * for CS.cfg. Also the Windows certutil form "caback -restore PASSWORD FILE". */
#include "config.h"

#include "cli-log.h"
#include "cli-restore.h"
#include "cli-windows.h"
#include "cli.h"

#include <caback/log.h>
#include <caback/restore-run.h>
#include <caback/secret.h>

#include <string.h>

typedef struct {
    char *in;
    CabackCliP12Password p12; /* -w, --p12-password-env */
    gboolean create;
    gboolean dry_run;
    gboolean replace;
    gboolean rename;
    gboolean non_extractable;
    gboolean allow_weak_keys;
    gboolean skip_unsupported;
    char **trust;
    char *log_path;
    char *signature_ca;
    gboolean no_signature_check;
    gboolean at_signing_time; /* --at-signing-time */
    gboolean require_latest;  /* --require-latest */
    char *recorded_sha256;    /* "restore automatic": the SHA-256 the state folder recorded */
    gboolean automatic; /* "restore automatic" */
    gboolean recorded_signed;       /* "restore automatic": caback sign ran on the recorded file */
    gboolean require_signature;     /* --require-signature */
    gboolean allow_unauthenticated; /* --allow-unauthenticated */
} RestoreOptions;

static void restore_options_clear(RestoreOptions *ro)
{
    g_free(ro->in);
    caback_cli_p12_password_clear(&ro->p12);
    g_strfreev(ro->trust);
    g_free(ro->log_path);
    g_free(ro->signature_ca);
    g_free(ro->recorded_sha256);
}

/* ---- the verb ---- */

/* "restore automatic": take the archive that the last verified backup recorded in the state
 * folder, and refuse it when it is gone or its bytes are no longer those that were verified. */
static gboolean resolve_automatic(RestoreOptions *ro, GError **error)
{
    if (ro->in != NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "\"restore automatic\" takes the newest recorded backup; do not also give "
                    "-i %s",
                    ro->in);
        return FALSE;
    }
    /* Its bytes are read once, later, and those very bytes are compared with the recorded
     * SHA-256, checked against the signature and restored (caback_restore_run). */
    return caback_restore_find_latest(&ro->in, &ro->recorded_sha256, &ro->recorded_signed, error);
}

static gboolean check_options(RestoreOptions *ro, int argc, char **argv, GError **error)
{
    if (argc == 2 && g_strcmp0(argv[1], "automatic") == 0) {
        ro->automatic = TRUE;
        return resolve_automatic(ro, error) && check_options(ro, 1, argv, error);
    }
    if (argc > 1) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "unexpected argument \"%s\"; give the PKCS#12 file with -i FILE (see: caback "
                    "help restore)",
                    argv[1]);
        return FALSE;
    }
    if (ro->in == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "which PKCS#12 file? give it with -i FILE (see: caback help restore)");
        return FALSE;
    }
    return caback_restore_check_conflict_choice(ro->replace, ro->rename, error) &&
           caback_cli_p12_password_check(&ro->p12, error) &&
           caback_restore_check_signature_choices(ro->no_signature_check, ro->at_signing_time,
                                                  ro->require_signature,
                                                  ro->signature_ca != NULL, error);
}

/* The run's command for the log: names of files and variables, never what they hold. */
static void log_options(CabackLogRecord *rec, const RestoreOptions *ro,
                        const CabackCommonOptions *common)
{
    if (ro->automatic)
        caback_log_record_add_arg(rec, "automatic");
    if (ro->in != NULL) {
        if (!ro->automatic)
            caback_log_record_add_option(rec, "-i", ro->in);
        caback_cli_log_file(rec, ro->in);
    }
    caback_cli_log_common(rec, common);
    caback_cli_log_p12_password(rec, &ro->p12);
    caback_cli_log_flag(rec, "--create", ro->create);
    caback_cli_log_flag(rec, "--dry-run", ro->dry_run);
    caback_cli_log_flag(rec, "--replace", ro->replace);
    caback_cli_log_flag(rec, "--rename", ro->rename);
    caback_cli_log_flag(rec, "--non-extractable", ro->non_extractable);
    caback_cli_log_flag(rec, "--allow-weak-keys", ro->allow_weak_keys);
    caback_cli_log_flag(rec, "--skip-unsupported", ro->skip_unsupported);
    caback_cli_log_flag(rec, "--no-signature-check", ro->no_signature_check);
    caback_cli_log_flag(rec, "--require-signature", ro->require_signature);
    caback_cli_log_flag(rec, "--allow-unauthenticated", ro->allow_unauthenticated);
    caback_cli_log_flag(rec, "--at-signing-time", ro->at_signing_time);
    caback_cli_log_flag(rec, "--require-latest", ro->require_latest);
    for (char **t = ro->trust; t != NULL && *t != NULL; t++)
        caback_log_record_add_option(rec, "--trust", *t);
    caback_cli_log_option(rec, "--signature-ca", ro->signature_ca);
    caback_cli_log_option(rec, "--log", ro->log_path);
}

/* ---- the run, through the library ---- */

static gboolean run_restore(const RestoreOptions *ro, const CabackCommonOptions *common,
                            const CabackSecret *given, GHashTable *trust, CabackLogRecord *rec,
                            GError **error)
{
    CabackCliRestoreView view = {ro->in, ro->log_path, ro->skip_unsupported, ro->non_extractable,
                                 common->json, rec};
    CabackRestoreHooks hooks = caback_cli_restore_hooks(&view);
    g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
    CabackRestoreRunOptions options = {
        .path = ro->in,
        .recorded_sha256 = ro->recorded_sha256,
        .recorded_signed = ro->recorded_signed,
        .password = given,
        .password_source = {.file = ro->p12.file, .env_var = ro->p12.env},
        .restore = {.on_conflict = ro->replace  ? CABACK_RESTORE_ON_CONFLICT_REPLACE
                                   : ro->rename ? CABACK_RESTORE_ON_CONFLICT_RENAME
                                                : CABACK_RESTORE_ON_CONFLICT_STOP,
                    .trust = trust,
                    .non_extractable = ro->non_extractable,
                    .allow_weak_keys = ro->allow_weak_keys,
                    .skip_unsupported = ro->skip_unsupported},
        .create = ro->create,
        .dry_run = ro->dry_run,
        .signature_ca = ro->signature_ca,
        .no_signature_check = ro->no_signature_check,
        .require_signature = ro->require_signature,
        .at_signing_time = ro->at_signing_time,
        .allow_unauthenticated = ro->allow_unauthenticated,
        .require_latest = ro->require_latest,
        .log_path = ro->log_path,
        .checker_program = exe,
        .record = rec,
    };
    CabackRestoreResult result;

    /* --json: standard output carries the JSON document only. */
    if (common->json)
        caback_cli_verbosity = -1;
    /* The run opens it read-only for a dry run; its lock is shared then, exclusive for a change. */
    caback_cli_db_options(common, ro->dry_run, &options.db);
    return caback_restore_run(&options, &hooks, &result, error);
}

/* What caback help restore says above and below the options. */
static void set_help(GOptionContext *context)
{
    g_option_context_set_summary(
        context,
        "Restore the certificates and keys of a PKCS#12 file into an NSS database (or the token "
        "--token names).\n"
        "Nicknames come from friendlyName (else the subject CN, made unique); trust flags from "
        "the Dogtag\n"
        "trust attribute, else by role: a self-signed CA certificate with its key CTu,Cu,Cu, a "
        "CA certificate\n"
        "without its key CT,C,C, an audit-signing certificate u,u,Pu, any other certificate "
        "with its key u,u,u.\n"
        "The plan comes first: each certificate and key is added, skipped (already present and "
        "identical:\n"
        "a second restore changes nothing) or in conflict. Conflicts stop the restore (exit 4) "
        "unless\n"
        "--replace or --rename is given. All or nothing: a failure undoes every change of the "
        "run.\n"
        "Each restored key is checked against its certificate, and the key IDs are printed for "
        "CS.cfg.");
    g_option_context_set_description(
        context,
        "Windows certutil form: caback -restore PASSWORD FILE [-d DIR] (the password is visible "
        "to other users\n"
        "while the command runs; prefer -w FILE).\n"
        "\"caback restore automatic\" restores the newest backup that caback backup verified and "
        "recorded,\n"
        "after checking that its SHA-256 is still the recorded one.\n"
        "A signature FILE.sig (caback sign) next to the file is checked first, against the "
        "database's trust\n"
        "or --signature-ca CERTFILE; a bad or untrusted one stops the restore (exit 1). Each run "
        "is recorded\n"
        "in the run log (--log FILE; see caback help backup).\n"
        "Example:\n"
        "  caback restore -i ca-backup.p12 -w ca-backup.pass -d /var/lib/pki/pki-tomcat/alias "
        "\\\n"
        "      -f /var/lib/pki/pki-tomcat/conf/password.conf --dry-run\n"
        "Exit status: 0 restored (or nothing to do), 1 failure, bad signature or CA trust for a "
        "weak key\n(nothing changed), 2 usage, 3 wrong password, "
        "4 conflict (nothing changed; --dry-run too exits 4 when the real run would).\n");
}

/* The options of caback restore: one table for the parser and the help. */
static GOptionContext *restore_context(RestoreOptions *ro, CabackCliShares *shares,
                                       CabackCommonOptions *common)
{
    const GOptionEntry entries[] = {
        {"in", 'i', 0, G_OPTION_ARG_FILENAME, &ro->in, "The PKCS#12 file to restore", "FILE"},
        CABACK_CLI_P12_PASSWORD_READ_ENTRIES(&ro->p12),
        {"create", 0, 0, G_OPTION_ARG_NONE, &ro->create,
         "Create the NSS database when it does not exist (new password from -f / "
         "--password-env, or asked twice)",
         NULL},
        {"dry-run", 'n', 0, G_OPTION_ARG_NONE, &ro->dry_run, "Print the plan and change nothing",
         NULL},
        {"replace", 0, 0, G_OPTION_ARG_NONE, &ro->replace,
         "On a nickname conflict, the restored certificate takes the nickname; the old "
         "certificate leaves it, its private key stays",
         NULL},
        {"rename", 0, 0, G_OPTION_ARG_NONE, &ro->rename,
         "On a nickname conflict, restore as \"NICKNAME (restored N)\"", NULL},
        {"non-extractable", 0, 0, G_OPTION_ARG_NONE, &ro->non_extractable,
         "Import the keys so that they can never leave the token again (CKA_EXTRACTABLE false; "
         "keys are always sensitive)",
         NULL},
        {"allow-weak-keys", 0, 0, G_OPTION_ARG_NONE, &ro->allow_weak_keys,
         "Give CA trust (C or T) to a certificate even when its key is weak (RSA under 2048 "
         "bits, exponent under 65537 or even, EC other than P-256/384/521, DSA)",
         NULL},
        {"skip-unsupported", 0, 0, G_OPTION_ARG_NONE, &ro->skip_unsupported,
         "Restore the rest when a key is of a type NSS cannot hold (Ed25519, X25519, ML-KEM...), "
         "which is skipped with a note; without it such a key stops the restore before any change",
         NULL},
        {"trust", 't', 0, G_OPTION_ARG_STRING_ARRAY, &ro->trust,
         "Trust flags for a certificate, as certutil -t takes them (repeatable)", "NICKNAME=FLAGS"},
        {"signature-ca", 0, 0, G_OPTION_ARG_FILENAME, &ro->signature_ca,
         "Check FILE.sig against only the CA certificate(s) in CERTFILE (PEM or DER) instead of "
         "the database's trust (for a new database)",
         "CERTFILE"},
        {"require-signature", 0, 0, G_OPTION_ARG_NONE, &ro->require_signature,
         "Refuse the file unless FILE.sig is there, valid and trusted", NULL},
        {"allow-unauthenticated", 0, 0, G_OPTION_ARG_NONE, &ro->allow_unauthenticated,
         "Restore a file without MAC or checked signature; no certificate then gets trust "
         "except from -t",
         NULL},
        {"no-signature-check", 0, 0, G_OPTION_ARG_NONE, &ro->no_signature_check,
         "Do not check FILE.sig (the restore then rests on the file's MAC alone)", NULL},
        {"require-latest", 0, 0, G_OPTION_ARG_NONE, &ro->require_latest,
         "Refuse the file when the run log records a newer backup of the same database, or "
         "when its date cannot be told",
         NULL},
        {"at-signing-time", 0, 0, G_OPTION_ARG_NONE, &ro->at_signing_time,
         "Check the signer of FILE.sig at the signing time it states instead of now (an old "
         "backup whose signer has expired since; the output and the log say so)",
         NULL},
        CABACK_CLI_LOG_ENTRY(&ro->log_path),
        {NULL}};
    GOptionContext *context = g_option_context_new(NULL);

    set_help(context);
    g_option_context_add_main_entries(context, entries, NULL);
    caback_cli_add_share_options(context, shares);
    caback_cli_add_common(context, common,
                          CABACK_COMMON_DB | CABACK_COMMON_JSON | CABACK_COMMON_LIMITS |
                              CABACK_COMMON_PROGRESS |
                              CABACK_COMMON_LOCK);
    return context;
}

gboolean caback_cmd_restore(int argc, char **argv, GError **error)
{
    CabackCommonOptions common = {0};
    RestoreOptions ro = {0};
    CabackCliShares shares = {0};
    g_autoptr(GPtrArray) owned_args = g_ptr_array_new_with_free_func(g_free);
    g_autofree char **args = NULL;
    g_autoptr(CabackSecret) given = NULL;
    g_autoptr(GHashTable) trust = NULL;
    g_autoptr(GOptionContext) context = restore_context(&ro, &shares, &common);
    gboolean ok = FALSE;
    CabackLogRecord *rec = NULL;

    if (argc >= 1 && strcmp(argv[0], "-restore") == 0 &&
        !(argc == 2 && strcmp(argv[1], "--help") == 0)) {
        if (!caback_cli_windows_restore_args(&argc, &argv, owned_args, &args, &given, error))
            return FALSE;
    }

    if (!caback_cli_parse(context, "restore", &common, &argc, &argv, error)) {
        if (given != NULL)
            caback_cli_windows_parse_error(error, "restore");
        goto out;
    }
    if ((rec = caback_cli_log_begin("restore", ro.log_path, error)) == NULL)
        goto out;
    gboolean usable = check_options(&ro, argc, argv, error);
    log_options(rec, &ro, &common);
    caback_cli_log_shares(rec, &shares);
    if (!usable)
        goto out;
    if (!caback_cli_shares_exclusive(&shares, "restore",
                                     given != NULL ? "-restore PASSWORD FILE"
                                                   : caback_cli_p12_password_option(&ro.p12),
                                     error))
        goto out;
    if (given != NULL && !caback_cli_windows_restore_alone(&ro.p12, error))
        goto out;
    if ((trust = caback_restore_parse_trust_list((const char *const *)ro.trust, error)) == NULL)
        goto out;

    /* A password from a file or the environment is read here, once. */
    if (given == NULL && caback_cli_p12_password_option(&ro.p12) != NULL &&
        (given = caback_cli_p12_password_read(&ro.p12, ro.in, error)) == NULL)
        goto out;
    /* M-of-N custody: the password rebuilt from the custodians' shares, checked first. */
    if (caback_cli_shares_given(&shares) &&
        (given = caback_cli_shares_password(&common, ro.in, &shares, rec, error)) == NULL)
        goto out;

    ok = run_restore(&ro, &common, given, trust, rec, error);
out:
    /* Last, after the database is closed: the record says how the run ended. */
    caback_cli_log_finish(rec, ok, error, ro.log_path);
    restore_options_clear(&ro);
    caback_cli_shares_clear(&shares);
    caback_cli_common_clear(&common);
    return ok;
}
