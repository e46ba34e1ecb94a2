/* Files written safely: a temporary file in the target's folder, created with the final mode
 * (0600 for key material, whatever the umask), written, fsynced, and renamed over the target only
 * when complete; on any failure the temporary file is removed and the target is untouched. */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef struct CabackAtomicFile CabackAtomicFile;

/* Start writing @target. The temporary file is "<dir>/.<name>.caback-tmp-XXXXXX", created with
 * exactly @mode; when @owner_uid / @owner_gid are not (uid_t)-1 / (gid_t)-1 it is given that owner.
 * Stale temporary files of this naming for the same target (left by a killed run) are removed. */
CabackAtomicFile *caback_atomic_file_new(const char *target, mode_t mode, uid_t owner_uid,
                                         gid_t owner_gid, GError **error);

/* Append @len bytes. */
gboolean caback_atomic_file_write(CabackAtomicFile *file, const void *data, gsize len,
                                  GError **error);

/* The temporary file's path, e.g. to read it back for verification before commit. */
const char *caback_atomic_file_temp_path(CabackAtomicFile *file);

/* fsync, rename over the target (refusing with CABACK_ERROR_CONFLICT when the target exists and
 * @replace is FALSE), fsync the folder. @file is freed; on failure the temporary file is removed. */
gboolean caback_atomic_file_commit(CabackAtomicFile *file, gboolean replace, GError **error);

/* Remove the temporary file and free @file (NULL allowed). */
void caback_atomic_file_abort(CabackAtomicFile *file);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackAtomicFile, caback_atomic_file_abort)

/* The whole sequence for data already in memory. */
gboolean caback_atomic_file_replace(const char *target, const void *data, gsize len, mode_t mode,
                                    uid_t owner_uid, gid_t owner_gid, gboolean replace,
                                    GError **error);

/* fsync the folder @dir, so that a rename or creation in it survives a crash (file systems that
 * refuse fsync on folders are ignored: the rename itself is still atomic). */
void caback_sync_folder(const char *dir);

/* Remove the folder @dir with its files and sub-folders; symbolic links are removed, never
 * followed. FALSE (errno set by the last rmdir) when @dir itself could not be removed. */
gboolean caback_remove_folder(const char *dir);

G_END_DECLS
