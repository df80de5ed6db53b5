/* lower_builtin.c — the built-in functions of the spec's table, each a row
 * naming its parameters (tensor operands first, then the options in the
 * order the spec lists them, so `softmax(x, -1)` is `softmax(x, axis =
 * -1)`) and the function that lowers it.  Options are compile-time
 * constants and become node attributes:
 *
 *   sum(x, axis = [0, -1], keepdims = true)   %4 = sum %1 {axes 0b101, keepdims}
 *   q, k, v = split(z, 3, axis = -1)          three slices of the last axis
 *
 * Shape errors come from the ops' rules (ir/shape.c) through lw_emit;
 * errors about the options themselves (an axis out of range, a split that
 * does not divide) are reported here. */
#include "frontend/lower.h"

#include <math.h>
#include <string.h>

typedef Vals (*BuiltinImpl)(Lower *L, Scope *sc, const Builtin *b,
                            const Expr *call, const Expr **slot);

struct Builtin {
    const char *name;
    Op op;
    BuiltinImpl impl;
    int n_tensors; /* the leading parameters that are tensors */
    int n_params;
    ParamSpec params[5];
    double dflt; /* zeros/ones: the fill value; norms: eps */
};

/* "argument 'axis' of sum", for messages about an option. */
static const char *arg_what(Lower *L, const Builtin *b, int i)
{
    return arena_printf(L->a, "argument '%s' of %s", b->params[i].name,
                        b->name);
}

/* Lowers the tensor operands (all of them, so each error is reported). */
static bool operands(Lower *L, Scope *sc, const Builtin *b, const Expr **slot,
                     Value *out)
{
    return lw_exprs(L, sc, slot, b->n_tensors, out);
}

static Type type_of(Lower *L, Value v) { return ir_value_type(L->ctx->g, v); }

static Vals emit1(Lower *L, const Builtin *b, const Value *in, const Attrs *at,
                  const Expr *call)
{
    return lw_vals1(L, lw_emit(L, b->op, in, b->n_tensors, at, call->loc));
}

/* Operands only: unary and binary elementwise ops, where, transpose,
 * embedding, causal_mask and the losses. */
static Vals impl_ops(Lower *L, Scope *sc, const Builtin *b, const Expr *call,
                     const Expr **slot)
{
    Value in[3];
    if (!operands(L, sc, b, slot, in))
        return (Vals){0};
    return emit1(L, b, in, NULL, call);
}

/* One number option into attr.value: pow's p, dropout's p, the norms' eps. */
static Vals impl_value(Lower *L, Scope *sc, const Builtin *b, const Expr *call,
                       const Expr **slot)
{
    Value in[3];
    Attrs at = {.value = b->dflt};
    bool ok = operands(L, sc, b, slot, in);
    const Expr *opt = slot[b->n_tensors];
    if (opt)
        ok &= lw_eval_num(L, sc, opt, arg_what(L, b, b->n_tensors), &at.value);
    return ok ? emit1(L, b, in, &at, call) : (Vals){0};
}

/* zeros(D, ...), ones(D, ...), full(V, D, ...): a constant. */
static Vals impl_fill(Lower *L, Scope *sc, const Builtin *b, const Expr *call)
{
    bool full = b->dflt < 0;
    for (int i = 0; i < call->n_args; i++)
        if (call->args[i].key) {
            lw_error(L, call->args[i].loc, "%s takes no keyword arguments",
                     b->name);
            return (Vals){0};
        }
    if (full && call->n_args == 0) {
        lw_error(L, call->loc, "missing argument 'value' of full");
        return (Vals){0};
    }
    double v = b->dflt;
    bool ok = !full ||
              lw_eval_num(L, sc, call->args[0].value, "the value of full", &v);
    int first = full ? 1 : 0;
    const Expr *dims[IR_MAX_RANK + 1];
    int rank = call->n_args - first;
    for (int i = 0; i < rank && i <= IR_MAX_RANK; i++)
        dims[i] = call->args[first + i].value;
    TypeExpr te = {
        .dtype = DT_F32, .dims = (Expr **)dims, .rank = rank, .loc = call->loc};
    Type t;
    ok &= lw_eval_type(L, sc, &te, &t);
    return ok ? lw_vals1(L, lw_const(L, v, t, call->loc)) : (Vals){0};
}

