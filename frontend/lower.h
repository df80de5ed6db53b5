/* lower.h — private to the lowering (frontend/lower*.c): the state of one
 * AST -> IR lowering and the functions its files share.
 *
 *   lower.c          fe_lower: the statement loop, outputs and results
 *   lower_scope.c    symbols, name lookup, "unknown name" messages
 *   lower_const.c    compile-time integers, numbers, booleans and types
 *   lower_decl.c     dim, input, param (initialisers), output, train
 *   lower_expr.c     expressions, slicing, calls, argument binding
 *   lower_builtin.c  the built-in functions of the spec's table
 *   lower_fn.c       fn definitions (checked once) and inlining
 *   lower_scan.c     scan bodies as graphs of their own, captures
 *
 * Names resolve through a Scope: a fn body's arguments and bindings
 * (locals), then the top-level symbols that were defined before the fn
 * (Scope.limit), which is how a fn sees its definition's scope "as text"
 * whatever is rebound later.  Top-level symbols are never removed; a
 * rebinding adds a newer symbol of the same name.
 *
 * A value symbol remembers the graph it lives in (GraphCtx).  Used inside
 * a scan body it is captured: the body gets an ARG for it and the scan
 * node an extra operand, through every enclosing body in between.
 *
 * Errors are reported where they are found and the failing value becomes
 * IR_NONE (or a poisoned symbol); everything built on a failed value fails
 * quietly, so one mistake gives one message. */
#ifndef NNC_LOWER_H
#define NNC_LOWER_H

#include "frontend/ast.h"

/* Lowering stops with an error past this many nodes and fn expansions:
 * fns are inlined, and a chain of fns calling the previous one twice
 * doubles at every step. */
#define LW_MAX_WORK ((int64_t)1 << 19)

/* ... and past this depth of nested expressions and fn expansions, which
 * the lowering recurses through: the parser bounds one expression's height,
 * but a chain of fns each calling the previous nests without bound.  1024
 * keeps the deepest recursion inside an 8 MB stack even with ASan's larger
 * frames (4096 overflowed it). */
#define LW_MAX_DEPTH 1024

/* ---- graphs being built ------------------------------------------------ */

typedef struct Capture {
    Value outer; /* in the parent graph */
    Value inner; /* the ARG standing for it here */
} Capture;

typedef struct GraphCtx GraphCtx;
struct GraphCtx {
    Graph *g;
    GraphCtx *parent;      /* NULL for the main graph */
    int32_t n_fixed;       /* scan body: carries + slices, before captures */
    VEC(Capture) captures; /* in first-use order */
};

/* ---- symbols ------------------------------------------------------------ */

typedef enum SymKind {
    SYM_DIM,
    SYM_INPUT,
    SYM_PARAM,
    SYM_VALUE,
    SYM_FN,
    SYM_POISON, /* its definition failed: uses fail quietly */
} SymKind;

typedef struct FnDef {
    const Stmt *st;
    int32_t limit; /* top-level symbols visible in the body: index < limit */
    bool broken;   /* the definition had an error: calls fail quietly */
} FnDef;

typedef struct Sym {
    const char *name;
    SymKind kind;
    SrcLoc loc;      /* of the name where it was defined */
    int64_t dim;     /* SYM_DIM */
    GraphCtx *owner; /* SYM_INPUT, SYM_PARAM, SYM_VALUE: v's graph */
    Value v;
    FnDef *fn;    /* SYM_FN */
    int32_t prev; /* top level: older symbol of the same name, or -1 */
} Sym;

typedef struct Scope {
    VEC(Sym) locals; /* fn arguments and bindings, newest last */
    int32_t limit;   /* visible top-level symbols: index < limit */
    const FnDef *fn; /* the fn whose body this is; NULL at top level */
} Scope;

/* The values of an expression: one, or several (a fn with several
 * returns, split, scan).  n == 0: it failed and the error is reported. */
typedef struct Vals {
    Value *v;
    int n;
} Vals;

typedef struct OutputRec {
    const char *name;
    Value v;
    SrcLoc loc;
} OutputRec;

typedef struct TopName {
    const char *name;
    SrcLoc loc;
} TopName;

typedef struct Lower {
    Arena *a;
    Module *m;
    Diag *d;
    GraphCtx main;
    GraphCtx *ctx;  /* where nodes go now */
    Scope top;      /* the top-level scope */
    VEC(Sym) syms;  /* top-level symbols, in definition order */
    int32_t *slots; /* hash table: name -> newest symbol index */
    int32_t n_slots, n_used;
    VEC(TopName) top_names; /* every top-level definition, from a prescan */
    const char *note;       /* appended to errors inside an inlined fn */
    DimOverride *ov;
    int n_ov;
    int64_t work; /* nodes added + fns inlined */
    int depth;    /* current nesting, at most LW_MAX_DEPTH */
    bool aborted; /* LW_MAX_WORK exceeded */
    VEC(OutputRec) outputs;
    bool have_train;
    SrcLoc train_loc;
    Value loss;
} Lower;

/* Positional-or-keyword parameters of a callable. */
typedef struct ParamSpec {
    const char *name;
    bool required;
} ParamSpec;

/* ---- lower_scope.c ----------------------------------------------------- */

