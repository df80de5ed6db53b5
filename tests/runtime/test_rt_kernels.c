/* test_rt_kernels.c — libnncrt's fused kernels: nnc_attention_fwd/bwd,
 * nnc_lstm_cell_fwd/bwd and nnc_softmax_xent.
 *
 * Each kernel is compared with a plain double-precision reference written
 * here (attention with the whole score matrix, the LSTM cell and softmax
 * cross entropy computed directly), on shapes that include 1, odd sizes,
 * sizes just past a 64-wide tile, feature widths past the kernels' 64- and
 * 256-column chunks, causal and not, tq < tk and tq > tk.  The reference
 * gradients are themselves checked by central differences in double.
 * Large inputs run with 1 and with 2 threads and must give the same bits.
 * The tolerance is 1e-5 of the largest value of the tensor compared.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernel_math.h"
#include "nnc.h"

#define TOL 1e-5

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static float urand(float lo, float hi)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (float)((rng_state >> 40) * (1.0 / 16777216.0));
}

static float *frand(int64_t n, float lo, float hi)
{
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    assert_non_null(x);
    for (int64_t i = 0; i < n; i++)
        x[i] = urand(lo, hi);
    return x;
}

static float *fzalloc(int64_t n)
{
    float *x = calloc((size_t)(n > 0 ? n : 1), sizeof *x);
    assert_non_null(x);
    return x;
}

static double *dzalloc(int64_t n)
{
    double *x = calloc((size_t)(n > 0 ? n : 1), sizeof *x);
    assert_non_null(x);
    return x;
}

static double *to_double(const float *x, int64_t n)
{
    double *y = dzalloc(n);
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i];
    return y;
}

/* |got - want| <= TOL * max|want| (at least TOL absolute) everywhere. */
static void check_close(const char *what, const float *got, const double *want,
                        int64_t n)
{
    double maxabs = 1.0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(want[i]) > maxabs)
            maxabs = fabs(want[i]);
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        if (!(err <= TOL * maxabs)) {
            fail_msg("%s[%lld]: got %.9g, want %.9g (error %.3g, max %.3g)",
                     what, (long long)i, got[i], want[i], err, maxabs);
        }
    }
}

/* ---- attention reference ------------------------------------------------- */

typedef struct AttnShape {
    int64_t bh, tq, tk, d, dv;
} AttnShape;

/* o = softmax(mask(q k^T scale)) v; with go also dq, dk, dv (each may be
 * NULL when go is). */
static void attn_ref(AttnShape s, const double *q, const double *k,
                     const double *v, double scale, int causal, double *o,
                     const double *go, double *dq, double *dk, double *dv)
{
    double *p = dzalloc(s.tk), *dp = dzalloc(s.tk);
    if (go) {
        memset(dq, 0, sizeof *dq * (size_t)(s.bh * s.tq * s.d));
        memset(dk, 0, sizeof *dk * (size_t)(s.bh * s.tk * s.d));
        memset(dv, 0, sizeof *dv * (size_t)(s.bh * s.tk * s.dv));
    }
    for (int64_t b = 0; b < s.bh; b++) {
        const double *qb = q + b * s.tq * s.d, *kb = k + b * s.tk * s.d;
        const double *vb = v + b * s.tk * s.dv;
        for (int64_t i = 0; i < s.tq; i++) {
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < s.tk; j++) {
                double dotp = 0;
                for (int64_t c = 0; c < s.d; c++)
                    dotp += qb[i * s.d + c] * kb[j * s.d + c];
                p[j] = causal && j > i ? -INFINITY : dotp * scale;
                if (p[j] > mx)
                    mx = p[j];
            }
            for (int64_t j = 0; j < s.tk; j++)
                sum += p[j] = exp(p[j] - mx);
            for (int64_t j = 0; j < s.tk; j++)
                p[j] /= sum;
            double *orow = o + (b * s.tq + i) * s.dv;
            for (int64_t c = 0; c < s.dv; c++) {
                double acc = 0;
                for (int64_t j = 0; j < s.tk; j++)
                    acc += p[j] * vb[j * s.dv + c];
                orow[c] = acc;
            }
            if (!go)
                continue;
            const double *gorow = go + (b * s.tq + i) * s.dv;
            double D = 0;
            for (int64_t j = 0; j < s.tk; j++) {
                dp[j] = 0;
                for (int64_t c = 0; c < s.dv; c++)
                    dp[j] += gorow[c] * vb[j * s.dv + c];
                D += p[j] * dp[j];
            }
            for (int64_t j = 0; j < s.tk; j++) {
                double ds = p[j] * (dp[j] - D) * scale;
                for (int64_t c = 0; c < s.d; c++) {
                    dq[(b * s.tq + i) * s.d + c] += ds * kb[j * s.d + c];
                    dk[(b * s.tk + j) * s.d + c] += ds * qb[i * s.d + c];
                }
                for (int64_t c = 0; c < s.dv; c++)
                    dv[(b * s.tk + j) * s.dv + c] += p[j] * gorow[c];
            }
        }
    }
    free(p);
    free(dp);
}

