/* Message digests of whole files through NSS (for signatures and the run log), and an NSS
 * context without any database for the moments when no database is open. */
#pragma once

#include <glib.h>

#include <nss.h>
#include <secoidt.h>

G_BEGIN_DECLS

/* Start NSS without a certificate or key database (memory only, read-only, no root module).
 * Several contexts may be open at once; close it with caback_nss_nodb_close. */
NSSInitContext *caback_nss_nodb_open(GError **error);

/* Shut @context down. Returns FALSE (CABACK_ERROR_FAILED) when NSS reports a leaked reference;
 * NULL is allowed. */
gboolean caback_nss_nodb_close(NSSInitContext *context, GError **error);

/* The name caback prints for the digest algorithm @alg ("SHA-256"), or NULL when caback does not
 * accept it for signatures (only SHA-256, SHA-384 and SHA-512 are accepted). */
const char *caback_digest_name(SECOidTag alg);

/* Called by caback_file_feed for each piece of a file; returns FALSE (setting @error) to stop. */
typedef gboolean (*CabackFeedFunc)(const guint8 *data, gsize len, gpointer user_data,
                                   GError **error);

/* Read @path from start to end in pieces and pass each to @feed, so that a large file never has
 * to fit in memory. Fails with CABACK_ERROR_NOT_FOUND when the file does not exist,
 * CABACK_ERROR_IO when it cannot be read, or with @feed's error. */
gboolean caback_file_feed(const char *path, CabackFeedFunc feed, gpointer user_data,
                          GError **error);

/* The digest of the whole contents of @path with @alg, read in pieces so that large files do
 * not need to fit in memory. NSS must be initialised. Fails with CABACK_ERROR_NOT_FOUND when the
 * file does not exist, CABACK_ERROR_IO when it cannot be read. */
GBytes *caback_digest_file(const char *path, SECOidTag alg, GError **error);

/* The SHA-256 of @path as 64 lower-case hex digits; starts a temporary NSS context of its own
 * when none is open (so it also works after the verb closed its database). */
char *caback_digest_file_sha256_hex(const char *path, GError **error);

/* The SHA-256 of @bytes as 64 lower-case hex digits (a temporary NSS context when
 * none is open). */
char *caback_digest_bytes_sha256_hex(GBytes *bytes, GError **error);

/* @bytes as lower-case hex; caller frees. */
char *caback_digest_to_hex(GBytes *bytes);

G_END_DECLS
