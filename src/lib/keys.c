/* Private keys of a token, described as certutil -K shows them, and the key behind a certificate
 * nickname. Every NSS reference taken here is released before returning. */
#include "config.h"

#include <caback/error.h>
#include <caback/nickname.h>
#include <caback/keys.h>
#include <caback/nss-util.h>

#include "token-objects.h"

#include <string.h>

void caback_key_info_free(CabackKeyInfo *info)
{
    if (info == NULL)
        return;
    g_bytes_unref(info->raw_id);
    g_free(info->nickname);
    g_free(info->label);
    g_free(info->cert_token);
    g_free(info->trust_token);
    g_free(info);
}

const char *caback_keys_type_name(KeyType type)
{
    /* The names certutil -K prints (its keyTypeName table / SECKEY_GetKeyTypeString). */
    switch (type) {
    case nullKey:
        return "null";
    case rsaKey:
        return "rsa";
    case dsaKey:
        return "dsa";
    case fortezzaKey:
        return "fortezza";
    case dhKey:
        return "dh";
    case keaKey:
        return "kea";
    case ecKey:
        return "ec";
    case rsaPssKey:
        return "rsaPss";
    case rsaOaepKey:
        return "rsaOaep";
    }
    return "unknown";
}

/* NSS names certificates of the database's own token "NSS Certificate DB:nick" when it finds them
 * through a key; certutil -n, pk12util -n and CS.cfg use the bare nickname there, and the
 * "Token:nick" form only for other tokens. */
static char *usable_nickname(PK11SlotInfo *slot, const char *nickname)
{
    if (nickname == NULL || *nickname == '\0')
        return NULL;
    if (slot != NULL && PK11_IsInternalKeySlot(slot))
        return g_strdup(caback_nickname_strip_token(nickname, PK11_GetTokenName(slot)));
    return g_strdup(nickname);
}

static guint key_size_bits(SECKEYPrivateKey *key, CERTCertificate *cert)
{
    g_autoptr(SECKEYPublicKey) pub = NULL;

    /* The certificate's public key is always complete; a private key object may lack the public
     * parts (EC points on some tokens), so it is only the fallback. */
    if (cert != NULL)
        pub = CERT_ExtractPublicKey(cert);
    if (pub == NULL)
        pub = SECKEY_ConvertToPublicKey(key);
    if (pub != NULL) {
        unsigned bits = SECKEY_PublicKeyStrengthInBits(pub);
        if (bits > 0)
            return bits;
    }
    if (key->keyType == rsaKey || key->keyType == rsaPssKey) {
        int len = PK11_GetPrivateModulusLen(key);
        if (len > 0)
            return (guint)len * 8;
    }
    return 0;
}

/* 1 / 0 for a CK_BBOOL attribute of @key, -1 when the token does not give it. */
static int read_key_bool(SECKEYPrivateKey *key, CK_ATTRIBUTE_TYPE type)
{
    SECItem item = {siBuffer, NULL, 0};

    if (PK11_ReadRawAttribute(PK11_TypePrivKey, key, type, &item) != SECSuccess)
        return -1;
    int value = item.len == sizeof(CK_BBOOL) ? item.data[0] != CK_FALSE : -1;
    SECITEM_FreeItem(&item, PR_FALSE);
    return value;
}

static void append_name(GPtrArray *names, PK11SlotInfo *slot)
{
    const char *name = PK11_GetTokenName(slot);

    /* The same token can come twice (once per slot list NSS keeps). */
    for (guint i = 0; name != NULL && i < names->len; i++)
        if (strcmp(names->pdata[i], name) == 0)
            return;
    if (name != NULL)
        g_ptr_array_add(names, g_strdup(name));
}

static char *join_names(GPtrArray *names)
{
    if (names->len == 0)
        return NULL;
    g_ptr_array_add(names, NULL);
    char *text = g_strjoinv(", ", (char **)names->pdata);
    g_ptr_array_remove_index(names, names->len - 1);
    return text;
}

/* Where @cert and its trust live: an HSM usually keeps the certificate but not NSS's trust
 * objects, which NSS then keeps in the database's internal token. @key_slot: the token of the
 * key whose certificate @cert was found as (caback_token_cert_of_key), which is where it lives
 * for the key; NULL for the tokens NSS knows it on. */
static void describe_cert_tokens(CabackKeyInfo *info, CERTCertificate *cert,
                                 PK11SlotInfo *key_slot)
{
    g_autoptr(GPtrArray) certs = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) trust = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(PK11SlotInfo) internal = PK11_GetInternalKeySlot();
    gboolean internal_seen = FALSE;

    g_autoptr(PK11SlotList) list = key_slot == NULL ? PK11_GetAllSlotsForCert(cert, NULL) : NULL;
    g_autoptr(GPtrArray) slots = g_ptr_array_new(); /* not owned */
    if (key_slot != NULL)
        g_ptr_array_add(slots, key_slot);
    for (PK11SlotListElement *le = list != NULL ? list->head : NULL; le != NULL; le = le->next)
        g_ptr_array_add(slots, le->slot);
    for (guint i = 0; i < slots->len; i++) {
        PK11SlotInfo *slot = slots->pdata[i];
        append_name(certs, slot);
        if (slot == internal)
            internal_seen = TRUE;
        if (caback_token_holds_trust(slot, cert))
            append_name(trust, slot);
    }
    if (!internal_seen && internal != NULL && caback_token_holds_trust(internal, cert))
        append_name(trust, internal);
    info->cert_token = join_names(certs);
    info->trust_token = join_names(trust);
}

