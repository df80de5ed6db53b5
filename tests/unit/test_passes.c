/* test_passes.c — CSE, DCE, the rewriting helpers and the pass manager.
 *
 * Each test builds a small graph by hand with ir_add_typed (so it depends
 * on no shape rule), runs one pass or helper, and checks the node count and
 * how the surviving values are wired: which op defines each operand, and
 * which values the graph returns.  The manager tests read back what the
 * debug handles print. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "passes/pass.h"

static Arena *arena;
static Module *mod;
static Graph *g;
static PassCtx ctx;
static const Type T23 = {.dtype = DT_F32, .rank = 2, .dims = {2, 3}};
static const Type T33 = {.dtype = DT_F32, .rank = 2, .dims = {3, 3}};
static const Type T3 = {.dtype = DT_F32, .rank = 1, .dims = {3}};

/* A module with inputs x, y : f32[2, 3], params W : f32[3, 3], b : f32[3]. */
static int setup(void **state)
{
    (void)state;
    arena = arena_new();
    mod = ir_module_new(arena, "t");
    vec_push(arena, &mod->inputs, ((InputDecl){"x", T23}));
    vec_push(arena, &mod->inputs, ((InputDecl){"y", T23}));
    vec_push(arena, &mod->params, ((ParamDecl){.name = "W", .type = T33}));
    vec_push(arena, &mod->params, ((ParamDecl){.name = "b", .type = T3}));
    g = ir_graph_new(mod, "main");
    ctx = (PassCtx){.m = mod, .arena = arena};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(arena);
    return 0;
}

/* Adds `op` with attributes `at` and one result of type t to graph gr. */
static Value vnode(Graph *gr, Op op, Attrs at, Type t, int n_in, va_list ap)
{
    Value in[8];
    for (int i = 0; i < n_in; i++)
        in[i] = va_arg(ap, Value);
    int32_t id = ir_add_typed(gr, op, in, n_in, &at, (SrcLoc){0}, &t, 1);
    return gr->nodes.data[id].out[0];
}

static Value node_in(Graph *gr, Op op, Attrs at, Type t, int n_in, ...)
{
    va_list ap;
    va_start(ap, n_in);
    Value v = vnode(gr, op, at, t, n_in, ap);
    va_end(ap);
    return v;
}

/* The same, in the main graph g. */
static Value node(Op op, Attrs at, Type t, int n_in, ...)
{
    va_list ap;
    va_start(ap, n_in);
    Value v = vnode(g, op, at, t, n_in, ap);
    va_end(ap);
    return v;
}

static Value input(int i)
{
    return node(OP_INPUT, (Attrs){.index = i}, T23, 0);
}
static Value param_w(void)
{
    return node(OP_PARAM, (Attrs){.index = 0}, T33, 0);
}
static Value constant(double v, Type t)
{
    return node(OP_CONST, (Attrs){.value = v, .type = t}, t, 0);
}

static void ret(Graph *gr, Value v) { ir_add_result(mod, gr, v, NULL); }

static Node *def(Graph *gr, Value v) { return ir_def(gr, v); }
static Node *result_def(Graph *gr, int i)
{
    return ir_def(gr, gr->results.data[i]);
}
static Node *operand_def(Graph *gr, Node *n, int i)
{
    return ir_def(gr, n->in[i]);
}

static int count_op(const Graph *gr, Op op)
{
    int n = 0;
    for (int32_t i = 0; i < gr->nodes.len; i++)
        n += gr->nodes.data[i].op == op;
    return n;
}

/* Values and nodes are dense and in definition order after every pass. */
static void assert_dense(const Graph *gr)
{
    uint32_t next = 1;
    for (int32_t i = 0; i < gr->nodes.len; i++) {
        const Node *n = &gr->nodes.data[i];
        for (int32_t k = 0; k < n->n_in; k++)
            assert_true(n->in[k].id > 0 && n->in[k].id < next);
        for (int32_t k = 0; k < n->n_out; k++) {
            assert_int_equal(n->out[k].id, next++);
            assert_int_equal(gr->values.data[n->out[k].id].def, i);
            assert_int_equal(gr->values.data[n->out[k].id].result, k);
        }
    }
    assert_int_equal(gr->values.len, next);
}

/* ---- CSE ---------------------------------------------------------------- */

