/* caback restore, third stage: the apply. Owns carrying out a plan on the database, all or
 * nothing (caback_restore_apply*): removing what --replace replaces, importing keys and
 * certificates, setting trust, the undo journal that takes back every change of a failed run,
 * and the last check that each stored key pairs with its certificate; and making a new database
 * for a restore (caback_restore_create_db). Every NSS reference taken here is released before
 * returning, so that caback_db_close shuts NSS down cleanly. */
#include "config.h"

#include <caback/atomic-file.h>
#include <caback/db-lock.h>
#include <caback/error.h>
#include <caback/keys.h>
#include <caback/nss-util.h>
#include <caback/parallel.h>
#include <caback/progress.h>
#include <caback/restore.h>
#include <caback/stored-key-check.h>

#include "restore-internal.h"
#include "token-objects.h"

#include <certdb.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <pk11pub.h>
#include <pkcs11.h>
#include <pkcs11n.h>
#include <prprf.h>
#include <secerr.h>
#include <secmod.h>
#include <string.h>
#include <unistd.h>

/* ---- apply ---- */

/* The journal of a run: what it created, recorded when it created it (the handle of every object
 * it made on its token, a private key's too), and the values of the trust objects it changed.
 * The undo removes those objects and writes those values back, newest first; it never looks a
 * certificate up again by nickname or encoding, so it cannot touch an object it did not create
 * (another run's import, or a copy NSS made for another token). */
typedef enum {
    UNDO_DESTROY_OBJECT, /* an object this run created: a private or public key, a certificate,
                            the copy of a certificate NSS put in the internal token, a trust
                            object */
    UNDO_RESTORE_TRUST,  /* a trust object that existed before, whose flags this run changed */
    UNDO_REIMPORT_CERT,  /* a certificate --replace removed */
} UndoKind;

/* The attributes of an NSS trust object that setting trust flags writes. */
static const CK_ATTRIBUTE_TYPE trust_attributes[] = {
    CKA_TRUST_SERVER_AUTH, CKA_TRUST_CLIENT_AUTH,      CKA_TRUST_EMAIL_PROTECTION,
    CKA_TRUST_CODE_SIGNING, CKA_TRUST_STEP_UP_APPROVED,
};

/* What the undo of a changed trust object or a removed certificate needs besides a handle. */
typedef struct {
    SECItem *values[G_N_ELEMENTS(trust_attributes)]; /* UNDO_RESTORE_TRUST: the values before */
    GBytes *der;                                     /* UNDO_REIMPORT_CERT: the certificate */
    char *nickname;
    char *trust; /* UNDO_REIMPORT_CERT: the flags before, or NULL */
} UndoDetail;

/* How the message of a step is made, only when its undo fails. */
typedef enum {
    UNDO_WHAT_TEXT,       /* u->text */
    UNDO_WHAT_KEY,        /* "deleting the imported key" and u->key_id */
    UNDO_WHAT_PUBLIC_KEY, /* "deleting the stored public key" and u->key_id */
    UNDO_WHAT_CERT,       /* "removing certificate" u->nickname from u->slot's token */
    UNDO_WHAT_NEW_TRUST,  /* "removing the trust of" u->nickname from u->slot's token */
    UNDO_WHAT_OLD_TRUST,  /* "putting back the trust of" u->nickname on u->slot's token */
} UndoWhat;

/* One step of the journal. A run of a file of many certificates and keys makes a step for each
 * object, so that a step is kept small: its message is made (from the key ID, or the
 * certificate's nickname, which the plan keeps longer than the journal) only if the undo fails;
 * a key and the public key object stored beside it share one step; and the rarer steps keep
 * their detail apart. */
typedef struct {
    UndoKind kind;
    UndoWhat what;
    PK11SlotInfo *slot;      /* UNDO_DESTROY_OBJECT / UNDO_RESTORE_TRUST: the object's token */
    CK_OBJECT_HANDLE handle; /* ... and its handle there */
    CK_OBJECT_HANDLE public_handle; /* UNDO_WHAT_KEY: the public key object stored after the key
                                       on the same token, or CK_INVALID_HANDLE */
    UndoDetail *detail;      /* UNDO_RESTORE_TRUST, UNDO_REIMPORT_CERT; NULL otherwise */
    union {
        char *text;           /* UNDO_WHAT_TEXT (owned) */
        const char *nickname; /* UNDO_WHAT_CERT, _NEW_TRUST, _OLD_TRUST (the plan's) */
    };
    CabackKeyId key_id; /* UNDO_WHAT_KEY, UNDO_WHAT_PUBLIC_KEY */
} UndoStep;

static void undo_step_free(UndoStep *u)
{
    if (u->slot != NULL)
        PK11_FreeSlot(u->slot);
    if (u->detail != NULL) {
        for (gsize i = 0; i < G_N_ELEMENTS(u->detail->values); i++)
            if (u->detail->values[i] != NULL)
                SECITEM_FreeItem(u->detail->values[i], PR_TRUE);
        g_clear_pointer(&u->detail->der, g_bytes_unref);
        g_free(u->detail->nickname);
        g_free(u->detail->trust);
        g_free(u->detail);
    }
    if (u->what == UNDO_WHAT_TEXT)
        g_free(u->text);
    g_free(u);
}

/* What step @u undoes (@what for a step of a key: UNDO_WHAT_KEY or _PUBLIC_KEY), for a
 * message. */
