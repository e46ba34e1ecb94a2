/* A token's objects found by indexed attributes, through a session of our own (see
 * token-objects.h). */
#include "config.h"

#include "token-objects.h"

#include <caback/nickname.h>
#include <caback/nss-util.h>

#include <keyhi.h>
#include <pkcs11n.h>
#include <secasn1.h>
#include <secmod.h>
#include <string.h>

gboolean caback_raw_open(CabackRawSession *r, PK11SlotInfo *slot, gboolean rw)
{
    SECMODModule *module = PK11_GetModule(slot);

    r->f = module != NULL ? (CK_FUNCTION_LIST_PTR)module->functionList : NULL;
    return r->f != NULL &&
           r->f->C_OpenSession(PK11_GetSlotID(slot), CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0),
                               NULL, NULL, &r->session) == CKR_OK;
}

void caback_raw_close(CabackRawSession *r)
{
    r->f->C_CloseSession(r->session);
}

SECItem *caback_raw_attribute(CabackRawSession *r, CK_OBJECT_HANDLE handle, CK_ATTRIBUTE_TYPE type)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    if (r->f->C_GetAttributeValue(r->session, handle, &a, 1) != CKR_OK ||
        a.ulValueLen == (CK_ULONG)-1)
        return NULL;
    SECItem *item = SECITEM_AllocItem(NULL, NULL, a.ulValueLen > 0 ? a.ulValueLen : 1);
    if (item == NULL)
        return NULL;
    item->len = a.ulValueLen;
    a.pValue = item->data;
    if (r->f->C_GetAttributeValue(r->session, handle, &a, 1) == CKR_OK)
        return item;
    SECITEM_FreeItem(item, PR_TRUE);
    return NULL;
}

gboolean caback_raw_find(CabackRawSession *r, CK_ATTRIBUTE *template, CK_ULONG n_attrs,
                         GArray *found)
{
    gboolean ok = r->f->C_FindObjectsInit(r->session, template, n_attrs) == CKR_OK;
    for (;;) {
        CK_OBJECT_HANDLE h[16];
        CK_ULONG n = 0;
        if (!ok || r->f->C_FindObjects(r->session, h, G_N_ELEMENTS(h), &n) != CKR_OK || n == 0)
            break;
        g_array_append_vals(found, h, (guint)n);
    }
    if (ok)
        r->f->C_FindObjectsFinal(r->session);
    return ok;
}

CK_OBJECT_HANDLE caback_raw_find_cert(CabackRawSession *r, CERTCertificate *cert,
                                      const SECItem *serial)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE template[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_ISSUER, cert->derIssuer.data, cert->derIssuer.len},
        {CKA_SERIAL_NUMBER, serial->data, serial->len},
    };
    g_autoptr(GArray) found = g_array_new(FALSE, FALSE, sizeof(CK_OBJECT_HANDLE));
    g_autofree guint8 *value = g_malloc(cert->derCert.len > 0 ? cert->derCert.len : 1);

    (void)caback_raw_find(r, template, G_N_ELEMENTS(template), found);
    for (guint i = 0; i < found->len; i++) {
        CK_OBJECT_HANDLE h = g_array_index(found, CK_OBJECT_HANDLE, i);
        CK_ATTRIBUTE a = {CKA_VALUE, NULL, 0};
        if (r->f->C_GetAttributeValue(r->session, h, &a, 1) != CKR_OK ||
            a.ulValueLen != cert->derCert.len)
            continue;
        a.pValue = value;
        if (r->f->C_GetAttributeValue(r->session, h, &a, 1) == CKR_OK &&
            memcmp(value, cert->derCert.data, cert->derCert.len) == 0)
            return h;
    }
    return CK_INVALID_HANDLE;
}

SECItem *caback_cert_encoded_serial(CERTCertificate *cert)
{
    return SEC_ASN1EncodeItem(NULL, NULL, &cert->serialNumber, SEC_ASN1_GET(SEC_IntegerTemplate));
}

/* Whether @slot holds a certificate object of @cert; when it does and @value is not NULL, that
 * object's attribute @type in *@value (NULL when the object lacks it). */
static gboolean stored_cert_attribute(PK11SlotInfo *slot, CERTCertificate *cert,
                                      CK_ATTRIBUTE_TYPE type, SECItem **value)
{
    SECItem *serial = caback_cert_encoded_serial(cert);
    CabackRawSession r;
    gboolean found = FALSE;

    if (serial != NULL && caback_raw_open(&r, slot, FALSE)) {
        CK_OBJECT_HANDLE h = caback_raw_find_cert(&r, cert, serial);
        found = h != CK_INVALID_HANDLE;
        if (found && value != NULL)
            *value = caback_raw_attribute(&r, h, type);
        caback_raw_close(&r);
    }
    if (serial != NULL)
        SECITEM_FreeItem(serial, PR_TRUE);
    return found;
}

gboolean caback_token_holds_cert(PK11SlotInfo *slot, CERTCertificate *cert)
{
    return stored_cert_attribute(slot, cert, CKA_CLASS, NULL);
}