static void test_cse_merges_equal_nodes(void **state)
{
    (void)state;
    Value x = input(0), y = input(1);
    Value a = node(OP_ADD, (Attrs){0}, T23, 2, x, y);
    Value b = node(OP_ADD, (Attrs){0}, T23, 2, x, y);
    ret(g, node(OP_MUL, (Attrs){0}, T23, 2, a, b));

    assert_true(pass_cse(mod, &ctx));
    assert_int_equal(g->nodes.len, 4);
    assert_dense(g);
    Node *mul = result_def(g, 0);
    assert_int_equal(mul->op, OP_MUL);
    assert_int_equal(mul->in[0].id, mul->in[1].id);
    assert_int_equal(operand_def(g, mul, 0)->op, OP_ADD);
    assert_int_equal(count_op(g, OP_ADD), 1);
    assert_false(pass_cse(mod, &ctx)); /* nothing left to merge */
}

static void test_cse_commutative_ops_match_swapped(void **state)
{
    (void)state;
    Value x = input(0), y = input(1);
    Value a = node(OP_ADD, (Attrs){0}, T23, 2, x, y);
    Value b = node(OP_ADD, (Attrs){0}, T23, 2, y, x);
    Value c = node(OP_SUB, (Attrs){0}, T23, 2, x, y);
    Value d = node(OP_SUB, (Attrs){0}, T23, 2, y, x);
    ret(g, a);
    ret(g, b);
    ret(g, c);
    ret(g, d);

    assert_true(pass_cse(mod, &ctx));
    assert_int_equal(g->nodes.len, 5);
    assert_int_equal(g->results.data[0].id, g->results.data[1].id);
    assert_int_not_equal(g->results.data[2].id, g->results.data[3].id);
    assert_int_equal(count_op(g, OP_SUB), 2);
}

static void test_cse_leaves_merge_only_with_same_index(void **state)
{
    (void)state;
    Value x0 = input(0), y = input(1), x1 = input(0);
    ret(g, x0);
    ret(g, y);
    ret(g, x1);

    assert_true(pass_cse(mod, &ctx));
    assert_int_equal(g->nodes.len, 2);
    assert_int_equal(g->results.data[0].id, g->results.data[2].id);
    assert_int_not_equal(g->results.data[0].id, g->results.data[1].id);
    assert_int_equal(result_def(g, 1)->attr.index, 1);
}

static void test_cse_constants_need_same_bits_and_type(void **state)
{
    (void)state;
    Type s = ir_type_scalar(DT_F32);
    Value c[6] = {constant(2.0, s),  constant(2.0, s), constant(3.0, s),
                  constant(2.0, T3), constant(0.0, s), constant(-0.0, s)};
    for (int i = 0; i < 6; i++)
        ret(g, c[i]);

    assert_true(pass_cse(mod, &ctx));
    assert_int_equal(g->nodes.len, 5);
    uint32_t r[6];
    for (int i = 0; i < 6; i++)
        r[i] = g->results.data[i].id;
    assert_int_equal(r[0], r[1]);
    assert_int_not_equal(r[0], r[2]);
    assert_int_not_equal(r[0], r[3]);
    assert_int_not_equal(r[4], r[5]);
}

static void test_cse_collapses_chains(void **state)
{
    (void)state;
    Value x = input(0), y = input(1);
    Value e1 = node(OP_EXP, (Attrs){0}, T23, 1,
                    node(OP_ADD, (Attrs){0}, T23, 2, x, y));
    Value e2 = node(OP_EXP, (Attrs){0}, T23, 1,
                    node(OP_ADD, (Attrs){0}, T23, 2, x, y));
    ret(g, node(OP_SUB, (Attrs){0}, T23, 2, e1, e2));

    assert_true(pass_cse(mod, &ctx));
    assert_int_equal(g->nodes.len, 5);
    assert_dense(g);
    Node *sub = result_def(g, 0);
    assert_int_equal(sub->in[0].id, sub->in[1].id);
    Node *exp = operand_def(g, sub, 0);
    assert_int_equal(exp->op, OP_EXP);
    assert_int_equal(operand_def(g, exp, 0)->op, OP_ADD);
}

