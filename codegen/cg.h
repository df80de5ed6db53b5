/* cg.h — internals shared by the files of codegen/ (see codegen.h for the
 * map).  This is the one header that includes llvm-c.
 *
 * Emission model: every graph value lives in memory.  A value is a pointer
 * (an LLVM `ptr`) to its elements, contiguous, row-major, 4 bytes each
 * (f32 or i32).  Parameters and intermediates live in the instance at
 * offsets fixed by layout.c; inputs are forward's (or backward's)
 * arguments; reshape aliases its operand, and so does dropout outside
 * training.  The lowering of a node reads its operands' pointers from
 * Cg.vals and writes its results through the pointers the walker gave
 * them. */
#ifndef NNC_CG_H
#define NNC_CG_H

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>

#include "codegen/codegen.h"
#include "ir/ir.h"

/* ---- layout.c ---------------------------------------------------------- */

#define CG_ALIGN   64
#define CG_NO_SLOT (-1)

typedef struct CgLayout {
    int64_t size;        /* bytes of one instance, a multiple of CG_ALIGN */
    int64_t *param_off;  /* [param index] */
    int64_t **value_off; /* [graph id][value id]; CG_NO_SLOT: owns no memory */
    int64_t **scratch_off; /* [graph id][node index]; CG_NO_SLOT: no scratch */
    int64_t workspace_off; /* everything after the parameters and the
                              training state */
    /* Training state (cg_has_train), CG_NO_SLOT otherwise: */
    bool train;
    int64_t *grad_off; /* [param index]; CG_NO_SLOT for a frozen param */
    int n_slots;       /* optimizer state tensors per trainable param */
    int64_t *slot_off[CG_MAX_OPT_SLOTS]; /* [slot][param index] */
    int64_t step_off; /* int64_t: optimizer steps taken (opt.step) */
    int64_t lr_off;   /* double: the current learning rate */
    int64_t seed_off; /* uint64_t: NAME_init's seed, keys dropout */
    struct CgPlan *plan; /* the workspace's memory plan (plan.h) */
} CgLayout;

CgLayout *cg_layout_new(Arena *a, const Module *m);
bool cg_value_owns_slot(const Module *m, const Graph *g, const Node *n,
                        int result);
int64_t cg_node_scratch_bytes(const Module *m, const Graph *g, const Node *n);

/* ---- the emission context --------------------------------------------- */

typedef struct Cg {
    const Module *m;
    Arena *arena;
    const CgLayout *lay;
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef f32, f64, i1, i8, i32, i64, ptr, void_t;
    LLVMValueRef fn;      /* function being emitted */
    LLVMValueRef inst;    /* forward, backward: the instance pointer */
    LLVMValueRef *inputs; /* forward, backward: [input] argument or NULL */
    LLVMValueRef **vals;  /* [graph id][value id]: element pointers */
    /* Emitting the training graph (backward): the main graph is live from
     * the loss and the gradients instead of the outputs, and dropout
     * applies its random mask. */
    bool training;
    /* Set by a scan around the emission of its body (graph redirect_graph):
     * redirect[value id], when not NULL, is where that value is written
     * instead of its slot (the step's place in a stacked output). */
    const LLVMValueRef *redirect;
    int32_t redirect_graph;
    /* Loops closed while set may reorder their floating-point reductions
     * (row sums): vectorised with partial sums in a fixed order, so the
     * result depends on the target's vector width but never on timing or
     * the thread count (loops.c). */
    bool reorder_reductions;
} Cg;

/* module.c */
LLVMModuleRef cg_build_module(const Module *m, LLVMContextRef ctx, bool jit);
char *cg_symbol(const Cg *c,
                const char *suffix); /* "NAME_suffix" in the arena */
/* Starts function NAME_suffix (nounwind, external) and positions the
 * builder in its entry block; sets c->fn. */
LLVMValueRef cg_begin_function(Cg *c, const char *suffix, LLVMTypeRef ret,
                               LLVMTypeRef *params, unsigned n);
/* A pointer to byte `off` of the instance c->inst. */
LLVMValueRef cg_inst_ptr(Cg *c, int64_t off);

/* train.c: the training API (cg_has_train): NAME_backward, NAME_train_step,
 * NAME_update (optim.c), NAME_set_lr, NAME_grad, NAME_save_checkpoint,
 * NAME_load_checkpoint, and for the JIT NAME_backward_argv and
 * NAME_train_step_argv. */
void cg_emit_train(Cg *c, LLVMValueRef info, bool jit);
/* Training mode: y = x * nnc_dropout_mask(seed, site, step); else a view. */
void cg_lower_dropout(Cg *c, Graph *g, const Node *n);

