/* Timing harness for data-parallel training of one nnc-generated model with
 * libnncrt_mpi (bench/mpi_run, docs/bench.md "Data-parallel scaling").  It
 * is linked with a per-model glue file that bench/mpi_run writes (it
 * includes the generated header and nnc_mpi.h and defines the bench_*
 * functions below), with libnncrt_mpi, libnncrt and MPI.
 *
 *   mpi_harness local WARMUP STEPS      one process, no MPI call at all:
 *                                       NAME_backward then NAME_update
 *                                       (what NAME_train_step does)
 *   mpirun -np N mpi_harness mpi WARMUP STEPS
 *                                       N ranks, each with its own batch of
 *                                       B examples: nnc_mpi_step (backward,
 *                                       gradient all-reduce, update)
 *
 * Inputs are allocated from the model's info table: floats uniform in
 * [-1, 1], ids and targets uniform in [0, bench_id_range[i]), drawn from a
 * generator seeded with the rank, so every rank trains on its own data.
 * Every rank starts from rank 0's parameters (NAME_init with seed 1, then a
 * broadcast).  It runs WARMUP untimed steps, then STEPS timed ones, each
 * timed with clock_gettime(CLOCK_MONOTONIC) on rank 0 (the all-reduce in
 * every step keeps the ranks in lock step), and the backward pass inside
 * each step on its own.  Rank 0 prints one JSON line: the median and mean
 * ms per step, the median ms of the backward pass, the last (averaged)
 * loss, ranks, threads, the batch of one rank, peak RSS (KiB, the largest
 * over the ranks) and, with MPI, whether the replicas are still bitwise
 * equal at the end (nnc_mpi_check_replicas; null for one process). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "nnc_mpi.h"

#define BENCH_MAX_IO 16

/* Defined by the generated glue file. */
extern const int64_t bench_id_range[];
extern const int64_t bench_batch;
const nnc_model_info *bench_info(void);
void *bench_new(void);
void bench_free(void *m);
void bench_init(void *m);
float bench_backward(void *m, void *const *inputs);
void bench_update(void *m);
nnc_mpi_model bench_mpi_model(void *m);

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double sum(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s;
}

