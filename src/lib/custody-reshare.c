/* caback reshare (custody-flow.h, doc/custody.md): a new random password and a new share set for
 * an archive under custody, through a restore into a private temporary database and a backup
 * from it, with the pending state of --verify next to the archive. */
#include "config.h"

#include <caback/atomic-file.h>
#include <caback/backup.h>
#include <caback/custody-flow.h>
#include <caback/custody.h>
#include <caback/digest.h>
#include <caback/error.h>
#include <caback/log.h>
#include <caback/names.h>
#include <caback/p12.h>
#include <caback/restore.h>

#include <errno.h>
#include <fcntl.h>
#include <pk11pub.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAX_BYTES (64 * 1024)
#define STATE_HEADER "caback reshare pending"

void caback_reshare_result_clear(CabackReshareResult *result)
{
    g_clear_pointer(&result->sha256, g_free);
    g_clear_pointer(&result->old_sha256, g_free);
    g_clear_pointer(&result->share_files, g_ptr_array_unref);
    g_clear_pointer(&result->waiting, g_ptr_array_unref);
    g_clear_pointer(&result->stale, g_ptr_array_unref);
    caback_backup_report_clear(&result->report);
}

char *caback_reshare_pending_path(const char *archive)
{
    return g_strconcat(archive, ".pending", NULL);
}

char *caback_reshare_state_path(const char *archive)
{
    return g_strconcat(archive, ".pending.state", NULL);
}

/* ---- one reshare of an archive at a time ---- */

/* "@archive.reshare-lock", held (flock, not waited for) while a reshare, a confirmation or an abort
 * of @archive runs, so that two runs never take each other's pending files for their own; removed
 * when the run ends. -1 and CABACK_ERROR_CONFLICT when another run holds it. */
static int reshare_lock(const char *archive, GError **error)
{
    g_autofree char *path = g_strconcat(archive, ".reshare-lock", NULL);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot open the lock file %s: %s", path,
                    e == ELOOP ? "it is a symbolic link" : g_strerror(e));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (st.st_uid != geteuid() && st.st_uid != 0)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "the lock file %s is not a regular file of this user; remove it", path);
        close(fd);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR,
                    e == EWOULDBLOCK ? CABACK_ERROR_CONFLICT : CABACK_ERROR_IO,
                    "another caback reshare of %s is running (%s is locked): %s; nothing was "
                    "changed",
                    archive, path, g_strerror(e));
        close(fd);
        return -1;
    }
    return fd;
}

static void reshare_unlock(const char *archive, int fd)
{
    if (fd < 0)
        return;
    g_autofree char *path = g_strconcat(archive, ".reshare-lock", NULL);
    (void)unlink(path);
    close(fd);
}

/* ---- the state file ---- */

typedef struct {
    char *old_sha256;
    char *new_sha256;
    guint threshold, count;
    char **digests;      /* count entries, index i at [i - 1] */
    gboolean *confirmed; /* count entries */
} State;

static void state_clear(State *st)
{
    g_free(st->old_sha256);
    g_free(st->new_sha256);
    g_strfreev(st->digests);
    g_free(st->confirmed);
    *st = (State){0};
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(State, state_clear)

static gboolean is_hex64(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return FALSE;
    for (const char *p = s; *p != '\0'; p++)
        if (!g_ascii_isxdigit(*p) || g_ascii_isupper(*p))
            return FALSE;
    return TRUE;
}

static char *state_text(const State *st)
{
    GString *out = g_string_new(STATE_HEADER "\n");
    g_string_append_printf(out, "format: 1\nold-sha256: %s\nnew-sha256: %s\nthreshold: %u\n"
                                "count: %u\n",
                           st->old_sha256, st->new_sha256, st->threshold, st->count);
    for (guint i = 0; i < st->count; i++)
        g_string_append_printf(out, "share: %u %s %s\n", i + 1, st->digests[i],
                               st->confirmed[i] ? "confirmed" : "waiting");
    return g_string_free(out, FALSE);
}

static gboolean state_write(const char *path, const State *st, GError **error)
{
    g_autofree char *text = state_text(st);
    return caback_atomic_file_replace(path, text, strlen(text), 0600, (uid_t)-1, (gid_t)-1, TRUE,
                                      error);
}

static gboolean damaged(GError **error, const char *path, guint line, const char *what)
{
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                "the reshare state %s is damaged (line %u: %s); remove the pending reshare with "
                "caback reshare ARCHIVE --abort and start again",
                path, line, what);
    return FALSE;
}

