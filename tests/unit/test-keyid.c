/* Unit tests for the key-ID forms (caback/keyid.h): the worked examples of issue 2, edge values,
 * every accepted input form and every refused one, and a comparison with an independent oracle
 * (tests/keyid-oracle.py, Python integers) over thousands of IDs in both directions. */
#include "config.h"

#include <caback/error.h>
#include <caback/keyid.h>

#include <string.h>

static CabackKeyId parse_ok(const char *text)
{
    CabackKeyId id;
    g_autoptr(GError) error = NULL;

    if (!caback_keyid_parse(text, &id, &error))
        g_error("parsing \"%s\" failed: %s", text, error->message);
    g_assert_no_error(error);
    return id;
}

static void assert_forms(const char *input, const char *nss, const char *dogtag)
{
    CabackKeyId id = parse_ok(input);
    g_autofree char *got_nss = caback_keyid_to_nss(&id);
    g_autofree char *got_dogtag = caback_keyid_to_dogtag(&id);
    g_autofree char *got_0x = caback_keyid_to_0x(&id);
    g_autofree char *want_0x = g_strconcat("0x", nss, NULL);

    g_assert_cmpstr(got_nss, ==, nss);
    g_assert_cmpstr(got_dogtag, ==, dogtag);
    g_assert_cmpstr(got_0x, ==, want_0x);
}

