/* gemm_avx512.c — libnncrt's AVX-512 single-precision GEMM.
 *
 * gemm.c calls nncrt_sgemm_avx512 for every product, instead of OpenBLAS
 * or gemm_small.c, when the CPU has AVX-512F/DQ (nncrt_have_avx512,
 * checked once); docs/runtime.md has the measurements.  The library is
 * built for generic x86-64, so every function here that uses AVX-512
 * carries a target attribute and is reached only after that check.
 *
 * BLIS-style, serial (gemm.c's pool cuts C into row or column blocks of
 * whole tiles and calls this once per block):
 *
 *   for jc over n in GEMM_NC columns
 *     for pc over k in blocks of kb (<= GEMM_KC; depends only on k)
 *       pack op(B)[pc.., jc..] into GEMM_NR-column panels (zero padded)
 *       for ir over m in GEMM_MR rows
 *         pack op(A)[ir.., pc..] into one GEMM_MR-row panel (zero padded)
 *         for jr over the panels: MR x NR register tile of zmm FMAs
 *
 * All four transposes are handled by the packing.  Rows past m are zeros
 * in the A panel and are not stored; columns past n are zeros in the B
 * panel and are masked out.  Two packings are skipped where they cannot
 * pay: a non-transposed B when C has few rows (GEMM_DIRECT_B_ROWS), read
 * in place under column masks, and an A panel that meets one B panel
 * only (n <= NR), read in place with its strides.
 *
 * Bits: element (i, j) is acc = fma(op(A)[i,p], op(B)[p,j], acc) for p
 * ascending within each k block, starting from 0; the first block stores
 * alpha·acc + beta·C (C not read when beta is 0, as in BLAS), the later
 * ones C + alpha·acc.  The k blocks depend only on k, and the arithmetic
 * of an element does not depend on its place in the tile, so any cut of
 * C into row or column blocks gives the same bits.
 *
 * Packing buffers are thread-local and of fixed size (no allocation at
 * call time: generated code may not allocate after NAME_new).
 */
#include "internal.h"

#if defined(__GNUC__) && defined(__x86_64__)

#include <immintrin.h>

#define GEMM_MR            NNCRT_AVX512_MR /* at most 16 */
#define GEMM_NR            NNCRT_AVX512_NR
#define GEMM_KC            384
#define GEMM_NC            512 /* a multiple of GEMM_NR */
#define GEMM_DIRECT_B_ROWS 64

#define AVX512 __attribute__((target("avx512f,avx512dq,fma")))

static _Thread_local float pack_b[GEMM_KC * GEMM_NC]
    __attribute__((aligned(64)));
static _Thread_local float pack_a[GEMM_KC * 16] __attribute__((aligned(64)));

int nncrt_have_avx512(void)
{
    static int have = -1; /* computed once; a racing thread computes the same */
    int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx512f") &&
            __builtin_cpu_supports("avx512dq");
        __atomic_store_n(&have, h, __ATOMIC_RELAXED);
    }
    return h;
}

static inline AVX512 __mmask16 mask_of(int64_t count)
{
    return count >= 16  ? (__mmask16)0xffff
           : count <= 0 ? (__mmask16)0
                        : (__mmask16)((1u << count) - 1);
}

/* ---- packing ------------------------------------------------------------ */

/* op(B)[p0 .. p0+kc, j0 .. j0+nb] into panels of GEMM_NR columns:
 * panel q holds element (p, j) at dst[q*kc*NR + p*NR + j - q*NR]. */
