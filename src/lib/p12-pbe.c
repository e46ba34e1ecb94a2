/* Passwords, PBE key derivation with a per-file cache, and the PKCS#12 MAC, all computed by NSS.
 * See p12-pbe.h for the contracts and doc/design.md for the reasons. */
#include "config.h"

#include "p12-pbe.h"

#include <caback/error.h>
#include <caback/nss-util.h>
#include <caback/p12.h>
#include <caback/secret.h>

#include <pkcs11n.h>
#include <pkcs11.h>
#include <secmod.h>
#include <scrypt-kdf.h>
#include <secerr.h>
#include <secitem.h>
#include <secpkcs5.h>
#include <string.h>

SEC_ASN1_MKSUB(SECOID_AlgorithmIDTemplate)

static gint derivation_count;

void p12_count_derivation(void)
{
    g_atomic_int_inc(&derivation_count);
}

guint caback_p12_derivations(void)
{
    return (guint)g_atomic_int_get(&derivation_count);
}

/* ---- limits ---- */

/* Set once by the command line before any file is read; read by every reader. */
static guint64 limit_input_size = CABACK_P12_DEFAULT_MAX_INPUT_SIZE;
static guint64 limit_kdf_work = CABACK_P12_DEFAULT_MAX_KDF_WORK;

void caback_p12_limits_set(const CabackP12Limits *limits)
{
    limit_input_size =
        limits->max_input_size != 0 ? limits->max_input_size : CABACK_P12_DEFAULT_MAX_INPUT_SIZE;
    limit_kdf_work =
        limits->max_kdf_work != 0 ? limits->max_kdf_work : CABACK_P12_DEFAULT_MAX_KDF_WORK;
}

void caback_p12_limits_get(CabackP12Limits *limits)
{
    limits->max_input_size = limit_input_size;
    limits->max_kdf_work = limit_kdf_work;
}

guint64 p12_kdf_work_iterations(guint64 iterations)
{
    return iterations;
}

static guint64 mul_saturating(guint64 a, guint64 b)
{
    if (a != 0 && b > G_MAXUINT64 / a)
        return G_MAXUINT64;
    return a * b;
}

guint64 p12_kdf_work_scrypt(guint64 n, guint64 r, guint64 p)
{
    return mul_saturating(mul_saturating(mul_saturating(2, n), r), p);
}

/* ---- passwords ---- */

static SECItem *password_item(P12Passwords *pw, const guint8 *data, gsize len)
{
    /* Never a NULL data pointer, even for the empty password: some PKCS#11 paths refuse one. */
    SECItem *item = SECITEM_AllocItem(NULL, NULL, len > 0 ? (unsigned int)len : 1);
    if (len > 0)
        memcpy(item->data, data, len);
    else
        item->data[0] = 0;
    item->len = (unsigned int)len;
    g_ptr_array_add(pw->items, item);
    return item;
}

static void password_item_free(gpointer p)
{
    SECItem *item = p;
    /* The buffer is at least one byte (see password_item); wipe all of it. */
    if (item->data != NULL)
        caback_secret_wipe(item->data, MAX(item->len, 1));
    SECITEM_FreeItem(item, PR_TRUE);
}

static SECItem *widened_bmp(P12Passwords *pw, const guint8 *data, gsize len)
{
    /* OpenSSL 1.0.2 (OPENSSL_asc2uni) put each byte of the password in the low half of one
     * UTF-16 unit, whatever the encoding: reproduce that for files it wrote. */
    g_autofree guint8 *buf = g_malloc(len * 2 + 2);
    for (gsize i = 0; i < len; i++) {
        buf[2 * i] = 0;
        buf[2 * i + 1] = data[i];
    }
    buf[2 * len] = buf[2 * len + 1] = 0;
    SECItem *item = password_item(pw, buf, len * 2 + 2);
    caback_secret_wipe(buf, len * 2 + 2);
    return item;
}

P12Passwords *p12_passwords_new(const char *password, gsize len)
{
    P12Passwords *pw = g_new0(P12Passwords, 1);
    pw->items = g_ptr_array_new_with_free_func(password_item_free);
    const guint8 *bytes = (const guint8 *)password;
    static const guint8 bmp_empty[2] = {0, 0};

    if (password == NULL)
        len = 0;

    if (len == 0) {
        /* OpenSSL tries both the empty BMPString (00 00) and no bytes at all. */
        SECItem *empty = password_item(pw, NULL, 0);
        SECItem *bmp = password_item(pw, bmp_empty, 2);
        pw->variants[0] =
            (P12PasswordVariant){"empty password as BMPString (00 00)", bmp, {empty, bmp}};
        pw->variants[1] = (P12PasswordVariant){"NULL password (no bytes)", empty, {empty, NULL}};
        pw->n_variants = 2;
        return pw;
    }

    g_autoptr(GByteArray) bmp = p12_utf8_to_bmp(password, len, TRUE);
    if (bmp == NULL) {
        /* Not UTF-8 (a Latin-1 password file, say): the bytes as they are, widened for the
         * PKCS#12 KDF as OpenSSL does when it cannot convert. */
        SECItem *raw = password_item(pw, bytes, len);
        pw->variants[0] = (P12PasswordVariant){"password bytes widened to a BMPString "
                                               "(the password is not UTF-8)",
                                               widened_bmp(pw, bytes, len),
                                               {raw, NULL}};
        pw->n_variants = 1;
        return pw;
    }

    SECItem *utf8 = password_item(pw, bytes, len);
    SECItem *bmp_item = password_item(pw, bmp->data, bmp->len);
    caback_secret_wipe(bmp->data, bmp->len);
    /* NSS before 3.31 fed the BMPString to PBKDF2 too: the fallback for its PBES2 bags. */
    pw->variants[0] = (P12PasswordVariant){"BMPString (UTF-16BE)", bmp_item, {utf8, bmp_item}};
    pw->n_variants = 1;

    gboolean ascii = TRUE;
    for (gsize i = 0; i < len; i++)
        if (bytes[i] & 0x80)
            ascii = FALSE;
    if (!ascii) {
        pw->variants[1] = (P12PasswordVariant){"UTF-8 bytes widened to a BMPString (as "
                                               "OpenSSL 1.0.2 wrote non-ASCII passwords)",
                                               widened_bmp(pw, bytes, len),
                                               {utf8, NULL}};
        pw->n_variants = 2;
    }
    return pw;
}

void p12_passwords_free(P12Passwords *passwords)
{
    if (passwords == NULL)
        return;
    g_ptr_array_unref(passwords->items);
    g_free(passwords);
}

/* ---- algorithm names ---- */

static const struct {
    SECOidTag tag;
    const char *name;
} alg_names[] = {
    {SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_3KEY_TRIPLE_DES_CBC, "PBE-SHA1-3DES"},
    {SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_2KEY_TRIPLE_DES_CBC, "PBE-SHA1-2DES"},
    {SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_128_BIT_RC2_CBC, "PBE-SHA1-RC2-128"},
    {SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_40_BIT_RC2_CBC, "PBE-SHA1-RC2-40"},
    {SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_128_BIT_RC4, "PBE-SHA1-RC4-128"},
    {SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_40_BIT_RC4, "PBE-SHA1-RC4-40"},
    {SEC_OID_PKCS12_PBE_WITH_SHA1_AND_TRIPLE_DES_CBC, "PBE-SHA1-3DES (PKCS#12 draft OID)"},
    {SEC_OID_PKCS12_PBE_WITH_SHA1_AND_128_BIT_RC2_CBC, "PBE-SHA1-RC2-128 (PKCS#12 draft OID)"},
    {SEC_OID_PKCS12_PBE_WITH_SHA1_AND_40_BIT_RC2_CBC, "PBE-SHA1-RC2-40 (PKCS#12 draft OID)"},
    {SEC_OID_PKCS12_PBE_WITH_SHA1_AND_128_BIT_RC4, "PBE-SHA1-RC4-128 (PKCS#12 draft OID)"},
    {SEC_OID_PKCS12_PBE_WITH_SHA1_AND_40_BIT_RC4, "PBE-SHA1-RC4-40 (PKCS#12 draft OID)"},
    {SEC_OID_PKCS5_PBE_WITH_SHA1_AND_DES_CBC, "PBE-SHA1-DES (PKCS#5 v1)"},
    {SEC_OID_PKCS5_PBE_WITH_MD5_AND_DES_CBC, "PBE-MD5-DES (PKCS#5 v1)"},
    {SEC_OID_PKCS5_PBE_WITH_MD2_AND_DES_CBC, "PBE-MD2-DES (PKCS#5 v1)"},
    {SEC_OID_AES_128_CBC, "AES-128-CBC"},
    {SEC_OID_AES_192_CBC, "AES-192-CBC"},
    {SEC_OID_AES_256_CBC, "AES-256-CBC"},
    {SEC_OID_CAMELLIA_128_CBC, "Camellia-128-CBC"},
    {SEC_OID_CAMELLIA_192_CBC, "Camellia-192-CBC"},
    {SEC_OID_CAMELLIA_256_CBC, "Camellia-256-CBC"},
    {SEC_OID_DES_EDE3_CBC, "3DES-CBC"},
    {SEC_OID_DES_CBC, "DES-CBC"},
    {SEC_OID_RC2_CBC, "RC2-CBC"},
    {SEC_OID_RC4, "RC4"},
    {SEC_OID_HMAC_SHA1, "HMAC-SHA1"},
    {SEC_OID_HMAC_SHA224, "HMAC-SHA224"},
    {SEC_OID_HMAC_SHA256, "HMAC-SHA256"},
    {SEC_OID_HMAC_SHA384, "HMAC-SHA384"},
    {SEC_OID_HMAC_SHA512, "HMAC-SHA512"},
    {SEC_OID_SHA1, "SHA-1"},
    {SEC_OID_SHA224, "SHA-224"},
    {SEC_OID_SHA256, "SHA-256"},
    {SEC_OID_SHA384, "SHA-384"},
    {SEC_OID_SHA512, "SHA-512"},
    {SEC_OID_MD5, "MD5"},
    {SEC_OID_MD2, "MD2"},
};

