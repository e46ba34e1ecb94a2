/* Unit tests of caback_verify_compare: the comparison of a drill's report with the inventory of a
 * live database (plain data, no NSS). */
#include "config.h"

#include <caback/verify.h>

#include <string.h>

static GBytes *bytes(const char *text)
{
    return g_bytes_new(text, strlen(text));
}

/* A certificate of the database: with @key (an ID) when not NULL. */
static void db_cert(CabackVerifyInventory *inv, const char *nick, const char *der, const char *key,
                    gboolean extractable)
{
    CabackVerifyDbCert *c = g_new0(CabackVerifyDbCert, 1);

    c->nickname = g_strdup(nick);
    c->subject = g_strdup_printf("CN=%s", nick);
    c->serial_hex = g_strdup("0A");
    c->der = bytes(der);
    if (key != NULL) {
        c->has_key = TRUE;
        c->ckaid = bytes(key);
        c->id_known = caback_keyid_from_bytes((const guint8 *)key, strlen(key), &c->id, NULL);
        c->key_id = bytes(key);
        c->extractable = extractable;
        g_ptr_array_add(inv->all_keys, bytes(key));
    }
    g_ptr_array_add(inv->certs, c);
    g_ptr_array_add(inv->all_certs, bytes(der));
}

static void file_key(CabackVerifyReport *r, const char *nick, const char *key)
{
    CabackVerifyKey *k = g_new0(CabackVerifyKey, 1);

    k->nickname = g_strdup(nick);
    k->id_known = caback_keyid_from_bytes((const guint8 *)key, strlen(key), &k->id, NULL);
    k->key_id = bytes(key);
    k->signs = TRUE;
    g_ptr_array_add(r->keys, k);
}

static void file_cert(CabackVerifyReport *r, const char *nick, const char *der)
{
    CabackVerifyCert *c = g_new0(CabackVerifyCert, 1);

    c->nickname = g_strdup(nick);
    c->subject = g_strdup_printf("CN=%s", nick);
    c->serial_hex = g_strdup("0B");
    c->der = bytes(der);
    c->chain_ok = TRUE;
    g_ptr_array_add(r->certs, c);
}

static CabackVerifyReport *good_report(void)
{
    CabackVerifyReport *r = caback_verify_report_new("backup.p12");

    r->restorable = TRUE;
    r->chain_ok = TRUE;
    file_key(r, "caSigning", "kCA");
    file_cert(r, "caSigning", "certCA");
    file_key(r, "subsystem", "kSub");
    file_cert(r, "subsystem", "certSub");
    return r;
}

static CabackVerifyInventory *good_inventory(void)
{
    CabackVerifyInventory *inv = caback_verify_inventory_new("/db", "NSS Certificate DB");

    db_cert(inv, "caSigning", "certCA", "kCA", TRUE);
    db_cert(inv, "subsystem", "certSub", "kSub", TRUE);
    return inv;
}

static gboolean has_problem(const CabackVerifyReport *r, const char *text)
{
    for (guint i = 0; i < r->problems->len; i++)
        if (strstr(r->problems->pdata[i], text) != NULL)
            return TRUE;
    return FALSE;
}

static void test_complete(void)
{
    g_autoptr(CabackVerifyReport) r = good_report();
    g_autoptr(CabackVerifyInventory) inv = good_inventory();

    caback_verify_compare(r, inv);
    g_assert_true(r->compared);
    g_assert_cmpstr(r->database, ==, "/db");
    g_assert_cmpuint(r->missing_from_backup->len, ==, 0);
    g_assert_cmpuint(r->not_in_database->len, ==, 0);
    g_assert_cmpuint(r->problems->len, ==, 0);
    g_assert_true(r->restorable);
}

/* A certificate and key added (or re-keyed) after the backup make it stale, naming both. */
static void test_stale(void)
{
    g_autoptr(CabackVerifyReport) r = good_report();
    g_autoptr(CabackVerifyInventory) inv = good_inventory();

    db_cert(inv, "ocspSigning", "certOCSP", "kOCSP", TRUE);
    caback_verify_compare(r, inv);
    g_assert_cmpuint(r->missing_from_backup->len, ==, 2);
    const CabackVerifyItem *cert = r->missing_from_backup->pdata[0];
    const CabackVerifyItem *key = r->missing_from_backup->pdata[1];
    g_assert_cmpstr(cert->kind, ==, "certificate");
    g_assert_cmpstr(cert->nickname, ==, "ocspSigning");
    g_assert_cmpstr(key->kind, ==, "key");
    g_autofree char *id = caback_verify_key_id_text(key->id_known, &key->id, key->ckaid);
    g_assert_cmpstr(id, ==, "6b4f435350"); /* "kOCSP", the ID as its token holds it */
    g_assert_false(r->restorable);
    g_assert_true(has_problem(r, "the backup is stale"));
    g_assert_true(has_problem(r, "the key of \"ocspSigning\" (key ID 6b4f435350)"));
    g_assert_true(has_problem(r, "certificate \"ocspSigning\" (serial 0x0A)"));
}

