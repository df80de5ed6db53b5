/* train.c — the training API of a model with `train` (cg_has_train).
 *
 * After the autodiff pass the main graph returns the outputs, the loss and
 * one gradient per trainable parameter (ir.h).  This file emits:
 *
 *   NAME_backward_run   internal: the main graph live from the loss and the
 *                       gradients (c->training: dropout active), then a
 *                       copy of each gradient into its buffer; 0 or the
 *                       nnc_status of a data error (bad id or target)
 *   NAME_backward       run; the loss, or NaN after a data error
 *   NAME_train_step     run, then NAME_update (optim.c) unless it failed
 *   NAME_update         optim.c
 *   NAME_set_lr, NAME_grad, NAME_save_checkpoint, NAME_load_checkpoint
 *   NAME_backward_argv, NAME_train_step_argv   (JIT only, codegen.h)
 *
 * The graph is emitted into an i32 function because a data error returns
 * its status from wherever the check sits (cg_error_if); the float-valued
 * entry points wrap it, and LLVM inlines it into both.  Gradients are
 * copied only after the whole graph ran, so a failed backward leaves the
 * gradient buffers (and the parameters, which it never writes) as they
 * were; a successful one overwrites them.
 *
 * Dropout in training: the node's slot receives nnc_dropout_mask(seed,
 * site = attr.index, step) — 0 or 1/(1-p) per element, keyed by NAME_init's
 * seed and the number of optimizer steps taken so far — and is then
 * multiplied by the operand in place.  A backward dropout node with the
 * same site draws the same mask, which is its derivative.  Inside a scan
 * body every iteration of a step uses the same mask (there is no
 * iteration in the key).  Forward keeps dropout the identity. */
#include "codegen/cg.h"

#include <math.h>
#include <string.h>

#include "runtime/nnc.h"

void cg_lower_dropout(Cg *c, Graph *g, const Node *n)
{
    LLVMValueRef x = cg_ptr(c, g, n->in[0]);
    if (!c->training) {
        cg_set_ptr(c, g, n->out[0], x);
        return;
    }
    Type t = ir_value_type(g, n->out[0]);
    int64_t numel = ir_type_numel(&t);
    LLVMValueRef y = cg_ptr(c, g, n->out[0]);
    LLVMValueRef args[] = {
        y,
        cg_i64(c, numel),
        cg_f32c(c, n->attr.value),
        LLVMBuildLoad2(c->b, c->i64, cg_inst_ptr(c, c->lay->seed_off), "seed"),
        cg_i64(c, n->attr.index),
        LLVMBuildLoad2(c->b, c->i64, cg_inst_ptr(c, c->lay->step_off), "step")};
    cg_rt_call(c, CG_RT_DROPOUT_MASK, args, 6);
    CgLoop l;
    LLVMValueRef i = cg_for_begin(c, &l, cg_i64(c, numel));
    LLVMValueRef yp = cg_gep(c, c->f32, y, i);
    LLVMValueRef xv = LLVMBuildLoad2(c->b, c->f32, cg_gep(c, c->f32, x, i), "");
    LLVMValueRef mv = LLVMBuildLoad2(c->b, c->f32, yp, "");
    LLVMBuildStore(c->b, LLVMBuildFMul(c->b, mv, xv, ""), yp);
    cg_for_end(c, &l);
}

/* Pointer-typed parameter list: the instance, every input, `extra` more. */
static LLVMTypeRef *ptr_params(Cg *c, int extra, unsigned *n)
{
    *n = (unsigned)(1 + c->m->inputs.len + extra);
    LLVMTypeRef *pt = arena_alloc(c->arena, sizeof(LLVMTypeRef) * (*n + 1));
    for (unsigned i = 0; i < *n; i++)
        pt[i] = c->ptr;
    return pt;
}

static void clear_values(Cg *c)
{
    for (int gi = 0; gi < c->m->graphs.len; gi++)
        memset(c->vals[gi], 0,
               sizeof(LLVMValueRef) *
                   (size_t)c->m->graphs.data[gi]->values.len);
}

static void copy_grads(Cg *c, Graph *g)
{
    const Module *m = c->m;
    int r = m->n_outputs + 1;
    for (int i = 0; i < m->params.len; i++) {
        if (m->params.data[i].frozen)
            continue;
        cg_memcpy(c, cg_inst_ptr(c, c->lay->grad_off[i]),
                  cg_ptr(c, g, g->results.data[r++]),
                  ir_type_numel(&m->params.data[i].type) * 4);
    }
}

/* i32 NAME_backward_run(NAME *m, inputs..., float *loss) */
static LLVMValueRef emit_backward_run(Cg *c)
{
    const Module *m = c->m;
    Graph *g = m->graphs.data[0];
    unsigned n;
    LLVMTypeRef *pt = ptr_params(c, 1, &n);
    LLVMValueRef fn = cg_begin_function(c, "backward_run", c->i32, pt, n);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    c->inst = LLVMGetParam(fn, 0);
    c->inputs = arena_alloc(c->arena,
                            sizeof(LLVMValueRef) * (size_t)(m->inputs.len + 1));
    for (int i = 0; i < m->inputs.len; i++)
        c->inputs[i] = LLVMGetParam(fn, (unsigned)(1 + i));
    clear_values(c);
    c->training = true;
    cg_emit_graph(c, g);
    c->training = false;
    copy_grads(c, g);
    LLVMValueRef loss = LLVMBuildLoad2(
        c->b, c->f32, cg_ptr(c, g, g->results.data[m->n_outputs]), "loss");
    LLVMBuildStore(c->b, loss, LLVMGetParam(fn, n - 1));
    LLVMBuildRet(c->b, cg_i32c(c, 0));
    return fn;
}

