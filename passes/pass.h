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

/* ---- rewrite.c: what the fusion passes share ---------------------------- */

/* is_body[id] (m->graphs.len entries, in the arena): graph id is the body
 * of a fused or matmul_epilogue node.  Fusion passes leave such graphs
 * alone; they rewrite the main graph and scan bodies. */
bool *pass_fusion_bodies(const Module *m);
/* The loop every fusion pass shares: unless ctx->no_fuse, runs fuse on
 * the main graph and every scan body (never on fused bodies, nor on the
 * graphs fuse itself adds), then DCE if anything changed.  Returns
 * whether anything did. */
typedef bool (*PassGraphFn)(Module *m, Graph *g);
bool pass_fuse_graphs(Module *m, PassCtx *ctx, PassGraphFn fuse);
/* After a pass appended new nodes n_old.. with ir_add_typed: places them
 * (pass_place_new_nodes, after[]) and redirects every use of from[i] to
 * to[i]. */
void pass_place_and_redirect(Graph *g, int32_t n_old, const int32_t *after,
                             const Value *from, const Value *to, int32_t n);

/* How many scan nodes of the module run body graph `body`. */
int32_t pass_scans_running(const Module *m, int32_t body);

/* How many operands of g's nodes, and results of g, read each value
 * (g->values.len entries, in the arena). */
int32_t *pass_use_counts(const Graph *g);
/* Moves the nodes first.. (the ones a pass has just appended with ir_add or
 * ir_add_typed) to index pos <= first, shifting nodes pos..first-1 after
 * them and updating every moved value's ValueInfo.def, so that new nodes
 * can be defined before the node that will use them. */
void pass_move_nodes_before(Graph *g, int32_t first, int32_t pos);

/* ---- rewrite.c: building fused nodes ------------------------------------ */

/* "BASE.N" with the smallest N >= 0 that no graph of m is named yet. */
const char *pass_unique_graph_name(Module *m, const char *base);

/* Who reads each value: node[start[v] .. start[v + 1]) are the indices of
 * the nodes reading value v, ascending (a node reading v twice is listed
 * twice); graph results are not listed (pass_use_counts counts them). */
typedef struct PassUsers {
    int32_t *start; /* g->values.len + 1 entries */
    int32_t *node;
} PassUsers;
PassUsers pass_users(const Graph *g);

/* A new body graph "BASE.N" computing the nodes members[0..n_members) of
 * g (ascending indices): ARG i stands for args[i], each member is cloned
 * with its op, attributes and types, every other operand must be a CONST
 * of g and is copied in, and the body returns results[] (values of args
 * or members).  body->n_args is set. */
Graph *pass_build_body(Module *m, Graph *g, const char *base,
                       const Value *args, int n_args, const int32_t *members,
                       int n_members, const Value *results, int n_results);

/* The nodes n_old.. of g were appended by ir_add_typed; moves each new
 * node j to just after old node after[j - n_old] (new nodes with the same
 * anchor keep their order) and updates ValueInfo.def.  Value ids do not
 * change.  The caller makes sure operands stay defined before use. */
void pass_place_new_nodes(Graph *g, int32_t n_old, const int32_t *after);

#endif
