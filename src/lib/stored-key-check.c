/* Checking the keys a restore stored: in this process, or in a second one ("caback
 * check-stored-keys") that reads the database from its files while the restore goes on. See
 * include/caback/stored-key-check.h and doc/design.md.
 *
 * The protocol between the two is lines of text on a pipe each way:
 *   restore -> checker: "TICKET KEYID CERT-BASE64" (KEYID: 40 hex digits, as certutil -K)
 *   checker -> restore: "ready" once the database is open, then per request
 *                       "TICKET pairs", "TICKET nopair" or "TICKET failed MESSAGE";
 *                       "fatal MESSAGE" when it cannot work at all.
 * Nothing secret crosses it: the checker reads the database password from the same file or
 * environment variable as the restore. */
#include "config.h"

#include <caback/error.h>
#include <caback/keys.h>
#include <caback/nss-util.h>
#include <caback/stored-key-check.h>

#include <cert.h>
#include <certdb.h>
#include <errno.h>
#include <glib-unix.h>
#include <poll.h>
#include <pk11pub.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the check ---- */

gboolean caback_key_pairs_with(SECKEYPrivateKey *priv, SECKEYPublicKey *pub, gboolean *pairs,
                               void *wincx, GError **error)
{
    guint8 value[32];
    /* DSA signs a digest of the size of its subgroup; 20 bytes suits every DSA key. */
    unsigned int value_len = priv->keyType == dsaKey ? 20 : 32;

    *pairs = FALSE;
    if (PK11_GenerateRandom(value, sizeof value) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "cannot make a random test value");
        return FALSE;
    }
    /* From the certificate's public key: PK11_SignatureLen would read the modulus of a stored
     * key back from the key database, an authenticated attribute whose check costs a key
     * derivation. */
    int sig_len = (int)SECKEY_SignatureLen(pub);
    if (sig_len <= 0) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED,
                             "cannot use the %s key for a signature test",
                             caback_keys_type_name(priv->keyType));
        return FALSE;
    }
    g_autofree guint8 *sig_data = g_malloc0(sig_len);
    SECItem digest = {siBuffer, value, value_len};
    SECItem sig = {siBuffer, sig_data, (unsigned int)sig_len};
    if (PK11_Sign(priv, &sig, &digest) != SECSuccess) {
        caback_error_set_nss(error, CABACK_ERROR_FAILED, "test signature with the %s key failed",
                             caback_keys_type_name(priv->keyType));
        return FALSE;
    }
    *pairs = PK11_Verify(pub, &sig, &digest, wincx) == SECSuccess;
    return TRUE;
}

CabackStoredKeyVerdict caback_stored_key_check_here(CabackDb *db, const CabackKeyId *id,
                                                    GBytes *cert_der, char **message)
{
    SECItem item = {siBuffer, (unsigned char *)id->bytes, CABACK_KEYID_LEN};
    g_autoptr(SECKEYPrivateKey) key = PK11_FindKeyByKeyID(db->slot, &item, db);
    if (key == NULL) {
        g_autofree char *id_hex = caback_keyid_to_nss(id);
        *message = g_strdup_printf("NSS finds no private key with ID %s in token \"%s\"", id_hex,
                                   db->token_name);
        return CABACK_STORED_KEY_FAILED;
    }
    gsize len;
    const guint8 *data = g_bytes_get_data(cert_der, &len);
    SECItem der = {siBuffer, (unsigned char *)data, (unsigned int)len};
    g_autoptr(CERTCertificate) cert = __CERT_DecodeDERCertificate(&der, PR_TRUE, NULL);
    g_autoptr(SECKEYPublicKey) pub = cert != NULL ? CERT_ExtractPublicKey(cert) : NULL;
    g_autoptr(GError) error = NULL;
    if (pub == NULL) {
        caback_error_set_nss(&error, CABACK_ERROR_FAILED,
                             "cannot read the certificate's public key");
        *message = g_strdup(error->message);
        return CABACK_STORED_KEY_FAILED;
    }
    gboolean pairs = FALSE;
    if (!caback_key_pairs_with(key, pub, &pairs, db, &error)) {
        *message = g_strdup(error->message);
        return CABACK_STORED_KEY_FAILED;
    }
    return pairs ? CABACK_STORED_KEY_PAIRS : CABACK_STORED_KEY_NO_PAIR;
}

