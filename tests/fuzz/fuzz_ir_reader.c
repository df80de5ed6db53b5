/* fuzz_ir_reader.c — libFuzzer target for the text IR reader.
 *
 * Feeds arbitrary bytes to ir_read_module and lets ASan and UBSan catch any
 * crash.  When the text reads and verifies, it must also survive a round
 * trip: printing the module and reading the print back must succeed and
 * print the same text again (the printer and reader speak one language);
 * a failure aborts, so the fuzzer reports it.  Seeds: the golden .ir files
 * of tests/golden. */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

/* The module as printed text, in a malloc'd buffer. */
static char *print_to_string(const Module *m, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        abort();
    ir_print_module(f, m);
    fclose(f);
    return text;
}

static void check_round_trip(const Module *m)
{
    size_t len1, len2;
    char *text1 = print_to_string(m, &len1);
    Arena *arena = arena_new();
    Diag diag;
    diag_init(&diag, "printed.ir", text1, len1);
    diag.out = stderr;
    Module *again = ir_read_module(arena, text1, len1, &diag);
    if (!again) {
        fprintf(stderr, "the reader rejects what the printer wrote:\n%s",
                text1);
        abort();
    }
    char *text2 = print_to_string(again, &len2);
    if (len1 != len2 || memcmp(text1, text2, len1) != 0) {
        fprintf(stderr, "print -> read -> print changed the text:\n%s\n---\n%s",
                text1, text2);
        abort();
    }
    free(text2);
    arena_free(arena);
    free(text1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);

    Arena *arena = arena_new();
    Diag diag;
    diag_init(&diag, "fuzz.ir", text, size);
    diag.out = devnull;
    Module *m = ir_read_module(arena, text, size, &diag);
    char err[512];
    if (m && ir_verify_module(m, err, sizeof err))
        check_round_trip(m);
    arena_free(arena);
    free(text);
    return 0;
}
