/* options.c — the command line of `nnc` (shared/spec/interface.md).
 *
 * One table lists every option: its spelling, the commands that accept it,
 * whether it takes a value, and its line of --help, so the parser and the
 * help text cannot drift apart.  Long options take their value as
 * `--emit ir` or `--emit=ir`; the short ones as `-o out.o` or `-oout.o`
 * (`-D NAME=INT` or `-DNAME=INT`), except `-O0`...`-O3`, which is one word.
 * Every mistake on the command line is found here, before any file is
 * read, and reported as one sentence; the driver prints it with the
 * `nnc: error: ` prefix and exits with status 2. */
#include "driver/driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const driver_emit_names[EMIT_COUNT] = {
    [EMIT_OBJ] = "obj", [EMIT_ASM] = "asm", [EMIT_LLVM] = "llvm",
    [EMIT_IR] = "ir",   [EMIT_DOT] = "dot", [EMIT_STATS] = "stats",
};

typedef enum CliOption {
    CLI_OUTPUT,
    CLI_HEADER,
    CLI_DEFINE,
    CLI_OPT_LEVEL,
    CLI_TARGET,
    CLI_CPU,
    CLI_EMIT,
    CLI_NO_FUSE,
    CLI_NO_TRAIN,
    CLI_DUMP_AFTER,
    CLI_DUMP_BEFORE,
    CLI_STOP_AFTER,
    CLI_VERIFY_EACH,
    CLI_TIME_PASSES,
    CLI_PASSES,
    CLI_IR_IN,
    CLI_PARAMS,
    CLI_SEED,
    CLI_INPUTS,
    CLI_OUTPUTS,
    CLI_GRADS,
    CLI_TRAIN_STEPS,
    CLI_SAVE,
    CLI_HELP,
    CLI_VERSION,
} CliOption;

/* Which commands accept an option. */
enum { IN_COMPILE = 1, IN_CHECK = 2, IN_RUN = 4, IN_ALL = 7 };

typedef struct OptionSpec {
    CliOption id;
    const char *name;     /* "-o", "--emit" */
    const char *synopsis; /* left column of --help */
    bool takes_value;
    bool attached_only; /* -O2: the value is part of the word */
    unsigned commands;
    const char *section;
    const char *help; /* '\n' continues on an indented line */
} OptionSpec;

static const char S_COMPILE[] = "Options (compiling)";
static const char S_DEBUG[] = "Debugging the compiler";
static const char S_RUN[] = "Options of nnc run";
static const char S_ANY[] = "Any command";

