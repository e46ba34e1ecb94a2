/* Unit tests for the run log, the state folder and the latest_backup pointer. */
#include "config.h"

#include <caback/error.h>
#include <caback/log.h>

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHA_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

typedef struct {
    char *dir;
} Fixture;

/* A key ID for the records (the log writes its forms itself). */
static CabackKeyId key_id(const char *text)
{
    CabackKeyId id;
    g_assert_true(caback_keyid_parse(text, &id, NULL));
    return id;
}

static void setup(Fixture *f, gconstpointer data)
{
    f->dir = g_dir_make_tmp("caback-test-log-XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    g_autofree char *state = g_build_filename(f->dir, "state", NULL);
    g_setenv("CABACK_STATE_DIR", state, TRUE);
}

static void remove_tree(const char *path)
{
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *name;

    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *child = g_build_filename(path, name, NULL);
        if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
            remove_tree(child);
        else
            g_unlink(child);
    }
    g_rmdir(path);
}

static void teardown(Fixture *f, gconstpointer data)
{
    remove_tree(f->dir);
    g_free(f->dir);
    g_unsetenv("CABACK_STATE_DIR");
}

static char *read_file(const char *path)
{
    char *contents = NULL;
    g_autoptr(GError) error = NULL;
    g_assert_true(g_file_get_contents(path, &contents, NULL, &error));
    g_assert_no_error(error);
    return contents;
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    g_assert_cmpint(g_stat(path, &st), ==, 0);
    return st.st_mode & 07777;
}

/* ---- state folder ---- */

static void test_state_dir_rules(void)
{
    g_autofree char *a = caback_state_dir_for("/srv/state", TRUE, "/x", "/home/u");
    g_assert_cmpstr(a, ==, "/srv/state");
    g_autofree char *b = caback_state_dir_for("", TRUE, "/x", "/home/u");
    g_assert_cmpstr(b, ==, "/var/lib/caback");
    g_autofree char *c = caback_state_dir_for(NULL, TRUE, NULL, NULL);
    g_assert_cmpstr(c, ==, "/var/lib/caback");
    g_autofree char *d = caback_state_dir_for(NULL, FALSE, "/home/u/st", "/home/u");
    g_assert_cmpstr(d, ==, "/home/u/st/caback");
    /* A relative XDG_STATE_HOME is invalid by the specification and ignored. */
    g_autofree char *e = caback_state_dir_for(NULL, FALSE, "rel/st", "/home/u");
    g_assert_cmpstr(e, ==, "/home/u/.local/state/caback");
    g_autofree char *f = caback_state_dir_for(NULL, FALSE, "", "/home/u");
    g_assert_cmpstr(f, ==, "/home/u/.local/state/caback");
    g_autofree char *g = caback_state_dir_for(NULL, FALSE, NULL, NULL);
    g_assert_null(g);
}

