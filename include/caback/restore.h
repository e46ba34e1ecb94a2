/* Restoring a PKCS#12 file into an NSS database (caback restore) and describing what a file holds
 * (caback list).
 *
 * Three steps, so that nothing changes before everything is known:
 *   1. caback_restore_inspect: the facts of the file (certificates decoded, keys described and
 *      paired with their certificates, key IDs computed as NSS computes them); no database.
 *   2. caback_restore_plan: for each certificate and key, add / already present (skip) /
 *      conflict, with the nickname and trust each certificate gets; reads the database only.
 *   3. caback_restore_apply: the import, all or nothing: on any failure every change of the run
 *      is undone, then each imported key is checked to pair with its certificate.
 *
 * The rules that need no NSS (default trust by role, --trust parsing, renamed nicknames, the
 * CS.cfg tag of a Dogtag nickname) and the actions of a plan are in caback/restore-rules.h. */
#pragma once

#include <glib.h>

#include <caback/db.h>
#include <caback/keyid.h>
#include <caback/p12.h>
#include <caback/restore-rules.h>
#include <caback/weak-key.h>

#include <cert.h>
#include <keyhi.h>

G_BEGIN_DECLS

/* A certificate that --replace removes from a nickname. Its private key is never deleted. */
typedef struct {
    char *nickname;
    char *subject;
    char *serial_hex;
    GBytes *der;              /* kept so that a failed run can put it back */
    char *trust;              /* its trust flags as certutil -L shows them (NULL: none) */
    gboolean has_key;         /* a private key for it is on the token */
    gboolean key_kept_in_use; /* that key is also the key of the restored certificate */
    gboolean key_id_known;    /* has_key, and its CKA_ID is an NSS key ID (at most 20 bytes) */
    CabackKeyId key_id;       /* that key's ID, when key_id_known; printed in the certutil -K
                                 and CS.cfg forms (keyid.h) only where it is shown */
} CabackRestoreReplaced;

/* One certificate bag of the file. */
typedef struct {
    guint index;           /* position among the file's certificate bags, from 0 */
    CabackP12Cert *bag;    /* owned by the file */
    /* What planning compares, as slices of the bag's DER (bag->der: they live as long as the
     * file). No decoded certificate is kept (NSS's takes about 4.5 KB, which made a file of many
     * small certificates cost ten times its size in memory): caback_restore_cert_decode makes
     * one where NSS needs it. */
    SECItem der_subject;
    SECItem der_issuer;
    SECItem serial_number; /* the INTEGER's contents, as CERTCertificate.serialNumber */
    char *subject;         /* as NSS prints names (CN=...,O=...) */
    char *issuer;
    char *serial_hex; /* uppercase hex, no leading zero bytes (as openssl -serial) */
    char *serial_decimal;
    GDateTime *not_before; /* UTC */
    GDateTime *not_after;
    guint8 sha256[32];      /* fingerprint (caback_restore_cert_fingerprint), when sha256_known */
    gboolean sha256_known;
    gboolean is_ca;         /* basicConstraints cA, or a self-signed version 1 certificate */
    gboolean self_signed;   /* subject == issuer */
    gboolean audit_signing; /* see caback_restore_is_audit_signing */
    gint key_index;         /* the key bag of this certificate, -1 when none */
    GBytes *public_value;   /* what NSS derives the key ID from (RSA modulus, EC point...) */
    gboolean id_known;
    CabackKeyId id; /* SHA-1 of public_value: the CKA_ID NSS gives this key */

    /* Filled by caback_restore_plan. */
    char *nickname;        /* the nickname it gets (or has, when already present) */
    const char *nickname_source; /* "friendlyName", "subject CN, made unique", ... (a text
                                    of plan->texts) */
    char *trust;           /* flags set on import (NULL: none / left as they are) */
    const char *trust_source; /* why these flags ("Dogtag trust attribute", "default: ...";
                                 a text of plan->texts) */
    CabackRestoreAction action;
    char *note;          /* why skipped / in conflict, or NULL */
    gint duplicate_of;   /* an earlier certificate bag with the same certificate, or -1 */
    GPtrArray *replaced; /* of CabackRestoreReplaced*, for CABACK_RESTORE_REPLACE */
    char *old_trust;     /* for CABACK_RESTORE_TRUST: the flags before; for an add to another
                            token whose certificate the internal token already holds (see
                            internal_copy), the flags before when they change, else NULL */
    gboolean internal_copy; /* restore into a token other than the internal one: the internal
                               token already holds this certificate, and NSS keeps its trust
                               there, so the trust is that copy's (changed only explicitly) */

    /* The weak-key rule (weak-key.h) on the certificate's public key, set by
     * inspect; weak_reason is NULL when the key is not weak. */
    CabackWeakKey weak;
    char *weak_reason;
    /* Set by caback_restore_plan: the run would give this certificate CA trust (C or
     * T) although its key is weak, and --allow-weak-keys was not given: the restore is refused. */
    gboolean weak_refused;
} CabackRestoreCert;

