/* Unit tests for caback/keys.h on a real NSS database made by certutil: the key list equals
 * certutil -K's, the key behind a nickname is found (and a missing one is reported), and every
 * NSS reference is released (caback_db_close would fail with SEC_ERROR_BUSY otherwise). And the
 * restore's side of the second reader (caback/stored-key-check.h) with the real caback
 * check-stored-keys on that database: thousands of requests, none of them lost or stuck. */
#include "config.h"

#include <caback/db.h>
#include <caback/error.h>
#include <caback/keys.h>
#include <caback/stored-key-check.h>

#include <glib/gstdio.h>
#include <pk11pub.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define CA_NICK "caSigningCert cert-pki-ca"
#define PASSWORD "Unit.Test-pass 2"

typedef struct {
    char *dir;
    char *pass;
    char *certutil_k; /* certutil -K output */
} Fixture;

static gboolean certutil(GPtrArray *args, char **out, GError **error)
{
    int status = 0;

    g_ptr_array_insert(args, 0, g_strdup("certutil"));
    g_ptr_array_add(args, NULL);
    g_autofree char *err = NULL;
    if (!g_spawn_sync(NULL, (char **)args->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, out,
                      &err, &status, error))
        return FALSE;
    if (!g_spawn_check_wait_status(status, error)) {
        g_prefix_error(error, "certutil %s: %s: ", (char *)args->pdata[1], err);
        return FALSE;
    }
    return TRUE;
}

static G_GNUC_NULL_TERMINATED GPtrArray *args_new(const char *first, ...)
{
    GPtrArray *args = g_ptr_array_new_with_free_func(g_free);
    va_list ap;

    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *))
        g_ptr_array_add(args, g_strdup(a));
    va_end(ap);
    return args;
}
#define ARGS(...) args_new(__VA_ARGS__, NULL)

static void fixture_set_up(Fixture *f, gconstpointer data)
{
    (void)data;
    g_autoptr(GError) error = NULL;

    g_autofree char *certutil_path = g_find_program_in_path("certutil");
    if (certutil_path == NULL) {
        g_test_skip("certutil is not installed");
        return;
    }
    f->dir = g_dir_make_tmp("caback-test-keys-XXXXXX", &error);
    g_assert_no_error(error);
    f->pass = g_build_filename(f->dir, "pass", NULL);
    g_assert_true(g_file_set_contents(f->pass, PASSWORD "\n", -1, &error));
    g_autofree char *noise = g_build_filename(f->dir, "noise", NULL);
    guint8 bytes[256];
    for (gsize i = 0; i < sizeof bytes; i++)
        bytes[i] = (guint8)g_random_int();
    g_assert_true(g_file_set_contents(noise, (const char *)bytes, sizeof bytes, &error));
    g_autofree char *spec = g_strdup_printf("sql:%s", f->dir);

    g_autoptr(GPtrArray) a1 = ARGS("-N", "-d", spec, "-f", f->pass);
    g_assert_true(certutil(a1, NULL, &error));
    g_assert_no_error(error);
    g_autoptr(GPtrArray) a2 =
        ARGS("-S", "-x", "-d", spec, "-f", f->pass, "-z", noise, "-n", CA_NICK, "-s",
             "CN=Unit Test CA", "-t", "CTu,Cu,Cu", "-k", "rsa", "-g", "2048", "-m", "7");
    g_assert_true(certutil(a2, NULL, &error));
    g_assert_no_error(error);
    /* A key without certificate. */
    g_autoptr(GPtrArray) a3 =
        ARGS("-G", "-d", spec, "-f", f->pass, "-z", noise, "-k", "ec", "-q", "nistp256");
    g_assert_true(certutil(a3, NULL, &error));
    g_assert_no_error(error);
    g_autoptr(GPtrArray) a4 = ARGS("-K", "-d", spec, "-f", f->pass);
    g_assert_true(certutil(a4, &f->certutil_k, &error));
    g_assert_no_error(error);
}

static void remove_tree(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_unlink(path);
    }
    g_rmdir(dir);
}

static void fixture_tear_down(Fixture *f, gconstpointer data)
{
    (void)data;
    if (f->dir != NULL)
        remove_tree(f->dir);
    g_free(f->dir);
    g_free(f->pass);
    g_free(f->certutil_k);
}

