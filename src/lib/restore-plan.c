/* caback restore, second stage: the plan. Owns every decision made against the database before
 * anything changes (caback_restore_plan): the nickname and trust flags each certificate gets,
 * add / skip / trust / conflict / replace / rename for each certificate and key, the weak-key
 * refusal, and the trust strings as certutil shows them. Reads the database only; the rules that
 * need no NSS are in restore-rules.c. Every NSS reference taken here is released before
 * returning. */
#include "config.h"

#include <caback/error.h>
#include <caback/keys.h>
#include <caback/names.h>
#include <caback/nickname.h>
#include <caback/nss-util.h>
#include <caback/plan-index.h>
#include <caback/restore.h>
#include <caback/stored-key-check.h>

#include "restore-internal.h"
#include "token-objects.h"

#include <certdb.h>
#include <pk11pub.h>
#include <pkcs11.h>
#include <pkcs11n.h>
#include <prprf.h>
#include <secasn1.h>
#include <secerr.h>
#include <string.h>

/* NSS prints certificates of the internal token as "NSS Certificate DB:nick" in some paths;
 * certutil -n and CS.cfg take the bare nickname there. */
static char *usable_nickname(PK11SlotInfo *slot, const char *nickname)
{
    if (nickname == NULL)
        return NULL;
    if (slot != NULL && PK11_IsInternalKeySlot(slot))
        return g_strdup(caback_nickname_strip_token(nickname, PK11_GetTokenName(slot)));
    return g_strdup(nickname);
}

/* The name NSS looks a nickname up by on @slot: bare on the internal token, "TOKEN:nick"
 * elsewhere. */
static char *lookup_name(PK11SlotInfo *slot, const char *nickname)
{
    return caback_nickname_on_token(nickname, PK11_GetTokenName(slot),
                                    PK11_IsInternalKeySlot(slot));
}

/* ---- what planning keeps: certificates --replace removes, lookups of the database ---- */

static void replaced_free(CabackRestoreReplaced *r)
{
    g_free(r->nickname);
    g_free(r->subject);
    g_free(r->serial_hex);
    g_bytes_unref(r->der);
    g_free(r->trust);
    g_free(r);
}

/* What planning looks up for each certificate, made once per plan. */
struct CabackRestorePlanning {
    /* The first certificate planned so far with each nickname. The keys are the certificates'
     * own nickname strings (set by plan_cert and not changed after), not copies: an index that
     * copied them cost about 190 bytes per certificate (issue 16 §3). */
    GHashTable *nicknames;
    /* What the database holds (every token), listed once: a DER (by der_hash) or a nickname
     * (ASCII case folded, whole and after "TOKEN:") that no certificate of it has cannot be
     * found by NSS's lookups either, so NSS is asked only about those that may be there. NULL
     * without a database. (One query per certificate of the file was most of the time of
     * planning a large file.) */
    GHashTable *db_ders;
    GHashTable *db_nicknames;
};

void caback_restore_planning_free(struct CabackRestorePlanning *p)
{
    if (p == NULL)
        return;
    if (p->nicknames != NULL)
        g_hash_table_unref(p->nicknames);
    if (p->db_ders != NULL)
        g_hash_table_unref(p->db_ders);
    if (p->db_nicknames != NULL)
        g_hash_table_unref(p->db_nicknames);
    g_free(p);
}

/* A certificate's DER reduced to a hash: the listing of the database is a filter (a certificate
 * whose hash is not listed is not there; one whose hash is listed is looked up), so that it
 * keeps a few bytes per certificate rather than a copy of each. */
static guint der_hash(const guint8 *der, gsize len)
{
    g_autoptr(GBytes) b = g_bytes_new_static(der, len);
    return g_bytes_hash(b);
}

static void add_nickname_forms(GHashTable *set, const char *nickname)
{
    if (nickname == NULL)
        return;
    g_hash_table_add(set, g_ascii_strdown(nickname, -1));
    const char *bare = caback_nickname_bare(nickname);
    if (bare != nickname)
        g_hash_table_add(set, g_ascii_strdown(bare, -1));
}

/* What planning_list_db reads of each certificate object: its value and its label. */
static const CK_ATTRIBUTE_TYPE listed_attributes[] = {CKA_VALUE, CKA_LABEL};

/* What planning_list_db fills, for one token. */
typedef struct {
    struct CabackRestorePlanning *p;
    const char *token;
} ListedToken;

static void add_listed_cert(SECItem *const *values, gpointer data)
{
    ListedToken *t = data;
    const SECItem *value = values[0], *label = values[1];

    if (value != NULL)
        g_hash_table_add(t->p->db_ders, GUINT_TO_POINTER(der_hash(value->data, value->len)));
    if (label == NULL || label->len == 0)
        return;
    g_autofree char *bare = g_strndup((const char *)label->data, label->len);
    g_autofree char *full = caback_nickname_on_token(bare, t->token, FALSE);
    add_nickname_forms(t->p->db_nicknames, bare);
    add_nickname_forms(t->p->db_nicknames, full);
}

/* The certificates of every token the database shows (logged in as PK11_ListCerts logs in: a
 * token whose certificates are private objects), read from the tokens' objects. */
static void planning_list_db(struct CabackRestorePlanning *p, CabackDb *db)
{
    p->db_ders = g_hash_table_new(g_direct_hash, g_direct_equal);
    p->db_nicknames = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(PK11SlotList) slots =
        PK11_GetAllTokens(CKM_INVALID_MECHANISM, PR_FALSE, PR_FALSE, db);
    for (PK11SlotListElement *le = slots != NULL ? PK11_GetFirstSafe(slots) : NULL; le != NULL;
         le = PK11_GetNextSafe(slots, le, PR_FALSE)) {
        PK11SlotInfo *slot = le->slot;
        if (!PK11_IsPresent(slot))
            continue;
        if (!PK11_IsFriendly(slot) && PK11_NeedLogin(slot) && !PK11_IsLoggedIn(slot, db))
            (void)PK11_Authenticate(slot, PR_FALSE, db);
        ListedToken t = {p, PK11_GetTokenName(slot)};
        (void)caback_token_each_object(slot, CKO_CERTIFICATE, listed_attributes,
                                       G_N_ELEMENTS(listed_attributes), add_listed_cert, &t);
    }
}

/* FALSE when the database listed before planning has no certificate with these bytes. */
static gboolean db_may_have_der(CabackRestorePlan *plan, const guint8 *der, gsize len)
{
    if (plan->planning == NULL || plan->planning->db_ders == NULL)
        return TRUE;
    return g_hash_table_contains(plan->planning->db_ders, GUINT_TO_POINTER(der_hash(der, len)));
}

/* FALSE when no certificate of the database listed before planning has this nickname (or its
 * form with the token's name), in any case. */
static gboolean db_may_have_nickname(CabackRestorePlan *plan, const char *name)
{
    if (plan->planning == NULL || plan->planning->db_nicknames == NULL)
        return TRUE;
    g_autoptr(GHashTable) forms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    add_nickname_forms(forms, name);
    GHashTableIter iter;
    gpointer form;
    g_hash_table_iter_init(&iter, forms);
    while (g_hash_table_iter_next(&iter, &form, NULL))
        if (g_hash_table_contains(plan->planning->db_nicknames, form))
            return TRUE;
    return FALSE;
}

