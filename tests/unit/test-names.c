/* Unit tests for caback/names.h: names with control characters, bidi overrides, an embedded NUL
 * or an invalid encoding are shown escaped and whole, flagged, and cleaned for use as a
 * nickname; ordinary names (any script, backslashes included) are left as they are. */
#include "config.h"

#include <caback/names.h>

#include <string.h>

static char *decode8(const char *bytes, gsize len, guint *flaws, char **cleaned)
{
    return caback_name_decode((const guint8 *)bytes, len, FALSE, flaws, cleaned);
}

/* @text (ASCII or Latin-1 range) as UTF-16BE, as a BMPString holds it. */
static GByteArray *bmp_of(const gunichar *chars, gsize n)
{
    GByteArray *b = g_byte_array_new();
    for (gsize i = 0; i < n; i++) {
        guint8 two[2] = {(guint8)(chars[i] >> 8), (guint8)(chars[i] & 0xff)};
        g_byte_array_append(b, two, 2);
    }
    return b;
}

static void test_plain(void)
{
    static const char *const names[] = {"caSigningCert cert-pki-ca", "Zertifikat für München",
                                        "証明書", "a\\b", "emoji \xf0\x9f\x94\x91", ""};
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        guint flaws = 99;
        g_autofree char *cleaned = NULL;
        g_autofree char *shown = decode8(names[i], strlen(names[i]), &flaws, &cleaned);
        g_assert_cmpstr(shown, ==, names[i]);
        g_assert_cmpstr(cleaned, ==, names[i]);
        g_assert_cmpuint(flaws, ==, 0);
    }
}

static void test_nul(void)
{
    static const char name[] = "caSigningCert cert-pki-ca\0evil";
    guint flaws = 0;
    g_autofree char *cleaned = NULL;
    g_autofree char *shown = decode8(name, sizeof name - 1, &flaws, &cleaned);
    /* Whole, not cut at the NUL. */
    g_assert_cmpstr(shown, ==, "caSigningCert cert-pki-ca\\x00evil");
    g_assert_cmpstr(cleaned, ==, "caSigningCert cert-pki-ca_evil");
    g_assert_cmpuint(flaws, ==, CABACK_NAME_NUL);

    /* Trailing NULs are a terminator, not part of the name. */
    static const char terminated[] = "ca\0\0";
    g_autofree char *t = decode8(terminated, sizeof terminated - 1, &flaws, NULL);
    g_assert_cmpstr(t, ==, "ca");
    g_assert_cmpuint(flaws, ==, 0);
}

static void test_bidi(void)
{
    /* "caSigning" RLO "txt.exe": shown with the override written out. */
    static const char name[] = "caSigning\xe2\x80\xae" "exe.txt";
    guint flaws = 0;
    g_autofree char *cleaned = NULL;
    g_autofree char *shown = decode8(name, sizeof name - 1, &flaws, &cleaned);
    g_assert_cmpstr(shown, ==, "caSigning\\u202eexe.txt");
    g_assert_cmpstr(cleaned, ==, "caSigning_exe.txt");
    g_assert_cmpuint(flaws, ==, CABACK_NAME_BIDI);
    for (gunichar c = 0x2066; c <= 0x2069; c++) {
        char buf[8] = {0};
        gint n = g_unichar_to_utf8(c, buf);
        g_autofree char *s = decode8(buf, (gsize)n, &flaws, NULL);
        g_autofree char *want = g_strdup_printf("\\u%04x", c);
        g_assert_cmpstr(s, ==, want);
        g_assert_cmpuint(flaws, ==, CABACK_NAME_BIDI);
    }
}

static void test_control_and_backslash(void)
{
    static const char name[] = "a\\b\tc\x1b[31m\x7f";
    guint flaws = 0;
    g_autofree char *cleaned = NULL;
    g_autofree char *shown = decode8(name, sizeof name - 1, &flaws, &cleaned);
    /* In an escaped name a backslash is doubled, so that "\x09" cannot be forged. */
    g_assert_cmpstr(shown, ==, "a\\\\b\\x09c\\x1b[31m\\x7f");
    g_assert_cmpstr(cleaned, ==, "a\\b_c_[31m_");
    g_assert_cmpuint(flaws, ==, CABACK_NAME_CONTROL);
    /* C1 controls (U+0085) are escaped as characters. */
    g_autofree char *c1 = decode8("x\xc2\x85y", 4, &flaws, NULL);
    g_assert_cmpstr(c1, ==, "x\\u0085y");
    g_assert_cmpuint(flaws, ==, CABACK_NAME_CONTROL);
}

