/* Detached CMS signatures over files with NSS's S/MIME library (libsmime3). */
#include "config.h"

#include <caback/atomic-file.h>
#include <caback/cms.h>
#include <caback/digest.h>
#include <caback/error.h>
#include <caback/nickname.h>
#include <caback/nss-util.h>
#include <caback/weak-key.h>

#include <cms.h>
#include <errno.h>
#include <fcntl.h>
#include <secasn1.h>
#include <secerr.h>
#include <sechash.h>
#include <pk11pub.h>
#include <smime.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(NSSCMSMessage, NSS_CMSMessage_Destroy)

/* ---- PEM (pure) ---- */

/* The next PEM block at or after @from: its label and body. */
static gboolean pem_next(const char *data, gsize len, gsize *from, char **label, GBytes **der)
{
    static const char begin[] = "-----BEGIN ";
    const char *end_data = data + len;
    const char *p = data + *from;

    while (p < end_data) {
        const char *b = g_strstr_len(p, end_data - p, begin);
        if (b == NULL)
            break;
        const char *label_start = b + strlen(begin);
        const char *label_end = g_strstr_len(label_start, end_data - label_start, "-----");
        if (label_end == NULL)
            break;
        g_autofree char *lab = g_strndup(label_start, label_end - label_start);
        g_autofree char *end_marker = g_strdup_printf("-----END %s-----", lab);
        const char *body = label_end + 5;
        const char *e = g_strstr_len(body, end_data - body, end_marker);
        if (e == NULL)
            break;
        g_autofree char *text = g_strndup(body, e - body);
        gsize n = 0;
        /* g_base64_decode skips the line ends and spaces between the base64 characters. */
        guchar *bytes = g_base64_decode(text, &n);
        *from = (e + strlen(end_marker)) - data;
        *label = g_steal_pointer(&lab);
        *der = g_bytes_new_take(bytes, n);
        return TRUE;
    }
    *from = len;
    return FALSE;
}

static gboolean looks_like_pem(const char *data, gsize len)
{
    return g_strstr_len(data, len, "-----BEGIN ") != NULL;
}

GPtrArray *caback_pem_certificates(const char *data, gsize len)
{
    GPtrArray *certs = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);

    if (!looks_like_pem(data, len)) {
        if (len > 0)
            g_ptr_array_add(certs, g_bytes_new(data, len));
        return certs;
    }
    gsize from = 0;
    char *label = NULL;
    GBytes *der = NULL;
    while (pem_next(data, len, &from, &label, &der)) {
        if ((strcmp(label, "CERTIFICATE") == 0 || strcmp(label, "X509 CERTIFICATE") == 0 ||
             strcmp(label, "TRUSTED CERTIFICATE") == 0) &&
            g_bytes_get_size(der) > 0)
            g_ptr_array_add(certs, der);
        else
            g_bytes_unref(der);
        g_free(label);
    }
    return certs;
}

GBytes *caback_pem_decode_first(const char *data, gsize len, const char *const *labels)
{
    gsize from = 0;
    char *label = NULL;
    GBytes *der = NULL;

    while (pem_next(data, len, &from, &label, &der)) {
        gboolean wanted = g_strv_contains(labels, label);
        g_free(label);
        if (wanted)
            return der;
        g_bytes_unref(der);
    }
    return NULL;
}

/* ---- signing ---- */

CERTCertificate *caback_cms_find_signer(CabackDb *db, const char *nickname, GError **error)
{
    g_autoptr(CERTCertificate) cert = NULL;

    if (!PK11_IsInternalKeySlot(db->slot) && !caback_nickname_split(nickname, NULL, NULL)) {
        g_autofree char *full = caback_nickname_on_token(nickname, db->token_name, FALSE);
        cert = PK11_FindCertFromNickname(full, db);
    }
    if (cert == NULL)
        cert = PK11_FindCertFromNickname(nickname, db);
    if (cert == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "no certificate \"%s\" in NSS database %s; list the certificates with: "
                    "certutil -L -d sql:%s",
                    nickname, db->dir, db->dir);
        return NULL;
    }
    g_autoptr(SECKEYPrivateKey) key = PK11_FindKeyByAnyCert(cert, db);
    if (key == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "certificate \"%s\" (%s) has no private key in NSS database %s%s%s; sign "
                    "with a certificate whose key is there (certutil -K -d sql:%s lists the "
                    "keys)",
                    nickname, cert->subjectName, db->dir,
                    PK11_IsInternalKeySlot(db->slot) ? "" : ", token ",
                    PK11_IsInternalKeySlot(db->slot) ? "" : db->token_name, db->dir);
        return NULL;
    }
    return g_steal_pointer(&cert);
}

