/* pass.h — the map of passes/: every graph-to-graph transformation.
 *
 * Every pass has one signature, bool pass_NAME(Module *, PassCtx *),
 * returning whether it changed the module.  Passes are listed once, in
 * passes.def, in the order the pipeline runs them; the manager (manager.c)
 * runs that list with the debug handles of every compiler people trust:
 * dump before/after any pass, verify after each, stop after one, time each.
 */
#ifndef NNC_PASS_H
#define NNC_PASS_H

#include "ir/ir.h"

typedef struct PassCtx {
    Module *m;
    Arena *arena;          /* the compilation's arena */
    bool no_fuse;          /* --no-fuse: fusion passes do nothing */
    bool no_train;         /* --no-train */
} PassCtx;

typedef bool (*PassFn)(Module *m, PassCtx *ctx);

typedef enum PassId {
#define PASS(id, name, fn) PASS_##id,
#include "passes.def"
#undef PASS
    PASS_COUNT
} PassId;

#define PASS(id, name, fn) bool fn(Module *m, PassCtx *ctx);
#include "passes.def"
#undef PASS

typedef struct PassInfo {
    const char *name;
    PassFn fn;
} PassInfo;
extern const PassInfo pass_info[PASS_COUNT];
int pass_by_name(const char *name); /* -1 if unknown */

/* Debug handles, set from the command line (--dump-after etc.). */
typedef struct PassOptions {
    const char *dump_after;   /* pass name or "all"; NULL: none */
    const char *dump_before;  /* pass name or "all"; NULL: none */
    const char *stop_after;   /* pass name; NULL: run the whole pipeline */
    bool verify_each;         /* run the verifier after every pass */
    bool time_passes;         /* print a table of times to `dump` */
    FILE *dump;               /* where dumps and timings go (stderr) */
} PassOptions;

/* Runs the pipeline of passes.def in order.  A verifier failure after a
 * pass is an internal error naming that pass (exit 70). */
void pass_run_pipeline(Module *m, PassCtx *ctx, const PassOptions *opt);
/* Runs the passes ids[0..n-1] in that order instead of the pipeline
 * (--passes cse,dce), with the same debug handles. */
void pass_run_list(Module *m, PassCtx *ctx, const PassOptions *opt,
                   const int *ids, int n);

/* ---- rewrite.c: graph rewriting shared by the passes -------------------
 * Nodes and values live in arrays addressed by ids, so a pass never deletes
 * in place: it redirects uses, marks the nodes to keep, and
 * pass_compact_graph rebuilds the arrays densely, renumbering values and
 * nodes in definition order. */

/* Every use of `from` (operands and graph results) becomes `to`. */
void pass_replace_uses(Graph *g, Value from, Value to);
/* Batch form: map[v.id] (indexed by value id, g->values.len entries) is the
 * replacement of v, or IR_NONE to leave v alone. */
void pass_apply_value_map(Graph *g, const Value *map);
/* Keeps the nodes i with keep[i] (indexed by node), drops the others and
 * renumbers.  A kept node or a result using a dropped value is an internal
 * error.  Returns the number of nodes dropped. */
int32_t pass_compact_graph(Graph *g, const bool *keep);
/* Drops the graphs no scan reachable from the main graph uses, renumbering
 * Graph.id and every scan's attr.graph.  Returns the number dropped. */
int32_t pass_drop_unused_graphs(Module *m);

#endif
