/* The Windows certutil forms "caback -backup PASSWORD FILE" and "caback -restore PASSWORD FILE"
 * (cli-windows.c), for cmd-backup.c and cmd-restore.c. */
#pragma once

#include "cli.h"

#include <caback/log.h>
#include <caback/secret.h>

G_BEGIN_DECLS

/* The Windows forms put a password among the arguments: replace the option parser's error in
 * *@error (which quotes the argument it did not understand, and that could be a misplaced
 * password) by one that quotes no argument. */
void caback_cli_windows_parse_error(GError **error, const char *verb);

/* "caback -backup PASSWORD FILE [OPTIONS]", before the options are parsed (@argv[0] is
 * "-backup"; nothing is taken when it is alone or asks for help): PASSWORD into *@password, and
 * out of @argv (NULL-terminated at *@argc), so that a password starting with '-' is not an
 * option and nothing later can print it. */
gboolean caback_cli_windows_backup_password(int *argc, char **argv, CabackSecret **password,
                                            GError **error);

/* The rest of the Windows backup form, after the options are parsed: FILE, the one argument
 * left, into *@output, in the right order, without -o, -w or --p12-password-env (@p12); the
 * warning about a password on the command line goes to the run log @rec too. */
gboolean caback_cli_windows_backup_file(int argc, char **argv, const CabackSecret *password,
                                        const CabackCliP12Password *p12, char **output,
                                        CabackLogRecord *rec, GError **error);

/* "caback -restore PASSWORD FILE [OPTIONS]": takes PASSWORD into *@password (wiped in argv, so
 * that ps no longer shows it) and rewrites the rest as "restore -i FILE [OPTIONS]". The new
 * strings are kept in @owned and the new array in *@array (caller frees), since option parsing
 * drops pointers from the array it is given. */
gboolean caback_cli_windows_restore_args(int *argc, char ***argv, GPtrArray *owned, char ***array,
                                         CabackSecret **password, GError **error);

/* After parsing the rewritten form: the password is its own, so neither -w nor
 * --p12-password-env (@p12) may give another one. */
gboolean caback_cli_windows_restore_alone(const CabackCliP12Password *p12, GError **error);

G_END_DECLS
