/* Progress of long work (key derivations, many keys, many objects, the drill), for a front end
 * that shows it. The library reports steps and counts; a front end that wants them installs one
 * sink for the process (the command line prints one line on standard error). Without a sink every
 * report is a no-op. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Receives @step (a short lowercase phrase, e.g. "checking keys"), @done of @total units (@total
 * 0 when the step has no count); called on the thread that reported, under a lock. @step NULL
 * means the work ended: the sink should clear what it shows. */
typedef void (*CabackProgressSink)(const char *step, guint done, guint total, gpointer data);

/* Install @sink (NULL: none) with @data for every later report of this process. */
void caback_progress_set_sink(CabackProgressSink sink, gpointer data);

/* Report that @done of @total units of @step are finished (the sink decides how often to show
 * it). Safe from any thread. */
void caback_progress_report(const char *step, guint done, guint total);

/* The long work ended (or failed): the sink clears its line. */
void caback_progress_end(void);

/* The kind of a line that a library workflow hands its front end to show (caback_backup_run,
 * caback_restore_run, caback_verify_run). */
typedef enum {
    CABACK_RUN_INFO,    /* what a normal run says */
    CABACK_RUN_DETAIL,  /* for the curious (-v) */
    CABACK_RUN_WARNING, /* something the user should know; workflows also record it */
    CABACK_RUN_NOTE,    /* a notice: nothing is wrong, but the run is not the usual one */
} CabackRunLevel;

/* How a library workflow hands its front end a line to show. */
typedef void (*CabackRunMessageFunc)(CabackRunLevel level, const char *text, gpointer data);

struct CabackLogRecord;

/* A workflow's line: formatted from @format and @args, handed to @message (when the front end
 * installed one) with @data, and, when it is a warning and @record is not NULL, recorded among
 * the run record's warnings too. */
void caback_run_say_valist(CabackRunMessageFunc message, gpointer data,
                           struct CabackLogRecord *record, CabackRunLevel level,
                           const char *format, va_list args) G_GNUC_PRINTF(5, 0);

G_END_DECLS
