/* layout.c — where everything lives inside one model instance.
 *
 * `NAME_new` makes exactly one 64-byte-aligned allocation of
 * CgLayout.size bytes.  This file decides what goes where, statically:
 *
 *   [ param 0 | param 1 | ... | training state | workspace ]
 *
 * every piece starting on a 64-byte boundary.  The training state, present
 * with the training API (cg_has_train), is one gradient buffer per
 * trainable parameter, then each trainable parameter's optimizer state
 * (cg_opt_slots: momentum_buffer, or exp_avg and exp_avg_sq), then one
 * piece holding the step counter (int64_t), the learning rate (double) and
 * NAME_init's seed (uint64_t).  The workspace holds the slots of the
 * intermediate values and the per-node scratch (a scan's two buffers per
 * carry, attention's score matrix) at the offsets of the memory plan
 * (plan.c: liveness over forward and backward, in place where legal,
 * greedy by size), checked by plan_verify.c in debug builds.  Values that
 * own no memory: inputs (forward's arguments), params (their own region),
 * scan body arguments, reshape, a transpose folded into matmul, dropout
 * outside training, a scan's final carries (views of its carry buffers).
 * NAME_init lends the workspace to the initialisers as scratch, so it is
 * at least as large as they need.  cg_print_stats (`--emit stats`) and
 * the header's comment report the bytes of each piece. */
#include "codegen/cg.h"

#include "codegen/plan.h"
#include "runtime/nnc.h"

