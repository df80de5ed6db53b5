/* read_graph.c — the graph half of the text-IR reader: one node per line
 * (`%3 = matmul %1, %2 : f32[..]`, with its attributes and the trailing
 * `# names` comment), a graph's arguments and `return`, and whole `graph`
 * blocks.  Nodes go into the graph through the builder, which re-infers each
 * result type; a written type that differs is an error.  read.c reads the
 * declarations before the graphs and checks the module after the last one;
 * the tokens come from read_lex.c. */
#include "read.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
            return rd_error_at(r, r->tok.loc, "value number too large");
    }
    *out = (int32_t)n;
    return true;
}

/* A result %N: N must be the next number, as values are numbered in order. */
static bool parse_result(Reader *r, int32_t want)
{
    int32_t n = 0;
    if (r->tok.kind != T_VALUE)
        return rd_expected(r, "a result (%N)");
    if (!value_number(r, &n))
        return false;
    if (n < want)
        return rd_error_at(r, r->tok.loc, "%%%d is already defined", (int)n);
    if (n > want)
        return rd_error_at(
            r, r->tok.loc,
            "expected %%%d: values are numbered in definition order",
            (int)want);
    return rd_advance(r);
}

static bool parse_operand(Reader *r, Value *v)
{
    int32_t n = 0;
    if (r->tok.kind != T_VALUE)
        return rd_expected(r, "a value (%N)");
    if (!value_number(r, &n))
        return false;
    if (n >= r->vals.len)
        return rd_error_at(r, r->tok.loc, "%%%d is not defined", (int)n);
    *v = r->vals.data[n];
    return rd_advance(r);
}

/* `@name` of an input or param. */
static bool parse_decl_ref(Reader *r, const NameMap *map, const char *what,
                           int32_t *index)
{
    const char *name;
    if (!rd_expect(r, T_AT, "'@'"))
        return false;
    SrcLoc at = r->tok.loc;
    if (!rd_parse_name(r, &name, what))
        return false;
    *index = rd_map_get(map, name);
    return *index >= 0 || rd_error_at(r, at, "no %s named %s", what, name);
}

static bool parse_arg_index(Reader *r, Attrs *a)
{
    SrcLoc at = r->tok.loc;
    if (!rd_parse_int32(r, 0, INT32_MAX, &a->index, "an arg number"))
        return false;
    if (a->index >= r->g->n_args)
        return rd_error_at(r, at, "arg %d out of range: graph %s has %d args",
                           (int)a->index, r->g->name, (int)r->g->n_args);
    if (r->arg_seen[a->index])
        return rd_error_at(r, at, "arg %d is already defined", (int)a->index);
    r->arg_seen[a->index] = true;
    return true;
}

/* scan @BODY(carries=INT, over=INT, reverse=BOOL) */
static bool parse_scan_prefix(Reader *r, NodeText *nt)
{
    if (!rd_expect(r, T_AT, "'@' and the body graph"))
        return false;
    nt->fixup.loc = r->tok.loc;
    return rd_parse_name(r, &nt->fixup.body, "a graph name") &&
           rd_expect(r, T_LPAREN, "'('") && rd_expect_key(r, "carries") &&
           rd_parse_int32(r, 0, MAX_LIST, &nt->attr.n_carry,
                          "the number of carries") &&
           rd_expect(r, T_COMMA, "','") && rd_expect_key(r, "over") &&
           rd_parse_int32(r, 0, MAX_LIST, &nt->attr.n_over,
                          "the number of scanned tensors") &&
           rd_expect(r, T_COMMA, "','") && rd_expect_key(r, "reverse") &&
           rd_parse_bool(r, &nt->attr.flag) && rd_expect(r, T_RPAREN, "')'");
}

