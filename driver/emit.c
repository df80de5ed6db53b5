/* emit.c — compiling: what `nnc MODEL.nn [-o OUT] [--emit KIND]` writes.
 *
 * The module arrives verified and through the passes.  --emit obj, asm
 * and llvm go through the code generator (codegen/codegen.h); ir and dot
 * are printed here.  Where the output goes:
 *
 *   obj        -o OUT, default MODEL's stem with .o in the current
 *              directory (as `cc -c`); the C header goes beside it, to
 *              --header or OUT with its extension replaced by .h
 *   asm, llvm  -o OUT or stdout; a header only when --header asks
 *   ir, dot    -o OUT or stdout; a header only when --header asks
 *   stats      the same: the bytes of one instance (cg_print_stats)
 *
 * `-o -` is stdout for every kind (then the header, too, only when
 * --header asks).
 * The object is written before the header; if the header then cannot be
 * written, an object this run created is removed again, so a failed
 * command never leaves an object without its header.  Every failure to
 * write is exit status 1 with "nnc: error: cannot write 'PATH': REASON". */
#include "driver/driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/codegen.h"

/* "dir/gpt.nn" -> "gpt" + ext: the default object in the current
 * directory. */
static const char *stem_with(Arena *a, const char *path, const char *ext)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return arena_printf(a, "%.*s%s", (int)n, base, ext);
}

/* "out/gpt.o" -> "out/gpt.h"; "gpt" -> "gpt.h".  A dot that starts the
 * file name is not an extension. */
static const char *replace_extension(Arena *a, const char *path,
                                     const char *ext)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - path) : strlen(path);
    return arena_printf(a, "%.*s%s", (int)n, path, ext);
}

static bool path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int write_header(const Module *m, const char *path)
{
    if (cg_write_header(m, path) == 0)
        return EXIT_SUCCESS;
    fprintf(stderr, "nnc: error: cannot write '%s': %s\n", path,
            strerror(errno));
    return EXIT_MODEL_ERROR;
}

static bool is_stdout(const char *path) { return strcmp(path, "-") == 0; }

/* --emit ir, dot and stats: to path, or stdout for "-". */
static int emit_text(const Module *m, const Options *o, const char *path)
{
    bool to_stdout = is_stdout(path);
    FILE *f = to_stdout ? stdout : fopen(path, "w");
    if (to_stdout)
        path = "<stdout>";
    if (!f) {
        fprintf(stderr, "nnc: error: cannot write '%s': %s\n", path,
                strerror(errno));
        return EXIT_MODEL_ERROR;
    }
    if (o->emit == EMIT_DOT)
        ir_print_dot(f, m);
    else if (o->emit == EMIT_STATS)
        cg_print_stats(f, m);
    else
        ir_print_module(f, m);
    bool failed = ferror(f) != 0;
    failed |= (to_stdout ? fflush(f) : fclose(f)) != 0;
    if (failed) {
        fprintf(stderr, "nnc: error: cannot write '%s': %s\n", path,
                strerror(errno));
        return EXIT_MODEL_ERROR;
    }
    return EXIT_SUCCESS;
}

static CgEmitKind codegen_kind(EmitKind k)
{
    return k == EMIT_ASM    ? CG_EMIT_ASM
           : k == EMIT_LLVM ? CG_EMIT_LLVM
                            : CG_EMIT_OBJ;
}

/* --emit obj, asm, llvm.  LLVM writes to stdout when the path is "-". */
static int emit_code(const Module *m, const Options *o, const char *path)
{
    CgOptions cg = {
        .opt_level = o->opt_level, .triple = o->target, .cpu = o->cpu};
    int rc = cg_emit_file(m, &cg, codegen_kind(o->emit), path);
    return rc == -2 ? EXIT_USAGE : rc != 0 ? EXIT_MODEL_ERROR : EXIT_SUCCESS;
}

/* Where the output ("-": stdout) and the header (NULL: none) go.  A
 * header that would overwrite the output is a command-line error. */
static bool plan_paths(Arena *a, const Options *o, const char **out,
                       const char **header)
{
    *out = o->output             ? o->output
           : o->emit == EMIT_OBJ ? stem_with(a, o->model, ".o")
                                 : "-";
    bool beside = o->emit == EMIT_OBJ && !is_stdout(*out);
    *header = o->header ? o->header
              : beside  ? replace_extension(a, *out, ".h")
                        : NULL;
    return !(*header && strcmp(*out, *header) == 0);
}

int driver_emit(Arena *a, const Module *m, const Options *o)
{
    const char *out, *header;
    if (!plan_paths(a, o, &out, &header))
        return driver_usage_error(arena_printf(
            a,
            "the header would overwrite the output '%s'; name another "
            "with --header",
            out));
    if (o->emit == EMIT_IR || o->emit == EMIT_DOT || o->emit == EMIT_STATS) {
        int status = emit_text(m, o, out);
        return status || !header ? status : write_header(m, header);
    }
    bool existed = is_stdout(out) || path_exists(out);
    int status = emit_code(m, o, out);
    if (status || !header)
        return status;
    status = write_header(m, header);
    if (status && !existed)
        unlink(out);
    return status;
}
