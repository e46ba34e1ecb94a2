/* What a backup holds, writing it through caback's PKCS#12 writer, and reading it back before it
 * may replace anything. Every NSS reference taken here belongs to the selection and is released
 * by caback_backup_selection_free. */
#include "config.h"

#include <caback/names.h>
#include <caback/nickname.h>
#include <caback/backup.h>
#include <caback/parallel.h>
#include <caback/cscfg.h>
#include <caback/error.h>
#include <caback/nss-util.h>

#include "token-objects.h"

#include <certdb.h>
#include <cryptohi.h>
#include <pkcs11t.h>
#include <secerr.h>
#include <string.h>

/* ---- the selection ---- */

static void backup_key_free(CabackBackupKey *key)
{
    if (key == NULL)
        return;
    if (key->key != NULL)
        SECKEY_DestroyPrivateKey(key->key);
    caback_key_info_free(key->info);
    g_free(key->nickname);
    g_free(key);
}

static void backup_cert_free(CabackBackupCert *cert)
{
    if (cert == NULL)
        return;
    if (cert->cert != NULL)
        CERT_DestroyCertificate(cert->cert);
    g_free(cert->nickname);
    g_free(cert->subject);
    g_free(cert->trust);
    g_free(cert);
}

void caback_backup_selection_free(CabackBackupSelection *selection)
{
    if (selection == NULL)
        return;
    g_ptr_array_unref(selection->keys);
    g_ptr_array_unref(selection->certs);
    g_ptr_array_unref(selection->warnings);
    g_free(selection->token_name);
    g_free(selection);
}

static CabackBackupSelection *selection_new(const char *token_name)
{
    CabackBackupSelection *sel = g_new0(CabackBackupSelection, 1);

    sel->keys = g_ptr_array_new_with_free_func((GDestroyNotify)backup_key_free);
    sel->certs = g_ptr_array_new_with_free_func((GDestroyNotify)backup_cert_free);
    sel->warnings = g_ptr_array_new_with_free_func(g_free);
    sel->token_name = g_strdup(token_name);
    return sel;
}

/* The nickname as certutil -n and CS.cfg take it: NSS prefixes certificates of the database's
 * own token with "NSS Certificate DB:" when it reaches them through a key, which nobody types. */
static char *cert_nickname(CERTCertificate *cert)
{
    const char *nick = cert->nickname;

    if (nick == NULL || *nick == '\0')
        return NULL;
    if (cert->slot != NULL && PK11_IsInternalKeySlot(cert->slot))
        return g_strdup(caback_nickname_strip_token(nick, PK11_GetTokenName(cert->slot)));
    return g_strdup(nick);
}

static char *cert_subject(CERTCertificate *cert)
{
    char *ascii = CERT_NameToAscii(&cert->subject);
    char *subject = g_strdup(ascii != NULL ? ascii : "(subject not printable)");

    if (ascii != NULL)
        PORT_Free(ascii);
    return subject;
}

/* libnss3 does not export CERT_EncodeTrustString, so the letters are spelled here in the order
 * and with the implications certutil -L uses (C and T imply c; P implies p). */
static void append_trust_letters(GString *out, unsigned int flags)
{
    static const struct {
        unsigned int flag;
        unsigned int unless;
        char letter;
    } letters[] = {
        {CERTDB_VALID_CA, CERTDB_TRUSTED_CA | CERTDB_TRUSTED_CLIENT_CA, 'c'},
        {CERTDB_TERMINAL_RECORD, CERTDB_TRUSTED, 'p'},
        {CERTDB_TRUSTED_CA, 0, 'C'},
        {CERTDB_TRUSTED_CLIENT_CA, 0, 'T'},
        {CERTDB_TRUSTED, 0, 'P'},
        {CERTDB_USER, 0, 'u'},
        {CERTDB_SEND_WARN, 0, 'w'},
        {CERTDB_INVISIBLE_CA, 0, 'I'},
        {CERTDB_GOVT_APPROVED_CA, 0, 'G'},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(letters); i++)
        if ((flags & letters[i].flag) && !(flags & letters[i].unless))
            g_string_append_c(out, letters[i].letter);
}

char *caback_backup_trust_string(const CERTCertTrust *trust)
{
    GString *out = g_string_new(NULL);

    append_trust_letters(out, trust->sslFlags);
    g_string_append_c(out, ',');
    append_trust_letters(out, trust->emailFlags);
    g_string_append_c(out, ',');
    append_trust_letters(out, trust->objectSigningFlags);
    return g_string_free(out, FALSE);
}

/* A certificate without a trust record gets ",," (no flags), as certutil -L shows it. */
static char *cert_trust(CERTCertificate *cert)
{
    CERTCertTrust trust;

    if (CERT_GetCertTrust(cert, &trust) != SECSuccess)
        memset(&trust, 0, sizeof trust);
    return caback_backup_trust_string(&trust);
}

static CabackBackupCert *find_cert(CabackBackupSelection *sel, CERTCertificate *cert)
{
    for (guint i = 0; i < sel->certs->len; i++) {
        CabackBackupCert *c = sel->certs->pdata[i];
        if (SECITEM_ItemsAreEqual(&c->cert->derCert, &cert->derCert))
            return c;
    }
    return NULL;
}

