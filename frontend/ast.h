/* ast.h — the syntax tree of a `.nn` file, produced by parser.c and
 * consumed by lower.c.  Nodes live in the compilation's arena.  The tree is
 * purely syntactic: names are not resolved, shapes not checked, calls not
 * distinguished from built-ins; lower.c does all of that. */
#ifndef NNC_AST_H
#define NNC_AST_H

#include "frontend/frontend.h"

typedef enum BinOp {
    BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_MATMUL,
    BIN_LT, BIN_LE, BIN_GT, BIN_GE, BIN_EQ, BIN_NE,
} BinOp;

typedef enum ExprKind {
    EX_NUM,    /* 64, 1e-3, inf: num (and ival, is_int for integers) */
    EX_BOOL,   /* true, false: bval */
    EX_NAME,   /* name */
    EX_UNARY,  /* -lhs */
    EX_BINARY, /* lhs binop rhs; loc is the operator's */
    EX_CALL,   /* name(args): built-in, fn, scan, initializer, optimizer */
    EX_INDEX,  /* base[items]: slicing, integer indexing, or E[ids] */
    EX_LIST,   /* [e, ...]: permutations, shapes, concat operands */
    EX_TUPLE,  /* (e, e, ...): scan's init and over; at least two elements */
} ExprKind;

typedef struct Expr Expr;

typedef struct Arg {
    const char *key; /* NULL: positional */
    SrcLoc loc;      /* of the key, or of the value when positional */
    Expr *value;
} Arg;

/* One item between [ and ]: `i` (is_slice false, lo = i), `a:b`, `:`, `a:`,
 * `:b` (is_slice true, lo / hi NULL when omitted). */
typedef struct SliceItem {
    bool is_slice;
    Expr *lo, *hi;
    SrcLoc loc;
} SliceItem;

struct Expr {
    ExprKind kind;
    SrcLoc loc;
    double num;        /* EX_NUM: the value (integers too) */
    int64_t ival;      /* EX_NUM with is_int */
    bool is_int;       /* EX_NUM written without '.', 'e' or inf */
    bool bval;         /* EX_BOOL */
    const char *name;  /* EX_NAME; EX_CALL: the callee */
    SrcLoc name_loc;   /* EX_CALL: where the callee's name is */
    BinOp op;          /* EX_BINARY */
    Expr *lhs, *rhs;   /* EX_BINARY; EX_UNARY uses lhs */
    Arg *args;         /* EX_CALL */
    int n_args;
    Expr *base;        /* EX_INDEX */
    SliceItem *items;
    int n_items;
    Expr **elems;      /* EX_LIST, EX_TUPLE */
    int n_elems;
};

/* f32[B, 4*H]: each dimension an integer expression over dims. */
typedef struct TypeExpr {
    DType dtype;
    Expr **dims;
    int rank;
    SrcLoc loc;
} TypeExpr;

typedef enum StmtKind {
    ST_MODEL,  /* model NAME */
    ST_DIM,    /* dim NAME = value */
    ST_INPUT,  /* input NAME : type */
    ST_PARAM,  /* param NAME : type = init [frozen] */
    ST_BIND,   /* NAME, ... = value */
    ST_FN,     /* fn NAME(params) { body } */
    ST_RETURN, /* return exprs (only inside fn) */
    ST_OUTPUT, /* output NAME, ... */
    ST_TRAIN,  /* train value with opt */
} StmtKind;

typedef struct Stmt Stmt;
struct Stmt {
    StmtKind kind;
    SrcLoc loc;             /* of the keyword, or of the first name for ST_BIND */
    const char **names;     /* MODEL, DIM, INPUT, PARAM, FN: names[0]; BIND targets; OUTPUT names */
    SrcLoc *name_locs;
    int n_names;
    Expr *value;            /* DIM, BIND, TRAIN (the loss) */
    TypeExpr type;          /* INPUT, PARAM */
    Expr *init;             /* PARAM: EX_NAME (zeros) or EX_CALL (normal(0.02)) */
    bool frozen;            /* PARAM */
    const char **params;    /* FN */
    SrcLoc *param_locs;
    int n_params;
    Stmt **body;            /* FN */
    int n_body;
    SrcLoc end_loc;         /* FN: the closing brace */
    Expr **exprs;           /* RETURN */
    int n_exprs;
    Expr *opt;              /* TRAIN: EX_CALL such as adam(lr = 1e-3) */
};

typedef struct Program {
    Stmt **stmts;
    int n_stmts;
} Program;

/* parser.c: parses the whole file, reporting every syntax error it can
 * (recovering at the next statement) up to the Diag's cap.  Returns the
 * program even when there were errors (d->n_errors says so). */
Program *fe_parse(Arena *a, const char *src, size_t len, Diag *d);

/* lower.c: Program -> Module (NULL on error). */
Module *fe_lower(Arena *a, const Program *p, const char *model_default,
                 DimOverride *overrides, int n_overrides, Diag *d);

#endif
