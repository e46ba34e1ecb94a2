/* The run log (text and JSON lines), the state folder and the latest_backup pointer. */
#include "config.h"

#include <caback/atomic-file.h>
#include <caback/digest.h>
#include <caback/error.h>
#include <caback/json.h>
#include <caback/keyid.h>
#include <caback/log.h>
#include <caback/names.h>
#include <caback/secret.h>

#include <errno.h>
#include <pwd.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_NAME "caback.log"
#define LATEST_NAME "latest_backup"

/* ---- state folder ---- */

char *caback_state_dir_for(const char *state_env, gboolean is_root, const char *xdg_state_home,
                           const char *home)
{
    if (state_env != NULL && *state_env != '\0')
        return g_strdup(state_env);
    if (is_root)
        return g_strdup("/var/lib/caback");
    /* The XDG base directory specification says relative values are invalid and ignored. */
    if (xdg_state_home != NULL && g_path_is_absolute(xdg_state_home))
        return g_build_filename(xdg_state_home, "caback", NULL);
    if (home != NULL && *home != '\0')
        return g_build_filename(home, ".local", "state", "caback", NULL);
    return NULL;
}

static gboolean owned_by_user_or_root(uid_t uid)
{
    return uid == geteuid() || uid == 0;
}

/* "user NAME (uid N)" for @uid. Caller frees. */
static char *user_text(uid_t uid)
{
    g_autofree char *name = NULL;
    char buf[4096];
    struct passwd pw, *found = NULL;
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != NULL)
        name = g_strdup(found->pw_name);
    return name != NULL ? g_strdup_printf("user %s (uid %ld)", name, (long)uid)
                        : g_strdup_printf("uid %ld", (long)uid);
}

/* What a file that is not a regular file is, for messages. */
static const char *file_kind(mode_t mode)
{
    return S_ISLNK(mode)    ? "a symbolic link"
           : S_ISDIR(mode)  ? "a folder"
           : S_ISFIFO(mode) ? "a FIFO (named pipe)"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "not a regular file";
}

/* The state folder @dir, opened without following a link, must be a folder owned by this user
 * or root that no one else may write: another user who could write there could plant the
 * latest_backup pointer that "restore automatic" follows, or a log link. */
static gboolean check_state_dir(const char *dir, GError **error)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        int e = errno;
        if (lstat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "caback's state folder %s is %s, not a folder; caback keeps its log and "
                        "the latest_backup pointer only in a real folder: set CABACK_STATE_DIR "
                        "to the folder itself",
                        dir, file_kind(st.st_mode));
        else
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "cannot open caback's state folder %s: %s", dir, g_strerror(e));
        return FALSE;
    }
    int r = fstat(fd, &st);
    int e = errno;
    close(fd);
    if (r != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot check caback's state folder %s: %s",
                    dir, g_strerror(e));
        return FALSE;
    }
    if (!owned_by_user_or_root(st.st_uid)) {
        g_autofree char *owner = user_text(st.st_uid);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "caback's state folder %s belongs to %s, not to you or root; its "
                    "latest_backup pointer and log could be planted by that user: set "
                    "CABACK_STATE_DIR to a folder of your own (mode 0700)",
                    dir, owner);
        return FALSE;
    }
    if ((st.st_mode & 022) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "caback's state folder %s is writable by %s (mode %04o); another user could "
                    "plant its latest_backup pointer or log: run chmod 700 %s, or set "
                    "CABACK_STATE_DIR to a private folder",
                    dir, (st.st_mode & 002) != 0 ? "everyone" : "its group",
                    (unsigned)(st.st_mode & 07777), dir);
        return FALSE;
    }
    return TRUE;
}

