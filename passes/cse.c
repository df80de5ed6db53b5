/* cse.c — common-subexpression elimination, on every graph of the module.
 *
 * Two nodes with the same op, the same operands and equal attributes
 * (ir_attrs_eq) compute the same values, so the later one is dropped and
 * its uses read the earlier one.  Before and after (the graph of
 * tests/passes/cse_example.ir):
 *
 *     %0 = input @x : f32[2, 3]            %0 = input @x : f32[2, 3]
 *     %1 = input @y : f32[2, 3]            %1 = input @y : f32[2, 3]
 *     %2 = add %0, %1 : f32[2, 3]          %2 = add %0, %1 : f32[2, 3]
 *     %3 = add %1, %0 : f32[2, 3]    =>    %3 = relu %2 : f32[2, 3]
 *     %4 = relu %2 : f32[2, 3]             %4 = mul %3, %2 : f32[2, 3]
 *     %5 = mul %4, %3 : f32[2, 3]          return %4
 *     return %5
 *
 * One forward sweep per graph finds every merge: operands are rewritten to
 * their surviving value before a node is looked up, so chains of copies
 * collapse too.  Commutative binary ops match with swapped operands.
 * Leaves merge only with the same index (input 0 never stands for input 1)
 * and constants only with the same value and type.  A dropout is never
 * merged, nor a scan whose body contains one: each draws its own random
 * mask.  Scans merge only when they run the same body graph on the same
 * operands.  Runs before DCE; it removes the nodes it merges itself. */
#include "passes/pass.h"

#include <string.h>

typedef enum {
    RANDOM_UNKNOWN,
    RANDOM_NO,
    RANDOM_YES,
    RANDOM_VISITING
} RandomState;

/* Whether graph `id` or a body it runs contains a dropout (memoised). */
static bool graph_is_random(const Module *m, int32_t id, RandomState *state)
{
    if (id < 0 || id >= m->graphs.len)
        ir_internal_error("cse", "scan refers to graph %d of %d", id,
                          m->graphs.len);
    if (state[id] == RANDOM_VISITING)
        ir_internal_error("cse", "graph %d runs itself through a scan", id);
    if (state[id] != RANDOM_UNKNOWN)
        return state[id] == RANDOM_YES;
    state[id] = RANDOM_VISITING;
    bool random = false;
    const Graph *g = m->graphs.data[id];
    for (int32_t i = 0; i < g->nodes.len && !random; i++) {
        const Node *n = &g->nodes.data[i];
        random = n->op == OP_DROPOUT ||
                 (n->op == OP_SCAN && graph_is_random(m, n->attr.graph, state));
    }
    state[id] = random ? RANDOM_YES : RANDOM_NO;
    return random;
}

static bool node_mergeable(const Module *m, const Node *n, RandomState *state)
{
    if (n->op == OP_DROPOUT)
        return false;
    if (n->op == OP_SCAN)
        return !graph_is_random(m, n->attr.graph, state);
    return true;
}

static bool op_is_commutative(Op op)
{
    return op == OP_ADD || op == OP_MUL || op == OP_MAXIMUM ||
           op == OP_MINIMUM || op == OP_EQ || op == OP_NE;
}

static uint64_t hash_mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    return h;
}

/* Hashes what nodes_equal compares, order-free for commutative operands. */
static uint64_t node_hash(const Node *n)
{
    uint64_t h = hash_mix((uint64_t)n->op, (uint64_t)n->n_in);
    if (op_is_commutative(n->op) && n->n_in == 2) {
        uint32_t a = n->in[0].id, b = n->in[1].id;
        h = hash_mix(h, (uint64_t)(a < b ? a : b) << 32 | (a < b ? b : a));
    } else {
        for (int32_t k = 0; k < n->n_in; k++)
            h = hash_mix(h, n->in[k].id);
    }
    uint64_t bits;
    memcpy(&bits, &n->attr.value, sizeof bits);
    h = hash_mix(h, bits);
    h = hash_mix(h, (uint64_t)(uint32_t)n->attr.index << 32 |
                        (uint32_t)n->attr.graph);
    return hash_mix(h, (uint64_t)(uint32_t)n->attr.axis << 32 | n->attr.axes);
}

static bool operands_equal(const Node *a, const Node *b)
{
    if (a->n_in != b->n_in)
        return false;
    if (memcmp(a->in, b->in, sizeof *a->in * (size_t)a->n_in) == 0)
        return true;
    return op_is_commutative(a->op) && a->n_in == 2 &&
           a->in[0].id == b->in[1].id && a->in[1].id == b->in[0].id;
}

static bool nodes_equal(const Graph *g, const Node *a, const Node *b)
{
    if (a->op != b->op || a->n_out != b->n_out || !operands_equal(a, b) ||
        !ir_attrs_eq(a->op, &a->attr, &b->attr))
        return false;
    for (int32_t k = 0; k < a->n_out; k++) {
        Type ta = ir_value_type(g, a->out[k]), tb = ir_value_type(g, b->out[k]);
        if (!ir_type_eq(&ta, &tb))
            return false;
    }
    return true;
}

/* Open-addressing table of node indices + 1 (0: empty slot). */
typedef struct NodeTable {
    int32_t *slot;
    uint64_t mask;
} NodeTable;

static NodeTable table_new(Arena *a, int32_t n_nodes)
{
    uint64_t size = 16;
    while (size < 2 * (uint64_t)n_nodes)
        size *= 2;
    return (NodeTable){arena_alloc(a, sizeof(int32_t) * size), size - 1};
}

/* The earlier node equal to node i, or -1 after recording node i. */
static int32_t table_find_or_add(NodeTable *t, const Graph *g, int32_t i)
{
    const Node *n = &g->nodes.data[i];
    for (uint64_t s = node_hash(n) & t->mask;; s = (s + 1) & t->mask) {
        if (t->slot[s] == 0) {
            t->slot[s] = i + 1;
            return -1;
        }
        if (nodes_equal(g, &g->nodes.data[t->slot[s] - 1], n))
            return t->slot[s] - 1;
    }
}

static bool cse_graph(const Module *m, Graph *g, RandomState *state)
{
    Arena *a = m->arena;
    Value *map = arena_alloc(a, sizeof *map * (size_t)g->values.len);
    bool *keep = arena_alloc(a, sizeof *keep * (size_t)(g->nodes.len + 1));
    NodeTable table = table_new(a, g->nodes.len);
    bool merged = false;
    for (int32_t i = 0; i < g->nodes.len; i++) {
        Node *n = &g->nodes.data[i];
        for (int32_t k = 0; k < n->n_in; k++)
            if (map[n->in[k].id].id)
                n->in[k] = map[n->in[k].id];
        keep[i] = true;
        if (!node_mergeable(m, n, state))
            continue;
        int32_t earlier = table_find_or_add(&table, g, i);
        if (earlier < 0)
            continue;
        const Node *e = &g->nodes.data[earlier];
        for (int32_t k = 0; k < n->n_out; k++)
            map[n->out[k].id] = e->out[k];
        keep[i] = false;
        merged = true;
    }
    if (merged) {
        pass_apply_value_map(g, map);
        pass_compact_graph(g, keep);
    }
    return merged;
}

bool pass_cse(Module *m, PassCtx *ctx)
{
    RandomState *state =
        arena_alloc(m->arena, sizeof *state * (size_t)(m->graphs.len + 1));
    bool changed = false;
    for (int32_t i = 0; i < m->graphs.len; i++)
        changed |= cse_graph(m, m->graphs.data[i], state);
    return changed;
}
