/* Unit tests for CS.cfg handling (caback/cscfg.h): every rule of Dogtag's loader over
 * hand-written texts, byte-preserving edits, the cloning entries of the reference fragments
 * (data/CS.cfg.sample), the unified diff text, and a randomized check that every edit reads back
 * as intended with all other entries unchanged. */
#include "config.h"

#include <caback/cscfg.h>
#include <caback/error.h>

#include <glib/gstdio.h>
#include <string.h>

static CabackCsCfg *parse(const char *text)
{
    return caback_cscfg_parse(text, strlen(text), "test.cfg");
}

/* The value Dogtag reads for @key in @text. */
static void assert_value(const char *text, const char *key, const char *want)
{
    g_autoptr(CabackCsCfg) cfg = parse(text);
    const char *got = caback_cscfg_get(cfg, key);
    if (want == NULL)
        g_assert_null(got);
    else
        g_assert_cmpstr(got, ==, want);
}

static gsize count_entries(const char *text)
{
    g_autoptr(CabackCsCfg) cfg = parse(text);
    return caback_cscfg_entries(cfg)->len;
}

static void test_comments(void)
{
    const char *text = "#a=1\n!b=2\n #c=3\n\t!d=4\ne=5 # not a comment\n#cont=1\\\nf=6\n";
    g_autoptr(CabackCsCfg) cfg = parse(text);

    g_assert_null(caback_cscfg_get(cfg, "#a"));
    g_assert_null(caback_cscfg_get(cfg, "a"));
    g_assert_null(caback_cscfg_get(cfg, "!b"));
    /* '#' or '!' after white space starts a key */
    g_assert_cmpstr(caback_cscfg_get(cfg, "#c"), ==, "3");
    g_assert_cmpstr(caback_cscfg_get(cfg, "!d"), ==, "4");
    g_assert_cmpstr(caback_cscfg_get(cfg, "e"), ==, "5 # not a comment");
    /* a comment ending in a backslash does not continue */
    g_assert_cmpstr(caback_cscfg_get(cfg, "f"), ==, "6");
    g_assert_cmpuint(caback_cscfg_entries(cfg)->len, ==, 4);
}

static void test_separators(void)
{
    const char *text = "a:1\n"
                       "b 2\n"
                       "c = 3\n"
                       "d\t=\t4\n"
                       "e  :  5\n"
                       "f=:6\n"
                       "g==7\n"
                       "h = = 8\n"
                       "i\n"
                       "j=\n"
                       "k   \n"
                       "l\f:\f9\n"
                       "m 10 11 = 12\n"
                       "n:=13\n";
    g_autoptr(CabackCsCfg) cfg = parse(text);

    g_assert_cmpstr(caback_cscfg_get(cfg, "a"), ==, "1");
    g_assert_cmpstr(caback_cscfg_get(cfg, "b"), ==, "2");
    g_assert_cmpstr(caback_cscfg_get(cfg, "c"), ==, "3");
    g_assert_cmpstr(caback_cscfg_get(cfg, "d"), ==, "4");
    g_assert_cmpstr(caback_cscfg_get(cfg, "e"), ==, "5");
    /* only one '=' or ':' is skipped */
    g_assert_cmpstr(caback_cscfg_get(cfg, "f"), ==, ":6");
    g_assert_cmpstr(caback_cscfg_get(cfg, "g"), ==, "=7");
    g_assert_cmpstr(caback_cscfg_get(cfg, "h"), ==, "= 8");
    g_assert_cmpstr(caback_cscfg_get(cfg, "i"), ==, "");
    g_assert_false(caback_cscfg_lookup(cfg, "i")->has_separator);
    g_assert_cmpstr(caback_cscfg_get(cfg, "j"), ==, "");
    g_assert_true(caback_cscfg_lookup(cfg, "j")->has_separator);
    g_assert_cmpstr(caback_cscfg_get(cfg, "k"), ==, "");
    g_assert_cmpstr(caback_cscfg_get(cfg, "l"), ==, "9");
    g_assert_cmpstr(caback_cscfg_get(cfg, "m"), ==, "10 11 = 12");
    g_assert_cmpstr(caback_cscfg_get(cfg, "n"), ==, "=13");
}

static void test_key_escapes(void)
{
    /* a backslash keeps the next character in the key, and stays in it (no escape conversion) */
    assert_value("a\\=b=c\n", "a\\=b", "c");
    assert_value("sp\\ ace = v\n", "sp\\ ace", "v");
    assert_value("x\\:y:z\n", "x\\:y", "z");
    assert_value("v=tab\\tnot\\nconverted\n", "v", "tab\\tnot\\nconverted");
}

static void test_leading_space_and_trim(void)
{
    g_autoptr(CabackCsCfg) cfg = parse("   k=9\n\t\tl = x y  \t\nm=\x0bv\x0b\x01\n");

    g_assert_cmpstr(caback_cscfg_get(cfg, "k"), ==, "9");
    g_assert_cmpstr(caback_cscfg_get(cfg, "l"), ==, "x y");
    /* String.trim() removes every character <= 0x20, not only the loader's white space */
    g_assert_cmpstr(caback_cscfg_get(cfg, "m"), ==, "v");
}

static void test_duplicates(void)
{
    const char *text = "x=1\ny=a\nx=2\n x = 3\n";
    g_autoptr(CabackCsCfg) cfg = parse(text);
    const CabackCsCfgEntry *e = caback_cscfg_lookup(cfg, "x");

    g_assert_cmpstr(e->value, ==, "3");
    g_assert_cmpuint(e->line, ==, 4);
    g_assert_cmpuint(caback_cscfg_entries(cfg)->len, ==, 4);
}

