/* test_print_read.c — the text IR: print -> read -> print round trips,
 * the exact format of a small module, doubles that must survive, malformed
 * texts with the line:col and message each must be reported with, and a
 * deterministic mutation fuzz of the reader (no crash; whatever it accepts
 * verifies).
 *
 * The rich module is built through ir_add, so it is well typed by the shape
 * rules of shape.c: every op, every kind of attribute, every initializer, a
 * train spec with every option set, quoted names, and scans whose bodies
 * are defined after their users, one of them nested. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

static Arena *arena;
static Module *mod;
static char err[256];

static Type ty(DType dt, int rank, ...)
{
    Type t = {.dtype = dt, .rank = rank};
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++)
        t.dims[i] = va_arg(ap, int);
    va_end(ap);
    return t;
}

static int setup(void **state)
{
    (void)state;
    arena = arena_new();
    mod = NULL;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(arena);
    return 0;
}

/* ---- building ------------------------------------------------------------ */

static Value addn(Graph *g, Op op, Attrs a, const char *name, int n_in, ...)
{
    Value in[8];
    va_list ap;
    va_start(ap, n_in);
    for (int i = 0; i < n_in; i++)
        in[i] = va_arg(ap, Value);
    va_end(ap);
    Value v =
        ir_add(mod, g, op, in, n_in, &a, (SrcLoc){0}, NULL, err, sizeof err);
    if (v.id == 0)
        fail_msg("ir_add %s: %s", ir_op_info[op].name, err);
    ir_value(g, v)->name = name;
    return v;
}

static Value leaf(Graph *g, Op op, int index, Type t, const char *name)
{
    return addn(g, op, (Attrs){.index = index, .type = t}, name, 0);
}

static void declare(void)
{
    vec_push(arena, &mod->dims, ((DimDecl){"B", 2}));
    vec_push(arena, &mod->dims, ((DimDecl){"T", 3}));
    vec_push(arena, &mod->dims, ((DimDecl){"C", 4}));
    vec_push(arena, &mod->inputs, ((InputDecl){"x", ty(DT_F32, 3, 2, 3, 4)}));
    vec_push(arena, &mod->inputs, ((InputDecl){"ids", ty(DT_I32, 2, 2, 3)}));
    vec_push(arena, &mod->inputs, ((InputDecl){"h0", ty(DT_F32, 2, 2, 4)}));
    static const struct {
        const char *name;
        InitKind k;
        double a, b;
        bool frozen;
        int rows;
    } p[] = {
        {"W", INIT_XAVIER_UNIFORM, 0, 0, false, 4},
        {"b", INIT_ZEROS, 0, 0, false, 0},
        {"g", INIT_ONES, 0, 0, false, 0},
        {"c", INIT_CONST, 0.5, 0, true, 0},
        {"U", INIT_UNIFORM, -0.25, 0.25, false, 4},
        {"E", INIT_NORMAL, 0, 0.02, false, 5},
        {"K", INIT_KAIMING_NORMAL, 0, 0, false, 4},
        {"O", INIT_ORTHOGONAL, 0, 0, true, 4},
    };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        Type t = p[i].rows ? ty(DT_F32, 2, p[i].rows, 4) : ty(DT_F32, 1, 4);
        vec_push(
            arena, &mod->params,
            ((ParamDecl){p[i].name, t, {p[i].k, p[i].a, p[i].b}, p[i].frozen}));
    }
    mod->train = (TrainSpec){.opt = OPT_ADAMW,
                             .lr = 3e-4,
                             .momentum = 0.5,
                             .beta1 = 0.9,
                             .beta2 = 0.95,
                             .eps = 1e-8,
                             .weight_decay = 0.1,
                             .clip_grad_norm = 1.0,
                             .nesterov = true};
    mod->n_outputs = 2;
}

/* "inner step"(c f32[4], s f32[4]) -> (c + s, c * s): scanned over rows. */
static void build_inner(Graph *in)
{
    in->n_args = 2;
    Value s =
        leaf(in, OP_ARG, 1, ty(DT_F32, 1, 4), "s"); /* args in any order */
    Value c = leaf(in, OP_ARG, 0, ty(DT_F32, 1, 4), NULL);
    ir_add_result(mod, in, addn(in, OP_ADD, (Attrs){0}, NULL, 2, c, s), NULL);
    ir_add_result(mod, in, addn(in, OP_MUL, (Attrs){0}, NULL, 2, c, s), "prod");
}

/* step(h f32[2, 4], xt f32[2, 4], W f32[4, 4]) -> (h', h', rows), with a
 * nested reverse scan over the rows of xt. */
