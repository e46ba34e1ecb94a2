/* A share's CMS EnvelopedData (RFC 5652), encrypted to its custodian's certificate, and the share
 * files (see include/caback/custody.h).
 *
 * Why not NSS's S/MIME library (libsmime3): in NSS 3.87 (Debian 12) NSS_CMSRecipientInfo_Create
 * wraps the content key for an RSA recipient only with PKCS#1 v1.5 (no RSAES-OAEP), refuses an
 * EC recipient (SEC_ERROR_INVALID_ALGORITHM: "cmsutil -E -r" with an EC certificate fails the
 * same way), and its decoder rejects both what OpenSSL writes for OAEP
 * (SEC_ERROR_UNSUPPORTED_KEYALG) and for ECDH (SEC_ERROR_BAD_DER: its templates tag
 * KeyAgreeRecipientInfo [1] and originatorKey [2] EXPLICIT, where RFC 5652 has [1] IMPLICIT for
 * both). So the structures are encoded and decoded here with NSS's SEC_ASN1 templates, and every
 * cryptographic step is a PK11 call: content keys from PK11_KeyGen, AES-256-CBC by PK11_Encrypt /
 * PK11_Decrypt, RSA-OAEP by PK11_PubWrapSymKeyWithMechanism / PK11_PubUnwrapSymKeyWithMechanism
 * (CKM_RSA_PKCS_OAEP), ECDH with the X9.63 KDF by PK11_PubDeriveWithKDF (CKM_ECDH1_DERIVE,
 * CKD_SHA*_KDF over the ECC-CMS-SharedInfo of RFC 5753), and the AES key wrap of RFC 3394 by
 * PK11_WrapSymKey / PK11_UnwrapSymKey (CKM_NSS_AES_KEY_WRAP). */
#include "config.h"

#include <caback/atomic-file.h>
#include <caback/custody.h>
#include <caback/error.h>
#include <caback/names.h>
#include <caback/nss-util.h>

#include <cert.h>
#include <cryptohi.h>
#include <errno.h>
#include <fcntl.h>
#include <keyhi.h>
#include <pk11pub.h>
#include <secasn1.h>
#include <secerr.h>
#include <secoid.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- ASN.1 structures ---- */

typedef struct {
    SECItem content_type;
    SECItem content; /* [0] EXPLICIT ANY */
} CmsContentInfo;

typedef struct {
    SECItem content_type;
    SECAlgorithmID algorithm;
    SECItem encrypted; /* [0] IMPLICIT OCTET STRING */
} CmsEncryptedContentInfo;

typedef struct {
    SECItem version;
    SECItem **originator_info; /* [0] IMPLICIT, not used (certificates and CRLs only) */
    SECItem **recipient_infos; /* SET OF RecipientInfo, each kept as DER */
    CmsEncryptedContentInfo eci;
    SECItem **unprotected_attrs; /* [1] IMPLICIT, not used */
} CmsEnvelopedData;

typedef struct {
    SECItem version;
    SECItem rid; /* IssuerAndSerialNumber or [0] SubjectKeyIdentifier, as DER */
    SECAlgorithmID algorithm;
    SECItem encrypted_key;
} CmsKtri;

typedef struct {
    SECAlgorithmID *hash; /* [0] EXPLICIT, default SHA-1 */
    SECAlgorithmID *mgf;  /* [1] EXPLICIT, default MGF1 with SHA-1 */
    SECAlgorithmID *label; /* [2] EXPLICIT, default an empty label: only that is accepted */
} CmsOaepParams;

typedef struct {
    SECAlgorithmID algorithm;
    SECItem public_key; /* BIT STRING (length in bits) */
} CmsOriginatorPublicKey;

typedef struct {
    SECItem rid; /* IssuerAndSerialNumber or [0] RecipientKeyIdentifier, as DER */
    SECItem encrypted_key;
} CmsRecipientEncryptedKey;

typedef struct {
    SECItem version;
    CmsOriginatorPublicKey originator; /* [0] EXPLICIT { [1] IMPLICIT OriginatorPublicKey } */
    SECItem ukm;                       /* [1] EXPLICIT OCTET STRING OPTIONAL */
    SECAlgorithmID algorithm;
    CmsRecipientEncryptedKey **keys;
} CmsKari;

typedef struct {
    SECItem key_info;  /* AlgorithmIdentifier of the key wrap, as DER */
    SECItem entity_u;  /* [0] EXPLICIT OCTET STRING OPTIONAL: the ukm */
    SECItem supp_pub;  /* [2] EXPLICIT OCTET STRING: the KEK's length in bits, 32-bit big endian */
} CmsEccSharedInfo;

static const SEC_ASN1Template sequence_of_any_template[] = {
    {SEC_ASN1_SEQUENCE_OF | SEC_ASN1_XTRN, 0, SEC_ASN1_SUB(SEC_AnyTemplate)}};

static const SEC_ASN1Template content_info_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(CmsContentInfo)},
    {SEC_ASN1_OBJECT_ID, offsetof(CmsContentInfo, content_type)},
    {SEC_ASN1_EXPLICIT | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC | SEC_ASN1_XTRN | 0,
     offsetof(CmsContentInfo, content), SEC_ASN1_SUB(SEC_AnyTemplate)},
    {0}};

static const SEC_ASN1Template encrypted_content_info_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(CmsEncryptedContentInfo)},
    {SEC_ASN1_OBJECT_ID, offsetof(CmsEncryptedContentInfo, content_type)},
    {SEC_ASN1_INLINE | SEC_ASN1_XTRN, offsetof(CmsEncryptedContentInfo, algorithm),
     SEC_ASN1_SUB(SECOID_AlgorithmIDTemplate)},
    /* BER writers may send it constructed, which NSS's decoder reassembles */
    {SEC_ASN1_OPTIONAL | SEC_ASN1_CONTEXT_SPECIFIC | SEC_ASN1_XTRN | 0,
     offsetof(CmsEncryptedContentInfo, encrypted), SEC_ASN1_SUB(SEC_OctetStringTemplate)},
    {0}};

static const SEC_ASN1Template enveloped_data_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(CmsEnvelopedData)},
    {SEC_ASN1_INTEGER, offsetof(CmsEnvelopedData, version)},
    {SEC_ASN1_OPTIONAL | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC | 0,
     offsetof(CmsEnvelopedData, originator_info), sequence_of_any_template},
    {SEC_ASN1_SET_OF | SEC_ASN1_XTRN, offsetof(CmsEnvelopedData, recipient_infos),
     SEC_ASN1_SUB(SEC_AnyTemplate)},
    {SEC_ASN1_INLINE, offsetof(CmsEnvelopedData, eci), encrypted_content_info_template},
    {SEC_ASN1_OPTIONAL | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC | SEC_ASN1_XTRN | 1,
     offsetof(CmsEnvelopedData, unprotected_attrs), SEC_ASN1_SUB(SEC_SetOfAnyTemplate)},
    {0}};

static const SEC_ASN1Template ktri_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(CmsKtri)},
    {SEC_ASN1_INTEGER, offsetof(CmsKtri, version)},
    {SEC_ASN1_ANY, offsetof(CmsKtri, rid)},
    {SEC_ASN1_INLINE | SEC_ASN1_XTRN, offsetof(CmsKtri, algorithm),
     SEC_ASN1_SUB(SECOID_AlgorithmIDTemplate)},
    {SEC_ASN1_OCTET_STRING, offsetof(CmsKtri, encrypted_key)},
    {0}};

/* As NSS's SECKEY_RSAPSSParamsTemplate: an EXPLICIT tag around a POINTER sub-template (NSS's
 * encoder does not take EXPLICIT and POINTER in one entry). */
