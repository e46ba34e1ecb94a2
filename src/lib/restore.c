/* caback restore / list: the facts of a PKCS#12 file, the restore plan against an NSS database,
 * and the import with all-or-nothing undo. Every NSS reference taken here is released before
 * returning, so that caback_db_close shuts NSS down cleanly. */
#include "config.h"

#include <caback/progress.h>
#include <caback/atomic-file.h>
#include <caback/digest.h>
#include <caback/db-lock.h>
#include <caback/error.h>
#include <caback/keys.h>
#include <caback/names.h>
#include <caback/nss-util.h>
#include <caback/parallel.h>
#include <caback/plan-index.h>
#include <caback/restore.h>
#include <caback/stored-key-check.h>

#include <certdb.h>
#include <hasht.h>
#include <pk11pub.h>
#include <pkcs11.h>
#include <pkcs11n.h>
#include <prprf.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <secasn1.h>
#include <secerr.h>
#include <secmod.h>
#include <string.h>
#include <unistd.h>

/* ---- small helpers ---- */

static char *hex_bytes(const guint8 *data, gsize len, const char *separator, gboolean upper)
{
    GString *s = g_string_sized_new(3 * len + 1);

    for (gsize i = 0; i < len; i++) {
        if (i > 0 && separator != NULL)
            g_string_append(s, separator);
        g_string_append_printf(s, upper ? "%02X" : "%02x", data[i]);
    }
    return g_string_free(s, FALSE);
}

/* The decimal form of an unsigned big-endian integer (serial numbers have up to 20 bytes). */
static char *decimal_of(const guint8 *data, gsize len)
{
    g_autofree guint8 *n = g_memdup2(data, len);
    GString *digits = g_string_new(NULL);
    gboolean zero;

    do {
        guint rem = 0;
        zero = TRUE;
        for (gsize i = 0; i < len; i++) {
            guint v = (rem << 8) | n[i];
            n[i] = (guint8)(v / 10);
            rem = v % 10;
            if (n[i] != 0)
                zero = FALSE;
        }
        g_string_prepend_c(digits, (char)('0' + rem));
    } while (!zero);
    return g_string_free(digits, FALSE);
}

static GDateTime *datetime_of(PRTime t)
{
    return g_date_time_new_from_unix_utc(t / PR_USEC_PER_SEC);
}

/* NSS prints certificates of the internal token as "NSS Certificate DB:nick" in some paths;
 * certutil -n and CS.cfg take the bare nickname there. */
static char *usable_nickname(PK11SlotInfo *slot, const char *nickname)
{
    if (nickname == NULL)
        return NULL;
    if (slot != NULL && PK11_IsInternalKeySlot(slot)) {
        const char *token = PK11_GetTokenName(slot);
        gsize n = strlen(token);
        if (strncmp(nickname, token, n) == 0 && nickname[n] == ':')
            return g_strdup(nickname + n + 1);
    }
    return g_strdup(nickname);
}

/* The name NSS looks a nickname up by on @slot: bare on the internal token, "TOKEN:nick"
 * elsewhere. */
static char *lookup_name(PK11SlotInfo *slot, const char *nickname)
{
    if (PK11_IsInternalKeySlot(slot))
        return g_strdup(nickname);
    return g_strdup_printf("%s:%s", PK11_GetTokenName(slot), nickname);
}

/* The value NSS derives a key's CKA_ID from (see PK11_MakeIDFromPubKey and its users). */
static GBytes *public_value_of(const SECKEYPublicKey *pub)
{
    const SECItem *item = NULL;

    switch (pub->keyType) {
    case rsaKey:
    case rsaPssKey:
    case rsaOaepKey:
        item = &pub->u.rsa.modulus;
        break;
    case dsaKey:
        item = &pub->u.dsa.publicValue;
        break;
    case dhKey:
        item = &pub->u.dh.publicValue;
        break;
    case ecKey:
        item = &pub->u.ec.publicValue;
        break;
    default:
        return NULL;
    }
    if (item->data == NULL || item->len == 0)
        return NULL;
    return g_bytes_new(item->data, item->len);
}

static gboolean id_of_public_value(GBytes *value, CabackKeyId *id)
{
    gsize len;
    const guint8 *data = g_bytes_get_data(value, &len);
    SECItem item = {siBuffer, (unsigned char *)data, (unsigned int)len};
    g_autoptr(SECItem) hash = PK11_MakeIDFromPubKey(&item);

    return hash != NULL && caback_keyid_from_bytes(hash->data, hash->len, id, NULL);
}

/* " (\"name\")" after a bag number in messages, or "" when the bag has no friendlyName. */
static char *bag_label(const CabackP12Attributes *attrs)
{
    if (attrs->friendly_name == NULL)
        return g_strdup("");
    return g_strdup_printf(" (\"%s\")", attrs->friendly_name);
}

/* ---- plan lifetime ---- */

static void replaced_free(CabackRestoreReplaced *r)
{
    g_free(r->nickname);
    g_free(r->subject);
    g_free(r->serial_hex);
    g_bytes_unref(r->der);
    g_free(r->trust);
    g_free(r->key_nss_id);
    g_free(r->key_dogtag_id);
    g_free(r);
}

static void cert_free(CabackRestoreCert *c)
{
    if (c->cert != NULL)
        CERT_DestroyCertificate(c->cert);
    g_free(c->subject);
    g_free(c->issuer);
    g_free(c->serial_hex);
    g_free(c->serial_decimal);
    g_clear_pointer(&c->not_before, g_date_time_unref);
    g_clear_pointer(&c->not_after, g_date_time_unref);
    g_free(c->sha256);
    g_clear_pointer(&c->public_value, g_bytes_unref);
    g_free(c->nickname);
    g_free(c->nickname_source);
    g_free(c->trust);
    g_free(c->trust_source);
    g_free(c->note);
    g_clear_pointer(&c->replaced, g_ptr_array_unref);
    g_free(c->old_trust);
    g_free(c->weak_reason);
    g_free(c);
}

static void key_free(CabackRestoreKey *k)
{
    g_free(k->pairing);
    g_clear_pointer(&k->public_value, g_bytes_unref);
    g_free(k->nss_id);
    g_free(k->dogtag_id);
    g_free(k->problem);
    g_free(k->nickname);
    g_free(k->note);
    g_free(k->weak_reason);
    g_free(k);
}

/* What planning looks up for each certificate, made once per plan. */
struct CabackRestorePlanning {
    CabackPlanIndex *nicknames; /* the certificates planned so far, by nickname */
    /* What the database holds (every token), listed once: a DER or a nickname (ASCII case
     * folded, whole and after "TOKEN:") that no certificate of it has cannot be found by NSS's
     * lookups either, so NSS is asked only about those that may be there. NULL without a
     * database. (One query per certificate of the file was most of the time of planning a
     * large file.) */
    GHashTable *db_ders;
    GHashTable *db_nicknames;
};

static void planning_free(struct CabackRestorePlanning *p)
{
    if (p == NULL)
        return;
    caback_plan_index_free(p->nicknames);
    if (p->db_ders != NULL)
        g_hash_table_unref(p->db_ders);
    if (p->db_nicknames != NULL)
        g_hash_table_unref(p->db_nicknames);
    g_free(p);
}

static void add_nickname_forms(GHashTable *set, const char *nickname)
{
    if (nickname == NULL)
        return;
    g_hash_table_add(set, g_ascii_strdown(nickname, -1));
    const char *colon = strchr(nickname, ':');
    if (colon != NULL)
        g_hash_table_add(set, g_ascii_strdown(colon + 1, -1));
}

static void planning_list_db(struct CabackRestorePlanning *p, CabackDb *db)
{
    p->db_ders = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
                                       (GDestroyNotify)g_bytes_unref, NULL);
    p->db_nicknames = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(CERTCertList) list = PK11_ListCerts(PK11CertListAll, db);
    for (CERTCertListNode *node = list != NULL ? CERT_LIST_HEAD(list) : NULL;
         node != NULL && !CERT_LIST_END(node, list); node = CERT_LIST_NEXT(node)) {
        CERTCertificate *cert = node->cert;
        g_hash_table_add(p->db_ders, g_bytes_new(cert->derCert.data, cert->derCert.len));
        add_nickname_forms(p->db_nicknames, cert->nickname);
        add_nickname_forms(p->db_nicknames, node->appData);
    }
}

/* FALSE when the database listed before planning has no certificate with these bytes. */
static gboolean db_may_have_der(CabackRestorePlan *plan, const guint8 *der, gsize len)
{
    if (plan->planning == NULL || plan->planning->db_ders == NULL)
        return TRUE;
    g_autoptr(GBytes) key = g_bytes_new_static(der, len);
    return g_hash_table_contains(plan->planning->db_ders, key);
}

/* FALSE when no certificate of the database listed before planning has this nickname (or its
 * form with the token's name), in any case. */
static gboolean db_may_have_nickname(CabackRestorePlan *plan, const char *name)
{
    if (plan->planning == NULL || plan->planning->db_nicknames == NULL)
        return TRUE;
    g_autoptr(GHashTable) forms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    add_nickname_forms(forms, name);
    GHashTableIter iter;
    gpointer form;
    g_hash_table_iter_init(&iter, forms);
    while (g_hash_table_iter_next(&iter, &form, NULL))
        if (g_hash_table_contains(plan->planning->db_nicknames, form))
            return TRUE;
    return FALSE;
}

void caback_restore_plan_free(CabackRestorePlan *plan)
{
    if (plan == NULL)
        return;
    g_free(plan->path);
    g_free(plan->sha256);
    g_ptr_array_unref(plan->certs);
    g_ptr_array_unref(plan->keys);
    g_ptr_array_unref(plan->crls);
    g_ptr_array_unref(plan->notes);
    planning_free(plan->planning);
    g_free(plan);
}

static void plan_note(CabackRestorePlan *plan, const char *format, ...) G_GNUC_PRINTF(2, 3);
static void plan_note(CabackRestorePlan *plan, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    g_ptr_array_add(plan->notes, g_strdup_vprintf(format, args));
    va_end(args);
}

/* ---- inspect ---- */

static gboolean describe_cert(CabackRestorePlan *plan, CabackRestoreCert *c, GError **error)
{
    gsize len;
    const guint8 *der = g_bytes_get_data(c->bag->der, &len);
    SECItem item = {siBuffer, (unsigned char *)der, (unsigned int)len};
    g_autofree char *label = bag_label(&c->bag->attrs);

    c->cert = __CERT_DecodeDERCertificate(&item, PR_FALSE, NULL);
    if (c->cert == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_PKCS12,
                             "%s: certificate %u%s is not a valid X.509 certificate; the file "
                             "is damaged or was not written by a PKCS#12 tool",
                             plan->path, c->index + 1, label);
        return FALSE;
    }
    CERTCertificate *cert = c->cert;
    c->subject = g_strdup(cert->subjectName != NULL ? cert->subjectName : "");
    c->issuer = g_strdup(cert->issuerName != NULL ? cert->issuerName : "");

    /* Serial: drop the sign byte(s) DER adds, as openssl and certutil print it. */
    const guint8 *s = cert->serialNumber.data;
    gsize slen = cert->serialNumber.len;
    while (slen > 1 && s[0] == 0) {
        s++;
        slen--;
    }
    c->serial_hex = hex_bytes(s, slen, NULL, TRUE);
    c->serial_decimal = decimal_of(s, slen);

    PRTime nb, na;
    if (CERT_GetCertTimes(cert, &nb, &na) == SECSuccess) {
        c->not_before = datetime_of(nb);
        c->not_after = datetime_of(na);
    }
    guint8 digest[32];
    if (PK11_HashBuf(SEC_OID_SHA256, digest, der, (PRInt32)len) == SECSuccess)
        c->sha256 = hex_bytes(digest, sizeof digest, ":", TRUE);

    c->self_signed = SECITEM_ItemsAreEqual(&cert->derSubject, &cert->derIssuer);
    CERTBasicConstraints bc;
    SECItem bc_ext = {siBuffer, NULL, 0};
    if (CERT_FindCertExtension(cert, SEC_OID_X509_BASIC_CONSTRAINTS, &bc_ext) == SECSuccess) {
        c->is_ca = CERT_DecodeBasicConstraintValue(&bc, &bc_ext) == SECSuccess && bc.isCA;
        SECITEM_FreeItem(&bc_ext, PR_FALSE);
    } else
        /* Version 1 roots have no extensions at all; a self-signed one is a CA. */
        c->is_ca = c->self_signed && cert->version.len == 0;

    SECItem ku = {siBuffer, NULL, 0};
    gboolean has_ku = CERT_FindKeyUsageExtension(cert, &ku) == SECSuccess;
    guint8 ku_bits = has_ku && ku.len > 0 ? ku.data[0] : 0;
    SECITEM_FreeItem(&ku, PR_FALSE);
    SECItem eku = {siBuffer, NULL, 0};
    gboolean has_eku = CERT_FindCertExtension(cert, SEC_OID_X509_EXT_KEY_USAGE, &eku) == SECSuccess;
    SECITEM_FreeItem(&eku, PR_FALSE);
    c->audit_signing = caback_restore_is_audit_signing(c->bag->attrs.friendly_name, c->is_ca,
                                                       has_ku, ku_bits, has_eku);

    c->weak = caback_weak_key_check_spki(&cert->subjectPublicKeyInfo, &c->weak_reason);
    g_autoptr(SECKEYPublicKey) pub = CERT_ExtractPublicKey(cert);
    if (pub != NULL)
        c->public_value = public_value_of(pub);
    if (c->public_value != NULL)
        c->id_known = id_of_public_value(c->public_value, &c->id);
    return TRUE;
}

/* NSS's name for the dotted OID @dotted ("ED25519 Curve"...), or NULL when it has none. */
static char *oid_name(const char *dotted)
{
    SECItem oid = {siBuffer, NULL, 0};

    if (dotted == NULL || SEC_StringToOID(NULL, &oid, dotted, 0) != SECSuccess)
        return NULL;
    SECOidData *data = SECOID_FindOID(&oid);
    SECITEM_FreeItem(&oid, PR_FALSE);
    return data != NULL && data->desc != NULL ? g_strdup(data->desc) : NULL;
}

