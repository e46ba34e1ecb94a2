/* Dogtag CS.cfg files: read exactly as Dogtag's Java loader reads them, edited in place without
 * touching any byte outside the values that change, and the cloning.<tag>.* entries that record
 * each system key. Pure logic: no NSS; the only I/O is caback_cscfg_read_file. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One key=value entry as Dogtag's loader (SimpleProperties.load) sees it. */
typedef struct {
    char *key;              /* the key, backslashes kept (Dogtag does not convert escapes) */
    char *value;            /* the value as PropConfigStore.getString returns it: trimmed of every
                             * character <= 0x20 at both ends */
    guint line;             /* 1-based number of the physical line where the entry starts */
    guint last_line;        /* the physical line where it ends (continuation lines) */
    gsize value_start;      /* byte offsets in the file of the trimmed value, end exclusive; */
    gsize value_end;        /* for an empty value both are where a value would be inserted */
    gsize edit_start;       /* where a new value is written from: value_start, or, when the
                             * value starts on a continuation line, right after the separator
                             * (so that no line end can join another one, e.g. "\r" + "\n") */
    gboolean has_separator; /* a '=', ':' or white space followed the key */
} CabackCsCfgEntry;

typedef struct CabackCsCfg CabackCsCfg;

/* Parse the @len bytes at @data (copied) as a CS.cfg. Never fails: like Dogtag's loader, every
 * line is either blank, a comment or an entry. @path (may be NULL) is kept for messages. */
CabackCsCfg *caback_cscfg_parse(const void *data, gsize len, const char *path);

/* Read and parse the file @path. Fails with CABACK_ERROR_NOT_FOUND naming @path when it does not
 * exist, CABACK_ERROR_IO when it cannot be read. */
CabackCsCfg *caback_cscfg_read_file(const char *path, GError **error);

void caback_cscfg_free(CabackCsCfg *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackCsCfg, caback_cscfg_free)

/* The path given when @cfg was made (may be NULL). */
const char *caback_cscfg_path(const CabackCsCfg *cfg);

/* The file's bytes, exactly as read; owned by @cfg. */
const guint8 *caback_cscfg_data(const CabackCsCfg *cfg, gsize *len);

/* Every entry in file order, duplicates included (of CabackCsCfgEntry*, owned by @cfg). */
const GPtrArray *caback_cscfg_entries(const CabackCsCfg *cfg);

/* The entry Dogtag uses for @key (the last one in the file), or NULL. */
const CabackCsCfgEntry *caback_cscfg_lookup(const CabackCsCfg *cfg, const char *key);

/* The value Dogtag's getString returns for @key, or NULL when the key is absent. */
const char *caback_cscfg_get(const CabackCsCfg *cfg, const char *key);

/* ---- editing ---- */

/* One value to change: @key gets @new_value instead of @old_value. */
typedef struct {
    char *key;
    char *old_value;
    char *new_value;
} CabackCsCfgChange;

/* A new change (copies of the strings); free with caback_cscfg_change_free. */
CabackCsCfgChange *caback_cscfg_change_new(const char *key, const char *old_value,
                                           const char *new_value);
void caback_cscfg_change_free(CabackCsCfgChange *change);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackCsCfgChange, caback_cscfg_change_free)

/* The file's bytes with each change in @changes (of CabackCsCfgChange*) applied to the entry
 * Dogtag uses for its key; every other byte (comments, order, spacing, line ends, the earlier
 * duplicates of a key) stays identical. A value spread over continuation lines becomes one line.
 * Fails with CABACK_ERROR_CSCFG when a key is absent, two changes touch the same entry, or a new
 * value could not be read back as written (line breaks, surrounding white space, a final
 * backslash). */
GBytes *caback_cscfg_apply(const CabackCsCfg *cfg, const GPtrArray *changes, GError **error);

/* A unified diff (3 lines of context, as diff -u prints it) from @old to @new, both files named
 * @label in the header; "" when they are identical. Lines end at '\n'; a last line without one
 * is marked "\ No newline at end of file". Caller frees. */
char *caback_cscfg_unified_diff(const char *label, const guint8 *old, gsize old_len,
                                const guint8 *new, gsize new_len);

/* ---- numbers as Dogtag writes them ---- */

