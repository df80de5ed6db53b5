/* Fusion tests on the four conformance models: fused and unfused graphs
 * give the same outputs, loss and gradients.
 *
 * Each model is compiled from its .nn file at small -D sizes twice through
 * the whole pipeline (autodiff on): with PassCtx.no_fuse and without.
 *   eval_*   the reference evaluator (double) on both main graphs, same
 *            random inputs (ids in range) and params: every result within
 *            1e-5 (normwise relative, fusion_test.h);
 *   jit_*    both modules JIT-compiled (float32): forward's outputs,
 *            backward's loss and every NAME_grad within 1e-5;
 *   ops_*    the fused module really contains the fused ops, and the
 *            unfused one none, so the numeric tests cannot pass vacuously.
 * eval_tiny repeats the evaluator check at degenerate sizes, jit_large
 * the compiled one at sizes that take the parallel code paths.  The op
 * checks are separate tests so that the numeric ones stay
 * informative while some fusion passes are missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fusion_test.h"

typedef struct Model {
    const char *file;    /* conformance/FILE.nn */
    const char *defines; /* small sizes */
} Model;

static const Model MLP = {"mlp", "B=4 IN=16 H=8"};
static const Model RNN = {"rnn", "T=5 B=3 V=11 E=6 H=8"};
static const Model LSTM = {"lstm", "T=5 B=3 V=11 E=6 H=8"};
static const Model GPT = {"gpt", "B=2 T=8 V=13 C=16 L=2 NH=2"};
/* sizes above the thresholds of the parallel code paths (32768 elements
 * for fused loops, epilogues, softmax_xent and lstm_cell; 65536 flops for
 * attention), odd so that vector loops have remainders; JIT only */
static const Model LARGE[] = {
    {"mlp", "B=300 IN=20 H=131 K=111"},
    {"rnn", "T=2 B=260 V=131 E=8 H=129"},
    {"lstm", "T=2 B=257 V=20 E=8 H=129"},
    {"gpt", "B=2 T=33 V=601 C=64 L=1 NH=2"},
};
/* degenerate sizes (one row, one step, one head, head size 1), for the
 * evaluator only */
static const Model TINY[] = {
    {"mlp", "B=1 IN=3 H=5 K=2"},
    {"rnn", "T=1 B=1 V=3 E=2 H=3"},
    {"lstm", "T=2 B=1 V=3 E=1 H=1"},
    {"gpt", "B=1 T=3 V=5 C=4 L=1 NH=1"},
    {"gpt", "B=1 T=2 V=3 C=4 L=3 NH=4"},
};

typedef struct Pair {
    Arena *a;
    Module *fused, *unfused;
    FtData data;
} Pair;

static Pair compile_pair_mode(const Model *md, bool no_train)
{
    Pair p = {.a = arena_new()};
    char path[512];
    snprintf(path, sizeof path, "%s/%s.nn", NNC_CONFORMANCE_DIR, md->file);
    char *src = ft_read_file(path);
    assert_non_null(src);
    p.unfused = ft_compile_mode(p.a, path, src, md->defines, true, no_train,
                                false);
    p.fused = ft_compile_mode(p.a, path, src, md->defines, false, no_train,
                              false);
    free(src);
    assert_non_null(p.unfused);
    assert_non_null(p.fused);
    assert_true(no_train || p.unfused->n_grads > 0);
    assert_int_equal(p.fused->n_grads, p.unfused->n_grads);
    assert_int_equal(p.fused->n_outputs, p.unfused->n_outputs);
    p.data = ft_data(p.unfused, 1234, 0.3);
    return p;
}

static Pair compile_pair(const Model *md) { return compile_pair_mode(md, false); }

static void free_pair(Pair *p)
{
    ft_data_free(&p->data);
    arena_free(p->a);
}

