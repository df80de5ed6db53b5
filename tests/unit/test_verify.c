/* test_verify.c — the IR verifier (ir/verify.c).
 *
 * setup builds a small valid module through the builder:
 *
 *   model v   input x : f32[2, 3]   input h0 : f32[3]   param W : f32[3, 3]
 *   train sgd(lr=0.1, ...)   outputs 1
 *   graph main {
 *     %0 = input @x : f32[2, 3]
 *     %1 = input @h0 : f32[3]
 *     %2 = param @W : f32[3, 3]
 *     %3 = relu %0 : f32[2, 3]
 *     %4, %5 = scan @step(carries=1, over=1, reverse=false) %1, %3
 *              : f32[3], f32[2, 3]
 *     %6 = sum %5 axes=[0, 1] keepdims=false : f32[]
 *     %7 = matmul %3, %2 : f32[2, 3]
 *     return out=%7, loss=%6
 *   }
 *   graph step(args=2) {
 *     %0 = arg 0 : f32[3]
 *     %1 = arg 1 : f32[3]
 *     %2 = add %0, %1 : f32[3]
 *     return %2, %2
 *   }
 *
 * Each test corrupts one thing and checks the exact message, which names
 * the node by the %N it has in that dump (node 5, the sum, is %6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "ir/ir.h"

static Arena *arena;
static Module *mod;
static Graph *g, *step;
static char err[512];

/* Node indices in main and step. */
enum { N_X, N_H0, N_W, N_RELU, N_SCAN, N_SUM, N_MATMUL };
enum { S_ARG0, S_ARG1, S_ADD };

static Type f32(int rank, int64_t d0, int64_t d1)
{
    int64_t d[2] = {d0, d1};
    return ir_type_make(DT_F32, rank, d);
}

static Value add(Graph *gr, Op op, Attrs a, int n_in, Value *in, Value *outs)
{
    char why[256];
    Value v =
        ir_add(mod, gr, op, in, n_in, &a, (SrcLoc){0}, outs, why, sizeof why);
    if (v.id == 0)
        fail_msg("building the fixture: %s", why);
    return v;
}

static void build_step(void)
{
    step = ir_graph_new(mod, "step");
    step->n_args = 2;
    Value a0 = add(step, OP_ARG, (Attrs){.index = 0, .type = f32(1, 3, 0)}, 0,
                   NULL, NULL);
    Value a1 = add(step, OP_ARG, (Attrs){.index = 1, .type = f32(1, 3, 0)}, 0,
                   NULL, NULL);
    Value in[2] = {a0, a1};
    Value s = add(step, OP_ADD, (Attrs){0}, 2, in, NULL);
    ir_add_result(mod, step, s, NULL);
    ir_add_result(mod, step, s, NULL);
}

static int setup(void **state)
{
    (void)state;
    arena = arena_new();
    mod = ir_module_new(arena, "v");
    vec_push(arena, &mod->inputs, ((InputDecl){"x", f32(2, 2, 3)}));
    vec_push(arena, &mod->inputs, ((InputDecl){"h0", f32(1, 3, 0)}));
    vec_push(arena, &mod->params,
             ((ParamDecl){.name = "W", .type = f32(2, 3, 3)}));
    mod->train = (TrainSpec){.opt = OPT_SGD, .lr = 0.1};
    mod->n_outputs = 1;
    g = ir_graph_new(mod, "main");
    build_step();
    Value x = add(g, OP_INPUT, (Attrs){.index = 0, .type = f32(2, 2, 3)}, 0,
                  NULL, NULL);
    Value h0 = add(g, OP_INPUT, (Attrs){.index = 1, .type = f32(1, 3, 0)}, 0,
                   NULL, NULL);
    Value w = add(g, OP_PARAM, (Attrs){.index = 0, .type = f32(2, 3, 3)}, 0,
                  NULL, NULL);
    Value r = add(g, OP_RELU, (Attrs){0}, 1, &x, NULL);
    Value ins[2] = {h0, r}, outs[2];
    add(g, OP_SCAN, (Attrs){.graph = step->id, .n_carry = 1, .n_over = 1}, 2,
        ins, outs);
    Value loss = add(g, OP_SUM, (Attrs){0}, 1, &outs[1], NULL);
    Value mm[2] = {r, w};
    Value out = add(g, OP_MATMUL, (Attrs){0}, 2, mm, NULL);
    ir_add_result(mod, g, out, "out");
    ir_add_result(mod, g, loss, "loss");
    err[0] = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(arena);
    return 0;
}

