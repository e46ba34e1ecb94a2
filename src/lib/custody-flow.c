/* The custody flows: custodian certificates read and checked (custody-flow.h). */
#include "config.h"

#include <caback/atomic-file.h>
#include <caback/cms.h>
#include <caback/custody.h>
#include <caback/custody-flow.h>
#include <caback/error.h>
#include <caback/json.h>
#include <caback/names.h>
#include <caback/nss-util.h>

#include <cert.h>
#include <certt.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <keyhi.h>
#include <pk11pub.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void caback_custodian_free(CabackCustodian *custodian)
{
    if (custodian == NULL)
        return;
    g_free(custodian->path);
    if (custodian->cert != NULL)
        CERT_DestroyCertificate(custodian->cert);
    g_free(custodian->fingerprint);
    g_free(custodian->subject);
    g_free(custodian);
}

/* What fstat says @mode is, for a refusal. */
static const char *file_kind(mode_t mode)
{
    return S_ISFIFO(mode)   ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISDIR(mode)  ? "a folder"
           : S_ISSOCK(mode) ? "a socket"
                            : "not a regular file";
}

/* The bytes of the certificate file @name, relative to @dirfd (AT_FDCWD for a path as given):
 * opened without following a symbolic link and without blocking, read only when fstat on that
 * descriptor says it is a regular file of at most CABACK_CUSTODY_CERT_MAX_BYTES, and refused
 * when it grows while read. @shown names it in messages. */
static GBytes *read_cert_file(int dirfd, const char *name, const char *shown, GError **error)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, e == ENOENT ? CABACK_ERROR_NOT_FOUND : CABACK_ERROR_IO,
                    "cannot read the custodian certificate %s: %s", shown,
                    e == ELOOP ? "it is a symbolic link, which is not followed; give the file it "
                                 "points to"
                               : g_strerror(e));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot read the custodian certificate %s: %s", shown, g_strerror(e));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "cannot read the custodian certificate %s: it is %s; give a PEM or DER "
                    "certificate file",
                    shown, file_kind(st.st_mode));
        close(fd);
        return NULL;
    }
    if (st.st_size > CABACK_CUSTODY_CERT_MAX_BYTES) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "the custodian certificate %s is %lld bytes, more than the %d a certificate "
                    "file may have; give the custodian's own certificate, one per file",
                    shown, (long long)st.st_size, CABACK_CUSTODY_CERT_MAX_BYTES);
        close(fd);
        return NULL;
    }
    gsize got = 0;
    int e = 0;
    guint8 *data = caback_fd_read_capped(fd, CABACK_CUSTODY_CERT_MAX_BYTES, &got, &e);
    close(fd);
    if (data == NULL && e == EFBIG)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "the custodian certificate %s grew beyond %d bytes while it was read",
                    shown, CABACK_CUSTODY_CERT_MAX_BYTES);
    else if (data == NULL)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot read the custodian certificate %s: %s", shown, g_strerror(e));
    return data != NULL ? g_bytes_new_take(data, got) : NULL;
}

static char *sha256_hex(const SECItem *der)
{
    guint8 digest[32];
    if (PK11_HashBuf(SEC_OID_SHA256, digest, der->data, (PRInt32)der->len) != SECSuccess)
        return NULL;
    GString *s = g_string_sized_new(64);
    for (gsize i = 0; i < sizeof digest; i++)
        g_string_append_printf(s, "%02x", digest[i]);
    return g_string_free(s, FALSE);
}

/* The one certificate of the custodian file @bytes (PEM or DER), with its escaped subject and
 * its SHA-256 fingerprint. */
