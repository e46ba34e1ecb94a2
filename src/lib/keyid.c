/* Key-ID forms: NSS CKA_ID bytes, their unsigned hex (certutil -K), and the signed Java
 * BigInteger hex Dogtag writes into CS.cfg, which command-line argument is a negative ID, and
 * caback keyid's --json object. Pure byte and string work, no NSS. */
#include "config.h"

#include <caback/error.h>
#include <caback/json.h>
#include <caback/keyid.h>

#include <string.h>

/* Longest input quoted back in an error message; longer input is cut so that a pasted file does
 * not flood the terminal. */
#define QUOTE_MAX 80

static char *quote_input(const char *text)
{
    g_autofree char *cut = NULL;
    gsize len = strlen(text);

    if (len > QUOTE_MAX)
        cut = g_strdup_printf("%.*s...", QUOTE_MAX, text);
    return g_strescape(cut != NULL ? cut : text, NULL);
}

static void G_GNUC_PRINTF(3, 4)
    set_parse_error(GError **error, const char *text, const char *format, ...)
{
    g_autofree char *quoted = quote_input(text);
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, format);
    why = g_strdup_vprintf(format, ap);
    va_end(ap);
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE, "invalid key ID \"%s\": %s", quoted, why);
}

/* Name the offending character @c: itself when printable ASCII, else its byte value, so that the
 * message never carries a control character or a stray byte of a multi-byte character (it goes
 * to the terminal and into the UTF-8 run log). */
static void set_not_hex_error(GError **error, const char *text, char c)
{
    if (g_ascii_isprint(c))
        set_parse_error(error, text, "'%c' is not a hex digit", c);
    else
        set_parse_error(error, text, "character 0x%02x is not a hex digit", (unsigned char)c);
}

/* Fill @out (20 bytes, already zeroed) from @ndigits hex digits at @hex, right-aligned. The
 * caller has checked that every character is a hex digit and that ndigits <= 40. */
static void hex_to_bytes_right(const char *hex, gsize ndigits, guint8 *out)
{
    gsize pos = 2 * CABACK_KEYID_LEN; /* nibble position after the last one */

    for (gsize i = ndigits; i > 0; i--) {
        int v = g_ascii_xdigit_value(hex[i - 1]);
        pos--;
        if (pos % 2 == 1)
            out[pos / 2] |= (guint8)v;
        else
            out[pos / 2] |= (guint8)(v << 4);
    }
}

/* Check that @hex (@len characters) holds 1..40 hex digits; on failure describe it in @error
 * naming @text, the whole input. @what names the part for the message. */
static gboolean check_hex_digits(const char *text, const char *hex, gsize len, const char *what,
                                 GError **error)
{
    if (len == 0) {
        set_parse_error(error, text, "no hex digits after %s", what);
        return FALSE;
    }
    for (gsize i = 0; i < len; i++) {
        if (!g_ascii_isxdigit(hex[i])) {
            set_not_hex_error(error, text, hex[i]);
            return FALSE;
        }
    }
    if (len > 2 * CABACK_KEYID_LEN) {
        set_parse_error(error, text,
                        "%" G_GSIZE_FORMAT " hex digits, longer than a 20-byte key ID (40 digits)",
                        len);
        return FALSE;
    }
    return TRUE;
}

/* Two's complement negation of a 20-byte big-endian value, in place. */
static void negate(guint8 *b, gsize len)
{
    unsigned carry = 1;

    for (gsize i = len; i > 0; i--) {
        unsigned v = (unsigned)(guint8)~b[i - 1] + carry;
        b[i - 1] = (guint8)v;
        carry = v >> 8;
    }
}

