/* fused.c — the ops whose computation is a body graph (ops.def): fused
 * and matmul_epilogue, built by the fusion passes (passes/fuse_*.c).
 *
 * A body holds args, consts and elementwise ops (verify.c), and for fused
 * optionally one trailing reduction.  It is emitted as ONE loop nest over
 * the iteration shape (the results' type, or the reduction operand's),
 * each operand read through broadcast strides, the body's nodes evaluated
 * as scalars per element by the same code as the unfused lowerings
 * (cg_scalar_node), and each result stored; no intermediate touches
 * memory.
 *
 * A reduction keeps, when its axes are innermost (a row sum), one
 * accumulator register per output element: the kept axes outside, the
 * reduced ones inside.  When its axes lead the kept ones (a bias gradient,
 * [N, C] -> [C]) the output itself accumulates: reduced axes outside, the
 * contiguous kept axes inside, so the inner loop vectorises over C, and
 * the pool splits the kept axes into chunks of about 64 elements.  Either
 * way every output element adds its inputs in index order on one thread:
 * results do not depend on the thread count.
 *
 * matmul_epilogue: when the product is M rows of N with one right-hand
 * matrix (x @ W, batch folded into M) of at most 256 KiB, row blocks of
 * about 512 KiB (at least 64 rows) are the
 * pool's tasks: each computes its rows with one single-threaded GEMM and
 * applies the body to them while they are in cache.  Otherwise the
 * product is computed as cg_lower_matmul does, then the body runs over it.
 * The product lives in result 0's buffer; every element is read before
 * any result element at that index is stored, so result 0 overwrites it
 * in place. */
#include "codegen/cg.h"

#include <math.h>
#include <stdlib.h>

typedef struct Arg {
    bool is_imm; /* a const of the enclosing graph: an immediate */
    LLVMValueRef imm;
    LLVMTypeRef type;
} Arg;

/* A body evaluated per element; its nest operands are the results, then
 * the args. */
typedef struct Body {
    const Graph *g;
    bool *live; /* [node index] */
    int reduce; /* node index of the trailing reduction, or -1 */
    int n_res, n_args;
    Arg arg[CG_NEST_MAX_OPS];
    LLVMValueRef *val; /* [value id]: the scalar at the current element */
    /* the reduction's state */
    CgNest inner; /* the axes looped inside the outer nest */
    int64_t count;
    LLVMValueRef acc, lo, hi;
} Body;

static Body body_new(Cg *c, const Node *n, int n_args)
{
    const Graph *g = c->m->graphs.data[n->attr.graph];
    Body b = {.g = g, .reduce = -1, .n_res = n->n_out, .n_args = n_args};
    if (b.n_res + n_args > CG_NEST_MAX_OPS)
        ir_internal_error("codegen", "%s with %d operands and %d results",
                          ir_op_info[n->op].name, n_args, b.n_res);
    b.live = cg_live_nodes(c->m, g, false);
    b.val = arena_alloc(c->arena,
                        sizeof(LLVMValueRef) * (size_t)(g->values.len + 1));
    for (int ni = 0; ni < g->nodes.len; ni++)
        if (b.live[ni] && (ir_op_info[g->nodes.data[ni].op].flags & OPF_REDUCE))
            b.reduce = ni;
    return b;
}

static const Node *reduce_node(const Body *b)
{
    return &b->g->nodes.data[b->reduce];
}

static LLVMValueRef imm_of(Cg *c, DType dt, double v)
{
    return dt == DT_I32 ? cg_i32c(c, (int32_t)v) : cg_f32c(c, v);
}

/* Every live node but the reduction, in order; argp[i] points at arg i's
 * element. */
static void eval_body(Cg *c, Body *b, LLVMValueRef *argp)
{
    const Graph *g = b->g;
    for (int ni = 0; ni < g->nodes.len; ni++) {
        const Node *n = &g->nodes.data[ni];
        if (!b->live[ni] || ni == b->reduce)
            continue;
        LLVMValueRef v, in[3];
        if (n->op == OP_ARG) {
            const Arg *a = &b->arg[n->attr.index];
            v = a->is_imm
                    ? a->imm
                    : LLVMBuildLoad2(c->b, a->type, argp[n->attr.index], "");
        } else if (n->op == OP_CONST) {
            v = imm_of(c, ir_value_type(g, n->out[0]).dtype, n->attr.value);
        } else {
            for (int i = 0; i < n->n_in && i < 3; i++)
                in[i] = b->val[n->in[i].id];
            v = cg_scalar_node(c, g, n, in);
        }
        b->val[n->out[0].id] = v;
    }
}