/* sum(go * o) for the finite differences */
static double attn_loss(AttnShape s, const double *q, const double *k,
                        const double *v, double scale, int causal,
                        const double *go)
{
    int64_t no = s.bh * s.tq * s.dv;
    double *o = dzalloc(no), l = 0;
    attn_ref(s, q, k, v, scale, causal, o, NULL, NULL, NULL, NULL);
    for (int64_t i = 0; i < no; i++)
        l += o[i] * go[i];
    free(o);
    return l;
}

static void fd_check(const char *what, double *x, int64_t n, const double *grad,
                     double (*loss)(void *), void *ctx)
{
    const double h = 1e-6;
    for (int64_t i = 0; i < n; i++) {
        double keep = x[i];
        x[i] = keep + h;
        double lp = loss(ctx);
        x[i] = keep - h;
        double lm = loss(ctx);
        x[i] = keep;
        double fd = (lp - lm) / (2 * h);
        if (!(fabs(fd - grad[i]) <= 1e-6 * (1 + fabs(fd))))
            fail_msg("%s[%lld]: analytic %.12g, finite difference %.12g", what,
                     (long long)i, grad[i], fd);
    }
}

typedef struct AttnFd {
    AttnShape s;
    double *q, *k, *v, *go, scale;
    int causal;
} AttnFd;

static double attn_fd_loss(void *ctx)
{
    AttnFd *a = ctx;
    return attn_loss(a->s, a->q, a->k, a->v, a->scale, a->causal, a->go);
}

/* The reference gradient formulas agree with central differences. */
static void test_attention_reference_gradient(void **state)
{
    (void)state;
    AttnShape s = {2, 5, 7, 3, 4};
    for (int causal = 0; causal < 2; causal++) {
        AttnFd a = {.s = s, .scale = 0.6, .causal = causal};
        a.q = dzalloc(s.bh * s.tq * s.d);
        a.k = dzalloc(s.bh * s.tk * s.d);
        a.v = dzalloc(s.bh * s.tk * s.dv);
        a.go = dzalloc(s.bh * s.tq * s.dv);
        for (int64_t i = 0; i < s.bh * s.tq * s.d; i++)
            a.q[i] = urand(-2, 2);
        for (int64_t i = 0; i < s.bh * s.tk * s.d; i++)
            a.k[i] = urand(-2, 2);
        for (int64_t i = 0; i < s.bh * s.tk * s.dv; i++)
            a.v[i] = urand(-1, 1);
        for (int64_t i = 0; i < s.bh * s.tq * s.dv; i++)
            a.go[i] = urand(-1, 1);
        double *o = dzalloc(s.bh * s.tq * s.dv);
        double *dq = dzalloc(s.bh * s.tq * s.d),
               *dk = dzalloc(s.bh * s.tk * s.d);
        double *dv = dzalloc(s.bh * s.tk * s.dv);
        attn_ref(s, a.q, a.k, a.v, a.scale, causal, o, a.go, dq, dk, dv);
        fd_check("dq", a.q, s.bh * s.tq * s.d, dq, attn_fd_loss, &a);
        fd_check("dk", a.k, s.bh * s.tk * s.d, dk, attn_fd_loss, &a);
        fd_check("dv", a.v, s.bh * s.tk * s.dv, dv, attn_fd_loss, &a);
        free(o), free(dq), free(dk), free(dv);
        free(a.q), free(a.k), free(a.v), free(a.go);
    }
}

