/* read.c — parses the text IR printed by print.c back into a Module.
 *
 * A hand-written lexer and a recursive-descent parser (without recursion:
 * the grammar of docs/ir.md is flat), so that golden tests can feed IR text
 * to a single pass.  Nodes go into the graph through the builder: ir_add
 * re-infers every result type (shape.c) and the reader reports a written
 * type that differs.  Scans, whose body graph may be defined further down,
 * go in with ir_add_typed and are type-checked once every graph is read.
 * The module it returns passes ir_verify_module (checked last, as a safety
 * net).
 *
 * The input is untrusted (tests, fuzzing): every count, number and length
 * is bounded, every %id is checked before use, nothing is read past `len`,
 * and the first error is reported as "file:line:col: error: ..." through
 * the Diag, after which the reader stops and returns NULL.
 *
 * Sections, in order: tokens and lexer, parser primitives, literals,
 * declarations, nodes, graphs, the checks after the last graph.  The file
 * is longer than most because the lexer and the parser of one format live
 * together; the lexer (up to "parser primitives") is the place to cut if
 * it grows further. */
#include "ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT     ((size_t)1 << 30) /* bytes of IR text */
#define MAX_NUM_LEN  64                /* characters in one number */
#define MAX_LIST     65536 /* operands or results of a node, args of a graph */
#define MAX_ELEMENTS ((int64_t)1 << 62)

/* ---- tokens -------------------------------------------------------------- */

typedef enum TokKind {
    T_EOF,
    T_WORD,
    T_STRING,
    T_NUM,
    T_VALUE,
    T_AT,
    T_EQ,
    T_COLON,
    T_COMMA,
    T_LPAREN,
    T_RPAREN,
    T_LBRACK,
    T_RBRACK,
    T_LBRACE,
    T_RBRACE,
    T_DASH,
    T_COMMENT, /* a `#` comment that ends a line holding other tokens */
} TokKind;

typedef struct Tok {
    TokKind kind;
    size_t off, len; /* the token's bytes in the text */
    SrcLoc loc;
} Tok;

typedef struct Lexer {
    const char *src;
    size_t pos, end;
    int32_t line, col;
    int32_t tok_line; /* line of the last token produced; 0: none yet */
} Lexer;

/* String -> index, for input, param and graph names (open addressing). */
typedef struct NameMap {
    const char **keys;
    int32_t *vals;
    uint32_t cap;
    int32_t len;
} NameMap;

/* A scan whose body is named before it may be defined: resolved and
 * type-checked after the last graph. */
typedef struct Fixup {
    Graph *g;
    int32_t node;
    const char *body;
    SrcLoc loc;        /* of the body's name */
    SrcLoc *type_locs; /* of each written result type */
} Fixup;

typedef struct Reader {
    Arena *a;
    Diag *d;
    const char *src;
    Lexer lx;
    Tok tok;  /* current token, never a comment */
    Tok hint; /* the comment that ended the previous token's line */
    bool has_hint;
    bool failed;
    Module *m;
    NameMap dims, inputs, params, graphs;
    VEC(Fixup) fixups;
    Graph *g;           /* graph being read */
    VEC(Value) vals;    /* %N of the current graph -> Value */
    bool *arg_seen;     /* per arg of the current graph */
    SrcLoc main_return; /* where the main graph's `return` is */
    VEC(Value) ins;     /* scratch: operands of the node being read */
    VEC(Type) types;    /* scratch: its written result types */
    VEC(SrcLoc) type_locs;
} Reader;

__attribute__((format(printf, 3, 4))) static bool
error_at(Reader *r, SrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_verror(r->d, loc, fmt, ap);
    va_end(ap);
    r->failed = true;
    return false;
}

/* ---- name map ------------------------------------------------------------ */

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int32_t map_get(const NameMap *mp, const char *key)
{
    if (!mp->cap)
        return -1;
    for (uint32_t i = hash_name(key) & (mp->cap - 1);;
         i = (i + 1) & (mp->cap - 1)) {
        if (!mp->keys[i])
            return -1;
        if (strcmp(mp->keys[i], key) == 0)
            return mp->vals[i];
    }
}

static void map_put(Arena *a, NameMap *mp, const char *key, int32_t val)
{
    if ((uint32_t)(mp->len + 1) * 2 > mp->cap) {
        NameMap old = *mp;
        mp->cap = old.cap ? old.cap * 2 : 64;
        mp->keys = arena_alloc(a, sizeof *mp->keys * mp->cap);
        mp->vals = arena_alloc(a, sizeof *mp->vals * mp->cap);
        mp->len = 0;
        for (uint32_t i = 0; i < old.cap; i++)
            if (old.keys[i])
                map_put(a, mp, old.keys[i], old.vals[i]);
    }
    uint32_t i = hash_name(key) & (mp->cap - 1);
    while (mp->keys[i])
        i = (i + 1) & (mp->cap - 1);
    mp->keys[i] = key;
    mp->vals[i] = val;
    mp->len++;
}

