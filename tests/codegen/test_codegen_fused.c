/* Codegen tests: the ops with a body graph (codegen/fused.c), written in
 * the text IR (docs/ir.md) and compared with the reference evaluator:
 *
 *  - fused elementwise chains with broadcasting (a bias [C] over [N, C],
 *    scalar consts, [N, 1] columns), compare + where (f32 and i32
 *    conditions), every unary op, multi-result bodies, an operand that is
 *    a const of the main graph, a result written in place over an operand;
 *  - fused reductions: sum/mean/max over the last axis and over leading
 *    axes, mixed axes, a full reduction, keepdims true and false;
 *  - matmul_epilogue: bias + relu with one and two results, in row blocks
 *    and as one GEMM, transposed operands, a batched product, a per-row
 *    extra;
 *  - fused nodes on the pool inside a scan body; softmax, log_softmax,
 *    layernorm and rmsnorm rows on the pool;
 *  - each at a size that stays inline and one that runs on the pool, run
 *    with 1 and 2 threads and compared bit for bit;
 *  - each module's text reads back and prints the same, and its memory
 *    plan verifies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <unistd.h>

#include "cg_test.h"
#include "codegen/plan.h"

static char *print_module(const Module *m)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    assert_non_null(f);
    ir_print_module(f, m);
    fclose(f);
    return buf;
}

static Module *read_ir(Arena *a, const char *text)
{
    Diag d;
    diag_init(&d, "fused.ir", text, strlen(text));
    Module *m = ir_read_module(a, text, strlen(text), &d);
    if (!m)
        fprintf(stderr, "%s", text);
    assert_non_null(m);
    return m;
}

/* print -> read -> print gives the same text. */
static void check_round_trip(const Module *m)
{
    char *t1 = print_module(m);
    Arena *a = arena_new();
    Module *m2 = read_ir(a, t1);
    char *t2 = print_module(m2);
    assert_string_equal(t1, t2);
    free(t1);
    free(t2);
    arena_free(a);
}

/* Test data: f32 in [-2, 2), i32 in {0, 1}. */
static void fill_input(const Type *t, void *data, double *ref, unsigned seed)
{
    int64_t n = ir_type_numel(t);
    if (t->dtype == DT_I32) {
        int32_t *x = data;
        for (int64_t i = 0; i < n; i++)
            ref[i] = x[i] = (int32_t)((i * 7 + seed) % 3 == 0);
        return;
    }
    float *x = data;
    fill(x, n, -2.0f, 2.0f, seed);
    for (int64_t i = 0; i < n; i++)
        ref[i] = x[i];
}

/* Runs forward with `threads` threads; outputs into outs[k]. */
static void run_jit(TB *t, CgJit *j, void **in, float **outs, int threads)
{
    const Module *m = t->m;
    void *args[32];
    int k = 0;
    for (int i = 0; i < m->inputs.len; i++)
        args[k++] = in[i];
    for (int o = 0; o < m->n_outputs; o++)
        args[k++] = outs[o];
    nnc_set_num_threads(threads);
    assert_int_equal(tb_run(t, j, NULL, args), 0);
    nnc_set_num_threads(0);
}

/* How many loops of the module run on the pool (calls of
 * nnc_parallel_for in its unoptimised LLVM IR); *gemms counts the GEMM
 * calls inside the outlined loop bodies (matmul_epilogue's row blocks).
 * With KEEP_LL set in the environment the file stays, optimised, for
 * reading. */