static void test_state_dir_env(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *want = g_build_filename(f->dir, "deep", "er", "state", NULL);

    mode_t old = umask(0);
    g_setenv("CABACK_STATE_DIR", want, TRUE);
    g_autofree char *dir = caback_state_dir(&error);
    g_assert_no_error(error);
    g_assert_cmpstr(dir, ==, want);
    g_assert_true(g_file_test(dir, G_FILE_TEST_IS_DIR));
    g_assert_cmpint(file_mode(dir), ==, 0700);

    if (geteuid() != 0) {
        g_autofree char *xdg = g_build_filename(f->dir, "xdg", NULL);
        g_autofree char *home = g_build_filename(f->dir, "home", NULL);
        g_unsetenv("CABACK_STATE_DIR");
        g_setenv("XDG_STATE_HOME", xdg, TRUE);
        g_autofree char *d1 = caback_state_dir(&error);
        g_assert_no_error(error);
        g_autofree char *w1 = g_build_filename(xdg, "caback", NULL);
        g_assert_cmpstr(d1, ==, w1);
        g_assert_cmpint(file_mode(d1), ==, 0700);

        g_unsetenv("XDG_STATE_HOME");
        g_setenv("HOME", home, TRUE);
        g_autofree char *d2 = caback_state_dir(&error);
        g_assert_no_error(error);
        g_autofree char *w2 = g_build_filename(home, ".local", "state", "caback", NULL);
        g_assert_cmpstr(d2, ==, w2);
        g_assert_true(g_file_test(d2, G_FILE_TEST_IS_DIR));
    } else {
        /* As root the folder is /var/lib/caback, which a test must not create. */
        g_test_message("running as root: XDG_STATE_HOME and HOME rules checked only by "
                       "/log/state-dir/rules");
    }
    umask(old);

    /* A state folder that cannot be created is an error naming it. */
    g_autofree char *file = g_build_filename(f->dir, "plainfile", NULL);
    g_assert_true(g_file_set_contents(file, "x", 1, NULL));
    g_autofree char *under = g_build_filename(file, "state", NULL);
    g_setenv("CABACK_STATE_DIR", under, TRUE);
    g_autofree char *none = caback_state_dir(&error);
    g_assert_null(none);
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_IO);
    g_assert_nonnull(strstr(error->message, under));
    g_clear_error(&error);

    /* A state folder that is a link, or that others may write, is refused, naming it. */
    g_autofree char *real = g_build_filename(f->dir, "real-state", NULL);
    g_autofree char *link = g_build_filename(f->dir, "link-state", NULL);
    g_assert_cmpint(g_mkdir(real, 0700), ==, 0);
    g_assert_cmpint(symlink(real, link), ==, 0);
    g_setenv("CABACK_STATE_DIR", link, TRUE);
    g_assert_null(caback_state_dir(&error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_IO);
    g_assert_nonnull(strstr(error->message, link));
    g_assert_nonnull(strstr(error->message, "symbolic link"));
    g_clear_error(&error);
    g_assert_cmpint(g_chmod(real, 0777), ==, 0);
    g_setenv("CABACK_STATE_DIR", real, TRUE);
    g_assert_null(caback_state_dir(&error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_IO);
    g_assert_nonnull(strstr(error->message, "mode 0777"));
    g_clear_error(&error);
    g_assert_cmpint(g_chmod(real, 0770), ==, 0);
    g_assert_null(caback_state_dir(&error));
    g_assert_nonnull(strstr(error->message, "its group"));
    g_clear_error(&error);
    g_assert_cmpint(g_chmod(real, 0755), ==, 0);
    g_autofree char *ok = caback_state_dir(&error);
    g_assert_no_error(error);
    g_assert_cmpstr(ok, ==, real);
}

/* ---- records ---- */

/* A record as backup would write it, with a file whose SHA-256 the test knows independently. */
static CabackLogRecord *sample_record(Fixture *f, char **file_out, char **sha_out)
{
    g_autofree char *file = g_build_filename(f->dir, "ca backup.p12", NULL);
    static const char contents[] = "not really a PKCS#12 file\n";
    g_assert_true(g_file_set_contents(file, contents, sizeof contents - 1, NULL));
    *sha_out = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)contents,
                                           sizeof contents - 1);

    CabackLogRecord *r = caback_log_record_new("backup");
    caback_log_record_add_option(r, "-d", "/var/lib/pki/pki-tomcat/alias");
    caback_log_record_add_option(r, "--password-env", "CA_DB_PASS");
    caback_log_record_add_option(r, "-o", file);
    caback_log_record_set_database(r, "/var/lib/pki/pki-tomcat/alias", NULL);
    caback_log_record_set_file(r, file);
    CabackKeyId ca = key_id("a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3");
    CabackKeyId orphan = key_id("0102030405060708090a0b0c0d0e0f1011121314");
    caback_log_record_add_key(r, "caSigningCert cert-pki-ca", &ca);
    caback_log_record_add_key(r, NULL, &orphan);
    caback_log_record_add_key(r, "unknown", NULL);
    *file_out = g_steal_pointer(&file);
    return r;
}

