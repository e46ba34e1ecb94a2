/* M-of-N custody: the archive secret, its split with libgfshare, the text form and the record of
 * a share, and the checks of a set of shares (see include/caback/custody.h). The CMS envelope
 * and the share files are in custody-cms.c. */
#include "config.h"

#include <caback/custody.h>
#include <caback/error.h>
#include <caback/nss-util.h>

#include <libgfshare.h>
#include <pk11pub.h>
#include <string.h>

#define TEXT_PREFIX "CBK1"
#define TEXT_GROUP 6
#define CHECK_LEN 4
/* format, i, M, N, archive tag, split ID, share bytes */
#define PAYLOAD_LEN (4 + CABACK_CUSTODY_ARCHIVE_TAG_LEN + CABACK_CUSTODY_SPLIT_ID_LEN + \
                     CABACK_CUSTODY_SECRET_LEN)
#define BINARY_LEN (PAYLOAD_LEN + CHECK_LEN)
#define BASE32_LEN ((BINARY_LEN * 8 + 4) / 5)
#define TEXT_LEN (sizeof TEXT_PREFIX - 1 + BASE32_LEN + (BASE32_LEN + TEXT_GROUP - 1) / TEXT_GROUP)

static const char base32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* A zeroed secret of @len bytes (caback_secret_new copies; this is the buffer to fill). */
static CabackSecret *secret_alloc(gsize len)
{
    static const char zeros[256];
    g_assert(len <= sizeof zeros);
    return caback_secret_new(zeros, len);
}

/* ---- randomness for libgfshare ---- */

/* libgfshare takes its random bytes (the polynomial's coefficients, and the bytes it scrubs its
 * buffers with on free) from this global hook, which cannot report a failure: a failure is
 * remembered here and checked after each call that may use it. */
static gint rand_failed;

static void fill_rand_nss(unsigned char *buf, unsigned int len)
{
    if (PK11_GenerateRandom(buf, (int)len) != SECSuccess) {
        g_atomic_int_set(&rand_failed, 1);
        /* never leave predictable coefficients: the caller sees the flag and gives up */
        memset(buf, 0, len);
    }
}

static void gfshare_setup(void)
{
    static gsize once;
    if (g_once_init_enter(&once)) {
        gfshare_fill_rand = fill_rand_nss;
        g_once_init_leave(&once, 1);
    }
}

CabackSecret *caback_custody_secret_new(GError **error)
{
    g_autoptr(CabackSecret) secret = secret_alloc(CABACK_CUSTODY_SECRET_LEN);
    if (PK11_GenerateRandom((unsigned char *)secret->data, CABACK_CUSTODY_SECRET_LEN) !=
        SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "cannot draw the archive password from NSS's random generator");
        return NULL;
    }
    return g_steal_pointer(&secret);
}

CabackSecret *caback_custody_password(const CabackSecret *secret)
{
    char buf[64];
    gint state = 0, save = 0;
    gsize n;

    g_return_val_if_fail(secret != NULL && secret->len == CABACK_CUSTODY_SECRET_LEN, NULL);
    n = g_base64_encode_step((const guchar *)secret->data, secret->len, FALSE, buf, &state, &save);
    n += g_base64_encode_close(FALSE, buf + n, &state, &save);
    g_assert(n >= CABACK_CUSTODY_PASSWORD_LEN && n < sizeof buf);
    for (gsize i = 0; i < n; i++) {
        if (buf[i] == '+')
            buf[i] = '-';
        else if (buf[i] == '/')
            buf[i] = '_';
    }
    CabackSecret *password = caback_secret_new(buf, CABACK_CUSTODY_PASSWORD_LEN);
    caback_secret_wipe(buf, sizeof buf);
    caback_secret_wipe(&save, sizeof save);
    return password;
}

