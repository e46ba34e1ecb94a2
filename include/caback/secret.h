/* Secrets (passwords, PINs) in buffers that wipe themselves, and the password sources every verb
 * accepts: a file, an environment variable, or a prompt on the terminal without echo. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A NUL-terminated secret. Its memory is locked in RAM where the system allows it (mlock) and
 * cleared with explicit_bzero before it is freed. */
typedef struct {
    char *data;       /* allocated by caback_secret_new only (pages of its own) */
    gsize len;
    gboolean locked;  /* mlock succeeded */
} CabackSecret;

/* A copy of the @len bytes at @data (NUL-terminated); never returns NULL. Free it with
 * caback_secret_free only. */
CabackSecret *caback_secret_new(const char *data, gsize len);
/* Wipe and free @secret; NULL is allowed. */
void caback_secret_free(CabackSecret *secret);
/* Wipe @len bytes at @p (a wrapper that the compiler cannot drop). */
void caback_secret_wipe(void *p, gsize len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CabackSecret, caback_secret_free)

/* The largest database password file (-f) caback reads: a password, or Dogtag's password.conf
 * (a few lines). */
#define CABACK_PASSWORD_FILE_MAX (64 * 1024)

/* Read the file @path that holds a secret, the way caback reads every such file: opened with
 * O_NOFOLLOW (a symbolic link is refused), O_NOCTTY and O_CLOEXEC; fstat on that descriptor must
 * show a regular file of at most @max bytes (one that grows while it is read is refused too) or a
 * named pipe, read up to @max bytes (waiting for its writer: a way to hand a secret over without
 * writing it to a disk); a folder or a device is refused before a byte is read. The bytes go
 * straight into a CabackSecret (locked where the system allows it, wiped when freed). Fails with
 * CABACK_ERROR_IO; the message says what is wrong with the file, and the caller prefixes what the
 * file is for (g_prefix_error). */
CabackSecret *caback_secret_read_file(const char *path, gsize max, GError **error);

/* A password for a throwaway NSS database (the restore drill's, reshare's): 24 bytes from the
 * kernel's generator as 48 hex digits, known only to this process. NULL with @error set when the
 * generator fails. */
CabackSecret *caback_secret_new_temporary_db_password(GError **error);

/* Where a password may come from, in this order of precedence: @file, then @env_var, then a prompt
 * when standard input or /dev/tty is a terminal. All fields may be NULL. */
typedef struct {
    const char *file;    /* -f FILE: first line, or Dogtag password.conf "name=value" lines;
                          * -w FILE (PKCS#12): the first line only, see caback_p12_password_read */
    const char *env_var; /* --password-env / --p12-password-env VAR: the variable's value */
    gboolean no_prompt;  /* never prompt (batch use) */
    char *argument;      /* PKCS#12 only: the Windows form's PASSWORD argument, blanked in place
                          * once copied */
} CabackPasswordSource;

/* Read the password for token @token_name ("internal" for the NSS internal token, or the token's
 * name, looked up as "hardware-<name>" in password.conf files) from @source. @what names the
 * password in prompts and errors ("password for the NSS database /x"). With @confirm, a prompt
 * asks twice and fails if the answers differ. Fails with CABACK_ERROR_NO_PASSWORD when no
 * source can give a password, CABACK_ERROR_IO when the file cannot be read. */
CabackSecret *caback_password_read(const CabackPasswordSource *source, const char *token_name,
                                   const char *what, gboolean confirm, GError **error);

/* The one rule for a PKCS#12 file's password, the same in every verb: from @source->argument
 * (the Windows form; the argument is copied, then wiped in place so that ps no longer shows it),
 * else the first line of @source->file without its line ending ("\n" or "\r\n"), nothing else
 * removed or parsed (no password.conf syntax: that is -f's), else the value of environment
 * variable @source->env_var as it is, else (unless @source->no_prompt) a prompt without echo,
 * asked twice with @confirm. @what names the password in prompts and errors. Fails with
 * CABACK_ERROR_NO_PASSWORD (nothing to read it from), CABACK_ERROR_IO (the file cannot be read)
 * or CABACK_ERROR_USAGE (the two typed entries differ). */
CabackSecret *caback_p12_password_read(const CabackPasswordSource *source, const char *what,
                                       gboolean confirm, GError **error);

/* The PKCS#12 password a password file holds: its first line without "\n" or "\r\n". */
CabackSecret *caback_p12_password_parse_file(const char *contents, gsize len);

/* Parse the contents of a database password file (-f): when it holds "name=value" lines of Dogtag's
 * password.conf ("internal=", "hardware-<token>="), the value for @token_name; otherwise its first
 * line (without the line end). @path is only used in error messages. Fails with
 * CABACK_ERROR_NOT_FOUND when a password.conf-style file has no entry for the token. */
CabackSecret *caback_password_parse_file(const char *contents, gsize len, const char *path,
                                         const char *token_name, GError **error);

/* Ask for a secret on the controlling terminal without echo. Fails with
 * CABACK_ERROR_NO_PASSWORD when there is no terminal. */
CabackSecret *caback_password_prompt(const char *prompt, GError **error);

/* TRUE when @name can be an environment variable's name as a shell writes it ([A-Za-z_] then
 * [A-Za-z0-9_]*). What is not may be a password given where the name was expected: it is then
 * neither printed nor logged. */
gboolean caback_env_name_valid(const char *name);

G_END_DECLS