typedef struct AttnRun {
    float *q, *k, *v, *go, *o, *dq, *dk, *dv;
} AttnRun;

static AttnRun attn_inputs(AttnShape s)
{
    AttnRun r;
    r.q = frand(s.bh * s.tq * s.d, -2, 2);
    r.k = frand(s.bh * s.tk * s.d, -2, 2);
    r.v = frand(s.bh * s.tk * s.dv, -1, 1);
    r.go = frand(s.bh * s.tq * s.dv, -1, 1);
    r.o = fzalloc(s.bh * s.tq * s.dv);
    r.dq = fzalloc(s.bh * s.tq * s.d);
    r.dk = fzalloc(s.bh * s.tk * s.d);
    r.dv = fzalloc(s.bh * s.tk * s.dv);
    return r;
}

static void attn_free(AttnRun *r)
{
    free(r->q), free(r->k), free(r->v), free(r->go);
    free(r->o), free(r->dq), free(r->dk), free(r->dv);
}

static void attn_run(AttnShape s, AttnRun *r, float scale, int causal)
{
    /* garbage in the outputs: the kernels overwrite, never accumulate */
    for (int64_t i = 0; i < s.bh * s.tq * s.dv; i++)
        r->o[i] = 1e30f;
    for (int64_t i = 0; i < s.bh * s.tq * s.d; i++)
        r->dq[i] = 1e30f;
    for (int64_t i = 0; i < s.bh * s.tk * s.d; i++)
        r->dk[i] = 1e30f;
    for (int64_t i = 0; i < s.bh * s.tk * s.dv; i++)
        r->dv[i] = 1e30f;
    nnc_attention_fwd(r->q, r->k, r->v, r->o, s.bh, s.tq, s.tk, s.d, s.dv,
                      scale, causal);
    nnc_attention_bwd(r->q, r->k, r->v, r->o, r->go, r->dq, r->dk, r->dv, s.bh,
                      s.tq, s.tk, s.d, s.dv, scale, causal);
}

static const AttnShape attn_shapes[] = {
    {1, 1, 1, 1, 1},       {3, 1, 1, 16, 16},    {1, 7, 7, 1, 16},
    {3, 7, 7, 16, 33},     {1, 64, 64, 16, 16},  {3, 64, 64, 33, 33},
    {1, 130, 130, 16, 16}, {3, 130, 130, 33, 1}, {1, 7, 130, 33, 16},
    {2, 130, 7, 16, 33},   {1, 70, 65, 80, 300}, {1, 65, 129, 129, 65},
};

static void test_attention_vs_reference(void **state)
{
    (void)state;
    for (size_t n = 0; n < sizeof attn_shapes / sizeof *attn_shapes; n++) {
        AttnShape s = attn_shapes[n];
        for (int causal = 0; causal < 2; causal++) {
            float scale = causal ? 1.0f / sqrtf((float)s.d) : 0.7f;
            AttnRun r = attn_inputs(s);
            attn_run(s, &r, scale, causal);
            double *q = to_double(r.q, s.bh * s.tq * s.d);
            double *k = to_double(r.k, s.bh * s.tk * s.d);
            double *v = to_double(r.v, s.bh * s.tk * s.dv);
            double *go = to_double(r.go, s.bh * s.tq * s.dv);
            double *o = dzalloc(s.bh * s.tq * s.dv);
            double *dq = dzalloc(s.bh * s.tq * s.d);
            double *dk = dzalloc(s.bh * s.tk * s.d);
            double *dv = dzalloc(s.bh * s.tk * s.dv);
            attn_ref(s, q, k, v, scale, causal, o, go, dq, dk, dv);
            print_message("attention bh=%lld tq=%lld tk=%lld d=%lld dv=%lld "
                          "causal=%d\n",
                          (long long)s.bh, (long long)s.tq, (long long)s.tk,
                          (long long)s.d, (long long)s.dv, causal);
            check_close("o", r.o, o, s.bh * s.tq * s.dv);
            check_close("dq", r.dq, dq, s.bh * s.tq * s.d);
            check_close("dk", r.dk, dk, s.bh * s.tk * s.d);
            check_close("dv", r.dv, dv, s.bh * s.tk * s.dv);
            free(q), free(k), free(v), free(go);
            free(o), free(dq), free(dk), free(dv);
            attn_free(&r);
        }
    }
}

