/* Wiping secret buffers, the one reader of files that hold a secret, and the password sources
 * (file, environment, terminal prompt). */
#include "config.h"

#include <caback/error.h>
#include <caback/secret.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

void caback_secret_wipe(void *p, gsize len)
{
    if (p != NULL && len > 0)
        explicit_bzero(p, len);
}

/* Secrets get pages of their own: mlock and munlock act on whole pages and do not nest, so a
 * secret sharing a page with another would unlock it when freed. */
static gsize secret_pages(gsize len, gsize *page)
{
    long size = sysconf(_SC_PAGESIZE);
    *page = size > 0 ? (gsize)size : 4096;
    return (len + 1 + *page - 1) / *page;
}

CabackSecret *caback_secret_new(const char *data, gsize len)
{
    CabackSecret *secret = g_new0(CabackSecret, 1);
    gsize page;
    gsize pages = secret_pages(len, &page);

    secret->data = g_aligned_alloc(pages, page, page);
    /* Kept out of swap where the system allows it (RLIMIT_MEMLOCK, CAP_IPC_LOCK); silently
     * best effort: the secret is wiped after use either way. */
    secret->locked = mlock(secret->data, pages * page) == 0;
    if (len > 0)
        memcpy(secret->data, data, len);
    secret->data[len] = '\0';
    secret->len = len;
    return secret;
}

void caback_secret_free(CabackSecret *secret)
{
    if (secret == NULL)
        return;
    gsize page;
    gsize pages = secret_pages(secret->len, &page);
    caback_secret_wipe(secret->data, secret->len + 1);
    if (secret->locked)
        munlock(secret->data, pages * page);
    g_aligned_free(secret->data);
    g_free(secret);
}

CabackSecret *caback_secret_new_temporary_db_password(GError **error)
{
    guint8 raw[24];
    gsize got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_FAILED,
                        "cannot make a password for the temporary database: %s", g_strerror(e));
            return NULL;
        }
        got += (gsize)n;
    }
    char hex[2 * sizeof raw + 1];
    for (gsize i = 0; i < sizeof raw; i++)
        g_snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    CabackSecret *secret = caback_secret_new(hex, 2 * sizeof raw);
    caback_secret_wipe(raw, sizeof raw);
    caback_secret_wipe(hex, sizeof hex);
    return secret;
}

/* Read the @len bytes of @fd into @buf; one byte more is asked for, so that a file that grew since
 * fstat is caught. The count read into *@got; FALSE with errno set (EFBIG when it grew). */
