/* test_rt_gemm.c — nnc_sgemm / nnc_sgemm_batched and the kernels behind
 * them (gemm.c, gemm_avx512.c, gemm_small.c).
 *
 * Every product is compared element by element with a double-precision
 * reference: |c - ref| <= 1e-5 · sqrt(k) · (|alpha| Σ_p |a_ip b_pj| +
 * |beta c_ij|) + 1e-30.  Covered: the four transpose combinations; m, n
 * and k over {1, 3, 17, 31, 33, 65, 130, 257} (full cross for m, n up to
 * 65, then the big sizes against a few others); alpha/beta variants
 * including beta = 0 over a C full of NaN (C must not be read) and
 * alpha = 0; k = 0; leading dimensions larger than the widths, with the
 * padding checked untouched; batched products with stride-0 operands.
 * Split products must give the same bits with 1, 2 and 3 threads.  When
 * the CPU has AVX-512, the AVX-512 kernel is also called directly, and
 * the small kernel always is.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "nnc.h"

typedef void (*GemmFn)(int, int, int64_t, int64_t, int64_t, float,
                       const float *, int64_t, const float *, int64_t, float,
                       float *, int64_t);

/* Deterministic values in [-1, 1). */
static void fill(float *x, size_t n, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / (float)(1u << 23) - 1.0f;
    }
}

typedef struct Case {
    int ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    float alpha, beta;
} Case;

static int64_t a_rows(const Case *t) { return t->ta ? t->k : t->m; }
static int64_t b_rows(const Case *t) { return t->tb ? t->n : t->k; }

#define PAD_VALUE 1234.5f

/* Checks c (computed from c0) against the reference; the padding columns
 * of c (past n in each row) must still hold PAD_VALUE. */
static void check(const Case *t, const float *a, const float *b,
                  const float *c0, const float *c)
{
    for (int64_t i = 0; i < t->m; i++) {
        for (int64_t j = 0; j < t->n; j++) {
            double sum = 0.0, mag = 0.0;
            for (int64_t p = 0; p < t->k; p++) {
                double x = t->ta ? a[p * t->lda + i] : a[i * t->lda + p];
                double y = t->tb ? b[j * t->ldb + p] : b[p * t->ldb + j];
                sum += x * y;
                mag += fabs(x * y);
            }
            double ref = (double)t->alpha * sum, scale = fabs(t->alpha) * mag;
            if (t->beta != 0.0f) {
                ref += (double)t->beta * c0[i * t->ldc + j];
                scale += fabs((double)t->beta * c0[i * t->ldc + j]);
            }
            double tol = 1e-5 * sqrt((double)t->k + 1.0) * scale + 1e-30;
            double got = c[i * t->ldc + j];
            if (!(fabs(got - ref) <= tol))
                fail_msg("ta=%d tb=%d m=%lld n=%lld k=%lld alpha=%g beta=%g: "
                         "C[%lld,%lld] = %.9g, want %.9g (tol %.3g)",
                         t->ta, t->tb, (long long)t->m, (long long)t->n,
                         (long long)t->k, t->alpha, t->beta, (long long)i,
                         (long long)j, got, ref, tol);
        }
        for (int64_t j = t->n; j < t->ldc; j++)
            if (c[i * t->ldc + j] != PAD_VALUE)
                fail_msg("ta=%d tb=%d m=%lld n=%lld k=%lld: padding "
                         "C[%lld,%lld] overwritten",
                         t->ta, t->tb, (long long)t->m, (long long)t->n,
                         (long long)t->k, (long long)i, (long long)j);
    }
}

/* Runs one case through `fn` (NULL: nnc_sgemm) and checks it. */
static void run_case(const Case *t, GemmFn fn, uint32_t seed)
{
    size_t na = (size_t)(a_rows(t) * t->lda), nb = (size_t)(b_rows(t) * t->ldb);
    size_t nc = (size_t)(t->m * t->ldc);
    float *a = malloc((na + 1) * sizeof *a), *b = malloc((nb + 1) * sizeof *b);
    float *c0 = malloc((nc + 1) * sizeof *c0),
          *c = malloc((nc + 1) * sizeof *c);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c0);
    assert_non_null(c);
    fill(a, na, seed);
    fill(b, nb, seed + 1);
    fill(c0, nc, seed + 2);
    for (int64_t i = 0; i < t->m; i++) {
        for (int64_t j = t->n; j < t->ldc; j++)
            c0[i * t->ldc + j] = PAD_VALUE;
        if (t->beta == 0.0f) /* must not be read */
            for (int64_t j = 0; j < t->n; j++)
                c0[i * t->ldc + j] = NAN;
    }
    memcpy(c, c0, nc * sizeof *c);
    if (fn)
        fn(t->ta, t->tb, t->m, t->n, t->k, t->alpha, a, t->lda, b, t->ldb,
           t->beta, c, t->ldc);
    else
        assert_int_equal(nnc_sgemm(t->ta, t->tb, t->m, t->n, t->k, t->alpha, a,
                                   t->lda, b, t->ldb, t->beta, c, t->ldc),
                         NNC_OK);
    check(t, a, b, c0, c);
    free(a);
    free(b);
    free(c0);
    free(c);
}