static void test_continuation(void)
{
    assert_value("long=ab\\\n   cd\\\n\tef\nz=1\n", "long", "abcdef");
    assert_value("long=ab\\\n   cd\\\n\tef\nz=1\n", "z", "1");
    /* even number of backslashes: no continuation */
    assert_value("even=ab\\\\\nnext=1\n", "even", "ab\\\\");
    assert_value("even=ab\\\\\nnext=1\n", "next", "1");
    /* three: continues, two stay */
    assert_value("odd=ab\\\\\\\n  cd\n", "odd", "ab\\\\cd");
    /* a continuation line is never a comment, and an empty one ends the value */
    assert_value("c1=a\\\n#b\n", "c1", "a#b");
    assert_value("c2=a\\\n\nc3=x\n", "c2", "a");
    assert_value("c2=a\\\n\nc3=x\n", "c3", "x");
    /* the key itself can continue */
    assert_value("clo\\\n  ning=1\n", "cloning", "1");
    /* a value can start on the continuation line */
    assert_value("k=\\\n   v\n", "k", "v");
    /* end of file after the backslash */
    assert_value("eof=abc\\", "eof", "abc");
    assert_value("eof=abc\\\n", "eof", "abc");

    g_autoptr(CabackCsCfg) cfg = parse("a=1\nlong=x\\\n y\\\n z\nb=2\n");
    const CabackCsCfgEntry *e = caback_cscfg_lookup(cfg, "long");
    g_assert_cmpuint(e->line, ==, 2);
    g_assert_cmpuint(e->last_line, ==, 4);
    g_assert_cmpuint(caback_cscfg_lookup(cfg, "b")->line, ==, 5);
}

static void test_line_ends(void)
{
    g_autoptr(CabackCsCfg) crlf = parse("a=1\r\nb = 2 \r\n#c=3\r\nd=4\\\r\n  5\r\n");
    g_assert_cmpstr(caback_cscfg_get(crlf, "a"), ==, "1");
    g_assert_cmpstr(caback_cscfg_get(crlf, "b"), ==, "2");
    g_assert_null(caback_cscfg_get(crlf, "#c"));
    g_assert_cmpstr(caback_cscfg_get(crlf, "d"), ==, "45");

    /* a lone CR ends a line too (BufferedReader.readLine) */
    g_autoptr(CabackCsCfg) cr = parse("a=1\rb=2\r#c=3\r");
    g_assert_cmpstr(caback_cscfg_get(cr, "a"), ==, "1");
    g_assert_cmpstr(caback_cscfg_get(cr, "b"), ==, "2");
    g_assert_cmpuint(caback_cscfg_entries(cr)->len, ==, 2);

    g_assert_cmpuint(count_entries("a=1\nb=2"), ==, 2);
    assert_value("a=1\nb=2", "b", "2");
    g_assert_cmpuint(count_entries(""), ==, 0);
    g_assert_cmpuint(count_entries("\n\n\r\n"), ==, 0);
}

static void test_unicode(void)
{
    const char *text = "nick=Zertifikat für CA ✓\nключ = значение\n#ü=1\n";
    g_autoptr(CabackCsCfg) cfg = parse(text);

    g_assert_cmpstr(caback_cscfg_get(cfg, "nick"), ==, "Zertifikat für CA ✓");
    g_assert_cmpstr(caback_cscfg_get(cfg, "ключ"), ==, "значение");
    g_assert_cmpuint(caback_cscfg_entries(cfg)->len, ==, 2);
}

static void test_read_file(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("test-cscfg-XXXXXX", NULL);
    g_autofree char *missing = g_build_filename(dir, "no-such-CS.cfg", NULL);
    g_autofree char *path = g_build_filename(dir, "CS.cfg", NULL);

    g_assert_null(caback_cscfg_read_file(missing, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, missing));
    g_clear_error(&error);

    g_assert_true(g_file_set_contents(path, "a=1\n", -1, NULL));
    g_autoptr(CabackCsCfg) cfg = caback_cscfg_read_file(path, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(caback_cscfg_get(cfg, "a"), ==, "1");
    g_assert_cmpstr(caback_cscfg_path(cfg), ==, path);
    g_unlink(path);
    g_rmdir(dir);
}

/* ---- editing ---- */

/* Apply @key -> @value to @text and compare with @want. */
static void assert_edit(const char *text, const char *key, const char *value, const char *want)
{
    g_autoptr(CabackCsCfg) cfg = parse(text);
    g_autoptr(GPtrArray) changes =
        g_ptr_array_new_with_free_func((GDestroyNotify)caback_cscfg_change_free);
    g_autoptr(GError) error = NULL;

    g_ptr_array_add(changes, caback_cscfg_change_new(key, caback_cscfg_get(cfg, key), value));
    g_autoptr(GBytes) out = caback_cscfg_apply(cfg, changes, &error);
    g_assert_no_error(error);
    gsize len;
    const char *data = g_bytes_get_data(out, &len);
    g_autofree char *got = g_strndup(data, len);
    g_assert_cmpstr(got, ==, want);
}

static void test_apply_nothing(void)
{
    const char *texts[] = {
        "",
        "a=1",
        "# comment\r\n  key : value  \r\n\r\n!x\rlong=a\\\n  b\n\xff\xfe=\x01\n",
        "no final newline=  \t",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(texts); i++) {
        g_autoptr(CabackCsCfg) cfg = parse(texts[i]);
        g_autoptr(GPtrArray) none = g_ptr_array_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = caback_cscfg_apply(cfg, none, &error);
        g_assert_no_error(error);
        g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out), texts[i],
                        strlen(texts[i]));
        g_autofree char *diff =
            caback_cscfg_unified_diff("x", (const guint8 *)texts[i], strlen(texts[i]),
                                      g_bytes_get_data(out, NULL), g_bytes_get_size(out));
        g_assert_cmpstr(diff, ==, "");
    }
}

