/* lower_fn.c — user functions.  A `fn` is checked once, where it is
 * defined: its statements, its argument and binding names, and every name
 * it uses (which must be an argument, a binding above it in the body, or a
 * top-level name defined above the fn; a fn may call only fns defined
 * before it, so there is no recursion).  A fn with such an error is marked
 * broken and its calls fail quietly.
 *
 * A call inlines the body into the current graph (the main graph or a scan
 * body), with the arguments bound to the caller's values:
 *
 *   fn sq(t) { return t * t }       y = sq(x + 1)   ->   %3 = add %1, %2
 *                                                        %4 = mul %3, %3
 *
 * Shape errors inside an inlined body point into the body and name the
 * call: "... (in fn 'sq' called at 12:5)". */
#include "frontend/lower.h"

#include <string.h>

static const char *stmt_keyword(StmtKind k)
{
    static const char *const words[] = {
        [ST_MODEL] = "model",   [ST_DIM] = "dim",       [ST_INPUT] = "input",
        [ST_PARAM] = "param",   [ST_BIND] = "binding",  [ST_FN] = "fn",
        [ST_RETURN] = "return", [ST_OUTPUT] = "output", [ST_TRAIN] = "train",
    };
    return words[k];
}

/* ---- checking a definition ------------------------------------------------ */

static bool check_expr(Lower *L, const Scope *sc, const Expr *e);

static bool check_exprs(Lower *L, const Scope *sc, Expr *const *es, int n)
{
    bool ok = true;
    for (int i = 0; i < n; i++)
        ok &= check_expr(L, sc, es[i]);
    return ok;
}

static bool check_callee(Lower *L, const Scope *sc, const Expr *e)
{
    Sym s;
    if ((lw_lookup(L, sc, e->name, &s) && s.kind == SYM_FN) ||
        lw_builtin(e->name))
        return true;
    lw_bad_callee(L, sc, e);
    return false;
}

static bool check_call(Lower *L, const Scope *sc, const Expr *e)
{
    bool ok = check_callee(L, sc, e);
    for (int i = 0; i < e->n_args; i++)
        ok &= check_expr(L, sc, e->args[i].value);
    return ok;
}

static bool check_index(Lower *L, const Scope *sc, const Expr *e)
{
    bool ok = check_expr(L, sc, e->base);
    for (int i = 0; i < e->n_items; i++) {
        if (e->items[i].lo)
            ok &= check_expr(L, sc, e->items[i].lo);
        if (e->items[i].hi)
            ok &= check_expr(L, sc, e->items[i].hi);
    }
    return ok;
}

/* Every name the expression uses resolves. */
static bool check_expr(Lower *L, const Scope *sc, const Expr *e)
{
    Sym s;
    switch (e->kind) {
    case EX_NAME:
        if (lw_lookup(L, sc, e->name, &s))
            return true;
        lw_unresolved_name(L, sc, e);
        return false;
    case EX_UNARY: return check_expr(L, sc, e->lhs);
    case EX_BINARY:
        return check_expr(L, sc, e->lhs) & check_expr(L, sc, e->rhs);
    case EX_CALL: return check_call(L, sc, e);
    case EX_INDEX: return check_index(L, sc, e);
    case EX_LIST:
    case EX_TUPLE: return check_exprs(L, sc, e->elems, e->n_elems);
    default: return true;
    }
}

/* A placeholder local for the checks: only its name matters. */
static void check_local(Lower *L, Scope *sc, const char *name, SrcLoc loc)
{
    vec_push(L->a, &sc->locals,
             ((Sym){.name = name, .kind = SYM_VALUE, .loc = loc}));
}

static bool check_params(Lower *L, Scope *sc, const Stmt *st)
{
    bool ok = true;
    for (int i = 0; i < st->n_params; i++) {
        const char *p = st->params[i];
        bool dup = false;
        for (int j = 0; j < i; j++)
            dup |= strcmp(st->params[j], p) == 0;
        if (dup) {
            lw_error(L, st->param_locs[i],
                     "fn '%s' has two arguments named "
                     "'%s'",
                     st->names[0], p);
            ok = false;
        } else {
            ok &= lw_check_bindable(L, sc, p, st->param_locs[i]);
        }
        check_local(L, sc, p, st->param_locs[i]);
    }
    return ok;
}

static bool check_bind(Lower *L, Scope *sc, const Stmt *b)
{
    bool ok = check_expr(L, sc, b->value);
    for (int i = 0; i < b->n_names; i++) {
        ok &= lw_check_bindable(L, sc, b->names[i], b->name_locs[i]);
        check_local(L, sc, b->names[i], b->name_locs[i]);
    }
    return ok;
}