/* @text kept once in @plan->texts, however many entries share it: a text per certificate or key
 * ("friendlyName", why its trust) was a tenth of the memory of planning a file of many (issue
 * 16 §3). */
static const char *plan_text(CabackRestorePlan *plan, const char *text)
{
    return g_string_chunk_insert_const(plan->texts, text);
}

static const char *plan_textf(CabackRestorePlan *plan, const char *format, ...) G_GNUC_PRINTF(2, 3);
static const char *plan_textf(CabackRestorePlan *plan, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    g_autofree char *text = g_strdup_vprintf(format, args);
    va_end(args);
    return plan_text(plan, text);
}

static void plan_note(CabackRestorePlan *plan, const char *format, ...) G_GNUC_PRINTF(2, 3);
static void plan_note(CabackRestorePlan *plan, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    g_ptr_array_add(plan->notes, g_strdup_vprintf(format, args));
    va_end(args);
}

static gboolean same_bytes(GBytes *a, GBytes *b)
{
    return a != NULL && b != NULL && g_bytes_equal(a, b);
}

/* ---- plan ---- */

/* One field of a trust string, in the order certutil -L prints the letters. */
static void trust_field(GString *s, unsigned int flags)
{
    if ((flags & CERTDB_VALID_CA) && !(flags & (CERTDB_TRUSTED_CA | CERTDB_TRUSTED_CLIENT_CA)))
        g_string_append_c(s, 'c');
    if ((flags & CERTDB_TERMINAL_RECORD) && !(flags & CERTDB_TRUSTED))
        g_string_append_c(s, 'p');
    if (flags & CERTDB_TRUSTED_CA)
        g_string_append_c(s, 'C');
    if (flags & CERTDB_TRUSTED_CLIENT_CA)
        g_string_append_c(s, 'T');
    if (flags & CERTDB_TRUSTED)
        g_string_append_c(s, 'P');
    if (flags & CERTDB_USER)
        g_string_append_c(s, 'u');
    if (flags & CERTDB_SEND_WARN)
        g_string_append_c(s, 'w');
    if (flags & CERTDB_INVISIBLE_CA)
        g_string_append_c(s, 'I');
    if (flags & CERTDB_GOVT_APPROVED_CA)
        g_string_append_c(s, 'G');
}

/* Trust flags as certutil -L prints them (NSS does not export its encoder). */
static char *trust_string(const CERTCertTrust *trust)
{
    GString *s = g_string_new(NULL);

    trust_field(s, trust->sslFlags);
    g_string_append_c(s, ',');
    trust_field(s, trust->emailFlags);
    g_string_append_c(s, ',');
    trust_field(s, trust->objectSigningFlags);
    return g_string_free(s, FALSE);
}

/* @flags in the canonical order, or NULL when it is not a trust string. */
static char *canonical_trust(const char *flags)
{
    CERTCertTrust trust;

    if (flags == NULL || CERT_DecodeTrustString(&trust, flags) != SECSuccess)
        return NULL;
    return trust_string(&trust);
}

char *caback_restore_trust_as_certutil(const char *trust, gboolean has_key)
{
    CERTCertTrust flags;

    if (trust == NULL)
        return NULL;
    if (CERT_DecodeTrustString(&flags, trust) != SECSuccess)
        return g_strdup(trust);
    if (has_key) {
        flags.sslFlags |= CERTDB_USER;
        flags.emailFlags |= CERTDB_USER;
        flags.objectSigningFlags |= CERTDB_USER;
    }
    return trust_string(&flags);
}

/* The trust flags of @cert as certutil -L shows them: NSS's shared certificate (as
 * caback_token_find_cert returns it) carries the trust domain's flags, the trust object's on
 * whichever token holds it (for a certificate on another token, the copy NSS keeps in the
 * internal token) with "u" in all three fields when a token has its private key. A certificate
 * NSS built from one token's object (PK11_FindCertFromDERCertItem) carries that token's view
 * instead: an implied "c" for a CA without trust object, "u" in two fields only. */
static char *trust_of(CERTCertificate *cert)
{
    CERTCertTrust trust;

    if (CERT_GetCertTrust(cert, &trust) != SECSuccess)
        return NULL;
    return trust_string(&trust);
}

/* TRUE when a certificate with @nickname exists on the token of @db. */
static gboolean nickname_taken(CabackRestorePlan *plan, CabackDb *db, const char *nickname)
{
    g_autofree char *name = lookup_name(db->slot, nickname);
    if (!db_may_have_nickname(plan, name) || !db_may_have_nickname(plan, nickname))
        return FALSE;
    g_autoptr(CERTCertList) list = PK11_FindCertsFromNickname(name, db);

    return list != NULL && !CERT_LIST_EMPTY(list);
}

static gboolean trust_equal(const char *a, const char *b);

/* TRUE when @flags store anything: "u" is never stored (NSS computes it from the key). */
gboolean caback_restore_stores_trust(const char *flags)
{
    return flags != NULL && !trust_equal(flags, ",,");
}

/* A certificate restored into a token other than the internal one gets its trust flags the way
 * NSS's STAN_ChangeCertTrust gives them: a token that cannot hold NSS trust objects (SoftHSM and
 * most HSMs) makes NSS import a copy of the certificate, under the same nickname, into the
 * internal token and store the trust there. The internal token (softoken's sftkdb_checkConflicts)
 * refuses a certificate whose nickname another certificate with a different subject holds
 * (CKR_ATTRIBUTE_VALUE_INVALID, SEC_ERROR_BAD_DATA). The subject of such a certificate of the
 * internal token named @nickname, or NULL when none is in the way. */
static char *internal_name_clash(CabackRestorePlan *plan, CabackDb *db, CabackRestoreCert *c,
                                 const char *nickname)
{
    if (db == NULL || PK11_IsInternalKeySlot(db->slot) || c->internal_copy ||
        !caback_restore_stores_trust(c->trust) || !db_may_have_nickname(plan, nickname))
        return NULL;
    g_autoptr(PK11SlotInfo) internal = PK11_GetInternalKeySlot();
    g_autofree char *name = caback_nickname_on_token(nickname, PK11_GetTokenName(internal), FALSE);
    g_autoptr(CERTCertList) list = PK11_FindCertsFromNickname(name, db);
    for (CERTCertListNode *node = list != NULL ? CERT_LIST_HEAD(list) : NULL;
         node != NULL && !CERT_LIST_END(node, list); node = CERT_LIST_NEXT(node)) {
        if (node->cert->slot != NULL && !PK11_IsInternalKeySlot(node->cert->slot) &&
            !caback_token_holds_cert(internal, node->cert))
            continue;
        if (!SECITEM_ItemsAreEqual(&node->cert->derSubject, &c->der_subject))
            return g_strdup(node->cert->subjectName);
    }
    return NULL;
}

/* TRUE when a certificate of the file planned before @self has @nickname; *@same_subject says
 * whether the first such certificate has @self's subject. */
