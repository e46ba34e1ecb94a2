/* Work spread over the processors: independent items, each done once, by the calling thread and
 * up to one more thread per further processor. NSS is thread-safe once initialised, so the items
 * may be NSS calls (key wraps, imports, test signatures); each item keeps its own results and
 * errors (NSS's error code is per thread). Pure GLib. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Call @work(@data, i) for every i from @first to @n - 1, each once, in no set order, and return
 * when all are done. Threads are named @thread_name; when one cannot be made, the others (and
 * the calling thread) do its share. */
void caback_parallel_for(guint first, guint n, void (*work)(gpointer data, guint i), gpointer data,
                         const char *thread_name);

G_END_DECLS
