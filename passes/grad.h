/* grad.h — private to the autodiff pass: the reverse-mode engine, the
 * gradient rules and the small graph builders they share.
 *
 *   autodiff.c     the pass: dropout sites, the main graph's gradients
 *   grad_engine.c  activity analysis, the backward sweep, accumulation
 *   grad_build.c   builders that emit typed nodes (with a little folding)
 *   grad_rules.c   the rule table and the rules of elementwise, shape and
 *                  reduction ops
 *   grad_nn.c      the rules of normalisations, lookups, attention, losses
 *   grad_scan.c    scan: backpropagation through time as a reverse scan
 *   grad_save.c    which values of the recomputed step are saved instead
 *   grad_defer.c   weight gradients as one product after the scan
 *   grad_fused.c   the fused ops: lstm_cell's fused backward
 *
 * docs/autodiff.md describes the design. */
#ifndef NNC_PASSES_GRAD_H
#define NNC_PASSES_GRAD_H

#include "passes/pass.h"

/* One contribution to a value's gradient: a whole gradient, or (slice) the
 * gradient of the piece slice(v, attr), assembled with the other pieces
 * when the gradient is read. */
typedef struct Contrib {
    Value g;
    bool slice;
    Attrs attr;
} Contrib;

typedef struct ContribList {
    Contrib *data;
    int32_t len, cap;
} ContribList;

/* Differentiation of one graph.  Nodes [0, n_fwd) are the forward being
 * differentiated; the backward nodes are appended to the same graph. */
typedef struct Ad {
    Module *m;
    Graph *g;
    int32_t n_fwd;
    int32_t n_vals;   /* the arrays below cover value ids below this */
    bool *active;     /* [id]: depends on a value gradients are taken for */
    ContribList *adj; /* [id]: the contributions to its gradient so far */
} Ad;

/* What a rule sees.  The node is a copy: the graph's node array moves
 * when the rule adds nodes. */
typedef struct GradCall {
    Node n;
    int32_t index;     /* the node's index in ad->g */
    const Value *gout; /* per result: its gradient, or IR_NONE */
    const bool *need;  /* per operand: whether its gradient is wanted */
    Value *gin;        /* per operand: set by the rule, or left IR_NONE */
} GradCall;

typedef void (*GradRule)(Ad *ad, GradCall *c);

/* grad_rules.c: one entry per op of ops.def; grad_none is the explicit
 * "no gradient" of leaves and OPF_NODIFF ops (test_autodiff.c checks the
 * table has no gap and that exactly those ops use it). */
extern const GradRule grad_rules[OP_COUNT];
void grad_none(Ad *ad, GradCall *c);

/* grad_engine.c */
/* active[id] for every value of g: true for the sources (source[id]) and
 * for every f32 result of a differentiable op with an active operand.
 * Allocated in the module's arena. */
bool *ad_activity(Graph *g, const bool *source);
Ad *ad_new(Module *m, Graph *g, const bool *source);
void ad_contribute(Ad *ad, Value v, Value grad);
void ad_contribute_slice(Ad *ad, Value v, Value grad, const Attrs *slice);
/* Walks the forward nodes backwards, applying the rules. */
void ad_backprop(Ad *ad);
/* The sum of v's contributions (IR_NONE if there are none). */
Value ad_gradient(Ad *ad, Value v);

/* grad_build.c: every builder checks types with the op's shape rule; a
 * failure is an internal error naming the op. */
Type gb_type(Ad *ad, Value v);
Value gb_node(Ad *ad, Op op, const Value *in, int n_in, const Attrs *attr);
/* A node with up to max_out results, written to outs (may be NULL). */
Value gb_node_results(Ad *ad, Op op, const Value *in, int n_in,
                      const Attrs *attr, int max_out, Value *outs);
