/* grad_engine.c — reverse-mode differentiation of one graph.
 *
 * The engine knows nothing about particular ops: it finds which values
 * depend on the sources (the trainable params, or a scan body's arguments
 * that carry gradients: ad_activity), then walks the forward nodes from
 * the last to the first.  A node is differentiated when one of its results
 * has received a gradient and one of its operands is active; its rule
 * (grad_rules[op]) returns one gradient per operand, which is added to the
 * operand's contributions.  So only the gradients the sources need are
 * built, and nothing is built for a value the seeds do not reach.
 *
 * Contributions are summed when the gradient is read (ad_gradient), which
 * happens once every consumer has contributed, since the walk is in
 * reverse definition order.  Slices contribute pieces rather than padded
 * tensors: the pieces of one value along one axis (the i, f, g, o of an
 * LSTM gate, the q, k, v of attention) become one concat with zero
 * filling in the gaps, which is what split's gradient is in PyTorch; only
 * pieces that overlap or are sliced along several axes are padded one by
 * one. */
#include "passes/grad.h"

#include <stdlib.h>
#include <string.h>

static bool op_is_differentiable(Op op)
{
    return !(ir_op_info[op].flags & (OPF_NODIFF | OPF_LEAF));
}

bool *ad_activity(Graph *g, const bool *source)
{
    bool *active = arena_alloc(g->arena, sizeof(bool) * (size_t)g->values.len);
    for (int32_t i = 0; i < g->nodes.len; i++) {
        const Node *n = &g->nodes.data[i];
        bool any = false;
        for (int32_t k = 0; k < n->n_in && op_is_differentiable(n->op); k++)
            any |= active[n->in[k].id];
        for (int32_t k = 0; k < n->n_out; k++) {
            Value v = n->out[k];
            bool f32 = g->values.data[v.id].type.dtype == DT_F32;
            active[v.id] = f32 && (source[v.id] || any);
        }
    }
    return active;
}

Ad *ad_new(Module *m, Graph *g, const bool *source)
{
    Ad *ad = arena_alloc(m->arena, sizeof *ad);
    ad->m = m;
    ad->g = g;
    ad->n_fwd = g->nodes.len;
    ad->n_vals = g->values.len;
    ad->active = ad_activity(g, source);
    ad->adj = arena_alloc(m->arena, sizeof *ad->adj * (size_t)ad->n_vals);
    return ad;
}

static void check_value(Ad *ad, Value v, const char *what)
{
    if (v.id == 0 || (int32_t)v.id >= ad->n_vals)
        ir_internal_error("autodiff",
                          "graph %s: %s of value %u, not a "
                          "forward value",
                          ad->g->name, what, v.id);
}

void ad_contribute(Ad *ad, Value v, Value grad)
{
    check_value(ad, v, "gradient");
    Type tv = gb_type(ad, v), tg = gb_type(ad, grad);
    if (!ir_type_eq(&tv, &tg)) {
        char a[96], b[96];
        ir_internal_error("autodiff",
                          "graph %s: gradient %s for a value of "
                          "type %s (op %s)",
                          ad->g->name, ir_type_str(&tg, a, sizeof a),
                          ir_type_str(&tv, b, sizeof b),
                          ir_op_info[ir_def(ad->g, v)->op].name);
    }
    vec_push(ad->m->arena, &ad->adj[v.id], ((Contrib){.g = grad}));
}

void ad_contribute_slice(Ad *ad, Value v, Value grad, const Attrs *slice)
{
    check_value(ad, v, "slice gradient");
    Type t = gb_type(ad, v);
    bool whole = true;
    for (int i = 0; i < t.rank; i++)
        whole &= slice->start[i] == 0 && slice->stop[i] == t.dims[i];
    if (whole) {
        ad_contribute(ad, v, gb_reshape(ad, grad, t));
        return;
    }
    vec_push(ad->m->arena, &ad->adj[v.id],
             ((Contrib){.g = grad, .slice = true, .attr = *slice}));
}

/* ---- assembling slice pieces -------------------------------------------- */

/* The one axis a piece does not cover whole, or -1 if it is cut along
 * several. */
static int cut_axis(const Type *t, const Attrs *a)
{
    int axis = -1;
    for (int i = 0; i < t->rank; i++) {
        if (a->start[i] == 0 && a->stop[i] == t->dims[i])
            continue;
        if (axis >= 0)
            return -1;
        axis = i;
    }
    return axis;
}

/* t with dims[axis] = size. */
static Type with_dim(Type t, int axis, int64_t size)
{
    t.dims[axis] = size;
    return t;
}

/* A piece padded with zeros to the whole of t, one cut axis at a time. */
static Value pad_piece(Ad *ad, const Contrib *c, Type t)
{
    Value g = c->g;
    for (int i = 0; i < t.rank; i++) {
        Type cur = gb_type(ad, g);
        int64_t lo = c->attr.start[i], hi = c->attr.stop[i];
        if (lo == 0 && hi == t.dims[i])
            continue;
        Value parts[3];
        int n = 0;
        if (lo > 0)
            parts[n++] = gb_zeros(ad, with_dim(cur, i, lo));
        parts[n++] = g;
        if (hi < t.dims[i])
            parts[n++] = gb_zeros(ad, with_dim(cur, i, t.dims[i] - hi));
        g = gb_concat(ad, parts, n, i);
    }
    return g;
}