/* ---- lexer --------------------------------------------------------------- */

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_word_char(int c)
{
    return is_alpha(c) || is_digit(c) || c == '.';
}
static bool is_hex(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int peek_char(const Lexer *lx, size_t ahead)
{
    return lx->pos + ahead < lx->end ? (unsigned char)lx->src[lx->pos + ahead]
                                     : -1;
}

static void skip_char(Lexer *lx)
{
    if (lx->src[lx->pos++] == '\n') {
        lx->line++;
        lx->col = 1;
    } else {
        lx->col++;
    }
}

static SrcLoc lexer_loc(const Lexer *lx) { return (SrcLoc){lx->line, lx->col}; }

/* Spaces, newlines, `;` comments and `#` comments on a line of their own;
 * stops at a `#` that ends a line holding a token (the names of a node). */
static void skip_space(Lexer *lx)
{
    for (int c; (c = peek_char(lx, 0)) >= 0;) {
        if (c == ';' || (c == '#' && lx->tok_line != lx->line)) {
            while (peek_char(lx, 0) >= 0 && peek_char(lx, 0) != '\n')
                skip_char(lx);
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            skip_char(lx);
        } else {
            return;
        }
    }
}

/* "..." with \" \\ \n \t \xHH escapes, on one line. */
static bool lex_string(Reader *r, Lexer *lx)
{
    skip_char(lx);
    for (;;) {
        int c = peek_char(lx, 0);
        if (c < 0 || c == '\n')
            return error_at(r, lexer_loc(lx), "unterminated string");
        if (c == '"') {
            skip_char(lx);
            return true;
        }
        if (c != '\\') {
            skip_char(lx);
            continue;
        }
        int e = peek_char(lx, 1);
        if (e == 'x' && is_hex(peek_char(lx, 2)) && is_hex(peek_char(lx, 3)) &&
            !(peek_char(lx, 2) == '0' && peek_char(lx, 3) == '0')) {
            for (int i = 0; i < 4; i++)
                skip_char(lx);
        } else if (e == '"' || e == '\\' || e == 'n' || e == 't') {
            skip_char(lx);
            skip_char(lx);
        } else {
            return error_at(
                r, lexer_loc(lx),
                "bad escape in string (use \\\" \\\\ \\n \\t or \\xHH)");
        }
    }
}

/* Digits, dots and an exponent; validated when parsed. -inf, -nan too. */
static bool lex_number(Reader *r, Lexer *lx)
{
    SrcLoc at = lexer_loc(lx);
    if (peek_char(lx, 0) == '-')
        skip_char(lx);
    if (is_alpha(peek_char(lx, 0))) {
        size_t from = lx->pos;
        while (is_word_char(peek_char(lx, 0)))
            skip_char(lx);
        size_t n = lx->pos - from;
        if (n == 3 && (memcmp(lx->src + from, "inf", 3) == 0 ||
                       memcmp(lx->src + from, "nan", 3) == 0))
            return true;
        return error_at(r, at, "malformed number");
    }
    while (is_digit(peek_char(lx, 0)) || peek_char(lx, 0) == '.')
        skip_char(lx);
    int c = peek_char(lx, 0);
    if (c == 'e' || c == 'E') {
        skip_char(lx);
        if (peek_char(lx, 0) == '+' || peek_char(lx, 0) == '-')
            skip_char(lx);
        while (is_digit(peek_char(lx, 0)))
            skip_char(lx);
    }
    if (is_word_char(peek_char(lx, 0)))
        return error_at(r, at, "malformed number");
    return true;
}

static TokKind punct_kind(int c)
{
    switch (c) {
    case '@': return T_AT;
    case '=': return T_EQ;
    case ':': return T_COLON;
    case ',': return T_COMMA;
    case '(': return T_LPAREN;
    case ')': return T_RPAREN;
    case '[': return T_LBRACK;
    case ']': return T_RBRACK;
    case '{': return T_LBRACE;
    case '}': return T_RBRACE;
    default: return T_EOF;
    }
}

static bool lex_token_body(Reader *r, Lexer *lx, Tok *t)
{
    int c = peek_char(lx, 0), c1 = peek_char(lx, 1);
    if (c == '#') {
        t->kind = T_COMMENT;
        while (peek_char(lx, 0) >= 0 && peek_char(lx, 0) != '\n')
            skip_char(lx);
    } else if (is_alpha(c)) {
        t->kind = T_WORD;
        while (is_word_char(peek_char(lx, 0)))
            skip_char(lx);
    } else if (is_digit(c) || c == '.' ||
               (c == '-' &&
                (is_digit(c1) || c1 == '.' || c1 == 'i' || c1 == 'n'))) {
        t->kind = T_NUM;
        return lex_number(r, lx);
    } else if (c == '%') {
        t->kind = T_VALUE;
        skip_char(lx);
        if (!is_digit(peek_char(lx, 0)))
            return error_at(r, t->loc, "expected a value number after '%%'");
        while (is_digit(peek_char(lx, 0)))
            skip_char(lx);
    } else if (c == '"') {
        t->kind = T_STRING;
        return lex_string(r, lx);
    } else if (c == '-') {
        t->kind = T_DASH;
        skip_char(lx);
    } else if (punct_kind(c) != T_EOF) {
        t->kind = punct_kind(c);
        skip_char(lx);
    } else if (c >= 0x21 && c < 0x7f) {
        return error_at(r, t->loc, "unexpected character '%c'", c);
    } else {
        return error_at(r, t->loc, "unexpected byte 0x%02x", (unsigned)c);
    }
    return true;
}

static bool lex(Reader *r, Lexer *lx, Tok *t)
{
    skip_space(lx);
    t->off = lx->pos;
    t->loc = lexer_loc(lx);
    t->kind = T_EOF;
    if (lx->pos < lx->end && !lex_token_body(r, lx, t))
        return false;
    t->len = lx->pos - t->off;
    lx->tok_line = t->loc.line;
    return true;
}

/* ---- parser primitives --------------------------------------------------- */

/* Moves to the next token, remembering a trailing comment it passes. */
static bool advance(Reader *r)
{
    r->has_hint = false;
    for (;;) {
        if (!lex(r, &r->lx, &r->tok))
            return false;
        if (r->tok.kind != T_COMMENT)
            return true;
        r->hint = r->tok;
        r->has_hint = true;
    }
}

static const char *describe(const Reader *r, const Tok *t, char *buf,
                            size_t len)
{
    if (t->kind == T_EOF)
        return "end of input";
    size_t n = t->len < 24 ? t->len : 24, j = 0;
    buf[j++] = '\'';
    for (size_t i = 0; i < n && j + 5 < len; i++) {
        char c = r->src[t->off + i];
        buf[j++] = c >= 0x20 && c < 0x7f ? c : '?';
    }
    if (n < t->len)
        j += (size_t)snprintf(buf + j, len - j, "...");
    snprintf(buf + j, len - j, "'");
    return buf;
}

static bool expected(Reader *r, const char *what)
{
    char buf[48];
    return error_at(r, r->tok.loc, "expected %s, found %s", what,
                    describe(r, &r->tok, buf, sizeof buf));
}

static bool tok_is_word(const Reader *r, const char *w)
{
    size_t n = strlen(w);
    return r->tok.kind == T_WORD && r->tok.len == n &&
           memcmp(r->src + r->tok.off, w, n) == 0;
}

static bool expect(Reader *r, TokKind kind, const char *what)
{
    return r->tok.kind == kind ? advance(r) : expected(r, what);
}

static bool accept(Reader *r, TokKind kind, bool *ok)
{
    if (r->tok.kind != kind)
        return false;
    *ok = advance(r);
    return true;
}

static bool expect_word(Reader *r, const char *w)
{
    char what[40];
    snprintf(what, sizeof what, "'%s'", w);
    return tok_is_word(r, w) ? advance(r) : expected(r, what);
}

/* `key=` as in `axis=1`. */
static bool expect_key(Reader *r, const char *key)
{
    char what[40];
    snprintf(what, sizeof what, "'%s='", key);
    if (!tok_is_word(r, key))
        return expected(r, what);
    return advance(r) && expect(r, T_EQ, what);
}

/* ---- literals ------------------------------------------------------------ */

/* NAME: a word or a quoted string, decoded into the arena. */
static bool parse_name_tok(Reader *r, const Tok *t, const char **out)
{
    const char *s = r->src + t->off;
    if (t->kind == T_WORD) {
        *out = arena_strndup(r->a, s, t->len);
        return true;
    }
    char *p = arena_alloc(r->a, t->len);
    size_t j = 0;
    for (size_t i = 1; i + 1 < t->len; i++) {
        if (s[i] != '\\') {
            p[j++] = s[i];
        } else if (s[++i] == 'x') {
            p[j++] = (char)strtol((char[3]){s[i + 1], s[i + 2], 0}, NULL, 16);
            i += 2;
        } else {
            p[j++] = s[i] == 'n' ? '\n' : s[i] == 't' ? '\t' : s[i];
        }
    }
    p[j] = 0;
    *out = p;
    return true;
}

static bool parse_name(Reader *r, const char **out, const char *what)
{
    if (r->tok.kind != T_WORD && r->tok.kind != T_STRING)
        return expected(r, what);
    return parse_name_tok(r, &r->tok, out) && advance(r);
}

static bool parse_int(Reader *r, int64_t lo, int64_t hi, int64_t *out,
                      const char *what)
{
    const Tok *t = &r->tok;
    const char *s = r->src + t->off;
    size_t i = t->kind == T_NUM && t->len > 0 && s[0] == '-' ? 1 : 0;
    if (t->kind != T_NUM || i == t->len)
        return expected(r, what);
    uint64_t v = 0;
    for (; i < t->len; i++) {
        if (!is_digit(s[i]))
            return error_at(r, t->loc, "%s must be an integer", what);
        if (v > (UINT64_MAX - 9) / 10)
            return error_at(r, t->loc, "%s is out of range", what);
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    bool neg = s[0] == '-';
    if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
        return error_at(r, t->loc, "%s is out of range", what);
    int64_t x = neg ? (int64_t)(0 - v) : (int64_t)v;
    if ((x < lo || x > hi) && hi == INT64_MAX)
        return error_at(r, t->loc, "%s must be at least %lld", what,
                        (long long)lo);
    if (x < lo || x > hi)
        return error_at(r, t->loc, "%s must be between %lld and %lld", what,
                        (long long)lo, (long long)hi);
    *out = x;
    return advance(r);
}

static bool parse_int32(Reader *r, int32_t lo, int32_t hi, int32_t *out,
                        const char *what)
{
    int64_t v;
    if (!parse_int(r, lo, hi, &v, what))
        return false;
    *out = (int32_t)v;
    return true;
}

/* A float: as printed by %.17g, or inf, -inf, nan, -nan. */
static bool parse_double(Reader *r, double *out, const char *what)
{
    const Tok *t = &r->tok;
    char buf[MAX_NUM_LEN + 1];
    if ((t->kind != T_NUM && t->kind != T_WORD) || t->len > MAX_NUM_LEN)
        return t->kind == T_NUM ? error_at(r, t->loc, "number too long")
                                : expected(r, what);
    memcpy(buf, r->src + t->off, t->len);
    buf[t->len] = 0;
    bool neg = buf[0] == '-';
    if (strcmp(buf + neg, "inf") == 0)
        *out = neg ? -INFINITY : INFINITY;
    else if (strcmp(buf + neg, "nan") == 0)
        *out = neg ? -NAN : NAN;
    else if (t->kind == T_WORD)
        return expected(r, what);
    else {
        char *end;
        *out = strtod(buf, &end);
        if (*end || end == buf)
            return error_at(r, t->loc, "malformed number");
    }
    return advance(r);
}

static bool parse_bool(Reader *r, bool *out)
{
    if (!tok_is_word(r, "true") && !tok_is_word(r, "false"))
        return expected(r, "true or false");
    *out = tok_is_word(r, "true");
    return advance(r);
}

/* TYPE := ('f32' | 'i32') '[' [INT (',' INT)*] ']' */
static bool parse_type(Reader *r, Type *t)
{
    memset(t, 0, sizeof *t);
    if (!tok_is_word(r, "f32") && !tok_is_word(r, "i32"))
        return expected(r, "a type (f32[...] or i32[...])");
    t->dtype = tok_is_word(r, "f32") ? DT_F32 : DT_I32;
    SrcLoc at = r->tok.loc;
    if (!advance(r) || !expect(r, T_LBRACK, "'['"))
        return false;
    int64_t numel = 1;
    while (r->tok.kind != T_RBRACK) {
        if (t->rank > 0 && !expect(r, T_COMMA, "',' or ']'"))
            return false;
        if (t->rank == IR_MAX_RANK)
            return error_at(r, r->tok.loc, "more than %d dimensions",
                            IR_MAX_RANK);
        int64_t d;
        if (!parse_int(r, 1, INT64_MAX, &d, "a dimension"))
            return false;
        if (d > MAX_ELEMENTS / numel)
            return error_at(r, at, "tensor has more than 2^62 elements");
        numel *= d;
        t->dims[t->rank++] = d;
    }
    return advance(r);
}

/* ---- declarations -------------------------------------------------------- */

/* Declares a name in `map`, refusing a second declaration. */
static bool declare(Reader *r, NameMap *map, const char *what, const char *name,
                    SrcLoc at, int32_t index)
{
    if (map_get(map, name) >= 0)
        return error_at(r, at, "%s %s is already declared", what, name);
    map_put(r->a, map, name, index);
    return true;
}

static bool parse_dim(Reader *r)
{
    DimDecl d;
    if (!advance(r))
        return false;
    SrcLoc at = r->tok.loc;
    if (!parse_name(r, &d.name, "a dim name") || !expect(r, T_EQ, "'='") ||
        !parse_int(r, INT64_MIN, INT64_MAX, &d.value, "the dim's value") ||
        !declare(r, &r->dims, "dim", d.name, at, r->m->dims.len))
        return false;
    vec_push(r->a, &r->m->dims, d);
    return true;
}

static bool parse_input(Reader *r)
{
    InputDecl in;
    if (!advance(r))
        return false;
    SrcLoc at = r->tok.loc;
    if (!parse_name(r, &in.name, "an input name") ||
        !expect(r, T_COLON, "':'") || !parse_type(r, &in.type) ||
        !declare(r, &r->inputs, "input", in.name, at, r->m->inputs.len))
        return false;
    vec_push(r->a, &r->m->inputs, in);
    return true;
}

/* INIT := KIND ['(' NUM [',' NUM] ')'] with the arguments the kind takes. */
static bool parse_init(Reader *r, Init *init)
{
    memset(init, 0, sizeof *init);
    int kind = 0;
    while (kind < INIT_COUNT && !tok_is_word(r, ir_init_names[kind]))
        kind++;
    if (kind == INIT_COUNT)
        return expected(r, "an initializer");
    init->kind = (InitKind)kind;
    if (!advance(r))
        return false;
    int n = kind == INIT_CONST                            ? 1
            : kind == INIT_UNIFORM || kind == INIT_NORMAL ? 2
                                                          : 0;
    if (n == 0)
        return true;
    if (!expect(r, T_LPAREN, "'('") || !parse_double(r, &init->a, "a number"))
        return false;
    if (n == 2 &&
        (!expect(r, T_COMMA, "','") || !parse_double(r, &init->b, "a number")))
        return false;
    return expect(r, T_RPAREN, "')'");
}

static bool parse_param(Reader *r)
{
    ParamDecl p = {0};
    if (!advance(r))
        return false;
    SrcLoc at = r->tok.loc;
    if (!parse_name(r, &p.name, "a param name") || !expect(r, T_COLON, "':'") ||
        !parse_type(r, &p.type) || !expect(r, T_EQ, "'='") ||
        !parse_init(r, &p.init) ||
        !declare(r, &r->params, "param", p.name, at, r->m->params.len))
        return false;
    p.frozen = tok_is_word(r, "frozen");
    if (p.frozen && !advance(r))
        return false;
    vec_push(r->a, &r->m->params, p);
    return true;
}

/* train OPT(lr=, momentum=, nesterov=, beta1=, beta2=, eps=, weight_decay=,
 * clip_grad_norm=): every option, in this order. */
static bool parse_train(Reader *r)
{
    TrainSpec *t = &r->m->train;
    if (!advance(r))
        return false;
    for (int k = OPT_SGD; k <= OPT_ADAMW; k++)
        if (tok_is_word(r, ir_opt_names[k]))
            t->opt = (OptKind)k;
    if (t->opt == OPT_NONE)
        return expected(r, "sgd, adam or adamw");
    static const char *const keys[] = {
        "lr",  "momentum",     "beta1",         "beta2",
        "eps", "weight_decay", "clip_grad_norm"};
    double *fields[] = {&t->lr,  &t->momentum,     &t->beta1,         &t->beta2,
                        &t->eps, &t->weight_decay, &t->clip_grad_norm};
    if (!advance(r) || !expect(r, T_LPAREN, "'('"))
        return false;
    for (int i = 0; i < 7; i++) {
        if ((i > 0 && !expect(r, T_COMMA, "','")) || !expect_key(r, keys[i]) ||
            !parse_double(r, fields[i], "a number"))
            return false;
        if (i == 1 &&
            (!expect(r, T_COMMA, "','") || !expect_key(r, "nesterov") ||
             !parse_bool(r, &t->nesterov)))
            return false;
    }
    return expect(r, T_RPAREN, "')'");
}

/* The declarations, in their fixed order: dim, input, param, train, outputs. */
static bool parse_decls(Reader *r)
{
    while (tok_is_word(r, "dim"))
        if (!parse_dim(r))
            return false;
    while (tok_is_word(r, "input"))
        if (!parse_input(r))
            return false;
    while (tok_is_word(r, "param"))
        if (!parse_param(r))
            return false;
    if (tok_is_word(r, "train") && !parse_train(r))
        return false;
    static const char *const order[] = {"dim", "input", "param", "train"};
    for (int i = 0; i < 4; i++)
        if (tok_is_word(r, order[i]))
            return error_at(r, r->tok.loc,
                            "'%s' is out of place: declarations come in the "
                            "order dim, input, param, train, outputs",
                            order[i]);
    if (!expect_word(r, "outputs") ||
        !parse_int32(r, 0, MAX_LIST, &r->m->n_outputs,
                     "the number of outputs"))
        return false;
    return !tok_is_word(r, "grads") ||
           (advance(r) && parse_int32(r, 1, MAX_LIST, &r->m->n_grads,
                                      "the number of gradients"));
}

/* ---- nodes --------------------------------------------------------------- */

/* What a node line says before it goes into the graph. */
typedef struct NodeText {
    Op op;
    SrcLoc loc, op_loc;
    Attrs attr;
    int32_t n_res;
    Fixup fixup; /* scan only */
} NodeText;

/* The N of a %N token. */
static bool value_number(Reader *r, int32_t *out)
{
    int64_t n = 0;
    for (size_t i = 1; i < r->tok.len; i++) {
        n = n * 10 + (r->src[r->tok.off + i] - '0');
        if (n > INT32_MAX)
            return error_at(r, r->tok.loc, "value number too large");
    }
    *out = (int32_t)n;
    return true;
}

/* A result %N: N must be the next number, as values are numbered in order. */
static bool parse_result(Reader *r, int32_t want)
{
    int32_t n = 0;
    if (r->tok.kind != T_VALUE)
        return expected(r, "a result (%N)");
    if (!value_number(r, &n))
        return false;
    if (n < want)
        return error_at(r, r->tok.loc, "%%%d is already defined", (int)n);
    if (n > want)
        return error_at(
            r, r->tok.loc,
            "expected %%%d: values are numbered in definition order",
            (int)want);
    return advance(r);
}

static bool parse_operand(Reader *r, Value *v)
{
    int32_t n = 0;
    if (r->tok.kind != T_VALUE)
        return expected(r, "a value (%N)");
    if (!value_number(r, &n))
        return false;
    if (n >= r->vals.len)
        return error_at(r, r->tok.loc, "%%%d is not defined", (int)n);
    *v = r->vals.data[n];
    return advance(r);
}

/* `@name` of an input or param. */
static bool parse_decl_ref(Reader *r, const NameMap *map, const char *what,
                           int32_t *index)
{
    const char *name;
    if (!expect(r, T_AT, "'@'"))
        return false;
    SrcLoc at = r->tok.loc;
    if (!parse_name(r, &name, what))
        return false;
    *index = map_get(map, name);
    return *index >= 0 || error_at(r, at, "no %s named %s", what, name);
}

static bool parse_arg_index(Reader *r, Attrs *a)
{
    SrcLoc at = r->tok.loc;
    if (!parse_int32(r, 0, INT32_MAX, &a->index, "an arg number"))
        return false;
    if (a->index >= r->g->n_args)
        return error_at(r, at, "arg %d out of range: graph %s has %d args",
                        (int)a->index, r->g->name, (int)r->g->n_args);
    if (r->arg_seen[a->index])
        return error_at(r, at, "arg %d is already defined", (int)a->index);
    r->arg_seen[a->index] = true;
    return true;
}

/* scan @BODY(carries=INT, over=INT, reverse=BOOL) */
static bool parse_scan_prefix(Reader *r, NodeText *nt)
{
    if (!expect(r, T_AT, "'@' and the body graph"))
        return false;
    nt->fixup.loc = r->tok.loc;
    return parse_name(r, &nt->fixup.body, "a graph name") &&
           expect(r, T_LPAREN, "'('") && expect_key(r, "carries") &&
           parse_int32(r, 0, MAX_LIST, &nt->attr.n_carry,
                       "the number of carries") &&
           expect(r, T_COMMA, "','") && expect_key(r, "over") &&
           parse_int32(r, 0, MAX_LIST, &nt->attr.n_over,
                       "the number of scanned tensors") &&
           expect(r, T_COMMA, "','") && expect_key(r, "reverse") &&
           parse_bool(r, &nt->attr.flag) && expect(r, T_RPAREN, "')'");
}

/* Attributes between the op name and the operands. */
static bool parse_prefix(Reader *r, NodeText *nt)
{
    switch (nt->op) {
    case OP_INPUT:
        return parse_decl_ref(r, &r->inputs, "input", &nt->attr.index);
    case OP_PARAM:
        return parse_decl_ref(r, &r->params, "param", &nt->attr.index);
    case OP_ARG: return parse_arg_index(r, &nt->attr);
    case OP_CONST:
        return parse_double(r, &nt->attr.value, "the constant's value");
    case OP_SCAN: return parse_scan_prefix(r, nt);
    default: return true;
    }
}

/* '[' [INT (',' INT)*] ']' with each INT in lo..IR_MAX_RANK-1; locs[i]
 * gets where entry i is. */
static bool parse_axis_list(Reader *r, int32_t lo, int32_t *list, SrcLoc *locs,
                            int *n)
{
    *n = 0;
    if (!expect(r, T_LBRACK, "'['"))
        return false;
    while (r->tok.kind != T_RBRACK) {
        if (*n > 0 && !expect(r, T_COMMA, "',' or ']'"))
            return false;
        if (*n == IR_MAX_RANK)
            return error_at(r, r->tok.loc, "more than %d entries", IR_MAX_RANK);
        locs[*n] = r->tok.loc;
        if (!parse_int32(r, lo, IR_MAX_RANK - 1, &list[(*n)++], "an axis"))
            return false;
    }
    return advance(r);
}

static bool parse_axes(Reader *r, Attrs *a)
{
    int32_t list[IR_MAX_RANK];
    SrcLoc locs[IR_MAX_RANK];
    int n;
    if (!expect_key(r, "axes") || !parse_axis_list(r, 0, list, locs, &n))
        return false;
    for (int i = 0; i < n; i++) {
        if (a->axes & (1u << list[i]))
            return error_at(r, locs[i], "axis %d appears twice", (int)list[i]);
        a->axes |= 1u << list[i];
    }
    return expect_key(r, "keepdims") && parse_bool(r, &a->keepdims);
}

static bool parse_perm(Reader *r, Attrs *a, int rank)
{
    int n;
    SrcLoc locs[IR_MAX_RANK];
    if (!expect_key(r, "perm"))
        return false;
    SrcLoc at = r->tok.loc;
    if (!parse_axis_list(r, -IR_MAX_RANK, a->perm, locs, &n))
        return false;
    return n == rank ||
           error_at(r, at, "perm has %d entries for an operand of rank %d", n,
                    rank);
}

/* '[' [INT ':' INT (',' INT ':' INT)*] ']', one range per axis. */
static bool parse_slice(Reader *r, Attrs *a, int rank)
{
    SrcLoc at = r->tok.loc;
    int n = 0;
    if (!expect(r, T_LBRACK, "'[' and the slice ranges"))
        return false;
    while (r->tok.kind != T_RBRACK) {
        if (n > 0 && !expect(r, T_COMMA, "',' or ']'"))
            return false;
        if (n == IR_MAX_RANK)
            return error_at(r, r->tok.loc, "more than %d ranges", IR_MAX_RANK);
        if (!parse_int(r, 0, INT64_MAX, &a->start[n], "a slice start") ||
            !expect(r, T_COLON, "':'") ||
            !parse_int(r, 0, INT64_MAX, &a->stop[n], "a slice stop"))
            return false;
        n++;
    }
    if (n != rank)
        return error_at(r, at, "slice has %d ranges for an operand of rank %d",
                        n, rank);
    return advance(r);
}

static bool parse_key_double(Reader *r, const char *key, double *v)
{
    return expect_key(r, key) && parse_double(r, v, "a number");
}

/* Attributes after the operands, by name, in the printer's order. */
static bool parse_suffix(Reader *r, NodeText *nt, int rank)
{
    Attrs *a = &nt->attr;
    switch (nt->op) {
    case OP_POW: return parse_key_double(r, "p", &a->value);
    case OP_DROPOUT:
        if (!parse_key_double(r, "p", &a->value))
            return false;
        return !tok_is_word(r, "site") ||
               (expect_key(r, "site") &&
                parse_int32(r, 1, INT32_MAX, &a->index, "a dropout site"));
    case OP_LAYERNORM:
    case OP_RMSNORM: return parse_key_double(r, "eps", &a->value);
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX:
    case OP_CONCAT:
        return expect_key(r, "axis") &&
               parse_int32(r, -IR_MAX_RANK, IR_MAX_RANK - 1, &a->axis,
                           "an axis");
    case OP_SUM:
    case OP_MEAN:
    case OP_MAX: return parse_axes(r, a);
    case OP_PERMUTE: return parse_perm(r, a, rank);
    case OP_SLICE: return parse_slice(r, a, rank);
    case OP_ATTENTION:
        return expect_key(r, "causal") && parse_bool(r, &a->flag) &&
               parse_key_double(r, "scale", &a->value);
    default: return true;
    }
}

static bool parse_operands(Reader *r, const NodeText *nt)
{
    bool ok = true;
    r->ins.len = 0;
    if (r->tok.kind == T_VALUE)
        do {
            Value v;
            if (r->ins.len == MAX_LIST)
                return error_at(r, r->tok.loc, "more than %d operands",
                                MAX_LIST);
            if (!parse_operand(r, &v))
                return false;
            vec_push(r->a, &r->ins, v);
        } while (accept(r, T_COMMA, &ok) && ok);
    if (!ok)
        return false;
    const OpInfo *info = &ir_op_info[nt->op];
    if (info->arity >= 0 && r->ins.len != info->arity)
        return error_at(r, nt->op_loc, "%s takes %d operand%s, not %d",
                        info->name, info->arity, info->arity == 1 ? "" : "s",
                        (int)r->ins.len);
    if (info->arity < 0 && r->ins.len == 0)
        return error_at(r, nt->op_loc, "%s needs at least one operand",
                        info->name);
    return true;
}

/* ':' TYPE (',' TYPE)*, one per result.  Leaves, CONST, RESHAPE,
 * BROADCAST_TO, SCATTER_ADD and ONE_HOT take their type attribute from it
 * (shape.c returns it). */
static bool parse_result_types(Reader *r, NodeText *nt)
{
    r->types.len = r->type_locs.len = 0;
    if (!expect(r, T_COLON, "':' and the result types"))
        return false;
    for (int32_t i = 0; i < nt->n_res; i++) {
        Type t;
        if (i > 0 && !expect(r, T_COMMA, "',' and another result type"))
            return false;
        SrcLoc at = r->tok.loc;
        if (!parse_type(r, &t))
            return false;
        vec_push(r->a, &r->types, t);
        vec_push(r->a, &r->type_locs, at);
    }
    if (r->tok.kind == T_COMMA)
        return error_at(r, r->tok.loc, "more types than the %d result%s",
                        (int)nt->n_res, nt->n_res == 1 ? "" : "s");
    if (nt->op == OP_INPUT || nt->op == OP_PARAM || nt->op == OP_ARG ||
        nt->op == OP_CONST || nt->op == OP_RESHAPE ||
        nt->op == OP_BROADCAST_TO || nt->op == OP_SCATTER_ADD ||
        nt->op == OP_ONE_HOT)
        nt->attr.type = r->types.data[0];
    return true;
}

/* `# NAME, -, NAME`: the source names of the results, `-` for none; read
 * from the comment that ends the node's line. */
static bool parse_hint(Reader *r, int32_t n_res, const char **names)
{
    Lexer lx = {.src = r->src,
                .pos = r->hint.off + 1,
                .end = r->hint.off + r->hint.len,
                .line = r->hint.loc.line,
                .col = r->hint.loc.col + 1,
                .tok_line = r->hint.loc.line};
    Tok t;
    char buf[48];
    if (!lex(r, &lx, &t))
        return false;
    for (int32_t i = 0; i < n_res; i++) {
        if (i > 0 && t.kind != T_COMMA)
            return error_at(r, t.loc,
                            "the names after '#' are %d for %d results", (int)i,
                            (int)n_res);
        if (i > 0 && !lex(r, &lx, &t))
            return false;
        if (t.kind == T_DASH)
            names[i] = NULL;
        else if (t.kind == T_WORD || t.kind == T_STRING)
            parse_name_tok(r, &t, &names[i]);
        else
            return error_at(r, t.loc,
                            "expected a result name or '-' after '#', found %s "
                            "(other comments go on a line of their own)",
                            t.kind == T_EOF ? "the end of the line"
                                            : describe(r, &t, buf, sizeof buf));
        if (!lex(r, &lx, &t))
            return false;
    }
    if (t.kind != T_EOF)
        return error_at(
            r, t.loc,
            "more names after '#' than the %d result%s (other comments "
            "go on a line of their own)",
            (int)n_res, n_res == 1 ? "" : "s");
    return true;
}

/* An input or param's written type must be its declared one. */
static bool check_declared(Reader *r, const NodeText *nt)
{
    bool in = nt->op == OP_INPUT;
    const Type *decl = in ? &r->m->inputs.data[nt->attr.index].type
                          : &r->m->params.data[nt->attr.index].type;
    char a[96], b[96];
    if (ir_type_eq(decl, &r->types.data[0]))
        return true;
    return error_at(r, r->type_locs.data[0], "%s %s is declared %s, not %s",
                    in ? "input" : "param",
                    in ? r->m->inputs.data[nt->attr.index].name
                       : r->m->params.data[nt->attr.index].name,
                    ir_type_str(decl, a, sizeof a),
                    ir_type_str(&r->types.data[0], b, sizeof b));
}

/* Adds the node through the builder and checks the written types.  A scan
 * goes in as written and is checked when every graph is known. */
static bool build_node(Reader *r, NodeText *nt)
{
    Graph *g = r->g;
    if (nt->op == OP_SCAN) {
        nt->fixup.g = g;
        nt->fixup.node =
            ir_add_typed(g, nt->op, r->ins.data, r->ins.len, &nt->attr, nt->loc,
                         r->types.data, nt->n_res);
        nt->fixup.type_locs =
            arena_alloc(r->a, sizeof(SrcLoc) * (size_t)nt->n_res);
        memcpy(nt->fixup.type_locs, r->type_locs.data,
               sizeof(SrcLoc) * (size_t)nt->n_res);
        vec_push(r->a, &r->fixups, nt->fixup);
        return true;
    }
    if ((nt->op == OP_INPUT || nt->op == OP_PARAM) && !check_declared(r, nt))
        return false;
    char err[256] = "", a[96], b[96];
    Value v = ir_add(r->m, g, nt->op, r->ins.data, r->ins.len, &nt->attr,
                     nt->loc, NULL, err, sizeof err);
    if (v.id == 0)
        return error_at(r, nt->op_loc, "%s", err);
    const Node *n = &g->nodes.data[g->nodes.len - 1];
    if (n->n_out != nt->n_res)
        return error_at(r, nt->op_loc, "%s gives %d results, not %d",
                        ir_op_info[nt->op].name, (int)n->n_out, (int)nt->n_res);
    for (int32_t i = 0; i < n->n_out; i++) {
        const Type *got = &g->values.data[n->out[i].id].type;
        if (!ir_type_eq(got, &r->types.data[i]))
            return error_at(
                r, r->type_locs.data[i], "%s gives %s, not the written %s",
                ir_op_info[nt->op].name, ir_type_str(got, a, sizeof a),
                ir_type_str(&r->types.data[i], b, sizeof b));
    }
    return true;
}

static bool parse_op(Reader *r, NodeText *nt)
{
    char name[32];
    nt->op_loc = r->tok.loc;
    if (r->tok.kind != T_WORD)
        return expected(r, "an op");
    size_t n = r->tok.len < sizeof name - 1 ? r->tok.len : sizeof name - 1;
    memcpy(name, r->src + r->tok.off, n);
    name[n] = 0;
    nt->op = r->tok.len < sizeof name ? ir_op_by_name(name) : OP_COUNT;
    if (nt->op == OP_COUNT)
        return expected(r, "an op");
    if (!(ir_op_info[nt->op].flags & OPF_MULTI) && nt->n_res != 1)
        return error_at(r, nt->op_loc, "%s has 1 result, not %d",
                        ir_op_info[nt->op].name, (int)nt->n_res);
    return advance(r);
}

/* NODE := RESULT (',' RESULT)* '=' OP PREFIX OPERANDS SUFFIX
 *         ':' TYPE (',' TYPE)* [HINT] */
static bool parse_node(Reader *r)
{
    NodeText nt;
    memset(&nt, 0, sizeof nt);
    nt.loc = r->tok.loc;
    bool ok = true;
    do {
        if (nt.n_res == MAX_LIST)
            return error_at(r, r->tok.loc, "more than %d results", MAX_LIST);
        if (!parse_result(r, r->vals.len + nt.n_res))
            return false;
        nt.n_res++;
    } while (accept(r, T_COMMA, &ok) && ok);
    if (!ok || !expect(r, T_EQ, "',' or '='") || !parse_op(r, &nt) ||
        !parse_prefix(r, &nt) || !parse_operands(r, &nt))
        return false;
    int rank = r->ins.len > 0 ? ir_value_type(r->g, r->ins.data[0]).rank : 0;
    if (!parse_suffix(r, &nt, rank) || !parse_result_types(r, &nt))
        return false;
    const char **names = arena_alloc(r->a, sizeof *names * (size_t)nt.n_res);
    if ((r->has_hint && !parse_hint(r, nt.n_res, names)) || !build_node(r, &nt))
        return false;
    const Node *n = &r->g->nodes.data[r->g->nodes.len - 1];
    for (int32_t i = 0; i < n->n_out; i++) {
        vec_push(r->a, &r->vals, n->out[i]);
        r->g->values.data[n->out[i].id].name = names[i];
    }
    return true;
}

/* ---- graphs -------------------------------------------------------------- */

/* 'return' [[NAME '='] VALUE (',' [NAME '='] VALUE)*] */
static bool parse_return(Reader *r)
{
    if (r->g->id == 0)
        r->main_return = r->tok.loc;
    if (!expect_word(r, "return"))
        return false;
    bool ok = true;
    if (r->tok.kind != T_RBRACE)
        do {
            const char *name = NULL;
            Value v;
            if (r->g->results.len == MAX_LIST)
                return error_at(r, r->tok.loc, "more than %d results",
                                MAX_LIST);
            if ((r->tok.kind == T_WORD || r->tok.kind == T_STRING) &&
                (!parse_name(r, &name, "a result name") ||
                 !expect(r, T_EQ, "'='")))
                return false;
            if (!parse_operand(r, &v))
                return false;
            ir_add_result(r->m, r->g, v, name);
        } while (accept(r, T_COMMA, &ok) && ok);
    return ok;
}

/* GRAPH := 'graph' NAME ['(' 'args' '=' INT ')'] '{' NODE* RETURN '}' */
static bool parse_graph(Reader *r)
{
    const char *name;
    int32_t n_args = 0;
    bool ok = true;
    if (!advance(r))
        return false;
    SrcLoc at = r->tok.loc;
    if (!parse_name(r, &name, "a graph name"))
        return false;
    if (accept(r, T_LPAREN, &ok) &&
        (!ok || !expect_key(r, "args") ||
         !parse_int32(r, 0, MAX_LIST, &n_args, "the number of args") ||
         !expect(r, T_RPAREN, "')'")))
        return false;
    if (r->m->graphs.len == 0 && n_args)
        return error_at(r, at, "the main graph (the first) takes no args");
    if (map_get(&r->graphs, name) >= 0)
        return error_at(r, at, "graph %s is already defined", name);
    map_put(r->a, &r->graphs, name, r->m->graphs.len);
    r->g = ir_graph_new(r->m, name);
    r->g->n_args = n_args;
    r->vals.len = 0;
    r->arg_seen = arena_alloc(r->a, (size_t)n_args + 1);
    if (!expect(r, T_LBRACE, "'{'"))
        return false;
    while (r->tok.kind == T_VALUE)
        if (!parse_node(r))
            return false;
    if (!parse_return(r))
        return false;
    for (int32_t i = 0; i < n_args; i++)
        if (!r->arg_seen[i])
            return error_at(r, r->tok.loc,
                            "arg %d of graph %s is never defined", (int)i,
                            name);
    return expect(r, T_RBRACE, "'}'");
}

/* ---- after the last graph ------------------------------------------------ */

static bool check_main_results(Reader *r)
{
    const Module *m = r->m;
    const Graph *g = m->graphs.data[0];
    bool train = m->train.opt != OPT_NONE;
    int32_t trainable = 0;
    for (int32_t i = 0; i < m->params.len; i++)
        trainable += !m->params.data[i].frozen;
    if (m->n_grads && (!train || m->n_grads != trainable))
        return error_at(r, r->main_return,
                        "the module has %d gradient%s but %d trainable "
                        "param%s%s",
                        (int)m->n_grads, m->n_grads == 1 ? "" : "s",
                        (int)trainable, trainable == 1 ? "" : "s",
                        train ? "" : " and no train");
    int32_t want = m->n_outputs + (train ? 1 : 0);
    if (g->results.len != want + m->n_grads)
        return error_at(r, r->main_return,
                        "the main graph returns %d value%s, but the module "
                        "has %d output%s%s%s",
                        (int)g->results.len, g->results.len == 1 ? "" : "s",
                        (int)m->n_outputs, m->n_outputs == 1 ? "" : "s",
                        train ? " and a loss" : "",
                        m->n_grads ? " and gradients" : "");
    Type loss = train ? ir_value_type(g, g->results.data[want - 1])
                      : ir_type_scalar(DT_F32);
    Type scalar = ir_type_scalar(DT_F32);
    char buf[96];
    if (!ir_type_eq(&loss, &scalar))
        return error_at(r, r->main_return,
                        "the loss (the %s result) has type %s, not f32[]",
                        m->n_grads ? "first after the outputs" : "last",
                        ir_type_str(&loss, buf, sizeof buf));
    return true;
}

static bool resolve_scan_bodies(Reader *r)
{
    for (int32_t i = 0; i < r->fixups.len; i++) {
        Fixup *f = &r->fixups.data[i];
        int32_t id = map_get(&r->graphs, f->body);
        if (id < 0)
            return error_at(r, f->loc, "no graph named %s", f->body);
        if (id == 0)
            return error_at(r, f->loc, "scan cannot run the main graph");
        if (id == f->g->id)
            return error_at(r, f->loc, "graph %s cannot scan itself", f->body);
        f->g->nodes.data[f->node].attr.graph = id;
    }
    return true;
}

/* Depth-first over "graph runs graph" edges (the fixups, which come in
 * graph order); an edge back into the stack closes a cycle. */
static bool check_scan_cycles(Reader *r)
{
    int32_t n = r->m->graphs.len;
    int32_t *start = arena_alloc(r->a, sizeof *start * ((size_t)n + 1));
    int32_t *next = arena_alloc(r->a, sizeof *next * (size_t)n);
    int32_t *stack = arena_alloc(r->a, sizeof *stack * (size_t)n);
    char *state =
        arena_alloc(r->a, (size_t)n); /* 0 new, 1 on the stack, 2 done */
    for (int32_t i = 0; i < r->fixups.len; i++)
        start[r->fixups.data[i].g->id + 1]++;
    for (int32_t i = 0; i < n; i++)
        start[i + 1] += start[i]; /* graph i's edges: start[i] .. start[i+1] */
    for (int32_t i = 0; i < n; i++)
        next[i] = start[i];
    for (int32_t root = 0; root < n; root++) {
        int32_t sp = 0;
        if (state[root])
            continue;
        stack[sp++] = root;
        state[root] = 1;
        while (sp > 0) {
            int32_t g = stack[sp - 1];
            if (next[g] == start[g + 1]) {
                state[g] = 2;
                sp--;
                continue;
            }
            const Fixup *f = &r->fixups.data[next[g]++];
            int32_t body = f->g->nodes.data[f->node].attr.graph;
            if (state[body] == 1)
                return error_at(r, f->loc,
                                "scan of %s makes graph %s run itself", f->body,
                                f->g->name);
            if (state[body] == 0) {
                state[body] = 1;
                stack[sp++] = body;
            }
        }
    }
    return true;
}

static bool check_scan_types(Reader *r, const Fixup *f)
{
    Node *n = &f->g->nodes.data[f->node];
    Type *in = arena_alloc(r->a, sizeof *in * ((size_t)n->n_in + 1));
    int max_out = n->n_out + 16;
    Type *out = arena_alloc(r->a, sizeof *out * (size_t)max_out);
    for (int32_t i = 0; i < n->n_in; i++)
        in[i] = ir_value_type(f->g, n->in[i]);
    Attrs attr = n->attr;
    char err[256] = "", a[96], b[96];
    int got = ir_infer(r->m, OP_SCAN, in, n->n_in, &attr, out, max_out, err,
                       sizeof err);
    if (got <= 0)
        return error_at(r, f->loc, "%s", err);
    if (got != n->n_out)
        return error_at(r, f->type_locs[0], "scan gives %d results, not %d",
                        got, (int)n->n_out);
    for (int32_t i = 0; i < got; i++) {
        Type t = ir_value_type(f->g, n->out[i]);
        if (!ir_type_eq(&t, &out[i]))
            return error_at(r, f->type_locs[i],
                            "result %d: scan gives %s, not the written %s",
                            (int)i, ir_type_str(&out[i], a, sizeof a),
                            ir_type_str(&t, b, sizeof b));
    }
    n->attr = attr;
    return true;
}

static bool finish_module(Reader *r)
{
    if (!check_main_results(r) || !resolve_scan_bodies(r) ||
        !check_scan_cycles(r))
        return false;
    for (int32_t i = r->fixups.len - 1; i >= 0; i--) /* inner scans first */
        if (!check_scan_types(r, &r->fixups.data[i]))
            return false;
    char err[512];
    if (!ir_verify_module(r->m, err, sizeof err))
        return error_at(r, (SrcLoc){1, 1}, "the module does not verify: %s",
                        err);
    return true;
}

/* MODULE := 'model' NAME DECLS GRAPH+ */
static bool parse_module(Reader *r)
{
    const char *name;
    if (!expect_word(r, "model") || !parse_name(r, &name, "the model's name"))
        return false;
    r->m = ir_module_new(r->a, name);
    if (!parse_decls(r))
        return false;
    if (!tok_is_word(r, "graph"))
        return expected(r, "'graph'");
    while (tok_is_word(r, "graph"))
        if (!parse_graph(r))
            return false;
    if (r->tok.kind != T_EOF)
        return expected(r, "'graph' or the end of the text");
    return finish_module(r);
}

Module *ir_read_module(Arena *a, const char *text, size_t len, Diag *d)
{
    Reader r = {.a = a, .d = d, .src = text ? text : ""};
    if (len > MAX_TEXT) {
        error_at(&r, (SrcLoc){1, 1}, "IR text larger than %zu bytes", MAX_TEXT);
        return NULL;
    }
    r.lx = (Lexer){.src = r.src, .end = text ? len : 0, .line = 1, .col = 1};
    bool ok = advance(&r) && parse_module(&r);
    return ok && !r.failed ? r.m : NULL;
}
