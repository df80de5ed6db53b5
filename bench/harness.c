/* Timing harness for one nnc-generated model, linked with a per-model glue
 * file that bench/run writes (it includes the generated header and defines
 * the bench_* functions below, which call NAME_new, NAME_train_step and
 * NAME_forward with the right arguments).  Inputs and outputs are allocated
 * from the model's info table; float inputs are uniform in [-1, 1], integer
 * inputs (ids, targets) uniform in [0, bench_id_range[i]).  It times
 * `warmup` untimed then `steps` timed training steps, then the same for the
 * forward pass, each step with clock_gettime(CLOCK_MONOTONIC), and prints
 * one JSON line: median ms per step of each, the last loss, the peak
 * resident set size of the process (getrusage ru_maxrss, KiB), the
 * resident set just before NAME_new (base_rss_kb: the program, its
 * libraries and the inputs) and the bytes of the model's instance
 * (model_bytes: parameters, gradients, optimizer state and the planned
 * workspace), so that the growth of the process can be set against what
 * the model needs.
 * Usage: harness WARMUP STEPS */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "nnc.h"

#define BENCH_MAX_IO 16

/* Defined by the generated glue file. */
extern const int64_t bench_id_range[];
const nnc_model_info *bench_info(void);
void *bench_new(void);
void bench_free(void *m);
void bench_init(void *m);
float bench_train(void *m, void *const *inputs);
int bench_forward(void *m, void *const *inputs, float *const *outputs);

/* The current resident set in KiB (/proc/self/statm), or -1. */
static long current_rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = -1;
        fclose(f);
    }
    return resident < 0 ? -1 : resident * 4;
}

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

/* A small xorshift generator: the inputs only need to be in range. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
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

/* Allocates every input and output of the info table; returns 0 on success. */
static int alloc_io(const nnc_model_info *info, void **in, int *n_in, float **out, int *n_out)
{
    *n_in = *n_out = 0;
    for (int i = 0; i < info->n_tensors; i++) {
        const nnc_tensor_info *t = &info->tensors[i];
        if (t->role == NNC_ROLE_INPUT && *n_in < BENCH_MAX_IO) {
            in[*n_in] = random_input(t, bench_id_range[*n_in]);
            if (!in[(*n_in)++])
                return -1;
        } else if (t->role == NNC_ROLE_OUTPUT && *n_out < BENCH_MAX_IO) {
            out[*n_out] = calloc((size_t)t->numel, 4);
            if (!out[(*n_out)++])
                return -1;
        }
    }
    return 0;
}

static double time_train(void *m, void *const *in, int warmup, int steps, double *samples, float *loss)
{
    for (int i = 0; i < warmup; i++)
        *loss = bench_train(m, in);
    for (int i = 0; i < steps; i++) {
        double t0 = now_ms();
        *loss = bench_train(m, in);
        samples[i] = now_ms() - t0;
    }
    return median(samples, steps);
}

static double time_forward(void *m, void *const *in, float *const *out, int warmup, int steps,
                           double *samples, int *status)
{
    for (int i = 0; i < warmup; i++)
        *status |= bench_forward(m, in, out);
    for (int i = 0; i < steps; i++) {
        double t0 = now_ms();
        *status |= bench_forward(m, in, out);
        samples[i] = now_ms() - t0;
    }
    return median(samples, steps);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s WARMUP STEPS\n", argv[0]);
        return 2;
    }
    int warmup = atoi(argv[1]), steps = atoi(argv[2]);
    if (warmup < 0 || steps < 1) {
        fprintf(stderr, "harness: bad step counts\n");
        return 2;
    }
    void *in[BENCH_MAX_IO];
    float *out[BENCH_MAX_IO];
    int n_in, n_out, status = 0;
    double *samples = malloc((size_t)steps * sizeof *samples);
    if (!samples || alloc_io(bench_info(), in, &n_in, out, &n_out) != 0) {
        fprintf(stderr, "harness: out of memory\n");
        return 1;
    }
    long base_rss_kb = current_rss_kb();
    void *m = bench_new();
    if (!m) {
        fprintf(stderr, "harness: out of memory\n");
        return 1;
    }
    bench_init(m);
    float loss = NAN;
    double train_ms = time_train(m, in, warmup, steps, samples, &loss);
    double fwd_ms = time_forward(m, in, out, warmup, steps, samples, &status);
    if (status != 0 || !isfinite(loss)) {
        fprintf(stderr, "harness: model error: %s\n", nnc_last_error());
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"train_ms\": %.6f, \"fwd_ms\": %.6f, \"loss\": %.6f, \"rss_kb\": %ld, "
           "\"base_rss_kb\": %ld, \"model_bytes\": %lld}\n",
           train_ms, fwd_ms, (double)loss, ru.ru_maxrss, base_rss_kb,
           (long long)bench_info()->total_bytes);
    for (int i = 0; i < n_in; i++)
        free(in[i]);
    for (int i = 0; i < n_out; i++)
        free(out[i]);
    free(samples);
    bench_free(m);
    return 0;
}
