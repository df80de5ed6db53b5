/* pool.c — the thread pool behind nnc_parallel_for, and the one-time setup
 * of the runtime (thread count from NNC_NUM_THREADS, OpenBLAS pinned to
 * one thread).
 *
 * Workers are started by nnc_runtime_prepare(), which every generated
 * NAME_new calls (creating a thread allocates its stack and TLS, and
 * nothing may allocate after NAME_new); from then on nnc_set_num_threads
 * starts any extra workers at once.  A program that never makes a model
 * starts them lazily, the first time a region needs them.  They live for
 * the whole process, parked on a condition variable between
 * regions: no busy spinning, so two processes (or a pool and OpenBLAS)
 * sharing cores do not burn each other's time.  A region publishes one job
 * under the pool mutex and bumps a generation counter; worker t runs chunk
 * t of a static partition, the caller runs chunk 0 and waits for the rest.
 * The partition depends only on n and the thread count, never on timing.
 *
 * A message that fn sets with nnc_rt_set_error on a worker is copied to
 * the caller's nnc_last_error() when the region ends (chunk 0's own
 * message first, then the lowest failing worker chunk's).
 *
 * One region runs at a time: a caller that finds the pool busy (another
 * thread's region) or is itself inside a region (a nested call) runs its
 * range serially on its own thread, which is always correct and never
 * oversubscribes the cores.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <pthread.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

/* OpenBLAS's own control; declared here so that any cblas.h will do. */
extern void openblas_set_num_threads(int n);

#define POOL_MAX_THREADS 256

typedef struct Job {
    nnc_range_fn fn;
    void *ctx;
    int64_t n;
    int chunks;  /* the partition: min(threads, n) */
    int workers; /* chunks 1..workers run on workers; the rest on the caller */
} Job;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* workers park here */
    pthread_cond_t done;    /* the region's owner waits here */
    pthread_mutex_t region; /* held by the thread running a region */
    int threads;            /* configured size, >= 1 */
    int default_threads;
    int started;         /* workers 1..started exist */
    int prepared;        /* nnc_runtime_prepare ran: keep workers started */
    uint64_t generation; /* bumped for every job */
    uint64_t start_gen[POOL_MAX_THREADS];
    Job job;
    int remaining; /* worker chunks not yet finished */
    int err_chunk; /* lowest worker chunk that set an error, INT_MAX: none */
    char err_msg[NNCRT_ERROR_CAP]; /* its message */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER,
          .region = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static _Thread_local int in_region;

/* ---- setup --------------------------------------------------------------- */

static int clamp_threads(long n)
{
    return n < 1 ? 1 : n > POOL_MAX_THREADS ? POOL_MAX_THREADS : (int)n;
}

/* The CPUs this process may run on (taskset, cgroup cpusets), else the
 * online cores. */
static int available_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return clamp_threads(CPU_COUNT(&set));
    return clamp_threads(sysconf(_SC_NPROCESSORS_ONLN));
}

static int env_threads(void)
{
    const char *s = getenv("NNC_NUM_THREADS");
    char *end;
    if (!s || !*s)
        return 0;
    long n = strtol(s, &end, 10);
    return *end == '\0' && n >= 1 ? clamp_threads(n) : 0;
}

