/* Internal to caback's PKCS#12 codec: passwords as the different writers encode them, the PBE
 * algorithms (PKCS#12 PBE and PBES2/PBKDF2) with a per-file cache of derived keys, and the MAC
 * (classic PKCS#12 HMAC and RFC 9579 PBMAC1). Every derivation, cipher and HMAC is done by NSS. */
#pragma once

#include <glib.h>

#include "p12-asn1.h"

#include <pk11pub.h>
#include <secoid.h>

G_BEGIN_DECLS

/* Iteration counts above this are refused, so a hostile file cannot make caback spin for hours
 * (10,000,000 PBKDF2-HMAC-SHA256 iterations take a few seconds). */
#define P12_MAX_ITERATIONS 10000000u

/* ---- key-derivation work: one account per file ----
 *
 * Work is counted in iterations of PBKDF2 / the PKCS#12 KDF: what one derivation costs is
 * p12_kdf_work_iterations(count) for those, p12_kdf_work_scrypt(N, r, p) for scrypt. Every
 * derivation a reader asks for is charged first with p12_kdf_charge to the budget of the file's
 * P12KeyCache (caback_p12_limits' max_kdf_work when the cache was made), each distinct (password,
 * parameters) pair once, so that a file cannot make caback derive more than that in all. A
 * derivation that P12PbeInfo / P12MacInfo describe carries its cost in their `work` field. */

/* The cost of one PBKDF2 or PKCS#12-KDF derivation of @iterations iterations. */
guint64 p12_kdf_work_iterations(guint64 iterations);

/* The cost of one scrypt derivation (RFC 7914) with cost @n, block size @r and parallelism @p,
 * in PBKDF2-HMAC-SHA256 iterations of about the same CPU time: 2·N·r·p (each of the 2·N·r·p
 * BlockMix halves is one Salsa20/8 core, each PBKDF2 iteration two SHA-256 compressions of about
 * the same cost), saturating at G_MAXUINT64. (Its memory, 128·N·r bytes, is capped apart.) */
guint64 p12_kdf_work_scrypt(guint64 n, guint64 r, guint64 p);

typedef struct P12KeyCache P12KeyCache;

/* One derivation to charge: the password bytes, what identifies its parameters (a P12PbeInfo's
 * or P12MacInfo's cache_id) and its cost. */
typedef struct {
    const SECItem *password;
    GBytes *id;
    guint64 work;
} P12KdfCharge;

/* Charge the @n derivations of @charges to @cache's budget, all or none: those charged before
 * (same password bytes and id) cost nothing again. Fails with CABACK_ERROR_PKCS12, charging
 * nothing, when the file's total would pass the cap; the message names @what (e.g. "the keys of
 * /srv/b.p12"), the total, the cap and --max-kdf-work. Thread-safe. */
gboolean p12_kdf_charge(P12KeyCache *cache, const P12KdfCharge *charges, guint n,
                        const char *what, GError **error);

/* The work charged to @cache so far (for messages and tests). */
guint64 p12_kdf_spent(P12KeyCache *cache);

/* ---- passwords ---- */

/* One way a writer may have turned the user's password into bytes. */
typedef struct {
    const char *name;   /* for messages, e.g. "BMPString (UTF-16BE)" */
    SECItem *bmp;       /* fed to the PKCS#12 KDF (classic MAC, PKCS#12 PBE) */
    SECItem *pbkdf2[2]; /* fed to PBKDF2 (PBES2, PBMAC1), most likely first; NULL when unused */
} P12PasswordVariant;

typedef struct {
    P12PasswordVariant variants[3];
    guint n_variants;
    GPtrArray *items; /* owns every SECItem above; wiped on free */
} P12Passwords;

/* The variants to try for @password (@len bytes, UTF-8 expected; NULL or empty means the empty
 * password): the standard encodings (BMPString with terminator for the PKCS#12 KDF, UTF-8 for
 * PBKDF2, with NSS < 3.31's BMPString-into-PBKDF2 as a fallback), OpenSSL 1.0.2's byte-widened
 * BMPString for non-ASCII passwords, and the NULL password (no bytes) for an empty one. */
P12Passwords *p12_passwords_new(const char *password, gsize len);
void p12_passwords_free(P12Passwords *passwords);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(P12Passwords, p12_passwords_free)

/* ---- PBE algorithms ---- */

