/* Fuzz target for the key-ID parser (what "caback keyid" and CS.cfg values go through). Any bytes,
 * taken up to the first NUL as the command line would pass them, must either be refused with a
 * CABACK_ERROR_USAGE error whose message is valid UTF-8, or give an ID whose every printed form
 * (NSS, 0x, Dogtag) parses back to the same ID. The raw bytes are also taken as a CKA_ID. */
#include "config.h"

#include "fuzz.h"

#include <caback/error.h>
#include <caback/keyid.h>

#include <string.h>

static void check_round_trip(const CabackKeyId *id, char *text)
{
    CabackKeyId again;
    GError *error = NULL;

    FUZZ_CHECK(text != NULL);
    if (!caback_keyid_parse(text, &again, &error)) {
        fprintf(stderr, "printed form \"%s\" does not parse: %s\n", text, error->message);
        abort();
    }
    FUZZ_CHECK(caback_keyid_equal(id, &again));
    g_free(text);
}

static void check_parse(const char *text)
{
    CabackKeyId id;
    GError *error = NULL;

    memset(&id, 0xa5, sizeof id);
    if (!caback_keyid_parse(text, &id, &error)) {
        FUZZ_CHECK(error != NULL);
        FUZZ_CHECK(error->domain == CABACK_ERROR && error->code == CABACK_ERROR_USAGE);
        FUZZ_CHECK(error->message != NULL && *error->message != '\0');
        /* The message reaches the terminal and the JSON log: never raw bytes of the input. */
        FUZZ_CHECK(g_utf8_validate(error->message, -1, NULL));
        g_error_free(error);
        return;
    }
    FUZZ_CHECK(error == NULL);

    char *nss = caback_keyid_to_nss(&id);
    FUZZ_CHECK(strlen(nss) == 2 * CABACK_KEYID_LEN);
    check_round_trip(&id, nss);
    check_round_trip(&id, caback_keyid_to_0x(&id));
    check_round_trip(&id, caback_keyid_to_dogtag(&id));
    (void)caback_keyid_dogtag_legacy_problem(&id);
}

static void check_bytes(const uint8_t *data, size_t size)
{
    CabackKeyId id;
    GError *error = NULL;

    /* Dogtag's form of a CKA_ID of any length must be one that the parser reads back when it
     * fits 20 bytes. */
    char *dogtag = caback_keyid_bytes_to_dogtag(data, size);
    FUZZ_CHECK(dogtag != NULL && *dogtag != '\0');
    if (!caback_keyid_from_bytes(data, size, &id, &error)) {
        FUZZ_CHECK(size > CABACK_KEYID_LEN);
        g_error_free(error);
        g_free(dogtag);
        return;
    }
    FUZZ_CHECK(size <= CABACK_KEYID_LEN);
    if (size == CABACK_KEYID_LEN) {
        char *full = caback_keyid_to_dogtag(&id);
        FUZZ_CHECK(strcmp(full, dogtag) == 0);
        g_free(full);
        check_round_trip(&id, g_strdup(dogtag));
    }
    g_free(dogtag);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = g_strndup((const char *)data, size);

    check_parse(text);
    g_free(text);
    check_bytes(data, size);
    return 0;
}