static CabackBackupCert *add_cert(CabackBackupSelection *sel, CERTCertificate *cert,
                                  gboolean selected)
{
    CabackBackupCert *c = find_cert(sel, cert);

    if (c != NULL) {
        c->selected = c->selected || selected;
        return c;
    }
    c = g_new0(CabackBackupCert, 1);
    c->cert = CERT_DupCertificate(cert);
    c->nickname = cert_nickname(cert);
    c->subject = cert_subject(cert);
    c->trust = cert_trust(cert);
    c->selected = selected;
    g_ptr_array_add(sel->certs, c);
    return c;
}

/* Add @cert with its private @key (the caller keeps its references). Keys are shared by CKA_ID:
 * a certificate renewed with the same key pairs with the key bag already there. */
static gboolean add_cert_with_key(CabackDb *db, CabackBackupSelection *sel, CERTCertificate *cert,
                                  SECKEYPrivateKey *key, GError **error)
{
    CabackBackupCert *c = add_cert(sel, cert, TRUE);
    if (c->key != NULL)
        return TRUE;

    g_autoptr(CabackKeyInfo) info = caback_keys_describe(db, key, cert);
    if (g_bytes_get_size(info->raw_id) == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "the private key of \"%s\" on token \"%s\" has no key ID (CKA_ID), so its "
                    "key bag could not be paired with its certificate; give the key a CKA_ID "
                    "on the token or leave the certificate out with -n",
                    c->nickname != NULL ? c->nickname : c->subject, sel->token_name);
        return FALSE;
    }
    for (guint i = 0; i < sel->keys->len; i++) {
        CabackBackupKey *k = sel->keys->pdata[i];
        if (g_bytes_equal(k->info->raw_id, info->raw_id)) {
            c->key = k;
            return TRUE;
        }
    }
    CabackBackupKey *k = g_new0(CabackBackupKey, 1);
    k->key = SECKEY_CopyPrivateKey(key);
    k->info = g_steal_pointer(&info);
    k->nickname = g_strdup(c->nickname);
    k->cert = c;
    c->key = k;
    g_ptr_array_add(sel->keys, k);
    return TRUE;
}

/* The issuer of @cert in the database: of the certificates with its issuer name, the one whose
 * key verifies @cert's signature, so that after a CA re-key without authority key IDs the old
 * certificates still get the old CA certificate. When no key verifies (an algorithm NSS cannot
 * check), NSS's own choice. */
static CERTCertificate *find_issuer(CERTCertificate *cert)
{
    CERTCertDBHandle *handle = cert->dbhandle != NULL ? cert->dbhandle : CERT_GetDefaultCertDB();
    g_autoptr(CERTCertList) list =
        CERT_CreateSubjectCertList(NULL, handle, &cert->derIssuer, PR_Now(), PR_FALSE);

    if (list != NULL)
        for (CERTCertListNode *node = CERT_LIST_HEAD(list); !CERT_LIST_END(node, list);
             node = CERT_LIST_NEXT(node))
            if (CERT_VerifySignedDataWithPublicKeyInfo(
                    &cert->signatureWrap, &node->cert->subjectPublicKeyInfo, NULL) == SECSuccess)
                return CERT_DupCertificate(node->cert);
    return CERT_FindCertIssuer(cert, PR_Now(), certUsageAnyCA);
}

/* Walk from @c's certificate up to a self-signed root, adding each issuer without its key. A
 * missing issuer is a warning: the backup is still complete for what the database holds. */
static void add_chain(CabackBackupSelection *sel, CabackBackupCert *c)
{
    CERTCertificate *cur = CERT_DupCertificate(c->cert);

    for (int depth = 0; depth < 20 && !cur->isRoot; depth++) {
        CERTCertificate *issuer = find_issuer(cur);
        if (issuer == NULL) {
            g_autofree char *subject = cert_subject(cur);
            char *issuer_dn = CERT_NameToAscii(&cur->issuer);
            g_ptr_array_add(sel->warnings,
                            g_strdup_printf("the issuer \"%s\" of \"%s\" is not in the database; "
                                            "the chain of \"%s\" in the backup ends at \"%s\"",
                                            issuer_dn != NULL ? issuer_dn : "?", subject,
                                            c->nickname != NULL ? c->nickname : c->subject,
                                            subject));
            if (issuer_dn != NULL)
                PORT_Free(issuer_dn);
            break;
        }
        if (SECITEM_ItemsAreEqual(&issuer->derCert, &cur->derCert)) {
            CERT_DestroyCertificate(issuer);
            break;
        }
        add_cert(sel, issuer, FALSE);
        CERT_DestroyCertificate(cur);
        cur = issuer;
    }
    CERT_DestroyCertificate(cur);
}

static PRTime not_before(CERTCertificate *cert)
{
    PRTime nb = 0, na = 0;

    if (CERT_GetCertTimes(cert, &nb, &na) != SECSuccess)
        return 0;
    return nb;
}

/* Order certificates by nickname, then oldest first, so that a backup lists the same way twice. */
static gint compare_certs(gconstpointer a, gconstpointer b)
{
    CERTCertificate *x = *(CERTCertificate *const *)a, *y = *(CERTCertificate *const *)b;
    int r = g_strcmp0(x->nickname, y->nickname);

    if (r != 0)
        return r;
    PRTime tx = not_before(x), ty = not_before(y);
    return tx < ty ? -1 : tx > ty ? 1 : 0;
}