static const SEC_ASN1Template pointer_to_algid_template[] = {
    {SEC_ASN1_POINTER | SEC_ASN1_XTRN, 0, SEC_ASN1_SUB(SECOID_AlgorithmIDTemplate)}};

static const SEC_ASN1Template oaep_params_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(CmsOaepParams)},
    {SEC_ASN1_OPTIONAL | SEC_ASN1_CONSTRUCTED | SEC_ASN1_EXPLICIT | SEC_ASN1_CONTEXT_SPECIFIC | 0,
     offsetof(CmsOaepParams, hash), pointer_to_algid_template},
    {SEC_ASN1_OPTIONAL | SEC_ASN1_CONSTRUCTED | SEC_ASN1_EXPLICIT | SEC_ASN1_CONTEXT_SPECIFIC | 1,
     offsetof(CmsOaepParams, mgf), pointer_to_algid_template},
    {SEC_ASN1_OPTIONAL | SEC_ASN1_CONSTRUCTED | SEC_ASN1_EXPLICIT | SEC_ASN1_CONTEXT_SPECIFIC | 2,
     offsetof(CmsOaepParams, label), pointer_to_algid_template},
    {0}};

static const SEC_ASN1Template originator_public_key_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(CmsOriginatorPublicKey)},
    {SEC_ASN1_INLINE | SEC_ASN1_XTRN, offsetof(CmsOriginatorPublicKey, algorithm),
     SEC_ASN1_SUB(SECOID_AlgorithmIDTemplate)},
    {SEC_ASN1_BIT_STRING, offsetof(CmsOriginatorPublicKey, public_key)},
    {0}};

/* OriginatorIdentifierOrKey, reduced to its originatorKey choice: [1] IMPLICIT */
static const SEC_ASN1Template originator_key_template[] = {
    {SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC | 1, 0, originator_public_key_template,
     sizeof(CmsOriginatorPublicKey)},
    {0}};

static const SEC_ASN1Template recipient_encrypted_key_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(CmsRecipientEncryptedKey)},
    {SEC_ASN1_ANY, offsetof(CmsRecipientEncryptedKey, rid)},
    {SEC_ASN1_OCTET_STRING, offsetof(CmsRecipientEncryptedKey, encrypted_key)},
    {0}};

static const SEC_ASN1Template kari_fields_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(CmsKari)},
    {SEC_ASN1_INTEGER, offsetof(CmsKari, version)},
    {SEC_ASN1_EXPLICIT | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC | 0,
     offsetof(CmsKari, originator), originator_key_template},
    {SEC_ASN1_OPTIONAL | SEC_ASN1_EXPLICIT | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC |
         SEC_ASN1_XTRN | 1,
     offsetof(CmsKari, ukm), SEC_ASN1_SUB(SEC_OctetStringTemplate)},
    {SEC_ASN1_INLINE | SEC_ASN1_XTRN, offsetof(CmsKari, algorithm),
     SEC_ASN1_SUB(SECOID_AlgorithmIDTemplate)},
    {SEC_ASN1_SEQUENCE_OF, offsetof(CmsKari, keys), recipient_encrypted_key_template},
    {0}};

/* RecipientInfo's kari choice: [1] IMPLICIT KeyAgreeRecipientInfo */
static const SEC_ASN1Template kari_template[] = {
    {SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC | 1, 0, kari_fields_template,
     sizeof(CmsKari)},
    {0}};

static const SEC_ASN1Template ecc_shared_info_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(CmsEccSharedInfo)},
    {SEC_ASN1_ANY, offsetof(CmsEccSharedInfo, key_info)},
    {SEC_ASN1_OPTIONAL | SEC_ASN1_EXPLICIT | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC |
         SEC_ASN1_XTRN | 0,
     offsetof(CmsEccSharedInfo, entity_u), SEC_ASN1_SUB(SEC_OctetStringTemplate)},
    {SEC_ASN1_EXPLICIT | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC | SEC_ASN1_XTRN | 2,
     offsetof(CmsEccSharedInfo, supp_pub), SEC_ASN1_SUB(SEC_OctetStringTemplate)},
    {0}};

/* ---- algorithms NSS 3.87 has no tag for ---- */

/* dhSinglePass-stdDH-sha*kdf-scheme (RFC 5753 / SEC 1): 1.3.133.16.840.63.0.2 (SHA-1),
 * 1.3.132.1.11.0..3 (SHA-224, -256, -384, -512) */
static const struct {
    guint8 oid[9];
    guint len;
    CK_ULONG kdf;
    const char *name;
} ecdh_schemes[] = {
    {{0x2b, 0x81, 0x05, 0x10, 0x86, 0x48, 0x3f, 0x00, 0x02}, 9, CKD_SHA1_KDF,
     "dhSinglePass-stdDH-sha1kdf-scheme"},
    {{0x2b, 0x81, 0x04, 0x01, 0x0b, 0x00}, 6, CKD_SHA224_KDF, "dhSinglePass-stdDH-sha224kdf-scheme"},
    {{0x2b, 0x81, 0x04, 0x01, 0x0b, 0x01}, 6, CKD_SHA256_KDF, "dhSinglePass-stdDH-sha256kdf-scheme"},
    {{0x2b, 0x81, 0x04, 0x01, 0x0b, 0x02}, 6, CKD_SHA384_KDF, "dhSinglePass-stdDH-sha384kdf-scheme"},
    {{0x2b, 0x81, 0x04, 0x01, 0x0b, 0x03}, 6, CKD_SHA512_KDF, "dhSinglePass-stdDH-sha512kdf-scheme"},
};
#define ECDH_SCHEME_SHA256 2

/* ---- helpers ---- */

static gboolean oid_is(const SECItem *oid, SECOidTag tag)
{
    return SECOID_FindOIDTag(oid) == tag;
}

/* An AlgorithmIdentifier with absent parameters (RFC 4055 §2.1 and RFC 3565 §2.3.2: the
 * correct encoding for SHA-2 and for AES key wrap; SECOID_SetAlgorithmID would write NULL). */
static gboolean algid_set_absent(PLArenaPool *arena, SECAlgorithmID *alg, SECOidTag tag)
{
    const SECOidData *data = SECOID_FindOIDByTag(tag);
    memset(alg, 0, sizeof *alg);
    return data != NULL && SECITEM_CopyItem(arena, &alg->algorithm, &data->oid) == SECSuccess;
}

/* Parameters absent or NULL (05 00): both mean "none" (RFC 4055 §2.1). */
static gboolean params_none(const SECItem *params)
{
    return params->len == 0 || (params->len == 2 && params->data[0] == 0x05 &&
                                params->data[1] == 0x00);
}

static CK_MECHANISM_TYPE hash_to_mgf(SECOidTag hash)
{
    switch (hash) {
    case SEC_OID_SHA1: return CKG_MGF1_SHA1;
    case SEC_OID_SHA224: return CKG_MGF1_SHA224;
    case SEC_OID_SHA256: return CKG_MGF1_SHA256;
    case SEC_OID_SHA384: return CKG_MGF1_SHA384;
    case SEC_OID_SHA512: return CKG_MGF1_SHA512;
    default: return 0;
    }
}

static CK_MECHANISM_TYPE hash_to_mechanism(SECOidTag hash)
{
    switch (hash) {
    case SEC_OID_SHA1: return CKM_SHA_1;
    case SEC_OID_SHA224: return CKM_SHA224;
    case SEC_OID_SHA256: return CKM_SHA256;
    case SEC_OID_SHA384: return CKM_SHA384;
    case SEC_OID_SHA512: return CKM_SHA512;
    default: return 0;
    }
}