static gboolean read_exactly(int fd, char *buf, gsize len, gsize *got)
{
    char more;
    *got = 0;
    for (;;) {
        ssize_t n = *got < len ? read(fd, buf + *got, len - *got) : read(fd, &more, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return FALSE;
        if (n == 0)
            return TRUE;
        if (*got == len) {
            more = 0;
            errno = EFBIG;
            return FALSE;
        }
        *got += (gsize)n;
    }
}

/* The kernel's links to a descriptor this process already holds (-f or -w <(...), /dev/stdin):
 * the one kind of symbolic link a secret file may be, since no other user can swap its target. */
static gboolean names_own_descriptor(const char *path)
{
    return g_str_has_prefix(path, "/dev/fd/") || g_str_has_prefix(path, "/proc/self/fd/") ||
           g_str_equal(path, "/dev/stdin");
}

CabackSecret *caback_secret_read_file(const char *path, gsize max, GError **error)
{
    /* The failures g_file_get_contents reported before are worded as it worded them. */
    g_autofree char *shown = g_filename_display_name(path);
    /* Without O_NONBLOCK: a named pipe waits for its writer, as it always did. */
    int flags = O_RDONLY | O_NOCTTY | O_CLOEXEC | (names_own_descriptor(path) ? 0 : O_NOFOLLOW);
    int fd = open(path, flags);
    if (fd < 0 && errno == ELOOP) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "it is a symbolic link, and caback does not follow one to a secret: give "
                    "the file itself");
        return NULL;
    }
    if (fd < 0) {
        int e = errno;
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "Failed to open file \u201c%s\u201d: %s",
                    shown, g_strerror(e));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "Failed to get attributes of file \u201c%s\u201d: fstat() failed: %s", shown,
                    g_strerror(e));
        return NULL;
    }
    gboolean regular = S_ISREG(st.st_mode);
    if ((!regular && !S_ISFIFO(st.st_mode)) || (regular && (guint64)st.st_size > max)) {
        close(fd);
        if (!regular)
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "it is not a regular file (a secret is read from a regular file or a "
                        "named pipe, never from a folder or a device)");
        else
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "it has %" G_GUINT64_FORMAT " bytes, more than the %" G_GSIZE_FORMAT
                        " caback reads from a file holding a secret; name the file that holds it",
                        (guint64)st.st_size, max);
        return NULL;
    }
    /* A regular file is read to the size fstat gave, a pipe to the cap. */
    gsize size = regular ? (gsize)st.st_size : max;
    g_autofree char *zeros = g_malloc0(size + 1);
    CabackSecret *contents = caback_secret_new(zeros, size);
    gsize got = 0;
    gboolean ok = read_exactly(fd, contents->data, contents->len, &got);
    int e = errno;
    close(fd);
    if (!ok) {
        caback_secret_free(contents);
        if (e == EFBIG && regular)
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "it grew while it was read; run caback again once it is complete");
        else if (e == EFBIG)
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "more than the %" G_GSIZE_FORMAT " bytes caback reads from a file "
                        "holding a secret came out of it",
                        max);
        else
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "Failed to read from file \u201c%s\u201d: %s", shown, g_strerror(e));
        return NULL;
    }
    if (got < contents->len) {
        /* A pipe, or a file that became shorter since fstat: what was read, in a secret of
         * that size. */
        CabackSecret *exact = caback_secret_new(contents->data, got);
        caback_secret_free(contents);
        contents = exact;
    }
    return contents;
}

/* Length of the line starting at @p, without its "\n" or "\r\n". */
static gsize line_length(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', end - p);
    gsize n = (nl != NULL ? nl : end) - p;

    if (n > 0 && p[n - 1] == '\r')
        n--;
    return n;
}

/* A password.conf line is "internal=..." or "hardware-...=..." (other names Dogtag writes there,
 * such as "internaldb=" or "replicationdb=", are database passwords, not token passwords). */
static gboolean looks_like_password_conf(const char *contents, gsize len)
{
    const char *p = contents, *end = contents + len;

    while (p < end) {
        gsize n = line_length(p, end);
        if ((n > 9 && strncmp(p, "internal=", 9) == 0) ||
            (n > 9 && strncmp(p, "hardware-", 9) == 0 && memchr(p, '=', n) != NULL))
            return TRUE;
        const char *nl = memchr(p, '\n', end - p);
        p = nl != NULL ? nl + 1 : end;
    }
    return FALSE;
}

CabackSecret *caback_password_parse_file(const char *contents, gsize len, const char *path,
                                         const char *token_name, GError **error)
{
    const char *p = contents, *end = contents + len;

    if (!looks_like_password_conf(contents, len))
        return caback_secret_new(contents, line_length(contents, end));

    g_autofree char *key = NULL;
    if (token_name == NULL || g_strcmp0(token_name, "internal") == 0 ||
        g_strcmp0(token_name, "NSS Certificate DB") == 0 ||
        g_strcmp0(token_name, "NSS FIPS 140-2 Certificate DB") == 0)
        key = g_strdup("internal=");
    else
        key = g_strdup_printf("hardware-%s=", token_name);
    gsize keylen = strlen(key);

    while (p < end) {
        gsize n = line_length(p, end);
        if (n >= keylen && memcmp(p, key, keylen) == 0)
            return caback_secret_new(p + keylen, n - keylen);
        const char *nl = memchr(p, '\n', end - p);
        p = nl != NULL ? nl + 1 : end;
    }
    key[keylen - 1] = '\0';
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_NOT_FOUND,
                "password file %s has no line \"%s=...\" for token %s; add one, or give the "
                "password another way (--password-env, or the prompt)",
                path, key, token_name != NULL ? token_name : "internal");
    return NULL;
}

