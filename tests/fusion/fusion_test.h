/* fusion_test.h — the harness of the fusion tests (tests/fusion): compile
 * one .nn model twice through the whole pipeline (autodiff on), once with
 * PassCtx.no_fuse and once without, run both on the same data, and compare
 * every main-graph result (outputs, loss, one gradient per trainable
 * param).
 *
 * Two runs are compared:
 *   - the reference evaluator (ir/eval.c, double precision) on both main
 *     graphs: fused and unfused must agree to FT_TOL;
 *   - the generated code, JIT-compiled (float32): NAME_forward_argv for the
 *     outputs, NAME_backward_argv for the loss and NAME_grad for the
 *     gradients.
 *
 * The norm (docs/fusion.md, "Testing"): for each result tensor,
 *     err = max_i |fused_i - unfused_i| / max(max_i |unfused_i|, FT_FLOOR)
 * a normwise relative error, so elements near zero in a tensor of order
 * one do not fail on rounding noise, and an all-zero tensor compares
 * absolutely (to FT_TOL * FT_FLOOR).  A non-finite element must be the same
 * non-finite value in both.
 *
 * In float32 the two programs may round differently (a fused softmax-xent
 * kernel sums in another order).  A compiled result that misses FT_TOL is
 * therefore also compared with the double-precision evaluator: it passes
 * only if the fused result is no further from the exact value than twice the
 * unfused one is (plus FT_TOL): the computation is ill-conditioned and the
 * fused code is as accurate as the unfused.  Such excused results are
 * printed, so they stay visible.
 *
 * Included by each test_fusion_*.c after the cmocka headers. */
#ifndef NNC_TESTS_FUSION_TEST_H
#define NNC_TESTS_FUSION_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "ir/ir.h"
#include "passes/pass.h"
#include "runtime/nnc.h"
#include "tests/codegen/cg_test.h" /* cg_test_overrides */

#ifndef FT_TOL /* -DFT_TOL=0 shows every difference */
#define FT_TOL 1e-5
#endif
#define FT_FLOOR 1e-6

/* ---- compiling ----------------------------------------------------------- */

/* Front end with dim overrides, then the whole pipeline with the verifier
 * after every pass; training on unless no_train (--no-train: the forward
 * graph alone, fused differently since no backward reads it).  NULL (after
 * the front end's errors on stderr, or quietly when quiet) if the source
 * does not compile. */
static inline Module *ft_compile_mode(Arena *a, const char *file,
                                      const char *src, const char *defines,
                                      bool no_fuse, bool no_train, bool quiet)
{
    DimOverride ov[16];
    int n = cg_test_overrides(a, defines, ov, 16);
    Diag d;
    diag_init(&d, file, src, strlen(src));
    FILE *sink = NULL;
    if (quiet) {
        sink = fopen("/dev/null", "w");
        d.out = sink;
    }
    Module *m = fe_compile(a, src, strlen(src), "model", ov, n, &d);
    if (sink)
        fclose(sink);
    if (!m || d.n_errors)
        return NULL;
    PassCtx ctx = {.m = m, .arena = a, .no_fuse = no_fuse, .no_train = no_train};
    PassOptions po = {.verify_each = true, .dump = stderr};
    pass_run_pipeline(m, &ctx, &po);
    return m;
}

static inline Module *ft_compile(Arena *a, const char *file, const char *src,
                                 const char *defines, bool no_fuse, bool quiet)
{
    return ft_compile_mode(a, file, src, defines, no_fuse, false, quiet);
}

static inline char *ft_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    size_t got = fread(s, 1, (size_t)len, f);
    s[got] = 0;
    fclose(f);
    return s;
}

/* How many nodes with op the graphs of m have (main graph and bodies). */
static inline int ft_count_op(const Module *m, Op op)
{
    int n = 0;
    for (int32_t gi = 0; gi < m->graphs.len; gi++) {
        const Graph *g = m->graphs.data[gi];
        for (int32_t k = 0; k < g->nodes.len; k++)
            n += g->nodes.data[k].op == op;
    }
    return n;
}

