/* loops.c — small LLVM builders used by every lowering: constants,
 * pointer arithmetic, entry-block allocas, memcpy, counted loops and
 * strided loop nests over tensors.
 *
 * Loops are emitted in the canonical form LLVM's loop passes expect: an i64
 * induction variable from 0 with step 1 (`nsw`), a header with a phi,
 * the body, a latch back to the header.  Scalar accumulators live in
 * entry-block allocas, which SROA turns into registers from -O1 on. */
#include "codegen/cg.h"

#include <llvm-c/DebugInfo.h>
#include <string.h>

LLVMValueRef cg_i64(Cg *c, int64_t v)
{
    return LLVMConstInt(c->i64, (unsigned long long)v, 1);
}
LLVMValueRef cg_i32c(Cg *c, int32_t v)
{
    return LLVMConstInt(c->i32, (unsigned long long)(int64_t)v, 1);
}
LLVMValueRef cg_f32c(Cg *c, double v) { return LLVMConstReal(c->f32, v); }
LLVMTypeRef cg_elem_type(Cg *c, DType dt)
{
    return dt == DT_I32 ? c->i32 : c->f32;
}

LLVMValueRef cg_gep(Cg *c, LLVMTypeRef elem, LLVMValueRef base,
                    LLVMValueRef idx)
{
    return LLVMBuildInBoundsGEP2(c->b, elem, base, &idx, 1, "");
}

LLVMValueRef cg_gep_const(Cg *c, LLVMTypeRef elem, LLVMValueRef base,
                          int64_t idx)
{
    return idx == 0 ? base : cg_gep(c, elem, base, cg_i64(c, idx));
}

