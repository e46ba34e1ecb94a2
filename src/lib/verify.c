/* caback verify: the restore drill (see verify.h). The restore itself is caback's own
 * (caback_restore_inspect / _plan / _apply), so that the drill proves what a real restore does;
 * the checks after it are independent of the restore's own pairing check. */
#include "config.h"

#include <caback/progress.h>
#include <caback/atomic-file.h>
#include <caback/backup.h>
#include <caback/error.h>
#include <caback/keyid.h>
#include <caback/keys.h>
#include <caback/nss-util.h>
#include <caback/p12.h>
#include <caback/restore.h>
#include <caback/verify.h>

#include "restore-internal.h"
#include "token-objects.h"

#include <certdb.h>
#include <cryptohi.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <secerr.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small helpers ---- */

static char *hex_of(const guint8 *data, gsize len, gboolean upper)
{
    GString *s = g_string_sized_new(len * 2 + 1);

    for (gsize i = 0; i < len; i++)
        g_string_append_printf(s, upper ? "%02X" : "%02x", data[i]);
    return g_string_free(s, FALSE);
}

/* The text of @s in a block of its own size (a GString's block is up to twice as large): for
 * the strings a report keeps per certificate. */
static char *compact_text(GString *s)
{
    char *text = g_strndup(s->str, s->len);

    g_string_free(s, TRUE);
    return text;
}

/* The serial as openssl -serial prints it: uppercase hex without the sign byte DER adds. */
static char *serial_hex_of(const SECItem *serial)
{
    const guint8 *s = serial->data;
    gsize len = serial->len;

    while (len > 1 && s[0] == 0) {
        s++;
        len--;
    }
    return hex_of(s, len, TRUE);
}

static GBytes *bytes_of(const SECItem *item)
{
    return g_bytes_new(item->data, item->len);
}

/* A set of the byte strings of @array (GBytes*, kept by reference; NULL elements left out), so
 * that each "is it there?" of a comparison costs O(1) and not a scan: the comparisons of a file
 * of n certificates with a database of m stay linear in n + m. */
static GHashTable *bytes_set(GPtrArray *array)
{
    GHashTable *set = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
                                            (GDestroyNotify)g_bytes_unref, NULL);

    for (guint i = 0; array != NULL && i < array->len; i++)
        if (array->pdata[i] != NULL)
            g_hash_table_add(set, g_bytes_ref(array->pdata[i]));
    return set;
}

static gboolean bytes_in(GHashTable *set, GBytes *bytes)
{
    return bytes != NULL && g_hash_table_contains(set, bytes);
}

/* A SECItem as a hash key (the bytes it points to, which must outlive the table). */
static guint secitem_hash(gconstpointer p)
{
    const SECItem *item = p;
    guint h = 5381;

    for (unsigned int i = 0; i < item->len; i++)
        h = h * 33 + item->data[i];
    return h;
}

static gboolean secitem_equal(gconstpointer a, gconstpointer b)
{
    return SECITEM_ItemsAreEqual(a, b);
}

static char *cert_subject(CERTCertificate *cert)
{
    char *ascii = CERT_NameToAscii(&cert->subject);
    char *subject = g_strdup(ascii != NULL ? ascii : "(subject not printable)");

    if (ascii != NULL)
        PORT_Free(ascii);
    return subject;
}

/* The key ID NSS gives a key with public key @pub (PK11_MakeIDFromPubKey over the value restore
 * and NSS's own key generation use), or NULL for a key type without one. */
static GBytes *key_id_of(const SECKEYPublicKey *pub)
{
    const SECItem *value = NULL;

    switch (pub->keyType) {
    case rsaKey:
    case rsaPssKey:
    case rsaOaepKey:
        value = &pub->u.rsa.modulus;
        break;
    case dsaKey:
        value = &pub->u.dsa.publicValue;
        break;
    case dhKey:
        value = &pub->u.dh.publicValue;
        break;
    case ecKey:
        value = &pub->u.ec.publicValue;
        break;
    default:
        return NULL;
    }
    if (value->data == NULL || value->len == 0)
        return NULL;
    g_autoptr(SECItem) id = PK11_MakeIDFromPubKey((SECItem *)value);
    return id != NULL ? bytes_of(id) : NULL;
}

/* ---- the live database ---- */

static void db_cert_free(CabackVerifyDbCert *c)
{
    if (c == NULL)
        return;
    g_free(c->nickname);
    g_free(c->subject);
    g_free(c->serial_hex);
    if (c->der != NULL)
        g_bytes_unref(c->der);
    if (c->ckaid != NULL)
        g_bytes_unref(c->ckaid);
    if (c->key_id != NULL)
        g_bytes_unref(c->key_id);
    g_free(c->trust);
    g_free(c);
}

static void db_key_free(CabackVerifyDbKey *k)
{
    if (k == NULL)
        return;
    g_free(k->nickname);
    if (k->ckaid != NULL)
        g_bytes_unref(k->ckaid);
    if (k->key_id != NULL)
        g_bytes_unref(k->key_id);
    g_free(k);
}

void caback_verify_inventory_free(CabackVerifyInventory *inventory)
{
    if (inventory == NULL)
        return;
    g_free(inventory->dir);
    g_free(inventory->token);
    g_ptr_array_unref(inventory->certs);
    g_ptr_array_unref(inventory->all_certs);
    g_ptr_array_unref(inventory->all_keys);
    g_ptr_array_unref(inventory->notes);
    g_ptr_array_unref(inventory->keys);
    g_ptr_array_unref(inventory->trusted_cas);
    g_free(inventory);
}

CabackVerifyInventory *caback_verify_inventory_new(const char *dir, const char *token)
{
    CabackVerifyInventory *inv = g_new0(CabackVerifyInventory, 1);

    inv->dir = g_strdup(dir);
    inv->token = g_strdup(token);
    inv->certs = g_ptr_array_new_with_free_func((GDestroyNotify)db_cert_free);
    inv->all_certs = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    inv->all_keys = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    inv->notes = g_ptr_array_new_with_free_func(g_free);
    inv->keys = g_ptr_array_new_with_free_func((GDestroyNotify)db_key_free);
    inv->trusted_cas = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    return inv;
}

static void inventory_keys(CabackDb *db, CabackVerifyInventory *inv)
{
    g_autoptr(SECKEYPrivateKeyList) keys = PK11_ListPrivKeysInSlot(db->slot, NULL, db);

    if (keys == NULL)
        return;
    for (SECKEYPrivateKeyListNode *node = PRIVKEY_LIST_HEAD(keys); !PRIVKEY_LIST_END(node, keys);
         node = PRIVKEY_LIST_NEXT(node)) {
        g_autoptr(SECItem) ckaid = PK11_GetLowLevelKeyIDForPrivateKey(node->key);
        if (ckaid != NULL)
            g_ptr_array_add(inv->all_keys, bytes_of(ckaid));
        /* A key whose CKA_ID is not NSS's own (some HSMs) is still the same key when its public
         * value matches. */
        g_autoptr(SECKEYPublicKey) pub = caback_token_public_key_of(node->key);
        GBytes *id = pub != NULL ? key_id_of(pub) : NULL;
        if (id != NULL)
            g_ptr_array_add(inv->all_keys, id);

        /* Each key on its own, with or without certificate: a pending re-key is a key whose
         * certificate is not issued yet, and a backup without it loses it. */
        g_autoptr(CabackKeyInfo) info = caback_keys_describe(db, node->key, NULL);
        CabackVerifyDbKey *k = g_new0(CabackVerifyDbKey, 1);
        k->nickname = g_strdup(info->nickname);
        k->ckaid = g_bytes_ref(info->raw_id);
        k->id_known = info->id_valid;
        k->id = info->id;
        k->key_id = id != NULL ? g_bytes_ref(id) : NULL;
        k->extractable = info->extractable != 0;
        g_ptr_array_add(inv->keys, k);
    }
}

