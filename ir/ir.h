/* ir.h — the map of ir/: the graph IR every other part of nnc works on.
 *
 * A Module holds the declarations of one model (dims, inputs, params, the
 * training spec) and a list of Graphs.  graphs[0] is the main graph; every
 * scan body is a graph of its own, reached through the scan node's
 * attr.graph, so passes handle recurrence without unrolling it.
 *
 * A Graph is an SSA graph: an array of Nodes in definition order (every
 * operand is defined by an earlier node) and an array of values.  A Value is
 * a 32-bit id into the graph's value table, 0 meaning "none"; it never holds
 * a pointer, so growing the arrays never invalidates it.  Every node, value,
 * string and array is allocated in the module's Arena and freed with it.
 *
 * Files:  arena.c (Arena, vectors)   diag.c (located errors)
 *         graph.c (module, graphs, builder)
 *         shape.c, shape_nn.c (type rules per op; private shape_rules.h)
 *         print.c (text IR)   verify.c (verifier)
 *         read.c, read_lex.c, read_graph.c (text IR back in; private read.h)
 *         dot.c (Graphviz)   eval.c, eval_ops.c (reference evaluator)
 */
#ifndef NNC_IR_H
#define NNC_IR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NNC_VERSION "0.1.0"

/* ---- arena.c: bulk allocation, one arena per compilation ------------- */

typedef struct ArenaChunk ArenaChunk;
typedef struct Arena {
    ArenaChunk *head;
    size_t total; /* bytes handed out, for the memory cap on hostile input */
} Arena;

Arena *arena_new(void);
void arena_free(Arena *a);                 /* frees everything at once */
void *arena_alloc(Arena *a, size_t size);  /* zeroed, 16-byte aligned; exits on OOM */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Growable arrays that live in an arena: VEC(int) v = {0}; vec_push(a, &v, 3); */
#define VEC(T) struct { T *data; int32_t len, cap; }
void vec_grow_(Arena *a, void **data, int32_t *cap, int32_t need, size_t elem);
#define vec_push(arena, v, x)                                                  \
    (vec_grow_((arena), (void **)&(v)->data, &(v)->cap, (v)->len + 1,          \
               sizeof *(v)->data),                                             \
     (v)->data[(v)->len++] = (x))

/* ---- diag.c: errors with a place -------------------------------------- */

typedef struct SrcLoc {
    int32_t line, col; /* 1-based; col counts bytes; line 0 = no place */
} SrcLoc;

typedef struct Diag {
    const char *file;   /* name printed in front of every message */
    const char *src;    /* the text, for the source line and caret; may be NULL */
    size_t src_len;
    int n_errors;
    int max_errors;     /* stop reporting after this many (default 20) */
    FILE *out;          /* stderr unless a test redirects it */
} Diag;

void diag_init(Diag *d, const char *file, const char *src, size_t src_len);
/* Prints "file:line:col: error: MESSAGE", the source line and a caret. */
void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_verror(Diag *d, SrcLoc loc, const char *fmt, va_list ap);
bool diag_full(const Diag *d); /* the error cap was reached: stop early */

/* A broken compiler invariant, never a user mistake:
 * "nnc: internal error: WHERE: MESSAGE" on stderr, exit status 70. */
