/* fuse_attention.c — recognises hand-written attention and turns it into
 * one attention node.  Runs first in the pipeline, before autodiff, so
 * that attention's own gradient rule gives one attention_grad node (whose
 * kernel recomputes the probabilities) instead of a backward graph that
 * keeps the T x T probabilities of every head alive.
 *
 * The pattern, in the main graph and every scan body:
 *
 *     o = softmax(mask(scale(matmul(q, transpose(k)))), axis = last) @ v
 *
 * where mask is causal_mask or nothing, and scale is mul(s, c), mul(c, s),
 * div(s, c) or nothing, c being a constant scalar (a const node, or unary
 * and binary ops of consts as the front end writes `/ sqrt(HD)`).  The
 * scores, the masked scores and the probabilities must have no other use:
 * otherwise they would be computed anyway.  Before and after (scale 0.5):
 *
 *     %3 = transpose %1 : f32[2, 8, 4]
 *     %4 = matmul %0, %3 : f32[2, 4, 4]
 *     %5 = const 2 : f32[]
 *     %6 = div %4, %5 : f32[2, 4, 4]          %3 = attention %0, %1, %2
 *     %7 = causal_mask %6 : f32[2, 4, 4]  =>        causal=true scale=0.5
 *     %8 = softmax %7 axis=2 : f32[2, 4, 4]         : f32[2, 4, 8]
 *     %9 = matmul %8, %2 : f32[2, 4, 8]
 *
 * The final matmul is rewritten in place (same result value, same place in
 * the node order); the pattern's other nodes die and are removed by DCE at
 * the end of the pass.  docs/fusion.md describes the pass. */
#include "passes/pass.h"

#include <math.h>
#include <string.h>

/* The defining node of v if it is op, else NULL. */
static Node *def_as(Graph *g, Value v, Op op)
{
    if (v.id == 0)
        return NULL;
    Node *n = ir_def(g, v);
    return n->op == op ? n : NULL;
}

/* v is a constant: every element has one value, *out.  Follows the scalar
 * arithmetic the front end writes for constant expressions (sqrt(HD)). */
static bool const_value(Graph *g, Value v, int depth, double *out)
{
    if (v.id == 0 || depth > 8)
        return false;
    const Node *n = ir_def(g, v);
    double a, b;
    switch (n->op) {
    case OP_CONST: *out = n->attr.value; return true;
    case OP_RESHAPE:
    case OP_BROADCAST_TO: return const_value(g, n->in[0], depth + 1, out);
    case OP_NEG:
    case OP_SQRT:
    case OP_RSQRT:
    case OP_EXP:
    case OP_LOG:
        if (!const_value(g, n->in[0], depth + 1, &a))
            return false;
        *out = n->op == OP_NEG     ? -a
               : n->op == OP_SQRT  ? sqrt(a)
               : n->op == OP_RSQRT ? 1 / sqrt(a)
               : n->op == OP_EXP   ? exp(a)
                                   : log(a);
        return true;
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
        if (!const_value(g, n->in[0], depth + 1, &a) ||
            !const_value(g, n->in[1], depth + 1, &b))
            return false;
        *out = n->op == OP_ADD   ? a + b
               : n->op == OP_SUB ? a - b
               : n->op == OP_MUL ? a * b
                                 : a / b;
        return true;
    default: return false;
    }
}

/* Value v (one of the pattern's intermediates) is read only once. */
static bool single_use(const int32_t *uses, Value v) { return uses[v.id] == 1; }

/* s = scale(qk): sets *qk and *scale.  With no scale node, qk = s. */
static void match_scale(Graph *g, const int32_t *uses, Value s, Value *qk,
                        double *scale)
{
    *qk = s;
    *scale = 1;
    Node *n = ir_def(g, s);
    if (n->op != OP_MUL && n->op != OP_DIV)
        return;
    Type ts = ir_value_type(g, s);
    for (int side = 0; side < (n->op == OP_MUL ? 2 : 1); side++) {
        Value x = n->in[side], c = n->in[1 - side];
        double cv;
        Type tx = ir_value_type(g, x);
        if (!const_value(g, c, 0, &cv) || !isfinite(cv) ||
            !ir_type_eq(&tx, &ts))
            continue;
        if (n->op == OP_DIV && cv == 0)
            continue;
        if (!def_as(g, x, OP_MATMUL) || !single_use(uses, x))
            continue;
        *qk = x;
        *scale = n->op == OP_DIV ? 1 / cv : cv;
        return;
    }
}

/* Node k of g is the final matmul of the pattern: rewrites it into
 * attention and returns true, or leaves everything alone. */
static bool fuse_at(Module *m, Graph *g, int32_t k)
{
    int32_t *uses = pass_use_counts(g);
    Node *root = &g->nodes.data[k];
    Value p = root->in[0], v = root->in[1];
    Node *sm = def_as(g, p, OP_SOFTMAX);
    if (!sm || !single_use(uses, p))
        return false;
    Type tp = ir_value_type(g, p);
    if (sm->attr.axis != tp.rank - 1)
        return false;
    Value s = sm->in[0];
    if (!single_use(uses, s))
        return false;
    bool causal = false;
    Node *mask = def_as(g, s, OP_CAUSAL_MASK);
    if (mask) {
        causal = true;
        s = mask->in[0];
        if (!single_use(uses, s))
            return false;
    }
    Value qk;
    double scale;
    match_scale(g, uses, s, &qk, &scale);
    Node *mm = def_as(g, qk, OP_MATMUL);
    if (!mm)
        return false;
    Node *tr = def_as(g, mm->in[1], OP_TRANSPOSE);
    if (!tr)
        return false;

    Value ops[3] = {mm->in[0], tr->in[0], v};
    Type in_types[3], out;
    for (int i = 0; i < 3; i++)
        in_types[i] = ir_value_type(g, ops[i]);
    Attrs attr;
    memset(&attr, 0, sizeof attr);
    attr.flag = causal;
    attr.value = scale;
    char err[256];
    Type want = ir_value_type(g, root->out[0]);
    if (ir_infer(m, OP_ATTENTION, in_types, 3, &attr, &out, 1, err,
                 sizeof err) != 1 ||
        !ir_type_eq(&out, &want))
        return false;

    root = &g->nodes.data[k];
    root->op = OP_ATTENTION;
    root->n_in = 3;
    root->in = arena_alloc(g->arena, sizeof ops);
    memcpy(root->in, ops, sizeof ops);
    root->attr = attr;
    return true;
}

static bool fuse_graph(Module *m, Graph *g)
{
    bool changed = false;
    for (int32_t k = 0; k < g->nodes.len; k++)
        if (g->nodes.data[k].op == OP_MATMUL)
            changed |= fuse_at(m, g, k);
    return changed;
}

bool pass_fuse_attention(Module *m, PassCtx *ctx)
{
    return pass_fuse_graphs(m, ctx, fuse_graph);
}
