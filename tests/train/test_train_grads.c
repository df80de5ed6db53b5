/* Training tests: the gradients NAME_backward computes for the four
 * conformance models equal PyTorch's.  Each model is compiled from its .nn
 * file at small -D sizes through the front end and the pass pipeline (the
 * autodiff pass adds the gradients), JIT-compiled, initialised from a seed
 * and run backward once on random inputs; torch_train.py recomputes the
 * loss and every parameter's gradient with autograd in float64 from the
 * same parameters and inputs (tests/codegen/torch_models.py's models).
 * The loss and each gradient must agree to a relative L2 error of 1e-4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "train_test.h"

#define TOL 1e-4

/* Every input: floats in [-1, 1), ids and targets in 0..9 (each small
 * configuration has at least 10 classes and tokens). */
static void make_inputs(const Module *m, void **bufs, nnc_tensor_info *ti)
{
    for (int i = 0; i < m->inputs.len; i++) {
        const InputDecl *in = &m->inputs.data[i];
        int64_t n = ir_type_numel(&in->type);
        bufs[i] = malloc((size_t)n * 4);
        if (in->type.dtype == DT_I32)
            for (int64_t k = 0; k < n; k++)
                ((int32_t *)bufs[i])[k] = (int32_t)((k * 7 + 3 * i + 1) % 10);
        else
            fill(bufs[i], n, -1, 1, 100 + (unsigned)i);
        ti[i] = f32_info(in->name, in->type.rank, in->type.dims);
        ti[i].dtype = in->type.dtype == DT_I32 ? NNC_I32 : NNC_F32;
    }
}

static void run_torch(const char *model, const char *params, const char *inputs,
                      const char *out, const char *defines)
{
    char cmd[4096], dflags[256] = "";
    for (const char *p = defines; *p;) {
        size_t k = strcspn(p, " ");
        snprintf(dflags + strlen(dflags), sizeof dflags - strlen(dflags),
                 " -D %.*s", (int)k, p);
        p += k + (p[k] == ' ');
    }
    snprintf(cmd, sizeof cmd, "%s %s/torch_train.py grads %s %s %s %s%s",
             NNC_PYTHON, NNC_TEST_SRC, model, params, inputs, out, dflags);
    fprintf(stderr, "+ %s\n", cmd);
    assert_int_equal(system(cmd), 0);
}

/* torch's loss and gradients, in parameter order, then the loss. */
static float **load_reference(const Module *m, const char *path)
{
    int n = m->params.len;
    nnc_tensor_info *ti = calloc((size_t)n + 1, sizeof *ti);
    float **want = calloc((size_t)n + 1, sizeof *want);
    for (int i = 0; i < n; i++) {
        const ParamDecl *p = &m->params.data[i];
        ti[i] = f32_info(p->name, p->type.rank, p->type.dims);
        want[i] = malloc((size_t)ti[i].numel * 4);
    }
    const int64_t one[] = {1}; /* torch_models.st_write makes it 1-D */
    ti[n] = f32_info("loss", 1, one);
    want[n] = malloc(4);
    int rc = nnc_st_load_exact(path, n + 1, ti, (void *const *)want);
    if (rc)
        fprintf(stderr, "%s\n", nnc_last_error());
    assert_int_equal(rc, 0);
    free(ti);
    return want;
}

static void check_model(const char *file, const char *defines)
{
    char path[512], params[512], inputs[512], ref[512];
    snprintf(path, sizeof path, "%s/%s.nn", NNC_CONFORMANCE_DIR, file);
    snprintf(params, sizeof params, NNC_TEST_TMP "/grads_%s_params.safetensors",
             file);
    snprintf(inputs, sizeof inputs, NNC_TEST_TMP "/grads_%s_inputs.safetensors",
             file);
    snprintf(ref, sizeof ref, NNC_TEST_TMP "/grads_%s_ref.safetensors", file);
    char *src = read_text_file(path);
    Arena *ar = arena_new();
    Module *m = nn_compile(ar, path, src, defines, false);
    assert_int_equal(m->n_grads, m->params.len);
    CgJit *j = jit_module(m);
    Api a = api_get(j, m);
    int (*save)(void *, const char *) =
        (int (*)(void *, const char *))api_sym(j, m, "save");
    void *inst = a.new_();
    a.init(inst, 7);
    assert_int_equal(save(inst, params), 0);
    void *bufs[16];
    nnc_tensor_info ti[16];
    make_inputs(m, bufs, ti);
    assert_int_equal(nnc_st_save_tensors(inputs, m->inputs.len, ti,
                                         (const void *const *)bufs),
                     0);
    float loss = a.backward(inst, bufs);
    run_torch(path, params, inputs, ref, defines);
    float **want = load_reference(m, ref);
    int n = m->params.len;
    double e = rel_l2(&loss, want[n], 1), worst = e;
    fprintf(stderr, "%s: loss %.7g, torch %.7g, relative error %.2e\n", file,
            loss, want[n][0], e);
    for (int i = 0; i < n; i++) {
        const ParamDecl *p = &m->params.data[i];
        double ei =
            rel_l2(a.grad(inst, p->name), want[i], ir_type_numel(&p->type));
        fprintf(stderr, "%s: grad %-6s relative L2 error %.2e\n", file, p->name,
                ei);
        worst = ei > worst ? ei : worst;
        free(want[i]);
    }
    fprintf(stderr, "%s: worst %.2e\n", file, worst);
    assert_true(worst <= TOL);
    free(want[n]);
    free(want);
    for (int i = 0; i < m->inputs.len; i++)
        free(bufs[i]);
    a.free_(inst);
    cg_jit_free(j);
    arena_free(ar);
    free(src);
}

static void test_mlp(void **state) { check_model("mlp", "B=4 IN=16 H=32"); }
static void test_rnn(void **state)
{
    check_model("rnn", "B=3 T=5 V=12 E=8 H=16");
}
static void test_lstm(void **state)
{
    check_model("lstm", "B=3 T=6 V=12 E=8 H=16");
}
static void test_gpt(void **state)
{
    check_model("gpt", "B=2 T=8 V=16 C=16 L=2 NH=2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp),
        cmocka_unit_test(test_rnn),
        cmocka_unit_test(test_lstm),
        cmocka_unit_test(test_gpt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
