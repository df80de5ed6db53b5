/* grad_rules.c — the gradient rule of every op, as a table indexed by Op.
 *
 * A rule gets the node, the gradient of each result (IR_NONE where none
 * reached it) and which operands want a gradient; it builds, with the
 * builders of grad_build.c, one gradient per wanted operand, of that
 * operand's type, and leaves the others IR_NONE.  The engine
 * (grad_engine.c) sums what several consumers contribute.  Leaves and
 * OPF_NODIFF ops (constants, comparisons, one_hot) have the explicit
 * grad_none; tests/unit/test_autodiff.c walks ops.def and fails on a gap.
 *
 * The formulas are PyTorch's (derivatives.yaml), ties and kinks included:
 * relu and abs have derivative 0 at 0, maximum and minimum split the
 * gradient evenly between equal operands, max splits it evenly between the
 * tied maxima, pow has no gradient for its exponent (and none at all for
 * p = 0), where's condition and the comparisons carry none.  Broadcast
 * operands get their gradient summed back to their shape (gb_reduce_to).
 * This file has the elementwise, matrix, shape and reduction ops;
 * grad_nn.c the rest, grad_scan.c scan. */
#include "passes/grad.h"

#include <math.h>

#define PI 3.14159265358979323846

void grad_none(Ad *ad, GradCall *c)
{
    (void)ad;
    (void)c;
}

static Value in0(const GradCall *c) { return c->n.in[0]; }
static Value out0(const GradCall *c) { return c->n.out[0]; }
static Value gout0(const GradCall *c) { return c->gout[0]; }

/* Operand k's gradient from g, which has the result's (broadcast) type. */
static void set_reduced(Ad *ad, GradCall *c, int k, Value g)
{
    c->gin[k] = gb_reduce_to(ad, g, gb_type(ad, c->n.in[k]));
}

/* ---- elementwise, one operand ------------------------------------------- */

/* The derivative dy/dx of a unary op, elementwise, from x and y. */
static Value unary_derivative(Ad *ad, Op op, double p, Value x, Value y)
{
    switch (op) {
    case OP_EXP: return y;
    case OP_SIGMOID: /* y (1 - y) */
        return gb_mul(ad, y, gb_sub(ad, gb_scalar(ad, 1), y));
    case OP_TANH: /* 1 - y^2 */
        return gb_sub(ad, gb_scalar(ad, 1), gb_mul(ad, y, y));
    case OP_RSQRT: /* -0.5 y^3 */
        return gb_mul(ad, gb_mul(ad, gb_mul(ad, y, y), y), gb_scalar(ad, -0.5));
    case OP_ABS: /* sign(x), 0 at 0 */
        return gb_sub(ad, gb_binary(ad, OP_GT, x, gb_scalar(ad, 0)),
                      gb_binary(ad, OP_LT, x, gb_scalar(ad, 0)));
    case OP_POW: /* p x^(p-1) */
        if (p == 1)
            return gb_scalar(ad, 1);
        if (p == 2)
            return gb_mul(ad, x, gb_scalar(ad, 2));
        return gb_mul(ad, gb_node(ad, OP_POW, &x, 1, &(Attrs){.value = p - 1}),
                      gb_scalar(ad, p));
    case OP_SILU: { /* s (1 + x (1 - s)), s = sigmoid(x) */
        Value s = gb_unary(ad, OP_SIGMOID, x);
        Value one = gb_scalar(ad, 1);
        return gb_mul(ad, s,
                      gb_add(ad, one, gb_mul(ad, x, gb_sub(ad, one, s))));
    }
    default:
        ir_internal_error("autodiff", "no derivative for %s",
                          ir_op_info[op].name);
    }
}

/* gelu (erf form): Phi(x) + x phi(x).  The IR has no erf, but y = x Phi(x)
 * does: Phi(x) = y / x, and 1/2 at x = 0. */
static Value gelu_derivative(Ad *ad, Value x, Value y)
{
    Value zero = gb_scalar(ad, 0);
    Value cdf = gb_where(ad, gb_binary(ad, OP_EQ, x, zero), gb_scalar(ad, 0.5),
                         gb_div(ad, y, x));
    Value pdf = gb_mul(
        ad,
        gb_unary(ad, OP_EXP, gb_mul(ad, gb_mul(ad, x, x), gb_scalar(ad, -0.5))),
        gb_scalar(ad, 1 / sqrt(2 * PI)));
    return gb_add(ad, cdf, gb_mul(ad, x, pdf));
}