/* permute(x, [p0, p1, ...]): the list must have one entry per axis. */
static Vals impl_permute(Lower *L, Scope *sc, const Builtin *b,
                         const Expr *call, const Expr **slot)
{
    Value x;
    int64_t p[IR_MAX_RANK];
    int n = 0;
    bool ok = operands(L, sc, b, slot, &x);
    ok &= lw_eval_int_list(L, sc, slot[1], "the permutation of permute", false,
                           p, &n);
    if (!ok)
        return (Vals){0};
    Type t = type_of(L, x);
    Attrs at = {0};
    if (n != t.rank) {
        lw_error(L, slot[1]->loc,
                 "permute of %s: the permutation has %d "
                 "entr%s, but the rank is %d",
                 lw_type_str(L, &t), n, n == 1 ? "y" : "ies", t.rank);
        return (Vals){0};
    }
    for (int i = 0; i < n; i++) {
        if (p[i] < -t.rank || p[i] >= t.rank) {
            lw_error(L, slot[1]->elems[i]->loc,
                     "permute of %s: axis %lld is "
                     "out of range for rank %d",
                     lw_type_str(L, &t), (long long)p[i], t.rank);
            return (Vals){0};
        }
        at.perm[i] = (int32_t)p[i];
    }
    return emit1(L, b, &x, &at, call);
}

/* reshape(x, [D, ...]) (one -1 allowed; the rule resolves it) and
 * broadcast_to(x, [D, ...]): the target shape in attr.type. */
static Vals impl_target(Lower *L, Scope *sc, const Builtin *b, const Expr *call,
                        const Expr **slot)
{
    Value x;
    int64_t d[IR_MAX_RANK];
    int n = 0;
    bool ok = operands(L, sc, b, slot, &x);
    ok &= lw_eval_int_list(L, sc, slot[1],
                           arena_printf(L->a, "the shape of %s", b->name),
                           false, d, &n);
    if (!ok)
        return (Vals){0};
    Attrs at = {.type = ir_type_make(type_of(L, x).dtype, n, d)};
    return emit1(L, b, &x, &at, call);
}

/* concat([a, b, ...], axis = 0). */
static Vals impl_concat(Lower *L, Scope *sc, const Builtin *b, const Expr *call,
                        const Expr **slot)
{
    const Expr *list = slot[0];
    int64_t axis = 0;
    if (list->kind != EX_LIST || list->n_elems == 0) {
        lw_error(L, list->loc,
                 "the first argument of concat must be a list of "
                 "tensors, as in concat([a, b], axis = 0)");
        return (Vals){0};
    }
    Value *in = arena_alloc(L->a, sizeof(Value) * (size_t)list->n_elems);
    bool ok =
        lw_exprs(L, sc, (const Expr *const *)list->elems, list->n_elems, in);
    if (slot[1])
        ok &= lw_eval_int(L, sc, slot[1], arg_what(L, b, 1), &axis);
    Attrs at = {0};
    Type t = ok ? type_of(L, in[0]) : (Type){0};
    if (!ok || !lw_norm_axis(L, slot[1] ? slot[1]->loc : call->loc, "concat",
                             &t, axis, &at.axis))
        return (Vals){0};
    return lw_vals1(L,
                    lw_emit(L, OP_CONCAT, in, list->n_elems, &at, call->loc));
}

/* split(x, N, axis = 0): N slices of equal size. */
static Vals impl_split(Lower *L, Scope *sc, const Builtin *b, const Expr *call,
                       const Expr **slot)
{
    Value x;
    int64_t n = 0, axis = 0;
    int32_t ax;
    bool ok = operands(L, sc, b, slot, &x);
    ok &= lw_eval_int(L, sc, slot[1], arg_what(L, b, 1), &n);
    if (slot[2])
        ok &= lw_eval_int(L, sc, slot[2], arg_what(L, b, 2), &axis);
    Type t = ok ? type_of(L, x) : (Type){0};
    if (!ok || !lw_norm_axis(L, slot[2] ? slot[2]->loc : call->loc, "split", &t,
                             axis, &ax))
        return (Vals){0};
    const char *ts = lw_type_str(L, &t);
    if (n <= 0 || t.dims[ax] % n != 0) {
        if (n <= 0)
            lw_error(L, slot[1]->loc,
                     "split of %s into %lld parts: the number "
                     "of parts must be positive",
                     ts, (long long)n);
        else
            lw_error(L, slot[1]->loc,
                     "split of %s into %lld parts along axis "
                     "%d: %lld is not divisible by %lld",
                     ts, (long long)n, ax, (long long)t.dims[ax], (long long)n);
        return (Vals){0};
    }
    if (!lw_spend(L, n, call->loc))
        return (Vals){0};
    Vals r = {arena_alloc(L->a, sizeof(Value) * (size_t)n), (int)n};
    int64_t part = t.dims[ax] / n;
    for (int64_t i = 0; i < n; i++) {
        Attrs at = {0};
        for (int j = 0; j < t.rank; j++)
            at.stop[j] = t.dims[j];
        at.start[ax] = i * part;
        at.stop[ax] = (i + 1) * part;
        r.v[i] = lw_emit(L, OP_SLICE, &x, 1, &at, call->loc);
        if (!r.v[i].id)
            return (Vals){0};
    }
    return r;
}

