/* The PKCS#12 reader: decodes BER or DER through NSS templates, checks the MAC under every
 * password encoding writers have used, decrypts the encrypted safes, collects the bags and their
 * attributes, and imports or describes keys by unwrapping them inside NSS. Hostile input gives a
 * CABACK_ERROR_PKCS12 (or BAD_PASSWORD) error, never a crash: every decoder output is checked
 * before use. See doc/design.md. */
#include "config.h"

#include <caback/error.h>
#include <caback/names.h>
#include <caback/nss-util.h>
#include <caback/p12.h>

#include "p12-asn1.h"
#include "p12-pbe.h"

#include <errno.h>
#include <fcntl.h>
#include <nss.h>
#include <pkcs11n.h>
#include <secerr.h>
#include <secport.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Nested safeContentsBags deeper than this are refused (a guard against stack exhaustion). */
#define P12_MAX_DEPTH 8

SEC_ASN1_MKSUB(SEC_OctetStringTemplate)

typedef struct {
    CabackP12Key pub; /* first, so a CabackP12Key* is a KeyPriv* */
    P12PbeInfo *pbe; /* shrouded keys whose algorithm NSS can do (pbe_ok); NULL otherwise */
    gboolean pbe_ok;
    char *pbe_error; /* why the key's encryption cannot be used */
} KeyPriv;

struct CabackP12File {
    char *path;
    CabackSecret *password;
    P12Passwords *passwords;
    int variant;          /* the password variant the MAC (or a safe) proved; -1 unknown */
    int pbkdf2_hint;      /* which of the variant's PBKDF2 encodings opened a safe */
    gboolean mac_checked; /* the MAC matched: the password is known good */
    P12KeyCache *cache;
    gboolean keys_prefetched;
    GStringChunk *texts; /* the bags' protection and algorithm texts, each kept once: a file
                            of 100,000 bags has a handful of them */
    GPtrArray *certs;
    GPtrArray *keys;
    GPtrArray *crls;
    CabackP12Info info;
};

/* Decode @src into @dest (@size bytes) with @tmpl: by SEC_QuickDERDecodeItem, whose items point
 * into @src instead of copying it (a file of a few megabytes was otherwise copied once more at
 * each level of its nesting: PFX, authenticated safe, safe, bags), and, when that fails (BER:
 * indefinite lengths, constructed strings; or a malformed element), by SEC_ASN1DecodeItem, which
 * copies and has the last word. @src must outlive what is decoded from it. */
static SECStatus p12_decode(PLArenaPool *arena, void *dest, size_t size,
                            const SEC_ASN1Template *tmpl, const SECItem *src)
{
    if (SEC_QuickDERDecodeItem(arena, dest, tmpl, src) == SECSuccess)
        return SECSuccess;
    memset(dest, 0, size);
    return SEC_ASN1DecodeItem(arena, dest, tmpl, src);
}

/* ---- freeing ---- */

static void attrs_clear(CabackP12Attributes *a)
{
    g_clear_pointer(&a->friendly_name, g_free);
    g_clear_pointer(&a->friendly_name_clean, g_free);
    g_clear_pointer(&a->local_key_id, g_bytes_unref);
    g_clear_pointer(&a->trust_flags, g_free);
}

static void cert_free(gpointer p)
{
    CabackP12Cert *c = p;
    attrs_clear(&c->attrs);
    g_bytes_unref(c->der);
    g_free(c);
}

static void crl_free(gpointer p)
{
    CabackP12Crl *c = p;
    attrs_clear(&c->attrs);
    g_bytes_unref(c->der);
    g_free(c);
}

static void key_free(gpointer p)
{
    KeyPriv *k = p;
    if (k == NULL) /* dropped (caback_p12_file_drop_key) */
        return;
    attrs_clear(&k->pub.attrs);
    if (k->pub.encoded != NULL)
        g_bytes_unref(k->pub.encoded);
    if (k->pbe != NULL) {
        p12_pbe_info_clear(k->pbe);
        g_free(k->pbe);
    }
    g_free(k->pbe_error);
    g_free(k);
}

static void wipe_free(gpointer p, gsize len)
{
    caback_secret_wipe(p, len);
    g_free(p);
}

/* Bytes and their length in one allocation. */
typedef struct {
    gsize len;
    guint8 data[];
} WipeBlock;

static void wipe_block_free(gpointer p)
{
    WipeBlock *b = p;
    wipe_free(b, sizeof(WipeBlock) + b->len);
}

/* A GBytes whose memory is wiped when it is freed (plain key bags are key material). */
static GBytes *bytes_wiped(const guint8 *data, gsize len)
{
    WipeBlock *b = g_malloc(sizeof(WipeBlock) + len);
    b->len = len;
    memcpy(b->data, data, len);
    return g_bytes_new_with_free_func(b->data, len, wipe_block_free, b);
}

/* @text kept once in @f's texts (NULL stays NULL). */
static const char *file_text(CabackP12File *f, const char *text)
{
    return text != NULL ? g_string_chunk_insert_const(f->texts, text) : NULL;
}

/* The dotted form of @oid, kept once in @f's texts. */
static const char *file_oid_text(CabackP12File *f, const SECItem *oid)
{
    g_autofree char *dotted = p12_oid_dotted(oid);
    return file_text(f, dotted);
}

void caback_p12_file_free(CabackP12File *file)
{
    if (file == NULL)
        return;
    g_free(file->path);
    caback_secret_free(file->password);
    p12_passwords_free(file->passwords);
    p12_key_cache_free(file->cache);
    g_clear_pointer(&file->certs, g_ptr_array_unref);
    g_clear_pointer(&file->keys, g_ptr_array_unref);
    g_clear_pointer(&file->crls, g_ptr_array_unref);
    if (file->texts != NULL)
        g_string_chunk_free(file->texts);
    g_free(file->info.mac);
    g_clear_pointer(&file->info.safes, g_ptr_array_unref);
    g_clear_pointer(&file->info.warnings, g_ptr_array_unref);
    g_free(file);
}

GPtrArray *caback_p12_file_certs(CabackP12File *file)
{
    return file->certs;
}

void caback_p12_file_drop_key(CabackP12File *file, guint i)
{
    key_free(g_steal_pointer(&file->keys->pdata[i]));
}

GPtrArray *caback_p12_file_keys(CabackP12File *file)
{
    return file->keys;
}

GPtrArray *caback_p12_file_crls(CabackP12File *file)
{
    return file->crls;
}

const CabackP12Info *caback_p12_file_info(CabackP12File *file)
{
    return &file->info;
}

static void warn(CabackP12File *f, const char *format, ...) G_GNUC_PRINTF(2, 3);
static void warn(CabackP12File *f, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    g_ptr_array_add(f->info.warnings, g_strdup_vprintf(format, args));
    va_end(args);
}

/* ---- attributes ---- */

/* A directory string (BMPString, UTF8String, PrintableString or IA5String) as it is shown (see
 * caback_name_decode): the text itself, or, when it holds control characters, bidi overrides,
 * an embedded NUL or an invalid encoding, its escaped form, whole, so that a hostile name can
 * neither drive the terminal nor pass for another name. *@flaws and *@cleaned (may be NULL) as
 * caback_name_decode sets them. NULL when undecodable. */
static char *decode_string(CabackP12File *f, PLArenaPool *arena, const SECItem *value,
                           const char *what, guint *flaws, char **cleaned)
{
    if (value == NULL || value->data == NULL || value->len < 2)
        return NULL;
    SECItem s = {siBuffer, NULL, 0};
    char *text = NULL;
    guint found = 0;
    /* The tag picks the template; NSS decodes and checks the rest. */
    switch (value->data[0]) {
    case 0x1e: /* BMPString */
        if (SEC_ASN1DecodeItem(arena, &s, SEC_BMPStringTemplate, value) == SECSuccess)
            text = caback_name_decode(s.data, s.len, TRUE, &found, cleaned);
        break;
    case 0x0c: /* UTF8String */
    case 0x13: /* PrintableString */
    case 0x16: /* IA5String */ {
        const SEC_ASN1Template *t = value->data[0] == 0x0c   ? SEC_UTF8StringTemplate
                                    : value->data[0] == 0x13 ? SEC_PrintableStringTemplate
                                                             : SEC_IA5StringTemplate;
        if (SEC_ASN1DecodeItem(arena, &s, t, value) == SECSuccess)
            text = caback_name_decode(s.data, s.len, FALSE, &found, cleaned);
        break;
    }
    default:
        break;
    }
    if (text == NULL) {
        warn(f, "a %s attribute could not be decoded and was ignored", what);
        return NULL;
    }
    if (found != 0) {
        g_autofree char *flaws_text = caback_name_flaws_text(found);
        warn(f, "the %s \"%s\" holds %s: it is shown escaped, and never used as an NSS nickname "
                "as it is",
             what, text, flaws_text);
    }
    if (flaws != NULL)
        *flaws = found;
    return text;
}

static gboolean trust_flags_valid(const char *s)
{
    int commas = 0;
    if (strlen(s) > 64)
        return FALSE;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == ',')
            commas++;
        else if (!g_ascii_isalpha(*p))
            return FALSE;
    }
    return commas == 2;
}

