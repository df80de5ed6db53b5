/* run.c — `nnc run MODEL.nn`: execute a model without writing C.
 *
 * The module (through the passes) is JIT-compiled in memory for the host
 * (codegen/jit.c, LLVM's ORC LLJIT), so no C compiler or linker runs.  The
 * steps of interface.md then run in its order, each on the same inputs,
 * and the first failure ends the run:
 *
 *   NAME_init(--seed), then --params loaded over the initial values
 *   read the inputs (--inputs: exactly the model's inputs)
 *   --outputs      forward, outputs written under their names
 *   --grads        backward once; each trainable parameter's gradient
 *                  under the parameter's name, plus the scalar `loss`
 *   --train-steps  N training steps, "step K loss L" on stdout for each
 *   --save         every parameter
 *
 * The generated functions are found by name in the JIT.  Forward, backward
 * and train_step are called through their JIT-only `_argv` wrappers, whose
 * arguments come from an array (forward: the inputs it uses, then the
 * outputs; the training ones: every input), since the driver knows the
 * model only at run time.  Tensor names, dtypes, shapes and the gradients'
 * offsets come from the model's own NAME_info() table, the same one the
 * runtime's loaders use.  A runtime error (a file the runtime rejects, an
 * id or target out of range) is exit status 1 with the runtime's message:
 * file errors already read "FILE: error: ...", others get "nnc: error: ".
 * A request the model cannot serve (training steps for a model without
 * `train`, --outputs without the inputs it needs) is a command-line error,
 * found before anything is compiled. */
#include "driver/driver.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codegen/codegen.h"
#include "runtime/nnc.h"

/* The generated API of the JIT-compiled model. */
typedef struct Entry {
    void *(*create)(void);
    void (*destroy)(void *);
    void (*init)(void *, uint64_t);
    int (*load)(void *, const char *);
    int (*save)(const void *, const char *);
    const nnc_model_info *(*info)(void);
    CgForwardArgv forward;
    CgTrainArgv backward, train_step; /* NULL without the training API */
} Entry;

/* Caller-owned tensors of one role (inputs or outputs), in table order,
 * with their data. */
typedef struct Tensors {
    int n;
    nnc_tensor_info *info;
    void **data;
} Tensors;

typedef struct Run {
    Arena *a;
    const Module *m;
    const Options *o;
    Entry fn;
    const nnc_model_info *info;
    void *inst;
    Tensors inputs, outputs;
    bool *used; /* used[i]: forward takes input i */
} Run;

/* ---- checks before compiling --------------------------------------------- */

/* The names of the model's inputs, "x, y", for messages. */
static const char *input_names(Arena *a, const Module *m)
{
    const char *s = "";
    for (int i = 0; i < m->inputs.len; i++)
        s = arena_printf(a, "%s%s%s", s, i ? ", " : "", m->inputs.data[i].name);
    return s;
}

/* A step that needs inputs the command line does not give: a wrong
 * command line for this model (status 2). */
static int missing_inputs(Run *r, const char *option)
{
    return driver_usage_error(
        arena_printf(r->a, "%s needs --inputs: model '%s' has inputs %s",
                     option, r->m->name, input_names(r->a, r->m)));
}

static const char *training_option(const Options *o)
{
    return o->grads_path ? "--grads" : "--train-steps";
}

/* --grads and --train-steps need the training API: a `train` statement,
 * and the gradients the autodiff pass adds (not with --passes leaving it
 * out).  A parameter named `loss` would collide with the loss's entry in
 * the gradient file. */
static int check_training(Run *r)
{
    const Module *m = r->m;
    const char *opt = training_option(r->o);
    if (m->train.opt == OPT_NONE)
        return driver_usage_error(arena_printf(
            r->a, "%s needs a model with `train`; model '%s' has none", opt,
            m->name));
    if (!cg_has_train(m))
        return driver_usage_error(arena_printf(
            r->a,
            "%s needs gradients, and no pass computed them for model '%s'", opt,
            m->name));
    for (int i = 0; r->o->grads_path && i < m->params.len; i++)
        if (strcmp(m->params.data[i].name, "loss") == 0)
            return driver_usage_error(
                "--grads: the model has a parameter named 'loss', the name "
                "the gradient file gives the loss");
    if (m->inputs.len > 0 && !r->o->inputs_path)
        return missing_inputs(r, opt);
    return EXIT_SUCCESS;
}

/* The runtime saves by renaming a new file over the old one, which would
 * replace a device or a pipe (as root, /dev/null itself) instead of
 * writing to it: only regular files, or new ones, are written. */