static char *undo_step_what(const UndoStep *u, UndoWhat what)
{
    g_autofree char *nss_id = NULL;
    const char *token = u->slot != NULL ? PK11_GetTokenName(u->slot) : "?";

    switch (what) {
    case UNDO_WHAT_KEY:
    case UNDO_WHAT_PUBLIC_KEY:
        nss_id = caback_keyid_to_nss(&u->key_id);
        return g_strdup_printf(what == UNDO_WHAT_KEY ? "deleting the imported key %s"
                                                     : "deleting the stored public key %s",
                               nss_id);
    case UNDO_WHAT_CERT:
        return g_strdup_printf("removing certificate \"%s\" from token \"%s\"", u->nickname,
                               token);
    case UNDO_WHAT_NEW_TRUST:
        return g_strdup_printf("removing the trust of \"%s\" from token \"%s\"", u->nickname,
                               token);
    case UNDO_WHAT_OLD_TRUST:
        return g_strdup_printf("putting back the trust of \"%s\" on token \"%s\"", u->nickname,
                               token);
    case UNDO_WHAT_TEXT:
    default:
        return g_strdup(u->text);
    }
}

/* Certificate @der, when @db's token holds it (token-objects.h: never a search by value). */
static CERTCertificate *find_cert(CabackDb *db, GBytes *der)
{
    gsize len;
    const guint8 *data = g_bytes_get_data(der, &len);
    SECItem item = {siBuffer, (unsigned char *)data, (unsigned int)len};

    return caback_token_find_cert(db->slot, &item);
}

static gboolean set_trust(CabackDb *db, GBytes *der, const char *flags, const char *nickname,
                          GError **error)
{
    CERTCertTrust trust;
    g_autoptr(CERTCertificate) cert = find_cert(db, der);

    if (cert == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "cannot find certificate \"%s\" again to set its trust flags",
                             nickname);
        return FALSE;
    }
    if (CERT_DecodeTrustString(&trust, flags) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_USAGE, "bad trust flags \"%s\" for \"%s\"", flags,
                             nickname);
        return FALSE;
    }
    if (CERT_ChangeCertTrust(CERT_GetDefaultCertDB(), cert, &trust) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "cannot set trust flags %s on certificate \"%s\"", flags, nickname);
        return FALSE;
    }
    return TRUE;
}

static gboolean import_cert(CabackDb *db, GBytes *der, const char *nickname, GError **error)
{
    gsize len;
    const guint8 *data = g_bytes_get_data(der, &len);
    SECItem item = {siBuffer, (unsigned char *)data, (unsigned int)len};

    if (PK11_ImportDERCert(db->slot, &item, CK_INVALID_HANDLE, (char *)nickname, PR_FALSE) !=
        SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "cannot import certificate \"%s\" into token \"%s\"", nickname,
                             db->token_name);
        return FALSE;
    }
    return TRUE;
}

static gboolean delete_cert(CabackDb *db, GBytes *der, const char *nickname, GError **error)
{
    g_autoptr(CERTCertificate) cert = find_cert(db, der);

    if (cert == NULL)
        return TRUE; /* already gone */
    /* SEC_DeletePermCertificate removes the certificate and its trust, never its key. */
    if (SEC_DeletePermCertificate(cert) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE, "cannot remove certificate \"%s\"",
                             nickname);
        return FALSE;
    }
    return TRUE;
}

/* ---- the objects of one certificate, before and after a step ---- */

/* One trust object of a certificate on a token, with the values setting trust may change. */
typedef struct {
    CK_OBJECT_HANDLE handle;
    SECItem *values[G_N_ELEMENTS(trust_attributes)];
} TrustObject;

/* What one token holds of one certificate: its certificate object and its trust objects. */
typedef struct {
    PK11SlotInfo *slot;
    CK_OBJECT_HANDLE cert;
    GArray *trust; /* of TrustObject */
} TokenObjects;

static void token_objects_clear(TokenObjects *t)
{
    for (guint i = 0; t->trust != NULL && i < t->trust->len; i++) {
        TrustObject *o = &g_array_index(t->trust, TrustObject, i);
        for (gsize j = 0; j < G_N_ELEMENTS(o->values); j++)
            if (o->values[j] != NULL)
                SECITEM_FreeItem(o->values[j], PR_TRUE);
    }
    g_clear_pointer(&t->trust, g_array_unref);
    g_clear_pointer(&t->slot, PK11_FreeSlot);
}

/* The objects of certificate @der that a step may create or change: on the database's token and,
 * for another token, on the internal token, where NSS keeps the trust (see internal_name_clash).
 * At most two tokens. */
typedef struct {
    TokenObjects tokens[2];
    guint n;
} CertObjects;

static void cert_objects_clear(CertObjects *s)
{
    for (guint i = 0; i < s->n; i++)
        token_objects_clear(&s->tokens[i]);
    s->n = 0;
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CertObjects, cert_objects_clear)

/* The values of the trust attributes of object @handle (an attribute the object lacks: NULL). */
static void raw_trust_values(CabackRawSession *r, CK_OBJECT_HANDLE handle,
                             SECItem *values[G_N_ELEMENTS(trust_attributes)])
{
    for (gsize j = 0; j < G_N_ELEMENTS(trust_attributes); j++)
        values[j] = caback_raw_attribute(r, handle, trust_attributes[j]);
}

/* What @slot holds of @cert (whose DER-encoded serial number is @serial): the handle of its
 * certificate object and its trust objects with their values. FALSE when the token cannot be
 * asked. The trust objects are found by a template in a session of our own: NSS's
 * PK11_FindGenericObjects would read every trust object of the token, for each certificate, so
 * that a restore would grow with the square of the database. */
static gboolean take_token_objects(TokenObjects *t, PK11SlotInfo *slot, CERTCertificate *cert,
                                   const SECItem *serial)
{
    CK_OBJECT_CLASS cls = CKO_NSS_TRUST;
    CK_BBOOL on_token = CK_TRUE;
    CK_ATTRIBUTE template[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_TOKEN, &on_token, sizeof on_token},
        {CKA_ISSUER, cert->derIssuer.data, cert->derIssuer.len},
        {CKA_SERIAL_NUMBER, serial->data, serial->len},
    };
    CabackRawSession r;

    t->slot = PK11_ReferenceSlot(slot);
    t->cert = CK_INVALID_HANDLE;
    t->trust = g_array_new(FALSE, TRUE, sizeof(TrustObject));
    if (!caback_raw_open(&r, slot, FALSE))
        return FALSE;
    t->cert = caback_raw_find_cert(&r, cert, serial);
    GArray *found = g_array_new(FALSE, FALSE, sizeof(CK_OBJECT_HANDLE));
    gboolean ok = caback_raw_find(&r, template, G_N_ELEMENTS(template), found);
    for (guint i = 0; i < found->len; i++) {
        TrustObject to = {g_array_index(found, CK_OBJECT_HANDLE, i), {NULL}};
        raw_trust_values(&r, to.handle, to.values);
        g_array_append_val(t->trust, to);
    }
    g_array_unref(found);
    caback_raw_close(&r);
    return ok;
}

