/* dp_test.c — the data-parallel tests' program, run by mpi_test.sh under
 * mpirun (or alone for `verify`).  It links six builds of dp.nn.in: for
 * each optimizer (sgd with momentum, adam, adamw; clipping on) one with the
 * full batch of 16 (NAME_ref) and one with half of it (NAME_dp).
 *
 *   dp_test equivalence     2 ranks, 10 steps on 8 examples each against
 *                           10 single-process steps on the 16 concatenated
 *   dp_test mismatch        ranks with different models or bucket sizes
 *                           are refused by nnc_mpi_new on every rank
 *   dp_test data_error      a bad label on one rank: no rank updates
 *   dp_test train OPTIONS   the adam model, trained data-parallel with
 *                           checkpoints; --kill-at S / --hang-at S make
 *                           rank 1 die or hang before step S
 *   dp_test verify CKPT N   (no MPI) the checkpoint loads and is at step N
 *
 * Each mode prints its figures on rank 0 and exits 0 when every check
 * passed on every rank.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adam_dp.h"
#include "adam_ref.h"
#include "adamw_dp.h"
#include "adamw_ref.h"
#include "sgd_dp.h"
#include "sgd_ref.h"

#include "nnc_mpi.h"

enum { B_FULL = 16, IN = 20, K = 5, STEPS = 10 };
#define CLIP    2.4   /* clip_grad_norm of the models (CMakeLists.txt) */
#define REL_TOL 1e-5
#define SMALL_BUCKET 4096

typedef struct batch {
    const float *x;
    const int32_t *y;
} batch;

/* One instance of one build, with the entry points the tests need. */
typedef struct test_model {
    nnc_mpi_model m;
    nnc_mpi_backward_fn backward;
    void (*init)(void *instance, uint64_t seed);
    void (*free)(void *instance);
} test_model;

#define TEST_MODEL(NAME)                                                      \
    NNC_MPI_DEFINE_MODEL(NAME)                                                \
    static float NAME##_bw(void *m, void *b)                                  \
    {                                                                         \
        const batch *t = b;                                                   \
        return NAME##_backward(m, t->x, t->y);                                \
    }                                                                         \
    static void NAME##_init_(void *m, uint64_t s) { NAME##_init(m, s); }      \
    static void NAME##_free_(void *m) { NAME##_free(m); }                     \
    static test_model NAME##_new_test(void)                                   \
    {                                                                         \
        NAME *m = NAME##_new();                                               \
        if (!m) {                                                             \
            fprintf(stderr, "dp_test: out of memory\n");                      \
            exit(1);                                                          \
        }                                                                     \
        test_model t = {NAME##_mpi_model(m), NAME##_bw, NAME##_init_,         \
                        NAME##_free_};                                        \
        return t;                                                             \
    }

TEST_MODEL(sgd_dp)
TEST_MODEL(sgd_ref)
TEST_MODEL(adam_dp)
TEST_MODEL(adam_ref)
TEST_MODEL(adamw_dp)
TEST_MODEL(adamw_ref)

static void drop(test_model *t) { t->free(t->m.instance); }

/* ---- data: a pure function of (step, index) ----------------------------- */

static uint32_t mix(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x7feb352dU;
    h ^= h >> 15;
    h *= 0x846ca68bU;
    h ^= h >> 16;
    return h;
}

static void full_batch(int step, float *x, int32_t *y)
{
    for (int i = 0; i < B_FULL * IN; i++)
        x[i] = (float)(mix((uint32_t)(step * 100003 + i)) >> 8) / 8388608.0f - 1.0f;
    for (int i = 0; i < B_FULL; i++)
        y[i] = (int32_t)(mix((uint32_t)(step * 7919 + i) ^ 0x9e3779b9U) % K);
}

static batch shard_of(const float *x, const int32_t *y, int rank, int size)
{
    int rows = B_FULL / size;
    batch b = {x + (size_t)rank * rows * IN, y + (size_t)rank * rows};
    return b;
}

/* ---- looking at an instance through its table ---------------------------- */

static int is_param(const nnc_tensor_info *t)
{
    return t->role == NNC_ROLE_PARAM || t->role == NNC_ROLE_FROZEN_PARAM;
}

static double grad_norm(const test_model *t)
{
    const nnc_model_info *info = t->m.info;
    double sum = 0;
    for (int i = 0; i < info->n_tensors; i++) {
        const nnc_tensor_info *ti = &info->tensors[i];
        if (ti->role != NNC_ROLE_GRAD)
            continue;
        const float *g = t->m.grad(t->m.instance, ti->name);
        for (int64_t j = 0; j < ti->numel; j++)
            sum += (double)g[j] * g[j];
    }
    return sqrt(sum);
}

/* max over tensors of role `role` of max|a - b| / max|b| (0 when equal). */
static double tensors_rel_diff(const test_model *a, const test_model *b,
                               int grads)
{
    const nnc_model_info *info = a->m.info;
    double worst = 0;
    for (int i = 0; i < info->n_tensors; i++) {
        const nnc_tensor_info *t = &info->tensors[i];
        if (grads ? t->role != NNC_ROLE_GRAD : !is_param(t))
            continue;
        const float *pa = grads ? a->m.grad(a->m.instance, t->name)
                                : a->m.param(a->m.instance, t->name);
        const float *pb = grads ? b->m.grad(b->m.instance, t->name)
                                : b->m.param(b->m.instance, t->name);
        double diff = 0, scale = 0;
        for (int64_t j = 0; j < t->numel; j++) {
            diff = fmax(diff, fabs((double)pa[j] - pb[j]));
            scale = fmax(scale, fabs((double)pb[j]));
        }
        worst = fmax(worst, scale > 0 ? diff / scale : diff);
    }
    return worst;
}

static uint64_t params_hash(const test_model *t)
{
    const nnc_model_info *info = t->m.info;
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < info->n_tensors; i++) {
        const nnc_tensor_info *ti = &info->tensors[i];
        if (!is_param(ti))
            continue;
        const unsigned char *p =
            (const unsigned char *)t->m.param(t->m.instance, ti->name);
        for (int64_t j = 0; j < ti->numel * 4; j++)
            h = (h ^ p[j]) * 1099511628211ull;
    }
    return h;
}

