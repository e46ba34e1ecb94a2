/* caback's PKCS#12 codec: one reader and one writer, used by backup, list, restore and verify.
 * ASN.1 goes through NSS's SEC_ASN1 / SEC_QuickDER templates; every cryptographic step (PBE key
 * derivation for PBES2 and the PKCS#12 KDF, private-key wrap and unwrap, encryption of safes,
 * HMAC) is done by NSS. NSS must be initialised (any context) before these are called.
 *
 * This header is a contract between the reader/writer and the verbs: add, never rename. */
#pragma once

#include <glib.h>

#include <caback/secret.h>

#include <cert.h>
#include <keyhi.h>
#include <pk11pub.h>

G_BEGIN_DECLS

/* ---- what a file holds (reader output) ---- */

/* The attributes of a bag that caback uses; all may be NULL. */
typedef struct {
    char *friendly_name;  /* friendlyName (BMPString) as UTF-8, trailing NULs removed; a name
                             with flaws (below) is its escaped form (names.h), whole, never cut
                             at a NUL */
    GBytes *local_key_id; /* localKeyID octets */
    char *trust_flags;    /* Dogtag/JSS trust attribute 2.16.840.1.113730.5.1.1.1, e.g. "CTu,Cu,Cu" */
    /* What is wrong with the friendlyName (CabackNameFlaw bits, 0: nothing): a name
     * with flaws is never used as an NSS nickname as it is. friendly_name_clean is the name with
     * each flaw replaced by '_' (NULL when the bag has no friendlyName). */
    guint friendly_name_flaws;
    char *friendly_name_clean;
} CabackP12Attributes;

typedef struct {
    CabackP12Attributes attrs;
    GBytes *der;            /* the X.509 certificate, DER */
    const char *protection; /* how its safe was protected, e.g. "PBES2 (PBKDF2-HMAC-SHA256,
                               AES-256-CBC), 600000 iterations" or "none"; kept once in the file
                               for all the bags that share it */
} CabackP12Cert;

typedef struct {
    CabackP12Attributes attrs;
    gboolean shrouded;      /* PKCS8ShroudedKeyBag (TRUE) or plain KeyBag (FALSE) */
    const char *protection; /* how the key was encrypted, same style as CabackP12Cert.protection */
    const char *algorithm_oid; /* the key's algorithm OID (dotted, kept once in the file), once
                                  known (after decryption for shrouded keys; see
                                  caback_p12_key_describe) */
    /* Private to the codec: the encrypted or plain key as found in the file. */
    GBytes *encoded;
    gint64 index;          /* position among the file's key bags, from 0 */
} CabackP12Key;

typedef struct {
    CabackP12Attributes attrs;
    GBytes *der;           /* the CRL, DER (kept so that list can show it; restore skips it) */
} CabackP12Crl;

typedef struct {
    char *mac;             /* e.g. "HMAC-SHA256, 600000 iterations", "PBMAC1 (...)", or NULL when
                              the file has no MAC */
    gint64 mac_iterations; /* 0 when no MAC */
    GPtrArray *safes;      /* of char*: one description per authenticated-safe content, e.g.
                              "encrypted: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), 600000
                              iterations" or "plain" */
    GPtrArray *warnings;   /* of char*: things the reader tolerated (no MAC, trailing bytes, ...) */
} CabackP12Info;

typedef struct CabackP12File CabackP12File;

/* Decode @data (a PKCS#12 file; @path is only for messages) and check its MAC with @password
 * (UTF-8; NULL or empty also tries the empty BMPString and the NULL password, as OpenSSL does).
 * Encrypted safes are decrypted; shrouded keys stay encrypted until imported. Fails with
 * CABACK_ERROR_BAD_PASSWORD when the MAC does not match (wrong password), CABACK_ERROR_PKCS12
 * for a malformed, truncated or unsupported file (the message names the algorithm by name). The
 * returned file keeps a copy of the password (wiped on free) for caback_p12_key_import. */
CabackP12File *caback_p12_read(const guint8 *data, gsize len, const CabackSecret *password,
                               const char *path, GError **error);

/* Read and decode the file at @path (as caback_p12_read). */
CabackP12File *caback_p12_read_file(const char *path, const CabackSecret *password,
                                    GError **error);

/* caback_p12_read_file with the keys caback_p12_writer_prepare_verify derives for
 * @writer's file (which must still exist): each is used only where the file names exactly the
 * parameters (salt, iteration count, algorithms) and password it was derived for; anything else
 * is derived as caback_p12_read_file would. With @writer NULL, or without prepare_verify, the
 * same as caback_p12_read_file. */
typedef struct CabackP12Writer CabackP12Writer;
CabackP12File *caback_p12_read_file_verify(const char *path, const CabackSecret *password,
                                           CabackP12Writer *writer, GError **error);

/* caback_p12_read_file_verify on @data, bytes already read (e.g. from the descriptor
 * the file was written through), so that what is checked is exactly what was read. */
