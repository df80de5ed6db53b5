/* target.c — targets, target machines and emission.
 *
 * Every module gets the triple and data layout of the machine it is
 * compiled for.  For the host with cpu "native" (the default) the CPU name
 * and feature list come from LLVM's host detection; the feature list
 * matters because LLVM 16 may not know a newer CPU's name, and it is what
 * turns on AVX-512 and the like.  Optimisation runs the new pass manager's
 * default<On> pipeline through LLVMRunPasses; a module that LLVM's
 * verifier rejects is an internal error, never a user's. */
#include "codegen/cg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Transforms/PassBuilder.h>

void cg_init_targets(void)
{
    static bool done;
    if (done)
        return;
    LLVMInitializeAllTargetInfos();
    LLVMInitializeAllTargets();
    LLVMInitializeAllTargetMCs();
    LLVMInitializeAllAsmPrinters();
    LLVMInitializeAllAsmParsers();
    done = true;
}

static LLVMCodeGenOptLevel codegen_level(int opt)
{
    return opt <= 0   ? LLVMCodeGenLevelNone
           : opt == 1 ? LLVMCodeGenLevelLess
           : opt == 2 ? LLVMCodeGenLevelDefault
                      : LLVMCodeGenLevelAggressive;
}

/* The triple asked for, normalised, or the host's; sets *host. */
static char *pick_triple(const CgOptions *o, bool *host)
{
    char *def = LLVMGetDefaultTargetTriple();
    if (!o->triple) {
        *host = true;
        return def;
    }
    char *t = LLVMNormalizeTargetTriple(o->triple);
    *host = strcmp(t, def) == 0;
    LLVMDisposeMessage(def);
    return t;
}

LLVMTargetMachineRef cg_target_machine(const CgOptions *o)
{
    cg_init_targets();
    bool host;
    char *triple = pick_triple(o, &host), *err = NULL;
    LLVMTargetRef target;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        fprintf(stderr, "nnc: error: unknown target '%s': %s\n",
                o->triple ? o->triple : triple, err);
        LLVMDisposeMessage(err);
        LLVMDisposeMessage(triple);
        return NULL;
    }
    bool native = !o->cpu || strcmp(o->cpu, "native") == 0;
    char *cpu = native && host ? LLVMGetHostCPUName()
                               : LLVMCreateMessage(native ? "generic" : o->cpu);
    char *features = o->features      ? LLVMCreateMessage(o->features)
                     : native && host ? LLVMGetHostCPUFeatures()
                                      : LLVMCreateMessage("");
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(
        target, triple, cpu, features, codegen_level(o->opt_level),
        LLVMRelocPIC, LLVMCodeModelDefault);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    if (!tm)
        fprintf(stderr, "nnc: error: cannot create a target machine for '%s'\n",
                o->triple ? o->triple : "the host");
    return tm;
}

void cg_prepare_module(LLVMModuleRef mod, LLVMTargetMachineRef tm)
{
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    char *layout = LLVMCopyStringRepOfTargetData(td);
    LLVMSetDataLayout(mod, layout);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(td);
}

void cg_verify_module(LLVMModuleRef mod)
{
    char *msg = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
        fprintf(stderr, "%s\n", msg);
        ir_internal_error("codegen", "the LLVM module does not verify: %.500s",
                          msg);
    }
    LLVMDisposeMessage(msg);
}

void cg_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level)
{
    char pipeline[32];
    int level = opt_level < 0 ? 0 : opt_level > 3 ? 3 : opt_level;
    snprintf(pipeline, sizeof pipeline, "default<O%d>", level);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(po, level >= 2);
    LLVMPassBuilderOptionsSetSLPVectorization(po, level >= 2);
    LLVMPassBuilderOptionsSetLoopUnrolling(po, level >= 2);
    LLVMErrorRef e = LLVMRunPasses(mod, pipeline, tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (e) {
        char *msg = LLVMGetErrorMessage(e);
        fprintf(stderr, "nnc: internal error: codegen: %s failed: %s\n",
                pipeline, msg);
        LLVMDisposeErrorMessage(msg);
        exit(70);
    }
}

LLVMModuleRef cg_compile_module(const Module *m, const CgOptions *o,
                                LLVMContextRef ctx, LLVMTargetMachineRef tm,
                                bool jit)
{
    LLVMModuleRef mod = cg_build_module(m, ctx, jit);
    cg_prepare_module(mod, tm);
    cg_verify_module(mod);
    cg_optimize(mod, tm, o->opt_level);
    return mod;
}

int cg_emit_file(const Module *m, const CgOptions *o, CgEmitKind kind,
                 const char *path)
{
    LLVMTargetMachineRef tm = cg_target_machine(o);
    if (!tm)
        return -1;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = cg_compile_module(m, o, ctx, tm, false);
    char *err = NULL;
    int rc = 0;
    if (kind == CG_EMIT_LLVM)
        rc = LLVMPrintModuleToFile(mod, path, &err) ? -1 : 0;
    else
        rc = LLVMTargetMachineEmitToFile(
                 tm, mod, (char *)path,
                 kind == CG_EMIT_ASM ? LLVMAssemblyFile : LLVMObjectFile, &err)
                 ? -1
                 : 0;
    if (rc)
        fprintf(stderr, "nnc: error: cannot write '%s': %s\n", path,
                err ? err : "unknown error");
    LLVMDisposeMessage(err);
    LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    return rc;
}
