/* test_grad_ops.c — the gradient of every differentiable op, checked by
 * central differences.
 *
 * Each case is a small model whose loss is `sum(w * f(params))` (w a
 * random input, so every element of the result matters with its own
 * weight) or a loss op itself; the autodiff pass differentiates it, the
 * reference evaluator computes its gradients, and they must match central
 * differences of the loss to a relative L2 error of 1e-6, param by param.
 * Cases cover broadcasting on either side, the matmul shapes (shared
 * weight, batched, broadcast batch), slices that split, overlap or drop
 * axes, every reduction form, and a dropout with a mask.
 *
 * test_every_op_is_checked walks ops.def: an op without OPF_NODIFF that
 * no case exercises fails the test, so a new op cannot land without its
 * finite-difference check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "grad_check.h"
#include "passes/grad.h"

#define TOL 1e-6
#define H   1e-5

typedef struct OpCase {
    Op op;            /* the op the case is about (must be in the module) */
    const char *decl; /* inputs, params, bindings */
    const char *loss; /* the train expression; NULL: src is IR text */
    uint64_t dropout_seed;
} OpCase;

#define W23  "input w : f32[2, 3]\n"
#define A23  W23 "param a : f32[2, 3] = zeros\n"
#define AB   A23 "param b : f32[3] = zeros\n"
#define A234 "input w : f32[2, 3, 4]\nparam a : f32[2, 3, 4] = zeros\n"

/* A case without a dropout mask, and one with (the evaluator's seed). */
#define C(op, decl, loss)                                                      \
    {                                                                          \
        op, decl, loss, 0                                                      \
    }
#define C_SEED(op, decl, loss, seed)                                           \
    {                                                                          \
        op, decl, loss, seed                                                   \
    }

static const char scatter_ir[] =
    "model t\n\ninput ids : i32[4]\ninput w : f32[5, 3]\n\n"
    "param s : f32[4, 3] = zeros\n\n"
    "train sgd(lr=0.1, momentum=0, nesterov=false, beta1=0.9, beta2=0.999, "
    "eps=1e-08, weight_decay=0, clip_grad_norm=0)\noutputs 0\n\n"
    "graph main {\n"
    "  %0 = input @ids : i32[4]\n"
    "  %1 = input @w : f32[5, 3]\n"
    "  %2 = param @s : f32[4, 3]\n"
    "  %3 = scatter_add %2, %0 : f32[5, 3]\n"
    "  %4 = mul %3, %1 : f32[5, 3]\n"
    "  %5 = sum %4 axes=[0, 1] keepdims=false : f32[]\n"
    "  return loss=%5\n}\n";

/* lstm_cell(z, c) -> (h', c'): both results feed the loss, so dz and dc
 * are checked through lstm_cell_grad. */
static const char lstm_cell_ir[] =
    "model t\n\ninput w : f32[2, 3]\n\n"
    "param z : f32[2, 12] = zeros\nparam c : f32[2, 3] = zeros\n\n"
    "train sgd(lr=0.1, momentum=0, nesterov=false, beta1=0.9, beta2=0.999, "
    "eps=1e-08, weight_decay=0, clip_grad_norm=0)\noutputs 0\n\n"
    "graph main {\n"
    "  %0 = input @w : f32[2, 3]\n"
    "  %1 = param @z : f32[2, 12]\n"
    "  %2 = param @c : f32[2, 3]\n"
    "  %3, %4 = lstm_cell %1, %2 : f32[2, 3], f32[2, 3]\n"
    "  %5 = mul %3, %0 : f32[2, 3]\n"
    "  %6 = mul %4, %4 : f32[2, 3]\n"
    "  %7 = add %5, %6 : f32[2, 3]\n"
    "  %8 = sum %7 axes=[0, 1] keepdims=false : f32[]\n"
    "  return loss=%8\n}\n";