gboolean caback_custody_split_check(guint threshold, guint count, GError **error)
{
    if (count < 1) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "no custodian given: a split needs at least one custodian certificate");
        return FALSE;
    }
    if (count > CABACK_CUSTODY_MAX_COUNT) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "%u custodians given: a split has at most %u shares", count,
                    CABACK_CUSTODY_MAX_COUNT);
        return FALSE;
    }
    if (threshold < 1) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "--split %u: at least 1 share must be needed to open the archive", threshold);
        return FALSE;
    }
    if (threshold > count) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "--split %u with %u custodians: more shares would be needed than there are "
                    "custodians; give at least %u custodians or a smaller --split",
                    threshold, count, threshold);
        return FALSE;
    }
    return TRUE;
}

void caback_share_free(CabackShare *share)
{
    if (share == NULL)
        return;
    caback_secret_free(share->value);
    g_free(share->source);
    caback_secret_wipe(share, sizeof *share);
    g_free(share);
}

GPtrArray *caback_share_array_new(void)
{
    return g_ptr_array_new_with_free_func((GDestroyNotify)caback_share_free);
}

GPtrArray *caback_custody_split(const CabackSecret *secret, guint threshold, guint count,
                                const guint8 *archive_sha256, GError **error)
{
    guint8 split_id[CABACK_CUSTODY_SPLIT_ID_LEN];
    unsigned char sharenrs[CABACK_CUSTODY_MAX_COUNT];
    unsigned char coefficients_in[CABACK_CUSTODY_SECRET_LEN];

    g_return_val_if_fail(secret != NULL && secret->len == CABACK_CUSTODY_SECRET_LEN, NULL);
    g_return_val_if_fail(archive_sha256 != NULL, NULL);
    if (!caback_custody_split_check(threshold, count, error))
        return NULL;
    if (PK11_GenerateRandom(split_id, sizeof split_id) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "cannot draw a split ID from NSS's random generator");
        return NULL;
    }
    gfshare_setup();
    for (guint i = 0; i < count; i++)
        sharenrs[i] = (unsigned char)(i + 1);

    g_atomic_int_set(&rand_failed, 0);
    gfshare_ctx *ctx = gfshare_ctx_init_enc(sharenrs, count, (unsigned char)threshold,
                                            CABACK_CUSTODY_SECRET_LEN);
    if (ctx == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "libgfshare refused a %u-of-%u split", threshold, count);
        return NULL;
    }
    /* gfshare_ctx_enc_setsecret takes a non-const buffer; it only copies from it */
    memcpy(coefficients_in, secret->data, sizeof coefficients_in);
    gfshare_ctx_enc_setsecret(ctx, coefficients_in);
    caback_secret_wipe(coefficients_in, sizeof coefficients_in);

    g_autoptr(GPtrArray) shares = caback_share_array_new();
    for (guint i = 0; i < count; i++) {
        CabackShare *share = g_new0(CabackShare, 1);
        share->format = CABACK_SHARE_FORMAT;
        share->index = i + 1;
        share->threshold = threshold;
        share->count = count;
        memcpy(share->split_id, split_id, sizeof split_id);
        memcpy(share->archive_sha256, archive_sha256, 32);
        share->archive_sha256_complete = TRUE;
        share->value = secret_alloc(CABACK_CUSTODY_SECRET_LEN);
        gfshare_ctx_enc_getshare(ctx, (unsigned char)i, (unsigned char *)share->value->data);
        g_ptr_array_add(shares, share);
    }
    gfshare_ctx_free(ctx);
    if (g_atomic_int_get(&rand_failed)) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "cannot draw the split's coefficients from NSS's random generator");
        return NULL;
    }
    return g_steal_pointer(&shares);
}

/* "share 2 (FILE)" or "share 2" */
static char *share_name(const CabackShare *share)
{
    if (share->source != NULL)
        return g_strdup_printf("share %u (%s)", share->index, share->source);
    return g_strdup_printf("share %u", share->index);
}

