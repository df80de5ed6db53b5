/* main.c — the digits demo: trains the MLP of digits.nn on the 1797
 * handwritten 8x8 digits of data/digits.csv.gz and reports its accuracy on
 * held-out images.
 *
 * The examples are split once, by a fixed seed (not --seed), into 1437 for
 * training and 360 for testing.  Training takes minibatches of B examples
 * from a fresh shuffle each epoch (the incomplete last batch is left for the
 * next shuffle), each image moved by a random -1..1 pixels in x and y, with
 * a warm-up and cosine learning-rate schedule, printing step, mean loss and
 * examples/s.  The test set's loss and accuracy come from the compiled
 * forward pass, before and after training; its last partial batch is
 * padded with copies of its first image, which are not counted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"
#include "digits.h"

#define PIXELS     64
#define CLASSES    10
#define TEST_COUNT 360
#define SPLIT_SEED 20240601u

#ifndef DEMO_DATA_DIR
#define DEMO_DATA_DIR "data"
#endif

typedef struct Examples {
    float *x;   /* [n, PIXELS], in [0, 1] */
    int32_t *y; /* [n] */
    int64_t n;
} Examples;

/* Parses "p0,...,p63,label" lines into ex; fails on anything else. */
static void parse_csv(const char *text, const char *path, Examples *ex)
{
    int64_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    ex->x = demo_alloc((size_t)(lines + 1) * PIXELS * sizeof(float));
    ex->y = demo_alloc((size_t)(lines + 1) * sizeof(int32_t));
    ex->n = 0;
    const char *p = text;
    while (*p) {
        for (int j = 0; j <= PIXELS; j++) {
            char *end;
            long v = strtol(p, &end, 10);
            char want = j < PIXELS ? ',' : '\n';
            if (end == p || (*end != want && !(j == PIXELS && !*end)) ||
                v < 0 || v > (j < PIXELS ? 16 : CLASSES - 1))
                demo_fail("%s: line %lld: expected 64 pixels 0..16 and a "
                          "label 0..9",
                          path, (long long)ex->n + 1);
            if (j < PIXELS)
                ex->x[ex->n * PIXELS + j] = (float)v / 16.0f;
            else
                ex->y[ex->n] = (int32_t)v;
            p = *end ? end + 1 : end;
        }
        ex->n++;
    }
}

static void examples_free(Examples *ex)
{
    free(ex->x);
    free(ex->y);
}

/* Copies the examples order[0..n) of `all` into `part`. */
static void take(const Examples *all, const int32_t *order, int64_t n,
                 Examples *part)
{
    part->n = n;
    part->x = demo_alloc((size_t)n * PIXELS * sizeof(float));
    part->y = demo_alloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) {
        memcpy(part->x + i * PIXELS, all->x + (int64_t)order[i] * PIXELS,
               PIXELS * sizeof(float));
        part->y[i] = all->y[order[i]];
    }
}

static void split(const Examples *all, Examples *train, Examples *test)
{
    int32_t *order = demo_alloc((size_t)all->n * sizeof(int32_t));
    for (int64_t i = 0; i < all->n; i++)
        order[i] = (int32_t)i;
    DemoRng rng;
    demo_rng_seed(&rng, SPLIT_SEED);
    demo_shuffle(order, all->n, &rng);
    if (all->n <= TEST_COUNT)
        demo_fail("only %lld examples", (long long)all->n);
    take(all, order, all->n - TEST_COUNT, train);
    take(all, order + all->n - TEST_COUNT, TEST_COUNT, test);
    free(order);
}

typedef struct Score {
    double loss;     /* mean cross-entropy, nats */
    double accuracy; /* fraction classified correctly */
} Score;

/* How the model does on ex, batch by batch through the forward pass. */
static Score evaluate(digits *m, const Examples *ex, int64_t batch)
{
    float *x = demo_alloc((size_t)batch * PIXELS * sizeof(float));
    float *logits = demo_alloc((size_t)batch * CLASSES * sizeof(float));
    int64_t correct = 0;
    double loss = 0;
    for (int64_t start = 0; start < ex->n; start += batch) {
        int64_t rows = ex->n - start < batch ? ex->n - start : batch;
        for (int64_t r = 0; r < batch; r++) /* pad with the first row */
            memcpy(x + r * PIXELS,
                   ex->x + (start + (r < rows ? r : 0)) * PIXELS,
                   PIXELS * sizeof(float));
        demo_check(digits_forward(m, x, logits), "forward");
        for (int64_t r = 0; r < rows; r++)
            correct +=
                demo_argmax(logits + r * CLASSES, CLASSES) == ex->y[start + r];
        loss += demo_cross_entropy_sum(logits, ex->y + start, rows, CLASSES);
    }
    free(x);
    free(logits);
    return (Score){loss / (double)ex->n, (double)correct / (double)ex->n};
}