/* "CN=Alice,O=X (serial 0x1f)" for an IssuerAndSerialNumber, or a description of another kind of
 * recipient identifier. Caller frees. */
static char *rid_describe(const SECItem *rid)
{
    if (rid->len > 0 && rid->data[0] == 0x80)
        return g_strdup("a certificate named by its subject key identifier");
    if (rid->len > 0 && rid->data[0] == 0xa0)
        return g_strdup("a certificate named by its recipient key identifier");
    g_autoptr(PLArenaPool) arena = PORT_NewArena(1024);
    CERTIssuerAndSN isn;
    memset(&isn, 0, sizeof isn);
    SECItem copy = *rid;
    if (arena == NULL ||
        SEC_QuickDERDecodeItem(arena, &isn, SEC_ASN1_GET(CERT_IssuerAndSNTemplate), &copy) !=
            SECSuccess)
        return g_strdup("a recipient caback cannot read");
    SECItem issuer_der = isn.derIssuer;
    CERTName name;
    memset(&name, 0, sizeof name);
    char *issuer = NULL;
    if (SEC_QuickDERDecodeItem(arena, &name, SEC_ASN1_GET(CERT_NameTemplate), &issuer_der) ==
        SECSuccess)
        issuer = CERT_NameToAscii(&name);
    /* a name from the file: shown escaped (control characters, bidi overrides, bad UTF-8) */
    g_autofree char *shown = caback_name_escape(issuer, NULL);
    GString *serial = g_string_new("0x");
    for (unsigned i = 0; i < isn.serialNumber.len; i++)
        g_string_append_printf(serial, "%02x", isn.serialNumber.data[i]);
    char *text = g_strdup_printf("the certificate with serial number %s issued by \"%s\"",
                                 serial->str, shown != NULL ? shown : "?");
    g_string_free(serial, TRUE);
    PORT_Free(issuer);
    return text;
}

/* The certificate a recipient identifier names, in the databases and tokens NSS has open. */
static CERTCertificate *rid_find_cert(const SECItem *rid, void *wincx)
{
    g_autoptr(PLArenaPool) arena = PORT_NewArena(1024);
    if (arena == NULL || rid->len == 0)
        return NULL;
    SECItem copy = *rid;
    if (rid->data[0] == 0x30) {
        CERTIssuerAndSN isn;
        memset(&isn, 0, sizeof isn);
        if (SEC_QuickDERDecodeItem(arena, &isn, SEC_ASN1_GET(CERT_IssuerAndSNTemplate), &copy) !=
            SECSuccess)
            return NULL;
        PK11SlotInfo *found_slot = NULL;
        CERTCertificate *cert = PK11_FindCertByIssuerAndSN(&found_slot, &isn, wincx);
        if (found_slot != NULL)
            PK11_FreeSlot(found_slot);
        if (cert == NULL)
            cert = CERT_FindCertByIssuerAndSN(CERT_GetDefaultCertDB(), &isn);
        return cert;
    }
    if (rid->data[0] == 0x80) {
        /* [0] IMPLICIT SubjectKeyIdentifier: re-read as an OCTET STRING */
        SECItem ski = {siBuffer, NULL, 0};
        SECItem *retagged = SECITEM_ArenaDupItem(arena, rid);
        if (retagged == NULL)
            return NULL;
        retagged->data[0] = 0x04;
        if (SEC_QuickDERDecodeItem(arena, &ski, SEC_ASN1_GET(SEC_OctetStringTemplate),
                                   retagged) != SECSuccess)
            return NULL;
        return CERT_FindCertBySubjectKeyID(CERT_GetDefaultCertDB(), &ski);
    }
    return NULL;
}

/* The private key of @cert: on @slot when given, else wherever NSS finds it. */
static SECKEYPrivateKey *find_key(CERTCertificate *cert, PK11SlotInfo *slot, void *wincx)
{
    if (slot != NULL)
        return PK11_FindPrivateKeyFromCert(slot, cert, wincx);
    return PK11_FindKeyByAnyCert(cert, wincx);
}

/* The name of the token that holds @key when it is not NSS's own (softoken, which has every
 * mechanism used here), else NULL. Caller frees. */
static char *external_token(SECKEYPrivateKey *key)
{
    g_autoptr(PK11SlotInfo) slot = PK11_GetSlotFromPrivateKey(key);
    if (slot == NULL || PK11_IsInternal(slot) || PK11_IsInternalKeySlot(slot))
        return NULL;
    return g_strdup(PK11_GetTokenName(slot));
}

/* ---- encryption ---- */

/* The content key (AES-256, in NSS's internal token) and its IV; the content encrypted. */
static gboolean encrypt_content(PLArenaPool *arena, const CabackSecret *record, PK11SymKey **cek,
                                CmsEncryptedContentInfo *eci, GError **error)
{
    g_autoptr(PK11SlotInfo) slot = PK11_GetInternalSlot();
    guint8 iv[16];
    SECItem iv_item = {siBuffer, iv, sizeof iv};

    *cek = PK11_KeyGen(slot, CKM_AES_KEY_GEN, NULL, 32, NULL);
    if (*cek == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot make the share's content key");
        return FALSE;
    }
    if (PK11_GenerateRandom(iv, sizeof iv) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot draw the share's IV");
        return FALSE;
    }
    SECItem *params = SEC_ASN1EncodeItem(arena, NULL, &iv_item,
                                         SEC_ASN1_GET(SEC_OctetStringTemplate));
    const SECOidData *data_oid = SECOID_FindOIDByTag(SEC_OID_PKCS7_DATA);
    if (params == NULL || data_oid == NULL ||
        SECITEM_CopyItem(arena, &eci->content_type, &data_oid->oid) != SECSuccess ||
        SECOID_SetAlgorithmID(arena, &eci->algorithm, SEC_OID_AES_256_CBC, params) !=
            SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot encode the share's algorithm");
        return FALSE;
    }
    unsigned int max = (unsigned int)record->len + 16, out_len = 0;
    eci->encrypted.data = PORT_ArenaAlloc(arena, max);
    if (eci->encrypted.data == NULL ||
        PK11_Encrypt(*cek, CKM_AES_CBC_PAD, &iv_item, eci->encrypted.data, &out_len, max,
                     (const unsigned char *)record->data, (unsigned int)record->len) !=
            SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot encrypt the share");
        return FALSE;
    }
    eci->encrypted.len = out_len;
    return TRUE;
}

static SECItem *encode_rid(PLArenaPool *arena, CERTCertificate *cert)
{
    /* the template encodes the decoded issuer name (its derIssuer is only saved on decoding) */
    CERTIssuerAndSN *isn = CERT_GetCertIssuerAndSN(arena, cert);
    if (isn == NULL)
        return NULL;
    return SEC_ASN1EncodeItem(arena, NULL, isn, SEC_ASN1_GET(CERT_IssuerAndSNTemplate));
}

