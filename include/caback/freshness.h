/* Is a backup the newest of its database? What the run log (the JSON-lines twin that every
 * "caback backup" appends to, in the state folder unless --log names another) says about the
 * backups made, so that a restore can show a backup's date and warn (or, with --require-latest,
 * refuse) when a newer backup of the same database is recorded. Pure: no NSS, no files. */
#pragma once

#include <glib.h>

#include <caback/keyid.h>

G_BEGIN_DECLS

/* One successful "backup" record of the run log. */
typedef struct {
    char *time;       /* UTC, "YYYY-MM-DDTHH:MM:SSZ" (sorts as text) */
    char *database;   /* the database backed up, as recorded, or NULL */
    char *file;       /* the archive written (absolute) */
    char *sha256;     /* its SHA-256, 64 lower-case hex digits */
    GArray *key_ids;  /* CabackKeyId: the key IDs it holds, possibly none */
} CabackBackupRecord;

void caback_backup_record_free(CabackBackupRecord *record);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackBackupRecord, caback_backup_record_free)

/* The successful backup records of the JSON-lines log @contents (@len bytes), in log order: the
 * lines caback's log writes with "verb":"backup" and "result":"OK" whose time, file and sha256
 * are present and well formed; any other line is skipped. Returns an array of
 * CabackBackupRecord* (never NULL). */
GPtrArray *caback_backup_records_parse(const char *contents, gsize len);

/* What the log says about one backup. */
typedef struct {
    const CabackBackupRecord *self;  /* the newest record of this backup (same SHA-256), or NULL */
    const CabackBackupRecord *newer; /* the newest record of a different backup of the same
                                        database made after @date, or NULL */
} CabackFreshness;

/* Judge the backup whose bytes have @sha256 and which holds the keys @key_ids (CabackKeyId, may
 * be NULL) against @records. Its date is @date (the signing time, "YYYY-MM-DDTHH:MM:SSZ")
 * when not NULL, else the time of its own record. A record is of the same database when both
 * name the same database, or, when this backup has no record (or its record names no database),
 * when they share a key ID. With no date at all, nothing can be newer (the caller says the date
 * is unknown). The pointers point into @records. */
CabackFreshness caback_freshness_judge(GPtrArray *records, const char *sha256,
                                       const GArray *key_ids, const char *date);

G_END_DECLS
