/* caback error domain: every failure in the library is a GError in CABACK_ERROR with one of
 * these codes; the command maps the code to its exit status (see caback_error_exit_code). */
#pragma once

#include <glib.h>

#include <stdarg.h>

G_BEGIN_DECLS

#define CABACK_ERROR (caback_error_quark())
GQuark caback_error_quark(void);

typedef enum {
    CABACK_ERROR_FAILED,         /* anything else: exit 1 */
    CABACK_ERROR_USAGE,          /* bad options or arguments: exit 2 */
    CABACK_ERROR_BAD_PASSWORD,   /* wrong database password, token PIN or PKCS#12 password: exit 3 */
    CABACK_ERROR_CONFLICT,       /* refused because something already exists: exit 4 */
    CABACK_ERROR_NOT_EXPORTABLE, /* a private key cannot leave its token: exit 5 */
    CABACK_ERROR_NOT_FOUND,      /* no such nickname, key, token, file: exit 1 */
    CABACK_ERROR_DATABASE,       /* the NSS database cannot be opened or used: exit 1 */
    CABACK_ERROR_PKCS12,         /* a PKCS#12 file is malformed or unsupported: exit 1 */
    CABACK_ERROR_CSCFG,          /* a CS.cfg file cannot be parsed or repaired: exit 1 */
    CABACK_ERROR_IO,             /* reading or writing a file failed: exit 1 */
    CABACK_ERROR_NO_PASSWORD,    /* a password is needed but no source can give one: exit 1 */
    CABACK_ERROR_CHANGES_NEEDED, /* a check (--dry-run) found something a real run would change:
                                  * exit 6 */
} CabackErrorCode;

/* Exit statuses, documented in caback(1). */
enum {
    CABACK_EXIT_OK = 0,
    CABACK_EXIT_FAILURE = 1,
    CABACK_EXIT_USAGE = 2,
    CABACK_EXIT_BAD_PASSWORD = 3,
    CABACK_EXIT_CONFLICT = 4,
    CABACK_EXIT_NOT_EXPORTABLE = 5,
    CABACK_EXIT_CHANGES_NEEDED = 6,
};

/* The name --json gives the kind of @error ("usage", "bad_password", "conflict"...; "failed"
 * for an error outside the caback domain), or NULL when @error is NULL. Static string. */
const char *caback_error_code_name(const GError *error);

/* The process exit status for @error (0 when @error is NULL). */
int caback_error_exit_code(const GError *error);

/* Set @error from the current NSS/NSPR error (PORT_GetError), which must be read right after the
 * failing call. The message is the formatted text followed by NSS's error name and description,
 * e.g. "cannot open database /x: SEC_ERROR_BAD_DATABASE (security library: bad database.)".
 * SEC_ERROR_BAD_PASSWORD becomes CABACK_ERROR_BAD_PASSWORD whatever @code says. */
void caback_error_set_nss(GError **error, CabackErrorCode code, const char *format, ...)
    G_GNUC_PRINTF(3, 4);

/* Like caback_error_set_nss for an explicit NSPR/NSS error number @nss_error. */
void caback_error_set_nss_code(GError **error, CabackErrorCode code, int nss_error,
                               const char *format, ...) G_GNUC_PRINTF(4, 5);

/* A usage error of the front end's verb @verb: CABACK_ERROR_USAGE with the formatted text
 * followed by " (see: caback help VERB)". Returns FALSE, for "return caback_error_usage(...)". */
gboolean caback_error_usage(GError **error, const char *verb, const char *format, ...)
    G_GNUC_PRINTF(3, 4);
gboolean caback_error_usage_valist(GError **error, const char *verb, const char *format,
                                   va_list args) G_GNUC_PRINTF(3, 0);

/* "SEC_ERROR_X (text)" for an NSS error number, or "unknown NSS error N"; caller frees. */
char *caback_nss_error_describe(int nss_error);

G_END_DECLS
