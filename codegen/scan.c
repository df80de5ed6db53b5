/* scan.c — scan as a loop in the generated code.
 *
 * The body graph is emitted once, inside a loop over t = 0..T-1, so code
 * size does not depend on T (nor on the number of stacked layers a scan
 * walks over).  Each carry has two buffers in the node's scratch, A and B:
 * step t reads the carry from A when t is even (B when odd) and writes the
 * new carry to the other one, so a step never overwrites what it reads.
 * The initial carries are copied into A first; the final carries are
 * views of whichever buffer the last step wrote (B when T is odd, else A),
 * known at compile time.  The body's arguments are pointed at the carry
 * buffer being read, at slice s = t (T-1-t when reverse) of each `over`
 * tensor, and at the captured outer values.  Per-step output k of the step
 * that read slice s goes to position s of the stacked result, so the
 * stack is in time order even when the scan runs backwards: the body
 * writes it there directly when the value is computed into a slot of its
 * own (most outputs: saved activations, slices' gradients), else it is
 * copied there after the step (an argument returned as is, a value also
 * returned as a carry). */
#include "codegen/cg.h"

static int64_t align_up(int64_t n)
{
    return (n + CG_ALIGN - 1) / CG_ALIGN * CG_ALIGN;
}

typedef struct ScanBufs {
    LLVMValueRef a[64], b[64];
    int64_t bytes[64];
} ScanBufs;

static void carry_buffers(Cg *c, Graph *g, const Node *n, ScanBufs *sb)
{
    LLVMValueRef base = cg_scratch(c, g, n);
    int64_t off = 0;
    for (int i = 0; i < n->attr.n_carry; i++) {
        Type t = ir_value_type(g, n->in[i]);
        sb->bytes[i] = ir_type_numel(&t) * 4;
        sb->a[i] = cg_gep_const(c, c->i8, base, off);
        sb->b[i] = cg_gep_const(c, c->i8, base, off + align_up(sb->bytes[i]));
        off += 2 * align_up(sb->bytes[i]);
        cg_memcpy(c, sb->a[i], cg_ptr(c, g, n->in[i]), sb->bytes[i]);
    }
}

static void point_args(Cg *c, Graph *g, const Node *n, Graph *body,
                       const ScanBufs *sb, LLVMValueRef odd, LLVMValueRef s)
{
    int nc = n->attr.n_carry, no = n->attr.n_over;
    for (int ni = 0; ni < body->nodes.len; ni++) {
        const Node *arg = &body->nodes.data[ni];
        if (arg->op != OP_ARG)
            continue;
        int k = arg->attr.index;
        LLVMValueRef p;
        if (k < nc) {
            p = LLVMBuildSelect(c->b, odd, sb->b[k], sb->a[k], "carry");
        } else if (k < nc + no) {
            Type t = ir_value_type(g, n->in[k]);
            int64_t slice = ir_type_numel(&t) / t.dims[0];
            p = cg_gep(c, c->f32, cg_ptr(c, g, n->in[k]),
                       LLVMBuildNSWMul(c->b, s, cg_i64(c, slice), ""));
        } else {
            p = cg_ptr(c, g, n->in[k]);
        }
        cg_set_ptr(c, body, arg->out[0], p);
    }
}

/* Per-step output k's place at step s in its stacked result. */
static LLVMValueRef stack_slot(Cg *c, Graph *g, const Node *n, Graph *body,
                               int k, LLVMValueRef s)
{
    Type step = ir_value_type(body, body->results.data[k]);
    LLVMValueRef at = LLVMBuildNSWMul(c->b, s, cg_i64(c, ir_type_numel(&step)), "");
    return cg_gep(c, c->f32, cg_ptr(c, g, n->out[k]), at);
}

/* Whether per-step output k can be written straight into its stack: a
 * value the body computes into a slot of its own (not an argument, not a
 * view) that no other result returns. */
static bool writes_in_stack(const Cg *c, const Node *n, const Graph *body,
                            int k)
{
    Value v = body->results.data[k];
    if (c->lay->value_off[body->id][v.id] == CG_NO_SLOT)
        return false;
    for (int r = 0; r < body->results.len; r++)
        if (r != k && body->results.data[r].id == v.id)
            return false;
    return k >= n->attr.n_carry;
}

/* The redirect table for one step (NULL entries: the value's own slot). */
static LLVMValueRef *direct_outputs(Cg *c, Graph *g, const Node *n,
                                    Graph *body, LLVMValueRef s, bool *direct)
{
    LLVMValueRef *to =
        arena_alloc(c->arena, sizeof *to * (size_t)(body->values.len + 1));
    for (int k = n->attr.n_carry; k < n->n_out; k++) {
        direct[k] = writes_in_stack(c, n, body, k);
        if (direct[k])
            to[body->results.data[k].id] = stack_slot(c, g, n, body, k, s);
    }
    return to;
}

static void store_step(Cg *c, Graph *g, const Node *n, Graph *body,
                       const ScanBufs *sb, LLVMValueRef odd, LLVMValueRef s,
                       const bool *direct)
{
    int nc = n->attr.n_carry;
    for (int i = 0; i < nc; i++) {
        LLVMValueRef next =
            LLVMBuildSelect(c->b, odd, sb->a[i], sb->b[i], "next");
        cg_memcpy(c, next, cg_ptr(c, body, body->results.data[i]),
                  sb->bytes[i]);
    }
    for (int k = nc; k < n->n_out; k++) {
        if (direct[k])
            continue;
        Type step = ir_value_type(body, body->results.data[k]);
        cg_memcpy(c, stack_slot(c, g, n, body, k, s),
                  cg_ptr(c, body, body->results.data[k]),
                  ir_type_numel(&step) * 4);
    }
}

void cg_lower_scan(Cg *c, Graph *g, const Node *n)
{
    Graph *body = c->m->graphs.data[n->attr.graph];
    int nc = n->attr.n_carry;
    if (nc > 64)
        ir_internal_error("codegen", "scan with %d carries", nc);
    Type over = ir_value_type(g, n->in[nc]);
    int64_t steps = over.dims[0];
    ScanBufs sb;
    carry_buffers(c, g, n, &sb);
    CgLoop l;
    LLVMValueRef t = cg_for_begin(c, &l, cg_i64(c, steps));
    LLVMValueRef odd = LLVMBuildTrunc(c->b, t, c->i1, "odd");
    LLVMValueRef s =
        n->attr.flag ? LLVMBuildNSWSub(c->b, cg_i64(c, steps - 1), t, "s") : t;
    point_args(c, g, n, body, &sb, odd, s);
    bool *direct = arena_alloc(c->arena, sizeof(bool) * (size_t)(n->n_out + 1));
    const LLVMValueRef *saved = c->redirect;
    int32_t saved_graph = c->redirect_graph;
    c->redirect = direct_outputs(c, g, n, body, s, direct);
    c->redirect_graph = body->id;
    cg_emit_graph(c, body);
    c->redirect = saved;
    c->redirect_graph = saved_graph;
    store_step(c, g, n, body, &sb, odd, s, direct);
    cg_for_end(c, &l);
    for (int i = 0; i < nc; i++)
        cg_set_ptr(c, g, n->out[i], steps % 2 ? sb.b[i] : sb.a[i]);
}
