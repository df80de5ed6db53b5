/* test_grad_composites.c — gradients of whole models, checked by central
 * differences: every broadcasting pattern of a binary op, scans (several
 * carries and over tensors, reversed, over stacked params, nested, with a
 * lookup or a dropout inside, a carry that only becomes active inside the
 * body), the LSTM cell and causal multi-head attention written out by hand
 * as in the conformance models, frozen and unused params, and IR the
 * front end does not produce (a param read inside a scan body, two scans
 * sharing a body).  Tolerance: relative L2 error 1e-6 per param. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "grad_check.h"

#define TOL 1e-6
#define H   1e-5

/* Compiles (or reads, when the text starts with "model" and has a graph),
 * differentiates and checks one model. */
static void check_model(const char *name, const char *src,
                        uint64_t dropout_seed, double scale)
{
    Arena *a = arena_new();
    Module *m = strstr(src, "graph main") ? gc_read_ir(a, src)
                                          : gc_compile(a, src, NULL, 0);
    if (!m)
        fail_msg("%s does not compile", name);
    GcModel gm = gc_model(a, m, 7, scale);
    gm.opt.dropout_seed = dropout_seed;
    double err = gc_check(&gm, H, TOL, getenv("NNC_GRAD_VERBOSE") != NULL);
    if (!(err <= TOL))
        fail_msg("%s: relative error %g", name, err);
    gc_model_free(&gm);
    arena_free(a);
}

/* ---- broadcasting --------------------------------------------------------- */

static void test_broadcasting_patterns(void **state)
{
    (void)state;
    static const char *const shapes[][2] = {
        {"[2, 3, 4]", "[4]"},       {"[2, 3, 4]", "[3, 1]"},
        {"[2, 3, 4]", "[2, 1, 4]"}, {"[2, 3, 4]", "[1, 1, 1]"},
        {"[2, 3, 4]", "[]"},        {"[1, 3, 1]", "[2, 1, 4]"},
        {"[3, 1]", "[2, 1, 4]"},    {"[2, 3, 4]", "[2, 3, 4]"},
    };
    static const char *const ops[] = {"+", "-", "*", "/"};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t o = 0; o < 4; o++) {
            Arena *a = arena_new();
            const char *rhs = o == 3 ? "(b * b + 1)" : "b";
            const char *lhs = o == 3 ? "(a * a + 1)" : "a";
            char *src = arena_printf(
                a,
                "model t\ninput w : f32[2, 3, 4]\nparam a : f32%s = zeros\n"
                "param b : f32%s = zeros\n"
                "train sum(w * (a %s %s)) + sum(w * (%s %s %s)) with sgd(lr = "
                "0.1)\n",
                shapes[s][0], shapes[s][1], ops[o], rhs, rhs, ops[o], lhs);
            char *name = arena_printf(a, "a%s %s b%s", shapes[s][0], ops[o],
                                      shapes[s][1]);
            check_model(name, src, 0, 1.0);
            arena_free(a);
        }
}

/* ---- scans ---------------------------------------------------------------- */

/* Two carries of different shapes, two over tensors, a capture, reversed;
 * h0 is a param, c0 an input whose carry becomes active in the body. */
static const char scan_carries[] =
    "model t\n"
    "input xs : f32[4, 2, 3]\ninput ys : f32[4, 2]\ninput c0 : f32[2]\n"
    "param h0 : f32[2, 3] = zeros\nparam W : f32[3, 3] = zeros\nparam u : "
    "f32[3] = zeros\n"
    "fn step(h, c, x, y) {\n"
    "  h2 = tanh(h @ W + x * u)\n"
    "  c2 = c * sigmoid(y) + sum(h2, axis = 1)\n"
    "  return h2, c2, h2 * reshape(c2, [2, 1])\n"
    "}\n"
    "h, c, outs = scan(step, init = (h0, c0), over = (xs, ys), reverse = "
    "true)\n"
    "train sum(outs * outs) + sum(h) + sum(c * c) with sgd(lr = 0.1)\n";

