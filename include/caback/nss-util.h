/* g_autoptr cleanups for NSS handles, so that every reference is released on every path (a leaked
 * reference makes NSS_ShutdownContext fail with SEC_ERROR_BUSY, which the tests check). */
#pragma once

#include <glib.h>

#include <cert.h>
#include <keyhi.h>
#include <nss.h>
#include <pk11pub.h>
#include <secitem.h>
#include <secmod.h>

/* NSS's certificate decoder, exported under this name only (cert.h declares the name without
 * underscores, which the library maps to this one internally). Unlike CERT_NewTempCertificate it
 * leaves NSS's certificate cache alone, so a certificate of the file that clashes with one of the
 * database (same issuer and serial number, different certificate) can still be read and shown. */
extern CERTCertificate *__CERT_DecodeDERCertificate(SECItem *derSignedCert, PRBool copyDER,
                                                    char *nickname);

static inline void caback_secitem_free(SECItem *item)
{
    SECITEM_FreeItem(item, PR_TRUE);
}
static inline void caback_secitem_zfree(SECItem *item)
{
    SECITEM_ZfreeItem(item, PR_TRUE);
}
static inline void caback_arena_free(PLArenaPool *arena)
{
    PORT_FreeArena(arena, PR_TRUE);
}
static inline void PK11_DestroyContext_true(PK11Context *ctx)
{
    PK11_DestroyContext(ctx, PR_TRUE);
}
static inline void SECOID_DestroyAlgorithmID_true(SECAlgorithmID *alg)
{
    SECOID_DestroyAlgorithmID(alg, PR_TRUE);
}
static inline void caback_key_list_free(SECKEYPrivateKeyList *list)
{
    SECKEY_DestroyPrivateKeyList(list);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CERTCertificate, CERT_DestroyCertificate)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CERTCertList, CERT_DestroyCertList)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SECKEYPrivateKey, SECKEY_DestroyPrivateKey)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SECKEYPublicKey, SECKEY_DestroyPublicKey)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SECKEYPrivateKeyList, caback_key_list_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PK11SlotInfo, PK11_FreeSlot)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PK11SlotList, PK11_FreeSlotList)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PK11SymKey, PK11_FreeSymKey)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PK11Context, PK11_DestroyContext_true)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PLArenaPool, caback_arena_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SECItem, caback_secitem_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SECAlgorithmID, SECOID_DestroyAlgorithmID_true)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CERTSubjectPublicKeyInfo, SECKEY_DestroySubjectPublicKeyInfo)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SECMODModule, SECMOD_DestroyModule)