/* The usages a signer certificate may have, in the order they are tried. */
static const struct {
    SECCertUsage usage;
    SECCertificateUsage usage_bit;
    const char *name;
} signer_usages[] = {
    {certUsageEmailSigner, certificateUsageEmailSigner, "email signing"},
    {certUsageObjectSigner, certificateUsageObjectSigner, "object signing"},
};

/* Errors that no trust setting can cure: the certificate cannot sign for these usages. */
static gboolean unusable_error(int err)
{
    return err == SEC_ERROR_INADEQUATE_CERT_TYPE || err == SEC_ERROR_INADEQUATE_KEY_USAGE ||
           err == SEC_ERROR_EXPIRED_CERTIFICATE;
}

/* Verify @cert for one of the signer usages at @when; returns the usage's name, or NULL with
 * *@why describing each usage's failure (once when they agree) and *@unusable telling whether
 * every failure is about the certificate itself rather than about trust. */
static const char *verify_signer_cert(CERTCertificate *cert, CERTCertList *anchors, PRTime when,
                                      void *wincx, char **why, gboolean *unusable)
{
    int errors[G_N_ELEMENTS(signer_usages)];

    for (gsize i = 0; i < G_N_ELEMENTS(signer_usages); i++) {
        SECStatus rv;
        if (anchors != NULL) {
            CERTValInParam in[4];
            in[0].type = cert_pi_trustAnchors;
            in[0].value.pointer.chain = anchors;
            in[1].type = cert_pi_date;
            in[1].value.scalar.time = when;
            /* Offline: no OCSP fetches from a tool run on a CA's machine. */
            in[2].type = cert_pi_revocationFlags;
            in[2].value.pointer.revocation =
                (CERTRevocationFlags *)CERT_GetClassicOCSPDisabledPolicy();
            in[3].type = cert_pi_end;
            rv = CERT_PKIXVerifyCert(cert, signer_usages[i].usage_bit, in, NULL, wincx);
        } else {
            rv = CERT_VerifyCert(CERT_GetDefaultCertDB(), cert, PR_TRUE, signer_usages[i].usage,
                                 when, wincx, NULL);
        }
        if (rv == SECSuccess)
            return signer_usages[i].name;
        errors[i] = PORT_GetError();
    }

    GString *text = g_string_new(NULL);
    gboolean all_same = TRUE;
    *unusable = TRUE;
    for (gsize i = 0; i < G_N_ELEMENTS(signer_usages); i++) {
        all_same = all_same && errors[i] == errors[0];
        *unusable = *unusable && unusable_error(errors[i]);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(signer_usages); i++) {
        g_autofree char *d = caback_nss_error_describe(errors[i]);
        if (all_same) {
            g_string_append(text, d);
            break;
        }
        g_string_append_printf(text, "%sfor %s: %s", i > 0 ? "; " : "", signer_usages[i].name, d);
    }
    *why = g_string_free(text, FALSE);
    return NULL;
}

/* Signature algorithms whose digest no longer resists collisions: a certificate signed with one
 * can be forged as well as the CMS digest caback already refuses. */
static gboolean weak_signature_algorithm(SECOidTag tag)
{
    switch (tag) {
    case SEC_OID_PKCS1_SHA1_WITH_RSA_ENCRYPTION:
    case SEC_OID_ISO_SHA_WITH_RSA_SIGNATURE:
    case SEC_OID_ISO_SHA1_WITH_RSA_SIGNATURE:
    case SEC_OID_ANSIX962_ECDSA_SHA1_SIGNATURE:
    case SEC_OID_ANSIX9_DSA_SIGNATURE_WITH_SHA1_DIGEST:
    case SEC_OID_BOGUS_DSA_SIGNATURE_WITH_SHA1_DIGEST:
    case SEC_OID_PKCS1_MD5_WITH_RSA_ENCRYPTION:
    case SEC_OID_PKCS1_MD4_WITH_RSA_ENCRYPTION:
    case SEC_OID_PKCS1_MD2_WITH_RSA_ENCRYPTION:
        return TRUE;
    default:
        return FALSE;
    }
}

