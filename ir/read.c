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
 * The reader is three files sharing the private header read.h: read_lex.c
 * (tokens, lexer, parser primitives), this file (literals, the declarations
 * before the first graph, the checks after the last graph and the entry
 * point) and read_graph.c (nodes and graphs). */
#include "read.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- literals ------------------------------------------------------------ */

/* NAME: a word or a quoted string, decoded into the arena. */
bool rd_parse_name_tok(Reader *r, const Tok *t, const char **out)
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

bool rd_parse_name(Reader *r, const char **out, const char *what)
{
    if (r->tok.kind != T_WORD && r->tok.kind != T_STRING)
        return rd_expected(r, what);
    return rd_parse_name_tok(r, &r->tok, out) && rd_advance(r);
}

bool rd_parse_int(Reader *r, int64_t lo, int64_t hi, int64_t *out,
                  const char *what)
{
    const Tok *t = &r->tok;
    const char *s = r->src + t->off;
    size_t i = t->kind == T_NUM && t->len > 0 && s[0] == '-' ? 1 : 0;
    if (t->kind != T_NUM || i == t->len)
        return rd_expected(r, what);
    uint64_t v = 0;
    for (; i < t->len; i++) {
        if (!rd_is_digit(s[i]))
            return rd_error_at(r, t->loc, "%s must be an integer", what);
        if (v > (UINT64_MAX - 9) / 10)
            return rd_error_at(r, t->loc, "%s is out of range", what);
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    bool neg = s[0] == '-';
    if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
        return rd_error_at(r, t->loc, "%s is out of range", what);
    int64_t x = neg ? (int64_t)(0 - v) : (int64_t)v;
    if ((x < lo || x > hi) && hi == INT64_MAX)
        return rd_error_at(r, t->loc, "%s must be at least %lld", what,
                           (long long)lo);
    if (x < lo || x > hi)
        return rd_error_at(r, t->loc, "%s must be between %lld and %lld", what,
                           (long long)lo, (long long)hi);
    *out = x;
    return rd_advance(r);
}

bool rd_parse_int32(Reader *r, int32_t lo, int32_t hi, int32_t *out,
                    const char *what)
{
    int64_t v;
    if (!rd_parse_int(r, lo, hi, &v, what))
        return false;
    *out = (int32_t)v;
    return true;
}

/* A float: as printed by %.17g, or inf, -inf, nan, -nan. */
bool rd_parse_double(Reader *r, double *out, const char *what)
{
    const Tok *t = &r->tok;
    char buf[MAX_NUM_LEN + 1];
    if ((t->kind != T_NUM && t->kind != T_WORD) || t->len > MAX_NUM_LEN)
        return t->kind == T_NUM ? rd_error_at(r, t->loc, "number too long")
                                : rd_expected(r, what);
    memcpy(buf, r->src + t->off, t->len);
    buf[t->len] = 0;
    bool neg = buf[0] == '-';
    if (strcmp(buf + neg, "inf") == 0)
        *out = neg ? -INFINITY : INFINITY;
    else if (strcmp(buf + neg, "nan") == 0)
        *out = neg ? -NAN : NAN;
    else if (t->kind == T_WORD)
        return rd_expected(r, what);
    else {
        char *end;
        *out = strtod(buf, &end);
        if (*end || end == buf)
            return rd_error_at(r, t->loc, "malformed number");
    }
    return rd_advance(r);
}

bool rd_parse_bool(Reader *r, bool *out)
{
    if (!rd_tok_is_word(r, "true") && !rd_tok_is_word(r, "false"))
        return rd_expected(r, "true or false");
    *out = rd_tok_is_word(r, "true");
    return rd_advance(r);
}

/* TYPE := ('f32' | 'i32') '[' [INT (',' INT)*] ']' */
bool rd_parse_type(Reader *r, Type *t)
{
    memset(t, 0, sizeof *t);
    if (!rd_tok_is_word(r, "f32") && !rd_tok_is_word(r, "i32"))
        return rd_expected(r, "a type (f32[...] or i32[...])");
    t->dtype = rd_tok_is_word(r, "f32") ? DT_F32 : DT_I32;
    SrcLoc at = r->tok.loc;
    if (!rd_advance(r) || !rd_expect(r, T_LBRACK, "'['"))
        return false;
    int64_t numel = 1;
    while (r->tok.kind != T_RBRACK) {
        if (t->rank > 0 && !rd_expect(r, T_COMMA, "',' or ']'"))
            return false;
        if (t->rank == IR_MAX_RANK)
            return rd_error_at(r, r->tok.loc, "more than %d dimensions",
                               IR_MAX_RANK);
        int64_t d;
        if (!rd_parse_int(r, 1, INT64_MAX, &d, "a dimension"))
            return false;
        if (d > MAX_ELEMENTS / numel)
            return rd_error_at(r, at, "tensor has more than 2^62 elements");
        numel *= d;
        t->dims[t->rank++] = d;
    }
    return rd_advance(r);
}

/* ---- declarations -------------------------------------------------------- */

/* Declares a name in `map`, refusing a second declaration. */
static bool declare(Reader *r, NameMap *map, const char *what, const char *name,
                    SrcLoc at, int32_t index)
{
    if (rd_map_get(map, name) >= 0)
        return rd_error_at(r, at, "%s %s is already declared", what, name);
    rd_map_put(r->a, map, name, index);
    return true;
}

static bool parse_dim(Reader *r)
{
    DimDecl d;
    if (!rd_advance(r))
        return false;
    SrcLoc at = r->tok.loc;
    if (!rd_parse_name(r, &d.name, "a dim name") ||
        !rd_expect(r, T_EQ, "'='") ||
        !rd_parse_int(r, INT64_MIN, INT64_MAX, &d.value, "the dim's value") ||
        !declare(r, &r->dims, "dim", d.name, at, r->m->dims.len))
        return false;
    vec_push(r->a, &r->m->dims, d);
    return true;
}

static bool parse_input(Reader *r)
{
    InputDecl in;
    if (!rd_advance(r))
        return false;
    SrcLoc at = r->tok.loc;
    if (!rd_parse_name(r, &in.name, "an input name") ||
        !rd_expect(r, T_COLON, "':'") || !rd_parse_type(r, &in.type) ||
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
    while (kind < INIT_COUNT && !rd_tok_is_word(r, ir_init_names[kind]))
        kind++;
    if (kind == INIT_COUNT)
        return rd_expected(r, "an initializer");
    init->kind = (InitKind)kind;
    if (!rd_advance(r))
        return false;
    int n = kind == INIT_CONST                            ? 1
            : kind == INIT_UNIFORM || kind == INIT_NORMAL ? 2
                                                          : 0;
    if (n == 0)
        return true;
    if (!rd_expect(r, T_LPAREN, "'('") ||
        !rd_parse_double(r, &init->a, "a number"))
        return false;
    if (n == 2 && (!rd_expect(r, T_COMMA, "','") ||
                   !rd_parse_double(r, &init->b, "a number")))
        return false;
    return rd_expect(r, T_RPAREN, "')'");
}

static bool parse_param(Reader *r)
{
    ParamDecl p = {0};
    if (!rd_advance(r))
        return false;
    SrcLoc at = r->tok.loc;
    if (!rd_parse_name(r, &p.name, "a param name") ||
        !rd_expect(r, T_COLON, "':'") || !rd_parse_type(r, &p.type) ||
        !rd_expect(r, T_EQ, "'='") || !parse_init(r, &p.init) ||
        !declare(r, &r->params, "param", p.name, at, r->m->params.len))
        return false;
    p.frozen = rd_tok_is_word(r, "frozen");
    if (p.frozen && !rd_advance(r))
        return false;
    vec_push(r->a, &r->m->params, p);
    return true;
}

/* train OPT(lr=, momentum=, nesterov=, beta1=, beta2=, eps=, weight_decay=,
 * clip_grad_norm=): every option, in this order. */
static bool parse_train(Reader *r)
{
    TrainSpec *t = &r->m->train;
    if (!rd_advance(r))
        return false;
    for (int k = OPT_SGD; k <= OPT_ADAMW; k++)
        if (rd_tok_is_word(r, ir_opt_names[k]))
            t->opt = (OptKind)k;
    if (t->opt == OPT_NONE)
        return rd_expected(r, "sgd, adam or adamw");
    static const char *const keys[] = {
        "lr",  "momentum",     "beta1",         "beta2",
        "eps", "weight_decay", "clip_grad_norm"};
    double *fields[] = {&t->lr,  &t->momentum,     &t->beta1,         &t->beta2,
                        &t->eps, &t->weight_decay, &t->clip_grad_norm};
    if (!rd_advance(r) || !rd_expect(r, T_LPAREN, "'('"))
        return false;
    for (int i = 0; i < 7; i++) {
        if ((i > 0 && !rd_expect(r, T_COMMA, "','")) ||
            !rd_expect_key(r, keys[i]) ||
            !rd_parse_double(r, fields[i], "a number"))
            return false;
        if (i == 1 &&
            (!rd_expect(r, T_COMMA, "','") || !rd_expect_key(r, "nesterov") ||
             !rd_parse_bool(r, &t->nesterov)))
            return false;
    }
    return rd_expect(r, T_RPAREN, "')'");
}

/* The declarations, in their fixed order: dim, input, param, train, outputs. */
static bool parse_decls(Reader *r)
{
    while (rd_tok_is_word(r, "dim"))
        if (!parse_dim(r))
            return false;
    while (rd_tok_is_word(r, "input"))
        if (!parse_input(r))
            return false;
    while (rd_tok_is_word(r, "param"))
        if (!parse_param(r))
            return false;
    if (rd_tok_is_word(r, "train") && !parse_train(r))
        return false;
    static const char *const order[] = {"dim", "input", "param", "train"};
    for (int i = 0; i < 4; i++)
        if (rd_tok_is_word(r, order[i]))
            return rd_error_at(r, r->tok.loc,
                               "'%s' is out of place: declarations come in the "
                               "order dim, input, param, train, outputs",
                               order[i]);
    if (!rd_expect_word(r, "outputs") ||
        !rd_parse_int32(r, 0, MAX_LIST, &r->m->n_outputs,
                        "the number of outputs"))
        return false;
    return !rd_tok_is_word(r, "grads") ||
           (rd_advance(r) && rd_parse_int32(r, 1, MAX_LIST, &r->m->n_grads,
                                            "the number of gradients"));
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
        return rd_error_at(r, r->main_return,
                           "the module has %d gradient%s but %d trainable "
                           "param%s%s",
                           (int)m->n_grads, m->n_grads == 1 ? "" : "s",
                           (int)trainable, trainable == 1 ? "" : "s",
                           train ? "" : " and no train");
    int32_t want = m->n_outputs + (train ? 1 : 0);
    if (g->results.len != want + m->n_grads)
        return rd_error_at(r, r->main_return,
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
        return rd_error_at(r, r->main_return,
                           "the loss (the %s result) has type %s, not f32[]",
                           m->n_grads ? "first after the outputs" : "last",
                           ir_type_str(&loss, buf, sizeof buf));
    return true;
}

static bool resolve_scan_bodies(Reader *r)
{
    for (int32_t i = 0; i < r->fixups.len; i++) {
        Fixup *f = &r->fixups.data[i];
        int32_t id = rd_map_get(&r->graphs, f->body);
        if (id < 0)
            return rd_error_at(r, f->loc, "no graph named %s", f->body);
        if (id == 0)
            return rd_error_at(r, f->loc, "%s cannot run the main graph",
                               ir_op_info[f->g->nodes.data[f->node].op].name);
        if (id == f->g->id)
            return rd_error_at(r, f->loc, "graph %s cannot run itself",
                               f->body);
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
                return rd_error_at(r, f->loc,
                                   "running %s makes graph %s run itself",
                                   f->body, f->g->name);
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
    int got = ir_infer(r->m, n->op, in, n->n_in, &attr, out, max_out, err,
                       sizeof err);
    const char *op = ir_op_info[n->op].name;
    if (got <= 0)
        return rd_error_at(r, f->loc, "%s", err);
    if (got != n->n_out)
        return rd_error_at(r, f->type_locs[0], "%s gives %d results, not %d",
                           op, got, (int)n->n_out);
    for (int32_t i = 0; i < got; i++) {
        Type t = ir_value_type(f->g, n->out[i]);
        if (!ir_type_eq(&t, &out[i]))
            return rd_error_at(r, f->type_locs[i],
                               "result %d: %s gives %s, not the written %s",
                               (int)i, op, ir_type_str(&out[i], a, sizeof a),
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
        return rd_error_at(r, (SrcLoc){1, 1}, "the module does not verify: %s",
                           err);
    return true;
}

/* MODULE := 'model' NAME DECLS GRAPH+ */
static bool parse_module(Reader *r)
{
    const char *name;
    if (!rd_expect_word(r, "model") ||
        !rd_parse_name(r, &name, "the model's name"))
        return false;
    r->m = ir_module_new(r->a, name);
    if (!parse_decls(r))
        return false;
    if (!rd_tok_is_word(r, "graph"))
        return rd_expected(r, "'graph'");
    while (rd_tok_is_word(r, "graph"))
        if (!rd_parse_graph(r))
            return false;
    if (r->tok.kind != T_EOF)
        return rd_expected(r, "'graph' or the end of the text");
    return finish_module(r);
}

Module *ir_read_module(Arena *a, const char *text, size_t len, Diag *d)
{
    Reader r = {.a = a, .d = d, .src = text ? text : ""};
    if (len > MAX_TEXT) {
        rd_error_at(&r, (SrcLoc){1, 1}, "IR text larger than %zu bytes",
                    MAX_TEXT);
        return NULL;
    }
    r.lx = (Lexer){.src = r.src, .end = text ? len : 0, .line = 1, .col = 1};
    bool ok = rd_advance(&r) && parse_module(&r);
    return ok && !r.failed ? r.m : NULL;
}