static void parse_attributes(CabackP12File *f, PLArenaPool *arena, P12Attribute **attrs,
                             CabackP12Attributes *out)
{
    for (int i = 0; attrs != NULL && attrs[i] != NULL; i++) {
        P12Attribute *a = attrs[i];
        SECItem *value = a->values != NULL ? a->values[0] : NULL;
        if (value == NULL)
            continue;
        if (p12_oid_is(&a->type, SEC_OID_PKCS9_FRIENDLY_NAME)) {
            if (out->friendly_name == NULL)
                out->friendly_name =
                    decode_string(f, arena, value, "friendlyName", &out->friendly_name_flaws,
                                  &out->friendly_name_clean);
        } else if (p12_oid_is(&a->type, SEC_OID_PKCS9_LOCAL_KEY_ID)) {
            SECItem id = {siBuffer, NULL, 0};
            if (out->local_key_id == NULL &&
                SEC_ASN1DecodeItem(arena, &id, SEC_OctetStringTemplate, value) == SECSuccess)
                out->local_key_id = g_bytes_new(id.data, id.len);
            else if (out->local_key_id == NULL)
                warn(f, "a localKeyID attribute is not an OCTET STRING and was ignored");
        } else if (SECITEM_ItemsAreEqual(&a->type, &p12_oid_trust_flags)) {
            char *trust = decode_string(f, arena, value, "trust flags", NULL, NULL);
            if (trust != NULL && trust_flags_valid(trust) && out->trust_flags == NULL) {
                out->trust_flags = trust;
            } else {
                if (trust != NULL)
                    warn(f,
                         "the trust flags attribute \"%s\" is not an NSS trust string and "
                         "was ignored",
                         trust);
                g_free(trust);
            }
        }
    }
}

/* ---- bags ---- */

static gboolean parse_safe_contents(CabackP12File *f, PLArenaPool *arena, const SECItem *der,
                                    const char *protection, int depth, GError **error);

/* Whether the value of a shrouded key bag that is not an EncryptedPrivateKeyInfo is a
 * PrivateKeyInfo instead (it begins with the version INTEGER, not an AlgorithmIdentifier). */
static gboolean holds_plain_key(PLArenaPool *arena, const SECItem *value)
{
    P12PrivateKeyInfo pki;

    memset(&pki, 0, sizeof(pki));
    return SEC_ASN1DecodeItem(arena, &pki, p12_pki_template, value) == SECSuccess &&
           pki.algorithm.algorithm.len > 0 && pki.private_key.len > 0;
}

static gboolean add_key_bag(CabackP12File *f, PLArenaPool *arena, P12SafeBag *bag,
                            gboolean shrouded, const char *protection, GError **error)
{
    guint n = f->keys->len;
    const char *oid = NULL;
    P12PbeInfo pbe;
    gboolean pbe_ok = FALSE;
    g_autofree char *pbe_error = NULL;

    memset(&pbe, 0, sizeof(pbe));
    P12EncryptedPrivateKeyInfo epki;
    memset(&epki, 0, sizeof(epki));
    if (shrouded && (SEC_ASN1DecodeItem(arena, &epki, p12_epki_template, &bag->value) !=
                         SECSuccess ||
                     epki.encrypted.len == 0)) {
        if (!holds_plain_key(arena, &bag->value)) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                        "shrouded key bag %u is malformed", n + 1);
            return FALSE;
        }
        /* GnuTLS's certtool --pkcs-cipher none writes its keys this way, and reads them back. */
        warn(f, "shrouded key bag %u holds an unencrypted PKCS#8 key; it is read as a plain "
                "key bag", n + 1);
        shrouded = FALSE;
    }
    if (shrouded) {
        GError *pbe_err = NULL;
        pbe_ok = p12_pbe_info_parse(&epki.algorithm, &pbe, &pbe_err);
        if (!pbe_ok) {
            /* Keep the bag (list shows it); using the key reports this. */
            pbe_error = g_strdup(pbe_err->message);
            warn(f, "key bag %u cannot be decrypted: %s", n + 1, pbe_err->message);
            g_error_free(pbe_err);
        }
    } else {
        P12PrivateKeyInfo pki;
        memset(&pki, 0, sizeof(pki));
        if (SEC_ASN1DecodeItem(arena, &pki, p12_pki_template, &bag->value) != SECSuccess ||
            pki.algorithm.algorithm.len == 0 || pki.private_key.len == 0) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                        "key bag %u is not a valid PKCS#8 PrivateKeyInfo", n + 1);
            return FALSE;
        }
        oid = file_oid_text(f, &pki.algorithm.algorithm);
    }

    KeyPriv *k = g_new0(KeyPriv, 1);
    parse_attributes(f, arena, bag->attributes, &k->pub.attrs);
    k->pub.shrouded = shrouded;
    k->pub.index = n;
    k->pub.algorithm_oid = oid;
    k->pub.encoded = shrouded ? g_bytes_new(bag->value.data, bag->value.len)
                              : bytes_wiped(bag->value.data, bag->value.len);
    if (shrouded)
        k->pub.protection = file_text(f, pbe_ok ? pbe.description : "unsupported encryption");
    else
        k->pub.protection = file_text(f, protection);
    if (pbe_ok)
        k->pbe = g_memdup2(&pbe, sizeof pbe);
    else
        p12_pbe_info_clear(&pbe);
    k->pbe_ok = pbe_ok;
    k->pbe_error = g_steal_pointer(&pbe_error);
    g_ptr_array_add(f->keys, k);
    return TRUE;
}

static gboolean add_cert_bag(CabackP12File *f, PLArenaPool *arena, P12SafeBag *bag, gboolean crl,
                             const char *protection, GError **error)
{
    const char *what = crl ? "CRL" : "certificate";
    P12TypedValue tv;
    memset(&tv, 0, sizeof(tv));
    if (p12_decode(arena, &tv, sizeof(tv), p12_typed_value_template, &bag->value) != SECSuccess) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "a %s bag is malformed", what);
        return FALSE;
    }
    SECOidTag want = crl ? SEC_OID_PKCS9_X509_CRL : SEC_OID_PKCS9_X509_CERT;
    if (!p12_oid_is(&tv.type_id, want)) {
        g_autofree char *dotted = p12_oid_dotted(&tv.type_id);
        warn(f, "a %s bag of type %s (not X.509) was ignored", what, dotted);
        return TRUE;
    }
    SECItem der = {siBuffer, NULL, 0};
    if (p12_decode(arena, &der, sizeof(der), SEC_OctetStringTemplate, &tv.value) != SECSuccess ||
        !p12_is_single_der(&der)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "a %s bag does not hold one DER-encoded X.509 %s", what, what);
        return FALSE;
    }
    if (crl) {
        CabackP12Crl *c = g_new0(CabackP12Crl, 1);
        parse_attributes(f, arena, bag->attributes, &c->attrs);
        c->der = g_bytes_new(der.data, der.len);
        g_ptr_array_add(f->crls, c);
    } else {
        CabackP12Cert *c = g_new0(CabackP12Cert, 1);
        parse_attributes(f, arena, bag->attributes, &c->attrs);
        c->der = g_bytes_new(der.data, der.len);
        c->protection = file_text(f, protection);
        g_ptr_array_add(f->certs, c);
    }
    return TRUE;
}

static gboolean parse_bag(CabackP12File *f, PLArenaPool *arena, P12SafeBag *bag,
                          const char *protection, int depth, GError **error)
{
    if (bag->bag_id.len == 0 || bag->value.len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "a safe bag is empty");
        return FALSE;
    }
    switch (SECOID_FindOIDTag(&bag->bag_id)) {
    case SEC_OID_PKCS12_V1_KEY_BAG_ID:
        return add_key_bag(f, arena, bag, FALSE, protection, error);
    case SEC_OID_PKCS12_V1_PKCS8_SHROUDED_KEY_BAG_ID:
        return add_key_bag(f, arena, bag, TRUE, protection, error);
    case SEC_OID_PKCS12_V1_CERT_BAG_ID:
        return add_cert_bag(f, arena, bag, FALSE, protection, error);
    case SEC_OID_PKCS12_V1_CRL_BAG_ID:
        return add_cert_bag(f, arena, bag, TRUE, protection, error);
    case SEC_OID_PKCS12_V1_SECRET_BAG_ID:
        warn(f, "a secret bag was ignored (caback restores keys and certificates only)");
        return TRUE;
    case SEC_OID_PKCS12_V1_SAFE_CONTENTS_BAG_ID:
        if (depth >= P12_MAX_DEPTH) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                        "safe contents bags are nested more than %d deep", P12_MAX_DEPTH);
            return FALSE;
        }
        return parse_safe_contents(f, arena, &bag->value, protection, depth + 1, error);
    default: {
        g_autofree char *dotted = p12_oid_dotted(&bag->bag_id);
        warn(f, "a bag of unknown type %s was ignored", dotted);
        return TRUE;
    }
    }
}

static gboolean decode_safe_contents(PLArenaPool *arena, const SECItem *der, P12SafeBag ***bags)
{
    *bags = NULL;
    if (der == NULL || der->len == 0)
        return FALSE;
    return p12_decode(arena, bags, sizeof(*bags), p12_safe_contents_template, der) == SECSuccess;
}

static gboolean parse_safe_contents(CabackP12File *f, PLArenaPool *arena, const SECItem *der,
                                    const char *protection, int depth, GError **error)
{
    P12SafeBag **bags = NULL;
    if (!decode_safe_contents(arena, der, &bags)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "a SafeContents is malformed");
        return FALSE;
    }
    for (int i = 0; bags != NULL && bags[i] != NULL; i++)
        if (!parse_bag(f, arena, bags[i], protection, depth, error))
            return FALSE;
    return TRUE;
}

/* ---- safes ---- */