/* KeyTransRecipientInfo with RSAES-OAEP, SHA-256 and MGF1-SHA-256 (RFC 8017, RFC 4055). */
static SECItem *ktri_oaep_encode(PLArenaPool *arena, CERTCertificate *cert, SECKEYPublicKey *pub,
                                 PK11SymKey *cek, GError **error)
{
    CmsKtri ktri;
    CmsOaepParams params;
    SECAlgorithmID hash, mgf, mgf_hash;
    memset(&ktri, 0, sizeof ktri);
    memset(&params, 0, sizeof params);

    if (!algid_set_absent(arena, &hash, SEC_OID_SHA256) ||
        !algid_set_absent(arena, &mgf_hash, SEC_OID_SHA256))
        goto asn1;
    SECItem *mgf_params = SEC_ASN1EncodeItem(arena, NULL, &mgf_hash,
                                             SEC_ASN1_GET(SECOID_AlgorithmIDTemplate));
    if (mgf_params == NULL ||
        SECOID_SetAlgorithmID(arena, &mgf, SEC_OID_PKCS1_MGF1, mgf_params) != SECSuccess)
        goto asn1;
    params.hash = &hash;
    params.mgf = &mgf;
    SECItem *params_der = SEC_ASN1EncodeItem(arena, NULL, &params, oaep_params_template);
    if (params_der == NULL ||
        SECOID_SetAlgorithmID(arena, &ktri.algorithm, SEC_OID_PKCS1_RSA_OAEP_ENCRYPTION,
                              params_der) != SECSuccess)
        goto asn1;

    CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    SECItem oaep_item = {siBuffer, (unsigned char *)&oaep, sizeof oaep};
    unsigned int modulus = SECKEY_PublicKeyStrength(pub);
    ktri.encrypted_key.data = PORT_ArenaAlloc(arena, modulus);
    ktri.encrypted_key.len = modulus;
    if (modulus == 0 || ktri.encrypted_key.data == NULL ||
        PK11_PubWrapSymKeyWithMechanism(pub, CKM_RSA_PKCS_OAEP, &oaep_item, cek,
                                        &ktri.encrypted_key) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "cannot encrypt the share's key to \"%s\" with RSA-OAEP",
                             cert->subjectName);
        return NULL;
    }
    SECItem *rid = encode_rid(arena, cert);
    if (rid == NULL || SEC_ASN1EncodeInteger(arena, &ktri.version, 0) == NULL)
        goto asn1;
    ktri.rid = *rid;
    SECItem *der = SEC_ASN1EncodeItem(arena, NULL, &ktri, ktri_template);
    if (der != NULL)
        return der;
asn1:
    caback_error_set_nss(error, CABACK_ERROR_FAILED,
                         "cannot encode the share's recipient \"%s\"", cert->subjectName);
    return NULL;
}

/* The DER of ECC-CMS-SharedInfo (RFC 5753 §7.2) for a KEK of @kek_bits. */
static SECItem *shared_info_encode(PLArenaPool *arena, const SECItem *wrap_alg_der,
                                   const SECItem *ukm, unsigned kek_bits)
{
    CmsEccSharedInfo info;
    guint8 bits[4] = {(guint8)(kek_bits >> 24), (guint8)(kek_bits >> 16), (guint8)(kek_bits >> 8),
                      (guint8)kek_bits};
    memset(&info, 0, sizeof info);
    info.key_info = *wrap_alg_der;
    if (ukm != NULL && ukm->len > 0)
        info.entity_u = *ukm;
    info.supp_pub.data = bits;
    info.supp_pub.len = sizeof bits;
    return SEC_ASN1EncodeItem(arena, NULL, &info, ecc_shared_info_template);
}

/* KeyAgreeRecipientInfo: an ephemeral key on the custodian's curve, ECDH, the X9.63 KDF with
 * SHA-256 over ECC-CMS-SharedInfo, and AES-256 key wrap (RFC 5753, RFC 3394). */
static SECItem *kari_encode(PLArenaPool *arena, CERTCertificate *cert, SECKEYPublicKey *pub,
                            PK11SymKey *cek, GError **error)
{
    CmsKari kari;
    CmsRecipientEncryptedKey rek;
    CmsRecipientEncryptedKey *reks[2] = {&rek, NULL};
    SECAlgorithmID wrap_alg;
    SECKEYPublicKey *eph_pub = NULL;
    g_autoptr(SECKEYPrivateKey) eph = NULL;
    g_autoptr(PK11SymKey) kek = NULL;
    SECItem *result = NULL;
    memset(&kari, 0, sizeof kari);
    memset(&rek, 0, sizeof rek);

    eph = SECKEY_CreateECPrivateKey(&pub->u.ec.DEREncodedParams, &eph_pub, NULL);
    if (eph == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "cannot make an ephemeral key on the curve of \"%s\"",
                             cert->subjectName);
        goto out;
    }
    SECItem *wrap_der = NULL;
    if (!algid_set_absent(arena, &wrap_alg, SEC_OID_AES_256_KEY_WRAP) ||
        (wrap_der = SEC_ASN1EncodeItem(arena, NULL, &wrap_alg,
                                       SEC_ASN1_GET(SECOID_AlgorithmIDTemplate))) == NULL)
        goto asn1;
    SECItem *shared = shared_info_encode(arena, wrap_der, NULL, 256);
    if (shared == NULL)
        goto asn1;
    kek = PK11_PubDeriveWithKDF(eph, pub, PR_TRUE, NULL, NULL, CKM_ECDH1_DERIVE,
                                CKM_NSS_AES_KEY_WRAP, CKA_WRAP, 32, CKD_SHA256_KDF, shared, NULL);
    if (kek == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "cannot agree on a key with \"%s\" (ECDH)", cert->subjectName);
        goto out;
    }
    rek.encrypted_key.data = PORT_ArenaAlloc(arena, 64);
    rek.encrypted_key.len = 64;
    if (rek.encrypted_key.data == NULL ||
        PK11_WrapSymKey(CKM_NSS_AES_KEY_WRAP, NULL, kek, cek, &rek.encrypted_key) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "cannot wrap the share's key for \"%s\" (AES key wrap)",
                             cert->subjectName);
        goto out;
    }
    SECItem *rid = encode_rid(arena, cert);
    SECItem scheme_oid = {siBuffer, (unsigned char *)ecdh_schemes[ECDH_SCHEME_SHA256].oid,
                          ecdh_schemes[ECDH_SCHEME_SHA256].len};
    if (rid == NULL || SEC_ASN1EncodeInteger(arena, &kari.version, 3) == NULL ||
        SECITEM_CopyItem(arena, &kari.algorithm.algorithm, &scheme_oid) != SECSuccess ||
        SECITEM_CopyItem(arena, &kari.algorithm.parameters, wrap_der) != SECSuccess)
        goto asn1;
    rek.rid = *rid;
    kari.keys = reks;
    /* The originator's key: id-ecPublicKey with absent parameters (RFC 5753 §7.1.1: the curve
     * is the recipient's), and the point. */
    if (!algid_set_absent(arena, &kari.originator.algorithm, SEC_OID_ANSIX962_EC_PUBLIC_KEY) ||
        SECITEM_CopyItem(arena, &kari.originator.public_key, &eph_pub->u.ec.publicValue) !=
            SECSuccess)
        goto asn1;
    kari.originator.public_key.len *= 8; /* BIT STRING: length in bits */
    result = SEC_ASN1EncodeItem(arena, NULL, &kari, kari_template);
    if (result != NULL)
        goto out;
asn1:
    caback_error_set_nss(error, CABACK_ERROR_FAILED,
                         "cannot encode the share's recipient \"%s\"", cert->subjectName);
out:
    if (eph_pub != NULL)
        SECKEY_DestroyPublicKey(eph_pub);
    return result;
}