static void build_step(Graph *st, int32_t inner_id)
{
    st->n_args = 3;
    Value h = leaf(st, OP_ARG, 0, ty(DT_F32, 2, 2, 4), "h");
    Value xt = leaf(st, OP_ARG, 1, ty(DT_F32, 2, 2, 4), "xt");
    Value w = leaf(st, OP_ARG, 2, ty(DT_F32, 2, 4, 4), NULL);
    Value z = addn(st, OP_ADD, (Attrs){0}, "z", 2,
                   addn(st, OP_MATMUL, (Attrs){0}, NULL, 2, xt, w), h);
    Value hn = addn(st, OP_TANH, (Attrs){0}, NULL, 1, z);
    Value c0 = addn(st, OP_CONST, (Attrs){.value = 0, .type = ty(DT_F32, 1, 4)},
                    NULL, 0);
    Value ins[2] = {c0, xt}, outs[2];
    Attrs sa = {.graph = inner_id, .n_carry = 1, .n_over = 1, .flag = true};
    assert_int_not_equal(ir_add(mod, st, OP_SCAN, ins, 2, &sa, (SrcLoc){0},
                                outs, err, sizeof err)
                             .id,
                         0);
    ir_value(st, outs[1])->name = "rows";
    ir_add_result(mod, st, hn, NULL);
    ir_add_result(mod, st, hn, NULL);
    ir_add_result(mod, st, outs[1], NULL);
}

/* Elementwise ops, comparisons, where, every unary; returns a f32[2, 3, 4]. */
static Value build_elementwise(Graph *g, Value a, Value b, Value ids)
{
    static const Op unary[] = {OP_NEG,     OP_EXP,  OP_LOG,       OP_SQRT,
                               OP_RSQRT,   OP_ABS,  OP_RELU,      OP_SIGMOID,
                               OP_TANH,    OP_GELU, OP_GELU_TANH, OP_SILU,
                               OP_SOFTPLUS};
    static const Op binary[] = {OP_ADD,     OP_SUB,     OP_MUL, OP_DIV,
                                OP_MAXIMUM, OP_MINIMUM, OP_LT,  OP_LE,
                                OP_GT,      OP_GE,      OP_NE};
    Value v = a;
    for (size_t i = 0; i < sizeof unary / sizeof unary[0]; i++)
        v = addn(g, unary[i], (Attrs){0}, NULL, 1, v);
    for (size_t i = 0; i < sizeof binary / sizeof binary[0]; i++)
        v = addn(g, binary[i], (Attrs){0}, NULL, 2, v, b);
    Value ids3 = addn(g, OP_RESHAPE, (Attrs){.type = ty(DT_I32, 3, 2, 3, 1)},
                      NULL, 1, ids);
    Value same =
        addn(g, OP_EQ, (Attrs){0}, NULL, 2, ids3, ids3); /* i32 comparison */
    Attrs to = {.type = ty(DT_F32, 3, 2, 3, 4)};
    v = addn(g, OP_WHERE, (Attrs){0}, NULL, 3, ids3, v, b); /* i32 condition */
    v = addn(g, OP_WHERE, (Attrs){0}, NULL, 3,
             addn(g, OP_BROADCAST_TO, to, NULL, 1, same), v, a);
    return addn(g, OP_POW, (Attrs){.value = 2}, NULL, 1, v);
}

