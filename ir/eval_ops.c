/* eval_ops.c — the reference evaluator's ops with structure: matmul,
 * permutations, reshapes, concat and slices, reductions, softmax, the
 * norms, lookups (gather, scatter_add, one_hot), causal_mask, attention
 * and the losses.  Each follows PyTorch's definition literally, in double
 * precision; the walker (eval.c) allocates nothing for them but their
 * results (ev_out).  Ids and targets out of range are errors, as in the
 * compiled code, except in scatter_add and one_hot, which only autodiff
 * builds from a gather or a cross entropy that has already checked them:
 * there an id out of range contributes nothing. */
#include "eval.h"

#include <math.h>
#include <string.h>

static Type leading(const Type *t, int drop)
{
    return ir_type_make(t->dtype, t->rank - drop, t->dims);
}

static int64_t last_dim(const Type *t) { return t->dims[t->rank - 1]; }

/* ---- matrix and shape --------------------------------------------------- */

/* [..a, M, K] @ [..b, K, N]: the leading axes broadcast to the result's. */
bool ev_matmul(Eval *e, const Node *n)
{
    const EvalTensor *a = ev_in(e, n, 0), *b = ev_in(e, n, 1);
    EvalTensor *y = ev_out(e, n, 0);
    int64_t M = a->type.dims[a->type.rank - 2], K = last_dim(&a->type);
    int64_t N = last_dim(&b->type);
    Type la = leading(&a->type, 2), lb = leading(&b->type, 2),
         lo = leading(&y->type, 2);
    int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK];
    ev_bcast_strides(&la, &lo, sa);
    ev_bcast_strides(&lb, &lo, sb);
    int64_t batches = ir_type_numel(&lo);
    for (int64_t bi = 0; bi < batches; bi++) {
        const double *pa = a->data + ev_offset(bi, &lo, sa) * M * K;
        const double *pb = b->data + ev_offset(bi, &lo, sb) * K * N;
        double *py = y->data + bi * M * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += pa[i * K + k] * pb[k * N + j];
                py[i * N + j] = s;
            }
    }
    return true;
}

/* y's axis i is x's axis perm[i]; TRANSPOSE swaps the last two. */
bool ev_permute(Eval *e, const Node *n)
{
    const EvalTensor *x = ev_in(e, n, 0);
    EvalTensor *y = ev_out(e, n, 0);
    int r = x->type.rank;
    int32_t perm[IR_MAX_RANK];
    for (int i = 0; i < r; i++)
        perm[i] = n->op == OP_PERMUTE ? n->attr.perm[i] : i;
    if (n->op == OP_TRANSPOSE) {
        perm[r - 2] = r - 1;
        perm[r - 1] = r - 2;
    }
    int64_t sx[IR_MAX_RANK], sp[IR_MAX_RANK];
    ev_strides(&x->type, sx);
    for (int i = 0; i < r; i++)
        sp[i] = sx[perm[i]];
    int64_t count = ir_type_numel(&y->type);
    for (int64_t i = 0; i < count; i++)
        y->data[i] = x->data[ev_offset(i, &y->type, sp)];
    return true;
}

bool ev_reshape(Eval *e, const Node *n)
{
    const EvalTensor *x = ev_in(e, n, 0);
    EvalTensor *y = ev_out(e, n, 0);
    memcpy(y->data, x->data, sizeof(double) * (size_t)ir_type_numel(&y->type));
    return true;
}

bool ev_broadcast_to(Eval *e, const Node *n)
{
    const EvalTensor *x = ev_in(e, n, 0);
    EvalTensor *y = ev_out(e, n, 0);
    int64_t st[IR_MAX_RANK];
    ev_bcast_strides(&x->type, &y->type, st);
    int64_t count = ir_type_numel(&y->type);
    for (int64_t i = 0; i < count; i++)
        y->data[i] = x->data[ev_offset(i, &y->type, st)];
    return true;
}