static Node *node(Graph *gr, int k) { return &gr->nodes.data[k]; }
static ValueInfo *out_info(Graph *gr, int k)
{
    return &gr->values.data[node(gr, k)->out[0].id];
}

static void expect_error(const char *want)
{
    bool ok = ir_verify_module(mod, err, sizeof err);
    if (ok)
        fail_msg("verified, but should fail with: %s", want);
    assert_string_equal(err, want);
}

/* Appends a graph `name`(args=1) whose only work is a scan of `body`. */
static Graph *add_scanning_graph(const char *name, int32_t body)
{
    Graph *b = ir_graph_new(mod, name);
    b->n_args = 1;
    Type t = f32(1, 3, 0);
    Attrs a = {.index = 0, .type = t};
    int32_t k = ir_add_typed(b, OP_ARG, NULL, 0, &a, (SrcLoc){0}, &t, 1);
    Attrs sa = {.graph = body, .n_carry = 0, .n_over = 1};
    ir_add_typed(b, OP_SCAN, node(b, k)->out, 1, &sa, (SrcLoc){0}, &t, 1);
    ir_add_result(mod, b, node(b, 1)->out[0], NULL);
    return b;
}

/* ---- valid modules ------------------------------------------------------- */

static void test_valid_module_passes(void **state)
{
    (void)state;
    strcpy(err, "stale");
    assert_true(ir_verify_module(mod, err, sizeof err));
    assert_string_equal(err, "");
    assert_true(ir_verify_module(mod, NULL, 0)); /* no message buffer needed */
}

/* Leaves built with ir_add_typed may leave attr.type zero. */
static void test_leaf_without_type_attribute_passes(void **state)
{
    (void)state;
    node(g, N_X)->attr.type = (Type){0};
    node(step, S_ARG1)->attr.type = (Type){0};
    assert_true(ir_verify_module(mod, err, sizeof err));
}

/* ---- structure ----------------------------------------------------------- */

static void test_operand_used_before_definition(void **state)
{
    (void)state;
    node(g, N_RELU)->in[0] = node(g, N_MATMUL)->out[0];
    expect_error("graph main: node %3 (relu): operand 0: %7 is used before its "
                 "definition");
}

static void test_operand_id_out_of_range(void **state)
{
    (void)state;
    node(g, N_RELU)->in[0] = (Value){999};
    expect_error(
        "graph main: node %3 (relu): operand 0: value id 999 out of range");
    node(g, N_RELU)->in[0] = IR_NONE;
    expect_error(
        "graph main: node %3 (relu): operand 0: value id 0 out of range");
}

static void test_wrong_arity(void **state)
{
    (void)state;
    node(g, N_MATMUL)->n_in = 1;
    expect_error("graph main: node %7 (matmul): has 1 operand, matmul takes 2");
}

static void test_wrong_result_count(void **state)
{
    (void)state;
    node(g, N_RELU)->n_out = 0; /* the later nodes now print one lower */
    expect_error("graph main: node %3 (relu): has 0 results, relu has 1");
}

static void test_result_claimed_by_other_node(void **state)
{
    (void)state;
    out_info(g, N_RELU)->def = N_X;
    expect_error("graph main: node %3 (relu): result 0: value id 4 is recorded "
                 "as defined "
                 "by node 0 result 0");
}

