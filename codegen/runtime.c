/* runtime.c — the functions generated code calls: libnncrt (runtime/nnc.h:
 * errors, GEMM, initialisers, safetensors, table lookups, dropout masks,
 * optimizer kernels), libc
 * (posix_memalign, free) and libm (erff, log1pf).  Each is declared
 * in the LLVM module on first use with the C prototype's LLVM type, so a
 * module only names what it calls.  Also the error exits of forward. */
#include "codegen/cg.h"

#include "runtime/nnc.h"

#include <string.h>

const char *const cg_rt_names[CG_RT_COUNT] = {
    [CG_RT_SGEMM_BATCHED] = "nnc_sgemm_batched",
    [CG_RT_SET_ERROR] = "nnc_rt_set_error",
    [CG_RT_MODEL_INIT] = "nnc_model_init",
    [CG_RT_ST_LOAD] = "nnc_st_load",
    [CG_RT_ST_SAVE] = "nnc_st_save",
    [CG_RT_MODEL_TENSOR] = "nnc_model_tensor",
    [CG_RT_MEMALIGN] = "posix_memalign",
    [CG_RT_FREE] = "free",
    [CG_RT_ERFF] = "erff",
    [CG_RT_LOG1PF] = "log1pf",
    [CG_RT_DROPOUT_MASK] = "nnc_dropout_mask",
    [CG_RT_SUM_SQUARES] = "nnc_sum_squares",
    [CG_RT_SCALE] = "nnc_scale",
    [CG_RT_SGD_STEP] = "nnc_sgd_step",
    [CG_RT_ADAM_STEP] = "nnc_adam_step",
    [CG_RT_PREPARE] = "nnc_runtime_prepare",
    [CG_RT_ATTENTION_FWD] = "nnc_attention_fwd",
    [CG_RT_ATTENTION_BWD] = "nnc_attention_bwd",
    [CG_RT_LSTM_CELL_FWD] = "nnc_lstm_cell_fwd",
    [CG_RT_LSTM_CELL_BWD] = "nnc_lstm_cell_bwd",
    [CG_RT_SOFTMAX_XENT] = "nnc_softmax_xent",
    [CG_RT_PARALLEL_FOR] = "nnc_parallel_for",
};

static LLVMTypeRef rt_type(Cg *c, CgRtFn f)
{
    LLVMTypeRef I = c->i32, L = c->i64, F = c->f32, P = c->ptr, D = c->f64,
                V = c->void_t;
    switch (f) {
    case CG_RT_SGEMM_BATCHED: {
        LLVMTypeRef a[] = {I, I, L, L, L, F, P, L, L, P, L, L, F, P, L, L, L};
        return LLVMFunctionType(I, a, 17, 0);
    }
    case CG_RT_SET_ERROR: {
        LLVMTypeRef a[] = {I, P};
        return LLVMFunctionType(I, a, 2, 1);
    }
    case CG_RT_MODEL_INIT: {
        LLVMTypeRef a[] = {P, P, L, P, L};
        return LLVMFunctionType(I, a, 5, 0);
    }
    case CG_RT_ST_LOAD:
    case CG_RT_ST_SAVE: {
        LLVMTypeRef a[] = {P, P, P, I};
        return LLVMFunctionType(I, a, 4, 0);
    }
    case CG_RT_MODEL_TENSOR: {
        LLVMTypeRef a[] = {P, P, P, I};
        return LLVMFunctionType(P, a, 4, 0);
    }
    case CG_RT_MEMALIGN: {
        LLVMTypeRef a[] = {P, L, L};
        return LLVMFunctionType(I, a, 3, 0);
    }
    case CG_RT_FREE: return LLVMFunctionType(c->void_t, &P, 1, 0);
    case CG_RT_PREPARE: return LLVMFunctionType(V, NULL, 0, 0);
    case CG_RT_ERFF:
    case CG_RT_LOG1PF: return LLVMFunctionType(F, &F, 1, 0);
    case CG_RT_DROPOUT_MASK: {
        LLVMTypeRef a[] = {P, L, F, L, L, L};
        return LLVMFunctionType(V, a, 6, 0);
    }
    case CG_RT_SUM_SQUARES: {
        LLVMTypeRef a[] = {P, L};
        return LLVMFunctionType(D, a, 2, 0);
    }
    case CG_RT_SCALE: {
        LLVMTypeRef a[] = {P, L, F};
        return LLVMFunctionType(V, a, 3, 0);
    }
    case CG_RT_SGD_STEP: {
        LLVMTypeRef a[] = {P, P, P, L, D, D, D, I, L};
        return LLVMFunctionType(V, a, 9, 0);
    }
    case CG_RT_ADAM_STEP: {
        LLVMTypeRef a[] = {P, P, P, P, L, D, D, D, D, D, I, L};
        return LLVMFunctionType(V, a, 12, 0);
    }
    case CG_RT_ATTENTION_FWD: {
        LLVMTypeRef a[] = {P, P, P, P, L, L, L, L, L, F, I};
        return LLVMFunctionType(V, a, 11, 0);
    }
    case CG_RT_ATTENTION_BWD: {
        LLVMTypeRef a[] = {P, P, P, P, P, P, P, P, L, L, L, L, L, F, I};
        return LLVMFunctionType(V, a, 15, 0);
    }
    case CG_RT_LSTM_CELL_FWD: {
        LLVMTypeRef a[] = {P, P, P, P, L, L};
        return LLVMFunctionType(V, a, 6, 0);
    }
    case CG_RT_LSTM_CELL_BWD: {
        LLVMTypeRef a[] = {P, P, P, P, P, P, L, L};
        return LLVMFunctionType(V, a, 8, 0);
    }
    case CG_RT_SOFTMAX_XENT: {
        LLVMTypeRef a[] = {P, P, F, P, P, L, L};
        return LLVMFunctionType(I, a, 7, 0);
    }
    case CG_RT_PARALLEL_FOR: {
        LLVMTypeRef a[] = {L, P, P};
        return LLVMFunctionType(V, a, 3, 0);
    }
    default:
        ir_internal_error("codegen", "runtime function %d has no type", (int)f);
    }
}

