/* Replays fuzz inputs through a target's LLVMFuzzerTestOneInput without libFuzzer, so that make
 * check runs every corpus with the normal compiler (and the sanitizers or valgrind when enabled).
 *
 * Usage: replay-TARGET FILE|FOLDER...   (a folder: every regular file in it, in name order)
 * Prints each file's name before feeding it, then "replayed N inputs"; exits 1 when there was
 * nothing to replay or a file could not be read, and crashes (abort, sanitizer) on a finding. */
#include "config.h"

#include "fuzz.h"

#include <glib.h>
#include <string.h>

/* Targets that need one-time setup (NSS) define it; the others leave it out. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
void fuzz_cleanup(void) __attribute__((weak));

static gboolean replay_file(const char *path)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *contents = NULL;
    gsize len = 0;

    if (!g_file_get_contents(path, &contents, &len, &error)) {
        fprintf(stderr, "replay: %s\n", error->message);
        return FALSE;
    }
    /* A copy of exactly @len bytes: g_file_get_contents adds a NUL after the data, which would
     * hide a read one byte past the end from the sanitizers. */
    guint8 *exact = g_malloc(len > 0 ? len : 1);
    memcpy(exact, contents, len);
    printf("%s\n", path);
    fflush(stdout);
    LLVMFuzzerTestOneInput(exact, len);
    g_free(exact);
    return TRUE;
}

static int compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    guint count = 0;
    gboolean ok = TRUE;

    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|FOLDER...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (!g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
            ok = replay_file(argv[i]) && ok;
            count++;
            continue;
        }
        g_autoptr(GError) error = NULL;
        g_autoptr(GDir) dir = g_dir_open(argv[i], 0, &error);
        if (dir == NULL) {
            fprintf(stderr, "replay: %s\n", error->message);
            ok = FALSE;
            continue;
        }
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        const char *name;
        while ((name = g_dir_read_name(dir)) != NULL) {
            g_autofree char *path = g_build_filename(argv[i], name, NULL);
            if (name[0] != '.' && g_file_test(path, G_FILE_TEST_IS_REGULAR))
                g_ptr_array_add(names, g_steal_pointer(&path));
        }
        g_ptr_array_sort(names, compare_names);
        for (guint k = 0; k < names->len; k++) {
            ok = replay_file(names->pdata[k]) && ok;
            count++;
        }
    }
    if (fuzz_cleanup != NULL)
        fuzz_cleanup();
    printf("replayed %u inputs\n", count);
    return ok && count > 0 ? 0 : 1;
}
