/* shape_nn.c — the type rules of the neural-network ops: softmax and
 * normalisation, embedding lookup, the causal mask, attention, dropout,
 * the backward helpers (scatter_add, one_hot), the losses with their scalar
 * results and the scan that carries a recurrence through a body graph.
 * Each rule has the Ctx signature of shape_rules.h and returns the number
 * of results, or 0 after writing the message users read; shape.c holds the
 * elementwise, matrix, shape and reduction rules, the shared helpers and the
 * table ir_shape_rules that points at every rule. */
#include "shape_rules.h"

#include <string.h>

/* ---- normalisation ----------------------------------------------------- */

/* SOFTMAX, LOG_SOFTMAX along attr.axis.  PyTorch also accepts a 0-d
 * tensor (softmax of one element is 1); nnc requires rank 1 or more. */
int sh_infer_softmax(Ctx *c)
{
    if (!sh_need_f32(c) || !sh_need_rank(c, &c->in[0], 1) ||
        !sh_norm_axis(c, &c->attr->axis, c->in[0].rank))
        return 0;
    return sh_one(c, c->in[0]);
}

/* LAYERNORM(x, gamma, beta) and RMSNORM(x, gamma) over the last axis:
 * gamma and beta are vectors of its size.  attr.value is eps, which
 * PyTorch does not restrict, so neither do we. */
int sh_infer_norm(Ctx *c)
{
    const Type *x = &c->in[0];
    if (!sh_need_f32(c) || !sh_need_rank(c, x, 1))
        return 0;
    Type want = ir_type_make(DT_F32, 1, &x->dims[x->rank - 1]);
    for (int i = 1; i < c->n_in; i++)
        if (!ir_type_eq(&c->in[i], &want))
            return sh_fail_ops(c,
                               "%s is %s but must be %s (the size of the last "
                               "axis of x)",
                               i == 1 ? "gamma" : "beta", sh_ts(&c->in[i]).s,
                               sh_ts(&want).s);
    return sh_one(c, *x);
}

/* ---- lookup, attention, regularisation --------------------------------- */

/* table f32[V, ...] indexed by ids i32[...]: ids.shape + table.shape[1:]. */
int sh_infer_gather(Ctx *c)
{
    const Type *table = &c->in[0], *ids = &c->in[1];
    if (table->dtype != DT_F32)
        return sh_fail_ops(c, "the table must be f32, not i32");
    if (table->rank < 1)
        return sh_fail_ops(c, "the table needs rank 1 or more");
    if (ids->dtype != DT_I32)
        return sh_fail_ops(c, "the ids must be i32, not f32");
    if (!sh_rank_fits(c, ids->rank + table->rank - 1))
        return 0;
    Type t = *ids;
    t.dtype = DT_F32;
    for (int i = 1; i < table->rank; i++)
        sh_append_dim(&t, table->dims[i]);
    return sh_one(c, t);
}

/* Sets column > row of the last two axes (any sizes) to -inf. */
int sh_infer_causal_mask(Ctx *c)
{
    if (!sh_need_f32(c) || !sh_need_rank(c, &c->in[0], 2))
        return 0;
    return sh_one(c, c->in[0]);
}

/* q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv] -> [..., Tq, dv], the
 * leading axes broadcast (torch scaled_dot_product_attention). */