static Case make_case(int ta, int tb, int64_t m, int64_t n, int64_t k,
                      int64_t pad, float alpha, float beta)
{
    Case t = {ta, tb, m, n, k, 0, 0, 0, alpha, beta};
    t.lda = (ta ? m : k) + pad;
    t.ldb = (tb ? k : n) + pad;
    t.ldc = n + pad;
    if (t.lda < 1)
        t.lda = 1;
    if (t.ldb < 1)
        t.ldb = 1;
    return t;
}

static const int64_t sizes[] = {1, 3, 17, 31, 33, 65, 130, 257};
#define NSIZES (int)(sizeof sizes / sizeof sizes[0])
#define NSMALL 6 /* sizes[0 .. NSMALL) are crossed with everything */

/* All transposes, m and n up to 65 against every k, then 130 and 257 in
 * each of m, n, k against the small ones. */
static void sweep(GemmFn fn, float alpha, float beta, int64_t pad)
{
    uint32_t seed = 1;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            for (int im = 0; im < NSMALL; im++)
                for (int in = 0; in < NSMALL; in++)
                    for (int ik = 0; ik < NSIZES; ik++) {
                        Case t = make_case(ta, tb, sizes[im], sizes[in],
                                           sizes[ik], pad, alpha, beta);
                        run_case(&t, fn, seed++);
                    }
            for (int big = NSMALL; big < NSIZES; big++)
                for (int s = 0; s < NSIZES; s += 2) {
                    int64_t x = sizes[big], y = sizes[s];
                    Case t1 = make_case(ta, tb, x, y, 33, pad, alpha, beta);
                    Case t2 = make_case(ta, tb, y, x, 65, pad, alpha, beta);
                    Case t3 = make_case(ta, tb, 17, y, x, pad, alpha, beta);
                    Case t4 = make_case(ta, tb, x, x, y, pad, alpha, beta);
                    run_case(&t1, fn, seed++);
                    run_case(&t2, fn, seed++);
                    run_case(&t3, fn, seed++);
                    run_case(&t4, fn, seed++);
                }
        }
}

static void test_sgemm_sizes(void **state)
{
    (void)state;
    sweep(NULL, 1.0f, 0.0f, 0);
}

static void test_sgemm_alpha_beta(void **state)
{
    (void)state;
    sweep(NULL, 0.5f, 2.0f, 0);
    sweep(NULL, -1.5f, 1.0f, 0);
    sweep(NULL, 3.0f, 0.0f, 0);
}

static void test_sgemm_leading_dims(void **state)
{
    (void)state;
    sweep(NULL, 1.0f, 0.0f, 5);
    sweep(NULL, 0.75f, -0.5f, 37);
}

/* Shapes the models use, split over the pool (>= 64^3). */
static void test_sgemm_model_shapes(void **state)
{
    (void)state;
    static const int64_t shapes[][5] = {
        /* m, n, k, ta, tb */
        {128, 512, 784, 0, 0}, {128, 10, 512, 0, 0},  {784, 512, 128, 1, 0},
        {128, 784, 512, 0, 1}, {32, 1024, 256, 0, 0}, {32, 256, 1024, 0, 1},
        {256, 1024, 32, 1, 0}, {512, 384, 128, 0, 0}, {512, 256, 128, 0, 1},
        {64, 64, 32, 0, 0},    {32, 256, 256, 0, 0},  {100, 100, 100, 0, 0},
    };
    for (int threads = 1; threads <= 2; threads++) {
        nnc_set_num_threads(threads);
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            const int64_t *s = shapes[i];
            Case t = make_case((int)s[3], (int)s[4], s[0], s[1], s[2], 0, 1.0f,
                               i % 2 ? 1.0f : 0.0f);
            run_case(&t, NULL, 100 + (uint32_t)i);
        }
    }
    nnc_set_num_threads(0);
}