static gboolean parse_colon_bytes(const char *text, const char *s, gsize len, CabackKeyId *id,
                                  GError **error)
{
    guint8 buf[CABACK_KEYID_LEN];
    gsize n = 0;
    gsize start = 0;

    for (gsize i = 0; i <= len; i++) {
        if (i < len && s[i] != ':')
            continue;
        gsize plen = i - start;
        if (plen == 0) {
            set_parse_error(error, text, "empty byte between colons");
            return FALSE;
        }
        if (plen > 2) {
            /* The part is quoted like the whole input: escaped, and cut when long. */
            g_autofree char *part = g_strndup(s + start, plen);
            g_autofree char *quoted = quote_input(part);
            set_parse_error(error, text, "\"%s\" is not one byte (1 or 2 hex digits)", quoted);
            return FALSE;
        }
        for (gsize k = start; k < i; k++) {
            if (!g_ascii_isxdigit(s[k])) {
                set_not_hex_error(error, text, s[k]);
                return FALSE;
            }
        }
        if (n == CABACK_KEYID_LEN) {
            set_parse_error(error, text, "more than 20 colon-separated bytes");
            return FALSE;
        }
        int v = g_ascii_xdigit_value(s[start]);
        if (plen == 2)
            v = v * 16 + g_ascii_xdigit_value(s[start + 1]);
        buf[n++] = (guint8)v;
        start = i + 1;
    }
    if (!caback_keyid_from_bytes(buf, n, id, error))
        return FALSE;
    id->token_len = 0; /* a parsed ID is a value, zero-extended to 20 bytes */
    return TRUE;
}

/* Dogtag negative form: "-" and the magnitude MAG (MLEN chars) of a value in [-2^159, -1].
 * TEXT is the whole input, for the messages. */
static gboolean parse_negative(const char *text, const char *mag, gsize mlen, CabackKeyId *id,
                               GError **error)
{
    CabackKeyId tmp;

    memset(&tmp, 0, sizeof tmp);
    if (mlen == 0) {
        set_parse_error(error, text, "a lone \"-\" has no digits");
        return FALSE;
    }
    if (mlen >= 2 && mag[0] == '0' && (mag[1] == 'x' || mag[1] == 'X')) {
        set_parse_error(error, text,
                        "\"-0x\" is not a key ID form (0x... is unsigned; the Dogtag "
                        "negative form is \"-\" followed by hex digits)");
        return FALSE;
    }
    if (memchr(mag, ':', mlen) != NULL) {
        set_parse_error(error, text, "colon-separated bytes cannot carry a \"-\" sign");
        return FALSE;
    }
    if (!check_hex_digits(text, mag, mlen, "\"-\"", error))
        return FALSE;
    hex_to_bytes_right(mag, mlen, tmp.bytes);
    /* The magnitude must be at most 2^159 (0x80 00 .. 00): a larger one does not fit a
     * 20-byte signed value. */
    gboolean too_big = FALSE;
    if (tmp.bytes[0] > 0x80) {
        too_big = TRUE;
    } else if (tmp.bytes[0] == 0x80) {
        for (gsize i = 1; i < CABACK_KEYID_LEN; i++) {
            if (tmp.bytes[i] != 0) {
                too_big = TRUE;
                break;
            }
        }
    }
    if (too_big) {
        set_parse_error(error, text,
                        "the negative value is below -2^159 and does not fit a 20-byte key ID");
        return FALSE;
    }
    negate(tmp.bytes, CABACK_KEYID_LEN);
    *id = tmp;
    return TRUE;
}

/* An unsigned hex value (HEX, LEN digits, checked), zero-extended on the left into *ID. */
static gboolean parse_unsigned(const char *text, const char *hex, gsize len, const char *what,
                               CabackKeyId *id, GError **error)
{
    CabackKeyId tmp;

    memset(&tmp, 0, sizeof tmp);
    if (!check_hex_digits(text, hex, len, what, error))
        return FALSE;
    hex_to_bytes_right(hex, len, tmp.bytes);
    *id = tmp;
    return TRUE;
}