char *caback_cms_signer_weakness(CERTCertificate *signer, PRTime when, const char **weak_key,
                                 char **weak_cert)
{
    g_autofree char *key_reason = NULL;
    CabackWeakKey weak = caback_weak_key_check_spki(&signer->subjectPublicKeyInfo, &key_reason);

    if (weak_key != NULL)
        *weak_key = weak != CABACK_WEAK_KEY_NONE ? caback_weak_key_name(weak) : NULL;
    if (weak_cert != NULL)
        *weak_cert = NULL;
    if (weak != CABACK_WEAK_KEY_NONE)
        return g_strdup_printf("the signer %s has a weak key: %s", signer->subjectName,
                               key_reason != NULL ? key_reason : caback_weak_key_name(weak));

    /* The chain as far as NSS can build it (the signature's certificates, the database, --ca):
     * without trust, so that the reason is given even for an issuer nobody trusts. */
    g_autoptr(CERTCertList) chain = CERT_GetCertChainFromCert(signer, when, certUsageEmailSigner);
    g_autoptr(GPtrArray) certs = g_ptr_array_new();
    if (chain == NULL)
        g_ptr_array_add(certs, signer);
    for (CERTCertListNode *node = chain != NULL ? CERT_LIST_HEAD(chain) : NULL;
         node != NULL && !CERT_LIST_END(node, chain); node = CERT_LIST_NEXT(node))
        g_ptr_array_add(certs, node->cert);
    for (guint i = 0; i < certs->len; i++) {
        CERTCertificate *c = certs->pdata[i];
        SECOidTag alg = SECOID_GetAlgorithmTag(&c->signature);
        if (c->isRoot || !weak_signature_algorithm(alg))
            continue;
        if (weak_cert != NULL)
            *weak_cert = g_strdup(c->subjectName);
        return g_strdup_printf(
            "the certificate %s in the signer's chain is signed with %s, which caback does not "
            "accept (as it does not accept SHA-1 in the signature itself); have it reissued "
            "with SHA-256",
            c->subjectName, SECOID_FindOIDTagDescription(alg));
    }
    return NULL;
}

char *caback_cms_check_signer(CERTCertificate *signer, void *wincx, gboolean *unusable)
{
    char *why = NULL;
    gboolean dummy = FALSE;

    if (unusable == NULL)
        unusable = &dummy;
    *unusable = FALSE;
    char *weakness = caback_cms_signer_weakness(signer, PR_Now(), NULL, NULL);
    if (weakness != NULL) {
        *unusable = TRUE;
        return weakness;
    }
    if (verify_signer_cert(signer, NULL, PR_Now(), wincx, &why, unusable) != NULL)
        return NULL;
    return why;
}

static void encoder_cancel(NSSCMSEncoderContext *ecx)
{
    NSS_CMSEncoder_Cancel(ecx);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NSSCMSEncoderContext, encoder_cancel)

/* caback_file_feed's callback for signing: each piece of the file goes into the encoder. */
typedef struct {
    NSSCMSEncoderContext *ecx;
    const char *path;
} EncoderFeed;

static gboolean encoder_feed(const guint8 *data, gsize len, gpointer user_data, GError **error)
{
    EncoderFeed *feed = user_data;

    if (NSS_CMSEncoder_Update(feed->ecx, (const char *)data, (unsigned long)len) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot digest %s for signing",
                             feed->path);
        return FALSE;
    }
    return TRUE;
}

GBytes *caback_cms_sign_file(const char *path, CERTCertificate *signer, void *wincx,
                             gint64 signing_time, GError **error)
{
    const char *who = signer->nickname != NULL ? signer->nickname : signer->subjectName;
    g_autoptr(NSSCMSMessage) cmsg = NSS_CMSMessage_Create(NULL);
    if (cmsg == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot create a CMS message");
        return NULL;
    }

    /* message -> signedData -> data (detached: the content is digested, not included) */
    NSSCMSSignedData *sigd = NSS_CMSSignedData_Create(cmsg);
    if (sigd == NULL || NSS_CMSContentInfo_SetContent_SignedData(
                            cmsg, NSS_CMSMessage_GetContentInfo(cmsg), sigd) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot create a CMS SignedData");
        if (sigd != NULL)
            NSS_CMSSignedData_Destroy(sigd);
        return NULL;
    }
    if (NSS_CMSContentInfo_SetContent_Data(cmsg, NSS_CMSSignedData_GetContentInfo(sigd), NULL,
                                           PR_TRUE) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot create the CMS data content");
        return NULL;
    }
    NSSCMSSignerInfo *si = NSS_CMSSignerInfo_Create(cmsg, signer, SEC_OID_SHA256);
    if (si == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "cannot prepare a signature with certificate %s (is its private key "
                             "in the database, and is it an RSA, EC or DSA key?)",
                             who);
        return NULL;
    }
    /* The chain without the root: a verifier must already trust the root, and intermediate CAs
     * let it build the path without having them. */
    if (NSS_CMSSignerInfo_IncludeCerts(si, NSSCMSCM_CertChain, certUsageEmailSigner) !=
            SECSuccess ||
        NSS_CMSSignerInfo_AddSigningTime(si, (PRTime)signing_time * PR_USEC_PER_SEC) !=
            SECSuccess ||
        NSS_CMSSignedData_AddSignerInfo(sigd, si) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "cannot add the signer %s to the CMS signature", who);
        NSS_CMSSignerInfo_Destroy(si);
        return NULL;
    }

    g_autoptr(PLArenaPool) arena = PORT_NewArena(4096);
    SECItem out = {siBuffer, NULL, 0};
    g_autoptr(NSSCMSEncoderContext) ecx = NSS_CMSEncoder_Start(
        cmsg, NULL, NULL, &out, arena, caback_db_password_callback, wincx, NULL, NULL, NULL, NULL);
    if (ecx == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot start signing %s", path);
        return NULL;
    }
    EncoderFeed feed = {ecx, path};
    if (!caback_file_feed(path, encoder_feed, &feed, error))
        return NULL;
    /* Finish signs (the private key is used here) and frees the context in every case. */
    SECStatus rv = NSS_CMSEncoder_Finish(g_steal_pointer(&ecx));
    if (rv != SECSuccess || out.data == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot sign %s with certificate %s", path,
                             who);
        return NULL;
    }
    return g_bytes_new(out.data, out.len);
}