/* ---- the checker process, seen from the restore ---- */

typedef struct {
    CabackStoredKeyVerdict verdict;
    char *message;
} Answer;

static void answer_free(gpointer p)
{
    Answer *a = p;
    g_free(a->message);
    g_free(a);
}

/* Both pipes are non-blocking, and the restore reads answers whenever a request would wait: the
 * checker answers each request as it reads it, so a restore that only read answers at the end
 * filled the answer pipe (64 KiB: about 6,000 answers), the checker stopped reading, and both
 * waited for each other for ever. */
struct CabackStoredKeyChecker {
    GPid pid;
    int to_child;        /* -1 once closed */
    int from_child;      /* -1 once the checker is gone */
    GString *partial;    /* the start of an answer whose end has not come yet */
    GHashTable *answers; /* ticket -> Answer */
    char *problem;       /* why it stopped before its input ended, once known */
};

/* The longest answer line the protocol has: a ticket and a one-line error message. */
#define CHECKER_MAX_LINE 65536

/* In the checker, between fork and exec: it dies with the restore (kill -9 included), so that no
 * caback process outlives the one an administrator stopped. It only reads the database, so
 * nothing is left half-done. */
static void die_with_parent(gpointer data)
{
    pid_t parent = (pid_t)GPOINTER_TO_INT(data);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(1);
}

static void checker_gone(CabackStoredKeyChecker *checker)
{
    if (checker->from_child >= 0) {
        close(checker->from_child);
        checker->from_child = -1;
    }
    if (checker->to_child >= 0) {
        close(checker->to_child);
        checker->to_child = -1;
    }
}

/* The checker can help no more, because of @why (the first reason is kept). */
static void checker_stopped(CabackStoredKeyChecker *checker, const char *why)
{
    if (checker->problem == NULL)
        checker->problem = g_strdup(why);
    checker_gone(checker);
}

CabackStoredKeyChecker *caback_stored_key_checker_start(const char *exe, const CabackDb *db,
                                                        GError **error)
{
    if (exe == NULL || db == NULL || db->spec == NULL || !g_str_has_prefix(db->spec, "sql:") ||
        !PK11_IsInternalKeySlot(db->slot)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "the stored keys are checked by a second process only for an sql: database "
                    "on NSS's own token");
        return NULL;
    }
    if (PK11_NeedLogin(db->slot) && db->password_file == NULL && db->password_env == NULL) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "the database password was typed at a prompt, which a second process cannot "
                    "read again");
        return NULL;
    }
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_ptr_array_add(argv, (gpointer)exe);
    g_ptr_array_add(argv, (gpointer) "check-stored-keys");
    g_ptr_array_add(argv, (gpointer) "-d");
    g_ptr_array_add(argv, db->dir);
    if (db->password_file != NULL) {
        g_ptr_array_add(argv, (gpointer) "-f");
        g_ptr_array_add(argv, db->password_file);
    } else if (db->password_env != NULL) {
        g_ptr_array_add(argv, (gpointer) "--password-env");
        g_ptr_array_add(argv, db->password_env);
    }
    g_ptr_array_add(argv, NULL);

    GPid pid = 0;
    int in = -1, out = -1;
    g_autoptr(GError) local = NULL;
    if (!g_spawn_async_with_pipes(NULL, (char **)argv->pdata, NULL,
                                  /* its reasons come back on the protocol (see problem) */
                                  G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_CLOEXEC_PIPES |
                                      G_SPAWN_STDERR_TO_DEV_NULL,
                                  die_with_parent, GINT_TO_POINTER((int)getpid()), &pid, &in,
                                  &out, NULL, &local)) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                    "cannot start %s check-stored-keys: %s", exe, local->message);
        return NULL;
    }
    CabackStoredKeyChecker *checker = g_new0(CabackStoredKeyChecker, 1);
    checker->pid = pid;
    checker->to_child = in;
    checker->from_child = out;
    checker->partial = g_string_new(NULL);
    checker->answers = g_hash_table_new_full(NULL, NULL, NULL, answer_free);
    if (!g_unix_set_fd_nonblocking(in, TRUE, NULL) || !g_unix_set_fd_nonblocking(out, TRUE, NULL))
        checker_stopped(checker, g_strerror(errno));
    return checker;
}