static CabackCustodian *read_custodian_cert(GBytes *bytes, const char *shown, GError **error)
{
    gsize len = 0;
    const char *data = g_bytes_get_data(bytes, &len);
    g_autoptr(GPtrArray) ders = caback_pem_certificates(data, len);
    if (ders == NULL || ders->len != 1) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "%s holds %u certificates; a custodian file holds exactly one certificate "
                    "(the custodian's own, PEM or DER), not a chain",
                    shown, ders != NULL ? ders->len : 0);
        return NULL;
    }
    gsize n = 0;
    const void *der = g_bytes_get_data(ders->pdata[0], &n);
    SECItem item = {siDERCertBuffer, (unsigned char *)der, (unsigned int)n};
    g_autoptr(CabackCustodian) c = g_new0(CabackCustodian, 1);
    c->path = g_strdup(shown);
    c->cert = CERT_NewTempCertificate(CERT_GetDefaultCertDB(), &item, NULL, PR_FALSE, PR_TRUE);
    if (c->cert == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_USAGE,
                             "%s is not an X.509 certificate (give the custodian's certificate, "
                             "PEM or DER)",
                             shown);
        return NULL;
    }
    c->subject = caback_name_escape(c->cert->subjectName != NULL ? c->cert->subjectName : "",
                                    NULL);
    c->fingerprint = sha256_hex(&c->cert->derCert);
    if (c->fingerprint == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot compute the SHA-256 of %s",
                             shown);
        return NULL;
    }
    return g_steal_pointer(&c);
}

/* The share core can encrypt to RSA (key transport, OAEP) and EC (key agreement) keys of the
 * sizes and curves CMS shares: @c's key type, and the key usage (*@needed, *@usage_name) its
 * encryption needs. */
static gboolean check_key_kind(CabackCustodian *c, const char *shown, unsigned int *needed,
                               const char **usage_name, GError **error)
{
    KeyType type = CERT_GetCertKeyType(&c->cert->subjectPublicKeyInfo);
    if (type == rsaKey) {
        c->key_type = "RSA";
        *needed = KU_KEY_ENCIPHERMENT;
        *usage_name = "keyEncipherment";
    } else if (type == ecKey) {
        c->key_type = "EC";
        *needed = KU_KEY_AGREEMENT;
        *usage_name = "keyAgreement";
    } else {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "the custodian certificate %s (%s) has a key that cannot receive an "
                    "encrypted share (only RSA and EC keys can); give an RSA or EC certificate",
                    shown, c->subject);
        return FALSE;
    }

    /* A short RSA key, an EC curve outside CMS's shared ones: what no envelope is made for. */
    g_autofree char *unsupported = caback_custody_certificate_unsupported(c->cert);
    if (unsupported != NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "the custodian certificate %s (%s) cannot receive a share: %s; ask the "
                    "custodian for a certificate with an RSA key of 2048 bits or more, or an EC "
                    "key on P-256, P-384 or P-521",
                    shown, c->subject, unsupported);
        return FALSE;
    }
    return TRUE;
}

/* @c is valid now and its key usage allows encryption (@needed); with @force, what is not is a
 * warning instead. */
static gboolean check_for_encryption(const CabackCustodian *c, const char *shown, gboolean force,
                                     unsigned int needed, const char *usage_name,
                                     GPtrArray *warnings, GError **error)
{
    g_autofree char *problem = NULL;
    switch (CERT_CheckCertValidTimes(c->cert, PR_Now(), PR_FALSE)) {
    case secCertTimeValid:
        break;
    case secCertTimeExpired:
        problem = g_strdup("has expired");
        break;
    case secCertTimeNotValidYet:
        problem = g_strdup("is not valid yet");
        break;
    default:
        problem = g_strdup("has an unreadable validity period");
        break;
    }
    if (problem != NULL) {
        if (!force) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "the custodian certificate %s (%s) %s; ask the custodian for a current "
                        "certificate, or give --force to encrypt a share to it anyway",
                        shown, c->subject, problem);
            return FALSE;
        }
        if (warnings != NULL)
            g_ptr_array_add(warnings, g_strdup_printf("the custodian certificate %s (%s) %s "
                                                      "(used because of --force)",
                                                      shown, c->subject, problem));
    }
    if (c->cert->keyUsagePresent && (c->cert->keyUsage & needed) == 0) {
        if (!force) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "the key usage of the custodian certificate %s (%s) forbids encryption "
                        "(an %s key needs %s); ask the custodian for an encryption certificate, "
                        "or give --force to use it anyway",
                        shown, c->subject, c->key_type, usage_name);
            return FALSE;
        }
        if (warnings != NULL)
            g_ptr_array_add(warnings,
                            g_strdup_printf("the key usage of the custodian certificate %s (%s) "
                                            "forbids encryption (no %s); used because of --force",
                                            shown, c->subject, usage_name));
    }
    return TRUE;
}

