/* The JSON writer behind --json (pretty-printed, two spaces per level). */
#include "config.h"

#include <caback/json.h>

#include <string.h>

struct CabackJson {
    GString *out;
    GArray *first; /* per open level: TRUE until its first member is written */
    char *text;
};

CabackJson *caback_json_new(void)
{
    CabackJson *json = g_new0(CabackJson, 1);
    json->out = g_string_new(NULL);
    json->first = g_array_new(FALSE, FALSE, sizeof(gboolean));
    return json;
}

void caback_json_free(CabackJson *json)
{
    if (json == NULL)
        return;
    g_string_free(json->out, TRUE);
    g_array_free(json->first, TRUE);
    g_free(json->text);
    g_free(json);
}

char *caback_json_escape(const char *value)
{
    /* JSON text is UTF-8. Nicknames, labels and file names come from tokens, PKCS#12 files and
     * the file system and can hold any bytes: invalid sequences become U+FFFD, so that the
     * output stays readable by every JSON parser. */
    g_autofree char *valid = g_utf8_validate(value, -1, NULL) ? NULL : g_utf8_make_valid(value, -1);
    if (valid != NULL)
        value = valid;
    GString *s = g_string_sized_new(strlen(value) + 2);

    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        switch (*p) {
        case '"':
            g_string_append(s, "\\\"");
            break;
        case '\\':
            g_string_append(s, "\\\\");
            break;
        case '\n':
            g_string_append(s, "\\n");
            break;
        case '\r':
            g_string_append(s, "\\r");
            break;
        case '\t':
            g_string_append(s, "\\t");
            break;
        default:
            if (*p < 0x20)
                g_string_append_printf(s, "\\u%04x", *p);
            else
                g_string_append_c(s, (char)*p);
        }
    }
    return g_string_free(s, FALSE);
}

static void indent(CabackJson *json)
{
    for (guint i = 0; i < json->first->len; i++)
        g_string_append(json->out, "  ");
}

/* Separator, indentation and "key": before a value. */
static void member(CabackJson *json, const char *key)
{
    if (json->first->len > 0) {
        gboolean *first = &g_array_index(json->first, gboolean, json->first->len - 1);
        if (!*first)
            g_string_append_c(json->out, ',');
        *first = FALSE;
        g_string_append_c(json->out, '\n');
        indent(json);
    }
    if (key != NULL) {
        g_autofree char *k = caback_json_escape(key);
        g_string_append_printf(json->out, "\"%s\": ", k);
    }
}

static void open_level(CabackJson *json, const char *key, char c)
{
    gboolean first = TRUE;
    member(json, key);
    g_string_append_c(json->out, c);
    g_array_append_val(json->first, first);
}

static void close_level(CabackJson *json, char c)
{
    gboolean empty = g_array_index(json->first, gboolean, json->first->len - 1);
    g_array_set_size(json->first, json->first->len - 1);
    if (!empty) {
        g_string_append_c(json->out, '\n');
        indent(json);
    }
    g_string_append_c(json->out, c);
}

void caback_json_begin_object(CabackJson *json, const char *key)
{
    open_level(json, key, '{');
}

void caback_json_end_object(CabackJson *json)
{
    close_level(json, '}');
}

void caback_json_begin_array(CabackJson *json, const char *key)
{
    open_level(json, key, '[');
}

void caback_json_end_array(CabackJson *json)
{
    close_level(json, ']');
}

void caback_json_string(CabackJson *json, const char *key, const char *value)
{
    if (value == NULL) {
        caback_json_null(json, key);
        return;
    }
    g_autofree char *v = caback_json_escape(value);
    member(json, key);
    g_string_append_printf(json->out, "\"%s\"", v);
}

void caback_json_int(CabackJson *json, const char *key, gint64 value)
{
    member(json, key);
    g_string_append_printf(json->out, "%" G_GINT64_FORMAT, value);
}

void caback_json_bool(CabackJson *json, const char *key, gboolean value)
{
    member(json, key);
    g_string_append(json->out, value ? "true" : "false");
}

void caback_json_null(CabackJson *json, const char *key)
{
    member(json, key);
    g_string_append(json->out, "null");
}

const char *caback_json_text(CabackJson *json)
{
    g_free(json->text);
    json->text = g_strdup_printf("%s\n", json->out->str);
    return json->text;
}
