/* Unit tests for password files (plain and Dogtag password.conf) and secret buffers. */
#include "config.h"

#include <caback/error.h>
#include <caback/secret.h>

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_first_line(void)
{
    const char *text = "s3cret pass\nsecond line\n";
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackSecret) s =
        caback_password_parse_file(text, strlen(text), "pw", "internal", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(s->data, ==, "s3cret pass");
    g_assert_cmpuint(s->len, ==, 11);
}

static void test_crlf_and_no_newline(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackSecret) a = caback_password_parse_file("abc\r\n", 5, "pw", NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(a->data, ==, "abc");
    g_autoptr(CabackSecret) b = caback_password_parse_file("xyz", 3, "pw", NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(b->data, ==, "xyz");
    g_autoptr(CabackSecret) c = caback_password_parse_file("", 0, "pw", NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(c->data, ==, "");
}

static void test_password_conf(void)
{
    const char *text = "internaldb=dbpass\ninternal=nsspass\nhardware-HSM Token=pin=with=eq\n"
                       "replicationdb=x\n";
    g_autoptr(GError) error = NULL;
    g_autoptr(CabackSecret) internal =
        caback_password_parse_file(text, strlen(text), "password.conf", "internal", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(internal->data, ==, "nsspass");
    g_autoptr(CabackSecret) nss =
        caback_password_parse_file(text, strlen(text), "password.conf", NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(nss->data, ==, "nsspass");
    g_autoptr(CabackSecret) hw =
        caback_password_parse_file(text, strlen(text), "password.conf", "HSM Token", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(hw->data, ==, "pin=with=eq");
    CabackSecret *missing =
        caback_password_parse_file(text, strlen(text), "password.conf", "Other", &error);
    g_assert_null(missing);
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, "hardware-Other"));
    g_assert_nonnull(strstr(error->message, "password.conf"));
}

static void test_env_and_no_source(void)
{
    g_autoptr(GError) error = NULL;
    g_setenv("CABACK_TEST_PW", "from-env", TRUE);
    CabackPasswordSource env = {.env_var = "CABACK_TEST_PW"};
    g_autoptr(CabackSecret) s = caback_password_read(&env, NULL, "test password", FALSE, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(s->data, ==, "from-env");

    CabackPasswordSource unset = {.env_var = "CABACK_TEST_PW_UNSET"};
    g_assert_null(caback_password_read(&unset, NULL, "test password", FALSE, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_NO_PASSWORD);
    g_assert_nonnull(strstr(error->message, "CABACK_TEST_PW_UNSET"));
    g_clear_error(&error);

    CabackPasswordSource none = {.no_prompt = TRUE};
    g_assert_null(caback_password_read(&none, NULL, "test password", FALSE, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_NO_PASSWORD);
    g_clear_error(&error);

    CabackPasswordSource nofile = {.file = "/nonexistent/caback-pw"};
    g_assert_null(caback_password_read(&nofile, NULL, "test password", FALSE, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_IO);
    g_assert_nonnull(strstr(error->message, "/nonexistent/caback-pw"));
}

static void test_secret_copy(void)
{
    char raw[] = {'a', '\0', 'b'};
    g_autoptr(CabackSecret) s = caback_secret_new(raw, sizeof raw);
    g_assert_cmpuint(s->len, ==, 3);
    g_assert_cmpmem(s->data, 3, raw, 3);
    g_assert_cmpint(s->data[3], ==, '\0');
}

/* caback_secret_read_file: a regular file is read whole (an empty one too); a symbolic link, a
 * device, a folder and a file over the cap are refused, each saying why. */
static void test_read_file(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("test-secret-XXXXXX", &error);
    g_assert_no_error(error);
    g_autofree char *file = g_build_filename(dir, "pw", NULL);
    g_autofree char *empty = g_build_filename(dir, "empty", NULL);
    g_autofree char *link = g_build_filename(dir, "link", NULL);
    g_assert_true(g_file_set_contents(file, "s3cret\nmore\n", -1, NULL));
    g_assert_true(g_file_set_contents(empty, "", 0, NULL));
    g_assert_cmpint(symlink(file, link), ==, 0);

    g_autoptr(CabackSecret) whole = caback_secret_read_file(file, 64, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(whole->len, ==, 12);
    g_assert_cmpstr(whole->data, ==, "s3cret\nmore\n");
    g_autoptr(CabackSecret) none = caback_secret_read_file(empty, 64, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(none->len, ==, 0);

    const struct {
        const char *path;
        gsize max;
        const char *why;
    } refused[] = {
        {link, 64, "symbolic link"},
        {"/dev/null", 64, "not a regular file"},
        {dir, 64, "not a regular file"},
        {file, 11, "it has 12 bytes, more than the 11"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(refused); i++) {
        CabackSecret *s = caback_secret_read_file(refused[i].path, refused[i].max, &error);
        g_assert_null(s);
        g_assert_error(error, CABACK_ERROR, CABACK_ERROR_IO);
        g_assert_nonnull(strstr(error->message, refused[i].why));
        g_clear_error(&error);
    }
    g_assert_cmpint(unlink(link), ==, 0);
    g_assert_cmpint(unlink(file), ==, 0);
    g_assert_cmpint(unlink(empty), ==, 0);
    g_assert_cmpint(rmdir(dir), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/secret/file/first-line", test_first_line);
    g_test_add_func("/secret/file/line-ends", test_crlf_and_no_newline);
    g_test_add_func("/secret/file/password-conf", test_password_conf);
    g_test_add_func("/secret/sources", test_env_and_no_source);
    g_test_add_func("/secret/copy", test_secret_copy);
    g_test_add_func("/secret/read-file", test_read_file);
    return g_test_run();
}
