/* demo.h — the map of examples/common/: helpers shared by the training
 * demos (examples/digits, examples/charlm, examples/gpt), which are plain C
 * programs around the header and object nnc generates for their model.
 *
 * Files:  options.c (command line)   progress.c (clock, step lines)
 *         data.c (gzip files, text of a directory, vocabularies)
 *         rng.c (seeded random numbers, shuffling)
 *         stats.c (cross-entropy, argmax, sampling, learning-rate schedule)
 *         model.c (dims read from a model's nnc_model_info table)
 *
 * Nothing here knows a particular model: shapes come from NAME_info(), so a
 * demo built with other -D sizes (the smoke test's tiny ones) just works.
 * Every helper that can fail prints "PROGRAM: MESSAGE" and exits with
 * status 1: these are demos, not a library. */
#ifndef NNC_DEMO_H
#define NNC_DEMO_H

#include <stddef.h>
#include <stdint.h>

#include "nnc.h"

/* ---- options.c: the flags every demo understands ------------------------- */

typedef struct DemoOptions {
    const char *program; /* argv[0]'s base name, prefixes messages */
    long steps;          /* training steps (digits: epochs) */
    uint64_t seed;       /* parameter init, batch order, sampling */
    double lr;           /* peak learning rate; <= 0 keeps the model's */
    long print_every;    /* a progress line every this many steps */
    int threads;         /* nnc_set_num_threads; 0 = runtime default */
    const char *data;    /* data file or directory */
    const char *params;  /* safetensors file written (train) or read (sample) */
    const char *prompt;  /* sampling: text fed before sampling starts */
    long length;         /* sampling: characters to generate */
    double temperature;  /* sampling: softmax temperature */
} DemoOptions;

/* Fills *o from argv over the defaults already in *o; prints usage and
 * exits 0 for --help, 2 for anything unknown or malformed.  `about` is the
 * one-line description shown by --help. */
void demo_parse_options(DemoOptions *o, int argc, char **argv,
                        const char *about);
/* Prints "PROGRAM: MESSAGE\n" to stderr and exits with status 1. */
_Noreturn void demo_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* Exits through demo_fail with nnc_last_error() when status != 0. */
void demo_check(int status, const char *what);
void *demo_alloc(size_t bytes); /* zeroed; never NULL */

/* ---- progress.c: wall clock and progress lines --------------------------- */

double demo_now(void); /* seconds, monotonic */

/* Accumulates training losses between progress lines. */
typedef struct DemoProgress {
    const char *unit; /* "examples", "chars", "tokens" */
    long steps;       /* total steps, for "step K/N" */
    double start, last_time;
    double loss_sum;
    long loss_count, items;
} DemoProgress;

void demo_progress_start(DemoProgress *p, const char *unit, long steps);
/* Records one step's loss and the items it processed; every `every` steps
 * (and on the last) prints "step K/N  loss L  R UNIT/s", L being the mean
 * loss since the previous line and R the rate over the same span. */
void demo_progress_step(DemoProgress *p, long step, float loss, long items,
                        long every);
double demo_progress_seconds(const DemoProgress *p); /* since start */

/* ---- rng.c: seeded random numbers (splitmix64), independent of libc ------ */

typedef struct DemoRng {
    uint64_t state;
} DemoRng;

void demo_rng_seed(DemoRng *r, uint64_t seed);
uint64_t demo_rng_next(DemoRng *r);
uint64_t demo_rng_below(DemoRng *r, uint64_t n);      /* uniform in [0, n) */
double demo_rng_uniform(DemoRng *r);                  /* uniform in [0, 1) */
void demo_shuffle(int32_t *a, int64_t n, DemoRng *r); /* Fisher-Yates */

/* ---- data.c: files ------------------------------------------------------- */

/* The whole of a gzip-compressed file, uncompressed (zlib, or `gzip -dc`
 * when built without it); NUL-terminated, *len excludes the NUL. */
char *demo_read_gzip(const char *path, size_t *len);
/* The regular files of `dir` (symbolic links, which duplicate a file there,
 * are skipped), concatenated in byte order of their names. */
char *demo_read_dir_text(const char *dir, size_t *len);
/* Bytes to ids of the 96-symbol vocabulary: '\n' is 0, ' '..'~' are 1..95;
 * a tab becomes a space and every other byte (control, non-ASCII) is
 * dropped.  Writes at most len ids to ids and returns how many. */
int64_t demo_text_to_ids96(const char *text, size_t len, int32_t *ids);
char demo_id96_to_char(int32_t id);
int32_t demo_char_to_id96(char ch); /* -1 if the character is dropped */

/* ---- stats.c: losses and sampling ---------------------------------------- */

/* Sum over rows of -log softmax(logits[r])[targets[r]], in double (nats). */
double demo_cross_entropy_sum(const float *logits, const int32_t *targets,
                              int64_t rows, int64_t classes);
int32_t demo_argmax(const float *x, int64_t n);
/* A draw from softmax(logits / temperature); temperature <= 0 is argmax. */
int32_t demo_sample(const float *logits, int64_t n, double temperature,
                    DemoRng *r);
/* The learning rate of step `step` (0-based) of `steps`: a linear warm-up
 * over the first `warmup` steps to `peak`, then a cosine decay to peak/10. */
double demo_lr_schedule(long step, long steps, double peak, long warmup);

/* ---- model.c: sizes from the model's table ------------------------------- */

/* Dimension `axis` (negative counts from the end) of the tensor `name` with
 * role `role` (NNC_ROLE_INPUT, NNC_ROLE_OUTPUT, ...); fails if there is
 * none. */
int64_t demo_tensor_dim(const nnc_model_info *info, nnc_role role,
                        const char *name, int axis);
/* Number of trainable and frozen parameter values. */
int64_t demo_param_count(const nnc_model_info *info);

#endif /* NNC_DEMO_H */