char *caback_key_info_nss_id(const CabackKeyInfo *info)
{
    gsize len;
    const guint8 *data = g_bytes_get_data(info->raw_id, &len);
    return caback_keyid_bytes_to_hex(data, len);
}

char *caback_key_info_dogtag_id(const CabackKeyInfo *info)
{
    gsize len;
    const guint8 *data = g_bytes_get_data(info->raw_id, &len);
    /* Dogtag takes the BigInteger of the bytes as they are, whatever their length. */
    if (len == 0 || len > CABACK_KEYID_LEN)
        return NULL;
    return caback_keyid_bytes_to_dogtag(data, len);
}

CabackKeyInfo *caback_keys_describe(CabackDb *db, SECKEYPrivateKey *key, CERTCertificate *cert)
{
    (void)db; /* kept in the signature so that token-specific lookups can use its password */
    g_autoptr(CERTCertificate) found = NULL;
    CabackKeyInfo *info = g_new0(CabackKeyInfo, 1);

    info->key_type = key->keyType;
    info->type = caback_keys_type_name(key->keyType);

    SECItem *ckaid = PK11_GetLowLevelKeyIDForPrivateKey(key);
    if (ckaid != NULL && ckaid->len > 0) {
        info->raw_id = g_bytes_new(ckaid->data, ckaid->len);
        if (ckaid->len <= CABACK_KEYID_LEN)
            info->id_valid = caback_keyid_from_bytes(ckaid->data, ckaid->len, &info->id, NULL);
    } else {
        info->raw_id = g_bytes_new(NULL, 0);
    }
    if (ckaid != NULL)
        SECITEM_ZfreeItem(ckaid, PR_TRUE);

    char *label = PK11_GetPrivateKeyNickname(key);
    if (label != NULL && *label != '\0')
        info->label = g_strdup(label);
    if (label != NULL)
        PORT_Free(label);

    /* Not PK11_GetCertFromPrivateKey: NSS builds the certificate from its object and finds its
     * trust by a search the database does not index, so that listing n keys took time in n^2
     * (token-objects.h). */
    g_autofree char *stored_nickname = NULL;
    if (cert == NULL) {
        found = caback_token_cert_of_key(key);
        cert = found;
        if (found != NULL)
            stored_nickname = caback_token_cert_nickname(key->pkcs11Slot, found);
    }
    info->orphan = cert == NULL;
    if (cert != NULL && stored_nickname == NULL)
        info->nickname = usable_nickname(key->pkcs11Slot, cert->nickname);
    else if (cert != NULL)
        info->nickname = usable_nickname(key->pkcs11Slot, stored_nickname);

    info->size_bits = key_size_bits(key, cert);
    info->extractable = read_key_bool(key, CKA_EXTRACTABLE);
    info->sensitive = read_key_bool(key, CKA_SENSITIVE);
    if (cert != NULL)
        describe_cert_tokens(info, cert, found != NULL ? key->pkcs11Slot : NULL);
    return info;
}

GPtrArray *caback_keys_list(CabackDb *db, GError **error)
{
    g_autoptr(SECKEYPrivateKeyList) list = PK11_ListPrivateKeysInSlot(db->slot);
    if (list == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "cannot list the private keys of token \"%s\" in NSS database %s",
                             db->token_name, db->dir);
        return NULL;
    }

    GPtrArray *keys = g_ptr_array_new_with_free_func((GDestroyNotify)caback_key_info_free);
    for (SECKEYPrivateKeyListNode *node = PRIVKEY_LIST_HEAD(list); !PRIVKEY_LIST_END(node, list);
         node = PRIVKEY_LIST_NEXT(node)) {
        CabackKeyInfo *info = caback_keys_describe(db, node->key, NULL);
        info->index = keys->len;
        g_ptr_array_add(keys, info);
    }
    return keys;
}

SECKEYPrivateKey *caback_keys_find_private_key(CabackDb *db, const char *nickname,
                                               CERTCertificate **cert_out, GError **error)
{
    g_return_val_if_fail(nickname != NULL, NULL);

    g_autoptr(CERTCertificate) cert = PK11_FindCertFromNickname(nickname, db);
    if (cert == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "no certificate with nickname \"%s\" in NSS database %s; list the "
                    "nicknames with: certutil -L -d sql:%s (a certificate on another token is "
                    "named \"TOKEN:nickname\")",
                    nickname, db->dir, db->dir);
        return NULL;
    }
    SECKEYPrivateKey *key = PK11_FindKeyByAnyCert(cert, db);
    if (key == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "certificate \"%s\" in NSS database %s has no private key on any token "
                    "(see caback listkeys: the key may have been deleted, or it lives on a token "
                    "that is not loaded)",
                    nickname, db->dir);
        return NULL;
    }
    if (cert_out != NULL)
        *cert_out = g_steal_pointer(&cert);
    return key;
}

CabackKeyInfo *caback_keys_find_by_nickname(CabackDb *db, const char *nickname, GError **error)
{
    g_autoptr(CERTCertificate) cert = NULL;
    g_autoptr(SECKEYPrivateKey) key = caback_keys_find_private_key(db, nickname, &cert, error);
    if (key == NULL)
        return NULL;

    g_autoptr(CabackKeyInfo) info = caback_keys_describe(db, key, cert);
    if (!info->id_valid) {
        g_autofree char *hex = caback_key_info_nss_id(info);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "the private key of \"%s\" has a CKA_ID of %" G_GSIZE_FORMAT
                    " bytes (%s), not an NSS key ID of at most 20 bytes; Dogtag cannot refer "
                    "to it",
                    nickname, g_bytes_get_size(info->raw_id),
                    *hex != '\0' ? hex : "empty");
        return NULL;
    }
    return g_steal_pointer(&info);
}
