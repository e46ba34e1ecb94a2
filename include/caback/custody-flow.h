/* The custody flows on top of the share core (custody.h): who the custodians of a backup are
 * (their certificates, read and checked before anything is written), and the checks of a split
 * M of N. See doc/custody.md for the ceremony these serve. */
#pragma once

#include <glib.h>

#include <caback/backup.h>
#include <caback/custody.h>
#include <caback/db.h>
#include <caback/json.h>
#include <caback/secret.h>

#include <cert.h>

G_BEGIN_DECLS

/* The most custodians a backup can have: libgfshare numbers shares with one byte. */
#define CABACK_CUSTODY_MAX_SHARES 255
/* The largest custodian certificate file read (PEM or DER). */
#define CABACK_CUSTODY_CERT_MAX_BYTES (64 * 1024)

/* One custodian: the certificate a share is encrypted to. */
typedef struct {
    char *path;            /* the file it was read from, as given (or DIR/NAME) */
    CERTCertificate *cert; /* a temporary certificate; owned */
    char *fingerprint;     /* SHA-256 of the certificate's DER, 64 lowercase hex digits */
    char *subject;         /* the subject DN, escaped for printing */
    const char *key_type;  /* "RSA" or "EC" (static) */
} CabackCustodian;

void caback_custodian_free(CabackCustodian *custodian);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackCustodian, caback_custodian_free)

/* The custodian certificates of @files (in that order; NULL allowed) followed by those of the
 * folder @dir (NULL allowed; every regular file whose name ends in .pem, .crt, .cer or .der,
 * sorted by name; dot files are skipped). Each file is opened with O_NOFOLLOW and checked with
 * fstat on the descriptor read (a regular file of at most CABACK_CUSTODY_CERT_MAX_BYTES) and
 * must hold exactly one certificate, PEM or DER. Refused (CABACK_ERROR_USAGE, naming the file
 * and what to do): a file that is not one certificate, the same certificate or the same public
 * key twice, a key that is neither RSA nor EC, more than CABACK_CUSTODY_MAX_SHARES custodians;
 * unless @force, also an expired or not yet valid certificate and one whose key usage forbids
 * encryption (RSA without keyEncipherment, EC without keyAgreement). What @force lets through
 * is added to @warnings (may be NULL). NSS must be initialised; free the array (of
 * CabackCustodian) before NSS shuts down. */
GPtrArray *caback_custodians_load(const char *const *files, const char *dir, gboolean force,
                                  GPtrArray *warnings, GError **error);

/* The split @m of @n custodians for @verb ("backup", "reshare"): CABACK_ERROR_USAGE for M < 1,
 * M > N, N > CABACK_CUSTODY_MAX_SHARES or no custodian at all; M = 1 adds a warning to
 * @warnings (may be NULL), since any one custodian then opens the backup alone. */
gboolean caback_custody_check_split(const char *verb, gint64 m, guint n, GPtrArray *warnings,
                                    GError **error);

/* ---- writing a share set next to an archive (backup, reshare) ---- */

/* The N share files of one archive, written to 0600 temporary files next to it and not yet in
 * place. */
typedef struct CabackShareSet CabackShareSet;

/* Split @secret (the archive secret, caback_custody_secret_new) @threshold of
 * @custodians->len (CabackCustodian) for the archive @archive (its bytes as written, to be put
 * in place as @archive_path), encrypt share i to custodian i (caback_share_envelope) and write
 * it to a temporary file for caback_share_file_name(@archive_path, i, N), mode 0600, in the
 * archive's folder (refused when other users may write it, unless @allow_shared_folder).
 * Then rebuild the password from M of the shares' records, as a custodian's share-open will
 * read them (encoded, decoded, checked against the archive's SHA-256, combined), twice from
 * different subsets when N > M, and compare both to the password of @secret: *@rebuilt
 * receives the password so rebuilt, for the caller to verify the archive with (proof that the
 * shares open it). Nothing is in place until caback_share_set_commit. */