/* Whether t broadcasts to the shape `to` (PyTorch rules). */
static bool broadcasts(const Type *t, const Type *to)
{
    int shift = to->rank - t->rank;
    if (shift < 0)
        return false;
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] != 1 && t->dims[i] != to->dims[i + shift])
            return false;
    return true;
}

/* Nest operand b->n_res + i reads arg i (type t at ptr) as `iter`; a const
 * of the enclosing graph is an immediate instead. */
static void set_arg(Cg *c, Body *b, CgNest *nest, int i, const Type *t,
                    LLVMValueRef ptr, const double *imm, const Type *iter)
{
    int k = b->n_res + i;
    Arg *a = &b->arg[i];
    a->type = cg_elem_type(c, t->dtype);
    a->is_imm = imm != NULL;
    if (imm)
        a->imm = imm_of(c, t->dtype, *imm);
    nest->elem[k] = a->type;
    nest->base[k] = ptr;
    if (!broadcasts(t, iter))
        ir_internal_error("codegen",
                          "body %s: argument %d does not "
                          "broadcast to the iteration shape",
                          b->g->name, i);
    if (imm)
        for (int d = 0; d < iter->rank; d++)
            nest->strides[k][d] = 0;
    else
        cg_bcast_strides(t, iter, nest->strides[k]);
    if (nest->n_ops < k + 1)
        nest->n_ops = k + 1;
}

/* Arg i is operand `first + i` of n. */
static void set_operand_args(Cg *c, Graph *g, const Node *n, Body *b,
                             CgNest *nest, int first, int from,
                             const Type *iter)
{
    for (int i = from; i < b->n_args; i++) {
        Value v = n->in[first + i];
        Type t = ir_value_type(g, v);
        double imm;
        bool is_imm = cg_is_const(g, v, &imm);
        set_arg(c, b, nest, i, &t, cg_ptr(c, g, v), is_imm ? &imm : NULL, iter);
    }
}

/* ---- elementwise bodies ------------------------------------------------ */

/* Evaluates everything first, then stores: a result written in place over
 * an operand (plan.c) overwrites an element only after it was read. */
static void ew_element(Cg *c, LLVMValueRef *p, void *ud)
{
    Body *b = ud;
    eval_body(c, b, p + b->n_res);
    for (int r = 0; r < b->n_res; r++)
        LLVMBuildStore(c->b, b->val[b->g->results.data[r].id], p[r]);
}

/* The nest over iter with the node's results as operands 0.. */
static CgNest result_nest(Cg *c, Graph *g, const Node *n, const Type *iter)
{
    CgNest nest = {.rank = iter->rank, .n_ops = n->n_out};
    for (int i = 0; i < iter->rank; i++)
        nest.dims[i] = iter->dims[i];
    for (int r = 0; r < n->n_out; r++) {
        Type t = ir_value_type(g, n->out[r]);
        if (t.rank != iter->rank || ir_type_numel(&t) != ir_type_numel(iter) ||
            !broadcasts(&t, iter))
            ir_internal_error("codegen",
                              "%s: result %d is not of the iteration shape",
                              ir_op_info[n->op].name, r);
        nest.elem[r] = cg_elem_type(c, t.dtype);
        nest.base[r] = cg_ptr(c, g, n->out[r]);
        cg_strides(&t, nest.strides[r]);
    }
    return nest;
}

/* ---- reductions --------------------------------------------------------- */

static LLVMValueRef fold(Cg *c, Op op, LLVMValueRef acc, LLVMValueRef x)
{
    return op == OP_MAX ? cg_fmax(c, acc, x) : LLVMBuildFAdd(c->b, acc, x, "");
}

