/* reduce.c — reductions and the normalisations built on row reductions.
 *
 * sum/mean/max over any set of axes: an outer loop nest over the kept axes
 * (one result element each) around an inner nest over the reduced axes,
 * accumulating in an entry-block alloca that SROA turns into a register,
 * the inner loop allowed to keep vector partial sums (loops.c);
 * over leading axes, row after row into the result instead.
 * softmax/log_softmax: per row along the axis, max, then sum of
 * exp(x - max), then the normalised values (numerically stable).
 * layernorm/rmsnorm: per row of the last axis, as in PyTorch (biased
 * variance, eps inside the square root).  The rows of softmax and the
 * norms go to the pool when there are enough elements (parallel.c); each
 * row is computed whole by one thread, so results do not depend on the
 * thread count. */
#include "codegen/cg.h"

#include <math.h>

typedef LLVMValueRef (*FoldFn)(Cg *c, LLVMValueRef acc, LLVMValueRef x,
                               void *ud);

static LLVMValueRef fold_add(Cg *c, LLVMValueRef acc, LLVMValueRef x, void *ud)
{
    return LLVMBuildFAdd(c->b, acc, x, "");
}

static LLVMValueRef fold_max(Cg *c, LLVMValueRef acc, LLVMValueRef x, void *ud)
{
    return cg_fmax(c, acc, x);
}

/* The offset of element j of a row whose elements are stride apart. */
static LLVMValueRef row_index(Cg *c, LLVMValueRef j, int64_t stride)
{
    return stride == 1 ? j : LLVMBuildNSWMul(c->b, j, cg_i64(c, stride), "");
}

/* acc = fold(acc, x) for every element of a row of len elements spaced
 * stride apart; map (optional) transforms x first.  Returns the result. */
typedef struct RowFold {
    FoldFn fold;
    LLVMValueRef (*map)(Cg *c, LLVMValueRef x, void *ud);
    void *ud;
} RowFold;

static LLVMValueRef row_fold(Cg *c, LLVMValueRef src, int64_t len,
                             int64_t stride, const RowFold *f,
                             LLVMValueRef init)
{
    LLVMValueRef acc = cg_entry_alloca(c, c->f32, "acc");
    LLVMBuildStore(c->b, init, acc);
    CgLoop l;
    LLVMValueRef j = cg_for_begin(c, &l, cg_i64(c, len));
    LLVMValueRef idx = row_index(c, j, stride);
    LLVMValueRef x =
        LLVMBuildLoad2(c->b, c->f32, cg_gep(c, c->f32, src, idx), "");
    if (f->map)
        x = f->map(c, x, f->ud);
    LLVMValueRef old = LLVMBuildLoad2(c->b, c->f32, acc, "");
    LLVMBuildStore(c->b, f->fold(c, old, x, f->ud), acc);
    bool was = c->reorder_reductions;
    /* partial sums over a contiguous row (a max is not a reduction the
     * vectoriser knows in this form: forcing it would only warn) */
    c->reorder_reductions = stride == 1 && f->fold == fold_add;
    cg_for_end(c, &l);
    c->reorder_reductions = was;
    return LLVMBuildLoad2(c->b, c->f32, acc, "");
}

/* ---- sum, mean, max ---------------------------------------------------- */

typedef struct ReduceCtx {
    Op op;
    CgNest inner;  /* over the reduced axes; base set per result element */
    int64_t count; /* elements per result */
    LLVMValueRef acc;
} ReduceCtx;

static void reduce_inner(Cg *c, LLVMValueRef *p, void *ud)
{
    ReduceCtx *r = ud;
    LLVMValueRef x = LLVMBuildLoad2(c->b, c->f32, p[0], "");
    LLVMValueRef old = LLVMBuildLoad2(c->b, c->f32, r->acc, "");
    LLVMValueRef v =
        r->op == OP_MAX ? cg_fmax(c, old, x) : LLVMBuildFAdd(c->b, old, x, "");
    LLVMBuildStore(c->b, v, r->acc);
}

static void reduce_outer(Cg *c, LLVMValueRef *p, void *ud)
{
    ReduceCtx *r = ud;
    LLVMBuildStore(c->b, cg_f32c(c, r->op == OP_MAX ? -INFINITY : 0.0), r->acc);
    CgNest inner = r->inner;
    inner.base[0] = p[1];
    bool was = c->reorder_reductions;
    c->reorder_reductions = r->op != OP_MAX;
    cg_nest(c, &inner, reduce_inner, r);
    c->reorder_reductions = was;
    LLVMValueRef v = LLVMBuildLoad2(c->b, c->f32, r->acc, "");
    if (r->op == OP_MEAN)
        v = LLVMBuildFDiv(c->b, v, cg_f32c(c, (double)r->count), "");
    LLVMBuildStore(c->b, v, p[0]);
}