static void test_record_ok(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *file = NULL;
    g_autofree char *sha = NULL;
    g_autofree char *log = g_build_filename(f->dir, "run.log", NULL);

    mode_t old = umask(0);
    CabackLogRecord *r = sample_record(f, &file, &sha);
    g_autoptr(GDateTime) t = g_date_time_new_utc(2026, 3, 4, 5, 6, 7);
    caback_log_record_set_time(r, t);
    g_assert_true(caback_log_record_finish(r, NULL, log, &error));
    g_assert_no_error(error);
    umask(old);

    g_autofree char *json_path = g_strconcat(log, ".jsonl", NULL);
    g_assert_cmpint(file_mode(log), ==, 0600);
    g_assert_cmpint(file_mode(json_path), ==, 0600);

    g_autofree char *text = read_file(log);
    g_test_message("%s", text);
    g_assert_true(g_str_has_prefix(text, "2026-03-04T05:06:07Z backup OK\n    user: "));
    g_autofree char *cmd = g_strdup_printf(
        "    command: caback backup -d /var/lib/pki/pki-tomcat/alias --password-env CA_DB_PASS "
        "-o '%s'\n",
        file);
    g_assert_nonnull(strstr(text, cmd));
    g_assert_nonnull(strstr(text, "    database: /var/lib/pki/pki-tomcat/alias\n"));
    g_autofree char *file_line = g_strdup_printf("    file: %s\n    sha256: %s\n", file, sha);
    g_assert_nonnull(strstr(text, file_line));
    g_assert_nonnull(strstr(text, "    key: \"caSigningCert cert-pki-ca\"  nss "
                                  "a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3  dogtag "
                                  "-584f6bb4847c688d65b373650c563d4690b6390d\n"));
    g_assert_nonnull(strstr(text, "    key: (no certificate)  nss "
                                  "0102030405060708090a0b0c0d0e0f1011121314  dogtag "
                                  "102030405060708090a0b0c0d0e0f1011121314\n"));
    g_assert_nonnull(strstr(text, "    key: \"unknown\"  nss -  dogtag -\n"));
    g_assert_null(strstr(text, "WARNING"));
    g_assert_null(strstr(text, "ERROR"));
    g_assert_true(g_str_has_suffix(text, "\n\n"));

    g_autofree char *json = read_file(json_path);
    g_assert_true(g_str_has_prefix(json, "{\"time\":\"2026-03-04T05:06:07Z\",\"user\":"));
    g_assert_nonnull(strstr(json, "\"verb\":\"backup\""));
    g_assert_nonnull(strstr(json, "\"result\":\"OK\""));
    g_assert_nonnull(strstr(json, "\"error\":null"));
    g_autofree char *sha_member = g_strdup_printf("\"sha256\":\"%s\"", sha);
    g_assert_nonnull(strstr(json, sha_member));
    /* One record, one line. */
    g_assert_cmpint(strchr(json, '\n') - json, ==, (long)strlen(json) - 1);

    /* A second run appends to both files. */
    CabackLogRecord *r2 = caback_log_record_new("restore");
    g_assert_true(caback_log_record_finish(r2, NULL, log, &error));
    g_assert_no_error(error);
    g_autofree char *text2 = read_file(log);
    g_assert_true(g_str_has_prefix(text2, text));
    g_assert_nonnull(strstr(text2 + strlen(text), " restore OK\n"));
    g_autofree char *json2 = read_file(json_path);
    g_assert_true(g_str_has_prefix(json2, json));
    /* Three keys: all listed, none left to count. */
    g_assert_nonnull(strstr(json, "}],\"keys_total\":3,\"result\""));
    g_assert_null(strstr(text, "    keys: "));
}

/* A run of many keys lists the first CABACK_LOG_MAX_KEYS and counts the others: the record of a
 * file of 100,000 keys was 12 MB of text and as much JSON. */
