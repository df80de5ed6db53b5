/* lower_expr.c — expressions to graph nodes: literals and dims become
 * scalar constants, operators and calls become nodes added through the IR
 * builder (whose shape rules produce the shape errors, reported at the
 * operator or call), `x[a:b, i]` becomes a slice (and a reshape dropping
 * indexed axes), `E[ids]` a gather.  Also the argument binding shared by
 * every callable and the binding statement `A, B = EXPR`.
 *
 *   h = relu(x @ W1 + b1)      %5 = matmul %1, %3
 *                              %6 = add %5, %4
 *                              %7 = relu %6        (named h)
 */
#include "frontend/lower.h"

#include <string.h>

static const Op bin_ops[] = {
    [BIN_ADD] = OP_ADD, [BIN_SUB] = OP_SUB,       [BIN_MUL] = OP_MUL,
    [BIN_DIV] = OP_DIV, [BIN_MATMUL] = OP_MATMUL, [BIN_LT] = OP_LT,
    [BIN_LE] = OP_LE,   [BIN_GT] = OP_GT,         [BIN_GE] = OP_GE,
    [BIN_EQ] = OP_EQ,   [BIN_NE] = OP_NE,
};

/* ---- nodes --------------------------------------------------------------- */

Value lw_emit(Lower *L, Op op, const Value *in, int n_in, const Attrs *at,
              SrcLoc loc)
{
    for (int i = 0; i < n_in; i++)
        if (!in[i].id)
            return IR_NONE;
    if (!lw_spend(L, 1, loc))
        return IR_NONE;
    char err[1024];
    Value v =
        ir_add(L->m, L->ctx->g, op, in, n_in, at, loc, NULL, err, sizeof err);
    if (!v.id)
        lw_error(L, loc, "%s", err);
    return v;
}

Value lw_const(Lower *L, double value, Type t, SrcLoc loc)
{
    Attrs at = {.value = value, .type = t};
    return lw_emit(L, OP_CONST, NULL, 0, &at, loc);
}

Vals lw_vals1(Lower *L, Value v)
{
    if (!v.id)
        return (Vals){0};
    Vals r = {arena_alloc(L->a, sizeof(Value)), 1};
    r.v[0] = v;
    return r;
}

bool lw_exprs(Lower *L, Scope *sc, const Expr *const *es, int n, Value *out)
{
    bool ok = true;
    for (int i = 0; i < n; i++) {
        out[i] = lw_expr(L, sc, es[i]);
        ok &= out[i].id != 0;
    }
    return ok;
}

/* ---- names and operators ------------------------------------------------- */

static Value lower_name(Lower *L, Scope *sc, const Expr *e)
{
    Sym s;
    if (!lw_lookup(L, sc, e->name, &s)) {
        lw_unresolved_name(L, sc, e);
        return IR_NONE;
    }
    switch (s.kind) {
    case SYM_DIM:
        return lw_const(L, (double)s.dim, ir_type_scalar(DT_F32), e->loc);
    case SYM_FN:
        lw_error(L, e->loc,
                 "'%s' is a fn; call it with arguments, as in %s(...)", e->name,
                 e->name);
        return IR_NONE;
    case SYM_POISON: return IR_NONE;
    default: return lw_value_in(L, s.owner, s.v);
    }
}

/* -3, -B and --2 fold to one constant; anything else is a negation. */
static bool fold_neg(const Lower *L, const Scope *sc, const Expr *e,
                     double *out)
{
    Sym s;
    switch (e->kind) {
    case EX_NUM: *out = e->num; return true;
    case EX_NAME:
        if (!lw_lookup(L, sc, e->name, &s) || s.kind != SYM_DIM)
            return false;
        *out = (double)s.dim;
        return true;
    case EX_UNARY:
        if (!fold_neg(L, sc, e->lhs, out))
            return false;
        *out = -*out;
        return true;
    default: return false;
    }
}