/* Decrypt @k into a session object of NSS's internal slot: only to learn its public half. The
 * CKA_ID it gets there does not matter (the object dies with the reference). */
static SECKEYPrivateKey *probe_key(CabackRestorePlan *plan, CabackRestoreKey *k, GError **error)
{
    static const guint8 probe_id[] = "caback probe";
    SECItem value = {siBuffer, (unsigned char *)probe_id, sizeof probe_id - 1};
    g_autoptr(PK11SlotInfo) slot = PK11_GetInternalSlot();

    return caback_p12_key_import(plan->file, k->bag, slot, NULL, &value, FALSE, FALSE, NULL, error);
}

static void pair(CabackRestorePlan *plan, CabackRestoreKey *k, CabackRestoreCert *c,
                 const char *how)
{
    (void)plan;
    k->cert_index = (gint)c->index;
    c->key_index = (gint)k->index;
    k->pairing = g_strdup(how);
}

static gboolean same_bytes(GBytes *a, GBytes *b)
{
    return a != NULL && b != NULL && g_bytes_equal(a, b);
}

/* Pair key bags with certificate bags: by localKeyID (what every writer sets), then by
 * friendlyName, then for what is left by the key itself (its public value, or a signature its
 * certificate's public key verifies). */
static gboolean cert_unpaired(gpointer item, gpointer data)
{
    (void)data;
    return ((CabackRestoreCert *)item)->key_index < 0;
}

static void index_add_bytes(CabackPlanIndex *index, GBytes *key, gpointer item)
{
    caback_plan_index_add_bytes(index, key, item);
}

static gpointer index_next_bytes(CabackPlanIndex *index, GBytes *key)
{
    gsize len;
    const void *data = g_bytes_get_data(key, &len);
    return caback_plan_index_next(index, data, len, cert_unpaired, NULL);
}

/* Pair key bags with certificate bags: by localKeyID (what every writer sets), then by
 * friendlyName, then for what is left by the key itself (its public value, or a signature its
 * certificate's public key verifies). Each key takes the first unpaired certificate (in file
 * order) that matches; the certificates are looked up by index, not scanned. */
static gboolean pair_bags(CabackRestorePlan *plan, GError **error)
{
    g_autoptr(CabackPlanIndex) by_local_id = caback_plan_index_new();
    g_autoptr(CabackPlanIndex) by_name = caback_plan_index_new();
    g_autoptr(CabackPlanIndex) by_public = caback_plan_index_new();
    g_autoptr(GPtrArray) no_public = g_ptr_array_new(); /* certificates without public value */
    for (guint j = 0; j < plan->certs->len; j++) {
        CabackRestoreCert *c = plan->certs->pdata[j];
        if (c->bag->attrs.local_key_id != NULL)
            index_add_bytes(by_local_id, c->bag->attrs.local_key_id, c);
        else
            caback_plan_index_add_string(by_name, c->bag->attrs.friendly_name, c);
        if (c->public_value != NULL)
            index_add_bytes(by_public, c->public_value, c);
        else
            g_ptr_array_add(no_public, c);
    }

    for (guint i = 0; i < plan->keys->len; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        CabackRestoreCert *c = k->bag->attrs.local_key_id != NULL
                                   ? index_next_bytes(by_local_id, k->bag->attrs.local_key_id)
                                   : NULL;
        if (c != NULL)
            pair(plan, k, c, "localKeyID");
    }
    for (guint i = 0; i < plan->keys->len; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        const char *name = k->bag->attrs.friendly_name;
        if (k->cert_index >= 0 || name == NULL)
            continue;
        CabackRestoreCert *c =
            caback_plan_index_next(by_name, name, strlen(name), cert_unpaired, NULL);
        if (c != NULL)
            pair(plan, k, c, "friendlyName");
    }

    for (guint i = 0; i < plan->keys->len; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        if (k->cert_index >= 0) {
            CabackRestoreCert *c = plan->certs->pdata[k->cert_index];
            if (c->public_value != NULL)
                k->public_value = g_bytes_ref(c->public_value);
            continue;
        }
        if (k->type == nullKey)
            continue;
        g_autoptr(GError) local = NULL;
        g_autoptr(SECKEYPrivateKey) probe = probe_key(plan, k, &local);
        if (probe == NULL) {
            if (g_error_matches(local, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD)) {
                g_propagate_error(error, g_steal_pointer(&local));
                return FALSE;
            }
            k->problem =
                g_strdup_printf("cannot be decrypted to find its public key: %s", local->message);
            continue;
        }
        g_autoptr(SECKEYPublicKey) pub = SECKEY_ConvertToPublicKey(probe);
        if (pub != NULL) {
            k->public_value = public_value_of(pub);
            k->weak = caback_weak_key_check(pub, &k->weak_reason);
        }
        /* NSS 3.87 keeps no point with an EC private key: its PKCS#8 may carry it. */
        g_autoptr(GError) no_point = NULL;
        if (k->public_value == NULL && k->type == ecKey)
            k->public_value = caback_p12_key_public_value(plan->file, k->bag, &no_point);
        /* The first unpaired certificate in file order with this public value, unless one
         * before it, whose public value is unknown, passes the signature test. Without the
         * key's public value, every unpaired certificate is tested in turn. */
        CabackRestoreCert *same =
            k->public_value != NULL ? index_next_bytes(by_public, k->public_value) : NULL;
        GPtrArray *tested = k->public_value != NULL ? no_public : plan->certs;
        for (guint j = 0; k->cert_index < 0 && j < tested->len; j++) {
            CabackRestoreCert *c = tested->pdata[j];
            if (same != NULL && c->index > same->index)
                break;
            if (c->key_index >= 0)
                continue;
            g_autoptr(SECKEYPublicKey) cpub = CERT_ExtractPublicKey(c->cert);
            gboolean pairs = FALSE;
            if (cpub != NULL && cpub->keyType == probe->keyType &&
                caback_key_pairs_with(probe, cpub, &pairs, NULL, NULL) && pairs)
                pair(plan, k, c, "public key");
        }
        if (k->cert_index < 0 && same != NULL)
            pair(plan, k, same, "public key");
        if (k->cert_index >= 0) {
            CabackRestoreCert *c = plan->certs->pdata[k->cert_index];
            if (c->public_value != NULL) {
                g_clear_pointer(&k->public_value, g_bytes_unref);
                k->public_value = g_bytes_ref(c->public_value);
            }
        }
        if (k->public_value == NULL && no_point != NULL && k->problem == NULL)
            k->problem = g_strdup(no_point->message);
    }
    return TRUE;
}

CabackRestorePlan *caback_restore_inspect(CabackP12File *file, const char *path, GError **error)
{
    g_autoptr(CabackRestorePlan) plan = g_new0(CabackRestorePlan, 1);
    plan->file = file;
    plan->path = g_strdup(path);
    plan->certs = g_ptr_array_new_with_free_func((GDestroyNotify)cert_free);
    plan->keys = g_ptr_array_new_with_free_func((GDestroyNotify)key_free);
    plan->crls = g_ptr_array_ref(caback_p12_file_crls(file));
    plan->notes = g_ptr_array_new_with_free_func(g_free);

    GPtrArray *certs = caback_p12_file_certs(file);
    for (guint i = 0; i < certs->len; i++) {
        CabackRestoreCert *c = g_new0(CabackRestoreCert, 1);
        c->index = i;
        c->bag = certs->pdata[i];
        c->key_index = -1;
        c->duplicate_of = -1;
        g_ptr_array_add(plan->certs, c);
        if (!describe_cert(plan, c, error))
            return NULL;
    }

    g_autoptr(PK11SlotInfo) slot = PK11_GetInternalSlot();
    GPtrArray *keys = caback_p12_file_keys(file);
    for (guint i = 0; i < keys->len; i++) {
        CabackRestoreKey *k = g_new0(CabackRestoreKey, 1);
        k->index = i;
        k->bag = keys->pdata[i];
        k->cert_index = -1;
        k->duplicate_of = -1;
        g_ptr_array_add(plan->keys, k);

        g_autoptr(GError) local = NULL;
        if (!caback_p12_key_describe(file, k->bag, slot, &k->type, &k->bits, &local)) {
            g_autofree char *label = bag_label(&k->bag->attrs);
            g_propagate_prefixed_error(error, g_steal_pointer(&local), "%s: key %u%s: ", path,
                                       i + 1, label);
            return NULL;
        }
        k->type_name = caback_keys_type_name(k->type);
        if (k->type == nullKey) {
            /* Named as users know it ("Ed25519"), typed for JSON ("ed25519"), never null. */
            const char *known = NULL;
            gboolean named = caback_p12_key_algorithm(k->bag->algorithm_oid, &known, &k->type_name);
            g_autofree char *name = named ? g_strdup(known) : oid_name(k->bag->algorithm_oid);
            k->problem =
                g_strdup_printf("its algorithm (%s%sOID %s) is not one NSS can import",
                                name ? name : "", name ? ", " : "",
                                k->bag->algorithm_oid != NULL ? k->bag->algorithm_oid : "unknown");
        }
    }

    if (!pair_bags(plan, error))
        return NULL;

    for (guint i = 0; i < plan->keys->len; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        if (k->public_value != NULL)
            k->id_known = id_of_public_value(k->public_value, &k->id);
        if (k->id_known) {
            k->nss_id = caback_keyid_to_nss(&k->id);
            k->dogtag_id = caback_keyid_to_dogtag(&k->id);
        } else if (k->problem == NULL) {
            k->problem = g_strdup("its public key (and so its NSS key ID) cannot be determined "
                                  "without its certificate");
        }
    }

    /* A key with its certificate in the file is as weak as the certificate's public key. */
    for (guint i = 0; i < plan->keys->len; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        if (k->cert_index < 0)
            continue;
        CabackRestoreCert *c = plan->certs->pdata[k->cert_index];
        g_free(k->weak_reason);
        k->weak = c->weak;
        k->weak_reason = g_strdup(c->weak_reason);
    }

    /* A renewed certificate may keep its key: both certificates have the one key bag (the
     * first key bag with its key ID). */
    g_autoptr(CabackPlanIndex) keys_by_id = caback_plan_index_new();
    for (guint j = 0; j < plan->keys->len; j++) {
        CabackRestoreKey *k = plan->keys->pdata[j];
        if (k->id_known)
            caback_plan_index_add(keys_by_id, k->id.bytes, CABACK_KEYID_LEN, k);
    }
    for (guint i = 0; i < plan->certs->len; i++) {
        CabackRestoreCert *c = plan->certs->pdata[i];
        if (c->key_index >= 0 || !c->id_known)
            continue;
        CabackRestoreKey *k = caback_plan_index_first(keys_by_id, c->id.bytes, CABACK_KEYID_LEN);
        if (k != NULL)
            c->key_index = (gint)k->index;
    }
    return g_steal_pointer(&plan);
}

/* Read @path into memory (any kind of file, a pipe too), in a buffer wiped when freed: a file
 * without encryption holds private keys in clear. A file above the input size limit is refused
 * before it is read. */
static CabackSecret *read_whole_file(const char *path, GError **error)
{
    return caback_p12_load_file(path, "PKCS#12 file", error);
}

static CabackRestorePlan *read_with(const CabackSecret *data, const char *path,
                                    const CabackSecret *password, CabackP12File **file,
                                    GError **error)
{
    g_autoptr(CabackP12File) f =
        caback_p12_read((const guint8 *)data->data, data->len, password, path, error);
    if (f == NULL)
        return NULL;
    CabackRestorePlan *plan = caback_restore_inspect(f, path, error);
    if (plan == NULL)
        return NULL;
    /* The digest of these very bytes, so that a signature checked on the file by name can be
     * tied to what is restored even if the file changed in between. */
    guint8 digest[SHA256_LENGTH];
    if (PK11_HashBuf(SEC_OID_SHA256, digest, (const unsigned char *)data->data,
                     (PRInt32)data->len) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot compute the SHA-256 of %s", path);
        caback_restore_plan_free(plan);
        return NULL;
    }
    g_autoptr(GBytes) bytes = g_bytes_new(digest, sizeof digest);
    plan->sha256 = caback_digest_to_hex(bytes);
    *file = g_steal_pointer(&f);
    return plan;
}

CabackRestorePlan *caback_restore_read(const char *path, const CabackSecret *given,
                                       const CabackPasswordSource *source, CabackP12File **file,
                                       GError **error)
{
    g_autoptr(CabackSecret) data = read_whole_file(path, error);
    if (data == NULL)
        return NULL;
    return caback_restore_read_data(data, path, given, source, file, error);
}

CabackRestorePlan *caback_restore_read_data(const CabackSecret *data, const char *path,
                                            const CabackSecret *given,
                                            const CabackPasswordSource *source,
                                            CabackP12File **file, GError **error)
{
    g_autofree char *what = g_strdup_printf("password of PKCS#12 file %s", path);
    if (given != NULL)
        return read_with(data, path, given, file, error);
    if (source != NULL && (source->file != NULL || source->env_var != NULL)) {
        g_autoptr(CabackSecret) password = caback_p12_password_read(source, what, FALSE, error);
        if (password == NULL)
            return NULL;
        return read_with(data, path, password, file, error);
    }

    /* No password given: a file made without one opens without asking; any other is asked for
     * once. */
    g_autoptr(GError) local = NULL;
    g_autoptr(CabackSecret) empty = caback_secret_new("", 0);
    CabackRestorePlan *plan = read_with(data, path, empty, file, &local);
    if (plan != NULL || !g_error_matches(local, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD)) {
        if (local != NULL)
            g_propagate_error(error, g_steal_pointer(&local));
        return plan;
    }
    CabackPasswordSource prompt = {.file = NULL, .env_var = NULL, .no_prompt = FALSE};
    g_autoptr(GError) asked = NULL;
    g_autoptr(CabackSecret) password = caback_p12_password_read(&prompt, what, FALSE, &asked);
    if (password == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NO_PASSWORD,
                    "%s is protected by a password (the empty one is not it); give it with -w "
                    "FILE or --p12-password-env VAR (%s)",
                    path, asked->message);
        return NULL;
    }
    return read_with(data, path, password, file, error);
}

