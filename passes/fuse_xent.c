/* fuse_xent.c — softmax cross entropy and its gradient in one node.
 *
 * Autodiff differentiates loss = cross_entropy(logits, targets) into
 * (softmax(logits) - one_hot(targets)) * S, S the scalar scale (the loss's
 * gradient over the number of positions).  Both halves read the same
 * logits row by row, so one softmax_xent node computes them together
 * (tests/passes/fuse-xent_basic.ir):
 *
 *     %2 = cross_entropy %0, %1 : f32[]
 *     %3 = softmax %0 axis=1 : f32[4, 5]        %2 = const 0.25 : f32[]
 *     %4 = one_hot %1 : f32[4, 5]         =>    %3, %4 = softmax_xent %0, %1, %2
 *     %5 = const 0.25 : f32[]                          : f32[], f32[4, 5]
 *     %6 = sub %3, %4 : f32[4, 5]               return %3, %4
 *     %7 = mul %6, %5 : f32[4, 5]
 *     return %2, %7
 *
 * Only the exact pattern is fused: the same logits value under
 * cross_entropy and a softmax over the last axis, one_hot of the same
 * targets, their difference (in that order) used once, by a mul with a
 * scalar f32 on either side (or a constant of any broadcasting shape,
 * which becomes a scalar const).  The node goes where the cross entropy
 * was when its scale is known there (a constant, or a value computed
 * before), so the loss may be combined with other terms (a regulariser)
 * before the gradient is computed; otherwise after both.  The main graph and scan bodies are
 * rewritten; fused bodies are left alone. */
#include "passes/pass.h"

typedef struct Match {
    int32_t ce, mul, anchor; /* node indices */
    Value scale;             /* IR_NONE: make a const of scale_value */
    double scale_value;
} Match;

/* The node defining v if it is op, else NULL. */
static const Node *def_op(Graph *g, Value v, Op op)
{
    const Node *d = ir_def(g, v);
    return d->op == op ? d : NULL;
}

static bool is_scalar_f32(const Type *t)
{
    return t->dtype == DT_F32 && t->rank == 0;
}

/* Whether every reader of v comes after node `pos`. */
static bool used_after(const PassUsers *u, Value v, int32_t pos)
{
    int32_t s = u->start[v.id], e = u->start[v.id + 1];
    return s == e || u->node[s] > pos;
}

/* The gradient of cross_entropy node ce, if it has the fused form. */
static bool match_at(Graph *g, const PassUsers *u, const int32_t *uses,
                     int32_t ce, Match *mt)
{
    const Node *c = &g->nodes.data[ce];
    Value logits = c->in[0], targets = c->in[1];
    Type lt = ir_value_type(g, logits);
    /* softmax(logits, last axis) -> sub(softmax, one_hot) -> mul(., S) */
    for (int32_t i = u->start[logits.id]; i < u->start[logits.id + 1]; i++) {
        const Node *sm = &g->nodes.data[u->node[i]];
        if (sm->op != OP_SOFTMAX || sm->attr.axis != lt.rank - 1)
            continue;
        Value p = sm->out[0];
        for (int32_t j = u->start[p.id]; j < u->start[p.id + 1]; j++) {
            const Node *sub = &g->nodes.data[u->node[j]];
            if (sub->op != OP_SUB || sub->in[0].id != p.id)
                continue;
            const Node *oh = def_op(g, sub->in[1], OP_ONE_HOT);
            if (!oh || oh->in[0].id != targets.id ||
                !ir_type_eq(&oh->attr.type, &lt))
                continue;
            Value d = sub->out[0];
            if (uses[d.id] != 1 || u->start[d.id + 1] - u->start[d.id] != 1)
                continue;
            int32_t mi = u->node[u->start[d.id]];
            const Node *mul = &g->nodes.data[mi];
            if (mul->op != OP_MUL || mul->in[0].id == mul->in[1].id)
                continue;
            Value s = mul->in[0].id == d.id ? mul->in[1] : mul->in[0];
            Type st = ir_value_type(g, s), mt_type = ir_value_type(g, mul->out[0]);
            if (!ir_type_eq(&mt_type, &lt))
                continue;
            const Node *sc = ir_def(g, s);
            *mt = (Match){.ce = ce, .mul = mi};
            if (sc->op == OP_CONST && st.dtype == DT_F32)
                mt->scale_value = sc->attr.value; /* a new const, anywhere */
            else if (is_scalar_f32(&st))
                mt->scale = s;
            else
                continue;
            /* At the cross entropy when the scale is known there (the loss
             * may then be read before the gradient, as in a loss with a
             * regulariser added); else after both, when nothing reads the
             * loss before. */
            bool scale_early = !mt->scale.id || ir_value(g, s)->def < ce;
            mt->anchor = scale_early && ce < mi ? ce : ce > mi ? ce : mi;
            if (mt->scale.id && ir_value(g, s)->def > mt->anchor)
                continue;
            if (!used_after(u, c->out[0], mt->anchor) ||
                !used_after(u, mul->out[0], mt->anchor))
                continue;
            return true;
        }
    }
    return false;
}

static bool fuse_graph(Module *m, Graph *g)
{
    PassUsers u = pass_users(g);
    int32_t *uses = pass_use_counts(g);
    int32_t n_old = g->nodes.len;
    VEC(int32_t) after = {0};
    VEC(Value) from = {0}, to = {0};
    for (int32_t k = 0; k < n_old; k++) {
        Match mt;
        if (g->nodes.data[k].op != OP_CROSS_ENTROPY ||
            !match_at(g, &u, uses, k, &mt))
            continue;
        Value scale = mt.scale;
        if (!scale.id) {
            Type st = ir_type_scalar(DT_F32);
            Attrs a = {.value = mt.scale_value, .type = st};
            int32_t id = ir_add_typed(g, OP_CONST, NULL, 0, &a,
                                      g->nodes.data[mt.mul].loc, &st, 1);
            scale = g->nodes.data[id].out[0];
            vec_push(m->arena, &after, mt.anchor);
        }
        const Node *c = &g->nodes.data[k];
        Value in[3] = {c->in[0], c->in[1], scale};
        Type out[2] = {ir_value_type(g, c->out[0]),
                       ir_value_type(g, c->in[0])};
        int32_t id = ir_add_typed(g, OP_SOFTMAX_XENT, in, 3, NULL, c->loc,
                                  out, 2);
        vec_push(m->arena, &after, mt.anchor);
        Value olds[2] = {g->nodes.data[k].out[0],
                         g->nodes.data[mt.mul].out[0]};
        for (int i = 0; i < 2; i++) {
            Value nv = g->nodes.data[id].out[i];
            ir_value(g, nv)->name = ir_value(g, olds[i])->name;
            vec_push(m->arena, &from, olds[i]);
            vec_push(m->arena, &to, nv);
        }
    }
    if (from.len == 0)
        return false;
    pass_place_new_nodes(g, n_old, after.data);
    for (int32_t i = 0; i < from.len; i++)
        pass_replace_uses(g, from.data[i], to.data[i]);
    return true;
}

bool pass_fuse_xent(Module *m, PassCtx *ctx)
{
    return pass_fuse_graphs(m, ctx, fuse_graph);
}
