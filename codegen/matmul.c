/* matmul.c — matrix products through libnncrt's nnc_sgemm_batched
 * (OpenBLAS underneath), and attention built on them.
 *
 * A matmul's leading axes are batch axes that broadcast; each operand gets
 * a batch stride per result batch axis (0 where it broadcasts).  The batch
 * axes are merged like a loop nest's (loops.c); the innermost remaining one
 * becomes one batched GEMM call and any others loops around it.  When the
 * right operand is one matrix for the whole batch (`x @ W` with x
 * [T, B, H]) the batch folds into M and the product is a single GEMM.  An
 * operand that is `transpose(v)` of a value is read in place with the
 * GEMM's transpose flag.  Attention is materialised: scores = scale * q @
 * k^T into the node's scratch, the causal mask, a row softmax, scores @ v. */
#include "codegen/cg.h"

#include <math.h>

typedef struct GemmOperand {
    LLVMValueRef ptr;
    bool trans;
    int64_t ld;
    int64_t bstride[IR_MAX_RANK]; /* per batch axis, in elements */
} GemmOperand;

typedef struct Gemm {
    int batch_rank;
    int64_t batch[IR_MAX_RANK];
    int64_t m, n, k;
    double alpha;
    GemmOperand a, b, c;
} Gemm;

/* Batch strides of an operand whose last two axes (rows x cols elements
 * each matrix) are the matrix, read as the result's batch axes. */
static void batch_strides(const Type *t, const Gemm *g, int64_t *strides)
{
    int br = t->rank - 2, shift = g->batch_rank - br;
    int64_t s = t->dims[t->rank - 2] * t->dims[t->rank - 1];
    for (int i = g->batch_rank - 1; i >= 0; i--) {
        int j = i - shift;
        strides[i] = (j < 0 || t->dims[j] == 1) ? 0 : s;
        if (j >= 0)
            s *= t->dims[j];
    }
}

static void call_gemm(Cg *c, const Gemm *g, LLVMValueRef *p, int64_t m,
                      int64_t batch, const int64_t *st)
{
    LLVMValueRef args[17] = {cg_i32c(c, g->a.trans),
                             cg_i32c(c, g->b.trans),
                             cg_i64(c, m),
                             cg_i64(c, g->n),
                             cg_i64(c, g->k),
                             cg_f32c(c, g->alpha),
                             p[1],
                             cg_i64(c, g->a.ld),
                             cg_i64(c, st[1]),
                             p[2],
                             cg_i64(c, g->b.ld),
                             cg_i64(c, st[2]),
                             cg_f32c(c, 0.0),
                             p[0],
                             cg_i64(c, g->n),
                             cg_i64(c, st[0]),
                             cg_i64(c, batch)};
    cg_check_status(c, cg_rt_call(c, CG_RT_SGEMM_BATCHED, args, 17));
}

typedef struct GemmLoop {
    const Gemm *g;
    int64_t batch;
    int64_t st[3];
} GemmLoop;

static void gemm_body(Cg *c, LLVMValueRef *p, void *ud)
{
    GemmLoop *l = ud;
    call_gemm(c, l->g, p, l->g->m, l->batch, l->st);
}

static void emit_gemm(Cg *c, const Gemm *g)
{
    CgNest nest = {.rank = g->batch_rank,
                   .n_ops = 3,
                   .elem = {c->f32, c->f32, c->f32},
                   .base = {g->c.ptr, g->a.ptr, g->b.ptr}};
    for (int i = 0; i < g->batch_rank; i++) {
        nest.dims[i] = g->batch[i];
        nest.strides[0][i] = g->c.bstride[i];
        nest.strides[1][i] = g->a.bstride[i];
        nest.strides[2][i] = g->b.bstride[i];
    }
    CgNest s = cg_nest_simplify(&nest);
    GemmLoop l = {.g = g, .batch = 1};
    if (s.rank > 0) {
        int last = --s.rank;
        l.batch = s.dims[last];
        for (int o = 0; o < 3; o++)
            l.st[o] = s.strides[o][last];
    }
    bool fold_m = s.rank == 0 && l.batch > 1 && l.st[2] == 0 && !g->a.trans &&
                  l.st[1] == g->m * g->k && l.st[0] == g->m * g->n;
    if (fold_m) {
        LLVMValueRef p[3] = {g->c.ptr, g->a.ptr, g->b.ptr};
        int64_t none[3] = {0, 0, 0};
        call_gemm(c, g, p, g->m * l.batch, 1, none);
        return;
    }
    cg_nest(c, &s, gemm_body, &l);
}

/* The operand as the GEMM sees it: a folded transpose is read from its
 * source with the transpose flag. */
static GemmOperand gemm_operand(Cg *c, Graph *g, Value v)
{
    Type t = ir_value_type(g, v);
    GemmOperand o = {.ptr = NULL, .ld = t.dims[t.rank - 1]};
    const Node *d = cg_def_node(g, v);
    if (d->op == OP_TRANSPOSE && cg_transpose_folds(c, g, d)) {
        o.ptr = cg_ptr(c, g, d->in[0]);
        o.trans = true;
        o.ld = t.dims[t.rank - 2];
    } else {
        o.ptr = cg_ptr(c, g, v);
    }
    return o;
}

static void set_batch(Gemm *gm, const Type *out)
{
    gm->batch_rank = out->rank - 2;
    for (int i = 0; i < gm->batch_rank; i++)
        gm->batch[i] = out->dims[i];
}

