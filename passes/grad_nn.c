/* grad_nn.c — gradient rules of the composite ops: softmax, the norms,
 * lookups, attention, dropout and the losses (the table is in
 * grad_rules.c).
 *
 * Each is written with ordinary IR ops, recomputing what the fused forward
 * op does not expose (a norm's mean and inverse deviation, attention's
 * probabilities): autodiff runs before fusion, so the fusion passes see
 * these backward graphs as plain elementwise ops, reductions and matmuls.
 * Two ops exist only for gradients, because no composite can express them:
 * scatter_add (gather's gradient: rows added at their ids, repeated ids
 * accumulating) and one_hot (cross entropy's). */
#include "passes/grad.h"

static Value in(const GradCall *c, int k) { return c->n.in[k]; }
static Value out0(const GradCall *c) { return c->n.out[0]; }
static Value gout0(const GradCall *c) { return c->gout[0]; }

static Value along(Ad *ad, Op op, Value x, int axis)
{
    return gb_reduce(ad, op, x, 1u << axis, true);
}

/* ---- softmax ------------------------------------------------------------- */

/* y (g - sum(g y)) along the axis. */
void grad_softmax(Ad *ad, GradCall *c)
{
    Value y = out0(c), g = gout0(c);
    Value dot = along(ad, OP_SUM, gb_mul(ad, g, y), c->n.attr.axis);
    c->gin[0] = gb_mul(ad, y, gb_sub(ad, g, dot));
}

/* g - exp(y) sum(g) along the axis. */
void grad_log_softmax(Ad *ad, GradCall *c)
{
    Value y = out0(c), g = gout0(c);
    Value total = along(ad, OP_SUM, g, c->n.attr.axis);
    c->gin[0] = gb_sub(ad, g, gb_mul(ad, gb_unary(ad, OP_EXP, y), total));
}

/* ---- normalisation -------------------------------------------------------- */

/* layernorm over the last axis, with xhat = (x - mean) r and
 * r = rsqrt(var + eps) recomputed:
 *   beta: sum of g over the leading axes;  gamma: sum of g xhat;
 *   x: r (d - mean(d) - xhat mean(d xhat)),  d = g gamma. */
void grad_layernorm(Ad *ad, GradCall *c)
{
    Value x = in(c, 0), gamma = in(c, 1), g = gout0(c);
    Value centred = gb_sub(ad, x, gb_last_axis(ad, OP_MEAN, x));
    Value var = gb_last_axis(ad, OP_MEAN, gb_mul(ad, centred, centred));
    Value r =
        gb_unary(ad, OP_RSQRT, gb_add(ad, var, gb_scalar(ad, c->n.attr.value)));
    Value xhat = gb_mul(ad, centred, r);
    if (c->need[2])
        c->gin[2] = gb_reduce_to(ad, g, gb_type(ad, in(c, 2)));
    if (c->need[1])
        c->gin[1] = gb_reduce_to(ad, gb_mul(ad, g, xhat), gb_type(ad, gamma));
    if (!c->need[0])
        return;
    Value d = gb_mul(ad, g, gamma);
    Value mean_d = gb_last_axis(ad, OP_MEAN, d);
    Value mean_dx = gb_last_axis(ad, OP_MEAN, gb_mul(ad, d, xhat));
    c->gin[0] = gb_mul(
        ad, r, gb_sub(ad, gb_sub(ad, d, mean_d), gb_mul(ad, xhat, mean_dx)));
}

/* rmsnorm y = x r gamma, r = rsqrt(mean(x^2) + eps):
 *   gamma: sum of g x r;  x: r d - x r^3 mean(d x),  d = g gamma. */
void grad_rmsnorm(Ad *ad, GradCall *c)
{
    Value x = in(c, 0), gamma = in(c, 1), g = gout0(c);
    Value ms = gb_last_axis(ad, OP_MEAN, gb_mul(ad, x, x));
    Value r =
        gb_unary(ad, OP_RSQRT, gb_add(ad, ms, gb_scalar(ad, c->n.attr.value)));
    if (c->need[1])
        c->gin[1] = gb_reduce_to(ad, gb_mul(ad, g, gb_mul(ad, x, r)),
                                 gb_type(ad, gamma));
    if (!c->need[0])
        return;
    Value d = gb_mul(ad, g, gamma);
    Value mean_dx = gb_last_axis(ad, OP_MEAN, gb_mul(ad, d, x));
    Value r3 = gb_mul(ad, gb_mul(ad, r, r), r);
    c->gin[0] =
        gb_sub(ad, gb_mul(ad, r, d), gb_mul(ad, gb_mul(ad, x, r3), mean_dx));
}

/* ---- lookups --------------------------------------------------------------- */

/* gather(table, ids): every row of g added into the table row it was read
 * from; a row read several times accumulates every contribution. */
void grad_gather(Ad *ad, GradCall *c)
{
    Value ops[2] = {gout0(c), in(c, 1)};
    Attrs a = {.type = gb_type(ad, in(c, 0))};
    c->gin[0] = gb_node(ad, OP_SCATTER_ADD, ops, 2, &a);
}

/* scatter_add(src, ids): row i of src went to row ids[i]. */
void grad_scatter_add(Ad *ad, GradCall *c)
{
    Value ops[2] = {gout0(c), in(c, 1)};
    c->gin[0] = gb_node(ad, OP_GATHER, ops, 2, NULL);
}

/* ---- attention ---------------------------------------------------------- */

