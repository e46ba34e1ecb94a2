/* The run log's backup records and the judgement of which backup is newest
 * (include/caback/freshness.h). */
#include "config.h"

#include <caback/freshness.h>

#include <string.h>

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SHA_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static char *line(const char *time, const char *verb, const char *db, const char *file,
                  const char *sha, const char *id, const char *result)
{
    return g_strdup_printf(
        "{\"time\":\"%s\",\"user\":\"root\",\"verb\":\"%s\",\"command\":\"caback backup -o "
        "\\\"file\\\":\\\"/evil\\\"\",\"database\":\"%s\",\"token\":null,\"file\":\"%s\","
        "\"sha256\":\"%s\",\"keys\":[{\"nickname\":\"ca\",\"nss_id\":\"%s\",\"dogtag_id\":\"x\"}],"
        "\"result\":\"%s\",\"warnings\":[],\"error\":null}\n",
        time, verb, db, file, sha, id, result);
}

static GPtrArray *records_of(const char *const *lines)
{
    g_autofree char *all = g_strjoinv("", (char **)lines);
    return caback_backup_records_parse(all, strlen(all));
}

static void test_parse(void)
{
    g_autofree char *a = line("2026-01-01T00:00:00Z", "backup", "/db\\\\one", "/b/a.p12", SHA_A,
                              "01AB", "OK");
    g_autofree char *failed = line("2026-01-02T00:00:00Z", "backup", "/db", "/b/x.p12", SHA_B,
                                   "01ab", "ERROR");
    g_autofree char *restore = line("2026-01-03T00:00:00Z", "restore", "/db", "/b/a.p12", SHA_A,
                                    "01ab", "OK");
    g_autofree char *bad_time = line("yesterday", "backup", "/db", "/b/y.p12", SHA_B, "01", "OK");
    g_autofree char *bad_sha = line("2026-01-02T00:00:00Z", "backup", "/db", "/b/z.p12", "abc",
                                    "01", "OK");
    const char *const lines[] = {a, failed, restore, "not json\n", bad_time, bad_sha, NULL};
    g_autoptr(GPtrArray) records = records_of(lines);

    g_assert_cmpuint(records->len, ==, 1);
    const CabackBackupRecord *r = records->pdata[0];
    g_assert_cmpstr(r->time, ==, "2026-01-01T00:00:00Z");
    g_assert_cmpstr(r->database, ==, "/db\\one");
    /* The top-level "file", not the one quoted inside the command. */
    g_assert_cmpstr(r->file, ==, "/b/a.p12");
    g_assert_cmpstr(r->sha256, ==, SHA_A);
    g_assert_cmpuint(r->key_ids->len, ==, 1);
    g_autofree char *id = caback_keyid_to_token_hex(&g_array_index(r->key_ids, CabackKeyId, 0));
    g_assert_cmpstr(id, ==, "01ab");
}

static void test_newer_same_database(void)
{
    g_autofree char *a = line("2026-01-01T00:00:00Z", "backup", "/db", "/b/a.p12", SHA_A, "01", "OK");
    g_autofree char *b = line("2026-02-01T00:00:00Z", "backup", "/db", "/b/b.p12", SHA_B, "02", "OK");
    g_autofree char *c = line("2026-03-01T00:00:00Z", "backup", "/other", "/b/c.p12", SHA_C, "01", "OK");
    const char *const lines[] = {a, b, c, NULL};
    g_autoptr(GPtrArray) records = records_of(lines);

    /* A's record names its database: B is newer, C (another database) does not count even
     * though it shares a key. */
    CabackFreshness f = caback_freshness_judge(records, SHA_A, NULL, NULL);
    g_assert_nonnull(f.self);
    g_assert_cmpstr(f.self->file, ==, "/b/a.p12");
    g_assert_nonnull(f.newer);
    g_assert_cmpstr(f.newer->file, ==, "/b/b.p12");
    /* The newest is not older than itself. */
    f = caback_freshness_judge(records, SHA_B, NULL, NULL);
    g_assert_null(f.newer);
    /* A signing time after B's record: nothing is newer. */
    f = caback_freshness_judge(records, SHA_A, NULL, "2026-02-15T00:00:00Z");
    g_assert_null(f.newer);
    /* The same second is not newer. */
    f = caback_freshness_judge(records, SHA_A, NULL, "2026-02-01T00:00:00Z");
    g_assert_null(f.newer);
}

