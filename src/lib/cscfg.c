/* Dogtag CS.cfg: parsing as the Java loader does, byte-preserving edits, unified diffs and the
 * cloning.<tag>.* entries. Pure logic over bytes and strings; no NSS.
 *
 * The parsing rules follow Dogtag's own loader, com.netscape.cmscore.base.SimpleProperties.load
 * (used by PropConfigStore / FileConfigStore), and the value rule follows
 * PropConfigStore.getString, which every reader of these entries uses:
 *  - the file is split into lines at "\n", "\r" or "\r\n" (BufferedReader.readLine); a lone "\r"
 *    ends a line too;
 *  - an empty line is skipped; a line whose FIRST character is '#' or '!' is a comment (a '#'
 *    after leading white space is not: "  #x=1" is the key "#x");
 *  - a line (not a comment) that ends in an odd number of backslashes continues on the next
 *    line: the backslash and the line end are dropped, and so is the white space (" \t\f")
 *    that starts the next line; that next line is never a comment, whatever it starts with;
 *  - the key starts at the first non-white-space character and ends before the first '=', ':',
 *    space, tab or form feed; a backslash makes the character after it part of the key, and
 *    stays in the key (the source comments out Java's escape conversion: keys and values are
 *    taken literally);
 *  - then white space, at most one '=' or ':', white space; the rest of the line is the value;
 *  - getString trims the value with String.trim(): every character <= 0x20 at both ends (the
 *    loader itself keeps trailing white space);
 *  - the last of several entries with one key wins (Hashtable.put).
 * The loader reads UTF-8; every syntax character is ASCII and never occurs inside a UTF-8
 * multi-byte sequence, so working on bytes gives the same keys and values.
 * Where this differs from a plain reading of the rules ("values trimmed", "comment in column 0"),
 * the source wins: trailing white space is kept by the loader and removed by getString; "\r"
 * alone ends a line; the continuation line's leading white space is dropped; '\f' is white space.
 *
 * What Dogtag (<= 10.8) writes, from its source (Configurator / ConfigurationUtils.storeKeyPair,
 * SystemConfigService.updateCloneConfiguration, then copied from preop.cert.<tag>.* into
 * cloning.<tag>.* with "" as the default): privkey.id = CryptoUtil.encodeKeyID(CKA_ID), i.e.
 * new BigInteger(id).toString(16); pubkey.modulus and pubkey.exponent =
 * CryptoUtil.byte2string(x.toByteArray()) of the positive RSA numbers, i.e. lowercase hex without
 * leading zeros ("10001" for 65537); pubkey.encoded = byte2string(publicKey.getEncoded()) for keys
 * that are not RSA, the SubjectPublicKeyInfo DER (first byte 0x30, so plain lowercase hex). The
 * entries that do not apply to the key's type stay "". */
#include "config.h"

#include <caback/cscfg.h>
#include <caback/error.h>
#include <caback/nickname.h>

#include <string.h>

struct CabackCsCfg {
    char *path;
    guint8 *data;
    gsize len;
    GPtrArray *entries; /* of CabackCsCfgEntry*, file order */
    GHashTable *index;  /* key -> the last CabackCsCfgEntry* with that key */
};

static void entry_free(CabackCsCfgEntry *entry)
{
    if (entry == NULL)
        return;
    g_free(entry->key);
    g_free(entry->value);
    g_free(entry);
}

/* White space for the loader (its whiteSpaceChars); '\r' and '\n' never occur inside a line. */
static gboolean loader_space(guint8 c)
{
    return c == ' ' || c == '\t' || c == '\f' || c == '\r' || c == '\n';
}

/* One physical line: [start, end) without its terminator; next is where the following line
 * starts. */
typedef struct {
    gsize start, end, next;
} PhysLine;

static gboolean next_line(const guint8 *data, gsize len, gsize pos, PhysLine *line)
{
    if (pos >= len)
        return FALSE;
    gsize i = pos;
    while (i < len && data[i] != '\n' && data[i] != '\r')
        i++;
    line->start = pos;
    line->end = i;
    if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
        line->next = i + 2;
    else if (i < len)
        line->next = i + 1;
    else
        line->next = len;
    return TRUE;
}

/* Where the bytes of a logical line come from: the logical line is the concatenation of pieces
 * of physical lines, each a run of consecutive file bytes. One entry per piece (not an offset
 * per byte), so that a logical line of any length costs a few words per physical line. */
typedef struct {
    gsize logical_start; /* index of the piece's first byte in the logical line */
    gsize file_start;    /* its offset in the file */
} Piece;

/* A logical line being built: its bytes, its pieces, and the number of backslashes it ends with,
 * kept up to date so that SimpleProperties.continueLine (an odd number of trailing backslashes)
 * does not count them again for each continuation line (which was quadratic in the number of
 * lines of backslashes). */
typedef struct {
    GByteArray *bytes;
    GArray *pieces; /* of Piece */
    gsize backslashes;
} Logical;

