/* Codegen tests: the four conformance models end to end against PyTorch.
 * Each is compiled from its .nn file (front end, small -D sizes), JIT-
 * compiled, initialised from a seed, run on random inputs; parameters,
 * inputs and outputs go to safetensors files, torch_models.py recomputes
 * the outputs in float64 from the same files, and every output must agree
 * to a relative L2 error of 1e-4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "cg_test.h"
#include "frontend/frontend.h"

#define MAX_T 8

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc(*len + 1);
    assert_int_equal(fread(s, 1, *len, f), *len);
    s[*len] = 0;
    fclose(f);
    return s;
}

typedef struct Run {
    const char *model;
    const char *defines; /* "B=4 IN=16 ..." */
    CgJit *jit;
    void *inst;
    const nnc_model_info *info;
} Run;

static Module *compile_model(Arena *a, const char *path, const char *defines)
{
    DimOverride ov[8];
    int n = cg_test_overrides(a, defines, ov, 8);
    size_t len;
    char *src = read_text(path, &len);
    Diag d;
    diag_init(&d, path, src, len);
    Module *m = fe_compile(a, src, len, "model", ov, n, &d);
    free(src);
    assert_non_null(m);
    char err[512];
    if (!ir_verify_module(m, err, sizeof err))
        fprintf(stderr, "%s\n", err);
    assert_true(ir_verify_module(m, err, sizeof err));
    return m;
}

static void *sym(CgJit *j, const Module *m, const char *suffix)
{
    char name[256];
    snprintf(name, sizeof name, "%s_%s", m->name, suffix);
    void *p = cg_jit_lookup(j, name);
    assert_non_null(p);
    return p;
}

static double rel_l2(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* Random inputs in [-1, 1); ids in 0..9 (every small config has >= 10
 * classes and tokens). */
static void make_inputs(const Module *m, const bool *used, void **bufs,
                        nnc_tensor_info *ti, int *n)
{
    *n = 0;
    for (int i = 0; i < m->inputs.len; i++) {
        if (!used[i])
            continue;
        const InputDecl *in = &m->inputs.data[i];
        int64_t cnt = ir_type_numel(&in->type);
        void *buf = malloc((size_t)cnt * 4);
        if (in->type.dtype == DT_I32)
            for (int64_t k = 0; k < cnt; k++)
                ((int32_t *)buf)[k] = (int32_t)((k * 7 + 3 * i + 1) % 10);
        else
            fill(buf, cnt, -1, 1, 100 + (unsigned)i);
        nnc_tensor_info t = {.name = in->name,
                             .role = NNC_ROLE_INPUT,
                             .dtype =
                                 in->type.dtype == DT_I32 ? NNC_I32 : NNC_F32,
                             .rank = in->type.rank,
                             .param = -1,
                             .numel = cnt,
                             .offset = -1};
        for (int k = 0; k < in->type.rank; k++)
            t.shape[k] = in->type.dims[k];
        ti[*n] = t;
        bufs[(*n)++] = buf;
    }
}

static void check_model(const char *file, const char *defines)
{
    Arena *a = arena_new();
    char path[512], params[512], inputs[512], outputs[512], cmd[4096];
    snprintf(path, sizeof path, "%s/%s.nn", NNC_CONFORMANCE_DIR, file);
    Module *m = compile_model(a, path, defines);
    CgOptions o = {.opt_level = 2};
    CgJit *j = cg_jit_new(m, &o);
    assert_non_null(j);
    void *(*mk)(void) = (void *(*)(void))sym(j, m, "new");
    void (*init)(void *, uint64_t) =
        (void (*)(void *, uint64_t))sym(j, m, "init");
    int (*save)(void *, const char *) =
        (int (*)(void *, const char *))sym(j, m, "save");
    CgForwardArgv fwd = (CgForwardArgv)sym(j, m, "forward_argv");
    void *inst = mk();
    init(inst, 7);
    snprintf(params, sizeof params, "%s/%s_params.safetensors", NNC_TEST_TMP,
             file);
    snprintf(inputs, sizeof inputs, "%s/%s_inputs.safetensors", NNC_TEST_TMP,
             file);
    snprintf(outputs, sizeof outputs, "%s/%s_ref.safetensors", NNC_TEST_TMP,
             file);
    assert_int_equal(save(inst, params), 0);
    bool used[16];
    cg_forward_inputs(m, used);
    void *args[32];
    nnc_tensor_info ti[16], to[8];
    int n_in;
    make_inputs(m, used, args, ti, &n_in);
    assert_int_equal(
        nnc_st_save_tensors(inputs, n_in, ti, (const void *const *)args), 0);
    const Graph *g = m->graphs.data[0];
    float *got[8], *want[8];
    for (int r = 0; r < m->n_outputs; r++) {
        Type t = ir_value_type(g, g->results.data[r]);
        to[r] = (nnc_tensor_info){.name = g->result_names.data[r],
                                  .dtype = NNC_F32,
                                  .rank = t.rank,
                                  .numel = ir_type_numel(&t)};
        for (int k = 0; k < t.rank; k++)
            to[r].shape[k] = t.dims[k];
        got[r] = malloc((size_t)to[r].numel * 4);
        want[r] = malloc((size_t)to[r].numel * 4);
        args[n_in + r] = got[r];
    }
    assert_int_equal(fwd(inst, args), 0);
    char dflags[256] = "";
    for (const char *p = defines; *p;) {
        size_t k = strcspn(p, " ");
        snprintf(dflags + strlen(dflags), sizeof dflags - strlen(dflags),
                 " -D %.*s", (int)k, p);
        p += k + (p[k] == ' ');
    }
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/torch_models.py %s %s %s %s%s", NNC_TEST_SRC,
             path, params, inputs, outputs, dflags);
    fprintf(stderr, "+ %s\n", cmd);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(
        nnc_st_load_exact(outputs, m->n_outputs, to, (void *const *)want), 0);
    for (int r = 0; r < m->n_outputs; r++) {
        double e = rel_l2(got[r], want[r], to[r].numel);
        fprintf(stderr, "%s: %s relative L2 error %.3g\n", file, to[r].name, e);
        assert_true(e <= 1e-4);
        free(got[r]);
        free(want[r]);
    }
    for (int i = 0; i < n_in; i++)
        free(args[i]);
    void (*fr)(void *) = (void (*)(void *))sym(j, m, "free");
    fr(inst);
    cg_jit_free(j);
    arena_free(a);
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
