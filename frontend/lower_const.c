/* lower_const.c — what the lowering computes at compile time: integer
 * expressions over dims (dim values, type dimensions, axes, shapes, slice
 * bounds), numbers (options such as eps or lr), booleans, and tensor
 * types.
 *
 * Integer arithmetic is exact: overflow and inexact division are errors
 * ("C / NH: 128 is not divisible by 3").  Number options use float
 * arithmetic, as a number literal in an expression would (`1 / 8` is
 * 0.125), and may call sqrt, rsqrt, exp, log and abs, so that
 * `scale = 1 / sqrt(HD)` is a constant. */
#include "frontend/lower.h"

#include <math.h>
#include <string.h>

static const char *const bin_text[] = {
    [BIN_ADD] = "+",    [BIN_SUB] = "-", [BIN_MUL] = "*", [BIN_DIV] = "/",
    [BIN_MATMUL] = "@", [BIN_LT] = "<",  [BIN_LE] = "<=", [BIN_GT] = ">",
    [BIN_GE] = ">=",    [BIN_EQ] = "==", [BIN_NE] = "!=",
};

static int bin_prec(BinOp op)
{
    if (op >= BIN_LT)
        return 0;
    return op == BIN_ADD || op == BIN_SUB ? 1 : 2;
}

/* The child of a binary expression, parenthesised when its operator binds
 * more loosely than the parent's (or equally, on the right). */
static const char *operand_text(Arena *a, const Expr *e, int prec, bool right)
{
    const char *s = lw_expr_text(a, e);
    if (e->kind == EX_BINARY &&
        (bin_prec(e->op) < prec || (right && bin_prec(e->op) == prec)))
        return arena_printf(a, "(%s)", s);
    return s;
}

const char *lw_expr_text(Arena *a, const Expr *e)
{
    switch (e->kind) {
    case EX_NUM:
        return e->is_int ? arena_printf(a, "%lld", (long long)e->ival)
                         : arena_printf(a, "%g", e->num);
    case EX_BOOL: return e->bval ? "true" : "false";
    case EX_NAME: return e->name;
    case EX_UNARY:
        return arena_printf(a, "-%s", operand_text(a, e->lhs, 3, false));
    case EX_BINARY: {
        int p = bin_prec(e->op);
        return arena_printf(a, "%s %s %s", operand_text(a, e->lhs, p, false),
                            bin_text[e->op], operand_text(a, e->rhs, p, true));
    }
    case EX_CALL: return arena_printf(a, "%s(...)", e->name);
    case EX_INDEX: return arena_printf(a, "%s[...]", lw_expr_text(a, e->base));
    case EX_LIST: return "[...]";
    case EX_TUPLE: return "(...)";
    }
    return "?";
}

/* ---- integers ----------------------------------------------------------- */

bool lw_is_int_const(const Lower *L, const Scope *sc, const Expr *e)
{
    Sym s;
    switch (e->kind) {
    case EX_NUM: return e->is_int;
    case EX_NAME: return lw_lookup(L, sc, e->name, &s) && s.kind == SYM_DIM;
    case EX_UNARY: return lw_is_int_const(L, sc, e->lhs);
    case EX_BINARY:
        return e->op <= BIN_DIV && lw_is_int_const(L, sc, e->lhs) &&
               lw_is_int_const(L, sc, e->rhs);
    default: return false;
    }
}

/* A name in an integer or number constant: its dim value. */
static bool const_name(Lower *L, const Scope *sc, const Expr *e,
                       const char *what, int64_t *out)
{
    Sym s;
    if (!lw_lookup(L, sc, e->name, &s)) {
        lw_unknown(L, sc, e->name, e->loc, false);
        return false;
    }
    if (s.kind == SYM_POISON)
        return false;
    if (s.kind == SYM_DIM) {
        *out = s.dim;
        return true;
    }
    lw_error(L, e->loc, "%s must be a constant, but '%s' is %s", what, e->name,
             lw_kind_phrase(s.kind));
    return false;
}

