/* target.c — targets, target machines and emission.
 *
 * Every module gets the triple and data layout of the machine it is
 * compiled for.  For the host with cpu "native" (the default) the CPU name
 * and feature list come from LLVM's host detection; the feature list
 * matters because LLVM 16 may not know a newer CPU's name, and it is what
 * turns on AVX-512 and the like.  Optimisation runs the new pass manager's
 * default<On> pipeline through LLVMRunPasses; a module that LLVM's
 * verifier rejects is an internal error, never a user's.
 *
 * A CPU name LLVM does not know for the target is refused before any code
 * is generated: LLVM 16's C API has no list of CPU names, but creating
 * the target machine builds its subtarget table, which prints "'NAME' is
 * not a recognized processor for this target" (and for x86-64 the first
 * function would then abort: "64-bit code requested on a subtarget that
 * doesn't support it").  So the target machine is created with stderr
 * captured in a temporary file; that message (or the CPU list `help`
 * prints) means an unknown CPU, anything else is passed on.
 *
 * Output is generated into memory and written by nnc itself
 * (write_output), so every failure is reported as "nnc: error: cannot
 * write 'PATH': REASON" instead of LLVM's fatal "IO failure on output
 * stream", and a regular file is replaced atomically: written to a
 * temporary beside it and renamed, so a failed compile never leaves a
 * partial object.  A path that exists and is not a regular file (a
 * device such as /dev/null, a FIFO) is written in place, as cc does. */
#include "codegen/cg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* LLVMCreateTargetMachine with stderr captured; sets *unknown_cpu when
 * LLVM says it does not know the CPU. */
static LLVMTargetMachineRef create_checked(LLVMTargetRef target,
                                           const char *triple, const char *cpu,
                                           const char *features,
                                           LLVMCodeGenOptLevel level,
                                           bool *unknown_cpu)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *cap = saved >= 0 ? tmpfile() : NULL;
    if (cap)
        dup2(fileno(cap), STDERR_FILENO);
    LLVMTargetMachineRef tm =
        LLVMCreateTargetMachine(target, triple, cpu, features, level,
                                LLVMRelocPIC, LLVMCodeModelDefault);
    if (!cap) {
        if (saved >= 0)
            close(saved);
        return tm;
    }
    dup2(saved, STDERR_FILENO);
    close(saved);
    char text[4096];
    rewind(cap);
    size_t n = fread(text, 1, sizeof text - 1, cap);
    text[n] = '\0';
    fclose(cap);
    *unknown_cpu = strstr(text, "is not a recognized processor") ||
                   strstr(text, "Available CPUs for this target");
    if (!*unknown_cpu)
        fputs(text, stderr);
    return tm;
}

/* The target machine of o; *usage is set when the CPU is unknown (a
 * command-line error). */
static LLVMTargetMachineRef target_machine(const CgOptions *o, bool *usage)
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
    bool unknown_cpu = false;
    LLVMTargetMachineRef tm =
        create_checked(target, triple, cpu, features,
                       codegen_level(o->opt_level), &unknown_cpu);
    if (tm && unknown_cpu) {
        fprintf(stderr, "nnc: error: unknown CPU '%s' for target '%s'\n", cpu,
                o->triple ? o->triple : triple);
        LLVMDisposeTargetMachine(tm);
        tm = NULL;
        *usage = true;
    } else if (!tm)
        fprintf(stderr, "nnc: error: cannot create a target machine for '%s'\n",
                o->triple ? o->triple : "the host");
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    return tm;
}