static char *trust_of(CERTCertificate *cert)
{
    CERTCertTrust trust = {0};
    if (CERT_GetCertTrust(cert, &trust) != SECSuccess)
        memset(&trust, 0, sizeof trust);
    g_autofree char *text = caback_backup_trust_string(&trust);
    return g_strdup(text); /* its own size: a report keeps one per certificate */
}

static gboolean trusted_as_ca(CERTCertificate *cert)
{
    CERTCertTrust t = {0};
    const unsigned int ca = CERTDB_TRUSTED_CA | CERTDB_TRUSTED_CLIENT_CA;
    return CERT_GetCertTrust(cert, &t) == SECSuccess &&
           ((t.sslFlags | t.emailFlags | t.objectSigningFlags) & ca) != 0;
}

CabackVerifyInventory *caback_verify_inventory(CabackDb *db, GError **error)
{
    /* The selection a full backup makes (without the exportability check, which is no concern
     * of a comparison): the certificates with their key on the token, and their chains. */
    g_autoptr(CabackBackupSelection) sel = caback_backup_select_full(db, NULL, TRUE, error);
    if (sel == NULL)
        return NULL;

    CabackVerifyInventory *inv = caback_verify_inventory_new(db->dir, db->token_name);
    inv->internal = PK11_IsInternalKeySlot(db->slot);

    for (guint i = 0; i < sel->certs->len; i++) {
        const CabackBackupCert *c = sel->certs->pdata[i];
        CabackVerifyDbCert *dc = g_new0(CabackVerifyDbCert, 1);
        dc->nickname = g_strdup(c->nickname);
        dc->subject = g_strdup(c->subject);
        dc->serial_hex = serial_hex_of(&c->cert->serialNumber);
        dc->der = bytes_of(&c->cert->derCert);
        dc->trust = trust_of(c->cert);
        g_ptr_array_add(inv->certs, dc);
        if (!c->selected)
            continue;
        g_autoptr(SECKEYPrivateKey) key = caback_token_private_key_of(db->slot, c->cert, db);
        if (key == NULL)
            continue;
        g_autoptr(CabackKeyInfo) info = caback_keys_describe(db, key, c->cert);
        g_autoptr(SECKEYPublicKey) pub = CERT_ExtractPublicKey(c->cert);
        dc->has_key = TRUE;
        dc->ckaid = g_bytes_ref(info->raw_id);
        dc->id_known = info->id_valid;
        dc->id = info->id;
        dc->extractable = info->extractable != 0;
        dc->key_id = pub != NULL ? key_id_of(pub) : NULL;
    }
    for (guint i = 0; i < sel->warnings->len; i++)
        g_ptr_array_add(inv->notes, g_strdup_printf("database %s: %s", db->dir,
                                                    (const char *)sel->warnings->pdata[i]));

    g_autoptr(CERTCertList) all = PK11_ListCerts(PK11CertListAll, db);
    if (all != NULL)
        for (CERTCertListNode *node = CERT_LIST_HEAD(all); !CERT_LIST_END(node, all);
             node = CERT_LIST_NEXT(node)) {
            g_ptr_array_add(inv->all_certs, bytes_of(&node->cert->derCert));
            if (trusted_as_ca(node->cert))
                g_ptr_array_add(inv->trusted_cas, bytes_of(&node->cert->derSubject));
        }
    inventory_keys(db, inv);
    return inv;
}

/* ---- report ---- */

static void key_free(CabackVerifyKey *k)
{
    if (k == NULL)
        return;
    g_free(k->nickname);
    g_clear_pointer(&k->key_id, g_bytes_unref);
    g_free(k->problem);
    g_free(k);
}

static void cert_free(CabackVerifyCert *c)
{
    if (c == NULL)
        return;
    g_free(c->nickname);
    g_free(c->subject);
    g_free(c->issuer);
    g_free(c->serial_hex);
    g_free(c->trust);
    if (c->der != NULL)
        g_bytes_unref(c->der);
    if (c->not_before != NULL)
        g_date_time_unref(c->not_before);
    if (c->not_after != NULL)
        g_date_time_unref(c->not_after);
    g_free(c->chain);
    g_free(c);
}

static void trust_diff_free(CabackVerifyTrustDiff *d)
{
    if (d == NULL)
        return;
    g_free(d->nickname);
    g_free(d->subject);
    g_free(d->serial_hex);
    g_free(d->backup_trust);
    g_free(d->database_trust);
    g_free(d);
}

static void rootless_free(CabackVerifyRootless *r)
{
    if (r == NULL)
        return;
    g_free(r->top);
    g_free(r->issuer);
    if (r->issuer_der != NULL)
        g_bytes_unref(r->issuer_der);
    g_ptr_array_unref(r->certificates);
    g_free(r);
}

static void item_free(CabackVerifyItem *item)
{
    if (item == NULL)
        return;
    g_free(item->nickname);
    g_clear_pointer(&item->ckaid, g_bytes_unref);
    g_free(item->subject);
    g_free(item->serial_hex);
    g_free(item);
}

void caback_verify_report_free(CabackVerifyReport *report)
{
    if (report == NULL)
        return;
    g_free(report->path);
    g_free(report->sha256);
    g_ptr_array_unref(report->expiring);
    g_ptr_array_unref(report->keys);
    g_ptr_array_unref(report->certs);
    g_free(report->database);
    g_free(report->token);
    g_ptr_array_unref(report->missing_from_backup);
    g_ptr_array_unref(report->not_in_database);
    g_ptr_array_unref(report->notes);
    g_ptr_array_unref(report->problems);
    g_ptr_array_unref(report->trust_differences);
    g_ptr_array_unref(report->missing_keys);
    g_ptr_array_unref(report->keys_without_certificate);
    g_ptr_array_unref(report->chains_without_root);
    g_ptr_array_unref(report->expired);
    g_free(report);
}

CabackVerifyReport *caback_verify_report_new(const char *path)
{
    CabackVerifyReport *r = g_new0(CabackVerifyReport, 1);

    r->path = g_strdup(path);
    r->keys = g_ptr_array_new_with_free_func((GDestroyNotify)key_free);
    r->certs = g_ptr_array_new_with_free_func((GDestroyNotify)cert_free);
    r->expiring = g_ptr_array_new();
    r->missing_from_backup = g_ptr_array_new_with_free_func((GDestroyNotify)item_free);
    r->not_in_database = g_ptr_array_new_with_free_func((GDestroyNotify)item_free);
    r->notes = g_ptr_array_new_with_free_func(g_free);
    r->problems = g_ptr_array_new_with_free_func(g_free);
    r->trust_differences = g_ptr_array_new_with_free_func((GDestroyNotify)trust_diff_free);
    r->missing_keys = g_ptr_array_new_with_free_func((GDestroyNotify)item_free);
    r->keys_without_certificate = g_ptr_array_new_with_free_func((GDestroyNotify)item_free);
    r->chains_without_root = g_ptr_array_new_with_free_func((GDestroyNotify)rootless_free);
    r->expired = g_ptr_array_new();
    r->chain_ok = TRUE;
    return r;
}

static CabackVerifyItem *key_item(const char *nickname, gboolean id_known,
                                  const CabackKeyId *id, GBytes *ckaid);
static void problem(CabackVerifyReport *r, const char *format, ...) G_GNUC_PRINTF(2, 3);
static void problem(CabackVerifyReport *r, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    g_ptr_array_add(r->problems, g_strdup_vprintf(format, args));
    va_end(args);
    r->restorable = FALSE;
}