const char *p12_alg_name(SECOidTag tag)
{
    for (gsize i = 0; i < G_N_ELEMENTS(alg_names); i++)
        if (alg_names[i].tag == tag)
            return alg_names[i].name;
    return NULL;
}

/* "AES-256-CBC" or, for what caback has no short name for, the algorithm's usual name (or NSS's
 * description) and the OID. */
static char *alg_label(const SECItem *oid)
{
    SECOidTag tag = SECOID_FindOIDTag(oid);
    const char *name = p12_alg_name(tag);
    g_autofree char *dotted = p12_oid_dotted(oid);
    if (name != NULL)
        return g_strdup(name);
    const char *known = p12_oid_known_name(oid);
    if (known != NULL)
        return g_strdup_printf("%s (OID %s)", known, dotted);
    SECOidData *data = SECOID_FindOID(oid);
    if (data != NULL && data->desc != NULL)
        return g_strdup_printf("%s (OID %s)", data->desc, dotted);
    return g_strdup_printf("OID %s", dotted);
}

/* The algorithm named and with its OID, for a refusal: "SEED-CBC (OID 1.2.410.200004.1.4)". */
static char *alg_label_oid(const SECItem *oid)
{
    g_autofree char *label = alg_label(oid);
    if (strstr(label, "OID ") != NULL)
        return g_steal_pointer(&label);
    g_autofree char *dotted = p12_oid_dotted(oid);
    return g_strdup_printf("%s (OID %s)", label, dotted);
}

/* The cipher a PKCS#12 / PKCS#5 v1 PBE OID implies, named as the user knows it. */
static const char *pkcs12_cipher_name(SECOidTag tag)
{
    switch (tag) {
    case SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_3KEY_TRIPLE_DES_CBC:
    case SEC_OID_PKCS12_PBE_WITH_SHA1_AND_TRIPLE_DES_CBC:
        return "3DES-CBC";
    case SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_2KEY_TRIPLE_DES_CBC:
        return "2-key 3DES-CBC";
    case SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_128_BIT_RC2_CBC:
    case SEC_OID_PKCS12_PBE_WITH_SHA1_AND_128_BIT_RC2_CBC:
        return "RC2-128-CBC";
    case SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_40_BIT_RC2_CBC:
    case SEC_OID_PKCS12_PBE_WITH_SHA1_AND_40_BIT_RC2_CBC:
        return "RC2-40-CBC";
    case SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_128_BIT_RC4:
    case SEC_OID_PKCS12_PBE_WITH_SHA1_AND_128_BIT_RC4:
        return "RC4-128";
    case SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_40_BIT_RC4:
    case SEC_OID_PKCS12_PBE_WITH_SHA1_AND_40_BIT_RC4:
        return "RC4-40";
    case SEC_OID_PKCS5_PBE_WITH_SHA1_AND_DES_CBC:
    case SEC_OID_PKCS5_PBE_WITH_MD5_AND_DES_CBC:
    case SEC_OID_PKCS5_PBE_WITH_MD2_AND_DES_CBC:
        return "DES-CBC";
    default:
        return NULL;
    }
}

static gboolean slot_does(CK_MECHANISM_TYPE mech)
{
    if (mech == CKM_INVALID_MECHANISM)
        return FALSE;
    g_autoptr(PK11SlotInfo) slot = PK11_GetInternalSlot();
    return slot != NULL && PK11_DoesMechanism(slot, mech);
}

static GBytes *make_cache_id(P12PbeKind kind, SECOidTag cipher, const SECItem *key_length,
                             const SECItem *oid, const SECItem *params)
{
    GByteArray *id = g_byte_array_new();
    guint8 head[5] = {(guint8)kind, (guint8)(cipher >> 24), (guint8)(cipher >> 16),
                      (guint8)(cipher >> 8), (guint8)cipher};
    guint8 sep[4];

    g_byte_array_append(id, head, sizeof(head));
    /* Length-prefixed fields, so that no two different parameter sets share an identity. */
    const SECItem *fields[3] = {key_length, oid, params};
    for (int i = 0; i < 3; i++) {
        guint32 n = fields[i] != NULL ? fields[i]->len : 0;
        sep[0] = n >> 24;
        sep[1] = n >> 16;
        sep[2] = n >> 8;
        sep[3] = n;
        g_byte_array_append(id, sep, 4);
        if (n > 0)
            g_byte_array_append(id, fields[i]->data, n);
    }
    return g_byte_array_free_to_bytes(id);
}

/* The decimal form of the non-negative big-endian integer @data (@len bytes), for messages. */
static char *decimal_of(const guint8 *data, guint len)
{
    g_autofree guint8 *n = g_memdup2(data, len);
    GString *digits = g_string_new(NULL);
    gboolean zero = FALSE;
    while (!zero) {
        guint rem = 0;
        zero = TRUE;
        for (guint i = 0; i < len; i++) {
            guint cur = (rem << 8) | n[i];
            n[i] = (guint8)(cur / 10);
            rem = cur % 10;
            if (n[i] != 0)
                zero = FALSE;
        }
        g_string_append_c(digits, (char)('0' + rem));
    }
    g_strreverse(digits->str);
    return g_string_free(digits, FALSE);
}

static gboolean check_iterations(const SECItem *item, const char *what, guint64 *out,
                                 GError **error)
{
    guint64 it = 0;
    if (item == NULL || item->data == NULL || item->len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "the %s iteration count is missing",
                    what);
        return FALSE;
    }
    if (item->data[0] & 0x80) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the %s iteration count is negative", what);
        return FALSE;
    }
    if (!p12_uint_get(item, G_MAXUINT64, &it)) {
        /* Above 2^64 - 1: still a count, and too large, not a malformed one. */
        guint skip = 0;
        while (skip < item->len && item->data[skip] == 0)
            skip++;
        guint len = item->len - skip;
        g_autofree char *number = len <= 64 ? decimal_of(item->data + skip, len)
                                            : g_strdup_printf("of %u bytes", len);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the %s iteration count %s is too large: above caback's limit of %u per "
                    "derivation (a guard against files made to keep caback busy)",
                    what, number, P12_MAX_ITERATIONS);
        return FALSE;
    }
    if (it == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "the %s iteration count is zero",
                    what);
        return FALSE;
    }
    if (it > P12_MAX_ITERATIONS) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the %s iteration count %" G_GUINT64_FORMAT " is too large: above caback's "
                    "limit of %u per derivation (a guard against files made to keep caback busy)",
                    what, it, P12_MAX_ITERATIONS);
        return FALSE;
    }
    *out = it;
    return TRUE;
}

/* The salt and iteration count of a PKCS#12 or PKCS#5 v1 PBE algorithm @name: well formed, the
 * count within the cap (into *@iterations), the salt of a plausible size. */
static gboolean check_pbe_params(const SECAlgorithmID *alg, const char *name,
                                 guint64 *iterations, GError **error)
{
    g_autoptr(PLArenaPool) arena = PORT_NewArena(512);
    P12PbeParams params;

    memset(&params, 0, sizeof(params));
    if (alg->parameters.len == 0 || SEC_ASN1DecodeItem(arena, &params, p12_pbe_params_template,
                                                       &alg->parameters) != SECSuccess) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "the parameters of %s are malformed",
                    name);
        return FALSE;
    }
    if (!check_iterations(&params.iterations, name, iterations, error))
        return FALSE;
    if (params.salt.len > 1024) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the salt of %s is implausibly long (%u bytes)", name, params.salt.len);
        return FALSE;
    }
    return TRUE;
}

static gboolean parse_pkcs12_pbe(const SECAlgorithmID *alg, SECOidTag tag, P12PbeInfo *info,
                                 GError **error)
{
    const char *name = p12_alg_name(tag);
    const char *cipher = pkcs12_cipher_name(tag);
    if (!check_pbe_params(alg, name, &info->iterations, error))
        return FALSE;
    CK_MECHANISM_TYPE pbe_mech = PK11_AlgtagToMechanism(tag);
    SECOidTag cipher_tag = SEC_PKCS5GetCryptoAlgorithm((SECAlgorithmID *)alg);
    if (!slot_does(pbe_mech) || !slot_does(PK11_AlgtagToMechanism(cipher_tag))) {
        g_autofree char *label = alg_label_oid(&alg->algorithm);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s (%s) is not supported by this NSS build; decrypt the file with a tool "
                    "that still has it (for example openssl pkcs12 -legacy) and export it again",
                    cipher != NULL ? cipher : name, label);
        return FALSE;
    }
    info->kind = P12_PBE_PKCS12;
    /* PKCS#5 v1 (PBKDF1) takes the password's bytes; the PKCS#12 KDF its BMPString. */
    info->raw_password = tag == SEC_OID_PKCS5_PBE_WITH_MD5_AND_DES_CBC ||
                         tag == SEC_OID_PKCS5_PBE_WITH_MD2_AND_DES_CBC;
    info->work = p12_kdf_work_iterations(info->iterations);
    info->alg_tag = tag;
    info->cipher_tag = cipher_tag;
    info->cache_id =
        make_cache_id(P12_PBE_PKCS12, cipher_tag, NULL, &alg->algorithm, &alg->parameters);
    info->description =
        g_strdup_printf("%s, %" G_GUINT64_FORMAT " iterations", name, info->iterations);
    return TRUE;
}

/* The PKCS#5 v1 algorithms (RFC 8018 6.1) caback splits itself, after NSS's PBKDF1:
 * DK = PBKDF1-SHA1(password, salt, c, 16), key = DK[0..7], IV = DK[8..15]. NSS 3.87 has a
 * mechanism for pbeWithSHA1AndDES-CBC but takes its IV from bytes 12 to 19 of the SHA-1 output,
 * and none for pbeWithSHA1AndRC2-CBC. NSS's PBKDF1 still does the work: the key of
 * CKM_NSS_PBE_SHA1_128_BIT_RC4 (the PKCS#12 draft's SHA-1 and RC4-128) is exactly the first 16
 * bytes of PBKDF1-SHA1. (The MD5 and MD2 RC2 variants stay out of reach: NSS computes PBKDF1 with
 * those digests only into DES keys, whose parity bits it overwrites.) */
