/* Unit tests for the TOKEN:nickname rule (caback/nickname.h). */
#include "config.h"

#include <caback/nickname.h>

static void test_split(void)
{
    g_autofree char *token = NULL, *nick = NULL;

    g_assert_true(caback_nickname_split("HSM:caSigningCert cert-pki-ca", &token, &nick));
    g_assert_cmpstr(token, ==, "HSM");
    g_assert_cmpstr(nick, ==, "caSigningCert cert-pki-ca");
    g_clear_pointer(&token, g_free);
    g_clear_pointer(&nick, g_free);

    /* Only the first ':' separates: the nickname may hold more. */
    g_assert_true(caback_nickname_split("HSM:a:b", &token, &nick));
    g_assert_cmpstr(token, ==, "HSM");
    g_assert_cmpstr(nick, ==, "a:b");
    g_clear_pointer(&token, g_free);
    g_clear_pointer(&nick, g_free);

    /* An empty token is the internal token, as NSS and Dogtag read it. */
    g_assert_true(caback_nickname_split(":nick", &token, &nick));
    g_assert_cmpstr(token, ==, "");
    g_assert_cmpstr(nick, ==, "nick");
    g_clear_pointer(&token, g_free);
    g_clear_pointer(&nick, g_free);

    g_assert_false(caback_nickname_split("Server-Cert cert-pki-ca", &token, &nick));
    g_assert_null(token);
    g_assert_cmpstr(nick, ==, "Server-Cert cert-pki-ca");
    g_clear_pointer(&nick, g_free);

    g_assert_false(caback_nickname_split(NULL, &token, &nick));
    g_assert_null(token);
    g_assert_null(nick);
    g_assert_true(caback_nickname_split("T:n", NULL, NULL));
}

static void test_bare(void)
{
    g_assert_cmpstr(caback_nickname_bare("HSM:caSigningCert cert-pki-ca"), ==,
                    "caSigningCert cert-pki-ca");
    g_assert_cmpstr(caback_nickname_bare("HSM:a:b"), ==, "a:b");
    g_assert_cmpstr(caback_nickname_bare(":nick"), ==, "nick");
    g_assert_cmpstr(caback_nickname_bare("nick"), ==, "nick");
    g_assert_cmpstr(caback_nickname_bare("HSM:"), ==, "");
    g_assert_null(caback_nickname_bare(NULL));
}

static void test_strip_token(void)
{
    g_assert_cmpstr(caback_nickname_strip_token("NSS Certificate DB:nick", "NSS Certificate DB"), ==,
                    "nick");
    g_assert_cmpstr(caback_nickname_strip_token("HSM:nick", "HSM"), ==, "nick");
    /* Another token's prefix, or none, stays. */
    g_assert_cmpstr(caback_nickname_strip_token("HSM:nick", "NSS Certificate DB"), ==,
                    "HSM:nick");
    g_assert_cmpstr(caback_nickname_strip_token("nick", "HSM"), ==, "nick");
    g_assert_cmpstr(caback_nickname_strip_token("HSMX:nick", "HSM"), ==, "HSMX:nick");
    g_assert_cmpstr(caback_nickname_strip_token("HSM", "HSM"), ==, "HSM");
    /* A token's name may hold ':' itself: its whole name is the prefix. */
    g_assert_cmpstr(caback_nickname_strip_token("a:b:nick", "a:b"), ==, "nick");
    /* Nothing after the prefix: no nickname to strip to. */
    g_assert_cmpstr(caback_nickname_strip_token("HSM:", "HSM"), ==, "HSM:");
    g_assert_cmpstr(caback_nickname_strip_token("HSM:nick", ""), ==, "HSM:nick");
    g_assert_cmpstr(caback_nickname_strip_token("HSM:nick", NULL), ==, "HSM:nick");
    g_assert_null(caback_nickname_strip_token(NULL, "HSM"));
}

static void test_on_token(void)
{
    g_autofree char *internal = caback_nickname_on_token("nick", "NSS Certificate DB", TRUE);
    g_autofree char *other = caback_nickname_on_token("nick", "HSM", FALSE);

    g_assert_cmpstr(internal, ==, "nick");
    g_assert_cmpstr(other, ==, "HSM:nick");

    /* What on_token writes, split reads back. */
    g_autofree char *token = NULL, *nick = NULL;
    g_assert_true(caback_nickname_split(other, &token, &nick));
    g_assert_cmpstr(token, ==, "HSM");
    g_assert_cmpstr(nick, ==, "nick");
    g_assert_cmpstr(caback_nickname_strip_token(other, "HSM"), ==, "nick");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/nickname/split", test_split);
    g_test_add_func("/nickname/bare", test_bare);
    g_test_add_func("/nickname/strip-token", test_strip_token);
    g_test_add_func("/nickname/on-token", test_on_token);
    return g_test_run();
}
