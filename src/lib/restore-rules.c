/* Owns the rules of caback restore that need no NSS (caback/restore-rules.h): the action words,
 * default trust by role, audit-signing detection, --trust arguments, the options that exclude
 * each other, renamed nicknames and the CS.cfg tags of Dogtag nicknames. Includes no NSS
 * header: plain functions over strings. */
#include "config.h"

#include <caback/error.h>
#include <caback/nickname.h>
#include <caback/restore-rules.h>

#include <string.h>

const char *caback_restore_action_name(CabackRestoreAction action)
{
    switch (action) {
    case CABACK_RESTORE_ADD:
        return "add";
    case CABACK_RESTORE_SKIP:
        return "skip";
    case CABACK_RESTORE_TRUST:
        return "trust";
    case CABACK_RESTORE_CONFLICT:
        return "conflict";
    case CABACK_RESTORE_REPLACE:
        return "replace";
    case CABACK_RESTORE_RENAME:
        return "rename";
    }
    return "unknown";
}

const char *caback_restore_default_trust(gboolean is_ca, gboolean self_signed, gboolean has_key,
                                         gboolean audit_signing, const char **reason)
{
    const char *why, *flags;

    if (is_ca && self_signed && has_key) {
        flags = "CTu,Cu,Cu";
        why = "default for a self-signed CA certificate with its key";
    } else if (is_ca && !has_key) {
        flags = "CT,C,C";
        why = "default for a CA certificate without its key";
    } else if (has_key && audit_signing) {
        flags = "u,u,Pu";
        why = "default for an audit-signing certificate";
    } else if (has_key) {
        flags = "u,u,u";
        why = is_ca ? "default for a CA certificate with its key that is not self-signed"
                    : "default for a certificate with its key";
    } else {
        flags = ",,";
        why = "default for a certificate that is neither a CA nor has its key: no trust";
    }
    if (reason != NULL)
        *reason = why;
    return flags;
}

/* keyUsage bits of the first byte (RFC 5280 order, most significant bit first), as NSS's certt.h
 * names them; this file does not include NSS. */
#define KU_DIGITAL_SIGNATURE 0x80
#define KU_NON_REPUDIATION 0x40

gboolean caback_restore_is_audit_signing(const char *nickname, gboolean is_ca,
                                         gboolean has_key_usage, guint8 key_usage,
                                         gboolean has_ext_key_usage)
{
    if (nickname != NULL) {
        g_autofree char *lower = g_ascii_strdown(nickname, -1);
        if (strstr(lower, "auditsigningcert") != NULL)
            return TRUE;
    }
    /* Without Dogtag's nickname, the profile: a signing-only end-entity certificate for
     * non-repudiation. A TLS, OCSP or e-mail certificate names its purpose in extKeyUsage, so
     * a certificate that has one is never taken for an audit-signing certificate. */
    return !is_ca && has_key_usage && !has_ext_key_usage && (key_usage & KU_NON_REPUDIATION) != 0 &&
           (key_usage & ~(KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) == 0;
}

gboolean caback_restore_trust_valid(const char *flags)
{
    guint commas = 0;

    if (flags == NULL)
        return FALSE;
    for (const char *p = flags; *p != '\0'; p++) {
        if (*p == ',')
            commas++;
        else if (strchr("pPwcTCu", *p) == NULL)
            return FALSE;
    }
    return commas == 2;
}

gboolean caback_restore_parse_trust(const char *arg, char **nickname, char **flags, GError **error)
{
    const char *eq = strrchr(arg, '=');

    if (eq == NULL || eq == arg) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "--trust \"%s\": expected NICKNAME=FLAGS, for example "
                    "--trust \"caSigningCert cert-pki-ca=CTu,Cu,Cu\"",
                    arg);
        return FALSE;
    }
    if (!caback_restore_trust_valid(eq + 1)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "--trust \"%s\": \"%s\" is not a trust string; give three comma-separated "
                    "fields (SSL, S/MIME, code signing) of the letters p P w c T C u, as "
                    "certutil -t takes them (for example CT,C,C or u,u,u)",
                    arg, eq + 1);
        return FALSE;
    }
    *nickname = g_strndup(arg, eq - arg);
    *flags = g_strdup(eq + 1);
    return TRUE;
}

GHashTable *caback_restore_parse_trust_list(const char *const *args, GError **error)
{
    g_autoptr(GHashTable) trust = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    for (const char *const *t = args; t != NULL && *t != NULL; t++) {
        char *nickname, *flags;
        if (!caback_restore_parse_trust(*t, &nickname, &flags, error))
            return NULL;
        g_hash_table_replace(trust, nickname, flags);
    }
    return g_steal_pointer(&trust);
}

gboolean caback_restore_check_conflict_choice(gboolean replace, gboolean rename, GError **error)
{
    if (!replace || !rename)
        return TRUE;
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                "--replace and --rename exclude each other: choose what happens to a "
                "nickname the database already uses for another certificate");
    return FALSE;
}

gboolean caback_restore_check_signature_choices(gboolean no_signature_check,
                                                gboolean at_signing_time,
                                                gboolean require_signature,
                                                gboolean signature_ca, GError **error)
{
    const char *other = !no_signature_check ? NULL
                        : at_signing_time   ? "--at-signing-time says when to check the signature"
                        : require_signature ? "--require-signature asks for the signature check"
                        : signature_ca ? "--signature-ca says whom to trust for the signature check"
                                       : NULL;

    if (other == NULL)
        return TRUE;
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                "%s that --no-signature-check skips; give one or the other",
                other);
    return FALSE;
}

char *caback_restore_renamed(const char *nickname, guint n)
{
    return g_strdup_printf("%s (restored %u)", nickname, n);
}

const char *caback_restore_cscfg_tag(const char *nickname)
{
    /* The nicknames pkispawn gives the system certificates, and the tag CS.cfg files them under
     * (cloning.<tag>.privkey.id). Other subsystems (KRA, OCSP, TKS) use the same names. */
    static const struct {
        const char *prefix;
        const char *tag;
    } tags[] = {
        {"caSigningCert ", "signing"},          {"ocspSigningCert ", "ocsp_signing"},
        {"subsystemCert ", "subsystem"},        {"Server-Cert ", "sslserver"},
        {"auditSigningCert ", "audit_signing"}, {"storageCert ", "storage"},
        {"transportCert ", "transport"},
    };

    nickname = caback_nickname_bare(nickname);
    if (nickname == NULL)
        return NULL;
    for (gsize i = 0; i < G_N_ELEMENTS(tags); i++)
        if (g_str_has_prefix(nickname, tags[i].prefix))
            return tags[i].tag;
    return NULL;
}
