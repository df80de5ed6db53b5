/* optim.c — the optimizer kernels that a generated NAME_update calls: the
 * squared L2 norm of a gradient and its scaling (for clip_grad_norm), and
 * one step of SGD or Adam/AdamW on one parameter tensor, computed as
 * torch.optim's single-tensor path does: the per-step scalars (bias
 * corrections, step size, decay factor) in double, the element arithmetic
 * in float, operation by operation in torch's order.
 *
 * The element loops are plain restrict-qualified loops that the compiler
 * vectorises (the build gives this file -O3 -fno-math-errno, so sqrtf is
 * one instruction).  A tensor of at least OPTIM_PARALLEL_MIN elements is
 * split over the thread pool.  Every element is computed the same way on
 * any thread, and the sum of squares adds per-chunk partial sums in a fixed
 * order over a partition that depends only on n, so every result is
 * bit-identical for any thread count.
 */
#include <math.h>

#include "internal.h"

/* Tensors below this many elements are updated on the calling thread:
 * waking the pool costs microseconds, more than such a loop. */
#define OPTIM_PARALLEL_MIN 32768
/* Sum of squares: at most this many partial sums (held on the stack), each
 * over at least SUMSQ_MIN_CHUNK elements. */
#define SUMSQ_MAX_CHUNKS 1024
#define SUMSQ_MIN_CHUNK  16384

static void run_range(int64_t n, nnc_range_fn fn, void *ctx)
{
    if (n >= OPTIM_PARALLEL_MIN)
        nnc_parallel_for(n, fn, ctx);
    else if (n > 0)
        fn(ctx, 0, n);
}

/* ---- sum of squares ------------------------------------------------------ */

typedef struct SumSq {
    const float *x;
    int64_t n, chunk;
    double *partial; /* [chunk index] */
} SumSq;

/* Eight accumulators, combined in a fixed order: the loop vectorises and
 * the result does not depend on who runs it. */
