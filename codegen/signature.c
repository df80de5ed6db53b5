/* signature.c — which module inputs `NAME_forward` takes, and whether the
 * model gets the training API.
 *
 * Forward receives only the inputs its outputs depend on (a classifier's
 * labels feed the loss, not the logits), in declaration order.  This walks
 * the main graph backwards from the output results; a scan node's operands
 * cover everything its body reads, so the body graphs need no visit.  Used
 * by module.c (forward's parameters), header.c (its declaration) and the
 * driver (which arrays to pass).  The training entry points take every
 * input; they exist when the autodiff pass has added the gradients, which
 * it does for a model with `train` unless --no-train (the front end
 * refuses a loss that no trainable parameter reaches, so a training model
 * always has at least one gradient). */
#include "codegen/codegen.h"

#include <stdlib.h>
#include <string.h>

int cg_forward_inputs(const Module *m, bool *used)
{
    const Graph *g = m->graphs.data[0];
    bool *live = calloc((size_t)g->values.len + 1, sizeof *live);
    if (!live)
        ir_internal_error("codegen", "out of memory");
    for (int i = 0; i < m->inputs.len; i++)
        used[i] = false;
    for (int r = 0; r < m->n_outputs; r++)
        live[g->results.data[r].id] = true;
    int count = 0;
    for (int ni = g->nodes.len - 1; ni >= 0; ni--) {
        const Node *n = &g->nodes.data[ni];
        bool needed = false;
        for (int o = 0; o < n->n_out; o++)
            needed |= live[n->out[o].id];
        if (!needed)
            continue;
        for (int i = 0; i < n->n_in; i++)
            live[n->in[i].id] = true;
        if (n->op == OP_INPUT && !used[n->attr.index]) {
            used[n->attr.index] = true;
            count++;
        }
    }
    free(live);
    return count;
}

bool cg_has_train(const Module *m)
{
    return m->train.opt != OPT_NONE && m->n_grads > 0;
}
