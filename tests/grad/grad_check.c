/* grad_check.c — the finite-difference harness of the gradient tests
 * (see grad_check.h).  Central differences in double precision: with
 * step h the truncation error is O(h^2) and the rounding error
 * O(eps / h), so h = 1e-5 gives about 1e-10 on losses of order one,
 * far below the 1e-6 the tests demand. */
#include "grad_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

Module *gc_compile(Arena *a, const char *src, const char *const *dims,
                   int n_dims)
{
    DimOverride ov[16];
    for (int i = 0; i < n_dims && i < 16; i++) {
        const char *eq = strchr(dims[i], '=');
        ov[i] = (DimOverride){arena_strndup(a, dims[i], (size_t)(eq - dims[i])),
                              strtoll(eq + 1, NULL, 10), false};
    }
    Diag d;
    diag_init(&d, "test.nn", src, strlen(src));
    Module *m = fe_compile(a, src, strlen(src), "test", ov, n_dims, &d);
    return m && d.n_errors == 0 ? m : NULL;
}

Module *gc_read_ir(Arena *a, const char *text)
{
    Diag d;
    diag_init(&d, "test.ir", text, strlen(text));
    return ir_read_module(a, text, strlen(text), &d);
}

static char *print_module(const Module *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ir_print_module(f, m);
    fclose(f);
    return buf;
}

/* The differentiated module prints as text that reads back to itself. */
static void check_round_trip(const Module *m)
{
    char *text = print_module(m);
    Arena *a = arena_new();
    Diag d;
    diag_init(&d, "round-trip.ir", text, strlen(text));
    Module *back = ir_read_module(a, text, strlen(text), &d);
    char *again = back ? print_module(back) : NULL;
    if (!again || strcmp(text, again) != 0) {
        fprintf(stderr, "print -> read -> print differs for model %s\n",
                m->name);
        abort();
    }
    free(again);
    free(text);
    arena_free(a);
}

void gc_differentiate(Module *m)
{
    PassCtx ctx = {.m = m, .arena = m->arena};
    int id = pass_by_name("autodiff");
    pass_run_list(m, &ctx, &(PassOptions){.verify_each = true}, &id, 1);
    check_round_trip(m);
}

bool gc_has_op(const Module *m, Op op)
{
    for (int32_t gi = 0; gi < m->graphs.len; gi++) {
        const Graph *g = m->graphs.data[gi];
        for (int32_t k = 0; k < g->nodes.len; k++)
            if (g->nodes.data[k].op == op)
                return true;
    }
    return false;
}

/* ---- random values -------------------------------------------------------- */

static uint64_t next_u64(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15u);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static double uniform(uint64_t *s)
{
    return ((double)(next_u64(s) >> 11) + 0.5) * 0x1.0p-53;
}

static double normal(uint64_t *s)
{
    return sqrt(-2 * log(uniform(s))) * cos(6.283185307179586 * uniform(s));
}

/* The smallest range of ids or targets that a node of m accepts. */
static int64_t id_bound(const Module *m)
{
    int64_t bound = INT64_MAX;
    for (int32_t gi = 0; gi < m->graphs.len; gi++) {
        const Graph *g = m->graphs.data[gi];
        for (int32_t k = 0; k < g->nodes.len; k++) {
            const Node *n = &g->nodes.data[k];
            if (n->op != OP_GATHER && n->op != OP_CROSS_ENTROPY)
                continue;
            Type t = ir_value_type(g, n->in[0]);
            int64_t b = n->op == OP_GATHER ? t.dims[0] : t.dims[t.rank - 1];
            bound = b < bound ? b : bound;
        }
    }
    return bound == INT64_MAX ? 4 : bound;
}

static void fill(EvalTensor *t, uint64_t *s, double scale, int64_t bound)
{
    int64_t n = ir_type_numel(&t->type);
    for (int64_t i = 0; i < n; i++)
        t->data[i] = t->type.dtype == DT_I32
                         ? (double)(next_u64(s) % (uint64_t)bound)
                         : scale * normal(s);
}