static LLVMValueRef reduce_init(Cg *c, Op op)
{
    return cg_f32c(c, op == OP_MAX ? -INFINITY : 0.0);
}

/* The reduced operand's value at the current element. */
static LLVMValueRef reduced_value(Cg *c, Body *b, LLVMValueRef *argp)
{
    eval_body(c, b, argp);
    return b->val[reduce_node(b)->in[0].id];
}

static LLVMValueRef finish(Cg *c, Body *b, LLVMValueRef v)
{
    if (reduce_node(b)->op != OP_MEAN)
        return v;
    return LLVMBuildFDiv(c->b, v, cg_f32c(c, (double)b->count), "");
}

/* Kept-outside form: one register accumulator per output element. */
static void acc_element(Cg *c, LLVMValueRef *p, void *ud)
{
    Body *b = ud;
    LLVMValueRef x = reduced_value(c, b, p + 1);
    LLVMValueRef old = LLVMBuildLoad2(c->b, c->f32, b->acc, "");
    LLVMBuildStore(c->b, fold(c, reduce_node(b)->op, old, x), b->acc);
}

static void acc_row(Cg *c, LLVMValueRef *p, void *ud)
{
    Body *b = ud;
    b->acc = cg_entry_alloca(c, c->f32, "acc");
    LLVMBuildStore(c->b, reduce_init(c, reduce_node(b)->op), b->acc);
    CgNest in = b->inner;
    for (int o = 0; o < in.n_ops; o++)
        in.base[o] = p[o];
    bool was = c->reorder_reductions;
    c->reorder_reductions = reduce_node(b)->op != OP_MAX; /* sums only */
    cg_nest(c, &in, acc_element, b);
    c->reorder_reductions = was;
    LLVMValueRef v = LLVMBuildLoad2(c->b, c->f32, b->acc, "");
    LLVMBuildStore(c->b, finish(c, b, v), p[0]);
}

/* The nest with only the axes whose reduce bit equals `reduced`. */
static CgNest axes_of(const CgNest *full, uint32_t axes, bool reduced)
{
    CgNest n = *full;
    for (int i = 0; i < n.rank; i++)
        if (((axes >> i) & 1) != reduced)
            n.dims[i] = 1;
    return n;
}

/* Every reduced axis (of more than one element) comes before every kept
 * one, and there are both. */
static bool reduces_leading(const Type *t, uint32_t axes)
{
    bool kept = false, red = false;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] == 1)
            continue;
        if (axes >> i & 1) {
            if (kept)
                return false;
            red = true;
        } else {
            kept = true;
        }
    }
    return kept && red;
}

/* Leading form: out[j] = init; for each reduced index, for each kept j in
 * the chunk, out[j] = fold(out[j], x); then the mean's division. */
typedef struct Lead {
    Body *b;
    CgNest kept;   /* simplified, rank >= 1; split over axis 0 */
    CgNest outer;  /* the reduced axes */
    int64_t chunk; /* kept axis-0 indices per task */
} Lead;

static void lead_element(Cg *c, LLVMValueRef *p, void *ud)
{
    Body *b = ud;
    LLVMValueRef x = reduced_value(c, b, p + 1);
    LLVMValueRef old = LLVMBuildLoad2(c->b, c->f32, p[0], "");
    LLVMBuildStore(c->b, fold(c, reduce_node(b)->op, old, x), p[0]);
}

static void lead_row(Cg *c, LLVMValueRef *p, void *ud)
{
    Lead *l = ud;
    CgNest k = l->kept;
    for (int o = 0; o < k.n_ops; o++)
        k.base[o] = p[o];
    cg_nest_range(c, &k, l->b->lo, l->b->hi, lead_element, l->b);
}