/* ---- a reduction over leading axes ------------------------------------ *
 * Bias gradients sum [rows, cols] into [cols]: element by element that
 * would walk memory with a stride of cols.  Instead the result accumulates
 * row after row, the inner loop running over contiguous columns (it
 * vectorises), each element still summed in row order — the same bits as
 * the element-by-element loop.  Column chunks go to the pool. */

#define LEAD_CHUNK 64

typedef struct Leading {
    Op op;
    int64_t rows, cols;
} Leading;

/* dst[j] = fold(dst[j], src[r * cols + j]) for j in [lo, hi), each r. */
static void leading_chunk(Cg *c, LLVMValueRef *caps, LLVMValueRef begin,
                          LLVMValueRef end, void *ud)
{
    const Leading *l = ud;
    LLVMValueRef lo = LLVMBuildNSWMul(c->b, begin, cg_i64(c, LEAD_CHUNK), "");
    LLVMValueRef hi = LLVMBuildNSWMul(c->b, end, cg_i64(c, LEAD_CHUNK), "");
    LLVMValueRef over =
        LLVMBuildICmp(c->b, LLVMIntSGT, hi, cg_i64(c, l->cols), "");
    hi = LLVMBuildSelect(c->b, over, cg_i64(c, l->cols), hi, "");
    LLVMValueRef len = LLVMBuildNSWSub(c->b, hi, lo, "");
    LLVMValueRef dst = cg_gep(c, c->f32, caps[0], lo);
    LLVMValueRef init = cg_f32c(c, l->op == OP_MAX ? -INFINITY : 0.0);
    CgLoop lj, lr;
    LLVMValueRef j = cg_for_begin(c, &lj, len);
    LLVMBuildStore(c->b, init, cg_gep(c, c->f32, dst, j));
    cg_for_end(c, &lj);
    LLVMValueRef r = cg_for_begin(c, &lr, cg_i64(c, l->rows));
    LLVMValueRef row = cg_gep(
        c, c->f32, caps[1],
        LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, r, cg_i64(c, l->cols), ""),
                        lo, ""));
    j = cg_for_begin(c, &lj, len);
    LLVMValueRef pd = cg_gep(c, c->f32, dst, j);
    LLVMValueRef x =
        LLVMBuildLoad2(c->b, c->f32, cg_gep(c, c->f32, row, j), "");
    LLVMValueRef old = LLVMBuildLoad2(c->b, c->f32, pd, "");
    LLVMBuildStore(c->b,
                   l->op == OP_MAX ? cg_fmax(c, old, x)
                                   : LLVMBuildFAdd(c->b, old, x, ""),
                   pd);
    cg_for_end(c, &lj);
    cg_for_end(c, &lr);
    if (l->op != OP_MEAN)
        return;
    j = cg_for_begin(c, &lj, len);
    pd = cg_gep(c, c->f32, dst, j);
    LLVMValueRef v = LLVMBuildLoad2(c->b, c->f32, pd, "");
    LLVMBuildStore(c->b,
                   LLVMBuildFDiv(c->b, v, cg_f32c(c, (double)l->rows), ""), pd);
    cg_for_end(c, &lj);
}

/* True (and emitted) when the reduced axes are exactly the first k. */
static bool lower_leading(Cg *c, Graph *g, const Node *n, const Type *in)
{
    uint32_t axes = n->attr.axes;
    int k = 0;
    while (k < in->rank && (axes >> k & 1))
        k++;
    if (k == 0 || k == in->rank || axes >> k != 0)
        return false;
    Leading l = {.op = n->op, .rows = 1, .cols = 1};
    for (int i = 0; i < in->rank; i++)
        *(i < k ? &l.rows : &l.cols) *= in->dims[i];
    LLVMValueRef caps[2] = {cg_ptr(c, g, n->out[0]), cg_ptr(c, g, n->in[0])};
    int64_t chunks = (l.cols + LEAD_CHUNK - 1) / LEAD_CHUNK;
    if (l.rows * l.cols >= CG_PAR_MIN_WORK && chunks > 1)
        cg_parallel_for(c, cg_i64(c, chunks), caps, 2, leading_chunk, &l);
    else
        leading_chunk(c, caps, cg_i64(c, 0), cg_i64(c, chunks), &l);
    return true;
}

