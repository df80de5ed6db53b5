/* test_rt_rng.c — libnncrt's random numbers and initializers.
 *
 * Philox4x32-10 against the Random123 known-answer vectors; the documented
 * (seed, stream, index) layout; statistics of every initializer over 10^5
 * samples; orthogonality of each orthogonal slice and agreement with an
 * independent Gram-Schmidt QR of the same normals; determinism and
 * independence from the thread count; dropout masks; NAME_init over a
 * model table.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nnc.h"

#define N_SAMPLES 100000

/* ---- Philox -------------------------------------------------------------- */

/* Random123 tests/kat_vectors, the three "philox4x32 10" lines:
 * counter (4 words), key (2 words), expected output (4 words). */
/* clang-format off */
static const uint32_t kat[3][10] = {
    {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000,
     0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
    {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
     0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
     0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
};
/* clang-format on */

static void test_philox_known_answers(void **state)
{
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        nnc_philox4x32_10(&kat[v][0], &kat[v][4], out);
        for (int i = 0; i < 4; i++)
            assert_int_equal(out[i], kat[v][6 + i]);
    }
}

/* Draw i of (seed, stream) is lane i%4 of the block with counter
 * (i/4, stream) and key seed, low words first. */
static void test_rand_layout(void **state)
{
    uint64_t seed = 0x0123456789abcdefull, stream = 0xfedcba9876543210ull;
    uint64_t index = 0x00000005deadbeefull;
    uint32_t ctr[4] = {(uint32_t)(index / 4), (uint32_t)((index / 4) >> 32),
                       (uint32_t)stream, (uint32_t)(stream >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t out[4];
    nnc_philox4x32_10(ctr, key, out);
    for (uint64_t k = 0; k < 4; k++) {
        uint64_t i = index - index % 4 + k;
        assert_int_equal(nnc_rand_bits(seed, stream, i), out[k]);
        assert_true(nnc_rand_uniform(seed, stream, i) ==
                    (float)(out[k] >> 8) * 0x1p-24f);
    }
}

/* ---- statistics helpers -------------------------------------------------- */

static void moments(const float *x, int64_t n, double *mean, double *std,
                    double *lo, double *hi)
{
    double s = 0, ss = 0;
    *lo = INFINITY, *hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        s += x[i];
        *lo = x[i] < *lo ? x[i] : *lo;
        *hi = x[i] > *hi ? x[i] : *hi;
    }
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++)
        ss += (x[i] - *mean) * (x[i] - *mean);
    *std = sqrt(ss / (double)(n - 1));
}

static float *init_new(int rank, const int64_t *shape, nnc_init_kind kind,
                       double a, double b, uint64_t seed, uint64_t stream)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= shape[i];
    float *x = malloc((size_t)n * sizeof *x);
    int64_t sf = nnc_init_scratch_floats(rank, shape, kind);
    float *scratch = sf ? malloc((size_t)sf * sizeof *scratch) : NULL;
    assert_non_null(x);
    assert_int_equal(
        nnc_init_tensor(x, rank, shape, kind, a, b, seed, stream, scratch),
        NNC_OK);
    free(scratch);
    return x;
}

/* ---- the elementwise kinds ----------------------------------------------- */

static void test_constant_kinds(void **state)
{
    int64_t shape[2] = {3, 5};
    float *z = init_new(2, shape, NNC_INIT_ZEROS, 0, 0, 1, 2);
    float *o = init_new(2, shape, NNC_INIT_ONES, 0, 0, 1, 2);
    float *c = init_new(2, shape, NNC_INIT_CONST, -0.25, 0, 1, 2);
    for (int i = 0; i < 15; i++) {
        assert_true(z[i] == 0.0f && o[i] == 1.0f && c[i] == -0.25f);
    }
    free(z), free(o), free(c);
}

