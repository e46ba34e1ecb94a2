/* An index of items by a byte-string key, for the "first item of the file with this DER, key ID,
 * localKeyID, friendlyName or nickname" questions restore planning asks for every certificate and
 * key: average O(1) per lookup where a scan of the file's bags was O(n), so that planning a file
 * of n certificates is linear in n. Pure logic (no NSS), unit-tested in tests/unit/test-plan-index.c. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct CabackPlanIndex CabackPlanIndex;

CabackPlanIndex *caback_plan_index_new(void);
void caback_plan_index_free(CabackPlanIndex *index);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackPlanIndex, caback_plan_index_free)

/* Add @item (borrowed: it must outlive the index) under the @len bytes at @key (copied), after
 * the items already there. */
void caback_plan_index_add(CabackPlanIndex *index, const void *key, gsize len, gpointer item);

/* caback_plan_index_add with @key's bytes as key, kept by reference instead of copied (a
 * certificate's DER is not duplicated for the index). */
void caback_plan_index_add_bytes(CabackPlanIndex *index, GBytes *key, gpointer item);

/* caback_plan_index_add with a NUL-terminated string as key; a NULL @key adds nothing. */
void caback_plan_index_add_string(CabackPlanIndex *index, const char *key, gpointer item);

/* The first item added under @key, or NULL. */
gpointer caback_plan_index_first(CabackPlanIndex *index, const void *key, gsize len);
gpointer caback_plan_index_first_string(CabackPlanIndex *index, const char *key);

/* Whether @item can be taken (for example: a certificate not paired with a key yet). */
typedef gboolean (*CabackPlanIndexUsable)(gpointer item, gpointer data);

/* The first item under @key for which @usable(@item, @data) is TRUE, or NULL. The items before
 * it are not looked at again by later calls for this key: @usable must stay FALSE for an item
 * once it returned FALSE (a paired bag stays paired). Each item is so skipped once in all, which
 * keeps n calls linear. */
gpointer caback_plan_index_next(CabackPlanIndex *index, const void *key, gsize len,
                                CabackPlanIndexUsable usable, gpointer data);

/* How many items are under @key (0 when none). */
guint caback_plan_index_count(CabackPlanIndex *index, const void *key, gsize len);

G_END_DECLS
