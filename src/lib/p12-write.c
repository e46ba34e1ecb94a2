/* The PKCS#12 writer: shrouded key bags and certificate bags with caback's attributes, one
 * encrypted certificate safe, and the MAC. The modern profile derives one PBES2 key for the
 * whole file (a shared salt and iteration count, a fresh IV per bag) and, in parallel, the MAC
 * key: two password derivations whatever the number of keys. See doc/design.md. */
#include "config.h"

#include <caback/error.h>
#include <caback/nss-util.h>
#include <caback/p12.h>
#include <caback/parallel.h>

#include "p12-asn1.h"
#include "p12-pbe.h"

#include <secerr.h>
#include <string.h>

#define P12_SALT_LEN 16
#define P12_MODERN_ITERATIONS 600000u
#define P12_LEGACY_ITERATIONS 2048u
/* Larger than the PKCS#8 of any RSA key NSS can hold (RSA-16384 is about 9.5 KiB). */
#define P12_WRAP_BUFFER 32768

SEC_ASN1_MKSUB(SEC_BMPStringTemplate)

struct CabackP12Writer {
    CabackP12WriteOptions options;
    guint iterations;
    PLArenaPool *arena;
    P12Passwords *passwords;
    const SECItem *pw_utf8; /* for PBKDF2 (PBES2, PBMAC1) */
    const SECItem *pw_bmp;  /* for the PKCS#12 KDF (MAC, legacy PBE) */
    P12KeyCache *cache;        /* the writer's own keys */
    P12KeyCache *verify_cache; /* keys for reading the file back (prepare_verify), or NULL */
    P12Jobs *jobs;             /* the derivations running in the background */

    /* Modern profile: the one PBES2 parameter set of the file (salt, iterations, PRF, cipher). */
    SECItem pbes2_salt;
    SECAlgorithmID *pbes2_template; /* with an all-zero IV; only its KDF part identifies keys */
    P12PbeInfo pbes2_info;

    /* The MAC: parameters chosen in caback_p12_writer_new, key derived in the background. */
    P12MacData mac;
    P12MacInfo mac_info;

    GPtrArray *key_bags;  /* of SECItem* in arena: encoded SafeBags */
    GPtrArray *cert_bags; /* idem */
    gboolean finished;
};

static const guint8 der_null[] = {0x05, 0x00};
static const SECItem der_null_item = {siBuffer, (unsigned char *)der_null, sizeof(der_null)};

static gboolean random_item(PLArenaPool *arena, SECItem *item, unsigned int len)
{
    if (SECITEM_AllocItem(arena, item, len) == NULL)
        return FALSE;
    return PK11_GenerateRandom(item->data, (int)len) == SECSuccess;
}

static gboolean set_algid(PLArenaPool *arena, SECAlgorithmID *alg, SECOidTag tag,
                          const SECItem *params)
{
    memset(alg, 0, sizeof(*alg));
    if (!p12_oid_set(arena, &alg->algorithm, tag))
        return FALSE;
    if (params != NULL && SECITEM_CopyItem(arena, &alg->parameters, params) != SECSuccess)
        return FALSE;
    return TRUE;
}

/* PBKDF2-params { salt, iterations, [keyLength], prf } as an AlgorithmIdentifier. */
static gboolean pbkdf2_algid(PLArenaPool *arena, SECAlgorithmID *out, const SECItem *salt,
                             guint iterations, guint key_length, SECOidTag prf)
{
    P12Pbkdf2Params p;
    SECAlgorithmID prf_alg;

    memset(&p, 0, sizeof(p));
    p.salt = *salt;
    if (!p12_uint_set(arena, &p.iterations, iterations))
        return FALSE;
    /* keyLength only where the algorithm cannot tell the size (PBMAC1's HMAC key); OpenSSL
     * leaves it out for AES too. */
    if (key_length > 0 && !p12_uint_set(arena, &p.key_length, key_length))
        return FALSE;
    if (!set_algid(arena, &prf_alg, prf, &der_null_item))
        return FALSE;
    p.prf = &prf_alg;
    SECItem *der = SEC_ASN1EncodeItem(arena, NULL, &p, p12_pbkdf2_params_template);
    return der != NULL && set_algid(arena, out, SEC_OID_PKCS5_PBKDF2, der);
}

/* PBES2 { PBKDF2 (the file's salt and count, HMAC-SHA256), AES-256-CBC with @iv }. */
static SECAlgorithmID *pbes2_algid(CabackP12Writer *w, const SECItem *iv)
{
    P12Pbes2Params params;
    memset(&params, 0, sizeof(params));
    if (!pbkdf2_algid(w->arena, &params.kdf, &w->pbes2_salt, w->iterations, 0, SEC_OID_HMAC_SHA256))
        return NULL;
    SECItem *iv_der = p12_encode_octet_string(w->arena, iv);
    if (iv_der == NULL || !set_algid(w->arena, &params.scheme, SEC_OID_AES_256_CBC, iv_der))
        return NULL;
    SECItem *der = SEC_ASN1EncodeItem(w->arena, NULL, &params, p12_pbes2_params_template);
    SECAlgorithmID *alg = PORT_ArenaZNew(w->arena, SECAlgorithmID);
    if (der == NULL || alg == NULL || !set_algid(w->arena, alg, SEC_OID_PKCS5_PBES2, der))
        return NULL;
    return alg;
}