static const struct {
    const char *dotted;
    const char *name;
    SECOidTag cipher;
} pbes1_algs[] = {
    {"1.2.840.113549.1.5.10", "PBE-SHA1-DES", SEC_OID_DES_CBC},
    {"1.2.840.113549.1.5.11", "PBE-SHA1-RC2-64", SEC_OID_RC2_CBC},
};

static gboolean parse_pbes1(const SECAlgorithmID *alg, guint which, P12PbeInfo *info,
                            GError **error)
{
    const char *name = pbes1_algs[which].name;
    if (!check_pbe_params(alg, name, &info->iterations, error))
        return FALSE;
    if (!slot_does(PK11_AlgtagToMechanism(pbes1_algs[which].cipher))) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s (OID %s) is not supported by this NSS build; decrypt the file with a "
                    "tool that still has it (for example openssl pkcs12 -legacy) and export it "
                    "again",
                    name, pbes1_algs[which].dotted);
        return FALSE;
    }
    info->kind = P12_PBE_PBES1;
    info->raw_password = TRUE; /* PBKDF1 takes the password's bytes */
    info->work = p12_kdf_work_iterations(info->iterations);
    info->alg_tag = SECOID_GetAlgorithmTag(alg);
    info->cipher_tag = pbes1_algs[which].cipher;
    info->cache_id = make_cache_id(P12_PBE_PBES1, info->cipher_tag, NULL, &alg->algorithm,
                                   &alg->parameters);
    info->description = g_strdup_printf("%s (PKCS#5 v1), %" G_GUINT64_FORMAT " iterations",
                                        name, info->iterations);
    return TRUE;
}

/* The index in pbes1_algs of @alg's algorithm, or -1. */
static int pbes1_index(const SECAlgorithmID *alg)
{
    g_autofree char *dotted = p12_oid_dotted(&alg->algorithm);
    for (guint i = 0; i < G_N_ELEMENTS(pbes1_algs); i++)
        if (strcmp(dotted, pbes1_algs[i].dotted) == 0)
            return (int)i;
    return -1;
}

static gboolean parse_pbkdf2(PLArenaPool *arena, const SECAlgorithmID *kdf, const char *what,
                             P12Pbkdf2Params *params, SECOidTag *prf_tag, guint64 *iterations,
                             GError **error)
{
    if (SECITEM_ItemsAreEqual(&kdf->algorithm, &p12_oid_scrypt)) {
        /* PBES2 handles scrypt before calling this; PBMAC1 is defined with PBKDF2 only. */
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s uses the scrypt key derivation function (OID 1.3.6.1.4.1.11591.4.11), "
                    "which RFC 9579 does not allow there (only PBKDF2)",
                    what);
        return FALSE;
    }
    if (!p12_oid_is(&kdf->algorithm, SEC_OID_PKCS5_PBKDF2)) {
        g_autofree char *label = alg_label_oid(&kdf->algorithm);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s uses the key derivation function %s, which caback does not support "
                    "(only PBKDF2)",
                    what, label);
        return FALSE;
    }
    memset(params, 0, sizeof(*params));
    if (kdf->parameters.len == 0 || SEC_ASN1DecodeItem(arena, params, p12_pbkdf2_params_template,
                                                       &kdf->parameters) != SECSuccess) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the PBKDF2 parameters of %s are malformed (or use a salt source other than "
                    "an OCTET STRING)",
                    what);
        return FALSE;
    }
    if (!check_iterations(&params->iterations, "PBKDF2", iterations, error))
        return FALSE;
    if (params->salt.len > 1024) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the PBKDF2 salt of %s is implausibly long (%u bytes)", what, params->salt.len);
        return FALSE;
    }
    guint64 key_length = 0;
    if (params->key_length.len > 0 &&
        (!p12_uint_get(&params->key_length, 128, &key_length) || key_length == 0)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the PBKDF2 key length of %s is invalid", what);
        return FALSE;
    }
    *prf_tag = SEC_OID_HMAC_SHA1; /* RFC 8018: DEFAULT algid-hmacWithSHA1 */
    if (params->prf != NULL)
        *prf_tag = SECOID_GetAlgorithmTag(params->prf);
    switch (*prf_tag) {
    case SEC_OID_HMAC_SHA1:
    case SEC_OID_HMAC_SHA224:
    case SEC_OID_HMAC_SHA256:
    case SEC_OID_HMAC_SHA384:
    case SEC_OID_HMAC_SHA512:
        return TRUE;
    default: {
        g_autofree char *label = alg_label_oid(&params->prf->algorithm);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s uses PBKDF2 with the pseudo-random function %s, which NSS does not "
                    "support (HMAC-SHA1, -SHA224, -SHA256, -SHA384 and -SHA512 are)",
                    what, label);
        return FALSE;
    }
    }
}

/* The key size of a PBES2 cipher in bytes (0 when it takes its size from elsewhere: RC2). */
static guint pbes2_cipher_key_length(SECOidTag cipher)
{
    switch (cipher) {
    case SEC_OID_AES_128_CBC:
    case SEC_OID_CAMELLIA_128_CBC:
    case SEC_OID_SEED_CBC:
        return 16;
    case SEC_OID_AES_192_CBC:
    case SEC_OID_CAMELLIA_192_CBC:
    case SEC_OID_DES_EDE3_CBC:
        return 24;
    case SEC_OID_AES_256_CBC:
    case SEC_OID_CAMELLIA_256_CBC:
        return 32;
    case SEC_OID_DES_CBC:
        return 8;
    default:
        return 0;
    }
}

/* scrypt's parameters (RFC 7914 section 7), checked against caback's bounds. */
static gboolean parse_scrypt(PLArenaPool *arena, const SECAlgorithmID *kdf, SECOidTag cipher,
                             const char *cipher_label, P12PbeInfo *info, GError **error)
{
    P12ScryptParams params;
    memset(&params, 0, sizeof(params));
    guint64 n = 0, r = 0, p = 0, key_length = 0;
    if (kdf->parameters.len == 0 ||
        SEC_ASN1DecodeItem(arena, &params, p12_scrypt_params_template, &kdf->parameters) !=
            SECSuccess ||
        !p12_uint_get(&params.cost, G_MAXUINT64, &n) ||
        !p12_uint_get(&params.block_size, G_MAXUINT32, &r) ||
        !p12_uint_get(&params.parallelization, G_MAXUINT32, &p) ||
        (params.key_length.len > 0 && !p12_uint_get(&params.key_length, 64, &key_length))) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the scrypt parameters of PBES2 are malformed (or out of range)");
        return FALSE;
    }
    if (n < 2 || (n & (n - 1)) != 0 || r == 0 || p == 0 || params.salt.len > 1024 ||
        (params.key_length.len > 0 && key_length == 0)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the scrypt parameters of PBES2 are invalid (N=%" G_GUINT64_FORMAT
                    ", r=%" G_GUINT64_FORMAT ", p=%" G_GUINT64_FORMAT "): N must be a power of "
                    "two above 1, r and p at least 1",
                    n, r, p);
        return FALSE;
    }
    /* Memory: V (128 r N bytes), B (128 r p) and the working blocks (256 r). Computed in a
     * way that cannot overflow: each factor is checked against the bound first. */
    guint64 max = P12_SCRYPT_MAX_MEMORY / 128;
    gboolean too_big = n > max || r > max / n || n + p + 2 > max / r;
    gboolean too_long = !too_big && (n > P12_SCRYPT_MAX_WORK || r * n > P12_SCRYPT_MAX_WORK ||
                                     p > P12_SCRYPT_MAX_WORK / (r * n));
    if (too_big || too_long) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the scrypt parameters of PBES2 (N=%" G_GUINT64_FORMAT ", r=%" G_GUINT64_FORMAT
                    ", p=%" G_GUINT64_FORMAT ") are above caback's limit of %s (a guard against "
                    "files made to exhaust memory or keep caback busy)",
                    n, r, p,
                    too_big ? "1 GiB of memory for one derivation"
                            : "16,777,216 block mixes (N x r x p) for one derivation");
        return FALSE;
    }
    guint cipher_len = pbes2_cipher_key_length(cipher);
    if (key_length == 0)
        key_length = cipher_len;
    if (key_length == 0 || (cipher_len != 0 && key_length != cipher_len)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the scrypt key length of PBES2 (%" G_GUINT64_FORMAT " bytes) does not fit "
                    "the cipher %s",
                    key_length, cipher_label);
        return FALSE;
    }
    info->scrypt = TRUE;
    info->scrypt_n = n;
    info->scrypt_r = (guint32)r;
    info->scrypt_p = (guint32)p;
    info->key_length = (guint)key_length;
    info->iterations = n;
    /* Counted against the file's total KDF work like any derivation (p12_kdf_charge). */
    info->work = p12_kdf_work_scrypt(n, r, p);
    return TRUE;
}

/* Whether PBES2's encryption scheme @scheme (@cipher, shown as @cipher_label) is one caback and
 * this NSS build can use, with the parameters (the IV) it needs. */
static gboolean check_pbes2_cipher(const SECAlgorithmID *scheme, SECOidTag cipher,
                                   const char *cipher_label, GError **error)
{
    switch (cipher) {
    case SEC_OID_AES_128_CBC:
    case SEC_OID_AES_192_CBC:
    case SEC_OID_AES_256_CBC:
    case SEC_OID_CAMELLIA_128_CBC:
    case SEC_OID_CAMELLIA_192_CBC:
    case SEC_OID_CAMELLIA_256_CBC:
    case SEC_OID_DES_EDE3_CBC:
    case SEC_OID_DES_CBC:
    case SEC_OID_RC2_CBC:
        break;
    default: {
        /* SEED included: NSS 3.87 has the cipher, but its PBES2 key derivation makes a SEED
         * key that does not decrypt what OpenSSL wrote. */
        g_autofree char *label = alg_label_oid(&scheme->algorithm);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "PBES2 with the cipher %s is not supported by caback (AES, Camellia, 3DES, "
                    "DES and RC2 in CBC mode are); decrypt the file with the tool that wrote it "
                    "and export it again with AES",
                    label);
        return FALSE;
    }
    }
    if (!slot_does(PK11_AlgtagToMechanism(cipher))) {
        g_autofree char *label = alg_label_oid(&scheme->algorithm);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s is not supported by this NSS build", label);
        return FALSE;
    }
    if (scheme->parameters.len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the PBES2 cipher %s has no parameters (no IV)", cipher_label);
        return FALSE;
    }
    return TRUE;
}

