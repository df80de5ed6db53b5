/* hoist.c — loop-invariant code out of scan bodies.
 *
 * A node of a scan body whose operands are all captured values (the
 * arguments after the carries and the scanned slices: the same at every
 * step) computes the same thing at every step.  Autodiff makes such nodes:
 * the backward step of `h @ W` multiplies by transpose(W), a copy of W
 * made at every step and, for the GEMM, a transposed operand it must
 * repack every step.  This pass computes each such node once, before the
 * scan, and passes the result in as one more captured value:
 *
 *     scan @step(...) %h, %W              %t = transpose %W
 *     graph step { %w = arg 1         =>  scan @step(...) %h, %W, %t
 *                  %t = transpose %w      graph step { %t = arg 2
 *                  ... matmul %d, %t }                 ... matmul %d, %t }
 *
 * Constants count as invariant (they are copied out); dropout (a new mask
 * at every step), scans and multi-result ops stay.  A body run by several
 * scans, or a fused op's body, is left alone.  DCE (run at the end) drops
 * the body nodes and captures nothing reads any more. */
#include "passes/pass.h"

#include <string.h>

static bool hoistable(const Node *n)
{
    unsigned f = ir_op_info[n->op].flags;
    return n->n_out == 1 && !(f & (OPF_MULTI | OPF_GRAPH)) &&
           n->op != OP_DROPOUT && n->op != OP_INPUT && n->op != OP_PARAM &&
           n->op != OP_ARG;
}

/* outside[v] for the body's values: the outer value equal to v at every
 * step (captures, and the copies of invariant nodes made in outer). */
static Value *copy_invariants(Module *m, Graph *outer, const Node *scan,
                              Graph *body)
{
    Value *outside =
        arena_alloc(m->arena, sizeof(Value) * (size_t)(body->values.len + 1));
    int32_t first_cap = scan->attr.n_carry + scan->attr.n_over;
    const Value *scan_in = scan->in; /* in the arena: stays put */
    for (int32_t k = 0; k < body->nodes.len; k++) {
        const Node *n = &body->nodes.data[k];
        if (n->op == OP_ARG && n->attr.index >= first_cap)
            outside[n->out[0].id] = scan_in[n->attr.index];
        if (!hoistable(n))
            continue;
        Value in[8];
        bool invariant = n->n_in <= 8;
        for (int32_t i = 0; i < n->n_in && invariant; i++)
            invariant = (in[i] = outside[n->in[i].id]).id != 0;
        if (!invariant)
            continue;
        Type t = ir_value_type(body, n->out[0]);
        int32_t id =
            ir_add_typed(outer, n->op, in, n->n_in, &n->attr, n->loc, &t, 1);
        outside[n->out[0].id] = outer->nodes.data[id].out[0];
    }
    return outside;
}

/* Values of the body that were copied out and that a node staying in the
 * body (or a result) reads: each becomes a new captured argument. */
static bool *needed_inside(Graph *body, const Value *outside)
{
    bool *need = arena_alloc(body->arena, (size_t)body->values.len + 1);
    for (int32_t k = 0; k < body->nodes.len; k++) {
        const Node *n = &body->nodes.data[k];
        if (n->n_out == 1 && outside[n->out[0].id].id && n->op != OP_ARG)
            continue; /* copied out: it reads only invariant values */
        for (int32_t i = 0; i < n->n_in; i++)
            need[n->in[i].id] = true;
    }
    for (int32_t r = 0; r < body->results.len; r++)
        need[body->results.data[r].id] = true;
    return need;
}

/* Adds the needed copies as captures of scan node si and arguments of the
 * body; returns how many. */
static int32_t capture(Module *m, Graph *outer, int32_t si, Graph *body,
                       const Value *outside, const bool *need)
{
    VEC(Value) extra = {0};
    int32_t n_vals = body->values.len;
    for (int32_t v = 1; v < n_vals; v++) {
        Value val = {(uint32_t)v};
        const Node *d = ir_def(body, val);
        if (!need[v] || !outside[v].id || d->op == OP_ARG || d->op == OP_CONST)
            continue;
        Type t = ir_value_type(body, val);
        Attrs a = {.index = body->n_args++, .type = t};
        int32_t id = ir_add_typed(body, OP_ARG, NULL, 0, &a, d->loc, &t, 1);
        Value arg = body->nodes.data[id].out[0];
        ir_value(body, arg)->name = ir_value(body, val)->name;
        pass_move_nodes_before(body, body->nodes.len - 1, 0);
        pass_replace_uses(body, val, arg);
        vec_push(m->arena, &extra, outside[v]);
    }
    if (extra.len == 0)
        return 0;
    Node *scan = &outer->nodes.data[si];
    Value *in =
        arena_alloc(m->arena, sizeof(Value) * (size_t)(scan->n_in + extra.len));
    memcpy(in, scan->in, sizeof(Value) * (size_t)scan->n_in);
    memcpy(in + scan->n_in, extra.data, sizeof(Value) * (size_t)extra.len);
    scan->in = in;
    scan->n_in += extra.len;
    return extra.len;
}

/* Hoists from the body of scan node si of outer; returns how many nodes
 * were added before it (the scan's new index is si plus that). */
static int32_t hoist_scan(Module *m, Graph *outer, int32_t si)
{
    const Node *scan = &outer->nodes.data[si];
    Graph *body = m->graphs.data[scan->attr.graph];
    if (pass_scans_running(m, body->id) != 1)
        return 0;
    int32_t first = outer->nodes.len, first_value = outer->values.len;
    Value *outside = copy_invariants(m, outer, scan, body);
    bool *need = needed_inside(body, outside);
    if (capture(m, outer, si, body, outside, need) == 0) {
        outer->nodes.len = first; /* the copies: nothing reads them */
        outer->values.len = first_value;
        return 0;
    }
    pass_move_nodes_before(outer, first, si);
    return outer->nodes.len - first;
}

bool pass_hoist(Module *m, PassCtx *ctx)
{
    bool *is_body = pass_fusion_bodies(m);
    bool changed = false;
    for (int32_t gi = 0; gi < m->graphs.len; gi++) {
        Graph *g = m->graphs.data[gi];
        if (is_body[gi])
            continue;
        for (int32_t k = 0; k < g->nodes.len; k++) {
            if (g->nodes.data[k].op != OP_SCAN)
                continue;
            int32_t added = hoist_scan(m, g, k);
            changed |= added > 0;
            k += added;
        }
    }
    if (changed)
        pass_dce(m, ctx);
    return changed;
}
