/* Safe file replacement: temp file in the same folder, exact mode, fsync, rename, fsync folder.
 * The folder is opened once and everything after goes through its descriptor and the temporary
 * file's own descriptor: what is put in place is the file this process wrote, whatever happens
 * to names in the folder meanwhile. */
#include "config.h"

#include <caback/atomic-file.h>
#include <caback/error.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct CabackAtomicFile {
    char *target;
    char *dir;       /* the folder, for messages */
    char *base;      /* the target's name in the folder */
    char *temp;      /* the temporary file's path, for messages and temp_path */
    char *temp_name; /* its name in the folder */
    int dirfd;
    int fd;
};

#define TEMP_MARK ".caback-tmp-"
/* A temporary file nobody holds locked and nobody wrote for this long belongs to a run that is
 * gone: the lock is taken right after creation, the age covers that instant. */
#define STALE_SECONDS 60

static gboolean is_temp_name(const char *name, const char *prefix)
{
    /* Our names end in exactly six random characters after the mark. */
    return g_str_has_prefix(name, prefix) && strlen(name) == strlen(prefix) + 6;
}

/* Remove temporary files for the same target left by runs that are gone: only a regular file of
 * this user that no live run holds locked (each writer keeps a flock on its temporary file until
 * it ends) and that nobody wrote for a minute; another live run's file is never touched. */
static void remove_stale_temps(int dirfd, const char *base)
{
    g_autofree char *prefix = g_strdup_printf(".%s" TEMP_MARK, base);
    int scan = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = scan >= 0 ? fdopendir(scan) : NULL;
    struct dirent *entry;

    if (d == NULL) {
        if (scan >= 0)
            close(scan);
        return;
    }
    while ((entry = readdir(d)) != NULL) {
        if (!is_temp_name(entry->d_name, prefix))
            continue;
        int fd = openat(dirfd, entry->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st, again;
        if (fd < 0)
            continue;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
            time(NULL) - st.st_mtime > STALE_SECONDS && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            fstatat(dirfd, entry->d_name, &again, AT_SYMLINK_NOFOLLOW) == 0 &&
            again.st_ino == st.st_ino && again.st_dev == st.st_dev)
            unlinkat(dirfd, entry->d_name, 0);
        close(fd);
    }
    closedir(d);
}

/* A fresh "<prefix>XXXXXX" name in @dirfd, created with O_EXCL (never an existing name) and mode
 * 0600; the descriptor, or -1 with errno. */
static int create_temp(int dirfd, const char *prefix, char **name)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    for (int attempt = 0; attempt < 100; attempt++) {
        GString *n = g_string_new(prefix);
        for (int i = 0; i < 6; i++)
            g_string_append_c(n, chars[g_random_int_range(0, sizeof chars - 1)]);
        int fd = openat(dirfd, n->str, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            *name = g_string_free(n, FALSE);
            return fd;
        }
        int e = errno;
        g_string_free(n, TRUE);
        if (e != EEXIST) {
            errno = e;
            return -1;
        }
    }
    errno = EEXIST;
    return -1;
}

static void atomic_file_free(CabackAtomicFile *file)
{
    if (file->fd >= 0)
        close(file->fd);
    if (file->dirfd >= 0)
        close(file->dirfd);
    g_free(file->target);
    g_free(file->dir);
    g_free(file->base);
    g_free(file->temp);
    g_free(file->temp_name);
    g_free(file);
}

gboolean caback_folder_check_private(int dirfd, const char *dir, GError **error)
{
    struct stat st;

    if (fstat(dirfd, &st) != 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot check folder %s: %s", dir,
                    g_strerror(e));
        return FALSE;
    }
    gboolean foreign = st.st_uid != geteuid() && st.st_uid != 0;
    gboolean shared = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && !(st.st_mode & S_ISVTX);
    if (!foreign && !shared)
        return TRUE;
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                "refusing to write a backup into folder %s (mode %04o, owner uid %ld): %s, "
                "who could replace the file between its check and its use; nothing was written. "
                "Choose a folder only you (or root) can write, e.g. chmod go-w %s, or give "
                "--allow-shared-folder if every user who can write it is trusted",
                dir, (unsigned)(st.st_mode & 07777), (long)st.st_uid,
                foreign ? "it belongs to another user" : "other users may write it", dir);
    return FALSE;
}