static void test_invalid_result_type(void **state)
{
    (void)state;
    out_info(g, N_RELU)->type.rank = 9;
    expect_error(
        "graph main: node %3 (relu): result 0 has an invalid type <rank 9>");
}

static void test_unknown_op(void **state)
{
    (void)state;
    node(g, N_RELU)->op = (Op)200;
    expect_error("graph main: node %3 (op 200): unknown op");
}

static void test_unused_attribute_set(void **state)
{
    (void)state;
    node(g, N_RELU)->attr.axis = 1;
    expect_error("graph main: node %3 (relu): attribute axis is set but relu "
                 "does not use it");
    node(g, N_RELU)->attr.axis = 0;
    node(g, N_RELU)->attr.value = -0.0; /* bits, not ==: -0.0 is set */
    expect_error("graph main: node %3 (relu): attribute value is set but relu "
                 "does not use it");
}

static void test_input_and_param_indices(void **state)
{
    (void)state;
    node(g, N_H0)->attr.index = 2;
    expect_error(
        "graph main: node %1 (input): input 2 out of range (2 inputs)");
    node(g, N_H0)->attr.index = 1;
    node(g, N_W)->attr.index = -1;
    expect_error(
        "graph main: node %2 (param): param -1 out of range (1 param)");
}

static void test_input_type_differs_from_declaration(void **state)
{
    (void)state;
    mod->inputs.data[0].type = f32(2, 2, 4);
    expect_error("graph main: node %0 (input): type f32[2, 3] differs from "
                 "input x : f32[2, 4]");
}

static void test_leaf_type_attribute_differs(void **state)
{
    (void)state;
    node(g, N_X)->attr.type = f32(1, 9, 0);
    expect_error("graph main: node %0 (input): attribute type f32[9] differs "
                 "from the result "
                 "type f32[2, 3]");
}

/* ---- scans and bodies ---------------------------------------------------- */

static void test_scan_body_out_of_range(void **state)
{
    (void)state;
    node(g, N_SCAN)->attr.graph = 7;
    expect_error("graph main: node %4 (scan): body graph 7 does not exist");
    node(g, N_SCAN)->attr.graph = 0;
    expect_error("graph main: node %4 (scan): body is the main graph");
}

static void test_scan_counts_do_not_fit(void **state)
{
    (void)state;
    node(g, N_SCAN)->attr.n_carry = 3;
    expect_error("graph main: node %4 (scan): carries=3 and over=1 do not fit "
                 "2 operands");
}

static void test_scan_of_itself(void **state)
{
    (void)state;
    add_scanning_graph("loop", 2);
    expect_error("graph loop: node %1 (scan): body is its own graph");
}

static void test_scan_cycle(void **state)
{
    (void)state;
    /* step -> b -> step: step gains a (dead) scan of b */
    Graph *b = add_scanning_graph("b", step->id);
    Value s = node(step, S_ADD)->out[0];
    Type t = f32(1, 3, 0);
    Attrs sa = {.graph = b->id, .n_carry = 0, .n_over = 1};
    ir_add_typed(step, OP_SCAN, &s, 1, &sa, (SrcLoc){0}, &t, 1);
    expect_error(
        "graph b: node %1 (scan): graph step runs itself through its body graphs");
}

static void test_arg_out_of_range_and_twice(void **state)
{
    (void)state;
    node(step, S_ARG1)->attr.index = 5;
    expect_error(
        "graph step: node %1 (arg): arg 5 out of range (graph has 2 args)");
    node(step, S_ARG1)->attr.index = 0;
    expect_error("graph step: node %1 (arg): arg 0 is defined twice");
}

static void test_arg_never_defined(void **state)
{
    (void)state;
    step->n_args = 3;
    expect_error("graph step: arg 2 is never defined");
    step->n_args = 4;
    expect_error("graph step: n_args is 4, but the graph has 3 nodes");
}

static void test_main_graph_has_args(void **state)
{
    (void)state;
    g->n_args = 1;
    expect_error("graph main: the main graph takes no args, but n_args is 1");
}

