/* caback restore's text as the command shows it: the plan, the summary of a restore that changed
 * the database, the key IDs for CS.cfg, and the hooks that show a run. The --json document is
 * the library's (caback_restore_run_json); cmd-restore.c parses the options and runs the
 * restore. */
#include "config.h"

#include "cli-log.h"
#include "cli-restore.h"
#include "cli.h"

#include <caback/keys.h>

#include <string.h>

static char *key_text(const CabackRestoreKey *k)
{
    if (k->type == nullKey)
        return g_strdup("(type NSS cannot import)");
    if (k->bits > 0)
        return g_strdup_printf("%s %u", k->type_name, k->bits);
    return g_strdup(k->type_name);
}

/* The certificates --replace moves aside from @c's nickname, and what becomes of their keys. */
static void print_replaced(const CabackRestoreCert *c)
{
    for (guint j = 0; c->replaced != NULL && j < c->replaced->len; j++) {
        const CabackRestoreReplaced *r = c->replaced->pdata[j];
        g_autofree char *nss_id = r->key_id_known ? caback_keyid_to_nss(&r->key_id) : NULL;
        g_autofree char *dogtag_id = r->key_id_known ? caback_keyid_to_dogtag(&r->key_id) : NULL;
        if (!r->has_key)
            caback_cli_info("            old certificate serial 0x%s (%s) leaves the "
                            "name; it has no private key",
                            r->serial_hex, r->subject);
        else
            caback_cli_info("            old certificate serial 0x%s (%s) leaves the "
                            "name; its private key %s (CS.cfg form %s) stays in the "
                            "database%s",
                            r->serial_hex, r->subject, nss_id != NULL ? nss_id : "(unknown ID)",
                            dogtag_id != NULL ? dogtag_id : "?",
                            r->key_kept_in_use ? " and is the restored certificate's key too"
                                               : ", without a certificate (an orphan; see caback "
                                                 "listkeys)");
    }
}

static void print_plan_cert(const CabackRestoreCert *c)
{
    const char *word = c->action == CABACK_RESTORE_CONFLICT ? "CONFLICT"
                                                            : caback_restore_action_name(c->action);
    g_autofree char *trust = caback_restore_display_trust(c);

    switch (c->action) {
    case CABACK_RESTORE_ADD:
    case CABACK_RESTORE_RENAME:
    case CABACK_RESTORE_REPLACE:
        caback_cli_info("  %-9s certificate \"%s\", trust %s (%s)", word, c->nickname, trust,
                        c->trust_source);
        caback_cli_info("            subject %s, serial 0x%s; nickname from %s", c->subject,
                        c->serial_hex, c->nickname_source);
        if (c->note != NULL)
            caback_cli_info("            %s", c->note);
        print_replaced(c);
        break;
    case CABACK_RESTORE_TRUST:
        caback_cli_info("  %-9s certificate \"%s\": %s to %s (%s)", word, c->nickname, c->note,
                        trust, c->trust_source);
        break;
    case CABACK_RESTORE_SKIP:
    case CABACK_RESTORE_CONFLICT:
        caback_cli_info("  %-9s certificate \"%s\": %s", word, c->nickname, c->note);
        break;
    }
    if (c->weak != CABACK_WEAK_KEY_NONE && c->duplicate_of < 0)
        caback_cli_info("            WEAK KEY: %s%s", c->weak_reason,
                        c->weak_refused ? "; CA trust refused (--allow-weak-keys accepts it)" : "");
}

static void print_plan_key(const CabackRestoreKey *k)
{
    const char *word = k->action == CABACK_RESTORE_CONFLICT ? "CONFLICT"
                                                            : caback_restore_action_name(k->action);
    g_autofree char *type = key_text(k);
    g_autofree char *owner =
        k->nickname != NULL ? g_strdup_printf("\"%s\"", k->nickname) : g_strdup("(no name)");
    g_autofree char *nss_id = k->id_known ? caback_keyid_to_nss(&k->id) : NULL;

    caback_cli_info("  %-9s key %s %s of %s%s%s", word, type,
                    nss_id != NULL ? nss_id : "(ID unknown)", owner,
                    k->note != NULL ? ": " : "", k->note != NULL ? k->note : "");
    if (k->weak != CABACK_WEAK_KEY_NONE && k->duplicate_of < 0)
        caback_cli_info("            WEAK KEY: %s", k->weak_reason);
}