/* Shape ops, reductions, normalisation, attention; returns a scalar. */
static Value build_shapes(Graph *g, Value x, Value gam, Value bet)
{
    Value s = addn(g, OP_SOFTMAX, (Attrs){.axis = 2}, NULL, 1, x);
    Value ls = addn(g, OP_LOG_SOFTMAX, (Attrs){.axis = 1}, NULL, 1, s);
    Value cat =
        addn(g, OP_CONCAT, (Attrs){.axis = 2}, "cat", 2, s, ls); /* [2, 3, 8] */
    Value sm = addn(g, OP_SUM, (Attrs){.axes = 5}, NULL, 1, cat); /* [3] */
    Value mn =
        addn(g, OP_MEAN, (Attrs){.axes = 4, .keepdims = true}, NULL, 1, cat);
    Value mx = addn(g, OP_MAX, (Attrs){.axes = 7}, NULL, 1, cat);
    Value pm = addn(g, OP_PERMUTE, (Attrs){.perm = {2, 0, 1}}, NULL, 1,
                    cat); /* [8, 2, 3] */
    Value rs =
        addn(g, OP_RESHAPE, (Attrs){.type = ty(DT_F32, 2, 16, 3)}, NULL, 1, pm);
    Value bc = addn(g, OP_BROADCAST_TO, (Attrs){.type = ty(DT_F32, 2, 16, 3)},
                    NULL, 1, sm);
    Value sl = addn(g, OP_SLICE, (Attrs){.start = {0, 1, 2}, .stop = {2, 3, 6}},
                    NULL, 1, cat);
    Value ln =
        addn(g, OP_LAYERNORM, (Attrs){.value = 1e-5}, NULL, 3, sl, gam, bet);
    Value rm = addn(g, OP_RMSNORM, (Attrs){.value = 1e-6}, NULL, 2, sl, gam);
    Value tr = addn(g, OP_TRANSPOSE, (Attrs){0}, NULL, 1, rm);
    Value sc = addn(g, OP_CAUSAL_MASK, (Attrs){0}, NULL, 1,
                    addn(g, OP_MATMUL, (Attrs){0}, NULL, 2, ln, tr));
    Value at = addn(g, OP_ATTENTION, (Attrs){.flag = true, .value = 0.5}, NULL,
                    3, ln, rm, sl);
    Value dr = addn(g, OP_DROPOUT, (Attrs){.value = 0.1}, NULL, 1, at);
    Value l1 = addn(g, OP_MSE, (Attrs){0}, NULL, 2, rs, bc);
    Value l2 = addn(g, OP_BCE_WITH_LOGITS, (Attrs){0}, NULL, 2, dr, sl);
    Value l3 = addn(g, OP_ADD, (Attrs){0}, NULL, 2,
                    addn(g, OP_SUM, (Attrs){0}, NULL, 1, sc),
                    addn(g, OP_SUM, (Attrs){0}, NULL, 1, mn));
    return addn(g, OP_ADD, (Attrs){0}, NULL, 2,
                addn(g, OP_ADD, (Attrs){0}, NULL, 2, l1, l2),
                addn(g, OP_ADD, (Attrs){0}, NULL, 2, l3, mx));
}

static void build_main(Graph *g, int32_t step_id)
{
    Value x = leaf(g, OP_INPUT, 0, ty(DT_F32, 3, 2, 3, 4), "x");
    Value ids = leaf(g, OP_INPUT, 1, ty(DT_I32, 2, 2, 3), "ids");
    Value h0 = leaf(g, OP_INPUT, 2, ty(DT_F32, 2, 2, 4), NULL);
    Value w = leaf(g, OP_PARAM, 0, ty(DT_F32, 2, 4, 4), "W");
    Value b = leaf(g, OP_PARAM, 1, ty(DT_F32, 1, 4), NULL);
    Value gam = leaf(g, OP_PARAM, 2, ty(DT_F32, 1, 4), NULL);
    Value emb = leaf(g, OP_PARAM, 5, ty(DT_F32, 2, 5, 4), NULL);
    Value e = addn(g, OP_GATHER, (Attrs){0}, "h.1", 2, emb, ids);
    Value h = addn(g, OP_ADD, (Attrs){0}, "a b\"c\\d\n", 2, x, e);
    Value lin = addn(g, OP_ADD, (Attrs){0}, NULL, 2,
                     addn(g, OP_MATMUL, (Attrs){0}, NULL, 2, h, w), b);
    Value el = build_elementwise(g, lin, b, ids);
    Value xs = addn(g, OP_PERMUTE, (Attrs){.perm = {1, 0, 2}}, NULL, 1,
                    el); /* [3, 2, 4] */
    Value ins[3] = {h0, xs, w}, outs[3];
    Attrs sa = {.graph = step_id, .n_carry = 1, .n_over = 1};
    assert_int_not_equal(
        ir_add(mod, g, OP_SCAN, ins, 3, &sa, (SrcLoc){0}, outs, err, sizeof err)
            .id,
        0);
    ir_value(g, outs[0])->name = "h_last";
    ir_value(g, outs[2])->name = "rows";
    Value c = addn(g, OP_CONST, (Attrs){.value = -0.0, .type = ty(DT_F32, 0)},
                   NULL, 0);
    Value loss =
        addn(g, OP_ADD, (Attrs){0}, NULL, 2, build_shapes(g, el, gam, b), c);
    Value ce = addn(g, OP_CROSS_ENTROPY, (Attrs){0}, NULL, 2, el, ids);
    ir_add_result(mod, g, el, "logits");
    ir_add_result(mod, g, outs[0], NULL);
    ir_add_result(mod, g, addn(g, OP_ADD, (Attrs){0}, NULL, 2, loss, ce),
                  "loss");
}

/* The bodies are created after main, so main's scan names a graph that the
 * reader meets only later in the text. */
static Module *build_rich(void)
{
    mod = ir_module_new(arena, "every");
    declare();
    Graph *g = ir_graph_new(mod, "main");
    Graph *st = ir_graph_new(mod, "step");
    Graph *in = ir_graph_new(mod, "inner step");
    build_inner(in);
    build_step(st, in->id);
    build_main(g, st->id);
    char verr[512];
    if (!ir_verify_module(mod, verr, sizeof verr))
        fail_msg("rich module does not verify: %s", verr);
    return mod;
}