static void test_apply(void)
{
    /* surrounding bytes, spacing, comments and CRLF stay */
    assert_edit("a = 1  \r\n#c\r\nkey : old   \r\nz=9", "key", "new",
                "a = 1  \r\n#c\r\nkey : new   \r\nz=9");
    assert_edit("key     =-4d798441aa7230910d4e1c39fa132ea228d5d1bc\n", "key", "6ac1",
                "key     =6ac1\n");
    /* the last duplicate is the one Dogtag reads; earlier ones stay */
    assert_edit("k=1\nk=2\nj=3\n", "k", "7", "k=1\nk=7\nj=3\n");
    /* no final newline */
    assert_edit("a=1\nk=old", "k", "new", "a=1\nk=new");
    /* empty values */
    assert_edit("k=\n", "k", "v", "k=v\n");
    assert_edit("k\n", "k", "v", "k=v\n");
    assert_edit("k   \r\n", "k", "v", "k   v\r\n");
    assert_edit("k=v\n", "k", "", "k=\n");
    assert_edit("k = v \t\n", "k", "w", "k = w \t\n");
    /* continuation lines: a value spread over lines becomes one line */
    assert_edit("k=ab\\\n  cd\nz=1\n", "k", "new", "k=new\nz=1\n");
    assert_edit("k=\\\n   abc\n", "k", "new", "k=new\n");
    assert_edit("k=\\\n   abc\n", "k", "", "k=\n");
    /* a lone CR before a value that started on a continuation line, LF after it */
    assert_edit("b=\\\r\\x\n#c=1\r\n", "b", "", "b=\n#c=1\r\n");
    assert_edit("k=abc\\", "k", "new", "k=new\\");
    /* unicode around the edit */
    assert_edit("ä=ö\nk=ü\n#✓\n", "k", "x", "ä=ö\nk=x\n#✓\n");
}

static void test_apply_errors(void)
{
    g_autoptr(CabackCsCfg) cfg = parse("a=1\nb=2\n");
    g_autoptr(GPtrArray) changes =
        g_ptr_array_new_with_free_func((GDestroyNotify)caback_cscfg_change_free);
    g_autoptr(GError) error = NULL;

    g_ptr_array_add(changes, caback_cscfg_change_new("c", NULL, "3"));
    g_assert_null(caback_cscfg_apply(cfg, changes, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG);
    g_assert_nonnull(strstr(error->message, "c"));
    g_clear_error(&error);

    const char *bad[] = {"x\ny", " x", "x ", "x\\", "=x", "x\r"};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_ptr_array_set_size(changes, 0);
        g_ptr_array_add(changes, caback_cscfg_change_new("a", "1", bad[i]));
        g_assert_null(caback_cscfg_apply(cfg, changes, &error));
        g_assert_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG);
        g_clear_error(&error);
    }

    g_ptr_array_set_size(changes, 0);
    g_ptr_array_add(changes, caback_cscfg_change_new("a", "1", "5"));
    g_ptr_array_add(changes, caback_cscfg_change_new("a", "1", "6"));
    g_assert_null(caback_cscfg_apply(cfg, changes, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_CSCFG);
    g_clear_error(&error);

    /* two different keys: fine, in any order */
    g_ptr_array_set_size(changes, 0);
    g_ptr_array_add(changes, caback_cscfg_change_new("b", "2", "20"));
    g_ptr_array_add(changes, caback_cscfg_change_new("a", "1", "10"));
    g_autoptr(GBytes) out = caback_cscfg_apply(cfg, changes, &error);
    g_assert_no_error(error);
    g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out), "a=10\nb=20\n", 10);
}

/* Random texts from the characters that matter to the loader: every entry's value can be
 * changed, and the result reads back with that value and every other entry as before (the
 * library checks this itself and fails otherwise; here it must never fail). */
static void test_apply_random(void)
{
    static const char alphabet[] = "ab=:  \t\f\\\\\r\n\n#!\x0b\xc3\xa4";
    GRand *rand = g_rand_new_with_seed(g_test_rand_int());
    guint edits = 0;

    for (int round = 0; round < 3000; round++) {
        gsize n = g_rand_int_range(rand, 0, 40);
        g_autofree char *text = g_malloc(n + 1);
        for (gsize i = 0; i < n; i++)
            text[i] = alphabet[g_rand_int_range(rand, 0, sizeof alphabet - 1)];
        text[n] = '\0';
        g_autoptr(CabackCsCfg) cfg = parse(text);
        const GPtrArray *entries = caback_cscfg_entries(cfg);
        for (guint i = 0; i < entries->len; i++) {
            const CabackCsCfgEntry *e = entries->pdata[i];
            if (*e->key == '\0' || caback_cscfg_lookup(cfg, e->key) != e)
                continue;
            g_autoptr(GPtrArray) changes =
                g_ptr_array_new_with_free_func((GDestroyNotify)caback_cscfg_change_free);
            g_autoptr(GError) error = NULL;
            g_ptr_array_add(changes, caback_cscfg_change_new(e->key, e->value, "-7f0a"));
            g_autoptr(GBytes) out = caback_cscfg_apply(cfg, changes, &error);
            if (error != NULL) {
                g_autofree char *shown = g_strescape(text, NULL);
                g_error("editing %s in \"%s\": %s", e->key, shown, error->message);
            }
            g_assert_nonnull(out);
            edits++;
        }
    }
    g_assert_cmpuint(edits, >, 1000);
    g_rand_free(rand);
}

