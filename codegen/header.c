/* header.c — the C header of a compiled model (NAME.h).
 *
 * Self-contained C99 that needs only libnncrt's nnc.h: include guards,
 * extern "C" guards for C++, the opaque instance type and every function
 * of the generated API that this build defines, with each tensor's shape
 * in a comment.  NAME_forward's parameters are the inputs the outputs use
 * (signature.c) then the outputs; a parameter name that would clash with a
 * C or C++ keyword or with an earlier parameter gets a trailing '_'.  With
 * the training API (cg_has_train; not with --no-train) the header also
 * declares backward, train_step, update, set_lr, grad and the checkpoint
 * functions, with the optimizer and its state in a comment. */
#include "codegen/codegen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const keywords[] = {
    "auto",       "break",     "case",     "char",     "const",     "continue",
    "default",    "do",        "double",   "else",     "enum",      "extern",
    "float",      "for",       "goto",     "if",       "inline",    "int",
    "long",       "register",  "restrict", "return",   "short",     "signed",
    "sizeof",     "static",    "struct",   "switch",   "typedef",   "union",
    "unsigned",   "void",      "volatile", "while",    "_Bool",     "_Complex",
    "_Imaginary", "bool",      "class",    "delete",   "new",       "operator",
    "private",    "protected", "public",   "template", "this",      "throw",
    "try",        "virtual",   "catch",    "friend",   "namespace", "using",
    "NULL",       "m",
};

typedef struct Names {
    char buf[64][160];
    int n;
} Names;

/* A C parameter name for `name`, distinct from the earlier ones. */
static const char *param_name(Names *ns, const char *name)
{
    char cand[160];
    snprintf(cand, sizeof cand, "%s", name);
    for (;;) {
        bool clash = false;
        for (size_t k = 0; k < sizeof keywords / sizeof *keywords; k++)
            clash |= strcmp(cand, keywords[k]) == 0;
        for (int i = 0; i < ns->n && i < 64; i++)
            clash |= strcmp(cand, ns->buf[i]) == 0;
        if (!clash)
            break;
        size_t len = strlen(cand);
        if (len + 2 >= sizeof cand)
            break;
        cand[len] = '_';
        cand[len + 1] = '\0';
    }
    char *slot = ns->buf[ns->n < 64 ? ns->n : 63];
    snprintf(slot, sizeof ns->buf[0], "%s", cand);
    ns->n++;
    return slot;
}

static const char *type_str(const Type *t, char *buf, size_t len)
{
    return ir_type_str(t, buf, len);
}

/* The initialiser as the model file spells it: "normal(0, 0.02)". */
static const char *init_str(const Init *in, char *buf, size_t len)
{
    const char *name = ir_init_names[in->kind];
    if (in->kind == INIT_CONST)
        snprintf(buf, len, "%s(%g)", name, in->a);
    else if (in->kind == INIT_UNIFORM || in->kind == INIT_NORMAL)
        snprintf(buf, len, "%s(%g, %g)", name, in->a, in->b);
    else
        snprintf(buf, len, "%s", name);
    return buf;
}

static void print_declarations(FILE *f, const Module *m)
{
    char tb[256], ib[96];
    fprintf(f, "/* Parameters (NAME_param, NAME_load, NAME_save), in "
               "declaration order:\n");
    for (int i = 0; i < m->params.len; i++) {
        const ParamDecl *p = &m->params.data[i];
        fprintf(f, " *   %-12s %-20s = %s%s\n", p->name,
                type_str(&p->type, tb, sizeof tb),
                init_str(&p->init, ib, sizeof ib), p->frozen ? " frozen" : "");
    }
    if (m->params.len == 0)
        fprintf(f, " *   (none)\n");
    fprintf(f, " * Inputs:\n");
    for (int i = 0; i < m->inputs.len; i++)
        fprintf(f, " *   %-12s %s\n", m->inputs.data[i].name,
                type_str(&m->inputs.data[i].type, tb, sizeof tb));
    fprintf(f, " */\n\n");
}

