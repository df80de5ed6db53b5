/* test_rt_pool.c — libnncrt's thread pool and GEMM wrappers.
 *
 * nnc_parallel_for must cover every index exactly once with the documented
 * static partition, for n in {0, 1, 7, 1000} and 1, 2 and 3 threads; run
 * nested calls and calls from a second thread serially; and honour
 * NNC_NUM_THREADS (set in main before the runtime reads it).  nnc_sgemm
 * and nnc_sgemm_batched are compared with a double-precision reference
 * for every transpose combination, serial and split over the pool, with
 * shapes on both sides of gemm.c's choice of its own small kernel, which
 * must give the same bits at any thread count.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <time.h>

#include "nnc.h"

#define MAX_N     1000
#define MAX_CALLS 64

typedef struct Cover {
    atomic_int hits[MAX_N];
    atomic_int calls;
    atomic_int bad; /* set off the main thread, where cmocka cannot assert */
    int64_t begin[MAX_CALLS], end[MAX_CALLS];
    pthread_t thread[MAX_CALLS];
} Cover;

static void cover_range(void *ctx, int64_t begin, int64_t end)
{
    Cover *c = ctx;
    int k = atomic_fetch_add(&c->calls, 1);
    if (k >= MAX_CALLS) {
        atomic_store(&c->bad, 1);
        return;
    }
    c->begin[k] = begin;
    c->end[k] = end;
    c->thread[k] = pthread_self();
    for (int64_t i = begin; i < end; i++)
        atomic_fetch_add(&c->hits[i], 1);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_env_threads(void **state)
{
    assert_int_equal(nnc_get_num_threads(), 3); /* NNC_NUM_THREADS=3 */
    nnc_set_num_threads(2);
    assert_int_equal(nnc_get_num_threads(), 2);
    nnc_set_num_threads(0); /* back to the default */
    assert_int_equal(nnc_get_num_threads(), 3);
}

/* The chunks are exactly the documented partition of [0, n). */
static void check_partition(const Cover *c, int64_t n, int threads)
{
    int chunks = n < threads ? (int)n : threads;
    int64_t begins[MAX_CALLS];
    assert_int_equal(c->calls, chunks);
    for (int k = 0; k < chunks; k++)
        begins[k] = c->begin[k];
    qsort(begins, (size_t)chunks, sizeof begins[0], cmp_i64);
    int64_t q = chunks ? n / chunks : 0, r = chunks ? n % chunks : 0;
    for (int t = 0; t < chunks; t++)
        assert_int_equal(begins[t], t * q + (t < r ? t : r));
    for (int k = 0; k < chunks; k++) {
        int t = 0;
        while (begins[t] != c->begin[k])
            t++;
        assert_int_equal(c->end[k] - c->begin[k], q + (t < r));
    }
}

static void test_coverage(void **state)
{
    static const int64_t sizes[] = {0, 1, 7, 1000};
    for (int threads = 1; threads <= 3; threads++) {
        nnc_set_num_threads(threads);
        for (int s = 0; s < 4; s++) {
            Cover *c = calloc(1, sizeof *c);
            nnc_parallel_for(sizes[s], cover_range, c);
            assert_int_equal(c->bad, 0);
            for (int64_t i = 0; i < MAX_N; i++)
                assert_int_equal(c->hits[i], i < sizes[s] ? 1 : 0);
            check_partition(c, sizes[s], threads);
            free(c);
        }
    }
    nnc_set_num_threads(0);
}

/* Each chunk records its thread, then waits (at most 2 s) until all 3
 * chunks have started: if they run at once, on 3 threads, none waits
 * long. */
static void cover_and_meet(void *ctx, int64_t begin, int64_t end)
{
    Cover *c = ctx;
    cover_range(c, begin, end);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while (atomic_load(&c->calls) < 3 &&
           (t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) <
               2000000000L);
}

/* With 3 threads and n = 1000 the chunks run on 3 distinct threads, the
 * caller running chunk 0 (chunks are claimed by whoever is free, so
 * without the meeting point a fast caller could run them all). */
static void test_runs_in_parallel(void **state)
{
    nnc_set_num_threads(3);
    for (int rep = 0; rep < 20; rep++) { /* many regions, same workers */
        Cover *c = calloc(1, sizeof *c);
        nnc_parallel_for(1000, cover_and_meet, c);
        int caller = 0, distinct = 1;
        for (int k = 0; k < 3; k++) {
            caller += pthread_equal(c->thread[k], pthread_self()) != 0;
            for (int j = 0; j < k; j++)
                distinct &= !pthread_equal(c->thread[k], c->thread[j]);
            if (c->begin[k] == 0)
                assert_true(pthread_equal(c->thread[k], pthread_self()));
        }
        assert_int_equal(caller, 1);
        assert_true(distinct);
        free(c);
    }
    nnc_set_num_threads(0);
}

/* A nested call runs its whole range on the calling thread. */
static void nested_outer(void *ctx, int64_t begin, int64_t end)
{
    Cover *inner = ctx;
    for (int64_t i = begin; i < end; i++) {
        Cover c;
        memset(&c, 0, sizeof c);
        nnc_parallel_for(10, cover_range, &c);
        if (c.calls != 1 || c.begin[0] != 0 || c.end[0] != 10 ||
            !pthread_equal(c.thread[0], pthread_self()))
            atomic_store(&inner->bad, 1);
        atomic_fetch_add(&inner->hits[i], 1);
    }
}

static void test_nested_serial(void **state)
{
    nnc_set_num_threads(3);
    Cover *outer = calloc(1, sizeof *outer);
    nnc_parallel_for(6, nested_outer, outer);
    for (int i = 0; i < 6; i++)
        assert_int_equal(outer->hits[i], 1);
    assert_int_equal(outer->bad, 0);
    free(outer);
    nnc_set_num_threads(0);
}

/* Two threads calling at once: both complete and cover their ranges. */
static void *second_caller(void *arg)
{
    for (int rep = 0; rep < 200; rep++) {
        Cover *c = calloc(1, sizeof *c);
        nnc_parallel_for(1000, cover_range, c);
        for (int i = 0; i < 1000; i++)
            if (c->hits[i] != 1 || c->bad)
                *(int *)arg = 1;
        free(c);
    }
    return NULL;
}

static void test_concurrent_callers(void **state)
{
    nnc_set_num_threads(3);
    int bad_a = 0, bad_b = 0;
    pthread_t a, b;
    pthread_create(&a, NULL, second_caller, &bad_a);
    pthread_create(&b, NULL, second_caller, &bad_b);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_int_equal(bad_a, 0);
    assert_int_equal(bad_b, 0);
    nnc_set_num_threads(0);
}

/* Errors set on workers reach the caller: the lowest failing chunk's. */
static void fail_at(void *ctx, int64_t begin, int64_t end)
{
    const int64_t *bad = ctx;
    for (int k = 0; k < 2; k++)
        if (bad[k] >= begin && bad[k] < end)
            nnc_rt_set_error(NNC_ERR_RANGE, "id at %lld out of range",
                             (long long)bad[k]);
}

static void test_worker_errors_reach_caller(void **state)
{
    nnc_set_num_threads(3); /* chunks [0, 334) [334, 667) [667, 1000) */
    int64_t one[2] = {500, -1}, two[2] = {900, 400}, none[2] = {-1, -1};
    nnc_clear_error();
    nnc_parallel_for(1000, fail_at, none);
    assert_string_equal(nnc_last_error(), "");
    nnc_parallel_for(1000, fail_at, one);
    assert_string_equal(nnc_last_error(), "id at 500 out of range");
    nnc_parallel_for(1000, fail_at, two);
    assert_string_equal(nnc_last_error(), "id at 400 out of range");
    int64_t first[2] = {10, 900};
    nnc_parallel_for(1000, fail_at, first); /* the caller's chunk 0 wins */
    assert_string_equal(nnc_last_error(), "id at 10 out of range");
    nnc_set_num_threads(0);
}

/* ---- GEMM ---------------------------------------------------------------- */

static float value(int64_t i, int salt)
{
    return (float)((i * 37 + salt * 11) % 19 - 9) / 8.0f;
}

/* op(X)[i][j] of a row-major X with leading dimension ld. */
static double at(const float *x, int64_t ld, int trans, int64_t i, int64_t j)
{
    return trans ? x[j * ld + i] : x[i * ld + j];
}

static void check_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k)
{
    int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
    int64_t asz = (ta ? k : m) * lda, bsz = (tb ? n : k) * ldb, csz = m * ldc;
    float *a = malloc((size_t)asz * 4), *b = malloc((size_t)bsz * 4),
          *c = malloc((size_t)csz * 4);
    for (int64_t i = 0; i < asz; i++)
        a[i] = value(i, 1);
    for (int64_t i = 0; i < bsz; i++)
        b[i] = value(i, 2);
    for (int64_t i = 0; i < csz; i++)
        c[i] = value(i, 3);
    float alpha = 0.5f, beta = -2.0f;
    assert_int_equal(
        nnc_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc),
        NNC_OK);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < ldc; j++) {
            double want = value(i * ldc + j, 3); /* padding untouched */
            if (j < n) {
                double dot = 0;
                for (int64_t t = 0; t < k; t++)
                    dot += at(a, lda, ta, i, t) * at(b, ldb, tb, t, j);
                want = alpha * dot + beta * want;
            }
            assert_true(fabs(c[i * ldc + j] - want) <= 1e-4 * (1 + fabs(want)));
        }
    free(a), free(b), free(c);
}

