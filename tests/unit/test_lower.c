/* test_lower.c — the lowering (frontend/lower*.c) through fe_compile: the
 * IR that small programs become (ops, types, attributes, declarations,
 * results, the training spec), fn inlining and its scoping, scan bodies
 * with their captured values, -D overrides of plain and derived dims, the
 * messages of semantic and shape errors, and the four conformance models
 * in several sizes, each of which must lower and pass the verifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"

/* ---- helpers ----------------------------------------------------------- */

typedef struct Result {
    Arena *a;
    Module *m;
    char *errors; /* the "LINE:COL: error: MESSAGE" lines, one per error */
    int n_errors;
} Result;

static Result last;

/* Keeps only the "L:C: error: ..." part of each "t.nn:L:C: error: ..."
 * line (the source lines and carets that follow are dropped). */
static char *error_lines(const char *out)
{
    char *r = calloc(1, strlen(out) + 1), *o = r;
    char *copy = strdup(out);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "t.nn:", 5) != 0 || !strstr(line, ": error: "))
            continue;
        o += sprintf(o, "%s\n", line + 5);
    }
    free(copy);
    return r;
}

static Module *compile_ov(const char *src, DimOverride *ov, int n_ov)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    Diag d;
    diag_init(&d, "t.nn", src, strlen(src));
    d.out = f;
    last.a = arena_new();
    last.m = fe_compile(last.a, src, strlen(src), "t", ov, n_ov, &d);
    fclose(f);
    last.errors = error_lines(buf);
    last.n_errors = d.n_errors;
    free(buf);
    return last.m;
}

static Module *compile(const char *src) { return compile_ov(src, NULL, 0); }

/* Compiles src, which must have no error, and verifies the module. */
static Module *compile_ok(const char *src)
{
    Module *m = compile(src);
    if (!m)
        fail_msg("unexpected errors:\n%s", last.errors);
    char err[512];
    if (!ir_verify_module(m, err, sizeof err))
        fail_msg("verifier: %s", err);
    return m;
}

static void expect_errors(const char *src, const char *want)
{
    assert_null(compile(src));
    assert_string_equal(last.errors, want);
}

static int teardown(void **state)
{
    (void)state;
    arena_free(last.a);
    free(last.errors);
    last = (Result){0};
    return 0;
}

static Graph *main_graph(Module *m) { return m->graphs.data[0]; }

static const Node *def(Graph *g, Value v) { return ir_def(g, v); }

static const char *type_text(Type t)
{
    static char buf[4][128];
    static int k;
    k = (k + 1) % 4;
    return ir_type_str(&t, buf[k], sizeof buf[k]);
}

static const char *vtype(Graph *g, Value v)
{
    return type_text(ir_value_type(g, v));
}

/* The result named `name` of the main graph. */
static Value result(Module *m, const char *name)
{
    Graph *g = main_graph(m);
    for (int i = 0; i < g->results.len; i++)
        if (g->result_names.data[i] &&
            strcmp(g->result_names.data[i], name) == 0)
            return g->results.data[i];
    fail_msg("no result named %s", name);
    return IR_NONE;
}

static int count_op(const Graph *g, Op op)
{
    int n = 0;
    for (int i = 0; i < g->nodes.len; i++)
        n += g->nodes.data[i].op == op;
    return n;
}

static const Node *nth_op(const Graph *g, Op op, int nth)
{
    for (int i = 0; i < g->nodes.len; i++)
        if (g->nodes.data[i].op == op && nth-- == 0)
            return &g->nodes.data[i];
    fail_msg("no %s node number %d", ir_op_info[op].name, nth);
    return NULL;
}

/* ---- declarations, dims, overrides --------------------------------------- */

static const char *mlp_src =
    "model mlp\n"
    "dim B = 4\n"
    "input x : f32[B, 6]\n"
    "input y : i32[B]\n"
    "param W1 : f32[6, 5] = kaiming_normal\n"
    "param b1 : f32[5] = zeros\n"
    "h = relu(x @ W1 + b1)\n"
    "loss = cross_entropy(h, y)\n"
    "output h\n"
    "train loss with adam(lr = 2e-3, clip_grad_norm = 5)\n";

