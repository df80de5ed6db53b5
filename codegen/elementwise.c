/* elementwise.c — elementwise ops: unary math, binary arithmetic and
 * comparisons with PyTorch broadcasting, where, const, broadcast_to.
 *
 * Each is one strided loop nest (loops.c) over the result's shape, the
 * operands read through broadcast strides (0 on broadcast axes).  After
 * the nest merges contiguous axes, `a + b` of equal shapes and `x * 2` are
 * one flat loop, `[B, H] + [H]` two loops with a contiguous inner one.  An
 * operand defined by `const` is used as an immediate instead of a load. */
#include "codegen/cg.h"

typedef struct Operand {
    bool is_imm;
    LLVMValueRef imm;
    LLVMTypeRef type;
} Operand;

typedef struct EwBody {
    Op op;
    double p;      /* pow exponent */
    DType dt;      /* operand dtype of binary ops */
    Operand in[3]; /* operands, nest operands 1.. */
} EwBody;

static LLVMValueRef operand_value(Cg *c, const Operand *o, LLVMValueRef ptr)
{
    return o->is_imm ? o->imm : LLVMBuildLoad2(c->b, o->type, ptr, "");
}

/* Sets up nest operand k (>= 1) reading value v of g as the shape `out`. */
static void add_operand(Cg *c, const Graph *g, Value v, const Type *out,
                        CgNest *nest, Operand *o)
{
    Type t = ir_value_type(g, v);
    int k = nest->n_ops++;
    double imm;
    o->type = cg_elem_type(c, t.dtype);
    o->is_imm = cg_is_const(g, v, &imm);
    if (o->is_imm)
        o->imm = t.dtype == DT_I32 ? cg_i32c(c, (int32_t)imm) : cg_f32c(c, imm);
    nest->elem[k] = o->type;
    nest->base[k] = cg_ptr(c, g, v);
    if (o->is_imm)
        for (int i = 0; i < out->rank; i++)
            nest->strides[k][i] = 0;
    else
        cg_bcast_strides(&t, out, nest->strides[k]);
}

static CgNest result_nest(Cg *c, const Graph *g, Value out)
{
    Type t = ir_value_type(g, out);
    CgNest nest = {.rank = t.rank, .n_ops = 1};
    for (int i = 0; i < t.rank; i++)
        nest.dims[i] = t.dims[i];
    nest.elem[0] = cg_elem_type(c, t.dtype);
    nest.base[0] = cg_ptr(c, g, out);
    cg_strides(&t, nest.strides[0]);
    return nest;
}

static void unary_body(Cg *c, LLVMValueRef *p, void *ud)
{
    EwBody *e = ud;
    LLVMValueRef x = operand_value(c, &e->in[0], p[1]);
    LLVMBuildStore(c->b, cg_scalar_unary(c, e->op, e->p, x), p[0]);
}

static void binary_body(Cg *c, LLVMValueRef *p, void *ud)
{
    EwBody *e = ud;
    LLVMValueRef a = operand_value(c, &e->in[0], p[1]);
    LLVMValueRef b = operand_value(c, &e->in[1], p[2]);
    LLVMBuildStore(c->b, cg_scalar_binary(c, e->op, e->dt, a, b), p[0]);
}

static void where_body(Cg *c, LLVMValueRef *p, void *ud)
{
    EwBody *e = ud;
    LLVMValueRef cond = operand_value(c, &e->in[0], p[1]);
    LLVMValueRef a = operand_value(c, &e->in[1], p[2]);
    LLVMValueRef b = operand_value(c, &e->in[2], p[3]);
    LLVMBuildStore(c->b, cg_scalar_where(c, e->dt, cond, a, b), p[0]);
}

LLVMValueRef cg_scalar_where(Cg *c, DType dt, LLVMValueRef cond, LLVMValueRef a,
                             LLVMValueRef b)
{
    LLVMValueRef nz =
        dt == DT_I32
            ? LLVMBuildICmp(c->b, LLVMIntNE, cond, cg_i32c(c, 0), "")
            : LLVMBuildFCmp(c->b, LLVMRealUNE, cond, cg_f32c(c, 0.0), "");
    return LLVMBuildSelect(c->b, nz, a, b, "");
}

/* The fused lowerings (fused.c) evaluate a body node by node through
 * this, so a fused chain computes exactly what the unfused ops would. */
LLVMValueRef cg_scalar_node(Cg *c, const Graph *g, const Node *n,
                            LLVMValueRef *in)
{
    DType dt = ir_value_type(g, n->in[0]).dtype;
    unsigned f = ir_op_info[n->op].flags;
    if (f & OPF_UNARY)
        return cg_scalar_unary(c, n->op, n->attr.value, in[0]);
    if (f & OPF_BINARY)
        return cg_scalar_binary(c, n->op, dt, in[0], in[1]);
    if (n->op == OP_WHERE)
        return cg_scalar_where(c, dt, in[0], in[1], in[2]);
    ir_internal_error("codegen", "%s is not an elementwise op",
                      ir_op_info[n->op].name);
}

static void copy_body(Cg *c, LLVMValueRef *p, void *ud)
{
    EwBody *e = ud;
    LLVMBuildStore(c->b, operand_value(c, &e->in[0], p[1]), p[0]);
}

static void run_elementwise(Cg *c, const Graph *g, const Node *n,
                            CgNestBody body)
{
    Type t = ir_value_type(g, n->out[0]);
    CgNest nest = result_nest(c, g, n->out[0]);
    EwBody e = {.op = n->op,
                .p = n->attr.value,
                .dt = ir_value_type(g, n->in[0]).dtype};
    for (int i = 0; i < n->n_in; i++)
        add_operand(c, g, n->in[i], &t, &nest, &e.in[i]);
    cg_nest(c, &nest, body, &e);
}

void cg_lower_unary(Cg *c, Graph *g, const Node *n)
{
    run_elementwise(c, g, n, unary_body);
}
void cg_lower_binary(Cg *c, Graph *g, const Node *n)
{
    run_elementwise(c, g, n, binary_body);
}
void cg_lower_where(Cg *c, Graph *g, const Node *n)
{
    run_elementwise(c, g, n, where_body);
}
void cg_lower_broadcast_to(Cg *c, Graph *g, const Node *n)
{
    run_elementwise(c, g, n, copy_body);
}

/* The slot is filled on every call: a constant costs one pass over its
 * elements, and consumers that are elementwise read it as an immediate. */
void cg_lower_const(Cg *c, Graph *g, const Node *n)
{
    CgNest nest = result_nest(c, g, n->out[0]);
    Type t = ir_value_type(g, n->out[0]);
    EwBody e = {.in[0] = {.is_imm = true,
                          .imm = t.dtype == DT_I32
                                     ? cg_i32c(c, (int32_t)n->attr.value)
                                     : cg_f32c(c, n->attr.value)}};
    nest.n_ops = 2;
    nest.elem[1] = nest.elem[0];
    nest.base[1] = nest.base[0];
    cg_nest(c, &nest, copy_body, &e);
}