/* sum/mean/max(x, axis = K or [K, ...], keepdims = false). */
static Vals impl_reduce(Lower *L, Scope *sc, const Builtin *b, const Expr *call,
                        const Expr **slot)
{
    Value x;
    int64_t axes[IR_MAX_RANK];
    int n = 0;
    Attrs at = {0};
    bool ok = operands(L, sc, b, slot, &x);
    if (slot[1])
        ok &=
            lw_eval_int_list(L, sc, slot[1], arg_what(L, b, 1), true, axes, &n);
    if (slot[2])
        ok &= lw_eval_bool(L, sc, slot[2], arg_what(L, b, 2), &at.keepdims);
    if (!ok)
        return (Vals){0};
    Type t = type_of(L, x);
    at.axes = slot[1] || t.rank == 0 ? 0 : (uint32_t)((1u << t.rank) - 1);
    for (int i = 0; i < n; i++) {
        int32_t ax;
        if (!lw_norm_axis(L, slot[1]->loc, b->name, &t, axes[i], &ax))
            return (Vals){0};
        if (at.axes >> ax & 1) {
            lw_error(L, slot[1]->loc, "%s of %s: axis %d is given twice",
                     b->name, lw_type_str(L, &t), ax);
            return (Vals){0};
        }
        at.axes |= 1u << ax;
    }
    return emit1(L, b, &x, &at, call);
}

/* softmax/log_softmax(x, axis = -1). */
static Vals impl_softmax(Lower *L, Scope *sc, const Builtin *b,
                         const Expr *call, const Expr **slot)
{
    Value x;
    int64_t axis = -1;
    Attrs at = {0};
    bool ok = operands(L, sc, b, slot, &x);
    if (slot[1])
        ok &= lw_eval_int(L, sc, slot[1], arg_what(L, b, 1), &axis);
    Type t = ok ? type_of(L, x) : (Type){0};
    if (!ok || !lw_norm_axis(L, slot[1] ? slot[1]->loc : call->loc, b->name, &t,
                             axis, &at.axis))
        return (Vals){0};
    return emit1(L, b, &x, &at, call);
}

/* attention(q, k, v, causal = false, scale = 1/sqrt(d)), d = q's last axis. */
static Vals impl_attention(Lower *L, Scope *sc, const Builtin *b,
                           const Expr *call, const Expr **slot)
{
    Value in[3];
    Attrs at = {0};
    bool ok = operands(L, sc, b, slot, in);
    if (slot[3])
        ok &= lw_eval_bool(L, sc, slot[3], arg_what(L, b, 3), &at.flag);
    if (slot[4])
        ok &= lw_eval_num(L, sc, slot[4], arg_what(L, b, 4), &at.value);
    if (!ok)
        return (Vals){0};
    Type q = type_of(L, in[0]);
    if (!slot[4])
        at.value = q.rank ? 1 / sqrt((double)q.dims[q.rank - 1]) : 1;
    return emit1(L, b, in, &at, call);
}

static Vals impl_scan(Lower *L, Scope *sc, const Builtin *b, const Expr *call,
                      const Expr **slot)
{
    return lw_scan(L, sc, call, slot);
}

/* ---- the table ----------------------------------------------------------- */

// clang-format off
#define X {"x", true}
#define UNARY(name, op) {name, op, impl_ops, 1, 1, {X}, 0}
#define PAIR(name, op, a, b) {name, op, impl_ops, 2, 2, {{a, true}, {b, true}}, 0}
#define REDUCE(name, op) \
    {name, op, impl_reduce, 1, 3, {X, {"axis", false}, {"keepdims", false}}, 0}

