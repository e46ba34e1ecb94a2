/* M-of-N custody of an archive password (issue 18): the password is 32 random bytes from NSS,
 * split with Shamir's scheme over GF(2^8) by libgfshare into N shares of which any M rebuild it;
 * each share goes to one custodian, as a CMS EnvelopedData encrypted to the custodian's
 * certificate (RSA: RSAES-OAEP with SHA-256; EC: ECDH, dhSinglePass-stdDH-sha256kdf-scheme with
 * AES-256 key wrap; content AES-256-CBC), whose content is a text record that `openssl cms
 * -decrypt` prints. A custodian opens their share with the key in their own NSS database or
 * token and hands it over as one line of text with a checksum.
 *
 * Layers, from the bottom (each usable on its own):
 *   secret     caback_custody_secret_new, caback_custody_password
 *   split      caback_custody_split_check, caback_custody_split, caback_custody_combine
 *   one share  CabackShare; its text form (caback_share_to_text / _from_text) and its record
 *              (caback_share_record_encode / _decode)
 *   CMS        caback_share_envelope (encrypt to a custodian), caback_share_envelope_open
 *   files      caback_custody_write_shares (the N files of a backup), caback_share_read (a text
 *              or .p7m share file), caback_share_write_text (share-open -o)
 *   validation caback_custody_shares_check (before any derivation), then
 *              caback_custody_password_from_shares (check + combine + password text)
 *
 * Errors: every problem with the shares a user gave (too few, duplicate, mistyped, damaged,
 * foreign: of another archive or another split) is CABACK_ERROR_BAD_PASSWORD (exit 3): like a
 * wrong password, they cannot open the archive. The message names the share by index and by
 * source (file name, or "share 2 typed at the prompt"). Too few: "2 of 3 shares given".
 *
 * Secrets: the archive secret, the password, the share bytes, a share's text form and its record
 * are CabackSecret buffers (locked, wiped on free); nothing here logs or prints them. */
#pragma once

#include <glib.h>

#include <caback/db.h>
#include <caback/secret.h>

#include <cert.h>
#include <pk11pub.h>

G_BEGIN_DECLS

#define CABACK_CUSTODY_SECRET_LEN 32     /* bytes of the archive secret, and of each share */
#define CABACK_CUSTODY_PASSWORD_LEN 43   /* characters of its text form (base64url, no '=') */
#define CABACK_CUSTODY_MAX_COUNT 255     /* N at most: GF(2^8) has 255 non-zero points */
#define CABACK_CUSTODY_SPLIT_ID_LEN 8    /* random bytes naming one split */
#define CABACK_CUSTODY_ARCHIVE_TAG_LEN 8 /* bytes of the archive's SHA-256 a text share carries */
#define CABACK_SHARE_FORMAT 1            /* version of the record and of the text form */
#define CABACK_SHARE_FILE_MAX (64 * 1024) /* largest share file read (text or .p7m) */

/* The archive secret: CABACK_CUSTODY_SECRET_LEN bytes from PK11_GenerateRandom. NSS must be
 * open. Fails (CABACK_ERROR_FAILED with NSS's error) only when NSS's generator does. */
CabackSecret *caback_custody_secret_new(GError **error);

/* The archive password of @secret (CABACK_CUSTODY_SECRET_LEN bytes): its base64url encoding
 * without padding, CABACK_CUSTODY_PASSWORD_LEN ASCII characters, the same for PKCS#12's
 * BMPString and UTF-8 encodings. Pure. Never returns NULL. */
CabackSecret *caback_custody_password(const CabackSecret *secret);

/* FALSE (CABACK_ERROR_USAGE, saying which rule and the values) unless 1 <= @threshold <= @count
 * <= CABACK_CUSTODY_MAX_COUNT. M = 1 is allowed here; warning about it is the caller's. */
gboolean caback_custody_split_check(guint threshold, guint count, GError **error);

/* One share of one split. */
typedef struct {
    guint format;      /* CABACK_SHARE_FORMAT */
    guint index;       /* i, 1..count: the share's point in GF(2^8) */
    guint threshold;   /* M: shares needed */
    guint count;       /* N: shares made */
    guint8 split_id[CABACK_CUSTODY_SPLIT_ID_LEN]; /* random, the same in every share of a split */
    guint8 archive_sha256[32]; /* SHA-256 of the archive file the split opens */
    gboolean archive_sha256_complete; /* FALSE for a share read from its text form: only the
                                         first CABACK_CUSTODY_ARCHIVE_TAG_LEN bytes are known */
    gboolean has_custodian;
    guint8 custodian_sha256[32]; /* SHA-256 of the custodian certificate's DER (records only) */
    CabackSecret *value;         /* the share bytes, CABACK_CUSTODY_SECRET_LEN */
    char *source;                /* where it came from, for messages (file name...); may be NULL */
} CabackShare;

