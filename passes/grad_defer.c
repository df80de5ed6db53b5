/* grad_defer.c — a captured weight's gradient as one product after the
 * backward scan instead of a sum carried through it.
 *
 * A weight the step reads as `h @ W` gets, at every step of the backward
 * scan, the contribution h_t^T @ dz_t, added into a carried running sum:
 * one GEMM per step whose inner dimension is the batch (32 for the
 * conformance RNN and LSTM), the least efficient shape a GEMM has, plus a
 * read and write of the whole sum.  The sum over the steps is one product
 * of the stacked factors, H^T @ DZ with H [T*B, h] and DZ [T*B, n], a GEMM
 * whose inner dimension is T*B.  So when a capture's per-step gradient is
 * exactly matmul(transpose(x), y) of two rank-2 values, the backward body
 * returns x and y as per-step outputs (stacked in time order) instead of
 * carrying the sum, and grad_scan.c builds that one product after the
 * scan.  The sum's terms are then added in another order: the result
 * differs from the carried sum by rounding only. */
#include "passes/grad.h"

bool grad_outer_product(Graph *bb, Value g, Value *x, Value *y)
{
    if (!g.id)
        return false;
    const Node *mm = ir_def(bb, g);
    if (mm->op != OP_MATMUL)
        return false;
    const Node *t = ir_def(bb, mm->in[0]);
    if (t->op != OP_TRANSPOSE)
        return false;
    Type tx = ir_value_type(bb, t->in[0]), ty = ir_value_type(bb, mm->in[1]);
    if (tx.rank != 2 || ty.rank != 2 || tx.dims[0] != ty.dims[0] ||
        tx.dtype != DT_F32 || ty.dtype != DT_F32)
        return false;
    *x = t->in[0];
    *y = mm->in[1];
    return true;
}

void grad_drop_arg(Graph *bb, Value arg)
{
    Node *a = ir_def(bb, arg);
    int32_t index = a->attr.index;
    Type t = ir_value_type(bb, arg);
    a->op = OP_CONST;
    a->attr = (Attrs){.type = t};
    for (int32_t k = 0; k < bb->nodes.len; k++) {
        Node *n = &bb->nodes.data[k];
        if (n->op == OP_ARG && n->attr.index > index)
            n->attr.index--;
    }
    bb->n_args--;
}

Value grad_stacked_product(Ad *ad, Value xs, Value ys)
{
    Type tx = gb_type(ad, xs), ty = gb_type(ad, ys);
    int64_t rows = tx.dims[0] * tx.dims[1];
    Type fx = ir_type_make(DT_F32, 2, (int64_t[]){rows, tx.dims[2]});
    Type fy = ir_type_make(DT_F32, 2, (int64_t[]){rows, ty.dims[2]});
    return gb_matmul(ad, gb_transpose(ad, gb_reshape(ad, xs, fx)),
                     gb_reshape(ad, ys, fy));
}
