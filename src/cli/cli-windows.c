/* The Windows certutil forms "caback -backup PASSWORD FILE" and "caback -restore PASSWORD FILE":
 * the password is an argument, taken (copied and wiped in place) before the options are parsed;
 * the two arguments are checked for a swapped order, and no error quotes an argument that could
 * be the password. cmd-backup.c and cmd-restore.c parse the rest as their own options. */
#include "config.h"

#include "cli-log.h"
#include "cli-windows.h"

#include <string.h>

void caback_cli_windows_parse_error(GError **error, const char *verb)
{
    if (error == NULL || *error == NULL)
        return;
    g_clear_error(error);
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                "the Windows form is: caback -%s PASSWORD FILE [-d DIR] [-f FILE], with the "
                "password first; an option was not understood (not quoted here: it could be the "
                "password) (see: caback help %s)",
                verb, verb);
}

static gboolean names_p12(const char *arg)
{
    g_autofree char *lower = g_ascii_strdown(arg, -1);
    return g_str_has_suffix(lower, ".p12") || g_str_has_suffix(lower, ".pfx");
}

/* A CABACK_ERROR_USAGE error when @password_arg names a .p12/.pfx file and @file_arg does not
 * (the arguments are swapped, and the run would write or read a file named after the password);
 * @file_arg, likely the password then, is wiped in place. The message names only the file.
 * @alias is "-backup" or "-restore". */
static gboolean order_check(const char *alias, const char *password_arg, char *file_arg,
                            GError **error)
{
    if (!names_p12(password_arg) || names_p12(file_arg))
        return TRUE;
    /* Only the file's name is printed: the other argument is likely the password. */
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                "caback %s PASSWORD FILE: the first argument \"%s\" names a PKCS#12 file and the "
                "second does not, so they look swapped; the order is PASSWORD FILE. Nothing was "
                "done (better: caback %s with -w PASSWORD_FILE, which keeps the password off the "
                "command line)",
                alias, password_arg, alias + 1);
    caback_secret_wipe(file_arg, strlen(file_arg));
    return FALSE;
}

/* The password @argv[1] (@what: what it is, for its errors) into *@password: copied, then wiped
 * in place (/proc/PID/cmdline, what ps shows, reads this very memory), and dropped from @argv
 * (NULL-terminated at *@argc). */
static gboolean take_password(int *argc, char **argv, const char *what, CabackSecret **password,
                              GError **error)
{
    /* The one PKCS#12 password rule: the argument is copied, then wiped in place. */
    CabackPasswordSource source = {.argument = argv[1]};
    if ((*password = caback_p12_password_read(&source, what, FALSE, error)) == NULL)
        return FALSE;
    memmove(&argv[1], &argv[2], (gsize)(*argc - 1) * sizeof *argv);
    (*argc)--;
    return TRUE;
}

gboolean caback_cli_windows_backup_password(int *argc, char **argv, CabackSecret **password,
                                            GError **error)
{
    if (*argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "--help-all") == 0)
        return TRUE;
    return take_password(argc, argv, "password for the new PKCS#12 file", password, error);
}

gboolean caback_cli_windows_backup_file(int argc, char **argv, const CabackSecret *password,
                                        const CabackCliP12Password *p12, char **output,
                                        CabackLogRecord *rec, GError **error)
{
    /* No argument is quoted here: a misplaced password could be any of them. */
    if (password == NULL || argc != 2)
        return caback_cli_usage_error(error, "backup",
                                      "the Windows form is: caback -backup PASSWORD FILE [-d DIR] "
                                      "[-f FILE], with the password first");
    /* Swapped: FILE is the password; it is wiped from the command line, never kept, and the log,
     * which records the output, never sees it. */
    if (!order_check("-backup", password->data, argv[1], error))
        return FALSE;
    caback_cli_log_warning(
        rec, "a password given on the command line can be seen by other users of this "
             "machine (ps, /proc) and may stay in the shell history; prefer: caback "
             "backup -o FILE, with -w FILE, --p12-password-env VAR or the prompt");
    if (*output != NULL || p12->file != NULL || p12->env != NULL)
        return caback_cli_usage_error(error, "backup",
                                      "the Windows form caback -backup PASSWORD FILE takes the "
                                      "password and the file as arguments; -o, -w and "
                                      "--p12-password-env belong to caback backup");
    *output = g_strdup(argv[1]);
    return TRUE;
}

gboolean caback_cli_windows_restore_args(int *argc, char ***argv, GPtrArray *owned, char ***array,
                                         CabackSecret **password, GError **error)
{
    /* The password may start with '-'; the file must not (that is an option: a misuse). */
    if (*argc < 3 || (*argv)[2][0] == '-') {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "usage: caback -restore PASSWORD FILE [-d DIR] (better: caback restore -i "
                    "FILE -w PASSWORD_FILE, which keeps the password off the command line)");
        return FALSE;
    }
    if (!order_check("-restore", (*argv)[1], (*argv)[2], error) ||
        !take_password(argc, *argv, "PKCS#12 password", password, error))
        return FALSE;
    caback_cli_warning("a password given on the command line can be seen by other users (ps, "
                       "/proc) and stays in the shell history; use caback restore -i FILE -w "
                       "PASSWORD_FILE instead");

    /* "-restore FILE [OPTIONS]" is left: "restore -i FILE [OPTIONS]". */
    g_ptr_array_add(owned, g_strdup("restore"));
    g_ptr_array_add(owned, g_strdup("-i"));
    for (int i = 1; i < *argc; i++)
        g_ptr_array_add(owned, g_strdup((*argv)[i]));
    *argc = (int)owned->len;
    *array = g_new0(char *, owned->len + 1);
    memcpy(*array, owned->pdata, owned->len * sizeof(char *));
    *argv = *array;
    return TRUE;
}

gboolean caback_cli_windows_restore_alone(const CabackCliP12Password *p12, GError **error)
{
    if (caback_cli_p12_password_option(p12) == NULL)
        return TRUE;
    g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                "-restore PASSWORD FILE already gives the PKCS#12 password; drop -w / "
                "--p12-password-env");
    return FALSE;
}