/* out[e] = f(out[e]) for e in [lo, hi) * per (the output is contiguous). */
static void out_pass(Cg *c, Lead *l, LLVMValueRef out, bool init)
{
    int64_t per = l->kept.strides[0][0];
    LLVMValueRef first = LLVMBuildNSWMul(c->b, l->b->lo, cg_i64(c, per), "");
    LLVMValueRef n =
        LLVMBuildNSWMul(c->b, LLVMBuildNSWSub(c->b, l->b->hi, l->b->lo, ""),
                        cg_i64(c, per), "");
    CgLoop loop;
    LLVMValueRef i = cg_for_begin(c, &loop, n);
    LLVMValueRef p =
        cg_gep(c, c->f32, out, LLVMBuildNSWAdd(c->b, first, i, ""));
    LLVMValueRef v = reduce_init(c, reduce_node(l->b)->op);
    if (!init)
        v = finish(c, l->b, LLVMBuildLoad2(c->b, c->f32, p, ""));
    LLVMBuildStore(c->b, v, p);
    cg_for_end(c, &loop);
}

static void lead_chunks(Cg *c, LLVMValueRef *caps, LLVMValueRef begin,
                        LLVMValueRef end, void *ud)
{
    Lead *l = ud;
    Body *b = l->b;
    LLVMValueRef d0 = cg_i64(c, l->kept.dims[0]), cs = cg_i64(c, l->chunk);
    b->lo = LLVMBuildNSWMul(c->b, begin, cs, "lo");
    LLVMValueRef hi = LLVMBuildNSWMul(c->b, end, cs, "");
    b->hi = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, hi, d0, ""),
                            hi, d0, "hi");
    out_pass(c, l, caps[0], true);
    CgNest outer = l->outer;
    for (int o = 0; o < outer.n_ops; o++)
        outer.base[o] = caps[o];
    cg_nest(c, &outer, lead_row, l);
    if (reduce_node(b)->op == OP_MEAN)
        out_pass(c, l, caps[0], false);
}

static void emit_leading(Cg *c, Body *b, const CgNest *full, uint32_t axes,
                         int64_t work)
{
    Lead l = {.b = b, .outer = axes_of(full, axes, true)};
    CgNest kept = axes_of(full, axes, false);
    l.kept = cg_nest_simplify(&kept);
    int64_t per = l.kept.strides[0][0] > 0 ? l.kept.strides[0][0] : 1;
    l.chunk = per >= 64 ? 1 : (64 + per - 1) / per;
    int64_t n_chunks = (l.kept.dims[0] + l.chunk - 1) / l.chunk;
    LLVMValueRef caps[CG_NEST_MAX_OPS];
    for (int o = 0; o < full->n_ops; o++)
        caps[o] = full->base[o];
    if (work >= CG_PAR_MIN_WORK && n_chunks > 1)
        cg_parallel_for(c, cg_i64(c, n_chunks), caps, full->n_ops, lead_chunks,
                        &l);
    else
        lead_chunks(c, caps, cg_i64(c, 0), cg_i64(c, n_chunks), &l);
}

/* The output is contiguous over the kept axes of the operand's shape. */
static void emit_reduction(Cg *c, Graph *g, const Node *n, Body *b)
{
    const Node *rn = reduce_node(b);
    Type iter = ir_value_type(b->g, rn->in[0]);
    uint32_t axes = rn->attr.axes;
    CgNest full = {.rank = iter.rank, .n_ops = 1, .elem = {c->f32}};
    full.base[0] = cg_ptr(c, g, n->out[0]);
    int64_t s = 1;
    b->count = 1;
    for (int i = iter.rank - 1; i >= 0; i--) {
        full.dims[i] = iter.dims[i];
        bool red = axes >> i & 1;
        full.strides[0][i] = red ? 0 : s;
        s *= red ? 1 : iter.dims[i];
        b->count *= red ? iter.dims[i] : 1;
    }
    set_operand_args(c, g, n, b, &full, 0, 0, &iter);
    int64_t work = ir_type_numel(&iter);
    if (reduces_leading(&iter, axes)) {
        emit_leading(c, b, &full, axes, work);
        return;
    }
    b->inner = axes_of(&full, axes, true);
    CgNest outer = axes_of(&full, axes, false);
    cg_nest_parallel(c, &outer, work, acc_row, b);
}