/* A PKCS#12 PBE (legacy profile) AlgorithmIdentifier with a fresh salt. */
static SECAlgorithmID *legacy_algid(CabackP12Writer *w)
{
    SECItem salt;
    if (!random_item(w->arena, &salt, P12_SALT_LEN))
        return NULL;
    SECAlgorithmID *made = PK11_CreatePBEAlgorithmID(
        SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_3KEY_TRIPLE_DES_CBC, (int)w->iterations, &salt);
    if (made == NULL)
        return NULL;
    SECAlgorithmID *alg = PORT_ArenaZNew(w->arena, SECAlgorithmID);
    SECStatus rv = alg != NULL ? SECOID_CopyAlgorithmID(w->arena, alg, made) : SECFailure;
    SECOID_DestroyAlgorithmID(made, PR_TRUE);
    return rv == SECSuccess ? alg : NULL;
}

/* The AlgorithmIdentifier, symmetric key and cipher for one more encrypted item (a key bag or
 * the certificate safe): the shared PBES2 key with a fresh IV, or a fresh legacy PBE. */
static PK11SymKey *next_cipher(CabackP12Writer *w, SECAlgorithmID **alg_out,
                               CK_MECHANISM_TYPE *mech, SECItem **param, GError **error)
{
    if (w->options.profile == CABACK_P12_LEGACY) {
        SECAlgorithmID *alg = legacy_algid(w);
        if (alg == NULL) {
            caback_error_set_nss(error, CABACK_ERROR_FAILED,
                                 "cannot make the PBE-SHA1-3DES parameters");
            return NULL;
        }
        P12PbeInfo info;
        if (!p12_pbe_info_parse(alg, &info, error))
            return NULL;
        PK11SymKey *key = p12_pbe_key(w->cache, w->pw_bmp, alg, &info, mech, param, error);
        p12_pbe_info_clear(&info);
        *alg_out = alg;
        return key;
    }

    SECItem iv;
    if (!random_item(w->arena, &iv, 16)) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot make a random IV");
        return NULL;
    }
    SECAlgorithmID *alg = pbes2_algid(w, &iv);
    if (alg == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot encode the PBES2 parameters");
        return NULL;
    }
    *alg_out = alg;
    return p12_pbe_key(w->cache, w->pw_utf8, alg, &w->pbes2_info, mech, param, error);
}

/* ---- the MAC parameters ---- */

static gboolean setup_mac(CabackP12Writer *w)
{
    P12MacData *mac = &w->mac;
    memset(mac, 0, sizeof(*mac));
    if (!random_item(w->arena, &mac->salt, P12_SALT_LEN))
        return FALSE;
    /* DER leaves out iterations when it has its DEFAULT value 1. */
    if (w->iterations > 1 && !p12_uint_set(w->arena, &mac->iterations, w->iterations))
        return FALSE;

    unsigned int digest_len = 32;
    if (w->options.mac == CABACK_P12_MAC_PBMAC1) {
        /* RFC 9579: PBKDF2-HMAC-SHA256 with keyLength 32 (required), HMAC-SHA256. Like OpenSSL
         * 3.4 and NSS 3.102, the (ignored) MacData salt and count repeat PBKDF2's. */
        P12Pbes2Params params;
        memset(&params, 0, sizeof(params));
        if (!pbkdf2_algid(w->arena, &params.kdf, &mac->salt, w->iterations, 32,
                          SEC_OID_HMAC_SHA256) ||
            !set_algid(w->arena, &params.scheme, SEC_OID_HMAC_SHA256, &der_null_item))
            return FALSE;
        SECItem *der = SEC_ASN1EncodeItem(w->arena, NULL, &params, p12_pbes2_params_template);
        if (der == NULL || !set_algid(w->arena, &mac->mac.algorithm, SEC_OID_PKCS5_PBMAC1, der))
            return FALSE;
    } else {
        SECOidTag hash = w->options.profile == CABACK_P12_LEGACY ? SEC_OID_SHA1 : SEC_OID_SHA256;
        digest_len = hash == SEC_OID_SHA1 ? 20 : 32;
        if (!set_algid(w->arena, &mac->mac.algorithm, hash, &der_null_item))
            return FALSE;
    }
    /* A placeholder of the right size, so the reader's checks describe the parameters. */
    return SECITEM_AllocItem(w->arena, &mac->mac.digest, digest_len) != NULL;
}

/* The password bytes the MAC is derived from: UTF-8 for PBMAC1's PBKDF2, the BMPString for the
 * PKCS#12 KDF. */
static const SECItem *mac_password(const CabackP12Writer *w)
{
    return w->options.mac == CABACK_P12_MAC_PBMAC1 ? w->pw_utf8 : w->pw_bmp;
}