static void test_uniform_stats(void **state)
{
    int64_t shape[1] = {N_SAMPLES};
    float *x = init_new(1, shape, NNC_INIT_UNIFORM, -2.0, 3.0, 7, 11);
    double mean, std, lo, hi;
    moments(x, N_SAMPLES, &mean, &std, &lo, &hi);
    /* U(-2, 3): mean 0.5, std 5/sqrt(12); the mean's sampling error is
     * 1.44/316 = 0.0046, so 0.025 is over 5 sigma. */
    assert_true(fabs(mean - 0.5) < 0.025);
    assert_true(fabs(std - 5.0 / sqrt(12.0)) < 0.015);
    assert_true(lo >= -2.0 && hi < 3.0);
    assert_true(lo < -1.99 && hi > 2.99);
    free(x);
}

static void test_normal_stats(void **state)
{
    int64_t shape[2] = {100, 1000};
    float *x = init_new(2, shape, NNC_INIT_NORMAL, 1.5, 2.0, 3, 4);
    double mean, std, lo, hi;
    moments(x, N_SAMPLES, &mean, &std, &lo, &hi);
    assert_true(fabs(mean - 1.5) < 0.032); /* 5 sigma of 2/316 */
    assert_true(fabs(std - 2.0) < 0.03);
    assert_true(lo < 1.5 - 7.0 && hi > 1.5 + 7.0); /* tails beyond 3.5 sigma */
    /* The tensor holds exactly the documented draws. */
    for (uint64_t i = 0; i < 8; i++)
        assert_true(x[i] == (float)(1.5 + 2.0 * nnc_rand_normal(3, 4, i)));
    free(x);
}

static void test_xavier_uniform(void **state)
{
    int64_t shape[2] = {250, 400}; /* fan_in 250, fan_out 400 */
    float *x = init_new(2, shape, NNC_INIT_XAVIER_UNIFORM, 0, 0, 5, 6);
    double bound = sqrt(6.0 / 650.0), mean, std, lo, hi;
    moments(x, N_SAMPLES, &mean, &std, &lo, &hi);
    assert_true(lo >= -bound && hi <= bound);
    assert_true(lo < -0.999 * bound && hi > 0.999 * bound);
    assert_true(fabs(mean) < 0.002);
    assert_true(fabs(std - bound / sqrt(3.0)) < 0.01 * bound);
    free(x);

    int64_t vec[1] = {N_SAMPLES}; /* rank 1: both fans are the length */
    x = init_new(1, vec, NNC_INIT_XAVIER_UNIFORM, 0, 0, 5, 6);
    bound = sqrt(6.0 / (2.0 * N_SAMPLES));
    moments(x, N_SAMPLES, &mean, &std, &lo, &hi);
    assert_true(lo >= -bound && hi <= bound && hi > 0.999 * bound);
    free(x);
}

static void test_kaiming_normal(void **state)
{
    /* rank 3: a stack of [500, 50] slices, fan_in = 500 (not 500 * 50 as in
     * PyTorch's convention). */
    int64_t shape[3] = {4, 500, 50};
    float *x = init_new(3, shape, NNC_INIT_KAIMING_NORMAL, 0, 0, 8, 9);
    double want = sqrt(2.0 / 500.0), mean, std, lo, hi;
    moments(x, N_SAMPLES, &mean, &std, &lo, &hi);
    assert_true(fabs(mean) < 5.0 * want / 316.0);
    assert_true(fabs(std - want) < 0.015 * want);
    free(x);

    int64_t mat[2] = {400, 250};
    x = init_new(2, mat, NNC_INIT_KAIMING_NORMAL, 0, 0, 8, 9);
    want = sqrt(2.0 / 400.0);
    moments(x, N_SAMPLES, &mean, &std, &lo, &hi);
    assert_true(fabs(std - want) < 0.015 * want);
    free(x);
}

/* ---- orthogonal ---------------------------------------------------------- */