static GPtrArray *cert_array_from_list(CERTCertList *list)
{
    GPtrArray *certs = g_ptr_array_new_with_free_func((GDestroyNotify)CERT_DestroyCertificate);

    if (list != NULL)
        for (CERTCertListNode *node = CERT_LIST_HEAD(list); !CERT_LIST_END(node, list);
             node = CERT_LIST_NEXT(node))
            g_ptr_array_add(certs, CERT_DupCertificate(node->cert));
    g_ptr_array_sort(certs, compare_certs);
    return certs;
}

static gboolean read_bool_attribute(SECKEYPrivateKey *key, CK_ATTRIBUTE_TYPE type, gboolean *value)
{
    SECItem item = {siBuffer, NULL, 0};

    if (PK11_ReadRawAttribute(PK11_TypePrivKey, key, type, &item) != SECSuccess)
        return FALSE;
    gboolean ok = item.len == sizeof(CK_BBOOL);
    if (ok)
        *value = item.data[0] != CK_FALSE;
    SECITEM_FreeItem(&item, PR_FALSE);
    return ok;
}

/* Keys that the token marks not extractable can never be wrapped out; finding them now saves the
 * user the key derivations of all the others. */
static gboolean check_exportable(CabackBackupSelection *sel, GError **error)
{
    g_autoptr(GString) locked = g_string_new(NULL);
    guint n = 0;

    for (guint i = 0; i < sel->keys->len; i++) {
        CabackBackupKey *k = sel->keys->pdata[i];
        gboolean extractable = TRUE;
        /* A token that does not answer may still wrap the key; the writer then tells. */
        read_bool_attribute(k->key, CKA_EXTRACTABLE, &extractable);
        if (extractable)
            continue;
        g_autofree char *hex = caback_key_info_nss_id(k->info);
        g_autofree char *dogtag = caback_key_info_dogtag_id(k->info);
        g_string_append_printf(locked, "%s\"%s\" (key ID %s, CS.cfg form %s, token \"%s\")",
                               n > 0 ? "; " : "", k->nickname != NULL ? k->nickname : "?", hex,
                               dogtag != NULL ? dogtag : "-",
                               PK11_GetTokenName(k->key->pkcs11Slot));
        n++;
    }
    if (n == 0)
        return TRUE;
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_EXPORTABLE,
                "the token will not let %s out (marked not extractable), so %s cannot "
                "be written to a PKCS#12 file: %s. Nothing was written. Two honest options: back "
                "the keys up with the HSM vendor's own backup tool (e.g. a partition backup or "
                "key cloning to a backup HSM), and/or use --certs-only to write a file with the "
                "certificates and trust flags but no private keys (or leave these certificates "
                "out with -n)",
                n == 1 ? "this private key" : "these private keys", n == 1 ? "it" : "they",
                locked->str);
    return FALSE;
}

/* Keys of the token that no selected certificate pairs with: every certificate with a key is
 * selected by select_all, so these are the orphans caback listkeys shows. Compared by CKA_ID,
 * which is cheap; asking NSS for each key's certificate would build (and re-verify the trust of)
 * every certificate again. */
static void warn_orphan_keys(CabackDb *db, CabackBackupSelection *sel)
{
    g_autoptr(GHashTable) paired = g_hash_table_new(g_bytes_hash, g_bytes_equal);
    for (guint i = 0; i < sel->keys->len; i++) {
        const CabackBackupKey *k = sel->keys->pdata[i];
        g_hash_table_add(paired, k->info->raw_id);
    }

    g_autoptr(SECKEYPrivateKeyList) list = PK11_ListPrivateKeysInSlot(db->slot);
    g_autoptr(GString) ids = g_string_new(NULL);
    guint n = 0;
    for (SECKEYPrivateKeyListNode *node = list != NULL ? PRIVKEY_LIST_HEAD(list) : NULL;
         node != NULL && !PRIVKEY_LIST_END(node, list); node = PRIVKEY_LIST_NEXT(node)) {
        SECItem *ckaid = PK11_GetLowLevelKeyIDForPrivateKey(node->key);
        g_autoptr(GBytes) id =
            g_bytes_new(ckaid != NULL ? ckaid->data : NULL, ckaid != NULL ? ckaid->len : 0);
        if (ckaid != NULL)
            SECITEM_FreeItem(ckaid, PR_TRUE);
        if (g_hash_table_contains(paired, id))
            continue;
        gsize len = 0;
        const guint8 *data = g_bytes_get_data(id, &len);
        g_string_append(ids, n > 0 ? ", " : "");
        if (len == 0)
            g_string_append(ids, "(no CKA_ID)");
        for (gsize j = 0; j < len; j++)
            g_string_append_printf(ids, "%02x", data[j]);
        n++;
    }
    if (n > 0)
        g_ptr_array_add(sel->warnings,
                        g_strdup_printf("%u private key%s on token \"%s\" ha%s no certificate "
                                        "and %s not in the backup (caback listkeys shows %s as "
                                        "orphan): %s",
                                        n, n == 1 ? "" : "s", sel->token_name, n == 1 ? "s" : "ve",
                                        n == 1 ? "is" : "are", n == 1 ? "it" : "them", ids->str));
}

