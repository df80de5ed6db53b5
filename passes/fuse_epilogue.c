/* fuse_epilogue.c — elementwise work on a matmul's product, done as the
 * product is written.
 *
 * A matmul whose product is read only by elementwise ops (a bias add, an
 * activation, the recurrent step's add of a second product, the backward
 * pass's where) becomes one matmul_epilogue node whose body graph applies
 * them: the body's arg 0 is the product, args 1.. the other operands (the
 * extras), and its results are the group's values that are read outside
 * it (tests/passes/fuse-epilogue_bias_relu.ir):
 *
 *     %3 = matmul %0, %1 : f32[4, 6]           %3 = matmul_epilogue @epilogue.0
 *     %4 = add %3, %2 : f32[4, 6]        =>            %0, %1, %2 : f32[4, 6]
 *     %5 = relu %4 : f32[4, 6]                 return %3
 *     return %5
 *
 *     graph epilogue.0(args=2) { %0 = arg 0 : f32[4, 6]
 *       %1 = arg 1 : f32[6]  %2 = add %0, %1  %3 = relu %2  return %3 }
 *
 * A node joins the group when it is elementwise (unary, binary, where),
 * its result has exactly the product's type, and each operand is a group
 * value, a constant (copied into the body) or an extra whose type
 * broadcasts to the product's.  At most 8 extras.  Not fused: a matmul
 * whose product is also read outside the group, or that no elementwise op
 * reads; a node whose result differs from the product's type (a bias that
 * broadcasts the product up); a node that would put the epilogue after a
 * reader of one of its values.  The main graph and scan bodies are
 * rewritten, fused bodies never. */
#include "passes/pass.h"

#include <stdlib.h>
#include <string.h>

#define MAX_EXTRAS 8
#define MAX_GROUP 64

typedef VEC(Value) ValueVec;

typedef struct Group {
    int32_t node[MAX_GROUP]; /* [0]: the matmul; ascending after it */
    int n;
    Value extra[MAX_EXTRAS + 1];
    int n_extra;
} Group;

static bool elementwise(Op op)
{
    return (ir_op_info[op].flags & (OPF_UNARY | OPF_BINARY)) || op == OP_WHERE;
}

/* x's shape broadcasts to p's without growing it (dtypes may differ: a
 * where's condition). */
static bool broadcasts_to(Type x, Type p)
{
    Type b;
    return ir_broadcast_shapes(&x, &p, &b) && b.rank == p.rank &&
           memcmp(b.dims, p.dims, sizeof(int64_t) * (size_t)p.rank) == 0;
}

static bool in_group(const Group *gr, int32_t k)
{
    for (int i = 0; i < gr->n; i++)
        if (gr->node[i] == k)
            return true;
    return false;
}

static bool value_in_group(Graph *g, const Group *gr, Value v)
{
    return in_group(gr, ir_value(g, v)->def);
}

static int32_t sink(const Group *gr)
{
    int32_t s = gr->node[0];
    for (int i = 1; i < gr->n; i++)
        s = gr->node[i] > s ? gr->node[i] : s;
    return s;
}

/* Whether value v is read outside the group (by a node or as a result). */
static bool used_outside(const Group *gr, const PassUsers *u,
                         const int32_t *uses, Value v)
{
    int32_t n = u->start[v.id + 1] - u->start[v.id];
    if (uses[v.id] > n)
        return true;
    for (int32_t i = u->start[v.id]; i < u->start[v.id + 1]; i++)
        if (!in_group(gr, u->node[i]))
            return true;
    return false;
}

/* Every reader of a group value outside the group comes after the sink,
 * where the epilogue goes; the product itself has no outside reader. */
static bool group_valid(Graph *g, const Group *gr, const PassUsers *u,
                        const int32_t *uses)
{
    int32_t s = sink(gr);
    for (int i = 0; i < gr->n; i++) {
        Value v = g->nodes.data[gr->node[i]].out[0];
        for (int32_t j = u->start[v.id]; j < u->start[v.id + 1]; j++)
            if (!in_group(gr, u->node[j]) && u->node[j] < s)
                return false;
    }
    return !used_outside(gr, u, uses, g->nodes.data[gr->node[0]].out[0]);
}

