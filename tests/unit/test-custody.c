/* Unit tests of M-of-N custody (include/caback/custody.h): split and combine with libgfshare,
 * the checks of a set of shares, the text form of a share and its record. */
#include "config.h"

#include <caback/custody.h>
#include <caback/error.h>

#include <nss.h>
#include <pk11pub.h>
#include <string.h>

static const guint8 archive_a[32] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 1, 2, 3};
static const guint8 archive_b[32] = {0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 1, 2, 3};

static CabackSecret *new_secret(void)
{
    g_autoptr(GError) error = NULL;
    CabackSecret *secret = caback_custody_secret_new(&error);
    g_assert_no_error(error);
    g_assert_nonnull(secret);
    g_assert_cmpuint(secret->len, ==, CABACK_CUSTODY_SECRET_LEN);
    return secret;
}

/* A new array holding (borrowed) the shares of @all whose bit is set in @mask. */
static GPtrArray *subset(GPtrArray *all, guint mask)
{
    GPtrArray *some = g_ptr_array_new();
    for (guint i = 0; i < all->len; i++)
        if (mask & (1u << i))
            g_ptr_array_add(some, g_ptr_array_index(all, i));
    return some;
}

static void test_secret_password(void)
{
    g_autoptr(CabackSecret) a = new_secret();
    g_autoptr(CabackSecret) b = new_secret();
    g_assert_true(memcmp(a->data, b->data, a->len) != 0);

    g_autoptr(CabackSecret) pa = caback_custody_password(a);
    g_assert_cmpuint(pa->len, ==, CABACK_CUSTODY_PASSWORD_LEN);
    g_assert_cmpuint(strlen(pa->data), ==, CABACK_CUSTODY_PASSWORD_LEN);
    for (gsize i = 0; i < pa->len; i++)
        g_assert_true(g_ascii_isalnum(pa->data[i]) || pa->data[i] == '-' || pa->data[i] == '_');

    /* known answer: base64url of 00 01 .. 1f */
    char bytes[32];
    for (int i = 0; i < 32; i++)
        bytes[i] = (char)i;
    g_autoptr(CabackSecret) known = caback_secret_new(bytes, sizeof bytes);
    g_autoptr(CabackSecret) pk = caback_custody_password(known);
    g_assert_cmpstr(pk->data, ==, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
}

static void test_split_check(void)
{
    struct {
        guint m, n;
        gboolean ok;
        const char *says;
    } cases[] = {
        {1, 1, TRUE, NULL},        {3, 5, TRUE, NULL},         {255, 255, TRUE, NULL},
        {0, 3, FALSE, "at least 1"}, {4, 3, FALSE, "more shares"}, {2, 256, FALSE, "at most 255"},
        {1, 0, FALSE, "no custodian"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        gboolean ok = caback_custody_split_check(cases[i].m, cases[i].n, &error);
        g_assert_cmpint(ok, ==, cases[i].ok);
        if (!ok) {
            g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
            g_assert_nonnull(strstr(error->message, cases[i].says));
        }
    }
}

/* Every subset of at least M shares of an M-of-N split rebuilds the secret; every smaller one is
 * refused with "k of M shares given", for all 1 <= M <= N <= 6. */
static void test_split_combine_all_subsets(void)
{
    guint combined = 0, refused = 0;
    for (guint n = 1; n <= 6; n++) {
        for (guint m = 1; m <= n; m++) {
            g_autoptr(CabackSecret) secret = new_secret();
            g_autoptr(GError) error = NULL;
            g_autoptr(GPtrArray) shares = caback_custody_split(secret, m, n, archive_a, &error);
            g_assert_no_error(error);
            g_assert_cmpuint(shares->len, ==, n);
            for (guint i = 0; i < n; i++) {
                CabackShare *s = g_ptr_array_index(shares, i);
                g_assert_cmpuint(s->index, ==, i + 1);
                g_assert_cmpuint(s->threshold, ==, m);
                g_assert_cmpuint(s->count, ==, n);
                /* a share alone says nothing of the secret unless M = 1 */
                if (m > 1)
                    g_assert_true(memcmp(s->value->data, secret->data, secret->len) != 0);
            }
            for (guint mask = 1; mask < (1u << n); mask++) {
                g_autoptr(GPtrArray) some = subset(shares, mask);
                g_autoptr(GError) e = NULL;
                g_autoptr(CabackSecret) back = caback_custody_combine(some, archive_a, &e);
                if (some->len >= m) {
                    g_assert_no_error(e);
                    g_assert_cmpmem(back->data, back->len, secret->data, secret->len);
                    combined++;
                } else {
                    g_assert_null(back);
                    g_assert_error(e, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD);
                    g_autofree char *says =
                        g_strdup_printf("%u of %u shares given", some->len, m);
                    g_assert_nonnull(strstr(e->message, says));
                    refused++;
                }
            }
        }
    }
    g_test_message("%u subsets combined, %u refused", combined, refused);
    g_assert_cmpuint(combined, >, 0);
    g_assert_cmpuint(refused, >, 0);
}

/* Fewer than M shares, forced through libgfshare without the count check (as if a wrong M were
 * stated), do not give the secret: the threshold is real, not only a check. */
static void test_fewer_do_not_combine(void)
{
    g_autoptr(CabackSecret) secret = new_secret();
    g_autoptr(GPtrArray) shares = caback_custody_split(secret, 3, 5, archive_a, NULL);
    g_assert_nonnull(shares);
    for (guint mask = 1; mask < 32; mask++) {
        if (__builtin_popcount(mask) != 2)
            continue;
        g_autoptr(GPtrArray) some = subset(shares, mask);
        for (guint i = 0; i < some->len; i++)
            ((CabackShare *)g_ptr_array_index(some, i))->threshold = 2;
        g_autoptr(CabackSecret) back = caback_custody_combine(some, archive_a, NULL);
        g_assert_nonnull(back);
        g_assert_true(memcmp(back->data, secret->data, secret->len) != 0);
        for (guint i = 0; i < some->len; i++)
            ((CabackShare *)g_ptr_array_index(some, i))->threshold = 3;
    }
}

static void set_source(GPtrArray *shares, const char *prefix)
{
    for (guint i = 0; i < shares->len; i++) {
        CabackShare *s = g_ptr_array_index(shares, i);
        g_free(s->source);
        s->source = g_strdup_printf("%s%u.p7m", prefix, s->index);
    }
}

static void expect_refused(GPtrArray *given, const guint8 *archive, const char *says)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackSecret) back = caback_custody_combine(given, archive, &error);
    g_assert_null(back);
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD);
    if (strstr(error->message, says) == NULL)
        g_error("expected \"%s\" in \"%s\"", says, error->message);
}