/* max |G - I| where G = M M^T over rows (by_rows) or M^T M over columns. */
static double gram_error(const float *m, int64_t rows, int64_t cols,
                         int by_rows)
{
    int64_t k = by_rows ? rows : cols, len = by_rows ? cols : rows;
    double worst = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double dot = 0;
            for (int64_t t = 0; t < len; t++)
                dot += by_rows ? (double)m[i * cols + t] * m[j * cols + t]
                               : (double)m[t * cols + i] * m[t * cols + j];
            double err = fabs(dot - (i == j ? 1.0 : 0.0));
            worst = err > worst ? err : worst;
        }
    return worst;
}

/* Independent reference: modified Gram-Schmidt, twice, on the columns of
 * an m x n (m >= n) matrix in row-major double; gives the QR factor with
 * a positive diagonal in R, which is unique. */
static void gram_schmidt(double *a, int64_t m, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        for (int pass = 0; pass < 2; pass++)
            for (int64_t i = 0; i < j; i++) {
                double dot = 0;
                for (int64_t t = 0; t < m; t++)
                    dot += a[t * n + i] * a[t * n + j];
                for (int64_t t = 0; t < m; t++)
                    a[t * n + j] -= dot * a[t * n + i];
            }
        double norm = 0;
        for (int64_t t = 0; t < m; t++)
            norm += a[t * n + j] * a[t * n + j];
        norm = sqrt(norm);
        for (int64_t t = 0; t < m; t++)
            a[t * n + j] /= norm;
    }
}

/* Orthogonal init equals Gram-Schmidt of the NORMAL(0, 1) draws of the same
 * (seed, stream), slice by slice, transposed when rows < cols. */
static void check_orthogonal(int64_t slices, int64_t rows, int64_t cols)
{
    int64_t shape[3] = {slices, rows, cols};
    float *q = init_new(3, shape, NNC_INIT_ORTHOGONAL, 0, 0, 42, 17);
    float *z = init_new(3, shape, NNC_INIT_NORMAL, 0.0, 1.0, 42, 17);
    int tall = rows >= cols;
    int64_t m = tall ? rows : cols, n = tall ? cols : rows;
    double *a = malloc((size_t)(m * n) * sizeof *a);
    for (int64_t s = 0; s < slices; s++) {
        const float *qs = q + s * rows * cols, *zs = z + s * rows * cols;
        assert_true(gram_error(qs, rows, cols, !tall) < 1e-5);
        for (int64_t i = 0; i < rows; i++) /* a = slice, or its transpose */
            for (int64_t j = 0; j < cols; j++)
                a[tall ? i * n + j : j * n + i] = zs[i * cols + j];
        gram_schmidt(a, m, n);
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++)
                assert_true(fabs(qs[i * cols + j] -
                                 a[tall ? i * n + j : j * n + i]) < 1e-5);
    }
    free(a), free(q), free(z);
}

static void test_orthogonal_tall(void **state) { check_orthogonal(3, 64, 32); }
static void test_orthogonal_wide(void **state) { check_orthogonal(2, 16, 40); }
static void test_orthogonal_square(void **state)
{
    check_orthogonal(2, 50, 50);
}

static void test_orthogonal_errors(void **state)
{
    float x[8], scratch[64];
    int64_t vec[1] = {8}, mat[2] = {2, 4};
    assert_int_equal(
        nnc_init_tensor(x, 1, vec, NNC_INIT_ORTHOGONAL, 0, 0, 1, 1, scratch),
        NNC_ERR_ARG);
    assert_non_null(strstr(nnc_last_error(), "rank 2 or more"));
    assert_int_equal(
        nnc_init_tensor(x, 2, mat, NNC_INIT_ORTHOGONAL, 0, 0, 1, 1, NULL),
        NNC_ERR_ARG);
    assert_int_equal(
        nnc_init_tensor(x, 2, mat, (nnc_init_kind)99, 0, 0, 1, 1, NULL),
        NNC_ERR_ARG);
    assert_int_equal(nnc_init_scratch_floats(2, mat, NNC_INIT_NORMAL), 0);
    assert_true(nnc_init_scratch_floats(2, mat, NNC_INIT_ORTHOGONAL) >=
                2 * 2 * 4);
}

