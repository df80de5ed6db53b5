/* read.h — private to the text-IR reader (read.c, read_lex.c,
 * read_graph.c): the tokens, the lexer state, the name map and the Reader
 * they share, and the functions one file calls in another.  Nothing outside
 * ir/read*.c includes it; the reader's public entry point, ir_read_module,
 * is declared in ir.h. */
#ifndef NNC_IR_READ_H
#define NNC_IR_READ_H

#include "ir.h"

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

/* A scan (any OPF_GRAPH op) whose body is named before it may be defined: resolved and
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

/* read_lex.c */
__attribute__((format(printf, 3, 4))) bool rd_error_at(Reader *r, SrcLoc loc,
                                                       const char *fmt, ...);
int32_t rd_map_get(const NameMap *mp, const char *key);
void rd_map_put(Arena *a, NameMap *mp, const char *key, int32_t val);
bool rd_is_digit(int c);
bool rd_lex(Reader *r, Lexer *lx, Tok *t);
bool rd_advance(Reader *r);
const char *rd_describe(const Reader *r, const Tok *t, char *buf, size_t len);
bool rd_expected(Reader *r, const char *what);
bool rd_tok_is_word(const Reader *r, const char *w);
bool rd_expect(Reader *r, TokKind kind, const char *what);
bool rd_accept(Reader *r, TokKind kind, bool *ok);
bool rd_expect_word(Reader *r, const char *w);
bool rd_expect_key(Reader *r, const char *key);

/* read.c */
bool rd_parse_name_tok(Reader *r, const Tok *t, const char **out);
bool rd_parse_name(Reader *r, const char **out, const char *what);
bool rd_parse_int(Reader *r, int64_t lo, int64_t hi, int64_t *out,
                  const char *what);
bool rd_parse_int32(Reader *r, int32_t lo, int32_t hi, int32_t *out,
                    const char *what);
bool rd_parse_double(Reader *r, double *out, const char *what);
bool rd_parse_bool(Reader *r, bool *out);
bool rd_parse_type(Reader *r, Type *t);

/* read_graph.c */
bool rd_parse_graph(Reader *r);

#endif