char *caback_custody_certificate_unsupported(CERTCertificate *cert)
{
    g_autoptr(SECKEYPublicKey) pub = CERT_ExtractPublicKey(cert);
    if (pub == NULL)
        return g_strdup("its public key cannot be read");
    switch (pub->keyType) {
    case rsaKey:
        if (SECKEY_PublicKeyStrengthInBits(pub) < 2048)
            return g_strdup_printf("its RSA key has %u bits; a custodian key needs at least 2048",
                                   SECKEY_PublicKeyStrengthInBits(pub));
        return NULL;
    case ecKey: {
        /* the named curve: DEREncodedParams is an OBJECT IDENTIFIER */
        const SECItem *params = &pub->u.ec.DEREncodedParams;
        SECOidTag curve = SEC_OID_UNKNOWN;
        if (params->len > 2 && params->data[0] == 0x06 && params->data[1] == params->len - 2) {
            SECItem oid = {siBuffer, params->data + 2, params->len - 2};
            curve = SECOID_FindOIDTag(&oid);
        }
        if (curve != SEC_OID_ANSIX962_EC_PRIME256V1 && curve != SEC_OID_SECG_EC_SECP384R1 &&
            curve != SEC_OID_SECG_EC_SECP521R1)
            return g_strdup("its EC key is not on P-256, P-384 or P-521 (the curves of CMS "
                            "key agreement that NSS and OpenSSL share)");
        return NULL;
    }
    default:
        return g_strdup("its key is neither RSA nor EC (only those can receive a share)");
    }
}

GBytes *caback_share_envelope(const CabackShare *share, CERTCertificate *custodian,
                              GError **error)
{
    g_autoptr(PLArenaPool) arena = PORT_NewArena(2048);
    g_autoptr(SECKEYPublicKey) pub = NULL;
    g_autoptr(PK11SymKey) cek = NULL;
    g_autoptr(CabackSecret) record = NULL;
    g_autofree char *unsupported = caback_custody_certificate_unsupported(custodian);
    CmsEnvelopedData env;
    CmsContentInfo ci;
    SECItem *ri = NULL;
    SECItem *ris[2] = {NULL, NULL};
    CabackShare stated;

    memset(&env, 0, sizeof env);
    memset(&ci, 0, sizeof ci);
    if (arena == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "out of memory");
        return NULL;
    }
    if (unsupported != NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "certificate \"%s\" cannot receive a share: %s", custodian->subjectName,
                    unsupported);
        return NULL;
    }
    pub = CERT_ExtractPublicKey(custodian);
    /* the record states the certificate it is encrypted to */
    stated = *share;
    caback_custody_cert_sha256(custodian, stated.custodian_sha256);
    stated.has_custodian = TRUE;
    record = caback_share_record_encode(&stated);
    caback_secret_wipe(&stated, sizeof stated);
    if (record == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "share %u has no complete archive SHA-256", share->index);
        return NULL;
    }
    if (!encrypt_content(arena, record, &cek, &env.eci, error))
        return NULL;
    if (pub->keyType == rsaKey)
        ri = ktri_oaep_encode(arena, custodian, pub, cek, error);
    else
        ri = kari_encode(arena, custodian, pub, cek, error);
    if (ri == NULL)
        return NULL;
    ris[0] = ri;
    env.recipient_infos = ris;
    /* RFC 5652 §6.1: version 0 when every recipient is a v0 ktri, else 2 */
    if (SEC_ASN1EncodeInteger(arena, &env.version, pub->keyType == rsaKey ? 0 : 2) == NULL)
        goto asn1;
    SECItem *env_der = SEC_ASN1EncodeItem(arena, NULL, &env, enveloped_data_template);
    const SECOidData *env_oid = SECOID_FindOIDByTag(SEC_OID_PKCS7_ENVELOPED_DATA);
    if (env_der == NULL || env_oid == NULL)
        goto asn1;
    ci.content_type = env_oid->oid;
    ci.content = *env_der;
    SECItem *der = SEC_ASN1EncodeItem(arena, NULL, &ci, content_info_template);
    if (der == NULL)
        goto asn1;
    return g_bytes_new(der->data, der->len);
asn1:
    caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot encode share %u's envelope",
                         share->index);
    return NULL;
}

/* ---- decryption ---- */

/* The content key from a KeyTransRecipientInfo: RSAES-OAEP (any SHA-1/SHA-2 hash with MGF1 of
 * the same family, empty label) or PKCS#1 v1.5 (what cmsutil and openssl write by default). */
static PK11SymKey *ktri_unwrap(PLArenaPool *arena, const CmsKtri *ktri, SECKEYPrivateKey *key,
                               int cek_len, const char *where, GError **error)
{
    SECOidTag alg = SECOID_GetAlgorithmTag(&ktri->algorithm);
    SECItem enc = ktri->encrypted_key;

    if (alg == SEC_OID_PKCS1_RSA_ENCRYPTION) {
        PK11SymKey *cek = PK11_PubUnwrapSymKey(key, &enc, CKM_AES_CBC_PAD, CKA_DECRYPT, cek_len);
        if (cek == NULL)
            caback_error_set_nss(error, CABACK_ERROR_BAD_PASSWORD,
                                 "cannot decrypt the key of %s (RSA PKCS#1 v1.5)", where);
        return cek;
    }
    if (alg != SEC_OID_PKCS1_RSA_OAEP_ENCRYPTION) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s: its key is encrypted with an algorithm caback does not read (%s)", where,
                    SECOID_FindOIDTagDescription(alg));
        return NULL;
    }
    CmsOaepParams params;
    memset(&params, 0, sizeof params);
    SECItem params_der = ktri->algorithm.parameters;
    if (params_der.len > 0 && !params_none(&params_der) &&
        SEC_QuickDERDecodeItem(arena, &params, oaep_params_template, &params_der) != SECSuccess) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s: its RSA-OAEP parameters are malformed", where);
        return NULL;
    }
    SECOidTag hash = params.hash != NULL ? SECOID_GetAlgorithmTag(params.hash) : SEC_OID_SHA1;
    SECOidTag mgf_hash = SEC_OID_SHA1;
    if (params.mgf != NULL) {
        SECAlgorithmID inner;
        memset(&inner, 0, sizeof inner);
        SECItem inner_der = params.mgf->parameters;
        if (SECOID_GetAlgorithmTag(params.mgf) != SEC_OID_PKCS1_MGF1 ||
            SEC_QuickDERDecodeItem(arena, &inner, SEC_ASN1_GET(SECOID_AlgorithmIDTemplate),
                                   &inner_der) != SECSuccess) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                        "%s: its RSA-OAEP mask generation is not MGF1", where);
            return NULL;
        }
        mgf_hash = SECOID_GetAlgorithmTag(&inner);
    }
    if (params.label != NULL || hash_to_mechanism(hash) == 0 || hash_to_mgf(mgf_hash) == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s: RSA-OAEP with %s, MGF1 with %s%s is not supported", where,
                    SECOID_FindOIDTagDescription(hash), SECOID_FindOIDTagDescription(mgf_hash),
                    params.label != NULL ? " and a label" : "");
        return NULL;
    }
    CK_RSA_PKCS_OAEP_PARAMS oaep = {hash_to_mechanism(hash), hash_to_mgf(mgf_hash),
                                    CKZ_DATA_SPECIFIED, NULL, 0};
    SECItem oaep_item = {siBuffer, (unsigned char *)&oaep, sizeof oaep};
    PK11SymKey *cek = PK11_PubUnwrapSymKeyWithMechanism(key, CKM_RSA_PKCS_OAEP, &oaep_item, &enc,
                                                        CKM_AES_CBC_PAD, CKA_DECRYPT, cek_len);
    if (cek == NULL) {
        g_autofree char *token = external_token(key);
        if (token != NULL)
            /* a token without OAEP for this hash (SoftHSM 2.6 has SHA-1 only), not a damaged
             * file */
            caback_error_set_nss(error, CABACK_ERROR_FAILED,
                                 "token \"%s\" cannot decrypt the key of %s with RSA-OAEP "
                                 "(%s, MGF1 with %s); the token may not offer that mechanism",
                                 token, where, SECOID_FindOIDTagDescription(hash),
                                 SECOID_FindOIDTagDescription(mgf_hash));
        else
            caback_error_set_nss(error, CABACK_ERROR_BAD_PASSWORD,
                                 "cannot decrypt the key of %s (RSA-OAEP): the file is damaged "
                                 "or was not made for this key", where);
    }
    return cek;
}