/* ---- diff ---- */

static char *diff(const char *a, const char *b)
{
    return caback_cscfg_unified_diff("CS.cfg", (const guint8 *)a, strlen(a), (const guint8 *)b,
                                     strlen(b));
}

static void test_diff(void)
{
    const char *ten = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
    g_autofree char *one = diff(ten, "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n");
    g_assert_cmpstr(one, ==,
                    "--- CS.cfg\n+++ CS.cfg\n"
                    "@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n");

    /* changes 6 lines apart share a hunk; further apart they do not */
    g_autofree char *merged = diff(ten, "one\n2\n3\n4\n5\n6\nseven\n8\n9\n10\n");
    g_assert_cmpstr(merged, ==,
                    "--- CS.cfg\n+++ CS.cfg\n"
                    "@@ -1,10 +1,10 @@\n-1\n+one\n 2\n 3\n 4\n 5\n 6\n-7\n+seven\n 8\n 9\n 10\n");
    g_autofree char *two = diff(ten, "one\n2\n3\n4\n5\n6\n7\n8\n9\nten\n");
    g_assert_cmpstr(two, ==,
                    "--- CS.cfg\n+++ CS.cfg\n"
                    "@@ -1,4 +1,4 @@\n-1\n+one\n 2\n 3\n 4\n"
                    "@@ -7,4 +7,4 @@\n 7\n 8\n 9\n-10\n+ten\n");

    /* no newline at the end; one-line hunks print no count */
    g_autofree char *nonl = diff("a=1", "a=2");
    g_assert_cmpstr(nonl, ==,
                    "--- CS.cfg\n+++ CS.cfg\n@@ -1 +1 @@\n-a=1\n\\ No newline at end of file\n"
                    "+a=2\n\\ No newline at end of file\n");
    g_autofree char *added = diff("", "a\nb\n");
    g_assert_cmpstr(added, ==, "--- CS.cfg\n+++ CS.cfg\n@@ -0,0 +1,2 @@\n+a\n+b\n");
    g_autofree char *removed = diff("a\nb\nc\n", "a\nc\n");
    g_assert_cmpstr(removed, ==, "--- CS.cfg\n+++ CS.cfg\n@@ -1,3 +1,2 @@\n a\n-b\n c\n");
    g_autofree char *joined = diff("x=1\nk=ab\\\n  cd\ny=2\n", "x=1\nk=new\ny=2\n");
    g_assert_cmpstr(joined, ==,
                    "--- CS.cfg\n+++ CS.cfg\n@@ -1,4 +1,3 @@\n x=1\n-k=ab\\\n-  cd\n+k=new\n"
                    " y=2\n");
    /* CRLF lines are printed as they are */
    g_autofree char *crlf = diff("a=1\r\nb=2\r\n", "a=1\r\nb=3\r\n");
    g_assert_cmpstr(crlf, ==, "--- CS.cfg\n+++ CS.cfg\n@@ -1,2 +1,2 @@\n a=1\r\n-b=2\r\n+b=3\r\n");
}

/* ---- numbers ---- */

static void test_numbers(void)
{
    const guint8 zero[] = {0, 0}, e[] = {0x01, 0x00, 0x01}, m[] = {0x00, 0xc2, 0x05, 0x0a};

    g_autofree char *hz = caback_cscfg_unsigned_hex(zero, sizeof zero);
    g_autofree char *he = caback_cscfg_unsigned_hex(e, sizeof e);
    g_autofree char *hm = caback_cscfg_unsigned_hex(m, sizeof m);
    g_autofree char *h0 = caback_cscfg_unsigned_hex(NULL, 0);
    g_assert_cmpstr(hz, ==, "0");
    g_assert_cmpstr(he, ==, "10001");
    g_assert_cmpstr(hm, ==, "c2050a");
    g_assert_cmpstr(h0, ==, "0");

    g_assert_true(caback_cscfg_same_number("10001", "010001"));
    g_assert_true(caback_cscfg_same_number("-584F6BB4", "-584f6bb4"));
    g_assert_true(caback_cscfg_same_number("-0", "0"));
    g_assert_true(caback_cscfg_same_number("+ab", "ab"));
    g_assert_false(caback_cscfg_same_number("-584f", "584f"));
    g_assert_false(caback_cscfg_same_number("", "0"));
    g_assert_true(caback_cscfg_same_number("", ""));
    g_assert_false(caback_cscfg_same_number("xyz", "XYZ"));
    g_assert_true(caback_cscfg_same_number("xyz", "xyz"));
}

/* ---- cloning entries ---- */

static CabackCsCfg *load_sample(void)
{
    g_autofree char *path = g_test_build_filename(G_TEST_DIST, "..", "data", "CS.cfg.sample", NULL);
    g_autoptr(GError) error = NULL;
    CabackCsCfg *cfg = caback_cscfg_read_file(path, &error);
    g_assert_no_error(error);
    return cfg;
}

static const CabackCsCfgClone *find_clone(const GPtrArray *clones, const char *tag)
{
    for (guint i = 0; i < clones->len; i++) {
        const CabackCsCfgClone *c = clones->pdata[i];
        if (strcmp(c->tag, tag) == 0)
            return c;
    }
    return NULL;
}