gboolean caback_custody_shares_check(GPtrArray *shares, const guint8 *archive_sha256,
                                     GError **error)
{
    if (shares == NULL || shares->len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD, "no share given");
        return FALSE;
    }
    const CabackShare *first = g_ptr_array_index(shares, 0);
    for (guint k = 0; k < shares->len; k++) {
        const CabackShare *share = g_ptr_array_index(shares, k);
        g_autofree char *name = share_name(share);

        if (share->format != CABACK_SHARE_FORMAT || share->value == NULL ||
            share->value->len != CABACK_CUSTODY_SECRET_LEN) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                        "%s is not a share of format %u", name, CABACK_SHARE_FORMAT);
            return FALSE;
        }
        if (share->index < 1 || share->index > share->count || share->threshold < 1 ||
            share->threshold > share->count || share->count > CABACK_CUSTODY_MAX_COUNT) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                        "%s is damaged: it states index %u of a %u-of-%u split", name,
                        share->index, share->threshold, share->count);
            return FALSE;
        }
        if (archive_sha256 != NULL &&
            memcmp(share->archive_sha256, archive_sha256,
                   share->archive_sha256_complete ? 32 : CABACK_CUSTODY_ARCHIVE_TAG_LEN) != 0) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                        "%s is for another archive (it opens the file whose SHA-256 begins "
                        "with %02x%02x%02x%02x%02x%02x%02x%02x, not this one): use the shares "
                        "of this archive's backup", name, share->archive_sha256[0],
                        share->archive_sha256[1], share->archive_sha256[2],
                        share->archive_sha256[3], share->archive_sha256[4],
                        share->archive_sha256[5], share->archive_sha256[6],
                        share->archive_sha256[7]);
            return FALSE;
        }
        if (k > 0 && (memcmp(share->split_id, first->split_id, sizeof first->split_id) != 0 ||
                      memcmp(share->archive_sha256, first->archive_sha256,
                             CABACK_CUSTODY_ARCHIVE_TAG_LEN) != 0 ||
                      share->threshold != first->threshold || share->count != first->count)) {
            g_autofree char *first_name = share_name(first);
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                        "%s belongs to another split than %s (%u-of-%u vs %u-of-%u, or another "
                        "backup): give shares of one split only",
                        name, first_name, share->threshold, share->count, first->threshold,
                        first->count);
            return FALSE;
        }
        for (guint j = 0; j < k; j++) {
            const CabackShare *other = g_ptr_array_index(shares, j);
            if (other->index == share->index) {
                g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                            "share %u is given twice (%s and %s): give shares of different "
                            "custodians", share->index,
                            other->source != NULL ? other->source : "unnamed",
                            share->source != NULL ? share->source : "unnamed");
                return FALSE;
            }
        }
    }
    if (shares->len < first->threshold) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%u of %u shares given: %u more custodian%s must open their share",
                    shares->len, first->threshold, first->threshold - shares->len,
                    first->threshold - shares->len == 1 ? "" : "s");
        return FALSE;
    }
    return TRUE;
}

CabackSecret *caback_custody_combine(GPtrArray *shares, const guint8 *archive_sha256,
                                     GError **error)
{
    unsigned char sharenrs[CABACK_CUSTODY_MAX_COUNT];
    unsigned char value[CABACK_CUSTODY_SECRET_LEN];

    if (!caback_custody_shares_check(shares, archive_sha256, error))
        return NULL;
    gfshare_setup();
    for (guint k = 0; k < shares->len; k++)
        sharenrs[k] = (unsigned char)((const CabackShare *)g_ptr_array_index(shares, k))->index;
    gfshare_ctx *ctx = gfshare_ctx_init_dec(sharenrs, shares->len, CABACK_CUSTODY_SECRET_LEN);
    if (ctx == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "libgfshare refused to combine %u shares", shares->len);
        return NULL;
    }
    for (guint k = 0; k < shares->len; k++) {
        const CabackShare *share = g_ptr_array_index(shares, k);
        memcpy(value, share->value->data, sizeof value);
        gfshare_ctx_dec_giveshare(ctx, (unsigned char)k, value);
    }
    caback_secret_wipe(value, sizeof value);
    CabackSecret *secret = secret_alloc(CABACK_CUSTODY_SECRET_LEN);
    gfshare_ctx_dec_extract(ctx, (unsigned char *)secret->data);
    gfshare_ctx_free(ctx);
    return secret;
}