LLVMValueRef cg_rt_call(Cg *c, CgRtFn f, LLVMValueRef *args, unsigned n)
{
    LLVMTypeRef ty = rt_type(c, f);
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, cg_rt_names[f]);
    if (!fn)
        fn = LLVMAddFunction(c->mod, cg_rt_names[f], ty);
    return LLVMBuildCall2(c->b, ty, fn, args, n, "");
}

LLVMValueRef cg_intrinsic(Cg *c, const char *name, LLVMTypeRef overload,
                          LLVMValueRef *args, unsigned n)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    if (!id)
        ir_internal_error("codegen", "unknown intrinsic %s", name);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, &overload, 1);
    LLVMTypeRef ty = LLVMIntrinsicGetType(c->ctx, id, &overload, 1);
    return LLVMBuildCall2(c->b, ty, fn, args, n, "");
}

void cg_error_if(Cg *c, LLVMValueRef cond, int status, const char *fmt,
                 LLVMValueRef *args, unsigned n)
{
    LLVMValueRef all[16];
    if (n > 14)
        ir_internal_error("codegen", "error message with %u arguments", n);
    LLVMBasicBlockRef bad = cg_block(c, "error"), ok = cg_block(c, "checked");
    LLVMBuildCondBr(c->b, cond, bad, ok);
    LLVMPositionBuilderAtEnd(c->b, bad);
    all[0] = cg_i32c(c, status);
    all[1] = LLVMBuildGlobalStringPtr(c->b, fmt, "errfmt");
    for (unsigned i = 0; i < n; i++)
        all[i + 2] = args[i];
    LLVMBuildRet(c->b, cg_rt_call(c, CG_RT_SET_ERROR, all, n + 2));
    LLVMPositionBuilderAtEnd(c->b, ok);
}

void cg_check_status(Cg *c, LLVMValueRef status)
{
    LLVMBasicBlockRef bad = cg_block(c, "status.bad"),
                      ok = cg_block(c, "status.ok");
    LLVMValueRef failed =
        LLVMBuildICmp(c->b, LLVMIntNE, status, cg_i32c(c, 0), "");
    LLVMBuildCondBr(c->b, failed, bad, ok);
    LLVMPositionBuilderAtEnd(c->b, bad);
    LLVMBuildRet(c->b, status);
    LLVMPositionBuilderAtEnd(c->b, ok);
}
