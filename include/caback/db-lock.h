/* One caback at a time per NSS database: a lock file beside the database (DIR/caback.lock),
 * locked with flock(2), exclusive for the runs that change the database and shared for the
 * runs that only read it, taken before the database is first read. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CABACK_DB_LOCK_NAME "caback.lock"

typedef enum {
    CABACK_DB_LOCK_NONE = 0,   /* no lock (the default of CabackDbOptions) */
    CABACK_DB_LOCK_SHARED,     /* a reader: other readers may run, writers wait */
    CABACK_DB_LOCK_EXCLUSIVE,  /* a writer: everyone else waits */
} CabackDbLockMode;

typedef enum {
    CABACK_DB_LOCK_WAITING,    /* another run holds the lock: "waiting for another caback run
                                * on DIR (pid N)" */
    CABACK_DB_LOCK_UNLOCKED,   /* a reader could not take the lock (a folder it may not write,
                                * without a lock file it may open) and reads without it */
} CabackDbLockEvent;

/* Told what the lock is doing, for the command to print; @message is complete. */
typedef void (*CabackDbLockNotify)(CabackDbLockEvent event, const char *message, gpointer data);

typedef struct CabackDbLock CabackDbLock;

/* Lock the NSS database folder @dir in @mode (not NONE), waiting at most @wait_seconds for
 * another run to let go (@notify, which may be NULL, is told once when the wait starts). The
 * lock file is made when missing (mode 0640, given to the folder's owner and group when root
 * makes it), opened with O_NOFOLLOW | O_NONBLOCK and used only when it is a regular file owned
 * by this user, root or the folder's owner. A reader that cannot make or open the lock file in
 * a folder it may not write reads without the lock (@notify is told, except on a read-only
 * file system, where no one can write the database). Fails with CABACK_ERROR_FAILED when the
 * wait ends (naming the folder, the holder's pid and --wait), CABACK_ERROR_IO for a lock file
 * that is refused or cannot be made; nothing is changed then. Release with
 * caback_db_lock_free. */
CabackDbLock *caback_db_lock(const char *dir, CabackDbLockMode mode, guint wait_seconds,
                             CabackDbLockNotify notify, gpointer data, GError **error);

/* Release the lock (NULL allowed). The lock file stays, for the next run. */
void caback_db_lock_free(CabackDbLock *lock);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackDbLock, caback_db_lock_free)

G_END_DECLS