static gboolean select_all(CabackDb *db, CabackBackupSelection *sel, GError **error)
{
    /* An empty token gives NULL; that is reported below as "nothing to back up". */
    g_autoptr(CERTCertList) list = PK11_ListCertsInSlot(db->slot);
    g_autoptr(GPtrArray) certs = cert_array_from_list(list);

    for (guint i = 0; i < certs->len; i++) {
        CERTCertificate *cert = certs->pdata[i];
        g_autoptr(SECKEYPrivateKey) key = caback_token_private_key_of(db->slot, cert, db);
        if (key == NULL)
            continue;
        if (!add_cert_with_key(db, sel, cert, key, error))
            return FALSE;
    }
    if (sel->keys->len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "token \"%s\" of NSS database %s has no certificate with a private key, so "
                    "there is nothing to back up (check -d and --token; caback listkeys shows "
                    "the keys, certutil -L -d sql:%s the certificates)",
                    sel->token_name, db->dir, db->dir);
        return FALSE;
    }
    warn_orphan_keys(db, sel);
    return TRUE;
}

static gboolean select_nicknames(CabackDb *db, CabackBackupSelection *sel,
                                 const char *const *nicknames, GError **error)
{
    g_autoptr(GString) unknown = g_string_new(NULL);
    g_autoptr(GString) keyless = g_string_new(NULL);

    for (guint n = 0; nicknames[n] != NULL; n++) {
        const char *nick = nicknames[n];
        gboolean seen = FALSE;
        for (guint m = 0; m < n && !seen; m++)
            seen = strcmp(nicknames[m], nick) == 0;
        if (seen)
            continue;

        g_autoptr(CERTCertList) list = PK11_FindCertsFromNickname(nick, db);
        g_autoptr(GPtrArray) certs = cert_array_from_list(list);
        if (certs->len == 0) {
            g_string_append_printf(unknown, "%s\"%s\"", unknown->len > 0 ? ", " : "", nick);
            continue;
        }
        guint with_key = 0;
        for (guint i = 0; i < certs->len; i++) {
            CERTCertificate *cert = certs->pdata[i];
            g_autoptr(SECKEYPrivateKey) key = PK11_FindKeyByAnyCert(cert, db);
            if (key == NULL) {
                /* An old certificate of the nickname whose key is gone still belongs with the
                 * others; it goes in without a key. */
                add_cert(sel, cert, TRUE);
                continue;
            }
            if (!add_cert_with_key(db, sel, cert, key, error))
                return FALSE;
            with_key++;
        }
        if (with_key == 0)
            g_string_append_printf(keyless, "%s\"%s\"", keyless->len > 0 ? ", " : "", nick);
    }
    if (unknown->len > 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "no certificate with nickname %s in NSS database %s (token \"%s\"); nothing "
                    "was written. List the nicknames with: certutil -L -d sql:%s",
                    unknown->str, db->dir, sel->token_name, db->dir);
        return FALSE;
    }
    if (keyless->len > 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "the certificate%s %s %s no private key on any token of NSS database %s; "
                    "nothing was written. caback listkeys shows the keys there are",
                    strchr(keyless->str, ',') != NULL ? "s" : "", keyless->str,
                    strchr(keyless->str, ',') != NULL ? "have" : "has", db->dir);
        return FALSE;
    }
    return TRUE;
}

CabackBackupSelection *caback_backup_select_full(CabackDb *db, const char *const *nicknames,
                                                 gboolean certs_only, GError **error)
{
    g_autoptr(CabackBackupSelection) sel = selection_new(db->token_name);

    if (nicknames == NULL || nicknames[0] == NULL) {
        if (!select_all(db, sel, error))
            return NULL;
    } else if (!select_nicknames(db, sel, nicknames, error)) {
        return NULL;
    }

    guint selected = sel->certs->len;
    for (guint i = 0; i < selected; i++)
        add_chain(sel, sel->certs->pdata[i]);

    if (certs_only) {
        /* The certificates stay selected (they had a key); only the keys leave the backup, and
         * with them their localKeyID, since nothing in the file carries that ID any more. */
        for (guint i = 0; i < sel->certs->len; i++)
            ((CabackBackupCert *)sel->certs->pdata[i])->key = NULL;
        g_ptr_array_set_size(sel->keys, 0);
        sel->certs_only = TRUE;
        return g_steal_pointer(&sel);
    }
    if (!check_exportable(sel, error))
        return NULL;
    return g_steal_pointer(&sel);
}

/* ---- writing ---- */

/* The friendlyName of @nickname in the file: without the "TOKEN:" prefix NSS puts on names of
 * the backed-up token's certificates, so that a restore names them as on the source (Dogtag's
 * nicknames in CS.cfg carry the token separately) on whatever token it goes to. */
static const char *file_name(const CabackBackupSelection *sel, const char *nickname)
{
    return caback_nickname_strip_token(nickname, sel->token_name);
}

static SECItem key_id_item(const CabackBackupKey *key)
{
    gsize len = 0;
    const guint8 *data = g_bytes_get_data(key->info->raw_id, &len);
    SECItem item = {siBuffer, (unsigned char *)data, (unsigned int)len};

    return item;
}

static const char *key_name(const CabackBackupKey *key)
{
    return key->nickname != NULL ? key->nickname : key->cert->subject;
}

/* The private keys of db->reader by object handle (softoken names an object of key4.db by its
 * row, so both openings give a key the same handle); NULL without a reader. */
