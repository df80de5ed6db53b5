/* main.c — the `nnc` command: command line to output file or run.
 *
 *   options (options.c) -> read the file -> front end, or the IR reader
 *   with --ir-in -> passes (the pipeline, or --passes) -> emit.c (--emit)
 *   or run.c (`nnc run`)
 *
 * `nnc check` stops after the front end.  A model with an error never
 * reaches the code generator, so no output file is written for it.
 * Exit status (interface.md): 0 success, 1 an error in the model or a
 * file (a diagnostic was printed), 2 a wrong command line, 70 an internal
 * error (ir_internal_error exits with it). */
#include "driver/driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Bigger models than this are not written by hand; the cap keeps a stray
 * argument (a dataset, /dev/zero) from being read into memory. */
#define MAX_INPUT_BYTES ((size_t)64 << 20)

int driver_usage_error(const char *msg)
{
    fprintf(stderr, "nnc: error: %s\n", msg);
    fprintf(stderr, "Try 'nnc --help' for more information.\n");
    return EXIT_USAGE;
}

/* Reads the whole file into a NUL-terminated malloc'ed buffer.  Prints the
 * error and returns NULL when it cannot be read or exceeds the cap; reads
 * at most one byte past the cap to tell. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nnc: error: cannot open '%s': %s\n", path,
                strerror(errno));
        return NULL;
    }
    size_t cap = (size_t)1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf && n <= MAX_INPUT_BYTES) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap = cap * 2 > MAX_INPUT_BYTES + 1 ? MAX_INPUT_BYTES + 1 : cap * 2;
        char *bigger = realloc(buf, cap + 1);
        if (!bigger)
            free(buf);
        buf = bigger;
    }
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    const char *problem = NULL;
    if (!buf)
        problem = "out of memory";
    else if (read_errno)
        problem = strerror(read_errno);
    else if (n > MAX_INPUT_BYTES)
        problem = "the file is larger than 64 MiB";
    if (problem) {
        fprintf(stderr, "nnc: error: cannot read '%s': %s\n", path, problem);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void verify_or_die(const Module *m, const char *where)
{
    char err[512];
    if (!ir_verify_module(m, err, sizeof err))
        ir_internal_error(where, "%s", err);
}

/* The text IR of --ir-in: read, then verified, since a person may have
 * edited it; an invalid module is an error in the file, not in nnc. */
static Module *load_ir(Arena *a, const Options *o, const char *src, size_t len)
{
    Diag d;
    diag_init(&d, o->model, src, len);
    Module *m = ir_read_module(a, src, len, &d);
    if (!m || d.n_errors)
        return NULL;
    char err[512];
    if (!ir_verify_module(m, err, sizeof err)) {
        fprintf(stderr, "%s: error: invalid IR: %s\n", o->model, err);
        return NULL;
    }
    return m;
}

static Module *load_source(Arena *a, Options *o, const char *src, size_t len)
{
    Diag d;
    diag_init(&d, o->model, src, len);
    const char *name = fe_default_model_name(a, o->model);
    Module *m = fe_compile(a, src, len, name, o->dims, o->n_dims, &d);
    if (!m || d.n_errors)
        return NULL;
    if (o->cmd == CMD_CHECK || o->pass.verify_each)
        verify_or_die(m, "verify after frontend");
    return m;
}

/* `nnc run` without --grads or --train-steps calls no training entry
 * point, so it compiles none: the backward pass would take most of the
 * JIT's time (GPT at the e2e test's size: 4.3 s against 0.6 s). */
static bool inference_only(const Options *o)
{
    return o->no_train ||
           (o->cmd == CMD_RUN && !o->grads_path && o->train_steps < 0);
}

static void run_passes(Arena *a, Module *m, const Options *o)
{
    PassCtx ctx = {.m = m,
                   .arena = a,
                   .no_fuse = o->no_fuse,
                   .no_train = inference_only(o)};
    PassOptions popt = o->pass;
    popt.dump = stderr;
    if (o->have_pass_list)
        pass_run_list(m, &ctx, &popt, o->pass_list, o->n_passes);
    else
        pass_run_pipeline(m, &ctx, &popt);
}

static int compile(Arena *a, Options *o)
{
    size_t len = 0;
    char *src = read_file(o->model, &len);
    if (!src)
        return EXIT_MODEL_ERROR;
    Module *m =
        o->ir_in ? load_ir(a, o, src, len) : load_source(a, o, src, len);
    int status = EXIT_MODEL_ERROR;
    if (m && o->cmd == CMD_CHECK)
        status = EXIT_SUCCESS;
    else if (m) {
        run_passes(a, m, o);
        status = o->cmd == CMD_RUN ? driver_run(a, m, o) : driver_emit(a, m, o);
    }
    free(src);
    return status;
}

static int run_command(Arena *a, Options *o)
{
    if (o->cmd == CMD_HELP) {
        driver_print_usage(stdout);
        return EXIT_SUCCESS;
    }
    if (o->cmd == CMD_VERSION) {
        printf("nnc %s\n", NNC_VERSION);
        return EXIT_SUCCESS;
    }
    return compile(a, o);
}

int main(int argc, char **argv)
{
    Arena *a = arena_new();
    Options o;
    char err[1024];
    int status = driver_parse_options(a, argc, argv, &o, err, sizeof err)
                     ? run_command(a, &o)
                     : driver_usage_error(err);
    arena_free(a);
    return status;
}
