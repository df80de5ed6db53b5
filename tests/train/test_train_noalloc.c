/* Training tests: nothing allocates after NAME_new, training included.
 *
 * Each model is compiled to NAME.o + NAME.h; a C program written here for
 * it (its inputs and outputs as static arrays) is linked with the system
 * cc against libnncrt and alloc_hook.c, which interposes malloc, calloc,
 * realloc, posix_memalign, aligned_alloc, memalign and valloc.  Counting
 * starts right after NAME_new; then NAME_init, NAME_forward, NAME_backward,
 * NAME_update, three NAME_train_step, NAME_set_lr, NAME_grad and
 * NAME_param must make no allocating call.  Models: the hand-built linear
 * model with dropout, adam and clipping; the four conformance models
 * through the front end and autodiff at small sizes (one thread); and a
 * model with a 300000-element parameter whose clipping and adam step run
 * on the thread pool (two threads, no warm-up: NAME_new starts the pool's
 * workers through nnc_runtime_prepare, since creating a thread allocates
 * its TLS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "train_test.h"

#define DIR NNC_TEST_TMP "/noalloc"

/* "a, b, c": the C arrays of the model's inputs (all, or only `used`),
 * then, with outputs, the outputs. */
static void arg_list(FILE *f, const Module *m, const bool *used, bool outputs)
{
    const char *sep = "";
    for (int i = 0; i < m->inputs.len; i++)
        if (!used || used[i]) {
            fprintf(f, "%sin%d", sep, i);
            sep = ", ";
        }
    for (int r = 0; outputs && r < m->n_outputs; r++) {
        fprintf(f, "%sout%d", sep, r);
        sep = ", ";
    }
}

static const char *first_trainable(const Module *m)
{
    for (int i = 0; i < m->params.len; i++)
        if (!m->params.data[i].frozen)
            return m->params.data[i].name;
    return "";
}

static void write_arrays(FILE *f, const Module *m)
{
    const Graph *g = m->graphs.data[0];
    for (int i = 0; i < m->inputs.len; i++) {
        const Type *t = &m->inputs.data[i].type;
        bool ids = t->dtype == DT_I32;
        fprintf(f, "static %s in%d[%lld];\n", ids ? "int32_t" : "float", i,
                (long long)ir_type_numel(t));
    }
    for (int r = 0; r < m->n_outputs; r++) {
        Type t = ir_value_type(g, g->results.data[r]);
        fprintf(f, "static float out%d[%lld];\n", r,
                (long long)ir_type_numel(&t));
    }
    fprintf(f, "static void fill(void) {\n");
    for (int i = 0; i < m->inputs.len; i++) {
        const Type *t = &m->inputs.data[i].type;
        fprintf(f, "    for (long i = 0; i < %lld; i++) in%d[i] = %s;\n",
                (long long)ir_type_numel(t), i,
                t->dtype == DT_I32 ? "(int32_t)(i % 2)"
                                   : "0.25f * (float)(i % 7 - 3)");
    }
    fprintf(f, "}\n");
}

