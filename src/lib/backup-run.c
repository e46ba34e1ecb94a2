/* The whole of one backup for a front end (caback_backup_run): choose the keys, write them to a
 * 0600 temporary file next to the output, read that file back and check it, link it into place
 * and record it as the latest backup. The command line only parses options into this call and
 * prints its result; the selection, the writer and the checks themselves are backup.c's. */
#include "config.h"

#include <caback/atomic-file.h>
#include <caback/backup.h>
#include <caback/custody-flow.h>
#include <caback/cscfg.h>
#include <caback/custody.h>
#include <caback/digest.h>
#include <caback/error.h>
#include <caback/log.h>
#include <caback/names.h>
#include <caback/nickname.h>
#include <caback/progress.h>
#include <caback/weak-key.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* The largest backup read back for verification. */
#define BACKUP_MAX_BYTES ((gsize)1 << 30)

void caback_backup_result_clear(CabackBackupResult *result)
{
    caback_backup_report_clear(&result->report);
    g_clear_pointer(&result->selection, caback_backup_selection_free);
    g_clear_pointer(&result->sha256, g_free);
    g_clear_pointer(&result->share_files, g_ptr_array_unref);
    g_clear_pointer(&result->share_digests, g_ptr_array_unref);
}

gboolean caback_backup_check_output(const char *output, gboolean force,
                                    gboolean allow_shared_folder, GError **error)
{
    if (g_file_test(output, G_FILE_TEST_IS_DIR))
        return caback_error_usage(error, "backup",
                                  "%s is a folder; give the file to write, e.g. %s/ca-backup.p12",
                                  output, output);
    g_autofree char *folder = g_path_get_dirname(output);
    if (!g_file_test(folder, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot write %s: folder %s does not exist; create it first", output, folder);
        return FALSE;
    }
    /* Checked again on the descriptor the file is written through; saying it now spares the
     * user the password and the key derivations. */
    if (!allow_shared_folder) {
        int dirfd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        gboolean private_ok = dirfd >= 0 && caback_folder_check_private(dirfd, folder, error);
        if (dirfd >= 0)
            close(dirfd);
        if (dirfd < 0)
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot open folder %s: %s", folder,
                        g_strerror(errno));
        if (!private_ok)
            return FALSE;
    }
    /* Checked again, atomically, when the file is put in place; saying it now spares the user
     * the key derivations. */
    if (!force && g_file_test(output, G_FILE_TEST_EXISTS)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_CONFLICT,
                    "%s already exists; it was left untouched (use --force to replace it)", output);
        return FALSE;
    }
    return TRUE;
}

/* Each key encrypted and checked moves the progress line (the front end's progress sink decides
 * whether it is shown). */
static void progress_line(const char *stage, guint index, guint total, const CabackBackupKey *key,
                          gpointer user_data)
{
    (void)user_data;
    g_autofree char *hex = caback_key_info_nss_id(key->info);
    g_autofree char *step = g_strdup_printf(
        "%s the private key of \"%s\" (%s)",
        strcmp(stage, "verify") == 0 ? "checking" : "encrypting",
        key->nickname != NULL ? key->nickname : key->cert->subject, hex);
    caback_progress_report(step, index, total);
}

/* Weak keys (weak-key.h) are backed up, but never silently: each certificate of the selection
 * whose public key is weak gets a warning of the selection (printed, logged, and in the JSON
 * summary's warnings). */
static void add_weak_key_warnings(CabackBackupSelection *sel)
{
    for (guint i = 0; i < sel->certs->len; i++) {
        const CabackBackupCert *bc = sel->certs->pdata[i];
        g_autofree char *reason = NULL;
        if (caback_weak_key_check_spki(&bc->cert->subjectPublicKeyInfo, &reason) ==
            CABACK_WEAK_KEY_NONE)
            continue;
        gboolean ca_trust =
            bc->trust != NULL && (strchr(bc->trust, 'C') != NULL || strchr(bc->trust, 'T') != NULL);
        g_autofree char *name = caback_name_escape(bc->nickname, NULL);
        g_ptr_array_add(sel->warnings,
                        g_strdup_printf("certificate \"%s\" (%s) has a weak key: %s%s",
                                        name != NULL ? name : "(no nickname)", bc->subject, reason,
                                        ca_trust ? "; caback restore will not give it CA trust "
                                                   "again without --allow-weak-keys"
                                                 : ""));
    }
}

