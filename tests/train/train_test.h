/* train_test.h — helpers shared by the training tests: a small linear model
 * built by hand with its gradient ops written out (the autodiff pass's
 * contract: outputs, loss, one grad.NAME per trainable param), models from
 * .nn text through the front end and the pass pipeline (autodiff
 * included), the generated API looked up in a JIT, and comparisons.
 * Included by each test_train_*.c after the cmocka headers; builds on
 * tests/codegen/cg_test.h. */
#ifndef NNC_TRAIN_TEST_H
#define NNC_TRAIN_TEST_H

#include <stdlib.h>

#include "cg_test.h"
#include "frontend/frontend.h"
#include "passes/pass.h"

/* ---- the linear model ----------------------------------------------------
 *
 *   input x : f32[LB, LI]      input y : f32[LB, LO]
 *   param W : f32[LI, LO]      param F : f32[LO] frozen      param b : f32[LO]
 *   z = x @ W + b;  h = dropout(z, p) (site 1, when p > 0);  pred = h * F
 *   output pred;  train mse(pred, y)
 *
 * with the gradients written out:  r = pred - y;  dh = r * (2 / numel) * F;
 * dz = dropout(dh, p) (same site);  grad.W = transpose(x) @ dz;
 * grad.b = sum(dz, axis 0). */
enum { LB = 6, LI = 4, LO = 3 };

static inline TB lin_model(const char *name, TrainSpec spec, double p)
{
    TB t = tb_new(name);
    Value x = tb_input(&t, "x", F32(LB, LI));
    Value y = tb_input(&t, "y", F32(LB, LO));
    Value w = tb_param(&t, "W", F32(LI, LO), INIT_XAVIER_UNIFORM);
    Value f = tb_param(&t, "F", F32(LO), INIT_UNIFORM);
    t.m->params.data[1].frozen = true;
    t.m->params.data[1].init = (Init){INIT_UNIFORM, 0.5, 1.5};
    Value b = tb_param(&t, "b", F32(LO), INIT_NORMAL);
    t.m->params.data[2].init = (Init){INIT_NORMAL, 0.0, 0.5};
    Value z = tb_op2(&t, OP_ADD, tb_op2(&t, OP_MATMUL, x, w), b);
    Attrs drop = {.value = p, .index = 1};
    Value h = p > 0 ? tb_opa(&t, OP_DROPOUT, drop, 1, z) : z;
    Value pred = tb_op2(&t, OP_MUL, h, f);
    tb_output(&t, pred, "pred");
    ir_add_result(t.m, t.g, tb_op2(&t, OP_MSE, pred, y), "loss");
    Value r = tb_op2(&t, OP_SUB, pred, y);
    Value dh =
        tb_op2(&t, OP_MUL,
               tb_op2(&t, OP_MUL, r, tb_const(&t, 2.0 / (LB * LO), F32S)), f);
    Value dz = p > 0 ? tb_opa(&t, OP_DROPOUT, drop, 1, dh) : dh;
    Value dw = tb_op2(&t, OP_MATMUL, tb_op1(&t, OP_TRANSPOSE, x), dz);
    Attrs sum0 = {.axes = 1};
    Value db = tb_opa(&t, OP_SUM, sum0, 1, dz);
    ir_add_result(t.m, t.g, dw, "grad.W");
    ir_add_result(t.m, t.g, db, "grad.b");
    t.m->n_grads = 2;
    t.m->train = spec;
    return t;
}

/* A model with one large parameter, for the thread pool: out = W * x,
 * loss = sum(out), so grad.W is the input x itself. */
static inline TB wide_model(const char *name, int64_t n, TrainSpec spec)
{
    TB t = tb_new(name);
    Value x = tb_input(&t, "x", F32(n));
    Value w = tb_param(&t, "W", F32(n), INIT_NORMAL);
    t.m->params.data[0].init = (Init){INIT_NORMAL, 0, 1};
    Value out = tb_op2(&t, OP_MUL, w, x);
    tb_output(&t, out, "out");
    Attrs all = {.axes = 1};
    ir_add_result(t.m, t.g, tb_opa(&t, OP_SUM, all, 1, out), "loss");
    ir_add_result(t.m, t.g, x, "grad.W");
    t.m->n_grads = 1;
    t.m->train = spec;
    return t;
}

/* Deterministic initial values and data of the linear model. */
typedef struct LinData {
    float W[LI * LO], F[LO], b[LO], x[LB * LI], y[LB * LO];
} LinData;

static inline LinData lin_data(unsigned seed)
{
    LinData d;
    fill(d.W, LI * LO, -1, 1, seed + 1);
    fill(d.F, LO, 0.5f, 1.5f, seed + 2);
    fill(d.b, LO, -0.5f, 0.5f, seed + 3);
    fill(d.x, LB * LI, -1, 1, seed + 4);
    fill(d.y, LB * LO, -2, 2, seed + 5);
    return d;
}

static inline TrainSpec spec_sgd(double lr, double momentum, bool nesterov,
                                 double wd, double clip)
{
    return (TrainSpec){.opt = OPT_SGD,
                       .lr = lr,
                       .momentum = momentum,
                       .nesterov = nesterov,
                       .weight_decay = wd,
                       .clip_grad_norm = clip};
}

