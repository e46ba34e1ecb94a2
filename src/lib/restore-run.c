/* One whole restore for a front end (caback_restore_run, see include/caback/restore-run.h): the
 * database opened or made, the file read once and judged (recorded digest, signature, integrity,
 * date), the plan and the import. The stages are restore.c's, cms.c's and freshness.c's; this
 * file owns their order and what is said between them. */
#include "config.h"

#include <caback/cms.h>
#include <caback/cscfg.h>
#include <caback/digest.h>
#include <caback/error.h>
#include <caback/nss-util.h>
#include <caback/p12.h>
#include <caback/restore-run.h>
#include <caback/stored-key-check.h>

#include <signal.h>
#include <string.h>

/* The hooks of the run being made (never NULL inside this file). */
typedef struct {
    CabackRestoreRun pub;
    const CabackRestoreHooks *hooks;
} Run;

/* Show a line through the hooks; a warning is recorded in the run's record too. */
static void say(CabackRestoreRun *run, CabackRunLevel level, const char *format, ...)
    G_GNUC_PRINTF(3, 4);
static void say(CabackRestoreRun *run, CabackRunLevel level, const char *format, ...)
{
    const CabackRestoreHooks *hooks = ((Run *)run)->hooks;
    va_list args;

    va_start(args, format);
    caback_run_say_valist(hooks->message, hooks->data, run->options->record, level, format, args);
    va_end(args);
}

static void signature_clear(CabackRestoreSignature *sc)
{
    g_free(sc->path);
    g_free(sc->sha256);
    g_free(sc->status);
    g_free(sc->signers);
    g_free(sc->signing_time);
    g_free(sc->checked_at);
}

static void backup_date_clear(CabackRestoreBackupDate *bd)
{
    g_free(bd->time);
    g_free(bd->log);
    g_clear_pointer(&bd->records, g_ptr_array_unref);
}

/* ---- databases ---- */

static gboolean db_exists(const char *dir)
{
    static const char *const names[] = {"cert9.db", "cert8.db"};

    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *path = g_build_filename(dir, names[i], NULL);
        if (g_file_test(path, G_FILE_TEST_EXISTS))
            return TRUE;
    }
    return FALSE;
}

/* The name of a file in the folder @dir other than what an interrupted --create leaves (its
 * staging folder, key4.db moved in before cert9.db: the library finishes or refuses those with
 * its own words), or NULL (also when @dir cannot be read: @error is then set). Caller frees. */
static char *first_other_file(const char *dir, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(GDir) d = g_dir_open(dir, 0, &local);
    const char *name;

    if (d == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot read the folder %s: %s", dir,
                    local->message);
        return NULL;
    }
    while ((name = g_dir_read_name(d)) != NULL)
        if (!g_str_has_prefix(name, ".caback-new-db-") && strcmp(name, "key4.db") != 0)
            return g_strescape(name, NULL);
    return NULL;
}

/* For --dry-run --create on a missing database: plan against an empty token, creating nothing. */
static CabackDb *open_nothing(const char *dir, GError **error)
{
    g_autoptr(CabackDb) db = g_new0(CabackDb, 1);

    db->dir = g_canonicalize_filename(dir, NULL);
    db->spec = g_strdup_printf("sql:%s", db->dir);
    db->context =
        NSS_InitContext("", "", "", "", NULL,
                        NSS_INIT_READONLY | NSS_INIT_NOCERTDB | NSS_INIT_NOMODDB |
                            NSS_INIT_FORCEOPEN | NSS_INIT_NOROOTINIT | NSS_INIT_OPTIMIZESPACE);
    if (db->context == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot start NSS without a database");
        return NULL;
    }
    db->slot = PK11_GetInternalKeySlot();
    db->token_name = g_strdup("NSS Certificate DB");
    return g_steal_pointer(&db);
}