/* While echo is off, a signal that ends the process (Ctrl-C, Ctrl-\\, a hang-up, kill) must not
 * leave the user's terminal without echo: the handler puts the saved settings back and then lets
 * the signal do what it would have done. Only async-signal-safe calls are made there. */
static const int prompt_signals[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGTSTP};
static volatile sig_atomic_t prompt_fd = -1;
static struct termios prompt_saved;

static void prompt_signal(int sig)
{
    int saved_errno = errno;
    if (prompt_fd >= 0)
        tcsetattr(prompt_fd, TCSANOW, &prompt_saved);
    signal(sig, SIG_DFL);
    raise(sig);
    errno = saved_errno;
}

/* The controlling terminal, opened to ask for the @prompt, and its settings in *@saved; -1 with
 * @error set when there is none or its settings cannot be read. */
static int open_prompt_terminal(const char *prompt, struct termios *saved, GError **error)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 || !isatty(fd)) {
        if (fd >= 0)
            close(fd);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NO_PASSWORD,
                    "no terminal to ask for the %s; give it with -f FILE or --password-env VAR",
                    prompt);
        return -1;
    }
    if (tcgetattr(fd, saved) != 0) {
        close(fd);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NO_PASSWORD,
                    "cannot turn off echo on the terminal to ask for the %s: %s", prompt,
                    g_strerror(errno));
        return -1;
    }
    return fd;
}

/* The handlers prompt_signal replaced, back in place: echo is on again. */
static void prompt_signals_restore(const struct sigaction *before)
{
    prompt_fd = -1;
    for (gsize i = 0; i < G_N_ELEMENTS(prompt_signals); i++)
        sigaction(prompt_signals[i], &before[i], NULL);
}

/* Turn echo off on the terminal @fd (whose settings are @saved), with prompt_signal in place so
 * that a signal puts them back; the handlers it replaced go to @before. FALSE (handlers
 * restored) when echo cannot be turned off. */
static gboolean prompt_echo_off(int fd, const struct termios *saved, struct sigaction *before,
                                const char *prompt, GError **error)
{
    struct termios quiet = *saved;
    quiet.c_lflag &= ~(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    struct sigaction handler = {.sa_handler = prompt_signal};
    sigemptyset(&handler.sa_mask);
    prompt_saved = *saved;
    prompt_fd = fd;
    for (gsize i = 0; i < G_N_ELEMENTS(prompt_signals); i++)
        sigaction(prompt_signals[i], &handler, &before[i]);
    /* Without echo off the password would show on the screen: refuse rather than ask. */
    if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
        int e = errno;
        prompt_signals_restore(before);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NO_PASSWORD,
                    "cannot turn off echo on the terminal to ask for the %s: %s", prompt,
                    g_strerror(e));
        return FALSE;
    }
    return TRUE;
}

/* One typed line from @fd into @buf (at most @size - 1 bytes kept); its length, with
 * *@too_long set when more was typed than @buf holds. */
static gsize read_typed_line(int fd, char *buf, gsize size, gboolean *too_long)
{
    gsize n = 0;
    *too_long = FALSE;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n' || c == '\r')
            break;
        if (n < size - 1)
            buf[n++] = c;
        else
            *too_long = TRUE;
        c = 0;
    }
    return n;
}

