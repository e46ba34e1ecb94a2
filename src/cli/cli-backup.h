/* caback backup's report as text (cli-backup.c), for cmd-backup.c. */
#pragma once

#include <glib.h>

#include <caback/backup.h>
#include <caback/db.h>

G_BEGIN_DECLS

/* "Backing up N private keys and M certificates from token ... to OUTPUT:" and a line pair per
 * certificate; caller frees. */
char *caback_cli_backup_selection_text(const CabackDb *db, const CabackBackupSelection *sel,
                                       const char *output);

/* The summary of the finished run of @options, as text (the --json object is the library's
 * caback_backup_run_json); caller frees. */
char *caback_cli_backup_summary_text(const CabackBackupRunOptions *options,
                                     const CabackBackupResult *result);

G_END_DECLS