/* The same forward, not reversed, with only the per-step outputs used. */
static const char scan_outputs_only[] =
    "model t\n"
    "input xs : f32[4, 2, 3]\ninput ys : f32[4, 2]\ninput c0 : f32[2]\n"
    "param h0 : f32[2, 3] = zeros\nparam W : f32[3, 3] = zeros\nparam u : "
    "f32[3] = zeros\n"
    "fn step(h, c, x, y) {\n"
    "  h2 = tanh(h @ W + x * u)\n"
    "  c2 = c * sigmoid(y) + sum(h2, axis = 1)\n"
    "  return h2, c2, h2 * reshape(c2, [2, 1])\n"
    "}\n"
    "h, c, outs = scan(step, init = (h0, c0), over = (xs, ys))\n"
    "train sum(outs * outs) with sgd(lr = 0.1)\n";

/* Params stacked along the scanned axis, one slice per layer (gpt.nn). */
static const char scan_stacked[] =
    "model t\n"
    "input x0 : f32[2, 4]\ninput w : f32[2, 4]\n"
    "param Ws : f32[3, 4, 4] = zeros\nparam bs : f32[3, 4] = zeros\nparam g : "
    "f32[4] = zeros\n"
    "fn layer(x, Wl, bl) {\n  return x + tanh(x @ Wl + bl) * g\n}\n"
    "x = scan(layer, init = x0, over = (Ws, bs))\n"
    "train sum(w * x) with sgd(lr = 0.1)\n";

/* A scan inside a scan's body, the inner one over a captured param. */
static const char scan_nested[] =
    "model t\n"
    "input xs : f32[3, 2, 4]\n"
    "param s0 : f32[2, 4] = zeros\nparam V : f32[2, 4] = zeros\nparam W : "
    "f32[4, 4] = zeros\n"
    "fn inner(h, v) {\n  h = tanh(h * v + h @ W)\n  return h, h\n}\n"
    "fn outer(s, x) {\n"
    "  s2, hs = scan(inner, init = s * x, over = V, reverse = true)\n"
    "  return s2 + x, sum(hs, axis = 0)\n"
    "}\n"
    "s, outs = scan(outer, init = s0, over = xs)\n"
    "train sum(outs * outs) + sum(s) with sgd(lr = 0.1)\n";

/* An embedding lookup inside the body (the scatter_add is accumulated in
 * the backward scan), over i32 tokens. */
static const char scan_lookup[] =
    "model t\n"
    "input tokens : i32[5, 2]\ninput h0 : f32[2, 3]\n"
    "param E : f32[3, 3] = zeros\nparam W : f32[3, 3] = zeros\n"
    "fn step(h, tok) {\n  h = tanh(E[tok] + h @ W)\n  return h, h\n}\n"
    "h, hs = scan(step, init = h0, over = tokens)\n"
    "train sum(hs * hs) with sgd(lr = 0.1)\n";

/* A dropout in the body: its masks depend on the step. */
static const char scan_dropout[] =
    "model t\n"
    "input xs : f32[4, 2, 3]\n"
    "param h0 : f32[2, 3] = zeros\nparam W : f32[3, 3] = zeros\n"
    "fn step(h, x) {\n  h = dropout(tanh(h @ W + x), 0.4)\n  return h, h\n}\n"
    "h, hs = scan(step, init = h0, over = xs)\n"
    "train sum(hs * xs) + sum(dropout(h, 0.5)) with sgd(lr = 0.1)\n";

/* A carry passed through unchanged and one that no result reads. */
static const char scan_passthrough[] =
    "model t\n"
    "input xs : f32[3, 4]\n"
    "param a0 : f32[4] = zeros\nparam b0 : f32[4] = zeros\nparam k : f32[4] = "
    "zeros\n"
    "fn step(a, b, x) {\n  return a, b * x, tanh(a * x + k)\n}\n"
    "a, b, ys = scan(step, init = (a0, b0), over = xs)\n"
    "train sum(ys) + sum(a * a) with sgd(lr = 0.1)\n";

static void test_scans(void **state)
{
    (void)state;
    check_model("scan_carries", scan_carries, 0, 0.5);
    check_model("scan_outputs_only", scan_outputs_only, 0, 0.5);
    check_model("scan_stacked", scan_stacked, 0, 0.5);
    check_model("scan_nested", scan_nested, 0, 0.5);
    check_model("scan_lookup", scan_lookup, 0, 0.5);
    check_model("scan_dropout", scan_dropout, 99, 0.5);
    check_model("scan_passthrough", scan_passthrough, 0, 0.5);
}

