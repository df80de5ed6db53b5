/* lower_scan.c — `scan(f, init = ..., over = ..., reverse = ...)`: the body
 * of f becomes a graph of its own, reached through the SCAN node, so a
 * recurrence is not unrolled.
 *
 *   fn step(h, xt) { h = tanh(xt @ Wxh + h @ Whh); return h, h }
 *   h_last, hs = scan(step, init = h0, over = xs)
 *
 *   graph step:  %1 = arg 0 (h)  %2 = arg 1 (xt)  %3 = arg 2 (Wxh)
 *                %4 = arg 3 (Whh)  ...  results %7, %7
 *   graph main:  %9, %10 = scan %h0, %xs, %Wxh, %Whh {graph step, n_carry 1, n_over 1}
 *
 * The body's first arguments are the carries and the per-step slices;
 * every outer value the body reads (params, inputs, top-level bindings,
 * or values of an enclosing scan body) becomes a further argument and an
 * extra operand of the scan, in first-use order, shared when read twice.
 * Captures are discovered while the body is lowered, so their ARG nodes
 * are made where first used; once the body is complete it is rebuilt with
 * every ARG first, in index order. */
#include "frontend/lower.h"

#include <string.h>

/* ---- captures ------------------------------------------------------------- */

static Value add_arg(Graph *g, int32_t index, Type t, const char *name)
{
    Attrs at = {.index = index, .type = t};
    int32_t id = ir_add_typed(g, OP_ARG, NULL, 0, &at, (SrcLoc){0}, &t, 1);
    Value v = g->nodes.data[id].out[0];
    ir_value(g, v)->name = name;
    return v;
}

/* The value `outer` of c's parent graph, as an argument of c's graph. */
static Value capture(Lower *L, GraphCtx *c, Value outer)
{
    for (int32_t i = 0; i < c->captures.len; i++)
        if (c->captures.data[i].outer.id == outer.id)
            return c->captures.data[i].inner;
    ValueInfo *vi = ir_value(c->parent->g, outer);
    Value inner =
        add_arg(c->g, c->n_fixed + c->captures.len, vi->type, vi->name);
    vec_push(L->a, &c->captures, ((Capture){outer, inner}));
    return inner;
}

static Value value_in(Lower *L, GraphCtx *c, GraphCtx *owner, Value v)
{
    if (c == owner)
        return v;
    if (!c->parent)
        ir_internal_error("lower", "value %%%u is not in an enclosing graph",
                          v.id);
    return capture(L, c, value_in(L, c->parent, owner, v));
}

Value lw_value_in(Lower *L, GraphCtx *owner, Value v)
{
    return value_in(L, L->ctx, owner, v);
}

/* ---- the body graph --------------------------------------------------------- */

/* "step", or "step.1", "step.2", ... when a graph has that name. */
static const char *body_name(Lower *L, const char *fn)
{
    const char *name = fn;
    for (int k = 1;; k++) {
        bool taken = false;
        for (int32_t i = 0; i < L->m->graphs.len && !taken; i++)
            taken = strcmp(L->m->graphs.data[i]->name, name) == 0;
        if (!taken)
            return name;
        name = arena_printf(L->a, "%s.%d", fn, k);
    }
}

static void copy_node(Graph *ng, const Graph *g, const Node *n, uint32_t *map)
{
    Value in[64];
    Type types[64];
    Value *ins = n->n_in <= 64
                     ? in
                     : arena_alloc(ng->arena, sizeof(Value) * (size_t)n->n_in);
    for (int i = 0; i < n->n_in; i++)
        ins[i] = (Value){map[n->in[i].id]};
    for (int i = 0; i < n->n_out && i < 64; i++)
        types[i] = g->values.data[n->out[i].id].type;
    int32_t id = ir_add_typed(ng, n->op, ins, n->n_in, &n->attr, n->loc, types,
                              n->n_out);
    const Node *nn = &ng->nodes.data[id];
    for (int i = 0; i < n->n_out; i++) {
        map[n->out[i].id] = nn->out[i].id;
        ng->values.data[nn->out[i].id].name = g->values.data[n->out[i].id].name;
    }
}

