/* The JSON document of a restore (see restore-run.h): the file, its signature and date, the
 * database, the outcome, and the plan's certificates, keys and notes, as caback restore --json
 * prints it. Pure formatting over what caback_restore_run decided. */
#include "config.h"

#include <caback/json.h>
#include <caback/keyid.h>
#include <caback/names.h>
#include <caback/restore-run.h>
#include <caback/weak-key.h>

const char *caback_restore_outcome_name(CabackRestoreOutcome outcome)
{
    switch (outcome) {
    case CABACK_RESTORE_OUTCOME_REFUSED:
        return "refused";
    case CABACK_RESTORE_OUTCOME_PLANNED:
        return "planned";
    case CABACK_RESTORE_OUTCOME_CONFLICT:
        return "conflict";
    case CABACK_RESTORE_OUTCOME_UNCHANGED:
        return "unchanged";
    case CABACK_RESTORE_OUTCOME_RESTORED:
        return "restored";
    case CABACK_RESTORE_OUTCOME_NONE:
        break;
    }
    return NULL;
}

char *caback_restore_display_trust(const CabackRestoreCert *c)
{
    if (c->action == CABACK_RESTORE_SKIP)
        return g_strdup(c->trust);
    return caback_restore_trust_as_certutil(c->trust, c->key_index >= 0);
}

void caback_restore_json_weak_key(CabackJson *json, CabackWeakKey weak, const char *reason)
{
    caback_json_string(json, "weak_key", reason);
    caback_json_string(json, "weak_key_rule",
                       weak != CABACK_WEAK_KEY_NONE ? caback_weak_key_name(weak) : NULL);
}

/* The certificates a --replace takes the nickname from. */
static void json_replaced(CabackJson *json, const GPtrArray *replaced)
{
    caback_json_begin_array(json, "replaced");
    for (guint j = 0; replaced != NULL && j < replaced->len; j++) {
        const CabackRestoreReplaced *r = replaced->pdata[j];
        g_autofree char *nss_id = r->key_id_known ? caback_keyid_to_nss(&r->key_id) : NULL;
        g_autofree char *dogtag_id = r->key_id_known ? caback_keyid_to_dogtag(&r->key_id) : NULL;
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "nickname", r->nickname);
        caback_json_string(json, "subject", r->subject);
        caback_json_string(json, "serial_hex", r->serial_hex);
        caback_json_string(json, "serial", r->serial_hex);
        caback_json_string(json, "trust", r->trust);
        caback_json_string(json, "key_id", nss_id);
        caback_json_string(json, "key_dogtag_id", dogtag_id);
        caback_json_string(json, "nss_id", nss_id);
        caback_json_string(json, "dogtag_id", dogtag_id);
        caback_json_bool(json, "key_kept", r->has_key);
        caback_json_bool(json, "key_in_use", r->key_kept_in_use);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
}

static void json_cert(CabackJson *json, const CabackRestoreCert *c)
{
    g_autofree char *trust = caback_restore_display_trust(c);
    g_autofree char *flaws = c->bag->attrs.friendly_name_flaws != 0
                                 ? caback_name_flaws_text(c->bag->attrs.friendly_name_flaws)
                                 : NULL;

    caback_json_begin_object(json, NULL);
    caback_json_int(json, "index", c->index);
    caback_json_string(json, "nickname", c->nickname);
    caback_json_string(json, "nickname_source", c->nickname_source);
    caback_json_string(json, "friendly_name", c->bag->attrs.friendly_name);
    caback_json_string(json, "friendly_name_problem", flaws);
    caback_json_string(json, "action", caback_restore_action_name(c->action));
    caback_json_string(json, "subject", c->subject);
    caback_json_string(json, "serial_hex", c->serial_hex);
    caback_json_string(json, "serial", c->serial_hex);
    caback_json_string(json, "trust", trust);
    caback_json_string(json, "trust_source", c->trust_source);
    caback_json_string(json, "old_trust", c->old_trust);
    caback_json_bool(json, "key_in_file", c->key_index >= 0);
    caback_json_string(json, "note", c->note);
    caback_restore_json_weak_key(json, c->weak, c->weak_reason);
    caback_json_bool(json, "weak_key_refused", c->weak_refused);
    json_replaced(json, c->replaced);
    caback_json_end_object(json);
}

