/* eval.c — the reference evaluator: runs a graph in double precision.
 *
 * Tests use it as the oracle: finite differences of the loss (central, in
 * double) against the gradients the autodiff pass builds, and the
 * gradients of the conformance models against PyTorch's in float64.  So
 * it is written for obviousness, not speed: every value gets a fresh
 * malloc'ed array of doubles, every op is a loop straight from its
 * definition (PyTorch's, as the language spec requires), and i32 values
 * are doubles holding integers.
 *
 * ir_eval_graph runs the nodes that contribute to the graph's results, in
 * definition order, through a table with
 * one entry per op of ops.def (ir_eval_has_rule lets a test check there is
 * no gap).  This file has the walker, the leaves, the elementwise ops,
 * dropout and scan; eval_ops.c the rest.
 *
 * Dropout: the identity unless EvalOptions.dropout_seed is non-zero.  With
 * a seed, element i of a dropout with site s keeps its value scaled by
 * 1/(1-p) when a uniform draw hashed from (seed, s, path, i) is >= p, and
 * is 0 otherwise; `path` hashes the positions (along axis 0 of the scanned
 * tensors, whatever the direction) of the scan steps the dropout runs in.
 * A dropout and the dropout autodiff builds for its gradient share the
 * site and the path, hence the mask, which is what makes the gradient
 * checkable by finite differences. */
#include "eval.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define PI      3.14159265358979323846
#define SQRT1_2 0.70710678118654752440

/* Tensors the evaluator would take too long over are refused. */
#define MAX_EVAL_ELEMENTS ((int64_t)1 << 28)

/* ---- tensors and helpers ------------------------------------------------ */

EvalTensor ir_eval_tensor(Type t)
{
    int64_t n = ir_type_numel(&t);
    EvalTensor x = {.type = t,
                    .data = calloc((size_t)(n ? n : 1), sizeof(double))};
    if (!x.data)
        ir_internal_error("eval", "out of memory for %lld elements",
                          (long long)n);
    return x;
}

void ir_eval_tensor_free(EvalTensor *t)
{
    free(t->data);
    t->data = NULL;
}

bool ev_fail(Eval *e, const char *fmt, ...)
{
    if (e->err && e->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->err, e->errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

const EvalTensor *ev_in(Eval *e, const Node *n, int i)
{
    return &e->vals[n->in[i].id];
}

EvalTensor *ev_out(Eval *e, const Node *n, int k)
{
    EvalTensor *t = &e->vals[n->out[k].id];
    *t = ir_eval_tensor(e->g->values.data[n->out[k].id].type);
    return t;
}

void ev_strides(const Type *t, int64_t *st)
{
    int64_t s = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= t->dims[i];
    }
}

void ev_bcast_strides(const Type *in, const Type *out, int64_t *st)
{
    int64_t own[IR_MAX_RANK];
    ev_strides(in, own);
    for (int i = 0; i < out->rank; i++) {
        int j = i - (out->rank - in->rank);
        st[i] = j < 0 || in->dims[j] == 1 ? 0 : own[j];
    }
}

int64_t ev_offset(int64_t flat, const Type *t, const int64_t *st)
{
    int64_t off = 0;
    for (int i = t->rank - 1; i >= 0; i--) {
        off += flat % t->dims[i] * st[i];
        flat /= t->dims[i];
    }
    return off;
}

/* ---- leaves ------------------------------------------------------------- */

static bool copy_into(Eval *e, const Node *n, const EvalTensor *src,
                      const char *what, int index)
{
    EvalTensor *y = ev_out(e, n, 0);
    if (!src || !src->data || !ir_type_eq(&src->type, &y->type)) {
        char a[96];
        return ev_fail(e, "%s %d: no tensor of type %s given", what, index,
                       ir_type_str(&y->type, a, sizeof a));
    }
    memcpy(y->data, src->data,
           sizeof(double) * (size_t)ir_type_numel(&y->type));
    return true;
}

static bool ev_leaf(Eval *e, const Node *n)
{
    int32_t i = n->attr.index;
    switch (n->op) {
    case OP_INPUT:
        return copy_into(e, n, e->inputs ? &e->inputs[i] : NULL, "input", i);
    case OP_PARAM:
        return copy_into(e, n, e->params ? &e->params[i] : NULL, "param", i);
    default: return copy_into(e, n, e->args ? &e->args[i] : NULL, "arg", i);
    }
}

static bool ev_const(Eval *e, const Node *n)
{
    EvalTensor *y = ev_out(e, n, 0);
    int64_t count = ir_type_numel(&y->type);
    for (int64_t i = 0; i < count; i++)
        y->data[i] = n->attr.value;
    return true;
}

/* ---- elementwise -------------------------------------------------------- */

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static double unary(Op op, double p, double x)
{
    switch (op) {
    case OP_NEG: return -x;
    case OP_EXP: return exp(x);
    case OP_LOG: return log(x);
    case OP_SQRT: return sqrt(x);
    case OP_RSQRT: return 1.0 / sqrt(x);
    case OP_ABS: return fabs(x);
    case OP_RELU: return isnan(x) || x > 0 ? x : 0.0;
    case OP_SIGMOID: return sigmoid(x);
    case OP_TANH: return tanh(x);
    case OP_GELU: return 0.5 * x * (1.0 + erf(x * SQRT1_2));
    case OP_GELU_TANH:
        return 0.5 * x *
               (1.0 + tanh(sqrt(2.0 / PI) * (x + 0.044715 * x * x * x)));
    case OP_SILU: return x * sigmoid(x);
    case OP_SOFTPLUS: return x > 20.0 ? x : log1p(exp(x));
    case OP_POW: return pow(x, p);
    default: ir_internal_error("eval", "%s is not unary", ir_op_info[op].name);
    }
}

/* torch.maximum and torch.minimum propagate a NaN from either side. */
static double binary(Op op, double a, double b)
{
    switch (op) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    case OP_DIV: return a / b;
    case OP_MAXIMUM: return isnan(a) || isnan(b) ? a + b : a > b ? a : b;
    case OP_MINIMUM: return isnan(a) || isnan(b) ? a + b : a < b ? a : b;
    case OP_LT: return a < b;
    case OP_LE: return a <= b;
    case OP_GT: return a > b;
    case OP_GE: return a >= b;
    case OP_EQ: return a == b;
    case OP_NE: return a != b;
    default: ir_internal_error("eval", "%s is not binary", ir_op_info[op].name);
    }
}

