/* The last step of a restore: each key as stored in the database must sign a test value that its
 * certificate's public key verifies. The check can run in a second process, "caback
 * check-stored-keys", which opens the database from its files (read-only, with its own NSS) while
 * the restore goes on storing the next keys: NSS's key database decrypts and checks a stored key
 * one attribute at a time under one lock per opening, so a second opening is what lets the checks
 * overlap the imports, and it reads the key as any later program will, from the committed files.
 * When no such process answers, the restore makes the same check itself.
 *
 * NSS-touching; the process side uses GLib's spawn API and pipes. */
#pragma once

#include <glib.h>

#include <caback/db.h>
#include <caback/keyid.h>

#include <keyhi.h>

G_BEGIN_DECLS

typedef enum {
    CABACK_STORED_KEY_PAIRS,      /* the key signed and the certificate's public key verified it */
    CABACK_STORED_KEY_NO_PAIR,    /* the key signed, but the signature does not verify */
    CABACK_STORED_KEY_FAILED,     /* the check could not be made; the message says why */
    CABACK_STORED_KEY_UNANSWERED, /* no checker process answered: check in this process */
} CabackStoredKeyVerdict;

/* Sign a random value with @priv and verify it with @pub: TRUE with *@pairs set when the check
 * was made (the signature length comes from @pub, so that nothing is read from @priv's token
 * before the signature itself); FALSE with @error set when it could not be made at all. */
gboolean caback_key_pairs_with(SECKEYPrivateKey *priv, SECKEYPublicKey *pub, gboolean *pairs,
                               void *wincx, GError **error);

/* The check on @db, in this process: the private key with CKA_ID @id must pair with the
 * certificate @cert_der. Never UNANSWERED; *@message (FAILED) is a sentence, caller frees. */
CabackStoredKeyVerdict caback_stored_key_check_here(CabackDb *db, const CabackKeyId *id,
                                                    GBytes *cert_der, char **message);

typedef struct CabackStoredKeyChecker CabackStoredKeyChecker;

/* Start "@exe check-stored-keys" on @db's folder with @db's password source (a file or an
 * environment variable; it never prompts). NULL with @error set when it cannot: @db is not an
 * sql: database on NSS's own token, or its password was typed at a prompt, or the program does
 * not start. The caller must ignore SIGPIPE (a checker that died must not kill the restore). */
CabackStoredKeyChecker *caback_stored_key_checker_start(const char *exe, const CabackDb *db,
                                                        GError **error);

/* Ask the checker about the key with CKA_ID @id and the certificate @cert_der; @ticket
 * (chosen by the caller, unique) names the answer. Requests made once the checker is gone are
 * answered UNANSWERED. */
void caback_stored_key_checker_submit(CabackStoredKeyChecker *checker, guint ticket,
                                      const CabackKeyId *id, GBytes *cert_der);

/* Wait for the answer about @ticket. UNANSWERED when the checker stopped (or never started its
 * work) before answering; *@message as for caback_stored_key_check_here. */
CabackStoredKeyVerdict caback_stored_key_checker_wait(CabackStoredKeyChecker *checker,
                                                      guint ticket, char **message);

/* Why the checker stopped helping before the restore was done with it ("fatal" reason, died,
 * ...), or NULL. Its standard error goes nowhere: this is how its reasons are known. */
const char *caback_stored_key_checker_problem(const CabackStoredKeyChecker *checker);

/* Close the checker's input (it ends) and wait for it. NULL is allowed. */
void caback_stored_key_checker_free(CabackStoredKeyChecker *checker);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackStoredKeyChecker, caback_stored_key_checker_free)

/* The checker's side: read requests from @in, answer on @out, until @in ends. Used by
 * "caback check-stored-keys"; @db is that process's own read-only opening. */
void caback_stored_key_checker_serve(CabackDb *db, FILE *in, FILE *out);

G_END_DECLS
