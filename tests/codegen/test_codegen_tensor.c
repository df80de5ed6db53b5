/* Codegen tests: reductions over several axes (and over leading axes,
 * accumulated row by row), softmax and log_softmax,
 * layernorm and rmsnorm, matmul (broadcast batches, folded transposes),
 * transpose, permute, reshape, concat and slice, JIT-compiled and compared
 * with values computed here in C. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cg_test.h"

/* x f32[2, 3, 4]: sum over {0, 2} keepdims, mean over all, max over 1. */
static void test_reductions(void **state)
{
    TB t = tb_new("red");
    Value x = tb_input(&t, "x", F32(2, 3, 4));
    tb_output(&t,
              tb_opa(&t, OP_SUM, (Attrs){.axes = 5, .keepdims = true}, 1, x),
              "s");
    tb_output(&t, tb_opa(&t, OP_MEAN, (Attrs){.axes = 0}, 1, x), "m");
    tb_output(&t, tb_opa(&t, OP_MAX, (Attrs){.axes = 2}, 1, x), "mx");
    tb_output(&t, tb_opa(&t, OP_SUM, (Attrs){.axes = 6}, 1, x), "s12");
    CgJit *j = tb_jit(&t);
    float xv[24], s[3], m[1], mx[8], s12[2];
    double ws[3] = {0}, wm[1] = {0}, wmx[8], ws12[2] = {0};
    fill(xv, 24, -3, 3, 7);
    for (int i = 0; i < 8; i++)
        wmx[i] = -INFINITY;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 4; c++) {
                double v = xv[(a * 3 + b) * 4 + c];
                ws[b] += v;
                wm[0] += v / 24;
                wmx[a * 4 + c] = fmax(wmx[a * 4 + c], v);
                ws12[a] += v;
            }
    void *args[] = {xv, s, m, mx, s12};
    assert_int_equal(tb_run(&t, j, NULL, args), 0);
    expect_close(s, ws, 3, 1e-6, "sum keepdims");
    expect_close(m, wm, 1, 1e-6, "mean");
    expect_close(mx, wmx, 8, 0, "max");
    expect_close(s12, ws12, 2, 1e-6, "sum axes 1,2");
    tb_free(&t, j);
}

/* x f32[R, 5, C] reduced over its leading axes {0, 1}: sum, mean and max
 * (keepdims), small and large enough for the pool (column chunks). */
static void check_leading(int64_t r, int64_t c)
{
    TB t = tb_new("lead");
    Value x = tb_input(&t, "x", F32(r, 5, c));
    Attrs lead = {.axes = 3, .keepdims = true};
    tb_output(&t, tb_opa(&t, OP_SUM, lead, 1, x), "s");
    tb_output(&t, tb_opa(&t, OP_MEAN, lead, 1, x), "m");
    tb_output(&t, tb_opa(&t, OP_MAX, lead, 1, x), "mx");
    CgJit *j = tb_jit(&t);
    int64_t rows = r * 5;
    float *xv = malloc(sizeof(float) * (size_t)(rows * c));
    float *s = malloc(sizeof(float) * (size_t)c),
          *m = malloc(sizeof(float) * (size_t)c),
          *mx = malloc(sizeof(float) * (size_t)c);
    double *ws = calloc((size_t)c, sizeof(double)),
           *wm = calloc((size_t)c, sizeof(double)),
           *wmx = malloc(sizeof(double) * (size_t)c);
    assert_true(xv && s && m && mx && ws && wm && wmx);
    fill(xv, (int)(rows * c), -3, 3, 11);
    for (int64_t k = 0; k < c; k++) {
        wmx[k] = -INFINITY;
        for (int64_t i = 0; i < rows; i++) {
            double v = xv[i * c + k];
            ws[k] += v;
            wmx[k] = fmax(wmx[k], v);
        }
        wm[k] = ws[k] / (double)rows;
    }
    void *args[] = {xv, s, m, mx};
    assert_int_equal(tb_run(&t, j, NULL, args), 0);
    expect_close(s, ws, (int)c, 1e-5, "leading sum");
    expect_close(m, wm, (int)c, 1e-5, "leading mean");
    expect_close(mx, wmx, (int)c, 0, "leading max");
    tb_free(&t, j);
    free(xv), free(s), free(m), free(mx), free(ws), free(wm), free(wmx);
}

static void test_reduce_leading_axes(void **state)
{
    (void)state;
    check_leading(3, 7);     /* one chunk, on the calling thread */
    check_leading(64, 1000); /* 16 column chunks of 64, on the pool */
}

static void ref_softmax(const float *x, double *y, int n, int stride,
                        bool log_form)
{
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++)
        mx = fmax(mx, x[i * stride]);
    for (int i = 0; i < n; i++)
        sum += exp(x[i * stride] - mx);
    for (int i = 0; i < n; i++)
        y[i * stride] = log_form ? x[i * stride] - mx - log(sum)
                                 : exp(x[i * stride] - mx) / sum;
}