gboolean caback_token_holds_trust(PK11SlotInfo *slot, CERTCertificate *cert)
{
    g_autoptr(SECItem) serial = caback_cert_encoded_serial(cert);
    g_autoptr(GArray) found = g_array_new(FALSE, FALSE, sizeof(CK_OBJECT_HANDLE));
    CabackRawSession r;

    if (serial == NULL || !caback_raw_open(&r, slot, FALSE))
        return FALSE;
    CK_OBJECT_CLASS cls = CKO_NSS_TRUST;
    CK_ATTRIBUTE template[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_ISSUER, cert->derIssuer.data, cert->derIssuer.len},
        {CKA_SERIAL_NUMBER, serial->data, serial->len},
    };
    (void)caback_raw_find(&r, template, G_N_ELEMENTS(template), found);
    caback_raw_close(&r);
    return found->len > 0;
}

CERTCertificate *caback_token_find_cert(PK11SlotInfo *slot, const SECItem *der)
{
    CERTCertificate *cert = CERT_FindCertByDERCert(CERT_GetDefaultCertDB(), (SECItem *)der);

    if (cert != NULL && !caback_token_holds_cert(slot, cert)) {
        CERT_DestroyCertificate(cert);
        return NULL;
    }
    return cert;
}

char *caback_token_cert_nickname(PK11SlotInfo *slot, CERTCertificate *cert)
{
    g_autoptr(SECItem) label = NULL;

    if (!stored_cert_attribute(slot, cert, CKA_LABEL, &label) || label == NULL || label->len == 0)
        return NULL;
    g_autofree char *bare = g_strndup((const char *)label->data, label->len);
    return caback_nickname_on_token(bare, PK11_GetTokenName(slot), FALSE);
}

SECItem *caback_token_cert_key_id(PK11SlotInfo *slot, CERTCertificate *cert)
{
    SECItem *id = NULL;

    return stored_cert_attribute(slot, cert, CKA_ID, &id) ? id : NULL;
}

gboolean caback_token_each_object(PK11SlotInfo *slot, CK_OBJECT_CLASS cls,
                                  const CK_ATTRIBUTE_TYPE *types, guint n_types,
                                  CabackTokenObjectFunc func, gpointer data)
{
    CK_ATTRIBUTE template[] = {{CKA_CLASS, &cls, sizeof cls}};
    g_autoptr(GArray) found = g_array_new(FALSE, FALSE, sizeof(CK_OBJECT_HANDLE));
    SECItem *values[4] = {NULL};
    CabackRawSession r;

    g_return_val_if_fail(n_types <= G_N_ELEMENTS(values), FALSE);
    if (!caback_raw_open(&r, slot, FALSE))
        return FALSE;
    gboolean ok = caback_raw_find(&r, template, G_N_ELEMENTS(template), found);
    for (guint i = 0; ok && i < found->len; i++) {
        CK_OBJECT_HANDLE h = g_array_index(found, CK_OBJECT_HANDLE, i);
        for (guint t = 0; t < n_types; t++)
            values[t] = caback_raw_attribute(&r, h, types[t]);
        func(values, data);
        for (guint t = 0; t < n_types; t++)
            g_clear_pointer(&values[t], caback_secitem_free);
    }
    caback_raw_close(&r);
    return ok;
}

gboolean caback_token_cert_with_id(PK11SlotInfo *slot, const SECItem *id, SECItem **value)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE template[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_ID, id->data, id->len},
    };
    g_autoptr(GArray) found = g_array_new(FALSE, FALSE, sizeof(CK_OBJECT_HANDLE));
    CabackRawSession r;

    if (!caback_raw_open(&r, slot, FALSE))
        return FALSE;
    (void)caback_raw_find(&r, template, G_N_ELEMENTS(template), found);
    if (found->len > 0 && value != NULL)
        *value = caback_raw_attribute(&r, g_array_index(found, CK_OBJECT_HANDLE, 0), CKA_VALUE);
    caback_raw_close(&r);
    return found->len > 0;
}

CERTCertificate *caback_token_cert_of_key(SECKEYPrivateKey *key)
{
    g_autoptr(SECItem) id = PK11_GetLowLevelKeyIDForPrivateKey(key);
    g_autoptr(SECItem) der = NULL;

    if (id == NULL || !caback_token_cert_with_id(key->pkcs11Slot, id, &der) || der == NULL)
        return NULL;
    return CERT_FindCertByDERCert(CERT_GetDefaultCertDB(), der);
}

SECKEYPublicKey *caback_token_public_key_of(SECKEYPrivateKey *key)
{
    g_autoptr(CERTCertificate) cert = caback_token_cert_of_key(key);
    SECKEYPublicKey *pub = cert != NULL ? CERT_ExtractPublicKey(cert) : NULL;

    return pub != NULL ? pub : SECKEY_ConvertToPublicKey(key);
}

/* The key of @slot that @cert's certificate object names, if any. */
static SECKEYPrivateKey *key_named_by_cert(PK11SlotInfo *slot, CERTCertificate *cert, void *wincx)
{
    g_autoptr(SECItem) id = caback_token_cert_key_id(slot, cert);

    return id != NULL ? PK11_FindKeyByKeyID(slot, id, wincx) : NULL;
}

SECKEYPrivateKey *caback_token_private_key_of(PK11SlotInfo *slot, CERTCertificate *cert,
                                              void *wincx)
{
    SECKEYPrivateKey *key = key_named_by_cert(slot, cert, wincx);

    /* Private keys (and on some tokens certificates) are private objects: as
     * PK11_FindPrivateKeyFromCert does, log in and look again when the token wants it. */
    if (key == NULL && PK11_NeedLogin(slot) && !PK11_IsLoggedIn(slot, wincx) &&
        PK11_Authenticate(slot, PR_TRUE, wincx) == SECSuccess)
        key = key_named_by_cert(slot, cert, wincx);
    return key;
}