static void logical_append(Logical *l, const guint8 *data, gsize start, gsize end)
{
    if (end <= start)
        return;
    Piece piece = {l->bytes->len, start};
    g_array_append_val(l->pieces, piece);
    g_byte_array_append(l->bytes, data + start, (guint)(end - start));
    gsize tail = 0;
    while (tail < end - start && data[end - 1 - tail] == '\\')
        tail++;
    l->backslashes = tail == end - start ? l->backslashes + tail : tail;
}

/* Drop the last byte (the continuation backslash). */
static void logical_drop_last(Logical *l)
{
    g_byte_array_set_size(l->bytes, l->bytes->len - 1);
    l->backslashes--;
    Piece *last = &g_array_index(l->pieces, Piece, l->pieces->len - 1);
    if (last->logical_start == l->bytes->len)
        g_array_set_size(l->pieces, l->pieces->len - 1);
}

/* The file offset of byte @i of the logical line (which must exist). */
static gsize logical_offset(const Logical *l, gsize i)
{
    guint lo = 0, hi = l->pieces->len; /* the last piece starting at or before i */
    while (hi - lo > 1) {
        guint mid = lo + (hi - lo) / 2;
        if (g_array_index(l->pieces, Piece, mid).logical_start <= i)
            lo = mid;
        else
            hi = mid;
    }
    const Piece *p = &g_array_index(l->pieces, Piece, lo);
    return p->file_start + (i - p->logical_start);
}

/* The file offset right after the logical line's last byte, or @fallback when it is empty. */
static gsize logical_end_offset(const Logical *l, gsize fallback)
{
    return l->bytes->len > 0 ? logical_offset(l, l->bytes->len - 1) + 1 : fallback;
}

/* Split one logical line into an entry. */
static CabackCsCfgEntry *parse_logical(const Logical *l, gsize end_offset, guint first_line,
                                       guint last_line)
{
    const guint8 *s = l->bytes->data;
    gsize n = l->bytes->len;
    gsize ks = 0, si, vi, ts, te;

    while (ks < n && loader_space(s[ks]))
        ks++;
    si = ks;
    while (si < n) {
        if (s[si] == '\\')
            si += 2; /* the escaped character belongs to the key */
        else if (s[si] == '=' || s[si] == ':' || loader_space(s[si]))
            break;
        else
            si++;
    }
    si = MIN(si, n);
    vi = si;
    while (vi < n && loader_space(s[vi]))
        vi++;
    if (vi < n && (s[vi] == '=' || s[vi] == ':'))
        vi++;
    while (vi < n && loader_space(s[vi]))
        vi++;

    /* getString's trim */
    ts = si < n ? vi : n;
    te = n;
    while (ts < te && s[ts] <= 0x20)
        ts++;
    while (te > ts && s[te - 1] <= 0x20)
        te--;

    CabackCsCfgEntry *entry = g_new0(CabackCsCfgEntry, 1);
    entry->key = g_strndup((const char *)s + ks, si - ks);
    entry->value = g_strndup((const char *)s + ts, te - ts);
    entry->line = first_line;
    entry->last_line = last_line;
    entry->has_separator = si < n;
    entry->value_start = ts < n ? logical_offset(l, ts) : end_offset;
    entry->value_end = te > ts ? logical_offset(l, te - 1) + 1 : entry->value_start;
    /* Right after the logical character before the value: the same place as value_start unless
     * the value starts on a continuation line. Replacing from there drops that line break, which
     * could otherwise meet another one and change how lines split (a lone "\r" before the value
     * and a "\n" after it would become one "\r\n"). */
    entry->edit_start = ts > 0 ? logical_offset(l, ts - 1) + 1 : entry->value_start;
    if (entry->edit_start > entry->value_start)
        entry->edit_start = entry->value_start;
    return entry;
}

/* caback_cscfg_parse on @data (@len bytes, followed by a NUL), which the new CabackCsCfg owns. */
static CabackCsCfg *parse_owned(guint8 *data, gsize len, const char *path)
{
    CabackCsCfg *cfg = g_new0(CabackCsCfg, 1);
    Logical logical = {g_byte_array_new(), g_array_new(FALSE, FALSE, sizeof(Piece)), 0};
    PhysLine line;
    gsize pos = 0;
    guint line_no = 0;

    cfg->path = g_strdup(path);
    cfg->data = data;
    cfg->len = len;
    cfg->entries = g_ptr_array_new_with_free_func((GDestroyNotify)entry_free);
    cfg->index = g_hash_table_new(g_str_hash, g_str_equal);

    const guint8 *d = cfg->data;
    while (next_line(d, len, pos, &line)) {
        pos = line.next;
        line_no++;
        if (line.end == line.start || d[line.start] == '#' || d[line.start] == '!')
            continue;

        guint first_line = line_no;
        g_byte_array_set_size(logical.bytes, 0);
        g_array_set_size(logical.pieces, 0);
        logical.backslashes = 0;
        logical_append(&logical, d, line.start, line.end);
        /* Where a value would be inserted at the end of the logical line: after its last byte
         * (for a continued line that is where its backslash was). */
        gsize end_offset = line.end;
        while (logical.backslashes % 2 == 1) {
            logical_drop_last(&logical);
            end_offset = logical_end_offset(&logical, line.start);
            PhysLine more;
            if (!next_line(d, len, pos, &more))
                continue; /* end of file: the loader appends "" and checks again */
            pos = more.next;
            line_no++;
            gsize i = more.start;
            while (i < more.end && loader_space(d[i]))
                i++;
            if (i < more.end) {
                logical_append(&logical, d, i, more.end);
                end_offset = more.end;
            }
        }
        CabackCsCfgEntry *entry = parse_logical(&logical, end_offset, first_line, line_no);
        g_ptr_array_add(cfg->entries, entry);
        g_hash_table_insert(cfg->index, entry->key, entry);
    }
    g_byte_array_unref(logical.bytes);
    g_array_unref(logical.pieces);
    return cfg;
}