/* Rows of very different scale: the running max must rescale correctly
 * when a later key block holds the row's largest score. */
static void test_attention_online_rescale(void **state)
{
    (void)state;
    AttnShape s = {1, 3, 200, 2, 3};
    AttnRun r = attn_inputs(s);
    for (int64_t j = 0; j < s.tk; j++) { /* scores grow with j: 0 .. 40 */
        r.k[j * 2] = (float)j * 0.2f;
        r.k[j * 2 + 1] = 0;
    }
    for (int64_t i = 0; i < s.tq; i++) {
        r.q[i * 2] = 1.0f;
        r.q[i * 2 + 1] = 0;
    }
    attn_run(s, &r, 1.0f, 0);
    double *q = to_double(r.q, 6), *k = to_double(r.k, 400);
    double *v = to_double(r.v, 600), *go = to_double(r.go, 9);
    double o[9], dq[6], dk[400], dv[600];
    attn_ref(s, q, k, v, 1.0, 0, o, go, dq, dk, dv);
    check_close("o", r.o, o, 9);
    check_close("dq", r.dq, dq, 6);
    check_close("dk", r.dk, dk, 400);
    check_close("dv", r.dv, dv, 600);
    free(q), free(k), free(v), free(go);
    attn_free(&r);
}

static void test_attention_thread_independent(void **state)
{
    (void)state;
    const AttnShape shapes[] = {
        {3, 130, 130, 33, 33}, {4, 256, 256, 64, 64}, {1, 200, 150, 16, 24}};
    for (size_t n = 0; n < sizeof shapes / sizeof *shapes; n++) {
        AttnShape s = shapes[n];
        for (int causal = 0; causal < 2; causal++) {
            AttnRun a = attn_inputs(s), b = attn_inputs(s);
            memcpy(b.q, a.q, sizeof(float) * (size_t)(s.bh * s.tq * s.d));
            memcpy(b.k, a.k, sizeof(float) * (size_t)(s.bh * s.tk * s.d));
            memcpy(b.v, a.v, sizeof(float) * (size_t)(s.bh * s.tk * s.dv));
            memcpy(b.go, a.go, sizeof(float) * (size_t)(s.bh * s.tq * s.dv));
            nnc_set_num_threads(1);
            attn_run(s, &a, 0.125f, causal);
            nnc_set_num_threads(2);
            attn_run(s, &b, 0.125f, causal);
            assert_memory_equal(a.o, b.o,
                                sizeof(float) * (size_t)(s.bh * s.tq * s.dv));
            assert_memory_equal(a.dq, b.dq,
                                sizeof(float) * (size_t)(s.bh * s.tq * s.d));
            assert_memory_equal(a.dk, b.dk,
                                sizeof(float) * (size_t)(s.bh * s.tk * s.d));
            assert_memory_equal(a.dv, b.dv,
                                sizeof(float) * (size_t)(s.bh * s.tk * s.dv));
            attn_free(&a);
            attn_free(&b);
        }
    }
    nnc_set_num_threads(0);
}

/* ---- LSTM ---------------------------------------------------------------- */

static double sigm(double x) { return 1 / (1 + exp(-x)); }

