/* grad_scan.c — the gradient of scan: backpropagation through time as a
 * second scan that runs the other way.
 *
 * The forward scan is given one more per-step output per carry: the carry
 * entering each step, stacked ("stacking the carries").  The backward scan
 * runs over the steps in reverse.  Its body, built here, first recomputes
 * the forward step from (carries_t, slices_t, captures) by copying the
 * forward body's nodes, then differentiates that copy with the same engine
 * (nested scans recurse through this rule).  It carries the gradients of
 * the carries and, as extra carries that start at zero, the running sums
 * of the captures' gradients (params the body reads, like an LSTM's
 * weights); the gradient of every scanned tensor comes out as a per-step
 * output, stacked, which is how params stacked along the scanned axis
 * (gpt.nn's per-layer weights) get theirs.
 *
 *   forward  %h, %hs, %hin = scan @step(carries=1, over=1) %h0, %x, %W
 *   backward %dh0, %dW, %dx = scan @step.bwd(carries=2, over=3, reverse=true)
 *                               %dh, %zeroW, %hin, %x, %dhs, %W
 *
 * The values of the recomputed step that the gradient nodes read are then
 * saved by the forward scan instead (grad_save.c), so the matrix products
 * of a step run once forward and once backward; docs/autodiff.md has the
 * trade-off. */
#include "passes/grad.h"

#include <string.h>

/* ---- graphs ------------------------------------------------------------- */

static bool graph_name_taken(const Module *m, const char *name)
{
    for (int32_t i = 0; i < m->graphs.len; i++)
        if (strcmp(m->graphs.data[i]->name, name) == 0)
            return true;
    return false;
}

const char *grad_unique_name(Module *m, const char *base)
{
    const char *name = base;
    for (int k = 2; graph_name_taken(m, name); k++)
        name = arena_printf(m->arena, "%s.%d", base, k);
    return name;
}

Graph *grad_clone_graph(Module *m, const Graph *g, const char *name)
{
    Graph *c = ir_graph_new(m, name);
    Arena *a = m->arena;
    c->n_args = g->n_args;
    c->values.len = 0;
    for (int32_t i = 0; i < g->values.len; i++)
        vec_push(a, &c->values, g->values.data[i]);
    for (int32_t i = 0; i < g->nodes.len; i++) {
        Node n = g->nodes.data[i];
        n.in = arena_alloc(a, sizeof(Value) * (size_t)(n.n_in + 1));
        n.out = arena_alloc(a, sizeof(Value) * (size_t)(n.n_out + 1));
        memcpy(n.in, g->nodes.data[i].in, sizeof(Value) * (size_t)n.n_in);
        memcpy(n.out, g->nodes.data[i].out, sizeof(Value) * (size_t)n.n_out);
        vec_push(a, &c->nodes, n);
    }
    for (int32_t i = 0; i < g->results.len; i++)
        ir_add_result(m, c, g->results.data[i], g->result_names.data[i]);
    return c;
}

/* The value of body argument i. */
static Value arg_value(const Graph *g, int32_t i)
{
    for (int32_t k = 0; k < g->nodes.len; k++)
        if (g->nodes.data[k].op == OP_ARG && g->nodes.data[k].attr.index == i)
            return g->nodes.data[k].out[0];
    ir_internal_error("autodiff", "graph %s has no arg %d", g->name, (int)i);
}

/* ---- stacking the carries ------------------------------------------------ */

/* Adds to scan node `index` of ad->g one stacked output per carry (the
 * carry entering each step) and per saved value (saved[0..n_saved-1],
 * values of its body that the backward reads rather than recomputes).
 * Its body returns them as extra per-step outputs; a body that another
 * scan also runs is copied first (values keep their ids).  Writes the new
 * results to stacked[], carries first. */