void lw_error(Lower *L, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void lw_define(Lower *L, Sym s);          /* a top-level symbol */
void lw_bind(Lower *L, Scope *sc, Sym s); /* top-level or local */
bool lw_lookup(const Lower *L, const Scope *sc, const char *name, Sym *out);
/* "unknown name 'x'", "... defined later", "cannot call itself", with a
 * suggestion; `callable`: the name was called. */
void lw_unknown(Lower *L, const Scope *sc, const char *name, SrcLoc loc,
                bool callable);
/* A name used as a value that does not resolve: "a built-in function; call
 * it" for a built-in, else lw_unknown's message. */
void lw_unresolved_name(Lower *L, const Scope *sc, const Expr *e);
/* A binding or fn argument may not rebind a dim, input, param or fn. */
bool lw_check_bindable(Lower *L, const Scope *sc, const char *name, SrcLoc loc);
/* A declaration's name must be new. */
bool lw_check_new_decl(Lower *L, const char *name, SrcLoc loc);
const char *lw_kind_phrase(SymKind k); /* "a dim", "an input", "a tensor" */
bool lw_spend(Lower *L, int64_t n, SrcLoc loc); /* false once too large */
/* Enters one level of nesting; false (reported once) past LW_MAX_DEPTH.
 * Every successful lw_enter is matched by L->depth--. */
bool lw_enter(Lower *L, SrcLoc loc);

/* ---- lower_const.c ----------------------------------------------------- */

/* `what` names the thing in messages: "argument 'axis' of sum". */
bool lw_eval_int(Lower *L, const Scope *sc, const Expr *e, const char *what,
                 int64_t *out);
bool lw_eval_num(Lower *L, const Scope *sc, const Expr *e, const char *what,
                 double *out);
bool lw_eval_bool(Lower *L, const Scope *sc, const Expr *e, const char *what,
                  bool *out);
/* [a, b, ...] of integers (or a single integer if allow_scalar). */
bool lw_eval_int_list(Lower *L, const Scope *sc, const Expr *e,
                      const char *what, bool allow_scalar, int64_t *out,
                      int *n);
/* An integer literal, a dim, or + - * / and unary - over them. */
bool lw_is_int_const(const Lower *L, const Scope *sc, const Expr *e);
bool lw_eval_type(Lower *L, const Scope *sc, const TypeExpr *te, Type *out);
const char *lw_expr_text(Arena *a, const Expr *e); /* "C / NH" */
/* Python's axis in -rank..rank-1, normalised; the message names `what`
 * applied to t: "sum of f32[2, 3]: axis 2 is out of range ...". */
bool lw_norm_axis(Lower *L, SrcLoc loc, const char *what, const Type *t,
                  int64_t axis, int32_t *out);
const char *lw_type_str(Lower *L, const Type *t); /* arena copy */

/* ---- lower_decl.c ------------------------------------------------------ */

void lw_dim(Lower *L, const Stmt *st);
void lw_input(Lower *L, const Stmt *st);
void lw_param(Lower *L, const Stmt *st);
void lw_output(Lower *L, const Stmt *st);
void lw_train(Lower *L, const Stmt *st);

/* ---- lower_expr.c ------------------------------------------------------ */

Value lw_emit(Lower *L, Op op, const Value *in, int n_in, const Attrs *at,
              SrcLoc loc);
Value lw_const(Lower *L, double value, Type t, SrcLoc loc);
Vals lw_vals1(Lower *L, Value v);
Value lw_expr(Lower *L, Scope *sc, const Expr *e);
Vals lw_multi(Lower *L, Scope *sc, const Expr *e);
Vals lw_call(Lower *L, Scope *sc, const Expr *e);
/* Lowers each expression of the list; false (after lowering them all) if
 * any failed. */
bool lw_exprs(Lower *L, Scope *sc, const Expr *const *es, int n, Value *out);
/* Matches call's arguments to ps: slots[i] is the argument for ps[i] or
 * NULL.  Reports unknown, repeated, missing and surplus arguments. */
bool lw_bind_args(Lower *L, const char *fname, const ParamSpec *ps, int n,
                  const Expr *call, const Expr **slots);
void lw_bind_stmt(Lower *L, Scope *sc, const Stmt *st);
/* Reports a call of something that is not a fn or built-in. */
void lw_bad_callee(Lower *L, const Scope *sc, const Expr *call);

/* ---- lower_builtin.c --------------------------------------------------- */

typedef struct Builtin Builtin;
const Builtin *lw_builtin(const char *name); /* NULL if not a built-in */
int lw_n_builtins(void);
const char *lw_builtin_name(int i);
Vals lw_call_builtin(Lower *L, Scope *sc, const Builtin *b, const Expr *call);

/* ---- lower_fn.c -------------------------------------------------------- */

void lw_fn_def(Lower *L, const Stmt *st);
Vals lw_call_fn(Lower *L, Scope *sc, const FnDef *fn, const Expr *call);
/* Lowers fn's body into the current graph with its arguments bound to
 * args; `how` ("called", "scanned") and call_loc go into error notes. */
Vals lw_inline(Lower *L, const FnDef *fn, const Value *args, SrcLoc call_loc,
               const char *how);

/* ---- lower_scan.c ------------------------------------------------------ */

/* The value v of graph `owner` as seen from the current graph (captured
 * into every scan body in between). */
Value lw_value_in(Lower *L, GraphCtx *owner, Value v);
Vals lw_scan(Lower *L, Scope *sc, const Expr *call, const Expr **slots);

/* ---- compile.c --------------------------------------------------------- */

bool lw_is_c_keyword(const char *s);

#endif