/* Whether a scan body of m (a graph that a SCAN node names) has op. */
static inline bool ft_scan_body_has_op(const Module *m, Op op)
{
    for (int32_t gi = 0; gi < m->graphs.len; gi++) {
        const Graph *g = m->graphs.data[gi];
        for (int32_t k = 0; k < g->nodes.len; k++) {
            const Node *n = &g->nodes.data[k];
            if (n->op != OP_SCAN)
                continue;
            const Graph *body = m->graphs.data[n->attr.graph];
            for (int32_t j = 0; j < body->nodes.len; j++)
                if (body->nodes.data[j].op == op)
                    return true;
        }
    }
    return false;
}

/* ---- data ------------------------------------------------------------------ */

static inline uint64_t ft_next(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15u);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static inline double ft_uniform(uint64_t *s)
{
    return ((double)(ft_next(s) >> 11) + 0.5) * 0x1.0p-53;
}

static inline double ft_normal(uint64_t *s)
{
    return sqrt(-2 * log(ft_uniform(s))) * cos(6.283185307179586 * ft_uniform(s));
}

/* The smallest range of ids or targets any lookup or loss of m accepts. */
static inline int64_t ft_id_bound(const Module *m)
{
    int64_t bound = INT64_MAX;
    for (int32_t gi = 0; gi < m->graphs.len; gi++) {
        const Graph *g = m->graphs.data[gi];
        for (int32_t k = 0; k < g->nodes.len; k++) {
            const Node *n = &g->nodes.data[k];
            int64_t b;
            if (n->op == OP_GATHER) {
                b = ir_value_type(g, n->in[0]).dims[0];
            } else if (n->op == OP_CROSS_ENTROPY || n->op == OP_SOFTMAX_XENT) {
                Type t = ir_value_type(g, n->in[0]);
                b = t.dims[t.rank - 1];
            } else {
                continue;
            }
            bound = b < bound ? b : bound;
        }
    }
    return bound == INT64_MAX ? 4 : bound;
}

/* One tensor per input and per param of the module, in declaration order,
 * both as doubles (the evaluator's) and as the float32/int32 buffers the
 * generated code reads; the doubles are the float32 values exactly. */
typedef struct FtData {
    int n_inputs, n_params;
    EvalTensor *inputs, *params;
    void **in_buf;
    float **par_buf;
} FtData;

static inline void ft_fill(EvalTensor *t, void **buf, uint64_t *s,
                           double scale, int64_t bound)
{
    int64_t n = ir_type_numel(&t->type);
    *buf = malloc((size_t)(n ? n : 1) * 4);
    for (int64_t i = 0; i < n; i++) {
        if (t->type.dtype == DT_I32) {
            int32_t v = (int32_t)(ft_next(s) % (uint64_t)bound);
            ((int32_t *)*buf)[i] = v;
            t->data[i] = v;
        } else {
            float v = (float)(scale * ft_normal(s));
            ((float *)*buf)[i] = v;
            t->data[i] = v;
        }
    }
}

/* Inputs from N(0, 1), params from N(0, scale^2), ids below the module's
 * id bound (computed on the unfused module m). */
static inline FtData ft_data(const Module *m, uint64_t seed, double scale)
{
    FtData d = {.n_inputs = m->inputs.len, .n_params = m->params.len};
    d.inputs = calloc((size_t)d.n_inputs + 1, sizeof *d.inputs);
    d.params = calloc((size_t)d.n_params + 1, sizeof *d.params);
    d.in_buf = calloc((size_t)d.n_inputs + 1, sizeof *d.in_buf);
    d.par_buf = calloc((size_t)d.n_params + 1, sizeof *d.par_buf);
    int64_t bound = ft_id_bound(m);
    uint64_t s = seed;
    for (int i = 0; i < d.n_inputs; i++) {
        d.inputs[i] = ir_eval_tensor(m->inputs.data[i].type);
        ft_fill(&d.inputs[i], &d.in_buf[i], &s, 1.0, bound);
    }
    for (int i = 0; i < d.n_params; i++) {
        d.params[i] = ir_eval_tensor(m->params.data[i].type);
        void *buf;
        ft_fill(&d.params[i], &buf, &s, scale, bound);
        d.par_buf[i] = buf;
    }
    return d;
}