static int by_start(const void *pa, const void *pb)
{
    const Contrib *a = *(const Contrib *const *)pa,
                  *b = *(const Contrib *const *)pb;
    int axis = a->attr.axis; /* cut axis, stored by join_pieces */
    return a->attr.start[axis] < b->attr.start[axis]   ? -1
           : a->attr.start[axis] > b->attr.start[axis] ? 1
                                                       : 0;
}

/* Pieces cut along `axis` that do not overlap, sorted, joined by one
 * concat with zero blocks in the gaps. */
static Value concat_pieces(Ad *ad, Contrib **ps, int n, int axis, Type t)
{
    Value *parts =
        arena_alloc(ad->m->arena, sizeof *parts * (size_t)(2 * n + 1));
    int k = 0;
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        int64_t lo = ps[i]->attr.start[axis];
        if (lo > at)
            parts[k++] = gb_zeros(ad, with_dim(t, axis, lo - at));
        parts[k++] = ps[i]->g;
        at = ps[i]->attr.stop[axis];
    }
    if (at < t.dims[axis])
        parts[k++] = gb_zeros(ad, with_dim(t, axis, t.dims[axis] - at));
    return gb_concat(ad, parts, k, axis);
}

/* Sum of the slice pieces of a value of type t.  Pieces cut along one
 * common axis are sorted and dealt into layers of non-overlapping pieces,
 * one concat per layer; any other piece is padded on its own. */
static Value join_pieces(Ad *ad, Contrib *cs, int n, Type t)
{
    Contrib **ps = arena_alloc(ad->m->arena, sizeof *ps * (size_t)n);
    int axis = -1, m = 0;
    Value sum = IR_NONE;
    for (int i = 0; i < n; i++) {
        int a = cut_axis(&t, &cs[i].attr);
        if (a >= 0 && (axis < 0 || a == axis)) {
            axis = a;
            cs[i].attr.axis = a;
            ps[m++] = &cs[i];
        } else {
            Value p = pad_piece(ad, &cs[i], t);
            sum = sum.id ? gb_add(ad, sum, p) : p;
        }
    }
    qsort(ps, (size_t)m, sizeof *ps, by_start);
    bool *taken = arena_alloc(ad->m->arena, sizeof *taken * (size_t)(m + 1));
    for (int done = 0; done < m;) {
        Contrib **layer = arena_alloc(ad->m->arena, sizeof *layer * (size_t)m);
        int k = 0;
        int64_t at = 0;
        for (int i = 0; i < m; i++)
            if (!taken[i] && ps[i]->attr.start[axis] >= at) {
                taken[i] = true;
                layer[k++] = ps[i];
                at = ps[i]->attr.stop[axis];
            }
        done += k;
        Value p = concat_pieces(ad, layer, k, axis, t);
        sum = sum.id ? gb_add(ad, sum, p) : p;
    }
    return sum;
}

Value ad_gradient(Ad *ad, Value v)
{
    check_value(ad, v, "the gradient");
    ContribList *list = &ad->adj[v.id];
    if (list->len == 0)
        return IR_NONE;
    if (list->len == 1 && !list->data[0].slice)
        return list->data[0].g;
    Type t = gb_type(ad, v);
    Value sum = IR_NONE;
    Contrib *pieces =
        arena_alloc(ad->m->arena, sizeof *pieces * (size_t)list->len);
    int n_pieces = 0;
    for (int32_t i = 0; i < list->len; i++) {
        if (list->data[i].slice)
            pieces[n_pieces++] = list->data[i];
        else
            sum = sum.id ? gb_add(ad, sum, list->data[i].g) : list->data[i].g;
    }
    if (n_pieces) {
        Value p = join_pieces(ad, pieces, n_pieces, t);
        sum = sum.id ? gb_add(ad, sum, p) : p;
    }
    list->len = 0;
    vec_push(ad->m->arena, list, ((Contrib){.g = sum}));
    return sum;
}

/* ---- the backward sweep -------------------------------------------------- */

/* Differentiates node i if a result has a gradient and an operand is
 * active. */
static void backprop_node(Ad *ad, int32_t i)
{
    Node n = ad->g->nodes.data[i];
    if (!op_is_differentiable(n.op))
        return;
    Arena *a = ad->m->arena;
    Value *gout = arena_alloc(a, sizeof *gout * (size_t)n.n_out);
    bool *need = arena_alloc(a, sizeof *need * (size_t)(n.n_in + 1));
    Value *gin = arena_alloc(a, sizeof *gin * (size_t)(n.n_in + 1));
    bool any_out = false, any_in = false;
    for (int32_t k = 0; k < n.n_out; k++) {
        if (ad->active[n.out[k].id])
            gout[k] = ad_gradient(ad, n.out[k]);
        any_out |= gout[k].id != 0;
    }
    for (int32_t k = 0; k < n.n_in; k++) {
        need[k] = ad->active[n.in[k].id];
        any_in |= need[k];
    }
    if (!any_out || !any_in)
        return;
    GradCall call = {
        .n = n, .index = i, .gout = gout, .need = need, .gin = gin};
    grad_rules[n.op](ad, &call);
    for (int32_t k = 0; k < n.n_in; k++)
        if (need[k] && gin[k].id)
            ad_contribute(ad, n.in[k], gin[k]);
}

void ad_backprop(Ad *ad)
{
    for (int32_t i = ad->n_fwd - 1; i >= 0; i--)
        backprop_node(ad, i);
}