static Value lower_unary(Lower *L, Scope *sc, const Expr *e)
{
    double v;
    if (fold_neg(L, sc, e, &v))
        return lw_const(L, v, ir_type_scalar(DT_F32), e->loc);
    Value x = lw_expr(L, sc, e->lhs);
    return lw_emit(L, OP_NEG, &x, 1, NULL, e->loc);
}

/* Beside an i32 tensor, an integer constant in a comparison is i32
 * (`ids == 0`): comparisons want operands of one dtype. */
static void compare_operands(Lower *L, Scope *sc, const Expr *e, Value in[2])
{
    const Expr *side[2] = {e->lhs, e->rhs};
    bool konst[2] = {lw_is_int_const(L, sc, e->lhs),
                     lw_is_int_const(L, sc, e->rhs)};
    if (konst[0] == konst[1]) {
        lw_exprs(L, sc, side, 2, in);
        return;
    }
    int k = konst[0] ? 0 : 1, t = 1 - k;
    in[t] = lw_expr(L, sc, side[t]);
    if (!in[t].id || ir_value_type(L->ctx->g, in[t]).dtype != DT_I32) {
        in[k] = lw_expr(L, sc, side[k]);
        return;
    }
    int64_t v;
    in[k] = IR_NONE;
    if (!lw_eval_int(L, sc, side[k], "a number compared with an i32 tensor",
                     &v))
        return;
    if (v < INT32_MIN || v > INT32_MAX)
        lw_error(L, side[k]->loc, "%lld does not fit in i32", (long long)v);
    else
        in[k] = lw_const(L, (double)v, ir_type_scalar(DT_I32), side[k]->loc);
}

static Value lower_binary(Lower *L, Scope *sc, const Expr *e)
{
    Value in[2];
    if (e->op >= BIN_LT) {
        compare_operands(L, sc, e, in);
    } else {
        const Expr *side[2] = {e->lhs, e->rhs};
        lw_exprs(L, sc, side, 2, in);
    }
    return lw_emit(L, bin_ops[e->op], in, 2, NULL, e->loc);
}

/* ---- indexing ------------------------------------------------------------ */

/* E[ids]: a gather along axis 0. */
static Value lower_gather(Lower *L, Scope *sc, const Expr *e, Value table)
{
    const Expr *idx = e->items[0].lo;
    Value ids = lw_expr(L, sc, idx);
    if (!ids.id || !table.id)
        return IR_NONE;
    Type t = ir_value_type(L->ctx->g, ids);
    if (t.dtype != DT_I32) {
        lw_error(L, idx->loc,
                 "an index must be an integer constant or an i32 "
                 "tensor, not %s",
                 lw_type_str(L, &t));
        return IR_NONE;
    }
    Value in[2] = {table, ids};
    return lw_emit(L, OP_GATHER, in, 2, NULL, e->loc);
}

static const char *slice_text(Lower *L, const SliceItem *it)
{
    return arena_printf(L->a, "'%s:%s'",
                        it->lo ? lw_expr_text(L->a, it->lo) : "",
                        it->hi ? lw_expr_text(L->a, it->hi) : "");
}

/* An index item that is a tensor, as in x[0, ids] (numbers, unknown and
 * poisoned names are left to lw_eval_int, which says more or nothing). */
static bool tensor_item(const Lower *L, const Scope *sc, const Expr *e)
{
    Sym s;
    if (e->kind == EX_NUM || lw_is_int_const(L, sc, e))
        return false;
    return e->kind != EX_NAME ||
           (lw_lookup(L, sc, e->name, &s) && s.kind != SYM_POISON);
}

