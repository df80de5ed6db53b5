/* attention.c — the lowering of the fused attention op (passes/
 * fuse_attention.c builds it; docs/fusion.md): o = softmax(mask(q k^T *
 * scale)) v per (batch, head) slice, and its gradient.
 *
 * Forward (FlashAttention, Dao et al. 2022): a block of up to 64 query
 * rows meets the keys 64 at a time.  The 64 x 64 score tile lives on the
 * stack; each row keeps a running max m and sum l, and its output row,
 * written in place in o, is rescaled by e^(m_old - m_new) whenever the max
 * grows, then divided by l at the end.  No tq x tk matrix is ever stored
 * and nothing is allocated.  Under `causal`, key j > query i is masked and
 * key blocks entirely above the diagonal are skipped.
 *
 * Backward recomputes the probabilities: per query block, one pass over
 * the keys gives each row's log-sum-exp, then per key block
 * p = e^(s - lse), dv += p^T go, dp = go v^T, ds = p (dp - D) scale with
 * D_i = go_i . o_i, dq += ds k, dk += ds^T q.
 *
 * Products are register-blocked tiles (4 rows x 32 columns of
 * accumulators in GCC vector types): score(i, j) = sum over c of a[i, c]
 * b[j, c] with a 64-column slice of b transposed onto the stack, and block
 * updates Y += W X over the contiguous feature axis, W read through
 * strides so p^T and ds^T need no copy.  Every sum is taken in an order that depends
 * only on the shapes, and every output element is written by one task
 * (forward: one (slice, query block); backward: one slice, since dk and dv
 * sum over all query rows), so results are bit-identical for any thread
 * count.
 */
#include <math.h>

#include "internal.h"
#include "kernel_math.h"

#define TILE  64 /* query rows and keys per block */
#define KCHNK 64 /* feature columns transposed at a time */
#define LANES 16
/* Below this many multiply-adds the pool's wake-up costs more than it
 * saves. */
#define ATTN_PARALLEL_MIN 65536

typedef float Tile[TILE][TILE] __attribute__((aligned(64)));
/* 16 floats; unaligned loads and stores through it are fine.  Each clone
 * maps it onto its registers (one zmm, two ymm or four xmm). */
typedef float v16 __attribute__((vector_size(64), aligned(4)));

/* out[i][j] = sum over c < kdim, in order, of a[i*lda + c] * b[j*ldb + c]
 * for i < m, j < TILE (m <= TILE, nb <= TILE keys; columns nb.. are 0).
 * A 64-column slice of b is transposed onto the stack, then 4 rows x 32
 * keys are accumulated in registers. */
NNCRT_INLINE void tile_abt(const float *restrict a, int64_t lda, int64_t m,
                           const float *restrict b, int64_t ldb, int64_t nb,
                           int64_t kdim, Tile out)
{
    float bt[KCHNK][TILE] __attribute__((aligned(64)));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < TILE; j++)
            out[i][j] = 0.0f;
    for (int64_t c0 = 0; c0 < kdim; c0 += KCHNK) {
        int64_t cn = kdim - c0 < KCHNK ? kdim - c0 : KCHNK;
        for (int64_t j = 0; j < nb; j++)
            for (int64_t c = 0; c < cn; c++)
                bt[c][j] = b[j * ldb + c0 + c];
        for (int64_t c = 0; c < cn; c++)
            for (int64_t j = nb; j < TILE; j++)
                bt[c][j] = 0.0f;
        int64_t i = 0;
        for (; i + 4 <= m; i += 4) {
            const float *a0 = a + i * lda + c0, *a1 = a0 + lda;
            const float *a2 = a1 + lda, *a3 = a2 + lda;
            for (int jb = 0; jb < TILE; jb += 32) {
                v16 r00 = *(v16 *)&out[i][jb], r01 = *(v16 *)&out[i][jb + 16];
                v16 r10 = *(v16 *)&out[i + 1][jb];
                v16 r11 = *(v16 *)&out[i + 1][jb + 16];
                v16 r20 = *(v16 *)&out[i + 2][jb];
                v16 r21 = *(v16 *)&out[i + 2][jb + 16];
                v16 r30 = *(v16 *)&out[i + 3][jb];
                v16 r31 = *(v16 *)&out[i + 3][jb + 16];
                for (int64_t c = 0; c < cn; c++) {
                    v16 b0 = *(const v16 *)&bt[c][jb];
                    v16 b1 = *(const v16 *)&bt[c][jb + 16];
                    float x0 = a0[c], x1 = a1[c];
                    float x2 = a2[c], x3 = a3[c];
                    r00 += x0 * b0, r01 += x0 * b1;
                    r10 += x1 * b0, r11 += x1 * b1;
                    r20 += x2 * b0, r21 += x2 * b1;
                    r30 += x3 * b0, r31 += x3 * b1;
                }
                *(v16 *)&out[i][jb] = r00, *(v16 *)&out[i][jb + 16] = r01;
                *(v16 *)&out[i + 1][jb] = r10;
                *(v16 *)&out[i + 1][jb + 16] = r11;
                *(v16 *)&out[i + 2][jb] = r20;
                *(v16 *)&out[i + 2][jb + 16] = r21;
                *(v16 *)&out[i + 3][jb] = r30;
                *(v16 *)&out[i + 3][jb + 16] = r31;
            }
        }
        for (; i < m; i++) {
            const float *a0 = a + i * lda + c0;
            for (int jb = 0; jb < TILE; jb += 32) {
                v16 r0 = *(v16 *)&out[i][jb], r1 = *(v16 *)&out[i][jb + 16];
                for (int64_t c = 0; c < cn; c++) {
                    float x0 = a0[c];
                    r0 += x0 * *(const v16 *)&bt[c][jb];
                    r1 += x0 * *(const v16 *)&bt[c][jb + 16];
                }
                *(v16 *)&out[i][jb] = r0, *(v16 *)&out[i][jb + 16] = r1;
            }
        }
    }
}

