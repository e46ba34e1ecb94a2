/* caback restore / list, first stage: the facts of a PKCS#12 file, with no database. Owns
 * reading the file (caback_restore_read*), describing its certificates and keys, pairing keys with
 * certificates and computing their key IDs (caback_restore_inspect), and the lifetime of the
 * CabackRestorePlan that holds those facts. The decisions are in restore-plan.c, the import in
 * restore-apply.c. Every NSS reference taken here is released before returning. */
#include "config.h"

#include <caback/digest.h>
#include <caback/error.h>
#include <caback/keys.h>
#include <caback/nss-util.h>
#include <caback/plan-index.h>
#include <caback/restore.h>
#include <caback/stored-key-check.h>

#include "restore-internal.h"

#include <certdb.h>
#include <hasht.h>
#include <pk11pub.h>
#include <secoid.h>
#include <string.h>

/* ---- small helpers ---- */

char *caback_restore_hex_bytes(const guint8 *data, gsize len, const char *separator, gboolean upper)
{
    /* Sized exactly: a plan keeps several of these per certificate. */
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    gsize sep = separator != NULL ? strlen(separator) : 0;
    char *text = g_malloc(len > 0 ? 2 * len + sep * (len - 1) + 1 : 1);
    char *p = text;

    for (gsize i = 0; i < len; i++) {
        if (i > 0 && sep > 0) {
            memcpy(p, separator, sep);
            p += sep;
        }
        *p++ = digits[data[i] >> 4];
        *p++ = digits[data[i] & 0x0f];
    }
    *p = '\0';
    return text;
}

/* The decimal form of an unsigned big-endian integer (serial numbers have up to 20 bytes). */
static char *decimal_of(const guint8 *data, gsize len)
{
    g_autofree guint8 *n = g_memdup2(data, len);
    g_autoptr(GString) digits = g_string_new(NULL);
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
    return g_strndup(digits->str, digits->len); /* sized exactly, as above */
}

static GDateTime *datetime_of(PRTime t)
{
    return g_date_time_new_from_unix_utc(t / PR_USEC_PER_SEC);
}

/* The value NSS derives a key's CKA_ID from (see PK11_MakeIDFromPubKey and its users). */
GBytes *caback_restore_public_value_of(const SECKEYPublicKey *pub)
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

gboolean caback_restore_id_of_public_value(GBytes *value, CabackKeyId *id)
{
    gsize len;
    const guint8 *data = g_bytes_get_data(value, &len);
    SECItem item = {siBuffer, (unsigned char *)data, (unsigned int)len};
    g_autoptr(SECItem) hash = PK11_MakeIDFromPubKey(&item);

    return hash != NULL && caback_keyid_from_bytes(hash->data, hash->len, id, NULL);
}

/* " (\"name\")" after a bag number in messages, or "" when the bag has no friendlyName. */
char *caback_restore_bag_label(const CabackP12Attributes *attrs)
{
    if (attrs->friendly_name == NULL)
        return g_strdup("");
    return g_strdup_printf(" (\"%s\")", attrs->friendly_name);
}

/* ---- plan lifetime ---- */

static void cert_free(CabackRestoreCert *c)
{
    if (c == NULL) /* dropped (caback_restore_plan_drop_cert) */
        return;
    g_free(c->subject);
    g_free(c->issuer);
    g_free(c->serial_hex);
    g_free(c->serial_decimal);
    g_clear_pointer(&c->not_before, g_date_time_unref);
    g_clear_pointer(&c->not_after, g_date_time_unref);
    g_clear_pointer(&c->public_value, g_bytes_unref);
    g_free(c->nickname);
    g_free(c->trust);
    g_free(c->note);
    g_clear_pointer(&c->replaced, g_ptr_array_unref);
    g_free(c->old_trust);
    g_free(c->weak_reason);
    g_free(c);
}

static void key_free(CabackRestoreKey *k)
{
    if (k == NULL) /* dropped (caback_restore_plan_drop_key) */
        return;
    g_clear_pointer(&k->public_value, g_bytes_unref);
    g_free(k->problem);
    g_free(k->nickname);
    g_free(k->weak_reason);
    g_free(k);
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
    caback_restore_planning_free(plan->planning);
    if (plan->texts != NULL)
        g_string_chunk_free(plan->texts);
    g_free(plan);
}

