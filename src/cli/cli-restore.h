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

G_END_DECLS