typedef struct {
    P12ContentInfo *ci;
    gboolean encrypted;
    P12EncryptedData ed;
    P12PbeInfo pbe;
    SECItem plain; /* the SafeContents DER */
} Safe;

/* The password encodings to try, in order, for the PBE @pbe: the proven variant first. */
static GPtrArray *candidates(CabackP12File *f, const P12PbeInfo *pbe)
{
    GPtrArray *out = g_ptr_array_new();
    for (int pass = 0; pass < 2; pass++) {
        for (guint v = 0; v < f->passwords->n_variants; v++) {
            gboolean proven = (int)v == f->variant;
            if ((pass == 0) != proven || (f->mac_checked && !proven))
                continue;
            P12PasswordVariant *pv = &f->passwords->variants[v];
            if (!pbe->raw_password) {
                g_ptr_array_add(out, pv->bmp);
                continue;
            }
            for (int i = 0; i < 2; i++) {
                int j = proven && f->pbkdf2_hint == 1 ? 1 - i : i;
                if (pv->pbkdf2[j] != NULL)
                    g_ptr_array_add(out, pv->pbkdf2[j]);
            }
        }
    }
    /* Remove repeated byte strings (the empty password appears in two variants). */
    for (guint i = 0; i < out->len; i++)
        for (guint j = i + 1; j < out->len;) {
            SECItem *a = out->pdata[i], *b = out->pdata[j];
            if (a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0))
                g_ptr_array_remove_index(out, j);
            else
                j++;
        }
    return out;
}

/* Remember which variant a successful decryption used, when no MAC told us. */
static void learn_variant(CabackP12File *f, const SECItem *pw)
{
    for (guint v = 0; v < f->passwords->n_variants; v++) {
        P12PasswordVariant *pv = &f->passwords->variants[v];
        for (int i = 0; i < 2; i++)
            if (pv->pbkdf2[i] == pw) {
                if (f->variant < 0)
                    f->variant = v;
                /* Written only when it changes: once known, threads importing keys side by
                 * side only read it. */
                if ((int)v == f->variant && f->pbkdf2_hint != i)
                    f->pbkdf2_hint = i;
                return;
            }
        if (pv->bmp == pw) {
            if (f->variant < 0)
                f->variant = v;
            return;
        }
    }
}

/* p12_pbe_key, after charging the derivation to the file's work budget (@what names the object
 * in the refusal). */
static PK11SymKey *charged_pbe_key(CabackP12File *f, const SECItem *pw, const SECAlgorithmID *alg,
                                   const P12PbeInfo *info, const char *what,
                                   CK_MECHANISM_TYPE *mech, SECItem **param, GError **error)
{
    P12KdfCharge charge = {pw, info->cache_id, info->work};
    if (!p12_kdf_charge(f->cache, &charge, 1, what, error))
        return NULL;
    return p12_pbe_key(f->cache, pw, alg, info, mech, param, error);
}

static gboolean decrypt_safe(CabackP12File *f, PLArenaPool *arena, Safe *s, guint index,
                             GError **error)
{
    g_autoptr(GPtrArray) pws = candidates(f, &s->pbe);
    for (guint i = 0; i < pws->len; i++) {
        const SECItem *pw = pws->pdata[i];
        CK_MECHANISM_TYPE mech;
        g_autoptr(SECItem) param = NULL;
        g_autofree char *what = g_strdup_printf("the key of safe %u", index + 1);
        g_autoptr(PK11SymKey) key = charged_pbe_key(f, pw, &s->ed.info.algorithm, &s->pbe, what,
                                                    &mech, &param, error);
        if (key == NULL) {
            g_prefix_error(error, "safe %u: ", index + 1);
            return FALSE;
        }
        SECItem *plain = p12_decrypt(key, mech, param, &s->ed.info.encrypted);
        if (plain == NULL)
            continue; /* a wrong key shows as bad padding */
        /* Keep the plaintext in the arena (freed with zeroing) and check that it decodes. */
        SECItem *copy = SECITEM_ArenaDupItem(arena, plain);
        SECITEM_ZfreeItem(plain, PR_TRUE);
        P12SafeBag **bags = NULL;
        if (copy == NULL || !decode_safe_contents(arena, copy, &bags))
            continue;
        s->plain = *copy;
        learn_variant(f, pw);
        return TRUE;
    }
    if (f->mac_checked)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "safe %u (%s) cannot be decrypted although the MAC matched the password: it "
                    "was encrypted with another password (OpenSSL -twopass) or is damaged",
                    index + 1, s->pbe.description);
    else
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "wrong password for %s (safe %u cannot be decrypted, and the file has no MAC "
                    "to check the password against)",
                    f->path, index + 1);
    return FALSE;
}

/* ---- MAC ---- */

typedef struct {
    CabackP12File *file;
    P12MacData *mac;
    P12MacInfo *info;
    const SECItem *data;
    gboolean tried[3];
    gboolean matched;
    int nss_error;
    GError *refused; /* the work budget refused the derivation */
} MacCheck;

static gboolean mac_try(MacCheck *m, guint v)
{
    P12PasswordVariant *pv = &m->file->passwords->variants[v];
    const SECItem *pw = m->info->pbmac1 ? pv->pbkdf2[0] : pv->bmp;
    CK_MECHANISM_TYPE hmac;

    /* The same bytes as an earlier variant cannot give another answer. */
    for (guint u = 0; u < v; u++) {
        P12PasswordVariant *pu = &m->file->passwords->variants[u];
        const SECItem *other = m->info->pbmac1 ? pu->pbkdf2[0] : pu->bmp;
        if (m->tried[u] && other->len == pw->len &&
            (pw->len == 0 || memcmp(other->data, pw->data, pw->len) == 0))
            return FALSE;
    }
    m->tried[v] = TRUE;
    P12KdfCharge charge = {pw, m->info->cache_id, m->info->work};
    if (m->refused == NULL &&
        !p12_kdf_charge(m->file->cache, &charge, 1, "the MAC key", &m->refused))
        return FALSE;
    if (m->refused != NULL)
        return FALSE;
    g_autoptr(PK11SymKey) key = p12_mac_key_cached(m->file->cache, m->mac, m->info, pw, &hmac);
    guint8 out[64];
    unsigned int out_len = 0;
    if (key == NULL || !p12_hmac(key, hmac, m->data, out, &out_len)) {
        m->nss_error = PORT_GetError();
        return FALSE;
    }
    gboolean ok = out_len == m->mac->mac.digest.len &&
                  NSS_SecureMemcmp(out, m->mac->mac.digest.data, out_len) == 0;
    if (ok) {
        m->matched = TRUE;
        m->file->variant = v;
    }
    return ok;
}

/* ---- reading ---- */

static void count_consumed(void *arg, const char *data, unsigned long len, int depth,
                           SEC_ASN1EncodingPart kind)
{
    *(gsize *)arg += len;
}

static gboolean decode_pfx(CabackP12File *f, PLArenaPool *arena, const guint8 *data, gsize len,
                           P12Pfx *pfx, GError **error)
{
    if (len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "the file is empty");
        return FALSE;
    }
    if (len > G_MAXUINT32) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "the file is too large");
        return FALSE;
    }
    if (data[0] != 0x30) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "not a PKCS#12 file (it does not begin with an ASN.1 SEQUENCE%s)",
                    len >= 5 && memcmp(data, "-----", 5) == 0 ? "; it looks like PEM text" : "");
        return FALSE;
    }

    /* A DER file that is exactly one PFX decodes without copying its bytes. */
    SECItem whole = {siBuffer, (unsigned char *)data, (unsigned int)len};
    memset(pfx, 0, sizeof(*pfx));
    if (SEC_QuickDERDecodeItem(arena, pfx, p12_pfx_template, &whole) == SECSuccess)
        return TRUE;

    /* The streaming decoder tells a truncated file (it still wants bytes at the end) from a
     * malformed one (it fails), and the filter counts what the PFX itself occupies. */
    gsize consumed = 0;
    memset(pfx, 0, sizeof(*pfx));
    SEC_ASN1DecoderContext *cx = SEC_ASN1DecoderStart(arena, pfx, p12_pfx_template);
    if (cx == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot start the ASN.1 decoder");
        return FALSE;
    }
    SEC_ASN1DecoderSetFilterProc(cx, count_consumed, &consumed, PR_FALSE);
    /* No element can be longer than the file: without this bound, a forged length would make
     * the decoder allocate (and zero) up to 4 GiB for one element. */
    SEC_ASN1DecoderSetMaximumElementSize(cx, len);
    SECStatus update = SEC_ASN1DecoderUpdate(cx, (const char *)data, len);
    int update_error = PORT_GetError();
    SECStatus finish = SEC_ASN1DecoderFinish(cx);
    if (update != SECSuccess && update_error == SEC_ERROR_OUTPUT_LEN) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the file is truncated (or damaged): an element of the PFX structure claims "
                    "more bytes than the %" G_GSIZE_FORMAT " the file holds",
                    len);
        return FALSE;
    }
    if (update != SECSuccess) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "not a PKCS#12 file, or a damaged one (its outer PFX structure cannot be "
                    "decoded)");
        return FALSE;
    }
    if (finish != SECSuccess) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the file is truncated: its %" G_GSIZE_FORMAT " bytes end inside the PFX "
                    "structure",
                    len);
        return FALSE;
    }
    if (consumed > 0 && consumed < len) {
        gsize extra = len - consumed;
        gboolean zeros = TRUE;
        for (gsize i = consumed; i < len && zeros; i++)
            zeros = data[i] == 0;
        warn(f, "%" G_GSIZE_FORMAT " %s after the PKCS#12 structure %s ignored", extra,
             zeros ? (extra == 1 ? "zero byte" : "zero bytes")
                   : (extra == 1 ? "byte of other data" : "bytes of other data"),
             extra == 1 ? "was" : "were");
    }
    return TRUE;
}

