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
 * definitions are skipped, not parsed, so they do not recurse either.
 *
 * This file holds the token and error helpers, type annotations and the
 * statements; the expression rules are in parse_expr.c, and the two share
 * the private header parser.h. */
#include "frontend/parser.h"

#include <math.h>
#include <string.h>

static Stmt *parse_statement(Parser *p);

/* ---- tokens and errors --------------------------------------------------- */

void ps_advance(Parser *p)
{
    p->prev = p->tok;
    p->tok = lex_next(&p->lx);
}

bool ps_at(const Parser *p, TokKind k) { return p->tok.kind == k; }

bool ps_accept(Parser *p, TokKind k)
{
    if (!ps_at(p, k))
        return false;
    ps_advance(p);
    return true;
}

int ps_max_int(int a, int b) { return a > b ? a : b; }

/* A token's text for messages, cut to 32 bytes (names may be huge). */
const char *ps_clip(Parser *p, const Token *t)
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
    return arena_printf(p->a, "'%s'", ps_clip(p, t));
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
void ps_syntax_error(Parser *p, SrcLoc loc, const char *fmt, ...)
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

bool ps_enter(Parser *p)
{
    if (p->depth >= PARSE_MAX_DEPTH) {
        ps_syntax_error(p, p->tok.loc,
                        "expression nested too deeply (limit %d)",
                        PARSE_MAX_DEPTH);
        return false;
    }
    p->depth++;
    return true;
}

void ps_leave(Parser *p) { p->depth--; }

bool ps_expect_closing(Parser *p, TokKind close, const Token *open)
{
    if (ps_accept(p, close))
        return true;
    ps_syntax_error(p, p->tok.loc,
                    "expected '%s' to close '%s' opened at %d:%d",
                    lex_spelling(close), lex_spelling(open->kind),
                    open->loc.line, open->loc.col);
    return false;
}

/* Reads a NAME; `expected` says what for, as in "expected a name after
 * 'dim'". */
static bool expect_name(Parser *p, const char *expected, Token *name)
{
    if (ps_at(p, TK_NAME)) {
        *name = p->tok;
        ps_advance(p);
        return true;
    }
    if (lex_is_keyword(p->tok.kind))
        ps_syntax_error(p, p->tok.loc,
                        "'%s' is a keyword and cannot be used as a name",
                        lex_spelling(p->tok.kind));
    else
        ps_syntax_error(p, p->tok.loc, "expected %s", expected);
    return false;
}

const char *ps_name_of(Parser *p, const Token *t)
{
    return arena_strndup(p->a, t->text, t->len);
}

static void add_name(Parser *p, NameList *l, const Token *t)
{
    vec_push(p->a, &l->names, ps_name_of(p, t));
    vec_push(p->a, &l->locs, t->loc);
}

/* ---- types --------------------------------------------------------------- */

