/* lexer.h — the `.nn` lexer: source bytes to tokens, for parser.c.
 *
 * The lexer is pulled one token at a time (lex_next), so it holds no token
 * array and its memory does not grow with the file.  It reports its own
 * errors (stray characters, non-ASCII text outside comments, invalid UTF-8,
 * malformed or too large numbers) through the Diag and hands the parser a
 * TK_ERROR token in place of the bad text, so the parser can skip the
 * statement without printing a second message about the same place.
 *
 * Newlines end statements, except inside ( ) and [ ]: the lexer counts the
 * open brackets (a counter, no stack) and drops newlines while any is open.
 * Blank and comment-only lines give no token; a NEWLINE token is located
 * just past the last token of its line, where a missing token would go. */
#ifndef NNC_LEXER_H
#define NNC_LEXER_H

#include "ir/ir.h"

/* Hostile-input caps: a file of more tokens gets one error and is cut
 * there; a larger file is rejected as a whole. */
#define LEX_MAX_TOKENS 500000
#define LEX_MAX_BYTES  ((size_t)1 << 30)

typedef enum TokKind {
    TK_EOF,
    TK_NEWLINE,
    TK_ERROR, /* bad text, already reported */
    TK_NAME,
    TK_INT,
    TK_FLOAT,
    /* keywords, as the spec lists them */
    TK_MODEL,
    TK_DIM,
    TK_INPUT,
    TK_PARAM,
    TK_FROZEN,
    TK_FN,
    TK_RETURN,
    TK_OUTPUT,
    TK_TRAIN,
    TK_WITH,
    TK_SCAN,
    TK_TRUE,
    TK_FALSE,
    TK_INF,
    /* punctuation */
    TK_LPAREN,
    TK_RPAREN,
    TK_LBRACKET,
    TK_RBRACKET,
    TK_LBRACE,
    TK_RBRACE,
    TK_COMMA,
    TK_COLON,
    TK_SEMI,
    TK_ASSIGN,
    TK_PLUS,
    TK_MINUS,
    TK_STAR,
    TK_SLASH,
    TK_AT,
    TK_LT,
    TK_LE,
    TK_GT,
    TK_GE,
    TK_EQ,
    TK_NE,
    TK_COUNT
} TokKind;

#define TK_FIRST_KEYWORD TK_MODEL
#define TK_LAST_KEYWORD  TK_INF

typedef struct Token {
    TokKind kind;
    SrcLoc loc;       /* first byte; NEWLINE: just past the line's last token */
    const char *text; /* into the source, not NUL-terminated */
    size_t len;
    int64_t ival; /* TK_INT */
    double fval;  /* TK_INT and TK_FLOAT */
    bool bol;     /* the first token of its line */
} Token;

typedef struct Lexer {
    const char *src;
    size_t len, pos;
    int32_t line;
    size_t line_start; /* offset of the current line's first byte */
    int32_t depth;     /* open ( and [; braces reset it to 0 */
    int32_t n_tokens;
    TokKind last;       /* kind of the last token returned */
    SrcLoc last_end;    /* just past the last token returned */
    int32_t last_line;  /* line of the last token returned, 0 at first */
    bool utf8_reported; /* invalid UTF-8 is reported once per file */
    bool stopped;       /* a cap was hit: only EOF from now on */
    Diag *d;
} Lexer;

void lex_init(Lexer *lx, const char *src, size_t len, Diag *d);
Token lex_next(Lexer *lx);

bool lex_is_keyword(TokKind k);
/* The source spelling of a keyword or punctuation token ("model", "<="),
 * or a description of the others ("a name", "end of file"). */
const char *lex_spelling(TokKind k);

#endif
