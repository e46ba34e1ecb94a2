/* The process's progress sink (see progress.h): one function and its data, behind a lock so that
 * worker threads may report too. */
#include "config.h"

#include <caback/progress.h>

static GMutex progress_lock;
static CabackProgressSink progress_sink;
static gpointer progress_data;

void caback_progress_set_sink(CabackProgressSink sink, gpointer data)
{
    g_mutex_lock(&progress_lock);
    progress_sink = sink;
    progress_data = data;
    g_mutex_unlock(&progress_lock);
}

void caback_progress_report(const char *step, guint done, guint total)
{
    g_mutex_lock(&progress_lock);
    if (progress_sink != NULL && step != NULL)
        progress_sink(step, done, total, progress_data);
    g_mutex_unlock(&progress_lock);
}

void caback_progress_end(void)
{
    g_mutex_lock(&progress_lock);
    if (progress_sink != NULL)
        progress_sink(NULL, 0, 0, progress_data);
    g_mutex_unlock(&progress_lock);
}