static AVX512 void pack_b_panels(int tb, const float *b, int64_t ldb,
                                 int64_t p0, int64_t kc, int64_t j0, int64_t nb,
                                 float *dst)
{
    for (int64_t q = 0; q * GEMM_NR < nb; q++) {
        int64_t jq = j0 + q * GEMM_NR, w = nb - q * GEMM_NR;
        if (w > GEMM_NR)
            w = GEMM_NR;
        float *d = dst + q * kc * GEMM_NR;
        if (!tb) {
            __mmask16 m0 = mask_of(w), m1 = mask_of(w - 16);
            const float *s = b + p0 * ldb + jq;
            for (int64_t p = 0; p < kc; p++, s += ldb, d += GEMM_NR) {
                _mm512_store_ps(d, _mm512_maskz_loadu_ps(m0, s));
                _mm512_store_ps(d + 16, _mm512_maskz_loadu_ps(m1, s + 16));
            }
        } else if (w == GEMM_NR) {
            /* op(B)[p, j] = B[j, p]: 16x16 blocks through a transpose
             * buffer, rows of B read contiguously. */
            const float *s = b + jq * ldb + p0;
            int64_t p = 0;
            for (; p + 16 <= kc; p += 16) {
                for (int half = 0; half < 2; half++) {
                    __m512 r[16];
                    for (int j = 0; j < 16; j++)
                        r[j] = _mm512_loadu_ps(s + (half * 16 + j) * ldb + p);
                    /* 16x16 transpose */
                    __m512 t[16];
                    for (int j = 0; j < 16; j += 2) {
                        t[j] = _mm512_unpacklo_ps(r[j], r[j + 1]);
                        t[j + 1] = _mm512_unpackhi_ps(r[j], r[j + 1]);
                    }
                    for (int j = 0; j < 16; j += 4) {
                        __m512d a0 = _mm512_castps_pd(t[j]);
                        __m512d a1 = _mm512_castps_pd(t[j + 1]);
                        __m512d a2 = _mm512_castps_pd(t[j + 2]);
                        __m512d a3 = _mm512_castps_pd(t[j + 3]);
                        r[j] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
                        r[j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
                        r[j + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
                        r[j + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
                    }
                    /* r[4g + e] holds, in each 128-bit lane L, the 4 rows
                     * 4g..4g+3 at column 4L + e. */
                    for (int g = 0; g < 4; g += 2) {
                        for (int e = 0; e < 4; e++) {
                            __m512 x = r[4 * g + e], y = r[4 * g + 4 + e];
                            t[4 * g + e] =
                                _mm512_shuffle_f32x4(x, y, 0x88); /* L0,L2 */
                            t[4 * g + 4 + e] =
                                _mm512_shuffle_f32x4(x, y, 0xdd); /* L1,L3 */
                        }
                    }
                    /* t[e] (g=0): lanes = rows 0-3 col e, rows 0-3 col 8+e,
                     * rows 4-7 col e, rows 4-7 col 8+e; t[4+e]: cols 4+e,
                     * 12+e; t[8+e], t[12+e]: rows 8-15 likewise. */
                    for (int e = 0; e < 4; e++) {
                        for (int h = 0; h < 2; h++) {
                            __m512 x = t[4 * h + e], y = t[8 + 4 * h + e];
                            __m512 lo = _mm512_shuffle_f32x4(x, y, 0x88);
                            __m512 hi = _mm512_shuffle_f32x4(x, y, 0xdd);
                            /* lo: column 4h+e, rows 0..15; hi: 8+4h+e */
                            _mm512_store_ps(
                                d + (p + 4 * h + e) * GEMM_NR + half * 16, lo);
                            _mm512_store_ps(d + (p + 8 + 4 * h + e) * GEMM_NR +
                                                half * 16,
                                            hi);
                        }
                    }
                }
            }
            for (; p < kc; p++)
                for (int64_t j = 0; j < GEMM_NR; j++)
                    d[p * GEMM_NR + j] = s[j * ldb + p];
        } else {
            const float *s = b + jq * ldb + p0;
            for (int64_t p = 0; p < kc; p++) {
                for (int64_t j = 0; j < w; j++)
                    d[p * GEMM_NR + j] = s[j * ldb + p];
                for (int64_t j = w; j < GEMM_NR; j++)
                    d[p * GEMM_NR + j] = 0.0f;
            }
        }
    }
}

/* op(A)[i0 .. i0+mb, p0 .. p0+kc] as dst[p*MR + i], rows past mb zero. */
static AVX512 void pack_a_panel(int ta, const float *a, int64_t lda, int64_t i0,
                                int64_t mb, int64_t p0, int64_t kc, float *dst)
{
    if (ta) { /* op(A)[i, p] = A[p, i]: rows of the panel are contiguous */
        __mmask16 m = mask_of(mb), full = mask_of(GEMM_MR);
        const float *s = a + p0 * lda + i0;
        for (int64_t p = 0; p < kc; p++, s += lda)
            _mm512_mask_storeu_ps(dst + p * GEMM_MR, full,
                                  _mm512_maskz_loadu_ps(m, s));
        return;
    }
    const float *s = a + i0 * lda + p0;
    int64_t r0 = 0;
    for (; r0 + 8 <= mb; r0 += 8) { /* 8 rows at a time, transposed 8x8 */
        const float *s8 = s + r0 * lda;
        float *d8 = dst + r0;
        int64_t p = 0;
        for (; p + 8 <= kc; p += 8) {
            __m256 r[8], t[8];
            for (int i = 0; i < 8; i++)
                r[i] = _mm256_loadu_ps(s8 + i * lda + p);
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
                r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
                r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
                r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
            }
            for (int i = 0; i < 4; i++) {
                _mm256_storeu_ps(d8 + (p + i) * GEMM_MR,
                                 _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
                _mm256_storeu_ps(d8 + (p + 4 + i) * GEMM_MR,
                                 _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
            }
        }
        for (; p < kc; p++)
            for (int i = 0; i < 8; i++)
                d8[p * GEMM_MR + i] = s8[i * lda + p];
    }
    for (int64_t p = 0; p < kc; p++) {
        for (int64_t i = r0; i < mb; i++)
            dst[p * GEMM_MR + i] = s[i * lda + p];
        for (int64_t i = mb; i < GEMM_MR; i++)
            dst[p * GEMM_MR + i] = 0.0f;
    }
}

/* ---- the micro-kernel --------------------------------------------------- */

/* C[0 .. mb, 0 .. nb] (mb <= MR, nb <= 16 nv) over kc; first: C = alpha
 * acc + beta C, else C = C + alpha acc.  op(A)[i, p] is pa[i*ars + p*aps]
 * (packed: ars 1, aps MR) and op(B)[p, j] is pb[p*bps + j] (packed: bps
 * NR, zero padded; direct: B itself, read under the column masks).  nv = 1
 * for an edge of at most 16 columns.  Every variant computes each element
 * with the same chain of FMAs, so which one runs does not change bits. */
static inline __attribute__((always_inline)) AVX512 void
micro_tile(const int nv, const int direct_a, const int direct_b, int64_t kc,
           const float *restrict pa, int64_t ars, int64_t aps,
           const float *restrict pb, int64_t bps, float *c, int64_t ldc,
           int64_t mb, int64_t nb, float alpha, float beta, int first)
{
    __m512 acc[GEMM_MR][2];
    __mmask16 m0 = mask_of(nb), m1 = mask_of(nb - 16);
    if (!direct_a) {
        ars = 1;
        aps = GEMM_MR;
    }
    if (!direct_b)
        bps = GEMM_NR;
#pragma GCC unroll 16
    for (int i = 0; i < GEMM_MR; i++)
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m512 b0, b1;
        if (direct_b) {
            b0 = _mm512_maskz_loadu_ps(m0, pb);
            b1 = nv > 1 ? _mm512_maskz_loadu_ps(m1, pb + 16) : b0;
        } else {
            b0 = _mm512_load_ps(pb);
            b1 = nv > 1 ? _mm512_load_ps(pb + 16) : b0;
        }
#pragma GCC unroll 16
        for (int i = 0; i < GEMM_MR; i++) {
            __m512 av = _mm512_set1_ps(pa[i * ars]);
            acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            if (nv > 1)
                acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
        }
        pa += aps;
        pb += bps;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    int add = !first, scale = first && beta != 0.0f;
    if (!add && !scale) {
#pragma GCC unroll 16
        for (int i = 0; i < GEMM_MR; i++) {
            if (i >= mb)
                break;
            float *ci = c + i * ldc;
            _mm512_mask_storeu_ps(ci, m0, _mm512_mul_ps(va, acc[i][0]));
            if (nv > 1)
                _mm512_mask_storeu_ps(ci + 16, m1,
                                      _mm512_mul_ps(va, acc[i][1]));
        }
        return;
    }
#pragma GCC unroll 16
    for (int i = 0; i < GEMM_MR; i++) {
        if (i >= mb)
            break;
        float *ci = c + i * ldc;
        for (int v = 0; v < nv; v++) {
            __mmask16 mv = v ? m1 : m0;
            __m512 cv = _mm512_maskz_loadu_ps(mv, ci + 16 * v);
            if (scale)
                cv = _mm512_mul_ps(vb, cv);
            _mm512_mask_storeu_ps(ci + 16 * v, mv,
                                  _mm512_fmadd_ps(va, acc[i][v], cv));
        }
    }
}

#define MICRO_ARGS kc, pa, ars, aps, pb, bps, c, ldc, mb, nb, alpha, beta, first

static AVX512 void micro_kernel(int direct_a, int direct_b, int64_t kc,
                                const float *pa, int64_t ars, int64_t aps,
                                const float *pb, int64_t bps, float *c,
                                int64_t ldc, int64_t mb, int64_t nb,
                                float alpha, float beta, int first)
{
    int code = (nb > 16) * 4 + direct_a * 2 + direct_b;
    switch (code) {
    case 0: micro_tile(1, 0, 0, MICRO_ARGS); break;
    case 1: micro_tile(1, 0, 1, MICRO_ARGS); break;
    case 2: micro_tile(1, 1, 0, MICRO_ARGS); break;
    case 3: micro_tile(1, 1, 1, MICRO_ARGS); break;
    case 4: micro_tile(2, 0, 0, MICRO_ARGS); break;
    case 5: micro_tile(2, 0, 1, MICRO_ARGS); break;
    case 6: micro_tile(2, 1, 0, MICRO_ARGS); break;
    default: micro_tile(2, 1, 1, MICRO_ARGS); break;
    }
}

/* ---- the driver --------------------------------------------------------- */

/* C = beta C for k == 0 or alpha == 0 (C not read when beta is 0). */
static void scale_c(int64_t m, int64_t n, float beta, float *c, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f)
            for (int64_t j = 0; j < n; j++)
                ci[j] = 0.0f;
        else
            for (int64_t j = 0; j < n; j++)
                ci[j] *= beta;
    }
}

/* k blocks of near-equal size, a multiple of 16 (whole transposes in the
 * packing) and at most GEMM_KC: a function of k alone. */
static int64_t k_block(int64_t k)
{
    int64_t blocks = (k + GEMM_KC - 1) / GEMM_KC;
    int64_t kb = (k + blocks - 1) / blocks;
    return (kb + 15) / 16 * 16;
}

AVX512 void nncrt_sgemm_avx512(int ta, int tb, int64_t m, int64_t n, int64_t k,
                               float alpha, const float *a, int64_t lda,
                               const float *b, int64_t ldb, float beta,
                               float *c, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    float *pb_buf = pack_b, *pa_buf = pack_a;
    int64_t kb = k_block(k);
    /* Few rows reuse each element of B too little to pay for packing it:
     * a non-transposed B is then read in place. */
    int direct_b = !tb && m <= GEMM_DIRECT_B_ROWS;
    for (int64_t jc = 0; jc < n; jc += GEMM_NC) {
        int64_t nb = n - jc < GEMM_NC ? n - jc : GEMM_NC;
        for (int64_t pc = 0; pc < k; pc += kb) {
            int64_t kc = k - pc < kb ? k - pc : kb;
            if (!direct_b)
                pack_b_panels(tb, b, ldb, pc, kc, jc, nb, pb_buf);
            for (int64_t ir = 0; ir < m; ir += GEMM_MR) {
                int64_t mb = m - ir < GEMM_MR ? m - ir : GEMM_MR;
                /* An A panel used by one B panel only is read in place. */
                int direct_a = nb <= GEMM_NR && mb == GEMM_MR;
                const float *pa = pa_buf;
                int64_t ars = 1, aps = GEMM_MR;
                if (direct_a) {
                    pa = ta ? a + pc * lda + ir : a + ir * lda + pc;
                    ars = ta ? 1 : lda;
                    aps = ta ? lda : 1;
                } else {
                    pack_a_panel(ta, a, lda, ir, mb, pc, kc, pa_buf);
                }
                float *crow = c + ir * ldc + jc;
                for (int64_t jr = 0; jr < nb; jr += GEMM_NR) {
                    int64_t w = nb - jr < GEMM_NR ? nb - jr : GEMM_NR;
                    const float *pb =
                        direct_b ? b + pc * ldb + jc + jr
                                 : pb_buf + (jr / GEMM_NR) * kc * GEMM_NR;
                    micro_kernel(direct_a, direct_b, kc, pa, ars, aps, pb, ldb,
                                 crow + jr, ldc, mb, w, alpha, beta, pc == 0);
                }
            }
        }
    }
}

#else /* not x86-64 GCC/Clang: never chosen */

int nncrt_have_avx512(void) { return 0; }

void nncrt_sgemm_avx512(int ta, int tb, int64_t m, int64_t n, int64_t k,
                        float alpha, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c,
                        int64_t ldc)
{
    nncrt_sgemm_small(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#endif