int sh_infer_attention(Ctx *c)
{
    static const char *const names[3] = {"q", "k", "v"};
    const Type *q = &c->in[0], *k = &c->in[1], *v = &c->in[2];
    if (!sh_need_f32(c))
        return 0;
    for (int i = 0; i < 3; i++)
        if (c->in[i].rank < 2)
            return sh_fail_ops(c,
                               "q, k and v need rank 2 or more, but %s has "
                               "rank %d",
                               names[i], (int)c->in[i].rank);
    int64_t dq = q->dims[q->rank - 1], dk = k->dims[k->rank - 1];
    int64_t tk = k->dims[k->rank - 2], tv = v->dims[v->rank - 2];
    if (dq != dk)
        return sh_fail_ops(c,
                           "q and k have different feature sizes (%lld and "
                           "%lld)",
                           (long long)dq, (long long)dk);
    if (tk != tv)
        return sh_fail_ops(c, "k and v have different lengths (%lld and %lld)",
                           (long long)tk, (long long)tv);
    Type bq = sh_leading(q, 2), bk = sh_leading(k, 2), bv = sh_leading(v, 2), t;
    int64_t clash[2];
    if (!sh_broadcast2(&bq, &bk, &t, clash) ||
        !sh_broadcast2(&t, &bv, &t, clash))
        return sh_fail_ops(c,
                           "batch dimensions cannot be broadcast (%lld and "
                           "%lld differ)",
                           (long long)clash[0], (long long)clash[1]);
    sh_append_dim(&t, q->dims[q->rank - 2]);
    sh_append_dim(&t, v->dims[v->rank - 1]);
    return sh_one(c, t);
}

/* attr.value is p.  As in PyTorch, 0 <= p <= 1 (p = 1 zeroes everything);
 * anything else, NaN included, is an error. */
int sh_infer_dropout(Ctx *c)
{
    double p = c->attr->value;
    if (!sh_need_f32(c))
        return 0;
    if (!(p >= 0 && p <= 1))
        return sh_fail_ops(c, "probability %g is outside [0, 1]", p);
    return sh_one(c, c->in[0]);
}

/* ---- backward helpers ---------------------------------------------------
 * Built by autodiff only; their result type is attr.type, checked here
 * against the operands as reshape's target is. */

/* The result type a backward helper takes from attr.type: made f32, its
 * unused dims zeroed (equal nodes get equal Attrs for CSE) and stored back. */
static int attr_result(Ctx *c, Type t)
{
    t.dtype = DT_F32;
    for (int i = t.rank; i < IR_MAX_RANK; i++)
        t.dims[i] = 0;
    c->attr->type = t;
    return sh_one(c, t);
}

/* scatter_add(src, ids): src f32[ids.shape + R] into a table attr.type =
 * f32[V, R] (V >= 1 rows). */
int sh_infer_scatter_add(Ctx *c)
{
    const Type *src = &c->in[0], *ids = &c->in[1];
    Type t = c->attr->type;
    if (src->dtype != DT_F32 || ids->dtype != DT_I32)
        return sh_fail_ops(c, "needs f32 rows and i32 ids");
    if (t.rank < 1 || t.rank > IR_MAX_RANK ||
        ids->rank + t.rank - 1 != src->rank)
        return sh_fail_ops(c, "the table type does not fit the operands");
    for (int i = 0; i < src->rank; i++) {
        int64_t want = i < ids->rank ? ids->dims[i] : t.dims[i - ids->rank + 1];
        if (src->dims[i] != want)
            return sh_fail_ops(c, "the rows do not fit the ids and the table");
    }
    return attr_result(c, t);
}

/* one_hot(ids): ids i32[...] to attr.type = f32[ids.shape + C]. */
int sh_infer_one_hot(Ctx *c)
{
    const Type *ids = &c->in[0];
    Type t = c->attr->type;
    if (ids->dtype != DT_I32)
        return sh_fail_ops(c, "the ids must be i32, not f32");
    if (t.rank != ids->rank + 1 || t.rank > IR_MAX_RANK)
        return sh_fail_ops(c,
                           "the result must have one axis more than the ids");
    for (int i = 0; i < ids->rank; i++)
        if (t.dims[i] != ids->dims[i])
            return sh_fail_ops(c, "the result's leading axes must be the ids'");
    return attr_result(c, t);
}

/* ---- losses: scalar results -------------------------------------------- */

/* logits f32[..., C] and class indices i32[...] (the logits' shape without
 * the class axis); the mean over all positions. */
