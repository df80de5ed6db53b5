/* test_grad_torch.c — the gradients of the four conformance models equal
 * PyTorch's.
 *
 * Each model is compiled at small sizes (-D), differentiated by the
 * autodiff pass and evaluated in double precision by ir/eval.c with
 * random params and inputs.  The same params and inputs go to
 * torch_grads.py (PyTorch, float64) through safetensors files (params as
 * F64, so both sides see the same numbers); the loss and every param's
 * gradient must agree to a relative L2 error of 1e-6.  The errors are
 * printed: they are the figures the report quotes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grad_check.h"

#define TOL 1e-6

/* ---- safetensors, just what the test needs -------------------------------- */

static void write_safetensors(const char *path, const char *const *names,
                              const EvalTensor *ts, int n)
{
    char *header = calloc(1, 65536);
    size_t len = 0;
    int64_t off = 0;
    len += (size_t)snprintf(header + len, 65536 - len, "{");
    for (int i = 0; i < n; i++) {
        int64_t bytes =
            ir_type_numel(&ts[i].type) * (ts[i].type.dtype == DT_F32 ? 8 : 4);
        len += (size_t)snprintf(
            header + len, 65536 - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
            i ? "," : "", names[i], ts[i].type.dtype == DT_F32 ? "F64" : "I32");
        for (int d = 0; d < ts[i].type.rank; d++)
            len +=
                (size_t)snprintf(header + len, 65536 - len, "%s%lld",
                                 d ? "," : "", (long long)ts[i].type.dims[d]);
        len += (size_t)snprintf(header + len, 65536 - len,
                                "],\"data_offsets\":[%lld,%lld]}",
                                (long long)off, (long long)(off + bytes));
        off += bytes;
    }
    len += (size_t)snprintf(header + len, 65536 - len, "}");
    while (len % 8)
        header[len++] = ' ';
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t hl = len;
    fwrite(&hl, 8, 1, f);
    fwrite(header, 1, len, f);
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; k < ir_type_numel(&ts[i].type); k++) {
            if (ts[i].type.dtype == DT_F32) {
                fwrite(&ts[i].data[k], 8, 1, f);
            } else {
                int32_t v = (int32_t)ts[i].data[k];
                fwrite(&v, 4, 1, f);
            }
        }
    fclose(f);
    free(header);
}

typedef struct StFile {
    char *blob;
    size_t size;
    const char *header;
    const char *data;
} StFile;

static StFile read_safetensors(const char *path)
{
    StFile st = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("torch_grads.py wrote no %s", path);
    fseek(f, 0, SEEK_END);
    st.size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    st.blob = calloc(1, st.size + 1);
    assert_int_equal(fread(st.blob, 1, st.size, f), st.size);
    fclose(f);
    uint64_t hl;
    memcpy(&hl, st.blob, 8);
    st.header = st.blob + 8;
    st.data = st.blob + 8 + hl;
    return st;
}

/* The F64 tensor `name` (numel doubles, checked against the file). */
static const double *st_tensor(const StFile *st, const char *name,
                               int64_t numel)
{
    char key[256];
    snprintf(key, sizeof key, "\"%s\":{", name);
    const char *at = strstr(st->header, key);
    if (!at)
        fail_msg("no tensor %s from PyTorch", name);
    const char *offs = strstr(at, "\"data_offsets\":[");
    long long lo, hi;
    assert_int_equal(sscanf(offs, "\"data_offsets\":[%lld,%lld]", &lo, &hi), 2);
    assert_int_equal(hi - lo, numel * 8);
    return (const double *)(st->data + lo);
}

/* ---- the check ------------------------------------------------------------- */

static double relative_l2(const double *a, const double *b, int64_t n)
{
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < n; i++) {
        diff += (a[i] - b[i]) * (a[i] - b[i]);
        norm += b[i] * b[i];
    }
    return norm > 0 ? sqrt(diff / norm) : sqrt(diff);
}