static gboolean planned_elsewhere(CabackRestorePlan *plan, CabackRestoreCert *self,
                                  const char *nickname, gboolean *same_subject)
{
    *same_subject = TRUE;
    CabackRestoreCert *o = plan->planning != NULL && nickname != NULL
                               ? g_hash_table_lookup(plan->planning->nicknames, nickname)
                               : NULL;
    if (o == NULL || o == self)
        return FALSE;
    if (!SECITEM_ItemsAreEqual(&o->der_subject, &self->der_subject))
        *same_subject = FALSE;
    return TRUE;
}

/* The CN of @c's subject as NSS reads it, decoding the subject alone (NULL when it has none);
 * caller PORT_Frees it. */
static char *subject_cn(const CabackRestoreCert *c)
{
    g_autoptr(PLArenaPool) arena = PORT_NewArena(DER_DEFAULT_CHUNKSIZE);
    CERTName name;
    SECItem der = c->der_subject;

    memset(&name, 0, sizeof name);
    if (arena == NULL ||
        SEC_QuickDERDecodeItem(arena, &name, SEC_ASN1_GET(CERT_NameTemplate), &der) != SECSuccess)
        return NULL;
    return CERT_GetCommonName(&name);
}

/* The nickname a certificate without friendlyName gets: its subject's CN (the whole subject
 * when it has none), made unique among the database and the other certificates of the file. */
static char *nickname_from_subject(CabackRestorePlan *plan, CabackDb *db, CabackRestoreCert *c)
{
    char *cn = subject_cn(c);
    g_autofree char *base = g_strdup(cn != NULL && *cn != '\0' ? cn : c->subject);
    if (cn != NULL)
        PORT_Free(cn);

    for (guint n = 1;; n++) {
        g_autofree char *candidate = n == 1 ? g_strdup(base) : g_strdup_printf("%s (%u)", base, n);
        gboolean same_subject;
        gboolean in_file = planned_elsewhere(plan, c, candidate, &same_subject);
        if ((!in_file || same_subject) && (db == NULL || !nickname_taken(plan, db, candidate)))
            return g_steal_pointer(&candidate);
    }
}

static void add_replaced(CabackRestorePlan *plan, CabackDb *db, CabackRestoreCert *c,
                         const char *nickname)
{
    (void)plan;
    g_autofree char *name = lookup_name(db->slot, nickname);
    g_autoptr(CERTCertList) list = PK11_FindCertsFromNickname(name, db);

    c->replaced = g_ptr_array_new_with_free_func((GDestroyNotify)replaced_free);
    for (CERTCertListNode *node = list != NULL ? CERT_LIST_HEAD(list) : NULL;
         node != NULL && !CERT_LIST_END(node, list); node = CERT_LIST_NEXT(node)) {
        CERTCertificate *old = node->cert;
        CabackRestoreReplaced *r = g_new0(CabackRestoreReplaced, 1);
        r->nickname = g_strdup(nickname);
        r->subject = g_strdup(old->subjectName);
        r->serial_hex =
            caback_restore_hex_bytes(old->serialNumber.data, old->serialNumber.len, NULL, TRUE);
        r->der = g_bytes_new(old->derCert.data, old->derCert.len);
        r->trust = trust_of(old);
        g_autoptr(SECKEYPrivateKey) key = PK11_FindKeyByAnyCert(old, db);
        if (key != NULL) {
            r->has_key = TRUE;
            g_autoptr(SECItem) id = PK11_GetLowLevelKeyIDForPrivateKey(key);
            if (id != NULL && caback_keyid_from_bytes(id->data, id->len, &r->key_id, NULL)) {
                r->key_id_known = TRUE;
                r->key_kept_in_use = c->id_known && caback_keyid_equal(&r->key_id, &c->id);
            }
        }
        g_ptr_array_add(c->replaced, r);
    }
}

/* TRUE when @a and @b set the same trust. The "u" flag is left out: NSS computes it from the
 * presence of the private key (it is never stored), and may report it on some fields only. */
static gboolean trust_equal(const char *a, const char *b)
{
    CERTCertTrust ta, tb;

    if (CERT_DecodeTrustString(&ta, a != NULL ? a : ",,") != SECSuccess ||
        CERT_DecodeTrustString(&tb, b != NULL ? b : ",,") != SECSuccess)
        return FALSE;
    return (ta.sslFlags & ~CERTDB_USER) == (tb.sslFlags & ~CERTDB_USER) &&
           (ta.emailFlags & ~CERTDB_USER) == (tb.emailFlags & ~CERTDB_USER) &&
           (ta.objectSigningFlags & ~CERTDB_USER) == (tb.objectSigningFlags & ~CERTDB_USER);
}

/* The first "@old (restored N)" that no certificate of the database, no other certificate of
 * the plan and (for another token) no certificate of the internal token holds: the name --rename
 * gives @c. Caller frees. */
static char *free_renamed(CabackRestorePlan *plan, CabackDb *db, CabackRestoreCert *c,
                          const char *old)
{
    gboolean same_subject;

    for (guint n = 1;; n++) {
        g_autofree char *candidate = caback_restore_renamed(old, n);
        if (nickname_taken(plan, db, candidate) ||
            planned_elsewhere(plan, c, candidate, &same_subject))
            continue;
        g_autofree char *clash = internal_name_clash(plan, db, c, candidate);
        if (clash == NULL)
            return g_steal_pointer(&candidate);
    }
}

static void resolve_nickname_conflict(CabackRestorePlan *plan, CabackDb *db,
                                      const CabackRestoreOptions *options, CabackRestoreCert *c)
{
    switch (options != NULL ? options->on_conflict : CABACK_RESTORE_ON_CONFLICT_STOP) {
    case CABACK_RESTORE_ON_CONFLICT_STOP:
        c->action = CABACK_RESTORE_CONFLICT;
        c->note = g_strdup_printf("the database has a different certificate named \"%s\"; "
                                  "use --replace to give the name to the restored one, or "
                                  "--rename to restore it under another name",
                                  c->nickname);
        break;
    case CABACK_RESTORE_ON_CONFLICT_REPLACE:
        c->action = CABACK_RESTORE_REPLACE;
        add_replaced(plan, db, c, c->nickname);
        c->note = g_strdup_printf("takes the name \"%s\" from the certificate(s) the database "
                                  "has under it; their private keys stay in the database",
                                  c->nickname);
        break;
    case CABACK_RESTORE_ON_CONFLICT_RENAME: {
        g_autofree char *old = g_steal_pointer(&c->nickname);
        c->nickname = free_renamed(plan, db, c, old);
        c->action = CABACK_RESTORE_RENAME;
        c->note = g_strdup_printf("the database has a different certificate named \"%s\"; "
                                  "restored as \"%s\"",
                                  old, c->nickname);
        break;
    }
    }
}

/* A certificate for another token whose trust NSS would put beside a copy in the internal token,
 * where a certificate with a different subject holds the nickname (see internal_name_clash): a
 * conflict found now, before any change, or with --rename another name free on both. */