/* ---- checks in the temporary database ---- */

static const char *cert_name(const CabackVerifyCert *c)
{
    return c->nickname != NULL ? c->nickname : c->subject;
}

/* A signature over a fresh random value, made with the restored private key and verified with
 * the restored certificate's public key: the pair works as the CA will use it. */
static void check_key(CabackDb *db, CabackRestoreCert *rc, CabackVerifyKey *vk)
{
    gsize len = 0;
    const guint8 *der = g_bytes_get_data(rc->bag->der, &len);
    SECItem item = {siBuffer, (unsigned char *)der, (unsigned int)len};
    g_autoptr(CERTCertificate) cert = CERT_FindCertByDERCert(CERT_GetDefaultCertDB(), &item);
    if (cert == NULL) {
        g_autofree char *why = caback_nss_error_describe(PORT_GetError());
        vk->problem = g_strdup_printf("its certificate is not in the temporary database after "
                                      "the restore: %s",
                                      why);
        return;
    }
    /* The key NSS pairs with the certificate: the one whose CKA_ID its object names. */
    g_autoptr(SECItem) ckaid = caback_token_cert_key_id(db->slot, cert);
    if (ckaid == NULL) {
        vk->problem = g_strdup_printf("its certificate is not on token \"%s\" of the temporary "
                                      "database after the restore",
                                      db->token_name);
        return;
    }
    g_autoptr(SECKEYPrivateKey) priv = PK11_FindKeyByKeyID(db->slot, ckaid, db);
    if (priv == NULL) {
        g_autofree char *why = caback_nss_error_describe(PORT_GetError());
        vk->problem = g_strdup_printf("NSS finds no private key for its certificate after the "
                                      "restore: %s",
                                      why);
        return;
    }
    g_autoptr(SECKEYPublicKey) pub = CERT_ExtractPublicKey(cert);
    KeyType type = priv->keyType == rsaPssKey ? rsaKey : priv->keyType;
    SECOidTag alg = SEC_GetSignatureAlgorithmOidTag(type, SEC_OID_SHA256);
    guint8 value[32];
    if (pub == NULL || alg == SEC_OID_UNKNOWN) {
        vk->problem = g_strdup_printf("caback cannot make a test signature with a %s key",
                                      caback_keys_type_name(priv->keyType));
        return;
    }
    if (PK11_GenerateRandom(value, sizeof value) != SECSuccess) {
        g_autofree char *why = caback_nss_error_describe(PORT_GetError());
        vk->problem = g_strdup_printf("no random test value: %s", why);
        return;
    }
    SECItem sig = {siBuffer, NULL, 0};
    if (SEC_SignData(&sig, value, sizeof value, priv, alg) != SECSuccess) {
        g_autofree char *why = caback_nss_error_describe(PORT_GetError());
        vk->problem = g_strdup_printf("the restored key cannot sign: %s", why);
        return;
    }
    SECStatus rv = VFY_VerifyData(value, sizeof value, pub, &sig, alg, db);
    int err = PORT_GetError();
    SECITEM_FreeItem(&sig, PR_FALSE);
    if (rv != SECSuccess) {
        g_autofree char *why = caback_nss_error_describe(err);
        vk->problem = g_strdup_printf("a test signature made with the restored key does not "
                                      "verify with its certificate: %s",
                                      why);
        return;
    }
    vk->signs = TRUE;
}

static const struct {
    SECCertificateUsage bit;
    const char *name;
} usage_names[] = {
    {certificateUsageSSLClient, "SSL client"},
    {certificateUsageSSLServer, "SSL server"},
    {certificateUsageSSLCA, "SSL CA"},
    {certificateUsageEmailSigner, "email signing"},
    {certificateUsageEmailRecipient, "email encryption"},
    {certificateUsageObjectSigner, "object signing"},
    {certificateUsageStatusResponder, "OCSP responder"},
};

static char *usages_text(SECCertificateUsage usages)
{
    GString *s = g_string_new(NULL);

    for (gsize i = 0; i < G_N_ELEMENTS(usage_names); i++)
        if (usages & usage_names[i].bit)
            g_string_append_printf(s, "%s%s", s->len > 0 ? ", " : "", usage_names[i].name);
    return compact_text(s);
}

/* Why the chain of @cert does not verify at @when: the first error of a verification for the
 * usage its extensions suggest, with the certificate it concerns. */
static char *chain_failure(CERTCertificate *cert, PRTime when, void *wincx)
{
    g_autoptr(PLArenaPool) arena = PORT_NewArena(DER_DEFAULT_CHUNKSIZE);
    CERTVerifyLog log = {.arena = arena};
    SECCertUsage usage = CERT_IsCACert(cert, NULL) ? certUsageAnyCA : certUsageSSLClient;

    if (arena == NULL)
        return g_strdup("out of memory");
    CERT_VerifyCert(CERT_GetDefaultCertDB(), cert, PR_TRUE, usage, when, wincx, &log);
    GString *why = g_string_new(NULL);
    for (CERTVerifyLogNode *node = log.head; node != NULL; node = node->next) {
        /* Usage and key-usage complaints are about the usage tried, not the chain. */
        if (node->error == SEC_ERROR_INADEQUATE_KEY_USAGE ||
            node->error == SEC_ERROR_INADEQUATE_CERT_TYPE || why->len > 0) {
            CERT_DestroyCertificate(node->cert);
            continue;
        }
        g_autofree char *text = caback_nss_error_describe((int)node->error);
        g_autofree char *subject = cert_subject(node->cert);
        if (node->error == SEC_ERROR_UNKNOWN_ISSUER) {
            char *issuer = CERT_NameToAscii(&node->cert->issuer);
            g_string_append_printf(why, "the issuer \"%s\" of \"%s\" is not in the file: %s",
                                   issuer != NULL ? issuer : "?", subject, text);
            if (issuer != NULL)
                PORT_Free(issuer);
        } else {
            g_string_append_printf(why, "at \"%s\": %s", subject, text);
        }
        CERT_DestroyCertificate(node->cert);
    }
    if (why->len == 0) {
        g_autofree char *text = caback_nss_error_describe(PORT_GetError());
        g_string_append_printf(why, "it verifies for no usage: %s", text);
    }
    return compact_text(why);
}

/* The chain of every certificate is checked in the temporary database, where the only trust
 * is what the restore set from the file: a chain verifies only up to a CA certificate of the
 * file. A certificate outside its validity is checked at a moment within it (its expiry is
 * reported on its own), so that an old certificate kept for history does not hide whether its
 * chain is whole. */
static void check_chain(CabackDb *db, CERTCertificate *cert, CabackVerifyCert *vc)
{
    PRTime now = PR_Now(), when = now, nb = 0, na = 0;
    SECCertificateUsage usages = 0;

    if (CERT_GetCertTimes(cert, &nb, &na) == SECSuccess) {
        if (now > na)
            when = na - PR_USEC_PER_SEC;
        else if (now < nb)
            when = nb + PR_USEC_PER_SEC;
    }
    vc->checked_at_now = when == now;
    CERT_VerifyCertificate(CERT_GetDefaultCertDB(), cert, PR_TRUE, certificateUsageCheckAllUsages,
                           when, db, NULL, &usages);
    /* Only the usages that need a whole chain count: NSS reports "verify CA" and "any CA" even
     * for a certificate whose issuer is missing. */
    SECCertificateUsage chained = 0;
    for (gsize i = 0; i < G_N_ELEMENTS(usage_names); i++)
        chained |= usage_names[i].bit;
    usages &= chained;
    if (usages != 0) {
        vc->chain_ok = TRUE;
        vc->chain = usages_text(usages);
        return;
    }
    vc->chain = chain_failure(cert, when, db);
}