/* gelu_tanh, as PyTorch's gelu_backward(approximate='tanh'):
 * 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2),
 * t = tanh(k (x + c x^3)), k = sqrt(2/pi), c = 0.044715. */
static Value gelu_tanh_derivative(Ad *ad, Value x)
{
    const double k = sqrt(2 / PI), cc = 0.044715;
    Value one = gb_scalar(ad, 1), x2 = gb_mul(ad, x, x);
    Value inner = gb_mul(
        ad, gb_add(ad, x, gb_mul(ad, gb_mul(ad, x2, x), gb_scalar(ad, cc))),
        gb_scalar(ad, k));
    Value t = gb_unary(ad, OP_TANH, inner);
    Value left = gb_mul(ad, gb_add(ad, one, t), gb_scalar(ad, 0.5));
    Value dinner =
        gb_mul(ad, gb_add(ad, one, gb_mul(ad, x2, gb_scalar(ad, 3 * cc))),
               gb_scalar(ad, k));
    Value right = gb_mul(ad,
                         gb_mul(ad, gb_mul(ad, x, gb_scalar(ad, 0.5)),
                                gb_sub(ad, one, gb_mul(ad, t, t))),
                         dinner);
    return gb_add(ad, left, right);
}

static void grad_unary(Ad *ad, GradCall *c)
{
    Value x = in0(c), y = out0(c), g = gout0(c);
    Op op = c->n.op;
    switch (op) {
    case OP_NEG: c->gin[0] = gb_neg(ad, g); return;
    case OP_LOG: c->gin[0] = gb_div(ad, g, x); return;
    case OP_SQRT: /* g / (2 y) */
        c->gin[0] = gb_div(ad, g, gb_mul(ad, y, gb_scalar(ad, 2)));
        return;
    case OP_RELU: /* threshold_backward: g where y > 0 */
        c->gin[0] = gb_where(ad, gb_binary(ad, OP_GT, y, gb_scalar(ad, 0)), g,
                             gb_scalar(ad, 0));
        return;
    case OP_SOFTPLUS: /* softplus_backward, threshold 20 */
        c->gin[0] = gb_where(ad, gb_binary(ad, OP_GT, x, gb_scalar(ad, 20)), g,
                             gb_mul(ad, g, gb_unary(ad, OP_SIGMOID, x)));
        return;
    case OP_POW:
        if (c->n.attr.value == 0) /* no gradient at all, as in PyTorch */
            return;
        break;
    case OP_GELU: c->gin[0] = gb_mul(ad, g, gelu_derivative(ad, x, y)); return;
    case OP_GELU_TANH:
        c->gin[0] = gb_mul(ad, g, gelu_tanh_derivative(ad, x));
        return;
    default: break;
    }
    c->gin[0] = gb_mul(ad, g, unary_derivative(ad, op, c->n.attr.value, x, y));
}

/* ---- elementwise, two operands ------------------------------------------ */

static void grad_add_sub(Ad *ad, GradCall *c)
{
    Value g = gout0(c);
    if (c->need[0])
        set_reduced(ad, c, 0, g);
    if (c->need[1])
        set_reduced(ad, c, 1, c->n.op == OP_SUB ? gb_neg(ad, g) : g);
}

static void grad_mul(Ad *ad, GradCall *c)
{
    Value g = gout0(c), a = c->n.in[0], b = c->n.in[1];
    if (c->need[0])
        set_reduced(ad, c, 0, gb_mul(ad, g, b));
    if (c->need[1])
        set_reduced(ad, c, 1, gb_mul(ad, g, a));
}

/* a / b: g / b and -g a / b^2. */
static void grad_div(Ad *ad, GradCall *c)
{
    Value g = gout0(c), a = c->n.in[0], b = c->n.in[1];
    if (c->need[0])
        set_reduced(ad, c, 0, gb_div(ad, g, b));
    if (c->need[1])
        set_reduced(ad, c, 1,
                    gb_neg(ad, gb_div(ad, gb_mul(ad, g, a), gb_mul(ad, b, b))));
}

/* maximum: a gets g where a > b, b where a < b, each half where equal;
 * minimum the other way round. */
