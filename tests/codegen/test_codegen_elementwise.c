/* Codegen tests: elementwise ops (every unary op, binary arithmetic and
 * comparisons with PyTorch broadcasting, where, const, broadcast_to,
 * dropout) JIT-compiled and compared with values computed here in C. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cg_test.h"

static double ref_unary(Op op, double x, double p)
{
    switch (op) {
    case OP_NEG: return -x;
    case OP_EXP: return exp(x);
    case OP_LOG: return log(x);
    case OP_SQRT: return sqrt(x);
    case OP_RSQRT: return 1 / sqrt(x);
    case OP_ABS: return fabs(x);
    case OP_RELU: return x > 0 ? x : 0;
    case OP_SIGMOID: return 1 / (1 + exp(-x));
    case OP_TANH: return tanh(x);
    case OP_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case OP_GELU_TANH:
        return 0.5 * x *
               (1 + tanh(sqrt(2 / 3.14159265358979323846) *
                         (x + 0.044715 * x * x * x)));
    case OP_SILU: return x / (1 + exp(-x));
    case OP_SOFTPLUS: return x > 20 ? x : log1p(exp(x));
    case OP_POW: return pow(x, p);
    default: return NAN;
    }
}

/* Each unary op on f32[3, 5], then on a scalar. */
static void test_unary_ops(void **state)
{
    for (int op = OP_NEG; op <= OP_POW; op++) {
        bool positive =
            op == OP_LOG || op == OP_SQRT || op == OP_RSQRT || op == OP_POW;
        double p = 1.5;
        TB t = tb_new("unary");
        Value x = tb_input(&t, "x", F32(3, 5));
        Value y = op == OP_POW ? tb_opa(&t, OP_POW, (Attrs){.value = p}, 1, x)
                               : tb_op1(&t, (Op)op, x);
        tb_output(&t, y, "y");
        CgJit *j = tb_jit(&t);
        float in[15], out[15];
        double want[15];
        fill(in, 15, positive ? 0.05f : -4.0f, 4.0f, (unsigned)op);
        in[0] = positive ? 1.0f : 25.0f; /* softplus's linear branch */
        for (int i = 0; i < 15; i++)
            want[i] = ref_unary((Op)op, in[i], p);
        void *args[] = {in, out};
        assert_int_equal(tb_run(&t, j, NULL, args), 0);
        expect_close(out, want, 15, 2e-6, ir_op_info[op].name);
        tb_free(&t, j);
    }
}

/* The inline exp and tanh over their whole range: overflow to inf,
 * denormal results, saturation, NaN. */
static void test_exp_tanh_range(void **state)
{
    enum { N = 400 };
    TB t = tb_new("range");
    Value x = tb_input(&t, "x", F32(N));
    tb_output(&t, tb_op1(&t, OP_EXP, x), "e");
    tb_output(&t, tb_op1(&t, OP_TANH, x), "th");
    tb_output(&t, tb_op1(&t, OP_SIGMOID, x), "sg");
    CgJit *j = tb_jit(&t);
    float in[N], e[N], th[N], sg[N];
    double we[N], wth[N], wsg[N];
    for (int i = 0; i < N; i++)
        in[i] = -110.0f + 200.0f * (float)i / N + 0.013f * (float)(i % 7);
    in[0] = NAN, in[1] = INFINITY, in[2] = -INFINITY, in[3] = 88.7f,
    in[4] = 1e-6f;
    in[5] = -0.3f, in[6] = 0.61f, in[7] = -0.64f, in[8] = 3.0f, in[9] = -87.5f;
    for (int i = 0; i < N; i++) {
        we[i] = (float)exp(in[i]); /* inf where float overflows */
        wth[i] = tanh(in[i]);
        wsg[i] = 1 / (1 + exp(-(double)in[i]));
    }
    void *args[] = {in, e, th, sg};
    assert_int_equal(tb_run(&t, j, NULL, args), 0);
    for (int i = 0; i < N; i++) {
        double tol = we[i] < 1.2e-38 ? 1e-44 : 3e-7 * we[i];
        if (!(fabs(e[i] - we[i]) <= tol || e[i] == we[i] ||
              (isnan(e[i]) && isnan(we[i])))) {
            fprintf(stderr, "exp(%.9g) = %.9g, want %.9g\n", in[i], e[i],
                    we[i]);
            fail();
        }
    }
    expect_close(th, wth, N, 3e-7, "tanh");
    expect_close(sg, wsg, N, 3e-7, "sigmoid");
    tb_free(&t, j);
}

static double ref_binary(Op op, double a, double b)
{
    switch (op) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    case OP_DIV: return a / b;
    case OP_MAXIMUM: return a > b ? a : b;
    case OP_MINIMUM: return a < b ? a : b;
    case OP_LT: return a < b;
    case OP_LE: return a <= b;
    case OP_GT: return a > b;
    case OP_GE: return a >= b;
    case OP_EQ: return a == b;
    case OP_NE: return a != b;
    default: return NAN;
    }
}

/* a f32[2, 1, 4] op b f32[3, 1] -> [2, 3, 4]: both operands broadcast. */
static void test_binary_broadcast(void **state)
{
    for (int op = OP_ADD; op <= OP_NE; op++) {
        TB t = tb_new("bin");
        Value a = tb_input(&t, "a", F32(2, 1, 4));
        Value b = tb_input(&t, "b", F32(3, 1));
        tb_output(&t, tb_op2(&t, (Op)op, a, b), "y");
        CgJit *j = tb_jit(&t);
        float av[8], bv[3], out[24];
        double want[24];
        fill(av, 8, -2, 2, 1);
        fill(bv, 3, 0.5f, 2, 2);
        av[5] = bv[1]; /* a tie for the comparisons */
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 3; k++)
                for (int l = 0; l < 4; l++)
                    want[(i * 3 + k) * 4 + l] =
                        ref_binary((Op)op, av[i * 4 + l], bv[k]);
        void *args[] = {av, bv, out};
        assert_int_equal(tb_run(&t, j, NULL, args), 0);
        expect_close(out, want, 24, 1e-6, ir_op_info[op].name);
        tb_free(&t, j);
    }
}