CabackP12File *caback_p12_read_verify(const guint8 *data, gsize len, const CabackSecret *password,
                                      const char *path, CabackP12Writer *writer, GError **error);

/* The file's integrity mode: "pbmac1" (RFC 9579 PBMAC1), "password-mac" (the
 * classic password-based PKCS#12 MAC), or "none" (no MAC: nothing authenticates the file, anyone
 * could have made it). A static string. */
const char *caback_p12_integrity(const CabackP12Info *info);

void caback_p12_file_free(CabackP12File *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackP12File, caback_p12_file_free)

/* The bags of @file, in file order; owned by @file. */
GPtrArray *caback_p12_file_certs(CabackP12File *file); /* of CabackP12Cert* */
GPtrArray *caback_p12_file_keys(CabackP12File *file);  /* of CabackP12Key* */
GPtrArray *caback_p12_file_crls(CabackP12File *file);  /* of CabackP12Crl* */
/* Free key bag @i of @file, which nothing reads any more (see caback_restore_plan_drop_key); its
 * place in caback_p12_file_keys becomes NULL. */
void caback_p12_file_drop_key(CabackP12File *file, guint i);
const CabackP12Info *caback_p12_file_info(CabackP12File *file);

/* Decrypt @key into @slot as a private key object: a session object unless @permanent, with
 * CKA_LABEL @nickname (may be NULL), CKA_ID derived by NSS from @public_value (the certificate's
 * public key value: RSA modulus, EC point...; see PK11_ImportEncryptedPrivateKeyInfo), sensitive
 * and, when @extractable, extractable. The key material never appears in caback's memory in clear
 * when the key was shrouded. @wincx is passed to NSS's password callback. Returns the new key.
 * (Also: a wrong password shows as CABACK_ERROR_BAD_PASSWORD only for a file without MAC; a key
 * type NSS cannot import is CABACK_ERROR_PKCS12 naming its OID. Release a session key with
 * caback_p12_key_discard, which also removes the token object.) */
SECKEYPrivateKey *caback_p12_key_import(CabackP12File *file, CabackP12Key *key,
                                        PK11SlotInfo *slot, const char *nickname,
                                        const SECItem *public_value, gboolean permanent,
                                        gboolean extractable, void *wincx, GError **error);

/* Destroy @key as returned by caback_p12_key_import: for a session key (@permanent FALSE) also
 * the token object, which SECKEY_DestroyPrivateKey alone would leave in the token until NSS shuts
 * down; a permanent key stays in its token. NULL is allowed. */
void caback_p12_key_discard(SECKEYPrivateKey *key);

/* Fill @key->algorithm_oid and return the key type and size in bits (0 when unknown) by
 * decrypting it into a temporary session object on @slot (or reading the plain KeyBag), without
 * keeping it. Key types NSS cannot handle are reported with their OID and *type = nullKey.
 * (Also: @slot may be NULL for NSS's internal slot. The first describe or import of a file
 * derives the keys of all its shrouded key bags at once, on all processors.) */
gboolean caback_p12_key_describe(CabackP12File *file, CabackP12Key *key, PK11SlotInfo *slot,
                                 KeyType *type, guint *bits, GError **error);

/* The usual name ("Ed25519", "ML-KEM-768") and the lower-case type caback's JSON
 * uses for it ("ed25519", "ml-kem-768") of the key algorithm @oid_dotted, a key type NSS cannot
 * hold; FALSE (and "unknown" for both) when caback does not know that OID either. Static strings. */
gboolean caback_p12_key_algorithm(const char *oid_dotted, const char **name, const char **type);

/* The public value of EC key @key (its point, as NSS makes key IDs from it) when the
 * file has no certificate to give it: read from the key's own PKCS#8 (RFC 5915 publicKey) by
 * NSS, inside the token. @key must have been described (caback_p12_key_describe). Fails with
 * CABACK_ERROR_PKCS12 when the PKCS#8 omits the point (NSS 3.87 cannot compute it). */
GBytes *caback_p12_key_public_value(CabackP12File *file, CabackP12Key *key, GError **error);

/* ---- writing ---- */

typedef enum {
    CABACK_P12_MODERN, /* PBES2/PBKDF2-HMAC-SHA256/AES-256-CBC, HMAC-SHA256 MAC, 600,000 it. */
    CABACK_P12_LEGACY, /* PBE-SHA1-3DES for keys and certificates, HMAC-SHA1 MAC, 2,048 it. */
} CabackP12Profile;

typedef enum {
    CABACK_P12_MAC_HMAC,   /* the classic PKCS#12 MAC (HMAC with the PKCS#12 KDF) */
    CABACK_P12_MAC_PBMAC1, /* RFC 9579 PBMAC1 (PBKDF2-HMAC-SHA256, HMAC-SHA256) */
} CabackP12MacKind;

typedef struct {
    CabackP12Profile profile;
    CabackP12MacKind mac;
    guint iterations; /* 0: the profile's default */
} CabackP12WriteOptions;

