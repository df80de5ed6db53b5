/* plan.h — the static memory plan of the workspace (plan.c) and its
 * verifier (plan_verify.c).  Included by layout.c and the tests; no
 * llvm-c.
 *
 * A buffer is one piece of workspace memory: the slot of a value that owns
 * memory (cg_value_owns_slot, less folded transposes), or a node's scratch
 * (a scan's carry buffers, attention's scores).  Time is a global tick
 * counter over the emitted code: forward's nodes in order, then
 * backward's; a scan node spans the ticks of its body.  A buffer is live
 * over one closed interval of ticks per emission of its graph (a body
 * emitted by two scans, or in forward and backward, has two).  Two buffers
 * may share bytes only if none of their intervals meet, or if one is the
 * other's in-place result (inplace_of). */
#ifndef NNC_PLAN_H
#define NNC_PLAN_H

#include <stdint.h>

#include "ir/ir.h"

typedef struct CgInterval {
    int32_t lo, hi; /* ticks, inclusive */
} CgInterval;

typedef struct CgBuffer {
    int graph;    /* graph id */
    int index;    /* value id, or node index for scratch */
    bool scratch; /* a node's scratch, not a value's slot */
    int64_t bytes;  /* a multiple of CG_ALIGN */
    int64_t off;    /* from the workspace start; CG_NO_SLOT: never live */
    CgInterval *iv; /* liveness, one interval per emission */
    int n_iv;
    /* The buffer this one overwrites in place (an elementwise op writing
     * its result over an operand that dies at that node), or -1.  They
     * share their bytes and are live together only at that node's tick,
     * where the operand's intervals end and the result's begin. */
    int inplace_of;
} CgBuffer;

typedef struct CgPlan {
    CgBuffer *bufs;
    int n_bufs;
    int32_t n_ticks;
    int64_t workspace; /* planned bytes: max over buffers of off + bytes */
    int64_t unplanned; /* bytes of one slot per buffer (no reuse) */
} CgPlan;

/* plan.c: liveness over the emitted node order, in-place results joined
 * to their operands, then offsets chosen greedily by size (largest first,
 * best-fitting gap among the buffers it conflicts with), every offset
 * 64-byte aligned. */
CgPlan *cg_plan_new(Arena *a, const Module *m);
/* plan.c: whether intervals of a and b meet (they may not share bytes). */
bool cg_plan_conflict(const CgBuffer *a, const CgBuffer *b);

/* plan_verify.c: every live buffer lies inside the workspace at an aligned
 * offset, and no two buffers live at the same tick overlap (except an
 * in-place result and its operand: same bytes, meeting only where the
 * operand dies and the result is born); a violation is an internal error
 * (exit 70). */
void cg_plan_verify(const CgPlan *p);

#endif