static bool ev_unary(Eval *e, const Node *n)
{
    const EvalTensor *x = ev_in(e, n, 0);
    EvalTensor *y = ev_out(e, n, 0);
    int64_t count = ir_type_numel(&y->type);
    for (int64_t i = 0; i < count; i++)
        y->data[i] = unary(n->op, n->attr.value, x->data[i]);
    return true;
}

/* BINARY ops and WHERE: every operand read through broadcast strides. */
static bool ev_broadcasting(Eval *e, const Node *n)
{
    EvalTensor *y = ev_out(e, n, 0);
    int64_t st[3][IR_MAX_RANK];
    for (int k = 0; k < n->n_in; k++)
        ev_bcast_strides(&ev_in(e, n, k)->type, &y->type, st[k]);
    int64_t count = ir_type_numel(&y->type);
    for (int64_t i = 0; i < count; i++) {
        double v[3] = {0, 0, 0};
        for (int k = 0; k < n->n_in; k++)
            v[k] = ev_in(e, n, k)->data[ev_offset(i, &y->type, st[k])];
        y->data[i] = n->op == OP_WHERE ? (v[0] != 0 ? v[1] : v[2])
                                       : binary(n->op, v[0], v[1]);
    }
    return true;
}

/* ---- dropout ------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* A uniform draw in [0, 1) from the mask's key. */
static double dropout_draw(uint64_t seed, int32_t site, uint64_t path,
                           int64_t i)
{
    uint64_t h = mix64(seed ^ mix64((uint64_t)(uint32_t)site));
    h = mix64(h ^ path);
    h = mix64(h ^ (uint64_t)i);
    return (double)(h >> 11) * 0x1.0p-53;
}

static bool ev_dropout(Eval *e, const Node *n)
{
    const EvalTensor *x = ev_in(e, n, 0);
    EvalTensor *y = ev_out(e, n, 0);
    int64_t count = ir_type_numel(&y->type);
    double p = n->attr.value;
    uint64_t seed = e->opt ? e->opt->dropout_seed : 0;
    for (int64_t i = 0; i < count; i++) {
        if (!seed)
            y->data[i] = x->data[i];
        else if (p >= 1 || dropout_draw(seed, n->attr.index, e->path, i) < p)
            y->data[i] = 0;
        else
            y->data[i] = x->data[i] / (1 - p);
    }
    return true;
}

/* ---- scan --------------------------------------------------------------- */

/* The step's slice of an over tensor: its row t along axis 0. */
static EvalTensor slice_row(const EvalTensor *x, int64_t t)
{
    Type row = ir_type_make(x->type.dtype, x->type.rank - 1, x->type.dims + 1);
    EvalTensor s = ir_eval_tensor(row);
    int64_t len = ir_type_numel(&row);
    memcpy(s.data, x->data + t * len, sizeof(double) * (size_t)len);
    return s;
}

static void free_values(EvalTensor *ts, int n)
{
    for (int i = 0; i < n; i++)
        ir_eval_tensor_free(&ts[i]);
    free(ts);
}