/* h_out, c_out; with dh/dc_out (NULL = 0) and dz also dz, dc. */
static void lstm_ref(const double *z, const double *c, int64_t n, int64_t h,
                     double *hout, double *cout, const double *dh,
                     const double *dco, double *dz, double *dc)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < h; j++) {
            const double *zr = z + r * 4 * h;
            double si = sigm(zr[j]), sf = sigm(zr[h + j]);
            double tg = tanh(zr[2 * h + j]), so = sigm(zr[3 * h + j]);
            double cp = sf * c[r * h + j] + si * tg, tc = tanh(cp);
            if (hout) {
                hout[r * h + j] = so * tc;
                cout[r * h + j] = cp;
            }
            if (!dz)
                continue;
            double gh = dh ? dh[r * h + j] : 0, gc = dco ? dco[r * h + j] : 0;
            double dcp = gc + gh * so * (1 - tc * tc);
            double *dzr = dz + r * 4 * h;
            dzr[j] = dcp * tg * si * (1 - si);
            dzr[h + j] = dcp * c[r * h + j] * sf * (1 - sf);
            dzr[2 * h + j] = dcp * si * (1 - tg * tg);
            dzr[3 * h + j] = gh * tc * so * (1 - so);
            dc[r * h + j] = dcp * sf;
        }
}

typedef struct LstmFd {
    double *z, *c, *dh, *dco;
    int64_t n, h;
} LstmFd;

static double lstm_fd_loss(void *ctx)
{
    LstmFd *a = ctx;
    int64_t m = a->n * a->h;
    double *ho = dzalloc(m), *co = dzalloc(m), l = 0;
    lstm_ref(a->z, a->c, a->n, a->h, ho, co, NULL, NULL, NULL, NULL);
    for (int64_t i = 0; i < m; i++)
        l += ho[i] * a->dh[i] + co[i] * a->dco[i];
    free(ho), free(co);
    return l;
}

static void test_lstm_reference_gradient(void **state)
{
    (void)state;
    LstmFd a = {.n = 3, .h = 5};
    int64_t m = a.n * a.h;
    a.z = dzalloc(4 * m), a.c = dzalloc(m), a.dh = dzalloc(m);
    a.dco = dzalloc(m);
    for (int64_t i = 0; i < 4 * m; i++)
        a.z[i] = urand(-3, 3);
    for (int64_t i = 0; i < m; i++) {
        a.c[i] = urand(-2, 2);
        a.dh[i] = urand(-1, 1);
        a.dco[i] = urand(-1, 1);
    }
    double *dz = dzalloc(4 * m), *dc = dzalloc(m);
    lstm_ref(a.z, a.c, a.n, a.h, NULL, NULL, a.dh, a.dco, dz, dc);
    fd_check("dz", a.z, 4 * m, dz, lstm_fd_loss, &a);
    fd_check("dc", a.c, m, dc, lstm_fd_loss, &a);
    free(dz), free(dc), free(a.z), free(a.c), free(a.dh), free(a.dco);
}

