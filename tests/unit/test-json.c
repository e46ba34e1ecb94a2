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

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/json/nested", test_nested);
    return g_test_run();
}
