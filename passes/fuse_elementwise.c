/* fuse_elementwise.c — chains of elementwise ops as one loop nest.
 *
 * Greedy producer-consumer fusion: a group grows backwards from a sink
 * through the producers of its operands and becomes one fused node whose
 * body graph holds the group's ops; intermediate tensors are never
 * written (tests/passes/fuse-elementwise_chain.ir):
 *
 *     %2 = mul %0, %1 : f32[4, 5]           %2 = fused @fused.0 %0, %1
 *     %3 = const 1 : f32[]            =>           : f32[4, 5]
 *     %4 = sub %3, %2 : f32[4, 5]           return %2
 *     %5 = exp %4 : f32[4, 5]
 *     return %5                             graph fused.0(args=2) {
 *                                             %0 = arg 0 .. %1 = arg 1 ..
 *                                             %2 = mul %0, %1
 *                                             %3 = const 1 : f32[]
 *                                             %4 = sub %3, %2
 *                                             %5 = exp %4   return %5 }
 *
 * Sinks, taken from the last node backwards: an elementwise node (unary,
 * binary including compares, where) not yet in a group, whose result type
 * is the group's iteration type; or a sum, mean or max whose operand is an
 * elementwise node read only by it, the iteration type being the
 * operand's.  A producer joins when it is elementwise, its result type is
 * exactly the iteration type and every reader of its result is in the
 * group.  Constants are copied into the body; every other operand (any
 * type that broadcasts to the iteration type, i32 included) becomes a body
 * argument, deduplicated, at most 16.  Not fused: a lone elementwise node
 * (nothing to save), a producer read outside the group or of another
 * type (a broadcast), dropout, scans and every other op.  The main graph
 * and scan bodies are rewritten, fused bodies never. */
#include "passes/pass.h"

#include <stdlib.h>

#define MAX_ARGS 16

typedef VEC(Value) ValueVec;
typedef VEC(int32_t) IntVec;

static bool elementwise(Op op)
{
    return (ir_op_info[op].flags & (OPF_UNARY | OPF_BINARY)) || op == OP_WHERE;
}

static bool reduction(Op op)
{
    return op == OP_SUM || op == OP_MEAN || op == OP_MAX;
}

typedef struct Ctx {
    Module *m;
    Graph *g;
    int32_t *uses;
    int32_t *group_of;  /* per node: group number + 1, 0: none */
    int32_t *in_group;  /* per value: reads by the current group's nodes */
    int32_t group;      /* the current group's number + 1 */
} Ctx;

static bool is_member(const Ctx *c, int32_t k)
{
    return c->group_of[k] == c->group;
}

/* The group's arguments if node k joined: the operands that are not
 * group values or constants, in order of first use. */
static int count_args(Ctx *c, const IntVec *members, int32_t extra)
{
    Value seen[MAX_ARGS + 4];
    int n = 0;
    for (int32_t i = -1; i < members->len; i++) {
        int32_t k = i < 0 ? extra : members->data[i];
        if (k < 0)
            continue;
        const Node *nd = &c->g->nodes.data[k];
        for (int j = 0; j < nd->n_in; j++) {
            Value x = nd->in[j];
            const Node *d = ir_def(c->g, x);
            int32_t di = ir_value(c->g, x)->def;
            if (d->op == OP_CONST || is_member(c, di) || di == extra)
                continue;
            bool dup = false;
            for (int s = 0; s < n && !dup; s++)
                dup = seen[s].id == x.id;
            if (dup)
                continue;
            if (n == MAX_ARGS)
                return MAX_ARGS + 1;
            seen[n++] = x;
        }
    }
    return n;
}

static void add_member(Ctx *c, IntVec *members, int32_t k)
{
    const Node *nd = &c->g->nodes.data[k];
    c->group_of[k] = c->group;
    vec_push(c->m->arena, members, k);
    for (int j = 0; j < nd->n_in; j++)
        c->in_group[nd->in[j].id]++;
}

/* The lowest index of a node defining an operand of node k, or lo. */
static int32_t lowest_operand(const Ctx *c, int32_t k, int32_t lo)
{
    const Node *nd = &c->g->nodes.data[k];
    for (int j = 0; j < nd->n_in; j++) {
        int32_t d = c->g->values.data[nd->in[j].id].def;
        lo = d < lo ? d : lo;
    }
    return lo;
}

/* Grows the group backwards from its members: candidates are visited from
 * the highest index down, so when one is considered every reader of its
 * result that could join has been decided. */