/* A key shared by two certificates (a renewal that kept the key) is listed once. */
static void test_shared_key_listed_once(void)
{
    g_autoptr(CabackVerifyReport) r = good_report();
    g_autoptr(CabackVerifyInventory) inv = good_inventory();

    db_cert(inv, "audit", "certAudit1", "kAudit", TRUE);
    db_cert(inv, "audit", "certAudit2", "kAudit", TRUE);
    caback_verify_compare(r, inv);
    guint keys = 0, certs = 0;
    for (guint i = 0; i < r->missing_from_backup->len; i++) {
        const CabackVerifyItem *m = r->missing_from_backup->pdata[i];
        keys += strcmp(m->kind, "key") == 0;
        certs += strcmp(m->kind, "certificate") == 0;
    }
    g_assert_cmpuint(keys, ==, 1);
    g_assert_cmpuint(certs, ==, 2);
}

/* A key the token will not let out cannot be in any file: a note, not a missing key. */
static void test_not_extractable(void)
{
    g_autoptr(CabackVerifyReport) r = good_report();
    g_autoptr(CabackVerifyInventory) inv = good_inventory();

    db_cert(inv, "hsmKey", "certHSM", "kHSM", FALSE);
    file_cert(r, "hsmKey", "certHSM");
    caback_verify_compare(r, inv);
    g_assert_cmpuint(r->missing_from_backup->len, ==, 0);
    g_assert_true(r->restorable);
    gboolean noted = FALSE;
    for (guint i = 0; i < r->notes->len; i++)
        noted = noted || strstr(r->notes->pdata[i], "not extractable") != NULL;
    g_assert_true(noted);
}

/* What the file holds that the database lost (the old certificate of a re-keyed nickname) is
 * listed, but the backup stays restorable; a key still in the database without certificate (an
 * orphan, known only by its ID) is not listed. */
static void test_not_in_database(void)
{
    g_autoptr(CabackVerifyReport) r = good_report();
    g_autoptr(CabackVerifyInventory) inv = good_inventory();

    file_key(r, "oldSub", "kOld");
    file_cert(r, "oldSub", "certOld");
    file_key(r, "orphan", "kOrphan");
    g_ptr_array_add(inv->all_keys, bytes("kOrphan"));
    caback_verify_compare(r, inv);
    g_assert_cmpuint(r->missing_from_backup->len, ==, 0);
    g_assert_cmpuint(r->not_in_database->len, ==, 2);
    const CabackVerifyItem *key = r->not_in_database->pdata[0];
    const CabackVerifyItem *cert = r->not_in_database->pdata[1];
    g_assert_cmpstr(key->kind, ==, "key");
    g_assert_cmpstr(key->nickname, ==, "oldSub");
    g_assert_cmpstr(cert->kind, ==, "certificate");
    g_assert_cmpstr(cert->serial_hex, ==, "0B");
    g_assert_true(r->restorable);
    g_assert_cmpuint(r->problems->len, ==, 0);
}

/* A key of the database whose CKA_ID is no key ID (an HSM's own, over 20 bytes) is named by that
 * CKA_ID in hex; one of 1 to 20 bytes by its own bytes, not zero-extended. */
static void test_token_ids_named_as_held(void)
{
    g_autoptr(CabackVerifyReport) r = good_report();
    g_autoptr(CabackVerifyInventory) inv = good_inventory();

    db_cert(inv, "hsmLong", "certLong", "0123456789abcdefghijk", TRUE);
    db_cert(inv, "hsmShort", "certShort", "\x01", TRUE);
    caback_verify_compare(r, inv);
    g_assert_cmpuint(r->missing_from_backup->len, ==, 4);
    const CabackVerifyItem *longer = r->missing_from_backup->pdata[1];
    const CabackVerifyItem *shorter = r->missing_from_backup->pdata[3];
    g_assert_false(longer->id_known);
    g_autofree char *a = caback_verify_key_id_text(longer->id_known, &longer->id, longer->ckaid);
    g_assert_cmpstr(a, ==, "303132333435363738396162636465666768696a6b");
    g_assert_true(shorter->id_known);
    g_autofree char *b = caback_verify_key_id_text(shorter->id_known, &shorter->id, shorter->ckaid);
    g_assert_cmpstr(b, ==, "01");
    g_assert_true(has_problem(r, "the key of \"hsmLong\" (key ID 3031323334353637383961626364"));
    g_assert_true(has_problem(r, "the key of \"hsmShort\" (key ID 01)"));
    g_autofree char *none = caback_verify_key_id_text(FALSE, &shorter->id, NULL);
    g_assert_null(none);
}

/* Notes of the inventory (orphan keys, incomplete chains) reach the report. */
static void test_inventory_notes(void)
{
    g_autoptr(CabackVerifyReport) r = good_report();
    g_autoptr(CabackVerifyInventory) inv = good_inventory();

    g_ptr_array_add(inv->notes, g_strdup("1 private key has no certificate"));
    caback_verify_compare(r, inv);
    g_assert_cmpuint(r->notes->len, ==, 1);
    g_assert_cmpstr(r->notes->pdata[0], ==, "1 private key has no certificate");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/verify/compare/complete", test_complete);
    g_test_add_func("/verify/compare/stale", test_stale);
    g_test_add_func("/verify/compare/shared-key-listed-once", test_shared_key_listed_once);
    g_test_add_func("/verify/compare/not-extractable", test_not_extractable);
    g_test_add_func("/verify/compare/not-in-database", test_not_in_database);
    g_test_add_func("/verify/compare/inventory-notes", test_inventory_notes);
    g_test_add_func("/verify/compare/token-ids-named-as-held", test_token_ids_named_as_held);
    return g_test_run();
}
