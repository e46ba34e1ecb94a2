/* The restore drill for a front end (caback_verify_run, see include/caback/verify.h): the
 * signature checked over the bytes read once, the live database's inventory taken in an NSS run
 * of its own, the drill itself (verify.c), and the judgement of its report. This file owns their
 * order and what is said between them; the front end prints the report. */
#include "config.h"

#include <caback/cms.h>
#include <caback/digest.h>
#include <caback/error.h>
#include <caback/nss-util.h>
#include <caback/p12.h>
#include <caback/verify.h>

#include <string.h>

typedef struct {
    const CabackVerifyRunOptions *options;
    const CabackVerifyHooks *hooks;
    CabackVerifyResult *result;
} VerifyRun;

/* Show a line through the hooks; a warning is recorded in the run's record too. */
static void say(VerifyRun *run, CabackRunLevel level, const char *format, ...) G_GNUC_PRINTF(3, 4);
static void say(VerifyRun *run, CabackRunLevel level, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    caback_run_say_valist(run->hooks->message, run->hooks->data, run->options->record, level,
                          format, args);
    va_end(args);
}

static CabackDb *open_db(VerifyRun *run, GError **error)
{
    if (run->hooks->open_db == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "no way to open the database to compare %s with", run->options->path);
        return NULL;
    }
    return run->hooks->open_db(run->hooks->data, error);
}

/* Record @db's folder and, when it is not the database's own, its token. */
static void record_database(CabackLogRecord *rec, const CabackDb *db)
{
    if (rec != NULL)
        caback_log_record_set_database(
            rec, db->dir,
            db->slot != NULL && PK11_IsInternalKeySlot(db->slot) ? NULL : db->token_name);
}

static void set_status(VerifyRun *run, const char *word, char *status)
{
    run->result->signature_word = word;
    g_free(run->result->signature_status);
    run->result->signature_status = status;
    if (run->options->record != NULL)
        caback_log_record_set_signature(run->options->record, status);
    say(run, CABACK_RUN_INFO, "signature: %s", status);
}

void caback_verify_result_clear(CabackVerifyResult *result)
{
    g_clear_pointer(&result->report, caback_verify_report_free);
    g_clear_pointer(&result->signature_status, g_free);
    g_clear_pointer(&result->signature_sha256, g_free);
}

/* The signature when it is not checked: skipped (--no-signature-check), or there is none, which
 * fails when one is required. */
static gboolean signature_unchecked(VerifyRun *run, const char *sig_path, gboolean exists,
                                    GError **error)
{
    const CabackVerifyRunOptions *o = run->options;
    const char *path = o->path;

    if (o->no_signature_check) {
        if (exists)
            say(run, CABACK_RUN_WARNING,
                "signature %s was not checked (--no-signature-check): nothing "
                "shows that %s is the file that was signed",
                sig_path, path);
        set_status(run, "skipped", g_strdup("skipped (--no-signature-check)"));
        return TRUE;
    }
    /* No signature. */
    set_status(run, "none", g_strdup("none"));
    if (o->require_signature || o->signature_ca != NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "%s has no signature %s, and %s was given; sign it with caback sign "
                    "(or find its signature), or drop %s",
                    path, sig_path, o->require_signature ? "--require-signature" : "--signature-ca",
                    o->require_signature ? "--require-signature" : "--signature-ca");
        return FALSE;
    }
    return TRUE;
}

/* Check PATH.sig, when there is one, before the drill: over the file's bytes read once, against
 * the CA certificates of --signature-ca, else the trust of the -d database. A bad or untrusted
 * signature, or one with nothing to check it against, fails; so does a missing one with
 * --require-signature. NSS is shut down again before returning (the drill needs it closed). */
