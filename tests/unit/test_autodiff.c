/* test_autodiff.c — the autodiff pass: its rule table, its contract with
 * the rest of the compiler, and the exact gradients PyTorch gives at kinks
 * and ties.
 *
 * test_rule_table_has_no_gap walks ops.def: every op has a rule, and the
 * explicit "no gradient" marker is used by exactly the leaves and the
 * OPF_NODIFF ops.  The contract (ir.h, Module.n_grads): one result per
 * trainable param after the loss, in declaration order, named grad.NAME,
 * of the param's type, zero for a param the loss does not read; nothing
 * without `train` or with --no-train; a second run changes nothing; the
 * text IR carries it (`grads N`) through print -> read -> print.  Values at
 * kinks are checked exactly with the reference evaluator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "passes/grad.h"

static Arena *arena;

static int setup(void **state)
{
    (void)state;
    arena = arena_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(arena);
    return 0;
}

static Module *compile(const char *src)
{
    Diag d;
    diag_init(&d, "t.nn", src, strlen(src));
    Module *m = fe_compile(arena, src, strlen(src), "t", NULL, 0, &d);
    assert_non_null(m);
    assert_int_equal(d.n_errors, 0);
    return m;
}

static bool run_autodiff(Module *m, bool no_train)
{
    PassCtx ctx = {.m = m, .arena = arena, .no_train = no_train};
    bool changed = pass_autodiff(m, &ctx);
    char err[512];
    if (!ir_verify_module(m, err, sizeof err))
        fail_msg("invalid after autodiff: %s", err);
    return changed;
}

static int count_op(const Graph *g, Op op)
{
    int n = 0;
    for (int32_t k = 0; k < g->nodes.len; k++)
        n += g->nodes.data[k].op == op;
    return n;
}

static char *print_to_string(const Module *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ir_print_module(f, m);
    fclose(f);
    char *copy = arena_strdup(arena, buf);
    free(buf);
    return copy;
}

/* ---- the table ------------------------------------------------------------- */

static void test_rule_table_has_no_gap(void **state)
{
    (void)state;
    for (int op = 0; op < OP_COUNT; op++) {
        bool none = ir_op_info[op].flags & (OPF_NODIFF | OPF_LEAF);
        if (!grad_rules[op])
            fail_msg("op %s has no gradient rule", ir_op_info[op].name);
        if (none && grad_rules[op] != grad_none)
            fail_msg("op %s is OPF_NODIFF or a leaf but has a gradient rule",
                     ir_op_info[op].name);
        if (!none && grad_rules[op] == grad_none)
            fail_msg("op %s is differentiable but marked as having no gradient",
                     ir_op_info[op].name);
    }
}

/* ---- the contract ----------------------------------------------------------- */

static const char contract_src[] =
    "model t\n"
    "input x : f32[2, 3]\ninput y : i32[2]\n"
    "param W : f32[3, 4] = zeros\nparam F : f32[4, 4] = zeros frozen\n"
    "param unused : f32[5] = zeros\nparam b : f32[4] = zeros\n"
    "logits = relu(x @ W) @ F + b\n"
    "output logits\n"
    "train cross_entropy(logits, y) with sgd(lr = 0.1)\n";

static void test_results_follow_the_contract(void **state)
{
    (void)state;
    Module *m = compile(contract_src);
    assert_true(run_autodiff(m, false));
    Graph *g = m->graphs.data[0];
    assert_int_equal(m->n_grads, 3);
    assert_int_equal(g->results.len, 1 + 1 + 3);
    static const char *const names[] = {"grad.W", "grad.unused", "grad.b"};
    static const int params[] = {0, 2, 3};
    for (int i = 0; i < 3; i++) {
        Value v = g->results.data[2 + i];
        Type t = ir_value_type(g, v);
        assert_string_equal(g->result_names.data[2 + i], names[i]);
        assert_true(ir_type_eq(&t, &m->params.data[params[i]].type));
    }
    const Node *zero = ir_def(g, g->results.data[3]);
    assert_int_equal(zero->op, OP_CONST);
    assert_true(zero->attr.value == 0);
    /* x is an input: no gradient is built for it, so the only matmuls are
     * the two of the forward and the two the params need. */
    assert_int_equal(count_op(g, OP_MATMUL), 4);
    assert_false(run_autodiff(m, false)); /* already done */
    assert_int_equal(g->results.len, 5);
}