/* Each operand lands at its running offset along attr.axis. */
bool ev_concat(Eval *e, const Node *n)
{
    EvalTensor *y = ev_out(e, n, 0);
    int ax = n->attr.axis;
    int64_t sy[IR_MAX_RANK], at = 0;
    ev_strides(&y->type, sy);
    for (int k = 0; k < n->n_in; k++) {
        const EvalTensor *x = ev_in(e, n, k);
        int64_t count = ir_type_numel(&x->type);
        for (int64_t j = 0; j < count; j++)
            y->data[ev_offset(j, &x->type, sy) + at * sy[ax]] = x->data[j];
        at += x->type.dims[ax];
    }
    return true;
}

bool ev_slice(Eval *e, const Node *n)
{
    const EvalTensor *x = ev_in(e, n, 0);
    EvalTensor *y = ev_out(e, n, 0);
    int64_t sx[IR_MAX_RANK], base = 0;
    ev_strides(&x->type, sx);
    for (int i = 0; i < x->type.rank; i++)
        base += n->attr.start[i] * sx[i];
    int64_t count = ir_type_numel(&y->type);
    for (int64_t i = 0; i < count; i++)
        y->data[i] = x->data[base + ev_offset(i, &y->type, sx)];
    return true;
}

/* ---- reductions --------------------------------------------------------- */

/* Strides that send an element of x to its result element: 0 along the
 * reduced axes, the result's own stride along the others. */
static void reduce_strides(const Type *x, const Type *y, uint32_t axes,
                           bool keepdims, int64_t *st)
{
    int64_t sy[IR_MAX_RANK];
    ev_strides(y, sy);
    int j = 0;
    for (int i = 0; i < x->rank; i++) {
        bool reduced = axes >> i & 1;
        st[i] = reduced ? 0 : sy[j];
        j += !reduced || keepdims;
    }
}

/* SUM, MEAN, MAX; max propagates NaN as torch.amax does. */
bool ev_reduce(Eval *e, const Node *n)
{
    const EvalTensor *x = ev_in(e, n, 0);
    EvalTensor *y = ev_out(e, n, 0);
    int64_t st[IR_MAX_RANK];
    reduce_strides(&x->type, &y->type, n->attr.axes, n->attr.keepdims, st);
    int64_t count = ir_type_numel(&x->type), out = ir_type_numel(&y->type);
    if (n->op == OP_MAX)
        for (int64_t i = 0; i < out; i++)
            y->data[i] = -INFINITY;
    for (int64_t i = 0; i < count; i++) {
        double v = x->data[i], *r = &y->data[ev_offset(i, &x->type, st)];
        if (n->op != OP_MAX)
            *r += v;
        else if (!isnan(*r) && (isnan(v) || v > *r))
            *r = v;
    }
    if (n->op == OP_MEAN)
        for (int64_t i = 0; i < out; i++)
            y->data[i] /= (double)(count / out);
    return true;
}

/* ---- normalisation ------------------------------------------------------ */

/* Along attr.axis, max-subtracted; a row of -inf gives NaN, as in PyTorch. */
bool ev_softmax(Eval *e, const Node *n)
{
    const EvalTensor *x = ev_in(e, n, 0);
    EvalTensor *y = ev_out(e, n, 0);
    int ax = n->attr.axis;
    int64_t len = x->type.dims[ax], inner = 1, outer = 1;
    for (int i = ax + 1; i < x->type.rank; i++)
        inner *= x->type.dims[i];
    for (int i = 0; i < ax; i++)
        outer *= x->type.dims[i];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            const double *px = x->data + o * len * inner + in;
            double *py = y->data + o * len * inner + in;
            double mx = -INFINITY, sum = 0;
            for (int64_t k = 0; k < len; k++)
                mx = px[k * inner] > mx ? px[k * inner] : mx;
            for (int64_t k = 0; k < len; k++)
                sum += exp(px[k * inner] - mx);
            for (int64_t k = 0; k < len; k++)
                py[k * inner] = n->op == OP_SOFTMAX
                                    ? exp(px[k * inner] - mx) / sum
                                    : px[k * inner] - mx - log(sum);
        }
    return true;
}

/* layernorm: (x - mean) / sqrt(var + eps) * gamma + beta, var biased;
 * rmsnorm: x / sqrt(mean(x^2) + eps) * gamma; both over the last axis. */