static CabackDb *open_db(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    CabackDbOptions options = {
        .dbdir = f->dir,
        .password = {.file = f->pass, .no_prompt = TRUE},
        .read_only = TRUE,
    };
    CabackDb *db = caback_db_open(&options, &error);
    g_assert_no_error(error);
    g_assert_true(caback_db_login(db, &error));
    g_assert_no_error(error);
    return db;
}

static void close_db(CabackDb *db)
{
    g_autoptr(GError) error = NULL;
    /* FALSE here means a leaked NSS reference. */
    g_assert_true(caback_db_close(db, &error));
    g_assert_no_error(error);
}

/* The ID certutil -K prints for the key named @name ("(orphan)" for a key without
 * certificate); caller frees. */
static char *certutil_id(const Fixture *f, const char *name)
{
    g_auto(GStrv) lines = g_strsplit(f->certutil_k, "\n", -1);
    for (gsize i = 0; lines[i] != NULL; i++) {
        g_autoptr(GMatchInfo) m = NULL;
        g_autoptr(GRegex) re =
            g_regex_new("^<\\s*\\d+>\\s+\\w+\\s+([0-9a-f]{40})\\s+(?:NSS Certificate DB:)?(.*)$",
                        0, 0, NULL);
        if (g_regex_match(re, lines[i], 0, &m)) {
            g_autofree char *nick = g_match_info_fetch(m, 2);
            if (strcmp(nick, name) == 0)
                return g_match_info_fetch(m, 1);
        }
    }
    g_error("certutil -K shows no key named %s:\n%s", name, f->certutil_k);
    return NULL;
}

static void test_list(Fixture *f, gconstpointer data)
{
    (void)data;
    if (f->dir == NULL)
        return;
    CabackDb *db = open_db(f);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) keys = caback_keys_list(db, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(keys->len, ==, 2);

    g_autofree char *ca_id = certutil_id(f, CA_NICK);
    g_autofree char *orphan_id = certutil_id(f, "(orphan)");
    guint seen = 0;
    for (guint i = 0; i < keys->len; i++) {
        const CabackKeyInfo *k = keys->pdata[i];
        g_assert_cmpuint(k->index, ==, i);
        g_assert_true(k->id_valid);
        g_assert_cmpuint(g_bytes_get_size(k->raw_id), ==, 20);
        g_autofree char *nss = caback_keyid_to_nss(&k->id);
        g_autofree char *hex = caback_key_info_nss_id(k);
        g_assert_cmpstr(nss, ==, hex);
        g_autofree char *dogtag = caback_keyid_to_dogtag(&k->id);
        g_autofree char *info_dogtag = caback_key_info_dogtag_id(k);
        g_assert_cmpstr(dogtag, ==, info_dogtag);
        if (k->orphan) {
            g_assert_cmpstr(hex, ==, orphan_id);
            g_assert_null(k->nickname);
            g_assert_cmpstr(k->type, ==, "ec");
            g_assert_cmpuint(k->size_bits, ==, 256);
            seen |= 1;
        } else {
            g_assert_cmpstr(hex, ==, ca_id);
            g_assert_cmpstr(k->nickname, ==, CA_NICK);
            g_assert_cmpstr(k->type, ==, "rsa");
            g_assert_cmpuint(k->size_bits, ==, 2048);
            seen |= 2;
        }
    }
    g_assert_cmpuint(seen, ==, 3);
    g_clear_pointer(&keys, g_ptr_array_unref);
    close_db(db);
}