typedef enum {
    P12_PBE_PKCS12, /* a PKCS#12 (or PKCS#5 v1) PBE OID: key and IV from the password */
    P12_PBE_PBES2,  /* PBES2: PBKDF2 (or scrypt) key, IV in the parameters */
    P12_PBE_PBES1,  /* PKCS#5 v1 with SHA-1 (DES, RC2), which NSS has no usable mechanism for:
                       NSS's PBKDF1 derives the 16 bytes, caback splits key and IV */
} P12PbeKind;

/* scrypt (RFC 7914) as the PBES2 key derivation is bounded so that one derivation needs at most
 * 1 GiB of memory (128 * r * (N + p + 2) bytes) and N * r * p at most this many block mixes
 * (2^20 * 8 * 2: a few seconds), the same order as P12_MAX_ITERATIONS of PBKDF2. */
#define P12_SCRYPT_MAX_MEMORY (G_GUINT64_CONSTANT(1) << 30)
#define P12_SCRYPT_MAX_WORK (G_GUINT64_CONSTANT(1) << 24)

typedef struct {
    P12PbeKind kind;
    SECOidTag alg_tag;    /* the AlgorithmIdentifier's OID */
    SECOidTag cipher_tag; /* the cipher */
    SECOidTag prf_tag;    /* PBES2 only: PBKDF2's PRF */
    guint64 iterations;   /* PBKDF2 / PKCS#12 KDF iterations; scrypt: N */
    gboolean raw_password; /* the KDF takes the password bytes as they are (PBES2, PKCS#5 v1),
                              not the BMPString of the PKCS#12 KDF */
    gboolean scrypt;       /* PBES2 with scrypt: the fields below, derived by libscrypt-kdf */
    guint64 scrypt_n;
    guint32 scrypt_r, scrypt_p;
    guint key_length;      /* scrypt: the key bytes to derive */
    guint64 work;          /* the derivation's cost (see p12_kdf_charge) */
    GBytes *cache_id;  /* identifies the derivation (not the IV) */
    char *description; /* "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), 600000 iterations" */
} P12PbeInfo;

/* Check and describe the PBE AlgorithmIdentifier @alg. Fails with CABACK_ERROR_PKCS12 naming
 * the algorithm by name and OID when it is malformed or caback cannot do it (an unknown PRF or
 * cipher, a mechanism this NSS build lacks, an iteration count above P12_MAX_ITERATIONS, scrypt
 * parameters beyond P12_SCRYPT_MAX_MEMORY / P12_SCRYPT_MAX_WORK). */
gboolean p12_pbe_info_parse(const SECAlgorithmID *alg, P12PbeInfo *info, GError **error);
void p12_pbe_info_clear(P12PbeInfo *info);

/* Derived keys of one file (or one writer), keyed by (password bytes, derivation parameters):
 * bags that share a parameter set share one derivation. Thread-safe. An entry is claimed by the
 * first thread that asks for it; others asking for the same key wait for that derivation instead
 * of starting their own. Entries keep their own copy of the password bytes (wiped on free), so a
 * cache may outlive the P12Passwords it was filled from and serve another reader of the same
 * password. Reference-counted: p12_key_cache_free drops one reference. */
P12KeyCache *p12_key_cache_new(void);
P12KeyCache *p12_key_cache_ref(P12KeyCache *cache);
void p12_key_cache_free(P12KeyCache *cache);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(P12KeyCache, p12_key_cache_free)

/* TRUE when the key of (@password, @id) is derived (or failed): asking for it will not wait.
 * @id is a P12PbeInfo's cache_id. */
gboolean p12_key_cache_ready(P12KeyCache *cache, const SECItem *password, GBytes *id);

/* The symmetric key and cipher for @alg (described by @info) under @password: derived by NSS at
 * the first request for these parameters, then taken from @cache. Returns a new reference;
 * *mech is the padded cipher mechanism and *param its parameter (caller frees with
 * SECITEM_FreeItem(param, PR_TRUE)). Fails with CABACK_ERROR_PKCS12 and NSS's error. */
PK11SymKey *p12_pbe_key(P12KeyCache *cache, const SECItem *password, const SECAlgorithmID *alg,
                        const P12PbeInfo *info, CK_MECHANISM_TYPE *mech, SECItem **param,
                        GError **error);

/* One derivation that may be done ahead of time. */
typedef struct {
    const SECItem *password;
    const SECAlgorithmID *alg;
    const P12PbeInfo *info;
} P12PbeRequest;

/* Derive, in parallel on the available processors, every key of @requests (an array of
 * P12PbeRequest) that @cache does not hold yet, while the calling thread runs @also(@data) (may
 * be NULL). Failures are not reported here: a later p12_pbe_key reports them. */