/* optim.c: void NAME_update(NAME *m): clip_grad_norm, then one optimizer
 * step (cg_opt_slots, codegen.h, names the state). */
LLVMValueRef cg_emit_update(Cg *c);

/* info.c: the nnc_model_info global */
LLVMValueRef cg_emit_info(Cg *c);

/* ---- small builders (loops.c) ----------------------------------------- */

LLVMValueRef cg_i64(Cg *c, int64_t v);
LLVMValueRef cg_i32c(Cg *c, int32_t v);
LLVMValueRef cg_f32c(Cg *c, double v);
LLVMTypeRef cg_elem_type(Cg *c, DType dt);
LLVMValueRef cg_gep(Cg *c, LLVMTypeRef elem, LLVMValueRef base,
                    LLVMValueRef idx);
LLVMValueRef cg_gep_const(Cg *c, LLVMTypeRef elem, LLVMValueRef base,
                          int64_t idx);
LLVMValueRef cg_entry_alloca(Cg *c, LLVMTypeRef t, const char *name);
void cg_memcpy(Cg *c, LLVMValueRef dst, LLVMValueRef src, int64_t bytes);
void cg_memcpy_dyn(Cg *c, LLVMValueRef dst, LLVMValueRef src,
                   LLVMValueRef bytes);
LLVMBasicBlockRef cg_block(Cg *c, const char *name);

/* A counted loop `for (i = 0; i < n; i++)`: cg_for_begin leaves the builder
 * in the body and returns i (i64); cg_for_end closes it and leaves the
 * builder after the loop.  Loops nest. */
typedef struct CgLoop {
    LLVMBasicBlockRef head, exit;
    LLVMValueRef iv;
} CgLoop;
LLVMValueRef cg_for_begin(Cg *c, CgLoop *l, LLVMValueRef n);
void cg_for_end(Cg *c, CgLoop *l);

/* A loop nest over a shape, visiting every index once, with one strided
 * pointer per operand (strides in elements; 0 broadcasts).  Size-1 axes
 * are dropped and adjacent axes that are contiguous in every operand are
 * merged, so the same-shape and scalar-broadcast cases become one flat loop
 * whose innermost stride is 1 or 0, which the loop vectoriser handles. */
/* Enough for a fused node: up to 16 operands plus its results. */
#define CG_NEST_MAX_OPS 40
typedef struct CgNest {
    int rank;
    int64_t dims[IR_MAX_RANK];
    int n_ops;
    LLVMTypeRef elem[CG_NEST_MAX_OPS];
    LLVMValueRef base[CG_NEST_MAX_OPS];
    int64_t strides[CG_NEST_MAX_OPS][IR_MAX_RANK];
} CgNest;
typedef void (*CgNestBody)(Cg *c, LLVMValueRef *ptrs, void *ud);
void cg_nest(Cg *c, const CgNest *n, CgNestBody body, void *ud);
CgNest cg_nest_simplify(const CgNest *n); /* what cg_nest loops over */
/* cg_nest over an already simplified nest (rank >= 1) whose outermost
 * axis runs over [lo, hi) only (i64 values): one chunk of a parallel
 * loop. */
void cg_nest_range(Cg *c, const CgNest *s, LLVMValueRef lo, LLVMValueRef hi,
                   CgNestBody body, void *ud);
/* Sets p[row, col] = -inf where col > row, for `mats` row-major R x C
 * matrices from p on. */
void cg_causal_fill(Cg *c, LLVMValueRef p, int64_t mats, int64_t rows,
                    int64_t cols);

/* Contiguous row-major strides of t; broadcast strides of `in` read as the
 * shape `out` (PyTorch rules, right-aligned, 0 on broadcast axes). */
void cg_strides(const Type *t, int64_t *strides);
void cg_bcast_strides(const Type *in, const Type *out, int64_t *strides);

/* ---- runtime.c: functions the generated code calls -------------------- */