/* Writes image `src` moved by (dx, dy) pixels to dst, filling with 0: the
 * augmentation that makes up for having only 1437 training images. */
static void shift_image(float *dst, const float *src, int dx, int dy)
{
    for (int r = 0; r < 8; r++)
        for (int c = 0; c < 8; c++) {
            int sr = r - dy, sc = c - dx;
            dst[r * 8 + c] = sr >= 0 && sr < 8 && sc >= 0 && sc < 8
                                 ? src[sr * 8 + sc]
                                 : 0.0f;
        }
}

/* Trains for o->steps minibatches of `batch` examples, printing progress. */
static void train(digits *m, const Examples *ex, int64_t batch,
                  const DemoOptions *o)
{
    int32_t *order = demo_alloc((size_t)ex->n * sizeof(int32_t));
    float *x = demo_alloc((size_t)batch * PIXELS * sizeof(float));
    int32_t *y = demo_alloc((size_t)batch * sizeof(int32_t));
    for (int64_t i = 0; i < ex->n; i++)
        order[i] = (int32_t)i;
    DemoRng rng;
    demo_rng_seed(&rng, o->seed);
    int64_t next = ex->n; /* position in the current shuffle */
    DemoProgress progress;
    demo_progress_start(&progress, "examples", o->steps);
    for (long step = 1; step <= o->steps; step++) {
        if (next + batch > ex->n) {
            demo_shuffle(order, ex->n, &rng);
            next = 0;
        }
        for (int64_t r = 0; r < batch; r++, next++) {
            int dx = (int)demo_rng_below(&rng, 3) - 1;
            int dy = (int)demo_rng_below(&rng, 3) - 1;
            shift_image(x + r * PIXELS, ex->x + (int64_t)order[next] * PIXELS,
                        dx, dy);
            y[r] = ex->y[order[next]];
        }
        if (o->lr > 0) /* else the constant rate of the .nn file */
            digits_set_lr(m, (float)demo_lr_schedule(step - 1, o->steps, o->lr,
                                                     o->steps / 20));
        float loss = digits_train_step(m, x, y);
        if (loss != loss)
            demo_fail("training step %ld: %s", step, nnc_last_error());
        demo_progress_step(&progress, step, loss, (long)batch, o->print_every);
    }
    printf("trained %ld steps (%.1f epochs) in %.1f s\n", o->steps,
           (double)o->steps * (double)batch / (double)ex->n,
           demo_progress_seconds(&progress));
    free(order);
    free(x);
    free(y);
}

int main(int argc, char **argv)
{
    DemoOptions o = {.steps = 4000,
                     .seed = 1,
                     .lr = 3e-3,
                     .print_every = 500,
                     .data = DEMO_DATA_DIR "/digits.csv.gz"};
    demo_parse_options(&o, argc, argv,
                       "Trains an MLP (digits.nn) on 8x8 handwritten digits "
                       "and reports test accuracy.");
    size_t len;
    char *text = demo_read_gzip(o.data, &len);
    Examples all, train_set, test_set;
    parse_csv(text, o.data, &all);
    free(text);
    split(&all, &train_set, &test_set);

    const nnc_model_info *info = digits_info();
    int64_t batch = demo_tensor_dim(info, NNC_ROLE_INPUT, "x", 0);
    if (demo_tensor_dim(info, NNC_ROLE_INPUT, "x", 1) != PIXELS)
        demo_fail("digits.nn must take %d pixels per example", PIXELS);
    printf("digits: %lld training and %lld test images of 8x8 pixels, "
           "%lld parameters, batch %lld\n",
           (long long)train_set.n, (long long)test_set.n,
           (long long)demo_param_count(info), (long long)batch);
    digits *m = digits_new();
    if (!m)
        demo_fail("out of memory");
    digits_init(m, o.seed);
    Score before = evaluate(m, &test_set, batch);
    printf("test loss before training: %.4f, accuracy %.2f%%\n", before.loss,
           100 * before.accuracy);
    train(m, &train_set, batch, &o);
    Score on_train = evaluate(m, &train_set, batch);
    printf("training set: loss %.4f, accuracy %.2f%%\n", on_train.loss,
           100 * on_train.accuracy);
    Score after = evaluate(m, &test_set, batch);
    printf("test loss after training: %.4f (before %.4f)\n", after.loss,
           before.loss);
    printf("test accuracy: %.2f%% (%lld of %lld)\n", 100 * after.accuracy,
           (long long)(after.accuracy * (double)test_set.n + 0.5),
           (long long)test_set.n);
    if (o.params)
        demo_check(digits_save(m, o.params), o.params);
    digits_free(m);
    examples_free(&all);
    examples_free(&train_set);
    examples_free(&test_set);
    return 0;
}
