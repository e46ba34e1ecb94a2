/* Which recorded backup is newest (see include/caback/freshness.h). */
#include "config.h"

#include <caback/freshness.h>

#include <string.h>

void caback_backup_record_free(CabackBackupRecord *record)
{
    if (record == NULL)
        return;
    g_free(record->time);
    g_free(record->database);
    g_free(record->file);
    g_free(record->sha256);
    g_array_unref(record->key_ids);
    g_free(record);
}

/* The JSON string that starts at @p (just after its opening quote), unescaped; *@end is set after
 * its closing quote. NULL when it is not a well-formed string of caback's log (\uXXXX beyond
 * Latin-1 is kept as '?': only for comparing paths caback wrote itself). */
static char *json_string_at(const char *p, const char *limit, const char **end)
{
    GString *s = g_string_new(NULL);

    while (p < limit && *p != '"') {
        if (*p != '\\') {
            g_string_append_c(s, *p++);
            continue;
        }
        if (++p >= limit)
            break;
        switch (*p) {
        case '"': case '\\': case '/': g_string_append_c(s, *p); break;
        case 'n': g_string_append_c(s, '\n'); break;
        case 't': g_string_append_c(s, '\t'); break;
        case 'r': g_string_append_c(s, '\r'); break;
        case 'b': g_string_append_c(s, '\b'); break;
        case 'f': g_string_append_c(s, '\f'); break;
        case 'u': {
            if (limit - p < 5 || !g_ascii_isxdigit(p[1]) || !g_ascii_isxdigit(p[2]) ||
                !g_ascii_isxdigit(p[3]) || !g_ascii_isxdigit(p[4]))
                goto bad;
            gunichar c = (g_ascii_xdigit_value(p[1]) << 12) | (g_ascii_xdigit_value(p[2]) << 8) |
                         (g_ascii_xdigit_value(p[3]) << 4) | g_ascii_xdigit_value(p[4]);
            if (c < 0x100)
                g_string_append_unichar(s, c);
            else
                g_string_append_c(s, '?');
            p += 4;
            break;
        }
        default:
            goto bad;
        }
        p++;
    }
    if (p >= limit)
        goto bad;
    *end = p + 1;
    return g_string_free(s, FALSE);
bad:
    g_string_free(s, TRUE);
    return NULL;
}

/* The string member @key of the top-level object on @line (the first occurrence: caback writes
 * the top-level members before the nested "keys"), or NULL when absent or null. */
static char *member(const char *line, const char *limit, const char *key)
{
    g_autofree char *needle = g_strdup_printf("\"%s\":\"", key);
    const char *at = g_strstr_len(line, limit - line, needle);
    const char *end = NULL;

    return at != NULL ? json_string_at(at + strlen(needle), limit, &end) : NULL;
}

static gboolean well_formed_time(const char *t)
{
    /* YYYY-MM-DDTHH:MM:SSZ */
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    if (t == NULL || strlen(t) != sizeof shape - 1)
        return FALSE;
    for (gsize i = 0; shape[i] != '\0'; i++)
        if (shape[i] == 'd' ? !g_ascii_isdigit(t[i]) : t[i] != shape[i])
            return FALSE;
    return TRUE;
}

static gboolean well_formed_sha256(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return FALSE;
    for (gsize i = 0; i < 64; i++)
        if (!g_ascii_isxdigit(s[i]))
            return FALSE;
    return TRUE;
}

/* A key ID as the log writes it (caback_keyid_to_token_hex: the CKA_ID's own bytes in hex), with
 * its length kept; FALSE for anything else. */
static gboolean log_key_id(const char *text, CabackKeyId *id)
{
    gsize n = strlen(text);
    guint8 bytes[CABACK_KEYID_LEN];

    if (n == 0 || n % 2 != 0 || n > 2 * CABACK_KEYID_LEN)
        return FALSE;
    for (gsize i = 0; i < n; i += 2) {
        int hi = g_ascii_xdigit_value(text[i]), lo = g_ascii_xdigit_value(text[i + 1]);
        if (hi < 0 || lo < 0)
            return FALSE;
        bytes[i / 2] = (guint8)(hi << 4 | lo);
    }
    return caback_keyid_from_bytes(bytes, n / 2, id, NULL);
}