/* A forked child has only the forking thread: forget the workers. */
static void forget_workers(void)
{
    pthread_mutex_init(&pool.mu, NULL);
    pthread_mutex_init(&pool.region, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.started = 0;
    pool.remaining = 0;
}

static void setup(void)
{
    pthread_atfork(NULL, NULL, forget_workers);
    int env = env_threads();
    pool.default_threads = env ? env : available_cores();
    pool.threads = pool.default_threads;
    openblas_set_num_threads(1); /* see docs/runtime.md */
}

void nncrt_setup(void) { pthread_once(&setup_once, setup); }

static int ensure_workers(int want);

/* A running region keeps the partition it started with. */
void nnc_set_num_threads(int n)
{
    nncrt_setup();
    pthread_mutex_lock(&pool.mu);
    pool.threads = n < 1 ? pool.default_threads : clamp_threads(n);
    int want = pool.prepared ? pool.threads - 1 : 0;
    pthread_mutex_unlock(&pool.mu);
    ensure_workers(want);
}

void nnc_runtime_prepare(void)
{
    nncrt_setup();
    pthread_mutex_lock(&pool.mu);
    pool.prepared = 1;
    int want = pool.threads - 1;
    pthread_mutex_unlock(&pool.mu);
    ensure_workers(want);
}

int nnc_get_num_threads(void)
{
    nncrt_setup();
    pthread_mutex_lock(&pool.mu);
    int n = pool.threads;
    pthread_mutex_unlock(&pool.mu);
    return n;
}

/* ---- the partition ------------------------------------------------------- */

static void chunk_range(int64_t n, int chunks, int t, int64_t *begin,
                        int64_t *end)
{
    int64_t q = n / chunks, r = n % chunks;
    *begin = t * q + (t < r ? t : r);
    *end = *begin + q + (t < r);
}

static void run_chunk(const Job *job, int t)
{
    int64_t begin, end;
    chunk_range(job->n, job->chunks, t, &begin, &end);
    if (begin < end)
        job->fn(job->ctx, begin, end);
}

/* ---- workers ------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    in_region = 1; /* anything a worker calls runs serially */
    pthread_mutex_lock(&pool.mu);
    uint64_t seen = pool.start_gen[id];
    for (;;) {
        while (pool.generation == seen)
            pthread_cond_wait(&pool.wake, &pool.mu);
        seen = pool.generation;
        Job job = pool.job;
        if (id > job.workers)
            continue;
        pthread_mutex_unlock(&pool.mu);
        unsigned errors = nncrt_error_count();
        run_chunk(&job, id);
        pthread_mutex_lock(&pool.mu);
        if (nncrt_error_count() != errors && id < pool.err_chunk) {
            pool.err_chunk = id;
            snprintf(pool.err_msg, sizeof pool.err_msg, "%s", nnc_last_error());
        }
        if (--pool.remaining == 0)
            pthread_cond_signal(&pool.done);
    }
    return NULL;
}

/* Starts workers up to `want`; returns how many exist (creation can fail
 * under a thread limit, and the caller then runs those chunks itself). */
static int ensure_workers(int want)
{
    pthread_mutex_lock(&pool.mu);
    while (pool.started < want) {
        int id = pool.started + 1;
        pthread_t th;
        pthread_attr_t attr;
        pool.start_gen[id] = pool.generation;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &attr, worker_main, (void *)(intptr_t)id);
        pthread_attr_destroy(&attr);
        if (rc != 0)
            break;
        pool.started = id;
    }
    int have = pool.started < want ? pool.started : want;
    pthread_mutex_unlock(&pool.mu);
    return have;
}

/* ---- regions ------------------------------------------------------------- */

static void run_region(Job *job)
{
    job->workers = ensure_workers(job->chunks - 1);
    pthread_mutex_lock(&pool.mu);
    pool.job = *job;
    pool.remaining = job->workers;
    pool.err_chunk = INT_MAX;
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);

    unsigned errors = nncrt_error_count();
    run_chunk(job, 0);
    int chunk0_failed = nncrt_error_count() != errors;
    for (int t = job->workers + 1; t < job->chunks; t++)
        run_chunk(job, t);

    pthread_mutex_lock(&pool.mu);
    while (pool.remaining > 0)
        pthread_cond_wait(&pool.done, &pool.mu);
    /* The caller reads errors on its own thread: hand it a worker's. */
    if (!chunk0_failed && pool.err_chunk != INT_MAX)
        nncrt_error_adopt(pool.err_msg);
    pthread_mutex_unlock(&pool.mu);
}

void nnc_parallel_for(int64_t n, nnc_range_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    int threads = nnc_get_num_threads();
    int chunks = n < threads ? (int)n : threads;
    if (chunks <= 1 || in_region || pthread_mutex_trylock(&pool.region) != 0) {
        fn(ctx, 0, n);
        return;
    }
    in_region = 1;
    Job job = {fn, ctx, n, chunks, 0};
    run_region(&job);
    in_region = 0;
    pthread_mutex_unlock(&pool.region);
}