/* ---- plan ---- */

/* One field of a trust string, in the order certutil -L prints the letters. */
static void trust_field(GString *s, unsigned int flags)
{
    if ((flags & CERTDB_VALID_CA) && !(flags & (CERTDB_TRUSTED_CA | CERTDB_TRUSTED_CLIENT_CA)))
        g_string_append_c(s, 'c');
    if ((flags & CERTDB_TERMINAL_RECORD) && !(flags & CERTDB_TRUSTED))
        g_string_append_c(s, 'p');
    if (flags & CERTDB_TRUSTED_CA)
        g_string_append_c(s, 'C');
    if (flags & CERTDB_TRUSTED_CLIENT_CA)
        g_string_append_c(s, 'T');
    if (flags & CERTDB_TRUSTED)
        g_string_append_c(s, 'P');
    if (flags & CERTDB_USER)
        g_string_append_c(s, 'u');
    if (flags & CERTDB_SEND_WARN)
        g_string_append_c(s, 'w');
    if (flags & CERTDB_INVISIBLE_CA)
        g_string_append_c(s, 'I');
    if (flags & CERTDB_GOVT_APPROVED_CA)
        g_string_append_c(s, 'G');
}

/* Trust flags as certutil -L prints them (NSS does not export its encoder). */
static char *trust_string(const CERTCertTrust *trust)
{
    GString *s = g_string_new(NULL);

    trust_field(s, trust->sslFlags);
    g_string_append_c(s, ',');
    trust_field(s, trust->emailFlags);
    g_string_append_c(s, ',');
    trust_field(s, trust->objectSigningFlags);
    return g_string_free(s, FALSE);
}

/* @flags in the canonical order, or NULL when it is not a trust string. */
static char *canonical_trust(const char *flags)
{
    CERTCertTrust trust;

    if (flags == NULL || CERT_DecodeTrustString(&trust, flags) != SECSuccess)
        return NULL;
    return trust_string(&trust);
}

char *caback_restore_trust_as_certutil(const char *trust, gboolean has_key)
{
    CERTCertTrust flags;

    if (trust == NULL)
        return NULL;
    if (CERT_DecodeTrustString(&flags, trust) != SECSuccess)
        return g_strdup(trust);
    if (has_key) {
        flags.sslFlags |= CERTDB_USER;
        flags.emailFlags |= CERTDB_USER;
        flags.objectSigningFlags |= CERTDB_USER;
    }
    return trust_string(&flags);
}

static char *trust_of(CERTCertificate *cert)
{
    CERTCertTrust trust;

    if (CERT_GetCertTrust(cert, &trust) != SECSuccess)
        return NULL;
    return trust_string(&trust);
}

/* The trust flags of @cert (on the token of @db) as NSS applies them. For a certificate on
 * another token, NSS keeps the trust with a copy of the certificate in the database's own token;
 * the CERTCertificate NSS returns shows the flags of whichever instance it read last, so the
 * copy's are read explicitly. */
static char *db_trust_of(CabackDb *db, CERTCertificate *cert)
{
    if (!PK11_IsInternalKeySlot(db->slot)) {
        g_autoptr(PK11SlotInfo) internal = PK11_GetInternalKeySlot();
        g_autoptr(CERTCertificate) copy =
            PK11_FindCertFromDERCertItem(internal, &cert->derCert, db);
        if (copy != NULL)
            return trust_of(copy);
    }
    return trust_of(cert);
}

/* TRUE when a certificate with @nickname exists on the token of @db. */
static gboolean nickname_taken(CabackRestorePlan *plan, CabackDb *db, const char *nickname)
{
    g_autofree char *name = lookup_name(db->slot, nickname);
    if (!db_may_have_nickname(plan, name) || !db_may_have_nickname(plan, nickname))
        return FALSE;
    g_autoptr(CERTCertList) list = PK11_FindCertsFromNickname(name, db);

    return list != NULL && !CERT_LIST_EMPTY(list);
}

static gboolean trust_equal(const char *a, const char *b);

/* TRUE when @flags store anything: "u" is never stored (NSS computes it from the key). */
static gboolean stores_trust(const char *flags)
{
    return flags != NULL && !trust_equal(flags, ",,");
}

/* A certificate restored into a token other than the internal one gets its trust flags the way
 * NSS's STAN_ChangeCertTrust gives them: a token that cannot hold NSS trust objects (SoftHSM and
 * most HSMs) makes NSS import a copy of the certificate, under the same nickname, into the
 * internal token and store the trust there. The internal token (softoken's sftkdb_checkConflicts)
 * refuses a certificate whose nickname another certificate with a different subject holds
 * (CKR_ATTRIBUTE_VALUE_INVALID, SEC_ERROR_BAD_DATA). The subject of such a certificate of the
 * internal token named @nickname, or NULL when none is in the way. */
static char *internal_name_clash(CabackRestorePlan *plan, CabackDb *db, CabackRestoreCert *c,
                                 const char *nickname)
{
    if (db == NULL || PK11_IsInternalKeySlot(db->slot) || c->internal_copy ||
        !stores_trust(c->trust) || !db_may_have_nickname(plan, nickname))
        return NULL;
    g_autoptr(PK11SlotInfo) internal = PK11_GetInternalKeySlot();
    g_autofree char *name = g_strdup_printf("%s:%s", PK11_GetTokenName(internal), nickname);
    g_autoptr(CERTCertList) list = PK11_FindCertsFromNickname(name, db);
    for (CERTCertListNode *node = list != NULL ? CERT_LIST_HEAD(list) : NULL;
         node != NULL && !CERT_LIST_END(node, list); node = CERT_LIST_NEXT(node)) {
        if (node->cert->slot != NULL && !PK11_IsInternalKeySlot(node->cert->slot) &&
            PK11_FindCertInSlot(internal, node->cert, db) == CK_INVALID_HANDLE)
            continue;
        if (!SECITEM_ItemsAreEqual(&node->cert->derSubject, &c->cert->derSubject))
            return g_strdup(node->cert->subjectName);
    }
    return NULL;
}

/* TRUE when a certificate of the file planned before @self has @nickname; *@same_subject says
 * whether the first such certificate has @self's subject. */
static gboolean planned_elsewhere(CabackRestorePlan *plan, CabackRestoreCert *self,
                                  const char *nickname, gboolean *same_subject)
{
    *same_subject = TRUE;
    CabackRestoreCert *o = plan->planning != NULL
                               ? caback_plan_index_first_string(plan->planning->nicknames, nickname)
                               : NULL;
    if (o == NULL || o == self)
        return FALSE;
    if (!SECITEM_ItemsAreEqual(&o->cert->derSubject, &self->cert->derSubject))
        *same_subject = FALSE;
    return TRUE;
}

/* The nickname a certificate without friendlyName gets: its subject's CN (the whole subject
 * when it has none), made unique among the database and the other certificates of the file. */
static char *nickname_from_subject(CabackRestorePlan *plan, CabackDb *db, CabackRestoreCert *c)
{
    char *cn = CERT_GetCommonName(&c->cert->subject);
    g_autofree char *base = g_strdup(cn != NULL && *cn != '\0' ? cn : c->subject);
    if (cn != NULL)
        PORT_Free(cn);

    for (guint n = 1;; n++) {
        g_autofree char *candidate = n == 1 ? g_strdup(base) : g_strdup_printf("%s (%u)", base, n);
        gboolean same_subject;
        gboolean in_file = planned_elsewhere(plan, c, candidate, &same_subject);
        if ((!in_file || same_subject) && (db == NULL || !nickname_taken(plan, db, candidate)))
            return g_steal_pointer(&candidate);
    }
}

static void add_replaced(CabackRestorePlan *plan, CabackDb *db, CabackRestoreCert *c,
                         const char *nickname)
{
    (void)plan;
    g_autofree char *name = lookup_name(db->slot, nickname);
    g_autoptr(CERTCertList) list = PK11_FindCertsFromNickname(name, db);

    c->replaced = g_ptr_array_new_with_free_func((GDestroyNotify)replaced_free);
    for (CERTCertListNode *node = list != NULL ? CERT_LIST_HEAD(list) : NULL;
         node != NULL && !CERT_LIST_END(node, list); node = CERT_LIST_NEXT(node)) {
        CERTCertificate *old = node->cert;
        CabackRestoreReplaced *r = g_new0(CabackRestoreReplaced, 1);
        r->nickname = g_strdup(nickname);
        r->subject = g_strdup(old->subjectName);
        r->serial_hex = hex_bytes(old->serialNumber.data, old->serialNumber.len, NULL, TRUE);
        r->der = g_bytes_new(old->derCert.data, old->derCert.len);
        r->trust = db_trust_of(db, old);
        g_autoptr(SECKEYPrivateKey) key = PK11_FindKeyByAnyCert(old, db);
        if (key != NULL) {
            r->has_key = TRUE;
            g_autoptr(SECItem) id = PK11_GetLowLevelKeyIDForPrivateKey(key);
            CabackKeyId kid;
            if (id != NULL && caback_keyid_from_bytes(id->data, id->len, &kid, NULL)) {
                r->key_nss_id = caback_keyid_to_nss(&kid);
                r->key_dogtag_id = caback_keyid_to_dogtag(&kid);
                r->key_kept_in_use = c->id_known && caback_keyid_equal(&kid, &c->id);
            }
        }
        g_ptr_array_add(c->replaced, r);
    }
}

/* TRUE when @a and @b set the same trust. The "u" flag is left out: NSS computes it from the
 * presence of the private key (it is never stored), and may report it on some fields only. */
static gboolean trust_equal(const char *a, const char *b)
{
    CERTCertTrust ta, tb;

    if (CERT_DecodeTrustString(&ta, a != NULL ? a : ",,") != SECSuccess ||
        CERT_DecodeTrustString(&tb, b != NULL ? b : ",,") != SECSuccess)
        return FALSE;
    return (ta.sslFlags & ~CERTDB_USER) == (tb.sslFlags & ~CERTDB_USER) &&
           (ta.emailFlags & ~CERTDB_USER) == (tb.emailFlags & ~CERTDB_USER) &&
           (ta.objectSigningFlags & ~CERTDB_USER) == (tb.objectSigningFlags & ~CERTDB_USER);
}

static void resolve_nickname_conflict(CabackRestorePlan *plan, CabackDb *db,
                                      const CabackRestoreOptions *options, CabackRestoreCert *c)
{
    switch (options != NULL ? options->on_conflict : CABACK_RESTORE_ON_CONFLICT_STOP) {
    case CABACK_RESTORE_ON_CONFLICT_STOP:
        c->action = CABACK_RESTORE_CONFLICT;
        c->note = g_strdup_printf("the database has a different certificate named \"%s\"; "
                                  "use --replace to give the name to the restored one, or "
                                  "--rename to restore it under another name",
                                  c->nickname);
        break;
    case CABACK_RESTORE_ON_CONFLICT_REPLACE:
        c->action = CABACK_RESTORE_REPLACE;
        add_replaced(plan, db, c, c->nickname);
        c->note = g_strdup_printf("takes the name \"%s\" from the certificate(s) the database "
                                  "has under it; their private keys stay in the database",
                                  c->nickname);
        break;
    case CABACK_RESTORE_ON_CONFLICT_RENAME: {
        g_autofree char *old = g_steal_pointer(&c->nickname);
        gboolean same_subject;
        for (guint n = 1;; n++) {
            g_autofree char *candidate = caback_restore_renamed(old, n);
            g_autofree char *clash = NULL;
            if (!nickname_taken(plan, db, candidate) &&
                !planned_elsewhere(plan, c, candidate, &same_subject) &&
                (clash = internal_name_clash(plan, db, c, candidate)) == NULL) {
                c->nickname = g_steal_pointer(&candidate);
                break;
            }
        }
        c->action = CABACK_RESTORE_RENAME;
        c->note = g_strdup_printf("the database has a different certificate named \"%s\"; "
                                  "restored as \"%s\"",
                                  old, c->nickname);
        break;
    }
    }
}

/* A certificate for another token whose trust NSS would put beside a copy in the internal token,
 * where a certificate with a different subject holds the nickname (see internal_name_clash): a
 * conflict found now, before any change, or with --rename another name free on both. */
static void check_internal_name(CabackRestorePlan *plan, CabackDb *db,
                                const CabackRestoreOptions *options, CabackRestoreCert *c)
{
    if (c->action == CABACK_RESTORE_CONFLICT)
        return;
    g_autofree char *clash = internal_name_clash(plan, db, c, c->nickname);
    if (clash == NULL)
        return;
    if (options != NULL && options->on_conflict == CABACK_RESTORE_ON_CONFLICT_RENAME) {
        g_autofree char *old = g_steal_pointer(&c->nickname);
        gboolean same_subject;
        for (guint n = 1;; n++) {
            g_autofree char *candidate = caback_restore_renamed(old, n);
            g_autofree char *other = NULL;
            if (!nickname_taken(plan, db, candidate) &&
                !planned_elsewhere(plan, c, candidate, &same_subject) &&
                (other = internal_name_clash(plan, db, c, candidate)) == NULL) {
                c->nickname = g_steal_pointer(&candidate);
                break;
            }
        }
        c->action = CABACK_RESTORE_RENAME;
        g_free(c->note);
        c->note = g_strdup_printf(
            "NSS keeps the trust of a certificate on token \"%s\" with a copy of it in the "
            "internal token, where a different certificate (%s) is named \"%s\"; restored as "
            "\"%s\"",
            PK11_GetTokenName(db->slot), clash, old, c->nickname);
        return;
    }
    c->action = CABACK_RESTORE_CONFLICT;
    g_free(c->note);
    c->note = g_strdup_printf(
        "NSS keeps the trust flags %s of a certificate on token \"%s\" with a copy of it, under "
        "the same nickname, in the database's internal token; there a different certificate "
        "(subject %s) is named \"%s\", and NSS refuses one nickname for two subjects. Use "
        "--rename to restore it under another name (--replace changes only token \"%s\"), or "
        "rename that certificate of the internal token first",
        c->trust, PK11_GetTokenName(db->slot), clash, c->nickname, PK11_GetTokenName(db->slot));
    g_clear_pointer(&c->replaced, g_ptr_array_unref);
}