/* The optimizer step counter: the table's step_offset from the base,
 * which is the first parameter's pointer minus its offset. */
static int64_t instance_step(const test_model *t)
{
    const nnc_model_info *info = t->m.info;
    for (int i = 0; i < info->n_tensors; i++)
        if (is_param(&info->tensors[i])) {
            const char *p = (const char *)t->m.param(t->m.instance,
                                                     info->tensors[i].name);
            int64_t step;
            memcpy(&step, p - info->tensors[i].offset + info->step_offset,
                   sizeof step);
            return step;
        }
    return -1;
}

/* ---- helpers for the MPI modes ------------------------------------------- */

static int world_rank(void)
{
    int r;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

static int world_size(void)
{
    int s;
    MPI_Comm_size(MPI_COMM_WORLD, &s);
    return s;
}

/* 1 when ok is true on every rank. */
static int all_ranks(int ok)
{
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all;
}

static int check(int ok, const char *what)
{
    if (!ok)
        fprintf(stderr, "dp_test: rank %d: FAILED: %s (%s)\n", world_rank(),
                what, nnc_last_error());
    return ok;
}

/* timeout 0: NNC_MPI_TIMEOUT, else the default. */
static nnc_mpi *new_context(test_model *t, double timeout, size_t bucket)
{
    nnc_mpi_options o = {timeout, bucket, 0};
    nnc_mpi *dp = nnc_mpi_new(MPI_COMM_WORLD, &t->m, &o);
    if (!dp)
        nnc_mpi_abort(NULL, 1, "nnc_mpi_new: %s", nnc_last_error());
    return dp;
}

/* ---- equivalence --------------------------------------------------------- */

typedef struct figures {
    double loss, norm, params, grads; /* worst relative differences */
    double local_norm_off;            /* smallest |local - full| / full */
    int clipped;                      /* steps whose norm exceeded CLIP */
} figures;

/* One step on the reference and on the replica; records the figures. */
static int equivalence_step(nnc_mpi *dp, test_model *ref, test_model *rep,
                            int step, figures *f)
{
    float x[B_FULL * IN];
    int32_t y[B_FULL];
    full_batch(step, x, y);
    batch all = {x, y};
    float lref = ref->backward(ref->m.instance, &all);
    double nref = grad_norm(ref);
    ref->m.update(ref->m.instance);

    /* the averaged gradients' norm is the full batch's (clipping's input) */
    batch mine = shard_of(x, y, nnc_mpi_rank(dp), nnc_mpi_size(dp));
    float l = rep->backward(rep->m.instance, &mine);
    double nlocal = grad_norm(rep);
    int ok = check(nnc_mpi_allreduce_grads(dp, &l) == NNC_OK, "all-reduce");
    double navg = grad_norm(rep);

    float loss;
    ok &= check(nnc_mpi_step(dp, rep->backward, &mine, &loss) == NNC_OK, "step");
    ok &= check(loss == l, "the step's loss is the all-reduced loss");
    f->loss = fmax(f->loss, fabs((double)loss - lref) / fabs((double)lref));
    f->norm = fmax(f->norm, fabs(navg - nref) / nref);
    f->local_norm_off = fmin(f->local_norm_off, fabs(nlocal - nref) / nref);
    f->clipped += nref > CLIP;
    return ok;
}

static int check_figures(const figures *f)
{
    int ok = check(f->params <= REL_TOL, "parameters match the single process");
    ok &= check(f->grads <= REL_TOL, "clipped gradients match");
    ok &= check(f->loss <= REL_TOL, "losses match");
    ok &= check(f->norm <= REL_TOL, "gradient norms match");
    ok &= check(f->clipped >= 2 && f->clipped <= STEPS - 2,
                "clipping acted in some steps but not all");
    ok &= check(f->local_norm_off > 100 * REL_TOL,
                "local norms differ from the full batch's");
    return ok;
}

static int equivalence(const char *label, test_model ref, test_model rep,
                       size_t bucket, uint64_t *hash)
{
    int rank = world_rank();
    ref.init(ref.m.instance, 7);
    rep.init(rep.m.instance, rank == 0 ? 7 : 1000u + (unsigned)rank);
    nnc_mpi *dp = new_context(&rep, 30, bucket);
    int ok = check(nnc_mpi_broadcast(dp, 0, NNC_MPI_PARAMS) == NNC_OK, "broadcast");
    ok &= check(tensors_rel_diff(&rep, &ref, 0) == 0,
                "after the broadcast, the parameters are rank 0's");
    figures f = {0, 0, 0, 0, INFINITY, 0};
    for (int s = 0; s < STEPS; s++)
        ok &= equivalence_step(dp, &ref, &rep, s, &f);
    f.params = tensors_rel_diff(&rep, &ref, 0);
    f.grads = tensors_rel_diff(&rep, &ref, 1);
    ok &= check_figures(&f);
    ok &= check(nnc_mpi_check_replicas(dp) == NNC_OK, "replicas identical");
    if (rank == 0)
        printf("%-6s bucket %7zu B (%d buckets): params rel %.2e, grads rel %.2e, "
               "loss rel %.2e, norm rel %.2e, clipped %d/%d steps, local norms "
               "off by >= %.1f%%\n",
               label, nnc_mpi_bucket_bytes(dp), nnc_mpi_grad_buckets(dp),
               f.params, f.grads, f.loss, f.norm, f.clipped, STEPS,
               100 * f.local_norm_off);
    *hash = params_hash(&rep);
    nnc_mpi_free(dp);
    drop(&ref);
    drop(&rep);
    return ok;
}

static int mode_equivalence(void)
{
    if (world_size() != 2) {
        fprintf(stderr, "dp_test equivalence: run with 2 ranks\n");
        return 0;
    }
    uint64_t h1, h2, h3;
    int ok = equivalence("sgd", sgd_ref_new_test(), sgd_dp_new_test(),
                         SMALL_BUCKET, &h1);
    ok &= equivalence("adam", adam_ref_new_test(), adam_dp_new_test(),
                      SMALL_BUCKET, &h1);
    ok &= equivalence("adamw", adamw_ref_new_test(), adamw_dp_new_test(),
                      SMALL_BUCKET, &h2);
    ok &= equivalence("adamw", adamw_ref_new_test(), adamw_dp_new_test(), 0, &h3);
    ok &= check(h2 == h3, "the bucket size does not change a bit of the result");
    if (world_rank() == 0 && h2 == h3)
        printf("adamw: parameters bitwise identical with 4 KiB and 4 MiB buckets\n");
    return ok;
}

/* ---- refusals and data errors -------------------------------------------- */

static int expect_refusal(test_model *t, size_t bucket, const char *words)
{
    nnc_mpi_options o = {30.0, bucket, 0};
    nnc_mpi *dp = nnc_mpi_new(MPI_COMM_WORLD, &t->m, &o);
    int ok = check(dp == NULL, "nnc_mpi_new refuses");
    ok &= check(strstr(nnc_last_error(), words) != NULL, words);
    printf("rank %d: refused: %s\n", world_rank(), nnc_last_error());
    nnc_mpi_free(dp);
    return ok;
}

static int mode_mismatch(void)
{
    int rank = world_rank();
    test_model t = rank == 0 ? sgd_dp_new_test() : adam_dp_new_test();
    int ok = expect_refusal(&t, SMALL_BUCKET, "model table differs");
    drop(&t);
    t = adam_dp_new_test();
    ok &= expect_refusal(&t, rank == 0 ? SMALL_BUCKET : 2 * SMALL_BUCKET,
                         "bucket size");
    drop(&t);
    return ok;
}

static int mode_data_error(void)
{
    int rank = world_rank(), size = world_size();
    test_model t = adam_dp_new_test();
    t.init(t.m.instance, 7);
    nnc_mpi *dp = new_context(&t, 30, SMALL_BUCKET);
    int ok = check(nnc_mpi_broadcast(dp, 0, NNC_MPI_PARAMS) == NNC_OK, "broadcast");
    float x[B_FULL * IN], loss;
    int32_t y[B_FULL];
    full_batch(0, x, y);
    batch mine = shard_of(x, y, rank, size);
    ok &= check(nnc_mpi_step(dp, t.backward, &mine, &loss) == NNC_OK, "good step");
    uint64_t before = params_hash(&t);
    int64_t step = instance_step(&t);
    if (rank == size - 1)
        y[B_FULL - 1] = 99; /* the last rank's last label: out of range */
    int rc = nnc_mpi_step(dp, t.backward, &mine, &loss);
    printf("rank %d: status %d, loss %g: %s\n", rank, rc, loss, nnc_last_error());
    ok &= check(rc == NNC_ERR_RANGE && isnan(loss), "every rank fails the step");
    ok &= check(params_hash(&t) == before && instance_step(&t) == step,
                "no rank updated");
    ok &= check(nnc_mpi_check_replicas(dp) == NNC_OK, "replicas identical");
    y[B_FULL - 1] = 1;
    ok &= check(nnc_mpi_step(dp, t.backward, &mine, &loss) == NNC_OK,
                "training goes on");
    nnc_mpi_free(dp);
    drop(&t);
    return ok;
}

/* ---- training with checkpoints, faults, resume --------------------------- */

typedef struct train_args {
    int steps, every, kill_at, hang_at;
    const char *ckpt, *resume, *final;
} train_args;

static int parse_train(int argc, char **argv, train_args *a)
{
    *a = (train_args){STEPS, 2, 0, 0, NULL, NULL, NULL};
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--steps")) a->steps = atoi(v);
        else if (!strcmp(k, "--every")) a->every = atoi(v);
        else if (!strcmp(k, "--kill-at")) a->kill_at = atoi(v);
        else if (!strcmp(k, "--hang-at")) a->hang_at = atoi(v);
        else if (!strcmp(k, "--ckpt")) a->ckpt = v;
        else if (!strcmp(k, "--resume")) a->resume = v;
        else if (!strcmp(k, "--final")) a->final = v;
        else return 0;
    }
    return (argc % 2) == 0 && a->every > 0;
}

