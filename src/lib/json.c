/* The JSON writer behind --json (pretty-printed, two spaces per level). */
#include "config.h"

#include <caback/json.h>

#include <stdarg.h>
#include <string.h>

struct CabackJson {
    GString *out;
    GArray *first; /* per open level: TRUE until its first member is written */
    gboolean terminated; /* caback_json_text added the final newline to out */
    CabackJsonWriteFunc write; /* caback_json_stream: where the text goes as it is made */
    gpointer write_data;
};

/* Past this many bytes waiting, a streamed writer hands its text over. */
#define STREAM_CHUNK (64 * 1024)

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

/* Before writing on: take back the final newline caback_json_text added. */
static void unterminate(CabackJson *json)
{
    if (json->terminated)
        g_string_truncate(json->out, json->out->len - 1);
    json->terminated = FALSE;
}

/* A streamed writer hands over what waits once there is enough of it. Called only where the
 * text waiting is final (no comma of it may be taken back). */
static void maybe_flush(CabackJson *json)
{
    if (json->write == NULL || json->out->len < STREAM_CHUNK)
        return;
    json->write(json->out->str, json->out->len, json->write_data);
    g_string_truncate(json->out, 0);
}

/* Separator, indentation and "key": before a value. What waits before it is final (a merge takes
 * back a member's comma before it starts the next one), so a streamed writer may hand it over. */
static void member(CabackJson *json, const char *key)
{
    unterminate(json);
    maybe_flush(json);
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
    unterminate(json);
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

/* The text is the writer's own buffer: no copy, since the JSON of a large file is several times
 * the size of anything else kept (issue 16 §3). */
const char *caback_json_text(CabackJson *json)
{
    if (!json->terminated)
        g_string_append_c(json->out, '\n');
    json->terminated = TRUE;
    return json->out->str;
}

void caback_json_stream(CabackJson *json, CabackJsonWriteFunc write, gpointer data)
{
    json->write = write;
    json->write_data = data;
}

char *caback_json_steal_text(CabackJson *json)
{
    caback_json_text(json);
    char *text = g_string_free(json->out, FALSE);
    json->out = g_string_new(NULL);
    json->terminated = FALSE;
    g_array_set_size(json->first, 0);
    return text;
}

/* The writer puts each member of the top-level object on a line of its own that starts with two
 * spaces and the quoted name; deeper lines are indented further, and strings never hold a raw
 * line break (escaped). That is all a merge needs to find the members. The @len bytes at @line
 * (no newline) start a member: its name goes to *@key (caller frees). */
static gboolean top_member_start(const char *line, gsize len, char **key)
{
    if (len < 3 || strncmp(line, "  \"", 3) != 0)
        return FALSE;
    const char *p = line + 3, *end = line + len;
    GString *k = g_string_new(NULL);
    while (p < end && *p != '"') {
        if (*p == '\\' && p + 1 < end)
            p++;
        g_string_append_c(k, *p++);
    }
    *key = g_string_free(k, FALSE);
    return TRUE;
}

/* Calls @line for each line of @object_text: its start, its length (without the newline) and
 * the member's name when the line starts a top-level member (else NULL). The lines are walked
 * with memchr over the known length: strstr-based splitting would rescan the rest of the text at
 * every line under sanitizers that check whole strings (minutes for the JSON of a file with
 * thousands of certificates). Nothing is copied but the names: the text of a file with many
 * certificates is large (issue 16 §3). */
typedef void (*MemberLineFunc)(const char *line, gsize len, const char *key, gpointer data);

static void member_lines(const char *object_text, MemberLineFunc func, gpointer data)
{
    const char *p = object_text, *end = object_text + strlen(object_text);

    for (;;) {
        const char *nl = memchr(p, '\n', (gsize)(end - p));
        gsize len = (gsize)((nl != NULL ? nl : end) - p);
        g_autofree char *key = NULL;
        if (!top_member_start(p, len, &key))
            g_clear_pointer(&key, g_free);
        func(p, len, key, data);
        if (nl == NULL)
            break;
        p = nl + 1;
    }
}

typedef struct {
    CabackJson *json;
    const char *const *skip;
    gboolean copying; /* a member is being copied (not one of @skip) */
} MergeState;

/* The member being copied ends: without the comma that separated it in its object. */
static void merge_end_member(MergeState *m)
{
    GString *out = m->json->out;

    if (m->copying && out->len > 0 && out->str[out->len - 1] == ',')
        g_string_truncate(out, out->len - 1);
    m->copying = FALSE;
}

static void merge_line(const char *line, gsize len, const char *key, gpointer data)
{
    MergeState *m = data;

    if (key != NULL) {
        merge_end_member(m);
        maybe_flush(m->json);
        if (m->skip != NULL && g_strv_contains(m->skip, key))
            return;
        member(m->json, NULL);
        g_string_append_len(m->json->out, line + 2, (gssize)(len - 2));
        m->copying = TRUE;
    } else if (m->copying && len >= 2 && line[0] == ' ' && line[1] == ' ') {
        /* a deeper line of the member, or "  ]" / "  }" that ends a multi-line value; the
         * line before it is not the member's last, so its comma stays */
        maybe_flush(m->json);
        g_string_append_c(m->json->out, '\n');
        g_string_append_len(m->json->out, line, (gssize)len);
    }
}

void caback_json_merge_members(CabackJson *json, const char *object_text, const char *const *skip)
{
    MergeState m = {json, skip, FALSE};

    member_lines(object_text, merge_line, &m);
    merge_end_member(&m);
}

typedef struct {
    const char *key;
    gboolean found;
} HasMemberState;

static void has_member_line(const char *line, gsize len, const char *key, gpointer data)
{
    HasMemberState *h = data;

    (void)line;
    (void)len;
    if (key != NULL && strcmp(key, h->key) == 0)
        h->found = TRUE;
}

gboolean caback_json_text_has_member(const char *object_text, const char *key)
{
    HasMemberState h = {key, FALSE};

    member_lines(object_text, has_member_line, &h);
    return h.found;
}
