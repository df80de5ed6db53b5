/* Codegen tests: the lowering table has no gap; cross-compiling to
 * aarch64 gives an AArch64 ELF object (readelf -h); assembly and LLVM IR
 * are written; and a model compiled to tiny.o + tiny.h links with a C
 * program (the system cc, libnncrt) that runs and checks the API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "cg_test.h"

static void test_every_op_lowers(void **state)
{
    for (int op = 0; op < OP_COUNT; op++) {
        if (!cg_can_lower((Op)op))
            fprintf(stderr, "no lowering for %s\n", ir_op_info[op].name);
        assert_true(cg_can_lower((Op)op));
    }
}

/* tiny: y = relu(x @ W + b) + E[ids]; the loss reads t, which forward
 * therefore does not take. */
static TB tiny_model(void)
{
    TB t = tb_new("tiny");
    Value x = tb_input(&t, "x", F32(2, 3));
    Value ids = tb_input(&t, "ids", I32(2));
    Value tg = tb_input(&t, "t", I32(2));
    Value w = tb_param(&t, "W", F32(3, 4), INIT_XAVIER_UNIFORM);
    Value b = tb_param(&t, "b", F32(4), INIT_ZEROS);
    Value e = tb_param(&t, "E", F32(5, 4), INIT_NORMAL);
    t.m->params.data[2].init.b = 0.1;
    Value h =
        tb_op1(&t, OP_RELU, tb_op2(&t, OP_ADD, tb_op2(&t, OP_MATMUL, x, w), b));
    Value y = tb_op2(&t, OP_ADD, h, tb_op2(&t, OP_GATHER, e, ids));
    tb_output(&t, y, "y");
    ir_add_result(t.m, t.g, tb_op2(&t, OP_CROSS_ENTROPY, y, tg), "loss");
    t.m->train.opt = OPT_SGD;
    t.m->train.lr = 0.1;
    return t;
}

static char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", NNC_TEST_TMP, name);
    return p;
}

static int run(const char *cmd)
{
    fprintf(stderr, "+ %s\n", cmd);
    return system(cmd);
}

static void test_aarch64_object(void **state)
{
    TB t = tiny_model();
    CgOptions o = {.opt_level = 2, .triple = "aarch64-linux-gnu"};
    const char *obj = tmp_path("tiny_aarch64.o"),
               *out = tmp_path("readelf.txt");
    assert_int_equal(cg_emit_file(t.m, &o, CG_EMIT_OBJ, obj), 0);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "readelf -h %s > %s", obj, out);
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "grep -q 'Machine: *AArch64' %s", out);
    assert_int_equal(run(cmd), 0);
    o.cpu = "cortex-a72";
    assert_int_equal(
        cg_emit_file(t.m, &o, CG_EMIT_ASM, tmp_path("tiny_aarch64.s")), 0);
    snprintf(cmd, sizeof cmd, "grep -q 'tiny_forward' %s",
             tmp_path("tiny_aarch64.s"));
    assert_int_equal(run(cmd), 0);
    arena_free(t.arena);
}

static void test_bad_target(void **state)
{
    TB t = tiny_model();
    CgOptions o = {.triple = "nonsense-unknown-thing"};
    assert_int_equal(cg_emit_file(t.m, &o, CG_EMIT_OBJ, tmp_path("bad.o")), -1);
    arena_free(t.arena);
}

static void test_llvm_ir_levels(void **state)
{
    TB t = tiny_model();
    char cmd[2048];
    for (int level = 0; level <= 3; level++) {
        CgOptions o = {.opt_level = level};
        const char *ll = tmp_path("tiny.ll");
        assert_int_equal(cg_emit_file(t.m, &o, CG_EMIT_LLVM, ll), 0);
        snprintf(cmd, sizeof cmd,
                 "grep -q 'define.*i32 @tiny_forward(ptr' %s && grep -q "
                 "'^target datalayout' %s",
                 ll, ll);
        assert_int_equal(run(cmd), 0);
    }
    arena_free(t.arena);
}

/* The generated header compiles on its own as C99 and as C++. */
static void test_header_compiles(void **state)
{
    TB t = tiny_model();
    const char *h = tmp_path("tiny.h");
    assert_int_equal(cg_write_header(t.m, h), 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "grep -q 'int tiny_forward(tiny \\*m, const float \\*x, const "
             "int32_t \\*ids, float \\*y);' %s",
             h);
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "echo '#include \"tiny.h\"' | cc -std=c99 -pedantic -Wall -Wextra "
             "-Werror "
             "-fsyntax-only -I%s -I%s -x c - && echo '#include \"tiny.h\"' | "
             "c++ -Wall "
             "-Werror -fsyntax-only -I%s -I%s -x c++ -",
             NNC_TEST_TMP, NNC_RUNTIME_DIR, NNC_TEST_TMP, NNC_RUNTIME_DIR);
    assert_int_equal(run(cmd), 0);
    arena_free(t.arena);
}

static void test_link_and_run(void **state)
{
    TB t = tiny_model();
    CgOptions o = {.opt_level = 2};
    assert_int_equal(cg_emit_file(t.m, &o, CG_EMIT_OBJ, tmp_path("tiny.o")), 0);
    assert_int_equal(cg_write_header(t.m, tmp_path("tiny.h")), 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cc %s -std=c99 -Wall -Werror -I%s -I%s %s/link_main.c %s -o %s "
             "%s %s -lm -lpthread",
             NNC_TEST_CC_FLAGS, NNC_TEST_TMP, NNC_RUNTIME_DIR, NNC_TEST_SRC,
             tmp_path("tiny.o"), tmp_path("tiny_main"), NNCRT_LIB,
             NNC_OPENBLAS_LIB);
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s %s", tmp_path("tiny_main"),
             tmp_path("tiny_params.safetensors"));
    assert_int_equal(run(cmd), 0);
    arena_free(t.arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_lowers),
        cmocka_unit_test(test_aarch64_object),
        cmocka_unit_test(test_bad_target),
        cmocka_unit_test(test_llvm_ir_levels),
        cmocka_unit_test(test_header_compiles),
        cmocka_unit_test(test_link_and_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