/* fused, matmul_epilogue: '@' NAME, the body graph. */
static bool parse_body_prefix(Reader *r, NodeText *nt)
{
    if (!rd_expect(r, T_AT, "'@' and the body graph"))
        return false;
    nt->fixup.loc = r->tok.loc;
    return rd_parse_name(r, &nt->fixup.body, "a graph name");
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
        return rd_parse_double(r, &nt->attr.value, "the constant's value");
    case OP_SCAN: return parse_scan_prefix(r, nt);
    case OP_FUSED:
    case OP_MATMUL_EPILOGUE: return parse_body_prefix(r, nt);
    default: return true;
    }
}

/* '[' [INT (',' INT)*] ']' with each INT in lo..IR_MAX_RANK-1; locs[i]
 * gets where entry i is. */
static bool parse_axis_list(Reader *r, int32_t lo, int32_t *list, SrcLoc *locs,
                            int *n)
{
    *n = 0;
    if (!rd_expect(r, T_LBRACK, "'['"))
        return false;
    while (r->tok.kind != T_RBRACK) {
        if (*n > 0 && !rd_expect(r, T_COMMA, "',' or ']'"))
            return false;
        if (*n == IR_MAX_RANK)
            return rd_error_at(r, r->tok.loc, "more than %d entries",
                               IR_MAX_RANK);
        locs[*n] = r->tok.loc;
        if (!rd_parse_int32(r, lo, IR_MAX_RANK - 1, &list[(*n)++], "an axis"))
            return false;
    }
    return rd_advance(r);
}

static bool parse_axes(Reader *r, Attrs *a)
{
    int32_t list[IR_MAX_RANK];
    SrcLoc locs[IR_MAX_RANK];
    int n;
    if (!rd_expect_key(r, "axes") || !parse_axis_list(r, 0, list, locs, &n))
        return false;
    for (int i = 0; i < n; i++) {
        if (a->axes & (1u << list[i]))
            return rd_error_at(r, locs[i], "axis %d appears twice",
                               (int)list[i]);
        a->axes |= 1u << list[i];
    }
    return rd_expect_key(r, "keepdims") && rd_parse_bool(r, &a->keepdims);
}

static bool parse_perm(Reader *r, Attrs *a, int rank)
{
    int n;
    SrcLoc locs[IR_MAX_RANK];
    if (!rd_expect_key(r, "perm"))
        return false;
    SrcLoc at = r->tok.loc;
    if (!parse_axis_list(r, -IR_MAX_RANK, a->perm, locs, &n))
        return false;
    return n == rank ||
           rd_error_at(r, at, "perm has %d entries for an operand of rank %d",
                       n, rank);
}

/* '[' [INT ':' INT (',' INT ':' INT)*] ']', one range per axis. */
static bool parse_slice(Reader *r, Attrs *a, int rank)
{
    SrcLoc at = r->tok.loc;
    int n = 0;
    if (!rd_expect(r, T_LBRACK, "'[' and the slice ranges"))
        return false;
    while (r->tok.kind != T_RBRACK) {
        if (n > 0 && !rd_expect(r, T_COMMA, "',' or ']'"))
            return false;
        if (n == IR_MAX_RANK)
            return rd_error_at(r, r->tok.loc, "more than %d ranges",
                               IR_MAX_RANK);
        if (!rd_parse_int(r, 0, INT64_MAX, &a->start[n], "a slice start") ||
            !rd_expect(r, T_COLON, "':'") ||
            !rd_parse_int(r, 0, INT64_MAX, &a->stop[n], "a slice stop"))
            return false;
        n++;
    }
    if (n != rank)
        return rd_error_at(
            r, at, "slice has %d ranges for an operand of rank %d", n, rank);
    return rd_advance(r);
}