static void test_cse_never_merges_dropout(void **state)
{
    (void)state;
    Value x = input(0);
    Value a = node(OP_DROPOUT, (Attrs){.value = 0.5}, T23, 1, x);
    Value b = node(OP_DROPOUT, (Attrs){.value = 0.5}, T23, 1, x);
    ret(g, node(OP_ADD, (Attrs){0}, T23, 2, a, b));

    assert_false(pass_cse(mod, &ctx));
    assert_int_equal(count_op(g, OP_DROPOUT), 2);
}

static void test_cse_respects_attributes(void **state)
{
    (void)state;
    Value x = input(0);
    ret(g, node(OP_SOFTMAX, (Attrs){.axis = 0}, T23, 1, x));
    ret(g, node(OP_SOFTMAX, (Attrs){.axis = 1}, T23, 1, x));
    ret(g, node(OP_SOFTMAX, (Attrs){.axis = 1}, T23, 1, x));

    assert_true(pass_cse(mod, &ctx));
    assert_int_equal(count_op(g, OP_SOFTMAX), 2);
    assert_int_not_equal(g->results.data[0].id, g->results.data[1].id);
    assert_int_equal(g->results.data[1].id, g->results.data[2].id);
    assert_int_equal(result_def(g, 0)->attr.axis, 0);
}

/* A body (carry h : f32[2, 3], captured W) computing tanh(h @ W), with an
 * optional dropout; returns the new carry and it again as an output. */
static Graph *make_body(const char *name, bool with_dropout)
{
    Graph *body = ir_graph_new(mod, name);
    Value h = node_in(body, OP_ARG, (Attrs){.index = 0}, T23, 0);
    Value w = node_in(body, OP_ARG, (Attrs){.index = 1}, T33, 0);
    Value t = node_in(body, OP_TANH, (Attrs){0}, T23, 1,
                      node_in(body, OP_MATMUL, (Attrs){0}, T23, 2, h, w));
    if (with_dropout)
        t = node_in(body, OP_DROPOUT, (Attrs){.value = 0.1}, T23, 1, t);
    body->n_args = 2;
    ret(body, t);
    ret(body, t);
    return body;
}

/* scan of `body` with carry h0 over 4 steps (no scanned tensor), capturing w:
 * results are the final carry and the stacked outputs f32[4, 2, 3]. */
static Node *scan(Graph *body, Value h0, Value w)
{
    Type outs[2] = {T23, {.dtype = DT_F32, .rank = 3, .dims = {4, 2, 3}}};
    Attrs at = {.graph = body->id, .n_carry = 1, .n_over = 0};
    Value in[2] = {h0, w};
    int32_t id = ir_add_typed(g, OP_SCAN, in, 2, &at, (SrcLoc){0}, outs, 2);
    return &g->nodes.data[id];
}

static void test_cse_merges_scans_of_same_body_and_operands(void **state)
{
    (void)state;
    Graph *body = make_body("step", false);
    Value x = input(0), y = input(1), w = param_w();
    Value s1 = scan(body, x, w)->out[1];
    Value s2 = scan(body, x, w)->out[1];
    Value s3 = scan(body, y, w)->out[1];
    ret(g, s1);
    ret(g, s2);
    ret(g, s3);

    assert_true(pass_cse(mod, &ctx));
    assert_int_equal(count_op(g, OP_SCAN), 2);
    assert_int_equal(g->results.data[0].id, g->results.data[1].id);
    assert_int_not_equal(g->results.data[0].id, g->results.data[2].id);
    assert_int_equal(ir_value(g, g->results.data[0])->result, 1);
    assert_dense(g);
}

static void test_cse_keeps_scans_whose_body_draws_random_numbers(void **state)
{
    (void)state;
    Graph *body = make_body("step", true);
    Value x = input(0), w = param_w();
    ret(g, scan(body, x, w)->out[0]);
    ret(g, scan(body, x, w)->out[0]);

    assert_false(pass_cse(mod, &ctx));
    assert_int_equal(count_op(g, OP_SCAN), 2);
}

