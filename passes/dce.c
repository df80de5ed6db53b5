/* dce.c — dead-code elimination, on every graph of the module.
 *
 * A node is live when one of its results reaches the graph's results;
 * every other node is dropped, and the graph is renumbered densely.  The
 * leaves that define an interface stay even when nothing reads them:
 * input and param nodes (the model's inputs and parameters) and arg nodes
 * (a scan body's signature).  Before and after (the graph of
 * tests/passes/dce_example.ir):
 *
 *     %0 = input @x : f32[2, 3]            %0 = input @x : f32[2, 3]
 *     %1 = param @W : f32[3, 3]            %1 = param @W : f32[3, 3]
 *     %2 = exp %0 : f32[2, 3]        =>    %2 = matmul %0, %1 : f32[2, 3]
 *     %3 = matmul %0, %1 : f32[2, 3]       return %2
 *     return %3
 *
 * A scan is live when any of its results is used, and then keeps all of
 * them (dropping unused per-step outputs would change its body).  Scan
 * bodies that no live scan runs any more are removed from the module.
 * Runs after CSE, which leaves nothing dead of its own. */
#include "passes/pass.h"

static bool op_defines_interface(Op op)
{
    return op == OP_INPUT || op == OP_PARAM || op == OP_ARG;
}

/* Marks v live; ir_value checks that the id is in range. */
static void mark_live(Graph *g, bool *live_value, Value v)
{
    if (v.id != 0) {
        ir_value(g, v);
        live_value[v.id] = true;
    }
}

/* Marks the live nodes of g, walking from the results towards the leaves:
 * nodes come in definition order, so one backward sweep suffices. */
static bool *live_nodes(Graph *g)
{
    Arena *a = g->arena;
    bool *live_value = arena_alloc(a, sizeof(bool) * (size_t)g->values.len);
    bool *live = arena_alloc(a, sizeof(bool) * (size_t)(g->nodes.len + 1));
    for (int32_t r = 0; r < g->results.len; r++)
        mark_live(g, live_value, g->results.data[r]);
    for (int32_t i = g->nodes.len - 1; i >= 0; i--) {
        const Node *n = &g->nodes.data[i];
        live[i] = op_defines_interface(n->op);
        for (int32_t k = 0; k < n->n_out && !live[i]; k++)
            live[i] = live_value[n->out[k].id];
        if (!live[i])
            continue;
        for (int32_t k = 0; k < n->n_in; k++)
            mark_live(g, live_value, n->in[k]);
    }
    return live;
}

static bool dce_graph(Graph *g)
{
    bool *live = live_nodes(g);
    for (int32_t i = 0; i < g->nodes.len; i++)
        if (!live[i])
            return pass_compact_graph(g, live) > 0;
    return false;
}

bool pass_dce(Module *m, PassCtx *ctx)
{
    bool changed = false;
    for (int32_t i = 0; i < m->graphs.len; i++)
        changed |= dce_graph(m->graphs.data[i]);
    return pass_drop_unused_graphs(m) > 0 || changed;
}