static void test_sample(void)
{
    g_autoptr(CabackCsCfg) cfg = load_sample();

    /* [A]: irregular white space before '=', as published */
    g_autoptr(CabackCsCfg) a =
        parse("cloning.signing.privkey.id     =-4d798441aa7230910d4e1c39fa132ea228d5d1bc\n"
              "cloning.ocsp_signing.privkey.id =-3e23e743e0ddd88f2a7c6f69fa9f9bcebef1a60\n"
              "cloning.audit_signing.privkey.id=2fe35d9d46b373efabe9ef01b8436667a70df096\n");
    g_assert_cmpstr(caback_cscfg_get(a, "cloning.signing.privkey.id"), ==,
                    "-4d798441aa7230910d4e1c39fa132ea228d5d1bc");
    g_assert_cmpstr(caback_cscfg_get(a, "cloning.ocsp_signing.privkey.id"), ==,
                    "-3e23e743e0ddd88f2a7c6f69fa9f9bcebef1a60");
    g_assert_false(caback_cscfg_has_cloning_list(a));

    /* the whole sample: duplicates resolved as Dogtag does ([D] comes after [A]) */
    g_assert_cmpstr(caback_cscfg_get(cfg, "cloning.signing.privkey.id"), ==,
                    "6ac1eb8c64dd59f836d9ff6a8b4625e01d7bb36d");
    g_assert_cmpstr(caback_cscfg_get(cfg, "cloning.sslserver.privkey.id"), ==,
                    "3023d30245804a4fab42be209ebb0dc683423a8f");
    g_assert_cmpstr(caback_cscfg_get(cfg, "preop.cert.list"), ==,
                    "sslserver,subsystem,audit_signing");
    g_assert_cmpstr(caback_cscfg_get(cfg, "ocsp.signing.certnickname"), ==, "");
    g_assert_cmpstr(caback_cscfg_get(cfg, "cloning.audit_signing.pubkey.encoded"), ==, "");
    g_assert_cmpstr(caback_cscfg_get(cfg, "cloning.audit_signing.dn"), ==,
                    "cn=CA Audit Signing Certificate,ou=pki-tomcat,o=example.com Security Domain");
    g_assert_true(caback_cscfg_has_cloning_list(cfg));
    g_autofree char *sub = caback_cscfg_subsystem(cfg);
    g_assert_cmpstr(sub, ==, "ca");

    g_autoptr(GPtrArray) clones = caback_cscfg_clone_entries(cfg);
    g_assert_cmpuint(clones->len, ==, 5);
    const char *order[] = {"signing", "ocsp_signing", "sslserver", "subsystem", "audit_signing"};
    for (guint i = 0; i < clones->len; i++) {
        const CabackCsCfgClone *c = clones->pdata[i];
        g_assert_cmpstr(c->tag, ==, order[i]);
        g_assert_true(c->listed);
    }
    const CabackCsCfgClone *signing = find_clone(clones, "signing");
    g_assert_cmpstr(signing->nickname, ==, "caSigningCert cert-pki-tomcat CA");
    g_assert_cmpstr(signing->nickname_key, ==, "cloning.signing.nickname");
    g_assert_cmpstr(signing->token, ==, "internal");
    g_assert_cmpstr(signing->token_key, ==, "cloning.module.token");
    /* audit_signing: cloning.audit_signing.nickname wins over [C]'s ca.audit_signing.nickname */
    g_assert_cmpstr(find_clone(clones, "audit_signing")->nickname, ==,
                    "auditSigningCert cert-pki-tomcat CA");
    /* the legacy sslserver tag has no nickname anywhere in the sample */
    const CabackCsCfgClone *ssl = find_clone(clones, "sslserver");
    g_assert_null(ssl->nickname);
    g_autofree char *why = NULL;
    g_autofree char *name = caback_cscfg_clone_lookup_name(ssl, "NSS Certificate DB", TRUE, &why);
    g_assert_null(name);
    g_assert_nonnull(strstr(why, "cloning.sslserver.nickname"));
    g_assert_nonnull(strstr(why, "ca.cert.sslserver.nickname"));

    /* the sample's own IDs and moduli are consistent: no change */
    CabackCsCfgKeyValues ocsp = {
        .privkey_id = "-2f5098c8d6e36f095d9b9dd58ff9132df77d85d8",
        .modulus = caback_cscfg_get(cfg, "cloning.ocsp_signing.pubkey.modulus"),
        .exponent = "10001",
        .encoded = "",
    };
    g_autoptr(GPtrArray) none = caback_cscfg_clone_changes(cfg, "ocsp_signing", &ocsp);
    g_assert_cmpuint(none->len, ==, 0);
    /* upper case and leading zeros are the same number */
    g_autofree char *upper =
        g_ascii_strup(caback_cscfg_get(cfg, "cloning.ocsp_signing.pubkey.modulus"), -1);
    g_autofree char *padded = g_strconcat("00", upper, NULL);
    ocsp.modulus = padded;
    ocsp.exponent = "010001";
    g_autoptr(GPtrArray) still_none = caback_cscfg_clone_changes(cfg, "ocsp_signing", &ocsp);
    g_assert_cmpuint(still_none->len, ==, 0);

    /* a re-keyed RSA key: id, modulus change; exponent and encoded stay */
    CabackCsCfgKeyValues rekeyed = {"-584f6bb4847c688d65b373650c563d4690b6390d", "d00d", "10001",
                                    ""};
    g_autoptr(GPtrArray) changes = caback_cscfg_clone_changes(cfg, "subsystem", &rekeyed);
    g_assert_cmpuint(changes->len, ==, 2);
    const CabackCsCfgChange *c0 = changes->pdata[0], *c1 = changes->pdata[1];
    g_assert_cmpstr(c0->key, ==, "cloning.subsystem.privkey.id");
    g_assert_cmpstr(c0->old_value, ==, "7c3bde21bcf13bd89e5e784ed10f495e9d06749b");
    g_assert_cmpstr(c0->new_value, ==, "-584f6bb4847c688d65b373650c563d4690b6390d");
    g_assert_cmpstr(c1->key, ==, "cloning.subsystem.pubkey.modulus");
    g_assert_cmpstr(c1->new_value, ==, "d00d");

    /* an EC key in place of an RSA one: no modulus, no exponent, the encoded key */
    CabackCsCfgKeyValues ec = {"3ebb9f49de3ca569b539d8a0f49d42a33e2231d0", "", "",
                               "3059301306072a8648ce3d020106082a8648ce3d03010703420004ab"};
    g_autoptr(GPtrArray) ec_changes = caback_cscfg_clone_changes(cfg, "audit_signing", &ec);
    g_assert_cmpuint(ec_changes->len, ==, 3);
    g_assert_cmpstr(((CabackCsCfgChange *)ec_changes->pdata[0])->key, ==,
                    "cloning.audit_signing.pubkey.modulus");
    g_assert_cmpstr(((CabackCsCfgChange *)ec_changes->pdata[1])->new_value, ==, "");
    g_assert_cmpstr(((CabackCsCfgChange *)ec_changes->pdata[2])->key, ==,
                    "cloning.audit_signing.pubkey.encoded");

    /* applying the re-key changes the two lines only; the diff shows them */
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) out = caback_cscfg_apply(cfg, changes, &error);
    g_assert_no_error(error);
    gsize old_len;
    const guint8 *old = caback_cscfg_data(cfg, &old_len);
    g_autofree char *d = caback_cscfg_unified_diff(
        "CS.cfg", old, old_len, g_bytes_get_data(out, NULL), g_bytes_get_size(out));
    g_assert_nonnull(strstr(d, "\n-cloning.subsystem.privkey.id=7c3bde21bcf13bd89e5e784ed10f495e9d"
                               "06749b\n+cloning.subsystem.privkey.id=-584f6bb4847c688d65b373650c"
                               "563d4690b6390d\n"));
    g_assert_nonnull(strstr(d, "\n+cloning.subsystem.pubkey.modulus=d00d\n"));
    gsize minus = 0, plus = 0;
    g_auto(GStrv) lines = g_strsplit(d, "\n", -1);
    for (int i = 0; lines[i] != NULL; i++) {
        minus += lines[i][0] == '-' && lines[i][1] != '-';
        plus += lines[i][0] == '+' && lines[i][1] != '+';
    }
    g_assert_cmpuint(minus, ==, 2);
    g_assert_cmpuint(plus, ==, 2);
    g_assert_cmpuint(g_bytes_get_size(out), ==,
                     old_len - strlen("7c3bde21bcf13bd89e5e784ed10f495e9d06749b") +
                         strlen("-584f6bb4847c688d65b373650c563d4690b6390d") -
                         strlen(c1->old_value) + 4);
}