int sh_infer_cross_entropy(Ctx *c)
{
    const Type *logits = &c->in[0], *targets = &c->in[1];
    if (logits->dtype != DT_F32)
        return sh_fail_ops(c, "the logits must be f32, not i32");
    if (logits->rank < 1)
        return sh_fail_ops(c, "the logits need rank 1 or more (the last axis "
                              "holds the classes)");
    if (targets->dtype != DT_I32)
        return sh_fail_ops(c, "the targets must be i32 class indices, not f32");
    Type want = sh_leading(logits, 1);
    want.dtype = DT_I32;
    if (!ir_type_eq(targets, &want))
        return sh_fail_ops(c,
                           "the targets must be %s (the logits' shape without "
                           "the class axis)",
                           sh_ts(&want).s);
    return sh_one(c, ir_type_scalar(DT_F32));
}

/* MSE(a, b) and BCE_WITH_LOGITS(z, t): two f32 tensors of one shape.
 * PyTorch's mse_loss broadcasts with a warning that it is likely a
 * mistake; here different shapes are an error. */
int sh_infer_pair_loss(Ctx *c)
{
    if (c->op == OP_BCE_WITH_LOGITS && c->in[0].dtype == DT_F32 &&
        c->in[1].dtype != DT_F32)
        return sh_fail_ops(c, "the targets must be f32, not i32");
    if (!sh_need_f32(c))
        return 0;
    if (!ir_type_eq(&c->in[0], &c->in[1]))
        return sh_fail_ops(c,
                           "the shapes must be equal (%s does not broadcast)",
                           sh_op_word(c->op));
    return sh_one(c, ir_type_scalar(DT_F32));
}

/* ---- recurrence -------------------------------------------------------- *
 * SCAN's operands: attr.n_carry initial carries, attr.n_over tensors
 * scanned along axis 0, then the captured values the body reads.  The body
 * m->graphs.data[attr.graph] takes one argument per operand (ARG nodes with
 * attr.index 0..n_args-1): each carry, each over tensor's slice (its type
 * without axis 0), each capture.  It returns n_carry new carries (of the
 * initial carries' types) then k per-step outputs; the scan returns the
 * final carries, then each output stacked along a new axis 0 of length T.
 * Messages number carries, over tensors and outputs from 1, as users count
 * the values they wrote. */

/* The type of the body's argument i: the result of its ARG node. */
const Type *sh_body_arg(const Graph *g, int i)
{
    for (int n = 0; n < g->nodes.len; n++) {
        const Node *nd = &g->nodes.data[n];
        if (nd->op == OP_ARG && nd->attr.index == i && nd->n_out == 1 &&
            (int32_t)nd->out[0].id < g->values.len)
            return &g->values.data[nd->out[0].id].type;
    }
    return NULL;
}

/* The over tensors: rank 1 or more, one length T, returned in *steps. */
static bool scan_steps(Ctx *c, int64_t *steps)
{
    int first = c->attr->n_carry;
    for (int j = 0; j < c->attr->n_over; j++) {
        const Type *x = &c->in[first + j];
        if (x->rank < 1)
            return sh_fail(c,
                           "scan over tensor %d: %s has no axis to scan along",
                           j + 1, sh_ts(x).s);
        if (j == 0)
            *steps = x->dims[0];
        else if (x->dims[0] != *steps)
            return sh_fail(c,
                           "scan over tensors 1 and %d have different lengths "
                           "along axis 0 (%lld and %lld)",
                           j + 1, (long long)*steps, (long long)x->dims[0]);
    }
    return true;
}