static void check_internal_name(CabackRestorePlan *plan, CabackDb *db,
                                const CabackRestoreOptions *options, CabackRestoreCert *c)
{
    if (c->action == CABACK_RESTORE_CONFLICT)
        return;
    g_autofree char *clash = internal_name_clash(plan, db, c, c->nickname);
    if (clash == NULL)
        return;
    if (options != NULL && options->on_conflict == CABACK_RESTORE_ON_CONFLICT_RENAME) {
        g_autofree char *old = g_steal_pointer(&c->nickname);
        c->nickname = free_renamed(plan, db, c, old);
        c->action = CABACK_RESTORE_RENAME;
        g_free(c->note);
        c->note = g_strdup_printf(
            "NSS keeps the trust of a certificate on token \"%s\" with a copy of it in the "
            "internal token, where a different certificate (%s) is named \"%s\"; restored as "
            "\"%s\"",
            PK11_GetTokenName(db->slot), clash, old, c->nickname);
        return;
    }
    c->action = CABACK_RESTORE_CONFLICT;
    g_free(c->note);
    c->note = g_strdup_printf(
        "NSS keeps the trust flags %s of a certificate on token \"%s\" with a copy of it, under "
        "the same nickname, in the database's internal token; there a different certificate "
        "(subject %s) is named \"%s\", and NSS refuses one nickname for two subjects. Use "
        "--rename to restore it under another name (--replace changes only token \"%s\"), or "
        "rename that certificate of the internal token first",
        c->trust, PK11_GetTokenName(db->slot), clash, c->nickname, PK11_GetTokenName(db->slot));
    g_clear_pointer(&c->replaced, g_ptr_array_unref);
}

/* NSS cannot hold two different certificates with the same issuer and serial number (a CA
 * installed twice with the same name issues them): such a certificate of the database must be
 * one --replace removes, otherwise restoring this one is a conflict. */
static void check_issuer_serial(CabackDb *db, CabackRestoreCert *c)
{
    CERTIssuerAndSN isn = {.derIssuer = c->der_issuer, .serialNumber = c->serial_number};
    g_autoptr(CERTCertificate) clash = CERT_FindCertByIssuerAndSN(CERT_GetDefaultCertDB(), &isn);
    gsize len;
    const guint8 *der = g_bytes_get_data(c->bag->der, &len);

    if (clash == NULL || (clash->derCert.len == len && memcmp(clash->derCert.data, der, len) == 0))
        return;
    for (guint i = 0; c->replaced != NULL && i < c->replaced->len; i++) {
        CabackRestoreReplaced *r = c->replaced->pdata[i];
        if (g_bytes_get_size(r->der) == clash->derCert.len &&
            memcmp(g_bytes_get_data(r->der, NULL), clash->derCert.data, clash->derCert.len) == 0)
            return;
    }
    if (c->action == CABACK_RESTORE_CONFLICT)
        return; /* already refused, for its nickname */
    g_autofree char *nick = usable_nickname(db->slot, clash->nickname);
    c->action = CABACK_RESTORE_CONFLICT;
    g_free(c->note);
    c->note = g_strdup_printf(
        "the database has a different certificate with the same issuer and serial number 0x%s "
        "(nickname \"%s\"), and NSS cannot hold both; neither --rename nor --replace of "
        "another nickname can solve that: remove that certificate first if it is not needed "
        "(certutil -D -n \"%s\"; its key stays)",
        c->serial_hex, nick != NULL ? nick : "(none)", nick != NULL ? nick : "NICKNAME");
}

/* A certificate whose friendlyName has flaws (control characters, bidi overrides, a NUL, an
 * invalid encoding; names.h) and is not in the database yet: a conflict, unless --rename, which
 * restores it under the cleaned name (made unique as --rename makes names). */
static void plan_flawed_name(CabackRestorePlan *plan, CabackDb *db,
                             const CabackRestoreOptions *options, CabackRestoreCert *c)
{
    g_autofree char *flaws = caback_name_flaws_text(c->bag->attrs.friendly_name_flaws);
    const char *shown = c->bag->attrs.friendly_name;

    if (options == NULL || options->on_conflict != CABACK_RESTORE_ON_CONFLICT_RENAME) {
        c->action = CABACK_RESTORE_CONFLICT;
        c->note = g_strdup_printf("its friendlyName \"%s\" holds %s, so it is not used as an NSS "
                                  "nickname; use --rename to restore it as \"%s\"",
                                  shown, flaws, c->nickname);
        return;
    }
    gboolean same_subject;
    if ((db != NULL && nickname_taken(plan, db, c->nickname)) ||
        planned_elsewhere(plan, c, c->nickname, &same_subject)) {
        g_autofree char *base = g_steal_pointer(&c->nickname);
        for (guint n = 1;; n++) {
            g_autofree char *candidate = caback_restore_renamed(base, n);
            if ((db == NULL || !nickname_taken(plan, db, candidate)) &&
                !planned_elsewhere(plan, c, candidate, &same_subject)) {
                c->nickname = g_steal_pointer(&candidate);
                break;
            }
        }
    }
    c->action = CABACK_RESTORE_RENAME;
    c->note = g_strdup_printf("its friendlyName \"%s\" holds %s; restored under the cleaned "
                              "name \"%s\"",
                              shown, flaws, c->nickname);
}

/* The --trust flags given for a certificate named @friendly in the file or @nickname in the
 * plan, or NULL. */
static const char *trust_override(const CabackRestoreOptions *options, const char *friendly,
                                  const char *nickname)
{
    const char *t = NULL;

    if (options == NULL || options->trust == NULL)
        return NULL;
    if (friendly != NULL)
        t = g_hash_table_lookup(options->trust, friendly);
    if (t == NULL && nickname != NULL)
        t = g_hash_table_lookup(options->trust, nickname);
    return t;
}

/* @first_by_der: the first certificate of the file with each DER. */
/* pk12util writes the chain again with each certificate: a certificate the file already had is
 * restored once. TRUE when @c is such a repetition (planned as a skip). */
static gboolean plan_repeated_cert(CabackRestorePlan *plan, CabackPlanIndex *first_by_der,
                                   CabackRestoreCert *c)
{
    gsize len;
    const guint8 *der = g_bytes_get_data(c->bag->der, &len);
    CabackRestoreCert *o = caback_plan_index_first(first_by_der, der, len);

    if (o == NULL || o->index >= c->index)
        return FALSE;
    c->nickname = g_strdup(o->nickname);
    c->nickname_source = plan_textf(plan, "certificate %u of the file", o->index + 1);
    c->trust = g_strdup(o->trust);
    c->trust_source = c->nickname_source;
    c->action = CABACK_RESTORE_SKIP;
    c->duplicate_of = (gint)o->index;
    c->note = g_strdup_printf("the same certificate as certificate %u of the file", o->index + 1);
    return TRUE;
}

/* The nickname @c gets: the one it has in the database (@existing), else its friendlyName (made
 * unique by its subject when another certificate of the file with another subject has it), else
 * its subject's CN. TRUE when the friendlyName is flawed (names.h): the cleaned name is used,
 * and only with --rename (plan_flawed_name). */