static inline void ft_data_free(FtData *d)
{
    for (int i = 0; i < d->n_inputs; i++) {
        ir_eval_tensor_free(&d->inputs[i]);
        free(d->in_buf[i]);
    }
    for (int i = 0; i < d->n_params; i++) {
        ir_eval_tensor_free(&d->params[i]);
        free(d->par_buf[i]);
    }
    free(d->inputs);
    free(d->params);
    free(d->in_buf);
    free(d->par_buf);
}

/* ---- evaluating ------------------------------------------------------------- */

/* Every result of m's main graph (the caller frees them with
 * ft_results_free); NULL after printing the evaluator's message. */
static inline EvalTensor *ft_eval(const Module *m, const FtData *d)
{
    const Graph *g = m->graphs.data[0];
    EvalTensor *res = calloc((size_t)g->results.len + 1, sizeof *res);
    char err[512];
    if (!ir_eval_graph(m, g, d->inputs, d->params, NULL, NULL, res, err,
                       sizeof err)) {
        fprintf(stderr, "evaluation of %s failed: %s\n", m->name, err);
        free(res);
        return NULL;
    }
    return res;
}

static inline void ft_results_free(EvalTensor *r, int n)
{
    if (!r)
        return;
    for (int i = 0; i < n; i++)
        ir_eval_tensor_free(&r[i]);
    free(r);
}

static inline const char *ft_result_name(const Module *m, int r)
{
    const Graph *g = m->graphs.data[0];
    const char *s = r < g->result_names.len ? g->result_names.data[r] : NULL;
    return s ? s : "?";
}

/* The normwise error of got against want (see the top of this file), or
 * INFINITY if a non-finite element differs; *where receives the index of
 * the worst element. */
static inline double ft_err_d(const double *got, const double *want, int64_t n,
                              int64_t *where)
{
    double scale = 0, worst = 0;
    *where = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(want[i]) && fabs(want[i]) > scale)
            scale = fabs(want[i]);
    if (scale < FT_FLOOR)
        scale = FT_FLOOR;
    for (int64_t i = 0; i < n; i++) {
        double e;
        if (!isfinite(want[i]) || !isfinite(got[i]))
            e = (isnan(want[i]) && isnan(got[i])) || got[i] == want[i]
                    ? 0
                    : INFINITY;
        else
            e = fabs(got[i] - want[i]) / scale;
        if (e > worst) {
            worst = e;
            *where = i;
        }
    }
    return worst;
}

/* Compares every main-graph result of the evaluated fused and unfused
 * modules; prints each failure as "LABEL: evaluator: RESULT: ...".
 * Returns the number of failing results (a count or type mismatch is one
 * failure). */
static inline int ft_compare_eval(const char *label, const Module *fused,
                                  const EvalTensor *rf, const Module *unfused,
                                  const EvalTensor *ru)
{
    const Graph *gf = fused->graphs.data[0], *gu = unfused->graphs.data[0];
    if (gf->results.len != gu->results.len) {
        fprintf(stderr, "%s: evaluator: %d results fused, %d unfused\n", label,
                gf->results.len, gu->results.len);
        return 1;
    }
    int fails = 0;
    for (int r = 0; r < gu->results.len; r++) {
        if (!ir_type_eq(&rf[r].type, &ru[r].type)) {
            char a[64], b[64];
            fprintf(stderr, "%s: evaluator: result %s: type %s fused, %s unfused\n",
                    label, ft_result_name(unfused, r),
                    ir_type_str(&rf[r].type, a, sizeof a),
                    ir_type_str(&ru[r].type, b, sizeof b));
            fails++;
            continue;
        }
        int64_t n = ir_type_numel(&ru[r].type), at;
        double e = ft_err_d(rf[r].data, ru[r].data, n, &at);
        if (!(e <= FT_TOL)) {
            fprintf(stderr,
                    "%s: evaluator: result %s: relative error %.3g at element "
                    "%lld (fused %.9g, unfused %.9g)\n",
                    label, ft_result_name(unfused, r), e, (long long)at,
                    rf[r].data[at], ru[r].data[at]);
            fails++;
        }
    }
    return fails;
}