static void test_shares_check(void)
{
    g_autoptr(CabackSecret) secret = new_secret();
    g_autoptr(GPtrArray) one = caback_custody_split(secret, 2, 3, archive_a, NULL);
    g_autoptr(GPtrArray) other_split = caback_custody_split(secret, 2, 3, archive_a, NULL);
    g_autoptr(GPtrArray) other_archive = caback_custody_split(secret, 2, 3, archive_b, NULL);
    set_source(one, "a");
    set_source(other_split, "s");
    set_source(other_archive, "b");

    g_autoptr(GPtrArray) given = g_ptr_array_new();
    expect_refused(given, archive_a, "no share given");
    g_ptr_array_add(given, g_ptr_array_index(one, 0));
    expect_refused(given, archive_a, "1 of 2 shares given");
    /* the same index twice */
    g_ptr_array_add(given, g_ptr_array_index(one, 0));
    expect_refused(given, archive_a, "share 1 is given twice (a1.p7m and a1.p7m)");
    /* a share of another split of the same archive */
    g_ptr_array_index(given, 1) = g_ptr_array_index(other_split, 1);
    expect_refused(given, archive_a, "share 2 (s2.p7m) belongs to another split");
    /* a share of another archive */
    g_ptr_array_index(given, 1) = g_ptr_array_index(other_archive, 1);
    expect_refused(given, archive_a, "share 2 (b2.p7m) is for another archive");
    /* all shares of another archive, checked against this one */
    g_ptr_array_set_size(given, 0);
    g_ptr_array_add(given, g_ptr_array_index(other_archive, 0));
    g_ptr_array_add(given, g_ptr_array_index(other_archive, 2));
    expect_refused(given, archive_a, "share 1 (b1.p7m) is for another archive");
    /* and they are good for their own */
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackSecret) back = caback_custody_combine(given, archive_b, &error);
    g_assert_no_error(error);
    g_assert_cmpmem(back->data, back->len, secret->data, secret->len);
    /* an index above N (a record altered by hand) */
    CabackShare *s = g_ptr_array_index(other_archive, 2);
    s->index = 4;
    expect_refused(given, archive_b, "damaged");
    s->index = 3;
}

