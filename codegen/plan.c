/* plan.c — the liveness-based static memory plan of the workspace.
 *
 * layout.c used to give every intermediate value its own slot; this file
 * decides, at compile time, where each one goes so that values whose
 * lifetimes do not meet share memory.  It runs in codegen (not as a pass
 * over the IR) because only codegen knows which values own memory and
 * which are views (reshape, dropout outside training, a transpose folded
 * into its matmul, a scan's final carries), what scratch a node needs, and
 * in which order the walker (lower.c) and the scan loop (scan.c) emit the
 * nodes of each entry point.
 *
 * 1. Buffers: one per value that owns a slot, one per node scratch.
 * 2. Liveness: the emission of forward, then of backward (training API),
 *    is simulated node by node with a global tick counter.  A node at tick
 *    t defines its results at t and reads its operands at t; a scan node
 *    takes a tick, its body's ticks, and a closing tick, so its inputs,
 *    results and carry buffers live across the loop while the body's
 *    values live within one step (and reuse their memory every step).
 *    A view's reads extend its base's life.  Results the entry point
 *    copies out (outputs, the loss and gradients, a body's carries and
 *    per-step outputs) are read at one more tick after the graph's last
 *    node.  Each emission of a graph gives each of its buffers one
 *    interval [first touch, last touch].
 * 3. In place: a unary or binary elementwise result, or a result of a
 *    fused node without a reduction, may take the bytes of an operand of
 *    as many elements that dies at that node in every emission (its
 *    intervals meet the result's only there); such chains form groups
 *    placed as one.
 * 4. Placement (greedy by size, as TFLite's planner): groups largest
 *    first; each goes into the smallest gap, between the groups already
 *    placed that it conflicts with, that holds it, or on top of them.
 *
 * For example, with outputs %3 and %4 (copied out at tick 4; ticks
 * counted from relu's),
 *     %1 = relu %0 ; %2 = exp %1 ; %3 = neg %2 ; %4 = log %1
 * gives %1 [0,3], %2 [1,2], %3 [2,4], %4 [3,4]: %1 is still
 * live at exp, so %2 takes other bytes; neg writes over %2, which dies
 * there; log writes over %1: two slots instead of four. */
#include "codegen/plan.h"

#include <stdlib.h>

#include "codegen/cg.h"

static int64_t align_up(int64_t n)
{
    return (n + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
}

typedef struct Touch {
    int buf;
    CgInterval iv;
} Touch;

/* A result that could be written over operand `op` at `tick`. */
typedef struct InPlace {
    int res, op;
    int32_t tick;
} InPlace;

typedef struct Sim {
    const Module *m;
    CgPlan *p;
    int **vbuf; /* [graph][value]: buffer of the value's slot, or -1 */
    int **sbuf; /* [graph][node]: buffer of the node's scratch, or -1 */
    bool training;
    int32_t tick;
    Touch *touches; /* one interval per buffer per emission */
    int n_touches, cap_touches;
    InPlace *cands; /* in-place candidates, in emission order */
    int n_cands, cap_cands;
} Sim;

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        ir_internal_error("plan", "out of memory");
    return p;
}

/* Views own no memory: the walker points them at their base. */
static bool is_view(const Sim *s, const Graph *g, const Node *n)
{
    return n->op == OP_RESHAPE || (n->op == OP_DROPOUT && !s->training) ||
           (n->op == OP_TRANSPOSE && cg_transpose_folds(NULL, g, n));
}

static int new_buffer(CgPlan *p, int cap, int graph, int index, bool scratch,
                      int64_t bytes)
{
    if (p->n_bufs >= cap)
        ir_internal_error("plan", "buffer count");
    CgBuffer *b = &p->bufs[p->n_bufs];
    *b = (CgBuffer){.graph = graph,
                    .index = index,
                    .scratch = scratch,
                    .bytes = align_up(bytes),
                    .off = CG_NO_SLOT,
                    .inplace_of = -1};
    return p->n_bufs++;
}

/* [graph id]: the graph is the body of a fused or matmul_epilogue node,
 * whose values fused.c keeps in registers (they own no memory). */
