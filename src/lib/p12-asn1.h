/* Internal to caback's PKCS#12 codec: the ASN.1 structures of RFC 7292 (PFX, AuthenticatedSafe,
 * SafeContents, SafeBag and its bag types, attributes, MacData), of RFC 8018 (PBES2, PBKDF2,
 * PBMAC1, PBE parameters) and of RFC 5958 (EncryptedPrivateKeyInfo, PrivateKeyInfo), as NSS
 * SEC_ASN1 templates, and the small helpers around them (OIDs NSS has no tag for, BMPString
 * conversion, DER SET OF ordering, checked INTEGER reading). Everything here is plain data
 * handling: no key, no cryptography. */
#pragma once

#include <glib.h>

#include <secasn1.h>
#include <seccomon.h>
#include <secoid.h>

G_BEGIN_DECLS

/* ---- structures (all SECItems point into the arena of the decode or encode) ---- */

/* ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY OPTIONAL } */
typedef struct {
    SECItem content_type;
    SECItem content; /* the encoding of the inner value (its tag and length included) */
} P12ContentInfo;

/* DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING } */
typedef struct {
    SECAlgorithmID algorithm;
    SECItem digest;
} P12DigestInfo;

/* MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 } */
typedef struct {
    P12DigestInfo mac;
    SECItem salt;
    SECItem iterations; /* len 0 when absent (DEFAULT 1) */
} P12MacData;

/* PFX ::= SEQUENCE { version INTEGER, authSafe ContentInfo, macData MacData OPTIONAL } */
typedef struct {
    SECItem version;
    P12ContentInfo auth_safe;
    P12MacData *mac_data; /* NULL when the file has no MAC */
} P12Pfx;

/* The same PFX for writing, with every part already encoded. */
typedef struct {
    SECItem version;
    SECItem auth_safe; /* encoded ContentInfo */
    SECItem mac_data;  /* encoded MacData */
} P12PfxOut;

/* EncryptedData ::= SEQUENCE { version INTEGER, encryptedContentInfo EncryptedContentInfo,
 *                              unprotectedAttrs [1] IMPLICIT ... OPTIONAL (skipped) }
 * EncryptedContentInfo ::= SEQUENCE { contentType OID, contentEncryptionAlgorithm
 *                              AlgorithmIdentifier, encryptedContent [0] IMPLICIT OCTET STRING
 *                              OPTIONAL } */
typedef struct {
    SECItem content_type;
    SECAlgorithmID algorithm;
    SECItem encrypted; /* len 0 when absent */
} P12EncryptedContentInfo;

typedef struct {
    SECItem version;
    P12EncryptedContentInfo info;
    SECItem **unprotected_attrs; /* [1] IMPLICIT SET OF, kept but unused */
} P12EncryptedData;

/* PKCS12Attribute ::= SEQUENCE { attrId OID, attrValues SET OF ANY } */
typedef struct {
    SECItem type;
    SECItem **values; /* NULL-terminated; each the encoding of one value */
} P12Attribute;

/* SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT ANY, bagAttributes SET OF
 * PKCS12Attribute OPTIONAL } */
typedef struct {
    SECItem bag_id;
    SECItem value;
    P12Attribute **attributes; /* NULL-terminated, NULL when absent */
} P12SafeBag;

/* The same bag for writing, with its attributes already encoded (and sorted for DER). */
typedef struct {
    SECItem bag_id;
    SECItem value;
    SECItem **attributes; /* NULL-terminated encoded PKCS12Attributes, NULL for none */
} P12SafeBagOut;

/* CertBag, CRLBag and SecretBag share one shape: SEQUENCE { typeId OID, value [0] EXPLICIT ANY } */
typedef struct {
    SECItem type_id;
    SECItem value;
} P12TypedValue;

/* EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm AlgorithmIdentifier,
 *                                        encryptedData OCTET STRING } */
typedef struct {
    SECAlgorithmID algorithm;
    SECItem encrypted;
} P12EncryptedPrivateKeyInfo;

/* PrivateKeyInfo ::= SEQUENCE { version INTEGER, privateKeyAlgorithm AlgorithmIdentifier,
 *     privateKey OCTET STRING, attributes [0] IMPLICIT SET OF OPTIONAL,
 *     publicKey [1] IMPLICIT BIT STRING OPTIONAL (RFC 5958 v2) } */
typedef struct {
    SECItem version;
    SECAlgorithmID algorithm;
    SECItem private_key;
    SECItem **attributes;
    SECItem public_key;
} P12PrivateKeyInfo;

/* ECPrivateKey ::= SEQUENCE { version INTEGER, privateKey OCTET STRING,
 *     parameters [0] EXPLICIT ECParameters OPTIONAL, publicKey [1] EXPLICIT BIT STRING OPTIONAL }
 * (RFC 5915) */
typedef struct {
    SECItem version;
    SECItem private_key;
    SECItem parameters; /* the encoding, len 0 when absent */
    SECItem public_key; /* BIT STRING: len in bits; len 0 when absent */
} P12EcPrivateKey;

/* PBES2-params and PBMAC1-params have the same shape: two AlgorithmIdentifiers
 * (keyDerivationFunc, then encryptionScheme or messageAuthScheme). */
typedef struct {
    SECAlgorithmID kdf;
    SECAlgorithmID scheme;
} P12Pbes2Params;