/* Rank 1's faults, just before step s (1-based) starts. */
static void maybe_fail(const train_args *a, int s)
{
    if (world_rank() != 1)
        return;
    if (s == a->kill_at) {
        fprintf(stderr, "dp_test: rank 1 kills itself before step %d\n", s);
        raise(SIGKILL);
    }
    if (s == a->hang_at) {
        fprintf(stderr, "dp_test: rank 1 hangs before step %d\n", s);
        for (;;)
            pause();
    }
}

static void train_step(nnc_mpi *dp, test_model *t, const train_args *a, int s)
{
    float x[B_FULL * IN], loss;
    int32_t y[B_FULL];
    full_batch(s - 1, x, y);
    batch mine = shard_of(x, y, nnc_mpi_rank(dp), nnc_mpi_size(dp));
    if (nnc_mpi_step(dp, t->backward, &mine, &loss) != NNC_OK)
        nnc_mpi_abort(dp, 1, "step %d: %s", s, nnc_last_error());
    if (nnc_mpi_rank(dp) == 0)
        printf("step %d loss %.6f\n", s, loss);
    if (a->ckpt && s % a->every == 0) {
        if (nnc_mpi_save_checkpoint(dp, a->ckpt) != NNC_OK)
            nnc_mpi_abort(dp, 1, "checkpoint: %s", nnc_last_error());
        if (nnc_mpi_rank(dp) == 0)
            printf("checkpoint at step %d\n", s);
    }
    fflush(stdout);
}

