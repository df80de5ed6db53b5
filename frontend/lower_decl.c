/* lower_decl.c — the declarations of a model: `dim` (with -D overrides),
 * `input` and `param` (with their initialisers) become the Module's
 * declarations and INPUT / PARAM nodes of the main graph, made where they
 * are declared; `output` records the values to return; `train` checks the
 * loss and fills the TrainSpec, refusing what PyTorch's optimizers refuse.
 *
 *   dim H = 128                       m->dims: H = 128 (or -D H=...)
 *   param W : f32[64, H] = normal(0.02)
 *                                     m->params: W f32[64, 128] normal(0, 0.02)
 *                                     %2 = param 0 : f32[64, 128] */
#include "frontend/lower.h"

#include <math.h>
#include <string.h>

/* ---- dim ------------------------------------------------------------------ */

/* The last -D for `name`; every one is marked used. */
static const DimOverride *find_override(Lower *L, const char *name)
{
    const DimOverride *found = NULL;
    for (int i = 0; i < L->n_ov; i++)
        if (strcmp(L->ov[i].name, name) == 0) {
            L->ov[i].used = true;
            found = &L->ov[i];
        }
    return found;
}

void lw_dim(Lower *L, const Stmt *st)
{
    const char *name = st->names[0];
    if (!lw_check_new_decl(L, name, st->name_locs[0]))
        return;
    Sym s = {.name = name, .kind = SYM_POISON, .loc = st->name_locs[0]};
    const DimOverride *ov = find_override(L, name);
    int64_t v = 0;
    if (ov) {
        v = ov->value; /* a value <= 0 was reported with the overrides */
    } else if (lw_eval_int(L, &L->top, st->value,
                           arena_printf(L->a, "dim '%s'", name), &v) &&
               v <= 0) {
        lw_error(L, st->value->loc, "dim '%s' must be positive, not %lld", name,
                 (long long)v);
    }
    if (v > 0) {
        s.kind = SYM_DIM;
        s.dim = v;
        vec_push(L->a, &L->m->dims, ((DimDecl){name, v}));
    }
    lw_define(L, s);
}

/* ---- input and param ---------------------------------------------------------- */

/* The INPUT or PARAM node of declaration `index`, named after it. */
static Sym leaf_sym(Lower *L, const Stmt *st, Op op, int32_t index, Type t)
{
    Attrs at = {.index = index, .type = t};
    Value v = lw_emit(L, op, NULL, 0, &at, st->name_locs[0]);
    Sym s = {.name = st->names[0], .kind = SYM_POISON, .loc = st->name_locs[0]};
    if (v.id) {
        s.kind = op == OP_INPUT ? SYM_INPUT : SYM_PARAM;
        s.owner = &L->main;
        s.v = v;
        ir_value(L->main.g, v)->name = st->names[0];
    }
    return s;
}

void lw_input(Lower *L, const Stmt *st)
{
    const char *name = st->names[0];
    if (!lw_check_new_decl(L, name, st->name_locs[0]))
        return;
    Type t;
    Sym s = {.name = name, .kind = SYM_POISON, .loc = st->name_locs[0]};
    if (lw_eval_type(L, &L->top, &st->type, &t)) {
        vec_push(L->a, &L->m->inputs, ((InputDecl){name, t}));
        s = leaf_sym(L, st, OP_INPUT, L->m->inputs.len - 1, t);
    }
    lw_define(L, s);
}

typedef struct InitSpec {
    const char *name;
    InitKind kind;
    int n;
    ParamSpec params[2];
    const char *usage;
} InitSpec;

// clang-format off
static const InitSpec init_specs[] = {
    {"zeros", INIT_ZEROS, 0, {{0}}, NULL},
    {"ones", INIT_ONES, 0, {{0}}, NULL},
    {"const", INIT_CONST, 1, {{"value", true}}, "const(V)"},
    {"uniform", INIT_UNIFORM, 2, {{"lo", true}, {"hi", true}}, "uniform(LO, HI)"},
    {"normal", INIT_NORMAL, 2, {{"mean", false}, {"std", true}},
     "normal(STD) or normal(MEAN, STD)"},
    {"xavier_uniform", INIT_XAVIER_UNIFORM, 0, {{0}}, NULL},
    {"kaiming_normal", INIT_KAIMING_NORMAL, 0, {{0}}, NULL},
    {"orthogonal", INIT_ORTHOGONAL, 0, {{0}}, NULL},
};
// clang-format on

static const InitSpec *init_spec(const char *name)
{
    for (size_t i = 0; i < sizeof init_specs / sizeof init_specs[0]; i++)
        if (strcmp(init_specs[i].name, name) == 0)
            return &init_specs[i];
    return NULL;
}

