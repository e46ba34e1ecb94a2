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
    g_ptr_array_unref(record->nss_ids);
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

static CabackBackupRecord *parse_line(const char *line, const char *limit)
{
    g_autofree char *verb = member(line, limit, "verb");
    g_autofree char *result = member(line, limit, "result");
    if (g_strcmp0(verb, "backup") != 0 || g_strcmp0(result, "OK") != 0)
        return NULL;
    g_autoptr(CabackBackupRecord) r = g_new0(CabackBackupRecord, 1);
    r->nss_ids = g_ptr_array_new_with_free_func(g_free);
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
        g_ptr_array_add(r->nss_ids, g_ascii_strdown(id, -1));
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

static gboolean shares_key(const CabackBackupRecord *r, const char *const *nss_ids)
{
    for (guint i = 0; nss_ids != NULL && i < r->nss_ids->len; i++)
        for (const char *const *id = nss_ids; *id != NULL; id++)
            if (g_ascii_strcasecmp(r->nss_ids->pdata[i], *id) == 0)
                return TRUE;
    return FALSE;
}

CabackFreshness caback_freshness_judge(GPtrArray *records, const char *sha256,
                                       const char *const *nss_ids, const char *date)
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
    for (guint i = 0; i < records->len; i++) {
        const CabackBackupRecord *r = records->pdata[i];
        if (g_ascii_strcasecmp(r->sha256, sha256) == 0 || strcmp(r->time, date) <= 0)
            continue;
        gboolean same = f.self != NULL && f.self->database != NULL
                            ? g_strcmp0(r->database, f.self->database) == 0
                            : shares_key(r, nss_ids);
        if (same && (f.newer == NULL || strcmp(r->time, f.newer->time) >= 0))
            f.newer = r;
    }
    return f;
}
