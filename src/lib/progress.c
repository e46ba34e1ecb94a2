/* The process's progress sink (see progress.h): one function and its data, behind a lock so that
 * worker threads may report too. */
#include "config.h"

#include <caback/progress.h>
#include <caback/log.h>

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

void caback_run_say_valist(CabackRunMessageFunc message, gpointer data,
                           struct CabackLogRecord *record, CabackRunLevel level,
                           const char *format, va_list args)
{
    g_autofree char *text = g_strdup_vprintf(format, args);
    if (message != NULL)
        message(level, text, data);
    if (level == CABACK_RUN_WARNING && record != NULL)
        caback_log_record_add_warning(record, "%s", text);
}
