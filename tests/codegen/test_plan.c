/* Tests of the workspace's memory plan (codegen/plan.c) and its verifier
 * (codegen/plan_verify.c):
 *
 *  - the four conformance models, at their own sizes and at small ones,
 *    with the training API and with --no-train: the plan verifies, and the
 *    planned workspace is strictly smaller than one slot per value (both
 *    printed);
 *  - elementwise ops write over operands that die there, and only then;
 *  - a scan's body values live within one step, its carries and stacked
 *    outputs across the loop;
 *  - hand-built plans: an overlap of two live buffers, a buffer outside
 *    the workspace and a misaligned one are internal errors (exit 70,
 *    run in a child process), while disjoint lifetimes, and an in-place
 *    result meeting its operand only where the operand dies, may share;
 *  - the generated header states the planned workspace.
 * That the planned code computes the same numbers is checked by every
 * other codegen, training and end-to-end test, which run through it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cg_test.h"
#include "codegen/plan.h"
#include "frontend/frontend.h"
#include "passes/pass.h"

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    assert_int_equal(fread(s, 1, (size_t)len, f), (size_t)len);
    s[len] = 0;
    fclose(f);
    return s;
}

/* Front end with "NAME=INT ..." overrides, then the pass pipeline
 * (autodiff unless no_train). */
static Module *compile_nn(Arena *a, const char *model, const char *defines,
                          bool no_train)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.nn", NNC_CONFORMANCE_DIR, model);
    char *src = read_file(path);
    Module *m = cg_test_compile(a, path, src, defines, no_train);
    free(src);
    return m;
}

static void check_model(const char *model, const char *defines)
{
    for (int no_train = 0; no_train < 2; no_train++) {
        Arena *a = arena_new();
        Module *m = compile_nn(a, model, defines, no_train);
        assert_int_equal(cg_has_train(m), !no_train);
        CgPlan *p = cg_plan_new(a, m);
        cg_plan_verify(p);
        printf("plan %-5s %-36s %-10s workspace %10lld bytes, one slot per "
               "value %10lld bytes (%.1f%%)\n",
               model, defines[0] ? defines : "(own sizes)",
               no_train ? "no-train" : "training", (long long)p->workspace,
               (long long)p->unplanned,
               100.0 * (double)p->workspace / (double)p->unplanned);
        assert_true(p->workspace > 0);
        assert_true(p->workspace < p->unplanned);
        arena_free(a);
    }
}

static void test_mlp(void **state)
{
    (void)state;
    check_model("mlp", "");
    check_model("mlp", "B=4 IN=16 H=32");
}

static void test_rnn(void **state)
{
    (void)state;
    check_model("rnn", "");
    check_model("rnn", "B=3 T=5 V=12 E=8 H=16");
}

static void test_lstm(void **state)
{
    (void)state;
    check_model("lstm", "");
    check_model("lstm", "B=3 T=6 V=12 E=8 H=16");
}

static void test_gpt(void **state)
{
    (void)state;
    check_model("gpt", "");
    check_model("gpt", "B=2 T=8 V=16 C=16 L=2 NH=2");
}

static const CgBuffer *buffer_of(const CgPlan *p, int graph, Value v)
{
    for (int b = 0; b < p->n_bufs; b++)
        if (p->bufs[b].graph == graph && !p->bufs[b].scratch &&
            p->bufs[b].index == (int)v.id)
            return &p->bufs[b];
    fail_msg("value %%%u has no buffer", v.id);
    return NULL;
}

/* x -> relu -> exp -> neg -> tanh -> out, 4 KiB each: every op may write
 * over its operand, which dies there, so the workspace is one slot, not
 * four. */
static void test_chain_in_place(void **state)
{
    (void)state;
    TB t = tb_new("chain");
    Value x = tb_input(&t, "x", F32(1024));
    Value a = tb_op1(&t, OP_RELU, x), b = tb_op1(&t, OP_EXP, a);
    Value c = tb_op1(&t, OP_NEG, b), d = tb_op1(&t, OP_TANH, c);
    tb_output(&t, d, "y");
    CgPlan *p = cg_plan_new(t.arena, t.m);
    cg_plan_verify(p);
    assert_int_equal(p->unplanned, 4 * 4096);
    assert_int_equal(p->workspace, 4096);
    const CgBuffer *ba = buffer_of(p, 0, a), *bb = buffer_of(p, 0, b);
    const CgBuffer *bc = buffer_of(p, 0, c), *bd = buffer_of(p, 0, d);
    assert_int_equal(ba->inplace_of, -1); /* x is the caller's */
    assert_ptr_equal(&p->bufs[bb->inplace_of], ba);
    assert_ptr_equal(&p->bufs[bc->inplace_of], bb);
    assert_ptr_equal(&p->bufs[bd->inplace_of], bc);
    /* d is copied out after the last node: live past it. */
    assert_int_equal(bd->n_iv, 1);
    assert_int_equal(bd->iv[0].hi, p->n_ticks - 1);
    arena_free(t.arena);
}