gboolean caback_cms_write_signature(const char *path, const char *sig_path, CERTCertificate *signer,
                                    void *wincx, gint64 signing_time, gboolean replace,
                                    GError **error)
{
    g_autoptr(GBytes) der = caback_cms_sign_file(path, signer, wincx, signing_time, error);
    if (der == NULL)
        return FALSE;
    gsize len = 0;
    const void *data = g_bytes_get_data(der, &len);
    /* A signature is public; 0644 lets the people who check backups read it. */
    return caback_atomic_file_replace(sig_path, data, len, 0644, (uid_t)-1, (gid_t)-1, replace,
                                      error);
}

/* ---- verification ---- */

static void signer_free(CabackCmsSigner *s)
{
    g_free(s->subject);
    g_free(s->issuer);
    g_free(s->serial);
    g_free(s->nickname);
    g_free(s->digest_algorithm);
    g_free(s->digest);
    g_free(s->trusted_for);
    g_free(s->problem);
    g_free(s->weak_certificate);
    g_free(s);
}

void caback_cms_verification_free(CabackCmsVerification *v)
{
    if (v == NULL)
        return;
    g_free(v->file);
    g_free(v->signature);
    g_free(v->sha256);
    g_free(v->trust);
    g_ptr_array_unref(v->signers);
    g_free(v);
}

CERTCertList *caback_cms_load_anchors(const char *path, GError **error)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    g_autoptr(GError) local = NULL;

    if (!g_file_get_contents(path, &data, &len, &local)) {
        g_set_error(error, CABACK_ERROR,
                    g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                        ? CABACK_ERROR_NOT_FOUND
                        : CABACK_ERROR_IO,
                    "cannot read the CA certificate file %s: %s", path, local->message);
        return NULL;
    }
    g_autoptr(GPtrArray) ders = caback_pem_certificates(data, len);
    g_autoptr(CERTCertList) list = CERT_NewCertList();
    for (guint i = 0; i < ders->len; i++) {
        gsize n = 0;
        const void *p = g_bytes_get_data(ders->pdata[i], &n);
        SECItem item = {siDERCertBuffer, (unsigned char *)p, (unsigned int)n};
        CERTCertificate *cert =
            CERT_NewTempCertificate(CERT_GetDefaultCertDB(), &item, NULL, PR_FALSE, PR_TRUE);
        if (cert == NULL) {
            caback_error_set_nss(error, CABACK_ERROR_FAILED,
                                 "%s: certificate %u is not a valid X.509 certificate (give a "
                                 "PEM or DER CA certificate)",
                                 path, i + 1);
            return NULL;
        }
        if (CERT_AddCertToListTail(list, cert) != SECSuccess) {
            CERT_DestroyCertificate(cert);
            caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot use the certificates of %s",
                                 path);
            return NULL;
        }
    }
    if (CERT_LIST_EMPTY(list)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%s holds no certificate (give a PEM or DER CA certificate)", path);
        return NULL;
    }
    return g_steal_pointer(&list);
}

/* The bytes of @sig_path, opened without following a symbolic link and without blocking (a FIFO
 * or a device named as the signature must not hang the run), only when it is a regular file of
 * at most CABACK_CMS_SIGNATURE_MAX bytes. */
