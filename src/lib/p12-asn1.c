/* The ASN.1 of PKCS#12 as NSS templates, and plain helpers for OIDs, INTEGERs, BMPStrings and
 * DER ordering. The structures are documented in p12-asn1.h. */
#include "config.h"

#include "p12-asn1.h"

#include <cert.h>
#include <prprf.h>
#include <secder.h>
#include <secerr.h>
#include <secitem.h>
#include <secport.h>
#include <stdlib.h>
#include <string.h>

SEC_ASN1_MKSUB(SECOID_AlgorithmIDTemplate)
SEC_ASN1_MKSUB(SEC_AnyTemplate)
SEC_ASN1_MKSUB(SEC_OctetStringTemplate)
SEC_ASN1_MKSUB(SEC_SetOfAnyTemplate)
SEC_ASN1_MKSUB(SEC_BitStringTemplate)

/* ---- templates ---- */

const SEC_ASN1Template p12_content_info_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12ContentInfo)},
    {SEC_ASN1_OBJECT_ID, offsetof(P12ContentInfo, content_type)},
    {SEC_ASN1_OPTIONAL | SEC_ASN1_EXPLICIT | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC |
         SEC_ASN1_XTRN | 0,
     offsetof(P12ContentInfo, content), SEC_ASN1_SUB(SEC_AnyTemplate)},
    {0}};

const SEC_ASN1Template p12_content_infos_template[] = {
    {SEC_ASN1_SEQUENCE_OF, 0, p12_content_info_template}};

static const SEC_ASN1Template p12_digest_info_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12DigestInfo)},
    {SEC_ASN1_INLINE | SEC_ASN1_XTRN, offsetof(P12DigestInfo, algorithm),
     SEC_ASN1_SUB(SECOID_AlgorithmIDTemplate)},
    {SEC_ASN1_OCTET_STRING, offsetof(P12DigestInfo, digest)},
    {0}};

const SEC_ASN1Template p12_mac_data_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12MacData)},
    {SEC_ASN1_INLINE, offsetof(P12MacData, mac), p12_digest_info_template},
    {SEC_ASN1_OCTET_STRING, offsetof(P12MacData, salt)},
    {SEC_ASN1_INTEGER | SEC_ASN1_OPTIONAL, offsetof(P12MacData, iterations)},
    {0}};

const SEC_ASN1Template p12_pfx_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12Pfx)},
    {SEC_ASN1_INTEGER, offsetof(P12Pfx, version)},
    {SEC_ASN1_INLINE, offsetof(P12Pfx, auth_safe), p12_content_info_template},
    {SEC_ASN1_POINTER | SEC_ASN1_OPTIONAL, offsetof(P12Pfx, mac_data), p12_mac_data_template},
    {0}};

const SEC_ASN1Template p12_pfx_out_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12PfxOut)},
    {SEC_ASN1_INTEGER, offsetof(P12PfxOut, version)},
    {SEC_ASN1_ANY, offsetof(P12PfxOut, auth_safe)},
    {SEC_ASN1_ANY, offsetof(P12PfxOut, mac_data)},
    {0}};

static const SEC_ASN1Template p12_encrypted_content_info_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12EncryptedContentInfo)},
    {SEC_ASN1_OBJECT_ID, offsetof(P12EncryptedContentInfo, content_type)},
    {SEC_ASN1_INLINE | SEC_ASN1_XTRN, offsetof(P12EncryptedContentInfo, algorithm),
     SEC_ASN1_SUB(SECOID_AlgorithmIDTemplate)},
    /* [0] IMPLICIT OCTET STRING: BER writers may send it constructed, which NSS reassembles. */
    {SEC_ASN1_OPTIONAL | SEC_ASN1_CONTEXT_SPECIFIC | SEC_ASN1_XTRN | 0,
     offsetof(P12EncryptedContentInfo, encrypted), SEC_ASN1_SUB(SEC_OctetStringTemplate)},
    {0}};

const SEC_ASN1Template p12_encrypted_data_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12EncryptedData)},
    {SEC_ASN1_INTEGER, offsetof(P12EncryptedData, version)},
    {SEC_ASN1_INLINE, offsetof(P12EncryptedData, info), p12_encrypted_content_info_template},
    {SEC_ASN1_OPTIONAL | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC | SEC_ASN1_XTRN | 1,
     offsetof(P12EncryptedData, unprotected_attrs), SEC_ASN1_SUB(SEC_SetOfAnyTemplate)},
    {0}};

