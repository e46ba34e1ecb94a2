/* Items by byte-string key, in the order they were added (see caback/plan-index.h). */
#include "config.h"

#include <caback/plan-index.h>

#include <string.h>

typedef struct {
    GPtrArray *items; /* borrowed items, in the order they were added */
    guint cursor;     /* caback_plan_index_next: items before it are unusable for good */
} Bucket;

struct CabackPlanIndex {
    GHashTable *buckets; /* GBytes key -> Bucket* */
};

static void bucket_free(gpointer p)
{
    Bucket *b = p;
    g_ptr_array_unref(b->items);
    g_free(b);
}

CabackPlanIndex *caback_plan_index_new(void)
{
    CabackPlanIndex *index = g_new0(CabackPlanIndex, 1);
    index->buckets = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
                                           (GDestroyNotify)g_bytes_unref, bucket_free);
    return index;
}

void caback_plan_index_free(CabackPlanIndex *index)
{
    if (index == NULL)
        return;
    g_hash_table_unref(index->buckets);
    g_free(index);
}

static Bucket *find(CabackPlanIndex *index, const void *key, gsize len)
{
    /* A static GBytes over the caller's bytes: a lookup copies nothing. */
    g_autoptr(GBytes) probe = g_bytes_new_static(key != NULL ? key : "", key != NULL ? len : 0);
    return g_hash_table_lookup(index->buckets, probe);
}

void caback_plan_index_add(CabackPlanIndex *index, const void *key, gsize len, gpointer item)
{
    Bucket *b = find(index, key, len);
    if (b == NULL) {
        b = g_new0(Bucket, 1);
        b->items = g_ptr_array_new();
        g_hash_table_insert(index->buckets, g_bytes_new(key, key != NULL ? len : 0), b);
    }
    g_ptr_array_add(b->items, item);
}

void caback_plan_index_add_bytes(CabackPlanIndex *index, GBytes *key, gpointer item)
{
    if (g_hash_table_lookup(index->buckets, key) == NULL) {
        Bucket *b = g_new0(Bucket, 1);
        b->items = g_ptr_array_new();
        g_hash_table_insert(index->buckets, g_bytes_ref(key), b);
    }
    Bucket *b = g_hash_table_lookup(index->buckets, key);
    g_ptr_array_add(b->items, item);
}

void caback_plan_index_add_string(CabackPlanIndex *index, const char *key, gpointer item)
{
    if (key != NULL)
        caback_plan_index_add(index, key, strlen(key), item);
}

gpointer caback_plan_index_first(CabackPlanIndex *index, const void *key, gsize len)
{
    Bucket *b = find(index, key, len);
    return b != NULL && b->items->len > 0 ? b->items->pdata[0] : NULL;
}

gpointer caback_plan_index_first_string(CabackPlanIndex *index, const char *key)
{
    return key != NULL ? caback_plan_index_first(index, key, strlen(key)) : NULL;
}

gpointer caback_plan_index_next(CabackPlanIndex *index, const void *key, gsize len,
                                CabackPlanIndexUsable usable, gpointer data)
{
    Bucket *b = find(index, key, len);
    if (b == NULL)
        return NULL;
    while (b->cursor < b->items->len && !usable(b->items->pdata[b->cursor], data))
        b->cursor++;
    return b->cursor < b->items->len ? b->items->pdata[b->cursor] : NULL;
}

guint caback_plan_index_count(CabackPlanIndex *index, const void *key, gsize len)
{
    Bucket *b = find(index, key, len);
    return b != NULL ? b->items->len : 0;
}