static char *read_signature_file(const char *sig_path, gsize *len, GError **error)
{
    int fd = open(sig_path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, e == ENOENT ? CABACK_ERROR_NOT_FOUND : CABACK_ERROR_IO,
                    "cannot read the signature %s: %s (sign the file with caback sign, or give "
                    "the signature file as the second argument)",
                    sig_path,
                    e == ELOOP ? "it is a symbolic link, which is not followed; give the file it "
                                 "points to"
                               : g_strerror(e));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot read the signature %s: %s; a signature is read only from a regular "
                    "file",
                    sig_path,
                    S_ISFIFO(st.st_mode)  ? "it is a FIFO"
                    : S_ISCHR(st.st_mode) ? "it is a character device"
                    : S_ISBLK(st.st_mode) ? "it is a block device"
                    : S_ISDIR(st.st_mode) ? "it is a folder"
                    : S_ISSOCK(st.st_mode) ? "it is a socket"
                                           : g_strerror(e));
        close(fd);
        return NULL;
    }
    if (st.st_size > CABACK_CMS_SIGNATURE_MAX) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "the signature %s is %lld bytes, more than a signature can be (at most %d "
                    "bytes are read); it is not a caback signature",
                    sig_path, (long long)st.st_size, CABACK_CMS_SIGNATURE_MAX);
        close(fd);
        return NULL;
    }
    int e = 0;
    char *data = (char *)caback_fd_read_capped(fd, CABACK_CMS_SIGNATURE_MAX, len, &e);
    close(fd);
    if (data == NULL && e == EFBIG)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "the signature %s grew beyond %d bytes while it was read; it is not a "
                    "caback signature",
                    sig_path, CABACK_CMS_SIGNATURE_MAX);
    else if (data == NULL)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot read the signature %s: %s",
                    sig_path, g_strerror(e));
    return data;
}

/* Read @sig_path as DER, or as the first CMS/PKCS7 block of a PEM file; either must be exactly
 * one DER object: bytes after it are refused, as they are not covered by anything. */
static GBytes *read_signature(const char *sig_path, gsize *trailing, GError **error)
{
    static const char *const labels[] = {"CMS", "PKCS7", "PKCS #7 SIGNED DATA", NULL};
    gsize len = 0;
    g_autofree char *data = read_signature_file(sig_path, &len, error);
    if (data == NULL)
        return NULL;

    g_autoptr(GBytes) der = NULL;
    if (looks_like_pem(data, len)) {
        der = caback_pem_decode_first(data, len, labels);
        if (der == NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                        "%s is a PEM file without a CMS or PKCS7 block, not a signature", sig_path);
            return NULL;
        }
    } else {
        der = g_bytes_new_take(g_steal_pointer(&data), len);
    }
    gsize n = 0;
    const void *p = g_bytes_get_data(der, &n);
    SECItem in = {siBuffer, (unsigned char *)p, (unsigned int)n};
    SECItem out = {siBuffer, NULL, 0};
    g_autoptr(PLArenaPool) arena = PORT_NewArena(1024);
    /* One complete object (BER: NSS's own encoder writes indefinite lengths) and nothing after
     * it: the ANY decoder stops at the object's end and says how long it was. */
    if (arena == NULL ||
        SEC_ASN1DecodeItem(arena, &out, SEC_ASN1_GET(SEC_AnyTemplate), &in) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "%s is not a CMS signature (DER or PEM) or is damaged", sig_path);
        return NULL;
    }
    if (out.len != in.len) {
        *trailing = in.len - out.len;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "the signature %s has %u byte(s) after its encoding (%u bytes), which "
                    "nothing signs: it was changed after it was made, or is not a caback "
                    "signature. Make it again with caback sign",
                    sig_path, in.len - out.len, out.len);
        return NULL;
    }
    return g_steal_pointer(&der);
}

static char *format_time(PRTime t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t / PR_USEC_PER_SEC);
    return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("?");
}

static char *hex_of(const SECItem *item)
{
    g_autoptr(GBytes) b = g_bytes_new(item->data, item->len);
    return caback_digest_to_hex(b);
}

/* Everything done with one decoded signature; the message owns the signers' certificates. */
typedef struct {
    const char *path;
    const char *sig_path;
    CERTCertList *anchors;
    const char *trust;
    void *wincx;
    GHashTable *digests; /* SECOidTag -> GBytes, each file digest computed once */
    GBytes *data;        /* the file's bytes when the caller read them, else NULL */
    gboolean at_signing_time;
    PRTime now;
} VerifyRun;

/* The digest of the bytes the caller read, or else of the file by name. */
static GBytes *bytes_digest(GBytes *data, const char *path, SECOidTag alg, GError **error)
{
    unsigned char out[HASH_LENGTH_MAX];
    gsize len = 0;
    const void *p = g_bytes_get_data(data, &len);
    HASH_HashType type = HASH_GetHashTypeByOidTag(alg);
    const SECHashObject *hash = type == HASH_AlgNULL ? NULL : HASH_GetHashObject(type);

    if (hash == NULL || len > G_MAXINT32 ||
        PK11_HashBuf(alg, out, (const unsigned char *)p, (PRInt32)len) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot compute the %s digest of %s",
                             SECOID_FindOIDTagDescription(alg), path);
        return NULL;
    }
    return g_bytes_new(out, hash->length);
}

