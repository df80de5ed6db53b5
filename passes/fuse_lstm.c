/* fuse_lstm.c — recognises a hand-written LSTM cell and turns its
 * pointwise part into one lstm_cell node, then hoists the input projection
 * out of the recurrence.  Runs before autodiff, so that lstm_cell's
 * gradient rule gives one lstm_cell_grad per step (passes/grad_fused.c)
 * and the hoisted projection is differentiated once, as a matmul over all
 * steps, instead of once per step inside the scan's backward.
 *
 * 1. The cell, in the main graph and every scan body, + and * commuted
 *    freely, i, f, g, o being the four quarters of z's last axis taken with
 *    slice nodes (split):
 *
 *        c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
 *        h' = sigmoid(o) * tanh(c')
 *
 *    becomes  h'', c'' = lstm_cell(z, c), placed where c' was; the uses of
 *    h' and c' are redirected, and the slices, sigmoids and tanhs die.
 *
 * 2. The hoist.  In a scan body, when the z of an lstm_cell is a sum (any
 *    association) of matmul(xt, Wx), other terms and captured values b
 *    (loop-invariant biases), with xt a scanned argument read by nothing
 *    else and Wx a captured 2-D weight, the outer graph computes
 *    xp = X @ Wx + b once for all steps (X [T, ..., E] is what the scan
 *    iterates over; matmul broadcasts its 2-D right operand), the scan
 *    iterates over xp instead, and z becomes xp_t + the other terms.
 *    Captures that no longer have a use (Wx, b) are dropped from the scan.
 *    For lstm.nn's cell (body graph, before and after):
 *
 *        %2 = arg 2 : f32[2, 4]      # xt       %2 = arg 2 : f32[2, 8]
 *        %3 = arg 3 : f32[4, 8]      # Wx       %3 = arg 3 : f32[2, 8]  # Wh
 *        %4 = arg 4 : f32[2, 8]      # Wh       %4 = matmul %0, %3
 *        %5 = arg 5 : f32[8]         # b        %5 = add %2, %4
 *        %6 = matmul %2, %3                     %6, %7 = lstm_cell %5, %1
 *        %7 = matmul %0, %4               =>    return %6, %7, %6
 *        %8 = add %6, %7
 *        %9 = add %8, %5
 *        ... slices, sigmoids, tanhs, muls, adds ...
 *        return %22, %19, %22
 *
 *    and in the main graph the scan's operands X, Wx, Wh, b become
 *    xp = add(matmul(X, Wx), b), Wh.
 *
 * Gates in another order, or sigmoid written with exp, are not recognised.
 * Dead nodes are removed by DCE at the end.  docs/fusion.md describes the
 * pass. */
#include "passes/pass.h"

#include <string.h>

/* The defining node of v if it is op, else NULL. */
static Node *def_as(Graph *g, Value v, Op op)
{
    if (v.id == 0)
        return NULL;
    Node *n = ir_def(g, v);
    return n->op == op ? n : NULL;
}

/* ---- 1. the cell ----------------------------------------------------------- */

/* v = slice(z) taking quarter q of z's last axis and all of every other
 * axis; *z is set on the first call (z->id == 0) and must match after. */
static bool is_quarter(Graph *g, Value v, int q, Value *z)
{
    Node *s = def_as(g, v, OP_SLICE);
    if (!s || (z->id != 0 && s->in[0].id != z->id))
        return false;
    Type tz = ir_value_type(g, s->in[0]);
    if (tz.dtype != DT_F32 || tz.rank < 1)
        return false;
    int32_t last = tz.rank - 1;
    int64_t four_h = tz.dims[last], h = four_h / 4;
    if (four_h % 4 != 0 || h == 0)
        return false;
    for (int32_t a = 0; a < last; a++)
        if (s->attr.start[a] != 0 || s->attr.stop[a] != tz.dims[a])
            return false;
    if (s->attr.start[last] != q * h || s->attr.stop[last] != (q + 1) * h)
        return false;
    *z = s->in[0];
    return true;
}

