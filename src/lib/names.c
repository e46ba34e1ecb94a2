/* Names shown for what they are (see names.h). */
#include "config.h"

#include <caback/names.h>

#include <string.h>

static gboolean is_bidi(gunichar c)
{
    return (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0x200e ||
           c == 0x200f || c == 0x061c;
}

static gboolean is_control(gunichar c)
{
    return c < 0x20 || (c >= 0x7f && c < 0xa0);
}

/* One decoded unit: a character (@c), or an invalid unit (@bad, whose value is @c: a byte, or a
 * lone surrogate). */
typedef struct {
    gunichar c;
    gboolean bad;
} Unit;

static GArray *decode_units(const guint8 *data, gsize len, gboolean utf16)
{
    GArray *units = g_array_sized_new(FALSE, FALSE, sizeof(Unit), len);

    if (utf16) {
        gsize n = len / 2;
        for (gsize i = 0; i < n; i++) {
            gunichar c = ((gunichar)data[2 * i] << 8) | data[2 * i + 1];
            Unit u = {c, FALSE};
            if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
                gunichar lo = ((gunichar)data[2 * i + 2] << 8) | data[2 * i + 3];
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    u.c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                    i++;
                } else {
                    u.bad = TRUE;
                }
            } else if (c >= 0xd800 && c <= 0xdfff) {
                u.bad = TRUE;
            }
            g_array_append_val(units, u);
        }
        if (len % 2 != 0) {
            Unit u = {data[len - 1], TRUE};
            g_array_append_val(units, u);
        }
    } else {
        const char *p = (const char *)data;
        const char *end = p + len;
        while (p < end) {
            /* GLib reads a NUL byte as the end of the text: it is a character here. */
            gunichar c = *p == '\0' ? 0 : g_utf8_get_char_validated(p, end - p);
            if (c == (gunichar)-1 || c == (gunichar)-2) {
                Unit u = {(guint8)*p, TRUE};
                g_array_append_val(units, u);
                p++;
                continue;
            }
            Unit u = {c, FALSE};
            g_array_append_val(units, u);
            p = c == 0 ? p + 1 : g_utf8_next_char(p);
        }
    }
    /* A terminating NUL (or several) is not part of the name. */
    while (units->len > 0) {
        Unit *last = &g_array_index(units, Unit, units->len - 1);
        if (last->bad || last->c != 0)
            break;
        g_array_set_size(units, units->len - 1);
    }
    return units;
}

char *caback_name_decode(const guint8 *data, gsize len, gboolean utf16, guint *flaws,
                         char **cleaned)
{
    g_autoptr(GArray) units = decode_units(data, len, utf16);
    guint found = 0;

    for (guint i = 0; i < units->len; i++) {
        const Unit *u = &g_array_index(units, Unit, i);
        if (u->bad)
            found |= CABACK_NAME_INVALID;
        else if (u->c == 0)
            found |= CABACK_NAME_NUL;
        else if (is_control(u->c))
            found |= CABACK_NAME_CONTROL;
        else if (is_bidi(u->c))
            found |= CABACK_NAME_BIDI;
    }
    GString *shown = g_string_sized_new(len + 1);
    GString *clean = cleaned != NULL ? g_string_sized_new(len + 1) : NULL;
    for (guint i = 0; i < units->len; i++) {
        const Unit *u = &g_array_index(units, Unit, i);
        gboolean flaw = u->bad || is_control(u->c) || is_bidi(u->c);
        if (clean != NULL) {
            if (flaw)
                g_string_append_c(clean, '_');
            else
                g_string_append_unichar(clean, u->c);
        }
        if (found == 0) {
            g_string_append_unichar(shown, u->c);
        } else if (u->bad && u->c < 0x100) {
            /* a byte of invalid UTF-8, or the odd last byte of a BMPString */
            g_string_append_printf(shown, "\\x%02x", u->c);
        } else if (u->bad || (flaw && u->c >= 0x80)) {
            g_string_append_printf(shown, "\\u%04x", u->c);
        } else if (flaw) {
            g_string_append_printf(shown, "\\x%02x", u->c);
        } else if (u->c == '\\') {
            g_string_append(shown, "\\\\");
        } else {
            g_string_append_unichar(shown, u->c);
        }
    }
    if (flaws != NULL)
        *flaws = found;
    /* Copies sized exactly (a GString keeps at least 64 bytes): a file of many certificates
     * keeps both names of each bag (issue 16 §3). */
    if (cleaned != NULL) {
        *cleaned = g_memdup2(clean->str, clean->len + 1);
        g_string_free(clean, TRUE);
    }
    char *text = g_memdup2(shown->str, shown->len + 1);
    g_string_free(shown, TRUE);
    return text;
}

char *caback_name_escape(const char *name, guint *flaws)
{
    if (name == NULL) {
        if (flaws != NULL)
            *flaws = 0;
        return NULL;
    }
    return caback_name_decode((const guint8 *)name, strlen(name), FALSE, flaws, NULL);
}

char *caback_name_escape_for_log(const char *text)
{
    if (text == NULL)
        return NULL;
    gsize len = strlen(text);
    GString *out = g_string_sized_new(len + 1);
    const char *p = text;
    const char *end = text + len;
    while (p < end) {
        gunichar c = g_utf8_get_char_validated(p, end - p);
        if (c == (gunichar)-1 || c == (gunichar)-2) {
            g_string_append_printf(out, "\\x%02x", (guint8)*p);
            p++;
            continue;
        }
        if (is_bidi(c))
            g_string_append_printf(out, "\\u%04x", c);
        else
            g_string_append_unichar(out, c);
        p = g_utf8_next_char(p);
    }
    return g_string_free(out, FALSE);
}

char *caback_name_flaws_text(guint flaws)
{
    const char *parts[4];
    guint n = 0;

    if (flaws & CABACK_NAME_NUL)
        parts[n++] = "an embedded NUL";
    if (flaws & CABACK_NAME_CONTROL)
        parts[n++] = "control characters";
    if (flaws & CABACK_NAME_BIDI)
        parts[n++] = "bidi override characters";
    if (flaws & CABACK_NAME_INVALID)
        parts[n++] = "invalid UTF-8 or UTF-16";
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < n; i++) {
        if (i > 0)
            g_string_append(s, i + 1 == n ? " and " : ", ");
        g_string_append(s, parts[i]);
    }
    return g_string_free(s, FALSE);
}
