/* Unit tests for PKCS#11 URI (RFC 7512) token selection: which attributes select a token, percent
 * decoding, and the refusals. */
#include "config.h"

#include <caback/db.h>
#include <caback/error.h>

#include <string.h>

static void test_token_only(void)
{
    CabackTokenUri uri;
    g_autoptr(GError) error = NULL;

    g_assert_true(caback_token_uri_parse("pkcs11:token=caback-hsm", &uri, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(uri.token, ==, "caback-hsm");
    g_assert_null(uri.manufacturer);
    g_assert_null(uri.serial);
    g_assert_null(uri.model);
    caback_token_uri_clear(&uri);
}

static void test_all_attributes_and_decoding(void)
{
    CabackTokenUri uri;
    g_autoptr(GError) error = NULL;

    g_assert_true(caback_token_uri_parse(
        "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=4711;token=My%3bHSM%25",
        &uri, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(uri.token, ==, "My;HSM%");
    g_assert_cmpstr(uri.manufacturer, ==, "SoftHSM project");
    g_assert_cmpstr(uri.serial, ==, "4711");
    g_assert_cmpstr(uri.model, ==, "SoftHSM v2");
    caback_token_uri_clear(&uri);

    /* The scheme is case-insensitive; an empty value is a value. */
    g_assert_true(caback_token_uri_parse("PKCS11:serial=", &uri, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(uri.serial, ==, "");
    caback_token_uri_clear(&uri);
}

static void expect_refused(const char *text, const char *words)
{
    CabackTokenUri uri;
    g_autoptr(GError) error = NULL;

    g_assert_false(caback_token_uri_parse(text, &uri, &error));
    g_assert_error(error, CABACK_ERROR, CABACK_ERROR_USAGE);
    if (strstr(error->message, words) == NULL)
        g_error("message for %s lacks \"%s\": %s", text, words, error->message);
    g_assert_null(uri.token);
    g_assert_null(uri.serial);
}

static void test_refusals(void)
{
    expect_refused("token=x", "not a PKCS#11 URI");
    expect_refused("pkcs11:", "names no token");
    expect_refused("pkcs11:token=a;object=key", "\"object\" does not select a token");
    expect_refused("pkcs11:token=a;slot-id=3", "\"slot-id\" does not select a token");
    expect_refused("pkcs11:token=a;colour=blue", "\"colour\" is not known");
    expect_refused("pkcs11:token=a?pin-value=1234", "query part");
    expect_refused("pkcs11:token=a;token=b", "twice");
    expect_refused("pkcs11:token", "not an attribute=value pair");
    expect_refused("pkcs11:token=a%2", "bad percent escape");
    expect_refused("pkcs11:token=a%zz", "bad percent escape");
    expect_refused("pkcs11:token=a%00b", "bad percent escape");
    expect_refused("pkcs11:serial=1;token=%", "bad percent escape");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/token-uri/token-only", test_token_only);
    g_test_add_func("/token-uri/all-attributes", test_all_attributes_and_decoding);
    g_test_add_func("/token-uri/refusals", test_refusals);
    return g_test_run();
}
