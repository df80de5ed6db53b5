/* Training tests: five optimizer steps of the generated code equal
 * torch.optim's.  The linear model of train_test.h (a frozen parameter F
 * between two trainable ones) is JIT-compiled once per optimizer
 * configuration — sgd plain, with momentum, nesterov and weight decay,
 * adam with and without weight decay, adamw — each with and without
 * clip_grad_norm, trained five steps with NAME_train_step from the same
 * initial values that torch_train.py trains with torch.optim in float32.
 * The parameters, each step's loss and the optimizer state (under
 * torch.optim's names) must agree to a relative L2 error of 1e-4; F must
 * be unchanged, have no gradient and no state; and with clipping the first
 * step must actually have clipped (torch's norm above the limit) and left
 * gradient buffers of exactly the limit's norm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "train_test.h"

#define STEPS 5
#define TOL   1e-4

typedef struct Config {
    const char *name;
    TrainSpec spec;
} Config;

static const Config base[] = {
    {"sgd", {.opt = OPT_SGD, .lr = 0.1}},
    {"sgd_momentum", {.opt = OPT_SGD, .lr = 0.1, .momentum = 0.9}},
    {"sgd_nesterov",
     {.opt = OPT_SGD, .lr = 0.1, .momentum = 0.8, .nesterov = true}},
    {"sgd_weight_decay", {.opt = OPT_SGD, .lr = 0.1, .weight_decay = 0.1}},
    {"sgd_momentum_weight_decay",
     {.opt = OPT_SGD, .lr = 0.05, .momentum = 0.9, .weight_decay = 0.05}},
    {"adam",
     {.opt = OPT_ADAM, .lr = 0.05, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8}},
    {"adam_weight_decay",
     {.opt = OPT_ADAM,
      .lr = 0.05,
      .beta1 = 0.8,
      .beta2 = 0.99,
      .eps = 1e-6,
      .weight_decay = 0.1}},
    {"adamw",
     {.opt = OPT_ADAMW,
      .lr = 0.05,
      .beta1 = 0.9,
      .beta2 = 0.999,
      .eps = 1e-8,
      .weight_decay = 0.1}},
};
enum { N_BASE = sizeof base / sizeof base[0], N_CONFIGS = 2 * N_BASE };
#define CLIP 0.5

static Config config(int k)
{
    Config c = base[k % N_BASE];
    if (k >= N_BASE)
        c.spec.clip_grad_norm = CLIP;
    return c;
}

static void config_text(const TrainSpec *s, char *buf, size_t len)
{
    if (s->opt == OPT_SGD)
        snprintf(buf, len,
                 "opt=sgd:lr=%.17g:momentum=%.17g:nesterov=%d:weight_decay=%."
                 "17g:clip=%.17g",
                 s->lr, s->momentum, s->nesterov, s->weight_decay,
                 s->clip_grad_norm);
    else
        snprintf(buf, len,
                 "opt=%s:lr=%.17g:beta1=%.17g:beta2=%.17g:eps=%.17g:weight_"
                 "decay=%.17g:clip=%.17g",
                 s->opt == OPT_ADAM ? "adam" : "adamw", s->lr, s->beta1,
                 s->beta2, s->eps, s->weight_decay, s->clip_grad_norm);
}

static void write_init(const LinData *d, const char *path)
{
    const int64_t sw[] = {LI, LO}, sv[] = {LO}, sx[] = {LB, LI},
                  sy[] = {LB, LO};
    nnc_tensor_info t[] = {f32_info("W", 2, sw), f32_info("F", 1, sv),
                           f32_info("b", 1, sv), f32_info("x", 2, sx),
                           f32_info("y", 2, sy)};
    const void *src[] = {d->W, d->F, d->b, d->x, d->y};
    assert_int_equal(nnc_st_save_tensors(path, 5, t, src), 0);
}

/* torch.optim for every configuration in one Python run. */
static void run_torch(const char *init, const char *prefix)
{
    static char cmd[16384];
    int o = snprintf(cmd, sizeof cmd, "%s %s/torch_train.py optim %s %s %d",
                     NNC_PYTHON, NNC_TEST_SRC, init, prefix, STEPS);
    for (int k = 0; k < N_CONFIGS; k++) {
        char text[512];
        Config c = config(k);
        config_text(&c.spec, text, sizeof text);
        o += snprintf(cmd + o, sizeof cmd - (size_t)o, " %s", text);
    }
    fprintf(stderr, "+ %s\n", cmd);
    assert_int_equal(system(cmd), 0);
}

typedef struct Ref {
    float W[LI * LO], b[LO], F[LO], loss[STEPS], norm[STEPS];
    float state[4][LI * LO]; /* W.slot0, W.slot1, b.slot0, b.slot1 */
} Ref;