static bool int_binary(Lower *L, const Expr *e, int64_t a, int64_t b,
                       int64_t *out)
{
    bool over = false;
    switch (e->op) {
    case BIN_ADD: over = __builtin_add_overflow(a, b, out); break;
    case BIN_SUB: over = __builtin_sub_overflow(a, b, out); break;
    case BIN_MUL: over = __builtin_mul_overflow(a, b, out); break;
    default:
        if (b == 0) {
            lw_error(L, e->loc, "division by zero in %s",
                     lw_expr_text(L->a, e));
            return false;
        }
        if (a % b != 0 || (a == INT64_MIN && b == -1)) {
            lw_error(L, e->loc, "%s: %lld is not divisible by %lld",
                     lw_expr_text(L->a, e), (long long)a, (long long)b);
            return false;
        }
        *out = a / b;
    }
    if (over)
        lw_error(L, e->loc, "integer overflow in %s", lw_expr_text(L->a, e));
    return !over;
}

bool lw_eval_int(Lower *L, const Scope *sc, const Expr *e, const char *what,
                 int64_t *out)
{
    int64_t a, b;
    switch (e->kind) {
    case EX_NUM:
        if (!e->is_int) {
            lw_error(L, e->loc, "%s must be an integer, not %g", what, e->num);
            return false;
        }
        *out = e->ival;
        return true;
    case EX_NAME: return const_name(L, sc, e, what, out);
    case EX_UNARY:
        if (!lw_eval_int(L, sc, e->lhs, what, &a))
            return false;
        if (a == INT64_MIN) {
            lw_error(L, e->loc, "integer overflow in %s",
                     lw_expr_text(L->a, e));
            return false;
        }
        *out = -a;
        return true;
    case EX_BINARY:
        if (e->op > BIN_DIV)
            break;
        if (!lw_eval_int(L, sc, e->lhs, what, &a) |
            !lw_eval_int(L, sc, e->rhs, what, &b))
            return false;
        return int_binary(L, e, a, b, out);
    default: break;
    }
    lw_error(L, e->loc,
             "%s must be an integer constant (a number, a dim, or "
             "+ - * / over them)",
             what);
    return false;
}

/* ---- numbers ------------------------------------------------------------ */

static bool num_call(Lower *L, const Scope *sc, const Expr *e, const char *what,
                     double *out)
{
    static const char *const fns[] = {"sqrt", "rsqrt", "exp", "log", "abs"};
    int f = -1;
    for (int i = 0; i < 5; i++)
        if (strcmp(e->name, fns[i]) == 0)
            f = i;
    if (f < 0 || e->n_args != 1 || e->args[0].key) {
        lw_error(L, e->loc,
                 "%s must be a constant number (a number, a dim, "
                 "arithmetic, or sqrt, rsqrt, exp, log, abs of those)",
                 what);
        return false;
    }
    double x;
    if (!lw_eval_num(L, sc, e->args[0].value, what, &x))
        return false;
    double r[] = {sqrt(x), 1 / sqrt(x), exp(x), log(x), fabs(x)};
    *out = r[f];
    return true;
}

static bool num_binary(Lower *L, const Expr *e, double a, double b, double *out)
{
    switch (e->op) {
    case BIN_ADD: *out = a + b; return true;
    case BIN_SUB: *out = a - b; return true;
    case BIN_MUL: *out = a * b; return true;
    default:
        if (b == 0) {
            lw_error(L, e->loc, "division by zero in %s",
                     lw_expr_text(L->a, e));
            return false;
        }
        *out = a / b;
        return true;
    }
}

bool lw_eval_num(Lower *L, const Scope *sc, const Expr *e, const char *what,
                 double *out)
{
    int64_t i;
    double a, b;
    switch (e->kind) {
    case EX_NUM: *out = e->num; return true;
    case EX_NAME:
        if (!const_name(L, sc, e, what, &i))
            return false;
        *out = (double)i;
        return true;
    case EX_UNARY:
        if (!lw_eval_num(L, sc, e->lhs, what, &a))
            return false;
        *out = -a;
        return true;
    case EX_BINARY:
        if (e->op > BIN_DIV)
            break;
        if (!lw_eval_num(L, sc, e->lhs, what, &a) |
            !lw_eval_num(L, sc, e->rhs, what, &b))
            return false;
        return num_binary(L, e, a, b, out);
    case EX_CALL: return num_call(L, sc, e, what, out);
    default: break;
    }
    lw_error(L, e->loc, "%s must be a constant number", what);
    return false;
}