/* The authenticated safe of @pfx: *@auth_data (the bytes the MAC covers) and its ContentInfos. */
static gboolean decode_auth_safe(CabackP12File *f, PLArenaPool *arena, P12Pfx *pfx,
                                 SECItem *auth_data, P12ContentInfo ***cis, GError **error)
{
    guint64 version = 0;
    if (!p12_uint_get(&pfx->version, 1000, &version) || version != 3)
        warn(f, "the PFX version is not 3 (the PKCS#12 v1 version)");

    if (!p12_oid_is(&pfx->auth_safe.content_type, SEC_OID_PKCS7_DATA)) {
        if (p12_oid_is(&pfx->auth_safe.content_type, SEC_OID_PKCS7_SIGNED_DATA))
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                        "the file uses public-key integrity mode (a signature instead of a "
                        "password MAC), which caback does not support");
        else
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                        "the authenticated safe has an unexpected content type");
        return FALSE;
    }
    if (pfx->auth_safe.content.len == 0 ||
        p12_decode(arena, auth_data, sizeof(*auth_data), SEC_OctetStringTemplate,
                   &pfx->auth_safe.content) != SECSuccess ||
        auth_data->len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "the authenticated safe has no data");
        return FALSE;
    }
    if (p12_decode(arena, cis, sizeof(*cis), p12_content_infos_template, auth_data) !=
        SECSuccess) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the authenticated safe is malformed");
        return FALSE;
    }
    return TRUE;
}

/* The cost of one derivation (@cache_id, @work) with the password as given: its UTF-8 bytes for
 * PBKDF2 (@raw_password: PBES2, PBMAC1), its BMPString for the PKCS#12 KDF. */
static P12KdfCharge first_charge(CabackP12File *f, gboolean raw_password, GBytes *cache_id,
                                 guint64 work)
{
    P12PasswordVariant *v0 = &f->passwords->variants[0];
    P12KdfCharge c = {raw_password ? v0->pbkdf2[0] : v0->bmp, cache_id, work};
    return c;
}

/* Safe @index (@s->ci set): decode it far enough to know its protection, name it in the file's
 * info and add what its key will cost to @charges. Nothing is derived. */
static gboolean survey_safe(CabackP12File *f, PLArenaPool *arena, Safe *s, guint index,
                            GArray *charges, GError **error)
{
    if (p12_oid_is(&s->ci->content_type, SEC_OID_PKCS7_DATA)) {
        gboolean ok = TRUE;
        if (s->ci->content.len == 0 ||
            p12_decode(arena, &s->plain, sizeof(s->plain), SEC_OctetStringTemplate,
                       &s->ci->content) != SECSuccess) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                        "safe %u (plain data) is malformed", index + 1);
            ok = FALSE;
        }
        g_ptr_array_add(f->info.safes, g_strdup("plain"));
        return ok;
    }
    if (p12_oid_is(&s->ci->content_type, SEC_OID_PKCS7_ENCRYPTED_DATA)) {
        s->encrypted = TRUE;
        if (s->ci->content.len == 0 ||
            p12_decode(arena, &s->ed, sizeof(s->ed), p12_encrypted_data_template,
                       &s->ci->content) != SECSuccess ||
            s->ed.info.encrypted.len == 0) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                        "encrypted safe %u is malformed or empty", index + 1);
            return FALSE;
        }
        if (!p12_pbe_info_parse(&s->ed.info.algorithm, &s->pbe, error)) {
            g_prefix_error(error, "encrypted safe %u: ", index + 1);
            return FALSE;
        }
        g_ptr_array_add(f->info.safes, g_strdup_printf("encrypted: %s", s->pbe.description));
        P12KdfCharge c = first_charge(f, s->pbe.raw_password, s->pbe.cache_id, s->pbe.work);
        g_array_append_val(charges, c);
        return TRUE;
    }
    if (p12_oid_is(&s->ci->content_type, SEC_OID_PKCS7_ENVELOPED_DATA)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "safe %u is encrypted to a certificate (public-key privacy mode, "
                    "envelopedData), which caback does not support",
                    index + 1);
        return FALSE;
    }
    g_autofree char *dotted = p12_oid_dotted(&s->ci->content_type);
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                "safe %u has the unknown content type %s", index + 1, dotted);
    return FALSE;
}

/* The MAC's parameters into @info (to be cleared by the caller on success), named in the file's
 * info, and what its key will cost put first in @charges. */
static gboolean survey_mac(CabackP12File *f, const P12MacData *mac, P12MacInfo *info,
                           GArray *charges, GError **error)
{
    if (!p12_mac_info_parse(mac, info, error))
        return FALSE;
    f->info.mac = g_strdup(info->description);
    f->info.mac_iterations = (gint64)info->iterations;
    P12KdfCharge c = first_charge(f, info->pbmac1, info->cache_id, info->work);
    g_array_prepend_val(charges, c);
    return TRUE;
}

/* Check the password by the MAC over @auth_data, under each password encoding in turn. */
static gboolean check_mac(CabackP12File *f, P12MacData *mac, P12MacInfo *info,
                          const SECItem *auth_data, GError **error)
{
    MacCheck m = {f, mac, info, auth_data, {FALSE}, FALSE, 0, NULL};
    for (guint v = 0; v < f->passwords->n_variants && !m.matched && m.refused == NULL; v++)
        mac_try(&m, v);
    if (m.refused != NULL) {
        g_propagate_error(error, m.refused);
        return FALSE;
    }
    if (!m.matched) {
        if (m.nss_error != 0)
            caback_error_set_nss_code(error, CABACK_ERROR_PKCS12, m.nss_error,
                                      "NSS cannot check the MAC (%s)", info->description);
        else
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                        "wrong password for %s (MAC check failed)", f->path);
        return FALSE;
    }
    f->mac_checked = TRUE;
    if (f->variant > 0)
        warn(f, "the MAC matched the password encoded as %s",
             f->passwords->variants[f->variant].name);
    return TRUE;
}

/* Without a MAC, the first encrypted safe checks the password: it is decrypted now and its index
 * returned in *@first (-1 when there is none). */
static gboolean check_without_mac(CabackP12File *f, PLArenaPool *arena, Safe *safes,
                                  guint n_safes, gint *first, GError **error)
{
    warn(f, "the file has no MAC: its integrity cannot be checked, and a wrong password "
            "shows only when decryption fails");
    for (guint i = 0; i < n_safes; i++)
        if (safes[i].encrypted) {
            *first = (gint)i;
            return decrypt_safe(f, arena, &safes[i], i, error);
        }
    return TRUE;
}

/* The password is known good (or there is nothing left to decrypt): charge the keys of the safes
 * still encrypted (all but @first) and derive them side by side. */
static gboolean prefetch_safe_keys(CabackP12File *f, Safe *safes, guint n_safes, gint first,
                                   GError **error)
{
    g_autoptr(GArray) requests = g_array_new(FALSE, TRUE, sizeof(P12PbeRequest));
    g_autoptr(GArray) charges = g_array_new(FALSE, TRUE, sizeof(P12KdfCharge));
    for (guint i = 0; i < n_safes; i++) {
        Safe *s = &safes[i];
        if (!s->encrypted || (gint)i == first)
            continue;
        g_autoptr(GPtrArray) pws = candidates(f, &s->pbe);
        if (pws->len == 0)
            continue;
        P12PbeRequest r = {pws->pdata[0], &s->ed.info.algorithm, &s->pbe};
        g_array_append_val(requests, r);
        P12KdfCharge c = {pws->pdata[0], s->pbe.cache_id, s->pbe.work};
        g_array_append_val(charges, c);
    }
    if (!p12_kdf_charge(f->cache, (P12KdfCharge *)(void *)charges->data, charges->len,
                        "the safe keys", error))
        return FALSE;
    p12_pbe_prefetch(f->cache, requests, NULL, NULL);
    return TRUE;
}

/* Decrypt the safes not yet decrypted (all but @first) and collect the bags of every safe. */
static gboolean open_safes(CabackP12File *f, PLArenaPool *arena, Safe *safes, guint n_safes,
                           gint first, GError **error)
{
    for (guint i = 0; i < n_safes; i++) {
        Safe *s = &safes[i];
        if (s->encrypted && (gint)i != first && !decrypt_safe(f, arena, s, i, error))
            return FALSE;
        const char *protection = s->encrypted ? s->pbe.description : "none";
        if (!parse_safe_contents(f, arena, &s->plain, protection, 0, error)) {
            g_prefix_error(error, "safe %u: ", i + 1);
            return FALSE;
        }
    }
    return TRUE;
}

/* The shrouded keys are derived later (list, restore, verify), but what they will cost is known
 * now: a file over the budget is refused here, before any of them is derived. */
static gboolean charge_key_derivations(CabackP12File *f, GError **error)
{
    g_autoptr(GArray) charges = g_array_new(FALSE, TRUE, sizeof(P12KdfCharge));
    for (guint i = 0; i < f->keys->len; i++) {
        KeyPriv *k = f->keys->pdata[i];
        if (!k->pub.shrouded || !k->pbe_ok)
            continue;
        g_autoptr(GPtrArray) pws = candidates(f, k->pbe);
        if (pws->len == 0)
            continue;
        P12KdfCharge c = {pws->pdata[0], k->pbe->cache_id, k->pbe->work};
        g_array_append_val(charges, c);
    }
    return p12_kdf_charge(f->cache, (P12KdfCharge *)(void *)charges->data, charges->len,
                          "the keys of the file", error);
}