CabackShareSet *caback_share_set_prepare(const char *archive_path, GBytes *archive,
                                         const CabackSecret *secret, guint threshold,
                                         GPtrArray *custodians, gboolean allow_shared_folder,
                                         CabackSecret **rebuilt, GError **error);

/* Put every file of @set in place (CABACK_ERROR_CONFLICT for an existing one unless
 * @replace; the files already renamed stay, the others are removed). @set stays owned by the
 * caller. */
gboolean caback_share_set_commit(CabackShareSet *set, gboolean replace, GError **error);

/* The share files' final names, in index order (owned by @set). */
GPtrArray *caback_share_set_paths(CabackShareSet *set);

/* The SHA-256 (hex) of each share's text form (caback_share_text_digest), in index order (owned by
 * @set): what a custodian's confirmation is checked against (reshare --verify). */
GPtrArray *caback_share_set_digests(CabackShareSet *set);

/* The SHA-256 (64 lowercase hex digits) of caback_share_to_text(@share): it names one share
 * without revealing it (the share is 32 random bytes). NULL only when NSS fails. */
char *caback_share_text_digest(const CabackShare *share);

/* Remove what was not put in place and free @set; NULL allowed. */
void caback_share_set_free(CabackShareSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackShareSet, caback_share_set_free)

/* Existing files of the form "@archive_path.share-*-of-*.p7m" (sorted), so that a backup can
 * refuse or warn before it writes its own. */
GPtrArray *caback_share_files_existing(const char *archive_path);

/* ---- opening an archive with shares (restore, verify, list, reshare) ---- */

/* Where the shares of an archive come from. */
typedef struct {
    const char *const *files; /* --share FILE...: text shares or .p7m shares (NULL allowed) */
    gboolean prompt;          /* --shares-prompt: ask for the missing ones on the terminal */
    CabackDb *db;             /* opens .p7m shares (may be NULL: then only text shares) */
    /* Told what the prompt needs said between entries ("2 of 3 given", why a typed share was
     * refused); may be NULL. */
    void (*notify)(const char *message, gpointer data);
    gpointer data;
} CabackShareSources;

/* The password of the archive whose SHA-256 is @archive_sha256 (32 bytes), rebuilt from the
 * shares of @sources: every file is read (caback_share_read) and checked as it comes (the same
 * split, this archive, no index twice: CABACK_ERROR_BAD_PASSWORD naming the share's index and
 * file); then, with @sources->prompt, shares are asked one at a time without echo until M are
 * given (the prompt says "2 of 3 given"); a share typed wrong is named and asked again (three
 * mistakes in all end the run). Too few shares fail with CABACK_ERROR_BAD_PASSWORD "2 of 3
 * shares given". Nothing is derived before every check passed. *@threshold / *@count (may be
 * NULL) receive M and N. NSS must be open. */
CabackSecret *caback_shares_password(const CabackShareSources *sources,
                                     const guint8 *archive_sha256, const char *archive_path,
                                     guint *threshold, guint *count, GError **error);

/* TRUE when a share file in @files needs an NSS database to open (its name ends in .p7m). */
gboolean caback_shares_need_db(const char *const *files);

/* ---- reshare: a new password and new custodians for an archive ---- */

typedef struct {
    const char *archive;            /* the archive under custody */
    const CabackSecret *password;   /* its current password (caback_shares_password) */
    guint threshold;                /* the new M */
    /* The new custodians, read (caback_custodians_load) inside the run, whose temporary
     * database must be the only NSS context. */
    const char *const *custodian_files;
    const char *custodian_dir;
    gboolean force_custodians;      /* --force: expired or signing-only certificates too */
    CabackP12WriteOptions write;    /* the new archive's profile and iterations */
    gboolean verify;                /* --verify: leave it pending until each confirmed */
    gboolean allow_shared_folder;
} CabackReshareOptions;