/* v = op(quarter q of z). */
static bool is_gate(Graph *g, Value v, Op op, int q, Value *z)
{
    Node *n = def_as(g, v, op);
    return n && is_quarter(g, n->in[0], q, z);
}

/* v = mul(a, b) in either order, with a = op_a(quarter qa of z) and b the
 * other operand: sets *other to b (when qb < 0) or checks that b is
 * op_b(quarter qb of z). */
static bool is_gated_product(Graph *g, Value v, Op op_a, int qa, Op op_b,
                             int qb, Value *z, Value *other)
{
    Node *n = def_as(g, v, OP_MUL);
    if (!n)
        return false;
    for (int side = 0; side < 2; side++) {
        Value zz = *z;
        Value a = n->in[side], b = n->in[1 - side];
        if (!is_gate(g, a, op_a, qa, &zz))
            continue;
        if (qb >= 0 ? !is_gate(g, b, op_b, qb, &zz) : false)
            continue;
        *z = zz;
        if (other)
            *other = b;
        return true;
    }
    return false;
}

/* Node k is the add of c' = sigmoid(f) * c + sigmoid(i) * tanh(g): sets
 * *z and *c. */
static bool match_cell_state(Graph *g, int32_t k, Value *z, Value *c)
{
    Node *n = &g->nodes.data[k];
    if (n->op != OP_ADD)
        return false;
    for (int side = 0; side < 2; side++) {
        Value zz = IR_NONE, cc = IR_NONE;
        if (is_gated_product(g, n->in[side], OP_SIGMOID, 1, OP_SIGMOID, -1, &zz,
                             &cc) &&
            is_gated_product(g, n->in[1 - side], OP_SIGMOID, 0, OP_TANH, 2, &zz,
                             NULL)) {
            *z = zz;
            *c = cc;
            return true;
        }
    }
    return false;
}

/* The first node after k computing h' = sigmoid(o) * tanh(c'), c' being
 * node k's result; -1 if none. */
static int32_t find_hidden(Graph *g, int32_t k, Value z)
{
    Value cs = g->nodes.data[k].out[0];
    for (int32_t j = k + 1; j < g->nodes.len; j++) {
        Node *n = &g->nodes.data[j];
        if (n->op != OP_MUL)
            continue;
        for (int side = 0; side < 2; side++) {
            Value zz = z;
            Node *t = def_as(g, n->in[1 - side], OP_TANH);
            if (t && t->in[0].id == cs.id &&
                is_gate(g, n->in[side], OP_SIGMOID, 3, &zz))
                return j;
        }
    }
    return -1;
}

/* Fuses the cell whose c' is node k, if it is one; true if it did. */
static bool fuse_cell_at(Module *m, Graph *g, int32_t k)
{
    Value z, c;
    if (!match_cell_state(g, k, &z, &c))
        return false;
    int32_t hk = find_hidden(g, k, z);
    if (hk < 0)
        return false;
    Value ops[2] = {z, c}, cs = g->nodes.data[k].out[0],
          hs = g->nodes.data[hk].out[0];
    Type in_types[2] = {ir_value_type(g, z), ir_value_type(g, c)}, out[2];
    Type tc = ir_value_type(g, cs), th = ir_value_type(g, hs);
    Attrs attr;
    memset(&attr, 0, sizeof attr);
    char err[256];
    if (ir_infer(m, OP_LSTM_CELL, in_types, 2, &attr, out, 2, err,
                 sizeof err) != 2 ||
        !ir_type_eq(&out[0], &th) || !ir_type_eq(&out[1], &tc))
        return false;
    int32_t first = g->nodes.len;
    ir_add_typed(g, OP_LSTM_CELL, ops, 2, &attr, g->nodes.data[k].loc, out, 2);
    Node *cell = &g->nodes.data[first];
    Value h2 = cell->out[0], c2 = cell->out[1];
    ir_value(g, h2)->name = ir_value(g, hs)->name;
    ir_value(g, c2)->name = ir_value(g, cs)->name;
    pass_move_nodes_before(g, first, k);
    pass_replace_uses(g, hs, h2);
    pass_replace_uses(g, cs, c2);
    return true;
}