static const OptionSpec option_specs[] = {
    {CLI_OUTPUT, "-o", "-o PATH", true, false, IN_COMPILE, S_COMPILE,
     "output file, - for stdout (default: MODEL's stem\n"
     "with .o for --emit obj, in the current\n"
     "directory; stdout for the text kinds)"},
    {CLI_HEADER, "--header", "--header PATH", true, false, IN_COMPILE,
     S_COMPILE,
     "where the C header goes (default: OUT with .h;\n"
     "written for --emit obj, else only if given)"},
    {CLI_DEFINE, "-D", "-D NAME=INT", true, false, IN_ALL, S_COMPILE,
     "override a dim (also -DNAME=INT; every command)"},
    {CLI_OPT_LEVEL, "-O", "-O0 ... -O3", true, true, IN_COMPILE | IN_RUN,
     S_COMPILE,
     "optimisation level of the generated code\n"
     "(default -O2)"},
    {CLI_TARGET, "--target", "--target TRIPLE", true, false, IN_COMPILE,
     S_COMPILE, "cross-compile for TRIPLE (aarch64-linux-gnu, ...)"},
    {CLI_CPU, "--cpu", "--cpu NAME", true, false, IN_COMPILE, S_COMPILE,
     "CPU to generate code for (default: native\n"
     "for the host triple)"},
    {CLI_EMIT, "--emit", "--emit obj|asm|llvm|ir|dot|stats", true, false, IN_COMPILE,
     S_COMPILE,
     "object (default), assembly, LLVM IR text,\n"
     "nnc graph IR text or Graphviz; --emit stats:\n"
     "the instance's memory (planned workspace)"},
    {CLI_NO_FUSE, "--no-fuse", "--no-fuse", false, false, IN_COMPILE | IN_RUN,
     S_COMPILE, "skip the fusion passes"},
    {CLI_NO_TRAIN, "--no-train", "--no-train", false, false,
     IN_COMPILE | IN_RUN, S_COMPILE,
     "inference only: no backward pass and no\n"
     "optimizer state"},
    {CLI_DUMP_AFTER, "--dump-after", "--dump-after PASS|all", true, false,
     IN_COMPILE | IN_RUN, S_DEBUG,
     "print the graph IR after PASS (or every pass)\nto stderr"},
    {CLI_DUMP_BEFORE, "--dump-before", "--dump-before PASS|all", true, false,
     IN_COMPILE | IN_RUN, S_DEBUG,
     "print the graph IR before PASS (or every pass)\nto stderr"},
    {CLI_STOP_AFTER, "--stop-after", "--stop-after PASS", true, false,
     IN_COMPILE | IN_RUN, S_DEBUG,
     "run no pass after PASS; --emit ir then shows\nthe IR at that point"},
    {CLI_VERIFY_EACH, "--verify-each", "--verify-each", false, false,
     IN_COMPILE | IN_RUN, S_DEBUG,
     "verify the IR after the front end and every pass"},
    {CLI_TIME_PASSES, "--time-passes", "--time-passes", false, false,
     IN_COMPILE | IN_RUN, S_DEBUG,
     "print the time spent in each pass to stderr"},
    {CLI_PASSES, "--passes", "--passes P1,P2,...|none", true, false,
     IN_COMPILE | IN_RUN, S_DEBUG,
     "run exactly these passes in this order instead\nof the pipeline"},
    {CLI_IR_IN, "--ir-in", "--ir-in", false, false, IN_ALL, S_DEBUG,
     "the input is nnc graph IR text (as printed by\n"
     "--emit ir), not .nn source; also nnc check"},
    {CLI_PARAMS, "--params", "--params P.safetensors", true, false, IN_RUN,
     S_RUN, "load parameters (otherwise initialise them)"},
    {CLI_SEED, "--seed", "--seed N", true, false, IN_RUN, S_RUN,
     "seed for the initialisers and dropout (default 0)"},
    {CLI_INPUTS, "--inputs", "--inputs I.safetensors", true, false, IN_RUN,
     S_RUN, "the model's inputs, by name"},
    {CLI_OUTPUTS, "--outputs", "--outputs O.safetensors", true, false, IN_RUN,
     S_RUN, "run forward and write the outputs"},
    {CLI_GRADS, "--grads", "--grads G.safetensors", true, false, IN_RUN, S_RUN,
     "run backward once; write the gradients and loss"},
    {CLI_TRAIN_STEPS, "--train-steps", "--train-steps N", true, false, IN_RUN,
     S_RUN, "run N training steps, printing each loss"},
    {CLI_SAVE, "--save", "--save P.safetensors", true, false, IN_RUN, S_RUN,
     "write all parameters at the end"},
    {CLI_HELP, "--help", "--help", false, false, IN_ALL, S_ANY,
     "print this text"},
    {CLI_VERSION, "--version", "--version", false, false, IN_ALL, S_ANY,
     "print the version of nnc"},
};
enum { N_OPTION_SPECS = sizeof option_specs / sizeof option_specs[0] };

typedef struct Parser {
    Arena *a;
    Options *o;
    char *err;
    size_t errlen;
} Parser;

__attribute__((format(printf, 2, 3))) static bool
parse_error(Parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, p->errlen, fmt, ap);
    va_end(ap);
    return false;
}

static unsigned command_bit(Command c)
{
    return c == CMD_CHECK ? IN_CHECK : c == CMD_RUN ? IN_RUN : IN_COMPILE;
}

/* "cse, dce" for messages. */
static const char *pass_names(Arena *a)
{
    const char *s = "";
    for (int i = 0; i < PASS_COUNT; i++)
        s = arena_printf(a, "%s%s%s", s, i ? ", " : "", pass_info[i].name);
    return s;
}

/* ---- values ------------------------------------------------------------ */

static bool is_identifier(const char *s, size_t n)
{
    if (n == 0 || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') ||
                    (s[0] >= 'a' && s[0] <= 'z')))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