void caback_cli_restore_print_plan(const CabackRestorePlan *plan, const CabackDb *db,
                                   gboolean would_create)
{
    if (would_create)
        caback_cli_info("Restore plan for %s into a new NSS database %s (--create):", plan->path,
                        db->dir);
    else
        caback_cli_info("Restore plan for %s into NSS database %s, token \"%s\":", plan->path,
                        db->dir, db->token_name);
    for (guint i = 0; i < plan->certs->len; i++)
        print_plan_cert(plan->certs->pdata[i]);
    for (guint i = 0; i < plan->keys->len; i++)
        print_plan_key(plan->keys->pdata[i]);
    for (guint i = 0; i < plan->notes->len; i++)
        caback_cli_info("  note: %s", (const char *)plan->notes->pdata[i]);
}

/* NSS cannot ask a token for an extractable key when it unwraps one (PK11_UnwrapPrivKey has no
 * CKA_EXTRACTABLE), and tokens such as SoftHSM2 then make it not extractable: say so, since a
 * later caback backup of this token will refuse these keys. */
static void warn_locked_keys(const CabackRestorePlan *plan, CabackDb *db)
{
    g_autoptr(GPtrArray) keys = caback_keys_list(db, NULL);
    guint locked = 0;

    for (guint i = 0; keys != NULL && i < keys->len; i++) {
        const CabackKeyInfo *info = keys->pdata[i];
        for (guint j = 0; j < plan->keys->len; j++) {
            const CabackRestoreKey *k = plan->keys->pdata[j];
            if (k->action == CABACK_RESTORE_ADD && k->id_known &&
                g_bytes_get_size(info->raw_id) == CABACK_KEYID_LEN &&
                memcmp(g_bytes_get_data(info->raw_id, NULL), k->id.bytes, CABACK_KEYID_LEN) == 0 &&
                info->extractable == 0)
                locked++;
        }
    }
    if (locked > 0)
        caback_cli_warning("token \"%s\" made %u of the restored keys not extractable (its own "
                           "default for imported keys; NSS cannot ask for extractable ones): "
                           "caback backup cannot read them back from this token, so keep the "
                           "PKCS#12 file, or back the token up with its vendor's tool",
                           db->token_name, locked);
}

void caback_cli_restore_print_key_ids(const CabackRestorePlan *plan, CabackLogRecord *rec)
{
    gboolean any = FALSE;

    for (guint i = 0; i < plan->keys->len; i++) {
        const CabackRestoreKey *k = plan->keys->pdata[i];
        if (!k->id_known || k->action == CABACK_RESTORE_CONFLICT || k->duplicate_of >= 0)
            continue;
        g_autofree char *nss_id = caback_keyid_to_nss(&k->id);
        if (!any)
            caback_cli_info("Key IDs (certutil -K form, then the CS.cfg form):");
        any = TRUE;
        if (!k->cert_found) {
            /* Not a CS.cfg key ID, whatever its name says: nothing shows what it is the key of. */
            g_autofree char *label =
                k->nickname != NULL ? g_strdup_printf("\"%s\"", k->nickname) : g_strdup("no name");
            caback_cli_info("  key without certificate (%s)", label);
            caback_cli_info("      %s", nss_id);
            caback_cli_info("      no certificate for it in the file or the database: not a "
                            "CS.cfg key ID");
            continue;
        }
        const char *tag = caback_restore_cscfg_tag(k->nickname);
        caback_cli_info("  %s", k->nickname != NULL ? k->nickname : "(key without certificate)");
        g_autofree char *dogtag_id = caback_keyid_to_dogtag(&k->id);
        caback_cli_info("      %s", nss_id);
        if (tag != NULL)
            caback_cli_info("      cloning.%s.privkey.id=%s", tag, dogtag_id);
        else
            caback_cli_info("      %s", dogtag_id);
        if (caback_keyid_dogtag_legacy_problem(&k->id))
            caback_cli_log_warning(rec,
                                   "the CS.cfg form of key %s (%s) is shorter than 20 bytes: "
                                   "Dogtag before 10.5.6 cannot match it to the key (10.5.6 and "
                                   "later can)",
                                   nss_id, k->nickname != NULL ? k->nickname : "no name");
    }
}