static bool parse_key_double(Reader *r, const char *key, double *v)
{
    return rd_expect_key(r, key) && rd_parse_double(r, v, "a number");
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
        return !rd_tok_is_word(r, "site") ||
               (rd_expect_key(r, "site") &&
                rd_parse_int32(r, 1, INT32_MAX, &a->index, "a dropout site"));
    case OP_LAYERNORM:
    case OP_RMSNORM: return parse_key_double(r, "eps", &a->value);
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX:
    case OP_CONCAT:
        return rd_expect_key(r, "axis") &&
               rd_parse_int32(r, -IR_MAX_RANK, IR_MAX_RANK - 1, &a->axis,
                              "an axis");
    case OP_SUM:
    case OP_MEAN:
    case OP_MAX: return parse_axes(r, a);
    case OP_PERMUTE: return parse_perm(r, a, rank);
    case OP_SLICE: return parse_slice(r, a, rank);
    case OP_ATTENTION:
    case OP_ATTENTION_GRAD:
        return rd_expect_key(r, "causal") && rd_parse_bool(r, &a->flag) &&
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
                return rd_error_at(r, r->tok.loc, "more than %d operands",
                                   MAX_LIST);
            if (!parse_operand(r, &v))
                return false;
            vec_push(r->a, &r->ins, v);
        } while (rd_accept(r, T_COMMA, &ok) && ok);
    if (!ok)
        return false;
    const OpInfo *info = &ir_op_info[nt->op];
    if (info->arity >= 0 && r->ins.len != info->arity)
        return rd_error_at(r, nt->op_loc, "%s takes %d operand%s, not %d",
                           info->name, info->arity, info->arity == 1 ? "" : "s",
                           (int)r->ins.len);
    if (info->arity < 0 && r->ins.len == 0)
        return rd_error_at(r, nt->op_loc, "%s needs at least one operand",
                           info->name);
    return true;
}

/* ':' TYPE (',' TYPE)*, one per result.  Leaves, CONST, RESHAPE,
 * BROADCAST_TO, SCATTER_ADD and ONE_HOT take their type attribute from it
 * (shape.c returns it). */