LLVMTargetMachineRef cg_target_machine(const CgOptions *o)
{
    bool usage = false;
    return target_machine(o, &usage);
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

/* LLVM's remarks and warnings about the generated code (a loop the
 * vectoriser was asked to vectorise and could not, such as a row sum
 * through a libm call) are for compiler developers, not for the user of
 * nnc: they are dropped.  An error still stops the compilation. */
static void on_llvm_diagnostic(LLVMDiagnosticInfoRef info, void *ctx)
{
    (void)ctx;
    if (LLVMGetDiagInfoSeverity(info) != LLVMDSError)
        return;
    char *msg = LLVMGetDiagInfoDescription(info);
    ir_internal_error("llvm", "%s", msg);
}

LLVMModuleRef cg_compile_module(const Module *m, const CgOptions *o,
                                LLVMContextRef ctx, LLVMTargetMachineRef tm,
                                bool jit)
{
    LLVMContextSetDiagnosticHandler(ctx, on_llvm_diagnostic, NULL);
    LLVMModuleRef mod = cg_build_module(m, ctx, jit);
    cg_prepare_module(mod, tm);
    cg_verify_module(mod);
    cg_optimize(mod, tm, o->opt_level);
    return mod;
}

/* ---- writing the output ------------------------------------------------- */

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        if (w == 0)
            return EIO;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Into an existing non-regular file (a device, a FIFO) or stdout. */
static int write_in_place(const char *path, const char *data, size_t len)
{
    bool to_stdout = strcmp(path, "-") == 0;
    int fd = to_stdout ? STDOUT_FILENO : open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int err = write_all(fd, data, len);
    if (!to_stdout && close(fd) != 0 && !err)
        err = errno;
    return err;
}

/* "DIR/.BASE.tmp-XXXXXX" beside path. */
static char *temp_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t cap = strlen(path) + 16;
    char *tmp = malloc(cap);
    if (tmp)
        snprintf(tmp, cap, "%.*s.%s.tmp-XXXXXX", (int)(base - path), path,
                 base);
    return tmp;
}

/* A regular file, atomically: a temporary beside it, renamed over it. */
static int write_replacing(const char *path, const char *data, size_t len)
{
    char *tmp = temp_name(path);
    if (!tmp)
        return ENOMEM;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int err = errno;
        free(tmp);
        return err;
    }
    mode_t mask = umask(0); /* nnc is single-threaded */
    umask(mask);
    int err = fchmod(fd, 0666 & ~mask) != 0 ? errno : 0;
    if (!err)
        err = write_all(fd, data, len);
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && rename(tmp, path) != 0)
        err = errno;
    if (err)
        unlink(tmp);
    free(tmp);
    return err;
}

/* 0, or -1 after "nnc: error: cannot write 'PATH': REASON". */
static int write_output(const char *path, const char *data, size_t len)
{
    struct stat st;
    bool special =
        strcmp(path, "-") == 0 ||
        (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode));
    int err = special ? write_in_place(path, data, len)
                      : write_replacing(path, data, len);
    if (!err)
        return 0;
    fprintf(stderr, "nnc: error: cannot write '%s': %s\n", path, strerror(err));
    return -1;
}

/* The module as text (CG_EMIT_LLVM) or through the target machine. */
static int emit_to_path(LLVMTargetMachineRef tm, LLVMModuleRef mod,
                        CgEmitKind kind, const char *path)
{
    if (kind == CG_EMIT_LLVM) {
        char *text = LLVMPrintModuleToString(mod);
        int rc = write_output(path, text, strlen(text));
        LLVMDisposeMessage(text);
        return rc;
    }
    char *err = NULL;
    LLVMMemoryBufferRef buf = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(
            tm, mod, kind == CG_EMIT_ASM ? LLVMAssemblyFile : LLVMObjectFile,
            &err, &buf)) {
        fprintf(stderr, "nnc: error: cannot generate code for '%s': %s\n", path,
                err ? err : "unknown error");
        LLVMDisposeMessage(err);
        return -1;
    }
    int rc =
        write_output(path, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
    LLVMDisposeMemoryBuffer(buf);
    return rc;
}

int cg_emit_file(const Module *m, const CgOptions *o, CgEmitKind kind,
                 const char *path)
{
    bool usage = false;
    LLVMTargetMachineRef tm = target_machine(o, &usage);
    if (!tm)
        return usage ? -2 : -1;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = cg_compile_module(m, o, ctx, tm, false);
    int rc = emit_to_path(tm, mod, kind, path);
    LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    return rc;
}