static GBytes *file_digest(VerifyRun *run, SECOidTag alg, GError **error)
{
    GBytes *d = g_hash_table_lookup(run->digests, GINT_TO_POINTER(alg));
    if (d != NULL)
        return d;
    d = run->data != NULL ? bytes_digest(run->data, run->path, alg, error)
                          : caback_digest_file(run->path, alg, error);
    if (d != NULL)
        g_hash_table_insert(run->digests, GINT_TO_POINTER(alg), d);
    return d;
}

/* Check signer @i; fills @s. Returns FALSE only for errors that stop everything (the file cannot
 * be read). */
/* The digest of the file with the signer's algorithm, given to @sigd for the check (into
 * @ditem, which points into run's cache). An algorithm caback does not accept is @s's problem;
 * FALSE with @error only when the file cannot be read. */
static gboolean set_digest(VerifyRun *run, NSSCMSSignedData *sigd, SECOidTag alg,
                           CabackCmsSigner *s, SECItem *ditem, GError **error)
{
    const char *alg_name = caback_digest_name(alg);
    if (alg_name == NULL) {
        s->problem = g_strdup_printf(
            "the signature by %s uses the digest %s, which caback does not accept (only SHA-256, "
            "SHA-384 and SHA-512); sign the file again with caback sign",
            s->subject, SECOID_FindOIDTagDescription(alg));
        return TRUE;
    }
    s->digest_algorithm = g_strdup(alg_name);
    GBytes *digest = file_digest(run, alg, error);
    if (digest == NULL)
        return FALSE;
    s->digest = caback_digest_to_hex(digest);
    gsize dlen = 0;
    const void *dp = g_bytes_get_data(digest, &dlen);
    *ditem = (SECItem){siBuffer, (unsigned char *)dp, (unsigned int)dlen};
    if (NSS_CMSSignedData_SetDigestValue(sigd, alg, ditem) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot check the signature %s",
                             run->sig_path);
        return FALSE;
    }
    return TRUE;
}

/* The signature value of @si over the file's digest @ditem: signature_ok, or @s's problem in
 * words (the file changed, a damaged or forged signature, or what NSS says). */
static void check_signature_value(VerifyRun *run, NSSCMSSignedData *sigd, NSSCMSSignerInfo *si,
                                  SECItem *ditem, CabackCmsSigner *s)
{
    SECOidData *type_data = SECOID_FindOIDByTag(
        NSS_CMSContentInfo_GetContentTypeTag(NSS_CMSSignedData_GetContentInfo(sigd)));
    SECItem *content_type = type_data != NULL ? &type_data->oid : NULL;
    if (NSS_CMSSignerInfo_Verify(si, ditem, content_type) == SECSuccess) {
        s->signature_ok = TRUE;
        return;
    }
    int err = PORT_GetError();
    NSSCMSVerificationStatus vs = NSS_CMSSignerInfo_GetVerificationStatus(si);
    g_autofree char *why = caback_nss_error_describe(err);
    gboolean has_attrs = si->authAttr != NULL && si->authAttr[0] != NULL;
    if (vs == NSSCMSVS_DigestMismatch || (vs == NSSCMSVS_BadSignature && !has_attrs))
        /* The signed digest differs from the file's: the file changed, or it is not the
         * signature's file. Without signed attributes the two cases look the same. */
        s->problem = g_strdup_printf(
            "signature does not match %s (the file was changed after signing, or the "
            "signature %s belongs to another file)",
            run->path, run->sig_path);
    else if (vs == NSSCMSVS_BadSignature)
        s->problem = g_strdup_printf(
            "the signature %s is damaged or forged: its signed attributes do not verify "
            "with the key of %s: %s",
            run->sig_path, s->subject, why);
    else
        s->problem =
            g_strdup_printf("the signature %s by %s cannot be checked (%s): %s", run->sig_path,
                            s->subject, NSS_CMSUtil_VerificationStatusToString(vs), why);
}

/* A time the signature states is the signer's claim: one in the future is a wrong clock or a
 * lie, and is refused even when checking at the signing time. TRUE when refused. */