/* The custodian certificate in @bytes (the contents of @shown). */
static CabackCustodian *parse_custodian(GBytes *bytes, const char *shown, gboolean force,
                                        GPtrArray *warnings, GError **error)
{
    g_autoptr(CabackCustodian) c = read_custodian_cert(bytes, shown, error);
    unsigned int needed = 0;
    const char *usage_name = NULL;
    if (c == NULL || !check_key_kind(c, shown, &needed, &usage_name, error) ||
        !check_for_encryption(c, shown, force, needed, usage_name, warnings, error))
        return NULL;
    return g_steal_pointer(&c);
}

static gboolean cert_file_name(const char *name)
{
    static const char *const suffixes[] = {".pem", ".crt", ".cer", ".der"};
    if (name[0] == '.')
        return FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(suffixes); i++)
        if (g_str_has_suffix(name, suffixes[i]) && strlen(name) > strlen(suffixes[i]))
            return TRUE;
    return FALSE;
}

static gint compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Add @c to @all unless it repeats a certificate or a public key already there. */
static gboolean add_custodian(GPtrArray *all, CabackCustodian *c, GError **error)
{
    for (guint i = 0; i < all->len; i++) {
        const CabackCustodian *o = all->pdata[i];
        if (strcmp(o->fingerprint, c->fingerprint) == 0) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "the custodian certificate %s is given twice (%s and %s, SHA-256 %s); "
                        "each custodian must be a different person with their own certificate",
                        c->subject, o->path, c->path, c->fingerprint);
            caback_custodian_free(c);
            return FALSE;
        }
        if (SECITEM_ItemsAreEqual(&o->cert->derPublicKey, &c->cert->derPublicKey)) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "the custodian certificates %s and %s hold the same public key: one key "
                        "would open two shares; give each custodian's own certificate",
                        o->path, c->path);
            caback_custodian_free(c);
            return FALSE;
        }
    }
    if (all->len >= CABACK_CUSTODY_MAX_SHARES) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "more than %d custodians (at %s): a backup can be split into at most %d "
                    "shares",
                    CABACK_CUSTODY_MAX_SHARES, c->path, CABACK_CUSTODY_MAX_SHARES);
        caback_custodian_free(c);
        return FALSE;
    }
    g_ptr_array_add(all, c);
    return TRUE;
}

static gboolean load_dir(GPtrArray *all, const char *dir, gboolean force, GPtrArray *warnings,
                         GError **error)
{
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dirfd < 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, e == ENOENT ? CABACK_ERROR_NOT_FOUND : CABACK_ERROR_IO,
                    "cannot read the custodian folder %s: %s", dir,
                    e == ELOOP || e == ENOTDIR ? "it is not a folder (symbolic links are not "
                                                 "followed)"
                                               : g_strerror(e));
        return FALSE;
    }
    int listfd = dup(dirfd);
    DIR *d = listfd >= 0 ? fdopendir(listfd) : NULL;
    if (d == NULL) {
        int e = errno;
        if (listfd >= 0)
            close(listfd);
        close(dirfd);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot read the custodian folder %s: %s",
                    dir, g_strerror(e));
        return FALSE;
    }
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (!cert_file_name(entry->d_name))
            continue;
        /* More names than custodians can be is refused below, by count; stop reading here. */
        if (names->len > 4 * CABACK_CUSTODY_MAX_SHARES)
            break;
        g_ptr_array_add(names, g_strdup(entry->d_name));
    }
    closedir(d);
    g_ptr_array_sort(names, compare_names);
    gboolean ok = TRUE;
    for (guint i = 0; ok && i < names->len; i++) {
        g_autofree char *escaped = caback_name_escape(names->pdata[i], NULL);
        g_autofree char *shown = g_build_filename(dir, escaped, NULL);
        g_autoptr(GBytes) bytes = read_cert_file(dirfd, names->pdata[i], shown, error);
        CabackCustodian *c =
            bytes != NULL ? parse_custodian(bytes, shown, force, warnings, error) : NULL;
        ok = c != NULL && add_custodian(all, c, error);
    }
    close(dirfd);
    return ok;
}

