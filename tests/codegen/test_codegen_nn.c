/* Codegen tests: gather (and a bad id: an error naming it, nothing read
 * out of bounds), causal_mask, attention (causal or not, broadcast batch),
 * cross_entropy (and a bad target), mse and bce_with_logits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cg_test.h"

static TB gather_model(void)
{
    TB t = tb_new("emb");
    Value e = tb_param(&t, "E", F32(5, 3), INIT_NORMAL);
    Value ids = tb_input(&t, "ids", I32(2, 2));
    tb_output(&t, tb_op2(&t, OP_GATHER, e, ids), "y");
    return t;
}

static void test_gather(void **state)
{
    TB t = gather_model();
    CgJit *j = tb_jit(&t);
    float ev[15], out[12];
    double want[12];
    int32_t ids[4] = {4, 0, 2, 4};
    fill(ev, 15, -1, 1, 20);
    for (int i = 0; i < 4; i++)
        for (int d = 0; d < 3; d++)
            want[i * 3 + d] = ev[ids[i] * 3 + d];
    float *params[] = {ev};
    void *args[] = {ids, out};
    assert_int_equal(tb_run(&t, j, params, args), 0);
    expect_close(out, want, 12, 0, "gather");
    tb_free(&t, j);
}

/* Ids far outside the table would fault if read; forward must return
 * NNC_ERR_RANGE naming the id and its position, and leave out alone. */
static void test_gather_bad_id(void **state)
{
    TB t = gather_model();
    CgJit *j = tb_jit(&t);
    float ev[15], out[12];
    fill(ev, 15, -1, 1, 21);
    float *params[] = {ev};
    int32_t ids[4] = {1, 2, 1000000000, -7};
    for (int i = 0; i < 12; i++)
        out[i] = 42.0f;
    void *args[] = {ids, out};
    assert_int_equal(tb_run(&t, j, params, args), NNC_ERR_RANGE);
    assert_non_null(strstr(nnc_last_error(), "1000000000"));
    assert_non_null(strstr(nnc_last_error(), "[1, 0]"));
    assert_non_null(strstr(nnc_last_error(), "0..4"));
    for (int i = 0; i < 12; i++)
        assert_true(out[i] == 42.0f);
    ids[2] = 3;
    assert_int_equal(tb_run(&t, j, params, args), NNC_ERR_RANGE);
    assert_non_null(strstr(nnc_last_error(), "-7 at position [1, 1]"));
    tb_free(&t, j);
}

static void ref_attention(const float *q, const float *k, const float *v,
                          double *o, int tq, int tk, int d, int dv,
                          double scale, bool causal)
{
    for (int i = 0; i < tq; i++) {
        double s[16], mx = -INFINITY, sum = 0;
        for (int j = 0; j < tk; j++) {
            double acc = 0;
            for (int l = 0; l < d; l++)
                acc += (double)q[i * d + l] * k[j * d + l];
            s[j] = causal && j > i ? -INFINITY : acc * scale;
            mx = fmax(mx, s[j]);
        }
        for (int j = 0; j < tk; j++)
            sum += s[j] = exp(s[j] - mx);
        for (int c = 0; c < dv; c++) {
            double acc = 0;
            for (int j = 0; j < tk; j++)
                acc += s[j] / sum * v[j * dv + c];
            o[i * dv + c] = acc;
        }
    }
}

/* q [2, 4, 3], k and v [4, 3] / [4, 2] broadcast over the batch; causal
 * with scale 1/sqrt(d), and non-causal with scale 0.7; causal_mask on
 * its own. */