static void test_invalid_utf8(void)
{
    static const char name[] = "ca\xff\xc3(\xe2\x80";
    guint flaws = 0;
    g_autofree char *cleaned = NULL;
    g_autofree char *shown = decode8(name, sizeof name - 1, &flaws, &cleaned);
    g_assert_cmpstr(shown, ==, "ca\\xff\\xc3(\\xe2\\x80");
    g_assert_cmpstr(cleaned, ==, "ca__(__");
    g_assert_cmpuint(flaws, ==, CABACK_NAME_INVALID);
    g_assert_true(g_utf8_validate(shown, -1, NULL));
}

static void test_bmp(void)
{
    static const gunichar plain[] = {'c', 'a', 0xfc, 0};
    g_autoptr(GByteArray) p = bmp_of(plain, G_N_ELEMENTS(plain));
    guint flaws = 99;
    g_autofree char *ps = caback_name_decode(p->data, p->len, TRUE, &flaws, NULL);
    g_assert_cmpstr(ps, ==, "ca\xc3\xbc");
    g_assert_cmpuint(flaws, ==, 0);

    static const gunichar bad[] = {'c', 0, 'a', 0x202e, 0xd800, 'x', 0xd83d, 0xdd11};
    g_autoptr(GByteArray) b = bmp_of(bad, G_N_ELEMENTS(bad));
    g_autofree char *cleaned = NULL;
    g_autofree char *bs = caback_name_decode(b->data, b->len, TRUE, &flaws, &cleaned);
    g_assert_cmpstr(bs, ==, "c\\x00a\\u202e\\ud800x\xf0\x9f\x94\x91");
    g_assert_cmpstr(cleaned, ==, "c_a__x\xf0\x9f\x94\x91");
    g_assert_cmpuint(flaws, ==, CABACK_NAME_NUL | CABACK_NAME_BIDI | CABACK_NAME_INVALID);

    /* An odd number of bytes: the last one is shown, not dropped. */
    static const guint8 odd[] = {0, 'a', 0x41};
    g_autofree char *os = caback_name_decode(odd, sizeof odd, TRUE, &flaws, NULL);
    g_assert_cmpstr(os, ==, "a\\x41");
    g_assert_cmpuint(flaws, ==, CABACK_NAME_INVALID);
}

static void test_texts(void)
{
    g_autofree char *none = caback_name_flaws_text(0);
    g_assert_cmpstr(none, ==, "");
    g_autofree char *one = caback_name_flaws_text(CABACK_NAME_BIDI);
    g_assert_cmpstr(one, ==, "bidi override characters");
    g_autofree char *all = caback_name_flaws_text(CABACK_NAME_NUL | CABACK_NAME_CONTROL |
                                                  CABACK_NAME_BIDI | CABACK_NAME_INVALID);
    g_assert_cmpstr(all, ==, "an embedded NUL, control characters, bidi override characters and "
                             "invalid UTF-8 or UTF-16");

    g_autofree char *log = caback_name_escape_for_log("line 1\nname \xe2\x80\xae x \xff");
    g_assert_cmpstr(log, ==, "line 1\nname \\u202e x \\xff");
    g_assert_null(caback_name_escape_for_log(NULL));
    guint flaws = 99;
    g_assert_null(caback_name_escape(NULL, &flaws));
    g_assert_cmpuint(flaws, ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/names/plain", test_plain);
    g_test_add_func("/names/nul", test_nul);
    g_test_add_func("/names/bidi", test_bidi);
    g_test_add_func("/names/control-and-backslash", test_control_and_backslash);
    g_test_add_func("/names/invalid-utf8", test_invalid_utf8);
    g_test_add_func("/names/bmp", test_bmp);
    g_test_add_func("/names/texts", test_texts);
    return g_test_run();
}