static void test_cse_runs_in_scan_bodies(void **state)
{
    (void)state;
    Graph *body = ir_graph_new(mod, "step");
    Value h = node_in(body, OP_ARG, (Attrs){.index = 0}, T23, 0);
    Value a = node_in(body, OP_TANH, (Attrs){0}, T23, 1, h);
    Value b = node_in(body, OP_TANH, (Attrs){0}, T23, 1, h);
    body->n_args = 1;
    ret(body, node_in(body, OP_ADD, (Attrs){0}, T23, 2, a, b));
    ret(body, a);
    ret(g, scan(body, input(0), param_w())->out[0]);

    assert_true(pass_cse(mod, &ctx));
    assert_int_equal(body->nodes.len, 3);
    assert_int_equal(count_op(body, OP_TANH), 1);
    assert_int_equal(body->results.data[1].id, 2);
    assert_dense(body);
}

/* ---- DCE ---------------------------------------------------------------- */

static void test_dce_removes_unused_nodes(void **state)
{
    (void)state;
    Value x = input(0), w = param_w();
    Value dead = node(OP_EXP, (Attrs){0}, T23, 1, x);
    node(OP_RELU, (Attrs){0}, T23, 1, dead);
    ir_value(g, x)->name = "x";
    Value mm = node(OP_MATMUL, (Attrs){0}, T23, 2, x, w);
    ir_value(g, mm)->name = "h";
    ret(g, mm);

    assert_true(pass_dce(mod, &ctx));
    assert_int_equal(g->nodes.len, 3);
    assert_dense(g);
    assert_int_equal(count_op(g, OP_EXP), 0);
    assert_int_equal(count_op(g, OP_RELU), 0);
    Node *r = result_def(g, 0);
    assert_int_equal(r->op, OP_MATMUL);
    assert_int_equal(g->results.data[0].id, 3);
    assert_string_equal(ir_value(g, g->results.data[0])->name, "h");
    assert_string_equal(ir_value(g, r->in[0])->name, "x");
    assert_int_equal(operand_def(g, r, 1)->op, OP_PARAM);
    assert_false(pass_dce(mod, &ctx));
}

static void test_dce_keeps_interface_leaves(void **state)
{
    (void)state;
    Value x = input(0);
    input(1);
    param_w();
    node(OP_PARAM, (Attrs){.index = 1}, T3, 0);
    constant(1.0, T23); /* a dead constant is not interface */
    ret(g, node(OP_NEG, (Attrs){0}, T23, 1, x));
    Graph *body = ir_graph_new(mod, "step");
    Value h = node_in(body, OP_ARG, (Attrs){.index = 0}, T23, 0);
    node_in(body, OP_ARG, (Attrs){.index = 1}, T33, 0);
    node_in(body, OP_EXP, (Attrs){0}, T23, 1, h);
    body->n_args = 2;
    ret(body, h);
    ret(body, h);
    Value s = scan(body, x, param_w())->out[0];
    g->results.data[0] = s;

    assert_true(pass_dce(mod, &ctx));
    assert_int_equal(count_op(g, OP_INPUT), 2);
    assert_int_equal(count_op(g, OP_PARAM), 3);
    assert_int_equal(count_op(g, OP_CONST), 0);
    assert_int_equal(count_op(g, OP_NEG), 0);
    assert_int_equal(count_op(body, OP_ARG), 2);
    assert_int_equal(count_op(body, OP_EXP), 0);
    assert_dense(g);
    assert_dense(body);
}

static void test_dce_keeps_shared_operands_of_live_nodes(void **state)
{
    (void)state;
    Value x = input(0);
    Value t = node(OP_TANH, (Attrs){0}, T23, 1, x);
    node(OP_EXP, (Attrs){0}, T23, 1, t); /* dead user of t */
    ret(g, node(OP_NEG, (Attrs){0}, T23, 1, t));

    assert_true(pass_dce(mod, &ctx));
    assert_int_equal(g->nodes.len, 3);
    assert_int_equal(count_op(g, OP_TANH), 1);
    assert_int_equal(count_op(g, OP_EXP), 0);
    assert_int_equal(operand_def(g, result_def(g, 0), 0)->op, OP_TANH);
}