static GHashTable *reader_keys(CabackDb *db, SECKEYPrivateKeyList **out)
{
    SECKEYPrivateKeyList *list = db->reader != NULL ? PK11_ListPrivateKeysInSlot(db->reader) : NULL;
    *out = list;
    if (list == NULL)
        return NULL;
    GHashTable *by_handle = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (SECKEYPrivateKeyListNode *node = PRIVKEY_LIST_HEAD(list); !PRIVKEY_LIST_END(node, list);
         node = PRIVKEY_LIST_NEXT(node))
        g_hash_table_insert(by_handle, GSIZE_TO_POINTER(node->key->pkcs11ID), node->key);
    return by_handle;
}

/* @key (of the database's own token) as db->reader sees it: the key with its handle there, if
 * it has the same CKA_ID; else NULL. (A wrong key could not pass the check of the file anyway:
 * each key read back must sign for its certificate.) */
static SECKEYPrivateKey *reader_key(CabackDb *db, GHashTable *by_handle, const CabackBackupKey *k)
{
    if (by_handle == NULL || k->key->pkcs11Slot != db->slot)
        return NULL;
    SECKEYPrivateKey *other = g_hash_table_lookup(by_handle, GSIZE_TO_POINTER(k->key->pkcs11ID));
    SECItem *id = other != NULL ? PK11_GetLowLevelKeyIDForPrivateKey(other) : NULL;
    SECItem want = key_id_item(k);
    gboolean same = id != NULL && SECITEM_ItemsAreEqual(id, &want);
    if (id != NULL)
        SECITEM_FreeItem(id, PR_TRUE);
    return same ? other : NULL;
}

GBytes *caback_backup_encode_writer(CabackDb *db, CabackBackupSelection *selection,
                                    CabackP12Writer *writer, CabackBackupProgress progress,
                                    gpointer user_data, GError **error)
{
    guint n = selection->keys->len;
    g_autofree CabackP12KeyIn *in = g_new0(CabackP12KeyIn, MAX(n, 1));
    g_autofree SECItem *ids = g_new0(SECItem, MAX(n, 1));
    g_autoptr(SECKEYPrivateKeyList) readers = NULL;
    g_autoptr(GHashTable) by_handle = n > 1 ? reader_keys(db, &readers) : NULL;
    for (guint i = 0; i < n; i++) {
        CabackBackupKey *k = selection->keys->pdata[i];
        ids[i] = key_id_item(k);
        in[i] = (CabackP12KeyIn){k->key, file_name(selection, k->nickname), &ids[i],
                                 reader_key(db, by_handle, k)};
        if (progress != NULL)
            progress("export", i + 1, n, k, user_data);
    }
    g_autoptr(GError) local = NULL;
    guint failed = 0;
    if (n > 0 && !caback_p12_writer_add_keys(writer, in, n, db, &failed, &local)) {
        const CabackBackupKey *k = selection->keys->pdata[MIN(failed, n - 1)];
        g_autofree char *hex = caback_key_info_nss_id(k->info);
        g_autofree char *dogtag = caback_key_info_dogtag_id(k->info);
        g_set_error(error, CABACK_ERROR, local->code,
                    "cannot put the private key of \"%s\" (key ID %s, CS.cfg form %s, token "
                    "\"%s\") into the PKCS#12 file: %s",
                    key_name(k), hex, dogtag != NULL ? dogtag : "-",
                    PK11_GetTokenName(k->key->pkcs11Slot), local->message);
        return NULL;
    }
    for (guint i = 0; i < selection->certs->len; i++) {
        CabackBackupCert *c = selection->certs->pdata[i];
        SECItem id = {siBuffer, NULL, 0};
        g_autoptr(GError) local = NULL;

        if (c->key != NULL)
            id = key_id_item(c->key);
        if (!caback_p12_writer_add_cert(writer, c->cert, file_name(selection, c->nickname),
                                        c->key != NULL ? &id : NULL, c->trust, &local)) {
            g_set_error(error, CABACK_ERROR, local->code,
                        "cannot put the certificate \"%s\" (%s) into the PKCS#12 file: %s",
                        c->nickname != NULL ? c->nickname : "(no nickname)", c->subject,
                        local->message);
            return NULL;
        }
    }
    return caback_p12_writer_finish(writer, error);
}

guint caback_backup_describe_options(const CabackP12WriteOptions *options, const char **keys,
                                     const char **certs, const char **mac)
{
    gboolean legacy = options->profile == CABACK_P12_LEGACY;

    *keys = legacy ? "PBE-SHA1-3DES (pbeWithSHAAnd3-KeyTripleDES-CBC)"
                   : "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC)";
    *certs = *keys;
    if (options->mac == CABACK_P12_MAC_PBMAC1)
        *mac = "PBMAC1 (PBKDF2-HMAC-SHA256, HMAC-SHA256)";
    else
        *mac = legacy ? "HMAC-SHA1" : "HMAC-SHA256";
    if (options->iterations > 0)
        return options->iterations;
    return legacy ? 2048 : 600000;
}

/* ---- verification ---- */

void caback_backup_report_clear(CabackBackupReport *report)
{
    g_clear_pointer(&report->mac, g_free);
    g_clear_pointer(&report->key_alg, g_free);
    g_clear_pointer(&report->cert_alg, g_free);
    report->keys = report->certs = 0;
}

