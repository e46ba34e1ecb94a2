/* caback list FILE: what a PKCS#12 file holds, without touching any NSS database. The reading is
 * caback_list_run and the JSON caback_list_json_members (src/lib/list-run.c); this file turns the
 * options into that call and prints the text. */
#include "config.h"

#include "cli-log.h"
#include "cli.h"

#include <caback/list.h>

#include <string.h>

static char *time_text(GDateTime *t)
{
    return t != NULL ? g_date_time_format(t, "%Y-%m-%d %H:%M:%S UTC") : g_strdup("?");
}

/* "\"NAME\"", or "(no friendlyName)". */
static char *bag_title(const CabackP12Attributes *attrs)
{
    return attrs->friendly_name != NULL ? g_strdup_printf("\"%s\"", attrs->friendly_name)
                                        : g_strdup("(no friendlyName)");
}

static void print_name_problem(const CabackP12Attributes *attrs)
{
    g_autofree char *problem = caback_list_name_problem(attrs);

    if (problem != NULL)
        g_print("  Name:         %s\n", problem);
}

static void print_file(const CabackRestorePlan *plan, const CabackP12Info *info)
{
    g_print("PKCS#12 file %s\n", plan->path);
    if (info->mac == NULL)
        g_print("  integrity: none (NOT AUTHENTICATED: no MAC, so anyone could have made this "
                "file; restore and verify refuse it without --allow-unauthenticated)\n");
    else
        g_print("  integrity: %s\n", caback_p12_integrity(info));
    g_print("  MAC:          %s\n",
            info->mac != NULL ? info->mac : "none (the file's integrity is not protected)");
    for (guint i = 0; i < info->safes->len; i++)
        g_print("  Safe %u:       %s\n", i + 1, (const char *)info->safes->pdata[i]);
    for (guint i = 0; i < info->warnings->len; i++)
        g_print("  Warning:      %s\n", (const char *)info->warnings->pdata[i]);
    g_print("  Holds %u certificate(s), %u key(s), %u CRL(s)\n", plan->certs->len, plan->keys->len,
            plan->crls->len);
    /* A caback backup --certs-only file (keys that cannot leave an HSM) must never pass for a
     * full backup. */
    if (plan->keys->len == 0 && plan->certs->len > 0)
        g_print("  This file holds no private keys: certificates and trust flags only (as caback "
                "backup --certs-only writes); the keys must come from another backup\n");
}

static void print_cert(const CabackRestorePlan *plan, guint i, const CabackRestoreCert *c)
{
    g_autofree char *title = bag_title(&c->bag->attrs);
    g_autofree char *nb = time_text(c->not_before);
    g_autofree char *na = time_text(c->not_after);
    g_autofree char *lkid = caback_list_local_key_id(&c->bag->attrs);
    g_autofree char *fingerprint = caback_restore_cert_fingerprint(c);

    g_print("\nCertificate %u: %s\n", i + 1, title);
    print_name_problem(&c->bag->attrs);
    g_print("  Subject:      %s\n", c->subject);
    g_print("  Issuer:       %s\n", c->issuer);
    g_print("  Serial:       %s (0x%s)\n", c->serial_decimal, c->serial_hex);
    g_print("  Valid:        %s to %s\n", nb, na);
    g_print("  SHA-256:      %s\n", fingerprint != NULL ? fingerprint : "?");
    g_print("  CA:           %s%s\n", c->is_ca ? "yes" : "no",
            c->self_signed ? " (self-signed)" : "");
    if (c->weak != CABACK_WEAK_KEY_NONE)
        g_print("  Weak key:     %s\n", c->weak_reason);
    g_print("  Trust flags:  %s\n",
            c->bag->attrs.trust_flags != NULL ? c->bag->attrs.trust_flags : "(none in the file)");
    if (c->key_index >= 0) {
        const CabackRestoreKey *k = plan->keys->pdata[c->key_index];
        if (k->cert_index == (gint)c->index)
            g_print("  Key in file:  yes, key %d (paired by %s)\n", c->key_index + 1, k->pairing);
        else
            g_print("  Key in file:  yes, key %d (the same key as certificate %d's)\n",
                    c->key_index + 1, k->cert_index + 1);
    } else {
        g_print("  Key in file:  no\n");
    }
    g_print("  localKeyID:   %s\n", lkid != NULL ? lkid : "(none)");
    if (c->bag->protection != NULL)
        g_print("  Protection:   %s\n", c->bag->protection);
}