static void test_find_by_nickname(Fixture *f, gconstpointer data)
{
    (void)data;
    if (f->dir == NULL)
        return;
    CabackDb *db = open_db(f);
    g_autoptr(GError) error = NULL;
    g_autofree char *ca_id = certutil_id(f, CA_NICK);

    CabackKeyInfo *info = caback_keys_find_by_nickname(db, CA_NICK, &error);
    g_assert_no_error(error);
    g_assert_nonnull(info);
    g_autofree char *hex = caback_key_info_nss_id(info);
    g_assert_cmpstr(hex, ==, ca_id);
    g_assert_cmpstr(info->nickname, ==, CA_NICK);
    g_assert_false(info->orphan);
    CabackKeyId want;
    g_assert_true(caback_keyid_parse(ca_id, &want, NULL));
    g_assert_true(caback_keyid_equal(&info->id, &want));
    caback_key_info_free(info);

    /* The token-qualified form names the same certificate. */
    info = caback_keys_find_by_nickname(db, "NSS Certificate DB:" CA_NICK, &error);
    g_assert_no_error(error);
    g_autofree char *hex2 = caback_key_info_nss_id(info);
    g_assert_cmpstr(hex2, ==, ca_id);
    caback_key_info_free(info);

    /* The key and certificate references are the caller's to release. */
    CERTCertificate *cert = NULL;
    SECKEYPrivateKey *key = caback_keys_find_private_key(db, CA_NICK, &cert, &error);
    g_assert_no_error(error);
    g_assert_nonnull(key);
    g_assert_nonnull(cert);
    SECKEY_DestroyPrivateKey(key);
    CERT_DestroyCertificate(cert);

    info = caback_keys_find_by_nickname(db, "ocspSigningCert cert-pki-ca", &error);
    g_assert_null(info);
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, "\"ocspSigningCert cert-pki-ca\""));
    g_assert_nonnull(strstr(error->message, f->dir));

    close_db(db);
}

/* A restore hands the second reader one request per key it stores and waits for the answers
 * only when every key is stored. The reader answers each request as it reads it: a restore that
 * did not read answers while it sent requests filled the answer pipe (64 KiB, about 6,000
 * answers), and both processes then waited for each other for ever. Every request here is sent
 * before the first answer is asked for; most name a key that is not there, whose longer answer
 * fills the pipe sooner, and every 500th the CA key. */
#define CHECKER_REQUESTS 5000

static void test_checker_many_requests(Fixture *f, gconstpointer data)
{
    (void)data;
    const char *exe = g_getenv("CABACK");
    if (f->dir == NULL)
        return;
    if (exe == NULL) {
        g_test_skip("CABACK (the caback program the tests run) is not set");
        return;
    }
    /* As a restore does: a reader that dies must not kill this process. A deadlock makes the
     * test fail (SIGALRM) rather than hang make check. */
    signal(SIGPIPE, SIG_IGN);
    alarm(600);
    CabackDb *db = open_db(f);
    g_autoptr(GError) error = NULL;
    g_autofree char *ca_hex = certutil_id(f, CA_NICK);
    CabackKeyId ca_id, missing = {0};
    g_assert_true(caback_keyid_parse(ca_hex, &ca_id, NULL));
    missing.bytes[CABACK_KEYID_LEN - 1] = 0x5a;
    CERTCertificate *cert = PK11_FindCertFromNickname(CA_NICK, db);
    g_assert_nonnull(cert);
    g_autoptr(GBytes) der = g_bytes_new(cert->derCert.data, cert->derCert.len);
    CERT_DestroyCertificate(cert);

    CabackStoredKeyChecker *checker = caback_stored_key_checker_start(exe, db, &error);
    g_assert_no_error(error);
    for (guint t = 1; t <= CHECKER_REQUESTS; t++)
        caback_stored_key_checker_submit(checker, t, t % 500 == 0 ? &ca_id : &missing, der);
    for (guint t = 1; t <= CHECKER_REQUESTS; t++) {
        g_autofree char *message = NULL;
        CabackStoredKeyVerdict v = caback_stored_key_checker_wait(checker, t, &message);
        if (t % 500 == 0) {
            g_assert_cmpint(v, ==, CABACK_STORED_KEY_PAIRS);
        } else {
            g_assert_cmpint(v, ==, CABACK_STORED_KEY_FAILED);
            g_assert_nonnull(strstr(message, "NSS finds no private key with ID "));
        }
    }
    g_assert_null(caback_stored_key_checker_problem(checker));
    caback_stored_key_checker_free(checker);
    alarm(0);
    close_db(db);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/keys/list", Fixture, NULL, fixture_set_up, test_list, fixture_tear_down);
    g_test_add("/keys/find-by-nickname", Fixture, NULL, fixture_set_up, test_find_by_nickname,
               fixture_tear_down);
    g_test_add("/stored-key-check/many-requests", Fixture, NULL, fixture_set_up,
               test_checker_many_requests, fixture_tear_down);
    return g_test_run();
}