static gboolean same_bytes(GBytes *bytes, const SECItem *item)
{
    gsize len = 0;
    const guint8 *data = bytes != NULL ? g_bytes_get_data(bytes, &len) : NULL;

    return bytes != NULL && len == item->len && (len == 0 || memcmp(data, item->data, len) == 0);
}

static char *hex_of(GBytes *bytes)
{
    gsize len = 0;
    const guint8 *data = bytes != NULL ? g_bytes_get_data(bytes, &len) : NULL;

    if (bytes == NULL)
        return g_strdup("(none)");
    GString *hex = g_string_new(NULL);
    for (gsize i = 0; i < len; i++)
        g_string_append_printf(hex, "%02x", data[i]);
    return g_string_free(hex, FALSE);
}

static gboolean check_attributes(const char *what, const CabackP12Attributes *attrs,
                                 const char *nickname, GBytes *key_id, const char *trust,
                                 gboolean check_trust, GError **error)
{
    /* The reader shows a name with control or bidi characters escaped (names.h): compare with
     * the nickname in the same form. */
    g_autofree char *shown = caback_name_escape(nickname, NULL);
    if (g_strcmp0(attrs->friendly_name, shown) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s has friendlyName \"%s\" in the file, expected \"%s\"", what,
                    attrs->friendly_name ? attrs->friendly_name : "(none)",
                    shown ? shown : "(none)");
        return FALSE;
    }
    gboolean id_ok =
        key_id == NULL ? attrs->local_key_id == NULL
                       : attrs->local_key_id != NULL && g_bytes_equal(attrs->local_key_id, key_id);
    if (!id_ok) {
        g_autofree char *got = hex_of(attrs->local_key_id);
        g_autofree char *want = hex_of(key_id);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s has localKeyID %s in the file, expected %s", what, got, want);
        return FALSE;
    }
    if (check_trust && g_strcmp0(attrs->trust_flags, trust) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s has trust flags \"%s\" in the file, expected \"%s\"", what,
                    attrs->trust_flags ? attrs->trust_flags : "(none)", trust);
        return FALSE;
    }
    return TRUE;
}

/* The public value NSS derives a key's CKA_ID from (see PK11_ImportEncryptedPrivateKeyInfo). */
static const SECItem *public_value(SECKEYPublicKey *pub)
{
    switch (pub->keyType) {
    case rsaKey:
    case rsaPssKey:
    case rsaOaepKey:
        return &pub->u.rsa.modulus;
    case dsaKey:
        return &pub->u.dsa.publicValue;
    case dhKey:
        return &pub->u.dh.publicValue;
    case ecKey:
        return &pub->u.ec.publicValue;
    default:
        return NULL;
    }
}

/* A key matches its certificate when a signature it makes over a fresh random value verifies
 * with the certificate's public key; comparing stored public parts would trust the file. */
static gboolean key_matches_cert(SECKEYPrivateKey *priv, SECKEYPublicKey *pub, const char *what,
                                 GError **error)
{
    guint8 data[32];
    KeyType type = priv->keyType == rsaPssKey ? rsaKey : priv->keyType;
    SECOidTag alg = SEC_GetSignatureAlgorithmOidTag(type, SEC_OID_SHA256);
    SECItem sig = {siBuffer, NULL, 0};

    if (alg == SEC_OID_UNKNOWN) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "cannot check %s: caback does not know how to sign with a key of type %s", what,
                    caback_keys_type_name(priv->keyType));
        return FALSE;
    }
    if (PK11_GenerateRandom(data, sizeof data) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot make a test value to check %s",
                             what);
        return FALSE;
    }
    if (SEC_SignData(&sig, data, sizeof data, priv, alg) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_PKCS12,
                             "%s, decrypted from the file, cannot sign a test value", what);
        return FALSE;
    }
    SECStatus rv = VFY_VerifyData(data, sizeof data, pub, &sig, alg, NULL);
    int nss_error = PORT_GetError();
    SECITEM_FreeItem(&sig, PR_FALSE);
    if (rv != SECSuccess) {
        caback_error_set_nss_code(error, CABACK_ERROR_PKCS12, nss_error,
                                  "%s, decrypted from the file, does not match its "
                                  "certificate's public key (a test signature does not verify)",
                                  what);
        return FALSE;
    }
    return TRUE;
}

static gboolean verify_certs(CabackBackupSelection *sel, GPtrArray *file_certs, GError **error)
{
    if (file_certs->len != sel->certs->len) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the file holds %u certificates, %u were written", file_certs->len,
                    sel->certs->len);
        return FALSE;
    }
    for (guint i = 0; i < sel->certs->len; i++) {
        CabackBackupCert *c = sel->certs->pdata[i];
        const CabackP12Cert *found = NULL;
        g_autofree char *what = g_strdup_printf(
            "certificate \"%s\" (%s)", c->nickname ? c->nickname : "(no nickname)", c->subject);

        for (guint j = 0; j < file_certs->len; j++) {
            const CabackP12Cert *fc = file_certs->pdata[j];
            if (!same_bytes(fc->der, &c->cert->derCert))
                continue;
            if (found != NULL) {
                g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "%s is in the file twice",
                            what);
                return FALSE;
            }
            found = fc;
        }
        if (found == NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "%s is missing from the file",
                        what);
            return FALSE;
        }
        if (!check_attributes(what, &found->attrs, file_name(sel, c->nickname),
                              c->key != NULL ? c->key->info->raw_id : NULL, c->trust, TRUE, error))
            return FALSE;
    }
    return TRUE;
}

