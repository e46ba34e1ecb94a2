/* Test helper for M-of-N custody (not installed): splits a fresh archive secret for a file with
 * caback's library and writes the share envelopes, and combines shares back, so that
 * tests/test-share-open.sh can check the envelopes against OpenSSL and caback share-open before
 * "backup --split" uses the same calls.
 *
 *   custody-tool split FILE M CERT...   writes FILE.share-I-of-N.p7m (CERT: PEM or DER), and
 *                                       prints "password-sha256: HEX" (never the password) and
 *                                       "rebuilt-password-sha256: HEX" from the last M shares
 *                                       the library handed back
 *   custody-tool combine FILE [-d DIR [-f PASSFILE]] SHARE...
 *                                       prints "password-sha256: HEX" of the rebuilt password
 */
#include "config.h"

#include <caback/cms.h>
#include <caback/custody.h>
#include <caback/db.h>
#include <caback/digest.h>
#include <caback/error.h>
#include <caback/nss-util.h>

#include <nss.h>
#include <stdio.h>
#include <string.h>

static CERTCertificate *load_cert(const char *path, GError **error)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &data, &len, error))
        return NULL;
    g_autoptr(GPtrArray) certs = caback_pem_certificates(data, len);
    if (certs == NULL || certs->len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED, "%s: no certificate", path);
        return NULL;
    }
    GBytes *der = g_ptr_array_index(certs, 0);
    gsize der_len = 0;
    SECItem item = {siBuffer, (unsigned char *)g_bytes_get_data(der, &der_len), 0};
    item.len = (unsigned int)der_len;
    CERTCertificate *cert =
        CERT_NewTempCertificate(CERT_GetDefaultCertDB(), &item, NULL, PR_FALSE, PR_TRUE);
    if (cert == NULL)
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "%s: not a certificate", path);
    return cert;
}

static void print_password_digest(const CabackSecret *password)
{
    guint8 digest[32];
    PK11_HashBuf(SEC_OID_SHA256, digest, (const unsigned char *)password->data,
                 (PRInt32)password->len);
    printf("password-sha256: ");
    for (int i = 0; i < 32; i++)
        printf("%02x", digest[i]);
    printf("\n");
}

static gboolean file_sha256(const char *path, guint8 out[32], GError **error)
{
    g_autoptr(GBytes) digest = caback_digest_file(path, SEC_OID_SHA256, error);
    if (digest == NULL)
        return FALSE;
    memcpy(out, g_bytes_get_data(digest, NULL), 32);
    return TRUE;
}

static gboolean split(int argc, char **argv, GError **error)
{
    if (argc < 5) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE, "split FILE M CERT...");
        return FALSE;
    }
    guint8 sha[32];
    if (!file_sha256(argv[2], sha, error))
        return FALSE;
    guint count = (guint)(argc - 4);
    g_autoptr(GPtrArray) certs = g_ptr_array_new_with_free_func(
        (GDestroyNotify)CERT_DestroyCertificate);
    for (guint i = 0; i < count; i++) {
        CERTCertificate *cert = load_cert(argv[4 + i], error);
        if (cert == NULL)
            return FALSE;
        g_ptr_array_add(certs, cert);
    }
    g_autoptr(CabackSecret) secret = caback_custody_secret_new(error);
    if (secret == NULL)
        return FALSE;
    g_autoptr(GPtrArray) paths = NULL, prints = NULL, shares = NULL;
    if (!caback_custody_write_shares(argv[2], secret, (guint)g_ascii_strtoull(argv[3], NULL, 10),
                                     (CERTCertificate *const *)certs->pdata, count, sha, FALSE,
                                     &paths, &prints, &shares, error))
        return FALSE;
    for (guint i = 0; i < paths->len; i++)
        printf("share: %s custodian-sha256: %s\n", (char *)paths->pdata[i],
               (char *)prints->pdata[i]);
    g_autoptr(CabackSecret) password = caback_custody_password(secret);
    print_password_digest(password);
    /* the shares handed back: the last M of them rebuild the same password (what backup's
     * verification does before it opens the archive with it) */
    const CabackShare *first = g_ptr_array_index(shares, 0);
    g_autoptr(GPtrArray) some = g_ptr_array_new();
    for (guint i = shares->len - first->threshold; i < shares->len; i++)
        g_ptr_array_add(some, g_ptr_array_index(shares, i));
    g_autoptr(CabackSecret) rebuilt = caback_custody_password_from_shares(some, sha, error);
    if (rebuilt == NULL)
        return FALSE;
    printf("rebuilt-");
    print_password_digest(rebuilt);
    return TRUE;
}

static gboolean combine(int argc, char **argv, GError **error)
{
    CabackDbOptions options = {0};
    int i = 3;
    if (argc < 4) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE, "combine FILE [-d DIR] SHARE...");
        return FALSE;
    }
    if (i + 1 < argc && strcmp(argv[i], "-d") == 0) {
        options.dbdir = argv[i + 1];
        i += 2;
    }
    if (i + 1 < argc && strcmp(argv[i], "-f") == 0) {
        options.password.file = argv[i + 1];
        i += 2;
    }
    options.password.no_prompt = TRUE;
    options.read_only = TRUE;
    g_autoptr(CabackDb) db = NULL;
    if (options.dbdir != NULL) {
        db = caback_db_open(&options, error);
        if (db == NULL || !caback_db_login(db, error))
            return FALSE;
    }
    guint8 sha[32];
    if (!file_sha256(argv[2], sha, error))
        return FALSE;
    g_autoptr(GPtrArray) shares = caback_share_array_new();
    for (; i < argc; i++) {
        CabackShare *share = caback_share_read(argv[i], db, error);
        if (share == NULL)
            return FALSE;
        g_ptr_array_add(shares, share);
    }
    g_autoptr(CabackSecret) password = caback_custody_password_from_shares(shares, sha, error);
    if (password == NULL)
        return FALSE;
    print_password_digest(password);
    g_clear_pointer(&shares, g_ptr_array_unref);
    return db == NULL || caback_db_close(g_steal_pointer(&db), error);
}

int main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    gboolean ok = FALSE;
    gboolean own_nss = FALSE;

    if (argc < 2) {
        fprintf(stderr, "usage: custody-tool split|combine ...\n");
        return 2;
    }
    if (strcmp(argv[1], "split") == 0) {
        if (NSS_NoDB_Init(NULL) != SECSuccess) {
            fprintf(stderr, "NSS_NoDB_Init failed\n");
            return 1;
        }
        own_nss = TRUE;
        ok = split(argc, argv, &error);
    } else if (strcmp(argv[1], "combine") == 0) {
        /* NSS comes from the database, or a context without one */
        NSSInitContext *ctx = NULL;
        gboolean with_db = argc > 4 && strcmp(argv[3], "-d") == 0;
        if (!with_db)
            ctx = caback_nss_nodb_open(&error);
        if (with_db || ctx != NULL)
            ok = combine(argc, argv, &error);
        if (ctx != NULL && !caback_nss_nodb_close(ctx, ok ? &error : NULL))
            ok = FALSE;
    } else {
        fprintf(stderr, "custody-tool: unknown command %s\n", argv[1]);
        return 2;
    }
    if (own_nss && NSS_Shutdown() != SECSuccess && ok) {
        fprintf(stderr, "custody-tool: NSS_Shutdown: a reference was leaked\n");
        return 1;
    }
    if (!ok) {
        fprintf(stderr, "custody-tool: %s\n", error->message);
        return caback_error_exit_code(error);
    }
    return 0;
}
