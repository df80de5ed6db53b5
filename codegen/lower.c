/* lower.c — the lowering table and the graph walker.
 *
 * cg_lower has one entry per op of ir/ops.def (tests/codegen checks there is
 * no gap).  cg_emit_graph emits a graph's live nodes in definition order:
 * it points every result that owns a slot at its place in the instance
 * (layout.c), then calls the op's lowering, which reads operand pointers
 * with cg_ptr and writes through the result pointers.  The main graph is
 * live from the outputs backwards (forward computes nothing the outputs do
 * not need, such as the loss), or when emitting the training graph
 * (c->training) from the loss and the gradients; a scan body is live from
 * all its results. */
#include "codegen/cg.h"

#include <stdlib.h>

const CgLowerFn cg_lower[OP_COUNT] = {
    [OP_INPUT] = cg_lower_leaf,
    [OP_PARAM] = cg_lower_leaf,
    [OP_ARG] = cg_lower_leaf,
    [OP_CONST] = cg_lower_const,
    [OP_NEG] = cg_lower_unary,
    [OP_EXP] = cg_lower_unary,
    [OP_LOG] = cg_lower_unary,
    [OP_SQRT] = cg_lower_unary,
    [OP_RSQRT] = cg_lower_unary,
    [OP_ABS] = cg_lower_unary,
    [OP_RELU] = cg_lower_unary,
    [OP_SIGMOID] = cg_lower_unary,
    [OP_TANH] = cg_lower_unary,
    [OP_GELU] = cg_lower_unary,
    [OP_GELU_TANH] = cg_lower_unary,
    [OP_SILU] = cg_lower_unary,
    [OP_SOFTPLUS] = cg_lower_unary,
    [OP_POW] = cg_lower_unary,
    [OP_ADD] = cg_lower_binary,
    [OP_SUB] = cg_lower_binary,
    [OP_MUL] = cg_lower_binary,
    [OP_DIV] = cg_lower_binary,
    [OP_MAXIMUM] = cg_lower_binary,
    [OP_MINIMUM] = cg_lower_binary,
    [OP_LT] = cg_lower_binary,
    [OP_LE] = cg_lower_binary,
    [OP_GT] = cg_lower_binary,
    [OP_GE] = cg_lower_binary,
    [OP_EQ] = cg_lower_binary,
    [OP_NE] = cg_lower_binary,
    [OP_WHERE] = cg_lower_where,
    [OP_MATMUL] = cg_lower_matmul,
    [OP_TRANSPOSE] = cg_lower_transpose,
    [OP_PERMUTE] = cg_lower_permute,
    [OP_RESHAPE] = cg_lower_alias,
    [OP_BROADCAST_TO] = cg_lower_broadcast_to,
    [OP_CONCAT] = cg_lower_concat,
    [OP_SLICE] = cg_lower_slice,
    [OP_SUM] = cg_lower_reduce,
    [OP_MEAN] = cg_lower_reduce,
    [OP_MAX] = cg_lower_reduce,
    [OP_SOFTMAX] = cg_lower_softmax,
    [OP_LOG_SOFTMAX] = cg_lower_softmax,
    [OP_LAYERNORM] = cg_lower_norm,
    [OP_RMSNORM] = cg_lower_norm,
    [OP_GATHER] = cg_lower_gather,
    [OP_CAUSAL_MASK] = cg_lower_causal_mask,
    [OP_ATTENTION] = cg_lower_attention,
    [OP_DROPOUT] = cg_lower_dropout, /* train.c */
    [OP_CROSS_ENTROPY] = cg_lower_cross_entropy,
    [OP_MSE] = cg_lower_pair_loss,
    [OP_BCE_WITH_LOGITS] = cg_lower_pair_loss,
    [OP_SCATTER_ADD] = cg_lower_scatter_add,
    [OP_ONE_HOT] = cg_lower_one_hot,
    [OP_SCAN] = cg_lower_scan,
    [OP_LSTM_CELL] = cg_lower_lstm_cell,
    [OP_LSTM_CELL_GRAD] = cg_lower_lstm_cell_grad,
    [OP_ATTENTION_GRAD] = cg_lower_attention_grad,
    [OP_SOFTMAX_XENT] = cg_lower_softmax_xent,
    [OP_FUSED] = cg_lower_fused,
    [OP_MATMUL_EPILOGUE] = cg_lower_matmul_epilogue,
};

bool cg_can_lower(Op op)
{
    return op >= 0 && op < OP_COUNT && cg_lower[op] != NULL;
}