static gboolean choose_nickname(CabackRestorePlan *plan, CabackDb *db, CabackRestoreCert *c,
                                CERTCertificate *existing)
{
    const char *friendly = c->bag->attrs.friendly_name;

    if (existing != NULL) {
        /* The token's own name for it: NSS's shared certificate may carry another token's. */
        g_autofree char *stored = caback_token_cert_nickname(db->slot, existing);
        g_autofree char *have =
            usable_nickname(db->slot, stored != NULL ? stored : existing->nickname);
        c->nickname = g_strdup(have != NULL ? have : (friendly != NULL ? friendly : ""));
        c->nickname_source = plan_text(plan, "already in the database");
    } else if (friendly != NULL && c->bag->attrs.friendly_name_flaws != 0) {
        /* Never a nickname as it is (names.h): the cleaned name, with --rename only. */
        c->nickname = g_strdup(c->bag->attrs.friendly_name_clean);
        c->nickname_source = plan_text(plan, "friendlyName, cleaned");
        return TRUE;
    } else if (friendly != NULL && *friendly != '\0') {
        gboolean same_subject;
        if (planned_elsewhere(plan, c, friendly, &same_subject) && !same_subject) {
            c->nickname = nickname_from_subject(plan, db, c);
            c->nickname_source = plan_textf(
                plan,
                "subject CN, made unique (another certificate of the file with a different "
                "subject has friendlyName \"%s\")",
                friendly);
        } else {
            c->nickname = g_strdup(friendly);
            c->nickname_source = plan_text(plan, "friendlyName");
        }
    } else {
        c->nickname = nickname_from_subject(plan, db, c);
        c->nickname_source = plan_text(plan, "subject CN, made unique (no friendlyName)");
    }
    return FALSE;
}

/* Certificate @c is in the database already (@existing): default trust never overrides what
 * the database has; explicit trust (@explicit_trust, from @explicit_source) does. */
static void plan_present_cert(CabackRestorePlan *plan, CabackDb *db, CabackRestoreCert *c,
                              CERTCertificate *existing, const char *explicit_trust,
                              const char *explicit_source)
{
    const char *friendly = c->bag->attrs.friendly_name;
    g_autofree char *old = trust_of(existing);

    if (explicit_trust != NULL && !trust_equal(old, explicit_trust)) {
        c->action = CABACK_RESTORE_TRUST;
        c->old_trust = g_strdup(old != NULL ? old : ",,");
        c->trust = canonical_trust(explicit_trust);
        c->trust_source = plan_text(plan, explicit_source);
        c->note =
            g_strdup_printf("already in the database; its trust changes from %s", c->old_trust);
        return;
    }
    c->action = CABACK_RESTORE_SKIP;
    c->trust = g_strdup(old);
    c->trust_source = plan_text(plan, "as in the database");
    /* On another token NSS names the certificate "TOKEN:nick". */
    const char *bare = PK11_IsInternalKeySlot(db->slot)
                           ? c->nickname
                           : caback_nickname_strip_token(c->nickname, PK11_GetTokenName(db->slot));
    if (friendly != NULL && g_strcmp0(friendly, bare) != 0)
        c->note = g_strdup_printf("already in the database as \"%s\" (the file calls it \"%s\"); "
                                  "left as it is",
                                  c->nickname, friendly);
    else
        c->note = g_strdup("already in the database, identical");
}

/* Into another token: NSS applies one trust to a certificate, kept with its copy in the internal
 * token when that token holds it already. That trust is the certificate's: as for a certificate
 * already present, only explicit flags change it, and the plan says so. */
static void plan_internal_copy(CabackRestorePlan *plan, CabackRestoreCert *c,
                               const char *explicit_trust)
{
    gsize len;
    const guint8 *der = g_bytes_get_data(c->bag->der, &len);
    SECItem item = {siBuffer, (unsigned char *)der, (unsigned int)len};
    g_autoptr(PK11SlotInfo) internal = PK11_GetInternalKeySlot();
    g_autoptr(CERTCertificate) copy =
        db_may_have_der(plan, der, len) ? caback_token_find_cert(internal, &item) : NULL;

    if (copy == NULL)
        return;
    g_autofree char *old = trust_of(copy);
    c->internal_copy = TRUE;
    if (explicit_trust != NULL && !trust_equal(old, explicit_trust)) {
        c->old_trust = g_strdup(old != NULL ? old : ",,");
        g_autofree char *before = c->note;
        c->note = g_strdup_printf("%s%sthe internal token already holds this certificate, where "
                                  "NSS keeps its trust: the trust changes from %s",
                                  before != NULL ? before : "", before != NULL ? "; " : "",
                                  c->old_trust);
    } else {
        g_free(c->trust);
        c->trust = g_strdup(old != NULL ? old : ",,");
        c->trust_source = plan_text(plan, "as the internal token's copy of it has it, where NSS "
                                          "keeps its trust; left as it is");
    }
}

static void plan_cert(CabackRestorePlan *plan, CabackDb *db, const CabackRestoreOptions *options,
                      CabackPlanIndex *first_by_der, CabackRestoreCert *c)
{
    gsize len;
    const guint8 *der = g_bytes_get_data(c->bag->der, &len);
    SECItem item = {siBuffer, (unsigned char *)der, (unsigned int)len};
    const char *friendly = c->bag->attrs.friendly_name;
    const char *explicit_trust = NULL, *explicit_source = NULL;

    if (plan_repeated_cert(plan, first_by_der, c))
        return;
    g_autoptr(CERTCertificate) existing =
        db != NULL && db_may_have_der(plan, der, len)
            ? caback_token_find_cert(db->slot, &item)
            : NULL;
    gboolean flawed = choose_nickname(plan, db, c, existing);

    /* The flags the user or the file asks for, if any. */
    gboolean unauthenticated = options != NULL && options->unauthenticated;
    explicit_trust = trust_override(options, friendly, c->nickname);
    if (explicit_trust != NULL)
        explicit_source = "--trust";
    else if (c->bag->attrs.trust_flags != NULL && !unauthenticated) {
        explicit_trust = c->bag->attrs.trust_flags;
        explicit_source = "Dogtag trust attribute in the file";
    }

    if (existing != NULL) {
        plan_present_cert(plan, db, c, existing, explicit_trust, explicit_source);
        return;
    }

    if (explicit_trust != NULL) {
        c->trust = canonical_trust(explicit_trust);
        c->trust_source = plan_text(plan, explicit_source);
    } else if (unauthenticated) {
        c->trust = g_strdup(",,");
        c->trust_source = plan_text(plan, "none: the file is not authenticated "
                                          "(--allow-unauthenticated); only -t NICKNAME=FLAGS "
                                          "gives trust");
    } else {
        const char *why;
        c->trust = g_strdup(caback_restore_default_trust(c->is_ca, c->self_signed,
                                                         c->key_index >= 0, c->audit_signing,
                                                         &why));
        c->trust_source = plan_text(plan, why);
    }

    c->action = CABACK_RESTORE_ADD;
    if (flawed)
        plan_flawed_name(plan, db, options, c);
    if (db == NULL)
        return;
    if (!PK11_IsInternalKeySlot(db->slot))
        plan_internal_copy(plan, c, explicit_trust);
    if (!flawed && nickname_taken(plan, db, c->nickname))
        resolve_nickname_conflict(plan, db, options, c);
    check_internal_name(plan, db, options, c);
    check_issuer_serial(db, c);
}

