/* test_parser.c — the `.nn` parser (frontend/parser.c): the tree it
 * builds for every statement and expression form, operator precedence and
 * associativity, source locations, every syntax error message with its
 * place, recovery (several errors per file), and hostile input (empty,
 * random bytes, NUL, megabyte lines, 10,000-deep nesting, invalid UTF-8).
 *
 * Trees are compared as S-expressions printed by this file: (+ a b),
 * (neg x), (call f a key=v), (index x lo:hi : i), (list ...), (tuple ...),
 * one statement per line: (dim B 64), (bind (a b) EXPR), (fn f (x) ...).
 * Errors are compared as the "LINE:COL: error: MESSAGE" lines of the
 * diagnostics, captured in a memory stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "frontend/ast.h"
#include "frontend/lexer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- printing the tree --------------------------------------------------- */

typedef struct Buf {
    char *s;
    size_t len, cap;
} Buf;

static void put(Buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static const char *const binop_names[] = {"+",  "-", "*",  "/",  "@", "<",
                                          "<=", ">", ">=", "==", "!="};

static void put_expr(Buf *b, const Expr *e);

static void put_exprs(Buf *b, Expr *const *es, int n)
{
    for (int i = 0; i < n; i++) {
        put(b, " ");
        put_expr(b, es[i]);
    }
}

static void put_item(Buf *b, const SliceItem *it)
{
    if (!it->is_slice) {
        put_expr(b, it->lo);
        return;
    }
    if (it->lo)
        put_expr(b, it->lo);
    put(b, ":");
    if (it->hi)
        put_expr(b, it->hi);
}

static void put_expr(Buf *b, const Expr *e)
{
    switch (e->kind) {
    case EX_NUM:
        if (e->is_int)
            put(b, "%lld", (long long)e->ival);
        else
            put(b, "%g", e->num);
        break;
    case EX_BOOL: put(b, e->bval ? "true" : "false"); break;
    case EX_NAME: put(b, "%s", e->name); break;
    case EX_UNARY:
        put(b, "(neg ");
        put_expr(b, e->lhs);
        put(b, ")");
        break;
    case EX_BINARY:
        put(b, "(%s ", binop_names[e->op]);
        put_expr(b, e->lhs);
        put(b, " ");
        put_expr(b, e->rhs);
        put(b, ")");
        break;
    case EX_CALL:
        put(b, "(call %s", e->name);
        for (int i = 0; i < e->n_args; i++) {
            put(b, " ");
            if (e->args[i].key)
                put(b, "%s=", e->args[i].key);
            put_expr(b, e->args[i].value);
        }
        put(b, ")");
        break;
    case EX_INDEX:
        put(b, "(index ");
        put_expr(b, e->base);
        for (int i = 0; i < e->n_items; i++) {
            put(b, " ");
            put_item(b, &e->items[i]);
        }
        put(b, ")");
        break;
    case EX_LIST:
        put(b, "(list");
        put_exprs(b, e->elems, e->n_elems);
        put(b, ")");
        break;
    case EX_TUPLE:
        put(b, "(tuple");
        put_exprs(b, e->elems, e->n_elems);
        put(b, ")");
        break;
    }
}

static void put_names(Buf *b, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        put(b, " %s", names[i]);
}

static void put_type(Buf *b, const TypeExpr *t)
{
    put(b, " %s[", t->dtype == DT_F32 ? "f32" : "i32");
    for (int i = 0; i < t->rank; i++) {
        put(b, i ? " " : "");
        put_expr(b, t->dims[i]);
    }
    put(b, "]");
}

static void put_stmt(Buf *b, const Stmt *s)
{
    static const char *const kinds[] = {"model",  "dim",    "input",
                                        "param",  "bind",   "fn",
                                        "return", "output", "train"};
    put(b, "(%s", kinds[s->kind]);
    switch (s->kind) {
    case ST_MODEL:
    case ST_OUTPUT: put_names(b, s->names, s->n_names); break;
    case ST_DIM:
        put_names(b, s->names, 1);
        put_exprs(b, &s->value, 1);
        break;
    case ST_INPUT:
        put_names(b, s->names, 1);
        put_type(b, &s->type);
        break;
    case ST_PARAM:
        put_names(b, s->names, 1);
        put_type(b, &s->type);
        put_exprs(b, &s->init, 1);
        put(b, s->frozen ? " frozen" : "");
        break;
    case ST_BIND:
        put(b, " (");
        for (int i = 0; i < s->n_names; i++)
            put(b, i ? " %s" : "%s", s->names[i]);
        put(b, ")");
        put_exprs(b, &s->value, 1);
        break;
    case ST_FN:
        put_names(b, s->names, 1);
        put(b, " (");
        for (int i = 0; i < s->n_params; i++)
            put(b, i ? " %s" : "%s", s->params[i]);
        put(b, ")");
        for (int i = 0; i < s->n_body; i++) {
            put(b, " ");
            put_stmt(b, s->body[i]);
        }
        break;
    case ST_RETURN: put_exprs(b, s->exprs, s->n_exprs); break;
    case ST_TRAIN:
        put_exprs(b, &s->value, 1);
        put_exprs(b, &s->opt, 1);
        break;
    }
    put(b, ")");
}

static char *program_sexpr(const Program *prog)
{
    Buf b = {0};
    put(&b, "");
    for (int i = 0; i < prog->n_stmts; i++) {
        put(&b, i ? "\n" : "");
        put_stmt(&b, prog->stmts[i]);
    }
    return b.s;
}

/* ---- parsing with captured diagnostics ----------------------------------- */

typedef struct Parsed {
    Arena *arena;
    Program *prog;
    char *tree;   /* program_sexpr */
    char *errors; /* "L:C: error: MSG" lines */
    int n_errors; /* as counted by the Diag, printed or not */
} Parsed;

/* Keeps the "L:C: error: MSG" part of every error line of a diag dump. */
static char *error_lines(const char *dump)
{
    Buf b = {0};
    put(&b, "");
    for (const char *line = dump; *line;) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        const char *tag = strstr(line, ": error: ");
        if (tag && tag < line + n && strncmp(line, "t.nn:", 5) == 0)
            put(&b, "%s%.*s", b.len ? "\n" : "", (int)(n - 5), line + 5);
        line += n + (eol != NULL);
    }
    return b.s;
}