static void test_nickname_fallbacks(void)
{
    g_autoptr(CabackCsCfg) cfg =
        parse("cs.type=CA\n"
              "ca.cert.list=signing,ocsp_signing,subsystem,audit_signing\n"
              "cloning.signing.privkey.id=1\n"
              "cloning.subsystem.privkey.id=2\n"
              "cloning.subsystem.nickname=\n"
              "ca.cert.subsystem.nickname=subsystemCert cert-pki-ca\n"
              "cloning.audit_signing.privkey.id=3\n"
              "ca.audit_signing.nickname=ca_audit_signing\n"
              "ca.cert.audit_signing.nickname=not this one\n"
              "ca.signing.certnickname=NHSM6000:caSigningCert cert-pki-ca\n"
              "cloning.ocsp_signing.privkey.id=4\n"
              "cloning.ocsp_signing.nickname=ocspSigningCert cert-pki-ca\n"
              "cloning.ocsp_signing.tokenname=Internal Key Storage Token\n"
              "cloning.odd.privkey.id=5\n"
              "cloning.odd.nickname=oddCert\n"
              "cloning.odd.tokenname=NHSM6000\n");
    g_autoptr(GPtrArray) clones = caback_cscfg_clone_entries(cfg);

    g_assert_false(caback_cscfg_has_cloning_list(cfg));
    g_assert_cmpuint(clones->len, ==, 5);
    /* without cloning.list: file order */
    g_assert_cmpstr(((CabackCsCfgClone *)clones->pdata[0])->tag, ==, "signing");
    g_assert_cmpstr(((CabackCsCfgClone *)clones->pdata[3])->tag, ==, "ocsp_signing");

    const CabackCsCfgClone *sub = find_clone(clones, "subsystem");
    g_assert_cmpstr(sub->nickname, ==, "subsystemCert cert-pki-ca");
    g_assert_cmpstr(sub->nickname_key, ==, "ca.cert.subsystem.nickname");
    g_assert_null(sub->token);
    g_assert_false(sub->listed);

    const CabackCsCfgClone *audit = find_clone(clones, "audit_signing");
    g_assert_cmpstr(audit->nickname, ==, "ca_audit_signing");
    g_assert_cmpstr(audit->nickname_key, ==, "ca.audit_signing.nickname");

    const CabackCsCfgClone *signing = find_clone(clones, "signing");
    g_assert_cmpstr(signing->nickname, ==, "NHSM6000:caSigningCert cert-pki-ca");
    g_assert_cmpstr(signing->nickname_key, ==, "ca.signing.certnickname");
    g_assert_cmpstr(signing->bare_nickname, ==, "caSigningCert cert-pki-ca");
    g_assert_cmpstr(signing->token, ==, "NHSM6000");

    /* a hardware token that is not the selected one is reported, never looked up elsewhere */
    g_autofree char *why = NULL;
    g_autofree char *name =
        caback_cscfg_clone_lookup_name(signing, "NSS Certificate DB", TRUE, &why);
    g_assert_null(name);
    g_assert_nonnull(strstr(why, "\"NHSM6000\""));
    g_assert_nonnull(strstr(why, "--token"));
    g_autofree char *why2 = NULL;
    g_autofree char *on_hsm = caback_cscfg_clone_lookup_name(signing, "NHSM6000", FALSE, &why2);
    g_assert_cmpstr(on_hsm, ==, "caSigningCert cert-pki-ca");
    g_assert_null(why2);

    /* the internal token, in its several spellings */
    const CabackCsCfgClone *ocsp = find_clone(clones, "ocsp_signing");
    g_assert_cmpstr(ocsp->token, ==, "Internal Key Storage Token");
    g_autofree char *why3 = NULL;
    g_autofree char *internal =
        caback_cscfg_clone_lookup_name(ocsp, "NSS Certificate DB", TRUE, &why3);
    g_assert_cmpstr(internal, ==, "ocspSigningCert cert-pki-ca");
    g_autofree char *why4 = NULL;
    g_autofree char *wrong = caback_cscfg_clone_lookup_name(ocsp, "NHSM6000", FALSE, &why4);
    g_assert_null(wrong);
    g_assert_nonnull(strstr(why4, "internal token"));

    const CabackCsCfgClone *odd = find_clone(clones, "odd");
    g_assert_cmpstr(odd->token, ==, "NHSM6000");
    g_assert_cmpstr(odd->token_key, ==, "cloning.odd.tokenname");
    g_autofree char *why5 = NULL;
    g_autofree char *no = caback_cscfg_clone_lookup_name(odd, "NSS Certificate DB", TRUE, &why5);
    g_assert_null(no);
    g_assert_nonnull(strstr(why5, "cloning.odd.tokenname"));

    g_assert_true(caback_cscfg_token_is_internal(NULL));
    g_assert_true(caback_cscfg_token_is_internal("INTERNAL"));
    g_assert_true(caback_cscfg_token_is_internal("NSS Certificate DB"));
    g_assert_false(caback_cscfg_token_is_internal("NHSM6000"));

    g_autoptr(CabackCsCfg) kra = parse("kra.cert.list=transport,storage\n");
    g_autofree char *kra_sub = caback_cscfg_subsystem(kra);
    g_assert_cmpstr(kra_sub, ==, "kra");
    g_autoptr(CabackCsCfg) none = parse("preop.cert.list=a\n");
    g_autofree char *none_sub = caback_cscfg_subsystem(none);
    g_assert_null(none_sub);
}