static void check_cert(CabackVerifyReport *r, CabackDb *db, CabackRestoreCert *rc, GDateTime *now)
{
    CabackVerifyCert *vc = g_new0(CabackVerifyCert, 1);
    gsize len = 0;
    const guint8 *der = g_bytes_get_data(rc->bag->der, &len);
    SECItem item = {siBuffer, (unsigned char *)der, (unsigned int)len};

    /* The plan ends with the drill, and nothing reads these after this check (find_rootless ran
     * before): the report takes them rather than copies, about 200 bytes per certificate at the
     * drill's peak. (The plan's index of nicknames borrows rc->nickname: it stays allocated.) */
    vc->nickname = g_steal_pointer(&rc->nickname);
    vc->subject = g_steal_pointer(&rc->subject);
    vc->issuer = g_steal_pointer(&rc->issuer);
    vc->serial_hex = g_steal_pointer(&rc->serial_hex);
    vc->trust = g_strdup(rc->trust != NULL ? rc->trust : ",,");
    vc->has_key = rc->key_index >= 0;
    vc->is_ca = rc->is_ca;
    vc->der = g_bytes_ref(rc->bag->der);
    if (rc->not_before != NULL)
        vc->not_before = g_date_time_ref(rc->not_before);
    if (rc->not_after != NULL) {
        vc->not_after = g_date_time_ref(rc->not_after);
        GTimeSpan left = g_date_time_difference(rc->not_after, now);
        /* Floor division: an hour after expiry is day -1, not day 0. */
        vc->days_left = left >= 0 ? left / G_TIME_SPAN_DAY : -((-left - 1) / G_TIME_SPAN_DAY) - 1;
        if (left < (GTimeSpan)CABACK_VERIFY_EXPIRY_DAYS * G_TIME_SPAN_DAY)
            g_ptr_array_add(r->expiring, vc);
        /* A CA certificate, or one with its key (a system certificate the CA runs with). */
        if (left < 0 && (vc->is_ca || vc->has_key))
            g_ptr_array_add(r->expired, vc);
    }
    g_ptr_array_add(r->certs, vc);

    g_autoptr(CERTCertificate) cert = CERT_FindCertByDERCert(CERT_GetDefaultCertDB(), &item);
    if (cert == NULL) {
        g_autofree char *why = caback_nss_error_describe(PORT_GetError());
        vc->chain = g_strdup_printf("not in the temporary database after the restore: %s", why);
    } else {
        /* The trust a restore of the file really sets, read back as the database shows it. */
        g_free(vc->trust);
        vc->trust = trust_of(cert);
        check_chain(db, cert, vc);
    }
    if (!vc->chain_ok) {
        r->chain_ok = FALSE;
        problem(r, "the chain of certificate \"%s\" (serial 0x%s) does not verify: %s",
                cert_name(vc), vc->serial_hex, vc->chain);
    }
}

/* The issuer of each certificate of @plan among its certificates: the index of the first one
 * (in the file's order) whose DER subject is its DER issuer; -1 for a self-signed certificate
 * and for one whose issuer is not in the file. One hash table by DER subject: linear. */
static gint *issuers_in_file(const CabackRestorePlan *plan)
{
    guint n = plan->certs->len;
    gint *up = g_new(gint, MAX(n, 1));
    g_autoptr(GHashTable) by_subject = g_hash_table_new(secitem_hash, secitem_equal);

    for (guint i = 0; i < n; i++) {
        const CabackRestoreCert *c = plan->certs->pdata[i];
        if (!g_hash_table_contains(by_subject, &c->der_subject))
            g_hash_table_insert(by_subject, (gpointer)&c->der_subject, GUINT_TO_POINTER(i + 1));
    }
    for (guint i = 0; i < n; i++) {
        const CabackRestoreCert *c = plan->certs->pdata[i];
        up[i] = c->self_signed
                    ? -1
                    : (gint)GPOINTER_TO_UINT(g_hash_table_lookup(by_subject, &c->der_issuer)) - 1;
    }
    return up;
}

/* Where the walk up the issuers from each certificate ends. */
typedef struct {
    gint *up;       /* issuers_in_file */
    guint8 *state;  /* 0 not reached yet, 1 on the walk under way, 2 known */
    gint *top;      /* known, ending at a certificate without issuer: that one */
    guint *dist;    /* known, ending in a cycle: the steps to reach it */
    guint *cycle;   /* ... the offset of the cycle in members */
    guint *len;     /* ... its length (0: not a cycle) */
    guint *pos;     /* ... the position in it where the walk enters it */
    GArray *members; /* guint: the certificates of each cycle, in the order of the walk */
    GArray *path;    /* guint: the walk under way */
} ChainWalk;

/* Walk up from @start until a certificate without issuer in the file, a cycle, or a
 * certificate already known; then every certificate of the walk is known. Each certificate
 * is walked through once in all. */
static void walk_up(ChainWalk *w, guint start)
{
    guint v = start;

    g_array_set_size(w->path, 0);
    while (w->state[v] == 0 && w->up[v] >= 0) {
        w->state[v] = 1;
        g_array_append_val(w->path, v);
        v = (guint)w->up[v];
    }
    if (w->state[v] == 0) { /* a certificate without issuer: the top */
        w->state[v] = 2;
        w->top[v] = (gint)v;
    } else if (w->state[v] == 1) { /* a cycle: v and the certificates after it on the walk */
        guint k = 0;
        while (g_array_index(w->path, guint, k) != v)
            k++;
        guint offset = w->members->len, cycle_len = w->path->len - k;
        for (guint j = 0; j < cycle_len; j++) {
            guint u = g_array_index(w->path, guint, k + j);
            g_array_append_val(w->members, u);
            w->state[u] = 2;
            w->cycle[u] = offset;
            w->len[u] = cycle_len;
            w->pos[u] = j;
        }
        g_array_set_size(w->path, k);
    }
    while (w->path->len > 0) {
        guint u = g_array_index(w->path, guint, w->path->len - 1), above = (guint)w->up[u];
        g_array_set_size(w->path, w->path->len - 1);
        w->state[u] = 2;
        w->top[u] = w->top[above];
        w->len[u] = w->len[above];
        w->cycle[u] = w->cycle[above];
        w->pos[u] = w->pos[above];
        w->dist[u] = w->dist[above] + 1;
    }
}

/* The highest certificate of the file in the chain of each certificate of @plan: where the
 * walk up its issuers (by DER name) ends, at a self-signed certificate or one whose issuer is
 * not in the file. In a cycle of issuers, where a walk of n + 1 steps ends (n certificates in
 * the file). Linear in n. */
static gint *chain_tops(const CabackRestorePlan *plan)
{
    guint n = plan->certs->len, size = MAX(n, 1);
    ChainWalk w = {.up = issuers_in_file(plan),
                   .state = g_new0(guint8, size),
                   .top = g_new0(gint, size),
                   .dist = g_new0(guint, size),
                   .cycle = g_new0(guint, size),
                   .len = g_new0(guint, size),
                   .pos = g_new0(guint, size),
                   .members = g_array_new(FALSE, FALSE, sizeof(guint)),
                   .path = g_array_new(FALSE, FALSE, sizeof(guint))};

    for (guint i = 0; i < n; i++) {
        if (w.state[i] == 0)
            walk_up(&w, i);
        if (w.len[i] > 0) {
            guint steps = n + 1 - w.dist[i];
            w.top[i] = (gint)g_array_index(w.members, guint,
                                           w.cycle[i] + (w.pos[i] + steps) % w.len[i]);
        }
    }
    g_free(w.up);
    g_free(w.state);
    g_free(w.dist);
    g_free(w.cycle);
    g_free(w.len);
    g_free(w.pos);
    g_array_unref(w.members);
    g_array_unref(w.path);
    return w.top;
}