/* Free @share (wiping its value); NULL is allowed. */
void caback_share_free(CabackShare *share);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackShare, caback_share_free)

/* A new GPtrArray that frees CabackShare elements. */
GPtrArray *caback_share_array_new(void);

/* Split @secret (CABACK_CUSTODY_SECRET_LEN bytes) into @count shares, any @threshold of which
 * rebuild it, for the archive whose SHA-256 is @archive_sha256 (32 bytes), under a new random
 * split ID. Returns CabackShare elements with index 1..count, in that order, without custodian
 * (the caller sets has_custodian/custodian_sha256, or caback_custody_write_shares does). NSS must
 * be open (coefficients and split ID come from PK11_GenerateRandom). Fails with
 * caback_custody_split_check's error or NSS's. */
GPtrArray *caback_custody_split(const CabackSecret *secret, guint threshold, guint count,
                                const guint8 *archive_sha256, GError **error);

/* Check the shares a user gave, before any derivation, in this order: every share of the same
 * split as the first (same split ID, M and N; else "share 2 (FILE) belongs to another split"),
 * of the archive @archive_sha256 (32 bytes; NULL: not checked; a text share is compared on its
 * first CABACK_CUSTODY_ARCHIVE_TAG_LEN bytes) ("share 2 (FILE) is for another archive"), no
 * index twice ("share 2 is given twice: FILE and FILE2"), no index above N, and at least M of
 * them ("2 of 3 shares given"). All failures are CABACK_ERROR_BAD_PASSWORD. */
gboolean caback_custody_shares_check(GPtrArray *shares, const guint8 *archive_sha256,
                                     GError **error);

/* The secret rebuilt from @shares (caback_custody_shares_check first, with @archive_sha256); all
 * given shares are used. */
CabackSecret *caback_custody_combine(GPtrArray *shares, const guint8 *archive_sha256,
                                     GError **error);

/* caback_custody_combine, then caback_custody_password: the archive password. */
CabackSecret *caback_custody_password_from_shares(GPtrArray *shares,
                                                  const guint8 *archive_sha256, GError **error);

/* The text form of @share, one line without line end:
 *   "CBK1-" then groups of 6 base32 characters (RFC 4648 alphabet, upper case) joined by "-",
 * encoding format (1 byte), i, M, N (1 byte each), the first CABACK_CUSTODY_ARCHIVE_TAG_LEN bytes
 * of the archive's SHA-256, the split ID, the share bytes, and a checksum: the first 4 bytes of
 * the SHA-256 of everything before it (NSS must be open). Secret. */
CabackSecret *caback_share_to_text(const CabackShare *share);
/* caback_share_to_text(@share) followed by "\n": the line share-open prints and writes. Secret. */
CabackSecret *caback_share_to_line(const CabackShare *share);

/* Parse a text share (case, spaces, tabs and "-" between characters are ignored; a line end
 * ends it). @source names it in messages. A character outside the alphabet, a wrong length or a
 * checksum that does not match ("mistyped or damaged") is CABACK_ERROR_BAD_PASSWORD naming
 * @source and, for a character, its position. NSS must be open. */
CabackShare *caback_share_from_text(const char *text, gsize len, const char *source,
                                    GError **error);

/* The record a .p7m share holds (UTF-8 text, "\n" line ends, fields in this order):
 *   caback share record
 *   format: 1
 *   index: 2
 *   threshold: 3
 *   count: 5
 *   archive-sha256: <64 lower-case hex>
 *   split-id: <16 lower-case hex>
 *   custodian-sha256: <64 lower-case hex>
 *   share: <caback_share_to_text>
 * @share must have has_custodian and a complete archive SHA-256. Secret. */
CabackSecret *caback_share_record_encode(const CabackShare *share);

/* Parse a record strictly: exactly those lines in that order, nothing else; the share line must
 * pass caback_share_from_text and agree with the other fields. CABACK_ERROR_BAD_PASSWORD naming
 * @source and the line otherwise. */
CabackShare *caback_share_record_decode(const char *data, gsize len, const char *source,
                                        GError **error);

