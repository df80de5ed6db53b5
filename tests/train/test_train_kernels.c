/* Training tests: libnncrt's optimizer kernels (runtime/optim.c) and the
 * generated NAME_update on the thread pool.
 *
 *   nnc_sum_squares  3000001 values: identical bits with 1, 2 and 3
 *                    threads; within 1e-12 of a long double sum
 *   nnc_sgd_step,    100003 values, every option: identical bits with 1
 *   nnc_adam_step    and 3 threads; equal to a plain scalar loop written
 *                    here from torch's formulas to 1e-6
 *   NAME_update      a 300000-element adamw model with clip_grad_norm:
 *                    the same instance updated with 1 and with 3 threads
 *                    stays bit-identical (parameters, state, gradients)
 *                    over three steps */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "train_test.h"

enum { N_SUM = 3000001, N_STEP = 100003 };

static void test_sum_squares(void **state)
{
    float *x = malloc(sizeof(float) * N_SUM);
    fill(x, N_SUM, -3, 3, 17);
    long double ref = 0;
    for (int64_t i = 0; i < N_SUM; i++)
        ref += (long double)x[i] * x[i];
    double got[3];
    for (int t = 1; t <= 3; t++) {
        nnc_set_num_threads(t);
        got[t - 1] = nnc_sum_squares(x, N_SUM);
    }
    nnc_set_num_threads(0);
    fprintf(stderr, "sum of squares %.17g, long double %.17Lg\n", got[0], ref);
    assert_memory_equal(&got[0], &got[1], sizeof(double));
    assert_memory_equal(&got[0], &got[2], sizeof(double));
    assert_true(fabsl(got[0] - ref) <= 1e-12L * ref);
    assert_true(nnc_sum_squares(x, 0) == 0.0);
    assert_true(nnc_sum_squares(x, 3) == (double)x[0] * x[0] +
                                             (double)x[1] * x[1] +
                                             (double)x[2] * x[2]);
    free(x);
}

/* torch.optim.SGD on one tensor, one element at a time. */
static void sgd_ref(float *p, const float *g, float *buf, int64_t n, float lr,
                    float mu, float wd, bool nesterov, int64_t step)
{
    for (int64_t i = 0; i < n; i++) {
        float d = wd != 0 ? g[i] + wd * p[i] : g[i];
        if (mu != 0) {
            buf[i] = step == 1 ? d : buf[i] * mu + d;
            d = nesterov ? d + mu * buf[i] : buf[i];
        }
        p[i] = p[i] - lr * d;
    }
}

/* torch.optim.Adam / AdamW on one tensor. */
static void adam_ref(float *p, const float *g, float *m, float *v, int64_t n,
                     double lr, double b1, double b2, double eps, double wd,
                     bool decoupled, int64_t t)
{
    double bc1 = 1 - pow(b1, (double)t), bc2 = 1 - pow(b2, (double)t);
    for (int64_t i = 0; i < n; i++) {
        double pi = decoupled ? p[i] * (1 - lr * wd) : p[i];
        double gi = decoupled ? g[i] : g[i] + wd * p[i];
        m[i] = (float)(b1 * m[i] + (1 - b1) * gi);
        v[i] = (float)(b2 * v[i] + (1 - b2) * gi * gi);
        p[i] = (float)(pi - lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + eps));
    }
}

typedef struct Bufs {
    float *p[3], *g, *s1[3], *s2[3]; /* [0]: reference; [1], [2]: threads */
} Bufs;

static Bufs bufs_new(void)
{
    Bufs b;
    b.g = malloc(sizeof(float) * N_STEP);
    fill(b.g, N_STEP, -1, 1, 3);
    for (int k = 0; k < 3; k++) {
        b.p[k] = malloc(sizeof(float) * N_STEP);
        b.s1[k] = calloc(N_STEP, sizeof(float));
        b.s2[k] = calloc(N_STEP, sizeof(float));
        fill(b.p[k], N_STEP, -2, 2, 4);
    }
    return b;
}

static void bufs_free(Bufs *b)
{
    free(b->g);
    for (int k = 0; k < 3; k++) {
        free(b->p[k]);
        free(b->s1[k]);
        free(b->s2[k]);
    }
}