static Parsed parse_n(const char *src, size_t len, int max_errors)
{
    Parsed r = {0};
    char *dump = NULL;
    size_t dump_len = 0;
    Diag d;
    diag_init(&d, "t.nn", src, len);
    d.out = open_memstream(&dump, &dump_len);
    d.max_errors = max_errors;
    r.arena = arena_new();
    r.prog = fe_parse(r.arena, src, len, &d);
    fclose(d.out);
    r.tree = program_sexpr(r.prog);
    r.errors = error_lines(dump);
    r.n_errors = d.n_errors;
    free(dump);
    return r;
}

static Parsed parse(const char *src) { return parse_n(src, strlen(src), 20); }

static void parsed_free(Parsed *r)
{
    arena_free(r->arena);
    free(r->tree);
    free(r->errors);
}

static void check_tree(const char *src, const char *want)
{
    Parsed r = parse(src);
    assert_string_equal(r.errors, "");
    assert_int_equal(r.n_errors, 0);
    assert_string_equal(r.tree, want);
    parsed_free(&r);
}

static void check_errors(const char *src, const char *want)
{
    Parsed r = parse(src);
    assert_string_equal(r.errors, want);
    assert_true(r.n_errors > 0);
    parsed_free(&r);
}

/* The tree of `y = EXPR`. */
static void check_expr(const char *expr, const char *want)
{
    char src[256], tree[512];
    snprintf(src, sizeof src, "y = %s\n", expr);
    snprintf(tree, sizeof tree, "(bind (y) %s)", want);
    check_tree(src, tree);
}

/* ---- expressions --------------------------------------------------------- */

static void test_precedence_and_associativity(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"a + b * c", "(+ a (* b c))"},
        {"a * b + c", "(+ (* a b) c)"},
        {"a - b - c", "(- (- a b) c)"},
        {"a / b / c", "(/ (/ a b) c)"},
        {"a @ b @ c", "(@ (@ a b) c)"},
        {"a * b @ c / d", "(/ (@ (* a b) c) d)"},
        {"a < b < c", "(< (< a b) c)"},
        {"a + b < c * d", "(< (+ a b) (* c d))"},
        {"a == b != c <= d >= e > f", "(> (>= (<= (!= (== a b) c) d) e) f)"},
        {"-a * b", "(* (neg a) b)"},
        {"a - -b", "(- a (neg b))"},
        {"- - a", "(neg (neg a))"},
        {"-a[0]", "(neg (index a 0))"},
        {"-f(x) @ W", "(@ (neg (call f x)) W)"},
        {"1 - 2 * -3", "(- 1 (* 2 (neg 3)))"},
        {"(a + b) * c", "(* (+ a b) c)"},
        {"a * (b + c)", "(* a (+ b c))"},
        {"((a))", "a"},
        {"x @ W1 + b1", "(+ (@ x W1) b1)"},
        {"a * b + c @ d - e / f == g",
         "(== (- (+ (* a b) (@ c d)) (/ e f)) g)"},
        {"a<b+c", "(< a (+ b c))"},
        {"f(a)[0]", "(index (call f a) 0)"},
        {"x[0][1:]", "(index (index x 0) 1:)"},
        {"a+b\n", "(+ a b)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_expr(cases[i][0], cases[i][1]);
}

static void test_literals(void **state)
{
    (void)state;
    check_expr("f(64, 1e-3, 0.5, 2., .25, inf, true, false, -1)",
               "(call f 64 0.001 0.5 2 0.25 inf true false (neg 1))");
    Parsed r = parse("y = f(64, 2., inf, true)\n");
    Expr *call = r.prog->stmts[0]->value;
    assert_int_equal(call->n_args, 4);
    Expr *i64 = call->args[0].value, *two = call->args[1].value;
    Expr *inf = call->args[2].value, *t = call->args[3].value;
    assert_int_equal(i64->kind, EX_NUM);
    assert_true(i64->is_int);
    assert_true(i64->ival == 64 && i64->num == 64.0);
    assert_int_equal(two->kind, EX_NUM);
    assert_false(two->is_int);
    assert_true(two->num == 2.0);
    assert_int_equal(inf->kind, EX_NUM);
    assert_false(inf->is_int);
    assert_true(isinf(inf->num) && inf->num > 0);
    assert_int_equal(t->kind, EX_BOOL);
    assert_true(t->bval);
    parsed_free(&r);
}