static bool fuse_cells(Module *m, Graph *g)
{
    bool changed = false;
    /* A fused cell goes to index k, pushing its old c' to k + 1, which
     * then has no use left but the dead h' chain: skip it. */
    for (int32_t k = 0; k < g->nodes.len; k++)
        if (fuse_cell_at(m, g, k)) {
            changed = true;
            k++;
        }
    return changed;
}

/* ---- 2. the hoist ---------------------------------------------------------- */

#define MAX_TERMS 16

/* The terms of the sum v, in order: internal add nodes must be read only
 * once and have v's type (no broadcasting inside the tree).  False if
 * there are too many. */
static bool sum_terms(Graph *g, const int32_t *uses, Value v, const Type *tz,
                      bool root, Value *terms, int *n)
{
    Node *a = def_as(g, v, OP_ADD);
    Type tv = ir_value_type(g, v);
    if (a && ir_type_eq(&tv, tz) && (root || uses[v.id] == 1))
        return sum_terms(g, uses, a->in[0], tz, false, terms, n) &&
               sum_terms(g, uses, a->in[1], tz, false, terms, n);
    if (*n == MAX_TERMS)
        return false;
    terms[(*n)++] = v;
    return true;
}

/* v is the body's argument in [lo, hi): its index, else -1. */
static int32_t arg_index(Graph *g, Value v, int32_t lo, int32_t hi)
{
    Node *a = def_as(g, v, OP_ARG);
    return a && a->attr.index >= lo && a->attr.index < hi ? a->attr.index : -1;
}

/* The index of the node defining v. */
static int32_t def_index(Graph *g, Value v) { return ir_value(g, v)->def; }

/* Tries to hoist the input projection of the cell at body node ck out of
 * the scan at node si of graph outer.  Returns the number of nodes added
 * before the scan in outer (0: nothing done). */