bool ev_norm(Eval *e, const Node *n)
{
    const EvalTensor *x = ev_in(e, n, 0), *g = ev_in(e, n, 1);
    EvalTensor *y = ev_out(e, n, 0);
    int64_t C = last_dim(&x->type), rows = ir_type_numel(&x->type) / C;
    double eps = n->attr.value;
    for (int64_t r = 0; r < rows; r++) {
        const double *px = x->data + r * C;
        double *py = y->data + r * C, mean = 0, var = 0;
        if (n->op == OP_LAYERNORM) {
            for (int64_t c = 0; c < C; c++)
                mean += px[c] / (double)C;
        }
        for (int64_t c = 0; c < C; c++)
            var += (px[c] - mean) * (px[c] - mean) / (double)C;
        double inv = 1.0 / sqrt(var + eps);
        for (int64_t c = 0; c < C; c++) {
            py[c] = (px[c] - mean) * inv * g->data[c];
            if (n->op == OP_LAYERNORM)
                py[c] += ev_in(e, n, 2)->data[c];
        }
    }
    return true;
}

/* ---- lookups ------------------------------------------------------------ */

static bool id_in_range(double id, int64_t limit)
{
    return id >= 0 && id < (double)limit;
}

bool ev_gather(Eval *e, const Node *n)
{
    const EvalTensor *t = ev_in(e, n, 0), *ids = ev_in(e, n, 1);
    EvalTensor *y = ev_out(e, n, 0);
    int64_t V = t->type.dims[0], row = ir_type_numel(&t->type) / V;
    int64_t count = ir_type_numel(&ids->type);
    for (int64_t i = 0; i < count; i++) {
        double id = ids->data[i];
        if (!id_in_range(id, V))
            return ev_fail(e,
                           "embedding: id %g at flat position %lld is "
                           "outside 0..%lld",
                           id, (long long)i, (long long)(V - 1));
        memcpy(y->data + i * row, t->data + (int64_t)id * row,
               sizeof(double) * (size_t)row);
    }
    return true;
}

/* Row i of src is added into row ids[i] of a zero table. */
bool ev_scatter_add(Eval *e, const Node *n)
{
    const EvalTensor *src = ev_in(e, n, 0), *ids = ev_in(e, n, 1);
    EvalTensor *y = ev_out(e, n, 0);
    int64_t V = y->type.dims[0], row = ir_type_numel(&y->type) / V;
    int64_t count = ir_type_numel(&ids->type);
    for (int64_t i = 0; i < count; i++) {
        double id = ids->data[i];
        if (!id_in_range(id, V))
            continue;
        for (int64_t k = 0; k < row; k++)
            y->data[(int64_t)id * row + k] += src->data[i * row + k];
    }
    return true;
}

bool ev_one_hot(Eval *e, const Node *n)
{
    const EvalTensor *ids = ev_in(e, n, 0);
    EvalTensor *y = ev_out(e, n, 0);
    int64_t C = last_dim(&y->type), count = ir_type_numel(&ids->type);
    for (int64_t i = 0; i < count; i++)
        if (id_in_range(ids->data[i], C))
            y->data[i * C + (int64_t)ids->data[i]] = 1.0;
    return true;
}

/* ---- attention ---------------------------------------------------------- */

bool ev_causal_mask(Eval *e, const Node *n)
{
    const EvalTensor *x = ev_in(e, n, 0);
    EvalTensor *y = ev_out(e, n, 0);
    int64_t C = last_dim(&x->type), R = x->type.dims[x->type.rank - 2];
    int64_t count = ir_type_numel(&x->type);
    for (int64_t i = 0; i < count; i++)
        y->data[i] = i % C > i / C % R ? -INFINITY : x->data[i];
    return true;
}

/* One query row: scores against every key, masked, softmax, then the
 * weighted sum of the value rows. */
