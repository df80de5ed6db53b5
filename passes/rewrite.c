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

/* Marks graph `id` and, through its scan and fused nodes, every body it
 * reaches. */
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
        if (ir_op_info[g->nodes.data[i].op].flags & OPF_GRAPH)
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
            if (ir_op_info[g->nodes.data[k].op].flags & OPF_GRAPH)
                g->nodes.data[k].attr.graph =
                    new_id[g->nodes.data[k].attr.graph];
    }
    return dropped;
}

bool *pass_fusion_bodies(const Module *m)
{
    bool *is_body =
        arena_alloc(m->arena, sizeof *is_body * (size_t)(m->graphs.len + 1));
    for (int32_t gi = 0; gi < m->graphs.len; gi++) {
        const Graph *g = m->graphs.data[gi];
        for (int32_t k = 0; k < g->nodes.len; k++) {
            const Node *n = &g->nodes.data[k];
            if ((n->op == OP_FUSED || n->op == OP_MATMUL_EPILOGUE) &&
                n->attr.graph > 0 && n->attr.graph < m->graphs.len)
                is_body[n->attr.graph] = true;
        }
    }
    return is_body;
}

int32_t *pass_use_counts(const Graph *g)
{
    int32_t *uses =
        arena_alloc(g->arena, sizeof *uses * (size_t)(g->values.len + 1));
    for (int32_t k = 0; k < g->nodes.len; k++) {
        const Node *n = &g->nodes.data[k];
        for (int32_t i = 0; i < n->n_in; i++)
            uses[n->in[i].id]++;
    }
    for (int32_t r = 0; r < g->results.len; r++)
        uses[g->results.data[r].id]++;
    return uses;
}

void pass_move_nodes_before(Graph *g, int32_t first, int32_t pos)
{
    int32_t len = g->nodes.len, n_moved = len - first;
    if (pos < 0 || pos > first || first > len)
        ir_internal_error("move nodes", "graph %s: nodes %d.. cannot go to %d",
                          g->name, first, pos);
    if (n_moved == 0 || pos == first)
        return;
    Node *moved = arena_alloc(g->arena, sizeof *moved * (size_t)n_moved);
    memcpy(moved, &g->nodes.data[first], sizeof *moved * (size_t)n_moved);
    memmove(&g->nodes.data[pos + n_moved], &g->nodes.data[pos],
            sizeof *moved * (size_t)(first - pos));
    memcpy(&g->nodes.data[pos], moved, sizeof *moved * (size_t)n_moved);
    for (int32_t i = pos; i < len; i++) {
        const Node *n = &g->nodes.data[i];
        for (int32_t k = 0; k < n->n_out; k++)
            g->values.data[n->out[k].id].def = i;
    }
}

/* ---- building fused nodes ------------------------------------------------- */

static bool graph_name_used(const Module *m, const char *name)
{
    for (int32_t i = 0; i < m->graphs.len; i++)
        if (m->graphs.data[i] && strcmp(m->graphs.data[i]->name, name) == 0)
            return true;
    return false;
}

const char *pass_unique_graph_name(Module *m, const char *base)
{
    for (int k = 0;; k++) {
        const char *name = arena_printf(m->arena, "%s.%d", base, k);
        if (!graph_name_used(m, name))
            return name;
    }
}

PassUsers pass_users(const Graph *g)
{
    int32_t nv = g->values.len;
    PassUsers u = {
        .start = arena_alloc(g->arena, sizeof(int32_t) * (size_t)(nv + 1)),
    };
    int32_t total = 0;
    for (int32_t k = 0; k < g->nodes.len; k++) {
        const Node *n = &g->nodes.data[k];
        for (int32_t i = 0; i < n->n_in; i++)
            u.start[n->in[i].id + 1]++;
        total += n->n_in;
    }
    for (int32_t v = 0; v < nv; v++)
        u.start[v + 1] += u.start[v];
    u.node = arena_alloc(g->arena, sizeof(int32_t) * (size_t)(total + 1));
    int32_t *fill = arena_alloc(g->arena, sizeof(int32_t) * (size_t)(nv + 1));
    for (int32_t k = 0; k < g->nodes.len; k++) {
        const Node *n = &g->nodes.data[k];
        for (int32_t i = 0; i < n->n_in; i++) {
            uint32_t v = n->in[i].id;
            u.node[u.start[v] + fill[v]++] = k;
        }
    }
    return u;
}

/* The body's value for outer value x: mapped already, or a copied const. */
static Value body_operand(Module *m, Graph *g, Graph *body, Value *map, Value x)
{
    if (map[x.id].id)
        return map[x.id];
    const Node *d = ir_def(g, x);
    if (d->op != OP_CONST)
        ir_internal_error("fusion",
                          "graph %s: value %%%u enters a body "
                          "without being an argument or a constant",
                          g->name, x.id);
    Type t = ir_value_type(g, x);
    int32_t id = ir_add_typed(body, OP_CONST, NULL, 0, &d->attr, d->loc, &t, 1);
    map[x.id] = body->nodes.data[id].out[0];
    return map[x.id];
}

