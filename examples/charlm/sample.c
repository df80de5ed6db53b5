/* sample.c — the charlm demo, generating half: loads the parameters that
 * train.c saved into a build of charlm.nn compiled with -D B=1 -D T=1, and
 * generates text one character per call of the compiled forward pass,
 * carrying h and c from each call to the next.  The prompt (--prompt) is
 * fed first; every next character is drawn from softmax(logits /
 * temperature). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charlm.h"
#include "demo.h"

typedef struct State {
    int64_t vocab, hidden;
    float *h, *c, *h_next, *c_next, *logits;
} State;

static State state_new(void)
{
    const nnc_model_info *info = charlm_info();
    if (demo_tensor_dim(info, NNC_ROLE_INPUT, "tokens", 0) != 1 ||
        demo_tensor_dim(info, NNC_ROLE_INPUT, "tokens", 1) != 1)
        demo_fail(
            "charlm_sample needs a build of charlm.nn with -D B=1 -D T=1");
    State st = {.vocab = demo_tensor_dim(info, NNC_ROLE_OUTPUT, "logits", -1),
                .hidden = demo_tensor_dim(info, NNC_ROLE_INPUT, "h0", 1)};
    size_t h = (size_t)st.hidden * sizeof(float);
    st.h = demo_alloc(h);
    st.c = demo_alloc(h);
    st.h_next = demo_alloc(h);
    st.c_next = demo_alloc(h);
    st.logits = demo_alloc((size_t)st.vocab * sizeof(float));
    return st;
}

static void state_free(State *st)
{
    free(st->h);
    free(st->c);
    free(st->h_next);
    free(st->c_next);
    free(st->logits);
}

/* Feeds one character id; leaves the logits of the next in st->logits. */
static void feed(charlm *m, State *st, int32_t id)
{
    demo_check(charlm_forward(m, &id, st->h, st->c, st->logits, st->h_next,
                              st->c_next),
               "forward");
    memcpy(st->h, st->h_next, (size_t)st->hidden * sizeof(float));
    memcpy(st->c, st->c_next, (size_t)st->hidden * sizeof(float));
}

int main(int argc, char **argv)
{
    DemoOptions o = {.seed = 1,
                     .print_every = 1,
                     .params = "charlm.safetensors",
                     .prompt = "The ",
                     .length = 600,
                     .temperature = 0.7};
    demo_parse_options(&o, argc, argv,
                       "Generates text with the LSTM that charlm trained "
                       "(a B=1, T=1 build of charlm.nn).");
    charlm *m = charlm_new();
    if (!m)
        demo_fail("out of memory");
    demo_check(charlm_load(m, o.params), "load");
    State st = state_new();
    DemoRng rng;
    demo_rng_seed(&rng, o.seed);

    int32_t id = 0; /* a newline starts the text when the prompt is empty */
    feed(m, &st, id);
    printf("--- %ld characters sampled at temperature %g after \"%s\" ---\n",
           o.length, o.temperature, o.prompt);
    for (const char *p = o.prompt; *p; p++) {
        int32_t pid = demo_char_to_id96(*p);
        if (pid < 0)
            continue;
        putchar(demo_id96_to_char(pid));
        feed(m, &st, pid);
    }
    for (long i = 0; i < o.length; i++) {
        id = demo_sample(st.logits, st.vocab, o.temperature, &rng);
        putchar(demo_id96_to_char(id));
        feed(m, &st, id);
    }
    printf("\n---\n");
    charlm_free(m);
    state_free(&st);
    return 0;
}
