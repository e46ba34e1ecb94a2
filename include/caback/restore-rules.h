/* The rules of caback restore that need no NSS: the actions of a plan, default trust by role,
 * audit-signing detection, --trust arguments, the options that exclude each other, renamed
 * nicknames and the CS.cfg tags of Dogtag nicknames. Plain functions over strings and flags
 * (src/lib/restore-rules.c), unit-tested in tests/unit/test-restore-rules.c; this header
 * includes GLib only, so the rules can be read and tested without NSS. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
    CABACK_RESTORE_ADD,      /* not in the database: imported */
    CABACK_RESTORE_SKIP,     /* already present and identical: left as it is */
    CABACK_RESTORE_TRUST,    /* certificate present; only its trust flags change */
    CABACK_RESTORE_CONFLICT, /* refused: same nickname, different certificate; or the key ID is
                                held by a different key */
    CABACK_RESTORE_REPLACE,  /* --replace: imported, and takes the nickname from the certificates
                                listed in "replaced" (removed; their keys stay) */
    CABACK_RESTORE_RENAME,   /* --rename: imported as "NICKNAME (restored N)" */
} CabackRestoreAction;

/* The word the plan prints for @action ("add", "skip", "trust", "conflict", "replace",
 * "rename"); a static string. */
const char *caback_restore_action_name(CabackRestoreAction action);

/* The trust flags a certificate gets when neither the file nor --trust gives them, and in
 * @reason (static) the rule that chose them: a self-signed CA certificate with its key
 * "CTu,Cu,Cu"; a CA certificate without its key "CT,C,C"; an audit-signing certificate with its
 * key "u,u,Pu"; any other certificate with its key "u,u,u"; anything else ",," (no trust). */
const char *caback_restore_default_trust(gboolean is_ca, gboolean self_signed, gboolean has_key,
                                         gboolean audit_signing, const char **reason);

/* TRUE when a certificate looks like an audit-signing certificate: its nickname contains
 * "auditSigningCert" (Dogtag's name, any case), or it is not a CA and its key usage extension
 * allows only digitalSignature and nonRepudiation, with nonRepudiation, and it has no extended
 * key usage (the profile Dogtag uses for audit signing). @key_usage is the first byte of the
 * keyUsage bits, @has_key_usage / @has_ext_key_usage say whether the extensions are present. */
gboolean caback_restore_is_audit_signing(const char *nickname, gboolean is_ca,
                                         gboolean has_key_usage, guint8 key_usage,
                                         gboolean has_ext_key_usage);

/* TRUE when @flags is a valid NSS trust string: three comma-separated fields (SSL, S/MIME,
 * code signing) of the letters p P c C T u w g i, as certutil -t takes it. */
gboolean caback_restore_trust_valid(const char *flags);

/* Parse a --trust argument "NICKNAME=FLAGS" (split at the last '=', so nicknames may contain
 * '='). Fails with CABACK_ERROR_USAGE quoting @arg. */
gboolean caback_restore_parse_trust(const char *arg, char **nickname, char **flags, GError **error);

/* Every --trust argument of @args (NULL-terminated, may be NULL) with caback_restore_parse_trust,
 * into a new table of nickname to flags (strings; a nickname given twice keeps its last flags).
 * Fails as caback_restore_parse_trust does, on the first bad argument. */
GHashTable *caback_restore_parse_trust_list(const char *const *args, GError **error);

/* The choices of a restore that exclude each other, as the options give them; each fails with
 * CABACK_ERROR_USAGE saying which to drop. --replace and --rename both say what happens to a
 * nickname the database already uses. */
gboolean caback_restore_check_conflict_choice(gboolean replace, gboolean rename, GError **error);

/* --no-signature-check skips the check that --at-signing-time (@at_signing_time),
 * --require-signature (@require_signature) and --signature-ca (@signature_ca) ask about; the
 * first of these pairs given, in that order, fails. */
gboolean caback_restore_check_signature_choices(gboolean no_signature_check,
                                                gboolean at_signing_time,
                                                gboolean require_signature,
                                                gboolean signature_ca, GError **error);

/* "NICKNAME (restored N)", the name --rename gives; caller frees. */
char *caback_restore_renamed(const char *nickname, guint n);

/* The CS.cfg tag (cloning.<tag>.privkey.id) of a Dogtag subsystem certificate nickname
 * ("caSigningCert cert-pki-ca" -> "signing", "Server-Cert cert-x" -> "sslserver", ...), or NULL
 * when the nickname is not one Dogtag uses. The token prefix "TOKEN:" is ignored. */
const char *caback_restore_cscfg_tag(const char *nickname);

G_END_DECLS