/* ---- determinism --------------------------------------------------------- */

static void test_determinism(void **state)
{
    int64_t shape[2] = {300, 333};
    int64_t n = 300 * 333;
    float *a = init_new(2, shape, NNC_INIT_NORMAL, 0, 1, 1234, 5);
    float *b = init_new(2, shape, NNC_INIT_NORMAL, 0, 1, 1234, 5);
    float *c = init_new(2, shape, NNC_INIT_NORMAL, 0, 1, 1234, 6);
    float *d = init_new(2, shape, NNC_INIT_NORMAL, 0, 1, 1235, 5);
    assert_memory_equal(a, b, (size_t)n * sizeof *a);
    int64_t same_c = 0, same_d = 0;
    for (int64_t i = 0; i < n; i++) {
        same_c += a[i] == c[i];
        same_d += a[i] == d[i];
    }
    assert_true(same_c < 10 && same_d < 10);
    free(a), free(b), free(c), free(d);
}

/* Every kind gives the same bits with 1 and with 3 threads (tensors large
 * enough to be split over the pool). */
static void test_thread_count_independence(void **state)
{
    int64_t shape[2] = {512, 1024};
    size_t bytes = 512 * 1024 * sizeof(float);
    for (int kind = NNC_INIT_UNIFORM; kind < NNC_INIT_COUNT; kind++) {
        nnc_set_num_threads(1);
        float *one = init_new(2, shape, kind, -1, 1, 99, 3);
        nnc_set_num_threads(3);
        float *three = init_new(2, shape, kind, -1, 1, 99, 3);
        assert_memory_equal(one, three, bytes);
        free(one), free(three);
    }
    float *m1 = malloc(bytes), *m3 = malloc(bytes);
    nnc_set_num_threads(1);
    nnc_dropout_mask(m1, 512 * 1024, 0.25f, 99, 7, 12);
    nnc_set_num_threads(3);
    nnc_dropout_mask(m3, 512 * 1024, 0.25f, 99, 7, 12);
    assert_memory_equal(m1, m3, bytes);
    free(m1), free(m3);
    nnc_set_num_threads(0);
}

/* ---- dropout ------------------------------------------------------------- */

static void test_dropout_mask(void **state)
{
    float *m = malloc(N_SAMPLES * sizeof *m),
          *m2 = malloc(N_SAMPLES * sizeof *m);
    nnc_dropout_mask(m, N_SAMPLES, 0.3f, 5, 2, 100);
    int64_t dropped = 0;
    for (int i = 0; i < N_SAMPLES; i++) {
        assert_true(m[i] == 0.0f || m[i] == 1.0f / (1.0f - 0.3f));
        dropped += m[i] == 0.0f;
    }
    /* binomial: sd = sqrt(1e5 * 0.21) = 145 */
    assert_true(llabs(dropped - 30000) < 725);
    nnc_dropout_mask(m2, N_SAMPLES, 0.3f, 5, 2, 101); /* the next step */
    assert_true(memcmp(m, m2, N_SAMPLES * sizeof *m) != 0);
    nnc_dropout_mask(m2, N_SAMPLES, 0.3f, 5, 2, 100);
    assert_memory_equal(m, m2, N_SAMPLES * sizeof *m);
    nnc_dropout_mask(m, 1000, 0.0f, 5, 2, 100);
    nnc_dropout_mask(m2, 1000, 1.0f, 5, 2, 100);
    for (int i = 0; i < 1000; i++)
        assert_true(m[i] == 1.0f && m2[i] == 0.0f);
    free(m), free(m2);
    /* dropout streams never meet initializer streams */
    assert_true((nnc_dropout_stream(0xffff, UINT64_MAX) >> 63) == 0);
    assert_true((nnc_name_stream("w") >> 63) == 1);
    assert_true(nnc_name_stream("w1") != nnc_name_stream("w2"));
}

/* ---- NAME_init over a table ---------------------------------------------- */