static void test_record_many_keys(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *log = g_build_filename(f->dir, "many.log", NULL);
    const guint total = CABACK_LOG_MAX_KEYS + 5;

    CabackLogRecord *r = caback_log_record_new("restore");
    for (guint i = 0; i < total; i++) {
        g_autofree char *hex = g_strdup_printf("%040x", i + 1);
        CabackKeyId id = key_id(hex);
        g_autofree char *nickname = g_strdup_printf("key %u", i + 1);
        caback_log_record_add_key(r, nickname, &id);
    }
    g_assert_true(caback_log_record_finish(r, NULL, log, &error));
    g_assert_no_error(error);

    g_autofree char *text = read_file(log);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    guint key_lines = 0;
    for (char **l = lines; *l != NULL; l++)
        key_lines += g_str_has_prefix(*l, "    key: \"key ");
    g_assert_cmpuint(key_lines, ==, CABACK_LOG_MAX_KEYS);
    g_autofree char *last = g_strdup_printf("    key: \"key %u\"  nss ", CABACK_LOG_MAX_KEYS);
    g_assert_nonnull(strstr(text, last));
    g_autofree char *first_unlisted =
        g_strdup_printf("    key: \"key %u\"", CABACK_LOG_MAX_KEYS + 1);
    g_assert_null(strstr(text, first_unlisted));
    g_autofree char *count = g_strdup_printf("    keys: %u in all; the first %u are listed above\n",
                                             total, CABACK_LOG_MAX_KEYS);
    g_assert_nonnull(strstr(text, count));

    g_autofree char *json_path = g_strconcat(log, ".jsonl", NULL);
    g_autofree char *json = read_file(json_path);
    guint json_keys = 0;
    for (const char *p = json; (p = strstr(p, "{\"nickname\":\"key ")) != NULL; p++)
        json_keys++;
    g_assert_cmpuint(json_keys, ==, CABACK_LOG_MAX_KEYS);
    g_autofree char *member = g_strdup_printf("}],\"keys_total\":%u,\"result\":\"OK\"", total);
    g_assert_nonnull(strstr(json, member));
    g_assert_cmpint(strchr(json, '\n') - json, ==, (long)strlen(json) - 1);
}

static void test_record_warning_error(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *log = g_build_filename(f->dir, "w.log", NULL);

    CabackLogRecord *r = caback_log_record_new("fix-clone-ids");
    caback_log_record_add_warning(r, "key %s has no certificate", "0x12");
    g_assert_true(caback_log_record_finish(r, NULL, log, &error));
    g_assert_no_error(error);

    r = caback_log_record_new("restore");
    caback_log_record_add_warning(r, "first\nsecond line");
    g_autoptr(GError) outcome = g_error_new(CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                                            "cannot decrypt x.p12: wrong password");
    g_assert_true(caback_log_record_finish(r, outcome, log, &error));
    g_assert_no_error(error);

    g_autofree char *text = read_file(log);
    g_test_message("%s", text);
    g_assert_nonnull(strstr(text, " fix-clone-ids WARNING\n"));
    g_assert_nonnull(strstr(text, "    WARNING: key 0x12 has no certificate\n"));
    g_assert_nonnull(strstr(text, " restore ERROR\n"));
    /* A line break in a message continues on an indented line, inside the record. */
    g_assert_nonnull(strstr(text, "    WARNING: first\n        second line\n"));
    g_assert_nonnull(strstr(text, "    ERROR: cannot decrypt x.p12: wrong password\n"));

    g_autofree char *json_path = caback_log_json_path(log);
    g_autofree char *json = read_file(json_path);
    g_assert_nonnull(strstr(json, "\"result\":\"WARNING\",\"warnings\":[\"key 0x12 has no "
                                  "certificate\"],\"error\":null"));
    g_assert_nonnull(strstr(json, "\"result\":\"ERROR\",\"warnings\":[\"first\\nsecond "
                                  "line\"],\"error\":\"cannot decrypt x.p12: wrong password\""));
}

/* No password ever reaches a record, so nothing is searched for or hidden: a path that contains
 * a word that could be someone's password ("red" in "redteam") is logged as it is. (The old
 * redaction wrote "/srv/backup/(hidden)team", which both garbled the path and revealed a short
 * password.) */