static inline TrainSpec spec_adam(OptKind k, double lr, double b1, double b2,
                                  double eps, double wd, double clip)
{
    return (TrainSpec){.opt = k,
                       .lr = lr,
                       .beta1 = b1,
                       .beta2 = b2,
                       .eps = eps,
                       .weight_decay = wd,
                       .clip_grad_norm = clip};
}

/* ---- models from .nn text ------------------------------------------------ */

/* Front end (with "NAME=INT ..." dim overrides), then the pass pipeline
 * with verification after each pass: autodiff adds the gradients (unless
 * no_train, as --no-train). */
static inline Module *nn_compile(Arena *a, const char *file, const char *src,
                                 const char *defines, bool no_train)
{
    return cg_test_compile(a, file, src, defines, no_train);
}

static inline char *read_text_file(const char *path)
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

/* ---- the generated API through the JIT ----------------------------------- */

typedef struct Api {
    const Module *m;
    void *(*new_)(void);
    void (*free_)(void *);
    void (*init)(void *, uint64_t);
    float *(*param)(void *, const char *);
    float *(*grad)(void *, const char *);
    const nnc_model_info *(*info)(void);
    CgTrainArgv backward, train_step;
    CgForwardArgv forward;
    void (*update)(void *);
    void (*set_lr)(void *, float);
    int (*save_ckpt)(const void *, const char *);
    int (*load_ckpt)(void *, const char *);
} Api;

static inline void *api_sym(CgJit *j, const Module *m, const char *suffix)
{
    char name[256];
    snprintf(name, sizeof name, "%s_%s", m->name, suffix);
    void *p = cg_jit_lookup(j, name);
    if (!p)
        fprintf(stderr, "missing symbol %s\n", name);
    assert_non_null(p);
    return p;
}

static inline Api api_get(CgJit *j, const Module *m)
{
    Api a = {.m = m};
    a.new_ = (void *(*)(void))api_sym(j, m, "new");
    a.free_ = (void (*)(void *))api_sym(j, m, "free");
    a.init = (void (*)(void *, uint64_t))api_sym(j, m, "init");
    a.param = (float *(*)(void *, const char *))api_sym(j, m, "param");
    a.grad = (float *(*)(void *, const char *))api_sym(j, m, "grad");
    a.info = (const nnc_model_info *(*)(void))api_sym(j, m, "info");
    a.backward = (CgTrainArgv)api_sym(j, m, "backward_argv");
    a.train_step = (CgTrainArgv)api_sym(j, m, "train_step_argv");
    a.forward = (CgForwardArgv)api_sym(j, m, "forward_argv");
    a.update = (void (*)(void *))api_sym(j, m, "update");
    a.set_lr = (void (*)(void *, float))api_sym(j, m, "set_lr");
    a.save_ckpt =
        (int (*)(const void *, const char *))api_sym(j, m, "save_checkpoint");
    a.load_ckpt =
        (int (*)(void *, const char *))api_sym(j, m, "load_checkpoint");
    return a;
}

static inline CgJit *jit_module_at(const Module *m, int opt_level)
{
    char err[512];
    if (!ir_verify_module(m, err, sizeof err))
        fprintf(stderr, "verify: %s\n", err);
    assert_true(ir_verify_module(m, err, sizeof err));
    CgOptions o = {.opt_level = opt_level};
    CgJit *j = cg_jit_new(m, &o);
    assert_non_null(j);
    return j;
}

static inline CgJit *jit_module(const Module *m) { return jit_module_at(m, 2); }

/* A new instance of the linear model holding d's parameters. */
static inline void *lin_instance(const Api *a, const LinData *d)
{
    void *inst = a->new_();
    assert_non_null(inst);
    a->init(inst, 1);
    memcpy(a->param(inst, "W"), d->W, sizeof d->W);
    memcpy(a->param(inst, "F"), d->F, sizeof d->F);
    memcpy(a->param(inst, "b"), d->b, sizeof d->b);
    return inst;
}

static inline int64_t inst_step(const Api *a, void *inst)
{
    int64_t s;
    memcpy(&s, (char *)inst + a->info()->step_offset, sizeof s);
    return s;
}

/* ---- comparisons ----------------------------------------------------------- */

static inline double rel_l2(const float *got, const float *want, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)got[i] - (double)want[i];
        num += e * e;
        den += (double)want[i] * want[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static inline double l2_norm(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return sqrt(s);
}

static inline char *tmp_file(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", NNC_TEST_TMP, name);
    return p;
}

static inline nnc_tensor_info f32_info(const char *name, int rank,
                                       const int64_t *shape)
{
    nnc_tensor_info t = {.name = name,
                         .role = NNC_ROLE_INPUT,
                         .dtype = NNC_F32,
                         .rank = rank,
                         .param = -1,
                         .numel = 1,
                         .offset = -1};
    for (int i = 0; i < rank; i++) {
        t.shape[i] = shape[i];
        t.numel *= shape[i];
    }
    return t;
}

#endif