GPtrArray *caback_custodians_load(const char *const *files, const char *dir, gboolean force,
                                  GPtrArray *warnings, GError **error)
{
    g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func((GDestroyNotify)caback_custodian_free);
    for (const char *const *f = files; f != NULL && *f != NULL; f++) {
        g_autofree char *shown = caback_name_escape(*f, NULL);
        g_autoptr(GBytes) bytes = read_cert_file(AT_FDCWD, *f, shown, error);
        if (bytes == NULL)
            return NULL;
        CabackCustodian *c = parse_custodian(bytes, shown, force, warnings, error);
        if (c == NULL || !add_custodian(all, c, error))
            return NULL;
    }
    if (dir != NULL) {
        guint before = all->len;
        if (!load_dir(all, dir, force, warnings, error))
            return NULL;
        if (all->len == before) {
            g_autofree char *shown = caback_name_escape(dir, NULL);
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "the custodian folder %s holds no certificate file (*.pem, *.crt, *.cer "
                        "or *.der)",
                        shown);
            return NULL;
        }
    }
    return g_steal_pointer(&all);
}

gboolean caback_custody_check_split(const char *verb, gint64 m, guint n, GPtrArray *warnings,
                                    GError **error)
{
    if (n == 0) {
        return caback_error_usage(error, verb,
                                  "--split needs the custodians' certificates: give --custodian "
                                  "FILE for each one, or --custodian-dir DIR");
    }
    if (m < 1) {
        return caback_error_usage(error, verb,
                                  "--split %" G_GINT64_FORMAT " is not possible: at least 1 "
                                  "share must be needed to open the backup",
                                  m);
    }
    if (n > CABACK_CUSTODY_MAX_SHARES) {
        return caback_error_usage(error, verb,
                                  "%u custodians: a backup can be split into at most %d shares",
                                  n, CABACK_CUSTODY_MAX_SHARES);
    }
    if (m > (gint64)n) {
        return caback_error_usage(error, verb,
                                  "--split %" G_GINT64_FORMAT " needs at least %" G_GINT64_FORMAT
                                  " custodians, but %u %s given: nobody could ever open the "
                                  "backup",
                                  m, m, n, n == 1 ? "was" : "were");
    }
    if (m == 1 && warnings != NULL)
        g_ptr_array_add(warnings,
                        g_strdup_printf("--split 1: each of the %u custodian%s can open the "
                                        "backup alone; this is not custody (use --split 2 or "
                                        "more for that)",
                                        n, n == 1 ? "" : "s"));
    return TRUE;
}

/* ---- a share set next to an archive ---- */

struct CabackShareSet {
    GPtrArray *paths;   /* char*: final names, index order */
    GPtrArray *files;   /* CabackAtomicFile*, NULL once in place */
    GPtrArray *digests; /* char*: caback_share_text_digest of each share */
};

void caback_share_set_free(CabackShareSet *set)
{
    if (set == NULL)
        return;
    for (guint i = 0; i < set->files->len; i++)
        caback_atomic_file_abort(set->files->pdata[i]);
    g_ptr_array_unref(set->files);
    g_ptr_array_unref(set->paths);
    g_ptr_array_unref(set->digests);
    g_free(set);
}

GPtrArray *caback_share_set_paths(CabackShareSet *set)
{
    return set->paths;
}

GPtrArray *caback_share_set_digests(CabackShareSet *set)
{
    return set->digests;
}

char *caback_share_text_digest(const CabackShare *share)
{
    g_autoptr(CabackSecret) text = caback_share_to_text(share);
    SECItem item = {siBuffer, (unsigned char *)text->data, (unsigned int)text->len};
    return sha256_hex(&item);
}

gboolean caback_share_set_commit(CabackShareSet *set, gboolean replace, GError **error)
{
    for (guint i = 0; i < set->files->len; i++) {
        CabackAtomicFile *file = set->files->pdata[i];
        if (file == NULL)
            continue;
        set->files->pdata[i] = NULL;
        if (!caback_atomic_file_commit(file, replace, error))
            return FALSE;
    }
    return TRUE;
}

/* The password rebuilt from the shares at @indexes (from 0) of @shares, each first turned into
 * the record a custodian's share file holds and read back from it. */
