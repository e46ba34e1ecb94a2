/* The private keys of a token: listing them as certutil -K does, and finding the key (and its
 * CKA_ID) behind a certificate nickname. NSS-touching; the pure key-ID forms are in keyid.h. */
#pragma once

#include <glib.h>

#include <caback/db.h>
#include <caback/keyid.h>

#include <cert.h>
#include <keyhi.h>
#include <pk11pub.h>

G_BEGIN_DECLS

/* What caback knows about one private key. Plain data: no NSS reference is kept, so a list
 * outlives nothing and never blocks caback_db_close. */
typedef struct {
    guint index;         /* position in the token's key list, the <N> certutil -K prints */
    KeyType key_type;    /* NSS key type of the private key */
    const char *type;    /* "rsa", "ec", "dsa", ... as certutil -K names it (static string) */
    guint size_bits;     /* key size in bits (RSA modulus, EC field, DSA prime); 0 if unknown */
    GBytes *raw_id;      /* CKA_ID exactly as the token holds it (may be empty, never NULL) */
    gboolean id_valid;   /* raw_id is at most 20 bytes, so id is meaningful */
    CabackKeyId id;      /* raw_id zero-extended to 20 bytes (when id_valid); its text forms are
                          * made where they are printed (caback_key_info_nss_id, _dogtag_id) */
    gboolean orphan;     /* no certificate on the key's token has this key */
    char *nickname;      /* nickname of the certificate for this key, as certutil -n and CS.cfg
                          * take it (no "NSS Certificate DB:" prefix on the internal token,
                          * "Token:nick" on other tokens); NULL for an orphan key (and for a
                          * certificate without nickname) */
    char *label;         /* the key's own CKA_LABEL, NULL when it has none */
    int extractable;     /* CKA_EXTRACTABLE: 1 true, 0 false, -1 the token did not say */
    int sensitive;       /* CKA_SENSITIVE: 1 true, 0 false, -1 the token did not say */
    char *cert_token;    /* token(s) holding the certificate ("A" or "A, B"); NULL for an orphan */
    char *trust_token;   /* token(s) holding the certificate's NSS trust object; NULL for none */
} CabackKeyInfo;

/* The certutil -K form of @info's key ID: the lowercase hex of raw_id exactly (40 digits for NSS
 * keys), "" when the key has no CKA_ID. Free with g_free. */
char *caback_key_info_nss_id(const CabackKeyInfo *info);

/* The CS.cfg form of @info's key ID (Java BigInteger of raw_id), or NULL when raw_id is empty or
 * longer than 20 bytes. Free with g_free. */
char *caback_key_info_dogtag_id(const CabackKeyInfo *info);

/* Free @info and everything it holds; NULL is allowed. */
void caback_key_info_free(CabackKeyInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackKeyInfo, caback_key_info_free)

/* The name certutil -K uses for @type ("rsa", "ec", ...); a static string, "unknown" for a type
 * NSS may add later. */
const char *caback_keys_type_name(KeyType type);

/* Describe @key: its CKA_ID in all forms, type, size, label, and the nickname of @cert, or, when
 * @cert is NULL, of the certificate NSS finds for the key on its token (none: an orphan). Returns
 * a new CabackKeyInfo with index 0; never fails (missing facts stay NULL / 0). The caller keeps
 * its references to @key and @cert. */
CabackKeyInfo *caback_keys_describe(CabackDb *db, SECKEYPrivateKey *key, CERTCertificate *cert);

/* All private keys on the selected token of @db, in the order (and with the indexes) certutil -K
 * shows them, as a GPtrArray of CabackKeyInfo that frees its elements. The caller must have
 * logged in (caback_db_login / caback_cli_open_db) when the token needs it: a token that is not
 * logged in shows no keys. An empty token gives an empty array. Fails (CABACK_ERROR_DATABASE,
 * with NSS's error) only when NSS cannot list the keys. */
GPtrArray *caback_keys_list(CabackDb *db, GError **error);

/* The certificate with @nickname ("nick" on the internal token or "Token:nick") and its private
 * key. Of several certificates with the nickname (renewals), NSS's best choice is taken: the
 * newest one that is valid now. On success returns the key and stores a new reference to the
 * certificate in @cert_out when it is not NULL; the caller releases both (g_autoptr). Fails with
 * CABACK_ERROR_NOT_FOUND when no certificate has @nickname, or when its private key is not on
 * any token (the message says which), CABACK_ERROR_DATABASE when NSS fails otherwise. */
SECKEYPrivateKey *caback_keys_find_private_key(CabackDb *db, const char *nickname,
                                               CERTCertificate **cert_out, GError **error);

/* The private key behind certificate @nickname, described as caback_keys_describe does (its
 * nickname field is @nickname's certificate). The key ID is what CS.cfg must hold for this
 * certificate: caback_key_info_dogtag_id(info). Fails as caback_keys_find_private_key does; also fails with
 * CABACK_ERROR_FAILED when the key's CKA_ID is longer than 20 bytes (not an NSS-made ID). */
CabackKeyInfo *caback_keys_find_by_nickname(CabackDb *db, const char *nickname, GError **error);

G_END_DECLS