/* plan.c's example: outputs %3 and %4 of relu -> exp -> neg and relu ->
 * log.  relu's result is live at exp, so exp gets other bytes; neg writes
 * over exp's result and log over relu's: two slots, not four. */
static void test_doc_example(void **state)
{
    (void)state;
    TB t = tb_new("doc");
    Value x = tb_input(&t, "x", F32(1024));
    Value a = tb_op1(&t, OP_RELU, x), b = tb_op1(&t, OP_EXP, a);
    Value c = tb_op1(&t, OP_NEG, b), d = tb_op1(&t, OP_LOG, a);
    tb_output(&t, c, "c");
    tb_output(&t, d, "d");
    CgPlan *p = cg_plan_new(t.arena, t.m);
    cg_plan_verify(p);
    const CgBuffer *ba = buffer_of(p, 0, a), *bb = buffer_of(p, 0, b);
    const CgBuffer *bc = buffer_of(p, 0, c), *bd = buffer_of(p, 0, d);
    int32_t t0 = ba->iv[0].lo; /* relu's tick (the input node's is before) */
    assert_int_equal(ba->iv[0].hi, t0 + 3);
    assert_int_equal(bb->iv[0].lo, t0 + 1);
    assert_int_equal(bb->iv[0].hi, t0 + 2);
    assert_int_equal(bc->iv[0].lo, t0 + 2);
    assert_int_equal(bc->iv[0].hi, t0 + 4);
    assert_int_equal(bd->iv[0].lo, t0 + 3);
    assert_int_equal(bd->iv[0].hi, t0 + 4);
    assert_int_equal(bb->inplace_of, -1);
    assert_ptr_equal(&p->bufs[bc->inplace_of], bb);
    assert_ptr_equal(&p->bufs[bd->inplace_of], ba);
    assert_int_equal(p->workspace, 2 * 4096);
    arena_free(t.arena);
}

/* a = relu x; b = exp a; c = a * b; d = a[4] + m[8, 4]: a is still live
 * at b, so b gets its own bytes; c may overwrite a (dying there); d has
 * more elements than its operand c, so not in place; no two slots live
 * together share a byte. */
static void test_in_place_only_when_legal(void **state)
{
    (void)state;
    TB t = tb_new("legal");
    Value x = tb_input(&t, "x", F32(4));
    Value m = tb_input(&t, "m", F32(8, 4));
    Value a = tb_op1(&t, OP_RELU, x), b = tb_op1(&t, OP_EXP, a);
    Value c = tb_op2(&t, OP_MUL, a, b), d = tb_op2(&t, OP_ADD, c, m);
    tb_output(&t, d, "y");
    CgPlan *p = cg_plan_new(t.arena, t.m);
    cg_plan_verify(p);
    const CgBuffer *ba = buffer_of(p, 0, a), *bb = buffer_of(p, 0, b);
    const CgBuffer *bc = buffer_of(p, 0, c), *bd = buffer_of(p, 0, d);
    assert_int_equal(bb->inplace_of, -1);
    assert_true(ba->off != bb->off);
    assert_ptr_equal(&p->bufs[bc->inplace_of], ba);
    assert_int_equal(bc->off, ba->off);
    assert_int_equal(bd->inplace_of, -1);
    assert_true(bd->off >= bc->off + bc->bytes ||
                bc->off >= bd->off + bd->bytes);
    arena_free(t.arena);
}

/* A scan with one carry and one stacked output: the body's values live
 * inside the scan's ticks; the carry buffers and the stack span them. */
static void test_scan_lifetimes(void **state)
{
    (void)state;
    TB t = tb_new("scan");
    Value h0 = tb_input(&t, "h0", F32(2, 8));
    Value xs = tb_input(&t, "xs", F32(5, 2, 8));
    Graph *main = t.g;
    Graph *body = ir_graph_new(t.m, "body");
    t.g = body;
    Value h = tb_arg(&t, 0, F32(2, 8)), xt = tb_arg(&t, 1, F32(2, 8));
    Value s1 = tb_op2(&t, OP_ADD, h, xt);
    Value s2 = tb_op1(&t, OP_TANH, s1);
    Value s3 = tb_op1(&t, OP_EXP, s2);
    ir_add_result(t.m, body, s2, "h");
    ir_add_result(t.m, body, s3, "y");
    t.g = main;
    Value outs[2];
    Value in[2] = {h0, xs};
    Attrs at = {.graph = body->id, .n_carry = 1, .n_over = 1};
    tb_add(&t, OP_SCAN, &at, 2, in, outs);
    Value y = tb_op1(&t, OP_NEG, outs[1]);
    tb_output(&t, y, "y");
    tb_output(&t, outs[0], "h");
    CgPlan *p = cg_plan_new(t.arena, t.m);
    cg_plan_verify(p);
    const CgBuffer *stack = buffer_of(p, 0, outs[1]), *carries = NULL;
    for (int b = 0; b < p->n_bufs; b++)
        if (p->bufs[b].scratch && p->bufs[b].graph == 0)
            carries = &p->bufs[b];
    assert_non_null(carries);
    const CgBuffer *tmp = buffer_of(p, body->id, s1);
    assert_int_equal(tmp->n_iv, 1);
    /* The body's temporaries lie strictly inside the scan. */
    assert_true(stack->iv[0].lo < tmp->iv[0].lo);
    assert_true(tmp->iv[0].hi < stack->iv[0].hi);
    assert_true(carries->iv[0].lo < tmp->iv[0].lo);
    /* The final carry is an output: its buffers live to the end. */
    assert_int_equal(carries->iv[0].hi, p->n_ticks - 1);
    /* tanh writes over s1, which dies there; s2 is a result of the body,
     * live to the end of the step, so exp gets its own bytes. */
    const CgBuffer *b2 = buffer_of(p, body->id, s2);
    assert_ptr_equal(&p->bufs[b2->inplace_of], tmp);
    assert_int_equal(b2->off, tmp->off);
    assert_int_equal(buffer_of(p, body->id, s3)->inplace_of, -1);
    assert_true(buffer_of(p, body->id, s3)->off != tmp->off);
    arena_free(t.arena);
}