/* ---- the conformance composites, written out ------------------------------ */

static const char lstm_cell[] =
    "model t\n"
    "dim B = 2\ndim T = 3\ndim E = 3\ndim H = 4\n"
    "input xs : f32[T, B, E]\ninput h0 : f32[B, H]\ninput c0 : f32[B, "
    "H]\ninput w : f32[T, B, H]\n"
    "param Wx : f32[E, 4*H] = zeros\nparam Wh : f32[H, 4*H] = zeros\nparam b : "
    "f32[4*H] = zeros\n"
    "fn cell(h, c, xt) {\n"
    "  z = xt @ Wx + h @ Wh + b\n"
    "  i, f, g, o = split(z, 4, axis = -1)\n"
    "  c = sigmoid(f) * c + sigmoid(i) * tanh(g)\n"
    "  h = sigmoid(o) * tanh(c)\n"
    "  return h, c, h\n"
    "}\n"
    "h_last, c_last, hs = scan(cell, init = (h0, c0), over = xs)\n"
    "train sum(w * hs) + sum(c_last) with sgd(lr = 0.1)\n";

static const char attention_heads[] =
    "model t\n"
    "dim B = 2\ndim T = 3\ndim C = 4\ndim NH = 2\ndim HD = C / NH\n"
    "input w : f32[B, T, C]\n"
    "param x : f32[B, T, C] = zeros\nparam Wqkv : f32[C, 3*C] = zeros\n"
    "fn heads(t) {\n  return permute(reshape(t, [B, T, NH, HD]), [0, 2, 1, "
    "3])\n}\n"
    "q, k, v = split(x @ Wqkv, 3, axis = -1)\n"
    "s = (heads(q) @ transpose(heads(k))) / sqrt(HD)\n"
    "a = softmax(causal_mask(s), axis = -1) @ heads(v)\n"
    "a = reshape(permute(a, [0, 2, 1, 3]), [B, T, C])\n"
    "train sum(w * a) with sgd(lr = 0.1)\n";

static void test_composites(void **state)
{
    (void)state;
    check_model("lstm_cell", lstm_cell, 0, 0.5);
    check_model("attention_heads", attention_heads, 0, 1.0);
}

/* ---- params: frozen, unused, read inside a body, shared bodies ------------ */

static const char frozen_unused[] =
    "model t\n"
    "input x : f32[2, 3]\ninput y : i32[2]\n"
    "param W : f32[3, 4] = zeros\nparam F : f32[4, 4] = zeros frozen\n"
    "param unused : f32[5] = zeros\nparam b : f32[4] = zeros\n"
    "train cross_entropy(relu(x @ W) @ F + b, y) with sgd(lr = 0.1)\n";

#define TRAIN_LINE                                                             \
    "train sgd(lr=0.1, momentum=0, nesterov=false, beta1=0.9, beta2=0.999, "   \
    "eps=1e-08, weight_decay=0, clip_grad_norm=0)\noutputs 0\n\n"

/* A body that reads W itself instead of as a captured operand. */
static const char param_in_body[] =
    "model t\n\ninput xs : f32[3, 2, 4]\n\n"
    "param h0 : f32[2, 4] = zeros\nparam W : f32[4, 4] = zeros\n\n" TRAIN_LINE
    "graph main {\n"
    "  %0 = input @xs : f32[3, 2, 4]\n"
    "  %1 = param @h0 : f32[2, 4]\n"
    "  %2, %3 = scan @step(carries=1, over=1, reverse=false) %1, %0 : f32[2, "
    "4], f32[3, 2, 4]\n"
    "  %4 = mul %3, %3 : f32[3, 2, 4]\n"
    "  %5 = sum %4 axes=[0, 1, 2] keepdims=false : f32[]\n"
    "  return loss=%5\n}\n\n"
    "graph step(args=2) {\n"
    "  %0 = arg 0 : f32[2, 4]\n"
    "  %1 = arg 1 : f32[2, 4]\n"
    "  %2 = param @W : f32[4, 4]\n"
    "  %3 = matmul %0, %2 : f32[2, 4]\n"
    "  %4 = add %3, %1 : f32[2, 4]\n"
    "  %5 = tanh %4 : f32[2, 4]\n"
    "  return %5, %5\n}\n";

