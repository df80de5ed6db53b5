/* eval_fused.c — the reference evaluator's rules for the fused ops
 * (ops.def): each written from the definition of the unfused computation
 * it replaces, in double, so tests can check the fusion passes and the
 * fused kernels against it.  fused and matmul_epilogue run their body
 * graph (ev_body, eval.c). */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static int64_t last_dim(const Type *t) { return t->dims[t->rank - 1]; }

/* The gates of row r: i, f, g, o activated, and the new cell. */
typedef struct Gates {
    double i, f, g, o, c_prev, c_new;
} Gates;

static Gates gates_at(const EvalTensor *z, const EvalTensor *c, int64_t r,
                      int64_t j, int64_t h)
{
    const double *zr = z->data + r * 4 * h;
    Gates s = {.i = sigmoid(zr[j]),
               .f = sigmoid(zr[h + j]),
               .g = tanh(zr[2 * h + j]),
               .o = sigmoid(zr[3 * h + j]),
               .c_prev = c->data[r * h + j]};
    s.c_new = s.f * s.c_prev + s.i * s.g;
    return s;
}

bool ev_lstm_cell(Eval *e, const Node *n)
{
    const EvalTensor *z = ev_in(e, n, 0), *c = ev_in(e, n, 1);
    EvalTensor *h_out = ev_out(e, n, 0), *c_out = ev_out(e, n, 1);
    int64_t h = last_dim(&c->type), rows = ir_type_numel(&c->type) / h;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < h; j++) {
            Gates s = gates_at(z, c, r, j, h);
            c_out->data[r * h + j] = s.c_new;
            h_out->data[r * h + j] = s.o * tanh(s.c_new);
        }
    return true;
}

bool ev_lstm_cell_grad(Eval *e, const Node *n)
{
    const EvalTensor *z = ev_in(e, n, 0), *c = ev_in(e, n, 1);
    const EvalTensor *dh = ev_in(e, n, 2), *dc_out = ev_in(e, n, 3);
    EvalTensor *dz = ev_out(e, n, 0), *dc = ev_out(e, n, 1);
    int64_t h = last_dim(&c->type), rows = ir_type_numel(&c->type) / h;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < h; j++) {
            Gates s = gates_at(z, c, r, j, h);
            double tc = tanh(s.c_new), gh = dh->data[r * h + j];
            double gc = dc_out->data[r * h + j] + gh * s.o * (1 - tc * tc);
            double *dzr = dz->data + r * 4 * h;
            dzr[j] = gc * s.g * s.i * (1 - s.i);
            dzr[h + j] = gc * s.c_prev * s.f * (1 - s.f);
            dzr[2 * h + j] = gc * s.i * (1 - s.g * s.g);
            dzr[3 * h + j] = gh * tc * s.o * (1 - s.o);
            dc->data[r * h + j] = gc * s.f;
        }
    return true;
}

/* One batch slice of attention's gradient with the probabilities p
 * (Tq x Tk) recomputed:  dv = p^T g;  dp = g v^T;
 * ds = p (dp - rowsum(dp p)) scale;  dq = ds k;  dk = ds^T q. */
typedef struct AttnDims {
    int64_t tq, tk, d, dv;
    double scale;
    bool causal;
} AttnDims;

static void attention_probs(const double *q, const double *k, const AttnDims *a,
                            double *p)
{
    for (int64_t i = 0; i < a->tq; i++) {
        double *row = p + i * a->tk, mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < a->tk; j++) {
            double dot = 0;
            for (int64_t c = 0; c < a->d; c++)
                dot += q[i * a->d + c] * k[j * a->d + c];
            row[j] = a->causal && j > i ? -INFINITY : dot * a->scale;
            mx = row[j] > mx ? row[j] : mx;
        }
        for (int64_t j = 0; j < a->tk; j++)
            sum += row[j] = exp(row[j] - mx);
        for (int64_t j = 0; j < a->tk; j++)
            row[j] /= sum;
    }
}

static void attention_grad_slice(const double *q, const double *k,
                                 const double *v, const double *g, double *dq,
                                 double *dk, double *dv, const AttnDims *a,
                                 double *p)
{
    attention_probs(q, k, a, p);
    for (int64_t i = 0; i < a->tq; i++) {
        double *row = p + i * a->tk, dot = 0;
        double *dp = calloc((size_t)a->tk, sizeof *dp);
        if (!dp)
            ir_internal_error("eval", "out of memory");
        for (int64_t j = 0; j < a->tk; j++) {
            for (int64_t c = 0; c < a->dv; c++) {
                dv[j * a->dv + c] += row[j] * g[i * a->dv + c];
                dp[j] += g[i * a->dv + c] * v[j * a->dv + c];
            }
            dot += dp[j] * row[j];
        }
        for (int64_t j = 0; j < a->tk; j++) {
            double ds = row[j] * (dp[j] - dot) * a->scale;
            for (int64_t c = 0; c < a->d; c++) {
                dq[i * a->d + c] += ds * k[j * a->d + c];
                dk[j * a->d + c] += ds * q[i * a->d + c];
            }
        }
        free(dp);
    }
}

