/* parallel.c — running emitted loops on libnncrt's thread pool.
 *
 * A parallel loop is outlined: its body is emitted into a new internal
 * function `void NAME_parK(ptr ctx, i64 begin, i64 end)` (runtime/nnc.h's
 * nnc_range_fn), and the caller stores the pointers that body needs into
 * an array on its stack (ctx) and calls nnc_parallel_for(n, fn, ctx).
 * The body never calls cg_ptr: the graph's pointers are LLVM values of
 * the caller (inside a scan they change every step), so they are computed
 * before outlining and reloaded from ctx inside.  Chunks are fixed ranges
 * of independent iterations; each output element is computed by one
 * thread with the same code whatever the thread count, so results are
 * bit-identical for any number of threads. */
#include "codegen/cg.h"

/* NAME_parK for the first free K: internal, nounwind. */
static LLVMValueRef new_range_fn(Cg *c)
{
    LLVMTypeRef params[3] = {c->ptr, c->i64, c->i64};
    LLVMTypeRef ty = LLVMFunctionType(c->void_t, params, 3, 0);
    char *name = NULL;
    for (int k = 0;; k++) {
        name = cg_symbol(c, arena_printf(c->arena, "par%d", k));
        if (!LLVMGetNamedFunction(c->mod, name))
            break;
    }
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, ty);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(c->ctx, nounwind, 0));
    return fn;
}

/* a and b compute the same pointer: the same value, or two GEPs with the
 * same operands (cg_ptr builds one per call). */
static bool same_pointer(LLVMValueRef a, LLVMValueRef b)
{
    if (a == b)
        return true;
    if (!LLVMIsAGetElementPtrInst(a) || !LLVMIsAGetElementPtrInst(b))
        return false;
    int n = LLVMGetNumOperands(a);
    if (n != LLVMGetNumOperands(b))
        return false;
    for (int i = 0; i < n; i++)
        if (!same_pointer(LLVMGetOperand(a, (unsigned)i),
                          LLVMGetOperand(b, (unsigned)i)))
            return false;
    return true;
}

/* Index of the first cap computing the same pointer as caps[k].  A result
 * written in place over an operand must reach the body as one value:
 * loaded twice from ctx, the vectoriser cannot tell the two apart, checks
 * them for overlap at run time, finds it, and runs its scalar loop. */
static int first_same(LLVMValueRef *caps, int k)
{
    for (int j = 0; j < k; j++)
        if (same_pointer(caps[j], caps[k]))
            return j;
    return k;
}

void cg_parallel_for(Cg *c, LLVMValueRef n, LLVMValueRef *caps, int n_caps,
                     CgRangeBody body, void *ud)
{
    if (n_caps > 64)
        ir_internal_error("codegen", "parallel loop with %d pointers", n_caps);
    LLVMTypeRef arr = LLVMArrayType(c->ptr, (unsigned)(n_caps ? n_caps : 1));
    LLVMValueRef ctx = cg_entry_alloca(c, arr, "par.ctx");
    for (int k = 0; k < n_caps; k++)
        LLVMBuildStore(c->b, caps[k], cg_gep_const(c, c->ptr, ctx, k));
    LLVMValueRef fn = new_range_fn(c);
    LLVMValueRef caller = c->fn;
    LLVMBasicBlockRef at = LLVMGetInsertBlock(c->b);
    c->fn = fn;
    LLVMPositionBuilderAtEnd(
        c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    LLVMValueRef in[64];
    LLVMValueRef p = LLVMGetParam(fn, 0);
    for (int k = 0; k < n_caps; k++) {
        int j = first_same(caps, k);
        in[k] = j < k ? in[j]
                      : LLVMBuildLoad2(c->b, c->ptr,
                                       cg_gep_const(c, c->ptr, p, k), "cap");
    }
    body(c, in, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), ud);
    LLVMBuildRetVoid(c->b);
    c->fn = caller;
    LLVMPositionBuilderAtEnd(c->b, at);
    LLVMValueRef args[3] = {n, fn, ctx};
    cg_rt_call(c, CG_RT_PARALLEL_FOR, args, 3);
}

void cg_par_status(Cg *c, LLVMValueRef status, LLVMValueRef st)
{
    LLVMBuildAtomicCmpXchg(c->b, status, cg_i32c(c, 0), st,
                           LLVMAtomicOrderingMonotonic,
                           LLVMAtomicOrderingMonotonic, 0);
}

typedef struct NestJob {
    CgNest s; /* simplified; bases replaced by the reloaded pointers */
    CgNestBody body;
    void *ud;
} NestJob;

static void nest_chunk(Cg *c, LLVMValueRef *caps, LLVMValueRef begin,
                       LLVMValueRef end, void *ud)
{
    NestJob *j = ud;
    CgNest s = j->s;
    for (int o = 0; o < s.n_ops; o++)
        s.base[o] = caps[o];
    cg_nest_range(c, &s, begin, end, j->body, j->ud);
}

void cg_nest_parallel(Cg *c, const CgNest *n, int64_t work, CgNestBody body,
                      void *ud)
{
    CgNest s = cg_nest_simplify(n);
    if (s.rank == 0 || s.dims[0] < 2 || work < CG_PAR_MIN_WORK) {
        cg_nest(c, n, body, ud);
        return;
    }
    NestJob j = {s, body, ud};
    cg_parallel_for(c, cg_i64(c, s.dims[0]), s.base, s.n_ops, nest_chunk, &j);
}