/* One key bag of the file. */
typedef struct {
    guint index;           /* position among the file's key bags, from 0 */
    CabackP12Key *bag;     /* owned by the file */
    KeyType type;          /* nullKey when NSS cannot handle the algorithm */
    const char *type_name; /* "rsa", "ec", ... (static) */
    guint bits;            /* 0 when unknown */
    gint cert_index;       /* the certificate bag of this key, -1 when the file has none */
    const char *pairing;   /* how the certificate was found: "localKeyID", "friendlyName",
                              "public key" (static) */
    GBytes *public_value;  /* NULL when unknown */
    gboolean id_known;
    CabackKeyId id;  /* the NSS key ID (SHA-1 of public_value), when id_known: printed as
                      * caback_keyid_to_nss (certutil -K) and caback_keyid_to_dogtag (CS.cfg) */
    char *problem;   /* why it cannot be restored (unsupported type...), or NULL */

    /* Filled by caback_restore_plan. */
    char *nickname; /* its certificate's nickname (the key's label), may be NULL */
    CabackRestoreAction action;
    const char *note;  /* why skipped / in conflict, or NULL; kept in the plan's texts, once
                          for all the keys that share it */
    gint duplicate_of; /* an earlier key bag with the same key, or -1 */
    gboolean store_public; /* CABACK_RESTORE_SKIP, but the public key object a restore stores
                              beside the key is missing (a restore stopped in between): the run
                              stores it */

    /* Filled by caback_restore_apply. */
    gboolean pair_checked; /* signed and verified with its certificate after import */

    /* The weak-key rule on the key's public half: its certificate's, or for a key
     * without certificate in the file its own (when it can be found); NULL reason: not weak. */
    CabackWeakKey weak;
    char *weak_reason;

    /* Set by caback_restore_plan: the key's certificate is in the file, or in the
     * database (a certificate with the key's public key under the key's friendlyName, or the
     * certificate of the database's key with this ID). Only then is its key ID one for CS.cfg;
     * otherwise it is a key without a certificate. */
    gboolean cert_found;
} CabackRestoreKey;

typedef struct {
    CabackP12File *file; /* not owned; must outlive the plan */
    char *path;
    char *sha256;     /* SHA-256 of the bytes read (64 lower-case hex digits), set by
                         caback_restore_read: what a signature check must have seen */
    GPtrArray *certs; /* of CabackRestoreCert* */
    GPtrArray *keys;  /* of CabackRestoreKey* */
    GPtrArray *crls;  /* of CabackP12Crl* (not owned): listed, never imported */
    GPtrArray *notes; /* of char*: things the plan or run wants the user to know */
    guint conflicts;  /* entries in conflict (after --replace / --rename) */
    guint changes;    /* entries that change the database */
    gboolean non_extractable; /* import keys with CKA_EXTRACTABLE false (--non-extractable) */
    guint weak_refusals; /* certificates with weak_refused set: apply refuses the plan */
    struct CabackRestorePlanning *planning; /* private to restore-plan.c: the lookups that keep
                                               planning linear in the number of certificates */
    GStringChunk *texts; /* the texts many entries share (nickname_source, trust_source), kept
                            once for all of them rather than once per certificate */
} CabackRestorePlan;

void caback_restore_plan_free(CabackRestorePlan *plan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackRestorePlan, caback_restore_plan_free)
/* Free certificate @i of @plan, which nothing reads any more (the drill, once it has checked it:
 * the plan of a file of many certificates would otherwise stay whole beside the drill's report).
 * Its place in plan->certs becomes NULL, which only caback_restore_plan_free may then see; the
 * strings another owner took (g_steal_pointer) stay theirs. */