static gboolean check_signature(VerifyRun *run, GError **error)
{
    const CabackVerifyRunOptions *o = run->options;
    const char *path = o->path;
    g_autofree char *sig_path = g_strconcat(path, ".sig", NULL);
    gboolean exists = g_file_test(sig_path, G_FILE_TEST_EXISTS);

    if (o->no_signature_check || !exists)
        return signature_unchecked(run, sig_path, exists, error);
    if (o->signature_ca == NULL && !o->with_db) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%s has a signature %s, but nothing to check it against: give "
                    "--signature-ca CERTFILE (the signer's CA) or -d DIR (a database that trusts "
                    "it), or --no-signature-check to verify without it",
                    path, sig_path);
        return FALSE;
    }
    g_autoptr(CabackSecret) data = caback_p12_load_file(path, "PKCS#12 file", error);
    if (data == NULL)
        return FALSE;

    CabackDb *db = NULL;
    NSSInitContext *nodb = NULL;
    g_autofree char *trust = NULL;
    if (o->signature_ca != NULL) {
        if ((nodb = caback_nss_nodb_open(error)) == NULL)
            return FALSE;
        trust = g_strdup_printf("CA file %s", o->signature_ca);
    } else {
        if ((db = open_db(run, error)) == NULL)
            return FALSE;
        trust = g_strdup_printf("NSS database %s", db->dir);
    }
    gboolean ok = FALSE;
    {
        g_autoptr(CERTCertList) anchors = NULL;
        g_autoptr(CabackCmsVerification) v = NULL;
        g_autoptr(GError) local = NULL;
        g_autoptr(GBytes) bytes = g_bytes_new_static(data->data, data->len);
        if (o->signature_ca != NULL &&
            (anchors = caback_cms_load_anchors(o->signature_ca, error)) == NULL)
            goto close;
        CabackCmsVerifyOptions options = {.path = path,
                                          .data = bytes,
                                          .sig_path = sig_path,
                                          .anchors = anchors,
                                          .trust = trust,
                                          .wincx = db};
        if (!caback_cms_verify(&options, &v, &local)) {
            g_set_error(error, CABACK_ERROR,
                        local->domain == CABACK_ERROR && local->code == CABACK_ERROR_IO
                            ? CABACK_ERROR_IO
                            : CABACK_ERROR_FAILED,
                        "the signature %s does not vouch for %s: %s. Check that the file and "
                        "its signature are the ones you made, and that %s trusts the signer's CA",
                        sig_path, path, local->message, trust);
            goto close;
        }
        GString *signers = g_string_new(NULL);
        for (guint i = 0; i < v->signers->len; i++) {
            const CabackCmsSigner *signer = v->signers->pdata[i];
            g_string_append_printf(signers, "%s%s", signers->len > 0 ? "; " : "", signer->subject);
        }
        run->result->signature_sha256 = g_strdup(v->sha256);
        set_status(run, "checked", g_strdup_printf("checked (signer %s)", signers->str));
        g_string_free(signers, TRUE);
        ok = TRUE;
    }
close:
    if (db != NULL && !caback_db_close(db, ok ? error : NULL))
        ok = FALSE;
    if (nodb != NULL && !caback_nss_nodb_close(nodb, ok ? error : NULL))
        ok = FALSE;
    return ok;
}

/* The live database's inventory, in an NSS run of its own that ends before the drill starts. */
static CabackVerifyInventory *take_inventory(VerifyRun *run, GError **error)
{
    CabackDb *db = open_db(run, error);
    if (db == NULL)
        return NULL;
    record_database(run->options->record, db);
    g_autoptr(CabackVerifyInventory) inv = caback_verify_inventory(db, error);
    if (inv == NULL)
        g_prefix_error(error, "cannot compare with NSS database %s: ", db->dir);
    if (!caback_db_close(db, inv != NULL ? error : NULL))
        return NULL;
    return g_steal_pointer(&inv);
}

/* --max-age: a problem in @report when the newest recorded backup is older than @days days (or
 * when none is recorded, or its time is unknown), so that a timer's drill fails on a backup job
 * that stopped running. */
