/* nn.c — gather (embedding lookup) and the losses.
 *
 * Ids and targets come from the caller, so they are checked as they are
 * read: an id outside 0..V-1 (a target outside 0..C-1) makes forward call
 * nnc_rt_set_error(NNC_ERR_RANGE, ...) with the value and its position in
 * the ids tensor, and return that status before anything is read with it.
 * Losses are means over all positions, accumulated in double; cross
 * entropy is logsumexp(row) - row[target], max-subtracted. */
#include "codegen/cg.h"

#include <stdio.h>
#include <string.h>

#include "runtime/nnc.h"

/* Fails with NNC_ERR_RANGE unless 0 <= id < limit; the message names the
 * id, its index in `ids` (shape t) from flat position i, and the range. */
static void check_index(Cg *c, const char *what, LLVMValueRef id,
                        LLVMValueRef i, const Type *t, int64_t limit)
{
    LLVMValueRef wide = LLVMBuildSExt(c->b, id, c->i64, "");
    LLVMValueRef bad =
        LLVMBuildICmp(c->b, LLVMIntUGE, wide, cg_i64(c, limit), "");
    char fmt[256];
    int len = snprintf(fmt, sizeof fmt, "%s %%d at position [", what);
    LLVMValueRef args[IR_MAX_RANK + 2];
    unsigned n = 0;
    args[n++] = id;
    int64_t st[IR_MAX_RANK];
    cg_strides(t, st);
    for (int k = 0; k < t->rank; k++) {
        LLVMValueRef q = LLVMBuildSDiv(c->b, i, cg_i64(c, st[k]), "");
        args[n++] = LLVMBuildSRem(c->b, q, cg_i64(c, t->dims[k]), "");
        len += snprintf(fmt + len, sizeof fmt - (size_t)len, "%s%%lld",
                        k ? ", " : "");
    }
    snprintf(fmt + len, sizeof fmt - (size_t)len, "] is outside 0..%lld",
             (long long)(limit - 1));
    cg_error_if(c, bad, NNC_ERR_RANGE, fmt, args, n);
}

void cg_lower_gather(Cg *c, Graph *g, const Node *n)
{
    Type table = ir_value_type(g, n->in[0]), ids = ir_value_type(g, n->in[1]);
    int64_t row = ir_type_numel(&table) / table.dims[0];
    LLVMValueRef tp = cg_ptr(c, g, n->in[0]), ip = cg_ptr(c, g, n->in[1]);
    LLVMValueRef out = cg_ptr(c, g, n->out[0]);
    CgLoop l;
    LLVMValueRef i = cg_for_begin(c, &l, cg_i64(c, ir_type_numel(&ids)));
    LLVMValueRef id =
        LLVMBuildLoad2(c->b, c->i32, cg_gep(c, c->i32, ip, i), "id");
    check_index(c, "embedding: id", id, i, &ids, table.dims[0]);
    LLVMValueRef src =
        cg_gep(c, c->f32, tp,
               LLVMBuildNSWMul(c->b, LLVMBuildSExt(c->b, id, c->i64, ""),
                               cg_i64(c, row), ""));
    LLVMValueRef dst =
        cg_gep(c, c->f32, out, LLVMBuildNSWMul(c->b, i, cg_i64(c, row), ""));
    cg_memcpy(c, dst, src, row * 4);
    cg_for_end(c, &l);
}

static LLVMValueRef acc_new(Cg *c)
{
    LLVMValueRef acc = cg_entry_alloca(c, c->f64, "loss");
    LLVMBuildStore(c->b, LLVMConstReal(c->f64, 0.0), acc);
    return acc;
}

static void acc_add(Cg *c, LLVMValueRef acc, LLVMValueRef x)
{
    LLVMValueRef old = LLVMBuildLoad2(c->b, c->f64, acc, "");
    LLVMValueRef wide = LLVMBuildFPExt(c->b, x, c->f64, "");
    LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, old, wide, ""), acc);
}

/* out[0] = acc / count, rounded to f32. */
static void acc_store_mean(Cg *c, LLVMValueRef acc, int64_t count,
                           LLVMValueRef out)
{
    LLVMValueRef sum = LLVMBuildLoad2(c->b, c->f64, acc, "");
    LLVMValueRef mean =
        LLVMBuildFDiv(c->b, sum, LLVMConstReal(c->f64, (double)count), "");
    LLVMBuildStore(c->b, LLVMBuildFPTrunc(c->b, mean, c->f32, ""), out);
}