static gboolean create_db(CabackRestoreRun *run, const char *dir, gboolean *created_dir,
                          GError **error)
{
    const CabackDbOptions *o = &run->options->db;
    CabackPasswordSource source = {.file = o->password.file, .env_var = o->password.env_var};
    g_autofree char *what = g_strdup_printf("new password for the NSS database %s", dir);

    if (!caback_cscfg_token_is_internal(o->token)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "--create makes an NSS database, not token \"%s\"; create the database "
                    "first, or restore into the internal token",
                    o->token);
        return FALSE;
    }
    g_autoptr(CabackSecret) password = caback_password_read(&source, "internal", what, TRUE, error);
    if (password == NULL)
        return FALSE;
    if (!caback_restore_create_db(dir, password, created_dir, error))
        return FALSE;
    run->created = TRUE;
    say(run, CABACK_RUN_INFO, "Created NSS database %s%s", dir,
        password->len == 0 ? " (without a password)" : "");
    return TRUE;
}

/* Open and log in to the database, with its own token logged in before the selected one (see
 * caback_restore_login_internal). */
static CabackDb *open_db(const CabackRestoreRunOptions *ro, gboolean read_only, GError **error)
{
    CabackDbOptions options = ro->db;
    options.read_only = read_only;
    g_autoptr(CabackDb) db = caback_db_open(&options, error);
    if (db == NULL || !caback_restore_login_internal(db, error) || !caback_db_login(db, error))
        return NULL;
    return g_steal_pointer(&db);
}

static char *format_unix(gint64 t)
{
    if (t < 0)
        return NULL;
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
    return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : NULL;
}

/* Decide the signature status of the run: printed, logged, and in --json (never silent). */
static void signature_status(CabackRestoreRun *run, const char *word, char *status)
{
    CabackRestoreSignature *sc = &run->signature;

    g_free(sc->status);
    sc->status = status;
    sc->status_word = word;
    if (run->options->record != NULL)
        caback_log_record_set_signature(run->options->record, status);
    say(run, CABACK_RUN_INFO, "signature: %s", status);
}

/* The signature of the run when it is not checked: skipped (--no-signature-check), or there is
 * none, which stops the restore when a signature is required. */
static gboolean signature_unchecked(CabackRestoreRun *run, GError **error)
{
    const CabackRestoreRunOptions *ro = run->options;
    CabackRestoreSignature *sc = &run->signature;

    if (ro->no_signature_check) {
        if (sc->exists)
            say(run, CABACK_RUN_WARNING,
                "signature %s was not checked (--no-signature-check): "
                "nothing shows that %s is the file that was signed",
                sc->path, ro->path);
        if (ro->recorded_signed)
            say(run, CABACK_RUN_WARNING,
                "the recorded backup %s was signed (caback sign), but its "
                "signature was not checked (--no-signature-check)",
                ro->path);
        signature_status(run, "skipped", g_strdup("skipped (--no-signature-check)"));
        return TRUE;
    }
    /* No signature. */
    if (ro->signature_ca != NULL || ro->require_signature || ro->recorded_signed) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "%s has no signature %s, and %s; nothing was restored. Sign it with "
                    "caback sign (or find its signature), or %s",
                    ro->path, sc->path,
                    ro->require_signature ? "--require-signature was given"
                    : ro->signature_ca != NULL
                        ? "--signature-ca was given"
                        : "the recorded backup was signed (caback sign ran on it), so "
                          "restore automatic requires its signature",
                    ro->recorded_signed && !ro->require_signature
                        ? "restore it without the check only if you trust it by other "
                          "means (--no-signature-check)"
                    : ro->require_signature ? "drop --require-signature"
                                            : "drop --signature-ca");
        signature_status(run, "none", g_strdup("none"));
        return FALSE;
    }
    say(run, CABACK_RUN_DETAIL, "No signature %s: the file is checked by its MAC only.", sc->path);
    signature_status(run, "none", g_strdup("none"));
    return TRUE;
}

/* Check FILE.sig, when there is one, before anything is read or changed: against the trust of
 * @db, or only the CA certificates of --signature-ca. A bad signature, a signer nobody trusts or
 * an unreadable signature file stops the restore. */