static CabackBackupRecord *parse_line(const char *line, const char *limit)
{
    g_autofree char *verb = member(line, limit, "verb");
    g_autofree char *result = member(line, limit, "result");
    if (g_strcmp0(verb, "backup") != 0 || g_strcmp0(result, "OK") != 0)
        return NULL;
    g_autoptr(CabackBackupRecord) r = g_new0(CabackBackupRecord, 1);
    r->key_ids = g_array_new(FALSE, FALSE, sizeof(CabackKeyId));
    r->time = member(line, limit, "time");
    r->database = member(line, limit, "database");
    r->file = member(line, limit, "file");
    r->sha256 = member(line, limit, "sha256");
    if (!well_formed_time(r->time) || r->file == NULL || !well_formed_sha256(r->sha256))
        return NULL;
    char *lower = g_ascii_strdown(r->sha256, -1);
    g_free(r->sha256);
    r->sha256 = lower;
    static const char needle[] = "\"nss_id\":\"";
    for (const char *p = line; (p = g_strstr_len(p, limit - p, needle)) != NULL;) {
        const char *end = NULL;
        char *id = json_string_at(p + strlen(needle), limit, &end);
        if (id == NULL)
            break;
        CabackKeyId key_id;
        if (log_key_id(id, &key_id))
            g_array_append_val(r->key_ids, key_id);
        g_free(id);
        p = end;
    }
    return g_steal_pointer(&r);
}

GPtrArray *caback_backup_records_parse(const char *contents, gsize len)
{
    GPtrArray *records =
        g_ptr_array_new_with_free_func((GDestroyNotify)caback_backup_record_free);
    const char *end = contents + len;

    for (const char *line = contents; line < end;) {
        const char *nl = memchr(line, '\n', end - line);
        const char *limit = nl != NULL ? nl : end;
        CabackBackupRecord *r = parse_line(line, limit);
        if (r != NULL)
            g_ptr_array_add(records, r);
        line = limit + 1;
    }
    return records;
}

/* The same ID as its token holds it: the same bytes, and the same length. */
static gboolean same_key_id(const CabackKeyId *a, const CabackKeyId *b)
{
    return a->token_len == b->token_len && caback_keyid_equal(a, b);
}

static guint key_id_hash(gconstpointer p)
{
    const CabackKeyId *id = p;
    guint h = id->token_len;

    for (gsize i = 0; i < CABACK_KEYID_LEN; i++)
        h = h * 31 + id->bytes[i];
    return h;
}

static gboolean key_id_same(gconstpointer a, gconstpointer b)
{
    return same_key_id(a, b);
}

/* Does record @r name a key of @file_keys (a set of the file's CabackKeyId)? Looked up, not
 * compared pairwise: a file of 100,000 keys against records of 1,000 would otherwise make 10^8
 * comparisons per record. */
static gboolean shares_key(const CabackBackupRecord *r, GHashTable *file_keys)
{
    for (guint i = 0; file_keys != NULL && i < r->key_ids->len; i++)
        if (g_hash_table_contains(file_keys, &g_array_index(r->key_ids, CabackKeyId, i)))
            return TRUE;
    return FALSE;
}

/* The IDs of @key_ids as a set (NULL for NULL); its keys point into @key_ids. */
static GHashTable *key_id_set(const GArray *key_ids)
{
    if (key_ids == NULL)
        return NULL;
    GHashTable *set = g_hash_table_new(key_id_hash, key_id_same);
    for (guint i = 0; i < key_ids->len; i++)
        g_hash_table_add(set, &g_array_index(key_ids, CabackKeyId, i));
    return set;
}

CabackFreshness caback_freshness_judge(GPtrArray *records, const char *sha256,
                                       const GArray *key_ids, const char *date)
{
    CabackFreshness f = {NULL, NULL};

    for (guint i = 0; i < records->len; i++) {
        const CabackBackupRecord *r = records->pdata[i];
        if (g_ascii_strcasecmp(r->sha256, sha256) == 0 &&
            (f.self == NULL || strcmp(r->time, f.self->time) >= 0))
            f.self = r;
    }
    if (date == NULL && f.self != NULL)
        date = f.self->time;
    if (date == NULL)
        return f;
    g_autoptr(GHashTable) file_keys = key_id_set(key_ids);
    for (guint i = 0; i < records->len; i++) {
        const CabackBackupRecord *r = records->pdata[i];
        if (g_ascii_strcasecmp(r->sha256, sha256) == 0 || strcmp(r->time, date) <= 0)
            continue;
        gboolean same = f.self != NULL && f.self->database != NULL
                            ? g_strcmp0(r->database, f.self->database) == 0
                            : shares_key(r, file_keys);
        if (same && (f.newer == NULL || strcmp(r->time, f.newer->time) >= 0))
            f.newer = r;
    }
    return f;
}