static void test_calls_and_keyword_arguments(void **state)
{
    (void)state;
    check_expr("softmax(x, axis = -1)", "(call softmax x axis=(neg 1))");
    check_expr("sum(x, axis = [0, 1], keepdims = true)",
               "(call sum x axis=(list 0 1) keepdims=true)");
    check_expr("adam()", "(call adam)");
    check_expr("f(a, b,)", "(call f a b)");
    check_expr("f(a == b, c)", "(call f (== a b) c)");
    check_expr("f((a), b)", "(call f a b)");
    check_expr("f(g(h(x)), k = g(1))", "(call f (call g (call h x)) "
                                       "k=(call g 1))");
    check_expr("attention(\n  q, k, v,  # operands\n  causal = true,\n)",
               "(call attention q k v causal=true)");
    check_expr("scan(step, init = h0, over = emb[tokens])",
               "(call scan step init=h0 over=(index emb tokens))");
    check_expr("scan(cell, init = (zeros(B, H), c0), over = (x, z,))",
               "(call scan cell init=(tuple (call zeros B H) c0) "
               "over=(tuple x z))");
    Parsed r = parse("y = f(a, k = b)\n");
    Arg *args = r.prog->stmts[0]->value->args;
    assert_null(args[0].key);
    assert_string_equal(args[1].key, "k");
    assert_string_equal(args[1].value->name, "b");
    parsed_free(&r);
}

static void test_slicing_forms(void **state)
{
    (void)state;
    check_expr("x[a:b, :, i, a:, :b, -1, -3:-1, 1+1:n-1]",
               "(index x a:b : i a: :b (neg 1) (neg 3):(neg 1) "
               "(+ 1 1):(- n 1))");
    check_expr("E[ids]", "(index E ids)");
    check_expr("x[0,]", "(index x 0)");
    check_expr("x[\n  0,\n  1:2\n]", "(index x 0 1:2)");
    Parsed r = parse("y = x[:, 2, 1:]\n");
    Expr *e = r.prog->stmts[0]->value;
    assert_int_equal(e->kind, EX_INDEX);
    assert_int_equal(e->n_items, 3);
    assert_true(e->items[0].is_slice);
    assert_null(e->items[0].lo);
    assert_null(e->items[0].hi);
    assert_false(e->items[1].is_slice);
    assert_int_equal(e->items[1].lo->ival, 2);
    assert_true(e->items[2].is_slice);
    assert_int_equal(e->items[2].lo->ival, 1);
    assert_null(e->items[2].hi);
    parsed_free(&r);
}

static void test_lists_and_tuples(void **state)
{
    (void)state;
    check_expr("reshape(x, [B, -1])", "(call reshape x (list B (neg 1)))");
    check_expr("permute(x, [])", "(call permute x (list))");
    check_expr("concat([a, b,], axis = 0)", "(call concat (list a b) axis=0)");
    check_expr("(a, b)", "(tuple a b)");
    check_expr("(a, (b, c), [d])", "(tuple a (tuple b c) (list d))");
}

/* ---- statements ---------------------------------------------------------- */

static void test_every_statement_kind(void **state)
{
    (void)state;
    check_tree("# a model\n"
               "model digits\n"
               "dim B = 64\n"
               "dim HD = C / NH\n"
               "input x : f32[B, 64]\n"
               "input y : i32[B]\n"
               "input s : f32[]\n"
               "param W : f32[64, 4*H] = xavier_uniform\n"
               "param E : f32[V, C,] = normal(0.02) frozen\n"
               "param c : f32[] = const(0.5)\n"
               "h = relu(x @ W)\n"
               "a, b = split(h, 2, axis = -1)\n"
               "fn f(u, v) {\n"
               "  w = u * v\n"
               "\n"
               "  return w, u\n"
               "}\n"
               "output logits, h\n"
               "train loss with adam(lr = 1e-3)\n",
               "(model digits)\n"
               "(dim B 64)\n"
               "(dim HD (/ C NH))\n"
               "(input x f32[B 64])\n"
               "(input y i32[B])\n"
               "(input s f32[])\n"
               "(param W f32[64 (* 4 H)] xavier_uniform)\n"
               "(param E f32[V C] (call normal 0.02) frozen)\n"
               "(param c f32[] (call const 0.5))\n"
               "(bind (h) (call relu (@ x W)))\n"
               "(bind (a b) (call split h 2 axis=(neg 1)))\n"
               "(fn f (u v) (bind (w) (* u v)) (return w u))\n"
               "(output logits h)\n"
               "(train loss (call adam lr=0.001))");
}