static void grow(Ctx *c, IntVec *members, const Type *iter)
{
    int32_t hi = members->data[members->len - 1], lo = hi;
    for (int32_t i = 0; i < members->len; i++)
        lo = lowest_operand(c, members->data[i], lo);
    for (int32_t k = hi - 1; k >= lo; k--) {
        const Node *nd = &c->g->nodes.data[k];
        if (c->group_of[k] || !elementwise(nd->op) || nd->n_out != 1)
            continue;
        Value v = nd->out[0];
        Type t = ir_value_type(c->g, v);
        if (c->in_group[v.id] == 0 || c->in_group[v.id] != c->uses[v.id] ||
            !ir_type_eq(&t, iter))
            continue;
        if (count_args(c, members, k) > MAX_ARGS)
            continue;
        add_member(c, members, k);
        lo = lowest_operand(c, k, lo);
    }
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Builds the fused node of the members (sink last after sorting). */
static void build(Ctx *c, IntVec *members, ValueVec *from, ValueVec *to)
{
    Graph *g = c->g;
    c->group = c->group_of[members->data[0]];
    qsort(members->data, (size_t)members->len, sizeof(int32_t), cmp_i32);
    Value args[MAX_ARGS];
    int n_args = 0;
    for (int32_t i = 0; i < members->len; i++) {
        const Node *nd = &g->nodes.data[members->data[i]];
        for (int j = 0; j < nd->n_in; j++) {
            Value x = nd->in[j];
            int32_t di = ir_value(g, x)->def;
            if (g->nodes.data[di].op == OP_CONST || is_member(c, di))
                continue;
            bool dup = false;
            for (int s = 0; s < n_args && !dup; s++)
                dup = args[s].id == x.id;
            if (!dup)
                args[n_args++] = x;
        }
    }
    int32_t sink = members->data[members->len - 1];
    Value res = g->nodes.data[sink].out[0];
    Graph *body = pass_build_body(c->m, g, "fused", args, n_args,
                                  members->data, members->len, &res, 1);
    Type t = ir_value_type(g, res);
    Attrs a = {.graph = body->id};
    int32_t id = ir_add_typed(g, OP_FUSED, args, n_args, &a,
                              g->nodes.data[sink].loc, &t, 1);
    Value nv = g->nodes.data[id].out[0];
    ir_value(g, nv)->name = ir_value(g, res)->name;
    vec_push(c->m->arena, from, res);
    vec_push(c->m->arena, to, nv);
}

static bool fuse_graph(Module *m, Graph *g)
{
    int32_t n_old = g->nodes.len;
    Ctx c = {
        .m = m,
        .g = g,
        .uses = pass_use_counts(g),
        .group_of = arena_alloc(m->arena, sizeof(int32_t) * (size_t)(n_old + 1)),
        .in_group =
            arena_alloc(m->arena, sizeof(int32_t) * (size_t)(g->values.len + 1)),
    };
    IntVec after = {0};
    VEC(IntVec) found = {0};
    ValueVec from = {0}, to = {0};
    int32_t groups = 0;
    for (int32_t k = n_old - 1; k >= 0; k--) {
        const Node *nd = &g->nodes.data[k];
        if (c.group_of[k] || nd->n_out != 1)
            continue;
        Type iter;
        if (elementwise(nd->op)) {
            iter = ir_value_type(g, nd->out[0]);
        } else if (reduction(nd->op)) {
            Value x = nd->in[0];
            int32_t di = ir_value(g, x)->def;
            if (c.group_of[di] || !elementwise(g->nodes.data[di].op) ||
                c.uses[x.id] != 1)
                continue;
            iter = ir_value_type(g, x);
        } else {
            continue;
        }
        IntVec members = {0};
        c.group = ++groups;
        add_member(&c, &members, k);
        if (count_args(&c, &members, -1) > MAX_ARGS) {
            c.group_of[k] = 0;
        } else {
            grow(&c, &members, &iter);
        }
        /* a lone elementwise node saves nothing; a reduction needs its
         * producer */
        if (members.len < 2) {
            for (int32_t i = 0; i < members.len; i++) {
                const Node *mn = &g->nodes.data[members.data[i]];
                c.group_of[members.data[i]] = 0;
                for (int j = 0; j < mn->n_in; j++)
                    c.in_group[mn->in[j].id]--;
            }
            continue;
        }
        for (int32_t i = 0; i < members.len; i++) {
            const Node *mn = &g->nodes.data[members.data[i]];
            for (int j = 0; j < mn->n_in; j++)
                c.in_group[mn->in[j].id]--;
        }
        vec_push(m->arena, &found, members);
    }
    if (found.len == 0)
        return false;
    /* built in definition order, so fused.0 comes first in the graph */
    for (int32_t i = found.len - 1; i >= 0; i--) {
        build(&c, &found.data[i], &from, &to);
        vec_push(m->arena, &after,
                 found.data[i].data[found.data[i].len - 1]);
    }
    pass_place_and_redirect(g, n_old, after.data, from.data, to.data,
                            from.len);
    return true;
}

bool pass_fuse_elementwise(Module *m, PassCtx *ctx)
{
    return pass_fuse_graphs(m, ctx, fuse_graph);
}
