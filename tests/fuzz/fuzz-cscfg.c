/* Fuzz target for the CS.cfg parser and editor (what fix-clone-ids reads and rewrites). For any
 * bytes: parsing keeps them exactly, applying no change gives them back byte for byte, every
 * entry's offsets lie inside the file and match its value, the value Dogtag would use is the last
 * entry's, and changing one value (a few fixed new values, on an entry chosen by the input)
 * either succeeds, touching no byte before the entry's value or after it, and reads back as the
 * new value, or is refused with CABACK_ERROR_CSCFG. The cloning-entry helpers and the diff run on
 * the same input. */
#include "config.h"

#include "fuzz.h"

#include <caback/cscfg.h>
#include <caback/error.h>

#include <string.h>

/* New values written by the edit; each is one that the editor promises to write (no line break,
 * no surrounding white space, no leading separator, no final odd backslash). */
static const char *const new_values[] = {
    "-584f6bb484c7688d65b37365c0c563d4690b6310d",
    "fuzz",
    "",
    "a\\\\b",
    "caSigningCert cert-pki-ca",
    "x=y:z #!",
};

static void check_entries(const CabackCsCfg *cfg, const guint8 *data, gsize size)
{
    const GPtrArray *entries = caback_cscfg_entries(cfg);
    guint prev_line = 0;

    for (guint i = 0; i < entries->len; i++) {
        const CabackCsCfgEntry *e = entries->pdata[i];
        FUZZ_CHECK(e->key != NULL && e->value != NULL);
        FUZZ_CHECK(e->line >= 1 && e->line <= e->last_line && e->line > prev_line);
        prev_line = e->last_line;
        FUZZ_CHECK(e->edit_start <= e->value_start);
        FUZZ_CHECK(e->value_start <= e->value_end && e->value_end <= size);
        /* getString trims every character <= 0x20 at both ends. A NUL byte inside the value
         * ends the C string early (Dogtag's Java string would go on), so the end is checked only
         * when the value's bytes hold none. */
        gsize vlen = strlen(e->value);
        gboolean has_nul =
            memchr(data + e->value_start, '\0', e->value_end - e->value_start) != NULL;
        if (vlen > 0)
            FUZZ_CHECK((guint8)e->value[0] > 0x20);
        if (vlen > 0 && !has_nul)
            FUZZ_CHECK((guint8)e->value[vlen - 1] > 0x20);
        /* On one physical line the value is the file's bytes at its offsets. */
        if (e->line == e->last_line && !has_nul) {
            FUZZ_CHECK(vlen == e->value_end - e->value_start);
            FUZZ_CHECK(memcmp(e->value, data + e->value_start, vlen) == 0);
        }
        /* The entry Dogtag uses for a key is the last one with that key. */
        const CabackCsCfgEntry *used = caback_cscfg_lookup(cfg, e->key);
        FUZZ_CHECK(used != NULL && strcmp(used->key, e->key) == 0 && used->line >= e->line);
        FUZZ_CHECK(caback_cscfg_get(cfg, e->key) == used->value);
    }
}

static void check_edit(const CabackCsCfg *cfg, const guint8 *data, gsize size)
{
    const GPtrArray *entries = caback_cscfg_entries(cfg);
    if (entries->len == 0 || size == 0)
        return;

    /* The input chooses the entry and the value, from its last byte and its length. */
    const CabackCsCfgEntry *picked = entries->pdata[data[size - 1] % entries->len];
    const CabackCsCfgEntry *e = caback_cscfg_lookup(cfg, picked->key);
    const char *new_value = new_values[size % G_N_ELEMENTS(new_values)];
    g_autoptr(GPtrArray) changes =
        g_ptr_array_new_with_free_func((GDestroyNotify)caback_cscfg_change_free);
    g_ptr_array_add(changes, caback_cscfg_change_new(e->key, e->value, new_value));

    GError *error = NULL;
    GBytes *out = caback_cscfg_apply(cfg, changes, &error);
    if (out == NULL) {
        FUZZ_CHECK(error != NULL && error->domain == CABACK_ERROR &&
                   error->code == CABACK_ERROR_CSCFG);
        g_error_free(error);
        return;
    }
    FUZZ_CHECK(error == NULL);

    gsize out_len = 0;
    const guint8 *out_data = g_bytes_get_data(out, &out_len);
    /* Nothing before the entry's value or after it changed. */
    FUZZ_CHECK(out_len >= e->edit_start + (size - e->value_end));
    FUZZ_CHECK(memcmp(out_data, data, e->edit_start) == 0);
    FUZZ_CHECK(memcmp(out_data + out_len - (size - e->value_end), data + e->value_end,
                      size - e->value_end) == 0);

    /* Read back: the key has the new value. */
    CabackCsCfg *again = caback_cscfg_parse(out_data, out_len, "fuzz-edited.cfg");
    const char *now = caback_cscfg_get(again, e->key);
    FUZZ_CHECK(now != NULL && strcmp(now, new_value) == 0);
    caback_cscfg_free(again);

    char *diff = caback_cscfg_unified_diff("CS.cfg", data, size, out_data, out_len);
    FUZZ_CHECK(diff != NULL);
    FUZZ_CHECK((*diff == '\0') == (out_len == size && memcmp(out_data, data, size) == 0));
    g_free(diff);
    g_bytes_unref(out);
}