CabackSecret *caback_password_prompt(const char *prompt, GError **error)
{
    struct termios saved;
    char buf[1024];

    int fd = open_prompt_terminal(prompt, &saved, error);
    if (fd < 0)
        return NULL;
    g_autofree char *text = g_strdup_printf("Enter the %s: ", prompt);
    if (write(fd, text, strlen(text)) < 0) {
        /* The prompt is a courtesy; reading still works. */
    }
    struct sigaction before[G_N_ELEMENTS(prompt_signals)];
    if (!prompt_echo_off(fd, &saved, before, prompt, error)) {
        close(fd);
        return NULL;
    }
    gboolean too_long = FALSE;
    gsize n = read_typed_line(fd, buf, sizeof buf, &too_long);
    tcsetattr(fd, TCSAFLUSH, &saved);
    prompt_signals_restore(before);
    if (write(fd, "\n", 1) < 0) {
        /* Only cosmetic. */
    }
    close(fd);

    /* A password cut short would be a different password: refuse it rather than guess. */
    if (too_long) {
        caback_secret_wipe(buf, sizeof buf);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NO_PASSWORD,
                    "the %s typed is longer than the %u characters the prompt takes; give it "
                    "from a password file or an environment variable instead (see caback help "
                    "VERB)",
                    prompt, (unsigned)(sizeof buf - 1));
        return NULL;
    }
    CabackSecret *secret = caback_secret_new(buf, n);
    caback_secret_wipe(buf, sizeof buf);
    return secret;
}

/* The @what held by environment variable @env_var, for every kind of secret: the whole value, or
 * CABACK_ERROR_NO_PASSWORD when the variable is not set (without showing what was given when it
 * is not a variable's name: it may be the password itself). */
static CabackSecret *read_env(const char *env_var, const char *what, GError **error)
{
    const char *value = g_getenv(env_var);

    if (value != NULL)
        return caback_secret_new(value, strlen(value));
    if (!caback_env_name_valid(env_var))
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NO_PASSWORD,
                    "the environment variable named for the %s is not set, and what was given "
                    "is not a variable's name (not shown: it may be the password itself); give "
                    "the NAME of a variable that holds it",
                    what);
    else
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NO_PASSWORD,
                    "environment variable %s is not set; it should hold the %s", env_var, what);
    return NULL;
}

CabackSecret *caback_password_read(const CabackPasswordSource *source, const char *token_name,
                                   const char *what, gboolean confirm, GError **error)
{
    if (source != NULL && source->file != NULL) {
        g_autoptr(CabackSecret) contents =
            caback_secret_read_file(source->file, CABACK_PASSWORD_FILE_MAX, error);
        if (contents == NULL) {
            g_prefix_error(error, "cannot read the %s from password file %s: ", what,
                           source->file);
            return NULL;
        }
        return caback_password_parse_file(contents->data, contents->len, source->file, token_name,
                                          error);
    }
    if (source != NULL && source->env_var != NULL)
        return read_env(source->env_var, what, error);
    if (source != NULL && source->no_prompt) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NO_PASSWORD,
                    "the %s is needed; give it with -f FILE or --password-env VAR", what);
        return NULL;
    }

    g_autoptr(CabackSecret) first = caback_password_prompt(what, error);
    if (first == NULL)
        return NULL;
    if (confirm) {
        g_autofree char *again = g_strdup_printf("%s again", what);
        g_autoptr(CabackSecret) second = caback_password_prompt(again, error);
        if (second == NULL)
            return NULL;
        if (first->len != second->len || memcmp(first->data, second->data, first->len) != 0) {
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                        "the two entries of the %s differ; nothing was changed, run the command "
                        "again",
                        what);
            return NULL;
        }
    }
    return g_steal_pointer(&first);
}

/* Length of the first line, without its line ending: "\n", or "\r\n" (a "\r" that no "\n"
 * follows belongs to the password). */
static gsize first_line_length(const char *contents, gsize len)
{
    const char *nl = memchr(contents, '\n', len);
    if (nl == NULL)
        return len;
    gsize n = (gsize)(nl - contents);
    return n > 0 && contents[n - 1] == '\r' ? n - 1 : n;
}

CabackSecret *caback_p12_password_parse_file(const char *contents, gsize len)
{
    return caback_secret_new(contents, first_line_length(contents, len));
}

/* The longest first line a PKCS#12 password file may have: far beyond any password, short enough
 * that naming a large file by mistake is refused instead of read into memory. */
#define P12_PASSWORD_LINE_MAX 65536

/* The first line of @path (only as much of the file as that takes, so a pipe works too). */
/* Opens -w's FILE as caback_secret_read_file opens a secret: no symbolic link followed (but see
 * names_own_descriptor), and a regular file or a pipe, checked on the descriptor read. */
