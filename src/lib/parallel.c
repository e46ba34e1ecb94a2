/* See include/caback/parallel.h. */
#include "config.h"

#include <caback/parallel.h>

typedef struct {
    void (*work)(gpointer data, guint i);
    gpointer data;
    guint n;
    gint next;
} Parallel;

static gpointer parallel_run(gpointer p)
{
    Parallel *par = p;
    for (;;) {
        gint i = g_atomic_int_add(&par->next, 1);
        if (i < 0 || (guint)i >= par->n)
            return NULL;
        par->work(par->data, (guint)i);
    }
}

void caback_parallel_for(guint first, guint n, void (*work)(gpointer data, guint i), gpointer data,
                         const char *thread_name)
{
    if (first >= n)
        return;
    Parallel par = {work, data, n, (gint)first};
    guint cpus = g_get_num_processors();
    guint items = n - first;
    guint threads = items > 1 && cpus > 1 ? MIN(items, cpus) - 1 : 0;
    g_autoptr(GPtrArray) running = g_ptr_array_new();

    for (guint i = 0; i < threads; i++) {
        GThread *t = g_thread_try_new(thread_name, parallel_run, &par, NULL);
        if (t == NULL)
            break;
        g_ptr_array_add(running, t);
    }
    parallel_run(&par);
    for (guint i = 0; i < running->len; i++)
        g_thread_join(running->pdata[i]);
}