static bool *fused_bodies(const Module *m, Arena *a)
{
    bool *body = arena_alloc(a, sizeof(bool) * (size_t)(m->graphs.len + 1));
    for (int gi = 0; gi < m->graphs.len; gi++)
        body[gi] = false;
    for (int gi = 0; gi < m->graphs.len; gi++) {
        const Graph *g = m->graphs.data[gi];
        for (int ni = 0; ni < g->nodes.len; ni++) {
            const Node *n = &g->nodes.data[ni];
            if ((n->op == OP_FUSED || n->op == OP_MATMUL_EPILOGUE) &&
                n->attr.graph > 0 && n->attr.graph < m->graphs.len)
                body[n->attr.graph] = true;
        }
    }
    return body;
}

/* One buffer per value that owns a slot and per node scratch; `unplanned`
 * is what one slot each (the layout before planning) takes. */
static void make_buffers(Sim *s, Arena *a)
{
    const Module *m = s->m;
    int cap = 0;
    for (int gi = 0; gi < m->graphs.len; gi++)
        cap += m->graphs.data[gi]->values.len + m->graphs.data[gi]->nodes.len;
    s->p->bufs = arena_alloc(a, sizeof(CgBuffer) * (size_t)(cap + 1));
    s->vbuf = arena_alloc(a, sizeof(int *) * (size_t)m->graphs.len);
    bool *in_registers = fused_bodies(m, a);
    s->sbuf = arena_alloc(a, sizeof(int *) * (size_t)m->graphs.len);
    for (int gi = 0; gi < m->graphs.len; gi++) {
        const Graph *g = m->graphs.data[gi];
        int *vb = arena_alloc(a, sizeof(int) * (size_t)(g->values.len + 1));
        int *sb = arena_alloc(a, sizeof(int) * (size_t)(g->nodes.len + 1));
        for (int v = 0; v < g->values.len; v++)
            vb[v] = -1;
        for (int ni = 0; ni < g->nodes.len && !in_registers[gi]; ni++) {
            const Node *n = &g->nodes.data[ni];
            for (int r = 0; r < n->n_out; r++) {
                if (!cg_value_owns_slot(m, g, n, r))
                    continue;
                Type t = ir_value_type(g, n->out[r]);
                int64_t bytes = ir_type_numel(&t) * 4;
                s->p->unplanned += align_up(bytes);
                if (!(n->op == OP_TRANSPOSE && cg_transpose_folds(NULL, g, n)))
                    vb[n->out[r].id] = new_buffer(s->p, cap, gi, n->out[r].id,
                                                  false, bytes);
            }
            int64_t sc = cg_node_scratch_bytes(m, g, n);
            s->p->unplanned += align_up(sc);
            sb[ni] = sc ? new_buffer(s->p, cap, gi, ni, true, sc) : -1;
        }
        s->vbuf[gi] = vb;
        s->sbuf[gi] = sb;
    }
}

/* Per emission of one graph: the first and last tick of each buffer. */
typedef struct Span {
    int32_t *lo, *hi; /* indexed by buffer; lo < 0: untouched */
} Span;

static void touch(Span *sp, int buf, int32_t t)
{
    if (buf < 0)
        return;
    if (sp->lo[buf] < 0 || t < sp->lo[buf])
        sp->lo[buf] = t;
    if (t > sp->hi[buf])
        sp->hi[buf] = t;
}

static void push_touch(Sim *s, int buf, int32_t lo, int32_t hi)
{
    if (s->n_touches == s->cap_touches) {
        s->cap_touches = s->cap_touches ? 2 * s->cap_touches : 256;
        s->touches = realloc(s->touches, sizeof(Touch) * (size_t)s->cap_touches);
        if (!s->touches)
            ir_internal_error("plan", "out of memory");
    }
    s->touches[s->n_touches++] = (Touch){buf, {lo, hi}};
}

static void sim_graph(Sim *s, const Graph *g);