static void test_fn_one_line_and_multi_line(void **state)
{
    (void)state;
    const char *want = "(fn f (x y) (bind (z) (* 2 x)) (return z y))";
    check_tree("fn f(x, y) { z = 2 * x; return z, y }\n", want);
    check_tree("fn f(x, y) {\n  z = 2 * x\n  return z, y\n}\n", want);
    check_tree("fn f(x, y)\n{\n  z = 2 * x;\n  return z, y;\n}", want);
    check_tree("fn f(\n  x,\n  y,\n) {\n  z = 2 * x\n  return z, y }\n", want);
    check_tree("fn g() { return 1 }", "(fn g () (return 1))");
    check_tree("fn g(x) { return 2 * x }\ny = g(3)\n",
               "(fn g (x) (return (* 2 x)))\n(bind (y) (call g 3))");
}

static void test_semicolons_end_statements(void **state)
{
    (void)state;
    check_tree("dim A = 1; dim B = 2;\nx = A;; y = B",
               "(dim A 1)\n(dim B 2)\n(bind (x) A)\n(bind (y) B)");
}

static void test_model_may_follow_comments(void **state)
{
    (void)state;
    check_tree("# header\n\n  # more\nmodel m\n", "(model m)");
}

static void test_locations(void **state)
{
    (void)state;
    Parsed r = parse("x = a +  b\n"
                     "y = f(p, key = -q)[1:2, i]\n"
                     "param W : f32[3] = zeros\n"
                     "fn g(u) {\n  return u\n  }\n"
                     "  c, d = e\n"
                     "output c, d\n");
    assert_int_equal(r.n_errors, 0);
    Stmt **s = r.prog->stmts;
    assert_int_equal(r.prog->n_stmts, 6);
    Expr *add = s[0]->value;
    assert_int_equal(add->loc.line, 1); /* binary: the operator */
    assert_int_equal(add->loc.col, 7);
    assert_int_equal(add->rhs->loc.col, 10);
    Expr *index = s[1]->value, *call = index->base;
    assert_int_equal(index->loc.col, 19); /* index: its '[' */
    assert_int_equal(index->items[0].loc.col, 20);
    assert_int_equal(index->items[1].loc.col, 25);
    assert_int_equal(call->loc.col, 5); /* call: the callee's name */
    assert_int_equal(call->name_loc.line, 2);
    assert_int_equal(call->name_loc.col, 5);
    assert_int_equal(call->args[0].loc.col, 7);  /* positional: the value */
    assert_int_equal(call->args[1].loc.col, 10); /* keyword: the key */
    assert_int_equal(call->args[1].value->loc.col, 16); /* unary: the '-' */
    assert_int_equal(s[2]->loc.col, 1);
    assert_int_equal(s[2]->name_locs[0].col, 7);
    assert_int_equal(s[2]->type.loc.col, 11);
    assert_int_equal(s[2]->init->loc.col, 20);
    assert_int_equal(s[3]->loc.line, 4);
    assert_int_equal(s[3]->param_locs[0].col, 6);
    assert_int_equal(s[3]->end_loc.line, 6);
    assert_int_equal(s[3]->end_loc.col, 3);
    assert_int_equal(s[3]->body[0]->loc.line, 5);
    assert_int_equal(s[3]->body[0]->loc.col, 3);
    assert_int_equal(s[4]->loc.line, 7); /* bind: its first name */
    assert_int_equal(s[4]->loc.col, 3);
    assert_int_equal(s[4]->name_locs[1].col, 6);
    assert_int_equal(s[5]->name_locs[1].line, 8);
    assert_int_equal(s[5]->name_locs[1].col, 11);
    parsed_free(&r);
}

/* ---- errors -------------------------------------------------------------- */