void p12_pbe_prefetch(P12KeyCache *cache, GArray *requests, void (*also)(gpointer data),
                      gpointer data);

/* Derivations started in the background, on up to one thread per processor, in the order they
 * are added; a thread that needs one of these keys meanwhile waits for it (through the cache)
 * rather than deriving it twice. When the system refuses every thread (a process or memory
 * limit), each job runs on the calling thread when it is added: the same work, serially. The password, AlgorithmIdentifier, info and MAC
 * data given to p12_jobs_add_* are borrowed: they must stay valid until p12_jobs_free. */
typedef struct P12Jobs P12Jobs;
P12Jobs *p12_jobs_new(void);
void p12_jobs_add_pbe(P12Jobs *jobs, P12KeyCache *cache, const SECItem *password,
                      const SECAlgorithmID *alg, const P12PbeInfo *info);
/* Wait for every job; with @cancel, jobs not started yet are dropped (they leave no entry, so
 * a later request derives its key itself). NULL is allowed. */
void p12_jobs_free(P12Jobs *jobs, gboolean cancel);

/* Decrypt @in with @key / @mech / @param. Returns the plaintext (caller frees with
 * SECITEM_ZfreeItem(item, PR_TRUE)) or NULL with NSS's error set (bad padding with a wrong key). */
SECItem *p12_decrypt(PK11SymKey *key, CK_MECHANISM_TYPE mech, SECItem *param, const SECItem *in);

/* Encrypt @in; the result is allocated in @arena. NULL with NSS's error set. */
SECItem *p12_encrypt(PLArenaPool *arena, PK11SymKey *key, CK_MECHANISM_TYPE mech, SECItem *param,
                     const SECItem *in);

/* A short name for a cipher or PBE tag ("AES-256-CBC", "PBE-SHA1-3DES"), or NULL. */
const char *p12_alg_name(SECOidTag tag);

/* ---- MAC ---- */

typedef struct {
    gboolean pbmac1;
    SECOidTag hash_tag; /* classic: the digest (SHA-256...); PBMAC1: the HMAC's digest */
    SECOidTag prf_tag;  /* PBMAC1: PBKDF2's PRF (an HMAC tag) */
    guint64 iterations;
    guint64 work;      /* the MAC key's derivation cost (see p12_kdf_charge) */
    GBytes *cache_id;  /* identifies the MAC key's derivation */
    char *description; /* "HMAC-SHA256, 600000 iterations", "PBMAC1 (PBKDF2-HMAC-SHA256,
                          HMAC-SHA256), 600000 iterations" */
} P12MacInfo;

/* Check and describe @mac. Fails with CABACK_ERROR_PKCS12 for an unknown or malformed MAC
 * algorithm (including PBMAC1 without its required keyLength). */
gboolean p12_mac_info_parse(const P12MacData *mac, P12MacInfo *info, GError **error);
void p12_mac_info_clear(P12MacInfo *info);

/* Derive the MAC key of @mac for @password (a variant's bmp for the classic MAC, its pbkdf2[0]
 * for PBMAC1) and return it with its HMAC mechanism. NULL with NSS's error set. */
PK11SymKey *p12_mac_key(const P12MacData *mac, const P12MacInfo *info, const SECItem *password,
                        CK_MECHANISM_TYPE *hmac_mech);

/* p12_mac_key through @cache (keyed by the password bytes, the MAC algorithm and parameters,
 * the salt and the iteration count): a new reference, NULL with NSS's error set. */
PK11SymKey *p12_mac_key_cached(P12KeyCache *cache, const P12MacData *mac, const P12MacInfo *info,
                               const SECItem *password, CK_MECHANISM_TYPE *hmac_mech);

/* A background job (see P12Jobs) deriving the MAC key of @mac into @cache. */
void p12_jobs_add_mac(P12Jobs *jobs, P12KeyCache *cache, const SECItem *password,
                      const P12MacData *mac, const P12MacInfo *info);

/* HMAC of @data with @key; @out must hold 64 bytes. FALSE with NSS's error set. */
gboolean p12_hmac(PK11SymKey *key, CK_MECHANISM_TYPE hmac_mech, const SECItem *data, guint8 *out,
                  unsigned int *out_len);

/* The writer's cache of verification keys (see caback_p12_writer_prepare_verify), or NULL when
 * none was asked for; borrowed. */
typedef struct CabackP12Writer CabackP12Writer;
P12KeyCache *p12_writer_verify_cache(CabackP12Writer *writer);

/* Count one password-based derivation (for caback_p12_derivations). */
void p12_count_derivation(void);

G_END_DECLS