/* Test hook: with CABACK_TEST_BACKUP_PAUSE=DIR, a backup that has verified its file (and computed
 * its digest) writes "paused TEMPFILE" to the FIFO DIR/paused and waits for a line on the FIFO
 * DIR/resume before putting the file in place, so that a test can swap files at exactly that
 * moment. Unset, nothing happens. */
static void test_pause(CabackAtomicFile *file)
{
    const char *dir = g_getenv("CABACK_TEST_BACKUP_PAUSE");
    if (dir == NULL || *dir == '\0')
        return;
    g_autofree char *paused = g_build_filename(dir, "paused", NULL);
    g_autofree char *resume = g_build_filename(dir, "resume", NULL);
    FILE *out = fopen(paused, "we");
    if (out != NULL) {
        const char *temp = caback_atomic_file_temp_path(file);
        fprintf(out, "paused %s\n", temp != NULL ? temp : "(unnamed)");
        fclose(out);
    }
    FILE *in = fopen(resume, "re");
    if (in != NULL) {
        char line[64];
        (void)fgets(line, sizeof line, in);
        fclose(in);
    }
}

/* Encode the selection into @file and, unless options->no_verify, check the bytes read back
 * from its descriptor and digest them into result->sha256. */
static gboolean write_and_verify(const CabackBackupRunOptions *o, CabackAtomicFile *file,
                                 CabackP12Writer *writer, const CabackSecret *password,
                                 const CabackSecret *secret, CabackShareSet **shares,
                                 CabackBackupResult *result, GError **error)
{
    g_autoptr(GBytes) bytes =
        caback_backup_encode_writer(o->db, result->selection, writer, progress_line, NULL, error);
    if (bytes == NULL)
        return FALSE;
    gsize len = 0;
    const void *data = g_bytes_get_data(bytes, &len);
    if (!caback_atomic_file_write(file, data, len, error))
        return FALSE;
    g_clear_pointer(&bytes, g_bytes_unref);
    if (o->no_verify)
        return TRUE;
    g_autoptr(GBytes) written = caback_atomic_file_read_back(file, BACKUP_MAX_BYTES, error);
    if (written == NULL)
        return FALSE;
    /* Custody: the shares are made for these bytes, and the file is checked with the password
     * rebuilt from them, proof that they open it. */
    g_autoptr(CabackSecret) rebuilt = NULL;
    if (secret != NULL) {
        *shares = caback_share_set_prepare(o->output, written, secret, o->custody_threshold,
                                           o->custodians, o->allow_shared_folder, &rebuilt, error);
        if (*shares == NULL)
            return FALSE;
        password = rebuilt;
    }
    if (!caback_backup_verify_bytes(result->selection, written, o->output, password, writer,
                                    progress_line, NULL, &result->report, error))
        return FALSE;
    result->verified = TRUE;
    /* Only a verified backup may become the one "restore automatic" picks; the digest lets it
     * (and verify) tell later that the file is still the one written. */
    result->sha256 = caback_digest_bytes_sha256_hex(written, error);
    return result->sha256 != NULL;
}

/* Write the selection to a temporary file next to the output, verify it there, then put it in
 * place. The temporary file stays open from writing to linking: the bytes verified are read
 * from that descriptor, the SHA-256 recorded is of those same bytes, and the file linked is that
 * descriptor's, so that nothing swapped in by name meanwhile is verified, recorded or put in
 * place. Putting it in place and recording it as the latest backup happen under a lock on the
 * folder, so that concurrent backups to one file record the file that ends up there. Any
 * failure removes the temporary file and leaves an existing output untouched. */