/* Calls run with this function's arguments and a loss slot preset to NaN;
 * returns the slot.  *ok is the i1 "run returned 0". */
static LLVMValueRef call_run(Cg *c, LLVMValueRef run, LLVMValueRef *ok)
{
    unsigned n = (unsigned)(2 + c->m->inputs.len);
    LLVMValueRef *args = arena_alloc(c->arena, sizeof(LLVMValueRef) * n);
    LLVMValueRef slot = cg_entry_alloca(c, c->f32, "loss");
    LLVMBuildStore(c->b, cg_f32c(c, NAN), slot);
    for (unsigned i = 0; i + 1 < n; i++)
        args[i] = LLVMGetParam(c->fn, i);
    args[n - 1] = slot;
    LLVMValueRef st = LLVMBuildCall2(c->b, LLVMGlobalGetValueType(run), run,
                                     args, n, "status");
    *ok = LLVMBuildICmp(c->b, LLVMIntEQ, st, cg_i32c(c, 0), "ok");
    return slot;
}

static LLVMValueRef emit_backward(Cg *c, LLVMValueRef run)
{
    unsigned n;
    LLVMTypeRef *pt = ptr_params(c, 0, &n);
    LLVMValueRef fn = cg_begin_function(c, "backward", c->f32, pt, n), ok;
    LLVMValueRef slot = call_run(c, run, &ok);
    LLVMBuildRet(c->b, LLVMBuildLoad2(c->b, c->f32, slot, ""));
    return fn;
}

static LLVMValueRef emit_train_step(Cg *c, LLVMValueRef run,
                                    LLVMValueRef update)
{
    unsigned n;
    LLVMTypeRef *pt = ptr_params(c, 0, &n);
    LLVMValueRef fn = cg_begin_function(c, "train_step", c->f32, pt, n), ok;
    LLVMValueRef slot = call_run(c, run, &ok);
    LLVMBasicBlockRef upd = cg_block(c, "update"), done = cg_block(c, "done");
    LLVMBuildCondBr(c->b, ok, upd, done);
    LLVMPositionBuilderAtEnd(c->b, upd);
    LLVMValueRef inst = LLVMGetParam(fn, 0);
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(update), update, &inst, 1, "");
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
    LLVMBuildRet(c->b, LLVMBuildLoad2(c->b, c->f32, slot, ""));
    return fn;
}

static void emit_set_lr(Cg *c)
{
    LLVMTypeRef pt[] = {c->ptr, c->f32};
    cg_begin_function(c, "set_lr", c->void_t, pt, 2);
    c->inst = LLVMGetParam(c->fn, 0);
    LLVMBuildStore(c->b,
                   LLVMBuildFPExt(c->b, LLVMGetParam(c->fn, 1), c->f64, ""),
                   cg_inst_ptr(c, c->lay->lr_off));
    LLVMBuildRetVoid(c->b);
}

static void emit_grad(Cg *c, LLVMValueRef info)
{
    LLVMTypeRef pt[] = {c->ptr, c->ptr};
    cg_begin_function(c, "grad", c->ptr, pt, 2);
    LLVMValueRef args[] = {info, LLVMGetParam(c->fn, 0), LLVMGetParam(c->fn, 1),
                           cg_i32c(c, NNC_ROLE_GRAD)};
    LLVMBuildRet(c->b, cg_rt_call(c, CG_RT_MODEL_TENSOR, args, 4));
}

/* NAME_save_checkpoint / NAME_load_checkpoint: parameters, optimizer state
 * and the step through the runtime's safetensors functions. */
static void emit_checkpoint_fn(Cg *c, LLVMValueRef info, const char *suffix,
                               CgRtFn f)
{
    LLVMTypeRef pt[] = {c->ptr, c->ptr};
    cg_begin_function(c, suffix, c->i32, pt, 2);
    LLVMValueRef args[] = {LLVMGetParam(c->fn, 1), info, LLVMGetParam(c->fn, 0),
                           cg_i32c(c, NNC_ST_OPT_STATE)};
    LLVMBuildRet(c->b, cg_rt_call(c, f, args, 4));
}

/* float NAME_SUFFIX_argv(NAME *m, void *const *inputs) */
static void emit_argv(Cg *c, const char *suffix, LLVMValueRef target)
{
    int n_in = c->m->inputs.len;
    LLVMTypeRef pt[] = {c->ptr, c->ptr};
    cg_begin_function(c, suffix, c->f32, pt, 2);
    LLVMValueRef *args =
        arena_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(n_in + 1));
    args[0] = LLVMGetParam(c->fn, 0);
    for (int i = 0; i < n_in; i++)
        args[i + 1] = LLVMBuildLoad2(
            c->b, c->ptr, cg_gep_const(c, c->ptr, LLVMGetParam(c->fn, 1), i),
            "");
    LLVMBuildRet(c->b, LLVMBuildCall2(c->b, LLVMGlobalGetValueType(target),
                                      target, args, (unsigned)n_in + 1, ""));
}

void cg_emit_train(Cg *c, LLVMValueRef info, bool jit)
{
    LLVMValueRef run = emit_backward_run(c);
    LLVMValueRef update = cg_emit_update(c);
    LLVMValueRef backward = emit_backward(c, run);
    LLVMValueRef train_step = emit_train_step(c, run, update);
    emit_set_lr(c);
    emit_grad(c, info);
    emit_checkpoint_fn(c, info, "save_checkpoint", CG_RT_ST_SAVE);
    emit_checkpoint_fn(c, info, "load_checkpoint", CG_RT_ST_LOAD);
    if (jit) {
        emit_argv(c, "backward_argv", backward);
        emit_argv(c, "train_step_argv", train_step);
    }
}
