/* frontend.h — the map of frontend/: `.nn` source text to graph IR.
 *
 *   lexer.c   bytes -> tokens (UTF-8 checked, caps on hostile input)
 *   parser.c  tokens -> AST (ast.h), syntax errors with recovery;
 *             statements here, expressions in parse_expr.c (private
 *             header parser.h)
 *   lower.c   AST -> Module: dims, declarations, fn inlining, scan bodies
 *             as nested graphs, shape checking through the IR builder
 *
 * The front end owns every syntax and shape error: a Module it returns is
 * well typed and passes ir_verify_module. */
#ifndef NNC_FRONTEND_H
#define NNC_FRONTEND_H

#include "ir/ir.h"

typedef struct DimOverride {
    const char *name;
    int64_t value;
    bool used; /* set by the front end; an unused -D is an error */
} DimOverride;

/* Compiles `src` (the contents of `file`) into a Module allocated in `a`.
 * `model_default` is the model name when the file has no `model` line (the
 * file's stem made a C identifier; fe_default_model_name computes it).
 * Every error is reported through d; returns NULL if there was any. */
Module *fe_compile(Arena *a, const char *src, size_t len,
                   const char *model_default, DimOverride *overrides,
                   int n_overrides, Diag *d);

/* "path/to/my-model.nn" -> "my_model"; "3d.nn" -> "_3d". */
const char *fe_default_model_name(Arena *a, const char *path);

#endif
