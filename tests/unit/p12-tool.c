/* Test helper for the PKCS#12 codec (not installed): writes a file from an NSS database with
 * caback's writer, and dumps what caback's reader finds in a file, one fact per line, so that
 * tests/test-p12-interop.sh can compare caback with OpenSSL, pk12util and certtool.
 *
 *   p12-tool write -d DIR [-f DBPASSFILE] -o OUT -w P12PASSFILE [--legacy] [--pbmac1]
 *                  [--iterations N] NICKNAME...
 *   p12-tool dump -w P12PASSFILE [--describe] FILE
 *   p12-tool import -d DIR [-f DBPASSFILE] -w P12PASSFILE FILE
 *
 * import puts every key of FILE that has a certificate (same localKeyID) into the database as a
 * permanent key with caback_p12_key_import, under the friendly name, and the certificate beside
 * it: a minimal restore, to check the permanent import path against certutil.
 *
 * The dump prints "mac: ...", "safe: ...", then "cert: name=... keyid=... trust=...",
 * "key: name=... keyid=... shrouded=... [type=... bits=...]", "crl: ...", "warning: ...". */
#include "config.h"

#include <caback/db.h>
#include <caback/error.h>
#include <caback/nss-util.h>
#include <caback/p12.h>
#include <caback/secret.h>

#include <certdb.h>
#include <nss.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *hex(GBytes *bytes)
{
    if (bytes == NULL)
        return g_strdup("-");
    gsize len;
    const guint8 *d = g_bytes_get_data(bytes, &len);
    GString *s = g_string_new(NULL);
    for (gsize i = 0; i < len; i++)
        g_string_append_printf(s, "%02x", d[i]);
    return g_string_free(s, FALSE);
}

static CabackSecret *read_password(const char *file, GError **error)
{
    if (file == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE, "-w FILE is required");
        return NULL;
    }
    g_autofree char *contents = NULL;
    gsize len = 0;
    if (!g_file_get_contents(file, &contents, &len, error))
        return NULL;
    return caback_p12_password_parse_file(contents, len);
}

static const char *type_name(KeyType t)
{
    switch (t) {
    case rsaKey:
        return "rsa";
    case rsaPssKey:
        return "rsa-pss";
    case ecKey:
        return "ec";
    case dsaKey:
        return "dsa";
    default:
        return "unknown";
    }
}

/* NSS's trust string ("CTu,Cu,Cu"): libnss3 does not export CERT_EncodeTrustString, so the
 * letters are spelled here in NSS's order (certdb.c EncodeFlags). */
static void trust_letters(GString *s, unsigned int f)
{
    if ((f & CERTDB_VALID_CA) && !(f & CERTDB_TRUSTED_CA) && !(f & CERTDB_TRUSTED_CLIENT_CA))
        g_string_append_c(s, 'c');
    if ((f & CERTDB_TERMINAL_RECORD) && !(f & CERTDB_TRUSTED))
        g_string_append_c(s, 'p');
    if (f & CERTDB_TRUSTED_CA)
        g_string_append_c(s, 'C');
    if (f & CERTDB_TRUSTED_CLIENT_CA)
        g_string_append_c(s, 'T');
    if (f & CERTDB_TRUSTED)
        g_string_append_c(s, 'P');
    if (f & CERTDB_USER)
        g_string_append_c(s, 'u');
    if (f & CERTDB_SEND_WARN)
        g_string_append_c(s, 'w');
    if (f & CERTDB_INVISIBLE_CA)
        g_string_append_c(s, 'I');
    if (f & CERTDB_GOVT_APPROVED_CA)
        g_string_append_c(s, 'G');
}

static char *trust_string(CERTCertificate *cert)
{
    CERTCertTrust t;
    if (CERT_GetCertTrust(cert, &t) != SECSuccess)
        return NULL;
    GString *s = g_string_new(NULL);
    trust_letters(s, t.sslFlags);
    g_string_append_c(s, ',');
    trust_letters(s, t.emailFlags);
    g_string_append_c(s, ',');
    trust_letters(s, t.objectSigningFlags);
    return g_string_free(s, FALSE);
}