/* An integer index i of axis `ax`: the range i:i+1, the axis dropped. */
static bool index_item(Lower *L, Scope *sc, const SliceItem *it, const Type *t,
                       int ax, int64_t *start, int64_t *stop)
{
    int64_t i, d = t->dims[ax];
    if (tensor_item(L, sc, it->lo)) {
        lw_error(L, it->lo->loc,
                 "an index here must be an integer constant; an "
                 "i32 tensor of ids must be the only index, as in E[ids]");
        return false;
    }
    if (!lw_eval_int(L, sc, it->lo, "an index", &i))
        return false;
    int64_t j = i < 0 ? i + d : i;
    if (j < 0 || j >= d) {
        lw_error(L, it->loc, "index %lld is out of range for axis %d of %s",
                 (long long)i, ax, lw_type_str(L, t));
        return false;
    }
    *start = j;
    *stop = j + 1;
    return true;
}

/* A slice lo:hi of axis `ax`, negative bounds counting from the end. */
static bool slice_item(Lower *L, Scope *sc, const SliceItem *it, const Type *t,
                       int ax, int64_t *start, int64_t *stop)
{
    int64_t lo = 0, d = t->dims[ax], hi = d;
    bool ok = !it->lo || lw_eval_int(L, sc, it->lo, "a slice bound", &lo);
    ok &= !it->hi || lw_eval_int(L, sc, it->hi, "a slice bound", &hi);
    if (!ok)
        return false;
    int64_t a = lo < 0 ? lo + d : lo, b = hi < 0 ? hi + d : hi;
    if (a < 0 || a > d || b < 0 || b > d) {
        lw_error(L, it->loc, "slice %s is out of range for axis %d of %s",
                 slice_text(L, it), ax, lw_type_str(L, t));
        return false;
    }
    if (a >= b) {
        lw_error(L, it->loc, "slice %s of axis %d of %s is empty",
                 slice_text(L, it), ax, lw_type_str(L, t));
        return false;
    }
    *start = a;
    *stop = b;
    return true;
}

/* x[a:b, :, i]: one SLICE, then a RESHAPE if integer indices drop axes. */
static Value lower_slice(Lower *L, Scope *sc, const Expr *e, Value x)
{
    Type t = ir_value_type(L->ctx->g, x);
    if (e->n_items > t.rank) {
        lw_error(L, e->loc, "%d indices for %s, which has rank %d", e->n_items,
                 lw_type_str(L, &t), t.rank);
        return IR_NONE;
    }
    Attrs at = {0};
    Type out = {.dtype = t.dtype};
    bool ok = true, whole = true;
    for (int ax = 0; ax < t.rank; ax++) {
        const SliceItem *it = ax < e->n_items ? &e->items[ax] : NULL;
        at.start[ax] = 0;
        at.stop[ax] = t.dims[ax];
        if (it && !it->is_slice)
            ok &= index_item(L, sc, it, &t, ax, &at.start[ax], &at.stop[ax]);
        else if (it)
            ok &= slice_item(L, sc, it, &t, ax, &at.start[ax], &at.stop[ax]);
        if (!it || it->is_slice)
            out.dims[out.rank++] = at.stop[ax] - at.start[ax];
        whole &= at.start[ax] == 0 && at.stop[ax] == t.dims[ax];
    }
    if (!ok)
        return IR_NONE;
    Value v = whole ? x : lw_emit(L, OP_SLICE, &x, 1, &at, e->loc);
    if (out.rank == t.rank)
        return v;
    Attrs rs = {.type = out};
    return lw_emit(L, OP_RESHAPE, &v, 1, &rs, e->loc);
}

static Value lower_index(Lower *L, Scope *sc, const Expr *e)
{
    Value x = lw_expr(L, sc, e->base);
    const Expr *first = e->items[0].lo;
    if (e->n_items == 1 && !e->items[0].is_slice && first->kind != EX_NUM &&
        !lw_is_int_const(L, sc, first))
        return lower_gather(L, sc, e, x);
    return x.id ? lower_slice(L, sc, e, x) : IR_NONE;
}

/* ---- expressions --------------------------------------------------------- */