void caback_restore_plan_drop_cert(CabackRestorePlan *plan, guint i);
/* Free key @i of @plan and its key bag in the plan's file, which nothing reads any more (the
 * drill, once the key is restored and checked). Both places become NULL, which only
 * caback_restore_plan_free and caback_p12_file_free may then see. */
void caback_restore_plan_drop_key(CabackRestorePlan *plan, guint i);

/* The SHA-256 fingerprint of certificate @c, uppercase hex bytes separated by ':' (as certutil
 * prints it), or NULL when unknown; made when asked for, not kept with each certificate. */
char *caback_restore_cert_fingerprint(const CabackRestoreCert *c);

/* Describe the bags of @file (read from @path): decode each certificate, describe each key into
 * NSS's internal crypto slot (nothing permanent is created), pair keys with certificates (by
 * localKeyID, then friendlyName, then by checking that the key signs what the certificate's
 * public key verifies) and compute each key ID as NSS does (SHA-1 of the public value). NSS must
 * be initialised. A certificate that does not decode, or a key that cannot be decrypted, fails
 * with CABACK_ERROR_PKCS12 (wrong password: CABACK_ERROR_BAD_PASSWORD) naming the bag; a key
 * type NSS cannot handle is not an error here (its problem field says so). */
CabackRestorePlan *caback_restore_inspect(CabackP12File *file, const char *path, GError **error);

/* Certificate @c of a plan decoded from its bag, as NSS's temporary certificate (in no
 * database; its DER stays the bag's, so it must not outlive the file), for the steps that hand a
 * certificate to NSS. NULL, with NSS's error set, when it does not decode (caback_restore_inspect
 * has refused such a file already). Caller destroys it (g_autoptr(CERTCertificate)). */
CERTCertificate *caback_restore_cert_decode(const CabackRestoreCert *c);

/* Read the PKCS#12 file @path (any readable file, a pipe too) and inspect it. The password is
 * @given when not NULL, else read from @source (a file's first line, an environment variable);
 * with neither, the empty password is tried first (files made without one) and the password is
 * then asked once on the terminal. A wrong password is CABACK_ERROR_BAD_PASSWORD (exit 3). On
 * success *@file is the decoded file, which the caller frees after the plan. */
CabackRestorePlan *caback_restore_read(const char *path, const CabackSecret *given,
                                       const CabackPasswordSource *source, CabackP12File **file,
                                       GError **error);

/* caback_restore_read over *@data, the whole file as the caller read it once
 * (caback_p12_load_file), so that the recorded SHA-256, the signature check and the restore all
 * judge the same bytes, whatever happens to the file by its name meanwhile. @path only names the
 * file in messages. Once the file is decoded (its bags are copies), *@data is wiped, freed and
 * set to NULL, whatever follows, so that the file's bytes do not stay beside the plan; while it
 * cannot be decoded (a wrong password), it stays the caller's. */
CabackRestorePlan *caback_restore_read_data(CabackSecret **data, const char *path,
                                            const CabackSecret *given,
                                            const CabackPasswordSource *source,
                                            CabackP12File **file, GError **error);

typedef enum {
    CABACK_RESTORE_ON_CONFLICT_STOP,    /* conflicts stay conflicts (exit 4) */
    CABACK_RESTORE_ON_CONFLICT_REPLACE, /* --replace */
    CABACK_RESTORE_ON_CONFLICT_RENAME,  /* --rename */
} CabackRestoreConflictMode;

typedef struct {
    CabackRestoreConflictMode on_conflict;
    GHashTable *trust; /* --trust: nickname (char*) -> flags (char*); may be NULL */
    gboolean non_extractable; /* keys may never leave the token again (HSM policy) */
    gboolean allow_weak_keys; /* --allow-weak-keys: CA trust (C or T) may be given to
                                 a certificate whose key is weak (weak-key.h); without it such a
                                 plan is refused (plan->weak_refusals) */
    gboolean skip_unsupported; /* --skip-unsupported: a key of a type NSS cannot hold
                                  (Ed25519...) is skipped, with a note, instead of stopping */
    /* The file is not authenticated (no MAC, no checked signature) and the user
     * said --allow-unauthenticated: no certificate gets trust from the file's trust attribute
     * or from the role rules; only @trust (-t NICKNAME=FLAGS) gives trust. */
    gboolean unauthenticated;
} CabackRestoreOptions;