/* The key agreement's scheme (*@kdf, the X9.63 KDF of a dhSinglePass-stdDH scheme) and its key
 * wrap (*@wrap_der its encoding, *@kek_len the AES key wrap's key length) of @kari. */
static gboolean kari_algorithms(PLArenaPool *arena, const CmsKari *kari, const char *where,
                                CK_ULONG *kdf, SECItem *wrap_der, int *kek_len, GError **error)
{
    *kdf = 0;
    for (gsize i = 0; i < G_N_ELEMENTS(ecdh_schemes); i++)
        if (kari->algorithm.algorithm.len == ecdh_schemes[i].len &&
            memcmp(kari->algorithm.algorithm.data, ecdh_schemes[i].oid, ecdh_schemes[i].len) == 0)
            *kdf = ecdh_schemes[i].kdf;
    if (*kdf == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s: its key agreement is not a dhSinglePass-stdDH scheme caback reads",
                    where);
        return FALSE;
    }
    SECAlgorithmID wrap;
    memset(&wrap, 0, sizeof wrap);
    *wrap_der = kari->algorithm.parameters;
    if (SEC_QuickDERDecodeItem(arena, &wrap, SEC_ASN1_GET(SECOID_AlgorithmIDTemplate),
                               wrap_der) != SECSuccess) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s: its key wrap algorithm is malformed", where);
        return FALSE;
    }
    switch (SECOID_GetAlgorithmTag(&wrap)) {
    case SEC_OID_AES_128_KEY_WRAP: *kek_len = 16; break;
    case SEC_OID_AES_192_KEY_WRAP: *kek_len = 24; break;
    case SEC_OID_AES_256_KEY_WRAP: *kek_len = 32; break;
    default:
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s: its key is wrapped with %s; caback reads AES key wrap", where,
                    SECOID_FindOIDTagDescription(SECOID_GetAlgorithmTag(&wrap)));
        return FALSE;
    }
    return TRUE;
}

/* The content key from a KeyAgreeRecipientInfo's encrypted key @rek with the recipient's key. */
static PK11SymKey *kari_unwrap(PLArenaPool *arena, const CmsKari *kari,
                               const CmsRecipientEncryptedKey *rek, CERTCertificate *cert,
                               SECKEYPrivateKey *key, int cek_len, const char *where,
                               GError **error)
{
    CK_ULONG kdf = 0;
    SECItem wrap_der;
    int kek_len = 0;
    if (!kari_algorithms(arena, kari, where, &kdf, &wrap_der, &kek_len, error))
        return NULL;
    /* the originator's key lies on the recipient's curve */
    g_autoptr(SECKEYPublicKey) mine = CERT_ExtractPublicKey(cert);
    if (mine == NULL || mine->keyType != ecKey ||
        SECOID_GetAlgorithmTag(&kari->originator.algorithm) != SEC_OID_ANSIX962_EC_PUBLIC_KEY) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s: its key agreement does not use an EC key of the certificate's curve",
                    where);
        return NULL;
    }
    SECKEYPublicKey peer;
    memset(&peer, 0, sizeof peer);
    peer.keyType = ecKey;
    peer.pkcs11ID = CK_INVALID_HANDLE;
    peer.u.ec.DEREncodedParams = mine->u.ec.DEREncodedParams;
    peer.u.ec.size = mine->u.ec.size;
    peer.u.ec.publicValue = kari->originator.public_key;
    peer.u.ec.publicValue.len = (kari->originator.public_key.len + 7) / 8;

    SECItem *shared = shared_info_encode(arena, &wrap_der, &kari->ukm, (unsigned)kek_len * 8);
    if (shared == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot encode the KDF's shared info");
        return NULL;
    }
    g_autoptr(PK11SymKey) kek =
        PK11_PubDeriveWithKDF(key, &peer, PR_FALSE, NULL, NULL, CKM_ECDH1_DERIVE,
                              CKM_NSS_AES_KEY_WRAP, CKA_UNWRAP, kek_len, kdf, shared, NULL);
    if (kek == NULL) {
        g_autofree char *token = external_token(key);
        if (token != NULL)
            caback_error_set_nss(error, CABACK_ERROR_FAILED,
                                 "token \"%s\" cannot agree on the key of %s (ECDH with the key "
                                 "of \"%s\" and the X9.63 KDF); the token may offer ECDH only "
                                 "without a KDF",
                                 token, where, cert->subjectName);
        else
            caback_error_set_nss(error, CABACK_ERROR_BAD_PASSWORD,
                                 "cannot agree on the key of %s (ECDH with the key of \"%s\"): "
                                 "the file is damaged",
                                 where, cert->subjectName);
        return NULL;
    }
    SECItem enc = rek->encrypted_key;
    PK11SymKey *cek = PK11_UnwrapSymKey(kek, CKM_NSS_AES_KEY_WRAP, NULL, &enc, CKM_AES_CBC_PAD,
                                        CKA_DECRYPT, cek_len);
    if (cek == NULL)
        caback_error_set_nss(error, CABACK_ERROR_BAD_PASSWORD,
                             "cannot unwrap the key of %s (AES key wrap): the file is damaged or "
                             "was not made for this key",
                             where);
    return cek;
}

/* The EnvelopedData of @der, its content checked: AES-CBC (*@cek_len the key's length) with a
 * 16-byte IV (*@iv, in @arena), encrypted data of a sane length. */
static gboolean decode_envelope(PLArenaPool *arena, GBytes *der, const char *where,
                                CmsEnvelopedData *env, int *cek_len, SECItem *iv, GError **error)
{
    CmsContentInfo ci;
    gsize der_len = 0;
    const guint8 *der_data = g_bytes_get_data(der, &der_len);
    SECItem input = {siBuffer, (unsigned char *)der_data, (unsigned int)der_len};

    memset(&ci, 0, sizeof ci);
    memset(env, 0, sizeof *env);
    if (SEC_ASN1DecodeItem(arena, &ci, content_info_template, &input) != SECSuccess ||
        !oid_is(&ci.content_type, SEC_OID_PKCS7_ENVELOPED_DATA) ||
        SEC_ASN1DecodeItem(arena, env, enveloped_data_template, &ci.content) != SECSuccess ||
        env->recipient_infos == NULL || env->recipient_infos[0] == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s is not a share: it is not a CMS EnvelopedData (damaged, or another "
                    "kind of file)", where);
        return FALSE;
    }
    /* the content: AES-CBC with a 16-byte IV */
    SECOidTag content_alg = SECOID_GetAlgorithmTag(&env->eci.algorithm);
    *cek_len = content_alg == SEC_OID_AES_256_CBC   ? 32
               : content_alg == SEC_OID_AES_192_CBC ? 24
               : content_alg == SEC_OID_AES_128_CBC ? 16
                                                    : 0;
    SECItem iv_der = env->eci.algorithm.parameters;
    if (*cek_len == 0 ||
        SEC_QuickDERDecodeItem(arena, iv, SEC_ASN1_GET(SEC_OctetStringTemplate), &iv_der) !=
            SECSuccess ||
        iv->len != 16) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s: its content is encrypted with %s; caback reads AES-CBC", where,
                    SECOID_FindOIDTagDescription(content_alg));
        return FALSE;
    }
    if (!oid_is(&env->eci.content_type, SEC_OID_PKCS7_DATA) || env->eci.encrypted.len == 0 ||
        env->eci.encrypted.len % 16 != 0 || env->eci.encrypted.len > CABACK_SHARE_FILE_MAX) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s: its encrypted content is missing or malformed", where);
        return FALSE;
    }
    return TRUE;
}