static CabackSecret *rebuild_from(GPtrArray *shares, const guint *indexes, guint m,
                                  const guint8 *sha256, GPtrArray *paths, GError **error)
{
    g_autoptr(GPtrArray) subset = caback_share_array_new();
    for (guint k = 0; k < m; k++) {
        const CabackShare *share = shares->pdata[indexes[k]];
        g_autoptr(CabackSecret) record = caback_share_record_encode(share);
        CabackShare *back = caback_share_record_decode(record->data, record->len,
                                                       paths->pdata[indexes[k]], error);
        if (back == NULL)
            return NULL;
        g_ptr_array_add(subset, back);
    }
    return caback_custody_password_from_shares(subset, sha256, error);
}

CabackShareSet *caback_share_set_prepare(const char *archive_path, GBytes *archive,
                                         const CabackSecret *secret, guint threshold,
                                         GPtrArray *custodians, gboolean allow_shared_folder,
                                         CabackSecret **rebuilt, GError **error)
{
    guint n = custodians->len;
    gsize len = 0;
    const guint8 *data = g_bytes_get_data(archive, &len);
    guint8 sha256[32];
    if (PK11_HashBuf(SEC_OID_SHA256, sha256, data, (PRInt32)len) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot compute the SHA-256 of %s",
                             archive_path);
        return NULL;
    }
    g_autoptr(GPtrArray) shares = caback_custody_split(secret, threshold, n, sha256, error);
    if (shares == NULL)
        return NULL;

    g_autoptr(CabackShareSet) set = g_new0(CabackShareSet, 1);
    set->paths = g_ptr_array_new_with_free_func(g_free);
    set->files = g_ptr_array_new();
    set->digests = g_ptr_array_new_with_free_func(g_free);
    CabackAtomicFlags flags = allow_shared_folder ? 0 : CABACK_ATOMIC_PRIVATE_FOLDER;
    for (guint i = 0; i < n; i++) {
        CabackShare *share = shares->pdata[i];
        const CabackCustodian *c = custodians->pdata[i];
        share->has_custodian = TRUE;
        caback_custody_cert_sha256(c->cert, share->custodian_sha256);
        char *digest = caback_share_text_digest(share);
        if (digest == NULL) {
            caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot compute a SHA-256");
            return NULL;
        }
        g_ptr_array_add(set->digests, digest);
        char *path = caback_share_file_name(archive_path, i + 1, n);
        g_ptr_array_add(set->paths, path);
        g_autoptr(GBytes) envelope = caback_share_envelope(share, c->cert, error);
        if (envelope == NULL) {
            g_prefix_error(error, "share %u for custodian %s (%s): ", i + 1, c->path,
                           c->subject);
            return NULL;
        }
        CabackAtomicFile *file =
            caback_atomic_file_open(path, 0600, (uid_t)-1, (gid_t)-1, flags, error);
        if (file == NULL)
            return NULL;
        g_ptr_array_add(set->files, file);
        gsize elen = 0;
        const void *edata = g_bytes_get_data(envelope, &elen);
        if (!caback_atomic_file_write(file, edata, elen, error))
            return NULL;
    }

    /* Two different subsets of M when there are more than M shares: the first M and the last
     * M. Both must give the password the archive was written with. */
    g_autofree guint *first = g_new(guint, threshold);
    g_autofree guint *last = g_new(guint, threshold);
    for (guint k = 0; k < threshold; k++) {
        first[k] = k;
        last[k] = n - threshold + k;
    }
    g_autoptr(CabackSecret) expected = caback_custody_password(secret);
    g_autoptr(CabackSecret) a = rebuild_from(shares, first, threshold, sha256, set->paths, error);
    if (a == NULL)
        return NULL;
    g_autoptr(CabackSecret) b = rebuild_from(shares, last, threshold, sha256, set->paths, error);
    if (b == NULL)
        return NULL;
    if (a->len != expected->len || b->len != expected->len ||
        memcmp(a->data, expected->data, a->len) != 0 ||
        memcmp(b->data, expected->data, b->len) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "the shares made for %s do not rebuild its password; nothing was written "
                    "(this is a bug in caback, please report it)",
                    archive_path);
        return NULL;
    }
    *rebuilt = g_steal_pointer(&a);
    return g_steal_pointer(&set);
}