static void push_candidate(Sim *s, int res, int op, int32_t tick)
{
    if (s->n_cands == s->cap_cands) {
        s->cap_cands = s->cap_cands ? 2 * s->cap_cands : 64;
        s->cands = realloc(s->cands, sizeof(InPlace) * (size_t)s->cap_cands);
        if (!s->cands)
            ir_internal_error("plan", "out of memory");
    }
    s->cands[s->n_cands++] = (InPlace){res, op, tick};
}

/* How many results of n are written elementwise, each element after the
 * operand elements at its index are read: unary and binary ops
 * (elementwise.c), and a fused node without a reduction (fused.c
 * evaluates its whole body per element before storing). */
static int elementwise_results(const Module *m, const Node *n)
{
    if (cg_lower[n->op] == cg_lower_unary || cg_lower[n->op] == cg_lower_binary)
        return 1;
    if (n->op != OP_FUSED)
        return 0;
    const Graph *body = m->graphs.data[n->attr.graph];
    for (int ni = 0; ni < body->nodes.len; ni++)
        if (ir_op_info[body->nodes.data[ni].op].flags & OPF_REDUCE)
            return 0;
    return n->n_out;
}

/* The unary and binary elementwise lowerings (elementwise.c) load each
 * operand element and store the result element at the same index in one
 * iteration, so the result may overwrite an operand of as many elements
 * (equal counts mean equal indices under broadcasting).  Whether the
 * operand dies here is decided once all emissions are known. */
static void note_in_place(Sim *s, const Graph *g, const Node *n,
                          const int *root, int32_t tick)
{
    int n_res = elementwise_results(s->m, n);
    for (int r = 0; r < n_res; r++) {
        int res = s->vbuf[g->id][n->out[r].id];
        Type out = ir_value_type(g, n->out[r]);
        for (int i = 0; res >= 0 && i < n->n_in; i++) {
            Type t = ir_value_type(g, n->in[i]);
            int op = root[n->in[i].id];
            if (op >= 0 && !s->p->bufs[op].scratch &&
                s->p->bufs[op].bytes == s->p->bufs[res].bytes &&
                ir_type_numel(&t) == ir_type_numel(&out))
                push_candidate(s, res, op, tick);
        }
    }
}

/* One node: its results (or their views' bases) and scratch from `start`,
 * its operands read up to `end`. */
static void sim_node(Sim *s, const Graph *g, int ni, int *root, Span *sp)
{
    const Node *n = &g->nodes.data[ni];
    int32_t start = s->tick++, end = start;
    if (n->op == OP_SCAN) {
        sim_graph(s, s->m->graphs.data[n->attr.graph]);
        end = s->tick++;
    }
    for (int i = 0; i < n->n_in; i++)
        touch(sp, root[n->in[i].id], end);
    int sc = s->sbuf[g->id][ni];
    touch(sp, sc, start);
    touch(sp, sc, end);
    for (int r = 0; r < n->n_out; r++) {
        int b = s->vbuf[g->id][n->out[r].id];
        if (is_view(s, g, n))
            b = root[n->in[0].id];
        else if (n->op == OP_SCAN && r < n->attr.n_carry)
            b = sc; /* the final carries are views of the carry buffers */
        root[n->out[r].id] = b;
        touch(sp, b, start);
        touch(sp, b, end);
    }
    note_in_place(s, g, n, root, start);
}

static void sim_graph(Sim *s, const Graph *g)
{
    int nb = s->p->n_bufs;
    bool *live = cg_live_nodes(s->m, g, s->training);
    int *root = xcalloc((size_t)g->values.len + 1, sizeof *root);
    Span sp = {xcalloc((size_t)nb, sizeof(int32_t)),
               xcalloc((size_t)nb, sizeof(int32_t))};
    for (int v = 0; v < g->values.len; v++)
        root[v] = -1;
    for (int b = 0; b < nb; b++)
        sp.lo[b] = sp.hi[b] = -1;
    for (int ni = 0; ni < g->nodes.len; ni++)
        if (live[ni])
            sim_node(s, g, ni, root, &sp);
    int first = g->id == 0 && s->training ? s->m->n_outputs : 0;
    int n_res = g->id == 0 && !s->training ? s->m->n_outputs : g->results.len;
    int32_t out = s->tick++;
    for (int r = first; r < n_res; r++)
        touch(&sp, root[g->results.data[r].id], out);
    for (int b = 0; b < nb; b++)
        if (sp.lo[b] >= 0)
            push_touch(s, b, sp.lo[b], sp.hi[b]);
    free(sp.lo);
    free(sp.hi);
    free(root);
    free(live);
}