/* ---- printing and reading ------------------------------------------------ */

static char *print_text(const Module *m, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    assert_non_null(f);
    ir_print_module(f, m);
    fclose(f);
    char *text = arena_strndup(arena, buf, n);
    free(buf);
    if (len)
        *len = n;
    return text;
}

/* Reads text; *diag gets the first line of what the Diag printed. */
static Module *read_text(Arena *a, const char *text, size_t len, char *diag,
                         size_t dlen)
{
    char *buf = NULL;
    size_t n = 0;
    Diag d;
    diag_init(&d, "t.ir", text, len);
    d.out = open_memstream(&buf, &n);
    Module *m = ir_read_module(a, text, len, &d);
    fclose(d.out);
    size_t eol = strcspn(buf, "\n");
    snprintf(diag, dlen, "%.*s", (int)eol, buf);
    free(buf);
    if (m)
        assert_int_equal(d.n_errors, 0);
    else
        assert_true(d.n_errors > 0);
    return m;
}

static void test_round_trip_is_byte_identical(void **state)
{
    (void)state;
    size_t len, len2;
    char *text = print_text(build_rich(), &len), diag[512];
    Module *back = read_text(arena, text, len, diag, sizeof diag);
    if (!back)
        fail_msg("reading the printed module failed: %s\n%s", diag, text);
    char *again = print_text(back, &len2);
    assert_string_equal(again, text);
    assert_int_equal(len, len2);
    /* spot checks that the printer shows what docs/ir.md promises */
    assert_non_null(strstr(text, "param c : f32[4]    = const(0.5) frozen\n"));
    assert_non_null(strstr(text, "param E : f32[5, 4] = normal(0, 0.02)\n"));
    assert_non_null(
        strstr(
            text,
            "train adamw(lr=0.00029999999999999997, momentum=0.5, "
            "nesterov=true, "
            "beta1=0.90000000000000002, beta2=0.94999999999999996, eps=1e-08, "
            "weight_decay=0.10000000000000001, clip_grad_norm=1)\n") ||
        strstr(text,
               "train adamw(lr=0.0003, momentum=0.5, nesterov=true, beta1=0.9, "
               "beta2=0.95, eps=1e-08, weight_decay=0.1, clip_grad_norm=1)\n"));
    assert_non_null(
        strstr(text, " = scan @step(carries=1, over=1, reverse=false) "));
    assert_non_null(strstr(
        text, " = scan @\"inner step\"(carries=1, over=1, reverse=true) "));
    assert_non_null(
        strstr(text, "graph \"inner step\"(args=2) {\n  %0 = arg 1 : f32[4]"));
    assert_non_null(strstr(text, "# h_last, -, rows\n"));
    assert_non_null(strstr(text, "# \"a b\\\"c\\\\d\\n\"\n"));
    assert_non_null(strstr(text, " = const -0 : f32[]\n"));
    assert_non_null(strstr(text, " axes=[0, 2] keepdims=false : f32[3]\n"));
    assert_non_null(strstr(text, " perm=[2, 0, 1] : f32[8, 2, 3]\n"));
    assert_non_null(strstr(text, " [0:2, 1:3, 2:6] : f32[2, 2, 4]\n"));
    assert_non_null(strstr(text, " causal=true scale=0.5 : f32[2, 2, 4]\n"));
    assert_non_null(strstr(text, "  return logits=%"));
}

/* The read module equals the built one node by node, not just in text. */
static void test_read_module_matches_built(void **state)
{
    (void)state;
    Module *m = build_rich();
    size_t len;
    char *text = print_text(m, &len), diag[512];
    Module *r = read_text(arena, text, len, diag, sizeof diag);
    assert_non_null(r);
    assert_int_equal(r->graphs.len, m->graphs.len);
    assert_int_equal(r->n_outputs, 2);
    assert_memory_equal(&r->train, &m->train, sizeof r->train);
    for (int32_t i = 0; i < m->params.len; i++) {
        assert_string_equal(r->params.data[i].name, m->params.data[i].name);
        assert_int_equal(r->params.data[i].init.kind,
                         m->params.data[i].init.kind);
        assert_true(r->params.data[i].init.a == m->params.data[i].init.a);
        assert_true(r->params.data[i].init.b == m->params.data[i].init.b);
        assert_int_equal(r->params.data[i].frozen, m->params.data[i].frozen);
    }
    for (int32_t gi = 0; gi < m->graphs.len; gi++) {
        const Graph *a = m->graphs.data[gi], *b = r->graphs.data[gi];
        assert_string_equal(a->name, b->name);
        assert_int_equal(a->n_args, b->n_args);
        assert_int_equal(a->nodes.len, b->nodes.len);
        for (int32_t k = 0; k < a->nodes.len; k++) {
            const Node *x = &a->nodes.data[k], *y = &b->nodes.data[k];
            assert_int_equal(x->op, y->op);
            assert_true(ir_attrs_eq(x->op, &x->attr, &y->attr));
            assert_int_equal(x->n_out, y->n_out);
            for (int i = 0; i < x->n_out; i++) {
                const ValueInfo *vx = &a->values.data[x->out[i].id],
                                *vy = &b->values.data[y->out[i].id];
                assert_true(ir_type_eq(&vx->type, &vy->type));
                assert_true((vx->name == NULL) == (vy->name == NULL));
                if (vx->name)
                    assert_string_equal(vx->name, vy->name);
            }
        }
        assert_int_equal(a->results.len, b->results.len);
    }
}