/* What the database's token and (for another token) the internal token hold of certificate
 * @der now. FALSE (and @s empty) when the certificate cannot be decoded. */
static gboolean take_cert_objects(CertObjects *s, CabackDb *db, GBytes *der)
{
    gsize len;
    const guint8 *data = g_bytes_get_data(der, &len);
    SECItem item = {siBuffer, (unsigned char *)data, (unsigned int)len};
    g_autoptr(CERTCertificate) cert = CERT_NewTempCertificate(CERT_GetDefaultCertDB(), &item,
                                                              NULL, PR_FALSE, PR_TRUE);
    s->n = 0;
    if (cert == NULL)
        return FALSE;
    SECItem *serial = caback_cert_encoded_serial(cert);
    if (serial == NULL)
        return FALSE;
    gboolean ok = take_token_objects(&s->tokens[s->n++], db->slot, cert, serial);
    if (ok && !PK11_IsInternalKeySlot(db->slot)) {
        g_autoptr(PK11SlotInfo) internal = PK11_GetInternalKeySlot();
        ok = take_token_objects(&s->tokens[s->n++], internal, cert, serial);
    }
    SECITEM_FreeItem(serial, PR_TRUE);
    if (!ok)
        cert_objects_clear(s);
    return ok;
}

/* take_cert_objects before a step; a failure is the step's (nothing changed yet). */
static gboolean before_step(CertObjects *s, CabackDb *db, GBytes *der, const char *nickname,
                            GError **error)
{
    if (take_cert_objects(s, db, der))
        return TRUE;
    caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                         "cannot read what the tokens hold of certificate \"%s\"", nickname);
    return FALSE;
}

static gboolean handle_in(GArray *trust, CK_OBJECT_HANDLE handle, guint *index)
{
    for (guint i = 0; i < trust->len; i++)
        if (g_array_index(trust, TrustObject, i).handle == handle) {
            if (index != NULL)
                *index = i;
            return TRUE;
        }
    return FALSE;
}

/* A step for object @handle of @slot, whose message is made as @what says (the caller sets
 * the nickname or key ID it needs). */
static UndoStep *journal_object(GPtrArray *journal, UndoKind kind, PK11SlotInfo *slot,
                                CK_OBJECT_HANDLE handle, UndoWhat what)
{
    UndoStep *u = g_new0(UndoStep, 1);
    u->kind = kind;
    u->what = what;
    u->slot = PK11_ReferenceSlot(slot);
    u->handle = handle;
    u->public_handle = CK_INVALID_HANDLE;
    if (kind == UNDO_RESTORE_TRUST)
        u->detail = g_new0(UndoDetail, 1);
    g_ptr_array_add(journal, u);
    return u;
}

/* Journal the object @handle of @slot that this run made for key @id: the key itself
 * (UNDO_WHAT_KEY), or the public key object stored beside it (UNDO_WHAT_PUBLIC_KEY), which joins
 * the key's step when that is the journal's last. */
static void journal_key_object(GPtrArray *journal, PK11SlotInfo *slot, CK_OBJECT_HANDLE handle,
                               UndoWhat what, const CabackKeyId *id)
{
    UndoStep *last = journal->len > 0 ? journal->pdata[journal->len - 1] : NULL;
    if (what == UNDO_WHAT_PUBLIC_KEY && last != NULL && last->what == UNDO_WHAT_KEY &&
        last->slot == slot && last->public_handle == CK_INVALID_HANDLE &&
        caback_keyid_equal(&last->key_id, id)) {
        last->public_handle = handle;
        return;
    }
    UndoStep *u = journal_object(journal, UNDO_DESTROY_OBJECT, slot, handle, what);
    u->key_id = *id;
}

/* A step of certificate @nickname (the plan's string, which outlives the journal). */
static UndoStep *journal_cert_object(GPtrArray *journal, UndoKind kind, PK11SlotInfo *slot,
                                     CK_OBJECT_HANDLE handle, UndoWhat what,
                                     const char *nickname)
{
    UndoStep *u = journal_object(journal, kind, slot, handle, what);
    u->nickname = nickname;
    return u;
}

/* Record in @journal what changed for certificate @nickname between @before and now: each
 * certificate and trust object that appeared (to be destroyed by its handle) and the old values
 * of each trust object that was there (to be written back). Called after every step that touches
 * a certificate, whether it succeeded or not, since NSS may have created objects before failing
 * (STAN_ChangeCertTrust copies the certificate into the internal token, then stores trust). */