static const OpCase cases[] = {
    /* elementwise, one operand */
    C(OP_NEG, A23, "sum(w * -a) + sum(w * neg(a * a))"),
    C(OP_EXP, A23, "sum(w * exp(a))"),
    C(OP_LOG, A23, "sum(w * log(a * a + 0.5))"),
    C(OP_SQRT, A23, "sum(w * sqrt(a * a + 0.5))"),
    C(OP_RSQRT, A23, "sum(w * rsqrt(a * a + 0.5))"),
    C(OP_ABS, A23, "sum(w * abs(a))"),
    C(OP_RELU, A23, "sum(w * relu(a)) + sum(w * relu(-a) * 2)"),
    C(OP_SIGMOID, A23, "sum(w * sigmoid(a))"),
    C(OP_TANH, A23, "sum(w * tanh(a))"),
    C(OP_GELU, A23, "sum(w * gelu(a * 3))"),
    C(OP_GELU_TANH, A23, "sum(w * gelu_tanh(a * 3))"),
    C(OP_SILU, A23, "sum(w * silu(a * 3))"),
    C(OP_SOFTPLUS, A23, "sum(w * softplus(a))"),
    C(OP_SOFTPLUS, A23, "sum(w * softplus(a * 30))"), /* both sides of 20 */
    C(OP_POW, A23, "sum(w * pow(a * a + 0.5, 2.5))"),
    C(OP_POW, A23, "sum(w * pow(a * a + 0.5, -1.5))"),
    C(OP_POW, A23,
      "sum(w * pow(a, 3)) + sum(w * pow(a, 2)) + sum(w * pow(a, 1))"),
    C(OP_POW, A23, "sum(w * pow(a, 0) * a)"), /* no gradient through p = 0 */
    /* elementwise, two operands, broadcasting either side */
    C(OP_ADD, AB, "sum(w * (a + b)) + sum(w * (b + a))"),
    C(OP_SUB, AB, "sum(w * (a - b)) + sum(w * (b - a * a) * 2)"),
    C(OP_MUL, AB, "sum(w * (a * b))"),
    C(OP_MUL, A23 "param s : f32[] = zeros\nparam c : f32[2, 1] = zeros\n",
      "sum(w * (s * a * c))"),
    C(OP_DIV, AB,
      "sum(w * (a / (b * b + 0.5))) + sum(w * (b / (a * a + 0.5)))"),
    C(OP_MAXIMUM, AB, "sum(w * maximum(a, b))"),
    C(OP_MINIMUM, AB, "sum(w * minimum(b, a))"),
    C(OP_WHERE, AB, "sum(w * where(w > 0, a, b))"),
    C(OP_WHERE, AB "input c : i32[2, 3]\n", "sum(w * where(c, b, a * 2))"),
    C(OP_WHERE, A23 "param s : f32[] = zeros\n", "sum(w * where(a > 0, s, a))"),
    C(OP_GT, A23, "sum(w * (a > 0) * a) + sum(w * (a <= w) * a)"),
    /* matrix */
    C(OP_MATMUL,
      "input w : f32[2, 4]\nparam x : f32[2, 3] = zeros\n"
      "param W : f32[3, 4] = zeros\n",
      "sum(w * (x @ W))"),
    C(OP_MATMUL,
      "input w : f32[2, 2, 4]\nparam x : f32[2, 2, 3] = zeros\n"
      "param W : f32[3, 4] = zeros\n",
      "sum(w * (x @ W))"),
    C(OP_MATMUL,
      "input w : f32[2, 2, 4]\nparam x : f32[2, 2, 3] = zeros\n"
      "param W : f32[2, 3, 4] = zeros\n",
      "sum(w * (x @ W))"),
    C(OP_MATMUL,
      "input w : f32[2, 3, 2, 4]\nparam x : f32[2, 1, 2, 3] = zeros\n"
      "param W : f32[3, 3, 4] = zeros\n",
      "sum(w * (x @ W))"),
    C(OP_MATMUL,
      "input w : f32[2, 2, 4]\nparam x : f32[2, 3] = zeros\n"
      "param W : f32[2, 3, 4] = zeros\n",
      "sum(w * (x @ W))"),
    C(OP_TRANSPOSE, "input w : f32[3, 2]\nparam a : f32[2, 3] = zeros\n",
      "sum(w * transpose(a))"),
    C(OP_PERMUTE, "input w : f32[4, 2, 3]\nparam a : f32[2, 3, 4] = zeros\n",
      "sum(w * permute(a, [2, 0, 1]))"),
    /* shape */
    C(OP_RESHAPE, "input w : f32[3, 2]\nparam a : f32[2, 3] = zeros\n",
      "sum(w * reshape(a, [3, -1]))"),
    C(OP_BROADCAST_TO,
      W23 "param b : f32[3] = zeros\nparam c : f32[2, 1] = zeros\n",
      "sum(w * broadcast_to(b, [2, 3])) + sum(w * broadcast_to(c, [2, 3]))"),
    C(OP_CONCAT,
      "input w : f32[2, 5]\ninput v : f32[4, 3]\n"
      "param a : f32[2, 3] = zeros\nparam b : f32[2, 2] = zeros\n",
      "sum(w * concat([a, b], axis = 1)) + sum(v * concat([a, a * a], axis = "
      "0))"),
    C(OP_SLICE, A23, "sum(w[:, 1:3] * a[:, 1:3]) + sum(w[1] * a[0])"),
    C(OP_SLICE,
      "input w : f32[2, 2]\nparam a : f32[2, 6] = zeros\n"
      "p, q, r = split(a, 3, axis = -1)\n",
      "sum(w * p * q + r * r)"),
    C(OP_SLICE, A23,
      "sum(w[:, 0:2] * a[:, 0:2] * a[:, 1:3]) + sum(a[0:1, 1:3] * w[1:2, "
      "0:2])"),
    /* reductions */
    C(OP_SUM, A234,
      "sum(w * a) + sum(sum(a * a, axis = 1) * w[:, 0]) + "
      "sum(sum(a, axis = [0, 2], keepdims = true) * w[0:1, :, 0:1])"),
    C(OP_MEAN, A234,
      "mean(w * a) + sum(mean(a * a, axis = -1) * w[:, :, 0]) + "
      "sum(mean(a, axis = [1], keepdims = true) * w[:, 0:1, :])"),
    C(OP_MAX, A234,
      "max(w * a) + sum(max(a, axis = 1) * w[:, 0]) + "
      "sum(max(a * w, axis = [0, 2], keepdims = true))"),
    /* normalisation */
    C(OP_SOFTMAX, A234,
      "sum(w * softmax(a, axis = -1)) + sum(w * softmax(a, axis = 0))"),
    C(OP_LOG_SOFTMAX, A234,
      "sum(w * log_softmax(a)) + sum(w * log_softmax(a, axis = 1))"),
    C(OP_LAYERNORM, A234 "param g : f32[4] = zeros\nparam b : f32[4] = zeros\n",
      "sum(w * layernorm(a, g, b))"),
    C(OP_LAYERNORM,
      "input w : f32[5]\nparam a : f32[5] = zeros\n"
      "param g : f32[5] = zeros\nparam b : f32[5] = zeros\n",
      "sum(w * layernorm(a, g, b, eps = 0.1))"),
    C(OP_RMSNORM, A234 "param g : f32[4] = zeros\n", "sum(w * rmsnorm(a, g))"),
    /* lookup: 8 ids into 3 rows, so rows repeat */
    C(OP_GATHER,
      "input ids : i32[4, 2]\ninput w : f32[4, 2, 2]\nparam E : f32[3, 2] = "
      "zeros\n",
      "sum(w * E[ids]) + sum(w * embedding(E * E, ids))"),
    /* attention */
    C(OP_CAUSAL_MASK,
      "input w : f32[2, 3, 3]\nparam a : f32[2, 3, 3] = zeros\n",
      "sum(w * softmax(causal_mask(a), axis = -1))"),
    C(OP_ATTENTION,
      "input w : f32[2, 3, 2]\nparam q : f32[2, 3, 4] = zeros\n"
      "param k : f32[2, 3, 4] = zeros\nparam v : f32[2, 3, 2] = zeros\n",
      "sum(w * attention(q, k, v, causal = true))"),
    C(OP_ATTENTION,
      "input w : f32[2, 2, 3, 2]\nparam q : f32[2, 2, 3, 4] = zeros\n"
      "param k : f32[5, 4] = zeros\nparam v : f32[2, 1, 5, 2] = zeros\n",
      "sum(w * attention(q, k, v, scale = 0.3))"),
    /* regularisation */
    C_SEED(OP_DROPOUT, A23,
           "sum(w * dropout(a, 0.3)) + sum(w * dropout(a * a, 0.5))", 42),
    C(OP_DROPOUT, A23, "sum(w * dropout(a, 0.3))"),
    /* losses */
    C(OP_CROSS_ENTROPY, "input t : i32[2, 3]\nparam z : f32[2, 3, 5] = zeros\n",
      "cross_entropy(z, t)"),
    C(OP_MSE, AB, "mse(a, broadcast_to(b, [2, 3]))"),
    C(OP_BCE_WITH_LOGITS, A23 "param t : f32[2, 3] = zeros\n",
      "bce_with_logits(a * 2, t)"),
    /* recurrence and the backward helpers */
    C(OP_SCAN,
      "input w : f32[4, 3]\nparam x : f32[4, 3] = zeros\nparam h0 : f32[3] = "
      "zeros\n"
      "fn step(h, xt) {\n  h = tanh(h * xt + xt)\n  return h, h * h\n}\n"
      "h, ys = scan(step, init = h0, over = x)\n",
      "sum(w * ys) + sum(h)"),
    C(OP_SCATTER_ADD, scatter_ir, NULL),
    C(OP_LSTM_CELL, lstm_cell_ir, NULL),
};