static int mode_train(int argc, char **argv)
{
    train_args a;
    if (!parse_train(argc, argv, &a)) {
        fprintf(stderr, "dp_test train: bad arguments\n");
        return 0;
    }
    test_model t = adam_dp_new_test();
    t.init(t.m.instance, 7);
    nnc_mpi *dp = new_context(&t, 0, SMALL_BUCKET);
    int rc = a.resume ? nnc_mpi_load_checkpoint(dp, a.resume)
                      : nnc_mpi_broadcast(dp, 0, NNC_MPI_PARAMS);
    if (rc != NNC_OK)
        nnc_mpi_abort(dp, 1, "%s", nnc_last_error());
    if (a.resume && nnc_mpi_rank(dp) == 0)
        printf("resumed at step %lld\n", (long long)instance_step(&t));
    for (int s = (int)instance_step(&t) + 1; s <= a.steps; s++) {
        maybe_fail(&a, s);
        train_step(dp, &t, &a, s);
    }
    int ok = check(nnc_mpi_check_replicas(dp) == NNC_OK, "replicas identical");
    if (a.final)
        ok &= check(nnc_mpi_save_checkpoint(dp, a.final) == NNC_OK, "final save");
    nnc_mpi_free(dp);
    drop(&t);
    return ok;
}