void cg_lower_reduce(Cg *c, Graph *g, const Node *n)
{
    Type in = ir_value_type(g, n->in[0]);
    if (lower_leading(c, g, n, &in))
        return;
    int64_t is[IR_MAX_RANK];
    cg_strides(&in, is);
    CgNest outer = {.n_ops = 2,
                    .elem = {c->f32, c->f32},
                    .base = {cg_ptr(c, g, n->out[0]), cg_ptr(c, g, n->in[0])}};
    ReduceCtx r = {
        .op = n->op, .count = 1, .acc = cg_entry_alloca(c, c->f32, "acc")};
    r.inner = (CgNest){.n_ops = 1, .elem = {c->f32}};
    for (int i = 0; i < in.rank; i++) {
        CgNest *dst = (n->attr.axes >> i & 1) ? &r.inner : &outer;
        int k = dst->rank++;
        dst->dims[k] = in.dims[i];
        dst->strides[dst->n_ops - 1][k] = is[i];
        if (dst == &r.inner)
            r.count *= in.dims[i];
    }
    int64_t s = 1; /* the result is contiguous over the kept axes */
    for (int k = outer.rank - 1; k >= 0; k--) {
        outer.strides[0][k] = s;
        s *= outer.dims[k];
    }
    cg_nest(c, &outer, reduce_outer, &r);
}

/* ---- softmax, log_softmax ---------------------------------------------- */

typedef struct ShiftExp {
    LLVMValueRef max;
} ShiftExp;

static LLVMValueRef map_shift_exp(Cg *c, LLVMValueRef x, void *ud)
{
    LLVMValueRef d = LLVMBuildFSub(c->b, x, ((ShiftExp *)ud)->max, "");
    return cg_exp(c, d);
}

/* The two passes of a stable softmax or logsumexp over a row: returns its
 * maximum and sets *sum to the sum of exp(x - max). */
static LLVMValueRef row_max_sumexp(Cg *c, LLVMValueRef src, int64_t len,
                                   int64_t stride, LLVMValueRef *sum)
{
    RowFold fmax = {.fold = fold_max};
    LLVMValueRef max =
        row_fold(c, src, len, stride, &fmax, cg_f32c(c, -INFINITY));
    ShiftExp se = {max};
    RowFold fsum = {.fold = fold_add, .map = map_shift_exp, .ud = &se};
    *sum = row_fold(c, src, len, stride, &fsum, cg_f32c(c, 0.0));
    return max;
}

/* max + log(sum): the logsumexp of a row from row_max_sumexp's results. */
static LLVMValueRef max_plus_log(Cg *c, LLVMValueRef max, LLVMValueRef sum)
{
    return LLVMBuildFAdd(c->b, max,
                         cg_intrinsic(c, "llvm.log", c->f32, &sum, 1), "");
}

void cg_softmax_row(Cg *c, LLVMValueRef src, LLVMValueRef dst, int64_t len,
                    int64_t stride, bool log)
{
    LLVMValueRef sum;
    LLVMValueRef max = row_max_sumexp(c, src, len, stride, &sum);
    LLVMValueRef shift = log ? max_plus_log(c, max, sum) : max;
    CgLoop l;
    LLVMValueRef j = cg_for_begin(c, &l, cg_i64(c, len));
    LLVMValueRef idx = row_index(c, j, stride);
    LLVMValueRef x =
        LLVMBuildLoad2(c->b, c->f32, cg_gep(c, c->f32, src, idx), "");
    LLVMValueRef d = LLVMBuildFSub(c->b, x, shift, "");
    LLVMValueRef y = log ? d : LLVMBuildFDiv(c->b, cg_exp(c, d), sum, "");
    LLVMBuildStore(c->b, y, cg_gep(c, c->f32, dst, idx));
    cg_for_end(c, &l);
}

typedef struct SoftmaxCtx {
    int64_t len, stride;
    bool log;
} SoftmaxCtx;

static void softmax_body(Cg *c, LLVMValueRef *p, void *ud)
{
    SoftmaxCtx *s = ud;
    cg_softmax_row(c, p[1], p[0], s->len, s->stride, s->log);
}

void cg_lower_softmax(Cg *c, Graph *g, const Node *n)
{
    Type t = ir_value_type(g, n->in[0]);
    int axis = n->attr.axis;
    int64_t st[IR_MAX_RANK];
    cg_strides(&t, st);
    SoftmaxCtx s = {t.dims[axis], st[axis], n->op == OP_LOG_SOFTMAX};
    CgNest rows = {.rank = t.rank,
                   .n_ops = 2,
                   .elem = {c->f32, c->f32},
                   .base = {cg_ptr(c, g, n->out[0]), cg_ptr(c, g, n->in[0])}};
    for (int i = 0; i < t.rank; i++) {
        rows.dims[i] = i == axis ? 1 : t.dims[i];
        rows.strides[0][i] = rows.strides[1][i] = st[i];
    }
    cg_nest_parallel(c, &rows, ir_type_numel(&t), softmax_body, &s);
}