/* ---- public API ---- */

CabackP12Writer *caback_p12_writer_new(const CabackP12WriteOptions *options,
                                       const CabackSecret *password, GError **error)
{
    CabackP12WriteOptions defaults = {CABACK_P12_MODERN, CABACK_P12_MAC_HMAC, 0};
    if (options == NULL)
        options = &defaults;

    if (password == NULL || password->data == NULL || password->len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "an empty PKCS#12 password is refused: anyone could open the file");
        return NULL;
    }
    if (!g_utf8_validate_len(password->data, password->len, NULL)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "the PKCS#12 password is not valid UTF-8 text; other programs could not "
                    "open the file with it");
        return NULL;
    }
    guint iterations = options->iterations;
    if (iterations == 0)
        iterations =
            options->profile == CABACK_P12_LEGACY ? P12_LEGACY_ITERATIONS : P12_MODERN_ITERATIONS;
    if (iterations > P12_MAX_ITERATIONS) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "%u iterations is more than caback reads back (at most %u)", iterations,
                    P12_MAX_ITERATIONS);
        return NULL;
    }

    g_autoptr(CabackP12Writer) w = g_new0(CabackP12Writer, 1);
    w->options = *options;
    w->iterations = iterations;
    w->arena = PORT_NewArena(4096);
    w->cache = p12_key_cache_new();
    w->key_bags = g_ptr_array_new();
    w->cert_bags = g_ptr_array_new();
    w->passwords = p12_passwords_new(password->data, password->len);
    w->pw_utf8 = w->passwords->variants[0].pbkdf2[0];
    w->pw_bmp = w->passwords->variants[0].bmp;
    if (w->arena == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED, "out of memory");
        return NULL;
    }

    if (!setup_mac(w)) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot make the MAC parameters");
        return NULL;
    }
    if (!p12_mac_info_parse(&w->mac, &w->mac_info, error))
        return NULL;

    if (options->profile == CABACK_P12_MODERN) {
        static const guint8 zero_iv[16];
        SECItem iv = {siBuffer, (unsigned char *)zero_iv, sizeof(zero_iv)};
        if (!random_item(w->arena, &w->pbes2_salt, P12_SALT_LEN) ||
            (w->pbes2_template = pbes2_algid(w, &iv)) == NULL) {
            caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot make the PBES2 parameters");
            return NULL;
        }
        if (!p12_pbe_info_parse(w->pbes2_template, &w->pbes2_info, error))
            return NULL;
    }

    /* The slow derivations, the PBES2 key and the MAC key, start now on other processors: the
     * caller chooses and reads its keys meanwhile, and whatever needs a key first waits for it.
     * A failure shows when the key is used. */
    w->jobs = p12_jobs_new();
    if (options->profile == CABACK_P12_MODERN)
        p12_jobs_add_pbe(w->jobs, w->cache, w->pw_utf8, w->pbes2_template, &w->pbes2_info);
    p12_jobs_add_mac(w->jobs, w->cache, mac_password(w), &w->mac, &w->mac_info);
    return g_steal_pointer(&w);
}

void caback_p12_writer_prepare_verify(CabackP12Writer *writer)
{
    if (writer == NULL || writer->verify_cache != NULL)
        return;
    /* A cache of its own: these keys are derived again from the password, not copied from the
     * writer's, so reading the file with them still proves that the password opens it. */
    writer->verify_cache = p12_key_cache_new();
    if (writer->options.profile == CABACK_P12_MODERN)
        p12_jobs_add_pbe(writer->jobs, writer->verify_cache, writer->pw_utf8,
                         writer->pbes2_template, &writer->pbes2_info);
    p12_jobs_add_mac(writer->jobs, writer->verify_cache, mac_password(writer), &writer->mac,
                     &writer->mac_info);
}

P12KeyCache *p12_writer_verify_cache(CabackP12Writer *writer)
{
    return writer->verify_cache;
}

void caback_p12_writer_free(CabackP12Writer *writer)
{
    if (writer == NULL)
        return;
    /* The jobs borrow the writer's parameters: they end before anything is freed. */
    p12_jobs_free(writer->jobs, TRUE);
    p12_key_cache_free(writer->cache);
    p12_key_cache_free(writer->verify_cache);
    p12_pbe_info_clear(&writer->pbes2_info);
    p12_mac_info_clear(&writer->mac_info);
    p12_passwords_free(writer->passwords);
    if (writer->key_bags != NULL)
        g_ptr_array_unref(writer->key_bags);
    if (writer->cert_bags != NULL)
        g_ptr_array_unref(writer->cert_bags);
    if (writer->arena != NULL)
        PORT_FreeArena(writer->arena, PR_TRUE);
    g_free(writer);
}

static SECItem *bmp_value(PLArenaPool *arena, const char *text)
{
    g_autoptr(GByteArray) bmp = p12_utf8_to_bmp(text, strlen(text), FALSE);
    if (bmp == NULL)
        return NULL;
    SECItem item = {siBMPString, bmp->data, bmp->len};
    return SEC_ASN1EncodeItem(arena, NULL, &item, SEC_BMPStringTemplate);
}