static void journal_cert_changes(GPtrArray *journal, CabackDb *db, GBytes *der,
                                 const char *nickname, const CertObjects *before)
{
    g_auto(CertObjects) after = {0};

    /* The same certificate decoded a moment ago: this cannot fail but for memory. */
    (void)take_cert_objects(&after, db, der);
    for (guint t = 0; t < after.n && t < before->n; t++) {
        const TokenObjects *a = &after.tokens[t], *b = &before->tokens[t];
        /* The certificate first: the undo, newest first, removes its trust before it. */
        if (b->cert == CK_INVALID_HANDLE && a->cert != CK_INVALID_HANDLE)
            journal_cert_object(journal, UNDO_DESTROY_OBJECT, a->slot, a->cert, UNDO_WHAT_CERT,
                                nickname);
        for (guint i = 0; i < a->trust->len; i++) {
            const TrustObject *o = &g_array_index(a->trust, TrustObject, i);
            guint j;
            if (!handle_in(b->trust, o->handle, &j)) {
                journal_cert_object(journal, UNDO_DESTROY_OBJECT, a->slot, o->handle,
                                    UNDO_WHAT_NEW_TRUST, nickname);
                continue;
            }
            const TrustObject *old = &g_array_index(b->trust, TrustObject, j);
            gboolean changed = FALSE;
            for (gsize k = 0; k < G_N_ELEMENTS(old->values); k++)
                changed |= (old->values[k] == NULL) != (o->values[k] == NULL) ||
                           (old->values[k] != NULL &&
                            !SECITEM_ItemsAreEqual(old->values[k], o->values[k]));
            if (!changed)
                continue;
            UndoStep *u = journal_cert_object(journal, UNDO_RESTORE_TRUST, a->slot, o->handle,
                                              UNDO_WHAT_OLD_TRUST, nickname);
            for (gsize k = 0; k < G_N_ELEMENTS(old->values); k++)
                u->detail->values[k] =
                    old->values[k] != NULL ? SECITEM_DupItem(old->values[k]) : NULL;
        }
    }
}

/* Write the recorded values back into the trust object @u->handle of @u->slot. */
static gboolean restore_trust_object(UndoStep *u, GError **error)
{
    CK_ATTRIBUTE values[G_N_ELEMENTS(trust_attributes)];
    CK_ULONG n = 0;
    CabackRawSession r;

    for (gsize k = 0; k < G_N_ELEMENTS(trust_attributes); k++)
        if (u->detail->values[k] != NULL)
            values[n++] = (CK_ATTRIBUTE){trust_attributes[k], u->detail->values[k]->data,
                                         u->detail->values[k]->len};
    if (!caback_raw_open(&r, u->slot, TRUE)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                    "cannot open a session on token \"%s\"", PK11_GetTokenName(u->slot));
        return FALSE;
    }
    CK_RV rv = r.f->C_SetAttributeValue(r.session, u->handle, values, n);
    caback_raw_close(&r);
    if (rv != CKR_OK)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                    "cannot write its flags back (PKCS#11 error 0x%lx)", (unsigned long)rv);
    return rv == CKR_OK;
}

/* Add to @failures that undoing @what (UNDO_WHAT_*) of step @u failed with @local. */
static void undo_failure(GString *failures, const UndoStep *u, UndoWhat what, const GError *local)
{
    g_autofree char *text = undo_step_what(u, what);
    g_string_append_printf(failures, "%s%s: %s", failures->len > 0 ? "; " : "", text,
                           local != NULL ? local->message : "failed");
}

/* Undo the steps of @journal, newest first. Returns a description of what could not be undone,
 * or NULL when everything was. */
static char *undo(CabackDb *db, GPtrArray *journal)
{
    g_autoptr(GString) failures = g_string_new(NULL);

    for (guint i = journal->len; i > 0; i--) {
        UndoStep *u = journal->pdata[i - 1];
        g_autoptr(GError) local = NULL;
        gboolean ok = TRUE;

        switch (u->kind) {
        case UNDO_DESTROY_OBJECT:
            /* A key's public key object was stored after the key: it goes first. */
            if (u->public_handle != CK_INVALID_HANDLE &&
                PK11_DestroyTokenObject(u->slot, u->public_handle) != SECSuccess) {
                g_autoptr(GError) pub = NULL;
                caback_error_set_nss(&pub, CABACK_ERROR_DATABASE, "cannot delete it");
                undo_failure(failures, u, UNDO_WHAT_PUBLIC_KEY, pub);
            }
            ok = PK11_DestroyTokenObject(u->slot, u->handle) == SECSuccess;
            if (!ok)
                caback_error_set_nss(&local, CABACK_ERROR_DATABASE, "cannot delete it");
            break;
        case UNDO_RESTORE_TRUST:
            ok = restore_trust_object(u, &local);
            break;
        case UNDO_REIMPORT_CERT:
            ok = import_cert(db, u->detail->der, u->detail->nickname, &local) &&
                 (u->detail->trust == NULL ||
                  set_trust(db, u->detail->der, u->detail->trust, u->detail->nickname, &local));
            break;
        }
        if (!ok)
            undo_failure(failures, u, u->what, local);
    }
    return failures->len > 0 ? g_strdup(failures->str) : NULL;
}

/* Test hook: CABACK_TEST_RESTORE_FAIL_STEP=N makes the N-th change of a run fail, so that the
 * test suite can prove that a failure in the middle leaves the database as it was. */
static gboolean injected_failure(guint *step, GError **error)
{
    const char *env = g_getenv("CABACK_TEST_RESTORE_FAIL_STEP");

    (*step)++;
    if (env != NULL && *env != '\0' && g_ascii_strtoull(env, NULL, 10) == *step) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                    "failure injected by CABACK_TEST_RESTORE_FAIL_STEP=%s", env);
        return TRUE;
    }
    return FALSE;
}

static UndoStep *journal_add(GPtrArray *journal, UndoKind kind, GBytes *der, const char *nickname,
                             const char *trust, char *what)
{
    UndoStep *u = g_new0(UndoStep, 1);
    u->kind = kind;
    u->detail = g_new0(UndoDetail, 1);
    u->detail->der = der != NULL ? g_bytes_ref(der) : NULL;
    u->detail->nickname = g_strdup(nickname);
    u->detail->trust = g_strdup(trust);
    u->what = UNDO_WHAT_TEXT;
    u->text = what;
    u->public_handle = CK_INVALID_HANDLE;
    g_ptr_array_add(journal, u);
    return u;
}

/* One pair check of step 5 of caback_restore_apply. */
typedef struct {
    CabackDb *db;
    CabackRestoreKey *key;
    CabackRestoreCert *cert;
    /* What the second reader (caback check-stored-keys) said about this key, when it did. */
    CabackStoredKeyVerdict verdict;
    char *message;
    GError *error; /* set when the check failed */
} PairJob;