/* Tries to add node k; leaves the group unchanged if it cannot join. */
static bool try_join(Graph *g, Group *gr, const PassUsers *u,
                     const int32_t *uses, const bool *taken, int32_t k)
{
    const Node *n = &g->nodes.data[k];
    Type pt = ir_value_type(g, g->nodes.data[gr->node[0]].out[0]);
    if (taken[k] || in_group(gr, k) || gr->n == MAX_GROUP ||
        !elementwise(n->op) || n->n_out != 1)
        return false;
    Type rt = ir_value_type(g, n->out[0]);
    if (!ir_type_eq(&rt, &pt))
        return false;
    Group next = *gr;
    for (int i = 0; i < n->n_in; i++) {
        Value x = n->in[i];
        if (value_in_group(g, gr, x) || ir_def(g, x)->op == OP_CONST)
            continue;
        if (!broadcasts_to(ir_value_type(g, x), pt))
            return false;
        bool seen = false;
        for (int e = 0; e < next.n_extra; e++)
            seen |= next.extra[e].id == x.id;
        if (seen)
            continue;
        if (next.n_extra == MAX_EXTRAS)
            return false;
        next.extra[next.n_extra++] = x;
    }
    next.node[next.n++] = k;
    if (!group_valid(g, &next, u, uses))
        return false;
    *gr = next;
    return true;
}

/* Grows the group of matmul k through the readers of its values. */
static void grow(Graph *g, Group *gr, const PassUsers *u, const int32_t *uses,
                 const bool *taken)
{
    for (int i = 0; i < gr->n; i++) {
        Value v = g->nodes.data[gr->node[i]].out[0];
        for (int32_t j = u->start[v.id]; j < u->start[v.id + 1]; j++)
            try_join(g, gr, u, uses, taken, u->node[j]);
    }
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Builds the epilogue of group gr; returns the new node's index. */
static int32_t build(Module *m, Graph *g, Group *gr, const PassUsers *u,
                     const int32_t *uses, ValueVec *from, ValueVec *to)
{
    qsort(gr->node + 1, (size_t)(gr->n - 1), sizeof(int32_t), cmp_i32);
    Value args[MAX_EXTRAS + 1], results[MAX_GROUP];
    int n_res = 0;
    args[0] = g->nodes.data[gr->node[0]].out[0];
    for (int e = 0; e < gr->n_extra; e++)
        args[e + 1] = gr->extra[e];
    for (int i = 1; i < gr->n; i++) {
        Value v = g->nodes.data[gr->node[i]].out[0];
        if (used_outside(gr, u, uses, v))
            results[n_res++] = v;
    }
    Graph *body = pass_build_body(m, g, "epilogue", args, gr->n_extra + 1,
                                  gr->node + 1, gr->n - 1, results, n_res);
    const Node *mm = &g->nodes.data[gr->node[0]];
    Value in[MAX_EXTRAS + 2] = {mm->in[0], mm->in[1]};
    for (int e = 0; e < gr->n_extra; e++)
        in[e + 2] = gr->extra[e];
    Type out[MAX_GROUP];
    for (int i = 0; i < n_res; i++)
        out[i] = ir_value_type(g, results[i]);
    Attrs a = {.graph = body->id};
    int32_t id = ir_add_typed(g, OP_MATMUL_EPILOGUE, in, gr->n_extra + 2, &a,
                              mm->loc, out, n_res);
    for (int i = 0; i < n_res; i++) {
        Value nv = g->nodes.data[id].out[i];
        ir_value(g, nv)->name = ir_value(g, results[i])->name;
        vec_push(m->arena, from, results[i]);
        vec_push(m->arena, to, nv);
    }
    return id;
}

static bool fuse_graph(Module *m, Graph *g)
{
    PassUsers u = pass_users(g);
    int32_t *uses = pass_use_counts(g);
    int32_t n_old = g->nodes.len;
    bool *taken = arena_alloc(m->arena, sizeof(bool) * (size_t)(n_old + 1));
    VEC(int32_t) after = {0};
    ValueVec from = {0}, to = {0};
    for (int32_t k = 0; k < n_old; k++) {
        if (g->nodes.data[k].op != OP_MATMUL || taken[k])
            continue;
        Group gr = {.node = {k}, .n = 1};
        grow(g, &gr, &u, &uses[0], taken);
        if (gr.n < 2)
            continue;
        for (int i = 0; i < gr.n; i++)
            taken[gr.node[i]] = true;
        int32_t anchor = sink(&gr);
        build(m, g, &gr, &u, uses, &from, &to);
        vec_push(m->arena, &after, anchor);
    }
    if (after.len == 0)
        return false;
    pass_place_and_redirect(g, n_old, after.data, from.data, to.data,
                            from.len);
    return true;
}

bool pass_fuse_epilogue(Module *m, PassCtx *ctx)
{
    return pass_fuse_graphs(m, ctx, fuse_graph);
}
