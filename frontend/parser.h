/* parser.h — private to the parser (parser.c, parse_expr.c): the parser
 * state, the depth and height bounds for hostile input, and the functions
 * one file calls in the other.  Nothing outside frontend/parse*.c includes
 * it; the entry point, fe_parse, is declared in frontend.h. */
#ifndef NNC_FRONTEND_PARSER_H
#define NNC_FRONTEND_PARSER_H

#include "frontend/ast.h"
#include "frontend/lexer.h"

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

/* parse_expr.c */
Expr *ps_parse_expr(Parser *p);
bool ps_starts_expr(TokKind k);
bool ps_expect_operand(Parser *p, const Token *op);
bool ps_parse_comma_exprs(Parser *p, TokKind close, Expr ***out, int *n,
                          int *height);

/* parser.c */
void ps_advance(Parser *p);
bool ps_at(const Parser *p, TokKind k);
bool ps_accept(Parser *p, TokKind k);
int ps_max_int(int a, int b);
const char *ps_clip(Parser *p, const Token *t);
void ps_syntax_error(Parser *p, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool ps_enter(Parser *p);
void ps_leave(Parser *p);
bool ps_expect_closing(Parser *p, TokKind close, const Token *open);
const char *ps_name_of(Parser *p, const Token *t);

#endif