typedef enum CgRtFn {
    CG_RT_SGEMM_BATCHED, /* nnc_sgemm_batched */
    CG_RT_SET_ERROR,     /* nnc_rt_set_error (variadic) */
    CG_RT_MODEL_INIT,    /* nnc_model_init */
    CG_RT_ST_LOAD,       /* nnc_st_load */
    CG_RT_ST_SAVE,       /* nnc_st_save */
    CG_RT_MODEL_TENSOR,  /* nnc_model_tensor */
    CG_RT_MEMALIGN,      /* posix_memalign */
    CG_RT_FREE,          /* free */
    CG_RT_ERFF,
    CG_RT_LOG1PF,       /* libm */
    CG_RT_DROPOUT_MASK, /* nnc_dropout_mask */
    CG_RT_SUM_SQUARES,  /* nnc_sum_squares */
    CG_RT_SCALE,        /* nnc_scale */
    CG_RT_SGD_STEP,     /* nnc_sgd_step */
    CG_RT_ADAM_STEP,    /* nnc_adam_step */
    CG_RT_PREPARE,      /* nnc_runtime_prepare */
    CG_RT_ATTENTION_FWD, /* the fused kernels (runtime/nnc.h) */
    CG_RT_ATTENTION_BWD,
    CG_RT_LSTM_CELL_FWD,
    CG_RT_LSTM_CELL_BWD,
    CG_RT_SOFTMAX_XENT,
    CG_RT_PARALLEL_FOR, /* nnc_parallel_for */
    CG_RT_COUNT
} CgRtFn;
extern const char *const cg_rt_names[CG_RT_COUNT];
LLVMValueRef cg_rt_call(Cg *c, CgRtFn f, LLVMValueRef *args, unsigned n);
LLVMValueRef cg_intrinsic(Cg *c, const char *name, LLVMTypeRef overload,
                          LLVMValueRef *args, unsigned n);
/* If `cond` (i1) holds, calls nnc_rt_set_error(status, fmt, args...) and
 * returns its result from the function being emitted; the builder goes on
 * in the block where cond is false. */
void cg_error_if(Cg *c, LLVMValueRef cond, int status, const char *fmt,
                 LLVMValueRef *args, unsigned n);
/* If status (i32) is not 0, returns it from the function being emitted. */
void cg_check_status(Cg *c, LLVMValueRef status);

/* ---- lower.c ---------------------------------------------------------- */

typedef void (*CgLowerFn)(Cg *c, Graph *g, const Node *n);
extern const CgLowerFn cg_lower[OP_COUNT];

void cg_emit_graph(Cg *c, Graph *g); /* every node, in order */
bool *cg_live_nodes(const Module *m, const Graph *g, bool training); /* nodes emitted; caller frees */
LLVMValueRef cg_ptr(Cg *c, const Graph *g, Value v);
void cg_set_ptr(Cg *c, const Graph *g, Value v, LLVMValueRef p);
LLVMValueRef cg_scratch(Cg *c, const Graph *g, const Node *n);
Node *cg_def_node(const Graph *g, Value v);
bool cg_is_const(const Graph *g, Value v, double *value);

/* scalar.c */
LLVMValueRef cg_scalar_unary(Cg *c, Op op, double p, LLVMValueRef x);
LLVMValueRef cg_scalar_binary(Cg *c, Op op, DType dt, LLVMValueRef a,
                              LLVMValueRef b);