/* Every body argument has the type of what the scan passes for it. */
static bool scan_args(Ctx *c, const Graph *body)
{
    int nc = c->attr->n_carry, no = c->attr->n_over, n_args = 0;
    if (body->n_args != c->n_in)
        return sh_fail(
            c,
            "scan: the step function takes %d arguments but is "
            "given %d (carries: %d, slices: %d, captured values: %d)",
            (int)body->n_args, c->n_in, nc, no, c->n_in - nc - no);
    for (int n = 0; n < body->nodes.len; n++)
        n_args += body->nodes.data[n].op == OP_ARG;
    for (int i = 0; i < c->n_in; i++) {
        const Type *arg = sh_body_arg(body, i);
        if (!arg || n_args != body->n_args)
            return sh_fail(c,
                           "scan: body graph %s does not define arguments "
                           "0..%d once each",
                           body->name, (int)body->n_args - 1);
        Type given =
            i >= nc && i < nc + no ? sh_without_first(&c->in[i]) : c->in[i];
        if (ir_type_eq(arg, &given))
            continue;
        if (i < nc)
            return sh_fail(c,
                           "scan carry %d: initial value is %s but the step "
                           "function takes %s",
                           i + 1, sh_ts(&given).s, sh_ts(arg).s);
        if (i < nc + no)
            return sh_fail(c,
                           "scan over tensor %d: its slice is %s but the step "
                           "function takes %s",
                           i - nc + 1, sh_ts(&given).s, sh_ts(arg).s);
        return sh_fail(c,
                       "scan captured value %d is %s but the step function "
                       "takes %s",
                       i - nc - no + 1, sh_ts(&given).s, sh_ts(arg).s);
    }
    return true;
}

/* The scan's results from the body's: carries checked, outputs stacked. */
static int scan_results(Ctx *c, const Graph *body, int64_t steps)
{
    int nc = c->attr->n_carry, n_res = body->results.len;
    if (n_res == 0)
        return sh_fail(c, "scan: the step function returns nothing");
    if (n_res < nc)
        return sh_fail(c,
                       "scan: the step function returns %d value%s but there "
                       "are %d carries",
                       n_res, n_res == 1 ? "" : "s", nc);
    if (n_res > c->max_out)
        return sh_fail(c, "scan has %d results, more than %d", n_res,
                       c->max_out);
    for (int i = 0; i < n_res; i++) {
        Value v = body->results.data[i];
        if (v.id == 0 || (int32_t)v.id >= body->values.len)
            return sh_fail(c, "scan: result %d of body graph %s is not a value",
                           i, body->name);
        const Type *r = &body->values.data[v.id].type;
        if (i < nc && !ir_type_eq(r, &c->in[i]))
            return sh_fail(c,
                           "scan carry %d: initial value is %s but the step "
                           "function returns %s",
                           i + 1, sh_ts(&c->in[i]).s, sh_ts(r).s);
        if (i >= nc && r->rank + 1 > IR_MAX_RANK)
            return sh_fail(c,
                           "scan output %d: %s stacked over the steps would "
                           "have rank %d, more than %d",
                           i - nc + 1, sh_ts(r).s, (int)r->rank + 1,
                           IR_MAX_RANK);
        c->out[i] = *r;
        if (i >= nc) {
            c->out[i].rank = 0;
            sh_append_dim(&c->out[i], steps);
            for (int j = 0; j < r->rank; j++)
                sh_append_dim(&c->out[i], r->dims[j]);
        }
    }
    return n_res;
}

int sh_infer_scan(Ctx *c)
{
    const Attrs *a = c->attr;
    int64_t steps = 0;
    if (!c->m || a->graph < 0 || a->graph >= c->m->graphs.len)
        return sh_fail(c, "scan: body graph %d does not exist", (int)a->graph);
    if (a->n_over < 1)
        return sh_fail(c, "scan needs at least one tensor to scan over");
    if (a->n_carry < 0 || a->n_carry > c->n_in - a->n_over)
        return sh_fail(c,
                       "scan has %d operands, too few for its carries (%d) "
                       "and scanned tensors (%d)",
                       c->n_in, (int)a->n_carry, (int)a->n_over);
    const Graph *body = c->m->graphs.data[a->graph];
    if (!scan_steps(c, &steps) || !scan_args(c, body))
        return 0;
    return scan_results(c, body, steps);
}