static int parallel_loops(const Module *m, int *gemms)
{
    char path[512];
    snprintf(path, sizeof path, "%s/fused_%d.ll", NNC_TEST_TMP, (int)getpid());
    CgOptions o = {.opt_level = getenv("KEEP_LL") ? 2 : 0};
    assert_int_equal(cg_emit_file(m, &o, CG_EMIT_LLVM, path), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    int n = 0;
    bool in_par = false;
    *gemms = 0;
    while (fgets(line, sizeof line, f)) {
        n += strstr(line, "call void @nnc_parallel_for(") != NULL;
        if (strncmp(line, "define ", 7) == 0)
            in_par = strstr(line, "_par") != NULL;
        *gemms += in_par && strstr(line, "@nnc_sgemm_batched(") != NULL;
    }
    fclose(f);
    if (!getenv("KEEP_LL"))
        remove(path);
    return n;
}

/* Whether the memory plan put a result over one of its operands. */
static bool any_in_place(const Module *m)
{
    Arena *a = arena_new();
    CgPlan *p = cg_plan_new(a, m);
    cg_plan_verify(p);
    bool any = false;
    for (int b = 0; b < p->n_bufs; b++)
        any |= p->bufs[b].inplace_of >= 0;
    arena_free(a);
    return any;
}

/* What check_ir expects of the module: how many parallel loops (-1: any
 * number) and whether a result is written in place (-1: either). */
static int want_par = -1, want_in_place = -1, want_blocks = -1;

/* Compiles the module in `text`, checks it against the evaluator (relative
 * tolerance tol) and 1 against 2 threads bit for bit. */
static void check_ir(const char *text, double tol)
{
    TB t = {.arena = arena_new()};
    t.m = read_ir(t.arena, text);
    check_round_trip(t.m);
    int gemms, wp = want_par, wi = want_in_place, wb = want_blocks;
    want_par = want_in_place = want_blocks = -1;
    int par = parallel_loops(t.m, &gemms);
    if (wp >= 0)
        assert_int_equal(par, wp);
    if (wb >= 0)
        assert_int_equal(gemms > 0, wb);
    if (wi >= 0)
        assert_int_equal(any_in_place(t.m), wi);
    const Module *m = t.m;
    int ni = m->inputs.len, no = m->n_outputs;
    void *in[16];
    EvalTensor ein[16], eres[16];
    for (int i = 0; i < ni; i++) {
        const Type *ty = &m->inputs.data[i].type;
        in[i] = malloc((size_t)ir_type_numel(ty) * 4 + 4);
        ein[i] = ir_eval_tensor(*ty);
        fill_input(ty, in[i], ein[i].data, 11 + (unsigned)i);
    }
    char err[256];
    assert_true(ir_eval_graph(m, m->graphs.data[0], ein, NULL, NULL, NULL, eres,
                              err, sizeof err));
    float *o1[16], *o2[16];
    for (int o = 0; o < no; o++) {
        int64_t n = ir_type_numel(&eres[o].type);
        o1[o] = calloc((size_t)n + 1, 4);
        o2[o] = calloc((size_t)n + 1, 4);
    }
    CgJit *j = tb_jit(&t);
    run_jit(&t, j, in, o1, 1);
    run_jit(&t, j, in, o2, 2);
    for (int o = 0; o < no; o++) {
        int64_t n = ir_type_numel(&eres[o].type);
        char what[64];
        snprintf(what, sizeof what, "output %d", o);
        if (eres[o].type.dtype == DT_F32)
            expect_close(o1[o], eres[o].data, n, tol, what);
        assert_memory_equal(o1[o], o2[o], (size_t)n * 4);
        free(o1[o]);
        free(o2[o]);
        ir_eval_tensor_free(&eres[o]);
    }
    for (int i = 0; i < ni; i++) {
        free(in[i]);
        ir_eval_tensor_free(&ein[i]);
    }
    tb_free(&t, j);
}

/* check_ir on a printf template. */
static void check_fmt(double tol, const char *fmt, ...)
{
    char text[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && n < (int)sizeof text);
    check_ir(text, tol);
}

/* ---- elementwise -------------------------------------------------------- */

/* y = tanh((x + b) * 0.5 * col), z = x + b: a bias, a scalar const, a
 * column, two results; the second operand of the node is a const of the
 * main graph. */
static const char *chain_ir =
    "model chain\n"
    "input x : f32[%d, %d]\n"
    "input b : f32[%d]\n"
    "input col : f32[%d, 1]\n"
    "outputs 2\n"
    "graph main {\n"
    "  %%0 = input @x : f32[%d, %d]\n"
    "  %%1 = input @b : f32[%d]\n"
    "  %%2 = input @col : f32[%d, 1]\n"
    "  %%3 = const 0.25 : f32[%d]\n"
    "  %%4, %%5 = fused @body %%0, %%1, %%2, %%3 : f32[%d, %d], f32[%d, %d]\n"
    "  return y=%%4, z=%%5\n"
    "}\n"
    "graph body(args=4) {\n"
    "  %%0 = arg 0 : f32[%d, %d]\n"
    "  %%1 = arg 1 : f32[%d]\n"
    "  %%2 = arg 2 : f32[%d, 1]\n"
    "  %%3 = arg 3 : f32[%d]\n"
    "  %%4 = add %%0, %%1 : f32[%d, %d]\n"
    "  %%5 = const 0.5 : f32[]\n"
    "  %%6 = mul %%4, %%5 : f32[%d, %d]\n"
    "  %%7 = mul %%6, %%2 : f32[%d, %d]\n"
    "  %%8 = add %%7, %%3 : f32[%d, %d]\n"
    "  %%9 = tanh %%8 : f32[%d, %d]\n"
    "  return %%9, %%4\n"
    "}\n";

static void chain(int n, int c)
{
    check_fmt(1e-5, chain_ir, n, c, c, n, n, c, c, n, c, n, c, n, c, n, c, c, n,
              c, n, c, n, c, n, c, n, c, n, c);
}

static void test_chain(void **state)
{
    (void)state;
    want_par = 0;
    chain(3, 5);
    want_par = 1;
    chain(512, 96); /* 49152 elements: on the pool */
}

/* leaky relu through gt + where, and a where on an i32 mask [C]. */
static const char *where_ir =
    "model wh\n"
    "input x : f32[%d, %d]\n"
    "input m : i32[%d]\n"
    "outputs 2\n"
    "graph main {\n"
    "  %%0 = input @x : f32[%d, %d]\n"
    "  %%1 = input @m : i32[%d]\n"
    "  %%2, %%3 = fused @body %%0, %%1 : f32[%d, %d], f32[%d, %d]\n"
    "  return a=%%2, b=%%3\n"
    "}\n"
    "graph body(args=2) {\n"
    "  %%0 = arg 0 : f32[%d, %d]\n"
    "  %%1 = arg 1 : i32[%d]\n"
    "  %%2 = const 0 : f32[]\n"
    "  %%3 = gt %%0, %%2 : f32[%d, %d]\n"
    "  %%4 = const 0.1 : f32[]\n"
    "  %%5 = mul %%0, %%4 : f32[%d, %d]\n"
    "  %%6 = where %%3, %%0, %%5 : f32[%d, %d]\n"
    "  %%7 = where %%1, %%6, %%3 : f32[%d, %d]\n"
    "  return %%6, %%7\n"
    "}\n";

static void test_compare_where(void **state)
{
    (void)state;
    int sizes[2][2] = {{4, 6}, {256, 160}};
    for (int k = 0; k < 2; k++) {
        int n = sizes[k][0], c = sizes[k][1];
        check_fmt(1e-6, where_ir, n, c, c, n, c, c, n, c, n, c, n, c, c, n, c,
                  n, c, n, c, n, c);
    }
}

/* One fused node per unary op on |x| + 0.1 (so log and sqrt are defined),
 * and pow with p = 3. */
static void test_every_unary(void **state)
{
    (void)state;
    static const char *ops[] = {"neg",      "exp",  "log",       "sqrt",
                                "rsqrt",    "abs",  "relu",      "sigmoid",
                                "tanh",     "gelu", "gelu_tanh", "silu",
                                "softplus", "pow",  "pow"};
    static const char *attrs[] = {"", "", "", "", "", "",     "",      "",
                                  "", "", "", "", "", " p=3", " p=0.5"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        const char *sign = k % 2 ? "neg" : "abs";
        check_fmt(2e-5,
                  "model un\n"
                  "input x : f32[%d]\n"
                  "outputs 1\n"
                  "graph main {\n"
                  "  %%0 = input @x : f32[%d]\n"
                  "  %%1 = fused @body %%0 : f32[%d]\n"
                  "  return y=%%1\n"
                  "}\n"
                  "graph body(args=1) {\n"
                  "  %%0 = arg 0 : f32[%d]\n"
                  "  %%1 = abs %%0 : f32[%d]\n"
                  "  %%2 = const 0.1 : f32[]\n"
                  "  %%3 = add %%1, %%2 : f32[%d]\n"
                  "  %%4 = %s %%3%s : f32[%d]\n"
                  "  %%5 = %s %%0 : f32[%d]\n"
                  "  %%6 = mul %%4, %%5 : f32[%d]\n"
                  "  return %%6\n"
                  "}\n",
                  40000, 40000, 40000, 40000, 40000, 40000, ops[k], attrs[k],
                  40000, sign, 40000, 40000);
    }
}

/* t = relu x (unfused) dies at the fused node, whose result may take its
 * bytes; then exp of the result. */
static void test_in_place(void **state)
{
    (void)state;
    want_in_place = 1;
    check_fmt(1e-5, "model ip\n"
                    "input x : f32[64, 600]\n"
                    "input b : f32[600]\n"
                    "outputs 1\n"
                    "graph main {\n"
                    "  %%0 = input @x : f32[64, 600]\n"
                    "  %%1 = input @b : f32[600]\n"
                    "  %%2 = relu %%0 : f32[64, 600]\n"
                    "  %%3 = fused @body %%2, %%1 : f32[64, 600]\n"
                    "  %%4 = exp %%3 : f32[64, 600]\n"
                    "  return y=%%4\n"
                    "}\n"
                    "graph body(args=2) {\n"
                    "  %%0 = arg 0 : f32[64, 600]\n"
                    "  %%1 = arg 1 : f32[600]\n"
                    "  %%2 = sub %%0, %%1 : f32[64, 600]\n"
                    "  %%3 = mul %%2, %%2 : f32[64, 600]\n"
                    "  return %%3\n"
                    "}\n");
}

/* ---- reductions ---------------------------------------------------------- */

/* op(x * y + b) over `axes` of [A, B, C], as a fused body. */
static void reduce_case(const char *op, int a, int b, int c, const char *axes,
                        bool keep, const char *out)
{
    check_fmt(2e-5,
              "model red\n"
              "input x : f32[%d, %d, %d]\n"
              "input y : f32[%d, %d, %d]\n"
              "input b : f32[%d]\n"
              "outputs 1\n"
              "graph main {\n"
              "  %%0 = input @x : f32[%d, %d, %d]\n"
              "  %%1 = input @y : f32[%d, %d, %d]\n"
              "  %%2 = input @b : f32[%d]\n"
              "  %%3 = fused @body %%0, %%1, %%2 : %s\n"
              "  return r=%%3\n"
              "}\n"
              "graph body(args=3) {\n"
              "  %%0 = arg 0 : f32[%d, %d, %d]\n"
              "  %%1 = arg 1 : f32[%d, %d, %d]\n"
              "  %%2 = arg 2 : f32[%d]\n"
              "  %%3 = mul %%0, %%1 : f32[%d, %d, %d]\n"
              "  %%4 = add %%3, %%2 : f32[%d, %d, %d]\n"
              "  %%5 = %s %%4 axes=%s keepdims=%s : %s\n"
              "  return %%5\n"
              "}\n",
              a, b, c, a, b, c, c, a, b, c, a, b, c, c, out, a, b, c, a, b, c,
              c, a, b, c, a, b, c, op, axes, keep ? "true" : "false", out);
}

static void test_reduce_last_axis(void **state)
{
    (void)state;
    static const char *ops[] = {"sum", "mean", "max"};
    for (int k = 0; k < 3; k++) {
        want_par = 0;
        reduce_case(ops[k], 2, 3, 5, "[2]", false, "f32[2, 3]");
        reduce_case(ops[k], 2, 3, 5, "[2]", true, "f32[2, 3, 1]");
        want_par = 1;
        reduce_case(ops[k], 4, 128, 130, "[2]", false, "f32[4, 128]");
        reduce_case(ops[k], 4, 128, 130, "[1, 2]", true, "f32[4, 1, 1]");
    }
}

static void test_reduce_leading_axes(void **state)
{
    (void)state;
    static const char *ops[] = {"sum", "mean", "max"};
    for (int k = 0; k < 3; k++) {
        reduce_case(ops[k], 3, 4, 5, "[0, 1]", false, "f32[5]");
        reduce_case(ops[k], 3, 4, 5, "[0]", true, "f32[1, 4, 5]");
        /* bias gradient shapes: [N, C] rows -> [C], C not a multiple of 64 */
        want_par = 1;
        reduce_case(ops[k], 16, 64, 200, "[0, 1]", false, "f32[200]");
        reduce_case(ops[k], 64, 30, 40, "[0]", true, "f32[1, 30, 40]");
    }
}

static void test_reduce_mixed_axes(void **state)
{
    (void)state;
    reduce_case("sum", 3, 4, 5, "[0, 2]", false, "f32[4]");
    reduce_case("max", 40, 50, 30, "[0, 2]", true, "f32[1, 50, 1]");
    reduce_case("mean", 40, 50, 30, "[0, 1, 2]", false, "f32[]");
    reduce_case("sum", 2, 3, 4, "[0, 1, 2]", true, "f32[1, 1, 1]");
}

/* ---- matmul_epilogue ------------------------------------------------------ */

/* relu(x @ w + bias) [and the pre-activation]; a is [M, K] or its
 * transpose [K, M] transposed in the graph, likewise w. */
static void epilogue_case(int m, int k, int n, bool ta, bool tb, bool two)
{
    char a_decl[64], b_decl[64], a_val[160], b_val[160], z_type[64] = "";
    snprintf(a_decl, sizeof a_decl, "f32[%d, %d]", ta ? k : m, ta ? m : k);
    snprintf(b_decl, sizeof b_decl, "f32[%d, %d]", tb ? n : k, tb ? k : n);
    snprintf(a_val, sizeof a_val,
             ta ? "  %%3 = transpose %%0 : f32[%d, %d]\n"
                : "  %%3 = reshape %%0 : f32[%d, %d]\n",
             m, k);
    snprintf(b_val, sizeof b_val,
             tb ? "  %%4 = transpose %%1 : f32[%d, %d]\n"
                : "  %%4 = reshape %%1 : f32[%d, %d]\n",
             k, n);
    if (two)
        snprintf(z_type, sizeof z_type, ", f32[%d, %d]", m, n);
    check_fmt(2e-4,
              "model ep\n"
              "input a : %s\n"
              "input w : %s\n"
              "input bias : f32[%d]\n"
              "outputs %d\n"
              "graph main {\n"
              "  %%0 = input @a : %s\n"
              "  %%1 = input @w : %s\n"
              "  %%2 = input @bias : f32[%d]\n"
              "%s%s"
              "  %s = matmul_epilogue @body %%3, %%4, %%2 : f32[%d, %d]%s\n"
              "  return %s\n"
              "}\n"
              "graph body(args=2) {\n"
              "  %%0 = arg 0 : f32[%d, %d]\n"
              "  %%1 = arg 1 : f32[%d]\n"
              "  %%2 = add %%0, %%1 : f32[%d, %d]\n"
              "  %%3 = relu %%2 : f32[%d, %d]\n"
              "  return %s\n"
              "}\n",
              a_decl, b_decl, n, two ? 2 : 1, a_decl, b_decl, n, a_val, b_val,
              two ? "%5, %6" : "%5", m, n, z_type, two ? "y=%5, z=%6" : "y=%5",
              m, n, n, m, n, m, n, two ? "%3, %2" : "%3");
}

static void test_epilogue_bias_relu(void **state)
{
    (void)state;
    epilogue_case(5, 3, 4, false, false, false);
    epilogue_case(5, 3, 4, false, false, true);
    /* 4096 rows of 64: two row blocks of 2048 (512 KiB) on the pool */
    want_par = want_blocks = 1;
    epilogue_case(4096, 32, 64, false, false, false);
    epilogue_case(4096, 32, 64, false, false, true);
    /* 64 rows of 512: one GEMM, then the body on the pool */
    want_par = 1;
    want_blocks = 0;
    epilogue_case(64, 48, 512, false, false, true);
}

static void test_epilogue_transposed(void **state)
{
    (void)state;
    epilogue_case(7, 5, 6, true, false, false);
    epilogue_case(7, 5, 6, false, true, true);
    want_blocks = 1;
    epilogue_case(4096, 24, 64, true, true, true);
    want_blocks = 1;
    epilogue_case(2560, 24, 128, false, true, false);
}

/* Batched: [B, M, K] @ [B, K, N] (one GEMM per batch), and [B, M, K] @
 * [K, N] with a per-row extra [B, M, 1] (the batch folds into row blocks). */
static void batched_case(int b, int m, int k, int n, bool shared_w)
{
    char w_decl[64];
    if (shared_w)
        snprintf(w_decl, sizeof w_decl, "f32[%d, %d]", k, n);
    else
        snprintf(w_decl, sizeof w_decl, "f32[%d, %d, %d]", b, k, n);
    check_fmt(2e-4,
              "model bm\n"
              "input a : f32[%d, %d, %d]\n"
              "input w : %s\n"
              "input bias : f32[%d]\n"
              "input col : f32[%d, %d, 1]\n"
              "outputs 2\n"
              "graph main {\n"
              "  %%0 = input @a : f32[%d, %d, %d]\n"
              "  %%1 = input @w : %s\n"
              "  %%2 = input @bias : f32[%d]\n"
              "  %%3 = input @col : f32[%d, %d, 1]\n"
              "  %%4, %%5 = matmul_epilogue @body %%0, %%1, %%2, %%3 : "
              "f32[%d, %d, %d], f32[%d, %d, %d]\n"
              "  return y=%%4, z=%%5\n"
              "}\n"
              "graph body(args=3) {\n"
              "  %%0 = arg 0 : f32[%d, %d, %d]\n"
              "  %%1 = arg 1 : f32[%d]\n"
              "  %%2 = arg 2 : f32[%d, %d, 1]\n"
              "  %%3 = add %%0, %%1 : f32[%d, %d, %d]\n"
              "  %%4 = mul %%3, %%2 : f32[%d, %d, %d]\n"
              "  %%5 = sigmoid %%4 : f32[%d, %d, %d]\n"
              "  %%6 = mul %%0, %%5 : f32[%d, %d, %d]\n"
              "  return %%6, %%4\n"
              "}\n",
              b, m, k, w_decl, n, b, m, b, m, k, w_decl, n, b, m, b, m, n, b, m,
              n, b, m, n, n, b, m, b, m, n, b, m, n, b, m, n, b, m, n);
}

static void test_epilogue_batched(void **state)
{
    (void)state;
    batched_case(2, 3, 4, 5, false);
    batched_case(2, 3, 4, 5, true);
    batched_case(4, 128, 16, 96, false);
    want_blocks = 1;
    batched_case(16, 256, 16, 64, true); /* 4096 rows: row blocks */
}

/* ---- on the pool inside a scan, and the row-wise lowerings ---------------- */

/* Fused nodes in a scan body: their outlined loops must read the pointers
 * of the current step (the carry buffer alternates, x moves by a slice). */
static void test_in_scan(void **state)
{
    (void)state;
    want_par = 3;
    check_ir("model sc\n"
             "input h0 : f32[256, 160]\n"
             "input xs : f32[3, 256, 160]\n"
             "input b : f32[160]\n"
             "outputs 2\n"
             "graph main {\n"
             "  %0 = input @h0 : f32[256, 160]\n"
             "  %1 = input @xs : f32[3, 256, 160]\n"
             "  %2 = input @b : f32[160]\n"
             "  %3, %4 = scan @step(carries=1, over=1, reverse=false) %0, "
             "%1, %2 : f32[256, 160], f32[3, 256, 160]\n"
             "  return h=%3, hs=%4\n"
             "}\n"
             "graph step(args=3) {\n"
             "  %0 = arg 0 : f32[256, 160]\n"
             "  %1 = arg 1 : f32[256, 160]\n"
             "  %2 = arg 2 : f32[160]\n"
             "  %3 = fused @cell %0, %1, %2 : f32[256, 160]\n"
             "  %4 = fused @rowmean %3 : f32[256, 1]\n"
             "  %5 = fused @centre %3, %4 : f32[256, 160]\n"
             "  return %5, %3\n"
             "}\n"
             "graph cell(args=3) {\n"
             "  %0 = arg 0 : f32[256, 160]\n"
             "  %1 = arg 1 : f32[256, 160]\n"
             "  %2 = arg 2 : f32[160]\n"
             "  %3 = const 0.5 : f32[]\n"
             "  %4 = mul %0, %3 : f32[256, 160]\n"
             "  %5 = add %4, %1 : f32[256, 160]\n"
             "  %6 = add %5, %2 : f32[256, 160]\n"
             "  %7 = tanh %6 : f32[256, 160]\n"
             "  return %7\n"
             "}\n"
             "graph rowmean(args=1) {\n"
             "  %0 = arg 0 : f32[256, 160]\n"
             "  %1 = mean %0 axes=[1] keepdims=true : f32[256, 1]\n"
             "  return %1\n"
             "}\n"
             "graph centre(args=2) {\n"
             "  %0 = arg 0 : f32[256, 160]\n"
             "  %1 = arg 1 : f32[256, 1]\n"
             "  %2 = sub %0, %1 : f32[256, 160]\n"
             "  return %2\n"
             "}\n",
             2e-5);
}

/* softmax over the last axis and over axis 0 (strided rows), log_softmax,
 * layernorm and rmsnorm, large enough for the pool. */
static void test_row_lowerings(void **state)
{
    (void)state;
    want_par = 5;
    check_ir("model rows\n"
             "input x : f32[256, 192]\n"
             "input g : f32[192]\n"
             "input b : f32[192]\n"
             "outputs 5\n"
             "graph main {\n"
             "  %0 = input @x : f32[256, 192]\n"
             "  %1 = input @g : f32[192]\n"
             "  %2 = input @b : f32[192]\n"
             "  %3 = softmax %0 axis=1 : f32[256, 192]\n"
             "  %4 = softmax %0 axis=0 : f32[256, 192]\n"
             "  %5 = log_softmax %0 axis=1 : f32[256, 192]\n"
             "  %6 = layernorm %0, %1, %2 eps=1e-05 : f32[256, 192]\n"
             "  %7 = rmsnorm %0, %1 eps=1e-05 : f32[256, 192]\n"
             "  return a=%3, b=%4, c=%5, d=%6, e=%7\n"
             "}\n",
             2e-5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_compare_where),
        cmocka_unit_test(test_every_unary),
        cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_reduce_last_axis),
        cmocka_unit_test(test_reduce_leading_axes),
        cmocka_unit_test(test_reduce_mixed_axes),
        cmocka_unit_test(test_epilogue_bias_relu),
        cmocka_unit_test(test_epilogue_transposed),
        cmocka_unit_test(test_epilogue_batched),
        cmocka_unit_test(test_in_scan),
        cmocka_unit_test(test_row_lowerings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