static void stack_carries(Ad *ad, int32_t index, const Value *saved,
                          int n_saved, Value *stacked)
{
    Module *m = ad->m;
    Graph *g = ad->g;
    Node *s = &g->nodes.data[index];
    int nc = s->attr.n_carry;
    Graph *body = m->graphs.data[s->attr.graph];
    int n_new = nc + n_saved;
    if (n_new == 0)
        return;
    for (int i = 0; i < n_new; i++)
        if (ir_value_type(body, i < nc ? arg_value(body, i) : saved[i - nc])
                .rank == IR_MAX_RANK)
            ir_internal_error("autodiff",
                              "graph %s: a carry of rank %d cannot be stacked "
                              "over the steps for the backward pass",
                              g->name, IR_MAX_RANK);
    if (pass_scans_running(m, body->id) > 1)
        body = grad_clone_graph(
            m, body,
            grad_unique_name(m, arena_printf(m->arena, "%s.fwd", body->name)));
    s = &g->nodes.data[index];
    s->attr.graph = body->id;
    int64_t steps = ir_value_type(g, s->in[nc]).dims[0];
    Value *out =
        arena_alloc(m->arena, sizeof(Value) * (size_t)(s->n_out + n_new));
    memcpy(out, s->out, sizeof(Value) * (size_t)s->n_out);
    for (int i = 0; i < n_new; i++) {
        Value v = i < nc ? arg_value(body, i) : saved[i - nc];
        ir_add_result(m, body, v, NULL);
        Type t = ir_value_type(body, v),
             st = {.dtype = t.dtype, .rank = t.rank + 1};
        st.dims[0] = steps;
        memcpy(st.dims + 1, t.dims, sizeof(int64_t) * (size_t)t.rank);
        out[s->n_out + i] = (Value){(uint32_t)g->values.len};
        stacked[i] = out[s->n_out + i];
        vec_push(
            m->arena, &g->values,
            ((ValueInfo){.type = st, .def = index, .result = s->n_out + i}));
    }
    s->out = out;
    s->n_out += n_new;
}

/* ---- which arguments carry gradients ------------------------------------- */

/* active[i] for every operand of the scan: the operand's own activity, and
 * for a carry also whether the body makes it depend on an active argument
 * (a fixed point: h0 is a constant, but h after one step is not). */
static bool *scan_arg_activity(Ad *ad, const GradCall *c, const Graph *body)
{
    int nc = c->n.attr.n_carry, n_in = c->n.n_in;
    bool *arg = arena_alloc(ad->m->arena, sizeof(bool) * (size_t)(n_in + 1));
    memcpy(arg, c->need, sizeof(bool) * (size_t)n_in);
    for (bool changed = true; changed;) {
        bool *src =
            arena_alloc(ad->m->arena, sizeof(bool) * (size_t)body->values.len);
        for (int i = 0; i < n_in; i++)
            src[arg_value(body, i).id] = arg[i];
        bool *act = ad_activity((Graph *)body, src);
        changed = false;
        for (int i = 0; i < nc; i++)
            if (!arg[i] && act[body->results.data[i].id])
                arg[i] = changed = true;
    }
    return arg;
}

/* ---- the backward body ---------------------------------------------------- */

/* Where a stacked factor of a deferred weight gradient is found after the
 * backward scan: a forward operand that is already stacked in time order
 * (an over tensor, the stacked carries), or a per-step output. */
typedef struct FactorSource {
    enum { FROM_OVER, FROM_CARRY, FROM_RESULT } kind;
    int index;
} FactorSource;

/* The plan shared by the backward body and the backward scan. */
typedef struct ScanPlan {
    int nc, no, nk, ny;      /* carries, over tensors, captures, step outputs */
    bool *arg_active;        /* per forward operand */
    bool *carry_grad;        /* [nc]: carries whose gradient is carried */
    bool *cap_grad;          /* [nk]: captures whose gradient is summed */
    bool *cap_deferred;      /* [nk]: ... as one product after the scan
                           (grad_defer.c), not carried */
    FactorSource *factor;    /* [2 nk]: where the stacked factors come from */
    int first_output_result; /* the backward body's per-step outputs
                                (slices' gradients, factors) from here */
    bool *over_grad;         /* [no]: over tensors that get a gradient */
    bool *out_seed;          /* [ny]: step outputs that have a gradient */
} ScanPlan;

static Value add_arg(Graph *g, int32_t index, Type t)
{
    Attrs a = {.index = index, .type = t};
    int32_t id = ir_add_typed(g, OP_ARG, NULL, 0, &a, (SrcLoc){0}, &t, 1);
    return g->nodes.data[id].out[0];
}

static Type slice_type(Type t)
{
    return ir_type_make(t.dtype, t.rank - 1, t.dims + 1);
}

/* Copies body's nodes but its args into g, reading map[] for operands and
 * recording the copies' results in it. */
