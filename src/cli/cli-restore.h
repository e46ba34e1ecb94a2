/* caback restore's text output (src/cli/cli-restore.c), for cmd-restore.c. */
#pragma once

#include "cli.h"

#include <caback/restore-run.h>

G_BEGIN_DECLS

/* The plan, before anything changes: each certificate and key with its action, trust, the
 * certificates --replace moves aside, weak keys, and the plan's notes. */
void caback_cli_restore_print_plan(const CabackRestorePlan *plan, const CabackDb *db,
                                   gboolean would_create);

/* The key IDs for CS.cfg, in the certutil -K and the Dogtag form; Dogtag's short-ID warning goes
 * to the run log too (@rec may be NULL). */
void caback_cli_restore_print_key_ids(const CabackRestorePlan *plan, CabackLogRecord *rec);

/* What a restore that changed the database says: the counts, the pairs checked, keys made not
 * extractable by their token (unless @non_extractable asked for it), keys without a certificate,
 * and the key IDs. */
void caback_cli_restore_print_restored(const CabackRestoreRun *run, gboolean non_extractable,
                                       CabackLogRecord *rec);

/* How the run of the file @path ended, once it has: a dry run's counts, "nothing to do" (with
 * --skip-unsupported, @skip_unsupported, the skipped are named) and the key IDs, or what a
 * restore that changed the database says; nothing for a refused run or a conflict (the error
 * says it). FALSE for a run that has not ended in one of these outcomes. */
gboolean caback_cli_restore_print_outcome(const CabackRestoreRun *run, const char *path,
                                          gboolean skip_unsupported, gboolean non_extractable,
                                          CabackLogRecord *rec);

/* What restore's text needs to know while the run goes: the hooks' data. */
typedef struct {
    const char *path;          /* the PKCS#12 file (-i) */
    const char *log_path;      /* --log, or NULL: where an unreadable file's history is read */
    gboolean skip_unsupported; /* --skip-unsupported */
    gboolean non_extractable;  /* --non-extractable */
    gboolean json;             /* --json: the plan and the outcome are the JSON object */
    CabackLogRecord *rec;      /* this run's record (may be NULL) */
} CabackCliRestoreView;

/* The hooks through which the command shows a restore: its lines (caback_cli_show_message), why
 * the file could not be read (caback_cli_explain_p12_failure), the plan (as text), and the
 * outcome (caback_cli_restore_print_outcome, then the --json object). @view outlives the run. */
CabackRestoreHooks caback_cli_restore_hooks(CabackCliRestoreView *view);

G_END_DECLS