/* PBES2's key derivation @params->kdf (scrypt or PBKDF2, decoded into @kdf) into @info; its
 * name for the description (g_free) is returned, NULL on error. */
static char *parse_pbes2_kdf(PLArenaPool *arena, const P12Pbes2Params *params, SECOidTag cipher,
                             const char *cipher_label, P12Pbkdf2Params *kdf, P12PbeInfo *info,
                             GError **error)
{
    if (SECITEM_ItemsAreEqual(&params->kdf.algorithm, &p12_oid_scrypt)) {
        if (!parse_scrypt(arena, &params->kdf, cipher, cipher_label, info, error))
            return NULL;
        return g_strdup_printf("scrypt N=%" G_GUINT64_FORMAT " r=%u p=%u", info->scrypt_n,
                               info->scrypt_r, info->scrypt_p);
    }
    if (!parse_pbkdf2(arena, &params->kdf, "PBES2", kdf, &info->prf_tag, &info->iterations,
                      error))
        return NULL;
    if (!slot_does(CKM_PKCS5_PBKD2)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "PBKDF2 is not supported by this NSS build");
        return NULL;
    }
    info->work = p12_kdf_work_iterations(info->iterations);
    return g_strdup_printf("PBKDF2-%s", p12_alg_name(info->prf_tag));
}

static gboolean parse_pbes2(const SECAlgorithmID *alg, P12PbeInfo *info, GError **error)
{
    g_autoptr(PLArenaPool) arena = PORT_NewArena(1024);
    P12Pbes2Params params;
    P12Pbkdf2Params kdf;

    memset(&params, 0, sizeof(params));
    memset(&kdf, 0, sizeof(kdf));
    if (alg->parameters.len == 0 || SEC_ASN1DecodeItem(arena, &params, p12_pbes2_params_template,
                                                       &alg->parameters) != SECSuccess) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "the PBES2 parameters are malformed");
        return FALSE;
    }

    SECOidTag cipher = SECOID_GetAlgorithmTag(&params.scheme);
    g_autofree char *cipher_label = alg_label(&params.scheme.algorithm);
    if (!check_pbes2_cipher(&params.scheme, cipher, cipher_label, error))
        return FALSE;
    g_autofree char *kdf_label =
        parse_pbes2_kdf(arena, &params, cipher, cipher_label, &kdf, info, error);
    if (kdf_label == NULL)
        return FALSE;
    info->kind = P12_PBE_PBES2;
    info->raw_password = TRUE;
    info->alg_tag = SEC_OID_PKCS5_PBES2;
    info->cipher_tag = cipher;
    info->cache_id = make_cache_id(P12_PBE_PBES2, cipher, &kdf.key_length, &params.kdf.algorithm,
                                   &params.kdf.parameters);
    if (info->scrypt)
        info->description =
            g_strdup_printf("PBES2 (%s, %s)", kdf_label, cipher_label);
    else
        info->description = g_strdup_printf("PBES2 (%s, %s), %" G_GUINT64_FORMAT " iterations",
                                            kdf_label, cipher_label, info->iterations);
    return TRUE;
}

gboolean p12_pbe_info_parse(const SECAlgorithmID *alg, P12PbeInfo *info, GError **error)
{
    memset(info, 0, sizeof(*info));
    SECOidTag tag = SECOID_GetAlgorithmTag(alg);

    if (tag == SEC_OID_PKCS5_PBES2)
        return parse_pbes2(alg, info, error);
    int pbes1 = pbes1_index(alg);
    if (pbes1 >= 0)
        return parse_pbes1(alg, (guint)pbes1, info, error);
    if (pkcs12_cipher_name(tag) != NULL)
        return parse_pkcs12_pbe(alg, tag, info, error);

    g_autofree char *label = alg_label_oid(&alg->algorithm);
    g_autofree char *dotted = p12_oid_dotted(&alg->algorithm);
    if (strcmp(dotted, "1.2.840.113549.1.5.6") == 0 || strcmp(dotted, "1.2.840.113549.1.5.4") == 0)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s cannot be decrypted with NSS 3.87, which computes PBKDF1 with MD5 or MD2 "
                    "only into DES keys and overwrites their parity bits, which RC2 uses; "
                    "decrypt the file with the tool that wrote it (openssl pkcs12 -legacy) and "
                    "export it again",
                    label);
    else if (SECITEM_ItemsAreEqual(&alg->algorithm, &p12_oid_scrypt))
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "scrypt (OID 1.3.6.1.4.1.11591.4.11) is a key derivation function, not an "
                    "encryption scheme: it can only appear inside PBES2");
    else
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the encryption algorithm %s is not supported by caback (PBES2, the PKCS#12 "
                    "PBE algorithms and PKCS#5 v1 are)",
                    label);
    return FALSE;
}

void p12_pbe_info_clear(P12PbeInfo *info)
{
    if (info == NULL)
        return;
    g_clear_pointer(&info->cache_id, g_bytes_unref);
    g_clear_pointer(&info->description, g_free);
}

/* ---- derived-key cache ---- */

typedef struct {
    GBytes *id;
    guint8 *password; /* a copy of the password bytes, wiped on free */
    gsize password_len;
    gboolean done; /* FALSE while a thread is deriving it */
    PK11SymKey *key; /* NULL when the derivation failed: then error is NSS's code */
    int error;
    guint8 iv[16];   /* PKCS#12 PBE: the IV derived with the key */
    int iv_len;
    CK_MECHANISM_TYPE hmac_mech; /* MAC keys: the HMAC to use the key with */
} CacheEntry;

struct P12KeyCache {
    gint refs;
    GMutex lock;
    GCond done; /* signalled whenever an entry's derivation ends */
    GPtrArray *entries;
    /* The work account (p12_kdf_charge): the cap, what was charged, and which derivations, as
     * GBytes of (password length, password, id) wiped when freed. */
    guint64 kdf_cap;
    guint64 kdf_spent;
    GHashTable *charged;
};

static void cache_entry_free(gpointer p)
{
    CacheEntry *e = p;
    g_bytes_unref(e->id);
    if (e->key != NULL)
        PK11_FreeSymKey(e->key);
    if (e->password != NULL) {
        caback_secret_wipe(e->password, e->password_len);
        g_free(e->password);
    }
    caback_secret_wipe(e->iv, sizeof(e->iv));
    g_free(e);
}

P12KeyCache *p12_key_cache_new(void)
{
    P12KeyCache *cache = g_new0(P12KeyCache, 1);
    cache->refs = 1;
    g_mutex_init(&cache->lock);
    g_cond_init(&cache->done);
    cache->entries = g_ptr_array_new_with_free_func(cache_entry_free);
    cache->kdf_cap = limit_kdf_work;
    cache->charged = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
                                           (GDestroyNotify)g_bytes_unref, NULL);
    return cache;
}

P12KeyCache *p12_key_cache_ref(P12KeyCache *cache)
{
    g_atomic_int_inc(&cache->refs);
    return cache;
}

void p12_key_cache_free(P12KeyCache *cache)
{
    if (cache == NULL || !g_atomic_int_dec_and_test(&cache->refs))
        return;
    g_ptr_array_unref(cache->entries);
    g_hash_table_unref(cache->charged);
    g_cond_clear(&cache->done);
    g_mutex_clear(&cache->lock);
    g_free(cache);
}

static gboolean same_password(const SECItem *a, const SECItem *b)
{
    return a == b || (a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0));
}

static gboolean entry_has_password(const CacheEntry *e, const SECItem *password)
{
    return e->password_len == password->len &&
           (password->len == 0 || memcmp(e->password, password->data, password->len) == 0);
}

/* The entry for (@password, @id), finished or not; called with the lock held. */
static CacheEntry *cache_find_locked(P12KeyCache *cache, const SECItem *password, GBytes *id)
{
    for (guint i = 0; i < cache->entries->len; i++) {
        CacheEntry *e = cache->entries->pdata[i];
        if (g_bytes_equal(e->id, id) && entry_has_password(e, password))
            return e;
    }
    return NULL;
}

static void wiped_block_free(gpointer p)
{
    GByteArray *block = p;
    caback_secret_wipe(block->data, block->len);
    g_byte_array_unref(block);
}

/* What names a charged derivation: password length, password bytes, id (wiped when freed). */
static GBytes *charge_key(const SECItem *password, GBytes *id)
{
    gsize id_len = 0;
    const guint8 *id_data = g_bytes_get_data(id, &id_len);
    /* Sized once: growing the array would realloc, and the block it leaves behind (the length
     * and the password) would go back to the heap without being wiped. */
    GByteArray *block = g_byte_array_sized_new((guint)(4 + password->len + id_len));
    guint8 len[4] = {password->len >> 24, password->len >> 16, password->len >> 8,
                     password->len};
    g_byte_array_append(block, len, 4);
    if (password->len > 0)
        g_byte_array_append(block, password->data, password->len);
    if (id_len > 0)
        g_byte_array_append(block, id_data, id_len);
    return g_bytes_new_with_free_func(block->data, block->len, wiped_block_free, block);
}