bool ev_attention_grad(Eval *e, const Node *n)
{
    const EvalTensor *q = ev_in(e, n, 0), *k = ev_in(e, n, 1),
                     *v = ev_in(e, n, 2), *g = ev_in(e, n, 4);
    EvalTensor *dq = ev_out(e, n, 0), *dk = ev_out(e, n, 1),
               *dv = ev_out(e, n, 2);
    int r = q->type.rank;
    AttnDims a = {.tq = q->type.dims[r - 2],
                  .tk = k->type.dims[r - 2],
                  .d = last_dim(&q->type),
                  .dv = last_dim(&v->type),
                  .scale = n->attr.value,
                  .causal = n->attr.flag};
    int64_t batches = ir_type_numel(&q->type) / (a.tq * a.d);
    EvalTensor p =
        ir_eval_tensor(ir_type_make(DT_F32, 2, (int64_t[]){a.tq, a.tk}));
    for (int64_t b = 0; b < batches; b++)
        attention_grad_slice(
            q->data + b * a.tq * a.d, k->data + b * a.tk * a.d,
            v->data + b * a.tk * a.dv, g->data + b * a.tq * a.dv,
            dq->data + b * a.tq * a.d, dk->data + b * a.tk * a.d,
            dv->data + b * a.tk * a.dv, &a, p.data);
    ir_eval_tensor_free(&p);
    return true;
}

/* The loss is cross_entropy's; dlogits = (softmax - one_hot) * scale. */
bool ev_softmax_xent(Eval *e, const Node *n)
{
    if (!ev_cross_entropy(e, n)) /* the loss into result 0; checks targets */
        return false;
    const EvalTensor *x = ev_in(e, n, 0), *t = ev_in(e, n, 1),
                     *scale = ev_in(e, n, 2);
    EvalTensor *dx = ev_out(e, n, 1);
    int64_t C = last_dim(&x->type), rows = ir_type_numel(&t->type);
    for (int64_t r = 0; r < rows; r++) {
        const double *px = x->data + r * C;
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < C; j++)
            mx = px[j] > mx ? px[j] : mx;
        for (int64_t j = 0; j < C; j++)
            sum += exp(px[j] - mx);
        for (int64_t j = 0; j < C; j++)
            dx->data[r * C + j] =
                (exp(px[j] - mx) / sum - (j == (int64_t)t->data[r])) *
                scale->data[0];
    }
    return true;
}

/* The body's results become the node's. */
static bool body_into_results(Eval *e, const Node *n, const EvalTensor *args)
{
    const Graph *body = e->m->graphs.data[n->attr.graph];
    EvalTensor *res = calloc((size_t)body->results.len + 1, sizeof *res);
    if (!res)
        ir_internal_error("eval", "out of memory");
    bool ok = ev_body(e, body, args, res);
    for (int k = 0; k < n->n_out && ok; k++) {
        ir_eval_tensor_free(&e->vals[n->out[k].id]);
        e->vals[n->out[k].id] = res[k];
    }
    free(res);
    return ok;
}

bool ev_fused(Eval *e, const Node *n)
{
    EvalTensor *args = calloc((size_t)n->n_in + 1, sizeof *args);
    if (!args)
        ir_internal_error("eval", "out of memory");
    for (int i = 0; i < n->n_in; i++)
        args[i] = *ev_in(e, n, i);
    bool ok = body_into_results(e, n, args);
    free(args);
    return ok;
}

/* The product goes through result 0's slot (it has the product's type),
 * then the body overwrites every result. */
bool ev_matmul_epilogue(Eval *e, const Node *n)
{
    ev_matmul(e, n);
    EvalTensor product = e->vals[n->out[0].id];
    e->vals[n->out[0].id] = (EvalTensor){0};
    EvalTensor *args = calloc((size_t)n->n_in, sizeof *args);
    if (!args)
        ir_internal_error("eval", "out of memory");
    args[0] = product;
    for (int i = 2; i < n->n_in; i++)
        args[i - 1] = *ev_in(e, n, i);
    bool ok = body_into_results(e, n, args);
    ir_eval_tensor_free(&product);
    free(args);
    return ok;
}
