/* autodiff.c — the autodiff pass: reverse-mode differentiation of the
 * model's loss with respect to its trainable params, as ordinary IR.
 *
 * First in the pipeline (autodiff runs on the high-level ops, so that the
 * fusion passes see the backward graph too).  It runs when the model has
 * a `train` line, unless --no-train, and appends to the main graph one
 * result per trainable (not frozen) param, in declaration order, named
 * grad.NAME and of the param's type; m->n_grads records how many.  A
 * param the loss does not depend on gets a zero gradient.  Before and
 * after, on tests/passes/autodiff_example.ir:
 *
 *   %0 = input @x : f32[2, 3]             %0 = input @x : f32[2, 3]
 *   %1 = input @y : i32[2]                %1 = input @y : i32[2]
 *   %2 = param @W : f32[3, 4]             %2 = param @W : f32[3, 4]
 *   %3 = matmul %0, %2 : f32[2, 4]   =>   %3 = matmul %0, %2 : f32[2, 4]
 *   %4 = cross_entropy %3, %1 : f32[]     %4 = cross_entropy %3, %1 : f32[]
 *   return loss=%4                        %5 = softmax %3 axis=1 : f32[2, 4]
 *                                         %6 = one_hot %1 : f32[2, 4]
 *                                         %7 = const 0.5 : f32[]
 *                                         %8 = sub %5, %6 : f32[2, 4]
 *                                         %9 = mul %8, %7 : f32[2, 4]
 *                                         %10 = transpose %0 : f32[3, 2]
 *                                         %11 = matmul %10, %9 : f32[3, 4]
 *                                         return loss=%4, grad.W=%11
 *
 * The engine (grad_engine.c) walks back from the loss through the values
 * that depend on a trainable param, applying the rule table of
 * grad_rules.c; scan is differentiated by a reverse scan (grad_scan.c).
 * Before that, the pass gives every dropout a site number (attr.index) so
 * that the dropout of its gradient reuses its mask, and moves params that
 * a scan body reads directly (hand-written IR; the front end passes them
 * as captured operands) into captured operands, where the scan rule finds
 * them.  docs/autodiff.md has the whole design. */
#include "passes/grad.h"

#include <string.h>

/* ---- dropout sites ------------------------------------------------------- */

/* Numbers the dropouts that have no site yet after the highest site in
 * use, in graph and node order.  Returns whether any was numbered. */
static bool number_dropout_sites(Module *m)
{
    int32_t next = 0;
    bool changed = false;
    for (int pass = 0; pass < 2; pass++)
        for (int32_t gi = 0; gi < m->graphs.len; gi++) {
            Graph *g = m->graphs.data[gi];
            for (int32_t k = 0; k < g->nodes.len; k++) {
                Node *n = &g->nodes.data[k];
                if (n->op != OP_DROPOUT)
                    continue;
                if (pass == 0 && n->attr.index >= next)
                    next = n->attr.index;
                if (pass == 1 && n->attr.index == 0) {
                    n->attr.index = ++next;
                    changed = true;
                }
            }
        }
    return changed;
}

/* ---- params read inside scan bodies -------------------------------------- */

/* Inserts `param @index` as the first node of g; returns its value. */
static Value insert_param_first(Module *m, Graph *g, int32_t index)
{
    Type t = m->params.data[index].type;
    Attrs a = {.index = index, .type = t};
    ir_add_typed(g, OP_PARAM, NULL, 0, &a, (SrcLoc){0}, &t, 1);
    Node param = g->nodes.data[g->nodes.len - 1];
    memmove(&g->nodes.data[1], &g->nodes.data[0],
            sizeof(Node) * (size_t)(g->nodes.len - 1));
    g->nodes.data[0] = param;
    for (int32_t v = 1; v < g->values.len; v++)
        g->values.data[v].def = g->values.data[v].def + 1;
    g->values.data[param.out[0].id].def = 0;
    return param.out[0];
}

/* Appends operand v to scan node k of g. */
static void add_capture(Module *m, Graph *g, int32_t k, Value v)
{
    Node *n = &g->nodes.data[k];
    Value *in = arena_alloc(m->arena, sizeof(Value) * (size_t)(n->n_in + 1));
    memcpy(in, n->in, sizeof(Value) * (size_t)n->n_in);
    in[n->n_in++] = v;
    n->in = in;
}

/* Turns body's trainable PARAM nodes into new args, and gives every scan
 * that runs body the param as an extra captured operand (a param node
 * inserted at the top of the scan's graph, hoisted in turn if that graph
 * is a body too: bodies are visited before the graphs that run them). */
static void hoist_body_params(Module *m, Graph *body)
{
    int32_t first = body->n_args, count = 0;
    int32_t *params =
        arena_alloc(m->arena, sizeof(int32_t) * (size_t)(body->nodes.len + 1));
    for (int32_t k = 0; k < body->nodes.len; k++) {
        Node *n = &body->nodes.data[k];
        if (n->op != OP_PARAM || m->params.data[n->attr.index].frozen)
            continue;
        params[count] = n->attr.index;
        n->op = OP_ARG;
        n->attr.index = first + count++;
    }
    if (count == 0)
        return;
    body->n_args += count;
    for (int32_t gi = 0; gi < m->graphs.len; gi++) {
        Graph *g = m->graphs.data[gi];
        for (int32_t k = 0; k < g->nodes.len; k++) {
            if (g->nodes.data[k].op != OP_SCAN ||
                g->nodes.data[k].attr.graph != body->id)
                continue;
            for (int32_t i = 0; i < count; i++) {
                Value p = insert_param_first(m, g, params[i]);
                add_capture(m, g, ++k, p); /* the scan moved down one */
            }
        }
    }
}