static void test_lstm_vs_reference(void **state)
{
    (void)state;
    const int64_t shapes[][2] = {{1, 1}, {3, 7}, {5, 64}, {7, 130}, {64, 600}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int64_t n = shapes[s][0], h = shapes[s][1], m = n * h;
        float *z = frand(4 * m, -4, 4), *c = frand(m, -2, 2);
        float *dh = frand(m, -1, 1), *dco = frand(m, -1, 1);
        float *ho = fzalloc(m), *co = fzalloc(m), *dz = fzalloc(4 * m);
        float *dc = fzalloc(m);
        double *zd = to_double(z, 4 * m), *cd = to_double(c, m);
        double *dhd = to_double(dh, m), *dcod = to_double(dco, m);
        double *hr = dzalloc(m), *cr = dzalloc(m), *dzr = dzalloc(4 * m);
        double *dcr = dzalloc(m);
        nnc_lstm_cell_fwd(z, c, ho, co, n, h);
        lstm_ref(zd, cd, n, h, hr, cr, NULL, NULL, NULL, NULL);
        check_close("h_out", ho, hr, m);
        check_close("c_out", co, cr, m);
        /* both gradients, then each alone (NULL means zero) */
        for (int which = 0; which < 3; which++) {
            const float *gh = which == 2 ? NULL : dh;
            const float *gc = which == 1 ? NULL : dco;
            nnc_lstm_cell_bwd(z, c, gh, gc, dz, dc, n, h);
            lstm_ref(zd, cd, n, h, NULL, NULL, gh ? dhd : NULL,
                     gc ? dcod : NULL, dzr, dcr);
            check_close("dz", dz, dzr, 4 * m);
            check_close("dc", dc, dcr, m);
        }
        /* thread-count independence */
        float *dz2 = fzalloc(4 * m), *dc2 = fzalloc(m), *ho2 = fzalloc(m);
        float *co2 = fzalloc(m);
        nnc_set_num_threads(1);
        nnc_lstm_cell_fwd(z, c, ho, co, n, h);
        nnc_lstm_cell_bwd(z, c, dh, dco, dz, dc, n, h);
        nnc_set_num_threads(2);
        nnc_lstm_cell_fwd(z, c, ho2, co2, n, h);
        nnc_lstm_cell_bwd(z, c, dh, dco, dz2, dc2, n, h);
        nnc_set_num_threads(0);
        assert_memory_equal(ho, ho2, sizeof(float) * (size_t)m);
        assert_memory_equal(co, co2, sizeof(float) * (size_t)m);
        assert_memory_equal(dz, dz2, sizeof(float) * (size_t)(4 * m));
        assert_memory_equal(dc, dc2, sizeof(float) * (size_t)m);
        /* in place: c_out over c, dc over dc_out */
        memcpy(co2, c, sizeof(float) * (size_t)m);
        nnc_lstm_cell_fwd(z, co2, ho2, co2, n, h);
        assert_memory_equal(co, co2, sizeof(float) * (size_t)m);
        memcpy(dc2, dco, sizeof(float) * (size_t)m);
        nnc_lstm_cell_bwd(z, c, dh, dc2, dz2, dc2, n, h);
        assert_memory_equal(dc, dc2, sizeof(float) * (size_t)m);
        free(z), free(c), free(dh), free(dco), free(ho), free(co), free(dz);
        free(dc), free(zd), free(cd), free(dhd), free(dcod), free(hr);
        free(cr), free(dzr), free(dcr), free(dz2), free(dc2), free(ho2);
        free(co2);
    }
}

/* ---- softmax cross entropy ----------------------------------------------- */

static double xent_ref(const double *x, const int32_t *t, int64_t n, int64_t c,
                       double scale, double *d)
{
    double total = 0;
    for (int64_t r = 0; r < n; r++) {
        const double *xr = x + r * c;
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < c; j++)
            mx = xr[j] > mx ? xr[j] : mx;
        for (int64_t j = 0; j < c; j++)
            sum += exp(xr[j] - mx);
        total += mx + log(sum) - xr[t[r]];
        for (int64_t j = 0; j < c; j++)
            d[r * c + j] = (exp(xr[j] - mx) / sum - (j == t[r])) * scale;
    }
    return total / (double)n;
}

