/* Safe file replacement: temp file in the same folder, exact mode, fsync, rename, fsync folder. */
#include "config.h"

#include <caback/atomic-file.h>
#include <caback/error.h>

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct CabackAtomicFile {
    char *target;
    char *temp;
    int fd;
};

#define TEMP_MARK ".caback-tmp-"

static void remove_stale_temps(const char *dir, const char *base)
{
    g_autofree char *prefix = g_strdup_printf(".%s" TEMP_MARK, base);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    if (d == NULL)
        return;
    while ((name = g_dir_read_name(d)) != NULL) {
        /* Our names end in exactly six random characters after the mark. */
        if (g_str_has_prefix(name, prefix) && strlen(name) == strlen(prefix) + 6) {
            g_autofree char *path = g_build_filename(dir, name, NULL);
            g_unlink(path);
        }
    }
}

CabackAtomicFile *caback_atomic_file_new(const char *target, mode_t mode, uid_t owner_uid,
                                         gid_t owner_gid, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(target);
    g_autofree char *base = g_path_get_basename(target);

    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot write %s: folder %s does not exist; create it first", target, dir);
        return NULL;
    }
    remove_stale_temps(dir, base);

    CabackAtomicFile *file = g_new0(CabackAtomicFile, 1);
    file->target = g_strdup(target);
    file->temp = g_strdup_printf("%s/.%s" TEMP_MARK "XXXXXX", dir, base);
    /* g_mkstemp_full creates with mode & ~umask; fchmod below then sets the exact mode, and the
     * file is created 0600 first so nobody else can open it in between. */
    file->fd = g_mkstemp_full(file->temp, O_RDWR | O_CLOEXEC, 0600);
    if (file->fd < 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot create a temporary file in %s to write %s: %s; check that the folder "
                    "is writable and not full",
                    dir, target, g_strerror(e));
        g_free(file->target);
        g_free(file->temp);
        g_free(file);
        return NULL;
    }
    if ((owner_uid != (uid_t)-1 || owner_gid != (gid_t)-1) &&
        fchown(file->fd, owner_uid, owner_gid) != 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot give %s its owner %ld:%ld: %s",
                    file->temp, (long)owner_uid, (long)owner_gid, g_strerror(e));
        caback_atomic_file_abort(file);
        return NULL;
    }
    if (fchmod(file->fd, mode) != 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot set mode %04o on %s: %s",
                    (unsigned)mode, file->temp, g_strerror(e));
        caback_atomic_file_abort(file);
        return NULL;
    }
    return file;
}

const char *caback_atomic_file_temp_path(CabackAtomicFile *file)
{
    return file->temp;
}

gboolean caback_atomic_file_write(CabackAtomicFile *file, const void *data, gsize len,
                                  GError **error)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(file->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "cannot write %s (temporary file %s): %s; %s is unchanged", file->target,
                        file->temp, g_strerror(e), file->target);
            return FALSE;
        }
        p += n;
        len -= n;
    }
    return TRUE;
}

void caback_sync_folder(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        /* Some file systems refuse fsync on folders; the rename itself is still atomic. */
        (void)fsync(fd);
        close(fd);
    }
}

gboolean caback_remove_folder(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        GStatBuf st;
        if (g_lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            caback_remove_folder(path);
        else
            g_unlink(path);
    }
    return g_rmdir(dir) == 0;
}

gboolean caback_atomic_file_commit(CabackAtomicFile *file, gboolean replace, GError **error)
{
    /* Close in every case: a failed fsync must not leak the descriptor. */
    int e = fsync(file->fd) != 0 ? errno : 0;
    if (close(file->fd) != 0 && e == 0)
        e = errno;
    file->fd = -1;
    if (e != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot write %s (temporary file %s): %s; %s is unchanged", file->target,
                    file->temp, g_strerror(e), file->target);
        caback_atomic_file_abort(file);
        return FALSE;
    }

    if (replace) {
        if (rename(file->temp, file->target) != 0) {
            int e = errno;
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot rename %s to %s: %s",
                        file->temp, file->target, g_strerror(e));
            caback_atomic_file_abort(file);
            return FALSE;
        }
    } else {
        /* link() fails with EEXIST instead of replacing: no window where a file that appeared
         * meanwhile would be overwritten. */
        if (link(file->temp, file->target) != 0) {
            int e = errno;
            if (e == EEXIST)
                g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                            "%s already exists; it was left untouched (use --force to replace "
                            "it)",
                            file->target);
            else
                g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot create %s: %s",
                            file->target, g_strerror(e));
            caback_atomic_file_abort(file);
            return FALSE;
        }
        g_unlink(file->temp);
    }
    g_autofree char *folder = g_path_get_dirname(file->target);
    caback_sync_folder(folder);
    g_free(file->target);
    g_free(file->temp);
    g_free(file);
    return TRUE;
}

void caback_atomic_file_abort(CabackAtomicFile *file)
{
    if (file == NULL)
        return;
    if (file->fd >= 0)
        close(file->fd);
    g_unlink(file->temp);
    g_free(file->target);
    g_free(file->temp);
    g_free(file);
}

gboolean caback_atomic_file_replace(const char *target, const void *data, gsize len, mode_t mode,
                                    uid_t owner_uid, gid_t owner_gid, gboolean replace,
                                    GError **error)
{
    CabackAtomicFile *file = caback_atomic_file_new(target, mode, owner_uid, owner_gid, error);

    if (file == NULL)
        return FALSE;
    if (!caback_atomic_file_write(file, data, len, error)) {
        caback_atomic_file_abort(file);
        return FALSE;
    }
    return caback_atomic_file_commit(file, replace, error);
}
