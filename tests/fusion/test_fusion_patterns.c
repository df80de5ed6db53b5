/* Fusion tests on hand-written patterns: the recognisers' and the fusion
 * passes' edge cases, each a small .nn program compiled with and without
 * fusion and compared through the evaluator and the JIT (fusion_test.h).
 *
 *   attention  scale forms (div, mul either side, none), causal mask,
 *              probabilities or scores used elsewhere, q = k = v, softmax
 *              over another axis, a non-constant scale, the built-in;
 *   lstm       commuted products, other gate orders, carries in another
 *              order, a gate or c as a per-step output, near misses
 *              (sigmoid for tanh, the old c in h), the input read
 *              elsewhere (no hoist), reverse scans, a bias computed in
 *              the body, a cell outside a scan;
 *   xent       scaled loss, 3-D logits, softmax or logits also outputs;
 *   epilogue   the product also an output, a full-size extra, 3-D
 *              products, x * sigmoid(x), a broadcast up, two products;
 *   elementwise softmax and layernorm by hand, i32 conditions, dropout.
 *
 * Each case may name fused ops that must be in the fused module (the
 * pattern is what the pass documents) or must not (a near miss whose
 * fusion would compute something else); those checks are the "ops" group,
 * the numeric comparison the "numeric" group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fusion_test.h"

typedef struct Case {
    const char *name;
    const char *base; /* declarations */
    const char *body; /* the rest */
    Op must[3];       /* OP_COUNT-terminated (0 = OP_INPUT: none) */
    Op must_not[2];
} Case;

#define NONE OP_INPUT /* an op no fused module lacks: "no requirement" */

static const char ATT[] =
    "model att\ndim B = 2\ndim T = 4\ndim D = 8\n"
    "input x : f32[B, T, D]\ninput lw : f32[B, T, D]\n"
    "param Wq : f32[D, D] = normal(0.3)\nparam Wk : f32[D, D] = normal(0.3)\n"
    "param Wv : f32[D, D] = normal(0.3)\nparam s0 : f32[] = const(0.5)\n"
    "q = x @ Wq\nk = x @ Wk\nv = x @ Wv\n";
#define ATT_END "loss = sum(a * lw)\ntrain loss with sgd(lr = 0.1)\n"

static const char LSTM[] =
    "model lstmv\ndim B = 3\ndim T = 4\ndim E = 5\ndim H = 6\n"
    "input xs : f32[T, B, E]\ninput h0 : f32[B, H]\ninput c0 : f32[B, H]\n"
    "input lw : f32[T, B, H]\n"
    "param Wx : f32[E, 4*H] = normal(0.3)\nparam Wh : f32[H, 4*H] = normal(0.3)\n"
    "param b : f32[4*H] = normal(0.1)\nparam Wy : f32[E, H] = normal(0.3)\n";
#define LSTM_END                                                               \
    "loss = sum(hs * lw) + mean(cT * cT)\noutput hs, cT\n"                     \
    "train loss with sgd(lr = 0.1)\n"
#define CELL_STD                                                               \
    "  z = xt @ Wx + h @ Wh + b\n  i, f, g, o = split(z, 4, axis = -1)\n"      \
    "  c = sigmoid(f) * c + sigmoid(i) * tanh(g)\n"                            \
    "  h = sigmoid(o) * tanh(c)\n"

static const char XE[] =
    "model xe\ndim N = 4\ndim K = 6\n"
    "input x : f32[N, K]\ninput t : i32[N]\ninput lw : f32[N, K]\n"
    "param W : f32[K, K] = normal(0.5)\nparam bb : f32[K] = normal(0.1)\n"
    "param M : f32[N, K] = normal(0.1)\nparam W1 : f32[K, 1] = normal(0.5)\n"
    "param W2 : f32[K, K] = normal(0.5)\nparam g : f32[K] = normal(1)\n";