/* Take answer line @line (a "fatal" line, or one that is not the protocol, stops the checker). */
static void take_answer(CabackStoredKeyChecker *checker, char *line)
{
    g_strchomp(line);
    char *end = NULL;
    guint64 ticket = g_ascii_strtoull(line, &end, 10);
    if (g_str_has_prefix(line, "fatal ") || end == line || *end != ' ') {
        /* "fatal": it could not open the database; anything else is not the protocol. Either
         * way nothing more will come. "ready" is the only other line. */
        if (strcmp(line, "ready") != 0)
            checker_stopped(checker, g_str_has_prefix(line, "fatal ")
                                         ? line + 6
                                         : "it wrote something that is not its protocol");
        return;
    }
    const char *rest = end + 1;
    Answer *a = g_new0(Answer, 1);
    if (strcmp(rest, "pairs") == 0) {
        a->verdict = CABACK_STORED_KEY_PAIRS;
    } else if (strcmp(rest, "nopair") == 0) {
        a->verdict = CABACK_STORED_KEY_NO_PAIR;
    } else if (g_str_has_prefix(rest, "failed ")) {
        a->verdict = CABACK_STORED_KEY_FAILED;
        a->message = g_strdup(rest + 7);
    } else {
        a->verdict = CABACK_STORED_KEY_UNANSWERED;
    }
    g_hash_table_replace(checker->answers, GUINT_TO_POINTER((guint)ticket), a);
}

/* Take the answers the checker has written so far, without waiting for more. */
static void read_answers(CabackStoredKeyChecker *checker)
{
    char buf[4096];

    while (checker->from_child >= 0) {
        ssize_t n = read(checker->from_child, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            checker_stopped(checker, n == 0 ? "it stopped before answering every request"
                                            : g_strerror(errno));
            return;
        }
        g_string_append_len(checker->partial, buf, n);
        /* Each whole line is taken where it lies; what follows the last one is kept. */
        GString *p = checker->partial;
        gsize start = 0;
        char *nl;
        while (checker->from_child >= 0 &&
               (nl = memchr(p->str + start, '\n', p->len - start)) != NULL) {
            *nl = '\0';
            take_answer(checker, p->str + start);
            start = (gsize)(nl - p->str) + 1;
        }
        g_string_erase(p, 0, (gssize)start);
        if (p->len > CHECKER_MAX_LINE)
            checker_stopped(checker, "it wrote something that is not its protocol");
    }
}

/* Wait until the checker has written something, or (@writing) can take more of a request. */
static void await_checker(CabackStoredKeyChecker *checker, gboolean writing)
{
    struct pollfd fds[2] = {
        {checker->from_child, POLLIN, 0},
        {writing ? checker->to_child : -1, POLLOUT, 0},
    };
    if (poll(fds, G_N_ELEMENTS(fds), -1) < 0 && errno != EINTR)
        checker_stopped(checker, g_strerror(errno));
    else if (fds[0].revents != 0)
        read_answers(checker);
}

