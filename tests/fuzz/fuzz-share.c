/* Fuzz target for what caback reads of a share (include/caback/custody.h): a share file is hostile
 * input to restore, verify and share-open. The same bytes go to the three readers:
 *   - the text form (caback_share_from_text): refused with CABACK_ERROR_BAD_PASSWORD, or a share
 *     whose text form, written again, reads back to the same share;
 *   - the record (caback_share_record_decode): refused with CABACK_ERROR_BAD_PASSWORD, or a share
 *     whose record, written again, is byte for byte the input (the record is strict);
 *   - the CMS envelope (caback_share_envelope_open), in an NSS without keys: every input is refused
 *     (CABACK_ERROR_BAD_PASSWORD for what is not a share envelope, CABACK_ERROR_NOT_FOUND naming
 *     the recipients for one that is), never opened.
 * NSS is initialised once without a database; it must shut down cleanly at the end. */
#include "config.h"

#include "fuzz.h"

#include <caback/custody.h>
#include <caback/error.h>

#include <nss.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (NSS_NoDB_Init(NULL) != SECSuccess) {
        fprintf(stderr, "fuzz-share: NSS_NoDB_Init failed\n");
        abort();
    }
    return 0;
}

void fuzz_cleanup(void)
{
    FUZZ_CHECK(NSS_Shutdown() == SECSuccess);
}

static void check_refusal(GError *error, CabackErrorCode code)
{
    FUZZ_CHECK(error != NULL && error->domain == CABACK_ERROR && (int)error->code == (int)code);
    FUZZ_CHECK(g_utf8_validate(error->message, -1, NULL));
}

static gboolean same_share(const CabackShare *a, const CabackShare *b)
{
    return a->index == b->index && a->threshold == b->threshold && a->count == b->count &&
           memcmp(a->split_id, b->split_id, sizeof a->split_id) == 0 &&
           memcmp(a->archive_sha256, b->archive_sha256, CABACK_CUSTODY_ARCHIVE_TAG_LEN) == 0 &&
           a->value->len == b->value->len &&
           memcmp(a->value->data, b->value->data, a->value->len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *error = NULL;

    /* the text form */
    CabackShare *text = caback_share_from_text((const char *)data, size, "input", &error);
    if (text == NULL) {
        check_refusal(error, CABACK_ERROR_BAD_PASSWORD);
        g_clear_error(&error);
    } else {
        FUZZ_CHECK(text->index >= 1 && text->index <= text->count &&
                   text->threshold >= 1 && text->threshold <= text->count);
        CabackSecret *again = caback_share_to_text(text);
        CabackShare *back = caback_share_from_text(again->data, again->len, "again", &error);
        FUZZ_CHECK(back != NULL && same_share(text, back));
        caback_share_free(back);
        caback_secret_free(again);
        caback_share_free(text);
    }

    /* the record */
    CabackShare *record = caback_share_record_decode((const char *)data, size, "input", &error);
    if (record == NULL) {
        check_refusal(error, CABACK_ERROR_BAD_PASSWORD);
        g_clear_error(&error);
    } else {
        FUZZ_CHECK(record->has_custodian && record->archive_sha256_complete);
        CabackSecret *again = caback_share_record_encode(record);
        FUZZ_CHECK(again->len == size && memcmp(again->data, data, size) == 0);
        caback_secret_free(again);
        caback_share_free(record);
    }

    /* the envelope: no key here, so never opened */
    GBytes *der = g_bytes_new(data, size);
    CabackShare *opened = caback_share_envelope_open(der, "input", NULL, NULL, &error);
    FUZZ_CHECK(opened == NULL && error != NULL && error->domain == CABACK_ERROR &&
               (error->code == CABACK_ERROR_BAD_PASSWORD || error->code == CABACK_ERROR_NOT_FOUND));
    FUZZ_CHECK(g_utf8_validate(error->message, -1, NULL));
    g_clear_error(&error);
    g_bytes_unref(der);
    return 0;
}
