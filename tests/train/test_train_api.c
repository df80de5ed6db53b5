/* Training tests: the generated training API beyond the optimizer
 * arithmetic (test_train_optim checks that against torch.optim).
 *
 *   backward      returns the loss and overwrites the gradients: twice in
 *                 a row gives the same gradients (not doubled), equal to
 *                 the gradient computed here in double; it changes no
 *                 parameter and no step
 *   dropout       active in backward with nnc_dropout_mask(seed, site,
 *                 step) (bit-exact), a new mask after each update and for
 *                 another seed, the identity in forward; inside a scan
 *                 body (through autodiff's reverse scan) the gradient
 *                 matches a central difference of the loss
 *   checkpoints   stop, save, load into a new instance, continue = never
 *                 stopping, bit for bit (with dropout, adam + clipping, and
 *                 sgd nesterov + weight decay); the file holds exactly the
 *                 parameters, opt.<param>.<slot> and opt.step
 *   data errors   a bad id or target: backward and train_step return NaN
 *                 with the message set, parameters, gradients and step
 *                 unchanged (model from .nn text through autodiff)
 *   -O levels     -O0, -O2 and -O3 train to identical bits
 *   set_lr        the learning rate the next update uses
 *   --no-train    no training symbol, no gradient or state in the table,
 *                 nothing of it in the header; the header with training
 *                 compiles as C99 and C++
 *   training      the MLP conformance model learns (loss falls) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "train_test.h"

/* The gradients of the linear model without dropout, in double. */
static void lin_grads_ref(const LinData *d, double *gw, double *gb,
                          double *loss)
{
    double dz[LB][LO];
    *loss = 0;
    for (int r = 0; r < LB; r++)
        for (int o = 0; o < LO; o++) {
            double z = d->b[o];
            for (int i = 0; i < LI; i++)
                z += (double)d->x[r * LI + i] * d->W[i * LO + o];
            double res = z * d->F[o] - d->y[r * LO + o];
            *loss += res * res / (LB * LO);
            dz[r][o] = 2.0 * res / (LB * LO) * d->F[o];
        }
    for (int o = 0; o < LO; o++) {
        gb[o] = 0;
        for (int r = 0; r < LB; r++)
            gb[o] += dz[r][o];
        for (int i = 0; i < LI; i++) {
            gw[i * LO + o] = 0;
            for (int r = 0; r < LB; r++)
                gw[i * LO + o] += d->x[r * LI + i] * dz[r][o];
        }
    }
}

static void test_backward_overwrites(void **state)
{
    TB t = lin_model("lin_bw",
                     spec_adam(OPT_ADAM, 0.01, 0.9, 0.999, 1e-8, 0, 0), 0);
    CgJit *j = jit_module(t.m);
    Api a = api_get(j, t.m);
    LinData d = lin_data(11);
    void *inst = lin_instance(&a, &d);
    void *in[] = {d.x, d.y};
    double gw[LI * LO], gb[LO], loss;
    lin_grads_ref(&d, gw, gb, &loss);
    float first_w[LI * LO], first_b[LO];
    float l1 = a.backward(inst, in);
    memcpy(first_w, a.grad(inst, "W"), sizeof first_w);
    memcpy(first_b, a.grad(inst, "b"), sizeof first_b);
    float l2 = a.backward(inst, in);
    assert_true(l1 == l2);
    assert_memory_equal(a.grad(inst, "W"), first_w, sizeof first_w);
    assert_memory_equal(a.grad(inst, "b"), first_b, sizeof first_b);
    expect_close(first_w, gw, LI * LO, 1e-5, "grad W");
    expect_close(first_b, gb, LO, 1e-5, "grad b");
    expect_close(&l1, &loss, 1, 1e-5, "loss");
    assert_memory_equal(a.param(inst, "W"), d.W, sizeof d.W);
    assert_memory_equal(a.param(inst, "b"), d.b, sizeof d.b);
    assert_int_equal(inst_step(&a, inst), 0);
    float pred[LB * LO];
    void *fargs[] = {d.x, pred};
    assert_int_equal(a.forward(inst, fargs), 0);
    /* train_step = backward + update: the same loss, then one step */
    assert_true(a.train_step(inst, in) == l1);
    assert_int_equal(inst_step(&a, inst), 1);
    assert_memory_not_equal(a.param(inst, "W"), d.W, sizeof d.W);
    a.free_(inst);
    tb_free(&t, j);
}