/* @data as an unsigned big-endian number in lowercase hex without leading zeros ("0" for zero):
 * Dogtag's form of an RSA modulus or exponent, and of a SubjectPublicKeyInfo DER (whose first
 * byte, 0x30, makes the signed and unsigned forms equal). Caller frees. */
char *caback_cscfg_unsigned_hex(const guint8 *data, gsize len);

/* TRUE when @a and @b are the same number for Java's new BigInteger(s, 16) (optional '-', hex
 * digits of either case, leading zeros), or, when either is not such a number, the same text. */
gboolean caback_cscfg_same_number(const char *a, const char *b);

/* ---- cloning entries ---- */

/* TRUE when @token names NSS's internal key token as Dogtag writes it: empty, "internal",
 * "Internal Key Storage Token", "NSS Certificate DB" or "NSS FIPS 140-2 Certificate DB"
 * (case-insensitive). */
gboolean caback_cscfg_token_is_internal(const char *token);

/* The subsystem whose keys the file describes ("ca", "kra", "ocsp", "tks", "tps"): cs.type in
 * lower case, else the prefix of the first "<sub>.cert.list" key; NULL when neither exists. */
char *caback_cscfg_subsystem(const CabackCsCfg *cfg);

/* TRUE when the file has a cloning.list entry (Dogtag 10.9 and later write none). */
gboolean caback_cscfg_has_cloning_list(const CabackCsCfg *cfg);

/* A tag with a cloning.<tag>.privkey.id and where CS.cfg says its key is. */
typedef struct {
    char *tag;
    gboolean listed;     /* the tag is in cloning.list */
    char *nickname;      /* the nickname as CS.cfg gives it (maybe "token:nickname"); NULL
                          * when none of the keys tried has a value */
    char *nickname_key;  /* the key it was read from */
    char *tried_keys;    /* the keys looked at for the nickname, comma-separated */
    char *bare_nickname; /* @nickname without a "token:" prefix */
    char *token;         /* the token CS.cfg names for the key: the nickname's prefix, else
                          * cloning.<tag>.tokenname, <sub>.<tag>.tokenname or
                          * cloning.module.token; NULL when none is given */
    char *token_key;     /* where @token came from ("prefix of <key>" or a key) */
} CabackCsCfgClone;

void caback_cscfg_clone_free(CabackCsCfgClone *clone);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackCsCfgClone, caback_cscfg_clone_free)

/* Every tag that has a cloning.<tag>.privkey.id: those of cloning.list first (in its order),
 * then the others in file order, including the legacy cloning.sslserver.*. The nickname is
 * cloning.<tag>.nickname, else <sub>.<tag>.nickname, <sub>.cert.<tag>.nickname,
 * <sub>.<tag>.certnickname, and ca.signing.certnickname for the tag signing. Returns a new array
 * of CabackCsCfgClone* (with a free function). */
GPtrArray *caback_cscfg_clone_entries(const CabackCsCfg *cfg);

/* The nickname to look up on the selected token (@selected_token, internal or not) for @clone,
 * or NULL with *@why (caller frees) saying why the key cannot be looked for there: CS.cfg gives
 * no nickname, or puts the key on another token. */
char *caback_cscfg_clone_lookup_name(const CabackCsCfgClone *clone, const char *selected_token,
                                     gboolean selected_is_internal, char **why);

/* What Dogtag writes for a key: privkey_id is the Dogtag form of its CKA_ID; for RSA keys
 * modulus and exponent (unsigned hex) and encoded ""; for other keys modulus and exponent ""
 * and encoded the hex of the SubjectPublicKeyInfo DER. */
typedef struct {
    const char *privkey_id;
    const char *modulus;
    const char *exponent;
    const char *encoded;
} CabackCsCfgKeyValues;

/* The changes (of CabackCsCfgChange*, with a free function) that make the cloning.<tag>.privkey.id,
 * .pubkey.modulus, .pubkey.exponent and .pubkey.encoded entries present in @cfg hold @values;
 * entries that are absent are not added, and equal numbers written differently are left alone
 * (see caback_cscfg_same_number). Empty when all match. */
GPtrArray *caback_cscfg_clone_changes(const CabackCsCfg *cfg, const char *tag,
                                      const CabackCsCfgKeyValues *values);

G_END_DECLS