static SECItem **bag_attributes(PLArenaPool *arena, const char *friendly_name,
                                const SECItem *local_key_id, const char *trust_flags,
                                GError **error)
{
    SECItem **attrs = PORT_ArenaZNewArray(arena, SECItem *, 4);
    int n = 0;

    if (attrs == NULL)
        goto nomem;
    if (friendly_name != NULL && *friendly_name != '\0') {
        SECItem *value = bmp_value(arena, friendly_name);
        if (value == NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                        "the friendly name \"%s\" is not valid UTF-8", friendly_name);
            return NULL;
        }
        SECOidData *oid = SECOID_FindOIDByTag(SEC_OID_PKCS9_FRIENDLY_NAME);
        if ((attrs[n++] = p12_encode_attribute(arena, &oid->oid, value)) == NULL)
            goto nomem;
    }
    if (local_key_id != NULL && local_key_id->len > 0) {
        SECItem *value = p12_encode_octet_string(arena, local_key_id);
        SECOidData *oid = SECOID_FindOIDByTag(SEC_OID_PKCS9_LOCAL_KEY_ID);
        if (value == NULL || (attrs[n++] = p12_encode_attribute(arena, &oid->oid, value)) == NULL)
            goto nomem;
    }
    if (trust_flags != NULL && *trust_flags != '\0') {
        /* Dogtag/JSS (PKCS12Util.createCertBagAttrs) write the NSS trust string as a BMPString
         * in the attribute 2.16.840.1.113730.5.1.1.1 and read it back the same way. */
        SECItem *value = bmp_value(arena, trust_flags);
        if (value == NULL ||
            (attrs[n++] = p12_encode_attribute(arena, &p12_oid_trust_flags, value)) == NULL)
            goto nomem;
    }
    if (n == 0)
        return NULL;
    p12_der_sort_set(attrs);
    return attrs;

nomem:
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED, "cannot encode the bag attributes");
    return NULL;
}

static SECItem *encode_bag(PLArenaPool *arena, SECOidTag type, const SECItem *value,
                           SECItem **attrs)
{
    P12SafeBagOut bag;
    memset(&bag, 0, sizeof(bag));
    if (!p12_oid_set(arena, &bag.bag_id, type))
        return NULL;
    bag.value = *value;
    bag.attributes = attrs;
    return SEC_ASN1EncodeItem(arena, NULL, &bag, p12_safe_bag_out_template);
}

static gboolean check_writable(CabackP12Writer *writer, GError **error)
{
    if (writer == NULL || writer->finished) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "internal error: the PKCS#12 writer was already finished");
        return FALSE;
    }
    return TRUE;
}

/* A session copy of @key (on another token) in NSS's internal slot: the token wraps it with a
 * fresh AES key by AES key wrap with padding (RFC 5649), which NSS's own token unwraps. NULL when
 * the token cannot do that. */
static SECKEYPrivateKey *copy_to_internal(SECKEYPrivateKey *key, void *wincx)
{
    CK_KEY_TYPE type;
    CK_ATTRIBUTE_TYPE usage[] = {CKA_SIGN, CKA_DECRYPT};
    int n_usage = 2;

    switch (key->keyType) {
    case rsaKey:
        type = CKK_RSA;
        break;
    case ecKey:
        type = CKK_EC;
        n_usage = 1;
        break;
    default:
        return NULL;
    }
    g_autoptr(PK11SlotInfo) internal = PK11_GetInternalSlot();
    /* Made on the key's token (so that the token wraps with its own key, allowed to wrap) and
     * readable (insensitive, extractable), so that its value can go to NSS's own token. */
    g_autoptr(PK11SymKey) kek = PK11_TokenKeyGenWithFlags(
        key->pkcs11Slot, CKM_AES_KEY_GEN, NULL, 32, NULL, CKF_WRAP | CKF_UNWRAP,
        PK11_ATTR_SESSION | PK11_ATTR_EXTRACTABLE | PK11_ATTR_INSENSITIVE | PK11_ATTR_PRIVATE,
        wincx);
    if (kek == NULL)
        return NULL;
    SECItem wrapped = {siBuffer, NULL, 0};
    if (SECITEM_AllocItem(NULL, &wrapped, P12_WRAP_BUFFER) == NULL)
        return NULL;
    SECKEYPrivateKey *copy = NULL;
    if (PK11_WrapPrivKey(key->pkcs11Slot, kek, key, CKM_AES_KEY_WRAP_PAD, NULL, &wrapped, wincx) ==
            SECSuccess &&
        wrapped.len > 0) {
        SECItem *id = PK11_GetLowLevelKeyIDForPrivateKey(key);
        SECItem id_value = {siBuffer, (unsigned char *)"caback", 6};
        /* The one-time wrapping key goes to NSS's token by value (NSS's own move of a key
         * between tokens does the same); it protects only this one transfer. */
        g_autoptr(PK11SymKey) local_kek = NULL;
        if (PK11_ExtractKeyValue(kek) == SECSuccess) {
            SECItem *value = PK11_GetKeyData(kek);
            if (value != NULL)
                local_kek = PK11_ImportSymKey(internal, CKM_AES_CBC, PK11_OriginUnwrap, CKA_UNWRAP,
                                              value, wincx);
        }
        /* PKCS#11 defines CKM_AES_KEY_WRAP_PAD as AES key wrap with PKCS#7 padding, yet tokens
         * such as SoftHSM2 do RFC 5649 under it (CKM_AES_KEY_WRAP_KWP): NSS's token knows both,
         * and a wrong guess only fails the unwrap. */
        static const CK_MECHANISM_TYPE unwrap_mechs[] = {CKM_AES_KEY_WRAP_KWP,
                                                         CKM_AES_KEY_WRAP_PAD};
        for (guint m = 0; local_kek != NULL && copy == NULL && m < G_N_ELEMENTS(unwrap_mechs); m++)
            copy = PK11_UnwrapPrivKey(internal, local_kek, unwrap_mechs[m], NULL, &wrapped, NULL,
                                      id != NULL && id->len > 0 ? id : &id_value, PR_FALSE, PR_TRUE,
                                      type, usage, n_usage, wincx);
        if (id != NULL)
            SECITEM_FreeItem(id, PR_TRUE);
    }
    SECITEM_ZfreeItem(&wrapped, PR_FALSE);
    return copy;
}