static const Case CASES[] = {
    /* ---- attention ---- */
    {"att_basic", ATT,
     "a = softmax(q @ transpose(k) / sqrt(D)) @ v\noutput a\n" ATT_END,
     {OP_ATTENTION, OP_ATTENTION_GRAD}, {NONE}},
    {"att_causal", ATT,
     "a = softmax(causal_mask(q @ transpose(k) / sqrt(D)), axis = -1) @ v\n"
     "output a\n" ATT_END,
     {OP_ATTENTION, OP_ATTENTION_GRAD}, {NONE}},
    {"att_mask_then_scale", ATT,
     "a = softmax(causal_mask(q @ transpose(k)) * 0.25) @ v\noutput a\n" ATT_END,
     {NONE}, {NONE}},
    {"att_const_left", ATT,
     "a = softmax(0.5 * (q @ transpose(k))) @ v\noutput a\n" ATT_END,
     {OP_ATTENTION}, {NONE}},
    {"att_no_scale", ATT, "a = softmax(q @ transpose(k)) @ v\noutput a\n" ATT_END,
     {OP_ATTENTION}, {NONE}},
    {"att_probs_output", ATT,
     "p = softmax(q @ transpose(k) / sqrt(D))\na = p @ v\noutput a, p\n" ATT_END,
     {NONE}, {NONE}},
    {"att_scores_reused", ATT,
     "s = q @ transpose(k) / sqrt(D)\na = softmax(s) @ v + s @ v\noutput a\n"
     ATT_END,
     {NONE}, {NONE}},
    {"att_qkv_same", ATT, "a = softmax(q @ transpose(q) / 2) @ q\noutput a\n" ATT_END,
     {OP_ATTENTION}, {NONE}},
    {"att_softmax_axis1", ATT,
     "a = softmax(q @ transpose(k), axis = 1) @ v\noutput a\n" ATT_END,
     {NONE}, {OP_ATTENTION}},
    {"att_param_scale", ATT,
     "a = softmax(q @ transpose(k) * s0) @ v\noutput a\n" ATT_END,
     {NONE}, {OP_ATTENTION}},
    {"att_builtin", ATT, "a = attention(q, k, v, causal = true)\noutput a\n" ATT_END,
     {OP_ATTENTION, OP_ATTENTION_GRAD}, {NONE}},
    {"att_then_matmul", ATT,
     "a = tanh((softmax(q @ transpose(k) / 3) @ v) @ Wv + 1)\noutput a\n"
     ATT_END,
     {OP_ATTENTION}, {NONE}},

    /* ---- lstm ---- */
    {"lstm_basic", LSTM,
     "fn cell(h, c, xt) {\n" CELL_STD "  return h, c, h\n}\n"
     "hT, cT, hs = scan(cell, init = (h0, c0), over = xs)\n" LSTM_END,
     {OP_LSTM_CELL, OP_LSTM_CELL_GRAD}, {NONE}},
    {"lstm_commuted", LSTM,
     "fn cell(h, c, xt) {\n  z = b + h @ Wh + xt @ Wx\n"
     "  i, f, g, o = split(z, 4, axis = -1)\n"
     "  c = tanh(g) * sigmoid(i) + c * sigmoid(f)\n  h = tanh(c) * sigmoid(o)\n"
     "  return h, c, h\n}\n"
     "hT, cT, hs = scan(cell, init = (h0, c0), over = xs)\n" LSTM_END,
     {OP_LSTM_CELL, OP_LSTM_CELL_GRAD}, {NONE}},
    {"lstm_gate_order_ifog", LSTM,
     "fn cell(h, c, xt) {\n  z = xt @ Wx + h @ Wh + b\n"
     "  i, f, o, g = split(z, 4, axis = -1)\n"
     "  c = sigmoid(f) * c + sigmoid(i) * tanh(g)\n  h = sigmoid(o) * tanh(c)\n"
     "  return h, c, h\n}\n"
     "hT, cT, hs = scan(cell, init = (h0, c0), over = xs)\n" LSTM_END,
     {NONE}, {NONE}},
    {"lstm_gate_order_fiog", LSTM,
     "fn cell(h, c, xt) {\n  z = xt @ Wx + h @ Wh + b\n"
     "  f, i, g, o = split(z, 4, axis = -1)\n"
     "  c = sigmoid(f) * c + sigmoid(i) * tanh(g)\n  h = sigmoid(o) * tanh(c)\n"
     "  return h, c, h\n}\n"
     "hT, cT, hs = scan(cell, init = (h0, c0), over = xs)\n" LSTM_END,
     {NONE}, {NONE}},
    {"lstm_carry_order", LSTM,
     "fn cell(c, h, xt) {\n" CELL_STD "  return c, h, h\n}\n"
     "cT, hT, hs = scan(cell, init = (c0, h0), over = xs)\n" LSTM_END,
     {OP_LSTM_CELL}, {NONE}},
    {"lstm_gate_output", LSTM,
     "fn cell(h, c, xt) {\n" CELL_STD "  return h, c, sigmoid(f) * h\n}\n"
     "hT, cT, hs = scan(cell, init = (h0, c0), over = xs)\n" LSTM_END,
     {NONE}, {NONE}},
    {"lstm_c_output", LSTM,
     "fn cell(h, c, xt) {\n" CELL_STD "  return h, c, c * h\n}\n"
     "hT, cT, hs = scan(cell, init = (h0, c0), over = xs)\n" LSTM_END,
     {OP_LSTM_CELL}, {NONE}},
    {"lstm_near_sigmoid_g", LSTM,
     "fn cell(h, c, xt) {\n  z = xt @ Wx + h @ Wh + b\n"
     "  i, f, g, o = split(z, 4, axis = -1)\n"
     "  c = sigmoid(f) * c + sigmoid(i) * sigmoid(g)\n  h = sigmoid(o) * tanh(c)\n"
     "  return h, c, h\n}\n"
     "hT, cT, hs = scan(cell, init = (h0, c0), over = xs)\n" LSTM_END,
     {NONE}, {OP_LSTM_CELL}},
    {"lstm_near_old_c", LSTM,
     "fn cell(h, c, xt) {\n  z = xt @ Wx + h @ Wh + b\n"
     "  i, f, g, o = split(z, 4, axis = -1)\n"
     "  cn = sigmoid(f) * c + sigmoid(i) * tanh(g)\n  h = sigmoid(o) * tanh(c)\n"
     "  return h, cn, h\n}\n"
     "hT, cT, hs = scan(cell, init = (h0, c0), over = xs)\n" LSTM_END,
     {NONE}, {OP_LSTM_CELL}},
    {"lstm_input_reused", LSTM,
     "fn cell(h, c, xt) {\n" CELL_STD "  return h, c, h + xt @ Wy\n}\n"
     "hT, cT, hs = scan(cell, init = (h0, c0), over = xs)\n" LSTM_END,
     {OP_LSTM_CELL}, {NONE}},
    {"lstm_reverse", LSTM,
     "fn cell(h, c, xt) {\n" CELL_STD "  return h, c, h\n}\n"
     "hT, cT, hs = scan(cell, init = (h0, c0), over = xs, reverse = true)\n"
     LSTM_END,
     {OP_LSTM_CELL}, {NONE}},
    {"lstm_bias_in_body", LSTM,
     "fn cell(h, c, xt) {\n  z = xt @ Wx + h @ Wh + b * 2\n"
     "  i, f, g, o = split(z, 4, axis = -1)\n"
     "  c = sigmoid(f) * c + sigmoid(i) * tanh(g)\n  h = sigmoid(o) * tanh(c)\n"
     "  return h, c, h\n}\n"
     "hT, cT, hs = scan(cell, init = (h0, c0), over = xs)\n" LSTM_END,
     {OP_LSTM_CELL}, {NONE}},
    {"lstm_two_inputs", LSTM,
     "fn cell(h, c, xt, yt) {\n  z = xt @ Wx + yt @ Wx + h @ Wh + b\n"
     "  i, f, g, o = split(z, 4, axis = -1)\n"
     "  c = sigmoid(f) * c + sigmoid(i) * tanh(g)\n  h = sigmoid(o) * tanh(c)\n"
     "  return h, c, h\n}\n"
     "hT, cT, hs = scan(cell, init = (h0, c0), over = (xs, xs * 2))\n" LSTM_END,
     {OP_LSTM_CELL}, {NONE}},
    {"lstm_no_scan", LSTM,
     "z = xs[0] @ Wx + h0 @ Wh + b\ni, f, g, o = split(z, 4, axis = -1)\n"
     "c = sigmoid(f) * c0 + sigmoid(i) * tanh(g)\nh = sigmoid(o) * tanh(c)\n"
     "loss = sum(h * lw[1]) + mean(c * c)\noutput h, c\n"
     "train loss with sgd(lr = 0.1)\n",
     {OP_LSTM_CELL, OP_LSTM_CELL_GRAD}, {NONE}},

    /* ---- softmax cross entropy ---- */
    {"xent_basic", XE,
     "logits = x @ W + bb\nloss = cross_entropy(logits, t)\noutput logits\n"
     "train loss with sgd(lr = 0.1)\n",
     {OP_SOFTMAX_XENT}, {NONE}},
    {"xent_scaled", XE,
     "logits = x @ W + bb\nloss = cross_entropy(logits, t) * 3\noutput logits\n"
     "train loss with sgd(lr = 0.1)\n",
     {NONE}, {NONE}},
    {"xent_plus_penalty", XE,
     "logits = x @ W + bb\nloss = cross_entropy(logits, t) + 0.01 * sum(W * W)\n"
     "output logits\ntrain loss with sgd(lr = 0.1)\n",
     {NONE}, {NONE}},
    {"xent_3d", XE,
     "input x3 : f32[2, N, K]\ninput t3 : i32[2, N]\n"
     "logits = x3 @ W + bb\nloss = cross_entropy(logits, t3)\noutput logits\n"
     "train loss with sgd(lr = 0.1)\n",
     {OP_SOFTMAX_XENT}, {NONE}},
    {"xent_softmax_output", XE,
     "logits = x @ W + bb\np = softmax(logits, axis = -1)\n"
     "loss = cross_entropy(logits, t)\noutput p, logits\n"
     "train loss with sgd(lr = 0.1)\n",
     {OP_SOFTMAX_XENT}, {NONE}},
    {"xent_logits_reused", XE,
     "logits = tanh(x @ W + bb)\nloss = cross_entropy(logits, t)\n"
     "output logits\ntrain loss with sgd(lr = 0.1)\n",
     {OP_SOFTMAX_XENT}, {NONE}},

    /* ---- matmul epilogue ---- */
    {"epi_product_output", XE,
     "y = x @ W\nout = relu(y + bb)\nloss = sum(out * lw)\noutput out, y\n"
     "train loss with sgd(lr = 0.1)\n",
     {NONE}, {NONE}},
    {"epi_full_extra", XE,
     "out = gelu(x @ W + M)\nloss = sum(out * lw)\noutput out\n"
     "train loss with sgd(lr = 0.1)\n",
     {OP_MATMUL_EPILOGUE}, {NONE}},
    {"epi_3d", XE,
     "input x3 : f32[2, N, K]\nout = relu(x3 @ W + bb)\nloss = mean(out)\n"
     "output out\ntrain loss with sgd(lr = 0.1)\n",
     {OP_MATMUL_EPILOGUE}, {NONE}},
    {"epi_swish", XE,
     "y = x @ W\nout = y * sigmoid(y)\nloss = sum(out * lw)\noutput out\n"
     "train loss with sgd(lr = 0.1)\n",
     {NONE}, {NONE}}, /* the backward reads y: fused or not, both right */
    {"epi_broadcast_up", XE,
     "out = tanh(x @ W1 + bb)\nloss = sum(out * lw)\noutput out\n"
     "train loss with sgd(lr = 0.1)\n",
     {NONE}, {NONE}},
    {"epi_two_products", XE,
     "out = tanh(x @ W + tanh(x) @ W2 + bb)\nloss = sum(out * lw)\noutput out\n"
     "train loss with sgd(lr = 0.1)\n",
     {OP_MATMUL_EPILOGUE}, {NONE}},
    {"epi_where", XE,
     "y = x @ W + bb\nout = where(y > 0, y, y * 0.01)\nloss = sum(out * lw)\n"
     "output out\ntrain loss with sgd(lr = 0.1)\n",
     {OP_MATMUL_EPILOGUE}, {NONE}},

    /* ---- elementwise ---- */
    {"ew_softmax_by_hand", XE,
     "y = x @ W\ne = exp(y - max(y, axis = -1, keepdims = true))\n"
     "p = e / sum(e, axis = -1, keepdims = true)\nloss = sum(p * lw)\n"
     "output p\ntrain loss with sgd(lr = 0.1)\n",
     {OP_FUSED}, {NONE}},
    {"ew_layernorm_by_hand", XE,
     "y = x @ W\nmu = mean(y, axis = -1, keepdims = true)\nd = y - mu\n"
     "var = mean(d * d, axis = -1, keepdims = true)\n"
     "out = d * rsqrt(var + 1e-5) * g + bb\nloss = sum(out * lw)\n"
     "output out\ntrain loss with sgd(lr = 0.1)\n",
     {OP_FUSED}, {NONE}},
    {"ew_i32_condition", XE,
     "input ti : i32[N, K]\ny = x * bb\nout = where(ti, exp(tanh(y)), -y * 2) + "
     "where(ti > 1, y, sigmoid(y))\nloss = sum(out * lw)\noutput out\n"
     "train loss with sgd(lr = 0.1)\n",
     {OP_FUSED}, {NONE}},
    {"ew_reduce_both_axes", XE,
     "y = tanh(x * bb + M)\nr = sum(y * y, axis = 0) + max(exp(y), axis = 0)\n"
     "s = mean(relu(y) * 2, axis = -1, keepdims = true)\n"
     "loss = sum(r * bb) + sum(s * x)\noutput r, s\n"
     "train loss with sgd(lr = 0.1)\n",
     {OP_FUSED}, {NONE}},
    {"ew_shared_intermediate", XE,
     "y = exp(tanh(x * bb))\nu = y * 2 + 1\nv = sqrt(y * y + 1)\n"
     "loss = sum(u * lw) + sum(v)\noutput u, y\n"
     "train loss with sgd(lr = 0.1)\n",
     {OP_FUSED}, {NONE}},
    {"ew_dropout", XE,
     "y = dropout(relu(x @ W + bb), 0.3)\nout = tanh(y) * 2\n"
     "loss = sum(out * lw)\noutput out\ntrain loss with sgd(lr = 0.1)\n",
     {NONE}, {NONE}},
};
enum { N_CASES = sizeof CASES / sizeof *CASES };