static void copy_nodes(Graph *g, const Graph *body, Value *map)
{
    for (int32_t k = 0; k < body->nodes.len; k++) {
        const Node *n = &body->nodes.data[k];
        if (n->op == OP_ARG)
            continue;
        Value in[64],
            *ins = n->n_in <= 64
                       ? in
                       : arena_alloc(g->arena, sizeof(Value) * (size_t)n->n_in);
        Type ts[64], *types = n->n_out <= 64
                                  ? ts
                                  : arena_alloc(g->arena, sizeof(Type) *
                                                              (size_t)n->n_out);
        for (int32_t i = 0; i < n->n_in; i++)
            ins[i] = map[n->in[i].id];
        for (int32_t i = 0; i < n->n_out; i++)
            types[i] = body->values.data[n->out[i].id].type;
        int32_t id = ir_add_typed(g, n->op, ins, n->n_in, &n->attr, n->loc,
                                  types, n->n_out);
        const Node *copy = &g->nodes.data[id];
        for (int32_t i = 0; i < n->n_out; i++) {
            map[n->out[i].id] = copy->out[i];
            g->values.data[copy->out[i].id].name =
                body->values.data[n->out[i].id].name;
        }
    }
}

/* Arguments of the backward body, in its order: carried gradients,
 * capture sums | stacked carries, slices, step-output gradients |
 * captures.  Returns the recompute map (forward body value -> here). */
typedef struct BwdArgs {
    Value *gcarry, *gcap, *carry, *over, *gout, *cap;
} BwdArgs;

static BwdArgs add_bwd_args(Ad *ad, Graph *bb, const GradCall *c,
                            const ScanPlan *p)
{
    Arena *a = ad->m->arena;
    BwdArgs b = {
        arena_alloc(a, sizeof(Value) * (size_t)(p->nc + 1)),
        arena_alloc(a, sizeof(Value) * (size_t)(p->nk + 1)),
        arena_alloc(a, sizeof(Value) * (size_t)(p->nc + 1)),
        arena_alloc(a, sizeof(Value) * (size_t)(p->no + 1)),
        arena_alloc(a, sizeof(Value) * (size_t)(p->ny + 1)),
        arena_alloc(a, sizeof(Value) * (size_t)(p->nk + 1)),
    };
    const Node *s = &c->n;
    int32_t k = 0;
    for (int i = 0; i < p->nc; i++)
        if (p->carry_grad[i])
            b.gcarry[i] = add_arg(bb, k++, gb_type(ad, s->in[i]));
    for (int j = 0; j < p->nk; j++)
        if (p->cap_grad[j])
            b.gcap[j] = add_arg(bb, k++, gb_type(ad, s->in[p->nc + p->no + j]));
    for (int i = 0; i < p->nc; i++)
        b.carry[i] = add_arg(bb, k++, gb_type(ad, s->in[i]));
    for (int j = 0; j < p->no; j++)
        b.over[j] = add_arg(bb, k++, slice_type(gb_type(ad, s->in[p->nc + j])));
    for (int o = 0; o < p->ny; o++)
        if (p->out_seed[o])
            b.gout[o] =
                add_arg(bb, k++, slice_type(gb_type(ad, c->gout[p->nc + o])));
    for (int j = 0; j < p->nk; j++)
        b.cap[j] = add_arg(bb, k++, gb_type(ad, s->in[p->nc + p->no + j]));
    bb->n_args = k;
    return b;
}

/* Where stacked factor v comes from: the over tensor or stacked carry it
 * is a slice of, else a per-step output of the backward scan (one per
 * value, whether a slice's gradient or another product also reads it). */
static FactorSource factor_source(Module *m, Graph *bb, const BwdArgs *b,
                                  const ScanPlan *p, Value v)
{
    for (int j = 0; j < p->no; j++)
        if (b->over[j].id == v.id)
            return (FactorSource){FROM_OVER, j};
    for (int i = 0; i < p->nc; i++)
        if (b->carry[i].id == v.id)
            return (FactorSource){FROM_CARRY, i};
    for (int r = p->first_output_result; r < bb->results.len; r++)
        if (bb->results.data[r].id == v.id)
            return (FactorSource){FROM_RESULT, r};
    ir_add_result(m, bb, v, NULL);
    return (FactorSource){FROM_RESULT, bb->results.len - 1};
}

/* The gradient the inner engine found for v, or zeros of v's type. */
static Value gradient_or_zeros(Ad *in, Value v)
{
    Value g = ad_gradient(in, v);
    return g.id ? g : gb_zeros(in, gb_type(in, v));
}

/* Builds the backward body: arguments, the recomputed step, its gradients,
 * and the results (new carried gradients, new capture sums, the slices'
 * gradients). */