/* Rebuilds c's graph with its ARG nodes first, by index. */
static void args_first(Lower *L, GraphCtx *c)
{
    Graph *g = c->g, ng = {.arena = g->arena, .name = g->name, .id = g->id};
    int32_t n_args = c->n_fixed + c->captures.len;
    const Node **args = arena_alloc(L->a, sizeof *args * (size_t)(n_args + 1));
    uint32_t *map = arena_alloc(L->a, sizeof *map * (size_t)g->values.len);
    vec_push(L->a, &ng.values, ((ValueInfo){.def = -1}));
    for (int32_t i = 0; i < g->nodes.len; i++)
        if (g->nodes.data[i].op == OP_ARG)
            args[g->nodes.data[i].attr.index] = &g->nodes.data[i];
    for (int32_t i = 0; i < n_args; i++)
        copy_node(&ng, g, args[i], map);
    for (int32_t i = 0; i < g->nodes.len; i++)
        if (g->nodes.data[i].op != OP_ARG)
            copy_node(&ng, g, &g->nodes.data[i], map);
    for (int32_t i = 0; i < g->results.len; i++) {
        vec_push(L->a, &ng.results, ((Value){map[g->results.data[i].id]}));
        vec_push(L->a, &ng.result_names, g->result_names.data[i]);
    }
    ng.n_args = n_args;
    *g = ng;
}

/* ---- operands ----------------------------------------------------------------- */

/* init or over: one expression or a tuple of them. */
static bool scan_values(Lower *L, Scope *sc, const Expr *e, Vals *out)
{
    const Expr *const *es =
        e->kind == EX_TUPLE ? (const Expr *const *)e->elems : &e;
    int n = e->kind == EX_TUPLE ? e->n_elems : 1;
    out->v = arena_alloc(L->a, sizeof(Value) * (size_t)n);
    out->n = n;
    return lw_exprs(L, sc, es, n, out->v);
}

/* scan's first argument: the name of a fn. */
static const FnDef *scan_fn(Lower *L, Scope *sc, const Expr *e)
{
    Sym s;
    if (e->kind != EX_NAME) {
        lw_error(L, e->loc,
                 "the first argument of scan must be the name of a fn");
        return NULL;
    }
    if (lw_lookup(L, sc, e->name, &s) && s.kind == SYM_FN)
        return s.fn;
    if (lw_lookup(L, sc, e->name, &s)) {
        if (s.kind != SYM_POISON)
            lw_error(L, e->loc, "scan needs a fn, but '%s' is %s", e->name,
                     lw_kind_phrase(s.kind));
    } else if (lw_builtin(e->name)) {
        lw_error(L, e->loc,
                 "scan needs a fn defined with 'fn', not the "
                 "built-in '%s'",
                 e->name);
    } else {
        lw_unknown(L, sc, e->name, e->loc, true);
    }
    return NULL;
}

/* The over tensors: rank 1 or more, all of one length. */
static bool check_over(Lower *L, const Expr *call, const Vals *over)
{
    int64_t steps = 0;
    for (int j = 0; j < over->n; j++) {
        Type t = ir_value_type(L->ctx->g, over->v[j]);
        if (t.rank < 1) {
            lw_error(L, call->loc,
                     "scan over tensor %d: %s has no axis to scan "
                     "along",
                     j + 1, lw_type_str(L, &t));
            return false;
        }
        if (j > 0 && t.dims[0] != steps) {
            lw_error(L, call->loc,
                     "scan over tensors 1 and %d have different "
                     "lengths along axis 0 (%lld and %lld)",
                     j + 1, (long long)steps, (long long)t.dims[0]);
            return false;
        }
        steps = t.dims[0];
    }
    return true;
}

static bool check_arity(Lower *L, const Expr *call, const FnDef *fn, int nc,
                        int no)
{
    int np = fn->st->n_params;
    if (np == nc + no)
        return true;
    lw_error(L, call->loc,
             "scan: fn '%s' takes %d argument%s, but scan passes "
             "%d (%d carr%s and %d slice%s)",
             fn->st->names[0], np, np == 1 ? "" : "s", nc + no, nc,
             nc == 1 ? "y" : "ies", no, no == 1 ? "" : "s");
    return false;
}

/* ---- the scan ------------------------------------------------------------------ */