void cg_lower_matmul(Cg *c, Graph *g, const Node *n)
{
    Type a = ir_value_type(g, n->in[0]), b = ir_value_type(g, n->in[1]);
    Type out = ir_value_type(g, n->out[0]);
    Gemm gm = {.m = a.dims[a.rank - 2],
               .k = a.dims[a.rank - 1],
               .n = b.dims[b.rank - 1],
               .alpha = 1.0};
    set_batch(&gm, &out);
    gm.a = gemm_operand(c, g, n->in[0]);
    gm.b = gemm_operand(c, g, n->in[1]);
    gm.c = (GemmOperand){.ptr = cg_ptr(c, g, n->out[0]), .ld = gm.n};
    batch_strides(&a, &gm, gm.a.bstride);
    batch_strides(&b, &gm, gm.b.bstride);
    batch_strides(&out, &gm, gm.c.bstride);
    emit_gemm(c, &gm);
}

void cg_causal_fill(Cg *c, LLVMValueRef p, int64_t mats, int64_t rows,
                    int64_t cols)
{
    CgLoop lm, lr, lc;
    LLVMValueRef m = cg_for_begin(c, &lm, cg_i64(c, mats));
    LLVMValueRef mat = cg_gep(
        c, c->f32, p, LLVMBuildNSWMul(c->b, m, cg_i64(c, rows * cols), ""));
    LLVMValueRef r =
        cg_for_begin(c, &lr, cg_i64(c, rows < cols ? rows : cols - 1));
    LLVMValueRef first = LLVMBuildNSWAdd(c->b, r, cg_i64(c, 1), "");
    LLVMValueRef row = cg_gep(
        c, c->f32, mat,
        LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, r, cg_i64(c, cols), ""),
                        first, ""));
    LLVMValueRef j =
        cg_for_begin(c, &lc, LLVMBuildNSWSub(c->b, cg_i64(c, cols), first, ""));
    LLVMBuildStore(c->b, cg_f32c(c, -INFINITY), cg_gep(c, c->f32, row, j));
    cg_for_end(c, &lc);
    cg_for_end(c, &lr);
    cg_for_end(c, &lm);
}

void cg_lower_causal_mask(Cg *c, Graph *g, const Node *n)
{
    Type t = ir_value_type(g, n->in[0]);
    int64_t rows = t.dims[t.rank - 2], cols = t.dims[t.rank - 1];
    LLVMValueRef out = cg_ptr(c, g, n->out[0]);
    cg_memcpy(c, out, cg_ptr(c, g, n->in[0]), ir_type_numel(&t) * 4);
    cg_causal_fill(c, out, ir_type_numel(&t) / (rows * cols), rows, cols);
}

typedef struct RowCtx {
    int64_t len;
} RowCtx;

static void softmax_rows_body(Cg *c, LLVMValueRef *p, void *ud)
{
    cg_softmax_row(c, p[0], p[0], ((RowCtx *)ud)->len, 1, false);
}

/* attr.value is the scale; the front end fills in the default 1/sqrt(d). */
void cg_lower_attention_materialised(Cg *c, Graph *g, const Node *n)
{
    Type q = ir_value_type(g, n->in[0]), k = ir_value_type(g, n->in[1]);
    Type v = ir_value_type(g, n->in[2]), out = ir_value_type(g, n->out[0]);
    int64_t tq = q.dims[q.rank - 2], d = q.dims[q.rank - 1],
            tk = k.dims[k.rank - 2];
    Type scores = out;
    scores.dims[scores.rank - 1] = tk;
    LLVMValueRef s = cg_scratch(c, g, n);
    double scale = n->attr.value;
    Gemm qk = {.m = tq, .n = tk, .k = d, .alpha = scale};
    set_batch(&qk, &out);
    qk.a = (GemmOperand){.ptr = cg_ptr(c, g, n->in[0]), .ld = d};
    qk.b = (GemmOperand){.ptr = cg_ptr(c, g, n->in[1]), .ld = d, .trans = true};
    qk.c = (GemmOperand){.ptr = s, .ld = tk};
    batch_strides(&q, &qk, qk.a.bstride);
    batch_strides(&k, &qk, qk.b.bstride);
    batch_strides(&scores, &qk, qk.c.bstride);
    emit_gemm(c, &qk);
    int64_t rows = ir_type_numel(&scores) / tk;
    if (n->attr.flag)
        cg_causal_fill(c, s, rows / tq, tq, tk);
    RowCtx rc = {tk};
    CgNest all = {.rank = 1,
                  .dims = {rows},
                  .n_ops = 1,
                  .elem = {c->f32},
                  .base = {s},
                  .strides = {{tk}}};
    cg_nest(c, &all, softmax_rows_body, &rc);
    Gemm pv = {.m = tq, .n = v.dims[v.rank - 1], .k = tk, .alpha = 1.0};
    set_batch(&pv, &out);
    pv.a = (GemmOperand){.ptr = s, .ld = tk};
    pv.b = (GemmOperand){.ptr = cg_ptr(c, g, n->in[2]), .ld = pv.n};
    pv.c = (GemmOperand){.ptr = cg_ptr(c, g, n->out[0]), .ld = pv.n};
    batch_strides(&scores, &pv, pv.a.bstride);
    batch_strides(&v, &pv, pv.b.bstride);
    batch_strides(&out, &pv, pv.c.bstride);
    emit_gemm(c, &pv);
}
