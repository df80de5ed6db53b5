/* driver.h — the map of driver/: the `nnc` command.
 *
 *   options.c  the command line -> Options; every check of the command line
 *              that needs no file (exit status 2) happens there, and --help
 *              is printed from the same option table, so the two cannot
 *              drift
 *   main.c     reads the model, runs the front end (or the IR reader with
 *              --ir-in) and the passes, then hands the module to emit.c or
 *              run.c
 *   emit.c     compiling: the object, assembly or LLVM IR (codegen/), the C
 *              header beside it, or the graph IR text and Graphviz
 *   run.c      `nnc run`: the module JIT-compiled in memory, parameters and
 *              inputs from safetensors files, forward, outputs written
 *
 * The command itself is documented in shared/spec/interface.md. */
#ifndef NNC_DRIVER_H
#define NNC_DRIVER_H

#include "frontend/frontend.h"
#include "passes/pass.h"

/* Exit statuses (interface.md); 70, an internal error, is ir_internal_error's. */
enum { EXIT_MODEL_ERROR = 1, EXIT_USAGE = 2 };

typedef enum Command {
    CMD_COMPILE,
    CMD_CHECK,
    CMD_RUN,
    CMD_HELP,
    CMD_VERSION
} Command;

typedef enum EmitKind {
    EMIT_OBJ,
    EMIT_ASM,
    EMIT_LLVM,
    EMIT_IR,
    EMIT_DOT,
    EMIT_STATS, /* instance memory in bytes (codegen/layout.c) */
    EMIT_COUNT
} EmitKind;
extern const char *const driver_emit_names[EMIT_COUNT]; /* "obj", ... */

typedef struct Options {
    Command cmd;
    const char *model;  /* the input file */
    const char *output; /* -o; NULL: stdout for --emit ir and dot */
    const char *header; /* --header; NULL: OUT with .h */
    DimOverride *dims;  /* -D NAME=INT, in command-line order */
    int n_dims;
    int opt_level;            /* -O0 ... -O3; default 2 */
    const char *target, *cpu; /* NULL: the host, --cpu native */
    EmitKind emit;            /* default EMIT_OBJ */
    bool ir_in;               /* the input is text IR, not .nn source */
    bool no_fuse, no_train;
    int *pass_list; /* --passes: run these instead of the pipeline */
    int n_passes;
    bool have_pass_list;
    PassOptions pass; /* --dump-after etc.; pass.dump is left NULL */
    /* nnc run */
    const char *params_path, *inputs_path, *outputs_path, *grads_path,
        *save_path;
    uint64_t seed;
    int64_t train_steps; /* -1: no --train-steps */
} Options;

/* Parses argv into o (strings point into argv or a).  Returns false with a
 * sentence in err (without the "nnc: error: " prefix) when the command
 * line is wrong.  --help and --version set cmd and end the parse. */
bool driver_parse_options(Arena *a, int argc, char **argv, Options *o,
                          char *err, size_t errlen);
/* The --help text: usage, every option, the passes, the exit statuses. */
void driver_print_usage(FILE *f);

/* main.c: prints "nnc: error: MSG" and the --help hint; returns 2. */
int driver_usage_error(const char *msg);

/* emit.c: writes what --emit asks for, and the C header (always with
 * --emit obj, else only with --header).  Returns the exit status. */
int driver_emit(Arena *a, const Module *m, const Options *o);

/* run.c: `nnc run` on a module that went through the passes.  Returns the
 * exit status. */
int driver_run(Arena *a, const Module *m, const Options *o);

#endif