static void print_key_type(const CabackRestoreKey *k)
{
    const char *foreign = NULL, *foreign_type = NULL;

    if (k->type == nullKey &&
        caback_p12_key_algorithm(k->bag->algorithm_oid, &foreign, &foreign_type))
        g_print("  Type:         %s, not importable by NSS (algorithm OID %s)\n", foreign,
                k->bag->algorithm_oid);
    else if (k->type == nullKey)
        g_print("  Type:         not importable by NSS (algorithm OID %s)\n",
                k->bag->algorithm_oid != NULL ? k->bag->algorithm_oid : "unknown");
    else if (k->bits > 0)
        g_print("  Type:         %s %u bits\n", k->type_name, k->bits);
    else
        g_print("  Type:         %s\n", k->type_name);
}

static void print_key(guint i, const CabackRestoreKey *k)
{
    g_autofree char *title = bag_title(&k->bag->attrs);
    g_autofree char *lkid = caback_list_local_key_id(&k->bag->attrs);
    g_autofree char *nss_id = k->id_known ? caback_keyid_to_nss(&k->id) : NULL;
    g_autofree char *dogtag_id = k->id_known ? caback_keyid_to_dogtag(&k->id) : NULL;

    g_print("\nKey %u: %s\n", i + 1, title);
    print_name_problem(&k->bag->attrs);
    print_key_type(k);
    if (k->weak != CABACK_WEAK_KEY_NONE)
        g_print("  Weak key:     %s\n", k->weak_reason);
    g_print("  Key ID:       %s (NSS, as certutil -K prints it)\n",
            nss_id != NULL ? nss_id : "(unknown)");
    g_print("  CS.cfg form:  %s (Dogtag, cloning.<tag>.privkey.id)\n",
            dogtag_id != NULL ? dogtag_id : "(unknown)");
    if (k->cert_index >= 0)
        g_print("  Certificate:  %d\n", k->cert_index + 1);
    else
        g_print("  Certificate:  none in the file\n");
    g_print("  localKeyID:   %s\n", lkid != NULL ? lkid : "(none)");
    g_print("  Protection:   %s\n", k->bag->protection != NULL
                                        ? k->bag->protection
                                        : (k->bag->shrouded ? "shrouded" : "none (plain key bag)"));
    if (k->problem != NULL)
        g_print("  Problem:      %s\n", k->problem);
}

static void print_text(const CabackRestorePlan *plan, const CabackP12Info *info)
{
    print_file(plan, info);
    for (guint i = 0; i < plan->certs->len; i++)
        print_cert(plan, i, plan->certs->pdata[i]);
    for (guint i = 0; i < plan->keys->len; i++)
        print_key(i, plan->keys->pdata[i]);
    for (guint i = 0; i < plan->crls->len; i++) {
        const CabackP12Crl *crl = plan->crls->pdata[i];
        g_print("\nCRL %u: %s (%" G_GSIZE_FORMAT " bytes; not restored)\n", i + 1,
                crl->attrs.friendly_name != NULL ? crl->attrs.friendly_name : "(no friendlyName)",
                g_bytes_get_size(crl->der));
    }
}

static void on_read_failed(const char *path, GError **error, gpointer data)
{
    (void)data;
    caback_cli_explain_p12_failure(path, NULL, NULL, error);
}

typedef struct {
    const CabackRestorePlan *plan;
    const CabackP12Info *info;
} Listed;

static void json_members(CabackJson *json, gconstpointer data)
{
    const Listed *listed = data;

    caback_list_json_members(json, listed->plan, listed->info);
}

static void on_listed(const CabackRestorePlan *plan, const CabackP12Info *info, gpointer data)
{
    const CabackCommonOptions *common = data;

    if (common->json) {
        /* Streamed: nothing fails after a file is listed. */
        Listed listed = {plan, info};
        caback_cli_json_stream_result("list", NULL, json_members, &listed, FALSE);
    } else {
        print_text(plan, info);
    }
}