/* NSS cannot hold two different certificates with the same issuer and serial number (a CA
 * installed twice with the same name issues them): such a certificate of the database must be
 * one --replace removes, otherwise restoring this one is a conflict. */
static void check_issuer_serial(CabackDb *db, CabackRestoreCert *c)
{
    CERTIssuerAndSN isn = {.derIssuer = c->cert->derIssuer, .serialNumber = c->cert->serialNumber};
    g_autoptr(CERTCertificate) clash = CERT_FindCertByIssuerAndSN(CERT_GetDefaultCertDB(), &isn);
    gsize len;
    const guint8 *der = g_bytes_get_data(c->bag->der, &len);

    if (clash == NULL || (clash->derCert.len == len && memcmp(clash->derCert.data, der, len) == 0))
        return;
    for (guint i = 0; c->replaced != NULL && i < c->replaced->len; i++) {
        CabackRestoreReplaced *r = c->replaced->pdata[i];
        if (g_bytes_get_size(r->der) == clash->derCert.len &&
            memcmp(g_bytes_get_data(r->der, NULL), clash->derCert.data, clash->derCert.len) == 0)
            return;
    }
    if (c->action == CABACK_RESTORE_CONFLICT)
        return; /* already refused, for its nickname */
    g_autofree char *nick = usable_nickname(db->slot, clash->nickname);
    c->action = CABACK_RESTORE_CONFLICT;
    g_free(c->note);
    c->note = g_strdup_printf(
        "the database has a different certificate with the same issuer and serial number 0x%s "
        "(nickname \"%s\"), and NSS cannot hold both; neither --rename nor --replace of "
        "another nickname can solve that: remove that certificate first if it is not needed "
        "(certutil -D -n \"%s\"; its key stays)",
        c->serial_hex, nick != NULL ? nick : "(none)", nick != NULL ? nick : "NICKNAME");
}

/* A certificate whose friendlyName has flaws (control characters, bidi overrides, a NUL, an
 * invalid encoding; names.h) and is not in the database yet: a conflict, unless --rename, which
 * restores it under the cleaned name (made unique as --rename makes names). */
static void plan_flawed_name(CabackRestorePlan *plan, CabackDb *db,
                             const CabackRestoreOptions *options, CabackRestoreCert *c)
{
    g_autofree char *flaws = caback_name_flaws_text(c->bag->attrs.friendly_name_flaws);
    const char *shown = c->bag->attrs.friendly_name;

    if (options == NULL || options->on_conflict != CABACK_RESTORE_ON_CONFLICT_RENAME) {
        c->action = CABACK_RESTORE_CONFLICT;
        c->note = g_strdup_printf("its friendlyName \"%s\" holds %s, so it is not used as an NSS "
                                  "nickname; use --rename to restore it as \"%s\"",
                                  shown, flaws, c->nickname);
        return;
    }
    gboolean same_subject;
    if ((db != NULL && nickname_taken(plan, db, c->nickname)) ||
        planned_elsewhere(plan, c, c->nickname, &same_subject)) {
        g_autofree char *base = g_steal_pointer(&c->nickname);
        for (guint n = 1;; n++) {
            g_autofree char *candidate = caback_restore_renamed(base, n);
            if ((db == NULL || !nickname_taken(plan, db, candidate)) &&
                !planned_elsewhere(plan, c, candidate, &same_subject)) {
                c->nickname = g_steal_pointer(&candidate);
                break;
            }
        }
    }
    c->action = CABACK_RESTORE_RENAME;
    c->note = g_strdup_printf("its friendlyName \"%s\" holds %s; restored under the cleaned "
                              "name \"%s\"",
                              shown, flaws, c->nickname);
}

/* The --trust flags given for a certificate named @friendly in the file or @nickname in the
 * plan, or NULL. */
static const char *trust_override(const CabackRestoreOptions *options, const char *friendly,
                                  const char *nickname)
{
    const char *t = NULL;

    if (options == NULL || options->trust == NULL)
        return NULL;
    if (friendly != NULL)
        t = g_hash_table_lookup(options->trust, friendly);
    if (t == NULL && nickname != NULL)
        t = g_hash_table_lookup(options->trust, nickname);
    return t;
}

/* @first_by_der: the first certificate of the file with each DER. */
static void plan_cert(CabackRestorePlan *plan, CabackDb *db, const CabackRestoreOptions *options,
                      CabackPlanIndex *first_by_der, CabackRestoreCert *c)
{
    gsize len;
    const guint8 *der = g_bytes_get_data(c->bag->der, &len);
    SECItem item = {siBuffer, (unsigned char *)der, (unsigned int)len};
    const char *friendly = c->bag->attrs.friendly_name;
    gboolean has_key = c->key_index >= 0;
    const char *explicit_trust = NULL, *explicit_source = NULL;

    /* pk12util writes the chain again with each certificate: a certificate the file already
     * had is restored once. */
    CabackRestoreCert *o = caback_plan_index_first(first_by_der, der, len);
    if (o != NULL && o->index < c->index) {
        c->nickname = g_strdup(o->nickname);
        c->nickname_source = g_strdup_printf("certificate %u of the file", o->index + 1);
        c->trust = g_strdup(o->trust);
        c->trust_source = g_strdup_printf("certificate %u of the file", o->index + 1);
        c->action = CABACK_RESTORE_SKIP;
        c->duplicate_of = (gint)o->index;
        c->note =
            g_strdup_printf("the same certificate as certificate %u of the file", o->index + 1);
        return;
    }

    g_autoptr(CERTCertificate) existing =
        db != NULL && db_may_have_der(plan, der, len)
            ? PK11_FindCertFromDERCertItem(db->slot, &item, db)
            : NULL;
    gboolean flawed = FALSE;
    if (existing != NULL) {
        g_autofree char *have = usable_nickname(db->slot, existing->nickname);
        c->nickname = g_strdup(have != NULL ? have : (friendly != NULL ? friendly : ""));
        c->nickname_source = g_strdup("already in the database");
    } else if (friendly != NULL && c->bag->attrs.friendly_name_flaws != 0) {
        /* Never a nickname as it is (names.h): the cleaned name, with --rename only. */
        flawed = TRUE;
        c->nickname = g_strdup(c->bag->attrs.friendly_name_clean);
        c->nickname_source = g_strdup("friendlyName, cleaned");
    } else if (friendly != NULL && *friendly != '\0') {
        gboolean same_subject;
        if (planned_elsewhere(plan, c, friendly, &same_subject) && !same_subject) {
            c->nickname = nickname_from_subject(plan, db, c);
            c->nickname_source = g_strdup_printf(
                "subject CN, made unique (another certificate of the file with a different "
                "subject has friendlyName \"%s\")",
                friendly);
        } else {
            c->nickname = g_strdup(friendly);
            c->nickname_source = g_strdup("friendlyName");
        }
    } else {
        c->nickname = nickname_from_subject(plan, db, c);
        c->nickname_source = g_strdup("subject CN, made unique (no friendlyName)");
    }

    /* The flags the user or the file asks for, if any. */
    gboolean unauthenticated = options != NULL && options->unauthenticated;
    explicit_trust = trust_override(options, friendly, c->nickname);
    if (explicit_trust != NULL)
        explicit_source = "--trust";
    else if (c->bag->attrs.trust_flags != NULL && !unauthenticated) {
        explicit_trust = c->bag->attrs.trust_flags;
        explicit_source = "Dogtag trust attribute in the file";
    }

    if (existing != NULL) {
        g_autofree char *old = db_trust_of(db, existing);
        /* Default trust never overrides what the database has; explicit trust does. */
        if (explicit_trust != NULL && !trust_equal(old, explicit_trust)) {
            c->action = CABACK_RESTORE_TRUST;
            c->old_trust = g_strdup(old != NULL ? old : ",,");
            c->trust = canonical_trust(explicit_trust);
            c->trust_source = g_strdup(explicit_source);
            c->note =
                g_strdup_printf("already in the database; its trust changes from %s", c->old_trust);
        } else {
            c->action = CABACK_RESTORE_SKIP;
            c->trust = g_strdup(old);
            c->trust_source = g_strdup("as in the database");
            /* On another token NSS names the certificate "TOKEN:nick". */
            const char *bare = c->nickname;
            gsize tlen = strlen(PK11_GetTokenName(db->slot));
            if (!PK11_IsInternalKeySlot(db->slot) &&
                strncmp(bare, PK11_GetTokenName(db->slot), tlen) == 0 && bare[tlen] == ':')
                bare += tlen + 1;
            if (friendly != NULL && g_strcmp0(friendly, bare) != 0)
                c->note = g_strdup_printf("already in the database as \"%s\" (the file calls "
                                          "it \"%s\"); left as it is",
                                          c->nickname, friendly);
            else
                c->note = g_strdup("already in the database, identical");
        }
        return;
    }

    if (explicit_trust != NULL) {
        c->trust = canonical_trust(explicit_trust);
        c->trust_source = g_strdup(explicit_source);
    } else if (unauthenticated) {
        c->trust = g_strdup(",,");
        c->trust_source = g_strdup("none: the file is not authenticated "
                                   "(--allow-unauthenticated); only -t NICKNAME=FLAGS gives trust");
    } else {
        const char *why;
        c->trust = g_strdup(caback_restore_default_trust(c->is_ca, c->self_signed, has_key,
                                                         c->audit_signing, &why));
        c->trust_source = g_strdup(why);
    }

    c->action = CABACK_RESTORE_ADD;
    if (flawed)
        plan_flawed_name(plan, db, options, c);
    if (db == NULL)
        return;
    /* Into another token: NSS applies one trust to a certificate, kept with its copy in the
     * internal token when that token holds it already. That trust is the certificate's: as for a
     * certificate already present, only explicit flags change it, and the plan says so. */
    if (!PK11_IsInternalKeySlot(db->slot)) {
        g_autoptr(PK11SlotInfo) internal = PK11_GetInternalKeySlot();
        g_autoptr(CERTCertificate) copy =
            db_may_have_der(plan, der, len) ? PK11_FindCertFromDERCertItem(internal, &item, db)
                                            : NULL;
        if (copy != NULL) {
            g_autofree char *old = trust_of(copy);
            c->internal_copy = TRUE;
            if (explicit_trust != NULL && !trust_equal(old, explicit_trust)) {
                c->old_trust = g_strdup(old != NULL ? old : ",,");
                g_autofree char *before = c->note;
                c->note = g_strdup_printf("%s%sthe internal token already holds this "
                                          "certificate, where NSS keeps its trust: the trust "
                                          "changes from %s",
                                          before != NULL ? before : "",
                                          before != NULL ? "; " : "", c->old_trust);
            } else {
                g_free(c->trust);
                g_free(c->trust_source);
                c->trust = g_strdup(old != NULL ? old : ",,");
                c->trust_source = g_strdup("as the internal token's copy of it has it, where NSS "
                                           "keeps its trust; left as it is");
            }
        }
    }
    if (!flawed && nickname_taken(plan, db, c->nickname))
        resolve_nickname_conflict(plan, db, options, c);
    check_internal_name(plan, db, options, c);
    check_issuer_serial(db, c);
}

static GHashTable *stored_public_key_ids(PK11SlotInfo *slot);

/* What the plan says of a key whose certificate is neither in the file nor in the database. */
#define KEY_WITHOUT_CERT                                                                           \
    "a key without certificate: neither the file nor the database has its certificate, so its "  \
    "ID is not one for CS.cfg, whatever its name"

/* The NSS key ID (certutil -K form) of the public value @value, or "?" when unknown. */
static char *id_text(GBytes *value)
{
    CabackKeyId id;

    if (value == NULL || !id_of_public_value(value, &id))
        return g_strdup("?");
    return caback_keyid_to_nss(&id);
}

/* Does the key of bag @k itself (not its certificate, from which its public value was taken)
 * have the public key of certificate @c? Decrypts the key into a session object to find out.
 * *@own receives the key's own public value when NSS shows it. FALSE with @error only for a wrong
 * password; a key that cannot be probed is taken as matching (the import checks it again). */
