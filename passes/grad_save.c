/* grad_save.c — which values of a recomputed scan step the backward body
 * reads from saved stacks instead of recomputing them.
 *
 * grad_scan.c builds the backward body as a copy of the forward step (the
 * "recompute") followed by the gradient nodes.  Recomputing is cheap in
 * memory but doubles the forward's matrix products: the LSTM's recurrent
 * GEMM, a transformer layer's projections and attention.  So, as PyTorch's
 * autograd does, the values the gradient nodes read are saved instead:
 * each becomes one more per-step output of the forward scan (stacked over
 * the steps) and one more scanned operand of the backward scan, and the
 * recompute that only fed them dies (DCE).  Values that cost nothing to
 * recompute are not saved — constants, reshapes and broadcasts (views or
 * fills) — nor values the forward step does not have (results a nested
 * scan's rule added to the copy); for those the recompute stays and their
 * operands are considered in turn. */
#include "passes/grad.h"

#include <string.h>

static bool cheap_to_recompute(Op op)
{
    return op == OP_CONST || op == OP_RESHAPE || op == OP_BROADCAST_TO;
}

/* The values to save: recomputed (defined by nodes first_copy..first_grad-1),
 * read by a gradient node or a result, f32, with a forward counterpart. */
static int choose_saved(const Graph *bb, const BwdRecompute *r, Value *saved)
{
    int32_t nv = bb->values.len;
    bool *want = arena_alloc(bb->arena, (size_t)nv + 1);
    bool *seen = arena_alloc(bb->arena, (size_t)nv + 1);
    Value *stack = arena_alloc(bb->arena, sizeof(Value) * ((size_t)nv + 1));
    int sp = 0, n = 0;
    for (int32_t k = r->first_grad; k < bb->nodes.len; k++)
        for (int32_t i = 0; i < bb->nodes.data[k].n_in; i++)
            want[bb->nodes.data[k].in[i].id] = true;
    for (int32_t i = 0; i < bb->results.len; i++)
        want[bb->results.data[i].id] = true;
    for (int32_t v = 1; v < nv; v++)
        if (want[v])
            stack[sp++] = (Value){(uint32_t)v};
    while (sp > 0) {
        Value v = stack[--sp];
        int32_t d = bb->values.data[v.id].def;
        if (seen[v.id] || d < r->first_copy || d >= r->first_grad)
            continue;
        seen[v.id] = true;
        const Node *def = &bb->nodes.data[d];
        bool has_forward = (int32_t)v.id < r->n_forward_of &&
                           r->forward_of[v.id].id;
        if (!cheap_to_recompute(def->op) && has_forward &&
            bb->values.data[v.id].type.dtype == DT_F32) {
            saved[n++] = v;
            continue;
        }
        for (int32_t i = 0; i < def->n_in; i++)
            stack[sp++] = def->in[i];
    }
    return n;
}

/* Every read of `from` by a gradient node or a result becomes `to`. */
static void reroute_gradient_reads(Graph *bb, int32_t first_grad, Value from,
                                   Value to)
{
    for (int32_t k = first_grad; k < bb->nodes.len; k++) {
        Node *n = &bb->nodes.data[k];
        for (int32_t i = 0; i < n->n_in; i++)
            if (n->in[i].id == from.id)
                n->in[i] = to;
    }
    for (int32_t i = 0; i < bb->results.len; i++)
        if (bb->results.data[i].id == from.id)
            bb->results.data[i] = to;
}

int grad_save_recomputed(Graph *bb, const BwdRecompute *r, int n_captures,
                         Value *forward_saved)
{
    Value *saved =
        arena_alloc(bb->arena, sizeof(Value) * ((size_t)bb->values.len + 1));
    int n = choose_saved(bb, r, saved);
    if (n == 0)
        return 0;
    int32_t first_cap = bb->n_args - n_captures, first_new = bb->nodes.len;
    for (int32_t k = 0; k < first_new; k++) {
        Node *a = &bb->nodes.data[k];
        if (a->op == OP_ARG && a->attr.index >= first_cap)
            a->attr.index += n;
    }
    for (int j = 0; j < n; j++) {
        Type t = bb->values.data[saved[j].id].type;
        Attrs a = {.index = first_cap + j, .type = t};
        int32_t id = ir_add_typed(bb, OP_ARG, NULL, 0, &a, (SrcLoc){0}, &t, 1);
        Value arg = bb->nodes.data[id].out[0];
        bb->values.data[arg.id].name = bb->values.data[saved[j].id].name;
        reroute_gradient_reads(bb, r->first_grad, saved[j], arg);
        forward_saved[j] = r->forward_of[saved[j].id];
    }
    bb->n_args += n;
    pass_move_nodes_before(bb, first_new, 0);
    return n;
}
