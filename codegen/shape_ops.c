/* shape_ops.c — data movement: transpose, permute, slice, concat.
 *
 * Each is a strided copy (one loop nest, loops.c): the result is written
 * contiguously and the operand read with its strides permuted (transpose,
 * permute) or offset to the slice's start (slice); concat copies each part
 * into its window of the result.  A transpose whose only uses are matmul
 * operands is not materialised: matmul passes the GEMM a transpose flag
 * instead (matmul.c).  Reshape and dropout are views (lower.c). */
#include "codegen/cg.h"

static void copy_body(Cg *c, LLVMValueRef *p, void *ud)
{
    (void)ud;
    LLVMBuildStore(c->b, LLVMBuildLoad2(c->b, c->i32, p[1], ""), p[0]);
}

/* A copy over `shape`: dst and src element pointers with their strides.
 * Elements are moved as i32 bits, which serves f32 and i32 alike. */
static void strided_copy(Cg *c, const Type *shape, LLVMValueRef dst,
                         const int64_t *ds, LLVMValueRef src, const int64_t *ss)
{
    CgNest nest = {.rank = shape->rank,
                   .n_ops = 2,
                   .elem = {c->i32, c->i32},
                   .base = {dst, src}};
    for (int i = 0; i < shape->rank; i++) {
        nest.dims[i] = shape->dims[i];
        nest.strides[0][i] = ds[i];
        nest.strides[1][i] = ss[i];
    }
    cg_nest(c, &nest, copy_body, NULL);
}

static void permute_copy(Cg *c, Graph *g, const Node *n, const int32_t *perm)
{
    Type in = ir_value_type(g, n->in[0]), out = ir_value_type(g, n->out[0]);
    int64_t is[IR_MAX_RANK], os[IR_MAX_RANK], ss[IR_MAX_RANK];
    cg_strides(&in, is);
    cg_strides(&out, os);
    for (int k = 0; k < out.rank; k++)
        ss[k] = is[perm[k]];
    strided_copy(c, &out, cg_ptr(c, g, n->out[0]), os, cg_ptr(c, g, n->in[0]),
                 ss);
}

bool cg_transpose_folds(Cg *c, const Graph *g, const Node *n)
{
    Value v = n->out[0];
    for (int r = 0; r < g->results.len; r++)
        if (g->results.data[r].id == v.id)
            return false;
    for (int ni = 0; ni < g->nodes.len; ni++) {
        const Node *u = &g->nodes.data[ni];
        for (int i = 0; i < u->n_in; i++)
            if (u->in[i].id == v.id && u->op != OP_MATMUL &&
                !(u->op == OP_MATMUL_EPILOGUE && i < 2))
                return false;
    }
    return true;
}

void cg_lower_transpose(Cg *c, Graph *g, const Node *n)
{
    if (cg_transpose_folds(c, g, n))
        return;
    Type t = ir_value_type(g, n->in[0]);
    int32_t perm[IR_MAX_RANK];
    for (int i = 0; i < t.rank; i++)
        perm[i] = i;
    perm[t.rank - 2] = t.rank - 1;
    perm[t.rank - 1] = t.rank - 2;
    permute_copy(c, g, n, perm);
}

void cg_lower_permute(Cg *c, Graph *g, const Node *n)
{
    permute_copy(c, g, n, n->attr.perm);
}

void cg_lower_slice(Cg *c, Graph *g, const Node *n)
{
    Type in = ir_value_type(g, n->in[0]), out = ir_value_type(g, n->out[0]);
    int64_t is[IR_MAX_RANK], os[IR_MAX_RANK], start = 0;
    cg_strides(&in, is);
    cg_strides(&out, os);
    for (int i = 0; i < in.rank; i++)
        start += n->attr.start[i] * is[i];
    LLVMValueRef src = cg_gep_const(c, c->i32, cg_ptr(c, g, n->in[0]), start);
    strided_copy(c, &out, cg_ptr(c, g, n->out[0]), os, src, is);
}

void cg_lower_concat(Cg *c, Graph *g, const Node *n)
{
    Type out = ir_value_type(g, n->out[0]);
    int axis = n->attr.axis;
    int64_t os[IR_MAX_RANK], at = 0;
    cg_strides(&out, os);
    for (int j = 0; j < n->n_in; j++) {
        Type in = ir_value_type(g, n->in[j]);
        int64_t is[IR_MAX_RANK];
        cg_strides(&in, is);
        LLVMValueRef dst =
            cg_gep_const(c, c->i32, cg_ptr(c, g, n->out[0]), at * os[axis]);
        strided_copy(c, &in, dst, os, cg_ptr(c, g, n->in[j]), is);
        at += in.dims[axis];
    }
}