const SEC_ASN1Template p12_attribute_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12Attribute)},
    {SEC_ASN1_OBJECT_ID, offsetof(P12Attribute, type)},
    {SEC_ASN1_SET_OF | SEC_ASN1_XTRN, offsetof(P12Attribute, values),
     SEC_ASN1_SUB(SEC_AnyTemplate)},
    {0}};

static const SEC_ASN1Template p12_safe_bag_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12SafeBag)},
    {SEC_ASN1_OBJECT_ID, offsetof(P12SafeBag, bag_id)},
    {SEC_ASN1_EXPLICIT | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC | SEC_ASN1_XTRN | 0,
     offsetof(P12SafeBag, value), SEC_ASN1_SUB(SEC_AnyTemplate)},
    {SEC_ASN1_SET_OF | SEC_ASN1_OPTIONAL, offsetof(P12SafeBag, attributes), p12_attribute_template},
    {0}};

const SEC_ASN1Template p12_safe_contents_template[] = {
    {SEC_ASN1_SEQUENCE_OF, 0, p12_safe_bag_template}};

const SEC_ASN1Template p12_sequence_of_any_template[] = {
    {SEC_ASN1_SEQUENCE_OF | SEC_ASN1_XTRN, 0, SEC_ASN1_SUB(SEC_AnyTemplate)}};

const SEC_ASN1Template p12_safe_bag_out_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12SafeBagOut)},
    {SEC_ASN1_OBJECT_ID, offsetof(P12SafeBagOut, bag_id)},
    {SEC_ASN1_EXPLICIT | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC | SEC_ASN1_XTRN | 0,
     offsetof(P12SafeBagOut, value), SEC_ASN1_SUB(SEC_AnyTemplate)},
    {SEC_ASN1_SET_OF | SEC_ASN1_OPTIONAL | SEC_ASN1_XTRN, offsetof(P12SafeBagOut, attributes),
     SEC_ASN1_SUB(SEC_AnyTemplate)},
    {0}};

const SEC_ASN1Template p12_typed_value_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12TypedValue)},
    {SEC_ASN1_OBJECT_ID, offsetof(P12TypedValue, type_id)},
    {SEC_ASN1_EXPLICIT | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC | SEC_ASN1_XTRN | 0,
     offsetof(P12TypedValue, value), SEC_ASN1_SUB(SEC_AnyTemplate)},
    {0}};

const SEC_ASN1Template p12_epki_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12EncryptedPrivateKeyInfo)},
    {SEC_ASN1_INLINE | SEC_ASN1_XTRN, offsetof(P12EncryptedPrivateKeyInfo, algorithm),
     SEC_ASN1_SUB(SECOID_AlgorithmIDTemplate)},
    {SEC_ASN1_OCTET_STRING, offsetof(P12EncryptedPrivateKeyInfo, encrypted)},
    {0}};

const SEC_ASN1Template p12_pki_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12PrivateKeyInfo)},
    {SEC_ASN1_INTEGER, offsetof(P12PrivateKeyInfo, version)},
    {SEC_ASN1_INLINE | SEC_ASN1_XTRN, offsetof(P12PrivateKeyInfo, algorithm),
     SEC_ASN1_SUB(SECOID_AlgorithmIDTemplate)},
    {SEC_ASN1_OCTET_STRING, offsetof(P12PrivateKeyInfo, private_key)},
    {SEC_ASN1_OPTIONAL | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC | SEC_ASN1_XTRN | 0,
     offsetof(P12PrivateKeyInfo, attributes), SEC_ASN1_SUB(SEC_SetOfAnyTemplate)},
    {SEC_ASN1_OPTIONAL | SEC_ASN1_CONTEXT_SPECIFIC | SEC_ASN1_XTRN | 1,
     offsetof(P12PrivateKeyInfo, public_key), SEC_ASN1_SUB(SEC_BitStringTemplate)},
    {0}};

const SEC_ASN1Template p12_pbes2_params_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12Pbes2Params)},
    {SEC_ASN1_INLINE | SEC_ASN1_XTRN, offsetof(P12Pbes2Params, kdf),
     SEC_ASN1_SUB(SECOID_AlgorithmIDTemplate)},
    {SEC_ASN1_INLINE | SEC_ASN1_XTRN, offsetof(P12Pbes2Params, scheme),
     SEC_ASN1_SUB(SECOID_AlgorithmIDTemplate)},
    {0}};

