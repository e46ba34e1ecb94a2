/* Fuzz target for the PKCS#12 reader: what "caback list" and "caback restore" parse from a file
 * that may be damaged or hostile. Any bytes, read with a fixed password, must either be refused
 * with a CABACK_ERROR_PKCS12 or CABACK_ERROR_BAD_PASSWORD error, or give a file whose bags can
 * all be walked and whose keys can be described (decrypted into a session object of NSS's
 * internal slot and dropped, as list does). The password never appears in an error message, a
 * warning or a description. NSS is initialised once, without a database; when the replay driver
 * ends, NSS must shut down cleanly (no leaked NSS reference). */
#include "config.h"

#include "fuzz.h"

#include <caback/error.h>
#include <caback/p12.h>

#include <nss.h>
#include <pk11pub.h>
#include <string.h>

/* The password of the seed files in tests/fuzz/corpus/p12/. */
#define FUZZ_P12_PASSWORD "fuzz-p12-Pass"

static CabackSecret *password;
static PK11SlotInfo *slot;
static gboolean verbose; /* FUZZ_VERBOSE set: say what each input gave (for corpus upkeep) */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Left initialised for the whole run: the fuzzer never returns from its loop. */
    if (NSS_NoDB_Init(NULL) != SECSuccess) {
        fprintf(stderr, "fuzz-p12: NSS_NoDB_Init failed\n");
        abort();
    }
    slot = PK11_GetInternalSlot();
    FUZZ_CHECK(slot != NULL);
    password = caback_secret_new(FUZZ_P12_PASSWORD, strlen(FUZZ_P12_PASSWORD));
    verbose = g_getenv("FUZZ_VERBOSE") != NULL;
    return 0;
}

void fuzz_cleanup(void)
{
    g_clear_pointer(&slot, PK11_FreeSlot);
    g_clear_pointer(&password, caback_secret_free);
    /* A busy shutdown means the reader leaked an NSS reference: a finding like a crash. */
    FUZZ_CHECK(NSS_Shutdown() == SECSuccess);
}

static void check_text(const char *text)
{
    if (text == NULL)
        return;
    FUZZ_CHECK(strstr(text, FUZZ_P12_PASSWORD) == NULL);
}

static void check_attrs(const CabackP12Attributes *a)
{
    check_text(a->friendly_name);
    check_text(a->trust_flags);
    if (a->friendly_name != NULL)
        FUZZ_CHECK(g_utf8_validate(a->friendly_name, -1, NULL));
    if (a->local_key_id != NULL)
        (void)g_bytes_get_size(a->local_key_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *error = NULL;
    CabackP12File *file = caback_p12_read(data, size, password, "fuzz.p12", &error);

    if (file == NULL) {
        FUZZ_CHECK(error != NULL && error->domain == CABACK_ERROR);
        FUZZ_CHECK(error->code == CABACK_ERROR_PKCS12 || error->code == CABACK_ERROR_BAD_PASSWORD);
        FUZZ_CHECK(error->message != NULL && *error->message != '\0');
        check_text(error->message);
        if (verbose)
            fprintf(stderr, "  refused: %s\n", error->message);
        g_error_free(error);
        return 0;
    }
    FUZZ_CHECK(error == NULL);

    const CabackP12Info *info = caback_p12_file_info(file);
    FUZZ_CHECK(info != NULL && info->safes != NULL && info->warnings != NULL);
    check_text(info->mac);
    FUZZ_CHECK((info->mac == NULL) == (info->mac_iterations == 0));
    for (guint i = 0; i < info->safes->len; i++)
        check_text(info->safes->pdata[i]);
    for (guint i = 0; i < info->warnings->len; i++)
        check_text(info->warnings->pdata[i]);

    GPtrArray *certs = caback_p12_file_certs(file);
    for (guint i = 0; i < certs->len; i++) {
        const CabackP12Cert *c = certs->pdata[i];
        check_attrs(&c->attrs);
        FUZZ_CHECK(c->der != NULL);
        check_text(c->protection);
    }
    GPtrArray *crls = caback_p12_file_crls(file);
    for (guint i = 0; i < crls->len; i++) {
        const CabackP12Crl *c = crls->pdata[i];
        check_attrs(&c->attrs);
        FUZZ_CHECK(c->der != NULL);
    }
    GPtrArray *keys = caback_p12_file_keys(file);
    if (verbose)
        fprintf(stderr, "  read: %u certificates, %u keys, %u CRLs, MAC %s, %u warnings\n",
                certs->len, keys->len, crls->len, info->mac != NULL ? info->mac : "none",
                info->warnings->len);
    for (guint i = 0; i < keys->len; i++) {
        CabackP12Key *k = keys->pdata[i];
        KeyType type = nullKey;
        guint bits = 0;

        check_attrs(&k->attrs);
        check_text(k->protection);
        if (caback_p12_key_describe(file, k, slot, &type, &bits, &error)) {
            FUZZ_CHECK(error == NULL);
            if (verbose)
                fprintf(stderr, "  key %u: type %d, %u bits, %s\n", i, (int)type, bits,
                        k->algorithm_oid != NULL ? k->algorithm_oid : "?");
            check_text(k->algorithm_oid);
        } else {
            FUZZ_CHECK(error != NULL && error->domain == CABACK_ERROR);
            check_text(error->message);
            if (verbose)
                fprintf(stderr, "  key %u not described: %s\n", i, error->message);
            g_clear_error(&error);
        }
    }
    caback_p12_file_free(file);
    return 0;
}
