/* lower_grad.c — lowerings of the ops only the autodiff pass builds
 * (passes/grad_rules.c): scatter_add, gather's gradient, and one_hot,
 * cross entropy's.
 *
 * Both start from a zeroed result and touch one row or element per id.
 * Their ids were read and range-checked by the forward gather or cross
 * entropy of the same step (which reports the error), so an id outside
 * the range is skipped here rather than reported twice; nothing is ever
 * written outside the result. */
#include "codegen/cg.h"

static void zero_fill(Cg *c, LLVMValueRef p, const Type *t)
{
    LLVMBuildMemSet(c->b, p, LLVMConstInt(c->i8, 0, 0),
                    cg_i64(c, ir_type_numel(t) * 4), 4);
}

/* Emits `if (0 <= id < limit)` around what follows; returns the block to
 * branch to when done (the caller ends the then-block with a branch). */
static LLVMBasicBlockRef if_in_range(Cg *c, LLVMValueRef id, int64_t limit)
{
    LLVMValueRef wide = LLVMBuildSExt(c->b, id, c->i64, "");
    LLVMValueRef ok =
        LLVMBuildICmp(c->b, LLVMIntULT, wide, cg_i64(c, limit), "");
    LLVMBasicBlockRef then = cg_block(c, "in_range"),
                      done = cg_block(c, "next");
    LLVMBuildCondBr(c->b, ok, then, done);
    LLVMPositionBuilderAtEnd(c->b, then);
    return done;
}

/* out[ids[i], :] += src[i, :] for every position i, in order. */
void cg_lower_scatter_add(Cg *c, Graph *g, const Node *n)
{
    Type out = ir_value_type(g, n->out[0]), ids = ir_value_type(g, n->in[1]);
    int64_t rows = out.dims[0], row = ir_type_numel(&out) / rows;
    LLVMValueRef sp = cg_ptr(c, g, n->in[0]), ip = cg_ptr(c, g, n->in[1]);
    LLVMValueRef op = cg_ptr(c, g, n->out[0]);
    zero_fill(c, op, &out);
    CgLoop l, k;
    LLVMValueRef i = cg_for_begin(c, &l, cg_i64(c, ir_type_numel(&ids)));
    LLVMValueRef id =
        LLVMBuildLoad2(c->b, c->i32, cg_gep(c, c->i32, ip, i), "id");
    LLVMBasicBlockRef done = if_in_range(c, id, rows);
    LLVMValueRef dst =
        cg_gep(c, c->f32, op,
               LLVMBuildNSWMul(c->b, LLVMBuildSExt(c->b, id, c->i64, ""),
                               cg_i64(c, row), ""));
    LLVMValueRef src =
        cg_gep(c, c->f32, sp, LLVMBuildNSWMul(c->b, i, cg_i64(c, row), ""));
    LLVMValueRef j = cg_for_begin(c, &k, cg_i64(c, row));
    LLVMValueRef pd = cg_gep(c, c->f32, dst, j);
    LLVMValueRef sum = LLVMBuildFAdd(
        c->b, LLVMBuildLoad2(c->b, c->f32, pd, ""),
        LLVMBuildLoad2(c->b, c->f32, cg_gep(c, c->f32, src, j), ""), "");
    LLVMBuildStore(c->b, sum, pd);
    cg_for_end(c, &k);
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
    cg_for_end(c, &l);
}

/* out[i, ids[i]] = 1 for every position i; every other element 0. */
void cg_lower_one_hot(Cg *c, Graph *g, const Node *n)
{
    Type out = ir_value_type(g, n->out[0]), ids = ir_value_type(g, n->in[0]);
    int64_t classes = out.dims[out.rank - 1];
    LLVMValueRef ip = cg_ptr(c, g, n->in[0]), op = cg_ptr(c, g, n->out[0]);
    zero_fill(c, op, &out);
    CgLoop l;
    LLVMValueRef i = cg_for_begin(c, &l, cg_i64(c, ir_type_numel(&ids)));
    LLVMValueRef id =
        LLVMBuildLoad2(c->b, c->i32, cg_gep(c, c->i32, ip, i), "id");
    LLVMBasicBlockRef done = if_in_range(c, id, classes);
    LLVMValueRef at =
        LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, i, cg_i64(c, classes), ""),
                        LLVMBuildSExt(c->b, id, c->i64, ""), "");
    LLVMBuildStore(c->b, cg_f32c(c, 1.0), cg_gep(c, c->f32, op, at));
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
    cg_for_end(c, &l);
}