/* One key of caback_p12_writer_add_keys on its way into a bag. */
typedef struct {
    const CabackP12KeyIn *in;
    SECAlgorithmID *alg; /* in the writer's arena */
    CK_MECHANISM_TYPE mech;
    SECItem *param;
    PK11SymKey *wrap_key;
    SECKEYPrivateKey *copy; /* a session copy of the key to wrap instead, or NULL */
    SECItem wrapped; /* the token's output, its own size (heap; freed with the job) */
    gboolean ok;
    int nss_error;
} WrapJob;

/* The token encrypts the key (C_WrapKey): its clear form never reaches caback's memory. Runs on
 * any thread: it touches only its own job (NSS's error code is per thread, so it is kept). */
static void wrap_one(WrapJob *job, void *wincx)
{
    SECKEYPrivateKey *key = job->copy != NULL ? job->copy : job->in->key;
    g_autoptr(SECKEYPrivateKey) copy = NULL;
    /* The token needs room for the largest key; the job keeps only what it wrote (a buffer of
     * that size per key made a backup of 10,000 keys take 320 MB more than its keys). */
    SECItem buffer = {siBuffer, NULL, 0};

    if (SECITEM_AllocItem(NULL, &buffer, P12_WRAP_BUFFER) == NULL) {
        job->ok = FALSE;
        job->nss_error = SEC_ERROR_NO_MEMORY;
        return;
    }
    job->ok = PK11_WrapPrivKey(key->pkcs11Slot, job->wrap_key, key, job->mech, job->param,
                               &buffer, wincx) == SECSuccess &&
              buffer.len > 0;
    if (!job->ok && job->copy == NULL && !PK11_IsInternal(key->pkcs11Slot)) {
        /* Many HSMs wrap private keys only with AES key wrap, not with the PBE cipher of the
         * file: move the key (wrapped, never in clear here) into a session object of NSS's own
         * token and wrap it from there. */
        copy = copy_to_internal(key, wincx);
        buffer.len = P12_WRAP_BUFFER;
        job->ok = copy != NULL &&
                  PK11_WrapPrivKey(copy->pkcs11Slot, job->wrap_key, copy, job->mech, job->param,
                                   &buffer, wincx) == SECSuccess &&
                  buffer.len > 0;
    }
    if (!job->ok)
        job->nss_error = PORT_GetError();
    else if (SECITEM_CopyItem(NULL, &job->wrapped, &buffer) != SECSuccess) {
        job->ok = FALSE;
        job->nss_error = SEC_ERROR_NO_MEMORY;
    }
    buffer.len = P12_WRAP_BUFFER;
    SECITEM_ZfreeItem(&buffer, PR_FALSE);
}

typedef struct {
    WrapJob *jobs;
    void *wincx;
} WrapWork;

static void wrap_item(gpointer data, guint i)
{
    WrapWork *work = data;
    wrap_one(&work->jobs[i], work->wincx);
}

/* Wrap every job, spread over the processors: a token takes tens of milliseconds per RSA key
 * (NSS's softoken checks the key as it exports it), which for a large CA outweighs the key
 * derivations. */