static int dump(int argc, char **argv)
{
    g_autofree char *pwfile = NULL; /* GOption allocates filename arguments */
    gboolean describe = FALSE;
    GOptionEntry entries[] = {
        {"password-file", 'w', 0, G_OPTION_ARG_FILENAME, &pwfile, "PKCS#12 password", "FILE"},
        {"describe", 0, 0, G_OPTION_ARG_NONE, &describe, "decrypt keys for type and size", NULL},
        {NULL}};
    g_autoptr(GOptionContext) ctx = g_option_context_new("FILE");
    g_autoptr(GError) error = NULL;
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error) || argc != 2) {
        fprintf(stderr, "p12-tool dump: %s\n", error != NULL ? error->message : "one FILE");
        return 2;
    }
    g_autoptr(CabackSecret) pw = read_password(pwfile, &error);
    if (pw == NULL) {
        fprintf(stderr, "p12-tool dump: %s\n", error->message);
        return 2;
    }
    if (NSS_NoDB_Init(NULL) != SECSuccess) {
        fprintf(stderr, "p12-tool dump: cannot initialise NSS\n");
        return 1;
    }
    int status = 0;
    guint before = caback_p12_derivations();
    {
        g_autoptr(CabackP12File) file = caback_p12_read_file(argv[1], pw, &error);
        if (file == NULL) {
            fprintf(stderr, "p12-tool dump: %s\n", error->message);
            status = caback_error_exit_code(error);
            goto out;
        }
        const CabackP12Info *info = caback_p12_file_info(file);
        printf("mac: %s\n", info->mac != NULL ? info->mac : "none");
        for (guint i = 0; i < info->safes->len; i++)
            printf("safe: %s\n", (char *)info->safes->pdata[i]);
        GPtrArray *certs = caback_p12_file_certs(file);
        for (guint i = 0; i < certs->len; i++) {
            CabackP12Cert *c = certs->pdata[i];
            g_autofree char *id = hex(c->attrs.local_key_id);
            printf("cert: name=%s keyid=%s trust=%s protection=%s\n",
                   c->attrs.friendly_name != NULL ? c->attrs.friendly_name : "-", id,
                   c->attrs.trust_flags != NULL ? c->attrs.trust_flags : "-", c->protection);
        }
        GPtrArray *keys = caback_p12_file_keys(file);
        for (guint i = 0; i < keys->len; i++) {
            CabackP12Key *k = keys->pdata[i];
            g_autofree char *id = hex(k->attrs.local_key_id);
            printf("key: name=%s keyid=%s shrouded=%s protection=%s",
                   k->attrs.friendly_name != NULL ? k->attrs.friendly_name : "-", id,
                   k->shrouded ? "yes" : "no", k->protection);
            if (describe) {
                KeyType type;
                guint bits;
                if (!caback_p12_key_describe(file, k, NULL, &type, &bits, &error)) {
                    printf("\n");
                    fprintf(stderr, "p12-tool dump: %s\n", error->message);
                    status = caback_error_exit_code(error);
                    goto out;
                }
                printf(" type=%s bits=%u oid=%s", type_name(type), bits, k->algorithm_oid);
            }
            printf("\n");
        }
        GPtrArray *crls = caback_p12_file_crls(file);
        for (guint i = 0; i < crls->len; i++) {
            CabackP12Crl *c = crls->pdata[i];
            printf("crl: name=%s bytes=%" G_GSIZE_FORMAT "\n",
                   c->attrs.friendly_name != NULL ? c->attrs.friendly_name : "-",
                   g_bytes_get_size(c->der));
        }
        for (guint i = 0; i < info->warnings->len; i++)
            printf("warning: %s\n", (char *)info->warnings->pdata[i]);
        printf("derivations: %u\n", caback_p12_derivations() - before);
    }
out:
    if (NSS_Shutdown() != SECSuccess) {
        fprintf(stderr, "p12-tool dump: NSS did not shut down cleanly (leaked reference)\n");
        return 1;
    }
    return status;
}