/* ---- the parser against a reference ----
 * The parser keeps, for each logical line, its pieces (one per physical line) and a running count
 * of trailing backslashes. The reference below is the straightforward form it replaced (an
 * offset per byte, trailing backslashes counted again after every continuation line, quadratic
 * on runs of backslashes): both must give the same entries, offsets included, on every input. */

typedef struct {
    char *key, *value;
    guint line, last_line;
    gsize value_start, value_end, edit_start;
    gboolean has_separator;
} RefEntry;

static gboolean ref_space(guint8 c)
{
    return c == ' ' || c == '\t' || c == '\f' || c == '\r' || c == '\n';
}

static GArray *ref_parse(const guint8 *d, gsize len)
{
    GArray *out = g_array_new(FALSE, TRUE, sizeof(RefEntry));
    gsize pos = 0;
    guint line_no = 0;
    while (pos < len) {
        gsize start = pos, end = pos;
        while (end < len && d[end] != '\n' && d[end] != '\r')
            end++;
        pos = end < len && d[end] == '\r' && end + 1 < len && d[end + 1] == '\n' ? end + 2
              : end < len                                                     ? end + 1
                                                                              : len;
        line_no++;
        if (end == start || d[start] == '#' || d[start] == '!')
            continue;
        g_autoptr(GByteArray) l = g_byte_array_new();
        g_autoptr(GArray) map = g_array_new(FALSE, FALSE, sizeof(gsize));
        for (gsize i = start; i < end; i++) {
            g_byte_array_append(l, d + i, 1);
            g_array_append_val(map, i);
        }
        guint first = line_no;
        gsize end_offset = end;
        for (;;) {
            gsize count = 0;
            for (gsize i = l->len; i > 0 && l->data[i - 1] == '\\'; i--)
                count++;
            if (count % 2 == 0)
                break;
            g_byte_array_set_size(l, l->len - 1);
            g_array_set_size(map, map->len - 1);
            end_offset = map->len > 0 ? g_array_index(map, gsize, map->len - 1) + 1 : start;
            if (pos >= len)
                continue;
            gsize ms = pos, me = pos;
            while (me < len && d[me] != '\n' && d[me] != '\r')
                me++;
            pos = me < len && d[me] == '\r' && me + 1 < len && d[me + 1] == '\n' ? me + 2
                  : me < len                                                    ? me + 1
                                                                                : len;
            line_no++;
            gsize i = ms;
            while (i < me && ref_space(d[i]))
                i++;
            for (; i < me; i++) {
                g_byte_array_append(l, d + i, 1);
                g_array_append_val(map, i);
                end_offset = i + 1;
            }
        }
        const guint8 *s = l->data;
        gsize n = l->len, ks = 0, si, vi, ts, te;
        while (ks < n && ref_space(s[ks]))
            ks++;
        si = ks;
        while (si < n) {
            if (s[si] == '\\')
                si += 2;
            else if (s[si] == '=' || s[si] == ':' || ref_space(s[si]))
                break;
            else
                si++;
        }
        si = MIN(si, n);
        vi = si;
        while (vi < n && ref_space(s[vi]))
            vi++;
        if (vi < n && (s[vi] == '=' || s[vi] == ':'))
            vi++;
        while (vi < n && ref_space(s[vi]))
            vi++;
        ts = si < n ? vi : n;
        te = n;
        while (ts < te && s[ts] <= 0x20)
            ts++;
        while (te > ts && s[te - 1] <= 0x20)
            te--;
        RefEntry e = {g_strndup((const char *)s + ks, si - ks),
                      g_strndup((const char *)s + ts, te - ts), first, line_no, 0, 0, 0, si < n};
        e.value_start = ts < n ? g_array_index(map, gsize, ts) : end_offset;
        e.value_end = te > ts ? g_array_index(map, gsize, te - 1) + 1 : e.value_start;
        e.edit_start = ts > 0 ? g_array_index(map, gsize, ts - 1) + 1 : e.value_start;
        if (e.edit_start > e.value_start)
            e.edit_start = e.value_start;
        g_array_append_val(out, e);
    }
    return out;
}