/* The exact text of a small module: the format docs/ir.md shows. */
static void test_exact_format(void **state)
{
    (void)state;
    mod = ir_module_new(arena, "tiny");
    vec_push(arena, &mod->dims, ((DimDecl){"N", 2}));
    vec_push(arena, &mod->inputs, ((InputDecl){"x", ty(DT_F32, 1, 2)}));
    vec_push(
        arena, &mod->params,
        ((ParamDecl){"weight", ty(DT_F32, 1, 2), {INIT_ONES, 0, 0}, false}));
    mod->n_outputs = 1;
    Graph *g = ir_graph_new(mod, "main");
    Value x = leaf(g, OP_INPUT, 0, ty(DT_F32, 1, 2), NULL);
    Value w = leaf(g, OP_PARAM, 0, ty(DT_F32, 1, 2), NULL);
    Value y = addn(g, OP_MUL, (Attrs){0}, "y", 2, x, w);
    ir_add_result(mod, g, addn(g, OP_SOFTMAX, (Attrs){.axis = 0}, NULL, 1, y),
                  "p");
    const char *want = "model tiny\n"
                       "\n"
                       "dim N = 2\n"
                       "\n"
                       "input x : f32[2]\n"
                       "\n"
                       "param weight : f32[2] = ones\n"
                       "\n"
                       "outputs 1\n"
                       "\n"
                       "graph main {\n"
                       "  %0 = input @x : f32[2]\n"
                       "  %1 = param @weight : f32[2]\n"
                       "  %2 = mul %0, %1 : f32[2]                      # y\n"
                       "  %3 = softmax %2 axis=0 : f32[2]\n"
                       "  return p=%3\n"
                       "}\n";
    assert_string_equal(print_text(mod, NULL), want);
}

/* Doubles print in the shortest form that reads back to the same bits. */
static void test_doubles_round_trip(void **state)
{
    (void)state;
    static const double vals[] = {
        0.1,  1.0 / 3, 1e-300,        5e-324,   DBL_MAX,   -0.0, 0.0,
        1e21, -2.5e-8, 123456789.125, INFINITY, -INFINITY, NAN};
    mod = ir_module_new(arena, "d");
    mod->n_outputs = (int32_t)(sizeof vals / sizeof vals[0]);
    Graph *g = ir_graph_new(mod, "main");
    for (int i = 0; i < mod->n_outputs; i++)
        ir_add_result(mod, g,
                      addn(g, OP_CONST, (Attrs){.value = vals[i]}, NULL, 0),
                      NULL);
    size_t len;
    char *text = print_text(mod, &len), diag[256];
    assert_non_null(strstr(text, "const 0.1 : f32[]"));
    assert_non_null(strstr(text, "const 5e-324 : f32[]"));
    assert_non_null(strstr(text, "const -inf : f32[]"));
    assert_non_null(strstr(text, "const nan : f32[]"));
    Module *r = read_text(arena, text, len, diag, sizeof diag);
    assert_non_null(r);
    for (int i = 0; i < mod->n_outputs; i++) {
        double got = r->graphs.data[0]->nodes.data[i].attr.value;
        if (isnan(vals[i]))
            assert_true(isnan(got));
        else
            assert_memory_equal(&got, &vals[i], sizeof got);
    }
}

/* Comments: `;` anywhere, `#` on a line of its own; neither changes the
 * module.  Blank lines and indentation do not matter either. */
