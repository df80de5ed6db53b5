/* e2e_main.c — a user program around one model compiled by `nnc -o`.
 *
 * Built by e2e_test.sh with the system cc for each conformance model:
 *
 *   cc -DNNC_MODEL=gpt -DNNC_HEADER='"gpt.h"' \
 *      '-DNNC_FORWARD_ARGS=ARG(tokens), ARG(logits)' \
 *      '-DNNC_TRAIN_ARGS=ARG(tokens), ARG(targets)' \
 *      e2e_main.c gpt.o libnncrt.a -lopenblas -lpthread -lm
 *
 * NNC_FORWARD_ARGS names forward's arguments after the instance (the
 * inputs the outputs use, then the outputs), NNC_TRAIN_ARGS those of
 * backward and train_step (every input), so the same file calls every
 * model with its own signatures.  Inputs and outputs are found by name in
 * NAME_info(); the files go through libnncrt.
 *
 *   prog forward PARAMS INPUTS OUTPUTS   load, forward, write the outputs
 *   prog bad-id INPUTS                   forward must fail with
 *                                        NNC_ERR_RANGE; prints the message
 *   prog allocs INPUTS SCRATCH           count heap calls after NAME_new:
 *                                        init, two forwards, backward and
 *                                        two train steps must make none
 *                                        (status 1 otherwise); the calls
 *                                        of a save and a load to SCRATCH
 *                                        are printed, not judged
 *
 * `allocs` exists when built with -DNNC_COUNT_ALLOCS and alloc_count.c,
 * which replaces the allocator (so not under AddressSanitizer, which
 * replaces it too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include NNC_HEADER
#ifdef NNC_COUNT_ALLOCS
#include "alloc_count.h"
#endif

#define CAT_(a, b) a##_##b
#define CAT(a, b)  CAT_(a, b)
#define FN(name)   CAT(NNC_MODEL, name)
#define STR_(x)    #x
#define STR(x)     STR_(x)
#define ARG(name)  tensor_data(&io, #name)

typedef NNC_MODEL Model;

/* The inputs and outputs of the model: NAME_info()'s entries with those
 * roles, each with a buffer. */
typedef struct Tensors {
    int n;
    nnc_tensor_info info[32];
    void *data[32];
} Tensors;

static void fail(const char *what)
{
    fprintf(stderr, "e2e_main(%s): %s failed: %s\n", STR(NNC_MODEL), what,
            nnc_last_error());
    exit(1);
}

static void collect(Tensors *t, nnc_role role)
{
    const nnc_model_info *info = FN(info)();
    for (int i = 0; i < info->n_tensors; i++) {
        if (info->tensors[i].role != role)
            continue;
        if (t->n == 32)
            fail("more than 32 inputs and outputs");
        t->info[t->n] = info->tensors[i];
        t->data[t->n] = calloc((size_t)info->tensors[i].numel, 4);
        if (!t->data[t->n++])
            fail("calloc");
    }
}

static Tensors io; /* inputs, then outputs */
static int n_inputs;

static void *tensor_data(Tensors *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->info[i].name, name) == 0)
            return t->data[i];
    fprintf(stderr, "e2e_main: no tensor '%s'\n", name);
    exit(1);
}

static void load_inputs(const char *path)
{
    collect(&io, NNC_ROLE_INPUT);
    n_inputs = io.n;
    collect(&io, NNC_ROLE_OUTPUT);
    if (nnc_st_load_exact(path, n_inputs, io.info, io.data))
        fail("loading the inputs");
}

static int forward(Model *m) { return FN(forward)(m, NNC_FORWARD_ARGS); }

#ifdef NNC_COUNT_ALLOCS
/* backward, then two training steps; 0 if every loss is a number. */
static int train(Model *m)
{
    float l0 = FN(backward)(m, NNC_TRAIN_ARGS);
    float l1 = FN(train_step)(m, NNC_TRAIN_ARGS);
    float l2 = FN(train_step)(m, NNC_TRAIN_ARGS);
    return l0 != l0 || l1 != l1 || l2 != l2;
}
#endif

static Model *new_model(void)
{
    Model *m = FN(new)();
    if (!m)
        fail("NAME_new");
    return m;
}

static int run_forward(char **argv)
{
    load_inputs(argv[3]);
    Model *m = new_model();
    if (FN(load)(m, argv[2]))
        fail("loading the parameters");
    if (forward(m))
        fail("forward");
    if (nnc_st_save_tensors(argv[4], io.n - n_inputs, io.info + n_inputs,
                            (const void *const *)(io.data + n_inputs)))
        fail("writing the outputs");
    FN(free)(m);
    return 0;
}

#ifdef NNC_COUNT_ALLOCS
static void print_counts(const char *what, long total, const long *kinds)
{
    printf("%s: %ld heap calls", what, total);
    for (int k = 0; k < ALLOC_KINDS; k++)
        if (kinds[k])
            printf(" %s %ld", alloc_kind_names[k], kinds[k]);
    printf("\n");
}

static int run_allocs(char **argv)
{
    load_inputs(argv[2]);
    long kinds[ALLOC_KINDS];
    Model *m = new_model();
    alloc_count_arm();
    FN(init)(m, 5);
    int rc = forward(m);
    rc |= forward(m);
    rc |= train(m);
    long after_new = alloc_count_disarm(kinds);
    if (rc)
        fail("forward or training");
    print_counts("init, forward x2, backward, train_step x2 after NAME_new",
                 after_new, kinds);
    alloc_count_print_callers(stdout);
    alloc_count_arm();
    rc = FN(save)(m, argv[3]) | FN(load)(m, argv[3]);
    long files = alloc_count_disarm(kinds);
    if (rc)
        fail("save and load");
    print_counts("save + load (not judged)", files, kinds);
    FN(free)(m);
    return after_new != 0;
}
#endif

static int run_bad_id(char **argv)
{
    load_inputs(argv[2]);
    Model *m = new_model();
    FN(init)(m, 5);
    int rc = forward(m);
    printf("forward: %d (%s): %s\n", rc, nnc_status_name(rc), nnc_last_error());
    FN(free)(m);
    return rc != NNC_ERR_RANGE;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "forward") == 0 && argc == 5)
        return run_forward(argv);
    if (strcmp(mode, "bad-id") == 0 && argc == 3)
        return run_bad_id(argv);
#ifdef NNC_COUNT_ALLOCS
    if (strcmp(mode, "allocs") == 0 && argc == 4)
        return run_allocs(argv);
#endif
    fprintf(stderr,
            "usage: %s forward PARAMS INPUTS OUTPUTS | bad-id INPUTS | allocs "
            "INPUTS SCRATCH (with NNC_COUNT_ALLOCS)\n",
            argv[0]);
    return 2;
}