/* The step's results: at least the carries, each of its initial type. */
static bool check_results(Lower *L, const Expr *call, const FnDef *fn,
                          const Vals *init, const Vals *res, const Graph *body)
{
    const char *name = fn->st->names[0];
    if (res->n < init->n) {
        lw_error(L, call->loc,
                 "scan: fn '%s' returns %d value%s, but there "
                 "%s %d carr%s",
                 name, res->n, res->n == 1 ? "" : "s",
                 init->n == 1 ? "is" : "are", init->n,
                 init->n == 1 ? "y" : "ies");
        return false;
    }
    for (int i = 0; i < init->n; i++) {
        Type a = ir_value_type(L->ctx->g, init->v[i]);
        Type b = ir_value_type(body, res->v[i]);
        if (!ir_type_eq(&a, &b)) {
            lw_error(L, call->loc,
                     "scan: fn '%s' changes carry %d from %s to %s", name,
                     i + 1, lw_type_str(L, &a), lw_type_str(L, &b));
            return false;
        }
    }
    return true;
}

/* Lowers f's body into a new graph; returns its results (n == 0: failed). */
static Vals lower_body(Lower *L, const Expr *call, const FnDef *fn,
                       const Vals *init, const Vals *over, GraphCtx *bc)
{
    int nc = init->n, no = over->n;
    Value *args = arena_alloc(L->a, sizeof(Value) * (size_t)(nc + no));
    const char *const *names = fn->st->params;
    for (int i = 0; i < nc + no; i++) {
        Value v = i < nc ? init->v[i] : over->v[i - nc];
        Type t = ir_value_type(L->ctx->g, v);
        if (i >= nc)
            t = ir_type_make(t.dtype, t.rank - 1, t.dims + 1);
        args[i] = add_arg(bc->g, i, t, names[i]);
    }
    GraphCtx *saved = L->ctx;
    L->ctx = bc;
    Vals r = lw_inline(L, fn, args, call->loc, "scanned");
    L->ctx = saved;
    if (!r.n || !check_results(L, call, fn, init, &r, bc->g))
        return (Vals){0};
    for (int i = 0; i < r.n; i++)
        ir_add_result(L->m, bc->g, r.v[i], NULL);
    args_first(L, bc);
    return r;
}

static Vals emit_scan(Lower *L, const Expr *call, const Vals *init,
                      const Vals *over, const GraphCtx *bc, bool reverse)
{
    int n_in = init->n + over->n + bc->captures.len;
    Value *in = arena_alloc(L->a, sizeof(Value) * (size_t)n_in);
    memcpy(in, init->v, sizeof(Value) * (size_t)init->n);
    memcpy(in + init->n, over->v, sizeof(Value) * (size_t)over->n);
    for (int32_t i = 0; i < bc->captures.len; i++)
        in[init->n + over->n + i] = bc->captures.data[i].outer;
    Attrs at = {.graph = bc->g->id,
                .n_carry = init->n,
                .n_over = over->n,
                .flag = reverse};
    Vals r = {arena_alloc(L->a, sizeof(Value) * 64), bc->g->results.len};
    char err[1024];
    if (!lw_spend(L, 1, call->loc))
        return (Vals){0};
    if (!ir_add(L->m, L->ctx->g, OP_SCAN, in, n_in, &at, call->loc, r.v, err,
                sizeof err)
             .id) {
        lw_error(L, call->loc, "%s", err);
        return (Vals){0};
    }
    return r;
}

Vals lw_scan(Lower *L, Scope *sc, const Expr *call, const Expr **slot)
{
    Vals init, over;
    bool reverse = false;
    const FnDef *fn = scan_fn(L, sc, slot[0]);
    bool ok = scan_values(L, sc, slot[1], &init);
    ok &= scan_values(L, sc, slot[2], &over);
    if (slot[3])
        ok &= lw_eval_bool(L, sc, slot[3], "argument 'reverse' of scan",
                           &reverse);
    if (!ok || !fn || fn->broken || !check_over(L, call, &over) ||
        !check_arity(L, call, fn, init.n, over.n))
        return (Vals){0};
    GraphCtx *bc = arena_alloc(L->a, sizeof *bc);
    bc->g = ir_graph_new(L->m, body_name(L, fn->st->names[0]));
    bc->parent = L->ctx;
    bc->n_fixed = init.n + over.n;
    if (!lower_body(L, call, fn, &init, &over, bc).n)
        return (Vals){0};
    return emit_scan(L, call, &init, &over, bc, reverse);
}