static gboolean check_signature(CabackRestoreRun *run, const CabackSecret *data, GError **error)
{
    const CabackRestoreRunOptions *ro = run->options;
    CabackRestoreSignature *sc = &run->signature;
    CabackDb *db = run->db;

    sc->path = g_strconcat(ro->path, ".sig", NULL);
    sc->exists = g_file_test(sc->path, G_FILE_TEST_EXISTS);
    if (ro->no_signature_check || !sc->exists)
        return signature_unchecked(run, error);

    g_autoptr(CERTCertList) anchors = NULL;
    g_autofree char *trust = NULL;
    if (ro->signature_ca != NULL) {
        if ((anchors = caback_cms_load_anchors(ro->signature_ca, error)) == NULL)
            return FALSE;
        trust = g_strdup_printf("CA file %s", ro->signature_ca);
    } else {
        trust = g_strdup_printf("NSS database %s", db->dir);
    }
    g_autoptr(CabackCmsVerification) v = NULL;
    g_autoptr(GError) local = NULL;
    /* The bytes that will be restored, not the file by its name. */
    g_autoptr(GBytes) signed_bytes = g_bytes_new_static(data->data, data->len);
    CabackCmsVerifyOptions options = {.path = ro->path,
                                      .data = signed_bytes,
                                      .sig_path = sc->path,
                                      .anchors = anchors,
                                      .trust = trust,
                                      .wincx = db,
                                      .at_signing_time = ro->at_signing_time};
    if (!caback_cms_verify(&options, &v, &local)) {
        g_set_error(error, CABACK_ERROR,
                    local->domain == CABACK_ERROR && local->code == CABACK_ERROR_IO
                        ? CABACK_ERROR_IO
                        : CABACK_ERROR_FAILED,
                    "the signature %s does not vouch for %s: %s. Nothing was restored. %s",
                    sc->path, ro->path, local->message,
                    ro->signature_ca != NULL
                        ? "Check that the file and its signature are the ones you made, and "
                          "that CERTFILE holds the CA of the signer"
                        : "When this database does not hold the signer's CA (a new host), give "
                          "it with --signature-ca CERTFILE; restore without the check only if "
                          "you trust the file by other means (--no-signature-check)");
        return FALSE;
    }
    GString *signers = g_string_new(NULL);
    for (guint i = 0; i < v->signers->len; i++) {
        const CabackCmsSigner *signer = v->signers->pdata[i];
        if (signers->len > 0)
            g_string_append(signers, "; ");
        g_string_append(signers, signer->subject);
    }
    sc->signers = g_string_free(signers, FALSE);
    sc->sha256 = g_strdup(v->sha256);
    sc->checked = TRUE;
    signature_status(run, "checked", g_strdup_printf("checked (signer %s)", sc->signers));
    const CabackCmsSigner *first = v->signers->pdata[0];
    sc->signing_time = format_unix(first->signing_time);
    sc->checked_at = format_unix(first->checked_at);
    sc->at_signing_time = first->at_signing_time;
    /* Who signed and when, always: the date of what is about to be restored. */
    say(run, CABACK_RUN_INFO,
        "Signature %s is valid: %s signed %s %s%s (SHA-256 %s), trusted by %s.", sc->path,
        sc->signers, ro->path, sc->signing_time != NULL ? "at " : "",
        sc->signing_time != NULL ? sc->signing_time : "(no signing time stated)", v->sha256, trust);
    if (sc->at_signing_time)
        say(run, CABACK_RUN_WARNING,
            "the signer of %s was checked at the signing time %s "
            "(--at-signing-time), not now: it may have expired or been "
            "replaced since",
            sc->path, sc->signing_time);
    return TRUE;
}

/* Read the file to restore once, into bounded memory (wiped when freed), and say which bytes
 * these are: the recorded SHA-256 of "restore automatic", the signature check and the restore
 * all judge them, so a file swapped by its name meanwhile changes nothing. */