/* What the plan says of a key whose certificate is neither in the file nor in the database. */
#define KEY_WITHOUT_CERT                                                                           \
    "a key without certificate: neither the file nor the database has its certificate, so its "  \
    "ID is not one for CS.cfg, whatever its name"

/* The NSS key ID (certutil -K form) of the public value @value, or "?" when unknown. */
static char *id_text(GBytes *value)
{
    CabackKeyId id;

    if (value == NULL || !caback_restore_id_of_public_value(value, &id))
        return g_strdup("?");
    return caback_keyid_to_nss(&id);
}

/* Does the key of bag @k itself (not its certificate, from which its public value was taken)
 * have the public key of certificate @c? Decrypts the key into a session object to find out.
 * *@own receives the key's own public value when NSS shows it. FALSE with @error only for a wrong
 * password; a key that cannot be probed is taken as matching (the import checks it again). */
static gboolean file_key_matches(CabackRestorePlan *plan, CabackRestoreKey *k,
                                 CabackRestoreCert *c, gboolean *matches, GBytes **own,
                                 GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(SECKEYPrivateKey) probe = caback_restore_probe_key(plan, k, &local);

    *matches = TRUE;
    if (probe == NULL) {
        if (g_error_matches(local, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        return TRUE;
    }
    g_autoptr(SECKEYPublicKey) pub = SECKEY_ConvertToPublicKey(probe);
    if (pub != NULL)
        *own = caback_restore_public_value_of(pub);
    if (*own != NULL && c->public_value != NULL) {
        *matches = g_bytes_equal(*own, c->public_value);
        return TRUE;
    }
    g_autoptr(CERTCertificate) cert = caback_restore_cert_decode(c);
    g_autoptr(SECKEYPublicKey) cpub = cert != NULL ? CERT_ExtractPublicKey(cert) : NULL;
    gboolean pairs = FALSE;
    if (cpub != NULL && caback_key_pairs_with(probe, cpub, &pairs, NULL, NULL))
        *matches = pairs;
    return TRUE;
}

/* Is there a certificate for key bag @k (which has none in the file) in @db: one with the key's
 * public value among the certificates named as the key is, or the certificate of @existing (the
 * database's key with the same ID)? */
static gboolean cert_in_db(CabackDb *db, CabackRestoreKey *k, SECKEYPrivateKey *existing)
{
    SECItem id = {siBuffer, k->id.bytes, CABACK_KEYID_LEN};
    if (existing != NULL && caback_token_cert_with_id(db->slot, &id, NULL))
        return TRUE;
    if (k->nickname == NULL || *k->nickname == '\0' || k->public_value == NULL)
        return FALSE;
    g_autofree char *name = lookup_name(db->slot, k->nickname);
    g_autoptr(CERTCertList) list = PK11_FindCertsFromNickname(name, db);
    for (CERTCertListNode *node = list != NULL ? CERT_LIST_HEAD(list) : NULL;
         node != NULL && !CERT_LIST_END(node, list); node = CERT_LIST_NEXT(node)) {
        g_autoptr(SECKEYPublicKey) pub = CERT_ExtractPublicKey(node->cert);
        g_autoptr(GBytes) value = pub != NULL ? caback_restore_public_value_of(pub) : NULL;
        if (same_bytes(value, k->public_value))
            return TRUE;
    }
    return FALSE;
}

/* A certificate whose public key NSS cannot decode (Ed25519... in NSS 3.87) cannot be stored
 * either: refused here, before any change, or skipped with --skip-unsupported. */
static gboolean plan_unsupported_cert(CabackRestorePlan *plan, const CabackRestoreOptions *options,
                                      CabackRestoreCert *c, GError **error)
{
    if (c->public_value != NULL || c->action == CABACK_RESTORE_SKIP)
        return TRUE;
    g_autoptr(CERTCertificate) cert = caback_restore_cert_decode(c);
    char *oid = cert != NULL ? CERT_GetOidString(&cert->subjectPublicKeyInfo.algorithm.algorithm)
                             : NULL;
    const char *dotted = oid != NULL && g_str_has_prefix(oid, "OID.") ? oid + 4 : oid;
    const char *name = NULL, *type = NULL;
    gboolean named = caback_p12_key_algorithm(dotted, &name, &type);
    g_autofree char *problem = g_strdup_printf(
        "its public key algorithm (%s%sOID %s) is not one NSS can hold", named ? name : "",
        named ? ", " : "", dotted != NULL ? dotted : "unknown");
    if (oid != NULL)
        PR_smprintf_free(oid);
    if (options != NULL && options->skip_unsupported) {
        c->action = CABACK_RESTORE_SKIP;
        g_free(c->note);
        c->note = g_strdup_printf("not restored (--skip-unsupported): %s", problem);
        plan_note(plan, "certificate %u \"%s\" is skipped (--skip-unsupported): %s",
                  c->index + 1, c->nickname, problem);
        return TRUE;
    }
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                "%s: certificate %u \"%s\" cannot be restored: %s; nothing was changed "
                "(--skip-unsupported restores the rest without it)",
                plan->path, c->index + 1, c->nickname, problem);
    return FALSE;
}

/* @public_ids: the CKA_IDs of the public key objects on the token (NULL without a database);
 * @keys_by_id: the key bags of the file whose ID is known, by ID. */
/* Key @k has the ID of a key the database holds (@existing): the same key (skip, or store its
 * missing public key object), or a conflict that the plan explains. FALSE with @error only when
 * the file's key cannot be decrypted to compare it. */
static gboolean plan_present_key(CabackRestorePlan *plan, CabackDb *db, GHashTable *public_ids,
                                 const CabackRestoreOptions *options, CabackRestoreKey *k,
                                 CabackRestoreCert *c, SECKEYPrivateKey *existing, GError **error)
{
    /* Same ID: the same key only if it has this key's public half. NSS-made IDs are the SHA-1
     * of the public value, so a mismatch means a token that sets its own IDs. The public values
     * are compared when the token shows the existing key's (RSA always does: cheap, and no
     * private key operation); otherwise a test signature decides. */
    gboolean pairs = FALSE;
    g_autoptr(GError) local = NULL;
    g_autoptr(SECKEYPublicKey) have = caback_token_public_key_of(existing);
    g_autoptr(GBytes) value = have != NULL ? caback_restore_public_value_of(have) : NULL;
    if (value != NULL && k->public_value != NULL) {
        pairs = same_bytes(value, k->public_value);
    } else if (c != NULL) {
        g_autoptr(CERTCertificate) cert = caback_restore_cert_decode(c);
        g_autoptr(SECKEYPublicKey) pub = cert != NULL ? CERT_ExtractPublicKey(cert) : NULL;
        if (pub == NULL || !caback_key_pairs_with(existing, pub, &pairs, db, &local))
            pairs = FALSE;
    }
    /* The key's ID (and so the comparison above) comes from its certificate: the key of the file
     * itself must be that certificate's key too, or "the same key" would not be true. */
    gboolean own_matches = TRUE;
    g_autoptr(GBytes) own = NULL;
    if (pairs && c != NULL && !file_key_matches(plan, k, c, &own_matches, &own, error))
        return FALSE;
    g_autoptr(GBytes) id_bytes = g_bytes_new(k->id.bytes, CABACK_KEYID_LEN);
    g_autofree char *nss_id = caback_keyid_to_nss(&k->id);
    if (!own_matches) {
        g_autofree char *own_id = id_text(own);
        gboolean keep = options != NULL &&
                        options->on_conflict == CABACK_RESTORE_ON_CONFLICT_REPLACE;
        k->action = keep ? CABACK_RESTORE_SKIP : CABACK_RESTORE_CONFLICT;
        k->note = plan_textf(
            plan,
            "the file's key does not match its certificate \"%s\": the key's public key has ID "
            "%s, the certificate's public key has ID %s, and the database already holds the "
            "certificate's key under that ID; %s",
            c->nickname, own_id, nss_id,
            keep ? "the database's key is kept and the file's is not restored (--replace)"
                 : "use --replace to keep the database's key (the file's is then not restored)");
    } else if (pairs && !g_hash_table_contains(public_ids, id_bytes)) {
        /* What a restore stopped between the key and its public key object leaves: without
         * that object certutil -L shows no "u" flag, so the rerun stores it. */
        k->action = CABACK_RESTORE_SKIP;
        k->store_public = TRUE;
        k->note = plan_text(plan, "already in the database, the same key; the public key object "
                                  "stored beside it is missing (a restore was stopped?): stored "
                                  "now");
    } else if (pairs) {
        k->action = CABACK_RESTORE_SKIP;
        k->note = plan_text(plan, "already in the database, the same key");
    } else {
        /* Say which public keys differ: the database key's (by the NSS ID of its public value)
         * and the one the file's key ID was made from. */
        g_autofree char *have_id = id_text(value);
        g_autofree char *differ =
            value != NULL ? g_strdup_printf(" (its public key has ID %s; the file's %s has %s)",
                                            have_id, c != NULL ? "certificate" : "key", nss_id)
                          : g_strdup("");
        k->action = CABACK_RESTORE_CONFLICT;
        k->note = plan_textf(
            plan,
            "the database has a different private key with key ID %s%s%s%s; caback never "
            "deletes a private key: check it with caback listkeys and remove it yourself "
            "(certutil -F -k %s) if it is not needed%s",
            nss_id, differ, local != NULL ? " (the check failed: " : "",
            local != NULL ? local->message : "", nss_id, local != NULL ? ")" : "");
    }
    return TRUE;
}

static gboolean plan_key(CabackRestorePlan *plan, CabackDb *db, GHashTable *public_ids,
                         CabackPlanIndex *keys_by_id, const CabackRestoreOptions *options,
                         CabackRestoreKey *k, GError **error)
{
    CabackRestoreCert *c = k->cert_index >= 0 ? plan->certs->pdata[k->cert_index] : NULL;
    g_autofree char *label = caback_restore_bag_label(&k->bag->attrs);

    if (c != NULL)
        k->nickname = g_strdup(c->nickname);
    else if (k->bag->attrs.friendly_name_flaws != 0)
        /* The key's label: never a name with control or bidi characters (names.h). */
        k->nickname = g_strdup(k->bag->attrs.friendly_name_clean);
    else
        k->nickname = g_strdup(k->bag->attrs.friendly_name);

    if (k->problem != NULL && k->type == nullKey && options != NULL && options->skip_unsupported) {
        k->action = CABACK_RESTORE_SKIP;
        k->note = plan_textf(plan, "not restored (--skip-unsupported): %s", k->problem);
        plan_note(plan, "key %u%s is skipped (--skip-unsupported): %s", k->index + 1, label,
                  k->problem);
        return TRUE;
    }
    if (k->problem != NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s: key %u%s cannot be restored: %s; nothing was changed%s", plan->path,
                    k->index + 1, label, k->problem,
                    k->type == nullKey ? " (--skip-unsupported restores the rest without it)"
                                       : "");
        return FALSE;
    }
    CabackRestoreKey *o = caback_plan_index_first(keys_by_id, k->id.bytes, CABACK_KEYID_LEN);
    if (o != NULL && o->index < k->index) {
        k->action = CABACK_RESTORE_SKIP;
        k->duplicate_of = (gint)o->index;
        k->note = plan_textf(plan, "the same key as key %u of the file", o->index + 1);
        return TRUE;
    }
    k->cert_found = c != NULL;
    if (db == NULL) {
        k->action = CABACK_RESTORE_ADD;
        if (c == NULL)
            k->note = plan_text(plan, KEY_WITHOUT_CERT);
        return TRUE;
    }

    SECItem id = {siBuffer, k->id.bytes, CABACK_KEYID_LEN};
    g_autoptr(SECKEYPrivateKey) existing = PK11_FindKeyByKeyID(db->slot, &id, db);
    if (c == NULL)
        k->cert_found = cert_in_db(db, k, existing);
    if (existing == NULL) {
        k->action = CABACK_RESTORE_ADD;
        if (!k->cert_found)
            k->note = plan_text(plan, KEY_WITHOUT_CERT);
        return TRUE;
    }
    return plan_present_key(plan, db, public_ids, options, k, c, existing, error);
}