/* ---- verify (no MPI) ------------------------------------------------------ */

static int mode_verify(const char *path, long expected)
{
    test_model t = adam_dp_new_test();
    t.init(t.m.instance, 7);
    int rc = t.m.load_checkpoint(t.m.instance, path);
    long step = (long)instance_step(&t);
    printf("verify %s: status %d, step %ld (expected %ld)%s%s\n", path, rc, step,
           expected, rc ? ": " : "", rc ? nnc_last_error() : "");
    drop(&t);
    return rc == NNC_OK && step == expected;
}

static int run_mode(int argc, char **argv)
{
    const char *mode = argv[1];
    if (!strcmp(mode, "equivalence")) return mode_equivalence();
    if (!strcmp(mode, "mismatch")) return mode_mismatch();
    if (!strcmp(mode, "data_error")) return mode_data_error();
    if (!strcmp(mode, "train")) return mode_train(argc, argv);
    fprintf(stderr, "dp_test: unknown mode '%s'\n", mode);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: dp_test MODE [ARGS]\n");
        return 2;
    }
    if (!strcmp(argv[1], "verify"))
        return argc == 4 && mode_verify(argv[2], atol(argv[3])) ? 0 : 1;
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int ok = all_ranks(run_mode(argc, argv));
    if (world_rank() == 0)
        printf("dp_test %s: %s\n", argv[1], ok ? "passed" : "FAILED");
    MPI_Finalize();
    return ok ? 0 : 1;
}
