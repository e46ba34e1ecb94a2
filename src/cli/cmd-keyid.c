/* caback keyid: convert key IDs between the certutil -K form, the 0x form and the signed form
 * Dogtag writes into CS.cfg. No database is opened.
 *
 * Invalid input does not stop the run: every valid ID is printed, every invalid one is reported
 * on stderr naming it, and the exit status is 2 (usage) when any was invalid. */
#include "config.h"

#include "cli.h"

#include <caback/keyid.h>

#include <stdio.h>
#include <string.h>

typedef enum {
    FORM_ALL,
    FORM_NSS,
    FORM_DOGTAG,
    FORM_0X,
} OutputForm;

static gboolean parse_form(const char *text, OutputForm *form, GError **error)
{
    if (text == NULL)
        *form = FORM_ALL;
    else if (g_ascii_strcasecmp(text, "dogtag") == 0)
        *form = FORM_DOGTAG;
    else if (g_ascii_strcasecmp(text, "nss") == 0)
        *form = FORM_NSS;
    else if (g_ascii_strcasecmp(text, "0x") == 0)
        *form = FORM_0X;
    else {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "--to \"%s\" is not a key ID form; use --to dogtag, --to nss or --to 0x", text);
        return FALSE;
    }
    return TRUE;
}

/* Read the non-blank lines of standard input into @inputs. */
static gboolean read_stdin_ids(GPtrArray *inputs, GError **error)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    while ((n = getline(&line, &cap, stdin)) >= 0) {
        g_strstrip(line);
        if (*line != '\0')
            g_ptr_array_add(inputs, g_strdup(line));
    }
    gboolean failed = ferror(stdin) != 0;
    free(line);
    if (failed) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_IO, "cannot read key IDs from standard "
                                                          "input");
        return FALSE;
    }
    return TRUE;
}

/* The options of the verbs that open a database mean nothing to keyid: say so by name rather
 * than "Unknown option". */
static gboolean refuse_database_options(int argc, char **argv, GError **error)
{
    static const char *const names[] = {"-d",         "--dbdir",         "-f",
                                        "-h",         "--token",         "--module",
                                        "--password-file", "--password-env", NULL};

    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        for (int n = 0; names[n] != NULL; n++) {
            gsize len = strlen(names[n]);
            if (strncmp(argv[i], names[n], len) == 0 &&
                (argv[i][len] == '\0' || argv[i][len] == '=' || names[n][1] != '-'))
                return caback_cli_usage_error(
                    error, "keyid",
                    "keyid converts the IDs it is given and opens no database or token, so %s "
                    "is not one of its options; to list a database's key IDs use caback "
                    "listkeys %s",
                    names[n], names[n]);
        }
    }
    return TRUE;
}

static void warn_legacy(const CabackKeyIdInput *p)
{
    g_autofree char *dogtag = caback_keyid_to_dogtag(&p->id);

    caback_cli_warning("key ID %s: its CS.cfg form %s decodes to fewer than 20 bytes, which "
                       "Dogtag before 10.5.6 cannot match to the key (a clone fails to find "
                       "it); Dogtag 10.5.6 and later read it correctly",
                       p->input, dogtag);
}

static void print_all_forms(const GPtrArray *ids)
{
    for (guint i = 0; i < ids->len; i++) {
        const CabackKeyIdInput *p = ids->pdata[i];
        g_autofree char *nss = caback_keyid_to_nss(&p->id);
        g_autofree char *dogtag = caback_keyid_to_dogtag(&p->id);
        g_autofree char *hex0x = caback_keyid_to_0x(&p->id);

        if (i > 0)
            g_print("\n");
        g_print("input:   %s\n"
                "nss:     %s\n"
                "dogtag:  %s%s\n"
                "0x:      %s\n",
                p->input, nss, dogtag,
                caback_keyid_dogtag_legacy_problem(&p->id) ? "   (not readable by Dogtag < 10.5.6)"
                                                           : "",
                hex0x);
    }
}

static void print_one_form(const GPtrArray *ids, OutputForm form)
{
    for (guint i = 0; i < ids->len; i++) {
        const CabackKeyIdInput *p = ids->pdata[i];
        g_autofree char *text = NULL;

        switch (form) {
        case FORM_NSS:
            text = caback_keyid_to_nss(&p->id);
            break;
        case FORM_DOGTAG:
            text = caback_keyid_to_dogtag(&p->id);
            break;
        case FORM_0X:
        case FORM_ALL:
            text = caback_keyid_to_0x(&p->id);
            break;
        }
        g_print("%s\n", text);
    }
}

/* GOption would take a Dogtag negative ID ("-584f...", "-0x12") for a cluster of short options,
 * and keeps the pointers of positional arguments: the negative IDs of @argv
 * (caback_keyid_is_negative_argument) are swapped for placeholder strings (kept in
 * @placeholders, the IDs in @originals) in the returned copy, and swapped back after parsing. */
static char **hide_negative_ids(int argc, char **argv, GPtrArray *originals,
                                GPtrArray *placeholders)
{
    char **args = g_new0(char *, argc + 1);
    gboolean after_dashes = FALSE;

    for (int i = 0; i < argc; i++) {
        args[i] = argv[i];
        if (i > 0 && strcmp(argv[i], "--") == 0)
            after_dashes = TRUE;
        if (i > 0 && !after_dashes && caback_keyid_is_negative_argument(argv[i])) {
            char *placeholder = g_strdup_printf("caback-keyid-argument-%d", i);
            g_ptr_array_add(originals, argv[i]);
            g_ptr_array_add(placeholders, placeholder);
            args[i] = placeholder;
        }
    }
    return args;
}