/* The chains of the file that stop below their root: from each certificate, follow the issuer
 * among the file's certificates (by DER name) until a self-signed one; when the top one is not
 * self-signed, its issuer is missing. The restore trusts a CA certificate without its key as an
 * anchor by its role, so the chain "verifies" in the temporary database: this is the check that
 * does not take the role for proof. One finding per missing root. */
static void find_rootless(CabackVerifyReport *r, const CabackRestorePlan *plan)
{
    g_autofree gint *tops = chain_tops(plan);
    g_autoptr(GHashTable) by_issuer = g_hash_table_new(g_bytes_hash, g_bytes_equal);

    for (guint i = 0; i < plan->certs->len; i++) {
        const CabackRestoreCert *start = plan->certs->pdata[i];
        const CabackRestoreCert *top = plan->certs->pdata[tops[i]];
        if (start->duplicate_of >= 0 || top->self_signed)
            continue;
        g_autoptr(GBytes) issuer = bytes_of(&top->der_issuer);
        CabackVerifyRootless *found = g_hash_table_lookup(by_issuer, issuer);
        if (found == NULL) {
            found = g_new0(CabackVerifyRootless, 1);
            found->top = g_strdup(top->subject);
            found->issuer = g_strdup(top->issuer);
            found->issuer_der = g_bytes_ref(issuer);
            found->certificates = g_ptr_array_new_with_free_func(g_free);
            g_ptr_array_add(r->chains_without_root, found);
            g_hash_table_insert(by_issuer, found->issuer_der, found);
        }
        g_ptr_array_add(found->certificates,
                        g_strdup(start->nickname != NULL ? start->nickname : start->subject));
    }
}

/* ---- the drill ---- */

/* The file's digest and contents, decrypted with @password; what the reader noticed (and a
 * missing MAC) becomes a note of @r. */
static CabackP12File *read_for_drill(CabackVerifyReport *r, const char *path, const guint8 *data,
                                     gsize len, const CabackSecret *password, GError **error)
{
    guint8 digest[32];

    if (PK11_HashBuf(SEC_OID_SHA256, digest, data, (PRInt32)len) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot compute the SHA-256 of %s", path);
        return NULL;
    }
    r->sha256 = hex_of(digest, sizeof digest, FALSE);

    caback_progress_report("decrypting the file", 0, 0);
    CabackP12File *file = caback_p12_read(data, len, password, path, error);
    if (file == NULL)
        return NULL;
    const CabackP12Info *info = caback_p12_file_info(file);
    for (guint i = 0; info->warnings != NULL && i < info->warnings->len; i++)
        g_ptr_array_add(r->notes,
                        g_strdup_printf("%s: %s", path, (const char *)info->warnings->pdata[i]));
    r->integrity = caback_p12_integrity(info);
    if (info->mac == NULL)
        g_ptr_array_add(r->notes, g_strdup_printf("%s has no MAC: nothing proves that it is the "
                                                  "file that was written",
                                                  path));
    return file;
}

/* The drill proves the keys restorable; a weak key's CA trust, which restore refuses without
 * --allow-weak-keys, is a note here rather than a failed drill. */
static void note_weak_keys(CabackVerifyReport *r, const CabackRestorePlan *plan)
{
    for (guint i = 0; i < plan->certs->len; i++) {
        const CabackRestoreCert *c = plan->certs->pdata[i];
        if (c->weak != CABACK_WEAK_KEY_NONE && c->duplicate_of < 0)
            g_ptr_array_add(r->notes,
                            g_strdup_printf("certificate \"%s\" has a weak key (%s)%s", c->nickname,
                                            c->weak_reason,
                                            c->trust != NULL && (strchr(c->trust, 'C') != NULL ||
                                                                 strchr(c->trust, 'T') != NULL)
                                                ? ": caback restore gives it CA trust only with "
                                                  "--allow-weak-keys"
                                                : ""));
    }
}

/* A file whose own bags conflict cannot be restored even into an empty database: fail, naming
 * every conflict. */
static gboolean refuse_conflicts(const CabackRestorePlan *plan, const char *path, GError **error)
{
    if (plan->conflicts == 0)
        return TRUE;
    GString *what = g_string_new(NULL);
    for (guint i = 0; i < plan->certs->len; i++) {
        const CabackRestoreCert *c = plan->certs->pdata[i];
        if (c->action == CABACK_RESTORE_CONFLICT)
            g_string_append_printf(what, "; certificate \"%s\": %s", c->nickname,
                                   c->note != NULL ? c->note : "conflict");
    }
    for (guint i = 0; i < plan->keys->len; i++) {
        const CabackRestoreKey *k = plan->keys->pdata[i];
        if (k->action != CABACK_RESTORE_CONFLICT)
            continue;
        g_autofree char *nss_id = k->id_known ? caback_keyid_to_nss(&k->id) : NULL;
        g_string_append_printf(what, "; key %s: %s", nss_id ? nss_id : "?",
                               k->note != NULL ? k->note : "conflict");
    }
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                "%s cannot be restored even into an empty database: caback restore finds "
                "%u conflict(s) within the file%s",
                path, plan->conflicts, what->str);
    g_string_free(what, TRUE);
    return FALSE;
}

/* The report's entry for key @k of @plan, which the drill restored: it signs a test value its
 * certificate verifies, or why not. */
static void check_key_of_plan(CabackVerifyReport *r, CabackDb *db, CabackRestorePlan *plan,
                              CabackRestoreKey *k)
{
    if (k->duplicate_of >= 0)
        return;
    CabackVerifyKey *vk = g_new0(CabackVerifyKey, 1);
    vk->nickname = g_strdup(k->nickname);
    vk->type = k->type_name;
    vk->bits = k->bits;
    if (k->id_known)
        vk->key_id = g_bytes_new(k->id.bytes, sizeof k->id.bytes);
    vk->id_known = k->id_known;
    vk->id = k->id;
    g_ptr_array_add(r->keys, vk);
    caback_progress_report("checking that each key signs for its certificate", k->index + 1,
                           plan->keys->len);
    g_autofree char *nss_id = k->id_known ? caback_keyid_to_nss(&k->id) : NULL;
    if (k->cert_index < 0) {
        g_ptr_array_add(r->keys_without_certificate,
                        key_item(NULL, vk->id_known, &vk->id, NULL));
        problem(r,
                "key %s has no certificate in the file: it restores as a key without "
                "certificate that nothing can use, and caback cannot check it; back it up "
                "with its certificate",
                nss_id != NULL ? nss_id : "?");
        return;
    }
    check_key(db, plan->certs->pdata[k->cert_index], vk);
    if (vk->problem != NULL)
        problem(r, "the key of \"%s\" (key ID %s): %s",
                vk->nickname != NULL ? vk->nickname : "?",
                nss_id != NULL ? nss_id : "?", vk->problem);
}

/* Every key of the restored file signs a test value its certificate verifies; a key without a
 * certificate is a problem. Each key of the plan, and its bag in the file, is freed once checked,
 * so that the report grows into their room: a file of many keys would otherwise have the plan,
 * the file's keys and the report at once. */
static void check_keys(CabackVerifyReport *r, CabackDb *db, CabackRestorePlan *plan)
{
    for (guint i = 0; i < plan->keys->len; i++) {
        check_key_of_plan(r, db, plan, plan->keys->pdata[i]);
        caback_restore_plan_drop_key(plan, i);
    }
}

/* The drill's temporary database: its folder, the password nobody else knows, and its opening. */
typedef struct {
    const char *dir;
    const CabackSecret *password;
    CabackDb *db;
} DrillDb;