CabackAtomicFile *caback_atomic_file_open(const char *target, mode_t mode, uid_t owner_uid,
                                          gid_t owner_gid, CabackAtomicFlags flags,
                                          GError **error)
{
    g_autofree char *dir = g_path_get_dirname(target);
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dirfd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "cannot write %s: folder %s does not exist; create it first", target,
                        dir);
        else
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot write %s: cannot open folder "
                        "%s: %s", target, dir, g_strerror(e));
        return NULL;
    }
    if ((flags & CABACK_ATOMIC_PRIVATE_FOLDER) && !caback_folder_check_private(dirfd, dir, error)) {
        close(dirfd);
        return NULL;
    }

    CabackAtomicFile *file = g_new0(CabackAtomicFile, 1);
    file->target = g_strdup(target);
    file->dir = g_steal_pointer(&dir);
    file->base = g_path_get_basename(target);
    file->dirfd = dirfd;
    remove_stale_temps(dirfd, file->base);

    g_autofree char *prefix = g_strdup_printf(".%s" TEMP_MARK, file->base);
    /* Without a name until it is complete: nobody can open, replace or remove it by name, and a
     * run that dies leaves nothing behind. File systems without O_TMPFILE get a named temporary
     * file (CABACK_TEST_NO_TMPFILE=1 makes the tests take that path). */
    const char *no_tmpfile = g_getenv("CABACK_TEST_NO_TMPFILE");
    file->fd = -1;
    if (no_tmpfile == NULL || *no_tmpfile == '\0')
        file->fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (file->fd >= 0)
        file->temp = g_strdup_printf("%s/(unnamed temporary file)", file->dir);
    else
        file->fd = create_temp(dirfd, prefix, &file->temp_name);
    if (file->fd < 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot create a temporary file in %s to write %s: %s; check that the folder "
                    "is writable and not full",
                    file->dir, target, g_strerror(e));
        atomic_file_free(file);
        return NULL;
    }
    if (file->temp == NULL)
        file->temp = g_build_filename(file->dir, file->temp_name, NULL);
    /* Held until the descriptor closes: the mark that this run is alive, so that no other run
     * takes the file for a stale one. */
    (void)flock(file->fd, LOCK_EX | LOCK_NB);
    if ((owner_uid != (uid_t)-1 || owner_gid != (gid_t)-1) &&
        fchown(file->fd, owner_uid, owner_gid) != 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot give %s its owner %ld:%ld: %s",
                    file->temp, (long)owner_uid, (long)owner_gid, g_strerror(e));
        caback_atomic_file_abort(file);
        return NULL;
    }
    /* Created 0600 so nobody else can open it in between; now the exact mode, whatever the
     * umask. */
    if (fchmod(file->fd, mode) != 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot set mode %04o on %s: %s",
                    (unsigned)mode, file->temp, g_strerror(e));
        caback_atomic_file_abort(file);
        return NULL;
    }
    return file;
}

CabackAtomicFile *caback_atomic_file_new(const char *target, mode_t mode, uid_t owner_uid,
                                         gid_t owner_gid, GError **error)
{
    return caback_atomic_file_open(target, mode, owner_uid, owner_gid, 0, error);
}

const char *caback_atomic_file_temp_path(CabackAtomicFile *file)
{
    return file->temp_name != NULL ? file->temp : NULL;
}

int caback_atomic_file_fd(CabackAtomicFile *file)
{
    return file->fd;
}

int caback_atomic_file_dirfd(CabackAtomicFile *file)
{
    return file->dirfd;
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

GBytes *caback_atomic_file_read_back(CabackAtomicFile *file, gsize max, GError **error)
{
    struct stat st;

    errno = 0;
    if (fstat(file->fd, &st) != 0 || !S_ISREG(st.st_mode) || (guint64)st.st_size > max) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot read back the temporary file %s of %s: %s", file->temp, file->target,
                    errno != 0 ? g_strerror(errno) : "not a regular file of the expected size");
        return NULL;
    }
    gsize len = (gsize)st.st_size, done = 0;
    guint8 *data = g_malloc(len + 1);
    while (done < len) {
        ssize_t n = pread(file->fd, data + done, len - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            explicit_bzero(data, len);
            g_free(data);
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "cannot read back the temporary file %s of %s: %s", file->temp,
                        file->target, g_strerror(e));
            return NULL;
        }
        done += (gsize)n;
    }
    return g_bytes_new_take(data, len);
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

/* Give the inode open as @fd the name @name in @dirfd, from the descriptor (never from a path
 * that could meanwhile name another file). AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc's link
 * to the descriptor does the same for everyone. */
static int link_descriptor(int fd, int dirfd, const char *name)
{
    if (linkat(fd, "", dirfd, name, AT_EMPTY_PATH) == 0)
        return 0;
    if (errno != ENOENT && errno != EPERM && errno != EINVAL)
        return -1;
    char proc[64];
    g_snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW);
}