gboolean caback_restore_login_internal(CabackDb *db, GError **error)
{
    g_autoptr(PK11SlotInfo) internal = PK11_GetInternalKeySlot();

    if (internal == db->slot || !PK11_NeedLogin(internal) || PK11_IsLoggedIn(internal, db) ||
        PK11_Authenticate(internal, PR_TRUE, db) == SECSuccess)
        return TRUE;
    caback_error_set_nss_code(error, CABACK_ERROR_BAD_PASSWORD, SEC_ERROR_BAD_PASSWORD,
                              "cannot log in to NSS database %s, where the trust flags of the "
                              "certificates on token \"%s\" are kept: the password is wrong or "
                              "missing (give it as internal=... in the -f file); nothing was "
                              "changed",
                              db->dir, db->token_name);
    return FALSE;
}

/* TRUE when @flags (a trust string) makes a certificate a trusted CA in any field: C (for
 * servers) or T (for clients). */
static gboolean trust_gives_ca(const char *flags)
{
    return flags != NULL && (strchr(flags, 'C') != NULL || strchr(flags, 'T') != NULL);
}

/* Weak keys are never trusted silently: a certificate this run would give CA trust to while its
 * key is weak is refused unless --allow-weak-keys is given, and said either way. */
static void check_weak_keys(CabackRestorePlan *plan, const CabackRestoreOptions *options)
{
    gboolean allow = options != NULL && options->allow_weak_keys;

    plan->weak_refusals = 0;
    for (guint i = 0; i < plan->certs->len; i++) {
        CabackRestoreCert *c = plan->certs->pdata[i];
        c->weak_refused = FALSE;
        if (c->weak == CABACK_WEAK_KEY_NONE || c->duplicate_of >= 0 ||
            (c->action != CABACK_RESTORE_ADD && c->action != CABACK_RESTORE_RENAME &&
             c->action != CABACK_RESTORE_REPLACE && c->action != CABACK_RESTORE_TRUST) ||
            !trust_gives_ca(c->trust))
            continue;
        if (allow) {
            plan_note(plan,
                      "certificate \"%s\" gets CA trust %s although its key is weak (%s): "
                      "--allow-weak-keys",
                      c->nickname, c->trust, c->weak_reason);
            continue;
        }
        c->weak_refused = TRUE;
        plan->weak_refusals++;
        plan_note(plan,
                  "certificate \"%s\" would get CA trust %s, but its key is weak (%s): refused; "
                  "give it other trust with --trust \"%s=,,\" or accept the weak key with "
                  "--allow-weak-keys",
                  c->nickname, c->trust, c->weak_reason, c->nickname);
    }
}