Graph *pass_build_body(Module *m, Graph *g, const char *base, const Value *args,
                       int n_args, const int32_t *members, int n_members,
                       const Value *results, int n_results)
{
    Graph *body = ir_graph_new(m, pass_unique_graph_name(m, base));
    Value *map = arena_alloc(m->arena, sizeof *map * (size_t)g->values.len);
    for (int i = 0; i < n_args; i++) {
        Type t = ir_value_type(g, args[i]);
        Attrs at = {.index = i, .type = t};
        int32_t id =
            ir_add_typed(body, OP_ARG, NULL, 0, &at, (SrcLoc){0}, &t, 1);
        map[args[i].id] = body->nodes.data[id].out[0];
        ir_value(body, map[args[i].id])->name = ir_value(g, args[i])->name;
    }
    body->n_args = n_args;
    Value in[64];
    Type out[64];
    for (int k = 0; k < n_members; k++) {
        const Node *n = &g->nodes.data[members[k]];
        if (n->n_in > 64 || n->n_out > 64)
            ir_internal_error("fusion", "node %d has too many operands",
                              members[k]);
        for (int i = 0; i < n->n_in; i++)
            in[i] = body_operand(m, g, body, map, n->in[i]);
        for (int i = 0; i < n->n_out; i++)
            out[i] = ir_value_type(g, n->out[i]);
        n = &g->nodes.data[members[k]];
        int32_t id = ir_add_typed(body, n->op, in, n->n_in, &n->attr, n->loc,
                                  out, n->n_out);
        for (int i = 0; i < n->n_out; i++) {
            Value bv = body->nodes.data[id].out[i];
            map[n->out[i].id] = bv;
            ir_value(body, bv)->name = ir_value(g, n->out[i])->name;
        }
    }
    for (int i = 0; i < n_results; i++) {
        if (!map[results[i].id].id)
            ir_internal_error("fusion",
                              "graph %s: body result %%%u is not "
                              "computed by the body",
                              g->name, results[i].id);
        ir_add_result(m, body, map[results[i].id], NULL);
    }
    return body;
}

void pass_place_new_nodes(Graph *g, int32_t n_old, const int32_t *after)
{
    int32_t n = g->nodes.len, n_new = n - n_old;
    if (n_new <= 0)
        return;
    Node *old = arena_alloc(g->arena, sizeof *old * (size_t)n);
    memcpy(old, g->nodes.data, sizeof *old * (size_t)n);
    /* new nodes grouped by anchor, each group in creation order */
    int32_t *start =
        arena_alloc(g->arena, sizeof(int32_t) * (size_t)(n_old + 2));
    int32_t *order = arena_alloc(g->arena, sizeof(int32_t) * (size_t)n_new);
    for (int32_t j = 0; j < n_new; j++) {
        if (after[j] < 0 || after[j] >= n_old)
            ir_internal_error("fusion", "graph %s: new node %d anchored at %d",
                              g->name, n_old + j, after[j]);
        start[after[j] + 1]++;
    }
    for (int32_t i = 0; i < n_old; i++)
        start[i + 1] += start[i];
    int32_t *fill =
        arena_alloc(g->arena, sizeof(int32_t) * (size_t)(n_old + 1));
    for (int32_t j = 0; j < n_new; j++)
        order[start[after[j]] + fill[after[j]]++] = n_old + j;
    int32_t w = 0;
    for (int32_t i = 0; i < n_old; i++) {
        for (int32_t k = -1; k < start[i + 1] - start[i]; k++) {
            Node nd = old[k < 0 ? i : order[start[i] + k]];
            for (int32_t r = 0; r < nd.n_out; r++)
                g->values.data[nd.out[r].id].def = w;
            g->nodes.data[w++] = nd;
        }
    }
}

bool pass_fuse_graphs(Module *m, PassCtx *ctx, PassGraphFn fuse)
{
    if (ctx->no_fuse)
        return false;
    bool *is_body = pass_fusion_bodies(m);
    int32_t n_graphs = m->graphs.len;
    bool changed = false;
    for (int32_t gi = 0; gi < n_graphs; gi++)
        if (!is_body[gi])
            changed |= fuse(m, m->graphs.data[gi]);
    if (changed)
        pass_dce(m, ctx);
    return changed;
}

void pass_place_and_redirect(Graph *g, int32_t n_old, const int32_t *after,
                             const Value *from, const Value *to, int32_t n)
{
    pass_place_new_nodes(g, n_old, after);
    Value *map = arena_alloc(g->arena, sizeof *map * (size_t)g->values.len);
    for (int32_t i = 0; i < n; i++)
        map[from[i].id] = to[i];
    pass_apply_value_map(g, map);
}

int32_t pass_scans_running(const Module *m, int32_t body)
{
    int32_t count = 0;
    for (int32_t gi = 0; gi < m->graphs.len; gi++) {
        const Graph *g = m->graphs.data[gi];
        for (int32_t k = 0; k < g->nodes.len; k++)
            count += g->nodes.data[k].op == OP_SCAN &&
                     g->nodes.data[k].attr.graph == body;
    }
    return count;
}
