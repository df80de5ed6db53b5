/* cg_test.h — helpers shared by the codegen tests: build IR modules by
 * hand through the checked builder (ir_add), JIT them, and compare floats.
 * Included by each test_*.c after the cmocka headers. */
#ifndef NNC_CG_TEST_H
#define NNC_CG_TEST_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "ir/ir.h"
#include "passes/pass.h"
#include "runtime/nnc.h"

typedef struct TB {
    Arena *arena;
    Module *m;
    Graph *g; /* the graph being built: main, or a scan body */
    char err[512];
} TB;

static inline TB tb_new(const char *name)
{
    TB t = {.arena = arena_new()};
    t.m = ir_module_new(t.arena, name);
    t.g = ir_graph_new(t.m, "main");
    return t;
}

static inline Type tb_type(DType dt, int rank, ...)
{
    Type t = {.dtype = dt, .rank = rank};
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++)
        t.dims[i] = va_arg(ap, int64_t);
    va_end(ap);
    return t;
}
#define F32(...)                                                               \
    tb_type(DT_F32, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
            __VA_ARGS__)
#define F32S tb_type(DT_F32, 0)
#define I32(...)                                                               \
    tb_type(DT_I32, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
            __VA_ARGS__)

static inline Value tb_add(TB *t, Op op, const Attrs *a, int n, const Value *in,
                           Value *outs)
{
    Value v = ir_add(t->m, t->g, op, in, n, a, (SrcLoc){0, 0}, outs, t->err,
                     sizeof t->err);
    if (!v.id)
        fprintf(stderr, "tb_add %s: %s\n", ir_op_info[op].name, t->err);
    assert_true(v.id != 0);
    return v;
}

static inline Value tb_op1(TB *t, Op op, Value a)
{
    return tb_add(t, op, NULL, 1, &a, NULL);
}
static inline Value tb_op2(TB *t, Op op, Value a, Value b)
{
    Value in[2] = {a, b};
    return tb_add(t, op, NULL, 2, in, NULL);
}
static inline Value tb_opa(TB *t, Op op, Attrs a, int n, ...)
{
    Value in[8];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        in[i] = va_arg(ap, Value);
    va_end(ap);
    return tb_add(t, op, &a, n, in, NULL);
}

static inline Value tb_input(TB *t, const char *name, Type ty)
{
    InputDecl d = {arena_strdup(t->arena, name), ty};
    vec_push(t->arena, &t->m->inputs, d);
    Attrs a = {.index = t->m->inputs.len - 1, .type = ty};
    return tb_add(t, OP_INPUT, &a, 0, NULL, NULL);
}

static inline Value tb_param(TB *t, const char *name, Type ty, InitKind init)
{
    ParamDecl d = {arena_strdup(t->arena, name), ty, {init, 0, 0}, false};
    vec_push(t->arena, &t->m->params, d);
    Attrs a = {.index = t->m->params.len - 1, .type = ty};
    return tb_add(t, OP_PARAM, &a, 0, NULL, NULL);
}

static inline Value tb_const(TB *t, double v, Type ty)
{
    Attrs a = {.value = v, .type = ty};
    return tb_add(t, OP_CONST, &a, 0, NULL, NULL);
}

static inline Value tb_arg(TB *t, int index, Type ty)
{
    Attrs a = {.index = index, .type = ty};
    t->g->n_args++;
    return tb_add(t, OP_ARG, &a, 0, NULL, NULL);
}

static inline void tb_output(TB *t, Value v, const char *name)
{
    ir_add_result(t->m, t->m->graphs.data[0], v, name);
    t->m->n_outputs++;
}

static int tb_opt_level = 2; /* what tb_jit compiles with */

static inline CgJit *tb_jit(TB *t)
{
    char err[512];
    if (!ir_verify_module(t->m, err, sizeof err))
        fprintf(stderr, "verify: %s\n", err);
    assert_true(ir_verify_module(t->m, err, sizeof err));
    CgOptions o = {.opt_level = tb_opt_level};
    CgJit *j = cg_jit_new(t->m, &o);
    assert_non_null(j);
    return j;
}

/* Runs NAME_forward through NAME_forward_argv on a fresh instance whose
 * parameters are copied from params[i] (may be NULL). */
static inline int tb_run(TB *t, CgJit *j, float **params, void **args)
{
    char sym[256];
    snprintf(sym, sizeof sym, "%s_new", t->m->name);
    void *(*mk)(void) = (void *(*)(void))cg_jit_lookup(j, sym);
    snprintf(sym, sizeof sym, "%s_param", t->m->name);
    float *(*param)(void *, const char *) =
        (float *(*)(void *, const char *))cg_jit_lookup(j, sym);
    snprintf(sym, sizeof sym, "%s_forward_argv", t->m->name);
    CgForwardArgv fwd = (CgForwardArgv)cg_jit_lookup(j, sym);
    snprintf(sym, sizeof sym, "%s_free", t->m->name);
    void (*fr)(void *) = (void (*)(void *))cg_jit_lookup(j, sym);
    assert_non_null(mk);
    assert_non_null(fwd);
    void *inst = mk();
    assert_non_null(inst);
    for (int i = 0; params && i < t->m->params.len; i++) {
        const ParamDecl *p = &t->m->params.data[i];
        float *dst = param(inst, p->name);
        assert_non_null(dst);
        memcpy(dst, params[i], (size_t)ir_type_numel(&p->type) * 4);
    }
    int rc = fwd(inst, args);
    fr(inst);
    return rc;
}

static inline void tb_free(TB *t, CgJit *j)
{
    cg_jit_free(j);
    arena_free(t->arena);
}

/* Deterministic test data in [lo, hi). */
static inline void fill(float *x, int64_t n, float lo, float hi, unsigned seed)
{
    unsigned s = seed * 2654435761u + 12345u;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        x[i] = lo + (hi - lo) * (float)((s >> 8) & 0xffff) / 65536.0f;
    }
}

static inline void expect_close(const float *got, const double *want, int64_t n,
                                double tol, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        if (got[i] == want[i] || (isnan(got[i]) && isnan(want[i])))
            continue;
        double err = fabs(got[i] - want[i]);
        if (!(err <= tol * (1.0 + fabs(want[i])))) {
            fprintf(stderr, "%s: element %lld: got %.9g, want %.9g\n", what,
                    (long long)i, got[i], want[i]);
            fail();
        }
    }
}


/* "B=4 IN=16 ..." -> dim overrides (names in the arena); returns the count. */
static inline int cg_test_overrides(Arena *a, const char *defines,
                                    DimOverride *ov, int max)
{
    int n = 0;
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", defines ? defines : "");
    for (char *tok = strtok_r(buf, " ", &save); tok && n < max;
         tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        *eq = 0;
        ov[n++] = (DimOverride){arena_strdup(a, tok), atoll(eq + 1), false};
    }
    return n;
}

/* Front end with dim overrides, then the pass pipeline with verification
 * after each pass: autodiff adds the gradients unless no_train. */
static inline Module *cg_test_compile(Arena *a, const char *file,
                                      const char *src, const char *defines,
                                      bool no_train)
{
    DimOverride ov[16];
    int n = cg_test_overrides(a, defines, ov, 16);
    Diag d;
    diag_init(&d, file, src, strlen(src));
    Module *m = fe_compile(a, src, strlen(src), "model", ov, n, &d);
    assert_non_null(m);
    PassCtx ctx = {.m = m, .arena = a, .no_train = no_train};
    PassOptions po = {.verify_each = true, .dump = stderr};
    pass_run_pipeline(m, &ctx, &po);
    return m;
}

#endif