static void grad_extremum(Ad *ad, GradCall *c)
{
    Value g = gout0(c), a = c->n.in[0], b = c->n.in[1];
    Value half = gb_mul(ad, gb_binary(ad, OP_EQ, a, b), gb_scalar(ad, 0.5));
    Op wins_a = c->n.op == OP_MAXIMUM ? OP_GT : OP_LT;
    Op wins_b = c->n.op == OP_MAXIMUM ? OP_LT : OP_GT;
    if (c->need[0])
        set_reduced(
            ad, c, 0,
            gb_mul(ad, g, gb_add(ad, gb_binary(ad, wins_a, a, b), half)));
    if (c->need[1])
        set_reduced(
            ad, c, 1,
            gb_mul(ad, g, gb_add(ad, gb_binary(ad, wins_b, a, b), half)));
}

/* where(cond, a, b): no gradient for cond. */
static void grad_where(Ad *ad, GradCall *c)
{
    Value g = gout0(c), cond = c->n.in[0], zero = gb_scalar(ad, 0);
    if (c->need[1])
        set_reduced(ad, c, 1, gb_where(ad, cond, g, zero));
    if (c->need[2])
        set_reduced(ad, c, 2, gb_where(ad, cond, zero, g));
}

/* ---- matrix and shape --------------------------------------------------- */

/* a [..., M, K] @ b [..., K, N]: g @ b^T and a^T @ g, summed over the
 * batch axes an operand was broadcast along.  When b is one matrix shared
 * by a batch (x @ W), its gradient is a single matmul over the flattened
 * batch instead of a batch of products summed afterwards. */
static void grad_matmul(Ad *ad, GradCall *c)
{
    Value g = gout0(c), a = c->n.in[0], b = c->n.in[1];
    Type ta = gb_type(ad, a), tb = gb_type(ad, b), tg = gb_type(ad, g);
    if (c->need[0])
        set_reduced(ad, c, 0, gb_matmul(ad, g, gb_transpose(ad, b)));
    if (!c->need[1])
        return;
    if (tb.rank == 2 && ta.rank > 2) {
        int64_t K = ta.dims[ta.rank - 1], N = tg.dims[tg.rank - 1];
        int64_t rows_a[2] = {ir_type_numel(&ta) / K, K},
                rows_g[2] = {ir_type_numel(&tg) / N, N};
        Value a2 = gb_reshape(ad, a, ir_type_make(DT_F32, 2, rows_a));
        Value g2 = gb_reshape(ad, g, ir_type_make(DT_F32, 2, rows_g));
        c->gin[1] = gb_matmul(ad, gb_transpose(ad, a2), g2);
        return;
    }
    set_reduced(ad, c, 1, gb_matmul(ad, gb_transpose(ad, a), g));
}

static void grad_transpose(Ad *ad, GradCall *c)
{
    c->gin[0] = gb_transpose(ad, gout0(c));
}

/* The inverse permutation. */
static void grad_permute(Ad *ad, GradCall *c)
{
    Attrs inv = {0};
    int r = gb_type(ad, in0(c)).rank;
    for (int i = 0; i < r; i++)
        inv.perm[c->n.attr.perm[i]] = i;
    c->gin[0] = gb_node(ad, OP_PERMUTE, &c->gout[0], 1, &inv);
}

static void grad_reshape(Ad *ad, GradCall *c)
{
    c->gin[0] = gb_reshape(ad, gout0(c), gb_type(ad, in0(c)));
}

static void grad_broadcast_to(Ad *ad, GradCall *c)
{
    set_reduced(ad, c, 0, gout0(c));
}

/* Each operand's gradient is its slice of g. */
static void grad_concat(Ad *ad, GradCall *c)
{
    Type t = gb_type(ad, gout0(c));
    int axis = c->n.attr.axis;
    int64_t start[IR_MAX_RANK] = {0}, stop[IR_MAX_RANK], at = 0;
    for (int k = 0; k < c->n.n_in; k++) {
        int64_t len = gb_type(ad, c->n.in[k]).dims[axis];
        if (c->need[k]) {
            for (int i = 0; i < t.rank; i++) {
                start[i] = i == axis ? at : 0;
                stop[i] = i == axis ? at + len : t.dims[i];
            }
            c->gin[k] = gb_slice(ad, gout0(c), start, stop);
        }
        at += len;
    }
}

/* A piece of the operand's gradient, assembled with the other pieces by
 * the engine (one concat for the parts of a split). */
static void grad_slice(Ad *ad, GradCall *c)
{
    ad_contribute_slice(ad, in0(c), gout0(c), &c->n.attr);
}

/* ---- reductions ---------------------------------------------------------- */

static void grad_sum(Ad *ad, GradCall *c)
{
    c->gin[0] = gb_unreduce(ad, gout0(c), gb_type(ad, in0(c)), c->n.attr.axes,
                            c->n.attr.keepdims);
}