char *caback_state_dir(GError **error)
{
    const char *home = g_getenv("HOME");
    if (home == NULL || *home == '\0')
        home = g_get_home_dir();
    g_autofree char *dir = caback_state_dir_for(g_getenv("CABACK_STATE_DIR"), geteuid() == 0,
                                                g_getenv("XDG_STATE_HOME"), home);
    if (dir == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot choose caback's state folder: there is no home folder; set "
                    "CABACK_STATE_DIR to a folder for the log and the latest_backup pointer");
        return NULL;
    }
    struct stat st;
    /* A link is refused by check_state_dir; creating "through" it would be creating elsewhere. */
    if (lstat(dir, &st) != 0 &&
        (g_mkdir_with_parents(dir, 0700) != 0 || !g_file_test(dir, G_FILE_TEST_IS_DIR))) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot create caback's state folder %s: %s; create it (mode 0700) or set "
                    "CABACK_STATE_DIR to another folder",
                    dir, g_strerror(e));
        return NULL;
    }
    if (!check_state_dir(dir, error))
        return NULL;
    return g_steal_pointer(&dir);
}

char *caback_log_default_path(GError **error)
{
    g_autofree char *dir = caback_state_dir(error);
    return dir != NULL ? g_build_filename(dir, LOG_NAME, NULL) : NULL;
}

char *caback_log_json_path(const char *log_path)
{
    return g_strconcat(log_path, ".jsonl", NULL);
}

/* ---- records ---- */

typedef struct {
    char *nickname;
    gboolean known; /* id is the key's ID */
    CabackKeyId id; /* written in the certutil -K and the CS.cfg form as its token holds it */
} LogKey;

struct CabackLogRecord {
    char *verb;
    GPtrArray *command; /* words */
    char *database;
    char *token;
    char *file;
    char *sha256;
    char *signature; /* "checked (signer ...)", "none", "skipped (...)", or NULL */
    char *integrity; /* the archive's integrity mode, or NULL */
    guint custody_threshold, custody_count; /* M of N, 0 when not under custody */
    char **custodians; /* fingerprints, or NULL */
    GPtrArray *keys;  /* LogKey: the first CABACK_LOG_MAX_KEYS keys */
    guint keys_total; /* every key the run handled, listed or not */
    GPtrArray *warnings;
    GDateTime *time;
};

static void log_key_free(LogKey *key)
{
    g_free(key->nickname);
    g_free(key);
}

CabackLogRecord *caback_log_record_new(const char *verb)
{
    CabackLogRecord *record = g_new0(CabackLogRecord, 1);

    record->verb = g_strdup(verb);
    record->command = g_ptr_array_new_with_free_func(g_free);
    record->keys = g_ptr_array_new_with_free_func((GDestroyNotify)log_key_free);
    record->warnings = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(record->command, g_strdup("caback"));
    g_ptr_array_add(record->command, g_strdup(verb));
    return record;
}

void caback_log_record_free(CabackLogRecord *record)
{
    if (record == NULL)
        return;
    g_free(record->verb);
    g_ptr_array_unref(record->command);
    g_free(record->database);
    g_free(record->token);
    g_free(record->file);
    g_free(record->sha256);
    g_free(record->signature);
    g_free(record->integrity);
    g_strfreev(record->custodians);
    g_ptr_array_unref(record->keys);
    g_ptr_array_unref(record->warnings);
    if (record->time != NULL)
        g_date_time_unref(record->time);
    g_free(record);
}

void caback_log_record_add_arg(CabackLogRecord *record, const char *arg)
{
    g_ptr_array_add(record->command, g_strdup(arg != NULL ? arg : ""));
}

void caback_log_record_add_option(CabackLogRecord *record, const char *option, const char *value)
{
    caback_log_record_add_arg(record, option);
    /* --password-env and --p12-password-env take a variable's name; what is not a name may be
     * the password itself, given by mistake, and is never written. */
    if (value != NULL && g_str_has_suffix(option, "-env") && !caback_env_name_valid(value))
        caback_log_record_add_arg(record, "(hidden: not a variable name)");
    else if (value != NULL)
        caback_log_record_add_arg(record, value);
}

void caback_log_record_set_database(CabackLogRecord *record, const char *dir, const char *token)
{
    g_free(record->database);
    g_free(record->token);
    record->database = g_strdup(dir);
    record->token = g_strdup(token);
}

void caback_log_record_set_file(CabackLogRecord *record, const char *path)
{
    g_free(record->file);
    record->file = g_strdup(path);
}

void caback_log_record_set_file_sha256(CabackLogRecord *record, const char *sha256)
{
    g_free(record->sha256);
    record->sha256 = g_strdup(sha256);
}