/* Post-order over "runs" edges from graph id: bodies before runners. */
static void visit_bodies(Module *m, int32_t id, bool *seen, int32_t *order,
                         int32_t *n)
{
    if (seen[id])
        return;
    seen[id] = true;
    const Graph *g = m->graphs.data[id];
    for (int32_t k = 0; k < g->nodes.len; k++)
        if (g->nodes.data[k].op == OP_SCAN)
            visit_bodies(m, g->nodes.data[k].attr.graph, seen, order, n);
    order[(*n)++] = id;
}

static void hoist_params(Module *m)
{
    bool *seen = arena_alloc(m->arena, sizeof(bool) * (size_t)m->graphs.len);
    int32_t *order =
        arena_alloc(m->arena, sizeof(int32_t) * (size_t)m->graphs.len);
    int32_t n = 0;
    visit_bodies(m, 0, seen, order, &n);
    for (int32_t i = 0; i < n; i++)
        if (order[i] != 0)
            hoist_body_params(m, m->graphs.data[order[i]]);
}

/* ---- tidying up --------------------------------------------------------------- */

/* Drops the nodes from index `first` on that no result reads (the loss's
 * seed once folded away, recomputed forward values a backward body does
 * not need), keeping args: the rules build freely and this keeps the
 * pass's own output readable without running DCE on the forward. */
static void drop_dead_nodes(Graph *g, int32_t first)
{
    bool *live_v = arena_alloc(g->arena, sizeof(bool) * (size_t)g->values.len);
    bool *keep =
        arena_alloc(g->arena, sizeof(bool) * (size_t)(g->nodes.len + 1));
    bool dead = false;
    for (int32_t r = 0; r < g->results.len; r++)
        live_v[g->results.data[r].id] = true;
    for (int32_t k = g->nodes.len - 1; k >= 0; k--) {
        const Node *n = &g->nodes.data[k];
        keep[k] = k < first || n->op == OP_ARG;
        for (int32_t i = 0; i < n->n_out; i++)
            keep[k] |= live_v[n->out[i].id];
        for (int32_t i = 0; i < n->n_in && keep[k]; i++)
            live_v[n->in[i].id] = true;
        dead |= !keep[k];
    }
    if (dead)
        pass_compact_graph(g, keep);
}

/* ---- the pass --------------------------------------------------------------- */

/* The gradient of param `index`: the sum over its PARAM nodes, or zeros. */
static Value param_gradient(Ad *ad, int32_t index)
{
    Value sum = IR_NONE;
    for (int32_t k = 0; k < ad->n_fwd; k++) {
        const Node *n = &ad->g->nodes.data[k];
        if (n->op != OP_PARAM || n->attr.index != index)
            continue;
        Value g = ad_gradient(ad, n->out[0]);
        if (g.id)
            sum = sum.id ? gb_add(ad, sum, g) : g;
    }
    return sum.id ? sum : gb_zeros(ad, ad->m->params.data[index].type);
}

bool pass_autodiff(Module *m, PassCtx *ctx)
{
    if (ctx->no_train || m->train.opt == OPT_NONE || m->n_grads > 0)
        return false;
    bool changed = number_dropout_sites(m);
    int32_t trainable = 0;
    for (int32_t i = 0; i < m->params.len; i++)
        trainable += !m->params.data[i].frozen;
    if (trainable == 0)
        return changed;
    hoist_params(m);
    Graph *g = m->graphs.data[0];
    bool *source = arena_alloc(m->arena, sizeof(bool) * (size_t)g->values.len);
    for (int32_t k = 0; k < g->nodes.len; k++) {
        const Node *n = &g->nodes.data[k];
        if (n->op == OP_PARAM && !m->params.data[n->attr.index].frozen)
            source[n->out[0].id] = true;
    }
    int32_t n_graphs = m->graphs.len;
    Ad *ad = ad_new(m, g, source);
    Value loss = g->results.data[m->n_outputs];
    if (ad->active[loss.id]) {
        ad_contribute(ad, loss, gb_scalar(ad, 1.0));
        ad_backprop(ad);
    }
    for (int32_t i = 0; i < m->params.len; i++) {
        const ParamDecl *p = &m->params.data[i];
        if (!p->frozen)
            ir_add_result(m, g, param_gradient(ad, i),
                          arena_printf(m->arena, "grad.%s", p->name));
    }
    m->n_grads = trainable;
    drop_dead_nodes(g, ad->n_fwd);
    for (int32_t i = n_graphs; i < m->graphs.len; i++)
        drop_dead_nodes(m->graphs.data[i], 0);
    return true;
}