static void expect_threads_agree(const Bufs *b, const char *what)
{
    double e = rel_l2(b->p[1], b->p[0], N_STEP);
    fprintf(stderr, "%-28s reference relative L2 error %.2e\n", what, e);
    assert_true(e <= 1e-6);
    assert_memory_equal(b->p[1], b->p[2], sizeof(float) * N_STEP);
    assert_memory_equal(b->s1[1], b->s1[2], sizeof(float) * N_STEP);
    assert_memory_equal(b->s2[1], b->s2[2], sizeof(float) * N_STEP);
}

static void test_sgd_step(void **state)
{
    const struct {
        float mu, wd;
        bool nesterov;
    } cases[] = {
        {0, 0, false}, {0.9f, 0, false}, {0.9f, 0.01f, true}, {0, 0.1f, false}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Bufs b = bufs_new();
        for (int64_t t = 1; t <= 3; t++) {
            sgd_ref(b.p[0], b.g, b.s1[0], N_STEP, 0.1f, cases[c].mu,
                    cases[c].wd, cases[c].nesterov, t);
            for (int k = 1; k <= 2; k++) {
                nnc_set_num_threads(k == 1 ? 1 : 3);
                nnc_sgd_step(b.p[k], b.g, b.s1[k], N_STEP, 0.1, cases[c].mu,
                             cases[c].wd, cases[c].nesterov, t);
            }
        }
        nnc_set_num_threads(0);
        char what[64];
        snprintf(what, sizeof what, "sgd mu=%g wd=%g%s", cases[c].mu,
                 cases[c].wd, cases[c].nesterov ? " nesterov" : "");
        expect_threads_agree(&b, what);
        bufs_free(&b);
    }
}

static void test_adam_step(void **state)
{
    for (int decoupled = 0; decoupled <= 1; decoupled++) {
        Bufs b = bufs_new();
        for (int64_t t = 1; t <= 4; t++) {
            adam_ref(b.p[0], b.g, b.s1[0], b.s2[0], N_STEP, 0.01, 0.9, 0.99,
                     1e-6, 0.05, decoupled, t);
            for (int k = 1; k <= 2; k++) {
                nnc_set_num_threads(k == 1 ? 1 : 3);
                nnc_adam_step(b.p[k], b.g, b.s1[k], b.s2[k], N_STEP, 0.01, 0.9,
                              0.99, 1e-6, 0.05, decoupled, t);
            }
        }
        nnc_set_num_threads(0);
        expect_threads_agree(&b, decoupled ? "adamw" : "adam (L2)");
        bufs_free(&b);
    }
}

static void test_update_on_pool(void **state)
{
    enum { N = 300000 };
    TB t = wide_model("wide_k", N,
                      spec_adam(OPT_ADAMW, 0.01, 0.9, 0.999, 1e-8, 0.1, 1.0));
    CgJit *j = jit_module(t.m);
    Api a = api_get(j, t.m);
    const nnc_model_info *info = a.info();
    float *x = malloc(sizeof(float) * N);
    fill(x, N, -1, 1, 8);
    void *in[] = {x};
    void *one = a.new_(), *three = a.new_();
    a.init(one, 5);
    for (int s = 0; s < 3; s++) {
        a.backward(one, in);
        memcpy(three, one, (size_t)info->total_bytes);
        nnc_set_num_threads(1);
        a.update(one);
        nnc_set_num_threads(3);
        a.update(three);
        assert_memory_equal(one, three, (size_t)info->workspace_offset);
    }
    nnc_set_num_threads(0);
    /* clipping was active: the gradient buffer now has norm 1 */
    double norm = l2_norm(a.grad(one, "W"), N);
    fprintf(stderr, "clipped gradient norm %.9g (raw %.6g)\n", norm,
            l2_norm(x, N));
    assert_true(fabs(norm - 1.0) < 1e-5);
    free(x);
    a.free_(one);
    a.free_(three);
    tb_free(&t, j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_squares),
        cmocka_unit_test(test_sgd_step),
        cmocka_unit_test(test_adam_step),
        cmocka_unit_test(test_update_on_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