static char *case_source(const Case *c)
{
    size_t n = strlen(c->base) + strlen(c->body) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%s%s", c->base, c->body);
    return s;
}

/* Evaluator and JIT comparison of one pair; the number of failures. */
static int compare_pair(const char *label, Module *u, Module *f)
{
    int fails = 0;
    FtData d = ft_data(u, 99, 0.5);
    EvalTensor *ru = ft_eval(u, &d), *rf = ft_eval(f, &d);
    int nu = u->graphs.data[0]->results.len;
    if (!ru || !rf) {
        fails++;
    } else {
        fails += ft_compare_eval(label, f, rf, u, ru);
        FtRun jf, ju;
        if (!ft_jit_run(u, &d, 1, &ju)) {
            fprintf(stderr, "%s: the unfused module does not run\n", label);
            fails++;
        } else {
            if (!ft_jit_run(f, &d, 1, &jf)) {
                fprintf(stderr, "%s: the fused module does not run\n", label);
                fails++;
            } else {
                fails += ft_compare_jit(label, u, &jf, &ju, ru);
                ft_run_free(&jf);
            }
            ft_run_free(&ju);
        }
    }
    ft_results_free(ru, nu);
    ft_results_free(rf, f->graphs.data[0]->results.len);
    ft_data_free(&d);
    return fails;
}

