/* See include/caback/db-lock.h. */
#include "config.h"

#include <caback/db-lock.h>
#include <caback/error.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

struct CabackDbLock {
    int fd; /* -1: a reader that reads without the lock */
};

void caback_db_lock_free(CabackDbLock *lock)
{
    if (lock == NULL)
        return;
    if (lock->fd >= 0)
        close(lock->fd); /* drops the flock */
    g_free(lock);
}

/* The pid of a process holding a flock on the file @st, from /proc/locks (0 when none is
 * listed). A shared lock may have several holders: the first listed is named. */
static long lock_holder(const struct stat *st)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents("/proc/locks", &text, NULL, NULL))
        return 0;
    g_autofree char *dev_ino = g_strdup_printf("%02x:%02x:%lu", major(st->st_dev),
                                               minor(st->st_dev), (unsigned long)st->st_ino);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **line = lines; *line != NULL; line++) {
        /* "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5341839 0 EOF"; waiters are "1: -> FLOCK ..." */
        g_auto(GStrv) words = g_strsplit_set(*line, " \t", -1);
        const char *w[6] = {NULL};
        guint n = 0;
        for (char **word = words; *word != NULL && n < G_N_ELEMENTS(w); word++)
            if (**word != '\0')
                w[n++] = *word;
        if (n == 6 && strcmp(w[1], "FLOCK") == 0 && strcmp(w[5], dev_ino) == 0)
            return strtol(w[4], NULL, 10);
    }
    return 0;
}

static char *pid_text(long pid)
{
    return pid > 0 ? g_strdup_printf("pid %ld", pid) : g_strdup("pid unknown");
}

/* Opening the lock file failed with @e: a reader that may not write the folder reads without
 * the lock (*@unlocked says so, *@quiet when nothing can change it); anything else is an error. */
static void lock_open_failed(const char *dir, const char *path, CabackDbLockMode mode, int e,
                             char **unlocked, gboolean *quiet, GError **error)
{
    if (mode == CABACK_DB_LOCK_SHARED && (e == EACCES || e == EPERM || e == EROFS)) {
        /* A reader in a folder it may not write (and a lock file it may not open): it
         * still reads. On a read-only file system nothing can change the database. */
        *unlocked = g_strdup_printf(
            "cannot lock NSS database %s (%s: %s); reading it without the lock, so a "
            "restore run at the same time by a user who may write the folder could change "
            "it meanwhile",
            dir, path, g_strerror(e));
        *quiet = e == EROFS;
        return;
    }
    if (mode == CABACK_DB_LOCK_EXCLUSIVE && (e == EACCES || e == EPERM || e == EROFS))
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_DATABASE,
                    "cannot lock NSS database %s: %s cannot be written: %s, and this command "
                    "changes the database: run it where the database can be written (as its "
                    "owner, on a file system mounted read-write)",
                    dir, dir, g_strerror(e));
    else if (e == ELOOP)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "the lock file %s is a symbolic link; caback does not follow it: remove "
                    "the link (caback makes the file again)",
                    path);
    else
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot open the lock file %s of NSS database %s: %s", path, dir,
                    g_strerror(e));
}

/* Whether the open lock file @fd may be used: a regular file owned by the user, root or the
 * owner of the folder (@dst). */
static gboolean lock_file_acceptable(int fd, const struct stat *dst, const char *dir,
                                     const char *path, GError **error)
{
    struct stat st;
    g_autofree char *why = NULL;
    if (fstat(fd, &st) != 0)
        why = g_strdup(g_strerror(errno));
    else if (!S_ISREG(st.st_mode))
        why = g_strdup("it is not a regular file");
    else if (st.st_uid != geteuid() && st.st_uid != 0 && st.st_uid != dst->st_uid)
        why = g_strdup_printf("it belongs to uid %ld, neither you, root nor the owner of the "
                              "folder, and its owner could hold it to stop every restore",
                              (long)st.st_uid);
    if (why == NULL)
        return TRUE;
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                "refusing the lock file %s of NSS database %s: %s; remove it (caback makes "
                "it again)",
                path, dir, why);
    return FALSE;
}

