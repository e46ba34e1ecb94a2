/* The JSON object of caback backup --json (see backup.h): the file, the database and token, the
 * keys and certificates written, the algorithms, the verification, custody and warnings. Pure
 * formatting over what caback_backup_run did. */
#include "config.h"

#include <caback/backup.h>
#include <caback/custody-flow.h>
#include <caback/json.h>

char *caback_backup_run_json(const CabackBackupRunOptions *o, const CabackBackupResult *s)
{
    const CabackBackupSelection *sel = s->selection;
    const char *keys_alg, *certs_alg, *mac;
    guint iterations = caback_backup_describe_options(&o->write, &keys_alg, &certs_alg, &mac);
    g_autoptr(CabackJson) json = caback_json_new();
    g_autofree char *absolute = g_canonicalize_filename(o->output, NULL);

    caback_json_begin_object(json, NULL);
    caback_json_string(json, "file", absolute);
    caback_json_string(json, "database", o->db->dir);
    caback_json_string(json, "token", sel->token_name);
    caback_json_begin_array(json, "keys");
    for (guint i = 0; i < sel->keys->len; i++) {
        const CabackBackupKey *k = sel->keys->pdata[i];
        g_autofree char *hex = caback_key_info_nss_id(k->info);
        g_autofree char *dogtag = caback_key_info_dogtag_id(k->info);
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "nickname", k->nickname);
        caback_json_string(json, "nss_id", hex);
        caback_json_string(json, "dogtag_id", dogtag);
        caback_json_string(json, "subject", k->cert->subject);
        caback_json_string(json, "type", k->info->type);
        caback_json_int_or_null(json, "size", k->info->size_bits > 0, k->info->size_bits);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
    caback_json_begin_array(json, "certificates");
    for (guint i = 0; i < sel->certs->len; i++) {
        const CabackBackupCert *c = sel->certs->pdata[i];
        g_autofree char *hex = c->key != NULL ? caback_key_info_nss_id(c->key->info) : NULL;
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "nickname", c->nickname);
        caback_json_string(json, "subject", c->subject);
        caback_json_string(json, "trust", c->trust);
        caback_json_bool(json, "has_key", c->key != NULL);
        caback_json_string(json, "nss_id", hex);
        caback_json_bool(json, "chain_only", !c->selected);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
    caback_json_string(json, "profile",
                       o->write.profile == CABACK_P12_LEGACY ? "legacy" : "modern");
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
    if (o->custody_threshold > 0)
        caback_custody_json(json, o->custody_threshold, o->custodians, s->share_files);
    /* What the run cost in password-based key derivations (writing and checking together): the
     * figure the benchmark's floor is made of. */
    caback_json_int(json, "key_derivations", caback_p12_derivations());
    if (s->verified) {
        caback_json_begin_object(json, "verification");
        caback_json_int(json, "keys", s->report.keys);
        caback_json_int(json, "certificates", s->report.certs);
        caback_json_string(json, "mac", s->report.mac);
        caback_json_end_object(json);
    }
    caback_json_strings(json, "warnings", sel->warnings);
    caback_json_end_object(json);
    return g_strdup(caback_json_text(json));
}
