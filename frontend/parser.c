/* parser.c — tokens (lexer.c) to the syntax tree of ast.h, by recursive
 * descent; lower.c takes the tree from here.  Each grammar rule is one
 * function named after it, with the rule in a comment above it.
 *
 * Errors say what was expected in plain words and point at the token that
 * is wrong, or at the operator for a missing operand.  After an error the
 * parser is in "panic": further errors are dropped until it has skipped to
 * the next statement boundary (a newline or ';' outside brackets and
 * braces), so every independent error in a file is reported once.  Errors
 * at a TK_ERROR token are dropped too: the lexer has reported that text.
 *
 * Hostile input is bounded: recursion (nested brackets, unary minus) stops
 * at PARSE_MAX_DEPTH, and an expression may not be more than
 * PARSE_MAX_HEIGHT operations deep (a left-associative chain grows the tree
 * without recursion here, but lower.c walks it recursively).  Nested fn
 * definitions are skipped, not parsed, so they do not recurse either. */
#include "frontend/ast.h"
#include "frontend/lexer.h"

#include <math.h>
#include <string.h>

#define PARSE_MAX_DEPTH  256
#define PARSE_MAX_HEIGHT 1024

typedef struct Parser {
    Arena *a;
    Diag *d;
    Lexer lx;
    Token tok;  /* the current token */
    Token prev; /* the one before it */
    bool panic; /* an error was reported: quiet until the next statement */
    int depth;  /* active recursive rules, at most PARSE_MAX_DEPTH */
    int height; /* height of the expression tree parsed last */
    int n_top;  /* top-level statements started, for 'model' */
    bool in_fn; /* parsing a fn body */
} Parser;

typedef struct NameList {
    VEC(const char *) names;
    VEC(SrcLoc) locs;
} NameList;

static Expr *parse_expr(Parser *p);
static Stmt *parse_statement(Parser *p);

/* ---- tokens and errors --------------------------------------------------- */

static void advance(Parser *p)
{
    p->prev = p->tok;
    p->tok = lex_next(&p->lx);
}

static bool at(const Parser *p, TokKind k) { return p->tok.kind == k; }

static bool accept(Parser *p, TokKind k)
{
    if (!at(p, k))
        return false;
    advance(p);
    return true;
}

static int max_int(int a, int b) { return a > b ? a : b; }

/* A token's text for messages, cut to 32 bytes (names may be huge). */
static const char *clip(Parser *p, const Token *t)
{
    if (t->kind == TK_NEWLINE || t->kind == TK_EOF)
        return lex_spelling(t->kind);
    int n = t->len > 32 ? 32 : (int)t->len;
    return arena_printf(p->a, "%.*s%s", n, t->text, t->len > 32 ? "..." : "");
}

/* "'b'", "end of line": what was found instead of what was expected. */
static const char *found(Parser *p, const Token *t)
{
    if (t->kind == TK_NEWLINE || t->kind == TK_EOF)
        return lex_spelling(t->kind);
    return arena_printf(p->a, "'%s'", clip(p, t));
}

/* Reports an error and enters panic: the statement is abandoned.  Quiet
 * in panic, and when the current token is lexer-reported bad text unless
 * the error is about an earlier token (`earlier`). */
static void report(Parser *p, bool earlier, SrcLoc loc, const char *fmt,
                   va_list ap)
{
    bool quiet =
        p->panic || p->lx.stopped || (!earlier && p->tok.kind == TK_ERROR);
    if (!quiet)
        diag_verror(p->d, loc, fmt, ap);
    p->panic = true;
}