gboolean p12_kdf_charge(P12KeyCache *cache, const P12KdfCharge *charges, guint n,
                        const char *what, GError **error)
{
    g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g_autoptr(GHashTable) seen = g_hash_table_new(g_bytes_hash, g_bytes_equal);
    guint64 extra = 0;
    guint fresh = 0;

    g_mutex_lock(&cache->lock);
    for (guint i = 0; i < n; i++) {
        GBytes *key = charge_key(charges[i].password, charges[i].id);
        if (g_hash_table_contains(cache->charged, key) || g_hash_table_contains(seen, key)) {
            g_bytes_unref(key);
            continue;
        }
        g_hash_table_add(seen, key);
        g_ptr_array_add(keys, key);
        extra = charges[i].work > G_MAXUINT64 - extra ? G_MAXUINT64 : extra + charges[i].work;
        fresh++;
    }
    guint64 total = extra > G_MAXUINT64 - cache->kdf_spent ? G_MAXUINT64 : cache->kdf_spent + extra;
    if (total > cache->kdf_cap) {
        guint64 spent = cache->kdf_spent, cap = cache->kdf_cap;
        g_mutex_unlock(&cache->lock);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "deriving %s would take %s%" G_GUINT64_FORMAT " key-derivation iterations "
                    "(%u more derivation%s after %" G_GUINT64_FORMAT " iterations already), "
                    "above caback's limit of %" G_GUINT64_FORMAT " for one file (a guard "
                    "against files made to keep caback busy); if you trust the file, allow it "
                    "with --max-kdf-work %" G_GUINT64_FORMAT,
                    what, total == G_MAXUINT64 ? "at least " : "", total, fresh,
                    fresh == 1 ? "" : "s", spent, cap, total);
        return FALSE;
    }
    cache->kdf_spent = total;
    for (guint i = 0; i < keys->len; i++)
        g_hash_table_add(cache->charged, g_bytes_ref(keys->pdata[i]));
    g_mutex_unlock(&cache->lock);
    return TRUE;
}

guint64 p12_kdf_spent(P12KeyCache *cache)
{
    g_mutex_lock(&cache->lock);
    guint64 spent = cache->kdf_spent;
    g_mutex_unlock(&cache->lock);
    return spent;
}

gboolean p12_key_cache_ready(P12KeyCache *cache, const SECItem *password, GBytes *id)
{
    g_mutex_lock(&cache->lock);
    CacheEntry *e = cache_find_locked(cache, password, id);
    gboolean ready = e != NULL && e->done;
    g_mutex_unlock(&cache->lock);
    return ready;
}

/* Fills e->key (and the IV, the HMAC mechanism) from the password, or e->error. */
typedef void (*DeriveFunc)(CacheEntry *e, const SECItem *password, gconstpointer a,
                           gconstpointer b);

/* The entry for (@password, @id): found (waiting for it when another thread is deriving it) or
 * derived here by @derive(@a, @b), outside the lock (that is the slow part). Never NULL; its key
 * is NULL when the derivation failed. */
static CacheEntry *cache_get(P12KeyCache *cache, const SECItem *password, GBytes *id,
                             DeriveFunc derive, gconstpointer a, gconstpointer b)
{
    g_mutex_lock(&cache->lock);
    CacheEntry *e = cache_find_locked(cache, password, id);
    if (e != NULL) {
        while (!e->done)
            g_cond_wait(&cache->done, &cache->lock);
        g_mutex_unlock(&cache->lock);
        return e;
    }
    e = g_new0(CacheEntry, 1);
    e->id = g_bytes_ref(id);
    e->password = password->len > 0 ? g_memdup2(password->data, password->len) : NULL;
    e->password_len = password->len;
    g_ptr_array_add(cache->entries, e);
    g_mutex_unlock(&cache->lock);

    derive(e, password, a, b);

    g_mutex_lock(&cache->lock);
    e->done = TRUE;
    g_cond_broadcast(&cache->done);
    g_mutex_unlock(&cache->lock);
    return e;
}

/* The PBES2 parameters of @alg decoded in @arena; FALSE when malformed (checked at parse time). */
static gboolean pbes2_params(PLArenaPool *arena, const SECAlgorithmID *alg, P12Pbes2Params *params)
{
    memset(params, 0, sizeof(*params));
    return SEC_ASN1DecodeItem(arena, params, p12_pbes2_params_template, &alg->parameters) ==
           SECSuccess;
}

/* PBES2 with scrypt: NSS has no scrypt, so libscrypt-kdf (the reference implementation, Debian
 * libscrypt-kdf1) derives the key bytes, which go into the token at once and are wiped. */
static PK11SymKey *scrypt_key(PK11SlotInfo *slot, const SECAlgorithmID *alg,
                              const P12PbeInfo *info, const SECItem *password)
{
    g_autoptr(PLArenaPool) arena = PORT_NewArena(512);
    P12Pbes2Params params;
    P12ScryptParams sp;
    memset(&sp, 0, sizeof(sp));
    if (arena == NULL || !pbes2_params(arena, alg, &params) ||
        SEC_ASN1DecodeItem(arena, &sp, p12_scrypt_params_template, &params.kdf.parameters) !=
            SECSuccess ||
        info->key_length == 0 || info->key_length > 64) {
        PORT_SetError(SEC_ERROR_BAD_DATA);
        return NULL;
    }
    guint8 buf[64];
    static const guint8 none[1] = {0};
    if (crypto_scrypt(password->len > 0 ? password->data : none, password->len,
                      sp.salt.len > 0 ? sp.salt.data : none, sp.salt.len, info->scrypt_n,
                      info->scrypt_r, info->scrypt_p, buf, info->key_length) != 0) {
        caback_secret_wipe(buf, sizeof(buf));
        PORT_SetError(SEC_ERROR_NO_MEMORY);
        return NULL;
    }
    SECItem raw = {siBuffer, buf, info->key_length};
    CK_MECHANISM_TYPE mech = PK11_AlgtagToMechanism(info->cipher_tag);
    PK11SymKey *key = PK11_ImportSymKeyWithFlags(slot, mech, PK11_OriginUnwrap, CKA_DECRYPT, &raw,
                                                 CKF_DECRYPT | CKF_UNWRAP, PR_FALSE, NULL);
    caback_secret_wipe(buf, sizeof(buf));
    return key;
}

/* A 2-key 3DES key (pbeWithSHAAnd2-KeyTripleDES-CBC) from the 3-key derivation @key3.
 * NSS 3.87 derives such a key into a 24-byte CKK_DES2 object, which softoken then refuses
 * (SEC_ERROR_INVALID_KEY; pk12util cannot read these files either). The PKCS#12 KDF's output
 * does not depend on the length asked for (RFC 7292 B.2), so the 3-key mechanism derives the same
 * first 16 bytes, K1 K2, and the same IV. The key is imported as the 3-key K1 K2 K1 that 2-key
 * 3DES means; DES ignores the parity bits NSS set. */
static PK11SymKey *two_key_des3(PK11SlotInfo *slot, PK11SymKey *key3)
{
    if (PK11_ExtractKeyValue(key3) != SECSuccess)
        return NULL;
    const SECItem *value = PK11_GetKeyData(key3);
    if (value == NULL || value->len != 24) {
        PORT_SetError(SEC_ERROR_BAD_KEY);
        return NULL;
    }
    guint8 buf[24];
    memcpy(buf, value->data, 16);
    memcpy(buf + 16, value->data, 8);
    SECItem raw = {siBuffer, buf, sizeof(buf)};
    PK11SymKey *key = PK11_ImportSymKeyWithFlags(slot, CKM_DES3_CBC, PK11_OriginUnwrap,
                                                 CKA_DECRYPT, &raw, CKF_DECRYPT | CKF_UNWRAP,
                                                 PR_FALSE, NULL);
    caback_secret_wipe(buf, sizeof(buf));
    return key;
}

/* DK = PBKDF1-SHA1(@password, @salt, @iterations, 16) into @dk, by softoken's
 * CKM_NSS_PBE_SHA1_128_BIT_RC4 key generation. Softoken implements that mechanism but leaves it
 * out of its mechanism list, so NSS's PK11 layer would look for another module: the key is made
 * through the internal module's own PKCS#11 functions, in a session of its own, read and
 * destroyed there. NSS's error code is set on failure. */
static gboolean pbkdf1_sha1(PK11SlotInfo *slot, const SECItem *salt, guint64 iterations,
                            const SECItem *password, guint8 dk[16])
{
    SECMODModule *module = PK11_GetModule(slot);
    CK_FUNCTION_LIST_PTR p11 = module != NULL ? (CK_FUNCTION_LIST_PTR)module->functionList : NULL;
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    CK_PBE_PARAMS pbe = {.pPassword = password->data,
                         .ulPasswordLen = password->len,
                         .pSalt = salt->data,
                         .ulSaltLen = salt->len,
                         .ulIteration = (CK_ULONG)iterations};
    CK_MECHANISM mech = {CKM_NSS_PBE_SHA1_128_BIT_RC4, &pbe, sizeof(pbe)};
    CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
    CK_ATTRIBUTE attrs[] = {{CKA_TOKEN, &no, sizeof(no)},
                            {CKA_SENSITIVE, &no, sizeof(no)},
                            {CKA_EXTRACTABLE, &yes, sizeof(yes)}};
    CK_ATTRIBUTE value = {CKA_VALUE, dk, 16};
    CK_RV rv = CKR_GENERAL_ERROR;

    if (p11 == NULL) {
        PORT_SetError(SEC_ERROR_NO_MODULE);
        return FALSE;
    }
    rv = p11->C_OpenSession(PK11_GetSlotID(slot), CKF_SERIAL_SESSION, NULL, NULL, &session);
    if (rv == CKR_OK)
        rv = p11->C_GenerateKey(session, &mech, attrs, G_N_ELEMENTS(attrs), &handle);
    if (rv == CKR_OK)
        rv = p11->C_GetAttributeValue(session, handle, &value, 1);
    if (rv == CKR_OK && value.ulValueLen != 16)
        rv = CKR_KEY_SIZE_RANGE;
    if (handle != CK_INVALID_HANDLE)
        p11->C_DestroyObject(session, handle);
    if (session != CK_INVALID_HANDLE)
        p11->C_CloseSession(session);
    if (rv != CKR_OK) {
        caback_secret_wipe(dk, 16);
        PORT_SetError(rv == CKR_MECHANISM_INVALID ? SEC_ERROR_INVALID_ALGORITHM
                                                  : SEC_ERROR_PKCS11_GENERAL_ERROR);
        return FALSE;
    }
    return TRUE;
}