static gboolean file_key_matches(CabackRestorePlan *plan, CabackRestoreKey *k,
                                 CabackRestoreCert *c, gboolean *matches, GBytes **own,
                                 GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(SECKEYPrivateKey) probe = probe_key(plan, k, &local);

    *matches = TRUE;
    if (probe == NULL) {
        if (g_error_matches(local, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        return TRUE;
    }
    g_autoptr(SECKEYPublicKey) pub = SECKEY_ConvertToPublicKey(probe);
    if (pub != NULL)
        *own = public_value_of(pub);
    if (*own != NULL && c->public_value != NULL) {
        *matches = g_bytes_equal(*own, c->public_value);
        return TRUE;
    }
    g_autoptr(SECKEYPublicKey) cpub = CERT_ExtractPublicKey(c->cert);
    gboolean pairs = FALSE;
    if (cpub != NULL && caback_key_pairs_with(probe, cpub, &pairs, NULL, NULL))
        *matches = pairs;
    return TRUE;
}

/* Is there a certificate for key bag @k (which has none in the file) in @db: one with the key's
 * public value among the certificates named as the key is, or the certificate of @existing (the
 * database's key with the same ID)? */
static gboolean cert_in_db(CabackDb *db, CabackRestoreKey *k, SECKEYPrivateKey *existing)
{
    if (existing != NULL) {
        g_autoptr(CERTCertificate) cert = PK11_GetCertFromPrivateKey(existing);
        if (cert != NULL)
            return TRUE;
    }
    if (k->nickname == NULL || *k->nickname == '\0' || k->public_value == NULL)
        return FALSE;
    g_autofree char *name = lookup_name(db->slot, k->nickname);
    g_autoptr(CERTCertList) list = PK11_FindCertsFromNickname(name, db);
    for (CERTCertListNode *node = list != NULL ? CERT_LIST_HEAD(list) : NULL;
         node != NULL && !CERT_LIST_END(node, list); node = CERT_LIST_NEXT(node)) {
        g_autoptr(SECKEYPublicKey) pub = CERT_ExtractPublicKey(node->cert);
        g_autoptr(GBytes) value = pub != NULL ? public_value_of(pub) : NULL;
        if (same_bytes(value, k->public_value))
            return TRUE;
    }
    return FALSE;
}

/* A certificate whose public key NSS cannot decode (Ed25519... in NSS 3.87) cannot be stored
 * either: refused here, before any change, or skipped with --skip-unsupported. */
static gboolean plan_unsupported_cert(CabackRestorePlan *plan, const CabackRestoreOptions *options,
                                      CabackRestoreCert *c, GError **error)
{
    if (c->public_value != NULL || c->cert == NULL || c->action == CABACK_RESTORE_SKIP)
        return TRUE;
    char *oid = CERT_GetOidString(&c->cert->subjectPublicKeyInfo.algorithm.algorithm);
    const char *dotted = oid != NULL && g_str_has_prefix(oid, "OID.") ? oid + 4 : oid;
    const char *name = NULL, *type = NULL;
    gboolean named = caback_p12_key_algorithm(dotted, &name, &type);
    g_autofree char *problem = g_strdup_printf(
        "its public key algorithm (%s%sOID %s) is not one NSS can hold", named ? name : "",
        named ? ", " : "", dotted != NULL ? dotted : "unknown");
    if (oid != NULL)
        PR_smprintf_free(oid);
    if (options != NULL && options->skip_unsupported) {
        c->action = CABACK_RESTORE_SKIP;
        g_free(c->note);
        c->note = g_strdup_printf("not restored (--skip-unsupported): %s", problem);
        plan_note(plan, "certificate %u \"%s\" is skipped (--skip-unsupported): %s",
                  c->index + 1, c->nickname, problem);
        return TRUE;
    }
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                "%s: certificate %u \"%s\" cannot be restored: %s; nothing was changed "
                "(--skip-unsupported restores the rest without it)",
                plan->path, c->index + 1, c->nickname, problem);
    return FALSE;
}

/* @public_ids: the CKA_IDs of the public key objects on the token (NULL without a database);
 * @keys_by_id: the key bags of the file whose ID is known, by ID. */
static gboolean plan_key(CabackRestorePlan *plan, CabackDb *db, GHashTable *public_ids,
                         CabackPlanIndex *keys_by_id, const CabackRestoreOptions *options,
                         CabackRestoreKey *k, GError **error)
{
    CabackRestoreCert *c = k->cert_index >= 0 ? plan->certs->pdata[k->cert_index] : NULL;
    g_autofree char *label = bag_label(&k->bag->attrs);

    if (c != NULL)
        k->nickname = g_strdup(c->nickname);
    else if (k->bag->attrs.friendly_name_flaws != 0)
        /* The key's label: never a name with control or bidi characters (names.h). */
        k->nickname = g_strdup(k->bag->attrs.friendly_name_clean);
    else
        k->nickname = g_strdup(k->bag->attrs.friendly_name);

    if (k->problem != NULL && k->type == nullKey && options != NULL && options->skip_unsupported) {
        k->action = CABACK_RESTORE_SKIP;
        k->note = g_strdup_printf("not restored (--skip-unsupported): %s", k->problem);
        plan_note(plan, "key %u%s is skipped (--skip-unsupported): %s", k->index + 1, label,
                  k->problem);
        return TRUE;
    }
    if (k->problem != NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s: key %u%s cannot be restored: %s; nothing was changed%s", plan->path,
                    k->index + 1, label, k->problem,
                    k->type == nullKey ? " (--skip-unsupported restores the rest without it)"
                                       : "");
        return FALSE;
    }
    CabackRestoreKey *o = caback_plan_index_first(keys_by_id, k->id.bytes, CABACK_KEYID_LEN);
    if (o != NULL && o->index < k->index) {
        k->action = CABACK_RESTORE_SKIP;
        k->duplicate_of = (gint)o->index;
        k->note = g_strdup_printf("the same key as key %u of the file", o->index + 1);
        return TRUE;
    }
    k->cert_found = c != NULL;
    if (db == NULL) {
        k->action = CABACK_RESTORE_ADD;
        if (c == NULL)
            k->note = g_strdup(KEY_WITHOUT_CERT);
        return TRUE;
    }

    SECItem id = {siBuffer, k->id.bytes, CABACK_KEYID_LEN};
    g_autoptr(SECKEYPrivateKey) existing = PK11_FindKeyByKeyID(db->slot, &id, db);
    if (c == NULL)
        k->cert_found = cert_in_db(db, k, existing);
    if (existing == NULL) {
        k->action = CABACK_RESTORE_ADD;
        if (!k->cert_found)
            k->note = g_strdup(KEY_WITHOUT_CERT);
        return TRUE;
    }

    /* Same ID: the same key only if it has this key's public half. NSS-made IDs are the SHA-1
     * of the public value, so a mismatch means a token that sets its own IDs. The public values
     * are compared when the token shows the existing key's (RSA always does: cheap, and no
     * private key operation); otherwise a test signature decides. */
    gboolean pairs = FALSE;
    g_autoptr(GError) local = NULL;
    g_autoptr(SECKEYPublicKey) have = SECKEY_ConvertToPublicKey(existing);
    g_autoptr(GBytes) value = have != NULL ? public_value_of(have) : NULL;
    if (value != NULL && k->public_value != NULL) {
        pairs = same_bytes(value, k->public_value);
    } else if (c != NULL) {
        g_autoptr(SECKEYPublicKey) pub = CERT_ExtractPublicKey(c->cert);
        if (pub == NULL || !caback_key_pairs_with(existing, pub, &pairs, db, &local))
            pairs = FALSE;
    }
    /* The key's ID (and so the comparison above) comes from its certificate: the key of the file
     * itself must be that certificate's key too, or "the same key" would not be true. */
    gboolean own_matches = TRUE;
    g_autoptr(GBytes) own = NULL;
    if (pairs && c != NULL && !file_key_matches(plan, k, c, &own_matches, &own, error))
        return FALSE;
    g_autoptr(GBytes) id_bytes = g_bytes_new(k->id.bytes, CABACK_KEYID_LEN);
    if (!own_matches) {
        g_autofree char *own_id = id_text(own);
        gboolean keep = options != NULL &&
                        options->on_conflict == CABACK_RESTORE_ON_CONFLICT_REPLACE;
        k->action = keep ? CABACK_RESTORE_SKIP : CABACK_RESTORE_CONFLICT;
        k->note = g_strdup_printf(
            "the file's key does not match its certificate \"%s\": the key's public key has ID "
            "%s, the certificate's public key has ID %s, and the database already holds the "
            "certificate's key under that ID; %s",
            c->nickname, own_id, k->nss_id,
            keep ? "the database's key is kept and the file's is not restored (--replace)"
                 : "use --replace to keep the database's key (the file's is then not restored)");
    } else if (pairs && !g_hash_table_contains(public_ids, id_bytes)) {
        /* What a restore stopped between the key and its public key object leaves: without
         * that object certutil -L shows no "u" flag, so the rerun stores it. */
        k->action = CABACK_RESTORE_SKIP;
        k->store_public = TRUE;
        k->note = g_strdup("already in the database, the same key; the public key object "
                           "stored beside it is missing (a restore was stopped?): stored now");
    } else if (pairs) {
        k->action = CABACK_RESTORE_SKIP;
        k->note = g_strdup("already in the database, the same key");
    } else {
        /* Say which public keys differ: the database key's (by the NSS ID of its public value)
         * and the one the file's key ID was made from. */
        g_autofree char *have_id = id_text(value);
        g_autofree char *differ =
            value != NULL ? g_strdup_printf(" (its public key has ID %s; the file's %s has %s)",
                                            have_id, c != NULL ? "certificate" : "key", k->nss_id)
                          : g_strdup("");
        k->action = CABACK_RESTORE_CONFLICT;
        k->note = g_strdup_printf(
            "the database has a different private key with key ID %s%s%s%s; caback never "
            "deletes a private key: check it with caback listkeys and remove it yourself "
            "(certutil -F -k %s) if it is not needed",
            k->nss_id, differ, local != NULL ? " (the check failed: " : "",
            local != NULL ? local->message : "", k->nss_id);
        if (local != NULL) {
            char *fixed = g_strdup_printf("%s)", k->note);
            g_free(k->note);
            k->note = fixed;
        }
    }
    return TRUE;
}

gboolean caback_restore_login_internal(CabackDb *db, GError **error)
{
    g_autoptr(PK11SlotInfo) internal = PK11_GetInternalKeySlot();

    if (internal == db->slot || !PK11_NeedLogin(internal) || PK11_IsLoggedIn(internal, db) ||
        PK11_Authenticate(internal, PR_TRUE, db) == SECSuccess)
        return TRUE;
    caback_error_set_nss_code(error, CABACK_ERROR_BAD_PASSWORD, SEC_ERROR_BAD_PASSWORD,
                              "cannot log in to NSS database %s, where the trust flags of the "
                              "certificates on token \"%s\" are kept: the password is wrong or "
                              "missing (give it as internal=... in the -f file); nothing was "
                              "changed",
                              db->dir, db->token_name);
    return FALSE;
}

/* TRUE when @flags (a trust string) makes a certificate a trusted CA in any field: C (for
 * servers) or T (for clients). */
static gboolean trust_gives_ca(const char *flags)
{
    return flags != NULL && (strchr(flags, 'C') != NULL || strchr(flags, 'T') != NULL);
}

/* Weak keys are never trusted silently: a certificate this run would give CA trust to while its
 * key is weak is refused unless --allow-weak-keys is given, and said either way. */
static void check_weak_keys(CabackRestorePlan *plan, const CabackRestoreOptions *options)
{
    gboolean allow = options != NULL && options->allow_weak_keys;

    plan->weak_refusals = 0;
    for (guint i = 0; i < plan->certs->len; i++) {
        CabackRestoreCert *c = plan->certs->pdata[i];
        c->weak_refused = FALSE;
        if (c->weak == CABACK_WEAK_KEY_NONE || c->duplicate_of >= 0 ||
            (c->action != CABACK_RESTORE_ADD && c->action != CABACK_RESTORE_RENAME &&
             c->action != CABACK_RESTORE_REPLACE && c->action != CABACK_RESTORE_TRUST) ||
            !trust_gives_ca(c->trust))
            continue;
        if (allow) {
            plan_note(plan,
                      "certificate \"%s\" gets CA trust %s although its key is weak (%s): "
                      "--allow-weak-keys",
                      c->nickname, c->trust, c->weak_reason);
            continue;
        }
        c->weak_refused = TRUE;
        plan->weak_refusals++;
        plan_note(plan,
                  "certificate \"%s\" would get CA trust %s, but its key is weak (%s): refused; "
                  "give it other trust with --trust \"%s=,,\" or accept the weak key with "
                  "--allow-weak-keys",
                  c->nickname, c->trust, c->weak_reason, c->nickname);
    }
}

gboolean caback_restore_plan(CabackRestorePlan *plan, CabackDb *db,
                             const CabackRestoreOptions *options, GError **error)
{
    if (db != NULL && !caback_restore_login_internal(db, error))
        return FALSE;
    plan->non_extractable = options != NULL && options->non_extractable;
    if (options != NULL && options->unauthenticated)
        g_ptr_array_add(plan->notes,
                        g_strdup("the file is not authenticated (no MAC, no checked signature; "
                                 "--allow-unauthenticated): no certificate gets trust flags from "
                                 "the file or by its role, only those given with -t "
                                 "NICKNAME=FLAGS"));
    /* Lookups by DER, nickname and key ID instead of scans of the file's bags: planning n
     * certificates is linear in n. */
    g_autoptr(CabackPlanIndex) first_by_der = caback_plan_index_new();
    for (guint i = 0; i < plan->certs->len; i++) {
        CabackRestoreCert *c = plan->certs->pdata[i];
        index_add_bytes(first_by_der, c->bag->der, c);
    }
    planning_free(plan->planning);
    plan->planning = g_new0(struct CabackRestorePlanning, 1);
    plan->planning->nicknames = caback_plan_index_new();
    if (db != NULL)
        planning_list_db(plan->planning, db);
    for (guint i = 0; i < plan->certs->len; i++) {
        CabackRestoreCert *c = plan->certs->pdata[i];
        plan_cert(plan, db, options, first_by_der, c);
        caback_plan_index_add_string(plan->planning->nicknames, c->nickname, c);
    }
    g_autoptr(CabackPlanIndex) keys_by_id = caback_plan_index_new();
    for (guint i = 0; i < plan->keys->len; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        if (k->id_known)
            caback_plan_index_add(keys_by_id, k->id.bytes, CABACK_KEYID_LEN, k);
    }
    g_autoptr(GHashTable) public_ids = db != NULL ? stored_public_key_ids(db->slot) : NULL;
    for (guint i = 0; i < plan->keys->len; i++)
        if (!plan_key(plan, db, public_ids, keys_by_id, options, plan->keys->pdata[i], error))
            return FALSE;
    for (guint i = 0; i < plan->certs->len; i++)
        if (!plan_unsupported_cert(plan, options, plan->certs->pdata[i], error))
            return FALSE;

    /* --trust must name a certificate of the file: a typo would otherwise go unnoticed. */
    if (options != NULL && options->trust != NULL) {
        GHashTableIter iter;
        gpointer name;
        g_hash_table_iter_init(&iter, options->trust);
        while (g_hash_table_iter_next(&iter, &name, NULL)) {
            gboolean found = FALSE;
            for (guint i = 0; i < plan->certs->len && !found; i++) {
                CabackRestoreCert *c = plan->certs->pdata[i];
                found = g_strcmp0(c->bag->attrs.friendly_name, name) == 0 ||
                        g_strcmp0(c->nickname, name) == 0;
            }
            if (!found) {
                g_autoptr(GString) names = g_string_new(NULL);
                for (guint i = 0; i < plan->certs->len; i++) {
                    CabackRestoreCert *c = plan->certs->pdata[i];
                    g_string_append_printf(names, "%s\"%s\"", names->len > 0 ? ", " : "",
                                           c->nickname);
                }
                g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                            "--trust names \"%s\", but %s has no certificate of that name; "
                            "its certificates are: %s",
                            (const char *)name, plan->path, names->len > 0 ? names->str : "(none)");
                return FALSE;
            }
        }
    }

    /* A key whose certificate is in conflict is held back with it. */
    for (guint i = 0; i < plan->keys->len; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        CabackRestoreCert *c = k->cert_index >= 0 ? plan->certs->pdata[k->cert_index] : NULL;
        if (c != NULL && c->action == CABACK_RESTORE_CONFLICT && k->action == CABACK_RESTORE_ADD)
            k->note = g_strdup_printf("would be added with its certificate \"%s\", which is in "
                                      "conflict",
                                      c->nickname);
        if (c != NULL && k->nickname != NULL && g_strcmp0(k->nickname, c->nickname) != 0) {
            g_free(k->nickname);
            k->nickname = g_strdup(c->nickname);
        }
    }

    check_weak_keys(plan, options);

    plan->conflicts = plan->changes = 0;
    for (guint i = 0; i < plan->certs->len; i++) {
        CabackRestoreCert *c = plan->certs->pdata[i];
        if (c->action == CABACK_RESTORE_CONFLICT)
            plan->conflicts++;
        else if (c->action != CABACK_RESTORE_SKIP)
            plan->changes++;
    }
    for (guint i = 0; i < plan->keys->len; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        if (k->action == CABACK_RESTORE_CONFLICT)
            plan->conflicts++;
        else if (k->action != CABACK_RESTORE_SKIP || k->store_public)
            plan->changes++;
    }
    for (guint i = 0; i < plan->crls->len; i++)
        plan_note(plan, "CRL %u is not restored (caback restores certificates and keys only)",
                  i + 1);
    return TRUE;
}