static Graph *build_bwd_body(Ad *ad, const GradCall *c, const Graph *body,
                             ScanPlan *p, BwdRecompute *rec)
{
    Module *m = ad->m;
    Graph *bb = ir_graph_new(
        m, grad_unique_name(m, arena_printf(m->arena, "%s.bwd", body->name)));
    BwdArgs b = add_bwd_args(ad, bb, c, p);
    Value *map =
        arena_alloc(m->arena, sizeof(Value) * (size_t)body->values.len);
    Value *recompute_arg =
        arena_alloc(m->arena, sizeof(Value) * (size_t)(c->n.n_in + 1));
    for (int i = 0; i < c->n.n_in; i++) {
        recompute_arg[i] = i < p->nc           ? b.carry[i]
                           : i < p->nc + p->no ? b.over[i - p->nc]
                                               : b.cap[i - p->nc - p->no];
        map[arg_value(body, i).id] = recompute_arg[i];
    }
    rec->first_copy = bb->nodes.len;
    copy_nodes(bb, body, map);
    rec->first_grad = bb->nodes.len;
    /* Covers every value defined so far: the recompute's are all below. */
    rec->n_forward_of = bb->values.len;
    rec->forward_of =
        arena_alloc(m->arena, sizeof(Value) * (size_t)bb->values.len);
    for (int32_t f = 1; f < body->values.len; f++) {
        Value v = map[f];
        int32_t d = v.id ? bb->values.data[v.id].def : -1;
        if (d >= rec->first_copy && d < rec->first_grad)
            rec->forward_of[v.id] = (Value){(uint32_t)f};
    }
    bool *source = arena_alloc(m->arena, sizeof(bool) * (size_t)bb->values.len);
    for (int i = 0; i < c->n.n_in; i++)
        source[recompute_arg[i].id] = p->arg_active[i];
    Ad *in = ad_new(m, bb, source);
    for (int i = 0; i < p->nc; i++)
        if (p->carry_grad[i])
            ad_contribute(in, map[body->results.data[i].id], b.gcarry[i]);
    for (int o = 0; o < p->ny; o++)
        if (p->out_seed[o])
            ad_contribute(in, map[body->results.data[p->nc + o].id], b.gout[o]);
    ad_backprop(in);
    for (int i = 0; i < p->nc; i++)
        if (p->carry_grad[i])
            ir_add_result(m, bb, gradient_or_zeros(in, b.carry[i]), NULL);
    Value *factors =
        arena_alloc(m->arena, sizeof(Value) * (size_t)(2 * p->nk + 1));
    for (int j = 0; j < p->nk; j++)
        if (p->cap_grad[j]) {
            Value g = ad_gradient(in, b.cap[j]);
            p->cap_deferred[j] =
                grad_outer_product(bb, g, &factors[2 * j], &factors[2 * j + 1]);
            if (p->cap_deferred[j])
                grad_drop_arg(bb, b.gcap[j]);
            else
                ir_add_result(
                    m, bb, g.id ? gb_add(in, b.gcap[j], g) : b.gcap[j], NULL);
        }
    p->first_output_result = bb->results.len;
    for (int j = 0; j < p->no; j++)
        if (p->over_grad[j])
            ir_add_result(m, bb, gradient_or_zeros(in, b.over[j]), NULL);
    for (int f = 0; f < 2 * p->nk; f++)
        if (p->cap_deferred[f / 2])
            p->factor[f] = factor_source(m, bb, &b, p, factors[f]);
    return bb;
}

/* ---- the rule ------------------------------------------------------------- */

static ScanPlan plan_scan(Ad *ad, const GradCall *c, const Graph *body)
{
    Arena *a = ad->m->arena;
    ScanPlan p = {.nc = c->n.attr.n_carry, .no = c->n.attr.n_over};
    p.nk = c->n.n_in - p.nc - p.no;
    p.ny = body->results.len - p.nc;
    p.arg_active = scan_arg_activity(ad, c, body);
    p.carry_grad = arena_alloc(a, sizeof(bool) * (size_t)(p.nc + 1));
    p.cap_grad = arena_alloc(a, sizeof(bool) * (size_t)(p.nk + 1));
    p.cap_deferred = arena_alloc(a, sizeof(bool) * (size_t)(p.nk + 1));
    p.factor = arena_alloc(a, sizeof(FactorSource) * (size_t)(2 * p.nk + 1));
    p.over_grad = arena_alloc(a, sizeof(bool) * (size_t)(p.no + 1));
    p.out_seed = arena_alloc(a, sizeof(bool) * (size_t)(p.ny + 1));
    for (int i = 0; i < p.nc; i++)
        p.carry_grad[i] = p.arg_active[i];
    for (int j = 0; j < p.no; j++)
        p.over_grad[j] = c->need[p.nc + j];
    for (int j = 0; j < p.nk; j++)
        p.cap_grad[j] = c->need[p.nc + p.no + j];
    for (int o = 0; o < p.ny; o++)
        p.out_seed[o] = c->gout[p.nc + o].id != 0;
    return p;
}

