/* grad_build.c — the node builders the gradient rules are written with.
 *
 * Each builder appends one node to the graph being differentiated through
 * ir_add, so the shape rule checks every backward node as the front end's
 * nodes are checked; a rule that builds an ill-typed node is a compiler
 * bug, reported as an internal error naming the op.  gb_binary folds the
 * identities the rules produce all the time (x * 1 from the loss's seed,
 * x + 0, x - 0, x / 1, and arithmetic between scalar constants) so that
 * the backward graph does not carry them through every later pass.
 * gb_reduce_to undoes broadcasting: the gradient of an operand that was
 * broadcast is summed over the axes it was broadcast along. */
#include "passes/grad.h"

#include <string.h>

Type gb_type(Ad *ad, Value v) { return ir_value_type(ad->g, v); }

/* ir_add without its limit of 64 operands (a scan's backward takes more
 * than its forward, a concat may join many pieces). */
Value gb_node_results(Ad *ad, Op op, const Value *in, int n_in,
                      const Attrs *attr, int max_out, Value *outs)
{
    Arena *a = ad->m->arena;
    Type *in_t = arena_alloc(a, sizeof(Type) * (size_t)(n_in + 1));
    Type *out_t = arena_alloc(a, sizeof(Type) * (size_t)max_out);
    for (int i = 0; i < n_in; i++)
        in_t[i] = gb_type(ad, in[i]);
    Attrs at = attr ? *attr : (Attrs){0};
    char err[512];
    int n =
        ir_infer(ad->m, op, in_t, n_in, &at, out_t, max_out, err, sizeof err);
    if (n <= 0)
        ir_internal_error("autodiff", "graph %s: building %s: %s", ad->g->name,
                          ir_op_info[op].name, err);
    int32_t id = ir_add_typed(ad->g, op, in, n_in, &at, (SrcLoc){0}, out_t, n);
    const Node *node = &ad->g->nodes.data[id];
    if (outs)
        memcpy(outs, node->out, sizeof(Value) * (size_t)n);
    return node->out[0];
}

Value gb_node(Ad *ad, Op op, const Value *in, int n_in, const Attrs *attr)
{
    return gb_node_results(ad, op, in, n_in, attr, 1, NULL);
}

Value gb_unary(Ad *ad, Op op, Value x) { return gb_node(ad, op, &x, 1, NULL); }

Value gb_const(Ad *ad, double v, Type t)
{
    Attrs a = {.value = v, .type = t};
    return gb_node(ad, OP_CONST, NULL, 0, &a);
}

Value gb_scalar(Ad *ad, double v)
{
    return gb_const(ad, v, ir_type_scalar(DT_F32));
}

Value gb_zeros(Ad *ad, Type t) { return gb_const(ad, 0.0, t); }

/* The value of a CONST node, if v is one. */
static bool const_value(Ad *ad, Value v, double *out)
{
    const Node *n = ir_def(ad->g, v);
    if (n->op != OP_CONST)
        return false;
    *out = n->attr.value;
    return true;
}

static bool is_const(Ad *ad, Value v, double want)
{
    double x;
    return const_value(ad, v, &x) && x == want;
}

/* x op y for the folded constants. */
static double fold(Op op, double x, double y)
{
    switch (op) {
    case OP_ADD: return x + y;
    case OP_SUB: return x - y;
    case OP_MUL: return x * y;
    default: return x / y;
    }
}

/* The operand that `a op b` equals, when an identity applies and that
 * operand already has the result's type; IR_NONE otherwise. */
static Value identity_operand(Ad *ad, Op op, Value a, Value b, const Type *t)
{
    Type ta = gb_type(ad, a), tb = gb_type(ad, b);
    bool a_ok = ir_type_eq(&ta, t), b_ok = ir_type_eq(&tb, t);
    if (a_ok && ((op == OP_MUL && is_const(ad, b, 1)) ||
                 (op == OP_DIV && is_const(ad, b, 1)) ||
                 ((op == OP_ADD || op == OP_SUB) && is_const(ad, b, 0))))
        return a;
    if (b_ok && ((op == OP_MUL && is_const(ad, a, 1)) ||
                 (op == OP_ADD && is_const(ad, a, 0))))
        return b;
    return IR_NONE;
}

Value gb_binary(Ad *ad, Op op, Value a, Value b)
{
    Type ta = gb_type(ad, a), tb = gb_type(ad, b), t;
    double x, y;
    if ((op == OP_ADD || op == OP_SUB || op == OP_MUL || op == OP_DIV) &&
        ir_broadcast_shapes(&ta, &tb, &t)) {
        Value same = identity_operand(ad, op, a, b, &t);
        if (same.id)
            return same;
        if (const_value(ad, a, &x) && const_value(ad, b, &y))
            return gb_const(ad, fold(op, x, y), t);
    }
    Value in[2] = {a, b};
    return gb_node(ad, op, in, 2, NULL);
}