void cg_lower_fused(Cg *c, Graph *g, const Node *n)
{
    Body b = body_new(c, n, n->n_in);
    if (b.reduce >= 0) {
        if (n->n_out != 1)
            ir_internal_error("codegen", "fused: a reduction and %d results",
                              n->n_out);
        emit_reduction(c, g, n, &b);
    } else {
        Type iter = ir_value_type(g, n->out[0]);
        CgNest nest = result_nest(c, g, n, &iter);
        set_operand_args(c, g, n, &b, &nest, 0, 0, &iter);
        cg_nest_parallel(c, &nest, ir_type_numel(&iter), ew_element, &b);
    }
    free(b.live);
}

/* ---- matmul_epilogue ------------------------------------------------------ */

/* The product as row blocks: rows [r0, r1) of op(a) times op(b) into rows
 * [r0, r1) of the product, then the body over them. */
typedef struct Rows {
    Body *b;
    CgNest s;        /* the body's nest over [M, N], simplified */
    int64_t per_row; /* s's axis-0 indices per product row */
    int64_t m, n, k, rb;
    bool ta, tb;
    int64_t lda, ldb;
} Rows;

/* caps: a, b, status, then s's operands (results first, the product's
 * buffer being result 0's). */
static void row_blocks(Cg *c, LLVMValueRef *caps, LLVMValueRef begin,
                       LLVMValueRef end, void *ud)
{
    Rows *r = ud;
    CgLoop loop;
    LLVMValueRef blk = LLVMBuildNSWAdd(
        c->b, begin,
        cg_for_begin(c, &loop, LLVMBuildNSWSub(c->b, end, begin, "")), "");
    LLVMValueRef r0 = LLVMBuildNSWMul(c->b, blk, cg_i64(c, r->rb), "r0");
    LLVMValueRef r1 = LLVMBuildNSWAdd(c->b, r0, cg_i64(c, r->rb), "");
    LLVMValueRef m = cg_i64(c, r->m);
    r1 = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, r1, m, ""), r1,
                         m, "r1");
    LLVMValueRef a_off =
        r->ta ? r0 : LLVMBuildNSWMul(c->b, r0, cg_i64(c, r->k), "");
    LLVMValueRef c_off = LLVMBuildNSWMul(c->b, r0, cg_i64(c, r->n), "");
    LLVMValueRef z = cg_i64(c, 0);
    LLVMValueRef args[17] = {cg_i32c(c, r->ta),
                             cg_i32c(c, r->tb),
                             LLVMBuildNSWSub(c->b, r1, r0, ""),
                             cg_i64(c, r->n),
                             cg_i64(c, r->k),
                             cg_f32c(c, 1.0),
                             cg_gep(c, c->f32, caps[0], a_off),
                             cg_i64(c, r->lda),
                             z,
                             caps[1],
                             cg_i64(c, r->ldb),
                             z,
                             cg_f32c(c, 0.0),
                             cg_gep(c, c->f32, caps[3], c_off),
                             cg_i64(c, r->n),
                             z,
                             cg_i64(c, 1)};
    cg_par_status(c, caps[2], cg_rt_call(c, CG_RT_SGEMM_BATCHED, args, 17));
    CgNest s = r->s;
    for (int o = 0; o < s.n_ops; o++)
        s.base[o] = caps[3 + o];
    LLVMValueRef per = cg_i64(c, r->per_row);
    cg_nest_range(c, &s, LLVMBuildNSWMul(c->b, r0, per, ""),
                  LLVMBuildNSWMul(c->b, r1, per, ""), ew_element, r->b);
    cg_for_end(c, &loop);
}

/* The operand's pointer, a folded transpose read from its source. */
static LLVMValueRef gemm_ptr(Cg *c, Graph *g, Value v, bool *trans)
{
    const Node *d = cg_def_node(g, v);
    *trans = d->op == OP_TRANSPOSE && cg_transpose_folds(c, g, d);
    return cg_ptr(c, g, *trans ? d->in[0] : v);
}

/* The body's nest over the product read as [M, N] rows, when every
 * operand steps uniformly from row to row. */