static void test_error_messages(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"x = 1 +\n", "1:7: error: expected an expression after '+'"},
        {"x = a * / b\n", "1:7: error: expected an expression after '*'"},
        {"x = * 2\n", "1:5: error: expected an expression before '*'"},
        {"x =\n", "1:3: error: expected an expression after '='"},
        {"x = )\n", "1:3: error: expected an expression after '='"},
        {"x = f(a, )b\n", "1:11: error: expected a newline or ';' after the "
                          "statement, found 'b'"},
        {"x = f(, a)\n", "1:7: error: expected an expression"},
        {"x = f(a, b\ny = 2\n", "2:1: error: expected ')' to close '(' "
                                "opened at 1:6"},
        {"x = [1, 2\n", "2:1: error: expected ']' to close '[' opened at 1:5"},
        {"x = ((((1)))\n", "2:1: error: expected ')' to close '(' opened at "
                           "1:5"},
        {"x = a[1\n", "2:1: error: expected ']' to close '[' opened at 1:6"},
        {"fn f(x) {\n  return x\n", "3:1: error: unterminated block: expected "
                                    "'}' before the end of the file"},
        {"fn f(x) {\n  return x", "2:11: error: unterminated block: expected "
                                  "'}' before the end of the file"},
        {"dim B 64\n", "1:7: error: expected '=' after 'dim B'"},
        {"dim B\n", "1:6: error: expected '=' after 'dim B'"},
        {"h relu(x)\n", "1:3: error: expected '=' after 'h'"},
        {"a, b split(x, 2)\n", "1:6: error: expected '=' after 'b'"},
        {"a, 3 = x\n", "1:4: error: expected a name after ','"},
        {"input x f32[3]\n", "1:9: error: expected ':' and a type after "
                             "'input x'"},
        {"input x : f64[3]\n", "1:11: error: unknown element type 'f64'; "
                               "expected f32 or i32"},
        {"input x : f32\n", "1:14: error: expected '[' after 'f32' (write "
                            "f32[] for a scalar)"},
        {"input x : [3]\n", "1:11: error: expected a type such as f32[B, 64]"},
        {"input x : f32[3\n", "2:1: error: expected ']' to close '[' opened "
                              "at 1:14"},
        {"param W : f32[3] zeros\n", "1:18: error: expected '=' and an "
                                     "initializer after the type of 'W'"},
        {"param W : f32[3] = 0.5\n", "1:20: error: an initializer must be a "
                                     "name such as zeros or a call such as "
                                     "normal(0.02)"},
        {"param W f32[3] = zeros\n", "1:9: error: expected ':' and a type "
                                     "after 'param W'"},
        {"dim = 3\n", "1:1: error: 'dim' is a keyword and cannot be used as a "
                      "name"},
        {"output, x = f(y)\n", "1:1: error: 'output' is a keyword and cannot "
                               "be used as a name"},
        {"inf = 3\n", "1:1: error: 'inf' is a keyword and cannot be used as a "
                      "name"},
        {"x, with = f(y)\n", "1:4: error: 'with' is a keyword and cannot be "
                             "used as a name"},
        {"dim model = 3\n", "1:5: error: 'model' is a keyword and cannot be "
                            "used as a name"},
        {"fn f(scan) { return 1 }\n", "1:6: error: 'scan' is a keyword and "
                                      "cannot be used as a name"},
        {"y = model + 1\n", "1:5: error: 'model' is a keyword and cannot be "
                            "used as a name"},
        {"output frozen\n", "1:8: error: 'frozen' is a keyword and cannot be "
                            "used as a name"},
        {"return 1\n", "1:1: error: 'return' is only allowed inside a fn"},
        {"fn f(x) {\n  fn g(y) {\n    return y\n  }\n  return x\n}\n",
         "2:3: error: a fn cannot be defined inside another fn"},
        {"fn f(x) {\n  dim B = 2\n  return x\n}\n",
         "2:3: error: 'dim' is only allowed at the top level, not inside a fn"},
        {"fn f(x) {\n  output x\n  return x\n}\n",
         "2:3: error: 'output' is only allowed at the top level, not inside a "
         "fn"},
        {"dim B = 1\nmodel m\n", "2:1: error: 'model' must be the first "
                                 "statement"},
        {"model a\nmodel b\n", "2:1: error: 'model' must be the first "
                               "statement"},
        {"model\n", "1:6: error: expected a name after 'model'"},
        {"x = a b\n", "1:7: error: expected a newline or ';' after the "
                      "statement, found 'b'"},
        {"x = a)\n", "1:6: error: ')' has no matching '('"},
        {"x = a]\n", "1:6: error: ']' has no matching '['"},
        {"}\n", "1:1: error: '}' has no matching '{'"},
        {"3 = x\n", "1:1: error: expected a statement, found '3'"},
        {"with x\n", "1:1: error: expected a statement, found 'with'"},
        {"y = f(a = 1, b)\n", "1:14: error: positional argument after keyword "
                              "argument"},
        {"y = f(a = )\n", "1:9: error: expected an expression after '='"},
        {"y = x[::2]\n", "1:8: error: slice steps are not supported; write "
                         "lo:hi"},
        {"y = x[1:2:3]\n", "1:10: error: slice steps are not supported; write "
                           "lo:hi"},
        {"y = x[]\n", "1:7: error: expected an index or a slice"},
        {"y = (a,)\n", "1:5: error: a tuple needs at least two elements"},
        {"y = ()\n", "1:6: error: expected an expression"},
        {"y = x[0](1)\n", "1:9: error: only a name can be called"},
        {"y = scan\n", "1:9: error: expected '(' after 'scan'"},
        {"output a + b\n", "1:10: error: 'output' takes names only; bind the "
                           "expression to a name first"},
        {"output a b\n", "1:10: error: expected ',' between output names"},
        {"output\n", "1:7: error: expected a name after 'output'"},
        {"output a,\n", "1:10: error: expected a name after ','"},
        {"train loss with adam\n", "1:17: error: the optimizer needs "
                                   "parentheses: write 'adam()'"},
        {"train loss adam()\n", "1:12: error: expected 'with' after the loss, "
                                "as in 'train loss with adam()'"},
        {"train loss with\n", "1:12: error: expected an optimizer such as "
                              "adam() after 'with'"},
        {"train loss with 1e-3\n", "1:17: error: expected an optimizer such "
                                   "as adam() after 'with'"},
        {"train with adam()\n", "1:1: error: expected an expression after "
                                "'train'"},
        {"fn f(x) { return }\n", "1:11: error: expected an expression after "
                                 "'return'"},
        {"fn f(x) { return x, }\n", "1:19: error: expected an expression "
                                    "after ','"},
        {"fn f(x) {\n  y = x\n}\n", "3:1: error: fn 'f' must end with a "
                                    "'return' statement"},
        {"fn f(x) { }\n", "1:11: error: fn 'f' must end with a 'return' "
                          "statement"},
        {"fn f(x) {\n  return x\n  y = x\n}\n",
         "3:3: error: statement after 'return'; 'return' must be the last "
         "statement of a fn"},
        {"fn f x) { return x }\n", "1:6: error: expected '(' after 'fn f'"},
        {"fn f(1) { return 1 }\n", "1:6: error: expected a parameter name"},
        {"fn f(x)\n", "2:1: error: expected '{' to start the body of fn 'f'"},
        {"fn f(x) { return x } y = 1\n", "1:22: error: expected a newline or "
                                         "';' after the statement, found 'y'"},
        {"fn f(x) { y = x return y }\n", "1:17: error: expected a newline or "
                                         "';' after the statement, found "
                                         "'return'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_errors(cases[i][0], cases[i][1]);
}

