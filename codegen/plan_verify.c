/* plan_verify.c — checks a memory plan (plan.c) independently of how it
 * was made: every buffer that is live at some tick lies inside the
 * workspace at a 64-byte-aligned offset, its intervals are well formed,
 * and no two buffers live at the same tick share a byte, except a result
 * written in place over its operand at the one tick where the operand
 * dies and the result is born.  layout.c runs it
 * after planning in debug builds; the tests run it on every conformance
 * model and on hand-built plans.  A violation is an internal error. */
#include "codegen/plan.h"

#include "codegen/cg.h"

static const char *buffer_kind(const CgBuffer *b)
{
    return b->scratch ? "scratch of node" : "value %";
}

static void check_bounds(const CgPlan *p, const CgBuffer *b)
{
    if (b->inplace_of < -1 || b->inplace_of >= p->n_bufs)
        ir_internal_error("plan", "graph %d: %s%d: bad in-place operand %d",
                          b->graph, buffer_kind(b), b->index, b->inplace_of);
    if (b->off == CG_NO_SLOT)
        ir_internal_error("plan", "graph %d: live %s%d has no offset",
                          b->graph, buffer_kind(b), b->index);
    if (b->off < 0 || b->off % CG_ALIGN != 0 || b->bytes < 0 ||
        b->off + b->bytes > p->workspace)
        ir_internal_error("plan",
                          "graph %d: %s%d at [%lld, %lld) is outside the "
                          "%lld-byte workspace or not aligned",
                          b->graph, buffer_kind(b), b->index, (long long)b->off,
                          (long long)(b->off + b->bytes),
                          (long long)p->workspace);
    for (int i = 0; i < b->n_iv; i++)
        if (b->iv[i].lo > b->iv[i].hi || b->iv[i].lo < 0 ||
            b->iv[i].hi >= p->n_ticks)
            ir_internal_error("plan", "graph %d: %s%d: bad interval [%d, %d]",
                              b->graph, buffer_kind(b), b->index, b->iv[i].lo,
                              b->iv[i].hi);
}

static bool bytes_overlap(const CgBuffer *a, const CgBuffer *b)
{
    return a->off < b->off + b->bytes && b->off < a->off + a->bytes;
}

/* Whether a and b are live at a common tick (recomputed here rather than
 * taken from the planner, which this file checks). */
static bool live_together(const CgBuffer *a, const CgBuffer *b)
{
    for (int i = 0; i < a->n_iv; i++)
        for (int j = 0; j < b->n_iv; j++)
            if (a->iv[i].lo <= b->iv[j].hi && b->iv[j].lo <= a->iv[i].hi)
                return true;
    return false;
}

/* An in-place result and its operand: the same bytes, and wherever they
 * are both live it is one tick, the operand's last and the result's
 * first. */
static bool in_place_pair(const CgPlan *p, const CgBuffer *a,
                          const CgBuffer *b)
{
    if (b->inplace_of >= 0 && &p->bufs[b->inplace_of] == a) {
        const CgBuffer *t = a;
        a = b;
        b = t;
    }
    if (a->inplace_of < 0 || &p->bufs[a->inplace_of] != b ||
        a->off != b->off || a->bytes != b->bytes)
        return false;
    for (int i = 0; i < a->n_iv; i++)
        for (int j = 0; j < b->n_iv; j++)
            if (a->iv[i].lo <= b->iv[j].hi && b->iv[j].lo <= a->iv[i].hi &&
                b->iv[j].hi != a->iv[i].lo)
                return false;
    return true;
}

void cg_plan_verify(const CgPlan *p)
{
    for (int i = 0; i < p->n_bufs; i++)
        if (p->bufs[i].n_iv > 0)
            check_bounds(p, &p->bufs[i]);
    for (int i = 0; i < p->n_bufs; i++) {
        const CgBuffer *a = &p->bufs[i];
        for (int j = i + 1; j < p->n_bufs && a->n_iv > 0; j++) {
            const CgBuffer *b = &p->bufs[j];
            if (b->n_iv == 0 || b->bytes == 0 || a->bytes == 0 ||
                !bytes_overlap(a, b) || !live_together(a, b) ||
                in_place_pair(p, a, b))
                continue;
            ir_internal_error(
                "plan",
                "graph %d: %s%d [%lld, %lld) and graph %d: %s%d [%lld, %lld) "
                "overlap while both are live",
                a->graph, buffer_kind(a), a->index, (long long)a->off,
                (long long)(a->off + a->bytes), b->graph, buffer_kind(b),
                b->index, (long long)b->off, (long long)(b->off + b->bytes));
        }
    }
}