static const Builtin builtins[] = {
    UNARY("neg", OP_NEG), UNARY("exp", OP_EXP), UNARY("log", OP_LOG),
    UNARY("sqrt", OP_SQRT), UNARY("rsqrt", OP_RSQRT), UNARY("abs", OP_ABS),
    UNARY("relu", OP_RELU), UNARY("sigmoid", OP_SIGMOID), UNARY("tanh", OP_TANH),
    UNARY("gelu", OP_GELU), UNARY("gelu_tanh", OP_GELU_TANH),
    UNARY("silu", OP_SILU), UNARY("softplus", OP_SOFTPLUS),
    {"pow", OP_POW, impl_value, 1, 2, {X, {"p", true}}, 0},
    PAIR("maximum", OP_MAXIMUM, "a", "b"), PAIR("minimum", OP_MINIMUM, "a", "b"),
    {"where", OP_WHERE, impl_ops, 3, 3, {{"cond", true}, {"a", true}, {"b", true}}, 0},
    {"zeros", OP_CONST, NULL, 0, 0, {{0}}, 0},
    {"ones", OP_CONST, NULL, 0, 0, {{0}}, 1},
    {"full", OP_CONST, NULL, 0, 0, {{0}}, -1},
    UNARY("transpose", OP_TRANSPOSE),
    {"permute", OP_PERMUTE, impl_permute, 1, 2, {X, {"dims", true}}, 0},
    {"reshape", OP_RESHAPE, impl_target, 1, 2, {X, {"shape", true}}, 0},
    {"broadcast_to", OP_BROADCAST_TO, impl_target, 1, 2, {X, {"shape", true}}, 0},
    {"concat", OP_CONCAT, impl_concat, 0, 2, {{"tensors", true}, {"axis", false}}, 0},
    {"split", OP_SLICE, impl_split, 1, 3, {X, {"chunks", true}, {"axis", false}}, 0},
    REDUCE("sum", OP_SUM), REDUCE("mean", OP_MEAN), REDUCE("max", OP_MAX),
    {"softmax", OP_SOFTMAX, impl_softmax, 1, 2, {X, {"axis", false}}, 0},
    {"log_softmax", OP_LOG_SOFTMAX, impl_softmax, 1, 2, {X, {"axis", false}}, 0},
    {"layernorm", OP_LAYERNORM, impl_value, 3, 4,
     {X, {"gamma", true}, {"beta", true}, {"eps", false}}, 1e-5},
    {"rmsnorm", OP_RMSNORM, impl_value, 2, 3, {X, {"gamma", true}, {"eps", false}}, 1e-6},
    PAIR("embedding", OP_GATHER, "table", "ids"),
    UNARY("causal_mask", OP_CAUSAL_MASK),
    {"attention", OP_ATTENTION, impl_attention, 3, 5,
     {{"q", true}, {"k", true}, {"v", true}, {"causal", false}, {"scale", false}}, 0},
    {"dropout", OP_DROPOUT, impl_value, 1, 2, {X, {"p", true}}, 0},
    PAIR("cross_entropy", OP_CROSS_ENTROPY, "logits", "targets"),
    PAIR("mse", OP_MSE, "a", "b"),
    PAIR("bce_with_logits", OP_BCE_WITH_LOGITS, "z", "t"),
    {"scan", OP_SCAN, impl_scan, 0, 4,
     {{"f", true}, {"init", true}, {"over", true}, {"reverse", false}}, 0},
};
// clang-format on

#define N_BUILTINS ((int)(sizeof builtins / sizeof builtins[0]))

const Builtin *lw_builtin(const char *name)
{
    for (int i = 0; i < N_BUILTINS; i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}

int lw_n_builtins(void) { return N_BUILTINS; }

const char *lw_builtin_name(int i) { return builtins[i].name; }

Vals lw_call_builtin(Lower *L, Scope *sc, const Builtin *b, const Expr *call)
{
    const Expr *slot[5];
    if (!b->impl)
        return impl_fill(L, sc, b, call);
    if (!lw_bind_args(L, b->name, b->params, b->n_params, call, slot))
        return (Vals){0};
    return b->impl(L, sc, b, call, slot);
}