static bool eval_graph(Eval *outer, const Graph *g, const EvalTensor *args,
                       uint64_t path, EvalTensor *results);

/* One step at position t: args are the carries, the slices at t and the
 * captures; the body's results go to res. */
static bool scan_step(Eval *e, const Node *n, const Graph *body,
                      EvalTensor *carry, int64_t t, EvalTensor *res)
{
    int nc = n->attr.n_carry, no = n->attr.n_over;
    EvalTensor *args = calloc((size_t)n->n_in + 1, sizeof *args);
    if (!args)
        ir_internal_error("eval", "out of memory");
    for (int i = 0; i < n->n_in; i++) {
        if (i < nc)
            args[i] = carry[i];
        else if (i < nc + no)
            args[i] = slice_row(ev_in(e, n, i), t);
        else
            args[i] = *ev_in(e, n, i);
    }
    uint64_t path = mix64(e->path ^ mix64((uint64_t)t + 1));
    bool ok = eval_graph(e, body, args, path, res);
    for (int i = nc; i < nc + no; i++)
        ir_eval_tensor_free(&args[i]);
    free(args);
    return ok;
}

static bool ev_scan(Eval *e, const Node *n)
{
    const Graph *body = e->m->graphs.data[n->attr.graph];
    int nc = n->attr.n_carry, nr = body->results.len;
    int64_t steps = ev_in(e, n, nc)->type.dims[0];
    EvalTensor *carry = calloc((size_t)nc + 1, sizeof *carry);
    EvalTensor *res = calloc((size_t)nr + 1, sizeof *res);
    if (!carry || !res)
        ir_internal_error("eval", "out of memory");
    for (int i = 0; i < nc; i++) {
        carry[i] = ir_eval_tensor(ev_in(e, n, i)->type);
        memcpy(carry[i].data, ev_in(e, n, i)->data,
               sizeof(double) * (size_t)ir_type_numel(&carry[i].type));
    }
    for (int k = nc; k < nr; k++)
        ev_out(e, n, k);
    bool ok = true;
    for (int64_t s = 0; s < steps && ok; s++) {
        int64_t t = n->attr.flag ? steps - 1 - s : s;
        ok = scan_step(e, n, body, carry, t, res);
        if (!ok)
            break;
        for (int i = 0; i < nc; i++) {
            ir_eval_tensor_free(&carry[i]);
            carry[i] = res[i];
        }
        for (int k = nc; k < nr; k++) {
            int64_t len = ir_type_numel(&res[k].type);
            memcpy(e->vals[n->out[k].id].data + t * len, res[k].data,
                   sizeof(double) * (size_t)len);
            ir_eval_tensor_free(&res[k]);
        }
    }
    for (int i = 0; i < nc; i++) {
        if (ok)
            e->vals[n->out[i].id] = carry[i];
        else
            ir_eval_tensor_free(&carry[i]);
    }
    free(carry);
    free(res);
    return ok;
}

/* ---- the table and the walker ------------------------------------------- */

static const EvalFn eval_rules[OP_COUNT] = {
    [OP_INPUT] = ev_leaf,
    [OP_PARAM] = ev_leaf,
    [OP_ARG] = ev_leaf,
    [OP_CONST] = ev_const,
    [OP_NEG] = ev_unary,
    [OP_EXP] = ev_unary,
    [OP_LOG] = ev_unary,
    [OP_SQRT] = ev_unary,
    [OP_RSQRT] = ev_unary,
    [OP_ABS] = ev_unary,
    [OP_RELU] = ev_unary,
    [OP_SIGMOID] = ev_unary,
    [OP_TANH] = ev_unary,
    [OP_GELU] = ev_unary,
    [OP_GELU_TANH] = ev_unary,
    [OP_SILU] = ev_unary,
    [OP_SOFTPLUS] = ev_unary,
    [OP_POW] = ev_unary,
    [OP_ADD] = ev_broadcasting,
    [OP_SUB] = ev_broadcasting,
    [OP_MUL] = ev_broadcasting,
    [OP_DIV] = ev_broadcasting,
    [OP_MAXIMUM] = ev_broadcasting,
    [OP_MINIMUM] = ev_broadcasting,
    [OP_LT] = ev_broadcasting,
    [OP_LE] = ev_broadcasting,
    [OP_GT] = ev_broadcasting,
    [OP_GE] = ev_broadcasting,
    [OP_EQ] = ev_broadcasting,
    [OP_NE] = ev_broadcasting,
    [OP_WHERE] = ev_broadcasting,
    [OP_MATMUL] = ev_matmul,
    [OP_TRANSPOSE] = ev_permute,
    [OP_PERMUTE] = ev_permute,
    [OP_RESHAPE] = ev_reshape,
    [OP_BROADCAST_TO] = ev_broadcast_to,
    [OP_CONCAT] = ev_concat,
    [OP_SLICE] = ev_slice,
    [OP_SUM] = ev_reduce,
    [OP_MEAN] = ev_reduce,
    [OP_MAX] = ev_reduce,
    [OP_SOFTMAX] = ev_softmax,
    [OP_LOG_SOFTMAX] = ev_softmax,
    [OP_LAYERNORM] = ev_norm,
    [OP_RMSNORM] = ev_norm,
    [OP_GATHER] = ev_gather,
    [OP_CAUSAL_MASK] = ev_causal_mask,
    [OP_ATTENTION] = ev_attention,
    [OP_DROPOUT] = ev_dropout,
    [OP_CROSS_ENTROPY] = ev_cross_entropy,
    [OP_MSE] = ev_pair_loss,
    [OP_BCE_WITH_LOGITS] = ev_pair_loss,
    [OP_SCATTER_ADD] = ev_scatter_add,
    [OP_ONE_HOT] = ev_one_hot,
    [OP_SCAN] = ev_scan,
    [OP_LSTM_CELL] = ev_lstm_cell,
    [OP_LSTM_CELL_GRAD] = ev_lstm_cell_grad,
    [OP_ATTENTION_GRAD] = ev_attention_grad,
    [OP_SOFTMAX_XENT] = ev_softmax_xent,
    [OP_FUSED] = ev_fused,
    [OP_MATMUL_EPILOGUE] = ev_matmul_epilogue,
};