CabackCsCfg *caback_cscfg_parse(const void *data, gsize len, const char *path)
{
    guint8 *copy = g_malloc(len + 1);
    if (len > 0)
        memcpy(copy, data, len);
    copy[len] = '\0';
    return parse_owned(copy, len, path);
}

CabackCsCfg *caback_cscfg_read_file(const char *path, GError **error)
{
    g_autofree char *contents = NULL;
    gsize len = 0;
    g_autoptr(GError) local = NULL;

    if (!g_file_get_contents(path, &contents, &len, &local)) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                        "CS.cfg file %s does not exist; give the path of the instance's CS.cfg "
                        "(for a CA: /var/lib/pki/INSTANCE/ca/conf/CS.cfg)",
                        path);
        else
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot read CS.cfg file %s: %s",
                        path, local->message);
        return NULL;
    }
    /* g_file_get_contents ends the bytes with a NUL, as the parser wants: no copy. */
    return parse_owned((guint8 *)g_steal_pointer(&contents), len, path);
}

void caback_cscfg_free(CabackCsCfg *cfg)
{
    if (cfg == NULL)
        return;
    g_hash_table_destroy(cfg->index);
    g_ptr_array_unref(cfg->entries);
    g_free(cfg->data);
    g_free(cfg->path);
    g_free(cfg);
}

const char *caback_cscfg_path(const CabackCsCfg *cfg)
{
    return cfg->path;
}

const guint8 *caback_cscfg_data(const CabackCsCfg *cfg, gsize *len)
{
    if (len != NULL)
        *len = cfg->len;
    return cfg->data;
}

const GPtrArray *caback_cscfg_entries(const CabackCsCfg *cfg)
{
    return cfg->entries;
}

const CabackCsCfgEntry *caback_cscfg_lookup(const CabackCsCfg *cfg, const char *key)
{
    return g_hash_table_lookup(cfg->index, key);
}

const char *caback_cscfg_get(const CabackCsCfg *cfg, const char *key)
{
    const CabackCsCfgEntry *entry = caback_cscfg_lookup(cfg, key);
    return entry != NULL ? entry->value : NULL;
}

/* ---- editing ---- */

CabackCsCfgChange *caback_cscfg_change_new(const char *key, const char *old_value,
                                           const char *new_value)
{
    CabackCsCfgChange *change = g_new0(CabackCsCfgChange, 1);
    change->key = g_strdup(key);
    change->old_value = g_strdup(old_value);
    change->new_value = g_strdup(new_value);
    return change;
}

void caback_cscfg_change_free(CabackCsCfgChange *change)
{
    if (change == NULL)
        return;
    g_free(change->key);
    g_free(change->old_value);
    g_free(change->new_value);
    g_free(change);
}

typedef struct {
    gsize start, end;
    const char *prefix; /* "=" when the key had no separator */
    const char *text;
    const char *key;
} Edit;

static int edit_compare(const void *a, const void *b)
{
    const Edit *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start ? 1 : 0;
}

/* Whether @value, written as an entry's value, reads back as exactly @value. */
static gboolean value_writable(const char *value, const char **why)
{
    gsize n = strlen(value);
    gsize backslashes = 0;

    if (strpbrk(value, "\r\n") != NULL) {
        *why = "it contains a line break";
        return FALSE;
    }
    if (n > 0 && ((guint8)value[0] <= 0x20 || (guint8)value[n - 1] <= 0x20)) {
        *why = "it starts or ends with white space, which Dogtag would remove";
        return FALSE;
    }
    if (value[0] == '=' || value[0] == ':') {
        *why = "it starts with a key-value separator";
        return FALSE;
    }
    for (gsize i = n; i > 0 && value[i - 1] == '\\'; i--)
        backslashes++;
    if (backslashes % 2 == 1) {
        *why = "it ends with a backslash, which would join the next line";
        return FALSE;
    }
    return TRUE;
}