static gboolean parse_uint(const char *line, const char *key, guint max, guint *value)
{
    guint64 v = 0;
    if (!g_str_has_prefix(line, key))
        return FALSE;
    if (!g_ascii_string_to_unsigned(line + strlen(key), 10, 1, max, &v, NULL))
        return FALSE;
    *value = (guint)v;
    return TRUE;
}

static gboolean state_parse(const char *text, const char *path, State *st, GError **error)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    guint n = g_strv_length(lines);
    /* The text ends with a line end: the last element is empty. */
    if (n < 7 || strcmp(lines[0], STATE_HEADER) != 0)
        return damaged(error, path, 1, "not a caback reshare state");
    if (strcmp(lines[1], "format: 1") != 0)
        return damaged(error, path, 2, "unknown format");
    if (!g_str_has_prefix(lines[2], "old-sha256: ") || !is_hex64(lines[2] + 12))
        return damaged(error, path, 3, "old-sha256");
    if (!g_str_has_prefix(lines[3], "new-sha256: ") || !is_hex64(lines[3] + 12))
        return damaged(error, path, 4, "new-sha256");
    st->old_sha256 = g_strdup(lines[2] + 12);
    st->new_sha256 = g_strdup(lines[3] + 12);
    if (!parse_uint(lines[4], "threshold: ", CABACK_CUSTODY_MAX_SHARES, &st->threshold))
        return damaged(error, path, 5, "threshold");
    if (!parse_uint(lines[5], "count: ", CABACK_CUSTODY_MAX_SHARES, &st->count) ||
        st->threshold > st->count)
        return damaged(error, path, 6, "count");
    if (n != 6 + st->count + 1 || *lines[n - 1] != '\0')
        return damaged(error, path, n, "not one share line per share");
    st->digests = g_new0(char *, st->count + 1);
    st->confirmed = g_new0(gboolean, st->count);
    for (guint i = 0; i < st->count; i++) {
        g_autofree char *want = g_strdup_printf("share: %u ", i + 1);
        const char *line = lines[6 + i];
        if (!g_str_has_prefix(line, want))
            return damaged(error, path, 7 + i, "share index");
        const char *rest = line + strlen(want);
        if (strlen(rest) < 65 || rest[64] != ' ')
            return damaged(error, path, 7 + i, "share digest");
        st->digests[i] = g_strndup(rest, 64);
        if (!is_hex64(st->digests[i]))
            return damaged(error, path, 7 + i, "share digest");
        if (strcmp(rest + 65, "confirmed") == 0)
            st->confirmed[i] = TRUE;
        else if (strcmp(rest + 65, "waiting") != 0)
            return damaged(error, path, 7 + i, "share status");
    }
    return TRUE;
}

/* The state of @archive's pending reshare: CABACK_ERROR_NOT_FOUND when there is none. Read with
 * caback_state_read_file's rules (no link, regular, this user's or root's, capped). */
static gboolean state_read(const char *archive, State *st, GError **error)
{
    g_autofree char *path = caback_reshare_state_path(archive);
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;
    if (!caback_state_read_file(path, STATE_MAX_BYTES, &text, NULL, &local)) {
        if (g_error_matches(local, CABACK_ERROR, CABACK_ERROR_NOT_FOUND))
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                        "no reshare of %s is pending (%s does not exist); start one with caback "
                        "reshare %s --verify ...",
                        archive, path, archive);
        else
            g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return state_parse(text, path, st, error);
}

/* ---- putting the pending files in place ---- */

static void result_waiting(CabackReshareResult *r, const State *st)
{
    r->threshold = st->threshold;
    r->count = st->count;
    r->confirmed = 0;
    g_clear_pointer(&r->waiting, g_ptr_array_unref);
    r->waiting = g_ptr_array_new();
    for (guint i = 0; i < st->count; i++) {
        if (st->confirmed[i])
            r->confirmed++;
        else
            g_ptr_array_add(r->waiting, GUINT_TO_POINTER(i + 1));
    }
}

