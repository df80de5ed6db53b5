/* train_digits.c — data-parallel training of digits.nn over MPI.
 *
 *   mpirun -np 2 ./train_digits [--data digits.csv.gz] [--epochs 15]
 *                               [--ckpt digits.ckpt] [--resume digits.ckpt]
 *                               [--seed 1]
 *
 * Every rank reads the gzip'ed CSV through `gzip -dc` and keeps only its
 * own shard: of the first 1500 rows (the training set), those whose index
 * is its rank modulo the number of ranks; of the other 297 (the test set),
 * likewise.  Each step every rank takes B examples of its shard (B is the
 * model's batch, 32), so one step trains on N*B examples; libnncrt_mpi
 * averages the gradients and the loss, and every rank applies the same
 * update.  After each epoch the ranks count their correct test answers,
 * rank 0 prints the loss and the test accuracy, and (with --ckpt) writes
 * a checkpoint that --resume continues from exactly.  docs/mpi.md shows
 * the same on several hosts.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* popen */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digits.h"
#include "nnc_mpi.h"

NNC_MPI_DEFINE_MODEL(digits)

enum { IN = 64, K = 10, TRAIN_ROWS = 1500, LINE_CAP = 1024 };

typedef struct dataset {
    float *x; /* n rows of IN pixels scaled to [0, 1] */
    int32_t *y;
    int n, cap;
} dataset;

typedef struct options {
    const char *data, *ckpt, *resume;
    int epochs;
    uint64_t seed;
} options;

/* ---- reading this rank's shard ------------------------------------------- */

static int push_row(dataset *d, const int *v)
{
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 256;
        float *x = realloc(d->x, sizeof(float) * IN * (size_t)cap);
        if (x)
            d->x = x;
        int32_t *y = realloc(d->y, sizeof(int32_t) * (size_t)cap);
        if (y)
            d->y = y;
        if (!x || !y)
            return -1;
        d->cap = cap;
    }
    for (int j = 0; j < IN; j++)
        d->x[(size_t)d->n * IN + j] = (float)v[j] / 16.0f;
    d->y[d->n++] = v[IN];
    return 0;
}

/* 65 comma-separated integers: pixels 0..16, then the label 0..9. */
static int parse_row(const char *line, int *v)
{
    const char *p = line;
    for (int j = 0; j <= IN; j++) {
        char *end;
        long n = strtol(p, &end, 10);
        int max = j < IN ? 16 : K - 1;
        if (end == p || n < 0 || n > max || (j < IN && *end != ','))
            return -1;
        v[j] = (int)n;
        p = end + 1;
    }
    return 0;
}

static int read_shard(const char *path, int rank, int size, dataset *train,
                      dataset *test)
{
    if (strchr(path, '\'')) {
        fprintf(stderr, "train_digits: a quote in the path '%s'\n", path);
        return -1;
    }
    char cmd[LINE_CAP];
    snprintf(cmd, sizeof cmd, "gzip -dc -- '%s'", path);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[LINE_CAP];
    int v[IN + 1], row = 0, bad = 0;
    while (!bad && fgets(line, sizeof line, f)) {
        bad = parse_row(line, v) != 0;
        if (!bad && row % size == rank)
            bad = push_row(row < TRAIN_ROWS ? train : test, v) != 0;
        row++;
    }
    int status = pclose(f);
    if (bad || status != 0 || row <= TRAIN_ROWS) {
        fprintf(stderr, "train_digits: rank %d: %s: %s at row %d\n", rank, path,
                bad ? "malformed row" : "cannot read it (gzip failed)", row + 1);
        return -1;
    }
    return 0;
}

/* ---- training ------------------------------------------------------------- */

typedef struct batch {
    float *x;
    int32_t *y;
} batch;

static float backward(void *m, void *b)
{
    const batch *t = b;
    return digits_backward(m, t->x, t->y);
}

/* xorshift64*: the per-epoch order of a rank's shard. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void shuffle(int *order, int n, uint64_t seed)
{
    uint64_t s = seed | 1;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(next_random(&s) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static void gather(const dataset *d, const int *rows, int n, batch *b)
{
    for (int i = 0; i < n; i++) {
        memcpy(b->x + (size_t)i * IN, d->x + (size_t)rows[i] * IN,
               sizeof(float) * IN);
        b->y[i] = d->y[rows[i]];
    }
}

/* Mean loss over the epoch's steps (each already averaged over ranks). */
static float train_epoch(nnc_mpi *dp, const dataset *train, int steps, int bs,
                         uint64_t seed, int *order, batch *b)
{
    shuffle(order, train->n, seed);
    double sum = 0;
    for (int s = 0; s < steps; s++) {
        gather(train, order + (size_t)s * bs, bs, b);
        float loss;
        if (nnc_mpi_step(dp, backward, b, &loss) != NNC_OK)
            nnc_mpi_abort(dp, 1, "%s", nnc_last_error());
        sum += loss;
    }
    return (float)(sum / steps);
}

static int argmax(const float *v)
{
    int best = 0;
    for (int k = 1; k < K; k++)
        if (v[k] > v[best])
            best = k;
    return best;
}

/* Correct answers on this rank's test shard, in batches of bs (the last
 * padded with copies of row 0 whose answers are not counted). */
static int count_correct(digits *m, const dataset *test, int bs, batch *b,
                         float *logits)
{
    int correct = 0;
    for (int start = 0; start < test->n; start += bs) {
        int n = test->n - start < bs ? test->n - start : bs;
        int rows[1024];
        for (int i = 0; i < bs; i++)
            rows[i] = i < n ? start + i : 0;
        gather(test, rows, bs, b);
        if (digits_forward(m, b->x, logits) != NNC_OK)
            return -1;
        for (int i = 0; i < n; i++)
            correct += argmax(logits + (size_t)i * K) == test->y[start + i];
    }
    return correct;
}

