/* The one rule for certificate names of the form TOKEN:nickname, as NSS
 * (PK11_FindCertsFromNickname) and Dogtag's CS.cfg write and read them: the text before the
 * first ':' names the token (an empty one is the internal token), the rest is the nickname; a
 * name without ':' is a nickname of the internal token. NSS also writes certificates of the
 * internal token as "NSS Certificate DB:nickname" in some paths, which certutil -n, pk12util -n
 * and CS.cfg take as the bare nickname. Pure string functions (src/lib/nickname.c, no NSS),
 * unit-tested in tests/unit/test-nickname.c; every part of caback that splits, strips or adds a
 * token prefix does it through them. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Split @name at its first ':'. TRUE when it has one: *@token (may be NULL) receives the text
 * before it (possibly empty: the internal token), *@nickname (may be NULL) the text after it.
 * FALSE when it has none: *@token is NULL and *@nickname a copy of @name. @name NULL: FALSE,
 * both NULL. Caller frees. */
gboolean caback_nickname_split(const char *name, char **token, char **nickname);

/* The nickname part of @name (after its first ':'), or @name itself when it has no ':'; a
 * pointer into @name (NULL for NULL). */
const char *caback_nickname_bare(const char *name);

/* @name without the prefix "@token:" when it has that prefix and a nickname follows it; else
 * @name itself. A pointer into @name; NULL or empty @token changes nothing. */
const char *caback_nickname_strip_token(const char *name, const char *token);

/* The name NSS finds @nickname by on token @token: @nickname itself on the internal token
 * (@internal TRUE), "TOKEN:nickname" on any other. Caller frees. */
char *caback_nickname_on_token(const char *nickname, const char *token, gboolean internal);

G_END_DECLS