/* clang-format off */
enum { W_OFF = 0, B_OFF = 128, Q_OFF = 160, GW_OFF = 448, M_OFF = 576,
       STEP_OFF = 704, WS_OFF = 712, WS_BYTES = 4096,
       TOTAL = WS_OFF + WS_BYTES };

static const nnc_tensor_info toy_tensors[] = {
    {"x", NNC_ROLE_INPUT, NNC_F32, 2, -1, {2, 8}, 16, -1,
     {NNC_INIT_ZEROS, 0, 0}},
    {"w", NNC_ROLE_PARAM, NNC_F32, 2, -1, {8, 4}, 32, W_OFF,
     {NNC_INIT_XAVIER_UNIFORM, 0, 0}},
    {"b", NNC_ROLE_FROZEN_PARAM, NNC_F32, 1, -1, {4}, 4, B_OFF,
     {NNC_INIT_CONST, 0.5, 0}},
    {"q", NNC_ROLE_PARAM, NNC_F32, 3, -1, {2, 6, 6}, 72, Q_OFF,
     {NNC_INIT_ORTHOGONAL, 0, 0}},
    {"w", NNC_ROLE_GRAD, NNC_F32, 2, 1, {8, 4}, 32, GW_OFF,
     {NNC_INIT_ZEROS, 0, 0}},
    {"w.exp_avg", NNC_ROLE_OPT_STATE, NNC_F32, 2, 1, {8, 4}, 32, M_OFF,
     {NNC_INIT_ZEROS, 0, 0}},
};
static const nnc_model_info toy = {
    NNC_ABI_VERSION, 6, "toy", toy_tensors, TOTAL, WS_OFF, WS_BYTES, STEP_OFF};
/* clang-format on */

static void test_model_init(void **state)
{
    unsigned char *base = malloc(TOTAL), *before = malloc(TOTAL);
    memset(base, 0xAB, TOTAL);
    memcpy(before, base, TOTAL);
    int64_t need = nnc_model_init_scratch_floats(&toy);
    assert_true(need > 0 && need * 4 <= WS_BYTES);
    float *scratch = (float *)(base + WS_OFF);
    assert_int_equal(nnc_model_init(&toy, base, 77, scratch, need - 1),
                     NNC_ERR_ARG);
    assert_memory_equal(base, before, TOTAL); /* nothing written */
    assert_int_equal(nnc_model_init(&toy, base, 77, scratch, need), NNC_OK);

    int64_t wshape[2] = {8, 4};
    float *w = init_new(2, wshape, NNC_INIT_XAVIER_UNIFORM, 0, 0, 77,
                        nnc_name_stream("w"));
    assert_memory_equal(base + W_OFF, w, 32 * sizeof(float));
    free(w);
    for (int i = 0; i < 4; i++)
        assert_true(((float *)(base + B_OFF))[i] == 0.5f);
    for (int s = 0; s < 2; s++)
        assert_true(gram_error((float *)(base + Q_OFF) + 36 * s, 6, 6, 0) <
                    1e-5);
    for (int i = 0; i < 32; i++)
        assert_true(((float *)(base + GW_OFF))[i] == 0.0f &&
                    ((float *)(base + M_OFF))[i] == 0.0f);
    int64_t step;
    memcpy(&step, base + STEP_OFF, sizeof step);
    assert_int_equal(step, 0);
    free(base), free(before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_rand_layout),
        cmocka_unit_test(test_constant_kinds),
        cmocka_unit_test(test_uniform_stats),
        cmocka_unit_test(test_normal_stats),
        cmocka_unit_test(test_xavier_uniform),
        cmocka_unit_test(test_kaiming_normal),
        cmocka_unit_test(test_orthogonal_tall),
        cmocka_unit_test(test_orthogonal_wide),
        cmocka_unit_test(test_orthogonal_square),
        cmocka_unit_test(test_orthogonal_errors),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_thread_count_independence),
        cmocka_unit_test(test_dropout_mask),
        cmocka_unit_test(test_model_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