/* ---- layernorm, rmsnorm ------------------------------------------------- */

typedef struct Centre {
    LLVMValueRef mean;
} Centre;

static LLVMValueRef map_centred_square(Cg *c, LLVMValueRef x, void *ud)
{
    LLVMValueRef d = LLVMBuildFSub(c->b, x, ((Centre *)ud)->mean, "");
    return LLVMBuildFMul(c->b, d, d, "");
}

typedef struct NormCtx {
    bool rms;
    int64_t len;
    double eps;
    LLVMValueRef gamma, beta;
} NormCtx;

/* Nest operands: dst, src, gamma, beta (the last two with stride 0, so
 * that a row on the pool gets them as pointers of its own function). */
static void norm_row(Cg *c, LLVMValueRef *p, void *ud)
{
    NormCtx *nc = ud;
    nc->gamma = p[2];
    nc->beta = p[3];
    LLVMValueRef src = p[1], dst = p[0], n = cg_f32c(c, (double)nc->len);
    Centre ce = {cg_f32c(c, 0.0)};
    if (!nc->rms) {
        RowFold fsum = {.fold = fold_add};
        ce.mean = LLVMBuildFDiv(
            c->b, row_fold(c, src, nc->len, 1, &fsum, cg_f32c(c, 0.0)), n, "");
    }
    RowFold fsq = {.fold = fold_add, .map = map_centred_square, .ud = &ce};
    LLVMValueRef var = LLVMBuildFDiv(
        c->b, row_fold(c, src, nc->len, 1, &fsq, cg_f32c(c, 0.0)), n, "");
    LLVMValueRef ve = LLVMBuildFAdd(c->b, var, cg_f32c(c, nc->eps), "");
    LLVMValueRef rstd =
        LLVMBuildFDiv(c->b, cg_f32c(c, 1.0),
                      cg_intrinsic(c, "llvm.sqrt", c->f32, &ve, 1), "");
    CgLoop l;
    LLVMValueRef j = cg_for_begin(c, &l, cg_i64(c, nc->len));
    LLVMValueRef x =
        LLVMBuildLoad2(c->b, c->f32, cg_gep(c, c->f32, src, j), "");
    LLVMValueRef gm =
        LLVMBuildLoad2(c->b, c->f32, cg_gep(c, c->f32, nc->gamma, j), "");
    LLVMValueRef y =
        LLVMBuildFMul(c->b, LLVMBuildFSub(c->b, x, ce.mean, ""), rstd, "");
    y = LLVMBuildFMul(c->b, y, gm, "");
    if (!nc->rms)
        y = LLVMBuildFAdd(
            c->b, y,
            LLVMBuildLoad2(c->b, c->f32, cg_gep(c, c->f32, nc->beta, j), ""),
            "");
    LLVMBuildStore(c->b, y, cg_gep(c, c->f32, dst, j));
    cg_for_end(c, &l);
}

void cg_lower_norm(Cg *c, Graph *g, const Node *n)
{
    Type t = ir_value_type(g, n->in[0]);
    int64_t len = t.dims[t.rank - 1];
    NormCtx nc = {.rms = n->op == OP_RMSNORM, .len = len, .eps = n->attr.value};
    LLVMValueRef gamma = cg_ptr(c, g, n->in[1]);
    CgNest rows = {
        .rank = 1,
        .dims = {ir_type_numel(&t) / len},
        .n_ops = 4,
        .elem = {c->f32, c->f32, c->f32, c->f32},
        .base = {cg_ptr(c, g, n->out[0]), cg_ptr(c, g, n->in[0]), gamma,
                 n->op == OP_LAYERNORM ? cg_ptr(c, g, n->in[2]) : gamma},
        .strides = {{len}, {len}, {0}, {0}}};
    cg_nest_parallel(c, &rows, ir_type_numel(&t), norm_row, &nc);
}

LLVMValueRef cg_row_logsumexp(Cg *c, LLVMValueRef src, int64_t len)
{
    LLVMValueRef sum;
    LLVMValueRef max = row_max_sumexp(c, src, len, 1, &sum);
    return max_plus_log(c, max, sum);
}