/* The decryption and test signature of one key bag (step 2 of verify_keys). */
typedef struct {
    CabackP12File *file;
    CabackP12Key *bag;
    PK11SlotInfo *slot;
    SECKEYPublicKey *pub; /* the certificate's public key (owned) */
    char *what;           /* "the private key of ... (key ID ...)" */
    GError *error;        /* set when the check failed */
} KeyCheck;

static void key_check_run(KeyCheck *c)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(SECKEYPrivateKey) priv = caback_p12_key_import(
        c->file, c->bag, c->slot, NULL, public_value(c->pub), FALSE, FALSE, NULL, &local);
    if (priv == NULL) {
        g_set_error(&c->error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "cannot decrypt %s from the file: %s", c->what, local->message);
        return;
    }
    (void)key_matches_cert(priv, c->pub, c->what, &c->error);
}

static void key_check_item(gpointer data, guint i)
{
    key_check_run(&((KeyCheck *)data)[i]);
}

/* Run @checks (from the second: the first ran alone, so that the reader derived its keys and
 * learned the password's encoding before threads share it) side by side on the processors;
 * the session keys are NSS's internal token's, which has no key database to serialise on. */
static void key_checks_run(KeyCheck *checks, guint n)
{
    if (n == 0)
        return;
    key_check_run(&checks[0]);
    caback_parallel_for(1, n, key_check_item, checks, "caback-verify");
}

/* The key that was written for key bag @i (@fk) of the file: known by its localKeyID, in the
 * file once (@seen), in an encrypted bag, with its attributes. *@what receives the key's name for
 * messages. NULL with @error otherwise. */
static CabackBackupKey *find_written_key(CabackBackupSelection *sel, CabackP12Key *fk, guint i,
                                         GHashTable *seen, char **what_out, GError **error)
{
    CabackBackupKey *k = NULL;

    for (guint j = 0; j < sel->keys->len && k == NULL; j++) {
        CabackBackupKey *cand = sel->keys->pdata[j];
        if (fk->attrs.local_key_id != NULL &&
            g_bytes_equal(fk->attrs.local_key_id, cand->info->raw_id))
            k = cand;
    }
    if (k == NULL) {
        g_autofree char *id = hex_of(fk->attrs.local_key_id);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "key bag %u of the file has localKeyID %s, which is no key that was "
                    "written",
                    i + 1, id);
        return NULL;
    }
    g_autofree char *hex = caback_key_info_nss_id(k->info);
    g_autofree char *what =
        g_strdup_printf("the private key of \"%s\" (key ID %s)", key_name(k), hex);
    if (g_hash_table_contains(seen, k)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "%s is in the file twice", what);
        return NULL;
    }
    g_hash_table_add(seen, k);
    if (!fk->shrouded) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s is in a plain key bag, not an encrypted one", what);
        return NULL;
    }
    if (!check_attributes(what, &fk->attrs, file_name(sel, k->nickname), k->info->raw_id, NULL,
                          FALSE, error))
        return NULL;
    *what_out = g_steal_pointer(&what);
    return k;
}

static gboolean verify_keys(CabackBackupSelection *sel, CabackP12File *file, GPtrArray *file_keys,
                            CabackBackupProgress progress, gpointer user_data, GError **error)
{
    g_autoptr(PK11SlotInfo) slot = PK11_GetInternalSlot();
    g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
    guint n_checks = 0;
    g_autofree KeyCheck *checks = g_new0(KeyCheck, MAX(file_keys->len, 1));
    gboolean ok = FALSE;

    if (file_keys->len != sel->keys->len) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the file holds %u keys, %u were written", file_keys->len, sel->keys->len);
        return FALSE;
    }
    /* 1. Each key bag is one that was written, once, with its attributes. */
    for (guint i = 0; i < file_keys->len; i++) {
        CabackP12Key *fk = file_keys->pdata[i];
        g_autofree char *what = NULL;
        CabackBackupKey *k = find_written_key(sel, fk, i, seen, &what, error);
        if (k == NULL)
            goto out;
        if (progress != NULL)
            progress("verify", i + 1, file_keys->len, k, user_data);
        g_autoptr(SECKEYPublicKey) pub = CERT_ExtractPublicKey(k->cert->cert);
        if (pub == NULL) {
            caback_error_set_nss(error, CABACK_ERROR_FAILED,
                                 "cannot read the public key of certificate \"%s\"", key_name(k));
            goto out;
        }
        if (public_value(pub) == NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                        "cannot check %s: keys of type %s are not supported", what,
                        caback_keys_type_name(pub->keyType));
            goto out;
        }
        checks[n_checks++] =
            (KeyCheck){file, fk, slot, g_steal_pointer(&pub), g_steal_pointer(&what), NULL};
    }

    /* 2. Each key decrypted into a throwaway session object must sign for its certificate. The
     * verdicts are read in file order, so the first failing key is the one reported. */
    key_checks_run(checks, n_checks);
    for (guint i = 0; i < n_checks; i++)
        if (checks[i].error != NULL) {
            g_propagate_error(error, g_steal_pointer(&checks[i].error));
            goto out;
        }
    ok = TRUE;
