/* grad_fused.c — gradient rules of the fused ops (the table is in
 * grad_rules.c).
 *
 * lstm_cell is built before autodiff (passes/fuse_lstm.c), so its rule is
 * the fused backward pass: one lstm_cell_grad node that recomputes the
 * gates from z and c and gives dz and dc together.  attention_grad is
 * attention's own rule (grad_nn.c).  The ops the fusion passes build after
 * autodiff (fused, matmul_epilogue, softmax_xent) and the gradient ops
 * themselves are never differentiated: reaching one means a pass order
 * such as `--passes fuse_elementwise,autodiff`, a compiler bug rather than
 * a user error. */
#include "passes/grad.h"

/* (h', c') = lstm_cell(z, c): dz, dc = lstm_cell_grad(z, c, dh', dc'),
 * a missing result gradient being zero. */
void grad_lstm_cell(Ad *ad, GradCall *c)
{
    Type cell = gb_type(ad, c->n.in[1]);
    Value ops[4] = {c->n.in[0], c->n.in[1], c->gout[0], c->gout[1]};
    for (int i = 2; i < 4; i++)
        if (ops[i].id == 0)
            ops[i] = gb_zeros(ad, cell);
    Value outs[2];
    gb_node_results(ad, OP_LSTM_CELL_GRAD, ops, 4, NULL, 2, outs);
    c->gin[0] = outs[0];
    c->gin[1] = outs[1];
}

void grad_not_differentiable(Ad *ad, GradCall *c)
{
    (void)ad;
    ir_internal_error("autodiff",
                      "%s is built after autodiff and cannot be "
                      "differentiated; run the fusion passes after autodiff",
                      ir_op_info[c->n.op].name);
}