void caback_log_record_set_signature(CabackLogRecord *record, const char *status)
{
    g_free(record->signature);
    record->signature = g_strdup(status);
}

void caback_log_record_set_custody(CabackLogRecord *record, guint threshold, guint count,
                                   const char *const *custodians)
{
    record->custody_threshold = threshold;
    record->custody_count = count;
    g_strfreev(record->custodians);
    record->custodians = g_strdupv((char **)custodians);
}

void caback_log_record_set_integrity(CabackLogRecord *record, const char *integrity)
{
    g_free(record->integrity);
    record->integrity = g_strdup(integrity);
}

void caback_log_record_add_key(CabackLogRecord *record, const char *nickname,
                               const CabackKeyId *id)
{
    if (record->keys_total < G_MAXUINT)
        record->keys_total++;
    if (record->keys->len >= CABACK_LOG_MAX_KEYS)
        return;
    LogKey *key = g_new0(LogKey, 1);

    key->nickname = g_strdup(nickname);
    key->known = id != NULL;
    if (id != NULL)
        key->id = *id;
    g_ptr_array_add(record->keys, key);
}

void caback_log_record_add_warning(CabackLogRecord *record, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    g_ptr_array_add(record->warnings, g_strdup_vprintf(format, args));
    va_end(args);
}

void caback_log_record_set_time(CabackLogRecord *record, GDateTime *time)
{
    if (record->time != NULL)
        g_date_time_unref(record->time);
    record->time = g_date_time_to_utc(time);
}

/* @value as the log keeps it: as it is, except that invalid UTF-8 and bidi controls are escaped
 * ("\\xff", "\\u202e", names.h), so that the JSON twin is valid and no line can pass for
 * another. No password is ever given to a record, so there is nothing to search for or hide. NULL
 * stays NULL. */
static char *clean(CabackLogRecord *record, const char *value)
{
    (void)record;
    return caback_name_escape_for_log(value);
}

/* A word of the command as a shell would need it. */
static char *quote_word(const char *word)
{
    if (*word == '\0')
        return g_strdup("''");
    for (const char *p = word; *p != '\0'; p++)
        if (!g_ascii_isalnum(*p) && strchr("_@%+=:,./-", *p) == NULL)
            return g_shell_quote(word);
    return g_strdup(word);
}

static char *command_text(CabackLogRecord *record)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < record->command->len; i++) {
        g_autofree char *clean_word = clean(record, record->command->pdata[i]);
        g_autofree char *word = quote_word(clean_word);
        if (i > 0)
            g_string_append_c(s, ' ');
        g_string_append(s, word);
    }
    return g_string_free(s, FALSE);
}

static const char *result_word(CabackLogRecord *record, const GError *outcome)
{
    if (outcome != NULL)
        return "ERROR";
    return record->warnings->len > 0 ? "WARNING" : "OK";
}

/* The administrator behind sudo, when there is one: the log should name the person, not only
 * root. Informational (the environment can say anything), so it is recorded beside the user. */
static const char *sudo_user(void)
{
    const char *s = g_getenv("SUDO_USER");
    return s != NULL && *s != '\0' && g_strcmp0(s, g_get_user_name()) != 0 ? s : NULL;
}

static GDateTime *record_time(CabackLogRecord *record)
{
    if (record->time == NULL)
        record->time = g_date_time_new_now_utc();
    return record->time;
}

/* One "    label: value" line of the text form; control characters cannot break the block
 * apart: line ends continue on an indented line, other control characters become '?'. */
static void text_line(GString *out, CabackLogRecord *record, const char *label, const char *value)
{
    g_autofree char *v = clean(record, value);

    g_string_append_printf(out, "    %s: ", label);
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '\n')
            g_string_append(out, "\n        ");
        else if ((unsigned char)*p < 0x20 || *p == 0x7f)
            g_string_append_c(out, '?');
        else
            g_string_append_c(out, *p);
    }
    g_string_append_c(out, '\n');
}