gboolean caback_keyid_parse(const char *text, CabackKeyId *id, GError **error)
{
    g_return_val_if_fail(text != NULL, FALSE);
    g_return_val_if_fail(id != NULL, FALSE);

    const char *s = text;
    gsize len = strlen(text);

    while (len > 0 && g_ascii_isspace(*s)) {
        s++;
        len--;
    }
    while (len > 0 && g_ascii_isspace(s[len - 1]))
        len--;
    if (len == 0) {
        set_parse_error(error, text, "empty");
        return FALSE;
    }
    if (memchr(s, '\0', len) != NULL) { /* cannot happen with a C string; keeps len honest */
        set_parse_error(error, text, "embedded NUL");
        return FALSE;
    }

    if (s[0] == '-')
        return parse_negative(text, s + 1, len - 1, id, error);
    if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        return parse_unsigned(text, s + 2, len - 2, "\"0x\"", id, error);
    if (memchr(s, ':', len) != NULL)
        return parse_colon_bytes(text, s, len, id, error);
    /* certutil -K form or a positive Dogtag form: the same unsigned value, zero-extended. */
    return parse_unsigned(text, s, len, "the start", id, error);
}

gboolean caback_keyid_from_bytes(const guint8 *data, gsize len, CabackKeyId *id, GError **error)
{
    g_return_val_if_fail(id != NULL, FALSE);
    g_return_val_if_fail(data != NULL || len == 0, FALSE);

    if (len > CABACK_KEYID_LEN) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "key ID of %" G_GSIZE_FORMAT " bytes is longer than 20 bytes", len);
        return FALSE;
    }
    memset(id->bytes, 0, CABACK_KEYID_LEN);
    if (len > 0)
        memcpy(id->bytes + (CABACK_KEYID_LEN - len), data, len);
    id->token_len = len < CABACK_KEYID_LEN ? (guint8)len : 0;
    return TRUE;
}

/* The ID's own bytes: the last token_len of them, or all 20. */
static const guint8 *token_bytes(const CabackKeyId *id, gsize *len)
{
    *len = id->token_len > 0 ? id->token_len : CABACK_KEYID_LEN;
    return id->bytes + (CABACK_KEYID_LEN - *len);
}

static void append_hex(GString *s, const guint8 *data, gsize len)
{
    static const char digits[] = "0123456789abcdef";

    for (gsize i = 0; i < len; i++) {
        g_string_append_c(s, digits[data[i] >> 4]);
        g_string_append_c(s, digits[data[i] & 0x0f]);
    }
}

char *caback_keyid_to_nss(const CabackKeyId *id)
{
    GString *s = g_string_sized_new(2 * CABACK_KEYID_LEN + 1);

    append_hex(s, id->bytes, CABACK_KEYID_LEN);
    return g_string_free(s, FALSE);
}

char *caback_keyid_to_0x(const CabackKeyId *id)
{
    GString *s = g_string_sized_new(2 * CABACK_KEYID_LEN + 3);

    g_string_append(s, "0x");
    append_hex(s, id->bytes, CABACK_KEYID_LEN);
    return g_string_free(s, FALSE);
}

char *caback_keyid_bytes_to_hex(const guint8 *data, gsize len)
{
    GString *s = g_string_sized_new(2 * len + 1);

    append_hex(s, data, len);
    return g_string_free(s, FALSE);
}

char *caback_keyid_bytes_to_dogtag(const guint8 *data, gsize len)
{
    g_return_val_if_fail(data != NULL || len == 0, NULL);

    if (len == 0)
        return g_strdup("0"); /* Java: new BigInteger(new byte[0]) is zero */

    g_autofree guint8 *mag = g_memdup2(data, len);
    gboolean negative = (data[0] & 0x80) != 0;
    GString *s = g_string_sized_new(2 * len + 2);

    if (negative) {
        negate(mag, len);
        g_string_append_c(s, '-');
    }
    gsize prefix = s->len;
    append_hex(s, mag, len);

    /* Strip leading zero digits, keeping one digit for zero. */
    gsize first = prefix;
    while (first + 1 < s->len && s->str[first] == '0')
        first++;
    g_string_erase(s, (gssize)prefix, (gssize)(first - prefix));
    return g_string_free(s, FALSE);
}