/* Remove our temporary name, unless it now names another file (then it is not ours to remove). */
static void unlink_temp(CabackAtomicFile *file)
{
    struct stat mine, there;

    if (file->temp_name == NULL)
        return;
    if (file->fd >= 0 && fstat(file->fd, &mine) == 0 &&
        fstatat(file->dirfd, file->temp_name, &there, AT_SYMLINK_NOFOLLOW) == 0 &&
        (mine.st_ino != there.st_ino || mine.st_dev != there.st_dev))
        return;
    unlinkat(file->dirfd, file->temp_name, 0);
}

static gboolean target_is_ours(CabackAtomicFile *file)
{
    struct stat mine, there;

    return fstat(file->fd, &mine) == 0 &&
           fstatat(file->dirfd, file->base, &there, AT_SYMLINK_NOFOLLOW) == 0 &&
           mine.st_ino == there.st_ino && mine.st_dev == there.st_dev;
}

/* A named temporary file whose name was removed or replaced by someone else: its inode has no
 * name left, and Linux will not give it one again. */
static gboolean lost(CabackAtomicFile *file)
{
    struct stat st;
    return file->temp_name != NULL && fstat(file->fd, &st) == 0 && st.st_nlink == 0;
}

static void set_lost_error(CabackAtomicFile *file, GError **error)
{
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                "the temporary file %s was removed or replaced by another process before caback "
                "could put it in place as %s; nothing was put in place and nothing recorded. "
                "Someone else writes folder %s: find out who, and write backups to a folder only "
                "you can write",
                file->temp, file->target, file->dir);
}

gboolean caback_atomic_file_commit(CabackAtomicFile *file, gboolean replace, GError **error)
{
    if (fsync(file->fd) != 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot write %s (temporary file %s): %s; %s is unchanged", file->target,
                    file->temp, g_strerror(e), file->target);
        caback_atomic_file_abort(file);
        return FALSE;
    }

    if (replace) {
        /* A second name made from the descriptor, renamed over the target at once: the rename
         * moves exactly the file written even if the first temporary name was replaced. */
        g_autofree char *prefix = g_strdup_printf(".%s" TEMP_MARK, file->base);
        g_autofree char *name = NULL;
        int e = 0;
        for (int attempt = 0; attempt < 100; attempt++) {
            g_free(name);
            name = g_strdup_printf("%s%06x", prefix, g_random_int_range(0, 0x1000000));
            if (link_descriptor(file->fd, file->dirfd, name) == 0) {
                e = 0;
                break;
            }
            e = errno;
            if (e != EEXIST)
                break;
        }
        if (e == 0 && renameat(file->dirfd, name, file->dirfd, file->base) != 0) {
            e = errno;
            unlinkat(file->dirfd, name, 0);
        }
        if (e != 0) {
            if (e == ENOENT && lost(file))
                set_lost_error(file, error);
            else
                g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot rename %s to %s: %s",
                            file->temp, file->target, g_strerror(e));
            caback_atomic_file_abort(file);
            return FALSE;
        }
    } else {
        /* linkat fails with EEXIST instead of replacing: no window where a file that appeared
         * meanwhile would be overwritten. */
        if (link_descriptor(file->fd, file->dirfd, file->base) != 0) {
            int e = errno;
            if (e == ENOENT && lost(file))
                set_lost_error(file, error);
            else if (e == EEXIST)
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
    }
    if (!target_is_ours(file)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%s was replaced by another file right after caback put it in place; someone "
                    "else can write folder %s. Check that file: it is not the one caback wrote",
                    file->target, file->dir);
        caback_atomic_file_abort(file);
        return FALSE;
    }
    unlink_temp(file);
    /* Some file systems refuse fsync on folders; the rename itself is still atomic. */
    (void)fsync(file->dirfd);
    atomic_file_free(file);
    return TRUE;
}

void caback_atomic_file_abort(CabackAtomicFile *file)
{
    if (file == NULL)
        return;
    unlink_temp(file);
    atomic_file_free(file);
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

guint8 *caback_fd_read_capped(int fd, gsize cap, gsize *len, int *err)
{
    guint8 *data = g_malloc(cap + 1);
    gsize got = 0;
    for (;;) {
        ssize_t n = read(fd, data + got, cap + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = errno;
            g_free(data);
            return NULL;
        }
        if (n == 0)
            break;
        got += (gsize)n;
        if (got > cap) {
            *err = EFBIG;
            g_free(data);
            return NULL;
        }
    }
    *len = got;
    return data;
}
