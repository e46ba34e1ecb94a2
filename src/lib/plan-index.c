/* Items by byte-string key, in the order they were added (see caback/plan-index.h). */
#include "config.h"

#include <caback/plan-index.h>

#include <string.h>

/* A key's bytes: the bucket's own copy, or the bytes of a GBytes the bucket holds. */
typedef struct {
    const guint8 *data;
    gsize len;
} IndexKey;

/* All the items of one key. The hash table's key is the bucket itself (its first member), so
 * that one allocation holds the key, its first item and its place: most keys of a file have one
 * item, and a file of 100,000 keys used to pay for a GBytes, a GPtrArray and a bucket each. */
typedef struct {
    IndexKey key;    /* must stay first */
    GBytes *held;    /* caback_plan_index_add_bytes: the key's bytes, held; NULL when copied */
    gpointer first;  /* the first item */
    GPtrArray *more; /* the items after it, NULL until there is a second one */
    guint cursor;    /* caback_plan_index_next: items before it are unusable for good */
    guint8 copy[];   /* the key's bytes, when copied */
} Bucket;

struct CabackPlanIndex {
    GHashTable *buckets; /* a set of Bucket*, by their IndexKey */
};

static guint key_hash(gconstpointer p)
{
    const IndexKey *k = p;
    guint h = 5381;

    for (gsize i = 0; i < k->len; i++)
        h = (h << 5) + h + k->data[i];
    return h;
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
    const IndexKey *x = a, *y = b;
    return x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
}

static void bucket_free(gpointer p)
{
    Bucket *b = p;
    if (b->more != NULL)
        g_ptr_array_unref(b->more);
    if (b->held != NULL)
        g_bytes_unref(b->held);
    g_free(b);
}

CabackPlanIndex *caback_plan_index_new(void)
{
    CabackPlanIndex *index = g_new0(CabackPlanIndex, 1);
    index->buckets = g_hash_table_new_full(key_hash, key_equal, bucket_free, NULL);
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
    IndexKey probe = {key != NULL ? key : (const guint8 *)"", key != NULL ? len : 0};
    return g_hash_table_lookup(index->buckets, &probe);
}

static guint bucket_count(const Bucket *b)
{
    return 1 + (b->more != NULL ? b->more->len : 0);
}

static gpointer bucket_item(const Bucket *b, guint i)
{
    return i == 0 ? b->first : b->more->pdata[i - 1];
}

static void bucket_append(Bucket *b, gpointer item)
{
    if (b->more == NULL)
        b->more = g_ptr_array_new();
    g_ptr_array_add(b->more, item);
}

/* Add @item under the @len bytes at @key: after the items already there, or in a new bucket
 * that copies the bytes, or holds @held (whose bytes they are) instead when it is not NULL. */
static void add(CabackPlanIndex *index, const void *key, gsize len, GBytes *held, gpointer item)
{
    if (key == NULL)
        len = 0;
    Bucket *b = find(index, key, len);
    if (b != NULL) {
        bucket_append(b, item);
        return;
    }
    b = g_malloc0(sizeof(Bucket) + (held != NULL ? 0 : len));
    if (held != NULL) {
        b->held = g_bytes_ref(held);
        b->key.data = key != NULL ? key : (const guint8 *)"";
    } else {
        if (len > 0)
            memcpy(b->copy, key, len);
        b->key.data = b->copy;
    }
    b->key.len = len;
    b->first = item;
    g_hash_table_add(index->buckets, b);
}

void caback_plan_index_add(CabackPlanIndex *index, const void *key, gsize len, gpointer item)
{
    add(index, key, len, NULL, item);
}

void caback_plan_index_add_bytes(CabackPlanIndex *index, GBytes *key, gpointer item)
{
    gsize len;
    const guint8 *data = g_bytes_get_data(key, &len);
    add(index, data, len, key, item);
}

void caback_plan_index_add_string(CabackPlanIndex *index, const char *key, gpointer item)
{
    if (key != NULL)
        caback_plan_index_add(index, key, strlen(key), item);
}

gpointer caback_plan_index_first(CabackPlanIndex *index, const void *key, gsize len)
{
    Bucket *b = find(index, key, len);
    return b != NULL ? b->first : NULL;
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
    guint n = bucket_count(b);
    while (b->cursor < n && !usable(bucket_item(b, b->cursor), data))
        b->cursor++;
    return b->cursor < n ? bucket_item(b, b->cursor) : NULL;
}

guint caback_plan_index_count(CabackPlanIndex *index, const void *key, gsize len)
{
    Bucket *b = find(index, key, len);
    return b != NULL ? bucket_count(b) : 0;
}
