/* shape_fused.c — the type rules of the fused ops (ops.def): the LSTM
 * cell and its gradient, attention's gradient, softmax cross entropy with
 * its gradient, and the two ops whose computation is a body graph (fused,
 * matmul_epilogue).  A body's contents (which ops it may hold) are the
 * verifier's business (verify.c); here only the types meet. */
#include "shape_rules.h"

/* z [..., 4H] and c [..., H]: the cell's result type (c's), or a failure. */
static bool lstm_types(Ctx *c, Type *cell)
{
    const Type *z = &c->in[0], *cc = &c->in[1];
    if (!sh_need_f32(c) || !sh_need_rank(c, z, 1))
        return false;
    int64_t four_h = z->dims[z->rank - 1];
    if (four_h % 4 != 0)
        return sh_fail_ops(c, "the gates' last axis (%lld) is not 4 * H",
                           (long long)four_h);
    *cell = *z;
    cell->dims[cell->rank - 1] = four_h / 4;
    if (!ir_type_eq(cc, cell))
        return sh_fail_ops(c, "the cell state must be %s, not %s",
                           sh_ts(cell).s, sh_ts(cc).s);
    return true;
}

/* (z, c) -> (h', c'), both of c's type. */
int sh_infer_lstm_cell(Ctx *c)
{
    Type cell;
    if (!lstm_types(c, &cell))
        return 0;
    c->out[0] = cell;
    c->out[1] = cell;
    return 2;
}

/* (z, c, dh', dc') -> (dz, dc). */
int sh_infer_lstm_cell_grad(Ctx *c)
{
    Type cell;
    if (!lstm_types(c, &cell))
        return 0;
    for (int i = 2; i < 4; i++)
        if (!ir_type_eq(&c->in[i], &cell))
            return sh_fail_ops(c, "gradient %d must be %s, not %s", i - 1,
                               sh_ts(&cell).s, sh_ts(&c->in[i]).s);
    c->out[0] = c->in[0];
    c->out[1] = cell;
    return 2;
}

bool ir_attention_batch_shared(const Type *q, const Type *k, const Type *v)
{
    if (q->rank != k->rank || q->rank != v->rank || q->rank < 2)
        return false;
    for (int i = 0; i < q->rank - 2; i++)
        if (q->dims[i] != k->dims[i] || q->dims[i] != v->dims[i])
            return false;
    return true;
}

/* (q, k, v, o, g) -> (dq, dk, dv): q, k and v share their leading axes
 * (autodiff uses the op only then), o and g are attention's result type. */
int sh_infer_attention_grad(Ctx *c)
{
    Type o;
    Ctx fwd = *c;
    fwd.n_in = 3;
    fwd.out = &o;
    fwd.max_out = 1;
    if (!sh_infer_attention(&fwd))
        return 0;
    if (!ir_attention_batch_shared(&c->in[0], &c->in[1], &c->in[2]))
        return sh_fail_ops(c, "q, k and v must share their batch axes");
    for (int i = 3; i < 5; i++)
        if (!ir_type_eq(&c->in[i], &o))
            return sh_fail_ops(c,
                               "operand %d must be %s (the attention's "
                               "result), not %s",
                               i + 1, sh_ts(&o).s, sh_ts(&c->in[i]).s);
    for (int i = 0; i < 3; i++)
        c->out[i] = c->in[i];
    return 3;
}

/* (logits, targets, scale f32[]) -> (loss f32[], dlogits of logits' type). */
int sh_infer_softmax_xent(Ctx *c)
{
    Type loss;
    Ctx ce = *c;
    ce.n_in = 2;
    ce.out = &loss;
    ce.max_out = 1;
    if (!sh_infer_cross_entropy(&ce))
        return 0;
    if (c->in[2].dtype != DT_F32 || c->in[2].rank != 0)
        return sh_fail_ops(c, "the gradient scale must be f32[], not %s",
                           sh_ts(&c->in[2]).s);
    c->out[0] = loss;
    c->out[1] = c->in[0];
    return 2;
}

/* The body graph named by attr.graph, or NULL after a message. */
static const Graph *body_of(Ctx *c)
{
    int32_t id = c->attr->graph;
    if (!c->m || id <= 0 || id >= c->m->graphs.len || !c->m->graphs.data[id])
        return sh_fail(c, "%s: body graph %d does not exist", sh_op_word(c->op),
                       (int)id),
               NULL;
    return c->m->graphs.data[id];
}

/* Argument i of the body has type *want. */
static bool body_arg_is(Ctx *c, const Graph *body, int i, const Type *want)
{
    const Type *arg = sh_body_arg(body, i);
    if (!arg)
        return sh_fail(c, "%s: body graph %s does not define argument %d",
                       sh_op_word(c->op), body->name, i);
    if (!ir_type_eq(arg, want))
        return sh_fail(c, "%s: argument %d of body graph %s is %s, not %s",
                       sh_op_word(c->op), i, body->name, sh_ts(arg).s,
                       sh_ts(want).s);
    return true;
}

/* The body's results become the op's; with `each` non-NULL every one of
 * them must have that type. */
static int body_results(Ctx *c, const Graph *body, const Type *each)
{
    int n = body->results.len;
    if (n == 0 || n > c->max_out)
        return sh_fail(c,
                       "%s: body graph %s returns %d values (1 to %d allowed)",
                       sh_op_word(c->op), body->name, n, c->max_out);
    for (int i = 0; i < n; i++) {
        Value v = body->results.data[i];
        if (v.id == 0 || (int32_t)v.id >= body->values.len)
            return sh_fail(c, "%s: result %d of body graph %s is not a value",
                           sh_op_word(c->op), i, body->name);
        c->out[i] = body->values.data[v.id].type;
        if (each && !ir_type_eq(&c->out[i], each))
            return sh_fail(c,
                           "%s: result %d of body graph %s is %s, not the "
                           "product's %s",
                           sh_op_word(c->op), i, body->name,
                           sh_ts(&c->out[i]).s, sh_ts(each).s);
    }
    return n;
}

/* Operand i is the body's argument i. */
int sh_infer_fused(Ctx *c)
{
    const Graph *body = body_of(c);
    if (!body)
        return 0;
    if (body->n_args != c->n_in)
        return sh_fail(c, "fused: body graph %s takes %d arguments, not %d",
                       body->name, (int)body->n_args, c->n_in);
    for (int i = 0; i < c->n_in; i++)
        if (!body_arg_is(c, body, i, &c->in[i]))
            return 0;
    return body_results(c, body, NULL);
}

/* (a, b, extras...): the body's argument 0 is a @ b, argument i >= 1 is
 * operand i + 1. */
int sh_infer_matmul_epilogue(Ctx *c)
{
    if (c->n_in < 2)
        return sh_fail(c, "matmul_epilogue needs at least 2 operands, not %d",
                       c->n_in);
    Type product;
    Ctx mm = *c;
    mm.op = OP_MATMUL;
    mm.n_in = 2;
    mm.out = &product;
    mm.max_out = 1;
    if (!sh_infer_matmul(&mm))
        return 0;
    const Graph *body = body_of(c);
    if (!body)
        return 0;
    if (body->n_args != c->n_in - 1)
        return sh_fail(c,
                       "matmul_epilogue: body graph %s takes %d arguments, "
                       "not %d",
                       body->name, (int)body->n_args, c->n_in - 1);
    if (!body_arg_is(c, body, 0, &product))
        return 0;
    for (int i = 2; i < c->n_in; i++)
        if (!body_arg_is(c, body, i - 1, &c->in[i]))
            return 0;
    return body_results(c, body, &product);
}
