/* Measures the OpenBLAS sgemm peak of this machine for bench/run: one
 * N x N x N single-precision GEMM (default N = 2048) with the given number
 * of OpenBLAS threads, one warm-up call then the median of REPS timed calls
 * (clock_gettime(CLOCK_MONOTONIC)), printed as one JSON line with GFLOP/s
 * counted as 2*N^3 per call.  It links OpenBLAS directly (not libnncrt) and
 * leaves OPENBLAS_CORETYPE and the rest of the environment as they are.
 * Usage: sgemm_peak THREADS [N [REPS]] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* From OpenBLAS's cblas.h, declared here so no include path is needed:
 * CblasRowMajor = 101, CblasNoTrans = 111. */
void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
void openblas_set_num_threads(int n);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double time_sgemm(int n, const float *a, const float *b, float *c)
{
    double t0 = now_s();
    cblas_sgemm(101, 111, 111, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    int n = argc > 2 ? atoi(argv[2]) : 2048;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (threads < 1 || n < 1 || reps < 1 || reps > 1000) {
        fprintf(stderr, "usage: sgemm_peak THREADS [N [REPS]]\n");
        return 2;
    }
    size_t elems = (size_t)n * (size_t)n;
    float *a = malloc(elems * sizeof *a), *b = malloc(elems * sizeof *b), *c = malloc(elems * sizeof *c);
    double t[1000];
    if (!a || !b || !c) {
        fprintf(stderr, "sgemm_peak: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < elems; i++) {
        a[i] = (float)(i % 7) * 0.25f - 0.75f;
        b[i] = (float)(i % 5) * 0.5f - 1.0f;
    }
    openblas_set_num_threads(threads);
    time_sgemm(n, a, b, c);
    for (int i = 0; i < reps; i++)
        t[i] = time_sgemm(n, a, b, c);
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    double med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    printf("{\"threads\": %d, \"n\": %d, \"ms\": %.4f, \"gflops\": %.3f}\n", threads, n, med * 1e3,
           2.0 * n * (double)n * n / med * 1e-9);
    free(a);
    free(b);
    free(c);
    return 0;
}
