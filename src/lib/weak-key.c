/* The weak-key rule (see weak-key.h). The figures come from NIST SP 800-131A / 800-57: RSA under
 * 2048 bits and DSA are no longer acceptable for signatures; small or even RSA exponents are
 * either broken outright (even) or the cause of known signature forgeries (e = 3 with lax
 * PKCS#1 v1.5 checks); only the NIST prime curves are accepted for EC. */
#include "config.h"

#include <caback/error.h>
#include <caback/nss-util.h>
#include <caback/weak-key.h>

#include <prprf.h>
#include <secoid.h>

const char *caback_weak_key_name(CabackWeakKey weak)
{
    switch (weak) {
    case CABACK_WEAK_KEY_NONE:
        return "none";
    case CABACK_WEAK_KEY_RSA_SIZE:
        return "rsa-size";
    case CABACK_WEAK_KEY_RSA_EXPONENT:
        return "rsa-exponent";
    case CABACK_WEAK_KEY_EC_CURVE:
        return "ec-curve";
    case CABACK_WEAK_KEY_DSA:
        return "dsa";
    case CABACK_WEAK_KEY_OTHER_TYPE:
        return "key-type";
    case CABACK_WEAK_KEY_UNREADABLE:
        return "unreadable";
    }
    return "unreadable";
}

static CabackWeakKey weak(char **reason, CabackWeakKey why, char *text)
{
    if (reason != NULL)
        *reason = text;
    else
        g_free(text);
    return why;
}

/* Number of significant bits of a big-endian unsigned integer (leading zero bytes allowed). */
static guint significant_bits(const SECItem *item)
{
    guint i = 0;

    while (i < item->len && item->data[i] == 0)
        i++;
    if (i == item->len)
        return 0;
    guint bits = (item->len - i) * 8;
    for (guint8 top = item->data[i]; (top & 0x80) == 0; top <<= 1)
        bits--;
    return bits;
}

/* The value of a big-endian unsigned integer of at most 64 significant bits. */
static guint64 small_value(const SECItem *item)
{
    guint64 value = 0;

    for (guint i = 0; i < item->len; i++)
        value = (value << 8) | item->data[i];
    return value;
}

static CabackWeakKey check_rsa(const SECKEYPublicKey *key, char **reason)
{
    const SECItem *e = &key->u.rsa.publicExponent;
    guint bits = significant_bits(&key->u.rsa.modulus);
    guint ebits = significant_bits(e);

    if (bits < CABACK_WEAK_KEY_MIN_RSA_BITS)
        return weak(reason, CABACK_WEAK_KEY_RSA_SIZE,
                    g_strdup_printf("RSA %u-bit key (under %u bits)", bits,
                                    (guint)CABACK_WEAK_KEY_MIN_RSA_BITS));
    gboolean even = ebits == 0 || (e->data[e->len - 1] & 1) == 0;
    /* 65537 has 17 significant bits: a longer exponent is larger. */
    gboolean small = ebits < 17 || (ebits == 17 && small_value(e) < 65537);
    if (!even && !small)
        return CABACK_WEAK_KEY_NONE;
    const char *why = even ? "even" : "under 65537";
    if (ebits <= 64)
        return weak(reason, CABACK_WEAK_KEY_RSA_EXPONENT,
                    g_strdup_printf("RSA public exponent %" G_GUINT64_FORMAT " (%s)",
                                    small_value(e), why));
    return weak(reason, CABACK_WEAK_KEY_RSA_EXPONENT,
                g_strdup_printf("RSA public exponent of %u bits (%s)", ebits, why));
}

static CabackWeakKey check_ec(const SECKEYPublicKey *key, char **reason)
{
    const SECItem *params = &key->u.ec.DEREncodedParams;

    /* Named curves only: explicit parameters (a SEQUENCE) could describe any curve at all. The
     * parameters are one OBJECT IDENTIFIER (short-form length; curve OIDs are short). */
    if (params->len < 3 || params->data[0] != SEC_ASN1_OBJECT_ID ||
        params->data[1] != params->len - 2)
        return weak(reason, CABACK_WEAK_KEY_EC_CURVE,
                    g_strdup("EC key with explicit or malformed curve parameters (not P-256, "
                             "P-384 or P-521)"));
    SECItem oid_der = {siBuffer, params->data + 2, params->len - 2};
    SECOidTag tag = SECOID_FindOIDTag(&oid_der);
    switch (tag) {
    case SEC_OID_ANSIX962_EC_PRIME256V1:
    case SEC_OID_SECG_EC_SECP384R1:
    case SEC_OID_SECG_EC_SECP521R1:
        return CABACK_WEAK_KEY_NONE;
    default:
        break;
    }
    const SECOidData *oid = tag != SEC_OID_UNKNOWN ? SECOID_FindOIDByTag(tag) : NULL;
    if (oid != NULL && oid->desc != NULL)
        return weak(reason, CABACK_WEAK_KEY_EC_CURVE,
                    g_strdup_printf("EC key on curve %s (not P-256, P-384 or P-521)", oid->desc));
    /* An OID NSS does not know: its dotted form (ASCII digits and dots only). */
    char *dotted = CERT_GetOidString(&oid_der);
    char *text = g_strdup_printf("EC key on unknown curve %s (not P-256, P-384 or P-521)",
                                 dotted != NULL ? dotted : "(malformed OID)");
    if (dotted != NULL)
        PR_smprintf_free(dotted);
    return weak(reason, CABACK_WEAK_KEY_EC_CURVE, text);
}

CabackWeakKey caback_weak_key_check(const SECKEYPublicKey *key, char **reason)
{
    if (reason != NULL)
        *reason = NULL;
    if (key == NULL)
        return weak(reason, CABACK_WEAK_KEY_UNREADABLE, g_strdup("no public key"));
    switch (key->keyType) {
    case rsaKey:
    case rsaPssKey:
    case rsaOaepKey:
        return check_rsa(key, reason);
    case ecKey:
        return check_ec(key, reason);
    case dsaKey:
        return weak(reason, CABACK_WEAK_KEY_DSA, g_strdup("DSA key"));
    default:
        break;
    }
    return weak(reason, CABACK_WEAK_KEY_OTHER_TYPE,
                g_strdup_printf("%s key (cannot sign certificates)",
                                key->keyType == dhKey ? "DH" : "unsupported"));
}

CabackWeakKey caback_weak_key_check_spki(const CERTSubjectPublicKeyInfo *spki, char **reason)
{
    if (reason != NULL)
        *reason = NULL;
    if (spki == NULL)
        return weak(reason, CABACK_WEAK_KEY_UNREADABLE, g_strdup("no public key"));
    g_autoptr(SECKEYPublicKey) key = SECKEY_ExtractPublicKey(spki);
    if (key == NULL) {
        g_autofree char *nss = caback_nss_error_describe(PORT_GetError());
        return weak(reason, CABACK_WEAK_KEY_UNREADABLE,
                    g_strdup_printf("public key cannot be decoded: %s", nss));
    }
    return caback_weak_key_check(key, reason);
}