static CabackSecret *load_file(CabackRestoreRun *run, char **sha256, GError **error)
{
    const CabackRestoreRunOptions *ro = run->options;

    g_autoptr(CabackSecret) data = caback_p12_load_file(ro->path, "PKCS#12 file", error);
    if (data == NULL)
        return NULL;
    guint8 digest[SHA256_LENGTH];
    if (data->len > G_MAXINT32 ||
        PK11_HashBuf(SEC_OID_SHA256, digest, (const unsigned char *)data->data,
                     (PRInt32)data->len) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot compute the SHA-256 of %s",
                             ro->path);
        return NULL;
    }
    g_autoptr(GBytes) bytes = g_bytes_new(digest, sizeof digest);
    *sha256 = caback_digest_to_hex(bytes);
    if (ro->recorded_sha256 != NULL) {
        if (g_ascii_strcasecmp(*sha256, ro->recorded_sha256) != 0) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                        "the newest recorded backup %s changed since it was verified (SHA-256 "
                        "%s, recorded %s); nothing was restored. Check the file, or restore it "
                        "explicitly with: caback restore -i FILE",
                        ro->path, *sha256, ro->recorded_sha256);
            g_clear_pointer(sha256, g_free);
            return NULL;
        }
        say(run, CABACK_RUN_INFO,
            "Restoring the newest recorded backup %s (SHA-256 %s, as verified)", ro->path, *sha256);
    } else {
        say(run, CABACK_RUN_INFO,
            "Read %s: %zu bytes, SHA-256 %s; the signature check and the restore "
            "use these bytes.",
            ro->path, (size_t)data->len, *sha256);
    }
    return g_steal_pointer(&data);
}

/* The backup records of the run log (ro->log_path, else the default) into run->date; a log
 * that cannot be read is *@unread (a missing one is no error: nothing is recorded). */
static void read_backup_records(CabackRestoreRun *run, GError **unread)
{
    CabackRestoreBackupDate *bd = &run->date;
    g_autofree char *default_log = NULL;
    const char *log_path = run->options->log_path;
    g_autofree char *contents = NULL;
    gsize len = 0;

    if (log_path == NULL)
        log_path = default_log = caback_log_default_path(NULL);
    if (log_path != NULL) {
        bd->log = caback_log_json_path(log_path);
        /* Only a log of this user's or root's: another user's file could claim anything. */
        if (!caback_state_read_file(bd->log, (gsize)256 << 20, &contents, &len, unread) &&
            g_error_matches(*unread, CABACK_ERROR, CABACK_ERROR_NOT_FOUND))
            g_clear_error(unread);
    }
    bd->records = contents != NULL ? caback_backup_records_parse(contents, len) : g_ptr_array_new();
}

/* The backup's date: its signing time when the signature was checked, else the time of its own
 * record; and the newest record of another backup of its database (freshness.h). */
static void date_backup(CabackRestoreRun *run)
{
    const CabackRestorePlan *plan = run->plan;
    const CabackRestoreSignature *sc = &run->signature;
    CabackRestoreBackupDate *bd = &run->date;
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(CabackKeyId));

    for (guint i = 0; i < plan->keys->len; i++) {
        const CabackRestoreKey *k = plan->keys->pdata[i];
        if (k->id_known)
            g_array_append_val(ids, k->id);
    }
    bd->freshness = caback_freshness_judge(bd->records, plan->sha256, ids,
                                           sc->checked ? sc->signing_time : NULL);
    if (sc->checked && sc->signing_time != NULL) {
        bd->time = g_strdup(sc->signing_time);
        bd->source = "signing time";
    } else if (bd->freshness.self != NULL) {
        bd->time = g_strdup(bd->freshness.self->time);
        bd->source = "run log";
    }
}

/* No date for the backup: said, or refused with --require-latest. */
static gboolean judge_unknown_date(CabackRestoreRun *run, const GError *unread, GError **error)
{
    const CabackRestoreRunOptions *ro = run->options;
    const CabackRestoreBackupDate *bd = &run->date;
    g_autofree char *why = g_strdup_printf(
        "%s is not signed (or its signature states no time) and no backup with its SHA-256 "
        "is recorded in the run log %s%s%s",
        ro->path, bd->log != NULL ? bd->log : "(none)", unread != NULL ? ": " : "",
        unread != NULL ? unread->message : "");

    if (ro->require_latest) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "--require-latest: cannot tell whether %s is the newest backup of its "
                    "database: %s; nothing was restored. Sign backups (caback sign), keep "
                    "the run log, or drop --require-latest",
                    ro->path, why);
        return FALSE;
    }
    say(run, CABACK_RUN_INFO, "Backup date: unknown (%s).", why);
    return TRUE;
}