static void print_forward(FILE *f, const Module *m)
{
    const Graph *g = m->graphs.data[0];
    bool *used = calloc((size_t)m->inputs.len + 1, 1);
    Names *ns = calloc(1, sizeof *ns);
    if (!used || !ns)
        ir_internal_error("codegen", "out of memory");
    cg_forward_inputs(m, used);
    char tb[256];
    fprintf(
        f,
        "/* inference: the inputs the outputs depend on, then the outputs\n");
    for (int i = 0; i < m->inputs.len; i++)
        if (used[i])
            fprintf(f, " *   in   %-12s %s\n", m->inputs.data[i].name,
                    type_str(&m->inputs.data[i].type, tb, sizeof tb));
    for (int r = 0; r < m->n_outputs; r++) {
        Type t = ir_value_type(g, g->results.data[r]);
        const char *name = g->result_names.data[r];
        fprintf(f, " *   out  %-12s %s\n", name ? name : "(unnamed)",
                type_str(&t, tb, sizeof tb));
    }
    fprintf(f, " * Returns 0, or a negative nnc_status (an id or target out of "
               "range). */\n");
    fprintf(f, "int %s_forward(%s *m", m->name, m->name);
    for (int i = 0; i < m->inputs.len; i++)
        if (used[i])
            fprintf(f, ", const %s *%s",
                    m->inputs.data[i].type.dtype == DT_I32 ? "int32_t"
                                                           : "float",
                    param_name(ns, m->inputs.data[i].name));
    for (int r = 0; r < m->n_outputs; r++) {
        const char *name = g->result_names.data[r];
        char fallback[32];
        snprintf(fallback, sizeof fallback, "output%d", r);
        fprintf(f, ", float *%s", param_name(ns, name ? name : fallback));
    }
    fprintf(f, ");\n\n");
    free(used);
    free(ns);
}

/* ", const float *x, const int32_t *y": every input, declaration order. */
static void print_all_inputs(FILE *f, const Module *m)
{
    Names *ns = calloc(1, sizeof *ns);
    if (!ns)
        ir_internal_error("codegen", "out of memory");
    for (int i = 0; i < m->inputs.len; i++)
        fprintf(f, ", const %s *%s",
                m->inputs.data[i].type.dtype == DT_I32 ? "int32_t" : "float",
                param_name(ns, m->inputs.data[i].name));
    free(ns);
}

static void print_optimizer(FILE *f, const Module *m)
{
    const TrainSpec *t = &m->train;
    fprintf(f, " * Optimizer: %s(lr = %g", ir_opt_names[t->opt], t->lr);
    if (t->opt == OPT_SGD)
        fprintf(f, ", momentum = %g, nesterov = %s", t->momentum,
                t->nesterov ? "true" : "false");
    else
        fprintf(f, ", beta1 = %g, beta2 = %g, eps = %g", t->beta1, t->beta2,
                t->eps);
    fprintf(f, ", weight_decay = %g", t->weight_decay);
    if (t->clip_grad_norm > 0)
        fprintf(f, ", clip_grad_norm = %g", t->clip_grad_norm);
    fprintf(f, ")\n");
}

static void print_train_comment(FILE *f, const Module *m)
{
    char tb[256];
    const char *slots[CG_MAX_OPT_SLOTS];
    int n_slots = cg_opt_slots(&m->train, slots);
    fprintf(f, "/* training: every input, in declaration order\n");
    for (int i = 0; i < m->inputs.len; i++)
        fprintf(f, " *   in   %-12s %s\n", m->inputs.data[i].name,
                type_str(&m->inputs.data[i].type, tb, sizeof tb));
    print_optimizer(f, m);
    fprintf(f,
            " * Gradients (%s_grad) and optimizer state (checkpoints: "
            "opt.PARAM.SLOT, opt.step):\n",
            m->name);
    for (int i = 0; i < m->params.len; i++) {
        const ParamDecl *p = &m->params.data[i];
        if (p->frozen)
            continue;
        fprintf(f, " *   %s", p->name);
        for (int s = 0; s < n_slots; s++)
            fprintf(f, "%s%s.%s", s ? " " : ": ", p->name, slots[s]);
        fprintf(f, "\n");
    }
    fprintf(f,
            " * backward and train_step return the loss (before the "
            "update), or NaN after a\n * data error (an id or target out of "
            "range; nnc_last_error() says which),\n * which leaves the "
            "parameters and gradients unchanged.  backward overwrites\n"
            " * the gradients; update clips them (with clip_grad_norm) and "
            "takes one step.\n * Dropout masks are keyed by %s_init's seed "
            "and the step: to resume from\n * a checkpoint, init with the "
            "same seed, then load_checkpoint. */\n",
            m->name);
}