static void test_lexical_errors_are_not_repeated(void **state)
{
    (void)state;
    /* The lexer reports the bad text; the parser skips the statement
     * without a second message, and parses the next one. */
    Parsed r = parse("x = 99999999999999999999\ny = a $ b\nz = 1\n");
    assert_string_equal(r.errors,
                        "1:5: error: integer literal does not fit in 64 bits\n"
                        "2:7: error: unexpected character '$'");
    assert_string_equal(r.tree, "(bind (z) 1)");
    parsed_free(&r);
    /* an error about a keyword is not hidden by bad text after it */
    r = parse("return $\nfn f(x) {\n  dim \xFF\n  return x\n}\n");
    assert_string_equal(r.errors,
                        "1:1: error: 'return' is only allowed inside a fn\n"
                        "1:8: error: unexpected character '$'\n"
                        "3:3: error: 'dim' is only allowed at the top level, "
                        "not inside a fn\n"
                        "3:7: error: invalid UTF-8 byte 0xFF");
    parsed_free(&r);
}

static void test_missing_paren_in_fn_header_keeps_body(void **state)
{
    (void)state;
    Parsed r = parse("fn f(x {\n  return x\n}\ny = f(1)\n");
    assert_string_equal(r.errors, "1:8: error: expected ')' to close '(' "
                                  "opened at 1:5");
    assert_string_equal(r.tree, "(fn f (x) (return x))\n(bind (y) (call f 1))");
    parsed_free(&r);
}

static void
test_unclosed_bracket_recovers_at_next_statement_keyword(void **state)
{
    (void)state;
    /* Newlines inside brackets are ignored, so an unclosed '(' reads on
     * into the next line; a keyword that only starts statements, first on
     * its line, ends the damage there. */
    Parsed r = parse("input x : f32[4, 8\n"
                     "param W : f32[8] = zeros\n"
                     "h = relu((x @ W)\n"
                     "output h\n"
                     "y = f(a,\n"
                     "      b\n"
                     "z = 1\n");
    assert_string_equal(r.errors,
                        "2:1: error: expected ']' to close '[' opened at 1:14\n"
                        "4:1: error: expected ')' to close '(' opened at 3:9\n"
                        "7:1: error: expected ')' to close '(' opened at 5:6");
    assert_string_equal(r.tree, "(param W f32[8] zeros)\n(output h)");
    parsed_free(&r);
    /* inside a fn body too, where 'return' restarts */
    r = parse("fn f(v) {\n  w = g(v\n  return w\n}\ny = 1\n");
    assert_string_equal(r.errors, "3:3: error: expected ')' to close '(' "
                                  "opened at 2:8");
    assert_string_equal(r.tree, "(fn f (v) (return w))\n(bind (y) 1)");
    parsed_free(&r);
}

static void test_several_errors_in_one_file(void **state)
{
    (void)state;
    Parsed r = parse("dim B = 64\n"
                     "x = a +\n"
                     "input y : f64[B]\n"
                     "fn f(a) {\n"
                     "  b = a * * 2\n"
                     "  return b\n"
                     "}\n"
                     "output z w\n"
                     "train loss with adam\n"
                     "h = relu(x)\n"
                     "q = (1, 2\n");
    assert_string_equal(
        r.errors,
        "2:7: error: expected an expression after '+'\n"
        "3:11: error: unknown element type 'f64'; expected f32 or i32\n"
        "5:9: error: expected an expression after '*'\n"
        "8:10: error: expected ',' between output names\n"
        "9:17: error: the optimizer needs parentheses: write 'adam()'\n"
        "12:1: error: expected ')' to close '(' opened at 11:5");
    assert_string_equal(r.tree, "(dim B 64)\n(fn f (a) (return b))\n"
                                "(bind (h) (call relu x))");
    parsed_free(&r);
}