CabackSecret *caback_custody_password_from_shares(GPtrArray *shares,
                                                  const guint8 *archive_sha256, GError **error)
{
    g_autoptr(CabackSecret) secret = caback_custody_combine(shares, archive_sha256, error);
    if (secret == NULL)
        return NULL;
    return caback_custody_password(secret);
}

/* ---- the text form ---- */

static gboolean checksum(const guint8 *payload, guint8 out[CHECK_LEN])
{
    guint8 digest[32];
    if (PK11_HashBuf(SEC_OID_SHA256, digest, payload, PAYLOAD_LEN) != SECSuccess)
        return FALSE;
    memcpy(out, digest, CHECK_LEN);
    return TRUE;
}

CabackSecret *caback_share_to_text(const CabackShare *share)
{
    guint8 bin[BINARY_LEN];
    char text[TEXT_LEN + 1];
    gsize t = 0, chars = 0;
    guint32 acc = 0;
    guint bits = 0;

    g_return_val_if_fail(share != NULL && share->value != NULL &&
                             share->value->len == CABACK_CUSTODY_SECRET_LEN,
                         NULL);
    bin[0] = (guint8)share->format;
    bin[1] = (guint8)share->index;
    bin[2] = (guint8)share->threshold;
    bin[3] = (guint8)share->count;
    memcpy(bin + 4, share->archive_sha256, CABACK_CUSTODY_ARCHIVE_TAG_LEN);
    memcpy(bin + 4 + CABACK_CUSTODY_ARCHIVE_TAG_LEN, share->split_id, CABACK_CUSTODY_SPLIT_ID_LEN);
    memcpy(bin + 4 + CABACK_CUSTODY_ARCHIVE_TAG_LEN + CABACK_CUSTODY_SPLIT_ID_LEN,
           share->value->data, CABACK_CUSTODY_SECRET_LEN);
    if (!checksum(bin, bin + PAYLOAD_LEN))
        g_error("SHA-256 unavailable: NSS is not open");

    memcpy(text, TEXT_PREFIX, sizeof TEXT_PREFIX - 1);
    t = sizeof TEXT_PREFIX - 1;
    for (gsize i = 0; i < BINARY_LEN || bits > 0;) {
        if (bits < 5 && i < BINARY_LEN) {
            acc = (acc << 8) | bin[i++];
            bits += 8;
        }
        guint v;
        if (bits >= 5) {
            v = (acc >> (bits - 5)) & 31;
            bits -= 5;
        } else {
            v = (acc << (5 - bits)) & 31; /* the last character: zero bits added */
            bits = 0;
        }
        if (chars % TEXT_GROUP == 0)
            text[t++] = '-';
        text[t++] = base32_alphabet[v];
        chars++;
    }
    g_assert(chars == BASE32_LEN && t == TEXT_LEN);
    text[t] = '\0';
    CabackSecret *result = caback_secret_new(text, t);
    caback_secret_wipe(text, sizeof text);
    caback_secret_wipe(bin, sizeof bin);
    caback_secret_wipe(&acc, sizeof acc);
    return result;
}

/* The base32 characters of a share's text from @p (after the prefix) to the end of its line,
 * dashes and blanks skipped, into @bin; the bits left over must be zero (else the checksum
 * message). Every intermediate value is wiped. */