static bool check_return(Lower *L, Scope *sc, const Stmt *b)
{
    if (b->n_exprs > 0)
        return check_exprs(L, sc, b->exprs, b->n_exprs);
    lw_error(L, b->loc, "'return' needs at least one value");
    return false;
}

/* The body: bindings, then one `return` at the end. */
static bool check_body(Lower *L, const FnDef *fn)
{
    const Stmt *st = fn->st;
    Scope sc = {.limit = fn->limit, .fn = fn};
    bool ok = check_params(L, &sc, st), returned = false;
    for (int i = 0; i < st->n_body; i++) {
        const Stmt *b = st->body[i];
        if (returned) {
            lw_error(L, b->loc, "statement after 'return' in fn '%s'",
                     st->names[0]);
            return false;
        }
        if (b->kind == ST_BIND) {
            ok &= check_bind(L, &sc, b);
        } else if (b->kind == ST_RETURN) {
            ok &= check_return(L, &sc, b);
            returned = true;
        } else {
            lw_error(L, b->loc, "'%s' cannot appear inside a fn",
                     stmt_keyword(b->kind));
            ok = false;
        }
    }
    if (!returned)
        lw_error(L, st->end_loc, "fn '%s' does not end with 'return'",
                 st->names[0]);
    return ok && returned;
}

void lw_fn_def(Lower *L, const Stmt *st)
{
    const char *name = st->names[0];
    FnDef *fn = arena_alloc(L->a, sizeof *fn);
    fn->st = st;
    fn->limit = L->syms.len;
    bool named = lw_check_new_decl(L, name, st->name_locs[0]);
    if (named && lw_builtin(name)) {
        lw_error(L, st->name_locs[0],
                 "'%s' is a built-in function and cannot "
                 "be redefined",
                 name);
        named = false;
    }
    fn->broken = !check_body(L, fn);
    if (named)
        lw_define(L, (Sym){.name = name,
                           .kind = SYM_FN,
                           .loc = st->name_locs[0],
                           .fn = fn});
}

/* ---- calls ---------------------------------------------------------------- */

static Vals lower_return(Lower *L, Scope *sc, const Stmt *ret)
{
    Vals r = {arena_alloc(L->a, sizeof(Value) * (size_t)ret->n_exprs),
              ret->n_exprs};
    if (!lw_exprs(L, sc, (const Expr *const *)ret->exprs, ret->n_exprs, r.v))
        r.n = 0;
    return r;
}

Vals lw_inline(Lower *L, const FnDef *fn, const Value *args, SrcLoc call_loc,
               const char *how)
{
    const Stmt *st = fn->st;
    if (fn->broken || !lw_spend(L, 1, call_loc) || !lw_enter(L, call_loc))
        return (Vals){0};
    Scope sc = {.limit = fn->limit, .fn = fn};
    for (int i = 0; i < st->n_params; i++)
        vec_push(L->a, &sc.locals,
                 ((Sym){.name = st->params[i],
                        .kind = SYM_VALUE,
                        .loc = st->param_locs[i],
                        .owner = L->ctx,
                        .v = args[i]}));
    const char *saved = L->note;
    L->note = arena_printf(L->a, " (in fn '%s' %s at %d:%d)", st->names[0], how,
                           call_loc.line, call_loc.col);
    Vals r = {0};
    for (int i = 0; i < st->n_body && !L->aborted; i++) {
        if (st->body[i]->kind == ST_BIND)
            lw_bind_stmt(L, &sc, st->body[i]);
        else if (st->body[i]->kind == ST_RETURN)
            r = lower_return(L, &sc, st->body[i]);
    }
    L->note = saved;
    L->depth--;
    return r;
}

Vals lw_call_fn(Lower *L, Scope *sc, const FnDef *fn, const Expr *call)
{
    const Stmt *st = fn->st;
    int n = st->n_params;
    ParamSpec *ps = arena_alloc(L->a, sizeof *ps * (size_t)(n + 1));
    const Expr **slot = arena_alloc(L->a, sizeof *slot * (size_t)(n + 1));
    Value *args = arena_alloc(L->a, sizeof *args * (size_t)(n + 1));
    for (int i = 0; i < n; i++)
        ps[i] = (ParamSpec){st->params[i], true};
    const char *what = arena_printf(L->a, "fn '%s'", st->names[0]);
    bool positional = true;
    for (int i = 0; i < call->n_args; i++)
        positional &= call->args[i].key == NULL;
    if (positional && call->n_args != n) {
        lw_error(L, call->loc, "%s takes %d argument%s, but %d %s given", what,
                 n, n == 1 ? "" : "s", call->n_args,
                 call->n_args == 1 ? "was" : "were");
        return (Vals){0};
    }
    if (!lw_bind_args(L, what, ps, n, call, slot) ||
        !lw_exprs(L, sc, slot, n, args))
        return (Vals){0};
    return lw_inline(L, fn, args, call->loc, "called");
}