/* Gathers each buffer's intervals into the arena. */
static void collect_intervals(Sim *s, Arena *a)
{
    CgPlan *p = s->p;
    for (int k = 0; k < s->n_touches; k++)
        p->bufs[s->touches[k].buf].n_iv++;
    for (int b = 0; b < p->n_bufs; b++) {
        p->bufs[b].iv = arena_alloc(
            a, sizeof(CgInterval) * (size_t)(p->bufs[b].n_iv + 1));
        p->bufs[b].n_iv = 0;
    }
    for (int k = 0; k < s->n_touches; k++) {
        CgBuffer *b = &p->bufs[s->touches[k].buf];
        b->iv[b->n_iv++] = s->touches[k].iv;
    }
}

bool cg_plan_conflict(const CgBuffer *a, const CgBuffer *b)
{
    for (int i = 0; i < a->n_iv; i++)
        for (int j = 0; j < b->n_iv; j++)
            if (a->iv[i].lo <= b->iv[j].hi && b->iv[j].lo <= a->iv[i].hi)
                return true;
    return false;
}

static bool is_candidate(const Sim *s, int res, int op, int32_t tick)
{
    for (int k = 0; k < s->n_cands; k++)
        if (s->cands[k].res == res && s->cands[k].op == op &&
            s->cands[k].tick == tick)
            return true;
    return false;
}

static int group_of(const CgPlan *p, int b)
{
    while (p->bufs[b].inplace_of >= 0)
        b = p->bufs[b].inplace_of;
    return b;
}

/* Whether res may join op's group: it meets no member of the group except
 * op, and op only at ticks where op's life ends, res's begins and the
 * node there is an in-place candidate. */
static bool may_join(const Sim *s, int res, int op)
{
    const CgPlan *p = s->p;
    const CgBuffer *r = &p->bufs[res];
    int leader = group_of(p, op);
    for (int b = 0; b < p->n_bufs; b++) {
        if (group_of(p, b) != leader)
            continue;
        const CgBuffer *m = &p->bufs[b];
        for (int i = 0; i < r->n_iv; i++)
            for (int j = 0; j < m->n_iv; j++) {
                CgInterval a = r->iv[i], c = m->iv[j];
                if (a.lo > c.hi || c.lo > a.hi)
                    continue;
                if (b != op || c.hi != a.lo || !is_candidate(s, res, op, a.lo))
                    return false;
            }
    }
    return true;
}

/* Joins each candidate result to its operand when legal (one result per
 * operand); a joined buffer then takes its group leader's offset. */
static void join_in_place(Sim *s, bool *claimed)
{
    CgPlan *p = s->p;
    for (int k = 0; k < s->n_cands; k++) {
        int res = s->cands[k].res, op = s->cands[k].op;
        if (res == op || p->bufs[res].inplace_of >= 0 || claimed[op] ||
            group_of(p, op) == res || !may_join(s, res, op))
            continue;
        p->bufs[res].inplace_of = op;
        claimed[op] = true;
    }
}

static const CgPlan *sort_plan;

static int by_size_desc(const void *x, const void *y)
{
    const CgBuffer *a = &sort_plan->bufs[*(const int *)x];
    const CgBuffer *b = &sort_plan->bufs[*(const int *)y];
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    return *(const int *)x - *(const int *)y;
}

static int by_offset(const void *x, const void *y)
{
    const CgBuffer *a = *(const CgBuffer *const *)x;
    const CgBuffer *b = *(const CgBuffer *const *)y;
    return a->off < b->off ? -1 : a->off > b->off;
}

/* The best-fitting gap for b among the placed buffers it conflicts with
 * (sorted by offset), else the top of them. */
