/* File digests through NSS's HASH_ API, and a database-less NSS context. */
#include "config.h"

#include <caback/digest.h>
#include <caback/error.h>

#include <errno.h>
#include <fcntl.h>
#include <pk11pub.h>
#include <sechash.h>
#include <secoid.h>
#include <unistd.h>

NSSInitContext *caback_nss_nodb_open(GError **error)
{
    /* The same flags NSS_NoDB_Init uses, but as a context so that it can live next to a
     * database context and be shut down on its own. */
    NSSInitContext *context =
        NSS_InitContext("", "", "", "", NULL,
                        NSS_INIT_READONLY | NSS_INIT_NOCERTDB | NSS_INIT_NOMODDB |
                            NSS_INIT_FORCEOPEN | NSS_INIT_NOROOTINIT | NSS_INIT_OPTIMIZESPACE);
    if (context == NULL)
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "cannot start NSS without a database (is the NSS softoken "
                             "installed?)");
    return context;
}

gboolean caback_nss_nodb_close(NSSInitContext *context, GError **error)
{
    if (context == NULL)
        return TRUE;
    if (NSS_ShutdownContext(context) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "NSS did not shut down cleanly (a reference was leaked; this is a "
                             "bug in caback, please report it)");
        return FALSE;
    }
    return TRUE;
}

const char *caback_digest_name(SECOidTag alg)
{
    switch (alg) {
    case SEC_OID_SHA256:
        return "SHA-256";
    case SEC_OID_SHA384:
        return "SHA-384";
    case SEC_OID_SHA512:
        return "SHA-512";
    default:
        return NULL;
    }
}

static void hash_destroy(HASHContext *ctx)
{
    HASH_Destroy(ctx);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HASHContext, hash_destroy)

gboolean caback_file_feed(const char *path, CabackFeedFunc feed, gpointer user_data,
                          GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, e == ENOENT ? CABACK_ERROR_NOT_FOUND : CABACK_ERROR_IO,
                    "cannot read %s: %s", path, g_strerror(e));
        return FALSE;
    }
    guint8 buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot read %s: %s", path,
                        g_strerror(e));
            return FALSE;
        }
        if (n == 0)
            break;
        if (!feed(buf, (gsize)n, user_data, error)) {
            close(fd);
            return FALSE;
        }
    }
    close(fd);
    return TRUE;
}

static gboolean hash_feed(const guint8 *data, gsize len, gpointer user_data, GError **error)
{
    HASH_Update(user_data, data, (unsigned int)len);
    return TRUE;
}

GBytes *caback_digest_file(const char *path, SECOidTag alg, GError **error)
{
    HASH_HashType type = HASH_GetHashTypeByOidTag(alg);
    g_autoptr(HASHContext) ctx = type == HASH_AlgNULL ? NULL : HASH_Create(type);

    if (ctx == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot start a %s digest of %s",
                             SECOID_FindOIDTagDescription(alg), path);
        return NULL;
    }
    HASH_Begin(ctx);
    if (!caback_file_feed(path, hash_feed, ctx, error))
        return NULL;

    unsigned char out[HASH_LENGTH_MAX];
    unsigned int len = 0;
    HASH_End(ctx, out, &len, sizeof out);
    return g_bytes_new(out, len);
}

char *caback_digest_to_hex(GBytes *bytes)
{
    gsize len = 0;
    const guint8 *p = g_bytes_get_data(bytes, &len);
    GString *s = g_string_sized_new(len * 2 + 1);

    for (gsize i = 0; i < len; i++)
        g_string_append_printf(s, "%02x", p[i]);
    return g_string_free(s, FALSE);
}

char *caback_digest_bytes_sha256_hex(GBytes *bytes, GError **error)
{
    NSSInitContext *own = NULL;
    gsize len = 0;
    const guint8 *data = g_bytes_get_data(bytes, &len);
    unsigned char out[32];
    char *hex = NULL;

    if (!NSS_IsInitialized() && (own = caback_nss_nodb_open(error)) == NULL)
        return NULL;
    if (len > G_MAXINT32 || PK11_HashBuf(SEC_OID_SHA256, out, data, (PRInt32)len) != SECSuccess)
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot compute a SHA-256 digest");
    else {
        g_autoptr(GBytes) digest = g_bytes_new_static(out, sizeof out);
        hex = caback_digest_to_hex(digest);
    }
    if (!caback_nss_nodb_close(own, hex != NULL ? error : NULL))
        g_clear_pointer(&hex, g_free);
    return hex;
}

char *caback_digest_file_sha256_hex(const char *path, GError **error)
{
    NSSInitContext *own = NULL;

    if (!NSS_IsInitialized() && (own = caback_nss_nodb_open(error)) == NULL)
        return NULL;
    g_autoptr(GBytes) digest = caback_digest_file(path, SEC_OID_SHA256, error);
    if (!caback_nss_nodb_close(own, digest != NULL ? error : NULL))
        return NULL;
    return digest != NULL ? caback_digest_to_hex(digest) : NULL;
}