/* The check after every edit: @new_data, read by the loader, has the same entries as @cfg except
 * that each changed key now has its new value. Protects against any rule this file got wrong. */
static gboolean verify_edit(const CabackCsCfg *cfg, const guint8 *new_data, gsize new_len,
                            const GPtrArray *changes, GError **error)
{
    g_autoptr(CabackCsCfg) again = caback_cscfg_parse(new_data, new_len, cfg->path);
    g_autoptr(GHashTable) expected = g_hash_table_new(g_str_hash, g_str_equal);
    GHashTableIter iter;
    gpointer key, value;

    g_hash_table_iter_init(&iter, cfg->index);
    while (g_hash_table_iter_next(&iter, &key, &value))
        g_hash_table_insert(expected, key, ((CabackCsCfgEntry *)value)->value);
    for (guint i = 0; i < changes->len; i++) {
        const CabackCsCfgChange *c = changes->pdata[i];
        g_hash_table_insert(expected, c->key, c->new_value);
    }

    gboolean same = g_hash_table_size(expected) == g_hash_table_size(again->index);
    g_hash_table_iter_init(&iter, expected);
    while (same && g_hash_table_iter_next(&iter, &key, &value)) {
        const char *now = caback_cscfg_get(again, key);
        same = now != NULL && strcmp(now, value) == 0;
    }
    if (!same)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG,
                    "internal check failed: the edited %s would not read back as intended; "
                    "it was left unchanged (please report this with the file)",
                    cfg->path != NULL ? cfg->path : "CS.cfg");
    return same;
}

GBytes *caback_cscfg_apply(const CabackCsCfg *cfg, const GPtrArray *changes, GError **error)
{
    g_autoptr(GArray) edits = g_array_new(FALSE, FALSE, sizeof(Edit));
    const char *name = cfg->path != NULL ? cfg->path : "CS.cfg";

    for (guint i = 0; i < changes->len; i++) {
        const CabackCsCfgChange *c = changes->pdata[i];
        const CabackCsCfgEntry *entry = caback_cscfg_lookup(cfg, c->key);
        const char *why = NULL;

        if (entry == NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG,
                        "cannot change %s in %s: the file has no such entry", c->key, name);
            return NULL;
        }
        if (!value_writable(c->new_value, &why)) {
            g_autofree char *shown = g_strescape(c->new_value, NULL);
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG,
                        "cannot write \"%s\" as the value of %s in %s: %s", shown, c->key, name,
                        why);
            return NULL;
        }
        Edit edit = {
            .start = entry->edit_start,
            .end = entry->value_end,
            .prefix = entry->has_separator || *c->new_value == '\0' ? "" : "=",
            .text = c->new_value,
            .key = c->key,
        };
        g_array_append_val(edits, edit);
    }
    g_array_sort(edits, edit_compare);

    g_autoptr(GByteArray) out = g_byte_array_sized_new(cfg->len + 64);
    gsize pos = 0;
    for (guint i = 0; i < edits->len; i++) {
        const Edit *e = &g_array_index(edits, Edit, i);
        if (e->start < pos) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG,
                        "cannot change %s in %s twice in one run", e->key, name);
            return NULL;
        }
        g_byte_array_append(out, cfg->data + pos, e->start - pos);
        g_byte_array_append(out, (const guint8 *)e->prefix, strlen(e->prefix));
        g_byte_array_append(out, (const guint8 *)e->text, strlen(e->text));
        pos = e->end;
    }
    g_byte_array_append(out, cfg->data + pos, cfg->len - pos);

    if (!verify_edit(cfg, out->data, out->len, changes, error))
        return NULL;
    return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}

/* ---- unified diff ---- */

typedef struct {
    const guint8 *p;
    gsize len; /* including the '\n', when there is one */
} DiffLine;

static GArray *diff_split(const guint8 *data, gsize len)
{
    GArray *lines = g_array_new(FALSE, FALSE, sizeof(DiffLine));
    gsize pos = 0;

    while (pos < len) {
        const guint8 *nl = memchr(data + pos, '\n', len - pos);
        gsize end = nl != NULL ? (gsize)(nl - data) + 1 : len;
        DiffLine line = {data + pos, end - pos};
        g_array_append_val(lines, line);
        pos = end;
    }
    return lines;
}

