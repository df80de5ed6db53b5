/* lexer.c — `.nn` source bytes to tokens, the first step of the front end
 * (lexer.c -> parser.c -> lower.c).
 *
 * The source is UTF-8.  Comments may hold any valid UTF-8; everywhere else
 * the language is ASCII, and a non-ASCII character is an error naming it.
 * Invalid UTF-8 is an error at its first bad byte, reported once per file
 * (as Python rejects such a file) wherever it is, comments included.
 *
 * Every error here is reported at once and the bad text comes back as one
 * TK_ERROR token, which the parser skips silently.  The lexer never reads
 * past `len` (NUL bytes are ordinary stray bytes) and keeps no state that
 * grows with the input: bracket nesting is a counter, and the caps in
 * lexer.h bound the number of tokens and the file size. */
#include "frontend/lexer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const tok_spellings[TK_COUNT] = {
    [TK_EOF] = "end of file",
    [TK_NEWLINE] = "end of line",
    [TK_ERROR] = "invalid text",
    [TK_NAME] = "a name",
    [TK_INT] = "an integer",
    [TK_FLOAT] = "a number",
    [TK_MODEL] = "model",
    [TK_DIM] = "dim",
    [TK_INPUT] = "input",
    [TK_PARAM] = "param",
    [TK_FROZEN] = "frozen",
    [TK_FN] = "fn",
    [TK_RETURN] = "return",
    [TK_OUTPUT] = "output",
    [TK_TRAIN] = "train",
    [TK_WITH] = "with",
    [TK_SCAN] = "scan",
    [TK_TRUE] = "true",
    [TK_FALSE] = "false",
    [TK_INF] = "inf",
    [TK_LPAREN] = "(",
    [TK_RPAREN] = ")",
    [TK_LBRACKET] = "[",
    [TK_RBRACKET] = "]",
    [TK_LBRACE] = "{",
    [TK_RBRACE] = "}",
    [TK_COMMA] = ",",
    [TK_COLON] = ":",
    [TK_SEMI] = ";",
    [TK_ASSIGN] = "=",
    [TK_PLUS] = "+",
    [TK_MINUS] = "-",
    [TK_STAR] = "*",
    [TK_SLASH] = "/",
    [TK_AT] = "@",
    [TK_LT] = "<",
    [TK_LE] = "<=",
    [TK_GT] = ">",
    [TK_GE] = ">=",
    [TK_EQ] = "==",
    [TK_NE] = "!=",
};

const char *lex_spelling(TokKind k)
{
    return k >= 0 && k < TK_COUNT ? tok_spellings[k] : "?";
}

bool lex_is_keyword(TokKind k)
{
    return k >= TK_FIRST_KEYWORD && k <= TK_LAST_KEYWORD;
}

void lex_init(Lexer *lx, const char *src, size_t len, Diag *d)
{
    memset(lx, 0, sizeof *lx);
    lx->src = src ? src : ""; /* no arithmetic on a null pointer */
    lx->len = len;
    lx->line = 1;
    lx->last = TK_NEWLINE; /* so that leading blank lines give no token */
    lx->d = d;
    if (len >= LEX_MAX_BYTES) {
        diag_error(d, (SrcLoc){1, 1}, "the file is too large (limit 1 GiB)");
        lx->stopped = true;
    }
    /* A UTF-8 byte order mark is allowed, as Python and Clang allow it. */
    if (!lx->stopped && len >= 3 && memcmp(src, "\xEF\xBB\xBF", 3) == 0)
        lx->pos = 3;
}

/* ---- characters -------------------------------------------------------- */

static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_name_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_name_char(int c) { return is_name_start(c) || is_digit(c); }

static int peek_at(const Lexer *lx, size_t off)
{
    size_t i = lx->pos + off;
    return i < lx->len ? (unsigned char)lx->src[i] : -1;
}

static SrcLoc loc_at(const Lexer *lx, size_t pos)
{
    return (SrcLoc){lx->line, (int32_t)(pos - lx->line_start + 1)};
}

/* Decodes one UTF-8 sequence at s (n bytes available).  Returns its length
 * and the code point, or 0 if the bytes are not valid UTF-8 (truncated,
 * overlong, a surrogate, or beyond U+10FFFF). */
static int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    int len;
    uint32_t c = s[0], min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2, c &= 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, c &= 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)len > n)
        return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

/* Length of the valid UTF-8 sequence at pos, or 0 (then the invalid byte
 * is reported, the first time only). */
static int utf8_check(Lexer *lx, size_t pos, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)lx->src + pos;
    int n = utf8_decode(s, lx->len - pos, cp);
    if (n == 0 && !lx->utf8_reported) {
        lx->utf8_reported = true;
        diag_error(lx->d, loc_at(lx, pos), "invalid UTF-8 byte 0x%02X", s[0]);
    }
    return n;
}

/* ---- whitespace and comments -------------------------------------------- */