static void json_key(CabackJson *json, const CabackRestoreKey *k)
{
    const char *tag = k->cert_found ? caback_restore_cscfg_tag(k->nickname) : NULL;
    g_autofree char *nss_id = k->id_known ? caback_keyid_to_nss(&k->id) : NULL;
    g_autofree char *dogtag_id = k->id_known ? caback_keyid_to_dogtag(&k->id) : NULL;

    caback_json_begin_object(json, NULL);
    caback_json_int(json, "index", k->index);
    caback_json_string(json, "nickname", k->nickname);
    caback_json_string(json, "action", caback_restore_action_name(k->action));
    caback_json_string(json, "type", k->type_name);
    caback_json_int_or_null(json, "size", k->bits > 0, k->bits);
    caback_json_string(json, "id", nss_id);
    caback_json_string(json, "nss_id", nss_id);
    caback_json_string(json, "dogtag_id", dogtag_id);
    caback_json_printf(json, "cscfg",
                       tag != NULL && dogtag_id != NULL ? "cloning.%s.privkey.id=%s" : NULL, tag,
                       dogtag_id);
    caback_json_int_or_null(json, "certificate_index", k->cert_index >= 0, k->cert_index);
    caback_json_bool(json, "certificate_found", k->cert_found);
    caback_json_bool(json, "pair_checked", k->pair_checked);
    caback_json_string(json, "note", k->note);
    caback_restore_json_weak_key(json, k->weak, k->weak_reason);
    caback_json_end_object(json);
}

/* The signature step's members, and the backup's date. */
static void json_signature_date(CabackJson *json, const CabackRestoreRun *run)
{
    const CabackRestorePlan *plan = run->plan;
    const CabackRestoreSignature *sc = &run->signature;
    const CabackRestoreBackupDate *bd = &run->date;
    const CabackBackupRecord *newer = bd->freshness.newer;

    caback_json_string(json, "signature", sc->exists ? sc->path : NULL);
    caback_json_bool(json, "signature_checked", sc->checked);
    caback_json_string(json, "signature_status", sc->status_word);
    caback_json_printf(json, "signature_line", sc->status != NULL ? "signature: %s" : NULL,
                       sc->status);
    caback_json_string(json, "integrity",
                       plan->file != NULL ? caback_p12_integrity(caback_p12_file_info(plan->file))
                                          : NULL);
    caback_json_string(json, "signers", sc->signers);
    caback_json_string(json, "signing_time", sc->signing_time);
    caback_json_string(json, "signature_checked_at", sc->checked_at);
    caback_json_bool(json, "signature_at_signing_time", sc->at_signing_time);
    caback_json_string(json, "backup_time", bd->time);
    caback_json_string(json, "backup_time_source", bd->source);
    if (newer == NULL) {
        caback_json_null(json, "newer_backup");
        return;
    }
    caback_json_begin_object(json, "newer_backup");
    caback_json_string(json, "file", newer->file);
    caback_json_string(json, "time", newer->time);
    caback_json_string(json, "sha256", newer->sha256);
    caback_json_string(json, "database", newer->database);
    caback_json_end_object(json);
}

void caback_restore_run_json_members(CabackJson *json, const CabackRestoreRun *run)
{
    const CabackRestorePlan *plan = run->plan;
    g_autofree char *absolute = g_canonicalize_filename(plan->path, NULL);

    caback_json_string(json, "file", absolute);
    caback_json_string(json, "sha256", plan->sha256);
    json_signature_date(json, run);
    caback_json_string(json, "database", run->db->dir);
    caback_json_string(json, "token", run->db->token_name);
    caback_json_bool(json, "dry_run", run->options->dry_run);
    caback_json_bool(json, "created", run->created);
    caback_json_string(json, "result", caback_restore_outcome_name(run->outcome));
    caback_json_int(json, "conflicts", plan->conflicts);
    caback_json_int(json, "changes", plan->changes);
    caback_json_int(json, "weak_key_refusals", plan->weak_refusals);
    caback_json_begin_array(json, "certificates");
    for (guint i = 0; i < plan->certs->len; i++)
        json_cert(json, plan->certs->pdata[i]);
    caback_json_end_array(json);
    caback_json_begin_array(json, "keys");
    for (guint i = 0; i < plan->keys->len; i++)
        json_key(json, plan->keys->pdata[i]);
    caback_json_end_array(json);
    caback_json_strings(json, "notes", plan->notes);
}

char *caback_restore_run_json(const CabackRestoreRun *run)
{
    g_autoptr(CabackJson) json = caback_json_new();

    caback_json_begin_object(json, NULL);
    caback_restore_run_json_members(json, run);
    caback_json_end_object(json);
    return caback_json_steal_text(json); /* no copy: large for many certificates */
}
