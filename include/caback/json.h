/* A small writer for the JSON that --json prints: objects, arrays, strings, numbers, booleans. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct CabackJson CabackJson;

CabackJson *caback_json_new(void);
void caback_json_free(CabackJson *json);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackJson, caback_json_free)

/* In each call, @key is the member name inside an object and must be NULL inside an array or at
 * the top level. */
void caback_json_begin_object(CabackJson *json, const char *key);
void caback_json_end_object(CabackJson *json);
void caback_json_begin_array(CabackJson *json, const char *key);
void caback_json_end_array(CabackJson *json);
/* A string member (escaped as JSON requires); NULL @value writes null. */
void caback_json_string(CabackJson *json, const char *key, const char *value);
void caback_json_int(CabackJson *json, const char *key, gint64 value);
void caback_json_bool(CabackJson *json, const char *key, gboolean value);
void caback_json_null(CabackJson *json, const char *key);
/* An integer member when @present, else null (a size, index or count that may be unknown). */
void caback_json_int_or_null(CabackJson *json, const char *key, gboolean present, gint64 value);
/* A string member made from @format; a NULL @format writes null. */
void caback_json_printf(CabackJson *json, const char *key, const char *format, ...)
    G_GNUC_PRINTF(3, 4);
/* An array member holding the strings (char*) of @strings; NULL writes an empty array. */
void caback_json_strings(CabackJson *json, const char *key, const GPtrArray *strings);

/* The text written so far, with a final newline; valid only while @json lives and until the
 * next write to it. */
const char *caback_json_text(CabackJson *json);

/* caback_json_text handed over without a copy (caller frees); @json is left empty. */
char *caback_json_steal_text(CabackJson *json);

/* Where a streamed writer hands its text: @len bytes at @text (no NUL needed). */
typedef void (*CabackJsonWriteFunc)(const char *text, gsize len, gpointer data);

/* From now on, caback_json_merge_members hands the text of @json to @write as it goes (in
 * pieces of about 64 KiB) instead of keeping it all, and caback_json_text gives only what was
 * not handed over yet: for printing a merged object whose members are large (the result of a
 * file of many certificates, issue 16 §3) without a second copy of them. */
void caback_json_stream(CabackJson *json, CabackJsonWriteFunc write, gpointer data);

/* Copy into the object open at the top level of @json the members of @object_text, a complete
 * object as caback_json_text writes it (one member per line at the first level), except those
 * whose name is in the NULL-terminated @skip (may be NULL). Nested values are copied as they are;
 * the indentation matches. */
void caback_json_merge_members(CabackJson *json, const char *object_text, const char *const *skip);

/* TRUE when @object_text (as caback_json_text writes it) has a top-level member @key. */
gboolean caback_json_text_has_member(const char *object_text, const char *key);

/* @value escaped as the contents of a JSON string (without the quotes); caller frees. */
char *caback_json_escape(const char *value);

G_END_DECLS
