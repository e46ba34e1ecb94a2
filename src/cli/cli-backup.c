/* caback backup's report as the command shows it: what will be written (before the password is
 * asked), and the summary of what was written and verified, as text or as the --json object;
 * the hooks that show a run. cmd-backup.c parses the options and runs the backup. */
#include "config.h"

#include "cli-backup.h"
#include "cli-log.h"
#include "cli.h"


static void append_key_lines(GString *out, const CabackBackupSelection *sel)
{
    for (guint i = 0; i < sel->certs->len; i++) {
        const CabackBackupCert *c = sel->certs->pdata[i];
        if (c->key != NULL) {
            g_autofree char *hex = caback_key_info_nss_id(c->key->info);
            g_autofree char *dogtag = caback_key_info_dogtag_id(c->key->info);
            g_string_append_printf(out, "  %s\n      key ID %s (CS.cfg form %s), trust %s\n",
                                   c->nickname != NULL ? c->nickname : c->subject, hex,
                                   dogtag != NULL ? dogtag : "-", c->trust);
        } else
            g_string_append_printf(out, "  %s\n      %s, no key, trust %s\n",
                                   c->nickname != NULL ? c->nickname : "(no nickname)",
                                   c->selected ? "certificate" : "issuer certificate", c->trust);
        if (c->nickname == NULL || c->key == NULL)
            g_string_append_printf(out, "      subject %s\n", c->subject);
    }
}

char *caback_cli_backup_selection_text(const CabackDb *db, const CabackBackupSelection *sel,
                                       const char *output)
{
    GString *out = g_string_new(NULL);

    g_string_append_printf(out,
                           "Backing up %u private key%s and %u certificate%s from token \"%s\" "
                           "of NSS database %s to %s:\n",
                           sel->keys->len, sel->keys->len == 1 ? "" : "s", sel->certs->len,
                           sel->certs->len == 1 ? "" : "s", sel->token_name, db->dir, output);
    append_key_lines(out, sel);
    return g_string_free(out, FALSE);
}

char *caback_cli_backup_summary_text(const CabackBackupRunOptions *o,
                                     const CabackBackupResult *s)
{
    const CabackBackupSelection *sel = s->selection;
    const char *keys_alg, *certs_alg, *mac;
    guint iterations = caback_backup_describe_options(&o->write, &keys_alg, &certs_alg, &mac);
    GString *out = g_string_new(NULL);

    g_string_append_printf(out, "Wrote %s (mode 0600): %u private key%s, %u certificate%s\n",
                           o->output, sel->keys->len, sel->keys->len == 1 ? "" : "s",
                           sel->certs->len, sel->certs->len == 1 ? "" : "s");
    append_key_lines(out, sel);
    if (sel->certs_only)
        g_string_append(out, "This file holds no private keys (--certs-only): it restores "
                             "certificates and trust flags only; the keys must come from the "
                             "HSM's own backup\n");
    if (s->verified && s->report.key_alg != NULL)
        g_string_append_printf(out, "Keys: %s\n", s->report.key_alg);
    else
        g_string_append_printf(out, "Keys: %s, %u iterations\n", keys_alg, iterations);
    if (s->verified && s->report.cert_alg != NULL)
        g_string_append_printf(out, "Certificates: %s\n", s->report.cert_alg);
    else
        g_string_append_printf(out, "Certificates: %s, %u iterations\n", certs_alg, iterations);
    if (s->verified && s->report.mac != NULL)
        g_string_append_printf(out, "MAC: %s\n", s->report.mac);
    else
        g_string_append_printf(out, "MAC: %s, %u iterations\n", mac, iterations);
    if (o->custody_threshold > 0)
        caback_cli_custody_text(out, o->custody_threshold, o->custodians, s->share_files);
    if (s->verified)
        g_string_append_printf(
            out,
            "Verified: read back with the password%s (MAC checked), %u key%s decrypted and "
            "matched to %s certificate%s by a test signature, %u certificate%s with their "
            "nicknames, key IDs and trust flags\n",
            o->custody_threshold > 0 ? " rebuilt from the shares" : "", s->report.keys,
            s->report.keys == 1 ? "" : "s",
            s->report.keys == 1 ? "its" : "their", s->report.keys == 1 ? "" : "s",
            s->report.certs, s->report.certs == 1 ? "" : "s");
    else
        g_string_append(out, "Not verified (--no-verify)\n");
    if (s->sha256 != NULL)
        g_string_append_printf(out, "SHA-256: %s\n", s->sha256);
    if (s->latest_updated)
        g_string_append(out, "Recorded as the latest backup (for caback restore automatic)\n");
    else if (!s->verified)
        g_string_append(out, "Not recorded as the latest backup: only a verified backup is "
                             "(caback restore automatic will not pick this file)\n");
    return g_string_free(out, FALSE);
}

/* The selection is made: record its keys, show what will be written, print and record its
 * warnings. */
static void on_selected(const CabackBackupSelection *sel, gpointer data)
{
    const CabackCliBackupView *view = data;

    for (guint i = 0; i < sel->keys->len; i++) {
        const CabackBackupKey *k = sel->keys->pdata[i];
        caback_log_record_add_key(view->rec, k->nickname, k->info->id_valid ? &k->info->id : NULL);
    }
    if (!view->json) {
        g_autofree char *text = caback_cli_backup_selection_text(view->db, sel, view->output);
        caback_cli_info("%s", g_strchomp(text));
    }
    for (guint i = 0; i < sel->warnings->len; i++)
        caback_cli_log_warning(view->rec, "%s", (const char *)sel->warnings->pdata[i]);
}

/* A password asked at the prompt comes after the summary of what will be written. */
static CabackSecret *ask_p12_password(gpointer data, GError **error)
{
    (void)data;
    CabackPasswordSource source = {0};
    return caback_backup_password_read(&source, TRUE, error);
}

static void on_warning(const char *message, gpointer data)
{
    const CabackCliBackupView *view = data;
    caback_cli_log_warning(view->rec, "%s", message);
}

CabackBackupHooks caback_cli_backup_hooks(CabackCliBackupView *view)
{
    return (CabackBackupHooks){on_selected, ask_p12_password, on_warning, view};
}
