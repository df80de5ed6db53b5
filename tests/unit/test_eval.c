/* test_eval.c — the reference evaluator (ir/eval.c) computes what PyTorch
 * does, on small tensors whose results are worked out by hand.
 *
 * Each test reads a module from IR text (so any op can be written, the
 * backward helpers too), feeds inputs, and checks every result element.
 * test_every_op_has_a_rule walks ops.def: an op the evaluator cannot run
 * fails it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

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

/* A module with the given inputs ("input x : f32[2, 3]" lines) and main
 * graph body (nodes and return), no params, outputs = n_out. */
static Module *module(const char *inputs, int n_out, const char *body)
{
    char *text = arena_printf(
        arena, "model t\n\n%s\noutputs %d\n\ngraph main {\n%s}\n%s", inputs,
        n_out, body, "");
    Diag d;
    diag_init(&d, "t.ir", text, strlen(text));
    Module *m = ir_read_module(arena, text, strlen(text), &d);
    assert_non_null(m);
    return m;
}

/* Module text with extra graphs after main. */
static Module *module_with(const char *inputs, int n_out, const char *body,
                           const char *graphs)
{
    char *text = arena_printf(
        arena, "model t\n\n%s\noutputs %d\n\ngraph main {\n%s}\n\n%s", inputs,
        n_out, body, graphs);
    Diag d;
    diag_init(&d, "t.ir", text, strlen(text));
    Module *m = ir_read_module(arena, text, strlen(text), &d);
    assert_non_null(m);
    return m;
}

static EvalTensor tensor(const Module *m, int input, const double *v)
{
    EvalTensor t = ir_eval_tensor(m->inputs.data[input].type);
    memcpy(t.data, v, sizeof(double) * (size_t)ir_type_numel(&t.type));
    return t;
}

/* Evaluates m's main graph on inputs; res has room for its results. */
static void run(const Module *m, const EvalTensor *in, EvalTensor *res,
                const EvalOptions *opt)
{
    char err[256];
    if (!ir_eval_graph(m, m->graphs.data[0], in, NULL, NULL, opt, res, err,
                       sizeof err))
        fail_msg("evaluation failed: %s", err);
}

static void expect(const EvalTensor *t, const double *want, int64_t n,
                   double tol)
{
    assert_int_equal(ir_type_numel(&t->type), n);
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(t->data[i] - want[i]) <= tol) &&
            !(isinf(want[i]) && t->data[i] == want[i]))
            fail_msg("element %lld: %.17g, want %.17g", (long long)i,
                     t->data[i], want[i]);
}

