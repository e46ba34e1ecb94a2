/* The caback error domain and the mapping of NSS error numbers to words and exit codes. */
#include "config.h"

#include <caback/error.h>

#include <prerror.h>
#include <secerr.h>
#include <secport.h>
#include <sslerr.h>

G_DEFINE_QUARK(caback-error-quark, caback_error)

const char *caback_error_code_name(const GError *error)
{
    if (error == NULL)
        return NULL;
    if (error->domain == G_OPTION_ERROR)
        return "usage";
    if (error->domain != CABACK_ERROR)
        return "failed";
    switch ((CabackErrorCode)error->code) {
    case CABACK_ERROR_FAILED:
        return "failed";
    case CABACK_ERROR_USAGE:
        return "usage";
    case CABACK_ERROR_BAD_PASSWORD:
        return "bad_password";
    case CABACK_ERROR_CONFLICT:
        return "conflict";
    case CABACK_ERROR_NOT_EXPORTABLE:
        return "not_exportable";
    case CABACK_ERROR_NOT_FOUND:
        return "not_found";
    case CABACK_ERROR_DATABASE:
        return "database";
    case CABACK_ERROR_PKCS12:
        return "pkcs12";
    case CABACK_ERROR_CSCFG:
        return "cscfg";
    case CABACK_ERROR_IO:
        return "io";
    case CABACK_ERROR_NO_PASSWORD:
        return "no_password";
    case CABACK_ERROR_CHANGES_NEEDED:
        return "changes_needed";
    }
    return "failed";
}

int caback_error_exit_code(const GError *error)
{
    if (error == NULL)
        return CABACK_EXIT_OK;
    if (error->domain == G_OPTION_ERROR)
        return CABACK_EXIT_USAGE;
    if (error->domain != CABACK_ERROR)
        return CABACK_EXIT_FAILURE;
    switch ((CabackErrorCode)error->code) {
    case CABACK_ERROR_USAGE:
        return CABACK_EXIT_USAGE;
    case CABACK_ERROR_BAD_PASSWORD:
        return CABACK_EXIT_BAD_PASSWORD;
    case CABACK_ERROR_CONFLICT:
        return CABACK_EXIT_CONFLICT;
    case CABACK_ERROR_NOT_EXPORTABLE:
        return CABACK_EXIT_NOT_EXPORTABLE;
    case CABACK_ERROR_CHANGES_NEEDED:
        return CABACK_EXIT_CHANGES_NEEDED;
    default:
        return CABACK_EXIT_FAILURE;
    }
}

char *caback_nss_error_describe(int nss_error)
{
    const char *name = PR_ErrorToName(nss_error);
    const char *text = PR_ErrorToString(nss_error, PR_LANGUAGE_I_DEFAULT);

    if (name == NULL)
        return g_strdup_printf("unknown NSS error %d", nss_error);
    if (text == NULL || *text == '\0')
        return g_strdup(name);
    return g_strdup_printf("%s (%s)", name, text);
}

static void set_nss_valist(GError **error, CabackErrorCode code, int nss_error,
                           const char *format, va_list args) G_GNUC_PRINTF(4, 0);

static void set_nss_valist(GError **error, CabackErrorCode code, int nss_error,
                           const char *format, va_list args)
{
    g_autofree char *what = g_strdup_vprintf(format, args);
    g_autofree char *why = caback_nss_error_describe(nss_error);

    if (nss_error == SEC_ERROR_BAD_PASSWORD)
        code = CABACK_ERROR_BAD_PASSWORD;
    g_set_error(error, CABACK_ERROR, code, "%s: %s", what, why);
}

void caback_error_set_nss(GError **error, CabackErrorCode code, const char *format, ...)
{
    int nss_error = PORT_GetError();
    va_list args;

    va_start(args, format);
    set_nss_valist(error, code, nss_error, format, args);
    va_end(args);
}

void caback_error_set_nss_code(GError **error, CabackErrorCode code, int nss_error,
                               const char *format, ...)
{
    va_list args;

    va_start(args, format);
    set_nss_valist(error, code, nss_error, format, args);
    va_end(args);
}

gboolean caback_error_usage_valist(GError **error, const char *verb, const char *format,
                                   va_list args)
{
    g_autofree char *text = g_strdup_vprintf(format, args);

    g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE, "%s (see: caback help %s)", text, verb);
    return FALSE;
}

gboolean caback_error_usage(GError **error, const char *verb, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    caback_error_usage_valist(error, verb, format, args);
    va_end(args);
    return FALSE;
}