static int32_t hoist_cell(Module *m, Graph *outer, int32_t si, Graph *body,
                          int32_t ck)
{
    Node *scan = &outer->nodes.data[si];
    int32_t n_carry = scan->attr.n_carry, n_over = scan->attr.n_over;
    int32_t n_args = body->n_args;
    int32_t *uses = pass_use_counts(body);
    Value z = body->nodes.data[ck].in[0];
    Type tz = ir_value_type(body, z);
    Value terms[MAX_TERMS];
    int n = 0;
    if (!sum_terms(body, uses, z, &tz, true, terms, &n) || n < 2)
        return 0;

    /* The projection: matmul(xt, Wx), read only by the sum. */
    int proj = -1;
    int32_t xi = -1, wi = -1;
    for (int t = 0; t < n && proj < 0; t++) {
        Node *mm = def_as(body, terms[t], OP_MATMUL);
        Type tt = ir_value_type(body, terms[t]);
        if (!mm || uses[terms[t].id] != 1 || !ir_type_eq(&tt, &tz))
            continue;
        xi = arg_index(body, mm->in[0], n_carry, n_carry + n_over);
        wi = arg_index(body, mm->in[1], n_carry + n_over, n_args);
        Type tw = ir_value_type(body, mm->in[1]);
        if (xi >= 0 && wi >= 0 && uses[mm->in[0].id] == 1 && tw.rank == 2)
            proj = t;
    }
    if (proj < 0)
        return 0;
    /* The biases: captured values that broadcast to z's type without
     * needing the step axis. */
    bool hoisted[MAX_TERMS] = {false};
    hoisted[proj] = true;
    for (int t = 0; t < n; t++) {
        Type tt = ir_value_type(body, terms[t]);
        if (!hoisted[t] && tt.rank <= tz.rank &&
            arg_index(body, terms[t], n_carry + n_over, n_args) >= 0)
            hoisted[t] = true;
    }

    /* The outer graph: xp = X @ Wx + b..., checked to be [T] ++ z's type. */
    Value *scan_in = scan->in; /* in the arena: ir_add may move scan */
    SrcLoc loc = scan->loc;
    Value xv = scan_in[xi], wv = scan_in[wi];
    Type tx = ir_value_type(outer, xv);
    Type want = tx;
    if (tz.rank + 1 > IR_MAX_RANK)
        return 0;
    want.rank = tz.rank + 1;
    memcpy(&want.dims[1], tz.dims, sizeof(int64_t) * (size_t)tz.rank);
    int32_t first = outer->nodes.len, first_value = outer->values.len;
    char err[256];
    Value ops[2] = {xv, wv};
    Value xp =
        ir_add(m, outer, OP_MATMUL, ops, 2, NULL, loc, NULL, err, sizeof err);
    for (int t = 0; t < n && xp.id; t++)
        if (hoisted[t] && t != proj) {
            int32_t bi = ir_def(body, terms[t])->attr.index;
            Value add_ops[2] = {xp, scan_in[bi]};
            xp = ir_add(m, outer, OP_ADD, add_ops, 2, NULL, loc, NULL, err,
                        sizeof err);
        }
    Type txp = xp.id ? ir_value_type(outer, xp) : tx;
    if (!xp.id || !ir_type_eq(&txp, &want)) {
        outer->nodes.len = first; /* nothing refers to them yet */
        outer->values.len = first_value;
        return 0;
    }
    pass_move_nodes_before(outer, first, si);
    int32_t added = outer->nodes.len - first;
    scan_in[xi] = xp;

    /* The body: xt becomes xp_t, and z the sum of xp_t and the terms that
     * stay, in their order. */
    Node *xarg = ir_def(body, ir_def(body, terms[proj])->in[0]);
    Value xt = xarg->out[0];
    ir_value(body, xt)->type = tz;
    if (xarg->attr.type.rank != 0)
        xarg->attr.type = tz; /* the builder keeps a leaf's type there too */
    Value sum = IR_NONE;
    int32_t zk = def_index(body, z), bfirst = body->nodes.len;
    for (int t = 0; t < n; t++) {
        if (hoisted[t] && t != proj)
            continue;
        Value term = t == proj ? xt : terms[t];
        if (!sum.id) {
            sum = term;
            continue;
        }
        Value add_ops[2] = {sum, term};
        sum = ir_add(m, body, OP_ADD, add_ops, 2, NULL, ir_def(body, z)->loc,
                     NULL, err, sizeof err);
        if (!sum.id)
            ir_internal_error("fuse-lstm", "graph %s: rebuilding z: %s",
                              body->name, err);
    }
    if (body->nodes.len > bfirst) {
        ir_value(body, sum)->name = ir_value(body, z)->name;
        pass_move_nodes_before(body, bfirst, zk);
    }
    pass_replace_uses(body, z, sum);
    return added;
}

/* Drops the captured arguments of body that nothing reads any more, and
 * the matching operands of the scan node at outer's node si. */