/* Open the temporary database and log in to it. */
static gboolean drill_db_open(DrillDb *d, GError **error)
{
    d->db = caback_restore_open_throwaway_db(d->dir, d->password, error);
    return d->db != NULL;
}

/* Shut NSS down and open the temporary database again. NSS keeps a CRL cache entry (about
 * 1.1 KB) for every issuer a chain check meets, until it shuts down, and has no call that drops
 * one: on a file of many self-issued certificates, each its own issuer, the drill would grow
 * with every certificate checked. */
static gboolean drill_db_reopen(DrillDb *d, GError **error)
{
    gboolean closed = caback_db_close(g_steal_pointer(&d->db), error);

    if (!closed || !drill_db_open(d, error)) {
        g_prefix_error(error, "cannot open the temporary database %s again between checks: ",
                       d->dir);
        return FALSE;
    }
    return TRUE;
}

/* Certificates whose chains are checked between two openings of NSS (see drill_db_reopen). */
#define CHAIN_CHECKS_PER_OPENING 4096

/* The chain, trust and validity of every certificate of @plan (not its duplicates), in batches
 * of CHAIN_CHECKS_PER_OPENING with NSS opened again between them. The plan ends with the checks:
 * each certificate's entry is freed once checked (the report holds what it took of it), so that
 * the report grows into the room the plan leaves. */
static gboolean check_certs(CabackVerifyReport *r, DrillDb *d, CabackRestorePlan *plan,
                            GError **error)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    guint checked = 0;

    for (guint i = 0; i < plan->certs->len; i++) {
        CabackRestoreCert *c = plan->certs->pdata[i];
        if (c->duplicate_of < 0) {
            if (checked > 0 && checked % CHAIN_CHECKS_PER_OPENING == 0 &&
                !drill_db_reopen(d, error))
                return FALSE;
            caback_progress_report("checking the chain of each certificate", i + 1,
                                   plan->certs->len);
            check_cert(r, d->db, c, now);
            checked++;
        }
        caback_restore_plan_drop_cert(plan, i);
    }
    return TRUE;
}

/* The restore into the temporary database, then the checks there. */
static CabackVerifyReport *drill_in(DrillDb *d, const char *path, CabackSecret **contents,
                                    const CabackSecret *password, GError **error)
{
    CabackDb *db = d->db;

    g_autoptr(CabackVerifyReport) r = caback_verify_report_new(path);
    g_autoptr(CabackP12File) file = read_for_drill(r, path, (const guint8 *)(*contents)->data,
                                                   (*contents)->len, password, error);
    /* The file's bags are copies: its bytes are not needed any more, and keeping them through
     * the restore and the checks would cost the file's size again at the drill's peak. */
    g_clear_pointer(contents, caback_secret_free);
    if (file == NULL)
        return NULL;
    g_autoptr(CabackRestorePlan) plan = caback_restore_inspect(file, path, error);
    if (plan == NULL)
        return NULL;
    CabackRestoreOptions options = {.on_conflict = CABACK_RESTORE_ON_CONFLICT_STOP,
                                    .allow_weak_keys = TRUE};
    if (!caback_restore_plan(plan, db, &options, error)) {
        g_prefix_error(error, "%s cannot be restored: ", path);
        return NULL;
    }
    note_weak_keys(r, plan);
    if (!refuse_conflicts(plan, path, error))
        return NULL;
    if (!caback_restore_apply(plan, db, error)) {
        g_prefix_error(error, "restoring %s into an empty temporary database failed: ", path);
        return NULL;
    }

    r->restorable = TRUE;
    check_keys(r, db, plan);
    if (r->keys->len == 0)
        g_ptr_array_add(r->notes, g_strdup_printf("%s holds no private key: restoring it brings "
                                                  "back certificates and trust flags only",
                                                  path));
    find_rootless(r, plan); /* before check_cert takes the plan's strings */
    if (!check_certs(r, d, plan, error))
        return NULL;
    if (r->certs->len == 0)
        problem(r, "%s holds no certificate", path);
    return g_steal_pointer(&r);
}

static CabackVerifyReport *drill(const char *dir, const char *path, CabackSecret **contents,
                                 const CabackSecret *password, GError **error)
{
    g_autoptr(CabackSecret) db_password = caback_secret_new_temporary_db_password(error);

    if (db_password == NULL)
        return NULL;
    if (!caback_restore_create_throwaway_db(dir, db_password, error)) {
        g_prefix_error(error, "cannot make the temporary database for the drill: ");
        return NULL;
    }
    DrillDb d = {.dir = dir, .password = db_password};
    if (!drill_db_open(&d, error))
        return NULL;
    CabackVerifyReport *report = drill_in(&d, path, contents, password, error);
    /* NULL when an opening between checks failed (its error is set). */
    if (d.db != NULL && !caback_db_close(d.db, report != NULL ? error : NULL))
        g_clear_pointer(&report, caback_verify_report_free);
    return report;
}

/* Remove the temporary folder and what NSS put in it: its files, and the staging folder of a
 * database creation that a kill cut short (caback_restore_create_db). Links are not followed. */
static gboolean remove_folder(const char *dir, GError **error)
{
    if (!caback_remove_folder(dir)) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "the temporary folder %s (a copy of the restored keys, protected by a "
                    "random password) could not be removed: %s; remove it with rm -r",
                    dir, g_strerror(e));
        return FALSE;
    }
    return TRUE;
}

#define DRILL_PREFIX "caback-verify-"

/* A drill killed before it could clean up (kill -9, power loss) leaves its folder behind: a copy
 * of the keys under a random password nobody knows any more. The folder is named after the
 * process that made it, so the next drill removes the folders of processes that are gone, and
 * only its own user's. */
static void sweep_stale_drills(const char *tmp)
{
    g_autoptr(GDir) d = g_dir_open(tmp, 0, NULL);
    const char *name;

    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        if (!g_str_has_prefix(name, DRILL_PREFIX))
            continue;
        const char *digits = name + strlen(DRILL_PREFIX);
        char *end = NULL;
        guint64 pid = g_ascii_strtoull(digits, &end, 10);
        if (end == digits || *end != '-' || pid <= 1 || pid > G_MAXINT)
            continue;
        /* Alive, or another user's process (EPERM): not ours to touch. */
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        g_autofree char *folder = g_build_filename(tmp, name, NULL);
        struct stat st;
        if (lstat(folder, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
            continue;
        if (remove_folder(folder, NULL))
            g_info("removed %s, the temporary folder of a drill (process %" G_GUINT64_FORMAT
                   ") that did not finish",
                   folder, pid);
    }
}

CabackVerifyReport *caback_verify_file(const char *path, const CabackSecret *password,
                                       GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(CabackSecret) contents = caback_p12_load_file(path, "PKCS#12 file", error);
    if (contents == NULL)
        return NULL;
    sweep_stale_drills(g_get_tmp_dir());
    g_autofree char *pattern = g_strdup_printf(DRILL_PREFIX "%d-XXXXXX", (int)getpid());
    g_autofree char *dir = g_dir_make_tmp(pattern, &local);
    if (dir == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot make a private temporary folder for the drill: %s; set TMPDIR to a "
                    "writable folder",
                    local->message);
        return NULL;
    }

    CabackVerifyReport *report = drill(dir, path, &contents, password, error);
    g_autoptr(GError) removal = NULL;
    if (!remove_folder(dir, &removal)) {
        if (report != NULL)
            problem(report, "%s", removal->message);
        else
            g_prefix_error(error, "%s; also: ", removal->message);
    }
    return report;
}

/* ---- comparison with the live database ---- */