/* y[i*ldy + c] += sum over j < nj, in order, of w[i*wr + j*wc] *
 * x[j*ldx + c] for i < m, c < len: a block product with W read through
 * strides (so W can be a tile or its transpose).  4 rows x 32 columns in
 * registers; the last columns one at a time, in the same order. */
NNCRT_INLINE void gemm_acc(float *restrict y, int64_t ldy, int64_t m,
                           int64_t len, const float *restrict w, int64_t wr,
                           int64_t wc, int64_t nj, const float *restrict x,
                           int64_t ldx)
{
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
        float *y0 = y + i * ldy, *y1 = y0 + ldy, *y2 = y1 + ldy;
        float *y3 = y2 + ldy;
        const float *w0 = w + i * wr, *w1 = w0 + wr, *w2 = w1 + wr;
        const float *w3 = w2 + wr;
        int64_t c = 0;
        for (; c + 32 <= len; c += 32) {
            v16 r00 = *(v16 *)&y0[c], r01 = *(v16 *)&y0[c + 16];
            v16 r10 = *(v16 *)&y1[c], r11 = *(v16 *)&y1[c + 16];
            v16 r20 = *(v16 *)&y2[c], r21 = *(v16 *)&y2[c + 16];
            v16 r30 = *(v16 *)&y3[c], r31 = *(v16 *)&y3[c + 16];
            for (int64_t j = 0; j < nj; j++) {
                v16 b0 = *(const v16 *)&x[j * ldx + c];
                v16 b1 = *(const v16 *)&x[j * ldx + c + 16];
                float x0 = w0[j * wc], x1 = w1[j * wc];
                float x2 = w2[j * wc], x3 = w3[j * wc];
                r00 += x0 * b0, r01 += x0 * b1;
                r10 += x1 * b0, r11 += x1 * b1;
                r20 += x2 * b0, r21 += x2 * b1;
                r30 += x3 * b0, r31 += x3 * b1;
            }
            *(v16 *)&y0[c] = r00, *(v16 *)&y0[c + 16] = r01;
            *(v16 *)&y1[c] = r10, *(v16 *)&y1[c + 16] = r11;
            *(v16 *)&y2[c] = r20, *(v16 *)&y2[c + 16] = r21;
            *(v16 *)&y3[c] = r30, *(v16 *)&y3[c + 16] = r31;
        }
        for (; c + 16 <= len; c += 16) {
            v16 r0 = *(v16 *)&y0[c], r1 = *(v16 *)&y1[c];
            v16 r2 = *(v16 *)&y2[c], r3 = *(v16 *)&y3[c];
            for (int64_t j = 0; j < nj; j++) {
                v16 b0 = *(const v16 *)&x[j * ldx + c];
                r0 += (w0[j * wc]) * b0, r1 += (w1[j * wc]) * b0;
                r2 += (w2[j * wc]) * b0, r3 += (w3[j * wc]) * b0;
            }
            *(v16 *)&y0[c] = r0, *(v16 *)&y1[c] = r1;
            *(v16 *)&y2[c] = r2, *(v16 *)&y3[c] = r3;
        }
        for (; c < len; c++)
            for (int64_t j = 0; j < nj; j++) {
                float b0 = x[j * ldx + c];
                y0[c] += w0[j * wc] * b0, y1[c] += w1[j * wc] * b0;
                y2[c] += w2[j * wc] * b0, y3[c] += w3[j * wc] * b0;
            }
    }
    for (; i < m; i++) {
        float *y0 = y + i * ldy;
        const float *w0 = w + i * wr;
        int64_t c = 0;
        for (; c + 16 <= len; c += 16) {
            v16 r0 = *(v16 *)&y0[c];
            for (int64_t j = 0; j < nj; j++)
                r0 += (w0[j * wc]) * *(const v16 *)&x[j * ldx + c];
            *(v16 *)&y0[c] = r0;
        }
        for (; c < len; c++)
            for (int64_t j = 0; j < nj; j++)
                y0[c] += w0[j * wc] * x[j * ldx + c];
    }
}