static void attend_row(const double *q, const double *k, const double *v,
                       double *y, int64_t i, int64_t Tk, int64_t d, int64_t dv,
                       double scale, bool causal, double *s)
{
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < Tk; j++) {
        double dot = 0;
        for (int64_t c = 0; c < d; c++)
            dot += q[c] * k[j * d + c];
        s[j] = causal && j > i ? -INFINITY : dot * scale;
        mx = s[j] > mx ? s[j] : mx;
    }
    for (int64_t j = 0; j < Tk; j++)
        sum += exp(s[j] - mx);
    for (int64_t c = 0; c < dv; c++)
        y[c] = 0;
    for (int64_t j = 0; j < Tk; j++) {
        double p = exp(s[j] - mx) / sum;
        for (int64_t c = 0; c < dv; c++)
            y[c] += p * v[j * dv + c];
    }
}

/* softmax(causal_mask?(q @ transpose(k) * scale)) @ v, leading axes
 * broadcast. */
bool ev_attention(Eval *e, const Node *n)
{
    const EvalTensor *q = ev_in(e, n, 0), *k = ev_in(e, n, 1),
                     *v = ev_in(e, n, 2);
    EvalTensor *y = ev_out(e, n, 0);
    int64_t Tq = q->type.dims[q->type.rank - 2], d = last_dim(&q->type);
    int64_t Tk = k->type.dims[k->type.rank - 2], dv = last_dim(&v->type);
    Type lq = leading(&q->type, 2), lk = leading(&k->type, 2),
         lv = leading(&v->type, 2), lo = leading(&y->type, 2);
    int64_t sq[IR_MAX_RANK], sk[IR_MAX_RANK], sv[IR_MAX_RANK];
    ev_bcast_strides(&lq, &lo, sq);
    ev_bcast_strides(&lk, &lo, sk);
    ev_bcast_strides(&lv, &lo, sv);
    EvalTensor scores = ir_eval_tensor(ir_type_make(DT_F32, 1, &Tk));
    int64_t batches = ir_type_numel(&lo);
    for (int64_t b = 0; b < batches; b++) {
        const double *pq = q->data + ev_offset(b, &lo, sq) * Tq * d;
        const double *pk = k->data + ev_offset(b, &lo, sk) * Tk * d;
        const double *pv = v->data + ev_offset(b, &lo, sv) * Tk * dv;
        for (int64_t i = 0; i < Tq; i++)
            attend_row(pq + i * d, pk, pv, y->data + (b * Tq + i) * dv, i, Tk,
                       d, dv, n->attr.value, n->attr.flag, scores.data);
    }
    ir_eval_tensor_free(&scores);
    return true;
}

/* ---- losses ------------------------------------------------------------- */

/* mean over positions of logsumexp(row) - row[target]. */
bool ev_cross_entropy(Eval *e, const Node *n)
{
    const EvalTensor *x = ev_in(e, n, 0), *t = ev_in(e, n, 1);
    EvalTensor *y = ev_out(e, n, 0);
    int64_t C = last_dim(&x->type), rows = ir_type_numel(&t->type);
    double total = 0;
    for (int64_t r = 0; r < rows; r++) {
        const double *px = x->data + r * C;
        double id = t->data[r], mx = -INFINITY, sum = 0;
        if (!id_in_range(id, C))
            return ev_fail(e,
                           "cross_entropy: target %g at flat position "
                           "%lld is outside 0..%lld",
                           id, (long long)r, (long long)(C - 1));
        for (int64_t c = 0; c < C; c++)
            mx = px[c] > mx ? px[c] : mx;
        for (int64_t c = 0; c < C; c++)
            sum += exp(px[c] - mx);
        total += mx + log(sum) - px[(int64_t)id];
    }
    y->data[0] = total / (double)rows;
    return true;
}

/* mse: mean (a - b)^2; bce_with_logits: mean max(z, 0) - z t +
 * log1p(exp(-|z|)). */
bool ev_pair_loss(Eval *e, const Node *n)
{
    const EvalTensor *a = ev_in(e, n, 0), *b = ev_in(e, n, 1);
    EvalTensor *y = ev_out(e, n, 0);
    int64_t count = ir_type_numel(&a->type);
    double total = 0;
    for (int64_t i = 0; i < count; i++) {
        double u = a->data[i], w = b->data[i];
        total += n->op == OP_MSE
                     ? (u - w) * (u - w)
                     : (u > 0 ? u : 0) - u * w + log1p(exp(-fabs(u)));
    }
    y->data[0] = total / (double)count;
    return true;
}