static CabackVerifyItem *cert_item(const char *nickname, const char *subject, const char *serial)
{
    CabackVerifyItem *item = g_new0(CabackVerifyItem, 1);

    item->kind = "certificate";
    item->nickname = g_strdup(nickname);
    item->subject = g_strdup(subject);
    item->serial_hex = g_strdup(serial);
    return item;
}

/* @ckaid: a key of the database's CKA_ID as the token holds it; NULL for a key of the file. */
static CabackVerifyItem *key_item(const char *nickname, gboolean id_known, const CabackKeyId *id,
                                  GBytes *ckaid)
{
    CabackVerifyItem *item = g_new0(CabackVerifyItem, 1);

    item->kind = "key";
    item->nickname = g_strdup(nickname);
    item->id_known = id_known;
    item->id = *id;
    item->ckaid = ckaid != NULL ? g_bytes_ref(ckaid) : NULL;
    return item;
}

static void append_item(GString *s, const CabackVerifyItem *item)
{
    if (s->len > 0)
        g_string_append(s, "; ");
    g_autofree char *nss_id = caback_verify_key_id_text(item->id_known, &item->id, item->ckaid);
    if (strcmp(item->kind, "key") == 0)
        g_string_append_printf(s, "the key of \"%s\" (key ID %s)",
                               item->nickname != NULL ? item->nickname : "?",
                               nss_id != NULL ? nss_id : "?");
    else
        g_string_append_printf(s, "certificate \"%s\" (serial 0x%s)",
                               item->nickname != NULL ? item->nickname : item->subject,
                               item->serial_hex);
}

/* What the database holds and the file lacks: its certificates, and the keys of its
 * certificates (a key that cannot leave its token is a note instead). */
static void find_missing_from_backup(CabackVerifyReport *report,
                                     const CabackVerifyInventory *inventory,
                                     GHashTable *file_keys, GHashTable *file_certs)
{
    /* The CKA_IDs of the keys listed so far. */
    g_autoptr(GHashTable) listed_ids = g_hash_table_new(g_bytes_hash, g_bytes_equal);

    for (guint i = 0; i < inventory->certs->len; i++) {
        const CabackVerifyDbCert *c = inventory->certs->pdata[i];
        if (!bytes_in(file_certs, c->der))
            g_ptr_array_add(report->missing_from_backup,
                            cert_item(c->nickname, c->subject, c->serial_hex));
        if (!c->has_key || bytes_in(file_keys, c->key_id))
            continue;
        g_autofree char *nss_id = caback_verify_key_id_text(c->id_known, &c->id, c->ckaid);
        if (!c->extractable) {
            g_ptr_array_add(report->notes,
                            g_strdup_printf("the key of \"%s\" (key ID %s) on token \"%s\" cannot "
                                            "leave it (not extractable), so no PKCS#12 file holds "
                                            "it; it needs the HSM vendor's own backup",
                                            c->nickname != NULL ? c->nickname : c->subject,
                                            nss_id, inventory->token));
            continue;
        }
        /* A key shared by two certificates (a renewal) is listed once. */
        if (c->ckaid != NULL && g_hash_table_contains(listed_ids, c->ckaid))
            continue;
        CabackVerifyItem *item = key_item(c->nickname, c->id_known, &c->id, c->ckaid);
        g_ptr_array_add(report->missing_from_backup, item);
        if (item->ckaid != NULL)
            g_hash_table_add(listed_ids, item->ckaid);
    }
}

/* What the file holds and the database no longer has. */
static void find_not_in_database(CabackVerifyReport *report,
                                 const CabackVerifyInventory *inventory)
{
    g_autoptr(GHashTable) db_keys = bytes_set(inventory->all_keys);
    g_autoptr(GHashTable) db_certs = bytes_set(inventory->all_certs);

    for (guint i = 0; i < report->keys->len; i++) {
        const CabackVerifyKey *k = report->keys->pdata[i];
        if (!bytes_in(db_keys, k->key_id))
            g_ptr_array_add(report->not_in_database,
                            key_item(k->nickname, k->id_known, &k->id, NULL));
    }
    for (guint i = 0; i < report->certs->len; i++) {
        const CabackVerifyCert *c = report->certs->pdata[i];
        if (!bytes_in(db_certs, c->der))
            g_ptr_array_add(report->not_in_database,
                            cert_item(c->nickname, c->subject, c->serial_hex));
    }
}

/* Trust: what a restore of the file would set against what the database has. */
static void find_trust_differences(CabackVerifyReport *report,
                                   const CabackVerifyInventory *inventory)
{
    /* The file's certificates by DER, in the file's order. */
    g_autoptr(GHashTable) by_der = g_hash_table_new_full(g_bytes_hash, g_bytes_equal, NULL,
                                                         (GDestroyNotify)g_ptr_array_unref);
    for (guint j = 0; j < report->certs->len; j++) {
        CabackVerifyCert *fc = report->certs->pdata[j];
        GPtrArray *same = g_hash_table_lookup(by_der, fc->der);
        if (same == NULL) {
            same = g_ptr_array_new();
            g_hash_table_insert(by_der, fc->der, same);
        }
        g_ptr_array_add(same, fc);
    }
    for (guint i = 0; i < inventory->certs->len; i++) {
        const CabackVerifyDbCert *c = inventory->certs->pdata[i];
        GPtrArray *same = c->der != NULL ? g_hash_table_lookup(by_der, c->der) : NULL;
        for (guint j = 0; same != NULL && j < same->len; j++) {
            const CabackVerifyCert *fc = same->pdata[j];
            if (g_strcmp0(fc->trust, c->trust) == 0)
                continue;
            CabackVerifyTrustDiff *d = g_new0(CabackVerifyTrustDiff, 1);
            d->nickname = g_strdup(c->nickname);
            d->subject = g_strdup(c->subject);
            d->serial_hex = g_strdup(c->serial_hex);
            d->backup_trust = g_strdup(fc->trust);
            d->database_trust = g_strdup(c->trust);
            g_ptr_array_add(report->trust_differences, d);
        }
    }
}

/* Every private key of the token, also those without a certificate (a pending re-key). */
static void find_missing_keys(CabackVerifyReport *report, const CabackVerifyInventory *inventory,
                              GHashTable *file_keys)
{
    for (guint i = 0; inventory->keys != NULL && i < inventory->keys->len; i++) {
        const CabackVerifyDbKey *k = inventory->keys->pdata[i];
        if (bytes_in(file_keys, k->ckaid) || bytes_in(file_keys, k->key_id))
            continue;
        if (!k->extractable) {
            /* No PKCS#12 file can hold it (a key with a certificate is noted above). */
            g_autofree char *nss_id = caback_verify_key_id_text(k->id_known, &k->id, k->ckaid);
            if (k->nickname == NULL)
                g_ptr_array_add(report->notes,
                                g_strdup_printf("key %s on token \"%s\" has no certificate and "
                                                "cannot leave the token (not extractable); it "
                                                "needs the HSM vendor's own backup",
                                                nss_id, inventory->token));
            continue;
        }
        g_ptr_array_add(report->missing_keys,
                        key_item(k->nickname, k->id_known, &k->id, k->ckaid));
    }
}

