/* fuzz_parser.c — libFuzzer target for the front end.
 *
 * Feeds arbitrary bytes to fe_compile, as `nnc check` does with a file, and
 * lets ASan and UBSan catch any crash, overflow or undefined behaviour.
 * Diagnostics go to /dev/null.  On success the front end promises a module
 * that passes ir_verify_module; a failure of that promise aborts, so the
 * fuzzer reports it like a crash.  Built with -DNNC_FUZZ=ON (clang); run by
 * scripts/test with the seed corpus of tests/diag and the conformance
 * models and the dictionary nn.dict. */
#include "frontend/frontend.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    /* A copy of exactly `size` bytes, so ASan sees any read past the end. */
    char *src = malloc(size ? size : 1);
    memcpy(src, data, size);

    Arena *arena = arena_new();
    Diag diag;
    diag_init(&diag, "fuzz.nn", src, size);
    diag.out = devnull;
    Module *m = fe_compile(arena, src, size, "fuzz", NULL, 0, &diag);
    if (m) {
        char err[512];
        if (!ir_verify_module(m, err, sizeof err)) {
            fprintf(stderr, "fe_compile returned an invalid module: %s\n", err);
            abort();
        }
    }
    arena_free(arena);
    free(src);
    return 0;
}