/* Whether every result of the evaluated module is finite. */
static inline bool ft_all_finite(const Module *m, const EvalTensor *r)
{
    const Graph *g = m->graphs.data[0];
    for (int k = 0; k < g->results.len; k++) {
        int64_t n = ir_type_numel(&r[k].type);
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(r[k].data[i]))
                return false;
    }
    return true;
}

/* ---- the generated code --------------------------------------------------- */

/* The compiled results of one module, laid out as the main graph's
 * results: the outputs, the loss, the gradients (as doubles). */
typedef struct FtRun {
    int n;
    double **res; /* n arrays */
    int64_t *numel;
} FtRun;

static inline void ft_run_free(FtRun *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->res[i]);
    free(r->res);
    free(r->numel);
}

static inline void *ft_sym(CgJit *j, const Module *m, const char *suffix)
{
    char name[256];
    snprintf(name, sizeof name, "%s_%s", m->name, suffix);
    void *p = cg_jit_lookup(j, name);
    if (!p)
        fprintf(stderr, "missing symbol %s\n", name);
    return p;
}

/* JIT-compiles m, copies the params in, runs forward (outputs) and
 * backward (loss; gradients through NAME_grad).  false after a message. */
static inline bool ft_jit_run(const Module *m, const FtData *d, int opt_level,
                              FtRun *out)
{
    const Graph *g = m->graphs.data[0];
    CgOptions o = {.opt_level = opt_level};
    CgJit *j = cg_jit_new(m, &o);
    if (!j)
        return false;
    void *(*mk)(void) = (void *(*)(void))ft_sym(j, m, "new");
    void (*fr)(void *) = (void (*)(void *))ft_sym(j, m, "free");
    float *(*param)(void *, const char *) =
        (float *(*)(void *, const char *))ft_sym(j, m, "param");
    CgForwardArgv fwd = (CgForwardArgv)ft_sym(j, m, "forward_argv");
    bool train = cg_has_train(m);
    float *(*grad)(void *, const char *) = NULL;
    CgTrainArgv bwd = NULL;
    if (train) {
        grad = (float *(*)(void *, const char *))ft_sym(j, m, "grad");
        bwd = (CgTrainArgv)ft_sym(j, m, "backward_argv");
    }
    if (!mk || !fr || !param || !fwd || (train && (!grad || !bwd))) {
        cg_jit_free(j);
        return false;
    }
    void *inst = mk();
    for (int i = 0; i < m->params.len; i++) {
        const ParamDecl *p = &m->params.data[i];
        float *dst = param(inst, p->name);
        if (!dst) {
            fprintf(stderr, "no param %s\n", p->name);
            fr(inst);
            cg_jit_free(j);
            return false;
        }
        memcpy(dst, d->par_buf[i], (size_t)ir_type_numel(&p->type) * 4);
    }
    out->n = g->results.len;
    out->res = calloc((size_t)out->n + 1, sizeof *out->res);
    out->numel = calloc((size_t)out->n + 1, sizeof *out->numel);
    for (int r = 0; r < out->n; r++) {
        Type t = ir_value_type(g, g->results.data[r]);
        out->numel[r] = ir_type_numel(&t);
        out->res[r] = calloc((size_t)out->numel[r] + 1, sizeof(double));
    }
    bool ok = true;

    /* forward: the used inputs, then the outputs */
    bool *used = calloc((size_t)m->inputs.len + 1, sizeof *used);
    cg_forward_inputs(m, used);
    void **args = calloc((size_t)(m->inputs.len + m->n_outputs) + 1,
                         sizeof *args);
    float **outs = calloc((size_t)m->n_outputs + 1, sizeof *outs);
    int na = 0;
    for (int i = 0; i < m->inputs.len; i++)
        if (used[i])
            args[na++] = d->in_buf[i];
    for (int r = 0; r < m->n_outputs; r++) {
        outs[r] = calloc((size_t)out->numel[r] + 1, 4);
        args[na++] = outs[r];
    }
    int rc = fwd(inst, args);
    if (rc != 0) {
        fprintf(stderr, "%s_forward failed: %d %s\n", m->name, rc,
                nnc_last_error());
        ok = false;
    }
    for (int r = 0; r < m->n_outputs; r++) {
        for (int64_t i = 0; i < out->numel[r]; i++)
            out->res[r][i] = outs[r][i];
        free(outs[r]);
    }
    free(outs);
    free(args);
    free(used);

    /* backward: every input; the loss, then the gradients */
    if (train) {
        nnc_clear_error();
        float loss = bwd(inst, d->in_buf);
        if (isnan(loss) && nnc_last_error()[0]) {
            fprintf(stderr, "%s_backward failed: %s\n", m->name,
                    nnc_last_error());
            ok = false;
        }
        out->res[m->n_outputs][0] = loss;
        int k = m->n_outputs + 1;
        for (int i = 0; i < m->params.len; i++) {
            const ParamDecl *p = &m->params.data[i];
            if (p->frozen)
                continue;
            float *gp = grad(inst, p->name);
            if (!gp || k >= out->n) {
                fprintf(stderr, "no gradient of %s\n", p->name);
                ok = false;
                break;
            }
            for (int64_t e = 0; e < out->numel[k]; e++)
                out->res[k][e] = gp[e];
            k++;
        }
    }
    fr(inst);
    cg_jit_free(j);
    if (!ok)
        ft_run_free(out);
    return ok;
}