/* A newer backup of the same database is recorded: a warning, or refused with
 * --require-latest. */
static gboolean judge_newer(CabackRestoreRun *run, GError **error)
{
    const CabackRestoreRunOptions *ro = run->options;
    const CabackRestoreBackupDate *bd = &run->date;
    const CabackBackupRecord *newer = bd->freshness.newer;
    g_autofree char *what = g_strdup_printf(
        "the run log %s records a newer backup of the same database%s%s: %s, made at %s "
        "(SHA-256 %s); %s is from %s",
        bd->log, newer->database != NULL ? " " : "", newer->database != NULL ? newer->database : "",
        newer->file, newer->time, newer->sha256, ro->path, bd->time);

    if (ro->require_latest) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "--require-latest: %s; nothing was restored. Restore the newer backup "
                    "(caback restore automatic), or drop --require-latest to go back to this "
                    "one on purpose",
                    what);
        return FALSE;
    }
    say(run, CABACK_RUN_WARNING,
        "%s. Restore the newer one unless you mean to go back to this one "
        "(--require-latest refuses instead)",
        what);
    return TRUE;
}

/* The backup's date (its signing time, else its record in the run log) and whether the run log
 * records a newer backup of the same database: a warning, or with --require-latest a refusal
 * (also when the date cannot be told). */
static gboolean judge_freshness(CabackRestoreRun *run, GError **error)
{
    const CabackRestoreBackupDate *bd = &run->date;
    g_autoptr(GError) unread = NULL;

    read_backup_records(run, &unread);
    date_backup(run);
    if (bd->time == NULL)
        return judge_unknown_date(run, unread, error);
    say(run, CABACK_RUN_INFO, "Backup date: %s (%s).", bd->time,
        g_strcmp0(bd->source, "signing time") == 0
            ? "the signing time of its signature"
            : "when caback backup wrote it, from the run log");
    return bd->freshness.newer == NULL || judge_newer(run, error);
}

/* "caback check-stored-keys" on the database (see include/caback/stored-key-check.h), or NULL
 * when it cannot run here: the restore then checks its keys itself, as thoroughly. */
