/* gemm.c — matrix products for generated code.
 *
 * Three kernels, one chosen per product (before any split, so the bits do
 * not depend on the thread count): on a CPU with AVX-512, gemm_avx512.c
 * for every product; elsewhere gemm_small.c for the small non-transposed
 * products on which OpenBLAS would allocate, OpenBLAS for the rest.
 * OpenBLAS always runs single-threaded here (pool.c pins it at setup) and
 * our pool parallelises around whichever kernel runs: a product big enough
 * to pay for waking the workers is cut into contiguous row blocks of C
 * (column blocks when C is wider than tall), one serial kernel call per
 * block, never cutting k; for the AVX-512 kernel the blocks are whole
 * register tiles.  A batch of products is spread over the pool one product
 * per index.  So there is only ever one set of worker threads, and a GEMM
 * inside a parallel region (a nested call) simply runs on its thread.
 * docs/runtime.md gives the reasons and the measurements.
 */
#include <cblas.h>
#include <limits.h>

#include "internal.h"

/* Below this many multiply-adds a product runs on the calling thread. */
#define GEMM_PARALLEL_FLOPS (64 * 64 * 64)
/* OpenBLAS 0.3.21 takes products of up to 100^3 multiply-adds through its
 * small-matrix kernels, and the non-transposed one mallocs a packing
 * buffer on each call when k >= GEMM_OPENBLAS_PACK_K (measured: every
 * shape up to 40^3 and the 100^3 boundary, see gemm_small.c).  Without
 * AVX-512, exactly those products use gemm_small.c; everything else stays
 * with OpenBLAS, which is 2-8x faster than it (its dispatch costs ~0.1 us,
 * so even tiny products gain nothing from gemm_small.c). */
#define GEMM_OPENBLAS_SMALL_FLOPS (100.0 * 100.0 * 100.0)
#define GEMM_OPENBLAS_PACK_K      32

/* Which kernel runs a product: decided once for the whole product. */
enum { GEMM_OPENBLAS, GEMM_SMALL, GEMM_AVX512 };

typedef struct Gemm {
    int ta, tb;
    int64_t m, n, k;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int64_t lda, ldb, ldc;
    int kernel; /* GEMM_*: chosen once for the whole product */
} Gemm;

/* Decided on the whole product, before any split, so that the kernel (and
 * with it the bits) does not depend on the thread count.  On an AVX-512
 * CPU gemm_avx512.c takes every product: it is faster than OpenBLAS (held
 * to its AVX2 kernel by OPENBLAS_CORETYPE) on the small and the few-row
 * products and within a few percent on the large ones, gives the same
 * bits at every thread count and never allocates (docs/runtime.md). */
static int gemm_kernel(const Gemm *g)
{
    if (nncrt_have_avx512())
        return GEMM_AVX512;
    double flops = (double)g->m * (double)g->n * (double)g->k;
    if (!g->ta && !g->tb && g->k >= GEMM_OPENBLAS_PACK_K &&
        flops <= GEMM_OPENBLAS_SMALL_FLOPS)
        return GEMM_SMALL;
    return GEMM_OPENBLAS;
}