static void wrap_all(WrapJob *jobs, guint n, void *wincx)
{
    WrapWork work = {jobs, wincx};

    /* A wrapping key on another token than the private key is copied there by PK11_WrapPrivKey,
     * which first reads the key's value into the shared PK11SymKey without a lock: two threads
     * doing so at once each store a buffer, and one is lost. Read each such value here, on one
     * thread (NSS does this read anyway, and keeps the value with the key until it is freed). */
    for (guint i = 0; i < n; i++) {
        if (jobs[i].wrap_key == NULL)
            continue;
        SECKEYPrivateKey *key = jobs[i].copy != NULL ? jobs[i].copy : jobs[i].in->key;
        g_autoptr(PK11SlotInfo) slot = PK11_GetSlotFromKey(jobs[i].wrap_key);
        if (slot != key->pkcs11Slot)
            (void)PK11_ExtractKeyValue(jobs[i].wrap_key); /* a sensitive key stays unread */
    }
    caback_parallel_for(0, n, wrap_item, &work, "caback-wrap");
}

static const char *key_who(const CabackP12KeyIn *in)
{
    return in->friendly_name != NULL ? in->friendly_name : "(no name)";
}

/* Check that the key of @job may leave its token; FALSE with @error set. */
static gboolean check_extractable(WrapJob *job, GError **error)
{
    SECKEYPrivateKey *key = job->in->key;
    const char *token = key->pkcs11Slot != NULL ? PK11_GetTokenName(key->pkcs11Slot) : "?";

    /* A key marked not extractable cannot be wrapped by any means: say so plainly. */
    SECItem attr = {siBuffer, NULL, 0};
    if (PK11_ReadRawAttribute(PK11_TypePrivKey, key, CKA_EXTRACTABLE, &attr) == SECSuccess) {
        gboolean extractable = attr.len >= 1 && attr.data[0] != 0;
        SECITEM_FreeItem(&attr, PR_FALSE);
        if (!extractable) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_EXPORTABLE,
                        "the private key of \"%s\" cannot leave token \"%s\": it is marked not "
                        "extractable (CKA_EXTRACTABLE false), so no PKCS#12 file can hold it; "
                        "back up the token itself with its vendor's tools",
                        key_who(job->in), token);
            return FALSE;
        }
    }
    return TRUE;
}

/* A session object copied from @key, when @key is a permanent object of NSS's own database
 * (softoken); NULL otherwise or when the copy fails (the key is then wrapped where it is). */
static SECKEYPrivateKey *session_copy(SECKEYPrivateKey *key)
{
    if (key->pkcs11Slot == NULL || !PK11_IsInternal(key->pkcs11Slot))
        return NULL;
    int saved = PORT_GetError();
    SECItem token = {siBuffer, NULL, 0};
    gboolean permanent = FALSE;
    if (PK11_ReadRawAttribute(PK11_TypePrivKey, key, CKA_TOKEN, &token) == SECSuccess) {
        permanent = token.len >= 1 && token.data[0] != 0;
        SECITEM_FreeItem(&token, PR_FALSE);
    }
    if (!permanent) {
        PORT_SetError(saved);
        return NULL;
    }
    SECKEYPrivateKey *copy = PK11_CopyTokenPrivKeyToSessionPrivKey(NULL, key);
    PORT_SetError(saved);
    return copy;
}

typedef struct {
    WrapJob *jobs;
    guint n;
} CopyWork;

/* Lane @lane of copy_all: the keys it reads, through the opening of the database it uses. */
static void copy_lane(gpointer data, guint lane)
{
    CopyWork *work = data;
    for (guint j = 0; j < work->n; j++) {
        const CabackP12KeyIn *in = work->jobs[j].in;
        guint its_lane = in->reader != NULL ? j % 2 : 0;
        if (its_lane == lane)
            work->jobs[j].copy = session_copy(lane == 1 ? in->reader : in->key);
    }
}

/* Copy every key of NSS's own database into a session object, which then wraps in well under a
 * millisecond. Reading a key out of key4.db is the slow part of its export: softoken decrypts
 * and checks each private attribute with its own PBKDF2 (about 4 ms for an EC key, 28 ms for
 * RSA), one key at a time per opening of the database. Keys that have a second opening
 * (in->reader) alternate between the two, on two processors; this runs while the file's keys
 * are still being derived on the others. A key that cannot be copied is wrapped where it is. */
static void copy_all(WrapJob *jobs, guint n)
{
    CopyWork work = {jobs, n};
    guint lanes = 1;

    for (guint j = 1; j < n && lanes == 1; j += 2)
        if (jobs[j].in->reader != NULL)
            lanes = 2;
    caback_parallel_for(0, lanes, copy_lane, &work, "caback-read");
}

/* Ready @job's cipher (parameters in the writer's arena; waits for the file's key when it is
 * still being derived); FALSE with @error set. */
static gboolean prepare_wrap(CabackP12Writer *writer, WrapJob *job, GError **error)
{
    job->wrap_key = next_cipher(writer, &job->alg, &job->mech, &job->param, error);
    return job->wrap_key != NULL;
}