static void test_error_cap_stops_parsing(void **state)
{
    (void)state;
    Buf b = {0};
    for (int i = 0; i < 30; i++)
        put(&b, "x = +\n");
    Parsed r = parse(b.s);
    assert_int_equal(r.n_errors, 20);
    parsed_free(&r);
    free(b.s);
}

/* ---- hostile input ------------------------------------------------------- */

static void test_empty_and_comment_only_files(void **state)
{
    (void)state;
    check_tree("", "");
    check_tree("\n\n   \n# nothing\n;;\n", "");
    Parsed r = parse_n(NULL, 0, 20);
    assert_int_equal(r.prog->n_stmts, 0);
    assert_int_equal(r.n_errors, 0);
    parsed_free(&r);
}

static void test_source_is_not_read_past_its_length(void **state)
{
    (void)state;
    /* No terminating NUL: a sanitizer build catches any over-read. */
    const char text[] = "x = f(a, [1, 2])";
    char *src = malloc(sizeof text - 1);
    memcpy(src, text, sizeof text - 1);
    Parsed r = parse_n(src, sizeof text - 1, 20);
    assert_string_equal(r.tree, "(bind (x) (call f a (list 1 2)))");
    parsed_free(&r);
    free(src);
}

static void test_random_bytes(void **state)
{
    (void)state;
    for (uint32_t seed = 1; seed <= 20; seed++) {
        size_t n = 1 << 14;
        char *src = malloc(n);
        uint32_t x = seed;
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            src[i] = (char)(x >> 16);
        }
        Parsed r = parse_n(src, n, 20);
        assert_true(r.n_errors > 0);
        parsed_free(&r);
        free(src);
    }
}

static void test_random_tokens(void **state)
{
    (void)state;
    /* Token soup exercises the recovery paths rather than the lexer. */
    static const char *const pieces[] = {
        "x",   "f",     "(",     ")",      "[",     "]",    "{",      "}",
        ",",   ":",     ";",     "=",      "+",     "-",    "*",      "/",
        "@",   "<",     "==",    "1",      "2.5",   "\n",   "fn",     "return",
        "dim", "param", "input", "output", "train", "with", "frozen", "scan",
        "f32", "model", "inf",   "true",   " "};
    size_t n_pieces = sizeof pieces / sizeof *pieces;
    for (uint32_t seed = 1; seed <= 200; seed++) {
        Buf b = {0};
        uint32_t x = seed;
        for (int i = 0; i < 400; i++) {
            x = x * 1103515245u + 12345u;
            put(&b, "%s ", pieces[(x >> 16) % n_pieces]);
        }
        Parsed r = parse_n(b.s, b.len, 1000);
        parsed_free(&r);
        free(b.s);
    }
}

static void test_nul_byte(void **state)
{
    (void)state;
    const char src[] = "x = 1\0\ny = 2\n";
    Parsed r = parse_n(src, sizeof src - 1, 20);
    assert_string_equal(r.errors, "1:6: error: unexpected NUL byte");
    assert_string_equal(r.tree, "(bind (y) 2)");
    parsed_free(&r);
}

static char *repeat(const char *prefix, const char *unit, size_t times,
                    const char *suffix)
{
    Buf b = {0};
    put(&b, "%s", prefix);
    for (size_t i = 0; i < times; i++)
        put(&b, "%s", unit);
    put(&b, "%s", suffix);
    return b.s;
}

static void test_megabyte_lines(void **state)
{
    (void)state;
    /* a megabyte-long name is fine */
    char *src = repeat("x = ", "a", (size_t)1 << 20, "\noutput x\n");
    Parsed r = parse(src);
    assert_int_equal(r.n_errors, 0);
    assert_int_equal(r.prog->n_stmts, 2);
    assert_true(strlen(r.prog->stmts[0]->value->name) == (size_t)1 << 20);
    parsed_free(&r);
    free(src);
    /* a megabyte-long sum is too deep a tree for lowering to walk, and
     * has too many tokens */
    src = repeat("x = a", " + a", (size_t)1 << 18, "\n");
    r = parse(src);
    char want[200];
    snprintf(want, sizeof want,
             "1:4099: error: expression has more than 1024 levels of "
             "operations; split it into several bindings\n"
             "1:%d: error: the file has too many tokens (limit %d)",
             2 * LEX_MAX_TOKENS + 1, LEX_MAX_TOKENS);
    assert_string_equal(r.errors, want);
    parsed_free(&r);
    free(src);
    /* a megabyte of stray characters: errors, capped */
    src = repeat("", "$", (size_t)1 << 20, "");
    r = parse(src);
    assert_true(r.n_errors >= 20);
    parsed_free(&r);
    free(src);
}

static void test_chain_height_limit(void **state)
{
    (void)state;
    char *ok = repeat("x = a", "+a", 1023, "\n"); /* 1024 operands */
    Parsed r = parse(ok);
    assert_int_equal(r.n_errors, 0);
    parsed_free(&r);
    free(ok);
    char *bad = repeat("x = a", "+a", 1024, "\n");
    r = parse(bad);
    assert_string_equal(r.errors, "1:2052: error: expression has more than "
                                  "1024 levels of operations; split it into "
                                  "several bindings");
    parsed_free(&r);
    free(bad);
    bad = repeat("x = a", "[0]", 2000, "\n");
    r = parse(bad);
    assert_int_equal(r.n_errors, 1);
    parsed_free(&r);
    free(bad);
}

