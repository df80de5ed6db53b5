/* test_lexer.c — the `.nn` lexer (frontend/lexer.c): token kinds, values
 * and locations, newline handling inside brackets, every lexical error,
 * and hostile input (NUL bytes, invalid UTF-8, huge inputs, token cap).
 *
 * A token stream is compared as one string, "KIND@LINE:COL" per token,
 * where KIND is the token's spelling ("dim", "(", "<=") or NAME(x),
 * INT(64), FLOAT(0.5), NL, ERR, EOF.  Diagnostics go to a memory stream
 * and are compared as their "LINE:COL: error: MESSAGE" lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "frontend/lexer.h"

#include <stdlib.h>
#include <string.h>

typedef struct Lexed {
    char *tokens; /* the stream as text */
    char *errors; /* "L:C: error: MSG" lines */
    int n_errors;
    Lexer lx;
} Lexed;

static void append(char **s, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    *s = realloc(*s, *len + (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(*s + *len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *len += (size_t)n;
}

static void describe(char **s, size_t *len, const Token *t)
{
    if (*len)
        append(s, len, " ");
    switch (t->kind) {
    case TK_NAME: append(s, len, "NAME(%.*s)", (int)t->len, t->text); break;
    case TK_INT: append(s, len, "INT(%lld)", (long long)t->ival); break;
    case TK_FLOAT: append(s, len, "FLOAT(%g)", t->fval); break;
    case TK_NEWLINE: append(s, len, "NL"); break;
    case TK_ERROR: append(s, len, "ERR"); break;
    case TK_EOF: append(s, len, "EOF"); break;
    default: append(s, len, "%s", lex_spelling(t->kind)); break;
    }
    append(s, len, "@%d:%d", t->loc.line, t->loc.col);
}

/* Keeps the "L:C: error: MSG" part of every error line of a diag dump. */
static char *error_lines(const char *dump, int *count)
{
    char *out = calloc(1, 1);
    size_t len = 0;
    *count = 0;
    for (const char *line = dump; *line;) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        const char *tag = strstr(line, ": error: ");
        if (tag && tag < line + n && strncmp(line, "t.nn:", 5) == 0) {
            append(&out, &len, "%s%.*s", *count ? "\n" : "", (int)(n - 5),
                   line + 5);
            ++*count;
        }
        line += n + (eol != NULL);
    }
    return out;
}

static Lexed lex_all(const char *src, size_t len)
{
    Lexed r = {0};
    char *dump = NULL;
    size_t dump_len = 0, tlen = 0;
    Diag d;
    diag_init(&d, "t.nn", src, len);
    d.out = open_memstream(&dump, &dump_len);
    d.max_errors = 1000;
    lex_init(&r.lx, src, len, &d);
    r.tokens = calloc(1, 1);
    for (int i = 0; i < 2000000; i++) {
        Token t = lex_next(&r.lx);
        if (len < 4096)
            describe(&r.tokens, &tlen, &t);
        if (t.kind == TK_EOF)
            break;
    }
    fclose(d.out);
    r.errors = error_lines(dump, &r.n_errors);
    r.n_errors = d.n_errors;
    free(dump);
    return r;
}

static Lexed lex_str(const char *src) { return lex_all(src, strlen(src)); }

static void lexed_free(Lexed *r)
{
    free(r->tokens);
    free(r->errors);
}

static void check_tokens(const char *src, const char *want)
{
    Lexed r = lex_str(src);
    assert_string_equal(r.tokens, want);
    assert_string_equal(r.errors, "");
    lexed_free(&r);
}

/* Source as a string literal, which may hold NUL bytes. */
#define CHECK_ERROR(lit, tokens, errors)                                       \
    check_error(lit, sizeof(lit) - 1, tokens, errors)

static void check_error(const char *src, size_t len, const char *tokens,
                        const char *errors)
{
    Lexed r = lex_all(src, len);
    if (tokens)
        assert_string_equal(r.tokens, tokens);
    assert_string_equal(r.errors, errors);
    lexed_free(&r);
}

/* ---- tokens -------------------------------------------------------------- */

static void test_statement_tokens_and_locations(void **state)
{
    (void)state;
    check_tokens("dim B = 64\ninput  x : f32[B, 64]\n",
                 "dim@1:1 NAME(B)@1:5 =@1:7 INT(64)@1:9 NL@1:11 "
                 "input@2:1 NAME(x)@2:8 :@2:10 NAME(f32)@2:12 [@2:15 "
                 "NAME(B)@2:16 ,@2:17 INT(64)@2:19 ]@2:21 NL@2:22 EOF@3:1");
}

static void test_punctuation(void **state)
{
    (void)state;
    check_tokens("( ) [ ] { } , : ; = + - * / @ < <= > >= == !=",
                 "(@1:1 )@1:3 [@1:5 ]@1:7 {@1:9 }@1:11 ,@1:13 :@1:15 "
                 ";@1:17 =@1:19 +@1:21 -@1:23 *@1:25 /@1:27 @@1:29 <@1:31 "
                 "<=@1:33 >@1:36 >=@1:38 ==@1:41 !=@1:44 EOF@1:46");
    check_tokens("a<=b==c!=d>e", "NAME(a)@1:1 <=@1:2 NAME(b)@1:4 ==@1:5 "
                                 "NAME(c)@1:7 !=@1:8 NAME(d)@1:10 >@1:11 "
                                 "NAME(e)@1:12 EOF@1:13");
}

static void test_keywords_and_names(void **state)
{
    (void)state;
    check_tokens("model dim input param frozen fn return output train with "
                 "scan true false inf",
                 "model@1:1 dim@1:7 input@1:11 param@1:17 frozen@1:23 "
                 "fn@1:30 return@1:33 output@1:40 train@1:47 with@1:53 "
                 "scan@1:58 true@1:63 false@1:68 inf@1:74 EOF@1:77");
    check_tokens("models _fn Dim inf2 x_1 _", "NAME(models)@1:1 NAME(_fn)@1:8 "
                                              "NAME(Dim)@1:12 NAME(inf2)@1:16 "
                                              "NAME(x_1)@1:21 NAME(_)@1:25 "
                                              "EOF@1:26");
    for (int k = TK_FIRST_KEYWORD; k <= TK_LAST_KEYWORD; k++)
        assert_true(lex_is_keyword((TokKind)k));
    assert_false(lex_is_keyword(TK_NAME));
    assert_false(lex_is_keyword(TK_LPAREN));
}

static void test_numbers(void **state)
{
    (void)state;
    check_tokens("64 0 007 1e-3 0.5 2. .5 1E+2 3e4 1.e2",
                 "INT(64)@1:1 INT(0)@1:4 INT(7)@1:6 FLOAT(0.001)@1:10 "
                 "FLOAT(0.5)@1:15 FLOAT(2)@1:19 FLOAT(0.5)@1:22 "
                 "FLOAT(100)@1:25 FLOAT(30000)@1:30 FLOAT(100)@1:34 "
                 "EOF@1:38");
    Lexer lx;
    Diag d;
    diag_init(&d, "t.nn", NULL, 0);
    const char *src = "9223372036854775807 1e-400";
    lex_init(&lx, src, strlen(src), &d);
    Token t = lex_next(&lx);
    assert_int_equal(t.kind, TK_INT);
    assert_true(t.ival == INT64_MAX);
    t = lex_next(&lx);
    assert_int_equal(t.kind, TK_FLOAT); /* underflow to 0 is fine */
    assert_true(t.fval == 0.0);
    assert_int_equal(d.n_errors, 0);
}

static void test_number_errors(void **state)
{
    (void)state;
    CHECK_ERROR("x = 9223372036854775808\n",
                "NAME(x)@1:1 =@1:3 ERR@1:5 "
                "NL@1:24 EOF@2:1",
                "1:5: error: integer literal does not fit in 64 bits");
    CHECK_ERROR("99999999999999999999999999", NULL,
                "1:1: error: integer literal does not fit in 64 bits");
    CHECK_ERROR("y = 1e400", NULL,
                "1:5: error: floating-point literal is too large");
    CHECK_ERROR("2x 1e 1.2.3 3e+ 0x1F",
                "ERR@1:1 ERR@1:4 ERR@1:7 ERR@1:13 +@1:15 ERR@1:17 EOF@1:21",
                "1:1: error: malformed number '2x'\n"
                "1:4: error: malformed number '1e'\n"
                "1:7: error: malformed number '1.2.3'\n"
                "1:13: error: malformed number '3e'\n"
                "1:17: error: malformed number '0x1F'");
}

static void test_newlines_inside_brackets_are_ignored(void **state)
{
    (void)state;
    check_tokens("f(a,\n  b)\nx = [1,\n2]\ny",
                 "NAME(f)@1:1 (@1:2 NAME(a)@1:3 ,@1:4 NAME(b)@2:3 )@2:4 "
                 "NL@2:5 NAME(x)@3:1 =@3:3 [@3:5 INT(1)@3:6 ,@3:7 "
                 "INT(2)@4:1 ]@4:2 NL@4:3 NAME(y)@5:1 EOF@5:2");
    /* an unmatched ')' does not make the count negative */
    check_tokens(")\n(\n)\nx", ")@1:1 NL@1:2 (@2:1 )@3:1 NL@3:2 "
                               "NAME(x)@4:1 EOF@4:2");
}

static void test_braces_keep_newlines_and_close_brackets(void **state)
{
    (void)state;
    check_tokens("fn f(x) {\n  return x\n}\n",
                 "fn@1:1 NAME(f)@1:4 (@1:5 NAME(x)@1:6 )@1:7 {@1:9 NL@1:10 "
                 "return@2:3 NAME(x)@2:10 NL@2:11 }@3:1 NL@3:2 EOF@4:1");
    /* a '(' left open before a brace does not swallow the body's lines */
    check_tokens("fn f(x {\n}", "fn@1:1 NAME(f)@1:4 (@1:5 NAME(x)@1:6 "
                                "{@1:8 NL@1:9 }@2:1 EOF@2:2");
}

static void test_blank_and_comment_lines_give_one_newline(void **state)
{
    (void)state;
    check_tokens("\n\n# header\nx # trailing\n\n  # more\n\ny\n",
                 "NAME(x)@4:1 NL@4:2 NAME(y)@8:1 NL@8:2 EOF@9:1");
    /* the newline token sits just past the last token of its line */
    check_tokens("dim B   # comment\n", "dim@1:1 NAME(B)@1:5 NL@1:6 EOF@2:1");
    check_tokens("x;\ny; z", "NAME(x)@1:1 ;@1:2 NAME(y)@2:1 ;@2:2 "
                             "NAME(z)@2:4 EOF@2:5");
    check_tokens("x\r\ny\t=\f1", "NAME(x)@1:1 NL@1:2 NAME(y)@2:1 =@2:3 "
                                 "INT(1)@2:5 EOF@2:6");
    check_tokens("", "EOF@1:1");
    check_tokens("# only a comment", "EOF@1:17");
}

static void test_first_token_of_a_line_is_marked(void **state)
{
    (void)state;
    const char *src = "dim B = f(1,\n  2)\n  x\n";
    Lexer lx;
    Diag d;
    diag_init(&d, "t.nn", src, strlen(src));
    lex_init(&lx, src, strlen(src), &d);
    char marks[32] = "";
    for (Token t = lex_next(&lx); t.kind != TK_EOF; t = lex_next(&lx))
        if (t.kind != TK_NEWLINE)
            strcat(marks, t.bol ? "1" : "0");
    /* dim B = f ( 1 ,  2 )  x */
    assert_string_equal(marks, "100000010"
                               "1");
}

static void test_stray_characters(void **state)
{
    (void)state;
    CHECK_ERROR("a $ b % c ! d . e",
                "NAME(a)@1:1 ERR@1:3 NAME(b)@1:5 ERR@1:7 NAME(c)@1:9 "
                "ERR@1:11 NAME(d)@1:13 ERR@1:15 NAME(e)@1:17 EOF@1:18",
                "1:3: error: unexpected character '$'\n"
                "1:7: error: unexpected character '%'\n"
                "1:11: error: unexpected character '!' (did you mean '!='?)\n"
                "1:15: error: unexpected character '.'");
}

static void test_power_operator(void **state)
{
    (void)state;
    CHECK_ERROR("x ** 2", "NAME(x)@1:1 ERR@1:3 INT(2)@1:6 EOF@1:7",
                "1:3: error: there is no '**' operator; use pow(x, p)");
}

static void test_nul_and_control_bytes(void **state)
{
    (void)state;
    CHECK_ERROR("x\0y\x01z\x7f",
                "NAME(x)@1:1 ERR@1:2 NAME(y)@1:3 ERR@1:4 NAME(z)@1:5 "
                "ERR@1:6 EOF@1:7",
                "1:2: error: unexpected NUL byte\n"
                "1:4: error: unexpected control character 0x01\n"
                "1:6: error: unexpected control character 0x7F");
    /* in a comment a NUL byte is just a byte */
    CHECK_ERROR("# a\0b\nx", "NAME(x)@2:1 EOF@2:2", "");
}

/* ---- UTF-8 --------------------------------------------------------------- */

static void test_utf8_in_comments_is_fine(void **state)
{
    (void)state;
    check_tokens("# größe, λ, ✓, 😀\nx", "NAME(x)@2:1 EOF@2:2");
}

static void test_non_ascii_outside_comments(void **state)
{
    (void)state;
    CHECK_ERROR("größe = 1\ny = a × b",
                "ERR@1:1 =@1:9 INT(1)@1:11 NL@1:12 NAME(y)@2:1 =@2:3 "
                "NAME(a)@2:5 ERR@2:7 NAME(b)@2:10 EOF@2:11",
                "1:3: error: non-ASCII character 'ö' (U+00F6) is only "
                "allowed in comments\n"
                "2:7: error: non-ASCII character '×' (U+00D7) is only "
                "allowed in comments");
}

static void test_invalid_utf8_reported_once(void **state)
{
    (void)state;
    CHECK_ERROR("# caf\xC3\nx = \xFF\xFE 1\n# \xC0\x80\n",
                "NAME(x)@2:1 =@2:3 ERR@2:5 ERR@2:6 INT(1)@2:8 NL@2:9 EOF@4:1",
                "1:6: error: invalid UTF-8 byte 0xC3");
    /* overlong, surrogate, beyond U+10FFFF, stray continuation byte */
    const char *bad[] = {"\xC0\xAF",         "\xE0\x80\xAF", "\xED\xA0\x80",
                         "\xF4\x90\x80\x80", "\x80",         "\xF5\x80\x80\x80",
                         "\xE2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char src[32];
        int n = snprintf(src, sizeof src, "x = %s", bad[i]);
        Lexed r = lex_all(src, (size_t)n);
        assert_int_equal(r.n_errors, 1);
        assert_non_null(strstr(r.errors, "1:5: error: invalid UTF-8 byte"));
        lexed_free(&r);
    }
}

static void test_byte_order_mark_is_skipped(void **state)
{
    (void)state;
    check_tokens("\xEF\xBB\xBFx = 1", "NAME(x)@1:4 =@1:6 INT(1)@1:8 EOF@1:9");
}

/* ---- hostile input ------------------------------------------------------- */

static void test_deep_brackets_are_a_counter(void **state)
{
    (void)state;
    size_t n = 100000;
    char *src = malloc(n + 3);
    memset(src, '(', n);
    memcpy(src + n, "\nx", 3);
    Lexed r = lex_all(src, n + 2);
    assert_int_equal(r.n_errors, 0);
    assert_int_equal(r.lx.depth, (int)n);
    assert_int_equal(r.lx.n_tokens, (int)n + 1); /* no NEWLINE token */
    lexed_free(&r);
    free(src);
}

static void test_megabyte_line(void **state)
{
    (void)state;
    size_t n = (size_t)1 << 20;
    char *src = malloc(n + 8);
    memcpy(src, "x = ", 4);
    memset(src + 4, 'a', n);
    memcpy(src + 4 + n, "\n", 2);
    Lexer lx;
    Diag d;
    diag_init(&d, "t.nn", src, n + 5);
    lex_init(&lx, src, n + 5, &d);
    lex_next(&lx);
    lex_next(&lx);
    Token t = lex_next(&lx);
    assert_int_equal(t.kind, TK_NAME);
    assert_true(t.len == n);
    t = lex_next(&lx);
    assert_int_equal(t.kind, TK_NEWLINE);
    assert_int_equal(t.loc.col, (int)n + 5);
    assert_int_equal(lex_next(&lx).kind, TK_EOF);
    assert_int_equal(d.n_errors, 0);
    free(src);
}

static void test_token_cap(void **state)
{
    (void)state;
    size_t n = 2 * (size_t)LEX_MAX_TOKENS + 10;
    char *src = malloc(n);
    for (size_t i = 0; i < n; i += 2)
        memcpy(src + i, "a ", 2);
    Lexed r = lex_all(src, n);
    assert_int_equal(r.n_errors, 1);
    char want[80];
    snprintf(want, sizeof want,
             "1:%d: error: the file has too many tokens (limit %d)",
             2 * LEX_MAX_TOKENS + 1, LEX_MAX_TOKENS);
    assert_string_equal(r.errors, want);
    lexed_free(&r);
    free(src);
}

static void test_file_size_cap(void **state)
{
    (void)state;
    /* The cap is checked before any byte is read, so a short buffer with a
     * huge claimed length stands in for a 1 GiB file. */
    char *dump = NULL;
    size_t dump_len = 0;
    Diag d;
    diag_init(&d, "t.nn", NULL, 0);
    d.out = open_memstream(&dump, &dump_len);
    Lexer lx;
    lex_init(&lx, "x", LEX_MAX_BYTES, &d);
    assert_int_equal(lex_next(&lx).kind, TK_EOF);
    fclose(d.out);
    assert_int_equal(d.n_errors, 1);
    assert_non_null(strstr(dump, "t.nn:1:1: error: the file is too large"));
    free(dump);
}

static void test_random_bytes_do_not_crash(void **state)
{
    (void)state;
    size_t n = 1 << 18;
    char *src = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        src[i] = (char)(x >> 16);
    }
    Lexed r = lex_all(src, n);
    assert_true(r.n_errors > 0);
    assert_true(r.lx.pos == n);
    lexed_free(&r);
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statement_tokens_and_locations),
        cmocka_unit_test(test_punctuation),
        cmocka_unit_test(test_keywords_and_names),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_number_errors),
        cmocka_unit_test(test_newlines_inside_brackets_are_ignored),
        cmocka_unit_test(test_braces_keep_newlines_and_close_brackets),
        cmocka_unit_test(test_blank_and_comment_lines_give_one_newline),
        cmocka_unit_test(test_first_token_of_a_line_is_marked),
        cmocka_unit_test(test_stray_characters),
        cmocka_unit_test(test_power_operator),
        cmocka_unit_test(test_nul_and_control_bytes),
        cmocka_unit_test(test_utf8_in_comments_is_fine),
        cmocka_unit_test(test_non_ascii_outside_comments),
        cmocka_unit_test(test_invalid_utf8_reported_once),
        cmocka_unit_test(test_byte_order_mark_is_skipped),
        cmocka_unit_test(test_deep_brackets_are_a_counter),
        cmocka_unit_test(test_megabyte_line),
        cmocka_unit_test(test_token_cap),
        cmocka_unit_test(test_file_size_cap),
        cmocka_unit_test(test_random_bytes_do_not_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
