/* Names that come from files (a PKCS#12 bag's friendlyName) shown for what they are. A name with
 * control characters, bidi overrides, an embedded NUL or an invalid encoding could pass for
 * another name on a terminal ("caSigningCert cert-pki-ca" followed by U+202E and a reversed
 * tail), or be cut short by C code at its NUL. Such a name is shown escaped everywhere (list, the
 * restore plan, logs, JSON) and is never used as an NSS nickname as it is. Pure: no NSS. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* What makes a name unsafe to show or to use as a nickname (a bit set; 0: nothing). */
typedef enum {
    CABACK_NAME_CONTROL = 1 << 0, /* control characters: U+0000-U+001F (except as NUL below),
                                     U+007F-U+009F */
    CABACK_NAME_BIDI = 1 << 1,    /* bidi overrides and isolates U+202A-U+202E, U+2066-U+2069,
                                     and the marks U+200E, U+200F, U+061C */
    CABACK_NAME_NUL = 1 << 2,     /* an embedded NUL (trailing NULs, a terminator, are dropped
                                     and not counted) */
    CABACK_NAME_INVALID = 1 << 3, /* invalid UTF-8, or an unpaired UTF-16 surrogate */
} CabackNameFlaw;

/* Decode a name of @len bytes in UTF-8 (@utf16 FALSE) or in UTF-16 big-endian / UCS-2 as a
 * BMPString holds it (@utf16 TRUE; an odd last byte counts as invalid). Trailing NULs are
 * dropped. Returns the name as it is shown: the name itself when it has no flaw, otherwise its
 * escaped form, in which each flaw is written out (NUL and other C0 controls and invalid bytes as
 * "\xNN", other characters as "\uNNNN", e.g. "\u202e") and a backslash as "\\", so that the
 * shown form is printable UTF-8 and never cut short. *@flaws (may be NULL) receives the
 * CabackNameFlaw bits. When @cleaned is not NULL it receives a name usable as a nickname: the
 * name with each flaw replaced by '_' (a copy of the name when it has none). Never fails;
 * caller frees. */
char *caback_name_decode(const guint8 *data, gsize len, gboolean utf16, guint *flaws,
                         char **cleaned);

/* caback_name_decode of the NUL-terminated UTF-8 string @name (NULL gives NULL). */
char *caback_name_escape(const char *name, guint *flaws);

/* @text (NUL-terminated) for a log line: invalid UTF-8 and bidi controls escaped as above,
 * everything else (newlines included) left as it is. NULL gives NULL. Caller frees. */
char *caback_name_escape_for_log(const char *text);

/* What @flaws means, for messages: e.g. "an embedded NUL and bidi override characters".
 * Caller frees; "" for 0. */
char *caback_name_flaws_text(guint flaws);

G_END_DECLS
