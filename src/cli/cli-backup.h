/* caback backup's report as text and JSON (cli-backup.c), for cmd-backup.c. */
#pragma once

#include <glib.h>

#include <caback/backup.h>
#include <caback/db.h>

G_BEGIN_DECLS

/* What a finished backup says besides its selection. */
typedef struct {
    const char *output;
    const CabackP12WriteOptions *write;
    guint custody_threshold;  /* custody: M, else 0 */
    GPtrArray *custodians;    /* custody: CabackCustodian */
    GPtrArray *share_files;   /* custody: the share files written */
    gboolean verified;
    const CabackBackupReport *report;
    const char *sha256;      /* the file's SHA-256 once verified and in place, else NULL */
    gboolean latest_updated; /* latest_backup now points at the file */
} CabackCliBackupSummary;

/* "Backing up N private keys and M certificates from token ... to OUTPUT:" and a line pair per
 * certificate; caller frees. */
char *caback_cli_backup_selection_text(const CabackDb *db, const CabackBackupSelection *sel,
                                       const char *output);

/* The summary of a finished backup, as text or as the --json object; caller frees. */
char *caback_cli_backup_summary_text(const CabackBackupSelection *sel,
                                     const CabackCliBackupSummary *s);
char *caback_cli_backup_summary_json(const CabackDb *db, const CabackBackupSelection *sel,
                                     const CabackCliBackupSummary *s);

G_END_DECLS
