/* eval.h — private to the reference evaluator (eval.c, eval_ops.c).
 *
 * eval.c walks a graph and owns the leaves, the elementwise ops, dropout
 * and scan; eval_fused.c the fused ops; eval_ops.c has the ops with structure (matrix and shape ops,
 * reductions, normalisations, lookups, attention, losses).  Both read
 * operands and write results through the helpers below. */
#ifndef NNC_IR_EVAL_H
#define NNC_IR_EVAL_H

#include "ir.h"

typedef struct Eval {
    const Module *m;
    const EvalTensor *inputs, *params, *args;
    const EvalOptions *opt;
    uint64_t path;    /* hash of the enclosing scan steps' positions */
    const Graph *g;   /* graph being evaluated */
    EvalTensor *vals; /* [value id] */
    char *err;
    size_t errlen;
} Eval;

typedef bool (*EvalFn)(Eval *e, const Node *n);

/* eval.c */
const EvalTensor *ev_in(Eval *e, const Node *n, int i);
EvalTensor *ev_out(Eval *e, const Node *n, int k); /* allocated, zeroed */
bool ev_fail(Eval *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Runs body graph `body` on args in a frame of its own (the caller's scan
 * path); results are fresh tensors the caller owns. */
bool ev_body(Eval *e, const Graph *body, const EvalTensor *args,
             EvalTensor *results);

/* Row-major strides of t; strides of `in` read as the broadcast shape
 * `out` (0 on broadcast axes, PyTorch's right alignment). */
void ev_strides(const Type *t, int64_t *st);
void ev_bcast_strides(const Type *in, const Type *out, int64_t *st);
/* The offset, under strides st, of element `flat` of shape t. */
int64_t ev_offset(int64_t flat, const Type *t, const int64_t *st);

/* eval_ops.c: one function per op family, referenced by eval.c's table. */
bool ev_matmul(Eval *e, const Node *n);
bool ev_permute(Eval *e, const Node *n); /* TRANSPOSE and PERMUTE */
bool ev_reshape(Eval *e, const Node *n);
bool ev_broadcast_to(Eval *e, const Node *n);
bool ev_concat(Eval *e, const Node *n);
bool ev_slice(Eval *e, const Node *n);
bool ev_reduce(Eval *e, const Node *n);
bool ev_softmax(Eval *e, const Node *n);
bool ev_norm(Eval *e, const Node *n);
bool ev_gather(Eval *e, const Node *n);
bool ev_scatter_add(Eval *e, const Node *n);
bool ev_one_hot(Eval *e, const Node *n);
bool ev_causal_mask(Eval *e, const Node *n);
bool ev_attention(Eval *e, const Node *n);
bool ev_cross_entropy(Eval *e, const Node *n);
bool ev_pair_loss(Eval *e, const Node *n);

/* eval_fused.c: the fused ops */
bool ev_lstm_cell(Eval *e, const Node *n);
bool ev_lstm_cell_grad(Eval *e, const Node *n);
bool ev_attention_grad(Eval *e, const Node *n);
bool ev_softmax_xent(Eval *e, const Node *n);
bool ev_fused(Eval *e, const Node *n);
bool ev_matmul_epilogue(Eval *e, const Node *n);

#endif