/* sum of x[c] y[c] in LANES partial sums combined in a fixed order. */
NNCRT_INLINE float dot(const float *restrict x, const float *restrict y,
                       int64_t n)
{
    float acc[LANES] = {0};
    int64_t c = 0;
    for (; c + LANES <= n; c += LANES)
        for (int l = 0; l < LANES; l++)
            acc[l] += x[c + l] * y[c + l];
    for (int l = 0; c < n; c++, l++)
        acc[l] += x[c] * y[c];
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++)
            acc[l] += acc[l + w];
    return acc[0];
}

/* Scales row s[0..n) by `scale` in place and returns max(m, its max).
 * Masked keys are never in the row: callers pass the visible count. */
NNCRT_INLINE float row_scale_max(float *restrict s, int64_t n, float scale,
                                 float m)
{
    float mx[LANES];
    for (int l = 0; l < LANES; l++)
        mx[l] = m;
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++) {
            float v = s[j + l] * scale;
            s[j + l] = v;
            mx[l] = v > mx[l] ? v : mx[l];
        }
    for (int l = 0; j < n; j++, l++) {
        float v = s[j] * scale;
        s[j] = v;
        mx[l] = v > mx[l] ? v : mx[l];
    }
    float r = mx[0];
    for (int l = 1; l < LANES; l++)
        r = mx[l] > r ? mx[l] : r;
    return r;
}

/* s[j] = e^(s[j] - m) for j < n; returns their sum (fixed order). */
NNCRT_INLINE float row_exp_sum(float *restrict s, int64_t n, float m)
{
    float acc[LANES] = {0};
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++) {
            float e = nncrt_expf(s[j + l] - m);
            s[j + l] = e;
            acc[l] += e;
        }
    for (int l = 0; j < n; j++, l++) {
        float e = nncrt_expf(s[j] - m);
        s[j] = e;
        acc[l] += e;
    }
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++)
            acc[l] += acc[l + w];
    return acc[0];
}

/* Keys a query row sees in the block starting at j0 (bk keys). */
static inline int64_t visible_keys(int causal, int64_t i, int64_t j0,
                                   int64_t bk)
{
    if (!causal)
        return bk;
    int64_t n = i - j0 + 1;
    return n < 0 ? 0 : n < bk ? n : bk;
}

typedef struct Attn {
    const float *q, *k, *v, *o, *go;
    float *out, *dq, *dk, *dv;
    int64_t bh, tq, tk, d, dv_dim, qblocks;
    float scale;
    int causal;
} Attn;

/* ---- forward ------------------------------------------------------------- */

