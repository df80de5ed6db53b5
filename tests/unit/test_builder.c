/* test_builder.c — the graph builder (ir/graph.c): modules, graphs, value
 * ids, ir_add (which types every node with the shape rules of shape.c) and
 * ir_add_typed (which takes the types it is given).
 *
 * Each test builds a small graph and checks the ids handed out, the types
 * and definitions recorded per value, the results and their names, and that
 * a refused node leaves the graph untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "ir/ir.h"

static Arena *arena;
static Module *mod;
static Graph *g;
static char err[256];

static Type f32(int rank, int64_t d0, int64_t d1)
{
    int64_t d[2] = {d0, d1};
    return ir_type_make(DT_F32, rank, d);
}

static const char *type_text(Type t)
{
    static char buf[128];
    return ir_type_str(&t, buf, sizeof buf);
}

/* Module t: input x : f32[2, 3], param W : f32[3, 4]; main graph empty. */
static int setup(void **state)
{
    (void)state;
    arena = arena_new();
    mod = ir_module_new(arena, "t");
    vec_push(arena, &mod->inputs, ((InputDecl){"x", f32(2, 2, 3)}));
    vec_push(arena, &mod->params,
             ((ParamDecl){.name = "W", .type = f32(2, 3, 4)}));
    g = ir_graph_new(mod, "main");
    err[0] = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(arena);
    return 0;
}

static Value add_leaf(Graph *gr, Op op, int index, Type t)
{
    Attrs a = {.index = index, .type = t};
    Value v =
        ir_add(mod, gr, op, NULL, 0, &a, (SrcLoc){1, 1}, NULL, err, sizeof err);
    assert_int_not_equal(v.id, 0);
    return v;
}

static Value add1(Op op, Value a, const Attrs *attr)
{
    return ir_add(mod, g, op, &a, 1, attr, (SrcLoc){2, 1}, NULL, err,
                  sizeof err);
}

static Value add2(Op op, Value a, Value b)
{
    Value in[2] = {a, b};
    return ir_add(mod, g, op, in, 2, NULL, (SrcLoc){3, 5}, NULL, err,
                  sizeof err);
}

static void test_new_module_and_graphs(void **state)
{
    (void)state;
    assert_string_equal(mod->name, "t");
    assert_int_equal(mod->graphs.len, 1);
    assert_ptr_equal(mod->graphs.data[0], g);
    assert_int_equal(g->id, 0);
    assert_string_equal(g->name, "main");
    assert_int_equal(g->nodes.len, 0);
    assert_int_equal(g->values.len, 1); /* id 0 is "none" */
    assert_int_equal(g->values.data[0].def, -1);
    Graph *body = ir_graph_new(mod, "body");
    assert_int_equal(body->id, 1);
    assert_int_equal(mod->graphs.len, 2);
    assert_ptr_equal(body->arena, arena);
    assert_int_equal(body->n_args, 0);
}

/* Ids are handed out densely from 1, in definition order; every value
 * records its node, result index and type. */
static void test_ids_types_and_defs(void **state)
{
    (void)state;
    Value x = add_leaf(g, OP_INPUT, 0, f32(2, 2, 3));
    Value w = add_leaf(g, OP_PARAM, 0, f32(2, 3, 4));
    Value y = add2(OP_MATMUL, x, w);
    Value r = add1(OP_RELU, y, NULL);
    assert_int_equal(x.id, 1);
    assert_int_equal(w.id, 2);
    assert_int_equal(y.id, 3);
    assert_int_equal(r.id, 4);
    assert_int_equal(g->nodes.len, 4);
    assert_int_equal(g->values.len, 5);
    assert_string_equal(type_text(ir_value_type(g, y)), "f32[2, 4]");
    assert_string_equal(type_text(ir_value_type(g, r)), "f32[2, 4]");
    Node *n = ir_def(g, y);
    assert_ptr_equal(n, &g->nodes.data[2]);
    assert_int_equal(n->op, OP_MATMUL);
    assert_int_equal(n->n_in, 2);
    assert_int_equal(n->in[0].id, x.id);
    assert_int_equal(n->in[1].id, w.id);
    assert_int_equal(n->n_out, 1);
    assert_int_equal(n->out[0].id, y.id);
    assert_int_equal(n->loc.line, 3);
    assert_int_equal(n->loc.col, 5);
    ValueInfo *vi = ir_value(g, r);
    assert_int_equal(vi->def, 3);
    assert_int_equal(vi->result, 0);
    assert_null(vi->name);
}

/* A node the shape rules refuse is not added, and err says why. */
static void test_refused_node_changes_nothing(void **state)
{
    (void)state;
    Value x = add_leaf(g, OP_INPUT, 0, f32(2, 2, 3));
    int32_t nodes = g->nodes.len, values = g->values.len;
    Value bad = add2(OP_MATMUL, x, x);
    assert_int_equal(bad.id, 0);
    assert_string_equal(
        err,
        "matmul of f32[2, 3] and f32[2, 3]: inner dimensions 3 and 2 differ");
    assert_int_equal(g->nodes.len, nodes);
    assert_int_equal(g->values.len, values);
    Value many[65];
    for (int i = 0; i < 65; i++)
        many[i] = x;
    Attrs cat = {.axis = 0};
    Value big = ir_add(mod, g, OP_CONCAT, many, 65, &cat, (SrcLoc){0}, NULL,
                       err, sizeof err);
    assert_int_equal(big.id, 0);
    assert_string_equal(err, "concat takes at most 64 operands, not 65");
    assert_int_equal(g->nodes.len, nodes);
}