/* Check that the key NSS finds for the job's certificate (as imported) pairs with it. */
static gboolean check_pair(PairJob *job, GError **error)
{
    CabackDb *db = job->db;
    CabackRestoreCert *c = job->cert;
    /* The file's certificate decoded from its bag (not NSS's cached one, whose trust NSS
     * would read and check again): the token's certificate object of it, then the private key
     * whose CKA_ID that object names, the one NSS pairs with it when the CA runs. */
    g_autoptr(CERTCertificate) cert = caback_restore_cert_decode(c);
    if (cert == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_PKCS12,
                             "cannot decode certificate \"%s\" again to check its key",
                             c->nickname);
        return FALSE;
    }
    g_autoptr(SECItem) ckaid = caback_token_cert_key_id(db->slot, cert);
    if (ckaid == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "certificate \"%s\" is not in the database after its import",
                             c->nickname);
        return FALSE;
    }
    g_autoptr(SECKEYPrivateKey) key = PK11_FindKeyByKeyID(db->slot, ckaid, db);
    if (key == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "NSS finds no private key for certificate \"%s\" after the import "
                             "(the key's ID does not match the certificate)",
                             c->nickname);
        return FALSE;
    }
    /* The second reader signed with the key of the ID the restore stored; its answer stands for
     * this key only when the certificate names that very ID. */
    gboolean same_id = ckaid->len == CABACK_KEYID_LEN &&
                       memcmp(ckaid->data, job->key->id.bytes, CABACK_KEYID_LEN) == 0;
    gboolean pairs = FALSE;
    if (same_id && job->verdict == CABACK_STORED_KEY_FAILED) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                    "cannot check that the key of \"%s\" pairs with it: %s", c->nickname,
                    job->message != NULL ? job->message : "the check failed");
        return FALSE;
    } else if (same_id && job->verdict != CABACK_STORED_KEY_UNANSWERED) {
        pairs = job->verdict == CABACK_STORED_KEY_PAIRS;
    } else {
        g_autoptr(SECKEYPublicKey) pub = CERT_ExtractPublicKey(cert);
        if (pub == NULL || !caback_key_pairs_with(key, pub, &pairs, db, error)) {
            if (pub == NULL)
                caback_error_set_nss(error, CABACK_ERROR_FAILED,
                                     "cannot read the public key of certificate \"%s\"",
                                     c->nickname);
            else
                g_prefix_error(error, "cannot check that the key of \"%s\" pairs with it: ",
                               c->nickname);
            return FALSE;
        }
    }
    if (!pairs) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "the private key restored for \"%s\" does not pair with its certificate (a "
                    "test signature does not verify); the file pairs the wrong key with it",
                    c->nickname);
        return FALSE;
    }
    return TRUE;
}

static void pair_item(gpointer data, guint i)
{
    PairJob *job = &((PairJob *)data)[i];
    check_pair(job, &job->error);
}

/* Run every check of @jobs, on as many threads as there are processors (NSS is thread-safe
 * once initialised); each job keeps its own error. */
static void check_pairs(PairJob *jobs, guint n)
{
    caback_parallel_for(0, n, pair_item, jobs, "caback-pair");
}

gboolean caback_restore_apply(CabackRestorePlan *plan, CabackDb *db, GError **error)
{
    return caback_restore_apply_checked(plan, db, NULL, error);
}

/* The ticket of key @i of a plan for the second reader. */
static guint key_ticket(guint i)
{
    return i + 1;
}

/* One run of caback_restore_apply_checked: what it has changed so far (the journal) and the first
 * failure, which stops it; each step below runs only while there is none. */
typedef struct {
    CabackRestorePlan *plan;
    CabackDb *db;
    CabackStoredKeyChecker *checker;
    GPtrArray *journal; /* of UndoStep*: what the undo takes back */
    guint step;         /* the points a test can make fail so far (injected_failure) */
    GError *failure;
} ApplyRun;

/* FALSE, with run->failure saying @what failed, when a test makes this point fail. */
static gboolean step_allowed(ApplyRun *run, const char *what)
{
    if (!injected_failure(&run->step, &run->failure))
        return TRUE;
    g_prefix_error(&run->failure, "%s: ", what);
    return FALSE;
}

/* The refusals that change nothing: conflicts, CA trust for a weak key. */
static gboolean plan_applicable(const CabackRestorePlan *plan, const CabackDb *db, GError **error)
{
    if (plan->conflicts > 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%u conflict(s) with what NSS database %s holds; nothing was changed",
                    plan->conflicts, db->dir);
        return FALSE;
    }
    if (plan->weak_refusals > 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%u certificate(s) would get CA trust (C or T) with a weak key (the plan says "
                    "which); nothing was changed. Use --allow-weak-keys to accept them",
                    plan->weak_refusals);
        return FALSE;
    }
    return TRUE;
}

/* Step 1, --replace: take the nicknames (the certificates go; their keys stay). */
static void remove_replaced(ApplyRun *run)
{
    for (guint i = 0; i < run->plan->certs->len && run->failure == NULL; i++) {
        CabackRestoreCert *c = run->plan->certs->pdata[i];
        if (c->action != CABACK_RESTORE_REPLACE || c->replaced == NULL)
            continue;
        for (guint j = 0; j < c->replaced->len && run->failure == NULL; j++) {
            CabackRestoreReplaced *r = c->replaced->pdata[j];
            g_autofree char *what = g_strdup_printf(
                "removing the old certificate \"%s\" (serial 0x%s)", r->nickname, r->serial_hex);
            if (!step_allowed(run, what))
                return;
            if (!delete_cert(run->db, r->der, r->nickname, &run->failure)) {
                g_prefix_error(&run->failure, "%s: ", what);
                return;
            }
            journal_add(run->journal, UNDO_REIMPORT_CERT, r->der, r->nickname, r->trust,
                        g_strdup_printf("putting back the old certificate \"%s\" (serial 0x%s)",
                                        r->nickname, r->serial_hex));
        }
    }
}