bool ir_eval_has_rule(Op op)
{
    return (unsigned)op < OP_COUNT && eval_rules[op] != NULL;
}

static bool node_too_large(Eval *e, const Node *n)
{
    for (int k = 0; k < n->n_out; k++) {
        const Type *t = &e->g->values.data[n->out[k].id].type;
        if (ir_type_numel(t) > MAX_EVAL_ELEMENTS)
            return !ev_fail(e,
                            "node %s: a result of %lld elements is too "
                            "large to evaluate",
                            ir_op_info[n->op].name,
                            (long long)ir_type_numel(t));
    }
    return false;
}

/* live[i]: node i of g contributes to a result (only those are run). */
static bool *live_nodes(const Graph *g)
{
    bool *live_v = calloc((size_t)g->values.len, sizeof *live_v);
    bool *live = calloc((size_t)g->nodes.len + 1, sizeof *live);
    if (!live_v || !live)
        ir_internal_error("eval", "out of memory");
    for (int32_t r = 0; r < g->results.len; r++)
        live_v[g->results.data[r].id] = true;
    for (int32_t i = g->nodes.len - 1; i >= 0; i--) {
        const Node *n = &g->nodes.data[i];
        for (int32_t k = 0; k < n->n_out; k++)
            live[i] |= live_v[n->out[k].id];
        for (int32_t k = 0; k < n->n_in && live[i]; k++)
            live_v[n->in[k].id] = true;
    }
    free(live_v);
    return live;
}

/* Runs g on args in a frame of its own; results are deep copies. */
static bool eval_graph(Eval *outer, const Graph *g, const EvalTensor *args,
                       uint64_t path, EvalTensor *results)
{
    Eval e = *outer;
    e.g = g;
    e.args = args;
    e.path = path;
    e.vals = calloc((size_t)g->values.len, sizeof *e.vals);
    if (!e.vals)
        ir_internal_error("eval", "out of memory");
    bool ok = true, *live = live_nodes(g);
    for (int32_t i = 0; i < g->nodes.len && ok; i++) {
        const Node *n = &g->nodes.data[i];
        if (!live[i])
            continue;
        if (!eval_rules[n->op])
            ir_internal_error("eval", "no rule for %s", ir_op_info[n->op].name);
        ok = !node_too_large(&e, n) && eval_rules[n->op](&e, n);
    }
    for (int32_t r = 0; r < g->results.len && ok; r++) {
        const EvalTensor *v = &e.vals[g->results.data[r].id];
        results[r] = ir_eval_tensor(v->type);
        memcpy(results[r].data, v->data,
               sizeof(double) * (size_t)ir_type_numel(&v->type));
    }
    free_values(e.vals, g->values.len);
    free(live);
    return ok;
}

bool ev_body(Eval *e, const Graph *body, const EvalTensor *args,
             EvalTensor *results)
{
    return eval_graph(e, body, args, e->path, results);
}

bool ir_eval_graph(const Module *m, const Graph *g, const EvalTensor *inputs,
                   const EvalTensor *params, const EvalTensor *args,
                   const EvalOptions *opt, EvalTensor *results, char *err,
                   size_t errlen)
{
    Eval e = {.m = m,
              .inputs = inputs,
              .params = params,
              .opt = opt,
              .err = err,
              .errlen = errlen};
    if (err && errlen)
        err[0] = 0;
    return eval_graph(&e, g, args, 0, results);
}