static int64_t align_up(int64_t n)
{
    return (n + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
}

static int64_t type_bytes(const Type *t) { return ir_type_numel(t) * 4; }

bool cg_value_owns_slot(const Module *m, const Graph *g, const Node *n,
                        int result)
{
    switch (n->op) {
    case OP_INPUT:
    case OP_PARAM:
    case OP_ARG:
    case OP_RESHAPE: return false;
    case OP_DROPOUT: return cg_has_train(m);
    case OP_SCAN: return result >= n->attr.n_carry;
    default: return true;
    }
}

/* A scan keeps, per carry, two buffers of the carry's size: the one read
 * at step t and the one written.  Attention whose batch axes broadcast
 * materialises its scores (the tiled kernel needs no scratch). */
int64_t cg_node_scratch_bytes(const Module *m, const Graph *g, const Node *n)
{
    if (n->op == OP_SCAN) {
        int64_t total = 0;
        for (int i = 0; i < n->attr.n_carry; i++) {
            Type t = ir_value_type(g, n->in[i]);
            total += 2 * align_up(type_bytes(&t));
        }
        return total;
    }
    if (n->op == OP_ATTENTION && !cg_attention_tiled(g, n)) {
        Type s = ir_value_type(g, n->out[0]); /* [..., Tq, dv] */
        Type k = ir_value_type(g, n->in[1]);  /* [..., Tk, d] */
        int64_t tk = k.dims[k.rank - 2];
        return ir_type_numel(&s) / s.dims[s.rank - 1] * tk * 4;
    }
    return 0;
}

/* What the runtime's initialisers need as scratch (orthogonal's QR):
 * NAME_init lends them the workspace, which is made at least this large. */
static int64_t init_scratch_bytes(const Module *m)
{
    int64_t need = 0;
    for (int i = 0; i < m->params.len; i++) {
        const ParamDecl *p = &m->params.data[i];
        int64_t floats = nnc_init_scratch_floats(p->type.rank, p->type.dims,
                                                 (nnc_init_kind)p->init.kind);
        if (floats * 4 > need)
            need = floats * 4;
    }
    return need;
}

/* The workspace: what the plan needs, and at least what the initialisers
 * need. */
static int64_t workspace_bytes(int64_t planned, const Module *m)
{
    int64_t init_need = init_scratch_bytes(m);
    return planned > init_need ? planned : init_need;
}

/* Value slots and scratch from the memory plan (plan.c): offsets inside
 * the workspace, CG_NO_SLOT for what no entry point emits or what is a
 * view. */
static void place_planned(const Module *m, const CgPlan *p, CgLayout *l,
                          Arena *a)
{
    for (int gi = 0; gi < m->graphs.len; gi++) {
        const Graph *g = m->graphs.data[gi];
        l->value_off[gi] = arena_alloc(a, sizeof(int64_t) *
                                              (size_t)(g->values.len + 1));
        l->scratch_off[gi] =
            arena_alloc(a, sizeof(int64_t) * (size_t)(g->nodes.len + 1));
        for (int v = 0; v < g->values.len; v++)
            l->value_off[gi][v] = CG_NO_SLOT;
        for (int ni = 0; ni < g->nodes.len; ni++)
            l->scratch_off[gi][ni] = CG_NO_SLOT;
    }
    for (int b = 0; b < p->n_bufs; b++) {
        const CgBuffer *buf = &p->bufs[b];
        if (buf->off == CG_NO_SLOT)
            continue;
        int64_t *offs = buf->scratch ? l->scratch_off[buf->graph]
                                     : l->value_off[buf->graph];
        offs[buf->index] = l->workspace_off + buf->off;
    }
}

/* The main graph must end with the loss and one gradient per trainable
 * param, of its param's type (the autodiff pass's contract, ir.h). */
static void check_grads(const Module *m)
{
    const Graph *g = m->graphs.data[0];
    int trainable = 0;
    for (int i = 0; i < m->params.len; i++) {
        const ParamDecl *p = &m->params.data[i];
        if (p->frozen)
            continue;
        int r = m->n_outputs + 1 + trainable++;
        if (r >= g->results.len)
            break;
        Type t = ir_value_type(g, g->results.data[r]);
        if (!ir_type_eq(&t, &p->type))
            ir_internal_error("codegen",
                              "gradient result %d does not have "
                              "the type of param '%s'",
                              r, p->name);
    }
    if (trainable != m->n_grads ||
        g->results.len != m->n_outputs + 1 + m->n_grads)
        ir_internal_error("codegen",
                          "%d trainable params and %d gradients, main graph "
                          "has %d results after %d outputs",
                          trainable, m->n_grads, g->results.len, m->n_outputs);
}

static int64_t *no_slots(Arena *a, int n)
{
    int64_t *offs = arena_alloc(a, sizeof(int64_t) * (size_t)(n + 1));
    for (int i = 0; i <= n; i++)
        offs[i] = CG_NO_SLOT;
    return offs;
}

/* Gradients, then optimizer state, of each trainable param; then the step,
 * learning rate and seed in one piece. */
static void place_train_state(const Module *m, CgLayout *l, Arena *a,
                              int64_t *off)
{
    const char *names[CG_MAX_OPT_SLOTS];
    int np = m->params.len;
    l->grad_off = no_slots(a, np);
    l->n_slots = l->train ? cg_opt_slots(&m->train, names) : 0;
    for (int k = 0; k < CG_MAX_OPT_SLOTS; k++)
        l->slot_off[k] = no_slots(a, np);
    l->step_off = l->lr_off = l->seed_off = CG_NO_SLOT;
    if (!l->train)
        return;
    check_grads(m);
    for (int i = 0; i < np; i++) {
        if (m->params.data[i].frozen)
            continue;
        l->grad_off[i] = *off;
        *off += align_up(type_bytes(&m->params.data[i].type));
    }
    for (int i = 0; i < np; i++)
        for (int k = 0; k < l->n_slots && !m->params.data[i].frozen; k++) {
            l->slot_off[k][i] = *off;
            *off += align_up(type_bytes(&m->params.data[i].type));
        }
    l->step_off = *off;
    l->lr_off = *off + 8;
    l->seed_off = *off + 16;
    *off += CG_ALIGN;
}

CgLayout *cg_layout_new(Arena *a, const Module *m)
{
    CgLayout *l = arena_alloc(a, sizeof *l);
    int64_t off = 0;
    l->param_off =
        arena_alloc(a, sizeof(int64_t) * (size_t)(m->params.len + 1));
    for (int i = 0; i < m->params.len; i++) {
        l->param_off[i] = off;
        off += align_up(type_bytes(&m->params.data[i].type));
    }
    l->train = cg_has_train(m);
    place_train_state(m, l, a, &off);
    l->workspace_off = off;
    l->value_off = arena_alloc(a, sizeof(int64_t *) * (size_t)m->graphs.len);
    l->scratch_off = arena_alloc(a, sizeof(int64_t *) * (size_t)m->graphs.len);
    CgPlan *plan = cg_plan_new(a, m);
#ifndef NDEBUG
    cg_plan_verify(plan);
#endif
    place_planned(m, plan, l, a);
    l->plan = plan;
    off += align_up(workspace_bytes(plan->workspace, m));
    l->size = off > 0 ? off : CG_ALIGN;
    return l;
}

/* Bytes of the pieces of one instance, for --emit stats and the header. */
typedef struct CgMemory {
    int64_t params, grads, opt_state, counters, workspace, unplanned, total;
} CgMemory;

static CgMemory memory_of(const Module *m)
{
    Arena *a = arena_new();
    CgLayout *l = cg_layout_new(a, m);
    CgMemory mem = {.total = l->size,
                    .workspace = l->size - l->workspace_off,
                    .unplanned = align_up(
                        workspace_bytes(l->plan->unplanned, m))};
    for (int i = 0; i < m->params.len; i++) {
        int64_t bytes = align_up(type_bytes(&m->params.data[i].type));
        mem.params += bytes;
        if (l->grad_off[i] != CG_NO_SLOT)
            mem.grads += bytes;
        if (l->grad_off[i] != CG_NO_SLOT)
            mem.opt_state += bytes * l->n_slots;
    }
    mem.counters = l->train ? CG_ALIGN : 0;
    arena_free(a);
    return mem;
}

void cg_print_stats(FILE *f, const Module *m)
{
    CgMemory mem = memory_of(m);
    fprintf(f, "model %s: instance memory in bytes\n", m->name);
    fprintf(f, "  parameters       %lld\n", (long long)mem.params);
    fprintf(f, "  gradients        %lld\n", (long long)mem.grads);
    fprintf(f, "  optimizer state  %lld\n", (long long)mem.opt_state);
    fprintf(f, "  step, lr, seed   %lld\n", (long long)mem.counters);
    fprintf(f, "  workspace        %lld (peak, planned by liveness; one slot "
               "per value: %lld)\n",
            (long long)mem.workspace, (long long)mem.unplanned);
    fprintf(f, "  total            %lld\n", (long long)mem.total);
}

void cg_print_memory_comment(FILE *f, const Module *m)
{
    CgMemory mem = memory_of(m);
    fprintf(f,
            "/* One instance is %lld bytes: parameters %lld, gradients %lld, "
            "optimizer\n * state %lld, workspace %lld (planned by liveness; "
            "peak of the\n * intermediates of forward and backward). */\n",
            (long long)mem.total, (long long)mem.params, (long long)mem.grads,
            (long long)mem.opt_state, (long long)mem.workspace);
}