static void test_text_round_trip(void)
{
    g_autoptr(CabackSecret) secret = new_secret();
    g_autoptr(GPtrArray) shares = caback_custody_split(secret, 3, 5, archive_a, NULL);
    g_autoptr(GPtrArray) back = caback_share_array_new();

    for (guint i = 0; i < shares->len; i++) {
        CabackShare *s = g_ptr_array_index(shares, i);
        g_autoptr(CabackSecret) text = caback_share_to_text(s);
        g_assert_true(g_str_has_prefix(text->data, "CBK1-"));
        g_assert_null(strchr(text->data, '\n'));
        g_autoptr(GError) error = NULL;
        /* lower case, spaces instead of dashes and a line end are accepted */
        g_autofree char *typed = g_ascii_strdown(text->data, -1);
        for (char *c = typed + 5; *c != '\0'; c++)
            if (*c == '-')
                *c = ' ';
        g_autofree char *line = g_strconcat("  ", typed, "\r\n", NULL);
        CabackShare *r = caback_share_from_text(line, strlen(line), "typed", &error);
        g_assert_no_error(error);
        g_assert_cmpuint(r->index, ==, s->index);
        g_assert_cmpuint(r->threshold, ==, 3);
        g_assert_cmpuint(r->count, ==, 5);
        g_assert_false(r->archive_sha256_complete);
        g_assert_cmpmem(r->split_id, sizeof r->split_id, s->split_id, sizeof s->split_id);
        g_assert_cmpmem(r->value->data, r->value->len, s->value->data, s->value->len);
        g_assert_cmpstr(r->source, ==, "typed");
        g_ptr_array_add(back, r);
        caback_secret_wipe(typed, strlen(typed));
        caback_secret_wipe(line, strlen(line));
    }
    g_ptr_array_remove_index(back, 0);
    g_ptr_array_remove_index(back, 1);
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackSecret) combined = caback_custody_combine(back, archive_a, &error);
    g_assert_no_error(error);
    g_assert_cmpmem(combined->data, combined->len, secret->data, secret->len);
    /* a text share checks against the archive by its tag */
    expect_refused(back, archive_b, "is for another archive");
}

/* Every single mistyped character of a text share is detected (the checksum or the alphabet),
 * and so are a dropped and an added character. */
static void test_text_mistyped(void)
{
    g_autoptr(CabackSecret) secret = new_secret();
    g_autoptr(GPtrArray) shares = caback_custody_split(secret, 2, 2, archive_a, NULL);
    g_autoptr(CabackSecret) text = caback_share_to_text(g_ptr_array_index(shares, 1));
    g_autofree char *copy = g_strdup(text->data);
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ2345670189";
    guint detected = 0;

    for (gsize i = 5; i < text->len; i++) {
        if (text->data[i] == '-')
            continue;
        for (const char *a = alphabet; *a != '\0'; a++) {
            if (*a == text->data[i])
                continue;
            copy[i] = *a;
            g_autoptr(GError) error = NULL;
            g_autoptr(CabackShare) r = caback_share_from_text(copy, strlen(copy), "s.txt", &error);
            g_assert_null(r);
            g_assert_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD);
            g_assert_nonnull(strstr(error->message, "s.txt is mistyped"));
            detected++;
        }
        copy[i] = text->data[i];
    }
    g_test_message("%u mistyped characters detected", detected);
    /* one character left out, one added */
    g_autoptr(GError) e1 = NULL, e2 = NULL;
    g_autofree char *shorter = g_strndup(text->data, text->len - 1);
    g_assert_null(caback_share_from_text(shorter, strlen(shorter), "s.txt", &e1));
    g_assert_nonnull(strstr(e1->message, "incomplete"));
    g_autofree char *longer = g_strconcat(text->data, "A", NULL);
    g_assert_null(caback_share_from_text(longer, strlen(longer), "s.txt", &e2));
    g_assert_nonnull(strstr(e2->message, "characters"));
    /* not a share at all */
    g_autoptr(GError) e3 = NULL;
    g_assert_null(caback_share_from_text("hello", 5, "s.txt", &e3));
    g_assert_nonnull(strstr(e3->message, "not a caback share"));
    caback_secret_wipe(copy, strlen(copy));
    caback_secret_wipe(shorter, strlen(shorter));
    caback_secret_wipe(longer, strlen(longer));
}

