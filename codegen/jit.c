/* jit.c — compile a model in memory with ORC's LLJIT, for `nnc run`.
 *
 * The module is the same as the one written to object files (plus
 * NAME_forward_argv), optimised for the host.  Symbols it calls resolve in
 * this order: libnncrt's and libm's functions from their addresses in this
 * process (an absolute-symbol table, so they resolve even when the
 * executable exports nothing dynamically and is linked statically against
 * libnncrt), then anything else (memcpy, memset, posix_memalign, expf ...)
 * through the process's dynamic symbol search.  No C compiler or linker
 * runs. */
#include "codegen/cg.h"

#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/nnc.h"

struct CgJit {
    LLVMOrcLLJITRef jit;
};

static bool report(LLVMErrorRef e, const char *what)
{
    if (!e)
        return false;
    char *msg = LLVMGetErrorMessage(e);
    fprintf(stderr, "nnc: error: JIT: %s: %s\n", what, msg);
    LLVMDisposeErrorMessage(msg);
    return true;
}

typedef struct HostSymbol {
    const char *name;
    void *addr;
} HostSymbol;

static LLVMErrorRef define_host_symbols(LLVMOrcLLJITRef jit,
                                        LLVMOrcJITDylibRef jd)
{
    const HostSymbol syms[] = {
        {"nnc_sgemm_batched", (void *)nnc_sgemm_batched},
        {"nnc_rt_set_error", (void *)nnc_rt_set_error},
        {"nnc_model_init", (void *)nnc_model_init},
        {"nnc_st_load", (void *)nnc_st_load},
        {"nnc_st_save", (void *)nnc_st_save},
        {"nnc_model_tensor", (void *)nnc_model_tensor},
        {"nnc_dropout_mask", (void *)nnc_dropout_mask},
        {"nnc_sum_squares", (void *)nnc_sum_squares},
        {"nnc_scale", (void *)nnc_scale},
        {"nnc_sgd_step", (void *)nnc_sgd_step},
        {"nnc_adam_step", (void *)nnc_adam_step},
        {"nnc_runtime_prepare", (void *)nnc_runtime_prepare},
        {"nnc_parallel_for", (void *)nnc_parallel_for},
        {"nnc_attention_fwd", (void *)nnc_attention_fwd},
        {"nnc_attention_bwd", (void *)nnc_attention_bwd},
        {"nnc_lstm_cell_fwd", (void *)nnc_lstm_cell_fwd},
        {"nnc_lstm_cell_bwd", (void *)nnc_lstm_cell_bwd},
        {"nnc_softmax_xent", (void *)nnc_softmax_xent},
        {"erff", (void *)erff},
        {"log1pf", (void *)log1pf},
        {"expf", (void *)expf},
        {"logf", (void *)logf},
        {"powf", (void *)powf},
        {"floorf", (void *)floorf},
    };
    enum { N = sizeof syms / sizeof syms[0] };
    LLVMOrcCSymbolMapPair pairs[N];
    for (int i = 0; i < N; i++) {
        pairs[i].Name = LLVMOrcLLJITMangleAndIntern(jit, syms[i].name);
        pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)syms[i].addr;
        pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported |
                                          LLVMJITSymbolGenericFlagsCallable;
        pairs[i].Sym.Flags.TargetFlags = 0;
    }
    return LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(pairs, N));
}

static LLVMOrcLLJITRef create_jit(LLVMTargetMachineRef tm)
{
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
        builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
    LLVMOrcLLJITRef jit = NULL;
    if (report(LLVMOrcCreateLLJIT(&jit, builder), "cannot create the JIT"))
        return NULL;
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(jit);
    LLVMOrcDefinitionGeneratorRef gen = NULL;
    if (report(define_host_symbols(jit, jd), "runtime symbols") ||
        report(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
                   &gen, LLVMOrcLLJITGetGlobalPrefix(jit), NULL, NULL),
               "process symbols")) {
        LLVMConsumeError(LLVMOrcDisposeLLJIT(jit));
        return NULL;
    }
    LLVMOrcJITDylibAddGenerator(jd, gen);
    return jit;
}

CgJit *cg_jit_new(const Module *m, const CgOptions *o)
{
    if (o->triple) {
        fprintf(stderr,
                "nnc: error: JIT: only the host can run code, not '%s'\n",
                o->triple);
        return NULL;
    }
    LLVMTargetMachineRef tm = cg_target_machine(o);
    if (!tm)
        return NULL;
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMModuleRef mod = cg_compile_module(
        m, o, LLVMOrcThreadSafeContextGetContext(tsc), tm, true);
    LLVMOrcLLJITRef jit = create_jit(tm); /* owns tm from here on */
    if (!jit) {
        LLVMDisposeModule(mod);
        LLVMOrcDisposeThreadSafeContext(tsc);
        return NULL;
    }
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc);
    LLVMOrcDisposeThreadSafeContext(tsc);
    LLVMErrorRef e =
        LLVMOrcLLJITAddLLVMIRModule(jit, LLVMOrcLLJITGetMainJITDylib(jit), tsm);
    if (report(e, "cannot add the module")) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        LLVMConsumeError(LLVMOrcDisposeLLJIT(jit));
        return NULL;
    }
    CgJit *j = malloc(sizeof *j);
    if (!j)
        ir_internal_error("codegen", "out of memory");
    j->jit = jit;
    return j;
}

void *cg_jit_lookup(CgJit *j, const char *symbol)
{
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef e = LLVMOrcLLJITLookup(j->jit, &addr, symbol);
    if (e) {
        LLVMConsumeError(e);
        return NULL;
    }
    return (void *)(uintptr_t)addr;
}

void cg_jit_free(CgJit *j)
{
    if (!j)
        return;
    report(LLVMOrcDisposeLLJIT(j->jit), "dispose");
    free(j);
}