static gboolean decode_base32(const char *text, gsize len, gsize p, const char *where,
                              guint8 bin[BINARY_LEN], gboolean *padding_clean, GError **error)
{
    gsize chars = 0, n = 0;
    guint32 acc = 0;
    guint bits = 0;
    gboolean ok = FALSE;

    for (; p < len && text[p] != '\n' && text[p] != '\r' && text[p] != '\0'; p++) {
        char c = g_ascii_toupper(text[p]);
        const char *pos;
        if (c == '-' || c == ' ' || c == '\t')
            continue;
        pos = c != '\0' ? strchr(base32_alphabet, c) : NULL;
        if (pos == NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                        "%s is mistyped: character %zu is not one of A-Z and 2-7%s", where,
                        p + 1,
                        (c == '0' || c == '1' || c == '8' || c == '9')
                            ? " (0, 1, 8 and 9 never occur in a share)"
                            : "");
            goto out;
        }
        chars++;
        if (chars > BASE32_LEN)
            continue; /* reported below with the count */
        acc = (acc << 5) | (guint32)(pos - base32_alphabet);
        bits += 5;
        if (bits >= 8) {
            bin[n++] = (guint8)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    if (chars != BASE32_LEN) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s is mistyped or incomplete: it has %zu characters after \"%s\", a share "
                    "has %u", where, chars, TEXT_PREFIX, (guint)BASE32_LEN);
        goto out;
    }
    g_assert(n == BINARY_LEN);
    *padding_clean = (acc & ((1u << bits) - 1)) == 0;
    ok = TRUE;
out:
    caback_secret_wipe(&acc, sizeof acc);
    return ok;
}

/* The share of the binary form @bin, its checksum and fields checked. */
static CabackShare *share_from_binary(const guint8 bin[BINARY_LEN], gboolean padding_clean,
                                      const char *where, const char *source, GError **error)
{
    guint8 check[CHECK_LEN];

    if (!padding_clean || !checksum(bin, check) ||
        memcmp(check, bin + PAYLOAD_LEN, CHECK_LEN) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s is mistyped or damaged: its checksum does not match; compare it with "
                    "the custodian's copy character by character", where);
        return NULL;
    }
    if (bin[0] != CABACK_SHARE_FORMAT) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s is a share of format %u; this caback reads format %u", where, bin[0],
                    CABACK_SHARE_FORMAT);
        return NULL;
    }
    if (bin[1] < 1 || bin[1] > bin[3] || bin[2] < 1 || bin[2] > bin[3]) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s is damaged: it states share %u of a %u-of-%u split", where, bin[1],
                    bin[2], bin[3]);
        return NULL;
    }
    CabackShare *share = g_new0(CabackShare, 1);
    share->format = bin[0];
    share->index = bin[1];
    share->threshold = bin[2];
    share->count = bin[3];
    memcpy(share->archive_sha256, bin + 4, CABACK_CUSTODY_ARCHIVE_TAG_LEN);
    share->archive_sha256_complete = FALSE;
    memcpy(share->split_id, bin + 4 + CABACK_CUSTODY_ARCHIVE_TAG_LEN, CABACK_CUSTODY_SPLIT_ID_LEN);
    share->value = caback_secret_new(
        (const char *)bin + 4 + CABACK_CUSTODY_ARCHIVE_TAG_LEN + CABACK_CUSTODY_SPLIT_ID_LEN,
        CABACK_CUSTODY_SECRET_LEN);
    share->source = g_strdup(source);
    return share;
}

CabackShare *caback_share_from_text(const char *text, gsize len, const char *source,
                                    GError **error)
{
    guint8 bin[BINARY_LEN];
    const char *where = source != NULL ? source : "the share";
    gsize p = 0;
    gboolean padding_clean = FALSE;
    CabackShare *share = NULL;

    /* the first line only, without leading blanks */
    while (p < len && (text[p] == ' ' || text[p] == '\t'))
        p++;
    if (len - p < sizeof TEXT_PREFIX - 1 ||
        g_ascii_strncasecmp(text + p, TEXT_PREFIX, sizeof TEXT_PREFIX - 1) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s is not a caback share: a share's text begins with \"%s-\"", where,
                    TEXT_PREFIX);
        return NULL;
    }
    p += sizeof TEXT_PREFIX - 1;
    if (decode_base32(text, len, p, where, bin, &padding_clean, error))
        share = share_from_binary(bin, padding_clean, where, source, error);
    caback_secret_wipe(bin, sizeof bin);
    return share;
}