char *caback_log_record_format_text(CabackLogRecord *record, const GError *outcome)
{
    GString *out = g_string_new(NULL);
    g_autofree char *when = g_date_time_format(record_time(record), "%Y-%m-%dT%H:%M:%SZ");
    g_autofree char *command = command_text(record);
    g_autofree char *user = clean(record, g_get_user_name());
    g_autofree char *host = clean(record, g_get_host_name());

    g_string_append_printf(out, "%s %s %s\n", when, record->verb, result_word(record, outcome));
    g_autofree char *via = clean(record, sudo_user());
    g_string_append_printf(out, "    user: %s%s%s%s  host: %s\n", user,
                           via != NULL ? " (sudo by " : "", via != NULL ? via : "",
                           via != NULL ? ")" : "", host);
    text_line(out, record, "command", command);
    if (record->database != NULL) {
        g_autofree char *db =
            record->token != NULL
                ? g_strdup_printf("%s (token %s)", record->database, record->token)
                : g_strdup(record->database);
        text_line(out, record, "database", db);
    }
    if (record->file != NULL) {
        text_line(out, record, "file", record->file);
        text_line(out, record, "sha256", record->sha256 != NULL ? record->sha256 : "(unknown)");
    }
    if (record->integrity != NULL)
        text_line(out, record, "integrity", record->integrity);
    if (record->signature != NULL)
        text_line(out, record, "signature", record->signature);
    if (record->custody_count > 0) {
        g_autofree char *custody = g_strdup_printf("%u of %u shares", record->custody_threshold,
                                                   record->custody_count);
        text_line(out, record, "custody", custody);
        for (guint i = 0; record->custodians != NULL && record->custodians[i] != NULL; i++) {
            g_autofree char *line = g_strdup_printf("share %u  sha256 %s", i + 1,
                                                    record->custodians[i]);
            text_line(out, record, "custodian", line);
        }
    }
    for (guint i = 0; i < record->keys->len; i++) {
        const LogKey *key = record->keys->pdata[i];
        g_autofree char *nss_id = key->known ? caback_keyid_to_token_hex(&key->id) : NULL;
        g_autofree char *dogtag_id = key->known ? caback_keyid_to_token_dogtag(&key->id) : NULL;
        g_autofree char *text = g_strdup_printf(
            "%s%s%s  nss %s  dogtag %s", key->nickname != NULL ? "\"" : "",
            key->nickname != NULL ? key->nickname : "(no certificate)",
            key->nickname != NULL ? "\"" : "", nss_id != NULL ? nss_id : "-",
            dogtag_id != NULL ? dogtag_id : "-");
        text_line(out, record, "key", text);
    }
    if (record->keys_total > record->keys->len) {
        g_autofree char *all = g_strdup_printf("%u in all; the first %u are listed above",
                                               record->keys_total, record->keys->len);
        text_line(out, record, "keys", all);
    }
    for (guint i = 0; i < record->warnings->len; i++)
        text_line(out, record, "WARNING", record->warnings->pdata[i]);
    if (outcome != NULL)
        text_line(out, record, "ERROR", outcome->message);
    g_string_append_c(out, '\n');
    return g_string_free(out, FALSE);
}

static void json_member(GString *out, CabackLogRecord *record, const char *key, const char *value)
{
    char last = out->str[out->len - 1];
    if (last != '{' && last != '[')
        g_string_append_c(out, ',');
    if (key != NULL)
        g_string_append_printf(out, "\"%s\":", key);
    if (value == NULL) {
        g_string_append(out, "null");
        return;
    }
    g_autofree char *v = clean(record, value);
    g_autofree char *escaped = caback_json_escape(v);
    g_string_append_printf(out, "\"%s\"", escaped);
}