/* The shrouded key bag of a wrapped @job, added to the writer. */
static gboolean add_key_bag(CabackP12Writer *writer, const WrapJob *job, GError **error)
{
    P12EncryptedPrivateKeyInfo epki = {*job->alg, job->wrapped};
    SECItem *epki_der = SEC_ASN1EncodeItem(writer->arena, NULL, &epki, p12_epki_template);
    GError *attr_error = NULL;
    SECItem **attrs = bag_attributes(writer->arena, job->in->friendly_name, job->in->local_key_id,
                                     NULL, &attr_error);
    if (attr_error != NULL) {
        g_propagate_error(error, attr_error);
        return FALSE;
    }
    SECItem *bag = epki_der != NULL
                       ? encode_bag(writer->arena, SEC_OID_PKCS12_V1_PKCS8_SHROUDED_KEY_BAG_ID,
                                    epki_der, attrs)
                       : NULL;
    if (bag == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot encode the key bag of \"%s\"",
                             key_who(job->in));
        return FALSE;
    }
    g_ptr_array_add(writer->key_bags, bag);
    return TRUE;
}

gboolean caback_p12_writer_add_keys(CabackP12Writer *writer, const CabackP12KeyIn *keys, guint n,
                                    void *wincx, guint *failed, GError **error)
{
    if (!check_writable(writer, error))
        return FALSE;
    g_autofree WrapJob *jobs = g_new0(WrapJob, MAX(n, 1));
    gboolean ok = TRUE;
    guint i;

    for (i = 0; i < n && ok; i++) {
        jobs[i].in = &keys[i];
        ok = check_extractable(&jobs[i], error);
    }
    /* The bags are the same whether a key is wrapped from a copy or where it is. */
    if (ok)
        copy_all(jobs, n);
    /* Parameters in order (they use the writer's arena), the wraps side by side, the bags in
     * order again: the file is the same as one key at a time would make it. */
    for (i = 0; i < n && ok; i++)
        ok = prepare_wrap(writer, &jobs[i], error);
    if (ok)
        wrap_all(jobs, n, wincx);
    for (i = ok ? 0 : i - 1; ok && i < n; i++) {
        const CabackP12KeyIn *in = &keys[i];
        if (!jobs[i].ok) {
            const char *token =
                in->key->pkcs11Slot != NULL ? PK11_GetTokenName(in->key->pkcs11Slot) : "?";
            caback_error_set_nss_code(error, CABACK_ERROR_NOT_EXPORTABLE, jobs[i].nss_error,
                                      "token \"%s\" will not export (wrap) the private key of "
                                      "\"%s\"",
                                      token, key_who(in));
            ok = FALSE;
            break;
        }
        ok = add_key_bag(writer, &jobs[i], error);
        if (!ok)
            break;
    }
    if (!ok && failed != NULL)
        *failed = i;
    for (guint j = 0; j < n; j++) {
        if (jobs[j].copy != NULL)
            SECKEY_DestroyPrivateKey(jobs[j].copy);
        if (jobs[j].wrap_key != NULL)
            PK11_FreeSymKey(jobs[j].wrap_key);
        if (jobs[j].param != NULL)
            SECITEM_FreeItem(jobs[j].param, PR_TRUE);
        SECITEM_FreeItem(&jobs[j].wrapped, PR_FALSE);
    }
    return ok;
}

gboolean caback_p12_writer_add_key(CabackP12Writer *writer, SECKEYPrivateKey *key,
                                   const char *friendly_name, const SECItem *local_key_id,
                                   void *wincx, GError **error)
{
    CabackP12KeyIn in = {key, friendly_name, local_key_id};
    return caback_p12_writer_add_keys(writer, &in, 1, wincx, NULL, error);
}

gboolean caback_p12_writer_add_cert(CabackP12Writer *writer, CERTCertificate *cert,
                                    const char *friendly_name, const SECItem *local_key_id,
                                    const char *trust_flags, GError **error)
{
    if (!check_writable(writer, error))
        return FALSE;
    if (cert == NULL || cert->derCert.len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "internal error: no certificate to add");
        return FALSE;
    }
    const char *who = friendly_name != NULL ? friendly_name : cert->subjectName;

    P12TypedValue cert_bag;
    memset(&cert_bag, 0, sizeof(cert_bag));
    SECItem *octets = p12_encode_octet_string(writer->arena, &cert->derCert);
    if (octets == NULL || !p12_oid_set(writer->arena, &cert_bag.type_id, SEC_OID_PKCS9_X509_CERT)) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot encode certificate \"%s\"", who);
        return FALSE;
    }
    cert_bag.value = *octets;
    SECItem *value = SEC_ASN1EncodeItem(writer->arena, NULL, &cert_bag, p12_typed_value_template);
    GError *attr_error = NULL;
    SECItem **attrs =
        bag_attributes(writer->arena, friendly_name, local_key_id, trust_flags, &attr_error);
    if (attr_error != NULL) {
        g_propagate_error(error, attr_error);
        return FALSE;
    }
    SECItem *bag = value != NULL
                       ? encode_bag(writer->arena, SEC_OID_PKCS12_V1_CERT_BAG_ID, value, attrs)
                       : NULL;
    if (bag == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot encode the bag of \"%s\"", who);
        return FALSE;
    }
    g_ptr_array_add(writer->cert_bags, bag);
    return TRUE;
}