static void check_eval(const Model *md)
{
    Pair p = compile_pair(md);
    EvalTensor *ru = ft_eval(p.unfused, &p.data);
    EvalTensor *rf = ft_eval(p.fused, &p.data);
    assert_non_null(ru);
    assert_non_null(rf);
    assert_true(ft_all_finite(p.unfused, ru));
    char label[64];
    snprintf(label, sizeof label, "%s", md->file);
    int fails = ft_compare_eval(label, p.fused, rf, p.unfused, ru);
    int n = p.unfused->graphs.data[0]->results.len;
    ft_results_free(ru, n);
    ft_results_free(rf, p.fused->graphs.data[0]->results.len);
    free_pair(&p);
    assert_int_equal(fails, 0);
}

static void check_jit_mode(const Model *md, bool no_train)
{
    Pair p = compile_pair_mode(md, no_train);
    FtRun u, f;
    assert_true(ft_jit_run(p.unfused, &p.data, 2, &u));
    bool ok = ft_jit_run(p.fused, &p.data, 2, &f);
    if (!ok)
        fprintf(stderr, "%s: the fused module does not JIT-compile or run\n",
                md->file);
    int fails = 1;
    if (ok) {
        char label[128];
        snprintf(label, sizeof label, "%s %s%s", md->file, md->defines,
                 no_train ? " --no-train" : "");
        fprintf(stderr, "%s: fused vs unfused, worst %.3g\n", label,
                ft_jit_worst(&f, &u));
        fails = 0;
        if (!(ft_jit_worst(&f, &u) <= FT_TOL)) {
            /* the float64 reference, only when needed (large sizes) */
            EvalTensor *ref = ft_eval(p.unfused, &p.data);
            fails = ft_compare_jit(label, p.unfused, &f, &u, ref);
            ft_results_free(ref, p.unfused->graphs.data[0]->results.len);
        }
        ft_run_free(&f);
    }
    ft_run_free(&u);
    free_pair(&p);
    assert_int_equal(fails, 0);
}

static void check_jit(const Model *md) { check_jit_mode(md, false); }

/* ops[0..n) must each be in the fused module (in a scan body when
 * in_body), and no fused op in the unfused one. */
static void check_ops(const Model *md, const Op *ops, int n, bool in_body)
{
    Pair p = compile_pair(md);
    static const Op fused_ops[] = {OP_LSTM_CELL,     OP_LSTM_CELL_GRAD,
                                   OP_ATTENTION_GRAD, OP_SOFTMAX_XENT,
                                   OP_FUSED,          OP_MATMUL_EPILOGUE};
    int missing = 0;
    for (size_t i = 0; i < sizeof fused_ops / sizeof *fused_ops; i++) {
        if (ft_count_op(p.unfused, fused_ops[i])) {
            fprintf(stderr, "%s: --no-fuse module has %s\n", md->file,
                    ir_op_info[fused_ops[i]].name);
            missing++;
        }
    }
    for (int i = 0; i < n; i++) {
        bool has = in_body ? ft_scan_body_has_op(p.fused, ops[i])
                           : ft_count_op(p.fused, ops[i]) > 0;
        fprintf(stderr, "%s: %s %s%s\n", md->file, ir_op_info[ops[i]].name,
                has ? "present" : "MISSING", in_body ? " in a scan body" : "");
        missing += !has;
    }
    free_pair(&p);
    assert_int_equal(missing, 0);
}

static void test_eval_mlp(void **state) { (void)state; check_eval(&MLP); }
static void test_eval_rnn(void **state) { (void)state; check_eval(&RNN); }
static void test_eval_lstm(void **state) { (void)state; check_eval(&LSTM); }
static void test_eval_gpt(void **state) { (void)state; check_eval(&GPT); }
static void test_eval_tiny(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof TINY / sizeof *TINY; i++) {
        fprintf(stderr, "%s %s\n", TINY[i].file, TINY[i].defines);
        check_eval(&TINY[i]);
    }
}
static void test_jit_mlp(void **state) { (void)state; check_jit(&MLP); }
static void test_jit_rnn(void **state) { (void)state; check_jit(&RNN); }
static void test_jit_lstm(void **state) { (void)state; check_jit(&LSTM); }
static void test_jit_gpt(void **state) { (void)state; check_jit(&GPT); }
/* Inference only: the forward graph alone fuses differently (no backward
 * reads its intermediate values). */