static void free_all(EvalTensor *t, int n)
{
    for (int i = 0; i < n; i++)
        ir_eval_tensor_free(&t[i]);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_every_op_has_a_rule(void **state)
{
    (void)state;
    for (int op = 0; op < OP_COUNT; op++)
        if (!ir_eval_has_rule((Op)op))
            fail_msg("the evaluator has no rule for %s", ir_op_info[op].name);
}

static void test_unary_definitions(void **state)
{
    (void)state;
    Module *m =
        module("input x : f32[3]\n", 9,
               "  %0 = input @x : f32[3]\n"
               "  %1 = relu %0 : f32[3]\n  %2 = abs %0 : f32[3]\n"
               "  %3 = gelu %0 : f32[3]\n  %4 = gelu_tanh %0 : f32[3]\n"
               "  %5 = silu %0 : f32[3]\n  %6 = softplus %0 : f32[3]\n"
               "  %7 = rsqrt %2 : f32[3]\n  %8 = pow %2 p=1.5 : f32[3]\n"
               "  %9 = sigmoid %0 : f32[3]\n"
               "  return %1, %2, %3, %4, %5, %6, %7, %8, %9\n");
    EvalTensor in = tensor(m, 0, (double[]){-1.5, 0.25, 25}), r[9];
    run(m, &in, r, NULL);
    double x[3] = {-1.5, 0.25, 25};
    double relu[3] = {0, 0.25, 25}, absv[3] = {1.5, 0.25, 25};
    double gelu[3], gtanh[3], silu[3],
        sp[3] = {log1p(exp(-1.5)), log1p(exp(0.25)), 25};
    double rs[3], pw[3], sg[3];
    for (int i = 0; i < 3; i++) {
        gelu[i] = 0.5 * x[i] * (1 + erf(x[i] / sqrt(2)));
        gtanh[i] = 0.5 * x[i] *
                   (1 + tanh(sqrt(2 / 3.14159265358979323846) *
                             (x[i] + 0.044715 * pow(x[i], 3))));
        sg[i] = 1 / (1 + exp(-x[i]));
        silu[i] = x[i] * sg[i];
        rs[i] = 1 / sqrt(absv[i]);
        pw[i] = pow(absv[i], 1.5);
    }
    expect(&r[0], relu, 3, 0);
    expect(&r[1], absv, 3, 0);
    expect(&r[2], gelu, 3, 1e-15);
    expect(&r[3], gtanh, 3, 1e-15);
    expect(&r[4], silu, 3, 1e-15);
    expect(&r[5], sp, 3, 1e-15); /* 25 > 20: the identity, as in PyTorch */
    expect(&r[6], rs, 3, 1e-15);
    expect(&r[7], pw, 3, 1e-12);
    expect(&r[8], sg, 3, 1e-15);
    free_all(r, 9);
    ir_eval_tensor_free(&in);
}

static void test_broadcasting_and_where(void **state)
{
    (void)state;
    Module *m = module(
        "input a : f32[2, 1]\ninput b : f32[3]\ninput c : i32[2, 3]\n", 3,
        "  %0 = input @a : f32[2, 1]\n  %1 = input @b : f32[3]\n"
        "  %2 = input @c : i32[2, 3]\n"
        "  %3 = sub %0, %1 : f32[2, 3]\n"
        "  %4 = where %2, %0, %1 : f32[2, 3]\n"
        "  %5 = maximum %0, %1 : f32[2, 3]\n"
        "  return %3, %4, %5\n");
    EvalTensor in[3] = {tensor(m, 0, (double[]){1, 2}),
                        tensor(m, 1, (double[]){10, 1, 30}),
                        tensor(m, 2, (double[]){0, 1, 0, 7, 0, 0})};
    EvalTensor r[3];
    run(m, in, r, NULL);
    expect(&r[0], (double[]){-9, 0, -29, -8, 1, -28}, 6, 0);
    expect(&r[1], (double[]){10, 1, 30, 2, 1, 30}, 6, 0);
    expect(&r[2], (double[]){10, 1, 30, 10, 2, 30}, 6, 0);
    free_all(r, 3);
    free_all(in, 3);
}

static void test_matmul_and_shapes(void **state)
{
    (void)state;
    Module *m =
        module("input a : f32[2, 2, 3]\ninput b : f32[3, 2]\n", 5,
               "  %0 = input @a : f32[2, 2, 3]\n  %1 = input @b : f32[3, 2]\n"
               "  %2 = matmul %0, %1 : f32[2, 2, 2]\n"
               "  %3 = permute %0 perm=[2, 0, 1] : f32[3, 2, 2]\n"
               "  %4 = transpose %1 : f32[2, 3]\n"
               "  %5 = slice %0 [1:2, 0:2, 1:3] : f32[1, 2, 2]\n"
               "  %6 = concat %1, %1 axis=1 : f32[3, 4]\n"
               "  return %2, %3, %4, %5, %6\n");
    double a[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
           b[6] = {1, 0, 0, 1, 1, 1};
    EvalTensor in[2] = {tensor(m, 0, a), tensor(m, 1, b)}, r[5];
    run(m, in, r, NULL);
    expect(&r[0], (double[]){4, 5, 10, 11, 16, 17, 22, 23}, 8, 0);
    expect(&r[1], (double[]){1, 4, 7, 10, 2, 5, 8, 11, 3, 6, 9, 12}, 12, 0);
    expect(&r[2], (double[]){1, 0, 1, 0, 1, 1}, 6, 0);
    expect(&r[3], (double[]){8, 9, 11, 12}, 4, 0);
    expect(&r[4], (double[]){1, 0, 1, 0, 0, 1, 0, 1, 1, 1, 1, 1}, 12, 0);
    free_all(r, 5);
    free_all(in, 2);
}

static void test_reductions_and_softmax(void **state)
{
    (void)state;
    Module *m = module("input x : f32[2, 3]\n", 5,
                       "  %0 = input @x : f32[2, 3]\n"
                       "  %1 = sum %0 axes=[0] keepdims=false : f32[3]\n"
                       "  %2 = mean %0 axes=[1] keepdims=true : f32[2, 1]\n"
                       "  %3 = max %0 axes=[0, 1] keepdims=false : f32[]\n"
                       "  %4 = softmax %0 axis=1 : f32[2, 3]\n"
                       "  %5 = log_softmax %0 axis=0 : f32[2, 3]\n"
                       "  return %1, %2, %3, %4, %5\n");
    double x[6] = {1, 2, 3, 3, 3, -1};
    EvalTensor in = tensor(m, 0, x), r[5];
    run(m, &in, r, NULL);
    expect(&r[0], (double[]){4, 5, 2}, 3, 0);
    expect(&r[1], (double[]){2, 5.0 / 3}, 2, 1e-15);
    expect(&r[2], (double[]){3}, 1, 0);
    double e = exp(1) + exp(2) + exp(3), f = 2 * exp(3) + exp(-1);
    expect(&r[3],
           (double[]){exp(1) / e, exp(2) / e, exp(3) / e, exp(3) / f,
                      exp(3) / f, exp(-1) / f},
           6, 1e-15);
    double l0 = log(exp(1) + exp(3)), l1 = log(exp(2) + exp(3)),
           l2 = log(exp(3) + exp(-1));
    expect(&r[4], (double[]){1 - l0, 2 - l1, 3 - l2, 3 - l0, 3 - l1, -1 - l2},
           6, 1e-14);
    free_all(r, 5);
    ir_eval_tensor_free(&in);
}

static void test_norms(void **state)
{
    (void)state;
    Module *m =
        module("input x : f32[1, 4]\ninput g : f32[4]\ninput b : f32[4]\n", 2,
               "  %0 = input @x : f32[1, 4]\n  %1 = input @g : f32[4]\n"
               "  %2 = input @b : f32[4]\n"
               "  %3 = layernorm %0, %1, %2 eps=0 : f32[1, 4]\n"
               "  %4 = rmsnorm %0, %1 eps=0 : f32[1, 4]\n"
               "  return %3, %4\n");
    EvalTensor in[3] = {tensor(m, 0, (double[]){1, 2, 3, 6}),
                        tensor(m, 1, (double[]){1, 1, 2, 1}),
                        tensor(m, 2, (double[]){0, 0, 0, 10})};
    EvalTensor r[2];
    run(m, in, r, NULL);
    double sd = sqrt((4 + 1 + 0 + 9) / 4.0), rms = sqrt((1 + 4 + 9 + 36) / 4.0);
    expect(&r[0], (double[]){-2 / sd, -1 / sd, 0, 3 / sd + 10}, 4, 1e-15);
    expect(&r[1], (double[]){1 / rms, 2 / rms, 6 / rms, 6 / rms}, 4, 1e-15);
    free_all(r, 2);
    free_all(in, 3);
}

/* gather, scatter_add (repeated ids accumulate) and one_hot; an id out of
 * range is an error in gather and cross_entropy. */
static void test_lookups_and_losses(void **state)
{
    (void)state;
    Module *m =
        module("input E : f32[3, 2]\ninput ids : i32[4]\ninput t : i32[4]\n", 4,
               "  %0 = input @E : f32[3, 2]\n  %1 = input @ids : i32[4]\n"
               "  %2 = input @t : i32[4]\n"
               "  %3 = gather %0, %1 : f32[4, 2]\n"
               "  %4 = scatter_add %3, %1 : f32[3, 2]\n"
               "  %5 = one_hot %1 : f32[4, 3]\n"
               "  %6 = cross_entropy %3, %2 : f32[]\n"
               "  return %3, %4, %5, %6\n");
    EvalTensor in[3] = {tensor(m, 0, (double[]){1, 2, 3, 4, 5, 6}),
                        tensor(m, 1, (double[]){2, 0, 2, 1}),
                        tensor(m, 2, (double[]){1, 0, 1, 1})};
    EvalTensor r[4];
    run(m, in, r, NULL);
    expect(&r[0], (double[]){5, 6, 1, 2, 5, 6, 3, 4}, 8, 0);
    expect(&r[1], (double[]){1, 2, 3, 4, 10, 12}, 6, 0);
    expect(&r[2], (double[]){0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0}, 12, 0);
    double ce = (2 * (log(exp(5) + exp(6)) - 6) + log(exp(1) + exp(2)) - 1 +
                 log(exp(3) + exp(4)) - 4) /
                4;
    expect(&r[3], &ce, 1, 1e-15);
    free_all(r, 4);
    char err[256];
    in[2].data[3] = 2;
    assert_false(ir_eval_graph(m, m->graphs.data[0], in, NULL, NULL, NULL, r,
                               err, sizeof err));
    assert_non_null(strstr(
        err, "cross_entropy: target 2 at flat position 3 is outside 0..1"));
    in[1].data[1] = 3;
    assert_false(ir_eval_graph(m, m->graphs.data[0], in, NULL, NULL, NULL, r,
                               err, sizeof err));
    assert_non_null(
        strstr(err, "embedding: id 3 at flat position 1 is outside 0..2"));
    free_all(in, 3);
}

/* attention equals the composite softmax(mask(q k^T s)) v. */
static void test_attention(void **state)
{
    (void)state;
    Module *m = module(
        "input q : f32[2, 3]\ninput k : f32[3, 3]\ninput v : f32[3, 2]\n", 2,
        "  %0 = input @q : f32[2, 3]\n  %1 = input @k : f32[3, 3]\n"
        "  %2 = input @v : f32[3, 2]\n"
        "  %3 = attention %0, %1, %2 causal=true scale=0.5 : f32[2, 2]\n"
        "  %4 = transpose %1 : f32[3, 3]\n"
        "  %5 = matmul %0, %4 : f32[2, 3]\n"
        "  %6 = const 0.5 : f32[]\n"
        "  %7 = mul %5, %6 : f32[2, 3]\n"
        "  %8 = causal_mask %7 : f32[2, 3]\n"
        "  %9 = softmax %8 axis=1 : f32[2, 3]\n"
        "  %10 = matmul %9, %2 : f32[2, 2]\n"
        "  return %3, %10\n");
    EvalTensor in[3] = {
        tensor(m, 0, (double[]){1, -1, 0.5, 0.2, 0.3, -2}),
        tensor(m, 1, (double[]){0.1, 0.2, 0.3, -1, 1, 2, 3, 0, -0.5}),
        tensor(m, 2, (double[]){1, 2, 3, 4, 5, 6})};
    EvalTensor r[2];
    run(m, in, r, NULL);
    expect(&r[0], r[1].data, 4, 1e-15);
    assert_true(fabs(r[0].data[0] - 1) < 1e-15 &&
                fabs(r[0].data[1] - 2) < 1e-15);
    free_all(r, 2);
    free_all(in, 3);
}

/* A reversed scan with two carries: outputs are stacked in time order. */
static void test_scan(void **state)
{
    (void)state;
    Module *m = module_with(
        "input x : f32[3, 2]\ninput s0 : f32[2]\n", 2,
        "  %0 = input @x : f32[3, 2]\n  %1 = input @s0 : f32[2]\n"
        "  %2, %3, %4 = scan @step(carries=2, over=1, reverse=true) %1, %1, %0 "
        ": "
        "f32[2], f32[2], f32[3, 2]\n"
        "  return %2, %4\n",
        "graph step(args=3) {\n"
        "  %0 = arg 0 : f32[2]\n  %1 = arg 1 : f32[2]\n  %2 = arg 2 : f32[2]\n"
        "  %3 = add %0, %2 : f32[2]\n  %4 = mul %1, %2 : f32[2]\n"
        "  return %3, %4, %3\n}\n");
    EvalTensor in[2] = {tensor(m, 0, (double[]){1, 2, 3, 4, 5, 6}),
                        tensor(m, 1, (double[]){10, 20})};
    EvalTensor r[2];
    run(m, in, r, NULL);
    expect(&r[0], (double[]){19, 32}, 2, 0);
    expect(&r[1], (double[]){19, 32, 18, 30, 15, 26}, 6, 0);
    free_all(r, 2);
    free_all(in, 2);
}

/* Without a seed dropout is the identity; with one, about p of the
 * elements are zeroed, the rest scaled by 1/(1-p), the mask depending on
 * the site only (the same for a dropout of another tensor at the site). */
static void test_dropout(void **state)
{
    (void)state;
    Module *m = module("input x : f32[1000]\n", 3,
                       "  %0 = input @x : f32[1000]\n"
                       "  %1 = dropout %0 p=0.25 site=1 : f32[1000]\n"
                       "  %2 = dropout %0 p=0.25 site=2 : f32[1000]\n"
                       "  %3 = neg %0 : f32[1000]\n"
                       "  %4 = dropout %3 p=0.25 site=1 : f32[1000]\n"
                       "  return %1, %2, %4\n");
    EvalTensor in = ir_eval_tensor(m->inputs.data[0].type), r[3];
    for (int i = 0; i < 1000; i++)
        in.data[i] = 1 + i;
    run(m, &in, r, NULL);
    expect(&r[0], in.data, 1000, 0);
    free_all(r, 3);
    run(m, &in, r, &(EvalOptions){.dropout_seed = 5});
    int zeros = 0, differ = 0;
    for (int i = 0; i < 1000; i++) {
        double y = r[0].data[i];
        assert_true(y == 0 || fabs(y - in.data[i] / 0.75) < 1e-12);
        assert_true(r[2].data[i] == -y);
        zeros += y == 0;
        differ += (y == 0) != (r[1].data[i] == 0);
    }
    assert_in_range(zeros, 200, 300);
    assert_true(differ > 100);
    free_all(r, 3);
    ir_eval_tensor_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_has_a_rule),
        cmocka_unit_test_setup_teardown(test_unary_definitions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_broadcasting_and_where, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_matmul_and_shapes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reductions_and_softmax, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_norms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookups_and_losses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_attention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