/* The search for a recipient whose certificate and key are here. */
typedef struct {
    PLArenaPool *arena;
    PK11SlotInfo *slot;
    void *wincx;
    int cek_len;
    const char *where;
    GString *recipients;        /* who the share is encrypted to, for the message */
    GError *unwrap_error;       /* the last failed unwrap with a key that is here */
    CERTCertificate *opened_by; /* the certificate whose key opened it */
} Opening;

static void add_recipient(Opening *o, const char *who)
{
    g_string_append_printf(o->recipients, "%s%s", o->recipients->len > 0 ? "; " : "", who);
}

/* A key-transport recipient (RSA): its content-encryption key when the key is here. */
static PK11SymKey *try_ktri(Opening *o, SECItem *item)
{
    CmsKtri ktri;
    memset(&ktri, 0, sizeof ktri);
    if (SEC_ASN1DecodeItem(o->arena, &ktri, ktri_template, item) != SECSuccess) {
        add_recipient(o, "a malformed recipient");
        return NULL;
    }
    g_autofree char *who = rid_describe(&ktri.rid);
    add_recipient(o, who);
    g_autoptr(CERTCertificate) cert = rid_find_cert(&ktri.rid, o->wincx);
    g_autoptr(SECKEYPrivateKey) key = cert != NULL ? find_key(cert, o->slot, o->wincx) : NULL;
    if (key == NULL)
        return NULL;
    g_clear_error(&o->unwrap_error);
    PK11SymKey *cek = ktri_unwrap(o->arena, &ktri, key, o->cek_len, o->where, &o->unwrap_error);
    if (cek != NULL)
        o->opened_by = g_steal_pointer(&cert);
    return cek;
}

/* A key-agreement recipient (EC): its content-encryption key when one of its keys is here. */
static PK11SymKey *try_kari(Opening *o, SECItem *item)
{
    CmsKari kari;
    memset(&kari, 0, sizeof kari);
    if (SEC_ASN1DecodeItem(o->arena, &kari, kari_template, item) != SECSuccess ||
        kari.keys == NULL) {
        add_recipient(o, "a malformed recipient");
        return NULL;
    }
    PK11SymKey *cek = NULL;
    for (CmsRecipientEncryptedKey **rek = kari.keys; *rek != NULL && cek == NULL; rek++) {
        g_autofree char *who = rid_describe(&(*rek)->rid);
        add_recipient(o, who);
        g_autoptr(CERTCertificate) cert = rid_find_cert(&(*rek)->rid, o->wincx);
        g_autoptr(SECKEYPrivateKey) key = cert != NULL ? find_key(cert, o->slot, o->wincx) : NULL;
        if (key == NULL)
            continue;
        g_clear_error(&o->unwrap_error);
        cek = kari_unwrap(o->arena, &kari, *rek, cert, key, o->cek_len, o->where,
                          &o->unwrap_error);
        if (cek != NULL)
            o->opened_by = g_steal_pointer(&cert);
    }
    return cek;
}

/* The content-encryption key from the first recipient whose certificate and key are here. */
static PK11SymKey *open_recipients(Opening *o, const CmsEnvelopedData *env, GError **error)
{
    PK11SymKey *cek = NULL;
    for (SECItem **ri = env->recipient_infos; *ri != NULL && cek == NULL; ri++) {
        SECItem item = **ri;
        if (item.len == 0)
            continue;
        if (item.data[0] == 0x30)
            cek = try_ktri(o, &item);
        else if (item.data[0] == 0xa1)
            cek = try_kari(o, &item);
        else
            add_recipient(o, "a recipient of a kind caback does not read");
    }
    if (cek != NULL)
        return cek;
    if (o->unwrap_error != NULL) {
        g_propagate_error(error, g_steal_pointer(&o->unwrap_error));
        return NULL;
    }
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                "no key opens %s: it is encrypted to %s. Open it with the database or "
                "token that holds that certificate and its private key (certutil -L and -K "
                "list them)", o->where, o->recipients->len > 0 ? o->recipients->str : "nobody");
    return NULL;
}

/* The share record in @env's content, decrypted with @cek, whose custodian must be @opened_by. */
static CabackShare *decrypt_share(PK11SymKey *cek, SECItem *iv, const CmsEnvelopedData *env,
                                  CERTCertificate *opened_by, const char *source,
                                  const char *where, GError **error)
{
    g_autoptr(CabackSecret) plain = caback_secret_new((const char *)env->eci.encrypted.data,
                                                      env->eci.encrypted.len);
    unsigned int plain_len = 0;
    if (PK11_Decrypt(cek, CKM_AES_CBC_PAD, iv, (unsigned char *)plain->data, &plain_len,
                     (unsigned int)plain->len, env->eci.encrypted.data, env->eci.encrypted.len) !=
        SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_BAD_PASSWORD,
                             "%s cannot be decrypted: it is damaged", where);
        return NULL;
    }
    CabackShare *share = caback_share_record_decode(plain->data, plain_len, source, error);
    if (share == NULL)
        return NULL;
    guint8 fingerprint[32];
    caback_custody_cert_sha256(opened_by, fingerprint);
    if (memcmp(fingerprint, share->custodian_sha256, 32) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s states another custodian certificate than \"%s\", whose key opened it: "
                    "the file was altered or re-encrypted; use the share file the backup wrote",
                    where, opened_by->subjectName);
        caback_share_free(share);
        return NULL;
    }
    return share;
}

CabackShare *caback_share_envelope_open(GBytes *der, const char *source, PK11SlotInfo *slot,
                                        void *wincx, GError **error)
{
    const char *where = source != NULL ? source : "the share";
    g_autoptr(PLArenaPool) arena = PORT_NewArena(4096);
    CmsEnvelopedData env;
    SECItem iv = {siBuffer, NULL, 0};
    int cek_len = 0;

    if (arena == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "out of memory");
        return NULL;
    }
    if (!decode_envelope(arena, der, where, &env, &cek_len, &iv, error))
        return NULL;
    Opening o = {.arena = arena,
                 .slot = slot,
                 .wincx = wincx,
                 .cek_len = cek_len,
                 .where = where,
                 .recipients = g_string_new(NULL)};
    g_autoptr(PK11SymKey) cek = open_recipients(&o, &env, error);
    CabackShare *share =
        cek != NULL ? decrypt_share(cek, &iv, &env, o.opened_by, source, where, error) : NULL;
    g_string_free(o.recipients, TRUE);
    g_clear_error(&o.unwrap_error);
    g_clear_pointer(&o.opened_by, CERT_DestroyCertificate);
    return share;
}

/* ---- files ---- */

/* The first M and the last M shares of a new split give back @secret: a guard against a fault
 * in the split itself, before any file is written. */
static gboolean self_check(GPtrArray *shares, const CabackSecret *secret,
                           const guint8 *archive_sha256, GError **error)
{
    const CabackShare *first = g_ptr_array_index(shares, 0);
    guint m = first->threshold;
    for (int pass = 0; pass < 2; pass++) {
        g_autoptr(GPtrArray) some = g_ptr_array_new();
        for (guint k = 0; k < m; k++)
            g_ptr_array_add(some, g_ptr_array_index(shares, pass == 0 ? k : shares->len - m + k));
        g_autoptr(CabackSecret) back = caback_custody_combine(some, archive_sha256, error);
        if (back == NULL)
            return FALSE;
        if (back->len != secret->len || memcmp(back->data, secret->data, secret->len) != 0) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                        "the split does not give the password back (%u of its %u shares "
                        "combined); no share file was written", m, shares->len);
            return FALSE;
        }
    }
    return TRUE;
}