static gboolean move(const char *from, const char *to, GError **error)
{
    if (rename(from, to) != 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot rename %s to %s: %s", from, to,
                    g_strerror(e));
        return FALSE;
    }
    return TRUE;
}

/* The pending archive in place of @archive (unless that happened already: a promotion cut short
 * is finished), then the pending shares in place of their final names, then the state removed.
 * @archive must still be the one the reshare began with (or already the new one). */
static gboolean promote(const char *archive, const State *st, CabackReshareResult *r,
                        GError **error)
{
    g_autofree char *pending = caback_reshare_pending_path(archive);
    g_autofree char *state = caback_reshare_state_path(archive);
    g_autofree char *current = caback_digest_file_sha256_hex(archive, error);
    if (current == NULL)
        return FALSE;
    gboolean moved = strcmp(current, st->new_sha256) == 0;
    if (!moved && strcmp(current, st->old_sha256) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%s changed since the reshare began (SHA-256 %s, the reshare was of %s); "
                    "nothing was put in place: drop the pending reshare with --abort and reshare "
                    "the archive as it is now",
                    archive, current, st->old_sha256);
        return FALSE;
    }
    if (!moved) {
        g_autofree char *pending_sha = caback_digest_file_sha256_hex(pending, error);
        if (pending_sha == NULL)
            return FALSE;
        if (strcmp(pending_sha, st->new_sha256) != 0) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                        "%s is not the archive the reshare wrote (SHA-256 %s, expected %s); "
                        "nothing was put in place: drop it with --abort",
                        pending, pending_sha, st->new_sha256);
            return FALSE;
        }
        if (!move(pending, archive, error))
            return FALSE;
    }
    g_autofree char *dir = g_path_get_dirname(archive);
    caback_sync_folder(dir);
    g_clear_pointer(&r->share_files, g_ptr_array_unref);
    r->share_files = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 1; i <= st->count; i++) {
        g_autofree char *from = caback_share_file_name(pending, i, st->count);
        char *to = caback_share_file_name(archive, i, st->count);
        g_ptr_array_add(r->share_files, to);
        /* Missing: moved by a promotion cut short. */
        if (g_file_test(from, G_FILE_TEST_EXISTS) && !move(from, to, error))
            return FALSE;
    }
    caback_sync_folder(dir);

    /* Old share files the new set did not replace open nothing any more: listed for the user. */
    g_autoptr(GPtrArray) existing = caback_share_files_existing(archive);
    r->stale = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < existing->len; i++) {
        gboolean ours = FALSE;
        for (guint j = 0; j < r->share_files->len && !ours; j++)
            ours = strcmp(existing->pdata[i], r->share_files->pdata[j]) == 0;
        if (!ours)
            g_ptr_array_add(r->stale, g_strdup(existing->pdata[i]));
    }

    /* latest_backup followed the old archive: it follows the new one. */
    g_autofree char *latest = NULL, *latest_sha = NULL;
    g_autofree char *absolute = g_canonicalize_filename(archive, NULL);
    if (caback_state_get_latest_backup(&latest, &latest_sha, NULL) &&
        strcmp(latest, absolute) == 0)
        (void)caback_state_set_latest_backup(archive, st->new_sha256, NULL);

    if (unlink(state) != 0 && errno != ENOENT) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "the new archive and shares are in place, but %s could not be removed: %s; "
                    "remove it",
                    state, g_strerror(e));
        return FALSE;
    }
    caback_sync_folder(dir);
    r->pending = FALSE;
    g_clear_pointer(&r->sha256, g_free);
    r->sha256 = g_strdup(st->new_sha256);
    return TRUE;
}

/* ---- reshare ---- */

/* Remove whatever the pending reshare of @archive left (archive, shares, state). */
static void remove_pending(const char *archive)
{
    g_autofree char *pending = caback_reshare_pending_path(archive);
    g_autofree char *state = caback_reshare_state_path(archive);
    g_autoptr(GPtrArray) shares = caback_share_files_existing(pending);
    for (guint i = 0; i < shares->len; i++)
        (void)unlink(shares->pdata[i]);
    (void)unlink(pending);
    (void)unlink(state);
    g_autofree char *dir = g_path_get_dirname(archive);
    caback_sync_folder(dir);
}