static bool parse_result_types(Reader *r, NodeText *nt)
{
    r->types.len = r->type_locs.len = 0;
    if (!rd_expect(r, T_COLON, "':' and the result types"))
        return false;
    for (int32_t i = 0; i < nt->n_res; i++) {
        Type t;
        if (i > 0 && !rd_expect(r, T_COMMA, "',' and another result type"))
            return false;
        SrcLoc at = r->tok.loc;
        if (!rd_parse_type(r, &t))
            return false;
        vec_push(r->a, &r->types, t);
        vec_push(r->a, &r->type_locs, at);
    }
    if (r->tok.kind == T_COMMA)
        return rd_error_at(r, r->tok.loc, "more types than the %d result%s",
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
    if (!rd_lex(r, &lx, &t))
        return false;
    for (int32_t i = 0; i < n_res; i++) {
        if (i > 0 && t.kind != T_COMMA)
            return rd_error_at(r, t.loc,
                               "the names after '#' are %d for %d results",
                               (int)i, (int)n_res);
        if (i > 0 && !rd_lex(r, &lx, &t))
            return false;
        if (t.kind == T_DASH)
            names[i] = NULL;
        else if (t.kind == T_WORD || t.kind == T_STRING)
            rd_parse_name_tok(r, &t, &names[i]);
        else
            return rd_error_at(
                r, t.loc,
                "expected a result name or '-' after '#', found %s "
                "(other comments go on a line of their own)",
                t.kind == T_EOF ? "the end of the line"
                                : rd_describe(r, &t, buf, sizeof buf));
        if (!rd_lex(r, &lx, &t))
            return false;
    }
    if (t.kind != T_EOF)
        return rd_error_at(
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
    return rd_error_at(r, r->type_locs.data[0], "%s %s is declared %s, not %s",
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
    if (ir_op_info[nt->op].flags & OPF_GRAPH) {
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
        return rd_error_at(r, nt->op_loc, "%s", err);
    const Node *n = &g->nodes.data[g->nodes.len - 1];
    if (n->n_out != nt->n_res)
        return rd_error_at(r, nt->op_loc, "%s gives %d results, not %d",
                           ir_op_info[nt->op].name, (int)n->n_out,
                           (int)nt->n_res);
    for (int32_t i = 0; i < n->n_out; i++) {
        const Type *got = &g->values.data[n->out[i].id].type;
        if (!ir_type_eq(got, &r->types.data[i]))
            return rd_error_at(
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
        return rd_expected(r, "an op");
    size_t n = r->tok.len < sizeof name - 1 ? r->tok.len : sizeof name - 1;
    memcpy(name, r->src + r->tok.off, n);
    name[n] = 0;
    nt->op = r->tok.len < sizeof name ? ir_op_by_name(name) : OP_COUNT;
    if (nt->op == OP_COUNT)
        return rd_expected(r, "an op");
    if (!(ir_op_info[nt->op].flags & OPF_MULTI) && nt->n_res != 1)
        return rd_error_at(r, nt->op_loc, "%s has 1 result, not %d",
                           ir_op_info[nt->op].name, (int)nt->n_res);
    return rd_advance(r);
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
            return rd_error_at(r, r->tok.loc, "more than %d results", MAX_LIST);
        if (!parse_result(r, r->vals.len + nt.n_res))
            return false;
        nt.n_res++;
    } while (rd_accept(r, T_COMMA, &ok) && ok);
    if (!ok || !rd_expect(r, T_EQ, "',' or '='") || !parse_op(r, &nt) ||
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
    if (!rd_expect_word(r, "return"))
        return false;
    bool ok = true;
    if (r->tok.kind != T_RBRACE)
        do {
            const char *name = NULL;
            Value v;
            if (r->g->results.len == MAX_LIST)
                return rd_error_at(r, r->tok.loc, "more than %d results",
                                   MAX_LIST);
            if ((r->tok.kind == T_WORD || r->tok.kind == T_STRING) &&
                (!rd_parse_name(r, &name, "a result name") ||
                 !rd_expect(r, T_EQ, "'='")))
                return false;
            if (!parse_operand(r, &v))
                return false;
            ir_add_result(r->m, r->g, v, name);
        } while (rd_accept(r, T_COMMA, &ok) && ok);
    return ok;
}

/* GRAPH := 'graph' NAME ['(' 'args' '=' INT ')'] '{' NODE* RETURN '}' */
bool rd_parse_graph(Reader *r)
{
    const char *name;
    int32_t n_args = 0;
    bool ok = true;
    if (!rd_advance(r))
        return false;
    SrcLoc at = r->tok.loc;
    if (!rd_parse_name(r, &name, "a graph name"))
        return false;
    if (rd_accept(r, T_LPAREN, &ok) &&
        (!ok || !rd_expect_key(r, "args") ||
         !rd_parse_int32(r, 0, MAX_LIST, &n_args, "the number of args") ||
         !rd_expect(r, T_RPAREN, "')'")))
        return false;
    if (r->m->graphs.len == 0 && n_args)
        return rd_error_at(r, at, "the main graph (the first) takes no args");
    if (rd_map_get(&r->graphs, name) >= 0)
        return rd_error_at(r, at, "graph %s is already defined", name);
    rd_map_put(r->a, &r->graphs, name, r->m->graphs.len);
    r->g = ir_graph_new(r->m, name);
    r->g->n_args = n_args;
    r->vals.len = 0;
    r->arg_seen = arena_alloc(r->a, (size_t)n_args + 1);
    if (!rd_expect(r, T_LBRACE, "'{'"))
        return false;
    while (r->tok.kind == T_VALUE)
        if (!parse_node(r))
            return false;
    if (!parse_return(r))
        return false;
    for (int32_t i = 0; i < n_args; i++)
        if (!r->arg_seen[i])
            return rd_error_at(r, r->tok.loc,
                               "arg %d of graph %s is never defined", (int)i,
                               name);
    return rd_expect(r, T_RBRACE, "'}'");
}