/* An error found at the current token. */
static void syntax_error(Parser *p, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void syntax_error(Parser *p, SrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(p, false, loc, fmt, ap);
    va_end(ap);
}

/* An error about a keyword already consumed, whatever follows it. */
static void keyword_error(Parser *p, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void keyword_error(Parser *p, SrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(p, true, loc, fmt, ap);
    va_end(ap);
}

/* Reports an error about a statement that was parsed completely, so
 * there is nothing to skip. */
static void structure_error(Parser *p, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void structure_error(Parser *p, SrcLoc loc, const char *fmt, ...)
{
    if (p->lx.stopped)
        return;
    va_list ap;
    va_start(ap, fmt);
    diag_verror(p->d, loc, fmt, ap);
    va_end(ap);
}

static bool enter(Parser *p)
{
    if (p->depth >= PARSE_MAX_DEPTH) {
        syntax_error(p, p->tok.loc, "expression nested too deeply (limit %d)",
                     PARSE_MAX_DEPTH);
        return false;
    }
    p->depth++;
    return true;
}

static void leave(Parser *p) { p->depth--; }

static bool expect_closing(Parser *p, TokKind close, const Token *open)
{
    if (accept(p, close))
        return true;
    syntax_error(p, p->tok.loc, "expected '%s' to close '%s' opened at %d:%d",
                 lex_spelling(close), lex_spelling(open->kind), open->loc.line,
                 open->loc.col);
    return false;
}

/* Reads a NAME; `expected` says what for, as in "expected a name after
 * 'dim'". */
static bool expect_name(Parser *p, const char *expected, Token *name)
{
    if (at(p, TK_NAME)) {
        *name = p->tok;
        advance(p);
        return true;
    }
    if (lex_is_keyword(p->tok.kind))
        syntax_error(p, p->tok.loc,
                     "'%s' is a keyword and cannot be used as a name",
                     lex_spelling(p->tok.kind));
    else
        syntax_error(p, p->tok.loc, "expected %s", expected);
    return false;
}

static const char *name_of(Parser *p, const Token *t)
{
    return arena_strndup(p->a, t->text, t->len);
}

static void add_name(Parser *p, NameList *l, const Token *t)
{
    vec_push(p->a, &l->names, name_of(p, t));
    vec_push(p->a, &l->locs, t->loc);
}

/* ---- expression nodes ---------------------------------------------------- */

static Expr *new_expr(Parser *p, ExprKind kind, SrcLoc loc)
{
    Expr *e = arena_alloc(p->a, sizeof *e);
    e->kind = kind;
    e->loc = loc;
    return e;
}

/* Records the height of a new node, refusing trees too deep to walk. */
static Expr *grown(Parser *p, Expr *e, int height)
{
    if (height > PARSE_MAX_HEIGHT) {
        syntax_error(p, e->loc,
                     "expression has more than %d levels of operations; "
                     "split it into several bindings",
                     PARSE_MAX_HEIGHT);
        return NULL;
    }
    p->height = height;
    return e;
}

static bool binary_op_token(TokKind k)
{
    return k == TK_PLUS || k == TK_STAR || k == TK_SLASH || k == TK_AT ||
           (k >= TK_LT && k <= TK_NE);
}

/* Tokens that can begin an expression.  Other keywords count, so that
 * `x = model` is reported as a keyword misused, not a missing operand. */
static bool starts_expr(TokKind k)
{
    switch (k) {
    case TK_NAME:
    case TK_INT:
    case TK_FLOAT:
    case TK_LPAREN:
    case TK_LBRACKET:
    case TK_MINUS: return true;
    case TK_WITH:
    case TK_FROZEN: return false;
    default: return lex_is_keyword(k);
    }
}

/* An operand must follow `op` (an operator, '=', or a keyword such as
 * 'return'); if none does, the error points at `op`. */
static bool expect_operand(Parser *p, const Token *op)
{
    if (starts_expr(p->tok.kind))
        return true;
    bool after_operator = binary_op_token(op->kind) || op->kind == TK_MINUS;
    if (!after_operator && binary_op_token(p->tok.kind))
        syntax_error(p, p->tok.loc, "expected an expression before '%s'",
                     lex_spelling(p->tok.kind));
    else
        syntax_error(p, op->loc, "expected an expression after '%s'",
                     clip(p, op));
    return false;
}

/* ---- expressions --------------------------------------------------------- */

/* comma_exprs = [ expr { "," expr } [ "," ] ]   (up to `close`) */
static bool parse_comma_exprs(Parser *p, TokKind close, Expr ***out, int *n,
                              int *height)
{
    VEC(Expr *) v = {0};
    *height = 0;
    while (!at(p, close)) {
        Expr *e = parse_expr(p);
        if (!e)
            return false;
        *height = max_int(*height, p->height);
        vec_push(p->a, &v, e);
        if (!accept(p, TK_COMMA))
            break;
    }
    *out = v.data;
    *n = v.len;
    return true;
}

/* arg = NAME "=" expr | expr */
static bool parse_arg(Parser *p, Arg *arg)
{
    Token first = p->tok;
    Expr *e = parse_expr(p);
    if (!e)
        return false;
    if (first.kind == TK_NAME && e->kind == EX_NAME && at(p, TK_ASSIGN)) {
        Token eq = p->tok;
        advance(p);
        Expr *v = expect_operand(p, &eq) ? parse_expr(p) : NULL;
        *arg = (Arg){.key = e->name, .loc = first.loc, .value = v};
        return v != NULL;
    }
    *arg = (Arg){.key = NULL, .loc = e->loc, .value = e};
    return true;
}

/* call = NAME "(" [ arg { "," arg } [ "," ] ] ")"   (NAME may be 'scan') */
static Expr *parse_call(Parser *p, const Token *name)
{
    Token open = p->tok;
    advance(p);
    VEC(Arg) args = {0};
    bool keyword_seen = false;
    int h = 0;
    while (!at(p, TK_RPAREN)) {
        Arg arg;
        if (!parse_arg(p, &arg))
            return NULL;
        if (!arg.key && keyword_seen) {
            syntax_error(p, arg.loc,
                         "positional argument after keyword argument");
            return NULL;
        }
        keyword_seen |= arg.key != NULL;
        h = max_int(h, p->height);
        vec_push(p->a, &args, arg);
        if (!accept(p, TK_COMMA))
            break;
    }
    if (!expect_closing(p, TK_RPAREN, &open))
        return NULL;
    Expr *e = new_expr(p, EX_CALL, name->loc);
    e->name = name_of(p, name);
    e->name_loc = name->loc;
    e->args = args.data;
    e->n_args = args.len;
    return grown(p, e, h + 1);
}

/* paren = "(" expr ")"
 * tuple = "(" expr "," expr { "," expr } [ "," ] ")" */
static Expr *parse_paren(Parser *p)
{
    Token open = p->tok;
    advance(p);
    Expr *e = parse_expr(p);
    if (!e)
        return NULL;
    if (!at(p, TK_COMMA))
        return expect_closing(p, TK_RPAREN, &open) ? e : NULL;
    VEC(Expr *) elems = {0};
    vec_push(p->a, &elems, e);
    int h = p->height;
    while (accept(p, TK_COMMA) && !at(p, TK_RPAREN)) {
        Expr *x = parse_expr(p);
        if (!x)
            return NULL;
        h = max_int(h, p->height);
        vec_push(p->a, &elems, x);
    }
    if (elems.len < 2) {
        syntax_error(p, open.loc, "a tuple needs at least two elements");
        return NULL;
    }
    if (!expect_closing(p, TK_RPAREN, &open))
        return NULL;
    Expr *t = new_expr(p, EX_TUPLE, open.loc);
    t->elems = elems.data;
    t->n_elems = elems.len;
    return grown(p, t, h + 1);
}

/* list = "[" comma_exprs "]" */
static Expr *parse_list(Parser *p)
{
    Token open = p->tok;
    advance(p);
    Expr *l = new_expr(p, EX_LIST, open.loc);
    int h;
    if (!parse_comma_exprs(p, TK_RBRACKET, &l->elems, &l->n_elems, &h) ||
        !expect_closing(p, TK_RBRACKET, &open))
        return NULL;
    return grown(p, l, h + 1);
}

static Expr *number_expr(Parser *p, const Token *t)
{
    Expr *e = new_expr(p, EX_NUM, t->loc);
    if (t->kind == TK_INF) {
        e->num = INFINITY;
    } else {
        e->num = t->fval;
        e->is_int = t->kind == TK_INT;
        e->ival = t->ival;
    }
    return e;
}

/* Why the current token cannot begin an expression. */
static Expr *no_primary(Parser *p)
{
    TokKind k = p->tok.kind;
    if (binary_op_token(k))
        syntax_error(p, p->tok.loc, "expected an expression before '%s'",
                     lex_spelling(k));
    else if (lex_is_keyword(k))
        syntax_error(p, p->tok.loc,
                     "'%s' is a keyword and cannot be used as a name",
                     lex_spelling(k));
    else
        syntax_error(p, p->tok.loc, "expected an expression");
    return NULL;
}

/* primary = NUMBER | "inf" | "true" | "false" | NAME | call
 *         | "scan" "(" ... ")" | paren | tuple | list */
static Expr *parse_primary(Parser *p)
{
    Token t = p->tok;
    p->height = 1;
    switch (t.kind) {
    case TK_INT:
    case TK_FLOAT:
    case TK_INF: advance(p); return number_expr(p, &t);
    case TK_TRUE:
    case TK_FALSE: {
        advance(p);
        Expr *e = new_expr(p, EX_BOOL, t.loc);
        e->bval = t.kind == TK_TRUE;
        return e;
    }
    case TK_NAME: {
        advance(p);
        if (at(p, TK_LPAREN))
            return parse_call(p, &t);
        Expr *e = new_expr(p, EX_NAME, t.loc);
        e->name = name_of(p, &t);
        return e;
    }
    case TK_SCAN:
        advance(p);
        if (at(p, TK_LPAREN))
            return parse_call(p, &t);
        syntax_error(p, p->tok.loc, "expected '(' after 'scan'");
        return NULL;
    case TK_LPAREN: return parse_paren(p);
    case TK_LBRACKET: return parse_list(p);
    default: return no_primary(p);
    }
}

/* slice_item = expr | [ expr ] ":" [ expr ] */
static bool parse_slice_item(Parser *p, SliceItem *it, int *h)
{
    *it = (SliceItem){.loc = p->tok.loc};
    if (!at(p, TK_COLON)) {
        if (!(it->lo = parse_expr(p)))
            return false;
        *h = max_int(*h, p->height);
        if (!at(p, TK_COLON))
            return true;
    }
    it->is_slice = true;
    advance(p);
    if (!at(p, TK_COMMA) && !at(p, TK_RBRACKET) && !at(p, TK_COLON)) {
        if (!(it->hi = parse_expr(p)))
            return false;
        *h = max_int(*h, p->height);
    }
    if (at(p, TK_COLON)) {
        syntax_error(p, p->tok.loc,
                     "slice steps are not supported; write lo:hi");
        return false;
    }
    return true;
}

/* index = "[" slice_item { "," slice_item } [ "," ] "]" */
static Expr *parse_index(Parser *p, Expr *base)
{
    int h = p->height;
    Token open = p->tok;
    advance(p);
    if (at(p, TK_RBRACKET)) {
        syntax_error(p, p->tok.loc, "expected an index or a slice");
        return NULL;
    }
    VEC(SliceItem) items = {0};
    while (!at(p, TK_RBRACKET)) {
        SliceItem it;
        if (!parse_slice_item(p, &it, &h))
            return NULL;
        vec_push(p->a, &items, it);
        if (!accept(p, TK_COMMA))
            break;
    }
    if (!expect_closing(p, TK_RBRACKET, &open))
        return NULL;
    Expr *e = new_expr(p, EX_INDEX, open.loc);
    e->base = base;
    e->items = items.data;
    e->n_items = items.len;
    return grown(p, e, h + 1);
}

/* postfix = primary { index }   (calls are in primary: only names call) */
static Expr *parse_postfix(Parser *p)
{
    Expr *e = parse_primary(p);
    while (e && at(p, TK_LBRACKET))
        e = parse_index(p, e);
    if (e && at(p, TK_LPAREN)) {
        syntax_error(p, p->tok.loc, "only a name can be called");
        return NULL;
    }
    return e;
}

/* unary = "-" unary | postfix */
static Expr *parse_unary(Parser *p)
{
    if (!at(p, TK_MINUS))
        return parse_postfix(p);
    Token minus = p->tok;
    advance(p);
    if (!expect_operand(p, &minus) || !enter(p))
        return NULL;
    Expr *operand = parse_unary(p);
    leave(p);
    if (!operand)
        return NULL;
    Expr *e = new_expr(p, EX_UNARY, minus.loc);
    e->lhs = operand;
    return grown(p, e, p->height + 1);
}

typedef Expr *(*OperandRule)(Parser *p);
typedef bool (*OperatorSet)(TokKind k, BinOp *op);

/* operand { OPERATOR operand }, left-associative; the node's loc is its
 * operator's. */
static Expr *parse_left_assoc(Parser *p, OperandRule operand,
                              OperatorSet operators)
{
    Expr *e = operand(p);
    int h = p->height;
    BinOp op;
    while (e && operators(p->tok.kind, &op)) {
        Token optok = p->tok;
        advance(p);
        Expr *rhs = expect_operand(p, &optok) ? operand(p) : NULL;
        if (!rhs)
            return NULL;
        Expr *b = new_expr(p, EX_BINARY, optok.loc);
        b->op = op;
        b->lhs = e;
        b->rhs = rhs;
        h = max_int(h, p->height) + 1;
        e = grown(p, b, h);
    }
    return e;
}

static bool multiplicative_op(TokKind k, BinOp *op)
{
    switch (k) {
    case TK_STAR: *op = BIN_MUL; return true;
    case TK_SLASH: *op = BIN_DIV; return true;
    case TK_AT: *op = BIN_MATMUL; return true;
    default: return false;
    }
}

static bool additive_op(TokKind k, BinOp *op)
{
    switch (k) {
    case TK_PLUS: *op = BIN_ADD; return true;
    case TK_MINUS: *op = BIN_SUB; return true;
    default: return false;
    }
}

static bool comparison_op(TokKind k, BinOp *op)
{
    switch (k) {
    case TK_LT: *op = BIN_LT; return true;
    case TK_LE: *op = BIN_LE; return true;
    case TK_GT: *op = BIN_GT; return true;
    case TK_GE: *op = BIN_GE; return true;
    case TK_EQ: *op = BIN_EQ; return true;
    case TK_NE: *op = BIN_NE; return true;
    default: return false;
    }
}

/* multiplicative = unary { ( "*" | "/" | "@" ) unary } */
static Expr *parse_multiplicative(Parser *p)
{
    return parse_left_assoc(p, parse_unary, multiplicative_op);
}

/* additive = multiplicative { ( "+" | "-" ) multiplicative } */
static Expr *parse_additive(Parser *p)
{
    return parse_left_assoc(p, parse_multiplicative, additive_op);
}

/* comparison = additive { ( "<" | "<=" | ">" | ">=" | "==" | "!=" )
 *              additive } */
static Expr *parse_comparison(Parser *p)
{
    return parse_left_assoc(p, parse_additive, comparison_op);
}

/* expr = comparison */
static Expr *parse_expr(Parser *p)
{
    if (!enter(p))
        return NULL;
    Expr *e = parse_comparison(p);
    leave(p);
    return e;
}

/* ---- types --------------------------------------------------------------- */

/* type = ( "f32" | "i32" ) "[" comma_exprs "]" */
static bool parse_type(Parser *p, TypeExpr *t)
{
    Token name = p->tok;
    if (!at(p, TK_NAME)) {
        syntax_error(p, p->tok.loc, "expected a type such as f32[B, 64]");
        return false;
    }
    if (name.len == 3 && memcmp(name.text, "f32", 3) == 0) {
        t->dtype = DT_F32;
    } else if (name.len == 3 && memcmp(name.text, "i32", 3) == 0) {
        t->dtype = DT_I32;
    } else {
        syntax_error(p, name.loc,
                     "unknown element type '%s'; expected f32 or i32",
                     clip(p, &name));
        return false;
    }
    t->loc = name.loc;
    advance(p);
    Token open = p->tok;
    if (!at(p, TK_LBRACKET)) {
        syntax_error(p, p->tok.loc,
                     "expected '[' after '%.3s' (write %.3s[] for a scalar)",
                     name.text, name.text);
        return false;
    }
    advance(p);
    int h;
    return parse_comma_exprs(p, TK_RBRACKET, &t->dims, &t->rank, &h) &&
           expect_closing(p, TK_RBRACKET, &open);
}

/* ---- statements ---------------------------------------------------------- */

static Stmt *new_stmt(Parser *p, StmtKind kind, SrcLoc loc)
{
    Stmt *s = arena_alloc(p->a, sizeof *s);
    s->kind = kind;
    s->loc = loc;
    return s;
}

static void set_names(Stmt *s, const NameList *l)
{
    s->names = l->names.data;
    s->name_locs = l->locs.data;
    s->n_names = l->names.len;
}

/* A statement with a keyword and one name: model, dim, input, param, fn. */
static Stmt *named_stmt(Parser *p, StmtKind kind, const Token *kw)
{
    Token name;
    const char *expected =
        arena_printf(p->a, "a name after '%s'", lex_spelling(kw->kind));
    if (!expect_name(p, expected, &name))
        return NULL;
    Stmt *s = new_stmt(p, kind, kw->loc);
    NameList l = {0};
    add_name(p, &l, &name);
    set_names(s, &l);
    return s;
}

/* "=" expr, the right-hand side of dim, param and bindings. */
static Expr *parse_rhs(Parser *p)
{
    Token eq = p->tok;
    advance(p);
    return expect_operand(p, &eq) ? parse_expr(p) : NULL;
}

/* model_stmt = "model" NAME */
static Stmt *parse_model_stmt(Parser *p, const Token *kw)
{
    return named_stmt(p, ST_MODEL, kw);
}

/* dim_stmt = "dim" NAME "=" expr */
static Stmt *parse_dim_stmt(Parser *p, const Token *kw)
{
    Stmt *s = named_stmt(p, ST_DIM, kw);
    if (!s)
        return NULL;
    if (!at(p, TK_ASSIGN)) {
        syntax_error(p, p->tok.loc, "expected '=' after 'dim %s'",
                     clip(p, &p->prev));
        return NULL;
    }
    return (s->value = parse_rhs(p)) ? s : NULL;
}

/* input_stmt = "input" NAME ":" type */
static Stmt *parse_input_stmt(Parser *p, const Token *kw)
{
    Stmt *s = named_stmt(p, ST_INPUT, kw);
    if (!s)
        return NULL;
    if (!accept(p, TK_COLON)) {
        syntax_error(p, p->tok.loc, "expected ':' and a type after 'input %s'",
                     clip(p, &p->prev));
        return NULL;
    }
    return parse_type(p, &s->type) ? s : NULL;
}

/* param_stmt = "param" NAME ":" type "=" init [ "frozen" ]
 * init       = NAME | call */
static Stmt *parse_param_stmt(Parser *p, const Token *kw)
{
    Stmt *s = named_stmt(p, ST_PARAM, kw);
    if (!s)
        return NULL;
    if (!accept(p, TK_COLON)) {
        syntax_error(p, p->tok.loc, "expected ':' and a type after 'param %s'",
                     clip(p, &p->prev));
        return NULL;
    }
    if (!parse_type(p, &s->type))
        return NULL;
    if (!at(p, TK_ASSIGN)) {
        syntax_error(p, p->tok.loc,
                     "expected '=' and an initializer after the type of '%s'",
                     s->names[0]);
        return NULL;
    }
    if (!(s->init = parse_rhs(p)))
        return NULL;
    if (s->init->kind != EX_NAME && s->init->kind != EX_CALL) {
        syntax_error(p, s->init->loc,
                     "an initializer must be a name such as "
                     "zeros or a call such as normal(0.02)");
        return NULL;
    }
    s->frozen = accept(p, TK_FROZEN);
    return s;
}

/* fn_params = "(" [ NAME { "," NAME } [ "," ] ] ")" */
static bool parse_fn_params(Parser *p, Stmt *fn)
{
    Token open = p->tok;
    advance(p);
    NameList l = {0};
    while (!at(p, TK_RPAREN)) {
        Token name;
        if (!expect_name(p, "a parameter name", &name))
            return false;
        add_name(p, &l, &name);
        if (!accept(p, TK_COMMA))
            break;
    }
    fn->params = l.names.data;
    fn->param_locs = l.locs.data;
    fn->n_params = l.names.len;
    return expect_closing(p, TK_RPAREN, &open);
}

static bool finish_statement(Parser *p, bool in_block);

/* Checks that the body ends with its return, and only there. */
static void check_fn_body(Parser *p, const Stmt *fn)
{
    for (int i = 0; i + 1 < fn->n_body; i++) {
        if (fn->body[i]->kind == ST_RETURN) {
            structure_error(p, fn->body[i + 1]->loc,
                            "statement after 'return'; 'return' must be the "
                            "last statement of a fn");
            return;
        }
    }
    if (fn->n_body == 0 || fn->body[fn->n_body - 1]->kind != ST_RETURN)
        structure_error(p, fn->end_loc,
                        "fn '%s' must end with a 'return' statement",
                        fn->names[0]);
}

/* block = "{" { statement ( NEWLINE | ";" ) } "}" */
static bool parse_block(Parser *p, Stmt *fn)
{
    while (at(p, TK_NEWLINE))
        advance(p);
    if (!at(p, TK_LBRACE)) {
        syntax_error(p, p->tok.loc, "expected '{' to start the body of fn '%s'",
                     fn->names[0]);
        return false;
    }
    advance(p);
    int errors = p->d->n_errors;
    VEC(Stmt *) body = {0};
    p->in_fn = true;
    for (;;) {
        while (at(p, TK_NEWLINE) || at(p, TK_SEMI))
            advance(p);
        if (at(p, TK_RBRACE) || at(p, TK_EOF) || diag_full(p->d))
            break;
        Stmt *s = parse_statement(p);
        if (finish_statement(p, true) && s)
            vec_push(p->a, &body, s);
    }
    p->in_fn = false;
    fn->body = body.data;
    fn->n_body = body.len;
    fn->end_loc = p->tok.loc;
    if (!accept(p, TK_RBRACE)) {
        if (at(p, TK_EOF))
            syntax_error(p, p->tok.loc,
                         "unterminated block: expected '}' "
                         "before the end of the file");
        p->panic = true;
        return false;
    }
    if (errors == p->d->n_errors)
        check_fn_body(p, fn);
    return true;
}

/* fn_stmt = "fn" NAME fn_params block */
static Stmt *parse_fn_stmt(Parser *p, const Token *kw)
{
    Stmt *s = named_stmt(p, ST_FN, kw);
    if (!s)
        return NULL;
    if (!at(p, TK_LPAREN)) {
        syntax_error(p, p->tok.loc, "expected '(' after 'fn %s'", s->names[0]);
        return NULL;
    }
    if (!parse_fn_params(p, s)) {
        if (!at(p, TK_LBRACE)) /* a missing ')': the body still parses */
            return NULL;
        p->panic = false;
    }
    return parse_block(p, s) ? s : NULL;
}

/* A list of expressions after `kw` ("return a, b"). */
static bool parse_expr_list(Parser *p, const Token *kw, Expr ***out, int *n)
{
    VEC(Expr *) v = {0};
    Token before = *kw;
    do {
        Expr *e = expect_operand(p, &before) ? parse_expr(p) : NULL;
        if (!e)
            return false;
        vec_push(p->a, &v, e);
        before = p->tok;
    } while (accept(p, TK_COMMA));
    *out = v.data;
    *n = v.len;
    return true;
}

/* return_stmt = "return" expr { "," expr } */
static Stmt *parse_return_stmt(Parser *p, const Token *kw)
{
    Stmt *s = new_stmt(p, ST_RETURN, kw->loc);
    return parse_expr_list(p, kw, &s->exprs, &s->n_exprs) ? s : NULL;
}

static bool ends_statement(const Parser *p)
{
    return at(p, TK_NEWLINE) || at(p, TK_SEMI) || at(p, TK_EOF) ||
           at(p, TK_RBRACE);
}

/* output_stmt = "output" NAME { "," NAME } */
static Stmt *parse_output_stmt(Parser *p, const Token *kw)
{
    NameList l = {0};
    Token name, sep = *kw;
    do {
        const char *expected =
            arena_printf(p->a, "a name after '%s'", lex_spelling(sep.kind));
        if (!expect_name(p, expected, &name))
            return NULL;
        add_name(p, &l, &name);
        sep = p->tok;
    } while (accept(p, TK_COMMA));
    if (at(p, TK_NAME)) {
        syntax_error(p, p->tok.loc, "expected ',' between output names");
        return NULL;
    }
    if (!ends_statement(p)) {
        syntax_error(p, p->tok.loc,
                     "'output' takes names only; bind the "
                     "expression to a name first");
        return NULL;
    }
    Stmt *s = new_stmt(p, ST_OUTPUT, kw->loc);
    set_names(s, &l);
    return s;
}

/* The optimizer after 'with': a call such as adam(lr = 1e-3). */
static Expr *parse_optimizer(Parser *p, const Token *with)
{
    if (!starts_expr(p->tok.kind)) {
        syntax_error(p, with->loc,
                     "expected an optimizer such as adam() after 'with'");
        return NULL;
    }
    Expr *opt = parse_expr(p);
    if (opt && opt->kind == EX_NAME) {
        syntax_error(p, opt->loc,
                     "the optimizer needs parentheses: write '%s()'",
                     opt->name);
        return NULL;
    }
    if (opt && opt->kind != EX_CALL) {
        syntax_error(p, opt->loc,
                     "expected an optimizer such as adam() after 'with'");
        return NULL;
    }
    return opt;
}

/* train_stmt = "train" expr "with" call */
static Stmt *parse_train_stmt(Parser *p, const Token *kw)
{
    Stmt *s = new_stmt(p, ST_TRAIN, kw->loc);
    if (!expect_operand(p, kw) || !(s->value = parse_expr(p)))
        return NULL;
    if (!at(p, TK_WITH)) {
        syntax_error(p, p->tok.loc,
                     "expected 'with' after the loss, as in "
                     "'train loss with adam()'");
        return NULL;
    }
    Token with = p->tok;
    advance(p);
    return (s->opt = parse_optimizer(p, &with)) ? s : NULL;
}

/* bind_stmt = NAME { "," NAME } "=" expr */
static Stmt *parse_bind_stmt(Parser *p)
{
    Stmt *s = new_stmt(p, ST_BIND, p->tok.loc);
    NameList l = {0};
    Token name = p->tok;
    advance(p);
    add_name(p, &l, &name);
    while (at(p, TK_COMMA)) {
        advance(p);
        if (!expect_name(p, "a name after ','", &name))
            return NULL;
        add_name(p, &l, &name);
    }
    set_names(s, &l);
    if (!at(p, TK_ASSIGN)) {
        syntax_error(p, p->tok.loc, "expected '=' after '%s'",
                     clip(p, &p->prev));
        return NULL;
    }
    return (s->value = parse_rhs(p)) ? s : NULL;
}

static bool is_statement_keyword(TokKind k)
{
    return k == TK_MODEL || k == TK_DIM || k == TK_INPUT || k == TK_PARAM ||
           k == TK_FN || k == TK_RETURN || k == TK_OUTPUT || k == TK_TRAIN;
}

/* Where each statement may stand: fn bodies hold bindings and return. */
static bool placement_ok(Parser *p, const Token *kw)
{
    TokKind k = kw->kind;
    const char *name = lex_spelling(k);
    if (p->in_fn && k == TK_FN)
        syntax_error(p, kw->loc, "a fn cannot be defined inside another fn");
    else if (p->in_fn && k != TK_RETURN)
        syntax_error(p, kw->loc,
                     "'%s' is only allowed at the top level, not inside a fn",
                     name);
    else if (!p->in_fn && k == TK_RETURN)
        syntax_error(p, kw->loc, "'return' is only allowed inside a fn");
    else if (k == TK_MODEL && p->n_top > 1)
        syntax_error(p, kw->loc, "'model' must be the first statement");
    else
        return true;
    return false;
}

/* A statement cannot start with the current token. */
static Stmt *no_statement(Parser *p)
{
    Token t = p->tok;
    if (t.kind == TK_RPAREN || t.kind == TK_RBRACKET || t.kind == TK_RBRACE) {
        const char *open = t.kind == TK_RPAREN     ? "("
                           : t.kind == TK_RBRACKET ? "["
                                                   : "{";
        syntax_error(p, t.loc, "'%s' has no matching '%s'",
                     lex_spelling(t.kind), open);
        return NULL;
    }
    if (!lex_is_keyword(t.kind)) {
        syntax_error(p, t.loc, "expected a statement, found %s", found(p, &t));
        return NULL;
    }
    advance(p);
    if (at(p, TK_ASSIGN) || at(p, TK_COMMA))
        keyword_error(p, t.loc,
                      "'%s' is a keyword and cannot be used as a name",
                      lex_spelling(t.kind));
    else
        keyword_error(p, t.loc, "expected a statement, found '%s'",
                      lex_spelling(t.kind));
    return NULL;
}

/* statement = model_stmt | dim_stmt | input_stmt | param_stmt | fn_stmt
 *           | return_stmt | output_stmt | train_stmt | bind_stmt */
static Stmt *parse_statement(Parser *p)
{
    if (at(p, TK_NAME))
        return parse_bind_stmt(p);
    if (!is_statement_keyword(p->tok.kind))
        return no_statement(p);
    Token kw = p->tok;
    bool placed = placement_ok(p, &kw); /* reported before what follows */
    advance(p);
    if (!placed)
        return NULL;
    if (at(p, TK_ASSIGN) || at(p, TK_COMMA)) {
        keyword_error(p, kw.loc,
                      "'%s' is a keyword and cannot be used as a name",
                      lex_spelling(kw.kind));
        return NULL;
    }
    switch (kw.kind) {
    case TK_MODEL: return parse_model_stmt(p, &kw);
    case TK_DIM: return parse_dim_stmt(p, &kw);
    case TK_INPUT: return parse_input_stmt(p, &kw);
    case TK_PARAM: return parse_param_stmt(p, &kw);
    case TK_FN: return parse_fn_stmt(p, &kw);
    case TK_RETURN: return parse_return_stmt(p, &kw);
    case TK_OUTPUT: return parse_output_stmt(p, &kw);
    default: return parse_train_stmt(p, &kw);
    }
}

/* A keyword that only starts statements, first on its line, cannot be
 * inside an expression: the bracket before it was left open.  Recovery
 * resumes there, with the lexer's bracket count reset so that newlines
 * end statements again. */
static bool restarts_statement(Parser *p)
{
    if (!p->tok.bol || !is_statement_keyword(p->tok.kind))
        return false;
    p->lx.depth = 0;
    return true;
}

/* Skips to the next statement boundary: a newline or ';' outside braces,
 * or in a block its closing '}'.  A brace-balanced skip steps over a
 * whole fn definition, so a misplaced fn does not cascade. */
static void sync(Parser *p, bool in_block)
{
    int braces = 0;
    for (;;) {
        TokKind k = p->tok.kind;
        if (k == TK_EOF)
            break;
        if (braces == 0 &&
            (k == TK_NEWLINE || k == TK_SEMI || restarts_statement(p)))
            break;
        if (k == TK_LBRACE) {
            braces++;
        } else if (k == TK_RBRACE) {
            if (braces > 0)
                braces--;
            else if (in_block)
                break;
        }
        advance(p);
    }
    p->panic = false;
}

/* After a statement: it must end here (true), or after an error the rest
 * is skipped (false). */
static bool finish_statement(Parser *p, bool in_block)
{
    if (!p->panic) {
        if (at(p, TK_NEWLINE) || at(p, TK_SEMI) || at(p, TK_EOF) ||
            (in_block && at(p, TK_RBRACE)))
            return true;
        if (at(p, TK_RPAREN) || at(p, TK_RBRACKET) || at(p, TK_RBRACE))
            no_statement(p);
        else
            syntax_error(p, p->tok.loc,
                         "expected a newline or ';' after the "
                         "statement, found %s",
                         found(p, &p->tok));
    }
    sync(p, in_block);
    return false;
}

/* program = { statement ( NEWLINE | ";" | EOF ) } EOF */
static Program *parse_program(Parser *p)
{
    VEC(Stmt *) stmts = {0};
    for (;;) {
        while (at(p, TK_NEWLINE) || at(p, TK_SEMI))
            advance(p);
        if (at(p, TK_EOF) || diag_full(p->d))
            break;
        p->n_top++;
        Stmt *s = parse_statement(p);
        if (finish_statement(p, false) && s)
            vec_push(p->a, &stmts, s);
    }
    Program *prog = arena_alloc(p->a, sizeof *prog);
    prog->stmts = stmts.data;
    prog->n_stmts = stmts.len;
    return prog;
}

Program *fe_parse(Arena *a, const char *src, size_t len, Diag *d)
{
    Parser p = {.a = a, .d = d};
    lex_init(&p.lx, src, len, d);
    advance(&p);
    return parse_program(&p);
}