static gboolean cert_in(GPtrArray *certs, GBytes *der)
{
    for (guint i = 0; i < certs->len; i++) {
        const CabackBackupCert *c = certs->pdata[i];
        if (c->cert->derCert.len == g_bytes_get_size(der) &&
            memcmp(c->cert->derCert.data, g_bytes_get_data(der, NULL), c->cert->derCert.len) == 0)
            return TRUE;
    }
    return FALSE;
}

/* The archive *@data, opened with o->password, restored into the empty database @db (its
 * SHA-256 into st->old_sha256); *@file receives the archive's contents. */
static gboolean restore_archive(CabackDb *db, const CabackReshareOptions *o,
                                CabackSecret **data, State *st, CabackP12File **file,
                                GError **error)
{
    g_autoptr(CabackRestorePlan) plan =
        caback_restore_read_data(data, o->archive, o->password, NULL, file, error);
    if (plan == NULL)
        return FALSE;
    /* The digest the reader took of these very bytes. */
    st->old_sha256 = g_strdup(plan->sha256);
    CabackRestoreOptions ro = {.on_conflict = CABACK_RESTORE_ON_CONFLICT_STOP,
                               .allow_weak_keys = TRUE};
    if (!caback_restore_plan(plan, db, &ro, error))
        return FALSE;
    if (plan->conflicts > 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_PKCS12,
                    "%s cannot be restored even into an empty database (%u conflicts within the "
                    "file); caback verify %s says more",
                    o->archive, plan->conflicts, o->archive);
        return FALSE;
    }
    if (!caback_restore_apply(plan, db, error)) {
        g_prefix_error(error, "restoring %s into a temporary database failed: ", o->archive);
        return FALSE;
    }
    return TRUE;
}

/* The new archive holds what the old one held: every certificate and as many keys. Nothing is
 * changed when it does not. */
static gboolean check_same_contents(CabackP12File *file, const CabackBackupResult *res,
                                    const char *archive, GError **error)
{
    GPtrArray *old_certs = caback_p12_file_certs(file);
    for (guint i = 0; i < old_certs->len; i++) {
        const CabackP12Cert *c = old_certs->pdata[i];
        if (!cert_in(res->selection->certs, c->der)) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                        "the certificate \"%s\" of %s would not be in the new archive (it "
                        "is neither a certificate with its key nor in such a certificate's "
                        "chain); nothing was changed",
                        c->attrs.friendly_name != NULL ? c->attrs.friendly_name : "(no name)",
                        archive);
            return FALSE;
        }
    }
    guint old_keys = caback_p12_file_keys(file)->len;
    if (res->selection->keys->len != old_keys) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%s holds %u private keys but the new archive would hold %u (keys "
                    "without a certificate cannot be reshared); nothing was changed",
                    archive, old_keys, res->selection->keys->len);
        return FALSE;
    }
    return TRUE;
}

/* In the temporary database @db: restore the archive, back it up as the pending archive. */
static gboolean reshare_in(CabackDb *db, const CabackReshareOptions *o, CabackSecret **data,
                           State *st, CabackReshareResult *r, GError **error)
{
    g_autoptr(CabackP12File) file = NULL;
    if (!restore_archive(db, o, data, st, &file, error))
        return FALSE;
    g_autoptr(GPtrArray) custodians = caback_custodians_load(
        o->custodian_files, o->custodian_dir, o->force_custodians, NULL, error);
    if (custodians == NULL ||
        !caback_custody_check_split("reshare", o->threshold, custodians->len, NULL, error))
        return FALSE;
    g_autofree char *pending = caback_reshare_pending_path(o->archive);
    CabackBackupRunOptions bo = {.db = db,
                                 .output = pending,
                                 .write = o->write,
                                 .allow_shared_folder = o->allow_shared_folder,
                                 .custody_threshold = o->threshold,
                                 .custodians = custodians,
                                 .not_latest = TRUE};
    CabackBackupResult res = {0};
    gboolean ok = caback_backup_run(&bo, NULL, &res, error);
    if (ok)
        ok = check_same_contents(file, &res, o->archive, error);
    if (ok) {
        st->new_sha256 = g_strdup(res.sha256);
        st->threshold = o->threshold;
        st->count = custodians->len;
        st->digests = g_new0(char *, st->count + 1);
        st->confirmed = g_new0(gboolean, st->count);
        for (guint i = 0; i < st->count; i++)
            st->digests[i] = g_strdup(res.share_digests->pdata[i]);
        r->share_files = g_ptr_array_ref(res.share_files);
        r->report = res.report;
        res.report = (CabackBackupReport){0};
        r->keys = res.selection->keys->len;
        r->certs = res.selection->certs->len;
    }
    caback_backup_result_clear(&res);
    return ok;
}

