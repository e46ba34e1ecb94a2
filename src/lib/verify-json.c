/* The JSON object of caback verify --json (see verify.h): the file, the drill's keys and
 * certificates, expiry, the comparison with the database, the findings. Pure formatting over the
 * report caback_verify_run made. */
#include "config.h"

#include <caback/digest.h>
#include <caback/json.h>
#include <caback/verify.h>

static char *date_text(GDateTime *t)
{
    return t != NULL ? g_date_time_format(t, "%Y-%m-%dT%H:%M:%SZ") : NULL;
}

char *caback_verify_key_id_text(gboolean known, const CabackKeyId *id, GBytes *ckaid)
{
    if (known)
        return caback_keyid_to_token_hex(id);
    if (ckaid == NULL)
        return NULL;
    gsize len;
    const guint8 *data = g_bytes_get_data(ckaid, &len);
    return caback_keyid_bytes_to_hex(data, len);
}

/* A key's two forms of its ID (see caback_verify_key_id_text). */
static void json_key_id(CabackJson *json, gboolean known, const CabackKeyId *id, GBytes *ckaid)
{
    g_autofree char *nss_id = caback_verify_key_id_text(known, id, ckaid);
    g_autofree char *dogtag_id = known ? caback_keyid_to_token_dogtag(id) : NULL;

    caback_json_string(json, "nss_id", nss_id);
    caback_json_string(json, "dogtag_id", dogtag_id);
}

static void json_items(CabackJson *json, const char *key, const GPtrArray *items)
{
    caback_json_begin_array(json, key);
    for (guint i = 0; i < items->len; i++) {
        const CabackVerifyItem *it = items->pdata[i];
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "type", it->kind);
        caback_json_string(json, "nickname", it->nickname);
        json_key_id(json, it->id_known, &it->id, it->ckaid); /* null for a certificate */
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
        json_key_id(json, k->id_known, &k->id, NULL);
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

void caback_verify_report_json_members(CabackJson *json, const CabackVerifyReport *r,
                                       const CabackVerifyResult *vs)
{
    g_autofree char *absolute = g_canonicalize_filename(r->path, NULL);

    caback_json_string(json, "file", absolute);
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
}

/* For --json when the drill could not even start: the same object, with what is known. */
char *caback_verify_failure_json(const char *path, const GError *error)
{
    g_autoptr(CabackJson) json = caback_json_new();
    /* Read again only a regular file: a FIFO written once would block here for ever. */
    g_autofree char *sha = g_file_test(path, G_FILE_TEST_IS_REGULAR)
                               ? caback_digest_file_sha256_hex(path, NULL)
                               : NULL;

    g_autofree char *absolute = g_canonicalize_filename(path, NULL);

    caback_json_begin_object(json, NULL);
    caback_json_string(json, "file", absolute);
    caback_json_string(json, "sha256", sha);
    caback_json_bool(json, "restorable", FALSE);
    caback_json_string(json, "error", error != NULL ? error->message : NULL);
    caback_json_end_object(json);
    return g_strdup(caback_json_text(json));
}