static bool check_output(const char *path)
{
    struct stat st;
    if (!path || stat(path, &st) != 0 || S_ISREG(st.st_mode))
        return true;
    fprintf(stderr,
            "nnc: error: cannot write '%s': not a regular file (files are "
            "saved by renaming a new file over the old one)\n",
            path);
    return false;
}

/* Found before any compiling. */
static int check_request(Run *r)
{
    const Options *o = r->o;
    if (!check_output(o->outputs_path) || !check_output(o->grads_path) ||
        !check_output(o->save_path))
        return EXIT_MODEL_ERROR;
    int n_used = cg_forward_inputs(r->m, r->used);
    if (o->outputs_path && n_used > 0 && !o->inputs_path)
        return missing_inputs(r, "--outputs");
    if (o->grads_path || o->train_steps >= 0)
        return check_training(r);
    return EXIT_SUCCESS;
}

/* ---- the JIT-compiled model ---------------------------------------------- */

static void *lookup(Run *r, CgJit *jit, const char *suffix)
{
    const char *name = arena_printf(r->a, "%s_%s", r->m->name, suffix);
    void *p = cg_jit_lookup(jit, name);
    if (!p)
        ir_internal_error("run", "the JIT module has no '%s'", name);
    return p;
}

/* Casts from the JIT's untyped addresses to the generated signatures
 * (POSIX guarantees void * holds a function's address, as for dlsym). */
static void find_entries(Run *r, CgJit *jit)
{
    Entry *e = &r->fn;
    e->create = (void *(*)(void))lookup(r, jit, "new");
    e->destroy = (void (*)(void *))lookup(r, jit, "free");
    e->init = (void (*)(void *, uint64_t))lookup(r, jit, "init");
    e->load = (int (*)(void *, const char *))lookup(r, jit, "load");
    e->save = (int (*)(const void *, const char *))lookup(r, jit, "save");
    e->info = (const nnc_model_info *(*)(void))lookup(r, jit, "info");
    e->forward = (CgForwardArgv)lookup(r, jit, "forward_argv");
    if (cg_has_train(r->m)) {
        e->backward = (CgTrainArgv)lookup(r, jit, "backward_argv");
        e->train_step = (CgTrainArgv)lookup(r, jit, "train_step_argv");
    }
}

/* ---- tensors ------------------------------------------------------------- */

/* The table's tensors of `role`, each with a buffer of its own size. */
static bool alloc_tensors(Run *r, nnc_role role, Tensors *t)
{
    const nnc_model_info *info = r->info;
    t->n = 0;
    for (int i = 0; i < info->n_tensors; i++)
        t->n += info->tensors[i].role == role;
    t->info = arena_alloc(r->a, sizeof *t->info * (size_t)(t->n + 1));
    t->data = calloc((size_t)t->n + 1, sizeof *t->data);
    if (!t->data)
        return false;
    for (int i = 0, k = 0; i < info->n_tensors; i++) {
        const nnc_tensor_info *ti = &info->tensors[i];
        if (ti->role != role)
            continue;
        t->info[k] = *ti;
        size_t bytes = (size_t)ti->numel * nnc_dtype_size(ti->dtype);
        t->data[k] = calloc(bytes ? bytes : 1, 1);
        if (!t->data[k++])
            return false;
    }
    return true;
}

static void free_tensors(Tensors *t)
{
    for (int i = 0; t->data && i < t->n; i++)
        free(t->data[i]);
    free(t->data);
}

/* ---- the steps ----------------------------------------------------------- */

/* A runtime call failed: its message, with "nnc: error: " unless it names
 * a file already. */
static int runtime_error(bool file_message)
{
    fprintf(stderr, "%s%s\n",
            file_message ? "" : "nnc: error: ", nnc_last_error());
    return EXIT_MODEL_ERROR;
}

/* NAME_init(--seed) always: it also sets the seed that keys dropout in
 * training (the header's recipe: init with the seed, then load). */
static int step_params(Run *r)
{
    r->fn.init(r->inst, r->o->seed);
    if (r->o->params_path && r->fn.load(r->inst, r->o->params_path))
        return runtime_error(true);
    return EXIT_SUCCESS;
}

static int step_inputs(Run *r)
{
    if (!r->o->inputs_path)
        return EXIT_SUCCESS;
    Tensors *in = &r->inputs;
    if (nnc_st_load_exact(r->o->inputs_path, in->n, in->info, in->data))
        return runtime_error(true);
    return EXIT_SUCCESS;
}