static void test_comments_and_layout(void **state)
{
    (void)state;
    const char *text =
        "; a dump banner, as the pass manager prints\n"
        "model m   ; trailing\n"
        "# a comment line\n"
        "input x : f32[2]\n"
        "outputs 1\n"
        "graph main {\n"
        "    # on its own line\n"
        "%0 = input @x : f32[2]  ; not a name\n"
        "  %1 = relu %0 : f32[2]   #  r\n"
        "  return out=%1 # trailing comments after `return` are ignored\n"
        "}\n";
    char diag[256];
    Module *m = read_text(arena, text, strlen(text), diag, sizeof diag);
    if (!m)
        fail_msg("%s", diag);
    const Graph *g = m->graphs.data[0];
    assert_null(g->values.data[g->nodes.data[0].out[0].id].name);
    assert_string_equal(g->values.data[g->nodes.data[1].out[0].id].name, "r");
    assert_string_equal(g->result_names.data[0], "out");
}

/* ---- malformed texts ----------------------------------------------------- */

typedef struct BadCase {
    const char *text;
    const char *diag; /* the first line the reader reports */
} BadCase;

#define HEAD   "model m\ninput x : f32[2]\noutputs 1\n"
#define HEAD_I "model m\ninput x : f32[2]\ninput i : i32[2]\noutputs 1\n"

