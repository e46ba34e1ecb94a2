/* The keys behind the cloning.<tag>.* entries of a CS.cfg: NSS lookups of the certificate by
 * nickname and of its private key on the selected token, and the comparison with CS.cfg. */
#include "config.h"

#include <caback/clone-ids.h>
#include <caback/error.h>
#include <caback/keyid.h>
#include <caback/nickname.h>
#include <caback/nss-util.h>

#include <secasn1.h>

#include <string.h>

void caback_clone_key_free(CabackCloneKey *key)
{
    if (key == NULL)
        return;
    g_free(key->cert_summary);
    g_free(key->other_certs);
    g_free(key->modulus);
    g_free(key->exponent);
    g_free(key->encoded);
    g_free(key);
}

static char *plain_hex(const guint8 *data, gsize len)
{
    GString *out = g_string_sized_new(2 * len);
    for (gsize i = 0; i < len; i++)
        g_string_append_printf(out, "%02x", data[i]);
    return g_string_free(out, FALSE);
}

static char *format_time(PRTime t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t / PR_USEC_PER_SEC);
    return dt != NULL ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S UTC") : g_strdup("?");
}

/* "serial 0x65, valid 2026-01-01 ... to 2028-01-01 ..." */
static char *cert_summary(CERTCertificate *cert)
{
    PRTime not_before = 0, not_after = 0;
    g_autofree char *serial = plain_hex(cert->serialNumber.data, cert->serialNumber.len);
    g_autofree char *from = NULL, *to = NULL;

    if (CERT_GetCertTimes(cert, &not_before, &not_after) != SECSuccess)
        return g_strdup_printf("serial 0x%s", serial);
    from = format_time(not_before);
    to = format_time(not_after);
    return g_strdup_printf("serial 0x%s, valid %s to %s", serial, from, to);
}

/* How many certificates @certs (those with the nickname, may be NULL) holds, and the summaries
 * of those that are not @cert, into @key. */
static void note_other_certs(CabackCloneKey *key, CERTCertList *certs, CERTCertificate *cert)
{
    if (certs != NULL) {
        g_autoptr(GPtrArray) others = g_ptr_array_new_with_free_func(g_free);
        for (CERTCertListNode *node = CERT_LIST_HEAD(certs); !CERT_LIST_END(node, certs);
             node = CERT_LIST_NEXT(node)) {
            key->n_certs++;
            if (!CERT_CompareCerts(node->cert, cert))
                g_ptr_array_add(others, cert_summary(node->cert));
        }
        if (others->len > 0) {
            g_ptr_array_add(others, NULL);
            key->other_certs = g_strjoinv("; ", (char **)others->pdata);
        }
    }
    key->n_certs = MAX(key->n_certs, 1);
}

/* The public key of @cert in the forms Dogtag writes (modulus and exponent for RSA, else the
 * encoded SubjectPublicKeyInfo), into @key. */
static gboolean read_public_key(CabackCloneKey *key, CERTCertificate *cert, const char *nickname,
                                GError **error)
{
    g_autoptr(SECKEYPublicKey) pub = CERT_ExtractPublicKey(cert);
    if (pub == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "cannot read the public key of certificate \"%s\"", nickname);
        return FALSE;
    }
    if (pub->keyType == rsaKey) {
        key->rsa = TRUE;
        key->modulus = caback_cscfg_unsigned_hex(pub->u.rsa.modulus.data, pub->u.rsa.modulus.len);
        key->exponent = caback_cscfg_unsigned_hex(pub->u.rsa.publicExponent.data,
                                                  pub->u.rsa.publicExponent.len);
        key->encoded = g_strdup("");
        return TRUE;
    }
    /* Dogtag writes publicKey.getEncoded(): the SubjectPublicKeyInfo DER, the same as the
     * certificate's (re-encoded here from NSS's decoded form; DER has one encoding). */
    g_autoptr(SECItem) der = SEC_ASN1EncodeItem(NULL, NULL, &cert->subjectPublicKeyInfo,
                                                SEC_ASN1_GET(CERT_SubjectPublicKeyInfoTemplate));
    if (der == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "cannot encode the public key of certificate \"%s\"", nickname);
        return FALSE;
    }
    key->modulus = g_strdup("");
    key->exponent = g_strdup("");
    key->encoded = caback_cscfg_unsigned_hex(der->data, der->len);
    return TRUE;
}

CabackCloneKey *caback_clone_ids_find_key(CabackDb *db, const char *nickname, GError **error)
{
    gboolean internal = PK11_IsInternalKeySlot(db->slot);
    /* On another token NSS finds certificates by "token:nickname" only. */
    g_autofree char *full = caback_nickname_on_token(nickname, db->token_name, internal);
    g_autoptr(CERTCertList) certs = PK11_FindCertsFromNickname(full, db);
    g_autoptr(CERTCertificate) cert = PK11_FindCertFromNickname(full, db);

    if (cert == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "no certificate with nickname \"%s\" on token \"%s\" of NSS database %s; "
                    "look for the right nickname with: certutil -L -d %s",
                    nickname, db->token_name, db->dir, db->dir);
        return NULL;
    }

    g_autoptr(CabackCloneKey) key = g_new0(CabackCloneKey, 1);
    key->cert_summary = cert_summary(cert);
    note_other_certs(key, certs, cert);

    g_autoptr(SECKEYPrivateKey) priv = PK11_FindPrivateKeyFromCert(db->slot, cert, db);
    if (priv == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "certificate \"%s\" (%s) has no private key on token \"%s\" of NSS database "
                    "%s; restore the key (for example from a PKCS#12 backup) or check the keys "
                    "with: certutil -K -d %s",
                    nickname, key->cert_summary, db->token_name, db->dir, db->dir);
        return NULL;
    }
    g_autoptr(SECItem) id = PK11_GetLowLevelKeyIDForPrivateKey(priv);
    if (id == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_DATABASE,
                             "cannot read the key ID (CKA_ID) of the private key of \"%s\" on "
                             "token \"%s\"",
                             nickname, db->token_name);
        return NULL;
    }
    if (id->len == 0 || !caback_keyid_from_bytes(id->data, id->len, &key->id, NULL)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "the private key of \"%s\" on token \"%s\" has a key ID (CKA_ID) of %u "
                    "bytes; a CS.cfg key ID has 1 to 20",
                    nickname, db->token_name, id->len);
        return NULL;
    }

    if (!read_public_key(key, cert, nickname, error))
        return NULL;
    return g_steal_pointer(&key);
}