static gboolean write_backup(const CabackBackupRunOptions *o, const CabackBackupHooks *hooks,
                             CabackP12Writer *writer, const CabackSecret *password,
                             const CabackSecret *secret, CabackBackupResult *result, GError **error)
{
    CabackAtomicFlags flags = o->allow_shared_folder ? 0 : CABACK_ATOMIC_PRIVATE_FOLDER;
    g_autoptr(CabackShareSet) shares = NULL;

    g_autoptr(CabackAtomicFile) file =
        caback_atomic_file_open(o->output, 0600, (uid_t)-1, (gid_t)-1, flags, error);
    if (file == NULL ||
        !write_and_verify(o, file, writer, password, secret, &shares, result, error))
        return FALSE;
    test_pause(file);

    int lock = dup(caback_atomic_file_dirfd(file));
    if (lock >= 0)
        (void)flock(lock, LOCK_EX);
    /* The shares go in place first: an archive nobody could open must never replace one. */
    gboolean ok = shares == NULL || caback_share_set_commit(shares, o->force, error);
    if (ok && shares != NULL) {
        result->share_files = g_ptr_array_ref(caback_share_set_paths(shares));
        result->share_digests = g_ptr_array_ref(caback_share_set_digests(shares));
    }
    ok = ok && caback_atomic_file_commit(g_steal_pointer(&file), o->force, error);
    if (ok && result->sha256 != NULL && !o->not_latest) {
        g_autoptr(GError) e = NULL;
        result->latest_updated = caback_state_set_latest_backup(o->output, result->sha256, &e);
        if (!result->latest_updated && hooks->warning != NULL) {
            g_autofree char *message = g_strdup_printf(
                "%s was written and verified, but latest_backup could not be updated to point "
                "at it: %s",
                o->output, e->message);
            hooks->warning(message, hooks->data);
        }
    }
    if (lock >= 0)
        close(lock);
    return ok;
}

/* The writer of the file; its key derivations (and, unless no_verify, those that reading the
 * file back needs) start now, in the background. */
static CabackP12Writer *start_writer(const CabackBackupRunOptions *o, const CabackSecret *password,
                                     GError **error)
{
    CabackP12Writer *writer = caback_p12_writer_new(&o->write, password, error);
    if (writer != NULL && !o->no_verify)
        caback_p12_writer_prepare_verify(writer);
    return writer;
}

gboolean caback_backup_run(const CabackBackupRunOptions *options, const CabackBackupHooks *hooks,
                           CabackBackupResult *result, GError **error)
{
    static const CabackBackupHooks no_hooks = {0};
    const CabackSecret *password = options->password;
    g_autoptr(CabackSecret) asked = NULL;
    g_autoptr(CabackSecret) secret = NULL;
    g_autoptr(CabackP12Writer) writer = NULL;

    if (hooks == NULL)
        hooks = &no_hooks;
    *result = (CabackBackupResult){0};
    if (options->custody_threshold > 0) {
        if (password != NULL || options->no_verify || options->custodians == NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "a backup under custody makes its own password and is always verified");
            return FALSE;
        }
        if ((secret = caback_custody_secret_new(error)) == NULL)
            return FALSE;
        password = asked = caback_custody_password(secret);
    }
    /* With the password known already, the slow derivations run while the keys are chosen and
     * read; a password asked for comes after the front end has shown what will be written. */
    if (password != NULL && (writer = start_writer(options, password, error)) == NULL)
        return FALSE;
    result->selection =
        caback_backup_select_full(options->db, options->nicknames, options->certs_only, error);
    if (result->selection == NULL)
        return FALSE;
    add_weak_key_warnings(result->selection);
    if (hooks->selected != NULL)
        hooks->selected(result->selection, hooks->data);

    if (password == NULL) {
        if (hooks->ask_password == NULL) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "no password for the new PKCS#12 file %s", options->output);
            return FALSE;
        }
        if ((asked = hooks->ask_password(hooks->data, error)) == NULL)
            return FALSE;
        password = asked;
    }
    if (writer == NULL && (writer = start_writer(options, password, error)) == NULL)
        return FALSE;
    /* The writer holds NSS references: it is freed here, before the caller closes the
     * database. */
    return write_backup(options, hooks, writer, password, secret, result, error);
}