/* g where the mask kept the element: the mask is causal_mask of zeros,
 * 0 where kept and -inf (non-zero, true for where) where masked. */
void grad_causal_mask(Ad *ad, GradCall *c)
{
    Value masked =
        gb_unary(ad, OP_CAUSAL_MASK, gb_zeros(ad, gb_type(ad, in(c, 0))));
    c->gin[0] = gb_where(ad, masked, gb_scalar(ad, 0), gout0(c));
}

/* attention(q, k, v) = p @ v, p = softmax(causal_mask?(q @ k^T * scale)).
 * With q, k and v of the same batch axes, one attention_grad node, whose
 * kernel recomputes p block by block (FlashAttention's backward).
 * Otherwise (broadcast batch axes), in plain ops with p recomputed:  dv = p^T @ g;  dp = g @ v^T;
 * ds = p (dp - sum(dp p)) * scale;  dq = ds @ k;  dk = ds^T @ q.
 * Each is summed back over the batch axes its operand was broadcast along. */
void grad_attention(Ad *ad, GradCall *c)
{
    Value q = in(c, 0), k = in(c, 1), v = in(c, 2), g = gout0(c);
    Type tq = gb_type(ad, q), tk = gb_type(ad, k), tv = gb_type(ad, v);
    if (ir_attention_batch_shared(&tq, &tk, &tv)) {
        Value ops[5] = {q, k, v, out0(c), g}, outs[3];
        gb_node_results(ad, OP_ATTENTION_GRAD, ops, 5, &c->n.attr, 3, outs);
        for (int i = 0; i < 3; i++)
            if (c->need[i])
                c->gin[i] = outs[i];
        return;
    }
    Value s = gb_mul(ad, gb_matmul(ad, q, gb_transpose(ad, k)),
                     gb_scalar(ad, c->n.attr.value));
    if (c->n.attr.flag)
        s = gb_unary(ad, OP_CAUSAL_MASK, s);
    int last = gb_type(ad, s).rank - 1;
    Value p = gb_node(ad, OP_SOFTMAX, &s, 1, &(Attrs){.axis = last});
    if (c->need[2])
        c->gin[2] = gb_reduce_to(ad, gb_matmul(ad, gb_transpose(ad, p), g),
                                 gb_type(ad, v));
    if (!c->need[0] && !c->need[1])
        return;
    Value dp = gb_matmul(ad, g, gb_transpose(ad, v));
    Value ds = gb_mul(
        ad, p, gb_sub(ad, dp, along(ad, OP_SUM, gb_mul(ad, dp, p), last)));
    ds = gb_mul(ad, ds, gb_scalar(ad, c->n.attr.value));
    if (c->need[0])
        c->gin[0] = gb_reduce_to(ad, gb_matmul(ad, ds, k), gb_type(ad, q));
    if (c->need[1])
        c->gin[1] = gb_reduce_to(ad, gb_matmul(ad, gb_transpose(ad, ds), q),
                                 gb_type(ad, k));
}

/* ---- regularisation --------------------------------------------------------- */

/* dropout(x) = x * mask / (1 - p): its gradient is g through the same
 * mask, i.e. a dropout of g at the same site. */
void grad_dropout(Ad *ad, GradCall *c)
{
    Value g = gout0(c);
    c->gin[0] = gb_node(ad, OP_DROPOUT, &g, 1, &c->n.attr);
}

/* ---- losses ------------------------------------------------------------------ */

/* The loss's gradient g (a scalar) divided by the number of terms the
 * loss averages. */
static Value mean_scale(Ad *ad, GradCall *c, int64_t count)
{
    return gb_mul(ad, gout0(c), gb_scalar(ad, 1.0 / (double)count));
}

/* (softmax(logits) - one_hot(targets)) g / N over the N positions. */
void grad_cross_entropy(Ad *ad, GradCall *c)
{
    Value logits = in(c, 0), targets = in(c, 1);
    Type t = gb_type(ad, logits), tt = gb_type(ad, targets);
    Value p = gb_node(ad, OP_SOFTMAX, &logits, 1, &(Attrs){.axis = t.rank - 1});
    Value onehot = gb_node(ad, OP_ONE_HOT, &targets, 1, &(Attrs){.type = t});
    c->gin[0] = gb_mul(ad, gb_sub(ad, p, onehot),
                       mean_scale(ad, c, ir_type_numel(&tt)));
}

/* mean((a - b)^2): 2 (a - b) g / N and its negation. */
void grad_mse(Ad *ad, GradCall *c)
{
    Type t = gb_type(ad, in(c, 0));
    Value scale =
        gb_mul(ad, mean_scale(ad, c, ir_type_numel(&t)), gb_scalar(ad, 2));
    Value ga = gb_mul(ad, gb_sub(ad, in(c, 0), in(c, 1)), scale);
    if (c->need[0])
        c->gin[0] = ga;
    if (c->need[1])
        c->gin[1] = gb_neg(ad, ga);
}

/* bce_with_logits(z, t): (sigmoid(z) - t) g / N for z, -z g / N for t. */
void grad_bce_with_logits(Ad *ad, GradCall *c)
{
    Value z = in(c, 0), t = in(c, 1);
    Type tz = gb_type(ad, z);
    Value scale = mean_scale(ad, c, ir_type_numel(&tz));
    if (c->need[0])
        c->gin[0] =
            gb_mul(ad, gb_sub(ad, gb_unary(ad, OP_SIGMOID, z), t), scale);
    if (c->need[1])
        c->gin[1] = gb_neg(ad, gb_mul(ad, z, scale));
}
