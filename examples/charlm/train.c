/* train.c — the charlm demo, training half: a character-level LSTM language
 * model (charlm.nn) on the English licence texts of /usr/share/common-licenses.
 *
 * The regular files there are concatenated in name order and mapped to the
 * 96-symbol vocabulary of demo_text_to_ids96; the first 90% is for
 * training, the last 10% for validation.  Each step trains on B windows of
 * T+1 characters at random offsets (starting from zero state), printing
 * step, mean loss and characters/s.  The validation loss, in nats per
 * character, is measured before and after training by running the compiled
 * forward pass over the validation text as B parallel streams, carrying h
 * and c from one T-window to the next.  The trained parameters are saved
 * (--params) for sample.c, whose B=1, T=1 build of the same model loads
 * them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charlm.h"
#include "demo.h"

#define VAL_FRACTION 0.1

typedef struct Sizes {
    int64_t batch, steps_t, vocab, hidden;
} Sizes;

typedef struct Buffers {
    int32_t *tokens, *targets;      /* [T, B] */
    float *h, *c, *h_next, *c_next; /* [B, H] */
    float *logits;                  /* [T, B, V] */
} Buffers;

static Sizes model_sizes(void)
{
    const nnc_model_info *info = charlm_info();
    Sizes s = {
        .batch = demo_tensor_dim(info, NNC_ROLE_INPUT, "tokens", 1),
        .steps_t = demo_tensor_dim(info, NNC_ROLE_INPUT, "tokens", 0),
        .vocab = demo_tensor_dim(info, NNC_ROLE_OUTPUT, "logits", -1),
        .hidden = demo_tensor_dim(info, NNC_ROLE_INPUT, "h0", 1),
    };
    if (s.vocab != 96)
        demo_fail("charlm.nn must have V = 96 (the vocabulary of data.c)");
    return s;
}

static Buffers buffers_new(Sizes s)
{
    size_t tb = (size_t)(s.steps_t * s.batch),
           bh = (size_t)(s.batch * s.hidden);
    Buffers b = {
        .tokens = demo_alloc(tb * sizeof(int32_t)),
        .targets = demo_alloc(tb * sizeof(int32_t)),
        .h = demo_alloc(bh * sizeof(float)),
        .c = demo_alloc(bh * sizeof(float)),
        .h_next = demo_alloc(bh * sizeof(float)),
        .c_next = demo_alloc(bh * sizeof(float)),
        .logits = demo_alloc(tb * (size_t)s.vocab * sizeof(float)),
    };
    return b;
}

static void buffers_free(Buffers *b)
{
    free(b->tokens);
    free(b->targets);
    free(b->h);
    free(b->c);
    free(b->h_next);
    free(b->c_next);
    free(b->logits);
}

/* Mean cross-entropy (nats/char) of predicting ids[1..n) from what precedes,
 * over B streams of equal length processed in T-windows with h and c carried
 * across windows (the tail shorter than one window per stream is left out). */
static double validation_loss(charlm *m, Sizes s, Buffers *b,
                              const int32_t *ids, int64_t n)
{
    int64_t stream = (n - 1) / s.batch, windows = stream / s.steps_t;
    if (windows < 1)
        demo_fail("validation text too short for B = %lld, T = %lld",
                  (long long)s.batch, (long long)s.steps_t);
    size_t bh = (size_t)(s.batch * s.hidden) * sizeof(float);
    memset(b->h, 0, bh);
    memset(b->c, 0, bh);
    double total = 0;
    for (int64_t w = 0; w < windows; w++) {
        for (int64_t t = 0; t < s.steps_t; t++)
            for (int64_t j = 0; j < s.batch; j++) {
                int64_t at = j * stream + w * s.steps_t + t;
                b->tokens[t * s.batch + j] = ids[at];
                b->targets[t * s.batch + j] = ids[at + 1];
            }
        demo_check(charlm_forward(m, b->tokens, b->h, b->c, b->logits,
                                  b->h_next, b->c_next),
                   "forward");
        memcpy(b->h, b->h_next, bh);
        memcpy(b->c, b->c_next, bh);
        total += demo_cross_entropy_sum(b->logits, b->targets,
                                        s.steps_t * s.batch, s.vocab);
    }
    return total / (double)(windows * s.steps_t * s.batch);
}