/* Each custodian must be a different person's certificate. */
static gboolean refuse_duplicate_custodians(CERTCertificate *const *custodians, guint count,
                                            GError **error)
{
    for (guint i = 0; i < count; i++)
        for (guint j = 0; j < i; j++)
            if (CERT_CompareCerts(custodians[i], custodians[j])) {
                g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                            "custodian certificate \"%s\" is given twice (custodians %u and %u): "
                            "each custodian must be a different person's certificate",
                            custodians[i]->subjectName, j + 1, i + 1);
                return FALSE;
            }
    return TRUE;
}

/* @share encrypted to @custodian, written to a temporary file for @name (*@file, not yet in
 * place) and read back: what the file holds is what was meant for it. */
static gboolean write_one_share(const CabackShare *share, CERTCertificate *custodian,
                                const char *name, gboolean replace, CabackAtomicFile **file,
                                GError **error)
{
    if (!replace && g_file_test(name, G_FILE_TEST_EXISTS)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%s already exists; no share file was written (use the option to "
                    "replace files, or another output name)", name);
        return FALSE;
    }
    g_autoptr(GBytes) envelope = caback_share_envelope(share, custodian, error);
    if (envelope == NULL)
        return FALSE;
    *file = caback_atomic_file_new(name, 0600, (uid_t)-1, (gid_t)-1, error);
    if (*file == NULL)
        return FALSE;
    gsize len = 0;
    const void *data = g_bytes_get_data(envelope, &len);
    if (!caback_atomic_file_write(*file, data, len, error))
        return FALSE;
    g_autoptr(GBytes) back = caback_atomic_file_read_back(*file, len + 1, error);
    if (back == NULL)
        return FALSE;
    if (!g_bytes_equal(back, envelope)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "%s: the bytes read back differ from those written; no share file was "
                    "written (check the disk)", name);
        return FALSE;
    }
    return TRUE;
}

gboolean caback_custody_write_shares(const char *archive_path, const CabackSecret *secret,
                                     guint threshold, CERTCertificate *const *custodians,
                                     guint count, const guint8 *archive_sha256, gboolean replace,
                                     GPtrArray **paths, GPtrArray **fingerprints,
                                     GPtrArray **shares_out, GError **error)
{
    g_autoptr(GPtrArray) shares = caback_custody_split(secret, threshold, count, archive_sha256,
                                                       error);
    if (shares == NULL)
        return FALSE;
    if (!self_check(shares, secret, archive_sha256, error))
        return FALSE;
    if (!refuse_duplicate_custodians(custodians, count, error))
        return FALSE;

    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) prints = g_ptr_array_new_with_free_func(g_free);
    CabackAtomicFile **files = g_new0(CabackAtomicFile *, count);
    gboolean ok = FALSE;
    guint committed = 0;

    for (guint i = 0; i < count; i++) {
        CabackShare *share = g_ptr_array_index(shares, i);
        char *name = caback_share_file_name(archive_path, i + 1, count);
        g_ptr_array_add(names, name);
        caback_custody_cert_sha256(custodians[i], share->custodian_sha256);
        share->has_custodian = TRUE;
        GString *hex = g_string_new(NULL);
        for (int k = 0; k < 32; k++)
            g_string_append_printf(hex, "%02x", share->custodian_sha256[k]);
        g_ptr_array_add(prints, g_string_free(hex, FALSE));
        if (!write_one_share(share, custodians[i], name, replace, &files[i], error))
            goto out;
    }
    /* every file is complete: now they appear */
    for (guint i = 0; i < count; i++) {
        CabackAtomicFile *file = files[i];
        files[i] = NULL;
        if (!caback_atomic_file_commit(file, replace, error)) {
            /* the ones already renamed are of no use without the others */
            for (guint k = 0; k < committed; k++)
                (void)unlink(g_ptr_array_index(names, k));
            goto out;
        }
        committed++;
    }
    ok = TRUE;
    if (paths != NULL)
        *paths = g_steal_pointer(&names);
    if (fingerprints != NULL)
        *fingerprints = g_steal_pointer(&prints);
    if (shares_out != NULL)
        *shares_out = g_steal_pointer(&shares);
out:
    for (guint i = 0; i < count; i++)
        caback_atomic_file_abort(files[i]);
    g_free(files);
    return ok;
}

/* The contents of @path (regular file, at most CABACK_SHARE_FILE_MAX bytes, no symbolic link). */
static CabackSecret *read_share_file(const char *path, GError **error)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, e == ENOENT ? CABACK_ERROR_NOT_FOUND : CABACK_ERROR_IO,
                    "cannot open share file %s: %s%s", path, g_strerror(e),
                    e == ELOOP ? " (a symbolic link: give the file itself)" : "");
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CABACK_SHARE_FILE_MAX) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "%s is not a share file: not a regular file of at most %d bytes", path,
                    CABACK_SHARE_FILE_MAX);
        close(fd);
        return NULL;
    }
    g_autofree char *zeros = g_malloc0((gsize)st.st_size + 1);
    CabackSecret *buf = caback_secret_new(zeros, (gsize)st.st_size);
    gsize got = 0;
    while (got < buf->len) {
        ssize_t n = read(fd, buf->data + got, buf->len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot read share file %s: %s",
                        path, n < 0 ? g_strerror(errno) : "it became shorter while read");
            close(fd);
            caback_secret_free(buf);
            return NULL;
        }
        got += (gsize)n;
    }
    close(fd);
    return buf;
}

CabackShare *caback_share_read(const char *path, CabackDb *db, GError **error)
{
    g_autoptr(CabackSecret) contents = read_share_file(path, error);
    if (contents == NULL)
        return NULL;
    if (contents->len > 0 && (guint8)contents->data[0] == 0x30) {
        if (db == NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "%s is an encrypted share: give -d with the custodian's NSS database "
                        "(or open it first with caback share-open)", path);
            return NULL;
        }
        g_autoptr(GBytes) der = g_bytes_new(contents->data, contents->len);
        GError *local = NULL;
        CabackShare *share = caback_share_envelope_open(der, path, db->slot, db, &local);
        if (local != NULL && g_error_matches(local, CABACK_ERROR, CABACK_ERROR_NOT_FOUND))
            /* say where the keys were looked for */
            g_prefix_error(&local, "NSS database %s (token \"%s\"): ", db->dir,
                           db->token_name != NULL ? db->token_name : "?");
        if (local != NULL)
            g_propagate_error(error, local);
        return share;
    }
    return caback_share_from_text(contents->data, contents->len, path, error);
}

CabackSecret *caback_share_to_line(const CabackShare *share)
{
    g_autoptr(CabackSecret) text = caback_share_to_text(share);
    char buf[256];
    g_assert(text->len + 1 < sizeof buf);
    memcpy(buf, text->data, text->len);
    buf[text->len] = '\n';
    CabackSecret *line = caback_secret_new(buf, text->len + 1);
    caback_secret_wipe(buf, sizeof buf);
    return line;
}

gboolean caback_share_write_text(const char *path, const CabackShare *share, gboolean replace,
                                 GError **error)
{
    g_autoptr(CabackSecret) line = caback_share_to_line(share);
    return caback_atomic_file_replace(path, line->data, line->len, 0600, (uid_t)-1, (gid_t)-1,
                                      replace, error);
}