static void test_dce_drops_dead_scans_and_their_bodies(void **state)
{
    (void)state;
    Graph *dead_body = make_body("dead_step", false);
    Graph *live_body = make_body("live_step", false);
    Value x = input(0), w = param_w();
    scan(dead_body, x, w);
    Node *s = scan(live_body, x, w);
    Value stacked = s->out[1]; /* only the per-step outputs are used */
    ret(g, stacked);

    assert_true(pass_dce(mod, &ctx));
    assert_int_equal(mod->graphs.len, 2);
    assert_ptr_equal(mod->graphs.data[1], live_body);
    assert_int_equal(live_body->id, 1);
    Node *live = result_def(g, 0);
    assert_int_equal(live->op, OP_SCAN);
    assert_int_equal(live->attr.graph, 1);
    assert_int_equal(live->n_out, 2); /* unused final carry stays */
    assert_int_equal(count_op(g, OP_SCAN), 1);
    assert_dense(g);
}

/* ---- rewrite helpers ---------------------------------------------------- */

static void test_replace_uses_rewires_operands_and_results(void **state)
{
    (void)state;
    Value x = input(0), y = input(1);
    Value n = node(OP_NEG, (Attrs){0}, T23, 1, x);
    Value a = node(OP_ADD, (Attrs){0}, T23, 2, x, n);
    ret(g, x);
    ret(g, a);

    pass_replace_uses(g, x, y);
    assert_int_equal(def(g, n)->in[0].id, y.id);
    assert_int_equal(def(g, a)->in[0].id, y.id);
    assert_int_equal(def(g, a)->in[1].id, n.id);
    assert_int_equal(g->results.data[0].id, y.id);
}

static void test_compact_renumbers_in_order(void **state)
{
    (void)state;
    Value x = input(0), y = input(1);
    Value a = node(OP_EXP, (Attrs){0}, T23, 1, y);
    ir_value(g, a)->name = "a";
    ret(g, node(OP_ADD, (Attrs){0}, T23, 2, a, x));
    node(OP_NEG, (Attrs){0}, T23, 1, x); /* node 4, value %5: dropped */
    ret(g, node(OP_RELU, (Attrs){0}, T23, 1, a));

    bool keep_all[6] = {true, true, true, true, true, true};
    assert_int_equal(pass_compact_graph(g, keep_all), 0);
    assert_int_equal(g->nodes.len, 6);
    bool keep[6] = {true, true, true, true, false, true};
    assert_int_equal(pass_compact_graph(g, keep), 1);
    assert_dense(g);
    assert_int_equal(g->nodes.len, 5);
    assert_int_equal(g->results.data[0].id, 4);
    assert_int_equal(g->results.data[1].id, 5);
    Node *relu = result_def(g, 1);
    assert_int_equal(relu->op, OP_RELU);
    assert_int_equal(relu->in[0].id, 3);
    assert_string_equal(ir_value(g, relu->in[0])->name, "a");
    assert_true(ir_type_eq(&T23, &ir_value(g, g->results.data[1])->type));
}

/* ---- the manager -------------------------------------------------------- */

static void test_pass_table_and_names(void **state)
{
    (void)state;
    assert_int_equal(pass_by_name("cse"), PASS_CSE);
    assert_int_equal(pass_by_name("dce"), PASS_DCE);
    assert_int_equal(pass_by_name("all"), -1);
    assert_int_equal(pass_by_name("CSE"), -1);
    assert_ptr_equal(pass_info[PASS_CSE].fn, pass_cse);
    assert_string_equal(pass_info[PASS_DCE].name, "dce");
}

/* x + x twice, one dead exp: CSE leaves 4 nodes, DCE 3. */
static void build_redundant_graph(void)
{
    Value x = input(0);
    Value a = node(OP_ADD, (Attrs){0}, T23, 2, x, x);
    Value b = node(OP_ADD, (Attrs){0}, T23, 2, x, x);
    node(OP_EXP, (Attrs){0}, T23, 1, a);
    ret(g, node(OP_MUL, (Attrs){0}, T23, 2, a, b));
    mod->n_outputs = 1;
}

/* The text the manager printed to a temporary file. */
static char *run_and_capture(const int *ids, int n, PassOptions opt)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    opt.dump = f;
    if (ids)
        pass_run_list(mod, &ctx, &opt, ids, n);
    else
        pass_run_pipeline(mod, &ctx, &opt);
    long len = ftell(f);
    rewind(f);
    char *text = arena_alloc(arena, (size_t)len + 1);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return text;
}

static int count_substr(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub))
        n++;
    return n;
}

