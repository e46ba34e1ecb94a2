/* Unit tests for the JSON writer behind --json. */
#include "config.h"

#include <caback/json.h>

#include <string.h>

static void test_nested(void)
{
    g_autoptr(CabackJson) j = caback_json_new();
    caback_json_begin_object(j, NULL);
    caback_json_string(j, "name", "a \"quoted\"\\ \n\x01 name");
    caback_json_int(j, "n", -42);
    caback_json_bool(j, "yes", TRUE);
    caback_json_null(j, "nothing");
    caback_json_begin_array(j, "empty");
    caback_json_end_array(j);
    caback_json_begin_array(j, "list");
    caback_json_string(j, NULL, "x");
    caback_json_begin_object(j, NULL);
    caback_json_string(j, "k", NULL);
    caback_json_end_object(j);
    caback_json_end_array(j);
    caback_json_end_object(j);
    g_assert_cmpstr(caback_json_text(j), ==,
                    "{\n"
                    "  \"name\": \"a \\\"quoted\\\"\\\\ \\n\\u0001 name\",\n"
                    "  \"n\": -42,\n"
                    "  \"yes\": true,\n"
                    "  \"nothing\": null,\n"
                    "  \"empty\": [],\n"
                    "  \"list\": [\n"
                    "    \"x\",\n"
                    "    {\n"
                    "      \"k\": null\n"
                    "    }\n"
                    "  ]\n"
                    "}\n");
}

/* Bytes that are not UTF-8 (a nickname from a token or a PKCS#12 file) must not make the output
 * invalid JSON: they become U+FFFD; valid UTF-8 is kept as it is. */
static void test_invalid_utf8(void)
{
    g_autofree char *bad = caback_json_escape("caSigning\xff\xfe"
                                              "Cert \xc3");
    g_assert_true(g_utf8_validate(bad, -1, NULL));
    g_assert_cmpstr(bad, ==,
                    "caSigning\xef\xbf\xbd\xef\xbf\xbd"
                    "Cert \xef\xbf\xbd");
    g_autofree char *good = caback_json_escape("Zertifikat f\xc3\xbc"
                                               "r \xe2\x82\xac");
    g_assert_cmpstr(good, ==,
                    "Zertifikat f\xc3\xbc"
                    "r \xe2\x82\xac");
}

/* The shorthands write what the calls they replace wrote. */
static void test_shorthands(void)
{
    g_autoptr(CabackJson) j = caback_json_new();
    g_autoptr(GPtrArray) strings = g_ptr_array_new();

    g_ptr_array_add(strings, "a");
    g_ptr_array_add(strings, "b\"c");
    caback_json_begin_object(j, NULL);
    caback_json_int_or_null(j, "size", TRUE, 2048);
    caback_json_int_or_null(j, "index", FALSE, 7);
    caback_json_printf(j, "entry", "cloning.%s.privkey.id=%s", "ca_signing", "-1f");
    caback_json_printf(j, "none", NULL);
    caback_json_strings(j, "notes", strings);
    caback_json_strings(j, "empty", NULL);
    caback_json_end_object(j);
    g_assert_cmpstr(caback_json_text(j), ==,
                    "{\n"
                    "  \"size\": 2048,\n"
                    "  \"index\": null,\n"
                    "  \"entry\": \"cloning.ca_signing.privkey.id=-1f\",\n"
                    "  \"none\": null,\n"
                    "  \"notes\": [\n"
                    "    \"a\",\n"
                    "    \"b\\\"c\"\n"
                    "  ],\n"
                    "  \"empty\": []\n"
                    "}\n");
}

/* The members of a verb's object, one of them nested (3,000 certificates: over 64 KiB). */
static void verb_members(CabackJson *j, gboolean with_error)
{
    caback_json_string(j, "file", "a \"b\"");
    if (with_error)
        caback_json_string(j, "error", "the verb's own");
    caback_json_begin_array(j, "certificates");
    for (int i = 0; i < 3000; i++) {
        caback_json_begin_object(j, NULL);
        caback_json_int(j, "index", i);
        caback_json_string(j, "subject", "CN=x, O=\"y\"");
        caback_json_end_object(j);
    }
    caback_json_end_array(j);
    caback_json_begin_array(j, "empty");
    caback_json_end_array(j);
}

/* The text of that object, as a verb hands it to the envelope. */
static char *verb_object(void)
{
    g_autoptr(CabackJson) j = caback_json_new();
    caback_json_begin_object(j, NULL);
    verb_members(j, TRUE);
    caback_json_end_object(j);
    return caback_json_steal_text(j);
}

/* The envelope around @object as caback_cli_json_finish makes it, kept or streamed. */
static void append_written(const char *text, gsize len, gpointer data)
{
    g_string_append_len(data, text, (gssize)len);
}

