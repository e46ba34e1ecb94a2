/* Files written safely: a temporary file in the target's folder, created with the final mode
 * (0600 for key material, whatever the umask), written, fsynced, and renamed over the target only
 * when complete; on any failure the temporary file is removed and the target is untouched. */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef struct CabackAtomicFile CabackAtomicFile;

/* Start writing @target. The temporary file is unnamed (O_TMPFILE) or, where the file system
 * lacks that, "<dir>/.<name>.caback-tmp-XXXXXX"; it gets exactly @mode; when @owner_uid /
 * @owner_gid are not (uid_t)-1 / (gid_t)-1 it is given that owner. Stale temporary files of this
 * naming for the same target (left by a killed run) are removed, never those of a live run
 * (see caback_atomic_file_open). */
CabackAtomicFile *caback_atomic_file_new(const char *target, mode_t mode, uid_t owner_uid,
                                         gid_t owner_gid, GError **error);

/* How caback_atomic_file_open treats the folder. */
typedef enum {
    /* Refuse a folder that another non-root user may write (group or world writable without the
     * sticky bit, or owned by another user): see caback_folder_check_private. */
    CABACK_ATOMIC_PRIVATE_FOLDER = 1 << 0,
} CabackAtomicFlags;

/* caback_atomic_file_new with @flags. The folder is opened once; the temporary file
 * is created there with O_EXCL|O_NOFOLLOW and held under flock(LOCK_EX) until the file is freed,
 * so that another run never takes it for a stale one. Stale temporary files of the same target
 * are removed only when nobody holds them locked and nobody wrote them for a minute. */
CabackAtomicFile *caback_atomic_file_open(const char *target, mode_t mode, uid_t owner_uid,
                                          gid_t owner_gid, CabackAtomicFlags flags,
                                          GError **error);

/* FALSE (CABACK_ERROR_FAILED, naming @dir, its mode and owner) when the folder open
 * as @dirfd is owned by a user other than this one or root, or is group or world writable
 * without the sticky bit. */
gboolean caback_folder_check_private(int dirfd, const char *dir, GError **error);

/* The whole temporary file as written so far, read from its descriptor (at most @max
 * bytes, else CABACK_ERROR_IO): the bytes a verification must look at. */
GBytes *caback_atomic_file_read_back(CabackAtomicFile *file, gsize max, GError **error);

/* The temporary file's descriptor and its folder's, owned by @file. */
int caback_atomic_file_fd(CabackAtomicFile *file);
int caback_atomic_file_dirfd(CabackAtomicFile *file);

/* Append @len bytes. */
gboolean caback_atomic_file_write(CabackAtomicFile *file, const void *data, gsize len,
                                  GError **error);

/* The temporary file's path, or NULL when it has no name (O_TMPFILE, the usual case: it gets one
 * only when committed). Reading it back goes through caback_atomic_file_read_back. */
const char *caback_atomic_file_temp_path(CabackAtomicFile *file);

/* fsync, rename over the target (refusing with CABACK_ERROR_CONFLICT when the target exists and
 * @replace is FALSE), fsync the folder. @file is freed; on failure the temporary file is removed.
 * The target is made from the temporary file's descriptor (linkat), never by resolving the
 * temporary name again, and checked to be that file afterwards. */
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

/* Read the open file @fd to its end, expecting at most @cap bytes (the size fstat gave was checked
 * against @cap by the caller; one byte more is asked for, so that a file that grew since is caught).
 * Returns the bytes (g_free; *len set), or NULL with *err set: the read's errno, or EFBIG when more
 * than @cap bytes came. */
guint8 *caback_fd_read_capped(int fd, gsize cap, gsize *len, int *err);

G_END_DECLS