/* ---- dropout ------------------------------------------------------------- */

enum { DN = 5000, SITE = 3 };
#define DROP_P 0.25

/* out = dropout(W, p) * x, loss = sum(out): grad W = dropout(x), same site. */
static TB drop_model(void)
{
    TB t = tb_new("drop");
    Value x = tb_input(&t, "x", F32(DN));
    Value w = tb_param(&t, "W", F32(DN), INIT_NORMAL);
    t.m->params.data[0].init = (Init){INIT_NORMAL, 0, 1};
    Attrs drop = {.value = DROP_P, .index = SITE};
    Value out = tb_op2(&t, OP_MUL, tb_opa(&t, OP_DROPOUT, drop, 1, w), x);
    tb_output(&t, out, "out");
    Attrs all = {.axes = 1};
    ir_add_result(t.m, t.g, tb_opa(&t, OP_SUM, all, 1, out), "loss");
    ir_add_result(t.m, t.g, tb_opa(&t, OP_DROPOUT, drop, 1, x), "grad.W");
    t.m->n_grads = 1;
    t.m->train = spec_sgd(0.1, 0, false, 0, 0);
    return t;
}

/* The gradient must be exactly mask(seed, SITE, step) * x; returns the
 * fraction of dropped elements. */
static double check_mask(const Api *a, void *inst, const float *x,
                         const float *w, uint64_t seed, uint64_t step)
{
    static float mask[DN], want[DN];
    nnc_dropout_mask(mask, DN, (float)DROP_P, seed, SITE, step);
    double loss_ref = 0;
    int dropped = 0;
    for (int i = 0; i < DN; i++) {
        want[i] = mask[i] * x[i];
        loss_ref += (double)mask[i] * w[i] * x[i];
        dropped += mask[i] == 0;
    }
    void *in[] = {(void *)x};
    float loss = a->backward(inst, in);
    assert_memory_equal(a->grad(inst, "W"), want, sizeof want);
    expect_close(&loss, &loss_ref, 1, 1e-4, "dropout loss");
    return (double)dropped / DN;
}

static void test_dropout(void **state)
{
    TB t = drop_model();
    CgJit *j = jit_module(t.m);
    Api a = api_get(j, t.m);
    static float x[DN], w[DN], g0[DN], out[DN];
    fill(x, DN, -1, 1, 5);
    void *inst = a.new_();
    a.init(inst, 42);
    memcpy(w, a.param(inst, "W"), sizeof w);
    double frac = check_mask(&a, inst, x, w, 42, 0);
    fprintf(stderr, "dropout p = %g: %.4f of %d dropped\n", DROP_P, frac, DN);
    assert_true(fabs(frac - DROP_P) < 0.03);
    memcpy(g0, a.grad(inst, "W"), sizeof g0);
    check_mask(&a, inst, x, w, 42, 0); /* same step, same mask */
    a.update(inst);
    memcpy(w, a.param(inst, "W"), sizeof w);
    check_mask(&a, inst, x, w, 42, 1); /* the next step draws anew */
    assert_memory_not_equal(a.grad(inst, "W"), g0, sizeof g0);
    void *fargs[] = {x, out};
    assert_int_equal(a.forward(inst, fargs), 0);
    for (int i = 0; i < DN; i++)
        assert_true(out[i] == w[i] * x[i]); /* forward: the identity */
    void *other = a.new_();
    a.init(other, 43);
    memcpy(w, a.param(other, "W"), sizeof w);
    check_mask(&a, other, x, w, 43, 0);
    a.free_(other);
    a.free_(inst);
    tb_free(&t, j);
}

/* Dropout inside a scan body and on its stacked output, through the front
 * end and autodiff (backpropagation through time): with the masks fixed
 * (same seed and step), the loss is a smooth function of the parameters,
 * and its central difference along the gradient g must equal |g|^2. */
