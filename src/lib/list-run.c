/* caback list's workflow and its JSON document (see list.h): the file read in an NSS context
 * without databases, and every certificate, key and CRL it holds as JSON members. */
#include "config.h"

#include <caback/error.h>
#include <caback/json.h>
#include <caback/list.h>
#include <caback/names.h>
#include <caback/restore-run.h>

#include <nss.h>
#include <string.h>

gboolean caback_list_run(const CabackListOptions *options, const CabackListHooks *hooks,
                         GError **error)
{
    static const CabackListHooks none = {0};
    const CabackListHooks *h = hooks != NULL ? hooks : &none;

    /* No database: NSS's internal slot only (session objects, nothing written). */
    NSSInitContext *nss =
        NSS_InitContext("", "", "", "", NULL,
                        NSS_INIT_READONLY | NSS_INIT_NOCERTDB | NSS_INIT_NOMODDB |
                            NSS_INIT_FORCEOPEN | NSS_INIT_NOROOTINIT | NSS_INIT_OPTIMIZESPACE);
    if (nss == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot start NSS without a database");
        return FALSE;
    }
    gboolean ok = FALSE;
    {
        g_autoptr(CabackP12File) file = NULL;
        g_autoptr(CabackRestorePlan) plan = caback_restore_read(
            options->path, options->password, &options->password_source, &file, error);
        if (plan == NULL) {
            if (h->read_failed != NULL)
                h->read_failed(options->path, error, h->data);
        } else {
            if (h->listed != NULL)
                h->listed(plan, caback_p12_file_info(file), h->data);
            ok = TRUE;
        }
    }
    if (NSS_ShutdownContext(nss) != SECSuccess && ok) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "NSS did not shut down cleanly (a reference was leaked; this is a "
                             "bug in caback, please report it)");
        ok = FALSE;
    }
    return ok;
}

char *caback_list_name_problem(const CabackP12Attributes *attrs)
{
    if (attrs->friendly_name == NULL || attrs->friendly_name_flaws == 0)
        return NULL;
    g_autofree char *flaws = caback_name_flaws_text(attrs->friendly_name_flaws);
    return g_strdup_printf("holds %s (shown escaped); restore uses it as a nickname only with "
                           "--rename, cleaned to \"%s\"",
                           flaws, attrs->friendly_name_clean);
}

char *caback_list_local_key_id(const CabackP12Attributes *attrs)
{
    if (attrs->local_key_id == NULL)
        return NULL;
    gsize len;
    const guint8 *data = g_bytes_get_data(attrs->local_key_id, &len);
    GString *s = g_string_sized_new(2 * len + 1);
    for (gsize i = 0; i < len; i++)
        g_string_append_printf(s, "%02x", data[i]);
    return g_string_free(s, FALSE);
}

static char *time_iso(GDateTime *t)
{
    return t != NULL ? g_date_time_format(t, "%Y-%m-%dT%H:%M:%SZ") : NULL;
}

/* The iteration count at the end of a codec description ("..., 600000 iterations"), or -1. */
static gint64 iterations_in(const char *description)
{
    if (description == NULL)
        return -1;
    const char *p = strstr(description, " iterations");
    if (p == NULL)
        return -1;
    const char *start = p;
    while (start > description && g_ascii_isdigit(start[-1]))
        start--;
    if (start == p)
        return -1;
    return g_ascii_strtoll(start, NULL, 10);
}

static void json_iterations(CabackJson *json, const char *description)
{
    gint64 it = iterations_in(description);
    caback_json_int_or_null(json, "iterations", it >= 0, it);
}

static void json_names(CabackJson *json, guint index, const CabackP12Attributes *attrs)
{
    g_autofree char *problem = caback_list_name_problem(attrs);

    caback_json_int(json, "index", index);
    caback_json_string(json, "friendly_name", attrs->friendly_name);
    caback_json_string(json, "friendly_name_problem", problem);
}

/* "file": how the file is protected. */
static void json_file(CabackJson *json, const CabackRestorePlan *plan, const CabackP12Info *info)
{
    caback_json_begin_object(json, "file");
    caback_json_string(json, "path", plan->path);
    caback_json_string(json, "integrity", caback_p12_integrity(info));
    caback_json_string(json, "mac", info->mac);
    caback_json_int_or_null(json, "mac_iterations", info->mac != NULL, info->mac_iterations);
    caback_json_begin_array(json, "safes");
    for (guint i = 0; i < info->safes->len; i++) {
        const char *d = info->safes->pdata[i];
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "protection", d);
        json_iterations(json, d);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
    caback_json_strings(json, "warnings", info->warnings);
    caback_json_end_object(json);
}