/* Two scans running one body: stacking carries must copy it. */
static const char shared_body[] =
    "model t\n\ninput xs : f32[3, 2, 4]\n\n"
    "param h0 : f32[2, 4] = zeros\nparam W : f32[4, 4] = zeros\n\n" TRAIN_LINE
    "graph main {\n"
    "  %0 = input @xs : f32[3, 2, 4]\n"
    "  %1 = param @h0 : f32[2, 4]\n"
    "  %2 = param @W : f32[4, 4]\n"
    "  %3, %4 = scan @step(carries=1, over=1, reverse=false) %1, %0, %2 : "
    "f32[2, 4], f32[3, 2, 4]\n"
    "  %5, %6 = scan @step(carries=1, over=1, reverse=true) %3, %4, %2 : "
    "f32[2, 4], f32[3, 2, 4]\n"
    "  %7 = mul %6, %6 : f32[3, 2, 4]\n"
    "  %8 = sum %7 axes=[0, 1, 2] keepdims=false : f32[]\n"
    "  return loss=%8\n}\n\n"
    "graph step(args=3) {\n"
    "  %0 = arg 0 : f32[2, 4]\n"
    "  %1 = arg 1 : f32[2, 4]\n"
    "  %2 = arg 2 : f32[4, 4]\n"
    "  %3 = matmul %0, %2 : f32[2, 4]\n"
    "  %4 = add %3, %1 : f32[2, 4]\n"
    "  %5 = tanh %4 : f32[2, 4]\n"
    "  return %5, %5\n}\n";

/* Many operands: splits into 40 and 70 parts (the gradient's concat
 * joins more than 64 parts in groups) and a scan reading 40 params, whose
 * backward scan takes more than 64 operands. */
static void test_many_operands(void **state)
{
    (void)state;
    Arena *a = arena_new();
    char *decl = "", *use = "", *sum = "0";
    for (int i = 0; i < 40; i++) {
        decl = arena_printf(a, "%sparam k%d : f32[2] = zeros\n", decl, i);
        use = arena_printf(a, "%s + k%d * %d", use, i, i % 3 + 1);
        sum = arena_printf(a, "%s + sum(parts_%d * %d)", sum, i, i % 5);
    }
    char *scan = arena_printf(
        a,
        "model t\ninput xs : f32[3, 2]\nparam h0 : f32[2] = zeros\n%s"
        "fn step(h, x) {\n  h = tanh(h * x%s)\n  return h, h\n}\n"
        "h, hs = scan(step, init = h0, over = xs)\n"
        "train sum(hs * hs) with sgd(lr = 0.1)\n",
        decl, use);
    check_model("scan_40_captures", scan, 0, 0.3);
    char *names = "parts_0";
    for (int i = 1; i < 40; i++)
        names = arena_printf(a, "%s, parts_%d", names, i);
    char *split = arena_printf(
        a,
        "model t\nparam x : f32[2, 80] = zeros\n"
        "%s = split(x * x, 40, axis = 1)\ntrain %s with sgd(lr = 0.1)\n",
        names, sum);
    check_model("split_40", split, 0, 1.0);
    /* 70 pieces, every other one read: 70 parts and gaps in one concat */
    names = "parts_0";
    sum = "0";
    for (int i = 1; i < 70; i++) {
        names = arena_printf(a, "%s, parts_%d", names, i);
        if (i % 2)
            sum = arena_printf(a, "%s + sum(parts_%d * %d)", sum, i, i % 5);
    }
    split = arena_printf(a,
                         "model t\nparam x : f32[2, 70] = zeros\n"
                         "%s = split(x * x, 70, axis = 1)\ntrain %s with "
                         "sgd(lr = 0.1)\n",
                         names, sum);
    check_model("split_70", split, 0, 1.0);
    arena_free(a);
}

static void test_params(void **state)
{
    (void)state;
    check_model("frozen_unused", frozen_unused, 0, 1.0);
    check_model("param_in_body", param_in_body, 0, 0.5);
    check_model("shared_body", shared_body, 0, 0.5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcasting_patterns),
        cmocka_unit_test(test_scans),
        cmocka_unit_test(test_composites),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_many_operands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