static void test_record_as_is(Fixture *f, gconstpointer data)
{
    (void)data;
    g_autoptr(GError) error = NULL;
    g_autofree char *log = g_build_filename(f->dir, "s.log", NULL);

    CabackLogRecord *r = caback_log_record_new("backup");
    caback_log_record_add_option(r, "-d", "/srv/backup/redteam");
    caback_log_record_add_option(r, "-o", "/srv/backup/redteam/ca.p12");
    caback_log_record_set_file(r, "/srv/backup/redteam/ca.p12");
    caback_log_record_set_database(r, "/srv/backup/redteam", "red");
    CabackKeyId red = key_id("0102030405060708090a0b0c0d0e0f1011121314");
    caback_log_record_add_key(r, "red", &red);
    caback_log_record_add_warning(r, "red (hidden) team");
    g_autoptr(GError) outcome =
        g_error_new(CABACK_ERROR, CABACK_ERROR_FAILED, "cannot write /srv/backup/redteam/ca.p12");
    g_assert_true(caback_log_record_finish(r, outcome, log, &error));
    g_assert_no_error(error);

    g_autofree char *json_path = caback_log_json_path(log);
    g_autofree char *text = read_file(log);
    g_autofree char *json = read_file(json_path);
    g_test_message("%s%s", text, json);
    g_assert_nonnull(strstr(text, "    command: caback backup -d /srv/backup/redteam -o "
                                  "/srv/backup/redteam/ca.p12\n"));
    g_assert_nonnull(strstr(text, "    database: /srv/backup/redteam (token red)\n"));
    g_assert_nonnull(strstr(text, "    ERROR: cannot write /srv/backup/redteam/ca.p12\n"));
    g_assert_nonnull(strstr(json, "\"file\":\"/srv/backup/redteam/ca.p12\""));
    g_assert_nonnull(strstr(json, "\"warnings\":[\"red (hidden) team\"]"));
    /* "(hidden)" appears only where the warning itself said it. */
    g_assert_null(strstr(text, "(hidden)team"));
    g_assert_null(strstr(json, "(hidden)team"));
}

static void test_sudo_user(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *log = g_build_filename(f->dir, "sudo.log", NULL);

    g_setenv("SUDO_USER", "alice-admin", TRUE);
    g_assert_true(caback_log_record_finish(caback_log_record_new("backup"), NULL, log, &error));
    g_unsetenv("SUDO_USER");
    g_assert_true(caback_log_record_finish(caback_log_record_new("verify"), NULL, log, &error));
    g_assert_no_error(error);

    g_autofree char *text = read_file(log);
    g_autofree char *want =
        g_strdup_printf("    user: %s (sudo by alice-admin)  host: ", g_get_user_name());
    g_assert_nonnull(strstr(text, want));
    g_assert_null(strstr(strstr(text, " verify OK\n"), "sudo by"));
    g_autofree char *json_path = caback_log_json_path(log);
    g_autofree char *json = read_file(json_path);
    g_auto(GStrv) lines = g_strsplit(json, "\n", -1);
    g_assert_nonnull(strstr(lines[0], "\"sudo_user\":\"alice-admin\""));
    g_assert_nonnull(strstr(lines[1], "\"sudo_user\":null"));
}