static gboolean write_nicknames(CabackDb *db, const CabackP12WriteOptions *wo,
                                const CabackSecret *pw, const char *out, int n, char **nicks,
                                GError **error)
{
    guint before = caback_p12_derivations();
    g_autoptr(CabackP12Writer) w = caback_p12_writer_new(wo, pw, error);
    if (w == NULL)
        return FALSE;
    for (int i = 0; i < n; i++) {
        g_autoptr(CERTCertList) list = PK11_FindCertsFromNickname(nicks[i], db);
        if (list == NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND, "no certificate %s", nicks[i]);
            return FALSE;
        }
        for (CERTCertListNode *node = CERT_LIST_HEAD(list); !CERT_LIST_END(node, list);
             node = CERT_LIST_NEXT(node)) {
            g_autoptr(SECKEYPrivateKey) key = PK11_FindKeyByAnyCert(node->cert, db);
            g_autoptr(SECItem) id = key != NULL ? PK11_GetLowLevelKeyIDForPrivateKey(key) : NULL;
            if (key != NULL && !caback_p12_writer_add_key(w, key, nicks[i], id, db, error))
                return FALSE;
            g_autofree char *flags = trust_string(node->cert);
            if (!caback_p12_writer_add_cert(w, node->cert, nicks[i], id, flags, error))
                return FALSE;
        }
    }
    g_autoptr(GBytes) bytes = caback_p12_writer_finish(w, error);
    if (bytes == NULL ||
        !g_file_set_contents(out, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes), error))
        return FALSE;
    printf("derivations: %u\n", caback_p12_derivations() - before);
    return TRUE;
}

static int write_file(int argc, char **argv)
{
    g_autofree char *dbdir = NULL, *dbpass = NULL, *out = NULL, *pwfile = NULL;
    gboolean legacy = FALSE, pbmac1 = FALSE;
    gint iterations = 0;
    GOptionEntry entries[] = {
        {"dbdir", 'd', 0, G_OPTION_ARG_FILENAME, &dbdir, "NSS database", "DIR"},
        {"db-password-file", 'f', 0, G_OPTION_ARG_FILENAME, &dbpass, "database password", "FILE"},
        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &out, "PKCS#12 file to write", "FILE"},
        {"password-file", 'w', 0, G_OPTION_ARG_FILENAME, &pwfile, "PKCS#12 password", "FILE"},
        {"legacy", 0, 0, G_OPTION_ARG_NONE, &legacy, "legacy profile", NULL},
        {"pbmac1", 0, 0, G_OPTION_ARG_NONE, &pbmac1, "PBMAC1 MAC", NULL},
        {"iterations", 0, 0, G_OPTION_ARG_INT, &iterations, "iteration count", "N"},
        {NULL}};
    g_autoptr(GOptionContext) ctx = g_option_context_new("NICKNAME...");
    g_autoptr(GError) error = NULL;
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error) || argc < 2 || out == NULL ||
        dbdir == NULL) {
        fprintf(stderr, "p12-tool write: %s\n",
                error != NULL ? error->message : "-d DIR, -o FILE and NICKNAME... are required");
        return 2;
    }
    g_autoptr(CabackSecret) pw = read_password(pwfile, &error);
    if (pw == NULL) {
        fprintf(stderr, "p12-tool write: %s\n", error->message);
        return 2;
    }
    CabackDbOptions options = {0};
    options.dbdir = dbdir;
    options.password.file = dbpass;
    options.password.no_prompt = TRUE;
    CabackDb *db = caback_db_open(&options, &error);
    if (db == NULL || !caback_db_login(db, &error)) {
        fprintf(stderr, "p12-tool write: %s\n", error->message);
        caback_db_free(db);
        return caback_error_exit_code(error);
    }
    CabackP12WriteOptions wo = {legacy ? CABACK_P12_LEGACY : CABACK_P12_MODERN,
                                pbmac1 ? CABACK_P12_MAC_PBMAC1 : CABACK_P12_MAC_HMAC,
                                (guint)iterations};
    int status = 0;
    if (!write_nicknames(db, &wo, pw, out, argc - 1, argv + 1, &error)) {
        fprintf(stderr, "p12-tool write: %s\n", error->message);
        status = caback_error_exit_code(error);
    }
    g_clear_error(&error);
    if (!caback_db_close(db, &error)) {
        fprintf(stderr, "p12-tool write: %s\n", error->message);
        return 1;
    }
    return status;
}