/* Decimal digits only, optionally after a '-' when `sign` allows it. */
static bool is_decimal(const char *s, bool sign)
{
    if (sign && *s == '-')
        s++;
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static bool parse_count(Parser *p, const char *opt, const char *value,
                        uint64_t *out)
{
    if (!is_decimal(value, false))
        return parse_error(p, "%s %s: expected a non-negative integer", opt,
                           value);
    errno = 0;
    unsigned long long v = strtoull(value, NULL, 10);
    if (errno == ERANGE)
        return parse_error(p, "%s %s: does not fit in 64 bits", opt, value);
    *out = v;
    return true;
}

/* -D NAME=INT: NAME an identifier, INT a positive 64-bit integer. */
static bool parse_define(Parser *p, const char *value)
{
    const char *eq = strchr(value, '=');
    if (!eq || !is_identifier(value, (size_t)(eq - value)))
        return parse_error(p, "-D %s: expected NAME=INT, NAME a dim name",
                           value);
    const char *num = eq + 1;
    if (!is_decimal(num, true))
        return parse_error(p, "-D %s: '%s' is not an integer", value, num);
    errno = 0;
    long long v = strtoll(num, NULL, 10);
    if (errno == ERANGE)
        return parse_error(p, "-D %s: %s does not fit in 64 bits", value, num);
    if (v <= 0)
        return parse_error(p, "-D %s: a dim must be a positive integer", value);
    const char *name = arena_strndup(p->a, value, (size_t)(eq - value));
    for (int i = 0; i < p->o->n_dims; i++)
        if (strcmp(p->o->dims[i].name, name) == 0)
            return parse_error(p, "-D %s: dim '%s' is already set by -D", value,
                               name);
    p->o->dims[p->o->n_dims++] = (DimOverride){.name = name, .value = v};
    return true;
}

/* --passes a,b,c (or "none"): pass ids in that order. */
static bool parse_pass_list(Parser *p, const char *value)
{
    Options *o = p->o;
    o->have_pass_list = true;
    o->n_passes = 0;
    if (strcmp(value, "none") == 0)
        return true;
    o->pass_list = arena_alloc(p->a, sizeof(int) * (strlen(value) / 2 + 1));
    for (const char *s = value;; s++) {
        size_t n = strcspn(s, ",");
        if (n == 0)
            return parse_error(p, "--passes %s: empty pass name", value);
        const char *name = arena_strndup(p->a, s, n);
        int id = pass_by_name(name);
        if (id < 0)
            return parse_error(p, "--passes: unknown pass '%s' (passes: %s)",
                               name, pass_names(p->a));
        o->pass_list[o->n_passes++] = id;
        s += n;
        if (!*s)
            return true;
    }
}

/* A pass name, or "all" when `all_ok`, for the dump and stop options. */
static bool parse_pass_name(Parser *p, const char *opt, const char *value,
                            bool all_ok, const char **out)
{
    if (!(all_ok && strcmp(value, "all") == 0) && pass_by_name(value) < 0)
        return parse_error(p, "%s: unknown pass '%s' (passes: %s%s)", opt,
                           value, pass_names(p->a), all_ok ? ", or all" : "");
    *out = value;
    return true;
}

static bool parse_emit(Parser *p, const char *value)
{
    for (int k = 0; k < EMIT_COUNT; k++)
        if (strcmp(value, driver_emit_names[k]) == 0) {
            p->o->emit = (EmitKind)k;
            return true;
        }
    return parse_error(p, "--emit %s: expected obj, asm, llvm, ir, dot or stats",
                       value);
}

static bool parse_opt_level(Parser *p, const char *value)
{
    if (strlen(value) != 1 || value[0] < '0' || value[0] > '3')
        return parse_error(p, "-O%s: expected -O0, -O1, -O2 or -O3", value);
    p->o->opt_level = value[0] - '0';
    return true;
}

/* A path or name given once, not empty. */
static bool set_string(Parser *p, const OptionSpec *s, const char *value,
                       const char **out)
{
    if (!*value)
        return parse_error(p, "option '%s' needs a non-empty value", s->name);
    if (*out)
        return parse_error(p, "option '%s' is given twice", s->name);
    *out = value;
    return true;
}

static bool apply_option(Parser *p, const OptionSpec *s, const char *v)
{
    Options *o = p->o;
    uint64_t n = 0;
    switch (s->id) {
    case CLI_OUTPUT: return set_string(p, s, v, &o->output);
    case CLI_HEADER: return set_string(p, s, v, &o->header);
    case CLI_DEFINE: return parse_define(p, v);
    case CLI_OPT_LEVEL: return parse_opt_level(p, v);
    case CLI_TARGET: return set_string(p, s, v, &o->target);
    case CLI_CPU: return set_string(p, s, v, &o->cpu);
    case CLI_EMIT: return parse_emit(p, v);
    case CLI_NO_FUSE: o->no_fuse = true; return true;
    case CLI_NO_TRAIN: o->no_train = true; return true;
    case CLI_DUMP_AFTER:
        return parse_pass_name(p, s->name, v, true, &o->pass.dump_after);
    case CLI_DUMP_BEFORE:
        return parse_pass_name(p, s->name, v, true, &o->pass.dump_before);
    case CLI_STOP_AFTER:
        return parse_pass_name(p, s->name, v, false, &o->pass.stop_after);
    case CLI_VERIFY_EACH: o->pass.verify_each = true; return true;
    case CLI_TIME_PASSES: o->pass.time_passes = true; return true;
    case CLI_PASSES: return parse_pass_list(p, v);
    case CLI_IR_IN: o->ir_in = true; return true;
    case CLI_PARAMS: return set_string(p, s, v, &o->params_path);
    case CLI_SEED: return parse_count(p, s->name, v, &o->seed);
    case CLI_INPUTS: return set_string(p, s, v, &o->inputs_path);
    case CLI_OUTPUTS: return set_string(p, s, v, &o->outputs_path);
    case CLI_GRADS: return set_string(p, s, v, &o->grads_path);
    case CLI_TRAIN_STEPS:
        if (!parse_count(p, s->name, v, &n))
            return false;
        if (n > INT64_MAX)
            return parse_error(p, "--train-steps %s: too many steps", v);
        o->train_steps = (int64_t)n;
        return true;
    case CLI_SAVE: return set_string(p, s, v, &o->save_path);
    case CLI_HELP: o->cmd = CMD_HELP; return true;
    case CLI_VERSION: o->cmd = CMD_VERSION; return true;
    }
    return parse_error(p, "option '%s' is not handled", s->name);
}

/* ---- words ------------------------------------------------------------- */

/* The spec of `arg` and its attached value (after '=' or a short name). */
static const OptionSpec *find_option(const char *arg, const char **attached)
{
    bool is_long = arg[1] == '-';
    size_t len = is_long ? strcspn(arg, "=") : 2;
    for (int i = 0; i < N_OPTION_SPECS; i++) {
        const OptionSpec *s = &option_specs[i];
        if ((s->name[1] == '-') != is_long || strlen(s->name) != len ||
            strncmp(s->name, arg, len) != 0)
            continue;
        *attached = arg[len] == '=' && is_long ? arg + len + 1
                    : arg[len]                 ? arg + len
                                               : NULL;
        return s;
    }
    return NULL;
}

static const char *command_name(Command c)
{
    return c == CMD_CHECK ? "nnc check"
           : c == CMD_RUN ? "nnc run"
                          : "compiling";
}

/* Parses the option at argv[*i], taking its value from argv[*i + 1] when
 * it is not attached. */
static bool parse_option(Parser *p, int argc, char **argv, int *i)
{
    const char *arg = argv[*i], *value = NULL;
    const OptionSpec *s = find_option(arg, &value);
    if (!s)
        return parse_error(p, "unknown option '%s'", arg);
    if (!(s->commands & command_bit(p->o->cmd))) {
        if (s->commands == IN_RUN)
            return parse_error(p, "option '%s' is only for nnc run", s->name);
        return parse_error(p, "%s does not take option '%s'",
                           command_name(p->o->cmd), s->name);
    }
    if (!s->takes_value && value)
        return parse_error(p, "option '%s' takes no value", s->name);
    if (s->takes_value && !value) {
        if (s->attached_only)
            return parse_opt_level(p, "");
        if (*i + 1 >= argc)
            return parse_error(p, "option '%s' needs a value: %s", s->name,
                               s->synopsis);
        value = argv[++*i];
    }
    return apply_option(p, s, value);
}

static bool set_model(Parser *p, const char *path)
{
    if (p->o->model)
        return parse_error(p, "more than one model file: '%s' and '%s'",
                           p->o->model, path);
    p->o->model = path;
    return true;
}

/* With --passes, a pass named by a dump or stop option must be in the list. */
static bool check_in_pass_list(Parser *p, const char *opt, const char *name)
{
    if (!name || strcmp(name, "all") == 0 || !p->o->have_pass_list)
        return true;
    int id = pass_by_name(name);
    for (int i = 0; i < p->o->n_passes; i++)
        if (p->o->pass_list[i] == id)
            return true;
    return parse_error(p, "%s %s: pass '%s' is not in --passes", opt, name,
                       name);
}

static bool check_complete(Parser *p)
{
    Options *o = p->o;
    if (!o->model)
        return parse_error(p, "no model file given");
    if (o->ir_in && o->n_dims > 0)
        return parse_error(
            p, "-D cannot be used with --ir-in: the dims of text IR are fixed");
    if (o->no_train && (o->grads_path || o->train_steps >= 0))
        return parse_error(p,
                           "--no-train cannot be used with %s: it compiles "
                           "no backward pass",
                           o->grads_path ? "--grads" : "--train-steps");
    return check_in_pass_list(p, "--dump-after", o->pass.dump_after) &&
           check_in_pass_list(p, "--dump-before", o->pass.dump_before) &&
           check_in_pass_list(p, "--stop-after", o->pass.stop_after);
}

bool driver_parse_options(Arena *a, int argc, char **argv, Options *o,
                          char *err, size_t errlen)
{
    *o = (Options){.cmd = CMD_COMPILE,
                   .opt_level = 2,
                   .emit = EMIT_OBJ,
                   .train_steps = -1};
    o->dims = arena_alloc(a, sizeof *o->dims * (size_t)(argc + 1));
    Parser p = {a, o, err, errlen};
    int i = 1;
    if (argc > 1 && strcmp(argv[1], "check") == 0)
        o->cmd = CMD_CHECK, i = 2;
    else if (argc > 1 && strcmp(argv[1], "run") == 0)
        o->cmd = CMD_RUN, i = 2;
    bool only_files = false;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (!only_files && strcmp(arg, "--") == 0) {
            only_files = true;
            continue;
        }
        bool is_option = !only_files && arg[0] == '-' && arg[1] != '\0';
        if (!(is_option ? parse_option(&p, argc, argv, &i)
                        : set_model(&p, arg)))
            return false;
        if (o->cmd == CMD_HELP || o->cmd == CMD_VERSION)
            return true;
    }
    return check_complete(&p);
}