/* type = ( "f32" | "i32" ) "[" comma_exprs "]" */
static bool parse_type(Parser *p, TypeExpr *t)
{
    Token name = p->tok;
    if (!ps_at(p, TK_NAME)) {
        ps_syntax_error(p, p->tok.loc, "expected a type such as f32[B, 64]");
        return false;
    }
    if (name.len == 3 && memcmp(name.text, "f32", 3) == 0) {
        t->dtype = DT_F32;
    } else if (name.len == 3 && memcmp(name.text, "i32", 3) == 0) {
        t->dtype = DT_I32;
    } else {
        ps_syntax_error(p, name.loc,
                        "unknown element type '%s'; expected f32 or i32",
                        ps_clip(p, &name));
        return false;
    }
    t->loc = name.loc;
    ps_advance(p);
    Token open = p->tok;
    if (!ps_at(p, TK_LBRACKET)) {
        ps_syntax_error(p, p->tok.loc,
                        "expected '[' after '%.3s' (write %.3s[] for a scalar)",
                        name.text, name.text);
        return false;
    }
    ps_advance(p);
    int h;
    return ps_parse_comma_exprs(p, TK_RBRACKET, &t->dims, &t->rank, &h) &&
           ps_expect_closing(p, TK_RBRACKET, &open);
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
    ps_advance(p);
    return ps_expect_operand(p, &eq) ? ps_parse_expr(p) : NULL;
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
    if (!ps_at(p, TK_ASSIGN)) {
        ps_syntax_error(p, p->tok.loc, "expected '=' after 'dim %s'",
                        ps_clip(p, &p->prev));
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
    if (!ps_accept(p, TK_COLON)) {
        ps_syntax_error(p, p->tok.loc,
                        "expected ':' and a type after 'input %s'",
                        ps_clip(p, &p->prev));
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
    if (!ps_accept(p, TK_COLON)) {
        ps_syntax_error(p, p->tok.loc,
                        "expected ':' and a type after 'param %s'",
                        ps_clip(p, &p->prev));
        return NULL;
    }
    if (!parse_type(p, &s->type))
        return NULL;
    if (!ps_at(p, TK_ASSIGN)) {
        ps_syntax_error(
            p, p->tok.loc,
            "expected '=' and an initializer after the type of '%s'",
            s->names[0]);
        return NULL;
    }
    if (!(s->init = parse_rhs(p)))
        return NULL;
    if (s->init->kind != EX_NAME && s->init->kind != EX_CALL) {
        ps_syntax_error(p, s->init->loc,
                        "an initializer must be a name such as "
                        "zeros or a call such as normal(0.02)");
        return NULL;
    }
    s->frozen = ps_accept(p, TK_FROZEN);
    return s;
}

/* fn_params = "(" [ NAME { "," NAME } [ "," ] ] ")" */
static bool parse_fn_params(Parser *p, Stmt *fn)
{
    Token open = p->tok;
    ps_advance(p);
    NameList l = {0};
    while (!ps_at(p, TK_RPAREN)) {
        Token name;
        if (!expect_name(p, "a parameter name", &name))
            return false;
        add_name(p, &l, &name);
        if (!ps_accept(p, TK_COMMA))
            break;
    }
    fn->params = l.names.data;
    fn->param_locs = l.locs.data;
    fn->n_params = l.names.len;
    return ps_expect_closing(p, TK_RPAREN, &open);
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
    while (ps_at(p, TK_NEWLINE))
        ps_advance(p);
    if (!ps_at(p, TK_LBRACE)) {
        ps_syntax_error(p, p->tok.loc,
                        "expected '{' to start the body of fn '%s'",
                        fn->names[0]);
        return false;
    }
    ps_advance(p);
    int errors = p->d->n_errors;
    VEC(Stmt *) body = {0};
    p->in_fn = true;
    for (;;) {
        while (ps_at(p, TK_NEWLINE) || ps_at(p, TK_SEMI))
            ps_advance(p);
        if (ps_at(p, TK_RBRACE) || ps_at(p, TK_EOF) || diag_full(p->d))
            break;
        Stmt *s = parse_statement(p);
        if (finish_statement(p, true) && s)
            vec_push(p->a, &body, s);
    }
    p->in_fn = false;
    fn->body = body.data;
    fn->n_body = body.len;
    fn->end_loc = p->tok.loc;
    if (!ps_accept(p, TK_RBRACE)) {
        if (ps_at(p, TK_EOF))
            ps_syntax_error(p, p->tok.loc,
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
    if (!ps_at(p, TK_LPAREN)) {
        ps_syntax_error(p, p->tok.loc, "expected '(' after 'fn %s'",
                        s->names[0]);
        return NULL;
    }
    if (!parse_fn_params(p, s)) {
        if (!ps_at(p, TK_LBRACE)) /* a missing ')': the body still parses */
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
        Expr *e = ps_expect_operand(p, &before) ? ps_parse_expr(p) : NULL;
        if (!e)
            return false;
        vec_push(p->a, &v, e);
        before = p->tok;
    } while (ps_accept(p, TK_COMMA));
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
    return ps_at(p, TK_NEWLINE) || ps_at(p, TK_SEMI) || ps_at(p, TK_EOF) ||
           ps_at(p, TK_RBRACE);
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
    } while (ps_accept(p, TK_COMMA));
    if (ps_at(p, TK_NAME)) {
        ps_syntax_error(p, p->tok.loc, "expected ',' between output names");
        return NULL;
    }
    if (!ends_statement(p)) {
        ps_syntax_error(p, p->tok.loc,
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
    if (!ps_starts_expr(p->tok.kind)) {
        ps_syntax_error(p, with->loc,
                        "expected an optimizer such as adam() after 'with'");
        return NULL;
    }
    Expr *opt = ps_parse_expr(p);
    if (opt && opt->kind == EX_NAME) {
        ps_syntax_error(p, opt->loc,
                        "the optimizer needs parentheses: write '%s()'",
                        opt->name);
        return NULL;
    }
    if (opt && opt->kind != EX_CALL) {
        ps_syntax_error(p, opt->loc,
                        "expected an optimizer such as adam() after 'with'");
        return NULL;
    }
    return opt;
}

/* train_stmt = "train" expr "with" call */
static Stmt *parse_train_stmt(Parser *p, const Token *kw)
{
    Stmt *s = new_stmt(p, ST_TRAIN, kw->loc);
    if (!ps_expect_operand(p, kw) || !(s->value = ps_parse_expr(p)))
        return NULL;
    if (!ps_at(p, TK_WITH)) {
        ps_syntax_error(p, p->tok.loc,
                        "expected 'with' after the loss, as in "
                        "'train loss with adam()'");
        return NULL;
    }
    Token with = p->tok;
    ps_advance(p);
    return (s->opt = parse_optimizer(p, &with)) ? s : NULL;
}

/* bind_stmt = NAME { "," NAME } "=" expr */
static Stmt *parse_bind_stmt(Parser *p)
{
    Stmt *s = new_stmt(p, ST_BIND, p->tok.loc);
    NameList l = {0};
    Token name = p->tok;
    ps_advance(p);
    add_name(p, &l, &name);
    while (ps_at(p, TK_COMMA)) {
        ps_advance(p);
        if (!expect_name(p, "a name after ','", &name))
            return NULL;
        add_name(p, &l, &name);
    }
    set_names(s, &l);
    if (!ps_at(p, TK_ASSIGN)) {
        ps_syntax_error(p, p->tok.loc, "expected '=' after '%s'",
                        ps_clip(p, &p->prev));
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
        ps_syntax_error(p, kw->loc, "a fn cannot be defined inside another fn");
    else if (p->in_fn && k != TK_RETURN)
        ps_syntax_error(
            p, kw->loc,
            "'%s' is only allowed at the top level, not inside a fn", name);
    else if (!p->in_fn && k == TK_RETURN)
        ps_syntax_error(p, kw->loc, "'return' is only allowed inside a fn");
    else if (k == TK_MODEL && p->n_top > 1)
        ps_syntax_error(p, kw->loc, "'model' must be the first statement");
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
        ps_syntax_error(p, t.loc, "'%s' has no matching '%s'",
                        lex_spelling(t.kind), open);
        return NULL;
    }
    if (!lex_is_keyword(t.kind)) {
        ps_syntax_error(p, t.loc, "expected a statement, found %s",
                        found(p, &t));
        return NULL;
    }
    ps_advance(p);
    if (ps_at(p, TK_ASSIGN) || ps_at(p, TK_COMMA))
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
    if (ps_at(p, TK_NAME))
        return parse_bind_stmt(p);
    if (!is_statement_keyword(p->tok.kind))
        return no_statement(p);
    Token kw = p->tok;
    bool placed = placement_ok(p, &kw); /* reported before what follows */
    ps_advance(p);
    if (!placed)
        return NULL;
    if (ps_at(p, TK_ASSIGN) || ps_at(p, TK_COMMA)) {
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
        ps_advance(p);
    }
    p->panic = false;
}

/* After a statement: it must end here (true), or after an error the rest
 * is skipped (false). */
static bool finish_statement(Parser *p, bool in_block)
{
    if (!p->panic) {
        if (ps_at(p, TK_NEWLINE) || ps_at(p, TK_SEMI) || ps_at(p, TK_EOF) ||
            (in_block && ps_at(p, TK_RBRACE)))
            return true;
        if (ps_at(p, TK_RPAREN) || ps_at(p, TK_RBRACKET) || ps_at(p, TK_RBRACE))
            no_statement(p);
        else
            ps_syntax_error(p, p->tok.loc,
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
        while (ps_at(p, TK_NEWLINE) || ps_at(p, TK_SEMI))
            ps_advance(p);
        if (ps_at(p, TK_EOF) || diag_full(p->d))
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
    ps_advance(&p);
    return parse_program(&p);
}
