/* caback verify's report as the command shows it in text: the per-key and per-certificate lines
 * of -v, the summary line and the expiry warnings (the --json object is verify-json.c's).
 * cmd-verify.c parses the options and runs the drill. */
#include "config.h"

#include "cli-log.h"
#include "cli-verify.h"
#include "cli.h"



static char *date_text(GDateTime *t)
{
    return t != NULL ? g_date_time_format(t, "%Y-%m-%dT%H:%M:%SZ") : NULL;
}

static const char *display_name(const char *nickname, const char *subject)
{
    return nickname != NULL ? nickname : subject;
}

void caback_cli_verify_print_details(const CabackVerifyReport *r)
{
    for (guint i = 0; i < r->keys->len; i++) {
        const CabackVerifyKey *k = r->keys->pdata[i];
        g_autofree char *nss_id = k->id_known ? caback_keyid_to_token_hex(&k->id) : NULL;
        caback_cli_info("  key %s %s %u of \"%s\": %s", nss_id ? nss_id : "?", k->type,
                        k->bits, k->nickname ? k->nickname : "(no certificate)",
                        k->signs ? "signs, verified with its certificate"
                                 : (k->problem ? k->problem : "not checked"));
    }
    for (guint i = 0; i < r->certs->len; i++) {
        const CabackVerifyCert *c = r->certs->pdata[i];
        g_autofree char *na = date_text(c->not_after);
        caback_cli_info("  certificate \"%s\", serial 0x%s, trust %s, valid until %s: %s%s%s",
                        display_name(c->nickname, c->subject), c->serial_hex, c->trust,
                        na ? na : "?", c->chain_ok ? "chain verifies (" : "chain fails: ", c->chain,
                        c->chain_ok ? ")" : "");
    }
}

char *caback_cli_verify_summary_line(const CabackVerifyReport *r)
{
    GString *s = g_string_new(NULL);
    guint signing = 0;

    for (guint i = 0; i < r->keys->len; i++)
        signing += ((const CabackVerifyKey *)r->keys->pdata[i])->signs ? 1 : 0;
    g_string_append_printf(s,
                           "%s: %s: %u of %u key%s restored and signing for %s certificate%s, "
                           "%u certificate%s, chains %s",
                           r->path, r->restorable ? "restorable" : "NOT restorable", signing,
                           r->keys->len, r->keys->len == 1 ? "" : "s",
                           r->keys->len == 1 ? "its" : "their", r->keys->len == 1 ? "" : "s",
                           r->certs->len, r->certs->len == 1 ? "" : "s",
                           r->chain_ok ? "verified" : "NOT verified");
    if (r->compared)
        g_string_append_printf(s, ", %s against NSS database %s", r->stale ? "STALE" : "complete",
                               r->database);
    if (r->expiring->len > 0)
        g_string_append_printf(s, ", %u certificate%s expired or expiring", r->expiring->len,
                               r->expiring->len == 1 ? "" : "s");
    g_string_append_printf(s, " (SHA-256 %s)", r->sha256);
    return g_string_free(s, FALSE);
}

void caback_cli_verify_warn_expiring(const CabackVerifyReport *r, CabackLogRecord *rec)
{
    for (guint i = 0; i < r->expiring->len; i++) {
        const CabackVerifyCert *c = r->expiring->pdata[i];
        g_autofree char *na = date_text(c->not_after);
        if (c->days_left < 0)
            caback_cli_log_warning(rec, "certificate \"%s\" (serial 0x%s) expired on %s",
                                   display_name(c->nickname, c->subject), c->serial_hex, na);
        else
            caback_cli_log_warning(
                rec,
                "certificate \"%s\" (serial 0x%s) expires on %s, in %" G_GINT64_FORMAT " day%s",
                display_name(c->nickname, c->subject), c->serial_hex, na, c->days_left,
                c->days_left == 1 ? "" : "s");
    }
}