static const char *rnn_drop_src =
    "model rnndrop\n"
    "dim B = 3\ndim T = 4\ndim V = 7\ndim E = 5\ndim H = 6\n"
    "input tokens : i32[T, B]\ninput targets : i32[T, B]\n"
    "param emb : f32[V, E] = normal(0.5)\n"
    "param Wxh : f32[E, H] = xavier_uniform\n"
    "param Whh : f32[H, H] = orthogonal\n"
    "param Why : f32[H, V] = xavier_uniform\n"
    "fn step(h, xt) {\n"
    "  h = tanh(dropout(xt @ Wxh, 0.3) + h @ Whh)\n"
    "  return h, h\n"
    "}\n"
    "h_last, hs = scan(step, init = zeros(B, H), over = emb[tokens])\n"
    "loss = cross_entropy(dropout(hs, 0.2) @ Why, targets)\n"
    "output h_last\n"
    "train loss with sgd(lr = 0.1)\n";

/* Moves every parameter by eps * its gradient copy g. */
static void shift_params(const Api *a, void *inst, float **g, double eps)
{
    for (int i = 0; i < a->m->params.len; i++) {
        const ParamDecl *p = &a->m->params.data[i];
        float *w = a->param(inst, p->name);
        for (int64_t k = 0; k < ir_type_numel(&p->type); k++)
            w[k] += (float)(eps * g[i][k]);
    }
}

static void test_dropout_in_scan(void **state)
{
    Arena *ar = arena_new();
    Module *m = nn_compile(ar, "rnndrop.nn", rnn_drop_src, NULL, false);
    CgJit *j = jit_module(m);
    Api a = api_get(j, m);
    int32_t tokens[12], targets[12];
    for (int i = 0; i < 12; i++) {
        tokens[i] = (i * 3) % 7;
        targets[i] = (i * 5 + 1) % 7;
    }
    void *in[] = {tokens, targets};
    void *inst = a.new_();
    a.init(inst, 11);
    float loss = a.backward(inst, in);
    float *g[4];
    double g2 = 0;
    for (int i = 0; i < 4; i++) {
        int64_t n = ir_type_numel(&m->params.data[i].type);
        g[i] = malloc((size_t)n * 4);
        memcpy(g[i], a.grad(inst, m->params.data[i].name), (size_t)n * 4);
        g2 += pow(l2_norm(g[i], n), 2);
    }
    double eps = 1e-2 / sqrt(g2);
    shift_params(&a, inst, g, eps);
    float up = a.backward(inst, in);
    shift_params(&a, inst, g, -2 * eps);
    float down = a.backward(inst, in);
    double fd = ((double)up - down) / (2 * eps);
    fprintf(stderr,
            "dropout in scan: loss %g, |g|^2 %.6g, central difference "
            "%.6g\n",
            loss, g2, fd);
    assert_true(fabs(fd - g2) <= 1e-2 * g2);
    /* the same parameters under another seed: other masks, another loss */
    void *other = a.new_();
    a.init(other, 12);
    for (int i = 0; i < 4; i++) {
        const ParamDecl *p = &m->params.data[i];
        memcpy(a.param(other, p->name), a.param(inst, p->name),
               (size_t)ir_type_numel(&p->type) * 4);
    }
    float mine = a.backward(inst, in), theirs = a.backward(other, in);
    fprintf(stderr, "seed 11: loss %g, seed 12: loss %g\n", mine, theirs);
    assert_true(mine != theirs);
    for (int i = 0; i < 4; i++)
        free(g[i]);
    a.free_(other);
    a.free_(inst);
    cg_jit_free(j);
    arena_free(ar);
}

/* ---- checkpoints --------------------------------------------------------- */

static void expect_same_state(const Api *a, void *x, void *y)
{
    const nnc_model_info *info = a->info();
    for (int i = 0; i < info->n_tensors; i++) {
        const nnc_tensor_info *t = &info->tensors[i];
        if (t->offset < 0 || t->role == NNC_ROLE_GRAD)
            continue;
        if (memcmp((char *)x + t->offset, (char *)y + t->offset,
                   (size_t)t->numel * 4))
            fprintf(stderr, "tensor %s differs\n", t->name);
        assert_memory_equal((char *)x + t->offset, (char *)y + t->offset,
                            (size_t)t->numel * 4);
    }
    assert_int_equal(inst_step(a, x), inst_step(a, y));
}