static void test_unrecorded_by_keys(void)
{
    g_autofree char *b = line("2026-02-01T00:00:00Z", "backup", "/db", "/b/b.p12", SHA_B, "0A0B", "OK");
    g_autofree char *c = line("2026-03-01T00:00:00Z", "backup", "/x", "/b/c.p12", SHA_C, "ff", "OK");
    const char *const lines[] = {b, c, NULL};
    g_autoptr(GPtrArray) records = records_of(lines);
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(CabackKeyId));
    g_autoptr(GArray) other_ids = g_array_new(FALSE, FALSE, sizeof(CabackKeyId));
    const guint8 id_bytes[] = {0x0a, 0x0b}, other_bytes[] = {0x12, 0x34};
    CabackKeyId id;
    g_assert_true(caback_keyid_from_bytes(id_bytes, sizeof id_bytes, &id, NULL));
    g_array_append_val(ids, id);
    g_assert_true(caback_keyid_from_bytes(other_bytes, sizeof other_bytes, &id, NULL));
    g_array_append_val(other_ids, id);

    CabackFreshness f = caback_freshness_judge(records, SHA_A, ids, "2026-01-01T00:00:00Z");
    g_assert_null(f.self);
    g_assert_nonnull(f.newer);
    g_assert_cmpstr(f.newer->file, ==, "/b/b.p12");
    f = caback_freshness_judge(records, SHA_A, other_ids, "2026-01-01T00:00:00Z");
    g_assert_null(f.newer);
    /* No date at all: nothing can be called newer. */
    f = caback_freshness_judge(records, SHA_A, ids, NULL);
    g_assert_null(f.newer);
}

/* The file's keys are looked up, not compared with each record's one by one: a file of many
 * keys finds the record that shares its last key, and one whose ID differs only in its length
 * (the same bytes, zero-extended) is not the same key. */
static void test_unrecorded_many_keys(void)
{
    g_autofree char *b = line("2026-02-01T00:00:00Z", "backup", "/x", "/b/b.p12", SHA_B,
                              "00000000000000000000000000000000000061a8", "OK");
    g_autofree char *c = line("2026-03-01T00:00:00Z", "backup", "/x", "/b/c.p12", SHA_C, "61a8",
                              "OK");
    const char *const lines[] = {b, c, NULL};
    g_autoptr(GPtrArray) records = records_of(lines);
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(CabackKeyId));
    for (guint i = 1; i <= 25000; i++) {
        guint8 bytes[20] = {0};
        bytes[18] = (guint8)(i >> 8);
        bytes[19] = (guint8)i;
        CabackKeyId id;
        g_assert_true(caback_keyid_from_bytes(bytes, sizeof bytes, &id, NULL));
        g_array_append_val(ids, id);
    }
    /* 25000 is 0x61a8: record b names it with 20 bytes, record c with 2. */
    CabackFreshness f = caback_freshness_judge(records, SHA_A, ids, "2026-01-01T00:00:00Z");
    g_assert_nonnull(f.newer);
    g_assert_cmpstr(f.newer->file, ==, "/b/b.p12");
    g_array_set_size(ids, 24999);
    f = caback_freshness_judge(records, SHA_A, ids, "2026-01-01T00:00:00Z");
    g_assert_null(f.newer);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/freshness/parse", test_parse);
    g_test_add_func("/freshness/newer-same-database", test_newer_same_database);
    g_test_add_func("/freshness/unrecorded-by-keys", test_unrecorded_by_keys);
    g_test_add_func("/freshness/unrecorded-many-keys", test_unrecorded_many_keys);
    return g_test_run();
}