static char *envelope(const char *object, gboolean streamed)
{
    static const char *const skip[] = {"error", NULL};
    g_autoptr(CabackJson) j = caback_json_new();
    g_autoptr(GString) written = g_string_new(NULL);
    caback_json_begin_object(j, NULL);
    caback_json_int(j, "caback", 1);
    caback_json_null(j, "error");
    if (streamed)
        caback_json_stream(j, append_written, written);
    caback_json_merge_members(j, object, skip);
    caback_json_begin_array(j, "warnings");
    caback_json_end_array(j);
    caback_json_end_object(j);
    g_string_append(written, caback_json_text(j));
    return g_string_free(g_steal_pointer(&written), FALSE);
}

/* Merging copies every member but the skipped ones, nested values whole, without their
 * separating comma; streaming it gives the same bytes, in pieces. */
static void test_merge(void)
{
    g_autofree char *object = verb_object();
    g_assert_true(caback_json_text_has_member(object, "certificates"));
    g_assert_true(caback_json_text_has_member(object, "empty"));
    g_assert_false(caback_json_text_has_member(object, "index"));
    g_assert_false(caback_json_text_has_member(object, "warnings"));

    g_autofree char *kept = envelope(object, FALSE);
    g_autofree char *streamed = envelope(object, TRUE);
    g_assert_cmpstr(kept, ==, streamed);
    g_assert_true(g_str_has_prefix(kept, "{\n  \"caback\": 1,\n  \"error\": null,\n"
                                         "  \"file\": \"a \\\"b\\\"\",\n"
                                         "  \"certificates\": [\n    {\n      \"index\": 0,\n"));
    g_assert_true(g_str_has_suffix(kept, "      \"index\": 2999,\n"
                                         "      \"subject\": \"CN=x, O=\\\"y\\\"\"\n"
                                         "    }\n  ],\n  \"empty\": [],\n  \"warnings\": []\n}\n"));
    g_assert_null(strstr(kept, "the verb's own"));
}

static void count_pieces(const char *text, gsize len, gpointer data)
{
    GPtrArray *pieces = data;
    g_ptr_array_add(pieces, g_strndup(text, len));
}

/* Members written straight into a streamed envelope (caback_cli_json_stream_success) give the
 * bytes of the merged one, in several pieces, each ending between two members. */
static void test_stream_direct(void)
{
    g_autofree char *object = verb_object();
    g_autofree char *kept = envelope(object, FALSE);

    g_autoptr(CabackJson) j = caback_json_new();
    g_autoptr(GPtrArray) pieces = g_ptr_array_new_with_free_func(g_free);
    caback_json_begin_object(j, NULL);
    caback_json_int(j, "caback", 1);
    caback_json_null(j, "error");
    caback_json_stream(j, count_pieces, pieces);
    verb_members(j, FALSE);
    caback_json_begin_array(j, "warnings");
    caback_json_end_array(j);
    caback_json_end_object(j);
    g_ptr_array_add(pieces, g_strdup(caback_json_text(j)));

    g_assert_cmpuint(pieces->len, >, 2);
    g_autoptr(GString) joined = g_string_new(NULL);
    for (guint i = 0; i < pieces->len; i++) {
        const char *piece = pieces->pdata[i];
        g_assert_cmpuint(strlen(piece), <=, 64 * 1024 + 256);
        /* A piece ends after a value or an opening bracket, before the comma of the next. */
        if (i + 1 < pieces->len)
            g_assert_null(strchr(",\n ", piece[strlen(piece) - 1]));
        g_string_append(joined, piece);
    }
    g_assert_cmpstr(joined->str, ==, kept);
}

/* The text is the writer's buffer: writing on after reading it takes its newline back. */
static void test_text_then_more(void)
{
    g_autoptr(CabackJson) j = caback_json_new();
    caback_json_begin_object(j, NULL);
    caback_json_int(j, "a", 1);
    g_assert_cmpstr(caback_json_text(j), ==, "{\n  \"a\": 1\n");
    g_assert_cmpstr(caback_json_text(j), ==, "{\n  \"a\": 1\n");
    caback_json_int(j, "b", 2);
    caback_json_end_object(j);
    g_assert_cmpstr(caback_json_text(j), ==, "{\n  \"a\": 1,\n  \"b\": 2\n}\n");
    g_autofree char *stolen = caback_json_steal_text(j);
    g_assert_cmpstr(stolen, ==, "{\n  \"a\": 1,\n  \"b\": 2\n}\n");
    g_assert_cmpstr(caback_json_text(j), ==, "\n");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/json/nested", test_nested);
    g_test_add_func("/json/invalid-utf8", test_invalid_utf8);
    g_test_add_func("/json/shorthands", test_shorthands);
    g_test_add_func("/json/merge", test_merge);
    g_test_add_func("/json/stream-direct", test_stream_direct);
    g_test_add_func("/json/text-then-more", test_text_then_more);
    return g_test_run();
}