out:
    for (guint i = 0; i < n_checks; i++) {
        SECKEY_DestroyPublicKey(checks[i].pub);
        g_free(checks[i].what);
        g_clear_error(&checks[i].error);
    }
    return ok;
}

/* The checks of caback_backup_verify_bytes on @file as read (NULL: reading failed with @local). */
static gboolean verify_file(CabackBackupSelection *selection, CabackP12File *file,
                            const GError *read_error, CabackBackupProgress progress,
                            gpointer user_data, CabackBackupReport *report, GError **error)
{
    g_autoptr(GError) local = NULL;

    if (file == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "verification failed: the file just written cannot be read back: %s",
                    read_error->message);
        return FALSE;
    }
    const CabackP12Info *info = caback_p12_file_info(file);
    if (info->mac == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "verification failed: the file just written has no MAC");
        return FALSE;
    }
    GPtrArray *certs = caback_p12_file_certs(file);
    GPtrArray *keys = caback_p12_file_keys(file);
    if (!verify_certs(selection, certs, &local) ||
        !verify_keys(selection, file, keys, progress, user_data, &local)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12, "verification failed: %s",
                    local->message);
        return FALSE;
    }

    caback_backup_report_clear(report);
    report->keys = keys->len;
    report->certs = certs->len;
    report->mac = g_strdup(info->mac);
    if (keys->len > 0)
        report->key_alg = g_strdup(((CabackP12Key *)keys->pdata[0])->protection);
    if (certs->len > 0)
        report->cert_alg = g_strdup(((CabackP12Cert *)certs->pdata[0])->protection);
    return TRUE;
}

gboolean caback_backup_verify_bytes(CabackBackupSelection *selection, GBytes *bytes,
                                    const char *path, const CabackSecret *password,
                                    CabackP12Writer *writer, CabackBackupProgress progress,
                                    gpointer user_data, CabackBackupReport *report, GError **error)
{
    g_autoptr(GError) local = NULL;
    gsize len = 0;
    const guint8 *data = g_bytes_get_data(bytes, &len);
    g_autoptr(CabackP12File) file =
        caback_p12_read_verify(data, len, password, path, writer, &local);

    return verify_file(selection, file, local, progress, user_data, report, error);
}

/* ---- inputs ---- */

/* Where Dogtag keeps a system certificate's nickname: <sub>.<tag>.nickname in every version,
 * <sub>.cert.<tag>.nickname in 11.x, <sub>.<tag>.certnickname for OCSP signing, and the
 * cloning.<tag>.nickname that 10.x wrote at install time. */
static const char *tag_nickname(const CabackCsCfg *cfg, const char *sub, const char *tag,
                                GString *tried)
{
    char *keys[] = {g_strdup_printf("%s.%s.nickname", sub, tag),
                    g_strdup_printf("%s.cert.%s.nickname", sub, tag),
                    g_strdup_printf("%s.%s.certnickname", sub, tag),
                    g_strdup_printf("cloning.%s.nickname", tag)};
    const char *found = NULL;

    for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
        const char *value = found == NULL ? caback_cscfg_get(cfg, keys[i]) : NULL;
        if (found == NULL)
            g_string_append_printf(tried, "%s%s", tried->len > 0 ? ", " : "", keys[i]);
        if (value != NULL && *value != '\0')
            found = value;
        g_free(keys[i]);
    }
    return found;
}

char **caback_backup_cscfg_nicknames(const char *path, gboolean include_sslserver, GError **error)
{
    g_autoptr(CabackCsCfg) cfg = caback_cscfg_read_file(path, error);
    if (cfg == NULL)
        return NULL;

    g_autofree char *sub = caback_cscfg_subsystem(cfg);
    g_autofree char *list_key = sub != NULL ? g_strdup_printf("%s.cert.list", sub) : NULL;
    const char *list = list_key != NULL ? caback_cscfg_get(cfg, list_key) : NULL;
    if (list == NULL || *list == '\0') {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG,
                    "%s has no %s, so it does not say which certificates the subsystem has; "
                    "is it a Dogtag CS.cfg (e.g. /var/lib/pki/pki-tomcat/ca/conf/CS.cfg)? Name "
                    "the certificates with -n instead",
                    path, list_key != NULL ? list_key : "<subsystem>.cert.list (nor cs.type)");
        return NULL;
    }

    g_autoptr(GPtrArray) nicknames = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) tags = g_strsplit(list, ",", -1);
    for (guint i = 0; tags[i] != NULL; i++) {
        const char *tag = g_strstrip(tags[i]);
        if (*tag == '\0' || (!include_sslserver && strcmp(tag, "sslserver") == 0))
            continue;
        g_autoptr(GString) tried = g_string_new(NULL);
        const char *nick = tag_nickname(cfg, sub, tag, tried);
        if (nick == NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG,
                        "%s lists the certificate \"%s\" in %s but gives it no nickname (looked "
                        "at %s); add the nickname there, or name the certificates with -n",
                        path, tag, list_key, tried->str);
            return NULL;
        }
        g_ptr_array_add(nicknames, g_strdup(nick));
    }
    if (nicknames->len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG,
                    "%s=%s in %s leaves no certificate to back up", list_key, list, path);
        return NULL;
    }
    g_ptr_array_add(nicknames, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&nicknames), FALSE);
}
