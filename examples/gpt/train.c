/* train.c — the gpt demo, training half: the byte-level GPT of
 * examples/models/gpt.nn (the conformance model, compiled with demo-sized
 * -D overrides) on the English licence texts of /usr/share/common-licenses.
 *
 * The regular files there are concatenated in name order, as raw bytes
 * (the model's vocabulary is V = 256); the first 90% is for training, the
 * last 10% for validation.  Each step trains on B windows of T+1 bytes at
 * random offsets, printing step, mean loss and tokens/s.  The validation
 * loss, in nats per byte, is the mean over consecutive non-overlapping
 * T-windows of the validation text, before and after training.  The
 * trained parameters are saved (--params) for sample.c, whose B=1 build of
 * the same model loads them. */
#include <stdio.h>
#include <stdlib.h>

#include "demo.h"
#include "gpt.h"

#define VAL_FRACTION 0.1

typedef struct Sizes {
    int64_t batch, context, vocab;
} Sizes;

typedef struct Buffers {
    int32_t *tokens, *targets; /* [B, T] */
    float *logits;             /* [B, T, V] */
} Buffers;

static Sizes model_sizes(void)
{
    const nnc_model_info *info = gpt_info();
    Sizes s = {
        .batch = demo_tensor_dim(info, NNC_ROLE_INPUT, "tokens", 0),
        .context = demo_tensor_dim(info, NNC_ROLE_INPUT, "tokens", 1),
        .vocab = demo_tensor_dim(info, NNC_ROLE_OUTPUT, "logits", -1),
    };
    if (s.vocab != 256)
        demo_fail("gpt.nn must have V = 256 (one token per byte)");
    return s;
}

/* Row j of the batch: tokens ids[at..at+T), targets one byte further. */
static void fill_row(Sizes s, Buffers *b, int64_t j, const int32_t *ids,
                     int64_t at)
{
    for (int64_t t = 0; t < s.context; t++) {
        b->tokens[j * s.context + t] = ids[at + t];
        b->targets[j * s.context + t] = ids[at + t + 1];
    }
}

/* Mean cross-entropy (nats/byte) over the complete T-windows of ids[0..n),
 * B windows per forward call (a last incomplete batch is left out). */
static double validation_loss(gpt *m, Sizes s, Buffers *b, const int32_t *ids,
                              int64_t n)
{
    int64_t windows = (n - 1) / s.context, batches = windows / s.batch;
    if (batches < 1)
        demo_fail("validation text too short for B = %lld, T = %lld",
                  (long long)s.batch, (long long)s.context);
    double total = 0;
    for (int64_t k = 0; k < batches; k++) {
        for (int64_t j = 0; j < s.batch; j++)
            fill_row(s, b, j, ids, (k * s.batch + j) * s.context);
        demo_check(gpt_forward(m, b->tokens, b->logits), "forward");
        total += demo_cross_entropy_sum(b->logits, b->targets,
                                        s.batch * s.context, s.vocab);
    }
    return total / (double)(batches * s.batch * s.context);
}

static void train(gpt *m, Sizes s, Buffers *b, const int32_t *ids, int64_t n,
                  const DemoOptions *o)
{
    DemoRng rng;
    demo_rng_seed(&rng, o->seed);
    DemoProgress progress;
    demo_progress_start(&progress, "tokens", o->steps);
    for (long step = 1; step <= o->steps; step++) {
        for (int64_t j = 0; j < s.batch; j++)
            fill_row(s, b, j, ids,
                     (int64_t)demo_rng_below(&rng, (uint64_t)(n - s.context)));
        if (o->lr > 0) /* else the constant rate of the .nn file */
            gpt_set_lr(m, (float)demo_lr_schedule(step - 1, o->steps, o->lr,
                                                  o->steps / 10));
        float loss = gpt_train_step(m, b->tokens, b->targets);
        if (loss != loss)
            demo_fail("training step %ld: %s", step, nnc_last_error());
        demo_progress_step(&progress, step, loss, (long)(s.batch * s.context),
                           o->print_every);
    }
    printf("trained %ld steps (%.1f passes over the training text) in %.1f s\n",
           o->steps,
           (double)o->steps * (double)(s.batch * s.context) / (double)n,
           demo_progress_seconds(&progress));
}

int main(int argc, char **argv)
{
    DemoOptions o = {.steps = 1500,
                     .seed = 1,
                     .lr = 3e-3,
                     .print_every = 100,
                     .data = "/usr/share/common-licenses",
                     .params = "gpt.safetensors"};
    demo_parse_options(&o, argc, argv,
                       "Trains the byte-level GPT of gpt.nn on English text "
                       "and saves its parameters\nfor gpt_sample.");
    size_t len;
    char *text = demo_read_dir_text(o.data, &len);
    int32_t *ids = demo_alloc(len * sizeof(int32_t));
    for (size_t i = 0; i < len; i++)
        ids[i] = (unsigned char)text[i];
    free(text);
    int64_t n = (int64_t)len, n_val = (int64_t)((double)n * VAL_FRACTION);
    int64_t n_train = n - n_val;

    Sizes s = model_sizes();
    size_t bt = (size_t)(s.batch * s.context);
    Buffers b = {.tokens = demo_alloc(bt * sizeof(int32_t)),
                 .targets = demo_alloc(bt * sizeof(int32_t)),
                 .logits = demo_alloc(bt * (size_t)s.vocab * sizeof(float))};
    if (n_train <= s.context + 1)
        demo_fail("%s: too little text", o.data);
    printf("gpt: %lld bytes of %s (%lld training, %lld validation), "
           "%lld parameters, batch %lld x %lld\n",
           (long long)n, o.data, (long long)n_train, (long long)n_val,
           (long long)demo_param_count(gpt_info()), (long long)s.batch,
           (long long)s.context);
    gpt *m = gpt_new();
    if (!m)
        demo_fail("out of memory");
    gpt_init(m, o.seed);
    double before = validation_loss(m, s, &b, ids + n_train, n_val);
    printf("validation loss before training: %.4f nats/byte\n", before);
    fflush(stdout);
    train(m, s, &b, ids, n_train, &o);
    double after = validation_loss(m, s, &b, ids + n_train, n_val);
    printf("validation loss after training: %.4f nats/byte (%.3f bits/byte; "
           "before %.4f)\n",
           after, after / 0.69314718055994531, before);
    demo_check(gpt_save(m, o.params), o.params);
    printf("parameters saved to %s\n", o.params);
    gpt_free(m);
    free(b.tokens);
    free(b.targets);
    free(b.logits);
    free(ids);
    return 0;
}
