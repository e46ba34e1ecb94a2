/* caback: the command table. Each verb lives in src/cli/cmd-<verb>.c; main() only dispatches,
 * prints the error a verb returns and turns it into the exit status. */
#include "config.h"

#include "cli.h"

#include <glib.h>
#include <locale.h>
#include <nss.h>
#include <prinit.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

typedef struct {
    const char *name;
    CabackCommandFunc handler;
    const char *summary;
    gboolean hidden; /* an internal helper: runs, and has help, but caback help does not list it */
} CabackCommand;

static const CabackCommand commands[] = {
    {"listkeys", caback_cmd_listkeys, "List the private keys of a token, as certutil -K does"},
    {"keyid", caback_cmd_keyid, "Convert key IDs between NSS and Dogtag CS.cfg forms"},
    {"fix-clone-ids", caback_cmd_fix_clone_ids,
     "Check and repair the cloning key IDs in a Dogtag CS.cfg"},
    {"backup", caback_cmd_backup,
     "Back up the CA's keys and certificates into one verified PKCS#12 file"},
    {"sign", caback_cmd_sign, "Sign a file (a backup) with a detached CMS signature"},
    {"verify-signature", caback_cmd_verify_signature,
     "Check a file's detached CMS signature (caback, cmsutil or openssl)"},
    {"list", caback_cmd_list, "Show what a PKCS#12 file holds (no database is touched)"},
    {"restore", caback_cmd_restore,
     "Restore a PKCS#12 file into an NSS database: plan first, all or nothing"},
    {"verify", caback_cmd_verify,
     "The restore drill: prove a backup restorable in a throwaway database"},
    {"share-open", caback_cmd_share_open,
     "Decrypt your share of a split backup password with your certificate's key"},
    {"reshare", caback_cmd_reshare,
     "New custodians and a new password for a backup under M-of-N custody"},
    {"check-stored-keys", caback_cmd_check_stored_keys,
     "(used by restore) Check the keys a restore stored, as a second reader", TRUE},
    {NULL, NULL, NULL}};

/* Windows certutil-style verbs, accepted for compatibility. */
static const struct {
    const char *alias;
    const char *verb;
} aliases[] = {{"-K", "listkeys"}, {"-backup", "backup"}, {"-restore", "restore"}, {NULL, NULL}};

static const CabackCommand *find_command(const char *name)
{
    for (int i = 0; aliases[i].alias != NULL; i++)
        if (strcmp(name, aliases[i].alias) == 0)
            name = aliases[i].verb;
    for (int i = 0; commands[i].name != NULL; i++)
        if (strcmp(name, commands[i].name) == 0)
            return &commands[i];
    return NULL;
}

static void print_usage(FILE *out)
{
    fprintf(out, "Usage: caback VERB [OPTIONS]\n"
                 "Back up, restore and repair the keys of a certificate authority.\n\n"
                 "Verbs:\n");
    for (int i = 0; commands[i].name != NULL; i++)
        if (!commands[i].hidden)
            fprintf(out, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nWindows certutil forms:");
    for (int i = 0; aliases[i].alias != NULL; i++)
        fprintf(out, " %s (= %s)", aliases[i].alias, aliases[i].verb);
    fprintf(out, "\n\n"
                 "caback help VERB     show the options of VERB\n"
                 "caback --version     show the version\n\n"
                 "Exit status: 0 success, 1 failure, 2 usage error, 3 wrong password or PIN,\n"
                 "4 refused because of a conflict, 5 a key cannot be exported, 6 changes needed.\n"
                 "caback help VERB lists the statuses of VERB; see caback(1).\n");
}

/* caback holds CA private keys and passwords: a core file would keep them on disk, and another
 * process of the same user could read them through ptrace or /proc/PID/mem. Before anything is
 * read, core dumps are turned off (RLIMIT_CORE 0, also for a core_pattern pipe, which the
 * kernel skips for a process that is not dumpable) and the process made not dumpable. Both are
 * best effort: there is nothing more to do when the system refuses. */
static void no_core_dumps(void)
{
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) {
        /* Best effort. */
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        /* Best effort. */
    }
}

/* --json anywhere among the options (not after "--"). */
static gboolean wants_json(int argc, char **argv)
{
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            return TRUE;
    return FALSE;
}

int main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;

    no_core_dumps();

    setlocale(LC_ALL, "");
    g_set_prgname("caback");
    /* Past a file size limit (ulimit -f) a write must fail with EFBIG, which caback reports with
     * the file's name and cleans up after, rather than kill caback halfway through. */
    signal(SIGXFSZ, SIG_IGN);

    if (argc < 2) {
        print_usage(stderr);
        return CABACK_EXIT_USAGE;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "--version") == 0 || strcmp(verb, "version") == 0) {
        /* The libraries it runs with, not those it was built against: what a bug report needs. */
        printf("caback %s\n", PACKAGE_VERSION);
        printf("NSS %s, NSPR %s, GLib %u.%u.%u\n", NSS_GetVersion(), PR_GetVersion(),
               glib_major_version, glib_minor_version, glib_micro_version);
        return CABACK_EXIT_OK;
    }
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 ||
        (strcmp(verb, "help") == 0 && argc == 2)) {
        print_usage(stdout);
        return CABACK_EXIT_OK;
    }
    if (strcmp(verb, "help") == 0) {
        const CabackCommand *cmd = find_command(argv[2]);
        if (cmd == NULL) {
            fprintf(stderr, "caback: unknown verb \"%s\"; run \"caback help\" for the list\n",
                    argv[2]);
            return CABACK_EXIT_USAGE;
        }
        g_autofree char *prgname = g_strdup_printf("caback %s", cmd->name);
        g_set_prgname(prgname);
        char *help_argv[] = {(char *)cmd->name, "--help", NULL};
        if (cmd->handler(2, help_argv, &error) || g_error_matches(error, CABACK_CLI_HELP, 0))
            return CABACK_EXIT_OK;
        fprintf(stderr, "caback %s: %s\n", cmd->name, error->message);
        return caback_error_exit_code(error);
    }

    /* With --json every outcome is one JSON object on standard output, usage errors too: it is
     * known before any verb parses its options. */
    caback_cli_json_mode = wants_json(argc, argv);
    const CabackCommand *cmd = find_command(verb);
    if (cmd == NULL) {
        g_set_error(&error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "unknown verb \"%s\"; run \"caback help\" for the list", verb);
        fprintf(stderr, "caback: %s\n", error->message);
        if (caback_cli_json_mode)
            caback_cli_json_finish(verb, error);
        return CABACK_EXIT_USAGE;
    }
    /* GOption's --help and error texts then say "caback VERB". */
    g_autofree char *prgname = g_strdup_printf("caback %s", cmd->name);
    g_set_prgname(prgname);
    gboolean ok = cmd->handler(argc - 1, argv + 1, &error);
    caback_cli_progress_clear();
    if (!ok && g_error_matches(error, CABACK_CLI_HELP, 0))
        return CABACK_EXIT_OK;
    if (!ok && error == NULL)
        g_set_error(&error, CABACK_ERROR, CABACK_ERROR_FAILED, "failed for an unknown reason");
    if (!ok)
        fprintf(stderr, "caback %s: %s\n", cmd->name, error->message);
    if (caback_cli_json_mode)
        caback_cli_json_finish(cmd->name, ok ? NULL : error);
    return ok ? CABACK_EXIT_OK : caback_error_exit_code(error);
}