static void test_xent_vs_reference(void **state)
{
    (void)state;
    const int64_t shapes[][2] = {{1, 1},     {3, 7},     {5, 130},
                                 {64, 1000}, {2000, 50}, {1031, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int64_t n = shapes[s][0], c = shapes[s][1];
        float *x = frand(n * c, -8, 8), *d = fzalloc(n * c);
        float *d2 = fzalloc(n * c);
        int32_t *t = malloc(sizeof *t * (size_t)n);
        assert_non_null(t);
        for (int64_t r = 0; r < n; r++)
            t[r] = (int32_t)(urand(0, 1) * (float)c) % (int32_t)c;
        double *xd = to_double(x, n * c), *dr = dzalloc(n * c);
        float scale = 1.0f / (float)n, loss = -1, loss2 = -2;
        double want = xent_ref(xd, t, n, c, scale, dr);
        assert_int_equal(nnc_softmax_xent(x, t, scale, &loss, d, n, c), NNC_OK);
        if (!(fabs(loss - want) <= TOL * fmax(1, fabs(want))))
            fail_msg("loss %lldx%lld: got %.9g, want %.9g", (long long)n,
                     (long long)c, loss, want);
        check_close("dlogits", d, dr, n * c);
        /* thread-count independence of the loss and the gradient */
        nnc_set_num_threads(1);
        assert_int_equal(nnc_softmax_xent(x, t, scale, &loss, d, n, c), NNC_OK);
        nnc_set_num_threads(2);
        assert_int_equal(nnc_softmax_xent(x, t, scale, &loss2, d2, n, c),
                         NNC_OK);
        nnc_set_num_threads(0);
        assert_memory_equal(&loss, &loss2, sizeof loss);
        assert_memory_equal(d, d2, sizeof(float) * (size_t)(n * c));
        /* loss only; then in place (dlogits over logits) */
        assert_int_equal(nnc_softmax_xent(x, t, scale, &loss2, NULL, n, c),
                         NNC_OK);
        assert_memory_equal(&loss, &loss2, sizeof loss);
        assert_int_equal(nnc_softmax_xent(x, t, scale, &loss2, x, n, c),
                         NNC_OK);
        assert_memory_equal(&loss, &loss2, sizeof loss);
        assert_memory_equal(d, x, sizeof(float) * (size_t)(n * c));
        free(x), free(d), free(d2), free(t), free(xd), free(dr);
    }
}

static void test_xent_target_out_of_range(void **state)
{
    (void)state;
    float x[12], d[12], loss = 42.0f;
    for (int i = 0; i < 12; i++) {
        x[i] = (float)i;
        d[i] = -7.0f;
    }
    int32_t t[3] = {1, 3, 0}; /* position 1 is outside 0..2 */
    assert_int_equal(nnc_softmax_xent(x, t, 1.0f, &loss, d, 4, 3),
                     NNC_ERR_RANGE);
    int32_t t4[4] = {0, 1, 2, 3};
    nnc_clear_error();
    assert_int_equal(nnc_softmax_xent(x, t4, 1.0f, &loss, d, 4, 3),
                     NNC_ERR_RANGE);
    assert_string_equal(
        nnc_last_error(),
        "cross_entropy: target 3 at position 3 is outside 0..2");
    int32_t tneg[4] = {0, -1, 2, 1};
    assert_int_equal(nnc_softmax_xent(x, tneg, 1.0f, &loss, d, 4, 3),
                     NNC_ERR_RANGE);
    assert_string_equal(
        nnc_last_error(),
        "cross_entropy: target -1 at position 1 is outside 0..2");
    /* nothing written */
    assert_true(loss == 42.0f);
    for (int i = 0; i < 12; i++)
        assert_true(d[i] == -7.0f);
}

/* ---- the vectorisable exp ------------------------------------------------ */

static void test_expf_accuracy(void **state)
{
    (void)state;
    double worst = 0;
    for (float x = -87.0f; x <= 88.0f; x += 0.000731f) {
        double want = exp((double)x), got = nncrt_expf(x);
        double rel = fabs(got - want) / want;
        if (rel > worst)
            worst = rel;
    }
    print_message("nncrt_expf: worst relative error %.3g\n", worst);
    assert_true(worst < 2.5e-7);
    assert_true(nncrt_expf(-INFINITY) == 0.0f);
    assert_true(nncrt_expf(-100.0f) == 0.0f);
    assert_true(nncrt_expf(0.0f) == 1.0f);
    assert_true(isnan(nncrt_expf(NAN)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expf_accuracy),
        cmocka_unit_test(test_attention_reference_gradient),
        cmocka_unit_test(test_attention_vs_reference),
        cmocka_unit_test(test_attention_online_rescale),
        cmocka_unit_test(test_attention_thread_independent),
        cmocka_unit_test(test_lstm_reference_gradient),
        cmocka_unit_test(test_lstm_vs_reference),
        cmocka_unit_test(test_xent_vs_reference),
        cmocka_unit_test(test_xent_target_out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