char *caback_log_record_format_json(CabackLogRecord *record, const GError *outcome)
{
    GString *out = g_string_new("{");
    g_autofree char *when = g_date_time_format(record_time(record), "%Y-%m-%dT%H:%M:%SZ");
    g_autofree char *command = command_text(record);

    json_member(out, record, "time", when);
    json_member(out, record, "user", g_get_user_name());
    json_member(out, record, "sudo_user", sudo_user());
    json_member(out, record, "host", g_get_host_name());
    json_member(out, record, "verb", record->verb);
    json_member(out, record, "command", command);
    json_member(out, record, "database", record->database);
    json_member(out, record, "token", record->token);
    json_member(out, record, "file", record->file);
    json_member(out, record, "sha256", record->sha256);
    if (record->integrity != NULL)
        json_member(out, record, "integrity", record->integrity);
    if (record->signature != NULL)
        json_member(out, record, "signature", record->signature);
    if (record->custody_count > 0) {
        g_string_append_printf(out, ",\"custody\":{\"threshold\":%u,\"count\":%u",
                               record->custody_threshold, record->custody_count);
        if (record->custodians != NULL) {
            g_string_append(out, ",\"custodians\":[");
            for (guint i = 0; record->custodians[i] != NULL; i++)
                json_member(out, record, NULL, record->custodians[i]);
            g_string_append_c(out, ']');
        }
        g_string_append_c(out, '}');
    }
    g_string_append(out, ",\"keys\":[");
    for (guint i = 0; i < record->keys->len; i++) {
        const LogKey *key = record->keys->pdata[i];
        g_autofree char *nss_id = key->known ? caback_keyid_to_token_hex(&key->id) : NULL;
        g_autofree char *dogtag_id = key->known ? caback_keyid_to_token_dogtag(&key->id) : NULL;
        g_string_append(out, i > 0 ? ",{" : "{");
        json_member(out, record, "nickname", key->nickname);
        json_member(out, record, "nss_id", nss_id);
        json_member(out, record, "dogtag_id", dogtag_id);
        g_string_append_c(out, '}');
    }
    g_string_append_printf(out, "],\"keys_total\":%u", record->keys_total);
    json_member(out, record, "result", result_word(record, outcome));
    g_string_append(out, ",\"warnings\":[");
    for (guint i = 0; i < record->warnings->len; i++)
        json_member(out, record, NULL, record->warnings->pdata[i]);
    g_string_append_c(out, ']');
    json_member(out, record, "error", outcome != NULL ? outcome->message : NULL);
    json_member(out, record, "caback_version", PACKAGE_VERSION);
    g_string_append(out, "}\n");
    return g_string_free(out, FALSE);
}

/* Why the file @path, whose status is @st, may not be caback's log (NULL when it may). */
static char *log_refusal(const char *path, const struct stat *st)
{
    if (S_ISLNK(st->st_mode))
        return g_strdup_printf(
            "the log %s is a symbolic link; caback writes its log only to a regular file of its "
            "own (a link could point it at any file): remove the link, or give the real file "
            "with --log FILE",
            path);
    if (!S_ISREG(st->st_mode))
        return g_strdup_printf("the log %s is %s, not a regular file; choose a regular file with "
                               "--log FILE",
                               path, file_kind(st->st_mode));
    if (!owned_by_user_or_root(st->st_uid)) {
        g_autofree char *owner = user_text(st->st_uid);
        return g_strdup_printf("the log %s belongs to %s, not to you or root; caback does not "
                               "write into another user's file: choose your own log with --log "
                               "FILE",
                               path, owner);
    }
    return NULL;
}

gboolean caback_log_check(const char *log_path, GError **error)
{
    g_autofree char *default_path = NULL;
    if (log_path == NULL && (log_path = default_path = caback_log_default_path(error)) == NULL)
        return FALSE;
    g_autofree char *json_path = caback_log_json_path(log_path);
    const char *const paths[] = {log_path, json_path};
    for (gsize i = 0; i < G_N_ELEMENTS(paths); i++) {
        struct stat st;
        if (lstat(paths[i], &st) != 0)
            continue; /* made when the record is written, and checked then */
        g_autofree char *why = log_refusal(paths[i], &st);
        if (why != NULL) {
            g_set_error_literal(error, CABACK_ERROR, CABACK_ERROR_IO, why);
            return FALSE;
        }
    }
    return TRUE;
}

/* Open the log @path for appending, creating it (mode 0600) when it does not exist. Never
 * follows a link, never blocks (a FIFO without a reader fails, one with a reader is refused),
 * and keeps the descriptor only for a regular file of this user or root. */