/* The options of caback list: one table for the parser and the help. */
static GOptionContext *list_context(char **in, CabackCliP12Password *p12, CabackCliShares *shares,
                                    CabackCommonOptions *common)
{
    const GOptionEntry entries[] = {
        {"in", 'i', 0, G_OPTION_ARG_FILENAME, in,
         "The PKCS#12 file (as restore -i and pk12util -i take it; or give FILE as the argument)",
         "FILE"},
        CABACK_CLI_P12_PASSWORD_READ_ENTRIES(p12),
        {NULL}};
    GOptionContext *context = g_option_context_new("FILE");

    g_option_context_set_summary(
        context,
        "Show what a PKCS#12 file holds, without touching any NSS database: for each "
        "certificate its\n"
        "friendly name, subject, issuer, serial, validity, SHA-256 fingerprint, trust flags "
        "(Dogtag attribute),\n"
        "whether its key is in the file, and its localKeyID; for each key its type and size, "
        "its key ID as\n"
        "certutil -K prints it and in the CS.cfg form Dogtag uses; and how the file is "
        "protected (algorithms,\n"
        "iteration counts, MAC).");
    g_option_context_set_description(
        context, "Without -w or --p12-password-env, a file made without a password opens "
                 "directly; otherwise the\n"
                 "password is asked once on the terminal. A wrong password exits with status "
                 "3.\n"
                 "A backup under M-of-N custody (backup --split) opens with M of its "
                 "custodians' shares: --share FILE\n"
                 "for each (a text share, or a .p7m share with -d DIR holding its key), or "
                 "--shares-prompt; too few,\n"
                 "mistyped or foreign shares exit with status 3 before anything is derived.\n"
                 "Example:\n"
                 "  caback list ca-backup.p12 -w ca-backup.pass --json\n"
                 "  caback list ca.p12 --share alice.share --share bob.share --share carol.share\n");
    g_option_context_add_main_entries(context, entries, NULL);
    caback_cli_add_share_options(context, shares);
    /* -d and its password: only for .p7m shares, which the keys there open. */
    caback_cli_add_common(context, common,
                          CABACK_COMMON_DB | CABACK_COMMON_JSON | CABACK_COMMON_LIMITS);
    return context;
}

/* The one file to list, from -i or the argument. */
static const char *file_argument(const char *in, int argc, char **argv, GError **error)
{
    if (in != NULL && argc > 1) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "give the PKCS#12 file once: -i %s or the argument \"%s\", not both", in,
                    argv[1]);
        return NULL;
    }
    if (in == NULL && argc < 2) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "which PKCS#12 file? usage: caback list FILE [-w FILE] [--json]");
        return NULL;
    }
    if (argc > 2) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "give one PKCS#12 file (unexpected argument \"%s\"); usage: caback list "
                    "FILE [-w FILE] [--json]",
                    argv[2]);
        return NULL;
    }
    return in != NULL ? in : argv[1];
}

gboolean caback_cmd_list(int argc, char **argv, GError **error)
{
    CabackCommonOptions common = {0};
    CabackCliP12Password p12 = {0};
    CabackCliShares shares = {0};
    g_autoptr(CabackSecret) given = NULL;
    g_autofree char *in = NULL;
    g_autoptr(GOptionContext) context = list_context(&in, &p12, &shares, &common);
    CabackListHooks hooks = {on_read_failed, on_listed, &common};
    CabackListOptions options = {0};
    const char *path = NULL;
    gboolean ok = FALSE;

    if (!caback_cli_parse(context, "list", &common, &argc, &argv, error) ||
        (path = file_argument(in, argc, argv, error)) == NULL ||
        !caback_cli_p12_password_check(&p12, error))
        goto out;
    if (caback_cli_p12_password_option(&p12) != NULL) {
        if (!caback_cli_shares_exclusive(&shares, "list", caback_cli_p12_password_option(&p12),
                                         error))
            goto out;
    } else if (caback_cli_shares_given(&shares)) {
        given = caback_cli_shares_password(&common, path, &shares, NULL, error);
        if (given == NULL)
            goto out;
    }
    options.path = path;
    options.password = given;
    options.password_source = (CabackPasswordSource){.file = p12.file, .env_var = p12.env};
    ok = caback_list_run(&options, &hooks, error);
out:
    caback_cli_p12_password_clear(&p12);
    caback_cli_shares_clear(&shares);
    caback_cli_common_clear(&common);
    return ok;
}