/* SHA-256 of @cert's DER, 32 bytes into @out. */
void caback_custody_cert_sha256(CERTCertificate *cert, guint8 out[32]);

/* Why @cert cannot receive a share (caback_share_envelope would fail on it), or NULL: its key is
 * neither RSA nor EC on a curve NSS supports. Caller frees. (Expiry and key usage are policy,
 * checked by the caller with its --force.) */
char *caback_custody_certificate_unsupported(CERTCertificate *cert);

/* A CMS EnvelopedData (DER) of caback_share_record_encode(@share) encrypted to @custodian:
 * content AES-256-CBC under a fresh key; RSA: KeyTransRecipientInfo with id-RSAES-OAEP (SHA-256,
 * MGF1-SHA-256), EC: KeyAgreeRecipientInfo with an ephemeral key, dhSinglePass-stdDH-sha256kdf-
 * scheme and id-aes256-wrap. The recipient is named by issuer and serial number. @share's
 * custodian fields are ignored: the record states @custodian's fingerprint. NSS must be open. */
GBytes *caback_share_envelope(const CabackShare *share, CERTCertificate *custodian,
                              GError **error);

/* Decrypt a share EnvelopedData (@der; RSA-OAEP SHA-256 / SHA-1, RSA PKCS#1 v1.5, ECDH with
 * SHA-1/224/256/384/512 KDF and AES key wrap, as caback and OpenSSL write them) with a private
 * key of @slot (NULL: any token NSS knows) whose certificate is a recipient, and decode its
 * record. @wincx is passed to NSS for logins (the CabackDb). Fails with CABACK_ERROR_NOT_FOUND
 * when no recipient's key is there (naming the recipients), CABACK_ERROR_BAD_PASSWORD when the
 * content is damaged or not a share record. */
CabackShare *caback_share_envelope_open(GBytes *der, const char *source, PK11SlotInfo *slot,
                                        void *wincx, GError **error);

/* Split @secret for the archive @archive_path (SHA-256 @archive_sha256) M-of-N with @threshold
 * and N = @count = number of @custodians, and write each share's envelope to
 * caback_share_file_name(archive_path, i, N), mode 0600, atomically: all N files are written to
 * temporary files first and renamed only when all are complete, so a failure leaves none of them
 * (a rename that fails after others removes those; with @replace their previous files are then
 * gone too: a new split with the old archive's files half replaced would open nothing).
 * Before the renames, each temporary file is read back and compared with the envelope meant for
 * it, and the first M and the last M shares are combined and compared with @secret. The same
 * certificate twice is refused (CABACK_ERROR_USAGE), and so is a key type that cannot receive a
 * share (caback_custody_certificate_unsupported, CABACK_ERROR_FAILED). Existing files are refused
 * (CABACK_ERROR_CONFLICT) unless @replace. On success, *@paths (may be NULL) receives the N file
 * names in index order; *@fingerprints (may be NULL) the custodians' SHA-256 fingerprints as hex,
 * for the run log; *@shares (may be NULL) the N shares as written (CabackShare, with custodian),
 * so that the caller can prove that M of them open the archive
 * (caback_custody_password_from_shares on any M of them) without the custodians' keys. */
gboolean caback_custody_write_shares(const char *archive_path, const CabackSecret *secret,
                                     guint threshold, CERTCertificate *const *custodians,
                                     guint count, const guint8 *archive_sha256, gboolean replace,
                                     GPtrArray **paths, GPtrArray **fingerprints,
                                     GPtrArray **shares, GError **error);

/* Read one share from @path: a .p7m share (DER, first byte 0x30) is opened with the keys of
 * @db (its token; CABACK_ERROR_USAGE saying to give -d when @db is NULL); anything else is taken
 * as a text share (its first line). The file is opened with O_NOFOLLOW, must be a regular file
 * of at most CABACK_SHARE_FILE_MAX bytes; its contents are wiped from memory after use. */
CabackShare *caback_share_read(const char *path, CabackDb *db, GError **error);

/* Write caback_share_to_text(@share) and "\n" to @path: mode 0600, temporary file in the same
 * folder renamed when complete; an existing @path is refused (CABACK_ERROR_CONFLICT) unless
 * @replace. */
gboolean caback_share_write_text(const char *path, const CabackShare *share, gboolean replace,
                                 GError **error);

/* "<archive>.share-<i>-of-<N>.p7m": the file of share @index of @count for @archive_path. */
char *caback_share_file_name(const char *archive_path, guint index, guint count);

G_END_DECLS