static gboolean import_all(CabackDb *db, CabackP12File *file, GError **error)
{
    GPtrArray *keys = caback_p12_file_keys(file);
    GPtrArray *certs = caback_p12_file_certs(file);
    for (guint i = 0; i < keys->len; i++) {
        CabackP12Key *k = keys->pdata[i];
        CabackP12Cert *c = NULL;
        for (guint j = 0; j < certs->len && c == NULL; j++) {
            CabackP12Cert *x = certs->pdata[j];
            if (k->attrs.local_key_id != NULL && x->attrs.local_key_id != NULL &&
                g_bytes_equal(k->attrs.local_key_id, x->attrs.local_key_id))
                c = x;
        }
        if (c == NULL)
            continue;
        gsize len;
        const guint8 *der = g_bytes_get_data(c->der, &len);
        SECItem item = {siBuffer, (unsigned char *)der, (unsigned int)len};
        g_autoptr(CERTCertificate) cert =
            CERT_NewTempCertificate(CERT_GetDefaultCertDB(), &item, NULL, PR_FALSE, PR_TRUE);
        g_autoptr(SECKEYPublicKey) pub = cert != NULL ? CERT_ExtractPublicKey(cert) : NULL;
        if (pub == NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                        "certificate bag of key %u cannot be decoded", i + 1);
            return FALSE;
        }
        SECItem *value = pub->keyType == rsaKey ? &pub->u.rsa.modulus : &pub->u.ec.publicValue;
        SECKEYPrivateKey *priv = caback_p12_key_import(file, k, db->slot, k->attrs.friendly_name,
                                                       value, TRUE, TRUE, db, error);
        if (priv == NULL)
            return FALSE;
        SECKEY_DestroyPrivateKey(priv);
        if (PK11_ImportCert(db->slot, cert, CK_INVALID_HANDLE, k->attrs.friendly_name, PR_FALSE) !=
            SECSuccess) {
            caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot import certificate %s",
                                 k->attrs.friendly_name);
            return FALSE;
        }
        printf("imported: %s\n", k->attrs.friendly_name);
    }
    return TRUE;
}

static int import_file(int argc, char **argv)
{
    g_autofree char *dbdir = NULL, *dbpass = NULL, *pwfile = NULL;
    GOptionEntry entries[] = {
        {"dbdir", 'd', 0, G_OPTION_ARG_FILENAME, &dbdir, "NSS database", "DIR"},
        {"db-password-file", 'f', 0, G_OPTION_ARG_FILENAME, &dbpass, "database password", "FILE"},
        {"password-file", 'w', 0, G_OPTION_ARG_FILENAME, &pwfile, "PKCS#12 password", "FILE"},
        {NULL}};
    g_autoptr(GOptionContext) ctx = g_option_context_new("FILE");
    g_autoptr(GError) error = NULL;
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error) || argc != 2 || dbdir == NULL) {
        fprintf(stderr, "p12-tool import: %s\n",
                error != NULL ? error->message : "-d DIR and one FILE are required");
        return 2;
    }
    g_autoptr(CabackSecret) pw = read_password(pwfile, &error);
    if (pw == NULL) {
        fprintf(stderr, "p12-tool import: %s\n", error->message);
        return 2;
    }
    CabackDbOptions options = {0};
    options.dbdir = dbdir;
    options.password.file = dbpass;
    options.password.no_prompt = TRUE;
    CabackDb *db = caback_db_open(&options, &error);
    if (db == NULL || !caback_db_login(db, &error)) {
        fprintf(stderr, "p12-tool import: %s\n", error->message);
        caback_db_free(db);
        return caback_error_exit_code(error);
    }
    int status = 0;
    {
        g_autoptr(CabackP12File) file = caback_p12_read_file(argv[1], pw, &error);
        if (file == NULL || !import_all(db, file, &error)) {
            fprintf(stderr, "p12-tool import: %s\n", error->message);
            status = caback_error_exit_code(error);
        }
    }
    g_clear_error(&error);
    if (!caback_db_close(db, &error)) {
        fprintf(stderr, "p12-tool import: %s\n", error->message);
        return 1;
    }
    return status;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "import") == 0)
        return import_file(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "dump") == 0)
        return dump(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "write") == 0)
        return write_file(argc - 1, argv + 1);
    fprintf(stderr, "usage: p12-tool write|dump ...\n");
    return 2;
}