LLVMValueRef cg_fmax(Cg *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_exp(Cg *c, LLVMValueRef x);  /* inline, vectorisable */
LLVMValueRef cg_tanh(Cg *c, LLVMValueRef x); /* inline, vectorisable */
/* elementwise.c: where's select (cond of dtype dt, nonzero picks a), and
 * any unary/binary/compare/where node of g on the scalars `in` (one per
 * operand), as the unfused lowerings compute it. */
LLVMValueRef cg_scalar_where(Cg *c, DType dt, LLVMValueRef cond,
                             LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_scalar_node(Cg *c, const Graph *g, const Node *n,
                            LLVMValueRef *in);

/* ---- parallel.c: loops on libnncrt's thread pool ---------------------- */

/* Work (elements) below which a loop stays on the calling thread. */
#define CG_PAR_MIN_WORK 32768
/* Emits body into a new internal function void(ptr ctx, i64 begin,
 * i64 end) (nnc_range_fn) and calls nnc_parallel_for(n, fn, ctx).  The
 * body may use only what it is given: caps[k] is the value the caller
 * passed as caps[k] (pointers), reloaded from ctx in the new function;
 * c->fn and the builder point into the new function while body runs.  So
 * every pointer the body needs is computed before the call. */
typedef void (*CgRangeBody)(Cg *c, LLVMValueRef *caps, LLVMValueRef begin,
                            LLVMValueRef end, void *ud);
void cg_parallel_for(Cg *c, LLVMValueRef n, LLVMValueRef *caps, int n_caps,
                     CgRangeBody body, void *ud);
/* cg_nest, with the outermost axis of the simplified nest split over the
 * pool when `work` >= CG_PAR_MIN_WORK.  Each element is computed by one
 * thread with the same code, so results do not depend on the thread
 * count.  Pointers the body needs besides the nest's go in as operands
 * with all strides 0. */
void cg_nest_parallel(Cg *c, const CgNest *n, int64_t work, CgNestBody body,
                      void *ud);
/* In a cg_parallel_for body: sets *status (i32) to st if it is still 0,
 * atomically (the first failure wins). */
void cg_par_status(Cg *c, LLVMValueRef status, LLVMValueRef st);

/* Per-family lowerings referenced by the table in lower.c. */
void cg_lower_unary(Cg *c, Graph *g, const Node *n);
void cg_lower_binary(Cg *c, Graph *g, const Node *n);
void cg_lower_where(Cg *c, Graph *g, const Node *n);
void cg_lower_const(Cg *c, Graph *g, const Node *n);
void cg_lower_broadcast_to(Cg *c, Graph *g, const Node *n);
void cg_lower_alias(Cg *c, Graph *g, const Node *n); /* reshape */
void cg_lower_leaf(Cg *c, Graph *g, const Node *n);
void cg_lower_transpose(Cg *c, Graph *g, const Node *n);
void cg_lower_permute(Cg *c, Graph *g, const Node *n);
void cg_lower_concat(Cg *c, Graph *g, const Node *n);
void cg_lower_slice(Cg *c, Graph *g, const Node *n);
void cg_lower_reduce(Cg *c, Graph *g, const Node *n);
void cg_lower_softmax(Cg *c, Graph *g, const Node *n);
void cg_lower_norm(Cg *c, Graph *g, const Node *n);
void cg_lower_matmul(Cg *c, Graph *g, const Node *n);
void cg_lower_attention(Cg *c, Graph *g, const Node *n);
void cg_lower_gather(Cg *c, Graph *g, const Node *n);
void cg_lower_causal_mask(Cg *c, Graph *g, const Node *n);
void cg_lower_cross_entropy(Cg *c, Graph *g, const Node *n);
void cg_lower_pair_loss(Cg *c, Graph *g, const Node *n);
void cg_lower_scan(Cg *c, Graph *g, const Node *n);
void cg_lower_scatter_add(Cg *c, Graph *g, const Node *n); /* lower_grad.c */
void cg_lower_one_hot(Cg *c, Graph *g, const Node *n);     /* lower_grad.c */
/* kernels.c: the fused ops lowered to runtime kernels */
void cg_lower_lstm_cell(Cg *c, Graph *g, const Node *n);
void cg_lower_lstm_cell_grad(Cg *c, Graph *g, const Node *n);
void cg_lower_attention_grad(Cg *c, Graph *g, const Node *n);
void cg_lower_softmax_xent(Cg *c, Graph *g, const Node *n);
/* fused.c: the fused ops with a body graph */
void cg_lower_fused(Cg *c, Graph *g, const Node *n);
void cg_lower_matmul_epilogue(Cg *c, Graph *g, const Node *n);
/* matmul.c: attention whose batch axes broadcast, scores materialised in
 * the node's scratch (kernels.c lowers the others) */
void cg_lower_attention_materialised(Cg *c, Graph *g, const Node *n);
/* kernels.c: q, k, v share their batch axes, so the tiled kernel applies */
bool cg_attention_tiled(const Graph *g, const Node *n);
/* nn.c: fails with NNC_ERR_RANGE unless every target is in 0..classes-1 */
void cg_check_targets(Cg *c, LLVMValueRef tp, const Type *targets,
                      int64_t classes);

/* Helpers shared between lowerings. */
/* A transpose read only by matmuls (and matmul_epilogue products) is not
 * copied: the GEMM reads its source with the transpose flag. */
bool cg_transpose_folds(Cg *c, const Graph *g, const Node *n);
/* Row-wise softmax (log=false) or log-softmax over `len` elements spaced
 * `stride` apart, from src to dst (may be equal). */
void cg_softmax_row(Cg *c, LLVMValueRef src, LLVMValueRef dst, int64_t len,
                    int64_t stride, bool log);
/* log(sum(exp(x))) of a contiguous row, max-subtracted. */
LLVMValueRef cg_row_logsumexp(Cg *c, LLVMValueRef src, int64_t len);

/* ---- target.c ---------------------------------------------------------- */

void cg_init_targets(void);
/* NULL after a message on stderr. */
LLVMTargetMachineRef cg_target_machine(const CgOptions *o);
void cg_prepare_module(LLVMModuleRef mod, LLVMTargetMachineRef tm);
void cg_verify_module(LLVMModuleRef mod);
void cg_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level);
/* cg_build_module + triple and data layout + verify + optimise. */
LLVMModuleRef cg_compile_module(const Module *m, const CgOptions *o,
                                LLVMContextRef ctx, LLVMTargetMachineRef tm,
                                bool jit);

#endif