char *caback_keyid_to_dogtag(const CabackKeyId *id)
{
    return caback_keyid_bytes_to_dogtag(id->bytes, CABACK_KEYID_LEN);
}

char *caback_keyid_to_token_hex(const CabackKeyId *id)
{
    gsize len;
    const guint8 *data = token_bytes(id, &len);

    return caback_keyid_bytes_to_hex(data, len);
}

char *caback_keyid_to_token_dogtag(const CabackKeyId *id)
{
    gsize len;
    const guint8 *data = token_bytes(id, &len);

    return caback_keyid_bytes_to_dogtag(data, len);
}

gboolean caback_keyid_dogtag_legacy_problem(const CabackKeyId *id)
{
    /* Old Dogtag turned the CS.cfg value back into bytes with BigInteger.toByteArray(), which is
     * the minimal signed form, and compared it with the 20-byte CKA_ID: it is shorter exactly when
     * the first byte is only sign extension of the second. */
    return (id->bytes[0] == 0x00 && id->bytes[1] < 0x80) ||
           (id->bytes[0] == 0xff && id->bytes[1] >= 0x80);
}

gboolean caback_keyid_equal(const CabackKeyId *a, const CabackKeyId *b)
{
    return memcmp(a->bytes, b->bytes, CABACK_KEYID_LEN) == 0;
}

void caback_keyid_input_free(CabackKeyIdInput *input)
{
    if (input == NULL)
        return;
    g_free(input->input);
    g_free(input);
}

GPtrArray *caback_keyid_parse_each(const GPtrArray *inputs, GPtrArray *invalid)
{
    GPtrArray *ids = g_ptr_array_new_with_free_func((GDestroyNotify)caback_keyid_input_free);

    for (guint i = 0; i < inputs->len; i++) {
        GError *local = NULL;
        CabackKeyIdInput *p = g_new0(CabackKeyIdInput, 1);

        if (!caback_keyid_parse(inputs->pdata[i], &p->id, &local)) {
            g_ptr_array_add(invalid, local);
            g_free(p);
            continue;
        }
        p->input = g_strstrip(g_strdup(inputs->pdata[i]));
        g_ptr_array_add(ids, p);
    }
    return ids;
}

gboolean caback_keyid_is_negative_argument(const char *arg)
{
    const char *digits = arg + 1;

    if (arg[0] != '-' || !g_ascii_isxdigit(arg[1]))
        return FALSE;
    if (arg[2] == '\0' && !g_ascii_isdigit(arg[1]))
        return FALSE;
    if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X') && digits[2] != '\0')
        digits += 2;
    for (const char *p = digits; *p != '\0'; p++)
        if (!g_ascii_isxdigit(*p))
            return FALSE;
    return TRUE;
}

char *caback_keyid_json(const GPtrArray *ids)
{
    g_autoptr(CabackJson) json = caback_json_new();

    caback_json_begin_object(json, NULL);
    caback_json_begin_array(json, "ids");
    for (guint i = 0; i < ids->len; i++) {
        const CabackKeyIdInput *p = ids->pdata[i];
        g_autofree char *nss = caback_keyid_to_nss(&p->id);
        g_autofree char *dogtag = caback_keyid_to_dogtag(&p->id);
        g_autofree char *hex0x = caback_keyid_to_0x(&p->id);

        caback_json_begin_object(json, NULL);
        caback_json_string(json, "input", p->input);
        caback_json_string(json, "nss", nss);
        caback_json_string(json, "dogtag", dogtag);
        caback_json_string(json, "hex0x", hex0x);
        caback_json_string(json, "nss_id", nss);
        caback_json_string(json, "dogtag_id", dogtag);
        caback_json_bool(json, "dogtag_legacy_problem", caback_keyid_dogtag_legacy_problem(&p->id));
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
    caback_json_end_object(json);
    return caback_json_steal_text(json);
}