void caback_stored_key_checker_submit(CabackStoredKeyChecker *checker, guint ticket,
                                      const CabackKeyId *id, GBytes *cert_der)
{
    if (checker == NULL || checker->to_child < 0)
        return;
    gsize len;
    const guint8 *data = g_bytes_get_data(cert_der, &len);
    g_autofree char *id_hex = caback_keyid_to_nss(id);
    g_autofree char *b64 = g_base64_encode(data, len);
    g_autofree char *line = g_strdup_printf("%u %s %s\n", ticket, id_hex, b64);
    gsize left = strlen(line);
    const char *p = line;
    while (left > 0 && checker->to_child >= 0) {
        ssize_t n = write(checker->to_child, p, left);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* The pipe is full: take the answers the checker may be waiting to write. */
            await_checker(checker, TRUE);
            continue;
        }
        if (n <= 0) {
            /* The checker died (EPIPE): what it did not answer is checked here. */
            g_autofree char *why = g_strdup_printf("it stopped (%s)", g_strerror(errno));
            checker_stopped(checker, why);
            return;
        }
        p += n;
        left -= (gsize)n;
    }
}

CabackStoredKeyVerdict caback_stored_key_checker_wait(CabackStoredKeyChecker *checker,
                                                      guint ticket, char **message)
{
    *message = NULL;
    if (checker == NULL)
        return CABACK_STORED_KEY_UNANSWERED;
    gpointer key = GUINT_TO_POINTER(ticket);
    while (!g_hash_table_contains(checker->answers, key) && checker->from_child >= 0)
        await_checker(checker, FALSE);
    Answer *a = g_hash_table_lookup(checker->answers, key);
    if (a == NULL)
        return CABACK_STORED_KEY_UNANSWERED;
    *message = g_strdup(a->message);
    return a->verdict;
}

const char *caback_stored_key_checker_problem(const CabackStoredKeyChecker *checker)
{
    return checker != NULL ? checker->problem : NULL;
}

void caback_stored_key_checker_free(CabackStoredKeyChecker *checker)
{
    if (checker == NULL)
        return;
    checker_gone(checker); /* its input ends: it shuts NSS down and exits */
    int status = 0;
    while (waitpid(checker->pid, &status, 0) < 0 && errno == EINTR)
        ;
    g_spawn_close_pid(checker->pid);
    g_hash_table_unref(checker->answers);
    g_string_free(checker->partial, TRUE);
    g_free(checker->problem);
    g_free(checker);
}

/* ---- the checker process itself ---- */

void caback_stored_key_checker_serve(CabackDb *db, FILE *in, FILE *out)
{
    char *line = NULL;
    size_t cap = 0;

    fputs("ready\n", out);
    fflush(out);
    while (getline(&line, &cap, in) > 0) {
        g_strchomp(line);
        g_auto(GStrv) f = g_strsplit(line, " ", 3);
        const char *verdict = NULL;
        g_autofree char *message = NULL;
        if (g_strv_length(f) != 3) {
            message = g_strdup("malformed request");
        } else {
            /* Exactly the 40 digits the restore writes: the parser's other forms (short,
             * signed, with colons) are for people, not for this protocol. */
            CabackKeyId id;
            gboolean id_ok =
                strspn(f[1], "0123456789abcdefABCDEF") == 2 * CABACK_KEYID_LEN &&
                f[1][2 * CABACK_KEYID_LEN] == '\0' && caback_keyid_parse(f[1], &id, NULL);
            gsize der_len = 0;
            g_autofree guint8 *der = g_base64_decode(f[2], &der_len);
            if (!id_ok || der_len == 0) {
                message = g_strdup("malformed request");
            } else {
                g_autoptr(GBytes) cert = g_bytes_new(der, der_len);
                CabackStoredKeyVerdict v =
                    caback_stored_key_check_here(db, &id, cert, &message);
                verdict = v == CABACK_STORED_KEY_PAIRS     ? "pairs"
                          : v == CABACK_STORED_KEY_NO_PAIR ? "nopair"
                                                           : NULL;
            }
        }
        if (verdict != NULL) {
            fprintf(out, "%s %s\n", f[0] != NULL ? f[0] : "0", verdict);
        } else {
            /* One line: a message never spans two. */
            for (char *c = message; c != NULL && *c != '\0'; c++)
                if (*c == '\n' || *c == '\r')
                    *c = ' ';
            fprintf(out, "%s failed %s\n", f[0] != NULL ? f[0] : "0", message);
        }
        fflush(out);
    }
    free(line);
}