/* The checkpoint holds exactly the parameters, the state and opt.step. */
static void check_checkpoint_file(const Api *a, const char *path, void *inst)
{
    const nnc_model_info *info = a->info();
    nnc_tensor_info want[16];
    void *dst[16];
    static char names[16][64];
    static float buf[16][LI * LO];
    int64_t step = -1;
    int n = 0;
    for (int i = 0; i < info->n_tensors; i++) {
        nnc_tensor_info t = info->tensors[i];
        if (t.role == NNC_ROLE_OPT_STATE) {
            snprintf(names[n], 64, "opt.%s", t.name);
            t.name = names[n];
        } else if (t.role != NNC_ROLE_PARAM && t.role != NNC_ROLE_FROZEN_PARAM)
            continue;
        want[n] = t;
        dst[n] = buf[n];
        n++;
    }
    want[n] = (nnc_tensor_info){.name = "opt.step",
                                .dtype = NNC_I64,
                                .numel = 1,
                                .offset = -1,
                                .param = -1};
    dst[n++] = &step;
    int rc = nnc_st_load_exact(path, n, want, dst);
    if (rc)
        fprintf(stderr, "%s\n", nnc_last_error());
    assert_int_equal(rc, 0);
    assert_int_equal(step, inst_step(a, inst));
    assert_memory_equal(buf[0], a->param(inst, "W"), LI * LO * 4);
}

static void check_resume(const char *name, TrainSpec spec, double p)
{
    TB t = lin_model(name, spec, p);
    CgJit *j = jit_module(t.m);
    Api a = api_get(j, t.m);
    LinData d = lin_data(21);
    void *in[] = {d.x, d.y};
    const char *path = tmp_file("resume.safetensors");
    void *straight = lin_instance(&a, &d), *first = lin_instance(&a, &d);
    float want[6], got[6];
    for (int s = 0; s < 6; s++)
        want[s] = a.train_step(straight, in);
    for (int s = 0; s < 3; s++)
        got[s] = a.train_step(first, in);
    assert_int_equal(a.save_ckpt(first, path), 0);
    check_checkpoint_file(&a, path, first);
    a.free_(first);
    void *resumed = a.new_();
    a.init(resumed, 1); /* the seed keys dropout; the file has the rest */
    assert_int_equal(a.load_ckpt(resumed, path), 0);
    assert_int_equal(inst_step(&a, resumed), 3);
    for (int s = 3; s < 6; s++)
        got[s] = a.train_step(resumed, in);
    assert_memory_equal(got, want, sizeof want);
    expect_same_state(&a, straight, resumed);
    fprintf(stderr,
            "%s: resumed after 3 of 6 steps, identical; loss %g -> %g\n", name,
            want[0], want[5]);
    a.free_(straight);
    a.free_(resumed);
    tb_free(&t, j);
}

static void test_checkpoint_resume(void **state)
{
    check_resume("lin_ckpt_adam",
                 spec_adam(OPT_ADAM, 0.05, 0.9, 0.999, 1e-8, 0.01, 0.5), 0.3);
    check_resume("lin_ckpt_sgd", spec_sgd(0.05, 0.9, true, 0.01, 0), 0.3);
    check_resume("lin_ckpt_adamw",
                 spec_adam(OPT_ADAMW, 0.05, 0.9, 0.999, 1e-8, 0.1, 0), 0);
}

/* -O0, -O2 and -O3 train to the same bits (LLVM reassociates no float
 * arithmetic at any level). */