/* xorshift64: the inputs only need to be in range and differ by rank. */
static uint64_t rng_state;
static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void *random_input(const nnc_tensor_info *t, int64_t range)
{
    void *p = malloc((size_t)t->numel * 4);
    if (!p)
        return NULL;
    for (int64_t i = 0; i < t->numel; i++) {
        if (t->dtype == NNC_I32)
            ((int32_t *)p)[i] = (int32_t)(rng_next() % (uint64_t)range);
        else
            ((float *)p)[i] = (float)((double)(rng_next() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    return p;
}

/* Allocates every input of the info table; the number of inputs, or -1. */
static int alloc_inputs(const nnc_model_info *info, void **in)
{
    int n = 0;
    for (int i = 0; i < info->n_tensors; i++) {
        const nnc_tensor_info *t = &info->tensors[i];
        if (t->role != NNC_ROLE_INPUT)
            continue;
        if (n == BENCH_MAX_IO || !(in[n] = random_input(t, bench_id_range[n])))
            return -1;
        n++;
    }
    return n;
}

/* What nnc_mpi_step hands to the backward callback: the inputs, and where
 * to record how long the backward pass took. */
typedef struct step_batch {
    void *const *in;
    double backward_ms;
} step_batch;

static float timed_backward(void *m, void *b)
{
    step_batch *s = b;
    double t0 = now_ms();
    float loss = bench_backward(m, s->in);
    s->backward_ms = now_ms() - t0;
    return loss;
}

typedef struct run_result {
    double *step_ms, *backward_ms; /* per timed step */
    float loss;
    int status;
} run_result;

/* One step: local (dp == NULL) or data-parallel. */
static void one_step(nnc_mpi *dp, void *m, step_batch *b, run_result *r)
{
    if (dp) {
        r->status |= nnc_mpi_step(dp, timed_backward, b, &r->loss);
    } else {
        r->loss = timed_backward(m, b);
        bench_update(m);
    }
}

static void run_steps(nnc_mpi *dp, void *m, void *const *in, int warmup, int steps, run_result *r)
{
    step_batch b = {in, 0};
    for (int i = 0; i < warmup; i++)
        one_step(dp, m, &b, r);
    if (dp)
        MPI_Barrier(MPI_COMM_WORLD); /* start the timed steps together */
    for (int i = 0; i < steps; i++) {
        double t0 = now_ms();
        one_step(dp, m, &b, r);
        r->step_ms[i] = now_ms() - t0;
        r->backward_ms[i] = b.backward_ms;
    }
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "local") && strcmp(argv[1], "mpi"))) {
        fprintf(stderr, "usage: %s local|mpi WARMUP STEPS\n", argv[0]);
        return 2;
    }
    int use_mpi = !strcmp(argv[1], "mpi");
    int warmup = atoi(argv[2]), steps = atoi(argv[3]);
    if (warmup < 0 || steps < 1) {
        fprintf(stderr, "mpi_harness: bad step counts\n");
        return 2;
    }
    int rank = 0, ranks = 1;
    if (use_mpi) {
        int provided;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    }
    rng_state = 0x9e3779b97f4a7c15ull ^ (0x2545f4914f6cdd1dull * (uint64_t)(rank + 1));

    void *in[BENCH_MAX_IO];
    run_result r = {malloc((size_t)steps * sizeof(double)),
                    malloc((size_t)steps * sizeof(double)), NAN, 0};
    void *m = bench_new();
    int n_in = m ? alloc_inputs(bench_info(), in) : -1;
    if (!r.step_ms || !r.backward_ms || n_in < 0) {
        fprintf(stderr, "mpi_harness: rank %d: out of memory\n", rank);
        if (use_mpi)
            MPI_Abort(MPI_COMM_WORLD, 1);
        return 1;
    }
    bench_init(m);

    nnc_mpi *dp = NULL;
    int buckets = 0;
    if (use_mpi) {
        nnc_mpi_model model = bench_mpi_model(m);
        if (!(dp = nnc_mpi_new(MPI_COMM_WORLD, &model, NULL)))
            nnc_mpi_abort(NULL, 1, "%s", nnc_last_error());
        if (nnc_mpi_broadcast(dp, 0, NNC_MPI_PARAMS) != NNC_OK)
            nnc_mpi_abort(dp, 1, "broadcast: %s", nnc_last_error());
        buckets = nnc_mpi_grad_buckets(dp);
    }

    run_steps(dp, m, in, warmup, steps, &r);
    if (r.status != NNC_OK || !isfinite(r.loss)) {
        if (dp)
            nnc_mpi_abort(dp, 1, "model error: %s", nnc_last_error());
        fprintf(stderr, "mpi_harness: model error: %s\n", nnc_last_error());
        return 1;
    }
    /* -1: not checked (one process) */
    int replicas_equal = dp ? nnc_mpi_check_replicas(dp) == NNC_OK : -1;

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long rss_kb = ru.ru_maxrss;
    if (use_mpi)
        MPI_Reduce(rank ? &ru.ru_maxrss : MPI_IN_PLACE, &rss_kb, 1, MPI_LONG, MPI_MAX, 0,
                   MPI_COMM_WORLD);
    double mean_ms = sum(r.step_ms, steps) / steps;
    if (rank == 0)
        printf("{\"mode\": \"%s\", \"ranks\": %d, \"threads\": %d, \"batch_per_rank\": %lld, "
               "\"step_ms\": %.6f, \"mean_step_ms\": %.6f, \"backward_ms\": %.6f, "
               "\"loss\": %.6f, \"rss_kb\": %ld, \"grad_buckets\": %d, \"replicas_equal\": %s}\n",
               argv[1], ranks, nnc_get_num_threads(), (long long)bench_batch,
               median(r.step_ms, steps), mean_ms, median(r.backward_ms, steps), (double)r.loss,
               rss_kb, buckets,
               replicas_equal < 0 ? "null" : replicas_equal ? "true" : "false");
    fflush(stdout);

    for (int i = 0; i < n_in; i++)
        free(in[i]);
    free(r.step_ms);
    free(r.backward_ms);
    nnc_mpi_free(dp);
    bench_free(m);
    if (use_mpi)
        MPI_Finalize();
    return replicas_equal != 0 ? 0 : 1;
}
