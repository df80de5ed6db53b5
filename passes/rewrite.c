/* rewrite.c — graph rewriting shared by the passes.
 *
 * A Graph keeps its nodes and values in arrays addressed by ids, and every
 * operand is an id, so deleting a node in place would leave holes and stale
 * ids.  Passes therefore rewrite in two steps: first redirect the uses of
 * the values they replace (pass_replace_uses, pass_apply_value_map), then
 * mark the nodes to keep and let pass_compact_graph rebuild the arrays
 * densely, renumbering values and nodes in definition order so that dumps
 * stay deterministic.  pass_drop_unused_graphs does the same for the scan
 * bodies of a module.  CSE and DCE are built on these; later passes
 * (fusion, simplification) use them too. */
#include "passes/pass.h"

#include <string.h>

static Value value_mapped(const Value *map, Value v)
{
    return map[v.id].id ? map[v.id] : v;
}

void pass_apply_value_map(Graph *g, const Value *map)
{
    for (int32_t i = 0; i < g->nodes.len; i++) {
        Node *n = &g->nodes.data[i];
        for (int32_t k = 0; k < n->n_in; k++)
            n->in[k] = value_mapped(map, n->in[k]);
    }
    for (int32_t r = 0; r < g->results.len; r++)
        g->results.data[r] = value_mapped(map, g->results.data[r]);
}

void pass_replace_uses(Graph *g, Value from, Value to)
{
    for (int32_t i = 0; i < g->nodes.len; i++) {
        Node *n = &g->nodes.data[i];
        for (int32_t k = 0; k < n->n_in; k++)
            if (n->in[k].id == from.id)
                n->in[k] = to;
    }
    for (int32_t r = 0; r < g->results.len; r++)
        if (g->results.data[r].id == from.id)
            g->results.data[r] = to;
}

/* The new id of `v` after compaction; a use of a dropped value means the
 * pass that asked for the compaction left a dangling operand. */
static Value value_renumbered(const Graph *g, const uint32_t *new_id, Value v,
                              int32_t user)
{
    if (v.id == 0)
        return v;
    if (v.id >= (uint32_t)g->values.len || new_id[v.id] == 0) {
        if (user >= 0)
            ir_internal_error("compact",
                              "graph %s: node %d uses dropped value %%%u",
                              g->name, user, v.id);
        ir_internal_error("compact",
                          "graph %s: a result uses dropped value %%%u", g->name,
                          v.id);
    }
    return (Value){new_id[v.id]};
}

int32_t pass_compact_graph(Graph *g, const bool *keep)
{
    Arena *a = g->arena;
    int32_t n_values = g->values.len;
    ValueInfo *old_values =
        arena_alloc(a, sizeof *old_values * (size_t)n_values);
    memcpy(old_values, g->values.data, sizeof *old_values * (size_t)n_values);
    uint32_t *new_id = arena_alloc(a, sizeof *new_id * (size_t)n_values);

    int32_t w = 0, next_value = 1;
    for (int32_t i = 0; i < g->nodes.len; i++) {
        if (!keep[i])
            continue;
        Node n = g->nodes.data[i];
        for (int32_t k = 0; k < n.n_in; k++)
            n.in[k] = value_renumbered(g, new_id, n.in[k], i);
        for (int32_t k = 0; k < n.n_out; k++) {
            ValueInfo vi = old_values[n.out[k].id];
            vi.def = w;
            new_id[n.out[k].id] = (uint32_t)next_value;
            n.out[k] = (Value){(uint32_t)next_value};
            g->values.data[next_value++] = vi;
        }
        g->nodes.data[w++] = n;
    }
    for (int32_t r = 0; r < g->results.len; r++)
        g->results.data[r] =
            value_renumbered(g, new_id, g->results.data[r], -1);
    int32_t dropped = g->nodes.len - w;
    g->nodes.len = w;
    g->values.len = next_value;
    return dropped;
}

/* Marks graph `id` and, through its scan nodes, every body it reaches. */
static void graph_mark_used(const Module *m, int32_t id, bool *used)
{
    if (id < 0 || id >= m->graphs.len)
        ir_internal_error("drop unused graphs", "scan refers to graph %d of %d",
                          id, m->graphs.len);
    if (used[id])
        return;
    used[id] = true;
    const Graph *g = m->graphs.data[id];
    for (int32_t i = 0; i < g->nodes.len; i++)
        if (g->nodes.data[i].op == OP_SCAN)
            graph_mark_used(m, g->nodes.data[i].attr.graph, used);
}

int32_t pass_drop_unused_graphs(Module *m)
{
    if (m->graphs.len == 0)
        return 0;
    bool *used = arena_alloc(m->arena, sizeof *used * (size_t)m->graphs.len);
    int32_t *new_id =
        arena_alloc(m->arena, sizeof *new_id * (size_t)m->graphs.len);
    graph_mark_used(m, 0, used);

    int32_t w = 0;
    for (int32_t i = 0; i < m->graphs.len; i++) {
        new_id[i] = w;
        if (used[i])
            m->graphs.data[w++] = m->graphs.data[i];
    }
    int32_t dropped = m->graphs.len - w;
    m->graphs.len = w;
    for (int32_t i = 0; i < w; i++) {
        Graph *g = m->graphs.data[i];
        g->id = i;
        for (int32_t k = 0; k < g->nodes.len; k++)
            if (g->nodes.data[k].op == OP_SCAN)
                g->nodes.data[k].attr.graph =
                    new_id[g->nodes.data[k].attr.graph];
    }
    return dropped;
}