static gboolean refuse_future_time(VerifyRun *run, gboolean has_time, PRTime stated,
                                   CabackCmsSigner *s)
{
    if (!has_time || stated <= run->now + (PRTime)CABACK_CMS_CLOCK_SKEW * PR_USEC_PER_SEC)
        return FALSE;
    g_autofree char *at = format_time(stated);
    g_autofree char *now = format_time(run->now);
    s->future_signing_time = TRUE;
    s->problem = g_strdup_printf(
        "the signature %s by %s states the signing time %s, later than now (%s) by more "
        "than %d minutes: the signer's clock is wrong or the time is forged. Check this "
        "machine's clock; have the file signed again with a correct clock",
        run->sig_path, s->subject, at, now, CABACK_CMS_CLOCK_SKEW / 60);
    return TRUE;
}

/* The signer's chain at @when: trusted_for, or @s's problem saying what to trust instead. */
static void check_signer_trust(VerifyRun *run, CERTCertificate *cert, PRTime when,
                               gboolean has_time, PRTime stated, CabackCmsSigner *s)
{
    s->checked_at = when / PR_USEC_PER_SEC;
    g_autofree char *why = NULL;
    gboolean unusable = FALSE;
    const char *usage = verify_signer_cert(cert, run->anchors, when, run->wincx, &why, &unusable);
    if (usage != NULL) {
        s->trusted_for = g_strdup(usage);
        return;
    }
    g_autofree char *at = format_time(when);
    g_autofree char *signed_at = has_time ? format_time(stated) : NULL;
    g_autofree char *hint =
        has_time && !s->at_signing_time && stated < run->now
            ? g_strdup_printf(". If the signer was valid when the file was signed (%s) and "
                              "has expired since, check at that time with "
                              "--at-signing-time",
                              signed_at)
            : g_strdup("");
    s->problem = g_strdup_printf(
        "the signer %s, issued by %s, is not trusted by %s for signing at %s (%s): %s; %s%s",
        s->subject, s->issuer, run->trust, at,
        s->at_signing_time ? "the signing time, --at-signing-time" : "now", why,
        run->anchors != NULL
            ? "give the certificate of the CA that issued the signer (verify-signature --ca "
              "CACERT, restore --signature-ca CERTFILE)"
            : "check the signature against the issuing CA (verify-signature --ca CACERT, "
              "restore --signature-ca CERTFILE), or trust that CA in the database "
              "(certutil -M -n NICK -t C,C,C)",
        hint);
}

static gboolean verify_one(VerifyRun *run, NSSCMSSignedData *sigd, int i, CabackCmsSigner *s,
                           GError **error)
{
    NSSCMSSignerInfo *si = NSS_CMSSignedData_GetSignerInfo(sigd, i);
    /* libsmime3 does not export NSS_CMSSignerInfo_GetDigestAlgTag; the field is public. */
    SECOidTag alg = SECOID_GetAlgorithmTag(&si->digestAlg);
    PRTime stated = 0;

    s->signing_time = -1;
    s->checked_at = -1;
    gboolean has_time = NSS_CMSSignerInfo_GetSigningTime(si, &stated) == SECSuccess;
    if (has_time)
        s->signing_time = stated / PR_USEC_PER_SEC;
    /* The verifier's clock, unless the caller asked for the stated time (and there is one). */
    s->at_signing_time = run->at_signing_time && has_time;
    PRTime when = s->at_signing_time ? stated : run->now;

    /* The certificate first, so that even a failing signature names its signer. */
    CERTCertificate *cert = NSS_CMSSignerInfo_GetSigningCertificate(si, CERT_GetDefaultCertDB());
    if (cert == NULL) {
        s->problem = g_strdup_printf(
            "the signer's certificate is neither in the signature %s nor in %s; sign with the "
            "certificate chain included (caback sign and cmsutil -S do; openssl cms -sign without "
            "-nocerts)",
            run->sig_path, run->trust);
        return TRUE;
    }
    s->subject = g_strdup(cert->subjectName);
    s->issuer = g_strdup(cert->issuerName);
    s->serial = hex_of(&cert->serialNumber);
    s->nickname = g_strdup(cert->nickname);

    /* Strength first: NSS may not even check a signature made with a key this weak. */
    s->problem = caback_cms_signer_weakness(cert, when, &s->weak_key, &s->weak_certificate);
    if (s->problem != NULL)
        return TRUE;
    SECItem ditem = {siBuffer, NULL, 0};
    if (!set_digest(run, sigd, alg, s, &ditem, error))
        return FALSE;
    if (s->problem != NULL)
        return TRUE;
    check_signature_value(run, sigd, si, &ditem, s);
    if (!s->signature_ok || refuse_future_time(run, has_time, stated, s))
        return TRUE;
    check_signer_trust(run, cert, when, has_time, stated, s);
    return TRUE;
}

gboolean caback_cms_verify_file(const char *path, const char *sig_path, CERTCertList *anchors,
                                const char *trust, void *wincx, CabackCmsVerification **result,
                                GError **error)
{
    CabackCmsVerifyOptions options = {
        .path = path, .sig_path = sig_path, .anchors = anchors, .trust = trust, .wincx = wincx};
    return caback_cms_verify(&options, result, error);
}