static void assert_same_as_reference(const guint8 *data, gsize len)
{
    g_autoptr(CabackCsCfg) cfg = caback_cscfg_parse(data, len, NULL);
    GArray *ref = ref_parse(data, len);
    const GPtrArray *entries = caback_cscfg_entries(cfg);
    g_assert_cmpuint(entries->len, ==, ref->len);
    for (guint i = 0; i < ref->len; i++) {
        const CabackCsCfgEntry *e = entries->pdata[i];
        RefEntry *r = &g_array_index(ref, RefEntry, i);
        g_assert_cmpstr(e->key, ==, r->key);
        g_assert_cmpstr(e->value, ==, r->value);
        g_assert_cmpuint(e->line, ==, r->line);
        g_assert_cmpuint(e->last_line, ==, r->last_line);
        g_assert_cmpuint(e->value_start, ==, r->value_start);
        g_assert_cmpuint(e->value_end, ==, r->value_end);
        g_assert_cmpuint(e->edit_start, ==, r->edit_start);
        g_assert_cmpint(e->has_separator, ==, r->has_separator);
        g_free(r->key);
        g_free(r->value);
    }
    g_array_unref(ref);
}

static void test_parse_reference(void)
{
    /* Runs of backslashes across lines (each odd run continues, and the runs join), empty and
     * blank continuation lines, a continuation at the end of the file, line ends of every kind. */
    const char *cases[] = {
        "a=\\\\\\\n\\\\\\\n\\\\\\\nend\n",
        "a=1\\\n\\\n\\\n\n b = 2 \\\r\n   \t\\\r  x\r\n",
        "k\\\n=v\\",
        "x:\\\\\n\\\n",
        "\\\n\\\n\\\n=\\\n",
        "#c\\\nk=v\\\n#not a comment\n!c\n",
        "  key\\ with\\=escapes = value \\\n\t continued \\\\\n",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        assert_same_as_reference((const guint8 *)cases[i], strlen(cases[i]));

    /* Random files over the characters that matter. */
    static const char alphabet[] = "ab=: \t\f\\\\\\\\\r\n\n#!";
    GRand *rand = g_rand_new_with_seed(16);
    for (int round = 0; round < 3000; round++) {
        gsize len = (gsize)g_rand_int_range(rand, 0, 80);
        g_autofree guint8 *buf = g_malloc(len + 1);
        for (gsize i = 0; i < len; i++)
            buf[i] = (guint8)alphabet[g_rand_int_range(rand, 0, sizeof(alphabet) - 1)];
        assert_same_as_reference(buf, len);
    }
    g_rand_free(rand);

    /* A long value: 20,000 lines of three backslashes, one logical line. */
    g_autoptr(GString) big = g_string_new("bench.value=start\\\n");
    for (int i = 0; i < 20000; i++)
        g_string_append(big, "\\\\\\\n");
    g_string_append(big, "    end\nnext=1\n");
    assert_same_as_reference((const guint8 *)big->str, big->len);
    g_autoptr(CabackCsCfg) cfg = caback_cscfg_parse(big->str, big->len, NULL);
    g_assert_cmpuint(caback_cscfg_entries(cfg)->len, ==, 2);
    g_assert_cmpstr(caback_cscfg_get(cfg, "next"), ==, "1");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cscfg/parse/comments", test_comments);
    g_test_add_func("/cscfg/parse/separators", test_separators);
    g_test_add_func("/cscfg/parse/key-escapes", test_key_escapes);
    g_test_add_func("/cscfg/parse/leading-space-and-trim", test_leading_space_and_trim);
    g_test_add_func("/cscfg/parse/duplicates", test_duplicates);
    g_test_add_func("/cscfg/parse/continuation", test_continuation);
    g_test_add_func("/cscfg/parse/line-ends", test_line_ends);
    g_test_add_func("/cscfg/parse/unicode", test_unicode);
    g_test_add_func("/cscfg/parse/reference", test_parse_reference);
    g_test_add_func("/cscfg/read-file", test_read_file);
    g_test_add_func("/cscfg/apply/nothing", test_apply_nothing);
    g_test_add_func("/cscfg/apply/edits", test_apply);
    g_test_add_func("/cscfg/apply/errors", test_apply_errors);
    g_test_add_func("/cscfg/apply/random", test_apply_random);
    g_test_add_func("/cscfg/diff", test_diff);
    g_test_add_func("/cscfg/numbers", test_numbers);
    g_test_add_func("/cscfg/clone/sample", test_sample);
    g_test_add_func("/cscfg/clone/nickname-fallbacks", test_nickname_fallbacks);
    return g_test_run();
}