/* --trust must name a certificate of the file: a typo would otherwise go unnoticed. FALSE with
 * CABACK_ERROR_USAGE listing the file's nicknames when one does not. */
static gboolean check_trust_names(CabackRestorePlan *plan, const CabackRestoreOptions *options,
                                  GError **error)
{
    if (options == NULL || options->trust == NULL)
        return TRUE;
    GHashTableIter iter;
    gpointer name;
    g_hash_table_iter_init(&iter, options->trust);
    while (g_hash_table_iter_next(&iter, &name, NULL)) {
        gboolean found = FALSE;
        for (guint i = 0; i < plan->certs->len && !found; i++) {
            CabackRestoreCert *c = plan->certs->pdata[i];
            found = g_strcmp0(c->bag->attrs.friendly_name, name) == 0 ||
                    g_strcmp0(c->nickname, name) == 0;
        }
        if (!found) {
            g_autoptr(GString) names = g_string_new(NULL);
            for (guint i = 0; i < plan->certs->len; i++) {
                CabackRestoreCert *c = plan->certs->pdata[i];
                g_string_append_printf(names, "%s\"%s\"", names->len > 0 ? ", " : "",
                                       c->nickname);
            }
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "--trust names \"%s\", but %s has no certificate of that name; "
                        "its certificates are: %s",
                        (const char *)name, plan->path, names->len > 0 ? names->str : "(none)");
            return FALSE;
        }
    }
    return TRUE;
}

/* A key whose certificate is in conflict is held back with it; a key is named as its
 * certificate. */
static void hold_back_keys(CabackRestorePlan *plan)
{
    for (guint i = 0; i < plan->keys->len; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        CabackRestoreCert *c = k->cert_index >= 0 ? plan->certs->pdata[k->cert_index] : NULL;
        if (c != NULL && c->action == CABACK_RESTORE_CONFLICT && k->action == CABACK_RESTORE_ADD)
            k->note = plan_textf(plan,
                                 "would be added with its certificate \"%s\", which is in "
                                 "conflict",
                                 c->nickname);
        if (c != NULL && k->nickname != NULL && g_strcmp0(k->nickname, c->nickname) != 0) {
            g_free(k->nickname);
            k->nickname = g_strdup(c->nickname);
        }
    }
}

/* plan->conflicts and plan->changes, from the actions planned. */
static void count_changes(CabackRestorePlan *plan)
{
    plan->conflicts = plan->changes = 0;
    for (guint i = 0; i < plan->certs->len; i++) {
        CabackRestoreCert *c = plan->certs->pdata[i];
        if (c->action == CABACK_RESTORE_CONFLICT)
            plan->conflicts++;
        else if (c->action != CABACK_RESTORE_SKIP)
            plan->changes++;
    }
    for (guint i = 0; i < plan->keys->len; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        if (k->action == CABACK_RESTORE_CONFLICT)
            plan->conflicts++;
        else if (k->action != CABACK_RESTORE_SKIP || k->store_public)
            plan->changes++;
    }
}

gboolean caback_restore_plan(CabackRestorePlan *plan, CabackDb *db,
                             const CabackRestoreOptions *options, GError **error)
{
    if (db != NULL && !caback_restore_login_internal(db, error))
        return FALSE;
    plan->non_extractable = options != NULL && options->non_extractable;
    if (options != NULL && options->unauthenticated)
        g_ptr_array_add(plan->notes,
                        g_strdup("the file is not authenticated (no MAC, no checked signature; "
                                 "--allow-unauthenticated): no certificate gets trust flags from "
                                 "the file or by its role, only those given with -t "
                                 "NICKNAME=FLAGS"));
    /* Lookups by DER, nickname and key ID instead of scans of the file's bags: planning n
     * certificates is linear in n. */
    g_autoptr(CabackPlanIndex) first_by_der = caback_plan_index_new();
    for (guint i = 0; i < plan->certs->len; i++) {
        CabackRestoreCert *c = plan->certs->pdata[i];
        caback_plan_index_add_bytes(first_by_der, c->bag->der, c);
    }
    caback_restore_planning_free(plan->planning);
    plan->planning = g_new0(struct CabackRestorePlanning, 1);
    plan->planning->nicknames = g_hash_table_new(g_str_hash, g_str_equal);
    if (db != NULL)
        planning_list_db(plan->planning, db);
    for (guint i = 0; i < plan->certs->len; i++) {
        CabackRestoreCert *c = plan->certs->pdata[i];
        plan_cert(plan, db, options, first_by_der, c);
        if (c->nickname != NULL && !g_hash_table_contains(plan->planning->nicknames, c->nickname))
            g_hash_table_insert(plan->planning->nicknames, c->nickname, c);
    }
    g_autoptr(CabackPlanIndex) keys_by_id = caback_plan_index_new();
    for (guint i = 0; i < plan->keys->len; i++) {
        CabackRestoreKey *k = plan->keys->pdata[i];
        if (k->id_known)
            caback_plan_index_add(keys_by_id, k->id.bytes, CABACK_KEYID_LEN, k);
    }
    g_autoptr(GHashTable) public_ids =
        db != NULL ? caback_restore_stored_public_key_ids(db->slot) : NULL;
    for (guint i = 0; i < plan->keys->len; i++)
        if (!plan_key(plan, db, public_ids, keys_by_id, options, plan->keys->pdata[i], error))
            return FALSE;
    for (guint i = 0; i < plan->certs->len; i++)
        if (!plan_unsupported_cert(plan, options, plan->certs->pdata[i], error))
            return FALSE;

    if (!check_trust_names(plan, options, error))
        return FALSE;

    hold_back_keys(plan);
    check_weak_keys(plan, options);

    count_changes(plan);
    for (guint i = 0; i < plan->crls->len; i++)
        plan_note(plan, "CRL %u is not restored (caback restores certificates and keys only)",
                  i + 1);
    return TRUE;
}

static void add_stored_id(SECItem *const *values, gpointer data)
{
    if (values[0] != NULL)
        g_hash_table_add(data, g_bytes_new(values[0]->data, values[0]->len));
}

/* The CKA_IDs of the public key objects stored on @slot, as a set of GBytes: read once per
 * restore, since asking for each key would read them all again each time; read from the
 * objects, since PK11_ListPublicKeysInSlot builds a SECKEYPublicKey of each (about 2 KB apiece
 * while the list lives). */
GHashTable *caback_restore_stored_public_key_ids(PK11SlotInfo *slot)
{
    static const CK_ATTRIBUTE_TYPE id_only[] = {CKA_ID};
    GHashTable *ids =
        g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref, NULL);

    (void)caback_token_each_object(slot, CKO_PUBLIC_KEY, id_only, 1, add_stored_id, ids);
    return ids;
}
