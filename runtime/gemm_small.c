/* gemm_small.c — libnncrt's own kernel for small matrix products.
 *
 * OpenBLAS 0.3.21 sends products of at most 100^3 multiply-adds to its
 * "small matrix" kernels, and on AVX-512 CPUs the non-transposed one
 * (sgemm_small_kernel[_b0]_nn_SKYLAKEX / _COOPERLAKE, row-major NN for
 * us) mallocs and frees a packing buffer of 4·k·(up to 8 columns) bytes on
 * every call with k >= 32 (found by counting malloc around cblas_sgemm for
 * every shape up to 40^3, all transposes, beta 0 and 1: only NN with
 * k >= 32 allocates, and nothing above 100^3).  That breaks the rule that
 * nothing allocates after NAME_new, so on CPUs without AVX-512 gemm.c
 * routes exactly those products here (with AVX-512, gemm_avx512.c takes
 * every product and this kernel is not used).  The kernel is plain C and
 * slower than OpenBLAS's assembly (docs/runtime.md gives measurements),
 * which is why it is used for nothing else.
 *
 * C = alpha · op(A) op(B) + beta · C, row-major.  Each element is
 * acc = sum over p = 0..k-1, in that order, of op(A)[i,p] · op(B)[p,j] in
 * float, then alpha · acc + beta · C[i,j] (C is not read when beta is 0,
 * as in BLAS).  The order does not depend on how the product is cut, so a
 * product split over any number of threads gives the same bits.  The
 * build compiles this file with -O3 and -ffp-contract=off: GCC vectorises
 * the inner loop over j (several columns at once, each summed in order)
 * and never fuses the multiply and add, so the AVX2 and baseline copies
 * below compute identical results.
 */
#include "internal.h"

/* Columns per block: the accumulators live on the stack. */
#define SMALL_COLS 256

#if defined(__GNUC__) && defined(__x86_64__)
#define SMALL_X86 1
#endif

/* acc[j] += a_ip * B[p, j] for the rows p of a non-transposed B. */
static inline __attribute__((always_inline)) void
accumulate_rows(float *restrict acc, const float *restrict arow, int64_t a_step,
                const float *restrict b, int64_t ldb, int64_t k, int64_t nb)
{
    for (int64_t p = 0; p < k; p++) {
        float a = arow[p * a_step];
        const float *restrict brow = b + p * ldb;
        for (int64_t j = 0; j < nb; j++)
            acc[j] += a * brow[j];
    }
}

/* The same with B transposed: op(B)[p, j] = B[j, p]. */
static inline __attribute__((always_inline)) void
accumulate_cols(float *restrict acc, const float *restrict arow, int64_t a_step,
                const float *restrict b, int64_t ldb, int64_t k, int64_t nb)
{
    for (int64_t p = 0; p < k; p++) {
        float a = arow[p * a_step];
        for (int64_t j = 0; j < nb; j++)
            acc[j] += a * b[j * ldb + p];
    }
}

static inline __attribute__((always_inline)) void
store(float *restrict c, const float *restrict acc, int64_t nb, float alpha,
      float beta)
{
    if (beta == 0.0f) {
        for (int64_t j = 0; j < nb; j++)
            c[j] = alpha * acc[j];
    } else {
        for (int64_t j = 0; j < nb; j++)
            c[j] = alpha * acc[j] + beta * c[j];
    }
}

/* The kernel, compiled once per instruction set below. */
#define SMALL_KERNEL_BODY                                                      \
    float acc[SMALL_COLS];                                                     \
    int64_t a_step = ta ? lda : 1; /* op(A)[i, p] = arow[p * a_step] */        \
    for (int64_t i = 0; i < m; i++) {                                          \
        const float *arow = ta ? a + i : a + i * lda;                          \
        for (int64_t j0 = 0; j0 < n; j0 += SMALL_COLS) {                       \
            int64_t nb = n - j0 < SMALL_COLS ? n - j0 : SMALL_COLS;            \
            for (int64_t j = 0; j < nb; j++)                                   \
                acc[j] = 0.0f;                                                 \
            if (tb)                                                            \
                accumulate_cols(acc, arow, a_step, b + j0 * ldb, ldb, k, nb);  \
            else                                                               \
                accumulate_rows(acc, arow, a_step, b + j0, ldb, k, nb);        \
            store(c + i * ldc + j0, acc, nb, alpha, beta);                     \
        }                                                                      \
    }

#define SMALL_PARAMS                                                           \
    int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,              \
        const float *a, int64_t lda, const float *b, int64_t ldb, float beta,  \
        float *c, int64_t ldc

static void small_baseline(SMALL_PARAMS) { SMALL_KERNEL_BODY }

#ifdef SMALL_X86
__attribute__((target("avx2"))) static void small_avx2(SMALL_PARAMS)
{
    SMALL_KERNEL_BODY
}
#endif

void nncrt_sgemm_small(SMALL_PARAMS)
{
#ifdef SMALL_X86
    if (__builtin_cpu_supports("avx2")) {
        small_avx2(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#endif
    small_baseline(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
