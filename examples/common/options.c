/* options.c — the command line shared by the demos: a handful of
 * `--name VALUE` flags over defaults each demo sets, plus the error exits
 * the demos use (demo_fail, demo_check) and a zeroing allocator. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

static const char *program_name = "demo";

_Noreturn void demo_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void demo_check(int status, const char *what)
{
    if (status != 0)
        demo_fail("%s: %s", what, nnc_last_error());
}

void *demo_alloc(size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p)
        demo_fail("out of memory (%zu bytes)", bytes);
    return p;
}

static void print_usage(FILE *f, const DemoOptions *o, const char *about)
{
    fprintf(f, "usage: %s [options]\n%s\n\n", o->program, about);
    fprintf(f,
            "options (default):\n"
            "  --steps N          training steps (%ld)\n"
            "  --seed N           seed of init, batches, sampling (%llu)\n"
            "  --lr X             peak learning rate, 0 = the model's "
            "constant one (%g)\n"
            "  --print-every N    progress line every N steps (%ld)\n"
            "  --threads N        runtime threads, 0 = runtime default (%d)\n"
            "  --data PATH        data file or directory (%s)\n"
            "  --params PATH      parameters written or read (%s)\n",
            o->steps, (unsigned long long)o->seed, o->lr, o->print_every,
            o->threads, o->data ? o->data : "none",
            o->params ? o->params : "none");
    fprintf(f,
            "options of the samplers (charlm_sample, gpt_sample):\n"
            "  --prompt TEXT      text to start from (\"%s\")\n"
            "  --length N         characters to generate (%ld)\n"
            "  --temperature X    softmax temperature, 0 = argmax (%g)\n",
            o->prompt ? o->prompt : "", o->length, o->temperature);
}

static _Noreturn void bad_usage(const DemoOptions *o, const char *about,
                                const char *flag, const char *why)
{
    fprintf(stderr, "%s: %s: %s\n", o->program, flag, why);
    print_usage(stderr, o, about);
    exit(2);
}

static long parse_long(const DemoOptions *o, const char *about,
                       const char *flag, const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        bad_usage(o, about, flag, "expects a non-negative integer");
    return v;
}

static double parse_double(const DemoOptions *o, const char *about,
                           const char *flag, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0))
        bad_usage(o, about, flag, "expects a non-negative number");
    return v;
}

/* Applies one `flag value` pair; returns 0 if the flag is unknown. */
static int apply_option(DemoOptions *o, const char *about, const char *flag,
                        const char *v)
{
    if (!strcmp(flag, "--steps"))
        o->steps = parse_long(o, about, flag, v);
    else if (!strcmp(flag, "--seed"))
        o->seed = (uint64_t)parse_long(o, about, flag, v);
    else if (!strcmp(flag, "--lr"))
        o->lr = parse_double(o, about, flag, v);
    else if (!strcmp(flag, "--print-every"))
        o->print_every = parse_long(o, about, flag, v);
    else if (!strcmp(flag, "--threads"))
        o->threads = (int)parse_long(o, about, flag, v);
    else if (!strcmp(flag, "--data"))
        o->data = v;
    else if (!strcmp(flag, "--params"))
        o->params = v;
    else if (!strcmp(flag, "--prompt"))
        o->prompt = v;
    else if (!strcmp(flag, "--length"))
        o->length = parse_long(o, about, flag, v);
    else if (!strcmp(flag, "--temperature"))
        o->temperature = parse_double(o, about, flag, v);
    else
        return 0;
    return 1;
}

void demo_parse_options(DemoOptions *o, int argc, char **argv,
                        const char *about)
{
    const char *slash = strrchr(argv[0], '/');
    o->program = program_name = slash ? slash + 1 : argv[0];
    for (int i = 1; i < argc; i += 2) { /* flag, value */
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_usage(stdout, o, about);
            exit(0);
        }
        if (i + 1 >= argc)
            bad_usage(o, about, argv[i], "unknown option or missing value");
        if (!apply_option(o, about, argv[i], argv[i + 1]))
            bad_usage(o, about, argv[i], "unknown option");
    }
    if (o->print_every < 1)
        o->print_every = 1;
    if (o->threads > 0)
        nnc_set_num_threads(o->threads);
}