static gboolean diff_line_equal(const DiffLine *a, const DiffLine *b)
{
    return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

typedef enum { OP_EQUAL, OP_DELETE, OP_INSERT } DiffOp;

typedef struct {
    DiffOp op;
    gsize a; /* index in the old lines (EQUAL, DELETE) */
    gsize b; /* index in the new lines (EQUAL, INSERT) */
} DiffStep;

/* The lines of the two sides between their common first and last lines. */
typedef struct {
    const GArray *a, *b; /* DiffLine of each side */
    gsize pre;           /* common first lines, set aside */
    gssize n, m;         /* lines of each side between them */
} DiffMiddle;

#define MID_A(mid, i) (&g_array_index((mid)->a, DiffLine, (mid)->pre + (gsize)(i)))
#define MID_B(mid, j) (&g_array_index((mid)->b, DiffLine, (mid)->pre + (gsize)(j)))

/* Myers' forward pass over @mid: each round's furthest reaching points go to @trace (round d
 * covers the diagonals -d..d), to walk back; returns the number of rounds of the shortest edit. */
static gssize diff_forward(const DiffMiddle *mid, GPtrArray *trace)
{
    gssize N = mid->n, M = mid->m, max = N + M, off = max + 1;
    g_autofree gssize *v = g_new0(gssize, 2 * max + 3);

    for (gssize d = 0; d <= max; d++) {
        /* v at the start of round d covers k in [-d, d] */
        gssize *copy = g_new(gssize, 2 * d + 1);
        memcpy(copy, v + off - d, sizeof(gssize) * (2 * d + 1));
        g_ptr_array_add(trace, copy);
        for (gssize k = -d; k <= d; k += 2) {
            gssize x = (k == -d || (k != d && v[off + k - 1] < v[off + k + 1]))
                           ? v[off + k + 1]
                           : v[off + k - 1] + 1;
            gssize y = x - k;
            while (x < N && y < M && diff_line_equal(MID_A(mid, x), MID_B(mid, y)))
                x++, y++;
            v[off + k] = x;
            if (x >= N && y >= M)
                return d;
        }
    }
    return 0;
}
#undef MID_A
#undef MID_B

/* Walk back from (N, M) through the @D rounds of @trace, appending the steps of @mid in reverse
 * to @rev. */
static void diff_backtrack(const DiffMiddle *mid, const GPtrArray *trace, gssize D, GArray *rev)
{
    gsize pre = mid->pre;
    gssize x = mid->n, y = mid->m;

    for (gssize d = D; d >= 0; d--) {
        const gssize *vd = trace->pdata[d];
#define VD(k) (vd[(k) + d])
        gssize k = x - y, pk, px, py;
        if (d == 0) {
            pk = 0;
            px = 0;
        } else {
            pk = (k == -d || (k != d && VD(k - 1) < VD(k + 1))) ? k + 1 : k - 1;
            px = VD(pk);
        }
#undef VD
        py = px - pk;
        while (x > px && y > py) {
            DiffStep s = {OP_EQUAL, pre + (gsize)(x - 1), pre + (gsize)(y - 1)};
            g_array_append_val(rev, s);
            x--, y--;
        }
        if (d > 0) {
            if (x == px) {
                DiffStep s = {OP_INSERT, 0, pre + (gsize)(y - 1)};
                g_array_append_val(rev, s);
            } else {
                DiffStep s = {OP_DELETE, pre + (gsize)(x - 1), 0};
                g_array_append_val(rev, s);
            }
        }
        x = px, y = py;
    }
}

/* The shortest edit script from @a to @b (Myers' O(ND) algorithm), after the common first and
 * last lines are set aside. Each round's furthest reaching points are kept to walk back. */
static GArray *diff_script(const GArray *a, const GArray *b)
{
    GArray *steps = g_array_new(FALSE, FALSE, sizeof(DiffStep));
    gsize n = a->len, m = b->len, pre = 0, suf = 0;

    while (pre < n && pre < m &&
           diff_line_equal(&g_array_index(a, DiffLine, pre), &g_array_index(b, DiffLine, pre)))
        pre++;
    while (suf < n - pre && suf < m - pre &&
           diff_line_equal(&g_array_index(a, DiffLine, n - 1 - suf),
                           &g_array_index(b, DiffLine, m - 1 - suf)))
        suf++;

    DiffMiddle mid = {a, b, pre, (gssize)(n - pre - suf), (gssize)(m - pre - suf)};
    g_autoptr(GPtrArray) trace = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GArray) rev = g_array_new(FALSE, FALSE, sizeof(DiffStep));
    diff_backtrack(&mid, trace, diff_forward(&mid, trace), rev);

    for (gsize i = 0; i < pre; i++) {
        DiffStep s = {OP_EQUAL, i, i};
        g_array_append_val(steps, s);
    }
    for (guint i = rev->len; i > 0; i--)
        g_array_append_val(steps, g_array_index(rev, DiffStep, i - 1));
    for (gsize i = 0; i < suf; i++) {
        DiffStep s = {OP_EQUAL, n - suf + i, m - suf + i};
        g_array_append_val(steps, s);
    }
    return steps;
}

static void diff_put_line(GString *out, char mark, const DiffLine *line)
{
    g_string_append_c(out, mark);
    g_string_append_len(out, (const char *)line->p, (gssize)line->len);
    if (line->len == 0 || line->p[line->len - 1] != '\n')
        g_string_append(out, "\n\\ No newline at end of file\n");
}

/* "start,count" of a hunk side as diff -u prints it: the count is left out when it is 1, and an
 * empty side starts at the line before it. */