/* ir_add stores the attributes as the rule normalised them. */
static void test_attributes_are_normalised(void **state)
{
    (void)state;
    Value x = add_leaf(g, OP_INPUT, 0, f32(2, 2, 3));
    Attrs sm = {.axis = -1};
    Value s = add1(OP_SOFTMAX, x, &sm);
    assert_int_equal(ir_def(g, s)->attr.axis, 1);
    Attrs all = {.axes = 0, .keepdims = true};
    Value m = add1(OP_SUM, x, &all);
    assert_int_equal(ir_def(g, m)->attr.axes, 3u);
    assert_string_equal(type_text(ir_value_type(g, m)), "f32[1, 1]");
    Attrs rs = {.type = f32(2, 3, -1)};
    Value r = add1(OP_RESHAPE, x, &rs);
    assert_string_equal(type_text(ir_value_type(g, r)), "f32[3, 2]");
    assert_string_equal(type_text(ir_def(g, r)->attr.type), "f32[3, 2]");
}

/* ir_add_typed takes the given types without checking, returns the node
 * index and numbers several results consecutively. */
static void test_add_typed(void **state)
{
    (void)state;
    Value x = add_leaf(g, OP_INPUT, 0, f32(2, 2, 3));
    Type types[3] = {f32(1, 7, 0), f32(0, 0, 0), f32(2, 5, 5)};
    int32_t k = ir_add_typed(g, OP_SCAN, &x, 1, NULL, (SrcLoc){9, 2}, types, 3);
    assert_int_equal(k, 1);
    Node *n = &g->nodes.data[k];
    assert_int_equal(n->n_out, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(n->out[i].id, x.id + 1 + (uint32_t)i);
        assert_int_equal(ir_value(g, n->out[i])->def, k);
        assert_int_equal(ir_value(g, n->out[i])->result, i);
        assert_true(ir_type_eq(&g->values.data[n->out[i].id].type, &types[i]));
    }
    assert_int_equal(n->attr.graph, 0); /* NULL attrs: all zero */
    int32_t leaf =
        ir_add_typed(g, OP_CONST, NULL, 0, NULL, (SrcLoc){0}, types, 1);
    assert_int_equal(g->nodes.data[leaf].n_in, 0);
    assert_non_null(g->nodes.data[leaf].in); /* never NULL, even when empty */
}

/* A scan through ir_add: every result comes back in outs. */
static void test_scan_results_in_outs(void **state)
{
    (void)state;
    Graph *body = ir_graph_new(mod, "step");
    body->n_args = 2;
    Value h = add_leaf(body, OP_ARG, 0, f32(1, 3, 0));
    Value xt = add_leaf(body, OP_ARG, 1, f32(1, 3, 0));
    Value in[2] = {h, xt};
    Value s = ir_add(mod, body, OP_ADD, in, 2, NULL, (SrcLoc){0}, NULL, err,
                     sizeof err);
    ir_add_result(mod, body, s, NULL);
    ir_add_result(mod, body, s, "out");
    Value x = add_leaf(g, OP_INPUT, 0, f32(2, 2, 3));
    Attrs zero = {.type = f32(1, 3, 0)};
    Value h0 = ir_add(mod, g, OP_CONST, NULL, 0, &zero, (SrcLoc){0}, NULL, err,
                      sizeof err);
    Value ops[2] = {h0, x}, outs[2];
    Attrs sa = {.graph = body->id, .n_carry = 1, .n_over = 1};
    Value first = ir_add(mod, g, OP_SCAN, ops, 2, &sa, (SrcLoc){0}, outs, err,
                         sizeof err);
    assert_int_not_equal(first.id, 0);
    assert_int_equal(outs[0].id, first.id);
    assert_int_equal(outs[1].id, first.id + 1);
    assert_string_equal(type_text(ir_value_type(g, outs[0])), "f32[3]");
    assert_string_equal(type_text(ir_value_type(g, outs[1])), "f32[2, 3]");
    assert_int_equal(ir_def(g, outs[1])->n_out, 2);
    assert_string_equal(body->result_names.data[1], "out");
    assert_null(body->result_names.data[0]);
}

static void test_results_and_names(void **state)
{
    (void)state;
    Value x = add_leaf(g, OP_INPUT, 0, f32(2, 2, 3));
    Value e = add1(OP_EXP, x, NULL);
    char name[8] = "logits";
    ir_add_result(mod, g, e, name);
    ir_add_result(mod, g, x, NULL);
    name[0] = 'X'; /* the builder keeps its own copy */
    assert_int_equal(g->results.len, 2);
    assert_int_equal(g->result_names.len, 2);
    assert_int_equal(g->results.data[0].id, e.id);
    assert_string_equal(g->result_names.data[0], "logits");
    assert_null(g->result_names.data[1]);
    char verr[256];
    mod->n_outputs = 2;
    assert_true(ir_verify_module(mod, verr, sizeof verr));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_new_module_and_graphs),
        T(test_ids_types_and_defs),
        T(test_refused_node_changes_nothing),
        T(test_attributes_are_normalised),
        T(test_add_typed),
        T(test_scan_results_in_outs),
        T(test_results_and_names),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