/* The findings of the comparison as problems (a stale backup) and notes. */
static void judge_comparison(CabackVerifyReport *report, const CabackVerifyInventory *inventory)
{
    if (report->trust_differences->len > 0) {
        g_autoptr(GString) what = g_string_new(NULL);
        for (guint i = 0; i < report->trust_differences->len; i++) {
            const CabackVerifyTrustDiff *d = report->trust_differences->pdata[i];
            g_string_append_printf(what, "%scertificate \"%s\" (serial 0x%s): %s in the backup, "
                                   "%s in the database",
                                   i > 0 ? "; " : "", d->nickname != NULL ? d->nickname : d->subject,
                                   d->serial_hex, d->backup_trust, d->database_trust);
        }
        problem(report,
                "the backup is stale: a restore of it would set other trust flags than NSS "
                "database %s has: %s; make a new backup (or set the trust with restore --trust)",
                inventory->dir, what->str);
    }
    if (report->missing_keys->len > 0) {
        g_autoptr(GString) what = g_string_new(NULL);
        for (guint i = 0; i < report->missing_keys->len; i++) {
            const CabackVerifyItem *m = report->missing_keys->pdata[i];
            g_autofree char *nss_id = caback_verify_key_id_text(m->id_known, &m->id, m->ckaid);
            g_string_append_printf(what, "%skey %s (%s)", i > 0 ? "; " : "", nss_id,
                                   m->nickname != NULL
                                       ? m->nickname
                                       : "no certificate: a pending re-key, or a key left by one");
        }
        problem(report,
                "the backup is stale: NSS database %s (token \"%s\") holds private keys the file "
                "lacks: %s; they are lost if the database is",
                inventory->dir, inventory->token, what->str);
    }
    report->stale = report->missing_from_backup->len > 0 ||
                    report->trust_differences->len > 0 || report->missing_keys->len > 0;

    if (report->missing_from_backup->len > 0) {
        g_autoptr(GString) what = g_string_new(NULL);
        for (guint i = 0; i < report->missing_from_backup->len; i++)
            append_item(what, report->missing_from_backup->pdata[i]);
        problem(report,
                "the backup is stale: NSS database %s (token \"%s\") holds what the file lacks "
                "(a re-key, a renewal or a new certificate since the backup, or a backup of only "
                "some certificates?): %s; make a new backup",
                inventory->dir, inventory->token, what->str);
    }
    if (report->not_in_database->len > 0) {
        g_autoptr(GString) what = g_string_new(NULL);
        for (guint i = 0; i < report->not_in_database->len; i++)
            append_item(what, report->not_in_database->pdata[i]);
        g_ptr_array_add(report->notes,
                        g_strdup_printf("the file holds what NSS database %s (token \"%s\") no "
                                        "longer has: %s",
                                        inventory->dir, inventory->token, what->str));
    }
}

void caback_verify_compare(CabackVerifyReport *report, const CabackVerifyInventory *inventory)
{
    g_autoptr(GHashTable) file_keys = g_hash_table_new(g_bytes_hash, g_bytes_equal);
    g_autoptr(GHashTable) file_certs = g_hash_table_new(g_bytes_hash, g_bytes_equal);

    report->compared = TRUE;
    g_free(report->database);
    g_free(report->token);
    report->database = g_strdup(inventory->dir);
    report->token = g_strdup(inventory->token);
    for (guint i = 0; i < report->keys->len; i++) {
        CabackVerifyKey *k = report->keys->pdata[i];
        if (k->key_id != NULL)
            g_hash_table_add(file_keys, k->key_id);
    }
    for (guint i = 0; i < report->certs->len; i++)
        g_hash_table_add(file_certs, ((CabackVerifyCert *)report->certs->pdata[i])->der);

    find_missing_from_backup(report, inventory, file_keys, file_certs);
    find_not_in_database(report, inventory);
    for (guint i = 0; i < inventory->notes->len; i++)
        g_ptr_array_add(report->notes, g_strdup(inventory->notes->pdata[i]));
    find_trust_differences(report, inventory);
    find_missing_keys(report, inventory, file_keys);
    judge_comparison(report, inventory);
}

/* The certificates of @report by name (cert_name), each name's in the report's order. */
static GHashTable *certs_by_name(const CabackVerifyReport *report)
{
    GHashTable *by_name = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                                (GDestroyNotify)g_ptr_array_unref);

    for (guint i = 0; i < report->certs->len; i++) {
        CabackVerifyCert *c = report->certs->pdata[i];
        const char *name = cert_name(c);
        if (name == NULL)
            continue;
        GPtrArray *same = g_hash_table_lookup(by_name, name);
        if (same == NULL) {
            same = g_ptr_array_new();
            g_hash_table_insert(by_name, (gpointer)name, same);
        }
        g_ptr_array_add(same, c);
    }
    return by_name;
}

/* The certificates of the chain without root @x count as not verified. */
static void mark_rootless(GHashTable *by_name, const CabackVerifyRootless *x)
{
    for (guint k = 0; k < x->certificates->len; k++) {
        GPtrArray *same = g_hash_table_lookup(by_name, x->certificates->pdata[k]);
        for (guint j = 0; same != NULL && j < same->len; j++) {
            CabackVerifyCert *c = same->pdata[j];
            if (!c->chain_ok)
                continue;
            c->chain_ok = FALSE;
            g_free(c->chain);
            c->chain = g_strdup_printf("the chain ends at \"%s\", whose issuer \"%s\" is "
                                       "not in the file (no root)",
                                       x->top, x->issuer);
        }
    }
}

void caback_verify_judge(CabackVerifyReport *report, const CabackVerifyInventory *inventory,
                         gboolean allow_expired)
{
    g_autoptr(GHashTable) trusted = bytes_set(inventory != NULL ? inventory->trusted_cas : NULL);
    g_autoptr(GHashTable) by_name = NULL;

    for (guint i = 0; i < report->chains_without_root->len; i++) {
        CabackVerifyRootless *x = report->chains_without_root->pdata[i];
        x->trusted_by_database = inventory != NULL && bytes_in(trusted, x->issuer_der);
        g_autoptr(GString) which = g_string_new(NULL);
        for (guint j = 0; j < x->certificates->len; j++)
            g_string_append_printf(which, "%s\"%s\"", j > 0 ? ", " : "",
                                   (const char *)x->certificates->pdata[j]);
        if (x->trusted_by_database) {
            g_ptr_array_add(report->notes,
                            g_strdup_printf("the file holds no root for %s: the chain ends at "
                                            "\"%s\", whose issuer \"%s\" NSS database %s trusts",
                                            which->str, x->top, x->issuer, inventory->dir));
            continue;
        }
        /* The restore would make the top certificate an anchor by its role: no proof. */
        if (by_name == NULL)
            by_name = certs_by_name(report);
        mark_rootless(by_name, x);
        report->chain_ok = FALSE;
        problem(report,
                "the chain of %s has no root in the file: it ends at \"%s\", whose issuer \"%s\" "
                "is not in the file%s; a restore would trust \"%s\" as if it were the root. Back "
                "up the root CA certificate too (or compare with -d a database that trusts it)",
                which->str, x->top, x->issuer,
                inventory != NULL ? " nor trusted by the database" : "", x->top);
    }
    for (guint i = 0; i < report->expired->len; i++) {
        const CabackVerifyCert *c = report->expired->pdata[i];
        g_autofree char *na = c->not_after != NULL
                                  ? g_date_time_format(c->not_after, "%Y-%m-%dT%H:%M:%SZ")
                                  : g_strdup("?");
        if (c->is_ca && !allow_expired)
            problem(report,
                    "CA certificate \"%s\" (serial 0x%s) expired on %s: a CA restored from this "
                    "file cannot issue; renew it first, or accept the expiry with "
                    "--allow-expired",
                    cert_name(c), c->serial_hex, na);
        else
            g_ptr_array_add(report->notes,
                            g_strdup_printf("%s certificate \"%s\" (serial 0x%s) expired on %s%s",
                                            c->is_ca ? "CA" : "system", cert_name(c),
                                            c->serial_hex, na,
                                            c->is_ca ? " (accepted with --allow-expired)" : ""));
    }
}