static void test_sgemm(void **state)
{
    for (int threads = 1; threads <= 3; threads += 2) {
        nnc_set_num_threads(threads);
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                check_gemm(ta, tb, 5, 7, 3);      /* serial */
                check_gemm(ta, tb, 131, 67, 70);  /* split by rows */
                check_gemm(ta, tb, 40, 150, 90);  /* split by columns */
                check_gemm(ta, tb, 10, 8, 40);    /* NN: gemm_small.c */
                check_gemm(ta, tb, 100, 96, 100); /* NN: small, split */
                check_gemm(ta, tb, 3, 300, 33);   /* NN: small, by columns */
            }
    }
    nnc_set_num_threads(0);
    float x = 0;
    assert_int_equal(nnc_sgemm(0, 0, 2, 2, 2, 1, &x, 1, &x, 2, 0, &x, 2),
                     NNC_ERR_ARG); /* lda < k */
}

/* The same product at 1 and 3 threads: bit-identical for the products
 * gemm.c gives its own kernel (NN, k >= 32, at most 100^3), split or not. */
static void test_sgemm_small_deterministic(void **state)
{
    enum { M = 100, N = 97, K = 100 };
    static float a[M * K], b[K * N], c1[M * N], c3[M * N];
    for (int i = 0; i < M * K; i++)
        a[i] = value(i, 6) * 0.37f;
    for (int i = 0; i < K * N; i++)
        b[i] = value(i, 7) * 1.13f;
    nnc_set_num_threads(1);
    assert_int_equal(nnc_sgemm(0, 0, M, N, K, 1, a, K, b, N, 0, c1, N), NNC_OK);
    nnc_set_num_threads(3);
    assert_int_equal(nnc_sgemm(0, 0, M, N, K, 1, a, K, b, N, 0, c3, N), NNC_OK);
    nnc_set_num_threads(0);
    assert_memory_equal(c1, c3, sizeof c1);
}