static void test_pipeline_runs_every_pass_with_dumps(void **state)
{
    (void)state;
    build_redundant_graph();
    char *text = run_and_capture(NULL, 0,
                                 (PassOptions){.dump_after = "all",
                                               .dump_before = "dce",
                                               .verify_each = true});
    /* x, then add and mul fused into one loop by fuse-elementwise */
    assert_int_equal(g->nodes.len, 2);
    assert_int_equal(g->nodes.data[1].op, OP_FUSED);
    const char *after_cse = strstr(text, "; *** IR after cse ***\n");
    const char *before_dce = strstr(text, "; *** IR before dce ***\n");
    const char *after_dce = strstr(text, "; *** IR after dce ***\n");
    assert_non_null(after_cse);
    assert_non_null(before_dce);
    assert_non_null(after_dce);
    assert_true(after_cse < before_dce && before_dce < after_dce);
    /* after each of the PASS_COUNT passes (most have nothing to do here),
     * and before dce */
    assert_int_equal(count_substr(text, "; *** IR"), PASS_COUNT + 1);
    assert_int_equal(count_substr(text, "model t\n"), PASS_COUNT + 1);
    assert_non_null(strstr(after_dce, "= mul %1, %1"));
}

static void test_stop_after_and_time_passes(void **state)
{
    (void)state;
    build_redundant_graph();
    char *text = run_and_capture(
        NULL, 0, (PassOptions){.stop_after = "cse", .time_passes = true});
    assert_int_equal(g->nodes.len, 4); /* DCE did not run */
    assert_int_equal(count_op(g, OP_EXP), 1);
    assert_non_null(strstr(text, "pass timing"));
    assert_int_equal(count_substr(text, "\n  cse "), 1);
    assert_int_equal(count_substr(text, "\n  dce "), 0);
    assert_int_equal(count_substr(text, "\n  total "), 1);
}

static void test_run_list_in_given_order(void **state)
{
    (void)state;
    build_redundant_graph();
    int ids[] = {PASS_DCE, PASS_CSE, PASS_DCE};
    char *text = run_and_capture(ids, 3, (PassOptions){.dump_after = "dce"});
    assert_int_equal(g->nodes.len, 3);
    assert_int_equal(count_substr(text, "; *** IR after dce ***"), 2);
    assert_int_equal(count_substr(text, "; *** IR after cse ***"), 0);
}

/* A module the verifier rejects from the start (its main graph returns a
 * value although the module declares no output): --verify-each must stop
 * after the first pass with an internal error naming it, status 70. */
static void test_verify_each_failure_is_internal_error(void **state)
{
    (void)state;
    ret(g, input(0));
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        int ids[] = {PASS_DCE, PASS_CSE};
        pass_run_list(mod, &ctx, &(PassOptions){.verify_each = true}, ids, 2);
        _exit(0);
    }
    close(fds[1]);
    char text[1024] = {0};
    size_t len = 0;
    for (ssize_t n; (n = read(fds[0], text + len, sizeof text - 1 - len)) > 0;)
        len += (size_t)n;
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 70);
    const char *want = "nnc: internal error: verify after dce: graph main: ";
    assert_memory_equal(text, want, strlen(want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_cse_merges_equal_nodes),
        T(test_cse_commutative_ops_match_swapped),
        T(test_cse_leaves_merge_only_with_same_index),
        T(test_cse_constants_need_same_bits_and_type),
        T(test_cse_collapses_chains),
        T(test_cse_never_merges_dropout),
        T(test_cse_respects_attributes),
        T(test_cse_merges_scans_of_same_body_and_operands),
        T(test_cse_keeps_scans_whose_body_draws_random_numbers),
        T(test_cse_runs_in_scan_bodies),
        T(test_dce_removes_unused_nodes),
        T(test_dce_keeps_interface_leaves),
        T(test_dce_keeps_shared_operands_of_live_nodes),
        T(test_dce_drops_dead_scans_and_their_bodies),
        T(test_replace_uses_rewires_operands_and_results),
        T(test_compact_renumbers_in_order),
        T(test_pass_table_and_names),
        T(test_pipeline_runs_every_pass_with_dumps),
        T(test_stop_after_and_time_passes),
        T(test_run_list_in_given_order),
        T(test_verify_each_failure_is_internal_error),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