static gboolean reshare_run_locked(const CabackReshareOptions *o, CabackReshareResult *r,
                                   GError **error);

gboolean caback_reshare_run(const CabackReshareOptions *o, CabackReshareResult *r,
                            GError **error)
{
    *r = (CabackReshareResult){0};
    int lock = reshare_lock(o->archive, error);
    if (lock < 0)
        return FALSE;
    gboolean ok = reshare_run_locked(o, r, error);
    reshare_unlock(o->archive, lock);
    return ok;
}

static gboolean reshare_run_locked(const CabackReshareOptions *o, CabackReshareResult *r,
                                   GError **error)
{
    g_autofree char *pending = caback_reshare_pending_path(o->archive);
    g_autofree char *state_path = caback_reshare_state_path(o->archive);
    g_autoptr(GPtrArray) pending_shares = caback_share_files_existing(pending);
    if (g_file_test(state_path, G_FILE_TEST_EXISTS) || g_file_test(pending, G_FILE_TEST_EXISTS) ||
        pending_shares->len > 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "a reshare of %s is pending (%s); confirm it (caback reshare %s --confirm "
                    "--share ...) or drop it (caback reshare %s --abort) first; nothing was "
                    "changed",
                    o->archive, state_path, o->archive, o->archive);
        return FALSE;
    }
    g_autoptr(CabackSecret) data = caback_p12_load_file(o->archive, "PKCS#12 file", error);
    if (data == NULL)
        return FALSE;

    g_autoptr(GError) local = NULL;
    g_autofree char *pattern = g_strdup_printf("caback-reshare-%d-XXXXXX", (int)getpid());
    g_autofree char *dir = g_dir_make_tmp(pattern, &local);
    if (dir == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot make a private temporary folder for the reshare: %s; set TMPDIR to a "
                    "writable folder",
                    local->message);
        return FALSE;
    }
    g_auto(State) st = {0};
    gboolean ok = FALSE;
    g_autoptr(CabackSecret) db_password = caback_secret_new_temporary_db_password(error);
    if (db_password != NULL && caback_restore_create_throwaway_db(dir, db_password, error)) {
        CabackDb *db = caback_restore_open_throwaway_db(dir, db_password, error);
        if (db != NULL) {
            ok = reshare_in(db, o, &data, &st, r, error);
            if (!caback_db_close(db, ok ? error : NULL))
                ok = FALSE;
        }
    }
    /* The temporary database held the keys (under a password nobody knows any more). */
    if (!caback_remove_folder(dir) && ok) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "the temporary folder %s could not be removed: %s; remove it with rm -r", dir,
                    g_strerror(e));
        ok = FALSE;
    }
    if (ok)
        ok = state_write(state_path, &st, error);
    if (!ok) {
        /* Only what this run wrote: pending files of an earlier run were refused above. */
        remove_pending(o->archive);
        caback_reshare_result_clear(r);
        return FALSE;
    }
    r->old_sha256 = g_strdup(st.old_sha256);
    r->sha256 = g_strdup(st.new_sha256);
    result_waiting(r, &st);
    if (o->verify) {
        r->pending = TRUE;
        return TRUE;
    }
    NSSInitContext *nss = caback_nss_nodb_open(error);
    if (nss == NULL)
        return FALSE;
    ok = promote(o->archive, &st, r, error);
    if (!caback_nss_nodb_close(nss, ok ? error : NULL))
        ok = FALSE;
    return ok;
}

static gboolean confirm_locked(const char *archive, GPtrArray *shares, CabackReshareResult *r,
                               GError **error);

gboolean caback_reshare_confirm(const char *archive, GPtrArray *shares,
                                CabackReshareResult *r, GError **error)
{
    *r = (CabackReshareResult){0};
    int lock = reshare_lock(archive, error);
    if (lock < 0)
        return FALSE;
    gboolean ok = confirm_locked(archive, shares, r, error);
    reshare_unlock(archive, lock);
    return ok;
}

