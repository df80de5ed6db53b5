/* read_lex.c — the lexer of the text IR and the token-level primitives the
 * reader's parser is built on (read.c, read_graph.c).
 *
 * It turns the bytes of an IR dump into tokens (words, quoted names,
 * numbers, %ids, punctuation and the `#` comment that ends a node's line),
 * never reading past the end of the text, and offers the parser advance,
 * expect, accept and the "expected X, found Y" error.  It also holds the
 * reader's error reporting and the string -> index map used for dims,
 * inputs, params and graphs. */
#include "read.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool rd_error_at(Reader *r, SrcLoc loc, const char *fmt, ...)
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

int32_t rd_map_get(const NameMap *mp, const char *key)
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

void rd_map_put(Arena *a, NameMap *mp, const char *key, int32_t val)
{
    if ((uint32_t)(mp->len + 1) * 2 > mp->cap) {
        NameMap old = *mp;
        mp->cap = old.cap ? old.cap * 2 : 64;
        mp->keys = arena_alloc(a, sizeof *mp->keys * mp->cap);
        mp->vals = arena_alloc(a, sizeof *mp->vals * mp->cap);
        mp->len = 0;
        for (uint32_t i = 0; i < old.cap; i++)
            if (old.keys[i])
                rd_map_put(a, mp, old.keys[i], old.vals[i]);
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
bool rd_is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_word_char(int c)
{
    return is_alpha(c) || rd_is_digit(c) || c == '.';
}
static bool is_hex(int c)
{
    return rd_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
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
            return rd_error_at(r, lexer_loc(lx), "unterminated string");
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
            return rd_error_at(
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
        return rd_error_at(r, at, "malformed number");
    }
    while (rd_is_digit(peek_char(lx, 0)) || peek_char(lx, 0) == '.')
        skip_char(lx);
    int c = peek_char(lx, 0);
    if (c == 'e' || c == 'E') {
        skip_char(lx);
        if (peek_char(lx, 0) == '+' || peek_char(lx, 0) == '-')
            skip_char(lx);
        while (rd_is_digit(peek_char(lx, 0)))
            skip_char(lx);
    }
    if (is_word_char(peek_char(lx, 0)))
        return rd_error_at(r, at, "malformed number");
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
    } else if (rd_is_digit(c) || c == '.' ||
               (c == '-' &&
                (rd_is_digit(c1) || c1 == '.' || c1 == 'i' || c1 == 'n'))) {
        t->kind = T_NUM;
        return lex_number(r, lx);
    } else if (c == '%') {
        t->kind = T_VALUE;
        skip_char(lx);
        if (!rd_is_digit(peek_char(lx, 0)))
            return rd_error_at(r, t->loc, "expected a value number after '%%'");
        while (rd_is_digit(peek_char(lx, 0)))
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
        return rd_error_at(r, t->loc, "unexpected character '%c'", c);
    } else {
        return rd_error_at(r, t->loc, "unexpected byte 0x%02x", (unsigned)c);
    }
    return true;
}

bool rd_lex(Reader *r, Lexer *lx, Tok *t)
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
bool rd_advance(Reader *r)
{
    r->has_hint = false;
    for (;;) {
        if (!rd_lex(r, &r->lx, &r->tok))
            return false;
        if (r->tok.kind != T_COMMENT)
            return true;
        r->hint = r->tok;
        r->has_hint = true;
    }
}

const char *rd_describe(const Reader *r, const Tok *t, char *buf, size_t len)
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

bool rd_expected(Reader *r, const char *what)
{
    char buf[48];
    return rd_error_at(r, r->tok.loc, "expected %s, found %s", what,
                       rd_describe(r, &r->tok, buf, sizeof buf));
}

bool rd_tok_is_word(const Reader *r, const char *w)
{
    size_t n = strlen(w);
    return r->tok.kind == T_WORD && r->tok.len == n &&
           memcmp(r->src + r->tok.off, w, n) == 0;
}

bool rd_expect(Reader *r, TokKind kind, const char *what)
{
    return r->tok.kind == kind ? rd_advance(r) : rd_expected(r, what);
}

bool rd_accept(Reader *r, TokKind kind, bool *ok)
{
    if (r->tok.kind != kind)
        return false;
    *ok = rd_advance(r);
    return true;
}

bool rd_expect_word(Reader *r, const char *w)
{
    char what[40];
    snprintf(what, sizeof what, "'%s'", w);
    return rd_tok_is_word(r, w) ? rd_advance(r) : rd_expected(r, what);
}

/* `key=` as in `axis=1`. */
bool rd_expect_key(Reader *r, const char *key)
{
    char what[40];
    snprintf(what, sizeof what, "'%s='", key);
    if (!rd_tok_is_word(r, key))
        return rd_expected(r, what);
    return rd_advance(r) && rd_expect(r, T_EQ, what);
}