/* Tasks t = slice * qblocks + query block. */
NNCRT_CLONES static void attn_fwd_range(void *ctx, int64_t begin, int64_t end)
{
    const Attn *A = ctx;
    const int64_t tq = A->tq, tk = A->tk, d = A->d, dvd = A->dv_dim;
    Tile s;
    float m[TILE], l[TILE];
    for (int64_t t = begin; t < end; t++) {
        int64_t b = t / A->qblocks, i0 = t % A->qblocks * TILE;
        int64_t bq = tq - i0 < TILE ? tq - i0 : TILE;
        const float *q = A->q + (b * tq + i0) * d;
        const float *k = A->k + b * tk * d;
        const float *v = A->v + b * tk * dvd;
        float *o = A->out + (b * tq + i0) * dvd;
        for (int64_t i = 0; i < bq * dvd; i++)
            o[i] = 0.0f;
        for (int64_t i = 0; i < bq; i++) {
            m[i] = -INFINITY;
            l[i] = 0.0f;
        }
        int64_t jend = A->causal && i0 + bq < tk ? i0 + bq : tk;
        for (int64_t j0 = 0; j0 < jend; j0 += TILE) {
            int64_t bk = tk - j0 < TILE ? tk - j0 : TILE;
            tile_abt(q, d, bq, k + j0 * d, d, bk, d, s);
            for (int64_t i = 0; i < bq; i++) {
                int64_t nj = visible_keys(A->causal, i0 + i, j0, bk);
                float *restrict si = s[i];
                for (int64_t j = nj; j < bk; j++)
                    si[j] = 0.0f; /* masked: no weight */
                if (nj == 0)
                    continue;
                float mx = row_scale_max(si, nj, A->scale, m[i]);
                float alpha = nncrt_expf(m[i] - mx);
                float sum = row_exp_sum(si, nj, mx);
                l[i] = l[i] * alpha + sum;
                m[i] = mx;
                float *restrict orow = o + i * dvd;
                if (alpha != 1.0f)
                    for (int64_t c = 0; c < dvd; c++)
                        orow[c] *= alpha;
            }
            gemm_acc(o, dvd, bq, dvd, &s[0][0], TILE, 1, bk, v + j0 * dvd, dvd);
        }
        for (int64_t i = 0; i < bq; i++) {
            float inv = 1.0f / l[i];
            float *restrict orow = o + i * dvd;
            for (int64_t c = 0; c < dvd; c++)
                orow[c] *= inv;
        }
    }
}

static int64_t attn_flops(int64_t bh, int64_t tq, int64_t tk, int64_t d,
                          int64_t dv)
{
    return bh * tq * tk * (d + dv);
}

void nnc_attention_fwd(const float *q, const float *k, const float *v, float *o,
                       int64_t bh, int64_t tq, int64_t tk, int64_t d,
                       int64_t dv, float scale, int causal)
{
    if (bh <= 0 || tq <= 0 || dv <= 0)
        return;
    if (tk <= 0) { /* softmax over no keys, times an empty v: zeros */
        for (int64_t i = 0; i < bh * tq * dv; i++)
            o[i] = 0.0f;
        return;
    }
    int64_t qblocks = (tq + TILE - 1) / TILE;
    Attn A = {.q = q,
              .k = k,
              .v = v,
              .out = o,
              .bh = bh,
              .tq = tq,
              .tk = tk,
              .d = d,
              .dv_dim = dv,
              .qblocks = qblocks,
              .scale = scale,
              .causal = causal};
    int64_t tasks = bh * qblocks;
    if (tasks > 1 && attn_flops(bh, tq, tk, d, dv) >= ATTN_PARALLEL_MIN)
        nnc_parallel_for(tasks, attn_fwd_range, &A);
    else
        attn_fwd_range(&A, 0, tasks);
}

/* ---- backward ------------------------------------------------------------ */