static void check_model(const char *model, const char *const *dims, int n_dims)
{
    Arena *a = arena_new();
    char *path = arena_printf(a, "%s/%s.nn", NNC_CONFORMANCE_DIR, model);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *src = calloc(1, 1 << 16);
    size_t len = fread(src, 1, (1 << 16) - 1, f);
    fclose(f);
    src[len] = 0;
    Module *m = gc_compile(a, src, dims, n_dims);
    free(src);
    if (!m)
        fail_msg("%s does not compile", model);
    GcModel gm = gc_model(a, m, 42, 0.5);

    const char **pn = arena_alloc(a, sizeof *pn * (size_t)(m->params.len + 1));
    const char **in = arena_alloc(a, sizeof *in * (size_t)(m->inputs.len + 1));
    for (int i = 0; i < m->params.len; i++)
        pn[i] = m->params.data[i].name;
    for (int i = 0; i < m->inputs.len; i++)
        in[i] = m->inputs.data[i].name;
    char *params =
        arena_printf(a, "%s/%s.params.safetensors", NNC_TEST_TMP, model);
    char *inputs =
        arena_printf(a, "%s/%s.inputs.safetensors", NNC_TEST_TMP, model);
    char *grads =
        arena_printf(a, "%s/%s.grads.safetensors", NNC_TEST_TMP, model);
    write_safetensors(params, pn, gm.params, m->params.len);
    write_safetensors(inputs, in, gm.inputs, m->inputs.len);
    remove(grads);
    char *cmd = arena_printf(a, "%s %s/torch_grads.py %s %s %s %s", NNC_PYTHON,
                             NNC_GRAD_SRC, path, params, inputs, grads);
    for (int i = 0; i < n_dims; i++)
        cmd = arena_printf(a, "%s -D %s", cmd, dims[i]);
    if (system(cmd) != 0)
        fail_msg("failed: %s", cmd);

    StFile st = read_safetensors(grads);
    double loss = gc_loss(&gm), worst = 0;
    double loss_err = fabs(loss - *st_tensor(&st, "loss", 1)) / fabs(loss);
    printf("%s: loss %.10f, relative error %.2e\n", model, loss, loss_err);
    EvalTensor *g = gc_gradients(&gm);
    for (int i = 0, k = 0; i < m->params.len; i++) {
        int64_t n = ir_type_numel(&m->params.data[i].type);
        const double *want =
            st_tensor(&st, arena_printf(a, "grad.%s", pn[i]), n);
        double err = relative_l2(g[k].data, want, n);
        printf("  grad.%-6s relative L2 error %.2e\n", pn[i], err);
        worst = err > worst || isnan(err) ? err : worst;
        ir_eval_tensor_free(&g[k++]);
    }
    free(g);
    free(st.blob);
    gc_model_free(&gm);
    arena_free(a);
    if (!(loss_err <= TOL) || !(worst <= TOL))
        fail_msg("%s: loss error %g, worst gradient error %g (tolerance %g)",
                 model, loss_err, worst, TOL);
}

static void test_mlp(void **state)
{
    (void)state;
    static const char *const dims[] = {"B=4", "IN=6", "H=5", "K=3"};
    check_model("mlp", dims, 4);
}

static void test_rnn(void **state)
{
    (void)state;
    static const char *const dims[] = {"B=2", "T=3", "V=5", "E=4", "H=3"};
    check_model("rnn", dims, 5);
}

static void test_lstm(void **state)
{
    (void)state;
    static const char *const dims[] = {"B=2", "T=3", "V=5", "E=4", "H=3"};
    check_model("lstm", dims, 5);
}

static void test_gpt(void **state)
{
    (void)state;
    static const char *const dims[] = {"B=2", "T=3", "V=7",
                                       "C=8", "L=2", "NH=2"};
    check_model("gpt", dims, 6);
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