static CabackStoredKeyChecker *start_checker(CabackRestoreRun *run)
{
    const char *exe = run->options->checker_program;
    g_autoptr(GError) why = NULL;
    /* A checker that dies must not take the restore with it: writing to its pipe then fails
     * with EPIPE instead of raising SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    CabackStoredKeyChecker *checker =
        exe != NULL ? caback_stored_key_checker_start(exe, run->db, &why) : NULL;
    if (checker == NULL)
        say(run, CABACK_RUN_DETAIL, "The stored keys will be checked by this process only (%s)",
            why != NULL ? why->message : "its own program file cannot be found");
    return checker;
}

gboolean caback_restore_find_latest(char **path, char **sha256, gboolean *signed_, GError **error)
{
    g_autofree char *found = NULL, *recorded = NULL;
    g_autoptr(GError) local = NULL;

    if (!caback_state_get_latest_backup_full(&found, &recorded, signed_, &local)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "no newest backup is recorded (%s); run caback backup first, or give the "
                    "file with: caback restore -i FILE",
                    local->message);
        return FALSE;
    }
    if (!g_file_test(found, G_FILE_TEST_IS_REGULAR)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "the newest recorded backup %s is gone (moved or deleted); nothing was "
                    "restored. Give the file with: caback restore -i FILE",
                    found);
        return FALSE;
    }
    *path = g_steal_pointer(&found);
    *sha256 = g_steal_pointer(&recorded);
    return TRUE;
}

/* Open the database of the run into run->db, or make it (--create, in a new or empty folder
 * only), or with a dry run on a database --create would make, an empty stand-in. */
static gboolean open_database(CabackRestoreRun *run, const char *dir, gboolean *created_dir,
                              GError **error)
{
    const CabackRestoreRunOptions *ro = run->options;

    if (db_exists(dir) || g_str_has_prefix(dir, "dbm:")) {
        run->db = open_db(ro, ro->dry_run, error);
        return run->db != NULL;
    }
    g_autofree char *other = NULL;
    gboolean folder = g_file_test(dir, G_FILE_TEST_IS_DIR);
    if (!ro->create) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                    "NSS database %s %s; add --create to make it (its new "
                    "password comes from -f FILE or --password-env VAR, or is asked twice), "
                    "or create it with: certutil -N -d sql:%s",
                    dir, folder ? "holds no NSS database (no cert9.db)" : "does not exist", dir);
        return FALSE;
    }
    /* A new database goes into a new or empty folder only: a folder that holds other files is
     * not the place the user thinks it is (a typo, or the wrong instance). */
    if (folder && (other = first_other_file(dir, error)) != NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "--create makes a new NSS database in a new or empty folder only, and "
                    "%s holds other files (\"%s\") but no NSS database (no cert9.db); "
                    "nothing was created. Give a new or empty folder, or -d the folder of "
                    "the existing database",
                    dir, other);
        return FALSE;
    }
    if (error != NULL && *error != NULL)
        return FALSE;
    if (ro->dry_run) {
        run->would_create = TRUE;
        run->db = open_nothing(dir, error);
    } else if (create_db(run, dir, created_dir, error)) {
        run->db = open_db(ro, FALSE, error);
    }
    return run->db != NULL;
}

/* A file with neither MAC nor checked signature can be made by anyone, with any certificate:
 * refused, or restored without any trust it did not get from -t. */
static gboolean check_authenticated(CabackRestoreRun *run, const CabackP12Info *info,
                                    CabackRestoreOptions *options, GError **error)
{
    const CabackRestoreRunOptions *ro = run->options;

    if (info->mac != NULL || run->signature.checked)
        return TRUE;
    if (!ro->allow_unauthenticated) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%s is not authenticated: it has no MAC and no checked signature "
                    "(integrity: none), so anyone could have made it, with any "
                    "certificate in it; nothing was restored. Restore it only if you "
                    "trust it by other means, with --allow-unauthenticated: then no "
                    "certificate gets trust flags from the file or by its role, only "
                    "those you give with -t NICKNAME=FLAGS",
                    ro->path);
        return FALSE;
    }
    options->unauthenticated = TRUE;
    say(run, CABACK_RUN_WARNING,
        "%s is not authenticated (no MAC, no checked signature); "
        "restored because of --allow-unauthenticated, with trust "
        "flags only from -t NICKNAME=FLAGS",
        ro->path);
    return TRUE;
}

/* Read the file once, check its signature, read its contents with the password, and judge its
 * integrity and date: run->plan when all of it passes (not yet planned), else NULL and @error. */