/* The SignedData of the signature @der (from @sig_path), its certificates imported as temporary
 * certificates owned by *@cmsg, so that the signer and its intermediate CAs are found. NULL with
 * @error when it is not a signature with at least one signer. */
static NSSCMSSignedData *decode_signed_data(GBytes *der, const char *sig_path, void *wincx,
                                            NSSCMSMessage **cmsg_out, int *nsigners,
                                            GError **error)
{
    gsize len = 0;
    const void *p = g_bytes_get_data(der, &len);
    SECItem item = {siBuffer, (unsigned char *)p, (unsigned int)len};
    g_autoptr(NSSCMSMessage) cmsg = NSS_CMSMessage_CreateFromDER(
        &item, NULL, NULL, caback_db_password_callback, wincx, NULL, NULL);
    if (cmsg == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "%s is not a CMS signature (DER or PEM) or is damaged", sig_path);
        return NULL;
    }
    NSSCMSContentInfo *cinfo = NSS_CMSMessage_ContentLevel(cmsg, 0);
    if (cinfo == NULL || NSS_CMSContentInfo_GetContentTypeTag(cinfo) != SEC_OID_PKCS7_SIGNED_DATA) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%s is a CMS message but not a signature (no SignedData)", sig_path);
        return NULL;
    }
    NSSCMSSignedData *sigd = NSS_CMSContentInfo_GetContent(cinfo);
    *nsigners = sigd != NULL ? NSS_CMSSignedData_SignerInfoCount(sigd) : 0;
    if (*nsigners <= 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%s holds no signer (it is a certificates-only message, not a signature)",
                    sig_path);
        return NULL;
    }
    if (NSS_CMSSignedData_ImportCerts(sigd, CERT_GetDefaultCertDB(), certUsageEmailSigner,
                                      PR_FALSE) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "cannot read the certificates in the signature %s", sig_path);
        return NULL;
    }
    *cmsg_out = g_steal_pointer(&cmsg);
    return sigd;
}

gboolean caback_cms_verify(const CabackCmsVerifyOptions *options, CabackCmsVerification **result,
                           GError **error)
{
    const char *path = options->path;
    const char *sig_path = options->sig_path;
    const char *trust = options->trust;

    if (result != NULL)
        *result = NULL;
    g_autoptr(CabackCmsVerification) v = g_new0(CabackCmsVerification, 1);
    v->file = g_strdup(path);
    v->signature = g_strdup(sig_path);
    v->trust = g_strdup(trust);
    v->signers = g_ptr_array_new_with_free_func((GDestroyNotify)signer_free);

    g_autoptr(GBytes) der = read_signature(sig_path, &v->trailing_bytes, error);
    if (der == NULL) {
        /* The refusal is a result too (--json shows it). */
        v->signature_refused = TRUE;
        if (result != NULL)
            *result = g_steal_pointer(&v);
        return FALSE;
    }
    if (options->data == NULL && !g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "cannot check the signature %s: the signed file %s does not exist", sig_path,
                    path);
        return FALSE;
    }

    g_autoptr(NSSCMSMessage) cmsg = NULL;
    int nsigners = 0;
    NSSCMSSignedData *sigd = decode_signed_data(der, sig_path, options->wincx, &cmsg, &nsigners,
                                                error);
    if (sigd == NULL)
        return FALSE;

    VerifyRun run = {
        .path = path,
        .sig_path = sig_path,
        .anchors = options->anchors,
        .trust = trust,
        .wincx = options->wincx,
        .digests = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)g_bytes_unref),
        .data = options->data,
        .at_signing_time = options->at_signing_time,
        .now = PR_Now(),
    };
    gboolean ok = TRUE;
    const char *problem = NULL;
    for (int i = 0; i < nsigners && ok; i++) {
        CabackCmsSigner *s = g_new0(CabackCmsSigner, 1);
        g_ptr_array_add(v->signers, s);
        ok = verify_one(&run, sigd, i, s, error);
        if (ok && problem == NULL)
            problem = s->problem;
    }
    if (ok) {
        GBytes *sha256 = file_digest(&run, SEC_OID_SHA256, error);
        ok = sha256 != NULL;
        if (ok)
            v->sha256 = caback_digest_to_hex(sha256);
    }
    g_hash_table_unref(run.digests);
    if (!ok)
        return FALSE;
    if (problem != NULL)
        g_set_error_literal(error, CABACK_ERROR, CABACK_ERROR_FAILED, problem);
    if (result != NULL)
        *result = g_steal_pointer(&v);
    return problem == NULL;
}