static void test_sgemm_k_zero_alpha_zero(void **state)
{
    (void)state;
    float a[4] = {NAN, NAN, NAN, NAN}, b[4] = {INFINITY, 1, 2, 3};
    float c[6] = {1, 2, 3, 4, 5, 6};
    /* k = 0: C = beta C */
    assert_int_equal(nnc_sgemm(0, 0, 2, 3, 0, 1.0f, a, 1, b, 3, 2.0f, c, 3),
                     NNC_OK);
    for (int i = 0; i < 6; i++)
        assert_true(c[i] == 2.0f * (float)(i + 1));
    /* k = 0, beta = 0: zeros, C not read */
    for (int i = 0; i < 6; i++)
        c[i] = NAN;
    assert_int_equal(nnc_sgemm(0, 0, 2, 3, 0, 1.0f, a, 1, b, 3, 0.0f, c, 3),
                     NNC_OK);
    for (int i = 0; i < 6; i++)
        assert_true(c[i] == 0.0f);
    /* alpha = 0: C = beta C (finite operands: OpenBLAS, used on CPUs
     * without AVX-512, multiplies them by 0 rather than skipping them) */
    float fa[2] = {3, 4}, fb[3] = {5, 6, 7};
    for (int i = 0; i < 6; i++)
        c[i] = (float)i;
    assert_int_equal(nnc_sgemm(0, 0, 2, 3, 1, 0.0f, fa, 1, fb, 3, -1.0f, c, 3),
                     NNC_OK);
    for (int i = 0; i < 6; i++)
        assert_true(c[i] == -(float)i);
    /* m = 0 and n = 0 touch nothing */
    assert_int_equal(nnc_sgemm(0, 0, 0, 3, 2, 1.0f, a, 2, b, 3, 0.0f, c, 3),
                     NNC_OK);
    assert_int_equal(nnc_sgemm(0, 0, 2, 0, 2, 1.0f, a, 2, b, 1, 0.0f, c, 1),
                     NNC_OK);
    assert_true(c[5] == -5.0f);
}

/* A product with fixed operands, computed at `threads` threads. */
static void product_at(int threads, const Case *t, const float *a,
                       const float *b, const float *c0, float *c)
{
    nnc_set_num_threads(threads);
    memcpy(c, c0, (size_t)(t->m * t->ldc) * sizeof *c);
    assert_int_equal(nnc_sgemm(t->ta, t->tb, t->m, t->n, t->k, t->alpha, a,
                               t->lda, b, t->ldb, t->beta, c, t->ldc),
                     NNC_OK);
}

static void test_sgemm_threads_bit_identical(void **state)
{
    (void)state;
    static const int64_t shapes[][5] = {
        {128, 512, 784, 0, 0}, {784, 512, 128, 1, 0}, {128, 784, 512, 0, 1},
        {32, 1024, 256, 0, 0}, {32, 256, 1024, 0, 1}, {256, 1024, 32, 1, 0},
        {130, 257, 65, 1, 1},  {257, 130, 300, 0, 1}, {31, 33, 600, 1, 1},
        {1, 1000, 300, 0, 0},  {1000, 3, 300, 1, 0},  {100, 100, 100, 0, 0},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int64_t *s = shapes[i];
        Case t = make_case((int)s[3], (int)s[4], s[0], s[1], s[2], 3, 1.25f,
                           i % 2 ? 0.5f : 0.0f);
        size_t na = (size_t)(a_rows(&t) * t.lda);
        size_t nb = (size_t)(b_rows(&t) * t.ldb), nc = (size_t)(t.m * t.ldc);
        float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b);
        float *c0 = malloc(nc * sizeof *c0), *c1 = malloc(nc * sizeof *c1);
        float *cn = malloc(nc * sizeof *cn);
        assert_true(a && b && c0 && c1 && cn);
        fill(a, na, 7 + (uint32_t)i);
        fill(b, nb, 70 + (uint32_t)i);
        fill(c0, nc, 700 + (uint32_t)i);
        for (int64_t r = 0; r < t.m; r++)
            for (int64_t j = t.n; j < t.ldc; j++)
                c0[r * t.ldc + j] = PAD_VALUE;
        product_at(1, &t, a, b, c0, c1);
        check(&t, a, b, c0, c1);
        for (int threads = 2; threads <= 3; threads++) {
            product_at(threads, &t, a, b, c0, cn);
            if (memcmp(c1, cn, nc * sizeof *cn) != 0)
                fail_msg("m=%lld n=%lld k=%lld ta=%d tb=%d: %d threads give "
                         "other bits than 1",
                         (long long)t.m, (long long)t.n, (long long)t.k, t.ta,
                         t.tb, threads);
        }
        free(a);
        free(b);
        free(c0);
        free(c1);
        free(cn);
    }
    nnc_set_num_threads(0);
}

