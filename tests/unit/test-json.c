/* Unit tests for the JSON writer behind --json. */
#include "config.h"

#include <caback/json.h>

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

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/json/nested", test_nested);
    g_test_add_func("/json/invalid-utf8", test_invalid_utf8);
    g_test_add_func("/json/shorthands", test_shorthands);
    return g_test_run();
}