/* The worst error (the norm above) over every compiled result, INFINITY
 * if the runs do not match in shape; prints nothing. */
static inline double ft_jit_worst(const FtRun *f, const FtRun *u)
{
    if (f->n != u->n)
        return INFINITY;
    double worst = 0;
    for (int r = 0; r < u->n; r++) {
        if (f->numel[r] != u->numel[r])
            return INFINITY;
        int64_t at;
        double e = ft_err_d(f->res[r], u->res[r], u->numel[r], &at);
        if (!(e <= worst))
            worst = e;
    }
    return worst;
}

/* Compares the compiled results of the fused and unfused modules, with
 * the evaluator's double results ref (of the unfused module, may be NULL)
 * to excuse ill-conditioned ones (see the top of the file).  Returns the
 * number of failing results. */
static inline int ft_compare_jit(const char *label, const Module *m,
                                 const FtRun *f, const FtRun *u,
                                 const EvalTensor *ref)
{
    if (f->n != u->n) {
        fprintf(stderr, "%s: compiled: %d results fused, %d unfused\n", label,
                f->n, u->n);
        return 1;
    }
    int fails = 0;
    for (int r = 0; r < u->n; r++) {
        if (f->numel[r] != u->numel[r]) {
            fprintf(stderr, "%s: compiled: result %s: sizes differ\n", label,
                    ft_result_name(m, r));
            fails++;
            continue;
        }
        int64_t at, at2;
        double e = ft_err_d(f->res[r], u->res[r], u->numel[r], &at);
        if (e <= FT_TOL)
            continue;
        if (ref) {
            double ef = ft_err_d(f->res[r], ref[r].data, u->numel[r], &at2);
            double eu = ft_err_d(u->res[r], ref[r].data, u->numel[r], &at2);
            if (ef <= 2 * eu + FT_TOL) {
                fprintf(stderr,
                        "%s: compiled: result %s: fused vs unfused %.3g, "
                        "excused (vs float64: fused %.3g, unfused %.3g)\n",
                        label, ft_result_name(m, r), e, ef, eu);
                continue;
            }
            fprintf(stderr,
                    "%s: compiled: result %s: relative error %.3g at element "
                    "%lld (fused %.9g, unfused %.9g; vs float64: fused %.3g, "
                    "unfused %.3g)\n",
                    label, ft_result_name(m, r), e, (long long)at,
                    f->res[r][at], u->res[r][at], ef, eu);
        } else {
            fprintf(stderr,
                    "%s: compiled: result %s: relative error %.3g at element "
                    "%lld (fused %.9g, unfused %.9g)\n",
                    label, ft_result_name(m, r), e, (long long)at,
                    f->res[r][at], u->res[r][at]);
        }
        fails++;
    }
    return fails;
}

#endif
