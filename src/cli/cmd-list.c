/* caback list FILE: what a PKCS#12 file holds, without touching any NSS database. NSS runs
 * without databases; keys are decrypted into session objects of its internal slot only to learn
 * their type, size and public key (for the key ID), and are gone when the command ends. */
#include "config.h"

#include "cli-log.h"
#include "cli.h"

#include <caback/json.h>
#include <caback/names.h>
#include <caback/nss-util.h>
#include <caback/restore.h>

#include <string.h>

static char *time_text(GDateTime *t)
{
    return t != NULL ? g_date_time_format(t, "%Y-%m-%d %H:%M:%S UTC") : g_strdup("?");
}

static char *time_iso(GDateTime *t)
{
    return t != NULL ? g_date_time_format(t, "%Y-%m-%dT%H:%M:%SZ") : NULL;
}

static char *hex_of(GBytes *bytes)
{
    if (bytes == NULL)
        return NULL;
    gsize len;
    const guint8 *data = g_bytes_get_data(bytes, &len);
    GString *s = g_string_sized_new(2 * len + 1);
    for (gsize i = 0; i < len; i++)
        g_string_append_printf(s, "%02x", data[i]);
    return g_string_free(s, FALSE);
}

/* The iteration count at the end of a codec description ("..., 600000 iterations"), or -1. */
static gint64 iterations_in(const char *description)
{
    if (description == NULL)
        return -1;
    const char *p = strstr(description, " iterations");
    if (p == NULL)
        return -1;
    const char *start = p;
    while (start > description && g_ascii_isdigit(start[-1]))
        start--;
    if (start == p)
        return -1;
    return g_ascii_strtoll(start, NULL, 10);
}

/* What is wrong with a bag's friendlyName and what restore does with it, or NULL when nothing
 * is (names.h). Caller frees. */
static char *name_problem(const CabackP12Attributes *attrs)
{
    if (attrs->friendly_name == NULL || attrs->friendly_name_flaws == 0)
        return NULL;
    g_autofree char *flaws = caback_name_flaws_text(attrs->friendly_name_flaws);
    return g_strdup_printf("holds %s (shown escaped); restore uses it as a nickname only with "
                           "--rename, cleaned to \"%s\"",
                           flaws, attrs->friendly_name_clean);
}