bool lw_eval_bool(Lower *L, const Scope *sc, const Expr *e, const char *what,
                  bool *out)
{
    if (e->kind == EX_BOOL) {
        *out = e->bval;
        return true;
    }
    lw_error(L, e->loc, "%s must be true or false", what);
    return false;
}

bool lw_eval_int_list(Lower *L, const Scope *sc, const Expr *e,
                      const char *what, bool allow_scalar, int64_t *out, int *n)
{
    if (e->kind != EX_LIST) {
        if (!allow_scalar) {
            lw_error(L, e->loc, "%s must be a list such as [2, 3]", what);
            return false;
        }
        *n = 1;
        return lw_eval_int(L, sc, e, what, out);
    }
    if (e->n_elems > IR_MAX_RANK) {
        lw_error(L, e->loc, "%s has %d entries, more than the maximum rank %d",
                 what, e->n_elems, IR_MAX_RANK);
        return false;
    }
    bool ok = true;
    for (int i = 0; i < e->n_elems; i++)
        ok &= lw_eval_int(L, sc, e->elems[i], what, &out[i]);
    *n = e->n_elems;
    return ok;
}

/* ---- types and axes ----------------------------------------------------- */

const char *lw_type_str(Lower *L, const Type *t)
{
    char buf[256];
    return arena_strdup(L->a, ir_type_str(t, buf, sizeof buf));
}

/* Element count and byte size (4 bytes an element) must fit in 63 bits. */
static bool check_size(Lower *L, SrcLoc loc, const Type *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        if (__builtin_mul_overflow(n, t->dims[i], &n) || n > INT64_MAX / 4) {
            lw_error(L, loc,
                     "%s is too large: its size in bytes does not fit "
                     "in 63 bits",
                     lw_type_str(L, t));
            return false;
        }
    return true;
}

static void dim_not_positive(Lower *L, const Expr *e, int64_t d)
{
    if (e->kind == EX_NUM || (e->kind == EX_UNARY && e->lhs->kind == EX_NUM))
        lw_error(L, e->loc, "dimensions must be positive, not %lld",
                 (long long)d);
    else
        lw_error(L, e->loc,
                 "dimension %s is %lld, but dimensions must be "
                 "positive",
                 lw_expr_text(L->a, e), (long long)d);
}

bool lw_eval_type(Lower *L, const Scope *sc, const TypeExpr *te, Type *out)
{
    if (te->rank > IR_MAX_RANK) {
        lw_error(L, te->loc, "a tensor has at most %d dimensions, not %d",
                 IR_MAX_RANK, te->rank);
        return false;
    }
    bool ok = true;
    *out = (Type){.dtype = te->dtype, .rank = te->rank};
    for (int i = 0; i < te->rank; i++) {
        int64_t d = 0;
        if (!lw_eval_int(L, sc, te->dims[i], "a dimension", &d)) {
            ok = false;
        } else if (d <= 0) {
            dim_not_positive(L, te->dims[i], d);
            ok = false;
        }
        out->dims[i] = d;
    }
    return ok && check_size(L, te->loc, out);
}

bool lw_norm_axis(Lower *L, SrcLoc loc, const char *what, const Type *t,
                  int64_t axis, int32_t *out)
{
    int r = t->rank;
    if (axis < -r || axis >= r) {
        if (r == 0)
            lw_error(L, loc,
                     "%s of %s: axis %lld is out of range (a scalar "
                     "has no axes)",
                     what, lw_type_str(L, t), (long long)axis);
        else
            lw_error(L, loc,
                     "%s of %s: axis %lld is out of range for rank %d "
                     "(use %d..%d)",
                     what, lw_type_str(L, t), (long long)axis, r, -r, r - 1);
        return false;
    }
    *out = (int32_t)(axis < 0 ? axis + r : axis);
    return true;
}