static void gemm_serial(const Gemm *g)
{
    if (g->kernel == GEMM_AVX512) {
        nncrt_sgemm_avx512(g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a,
                           g->lda, g->b, g->ldb, g->beta, g->c, g->ldc);
        return;
    }
    if (g->kernel == GEMM_SMALL) {
        nncrt_sgemm_small(g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a,
                          g->lda, g->b, g->ldb, g->beta, g->c, g->ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans,
                g->tb ? CblasTrans : CblasNoTrans, (int)g->m, (int)g->n,
                (int)g->k, g->alpha, g->a, (int)g->lda, g->b, (int)g->ldb,
                g->beta, g->c, (int)g->ldc);
}

static int gemm_check(const Gemm *g)
{
    int64_t a_cols = g->ta ? g->m : g->k, b_cols = g->tb ? g->k : g->n;
    int fits = g->m <= INT_MAX && g->n <= INT_MAX && g->k <= INT_MAX &&
               g->lda <= INT_MAX && g->ldb <= INT_MAX && g->ldc <= INT_MAX;
    int ok = g->m >= 0 && g->n >= 0 && g->k >= 0 && g->lda >= a_cols &&
             g->lda >= 1 && g->ldb >= b_cols && g->ldb >= 1 && g->ldc >= g->n &&
             g->ldc >= 1;
    if (fits && ok)
        return NNC_OK;
    return nnc_rt_set_error(NNC_ERR_ARG,
                            "sgemm: bad dimensions m=%lld n=%lld k=%lld "
                            "lda=%lld ldb=%lld ldc=%lld",
                            (long long)g->m, (long long)g->n, (long long)g->k,
                            (long long)g->lda, (long long)g->ldb,
                            (long long)g->ldc);
}

/* The pool cuts C into units of `unit` rows or columns (the AVX-512
 * kernel's tile, so that no thread gets a ragged edge tile in the middle;
 * 1 for the other kernels). */
typedef struct GemmSplit {
    const Gemm *g;
    int64_t unit;
} GemmSplit;

/* Rows [begin, end) of units of C: rows of op(A). */
static void gemm_rows(void *ctx, int64_t begin, int64_t end)
{
    const GemmSplit *s = ctx;
    Gemm g = *s->g;
    begin *= s->unit;
    end = end * s->unit < g.m ? end * s->unit : g.m;
    g.a += g.ta ? begin : begin * g.lda;
    g.c += begin * g.ldc;
    g.m = end - begin;
    gemm_serial(&g);
}

/* Columns [begin, end) of units of C: columns of op(B). */
static void gemm_cols(void *ctx, int64_t begin, int64_t end)
{
    const GemmSplit *s = ctx;
    Gemm g = *s->g;
    begin *= s->unit;
    end = end * s->unit < g.n ? end * s->unit : g.n;
    g.b += g.tb ? begin * g.ldb : begin;
    g.c += begin;
    g.n = end - begin;
    gemm_serial(&g);
}

static int64_t units(int64_t n, int64_t unit) { return (n + unit - 1) / unit; }

/* g->kernel already chosen. */
static void gemm_run(const Gemm *g)
{
    if (g->m == 0 || g->n == 0)
        return;
    double flops = (double)g->m * (double)g->n * (double)g->k;
    int threads = nnc_get_num_threads();
    if (flops < GEMM_PARALLEL_FLOPS || threads == 1) {
        gemm_serial(g);
        return;
    }
    int own = g->kernel == GEMM_AVX512;
    GemmSplit rows = {g, own ? NNCRT_AVX512_MR : 1};
    GemmSplit cols = {g, own ? NNCRT_AVX512_NR : 1};
    int64_t ru = units(g->m, rows.unit), cu = units(g->n, cols.unit);
    /* Rows when C is taller than wide; for our kernel also when the
     * columns are too few tiles to give every thread one. */
    int by_rows =
        own ? (g->m >= g->n && ru >= threads) || cu < threads : g->m >= g->n;
    if (by_rows)
        nnc_parallel_for(ru, gemm_rows, &rows);
    else
        nnc_parallel_for(cu, gemm_cols, &cols);
}

int nnc_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
              float alpha, const float *a, int64_t lda, const float *b,
              int64_t ldb, float beta, float *c, int64_t ldc)
{
    nncrt_setup();
    Gemm g = {
        trans_a != 0, trans_b != 0, m, n, k, alpha, beta, a, b, c, lda, ldb,
        ldc,          GEMM_OPENBLAS};
    int rc = gemm_check(&g);
    if (rc == NNC_OK) {
        g.kernel = gemm_kernel(&g);
        gemm_run(&g);
    }
    return rc;
}

typedef struct Batch {
    Gemm g;
    int64_t stride_a, stride_b, stride_c;
} Batch;

static void batch_items(void *ctx, int64_t begin, int64_t end)
{
    const Batch *bt = ctx;
    for (int64_t i = begin; i < end; i++) {
        Gemm g = bt->g;
        g.a += i * bt->stride_a;
        g.b += i * bt->stride_b;
        g.c += i * bt->stride_c;
        gemm_serial(&g);
    }
}

int nnc_sgemm_batched(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t lda,
                      int64_t stride_a, const float *b, int64_t ldb,
                      int64_t stride_b, float beta, float *c, int64_t ldc,
                      int64_t stride_c, int64_t batch)
{
    nncrt_setup();
    Batch bt = {{trans_a != 0, trans_b != 0, m, n, k, alpha, beta, a, b, c, lda,
                 ldb, ldc, GEMM_OPENBLAS},
                stride_a,
                stride_b,
                stride_c};
    int rc = gemm_check(&bt.g);
    if (rc != NNC_OK || batch <= 0 || m == 0 || n == 0)
        return rc;
    bt.g.kernel = gemm_kernel(&bt.g);
    double flops = (double)m * (double)n * (double)k;
    int threads = nnc_get_num_threads();
    if (batch >= threads || flops * (double)batch < GEMM_PARALLEL_FLOPS) {
        if (flops * (double)batch < GEMM_PARALLEL_FLOPS)
            batch_items(&bt, 0, batch);
        else
            nnc_parallel_for(batch, batch_items, &bt);
        return NNC_OK;
    }
    for (int64_t i = 0; i < batch; i++) { /* few big products: split each */
        Gemm g = bt.g;
        g.a += i * stride_a;
        g.b += i * stride_b;
        g.c += i * stride_c;
        gemm_run(&g);
    }
    return NNC_OK;
}