static void print_text(const CabackRestorePlan *plan, const CabackP12Info *info)
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

    for (guint i = 0; i < plan->certs->len; i++) {
        const CabackRestoreCert *c = plan->certs->pdata[i];
        g_autofree char *nb = time_text(c->not_before);
        g_autofree char *na = time_text(c->not_after);
        g_autofree char *lkid = hex_of(c->bag->attrs.local_key_id);
        g_print("\nCertificate %u: %s%s%s\n", i + 1, c->bag->attrs.friendly_name ? "\"" : "",
                c->bag->attrs.friendly_name ? c->bag->attrs.friendly_name : "(no friendlyName)",
                c->bag->attrs.friendly_name ? "\"" : "");
        g_autofree char *problem = name_problem(&c->bag->attrs);
        if (problem != NULL)
            g_print("  Name:         %s\n", problem);
        g_print("  Subject:      %s\n", c->subject);
        g_print("  Issuer:       %s\n", c->issuer);
        g_print("  Serial:       %s (0x%s)\n", c->serial_decimal, c->serial_hex);
        g_print("  Valid:        %s to %s\n", nb, na);
        g_print("  SHA-256:      %s\n", c->sha256 != NULL ? c->sha256 : "?");
        g_print("  CA:           %s%s\n", c->is_ca ? "yes" : "no",
                c->self_signed ? " (self-signed)" : "");
        if (c->weak != CABACK_WEAK_KEY_NONE)
            g_print("  Weak key:     %s\n", c->weak_reason);
        g_print("  Trust flags:  %s\n", c->bag->attrs.trust_flags != NULL
                                            ? c->bag->attrs.trust_flags
                                            : "(none in the file)");
        if (c->key_index >= 0) {
            const CabackRestoreKey *k = plan->keys->pdata[c->key_index];
            if (k->cert_index == (gint)c->index)
                g_print("  Key in file:  yes, key %d (paired by %s)\n", c->key_index + 1,
                        k->pairing);
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

    for (guint i = 0; i < plan->keys->len; i++) {
        const CabackRestoreKey *k = plan->keys->pdata[i];
        g_autofree char *lkid = hex_of(k->bag->attrs.local_key_id);
        g_print("\nKey %u: %s%s%s\n", i + 1, k->bag->attrs.friendly_name ? "\"" : "",
                k->bag->attrs.friendly_name ? k->bag->attrs.friendly_name : "(no friendlyName)",
                k->bag->attrs.friendly_name ? "\"" : "");
        g_autofree char *problem = name_problem(&k->bag->attrs);
        if (problem != NULL)
            g_print("  Name:         %s\n", problem);
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
        if (k->weak != CABACK_WEAK_KEY_NONE)
            g_print("  Weak key:     %s\n", k->weak_reason);
        g_print("  Key ID:       %s (NSS, as certutil -K prints it)\n",
                k->nss_id != NULL ? k->nss_id : "(unknown)");
        g_print("  CS.cfg form:  %s (Dogtag, cloning.<tag>.privkey.id)\n",
                k->dogtag_id != NULL ? k->dogtag_id : "(unknown)");
        if (k->cert_index >= 0)
            g_print("  Certificate:  %d\n", k->cert_index + 1);
        else
            g_print("  Certificate:  none in the file\n");
        g_print("  localKeyID:   %s\n", lkid != NULL ? lkid : "(none)");
        g_print("  Protection:   %s\n",
                k->bag->protection != NULL
                    ? k->bag->protection
                    : (k->bag->shrouded ? "shrouded" : "none (plain key bag)"));
        if (k->problem != NULL)
            g_print("  Problem:      %s\n", k->problem);
    }

    for (guint i = 0; i < plan->crls->len; i++) {
        const CabackP12Crl *crl = plan->crls->pdata[i];
        g_print("\nCRL %u: %s (%" G_GSIZE_FORMAT " bytes; not restored)\n", i + 1,
                crl->attrs.friendly_name != NULL ? crl->attrs.friendly_name : "(no friendlyName)",
                g_bytes_get_size(crl->der));
    }
}

static void print_json(const CabackRestorePlan *plan, const CabackP12Info *info)
{
    g_autoptr(CabackJson) json = caback_cli_json_object_new();

    caback_json_string(json, "integrity", caback_p12_integrity(info));
    caback_json_begin_object(json, "file");
    caback_json_string(json, "path", plan->path);
    caback_json_string(json, "integrity", caback_p12_integrity(info));
    caback_json_string(json, "mac", info->mac);
    caback_json_int_or_null(json, "mac_iterations", info->mac != NULL, info->mac_iterations);
    caback_json_begin_array(json, "safes");
    for (guint i = 0; i < info->safes->len; i++) {
        const char *d = info->safes->pdata[i];
        gint64 it = iterations_in(d);
        caback_json_begin_object(json, NULL);
        caback_json_string(json, "protection", d);
        caback_json_int_or_null(json, "iterations", it >= 0, it);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
    caback_json_strings(json, "warnings", info->warnings);
    caback_json_end_object(json);

    caback_json_begin_array(json, "certificates");
    for (guint i = 0; i < plan->certs->len; i++) {
        const CabackRestoreCert *c = plan->certs->pdata[i];
        g_autofree char *nb = time_iso(c->not_before);
        g_autofree char *na = time_iso(c->not_after);
        g_autofree char *lkid = hex_of(c->bag->attrs.local_key_id);
        gint64 it = iterations_in(c->bag->protection);
        caback_json_begin_object(json, NULL);
        caback_json_int(json, "index", i);
        caback_json_string(json, "friendly_name", c->bag->attrs.friendly_name);
        g_autofree char *problem = name_problem(&c->bag->attrs);
        caback_json_string(json, "friendly_name_problem", problem);
        caback_json_string(json, "subject", c->subject);
        caback_json_string(json, "issuer", c->issuer);
        caback_json_string(json, "serial", c->serial_decimal);
        caback_json_string(json, "serial_hex", c->serial_hex);
        caback_json_string(json, "not_before", nb);
        caback_json_string(json, "not_after", na);
        caback_json_string(json, "sha256_fingerprint", c->sha256);
        caback_json_bool(json, "ca", c->is_ca);
        caback_json_bool(json, "self_signed", c->self_signed);
        caback_cli_json_weak_key(json, c->weak, c->weak_reason);
        caback_json_string(json, "trust_flags", c->bag->attrs.trust_flags);
        /* the same flags as certutil -L shows them once restored with the key */
        g_autofree char *trust =
            caback_restore_trust_as_certutil(c->bag->attrs.trust_flags, c->key_index >= 0);
        caback_json_string(json, "trust", trust);
        caback_json_string(json, "nickname", c->bag->attrs.friendly_name);
        caback_json_bool(json, "key_in_file", c->key_index >= 0);
        caback_json_int_or_null(json, "key_index", c->key_index >= 0, c->key_index);
        caback_json_string(json, "local_key_id", lkid);
        caback_json_string(json, "protection", c->bag->protection);
        caback_json_int_or_null(json, "iterations", it >= 0, it);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);

    caback_json_begin_array(json, "keys");
    for (guint i = 0; i < plan->keys->len; i++) {
        const CabackRestoreKey *k = plan->keys->pdata[i];
        g_autofree char *lkid = hex_of(k->bag->attrs.local_key_id);
        gint64 it = iterations_in(k->bag->protection);
        caback_json_begin_object(json, NULL);
        caback_json_int(json, "index", i);
        caback_json_string(json, "friendly_name", k->bag->attrs.friendly_name);
        g_autofree char *problem = name_problem(&k->bag->attrs);
        caback_json_string(json, "friendly_name_problem", problem);
        /* Never null: a key NSS cannot hold has its own type ("ed25519", else "unknown"). */
        caback_json_string(json, "type", k->type_name);
        caback_json_string(json, "algorithm_oid", k->bag->algorithm_oid);
        caback_json_bool(json, "importable", k->type != nullKey);
        caback_json_int_or_null(json, "size", k->bits > 0, k->bits);
        caback_cli_json_weak_key(json, k->weak, k->weak_reason);
        caback_json_string(json, "id", k->nss_id);
        caback_json_string(json, "nss_id", k->nss_id);
        caback_json_string(json, "nickname", k->bag->attrs.friendly_name);
        caback_json_string(json, "dogtag_id", k->dogtag_id);
        caback_json_int_or_null(json, "certificate_index", k->cert_index >= 0, k->cert_index);
        caback_json_string(json, "paired_by", k->pairing);
        caback_json_string(json, "local_key_id", lkid);
        caback_json_bool(json, "shrouded", k->bag->shrouded);
        caback_json_string(json, "protection", k->bag->protection);
        caback_json_int_or_null(json, "iterations", it >= 0, it);
        caback_json_string(json, "problem", k->problem);
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
    caback_json_bool(json, "certs_only", plan->keys->len == 0 && plan->certs->len > 0);

    caback_json_begin_array(json, "crls");
    for (guint i = 0; i < plan->crls->len; i++) {
        const CabackP12Crl *crl = plan->crls->pdata[i];
        caback_json_begin_object(json, NULL);
        caback_json_int(json, "index", i);
        caback_json_string(json, "friendly_name", crl->attrs.friendly_name);
        caback_json_int(json, "size", (gint64)g_bytes_get_size(crl->der));
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
    caback_cli_json_object_print(json);
}

/* Read and print @path inside an NSS context without databases. */
static gboolean list_file(const char *path, const CabackCliP12Password *p12,
                          const CabackSecret *given, gboolean json, GError **error)
{
    CabackPasswordSource source = {.file = p12->file, .env_var = p12->env};
    g_autoptr(CabackP12File) file = NULL;
    g_autoptr(CabackRestorePlan) plan = caback_restore_read(path, given, &source, &file, error);

    if (plan == NULL) {
        caback_cli_explain_p12_failure(path, NULL, NULL, error);
        return FALSE;
    }
    const CabackP12Info *info = caback_p12_file_info(file);
    if (json)
        print_json(plan, info);
    else
        print_text(plan, info);
    return TRUE;
}

gboolean caback_cmd_list(int argc, char **argv, GError **error)
{
    CabackCommonOptions common = {0};
    CabackCliP12Password p12 = {0};
    CabackCliShares shares = {0};
    g_autoptr(CabackSecret) given = NULL;
    g_autofree char *in = NULL;
    g_autoptr(GOptionContext) context = g_option_context_new("FILE");
    gboolean ok = FALSE;
    const GOptionEntry entries[] = {
        {"in", 'i', 0, G_OPTION_ARG_FILENAME, &in,
         "The PKCS#12 file (as restore -i and pk12util -i take it; or give FILE as the argument)",
         "FILE"},
        CABACK_CLI_P12_PASSWORD_READ_ENTRIES(&p12),
        {NULL}};

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
    caback_cli_add_share_options(context, &shares);
    /* -d and its password: only for .p7m shares, which the keys there open. */
    caback_cli_add_common(context, &common,
                          CABACK_COMMON_DB | CABACK_COMMON_JSON | CABACK_COMMON_LIMITS);

    if (!caback_cli_parse(context, "list", &common, &argc, &argv, error))
        goto out;
    if (in != NULL && argc > 1) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "give the PKCS#12 file once: -i %s or the argument \"%s\", not both", in,
                    argv[1]);
        goto out;
    }
    if (in == NULL && argc < 2) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "which PKCS#12 file? usage: caback list FILE [-w FILE] [--json]");
        goto out;
    }
    if (argc > 2) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "give one PKCS#12 file (unexpected argument \"%s\"); usage: caback list "
                    "FILE [-w FILE] [--json]",
                    argv[2]);
        goto out;
    }
    if (!caback_cli_p12_password_check(&p12, error))
        goto out;
    if (caback_cli_p12_password_option(&p12) != NULL) {
        if (!caback_cli_shares_exclusive(&shares, "list", caback_cli_p12_password_option(&p12),
                                         error))
            goto out;
    } else if (caback_cli_shares_given(&shares)) {
        given = caback_cli_shares_password(&common, in != NULL ? in : argv[1], &shares, NULL,
                                           error);
        if (given == NULL)
            goto out;
    }

    /* No database: NSS's internal slot only (session objects, nothing written). */
    NSSInitContext *nss =
        NSS_InitContext("", "", "", "", NULL,
                        NSS_INIT_READONLY | NSS_INIT_NOCERTDB | NSS_INIT_NOMODDB |
                            NSS_INIT_FORCEOPEN | NSS_INIT_NOROOTINIT | NSS_INIT_OPTIMIZESPACE);
    if (nss == NULL) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot start NSS without a database");
        goto out;
    }
    ok = list_file(in != NULL ? in : argv[1], &p12, given, common.json, error);
    if (NSS_ShutdownContext(nss) != SECSuccess && ok) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "NSS did not shut down cleanly (a reference was leaked; this is a "
                             "bug in caback, please report it)");
        ok = FALSE;
    }
out:
    caback_cli_p12_password_clear(&p12);
    caback_cli_shares_clear(&shares);
    caback_cli_common_clear(&common);
    return ok;
}