/* ---- the record ---- */

static void hex_put(char *out, const guint8 *bytes, gsize len)
{
    static const char digits[] = "0123456789abcdef";
    for (gsize i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

CabackSecret *caback_share_record_encode(const CabackShare *share)
{
    char archive[65], split[2 * CABACK_CUSTODY_SPLIT_ID_LEN + 1], custodian[65];
    char buf[1024];

    g_return_val_if_fail(share != NULL && share->has_custodian && share->archive_sha256_complete,
                         NULL);
    g_autoptr(CabackSecret) text = caback_share_to_text(share);
    hex_put(archive, share->archive_sha256, 32);
    hex_put(split, share->split_id, CABACK_CUSTODY_SPLIT_ID_LEN);
    hex_put(custodian, share->custodian_sha256, 32);
    int n = g_snprintf(buf, sizeof buf,
                       "caback share record\n"
                       "format: %u\n"
                       "index: %u\n"
                       "threshold: %u\n"
                       "count: %u\n"
                       "archive-sha256: %s\n"
                       "split-id: %s\n"
                       "custodian-sha256: %s\n"
                       "share: %s\n",
                       share->format, share->index, share->threshold, share->count, archive,
                       split, custodian, text->data);
    g_assert(n > 0 && (gsize)n < sizeof buf);
    CabackSecret *record = caback_secret_new(buf, (gsize)n);
    caback_secret_wipe(buf, sizeof buf);
    return record;
}

static gboolean hex_get(const char *text, gsize len, guint8 *out, gsize out_len)
{
    if (len != 2 * out_len)
        return FALSE;
    for (gsize i = 0; i < out_len; i++) {
        int hi = g_ascii_xdigit_value(text[2 * i]), lo = g_ascii_xdigit_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0 || g_ascii_isupper(text[2 * i]) || g_ascii_isupper(text[2 * i + 1]))
            return FALSE;
        out[i] = (guint8)(hi << 4 | lo);
    }
    return TRUE;
}

/* A decimal without sign or leading zero, 1..255. */
static gboolean small_number_get(const char *text, gsize len, guint *out)
{
    guint v = 0;
    if (len == 0 || len > 3 || text[0] == '0')
        return FALSE;
    for (gsize i = 0; i < len; i++) {
        if (!g_ascii_isdigit(text[i]))
            return FALSE;
        v = v * 10 + (guint)(text[i] - '0');
    }
    if (v > CABACK_CUSTODY_MAX_COUNT)
        return FALSE;
    *out = v;
    return TRUE;
}

/* The fields of a share record as they are read, line by line. */
typedef struct {
    const char *where;
    const char *source;
    guint format, index, threshold, count;
    guint8 archive[32], split[CABACK_CUSTODY_SPLIT_ID_LEN], custodian[32];
    CabackShare *share; /* from the last line */
} Record;

static const char *const record_keys[] = {NULL,       "format",         "index",
                                          "threshold", "count",          "archive-sha256",
                                          "split-id",  "custodian-sha256", "share"};

/* The value @v of line @line (1-based past the title) into @r; FALSE with @error set for a
 * format this caback does not read or a share line that does not decode, FALSE alone for a
 * malformed value. */
static gboolean record_value(Record *r, guint line, const char *v, gsize vlen, GError **error)
{
    switch (line) {
    case 1:
        if (!small_number_get(v, vlen, &r->format))
            return FALSE;
        if (r->format != CABACK_SHARE_FORMAT) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                        "%s is a share record of format %u; this caback reads format %u",
                        r->where, r->format, CABACK_SHARE_FORMAT);
            return FALSE;
        }
        return TRUE;
    case 2: return small_number_get(v, vlen, &r->index);
    case 3: return small_number_get(v, vlen, &r->threshold);
    case 4: return small_number_get(v, vlen, &r->count);
    case 5: return hex_get(v, vlen, r->archive, sizeof r->archive);
    case 6: return hex_get(v, vlen, r->split, sizeof r->split);
    case 7: return hex_get(v, vlen, r->custodian, sizeof r->custodian);
    default: {
        r->share = caback_share_from_text(v, vlen, r->source, error);
        if (r->share == NULL)
            return FALSE;
        /* strict: exactly as caback writes it (no other case, spacing or grouping) */
        g_autoptr(CabackSecret) canonical = caback_share_to_text(r->share);
        return canonical->len == vlen && memcmp(canonical->data, v, vlen) == 0;
    }
    }
}