/* Batch of 5 products, A or B shared through a stride of 0. */
static void batched_case(int ta, int tb, int64_t m, int64_t n, int64_t k,
                         int share_a, int share_b, float beta, int threads)
{
    const int64_t batch = 5;
    Case t = make_case(ta, tb, m, n, k, 2, 1.0f, beta);
    int64_t sa = share_a ? 0 : a_rows(&t) * t.lda;
    int64_t sb = share_b ? 0 : b_rows(&t) * t.ldb, sc = t.m * t.ldc;
    size_t na = (size_t)(a_rows(&t) * t.lda * (share_a ? 1 : batch));
    size_t nb = (size_t)(b_rows(&t) * t.ldb * (share_b ? 1 : batch));
    size_t nc = (size_t)(sc * batch);
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b);
    float *c0 = malloc(nc * sizeof *c0), *c = malloc(nc * sizeof *c);
    assert_true(a && b && c0 && c);
    fill(a, na, 11);
    fill(b, nb, 12);
    fill(c0, nc, 13);
    for (int64_t i = 0; i < t.m * batch; i++)
        for (int64_t j = t.n; j < t.ldc; j++)
            c0[i * t.ldc + j] = PAD_VALUE;
    memcpy(c, c0, nc * sizeof *c);
    nnc_set_num_threads(threads);
    assert_int_equal(nnc_sgemm_batched(ta, tb, m, n, k, t.alpha, a, t.lda, sa,
                                       b, t.ldb, sb, beta, c, t.ldc, sc, batch),
                     NNC_OK);
    nnc_set_num_threads(0);
    for (int64_t i = 0; i < batch; i++)
        check(&t, a + i * sa, b + i * sb, c0 + i * sc, c + i * sc);
    free(a);
    free(b);
    free(c0);
    free(c);
}

static void test_sgemm_batched_broadcast(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 2; threads++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                batched_case(ta, tb, 64, 64, 32, 0, 0, 0.0f, threads);
                batched_case(ta, tb, 17, 33, 65, 1, 0, 1.0f, threads);
                batched_case(ta, tb, 130, 31, 17, 0, 1, 0.0f, threads);
                batched_case(ta, tb, 3, 257, 100, 0, 1, 0.5f, threads);
            }
}

/* The kernels themselves, whichever gemm.c picks on this machine. */
static void test_kernels_direct(void **state)
{
    (void)state;
    sweep(nncrt_sgemm_small, 1.0f, 0.0f, 3);
    sweep(nncrt_sgemm_small, 0.5f, 1.0f, 0);
    if (!nncrt_have_avx512()) {
        print_message("no AVX-512 on this CPU: its kernel not run directly\n");
        return;
    }
    sweep(nncrt_sgemm_avx512, 1.0f, 0.0f, 3);
    sweep(nncrt_sgemm_avx512, -0.5f, 1.0f, 0);
    /* k longer than one k block, and n wider than one column block */
    Case t1 = make_case(0, 0, 9, 1100, 700, 1, 1.0f, 0.5f);
    Case t2 = make_case(1, 1, 20, 600, 1030, 0, 2.0f, 0.0f);
    run_case(&t1, nncrt_sgemm_avx512, 5);
    run_case(&t2, nncrt_sgemm_avx512, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_sizes),
        cmocka_unit_test(test_sgemm_alpha_beta),
        cmocka_unit_test(test_sgemm_leading_dims),
        cmocka_unit_test(test_sgemm_model_shapes),
        cmocka_unit_test(test_sgemm_k_zero_alpha_zero),
        cmocka_unit_test(test_sgemm_threads_bit_identical),
        cmocka_unit_test(test_sgemm_batched_broadcast),
        cmocka_unit_test(test_kernels_direct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