Value gb_add(Ad *ad, Value a, Value b) { return gb_binary(ad, OP_ADD, a, b); }
Value gb_sub(Ad *ad, Value a, Value b) { return gb_binary(ad, OP_SUB, a, b); }
Value gb_mul(Ad *ad, Value a, Value b) { return gb_binary(ad, OP_MUL, a, b); }
Value gb_div(Ad *ad, Value a, Value b) { return gb_binary(ad, OP_DIV, a, b); }

Value gb_neg(Ad *ad, Value x)
{
    double v;
    if (const_value(ad, x, &v))
        return gb_const(ad, -v, gb_type(ad, x));
    return gb_unary(ad, OP_NEG, x);
}

Value gb_where(Ad *ad, Value cond, Value a, Value b)
{
    Value in[3] = {cond, a, b};
    return gb_node(ad, OP_WHERE, in, 3, NULL);
}

Value gb_matmul(Ad *ad, Value a, Value b)
{
    Value in[2] = {a, b};
    return gb_node(ad, OP_MATMUL, in, 2, NULL);
}

/* transpose(transpose(x)) is x; a product the backward built itself,
 * (p @ q)^T, becomes q^T @ p^T, whose transposes matmul absorbs. */
Value gb_transpose(Ad *ad, Value x)
{
    Node d = *ir_def(ad->g, x);
    if (d.op == OP_TRANSPOSE)
        return d.in[0];
    if (d.op == OP_MATMUL && (int32_t)x.id >= ad->n_vals)
        return gb_matmul(ad, gb_transpose(ad, d.in[1]),
                         gb_transpose(ad, d.in[0]));
    return gb_unary(ad, OP_TRANSPOSE, x);
}

/* A reshape or broadcast_to of x to t: x itself if it has type t, a
 * constant of type t if x is a constant. */
static Value retype(Ad *ad, Op op, Value x, Type t)
{
    Type tx = gb_type(ad, x);
    double v;
    if (ir_type_eq(&tx, &t))
        return x;
    if (const_value(ad, x, &v))
        return gb_const(ad, v, t);
    Attrs a = {.type = t};
    return gb_node(ad, op, &x, 1, &a);
}

Value gb_reshape(Ad *ad, Value x, Type t)
{
    return retype(ad, OP_RESHAPE, x, t);
}

Value gb_broadcast(Ad *ad, Value x, Type t)
{
    return retype(ad, OP_BROADCAST_TO, x, t);
}

Value gb_reduce(Ad *ad, Op op, Value x, uint32_t axes, bool keepdims)
{
    Attrs a = {.axes = axes, .keepdims = keepdims};
    return gb_node(ad, op, &x, 1, &a);
}

Value gb_last_axis(Ad *ad, Op op, Value x)
{
    return gb_reduce(ad, op, x, 1u << (gb_type(ad, x).rank - 1), true);
}

Value gb_slice(Ad *ad, Value x, const int64_t *start, const int64_t *stop)
{
    Attrs a = {0};
    int r = gb_type(ad, x).rank;
    memcpy(a.start, start, sizeof(int64_t) * (size_t)r);
    memcpy(a.stop, stop, sizeof(int64_t) * (size_t)r);
    return gb_node(ad, OP_SLICE, &x, 1, &a);
}

/* Concatenation is associative: more parts than the builder and the
 * reader take in one node (64) are joined in groups, then the groups. */
Value gb_concat(Ad *ad, const Value *parts, int n, int axis)
{
    enum { MAX_PARTS = 64 };
    if (n == 1)
        return parts[0];
    if (n > MAX_PARTS) {
        int groups = (n + MAX_PARTS - 1) / MAX_PARTS;
        Value *joined =
            arena_alloc(ad->m->arena, sizeof(Value) * (size_t)groups);
        for (int i = 0; i < groups; i++) {
            int len =
                n - i * MAX_PARTS < MAX_PARTS ? n - i * MAX_PARTS : MAX_PARTS;
            joined[i] = gb_concat(ad, parts + i * MAX_PARTS, len, axis);
        }
        return gb_concat(ad, joined, groups, axis);
    }
    Attrs a = {.axis = axis};
    return gb_node(ad, OP_CONCAT, parts, n, &a);
}

Value gb_reduce_to(Ad *ad, Value g, Type t)
{
    Type tg = gb_type(ad, g);
    if (ir_type_eq(&tg, &t))
        return g;
    int lead = tg.rank - t.rank;
    uint32_t axes = 0;
    for (int i = 0; i < tg.rank; i++)
        if (i < lead || (t.dims[i - lead] == 1 && tg.dims[i] != 1))
            axes |= 1u << i;
    Value s = axes ? gb_reduce(ad, OP_SUM, g, axes, false) : g;
    return gb_reshape(ad, s, t);
}

Value gb_unreduce(Ad *ad, Value g, Type x, uint32_t axes, bool keepdims)
{
    if (!keepdims) {
        Type kept = x;
        for (int i = 0; i < x.rank; i++)
            if (axes >> i & 1)
                kept.dims[i] = 1;
        g = gb_reshape(ad, g, kept);
    }
    return gb_broadcast(ad, g, x);
}