/* normal(0.02) is normal(std = 0.02): with one positional argument the
 * parameters are (std, mean). */
static bool bind_init(Lower *L, const InitSpec *is, const Expr *e,
                      const Expr **slot)
{
    ParamSpec ps[2] = {is->params[0], is->params[1]};
    bool swap = is->kind == INIT_NORMAL && e->n_args == 1 && !e->args[0].key;
    if (swap)
        ps[0] = is->params[1], ps[1] = is->params[0];
    if (!lw_bind_args(L, is->name, ps, is->n, e, slot))
        return false;
    if (swap) {
        const Expr *t = slot[0];
        slot[0] = slot[1], slot[1] = t;
    }
    return true;
}

static bool init_args(Lower *L, const InitSpec *is, const Expr *e, Init *out)
{
    const Expr *slot[2] = {NULL, NULL};
    double v[2] = {0, 0};
    if (e->kind == EX_CALL && !bind_init(L, is, e, slot))
        return false;
    if (e->kind == EX_NAME && is->n > 0) {
        lw_error(L, e->loc, "initializer '%s' needs arguments: %s", is->name,
                 is->usage);
        return false;
    }
    bool ok = true;
    for (int i = 0; i < is->n; i++) {
        const char *what = arena_printf(L->a, "argument '%s' of %s",
                                        is->params[i].name, is->name);
        if (!slot[i])
            continue;
        if (!lw_eval_num(L, &L->top, slot[i], what, &v[i])) {
            ok = false;
        } else if (!isfinite(v[i])) {
            lw_error(L, slot[i]->loc, "%s must be finite, not %g", what, v[i]);
            ok = false;
        }
    }
    *out = (Init){is->kind, v[0], v[1]};
    return ok;
}

/* The ranges torch.nn.init accepts, and the ranks the spec requires. */
static bool init_valid(Lower *L, const Expr *e, const Init *in, const Type *t)
{
    if (in->kind == INIT_UNIFORM && in->a > in->b) {
        lw_error(L, e->loc, "uniform(LO, HI) needs LO <= HI, not %g > %g",
                 in->a, in->b);
        return false;
    }
    if (in->kind == INIT_NORMAL && in->b < 0) {
        lw_error(L, e->loc, "normal needs a standard deviation >= 0, not %g",
                 in->b);
        return false;
    }
    int min_rank =
        in->kind == INIT_ORTHOGONAL ? 2
        : in->kind == INIT_XAVIER_UNIFORM || in->kind == INIT_KAIMING_NORMAL
            ? 1
            : 0;
    if (t && t->rank < min_rank) {
        lw_error(L, e->loc,
                 "%s initialization needs a param of rank %d or "
                 "more, not %s",
                 ir_init_names[in->kind], min_rank, lw_type_str(L, t));
        return false;
    }
    return true;
}

/* zeros, normal(0.02), uniform(-0.1, 0.1), ...; t is NULL when the
 * param's type had an error. */
static bool lower_init(Lower *L, const Expr *e, const Type *t, Init *out)
{
    if (e->kind != EX_NAME && e->kind != EX_CALL) {
        lw_error(L, e->loc,
                 "expected an initializer, such as zeros or normal(0.02)");
        return false;
    }
    const InitSpec *is = init_spec(e->name);
    if (!is) {
        lw_error(L, e->kind == EX_CALL ? e->name_loc : e->loc,
                 "unknown initializer '%s' (expected zeros, ones, const, "
                 "uniform, normal, xavier_uniform, kaiming_normal or "
                 "orthogonal)",
                 e->name);
        return false;
    }
    return init_args(L, is, e, out) && init_valid(L, e, out, t);
}

void lw_param(Lower *L, const Stmt *st)
{
    const char *name = st->names[0];
    if (!lw_check_new_decl(L, name, st->name_locs[0]))
        return;
    Type t;
    Init init;
    Sym s = {.name = name, .kind = SYM_POISON, .loc = st->name_locs[0]};
    bool ok = lw_eval_type(L, &L->top, &st->type, &t);
    if (ok && t.dtype != DT_F32) {
        lw_error(L, st->type.loc, "param '%s' is i32, but params must be f32",
                 name);
        ok = false;
    }
    ok &= lower_init(L, st->init, ok ? &t : NULL, &init);
    if (ok) {
        vec_push(L->a, &L->m->params, ((ParamDecl){name, t, init, st->frozen}));
        s = leaf_sym(L, st, OP_PARAM, L->m->params.len - 1, t);
    }
    lw_define(L, s);
}

/* ---- output --------------------------------------------------------------------- */