/* Read a whole PFX into @f: its safes are surveyed and every derivation charged before the
 * first runs, the password checked by one derivation (the MAC's, or without a MAC the first
 * encrypted safe's), then the other safes decrypted and their bags collected. */
static gboolean read_file_contents(CabackP12File *f, PLArenaPool *arena, const guint8 *data,
                                   gsize len, GError **error)
{
    P12Pfx pfx;
    SECItem auth_data = {siBuffer, NULL, 0};
    P12ContentInfo **cis = NULL;
    if (!decode_pfx(f, arena, data, len, &pfx, error) ||
        !decode_auth_safe(f, arena, &pfx, &auth_data, &cis, error))
        return FALSE;
    guint n_safes = 0;
    while (cis != NULL && cis[n_safes] != NULL)
        n_safes++;

    /* Look at every safe before any slow work: what the file will cost is known (and refused
     * when too much) before the first derivation. */
    g_autofree Safe *safes = g_new0(Safe, n_safes + 1);
    g_autoptr(GArray) charges = g_array_new(FALSE, TRUE, sizeof(P12KdfCharge));
    gboolean ok = TRUE;
    for (guint i = 0; i < n_safes && ok; i++) {
        safes[i].ci = cis[i];
        ok = survey_safe(f, arena, &safes[i], i, charges, error);
    }
    P12MacInfo mac_info;
    gboolean have_mac_info = FALSE;
    memset(&mac_info, 0, sizeof(mac_info));
    if (ok && pfx.mac_data != NULL) {
        have_mac_info = survey_mac(f, pfx.mac_data, &mac_info, charges, error);
        ok = have_mac_info;
    }
    /* The MAC and the safes' keys, charged before any of them is derived. */
    if (ok)
        ok = p12_kdf_charge(f->cache, (P12KdfCharge *)(void *)charges->data, charges->len,
                            "the MAC and safe keys", error);

    gint first_decrypted = -1;
    if (ok && have_mac_info)
        ok = check_mac(f, pfx.mac_data, &mac_info, &auth_data, error);
    else if (ok)
        ok = check_without_mac(f, arena, safes, n_safes, &first_decrypted, error);
    if (have_mac_info)
        p12_mac_info_clear(&mac_info);

    if (ok)
        ok = prefetch_safe_keys(f, safes, n_safes, first_decrypted, error) &&
             open_safes(f, arena, safes, n_safes, first_decrypted, error);
    if (ok && f->certs->len == 0 && f->keys->len == 0)
        warn(f, "the file holds no certificate and no key");
    if (ok)
        ok = charge_key_derivations(f, error);

    for (guint i = 0; i < n_safes; i++)
        p12_pbe_info_clear(&safes[i].pbe);
    return ok;
}

/* caback_p12_read with the derived keys of @cache (a new one when NULL). */
static CabackP12File *read_with_cache(const guint8 *data, gsize len, const CabackSecret *password,
                                      const char *path, P12KeyCache *cache, GError **error)
{
    g_autoptr(CabackP12File) f = g_new0(CabackP12File, 1);
    f->path = g_strdup(path != NULL ? path : "(PKCS#12 data)");
    f->password = password != NULL ? caback_secret_new(password->data, password->len)
                                   : caback_secret_new("", 0);
    f->passwords = p12_passwords_new(f->password->data, f->password->len);
    f->variant = -1;
    f->cache = cache != NULL ? p12_key_cache_ref(cache) : p12_key_cache_new();
    f->certs = g_ptr_array_new_with_free_func(cert_free);
    f->keys = g_ptr_array_new_with_free_func(key_free);
    f->crls = g_ptr_array_new_with_free_func(crl_free);
    f->texts = g_string_chunk_new(256);
    f->info.safes = g_ptr_array_new_with_free_func(g_free);
    f->info.warnings = g_ptr_array_new_with_free_func(g_free);

    PLArenaPool *arena = PORT_NewArena(4096);
    if (arena == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED, "out of memory");
        return NULL;
    }
    GError *local = NULL;
    gboolean ok = read_file_contents(f, arena, data, len, &local);
    /* Decrypted safes may hold plain keys: zero the arena. */
    PORT_FreeArena(arena, PR_TRUE);
    if (!ok) {
        if (local->domain == CABACK_ERROR && local->code == CABACK_ERROR_BAD_PASSWORD)
            g_propagate_error(error, local);
        else
            g_propagate_prefixed_error(error, local, "cannot read PKCS#12 file %s: ", f->path);
        return NULL;
    }
    return g_steal_pointer(&f);
}

CabackP12File *caback_p12_read(const guint8 *data, gsize len, const CabackSecret *password,
                               const char *path, GError **error)
{
    if (!caback_p12_check_input_size(path != NULL ? path : "(PKCS#12 data)", "PKCS#12 file", len,
                                     error))
        return NULL;
    return read_with_cache(data, len, password, path, NULL, error);
}

gboolean caback_p12_check_input_size(const char *path, const char *what, guint64 size,
                                     GError **error)
{
    CabackP12Limits limits;
    caback_p12_limits_get(&limits);
    if (size <= limits.max_input_size)
        return TRUE;
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                "%s %s is too large: %" G_GUINT64_FORMAT " bytes, above caback's limit of "
                "%" G_GUINT64_FORMAT " bytes for an input file (a CA backup is a few kilobytes "
                "to a few megabytes); if you trust it, allow it with --max-input-size %"
                G_GUINT64_FORMAT,
                what, path, size, limits.max_input_size, size);
    return FALSE;
}

/* Open @path for caback_p12_load_file and check what the descriptor is: a folder is refused, and
 * a regular file on its size, before a byte is read. Returns the descriptor, or -1. */
static int open_input(const char *path, const char *what, struct stat *st, GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, e == ENOENT ? CABACK_ERROR_NOT_FOUND : CABACK_ERROR_IO,
                    "cannot read %s %s: %s", what, path, g_strerror(e));
        return -1;
    }
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot read %s %s: %s", what, path,
                    g_strerror(e));
        return -1;
    }
    if (S_ISDIR(st->st_mode)) {
        close(fd);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot read %s %s: it is a folder",
                    what, path);
        return -1;
    }
    /* A pipe is refused as soon as more than the limit came out of it (see read_wiped). */
    if (S_ISREG(st->st_mode) &&
        !caback_p12_check_input_size(path, what, (guint64)st->st_size, error)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* @buf's first @len bytes moved to a new buffer of @size bytes; the old one is wiped (not
 * g_realloc, which would leave the old copy behind). */
static guint8 *grow_wiped(guint8 *buf, gsize len, gsize size)
{
    guint8 *grown = g_malloc(size);
    memcpy(grown, buf, len);
    caback_secret_wipe(buf, len);
    g_free(buf);
    return grown;
}

/* Read @fd to its end into a buffer of @size bytes at first, grown up to @cap + 1 bytes; the
 * bytes are NUL-terminated. NULL with *@err set, and everything read wiped: the read's errno, or
 * EFBIG when more than @cap bytes came (*@len then says how many were read). */
static guint8 *read_wiped(int fd, gsize size, gsize cap, gsize *len, int *err)
{
    guint8 *buf = g_malloc(size);
    *len = 0;
    for (;;) {
        if (*len == size) {
            if (size > cap) {
                *err = EFBIG;
                caback_secret_wipe(buf, *len);
                g_free(buf);
                return NULL;
            }
            gsize bigger = MIN(MAX(size * 2, (gsize)65536), cap + 1);
            buf = grow_wiped(buf, *len, bigger);
            size = bigger;
        }
        ssize_t n = read(fd, buf + *len, size - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = errno;
            caback_secret_wipe(buf, *len);
            g_free(buf);
            return NULL;
        }
        if (n == 0)
            break;
        *len += (gsize)n;
    }
    if (*len == size) /* a pipe that ended exactly at a buffer's end */
        buf = grow_wiped(buf, *len, size + 1);
    buf[*len] = 0;
    return buf;
}

CabackSecret *caback_p12_load_file(const char *path, const char *what, GError **error)
{
    CabackP12Limits limits;
    caback_p12_limits_get(&limits);
    struct stat st;
    int fd = open_input(path, what, &st, error);
    if (fd < 0)
        return NULL;
    gsize cap = (gsize)MIN(limits.max_input_size, (guint64)G_MAXSIZE - 1);
    gsize size = S_ISREG(st.st_mode) ? (gsize)st.st_size + 1 : 65536;
    size = MAX(MIN(size, cap + 1), 1);
    gsize len = 0;
    int e = 0;
    guint8 *buf = read_wiped(fd, size, cap, &len, &e);
    close(fd);
    if (buf == NULL && e == EFBIG) {
        /* The size is at least this: the rest was not read. */
        (void)caback_p12_check_input_size(path, what, (guint64)len, error);
        g_prefix_error(error, "(at least) ");
        return NULL;
    }
    if (buf == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot read %s %s: %s", what, path,
                    g_strerror(e));
        return NULL;
    }
    /* Handed over as it is (no copy: the file may be large); NUL-terminated as a CabackSecret
     * is. */
    CabackSecret *contents = g_new0(CabackSecret, 1);
    contents->data = (char *)buf;
    contents->len = len;
    return contents;
}