LLVMValueRef cg_entry_alloca(Cg *c, LLVMTypeRef t, const char *name)
{
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(c->fn);
    LLVMBuilderRef eb = LLVMCreateBuilderInContext(c->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(eb, first);
    else
        LLVMPositionBuilderAtEnd(eb, entry);
    LLVMValueRef a = LLVMBuildAlloca(eb, t, name);
    LLVMDisposeBuilder(eb);
    return a;
}

void cg_memcpy_dyn(Cg *c, LLVMValueRef dst, LLVMValueRef src,
                   LLVMValueRef bytes)
{
    LLVMBuildMemCpy(c->b, dst, 4, src, 4, bytes);
}

void cg_memcpy(Cg *c, LLVMValueRef dst, LLVMValueRef src, int64_t bytes)
{
    if (bytes > 0)
        cg_memcpy_dyn(c, dst, src, cg_i64(c, bytes));
}

LLVMBasicBlockRef cg_block(Cg *c, const char *name)
{
    return LLVMAppendBasicBlockInContext(c->ctx, c->fn, name);
}

LLVMValueRef cg_for_begin(Cg *c, CgLoop *l, LLVMValueRef n)
{
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
    l->head = cg_block(c, "loop");
    LLVMBasicBlockRef body = cg_block(c, "body");
    l->exit = cg_block(c, "done");
    LLVMBuildBr(c->b, l->head);
    LLVMPositionBuilderAtEnd(c->b, l->head);
    l->iv = LLVMBuildPhi(c->b, c->i64, "i");
    LLVMValueRef zero = cg_i64(c, 0);
    LLVMAddIncoming(l->iv, &zero, &pre, 1);
    LLVMValueRef more = LLVMBuildICmp(c->b, LLVMIntSLT, l->iv, n, "");
    LLVMBuildCondBr(c->b, more, body, l->exit);
    LLVMPositionBuilderAtEnd(c->b, body);
    return l->iv;
}

/* A loop ID carrying llvm.loop.vectorize.enable: besides forcing the
 * vectoriser, it is LLVM's licence to reorder a floating-point reduction
 * (LoopVectorizeHints::allowReordering), which it may not do otherwise
 * (and the C API of LLVM 16 cannot set fast-math flags).  The first
 * operand of a loop ID refers to the node itself: built through a
 * temporary node. */
static LLVMValueRef reorder_loop_id(Cg *c)
{
    LLVMMetadataRef self = LLVMTemporaryMDNode(c->ctx, NULL, 0);
    const char *key = "llvm.loop.vectorize.enable";
    LLVMMetadataRef hint_ops[2] = {
        LLVMMDStringInContext2(c->ctx, key, strlen(key)),
        LLVMValueAsMetadata(LLVMConstInt(c->i1, 1, 0))};
    LLVMMetadataRef ops[2] = {self,
                              LLVMMDNodeInContext2(c->ctx, hint_ops, 2)};
    LLVMMetadataRef id = LLVMMDNodeInContext2(c->ctx, ops, 2);
    LLVMMetadataReplaceAllUsesWith(self, id);
    return LLVMMetadataAsValue(c->ctx, id);
}

void cg_for_end(Cg *c, CgLoop *l)
{
    LLVMValueRef next = LLVMBuildNSWAdd(c->b, l->iv, cg_i64(c, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMValueRef back = LLVMBuildBr(c->b, l->head);
    if (c->reorder_reductions)
        LLVMSetMetadata(back, LLVMGetMDKindIDInContext(c->ctx, "llvm.loop", 9),
                        reorder_loop_id(c));
    LLVMAddIncoming(l->iv, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(c->b, l->exit);
}

void cg_strides(const Type *t, int64_t *strides)
{
    int64_t s = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= t->dims[i];
    }
}

void cg_bcast_strides(const Type *in, const Type *out, int64_t *strides)
{
    int64_t own[IR_MAX_RANK];
    cg_strides(in, own);
    int shift = out->rank - in->rank;
    for (int i = 0; i < out->rank; i++) {
        int j = i - shift;
        strides[i] = (j < 0 || in->dims[j] == 1) ? 0 : own[j];
    }
}

/* Drops size-1 axes and merges axis i into i+1 when every operand steps
 * over axis i exactly as far as over all of axis i+1. */
CgNest cg_nest_simplify(const CgNest *in)
{
    CgNest n = *in;
    n.rank = 0;
    for (int i = 0; i < in->rank; i++) {
        if (in->dims[i] == 1)
            continue;
        int k = n.rank;
        bool merge = k > 0;
        for (int o = 0; o < in->n_ops && merge; o++)
            merge = n.strides[o][k - 1] == in->strides[o][i] * in->dims[i];
        if (merge) {
            n.dims[k - 1] *= in->dims[i];
            for (int o = 0; o < in->n_ops; o++)
                n.strides[o][k - 1] = in->strides[o][i];
            continue;
        }
        n.dims[k] = in->dims[i];
        for (int o = 0; o < in->n_ops; o++)
            n.strides[o][k] = in->strides[o][i];
        n.rank++;
    }
    return n;
}

static void nest_level(Cg *c, const CgNest *n, int level, LLVMValueRef *off,
                       CgNestBody body, void *ud)
{
    if (level == n->rank) {
        LLVMValueRef ptrs[CG_NEST_MAX_OPS];
        for (int o = 0; o < n->n_ops; o++)
            ptrs[o] = cg_gep(c, n->elem[o], n->base[o], off[o]);
        body(c, ptrs, ud);
        return;
    }
    CgLoop loop;
    LLVMValueRef i = cg_for_begin(c, &loop, cg_i64(c, n->dims[level]));
    LLVMValueRef inner[CG_NEST_MAX_OPS];
    for (int o = 0; o < n->n_ops; o++) {
        int64_t s = n->strides[o][level];
        LLVMValueRef step =
            s == 1 ? i : LLVMBuildNSWMul(c->b, i, cg_i64(c, s), "");
        inner[o] = s == 0 ? off[o] : LLVMBuildNSWAdd(c->b, off[o], step, "");
    }
    nest_level(c, n, level + 1, inner, body, ud);
    cg_for_end(c, &loop);
}

void cg_nest(Cg *c, const CgNest *in, CgNestBody body, void *ud)
{
    CgNest n = cg_nest_simplify(in);
    LLVMValueRef off[CG_NEST_MAX_OPS];
    for (int o = 0; o < n.n_ops; o++)
        off[o] = cg_i64(c, 0);
    nest_level(c, &n, 0, off, body, ud);
}

void cg_nest_range(Cg *c, const CgNest *s, LLVMValueRef lo, LLVMValueRef hi,
                   CgNestBody body, void *ud)
{
    CgLoop loop;
    LLVMValueRef i =
        cg_for_begin(c, &loop, LLVMBuildNSWSub(c->b, hi, lo, "count"));
    LLVMValueRef idx = LLVMBuildNSWAdd(c->b, lo, i, "");
    LLVMValueRef off[CG_NEST_MAX_OPS];
    for (int o = 0; o < s->n_ops; o++) {
        int64_t st = s->strides[o][0];
        off[o] = st == 0   ? cg_i64(c, 0)
                 : st == 1 ? idx
                           : LLVMBuildNSWMul(c->b, idx, cg_i64(c, st), "");
    }
    nest_level(c, s, 1, off, body, ud);
    cg_for_end(c, &loop);
}