_Noreturn void ir_internal_error(const char *where, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- types ------------------------------------------------------------ */

#define IR_MAX_RANK 8

typedef enum DType { DT_F32, DT_I32 } DType;

typedef struct Type {
    DType dtype;
    int32_t rank;
    int64_t dims[IR_MAX_RANK];
} Type;

int64_t ir_type_numel(const Type *t);
bool ir_type_eq(const Type *a, const Type *b);
/* "f32[128, 784]", "f32[]": written into buf, which is returned. */
const char *ir_type_str(const Type *t, char *buf, size_t len);
Type ir_type_make(DType dt, int32_t rank, const int64_t *dims);
Type ir_type_scalar(DType dt);

/* ---- ops (ops.def) ---------------------------------------------------- */

enum {
    OPF_LEAF = 1 << 0,
    OPF_UNARY = 1 << 1,
    OPF_BINARY = 1 << 2,
    OPF_COMPARE = 1 << 3,
    OPF_REDUCE = 1 << 4,
    OPF_NODIFF = 1 << 5,
    OPF_MULTI = 1 << 6,
    OPF_GRAPH = 1 << 7,
};

typedef enum Op {
#define OP(e, name, arity, flags) OP_##e,
#include "ops.def"
#undef OP
    OP_COUNT
} Op;

typedef struct OpInfo {
    const char *name;
    int arity; /* -1: variadic */
    unsigned flags;
} OpInfo;

extern const OpInfo ir_op_info[OP_COUNT];
Op ir_op_by_name(const char *name); /* OP_COUNT if unknown */

/* ---- attributes --------------------------------------------------------
 * One struct with named fields; each op uses the fields ops.def lists for
 * it and leaves the others zero, so two nodes with equal ops and attrs are
 * interchangeable (CSE compares them with ir_attrs_eq). */
typedef struct Attrs {
    int32_t index;            /* INPUT, PARAM, ARG: which one; DROPOUT: site */
    int32_t graph;            /* OPF_GRAPH ops: body graph id in Module.graphs */
    int32_t n_carry, n_over;  /* SCAN */
    int32_t axis;             /* SOFTMAX, LOG_SOFTMAX, CONCAT: >= 0 */
    uint32_t axes;            /* reductions: bit i set = reduce axis i */
    bool keepdims;            /* reductions */
    bool flag;                /* ATTENTION, ATTENTION_GRAD: causal; SCAN: reverse */
    int32_t perm[IR_MAX_RANK];    /* PERMUTE */
    int64_t start[IR_MAX_RANK];   /* SLICE: per axis, normalised >= 0 */
    int64_t stop[IR_MAX_RANK];    /* SLICE: exclusive */
    double value;             /* CONST value, POW p, eps, DROPOUT p, ATTENTION(_GRAD) scale */
    Type type;                /* CONST, RESHAPE, BROADCAST_TO, SCATTER_ADD,
                                 ONE_HOT: result type */
} Attrs;

bool ir_attrs_eq(Op op, const Attrs *a, const Attrs *b);

/* ---- graphs ------------------------------------------------------------ */

typedef struct Value { uint32_t id; } Value; /* 0: none */
#define IR_NONE ((Value){0})

typedef struct ValueInfo {
    Type type;
    int32_t def;        /* index of the defining node */
    int32_t result;     /* which result of that node */
    const char *name;   /* source-level name, for dumps; may be NULL */
} ValueInfo;

typedef struct Node {
    Op op;
    int32_t n_in, n_out;
    Value *in;
    Value *out;
    Attrs attr;
    SrcLoc loc;
} Node;

typedef struct Graph {
    Arena *arena;                   /* the module's */
    const char *name;
    int32_t id;                     /* index in Module.graphs */
    VEC(Node) nodes;                /* definition order */
    VEC(ValueInfo) values;          /* values.data[0] is the unused "none" */
    VEC(Value) results;             /* what the graph returns */
    VEC(const char *) result_names; /* per result; NULL entries allowed */
    int32_t n_args;                 /* body graphs: number of ARG nodes */
} Graph;

/* ---- module: the model's declarations -------------------------------- */

typedef enum InitKind {
    INIT_ZEROS, INIT_ONES, INIT_CONST, INIT_UNIFORM, INIT_NORMAL,
    INIT_XAVIER_UNIFORM, INIT_KAIMING_NORMAL, INIT_ORTHOGONAL,
    INIT_COUNT
} InitKind;

extern const char *const ir_init_names[INIT_COUNT];

typedef struct Init {
    InitKind kind;
    double a, b; /* CONST: a; UNIFORM: lo a, hi b; NORMAL: mean a, std b */
} Init;

typedef struct DimDecl { const char *name; int64_t value; } DimDecl;
typedef struct InputDecl { const char *name; Type type; } InputDecl;
typedef struct ParamDecl {
    const char *name;
    Type type;
    Init init;
    bool frozen;
} ParamDecl;

typedef enum OptKind { OPT_NONE, OPT_SGD, OPT_ADAM, OPT_ADAMW } OptKind;
extern const char *const ir_opt_names[4];

typedef struct TrainSpec {
    OptKind opt;  /* OPT_NONE: the model has no `train` */
    double lr, momentum, beta1, beta2, eps, weight_decay;
    double clip_grad_norm; /* 0: no clipping */
    bool nesterov;
} TrainSpec;

typedef struct Module {
    Arena *arena;
    const char *name;
    VEC(DimDecl) dims;
    VEC(InputDecl) inputs;
    VEC(ParamDecl) params;
    VEC(Graph *) graphs;  /* graphs.data[0]: main */
    /* The main graph's results are the outputs in `output` order, then,
     * when train.opt != OPT_NONE, the scalar loss as the last result. */
    int32_t n_outputs;
    TrainSpec train;
    /* Set by the autodiff pass (0 before it runs, and with --no-train):
     * after the loss, the main graph returns the gradient of the loss with
     * respect to every trainable (non-frozen) param, in declaration order,
     * each named "grad.NAME". */
    int32_t n_grads;
} Module;

/* ---- graph.c: building ------------------------------------------------ */

Module *ir_module_new(Arena *a, const char *name);
Graph *ir_graph_new(Module *m, const char *name); /* appended to m->graphs */
ValueInfo *ir_value(Graph *g, Value v);
Type ir_value_type(const Graph *g, Value v);
Node *ir_def(Graph *g, Value v); /* defining node */

/* Adds a node whose result types are inferred by ir_infer (shape.c).  On a
 * type error nothing is added, IR_NONE is returned and the reason is
 * written to err (a sentence without location, e.g. "matmul of f32[64, 784]
 * and f32[512, 10]: inner dimensions 784 and 512 differ").  For a
 * multi-result op, `outs` receives every result (may be NULL otherwise). */
Value ir_add(Module *m, Graph *g, Op op, const Value *in, int n_in,
             const Attrs *attr, SrcLoc loc, Value *outs, char *err,
             size_t errlen);
/* Adds a node with the given result types, unchecked (reader, passes). */
int32_t ir_add_typed(Graph *g, Op op, const Value *in, int n_in,
                     const Attrs *attr, SrcLoc loc, const Type *out_types,
                     int n_out);
void ir_add_result(Module *m, Graph *g, Value v, const char *name);

/* ---- shape.c: the type rule of every op ------------------------------- */

/* Computes the result types of `op` applied to operands of types `in`.
 * Returns the number of results (>= 1), or 0 with a message in err.  SCAN
 * reads its body graph from m.  May normalise attrs (e.g. -1 axes). */
int ir_infer(const Module *m, Op op, const Type *in, int n_in, Attrs *attr,
             Type *out, int max_out, char *err, size_t errlen);
/* q, k and v of attention have one rank and the same batch (leading)
 * axes: nothing broadcasts, so the tiled kernels and attention_grad apply
 * (shape_fused.c). */
bool ir_attention_batch_shared(const Type *q, const Type *k, const Type *v);
/* Broadcast two shapes as PyTorch does; false if incompatible. */
bool ir_broadcast_shapes(const Type *a, const Type *b, Type *out);
/* Non-NULL for every op: the completeness test checks it. */
typedef int (*ShapeRule)(const Module *m, const Type *in, int n_in,
                         Attrs *attr, Type *out, int max_out, char *err,
                         size_t errlen);
extern const ShapeRule ir_shape_rules[OP_COUNT];

/* ---- print.c, read.c: the text IR (documented in docs/ir.md) ---------- */

void ir_print_module(FILE *f, const Module *m);
void ir_print_graph(FILE *f, const Module *m, const Graph *g);
/* Parses text printed by ir_print_module.  Errors go to d (file:line:col);
 * returns NULL if there were any. */
Module *ir_read_module(Arena *a, const char *text, size_t len, Diag *d);

/* ---- verify.c ---------------------------------------------------------- */

/* Checks SSA order, operand counts, ids, types (re-inferred), scan bodies.
 * Returns true if valid; otherwise writes the first problem to err as
 * "graph NAME: node %N (op): PROBLEM". */
bool ir_verify_module(const Module *m, char *err, size_t errlen);

/* ---- dot.c ------------------------------------------------------------ */

void ir_print_dot(FILE *f, const Module *m);

/* ---- eval.c: the reference evaluator ----------------------------------
 * Runs a graph in double precision, one op at a time, straight from the
 * definitions (PyTorch's), with every tensor a plain array of doubles
 * (i32 values held exactly).  Slow and simple on purpose: it is the oracle
 * that tests compare autodiff (finite differences) and PyTorch (float64)
 * against.  Dropout is the identity unless EvalOptions.dropout_seed is
 * set; then it draws a mask from (seed, site, the positions of the
 * enclosing scan steps, element), so a dropout and its gradient (same
 * site) use the same mask. */

typedef struct EvalTensor {
    Type type;
    double *data; /* ir_type_numel(&type) elements, malloc'ed */
} EvalTensor;

typedef struct EvalOptions {
    uint64_t dropout_seed; /* 0: dropout is the identity */
} EvalOptions;

EvalTensor ir_eval_tensor(Type t); /* zero-filled; exits on OOM */
void ir_eval_tensor_free(EvalTensor *t);
/* Evaluates graph g (the main graph: args NULL; a body: one tensor per
 * arg) with the module's inputs and params (in declaration order) and
 * writes its g->results.len results, which the caller frees.  Returns
 * false with a message (an id or target out of range, a tensor too large
 * to evaluate) and no results. opt may be NULL. */
bool ir_eval_graph(const Module *m, const Graph *g, const EvalTensor *inputs,
                   const EvalTensor *params, const EvalTensor *args,
                   const EvalOptions *opt, EvalTensor *results, char *err,
                   size_t errlen);
/* Whether the evaluator has a rule for op (the completeness test). */
bool ir_eval_has_rule(Op op);

#endif