/* forward through NAME_forward_argv: used inputs, then outputs. */
static int step_outputs(Run *r)
{
    if (!r->o->outputs_path)
        return EXIT_SUCCESS;
    Tensors *in = &r->inputs, *out = &r->outputs;
    void **args = arena_alloc(r->a, sizeof *args * (size_t)(in->n + out->n));
    int n = 0;
    for (int i = 0; i < in->n; i++)
        if (r->used[i])
            args[n++] = in->data[i];
    for (int i = 0; i < out->n; i++)
        args[n++] = out->data[i];
    if (r->fn.forward(r->inst, args))
        return runtime_error(false);
    if (nnc_st_save_tensors(r->o->outputs_path, out->n, out->info,
                            (const void *const *)out->data))
        return runtime_error(true);
    return EXIT_SUCCESS;
}

/* The training entry points return the loss, or NaN after a data error;
 * a NaN the model computed leaves no error message. */
static bool training_failed(float loss)
{
    return isnan(loss) && nnc_last_error()[0] != '\0';
}

/* Every GRAD entry of the table (named as its parameter, frozen ones have
 * none), then the scalar loss. */
static int step_grads(Run *r)
{
    if (!r->o->grads_path)
        return EXIT_SUCCESS;
    nnc_clear_error();
    float loss = r->fn.backward(r->inst, r->inputs.data);
    if (training_failed(loss))
        return runtime_error(false);
    const nnc_model_info *info = r->info;
    nnc_tensor_info *t =
        arena_alloc(r->a, sizeof *t * (size_t)(info->n_tensors + 1));
    const void **data =
        arena_alloc(r->a, sizeof *data * (size_t)(info->n_tensors + 1));
    int n = 0;
    for (int i = 0; i < info->n_tensors; i++)
        if (info->tensors[i].role == NNC_ROLE_GRAD) {
            t[n] = info->tensors[i];
            data[n++] = (const char *)r->inst + info->tensors[i].offset;
        }
    t[n] = (nnc_tensor_info){.name = "loss",
                             .role = NNC_ROLE_OUTPUT,
                             .dtype = NNC_F32,
                             .rank = 0,
                             .param = -1,
                             .numel = 1,
                             .offset = -1};
    data[n++] = &loss;
    if (nnc_st_save_tensors(r->o->grads_path, n, t, data))
        return runtime_error(true);
    return EXIT_SUCCESS;
}

static int step_train(Run *r)
{
    for (int64_t k = 1; k <= r->o->train_steps; k++) {
        nnc_clear_error();
        float loss = r->fn.train_step(r->inst, r->inputs.data);
        if (training_failed(loss))
            return runtime_error(false);
        printf("step %lld loss %.8g\n", (long long)k, loss);
        fflush(stdout);
    }
    return EXIT_SUCCESS;
}

static int step_save(Run *r)
{
    if (!r->o->save_path)
        return EXIT_SUCCESS;
    return r->fn.save(r->inst, r->o->save_path) ? runtime_error(true)
                                                : EXIT_SUCCESS;
}

/* In interface.md's order; each step does nothing unless asked for. */
static int (*const run_steps[])(Run *) = {
    step_params, step_inputs, step_outputs, step_grads, step_train, step_save,
};

static int run_instance(Run *r)
{
    r->info = r->fn.info();
    if (nnc_model_check(r->info) != NNC_OK)
        ir_internal_error("run", "%s", nnc_last_error());
    if (!alloc_tensors(r, NNC_ROLE_INPUT, &r->inputs) ||
        !alloc_tensors(r, NNC_ROLE_OUTPUT, &r->outputs)) {
        fprintf(stderr, "nnc: error: out of memory\n");
        return EXIT_MODEL_ERROR;
    }
    if (r->inputs.n != r->m->inputs.len)
        ir_internal_error("run", "the info table has %d inputs, the model %d",
                          r->inputs.n, (int)r->m->inputs.len);
    int status = EXIT_SUCCESS;
    for (size_t i = 0; !status && i < sizeof run_steps / sizeof *run_steps; i++)
        status = run_steps[i](r);
    return status;
}

int driver_run(Arena *a, const Module *m, const Options *o)
{
    Run r = {.a = a, .m = m, .o = o};
    r.used = arena_alloc(a, sizeof *r.used * (size_t)(m->inputs.len + 1));
    int status = check_request(&r);
    if (status)
        return status;
    CgOptions cg = {.opt_level = o->opt_level};
    CgJit *jit = cg_jit_new(m, &cg);
    if (!jit)
        return EXIT_MODEL_ERROR;
    find_entries(&r, jit);
    r.inst = r.fn.create();
    if (!r.inst) {
        fprintf(stderr, "nnc: error: out of memory for model '%s'\n", m->name);
        status = EXIT_MODEL_ERROR;
    } else {
        status = run_instance(&r);
        r.fn.destroy(r.inst);
    }
    free_tensors(&r.inputs);
    free_tensors(&r.outputs);
    cg_jit_free(jit);
    return status;
}