/* 0 if the case passes; prints what failed.  The numeric comparison runs
 * trained and inference-only (--no-train, where the forward graph fuses
 * differently). */
static int check_case(const Case *c, bool numeric, bool ops)
{
    char *src = case_source(c);
    Arena *a = arena_new();
    char file[64], label[96];
    snprintf(file, sizeof file, "%s.nn", c->name);
    Module *u = ft_compile(a, file, src, NULL, true, false);
    Module *f = u ? ft_compile(a, file, src, NULL, false, false) : NULL;
    int fails = 0;
    if (!u || !f) {
        fprintf(stderr, "%s: does not compile\n", c->name);
        fails = 1;
        goto done;
    }
    if (ops) {
        for (int i = 0; i < 3 && c->must[i] != NONE && c->must[i]; i++)
            if (!ft_count_op(f, c->must[i])) {
                fprintf(stderr, "%s: %s missing in the fused module\n", c->name,
                        ir_op_info[c->must[i]].name);
                fails++;
            }
        for (int i = 0; i < 2 && c->must_not[i] != NONE && c->must_not[i]; i++)
            if (ft_count_op(f, c->must_not[i])) {
                fprintf(stderr, "%s: %s in the fused module (near miss)\n",
                        c->name, ir_op_info[c->must_not[i]].name);
                fails++;
            }
    }
    if (numeric) {
        fails += compare_pair(c->name, u, f);
        Module *ui = ft_compile_mode(a, file, src, NULL, true, true, false);
        Module *fi = ft_compile_mode(a, file, src, NULL, false, true, false);
        snprintf(label, sizeof label, "%s --no-train", c->name);
        if (!ui || !fi) {
            fprintf(stderr, "%s: does not compile\n", label);
            fails++;
        } else {
            fails += compare_pair(label, ui, fi);
        }
    }
done:
    if (fails)
        fprintf(stderr, "---- %s ----\n%s----\n", c->name, src);
    arena_free(a);
    free(src);
    return fails;
}