GPtrArray *caback_share_files_existing(const char *archive_path)
{
    g_autofree char *dir = g_path_get_dirname(archive_path);
    g_autofree char *base = g_path_get_basename(archive_path);
    g_autofree char *prefix = g_strconcat(base, ".share-", NULL);
    GPtrArray *found = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d != NULL && (name = g_dir_read_name(d)) != NULL)
        if (g_str_has_prefix(name, prefix) && g_str_has_suffix(name, ".p7m") &&
            strstr(name + strlen(prefix), "-of-") != NULL)
            g_ptr_array_add(found, g_build_filename(dir, name, NULL));
    g_ptr_array_sort(found, compare_names);
    return found;
}

/* ---- opening an archive with shares ---- */

gboolean caback_shares_need_db(const char *const *files)
{
    for (const char *const *f = files; f != NULL && *f != NULL; f++)
        if (g_str_has_suffix(*f, ".p7m"))
            return TRUE;
    return FALSE;
}

static const char *source_of(const CabackShare *share)
{
    return share->source != NULL ? share->source : "(unnamed)";
}

/* Check @share against the ones given before (@shares) and the archive: the same split, this
 * archive, an index not given yet. Named by index and source. */
static gboolean check_one(GPtrArray *shares, const CabackShare *share,
                          const guint8 *archive_sha256, const char *archive_path, GError **error)
{
    if (share->index < 1 || share->index > share->count || share->threshold < 1 ||
        share->threshold > share->count) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "share %u (%s) is damaged: it says it is share %u of %u, %u needed", share->index,
                    source_of(share), share->index, share->count, share->threshold);
        return FALSE;
    }
    gsize compared = share->archive_sha256_complete ? 32 : CABACK_CUSTODY_ARCHIVE_TAG_LEN;
    if (memcmp(share->archive_sha256, archive_sha256, compared) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "share %u (%s) is for another archive, not for %s (its SHA-256 differs): "
                    "give the shares made for this file",
                    share->index, source_of(share), archive_path);
        return FALSE;
    }
    for (guint i = 0; i < shares->len; i++) {
        const CabackShare *o = shares->pdata[i];
        if (memcmp(o->split_id, share->split_id, sizeof o->split_id) != 0 ||
            o->threshold != share->threshold || o->count != share->count) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                        "share %u (%s) belongs to another share set than share %u (%s) "
                        "(%u of %u, not %u of %u): give shares of one set only",
                        share->index, source_of(share), o->index, source_of(o), share->threshold,
                        share->count, o->threshold, o->count);
            return FALSE;
        }
        if (o->index == share->index) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                        "share %u is given twice: %s and %s; each custodian gives their own "
                        "share",
                        share->index, source_of(o), source_of(share));
            return FALSE;
        }
    }
    return TRUE;
}

static void notify(const CabackShareSources *sources, const char *format, ...)
    G_GNUC_PRINTF(2, 3);
static void notify(const CabackShareSources *sources, const char *format, ...)
{
    if (sources->notify == NULL)
        return;
    va_list ap;
    va_start(ap, format);
    g_autofree char *message = g_strdup_vprintf(format, ap);
    va_end(ap);
    sources->notify(message, sources->data);
}

/* The most shares typed wrong at the prompt before the run ends. */
#define PROMPT_MISTAKES 3

static gboolean ask_shares(const CabackShareSources *sources, GPtrArray *shares,
                           const guint8 *archive_sha256, const char *archive_path, GError **error)
{
    guint asked = 0, mistakes = 0;
    while (shares->len == 0 || shares->len < ((CabackShare *)shares->pdata[0])->threshold) {
        guint m = shares->len > 0 ? ((CabackShare *)shares->pdata[0])->threshold : 0;
        g_autofree char *what =
            m > 0 ? g_strdup_printf("next share of %s (%u of %u given)", archive_path,
                                    shares->len, m)
                  : g_strdup_printf("first share of %s", archive_path);
        g_autoptr(CabackSecret) text = caback_password_prompt(what, error);
        if (text == NULL)
            return FALSE;
        asked++;
        g_autofree char *source = g_strdup_printf("typed at prompt %u", asked);
        g_autoptr(GError) local = NULL;
        g_autoptr(CabackShare) share = caback_share_from_text(text->data, text->len, source,
                                                              &local);
        if (share != NULL)
            check_one(shares, share, archive_sha256, archive_path, &local);
        if (local != NULL) {
            if (++mistakes >= PROMPT_MISTAKES) {
                g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                           "%u shares typed wrong, giving up; the last: ",
                                           mistakes);
                return FALSE;
            }
            notify(sources, "%s; type it again", local->message);
            continue;
        }
        g_ptr_array_add(shares, g_steal_pointer(&share));
        const CabackShare *first = shares->pdata[0];
        notify(sources, "%u of %u given", shares->len, first->threshold);
    }
    return TRUE;
}