/* Runs cg_plan_verify in a child; its exit status (0: accepted). */
static int verify_in_child(const CgPlan *p)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        cg_plan_verify(p);
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static CgInterval iv01[] = {{0, 2}}, iv13[] = {{1, 3}}, iv23[] = {{2, 3}},
                  iv33[] = {{3, 3}};

static CgPlan two_buffers(CgInterval *ia, int64_t off_a, CgInterval *ib,
                          int64_t off_b, CgBuffer *bufs)
{
    bufs[0] = (CgBuffer){.graph = 0, .index = 1, .bytes = 128, .off = off_a,
                         .iv = ia, .n_iv = 1, .inplace_of = -1};
    bufs[1] = (CgBuffer){.graph = 0, .index = 2, .bytes = 128, .off = off_b,
                         .iv = ib, .n_iv = 1, .inplace_of = -1};
    return (CgPlan){.bufs = bufs, .n_bufs = 2, .n_ticks = 4, .workspace = 256};
}

static void test_verifier_rejects_bad_plans(void **state)
{
    (void)state;
    CgBuffer bufs[2];
    /* Live together at ticks 1..2, overlapping bytes 64..127. */
    CgPlan p = two_buffers(iv01, 0, iv13, 64, bufs);
    assert_int_equal(verify_in_child(&p), 70);
    /* Same lifetimes, disjoint bytes: fine. */
    p = two_buffers(iv01, 0, iv13, 128, bufs);
    assert_int_equal(verify_in_child(&p), 0);
    /* Same bytes, lifetimes that never meet: fine. */
    p = two_buffers(iv01, 0, iv33, 0, bufs);
    assert_int_equal(verify_in_child(&p), 0);
    /* Past the end of the workspace. */
    p = two_buffers(iv01, 0, iv13, 192, bufs);
    assert_int_equal(verify_in_child(&p), 70);
    /* Not 64-byte aligned. */
    p = two_buffers(iv01, 0, iv33, 32, bufs);
    assert_int_equal(verify_in_child(&p), 70);
    /* Live but never placed. */
    p = two_buffers(iv01, 0, iv13, -1, bufs);
    assert_int_equal(verify_in_child(&p), 70);
    /* In place: the result born at tick 2, where its operand dies. */
    p = two_buffers(iv01, 0, iv23, 0, bufs);
    bufs[1].inplace_of = 0;
    assert_int_equal(verify_in_child(&p), 0);
    /* Claimed in place, but the operand is still live after tick 1. */
    p = two_buffers(iv01, 0, iv13, 0, bufs);
    bufs[1].inplace_of = 0;
    assert_int_equal(verify_in_child(&p), 70);
    /* Not claimed in place: meeting at one tick is an overlap. */
    p = two_buffers(iv01, 0, iv23, 0, bufs);
    assert_int_equal(verify_in_child(&p), 70);
}

static void test_header_states_workspace(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Module *m = compile_nn(a, "mlp", "B=4 IN=16 H=32", false);
    CgPlan *p = cg_plan_new(a, m);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cg_print_header(f, m);
    fclose(f);
    char want[128];
    snprintf(want, sizeof want, "workspace %lld (planned by liveness",
             (long long)p->workspace);
    assert_non_null(strstr(text, want));
    free(text);
    f = open_memstream(&text, &len);
    cg_print_stats(f, m);
    fclose(f);
    snprintf(want, sizeof want, "workspace        %lld (peak",
             (long long)p->workspace);
    assert_non_null(strstr(text, want));
    free(text);
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_in_place),
        cmocka_unit_test(test_in_place_only_when_legal),
        cmocka_unit_test(test_doc_example),
        cmocka_unit_test(test_scan_lifetimes),
        cmocka_unit_test(test_verifier_rejects_bad_plans),
        cmocka_unit_test(test_header_states_workspace),
        cmocka_unit_test(test_mlp),
        cmocka_unit_test(test_rnn),
        cmocka_unit_test(test_lstm),
        cmocka_unit_test(test_gpt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