NNCRT_CLONES static void attn_bwd_range(void *ctx, int64_t begin, int64_t end)
{
    const Attn *A = ctx;
    const int64_t tq = A->tq, tk = A->tk, d = A->d, dvd = A->dv_dim;
    const float scale = A->scale;
    Tile s, dp;
    float m[TILE], l[TILE], lse[TILE], D[TILE];
    for (int64_t b = begin; b < end; b++) {
        const float *k = A->k + b * tk * d;
        const float *v = A->v + b * tk * dvd;
        float *dk = A->dk + b * tk * d, *dv = A->dv + b * tk * dvd;
        for (int64_t i = 0; i < tk * d; i++)
            dk[i] = 0.0f;
        for (int64_t i = 0; i < tk * dvd; i++)
            dv[i] = 0.0f;
        for (int64_t i0 = 0; i0 < tq; i0 += TILE) {
            int64_t bq = tq - i0 < TILE ? tq - i0 : TILE;
            const float *q = A->q + (b * tq + i0) * d;
            const float *o = A->o + (b * tq + i0) * dvd;
            const float *go = A->go + (b * tq + i0) * dvd;
            float *dq = A->dq + (b * tq + i0) * d;
            for (int64_t i = 0; i < bq * d; i++)
                dq[i] = 0.0f;
            int64_t jend = A->causal && i0 + bq < tk ? i0 + bq : tk;
            /* pass 1: each row's log-sum-exp */
            for (int64_t i = 0; i < bq; i++) {
                m[i] = -INFINITY;
                l[i] = 0.0f;
                D[i] = dot(go + i * dvd, o + i * dvd, dvd);
            }
            for (int64_t j0 = 0; j0 < jend; j0 += TILE) {
                int64_t bk = tk - j0 < TILE ? tk - j0 : TILE;
                tile_abt(q, d, bq, k + j0 * d, d, bk, d, s);
                for (int64_t i = 0; i < bq; i++) {
                    int64_t nj = visible_keys(A->causal, i0 + i, j0, bk);
                    if (nj == 0)
                        continue;
                    float mx = row_scale_max(s[i], nj, scale, m[i]);
                    float sum = row_exp_sum(s[i], nj, mx);
                    l[i] = l[i] * nncrt_expf(m[i] - mx) + sum;
                    m[i] = mx;
                }
            }
            for (int64_t i = 0; i < bq; i++)
                lse[i] = m[i] + logf(l[i]);
            /* pass 2: the gradients, block by block */
            for (int64_t j0 = 0; j0 < jend; j0 += TILE) {
                int64_t bk = tk - j0 < TILE ? tk - j0 : TILE;
                tile_abt(q, d, bq, k + j0 * d, d, bk, d, s);
                tile_abt(go, dvd, bq, v + j0 * dvd, dvd, bk, dvd, dp);
                for (int64_t i = 0; i < bq; i++) {
                    int64_t nj = visible_keys(A->causal, i0 + i, j0, bk);
                    float *restrict si = s[i], *restrict di = dp[i];
                    float li = lse[i], Di = D[i];
                    for (int64_t j = 0; j < nj; j++) {
                        float p = nncrt_expf(si[j] * scale - li);
                        si[j] = p;
                        di[j] = p * (di[j] - Di) * scale;
                    }
                    for (int64_t j = nj; j < bk; j++) {
                        si[j] = 0.0f;
                        di[j] = 0.0f;
                    }
                }
                /* dq += ds k, dv += p^T go, dk += ds^T q (masked entries
                 * are 0) */
                gemm_acc(dq, d, bq, d, &dp[0][0], TILE, 1, bk, k + j0 * d, d);
                gemm_acc(dv + j0 * dvd, dvd, bk, dvd, &s[0][0], 1, TILE, bq, go,
                         dvd);
                gemm_acc(dk + j0 * d, d, bk, d, &dp[0][0], 1, TILE, bq, q, d);
            }
        }
    }
}

void nnc_attention_bwd(const float *q, const float *k, const float *v,
                       const float *o, const float *go, float *dq, float *dk,
                       float *dv, int64_t bh, int64_t tq, int64_t tk, int64_t d,
                       int64_t dvdim, float scale, int causal)
{
    if (bh <= 0)
        return;
    for (int64_t i = 0; tk <= 0 && i < bh * tq * d; i++)
        dq[i] = 0.0f; /* no keys: nothing depends on q */
    if (tq <= 0 || tk <= 0) {
        for (int64_t i = 0; i < bh * tk * d; i++)
            dk[i] = 0.0f;
        for (int64_t i = 0; i < bh * tk * dvdim; i++)
            dv[i] = 0.0f;
        return;
    }
    Attn A = {.q = q,
              .k = k,
              .v = v,
              .o = o,
              .go = go,
              .dq = dq,
              .dk = dk,
              .dv = dv,
              .bh = bh,
              .tq = tq,
              .tk = tk,
              .d = d,
              .dv_dim = dvdim,
              .scale = scale,
              .causal = causal};
    if (bh > 1 && 2 * attn_flops(bh, tq, tk, d, dvdim) >= ATTN_PARALLEL_MIN)
        nnc_parallel_for(bh, attn_bwd_range, &A);
    else
        attn_bwd_range(&A, 0, bh);
}
