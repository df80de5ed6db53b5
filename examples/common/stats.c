/* stats.c — what the demos compute from logits outside the model:
 * cross-entropy for validation losses (the compiled forward pass returns
 * logits, not the loss), argmax for accuracy, and temperature sampling for
 * generated text, all in double with the usual max-shift for stability;
 * and the learning-rate schedule the demos pass to NAME_set_lr. */
#include <math.h>

#include "demo.h"

/* log(sum(exp(x))) of one row. */
static double log_sum_exp(const float *x, int64_t n)
{
    double m = x[0], s = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > m)
            m = x[i];
    for (int64_t i = 0; i < n; i++)
        s += exp((double)x[i] - m);
    return m + log(s);
}

double demo_cross_entropy_sum(const float *logits, const int32_t *targets,
                              int64_t rows, int64_t classes)
{
    double total = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *row = logits + r * classes;
        total += log_sum_exp(row, classes) - (double)row[targets[r]];
    }
    return total;
}

int32_t demo_argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int32_t)best;
}

int32_t demo_sample(const float *logits, int64_t n, double temperature,
                    DemoRng *r)
{
    if (temperature <= 0)
        return demo_argmax(logits, n);
    double m = logits[demo_argmax(logits, n)], total = 0;
    for (int64_t i = 0; i < n; i++)
        total += exp(((double)logits[i] - m) / temperature);
    double u = demo_rng_uniform(r) * total;
    for (int64_t i = 0; i < n; i++) {
        u -= exp(((double)logits[i] - m) / temperature);
        if (u < 0)
            return (int32_t)i;
    }
    return (int32_t)(n - 1); /* rounding left a sliver */
}

double demo_lr_schedule(long step, long steps, double peak, long warmup)
{
    if (step < warmup)
        return peak * (double)(step + 1) / (double)warmup;
    double progress = (double)(step - warmup) / (double)(steps - warmup);
    if (progress > 1)
        progress = 1;
    return peak *
           (0.1 + 0.9 * 0.5 * (1 + cos(3.14159265358979323846 * progress)));
}