static CabackP12File *read_file_with_cache(const char *path, const CabackSecret *password,
                                           P12KeyCache *cache, GError **error)
{
    GError *local = NULL;
    g_autoptr(CabackSecret) contents = caback_p12_load_file(path, "PKCS#12 file", &local);
    if (contents == NULL) {
        /* This function's contract: a file that cannot be read is CABACK_ERROR_IO. */
        if (local->domain == CABACK_ERROR && local->code == CABACK_ERROR_NOT_FOUND)
            local->code = CABACK_ERROR_IO;
        g_propagate_error(error, local);
        return NULL;
    }
    return read_with_cache((const guint8 *)contents->data, contents->len, password, path, cache,
                           error);
}

CabackP12File *caback_p12_read_file(const char *path, const CabackSecret *password, GError **error)
{
    return read_file_with_cache(path, password, NULL, error);
}

CabackP12File *caback_p12_read_file_verify(const char *path, const CabackSecret *password,
                                           CabackP12Writer *writer, GError **error)
{
    return read_file_with_cache(path, password,
                                writer != NULL ? p12_writer_verify_cache(writer) : NULL, error);
}

const char *caback_p12_integrity(const CabackP12Info *info)
{
    if (info == NULL || info->mac == NULL)
        return "none";
    if (g_str_has_prefix(info->mac, "PBMAC1"))
        return "pbmac1";
    return "password-mac";
}

CabackP12File *caback_p12_read_verify(const guint8 *data, gsize len, const CabackSecret *password,
                                      const char *path, CabackP12Writer *writer, GError **error)
{
    return read_with_cache(data, len, password, path,
                           writer != NULL ? p12_writer_verify_cache(writer) : NULL, error);
}

/* ---- keys ---- */

typedef struct {
    KeyType type;
    CK_KEY_TYPE ck_type;
    CK_ATTRIBUTE_TYPE usage[4];
    int n_usage;
} KeyKind;

/* The NSS key type of a PKCS#8 algorithm, with the usages NSS's own PKCS#12 import gives it
 * (PK11_ImportEncryptedPrivateKeyInfo with no key usage: everything the type can do). */
static gboolean key_kind(const SECItem *oid, KeyKind *kind)
{
    SECOidTag tag = oid != NULL ? SECOID_FindOIDTag(oid) : SEC_OID_UNKNOWN;
    memset(kind, 0, sizeof(*kind));
    switch (tag) {
    case SEC_OID_PKCS1_RSA_ENCRYPTION:
    case SEC_OID_PKCS1_RSA_PSS_SIGNATURE:
        *kind = (KeyKind){tag == SEC_OID_PKCS1_RSA_ENCRYPTION ? rsaKey : rsaPssKey,
                          CKK_RSA,
                          {CKA_UNWRAP, CKA_DECRYPT, CKA_SIGN, CKA_SIGN_RECOVER},
                          4};
        return TRUE;
    case SEC_OID_ANSIX962_EC_PUBLIC_KEY:
        *kind = (KeyKind){ecKey, CKK_EC, {CKA_SIGN, CKA_DERIVE}, 2};
        return TRUE;
    case SEC_OID_ANSIX9_DSA_SIGNATURE:
        *kind = (KeyKind){dsaKey, CKK_DSA, {CKA_SIGN}, 1};
        return TRUE;
    default:
        return FALSE;
    }
}

static CK_MECHANISM_TYPE unpadded(CK_MECHANISM_TYPE m)
{
    switch (m) {
    case CKM_AES_CBC_PAD:
        return CKM_AES_CBC;
    case CKM_DES3_CBC_PAD:
        return CKM_DES3_CBC;
    case CKM_DES_CBC_PAD:
        return CKM_DES_CBC;
    case CKM_RC2_CBC_PAD:
        return CKM_RC2_CBC;
    case CKM_CAMELLIA_CBC_PAD:
        return CKM_CAMELLIA_CBC;
    default:
        return m; /* RC4: a stream cipher */
    }
}

typedef struct {
    const SECItem *oid_field;
    gboolean oid_done;
} HeaderProbe;

static void probe_notify(void *arg, PRBool before, void *dest, int depth)
{
    HeaderProbe *p = arg;
    if (!before && dest == p->oid_field)
        p->oid_done = TRUE;
}

/* Decrypt only the first blocks of a shrouded key, enough for the PKCS#8 header up to the
 * algorithm OID (which lies before any key material), and read that OID. This proves the
 * password and names the key type without decrypting the key itself in caback's memory. */
static gboolean probe_header(PK11SymKey *key, CK_MECHANISM_TYPE mech, SECItem *param,
                             const SECItem *encrypted, PLArenaPool *out_arena, SECItem *oid_out)
{
    CK_MECHANISM_TYPE raw = unpadded(mech);
    int block = PK11_GetBlockSize(raw, param);
    if (block <= 0 || block > 16)
        block = 1;
    for (unsigned int want = 16; want <= 64; want += 16) {
        unsigned int n = MIN(want, encrypted->len);
        n -= n % (unsigned int)block;
        if (n == 0)
            return FALSE;
        guint8 buf[64 + 16];
        unsigned int out_len = 0;
        if (PK11_Decrypt(key, raw, param, buf, &out_len, sizeof(buf), encrypted->data, n) !=
                SECSuccess ||
            out_len > n) {
            caback_secret_wipe(buf, sizeof(buf));
            return FALSE;
        }
        P12PrivateKeyInfo pki;
        memset(&pki, 0, sizeof(pki));
        HeaderProbe probe = {&pki.algorithm.algorithm, FALSE};
        gboolean found = FALSE, garbage = TRUE;
        PLArenaPool *arena = PORT_NewArena(256);
        SEC_ASN1DecoderContext *cx =
            arena != NULL ? SEC_ASN1DecoderStart(arena, &pki, p12_pki_template) : NULL;
        if (cx != NULL) {
            SEC_ASN1DecoderSetNotifyProc(cx, probe_notify, &probe);
            SEC_ASN1DecoderSetMaximumElementSize(cx, encrypted->len);
            SECStatus rv = SEC_ASN1DecoderUpdate(cx, (const char *)buf, out_len);
            (void)SEC_ASN1DecoderFinish(cx); /* incomplete on purpose */
            garbage = rv != SECSuccess;
            guint64 version = 99;
            if (!garbage && probe.oid_done && pki.algorithm.algorithm.len > 0 &&
                p12_uint_get(&pki.version, 1, &version) &&
                SECITEM_CopyItem(out_arena, oid_out, &pki.algorithm.algorithm) == SECSuccess)
                found = TRUE;
        }
        if (arena != NULL)
            PORT_FreeArena(arena, PR_TRUE);
        caback_secret_wipe(buf, sizeof(buf));
        if (found)
            return TRUE;
        if (garbage || n == encrypted->len)
            return FALSE; /* a wrong key decrypts to garbage */
    }
    return FALSE;
}

/* Derive the keys of every shrouded key bag at once, in parallel: whoever describes or imports
 * one key (list, restore, verify) goes on to do all of them. */
static void prefetch_keys(CabackP12File *f)
{
    if (f->keys_prefetched)
        return;
    f->keys_prefetched = TRUE;
    g_autoptr(GArray) requests = g_array_new(FALSE, TRUE, sizeof(P12PbeRequest));
    /* The requests point into the decoded algorithms, which live in this arena. */
    g_autoptr(PLArenaPool) arena = PORT_NewArena(2048);
    if (arena == NULL)
        return;
    for (guint i = 0; i < f->keys->len; i++) {
        KeyPriv *k = f->keys->pdata[i];
        if (!k->pub.shrouded || !k->pbe_ok)
            continue;
        g_autoptr(GPtrArray) pws = candidates(f, k->pbe);
        P12EncryptedPrivateKeyInfo *epki = PORT_ArenaZNew(arena, P12EncryptedPrivateKeyInfo);
        gsize len;
        const guint8 *der = g_bytes_get_data(k->pub.encoded, &len);
        SECItem item = {siBuffer, (unsigned char *)der, (unsigned int)len};
        if (pws->len == 0 || epki == NULL ||
            SEC_ASN1DecodeItem(arena, epki, p12_epki_template, &item) != SECSuccess)
            continue;
        P12PbeRequest r = {pws->pdata[0], &epki->algorithm, k->pbe};
        g_array_append_val(requests, r);
    }
    p12_pbe_prefetch(f->cache, requests, NULL, NULL);
}

/* The symmetric key that opens shrouded key @k, found by trying the password encodings (the
 * proven one first) on the PKCS#8 header; also gives the key's algorithm OID. */
