/* parse_expr.c — the expression rules of the parser: calls and their
 * named arguments, parentheses and tuples, list literals, numbers, indexing
 * and slicing, unary minus and the left-associative binary levels
 * (multiplicative, additive, comparison), built into Expr nodes of ast.h.
 * parser.c parses the statements around them and owns the token and error
 * helpers used here.  Every rule keeps the bounds of parser.h: recursion
 * depth through enter/leave, and the height of the tree it builds, so that
 * lower.c can walk it recursively. */
#include "frontend/parser.h"

#include <math.h>
#include <string.h>

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
        ps_syntax_error(p, e->loc,
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
bool ps_starts_expr(TokKind k)
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
bool ps_expect_operand(Parser *p, const Token *op)
{
    if (ps_starts_expr(p->tok.kind))
        return true;
    bool after_operator = binary_op_token(op->kind) || op->kind == TK_MINUS;
    if (!after_operator && binary_op_token(p->tok.kind))
        ps_syntax_error(p, p->tok.loc, "expected an expression before '%s'",
                        lex_spelling(p->tok.kind));
    else
        ps_syntax_error(p, op->loc, "expected an expression after '%s'",
                        ps_clip(p, op));
    return false;
}

/* ---- expressions --------------------------------------------------------- */

/* comma_exprs = [ expr { "," expr } [ "," ] ]   (up to `close`) */
bool ps_parse_comma_exprs(Parser *p, TokKind close, Expr ***out, int *n,
                          int *height)
{
    VEC(Expr *) v = {0};
    *height = 0;
    while (!ps_at(p, close)) {
        Expr *e = ps_parse_expr(p);
        if (!e)
            return false;
        *height = ps_max_int(*height, p->height);
        vec_push(p->a, &v, e);
        if (!ps_accept(p, TK_COMMA))
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
    Expr *e = ps_parse_expr(p);
    if (!e)
        return false;
    if (first.kind == TK_NAME && e->kind == EX_NAME && ps_at(p, TK_ASSIGN)) {
        Token eq = p->tok;
        ps_advance(p);
        Expr *v = ps_expect_operand(p, &eq) ? ps_parse_expr(p) : NULL;
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
    ps_advance(p);
    VEC(Arg) args = {0};
    bool keyword_seen = false;
    int h = 0;
    while (!ps_at(p, TK_RPAREN)) {
        Arg arg;
        if (!parse_arg(p, &arg))
            return NULL;
        if (!arg.key && keyword_seen) {
            ps_syntax_error(p, arg.loc,
                            "positional argument after keyword argument");
            return NULL;
        }
        keyword_seen |= arg.key != NULL;
        h = ps_max_int(h, p->height);
        vec_push(p->a, &args, arg);
        if (!ps_accept(p, TK_COMMA))
            break;
    }
    if (!ps_expect_closing(p, TK_RPAREN, &open))
        return NULL;
    Expr *e = new_expr(p, EX_CALL, name->loc);
    e->name = ps_name_of(p, name);
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
    ps_advance(p);
    Expr *e = ps_parse_expr(p);
    if (!e)
        return NULL;
    if (!ps_at(p, TK_COMMA))
        return ps_expect_closing(p, TK_RPAREN, &open) ? e : NULL;
    VEC(Expr *) elems = {0};
    vec_push(p->a, &elems, e);
    int h = p->height;
    while (ps_accept(p, TK_COMMA) && !ps_at(p, TK_RPAREN)) {
        Expr *x = ps_parse_expr(p);
        if (!x)
            return NULL;
        h = ps_max_int(h, p->height);
        vec_push(p->a, &elems, x);
    }
    if (elems.len < 2) {
        ps_syntax_error(p, open.loc, "a tuple needs at least two elements");
        return NULL;
    }
    if (!ps_expect_closing(p, TK_RPAREN, &open))
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
    ps_advance(p);
    Expr *l = new_expr(p, EX_LIST, open.loc);
    int h;
    if (!ps_parse_comma_exprs(p, TK_RBRACKET, &l->elems, &l->n_elems, &h) ||
        !ps_expect_closing(p, TK_RBRACKET, &open))
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
        ps_syntax_error(p, p->tok.loc, "expected an expression before '%s'",
                        lex_spelling(k));
    else if (lex_is_keyword(k))
        ps_syntax_error(p, p->tok.loc,
                        "'%s' is a keyword and cannot be used as a name",
                        lex_spelling(k));
    else
        ps_syntax_error(p, p->tok.loc, "expected an expression");
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
    case TK_INF: ps_advance(p); return number_expr(p, &t);
    case TK_TRUE:
    case TK_FALSE: {
        ps_advance(p);
        Expr *e = new_expr(p, EX_BOOL, t.loc);
        e->bval = t.kind == TK_TRUE;
        return e;
    }
    case TK_NAME: {
        ps_advance(p);
        if (ps_at(p, TK_LPAREN))
            return parse_call(p, &t);
        Expr *e = new_expr(p, EX_NAME, t.loc);
        e->name = ps_name_of(p, &t);
        return e;
    }
    case TK_SCAN:
        ps_advance(p);
        if (ps_at(p, TK_LPAREN))
            return parse_call(p, &t);
        ps_syntax_error(p, p->tok.loc, "expected '(' after 'scan'");
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
    if (!ps_at(p, TK_COLON)) {
        if (!(it->lo = ps_parse_expr(p)))
            return false;
        *h = ps_max_int(*h, p->height);
        if (!ps_at(p, TK_COLON))
            return true;
    }
    it->is_slice = true;
    ps_advance(p);
    if (!ps_at(p, TK_COMMA) && !ps_at(p, TK_RBRACKET) && !ps_at(p, TK_COLON)) {
        if (!(it->hi = ps_parse_expr(p)))
            return false;
        *h = ps_max_int(*h, p->height);
    }
    if (ps_at(p, TK_COLON)) {
        ps_syntax_error(p, p->tok.loc,
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
    ps_advance(p);
    if (ps_at(p, TK_RBRACKET)) {
        ps_syntax_error(p, p->tok.loc, "expected an index or a slice");
        return NULL;
    }
    VEC(SliceItem) items = {0};
    while (!ps_at(p, TK_RBRACKET)) {
        SliceItem it;
        if (!parse_slice_item(p, &it, &h))
            return NULL;
        vec_push(p->a, &items, it);
        if (!ps_accept(p, TK_COMMA))
            break;
    }
    if (!ps_expect_closing(p, TK_RBRACKET, &open))
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
    while (e && ps_at(p, TK_LBRACKET))
        e = parse_index(p, e);
    if (e && ps_at(p, TK_LPAREN)) {
        ps_syntax_error(p, p->tok.loc, "only a name can be called");
        return NULL;
    }
    return e;
}

/* unary = "-" unary | postfix */
static Expr *parse_unary(Parser *p)
{
    if (!ps_at(p, TK_MINUS))
        return parse_postfix(p);
    Token minus = p->tok;
    ps_advance(p);
    if (!ps_expect_operand(p, &minus) || !ps_enter(p))
        return NULL;
    Expr *operand = parse_unary(p);
    ps_leave(p);
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
        ps_advance(p);
        Expr *rhs = ps_expect_operand(p, &optok) ? operand(p) : NULL;
        if (!rhs)
            return NULL;
        Expr *b = new_expr(p, EX_BINARY, optok.loc);
        b->op = op;
        b->lhs = e;
        b->rhs = rhs;
        h = ps_max_int(h, p->height) + 1;
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
Expr *ps_parse_expr(Parser *p)
{
    if (!ps_enter(p))
        return NULL;
    Expr *e = parse_comparison(p);
    ps_leave(p);
    return e;
}