static int64_t best_offset(const CgBuffer *b, const CgBuffer **near, int n)
{
    int64_t best = -1, best_gap = INT64_MAX, top = 0;
    for (int i = 0; i < n; i++) {
        int64_t gap = near[i]->off - top;
        if (gap >= b->bytes && gap < best_gap) {
            best = top;
            best_gap = gap;
        }
        if (near[i]->off + near[i]->bytes > top)
            top = near[i]->off + near[i]->bytes;
    }
    return best >= 0 ? best : top;
}

/* One unit per group of buffers joined in place: the leader's size and
 * the union of the members' intervals. */
static CgBuffer *make_units(const CgPlan *p)
{
    CgBuffer *units = xcalloc((size_t)p->n_bufs, sizeof *units);
    for (int b = 0; b < p->n_bufs; b++) {
        units[b] = p->bufs[b];
        units[b].n_iv = 0;
    }
    for (int b = 0; b < p->n_bufs; b++)
        units[group_of(p, b)].n_iv += p->bufs[b].n_iv;
    for (int b = 0; b < p->n_bufs; b++) {
        units[b].iv = xcalloc((size_t)units[b].n_iv + 1, sizeof(CgInterval));
        units[b].n_iv = 0;
    }
    for (int b = 0; b < p->n_bufs; b++) {
        CgBuffer *u = &units[group_of(p, b)];
        for (int i = 0; i < p->bufs[b].n_iv; i++)
            u->iv[u->n_iv++] = p->bufs[b].iv[i];
    }
    return units;
}

static void place_units(CgPlan *units_plan)
{
    CgPlan *p = units_plan;
    int *order = xcalloc((size_t)p->n_bufs, sizeof *order);
    const CgBuffer **near = xcalloc((size_t)p->n_bufs, sizeof *near);
    const CgBuffer **placed = xcalloc((size_t)p->n_bufs, sizeof *placed);
    int n_order = 0, n_placed = 0;
    for (int b = 0; b < p->n_bufs; b++)
        if (p->bufs[b].n_iv > 0 && p->bufs[b].inplace_of < 0)
            order[n_order++] = b;
    sort_plan = p;
    qsort(order, (size_t)n_order, sizeof *order, by_size_desc);
    for (int k = 0; k < n_order; k++) {
        CgBuffer *b = &p->bufs[order[k]];
        int n_near = 0;
        for (int j = 0; j < n_placed; j++)
            if (cg_plan_conflict(b, placed[j]))
                near[n_near++] = placed[j];
        qsort(near, (size_t)n_near, sizeof *near, by_offset);
        b->off = best_offset(b, near, n_near);
        placed[n_placed++] = b;
        if (b->off + b->bytes > p->workspace)
            p->workspace = b->off + b->bytes;
    }
    free(order);
    free(near);
    free(placed);
}

static void place_buffers(CgPlan *p)
{
    CgBuffer *units = make_units(p);
    CgPlan up = {.bufs = units, .n_bufs = p->n_bufs};
    place_units(&up);
    for (int b = 0; b < p->n_bufs; b++)
        if (p->bufs[b].n_iv > 0)
            p->bufs[b].off = units[group_of(p, b)].off;
    p->workspace = up.workspace;
    for (int b = 0; b < p->n_bufs; b++)
        free(units[b].iv);
    free(units);
}

CgPlan *cg_plan_new(Arena *a, const Module *m)
{
    CgPlan *p = arena_alloc(a, sizeof *p);
    Sim s = {.m = m, .p = p};
    make_buffers(&s, a);
    if (m->graphs.len > 0) {
        sim_graph(&s, m->graphs.data[0]); /* NAME_forward */
        if (cg_has_train(m)) {
            s.training = true; /* NAME_backward */
            sim_graph(&s, m->graphs.data[0]);
        }
    }
    p->n_ticks = s.tick;
    collect_intervals(&s, a);
    free(s.touches);
    bool *claimed = xcalloc((size_t)p->n_bufs, sizeof *claimed);
    join_in_place(&s, claimed);
    free(claimed);
    free(s.cands);
    place_buffers(p);
    return p;
}
