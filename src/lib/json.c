/* The JSON writer behind --json (pretty-printed, two spaces per level). */
#include "config.h"

#include <caback/json.h>

#include <stdarg.h>
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

void caback_json_int_or_null(CabackJson *json, const char *key, gboolean present, gint64 value)
{
    if (present)
        caback_json_int(json, key, value);
    else
        caback_json_null(json, key);
}

void caback_json_printf(CabackJson *json, const char *key, const char *format, ...)
{
    va_list args;

    if (format == NULL) {
        caback_json_null(json, key);
        return;
    }
    va_start(args, format);
    g_autofree char *value = g_strdup_vprintf(format, args);
    va_end(args);
    caback_json_string(json, key, value);
}

void caback_json_strings(CabackJson *json, const char *key, const GPtrArray *strings)
{
    caback_json_begin_array(json, key);
    for (guint i = 0; strings != NULL && i < strings->len; i++)
        caback_json_string(json, NULL, strings->pdata[i]);
    caback_json_end_array(json);
}

const char *caback_json_text(CabackJson *json)
{
    g_free(json->text);
    json->text = g_strdup_printf("%s\n", json->out->str);
    return json->text;
}

/* The writer puts each member of the top-level object on a line of its own that starts with two
 * spaces and the quoted name; deeper lines are indented further, and strings never hold a raw
 * line break (escaped). That is all a merge needs to find the members. */
static gboolean top_member_start(const char *line, char **key)
{
    if (strncmp(line, "  \"", 3) != 0)
        return FALSE;
    const char *p = line + 3;
    GString *k = g_string_new(NULL);
    while (*p != '\0' && *p != '"' && *p != '\n') {
        if (*p == '\\' && p[1] != '\0')
            p++;
        g_string_append_c(k, *p++);
    }
    *key = g_string_free(k, FALSE);
    return TRUE;
}

/* The members of @object_text as name, text pairs (text without the separating comma). The lines
 * are walked with memchr over the known length: splitting by strstr-based calls would rescan the
 * rest of the text at every line under sanitizers that check whole strings (minutes for the JSON
 * of a file with thousands of certificates). */
static GPtrArray *split_members(const char *object_text)
{
    GPtrArray *members = g_ptr_array_new_with_free_func(g_free);
    GString *current = NULL;
    g_autoptr(GString) line = g_string_new(NULL);
    const char *p = object_text, *end = object_text + strlen(object_text);

    for (;;) {
        const char *nl = memchr(p, '\n', (gsize)(end - p));
        g_string_truncate(line, 0);
        g_string_append_len(line, p, (nl != NULL ? nl : end) - p);
        const char *l = line->str;
        char *key = NULL;
        if (top_member_start(l, &key)) {
            if (current != NULL)
                g_ptr_array_add(members, g_string_free(current, FALSE));
            g_ptr_array_add(members, key);
            current = g_string_new(l + 2);
        } else if (current != NULL && g_str_has_prefix(l, "   ")) {
            g_string_append_c(current, '\n');
            g_string_append_len(current, l, line->len);
        } else if (current != NULL && l[0] == ' ' && l[1] == ' ' && l[2] != ' ') {
            /* "  ]" or "  }": the end of a multi-line member value */
            g_string_append_c(current, '\n');
            g_string_append_len(current, l, line->len);
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    if (current != NULL)
        g_ptr_array_add(members, g_string_free(current, FALSE));
    for (guint i = 1; i < members->len; i += 2) {
        char *text = members->pdata[i];
        gsize n = strlen(text);
        if (n > 0 && text[n - 1] == ',')
            text[n - 1] = '\0';
    }
    return members;
}

void caback_json_merge_members(CabackJson *json, const char *object_text, const char *const *skip)
{
    g_autoptr(GPtrArray) members = split_members(object_text);

    for (guint i = 0; i + 1 < members->len; i += 2) {
        const char *key = members->pdata[i];
        if (skip != NULL && g_strv_contains(skip, key))
            continue;
        member(json, NULL);
        g_string_append(json->out, members->pdata[i + 1]);
    }
}

gboolean caback_json_text_has_member(const char *object_text, const char *key)
{
    g_autoptr(GPtrArray) members = split_members(object_text);

    for (guint i = 0; i + 1 < members->len; i += 2)
        if (strcmp(members->pdata[i], key) == 0)
            return TRUE;
    return FALSE;
}