static void check_max_age(int days, CabackVerifyReport *report)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *newest = NULL;
    g_autoptr(GDateTime) recorded = NULL;

    if (!caback_state_get_latest_backup_time(&newest, &recorded, &local)) {
        g_ptr_array_add(report->problems,
                        g_strdup_printf("--max-age %d: %s", days, local->message));
        report->restorable = FALSE;
        return;
    }
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    GTimeSpan age = g_date_time_difference(now, recorded);
    if (age <= (GTimeSpan)days * G_TIME_SPAN_DAY)
        return;
    g_autofree char *when = g_date_time_format(recorded, "%Y-%m-%dT%H:%M:%SZ");
    g_ptr_array_add(report->problems,
                    g_strdup_printf("the newest recorded backup, %s, was made %s, %.1f days ago: "
                                    "older than --max-age %d; check that the backup job runs "
                                    "(systemctl status caback-backup.timer)",
                                    newest, when, (double)age / G_TIME_SPAN_DAY, days));
    report->restorable = FALSE;
}

gboolean caback_verify_run(const CabackVerifyRunOptions *options, const CabackVerifyHooks *hooks,
                           CabackVerifyResult *result, GError **error)
{
    static const CabackVerifyHooks no_hooks = {0};
    VerifyRun r = {options, hooks != NULL ? hooks : &no_hooks, result};
    VerifyRun *run = &r;
    const char *path = options->path;
    CabackLogRecord *rec = options->record;

    *result = (CabackVerifyResult){0};
    if (!check_signature(run, error))
        return FALSE;

    g_autoptr(CabackVerifyInventory) inv = NULL;
    if (options->with_db && (inv = take_inventory(run, error)) == NULL)
        return FALSE;

    g_autoptr(CabackVerifyReport) report = caback_verify_file(path, options->password, error);
    if (report == NULL) {
        if (run->hooks->read_failed != NULL)
            run->hooks->read_failed(path, error, run->hooks->data);
        return FALSE;
    }
    if (rec != NULL) {
        caback_log_record_set_file_sha256(rec, report->sha256);
        caback_log_record_set_integrity(rec, report->integrity);
    }
    say(run, CABACK_RUN_INFO, "integrity: %s", report->integrity);
    const char *signed_sha256 = result->signature_sha256;
    if (signed_sha256 != NULL && g_ascii_strcasecmp(signed_sha256, report->sha256) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%s changed while it was being verified (SHA-256 %s when its signature was "
                    "checked, %s in the drill); find out what writes to it, then verify again",
                    path, signed_sha256, report->sha256);
        return FALSE;
    }
    /* A file with neither MAC nor checked signature proves nothing about where it came from. */
    if (g_strcmp0(report->integrity, "none") == 0 && signed_sha256 == NULL &&
        !options->allow_unauthenticated) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%s is not authenticated: it has no MAC and no checked signature "
                    "(integrity: none), so anyone could have made it, with any certificate in "
                    "it; it is not a backup caback can vouch for. Verify it anyway with "
                    "--allow-unauthenticated (a restore then gives no certificate trust except "
                    "from -t NICKNAME=FLAGS)",
                    path);
        if (run->hooks->unauthenticated != NULL)
            run->hooks->unauthenticated(path, *error, run->hooks->data);
        return FALSE;
    }
    for (guint i = 0; rec != NULL && i < report->keys->len; i++) {
        const CabackVerifyKey *k = report->keys->pdata[i];
        caback_log_record_add_key(rec, k->nickname, k->id_known ? &k->id : NULL);
    }
    if (inv != NULL)
        caback_verify_compare(report, inv);
    caback_verify_judge(report, inv, options->allow_expired);
    if (options->recorded_sha256 != NULL &&
        g_ascii_strcasecmp(options->recorded_sha256, report->sha256) != 0) {
        g_ptr_array_add(report->problems,
                        g_strdup_printf("%s changed after caback backup recorded it as the newest "
                                        "backup: its SHA-256 is %s, the record says %s",
                                        path, report->sha256, options->recorded_sha256));
        report->restorable = FALSE;
    }
    if (options->max_age >= 0)
        check_max_age(options->max_age, report);
    result->report = g_steal_pointer(&report);
    return TRUE;
}