static void write_program(const Module *m, const char *path)
{
    const char *n = m->name;
    bool used[64];
    cg_forward_inputs(m, used);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "#include <math.h>\n#include <stdio.h>\n\n#include \"%s.h\"\n"
            "#include \"alloc_hook.h\"\n\n",
            n);
    write_arrays(f, m);
    fprintf(f,
            "int main(void)\n{\n"
            "    fill();\n"
            "    %s *m = %s_new();\n    if (!m) return 2;\n"
            "    alloc_hook_arm();\n    %s_init(m, 7);\n",
            n, n, n);
    fprintf(f, "    int rc = %s_forward(m, ", n);
    arg_list(f, m, used, true);
    fprintf(f, ");\n    float first = %s_backward(m, ", n);
    arg_list(f, m, NULL, false);
    fprintf(f,
            ");\n    %s_update(m);\n    float loss = first;\n"
            "    for (int s = 0; s < 3; s++) loss = %s_train_step(m, ",
            n, n);
    arg_list(f, m, NULL, false);
    fprintf(f,
            ");\n    %s_set_lr(m, 1e-4f);\n"
            "    float *g = %s_grad(m, \"%s\"), *p = %s_param(m, \"%s\");\n"
            "    long calls = alloc_hook_disarm();\n"
            "    printf(\"%s: %%ld allocating calls after %s_new (forward %%d, "
            "loss %%g -> %%g)\\n\", calls, rc, first, loss);\n"
            "    alloc_hook_print(stdout);\n    %s_free(m);\n"
            "    return calls == 0 && rc == 0 && !isnan(loss) && g && p ? 0 : "
            "1;\n}\n",
            n, n, first_trainable(m), n, first_trainable(m), n, n, n);
    fclose(f);
}

/* Compiles m, writes and links its program, runs `ENV PROG ARGS`. */
static void check_module(const Module *m, const char *env, const char *args)
{
    char obj[512], hdr[512], prog[512], src[512], cmd[4096];
    snprintf(obj, sizeof obj, DIR "/%s.o", m->name);
    snprintf(hdr, sizeof hdr, DIR "/%s.h", m->name);
    snprintf(src, sizeof src, DIR "/%s_main.c", m->name);
    snprintf(prog, sizeof prog, DIR "/%s_main", m->name);
    assert_int_equal(system("mkdir -p " DIR), 0);
    CgOptions o = {.opt_level = 2};
    assert_int_equal(cg_emit_file(m, &o, CG_EMIT_OBJ, obj), 0);
    assert_int_equal(cg_write_header(m, hdr), 0);
    write_program(m, src);
    snprintf(cmd, sizeof cmd,
             "cc %s -std=c11 -Wall -Wextra -Werror -I%s -I%s -I%s %s "
             "%s/alloc_hook.c %s -o %s %s %s -lm -lpthread -ldl",
             NNC_TEST_CC_FLAGS, DIR, NNC_RUNTIME_DIR, NNC_TEST_SRC, src,
             NNC_TEST_SRC, obj, prog, NNCRT_LIB, NNC_OPENBLAS_LIB);
    fprintf(stderr, "+ %s\n", cmd);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s %s %s", env, prog, args);
    fprintf(stderr, "+ %s\n", cmd);
    assert_int_equal(system(cmd), 0);
}

static void test_linear_dropout(void **state)
{
    TB t = lin_model(
        "lin_na", spec_adam(OPT_ADAM, 0.01, 0.9, 0.999, 1e-8, 0.01, 0.5), 0.3);
    check_module(t.m, "NNC_NUM_THREADS=1", "");
    arena_free(t.arena);
}

static void check_conformance(const char *file, const char *defines)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.nn", NNC_CONFORMANCE_DIR, file);
    char *src = read_text_file(path);
    Arena *a = arena_new();
    Module *m = nn_compile(a, path, src, defines, false);
    check_module(m, "NNC_NUM_THREADS=1", "");
    arena_free(a);
    free(src);
}

static void test_conformance_models(void **state)
{
    check_conformance("mlp", "B=4 IN=16 H=32");
    check_conformance("rnn", "B=3 T=5 V=12 E=8 H=16");
    check_conformance("lstm", "B=3 T=6 V=12 E=8 H=16");
    check_conformance("gpt", "B=2 T=8 V=16 C=16 L=2 NH=2");
}

static void test_pool(void **state)
{
    TB t = wide_model("wide_na", 300000,
                      spec_adam(OPT_ADAMW, 0.01, 0.9, 0.999, 1e-8, 0.1, 1.0));
    check_module(t.m, "NNC_NUM_THREADS=2", "");
    arena_free(t.arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_dropout),
        cmocka_unit_test(test_conformance_models),
        cmocka_unit_test(test_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