static void run_cases(bool numeric, bool ops)
{
    const char *only = getenv("NNC_FUSION_CASE");
    int failed = 0;
    for (int i = 0; i < N_CASES; i++) {
        if (only && strcmp(only, CASES[i].name) != 0)
            continue;
        int f = check_case(&CASES[i], numeric, ops);
        fprintf(stderr, "%-24s %s\n", CASES[i].name, f ? "FAILED" : "ok");
        failed += f != 0;
    }
    assert_int_equal(failed, 0);
}

static void test_numeric(void **state)
{
    (void)state;
    run_cases(true, false);
}

static void test_ops(void **state)
{
    (void)state;
    run_cases(false, true);
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "print") == 0) { /* a case's source */
        for (int i = 0; i < N_CASES; i++)
            if (strcmp(CASES[i].name, argv[2]) == 0) {
                char *s = case_source(&CASES[i]);
                fputs(s, stdout);
                free(s);
                return 0;
            }
        return 1;
    }
    const struct CMUnitTest numeric[] = {cmocka_unit_test(test_numeric)};
    const struct CMUnitTest ops[] = {cmocka_unit_test(test_ops)};
    const char *which = argc > 1 ? argv[1] : "all";
    bool all = strcmp(which, "all") == 0;
    int rc = 0;
    if (all || strcmp(which, "numeric") == 0)
        rc |= cmocka_run_group_tests_name("numeric", numeric, NULL, NULL);
    if (all || strcmp(which, "ops") == 0)
        rc |= cmocka_run_group_tests_name("ops", ops, NULL, NULL);
    return rc != 0;
}