LLVMValueRef cg_ptr(Cg *c, const Graph *g, Value v)
{
    LLVMValueRef p = c->vals[g->id][v.id];
    if (!p)
        ir_internal_error("codegen",
                          "graph %s: value %%%u used before it is emitted",
                          g->name, v.id);
    return p;
}

void cg_set_ptr(Cg *c, const Graph *g, Value v, LLVMValueRef p)
{
    c->vals[g->id][v.id] = p;
}

Node *cg_def_node(const Graph *g, Value v)
{
    return &g->nodes.data[g->values.data[v.id].def];
}

bool cg_is_const(const Graph *g, Value v, double *value)
{
    const Node *d = cg_def_node(g, v);
    if (d->op != OP_CONST)
        return false;
    *value = d->attr.value;
    return true;
}

LLVMValueRef cg_scratch(Cg *c, const Graph *g, const Node *n)
{
    int64_t off = c->lay->scratch_off[g->id][n - g->nodes.data];
    if (off == CG_NO_SLOT)
        ir_internal_error("codegen", "graph %s: %s has no scratch", g->name,
                          ir_op_info[n->op].name);
    return cg_gep_const(c, c->i8, c->inst, off);
}

/* Inputs are forward's arguments, params their region of the instance;
 * a scan's lowering points its body's arguments before emitting it. */
void cg_lower_leaf(Cg *c, Graph *g, const Node *n)
{
    if (n->op == OP_INPUT) {
        if (!c->inputs || !c->inputs[n->attr.index])
            ir_internal_error("codegen",
                              "input %d is not an argument of forward",
                              n->attr.index);
        cg_set_ptr(c, g, n->out[0], c->inputs[n->attr.index]);
    } else if (n->op == OP_PARAM) {
        cg_set_ptr(
            c, g, n->out[0],
            cg_gep_const(c, c->i8, c->inst, c->lay->param_off[n->attr.index]));
    } else {
        (void)cg_ptr(c, g, n->out[0]);
    }
}

/* reshape keeps the row-major element order: a view of its operand (so is
 * dropout outside training, see cg_lower_dropout). */
void cg_lower_alias(Cg *c, Graph *g, const Node *n)
{
    cg_set_ptr(c, g, n->out[0], cg_ptr(c, g, n->in[0]));
}

/* The nodes the walker emits: the main graph from its outputs, or in
 * training from the loss and the gradients; a body from all its results and
 * its arguments.  The memory planner (plan.c) replays the same choice, so
 * both call this one function.  The caller frees the array. */
bool *cg_live_nodes(const Module *m, const Graph *g, bool training)
{
    bool *live_v = calloc((size_t)g->values.len, sizeof *live_v);
    bool *live_n = calloc((size_t)g->nodes.len + 1, sizeof *live_n);
    if (!live_v || !live_n)
        ir_internal_error("codegen", "out of memory");
    int first = 0, n_res = g->results.len;
    if (g->id == 0 && training)
        first = m->n_outputs;
    else if (g->id == 0)
        n_res = m->n_outputs;
    for (int r = first; r < n_res; r++)
        live_v[g->results.data[r].id] = true;
    for (int ni = g->nodes.len - 1; ni >= 0; ni--) {
        const Node *n = &g->nodes.data[ni];
        for (int o = 0; o < n->n_out; o++)
            live_n[ni] |= live_v[n->out[o].id];
        if (g->id != 0 && n->op == OP_ARG)
            live_n[ni] = true;
        for (int i = 0; live_n[ni] && i < n->n_in; i++)
            live_v[n->in[i].id] = true;
    }
    free(live_v);
    return live_n;
}

void cg_emit_graph(Cg *c, Graph *g)
{
    bool *live = cg_live_nodes(c->m, g, c->training);
    const int64_t *off = c->lay->value_off[g->id];
    for (int ni = 0; ni < g->nodes.len; ni++) {
        const Node *n = &g->nodes.data[ni];
        if (!live[ni])
            continue;
        for (int r = 0; r < n->n_out; r++) {
            Value v = n->out[r];
            bool moved = c->redirect && c->redirect_graph == g->id &&
                         c->redirect[v.id];
            if (moved)
                cg_set_ptr(c, g, v, c->redirect[v.id]);
            else if (off[v.id] != CG_NO_SLOT)
                cg_set_ptr(c, g, v, cg_gep_const(c, c->i8, c->inst, off[v.id]));
        }
        if (!cg_lower[n->op])
            ir_internal_error("codegen", "no lowering for %s",
                              ir_op_info[n->op].name);
        cg_lower[n->op](c, g, n);
    }
    free(live);
}
