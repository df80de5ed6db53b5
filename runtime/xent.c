/* xent.c — the lowering of the fused softmax + cross entropy (the loss
 * and its gradient in one pass over the logits; docs/fusion.md).
 *
 * Per row: the max, then e^(x - max) written into dlogits (which is the
 * output, so no scratch is needed) while summing, then the row scaled by
 * scale / sum and scale subtracted at the target.  The row's loss
 * log(sum) + max - x[target] is taken in double.  Every target is checked
 * before anything is written.
 *
 * Rows are grouped into at most XENT_MAX_CHUNKS chunks whose size depends
 * only on n; a chunk's losses are summed in row order, the chunks' sums
 * in chunk order on the caller, so the loss has the same bits for any
 * thread count (as nnc_sum_squares in optim.c).  dlogits may be logits
 * (in place): each element is read before it is overwritten.  dlogits or
 * loss may be NULL when not wanted.
 */
#include <math.h>

#include "internal.h"
#include "kernel_math.h"

#define XENT_MAX_CHUNKS   1024
#define XENT_PARALLEL_MIN 32768 /* logits */
#define LANES             16

typedef struct Xent {
    const float *x;
    const int32_t *t;
    float *d;
    float scale;
    int64_t n, c, rows_per_chunk;
    double *partial;
} Xent;

NNCRT_INLINE float row_max(const float *restrict x, int64_t c)
{
    float mx[LANES];
    for (int l = 0; l < LANES; l++)
        mx[l] = -INFINITY;
    int64_t j = 0;
    for (; j + LANES <= c; j += LANES)
        for (int l = 0; l < LANES; l++)
            mx[l] = x[j + l] > mx[l] ? x[j + l] : mx[l];
    for (int l = 0; j < c; j++, l++)
        mx[l] = x[j] > mx[l] ? x[j] : mx[l];
    float r = mx[0];
    for (int l = 1; l < LANES; l++)
        r = mx[l] > r ? mx[l] : r;
    return r;
}

/* sum of e^(x[j] - m), also stored into d[j] when d is not NULL.  d may
 * equal x, so neither is restrict. */
NNCRT_INLINE double row_exp_sum(const float *x, float *d, int64_t c, float m)
{
    double acc[LANES] = {0};
    int64_t j = 0;
    if (d) {
        for (; j + LANES <= c; j += LANES)
            for (int l = 0; l < LANES; l++) {
                float e = nncrt_expf(x[j + l] - m);
                d[j + l] = e;
                acc[l] += e;
            }
        for (int l = 0; j < c; j++, l++) {
            float e = nncrt_expf(x[j] - m);
            d[j] = e;
            acc[l] += e;
        }
    } else {
        for (; j + LANES <= c; j += LANES)
            for (int l = 0; l < LANES; l++)
                acc[l] += nncrt_expf(x[j + l] - m);
        for (int l = 0; j < c; j++, l++)
            acc[l] += nncrt_expf(x[j] - m);
    }
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++)
            acc[l] += acc[l + w];
    return acc[0];
}

NNCRT_CLONES static void xent_range(void *ctx, int64_t begin, int64_t end)
{
    const Xent *X = ctx;
    const int64_t c = X->c;
    for (int64_t ch = begin; ch < end; ch++) {
        int64_t r0 = ch * X->rows_per_chunk;
        int64_t r1 =
            r0 + X->rows_per_chunk < X->n ? r0 + X->rows_per_chunk : X->n;
        double total = 0.0;
        for (int64_t r = r0; r < r1; r++) {
            const float *x = X->x + r * c;
            float *d = X->d ? X->d + r * c : NULL;
            int32_t t = X->t[r];
            float xt = x[t], mx = row_max(x, c);
            double sum = row_exp_sum(x, d, c, mx);
            total += log(sum) + (double)mx - (double)xt;
            if (d) {
                float k = (float)(X->scale / sum);
                for (int64_t j = 0; j < c; j++)
                    d[j] *= k;
                d[t] -= X->scale;
            }
        }
        X->partial[ch] = total;
    }
}

int nnc_softmax_xent(const float *logits, const int32_t *targets, float scale,
                     float *loss, float *dlogits, int64_t n, int64_t c)
{
    for (int64_t r = 0; r < n; r++)
        if (targets[r] < 0 || targets[r] >= c)
            return nnc_rt_set_error(
                NNC_ERR_RANGE,
                "cross_entropy: target %d at position %lld is outside 0..%lld",
                (int)targets[r], (long long)r, (long long)(c - 1));
    if (n <= 0) {
        if (loss)
            *loss = NAN; /* torch: the mean of nothing */
        return NNC_OK;
    }
    double partial[XENT_MAX_CHUNKS];
    int64_t rows = (n + XENT_MAX_CHUNKS - 1) / XENT_MAX_CHUNKS;
    int64_t chunks = (n + rows - 1) / rows;
    Xent X = {.x = logits,
              .t = targets,
              .d = dlogits,
              .scale = scale,
              .n = n,
              .c = c,
              .rows_per_chunk = rows,
              .partial = partial};
    if (chunks > 1 && n * c >= XENT_PARALLEL_MIN)
        nnc_parallel_for(chunks, xent_range, &X);
    else
        xent_range(&X, 0, chunks);
    double total = 0.0;
    for (int64_t ch = 0; ch < chunks; ch++)
        total += partial[ch];
    if (loss)
        *loss = (float)(total / (double)n);
    return NNC_OK;
}