/* Parsing @text fails with CABACK_ERROR_USAGE, the message names the input and contains @why. */
static void assert_refused(const char *text, const char *why)
{
    CabackKeyId id;
    g_autoptr(GError) error = NULL;

    memset(&id, 0xa5, sizeof id);
    g_assert_false(caback_keyid_parse(text, &id, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    g_autofree char *escaped = g_strescape(text, NULL);
    if (strlen(escaped) <= 80)
        g_assert_nonnull(strstr(error->message, escaped));
    if (why != NULL && strstr(error->message, why) == NULL)
        g_error("message for \"%s\" lacks \"%s\": %s", text, why, error->message);
    /* A failed parse leaves the output alone. */
    for (gsize i = 0; i < CABACK_KEYID_LEN; i++)
        g_assert_cmpuint(id.bytes[i], ==, 0xa5);
}

static void test_worked_examples(void)
{
    assert_forms("a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3",
                 "a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3",
                 "-584f6bb4847c688d65b373650c563d4690b6390d");
    assert_forms("6006094af3e5d02aaa91426594ca66cb53e73ac0",
                 "6006094af3e5d02aaa91426594ca66cb53e73ac0",
                 "6006094af3e5d02aaa91426594ca66cb53e73ac0");
    assert_forms("ffffffffffffffffceb42c026f8ac01c9782ca73",
                 "ffffffffffffffffceb42c026f8ac01c9782ca73", "-314bd3fd90753fe3687d358d");
    assert_forms("000000000000000018604db6c7a073ff08338650",
                 "000000000000000018604db6c7a073ff08338650", "18604db6c7a073ff08338650");
    /* ... and back from the CS.cfg form. */
    assert_forms("-584f6bb4847c688d65b373650c563d4690b6390d",
                 "a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3",
                 "-584f6bb4847c688d65b373650c563d4690b6390d");
    assert_forms("-314bd3fd90753fe3687d358d", "ffffffffffffffffceb42c026f8ac01c9782ca73",
                 "-314bd3fd90753fe3687d358d");
    assert_forms("18604db6c7a073ff08338650", "000000000000000018604db6c7a073ff08338650",
                 "18604db6c7a073ff08338650");
}

static void test_edge_values(void)
{
    assert_forms("0", "0000000000000000000000000000000000000000", "0");
    assert_forms("0000000000000000000000000000000000000000",
                 "0000000000000000000000000000000000000000", "0");
    assert_forms("-0", "0000000000000000000000000000000000000000", "0");
    assert_forms("ffffffffffffffffffffffffffffffffffffffff",
                 "ffffffffffffffffffffffffffffffffffffffff", "-1");
    assert_forms("-1", "ffffffffffffffffffffffffffffffffffffffff", "-1");
    assert_forms("8000000000000000000000000000000000000000",
                 "8000000000000000000000000000000000000000",
                 "-8000000000000000000000000000000000000000");
    assert_forms("-8000000000000000000000000000000000000000",
                 "8000000000000000000000000000000000000000",
                 "-8000000000000000000000000000000000000000");
    assert_forms("7fffffffffffffffffffffffffffffffffffffff",
                 "7fffffffffffffffffffffffffffffffffffffff",
                 "7fffffffffffffffffffffffffffffffffffffff");
    assert_forms("8000000000000000000000000000000000000001",
                 "8000000000000000000000000000000000000001",
                 "-7fffffffffffffffffffffffffffffffffffffff");
    /* One-byte values: unsigned input zero-extends, so "ff" is 255, not -1. */
    assert_forms("1", "0000000000000000000000000000000000000001", "1");
    assert_forms("7f", "000000000000000000000000000000000000007f", "7f");
    assert_forms("80", "0000000000000000000000000000000000000080", "80");
    assert_forms("ff", "00000000000000000000000000000000000000ff", "ff");
    assert_forms("-80", "ffffffffffffffffffffffffffffffffffffff80", "-80");
    assert_forms("-81", "ffffffffffffffffffffffffffffffffffffff7f", "-81");
    assert_forms("-100", "ffffffffffffffffffffffffffffffffffffff00", "-100");
    /* Odd digit counts. */
    assert_forms("abc", "0000000000000000000000000000000000000abc", "abc");
    assert_forms("-abc", "fffffffffffffffffffffffffffffffffffff544", "-abc");
}

static void test_input_forms(void)
{
    const char *nss = "a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3";
    const char *dogtag = "-584f6bb4847c688d65b373650c563d4690b6390d";

    assert_forms("A7B0944B7B8397729A4C8C9AF3A9C2B96F49C6F3", nss, dogtag);
    assert_forms("0xa7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3", nss, dogtag);
    assert_forms("0XA7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3", nss, dogtag);
    assert_forms("a7:b0:94:4b:7b:83:97:72:9a:4c:8c:9a:f3:a9:c2:b9:6f:49:c6:f3", nss, dogtag);
    assert_forms("A7:B0:94:4B:7B:83:97:72:9A:4C:8C:9A:F3:A9:C2:B9:6F:49:C6:F3", nss, dogtag);
    assert_forms("  -584F6BB4847C688D65B373650C563D4690B6390D\t\n", nss, dogtag);
    assert_forms(" a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3\r\n", nss, dogtag);
    /* Short forms are zero-extended (0x and colon forms are unsigned). */
    assert_forms("0x1", "0000000000000000000000000000000000000001", "1");
    assert_forms("0xff", "00000000000000000000000000000000000000ff", "ff");
    assert_forms("ba:76", "000000000000000000000000000000000000ba76", "ba76");
    assert_forms("0:a:ff", "0000000000000000000000000000000000000aff", "aff");
    /* Leading zeros of the Dogtag negative form do not change the value. */
    assert_forms("-00001", "ffffffffffffffffffffffffffffffffffffffff", "-1");
}

static void test_refused(void)
{
    assert_refused("", "empty");
    assert_refused("   \t", "empty");
    assert_refused("-", "lone");
    assert_refused("0x", "no hex digits");
    assert_refused("-0x1234", "-0x");
    assert_refused("-0X1234", "-0x");
    assert_refused("a7b0944g7b", "'g' is not a hex digit");
    assert_refused("12 34", "' ' is not a hex digit");
    assert_refused("--1", "'-' is not a hex digit");
    assert_refused("+1", "'+' is not a hex digit");
    assert_refused("0x0x12", "'x' is not a hex digit");
    assert_refused("caSigningCert cert-pki-ca", "not a hex digit");
    assert_refused("a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3a", "longer than a 20-byte");
    assert_refused("0x0a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3", "longer than a 20-byte");
    assert_refused("-18000000000000000000000000000000000000000", "longer than a 20-byte");
    /* The magnitude of a negative ID must be at most 2^159. */
    assert_refused("-8000000000000000000000000000000000000001", "below -2^159");
    assert_refused("-ffffffffffffffffffffffffffffffffffffffff", "below -2^159");
    assert_refused("a7:b0::94", "empty byte");
    assert_refused("a7:b0:", "empty byte");
    assert_refused(":a7", "empty byte");
    assert_refused("a7:b09:94", "not one byte");
    assert_refused("a7:g0", "'g' is not a hex digit");
    assert_refused("-a7:b0", "colon");
    assert_refused("00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13:14",
                   "more than 20");
    assert_refused("\x01\x02", "not a hex digit");

    /* Very long input is cut in the message but still refused. */
    g_autofree char *long_input = g_strnfill(500, 'a');
    CabackKeyId id;
    g_autoptr(GError) error = NULL;
    g_assert_false(caback_keyid_parse(long_input, &id, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    g_assert_cmpuint(strlen(error->message), <, 200);
    g_assert_nonnull(strstr(error->message, "500 hex digits"));
}

static void test_from_bytes(void)
{
    static const guint8 full[20] = {0xa7, 0xb0, 0x94, 0x4b, 0x7b, 0x83, 0x97, 0x72, 0x9a, 0x4c,
                                    0x8c, 0x9a, 0xf3, 0xa9, 0xc2, 0xb9, 0x6f, 0x49, 0xc6, 0xf3};
    static const guint8 shorter[3] = {0xff, 0x12, 0x34};
    guint8 longer[21] = {0};
    CabackKeyId id, other;
    g_autoptr(GError) error = NULL;

    g_assert_true(caback_keyid_from_bytes(full, sizeof full, &id, &error));
    g_assert_no_error(error);
    other = parse_ok("a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3");
    g_assert_true(caback_keyid_equal(&id, &other));
    other = parse_ok("-584f6bb4847c688d65b373650c563d4690b6390d");
    g_assert_true(caback_keyid_equal(&id, &other));
    other = parse_ok("a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f2");
    g_assert_false(caback_keyid_equal(&id, &other));

    /* Raw bytes shorter than 20 are zero-extended (CKA_ID bytes are unsigned). */
    g_assert_true(caback_keyid_from_bytes(shorter, sizeof shorter, &id, &error));
    g_autofree char *nss = caback_keyid_to_nss(&id);
    g_assert_cmpstr(nss, ==, "0000000000000000000000000000000000ff1234");

    g_assert_true(caback_keyid_from_bytes(NULL, 0, &id, &error));
    g_autofree char *zero = caback_keyid_to_dogtag(&id);
    g_assert_cmpstr(zero, ==, "0");

    g_assert_false(caback_keyid_from_bytes(longer, sizeof longer, &id, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    g_assert_nonnull(strstr(error->message, "21 bytes"));
}

static void test_bytes_to_dogtag(void)
{
    static const guint8 neg[3] = {0xff, 0x12, 0x34};
    static const guint8 pos[3] = {0x00, 0x12, 0x34};
    static const guint8 min8[1] = {0x80};
    static const guint8 long_neg[21] = {0x80};
    g_autofree char *a = caback_keyid_bytes_to_dogtag(neg, sizeof neg);
    g_autofree char *b = caback_keyid_bytes_to_dogtag(pos, sizeof pos);
    g_autofree char *c = caback_keyid_bytes_to_dogtag(min8, sizeof min8);
    g_autofree char *d = caback_keyid_bytes_to_dogtag(NULL, 0);
    g_autofree char *e = caback_keyid_bytes_to_dogtag(long_neg, sizeof long_neg);

    g_assert_cmpstr(a, ==, "-edcc");
    g_assert_cmpstr(b, ==, "1234");
    g_assert_cmpstr(c, ==, "-80");
    g_assert_cmpstr(d, ==, "0");
    g_assert_cmpstr(e, ==, "-800000000000000000000000000000000000000000");

    /* The hex of the same bytes, as certutil -K prints a CKA_ID of any length. */
    g_autofree char *f = caback_keyid_bytes_to_hex(neg, sizeof neg);
    g_autofree char *g = caback_keyid_bytes_to_hex(NULL, 0);
    g_autofree char *h = caback_keyid_bytes_to_hex(long_neg, sizeof long_neg);
    g_assert_cmpstr(f, ==, "ff1234");
    g_assert_cmpstr(g, ==, "");
    g_assert_cmpstr(h, ==, "800000000000000000000000000000000000000000");
}

static void test_legacy_problem(void)
{
    static const struct {
        const char *nss;
        gboolean problem;
    } cases[] = {
        {"000000000000000018604db6c7a073ff08338650", TRUE},
        {"ffffffffffffffffceb42c026f8ac01c9782ca73", TRUE},
        {"a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3", FALSE},
        {"6006094af3e5d02aaa91426594ca66cb53e73ac0", FALSE},
        {"0000000000000000000000000000000000000000", TRUE},  /* 0 */
        {"ffffffffffffffffffffffffffffffffffffffff", TRUE},  /* -1 */
        {"007fffffffffffffffffffffffffffffffffffff", TRUE},  /* 00 7f: sign byte is redundant */
        {"0080000000000000000000000000000000000000", FALSE}, /* 00 80: the 00 is needed */
        {"ff80000000000000000000000000000000000000", TRUE},  /* ff 80: redundant */
        {"ff7fffffffffffffffffffffffffffffffffffff", FALSE}, /* ff 7f: the ff is needed */
        {"8000000000000000000000000000000000000000", FALSE}, /* -2^159 */
        {"7fffffffffffffffffffffffffffffffffffffff", FALSE},
        {"0100000000000000000000000000000000000000", FALSE},
        {"fe00000000000000000000000000000000000000", FALSE},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        CabackKeyId id = parse_ok(cases[i].nss);
        if (caback_keyid_dogtag_legacy_problem(&id) != cases[i].problem)
            g_error("legacy problem of %s should be %d", cases[i].nss, cases[i].problem);
    }
}

/* Every one of 2^16 IDs that differ in the two bytes deciding sign and legacy status survives
 * nss -> dogtag -> nss, 0x and colon forms. */
static void test_round_trips(void)
{
    CabackKeyId id;
    g_autoptr(GRand) rand = g_rand_new_with_seed(42);

    for (guint v = 0; v < 65536; v++) {
        id.bytes[0] = (guint8)(v >> 8);
        id.bytes[1] = (guint8)v;
        for (gsize i = 2; i < CABACK_KEYID_LEN; i++)
            id.bytes[i] = (guint8)g_rand_int_range(rand, 0, 256);

        g_autofree char *nss = caback_keyid_to_nss(&id);
        g_autofree char *dogtag = caback_keyid_to_dogtag(&id);
        g_autofree char *hex0x = caback_keyid_to_0x(&id);
        GString *colon = g_string_new(NULL);
        for (gsize i = 0; i < CABACK_KEYID_LEN; i++)
            g_string_append_printf(colon, "%s%02X", i ? ":" : "", id.bytes[i]);
        g_autofree char *colon_text = g_string_free(colon, FALSE);

        const char *forms[] = {nss, dogtag, hex0x, colon_text};
        for (gsize f = 0; f < G_N_ELEMENTS(forms); f++) {
            CabackKeyId back = parse_ok(forms[f]);
            if (!caback_keyid_equal(&back, &id))
                g_error("round trip of %s through \"%s\" failed", nss, forms[f]);
        }
        g_assert_cmpuint(strlen(nss), ==, 40);
        g_assert_true(dogtag[0] != '0' || dogtag[1] == '\0');
        g_assert_true(dogtag[0] != '-' || dogtag[1] != '0');
    }
}

/* Compare every line of the Python oracle, both directions, and the legacy predicate. */
static void test_oracle(void)
{
    const char *python = g_getenv("PYTHON3");
    if (python == NULL || *python == '\0') {
        g_test_skip("PYTHON3 is not set (run through make check)");
        return;
    }
    g_autofree char *script = g_test_build_filename(G_TEST_DIST, "keyid-oracle.py", NULL);
    const char *argv[] = {python, script, "6000", NULL};
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int wait_status = 0;
    g_autoptr(GError) error = NULL;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                               &wait_status, &error));
    g_assert_no_error(error);
    if (!g_spawn_check_wait_status(wait_status, &error))
        g_error("%s failed: %s\n%s", script, error->message, err);

    g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
    guint compared = 0;
    for (gsize i = 0; lines[i] != NULL; i++) {
        if (lines[i][0] == '\0')
            continue;
        g_auto(GStrv) f = g_strsplit(lines[i], " ", -1);
        g_assert_cmpuint(g_strv_length(f), ==, 3);
        const char *want_nss = f[0], *want_dogtag = f[1];
        gboolean want_legacy = strcmp(f[2], "1") == 0;

        CabackKeyId from_nss = parse_ok(want_nss);
        g_autofree char *dogtag = caback_keyid_to_dogtag(&from_nss);
        if (strcmp(dogtag, want_dogtag) != 0)
            g_error("nss->dogtag %s: got %s, oracle says %s", want_nss, dogtag, want_dogtag);
        if (caback_keyid_dogtag_legacy_problem(&from_nss) != want_legacy)
            g_error("legacy problem of %s: oracle says %d", want_nss, want_legacy);

        CabackKeyId from_dogtag = parse_ok(want_dogtag);
        g_autofree char *nss = caback_keyid_to_nss(&from_dogtag);
        if (strcmp(nss, want_nss) != 0)
            g_error("dogtag->nss %s: got %s, oracle says %s", want_dogtag, nss, want_nss);

        /* The raw-bytes path gives the same Dogtag form as the parsed one. */
        g_autofree char *raw = caback_keyid_bytes_to_dogtag(from_nss.bytes, CABACK_KEYID_LEN);
        g_assert_cmpstr(raw, ==, want_dogtag);
        compared++;
    }
    g_test_message("compared %u IDs with the oracle", compared);
    g_assert_cmpuint(compared, >=, 5000);
}

/* An ID read from a token keeps its own length for the forms of the ID as the token holds it
 * (what certutil -K prints, what Dogtag computes); the 20-byte forms are unchanged. */
static void test_token_forms(void)
{
    const guint8 short_id[] = {0x80, 0x01};
    const guint8 full[CABACK_KEYID_LEN] = {0xa7, 0xb0, 0x94, 0x4b, 0x7b, 0x83, 0x97,
                                           0x72, 0x9a, 0x4c, 0x8c, 0x9a, 0xf3, 0xa9,
                                           0xc2, 0xb9, 0x6f, 0x49, 0xc6, 0xf3};
    CabackKeyId id, parsed;

    g_assert_true(caback_keyid_from_bytes(short_id, sizeof short_id, &id, NULL));
    g_autofree char *hex = caback_keyid_to_token_hex(&id);
    g_autofree char *dogtag = caback_keyid_to_token_dogtag(&id);
    g_autofree char *nss = caback_keyid_to_nss(&id);
    g_assert_cmpstr(hex, ==, "8001");
    g_assert_cmpstr(dogtag, ==, "-7fff");
    g_assert_cmpstr(nss, ==, "0000000000000000000000000000000000008001");

    g_assert_true(caback_keyid_from_bytes(full, sizeof full, &id, NULL));
    g_assert_true(caback_keyid_parse("a7:b0:94:4b:7b:83:97:72:9a:4c:8c:9a:f3:a9:c2:b9:6f:49:c6:f3",
                                     &parsed, NULL));
    g_assert_cmpuint(id.token_len, ==, 0);
    g_assert_cmpuint(parsed.token_len, ==, 0);
    g_autofree char *full_hex = caback_keyid_to_token_hex(&id);
    g_autofree char *full_dogtag = caback_keyid_to_token_dogtag(&id);
    g_autofree char *parsed_dogtag = caback_keyid_to_dogtag(&parsed);
    g_assert_cmpstr(full_hex, ==, "a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3");
    g_assert_cmpstr(full_dogtag, ==, parsed_dogtag);
}

/* Which arguments are negative IDs rather than options (caback keyid's command line). */
static void test_negative_argument(void)
{
    const char *ids[] = {"-584f6bb4847c688d65b373650c563d4690b6390d", "-1", "-0x12", "-0X1f",
                         "-ab", "-0"};
    const char *options[] = {"-d", "-c", "-f", "-a", "--json", "-", "-x12", "-0x", "-1g", "584f",
                             ""};

    for (gsize i = 0; i < G_N_ELEMENTS(ids); i++)
        g_assert_true(caback_keyid_is_negative_argument(ids[i]));
    for (gsize i = 0; i < G_N_ELEMENTS(options); i++)
        g_assert_false(caback_keyid_is_negative_argument(options[i]));
}

/* caback keyid --json: every form of each ID, under "ids". */
static void test_json(void)
{
    g_autoptr(GPtrArray) inputs = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) invalid = g_ptr_array_new_with_free_func((GDestroyNotify)g_error_free);

    g_ptr_array_add(inputs, g_strdup("-584f"));
    g_autoptr(GPtrArray) ids = caback_keyid_parse_each(inputs, invalid);
    g_autofree char *text = caback_keyid_json(ids);
    g_autoptr(GString) json = g_string_new(NULL);
    for (const char *c = text; *c != '\0'; c++) /* the values here hold no white space */
        if (!g_ascii_isspace(*c))
            g_string_append_c(json, *c);
    g_autofree char *nss = caback_keyid_to_nss(&((CabackKeyIdInput *)ids->pdata[0])->id);
    g_autofree char *expect = g_strdup_printf("\"nss_id\":\"%s\"", nss);

    g_assert_true(g_str_has_prefix(json->str, "{\"ids\":[{\"input\":\"-584f\""));
    g_assert_nonnull(strstr(json->str, expect));
    g_assert_nonnull(strstr(json->str, "\"dogtag\":\"-584f\""));
    g_assert_nonnull(strstr(json->str, "\"dogtag_legacy_problem\":true"));
    g_assert_true(g_str_has_suffix(json->str, "}]}"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/keyid/worked-examples", test_worked_examples);
    g_test_add_func("/keyid/edge-values", test_edge_values);
    g_test_add_func("/keyid/input-forms", test_input_forms);
    g_test_add_func("/keyid/refused", test_refused);
    g_test_add_func("/keyid/from-bytes", test_from_bytes);
    g_test_add_func("/keyid/bytes-to-dogtag", test_bytes_to_dogtag);
    g_test_add_func("/keyid/legacy-problem", test_legacy_problem);
    g_test_add_func("/keyid/round-trips", test_round_trips);
    g_test_add_func("/keyid/oracle", test_oracle);
    g_test_add_func("/keyid/token-forms", test_token_forms);
    g_test_add_func("/keyid/negative-argument", test_negative_argument);
    g_test_add_func("/keyid/json", test_json);
    return g_test_run();
}