static void diff_put_range(GString *out, gsize first, gsize count)
{
    if (count == 1)
        g_string_append_printf(out, "%" G_GSIZE_FORMAT, first + 1);
    else if (count == 0)
        g_string_append_printf(out, "%" G_GSIZE_FORMAT ",0", first);
    else
        g_string_append_printf(out, "%" G_GSIZE_FORMAT ",%" G_GSIZE_FORMAT, first + 1, count);
}

static DiffOp step_op(const GArray *steps, guint i)
{
    return g_array_index(steps, DiffStep, i).op;
}

/* The end (exclusive) of the hunk whose first change is step @i: changes at most 2 * @context
 * equal lines apart join it, and @context equal lines follow its last change. */
static guint hunk_end(const GArray *steps, guint i, guint context)
{
    guint end = i;

    for (;;) {
        while (end < steps->len && step_op(steps, end) != OP_EQUAL)
            end++;
        guint gap = end;
        while (gap < steps->len && step_op(steps, gap) == OP_EQUAL)
            gap++;
        if (gap < steps->len && gap - end <= 2 * context) {
            end = gap;
            continue;
        }
        return MIN(end + context, steps->len);
    }
}

/* "@@ -a,n +b,m @@" of the hunk of steps [@start, @end). */
static void hunk_header(GString *out, const GArray *steps, guint start, guint end)
{
    gsize a_first = G_MAXSIZE, b_first = G_MAXSIZE, a_count = 0, b_count = 0;
    gsize a_next = 0, b_next = 0; /* next line of each side, for empty sides */

    for (guint j = 0; j < start; j++) {
        const DiffStep *s = &g_array_index(steps, DiffStep, j);
        if (s->op != OP_INSERT)
            a_next = s->a + 1;
        if (s->op != OP_DELETE)
            b_next = s->b + 1;
    }
    for (guint j = start; j < end; j++) {
        const DiffStep *s = &g_array_index(steps, DiffStep, j);
        if (s->op != OP_INSERT) {
            a_first = MIN(a_first, s->a);
            a_count++;
        }
        if (s->op != OP_DELETE) {
            b_first = MIN(b_first, s->b);
            b_count++;
        }
    }
    g_string_append(out, "@@ -");
    diff_put_range(out, a_count > 0 ? a_first : a_next, a_count);
    g_string_append(out, " +");
    diff_put_range(out, b_count > 0 ? b_first : b_next, b_count);
    g_string_append(out, " @@\n");
}

/* The lines of the hunk of steps [@start, @end): diff -u prints each run of changes as its
 * deleted lines, then its inserted ones. */
static void hunk_body(GString *out, const GArray *a, const GArray *b, const GArray *steps,
                      guint start, guint end)
{
    for (guint j = start; j < end;) {
        const DiffStep *s = &g_array_index(steps, DiffStep, j);
        if (s->op == OP_EQUAL) {
            diff_put_line(out, ' ', &g_array_index(a, DiffLine, s->a));
            j++;
            continue;
        }
        guint run_end = j;
        while (run_end < end && step_op(steps, run_end) != OP_EQUAL)
            run_end++;
        for (guint r = j; r < run_end; r++) {
            const DiffStep *t = &g_array_index(steps, DiffStep, r);
            if (t->op == OP_DELETE)
                diff_put_line(out, '-', &g_array_index(a, DiffLine, t->a));
        }
        for (guint r = j; r < run_end; r++) {
            const DiffStep *t = &g_array_index(steps, DiffStep, r);
            if (t->op == OP_INSERT)
                diff_put_line(out, '+', &g_array_index(b, DiffLine, t->b));
        }
        j = run_end;
    }
}

char *caback_cscfg_unified_diff(const char *label, const guint8 *old, gsize old_len,
                                const guint8 *new, gsize new_len)
{
    const guint context = 3;
    g_autoptr(GArray) a = diff_split(old, old_len);
    g_autoptr(GArray) b = diff_split(new, new_len);
    g_autoptr(GArray) steps = diff_script(a, b);
    GString *out = g_string_new(NULL);
    guint i = 0;

    while (i < steps->len) {
        /* find the next change */
        while (i < steps->len && step_op(steps, i) == OP_EQUAL)
            i++;
        if (i >= steps->len)
            break;
        guint start = i > context ? i - context : 0;
        guint end = hunk_end(steps, i, context);
        if (out->len == 0)
            g_string_append_printf(out, "--- %s\n+++ %s\n", label, label);
        hunk_header(out, steps, start, end);
        hunk_body(out, a, b, steps, start, end);
        i = end;
    }
    return g_string_free(out, FALSE);
}

/* ---- numbers ---- */

char *caback_cscfg_unsigned_hex(const guint8 *data, gsize len)
{
    gsize i = 0;

    while (i < len && data[i] == 0)
        i++;
    if (i == len)
        return g_strdup("0");
    GString *out = g_string_sized_new(2 * (len - i));
    g_string_append_printf(out, "%x", data[i]);
    for (i++; i < len; i++)
        g_string_append_printf(out, "%02x", data[i]);
    return g_string_free(out, FALSE);
}