CabackSecret *caback_shares_password(const CabackShareSources *sources,
                                     const guint8 *archive_sha256, const char *archive_path,
                                     guint *threshold, guint *count, GError **error)
{
    g_autoptr(GPtrArray) shares = caback_share_array_new();
    for (const char *const *f = sources->files; f != NULL && *f != NULL; f++) {
        g_autoptr(CabackShare) share = caback_share_read(*f, sources->db, error);
        if (share == NULL)
            return NULL;
        if (share->source == NULL)
            share->source = caback_name_escape(*f, NULL);
        if (!check_one(shares, share, archive_sha256, archive_path, error))
            return NULL;
        g_ptr_array_add(shares, g_steal_pointer(&share));
    }
    if (sources->prompt) {
        if (shares->len > 0) {
            const CabackShare *first = shares->pdata[0];
            if (shares->len < first->threshold)
                notify(sources, "%u of %u given", shares->len, first->threshold);
        }
        if (!ask_shares(sources, shares, archive_sha256, archive_path, error))
            return NULL;
    }
    if (shares->len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "no share of %s was given; give --share FILE for each custodian's share, or "
                    "--shares-prompt",
                    archive_path);
        return NULL;
    }
    const CabackShare *first = shares->pdata[0];
    if (threshold != NULL)
        *threshold = first->threshold;
    if (count != NULL)
        *count = first->count;
    /* Checks them all again (and the count: "2 of 3 shares given") before combining. */
    return caback_custody_password_from_shares(shares, archive_sha256, error);
}

gboolean caback_share_open_check(const char *output, gboolean force, GError **error)
{
    /* Refuse before asking for a password; the atomic commit checks again without a window. */
    if (output != NULL && !force && g_file_test(output, G_FILE_TEST_EXISTS)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%s already exists; it was left untouched (use --force to replace it)",
                    output);
        return FALSE;
    }
    return TRUE;
}

CabackShare *caback_share_open(const char *path, CabackDb *db, const char *output, gboolean force,
                               GError **error)
{
    g_autoptr(CabackShare) share = caback_share_read(path, db, error);
    if (share == NULL)
        return NULL;
    if (!share->has_custodian) {
        caback_error_usage(error, "share-open",
                           "%s is already an open share (text); give the .p7m file", path);
        return NULL;
    }
    if (output != NULL && !caback_share_write_text(output, share, force, error))
        return NULL;
    return g_steal_pointer(&share);
}

char *caback_share_archive_hex(const CabackShare *share)
{
    GString *hex = g_string_new(NULL);
    for (int i = 0; i < 32; i++)
        g_string_append_printf(hex, "%02x", share->archive_sha256[i]);
    return g_string_free(hex, FALSE);
}

void caback_custody_json(CabackJson *json, guint threshold, const GPtrArray *custodians,
                         const GPtrArray *files)
{
    caback_json_begin_object(json, "custody");
    caback_json_int(json, "threshold", threshold);
    caback_json_int(json, "count", custodians->len);
    caback_json_begin_array(json, "shares");
    for (guint i = 0; i < custodians->len; i++) {
        const CabackCustodian *c = custodians->pdata[i];
        caback_json_begin_object(json, NULL);
        caback_json_int(json, "index", i + 1);
        g_autofree char *absolute =
            files != NULL && i < files->len ? g_canonicalize_filename(files->pdata[i], NULL)
                                            : NULL;
        caback_json_string(json, "file", absolute);
        caback_json_string(json, "custodian", c->subject);
        caback_json_string(json, "custodian_certificate", c->path);
        caback_json_string(json, "fingerprint", c->fingerprint);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
    caback_json_end_object(json);
}
