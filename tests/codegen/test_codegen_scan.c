/* Codegen tests: scan as a loop.  Two carries and a captured parameter,
 * forward and reversed (stacked outputs in time order either way); a scan
 * over i32 ids with a lookup in the body (a bad id at a later step is an
 * error); and the generated code's size does not grow with T. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cg_test.h"

enum { B = 2, H = 3 };

/* body(h, c, xt, w): h' = tanh(h * w + xt); c' = c + h'; y = h' * c' */
static TB rnn_model(int64_t steps, bool reverse)
{
    TB t = tb_new("rnn");
    Value x = tb_input(&t, "x", F32(steps, B, H));
    Value h0 = tb_input(&t, "h0", F32(B, H));
    Value w = tb_param(&t, "w", F32(H), INIT_ONES);
    Graph *main = t.g;
    t.g = ir_graph_new(t.m, "step");
    Value h = tb_arg(&t, 0, F32(B, H)), c = tb_arg(&t, 1, F32(B, H));
    Value xt = tb_arg(&t, 2, F32(B, H)), wa = tb_arg(&t, 3, F32(H));
    Value h2 =
        tb_op1(&t, OP_TANH, tb_op2(&t, OP_ADD, tb_op2(&t, OP_MUL, h, wa), xt));
    Value c2 = tb_op2(&t, OP_ADD, c, h2);
    ir_add_result(t.m, t.g, h2, "h");
    ir_add_result(t.m, t.g, c2, "c");
    ir_add_result(t.m, t.g, tb_op2(&t, OP_MUL, h2, c2), "y");
    Graph *body = t.g;
    t.g = main;
    Value outs[3];
    Value zeros = tb_const(&t, 0.0, F32(B, H));
    Value in[4] = {h0, zeros, x, w};
    Attrs a = {.graph = body->id, .n_carry = 2, .n_over = 1, .flag = reverse};
    tb_add(&t, OP_SCAN, &a, 4, in, outs);
    tb_output(&t, outs[2], "ys");
    tb_output(&t, outs[0], "h_last");
    tb_output(&t, outs[1], "c_last");
    return t;
}

static void run_rnn(int64_t steps, bool reverse)
{
    TB t = rnn_model(steps, reverse);
    CgJit *j = tb_jit(&t);
    float x[64 * B * H], h0[B * H], w[H], ys[64 * B * H], hl[B * H], cl[B * H];
    double wys[64 * B * H], wh[B * H], wc[B * H] = {0};
    fill(x, steps * B * H, -1, 1, 30);
    fill(h0, B * H, -1, 1, 31);
    fill(w, H, 0.5f, 1.5f, 32);
    for (int i = 0; i < B * H; i++)
        wh[i] = h0[i];
    for (int64_t step = 0; step < steps; step++) {
        int64_t s = reverse ? steps - 1 - step : step;
        for (int i = 0; i < B * H; i++) {
            wh[i] = tanh(wh[i] * w[i % H] + x[s * B * H + i]);
            wc[i] += wh[i];
            wys[s * B * H + i] = wh[i] * wc[i];
        }
    }
    float *params[] = {w};
    void *args[] = {x, h0, ys, hl, cl};
    assert_int_equal(tb_run(&t, j, params, args), 0);
    expect_close(ys, wys, steps * B * H, 1e-5, reverse ? "ys reversed" : "ys");
    expect_close(hl, wh, B * H, 1e-5, "h_last");
    expect_close(cl, wc, B * H, 1e-5, "c_last");
    tb_free(&t, j);
}

static void test_scan_forward(void **state)
{
    run_rnn(5, false);
    run_rnn(4, false); /* even T: the final carries are in the other buffer */
    run_rnn(1, false);
}

static void test_scan_reverse(void **state)
{
    run_rnn(5, true);
    run_rnn(6, true);
}

/* The same at -O0 and -O3 (no pass pipeline may be needed for
 * correctness). */
static void test_scan_opt_levels(void **state)
{
    tb_opt_level = 0;
    run_rnn(5, false);
    run_rnn(4, true);
    tb_opt_level = 3;
    run_rnn(5, true);
    tb_opt_level = 2;
}

/* body(h, ids_t, E): h' = h + E[ids_t]; per step h'.  ids i32[T, B]. */
static TB lookup_model(void)
{
    TB t = tb_new("look");
    Value ids = tb_input(&t, "ids", I32(4, B));
    Value e = tb_param(&t, "E", F32(5, H), INIT_NORMAL);
    Graph *main = t.g;
    t.g = ir_graph_new(t.m, "step");
    Value h = tb_arg(&t, 0, F32(B, H)), it = tb_arg(&t, 1, I32(B)),
          ea = tb_arg(&t, 2, F32(5, H));
    Value h2 = tb_op2(&t, OP_ADD, h, tb_op2(&t, OP_GATHER, ea, it));
    ir_add_result(t.m, t.g, h2, "h");
    ir_add_result(t.m, t.g, h2, "y");
    Graph *body = t.g;
    t.g = main;
    Value outs[2], in[3] = {tb_const(&t, 0.0, F32(B, H)), ids, e};
    Attrs a = {.graph = body->id, .n_carry = 1, .n_over = 1};
    tb_add(&t, OP_SCAN, &a, 3, in, outs);
    tb_output(&t, outs[1], "ys");
    return t;
}

static void test_scan_over_ids(void **state)
{
    TB t = lookup_model();
    CgJit *j = tb_jit(&t);
    float e[5 * H], ys[4 * B * H];
    double wys[4 * B * H], h[B * H] = {0};
    int32_t ids[4 * B] = {0, 4, 1, 1, 3, 2, 4, 0};
    fill(e, 5 * H, -1, 1, 33);
    for (int s = 0; s < 4; s++)
        for (int b = 0; b < B; b++)
            for (int k = 0; k < H; k++) {
                h[b * H + k] += e[ids[s * B + b] * H + k];
                wys[(s * B + b) * H + k] = h[b * H + k];
            }
    float *params[] = {e};
    void *args[] = {ids, ys};
    assert_int_equal(tb_run(&t, j, params, args), 0);
    expect_close(ys, wys, 4 * B * H, 1e-6, "scan over ids");
    ids[5] = 5;
    assert_int_equal(tb_run(&t, j, params, args), NNC_ERR_RANGE);
    assert_non_null(strstr(nnc_last_error(), "id 5 at position [1]"));
    tb_free(&t, j);
}

static long ir_lines(int64_t steps)
{
    TB t = rnn_model(steps, false);
    char path[512];
    snprintf(path, sizeof path, "%s/scan_T%lld.ll", NNC_TEST_TMP,
             (long long)steps);
    CgOptions o = {.opt_level = 2};
    assert_int_equal(cg_emit_file(t.m, &o, CG_EMIT_LLVM, path), 0);
    arena_free(t.arena);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long lines = 0;
    for (int ch; (ch = fgetc(f)) != EOF;)
        lines += ch == '\n';
    fclose(f);
    return lines;
}

static void test_scan_code_size(void **state)
{
    long small = ir_lines(3), large = ir_lines(64);
    assert_true(small > 20);
    /* The body is emitted once, whatever T: no growth with the steps.  A
     * few lines may differ, as the optimiser's alias facts depend on the
     * stacks' sizes (SLP vectorisation of the step's output writes). */
    assert_true(labs(large - small) * 50 < small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_forward),
        cmocka_unit_test(test_scan_reverse),
        cmocka_unit_test(test_scan_opt_levels),
        cmocka_unit_test(test_scan_over_ids),
        cmocka_unit_test(test_scan_code_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