void caback_restore_plan_drop_cert(CabackRestorePlan *plan, guint i)
{
    cert_free(g_steal_pointer(&plan->certs->pdata[i]));
}

char *caback_restore_cert_fingerprint(const CabackRestoreCert *c)
{
    return c->sha256_known ? caback_restore_hex_bytes(c->sha256, sizeof c->sha256, ":", TRUE)
                           : NULL;
}

void caback_restore_plan_drop_key(CabackRestorePlan *plan, guint i)
{
    CabackRestoreKey *k = g_steal_pointer(&plan->keys->pdata[i]);
    if (k == NULL)
        return;
    caback_p12_file_drop_key(plan->file, k->index);
    key_free(k);
}

/* ---- inspect ---- */

CERTCertificate *caback_restore_cert_decode(const CabackRestoreCert *c)
{
    gsize len;
    const guint8 *der = g_bytes_get_data(c->bag->der, &len);
    SECItem item = {siBuffer, (unsigned char *)der, (unsigned int)len};

    return __CERT_DecodeDERCertificate(&item, PR_FALSE, NULL);
}

/* *@slice = @part, a field NSS decoded out of @der without copying it (QuickDER points into its
 * input); FALSE when it lies anywhere else, so that no slice can outlive what it points into. */
static gboolean der_slice(const SECItem *part, GBytes *der, SECItem *slice)
{
    gsize len;
    guintptr start = (guintptr)g_bytes_get_data(der, &len);
    guintptr at = (guintptr)part->data;

    if (part->data == NULL || at < start || part->len > len || at - start > len - part->len)
        return FALSE;
    *slice = (SECItem){siBuffer, part->data, part->len};
    return TRUE;
}

static gboolean describe_cert(CabackRestorePlan *plan, CabackRestoreCert *c, GError **error)
{
    gsize len;
    const guint8 *der = g_bytes_get_data(c->bag->der, &len);
    g_autofree char *label = caback_restore_bag_label(&c->bag->attrs);

    g_autoptr(CERTCertificate) cert = caback_restore_cert_decode(c);
    if (cert == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_PKCS12,
                             "%s: certificate %u%s is not a valid X.509 certificate; the file "
                             "is damaged or was not written by a PKCS#12 tool",
                             plan->path, c->index + 1, label);
        return FALSE;
    }
    if (!der_slice(&cert->derSubject, c->bag->der, &c->der_subject) ||
        !der_slice(&cert->derIssuer, c->bag->der, &c->der_issuer) ||
        !der_slice(&cert->serialNumber, c->bag->der, &c->serial_number)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s: certificate %u%s: NSS did not read its subject, issuer and serial "
                    "number out of its DER; the file cannot be planned with this NSS",
                    plan->path, c->index + 1, label);
        return FALSE;
    }
    c->subject = g_strdup(cert->subjectName != NULL ? cert->subjectName : "");
    c->issuer = g_strdup(cert->issuerName != NULL ? cert->issuerName : "");

    /* Serial: drop the sign byte(s) DER adds, as openssl and certutil print it. */
    const guint8 *s = cert->serialNumber.data;
    gsize slen = cert->serialNumber.len;
    while (slen > 1 && s[0] == 0) {
        s++;
        slen--;
    }
    c->serial_hex = caback_restore_hex_bytes(s, slen, NULL, TRUE);
    c->serial_decimal = decimal_of(s, slen);

    PRTime nb, na;
    if (CERT_GetCertTimes(cert, &nb, &na) == SECSuccess) {
        c->not_before = datetime_of(nb);
        c->not_after = datetime_of(na);
    }
    c->sha256_known = PK11_HashBuf(SEC_OID_SHA256, c->sha256, der, (PRInt32)len) == SECSuccess;

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
        c->public_value = caback_restore_public_value_of(pub);
    if (c->public_value != NULL)
        c->id_known = caback_restore_id_of_public_value(c->public_value, &c->id);
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
SECKEYPrivateKey *caback_restore_probe_key(CabackRestorePlan *plan, CabackRestoreKey *k,
                                           GError **error)
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
    k->pairing = how;
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