/* Start a file protected by @password (UTF-8, not empty). (Also: the file's key derivations,
 * the shared PBES2 key and the MAC key, start here on other processors and run while the caller
 * goes on; adding keys and finishing wait for them as needed, and a failed derivation is
 * reported there. An empty or non-UTF-8 password is CABACK_ERROR_USAGE.) */
CabackP12Writer *caback_p12_writer_new(const CabackP12WriteOptions *options,
                                       const CabackSecret *password, GError **error);
void caback_p12_writer_free(CabackP12Writer *writer);

/* Start, in the background as well, the derivations that reading this file back
 * with its password will need (caback_p12_read_file_verify): the same parameters as the
 * writer's, derived again from the password into a cache of their own, so that the check still
 * proves that the password opens the file while its slow part overlaps the writing. */
void caback_p12_writer_prepare_verify(CabackP12Writer *writer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackP12Writer, caback_p12_writer_free)

/* Add @key as a shrouded key bag with friendlyName @friendly_name and localKeyID @local_key_id.
 * Fails with CABACK_ERROR_NOT_EXPORTABLE when the token will not let the key out. @wincx is passed
 * to NSS's password callback. */
gboolean caback_p12_writer_add_key(CabackP12Writer *writer, SECKEYPrivateKey *key,
                                   const char *friendly_name, const SECItem *local_key_id,
                                   void *wincx, GError **error);

/* One key for caback_p12_writer_add_keys. */
typedef struct {
    SECKEYPrivateKey *key;
    const char *friendly_name;
    const SECItem *local_key_id;
    /* NULL, or the same key object as a second opening of its NSS database sees it (a
     * CabackDb's reader): @key is then read out of the database through one opening or the
     * other, so that two keys are read at once. */
    SECKEYPrivateKey *reader;
} CabackP12KeyIn;

/* caback_p12_writer_add_key for @n keys, in this order, the tokens wrapping them side by side
 * on the available processors; the bags are the same as one call per key would make. On failure
 * *@failed (may be NULL) is the index of the key that failed; drop the writer then. */
gboolean caback_p12_writer_add_keys(CabackP12Writer *writer, const CabackP12KeyIn *keys, guint n,
                                    void *wincx, guint *failed, GError **error);

/* Add @cert as a certificate bag; @local_key_id (may be NULL) pairs it with its key bag and
 * @trust_flags (may be NULL) is written as the Dogtag trust attribute. */
gboolean caback_p12_writer_add_cert(CabackP12Writer *writer, CERTCertificate *cert,
                                    const char *friendly_name, const SECItem *local_key_id,
                                    const char *trust_flags, GError **error);

/* Encode the whole file (safes, MAC); the writer cannot be used afterwards. */
GBytes *caback_p12_writer_finish(CabackP12Writer *writer, GError **error);

/* ---- diagnostics (additions) ---- */

/* How many password-based key derivations (PBKDF2, PKCS#12 KDF) this process has run so far
 * through the codec: a backup of any number of keys in the modern profile costs two (the shared
 * PBES2 key and the MAC key), its verification two more. For tests and the benchmark. */
guint caback_p12_derivations(void);

/* ---- limits on what one input file may cost (additions) ---- */

#define CABACK_P12_DEFAULT_MAX_INPUT_SIZE (G_GUINT64_CONSTANT(64) << 20) /* 64 MiB */
#define CABACK_P12_DEFAULT_MAX_KDF_WORK G_GUINT64_CONSTANT(100000000)

typedef struct {
    guint64 max_input_size; /* bytes of a PKCS#12 file read by caback (--max-input-size) */
    guint64 max_kdf_work;   /* iterations summed over the distinct key derivations of one file
                               (--max-kdf-work); scrypt counts as 2·N·r·p */
} CabackP12Limits;

/* Set the limits of this process (the command line sets them once, before reading anything);
 * a field 0 means its default. */
void caback_p12_limits_set(const CabackP12Limits *limits);

/* The limits in force, defaults filled in. */
void caback_p12_limits_get(CabackP12Limits *limits);

/* FALSE with CABACK_ERROR_PKCS12 when @size bytes of @path (what:
 * "PKCS#12 file", "signed file") are above the max_input_size limit; the message gives both
 * sizes and --max-input-size. */
gboolean caback_p12_check_input_size(const char *path, const char *what, guint64 size,
                                     GError **error);

/* Read the whole of @path (a regular file or a pipe) into a buffer wiped when freed (a file
 * without encryption holds keys in clear), refusing it before reading when its size is above
 * the max_input_size limit, and when more than that comes out of a pipe. @what names the file
 * in messages ("PKCS#12 file"). CABACK_ERROR_NOT_FOUND when it does not exist, CABACK_ERROR_IO
 * when it cannot be read. */
CabackSecret *caback_p12_load_file(const char *path, const char *what, GError **error);

G_END_DECLS