void cg_check_targets(Cg *c, LLVMValueRef tp, const Type *targets,
                      int64_t classes)
{
    CgLoop l;
    LLVMValueRef i = cg_for_begin(c, &l, cg_i64(c, ir_type_numel(targets)));
    LLVMValueRef t =
        LLVMBuildLoad2(c->b, c->i32, cg_gep(c, c->i32, tp, i), "target");
    check_index(c, "cross_entropy: target", t, i, targets, classes);
    cg_for_end(c, &l);
}

void cg_lower_cross_entropy(Cg *c, Graph *g, const Node *n)
{
    Type logits = ir_value_type(g, n->in[0]),
         targets = ir_value_type(g, n->in[1]);
    int64_t classes = logits.dims[logits.rank - 1],
            rows = ir_type_numel(&targets);
    LLVMValueRef lp = cg_ptr(c, g, n->in[0]), tp = cg_ptr(c, g, n->in[1]);
    LLVMValueRef acc = acc_new(c);
    CgLoop l;
    LLVMValueRef i = cg_for_begin(c, &l, cg_i64(c, rows));
    LLVMValueRef t =
        LLVMBuildLoad2(c->b, c->i32, cg_gep(c, c->i32, tp, i), "target");
    check_index(c, "cross_entropy: target", t, i, &targets, classes);
    LLVMValueRef row =
        cg_gep(c, c->f32, lp, LLVMBuildNSWMul(c->b, i, cg_i64(c, classes), ""));
    LLVMValueRef lse = cg_row_logsumexp(c, row, classes);
    LLVMValueRef picked = LLVMBuildLoad2(
        c->b, c->f32,
        cg_gep(c, c->f32, row, LLVMBuildSExt(c->b, t, c->i64, "")), "");
    acc_add(c, acc, LLVMBuildFSub(c->b, lse, picked, ""));
    cg_for_end(c, &l);
    acc_store_mean(c, acc, rows, cg_ptr(c, g, n->out[0]));
}

/* mse: (a - b)^2; bce_with_logits: max(z, 0) - z t + log1p(exp(-|z|)). */
static LLVMValueRef pair_term(Cg *c, Op op, LLVMValueRef a, LLVMValueRef b)
{
    if (op == OP_MSE) {
        LLVMValueRef d = LLVMBuildFSub(c->b, a, b, "");
        return LLVMBuildFMul(c->b, d, d, "");
    }
    LLVMValueRef absz = cg_intrinsic(c, "llvm.fabs", c->f32, &a, 1);
    LLVMValueRef e = LLVMBuildFNeg(c->b, absz, "");
    e = cg_exp(c, e);
    LLVMValueRef soft = cg_rt_call(c, CG_RT_LOG1PF, &e, 1);
    LLVMValueRef relu = cg_fmax(c, a, cg_f32c(c, 0.0));
    return LLVMBuildFAdd(
        c->b, LLVMBuildFSub(c->b, relu, LLVMBuildFMul(c->b, a, b, ""), ""),
        soft, "");
}

void cg_lower_pair_loss(Cg *c, Graph *g, const Node *n)
{
    Type t = ir_value_type(g, n->in[0]);
    int64_t count = ir_type_numel(&t);
    LLVMValueRef ap = cg_ptr(c, g, n->in[0]), bp = cg_ptr(c, g, n->in[1]);
    LLVMValueRef acc = acc_new(c);
    CgLoop l;
    LLVMValueRef i = cg_for_begin(c, &l, cg_i64(c, count));
    LLVMValueRef a = LLVMBuildLoad2(c->b, c->f32, cg_gep(c, c->f32, ap, i), "");
    LLVMValueRef b = LLVMBuildLoad2(c->b, c->f32, cg_gep(c, c->f32, bp, i), "");
    acc_add(c, acc, pair_term(c, n->op, a, b));
    cg_for_end(c, &l);
    acc_store_mean(c, acc, count, cg_ptr(c, g, n->out[0]));
}