/* Import key @k (number @i) of the file, journal its object, and hand it to the second reader;
 * the key (NULL on failure) is the caller's. The journal keeps the object's handle, not the key:
 * a reference holds an arena of about 2 KB, which a file of many keys kept to the end. */
static SECKEYPrivateKey *import_key(ApplyRun *run, guint i, CabackRestoreKey *k,
                                    CabackRestoreCert *c, const char *what)
{
    CabackDb *db = run->db;

    if (!step_allowed(run, what))
        return NULL;
    gsize len;
    const guint8 *pv = g_bytes_get_data(k->public_value, &len);
    SECItem value = {siBuffer, (unsigned char *)pv, (unsigned int)len};
    /* A key with a certificate gets no label of its own, as keys NSS generates have none:
     * certutil -K then names it by its certificate, and shows it as an orphan should that
     * certificate ever go. A key without certificate keeps its friendlyName as label. */
    SECKEYPrivateKey *key =
        caback_p12_key_import(run->plan->file, k->bag, db->slot, c != NULL ? NULL : k->nickname,
                              &value, TRUE, !run->plan->non_extractable, db, &run->failure);
    if (key == NULL) {
        g_prefix_error(&run->failure, "%s: ", what);
        return NULL;
    }
    /* Only ever a key this run imported (its ID was not in the database before). */
    journal_key_object(run->journal, key->pkcs11Slot, key->pkcs11ID, UNDO_WHAT_KEY, &k->id);

    /* The ID NSS gave the key must be the one computed (and printed for CS.cfg). */
    g_autoptr(SECItem) got = PK11_GetLowLevelKeyIDForPrivateKey(key);
    if (got == NULL || got->len != CABACK_KEYID_LEN ||
        memcmp(got->data, k->id.bytes, CABACK_KEYID_LEN) != 0) {
        g_set_error(&run->failure, CABACK_ERROR, CABACK_ERROR_DATABASE,
                    "%s: the token gave the key a different key ID than NSS computes from its "
                    "public key",
                    what);
        SECKEY_DestroyPrivateKey(key);
        return NULL;
    }
    /* The second reader can check this key now, while the next ones are stored. */
    if (c != NULL)
        caback_stored_key_checker_submit(run->checker, key_ticket(i), &k->id, c->bag->der);
    return key;
}

/* The public key object NSS stores beside a key it generates (and pk12util beside a key it
 * imports): without it, NSS cannot tell without logging in that a certificate has its key, and
 * certutil -L would show no "u" trust flag. @public_ids: the key IDs that have one already. */
static gboolean store_public_key(ApplyRun *run, CabackRestoreKey *k, CabackRestoreCert *c,
                                 SECKEYPrivateKey *key, GHashTable *public_ids)
{
    g_autoptr(CERTCertificate) cert = c != NULL ? caback_restore_cert_decode(c) : NULL;
    g_autoptr(SECKEYPublicKey) pub =
        c != NULL ? (cert != NULL ? CERT_ExtractPublicKey(cert) : NULL)
                  : caback_token_public_key_of(key);
    g_autoptr(GBytes) id = g_bytes_new(k->id.bytes, CABACK_KEYID_LEN);
    if (pub == NULL || g_hash_table_contains(public_ids, id))
        return TRUE;
    g_autofree char *nss_id = caback_keyid_to_nss(&k->id);
    g_autofree char *what = g_strdup_printf("storing the public key of key %s", nss_id);
    if (!step_allowed(run, what))
        return FALSE;
    CK_OBJECT_HANDLE handle = PK11_ImportPublicKey(run->db->slot, pub, PR_TRUE);
    if (handle == CK_INVALID_HANDLE) {
        caback_error_set_nss(&run->failure, CABACK_ERROR_DATABASE, "%s", what);
        return FALSE;
    }
    journal_key_object(run->journal, run->db->slot, handle, UNDO_WHAT_PUBLIC_KEY, &k->id);
    g_hash_table_add(public_ids, g_steal_pointer(&id));
    return TRUE;
}

/* Step 2: the keys, before their certificates, so that NSS pairs each certificate with its
 * key. */
static void store_keys(ApplyRun *run)
{
    CabackRestorePlan *plan = run->plan;
    g_autoptr(GHashTable) public_ids = caback_restore_stored_public_key_ids(run->db->slot);

    for (guint i = 0; i < plan->keys->len && run->failure == NULL; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        caback_progress_report("storing keys", i + 1, plan->keys->len);
        if (k->action != CABACK_RESTORE_ADD && !k->store_public)
            continue;
        CabackRestoreCert *c = k->cert_index >= 0 ? plan->certs->pdata[k->cert_index] : NULL;
        g_autofree char *nss_id = caback_keyid_to_nss(&k->id);
        g_autoptr(SECKEYPrivateKey) key = NULL;
        if (k->store_public) {
            /* The key is there already (see plan_key): only its public key object is stored. */
            SECItem kid = {siBuffer, k->id.bytes, CABACK_KEYID_LEN};
            key = PK11_FindKeyByKeyID(run->db->slot, &kid, run->db);
            if (key == NULL) {
                caback_error_set_nss(&run->failure, CABACK_ERROR_DATABASE,
                                     "key %s is no longer in the database", nss_id);
                return;
            }
        } else {
            g_autofree char *what = g_strdup_printf(
                "importing key %s%s%s%s", nss_id, k->nickname != NULL ? " (\"" : "",
                k->nickname != NULL ? k->nickname : "", k->nickname != NULL ? "\")" : "");
            key = import_key(run, i, k, c, what);
            if (key == NULL)
                return;
        }
        if (!store_public_key(run, k, c, key, public_ids))
            return;
    }
}