static int open_password_file(const char *path, const char *what, GError **error)
{
    int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | (names_own_descriptor(path) ? 0 : O_NOFOLLOW);
    int fd = open(path, flags);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "cannot read the %s from password file %s: it is a symbolic link, and "
                        "caback does not follow one to a secret: give -w the file itself",
                        what, path);
        else
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "cannot read the %s from password file %s: %s; check the name given to "
                        "-w",
                        what, path, g_strerror(e));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode) ||
                                 S_ISSOCK(st.st_mode))) {
        close(fd);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "cannot read the %s from password file %s: it is not a regular file (a "
                    "secret is read from a regular file or a pipe, never from a folder, a "
                    "terminal or a device); give -w the file that holds it",
                    what, path);
        return -1;
    }
    return fd;
}

static CabackSecret *read_first_line(const char *path, const char *what, GError **error)
{
    int fd = open_password_file(path, what, error);
    if (fd < 0)
        return NULL;
    char *buf = g_malloc(P12_PASSWORD_LINE_MAX + 1);
    gsize n = 0;
    gboolean line_ended = FALSE;
    while (n < P12_PASSWORD_LINE_MAX + 1 && !line_ended) {
        ssize_t r = read(fd, buf + n, P12_PASSWORD_LINE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            caback_secret_wipe(buf, P12_PASSWORD_LINE_MAX + 1);
            g_free(buf);
            g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                        "cannot read the %s from password file %s: %s", what, path,
                        g_strerror(e));
            return NULL;
        }
        if (r == 0)
            break;
        line_ended = memchr(buf + n, '\n', (gsize)r) != NULL;
        n += (gsize)r;
    }
    close(fd);
    CabackSecret *secret = NULL;
    if (first_line_length(buf, n) > P12_PASSWORD_LINE_MAX)
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO,
                    "the first line of password file %s is longer than %u bytes, so it is not "
                    "a password; give -w a file whose first line is the %s",
                    path, (unsigned)P12_PASSWORD_LINE_MAX, what);
    else
        secret = caback_p12_password_parse_file(buf, n);
    caback_secret_wipe(buf, P12_PASSWORD_LINE_MAX + 1);
    g_free(buf);
    return secret;
}

CabackSecret *caback_p12_password_read(const CabackPasswordSource *source, const char *what,
                                       gboolean confirm, GError **error)
{
    if (source != NULL && source->argument != NULL) {
        gsize len = strlen(source->argument);
        CabackSecret *secret = caback_secret_new(source->argument, len);
        caback_secret_wipe(source->argument, len);
        return secret;
    }
    if (source != NULL && source->file != NULL)
        return read_first_line(source->file, what, error);
    if (source != NULL && source->env_var != NULL)
        return read_env(source->env_var, what, error);
    if (source != NULL && source->no_prompt) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NO_PASSWORD,
                    "the %s is needed; give it with -w FILE or --p12-password-env VAR", what);
        return NULL;
    }
    /* The prompt is the same as the database password's; only the advice differs. */
    CabackPasswordSource prompt = {0};
    g_autoptr(GError) local = NULL;
    CabackSecret *secret = caback_password_read(&prompt, NULL, what, confirm, &local);
    if (secret == NULL && g_error_matches(local, CABACK_ERROR, CABACK_ERROR_NO_PASSWORD) &&
        g_str_has_prefix(local->message, "no terminal"))
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_NO_PASSWORD,
                    "no terminal to ask for the %s; give it with -w FILE or "
                    "--p12-password-env VAR",
                    what);
    else if (secret == NULL)
        g_propagate_error(error, g_steal_pointer(&local));
    return secret;
}

gboolean caback_env_name_valid(const char *name)
{
    if (name == NULL || !(g_ascii_isalpha(name[0]) || name[0] == '_'))
        return FALSE;
    for (const char *p = name + 1; *p != '\0'; p++)
        if (!(g_ascii_isalnum(*p) || *p == '_'))
            return FALSE;
    return TRUE;
}