static void print_train(FILE *f, const Module *m)
{
    const char *n = m->name;
    print_train_comment(f, m);
    fprintf(f, "float %s_train_step(%s *m", n, n);
    print_all_inputs(f, m);
    fprintf(f, "); /* backward + update; returns the loss */\n");
    fprintf(f, "float %s_backward(%s *m", n, n);
    print_all_inputs(f, m);
    fprintf(f, "); /* gradients only; returns the loss */\n");
    fprintf(f,
            "void %s_update(%s *m); /* one optimizer step from the current "
            "gradients */\n",
            n, n);
    fprintf(f, "void %s_set_lr(%s *m, float lr);\n", n, n);
    fprintf(f,
            "float *%s_grad(%s *m, const char *name); /* NULL if no such "
            "trainable parameter */\n",
            n, n);
    fprintf(f,
            "int %s_save_checkpoint(const %s *m, const char *path); /* "
            "parameters + optimizer state + step */\n",
            n, n);
    fprintf(f, "int %s_load_checkpoint(%s *m, const char *path);\n\n", n, n);
}

void cg_print_header(FILE *f, const Module *m)
{
    const char *n = m->name;
    fprintf(
        f,
        "/* %s.h: the C API of model `%s`, generated by nnc %s.  Do not edit.\n"
        " * Link %s.o with -lnncrt (which brings OpenBLAS).  int results are 0 "
        "or a\n"
        " * negative nnc_status; nnc_last_error() describes the failure. */\n",
        n, n, NNC_VERSION, n);
    fprintf(f, "#ifndef NNC_MODEL_%s_H\n#define NNC_MODEL_%s_H\n\n", n, n);
    fprintf(f, "#include <stdint.h>\n\n#include \"nnc.h\"\n\n");
    fprintf(f, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    print_declarations(f, m);
    cg_print_memory_comment(f, m);
    fprintf(f, "typedef struct %s %s; /* one model instance, opaque */\n\n", n,
            n);
    fprintf(f,
            "%s *%s_new(void); /* allocates everything it will ever use; NULL "
            "if out of memory */\n",
            n, n);
    fprintf(f, "void %s_free(%s *m);\n", n, n);
    fprintf(f,
            "void %s_init(%s *m, uint64_t seed); /* run the declared "
            "initialisers */\n",
            n, n);
    fprintf(f,
            "int %s_load(%s *m, const char *path); /* parameters from "
            "safetensors */\n",
            n, n);
    fprintf(f, "int %s_save(const %s *m, const char *path);\n\n", n, n);
    print_forward(f, m);
    if (cg_has_train(m))
        print_train(f, m);
    fprintf(f,
            "float *%s_param(%s *m, const char *name); /* NULL if no such "
            "parameter */\n",
            n, n);
    fprintf(f,
            "const nnc_model_info *%s_info(void); /* names, roles, dtypes, "
            "shapes of every tensor */\n\n",
            n);
    fprintf(f, "#ifdef __cplusplus\n}\n#endif\n\n#endif /* NNC_MODEL_%s_H */\n",
            n);
}

int cg_write_header(const Module *m, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    cg_print_header(f, m);
    bool failed = ferror(f) != 0;
    return fclose(f) == 0 && !failed ? 0 : -1;
}
