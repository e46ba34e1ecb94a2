/* What the fuzz targets share: the libFuzzer entry points (also called by replay.c) and a check
 * that aborts, so that a broken invariant is a crash to libFuzzer and a failure to the replay. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Not a libFuzzer entry point: replay.c calls it (when a target defines it) after the last
 * input, so that what LLVMFuzzerInitialize set up is released and valgrind and LeakSanitizer see
 * a clean exit. libFuzzer never returns from its loop and needs none. */
void fuzz_cleanup(void);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)