/* Pair key @k, which neither localKeyID nor friendlyName paired, by the key itself: decrypt it
 * to learn its public value, then take the first unpaired certificate with that value, or one
 * whose public key verifies what the key signs. FALSE with @error only on a wrong password. */
static gboolean pair_by_key(CabackRestorePlan *plan, CabackRestoreKey *k,
                            CabackPlanIndex *by_public, GPtrArray *no_public, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(SECKEYPrivateKey) probe = caback_restore_probe_key(plan, k, &local);
    if (probe == NULL) {
        if (g_error_matches(local, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        k->problem =
            g_strdup_printf("cannot be decrypted to find its public key: %s", local->message);
        return TRUE;
    }
    g_autoptr(SECKEYPublicKey) pub = SECKEY_ConvertToPublicKey(probe);
    if (pub != NULL) {
        k->public_value = caback_restore_public_value_of(pub);
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
        g_autoptr(CERTCertificate) cert = caback_restore_cert_decode(c);
        g_autoptr(SECKEYPublicKey) cpub = cert != NULL ? CERT_ExtractPublicKey(cert) : NULL;
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
    return TRUE;
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
        if (!pair_by_key(plan, k, by_public, no_public, error))
            return FALSE;
    }
    return TRUE;
}

/* Describe key bag @i of the file into @slot (NSS's internal slot; nothing permanent is made):
 * its type and size, and why NSS cannot import it when it cannot. FALSE with @error when the key
 * cannot be decrypted. */
static gboolean describe_key(CabackRestorePlan *plan, PK11SlotInfo *slot, guint i, GError **error)
{
    CabackRestoreKey *k = g_new0(CabackRestoreKey, 1);
    k->index = i;
    k->bag = caback_p12_file_keys(plan->file)->pdata[i];
    k->cert_index = -1;
    k->duplicate_of = -1;
    g_ptr_array_add(plan->keys, k);

    g_autoptr(GError) local = NULL;
    if (!caback_p12_key_describe(plan->file, k->bag, slot, &k->type, &k->bits, &local)) {
        g_autofree char *label = caback_restore_bag_label(&k->bag->attrs);
        g_propagate_prefixed_error(error, g_steal_pointer(&local), "%s: key %u%s: ", plan->path,
                                   i + 1, label);
        return FALSE;
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
    plan->texts = g_string_chunk_new(1024);

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
    for (guint i = 0; i < keys->len; i++)
        if (!describe_key(plan, slot, i, error))
            return NULL;

    if (!pair_bags(plan, error))
        return NULL;

    for (guint i = 0; i < plan->keys->len; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        if (k->public_value != NULL)
            k->id_known = caback_restore_id_of_public_value(k->public_value, &k->id);
        if (!k->id_known && k->problem == NULL) {
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

static CabackRestorePlan *read_with(CabackSecret **data, const char *path,
                                    const CabackSecret *password, CabackP12File **file,
                                    GError **error)
{
    /* The digest of these very bytes, so that a signature checked on the file by name can be
     * tied to what is restored even if the file changed in between. */
    guint8 digest[SHA256_LENGTH];
    if (PK11_HashBuf(SEC_OID_SHA256, digest, (const unsigned char *)(*data)->data,
                     (PRInt32)(*data)->len) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot compute the SHA-256 of %s", path);
        return NULL;
    }
    g_autoptr(CabackP12File) f =
        caback_p12_read((const guint8 *)(*data)->data, (*data)->len, password, path, error);
    if (f == NULL)
        return NULL;
    /* Its bags are copies: the file's bytes would only add its size again to the plan's peak. */
    g_clear_pointer(data, caback_secret_free);
    CabackRestorePlan *plan = caback_restore_inspect(f, path, error);
    if (plan == NULL)
        return NULL;
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
    return caback_restore_read_data(&data, path, given, source, file, error);
}

CabackRestorePlan *caback_restore_read_data(CabackSecret **data, const char *path,
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