typedef struct {
    char *sha256;            /* the new archive's SHA-256 */
    char *old_sha256;        /* the archive's SHA-256 before */
    guint threshold, count;  /* the new M and N */
    GPtrArray *share_files;  /* char*: the new share files (pending names while pending) */
    gboolean pending;        /* waiting for confirmations (--verify) */
    guint confirmed;         /* how many of count are confirmed (pending) */
    GPtrArray *waiting;      /* guint indexes (GUINT_TO_POINTER) not yet confirmed */
    GPtrArray *stale;        /* char*: share files of the old set the new one did not replace */
    CabackBackupReport report; /* the new archive's verification */
    guint keys, certs;       /* what the new archive holds */
} CabackReshareResult;

void caback_reshare_result_clear(CabackReshareResult *result);

/* "@archive.pending", "@archive.pending.state": the pending reshare's files (doc/custody.md). */
char *caback_reshare_pending_path(const char *archive);
char *caback_reshare_state_path(const char *archive);

/* A new archive for options->archive under a new random password split for the new custodians:
 * the archive is opened with options->password, restored into a private temporary NSS database
 * (random password, removed on every path) and backed up from it (caback_backup_run with custody:
 * written, verified with the password rebuilt from the new shares) as "@archive.pending" with its
 * shares "@archive.pending.share-<i>-of-<N>.p7m", and "@archive.pending.state" records the
 * current and new SHA-256 and each new share's digest. Without options->verify the pending
 * files are then put in place at once (caback_reshare_promote); with it they wait for
 * caback_reshare_confirm, and the archive and its shares stay as they are. Refused
 * (CABACK_ERROR_CONFLICT) while a reshare of the archive is pending. The new archive must hold
 * every certificate and key of the old one (else CABACK_ERROR_FAILED, nothing changed). NSS must
 * not be open in any other context. */
gboolean caback_reshare_run(const CabackReshareOptions *options, CabackReshareResult *result,
                            GError **error);

/* Record the new custodians' shares @shares (CabackShare, from share-open of the pending share
 * files) as confirmed in the pending state of @archive: each must be the share of its index
 * (its text digest is the recorded one; else CABACK_ERROR_BAD_PASSWORD naming index and source).
 * When every share is confirmed, the pending archive and shares are put in place. Refused when
 * @archive changed since the reshare began (CABACK_ERROR_CONFLICT); nothing pending is
 * CABACK_ERROR_NOT_FOUND. */
gboolean caback_reshare_confirm(const char *archive, GPtrArray *shares,
                                CabackReshareResult *result, GError **error);

/* caback_reshare_confirm with the shares read from @files (caback_share_read with the keys of
 * @db, which may be NULL for text shares) and, with @prompt, one more typed at the prompt. NSS
 * must be open. */
gboolean caback_reshare_confirm_files(const char *archive, const char *const *files,
                                      gboolean prompt, CabackDb *db, CabackReshareResult *result,
                                      GError **error);

/* Remove the pending files of @archive (the archive and its shares are untouched). */
gboolean caback_reshare_abort(const char *archive, GError **error);

/* The member "custody" of a --json document: @threshold, the count, and per custodian
 * (CabackCustodian) its share file of @files (char*, index order; NULL or shorter: null), made
 * absolute, and its certificate. */
void caback_custody_json(CabackJson *json, guint threshold, const GPtrArray *custodians,
                         const GPtrArray *files);

/* ---- a custodian opens their share (caback share-open) ---- */

/* The check that spares the custodian the password: @output (may be NULL) does not exist, unless
 * @force (CABACK_ERROR_CONFLICT). Changes nothing. */
gboolean caback_share_open_check(const char *output, gboolean force, GError **error);

/* Open the share file @path (a .p7m of backup --split) with the keys of @db (caback_share_read)
 * and, when @output is not NULL, write it there as text (caback_share_write_text, replacing an
 * existing @output only with @force). A share that is already text is refused
 * (CABACK_ERROR_USAGE). The caller frees the share (caback_share_free). */
CabackShare *caback_share_open(const char *path, CabackDb *db, const char *output, gboolean force,
                               GError **error);

/* The SHA-256 of the archive @share belongs to, in hex. Caller frees. */
char *caback_share_archive_hex(const CabackShare *share);

G_END_DECLS