void caback_cli_restore_print_restored(const CabackRestoreRun *run, gboolean non_extractable,
                                       CabackLogRecord *rec)
{
    const CabackRestorePlan *plan = run->plan;
    guint certs = 0, keys = 0, checked = 0, key_only = 0;

    for (guint i = 0; i < plan->certs->len; i++) {
        const CabackRestoreCert *c = plan->certs->pdata[i];
        certs += c->action != CABACK_RESTORE_SKIP && c->action != CABACK_RESTORE_TRUST;
    }
    for (guint i = 0; i < plan->keys->len; i++) {
        const CabackRestoreKey *k = plan->keys->pdata[i];
        keys += k->action == CABACK_RESTORE_ADD;
        checked += k->pair_checked;
        key_only += k->action == CABACK_RESTORE_ADD && k->cert_index < 0;
    }
    caback_cli_info("Restored %u certificate(s) and %u key(s) into NSS database %s.", certs, keys,
                    run->db->dir);
    if (keys > 0 && !PK11_IsInternalKeySlot(run->db->slot) && !non_extractable)
        warn_locked_keys(plan, run->db);
    if (checked > 0)
        caback_cli_info("%u certificate and key pair(s) checked: each key signs a test "
                        "value its certificate verifies.",
                        checked);
    if (key_only > 0)
        caback_cli_warning("%u key(s) came without a certificate in the file; they "
                           "could not be checked against one, and a key whose "
                           "certificate is not in the database either is not given a "
                           "CS.cfg key ID",
                           key_only);
    caback_cli_restore_print_key_ids(plan, rec);
}


gboolean caback_cli_restore_print_outcome(const CabackRestoreRun *run, const char *path,
                                          gboolean skip_unsupported, gboolean non_extractable,
                                          CabackLogRecord *rec)
{
    switch (run->outcome) {
    case CABACK_RESTORE_OUTCOME_REFUSED:
    case CABACK_RESTORE_OUTCOME_CONFLICT:
        return TRUE;
    case CABACK_RESTORE_OUTCOME_PLANNED:
        caback_cli_info("Dry run: nothing was changed (%u change(s) and %u conflict(s) "
                        "planned).",
                        run->plan->changes, run->plan->conflicts);
        return TRUE;
    case CABACK_RESTORE_OUTCOME_UNCHANGED:
        caback_cli_info("Nothing to do: everything in %s is already in the database%s.", path,
                        skip_unsupported ? " or skipped (--skip-unsupported; see the notes)" : "");
        caback_cli_restore_print_key_ids(run->plan, rec);
        return TRUE;
    case CABACK_RESTORE_OUTCOME_RESTORED:
        caback_cli_restore_print_restored(run, non_extractable, rec);
        return TRUE;
    default:
        return FALSE;
    }
}

static void on_read_failed(const char *path, const char *sha256, GError **error, gpointer data)
{
    const CabackCliRestoreView *view = data;
    caback_cli_explain_p12_failure(path, sha256, view->log_path, error);
}

static void on_planned(const CabackRestoreRun *run, gpointer data)
{
    const CabackCliRestoreView *view = data;
    if (!view->json)
        caback_cli_restore_print_plan(run->plan, run->db, run->would_create);
}

static void json_members(CabackJson *json, gconstpointer data)
{
    caback_restore_run_json_members(json, data);
}

static void on_finished(const CabackRestoreRun *run, gpointer data)
{
    const CabackCliRestoreView *view = data;

    if (!caback_cli_restore_print_outcome(run, view->path, view->skip_unsupported,
                                          view->non_extractable, view->rec) ||
        !view->json)
        return;
    /* A success is streamed (the plan of a file of many certificates is large); a refusal's
     * envelope carries an error the run words after this, so its object is kept whole. */
    if (caback_restore_run_succeeds(run))
        caback_cli_json_stream_result("restore", NULL, json_members, run, FALSE);
    else
        caback_cli_json_print_take(caback_restore_run_json(run));
}

CabackRestoreHooks caback_cli_restore_hooks(CabackCliRestoreView *view)
{
    return (CabackRestoreHooks){caback_cli_show_message, on_read_failed, on_planned, on_finished,
                                view};
}