static const BadCase bad_cases[] = {
    {"", "t.ir:1:1: error: expected 'model', found end of input"},
    {"model \"m\n", "t.ir:1:9: error: unterminated string"},
    {"model m\ninput $x : f32[2]\n",
     "t.ir:2:7: error: unexpected character '$'"},
    {"model m\ninput x : f32[2x]\n", "t.ir:2:15: error: malformed number"},
    {"model m\ninput x : f32[0]\n",
     "t.ir:2:15: error: a dimension must be at least 1"},
    {"model m\ninput x : f32[1,1,1,1,1,1,1,1,1]\n",
     "t.ir:2:31: error: more than 8 dimensions"},
    {"model m\ndim D = 99999999999999999999\n",
     "t.ir:2:9: error: the dim's value is out of range"},
    {"model m\ninput x : f32[2]\ninput x : f32[3]\n",
     "t.ir:3:7: error: input x is already declared"},
    {"model m\ndim N = 1\ndim N = 2\n",
     "t.ir:3:5: error: dim N is already declared"},
    {"model m\ninput x : f32[2]\ndim D = 1\n",
     "t.ir:3:1: error: 'dim' is out of place: declarations come in the order "
     "dim, input, param, train, outputs"},
    {"model m\nparam w : f32[2] = normal(1)\n",
     "t.ir:2:28: error: expected ',', found ')'"},
    {"model m\ntrain sgd(lr=0.1)\n",
     "t.ir:2:17: error: expected ',', found ')'"},
    {HEAD "graph main {\n  %0 = frob : f32[2]\n  return\n}\n",
     "t.ir:5:8: error: expected an op, found 'frob'"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  %1 = relu %5 : f32[2]\n  "
          "return\n}\n",
     "t.ir:6:13: error: %5 is not defined"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  %0 = relu %0 : f32[2]\n  "
          "return\n}\n",
     "t.ir:6:3: error: %0 is already defined"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  %2 = relu %0 : f32[2]\n  "
          "return\n}\n",
     "t.ir:6:3: error: expected %1: values are numbered in definition order"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  %1 = relu %0 : f32[3]\n  "
          "return %1\n}\n",
     "t.ir:6:18: error: relu gives f32[2], not the written f32[3]"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  %1 = matmul %0, %0 : "
          "f32[2]\n  return %1\n}\n",
     "t.ir:6:8: error: matmul of f32[2] and f32[2]: both operands need rank 2 "
     "or more (the first has rank 1)"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  %1 = add %0 : f32[2]\n  "
          "return %1\n}\n",
     "t.ir:6:8: error: add takes 2 operands, not 1"},
    {HEAD "graph main {\n  %0, %1 = relu %0 : f32[2]\n  return\n}\n",
     "t.ir:5:12: error: relu has 1 result, not 2"},
    {HEAD "graph main {\n  %0 = input @z : f32[2]\n  return\n}\n",
     "t.ir:5:15: error: no input named z"},
    {HEAD "graph main {\n  %0 = input @x : f32[3]\n  return\n}\n",
     "t.ir:5:19: error: input x is declared f32[2], not f32[3]"},
    {HEAD "graph main {\n  %0 = input @x f32[2]\n  return\n}\n",
     "t.ir:5:17: error: expected ':' and the result types, found 'f32'"},
    {HEAD "graph main {\n  %0 = input @x : f32[2], f32[2]\n  return\n}\n",
     "t.ir:5:25: error: more types than the 1 result"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]  # x, y\n  return %0\n}\n",
     "t.ir:5:30: error: more names after '#' than the 1 result (other comments "
     "go on a line of their own)"},
    {HEAD
     "graph main {\n  %0 = input @x : f32[2]  # the input\n  return %0\n}\n",
     "t.ir:5:33: error: more names after '#' than the 1 result (other comments "
     "go on a line of their own)"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]  # (x)\n  return %0\n}\n",
     "t.ir:5:29: error: expected a result name or '-' after '#', found '(' "
     "(other comments go on a line of their own)"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]  #\n  return %0\n}\n",
     "t.ir:5:28: error: expected a result name or '-' after '#', found the end "
     "of the line (other comments go on a line of their own)"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  %1 = softmax %0 : "
          "f32[2]\n  return %1\n}\n",
     "t.ir:6:19: error: expected 'axis=', found ':'"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  %1 = sum %0 axes=[0] : "
          "f32[]\n  return %1\n}\n",
     "t.ir:6:24: error: expected 'keepdims=', found ':'"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  %1 = sum %0 axes=[0, 0] "
          "keepdims=false : f32[]\n  return %1\n}\n",
     "t.ir:6:24: error: axis 0 appears twice"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  %1 = slice %0 [0:1, 0:1] "
          ": f32[1]\n  return %1\n}\n",
     "t.ir:6:17: error: slice has 2 ranges for an operand of rank 1"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  %1 = permute %0 perm=[] : "
          "f32[2]\n  return %1\n}\n",
     "t.ir:6:24: error: perm has 0 entries for an operand of rank 1"},
    {HEAD "graph main {\n  %0 = arg 0 : f32[2]\n  return\n}\n",
     "t.ir:5:12: error: arg 0 out of range: graph main has 0 args"},
    {HEAD "graph main(args=1) {\n  return\n}\n",
     "t.ir:4:7: error: the main graph (the first) takes no args"},
    {HEAD "graph main {\n  %0 = %1\n}\n",
     "t.ir:5:8: error: expected an op, found '%1'"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  return\n}\n",
     "t.ir:6:3: error: the main graph returns 0 values, but the module has 1 "
     "output"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  return y=%0, z=%0\n}\n",
     "t.ir:6:3: error: the main graph returns 2 values, but the module has 1 "
     "output"},
    {"model m\ninput x : f32[2]\ntrain sgd(lr=0.1, momentum=0, nesterov=false, "
     "beta1=0, beta2=0, eps=0, "
     "weight_decay=0, clip_grad_norm=0)\noutputs 0\ngraph main {\n  %0 = input "
     "@x : f32[2]\n  return %0\n}\n",
     "t.ir:7:3: error: the loss (the last result) has type f32[2], not f32[]"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  return %0\n}\ngraph main "
          "{\n  return\n}\n",
     "t.ir:8:7: error: graph main is already defined"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  return %0\n}\n}\n",
     "t.ir:8:1: error: expected 'graph' or the end of the text, found '}'"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  %1, %2 = scan "
          "@nope(carries=1, over=1, reverse=false) %0, %0 : f32[2], f32[2, 2]\n"
          "  return %1\n}\n",
     "t.ir:6:18: error: no graph named nope"},
    {HEAD
     "graph main {\n  %0 = input @x : f32[2]\n  %1 = scan @main(carries=0, "
     "over=1, reverse=false) %0 : f32[2]\n  return %1\n}\n",
     "t.ir:6:14: error: scan cannot run the main graph"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  return %0\n}\n"
          "graph b(args=1) {\n  %0 = arg 0 : f32[]\n  %1 = scan @b(carries=0, "
          "over=1, reverse=false) %0 : f32[]\n  return %1\n}\n",
     "t.ir:10:14: error: graph b cannot run itself"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  return %0\n}\n"
          "graph a(args=1) {\n  %0 = arg 0 : f32[2]\n  %1 = scan @b(carries=0, "
          "over=1, reverse=false) %0 : f32[2]\n  return %1\n}\n"
          "graph b(args=1) {\n  %0 = arg 0 : f32[2]\n  %1 = scan @a(carries=0, "
          "over=1, reverse=false) %0 : f32[2]\n  return %1\n}\n",
     "t.ir:15:14: error: running a makes graph b run itself"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  %1, %2 = scan "
          "@b(carries=1, over=1, reverse=false) %0, %0 : f32[2], f32[2, 3]\n"
          "  return %1\n}\ngraph b(args=2) {\n  %0 = arg 0 : f32[2]\n  %1 = "
          "arg 1 : f32[]\n  %2 = add %0, %1 : f32[2]\n  return %2, %1\n}\n",
     "t.ir:6:71: error: result 1: scan gives f32[2], not the written f32[2, "
     "3]"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  return %0\n}\ngraph "
          "b(args=2) {\n  %0 = arg 1 : f32[2]\n  return\n}\n",
     "t.ir:11:1: error: arg 0 of graph b is never defined"},
    {HEAD
     "graph main {\n  %0 = input @x : f32[2]\n  return %0\n}\ngraph b(args=2) "
     "{\n  %0 = arg 1 : f32[2]\n  %1 = arg 1 : f32[2]\n  return\n}\n",
     "t.ir:10:12: error: arg 1 is already defined"},
    {HEAD "graph main {\n  %99999999999 = input @x : f32[2]\n  return\n}\n",
     "t.ir:5:3: error: value number too large"},
    {HEAD "graph main {\n  %?3 = input @x : f32[2]\n  return\n}\n",
     "t.ir:5:3: error: expected a value number after '%'"},
    {HEAD "graph main {\n  %0 = const 1e999x : f32[]\n  return\n}\n",
     "t.ir:5:14: error: malformed number"},
    {HEAD "graph main {\n  %0 = const 1e999 : f32[]\n  return %0\n}\n", NULL},
    {HEAD_I "graph main {\n  %0 = input @i : i32[2]\n  %1 = relu %0 : f32[2]\n "
            " return %1\n}\n",
     "t.ir:7:8: error: relu of i32[2]: arithmetic on i32 values is not "
     "allowed"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  %1 = dropout %0 p=2 : "
          "f32[2]\n  return %1\n}\n",
     "t.ir:6:8: error: dropout of f32[2]: probability 2 is outside [0, 1]"},
    {HEAD "graph main {\n  %0 = input @x : f32[2]\n  return %0\n",
     "t.ir:7:1: error: expected '}', found end of input"},
    {"model m\nouputs 1\n",
     "t.ir:2:1: error: expected 'outputs', found 'ouputs'"},
    {"model m\ninput x : f32[2]\nparam x : f32[2] = zeros\noutputs 0\ngraph g "
     "{\n  return\n}\nxyz",
     "t.ir:8:1: error: expected 'graph' or the end of the text, found 'xyz'"},
    {"model m\noutputs 0\ngraph g {\n  return\n}\n\x01",
     "t.ir:6:1: error: unexpected byte 0x01"},
    {"model m\noutputs 0\ngraph \"a\\qb\" {\n  return\n}\n",
     "t.ir:3:9: error: bad escape in string (use \\\" \\\\ \\n \\t or \\xHH)"},
};