/* "split", "fn 'f'", "the expression": what produced a count of values. */
static const char *producer(Lower *L, const Expr *e)
{
    if (e->kind != EX_CALL)
        return "the expression";
    if (lw_builtin(e->name))
        return e->name;
    return arena_printf(L->a, "fn '%s'", e->name);
}

static Value lower_expr(Lower *L, Scope *sc, const Expr *e)
{
    switch (e->kind) {
    case EX_NUM: return lw_const(L, e->num, ir_type_scalar(DT_F32), e->loc);
    case EX_NAME: return lower_name(L, sc, e);
    case EX_UNARY: return lower_unary(L, sc, e);
    case EX_BINARY: return lower_binary(L, sc, e);
    case EX_INDEX: return lower_index(L, sc, e);
    case EX_CALL: {
        Vals r = lw_call(L, sc, e);
        if (r.n == 1 || r.n == 0)
            return r.n ? r.v[0] : IR_NONE;
        lw_error(L, e->loc, "%s gives %d values where one is expected",
                 producer(L, e), r.n);
        return IR_NONE;
    }
    case EX_BOOL:
        lw_error(L, e->loc,
                 "'%s' is not a tensor; true and false are only "
                 "argument values, as in keepdims = true",
                 e->bval ? "true" : "false");
        return IR_NONE;
    case EX_LIST:
        lw_error(L, e->loc,
                 "a list [...] is not a tensor; lists are arguments "
                 "such as shapes, axes or concat's operands");
        return IR_NONE;
    case EX_TUPLE:
        lw_error(L, e->loc,
                 "a tuple (...) is not a tensor; tuples are scan's "
                 "init and over");
        return IR_NONE;
    }
    return IR_NONE;
}

Value lw_expr(Lower *L, Scope *sc, const Expr *e)
{
    if (!lw_enter(L, e->loc))
        return IR_NONE;
    Value v = lower_expr(L, sc, e);
    L->depth--;
    return v;
}

Vals lw_multi(Lower *L, Scope *sc, const Expr *e)
{
    if (e->kind == EX_CALL && !L->aborted)
        return lw_call(L, sc, e);
    return lw_vals1(L, lw_expr(L, sc, e));
}

/* ---- calls --------------------------------------------------------------- */

static bool is_initializer(const char *name)
{
    for (int i = 0; i < INIT_COUNT; i++)
        if (strcmp(ir_init_names[i], name) == 0)
            return true;
    return false;
}

static bool is_optimizer(const char *name)
{
    for (int i = 1; i < 4; i++)
        if (strcmp(ir_opt_names[i], name) == 0)
            return true;
    return false;
}

void lw_bad_callee(Lower *L, const Scope *sc, const Expr *call)
{
    Sym s;
    const char *n = call->name;
    if (lw_lookup(L, sc, n, &s)) {
        if (s.kind != SYM_POISON)
            lw_error(L, call->name_loc, "'%s' is %s, not a function", n,
                     lw_kind_phrase(s.kind));
    } else if (is_initializer(n)) {
        lw_error(L, call->name_loc,
                 "'%s' is an initializer; it can only "
                 "follow '=' in a param declaration",
                 n);
    } else if (is_optimizer(n)) {
        lw_error(L, call->name_loc,
                 "'%s' is an optimizer; it can only follow "
                 "'train LOSS with'",
                 n);
    } else {
        lw_unknown(L, sc, n, call->name_loc, true);
    }
}

Vals lw_call(Lower *L, Scope *sc, const Expr *e)
{
    Sym s;
    if (lw_lookup(L, sc, e->name, &s) && s.kind == SYM_FN)
        return lw_call_fn(L, sc, s.fn, e);
    const Builtin *b = lw_builtin(e->name);
    if (b)
        return lw_call_builtin(L, sc, b, e);
    lw_bad_callee(L, sc, e);
    return (Vals){0};
}