GcModel gc_model(Arena *a, Module *m, uint64_t seed, double scale)
{
    GcModel gm = {.arena = a, .m = m};
    gc_differentiate(m);
    uint64_t s = seed;
    int64_t bound = id_bound(m);
    gm.inputs = calloc((size_t)m->inputs.len + 1, sizeof *gm.inputs);
    gm.params = calloc((size_t)m->params.len + 1, sizeof *gm.params);
    for (int32_t i = 0; i < m->inputs.len; i++) {
        gm.inputs[i] = ir_eval_tensor(m->inputs.data[i].type);
        fill(&gm.inputs[i], &s, 1.0, bound);
    }
    for (int32_t i = 0; i < m->params.len; i++) {
        gm.params[i] = ir_eval_tensor(m->params.data[i].type);
        fill(&gm.params[i], &s, scale, bound);
    }
    return gm;
}

void gc_model_free(GcModel *gm)
{
    for (int32_t i = 0; i < gm->m->inputs.len; i++)
        ir_eval_tensor_free(&gm->inputs[i]);
    for (int32_t i = 0; i < gm->m->params.len; i++)
        ir_eval_tensor_free(&gm->params[i]);
    free(gm->inputs);
    free(gm->params);
}

/* ---- evaluation ----------------------------------------------------------- */

/* Evaluates the main graph's results first..first+count-1 (the others are
 * hidden for the call, so only what those need is run). */
static EvalTensor *eval_results(GcModel *gm, int32_t first, int32_t count)
{
    Graph *g = gm->m->graphs.data[0];
    VEC(Value) saved = {g->results.data, g->results.len, g->results.cap};
    g->results.data += first;
    g->results.len = count;
    EvalTensor *res = calloc((size_t)count + 1, sizeof *res);
    char err[512];
    bool ok = ir_eval_graph(gm->m, g, gm->inputs, gm->params, NULL, &gm->opt,
                            res, err, sizeof err);
    g->results.data = saved.data;
    g->results.len = saved.len;
    if (!ok) {
        fprintf(stderr, "evaluation failed: %s\n", err);
        abort();
    }
    return res;
}

double gc_loss(GcModel *gm)
{
    EvalTensor *r = eval_results(gm, gm->m->n_outputs, 1);
    double loss = r[0].data[0];
    ir_eval_tensor_free(&r[0]);
    free(r);
    return loss;
}

EvalTensor *gc_gradients(GcModel *gm)
{
    return eval_results(gm, gm->m->n_outputs + 1, gm->m->n_grads);
}

/* ---- the check ------------------------------------------------------------ */

/* Central differences of the loss for every element of param p. */
static EvalTensor central_differences(GcModel *gm, EvalTensor *p, double h)
{
    EvalTensor fd = ir_eval_tensor(p->type);
    int64_t n = ir_type_numel(&p->type);
    for (int64_t i = 0; i < n; i++) {
        double x = p->data[i];
        p->data[i] = x + h;
        double up = gc_loss(gm);
        p->data[i] = x - h;
        double down = gc_loss(gm);
        p->data[i] = x;
        fd.data[i] = (up - down) / (2 * h);
    }
    return fd;
}

static double norm(const EvalTensor *a)
{
    double s = 0;
    for (int64_t i = 0; i < ir_type_numel(&a->type); i++)
        s += a->data[i] * a->data[i];
    return sqrt(s);
}

/* ||a - b|| / ||b||, or ||a - b|| when b is about zero. */
static double relative_error(const EvalTensor *a, const EvalTensor *b)
{
    double diff = 0, norm = 0;
    int64_t n = ir_type_numel(&a->type);
    for (int64_t i = 0; i < n; i++) {
        diff += (a->data[i] - b->data[i]) * (a->data[i] - b->data[i]);
        norm += b->data[i] * b->data[i];
    }
    diff = sqrt(diff);
    norm = sqrt(norm);
    return norm > 1e-6 ? diff / norm : diff;
}

double gc_check(GcModel *gm, double h, double tol, bool verbose)
{
    EvalTensor *grads = gc_gradients(gm);
    double worst = 0;
    int k = 0;
    for (int32_t i = 0; i < gm->m->params.len; i++) {
        if (gm->m->params.data[i].frozen)
            continue;
        EvalTensor fd = central_differences(gm, &gm->params[i], h);
        double err = relative_error(&grads[k], &fd);
        if (verbose || !(err <= tol))
            fprintf(stderr, "  %s %s: relative error %.3g (|grad| %.3g)\n",
                    gm->m->name, gm->m->params.data[i].name, err, norm(&fd));
        worst = err > worst || isnan(err) ? err : worst;
        ir_eval_tensor_free(&fd);
        ir_eval_tensor_free(&grads[k++]);
    }
    free(grads);
    return worst;
}