static void test_opt_levels(void **state)
{
    TB t =
        lin_model("lin_levels",
                  spec_adam(OPT_ADAM, 0.05, 0.9, 0.999, 1e-8, 0.01, 0.5), 0.3);
    LinData d = lin_data(8);
    void *in[] = {d.x, d.y};
    float want[LI * LO], loss[3][4];
    for (int k = 0; k < 3; k++) {
        CgJit *j = jit_module_at(t.m, k == 0 ? 0 : k + 1);
        Api a = api_get(j, t.m);
        void *inst = lin_instance(&a, &d);
        for (int s = 0; s < 4; s++)
            loss[k][s] = a.train_step(inst, in);
        if (k == 0)
            memcpy(want, a.param(inst, "W"), sizeof want);
        assert_memory_equal(a.param(inst, "W"), want, sizeof want);
        assert_memory_equal(loss[k], loss[0], sizeof loss[0]);
        a.free_(inst);
        cg_jit_free(j);
    }
    arena_free(t.arena);
}

/* ---- data errors ---------------------------------------------------------- */

static const char *lookup_src = "model lookup\n"
                                "dim B = 4\ndim V = 5\ndim D = 3\n"
                                "input ids : i32[B]\ninput y : i32[B]\n"
                                "param E : f32[V, D] = normal(1)\n"
                                "param W : f32[D, V] = xavier_uniform\n"
                                "logits = E[ids] @ W\n"
                                "loss = cross_entropy(logits, y)\n"
                                "output logits\n"
                                "train loss with adam(lr = 0.01)\n";

/* A bad call: NaN, the message, nothing changed since `before`. */
static void expect_rejected(const Api *a, void *inst, void *snap, float loss,
                            const char *msg)
{
    const nnc_model_info *info = a->info();
    assert_true(isnan(loss));
    fprintf(stderr, "rejected: %s\n", nnc_last_error());
    assert_non_null(strstr(nnc_last_error(), msg));
    assert_memory_equal(inst, snap, (size_t)info->workspace_offset);
}

static void test_data_errors(void **state)
{
    Arena *ar = arena_new();
    Module *m = nn_compile(ar, "lookup.nn", lookup_src, NULL, false);
    assert_int_equal(m->n_grads, 2);
    CgJit *j = jit_module(m);
    Api a = api_get(j, m);
    const nnc_model_info *info = a.info();
    int32_t ids[4] = {0, 1, 4, 2}, y[4] = {1, 0, 4, 3};
    void *in[] = {ids, y};
    void *inst = a.new_();
    a.init(inst, 3);
    assert_false(isnan(a.train_step(inst, in)));
    assert_false(isnan(a.backward(inst, in)));
    void *snap = malloc((size_t)info->workspace_offset);
    memcpy(snap, inst,
           (size_t)info->workspace_offset); /* params, grads, state */
    ids[2] = 9;
    expect_rejected(&a, inst, snap, a.backward(inst, in),
                    "id 9 at position [2] is outside 0..4");
    expect_rejected(&a, inst, snap, a.train_step(inst, in),
                    "id 9 at position [2] is outside 0..4");
    ids[2] = 4;
    y[1] = -1;
    expect_rejected(&a, inst, snap, a.train_step(inst, in),
                    "-1 at position [1] is outside 0..4");
    y[1] = 0;
    assert_false(isnan(a.train_step(inst, in)));
    assert_int_equal(inst_step(&a, inst), 2);
    free(snap);
    a.free_(inst);
    cg_jit_free(j);
    arena_free(ar);
}

/* ---- set_lr ----------------------------------------------------------------- */

static void test_set_lr(void **state)
{
    TB t = lin_model("lin_lr", spec_sgd(0.1, 0, false, 0, 0), 0);
    CgJit *j = jit_module(t.m);
    Api a = api_get(j, t.m);
    LinData d = lin_data(5);
    void *in[] = {d.x, d.y};
    void *inst = lin_instance(&a, &d);
    a.set_lr(inst, 0.0f);
    a.train_step(inst, in);
    assert_memory_equal(a.param(inst, "W"), d.W, sizeof d.W);
    a.set_lr(inst, 0.25f);
    a.backward(inst, in);
    float g[LI * LO];
    memcpy(g, a.grad(inst, "W"), sizeof g);
    a.update(inst);
    const float *w = a.param(inst, "W");
    for (int i = 0; i < LI * LO; i++)
        assert_true(w[i] == d.W[i] + -0.25f * g[i]);
    a.free_(inst);
    tb_free(&t, j);
}

/* ---- with and without --no-train ------------------------------------------ */