/* Skips a comment up to (not including) its newline, checking its UTF-8. */
static void skip_comment(Lexer *lx)
{
    while (lx->pos < lx->len && lx->src[lx->pos] != '\n') {
        uint32_t cp;
        if ((unsigned char)lx->src[lx->pos] < 0x80) {
            lx->pos++;
            continue;
        }
        int n = utf8_check(lx, lx->pos, &cp);
        lx->pos += n ? (size_t)n : 1;
    }
}

/* Skips blanks and comments; stops at a newline, a token or the end. */
static void skip_blanks(Lexer *lx)
{
    while (lx->pos < lx->len) {
        char c = lx->src[lx->pos];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v')
            lx->pos++;
        else if (c == '#')
            skip_comment(lx);
        else
            return;
    }
}

/* ---- tokens ------------------------------------------------------------ */

static Token make_token(Lexer *lx, TokKind kind, size_t start)
{
    Token t = {0};
    t.kind = kind;
    t.loc = loc_at(lx, start);
    t.text = lx->src + start;
    t.len = lx->pos - start;
    return t;
}

/* Error at byte `at`; the token spans start..pos and becomes TK_ERROR. */
static Token error_token(Lexer *lx, size_t start, size_t at, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));
static Token error_token(Lexer *lx, size_t start, size_t at, const char *fmt,
                         ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_verror(lx->d, loc_at(lx, at), fmt, ap);
    va_end(ap);
    return make_token(lx, TK_ERROR, start);
}

static TokKind keyword_kind(const char *s, size_t n)
{
    for (int k = TK_FIRST_KEYWORD; k <= TK_LAST_KEYWORD; k++)
        if (strlen(tok_spellings[k]) == n &&
            memcmp(tok_spellings[k], s, n) == 0)
            return (TokKind)k;
    return TK_NAME;
}

/* A word: ASCII name characters and, in error, valid non-ASCII characters
 * (so `größe` is one error, not a cascade of pieces). */
static Token lex_word(Lexer *lx)
{
    size_t start = lx->pos, bad = 0;
    uint32_t cp, bad_cp = 0;
    int n = 0, bad_len = 0;
    while (lx->pos < lx->len) {
        unsigned char c = (unsigned char)lx->src[lx->pos];
        if (is_name_char(c)) {
            lx->pos++;
            continue;
        }
        if (c < 0x80)
            break;
        n = utf8_decode((const unsigned char *)lx->src + lx->pos,
                        lx->len - lx->pos, &cp);
        if (n == 0)
            break;
        if (bad_len == 0)
            bad = lx->pos, bad_len = n, bad_cp = cp;
        lx->pos += (size_t)n;
    }
    if (bad_len)
        return error_token(lx, start, bad,
                           "non-ASCII character '%.*s' (U+%04X) is only "
                           "allowed in comments",
                           bad_len, lx->src + bad, (unsigned)bad_cp);
    return make_token(lx, keyword_kind(lx->src + start, lx->pos - start),
                      start);
}

static void skip_digits(Lexer *lx)
{
    while (is_digit(peek_at(lx, 0)))
        lx->pos++;
}

/* Scans the shape digits [. digits] [e [+-] digits] (or . digits ...);
 * returns false if an exponent marker has no digits. */
static bool scan_number_shape(Lexer *lx, bool *is_float)
{
    skip_digits(lx);
    if (peek_at(lx, 0) == '.') {
        *is_float = true;
        lx->pos++;
        skip_digits(lx);
    }
    int c = peek_at(lx, 0);
    if (c != 'e' && c != 'E')
        return true;
    size_t sign = peek_at(lx, 1) == '+' || peek_at(lx, 1) == '-';
    if (!is_digit(peek_at(lx, 1 + sign))) {
        lx->pos++;
        return false;
    }
    *is_float = true;
    lx->pos += 1 + sign;
    skip_digits(lx);
    return true;
}