/* The PBES1 key and IV of @alg into @e (see pbes1_algs): PBKDF1 by NSS, the split by caback. */
static void pbes1_key(CacheEntry *e, PK11SlotInfo *slot, const SECAlgorithmID *alg,
                      const P12PbeInfo *info, const SECItem *password)
{
    g_autoptr(PLArenaPool) arena = PORT_NewArena(512);
    P12PbeParams params;
    guint8 dk[16];

    memset(&params, 0, sizeof(params));
    if (arena == NULL || SEC_ASN1DecodeItem(arena, &params, p12_pbe_params_template,
                                            &alg->parameters) != SECSuccess)
        return;
    gboolean ok = pbkdf1_sha1(slot, &params.salt, info->iterations, password, dk);
    if (ok) {
        SECItem raw = {siBuffer, dk, 8};
        e->key = PK11_ImportSymKeyWithFlags(slot, PK11_AlgtagToMechanism(info->cipher_tag),
                                            PK11_OriginUnwrap, CKA_DECRYPT, &raw,
                                            CKF_DECRYPT | CKF_UNWRAP, PR_FALSE, NULL);
        memcpy(e->iv, dk + 8, 8);
        e->iv_len = 8;
    }
    caback_secret_wipe(dk, sizeof(dk));
}

/* A PBE key for the AlgorithmIdentifier @a described by the P12PbeInfo @b. */
static void derive_pbe(CacheEntry *e, const SECItem *password, gconstpointer a, gconstpointer b)
{
    const SECAlgorithmID *alg = a;
    const P12PbeInfo *info = b;
    g_autoptr(PK11SlotInfo) slot = PK11_GetInternalSlot();
    if (slot == NULL) {
        e->error = PORT_GetError();
        return;
    }

    p12_count_derivation();
    if (info->scrypt) {
        e->key = scrypt_key(slot, alg, info, password);
    } else if (info->kind == P12_PBE_PBES1) {
        pbes1_key(e, slot, alg, info, password);
    } else if (info->kind == P12_PBE_PBES2) {
        e->key = PK11_PBEKeyGen(slot, (SECAlgorithmID *)alg, (SECItem *)password, PR_FALSE, NULL);
    } else {
        /* PK11_RawPBEKeyGen fills the IV derived from the same password and salt into the
         * parameters, so key and IV come from one call (PK11_GetPBECryptoMechanism would derive
         * everything a second time just for the IV). */
        gboolean two_key =
            info->alg_tag == SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_2KEY_TRIPLE_DES_CBC;
        CK_MECHANISM_TYPE pbe_mech =
            two_key ? CKM_PBE_SHA1_DES3_EDE_CBC : PK11_AlgtagToMechanism(info->alg_tag);
        SECItem *param = PK11_ParamFromAlgid((SECAlgorithmID *)alg);
        if (param != NULL && param->len >= sizeof(CK_PBE_PARAMS)) {
            e->key = PK11_RawPBEKeyGen(slot, pbe_mech, param, (SECItem *)password, PR_FALSE, NULL);
            if (two_key && e->key != NULL) {
                PK11SymKey *key3 = e->key;
                e->key = two_key_des3(slot, key3);
                PK11_FreeSymKey(key3);
            }
            CK_PBE_PARAMS *pbe = (CK_PBE_PARAMS *)param->data;
            /* The cipher's IV size: NSS reports none for CKM_NSS_PBE_SHA1_DES_CBC itself,
             * though the parameters carry the 8 bytes PBKDF1 derived. */
            int iv_len = PK11_GetIVLength(PK11_AlgtagToMechanism(info->cipher_tag));
            if (e->key != NULL && iv_len > 0 && iv_len <= (int)sizeof(e->iv) &&
                pbe->pInitVector != NULL) {
                memcpy(e->iv, pbe->pInitVector, iv_len);
                e->iv_len = iv_len;
                caback_secret_wipe(pbe->pInitVector, iv_len);
            }
            /* The parameters point at the caller's password: forget that pointer. */
            pbe->pPassword = NULL;
            pbe->ulPasswordLen = 0;
        }
        if (param != NULL)
            SECITEM_ZfreeItem(param, PR_TRUE);
    }
    if (e->key == NULL)
        e->error = PORT_GetError();
}

/* The entry of a PBE key; NULL with NSS's error set when its derivation failed. */
static CacheEntry *pbe_entry(P12KeyCache *cache, const SECItem *password,
                             const SECAlgorithmID *alg, const P12PbeInfo *info)
{
    CacheEntry *e = cache_get(cache, password, info->cache_id, derive_pbe, alg, info);
    if (e->key == NULL) {
        PORT_SetError(e->error != 0 ? e->error : SEC_ERROR_LIBRARY_FAILURE);
        return NULL;
    }
    return e;
}

/* The padded mechanism and parameters of @cipher with the IV of @e; @rc2_key_len is RC2's
 * effective key size in bytes. */
static SECItem *cipher_param(SECOidTag cipher, int rc2_key_len, const CacheEntry *e,
                             CK_MECHANISM_TYPE *mech)
{
    CK_MECHANISM_TYPE m = PK11_AlgtagToMechanism(cipher);

    if (m == CKM_INVALID_MECHANISM) {
        PORT_SetError(SEC_ERROR_INVALID_ALGORITHM);
        return NULL;
    }
    *mech = PK11_GetPadMechanism(m);
    if (m == CKM_RC2_CBC) {
        /* RC2's parameter carries the effective key size (40 or 128 bits) besides the IV. */
        int key_len = rc2_key_len;
        if (key_len <= 0 || e->iv_len != 8) {
            PORT_SetError(SEC_ERROR_INVALID_ALGORITHM);
            return NULL;
        }
        SECItem *param = SECITEM_AllocItem(NULL, NULL, sizeof(CK_RC2_CBC_PARAMS));
        if (param == NULL)
            return NULL;
        CK_RC2_CBC_PARAMS *rc2 = (CK_RC2_CBC_PARAMS *)param->data;
        memset(rc2, 0, sizeof(*rc2));
        rc2->ulEffectiveBits = (CK_ULONG)key_len * 8;
        memcpy(rc2->iv, e->iv, 8);
        return param;
    }
    if (e->iv_len > 0) {
        SECItem iv = {siBuffer, (unsigned char *)e->iv, (unsigned int)e->iv_len};
        return PK11_ParamFromIV(m, &iv);
    }
    return PK11_ParamFromIV(m, NULL);
}

PK11SymKey *p12_pbe_key(P12KeyCache *cache, const SECItem *password, const SECAlgorithmID *alg,
                        const P12PbeInfo *info, CK_MECHANISM_TYPE *mech, SECItem **param,
                        GError **error)
{
    CacheEntry *e = pbe_entry(cache, password, alg, info);
    if (e == NULL) {
        int err = PORT_GetError();
        const char *cipher = info->kind == P12_PBE_PKCS12 ? pkcs12_cipher_name(info->alg_tag)
                                                          : p12_alg_name(info->cipher_tag);
        if (err == SEC_ERROR_INVALID_KEY || err == SEC_ERROR_INVALID_ALGORITHM ||
            err == SEC_ERROR_BAD_KEY)
            /* NSS lists the mechanism but cannot make such a key. */
            caback_error_set_nss_code(error, CABACK_ERROR_PKCS12, err,
                                      "%s (%s) is not supported by this NSS build",
                                      cipher != NULL ? cipher : "this cipher", info->description);
        else
            caback_error_set_nss_code(error, CABACK_ERROR_PKCS12, err,
                                      "NSS cannot derive the key for %s", info->description);
        return NULL;
    }
    *param = NULL;
    if (info->scrypt) {
        /* The cipher's own parameters (the IV; RC2's version too), as NSS reads them. */
        g_autoptr(PLArenaPool) arena = PORT_NewArena(512);
        P12Pbes2Params params;
        if (arena != NULL && pbes2_params(arena, alg, &params))
            *param = PK11_ParamFromAlgid(&params.scheme);
        if (*param == NULL) {
            caback_error_set_nss(error, CABACK_ERROR_PKCS12,
                                 "the cipher parameters of %s are malformed", info->description);
            return NULL;
        }
        *mech = PK11_GetPadMechanism(PK11_AlgtagToMechanism(info->cipher_tag));
    } else if (info->kind == P12_PBE_PBES2) {
        /* For PBES2 this only reads the IV from the parameters: no derivation. */
        CK_MECHANISM_TYPE m =
            PK11_GetPBECryptoMechanism((SECAlgorithmID *)alg, param, (SECItem *)password);
        if (m == CKM_INVALID_MECHANISM || *param == NULL) {
            if (*param != NULL)
                SECITEM_FreeItem(*param, PR_TRUE);
            *param = NULL;
            caback_error_set_nss(error, CABACK_ERROR_PKCS12,
                                 "the cipher parameters of %s are malformed", info->description);
            return NULL;
        }
        *mech = PK11_GetPadMechanism(m);
    } else {
        /* PKCS#12 PBE and PKCS#5 v1: the key and IV were derived together. PBES1's RC2 keys
         * are 64 bits (RFC 8018 6.1.2). */
        if (info->kind == P12_PBE_PBES1)
            *param = cipher_param(info->cipher_tag, 8, e, mech);
        else
            *param = cipher_param(SEC_PKCS5GetCryptoAlgorithm((SECAlgorithmID *)alg),
                                  SEC_PKCS5GetKeyLength((SECAlgorithmID *)alg), e, mech);
        if (*param == NULL) {
            caback_error_set_nss(error, CABACK_ERROR_PKCS12, "NSS cannot use the cipher of %s",
                                 info->description);
            return NULL;
        }
    }
    return PK11_ReferenceSymKey(e->key);
}

/* ---- parallel derivations ---- */

typedef struct {
    P12KeyCache *cache;
    GPtrArray *todo; /* of P12PbeRequest* */
    gint next;
} Prefetch;

