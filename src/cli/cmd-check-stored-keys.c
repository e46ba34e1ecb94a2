/* caback check-stored-keys: the second process of a restore (see include/caback/stored-key-check.h).
 * It opens the database read-only with its own NSS, never prompts, and answers on standard output
 * the requests the restore writes to its standard input, until that input ends. Not meant to be
 * run by hand, but harmless: it only reads the database and signs random test values. */
#include "config.h"

#include "cli.h"

#include <caback/stored-key-check.h>

#include <stdio.h>

gboolean caback_cmd_check_stored_keys(int argc, char **argv, GError **error)
{
    CabackCommonOptions common = {0};
    g_autoptr(GOptionContext) context = g_option_context_new(NULL);
    g_autoptr(GError) local = NULL;
    gboolean ok = FALSE;

    g_option_context_set_summary(
        context, "Used by caback restore: sign a test value with each key the restore stored, as "
                 "a second reader of the\ndatabase, and say whether the certificate's public key "
                 "verifies it. Reads requests on standard input,\nanswers on standard output; the "
                 "database is opened read-only and no password is ever asked for.");
    caback_cli_add_common(context, &common, CABACK_COMMON_DB);
    if (!caback_cli_parse(context, "check-stored-keys", &common, &argc, &argv, error))
        goto out;
    if (!caback_cli_no_arguments("check-stored-keys", argc, argv, error))
        goto out;

    CabackDbOptions options = {
        .dbdir = common.dbdir,
        .token = common.token,
        .module = common.module,
        .password = {.file = common.password_file,
                     .env_var = common.password_env,
                     .no_prompt = TRUE},
        .read_only = TRUE,
    };
    CabackDb *db = caback_db_open(&options, &local);
    if (db != NULL && !caback_db_login(db, &local)) {
        caback_db_close(db, NULL);
        db = NULL;
    }
    if (db == NULL) {
        /* The restore reads this line and checks its keys itself. */
        g_strdelimit(local->message, "\r\n", ' ');
        printf("fatal %s\n", local->message);
        fflush(stdout);
        g_propagate_error(error, g_steal_pointer(&local));
        goto out;
    }
    caback_stored_key_checker_serve(db, stdin, stdout);
    ok = caback_db_close(db, error);
out:
    caback_cli_common_clear(&common);
    return ok;
}