/* What a step does to one certificate of the plan. */
typedef enum {
    CERT_IMPORT,    /* import it under its planned nickname */
    CERT_SET_TRUST, /* set the trust the plan gives it */
} CertStep;

/* Do @op to certificate @c, journaling what the tokens held before and what the step made. */
static gboolean cert_step_journaled(ApplyRun *run, CabackRestoreCert *c, CertStep op,
                                    const char *what)
{
    if (!step_allowed(run, what))
        return FALSE;
    g_auto(CertObjects) before = {0};
    if (!before_step(&before, run->db, c->bag->der, c->nickname, &run->failure)) {
        g_prefix_error(&run->failure, "%s: ", what);
        return FALSE;
    }
    gboolean done =
        op == CERT_IMPORT
            ? import_cert(run->db, c->bag->der, c->nickname, &run->failure)
            : set_trust(run->db, c->bag->der, c->trust, c->nickname, &run->failure);
    journal_cert_changes(run->journal, run->db, c->bag->der, c->nickname, &before);
    if (!done)
        g_prefix_error(&run->failure, "%s: ", what);
    return done;
}

/* Step 3: the certificates and their trust. */
static void store_certs(ApplyRun *run)
{
    CabackRestorePlan *plan = run->plan;

    for (guint i = 0; i < plan->certs->len && run->failure == NULL; i++) {
        CabackRestoreCert *c = plan->certs->pdata[i];
        caback_progress_report("storing certificates", i + 1, plan->certs->len);
        if (c->action != CABACK_RESTORE_ADD && c->action != CABACK_RESTORE_REPLACE &&
            c->action != CABACK_RESTORE_RENAME)
            continue;
        g_autofree char *importing = g_strdup_printf("importing certificate \"%s\"", c->nickname);
        if (!cert_step_journaled(run, c, CERT_IMPORT, importing))
            return;
        /* On another token whose certificate the internal token holds already, the trust is
         * that copy's: changed only when the plan says so (old_trust). */
        if (!caback_restore_stores_trust(c->trust) || (c->internal_copy && c->old_trust == NULL))
            continue;
        g_autofree char *what =
            g_strdup_printf("setting trust %s on \"%s\"", c->trust, c->nickname);
        if (!cert_step_journaled(run, c, CERT_SET_TRUST, what))
            return;
    }
}

/* Step 4: the trust of certificates already present. */
static void change_trust(ApplyRun *run)
{
    for (guint i = 0; i < run->plan->certs->len && run->failure == NULL; i++) {
        CabackRestoreCert *c = run->plan->certs->pdata[i];
        if (c->action != CABACK_RESTORE_TRUST)
            continue;
        g_autofree char *what = g_strdup_printf("changing the trust of \"%s\" from %s to %s",
                                                c->nickname, c->old_trust, c->trust);
        if (!cert_step_journaled(run, c, CERT_SET_TRUST, what))
            return;
    }
}

/* Step 5: each imported key must pair with its certificate: the test signatures side by side on
 * the processors (a token takes tens of milliseconds to load an RSA key), the verdicts in
 * order. */
static void check_stored_pairs(ApplyRun *run)
{
    CabackRestorePlan *plan = run->plan;

    caback_progress_report("checking that each stored key signs for its certificate", 0, 0);
    g_autoptr(GArray) jobs = g_array_new(FALSE, TRUE, sizeof(PairJob));
    for (guint i = 0; i < plan->keys->len; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        if (k->cert_index < 0)
            continue;
        CabackRestoreCert *c = plan->certs->pdata[k->cert_index];
        if (k->action != CABACK_RESTORE_ADD && c->action == CABACK_RESTORE_SKIP)
            continue;
        PairJob job = {run->db, k, c, CABACK_STORED_KEY_UNANSWERED, NULL, NULL};
        /* Keys stored by this run were given to the second reader (step 2); what it does not
         * answer is checked here. */
        if (k->action == CABACK_RESTORE_ADD)
            job.verdict = caback_stored_key_checker_wait(run->checker, key_ticket(i), &job.message);
        g_array_append_val(jobs, job);
    }
    check_pairs((PairJob *)(void *)jobs->data, jobs->len);
    for (guint i = 0; i < jobs->len; i++) {
        PairJob *job = &g_array_index(jobs, PairJob, i);
        if (job->error != NULL && run->failure == NULL)
            run->failure = g_steal_pointer(&job->error);
        g_clear_error(&job->error);
        g_clear_pointer(&job->message, g_free);
        job->key->pair_checked = run->failure == NULL;
    }
}

/* Undo every change of the failed run and say so in @error: what failed, and what is left when
 * undoing failed too. */
static void undo_failed_run(ApplyRun *run, GError **error)
{
    g_autofree char *left = undo(run->db, run->journal);
    if (left == NULL)
        g_propagate_prefixed_error(error, g_steal_pointer(&run->failure),
                                   "restore into NSS database %s failed; every change of this "
                                   "run was undone, the database holds what it held before. "
                                   "What failed: ",
                                   run->db->dir);
    else
        g_propagate_prefixed_error(
            error, g_steal_pointer(&run->failure),
            "restore into NSS database %s failed, and undoing it failed too (%s); check the "
            "database with certutil -L and caback listkeys. What failed first: ",
            run->db->dir, left);
}

gboolean caback_restore_apply_checked(CabackRestorePlan *plan, CabackDb *db,
                                      CabackStoredKeyChecker *checker, GError **error)
{
    if (!plan_applicable(plan, db, error) || !caback_restore_login_internal(db, error))
        return FALSE;

    g_autoptr(GPtrArray) journal = g_ptr_array_new_with_free_func((GDestroyNotify)undo_step_free);
    ApplyRun run = {plan, db, checker, journal, 0, NULL};
    remove_replaced(&run);
    if (run.failure == NULL)
        store_keys(&run);
    if (run.failure == NULL)
        store_certs(&run);
    if (run.failure == NULL)
        change_trust(&run);
    /* The last point a test can make fail: after every change, so that the undo of all of them
     * is proved too. */
    if (run.failure == NULL && journal->len > 0 && injected_failure(&run.step, &run.failure))
        g_prefix_error(&run.failure, "checking the restored keys: ");
    if (run.failure == NULL)
        check_stored_pairs(&run);

    if (run.failure == NULL) {
        /* Keep what was imported: drop the journal's references without undoing. */
        return TRUE;
    }
    undo_failed_run(&run, error);
    return FALSE;
}