/* ---- apply ---- */

/* The journal of a run: what it created, recorded when it created it (the key's object, the
 * handle of every other object on its token), and the values of the trust objects it changed.
 * The undo removes those objects and writes those values back, newest first; it never looks a
 * certificate up again by nickname or encoding, so it cannot touch an object it did not create
 * (another run's import, or a copy NSS made for another token). */
typedef enum {
    UNDO_DELETE_KEY,     /* a private key this run imported */
    UNDO_DESTROY_OBJECT, /* an object this run created: a public key, a certificate, the copy of
                            a certificate NSS put in the internal token, a trust object */
    UNDO_RESTORE_TRUST,  /* a trust object that existed before, whose flags this run changed */
    UNDO_REIMPORT_CERT,  /* a certificate --replace removed */
} UndoKind;

/* The attributes of an NSS trust object that setting trust flags writes. */
static const CK_ATTRIBUTE_TYPE trust_attributes[] = {
    CKA_TRUST_SERVER_AUTH, CKA_TRUST_CLIENT_AUTH,      CKA_TRUST_EMAIL_PROTECTION,
    CKA_TRUST_CODE_SIGNING, CKA_TRUST_STEP_UP_APPROVED,
};

typedef struct {
    UndoKind kind;
    SECKEYPrivateKey *key;   /* UNDO_DELETE_KEY */
    PK11SlotInfo *slot;      /* UNDO_DESTROY_OBJECT / UNDO_RESTORE_TRUST: the object's token */
    CK_OBJECT_HANDLE handle; /* ... and its handle there */
    SECItem *values[G_N_ELEMENTS(trust_attributes)]; /* UNDO_RESTORE_TRUST: the values before */
    GBytes *der;                                     /* UNDO_REIMPORT_CERT: the certificate */
    char *nickname;
    char *trust; /* UNDO_REIMPORT_CERT: the flags before, or NULL */
    char *what;  /* for messages */
} UndoStep;

static void undo_step_free(UndoStep *u)
{
    if (u->key != NULL)
        SECKEY_DestroyPrivateKey(u->key);
    if (u->slot != NULL)
        PK11_FreeSlot(u->slot);
    for (gsize i = 0; i < G_N_ELEMENTS(u->values); i++)
        if (u->values[i] != NULL)
            SECITEM_FreeItem(u->values[i], PR_TRUE);
    g_clear_pointer(&u->der, g_bytes_unref);
    g_free(u->nickname);
    g_free(u->trust);
    g_free(u->what);
    g_free(u);
}

static CERTCertificate *find_cert(CabackDb *db, GBytes *der)
{
    gsize len;
    const guint8 *data = g_bytes_get_data(der, &len);
    SECItem item = {siBuffer, (unsigned char *)data, (unsigned int)len};
    return PK11_FindCertFromDERCertItem(db->slot, &item, db);
}

static gboolean set_trust(CabackDb *db, GBytes *der, const char *flags, const char *nickname,
                          GError **error)
{
    CERTCertTrust trust;
    g_autoptr(CERTCertificate) cert = find_cert(db, der);

    if (cert == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "cannot find certificate \"%s\" again to set its trust flags",
                             nickname);
        return FALSE;
    }
    if (CERT_DecodeTrustString(&trust, flags) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_USAGE, "bad trust flags \"%s\" for \"%s\"", flags,
                             nickname);
        return FALSE;
    }
    if (CERT_ChangeCertTrust(CERT_GetDefaultCertDB(), cert, &trust) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "cannot set trust flags %s on certificate \"%s\"", flags, nickname);
        return FALSE;
    }
    return TRUE;
}

static gboolean import_cert(CabackDb *db, GBytes *der, const char *nickname, GError **error)
{
    gsize len;
    const guint8 *data = g_bytes_get_data(der, &len);
    SECItem item = {siBuffer, (unsigned char *)data, (unsigned int)len};

    if (PK11_ImportDERCert(db->slot, &item, CK_INVALID_HANDLE, (char *)nickname, PR_FALSE) !=
        SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "cannot import certificate \"%s\" into token \"%s\"", nickname,
                             db->token_name);
        return FALSE;
    }
    return TRUE;
}

static gboolean delete_cert(CabackDb *db, GBytes *der, const char *nickname, GError **error)
{
    g_autoptr(CERTCertificate) cert = find_cert(db, der);

    if (cert == NULL)
        return TRUE; /* already gone */
    /* SEC_DeletePermCertificate removes the certificate and its trust, never its key. */
    if (SEC_DeletePermCertificate(cert) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE, "cannot remove certificate \"%s\"",
                             nickname);
        return FALSE;
    }
    return TRUE;
}

/* ---- the objects of one certificate, before and after a step ---- */

/* One trust object of a certificate on a token, with the values setting trust may change. */
typedef struct {
    CK_OBJECT_HANDLE handle;
    SECItem *values[G_N_ELEMENTS(trust_attributes)];
} TrustObject;

/* What one token holds of one certificate: its certificate object and its trust objects. */
typedef struct {
    PK11SlotInfo *slot;
    CK_OBJECT_HANDLE cert;
    GArray *trust; /* of TrustObject */
} TokenObjects;

static void token_objects_clear(TokenObjects *t)
{
    for (guint i = 0; t->trust != NULL && i < t->trust->len; i++) {
        TrustObject *o = &g_array_index(t->trust, TrustObject, i);
        for (gsize j = 0; j < G_N_ELEMENTS(o->values); j++)
            if (o->values[j] != NULL)
                SECITEM_FreeItem(o->values[j], PR_TRUE);
    }
    g_clear_pointer(&t->trust, g_array_unref);
    g_clear_pointer(&t->slot, PK11_FreeSlot);
}

/* The objects of certificate @der that a step may create or change: on the database's token and,
 * for another token, on the internal token, where NSS keeps the trust (see internal_name_clash).
 * At most two tokens. */
typedef struct {
    TokenObjects tokens[2];
    guint n;
} CertObjects;

static void cert_objects_clear(CertObjects *s)
{
    for (guint i = 0; i < s->n; i++)
        token_objects_clear(&s->tokens[i]);
    s->n = 0;
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CertObjects, cert_objects_clear)

/* A session of our own on @slot, for what NSS exports no function for: finding the trust objects
 * of one certificate by a template (PK11_FindGenericObjects would read every trust object of the
 * token, for each certificate: a restore would grow with the square of the database), reading
 * and writing their values by handle. The session sees the token as NSS logged it in. */
typedef struct {
    CK_FUNCTION_LIST_PTR f;
    CK_SESSION_HANDLE session;
} RawSession;

static gboolean raw_open(RawSession *r, PK11SlotInfo *slot, gboolean rw)
{
    SECMODModule *module = PK11_GetModule(slot);

    r->f = module != NULL ? (CK_FUNCTION_LIST_PTR)module->functionList : NULL;
    return r->f != NULL &&
           r->f->C_OpenSession(PK11_GetSlotID(slot), CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0),
                               NULL, NULL, &r->session) == CKR_OK;
}

static void raw_close(RawSession *r)
{
    r->f->C_CloseSession(r->session);
}

/* The values of the trust attributes of object @handle (an attribute the object lacks: NULL). */
static void raw_trust_values(RawSession *r, CK_OBJECT_HANDLE handle,
                             SECItem *values[G_N_ELEMENTS(trust_attributes)])
{
    for (gsize j = 0; j < G_N_ELEMENTS(trust_attributes); j++) {
        CK_ATTRIBUTE a = {trust_attributes[j], NULL, 0};
        values[j] = NULL;
        if (r->f->C_GetAttributeValue(r->session, handle, &a, 1) != CKR_OK ||
            a.ulValueLen == (CK_ULONG)-1)
            continue;
        SECItem *item = SECITEM_AllocItem(NULL, NULL, a.ulValueLen > 0 ? a.ulValueLen : 1);
        item->len = a.ulValueLen;
        a.pValue = item->data;
        if (r->f->C_GetAttributeValue(r->session, handle, &a, 1) == CKR_OK)
            values[j] = item;
        else
            SECITEM_FreeItem(item, PR_TRUE);
    }
}

/* What @slot holds of @cert (whose DER-encoded serial number is @serial): the handle of its
 * certificate object and its trust objects with their values. FALSE when the token cannot be
 * asked. */
static gboolean take_token_objects(TokenObjects *t, PK11SlotInfo *slot, CERTCertificate *cert,
                                   const SECItem *serial, void *wincx)
{
    CK_OBJECT_CLASS cls = CKO_NSS_TRUST;
    CK_BBOOL on_token = CK_TRUE;
    CK_ATTRIBUTE template[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_TOKEN, &on_token, sizeof on_token},
        {CKA_ISSUER, cert->derIssuer.data, cert->derIssuer.len},
        {CKA_SERIAL_NUMBER, serial->data, serial->len},
    };
    RawSession r;

    t->slot = PK11_ReferenceSlot(slot);
    t->cert = PK11_FindEncodedCertInSlot(slot, &cert->derCert, wincx);
    t->trust = g_array_new(FALSE, TRUE, sizeof(TrustObject));
    if (!raw_open(&r, slot, FALSE))
        return FALSE;
    gboolean ok = r.f->C_FindObjectsInit(r.session, template, G_N_ELEMENTS(template)) == CKR_OK;
    GArray *found = g_array_new(FALSE, FALSE, sizeof(CK_OBJECT_HANDLE));
    for (;;) {
        CK_OBJECT_HANDLE h[16];
        CK_ULONG n = 0;
        if (!ok || r.f->C_FindObjects(r.session, h, G_N_ELEMENTS(h), &n) != CKR_OK || n == 0)
            break;
        g_array_append_vals(found, h, (guint)n);
    }
    if (ok)
        r.f->C_FindObjectsFinal(r.session);
    for (guint i = 0; i < found->len; i++) {
        TrustObject to = {g_array_index(found, CK_OBJECT_HANDLE, i), {NULL}};
        raw_trust_values(&r, to.handle, to.values);
        g_array_append_val(t->trust, to);
    }
    g_array_unref(found);
    raw_close(&r);
    return ok;
}

/* What the database's token and (for another token) the internal token hold of certificate
 * @der now. FALSE (and @s empty) when the certificate cannot be decoded. */
static gboolean take_cert_objects(CertObjects *s, CabackDb *db, GBytes *der)
{
    gsize len;
    const guint8 *data = g_bytes_get_data(der, &len);
    SECItem item = {siBuffer, (unsigned char *)data, (unsigned int)len};
    g_autoptr(CERTCertificate) cert = CERT_NewTempCertificate(CERT_GetDefaultCertDB(), &item,
                                                              NULL, PR_FALSE, PR_TRUE);
    s->n = 0;
    if (cert == NULL)
        return FALSE;
    /* NSS's trust objects hold the serial number DER-encoded, tag and length included. */
    SECItem *serial = SEC_ASN1EncodeItem(NULL, NULL, &cert->serialNumber,
                                         SEC_ASN1_GET(SEC_IntegerTemplate));
    if (serial == NULL)
        return FALSE;
    gboolean ok = take_token_objects(&s->tokens[s->n++], db->slot, cert, serial, db);
    if (ok && !PK11_IsInternalKeySlot(db->slot)) {
        g_autoptr(PK11SlotInfo) internal = PK11_GetInternalKeySlot();
        ok = take_token_objects(&s->tokens[s->n++], internal, cert, serial, db);
    }
    SECITEM_FreeItem(serial, PR_TRUE);
    if (!ok)
        cert_objects_clear(s);
    return ok;
}

/* take_cert_objects before a step; a failure is the step's (nothing changed yet). */
static gboolean before_step(CertObjects *s, CabackDb *db, GBytes *der, const char *nickname,
                            GError **error)
{
    if (take_cert_objects(s, db, der))
        return TRUE;
    caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                         "cannot read what the tokens hold of certificate \"%s\"", nickname);
    return FALSE;
}

static gboolean handle_in(GArray *trust, CK_OBJECT_HANDLE handle, guint *index)
{
    for (guint i = 0; i < trust->len; i++)
        if (g_array_index(trust, TrustObject, i).handle == handle) {
            if (index != NULL)
                *index = i;
            return TRUE;
        }
    return FALSE;
}

static UndoStep *journal_object(GPtrArray *journal, UndoKind kind, PK11SlotInfo *slot,
                                CK_OBJECT_HANDLE handle, char *what)
{
    UndoStep *u = g_new0(UndoStep, 1);
    u->kind = kind;
    u->slot = PK11_ReferenceSlot(slot);
    u->handle = handle;
    u->what = what;
    g_ptr_array_add(journal, u);
    return u;
}