static bool parse_int64(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int digit = s[i] - '0';
        if (v > (INT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *out = v;
    return true;
}

/* strtod on a NUL-terminated copy (the source is not terminated). */
static bool parse_double(const char *s, size_t n, double *out)
{
    char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    errno = 0;
    *out = strtod(buf, NULL);
    bool ok = !(errno == ERANGE && isinf(*out));
    if (buf != small)
        free(buf);
    return ok;
}

/* Integers (64) and floats (1e-3, 0.5, 2., .5), as C's strtod reads them
 * in decimal; a name character glued to the number makes it malformed. */
static Token lex_number(Lexer *lx)
{
    size_t start = lx->pos;
    bool is_float = false;
    bool ok = scan_number_shape(lx, &is_float);
    int c = peek_at(lx, 0);
    if (!ok || is_name_char(c) || c == '.') {
        while (is_name_char(peek_at(lx, 0)) || peek_at(lx, 0) == '.')
            lx->pos++;
        size_t n = lx->pos - start;
        return error_token(lx, start, start, "malformed number '%.*s%s'",
                           n > 32 ? 32 : (int)n, lx->src + start,
                           n > 32 ? "..." : "");
    }
    Token t = make_token(lx, is_float ? TK_FLOAT : TK_INT, start);
    if (!is_float) {
        if (!parse_int64(t.text, t.len, &t.ival))
            return error_token(lx, start, start,
                               "integer literal does not fit in 64 bits");
        t.fval = (double)t.ival;
    } else if (!parse_double(t.text, t.len, &t.fval)) {
        return error_token(lx, start, start,
                           "floating-point literal is too large");
    }
    return t;
}

/* A byte that starts no token: ASCII punctuation we do not use, control
 * bytes, or non-ASCII text. */
static Token lex_stray(Lexer *lx)
{
    size_t start = lx->pos;
    unsigned char c = (unsigned char)lx->src[start];
    uint32_t cp;
    if (c >= 0x80) {
        if (utf8_check(lx, start, &cp) == 0) {
            lx->pos++; /* reported by utf8_check, at most once per file */
            return make_token(lx, TK_ERROR, start);
        }
        return lex_word(lx);
    }
    lx->pos++;
    if (c == 0)
        return error_token(lx, start, start, "unexpected NUL byte");
    if (c < 32 || c == 127)
        return error_token(lx, start, start,
                           "unexpected control character 0x%02X", c);
    if (c == '!')
        return error_token(lx, start, start,
                           "unexpected character '!' (did you mean '!='?)");
    return error_token(lx, start, start, "unexpected character '%c'", c);
}

/* Two-character operators first, then the one-character ones. */
static TokKind punct_kind(int c, int next, int *len)
{
    *len = 2;
    if (next == '=') {
        switch (c) {
        case '<': return TK_LE;
        case '>': return TK_GE;
        case '=': return TK_EQ;
        case '!': return TK_NE;
        }
    }
    *len = 1;
    switch (c) {
    case '(': return TK_LPAREN;
    case ')': return TK_RPAREN;
    case '[': return TK_LBRACKET;
    case ']': return TK_RBRACKET;
    case '{': return TK_LBRACE;
    case '}': return TK_RBRACE;
    case ',': return TK_COMMA;
    case ':': return TK_COLON;
    case ';': return TK_SEMI;
    case '=': return TK_ASSIGN;
    case '+': return TK_PLUS;
    case '-': return TK_MINUS;
    case '*': return TK_STAR;
    case '/': return TK_SLASH;
    case '@': return TK_AT;
    case '<': return TK_LT;
    case '>': return TK_GT;
    }
    return TK_ERROR;
}

/* Bracket nesting decides whether newlines end statements.  A brace
 * cannot occur inside an expression, so it closes every open bracket:
 * an unclosed '(' in a fn header does not swallow the body's newlines. */
static void track_nesting(Lexer *lx, TokKind k)
{
    if (k == TK_LPAREN || k == TK_LBRACKET)
        lx->depth++;
    else if ((k == TK_RPAREN || k == TK_RBRACKET) && lx->depth > 0)
        lx->depth--;
    else if (k == TK_LBRACE || k == TK_RBRACE)
        lx->depth = 0;
}

/* One token starting at pos (not a blank, comment or newline). */
static Token lex_token(Lexer *lx)
{
    size_t start = lx->pos;
    int c = peek_at(lx, 0), len;
    if (is_name_start(c))
        return lex_word(lx);
    if (is_digit(c) || (c == '.' && is_digit(peek_at(lx, 1))))
        return lex_number(lx);
    if (c == '*' && peek_at(lx, 1) == '*') {
        lx->pos += 2;
        return error_token(lx, start, start,
                           "there is no '**' operator; use pow(x, p)");
    }
    TokKind k = punct_kind(c, peek_at(lx, 1), &len);
    if (k == TK_ERROR)
        return lex_stray(lx);
    lx->pos += (size_t)len;
    track_nesting(lx, k);
    return make_token(lx, k, start);
}

static Token end_token(Lexer *lx)
{
    Token t = make_token(lx, TK_EOF, lx->pos);
    lx->last = TK_EOF;
    return t;
}

/* Consumes a newline byte; returns true if it ends a statement. */
static bool take_newline(Lexer *lx)
{
    lx->pos++;
    lx->line++;
    lx->line_start = lx->pos;
    return lx->depth == 0 && lx->last != TK_NEWLINE && lx->last != TK_SEMI;
}

Token lex_next(Lexer *lx)
{
    for (;;) {
        if (lx->stopped)
            return end_token(lx);
        skip_blanks(lx);
        if (lx->pos >= lx->len)
            return end_token(lx);
        if (lx->src[lx->pos] == '\n') {
            if (!take_newline(lx))
                continue;
            Token t = {.kind = TK_NEWLINE, .loc = lx->last_end};
            lx->last = TK_NEWLINE;
            return t;
        }
        Token t = lex_token(lx);
        if (++lx->n_tokens > LEX_MAX_TOKENS) {
            diag_error(lx->d, t.loc, "the file has too many tokens (limit %d)",
                       LEX_MAX_TOKENS);
            lx->stopped = true;
            return end_token(lx);
        }
        t.bol = t.loc.line != lx->last_line;
        lx->last = t.kind;
        lx->last_end = loc_at(lx, lx->pos);
        lx->last_line = t.loc.line;
        return t;
    }
}