/* Same shapes (one flat loop), a row vector over a matrix, and a const
 * scalar used as an immediate. */
static void test_binary_patterns(void **state)
{
    TB t = tb_new("pat");
    Value a = tb_input(&t, "a", F32(5, 7));
    Value b = tb_input(&t, "b", F32(5, 7));
    Value r = tb_input(&t, "r", F32(7));
    Value s =
        tb_op2(&t, OP_MUL, tb_op2(&t, OP_ADD, a, b), tb_const(&t, 0.5, F32S));
    Value y = tb_op2(&t, OP_SUB, s, r);
    Value z =
        tb_op2(&t, OP_DIV, tb_const(&t, 3.0, F32S), tb_op1(&t, OP_EXP, y));
    tb_output(&t, y, "y");
    tb_output(&t, z, "z");
    CgJit *j = tb_jit(&t);
    float av[35], bv[35], rv[7], yo[35], zo[35];
    double wy[35], wz[35];
    fill(av, 35, -1, 1, 3);
    fill(bv, 35, -1, 1, 4);
    fill(rv, 7, -1, 1, 5);
    for (int i = 0; i < 35; i++) {
        wy[i] = (av[i] + bv[i]) * 0.5f - rv[i % 7];
        wz[i] = 3.0 / exp(wy[i]);
    }
    void *args[] = {av, bv, rv, yo, zo};
    assert_int_equal(tb_run(&t, j, NULL, args), 0);
    expect_close(yo, wy, 35, 1e-6, "y");
    expect_close(zo, wz, 35, 1e-5, "z");
    tb_free(&t, j);
}

/* Comparisons of i32 tensors give f32 1/0; where takes an i32 or an f32
 * condition and broadcasts all three operands. */
static void test_compare_i32_and_where(void **state)
{
    TB t = tb_new("wh");
    Value ia = tb_input(&t, "ia", I32(2, 3));
    Value ib = tb_input(&t, "ib", I32(3));
    Value fc = tb_input(&t, "fc", F32(2, 1));
    Value a = tb_input(&t, "a", F32(2, 3));
    Value lt = tb_op2(&t, OP_LT, ia, ib);
    Value w1 =
        tb_opa(&t, OP_WHERE, (Attrs){0}, 3, ia, a, tb_const(&t, -1, F32S));
    Value w2 =
        tb_opa(&t, OP_WHERE, (Attrs){0}, 3, fc, a, tb_op1(&t, OP_NEG, a));
    tb_output(&t, lt, "lt");
    tb_output(&t, w1, "w1");
    tb_output(&t, w2, "w2");
    CgJit *j = tb_jit(&t);
    int32_t iav[6] = {0, 5, -2, 7, 0, 1}, ibv[3] = {1, 5, -3};
    float fcv[2] = {0.0f, 2.5f}, av[6] = {1, 2, 3, 4, 5, 6}, o1[6], o2[6],
          o3[6];
    double w_lt[6], w_1[6], w_2[6];
    for (int i = 0; i < 6; i++) {
        w_lt[i] = iav[i] < ibv[i % 3];
        w_1[i] = iav[i] ? av[i] : -1;
        w_2[i] = fcv[i / 3] != 0 ? av[i] : -av[i];
    }
    void *args[] = {iav, ibv, fcv, av, o1, o2, o3};
    assert_int_equal(tb_run(&t, j, NULL, args), 0);
    expect_close(o1, w_lt, 6, 0, "lt");
    expect_close(o2, w_1, 6, 0, "where i32");
    expect_close(o3, w_2, 6, 0, "where f32");
    tb_free(&t, j);
}

/* broadcast_to adds and stretches axes; dropout is the identity in
 * forward; a const tensor is filled. */
static void test_broadcast_to_dropout_const(void **state)
{
    TB t = tb_new("bt");
    Value x = tb_input(&t, "x", F32(3, 1));
    Value b = tb_opa(&t, OP_BROADCAST_TO, (Attrs){.type = F32(2, 3, 4)}, 1, x);
    Value d = tb_opa(&t, OP_DROPOUT, (Attrs){.value = 0.5}, 1, b);
    Value c = tb_op2(&t, OP_ADD, d, tb_const(&t, 0.25, F32(4)));
    tb_output(&t, c, "y");
    tb_output(&t, tb_const(&t, 7.0, F32(2, 2)), "k");
    CgJit *j = tb_jit(&t);
    float xv[3] = {1, -2, 3}, out[24], k[4];
    double want[24], wk[4] = {7, 7, 7, 7};
    for (int i = 0; i < 24; i++)
        want[i] = xv[(i / 4) % 3] + 0.25;
    void *args[] = {xv, out, k};
    assert_int_equal(tb_run(&t, j, NULL, args), 0);
    expect_close(out, want, 24, 0, "broadcast_to");
    expect_close(k, wk, 4, 0, "const");
    tb_free(&t, j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary_ops),
        cmocka_unit_test(test_exp_tanh_range),
        cmocka_unit_test(test_binary_broadcast),
        cmocka_unit_test(test_binary_patterns),
        cmocka_unit_test(test_compare_i32_and_where),
        cmocka_unit_test(test_broadcast_to_dropout_const),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