/* Line @line of a record (without its newline, @n bytes at @p): the title, or "key: value". */
static gboolean record_line(Record *r, guint line, const char *p, gsize n, GError **error)
{
    if (line == 0) {
        if (n == strlen("caback share record") && memcmp(p, "caback share record", n) == 0)
            return TRUE;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s is not a caback share record (its first line is not \"caback "
                    "share record\")", r->where);
        return FALSE;
    }
    const char *key = record_keys[line];
    gsize klen = strlen(key);
    if (n < klen + 2 || memcmp(p, key, klen) != 0 || p[klen] != ':' || p[klen + 1] != ' ') {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s is not a valid share record: line %u should begin with \"%s: \"",
                    r->where, line + 1, key);
        return FALSE;
    }
    GError *value_error = NULL;
    if (record_value(r, line, p + klen + 2, n - klen - 2, &value_error))
        return TRUE;
    if (value_error != NULL) {
        g_propagate_error(error, value_error);
        return FALSE;
    }
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                "%s is not a valid share record: the value of \"%s\" (line %u) is "
                "malformed", r->where, key, line + 1);
    return FALSE;
}

CabackShare *caback_share_record_decode(const char *data, gsize len, const char *source,
                                        GError **error)
{
    Record r = {.where = source != NULL ? source : "the share record", .source = source};
    g_autoptr(CabackShare) share = NULL;
    const char *p = data, *end = data + len;
    gboolean ok = TRUE;

    for (guint line = 0; ok && line < G_N_ELEMENTS(record_keys); line++) {
        const char *nl = p < end ? memchr(p, '\n', end - p) : NULL;
        if (nl == NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                        "%s is not a caback share record: it ends before line %u (%s)", r.where,
                        line + 1, record_keys[line] != NULL ? record_keys[line] : "the title");
            ok = FALSE;
            break;
        }
        ok = record_line(&r, line, p, nl - p, error);
        p = nl + 1;
    }
    share = g_steal_pointer(&r.share);
    if (!ok)
        return NULL;
    if (p != end) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s is not a valid share record: it has text after the share line", r.where);
        return NULL;
    }
    if (share->index != r.index || share->threshold != r.threshold || share->count != r.count ||
        memcmp(share->archive_sha256, r.archive, CABACK_CUSTODY_ARCHIVE_TAG_LEN) != 0 ||
        memcmp(share->split_id, r.split, sizeof r.split) != 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_BAD_PASSWORD,
                    "%s is damaged: its share line does not agree with its other fields", r.where);
        return NULL;
    }
    memcpy(share->archive_sha256, r.archive, 32);
    share->archive_sha256_complete = TRUE;
    memcpy(share->custodian_sha256, r.custodian, 32);
    share->has_custodian = TRUE;
    return g_steal_pointer(&share);
}

/* ---- certificates and names ---- */

void caback_custody_cert_sha256(CERTCertificate *cert, guint8 out[32])
{
    if (PK11_HashBuf(SEC_OID_SHA256, out, cert->derCert.data, (PRInt32)cert->derCert.len) !=
        SECSuccess)
        g_error("SHA-256 unavailable: NSS is not open");
}

char *caback_share_file_name(const char *archive_path, guint index, guint count)
{
    return g_strdup_printf("%s.share-%u-of-%u.p7m", archive_path, index, count);
}