#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static Module *compile_case(Arena *a, const OpCase *c)
{
    if (!c->loss)
        return gc_read_ir(a, c->decl);
    char *src = arena_printf(a, "model t\n%s\ntrain %s with sgd(lr = 0.1)\n",
                             c->decl, c->loss);
    return gc_compile(a, src, NULL, 0);
}

static void run_case(const OpCase *c, int index)
{
    if (getenv("NNC_GRAD_VERBOSE"))
        fprintf(stderr, "case %d: %s\n", index, c->loss ? c->loss : "IR");
    Arena *a = arena_new();
    Module *m = compile_case(a, c);
    if (!m)
        fail_msg("case %d (%s) does not compile", index,
                 ir_op_info[c->op].name);
    if (!gc_has_op(m, c->op))
        fail_msg("case %d does not contain %s", index, ir_op_info[c->op].name);
    GcModel gm = gc_model(a, m, 1000 + (uint64_t)index, 1.0);
    gm.opt.dropout_seed = c->dropout_seed;
    double err = gc_check(&gm, H, TOL, getenv("NNC_GRAD_VERBOSE") != NULL);
    if (!(err <= TOL))
        fail_msg("case %d (%s: %s): relative error %g", index,
                 ir_op_info[c->op].name, c->loss ? c->loss : "IR", err);
    gc_model_free(&gm);
    arena_free(a);
}

static void test_cases(void **state)
{
    (void)state;
    for (int i = 0; i < N_CASES; i++)
        run_case(&cases[i], i);
}

/* Walks ops.def: every differentiable op has at least one case.  The
 * fused ops built after autodiff (and the gradient ops) are never
 * differentiated; attention_grad is checked through attention's cases. */
static void test_every_op_is_checked(void **state)
{
    (void)state;
    for (int op = 0; op < OP_COUNT; op++) {
        if (ir_op_info[op].flags & (OPF_NODIFF | OPF_LEAF) ||
            grad_rules[op] == grad_not_differentiable)
            continue;
        bool found = false;
        for (int i = 0; i < N_CASES && !found; i++)
            found = cases[i].op == (Op)op;
        if (!found)
            fail_msg("op %s has no finite-difference case in test_grad_ops.c",
                     ir_op_info[op].name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_is_checked),
        cmocka_unit_test(test_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