const SEC_ASN1Template p12_pbkdf2_params_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12Pbkdf2Params)},
    {SEC_ASN1_OCTET_STRING, offsetof(P12Pbkdf2Params, salt)},
    {SEC_ASN1_INTEGER, offsetof(P12Pbkdf2Params, iterations)},
    {SEC_ASN1_INTEGER | SEC_ASN1_OPTIONAL, offsetof(P12Pbkdf2Params, key_length)},
    {SEC_ASN1_POINTER | SEC_ASN1_OPTIONAL | SEC_ASN1_XTRN, offsetof(P12Pbkdf2Params, prf),
     SEC_ASN1_SUB(SECOID_AlgorithmIDTemplate)},
    {0}};

const SEC_ASN1Template p12_scrypt_params_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12ScryptParams)},
    {SEC_ASN1_OCTET_STRING, offsetof(P12ScryptParams, salt)},
    {SEC_ASN1_INTEGER, offsetof(P12ScryptParams, cost)},
    {SEC_ASN1_INTEGER, offsetof(P12ScryptParams, block_size)},
    {SEC_ASN1_INTEGER, offsetof(P12ScryptParams, parallelization)},
    {SEC_ASN1_INTEGER | SEC_ASN1_OPTIONAL, offsetof(P12ScryptParams, key_length)},
    {0}};

const SEC_ASN1Template p12_ec_private_key_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12EcPrivateKey)},
    {SEC_ASN1_INTEGER, offsetof(P12EcPrivateKey, version)},
    {SEC_ASN1_OCTET_STRING, offsetof(P12EcPrivateKey, private_key)},
    {SEC_ASN1_OPTIONAL | SEC_ASN1_EXPLICIT | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC |
         SEC_ASN1_XTRN | 0,
     offsetof(P12EcPrivateKey, parameters), SEC_ASN1_SUB(SEC_AnyTemplate)},
    {SEC_ASN1_OPTIONAL | SEC_ASN1_EXPLICIT | SEC_ASN1_CONSTRUCTED | SEC_ASN1_CONTEXT_SPECIFIC |
         SEC_ASN1_XTRN | 1,
     offsetof(P12EcPrivateKey, public_key), SEC_ASN1_SUB(SEC_BitStringTemplate)},
    {0}};

const SEC_ASN1Template p12_pbe_params_template[] = {
    {SEC_ASN1_SEQUENCE, 0, NULL, sizeof(P12PbeParams)},
    {SEC_ASN1_OCTET_STRING, offsetof(P12PbeParams, salt)},
    {SEC_ASN1_INTEGER, offsetof(P12PbeParams, iterations)},
    {0}};

/* ---- OIDs ---- */

static const guint8 oid_trust_flags[] = {0x60, 0x86, 0x48, 0x01, 0x86, 0xf8,
                                         0x42, 0x05, 0x01, 0x01, 0x01};
static const guint8 oid_scrypt[] = {0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x04, 0x0b};

const SECItem p12_oid_trust_flags = {siDEROID, (unsigned char *)oid_trust_flags,
                                     sizeof(oid_trust_flags)};
const SECItem p12_oid_scrypt = {siDEROID, (unsigned char *)oid_scrypt, sizeof(oid_scrypt)};