static double sum_squares_serial(const float *restrict x, int64_t n)
{
    double acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)x[i + k] * (double)x[i + k];
    for (int k = 0; i < n; i++, k++)
        acc[k] += (double)x[i] * (double)x[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
           ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static void sum_squares_chunks(void *ctx, int64_t begin, int64_t end)
{
    SumSq *s = ctx;
    for (int64_t c = begin; c < end; c++) {
        int64_t lo = c * s->chunk;
        int64_t hi = lo + s->chunk < s->n ? lo + s->chunk : s->n;
        s->partial[c] = sum_squares_serial(s->x + lo, hi - lo);
    }
}

double nnc_sum_squares(const float *x, int64_t n)
{
    if (!x || n <= 0)
        return 0.0;
    double partial[SUMSQ_MAX_CHUNKS];
    int64_t chunk = (n + SUMSQ_MAX_CHUNKS - 1) / SUMSQ_MAX_CHUNKS;
    if (chunk < SUMSQ_MIN_CHUNK)
        chunk = SUMSQ_MIN_CHUNK;
    int64_t chunks = (n + chunk - 1) / chunk;
    SumSq s = {x, n, chunk, partial};
    if (n >= OPTIM_PARALLEL_MIN && chunks > 1)
        nnc_parallel_for(chunks, sum_squares_chunks, &s);
    else
        sum_squares_chunks(&s, 0, chunks);
    double total = 0.0;
    for (int64_t c = 0; c < chunks; c++)
        total += partial[c];
    return total;
}

/* ---- scaling ------------------------------------------------------------- */

typedef struct Scale {
    float *x;
    float s;
} Scale;

static void scale_range(void *ctx, int64_t begin, int64_t end)
{
    const Scale *j = ctx;
    float *restrict x = j->x;
    float s = j->s;
    for (int64_t i = begin; i < end; i++)
        x[i] *= s;
}

void nnc_scale(float *x, int64_t n, float s)
{
    if (!x)
        return;
    Scale j = {x, s};
    run_range(n, scale_range, &j);
}

/* ---- SGD ----------------------------------------------------------------- */

typedef struct Sgd {
    float *param;
    const float *grad;
    float *buf;
    float neg_lr, momentum, weight_decay;
    int nesterov, first;
} Sgd;

/* torch: d = g (+ wd*p); buf = d on the first step, else buf*mu + d;
 * d = d + mu*buf (nesterov) or buf; p += -lr*d.  Dampening is 0. */
static void sgd_range(void *ctx, int64_t begin, int64_t end)
{
    const Sgd *j = ctx;
    float *restrict p = j->param;
    const float *restrict g = j->grad;
    float *restrict buf = j->buf;
    const float wd = j->weight_decay, mu = j->momentum, neg_lr = j->neg_lr;
    for (int64_t i = begin; i < end; i++) {
        float d = g[i];
        if (wd != 0.0f)
            d = d + wd * p[i];
        if (mu != 0.0f) {
            float b = j->first ? d : buf[i] * mu + d;
            buf[i] = b;
            d = j->nesterov ? d + mu * b : b;
        }
        p[i] = p[i] + neg_lr * d;
    }
}

void nnc_sgd_step(float *param, const float *grad, float *momentum_buffer,
                  int64_t n, double lr, double momentum, double weight_decay,
                  int nesterov, int64_t step)
{
    if (!param || !grad || (momentum != 0.0 && !momentum_buffer))
        return;
    Sgd j = {.param = param,
             .grad = grad,
             .buf = momentum_buffer,
             .neg_lr = (float)-lr,
             .momentum = (float)momentum,
             .weight_decay = (float)weight_decay,
             .nesterov = nesterov != 0,
             .first = step <= 1};
    run_range(n, sgd_range, &j);
}

/* ---- Adam, AdamW --------------------------------------------------------- */

typedef struct Adam {
    float *param;
    const float *grad;
    float *exp_avg, *exp_avg_sq;
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float l2, decay; /* Adam's L2 weight decay; AdamW's factor 1 - lr*wd */
    float bc2_sqrt, eps, neg_step_size;
} Adam;

/* torch 1.13 single-tensor Adam/AdamW, operation by operation:
 * p *= 1 - lr*wd (AdamW); g += wd*p (Adam); m = m*b1 + (1-b1)*g;
 * v = v*b2 + (1-b2)*g*g; p += -step_size * m / (sqrt(v)/sqrt(bc2) + eps). */
static void adam_range(void *ctx, int64_t begin, int64_t end)
{
    const Adam *j = ctx;
    float *restrict p = j->param;
    const float *restrict g = j->grad;
    float *restrict m = j->exp_avg;
    float *restrict v = j->exp_avg_sq;
    const float b1 = j->beta1, c1 = j->one_minus_beta1, b2 = j->beta2,
                c2 = j->one_minus_beta2, l2 = j->l2, decay = j->decay,
                bc2 = j->bc2_sqrt, eps = j->eps, nss = j->neg_step_size;
    for (int64_t i = begin; i < end; i++) {
        float pi = p[i];
        if (decay != 1.0f)
            pi = pi * decay;
        float gi = g[i];
        if (l2 != 0.0f)
            gi = gi + l2 * pi;
        float mi = m[i] * b1 + c1 * gi;
        float vi = v[i] * b2 + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2 + eps;
        p[i] = pi + nss * (mi / denom);
    }
}

void nnc_adam_step(float *param, const float *grad, float *exp_avg,
                   float *exp_avg_sq, int64_t n, double lr, double beta1,
                   double beta2, double eps, double weight_decay, int decoupled,
                   int64_t step)
{
    if (!param || !grad || !exp_avg || !exp_avg_sq || step < 1)
        return;
    double bc1 = 1.0 - pow(beta1, (double)step);
    double bc2 = 1.0 - pow(beta2, (double)step);
    Adam j = {.param = param,
              .grad = grad,
              .exp_avg = exp_avg,
              .exp_avg_sq = exp_avg_sq,
              .beta1 = (float)beta1,
              .one_minus_beta1 = (float)(1.0 - beta1),
              .beta2 = (float)beta2,
              .one_minus_beta2 = (float)(1.0 - beta2),
              .l2 = decoupled ? 0.0f : (float)weight_decay,
              .decay = decoupled ? (float)(1.0 - lr * weight_decay) : 1.0f,
              .bc2_sqrt = (float)sqrt(bc2),
              .eps = (float)eps,
              .neg_step_size = (float)-(lr / bc1)};
    run_range(n, adam_range, &j);
}