/* Fills tokens/targets with B windows at random offsets of ids[0..n). */
static void random_batch(Sizes s, Buffers *b, const int32_t *ids, int64_t n,
                         DemoRng *rng)
{
    for (int64_t j = 0; j < s.batch; j++) {
        int64_t at = (int64_t)demo_rng_below(rng, (uint64_t)(n - s.steps_t));
        for (int64_t t = 0; t < s.steps_t; t++) {
            b->tokens[t * s.batch + j] = ids[at + t];
            b->targets[t * s.batch + j] = ids[at + t + 1];
        }
    }
}

static void train(charlm *m, Sizes s, Buffers *b, const int32_t *ids, int64_t n,
                  const DemoOptions *o)
{
    DemoRng rng;
    demo_rng_seed(&rng, o->seed);
    memset(b->h, 0, (size_t)(s.batch * s.hidden) * sizeof(float));
    memset(b->c, 0, (size_t)(s.batch * s.hidden) * sizeof(float));
    DemoProgress progress;
    demo_progress_start(&progress, "chars", o->steps);
    for (long step = 1; step <= o->steps; step++) {
        random_batch(s, b, ids, n, &rng);
        if (o->lr > 0) /* else the constant rate of the .nn file */
            charlm_set_lr(m, (float)demo_lr_schedule(step - 1, o->steps, o->lr,
                                                     o->steps / 20));
        float loss = charlm_train_step(m, b->tokens, b->targets, b->h, b->c);
        if (loss != loss)
            demo_fail("training step %ld: %s", step, nnc_last_error());
        demo_progress_step(&progress, step, loss, (long)(s.batch * s.steps_t),
                           o->print_every);
    }
    printf("trained %ld steps (%.1f passes over the training text) in %.1f s\n",
           o->steps,
           (double)o->steps * (double)(s.batch * s.steps_t) / (double)n,
           demo_progress_seconds(&progress));
}

int main(int argc, char **argv)
{
    DemoOptions o = {.steps = 1500,
                     .seed = 1,
                     .lr = 1e-2,
                     .print_every = 100,
                     .data = "/usr/share/common-licenses",
                     .params = "charlm.safetensors"};
    demo_parse_options(&o, argc, argv,
                       "Trains a character-level LSTM language model "
                       "(charlm.nn) on English text\nand saves its parameters "
                       "for charlm_sample.");
    size_t len;
    char *text = demo_read_dir_text(o.data, &len);
    int32_t *ids = demo_alloc(len * sizeof(int32_t));
    int64_t n = demo_text_to_ids96(text, len, ids);
    free(text);
    int64_t n_val = (int64_t)((double)n * VAL_FRACTION), n_train = n - n_val;

    Sizes s = model_sizes();
    Buffers b = buffers_new(s);
    if (n_train <= s.steps_t + 1)
        demo_fail("%s: too little text", o.data);
    printf("charlm: %lld characters of %s (%lld training, %lld validation), "
           "LSTM H=%lld, %lld parameters, batch %lld x %lld\n",
           (long long)n, o.data, (long long)n_train, (long long)n_val,
           (long long)s.hidden, (long long)demo_param_count(charlm_info()),
           (long long)s.batch, (long long)s.steps_t);
    charlm *m = charlm_new();
    if (!m)
        demo_fail("out of memory");
    charlm_init(m, o.seed);
    double before = validation_loss(m, s, &b, ids + n_train, n_val);
    printf("validation loss before training: %.4f nats/char\n", before);
    fflush(stdout);
    train(m, s, &b, ids, n_train, &o);
    double after = validation_loss(m, s, &b, ids + n_train, n_val);
    printf("validation loss after training: %.4f nats/char (%.3f bits/char; "
           "before %.4f)\n",
           after, after / 0.69314718055994531, before);
    demo_check(charlm_save(m, o.params), o.params);
    printf("parameters saved to %s\n", o.params);
    charlm_free(m);
    buffers_free(&b);
    free(ids);
    return 0;
}
