/* Unit tests for the index restore planning looks bags up with (caback/plan-index.h): first item
 * by key in the order added, keys that differ only in length or after a NUL, string keys, the
 * "next usable" cursor, and linear cost on many items. */
#include "config.h"

#include <caback/plan-index.h>

#include <string.h>

typedef struct {
    guint index;
    gboolean taken;
} Item;

static gboolean not_taken(gpointer item, gpointer data)
{
    guint *calls = data;
    if (calls != NULL)
        (*calls)++;
    return !((Item *)item)->taken;
}

static void test_first(void)
{
    g_autoptr(CabackPlanIndex) index = caback_plan_index_new();
    Item items[4] = {{0, FALSE}, {1, FALSE}, {2, FALSE}, {3, FALSE}};

    g_assert_null(caback_plan_index_first(index, "a", 1));
    caback_plan_index_add(index, "ab", 2, &items[0]);
    caback_plan_index_add(index, "a", 1, &items[1]);
    caback_plan_index_add(index, "ab", 2, &items[2]);
    /* Bytes, not C strings: "a\0b" is neither "a" nor "ab". */
    caback_plan_index_add(index, "a\0b", 3, &items[3]);
    g_assert_true(caback_plan_index_first(index, "ab", 2) == &items[0]);
    g_assert_true(caback_plan_index_first(index, "a", 1) == &items[1]);
    g_assert_true(caback_plan_index_first(index, "a\0b", 3) == &items[3]);
    g_assert_null(caback_plan_index_first(index, "b", 1));
    g_assert_cmpuint(caback_plan_index_count(index, "ab", 2), ==, 2);
    g_assert_cmpuint(caback_plan_index_count(index, "zz", 2), ==, 0);

    /* The empty key is a key like another. */
    caback_plan_index_add(index, NULL, 0, &items[2]);
    g_assert_true(caback_plan_index_first(index, "", 0) == &items[2]);

    g_autoptr(GBytes) shared = g_bytes_new("ab", 2);
    caback_plan_index_add_bytes(index, shared, &items[3]); /* same key as "ab": a third item */
    g_assert_cmpuint(caback_plan_index_count(index, "ab", 2), ==, 3);
    g_assert_true(caback_plan_index_first(index, "ab", 2) == &items[0]);
    g_autoptr(GBytes) fresh = g_bytes_new("fresh", 5);
    caback_plan_index_add_bytes(index, fresh, &items[1]);
    g_assert_true(caback_plan_index_first(index, "fresh", 5) == &items[1]);

    caback_plan_index_add_string(index, "nick", &items[3]);
    caback_plan_index_add_string(index, NULL, &items[0]); /* adds nothing */
    g_assert_true(caback_plan_index_first_string(index, "nick") == &items[3]);
    g_assert_null(caback_plan_index_first_string(index, NULL));
    g_assert_null(caback_plan_index_first_string(index, "nic"));
}

static void test_next(void)
{
    g_autoptr(CabackPlanIndex) index = caback_plan_index_new();
    Item items[5];
    for (guint i = 0; i < 5; i++) {
        items[i] = (Item){i, FALSE};
        caback_plan_index_add(index, i == 2 ? "other" : "id", i == 2 ? 5 : 2, &items[i]);
    }
    /* Taking them in turn, as key bags take certificates. */
    guint order[] = {0, 1, 3, 4};
    for (guint n = 0; n < G_N_ELEMENTS(order); n++) {
        Item *it = caback_plan_index_next(index, "id", 2, not_taken, NULL);
        g_assert_nonnull(it);
        g_assert_cmpuint(it->index, ==, order[n]);
        it->taken = TRUE;
    }
    g_assert_null(caback_plan_index_next(index, "id", 2, not_taken, NULL));
    g_assert_null(caback_plan_index_next(index, "none", 4, not_taken, NULL));
    /* An item taken elsewhere (in the middle) is skipped; the first usable one is returned. */
    g_autoptr(CabackPlanIndex) mid = caback_plan_index_new();
    for (guint i = 0; i < 5; i++) {
        items[i] = (Item){i, i == 1};
        caback_plan_index_add(mid, "k", 1, &items[i]);
    }
    Item *first = caback_plan_index_next(mid, "k", 1, not_taken, NULL);
    g_assert_cmpuint(first->index, ==, 0);
    first->taken = TRUE;
    g_assert_cmpuint(((Item *)caback_plan_index_next(mid, "k", 1, not_taken, NULL))->index, ==, 2);
}

/* 100,000 items under one key, taken one by one: each is looked at about twice in all, not
 * n times (the count is the measure; no time is asserted). */
static void test_linear(void)
{
    const guint n = 100000;
    g_autoptr(CabackPlanIndex) index = caback_plan_index_new();
    g_autofree Item *items = g_new0(Item, n);
    for (guint i = 0; i < n; i++) {
        items[i].index = i;
        caback_plan_index_add(index, "same", 4, &items[i]);
        char key[16];
        int len = g_snprintf(key, sizeof key, "k%u", i);
        caback_plan_index_add(index, key, (gsize)len, &items[i]);
    }
    guint calls = 0;
    for (guint i = 0; i < n; i++) {
        Item *it = caback_plan_index_next(index, "same", 4, not_taken, &calls);
        g_assert_nonnull(it);
        g_assert_cmpuint(it->index, ==, i);
        it->taken = TRUE;
    }
    g_assert_null(caback_plan_index_next(index, "same", 4, not_taken, &calls));
    g_assert_cmpuint(calls, <=, 2 * n + 1);
    for (guint i = 0; i < n; i += 997) {
        char key[16];
        int len = g_snprintf(key, sizeof key, "k%u", i);
        g_assert_true(caback_plan_index_first(index, key, (gsize)len) == &items[i]);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/plan-index/first", test_first);
    g_test_add_func("/plan-index/next", test_next);
    g_test_add_func("/plan-index/linear", test_linear);
    return g_test_run();
}
