/* grad_check.h — the harness of the gradient tests (tests/grad).
 *
 * A GcModel is a module (compiled from .nn source by the front end, or
 * read from IR text) that the autodiff pass has differentiated, with one
 * double tensor per input and param filled with deterministic random
 * values.  gc_check compares the gradients the pass built, evaluated by
 * the reference evaluator (ir/eval.c), with central differences of the
 * loss in double precision, param by param. */
#ifndef NNC_TESTS_GRAD_CHECK_H
#define NNC_TESTS_GRAD_CHECK_H

#include "frontend/frontend.h"
#include "ir/ir.h"
#include "passes/pass.h"

typedef struct GcModel {
    Arena *arena;
    Module *m;
    EvalTensor *inputs, *params;
    EvalOptions opt;
} GcModel;

/* Compiles .nn source with "NAME=INT" dim overrides; NULL (after printing
 * the errors) if it does not compile. */
Module *gc_compile(Arena *a, const char *src, const char *const *dims,
                   int n_dims);
/* Reads IR text; NULL after printing the errors. */
Module *gc_read_ir(Arena *a, const char *text);
/* Runs the autodiff pass and the verifier, and checks that the result
 * prints as text that reads back to the same text (any failure aborts). */
void gc_differentiate(Module *m);

/* Differentiates m and fills inputs and params: f32 values from
 * N(0, scale^2), i32 values uniform in 0..B-1 where B is the smallest
 * range any lookup or loss in the module accepts (table rows, classes). */
GcModel gc_model(Arena *a, Module *m, uint64_t seed, double scale);
void gc_model_free(GcModel *gm);

/* The loss (evaluated on the forward part only). */
double gc_loss(GcModel *gm);
/* The gradients the pass built: one tensor per trainable param, in
 * declaration order (the caller frees them). */
EvalTensor *gc_gradients(GcModel *gm);

/* Worst relative L2 error, over the trainable params, between the built
 * gradient and the central difference with step h; a param whose
 * gradient is ~0 is compared absolutely.  Prints each param's error when
 * verbose or when it exceeds tol. */
double gc_check(GcModel *gm, double h, double tol, bool verbose);

/* Whether any graph of m has a node with op. */
bool gc_has_op(const Module *m, Op op);

#endif