static void test_malformed_texts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const BadCase *c = &bad_cases[i];
        char diag[512];
        Arena *a = arena_new();
        Module *m = read_text(a, c->text, strlen(c->text), diag, sizeof diag);
        if (c->diag == NULL) {
            if (!m)
                fail_msg("case %zu should read: %s", i, diag);
        } else if (m || strcmp(diag, c->diag) != 0) {
            fail_msg("case %zu:\n  want %s\n  got  %s", i, c->diag,
                     m ? "(accepted)" : diag);
        }
        arena_free(a);
    }
}

/* ---- robustness ---------------------------------------------------------- */

/* Reads text that may be anything: never crashes, and a module it accepts
 * verifies and prints back to text that reads again. */
static void read_anything(const char *text, size_t len)
{
    Arena *a = arena_new();
    char diag[512], verr[512];
    Diag d;
    diag_init(&d, "fuzz.ir", text, len);
    d.out = fopen("/dev/null", "w");
    assert_non_null(d.out);
    Module *m = ir_read_module(a, text, len, &d);
    fclose(d.out);
    if (m) {
        assert_int_equal(d.n_errors, 0);
        if (!ir_verify_module(m, verr, sizeof verr))
            fail_msg("accepted a module that does not verify: %s", verr);
        size_t n;
        char *again = print_text(m, &n);
        assert_non_null(read_text(a, again, n, diag, sizeof diag));
    } else {
        assert_true(d.n_errors > 0);
    }
    arena_free(a);
}

/* Every prefix of a valid text, and single-byte mutations of it. */
static void test_reader_survives_mutations(void **state)
{
    (void)state;
    size_t len;
    char *text = print_text(build_rich(), &len);
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    for (size_t n = 0; n <= len; n += 1 + n / 64) {
        memcpy(copy, text,
               n); /* not NUL-terminated within n: the reader must not look */
        read_anything(copy, n);
    }
    static const char bytes[] =
        "%@#;:,=()[]{}\"\\-.0123456789eEaxf \n\t\x80\xff\x00";
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(copy, text, len);
        for (int k = 0; k < 1 + iter % 3; k++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            size_t at = (size_t)(seed >> 33) % len;
            copy[at] = bytes[(seed >> 17) % (sizeof bytes - 1)];
        }
        read_anything(copy, len);
    }
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_round_trip_is_byte_identical),
        T(test_read_module_matches_built),
        T(test_exact_format),
        T(test_doubles_round_trip),
        T(test_comments_and_layout),
        T(test_malformed_texts),
        T(test_reader_survives_mutations),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