static void test_mlp_structure(void **state)
{
    (void)state;
    Module *m = compile_ok(mlp_src);
    Graph *g = main_graph(m);
    static const Op ops[] = {OP_INPUT,  OP_INPUT, OP_PARAM, OP_PARAM,
                             OP_MATMUL, OP_ADD,   OP_RELU,  OP_CROSS_ENTROPY};
    assert_string_equal(m->name, "mlp");
    assert_int_equal(g->nodes.len, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(g->nodes.data[i].op, ops[i]);
    assert_int_equal(m->inputs.len, 2);
    assert_string_equal(type_text(m->inputs.data[1].type), "i32[4]");
    assert_int_equal(g->nodes.data[1].attr.index, 1);
    assert_string_equal(type_text(g->nodes.data[1].attr.type), "i32[4]");
    assert_int_equal(m->params.len, 2);
    assert_int_equal(m->params.data[0].init.kind, INIT_KAIMING_NORMAL);
    assert_int_equal(m->params.data[1].init.kind, INIT_ZEROS);
    assert_int_equal(m->n_outputs, 1);
    assert_int_equal(g->results.len, 2);
    assert_string_equal(g->result_names.data[0], "h");
    assert_string_equal(g->result_names.data[1], "loss");
    assert_int_equal(def(g, g->results.data[0])->op, OP_RELU);
    assert_int_equal(def(g, g->results.data[1])->op, OP_CROSS_ENTROPY);
    assert_int_equal(m->train.opt, OPT_ADAM);
    assert_true(m->train.lr == 2e-3 && m->train.clip_grad_norm == 5);
    assert_true(m->train.beta1 == 0.9 && m->train.beta2 == 0.999);
    assert_true(m->train.eps == 1e-8 && m->train.weight_decay == 0);
}

static const char *heads_src = "dim C = 128\n"
                               "dim NH = 4\n"
                               "dim HD = C / NH\n"
                               "input x : f32[2, C]\n"
                               "y = reshape(x, [2, NH, HD])\n"
                               "output y\n";

static void test_dim_overrides(void **state)
{
    (void)state;
    DimOverride ov[2] = {{"C", 384, false}, {"NH", 6, false}};
    Module *m = compile_ov(heads_src, ov, 2);
    assert_non_null(m);
    assert_int_equal(m->dims.len, 3);
    assert_string_equal(m->dims.data[2].name, "HD");
    assert_int_equal(m->dims.data[2].value, 64);
    assert_true(ov[0].used && ov[1].used);
    assert_string_equal(vtype(main_graph(m), result(m, "y")), "f32[2, 6, 64]");
}

static void test_derived_dim_override(void **state)
{
    (void)state;
    DimOverride ov[2] = {{"HD", 8, false}, {"NH", 16, false}};
    Module *m = compile_ov(heads_src, ov, 2);
    assert_non_null(m);
    assert_int_equal(m->dims.data[1].value, 16);
    assert_int_equal(m->dims.data[2].value, 8);
}

static void test_override_errors(void **state)
{
    (void)state;
    DimOverride ov[3] = {{"NH", 3, false}, {"X", 3, false}, {"C", 0, false}};
    assert_null(compile_ov(heads_src, ov, 2));
    assert_string_equal(last.errors,
                        "1:1: error: -D X=3: the model has no dim named 'X'\n"
                        "3:12: error: C / NH: 128 is not divisible by 3\n");
    teardown(NULL);
    assert_null(compile_ov(heads_src, ov + 2, 1));
    assert_string_equal(
        last.errors, "1:1: error: -D C=0: a dim must be a positive integer\n");
}

static void test_dim_and_type_errors(void **state)
{
    (void)state;
    expect_errors(
        "dim A = 4\n"
        "dim B = A - 4\n"
        "dim C = 2.5\n"
        "dim D = 4611686018427387904 * 4\n"
        "input x : f32[A, 0]\n"
        "input z : f32[1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
        "input w : f32[1000000000000, 1000000000]\n"
        "input v : f32[A / 3]\n"
        "output x\n",
        "2:11: error: dim 'B' must be positive, not 0\n"
        "3:9: error: dim 'C' must be an integer, not 2.5\n"
        "4:29: error: integer overflow in 4611686018427387904 * 4\n"
        "5:18: error: dimensions must be positive, not 0\n"
        "6:11: error: a tensor has at most 8 dimensions, not 9\n"
        "7:11: error: f32[1000000000000, 1000000000] is too large: its "
        "size in bytes does not fit in 63 bits\n"
        "8:17: error: A / 3: 4 is not divisible by 3\n");
}

static void test_inits_and_sgd(void **state)
{
    (void)state;
    Module *m = compile_ok(
        "input x : f32[2, 4]\n"
        "param A : f32[4, 4] = const(0.5)\n"
        "param B : f32[4, 4] = uniform(-0.1, 0.1)\n"
        "param C : f32[4, 4] = normal(0.02)\n"
        "param D : f32[4, 4] = normal(1, std = 0.5) frozen\n"
        "param E : f32[2, 4, 4] = orthogonal\n"
        "loss = mean(x @ A @ B @ C @ D) + sum(E)\n"
        "train loss with sgd(lr = 0.1, momentum = 0.9, nesterov = true, "
        "weight_decay = 1e-4, clip_grad_norm = 2)\n");
    const ParamDecl *p = m->params.data;
    assert_int_equal(p[0].init.kind, INIT_CONST);
    assert_true(p[0].init.a == 0.5);
    assert_int_equal(p[1].init.kind, INIT_UNIFORM);
    assert_true(p[1].init.a == -0.1 && p[1].init.b == 0.1);
    assert_int_equal(p[2].init.kind, INIT_NORMAL);
    assert_true(p[2].init.a == 0 && p[2].init.b == 0.02);
    assert_true(p[3].init.a == 1 && p[3].init.b == 0.5 && p[3].frozen);
    assert_false(p[2].frozen);
    assert_int_equal(p[4].init.kind, INIT_ORTHOGONAL);
    const TrainSpec *t = &m->train;
    assert_int_equal(t->opt, OPT_SGD);
    assert_true(t->lr == 0.1 && t->momentum == 0.9 && t->nesterov);
    assert_true(t->weight_decay == 1e-4 && t->clip_grad_norm == 2);
    assert_int_equal(m->n_outputs, 0);
    assert_int_equal(main_graph(m)->results.len, 1);
    assert_string_equal(main_graph(m)->result_names.data[0], "loss");
}

static void test_adamw_defaults(void **state)
{
    (void)state;
    Module *m = compile_ok("input x : f32[3]\n"
                           "param w : f32[3] = ones\n"
                           "l = sum(x * w)\n"
                           "train l with adamw()\n");
    assert_int_equal(m->train.opt, OPT_ADAMW);
    assert_true(m->train.lr == 1e-3 && m->train.weight_decay == 0.01);
    assert_true(m->train.beta1 == 0.9 && m->train.beta2 == 0.999 &&
                m->train.eps == 1e-8);
    assert_true(m->train.clip_grad_norm == 0);
}

/* ---- expressions ----------------------------------------------------------- */

static void test_constants_and_negation(void **state)
{
    (void)state;
    Module *m = compile_ok("dim D = 3\n"
                           "input x : f32[2, D]\n"
                           "a = x * 2.5\n"
                           "b = -x\n"
                           "c = x + -4\n"
                           "d = x / D\n"
                           "output a, b, c, d\n");
    Graph *g = main_graph(m);
    assert_int_equal(count_op(g, OP_CONST), 3);
    assert_int_equal(count_op(g, OP_NEG), 1);
    const Node *k[3] = {nth_op(g, OP_CONST, 0), nth_op(g, OP_CONST, 1),
                        nth_op(g, OP_CONST, 2)};
    assert_true(k[0]->attr.value == 2.5 && k[1]->attr.value == -4 &&
                k[2]->attr.value == 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(type_text(k[i]->attr.type), "f32[]");
    assert_int_equal(def(g, result(m, "d"))->op, OP_DIV);
}

static void test_i32_comparison_constant(void **state)
{
    (void)state;
    Module *m = compile_ok("input ids : i32[3, 4]\n"
                           "input x : f32[3, 4]\n"
                           "m = where(ids == 0, x, 0)\n"
                           "output m\n");
    Graph *g = main_graph(m);
    const Node *eq = nth_op(g, OP_EQ, 0);
    const Node *k = def(g, eq->in[1]);
    assert_int_equal(k->op, OP_CONST);
    assert_string_equal(type_text(k->attr.type), "i32[]");
    assert_string_equal(vtype(g, result(m, "m")), "f32[3, 4]");
}

static void test_split_and_slices(void **state)
{
    (void)state;
    Module *m = compile_ok("input x : f32[2, 12]\n"
                           "a, b, c = split(x, 3, axis = -1)\n"
                           "d = x[1, 2:4]\n"
                           "e = x[-1]\n"
                           "f = x[:, -3:]\n"
                           "output a, b, c, d, e, f\n");
    Graph *g = main_graph(m);
    for (int i = 0; i < 3; i++) {
        const Node *s = nth_op(g, OP_SLICE, i);
        assert_int_equal(s->attr.start[0], 0);
        assert_int_equal(s->attr.stop[0], 2);
        assert_int_equal(s->attr.start[1], 4 * i);
        assert_int_equal(s->attr.stop[1], 4 * i + 4);
    }
    const Node *d = def(g, result(m, "d"));
    assert_int_equal(d->op, OP_RESHAPE);
    assert_string_equal(vtype(g, result(m, "d")), "f32[2]");
    const Node *ds = def(g, d->in[0]);
    assert_true(ds->attr.start[0] == 1 && ds->attr.stop[0] == 2);
    assert_true(ds->attr.start[1] == 2 && ds->attr.stop[1] == 4);
    assert_string_equal(vtype(g, result(m, "e")), "f32[12]");
    const Node *f = def(g, result(m, "f"));
    assert_int_equal(f->op, OP_SLICE);
    assert_true(f->attr.start[1] == 9 && f->attr.stop[1] == 12);
    assert_string_equal(vtype(g, result(m, "f")), "f32[2, 3]");
}

static void test_gather(void **state)
{
    (void)state;
    Module *m = compile_ok("input ids : i32[3, 4]\n"
                           "param E : f32[10, 8] = normal(0.02)\n"
                           "a = E[ids]\n"
                           "b = embedding(E, ids)\n"
                           "output a, b\n");
    Graph *g = main_graph(m);
    assert_int_equal(count_op(g, OP_GATHER), 2);
    assert_string_equal(vtype(g, result(m, "a")), "f32[3, 4, 8]");
    assert_string_equal(vtype(g, result(m, "b")), "f32[3, 4, 8]");
}

static void test_reductions_and_options(void **state)
{
    (void)state;
    Module *m = compile_ok("input x : f32[2, 3, 4]\n"
                           "a = sum(x, axis = [0, -1], keepdims = true)\n"
                           "b = mean(x)\n"
                           "c = max(x, 1)\n"
                           "d = softmax(x)\n"
                           "e = log_softmax(x, axis = 0)\n"
                           "f = attention(x, x, x, causal = true)\n"
                           "g = layernorm(x, ones(4), zeros(4))\n"
                           "h = pow(x, 1 / 2) + dropout(x, 0.25)\n"
                           "i = permute(x, [2, 0, -2])\n"
                           "output a, b, c, d, e, f, g, h, i\n");
    Graph *g = main_graph(m);
    const Node *a = def(g, result(m, "a"));
    assert_int_equal(a->attr.axes, 5);
    assert_true(a->attr.keepdims);
    assert_string_equal(vtype(g, result(m, "a")), "f32[1, 3, 1]");
    assert_int_equal(def(g, result(m, "b"))->attr.axes, 7);
    assert_string_equal(vtype(g, result(m, "b")), "f32[]");
    assert_int_equal(def(g, result(m, "c"))->attr.axes, 2);
    assert_int_equal(def(g, result(m, "d"))->attr.axis, 2);
    assert_int_equal(def(g, result(m, "e"))->attr.axis, 0);
    const Node *f = def(g, result(m, "f"));
    assert_true(f->attr.flag && f->attr.value == 0.5);
    assert_true(def(g, result(m, "g"))->attr.value == 1e-5);
    assert_true(nth_op(g, OP_POW, 0)->attr.value == 0.5);
    assert_true(nth_op(g, OP_DROPOUT, 0)->attr.value == 0.25);
    const Node *i = def(g, result(m, "i"));
    assert_true(i->attr.perm[0] == 2 && i->attr.perm[1] == 0 &&
                i->attr.perm[2] == 1);
    assert_string_equal(vtype(g, result(m, "i")), "f32[4, 2, 3]");
}

static void test_constants_concat_broadcast(void **state)
{
    (void)state;
    Module *m = compile_ok("dim H = 3\n"
                           "input x : f32[2, H]\n"
                           "a = concat([x, full(7, 2, 1)], axis = -1)\n"
                           "b = broadcast_to(x, [5, 2, H])\n"
                           "c = reshape(x, [-1])\n"
                           "output a, b, c\n");
    Graph *g = main_graph(m);
    assert_string_equal(vtype(g, result(m, "a")), "f32[2, 4]");
    assert_int_equal(def(g, result(m, "a"))->attr.axis, 1);
    const Node *k = nth_op(g, OP_CONST, 0);
    assert_true(k->attr.value == 7);
    assert_string_equal(type_text(k->attr.type), "f32[2, 1]");
    assert_string_equal(vtype(g, result(m, "b")), "f32[5, 2, 3]");
    assert_string_equal(vtype(g, result(m, "c")), "f32[6]");
}

/* ---- fn ------------------------------------------------------------------------ */

static void test_fn_sees_definition_scope(void **state)
{
    (void)state;
    Module *m = compile_ok("input x : f32[4]\n"
                           "k = 2\n"
                           "fn f(a) { return a * k }\n"
                           "k = 3\n"
                           "y = f(x)\n"
                           "z = y * k\n"
                           "output z\n");
    Graph *g = main_graph(m);
    const Node *m1 = nth_op(g, OP_MUL, 0), *m2 = nth_op(g, OP_MUL, 1);
    assert_true(def(g, m1->in[1])->attr.value == 2);
    assert_true(def(g, m2->in[1])->attr.value == 3);
}

static void test_fn_inlining_and_shadowing(void **state)
{
    (void)state;
    Module *m = compile_ok("input x : f32[4]\n"
                           "input y : f32[4]\n"
                           "fn f(a, c) {\n"
                           "  c = a + c\n"
                           "  h = c * c\n"
                           "  return h, c\n"
                           "}\n"
                           "p, q = f(y, c = x)\n"
                           "r, s = f(p, q)\n"
                           "output r, s\n");
    Graph *g = main_graph(m);
    assert_int_equal(count_op(g, OP_ADD), 2);
    assert_int_equal(count_op(g, OP_MUL), 2);
    const Node *add = nth_op(g, OP_ADD, 0);
    assert_int_equal(def(g, add->in[0])->attr.index, 1); /* a = y */
    assert_int_equal(def(g, add->in[1])->attr.index, 0); /* c = x */
    const Node *r = def(g, result(m, "r"));
    assert_int_equal(r->op, OP_MUL);
    assert_int_equal(def(g, r->in[0])->op, OP_ADD);
    assert_int_equal(def(g, result(m, "s"))->op, OP_ADD);
}

/* ---- scan ------------------------------------------------------------------------ */

static const char *scan_src =
    "dim T = 5\n"
    "dim B = 2\n"
    "dim H = 3\n"
    "input xs : f32[T, B, H]\n"
    "input h0 : f32[B, H]\n"
    "param W : f32[H, H] = normal(0.1)\n"
    "param U : f32[H, H] = normal(0.1)\n"
    "fn step(h, x) {\n"
    "  a = x @ U\n"
    "  h = tanh(a + h @ W + h @ W)\n"
    "  return h, h * 2\n"
    "}\n"
    "hl, hs = scan(step, init = h0, over = xs, reverse = true)\n"
    "output hl, hs\n";

static void test_scan_with_captures(void **state)
{
    (void)state;
    Module *m = compile_ok(scan_src);
    assert_int_equal(m->graphs.len, 2);
    Graph *g = main_graph(m), *body = m->graphs.data[1];
    assert_string_equal(body->name, "step");
    assert_int_equal(body->n_args, 4);
    static const char *const types[4] = {"f32[2, 3]", "f32[2, 3]", "f32[3, 3]",
                                         "f32[3, 3]"};
    for (int i = 0; i < 4; i++) {
        const Node *n = &body->nodes.data[i];
        assert_int_equal(n->op, OP_ARG);
        assert_int_equal(n->attr.index, i);
        assert_string_equal(vtype(body, n->out[0]), types[i]);
    }
    assert_int_equal(count_op(body, OP_ARG), 4);
    assert_int_equal(body->results.len, 2);
    const Node *scan = nth_op(g, OP_SCAN, 0);
    assert_int_equal(scan->attr.graph, 1);
    assert_int_equal(scan->attr.n_carry, 1);
    assert_int_equal(scan->attr.n_over, 1);
    assert_true(scan->attr.flag);
    assert_int_equal(scan->n_in, 4);
    assert_int_equal(def(g, scan->in[0])->op, OP_INPUT);
    assert_int_equal(def(g, scan->in[0])->attr.index, 1); /* h0 */
    assert_int_equal(def(g, scan->in[1])->attr.index, 0); /* xs */
    assert_int_equal(def(g, scan->in[2])->attr.index, 1); /* U, read first */
    assert_int_equal(def(g, scan->in[3])->attr.index, 0); /* W, shared */
    assert_string_equal(vtype(g, result(m, "hl")), "f32[2, 3]");
    assert_string_equal(vtype(g, result(m, "hs")), "f32[5, 2, 3]");
}

static void test_nested_scan_captures(void **state)
{
    (void)state;
    Module *m =
        compile_ok("input xs : f32[4, 3, 1, 2]\n"
                   "param W : f32[2, 2] = normal(0.1)\n"
                   "k = 2\n"
                   "fn inner(h, x) { return tanh(x @ W + h * k) }\n"
                   "fn outer(c, row) {\n"
                   "  c2 = scan(inner, init = c, over = row)\n"
                   "  return c2, c2 * c\n"
                   "}\n"
                   "c, ys = scan(outer, init = zeros(1, 2), over = xs)\n"
                   "output c, ys\n");
    assert_int_equal(m->graphs.len, 3);
    Graph *g = main_graph(m), *outer = m->graphs.data[1],
          *inner = m->graphs.data[2];
    assert_string_equal(outer->name, "outer");
    assert_string_equal(inner->name, "inner");
    assert_int_equal(inner->n_args, 4); /* h, x, W, k */
    assert_int_equal(outer->n_args, 4); /* c, row, W, k */
    const Node *is = nth_op(outer, OP_SCAN, 0);
    assert_int_equal(is->attr.graph, 2);
    assert_int_equal(is->n_in, 4);
    assert_int_equal(def(outer, is->in[2])->op, OP_ARG);
    assert_int_equal(def(outer, is->in[2])->attr.index, 2);
    const Node *os = nth_op(g, OP_SCAN, 0);
    assert_int_equal(os->n_in, 4);
    assert_int_equal(def(g, os->in[2])->op, OP_PARAM);
    assert_int_equal(def(g, os->in[3])->op, OP_CONST);
    assert_string_equal(vtype(g, result(m, "ys")), "f32[4, 1, 2]");
}

static void test_scan_graph_names(void **state)
{
    (void)state;
    Module *m = compile_ok("input xs : f32[4, 2]\n"
                           "fn main(h, x) { return h + x }\n"
                           "a = scan(main, init = zeros(2), over = xs)\n"
                           "b = scan(main, init = a, over = xs)\n"
                           "output b\n");
    assert_int_equal(m->graphs.len, 3);
    assert_string_equal(m->graphs.data[1]->name, "main.1");
    assert_string_equal(m->graphs.data[2]->name, "main.2");
}

/* ---- errors ------------------------------------------------------------------------ */

static void test_empty_and_no_result(void **state)
{
    (void)state;
    expect_errors("", "1:1: error: model has neither 'output' nor 'train'\n");
    teardown(NULL);
    expect_errors("input x : f32[2]\ny = x * 2\n",
                  "1:1: error: model has neither 'output' nor 'train'\n");
}

static void test_shape_errors_and_poison(void **state)
{
    (void)state;
    expect_errors("input x : f32[64, 784]\n"
                  "param W : f32[512, 10] = zeros\n"
                  "h = x @ W\n"
                  "g = relu(h) + 1\n"
                  "z = x + hh\n"
                  "output g, z\n",
                  "3:7: error: matmul of f32[64, 784] and f32[512, 10]: inner "
                  "dimensions 784 and 512 differ\n"
                  "5:9: error: unknown name 'hh'; did you mean 'h'?\n");
}

static void test_name_errors(void **state)
{
    (void)state;
    expect_errors(
        "dim B = 2\n"
        "input x : f32[B]\n"
        "param x : f32[B] = zeros\n"
        "B = x\n"
        "fn f(a) { return g(a) + f(a) }\n"
        "fn g(B) { return B }\n"
        "y = later\n"
        "later = x\n"
        "output y\n",
        "3:7: error: 'x' is already defined at 2:7\n"
        "4:1: error: 'B' is a dim (declared at 1:5) and cannot be rebound\n"
        "5:18: error: fn 'f' cannot use 'g': it is defined later, at "
        "6:4 (a fn sees only what is defined above it)\n"
        "5:25: error: fn 'f' cannot call itself (recursion is not allowed)\n"
        "6:6: error: 'B' is a dim (declared at 1:5) and cannot be rebound\n"
        "7:5: error: 'later' is used before its definition at 8:1\n");
}

static void test_call_errors(void **state)
{
    (void)state;
    expect_errors(
        "input x : f32[2, 3]\n"
        "fn two(a, b) { return a + b, a - b }\n"
        "a = softmax(x, -1, 2)\n"
        "b = softmax(x, axis = 1, axis = 0)\n"
        "c = dropout(x)\n"
        "d = two(x)\n"
        "e = two(x, x) + 1\n"
        "f, g, h = two(x, x)\n"
        "i = sum(x, axis = 0, keep = true)\n"
        "output a\n",
        "3:20: error: softmax takes at most 2 arguments, but 3 were given\n"
        "4:26: error: argument 'axis' of softmax is given twice\n"
        "5:5: error: missing argument 'p' of dropout\n"
        "6:5: error: fn 'two' takes 2 arguments, but 1 was given\n"
        "7:5: error: fn 'two' gives 2 values where one is expected\n"
        "8:11: error: fn 'two' gives 2 values, but 3 names are bound\n"
        "9:22: error: sum has no argument named 'keep'\n");
}

static void test_error_inside_fn_names_call(void **state)
{
    (void)state;
    expect_errors("input x : f32[2, 3]\n"
                  "fn f(a) {\n"
                  "  return a @ a\n"
                  "}\n"
                  "y = f(x)\n"
                  "output y\n",
                  "3:12: error: matmul of f32[2, 3] and f32[2, 3]: inner "
                  "dimensions 3 and 2 differ (in fn 'f' called at 5:5)\n");
}

static void test_scan_errors(void **state)
{
    (void)state;
    expect_errors(
        "input x : f32[2, 3]\n"
        "input s : f32[5, 2, 3]\n"
        "input s2 : f32[6, 3]\n"
        "fn one(h) { return h }\n"
        "fn shrink(h, xt) { return h[0] }\n"
        "fn pair(h, xt) { return h + xt, h }\n"
        "a = scan(one, init = x, over = s)\n"
        "b = scan(shrink, init = x, over = s)\n"
        "c, d = scan(pair, init = x, over = (s, s2))\n"
        "e = scan(relu, init = x, over = s)\n"
        "f = scan(pair, init = x, over = x[0, 0])\n"
        "output a\n",
        "7:5: error: scan: fn 'one' takes 1 argument, but scan passes 2 "
        "(1 carry and 1 slice)\n"
        "8:5: error: scan: fn 'shrink' changes carry 1 from f32[2, 3] to "
        "f32[3]\n"
        "9:8: error: scan over tensors 1 and 2 have different lengths "
        "along axis 0 (5 and 6)\n"
        "10:10: error: scan needs a fn defined with 'fn', not the "
        "built-in 'relu'\n"
        "11:5: error: scan over tensor 1: f32[] has no axis to scan along\n");
}

static void test_output_and_train_errors(void **state)
{
    (void)state;
    expect_errors(
        "input x : f32[2, 3]\n"
        "input ids : i32[2]\n"
        "param w : f32[3] = zeros frozen\n"
        "y = x\n"
        "z = ids[0:1]\n"
        "v = x * 2\n"
        "output y, z, w, v, v\n"
        "train v with adam(beta2 = 1)\n"
        "train sum(v) with sgd(lr = 1)\n",
        "7:8: error: output 'y' is the input 'x' itself; an output must "
        "be a value computed from the inputs\n"
        "7:11: error: output 'z' is i32[1], but outputs must be f32\n"
        "7:14: error: output 'w' is a param; an output must be a value "
        "computed from the inputs\n"
        "7:20: error: 'v' is already an output (at 7:17)\n"
        "8:7: error: the loss must be a scalar f32[], not f32[2, 3]\n"
        "8:27: error: invalid beta2: 1 (betas must be in [0, 1))\n"
        "9:1: error: a model can have only one 'train'; the first is at 8:1\n");
    teardown(NULL);
    expect_errors(
        "input x : f32[3]\n"
        "param w : f32[3] = zeros frozen\n"
        "l = sum(x * w)\n"
        "train l with sgd(lr = 0.1, nesterov = true)\n",
        "4:7: error: the loss does not depend on any trainable param\n"
        "4:39: error: nesterov momentum requires a momentum > 0\n");
}

static void test_param_errors(void **state)
{
    (void)state;
    expect_errors(
        "param a : i32[3] = zeros\n"
        "param b : f32[3] = orthogonal\n"
        "param c : f32[3] = uniform(1, 0)\n"
        "param d : f32[3] = normal\n"
        "param e : f32[3] = glorot\n"
        "param f : f32[] = xavier_uniform\n"
        "param g : f32[3] = normal(0, -1)\n"
        "output a\n",
        "1:11: error: param 'a' is i32, but params must be f32\n"
        "2:20: error: orthogonal initialization needs a param of rank 2 "
        "or more, not f32[3]\n"
        "3:20: error: uniform(LO, HI) needs LO <= HI, not 1 > 0\n"
        "4:20: error: initializer 'normal' needs arguments: normal(STD) "
        "or normal(MEAN, STD)\n"
        "5:20: error: unknown initializer 'glorot' (expected zeros, ones, "
        "const, uniform, normal, xavier_uniform, kaiming_normal or "
        "orthogonal)\n"
        "6:19: error: xavier_uniform initialization needs a param of "
        "rank 1 or more, not f32[]\n"
        "7:20: error: normal needs a standard deviation >= 0, not -1\n");
}

static void test_inlining_blowup_is_an_error(void **state)
{
    (void)state;
    char src[4096];
    size_t n = (size_t)snprintf(
        src, sizeof src, "input x : f32[2]\nfn f0(a) { return a + 1 }\n");
    for (int i = 1; i <= 24; i++)
        n += (size_t)snprintf(src + n, sizeof src - n,
                              "fn f%d(a) { return f%d(f%d(a)) }\n", i, i - 1,
                              i - 1);
    snprintf(src + n, sizeof src - n, "y = f24(x)\noutput y\n");
    assert_null(compile(src));
    assert_int_equal(last.n_errors, 1);
    assert_non_null(strstr(last.errors, "the model is too large"));
}

/* A chain of fns each calling the one above nests deeper than the lowering
 * may recurse: one error, no crash. */
static void test_deep_fn_chain_is_an_error(void **state)
{
    (void)state;
    size_t cap = 1 << 17, n = 0;
    char *src = malloc(cap);
    n +=
        (size_t)snprintf(src, cap, "input x : f32[2]\nfn f0(a) { return a }\n");
    for (int i = 1; i < 3000; i++)
        n += (size_t)snprintf(src + n, cap - n, "fn f%d(a) { return f%d(a) }\n",
                              i, i - 1);
    snprintf(src + n, cap - n, "y = f2999(x) * 2\noutput y\n");
    assert_null(compile(src));
    free(src);
    assert_int_equal(last.n_errors, 1);
    assert_non_null(strstr(last.errors, "nested too deeply"));
}

/* ---- names and the conformance models ---------------------------------------------- */

static void test_default_model_name(void **state)
{
    (void)state;
    Arena *a = arena_new();
    assert_string_equal(fe_default_model_name(a, "path/to/my-model.nn"),
                        "my_model");
    assert_string_equal(fe_default_model_name(a, "3d.nn"), "_3d");
    assert_string_equal(fe_default_model_name(a, "int.nn"), "int_");
    assert_string_equal(fe_default_model_name(a, "a.b.nn"), "a_b");
    assert_string_equal(fe_default_model_name(a, "dir/plain"), "plain");
    arena_free(a);
}

/* The file of a conformance model, from ../shared/conformance beside the
 * project or the copies in examples/models. */
static char *read_model(const char *name)
{
    static const char *const dirs[] = {"/../../../shared/conformance/",
                                       "/../../examples/models/"};
    char here[1024], path[1200];
    snprintf(here, sizeof here, "%s", __FILE__);
    char *slash = strrchr(here, '/');
    if (slash)
        *slash = 0;
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s%s%s", here, dirs[i], name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        char *buf = calloc(1, 1 << 16);
        size_t len = fread(buf, 1, (1 << 16) - 1, f);
        buf[len] = 0;
        fclose(f);
        return buf;
    }
    fail_msg("conformance model %s not found", name);
    return NULL;
}

static void check_model(const char *name, DimOverride *ov, int n_ov)
{
    char *src = read_model(name);
    Module *m = compile_ov(src, ov, n_ov);
    free(src);
    if (!m)
        fail_msg("%s: unexpected errors:\n%s", name, last.errors);
    char err[512];
    if (!ir_verify_module(m, err, sizeof err))
        fail_msg("%s: verifier: %s", name, err);
    for (int i = 0; i < n_ov; i++)
        assert_true(ov[i].used);
    assert_true(m->train.opt != OPT_NONE);
    teardown(NULL);
}

static void test_conformance_models(void **state)
{
    (void)state;
    static const char *const names[] = {"rnn.nn", "lstm.nn", "gpt.nn"};
    DimOverride small[2] = {{"B", 2, false}, {"T", 3, false}};
    DimOverride big[5] = {{"T", 256, false},
                          {"C", 384, false},
                          {"L", 6, false},
                          {"NH", 6, false},
                          {"B", 4, false}};
    check_model("mlp.nn", NULL, 0);
    check_model("mlp.nn", small, 1);
    for (int i = 0; i < 3; i++) {
        check_model(names[i], NULL, 0);
        small[0].used = small[1].used = false;
        check_model(names[i], small, 2);
    }
    check_model("gpt.nn", big, 5);
}

static void test_conformance_shapes(void **state)
{
    (void)state;
    char *src = read_model("gpt.nn");
    DimOverride ov[2] = {{"B", 2, false}, {"T", 3, false}};
    Module *m = compile_ov(src, ov, 2);
    free(src);
    assert_non_null(m);
    Graph *g = main_graph(m), *body = m->graphs.data[1];
    assert_int_equal(m->graphs.len, 2);
    assert_string_equal(body->name, "block");
    assert_int_equal(body->n_args, 13);
    const Node *scan = nth_op(g, OP_SCAN, 0);
    assert_int_equal(scan->attr.n_carry, 1);
    assert_int_equal(scan->attr.n_over, 12);
    assert_int_equal(scan->n_in, 13);
    assert_string_equal(vtype(g, result(m, "logits")), "f32[2, 3, 256]");
    assert_int_equal(count_op(body, OP_SLICE), 3);
    assert_int_equal(count_op(body, OP_CAUSAL_MASK), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_mlp_structure, teardown),
        cmocka_unit_test_teardown(test_dim_overrides, teardown),
        cmocka_unit_test_teardown(test_derived_dim_override, teardown),
        cmocka_unit_test_teardown(test_override_errors, teardown),
        cmocka_unit_test_teardown(test_dim_and_type_errors, teardown),
        cmocka_unit_test_teardown(test_inits_and_sgd, teardown),
        cmocka_unit_test_teardown(test_adamw_defaults, teardown),
        cmocka_unit_test_teardown(test_constants_and_negation, teardown),
        cmocka_unit_test_teardown(test_i32_comparison_constant, teardown),
        cmocka_unit_test_teardown(test_split_and_slices, teardown),
        cmocka_unit_test_teardown(test_gather, teardown),
        cmocka_unit_test_teardown(test_reductions_and_options, teardown),
        cmocka_unit_test_teardown(test_constants_concat_broadcast, teardown),
        cmocka_unit_test_teardown(test_fn_sees_definition_scope, teardown),
        cmocka_unit_test_teardown(test_fn_inlining_and_shadowing, teardown),
        cmocka_unit_test_teardown(test_scan_with_captures, teardown),
        cmocka_unit_test_teardown(test_nested_scan_captures, teardown),
        cmocka_unit_test_teardown(test_scan_graph_names, teardown),
        cmocka_unit_test_teardown(test_empty_and_no_result, teardown),
        cmocka_unit_test_teardown(test_shape_errors_and_poison, teardown),
        cmocka_unit_test_teardown(test_name_errors, teardown),
        cmocka_unit_test_teardown(test_call_errors, teardown),
        cmocka_unit_test_teardown(test_error_inside_fn_names_call, teardown),
        cmocka_unit_test_teardown(test_scan_errors, teardown),
        cmocka_unit_test_teardown(test_output_and_train_errors, teardown),
        cmocka_unit_test_teardown(test_param_errors, teardown),
        cmocka_unit_test_teardown(test_inlining_blowup_is_an_error, teardown),
        cmocka_unit_test_teardown(test_deep_fn_chain_is_an_error, teardown),
        cmocka_unit_test(test_default_model_name),
        cmocka_unit_test_teardown(test_conformance_models, teardown),
        cmocka_unit_test_teardown(test_conformance_shapes, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