static void test_nothing_without_training(void **state)
{
    (void)state;
    Module *m = compile(contract_src);
    int32_t before = m->graphs.data[0]->nodes.len;
    assert_false(run_autodiff(m, true));
    assert_int_equal(m->n_grads, 0);
    assert_int_equal(m->graphs.data[0]->nodes.len, before);
    m = compile("model t\ninput x : f32[2]\nparam W : f32[2] = zeros\n"
                "y = x * W\noutput y\n");
    assert_false(run_autodiff(m, false));
    assert_int_equal(m->n_grads, 0);
    /* every param frozen (the front end rejects this; IR may say it) */
    static const char frozen[] =
        "model t\n\ninput x : f32[2]\n\nparam W : f32[2] = zeros frozen\n\n"
        "train sgd(lr=0.1, momentum=0, nesterov=false, beta1=0.9, beta2=0.999, "
        "eps=1e-08, weight_decay=0, clip_grad_norm=0)\noutputs 0\n\n"
        "graph main {\n  %0 = input @x : f32[2]\n  %1 = param @W : f32[2]\n"
        "  %2 = mul %0, %1 : f32[2]\n  %3 = sum %2 axes=[0] keepdims=false : "
        "f32[]\n"
        "  return loss=%3\n}\n";
    Diag d;
    diag_init(&d, "t.ir", frozen, strlen(frozen));
    m = ir_read_module(arena, frozen, strlen(frozen), &d);
    assert_non_null(m);
    assert_false(run_autodiff(m, false));
    assert_int_equal(m->graphs.data[0]->results.len, 1);
}

/* print -> read -> print is byte-identical with grads, dropout sites and
 * the backward helpers in the text. */
static void test_text_round_trip(void **state)
{
    (void)state;
    Module *m = compile(
        "model t\ninput ids : i32[2, 3]\ninput y : i32[2, 3]\n"
        "param E : f32[5, 4] = zeros\nparam W : f32[4, 5] = zeros\n"
        "fn step(h, x) {\n  h = dropout(tanh(h + x), 0.1)\n  return h, h\n}\n"
        "h, hs = scan(step, init = zeros(3, 4), over = E[ids])\n"
        "train cross_entropy(dropout(hs @ W, 0.2), y) with adam()\n");
    run_autodiff(m, false);
    char *text = print_to_string(m);
    assert_non_null(strstr(text, "\ngrads 2\n"));
    assert_non_null(strstr(text, "site=1"));
    assert_non_null(strstr(text, "scatter_add"));
    assert_non_null(strstr(text, "one_hot"));
    Diag d;
    diag_init(&d, "t.ir", text, strlen(text));
    Module *back = ir_read_module(arena, text, strlen(text), &d);
    assert_non_null(back);
    assert_int_equal(back->n_grads, 2);
    assert_string_equal(print_to_string(back), text);
}

static void test_reader_checks_grads(void **state)
{
    (void)state;
    static const char head[] =
        "model t\n\ninput x : f32[2]\n\nparam W : f32[2] = zeros\n\n";
    static const char train[] =
        "train sgd(lr=0.1, momentum=0, nesterov=false, beta1=0.9, beta2=0.999, "
        "eps=1e-08, weight_decay=0, clip_grad_norm=0)\n";
    static const char graph[] =
        "graph main {\n  %0 = input @x : f32[2]\n  %1 = param @W : f32[2]\n"
        "  %2 = mul %0, %1 : f32[2]\n  %3 = sum %2 axes=[0] keepdims=false : "
        "f32[]\n"
        "  return loss=%3, grad.W=%0\n}\n";
    const char *good =
        arena_printf(arena, "%s%soutputs 0\ngrads 1\n\n%s", head, train, graph);
    const char *two =
        arena_printf(arena, "%s%soutputs 0\ngrads 2\n\n%s", head, train, graph);
    const char *untrained =
        arena_printf(arena, "%soutputs 0\ngrads 1\n\n%s", head, graph);
    Diag d;
    FILE *sink = fopen("/dev/null", "w");
    diag_init(&d, "t.ir", good, strlen(good));
    assert_non_null(ir_read_module(arena, good, strlen(good), &d));
    diag_init(&d, "t.ir", two, strlen(two));
    d.out = sink;
    assert_null(ir_read_module(arena, two, strlen(two), &d));
    diag_init(&d, "t.ir", untrained, strlen(untrained));
    d.out = sink;
    assert_null(ir_read_module(arena, untrained, strlen(untrained), &d));
    fclose(sink);
}

