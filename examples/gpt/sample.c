/* sample.c — the gpt demo, generating half: loads the parameters that
 * train.c saved into a B=1 build of gpt.nn at the same context length T,
 * and generates bytes one per call of the compiled forward pass.  The
 * context is the prompt plus everything generated so far: while it is
 * shorter than T it fills positions 0..n-1 (the rest is padding that the
 * causal mask keeps from influencing them) and the next byte is drawn from
 * the logits at position n-1; after that, the last T bytes slide along and
 * the draw uses position T-1.  Draws are from softmax(logits / temperature). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"
#include "gpt.h"

int main(int argc, char **argv)
{
    DemoOptions o = {.seed = 1,
                     .print_every = 1,
                     .params = "gpt.safetensors",
                     .prompt = "The ",
                     .length = 500,
                     .temperature = 0.7};
    demo_parse_options(&o, argc, argv,
                       "Generates text with the GPT that gpt trained (a B=1 "
                       "build of gpt.nn).");
    const nnc_model_info *info = gpt_info();
    if (demo_tensor_dim(info, NNC_ROLE_INPUT, "tokens", 0) != 1)
        demo_fail("gpt_sample needs a build of gpt.nn with -D B=1");
    int64_t context = demo_tensor_dim(info, NNC_ROLE_INPUT, "tokens", 1);
    int64_t vocab = demo_tensor_dim(info, NNC_ROLE_OUTPUT, "logits", -1);
    gpt *m = gpt_new();
    if (!m)
        demo_fail("out of memory");
    demo_check(gpt_load(m, o.params), "load");
    int64_t prompt = (int64_t)strlen(o.prompt), total = prompt + o.length;
    int32_t *text = demo_alloc((size_t)(total + 1) * sizeof(int32_t));
    int32_t *window = demo_alloc((size_t)context * sizeof(int32_t));
    float *logits = demo_alloc((size_t)(context * vocab) * sizeof(float));
    text[0] = '\n'; /* what precedes the prompt, so an empty one works */
    for (int64_t i = 0; i < prompt; i++)
        text[i + 1] = (unsigned char)o.prompt[i];
    DemoRng rng;
    demo_rng_seed(&rng, o.seed);

    printf("--- %ld bytes sampled at temperature %g after \"%s\" ---\n%s",
           o.length, o.temperature, o.prompt, o.prompt);
    for (int64_t n = prompt + 1; n <= total; n++) {
        int64_t used = n < context ? n : context;
        memcpy(window, text + n - used, (size_t)used * sizeof(int32_t));
        demo_check(gpt_forward(m, window, logits), "forward");
        text[n] = demo_sample(logits + (used - 1) * vocab, vocab, o.temperature,
                              &rng);
        putchar((int)text[n]);
    }
    printf("\n---\n");
    gpt_free(m);
    free(text);
    free(window);
    free(logits);
    return 0;
}