const char *caback_clone_status_name(CabackCloneStatus status)
{
    switch (status) {
    case CABACK_CLONE_OK:
        return "OK";
    case CABACK_CLONE_STALE:
        return "STALE";
    case CABACK_CLONE_MISSING:
        return "MISSING";
    }
    return "?";
}

void caback_clone_result_free(CabackCloneResult *result)
{
    if (result == NULL)
        return;
    g_free(result->tag);
    g_free(result->nickname);
    g_free(result->nickname_key);
    g_free(result->old_id);
    g_ptr_array_unref(result->changes);
    g_free(result->reason);
    g_ptr_array_unref(result->notes);
    g_free(result);
}

GPtrArray *caback_clone_ids_audit(CabackDb *db, const CabackCsCfg *cfg, GError **error)
{
    g_autoptr(GPtrArray) results =
        g_ptr_array_new_with_free_func((GDestroyNotify)caback_clone_result_free);
    g_autoptr(GPtrArray) clones = caback_cscfg_clone_entries(cfg);
    gboolean internal = PK11_IsInternalKeySlot(db->slot);

    for (guint i = 0; i < clones->len; i++) {
        const CabackCsCfgClone *clone = clones->pdata[i];
        CabackCloneResult *r = g_new0(CabackCloneResult, 1);
        g_autofree char *id_key = g_strdup_printf("cloning.%s.privkey.id", clone->tag);
        g_autofree char *why = NULL;
        g_autoptr(GError) local = NULL;

        g_ptr_array_add(results, r);
        r->tag = g_strdup(clone->tag);
        r->nickname = g_strdup(clone->nickname);
        r->nickname_key = g_strdup(clone->nickname_key);
        r->old_id = g_strdup(caback_cscfg_get(cfg, id_key));
        r->changes = g_ptr_array_new_with_free_func((GDestroyNotify)caback_cscfg_change_free);
        r->notes = g_ptr_array_new_with_free_func(g_free);
        if (clone->nickname_key != NULL)
            g_ptr_array_add(r->notes, g_strdup_printf("nickname \"%s\" from %s", clone->nickname,
                                                      clone->nickname_key));
        if (!clone->listed && caback_cscfg_has_cloning_list(cfg))
            g_ptr_array_add(r->notes, g_strdup("the tag is not in cloning.list"));

        g_autofree char *name =
            caback_cscfg_clone_lookup_name(clone, db->token_name, internal, &why);
        if (name == NULL) {
            r->status = CABACK_CLONE_MISSING;
            r->reason = g_steal_pointer(&why);
            continue;
        }
        g_autoptr(CabackCloneKey) key = caback_clone_ids_find_key(db, name, &local);
        if (key == NULL) {
            if (!g_error_matches(local, CABACK_ERROR, CABACK_ERROR_NOT_FOUND)) {
                g_propagate_prefixed_error(error, g_steal_pointer(&local), "tag %s: ", clone->tag);
                return NULL;
            }
            r->status = CABACK_CLONE_MISSING;
            r->reason = g_strdup_printf("%s; the nickname is from %s in CS.cfg", local->message,
                                        clone->nickname_key);
            continue;
        }
        r->has_key = TRUE;
        r->key_id = key->id;
        g_autofree char *nss_id = caback_keyid_to_token_hex(&key->id);
        g_autofree char *dogtag_id = caback_keyid_to_token_dogtag(&key->id);
        if (key->n_certs > 1)
            g_ptr_array_add(r->notes,
                            g_strdup_printf("%u certificates have nickname \"%s\"; using the one "
                                            "NSS returns as current (the newest valid): %s; "
                                            "not: %s",
                                            key->n_certs, name, key->cert_summary,
                                            key->other_certs != NULL ? key->other_certs : "-"));
        else
            g_ptr_array_add(r->notes, g_strdup_printf("certificate %s", key->cert_summary));
        g_ptr_array_add(r->notes,
                        g_strdup_printf("key ID %s (certutil -K), %s (CS.cfg)", nss_id, dogtag_id));
        /* The rule is about 20-byte IDs (keyid.h). */
        r->legacy_problem =
            key->id.token_len == 0 && caback_keyid_dogtag_legacy_problem(&key->id);

        CabackCsCfgKeyValues values = {dogtag_id, key->modulus, key->exponent, key->encoded};
        g_ptr_array_unref(r->changes);
        r->changes = caback_cscfg_clone_changes(cfg, clone->tag, &values);
        r->status = r->changes->len > 0 ? CABACK_CLONE_STALE : CABACK_CLONE_OK;
    }
    return g_steal_pointer(&results);
}