/* After parsing: the negative IDs back in place of their placeholders, and the "--" that ends
 * the options (GLib leaves it) dropped. */
static void show_negative_ids(int *argc, char **argv, const GPtrArray *originals,
                              const GPtrArray *placeholders)
{
    for (int i = 1; i < *argc; i++) {
        for (guint k = 0; k < placeholders->len; k++)
            if (argv[i] == placeholders->pdata[k])
                argv[i] = originals->pdata[k];
    }
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            memmove(&argv[i], &argv[i + 1], sizeof(char *) * (size_t)(*argc - i));
            (*argc)--;
            break;
        }
    }
}

static GOptionContext *keyid_context(char **to, CabackCommonOptions *common)
{
    const GOptionEntry entries[] = {
        {"to", 0, 0, G_OPTION_ARG_STRING, to,
         "Print only this form, one ID per line: dogtag (CS.cfg), nss (40 hex digits, as "
         "certutil -K) or 0x",
         "FORM"},
        {NULL}};
    GOptionContext *context = g_option_context_new("[ID...]");

    g_option_context_set_summary(
        context, "Convert key IDs between the NSS form (certutil -K) and the signed form Dogtag "
                 "writes as cloning.<tag>.privkey.id in CS.cfg.");
    g_option_context_set_description(
        context,
        "An ID may be 40 hex digits (certutil -K), 0x followed by hex digits, colon-separated "
        "bytes (ba:76:2f:...),\n"
        "or the Dogtag form (a leading \"-\" for negative values). Hex digits without a sign are "
        "an unsigned value,\n"
        "zero-extended to 20 bytes. Without ID arguments, IDs are read one per line from "
        "standard input\n"
        "(blank lines are skipped).\n\n"
        "Every valid ID is printed; each invalid one is reported on standard error, and the "
        "exit status\n"
        "is then 2. A warning on standard error names IDs whose CS.cfg form Dogtag before "
        "10.5.6 cannot read.\n\n"
        "Example: caback keyid --to dogtag a7b0944b7b8397729a4c8c9af3a9c2b96f49c6f3\n");
    g_option_context_add_main_entries(context, entries, NULL);
    caback_cli_add_common(context, common, CABACK_COMMON_JSON);
    return context;
}

/* The IDs to convert: the arguments, else the lines of standard input. */
static gboolean gather_inputs(int argc, char **argv, GPtrArray *inputs, GError **error)
{
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            g_ptr_array_add(inputs, g_strdup(argv[i]));
    } else if (!read_stdin_ids(inputs, error)) {
        return FALSE;
    }
    if (inputs->len == 0) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "no key ID given: pass IDs as arguments or one per line on standard input "
                    "(see: caback help keyid)");
        return FALSE;
    }
    return TRUE;
}

/* Print the valid IDs of @inputs, and fail naming the invalid ones. */
static gboolean convert(const GPtrArray *inputs, OutputForm form, gboolean json, GError **error)
{
    g_autoptr(GPtrArray) invalid = g_ptr_array_new_with_free_func((GDestroyNotify)g_error_free);
    g_autoptr(GPtrArray) ids = caback_keyid_parse_each(inputs, invalid);

    for (guint i = 0; i < ids->len; i++)
        if (caback_keyid_dogtag_legacy_problem(&((CabackKeyIdInput *)ids->pdata[i])->id))
            warn_legacy(ids->pdata[i]);
    if (json)
        caback_cli_json_print_take(caback_keyid_json(ids));
    else if (form == FORM_ALL)
        print_all_forms(ids);
    else
        print_one_form(ids, form);

    if (invalid->len == 1) {
        g_propagate_error(error, g_ptr_array_steal_index(invalid, 0));
        return FALSE;
    }
    if (invalid->len > 1) {
        /* main prints only one error: name every invalid input here, then summarise. */
        for (guint i = 0; i < invalid->len; i++)
            g_printerr("caback keyid: %s\n", ((GError *)invalid->pdata[i])->message);
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "%u of %u key IDs are invalid (each is named above)", invalid->len,
                    inputs->len);
        return FALSE;
    }
    return TRUE;
}

gboolean caback_cmd_keyid(int argc, char **argv, GError **error)
{
    CabackCommonOptions common = {0};
    g_autofree char *to = NULL;
    g_autoptr(GOptionContext) context = keyid_context(&to, &common);
    gboolean ok = FALSE;
    OutputForm form = FORM_ALL;
    g_autoptr(GPtrArray) inputs = g_ptr_array_new_with_free_func(g_free);
    /* Placeholders for negative IDs; GOption keeps the pointers of positional arguments. */
    g_autoptr(GPtrArray) originals = g_ptr_array_new();
    g_autoptr(GPtrArray) placeholders = g_ptr_array_new_with_free_func(g_free);
    g_autofree char **args = hide_negative_ids(argc, argv, originals, placeholders);
    char **parsed = args;

    if (!refuse_database_options(argc, args, error) ||
        !caback_cli_parse(context, "keyid", &common, &argc, &parsed, error))
        goto out;
    show_negative_ids(&argc, parsed, originals, placeholders);
    if (!parse_form(to, &form, error))
        goto out;
    if (to != NULL && common.json) {
        g_set_error(error, CABACK_ERROR, CABACK_ERROR_USAGE,
                    "--to and --json cannot be combined (--json always gives every form)");
        goto out;
    }
    ok = gather_inputs(argc, parsed, inputs, error) && convert(inputs, form, common.json, error);
out:
    caback_cli_common_clear(&common);
    return ok;
}