/* softmax along a middle axis (strided rows), log_softmax along the last;
 * large values check the max subtraction. */
static void test_softmax(void **state)
{
    TB t = tb_new("sm");
    Value x = tb_input(&t, "x", F32(2, 3, 4));
    tb_output(&t, tb_opa(&t, OP_SOFTMAX, (Attrs){.axis = 1}, 1, x), "p");
    tb_output(&t, tb_opa(&t, OP_LOG_SOFTMAX, (Attrs){.axis = 2}, 1, x), "lp");
    CgJit *j = tb_jit(&t);
    float xv[24], p[24], lp[24];
    double wp[24], wlp[24];
    fill(xv, 24, -5, 5, 8);
    xv[3] = 1000.0f;
    for (int a = 0; a < 2; a++)
        for (int c = 0; c < 4; c++)
            ref_softmax(xv + a * 12 + c, wp + a * 12 + c, 3, 4, false);
    for (int r = 0; r < 6; r++)
        ref_softmax(xv + r * 4, wlp + r * 4, 4, 1, true);
    void *args[] = {xv, p, lp};
    assert_int_equal(tb_run(&t, j, NULL, args), 0);
    expect_close(p, wp, 24, 1e-6, "softmax");
    expect_close(lp, wlp, 24, 1e-5, "log_softmax");
    tb_free(&t, j);
}

static void test_norms(void **state)
{
    enum { R = 3, C = 8 };
    TB t = tb_new("nrm");
    Value x = tb_input(&t, "x", F32(R, C));
    Value g = tb_param(&t, "g", F32(C), INIT_ONES);
    Value b = tb_param(&t, "b", F32(C), INIT_ZEROS);
    tb_output(&t, tb_opa(&t, OP_LAYERNORM, (Attrs){.value = 1e-5}, 3, x, g, b),
              "ln");
    tb_output(&t, tb_opa(&t, OP_RMSNORM, (Attrs){.value = 1e-6}, 2, x, g),
              "rms");
    CgJit *j = tb_jit(&t);
    float xv[R * C], gv[C], bv[C], ln[R * C], rms[R * C];
    double wln[R * C], wrms[R * C];
    fill(xv, R * C, -2, 3, 9);
    fill(gv, C, 0.5f, 1.5f, 10);
    fill(bv, C, -1, 1, 11);
    for (int r = 0; r < R; r++) {
        double mean = 0, var = 0, ms = 0;
        for (int c = 0; c < C; c++)
            mean += xv[r * C + c] / (double)C;
        for (int c = 0; c < C; c++) {
            double d = xv[r * C + c] - mean;
            var += d * d / C;
            ms += (double)xv[r * C + c] * xv[r * C + c] / C;
        }
        for (int c = 0; c < C; c++) {
            wln[r * C + c] =
                (xv[r * C + c] - mean) / sqrt(var + 1e-5) * gv[c] + bv[c];
            wrms[r * C + c] = xv[r * C + c] / sqrt(ms + 1e-6) * gv[c];
        }
    }
    float *params[] = {gv, bv};
    void *args[] = {xv, ln, rms};
    assert_int_equal(tb_run(&t, j, params, args), 0);
    expect_close(ln, wln, R * C, 1e-5, "layernorm");
    expect_close(rms, wrms, R * C, 1e-5, "rmsnorm");
    tb_free(&t, j);
}

/* C[b..., i, j] = sum_k A[b..., i, k] B[b..., k, j] with explicit strides
 * for reference; a batch stride of 0 broadcasts. */
static void ref_matmul(const float *a, const float *b, double *c, int batch,
                       int m, int n, int k, int sa, int sb)
{
    for (int z = 0; z < batch; z++)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int l = 0; l < k; l++)
                    s += (double)a[z * sa + i * k + l] * b[z * sb + l * n + j];
                c[(z * m + i) * n + j] = s;
            }
}

static void transpose2(const float *x, float *y, int rows, int cols)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            y[j * rows + i] = x[i * cols + j];
}

/* [2, 3, 4] @ [4, 5] (folds into one GEMM); [2, 1, 3, 4] @ [3, 4, 2]
 * (both batches broadcast); x @ transpose(w) and transpose(a) @ b read in
 * place with GEMM flags. */
