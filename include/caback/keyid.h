/* NSS key IDs (CKA_ID, 20 bytes; `certutil -K` prints them as 40 unsigned hex digits) and the
 * signed Java BigInteger hex form that Dogtag writes as cloning.<tag>.privkey.id in CS.cfg.
 * Pure functions: no NSS, no I/O (the --json object is text). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CABACK_KEYID_LEN 20

/* A key ID as 20 bytes, big-endian; shorter IDs are sign-extended (Dogtag form) or zero-extended
 * (unsigned forms) to 20 bytes when parsed. The one type a key ID travels as, from the database
 * to the printer: its text forms are made where it is shown. */
typedef struct {
    guint8 bytes[CABACK_KEYID_LEN];
    guint8 token_len; /* caback_keyid_from_bytes: the CKA_ID's own length when it is shorter than
                       * 20 bytes (bytes holds it zero-extended); 0 for a 20-byte ID and for an
                       * ID parsed from text */
} CabackKeyId;

/* Parse @text in any accepted form: 40-digit unsigned hex (certutil -K), "0x"-prefixed unsigned
 * hex, colon-separated bytes ("ba:76:2f:..."), or the Dogtag signed form ("-584f..." or
 * "6006..."), upper or lower case, surrounding white space ignored. Fails with
 * CABACK_ERROR_USAGE naming @text when it is empty, not hex, or longer than 20 bytes. */
gboolean caback_keyid_parse(const char *text, CabackKeyId *id, GError **error);

/* A key ID from raw CKA_ID bytes. IDs of exactly 20 bytes are copied; shorter ones are
 * zero-extended on the left (their length is kept in token_len); longer ones fail with
 * CABACK_ERROR_USAGE. */
gboolean caback_keyid_from_bytes(const guint8 *data, gsize len, CabackKeyId *id, GError **error);

/* The 40-digit lowercase unsigned hex form printed by certutil -K; caller frees. */
char *caback_keyid_to_nss(const CabackKeyId *id);

/* The ID as its token holds it: the lowercase hex of its own bytes, as certutil -K prints a
 * CKA_ID of any length (40 digits for a 20-byte ID, the same as caback_keyid_to_nss); caller
 * frees. */
char *caback_keyid_to_token_hex(const CabackKeyId *id);

/* The Dogtag CS.cfg form of the ID's own bytes (caback_keyid_bytes_to_dogtag of exactly those,
 * as Dogtag computes it from the token's CKA_ID; caback_keyid_to_dogtag for a 20-byte ID);
 * caller frees. */
char *caback_keyid_to_token_dogtag(const CabackKeyId *id);

/* "0x" followed by the 40-digit lowercase unsigned hex form; caller frees. */
char *caback_keyid_to_0x(const CabackKeyId *id);

/* The Dogtag CS.cfg form: new BigInteger(bytes).toString(16) - lowercase, "-" and the magnitude
 * when the first byte is >= 0x80, no leading zeros, "0" for zero; caller frees. */
char *caback_keyid_to_dogtag(const CabackKeyId *id);

/* The lowercase hex of raw bytes of any length, as certutil -K prints a CKA_ID that is no key ID
 * (empty, or over 20 bytes); caller frees. */
char *caback_keyid_bytes_to_hex(const guint8 *data, gsize len);

/* The Dogtag form of raw bytes of any length (BigInteger of the two's-complement value); caller
 * frees. Used for IDs that are not 20 bytes long. */
char *caback_keyid_bytes_to_dogtag(const guint8 *data, gsize len);

/* TRUE when Dogtag before 10.5.6 could not decode the CS.cfg form of @id: its minimal signed
 * form is shorter than 20 bytes (first byte 0x00 with the second < 0x80, or 0xff with the second
 * >= 0x80). */
gboolean caback_keyid_dogtag_legacy_problem(const CabackKeyId *id);

/* TRUE when @a and @b are the same ID. */
gboolean caback_keyid_equal(const CabackKeyId *a, const CabackKeyId *b);

/* One ID of a batch (caback keyid's arguments or lines): the text as given, white space
 * stripped, and the ID it names. */
typedef struct {
    char *input;
    CabackKeyId id;
} CabackKeyIdInput;

void caback_keyid_input_free(CabackKeyIdInput *input);

/* Parse each string of @inputs (char*) with caback_keyid_parse: returns the valid ones in order
 * (CabackKeyIdInput*, with a free function); the error of each invalid one is appended to
 * @invalid (GError*). */
GPtrArray *caback_keyid_parse_each(const GPtrArray *inputs, GPtrArray *invalid);

/* TRUE when the command-line argument @arg is a Dogtag negative ID, not an option: "-" followed
 * by hex digits only (or "-0x" and hex digits). "-" and one letter ("-d", "-c", "-f") is an
 * option as certutil writes them, never an ID, so that a misplaced option is refused instead of
 * printed as a key ID. */
gboolean caback_keyid_is_negative_argument(const char *arg);

/* The object caback keyid --json prints for @ids (CabackKeyIdInput*): "ids", one object each with
 * its input, its nss, dogtag and 0x forms (nss_id and dogtag_id too) and whether old Dogtag
 * cannot read it; as caback_json_text writes it; caller frees. */
char *caback_keyid_json(const GPtrArray *ids);

G_END_DECLS