static void prefetch_work(Prefetch *pf)
{
    for (;;) {
        gint i = g_atomic_int_add(&pf->next, 1);
        if (i >= (gint)pf->todo->len)
            return;
        const P12PbeRequest *r = pf->todo->pdata[i];
        (void)pbe_entry(pf->cache, r->password, r->alg, r->info);
    }
}

static gpointer prefetch_thread(gpointer data)
{
    prefetch_work(data);
    return NULL;
}

void p12_pbe_prefetch(P12KeyCache *cache, GArray *requests, void (*also)(gpointer data),
                      gpointer data)
{
    Prefetch pf = {cache, g_ptr_array_new(), 0};

    /* Keys already in the cache, or being derived by a background job, are not asked again. */
    g_mutex_lock(&cache->lock);
    for (guint i = 0; requests != NULL && i < requests->len; i++) {
        P12PbeRequest *r = &g_array_index(requests, P12PbeRequest, i);
        if (cache_find_locked(cache, r->password, r->info->cache_id) != NULL)
            continue;
        gboolean dup = FALSE;
        for (guint j = 0; j < pf.todo->len && !dup; j++) {
            const P12PbeRequest *o = pf.todo->pdata[j];
            dup = g_bytes_equal(o->info->cache_id, r->info->cache_id) &&
                  same_password(o->password, r->password);
        }
        if (!dup)
            g_ptr_array_add(pf.todo, r);
    }
    g_mutex_unlock(&cache->lock);

    /* Each derivation is one long, independent computation in the token: spread them over the
     * processors, the calling thread taking its share after @also. */
    guint cpus = g_get_num_processors();
    guint n = pf.todo->len;
    guint threads = 0;
    if (cpus > 1 && n > 0)
        threads = MIN(also != NULL ? n : n - 1, cpus - 1);

    g_autoptr(GPtrArray) running = g_ptr_array_new();
    for (guint i = 0; i < threads; i++) {
        GThread *t = g_thread_try_new("caback-kdf", prefetch_thread, &pf, NULL);
        if (t == NULL)
            break;
        g_ptr_array_add(running, t);
    }
    if (also != NULL)
        also(data);
    prefetch_work(&pf);
    for (guint i = 0; i < running->len; i++)
        g_thread_join(running->pdata[i]);
    g_ptr_array_unref(pf.todo);
}

/* ---- background derivations ---- */

/* A queue and up to one worker per processor, made with g_thread_try_new: when the system
 * refuses a thread (a low process or memory limit), the jobs go to the workers there are, or,
 * with none, run at once on the calling thread. Each job is owned by exactly one of those. (A
 * GThreadPool queues the job even when it reports that it could not start a thread: running it
 * inline then freed it twice, and with no thread at all the pool waited forever.) */
struct P12Jobs {
    GAsyncQueue *queue; /* of P12Job*; &jobs_stop ends one worker */
    GPtrArray *workers; /* GThread*, joined by p12_jobs_free */
    guint max_workers;  /* lowered to what the system gave once it refuses one */
    gint cancelled;
};

typedef struct {
    P12Jobs *jobs;
    P12KeyCache *cache; /* a reference */
    const SECItem *password;
    GBytes *id;
    DeriveFunc derive;
    gconstpointer a, b;
} P12Job;

static P12Job jobs_stop;

static void job_run(P12Job *job)
{
    /* A cancelled job leaves no entry behind: whoever needs the key later derives it. */
    if (!g_atomic_int_get(&job->jobs->cancelled))
        (void)cache_get(job->cache, job->password, job->id, job->derive, job->a, job->b);
    p12_key_cache_free(job->cache);
    g_bytes_unref(job->id);
    g_free(job);
}

static gpointer job_worker(gpointer data)
{
    P12Jobs *jobs = data;
    for (;;) {
        P12Job *job = g_async_queue_pop(jobs->queue);
        if (job == &jobs_stop)
            return NULL;
        job_run(job);
    }
}

P12Jobs *p12_jobs_new(void)
{
    P12Jobs *jobs = g_new0(P12Jobs, 1);
    jobs->queue = g_async_queue_new();
    jobs->workers = g_ptr_array_new();
    jobs->max_workers = MAX(1u, MIN(g_get_num_processors(), 8u));
    return jobs;
}

static void jobs_push(P12Jobs *jobs, P12KeyCache *cache, const SECItem *password, GBytes *id,
                      DeriveFunc derive, gconstpointer a, gconstpointer b)
{
    P12Job *job = g_new0(P12Job, 1);
    *job = (P12Job){jobs, p12_key_cache_ref(cache), password, g_bytes_ref(id), derive, a, b};
    /* A new worker unless one is idle (waiting on the queue: a negative length). */
    if (jobs->workers->len < jobs->max_workers && g_async_queue_length(jobs->queue) >= 0) {
        GThread *t = g_thread_try_new("caback-kdf", job_worker, jobs, NULL);
        if (t != NULL)
            g_ptr_array_add(jobs->workers, t);
        else
            jobs->max_workers = jobs->workers->len; /* not asked again */
    }
    /* Entries are claimed by the first thread that asks, so a job queued before its key is
     * wanted still saves the wait, and one queued too late costs nothing. Without any worker
     * the derivation is simply done now, in order. */
    if (jobs->workers->len == 0)
        job_run(job);
    else
        g_async_queue_push(jobs->queue, job);
}

void p12_jobs_add_pbe(P12Jobs *jobs, P12KeyCache *cache, const SECItem *password,
                      const SECAlgorithmID *alg, const P12PbeInfo *info)
{
    jobs_push(jobs, cache, password, info->cache_id, derive_pbe, alg, info);
}

void p12_jobs_free(P12Jobs *jobs, gboolean cancel)
{
    if (jobs == NULL)
        return;
    if (cancel)
        g_atomic_int_set(&jobs->cancelled, 1);
    /* The stops queue after every job, so each job is taken (and run, or dropped when
     * cancelled) before the last worker ends. */
    for (guint i = 0; i < jobs->workers->len; i++)
        g_async_queue_push(jobs->queue, &jobs_stop);
    for (guint i = 0; i < jobs->workers->len; i++)
        g_thread_join(jobs->workers->pdata[i]);
    g_ptr_array_unref(jobs->workers);
    g_async_queue_unref(jobs->queue);
    g_free(jobs);
}

/* ---- cipher ---- */

SECItem *p12_decrypt(PK11SymKey *key, CK_MECHANISM_TYPE mech, SECItem *param, const SECItem *in)
{
    if (in == NULL || in->len == 0 || in->len > G_MAXUINT - 64) {
        PORT_SetError(SEC_ERROR_BAD_DATA);
        return NULL;
    }
    SECItem *out = SECITEM_AllocItem(NULL, NULL, in->len + 64);
    if (out == NULL)
        return NULL;
    unsigned int out_len = 0;
    if (PK11_Decrypt(key, mech, param, out->data, &out_len, in->len + 64, in->data, in->len) !=
        SECSuccess) {
        int err = PORT_GetError();
        SECITEM_ZfreeItem(out, PR_TRUE);
        PORT_SetError(err);
        return NULL;
    }
    if (out_len > in->len + 64) {
        SECITEM_ZfreeItem(out, PR_TRUE);
        PORT_SetError(SEC_ERROR_BAD_DATA);
        return NULL;
    }
    out->len = out_len;
    return out;
}

SECItem *p12_encrypt(PLArenaPool *arena, PK11SymKey *key, CK_MECHANISM_TYPE mech, SECItem *param,
                     const SECItem *in)
{
    unsigned int max = in->len + 64;
    SECItem *out = SECITEM_AllocItem(arena, NULL, max);
    if (out == NULL)
        return NULL;
    unsigned int out_len = 0;
    if (PK11_Encrypt(key, mech, param, out->data, &out_len, max, in->data, in->len) != SECSuccess)
        return NULL;
    out->len = out_len;
    return out;
}

/* ---- MAC ---- */

static CK_MECHANISM_TYPE classic_mac_keygen(SECOidTag hash)
{
    switch (hash) {
    case SEC_OID_MD5:
        return CKM_NSS_PBE_MD5_HMAC_KEY_GEN;
    case SEC_OID_MD2:
        return CKM_NSS_PBE_MD2_HMAC_KEY_GEN;
    case SEC_OID_SHA1:
        return CKM_NSS_PBE_SHA1_HMAC_KEY_GEN;
    case SEC_OID_SHA224:
        return CKM_NSS_PKCS12_PBE_SHA224_HMAC_KEY_GEN;
    case SEC_OID_SHA256:
        return CKM_NSS_PKCS12_PBE_SHA256_HMAC_KEY_GEN;
    case SEC_OID_SHA384:
        return CKM_NSS_PKCS12_PBE_SHA384_HMAC_KEY_GEN;
    case SEC_OID_SHA512:
        return CKM_NSS_PKCS12_PBE_SHA512_HMAC_KEY_GEN;
    default:
        return CKM_INVALID_MECHANISM;
    }
}

static CK_MECHANISM_TYPE hmac_mech_for_hash(SECOidTag hash)
{
    switch (hash) {
    case SEC_OID_MD5:
        return CKM_MD5_HMAC;
    case SEC_OID_MD2:
        return CKM_MD2_HMAC;
    case SEC_OID_SHA1:
        return CKM_SHA_1_HMAC;
    case SEC_OID_SHA224:
        return CKM_SHA224_HMAC;
    case SEC_OID_SHA256:
        return CKM_SHA256_HMAC;
    case SEC_OID_SHA384:
        return CKM_SHA384_HMAC;
    case SEC_OID_SHA512:
        return CKM_SHA512_HMAC;
    default:
        return CKM_INVALID_MECHANISM;
    }
}

static SECOidTag hash_of_hmac(SECOidTag hmac)
{
    switch (hmac) {
    case SEC_OID_HMAC_SHA1:
        return SEC_OID_SHA1;
    case SEC_OID_HMAC_SHA224:
        return SEC_OID_SHA224;
    case SEC_OID_HMAC_SHA256:
        return SEC_OID_SHA256;
    case SEC_OID_HMAC_SHA384:
        return SEC_OID_SHA384;
    case SEC_OID_HMAC_SHA512:
        return SEC_OID_SHA512;
    default:
        return SEC_OID_UNKNOWN;
    }
}