static void check_batched(int64_t batch, int64_t m, int64_t n, int64_t k,
                          int broadcast_b)
{
    int64_t sa = m * k, sb = broadcast_b ? 0 : k * n, sc = m * n;
    float *a = malloc((size_t)(batch * sa) * 4);
    float *b = malloc((size_t)((broadcast_b ? 1 : batch) * k * n) * 4);
    float *c = calloc((size_t)(batch * sc), 4);
    for (int64_t i = 0; i < batch * sa; i++)
        a[i] = value(i, 4);
    for (int64_t i = 0; i < (broadcast_b ? 1 : batch) * k * n; i++)
        b[i] = value(i, 5);
    assert_int_equal(nnc_sgemm_batched(0, 0, m, n, k, 1.0f, a, k, sa, b, n, sb,
                                       0.0f, c, n, sc, batch),
                     NNC_OK);
    for (int64_t p = 0; p < batch; p++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double dot = 0;
                for (int64_t t = 0; t < k; t++)
                    dot +=
                        (double)a[p * sa + i * k + t] * b[p * sb + t * n + j];
                assert_true(fabs(c[p * sc + i * n + j] - dot) <=
                            1e-4 * (1 + fabs(dot)));
            }
    free(a), free(b), free(c);
}

static void test_sgemm_batched(void **state)
{
    nnc_set_num_threads(3);
    check_batched(8, 33, 20, 45, 0);  /* over the batch */
    check_batched(2, 120, 70, 64, 1); /* each product split, B shared */
    check_batched(5, 3, 4, 2, 0);     /* tiny: serial */
    nnc_set_num_threads(0);
}

int main(void)
{
    setenv("NNC_NUM_THREADS", "3", 1); /* read at the runtime's first use */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_threads),
        cmocka_unit_test(test_coverage),
        cmocka_unit_test(test_runs_in_parallel),
        cmocka_unit_test(test_nested_serial),
        cmocka_unit_test(test_concurrent_callers),
        cmocka_unit_test(test_worker_errors_reach_caller),
        cmocka_unit_test(test_sgemm),
        cmocka_unit_test(test_sgemm_small_deterministic),
        cmocka_unit_test(test_sgemm_batched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
