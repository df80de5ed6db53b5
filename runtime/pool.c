/* pool.c — the thread pool behind nnc_parallel_for, and the one-time setup
 * of the runtime (thread count from NNC_NUM_THREADS, OpenBLAS pinned to
 * one thread).
 *
 * Workers are started by nnc_runtime_prepare(), which every generated
 * NAME_new calls (creating a thread allocates its stack and TLS, and
 * nothing may allocate after NAME_new); from then on nnc_set_num_threads
 * starts any extra workers at once.  A program that never makes a model
 * starts them lazily, the first time a region needs them.  They live for
 * the whole process.  Between regions a worker spins for a short while
 * (POOL_SPIN_ROUNDS pauses: 0.4 ms on this Zen 4, where a pause is about
 * 24 ns) watching the generation counter,
 * then parks on a condition variable; the region's owner likewise spins
 * before it sleeps waiting for the workers.  A scan runs a region per
 * GEMM and per fused loop of every step, a few microseconds apart, and
 * waking a parked thread costs tens of microseconds (two futex calls and a
 * reschedule): spinning briefly makes back-to-back regions cheap, and
 * parking after it keeps an idle pool from burning a core that another
 * process (an MPI rank, a second model) could use.
 *
 * A region publishes one job under the pool mutex and bumps the
 * generation.  The partition is static (it depends only on n and the
 * thread count, never on timing) but who runs a chunk is not: the caller
 * runs chunk 0, then it and the workers claim the remaining chunks from a
 * counter.  On a busy machine a worker may not be scheduled for a whole
 * time slice; the caller then runs its chunks itself instead of waiting
 * for it.  A chunk computes the same thing whoever runs it, so results
 * still do not depend on the thread count or on timing.  The counter
 * carries the job's generation in its high half, so a worker that wakes
 * late cannot claim a chunk of the next job.
 *
 * A message that fn sets with nnc_rt_set_error in a chunk reaches the
 * caller's nnc_last_error() when the region ends: the lowest failing
 * chunk's, whichever thread ran it.
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
/* Pauses a waiting thread spins through before it sleeps (0.4 ms on Zen 4:
 * 2^14 pauses measured at 399 us). */
#define POOL_SPIN_ROUNDS (1 << 14)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spins until *word != value or the budget runs out; true if it changed. */
static int spin_while_equal_u64(const uint64_t *word, uint64_t value)
{
    for (int i = 0; i < POOL_SPIN_ROUNDS; i++) {
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != value)
            return 1;
        cpu_relax();
    }
    return 0;
}

static int spin_while_positive(const int *word)
{
    for (int i = 0; i < POOL_SPIN_ROUNDS; i++) {
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) <= 0)
            return 1;
        cpu_relax();
    }
    return 0;
}

typedef struct Job {
    nnc_range_fn fn;
    void *ctx;
    int64_t n;
    int chunks;  /* the partition: min(threads, n) */
    int workers; /* worker threads that may claim chunks */
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
    uint64_t generation; /* bumped for every job (atomic; written under mu) */
    int sleepers;        /* workers parked on `wake` */
    int owner_sleeping;  /* the region's owner is parked on `done` */
    uint64_t start_gen[POOL_MAX_THREADS];
    Job job;
    uint64_t claim; /* generation << 32 | next chunk to claim (atomic) */
    int remaining;  /* chunks not yet finished (atomic) */
    int err_chunk;  /* lowest chunk that set an error, INT_MAX: none (mu) */
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
    pool.claim = 0;
    pool.sleepers = 0;
    pool.owner_sleeping = 0;
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

/* Runs chunk t; a message it set is recorded if it is the lowest so far. */
static void run_chunk(const Job *job, int t)
{
    int64_t begin, end;
    chunk_range(job->n, job->chunks, t, &begin, &end);
    unsigned errors = nncrt_error_count();
    if (begin < end)
        job->fn(job->ctx, begin, end);
    if (nncrt_error_count() != errors) {
        pthread_mutex_lock(&pool.mu);
        if (t < pool.err_chunk) {
            pool.err_chunk = t;
            snprintf(pool.err_msg, sizeof pool.err_msg, "%s", nnc_last_error());
        }
        pthread_mutex_unlock(&pool.mu);
    }
}

/* Claims and runs chunks of job generation `gen` until none is left;
 * returns how many this thread ran. */
static int run_claimed_chunks(const Job *job, uint64_t gen)
{
    int ran = 0;
    uint64_t tag = gen << 32;
    for (;;) {
        uint64_t w = __atomic_load_n(&pool.claim, __ATOMIC_ACQUIRE);
        if ((w & ~0xffffffffull) != tag || (int)(w & 0xffffffffu) >= job->chunks)
            return ran;
        if (!__atomic_compare_exchange_n(&pool.claim, &w, w + 1, 0,
                                         __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            continue;
        run_chunk(job, (int)(w & 0xffffffffu));
        ran++;
        if (__atomic_sub_fetch(&pool.remaining, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&pool.mu);
            if (pool.owner_sleeping)
                pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.mu);
        }
    }
}

/* ---- workers ------------------------------------------------------------- */

/* Waits (spinning, then parked) for a generation after `seen`. */
static void wait_for_job(uint64_t seen)
{
    pthread_mutex_unlock(&pool.mu);
    spin_while_equal_u64(&pool.generation, seen);
    pthread_mutex_lock(&pool.mu);
    while (pool.generation == seen) {
        pool.sleepers++;
        pthread_cond_wait(&pool.wake, &pool.mu);
        pool.sleepers--;
    }
}

static void *worker_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    in_region = 1; /* anything a worker calls runs serially */
    pthread_mutex_lock(&pool.mu);
    uint64_t seen = pool.start_gen[id];
    for (;;) {
        wait_for_job(seen);
        seen = pool.generation;
        Job job = pool.job;
        if (id >= job.chunks)
            continue;
        pthread_mutex_unlock(&pool.mu);
        run_claimed_chunks(&job, seen);
        pthread_mutex_lock(&pool.mu);
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
    uint64_t gen = pool.generation + 1;
    pool.job = *job;
    pool.err_chunk = INT_MAX;
    __atomic_store_n(&pool.remaining, job->chunks, __ATOMIC_RELAXED);
    /* chunk 0 is the caller's: claiming starts at 1 */
    __atomic_store_n(&pool.claim, (gen << 32) | 1u, __ATOMIC_RELAXED);
    __atomic_store_n(&pool.generation, gen, __ATOMIC_RELEASE);
    if (pool.sleepers > 0 && job->workers > 0)
        pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);

    run_chunk(job, 0);
    __atomic_sub_fetch(&pool.remaining, 1, __ATOMIC_ACQ_REL);
    run_claimed_chunks(job, gen);

    spin_while_positive(&pool.remaining);
    pthread_mutex_lock(&pool.mu);
    while (__atomic_load_n(&pool.remaining, __ATOMIC_ACQUIRE) > 0) {
        pool.owner_sleeping = 1;
        pthread_cond_wait(&pool.done, &pool.mu);
        pool.owner_sleeping = 0;
    }
    /* The caller reads errors on its own thread: hand it the lowest
     * failing chunk's message (its own chunk's included). */
    if (pool.err_chunk != INT_MAX)
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