Value gb_unary(Ad *ad, Op op, Value x);
Value gb_binary(Ad *ad, Op op, Value a, Value b); /* folds 0 and 1 */
Value gb_add(Ad *ad, Value a, Value b);
Value gb_sub(Ad *ad, Value a, Value b);
Value gb_mul(Ad *ad, Value a, Value b);
Value gb_div(Ad *ad, Value a, Value b);
Value gb_neg(Ad *ad, Value x);
Value gb_const(Ad *ad, double v, Type t);
Value gb_scalar(Ad *ad, double v); /* const v : f32[] */
Value gb_zeros(Ad *ad, Type t);
Value gb_where(Ad *ad, Value cond, Value a, Value b);
Value gb_matmul(Ad *ad, Value a, Value b);
Value gb_transpose(Ad *ad, Value x);
Value gb_reshape(Ad *ad, Value x, Type t);   /* x itself if already t */
Value gb_broadcast(Ad *ad, Value x, Type t); /* x itself if already t */
Value gb_reduce(Ad *ad, Op op, Value x, uint32_t axes, bool keepdims);
Value gb_last_axis(Ad *ad, Op op, Value x); /* reduce the last axis, keepdims */
Value gb_slice(Ad *ad, Value x, const int64_t *start, const int64_t *stop);
Value gb_concat(Ad *ad, const Value *parts, int n, int axis);
/* Sums g (of a broadcast shape) back to t: over the leading axes t lacks
 * and the axes where t has size 1, then reshapes to t. */
Value gb_reduce_to(Ad *ad, Value g, Type t);
/* g (the gradient of a reduction over `axes` of x) broadcast back to x's
 * type. */
Value gb_unreduce(Ad *ad, Value g, Type x, uint32_t axes, bool keepdims);

/* grad_scan.c, grad_save.c: the backward body of a scan recomputes the
 * forward step (nodes first_copy..first_grad-1) before its gradient nodes;
 * forward_of[id] (per value of the backward body) is the forward body's
 * value a recomputed value copies, IR_NONE for others. */
typedef struct BwdRecompute {
    int32_t first_copy, first_grad;
    Value *forward_of;
    int32_t n_forward_of; /* values above were added later (nested scans) */
} BwdRecompute;
/* Makes the gradient nodes of bb read the recomputed values they need from
 * new scanned arguments (inserted before the last n_captures arguments)
 * instead, except values that are cheap to recompute; writes the forward
 * body's values to stack, in argument order, to forward_saved and returns
 * how many.  The recompute they leave unused is left to DCE. */
int grad_save_recomputed(Graph *bb, const BwdRecompute *r, int n_captures,
                         Value *forward_saved);

/* grad_defer.c: a capture's per-step gradient matmul(transpose(x), y)
 * summed over the steps as one product of the stacked x and y. */
/* x and y when g is matmul(transpose(x), y) of rank-2 f32 values. */
bool grad_outer_product(Graph *bb, Value g, Value *x, Value *y);
/* Turns argument `arg` of bb into an unused constant (DCE drops it) and
 * renumbers the arguments after it. */
void grad_drop_arg(Graph *bb, Value arg);
/* sum over t of xs[t]^T @ ys[t], xs [T, B, h] and ys [T, B, n], as one
 * matmul of the flattened stacks. */
Value grad_stacked_product(Ad *ad, Value xs, Value ys);

/* grad_scan.c */
void grad_scan(Ad *ad, GradCall *c);
/* The graph's name, or with ".2", ".3", ... until no graph has it. */
const char *grad_unique_name(Module *m, const char *base);
/* A copy of g (nodes, values, results) appended to m->graphs. */
Graph *grad_clone_graph(Module *m, const Graph *g, const char *name);

/* grad_nn.c: rules referenced by the table */
void grad_layernorm(Ad *ad, GradCall *c);
void grad_rmsnorm(Ad *ad, GradCall *c);
void grad_gather(Ad *ad, GradCall *c);
void grad_scatter_add(Ad *ad, GradCall *c);
void grad_causal_mask(Ad *ad, GradCall *c);
void grad_attention(Ad *ad, GradCall *c);

/* grad_fused.c */
void grad_lstm_cell(Ad *ad, GradCall *c);
void grad_not_differentiable(Ad *ad, GradCall *c); /* internal error */
void grad_dropout(Ad *ad, GradCall *c);
void grad_cross_entropy(Ad *ad, GradCall *c);
void grad_mse(Ad *ad, GradCall *c);
void grad_bce_with_logits(Ad *ad, GradCall *c);
void grad_softmax(Ad *ad, GradCall *c);
void grad_log_softmax(Ad *ad, GradCall *c);

#endif