/* A lock file this run created: mode 0640 whatever the umask, and when root makes it in a service
 * account's database (@dst), given to that account, so that it can still lock it. Both best
 * effort: the lock works anyway. */
static void settle_new_lock_file(int fd, const struct stat *dst)
{
    if (fchmod(fd, 0640) != 0) {
        /* The umask's mode is stricter: still a lock. */
    }
    if (geteuid() == 0 && (dst->st_uid != 0 || dst->st_gid != 0) &&
        fchown(fd, dst->st_uid, dst->st_gid) != 0) {
        /* Root can lock it in any case. */
    }
}

/* The lock file of @dir, opened (and made when missing) safely; -1 with @error set, or -1 with
 * *@unlocked set (a reason, for a reader that goes on without the lock). */
static int open_lock_file(const char *dir, const char *path, CabackDbLockMode mode,
                          char **unlocked, gboolean *quiet, GError **error)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat dst;
    if (dfd < 0 || fstat(dfd, &dst) != 0) {
        int e = errno;
        if (dfd >= 0)
            close(dfd);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot open NSS database folder %s to lock it: %s", dir, g_strerror(e));
        return -1;
    }
    const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK;
    gboolean created = TRUE;
    /* Made 0640: the database's group (readers) may take a shared lock too. */
    int fd = openat(dfd, CABACK_DB_LOCK_NAME, flags | O_CREAT | O_EXCL, 0640);
    if (fd < 0 && errno == EEXIST) {
        created = FALSE;
        fd = openat(dfd, CABACK_DB_LOCK_NAME, flags);
    }
    int e = errno;
    close(dfd);
    if (fd < 0) {
        lock_open_failed(dir, path, mode, e, unlocked, quiet, error);
        return -1;
    }
    if (!lock_file_acceptable(fd, &dst, dir, path, error)) {
        close(fd);
        return -1;
    }
    if (created)
        settle_new_lock_file(fd, &dst);
    return fd;
}

CabackDbLock *caback_db_lock(const char *dir, CabackDbLockMode mode, guint wait_seconds,
                             CabackDbLockNotify notify, gpointer data, GError **error)
{
    g_return_val_if_fail(mode != CABACK_DB_LOCK_NONE, NULL);
    g_autofree char *path = g_build_filename(dir, CABACK_DB_LOCK_NAME, NULL);
    g_autofree char *unlocked = NULL;
    gboolean quiet = FALSE;

    int fd = open_lock_file(dir, path, mode, &unlocked, &quiet, error);
    if (fd < 0 && unlocked == NULL)
        return NULL;
    CabackDbLock *lock = g_new0(CabackDbLock, 1);
    lock->fd = fd;
    if (fd < 0) {
        if (notify != NULL && !quiet)
            notify(CABACK_DB_LOCK_UNLOCKED, unlocked, data);
        return lock;
    }

    const int op = mode == CABACK_DB_LOCK_EXCLUSIVE ? LOCK_EX : LOCK_SH;
    gint64 deadline = g_get_monotonic_time() + (gint64)wait_seconds * G_USEC_PER_SEC;
    gboolean told = FALSE;
    for (;;) {
        if (flock(fd, op | LOCK_NB) == 0)
            return lock;
        int e = errno;
        if (e == EINTR)
            continue;
        if (e != EWOULDBLOCK) {
            caback_db_lock_free(lock);
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot lock %s: %s", path,
                        g_strerror(e));
            return NULL;
        }
        struct stat st;
        long pid = fstat(fd, &st) == 0 ? lock_holder(&st) : 0;
        g_autofree char *who = pid_text(pid);
        if (g_get_monotonic_time() >= deadline) {
            caback_db_lock_free(lock);
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                        "another caback run (%s) still holds NSS database %s after %u seconds; "
                        "nothing was changed: run again when it is done, or wait longer with "
                        "--wait SECONDS",
                        who, dir, wait_seconds);
            return NULL;
        }
        if (!told && notify != NULL) {
            g_autofree char *message =
                g_strdup_printf("waiting for another caback run on %s (%s)", dir, who);
            notify(CABACK_DB_LOCK_WAITING, message, data);
        }
        told = TRUE;
        g_usleep(100 * 1000);
    }
}