static void test_jit_no_train(void **state)
{
    (void)state;
    const Model *ms[] = {&MLP, &RNN, &LSTM, &GPT};
    for (int i = 0; i < 4; i++)
        check_jit_mode(ms[i], true);
}
static void test_jit_large(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof LARGE / sizeof *LARGE; i++)
        check_jit(&LARGE[i]);
}

static void test_ops_mlp(void **state)
{
    (void)state;
    const Op ops[] = {OP_SOFTMAX_XENT, OP_MATMUL_EPILOGUE};
    check_ops(&MLP, ops, 2, false);
}

static void test_ops_rnn(void **state)
{
    (void)state;
    const Op ops[] = {OP_SOFTMAX_XENT, OP_MATMUL_EPILOGUE};
    check_ops(&RNN, ops, 2, false);
}

static void test_ops_lstm(void **state)
{
    (void)state;
    const Op body[] = {OP_LSTM_CELL, OP_LSTM_CELL_GRAD};
    check_ops(&LSTM, body, 2, true);
    const Op ops[] = {OP_SOFTMAX_XENT};
    check_ops(&LSTM, ops, 1, false);
}

static void test_ops_gpt(void **state)
{
    (void)state;
    const Op ops[] = {OP_ATTENTION, OP_ATTENTION_GRAD, OP_SOFTMAX_XENT};
    check_ops(&GPT, ops, 3, false);
    Pair p = compile_pair(&GPT);
    int n = ft_count_op(p.fused, OP_FUSED) +
            ft_count_op(p.fused, OP_MATMUL_EPILOGUE);
    fprintf(stderr, "gpt: %d fused + %d matmul_epilogue nodes\n",
            ft_count_op(p.fused, OP_FUSED),
            ft_count_op(p.fused, OP_MATMUL_EPILOGUE));
    free_pair(&p);
    assert_true(n > 0);
}

/* argv[1]: "eval", "jit" or "ops" runs that group alone (ctest registers
 * each as its own test); no argument runs all three. */
int main(int argc, char **argv)
{
    const struct CMUnitTest eval[] = {
        cmocka_unit_test(test_eval_mlp), cmocka_unit_test(test_eval_rnn),
        cmocka_unit_test(test_eval_lstm), cmocka_unit_test(test_eval_gpt),
        cmocka_unit_test(test_eval_tiny),
    };
    const struct CMUnitTest jit[] = {
        cmocka_unit_test(test_jit_mlp),  cmocka_unit_test(test_jit_rnn),
        cmocka_unit_test(test_jit_lstm), cmocka_unit_test(test_jit_gpt),
        cmocka_unit_test(test_jit_large), cmocka_unit_test(test_jit_no_train),
    };
    const struct CMUnitTest ops[] = {
        cmocka_unit_test(test_ops_mlp),  cmocka_unit_test(test_ops_rnn),
        cmocka_unit_test(test_ops_lstm), cmocka_unit_test(test_ops_gpt),
    };
    const char *which = argc > 1 ? argv[1] : "all";
    bool all = strcmp(which, "all") == 0;
    int rc = 0;
    if (all || strcmp(which, "eval") == 0)
        rc |= cmocka_run_group_tests_name("eval", eval, NULL, NULL);
    if (all || strcmp(which, "jit") == 0)
        rc |= cmocka_run_group_tests_name("jit", jit, NULL, NULL);
    if (all || strcmp(which, "ops") == 0)
        rc |= cmocka_run_group_tests_name("ops", ops, NULL, NULL);
    return rc != 0;
}