static void load_ref(const char *path, const TrainSpec *s, Ref *r)
{
    const char *slots[CG_MAX_OPT_SLOTS];
    int n_slots = cg_opt_slots(s, slots);
    const int64_t sw[] = {LI, LO}, sv[] = {LO}, ss[] = {STEPS};
    nnc_tensor_info t[12];
    void *dst[12];
    char names[4][64];
    int n = 0;
    t[n] = f32_info("W", 2, sw), dst[n++] = r->W;
    t[n] = f32_info("b", 1, sv), dst[n++] = r->b;
    t[n] = f32_info("F", 1, sv), dst[n++] = r->F;
    t[n] = f32_info("loss", 1, ss), dst[n++] = r->loss;
    t[n] = f32_info("norm", 1, ss), dst[n++] = r->norm;
    for (int k = 0; k < n_slots; k++) {
        snprintf(names[k], 64, "W.%s", slots[k]);
        t[n] = f32_info(names[k], 2, sw), dst[n++] = r->state[k];
        snprintf(names[2 + k], 64, "b.%s", slots[k]);
        t[n] = f32_info(names[2 + k], 1, sv), dst[n++] = r->state[2 + k];
    }
    int rc = nnc_st_load_exact(path, n, t, dst);
    if (rc)
        fprintf(stderr, "%s\n", nnc_last_error());
    assert_int_equal(rc, 0);
}

static void expect_rel(const char *cfg, const char *what, const float *got,
                       const float *want, int64_t n, double *worst)
{
    double e = rel_l2(got, want, n);
    fprintf(stderr, "  %-34s %-18s relative L2 error %.2e\n", cfg, what, e);
    if (e > *worst)
        *worst = e;
    assert_true(e <= TOL);
}

/* The optimizer state through the info table, compared with torch's. */
static void check_state(const Api *a, void *inst, const char *cfg,
                        const TrainSpec *spec, const Ref *r, double *worst)
{
    const char *slots[CG_MAX_OPT_SLOTS];
    int n_slots = cg_opt_slots(spec, slots);
    const nnc_model_info *info = a->info();
    int found = 0;
    for (int i = 0; i < info->n_tensors; i++)
        found += info->tensors[i].role == NNC_ROLE_OPT_STATE;
    assert_int_equal(found, 2 * n_slots); /* W and b; nothing for frozen F */
    for (int k = 0; k < n_slots; k++) {
        char name[64];
        snprintf(name, sizeof name, "W.%s", slots[k]);
        float *w = nnc_model_tensor(info, inst, name, NNC_ROLE_OPT_STATE);
        snprintf(name, sizeof name, "b.%s", slots[k]);
        float *b = nnc_model_tensor(info, inst, name, NNC_ROLE_OPT_STATE);
        assert_non_null(w);
        assert_non_null(b);
        snprintf(name, sizeof name, "W.%s", slots[k]);
        expect_rel(cfg, name, w, r->state[k], LI * LO, worst);
        snprintf(name, sizeof name, "b.%s", slots[k]);
        expect_rel(cfg, name, b, r->state[2 + k], LO, worst);
        snprintf(name, sizeof name, "F.%s", slots[k]);
        assert_null(nnc_model_tensor(info, inst, name, NNC_ROLE_OPT_STATE));
    }
}

/* After step 1 of a clipping config, the gradient buffers have been scaled
 * to a global norm of exactly CLIP (torch's norm was above it). */
static void check_clipped(const Api *a, void *inst, const Ref *r)
{
    float *gw = a->grad(inst, "W"), *gb = a->grad(inst, "b");
    double n = sqrt(pow(l2_norm(gw, LI * LO), 2) + pow(l2_norm(gb, LO), 2));
    fprintf(stderr, "  clip: torch norm %.6g, clipped buffers %.6g\n",
            r->norm[0], n);
    assert_true(r->norm[0] > CLIP * 1.5);
    assert_true(fabs(n - CLIP) < 1e-5);
}

static void check_config(int k, const LinData *d, const char *prefix,
                         double *worst)
{
    Config c = config(k);
    char name[64], ref_path[512];
    snprintf(name, sizeof name, "lin_%s%s", c.name,
             c.spec.clip_grad_norm > 0 ? "_clip" : "");
    TB t = lin_model(name, c.spec, 0);
    CgJit *j = jit_module(t.m);
    Api a = api_get(j, t.m);
    void *inst = lin_instance(&a, d);
    snprintf(ref_path, sizeof ref_path, "%s%d.safetensors", prefix, k);
    Ref r;
    load_ref(ref_path, &c.spec, &r);
    float loss[STEPS];
    void *in[] = {(void *)d->x, (void *)d->y};
    for (int s = 0; s < STEPS; s++) {
        loss[s] = a.train_step(inst, in);
        if (s == 0 && c.spec.clip_grad_norm > 0)
            check_clipped(&a, inst, &r);
    }
    expect_rel(name, "loss", loss, r.loss, STEPS, worst);
    expect_rel(name, "W", a.param(inst, "W"), r.W, LI * LO, worst);
    expect_rel(name, "b", a.param(inst, "b"), r.b, LO, worst);
    assert_memory_equal(a.param(inst, "F"), d->F, sizeof d->F);
    assert_null(a.grad(inst, "F"));
    assert_non_null(a.grad(inst, "W"));
    assert_int_equal(inst_step(&a, inst), STEPS);
    check_state(&a, inst, name, &c.spec, &r, worst);
    a.free_(inst);
    tb_free(&t, j);
}

static void test_optimizers_match_torch(void **state)
{
    LinData d = lin_data(3);
    const char *init = tmp_file("optim_init.safetensors");
    const char *prefix = tmp_file("optim_ref_");
    write_init(&d, init);
    run_torch(init, prefix);
    double worst = 0;
    for (int k = 0; k < N_CONFIGS; k++)
        check_config(k, &d, prefix, &worst);
    fprintf(stderr,
            "%d configurations, %d steps: worst relative L2 error %.2e\n",
            N_CONFIGS, STEPS, worst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optimizers_match_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