static int grep_count(const char *path, const char *pattern)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "grep -c '%s' %s > %s.count", pattern, path,
             path);
    (void)system(cmd);
    snprintf(cmd, sizeof cmd, "%s.count", path);
    FILE *f = fopen(cmd, "r");
    int n = -1;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%d", &n), 1);
    fclose(f);
    return n;
}

static void test_no_train(void **state)
{
    char *src = read_text_file(NNC_CONFORMANCE_DIR "/mlp.nn");
    for (int no_train = 0; no_train <= 1; no_train++) {
        Arena *ar = arena_new();
        Module *m =
            nn_compile(ar, "mlp.nn", src, "B=4 IN=8 H=16", no_train != 0);
        assert_int_equal(cg_has_train(m), !no_train);
        const char *h = tmp_file(no_train ? "mlp_infer.h" : "mlp_train.h");
        assert_int_equal(cg_write_header(m, h), 0);
        /* declarations (lines that start with a type), not comments */
        assert_int_equal(
            grep_count(h, "^[a-z].*mlp_\\(train_step\\|backward\\|update\\|"
                          "set_lr\\|grad\\|save_checkpoint\\|load_checkpoint"
                          "\\)("),
            no_train ? 0 : 7);
        char cmd[2048];
        const char *dir = NNC_TEST_TMP "/api_header";
        snprintf(cmd, sizeof cmd,
                 "mkdir -p %s && cp %s %s/mlp.h && echo '#include \"mlp.h\"' | "
                 "cc -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only "
                 "-I%s -I%s -x c - && echo '#include \"mlp.h\"' | c++ -Wall "
                 "-Werror -fsyntax-only -I%s -I%s -x c++ -",
                 dir, h, dir, dir, NNC_RUNTIME_DIR, dir, NNC_RUNTIME_DIR);
        assert_int_equal(system(cmd), 0);
        CgJit *j = jit_module(m);
        assert_true((cg_jit_lookup(j, "mlp_backward") == NULL) == no_train);
        assert_true((cg_jit_lookup(j, "mlp_update") == NULL) == no_train);
        const nnc_model_info *(*info)(void) =
            (const nnc_model_info *(*)(void))api_sym(j, m, "info");
        int extra = 0;
        for (int i = 0; i < info()->n_tensors; i++)
            extra += info()->tensors[i].role == NNC_ROLE_GRAD ||
                     info()->tensors[i].role == NNC_ROLE_OPT_STATE;
        assert_int_equal(extra, no_train ? 0 : 18); /* 6 grads, 12 slots */
        assert_true((info()->step_offset < 0) == no_train);
        cg_jit_free(j);
        arena_free(ar);
    }
    free(src);
}

/* The MLP conformance model, through the front end and autodiff, learns a
 * fixed batch: the loss falls by half within 60 adam steps. */
static void test_mlp_learns(void **state)
{
    char *src = read_text_file(NNC_CONFORMANCE_DIR "/mlp.nn");
    Arena *ar = arena_new();
    Module *m = nn_compile(ar, "mlp.nn", src, "B=16 IN=8 H=32", false);
    CgJit *j = jit_module(m);
    Api a = api_get(j, m);
    float x[16 * 8];
    int32_t y[16];
    fill(x, 16 * 8, -1, 1, 9);
    for (int i = 0; i < 16; i++)
        y[i] = (i * 7) % 10;
    void *in[] = {x, y};
    void *inst = a.new_();
    a.init(inst, 1);
    a.set_lr(inst, 0.01f);
    float first = a.train_step(inst, in), last = first;
    for (int s = 1; s < 60; s++)
        last = a.train_step(inst, in);
    fprintf(stderr, "mlp: loss %g -> %g in 60 steps\n", first, last);
    assert_true(last < 0.5 * first);
    a.free_(inst);
    cg_jit_free(j);
    arena_free(ar);
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backward_overwrites),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_dropout_in_scan),
        cmocka_unit_test(test_checkpoint_resume),
        cmocka_unit_test(test_opt_levels),
        cmocka_unit_test(test_data_errors),
        cmocka_unit_test(test_set_lr),
        cmocka_unit_test(test_no_train),
        cmocka_unit_test(test_mlp_learns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