/* Algorithms NSS 3.87 has no tag for (or no mechanism behind), by their dotted OIDs. */
static const struct {
    const char *dotted;
    const char *name;
} known_oids[] = {
    {"1.2.840.113549.1.5.1", "pbeWithMD2AndDES-CBC"},
    {"1.2.840.113549.1.5.4", "pbeWithMD2AndRC2-CBC"},
    {"1.2.840.113549.1.5.6", "pbeWithMD5AndRC2-CBC"},
    {"1.2.840.113549.1.5.11", "pbeWithSHA1AndRC2-CBC"},
    {"1.2.840.113549.1.5.14", "PBMAC1"},
    {"1.3.6.1.4.1.11591.4.11", "scrypt"},
    {"2.16.840.1.101.3.4.1.3", "AES-128-OFB"},
    {"2.16.840.1.101.3.4.1.4", "AES-128-CFB"},
    {"2.16.840.1.101.3.4.1.23", "AES-192-OFB"},
    {"2.16.840.1.101.3.4.1.24", "AES-192-CFB"},
    {"2.16.840.1.101.3.4.1.43", "AES-256-OFB"},
    {"2.16.840.1.101.3.4.1.44", "AES-256-CFB"},
    {"1.2.410.200046.1.1.2", "ARIA-128-CBC"},
    {"1.2.410.200046.1.1.7", "ARIA-192-CBC"},
    {"1.2.410.200046.1.1.12", "ARIA-256-CBC"},
    {"1.2.840.113533.7.66.10", "CAST5-CBC"},
    {"1.3.6.1.4.1.188.7.1.1.2", "IDEA-CBC"},
    {"1.3.6.1.4.1.3029.1.2", "Blowfish-CBC"},
    {"1.2.156.10197.1.104.2", "SM4-CBC"},
    {"1.2.643.2.2.21", "GOST 28147-89"},
    {"1.2.643.7.1.1.5.1", "GOST R 34.12-2015 Magma"},
    {"1.2.643.7.1.1.5.2", "GOST R 34.12-2015 Kuznyechik"},
    {"1.2.643.7.1.1.5.1.1", "GOST R 34.12-2015 Magma-CTR-ACPKM"},
    {"1.2.643.7.1.1.5.2.1", "GOST R 34.12-2015 Kuznyechik-CTR-ACPKM"},
    {"1.2.643.7.1.1.4.1", "HMAC-GOST R 34.11-2012 (256 bits)"},
    {"1.2.643.7.1.1.4.2", "HMAC-GOST R 34.11-2012 (512 bits)"},
    {"1.2.643.2.2.10", "HMAC-GOST R 34.11-94"},
    {"1.2.643.7.1.1.2.2", "GOST R 34.11-2012 (256 bits)"},
    {"1.2.643.7.1.1.2.3", "GOST R 34.11-2012 (512 bits)"},
    {"1.2.643.2.2.9", "GOST R 34.11-94"},
    {"2.16.840.1.101.3.4.2.5", "SHA-512/224"},
    {"2.16.840.1.101.3.4.2.6", "SHA-512/256"},
    {"2.16.840.1.101.3.4.2.7", "SHA3-224"},
    {"2.16.840.1.101.3.4.2.8", "SHA3-256"},
    {"2.16.840.1.101.3.4.2.9", "SHA3-384"},
    {"2.16.840.1.101.3.4.2.10", "SHA3-512"},
    {"2.16.840.1.101.3.4.2.13", "hmacWithSHA3-224"},
    {"2.16.840.1.101.3.4.2.14", "hmacWithSHA3-256"},
    {"2.16.840.1.101.3.4.2.15", "hmacWithSHA3-384"},
    {"2.16.840.1.101.3.4.2.16", "hmacWithSHA3-512"},
    {"1.2.840.113549.2.6", "hmacWithMD5"},
    {"1.2.840.113549.2.12", "hmacWithSHA512-224"},
    {"1.2.840.113549.2.13", "hmacWithSHA512-256"},
    {"1.2.156.10197.1.401", "SM3"},
    {"1.2.156.10197.1.401.3.1", "hmacWithSM3"},
};

const char *p12_oid_known_name(const SECItem *oid)
{
    g_autofree char *dotted = p12_oid_dotted(oid);
    for (gsize i = 0; i < G_N_ELEMENTS(known_oids); i++)
        if (strcmp(dotted, known_oids[i].dotted) == 0)
            return known_oids[i].name;
    return NULL;
}

gboolean p12_oid_is(const SECItem *oid, SECOidTag tag)
{
    if (oid == NULL || oid->data == NULL || oid->len == 0)
        return FALSE;
    return SECOID_FindOIDTag(oid) == tag;
}

char *p12_oid_dotted(const SECItem *oid)
{
    if (oid == NULL || oid->data == NULL || oid->len == 0)
        return g_strdup("(no OID)");
    char *s = CERT_GetOidString(oid);
    if (s == NULL)
        return g_strdup("(invalid OID)");
    char *out = g_strdup(g_str_has_prefix(s, "OID.") ? s + 4 : s);
    PR_smprintf_free(s);
    return out;
}

gboolean p12_oid_set(PLArenaPool *arena, SECItem *item, SECOidTag tag)
{
    SECOidData *data = SECOID_FindOIDByTag(tag);
    if (data == NULL)
        return FALSE;
    return SECITEM_CopyItem(arena, item, &data->oid) == SECSuccess;
}

/* ---- INTEGER ---- */

gboolean p12_uint_get(const SECItem *item, guint64 max, guint64 *out)
{
    if (item == NULL || item->data == NULL || item->len == 0)
        return FALSE;
    if (item->data[0] & 0x80)
        return FALSE; /* negative */
    guint64 v = 0;
    for (unsigned int i = 0; i < item->len; i++) {
        if (v > (G_MAXUINT64 >> 8))
            return FALSE;
        v = (v << 8) | item->data[i];
    }
    if (v > max)
        return FALSE;
    *out = v;
    return TRUE;
}