static PK11SymKey *open_shrouded(CabackP12File *f, KeyPriv *k, PLArenaPool *arena,
                                 P12EncryptedPrivateKeyInfo *epki, CK_MECHANISM_TYPE *mech,
                                 SECItem **param, SECItem *oid, GError **error)
{
    guint n = (guint)k->pub.index + 1;
    gsize len;
    const guint8 *der = g_bytes_get_data(k->pub.encoded, &len);
    SECItem item = {siBuffer, (unsigned char *)der, (unsigned int)len};

    if (!k->pbe_ok) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "key %u of %s cannot be decrypted: %s", n, f->path,
                    k->pbe_error != NULL ? k->pbe_error : "unsupported encryption");
        return NULL;
    }
    memset(epki, 0, sizeof(*epki));
    if (SEC_ASN1DecodeItem(arena, epki, p12_epki_template, &item) != SECSuccess) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "key %u of %s is malformed", n,
                    f->path);
        return NULL;
    }
    /* Until the password is proven (a file without MAC and without encrypted safe), this key's
     * own derivation checks it: a wrong password costs one derivation, not one per key. */
    if (f->mac_checked || f->variant >= 0)
        prefetch_keys(f);
    g_autoptr(GPtrArray) pws = candidates(f, k->pbe);
    for (guint i = 0; i < pws->len; i++) {
        const SECItem *pw = pws->pdata[i];
        SECItem *p = NULL;
        g_autofree char *what = g_strdup_printf("the key of key %u", n);
        PK11SymKey *key =
            charged_pbe_key(f, pw, &epki->algorithm, k->pbe, what, mech, &p, error);
        if (key == NULL) {
            g_prefix_error(error, "key %u of %s: ", n, f->path);
            return NULL;
        }
        if (probe_header(key, *mech, p, &epki->encrypted, arena, oid)) {
            learn_variant(f, pw);
            *param = p;
            return key;
        }
        PK11_FreeSymKey(key);
        SECITEM_FreeItem(p, PR_TRUE);
    }
    if (f->mac_checked)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "key %u of %s (%s) cannot be decrypted although the MAC matched the "
                    "password: it was encrypted with another password or is damaged",
                    n, f->path, k->pbe->description);
    else
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "wrong password for %s (key %u cannot be decrypted, and the file has no MAC "
                    "to check the password against)",
                    f->path, n);
    return NULL;
}

/* A plain KeyBag is encrypted under a throwaway AES key so that it can enter the token through
 * the same unwrap as a shrouded key (same attributes, same CKA_ID rule). */
static PK11SymKey *wrap_plain(CabackP12File *f, KeyPriv *k, PLArenaPool *arena, SECItem *wrapped,
                              SECItem **param, SECItem *oid, GError **error)
{
    guint n = (guint)k->pub.index + 1;
    gsize len;
    const guint8 *der = g_bytes_get_data(k->pub.encoded, &len);
    SECItem item = {siBuffer, (unsigned char *)der, (unsigned int)len};
    P12PrivateKeyInfo pki;

    memset(&pki, 0, sizeof(pki));
    if (SEC_ASN1DecodeItem(arena, &pki, p12_pki_template, &item) != SECSuccess ||
        SECITEM_CopyItem(arena, oid, &pki.algorithm.algorithm) != SECSuccess) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "key %u of %s is malformed", n,
                    f->path);
        return NULL;
    }
    g_autoptr(PK11SlotInfo) slot = PK11_GetInternalSlot();
    PK11SymKey *key = slot != NULL ? PK11_KeyGen(slot, CKM_AES_KEY_GEN, NULL, 32, NULL) : NULL;
    guint8 iv[16];
    SECItem iv_item = {siBuffer, iv, sizeof(iv)};
    SECItem *enc = NULL;
    if (key != NULL && PK11_GenerateRandom(iv, sizeof(iv)) == SECSuccess)
        enc = p12_encrypt(arena, key, CKM_AES_CBC_PAD, &iv_item, &item);
    if (enc == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot prepare key %u of %s for import",
                             n, f->path);
        if (key != NULL)
            PK11_FreeSymKey(key);
        return NULL;
    }
    *wrapped = *enc;
    *param = SECITEM_DupItem(&iv_item);
    return key;
}

/* Unwrap key @k into @slot. @id_value is the public value NSS turns into CKA_ID. */
static SECKEYPrivateKey *unwrap_into(CabackP12File *f, KeyPriv *k, PK11SlotInfo *slot,
                                     SECItem *label, SECItem *id_value, gboolean permanent,
                                     KeyKind *kind_out, void *wincx, GError **error)
{
    guint n = (guint)k->pub.index + 1;
    g_autoptr(PLArenaPool) arena = PORT_NewArena(1024);
    P12EncryptedPrivateKeyInfo epki;
    SECItem oid = {siBuffer, NULL, 0};
    SECItem wrapped = {siBuffer, NULL, 0};
    CK_MECHANISM_TYPE mech = CKM_AES_CBC_PAD;
    g_autoptr(SECItem) param = NULL;
    g_autoptr(PK11SymKey) key = NULL;

    if (k->pub.shrouded) {
        key = open_shrouded(f, k, arena, &epki, &mech, &param, &oid, error);
        wrapped = epki.encrypted;
    } else {
        key = wrap_plain(f, k, arena, &wrapped, &param, &oid, error);
    }
    if (key == NULL)
        return NULL;
    k->pub.algorithm_oid = file_oid_text(f, &oid);

    KeyKind kind;
    if (!key_kind(&oid, &kind)) {
        SECOidData *data = SECOID_FindOID(&oid);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "key %u of %s is of a type NSS cannot import (algorithm %s%s%s)", n, f->path,
                    k->pub.algorithm_oid, data != NULL ? ", " : "", data != NULL ? data->desc : "");
        return NULL;
    }
    if (kind_out != NULL)
        *kind_out = kind;

    /* NSS decrypts the PKCS#8 inside the token (C_UnwrapKey), as PK11_ImportEncryptedPrivate-
     * KeyInfo does, with the CKA_ID it derives from the public value. */
    SECKEYPrivateKey *priv =
        PK11_UnwrapPrivKey(slot, key, mech, param, &wrapped, label, id_value, permanent, PR_TRUE,
                           kind.ck_type, kind.usage, kind.n_usage, wincx);
    if (priv == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_PKCS12,
                             "NSS cannot import key %u of %s into token \"%s\"", n, f->path,
                             PK11_GetTokenName(slot));
        return NULL;
    }
    return priv;
}

/* The public point of EC key @k from its own PKCS#8 (the ECPrivateKey's publicKey field, or
 * OneAsymmetricKey's): NSS 3.87 neither keeps the point with an EC private key nor computes it
 * from the scalar, and softoken's unwrap takes the point only from its caller. So the PKCS#8 is
 * decrypted by NSS into a buffer of caback's that is wiped as soon as the point is copied out:
 * the one place where a shrouded key is in caback's memory in clear (see SECURITY.md). */
static GBytes *ec_public_point(CabackP12File *f, KeyPriv *k, GError **error)
{
    guint n = (guint)k->pub.index + 1;
    g_autoptr(PLArenaPool) arena = PORT_NewArena(1024);
    SECItem *plain = NULL;
    SECItem der = {siBuffer, NULL, 0};

    if (k->pub.shrouded) {
        P12EncryptedPrivateKeyInfo epki;
        SECItem oid = {siBuffer, NULL, 0};
        CK_MECHANISM_TYPE mech;
        g_autoptr(SECItem) param = NULL;
        g_autoptr(PK11SymKey) key =
            open_shrouded(f, k, arena, &epki, &mech, &param, &oid, error);
        if (key == NULL)
            return NULL;
        plain = p12_decrypt(key, mech, param, &epki.encrypted);
        if (plain == NULL) {
            caback_error_set_nss(error, CABACK_ERROR_PKCS12, "cannot decrypt key %u of %s", n,
                                 f->path);
            return NULL;
        }
        der = *plain;
    } else {
        gsize len;
        der.data = (unsigned char *)g_bytes_get_data(k->pub.encoded, &len);
        der.len = (unsigned int)len;
    }

    /* Decoded into a wiped arena of its own: the decoder copies parts of the key. */
    GBytes *point = NULL;
    PLArenaPool *work = PORT_NewArena(1024);
    P12PrivateKeyInfo pki;
    P12EcPrivateKey ec;
    memset(&pki, 0, sizeof(pki));
    memset(&ec, 0, sizeof(ec));
    if (work != NULL && SEC_QuickDERDecodeItem(work, &pki, p12_pki_template, &der) == SECSuccess) {
        SECItem bits = pki.public_key;
        if (bits.len == 0 &&
            SEC_QuickDERDecodeItem(work, &ec, p12_ec_private_key_template, &pki.private_key) ==
                SECSuccess)
            bits = ec.public_key;
        guint bytes = bits.len / 8;
        /* NSS holds only the uncompressed form (04 || X || Y). */
        if (bytes > 1 && bytes <= 256 && bits.len % 8 == 0 && bits.data[0] == 0x04)
            point = g_bytes_new(bits.data, bytes);
    }
    if (work != NULL)
        PORT_FreeArena(work, PR_TRUE);
    if (plain != NULL)
        SECITEM_ZfreeItem(plain, PR_TRUE);
    if (point == NULL)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "key %u of %s is an EC key whose PKCS#8 does not carry its public point (or "
                    "carries it compressed), and the file has no certificate for it: NSS %s "
                    "cannot compute the point from the private key. Put its certificate in the "
                    "file (openssl pkcs12 -export -in CERT), or write the key with its point "
                    "(openssl ec -in KEY -out KEY2) and export it again",
                    n, f->path, NSS_GetVersion());
    return point;
}

GBytes *caback_p12_key_public_value(CabackP12File *file, CabackP12Key *key, GError **error)
{
    KeyPriv *k = (KeyPriv *)key;
    KeyKind kind;
    SECItem oid = {siBuffer, NULL, 0};
    if (key->algorithm_oid == NULL || SEC_StringToOID(NULL, &oid, key->algorithm_oid, 0) !=
                                          SECSuccess) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "internal error: key %u of %s has not been described",
                    (guint)key->index + 1, file->path);
        return NULL;
    }
    gboolean known = key_kind(&oid, &kind);
    SECITEM_FreeItem(&oid, PR_FALSE);
    if (!known || kind.type != ecKey) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "internal error: key %u of %s is not an EC key", (guint)key->index + 1,
                    file->path);
        return NULL;
    }
    return ec_public_point(file, k, error);
}