/* Operands of the backward scan, in the backward body's argument order. */
static int bwd_operands(Ad *ad, const GradCall *c, const ScanPlan *p,
                        const Value *stacked, int n_saved, Value *ops,
                        int *n_carry)
{
    const Node *s = &c->n;
    int k = 0;
    for (int i = 0; i < p->nc; i++)
        if (p->carry_grad[i])
            ops[k++] = c->gout[i].id ? c->gout[i]
                                     : gb_zeros(ad, gb_type(ad, s->in[i]));
    for (int j = 0; j < p->nk; j++)
        if (p->cap_grad[j] && !p->cap_deferred[j])
            ops[k++] = gb_zeros(ad, gb_type(ad, s->in[p->nc + p->no + j]));
    *n_carry = k;
    for (int i = 0; i < p->nc; i++)
        ops[k++] = stacked[i];
    for (int j = 0; j < p->no; j++)
        ops[k++] = s->in[p->nc + j];
    for (int o = 0; o < p->ny; o++)
        if (p->out_seed[o])
            ops[k++] = c->gout[p->nc + o];
    for (int j = 0; j < n_saved; j++)
        ops[k++] = stacked[p->nc + j];
    for (int j = 0; j < p->nk; j++)
        ops[k++] = s->in[p->nc + p->no + j];
    return k;
}

void grad_scan(Ad *ad, GradCall *c)
{
    Module *m = ad->m;
    const Graph *body = m->graphs.data[c->n.attr.graph];
    ScanPlan p = plan_scan(ad, c, body);
    BwdRecompute rec;
    Graph *bb = build_bwd_body(ad, c, body, &p, &rec);
    Value *saved =
        arena_alloc(m->arena, sizeof(Value) * (size_t)(bb->values.len + 1));
    int n_saved = grad_save_recomputed(bb, &rec, p.nk, saved);
    Value *stacked =
        arena_alloc(m->arena, sizeof(Value) * (size_t)(p.nc + n_saved + 1));
    stack_carries(ad, c->index, saved, n_saved, stacked);
    Value *ops =
        arena_alloc(m->arena, sizeof(Value) * (size_t)(bb->n_args + 1));
    int n_carry,
        n_ops = bwd_operands(ad, c, &p, stacked, n_saved, ops, &n_carry);
    Attrs a = {.graph = bb->id,
               .n_carry = n_carry,
               .n_over = n_ops - n_carry - p.nk,
               .flag = !c->n.attr.flag};
    Value *outs =
        arena_alloc(m->arena, sizeof(Value) * (size_t)(bb->results.len + 1));
    gb_node_results(ad, OP_SCAN, ops, n_ops, &a, bb->results.len, outs);
    int r = 0;
    for (int i = 0; i < p.nc; i++)
        if (p.carry_grad[i]) {
            if (c->need[i])
                c->gin[i] = outs[r];
            r++;
        }
    for (int j = 0; j < p.nk; j++)
        if (p.cap_grad[j] && !p.cap_deferred[j])
            c->gin[p.nc + p.no + j] = outs[r++];
    for (int j = 0; j < p.no; j++)
        if (p.over_grad[j])
            c->gin[p.nc + j] = outs[r++];
    Value fs[2];
    for (int j = 0; j < p.nk; j++) {
        if (!p.cap_deferred[j])
            continue;
        for (int k = 0; k < 2; k++) {
            FactorSource f = p.factor[2 * j + k];
            fs[k] = f.kind == FROM_OVER    ? c->n.in[p.nc + f.index]
                    : f.kind == FROM_CARRY ? stacked[f.index]
                                           : outs[f.index];
        }
        c->gin[p.nc + p.no + j] = grad_stacked_product(ad, fs[0], fs[1]);
    }
}