static int log_open(const char *path, GError **error)
{
    const int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK;
    struct stat st;
    /* Looked at first, so that a device or a FIFO is not even opened. */
    if (lstat(path, &st) == 0) {
        g_autofree char *why = log_refusal(path, &st);
        if (why != NULL) {
            g_set_error_literal(error, CABACK_ERROR, CABACK_ERROR_IO, why);
            return -1;
        }
    }
    gboolean created = TRUE;
    int fd = open(path, flags | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno == EEXIST) {
        created = FALSE;
        fd = open(path, flags);
    }
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP || e == ENXIO)
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "the log %s is %s, not a regular file; choose a regular file with --log "
                        "FILE",
                        path, e == ELOOP ? "a symbolic link" : "a FIFO or a device");
        else
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "cannot open the log %s: %s; check that its folder exists and is "
                        "writable, or choose another log with --log FILE",
                        path, g_strerror(e));
        return -1;
    }
    /* What was opened is what counts: the name may have changed since lstat. */
    g_autofree char *why = NULL;
    if (fstat(fd, &st) != 0)
        why = g_strdup_printf("cannot check the log %s: %s", path, g_strerror(errno));
    else
        why = log_refusal(path, &st);
    /* The umask may have taken bits from 0600; a file caback made is made private and
     * writable. An existing log keeps the mode its owner gave it. */
    if (why == NULL && created && (st.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0)
        why = g_strdup_printf("cannot make the log %s private (mode 0600): %s", path,
                              g_strerror(errno));
    if (why != NULL) {
        close(fd);
        g_set_error_literal(error, CABACK_ERROR, CABACK_ERROR_IO, why);
        return -1;
    }
    return fd;
}

gboolean caback_log_append(const char *path, const char *text, gsize len, GError **error)
{
    int fd = log_open(path, error);
    if (fd < 0)
        return FALSE;
    /* One write() per record: with O_APPEND the kernel places it at the end as a whole, so two
     * runs writing at once cannot mix their lines. A short write is reported, not continued. */
    ssize_t n;
    do
        n = write(fd, text, len);
    while (n < 0 && errno == EINTR);
    int e = n < 0 ? errno : ENOSPC;
    gboolean synced = n == (ssize_t)len && fsync(fd) == 0;
    if (n == (ssize_t)len && !synced)
        e = errno;
    if (close(fd) != 0 && synced) {
        synced = FALSE;
        e = errno;
    }
    if (!synced) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot write the log %s: %s", path,
                    g_strerror(e));
        return FALSE;
    }
    return TRUE;
}

gboolean caback_state_read_file(const char *path, gsize max, char **contents, gsize *length,
                                GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, e == ENOENT ? CABACK_ERROR_NOT_FOUND : CABACK_ERROR_IO,
                    "cannot read %s: %s", path,
                    e == ELOOP ? "it is a symbolic link, which caback does not follow here"
                               : g_strerror(e));
        return FALSE;
    }
    struct stat st;
    g_autofree char *why = NULL;
    if (fstat(fd, &st) != 0)
        why = g_strdup(g_strerror(errno));
    else if (!S_ISREG(st.st_mode))
        why = g_strdup_printf("it is %s, not a regular file", file_kind(st.st_mode));
    else if (!owned_by_user_or_root(st.st_uid)) {
        g_autofree char *owner = user_text(st.st_uid);
        why = g_strdup_printf("it belongs to %s, not to you or root, so anything in it could "
                              "have been planted by that user",
                              owner);
    } else if ((guint64)st.st_size > max)
        why = g_strdup_printf("it holds %" G_GUINT64_FORMAT " bytes, more than the %" G_GSIZE_FORMAT
                              " bytes expected here",
                              (guint64)st.st_size, max);
    if (why != NULL) {
        close(fd);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "refusing to read %s: %s", path, why);
        return FALSE;
    }
    gsize size = (gsize)st.st_size, got = 0;
    char *buf = g_malloc(size + 1);
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            g_free(buf);
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot read %s: %s", path,
                        g_strerror(e));
            return FALSE;
        }
        if (n == 0)
            break; /* the file shrank: what is there is what is read */
        got += (gsize)n;
    }
    close(fd);
    buf[got] = '\0';
    *contents = buf;
    if (length != NULL)
        *length = got;
    return TRUE;
}