static bool flat_rows(const CgNest *nest, int64_t m, CgNest *flat)
{
    CgNest rows = *nest;
    rows.rank = nest->rank - 1;
    CgNest s = cg_nest_simplify(&rows);
    if (s.rank > 1)
        return false;
    *flat = *nest;
    flat->rank = 2;
    flat->dims[0] = m;
    flat->dims[1] = nest->dims[nest->rank - 1];
    for (int o = 0; o < nest->n_ops; o++) {
        flat->strides[o][0] = s.rank ? s.strides[o][0] : 0;
        flat->strides[o][1] = nest->strides[o][nest->rank - 1];
    }
    return true;
}

/* Row blocks apply to x @ W (W one matrix, x's batch folding into M). */
static bool emit_row_blocks(Cg *c, Graph *g, const Node *n, Body *b,
                            const CgNest *nest)
{
    Type a = ir_value_type(g, n->in[0]), bt = ir_value_type(g, n->in[1]);
    Type p = ir_value_type(g, n->out[0]);
    Rows r = {.b = b, .k = a.dims[a.rank - 1], .n = bt.dims[bt.rank - 1]};
    LLVMValueRef caps[3 + CG_NEST_MAX_OPS];
    caps[0] = gemm_ptr(c, g, n->in[0], &r.ta);
    caps[1] = gemm_ptr(c, g, n->in[1], &r.tb);
    r.m = ir_type_numel(&a) / r.k;
    if (ir_type_numel(&bt) != r.k * r.n || ir_type_numel(&p) != r.m * r.n ||
        (r.ta && r.m != a.dims[a.rank - 2]) || r.n == 0 || r.k == 0)
        return false;
    /* Blocks of about 512 KiB of C (they stay in L2 for the epilogue),
     * and never under 64 rows: each block's GEMM packs all of B again, so
     * fewer rows would spend the time packing (10-row blocks made gpt
     * T=256's MLP slower fused than unfused).  For the same reason a B of
     * more than 256 KiB, which does not stay in cache between blocks, is
     * multiplied whole and the body applied after (measured: gpt T=256's
     * training step 564 ms in blocks, 485 ms whole; gpt T=64 and the mlp
     * unchanged either way). */
    if (r.k * r.n * 4 > 256 * 1024)
        return false;
    r.rb = (131072 / r.n + 7) / 8 * 8;
    r.rb = r.rb < 64 ? 64 : r.rb > r.m ? r.m : r.rb;
    int64_t n_blocks = r.rb ? (r.m + r.rb - 1) / r.rb : 0;
    CgNest flat;
    if (n_blocks < 2 || !flat_rows(nest, r.m, &flat))
        return false;
    r.s = cg_nest_simplify(&flat);
    r.per_row = r.s.dims[0] / r.m;
    r.lda = r.ta ? r.m : r.k;
    r.ldb = r.tb ? r.k : r.n;
    LLVMValueRef status = cg_entry_alloca(c, c->i32, "status");
    LLVMBuildStore(c->b, cg_i32c(c, 0), status);
    caps[2] = status;
    for (int o = 0; o < r.s.n_ops; o++)
        caps[3 + o] = r.s.base[o];
    if (r.m * r.n >= CG_PAR_MIN_WORK)
        cg_parallel_for(c, cg_i64(c, n_blocks), caps, 3 + r.s.n_ops, row_blocks,
                        &r);
    else
        row_blocks(c, caps, cg_i64(c, 0), cg_i64(c, n_blocks), &r);
    cg_check_status(c, LLVMBuildLoad2(c->b, c->i32, status, ""));
    return true;
}

void cg_lower_matmul_epilogue(Cg *c, Graph *g, const Node *n)
{
    Body b = body_new(c, n, n->n_in - 1);
    if (b.reduce >= 0)
        ir_internal_error("codegen", "matmul_epilogue: a reduction in %s",
                          b.g->name);
    Type prod = ir_value_type(g, n->out[0]);
    CgNest nest = result_nest(c, g, n, &prod);
    set_arg(c, &b, &nest, 0, &prod, nest.base[0], NULL, &prod);
    set_operand_args(c, g, n, &b, &nest, 1, 1, &prod);
    if (prod.rank < 2 || !emit_row_blocks(c, g, n, &b, &nest)) {
        cg_lower_matmul(c, g, n);
        cg_nest_parallel(c, &nest, ir_type_numel(&prod), ew_element, &b);
    }
    free(b.live);
}