/* SEQUENCE OF the encodings in @items. */
static SECItem *encode_sequence(PLArenaPool *arena, GPtrArray *items)
{
    SECItem **array = PORT_ArenaZNewArray(arena, SECItem *, items->len + 1);
    if (array == NULL)
        return NULL;
    for (guint i = 0; i < items->len; i++)
        array[i] = items->pdata[i];
    return SEC_ASN1EncodeItem(arena, NULL, &array, p12_sequence_of_any_template);
}

static SECItem *encrypted_safe(CabackP12Writer *w, SECItem *safe, GError **error)
{
    SECAlgorithmID *alg = NULL;
    CK_MECHANISM_TYPE mech;
    g_autoptr(SECItem) param = NULL;
    g_autoptr(PK11SymKey) key = next_cipher(w, &alg, &mech, &param, error);
    if (key == NULL)
        return NULL;
    SECItem *encrypted = p12_encrypt(w->arena, key, mech, param, safe);
    if (encrypted == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot encrypt the certificate safe");
        return NULL;
    }
    P12EncryptedData ed;
    memset(&ed, 0, sizeof(ed));
    if (!p12_uint_set(w->arena, &ed.version, 0) ||
        !p12_oid_set(w->arena, &ed.info.content_type, SEC_OID_PKCS7_DATA))
        return NULL;
    ed.info.algorithm = *alg;
    ed.info.encrypted = *encrypted;
    SECItem *der = SEC_ASN1EncodeItem(w->arena, NULL, &ed, p12_encrypted_data_template);
    if (der == NULL)
        return NULL;
    return p12_encode_content_info(w->arena, SEC_OID_PKCS7_ENCRYPTED_DATA, der);
}

GBytes *caback_p12_writer_finish(CabackP12Writer *writer, GError **error)
{
    if (!check_writable(writer, error))
        return NULL;
    writer->finished = TRUE;
    PLArenaPool *arena = writer->arena;
    g_autoptr(GPtrArray) contents = g_ptr_array_new();

    /* Certificates first, in one encrypted safe (as OpenSSL orders them); then the key bags in
     * a plain safe, each bag being encrypted on its own. */
    if (writer->cert_bags->len > 0) {
        SECItem *safe = encode_sequence(arena, writer->cert_bags);
        SECItem *ci = safe != NULL ? encrypted_safe(writer, safe, error) : NULL;
        if (ci == NULL) {
            if (error != NULL && *error == NULL)
                caback_error_set_nss(error, CABACK_ERROR_FAILED,
                                     "cannot encode the certificate safe");
            return NULL;
        }
        g_ptr_array_add(contents, ci);
    }
    if (writer->key_bags->len > 0) {
        SECItem *safe = encode_sequence(arena, writer->key_bags);
        SECItem *octets = safe != NULL ? p12_encode_octet_string(arena, safe) : NULL;
        SECItem *ci =
            octets != NULL ? p12_encode_content_info(arena, SEC_OID_PKCS7_DATA, octets) : NULL;
        if (ci == NULL) {
            caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot encode the key safe");
            return NULL;
        }
        g_ptr_array_add(contents, ci);
    }

    SECItem *auth_safe = encode_sequence(arena, contents);
    SECItem *auth_octets = auth_safe != NULL ? p12_encode_octet_string(arena, auth_safe) : NULL;
    SECItem *auth_ci = auth_octets != NULL
                           ? p12_encode_content_info(arena, SEC_OID_PKCS7_DATA, auth_octets)
                           : NULL;
    if (auth_ci == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot encode the authenticated safe");
        return NULL;
    }

    /* The MAC covers the contents of the authSafe OCTET STRING. */
    CK_MECHANISM_TYPE hmac = CKM_INVALID_MECHANISM;
    g_autoptr(PK11SymKey) mac_key =
        p12_mac_key_cached(writer->cache, &writer->mac, &writer->mac_info, mac_password(writer),
                           &hmac);
    if (mac_key == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "NSS cannot derive the MAC key (%s)",
                             writer->mac_info.description);
        return NULL;
    }
    guint8 digest[64];
    unsigned int digest_len = 0;
    if (!p12_hmac(mac_key, hmac, auth_safe, digest, &digest_len) ||
        digest_len != writer->mac.mac.digest.len) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot compute the MAC");
        return NULL;
    }
    memcpy(writer->mac.mac.digest.data, digest, digest_len);
    SECItem *mac_der = SEC_ASN1EncodeItem(arena, NULL, &writer->mac, p12_mac_data_template);

    P12PfxOut pfx;
    memset(&pfx, 0, sizeof(pfx));
    SECItem *der = NULL;
    if (mac_der != NULL && p12_uint_set(arena, &pfx.version, 3)) {
        pfx.auth_safe = *auth_ci;
        pfx.mac_data = *mac_der;
        der = SEC_ASN1EncodeItem(arena, NULL, &pfx, p12_pfx_out_template);
    }
    if (der == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot encode the PKCS#12 file");
        return NULL;
    }
    return g_bytes_new(der->data, der->len);
}