/* A value that is a bare input or param ("y = x; output y"). */
static const char *bare_leaf(Lower *L, Value v)
{
    const Node *n = ir_def(L->main.g, v);
    if (n->op == OP_INPUT)
        return arena_printf(L->a, "the input '%s'",
                            L->m->inputs.data[n->attr.index].name);
    if (n->op == OP_PARAM)
        return arena_printf(L->a, "the param '%s'",
                            L->m->params.data[n->attr.index].name);
    return NULL;
}

static bool output_value(Lower *L, const char *name, SrcLoc loc, Value *out)
{
    Sym s;
    if (!lw_lookup(L, &L->top, name, &s)) {
        lw_unknown(L, &L->top, name, loc, false);
        return false;
    }
    if (s.kind == SYM_POISON)
        return false;
    if (s.kind != SYM_VALUE) {
        lw_error(L, loc,
                 "output '%s' is %s; an output must be a value "
                 "computed from the inputs",
                 name, lw_kind_phrase(s.kind));
        return false;
    }
    Type t = ir_value_type(L->main.g, s.v);
    const char *leaf = bare_leaf(L, s.v);
    if (leaf)
        lw_error(L, loc,
                 "output '%s' is %s itself; an output must be a value "
                 "computed from the inputs",
                 name, leaf);
    else if (t.dtype != DT_F32)
        lw_error(L, loc, "output '%s' is %s, but outputs must be f32", name,
                 lw_type_str(L, &t));
    *out = s.v;
    return !leaf && t.dtype == DT_F32;
}

void lw_output(Lower *L, const Stmt *st)
{
    for (int i = 0; i < st->n_names; i++) {
        const char *name = st->names[i];
        SrcLoc loc = st->name_locs[i];
        Value v;
        const OutputRec *dup = NULL;
        for (int32_t j = 0; j < L->outputs.len; j++)
            if (strcmp(L->outputs.data[j].name, name) == 0)
                dup = &L->outputs.data[j];
        if (dup)
            lw_error(L, loc, "'%s' is already an output (at %d:%d)", name,
                     dup->loc.line, dup->loc.col);
        else if (output_value(L, name, loc, &v))
            vec_push(L->a, &L->outputs, ((OutputRec){name, v, loc}));
    }
}

/* ---- train -------------------------------------------------------------------------- */

enum {
    O_LR,
    O_MOMENTUM,
    O_NESTEROV,
    O_BETA1,
    O_BETA2,
    O_EPS,
    O_WD,
    O_CLIP,
    O_COUNT
};

typedef struct OptSpec {
    OptKind kind;
    int n;
    ParamSpec params[6];
    int field[6]; /* O_* of each parameter */
} OptSpec;

// clang-format off
#define ADAM_PARAMS                                                     \
    {{"lr", false}, {"beta1", false}, {"beta2", false}, {"eps", false}, \
     {"weight_decay", false}, {"clip_grad_norm", false}},               \
    {O_LR, O_BETA1, O_BETA2, O_EPS, O_WD, O_CLIP}

static const OptSpec opt_specs[] = {
    {OPT_SGD, 5,
     {{"lr", true}, {"momentum", false}, {"nesterov", false},
      {"weight_decay", false}, {"clip_grad_norm", false}},
     {O_LR, O_MOMENTUM, O_NESTEROV, O_WD, O_CLIP}},
    {OPT_ADAM, 6, ADAM_PARAMS},
    {OPT_ADAMW, 6, ADAM_PARAMS},
};
// clang-format on

static const char *const opt_field_names[O_COUNT] = {
    "lr",    "momentum", "nesterov",     "beta1",
    "beta2", "eps",      "weight_decay", "clip_grad_norm",
};

/* PyTorch's defaults; fields an optimizer does not use stay 0, and
 * clip_grad_norm 0 means no clipping. */
static void opt_defaults(OptKind k, double *v)
{
    double adam[O_COUNT] = {[O_LR] = 1e-3,
                            [O_BETA1] = 0.9,
                            [O_BETA2] = 0.999,
                            [O_EPS] = 1e-8,
                            [O_WD] = k == OPT_ADAMW ? 0.01 : 0};
    double sgd[O_COUNT] = {0};
    memcpy(v, k == OPT_SGD ? sgd : adam, sizeof adam);
}

/* What torch.optim refuses (and clip_grad_norm must be positive). */
static bool opt_value_ok(Lower *L, int f, double v, SrcLoc loc)
{
    const char *name = opt_field_names[f];
    if (!isfinite(v)) {
        lw_error(L, loc, "%s must be finite, not %g", name, v);
        return false;
    }
    if ((f == O_BETA1 || f == O_BETA2) && !(v >= 0 && v < 1)) {
        lw_error(L, loc, "invalid %s: %g (betas must be in [0, 1))", name, v);
        return false;
    }
    if (f == O_CLIP && v <= 0) {
        lw_error(L, loc, "clip_grad_norm must be positive, not %g", v);
        return false;
    }
    if (v < 0) {
        lw_error(L, loc, "invalid %s: %g (must be >= 0)", name, v);
        return false;
    }
    return true;
}

