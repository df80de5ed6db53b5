/* manager.c — runs passes with the debug handles every pass shares.
 *
 * The pipeline is passes.def in order; --passes a,b,c runs a chosen list
 * instead (pass_run_list).  Around each pass the manager can dump the IR
 * before and after it (--dump-before, --dump-after: a pass name or "all"),
 * verify the module after it (--verify-each: a failure is an internal
 * error naming the pass, exit 70), stop after it (--stop-after) and time
 * it (--time-passes: a table of wall-clock times at the end).  Dumps and
 * the table go to PassOptions.dump, stderr from the driver.  A miscompile
 * is then bisected by pass without a debugger. */
#include "passes/pass.h"

#include <string.h>
#include <time.h>

const PassInfo pass_info[PASS_COUNT] = {
#define PASS(id, name, fn) [PASS_##id] = {name, fn},
#include "passes.def"
#undef PASS
};

int pass_by_name(const char *name)
{
    for (int i = 0; i < PASS_COUNT; i++)
        if (strcmp(pass_info[i].name, name) == 0)
            return i;
    return -1;
}

/* `which` is a pass name, "all" or NULL (never). */
static bool pass_selected(const char *which, const char *name)
{
    return which && (strcmp(which, "all") == 0 || strcmp(which, name) == 0);
}

static void dump_module(const PassOptions *opt, const char *when,
                        const char *name, const Module *m)
{
    fprintf(opt->dump, "; *** IR %s %s ***\n", when, name);
    ir_print_module(opt->dump, m);
    fflush(opt->dump);
}

static void verify_after(const Module *m, const char *name)
{
    char err[512];
    if (!ir_verify_module(m, err, sizeof err))
        ir_internal_error(arena_printf(m->arena, "verify after %s", name), "%s",
                          err);
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void print_times(FILE *f, const int *ids, const double *secs, int n)
{
    double total = 0;
    for (int i = 0; i < n; i++)
        total += secs[i];
    fprintf(f, "===== nnc pass timing =====\n");
    fprintf(f, "  %-24s %12s %8s\n", "pass", "time (ms)", "share");
    for (int i = 0; i < n; i++)
        fprintf(f, "  %-24s %12.3f %7.1f%%\n", pass_info[ids[i]].name,
                secs[i] * 1e3, total > 0 ? 100.0 * secs[i] / total : 0.0);
    fprintf(f, "  %-24s %12.3f %7.1f%%\n", "total", total * 1e3, 100.0);
    fflush(f);
}

/* Runs one pass with its dumps and verification; returns its wall time. */
static double run_one(Module *m, PassCtx *ctx, const PassOptions *opt, int id)
{
    const char *name = pass_info[id].name;
    if (pass_selected(opt->dump_before, name))
        dump_module(opt, "before", name, m);
    double start = seconds_now();
    pass_info[id].fn(m, ctx);
    double secs = seconds_now() - start;
    if (opt->verify_each)
        verify_after(m, name);
    if (pass_selected(opt->dump_after, name))
        dump_module(opt, "after", name, m);
    return secs;
}

void pass_run_list(Module *m, PassCtx *ctx, const PassOptions *opt,
                   const int *ids, int n)
{
    PassOptions o = *opt;
    if (!o.dump)
        o.dump = stderr;
    double *secs = arena_alloc(m->arena, sizeof *secs * (size_t)(n + 1));
    int ran = 0;
    while (ran < n) {
        int id = ids[ran];
        if (id < 0 || id >= PASS_COUNT)
            ir_internal_error("pass manager", "pass id %d out of range", id);
        secs[ran++] = run_one(m, ctx, &o, id);
        if (o.stop_after && strcmp(o.stop_after, pass_info[id].name) == 0)
            break;
    }
    if (o.time_passes)
        print_times(o.dump, ids, secs, ran);
}

void pass_run_pipeline(Module *m, PassCtx *ctx, const PassOptions *opt)
{
    int ids[PASS_COUNT];
    for (int i = 0; i < PASS_COUNT; i++)
        ids[i] = i;
    pass_run_list(m, ctx, opt, ids, PASS_COUNT);
}