static void check_clones(const CabackCsCfg *cfg)
{
    static const CabackCsCfgKeyValues values = {
        .privkey_id = "-584f6bb484c7688d65b37365c0c563d4690b6310d",
        .modulus = "c0ffee",
        .exponent = "10001",
        .encoded = "",
    };
    char *sub = caback_cscfg_subsystem(cfg);
    (void)caback_cscfg_has_cloning_list(cfg);
    GPtrArray *clones = caback_cscfg_clone_entries(cfg);

    for (guint i = 0; i < clones->len; i++) {
        const CabackCsCfgClone *c = clones->pdata[i];
        char *why = NULL;
        FUZZ_CHECK(c->tag != NULL && c->tried_keys != NULL);
        char *name = caback_cscfg_clone_lookup_name(c, "NSS Certificate DB", TRUE, &why);
        FUZZ_CHECK((name == NULL) != (why == NULL));
        g_free(name);
        g_free(why);
        name = caback_cscfg_clone_lookup_name(c, "HSM", FALSE, &why);
        FUZZ_CHECK((name == NULL) != (why == NULL));
        g_free(name);
        g_free(why);

        GPtrArray *changes = caback_cscfg_clone_changes(cfg, c->tag, &values);
        if (changes->len > 0) {
            GError *error = NULL;
            GBytes *out = caback_cscfg_apply(cfg, changes, &error);
            if (out == NULL) {
                FUZZ_CHECK(error != NULL && error->code == CABACK_ERROR_CSCFG);
                g_error_free(error);
            }
            g_clear_pointer(&out, g_bytes_unref);
        }
        g_ptr_array_unref(changes);
    }
    g_ptr_array_unref(clones);
    g_free(sub);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CabackCsCfg *cfg = caback_cscfg_parse(data, size, "fuzz.cfg");

    /* parse -> bytes: identical */
    gsize len = 0;
    const guint8 *kept = caback_cscfg_data(cfg, &len);
    FUZZ_CHECK(len == size && memcmp(kept, data, size) == 0);

    /* parse -> apply nothing -> identical bytes */
    GPtrArray *none = g_ptr_array_new();
    GError *error = NULL;
    GBytes *same = caback_cscfg_apply(cfg, none, &error);
    FUZZ_CHECK(same != NULL && error == NULL);
    FUZZ_CHECK(g_bytes_get_size(same) == size &&
               memcmp(g_bytes_get_data(same, NULL), data, size) == 0);
    g_bytes_unref(same);
    g_ptr_array_unref(none);

    check_entries(cfg, data, size);
    check_edit(cfg, data, size);
    check_clones(cfg);

    /* The number helpers on the input's own bytes. */
    char *hex = caback_cscfg_unsigned_hex(data, MIN(size, (size_t)64));
    FUZZ_CHECK(hex != NULL && *hex != '\0');
    g_free(hex);
    const GPtrArray *entries = caback_cscfg_entries(cfg);
    if (entries->len >= 2) {
        const CabackCsCfgEntry *a = entries->pdata[0], *b = entries->pdata[1];
        FUZZ_CHECK(caback_cscfg_same_number(a->value, b->value) ==
                   caback_cscfg_same_number(b->value, a->value));
        FUZZ_CHECK(caback_cscfg_same_number(a->value, a->value));
        (void)caback_cscfg_token_is_internal(a->value);
    }

    caback_cscfg_free(cfg);
    return 0;
}