static int param_index(const ParamSpec *ps, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ps[i].name, key) == 0)
            return i;
    return -1;
}

static void too_many(Lower *L, const char *fname, const ParamSpec *ps, int n,
                     int n_pos, SrcLoc loc)
{
    int n_req = 0;
    for (int i = 0; i < n; i++)
        n_req += ps[i].required;
    lw_error(L, loc, "%s takes %s%d argument%s, but %d %s given", fname,
             n_req < n ? "at most " : "", n, n == 1 ? "" : "s", n_pos,
             n_pos == 1 ? "was" : "were");
}

/* One keyword argument into its slot. */
static bool bind_keyword(Lower *L, const char *fname, const ParamSpec *ps,
                         int n, const Arg *a, const Expr **slots)
{
    int k = param_index(ps, n, a->key);
    if (k < 0) {
        lw_error(L, a->loc, "%s has no argument named '%s'", fname, a->key);
        return false;
    }
    if (slots[k]) {
        lw_error(L, a->loc, "argument '%s' of %s is given twice", a->key,
                 fname);
        return false;
    }
    slots[k] = a->value;
    return true;
}

bool lw_bind_args(Lower *L, const char *fname, const ParamSpec *ps, int n,
                  const Expr *call, const Expr **slots)
{
    bool ok = true, kw = false;
    int pos = 0, n_pos = 0;
    for (int i = 0; i < n; i++)
        slots[i] = NULL;
    for (int i = 0; i < call->n_args; i++)
        n_pos += call->args[i].key == NULL;
    for (int i = 0; i < call->n_args; i++) {
        const Arg *a = &call->args[i];
        if (a->key) {
            kw = true;
            ok &= bind_keyword(L, fname, ps, n, a, slots);
        } else if (kw) {
            lw_error(L, a->loc,
                     "positional argument after keyword arguments "
                     "in the call of %s",
                     fname);
            ok = false;
        } else if (pos < n) {
            slots[pos++] = a->value;
        } else if (pos++ == n) {
            too_many(L, fname, ps, n, n_pos, a->loc);
            ok = false;
        }
    }
    for (int i = 0; ok && i < n; i++)
        if (ps[i].required && !slots[i]) {
            lw_error(L, call->loc, "missing argument '%s' of %s", ps[i].name,
                     fname);
            ok = false;
        }
    return ok;
}

/* ---- bindings ------------------------------------------------------------ */

static void name_value(Lower *L, Value v, const char *name)
{
    ValueInfo *vi = ir_value(L->ctx->g, v);
    if (!vi->name)
        vi->name = name;
}

/* NAME, ... = EXPR.  At top level the names are checked here; in a fn body
 * they were checked once, with the definition. */
void lw_bind_stmt(Lower *L, Scope *sc, const Stmt *st)
{
    bool *ok_name = arena_alloc(L->a, (size_t)st->n_names + 1);
    for (int i = 0; i < st->n_names; i++)
        ok_name[i] =
            sc->fn || lw_check_bindable(L, sc, st->names[i], st->name_locs[i]);
    Vals r = lw_multi(L, sc, st->value);
    if (r.n && r.n != st->n_names) {
        lw_error(L, st->value->loc, "%s gives %d value%s, but %d name%s bound",
                 producer(L, st->value), r.n, r.n == 1 ? "" : "s", st->n_names,
                 st->n_names == 1 ? " is" : "s are");
        r.n = 0;
    }
    for (int i = 0; i < st->n_names; i++) {
        if (!ok_name[i])
            continue;
        Sym s = {
            .name = st->names[i], .kind = SYM_POISON, .loc = st->name_locs[i]};
        if (r.n) {
            s.kind = SYM_VALUE;
            s.owner = L->ctx;
            s.v = r.v[i];
            name_value(L, r.v[i], st->names[i]);
        }
        lw_bind(L, sc, s);
    }
}