static void read_file(CabackRestoreRun *run, CabackP12File **file, CabackRestoreOptions *options,
                      GError **error)
{
    const CabackRestoreRunOptions *ro = run->options;
    CabackLogRecord *rec = ro->record;
    const CabackRestoreHooks *hooks = ((Run *)run)->hooks;
    g_autofree char *loaded_sha256 = NULL;

    g_autoptr(CabackSecret) data = load_file(run, &loaded_sha256, error);
    if (data == NULL)
        return;
    if (rec != NULL)
        caback_log_record_set_file_sha256(rec, loaded_sha256);
    if (check_signature(run, data, error))
        run->plan = caback_restore_read_data(&data, ro->path, ro->password, &ro->password_source,
                                             file, error);
    if (run->plan == NULL) {
        if (hooks->read_failed != NULL)
            hooks->read_failed(ro->path, loaded_sha256, error, hooks->data);
        return;
    }
    if (*file == NULL)
        return;
    if (rec != NULL)
        caback_log_record_set_file_sha256(rec, run->plan->sha256);
    /* What the reader tolerated (no MAC, trailing bytes...) is worth knowing before a restore. */
    const CabackP12Info *info = caback_p12_file_info(*file);
    for (guint i = 0; i < info->warnings->len; i++)
        say(run, CABACK_RUN_WARNING, "%s: %s", ro->path, (const char *)info->warnings->pdata[i]);
    const char *integrity = caback_p12_integrity(info);
    if (rec != NULL)
        caback_log_record_set_integrity(rec, integrity);
    say(run, CABACK_RUN_INFO, "integrity: %s", integrity);
    if (!check_authenticated(run, info, options, error))
        g_clear_pointer(&run->plan, caback_restore_plan_free);
    /* One read: the signature was checked on the bytes decoded. Should that ever change, this
     * refuses rather than restores bytes nobody checked. */
    if (run->plan != NULL && run->signature.checked &&
        g_ascii_strcasecmp(run->signature.sha256, run->plan->sha256) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%s changed while it was being restored (SHA-256 %s when its signature "
                    "was checked, %s when it was read); nothing was restored. Find out what "
                    "writes to it, then run the restore again",
                    ro->path, run->signature.sha256, run->plan->sha256);
        g_clear_pointer(&run->plan, caback_restore_plan_free);
    }
}

gboolean caback_restore_run_succeeds(const CabackRestoreRun *run)
{
    switch (run->outcome) {
    case CABACK_RESTORE_OUTCOME_REFUSED:
    case CABACK_RESTORE_OUTCOME_CONFLICT:
        return FALSE;
    case CABACK_RESTORE_OUTCOME_PLANNED:
        /* The dry run answers with the status the real run would have, so that it can gate the
         * change in a script. */
        return run->plan->conflicts == 0;
    default:
        return TRUE;
    }
}

/* The words of a decided outcome that fails (caback_restore_run_succeeds). */
static void set_refusal(const CabackRestoreRun *run, GError **error)
{
    const CabackRestoreRunOptions *ro = run->options;
    const CabackRestorePlan *plan = run->plan;

    if (run->outcome == CABACK_RESTORE_OUTCOME_REFUSED)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%s%u certificate(s) of %s would get CA trust (C or T) although their "
                    "key is weak (the plan says which and why); nothing was changed. Give "
                    "them other trust with --trust NICKNAME=FLAGS, or accept the weak keys "
                    "with --allow-weak-keys",
                    ro->dry_run ? "dry run: " : "", plan->weak_refusals, ro->path);
    else if (run->outcome == CABACK_RESTORE_OUTCOME_PLANNED)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "dry run: %u conflict(s) with what NSS database %s holds (the plan "
                    "says what each is); the restore would stop here and change "
                    "nothing. Use --replace or --rename for a nickname the database uses "
                    "for another certificate",
                    plan->conflicts, run->db->dir);
    else
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%u conflict(s) with what NSS database %s holds (the plan says what "
                    "each is); nothing was changed. For a nickname the database uses for "
                    "another certificate, use --replace to give it to the restored "
                    "certificate (no private key is ever deleted) or --rename to restore "
                    "under a new nickname",
                    plan->conflicts, run->db->dir);
}

/* The plan is made: decide the outcome (refused, planned, conflict, unchanged, or the import),
 * show it through the hooks, and fail with the refusal's words. */
static gboolean decide(CabackRestoreRun *run, CabackStoredKeyChecker *checker, GError **error)
{
    const CabackRestoreRunOptions *ro = run->options;
    const CabackRestoreHooks *hooks = ((Run *)run)->hooks;
    const CabackRestorePlan *plan = run->plan;

    if (hooks->planned != NULL)
        hooks->planned(run, hooks->data);
    if (plan->weak_refusals > 0)
        /* Before conflicts: no option about nicknames can make a weak key trustworthy. */
        run->outcome = CABACK_RESTORE_OUTCOME_REFUSED;
    else if (ro->dry_run)
        run->outcome = CABACK_RESTORE_OUTCOME_PLANNED;
    else if (plan->conflicts > 0)
        run->outcome = CABACK_RESTORE_OUTCOME_CONFLICT;
    else if (plan->changes == 0)
        run->outcome = CABACK_RESTORE_OUTCOME_UNCHANGED;
    else if (caback_restore_apply_checked(run->plan, run->db, checker, error))
        run->outcome = CABACK_RESTORE_OUTCOME_RESTORED;
    else
        return FALSE;
    if (hooks->finished != NULL)
        hooks->finished(run, hooks->data);
    if (caback_restore_run_succeeds(run))
        return TRUE;
    set_refusal(run, error);
    return FALSE;
}