static gboolean confirm_locked(const char *archive, GPtrArray *shares, CabackReshareResult *r,
                               GError **error)
{
    g_auto(State) st = {0};
    if (!state_read(archive, &st, error))
        return FALSE;
    g_autofree char *state_path = caback_reshare_state_path(archive);
    for (guint i = 0; i < shares->len; i++) {
        const CabackShare *share = shares->pdata[i];
        const char *source = share->source != NULL ? share->source : "(unnamed)";
        if (share->index < 1 || share->index > st.count || share->count != st.count ||
            share->threshold != st.threshold) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                        "share %u of %u (%s) is not one of the %u new shares of %s; give the "
                        "shares that caback share-open reads from its pending share files",
                        share->index, share->count, source, st.count, archive);
            return FALSE;
        }
        g_autofree char *digest = caback_share_text_digest(share);
        if (digest == NULL || strcmp(digest, st.digests[share->index - 1]) != 0) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                        "share %u (%s) is not the new share %u of %s (mistyped, damaged, or of "
                        "another reshare); nothing was recorded",
                        share->index, source, share->index, archive);
            return FALSE;
        }
    }
    /* Checked before anything is recorded: a confirmation of a reshare that can no longer be
     * put in place is refused. */
    g_autofree char *current = caback_digest_file_sha256_hex(archive, error);
    if (current == NULL)
        return FALSE;
    if (strcmp(current, st.old_sha256) != 0 && strcmp(current, st.new_sha256) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%s changed since the reshare began (SHA-256 %s, the reshare was of %s); "
                    "nothing was recorded: drop the pending reshare with --abort",
                    archive, current, st.old_sha256);
        return FALSE;
    }
    for (guint i = 0; i < shares->len; i++)
        st.confirmed[((const CabackShare *)shares->pdata[i])->index - 1] = TRUE;
    if (!state_write(state_path, &st, error))
        return FALSE;
    r->old_sha256 = g_strdup(st.old_sha256);
    r->sha256 = g_strdup(st.new_sha256);
    result_waiting(r, &st);
    if (r->waiting->len > 0) {
        r->pending = TRUE;
        g_autofree char *pending = caback_reshare_pending_path(archive);
        r->share_files = g_ptr_array_new_with_free_func(g_free);
        for (guint i = 1; i <= st.count; i++)
            g_ptr_array_add(r->share_files, caback_share_file_name(pending, i, st.count));
        return TRUE;
    }
    return promote(archive, &st, r, error);
}

gboolean caback_reshare_abort(const char *archive, GError **error)
{
    g_autofree char *pending = caback_reshare_pending_path(archive);
    g_autofree char *state_path = caback_reshare_state_path(archive);
    g_autoptr(GPtrArray) shares = caback_share_files_existing(pending);
    if (!g_file_test(state_path, G_FILE_TEST_EXISTS) && !g_file_test(pending, G_FILE_TEST_EXISTS) &&
        shares->len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                    "no reshare of %s is pending; nothing was removed", archive);
        return FALSE;
    }
    int lock = reshare_lock(archive, error);
    if (lock < 0)
        return FALSE;
    remove_pending(archive);
    reshare_unlock(archive, lock);
    return TRUE;
}

gboolean caback_reshare_confirm_files(const char *archive, const char *const *files,
                                      gboolean prompt, CabackDb *db, CabackReshareResult *result,
                                      GError **error)
{
    g_autoptr(GPtrArray) shares = caback_share_array_new();
    for (const char *const *f = files; f != NULL && *f != NULL; f++) {
        CabackShare *share = caback_share_read(*f, db, error);
        if (share == NULL)
            return FALSE;
        if (share->source == NULL)
            share->source = caback_name_escape(*f, NULL);
        g_ptr_array_add(shares, share);
    }
    if (prompt) {
        g_autofree char *what = g_strdup_printf("new share of %s", archive);
        g_autoptr(CabackSecret) text = caback_password_prompt(what, error);
        CabackShare *share = text != NULL ? caback_share_from_text(text->data, text->len,
                                                                   "typed at the prompt", error)
                                          : NULL;
        if (share == NULL)
            return FALSE;
        g_ptr_array_add(shares, share);
    }
    return caback_reshare_confirm(archive, shares, result, error);
}