static void test_verifier_checks_grad_types(void **state)
{
    (void)state;
    Module *m = compile(contract_src);
    run_autodiff(m, false);
    Graph *g = m->graphs.data[0];
    g->results.data[2] = g->results.data[4]; /* grad.W gets b's type */
    char err[512];
    assert_false(ir_verify_module(m, err, sizeof err));
    assert_non_null(
        strstr(err, "the gradient of W has type f32[4], not f32[3, 4]"));
}

/* ---- structure --------------------------------------------------------------- */

/* The four parts of a split come back as one concat, without padding. */
static void test_split_gradient_is_one_concat(void **state)
{
    (void)state;
    Module *m =
        compile("model t\ninput w : f32[2, 2]\nparam a : f32[2, 8] = zeros\n"
                "i, f, g, o = split(a, 4, axis = -1)\n"
                "train sum(w * i * f + g * o) with sgd(lr = 0.1)\n");
    run_autodiff(m, false);
    const Graph *g = m->graphs.data[0];
    assert_int_equal(count_op(g, OP_CONCAT), 1);
    const Node *cat = ir_def((Graph *)g, g->results.data[1]);
    assert_int_equal(cat->op, OP_CONCAT);
    assert_int_equal(cat->n_in, 4);
}

/* Dropouts get sites; the gradient's dropout reuses the site. */
static void test_dropout_sites(void **state)
{
    (void)state;
    Module *m = compile("model t\ninput w : f32[3]\nparam a : f32[3] = zeros\n"
                        "train sum(w * dropout(a, 0.5)) + sum(dropout(a * a, "
                        "0.3)) with sgd(lr = 1)\n");
    run_autodiff(m, false);
    const Graph *g = m->graphs.data[0];
    int sites[3] = {0, 0, 0}, n = 0;
    for (int32_t k = 0; k < g->nodes.len; k++)
        if (g->nodes.data[k].op == OP_DROPOUT) {
            assert_true(g->nodes.data[k].attr.index >= 1 &&
                        g->nodes.data[k].attr.index <= 2);
            sites[g->nodes.data[k].attr.index]++;
            n++;
        }
    assert_int_equal(n, 4);
    assert_int_equal(sites[1], 2);
    assert_int_equal(sites[2], 2);
    PassCtx ctx = {.m = m, .arena = arena};
    pass_cse(m, &ctx); /* never merges a dropout */
    assert_int_equal(count_op(g, OP_DROPOUT), 4);
}

/* A scan's gradient is a reversed scan over a new body; the forward scan
 * stacks its carries and the value the backward reads (tanh's result,
 * saved rather than recomputed). */
static void test_scan_gradient_structure(void **state)
{
    (void)state;
    Module *m =
        compile("model t\ninput xs : f32[4, 3]\nparam h0 : f32[3] = zeros\n"
                "param W : f32[3, 3] = zeros\n"
                "fn step(h, x) {\n  h = tanh(reshape(reshape(h, [1, 3]) @ W, "
                "[3]) + x)\n"
                "  return h, h\n}\n"
                "h, hs = scan(step, init = h0, over = xs, reverse = true)\n"
                "train sum(hs) with sgd(lr = 1)\n");
    run_autodiff(m, false);
    const Graph *g = m->graphs.data[0];
    const Node *fwd = NULL, *bwd = NULL;
    for (int32_t k = 0; k < g->nodes.len; k++)
        if (g->nodes.data[k].op == OP_SCAN)
            *(fwd ? &bwd : &fwd) = &g->nodes.data[k];
    assert_non_null(bwd);
    assert_int_equal(fwd->n_out, 4); /* h, hs, stacked carries, saved tanh */
    const Graph *body = m->graphs.data[fwd->attr.graph];
    Value saved = body->results.data[3];
    assert_int_equal(body->nodes.data[body->values.data[saved.id].def].op,
                     OP_TANH);
    assert_true(fwd->attr.flag);
    assert_false(bwd->attr.flag);
    assert_string_equal(m->graphs.data[bwd->attr.graph]->name, "step.bwd");
    /* carries: dh only (dW is one product after the scan, grad_defer.c);
     * overs: stacked h, xs, dhs, saved tanh */
    assert_int_equal(bwd->attr.n_carry, 1);
    assert_int_equal(bwd->attr.n_over, 4);
    /* per-step outputs: the factors of dW = sum_t h_t^T dz_t */
    assert_int_equal(bwd->n_out, 3);
    const Node *dw = NULL;
    for (int32_t k = 0; k < g->nodes.len; k++)
        if (g->nodes.data[k].op == OP_MATMUL &&
            g->nodes.data[k].out[0].id == g->results.data[2].id)
            dw = &g->nodes.data[k];
    assert_non_null(dw); /* grad.W (after the loss and grad.h0) */
    /* the backward body no longer recomputes the step's product */
    const Graph *bb = m->graphs.data[bwd->attr.graph];
    PassCtx ctx = {.m = m, .arena = arena};
    pass_dce(m, &ctx);
    assert_int_equal(count_op(bb, OP_TANH), 0);
}