static bool opt_args(Lower *L, const OptSpec *os, const Expr **slot, double *v)
{
    bool ok = true;
    for (int i = 0; i < os->n; i++) {
        int f = os->field[i];
        if (!slot[i])
            continue;
        const char *what =
            arena_printf(L->a, "argument '%s' of %s", os->params[i].name,
                         ir_opt_names[os->kind]);
        if (f == O_NESTEROV) {
            bool b = false;
            ok &= lw_eval_bool(L, &L->top, slot[i], what, &b);
            v[f] = b;
        } else if (!lw_eval_num(L, &L->top, slot[i], what, &v[f]) ||
                   !opt_value_ok(L, f, v[f], slot[i]->loc)) {
            ok = false;
        }
    }
    if (ok && v[O_NESTEROV] != 0 && v[O_MOMENTUM] <= 0) {
        lw_error(L, slot[2]->loc, "nesterov momentum requires a momentum > 0");
        ok = false;
    }
    return ok;
}

static bool lower_optimizer(Lower *L, const Expr *e, TrainSpec *ts)
{
    const OptSpec *os = NULL;
    for (int i = 0; e->kind == EX_CALL && i < 3; i++)
        if (strcmp(e->name, ir_opt_names[opt_specs[i].kind]) == 0)
            os = &opt_specs[i];
    if (!os) {
        bool named = e->kind == EX_CALL || e->kind == EX_NAME;
        lw_error(L, e->kind == EX_CALL ? e->name_loc : e->loc,
                 "%s%s%sexpected "
                 "an optimizer: sgd(...), adam(...) or adamw(...)",
                 named ? "unknown optimizer '" : "", named ? e->name : "",
                 named ? "'; " : "");
        return false;
    }
    const Expr *slot[6];
    double v[O_COUNT];
    opt_defaults(os->kind, v);
    if (!lw_bind_args(L, ir_opt_names[os->kind], os->params, os->n, e, slot) ||
        !opt_args(L, os, slot, v))
        return false;
    *ts = (TrainSpec){.opt = os->kind,
                      .lr = v[O_LR],
                      .momentum = v[O_MOMENTUM],
                      .beta1 = v[O_BETA1],
                      .beta2 = v[O_BETA2],
                      .eps = v[O_EPS],
                      .weight_decay = v[O_WD],
                      .clip_grad_norm = v[O_CLIP],
                      .nesterov = v[O_NESTEROV] != 0};
    return true;
}

/* Whether v depends on a trainable (not frozen) param of the main graph. */
static bool reaches_trainable(Lower *L, Value v)
{
    Graph *g = L->main.g;
    bool *seen = arena_alloc(L->a, (size_t)g->nodes.len + 1);
    VEC(int32_t) stack = {0};
    vec_push(L->a, &stack, ir_value(g, v)->def);
    while (stack.len) {
        int32_t id = stack.data[--stack.len];
        if (seen[id])
            continue;
        seen[id] = true;
        const Node *n = &g->nodes.data[id];
        if (n->op == OP_PARAM && !L->m->params.data[n->attr.index].frozen)
            return true;
        for (int i = 0; i < n->n_in; i++)
            vec_push(L->a, &stack, ir_value(g, n->in[i])->def);
    }
    return false;
}

static bool check_loss(Lower *L, const Expr *e, Value loss)
{
    Type t = ir_value_type(L->main.g, loss);
    if (t.dtype != DT_F32 || t.rank != 0) {
        lw_error(L, e->loc, "the loss must be a scalar f32[], not %s",
                 lw_type_str(L, &t));
        return false;
    }
    if (!reaches_trainable(L, loss)) {
        lw_error(L, e->loc, "the loss does not depend on any trainable param");
        return false;
    }
    return true;
}

void lw_train(Lower *L, const Stmt *st)
{
    if (L->have_train) {
        lw_error(L, st->loc,
                 "a model can have only one 'train'; the first is "
                 "at %d:%d",
                 L->train_loc.line, L->train_loc.col);
        return;
    }
    L->have_train = true;
    L->train_loc = st->loc;
    Value loss = lw_expr(L, &L->top, st->value);
    TrainSpec ts;
    bool ok = loss.id && check_loss(L, st->value, loss);
    if (lower_optimizer(L, st->opt, &ts) && ok) {
        L->m->train = ts;
        L->loss = loss;
    }
}