/* ---- types --------------------------------------------------------------- */

static void test_result_type_differs_from_inferred(void **state)
{
    (void)state;
    out_info(g, N_MATMUL)->type = f32(2, 3, 2);
    expect_error(
        "graph main: node %7 (matmul): result 0 has type f32[3, 2], but matmul "
        "gives f32[2, 3]");
}

static void test_node_does_not_type_check(void **state)
{
    (void)state;
    node(g, N_MATMUL)->in[1] = node(g, N_RELU)->out[0];
    expect_error("graph main: node %7 (matmul): does not type-check: matmul of "
                 "f32[2, 3] and "
                 "f32[2, 3]: inner dimensions 3 and 2 differ");
}

/* A body whose type changes makes the scan using it ill-typed. */
static void test_scan_checked_against_body(void **state)
{
    (void)state;
    step->values.data[node(step, S_ARG0)->out[0].id].type = f32(1, 4, 0);
    node(step, S_ARG0)->attr.type = f32(1, 4, 0);
    expect_error("graph main: node %4 (scan): does not type-check: scan carry "
                 "1: initial "
                 "value is f32[3] but the step function takes f32[4]");
}

/* ---- results and declarations -------------------------------------------- */

static void test_main_result_count(void **state)
{
    (void)state;
    mod->n_outputs = 2;
    expect_error(
        "graph main: 2 results, but the module has 2 outputs and a loss");
    mod->n_outputs = 1;
    mod->train.opt = OPT_NONE;
    expect_error("graph main: 2 results, but the module has 1 output");
}

static void test_loss_must_be_scalar(void **state)
{
    (void)state;
    g->results.data[1] = g->results.data[0];
    expect_error("graph main: the loss has type f32[2, 3], not f32[]");
}

static void test_result_id_out_of_range(void **state)
{
    (void)state;
    step->results.data[1] = (Value){99};
    expect_error("graph step: result 1: value id 99 out of range");
    step->results.data[1] = IR_NONE;
    expect_error("graph step: result 1: value id 0 out of range");
    step->result_names.len = 1;
    expect_error("graph step: 2 results but 1 result name");
}

static void test_duplicate_names(void **state)
{
    (void)state;
    step->name = "main";
    expect_error("module v: two graphs are named main");
    step->name = "step";
    vec_push(arena, &mod->params,
             ((ParamDecl){.name = "W", .type = f32(1, 3, 0)}));
    expect_error("module v: two params are named W");
}

static void test_bad_declarations(void **state)
{
    (void)state;
    mod->params.data[0].type.dims[1] = 0;
    expect_error("module v: param W has an invalid type");
    mod->params.data[0].type.dims[1] = 3;
    mod->train.opt = (OptKind)9;
    expect_error("module v: unknown optimizer 9");
    mod->train.opt = OPT_ADAM;
    mod->graphs.len = 0;
    expect_error("module v: no main graph");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_valid_module_passes),
        T(test_leaf_without_type_attribute_passes),
        T(test_operand_used_before_definition),
        T(test_operand_id_out_of_range),
        T(test_wrong_arity),
        T(test_wrong_result_count),
        T(test_result_claimed_by_other_node),
        T(test_invalid_result_type),
        T(test_unknown_op),
        T(test_unused_attribute_set),
        T(test_input_and_param_indices),
        T(test_input_type_differs_from_declaration),
        T(test_leaf_type_attribute_differs),
        T(test_scan_body_out_of_range),
        T(test_scan_counts_do_not_fit),
        T(test_scan_of_itself),
        T(test_scan_cycle),
        T(test_arg_out_of_range_and_twice),
        T(test_arg_never_defined),
        T(test_main_graph_has_args),
        T(test_result_type_differs_from_inferred),
        T(test_node_does_not_type_check),
        T(test_scan_checked_against_body),
        T(test_main_result_count),
        T(test_loss_must_be_scalar),
        T(test_result_id_out_of_range),
        T(test_duplicate_names),
        T(test_bad_declarations),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