SECKEYPrivateKey *caback_p12_key_import(CabackP12File *file, CabackP12Key *key, PK11SlotInfo *slot,
                                        const char *nickname, const SECItem *public_value,
                                        gboolean permanent, gboolean extractable, void *wincx,
                                        GError **error)
{
    KeyPriv *k = (KeyPriv *)key;
    if (file == NULL || key == NULL || slot == NULL || public_value == NULL ||
        public_value->len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "internal error: caback_p12_key_import needs a file, a key, a slot and the "
                    "certificate's public value");
        return NULL;
    }
    SECItem label = {siBuffer, (unsigned char *)nickname,
                     nickname != NULL ? (unsigned int)strlen(nickname) : 0};
    SECItem id_value = *public_value;
    SECKEYPrivateKey *priv = unwrap_into(file, k, slot, nickname != NULL ? &label : NULL, &id_value,
                                         permanent, NULL, wincx, error);
    if (priv == NULL)
        return NULL;
    SECItem now = {siBuffer, NULL, 0};
    gboolean already_locked = FALSE;
    if (!extractable &&
        PK11_ReadRawAttribute(PK11_TypePrivKey, priv, CKA_EXTRACTABLE, &now) == SECSuccess) {
        /* Some tokens (SoftHSM2) make imported keys not extractable anyway, and then refuse to
         * have the attribute written again. */
        already_locked = now.len == sizeof(CK_BBOOL) && now.data[0] == CK_FALSE;
        SECITEM_FreeItem(&now, PR_FALSE);
    }
    if (!extractable && !already_locked) {
        /* PKCS#11 lets CKA_EXTRACTABLE go from true to false, never back. */
        CK_BBOOL no = CK_FALSE;
        SECItem value = {siBuffer, &no, sizeof(no)};
        if (PK11_WriteRawAttribute(PK11_TypePrivKey, priv, CKA_EXTRACTABLE, &value) != SECSuccess) {
            caback_error_set_nss(error, CABACK_ERROR_FAILED,
                                 "cannot mark key %u of %s not extractable on token \"%s\"",
                                 (guint)key->index + 1, file->path, PK11_GetTokenName(slot));
            /* Leave nothing half-made behind. */
            PK11_DestroyTokenObject(priv->pkcs11Slot, priv->pkcs11ID);
            SECKEY_DestroyPrivateKey(priv);
            return NULL;
        }
    }
    return priv;
}

void caback_p12_key_discard(SECKEYPrivateKey *key)
{
    if (key == NULL)
        return;
    SECItem token = {siBuffer, NULL, 0};
    gboolean is_token = TRUE; /* when in doubt, keep the object */
    if (PK11_ReadRawAttribute(PK11_TypePrivKey, key, CKA_TOKEN, &token) == SECSuccess) {
        is_token = token.len >= 1 && token.data[0] != 0;
        SECITEM_FreeItem(&token, PR_FALSE);
    }
    if (!is_token)
        PK11_DestroyObject(key->pkcs11Slot, key->pkcs11ID);
    SECKEY_DestroyPrivateKey(key);
}

/* Key algorithms seen in PKCS#12 files that NSS 3.87 cannot hold. */
static const struct {
    const char *oid;
    const char *name;
    const char *type;
} foreign_keys[] = {
    /* ecPublicKey reaches here only when NSS refused the key: its curve is not one NSS has. */
    {"1.2.840.10045.2.1", "EC on a curve NSS cannot use", "ec"},
    {"1.3.101.110", "X25519", "x25519"},
    {"1.3.101.111", "X448", "x448"},
    {"1.3.101.112", "Ed25519", "ed25519"},
    {"1.3.101.113", "Ed448", "ed448"},
    {"2.16.840.1.101.3.4.4.1", "ML-KEM-512", "ml-kem-512"},
    {"2.16.840.1.101.3.4.4.2", "ML-KEM-768", "ml-kem-768"},
    {"2.16.840.1.101.3.4.4.3", "ML-KEM-1024", "ml-kem-1024"},
    {"2.16.840.1.101.3.4.3.17", "ML-DSA-44", "ml-dsa-44"},
    {"2.16.840.1.101.3.4.3.18", "ML-DSA-65", "ml-dsa-65"},
    {"2.16.840.1.101.3.4.3.19", "ML-DSA-87", "ml-dsa-87"},
    {"1.2.840.10045.2.1.1", "SM2", "sm2"},
    {"1.2.156.10197.1.301", "SM2", "sm2"},
    {"1.2.643.2.2.19", "GOST R 34.10-2001", "gost2001"},
    {"1.2.643.7.1.1.1.1", "GOST R 34.10-2012 (256 bits)", "gost2012-256"},
    {"1.2.643.7.1.1.1.2", "GOST R 34.10-2012 (512 bits)", "gost2012-512"},
    {"1.2.840.113549.1.3.1", "DH (PKCS#3)", "dh"},
    {"1.2.840.10046.2.1", "DH (X9.42)", "dh"},
};

gboolean caback_p12_key_algorithm(const char *oid_dotted, const char **name, const char **type)
{
    for (gsize i = 0; oid_dotted != NULL && i < G_N_ELEMENTS(foreign_keys); i++)
        if (strcmp(oid_dotted, foreign_keys[i].oid) == 0) {
            *name = foreign_keys[i].name;
            *type = foreign_keys[i].type;
            return TRUE;
        }
    *name = *type = "unknown";
    return FALSE;
}

static guint private_key_bits(SECKEYPrivateKey *priv, KeyType type)
{
    SECItem item = {siBuffer, NULL, 0};
    guint bits = 0;
    switch (type) {
    case rsaKey:
    case rsaPssKey: {
        int len = PK11_GetPrivateModulusLen(priv);
        return len > 0 ? (guint)len * 8 : 0;
    }
    case ecKey:
        if (PK11_ReadRawAttribute(PK11_TypePrivKey, priv, CKA_EC_PARAMS, &item) == SECSuccess) {
            int size = SECKEY_ECParamsToKeySize(&item);
            bits = size > 0 ? (guint)size : 0;
            SECITEM_FreeItem(&item, PR_FALSE);
        }
        return bits;
    case dsaKey:
        if (PK11_ReadRawAttribute(PK11_TypePrivKey, priv, CKA_PRIME, &item) == SECSuccess) {
            unsigned int len = item.len;
            while (len > 0 && item.data[item.len - len] == 0)
                len--;
            bits = len * 8;
            SECITEM_FreeItem(&item, PR_FALSE);
        }
        return bits;
    default:
        return 0;
    }
}

gboolean caback_p12_key_describe(CabackP12File *file, CabackP12Key *key, PK11SlotInfo *slot,
                                 KeyType *type, guint *bits, GError **error)
{
    KeyPriv *k = (KeyPriv *)key;
    guint n = (guint)key->index + 1;
    g_autoptr(PK11SlotInfo) internal = NULL;
    if (slot == NULL)
        slot = internal = PK11_GetInternalSlot();

    *type = nullKey;
    *bits = 0;

    /* First the algorithm: without decrypting the key material. */
    g_autoptr(PLArenaPool) arena = PORT_NewArena(1024);
    SECItem oid = {siBuffer, NULL, 0};
    if (k->pub.shrouded) {
        P12EncryptedPrivateKeyInfo epki;
        CK_MECHANISM_TYPE mech;
        g_autoptr(SECItem) param = NULL;
        g_autoptr(PK11SymKey) sym =
            open_shrouded(file, k, arena, &epki, &mech, &param, &oid, error);
        if (sym == NULL)
            return FALSE;
    } else {
        gsize len;
        const guint8 *der = g_bytes_get_data(k->pub.encoded, &len);
        SECItem item = {siBuffer, (unsigned char *)der, (unsigned int)len};
        P12PrivateKeyInfo pki;
        memset(&pki, 0, sizeof(pki));
        if (SEC_ASN1DecodeItem(arena, &pki, p12_pki_template, &item) != SECSuccess ||
            SECITEM_CopyItem(arena, &oid, &pki.algorithm.algorithm) != SECSuccess) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "key %u of %s is malformed", n,
                        file->path);
            return FALSE;
        }
    }
    key->algorithm_oid = file_oid_text(file, &oid);
    KeyKind kind;
    if (!key_kind(&oid, &kind))
        return TRUE; /* a type NSS cannot handle: listed by OID */

    /* Then the size, from a throwaway session copy in the token. The public value only names
     * the object; any bytes do for a key that is destroyed right away. */
    static guint8 dummy_id[1] = {0x01};
    SECItem id_value = {siBuffer, dummy_id, sizeof(dummy_id)};
    KeyKind got;
    GError *local = NULL;
    SECKEYPrivateKey *priv = unwrap_into(file, k, slot, NULL, &id_value, FALSE, &got, NULL, &local);
    if (priv == NULL && kind.type == ecKey && PORT_GetError() == SEC_ERROR_INVALID_KEY) {
        /* An EC key on a curve NSS 3.87 has no code for (P-224, secp256k1, brainpool, explicit
         * parameters): a key NSS cannot hold, listed as such (caback_p12_key_algorithm). */
        g_error_free(local);
        return TRUE;
    }
    if (priv == NULL) {
        g_propagate_error(error, local);
        return FALSE;
    }
    *type = got.type;
    *bits = private_key_bits(priv, got.type);
    caback_p12_key_discard(priv);
    return TRUE;
}