static void json_cert(CabackJson *json, guint index, const CabackRestoreCert *c)
{
    g_autofree char *nb = time_iso(c->not_before);
    g_autofree char *na = time_iso(c->not_after);
    g_autofree char *lkid = caback_list_local_key_id(&c->bag->attrs);
    /* the same flags as certutil -L shows them once restored with the key */
    g_autofree char *trust =
        caback_restore_trust_as_certutil(c->bag->attrs.trust_flags, c->key_index >= 0);

    caback_json_begin_object(json, NULL);
    json_names(json, index, &c->bag->attrs);
    caback_json_string(json, "subject", c->subject);
    caback_json_string(json, "issuer", c->issuer);
    caback_json_string(json, "serial", c->serial_decimal);
    caback_json_string(json, "serial_hex", c->serial_hex);
    caback_json_string(json, "not_before", nb);
    caback_json_string(json, "not_after", na);
    g_autofree char *fingerprint = caback_restore_cert_fingerprint(c);
    caback_json_string(json, "sha256_fingerprint", fingerprint);
    caback_json_bool(json, "ca", c->is_ca);
    caback_json_bool(json, "self_signed", c->self_signed);
    caback_restore_json_weak_key(json, c->weak, c->weak_reason);
    caback_json_string(json, "trust_flags", c->bag->attrs.trust_flags);
    caback_json_string(json, "trust", trust);
    caback_json_string(json, "nickname", c->bag->attrs.friendly_name);
    caback_json_bool(json, "key_in_file", c->key_index >= 0);
    caback_json_int_or_null(json, "key_index", c->key_index >= 0, c->key_index);
    caback_json_string(json, "local_key_id", lkid);
    caback_json_string(json, "protection", c->bag->protection);
    json_iterations(json, c->bag->protection);
    caback_json_end_object(json);
}

static void json_key(CabackJson *json, guint index, const CabackRestoreKey *k)
{
    g_autofree char *lkid = caback_list_local_key_id(&k->bag->attrs);
    g_autofree char *nss_id = k->id_known ? caback_keyid_to_nss(&k->id) : NULL;
    g_autofree char *dogtag_id = k->id_known ? caback_keyid_to_dogtag(&k->id) : NULL;

    caback_json_begin_object(json, NULL);
    json_names(json, index, &k->bag->attrs);
    /* Never null: a key NSS cannot hold has its own type ("ed25519", else "unknown"). */
    caback_json_string(json, "type", k->type_name);
    caback_json_string(json, "algorithm_oid", k->bag->algorithm_oid);
    caback_json_bool(json, "importable", k->type != nullKey);
    caback_json_int_or_null(json, "size", k->bits > 0, k->bits);
    caback_restore_json_weak_key(json, k->weak, k->weak_reason);
    caback_json_string(json, "id", nss_id);
    caback_json_string(json, "nss_id", nss_id);
    caback_json_string(json, "nickname", k->bag->attrs.friendly_name);
    caback_json_string(json, "dogtag_id", dogtag_id);
    caback_json_int_or_null(json, "certificate_index", k->cert_index >= 0, k->cert_index);
    caback_json_string(json, "paired_by", k->pairing);
    caback_json_string(json, "local_key_id", lkid);
    caback_json_bool(json, "shrouded", k->bag->shrouded);
    caback_json_string(json, "protection", k->bag->protection);
    json_iterations(json, k->bag->protection);
    caback_json_string(json, "problem", k->problem);
    caback_json_end_object(json);
}

void caback_list_json_members(CabackJson *json, const CabackRestorePlan *plan,
                              const CabackP12Info *info)
{
    caback_json_string(json, "integrity", caback_p12_integrity(info));
    json_file(json, plan, info);
    caback_json_begin_array(json, "certificates");
    for (guint i = 0; i < plan->certs->len; i++)
        json_cert(json, i, plan->certs->pdata[i]);
    caback_json_end_array(json);
    caback_json_begin_array(json, "keys");
    for (guint i = 0; i < plan->keys->len; i++)
        json_key(json, i, plan->keys->pdata[i]);
    caback_json_end_array(json);
    caback_json_bool(json, "certs_only", plan->keys->len == 0 && plan->certs->len > 0);
    caback_json_begin_array(json, "crls");
    for (guint i = 0; i < plan->crls->len; i++) {
        const CabackP12Crl *crl = plan->crls->pdata[i];
        caback_json_begin_object(json, NULL);
        caback_json_int(json, "index", i);
        caback_json_string(json, "friendly_name", crl->attrs.friendly_name);
        caback_json_int(json, "size", (gint64)g_bytes_get_size(crl->der));
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
}
