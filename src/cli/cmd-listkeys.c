/* caback listkeys (alias -K): the private keys of a token, as certutil -K lists them, with the
 * Dogtag CS.cfg form of each key ID. The database is opened read-only. */
#include "config.h"

#include "cli.h"

#include <caback/json.h>
#include <caback/keys.h>

#include <string.h>

/* The key ID as certutil -K prints it, or a word for a key without CKA_ID. */
static char *id_text(const CabackKeyInfo *k)
{
    char *hex = caback_key_info_nss_id(k);
    if (*hex != '\0')
        return hex;
    g_free(hex);
    return g_strdup("(no CKA_ID)");
}

static const char *bool_text(int value)
{
    return value < 0 ? "unknown" : value ? "yes" : "no";
}

static char *nickname_text(const CabackKeyInfo *k)
{
    if (!k->orphan)
        return g_strdup(k->nickname != NULL ? k->nickname : "(certificate without nickname)");
    if (k->label != NULL)
        return g_strdup_printf("(orphan) key label \"%s\"", k->label);
    return g_strdup("(orphan)");
}

static void print_table(const CabackDb *db, const GPtrArray *keys)
{
    caback_cli_info("Private keys on token \"%s\" of NSS database %s:", db->token_name, db->dir);
    if (keys->len == 0) {
        caback_cli_info("(none)");
        return;
    }
    /* Column widths fit the widest value of this list (IDs longer than 20 bytes are possible on
     * other tokens). */
    int idw = 40, dogw = 16;
    for (guint i = 0; i < keys->len; i++) {
        const CabackKeyInfo *k = keys->pdata[i];
        g_autofree char *id = id_text(k);
        g_autofree char *dogtag = caback_key_info_dogtag_id(k);
        idw = MAX(idw, (int)strlen(id));
        dogw = MAX(dogw, dogtag != NULL ? (int)strlen(dogtag) : 1);
    }
    g_print("%3s  %-7s %5s  %-*s  %-*s  %s\n", "#", "type", "bits", idw, "key ID (certutil -K)",
            dogw, "CS.cfg form (Dogtag)", "nickname");
    for (guint i = 0; i < keys->len; i++) {
        const CabackKeyInfo *k = keys->pdata[i];
        g_autofree char *bits = k->size_bits > 0 ? g_strdup_printf("%u", k->size_bits)
                                                 : g_strdup("?");
        g_autofree char *nick = nickname_text(k);
        g_autofree char *id = id_text(k);
        g_autofree char *dogtag = caback_key_info_dogtag_id(k);
        g_print("%3u  %-7s %5s  %-*s  %-*s  %s\n", k->index, k->type, bits, idw, id, dogw,
                dogtag != NULL ? dogtag : "-", nick);
        /* On the internal token every key can be exported; elsewhere it is the first thing an
         * administrator planning a backup needs to know. */
        if (!PK11_IsInternalKeySlot(db->slot) || k->extractable == 0)
            g_print("     export: %s (extractable %s, sensitive %s); certificate on %s, trust on "
                    "%s\n",
                    k->extractable == 0 ? "NO, the key cannot leave the token"
                    : k->extractable == 1 ? "yes"
                                          : "unknown",
                    bool_text(k->extractable), bool_text(k->sensitive),
                    k->cert_token != NULL ? k->cert_token : "(none)",
                    k->trust_token != NULL ? k->trust_token : "(none)");
    }
}

static void print_json(const CabackDb *db, const GPtrArray *keys)
{
    g_autoptr(CabackJson) json = caback_json_new();

    caback_json_begin_object(json, NULL);
    caback_json_string(json, "database", db->dir);
    caback_json_string(json, "token", db->token_name);
    caback_json_begin_array(json, "keys");
    for (guint i = 0; i < keys->len; i++) {
        const CabackKeyInfo *k = keys->pdata[i];
        g_autofree char *hex = caback_key_info_nss_id(k);
        g_autofree char *dogtag = caback_key_info_dogtag_id(k);
        caback_json_begin_object(json, NULL);
        caback_json_int(json, "index", k->index);
        caback_json_string(json, "type", k->type);
        if (k->size_bits > 0)
            caback_json_int(json, "size", k->size_bits);
        else
            caback_json_null(json, "size");
        caback_json_string(json, "id", *hex != '\0' ? hex : NULL);
        caback_json_string(json, "nss_id", *hex != '\0' ? hex : NULL);
        caback_json_string(json, "dogtag_id", dogtag);
        caback_json_string(json, "nickname", k->nickname);
        caback_json_bool(json, "orphan", k->orphan);
        caback_json_string(json, "label", k->label);
        if (k->extractable >= 0)
            caback_json_bool(json, "extractable", k->extractable);
        else
            caback_json_null(json, "extractable");
        if (k->sensitive >= 0)
            caback_json_bool(json, "sensitive", k->sensitive);
        else
            caback_json_null(json, "sensitive");
        caback_json_string(json, "cert_token", k->cert_token);
        caback_json_string(json, "trust_token", k->trust_token);
        caback_json_bool(json, "dogtag_legacy_problem",
                         k->id_valid && g_bytes_get_size(k->raw_id) == CABACK_KEYID_LEN &&
                             caback_keyid_dogtag_legacy_problem(&k->id));
        caback_json_end_object(json);
    }
    caback_json_end_array(json);
    caback_json_end_object(json);
    caback_cli_json_print(caback_json_text(json));
}

gboolean caback_cmd_listkeys(int argc, char **argv, GError **error)
{
    CabackCommonOptions common = {0};
    g_autoptr(GOptionContext) context = g_option_context_new(NULL);
    gboolean ok = FALSE;

    g_option_context_set_summary(
        context, "List the private keys of a token as certutil -K does: index, key type, size, "
                 "key ID (CKA_ID, 40 hex digits),\n"
                 "its CS.cfg form (Dogtag's cloning.<tag>.privkey.id) and the nickname of the "
                 "certificate that has the key,\n"
                 "or (orphan) when no certificate has it. \"caback -K\" is the same command.");
    g_option_context_set_description(context, "The database is opened read-only. Example:\n"
                                              "  caback listkeys -d /var/lib/pki/pki-tomcat/alias "
                                              "-f /var/lib/pki/pki-tomcat/conf/password.conf\n");
    caback_cli_add_common(context, &common, CABACK_COMMON_DB | CABACK_COMMON_JSON);

    if (!caback_cli_parse(context, "listkeys", &common, &argc, &argv, error))
        goto out;
    if (!caback_cli_no_arguments("listkeys", argc, argv, error))
        goto out;

    CabackDb *db = caback_cli_open_db(&common, TRUE, error);
    if (db == NULL)
        goto out;
    GPtrArray *keys = caback_keys_list(db, error);
    if (keys != NULL) {
        if (common.json)
            print_json(db, keys);
        else
            print_table(db, keys);
        g_ptr_array_unref(keys);
    }
    /* Close even after a failure, but report the first error. */
    ok = caback_db_close(db, keys != NULL ? error : NULL) && keys != NULL;
out:
    caback_cli_common_clear(&common);
    return ok;
}