/* ---- creating a database ---- */

static const char *const db_files[] = {"cert9.db", "key4.db", "pkcs11.txt"};

#define STAGING_PREFIX ".caback-new-db-"


static gboolean rename_into(const char *staging, const char *dir, const char *name, GError **error)
{
    g_autofree char *from = g_build_filename(staging, name, NULL);
    g_autofree char *to = g_build_filename(dir, name, NULL);
    if (g_rename(from, to) != 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot move the new database file %s into %s: %s", name, dir,
                    g_strerror(e));
        return FALSE;
    }
    return TRUE;
}


/* A creation killed after key4.db was moved in but before cert9.db was (its staging folder still
 * holds cert9.db) is finished: the key database is complete, only the certificate database was
 * still waiting. Any other staging folder is what a killed creation left: removed. TRUE when a
 * creation was finished. */
static gboolean finish_or_sweep_staging(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    gboolean finished = FALSE;
    g_autofree char *key4 = g_build_filename(dir, "key4.db", NULL);
    g_autofree char *cert9 = g_build_filename(dir, "cert9.db", NULL);

    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        if (!g_str_has_prefix(name, STAGING_PREFIX))
            continue;
        g_autofree char *staging = g_build_filename(dir, name, NULL);
        g_autofree char *staged_cert9 = g_build_filename(staging, "cert9.db", NULL);
        if (!finished && g_file_test(key4, G_FILE_TEST_EXISTS) &&
            !g_file_test(cert9, G_FILE_TEST_EXISTS) &&
            g_file_test(staged_cert9, G_FILE_TEST_EXISTS) &&
            rename_into(staging, dir, "cert9.db", NULL))
            finished = TRUE;
        caback_remove_folder(staging);
    }
    if (finished)
        caback_sync_folder(dir);
    return finished;
}

gboolean caback_restore_create_db(const char *dir, const CabackSecret *password,
                                  gboolean *created_dir, GError **error)
{
    g_autofree char *cert9 = g_build_filename(dir, "cert9.db", NULL);
    g_autofree char *key4 = g_build_filename(dir, "key4.db", NULL);

    *created_dir = FALSE;
    if (g_file_test(cert9, G_FILE_TEST_EXISTS)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT, "%s already holds an NSS database",
                    dir);
        return FALSE;
    }
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        if (g_mkdir_with_parents(dir, 0700) != 0) {
            int e = errno;
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "cannot create the database folder %s: %s", dir, g_strerror(e));
            return FALSE;
        }
        *created_dir = TRUE;
    } else if (finish_or_sweep_staging(dir)) {
        /* The database of an interrupted run, complete now; its password is checked at login. */
        return TRUE;
    }
    if (g_file_test(key4, G_FILE_TEST_EXISTS)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%s holds a key database (key4.db) but no certificate database (cert9.db); "
                    "caback will not replace it, as it may hold keys: open it with certutil -K "
                    "-d sql:%s, or move it away",
                    dir, dir);
        return FALSE;
    }

    /* Made in a folder of its own, then moved in, key4.db before cert9.db (whose presence is what
     * makes a folder a database): a run killed halfway leaves no half-made database behind. */
    g_autofree char *staging = g_build_filename(dir, STAGING_PREFIX "XXXXXX", NULL);
    if (g_mkdtemp_full(staging, 0700) == NULL) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot create the new NSS database in %s: %s; check that the folder is "
                    "writable and not full",
                    dir, g_strerror(e));
        caback_restore_remove_created_db(dir, *created_dir);
        return FALSE;
    }
    g_autofree char *spec = g_strdup_printf("sql:%s", staging);
    NSSInitContext *context =
        NSS_InitContext(spec, "", "", "", NULL, NSS_INIT_NOROOTINIT | NSS_INIT_OPTIMIZESPACE);
    if (context == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE, "cannot create an NSS database in %s",
                             dir);
        caback_remove_folder(staging);
        caback_restore_remove_created_db(dir, *created_dir);
        return FALSE;
    }
    gboolean ok = TRUE;
    PK11SlotInfo *slot = PK11_GetInternalKeySlot();
    if (PK11_NeedUserInit(slot) &&
        PK11_InitPin(slot, NULL, password != NULL ? password->data : "") != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "cannot set the password of the new NSS database %s", dir);
        ok = FALSE;
    }
    PK11_FreeSlot(slot);
    if (NSS_ShutdownContext(context) != SECSuccess && ok) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "the new NSS database %s did not shut down cleanly", dir);
        ok = FALSE;
    }
    /* pkcs11.txt names the folder it was made in: NSS writes a new one at the first opening. */
    ok = ok && rename_into(staging, dir, "key4.db", error) &&
         rename_into(staging, dir, "cert9.db", error);
    caback_remove_folder(staging);
    caback_sync_folder(dir);
    if (!ok)
        caback_restore_remove_created_db(dir, *created_dir);
    return ok;
}

void caback_restore_remove_created_db(const char *dir, gboolean remove_dir)
{
    for (gsize i = 0; i < G_N_ELEMENTS(db_files); i++) {
        g_autofree char *path = g_build_filename(dir, db_files[i], NULL);
        g_unlink(path);
    }
    /* The lock file the failed run made beside the database it made (caback_db_lock). */
    g_autofree char *lock = g_build_filename(dir, CABACK_DB_LOCK_NAME, NULL);
    g_unlink(lock);
    if (remove_dir)
        g_rmdir(dir);
}
