/* Owns the TOKEN:nickname rule (caback/nickname.h): splitting a certificate name into token and
 * nickname, stripping a token's prefix, and adding it. No NSS: plain functions over strings. */
#include "config.h"

#include <caback/nickname.h>

#include <string.h>

gboolean caback_nickname_split(const char *name, char **token, char **nickname)
{
    const char *colon = name != NULL ? strchr(name, ':') : NULL;

    if (token != NULL)
        *token = colon != NULL ? g_strndup(name, (gsize)(colon - name)) : NULL;
    if (nickname != NULL)
        *nickname = g_strdup(colon != NULL ? colon + 1 : name);
    return colon != NULL;
}

const char *caback_nickname_bare(const char *name)
{
    const char *colon = name != NULL ? strchr(name, ':') : NULL;

    return colon != NULL ? colon + 1 : name;
}

const char *caback_nickname_strip_token(const char *name, const char *token)
{
    gsize n = token != NULL ? strlen(token) : 0;

    if (name != NULL && n > 0 && strncmp(name, token, n) == 0 && name[n] == ':' &&
        name[n + 1] != '\0')
        return name + n + 1;
    return name;
}

char *caback_nickname_on_token(const char *nickname, const char *token, gboolean internal)
{
    if (internal)
        return g_strdup(nickname);
    return g_strdup_printf("%s:%s", token, nickname);
}