static void test_record(void)
{
    g_autoptr(CabackSecret) secret = new_secret();
    g_autoptr(GPtrArray) shares = caback_custody_split(secret, 2, 3, archive_a, NULL);
    CabackShare *s = g_ptr_array_index(shares, 2);
    memset(s->custodian_sha256, 0xc5, 32);
    s->has_custodian = TRUE;

    g_autoptr(CabackSecret) record = caback_share_record_encode(s);
    g_assert_true(g_str_has_prefix(record->data, "caback share record\nformat: 1\nindex: 3\n"
                                                 "threshold: 2\ncount: 3\narchive-sha256: "
                                                 "a1a2a3a4a5a6a7a8010203"));
    g_assert_nonnull(strstr(record->data, "\ncustodian-sha256: c5c5c5"));
    g_assert_nonnull(strstr(record->data, "\nshare: CBK1-"));

    g_autoptr(GError) error = NULL;
    g_autoptr(CabackShare) r = caback_share_record_decode(record->data, record->len, "r", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(r->index, ==, 3);
    g_assert_true(r->archive_sha256_complete);
    g_assert_cmpmem(r->archive_sha256, 32, archive_a, 32);
    g_assert_true(r->has_custodian);
    g_assert_cmpmem(r->custodian_sha256, 32, s->custodian_sha256, 32);
    g_assert_cmpmem(r->value->data, r->value->len, s->value->data, s->value->len);

    /* strict: every truncation, and changed fields, are refused */
    for (gsize len = 0; len < record->len; len++) {
        g_autoptr(GError) e = NULL;
        g_autoptr(CabackShare) t = caback_share_record_decode(record->data, len, "r", &e);
        g_assert_null(t);
        g_assert_error(e, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD);
    }
    struct {
        const char *from, *to, *says;
    } edits[] = {
        {"index: 3", "index: 2", "does not agree"},
        {"index: 3", "index: 03", "malformed"},
        {"count: 3", "count: 4", "does not agree"},
        {"threshold: 2", "threshold: 2 ", "malformed"},
        {"format: 1", "format: 2", "format 2"},
        {"archive-sha256: a1", "archive-sha256: A1", "malformed"},
        {"archive-sha256: a1", "archive-sha256: b1", "does not agree"},
        {"caback share record", "caback share recorD", "not a caback share record"},
        {"split-id: ", "split-id:  ", "malformed"},
        /* the share line as typed by hand is fine on its own, not in a record */
        {"share: CBK1-", "share: cbk1-", "malformed"},
        {"share: CBK1-", "share: CBK1", "malformed"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(edits); i++) {
        g_autoptr(GString) changed = g_string_new(record->data);
        g_string_replace(changed, edits[i].from, edits[i].to, 1);
        g_autoptr(GError) e = NULL;
        g_autoptr(CabackShare) t = caback_share_record_decode(changed->str, changed->len, "r", &e);
        g_assert_null(t);
        if (strstr(e->message, edits[i].says) == NULL)
            g_error("edit %zu: expected \"%s\" in \"%s\"", i, edits[i].says, e->message);
        caback_secret_wipe(changed->str, changed->len);
    }
    /* trailing text */
    g_autofree char *more = g_strconcat(record->data, "x\n", NULL);
    g_autoptr(GError) e = NULL;
    g_assert_null(caback_share_record_decode(more, strlen(more), "r", &e));
    g_assert_nonnull(strstr(e->message, "after the share line"));
    caback_secret_wipe(more, strlen(more));
}

static void test_file_name(void)
{
    g_autofree char *name = caback_share_file_name("/b/ca.p12", 1, 5);
    g_assert_cmpstr(name, ==, "/b/ca.p12.share-1-of-5.p7m");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (NSS_NoDB_Init(NULL) != SECSuccess)
        g_error("NSS_NoDB_Init failed");
    g_test_add_func("/custody/secret-password", test_secret_password);
    g_test_add_func("/custody/split-check", test_split_check);
    g_test_add_func("/custody/split-combine-all-subsets", test_split_combine_all_subsets);
    g_test_add_func("/custody/fewer-do-not-combine", test_fewer_do_not_combine);
    g_test_add_func("/custody/shares-check", test_shares_check);
    g_test_add_func("/custody/text-round-trip", test_text_round_trip);
    g_test_add_func("/custody/text-mistyped", test_text_mistyped);
    g_test_add_func("/custody/record", test_record);
    g_test_add_func("/custody/file-name", test_file_name);
    int rc = g_test_run();
    if (NSS_Shutdown() != SECSuccess)
        g_error("NSS_Shutdown: a reference was leaked");
    return rc;
}