/* Everything between opening the database and closing it. */
static gboolean restore_into(CabackRestoreRun *run, GError **error)
{
    const CabackRestoreRunOptions *ro = run->options;
    CabackLogRecord *rec = ro->record;

    if (rec != NULL)
        caback_log_record_set_database(
            rec, run->db->dir,
            run->db->slot != NULL && PK11_IsInternalKeySlot(run->db->slot) ? NULL
                                                                           : run->db->token_name);
    /* The second reader of the last step starts now, so that its own opening of the database
     * happens while the file's keys are derived. */
    g_autoptr(CabackStoredKeyChecker) checker = NULL;
    if (!ro->dry_run)
        checker = start_checker(run);

    gboolean ok = FALSE;
    CabackRestoreOptions options = ro->restore;
    CabackP12File *file = NULL;
    read_file(run, &file, &options, error);
    if (run->plan != NULL && !judge_freshness(run, error))
        g_clear_pointer(&run->plan, caback_restore_plan_free);
    gboolean planned =
        run->plan != NULL &&
        caback_restore_plan(run->plan, run->would_create ? NULL : run->db, &options, error);
    /* The keys of the file, with the nicknames the plan gave them. */
    for (guint i = 0; rec != NULL && run->plan != NULL && i < run->plan->keys->len; i++) {
        const CabackRestoreKey *k = run->plan->keys->pdata[i];
        if (k->id_known && k->duplicate_of < 0)
            caback_log_record_add_key(rec, k->nickname, &k->id);
    }
    if (planned)
        ok = decide(run, checker, error);
    g_clear_pointer(&run->plan, caback_restore_plan_free);
    if (file != NULL)
        caback_p12_file_free(file);
    if (caback_stored_key_checker_problem(checker) != NULL)
        say(run, CABACK_RUN_DETAIL,
            "The second reader of the stored keys (caback check-stored-keys) stopped "
            "early, so this process checked the rest itself: %s",
            caback_stored_key_checker_problem(checker));
    return ok;
}

gboolean caback_restore_run(const CabackRestoreRunOptions *options, const CabackRestoreHooks *hooks,
                            CabackRestoreResult *result, GError **error)
{
    static const CabackRestoreHooks no_hooks = {0};
    Run r = {.pub = {.options = options}, .hooks = hooks != NULL ? hooks : &no_hooks};
    CabackRestoreRun *run = &r.pub;
    g_autofree char *dir = NULL;
    gboolean created_dir = FALSE;

    *result = (CabackRestoreResult){0};
    if (options->db.dbdir != NULL)
        dir = g_strdup(g_str_has_prefix(options->db.dbdir, "sql:") ? options->db.dbdir + 4
                                                                   : options->db.dbdir);
    else if ((dir = caback_db_default_dir(error)) == NULL)
        return FALSE;

    gboolean ok = open_database(run, dir, &created_dir, error);
    if (ok) {
        ok = restore_into(run, error);
        /* Close even after a failure, but report the first error. */
        ok = caback_db_close(g_steal_pointer(&run->db), ok ? error : NULL) && ok;
    }
    if (!ok && run->created) {
        caback_restore_remove_created_db(dir, created_dir);
        g_prefix_error(error, "the NSS database that --create made in %s was removed again: ", dir);
    }
    result->outcome = run->outcome;
    result->created = run->created;
    signature_clear(&run->signature);
    backup_date_clear(&run->date);
    return ok;
}