static unsigned int hash_len(SECOidTag hash)
{
    switch (hash) {
    case SEC_OID_MD5:
    case SEC_OID_MD2:
        return 16;
    case SEC_OID_SHA1:
        return 20;
    case SEC_OID_SHA224:
        return 28;
    case SEC_OID_SHA256:
        return 32;
    case SEC_OID_SHA384:
        return 48;
    case SEC_OID_SHA512:
        return 64;
    default:
        return 0;
    }
}

static GBytes *mac_cache_id(const P12MacData *mac, const P12MacInfo *info);

/* The PBMAC1 parameters (RFC 9579) of @mac into @info: PBKDF2 with its keyLength, an HMAC. */
static gboolean parse_pbmac1(const P12MacData *mac, P12MacInfo *info, GError **error)
{
    g_autoptr(PLArenaPool) arena = PORT_NewArena(1024);
    P12Pbes2Params params;
    P12Pbkdf2Params kdf;
    memset(&params, 0, sizeof(params));
    if (mac->mac.algorithm.parameters.len == 0 ||
        SEC_ASN1DecodeItem(arena, &params, p12_pbes2_params_template,
                           &mac->mac.algorithm.parameters) != SECSuccess) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the PBMAC1 parameters of the MAC are malformed");
        return FALSE;
    }
    if (!parse_pbkdf2(arena, &params.kdf, "the PBMAC1 MAC", &kdf, &info->prf_tag,
                      &info->iterations, error))
        return FALSE;
    if (kdf.key_length.len == 0) {
        /* RFC 9579 requires keyLength: without it the key size is a guess, and NSS would
         * guess the largest HMAC key. Its test vector A.4 is such a file. */
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the PBMAC1 MAC has no PBKDF2 keyLength, which RFC 9579 requires");
        return FALSE;
    }
    SECOidTag scheme = SECOID_GetAlgorithmTag(&params.scheme);
    info->hash_tag = hash_of_hmac(scheme);
    if (info->hash_tag == SEC_OID_UNKNOWN) {
        g_autofree char *label = alg_label_oid(&params.scheme.algorithm);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the PBMAC1 MAC uses %s, which is not an HMAC caback supports", label);
        return FALSE;
    }
    info->pbmac1 = TRUE;
    info->description =
        g_strdup_printf("PBMAC1 (PBKDF2-%s, %s), %" G_GUINT64_FORMAT " iterations",
                        p12_alg_name(info->prf_tag), p12_alg_name(scheme), info->iterations);
    return TRUE;
}

/* The classic MAC (RFC 7292 appendix B KDF with the digest @tag, then HMAC) of @mac into @info. */
static gboolean parse_classic_mac(const P12MacData *mac, SECOidTag tag, P12MacInfo *info,
                                  GError **error)
{
    if (classic_mac_keygen(tag) == CKM_INVALID_MECHANISM ||
        !slot_does(classic_mac_keygen(tag)) || !slot_does(hmac_mech_for_hash(tag))) {
        g_autofree char *label = alg_label_oid(&mac->mac.algorithm.algorithm);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the MAC uses the digest %s, which caback does not support (MD5, SHA-1, "
                    "SHA-224, SHA-256, SHA-384, SHA-512 and PBMAC1 are)",
                    label);
        return FALSE;
    }
    info->hash_tag = tag;
    if (mac->iterations.len == 0)
        info->iterations = 1; /* DEFAULT 1 */
    else if (!check_iterations(&mac->iterations, "MAC", &info->iterations, error))
        return FALSE;
    /* An empty salt is valid (RFC 7292 makes it an OCTET STRING of any length; GnuTLS
     * writes one) and every reader accepts it. */
    if (mac->salt.len > 1024) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the MAC salt has an invalid length (%u bytes)", mac->salt.len);
        return FALSE;
    }
    g_autofree char *hmac = g_strdup(p12_alg_name(tag));
    /* "SHA-256" -> "HMAC-SHA256", the name users see in openssl -info. */
    g_autoptr(GString) name = g_string_new("HMAC-");
    for (const char *p = hmac; *p != '\0'; p++)
        if (*p != '-')
            g_string_append_c(name, *p);
    info->description =
        g_strdup_printf("%s, %" G_GUINT64_FORMAT " iterations", name->str, info->iterations);
    return TRUE;
}

gboolean p12_mac_info_parse(const P12MacData *mac, P12MacInfo *info, GError **error)
{
    memset(info, 0, sizeof(*info));
    SECOidTag tag = SECOID_GetAlgorithmTag(&mac->mac.algorithm);

    gboolean parsed = tag == SEC_OID_PKCS5_PBMAC1 ? parse_pbmac1(mac, info, error)
                                                  : parse_classic_mac(mac, tag, info, error);
    if (!parsed)
        return FALSE;
    if (mac->mac.digest.len != hash_len(info->hash_tag)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the MAC value has %u bytes where %s gives %u", mac->mac.digest.len,
                    info->description, hash_len(info->hash_tag));
        p12_mac_info_clear(info);
        return FALSE;
    }
    info->work = p12_kdf_work_iterations(info->iterations);
    info->cache_id = mac_cache_id(mac, info);
    return TRUE;
}

void p12_mac_info_clear(P12MacInfo *info)
{
    if (info == NULL)
        return;
    g_clear_pointer(&info->description, g_free);
    g_clear_pointer(&info->cache_id, g_bytes_unref);
}

PK11SymKey *p12_mac_key(const P12MacData *mac, const P12MacInfo *info, const SECItem *password,
                        CK_MECHANISM_TYPE *hmac_mech)
{
    g_autoptr(PK11SlotInfo) slot = PK11_GetInternalSlot();
    if (slot == NULL)
        return NULL;
    *hmac_mech = hmac_mech_for_hash(info->hash_tag);

    p12_count_derivation();
    if (info->pbmac1) {
        /* RFC 9579: PBKDF2 over the UTF-8 password gives the HMAC key. */
        return PK11_PBEKeyGen(slot, (SECAlgorithmID *)&mac->mac.algorithm, (SECItem *)password,
                              PR_FALSE, NULL);
    }
    /* RFC 7292 appendix B: the PKCS#12 KDF with ID 3, over the BMPString password; NSS's
     * CKM_NSS_PKCS12_PBE_SHA*_HMAC_KEY_GEN mechanisms are exactly that (see its p12local.c). */
    SECItem *params = PK11_CreatePBEParams((SECItem *)&mac->salt, (SECItem *)password,
                                           (unsigned int)info->iterations);
    if (params == NULL)
        return NULL;
    PK11SymKey *key = PK11_KeyGen(slot, classic_mac_keygen(info->hash_tag), params, 0, NULL);
    int err = PORT_GetError();
    PK11_DestroyPBEParams(params);
    if (key == NULL)
        PORT_SetError(err);
    return key;
}

/* What identifies a MAC key: the MAC algorithm with its parameters (PBMAC1 keeps its PBKDF2
 * parameters there), the MacData salt and the iteration count, length-prefixed. */
static GBytes *mac_cache_id(const P12MacData *mac, const P12MacInfo *info)
{
    GByteArray *id = g_byte_array_new();
    guint8 head[9] = {'M', (guint8)info->pbmac1};
    for (int i = 0; i < 7; i++)
        head[2 + i] = (guint8)(info->iterations >> (8 * (6 - i)));
    g_byte_array_append(id, head, sizeof(head));
    const SECItem *fields[3] = {&mac->mac.algorithm.algorithm, &mac->mac.algorithm.parameters,
                                &mac->salt};
    for (int i = 0; i < 3; i++) {
        guint32 n = fields[i]->len;
        guint8 len[4] = {n >> 24, n >> 16, n >> 8, n};
        g_byte_array_append(id, len, 4);
        if (n > 0)
            g_byte_array_append(id, fields[i]->data, n);
    }
    return g_byte_array_free_to_bytes(id);
}

static void derive_mac(CacheEntry *e, const SECItem *password, gconstpointer a, gconstpointer b)
{
    e->key = p12_mac_key(a, b, password, &e->hmac_mech);
    if (e->key == NULL)
        e->error = PORT_GetError();
}

PK11SymKey *p12_mac_key_cached(P12KeyCache *cache, const P12MacData *mac, const P12MacInfo *info,
                               const SECItem *password, CK_MECHANISM_TYPE *hmac_mech)
{
    g_autoptr(GBytes) id = mac_cache_id(mac, info);
    CacheEntry *e = cache_get(cache, password, id, derive_mac, mac, info);
    if (e->key == NULL) {
        PORT_SetError(e->error != 0 ? e->error : SEC_ERROR_LIBRARY_FAILURE);
        return NULL;
    }
    *hmac_mech = e->hmac_mech;
    return PK11_ReferenceSymKey(e->key);
}

void p12_jobs_add_mac(P12Jobs *jobs, P12KeyCache *cache, const SECItem *password,
                      const P12MacData *mac, const P12MacInfo *info)
{
    g_autoptr(GBytes) id = mac_cache_id(mac, info);
    jobs_push(jobs, cache, password, id, derive_mac, mac, info);
}

gboolean p12_hmac(PK11SymKey *key, CK_MECHANISM_TYPE hmac_mech, const SECItem *data, guint8 *out,
                  unsigned int *out_len)
{
    SECItem no_param = {siBuffer, NULL, 0};
    g_autoptr(PK11Context) ctx = PK11_CreateContextBySymKey(hmac_mech, CKA_SIGN, key, &no_param);
    if (ctx == NULL)
        return FALSE;
    if (PK11_DigestBegin(ctx) != SECSuccess ||
        PK11_DigestOp(ctx, data->data, data->len) != SECSuccess ||
        PK11_DigestFinal(ctx, out, out_len, 64) != SECSuccess)
        return FALSE;
    return TRUE;
}
