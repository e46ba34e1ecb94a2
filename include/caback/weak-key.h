/* The weak-key rule: which public keys caback names as weak, and why. One rule for every use
 * (certificates of a backup, keys of a database, signer keys), so that `list`, the restore plan,
 * `backup` and signature checks all say the same thing about the same key. */
#pragma once

#include <glib.h>

#include <cert.h>
#include <keyhi.h>

G_BEGIN_DECLS

/* Why a key is weak. CABACK_WEAK_KEY_NONE (0) means it is not. */
typedef enum {
    CABACK_WEAK_KEY_NONE = 0,
    CABACK_WEAK_KEY_RSA_SIZE,     /* RSA (or RSA-PSS) modulus under 2048 bits */
    CABACK_WEAK_KEY_RSA_EXPONENT, /* RSA public exponent under 65537, or even */
    CABACK_WEAK_KEY_EC_CURVE,     /* EC key on a curve other than P-256, P-384, P-521 */
    CABACK_WEAK_KEY_DSA,          /* any DSA key */
    CABACK_WEAK_KEY_OTHER_TYPE,   /* a key type that cannot sign certificates (DH, KEA, ...) */
    CABACK_WEAK_KEY_UNREADABLE,   /* the public key cannot be decoded, so nothing vouches for it */
} CabackWeakKey;

/* The minimum RSA modulus size, in bits, that is not weak. */
#define CABACK_WEAK_KEY_MIN_RSA_BITS 2048

/* Is @key weak? Returns CABACK_WEAK_KEY_NONE when it is not (RSA of at least 2048 bits with an
 * odd public exponent of at least 65537; EC on P-256, P-384 or P-521), otherwise the first rule
 * it breaks (size is checked before exponent). When @reason is not NULL it receives a
 * newly allocated sentence fragment naming the key and the rule, e.g. "RSA 1024-bit key (under
 * 2048 bits)", "RSA public exponent 3 (under 65537)", "EC key on curve secp256k1 (not P-256,
 * P-384 or P-521)", "DSA key"; NULL when the key is not weak. The text holds no secret and only
 * ASCII. The caller keeps @key; NULL @key is CABACK_WEAK_KEY_UNREADABLE. Pure: no NSS state is
 * changed, no database is needed (only NSS's OID table, i.e. after any NSS_Init*). */
CabackWeakKey caback_weak_key_check(const SECKEYPublicKey *key, char **reason);

/* caback_weak_key_check for the key of a SubjectPublicKeyInfo (e.g. &cert->subjectPublicKeyInfo).
 * A SubjectPublicKeyInfo NSS cannot decode is CABACK_WEAK_KEY_UNREADABLE, with NSS's error in
 * the reason. */
CabackWeakKey caback_weak_key_check_spki(const CERTSubjectPublicKeyInfo *spki, char **reason);

/* A short stable name of @weak for JSON and scripts: "none", "rsa-size", "rsa-exponent",
 * "ec-curve", "dsa", "key-type", "unreadable" (static string). */
const char *caback_weak_key_name(CabackWeakKey weak);

G_END_DECLS