/* PBKDF2-params ::= SEQUENCE { salt OCTET STRING (the otherSource choice is not supported),
 *     iterationCount INTEGER, keyLength INTEGER OPTIONAL, prf AlgorithmIdentifier DEFAULT
 *     hmacWithSHA1 } */
typedef struct {
    SECItem salt;
    SECItem iterations;
    SECItem key_length;  /* len 0 when absent */
    SECAlgorithmID *prf; /* NULL when absent */
} P12Pbkdf2Params;

/* scrypt-params ::= SEQUENCE { salt OCTET STRING, costParameter INTEGER, blockSize INTEGER,
 *     parallelizationParameter INTEGER, keyLength INTEGER OPTIONAL } (RFC 7914 section 7) */
typedef struct {
    SECItem salt;
    SECItem cost;
    SECItem block_size;
    SECItem parallelization;
    SECItem key_length; /* len 0 when absent */
} P12ScryptParams;

/* pkcs-12PbeParams (and PKCS#5 v1 PBEParameter) ::= SEQUENCE { salt OCTET STRING,
 *                                                              iterations INTEGER } */
typedef struct {
    SECItem salt;
    SECItem iterations;
} P12PbeParams;

/* ---- templates ---- */
extern const SEC_ASN1Template p12_pfx_template[];
extern const SEC_ASN1Template p12_pfx_out_template[];
extern const SEC_ASN1Template p12_content_info_template[];
extern const SEC_ASN1Template p12_content_infos_template[]; /* AuthenticatedSafe */
extern const SEC_ASN1Template p12_mac_data_template[];
extern const SEC_ASN1Template p12_encrypted_data_template[];
extern const SEC_ASN1Template p12_safe_contents_template[];   /* SEQUENCE OF SafeBag */
extern const SEC_ASN1Template p12_sequence_of_any_template[]; /* for writing */
extern const SEC_ASN1Template p12_safe_bag_out_template[];
extern const SEC_ASN1Template p12_attribute_template[];
extern const SEC_ASN1Template p12_typed_value_template[];
extern const SEC_ASN1Template p12_epki_template[];
extern const SEC_ASN1Template p12_pki_template[];
extern const SEC_ASN1Template p12_pbes2_params_template[];
extern const SEC_ASN1Template p12_pbkdf2_params_template[];
extern const SEC_ASN1Template p12_pbe_params_template[];
extern const SEC_ASN1Template p12_scrypt_params_template[];
extern const SEC_ASN1Template p12_ec_private_key_template[];

/* ---- object identifiers NSS has no SECOidTag for (DER contents, without tag and length) ---- */
extern const SECItem p12_oid_trust_flags; /* 2.16.840.1.113730.5.1.1.1, Dogtag/JSS trust flags */
extern const SECItem p12_oid_scrypt;      /* 1.3.6.1.4.1.11591.4.11 */

/* The usual name of an algorithm OID that NSS 3.87 has no tag for and caback cannot use, so that
 * a refusal names it ("ARIA-128-CBC", "hmacWithSHA3-256", "pbeWithMD5AndRC2-CBC"), or NULL. */
const char *p12_oid_known_name(const SECItem *oid);

/* TRUE when @oid (DER contents) is the OID NSS knows as @tag. */
gboolean p12_oid_is(const SECItem *oid, SECOidTag tag);

/* The dotted form of @oid ("1.2.840..."), or "(invalid OID)"; caller frees. */
char *p12_oid_dotted(const SECItem *oid);

/* Set @item (allocated in @arena) to the DER contents of the OID for @tag. */
gboolean p12_oid_set(PLArenaPool *arena, SECItem *item, SECOidTag tag);

/* Read a DER/BER INTEGER (two's complement contents) that must be positive or zero and at most
 * @max. FALSE for an empty, negative or too large value. */
gboolean p12_uint_get(const SECItem *item, guint64 max, guint64 *out);

/* Encode @value as INTEGER contents in @arena. */
gboolean p12_uint_set(PLArenaPool *arena, SECItem *item, guint64 value);

/* UTF-16BE (a BMPString's contents) as UTF-8. Unpaired surrogates become U+FFFD, an odd final
 * byte is dropped, trailing NUL characters are removed. Returns a new string; never NULL. */
char *p12_bmp_to_utf8(const guint8 *data, gsize len);

/* UTF-8 @text as UTF-16BE (characters outside the BMP as surrogate pairs), with a terminating
 * 00 00 when @terminate. NULL when @text is not valid UTF-8. The result is a GByteArray so the
 * caller can wipe it. */
GByteArray *p12_utf8_to_bmp(const char *text, gsize len, gboolean terminate);

/* Encode @elements (NULL-terminated array of encodings) in DER order for a SET OF: sorted as
 * octet strings (X.690 11.6). Sorts the array in place. */
void p12_der_sort_set(SECItem **elements);

/* TRUE when @item holds exactly one complete DER element (tag, length, contents) and nothing
 * else, checked with SEC_QuickDERDecodeItem. */
gboolean p12_is_single_der(const SECItem *item);

/* Encode a ContentInfo of type @tag whose content is @content (an encoding); in @arena. */
SECItem *p12_encode_content_info(PLArenaPool *arena, SECOidTag tag, const SECItem *content);

/* Encode @data as an OCTET STRING; in @arena. */
SECItem *p12_encode_octet_string(PLArenaPool *arena, const SECItem *data);

/* Encode a PKCS12Attribute @type with the single value @value (an encoding); in @arena. */
SECItem *p12_encode_attribute(PLArenaPool *arena, const SECItem *type, const SECItem *value);

G_END_DECLS