/* ---- kinks and ties, exactly ------------------------------------------------- */

/* The gradients of `train LOSS` at the given param values. */
static void gradients_at(const char *decl, const char *loss,
                         const double *const *values, EvalTensor *grads)
{
    Module *m = compile(arena_printf(
        arena, "model t\n%s\ntrain %s with sgd(lr = 1)\n", decl, loss));
    run_autodiff(m, false);
    EvalTensor *params = calloc((size_t)m->params.len, sizeof *params);
    for (int i = 0; i < m->params.len; i++) {
        params[i] = ir_eval_tensor(m->params.data[i].type);
        memcpy(params[i].data, values[i],
               sizeof(double) * (size_t)ir_type_numel(&params[i].type));
    }
    Graph *g = m->graphs.data[0];
    g->results.data += 1; /* evaluate the gradients only */
    g->results.len -= 1;
    char err[256];
    bool ok =
        ir_eval_graph(m, g, NULL, params, NULL, NULL, grads, err, sizeof err);
    g->results.data -= 1;
    g->results.len += 1;
    for (int i = 0; i < m->params.len; i++)
        ir_eval_tensor_free(&params[i]);
    free(params);
    if (!ok)
        fail_msg("%s", err);
}

static void expect_grad(EvalTensor *t, const double *want)
{
    for (int64_t i = 0; i < ir_type_numel(&t->type); i++)
        if (t->data[i] != want[i])
            fail_msg("element %lld: %g, want %g", (long long)i, t->data[i],
                     want[i]);
    ir_eval_tensor_free(t);
}

static void test_kinks_and_ties_follow_pytorch(void **state)
{
    (void)state;
    EvalTensor g[2];
    double a[4] = {-1, 0, 0, 2}, b[4] = {0, 0, 1, 2};
    gradients_at("param a : f32[4] = zeros\n", "sum(relu(a)) + sum(abs(a))",
                 (const double *const[]){a}, g);
    expect_grad(&g[0], (double[]){-1, 0, 0, 2});
    gradients_at("param a : f32[4] = zeros\nparam b : f32[4] = zeros\n",
                 "sum(maximum(a, b))", (const double *const[]){a, b}, g);
    expect_grad(&g[0], (double[]){0, 0.5, 0, 0.5});
    expect_grad(&g[1], (double[]){1, 0.5, 1, 0.5});
    gradients_at("param a : f32[4] = zeros\nparam b : f32[4] = zeros\n",
                 "sum(minimum(a, b) * 2)", (const double *const[]){a, b}, g);
    expect_grad(&g[0], (double[]){2, 1, 2, 1});
    expect_grad(&g[1], (double[]){0, 1, 0, 1});
    double c[4] = {1, 3, 3, -2};
    gradients_at("param a : f32[4] = zeros\n", "max(a) * 6",
                 (const double *const[]){c}, g);
    expect_grad(&g[0], (double[]){0, 3, 3, 0});
    /* gelu's Phi(x) is read off gelu(x) / x, except at 0 */
    double zero[1] = {0};
    gradients_at("param a : f32[1] = zeros\n", "sum(gelu(a))",
                 (const double *const[]){zero}, g);
    expect_grad(&g[0], (double[]){0.5});
    /* no gradient through comparisons, where's condition or pow's p = 0 */
    gradients_at("param a : f32[4] = zeros\nparam b : f32[4] = zeros\n",
                 "sum((a > b) * 3) + sum(where(a, b, b * 2)) + sum(pow(a, 0))",
                 (const double *const[]){a, b}, g);
    expect_grad(&g[0], (double[]){0, 0, 0, 0});
    expect_grad(&g[1], (double[]){1, 2, 2, 1});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_table_has_no_gap),
        cmocka_unit_test_setup_teardown(test_results_follow_the_contract, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_nothing_without_training, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_text_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_checks_grads, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_verifier_checks_grad_types, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_split_gradient_is_one_concat,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropout_sites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_gradient_structure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kinks_and_ties_follow_pytorch,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