static void test_attention_and_mask(void **state)
{
    enum { B = 2, T = 4, D = 3, DV = 2 };
    TB t = tb_new("att");
    Value q = tb_input(&t, "q", F32(B, T, D));
    Value k = tb_input(&t, "k", F32(T, D));
    Value v = tb_input(&t, "v", F32(T, DV));
    tb_output(&t,
              tb_opa(&t, OP_ATTENTION,
                     (Attrs){.flag = true, .value = 1 / sqrt(D)}, 3, q, k, v),
              "causal");
    tb_output(&t, tb_opa(&t, OP_ATTENTION, (Attrs){.value = 0.7}, 3, q, k, v),
              "full");
    tb_output(&t, tb_op1(&t, OP_CAUSAL_MASK, q), "masked");
    CgJit *j = tb_jit(&t);
    float qv[B * T * D], kv[T * D], vv[T * DV], oc[B * T * DV], of[B * T * DV],
        om[B * T * D];
    double wc[B * T * DV], wf[B * T * DV], wm[B * T * D];
    fill(qv, B * T * D, -1, 1, 22);
    fill(kv, T * D, -1, 1, 23);
    fill(vv, T * DV, -1, 1, 24);
    for (int b = 0; b < B; b++) {
        ref_attention(qv + b * T * D, kv, vv, wc + b * T * DV, T, T, D, DV,
                      1 / sqrt(D), true);
        ref_attention(qv + b * T * D, kv, vv, wf + b * T * DV, T, T, D, DV, 0.7,
                      false);
        for (int i = 0; i < T; i++)
            for (int c = 0; c < D; c++)
                wm[(b * T + i) * D + c] =
                    c > i ? -INFINITY : qv[(b * T + i) * D + c];
    }
    void *args[] = {qv, kv, vv, oc, of, om};
    assert_int_equal(tb_run(&t, j, NULL, args), 0);
    expect_close(oc, wc, B * T * DV, 1e-5, "causal attention");
    expect_close(of, wf, B * T * DV, 1e-5, "attention");
    expect_close(om, wm, B * T * D, 0, "causal_mask");
    tb_free(&t, j);
}

static void test_losses(void **state)
{
    enum { N = 3, C = 4 };
    TB t = tb_new("loss");
    Value lg = tb_input(&t, "logits", F32(N, C));
    Value tg = tb_input(&t, "targets", I32(N));
    Value z = tb_input(&t, "z", F32(N, C));
    tb_output(&t, tb_op2(&t, OP_CROSS_ENTROPY, lg, tg), "ce");
    tb_output(&t, tb_op2(&t, OP_MSE, lg, z), "mse");
    tb_output(&t, tb_op2(&t, OP_BCE_WITH_LOGITS, lg, z), "bce");
    CgJit *j = tb_jit(&t);
    float lv[N * C], zv[N * C], ce, mse, bce;
    int32_t tv[N] = {3, 0, 1};
    fill(lv, N * C, -30, 30, 25);
    fill(zv, N * C, 0, 1, 26);
    double wce = 0, wmse = 0, wbce = 0;
    for (int r = 0; r < N; r++) {
        double mx = -INFINITY, sum = 0;
        for (int c = 0; c < C; c++)
            mx = fmax(mx, lv[r * C + c]);
        for (int c = 0; c < C; c++)
            sum += exp(lv[r * C + c] - mx);
        wce += (mx + log(sum) - lv[r * C + tv[r]]) / N;
    }
    for (int i = 0; i < N * C; i++) {
        double x = lv[i], y = zv[i];
        wmse += (x - y) * (x - y) / (N * C);
        wbce += (fmax(x, 0) - x * y + log1p(exp(-fabs(x)))) / (N * C);
    }
    void *args[] = {lv, tv, zv, &ce, &mse, &bce};
    assert_int_equal(tb_run(&t, j, NULL, args), 0);
    expect_close(&ce, &wce, 1, 1e-5, "cross_entropy");
    expect_close(&mse, &wmse, 1, 1e-5, "mse");
    expect_close(&bce, &wbce, 1, 1e-5, "bce_with_logits");
    tv[1] = 4;
    assert_int_equal(tb_run(&t, j, NULL, args), NNC_ERR_RANGE);
    assert_non_null(
        strstr(nnc_last_error(), "target 4 at position [1] is outside 0..3"));
    tb_free(&t, j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_gather_bad_id),
        cmocka_unit_test(test_attention_and_mask),
        cmocka_unit_test(test_losses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