/* ---- --help ------------------------------------------------------------ */

static const char usage_head[] =
    "usage: nnc MODEL.nn -o OUT.o [options]       compile to OUT.o plus OUT.h\n"
    "       nnc check MODEL.nn [-D NAME=INT]...    parse and check only\n"
    "       nnc run MODEL.nn [-D NAME=INT]... [options]\n"
    "                                             compile in memory and run\n"
    "       nnc --version | --help\n";

static const char usage_tail[] =
    "\n"
    "Diagnostics go to stderr as FILE:LINE:COL: error: MESSAGE.\n"
    "Exit status: 0 success; 1 the model or a file has an error; 2 the "
    "command\n"
    "line was wrong; 70 internal compiler error.\n";

/* One option line; continuation lines of the help are indented under it. */
static void print_option(FILE *f, const OptionSpec *s)
{
    fprintf(f, "  %-28s ", s->synopsis);
    if (strlen(s->synopsis) > 28)
        fprintf(f, "\n  %-28s ", "");
    for (const char *h = s->help; *h; h++) {
        if (*h == '\n')
            fprintf(f, "\n  %-28s ", "");
        else
            fputc(*h, f);
    }
    fputc('\n', f);
}

void driver_print_usage(FILE *f)
{
    fputs(usage_head, f);
    const char *section = NULL;
    for (int i = 0; i < N_OPTION_SPECS; i++) {
        if (option_specs[i].section != section) {
            section = option_specs[i].section;
            fprintf(f, "\n%s:\n", section);
        }
        print_option(f, &option_specs[i]);
    }
    fprintf(f, "\nPasses, in pipeline order:\n ");
    int col = 1;
    for (int i = 0; i < PASS_COUNT; i++) {
        int len = (int)strlen(pass_info[i].name) + 1;
        if (col + len > 78) {
            fputs("\n ", f);
            col = 1;
        }
        col += fprintf(f, " %s", pass_info[i].name);
    }
    fputc('\n', f);
    fputs(usage_tail, f);
}