static void test_matmul(void **state)
{
    TB t = tb_new("mm");
    Value a = tb_input(&t, "a", F32(2, 3, 4));
    Value w = tb_input(&t, "w", F32(4, 5));
    Value p = tb_input(&t, "p", F32(2, 1, 3, 4));
    Value q = tb_input(&t, "q", F32(3, 4, 2));
    Value wt = tb_input(&t, "wt", F32(5, 4));
    tb_output(&t, tb_op2(&t, OP_MATMUL, a, w), "aw");
    tb_output(&t, tb_op2(&t, OP_MATMUL, p, q), "pq");
    tb_output(&t, tb_op2(&t, OP_MATMUL, a, tb_op1(&t, OP_TRANSPOSE, wt)),
              "awt");
    tb_output(&t, tb_op2(&t, OP_MATMUL, tb_op1(&t, OP_TRANSPOSE, a), a), "ata");
    CgJit *j = tb_jit(&t);
    float av[24], wv[20], pv[24], qv[24], wtv[20], aw[30], pq[36], awt[30],
        ata[32];
    double waw[30], wpq[36], wawt[30], wata[32];
    fill(av, 24, -1, 1, 12);
    fill(wv, 20, -1, 1, 13);
    fill(pv, 24, -1, 1, 14);
    fill(qv, 24, -1, 1, 15);
    fill(wtv, 20, -1, 1, 16);
    ref_matmul(av, wv, waw, 2, 3, 5, 4, 12, 0);
    for (int x = 0; x < 2; x++)
        for (int y = 0; y < 3; y++)
            ref_matmul(pv + x * 12, qv + y * 8, wpq + (x * 3 + y) * 6, 1, 3, 2,
                       4, 0, 0);
    float w_of_wt[20], at[24];
    transpose2(wtv, w_of_wt, 5, 4);
    ref_matmul(av, w_of_wt, wawt, 2, 3, 5, 4, 12, 0);
    for (int z = 0; z < 2; z++)
        transpose2(av + z * 12, at + z * 12, 3, 4);
    ref_matmul(at, av, wata, 2, 4, 4, 3, 12, 12);
    void *args[] = {av, wv, pv, qv, wtv, aw, pq, awt, ata};
    assert_int_equal(tb_run(&t, j, NULL, args), 0);
    expect_close(aw, waw, 30, 1e-5, "a @ w");
    expect_close(pq, wpq, 36, 1e-5, "broadcast batches");
    expect_close(awt, wawt, 30, 1e-5, "a @ transpose(wt)");
    expect_close(ata, wata, 32, 1e-5, "transpose(a) @ a");
    tb_free(&t, j);
}

/* transpose (materialised: it is an output), permute, reshape (a view),
 * concat along a middle axis, slice. */
static void test_shape_ops(void **state)
{
    TB t = tb_new("shp");
    Value x = tb_input(&t, "x", F32(2, 3, 4));
    Value y = tb_input(&t, "y", F32(2, 1, 4));
    tb_output(&t, tb_op1(&t, OP_TRANSPOSE, x), "tr");
    Value pm = tb_opa(&t, OP_PERMUTE, (Attrs){.perm = {2, 0, 1}}, 1, x);
    tb_output(&t, pm, "pm");
    Value rs = tb_opa(&t, OP_RESHAPE, (Attrs){.type = F32(6, 4)}, 1, x);
    tb_output(&t, tb_op2(&t, OP_MUL, rs, tb_const(&t, 2, F32S)), "rs");
    tb_output(&t, tb_opa(&t, OP_CONCAT, (Attrs){.axis = 1}, 2, x, y), "cat");
    tb_output(&t,
              tb_opa(&t, OP_SLICE,
                     (Attrs){.start = {1, 0, 1}, .stop = {2, 2, 4}}, 1, x),
              "sl");
    CgJit *j = tb_jit(&t);
    float xv[24], yv[8], tr[24], pmo[24], rso[24], cat[32], sl[6];
    double wtr[24], wpm[24], wrs[24], wcat[32], wsl[6];
    fill(xv, 24, -1, 1, 17);
    fill(yv, 8, -1, 1, 18);
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 4; c++) {
                double v = xv[(a * 3 + b) * 4 + c];
                wtr[(a * 4 + c) * 3 + b] = v;
                wpm[(c * 2 + a) * 3 + b] = v;
                wrs[(a * 3 + b) * 4 + c] = 2 * v;
                wcat[(a * 4 + b) * 4 + c] = v;
            }
    for (int a = 0; a < 2; a++)
        for (int c = 0; c < 4; c++)
            wcat[(a * 4 + 3) * 4 + c] = yv[a * 4 + c];
    for (int b = 0; b < 2; b++)
        for (int c = 1; c < 4; c++)
            wsl[b * 3 + c - 1] = xv[(12 + b * 4) + c];
    void *args[] = {xv, yv, tr, pmo, rso, cat, sl};
    assert_int_equal(tb_run(&t, j, NULL, args), 0);
    expect_close(tr, wtr, 24, 0, "transpose");
    expect_close(pmo, wpm, 24, 0, "permute");
    expect_close(rso, wrs, 24, 0, "reshape");
    expect_close(cat, wcat, 32, 0, "concat");
    expect_close(sl, wsl, 6, 0, "slice");
    tb_free(&t, j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reductions),
        cmocka_unit_test(test_reduce_leading_axes),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_norms),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_shape_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