/* Record in @journal what changed for certificate @nickname between @before and now: each
 * certificate and trust object that appeared (to be destroyed by its handle) and the old values
 * of each trust object that was there (to be written back). Called after every step that touches
 * a certificate, whether it succeeded or not, since NSS may have created objects before failing
 * (STAN_ChangeCertTrust copies the certificate into the internal token, then stores trust). */
static void journal_cert_changes(GPtrArray *journal, CabackDb *db, GBytes *der,
                                 const char *nickname, const CertObjects *before)
{
    g_auto(CertObjects) after = {0};

    /* The same certificate decoded a moment ago: this cannot fail but for memory. */
    (void)take_cert_objects(&after, db, der);
    for (guint t = 0; t < after.n && t < before->n; t++) {
        const TokenObjects *a = &after.tokens[t], *b = &before->tokens[t];
        const char *token = PK11_GetTokenName(a->slot);
        /* The certificate first: the undo, newest first, removes its trust before it. */
        if (b->cert == CK_INVALID_HANDLE && a->cert != CK_INVALID_HANDLE)
            journal_object(journal, UNDO_DESTROY_OBJECT, a->slot, a->cert,
                           g_strdup_printf("removing certificate \"%s\" from token \"%s\"",
                                           nickname, token));
        for (guint i = 0; i < a->trust->len; i++) {
            const TrustObject *o = &g_array_index(a->trust, TrustObject, i);
            guint j;
            if (!handle_in(b->trust, o->handle, &j)) {
                journal_object(journal, UNDO_DESTROY_OBJECT, a->slot, o->handle,
                               g_strdup_printf("removing the trust of \"%s\" from token \"%s\"",
                                               nickname, token));
                continue;
            }
            const TrustObject *old = &g_array_index(b->trust, TrustObject, j);
            gboolean changed = FALSE;
            for (gsize k = 0; k < G_N_ELEMENTS(old->values); k++)
                changed |= (old->values[k] == NULL) != (o->values[k] == NULL) ||
                           (old->values[k] != NULL &&
                            !SECITEM_ItemsAreEqual(old->values[k], o->values[k]));
            if (!changed)
                continue;
            UndoStep *u = journal_object(
                journal, UNDO_RESTORE_TRUST, a->slot, o->handle,
                g_strdup_printf("putting back the trust of \"%s\" on token \"%s\"", nickname,
                                token));
            for (gsize k = 0; k < G_N_ELEMENTS(old->values); k++)
                u->values[k] = old->values[k] != NULL ? SECITEM_DupItem(old->values[k]) : NULL;
        }
    }
}

/* Write the recorded values back into the trust object @u->handle of @u->slot. */
static gboolean restore_trust_object(UndoStep *u, GError **error)
{
    CK_ATTRIBUTE values[G_N_ELEMENTS(trust_attributes)];
    CK_ULONG n = 0;
    RawSession r;

    for (gsize k = 0; k < G_N_ELEMENTS(trust_attributes); k++)
        if (u->values[k] != NULL)
            values[n++] = (CK_ATTRIBUTE){trust_attributes[k], u->values[k]->data, u->values[k]->len};
    if (!raw_open(&r, u->slot, TRUE)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                    "cannot open a session on token \"%s\"", PK11_GetTokenName(u->slot));
        return FALSE;
    }
    CK_RV rv = r.f->C_SetAttributeValue(r.session, u->handle, values, n);
    raw_close(&r);
    if (rv != CKR_OK)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                    "cannot write its flags back (PKCS#11 error 0x%lx)", (unsigned long)rv);
    return rv == CKR_OK;
}

/* Undo the steps of @journal, newest first. Returns a description of what could not be undone,
 * or NULL when everything was. */
static char *undo(CabackDb *db, GPtrArray *journal)
{
    g_autoptr(GString) failures = g_string_new(NULL);

    for (guint i = journal->len; i > 0; i--) {
        UndoStep *u = journal->pdata[i - 1];
        g_autoptr(GError) local = NULL;
        gboolean ok = TRUE;

        switch (u->kind) {
        case UNDO_DELETE_KEY:
            /* Only ever a key this run imported (its ID was not in the database before). */
            ok = PK11_DeleteTokenPrivateKey(u->key, PR_TRUE) == SECSuccess;
            u->key = NULL; /* PK11_DeleteTokenPrivateKey released the reference */
            if (!ok)
                caback_error_set_nss(&local, CABACK_ERROR_DATABASE, "cannot delete it");
            break;
        case UNDO_DESTROY_OBJECT:
            ok = PK11_DestroyTokenObject(u->slot, u->handle) == SECSuccess;
            if (!ok)
                caback_error_set_nss(&local, CABACK_ERROR_DATABASE, "cannot delete it");
            break;
        case UNDO_RESTORE_TRUST:
            ok = restore_trust_object(u, &local);
            break;
        case UNDO_REIMPORT_CERT:
            ok = import_cert(db, u->der, u->nickname, &local) &&
                 (u->trust == NULL || set_trust(db, u->der, u->trust, u->nickname, &local));
            break;
        }
        if (!ok)
            g_string_append_printf(failures, "%s%s: %s", failures->len > 0 ? "; " : "", u->what,
                                   local != NULL ? local->message : "failed");
    }
    return failures->len > 0 ? g_strdup(failures->str) : NULL;
}

/* Test hook: CABACK_TEST_RESTORE_FAIL_STEP=N makes the N-th change of a run fail, so that the
 * test suite can prove that a failure in the middle leaves the database as it was. */
static gboolean injected_failure(guint *step, GError **error)
{
    const char *env = g_getenv("CABACK_TEST_RESTORE_FAIL_STEP");

    (*step)++;
    if (env != NULL && *env != '\0' && g_ascii_strtoull(env, NULL, 10) == *step) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                    "failure injected by CABACK_TEST_RESTORE_FAIL_STEP=%s", env);
        return TRUE;
    }
    return FALSE;
}

static UndoStep *journal_add(GPtrArray *journal, UndoKind kind, GBytes *der, const char *nickname,
                             const char *trust, char *what)
{
    UndoStep *u = g_new0(UndoStep, 1);
    u->kind = kind;
    u->der = der != NULL ? g_bytes_ref(der) : NULL;
    u->nickname = g_strdup(nickname);
    u->trust = g_strdup(trust);
    u->what = what;
    g_ptr_array_add(journal, u);
    return u;
}

/* TRUE when @slot already has a public key object with CKA_ID @id. */
/* The CKA_IDs of the public key objects stored on @slot, as a set of GBytes: read once per
 * restore, since asking for each key would read them all again each time. */
static GHashTable *stored_public_key_ids(PK11SlotInfo *slot)
{
    GHashTable *ids =
        g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref, NULL);
    SECKEYPublicKeyList *list = PK11_ListPublicKeysInSlot(slot, NULL);

    if (list == NULL)
        return ids;
    for (SECKEYPublicKeyListNode *node = PUBKEY_LIST_HEAD(list); !PUBKEY_LIST_END(node, list);
         node = PUBKEY_LIST_NEXT(node)) {
        SECItem ckaid = {siBuffer, NULL, 0};
        if (PK11_ReadRawAttribute(PK11_TypePubKey, node->key, CKA_ID, &ckaid) == SECSuccess) {
            g_hash_table_add(ids, g_bytes_new(ckaid.data, ckaid.len));
            SECITEM_FreeItem(&ckaid, PR_FALSE);
        }
    }
    SECKEY_DestroyPublicKeyList(list);
    return ids;
}

/* One pair check of step 5 of caback_restore_apply. */
typedef struct {
    CabackDb *db;
    CabackRestoreKey *key;
    CabackRestoreCert *cert;
    /* What the second reader (caback check-stored-keys) said about this key, when it did. */
    CabackStoredKeyVerdict verdict;
    char *message;
    GError *error; /* set when the check failed */
} PairJob;

/* Check that the key NSS finds for the job's certificate (as imported) pairs with it. */
static gboolean check_pair(PairJob *job, GError **error)
{
    CabackDb *db = job->db;
    CabackRestoreCert *c = job->cert;
    /* The file's certificate as the plan decoded it (not NSS's cached one, whose trust NSS
     * would read and check again): NSS finds the database's certificate object by its DER,
     * then the private key whose CKA_ID that object names, as it does when the CA runs. */
    CERTCertificate *cert = c->cert;
    g_autoptr(SECItem) ckaid = PK11_GetLowLevelKeyIDForCert(db->slot, cert, db);
    if (ckaid == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "certificate \"%s\" is not in the database after its import",
                             c->nickname);
        return FALSE;
    }
    g_autoptr(SECKEYPrivateKey) key = PK11_FindKeyByKeyID(db->slot, ckaid, db);
    if (key == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "NSS finds no private key for certificate \"%s\" after the import "
                             "(the key's ID does not match the certificate)",
                             c->nickname);
        return FALSE;
    }
    /* The second reader signed with the key of the ID the restore stored; its answer stands for
     * this key only when the certificate names that very ID. */
    gboolean same_id = ckaid->len == CABACK_KEYID_LEN &&
                       memcmp(ckaid->data, job->key->id.bytes, CABACK_KEYID_LEN) == 0;
    gboolean pairs = FALSE;
    if (same_id && job->verdict == CABACK_STORED_KEY_FAILED) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                    "cannot check that the key of \"%s\" pairs with it: %s", c->nickname,
                    job->message != NULL ? job->message : "the check failed");
        return FALSE;
    } else if (same_id && job->verdict != CABACK_STORED_KEY_UNANSWERED) {
        pairs = job->verdict == CABACK_STORED_KEY_PAIRS;
    } else {
        g_autoptr(SECKEYPublicKey) pub = CERT_ExtractPublicKey(cert);
        if (pub == NULL || !caback_key_pairs_with(key, pub, &pairs, db, error)) {
            if (pub == NULL)
                caback_error_set_nss(error, CABACK_ERROR_FAILED,
                                     "cannot read the public key of certificate \"%s\"",
                                     c->nickname);
            else
                g_prefix_error(error, "cannot check that the key of \"%s\" pairs with it: ",
                               c->nickname);
            return FALSE;
        }
    }
    if (!pairs) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the private key restored for \"%s\" does not pair with its certificate (a "
                    "test signature does not verify); the file pairs the wrong key with it",
                    c->nickname);
        return FALSE;
    }
    return TRUE;
}

static void pair_item(gpointer data, guint i)
{
    PairJob *job = &((PairJob *)data)[i];
    check_pair(job, &job->error);
}

/* Run every check of @jobs, on as many threads as there are processors (NSS is thread-safe
 * once initialised); each job keeps its own error. */
static void check_pairs(PairJob *jobs, guint n)
{
    caback_parallel_for(0, n, pair_item, jobs, "caback-pair");
}

gboolean caback_restore_apply(CabackRestorePlan *plan, CabackDb *db, GError **error)
{
    return caback_restore_apply_checked(plan, db, NULL, error);
}

/* The ticket of key @i of a plan for the second reader. */
static guint key_ticket(guint i)
{
    return i + 1;
}

