/* What the three files of caback restore share and nothing else uses: restore-facts.c (the facts
 * of a file), restore-plan.c (the decisions against a database) and restore-apply.c (the import
 * and its undo journal); and verify.c, whose drill is a restore into a temporary database. Not
 * installed, not part of the library's contract. */
#pragma once

#include <caback/restore.h>

#include <keyhi.h>
#include <pk11pub.h>

G_BEGIN_DECLS

/* @len bytes of @data as hex digits (upper or lower case), @separator (may be NULL) between
 * bytes; caller frees. */
char *caback_restore_hex_bytes(const guint8 *data, gsize len, const char *separator,
                               gboolean upper);

/* The value NSS derives a key's CKA_ID from (RSA modulus, EC point...), or NULL for a key type
 * it derives none from. */
GBytes *caback_restore_public_value_of(const SECKEYPublicKey *pub);

/* *@id = the key ID NSS gives a key with public value @value (PK11_MakeIDFromPubKey); FALSE
 * when NSS computes none. */
gboolean caback_restore_id_of_public_value(GBytes *value, CabackKeyId *id);

/* " (\"name\")" after a bag number in messages, or "" when the bag has no friendlyName; caller
 * frees. */
char *caback_restore_bag_label(const CabackP12Attributes *attrs);

/* Key bag @k decrypted into a session object of NSS's internal slot, only to learn its public
 * half; NULL with @error when it cannot be decrypted. Caller destroys it. */
SECKEYPrivateKey *caback_restore_probe_key(CabackRestorePlan *plan, CabackRestoreKey *k,
                                           GError **error);

/* Free the lookups caback_restore_plan made (NULL is allowed). */
void caback_restore_planning_free(struct CabackRestorePlanning *p);

/* TRUE when trust string @flags stores anything: "u" is never stored (NSS computes it from the
 * key). */
gboolean caback_restore_stores_trust(const char *flags);

/* The CKA_IDs of the public key objects stored on @slot, as a set of GBytes (caller unrefs). */
GHashTable *caback_restore_stored_public_key_ids(PK11SlotInfo *slot);

G_END_DECLS