static void drop_unused_captures(Graph *outer, int32_t si, Graph *body)
{
    Node *scan = &outer->nodes.data[si];
    int32_t first_capture = scan->attr.n_carry + scan->attr.n_over;
    int32_t *uses = pass_use_counts(body);
    int32_t *new_index = arena_alloc(
        body->arena, sizeof *new_index * (size_t)(body->n_args + 1));
    bool *keep =
        arena_alloc(body->arena, sizeof *keep * (size_t)(body->nodes.len + 1));
    bool dropped = false;
    for (int32_t k = 0; k < body->nodes.len; k++) {
        const Node *n = &body->nodes.data[k];
        keep[k] = !(n->op == OP_ARG && n->attr.index >= first_capture &&
                    uses[n->out[0].id] == 0);
        dropped |= !keep[k];
        if (n->op == OP_ARG)
            new_index[n->attr.index] = keep[k] ? 0 : -1;
    }
    if (!dropped)
        return;
    int32_t w = 0;
    for (int32_t i = 0; i < body->n_args; i++) {
        if (new_index[i] < 0)
            continue;
        new_index[i] = w;
        scan->in[w++] = scan->in[i];
    }
    scan->n_in = w;
    body->n_args = w;
    pass_compact_graph(body, keep);
    for (int32_t k = 0; k < body->nodes.len; k++)
        if (body->nodes.data[k].op == OP_ARG)
            body->nodes.data[k].attr.index =
                new_index[body->nodes.data[k].attr.index];
}

/* Hoists out of every scan of graph outer; the bodies changed are marked
 * in hoisted (by graph id). */
static bool hoist_graph(Module *m, Graph *outer, const bool *skip,
                        bool *hoisted)
{
    bool changed = false;
    for (int32_t si = 0; si < outer->nodes.len; si++) {
        Node *scan = &outer->nodes.data[si];
        int32_t id = scan->attr.graph;
        if (scan->op != OP_SCAN || skip[id] || pass_scans_running(m, id) != 1)
            continue;
        Graph *body = m->graphs.data[id];
        for (int32_t ck = 0; ck < body->nodes.len; ck++) {
            if (body->nodes.data[ck].op != OP_LSTM_CELL)
                continue;
            int32_t added = hoist_cell(m, outer, si, body, ck);
            if (added > 0) {
                si += added;
                hoisted[id] = changed = true;
            }
        }
    }
    return changed;
}

bool pass_fuse_lstm(Module *m, PassCtx *ctx)
{
    if (ctx->no_fuse)
        return false;
    bool *skip = pass_fusion_bodies(m);
    bool changed = false;
    for (int32_t i = 0; i < m->graphs.len; i++)
        if (!skip[i])
            changed |= fuse_cells(m, m->graphs.data[i]);

    /* A hoist leaves the old sum dead but still counted as a use, which
     * would stop a second projection of the same z (two scanned inputs)
     * from being hoisted: repeat after DCE until nothing is left. */
    int32_t n_graphs = m->graphs.len;
    bool *hoisted = arena_alloc(m->arena, sizeof *hoisted * (size_t)n_graphs);
    Graph **bodies = arena_alloc(m->arena, sizeof *bodies * (size_t)n_graphs);
    for (int32_t i = 0; i < n_graphs; i++)
        bodies[i] = m->graphs.data[i];
    for (bool again = true; again;) {
        again = false;
        bool *round = arena_alloc(m->arena, sizeof *round * (size_t)n_graphs);
        for (int32_t i = 0; i < m->graphs.len; i++)
            if (!skip[i] && hoist_graph(m, m->graphs.data[i], skip, round))
                again = changed = true;
        for (int32_t i = 0; i < m->graphs.len; i++)
            for (int32_t j = 0; j < n_graphs; j++)
                if (round[i] && bodies[j] == m->graphs.data[i])
                    hoisted[j] = true;
        if (changed)
            pass_dce(m, ctx);
        skip = pass_fusion_bodies(m);
    }
    if (!changed)
        return false;

    /* DCE may renumber the graphs: find the hoisted bodies by pointer. */
    for (int32_t gi = 0; gi < m->graphs.len; gi++) {
        Graph *g = m->graphs.data[gi];
        for (int32_t k = 0; k < g->nodes.len; k++) {
            if (g->nodes.data[k].op != OP_SCAN)
                continue;
            Graph *body = m->graphs.data[g->nodes.data[k].attr.graph];
            for (int32_t i = 0; i < n_graphs; i++)
                if (hoisted[i] && bodies[i] == body)
                    drop_unused_captures(g, k, body);
        }
    }
    return true;
}
