/* kernels.c — the fused ops that lower to a call of a libnncrt kernel
 * (runtime/nnc.h, "fused kernels"): attention (tiled, online softmax) and
 * its gradient, the LSTM cell and its gradient, softmax cross entropy
 * with its gradient.  The kernels parallelise over the pool themselves;
 * here the operands' pointers and sizes are passed. */
#include "codegen/cg.h"

static int64_t last(const Type *t) { return t->dims[t->rank - 1]; }
static int64_t second_last(const Type *t) { return t->dims[t->rank - 2]; }

bool cg_attention_tiled(const Graph *g, const Node *n)
{
    Type q = ir_value_type(g, n->in[0]), k = ir_value_type(g, n->in[1]),
         v = ir_value_type(g, n->in[2]);
    return ir_attention_batch_shared(&q, &k, &v);
}

/* The sizes both attention kernels take: bh, tq, tk, d, dv. */
static void attention_sizes(Cg *c, const Graph *g, const Node *n,
                            LLVMValueRef *out)
{
    Type q = ir_value_type(g, n->in[0]), k = ir_value_type(g, n->in[1]),
         v = ir_value_type(g, n->in[2]);
    int64_t tq = second_last(&q), d = last(&q);
    out[0] = cg_i64(c, ir_type_numel(&q) / (tq * d));
    out[1] = cg_i64(c, tq);
    out[2] = cg_i64(c, second_last(&k));
    out[3] = cg_i64(c, d);
    out[4] = cg_i64(c, last(&v));
}

void cg_lower_attention(Cg *c, Graph *g, const Node *n)
{
    if (!cg_attention_tiled(g, n)) {
        cg_lower_attention_materialised(c, g, n);
        return;
    }
    LLVMValueRef a[11];
    for (int i = 0; i < 3; i++)
        a[i] = cg_ptr(c, g, n->in[i]);
    a[3] = cg_ptr(c, g, n->out[0]);
    attention_sizes(c, g, n, a + 4);
    a[9] = cg_f32c(c, n->attr.value);
    a[10] = cg_i32c(c, n->attr.flag);
    cg_rt_call(c, CG_RT_ATTENTION_FWD, a, 11);
}

void cg_lower_attention_grad(Cg *c, Graph *g, const Node *n)
{
    LLVMValueRef a[15];
    for (int i = 0; i < 5; i++)
        a[i] = cg_ptr(c, g, n->in[i]);
    for (int i = 0; i < 3; i++)
        a[5 + i] = cg_ptr(c, g, n->out[i]);
    attention_sizes(c, g, n, a + 8);
    a[13] = cg_f32c(c, n->attr.value);
    a[14] = cg_i32c(c, n->attr.flag);
    cg_rt_call(c, CG_RT_ATTENTION_BWD, a, 15);
}

/* Rows and hidden size of an LSTM cell whose cell state has type t. */
static void lstm_sizes(Cg *c, const Type *t, LLVMValueRef *out)
{
    out[0] = cg_i64(c, ir_type_numel(t) / last(t));
    out[1] = cg_i64(c, last(t));
}

void cg_lower_lstm_cell(Cg *c, Graph *g, const Node *n)
{
    Type cell = ir_value_type(g, n->in[1]);
    LLVMValueRef a[6] = {cg_ptr(c, g, n->in[0]), cg_ptr(c, g, n->in[1]),
                         cg_ptr(c, g, n->out[0]), cg_ptr(c, g, n->out[1])};
    lstm_sizes(c, &cell, a + 4);
    cg_rt_call(c, CG_RT_LSTM_CELL_FWD, a, 6);
}

void cg_lower_lstm_cell_grad(Cg *c, Graph *g, const Node *n)
{
    Type cell = ir_value_type(g, n->in[1]);
    LLVMValueRef a[8];
    for (int i = 0; i < 4; i++)
        a[i] = cg_ptr(c, g, n->in[i]);
    a[4] = cg_ptr(c, g, n->out[0]);
    a[5] = cg_ptr(c, g, n->out[1]);
    lstm_sizes(c, &cell, a + 6);
    cg_rt_call(c, CG_RT_LSTM_CELL_BWD, a, 8);
}

/* Targets come from the caller: checked here, with cross_entropy's
 * message, before the kernel reads any (which checks again). */
void cg_lower_softmax_xent(Cg *c, Graph *g, const Node *n)
{
    Type logits = ir_value_type(g, n->in[0]),
         targets = ir_value_type(g, n->in[1]);
    LLVMValueRef tp = cg_ptr(c, g, n->in[1]);
    cg_check_targets(c, tp, &targets, last(&logits));
    LLVMValueRef scale =
        LLVMBuildLoad2(c->b, c->f32, cg_ptr(c, g, n->in[2]), "scale");
    LLVMValueRef a[7] = {cg_ptr(c, g, n->in[0]),
                         tp,
                         scale,
                         cg_ptr(c, g, n->out[0]),
                         cg_ptr(c, g, n->out[1]),
                         cg_i64(c, ir_type_numel(&targets)),
                         cg_i64(c, last(&logits))};
    cg_check_status(c, cg_rt_call(c, CG_RT_SOFTMAX_XENT, a, 7));
}
