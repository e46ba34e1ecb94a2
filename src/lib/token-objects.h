/* Internal to caback's library: a token's objects found by the attributes softoken indexes
 * (issuer and serial number, CKA_ID), and listed by the few attributes caback keeps, through a
 * PKCS#11 session of our own.
 *
 * NSS's own lookups of "this certificate on that token" (PK11_FindCertFromDERCertItem,
 * PK11_FindCertInSlot and so PK11_FindPrivateKeyFromCert, PK11_GetLowLevelKeyIDForCert) search
 * the token by value (CKA_VALUE) for a certificate NSS did not read from that token; a
 * certificate NSS builds from a token's object (PK11_GetCertFromPrivateKey,
 * SECKEY_ConvertToPublicKey) gets its trust by a search of its SHA-1 hash; PK11_FindGenericObjects
 * reads every object of a class. softoken answers each of these by reading every object of the
 * database, so that doing it for each of n certificates or keys takes time in n^2. The functions
 * here search by indexed attributes and then compare the value where it matters. The session
 * sees the token as NSS logged it in. Not installed, not part of the library's contract. */
#pragma once

#include <glib.h>

#include <cert.h>
#include <pk11pub.h>
#include <pkcs11.h>

G_BEGIN_DECLS

/* A session of our own on a token, for what NSS exports no function for. */
typedef struct {
    CK_FUNCTION_LIST_PTR f;
    CK_SESSION_HANDLE session;
} CabackRawSession;

/* Open a session on @slot (read-write when @rw); FALSE when the module cannot. */
gboolean caback_raw_open(CabackRawSession *r, PK11SlotInfo *slot, gboolean rw);
void caback_raw_close(CabackRawSession *r);

/* The value of attribute @type of object @handle (NULL when the object lacks it); caller frees
 * with SECITEM_FreeItem(item, PR_TRUE). */
SECItem *caback_raw_attribute(CabackRawSession *r, CK_OBJECT_HANDLE handle, CK_ATTRIBUTE_TYPE type);

/* The objects of @r's token that match @template, appended to @found (a GArray of
 * CK_OBJECT_HANDLE). FALSE when the token cannot be searched. */
gboolean caback_raw_find(CabackRawSession *r, CK_ATTRIBUTE *template, CK_ULONG n_attrs,
                         GArray *found);

/* The certificate object of @cert (DER-encoded serial number @serial) on @r's token, or
 * CK_INVALID_HANDLE: searched by issuer and serial number, then compared by value. */
CK_OBJECT_HANDLE caback_raw_find_cert(CabackRawSession *r, CERTCertificate *cert,
                                      const SECItem *serial);

/* The DER encoding of @cert's serial number as NSS's certificate and trust objects hold it (tag
 * and length included); caller frees with SECITEM_FreeItem(item, PR_TRUE). */
SECItem *caback_cert_encoded_serial(CERTCertificate *cert);

/* TRUE when @slot holds a certificate object of @cert. */
gboolean caback_token_holds_cert(PK11SlotInfo *slot, CERTCertificate *cert);

/* TRUE when @slot holds an NSS trust object for @cert, matched as NSS matches them (issuer and
 * DER serial number) by a search of those, which the database indexes; reading every trust
 * object of the token (PK11_FindGenericObjects) for each certificate took time in n^2. */
gboolean caback_token_holds_trust(PK11SlotInfo *slot, CERTCertificate *cert);

/* The certificate with the bytes @der when @slot holds it, else NULL. Found as NSS finds a
 * certificate by its DER (CERT_FindCertByDERCert: by issuer and serial number), then checked on
 * the token. The CERTCertificate is NSS's shared one: its trust is the trust domain's (what
 * certutil -L shows), and its nickname may be another token's; caback_token_cert_nickname gives
 * @slot's. Caller destroys it. */
CERTCertificate *caback_token_find_cert(PK11SlotInfo *slot, const SECItem *der);

/* The nickname NSS gives @slot's certificate object of @cert ("TOKEN:label", as
 * PK11_MakeCertFromHandle builds it; NULL when the token holds no such object or it has no
 * label). Caller frees. */
char *caback_token_cert_nickname(PK11SlotInfo *slot, CERTCertificate *cert);

/* The CKA_ID of @slot's certificate object of @cert, which names the private key NSS pairs with
 * the certificate (PK11_FindPrivateKeyFromCert finds the key of that CKA_ID); NULL when the token
 * holds no such object. Caller frees (g_autoptr(SECItem)). */
SECItem *caback_token_cert_key_id(PK11SlotInfo *slot, CERTCertificate *cert);

/* Called by caback_token_each_object with the values of the attributes it was asked for, in
 * that order (NULL for one the object lacks). */
typedef void (*CabackTokenObjectFunc)(SECItem *const *values, gpointer data);

/* Call @func for each object of class @cls that @slot shows (as logged in now), with its
 * attributes @types (at most 4): a listing that reads only those, where PK11_ListCerts and
 * PK11_ListPublicKeysInSlot build a CERTCertificate or SECKEYPublicKey of each (about 7 KB and
 * 2 KB apiece while the list lives). FALSE when the token cannot be searched. */
gboolean caback_token_each_object(PK11SlotInfo *slot, CK_OBJECT_CLASS cls,
                                  const CK_ATTRIBUTE_TYPE *types, guint n_types,
                                  CabackTokenObjectFunc func, gpointer data);

/* TRUE when @slot holds a certificate object whose CKA_ID is @id: a certificate NSS pairs with
 * the key of that ID, as PK11_GetCertFromPrivateKey finds it but without building the
 * certificate (NSS then reads its trust by a search of its SHA-1 hash, which the database does
 * not index). With @value, the first such object's CKA_VALUE in *@value (caller frees). */
gboolean caback_token_cert_with_id(PK11SlotInfo *slot, const SECItem *id, SECItem **value);

/* The certificate NSS pairs with @key (the one whose object on @key's token has the key's
 * CKA_ID), as PK11_GetCertFromPrivateKey finds it but as NSS's shared certificate (trust from
 * the trust domain, as certutil -L shows it; caback_token_cert_nickname gives the token's name
 * for it) rather than built from the object. NULL when there is none. Caller destroys it. */
CERTCertificate *caback_token_cert_of_key(SECKEYPrivateKey *key);

/* The public key of @key: its certificate's (caback_token_cert_of_key), else what
 * SECKEY_ConvertToPublicKey builds from the key's objects. SECKEY_ConvertToPublicKey looks for
 * the certificate first too, but through PK11_GetCertFromPrivateKey. NULL when neither gives
 * one. Caller destroys it. */
SECKEYPublicKey *caback_token_public_key_of(SECKEYPrivateKey *key);

/* The private key on @slot of @cert, as PK11_FindPrivateKeyFromCert finds it (the key whose
 * CKA_ID the certificate object has; the token logged in with @wincx when it must be), without
 * its search by value. NULL when there is none. */
SECKEYPrivateKey *caback_token_private_key_of(PK11SlotInfo *slot, CERTCertificate *cert,
                                              void *wincx);

G_END_DECLS