/* Fill the plan fields of @plan for restoring into @db (logged in): nicknames, trust flags and
 * the action of each certificate and key. Reads the database only. Fails with
 * CABACK_ERROR_USAGE when a --trust nickname is not in the file, CABACK_ERROR_PKCS12 when a key
 * cannot be restored (type NSS cannot import, no way to find its public key); conflicts are not
 * failures here (see plan->conflicts). */
gboolean caback_restore_plan(CabackRestorePlan *plan, CabackDb *db,
                             const CabackRestoreOptions *options, GError **error);

/* Carry out @plan on @db: remove the certificates --replace takes the nicknames from (never a
 * private key), import the keys and certificates, set trust, then check that each imported key
 * pairs with its certificate. All or nothing: when a step fails, every change of this run is
 * undone and the error says what failed (and, should undoing fail too, what is left). Refuses a
 * plan with conflicts (CABACK_ERROR_CONFLICT) without changing anything, and a plan that would
 * give CA trust to a certificate with a weak key (plan->weak_refusals; CABACK_ERROR_FAILED). */
gboolean caback_restore_apply(CabackRestorePlan *plan, CabackDb *db, GError **error);

/* caback_restore_apply with @checker (may be NULL) as the second reader of the last
 * step: each key is handed to it as soon as it is stored, and its test signature, made from
 * the database's files by another process, overlaps the storing of the next keys; what the
 * checker does not answer is checked in this process as caback_restore_apply does. The other
 * half of each check (the certificate object names the key's CKA_ID, and a key with it is
 * there) is always made here. See include/caback/stored-key-check.h. */
typedef struct CabackStoredKeyChecker CabackStoredKeyChecker;
gboolean caback_restore_apply_checked(CabackRestorePlan *plan, CabackDb *db,
                                      CabackStoredKeyChecker *checker, GError **error);

/* When @db's token is not the database's own, log in to the database's own token too (with the
 * password source of @db: "internal=" in a password.conf): NSS keeps the trust flags of the
 * token's certificates there, and reads them right only when it is logged in before the token is
 * (it caches what it reads at the token's login). Restore calls it before caback_db_login; plan
 * and apply call it again (a no-op then). Wrong password: CABACK_ERROR_BAD_PASSWORD. */
gboolean caback_restore_login_internal(CabackDb *db, GError **error);

/* Make a new NSS database (sql) in @dir (created with mode 0700 when missing) whose password is
 * @password (empty: no password). Fails with CABACK_ERROR_CONFLICT when a database is already
 * there, CABACK_ERROR_DATABASE / CABACK_ERROR_IO otherwise. Must be called while NSS is not
 * initialised by any other context. *@created_dir is set when the folder itself was made. */
gboolean caback_restore_create_db(const char *dir, const CabackSecret *password,
                                  gboolean *created_dir, GError **error);

/* A throwaway database of caback's own in the private folder @dir (the drill's, reshare's),
 * whose password is random (caback_secret_new_temporary_db_password): made as
 * caback_restore_create_db makes one, then opened and logged in to. NSS derives its keys from
 * the password with a single PBKDF2 iteration (src/lib/restore-throwaway.c says why), whatever
 * NSS_MAX_MP_PBE_ITERATION_COUNT says. */
gboolean caback_restore_create_throwaway_db(const char *dir, const CabackSecret *password,
                                            GError **error);
CabackDb *caback_restore_open_throwaway_db(const char *dir, const CabackSecret *password,
                                           GError **error);

/* Remove a database made by caback_restore_create_db (its files, and the folder when
 * @remove_dir), after a failed run, so that the run leaves nothing behind. */
void caback_restore_remove_created_db(const char *dir, gboolean remove_dir);

/* @trust (a trust string, e.g. "CTu,Cu,C") as certutil -L shows it once the certificate is in
 * the database: NSS reports the user flag u in all three fields of a certificate whose private
 * key is there (@has_key), so "u,u," is shown "u,u,u". NULL stays NULL; a string NSS cannot
 * decode is returned as it is. Caller frees. */
char *caback_restore_trust_as_certutil(const char *trust, gboolean has_key);

G_END_DECLS