gboolean caback_log_record_finish(CabackLogRecord *record, const GError *outcome,
                                  const char *log_path, GError **error)
{
    /* Owned from here on, freed on every path. */
    g_autoptr(CabackLogRecord) r = g_steal_pointer(&record);
    g_autofree char *default_path = NULL;

    if (r->file != NULL && r->sha256 == NULL && g_file_test(r->file, G_FILE_TEST_IS_REGULAR)) {
        g_autoptr(GError) local = NULL;
        r->sha256 = caback_digest_file_sha256_hex(r->file, &local);
        if (r->sha256 == NULL)
            caback_log_record_add_warning(r, "cannot compute the SHA-256 of %s: %s", r->file,
                                          local->message);
    }

    if (log_path == NULL) {
        default_path = caback_log_default_path(error);
        if (default_path == NULL)
            return FALSE;
        log_path = default_path;
    }
    g_autofree char *json_path = caback_log_json_path(log_path);
    g_autofree char *text = caback_log_record_format_text(r, outcome);
    g_autofree char *json = caback_log_record_format_json(r, outcome);

    g_autoptr(GError) text_error = NULL;
    gboolean text_ok = caback_log_append(log_path, text, strlen(text), &text_error);
    /* The JSON twin is still attempted, so that one broken file does not lose the record. */
    gboolean json_ok = caback_log_append(json_path, json, strlen(json), text_ok ? error : NULL);
    if (!text_ok)
        g_propagate_error(error, g_steal_pointer(&text_error));
    return text_ok && json_ok;
}

/* ---- latest_backup ---- */

static gboolean is_sha256_hex(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return FALSE;
    for (const char *p = s; *p != '\0'; p++)
        if (!g_ascii_isxdigit(*p))
            return FALSE;
    return TRUE;
}

gboolean caback_state_set_latest_backup(const char *path, const char *sha256, GError **error)
{
    if (strpbrk(path, "\n\r") != NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "cannot record %s as the latest backup: its name contains a line break; "
                    "rename the file",
                    path);
        return FALSE;
    }
    if (!is_sha256_hex(sha256)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "cannot record %s as the latest backup: \"%s\" is not a SHA-256 digest", path,
                    sha256 != NULL ? sha256 : "(null)");
        return FALSE;
    }
    g_autofree char *dir = caback_state_dir(error);
    if (dir == NULL)
        return FALSE;
    g_autofree char *absolute = g_canonicalize_filename(path, NULL);
    g_autofree char *lower = g_ascii_strdown(sha256, -1);
    g_autofree char *target = g_build_filename(dir, LATEST_NAME, NULL);
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *recorded = g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
    g_autofree char *contents = g_strdup_printf(
        "# caback: the newest verified backup, written by \"caback backup\" and read by "
        "\"caback restore automatic\" and \"caback verify automatic\"\n"
        "path=%s\n"
        "sha256=%s\n"
        "recorded=%s\n",
        absolute, lower, recorded);
    return caback_atomic_file_replace(target, contents, strlen(contents), 0600, (uid_t)-1,
                                      (gid_t)-1, TRUE, error);
}

gboolean caback_state_parse_latest_backup(const char *contents, const char *where, char **path,
                                          char **sha256, GError **error)
{
    return caback_state_parse_latest_backup_full(contents, where, path, sha256, NULL, error);
}

gboolean caback_state_parse_latest_backup_full(const char *contents, const char *where,
                                               char **path, char **sha256, gboolean *is_signed,
                                               GError **error)
{
    g_auto(GStrv) lines = g_strsplit(contents, "\n", -1);
    g_autofree char *p = NULL;
    g_autofree char *s = NULL;
    gboolean sig = FALSE;

    for (char **line = lines; *line != NULL; line++) {
        g_strchomp(*line);
        if (**line == '\0' || **line == '#')
            continue;
        if (g_str_has_prefix(*line, "path=") && p == NULL)
            p = g_strdup(*line + 5);
        else if (g_str_has_prefix(*line, "sha256=") && s == NULL)
            s = g_ascii_strdown(*line + 7, -1);
        else if (strcmp(*line, "signed=yes") == 0)
            sig = TRUE;
    }
    if (p == NULL || !g_path_is_absolute(p) || !is_sha256_hex(s)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%s is damaged (it needs an absolute path= line and a sha256= line of 64 hex "
                    "digits); run a new backup to rewrite it, or give the backup file explicitly",
                    where);
        return FALSE;
    }
    *path = g_steal_pointer(&p);
    *sha256 = g_steal_pointer(&s);
    if (is_signed != NULL)
        *is_signed = sig;
    return TRUE;
}