static void test_append_keeps_mode(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *log = g_build_filename(f->dir, "loose.log", NULL);

    /* An existing log keeps the mode its owner gave it: caback changes the mode of a file only
     * when it created it (a log given with --log may be any file of the user's). */
    g_assert_true(g_file_set_contents(log, "old record\n", -1, NULL));
    g_assert_cmpint(g_chmod(log, 0640), ==, 0);
    g_assert_true(caback_log_append(log, "new record\n", 11, &error));
    g_assert_no_error(error);
    g_assert_cmpint(file_mode(log), ==, 0640);
    g_autofree char *text = read_file(log);
    g_assert_cmpstr(text, ==, "old record\nnew record\n");

    /* A new log is made 0600 whatever the umask. */
    g_autofree char *fresh = g_build_filename(f->dir, "fresh.log", NULL);
    mode_t old = umask(0277);
    g_assert_true(caback_log_append(fresh, "x\n", 2, &error));
    umask(old);
    g_assert_no_error(error);
    g_assert_cmpint(file_mode(fresh), ==, 0600);

    /* A link to a file is refused, and the file it points at is untouched. */
    g_autofree char *link = g_build_filename(f->dir, "link.log", NULL);
    g_assert_cmpint(symlink(log, link), ==, 0);
    g_assert_false(caback_log_check(link, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_IO);
    g_assert_nonnull(strstr(error->message, "symbolic link"));
    g_clear_error(&error);
    g_assert_false(caback_log_append(link, "y\n", 2, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_IO);
    g_assert_nonnull(strstr(error->message, link));
    g_clear_error(&error);
    g_autofree char *after = read_file(log);
    g_assert_cmpstr(after, ==, "old record\nnew record\n");
    g_assert_cmpint(file_mode(log), ==, 0640);

    /* A FIFO is refused at once (no reader: opening it would block without O_NONBLOCK). */
    g_autofree char *fifo = g_build_filename(f->dir, "fifo.log", NULL);
    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    g_assert_false(caback_log_append(fifo, "z\n", 2, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_IO);
    g_assert_nonnull(strstr(error->message, "FIFO"));
    g_clear_error(&error);
    g_assert_false(caback_log_check(fifo, &error));
    g_clear_error(&error);

    /* A folder is not a log. */
    g_assert_false(caback_log_append(f->dir, "x", 1, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_IO);
    g_clear_error(&error);

    /* A log in a missing folder names the file and says what to do. */
    g_autofree char *missing = g_build_filename(f->dir, "no", "such.log", NULL);
    CabackLogRecord *r = caback_log_record_new("verify");
    g_assert_false(caback_log_record_finish(r, NULL, missing, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_IO);
    g_assert_nonnull(strstr(error->message, missing));
    g_assert_nonnull(strstr(error->message, "--log"));
}

static void test_default_log(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    mode_t old = umask(0);
    CabackLogRecord *r = caback_log_record_new("verify");
    g_assert_true(caback_log_record_finish(r, NULL, NULL, &error));
    g_assert_no_error(error);
    umask(old);
    g_autofree char *state = g_build_filename(f->dir, "state", NULL);
    g_autofree char *log = g_build_filename(state, "caback.log", NULL);
    g_autofree char *json = g_build_filename(state, "caback.log.jsonl", NULL);
    g_autofree char *default_path = caback_log_default_path(&error);
    g_assert_cmpstr(default_path, ==, log);
    g_assert_cmpint(file_mode(state), ==, 0700);
    g_assert_cmpint(file_mode(log), ==, 0600);
    g_assert_cmpint(file_mode(json), ==, 0600);
    g_autofree char *text = read_file(log);
    g_assert_nonnull(strstr(text, " verify OK\n"));
}

/* Several processes appending at once: every record stays whole. */
static void test_concurrent(Fixture *f, gconstpointer data)
{
    enum { CHILDREN = 6, RECORDS = 40 };
    g_autofree char *log = g_build_filename(f->dir, "busy.log", NULL);

    for (int c = 0; c < CHILDREN; c++) {
        pid_t pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
            for (int i = 0; i < RECORDS; i++) {
                CabackLogRecord *r = caback_log_record_new("backup");
                caback_log_record_set_file_sha256(r, SHA_A);
                caback_log_record_set_file(r, "/nonexistent/x.p12");
                CabackKeyId id = key_id("a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3");
                for (int k = 0; k < 20; k++)
                    caback_log_record_add_key(r, "a nickname long enough to need some room", &id);
                if (!caback_log_record_finish(r, NULL, log, NULL))
                    _exit(1);
            }
            _exit(0);
        }
    }
    for (int c = 0; c < CHILDREN; c++) {
        int status = 0;
        g_assert_cmpint(wait(&status), >, 0);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    g_autofree char *text = read_file(log);
    g_auto(GStrv) blocks = g_strsplit(text, "\n\n", -1);
    guint n = 0;
    for (char **b = blocks; *b != NULL; b++) {
        if (**b == '\0')
            continue;
        n++;
        g_auto(GStrv) lines = g_strsplit(*b, "\n", -1);
        /* header, user, command, file, sha256, 20 keys */
        g_assert_cmpuint(g_strv_length(lines), ==, 25);
        g_assert_true(g_str_has_suffix(lines[0], " backup OK"));
        for (int k = 5; k < 25; k++)
            g_assert_true(g_str_has_prefix(lines[k], "    key: \"a nickname"));
    }
    g_assert_cmpuint(n, ==, CHILDREN * RECORDS);

    g_autofree char *json_path = caback_log_json_path(log);
    g_autofree char *json = read_file(json_path);
    g_auto(GStrv) lines = g_strsplit(json, "\n", -1);
    g_assert_cmpuint(g_strv_length(lines), ==, CHILDREN * RECORDS + 1);
    for (guint i = 0; i < CHILDREN * RECORDS; i++) {
        g_assert_true(g_str_has_prefix(lines[i], "{\"time\":"));
        g_assert_true(g_str_has_suffix(lines[i], "\"caback_version\":\"" PACKAGE_VERSION "\"}"));
    }
}

/* The JSON-lines twin parsed by a real JSON parser (Python's), including awkward strings. */
static void test_json_valid(Fixture *f, gconstpointer data)
{
    const char *python = g_getenv("PYTHON3");
    g_autofree char *found = g_find_program_in_path(python != NULL && *python ? python : "python3");
    if (found == NULL) {
        g_test_skip("python3 is not installed");
        return;
    }
    g_autoptr(GError) error = NULL;
    g_autofree char *log = g_build_filename(f->dir, "j.log", NULL);
    g_autofree char *file = NULL;
    g_autofree char *sha = NULL;

    CabackLogRecord *r = sample_record(f, &file, &sha);
    caback_log_record_add_warning(r,
                                  "quote \" backslash \\ tab \t ctl \x01 and invalid \xff utf-8");
    g_assert_true(caback_log_record_finish(r, NULL, log, &error));
    g_assert_no_error(error);
    r = caback_log_record_new("verify");
    caback_log_record_set_file(r, "/gone/\xc3\x28.p12");
    g_autoptr(GError) outcome = g_error_new(CABACK_ERROR, CABACK_ERROR_FAILED, "it failed");
    g_assert_true(caback_log_record_finish(r, outcome, log, &error));
    g_assert_no_error(error);

    g_autofree char *json_path = caback_log_json_path(log);
    const char *script =
        "import json, sys\n"
        "for line in open(sys.argv[1], encoding='utf-8'):\n"
        "    r = json.loads(line)\n"
        "    keys = ';'.join('%s|%s|%s' % (k['nickname'], k['nss_id'], k['dogtag_id']) for k in "
        "r['keys'])\n"
        "    print(r['verb'], r['result'], r['sha256'], len(r['warnings']), r['error'], "
        "r['database'], keys, r['user'] != '', r['host'] != '')\n";
    char *argv[] = {found, (char *)"-c", (char *)script, json_path, NULL};
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int status = 0;
    g_assert_true(
        g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error));
    g_assert_no_error(error);
    g_test_message("python: %s%s", out, err);
    g_assert_true(g_spawn_check_wait_status(status, &error));
    g_assert_no_error(error);
    g_autofree char *want = g_strdup_printf(
        "backup WARNING %s 1 None /var/lib/pki/pki-tomcat/alias caSigningCert "
        "cert-pki-ca|a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3|-584f6bb4847c688d65b373650c563d4690b"
        "6390d;None|0102030405060708090a0b0c0d0e0f1011121314|102030405060708090a0b0c0d0e0f1011121"
        "314;unknown|None|None True True\n"
        "verify ERROR None 0 it failed None  True True\n",
        sha);
    g_assert_cmpstr(out, ==, want);
}

/* ---- latest_backup ---- */

static void test_latest_round_trip(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    char *path = NULL;
    char *sha = NULL;

    /* Nothing recorded yet. */
    g_assert_false(caback_state_get_latest_backup(&path, &sha, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, "latest_backup"));
    g_clear_error(&error);

    g_autofree char *cwd = g_get_current_dir();
    g_assert_cmpint(g_chdir(f->dir), ==, 0);
    mode_t old = umask(0);
    g_assert_true(caback_state_set_latest_backup("sub/../ca.p12", SHA_A, &error));
    umask(old);
    g_assert_cmpint(g_chdir(cwd), ==, 0);
    g_assert_no_error(error);

    g_assert_true(caback_state_get_latest_backup(&path, &sha, &error));
    g_assert_no_error(error);
    g_autofree char *want = g_build_filename(f->dir, "ca.p12", NULL);
    g_assert_cmpstr(path, ==, want);
    g_assert_cmpstr(sha, ==, SHA_A);
    g_clear_pointer(&path, g_free);
    g_clear_pointer(&sha, g_free);

    g_autofree char *pointer = g_build_filename(f->dir, "state", "latest_backup", NULL);
    g_assert_cmpint(file_mode(pointer), ==, 0600);

    /* Replaced, upper-case digest stored in lower case. */
    g_autofree char *upper = g_ascii_strup(SHA_A, -1);
    g_assert_true(caback_state_set_latest_backup("/backups/second.p12", upper, &error));
    g_assert_no_error(error);
    g_assert_true(caback_state_get_latest_backup(&path, &sha, &error));
    g_assert_cmpstr(path, ==, "/backups/second.p12");
    g_assert_cmpstr(sha, ==, SHA_A);
    g_clear_pointer(&path, g_free);
    g_clear_pointer(&sha, g_free);

    /* Refused: line breaks in the name, a value that is not a digest; the pointer is kept. */
    g_assert_false(caback_state_set_latest_backup("/b/x\ny.p12", SHA_A, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    g_clear_error(&error);
    g_assert_false(caback_state_set_latest_backup("/b/x.p12", "abc", &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_FAILED);
    g_clear_error(&error);
    g_assert_true(caback_state_get_latest_backup(&path, &sha, &error));
    g_assert_cmpstr(path, ==, "/backups/second.p12");
    g_clear_pointer(&path, g_free);
    g_clear_pointer(&sha, g_free);

    /* A damaged pointer is reported, not guessed at. */
    g_assert_true(g_file_set_contents(pointer, "path=relative.p12\nsha256=" SHA_A "\n", -1, NULL));
    g_assert_false(caback_state_get_latest_backup(&path, &sha, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_FAILED);
    g_assert_nonnull(strstr(error->message, "damaged"));
    g_clear_error(&error);
    g_assert_null(path);
}

static void test_latest_parse(void)
{
    g_autoptr(GError) error = NULL;
    char *path = NULL;
    char *sha = NULL;

    g_assert_true(caback_state_parse_latest_backup(
        "# c\n\npath=/a b/c.p12\r\nsha256=" SHA_A "\nextra=1\n", "x", &path, &sha, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(path, ==, "/a b/c.p12");
    g_assert_cmpstr(sha, ==, SHA_A);
    g_free(path);
    g_free(sha);

    const char *bad[] = {"",
                         "path=/a\n",
                         "sha256=" SHA_A "\n",
                         "path=/a\nsha256=xyz\n",
                         "path=/a\nsha256=" SHA_A "0\n",
                         "path=a\nsha256=" SHA_A "\n"};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        path = sha = NULL;
        g_assert_false(caback_state_parse_latest_backup(bad[i], "x", &path, &sha, &error));
        g_assert_error(error, CABACK_ERROR, CABACK_ERROR_FAILED);
        g_assert_null(path);
        g_clear_error(&error);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/log/state-dir/rules", test_state_dir_rules);
    g_test_add("/log/state-dir/env", Fixture, NULL, setup, test_state_dir_env, teardown);
    g_test_add("/log/record/ok", Fixture, NULL, setup, test_record_ok, teardown);
    g_test_add("/log/record/many-keys", Fixture, NULL, setup, test_record_many_keys, teardown);
    g_test_add("/log/record/warning-error", Fixture, NULL, setup, test_record_warning_error,
               teardown);
    g_test_add("/log/record/as-is", Fixture, NULL, setup, test_record_as_is, teardown);
    g_test_add("/log/record/sudo-user", Fixture, NULL, setup, test_sudo_user, teardown);
    g_test_add("/log/record/default-log", Fixture, NULL, setup, test_default_log, teardown);
    g_test_add("/log/record/json-valid", Fixture, NULL, setup, test_json_valid, teardown);
    g_test_add("/log/append/keeps-mode-refuses-links", Fixture, NULL, setup, test_append_keeps_mode,
               teardown);
    g_test_add("/log/append/concurrent", Fixture, NULL, setup, test_concurrent, teardown);
    g_test_add("/log/latest/round-trip", Fixture, NULL, setup, test_latest_round_trip, teardown);
    g_test_add_func("/log/latest/parse", test_latest_parse);
    return g_test_run();
}