/* ---- the program ------------------------------------------------------------ */

static int parse_options(int argc, char **argv, options *o)
{
    *o = (options){"data/digits.csv.gz", NULL, NULL, 15, 1};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data")) o->data = argv[i + 1];
        else if (!strcmp(argv[i], "--ckpt")) o->ckpt = argv[i + 1];
        else if (!strcmp(argv[i], "--resume")) o->resume = argv[i + 1];
        else if (!strcmp(argv[i], "--epochs")) o->epochs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) o->seed = strtoull(argv[i + 1], NULL, 10);
        else return -1;
    }
    return argc % 2 == 1 && o->epochs > 0 ? 0 : -1;
}

/* The per-rank batch: the first dimension of input x in the model table. */
static int batch_size(void)
{
    const nnc_tensor_info *x = nnc_model_find(digits_info(), "x", NNC_ROLE_INPUT);
    return x ? (int)x->shape[0] : 0;
}

typedef struct run {
    digits *m;
    nnc_mpi *dp;
    dataset train, test;
    int bs, steps, *order;
    batch b;
    float *logits;
} run;

static void setup(run *r, const options *o)
{
    r->m = digits_new();
    if (!r->m)
        nnc_mpi_abort(NULL, 1, "out of memory");
    digits_init(r->m, o->seed);
    nnc_mpi_model model = digits_mpi_model(r->m);
    r->dp = nnc_mpi_new(MPI_COMM_WORLD, &model, NULL);
    if (!r->dp)
        nnc_mpi_abort(NULL, 1, "%s", nnc_last_error());
    int rank = nnc_mpi_rank(r->dp), size = nnc_mpi_size(r->dp);
    if (read_shard(o->data, rank, size, &r->train, &r->test) != 0)
        nnc_mpi_abort(r->dp, 1, "cannot read the data");
    r->bs = batch_size();
    r->steps = TRAIN_ROWS / size / r->bs; /* every shard has that many */
    r->order = malloc(sizeof(int) * (size_t)r->train.n);
    r->b.x = malloc(sizeof(float) * IN * (size_t)r->bs);
    r->b.y = malloc(sizeof(int32_t) * (size_t)r->bs);
    r->logits = malloc(sizeof(float) * K * (size_t)r->bs);
    if (!r->order || !r->b.x || !r->b.y || !r->logits || r->steps < 1 ||
        r->bs > 1024)
        nnc_mpi_abort(r->dp, 1, "no memory, or batch %d too large for %d ranks",
                      r->bs, size);
    int rc = o->resume ? nnc_mpi_load_checkpoint(r->dp, o->resume)
                       : nnc_mpi_broadcast(r->dp, 0, NNC_MPI_PARAMS);
    if (rc != NNC_OK)
        nnc_mpi_abort(r->dp, 1, "%s", nnc_last_error());
}

/* Test accuracy over every rank's shard. */
static double accuracy(run *r, int *total)
{
    int mine[2] = {count_correct(r->m, &r->test, r->bs, &r->b, r->logits),
                   r->test.n};
    int all[2];
    if (mine[0] < 0)
        nnc_mpi_abort(r->dp, 1, "forward: %s", nnc_last_error());
    MPI_Allreduce(mine, all, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    *total = all[1];
    return 100.0 * all[0] / all[1];
}

static void train(run *r, const options *o, int first_epoch)
{
    int rank = nnc_mpi_rank(r->dp), size = nnc_mpi_size(r->dp);
    for (int e = first_epoch; e < o->epochs; e++) {
        double t0 = MPI_Wtime();
        uint64_t seed = o->seed * 1000003u + (uint64_t)e * 7919u + (uint64_t)rank;
        float loss = train_epoch(r->dp, &r->train, r->steps, r->bs, seed,
                                 r->order, &r->b);
        double secs = MPI_Wtime() - t0;
        int total;
        double acc = accuracy(r, &total);
        if (o->ckpt && nnc_mpi_save_checkpoint(r->dp, o->ckpt) != NNC_OK)
            nnc_mpi_abort(r->dp, 1, "%s", nnc_last_error());
        if (rank == 0)
            printf("epoch %2d: loss %.4f, test accuracy %.1f%% of %d, "
                   "%.0f examples/s on %d ranks\n",
                   e + 1, loss, acc, total,
                   (double)r->steps * r->bs * size / secs, size);
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    options o;
    if (parse_options(argc, argv, &o) != 0)
        nnc_mpi_abort(NULL, 2, "usage: train_digits [--data PATH] [--epochs N] "
                               "[--ckpt PATH] [--resume PATH] [--seed N]");
    run r = {0};
    setup(&r, &o);
    /* a resumed run's step counter says how many epochs are done */
    int64_t done = nnc_mpi_steps_done(r.dp);
    if (nnc_mpi_rank(r.dp) == 0)
        printf("digits: %d ranks of %d threads, %d examples per rank and "
               "step, %d steps per epoch, starting at epoch %d\n",
               nnc_mpi_size(r.dp), nnc_get_num_threads(), r.bs, r.steps,
               (int)(done / r.steps) + 1);
    train(&r, &o, (int)(done / r.steps));
    nnc_mpi_free(r.dp);
    digits_free(r.m);
    free(r.train.x); free(r.train.y); free(r.test.x); free(r.test.y);
    free(r.order); free(r.b.x); free(r.b.y); free(r.logits);
    MPI_Finalize();
    return 0;
}