gboolean p12_uint_set(PLArenaPool *arena, SECItem *item, guint64 value)
{
    guint8 buf[9];
    int n = 0;

    /* Big-endian without leading zero bytes, plus one 00 when the top bit would read as a
     * sign: the DER of a non-negative INTEGER. */
    do {
        buf[8 - n] = (guint8)(value & 0xff);
        value >>= 8;
        n++;
    } while (value != 0);
    if (buf[9 - n] & 0x80) {
        buf[8 - n] = 0;
        n++;
    }
    SECItem src = {siUnsignedInteger, buf + 9 - n, (unsigned int)n};
    return SECITEM_CopyItem(arena, item, &src) == SECSuccess;
}

/* ---- BMPString ---- */

char *p12_bmp_to_utf8(const guint8 *data, gsize len)
{
    GString *s = g_string_sized_new(len / 2 + 1);
    gsize n = len / 2;

    for (gsize i = 0; i < n; i++) {
        gunichar c = ((gunichar)data[2 * i] << 8) | data[2 * i + 1];
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
            gunichar lo = ((gunichar)data[2 * i + 2] << 8) | data[2 * i + 3];
            if (lo >= 0xdc00 && lo <= 0xdfff) {
                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                i++;
            } else {
                c = 0xfffd;
            }
        } else if (c >= 0xd800 && c <= 0xdfff) {
            c = 0xfffd;
        }
        g_string_append_unichar(s, c);
    }
    while (s->len > 0 && s->str[s->len - 1] == '\0')
        g_string_truncate(s, s->len - 1);
    return g_string_free(s, FALSE);
}

GByteArray *p12_utf8_to_bmp(const char *text, gsize len, gboolean terminate)
{
    if (!g_utf8_validate_len(text, len, NULL))
        return NULL;
    GByteArray *out = g_byte_array_sized_new(len * 2 + 2);
    const char *p = text;
    const char *end = text + len;

    while (p < end) {
        gunichar c = g_utf8_get_char(p);
        p = g_utf8_next_char(p);
        if (c >= 0x10000) {
            gunichar v = c - 0x10000;
            guint16 hi = 0xd800 + (v >> 10), lo = 0xdc00 + (v & 0x3ff);
            guint8 b[4] = {hi >> 8, hi & 0xff, lo >> 8, lo & 0xff};
            g_byte_array_append(out, b, 4);
        } else {
            guint8 b[2] = {(c >> 8) & 0xff, c & 0xff};
            g_byte_array_append(out, b, 2);
        }
        c = 0;
    }
    if (terminate) {
        static const guint8 zero[2] = {0, 0};
        g_byte_array_append(out, zero, 2);
    }
    return out;
}

/* ---- DER helpers ---- */

static int compare_der(const void *a, const void *b)
{
    const SECItem *x = *(SECItem *const *)a;
    const SECItem *y = *(SECItem *const *)b;
    unsigned int n = MIN(x->len, y->len);
    int c = memcmp(x->data, y->data, n);
    if (c != 0)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

void p12_der_sort_set(SECItem **elements)
{
    gsize n = 0;
    if (elements == NULL)
        return;
    while (elements[n] != NULL)
        n++;
    qsort(elements, n, sizeof(SECItem *), compare_der);
}

gboolean p12_is_single_der(const SECItem *item)
{
    if (item == NULL || item->data == NULL || item->len == 0)
        return FALSE;
    PLArenaPool *arena = PORT_NewArena(1024);
    if (arena == NULL)
        return FALSE;
    SECItem copy = *item;
    SECItem out = {siBuffer, NULL, 0};
    SECStatus rv = SEC_QuickDERDecodeItem(arena, &out, SEC_AnyTemplate, &copy);
    PORT_FreeArena(arena, PR_FALSE);
    return rv == SECSuccess;
}

SECItem *p12_encode_octet_string(PLArenaPool *arena, const SECItem *data)
{
    SECItem copy = *data;
    copy.type = siBuffer;
    return SEC_ASN1EncodeItem(arena, NULL, &copy, SEC_OctetStringTemplate);
}

SECItem *p12_encode_content_info(PLArenaPool *arena, SECOidTag tag, const SECItem *content)
{
    P12ContentInfo ci;
    memset(&ci, 0, sizeof(ci));
    if (!p12_oid_set(arena, &ci.content_type, tag))
        return NULL;
    ci.content = *content;
    return SEC_ASN1EncodeItem(arena, NULL, &ci, p12_content_info_template);
}

SECItem *p12_encode_attribute(PLArenaPool *arena, const SECItem *type, const SECItem *value)
{
    P12Attribute attr;
    SECItem *values[2] = {(SECItem *)value, NULL};

    attr.type = *type;
    attr.values = values;
    return SEC_ASN1EncodeItem(arena, NULL, &attr, p12_attribute_template);
}
