/* codegen.h — the map of codegen/: graph IR -> LLVM module -> object file,
 * assembly, LLVM IR text, C header, or in-process JIT.
 *
 * This header is what the driver and tests include; it does not include
 * llvm-c (codegen/ is the only directory that does: see cg.h, the internal
 * map shared by the files below).
 *
 *   signature.c  which inputs `NAME_forward` takes (those the outputs use),
 *                whether the model gets the training API
 *   header.c     the C header of the generated API (no LLVM)
 *   layout.c     the instance layout: parameters, training state, the
 *                workspace; --emit stats
 *   plan.c       the workspace's static memory plan: liveness intervals
 *                over the emitted node order, greedy-by-size offsets
 *   plan_verify.c  checks a plan: no two live buffers overlap
 *   target.c     targets, target machines, data layout, the new pass
 *                manager (LLVMRunPasses), emission to files
 *   module.c     builds the whole LLVM module for a Module: instance API
 *                (new/free/init/load/save/param/info) and forward
 *   train.c      the training API: backward, train_step, set_lr, grad,
 *                checkpoints; dropout's training-mode lowering
 *   optim.c      NAME_update: clip_grad_norm and the optimizer step
 *                (libnncrt's kernels), the optimizer state slots
 *   info.c       the constant nnc_model_info table emitted into the object
 *   runtime.c    declarations of the libnncrt / libc / libm functions the
 *                generated code calls
 *   loops.c      loop builder and strided loop nests over tensors
 *   lower.c      the lowering table (one entry per op in ir/ops.def) and
 *                the graph walker that emits a graph's nodes in order
 *   scalar.c     scalar math: every unary/binary elementwise op on floats
 *   elementwise.c  elementwise ops, const, where, broadcast_to, dropout
 *   shape_ops.c  transpose, permute, reshape, concat, slice
 *   reduce.c     sum/mean/max, softmax, log_softmax, layernorm, rmsnorm
 *   matmul.c     matmul through the runtime's sgemm; attention with
 *                broadcast batch axes (scores materialised)
 *   kernels.c    attention (tiled), attention_grad, lstm_cell(_grad),
 *                softmax_xent: calls of libnncrt's fused kernels
 *   fused.c      fused (one loop nest over a body graph) and
 *                matmul_epilogue (row blocks: GEMM, then the body)
 *   parallel.c   a loop body outlined into a function and run on the
 *                pool (nnc_parallel_for)
 *   nn.c         gather, causal_mask, losses
 *   scan.c       scan as a loop over a body graph
 *   jit.c        ORC LLJIT: compile in memory and look symbols up
 */
#ifndef NNC_CODEGEN_H
#define NNC_CODEGEN_H

#include <stdbool.h>

#include "ir/ir.h"

typedef struct CgOptions {
    int opt_level;        /* 0..3: the new pass manager's default<On> */
    const char *triple;   /* NULL: the host */
    const char *cpu;      /* NULL or "native": the host CPU for the host
                           triple, "generic" otherwise */
    const char *features; /* NULL: host features for a native cpu, else "" */
} CgOptions;

typedef enum CgEmitKind {
    CG_EMIT_OBJ,  /* relocatable object file */
    CG_EMIT_ASM,  /* assembly text */
    CG_EMIT_LLVM, /* LLVM IR text */
} CgEmitKind;

/* lower.c: whether op has a lowering (every op of ops.def must). */
bool cg_can_lower(Op op);

/* signature.c: used[i] is set for each module input that the outputs
 * depend on (NAME_forward's parameters); returns how many are set. */
int cg_forward_inputs(const Module *m, bool *used);
/* signature.c: whether the generated code has the training API
 * (NAME_backward, NAME_train_step, NAME_update, ...): the model has a
 * `train` and the autodiff pass added its gradients (m->n_grads > 0; it
 * does not run with --no-train). */
bool cg_has_train(const Module *m);

/* optim.c: the optimizer state tensors of each trainable parameter, named
 * as torch.optim's state keys (sgd with momentum: momentum_buffer; adam,
 * adamw: exp_avg, exp_avg_sq): fills names, returns how many. */
#define CG_MAX_OPT_SLOTS 2
int cg_opt_slots(const TrainSpec *t, const char **names);

/* header.c: writes NAME.h; 0 on success, -1 (errno set) if the file cannot
 * be written. */
int cg_write_header(const Module *m, const char *path);
void cg_print_header(FILE *f, const Module *m);

/* layout.c: the bytes of one instance (parameters, gradients, optimizer
 * state, the workspace planned by liveness and what one slot per value
 * would take, the total), as `nnc --emit stats` prints them; the same in
 * a comment for the generated header. */
void cg_print_stats(FILE *f, const Module *m);
void cg_print_memory_comment(FILE *f, const Module *m);

/* target.c + module.c: compiles the module and writes one output file
 * (path "-": stdout), atomically when it is a regular file.  Returns 0,
 * -2 after "nnc: error: unknown CPU 'NAME' for target 'TRIPLE'" (a
 * command-line error), or -1 after another "nnc: error: ..." on stderr
 * (unknown target, unwritable file).  A module LLVM rejects is an
 * internal error. */
int cg_emit_file(const Module *m, const CgOptions *o, CgEmitKind kind,
                 const char *path);

/* jit.c: compiles the module in memory for the host (o->triple must be
 * NULL).  NULL after an error message on stderr. */
typedef struct CgJit CgJit;
CgJit *cg_jit_new(const Module *m, const CgOptions *o);
void *cg_jit_lookup(CgJit *j, const char *symbol); /* NULL if absent */
void cg_jit_free(CgJit *j);

/* The JIT module also defines `NAME_forward_argv`, a fixed-signature
 * wrapper for callers that only know the model at run time (nnc run):
 * args holds forward's pointer arguments in order, the used inputs (see
 * cg_forward_inputs) then the outputs. */
typedef int (*CgForwardArgv)(void *instance, void *const *args);
/* With the training API, the JIT module also defines
 * `NAME_backward_argv` and `NAME_train_step_argv`: backward and train_step
 * with every module input, in declaration order, taken from an array. */
typedef float (*CgTrainArgv)(void *instance, void *const *inputs);

#endif
