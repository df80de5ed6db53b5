/* lstm.c — the pointwise part of the fused LSTM cell (passes/fuse_lstm.c
 * builds it; docs/fusion.md), forward and backward.  The gate matmuls are
 * ordinary GEMMs before and after; this is everything between them, one
 * pass over the rows instead of a dozen elementwise ops.
 *
 * A row of z holds the pre-activations of the gates i, f, g, o at column
 * offsets 0, h, 2h, 3h.  sigmoid(x) = 1 / (1 + e^-x) with the vectorisable
 * nncrt_expf, tanh with nncrt_tanhf (both vectorise; kernel_math.h).  A
 * row is handled 64 columns at a time
 * with the gate values in stack arrays, so the sigmoid loops vectorise
 * and every input is read before any output of the chunk is written (dc
 * may be dc_out, c_out may be c).  Rows are independent: large inputs are
 * split by rows over the pool, each row computed the same way on any
 * thread, so the results do not depend on the thread count.
 */
#include <math.h>

#include "internal.h"
#include "kernel_math.h"

#define LSTM_CHUNK        64
#define LSTM_PARALLEL_MIN 32768 /* elements of h_out */

typedef struct Lstm {
    const float *z, *c, *dh, *dc_out;
    float *h_out, *c_out, *dz, *dc;
    int64_t h;
} Lstm;

/* si, sf, so = sigmoid of gates i, f, o; tg = tanh(g), for cn columns. */
NNCRT_INLINE void gates(const float *zrow, int64_t h, int64_t cn,
                        float *restrict si, float *restrict sf,
                        float *restrict so, float *restrict tg)
{
    const float *zi = zrow, *zf = zrow + h, *zg = zrow + 2 * h;
    const float *zo = zrow + 3 * h;
    for (int64_t j = 0; j < cn; j++) {
        si[j] = 1.0f / (1.0f + nncrt_expf(-zi[j]));
        sf[j] = 1.0f / (1.0f + nncrt_expf(-zf[j]));
        so[j] = 1.0f / (1.0f + nncrt_expf(-zo[j]));
    }
    for (int64_t j = 0; j < cn; j++)
        tg[j] = nncrt_tanhf(zg[j]);
}

NNCRT_CLONES static void lstm_fwd_range(void *ctx, int64_t begin, int64_t end)
{
    const Lstm *L = ctx;
    const int64_t h = L->h;
    float si[LSTM_CHUNK], sf[LSTM_CHUNK], so[LSTM_CHUNK], tg[LSTM_CHUNK];
    float cn_[LSTM_CHUNK];
    for (int64_t r = begin; r < end; r++) {
        for (int64_t c0 = 0; c0 < h; c0 += LSTM_CHUNK) {
            int64_t cn = h - c0 < LSTM_CHUNK ? h - c0 : LSTM_CHUNK;
            const float *c = L->c + r * h + c0;
            gates(L->z + r * 4 * h + c0, h, cn, si, sf, so, tg);
            for (int64_t j = 0; j < cn; j++)
                cn_[j] = sf[j] * c[j] + si[j] * tg[j];
            float *hout = L->h_out + r * h + c0, *cout = L->c_out + r * h + c0;
            for (int64_t j = 0; j < cn; j++) {
                cout[j] = cn_[j];
                hout[j] = so[j] * nncrt_tanhf(cn_[j]);
            }
        }
    }
}

NNCRT_CLONES static void lstm_bwd_range(void *ctx, int64_t begin, int64_t end)
{
    const Lstm *L = ctx;
    const int64_t h = L->h;
    float si[LSTM_CHUNK], sf[LSTM_CHUNK], so[LSTM_CHUNK], tg[LSTM_CHUNK];
    float tc[LSTM_CHUNK], cp[LSTM_CHUNK], gh[LSTM_CHUNK], gc[LSTM_CHUNK];
    float cv[LSTM_CHUNK];
    for (int64_t r = begin; r < end; r++) {
        for (int64_t c0 = 0; c0 < h; c0 += LSTM_CHUNK) {
            int64_t cn = h - c0 < LSTM_CHUNK ? h - c0 : LSTM_CHUNK;
            const float *c = L->c + r * h + c0;
            gates(L->z + r * 4 * h + c0, h, cn, si, sf, so, tg);
            for (int64_t j = 0; j < cn; j++) {
                cv[j] = c[j];
                cp[j] = sf[j] * c[j] + si[j] * tg[j];
                gh[j] = L->dh ? L->dh[r * h + c0 + j] : 0.0f;
                gc[j] = L->dc_out ? L->dc_out[r * h + c0 + j] : 0.0f;
            }
            for (int64_t j = 0; j < cn; j++)
                tc[j] = nncrt_tanhf(cp[j]);
            float *dzi = L->dz + r * 4 * h + c0, *dzf = dzi + h;
            float *dzg = dzi + 2 * h, *dzo = dzi + 3 * h;
            float *dc = L->dc + r * h + c0;
            for (int64_t j = 0; j < cn; j++) {
                float dcp = gc[j] + gh[j] * so[j] * (1.0f - tc[j] * tc[j]);
                dzi[j] = dcp * tg[j] * si[j] * (1.0f - si[j]);
                dzf[j] = dcp * cv[j] * sf[j] * (1.0f - sf[j]);
                dzg[j] = dcp * si[j] * (1.0f - tg[j] * tg[j]);
                dzo[j] = gh[j] * tc[j] * so[j] * (1.0f - so[j]);
                dc[j] = dcp * sf[j];
            }
        }
    }
}

static void lstm_run(int64_t n, int64_t h, nnc_range_fn fn, Lstm *L)
{
    if (n <= 0 || h <= 0)
        return;
    if (n > 1 && n * h >= LSTM_PARALLEL_MIN)
        nnc_parallel_for(n, fn, L);
    else
        fn(L, 0, n);
}

void nnc_lstm_cell_fwd(const float *z, const float *c, float *h_out,
                       float *c_out, int64_t n, int64_t h)
{
    Lstm L = {.z = z, .c = c, .h_out = h_out, .c_out = c_out, .h = h};
    lstm_run(n, h, lstm_fwd_range, &L);
}

void nnc_lstm_cell_bwd(const float *z, const float *c, const float *dh,
                       const float *dc_out, float *dz, float *dc, int64_t n,
                       int64_t h)
{
    Lstm L = {
        .z = z, .c = c, .dh = dh, .dc_out = dc_out, .dz = dz, .dc = dc, .h = h};
    lstm_run(n, h, lstm_bwd_range, &L);
}