gboolean caback_restore_apply_checked(CabackRestorePlan *plan, CabackDb *db,
                                      CabackStoredKeyChecker *checker, GError **error)
{
    g_autoptr(GPtrArray) journal = g_ptr_array_new_with_free_func((GDestroyNotify)undo_step_free);
    g_autoptr(GError) failure = NULL;
    guint step = 0;

    if (plan->conflicts > 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%u conflict(s) with what NSS database %s holds; nothing was changed",
                    plan->conflicts, db->dir);
        return FALSE;
    }
    if (plan->weak_refusals > 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%u certificate(s) would get CA trust (C or T) with a weak key (the plan says "
                    "which); nothing was changed. Use --allow-weak-keys to accept them",
                    plan->weak_refusals);
        return FALSE;
    }
    if (!caback_restore_login_internal(db, error))
        return FALSE;

    /* 1. --replace: take the nicknames (the certificates go; their keys stay). */
    for (guint i = 0; i < plan->certs->len && failure == NULL; i++) {
        CabackRestoreCert *c = plan->certs->pdata[i];
        if (c->action != CABACK_RESTORE_REPLACE || c->replaced == NULL)
            continue;
        for (guint j = 0; j < c->replaced->len && failure == NULL; j++) {
            CabackRestoreReplaced *r = c->replaced->pdata[j];
            char *what = g_strdup_printf("removing the old certificate \"%s\" (serial 0x%s)",
                                         r->nickname, r->serial_hex);
            if (injected_failure(&step, &failure) ||
                !delete_cert(db, r->der, r->nickname, &failure)) {
                g_prefix_error(&failure, "%s: ", what);
                g_free(what);
                break;
            }
            journal_add(journal, UNDO_REIMPORT_CERT, r->der, r->nickname, r->trust,
                        g_strdup_printf("putting back the old certificate \"%s\" (serial 0x%s)",
                                        r->nickname, r->serial_hex));
            g_free(what);
        }
    }

    /* 2. Keys, before their certificates, so that NSS pairs each certificate with its key. */
    g_autoptr(GHashTable) public_ids = stored_public_key_ids(db->slot);
    for (guint i = 0; i < plan->keys->len && failure == NULL; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        caback_progress_report("storing keys", i + 1, plan->keys->len);
        if (k->action != CABACK_RESTORE_ADD && !k->store_public)
            continue;
        g_autofree char *what = g_strdup_printf(
            "importing key %s%s%s%s", k->nss_id, k->nickname != NULL ? " (\"" : "",
            k->nickname != NULL ? k->nickname : "", k->nickname != NULL ? "\")" : "");
        CabackRestoreCert *c = k->cert_index >= 0 ? plan->certs->pdata[k->cert_index] : NULL;
        SECKEYPrivateKey *key = NULL;
        g_autoptr(SECKEYPrivateKey) present = NULL;
        if (k->store_public) {
            /* The key is there already (see plan_key): only its public key object is stored. */
            SECItem kid = {siBuffer, k->id.bytes, CABACK_KEYID_LEN};
            key = present = PK11_FindKeyByKeyID(db->slot, &kid, db);
            if (key == NULL) {
                caback_error_set_nss(&failure, CABACK_ERROR_DATABASE,
                                     "key %s is no longer in the database", k->nss_id);
                break;
            }
        } else {
            if (injected_failure(&step, &failure)) {
                g_prefix_error(&failure, "%s: ", what);
                break;
            }
            gsize len;
            const guint8 *pv = g_bytes_get_data(k->public_value, &len);
            SECItem value = {siBuffer, (unsigned char *)pv, (unsigned int)len};
            /* A key with a certificate gets no label of its own, as keys NSS generates have
             * none: certutil -K then names it by its certificate, and shows it as an orphan
             * should that certificate ever go. A key without certificate keeps its friendlyName
             * as label. */
            key = caback_p12_key_import(plan->file, k->bag, db->slot,
                                        c != NULL ? NULL : k->nickname, &value, TRUE,
                                        !plan->non_extractable, db, &failure);
            if (key == NULL) {
                g_prefix_error(&failure, "%s: ", what);
                break;
            }
            UndoStep *u = journal_add(journal, UNDO_DELETE_KEY, NULL, k->nickname, NULL,
                                      g_strdup_printf("deleting the imported key %s", k->nss_id));
            u->key = key;

            /* The ID NSS gave the key must be the one computed (and printed for CS.cfg). */
            g_autoptr(SECItem) got = PK11_GetLowLevelKeyIDForPrivateKey(key);
            if (got == NULL || got->len != CABACK_KEYID_LEN ||
                memcmp(got->data, k->id.bytes, CABACK_KEYID_LEN) != 0) {
                g_set_error(&failure, CABACK_ERROR, CABACK_ERROR_DATABASE,
                            "%s: the token gave the key a different key ID than NSS computes "
                            "from its public key",
                            what);
                break;
            }
            /* The second reader can check this key now, while the next ones are stored. */
            if (c != NULL)
                caback_stored_key_checker_submit(checker, key_ticket(i), &k->id, c->bag->der);
        }

        /* The public key object NSS stores beside a key it generates (and pk12util beside a key
         * it imports): without it, NSS cannot tell without logging in that a certificate has
         * its key, and certutil -L would show no "u" trust flag. */
        g_autoptr(SECKEYPublicKey) pub =
            c != NULL ? CERT_ExtractPublicKey(c->cert) : SECKEY_ConvertToPublicKey(key);
        g_autoptr(GBytes) id = g_bytes_new(k->id.bytes, CABACK_KEYID_LEN);
        if (pub == NULL || g_hash_table_contains(public_ids, id))
            continue;
        g_free(what);
        what = g_strdup_printf("storing the public key of key %s", k->nss_id);
        if (injected_failure(&step, &failure)) {
            g_prefix_error(&failure, "%s: ", what);
            break;
        }
        CK_OBJECT_HANDLE handle = PK11_ImportPublicKey(db->slot, pub, PR_TRUE);
        if (handle == CK_INVALID_HANDLE) {
            caback_error_set_nss(&failure, CABACK_ERROR_DATABASE, "%s", what);
            break;
        }
        journal_object(journal, UNDO_DESTROY_OBJECT, db->slot, handle,
                       g_strdup_printf("deleting the stored public key %s", k->nss_id));
        g_hash_table_add(public_ids, g_steal_pointer(&id));
    }

    /* 3. Certificates. */
    for (guint i = 0; i < plan->certs->len && failure == NULL; i++) {
        CabackRestoreCert *c = plan->certs->pdata[i];
        caback_progress_report("storing certificates", i + 1, plan->certs->len);
        if (c->action != CABACK_RESTORE_ADD && c->action != CABACK_RESTORE_REPLACE &&
            c->action != CABACK_RESTORE_RENAME)
            continue;
        g_autofree char *what = g_strdup_printf("importing certificate \"%s\"", c->nickname);
        if (injected_failure(&step, &failure)) {
            g_prefix_error(&failure, "%s: ", what);
            break;
        }
        g_auto(CertObjects) before = {0};
        if (!before_step(&before, db, c->bag->der, c->nickname, &failure)) {
            g_prefix_error(&failure, "%s: ", what);
            break;
        }
        gboolean imported = import_cert(db, c->bag->der, c->nickname, &failure);
        journal_cert_changes(journal, db, c->bag->der, c->nickname, &before);
        if (!imported) {
            g_prefix_error(&failure, "%s: ", what);
            break;
        }
        /* On another token whose certificate the internal token holds already, the trust is
         * that copy's: changed only when the plan says so (old_trust). */
        if (!stores_trust(c->trust) || (c->internal_copy && c->old_trust == NULL))
            continue;
        g_free(what);
        what = g_strdup_printf("setting trust %s on \"%s\"", c->trust, c->nickname);
        if (injected_failure(&step, &failure)) {
            g_prefix_error(&failure, "%s: ", what);
            break;
        }
        cert_objects_clear(&before);
        if (!before_step(&before, db, c->bag->der, c->nickname, &failure)) {
            g_prefix_error(&failure, "%s: ", what);
            break;
        }
        gboolean set = set_trust(db, c->bag->der, c->trust, c->nickname, &failure);
        journal_cert_changes(journal, db, c->bag->der, c->nickname, &before);
        if (!set) {
            g_prefix_error(&failure, "%s: ", what);
            break;
        }
    }

    /* 4. Trust of certificates already present. */
    for (guint i = 0; i < plan->certs->len && failure == NULL; i++) {
        CabackRestoreCert *c = plan->certs->pdata[i];
        if (c->action != CABACK_RESTORE_TRUST)
            continue;
        g_autofree char *what = g_strdup_printf("changing the trust of \"%s\" from %s to %s",
                                                c->nickname, c->old_trust, c->trust);
        if (injected_failure(&step, &failure)) {
            g_prefix_error(&failure, "%s: ", what);
            break;
        }
        g_auto(CertObjects) before = {0};
        if (!before_step(&before, db, c->bag->der, c->nickname, &failure)) {
            g_prefix_error(&failure, "%s: ", what);
            break;
        }
        gboolean set = set_trust(db, c->bag->der, c->trust, c->nickname, &failure);
        journal_cert_changes(journal, db, c->bag->der, c->nickname, &before);
        if (!set) {
            g_prefix_error(&failure, "%s: ", what);
            break;
        }
    }

    /* The last point a test can make fail: after every change, so that the undo of all of them
     * is proved too. */
    if (failure == NULL && journal->len > 0 && injected_failure(&step, &failure))
        g_prefix_error(&failure, "checking the restored keys: ");

    /* 5. Each imported key must pair with its certificate: the test signatures side by side on
     * the processors (a token takes tens of milliseconds to load an RSA key), the verdicts in
     * order. */
    if (failure == NULL) {
        caback_progress_report("checking that each stored key signs for its certificate", 0, 0);
        g_autoptr(GArray) jobs = g_array_new(FALSE, TRUE, sizeof(PairJob));
        for (guint i = 0; i < plan->keys->len; i++) {
            CabackRestoreKey *k = plan->keys->pdata[i];
            if (k->cert_index < 0)
                continue;
            CabackRestoreCert *c = plan->certs->pdata[k->cert_index];
            if (k->action != CABACK_RESTORE_ADD && c->action == CABACK_RESTORE_SKIP)
                continue;
            PairJob job = {db, k, c, CABACK_STORED_KEY_UNANSWERED, NULL, NULL};
            /* Keys stored by this run were given to the second reader (step 2); what it does
             * not answer is checked here. */
            if (k->action == CABACK_RESTORE_ADD)
                job.verdict = caback_stored_key_checker_wait(checker, key_ticket(i), &job.message);
            g_array_append_val(jobs, job);
        }
        check_pairs((PairJob *)(void *)jobs->data, jobs->len);
        for (guint i = 0; i < jobs->len; i++) {
            PairJob *job = &g_array_index(jobs, PairJob, i);
            if (job->error != NULL && failure == NULL)
                failure = g_steal_pointer(&job->error);
            g_clear_error(&job->error);
            g_clear_pointer(&job->message, g_free);
            job->key->pair_checked = failure == NULL;
        }
    }

    if (failure == NULL) {
        /* Keep what was imported: drop the journal's references without undoing. */
        return TRUE;
    }

    g_autofree char *left = undo(db, journal);
    if (left == NULL)
        g_propagate_prefixed_error(error, g_steal_pointer(&failure),
                                   "restore into NSS database %s failed; every change of this "
                                   "run was undone, the database holds what it held before. "
                                   "What failed: ",
                                   db->dir);
    else
        g_propagate_prefixed_error(
            error, g_steal_pointer(&failure),
            "restore into NSS database %s failed, and undoing it failed too (%s); check the "
            "database with certutil -L and caback listkeys. What failed first: ",
            db->dir, left);
    return FALSE;
}

/* ---- creating a database ---- */

static const char *const db_files[] = {"cert9.db", "key4.db", "pkcs11.txt"};

#define STAGING_PREFIX ".caback-new-db-"


static gboolean rename_into(const char *staging, const char *dir, const char *name, GError **error)
{
    g_autofree char *from = g_build_filename(staging, name, NULL);
    g_autofree char *to = g_build_filename(dir, name, NULL);
    if (g_rename(from, to) != 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot move the new database file %s into %s: %s", name, dir,
                    g_strerror(e));
        return FALSE;
    }
    return TRUE;
}


/* A creation killed after key4.db was moved in but before cert9.db was (its staging folder still
 * holds cert9.db) is finished: the key database is complete, only the certificate database was
 * still waiting. Any other staging folder is what a killed creation left: removed. TRUE when a
 * creation was finished. */
static gboolean finish_or_sweep_staging(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    gboolean finished = FALSE;
    g_autofree char *key4 = g_build_filename(dir, "key4.db", NULL);
    g_autofree char *cert9 = g_build_filename(dir, "cert9.db", NULL);

    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        if (!g_str_has_prefix(name, STAGING_PREFIX))
            continue;
        g_autofree char *staging = g_build_filename(dir, name, NULL);
        g_autofree char *staged_cert9 = g_build_filename(staging, "cert9.db", NULL);
        if (!finished && g_file_test(key4, G_FILE_TEST_EXISTS) &&
            !g_file_test(cert9, G_FILE_TEST_EXISTS) &&
            g_file_test(staged_cert9, G_FILE_TEST_EXISTS) &&
            rename_into(staging, dir, "cert9.db", NULL))
            finished = TRUE;
        caback_remove_folder(staging);
    }
    if (finished)
        caback_sync_folder(dir);
    return finished;
}

gboolean caback_restore_create_db(const char *dir, const CabackSecret *password,
                                  gboolean *created_dir, GError **error)
{
    g_autofree char *cert9 = g_build_filename(dir, "cert9.db", NULL);
    g_autofree char *key4 = g_build_filename(dir, "key4.db", NULL);

    *created_dir = FALSE;
    if (g_file_test(cert9, G_FILE_TEST_EXISTS)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT, "%s already holds an NSS database",
                    dir);
        return FALSE;
    }
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        if (g_mkdir_with_parents(dir, 0700) != 0) {
            int e = errno;
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "cannot create the database folder %s: %s", dir, g_strerror(e));
            return FALSE;
        }
        *created_dir = TRUE;
    } else if (finish_or_sweep_staging(dir)) {
        /* The database of an interrupted run, complete now; its password is checked at login. */
        return TRUE;
    }
    if (g_file_test(key4, G_FILE_TEST_EXISTS)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%s holds a key database (key4.db) but no certificate database (cert9.db); "
                    "caback will not replace it, as it may hold keys: open it with certutil -K "
                    "-d sql:%s, or move it away",
                    dir, dir);
        return FALSE;
    }

    /* Made in a folder of its own, then moved in, key4.db before cert9.db (whose presence is what
     * makes a folder a database): a run killed halfway leaves no half-made database behind. */
    g_autofree char *staging = g_build_filename(dir, STAGING_PREFIX "XXXXXX", NULL);
    if (g_mkdtemp_full(staging, 0700) == NULL) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot create the new NSS database in %s: %s; check that the folder is "
                    "writable and not full",
                    dir, g_strerror(e));
        caback_restore_remove_created_db(dir, *created_dir);
        return FALSE;
    }
    g_autofree char *spec = g_strdup_printf("sql:%s", staging);
    NSSInitContext *context =
        NSS_InitContext(spec, "", "", "", NULL, NSS_INIT_NOROOTINIT | NSS_INIT_OPTIMIZESPACE);
    if (context == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE, "cannot create an NSS database in %s",
                             dir);
        caback_remove_folder(staging);
        caback_restore_remove_created_db(dir, *created_dir);
        return FALSE;
    }
    gboolean ok = TRUE;
    PK11SlotInfo *slot = PK11_GetInternalKeySlot();
    if (PK11_NeedUserInit(slot) &&
        PK11_InitPin(slot, NULL, password != NULL ? password->data : "") != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "cannot set the password of the new NSS database %s", dir);
        ok = FALSE;
    }
    PK11_FreeSlot(slot);
    if (NSS_ShutdownContext(context) != SECSuccess && ok) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "the new NSS database %s did not shut down cleanly", dir);
        ok = FALSE;
    }
    /* pkcs11.txt names the folder it was made in: NSS writes a new one at the first opening. */
    ok = ok && rename_into(staging, dir, "key4.db", error) &&
         rename_into(staging, dir, "cert9.db", error);
    caback_remove_folder(staging);
    caback_sync_folder(dir);
    if (!ok)
        caback_restore_remove_created_db(dir, *created_dir);
    return ok;
}

void caback_restore_remove_created_db(const char *dir, gboolean remove_dir)
{
    for (gsize i = 0; i < G_N_ELEMENTS(db_files); i++) {
        g_autofree char *path = g_build_filename(dir, db_files[i], NULL);
        g_unlink(path);
    }
    /* The lock file the failed run made beside the database it made (caback_db_lock). */
    g_autofree char *lock = g_build_filename(dir, CABACK_DB_LOCK_NAME, NULL);
    g_unlink(lock);
    if (remove_dir)
        g_rmdir(dir);
}