/* 10,000 levels of one nesting form: one error, then the next line parses. */
static void check_deep(const char *open, const char *close, int col)
{
    Buf b = {0};
    put(&b, "x = ");
    for (int i = 0; i < 10000; i++)
        put(&b, "%s", open);
    put(&b, "1");
    for (int i = 0; i < 10000; i++)
        put(&b, "%s", close);
    put(&b, "\ny = 2\n");
    Parsed r = parse(b.s);
    char want[96];
    snprintf(want, sizeof want,
             "1:%d: error: expression nested too deeply (limit 256)", col);
    assert_string_equal(r.errors, want);
    assert_string_equal(r.tree, "(bind (y) 2)");
    parsed_free(&r);
    free(b.s);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    check_deep("(", ")", 4 + 257);
    check_deep("[", "]", 4 + 257);
    check_deep("-", "", 4 + 257);
    check_deep("f(", ")", 4 + 2 * 256 + 1);
    check_deep("a[", "]", 4 + 2 * 256 + 1);
    check_deep("(-", ")", 4 + 257);
    /* 10,000 unclosed parentheses */
    char *src = repeat("x = ", "(", 10000, "");
    Parsed r = parse(src);
    assert_string_equal(r.errors, "1:261: error: expression nested too "
                                  "deeply (limit 256)");
    parsed_free(&r);
    free(src);
}

static void test_nesting_limit_boundary(void **state)
{
    (void)state;
    /* the statement's expression is one level; 255 parentheses fit */
    Buf b = {0};
    put(&b, "x = ");
    for (int i = 0; i < 255; i++)
        put(&b, "(");
    put(&b, "1");
    for (int i = 0; i < 255; i++)
        put(&b, ")");
    check_tree(b.s, "(bind (x) 1)");
    free(b.s);
}

static void test_deeply_nested_fns(void **state)
{
    (void)state;
    char *src = repeat("", "fn f() {\n", 10000, "");
    Parsed r = parse(src);
    assert_string_equal(r.errors,
                        "2:1: error: a fn cannot be defined inside another fn\n"
                        "10001:1: error: unterminated block: expected '}' "
                        "before the end of the file");
    parsed_free(&r);
    free(src);
    char *body = repeat("", "fn f() {\n", 10000, "");
    char *closed = repeat(body, "}\n", 10000, "y = 1\n");
    r = parse(closed);
    assert_string_equal(r.errors, "2:1: error: a fn cannot be defined inside "
                                  "another fn");
    assert_string_equal(r.tree, "(fn f ())\n(bind (y) 1)");
    parsed_free(&r);
    free(body);
    free(closed);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    Parsed r = parse("x = 1 # caf\xC3\ny = \xFF\nz = 2\n");
    assert_string_equal(r.errors, "1:12: error: invalid UTF-8 byte 0xC3");
    assert_string_equal(r.tree, "(bind (x) 1)\n(bind (z) 2)");
    parsed_free(&r);
    r = parse("name\xE2\x82\xAC = 1\n");
    assert_string_equal(r.errors, "1:5: error: non-ASCII character '\xE2\x82"
                                  "\xAC' (U+20AC) is only allowed in "
                                  "comments");
    parsed_free(&r);
}

static void test_token_cap(void **state)
{
    (void)state;
    /* three tokens a line: newlines do not count */
    char *src = repeat("", "x=1\n", LEX_MAX_TOKENS / 3 + 10, "");
    Parsed r = parse(src);
    assert_int_equal(r.n_errors, 1);
    assert_non_null(strstr(r.errors, "the file has too many tokens"));
    parsed_free(&r);
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precedence_and_associativity),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_calls_and_keyword_arguments),
        cmocka_unit_test(test_slicing_forms),
        cmocka_unit_test(test_lists_and_tuples),
        cmocka_unit_test(test_every_statement_kind),
        cmocka_unit_test(test_fn_one_line_and_multi_line),
        cmocka_unit_test(test_semicolons_end_statements),
        cmocka_unit_test(test_model_may_follow_comments),
        cmocka_unit_test(test_locations),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_lexical_errors_are_not_repeated),
        cmocka_unit_test(test_missing_paren_in_fn_header_keeps_body),
        cmocka_unit_test(
            test_unclosed_bracket_recovers_at_next_statement_keyword),
        cmocka_unit_test(test_several_errors_in_one_file),
        cmocka_unit_test(test_error_cap_stops_parsing),
        cmocka_unit_test(test_empty_and_comment_only_files),
        cmocka_unit_test(test_source_is_not_read_past_its_length),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_random_tokens),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_megabyte_lines),
        cmocka_unit_test(test_chain_height_limit),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_nesting_limit_boundary),
        cmocka_unit_test(test_deeply_nested_fns),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_token_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