gboolean caback_backup_write_options(const char *mac, gboolean legacy, const char *iterations,
                                     const char *verb, CabackP12WriteOptions *w, GError **error)
{
    *w = (CabackP12WriteOptions){.profile = legacy ? CABACK_P12_LEGACY : CABACK_P12_MODERN,
                                 .mac = CABACK_P12_MAC_HMAC,
                                 .iterations = 0};
    if (mac != NULL) {
        if (g_ascii_strcasecmp(mac, "pbmac1") == 0)
            w->mac = CABACK_P12_MAC_PBMAC1;
        else if (g_ascii_strcasecmp(mac, "hmac") != 0)
            return caback_error_usage(error, verb,
                                      "--mac \"%s\" is not a MAC kind; use --mac hmac (the "
                                      "default) or --mac pbmac1",
                                      mac);
    }
    if (legacy && w->mac == CABACK_P12_MAC_PBMAC1)
        return caback_error_usage(error, verb,
                                  "--legacy and --mac pbmac1 cannot be combined: the readers "
                                  "--legacy is for (Windows Server 2012, Java 8, OpenSSL 1.0) "
                                  "do not know PBMAC1");
    if (iterations != NULL) {
        guint64 n = 0;
        if (!g_ascii_string_to_unsigned(iterations, 10, 1, 10000000, &n, NULL))
            return caback_error_usage(error, verb,
                                      "--iterations \"%s\" is not a whole number from 1 to "
                                      "10000000",
                                      iterations);
        w->iterations = (guint)n;
    }
    return TRUE;
}

/* certutil and pk12util write a certificate of the internal token as "internal:NICK" or "NSS
 * Certificate DB:NICK" too: -n takes those as NICK, wherever --token internal would be right. */
static gboolean strip_internal_token(char **nicknames, const char *token, GError **error)
{
    for (char **n = nicknames; *n != NULL; n++) {
        g_autofree char *prefix = NULL;
        if (!caback_nickname_split(*n, &prefix, NULL) || *prefix == '\0' ||
            !caback_cscfg_token_is_internal(prefix))
            continue;
        if (!caback_cscfg_token_is_internal(token))
            return caback_error_usage(error, "backup",
                                      "-n \"%s\" names a certificate of the internal token, "
                                      "but --token \"%s\" is selected; drop \"%s:\" or "
                                      "--token",
                                      *n, token, prefix);
        const char *bare = caback_nickname_bare(*n);
        memmove(*n, bare, strlen(bare) + 1);
    }
    return TRUE;
}

gboolean caback_backup_check_selection(const char *cscfg, gboolean include_sslserver,
                                       gboolean nicknames, GError **error)
{
    if (include_sslserver && cscfg == NULL)
        return caback_error_usage(error, "backup", "--include-sslserver goes with --cscfg CS.cfg");
    if (cscfg != NULL && nicknames)
        return caback_error_usage(error, "backup",
                                  "choose either -n NICKNAME or --cscfg CS.cfg, not both");
    return TRUE;
}

gboolean caback_backup_check_password(const CabackSecret *password, const char *where,
                                      GError **error)
{
    if (password->len > 0)
        return TRUE;
    return caback_error_usage(error, "backup",
                              "the PKCS#12 password %s is empty; a backup of private keys needs "
                              "a password, nothing was written",
                              where);
}

CabackSecret *caback_backup_password_read(const CabackPasswordSource *source, gboolean confirm,
                                          GError **error)
{
    g_autoptr(CabackSecret) password =
        caback_p12_password_read(source, "password for the new PKCS#12 file", confirm, error);
    if (password == NULL)
        return NULL;
    g_autofree char *where = source->file != NULL ? g_strdup_printf("in %s", source->file)
                             : source->env_var != NULL
                                 ? g_strdup_printf("in environment variable %s", source->env_var)
                                 : g_strdup("given at the prompt");
    if (!caback_backup_check_password(password, where, error))
        return NULL;
    return g_steal_pointer(&password);
}

gboolean caback_backup_nicknames(const char *cscfg, gboolean include_sslserver,
                                 const char *const *nicknames, const char *token, char ***out,
                                 GError **error)
{
    *out = NULL;
    if (cscfg != NULL) {
        *out = caback_backup_cscfg_nicknames(cscfg, include_sslserver, error);
        return *out != NULL;
    }
    if (nicknames == NULL)
        return TRUE;
    *out = g_strdupv((char **)nicknames);
    return strip_internal_token(*out, token, error);
}