/* The contents of latest_backup, and its name in *@target (caller frees both). */
static char *read_latest_backup(char **target, GError **error)
{
    g_autofree char *dir = caback_state_dir(error);
    if (dir == NULL)
        return NULL;
    *target = g_build_filename(dir, LATEST_NAME, NULL);
    char *contents = NULL;
    g_autoptr(GError) local = NULL;

    /* The pointer is a few lines; 64 KiB leaves room for any path. */
    if (!caback_state_read_file(*target, 64 * 1024, &contents, NULL, &local)) {
        if (g_error_matches(local, CABACK_ERROR, CABACK_ERROR_NOT_FOUND))
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                        "no backup has been recorded yet: %s does not exist (caback backup "
                        "writes it after each verified backup); give the backup file "
                        "explicitly",
                        *target);
        else
            g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return contents;
}

gboolean caback_state_get_latest_backup(char **path, char **sha256, GError **error)
{
    g_autofree char *target = NULL;
    g_autofree char *contents = read_latest_backup(&target, error);
    if (contents == NULL)
        return FALSE;
    return caback_state_parse_latest_backup(contents, target, path, sha256, error);
}

gboolean caback_state_get_latest_backup_full(char **path, char **sha256, gboolean *is_signed,
                                             GError **error)
{
    g_autofree char *target = NULL;
    g_autofree char *contents = read_latest_backup(&target, error);
    if (contents == NULL)
        return FALSE;
    return caback_state_parse_latest_backup_full(contents, target, path, sha256, is_signed,
                                                 error);
}

gboolean caback_state_set_latest_backup_signed(const char *path, const char *sha256,
                                               gboolean is_signed, GError **error)
{
    if (!is_signed)
        return caback_state_set_latest_backup(path, sha256, error);
    /* The record stays as the backup wrote it (its recorded= time too); only the mark is
     * added, and only to the record of this very file. */
    g_autofree char *target = NULL;
    g_autofree char *contents = read_latest_backup(&target, error);
    g_autofree char *p = NULL, *s = NULL;
    gboolean already = FALSE;
    if (contents == NULL ||
        !caback_state_parse_latest_backup_full(contents, target, &p, &s, &already, error))
        return FALSE;
    g_autofree char *absolute = g_canonicalize_filename(path, NULL);
    if (strcmp(p, absolute) != 0 || g_ascii_strcasecmp(s, sha256) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%s records %s (SHA-256 %s), not %s (SHA-256 %s); it was not marked as "
                    "signed",
                    target, p, s, absolute, sha256);
        return FALSE;
    }
    if (already)
        return TRUE;
    g_autofree char *marked = g_strdup_printf("%s%ssigned=yes\n", contents,
                                              g_str_has_suffix(contents, "\n") ? "" : "\n");
    return caback_atomic_file_replace(target, marked, strlen(marked), 0600, (uid_t)-1, (gid_t)-1,
                                      TRUE, error);
}

gboolean caback_state_get_latest_backup_time(char **path, GDateTime **recorded, GError **error)
{
    g_autofree char *target = NULL;
    g_autofree char *contents = read_latest_backup(&target, error);
    g_autofree char *p = NULL;
    g_autofree char *sha256 = NULL;
    if (contents == NULL ||
        !caback_state_parse_latest_backup(contents, target, &p, &sha256, error))
        return FALSE;

    g_auto(GStrv) lines = g_strsplit(contents, "\n", -1);
    GDateTime *when = NULL;
    for (char **line = lines; *line != NULL && when == NULL; line++) {
        g_strchomp(*line);
        if (g_str_has_prefix(*line, "recorded="))
            when = g_date_time_new_from_iso8601(*line + 9, NULL);
    }
    if (when == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "%s says which backup is the newest but not when it was made (it has no "
                    "valid recorded= line; caback backup writes one since December 2026): run a "
                    "new backup to record the time",
                    target);
        return FALSE;
    }
    *path = g_steal_pointer(&p);
    *recorded = when;
    return TRUE;
}