static void grad_mean(Ad *ad, GradCall *c)
{
    Type tx = gb_type(ad, in0(c)), ty = gb_type(ad, out0(c));
    double count = (double)(ir_type_numel(&tx) / ir_type_numel(&ty));
    Value g = gb_mul(ad, gout0(c), gb_scalar(ad, 1 / count));
    c->gin[0] = gb_unreduce(ad, g, tx, c->n.attr.axes, c->n.attr.keepdims);
}

/* amax: g split evenly between the elements equal to the maximum. */
static void grad_max(Ad *ad, GradCall *c)
{
    Type tx = gb_type(ad, in0(c)), kept = tx;
    uint32_t axes = c->n.attr.axes;
    for (int i = 0; i < tx.rank; i++)
        if (axes >> i & 1)
            kept.dims[i] = 1;
    Value y = gb_reshape(ad, out0(c), kept), g = gb_reshape(ad, gout0(c), kept);
    Value mask = gb_binary(ad, OP_EQ, in0(c), y);
    Value count = gb_reduce(ad, OP_SUM, mask, axes, true);
    c->gin[0] = gb_mul(ad, mask, gb_div(ad, g, count));
}

/* ---- the table ------------------------------------------------------------ */

const GradRule grad_rules[OP_COUNT] = {
    [OP_INPUT] = grad_none,
    [OP_PARAM] = grad_none,
    [OP_ARG] = grad_none,
    [OP_CONST] = grad_none,
    [OP_NEG] = grad_unary,
    [OP_EXP] = grad_unary,
    [OP_LOG] = grad_unary,
    [OP_SQRT] = grad_unary,
    [OP_RSQRT] = grad_unary,
    [OP_ABS] = grad_unary,
    [OP_RELU] = grad_unary,
    [OP_SIGMOID] = grad_unary,
    [OP_TANH] = grad_unary,
    [OP_GELU] = grad_unary,
    [OP_GELU_TANH] = grad_unary,
    [OP_SILU] = grad_unary,
    [OP_SOFTPLUS] = grad_unary,
    [OP_POW] = grad_unary,
    [OP_ADD] = grad_add_sub,
    [OP_SUB] = grad_add_sub,
    [OP_MUL] = grad_mul,
    [OP_DIV] = grad_div,
    [OP_MAXIMUM] = grad_extremum,
    [OP_MINIMUM] = grad_extremum,
    [OP_LT] = grad_none,
    [OP_LE] = grad_none,
    [OP_GT] = grad_none,
    [OP_GE] = grad_none,
    [OP_EQ] = grad_none,
    [OP_NE] = grad_none,
    [OP_WHERE] = grad_where,
    [OP_MATMUL] = grad_matmul,
    [OP_TRANSPOSE] = grad_transpose,
    [OP_PERMUTE] = grad_permute,
    [OP_RESHAPE] = grad_reshape,
    [OP_BROADCAST_TO] = grad_broadcast_to,
    [OP_CONCAT] = grad_concat,
    [OP_SLICE] = grad_slice,
    [OP_SUM] = grad_sum,
    [OP_MEAN] = grad_mean,
    [OP_MAX] = grad_max,
    [OP_SOFTMAX] = grad_softmax,
    [OP_LOG_SOFTMAX] = grad_log_softmax,
    [OP_LAYERNORM] = grad_layernorm,
    [OP_RMSNORM] = grad_rmsnorm,
    [OP_GATHER] = grad_gather,
    [OP_CAUSAL_MASK] = grad_causal_mask,
    [OP_ATTENTION] = grad_attention,
    [OP_DROPOUT] = grad_dropout,
    [OP_CROSS_ENTROPY] = grad_cross_entropy,
    [OP_MSE] = grad_mse,
    [OP_BCE_WITH_LOGITS] = grad_bce_with_logits,
    [OP_SCATTER_ADD] = grad_scatter_add,
    [OP_ONE_HOT] = grad_none,
    [OP_SCAN] = grad_scan,
    [OP_LSTM_CELL] = grad_lstm_cell,
    [OP_LSTM_CELL_GRAD] = grad_not_differentiable,
    [OP_ATTENTION_GRAD] = grad_not_differentiable,
    [OP_SOFTMAX_XENT] = grad_not_differentiable,
    [OP_FUSED] = grad_not_differentiable,
    [OP_MATMUL_EPILOGUE] = grad_not_differentiable,
};
