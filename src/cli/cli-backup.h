/* caback backup's report as text (cli-backup.c), for cmd-backup.c. */
#pragma once

#include <glib.h>

#include <caback/backup.h>
#include <caback/db.h>
#include <caback/log.h>

G_BEGIN_DECLS

/* "Backing up N private keys and M certificates from token ... to OUTPUT:" and a line pair per
 * certificate; caller frees. */
char *caback_cli_backup_selection_text(const CabackDb *db, const CabackBackupSelection *sel,
                                       const char *output);

/* The summary of the finished run of @options, as text (the --json object is the library's
 * caback_backup_run_json); caller frees. */
char *caback_cli_backup_summary_text(const CabackBackupRunOptions *options,
                                     const CabackBackupResult *result);

/* What backup's text needs to know while the run goes: the hooks' data. */
typedef struct {
    CabackDb *db;          /* the database backed up, open */
    const char *output;    /* the file to write */
    gboolean json;         /* --json: the selection is not shown */
    CabackLogRecord *rec;  /* this run's record: the keys and the warnings go into it */
} CabackCliBackupView;

/* The hooks through which the command shows a backup: the selection's keys recorded, shown
 * (caback_cli_backup_selection_text) and its warnings printed and recorded; the password asked
 * at the prompt after it (caback_backup_password_read); the run's warnings. @view outlives the
 * run. */
CabackBackupHooks caback_cli_backup_hooks(CabackCliBackupView *view);

G_END_DECLS