/* The canonical form of @s as Java's new BigInteger(s, 16) reads it, or NULL when it is not a
 * number in that form. */
static char *canonical_number(const char *s)
{
    gboolean negative = FALSE;

    if (*s == '-' || *s == '+')
        negative = *s++ == '-';
    if (*s == '\0')
        return NULL;
    for (const char *p = s; *p != '\0'; p++)
        if (!g_ascii_isxdigit(*p))
            return NULL;
    while (*s == '0')
        s++;
    if (*s == '\0')
        return g_strdup("0");
    g_autofree char *lower = g_ascii_strdown(s, -1);
    return g_strconcat(negative ? "-" : "", lower, NULL);
}

gboolean caback_cscfg_same_number(const char *a, const char *b)
{
    g_autofree char *ca = canonical_number(a);
    g_autofree char *cb = canonical_number(b);

    if (ca != NULL && cb != NULL)
        return strcmp(ca, cb) == 0;
    return strcmp(a, b) == 0;
}

/* ---- cloning entries ---- */

gboolean caback_cscfg_token_is_internal(const char *token)
{
    static const char *const internal[] = {"internal", "Internal Key Storage Token",
                                           "NSS Certificate DB", "NSS FIPS 140-2 Certificate DB",
                                           NULL};

    if (token == NULL || *token == '\0')
        return TRUE;
    for (int i = 0; internal[i] != NULL; i++)
        if (g_ascii_strcasecmp(token, internal[i]) == 0)
            return TRUE;
    return FALSE;
}

char *caback_cscfg_subsystem(const CabackCsCfg *cfg)
{
    const char *type = caback_cscfg_get(cfg, "cs.type");

    if (type != NULL && *type != '\0')
        return g_ascii_strdown(type, -1);
    for (guint i = 0; i < cfg->entries->len; i++) {
        const CabackCsCfgEntry *e = cfg->entries->pdata[i];
        const char *dot = strchr(e->key, '.');
        if (dot != NULL && dot != e->key && strcmp(dot, ".cert.list") == 0 &&
            strncmp(e->key, "preop.", 6) != 0)
            return g_strndup(e->key, (gsize)(dot - e->key));
    }
    return NULL;
}

gboolean caback_cscfg_has_cloning_list(const CabackCsCfg *cfg)
{
    return caback_cscfg_lookup(cfg, "cloning.list") != NULL;
}

void caback_cscfg_clone_free(CabackCsCfgClone *clone)
{
    if (clone == NULL)
        return;
    g_free(clone->tag);
    g_free(clone->nickname);
    g_free(clone->nickname_key);
    g_free(clone->tried_keys);
    g_free(clone->bare_nickname);
    g_free(clone->token);
    g_free(clone->token_key);
    g_free(clone);
}

/* The first of @keys (NULL-terminated, NULL entries skipped) with a non-empty value. */
static const char *first_value(const CabackCsCfg *cfg, char **keys, const char **from)
{
    for (int i = 0; keys[i] != NULL; i++) {
        const char *v = caback_cscfg_get(cfg, keys[i]);
        if (v != NULL && *v != '\0') {
            *from = keys[i];
            return v;
        }
    }
    *from = NULL;
    return NULL;
}

static CabackCsCfgClone *make_clone(const CabackCsCfg *cfg, const char *sub, const char *tag,
                                    gboolean listed)
{
    CabackCsCfgClone *clone = g_new0(CabackCsCfgClone, 1);
    g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
    const char *from = NULL;

    clone->tag = g_strdup(tag);
    clone->listed = listed;

    g_ptr_array_add(keys, g_strdup_printf("cloning.%s.nickname", tag));
    if (sub != NULL) {
        g_ptr_array_add(keys, g_strdup_printf("%s.%s.nickname", sub, tag));
        g_ptr_array_add(keys, g_strdup_printf("%s.cert.%s.nickname", sub, tag));
        g_ptr_array_add(keys, g_strdup_printf("%s.%s.certnickname", sub, tag));
    }
    if (strcmp(tag, "signing") == 0 && (sub == NULL || strcmp(sub, "ca") != 0))
        g_ptr_array_add(keys, g_strdup("ca.signing.certnickname"));
    g_ptr_array_add(keys, NULL);
    clone->tried_keys = g_strjoinv(", ", (char **)keys->pdata);

    const char *nick = first_value(cfg, (char **)keys->pdata, &from);
    if (nick != NULL) {
        clone->nickname = g_strdup(nick);
        clone->nickname_key = g_strdup(from);
        /* Dogtag writes "token:nickname" for keys on other tokens than the internal one. */
        if (caback_nickname_split(nick, &clone->token, &clone->bare_nickname))
            clone->token_key = g_strdup_printf("the prefix of %s", from);
    }
    if (clone->token == NULL) {
        g_autoptr(GPtrArray) tkeys = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(tkeys, g_strdup_printf("cloning.%s.tokenname", tag));
        if (sub != NULL)
            g_ptr_array_add(tkeys, g_strdup_printf("%s.%s.tokenname", sub, tag));
        g_ptr_array_add(tkeys, g_strdup("cloning.module.token"));
        g_ptr_array_add(tkeys, NULL);
        const char *token = first_value(cfg, (char **)tkeys->pdata, &from);
        if (token != NULL) {
            clone->token = g_strdup(token);
            clone->token_key = g_strdup(from);
        }
    }
    return clone;
}

