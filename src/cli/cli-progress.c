/* The progress line of long work (progress.h): one line on standard error, rewritten in place,
 * "caback VERB: [DONE/TOTAL] STEP (ELAPSED s)". Shown when standard error is a terminal, or with
 * --progress; never with --no-progress, -q or --json, so it cannot mix with machine output (and
 * standard output never carries it). Warnings and errors clear it first. */
#include "config.h"

#include "cli.h"

#include <caback/progress.h>

#include <stdio.h>
#include <unistd.h>

typedef struct {
    char *verb;
    gint64 start;    /* monotonic microseconds */
    gint64 shown_at; /* when the line was last written */
    char *last_step;
    gboolean shown;  /* the line is on the terminal now */
} ProgressLine;

static ProgressLine line;

/* Runs under progress.c's lock. */
static void progress_sink(const char *step, guint done, guint total, gpointer data)
{
    (void)data;
    if (step == NULL) {
        if (line.shown)
            fputs("\r\033[K", stderr);
        line.shown = FALSE;
        return;
    }
    gint64 now = g_get_monotonic_time();
    /* Thousands of objects should not cost thousands of writes: at most 20 lines a second, but
     * always the first and the last of a step. */
    gboolean new_step = g_strcmp0(step, line.last_step) != 0;
    if (line.shown && !new_step && done != total && now - line.shown_at < G_USEC_PER_SEC / 20)
        return;
    if (new_step) {
        g_free(line.last_step);
        line.last_step = g_strdup(step);
    }
    double elapsed = (double)(now - line.start) / G_USEC_PER_SEC;
    if (total > 0)
        fprintf(stderr, "\r\033[Kcaback %s: [%u/%u] %s (%.1f s)", line.verb, done, total, step,
                elapsed);
    else
        fprintf(stderr, "\r\033[Kcaback %s: %s (%.1f s)", line.verb, step, elapsed);
    fflush(stderr);
    line.shown = TRUE;
    line.shown_at = now;
}

void caback_cli_progress_setup(const char *verb, const CabackCommonOptions *options)
{
    gboolean on = options->progress || isatty(STDERR_FILENO);
    if (options->no_progress || options->quiet || options->json)
        on = FALSE;
    if (!on) {
        caback_progress_set_sink(NULL, NULL);
        return;
    }
    g_free(line.verb);
    line.verb = g_strdup(verb);
    line.start = g_get_monotonic_time();
    caback_progress_set_sink(progress_sink, NULL);
}

void caback_cli_progress_clear(void)
{
    caback_progress_end();
}