GPtrArray *caback_cscfg_clone_entries(const CabackCsCfg *cfg)
{
    GPtrArray *clones = g_ptr_array_new_with_free_func((GDestroyNotify)caback_cscfg_clone_free);
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autofree char *sub = caback_cscfg_subsystem(cfg);
    const char *list = caback_cscfg_get(cfg, "cloning.list");

    if (list != NULL) {
        g_auto(GStrv) tags = g_strsplit(list, ",", -1);
        for (int i = 0; tags[i] != NULL; i++) {
            const char *tag = g_strstrip(tags[i]);
            g_autofree char *key = g_strdup_printf("cloning.%s.privkey.id", tag);
            if (*tag == '\0' || g_hash_table_contains(seen, tag) ||
                caback_cscfg_lookup(cfg, key) == NULL)
                continue;
            g_hash_table_add(seen, g_strdup(tag));
            g_ptr_array_add(clones, make_clone(cfg, sub, tag, TRUE));
        }
    }
    static const char prefix[] = "cloning.", suffix[] = ".privkey.id";
    for (guint i = 0; i < cfg->entries->len; i++) {
        const CabackCsCfgEntry *e = cfg->entries->pdata[i];
        gsize n = strlen(e->key);
        if (n <= strlen(prefix) + strlen(suffix) || !g_str_has_prefix(e->key, prefix) ||
            !g_str_has_suffix(e->key, suffix))
            continue;
        g_autofree char *tag =
            g_strndup(e->key + strlen(prefix), n - strlen(prefix) - strlen(suffix));
        if (g_hash_table_contains(seen, tag))
            continue;
        g_ptr_array_add(clones, make_clone(cfg, sub, tag, FALSE));
        g_hash_table_add(seen, g_steal_pointer(&tag));
    }
    return clones;
}

char *caback_cscfg_clone_lookup_name(const CabackCsCfgClone *clone, const char *selected_token,
                                     gboolean selected_is_internal, char **why)
{
    *why = NULL;
    if (clone->nickname == NULL) {
        *why = g_strdup_printf("CS.cfg gives no nickname for the %s key (looked at %s); add "
                               "cloning.%s.nickname with the certificate's nickname",
                               clone->tag, clone->tried_keys, clone->tag);
        return NULL;
    }
    if (caback_cscfg_token_is_internal(clone->token)) {
        if (selected_is_internal)
            return g_strdup(clone->bare_nickname);
        *why = g_strdup_printf("CS.cfg puts the key of \"%s\" on the internal token%s%s%s, but "
                               "token \"%s\" is selected; run again without --token",
                               clone->bare_nickname, clone->token_key != NULL ? " (" : "",
                               clone->token_key != NULL ? clone->token_key : "",
                               clone->token_key != NULL ? ")" : "", selected_token);
        return NULL;
    }
    if (!selected_is_internal && selected_token != NULL &&
        strcmp(clone->token, selected_token) == 0)
        return g_strdup(clone->bare_nickname);
    *why = g_strdup_printf(
        "CS.cfg puts the key of \"%s\" on token \"%s\" (%s), not on the selected token \"%s\"; "
        "keys on hardware tokens are only checked on the token chosen with --token: run again "
        "with --token \"%s\" and that token's password",
        clone->bare_nickname, clone->token, clone->token_key, selected_token, clone->token);
    return NULL;
}

GPtrArray *caback_cscfg_clone_changes(const CabackCsCfg *cfg, const char *tag,
                                      const CabackCsCfgKeyValues *values)
{
    GPtrArray *changes = g_ptr_array_new_with_free_func((GDestroyNotify)caback_cscfg_change_free);
    const struct {
        const char *suffix;
        const char *value;
    } wanted[] = {
        {"privkey.id", values->privkey_id},
        {"pubkey.modulus", values->modulus},
        {"pubkey.exponent", values->exponent},
        {"pubkey.encoded", values->encoded},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(wanted); i++) {
        if (wanted[i].value == NULL)
            continue;
        g_autofree char *key = g_strdup_printf("cloning.%s.%s", tag, wanted[i].suffix);
        const char *now = caback_cscfg_get(cfg, key);
        if (now != NULL && !caback_cscfg_same_number(now, wanted[i].value))
            g_ptr_array_add(changes, caback_cscfg_change_new(key, now, wanted[i].value));
    }
    return changes;
}
