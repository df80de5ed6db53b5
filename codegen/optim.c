/* optim.c — NAME_update: one optimizer step from the gradient buffers.
 *
 * The generated function increments the step counter, clips the gradients
 * when the model asks for clip_grad_norm, then calls libnncrt's kernel for
 * every trainable parameter in declaration order:
 *
 *   void NAME_update(NAME *m) {
 *       int64_t t = ++m->step;
 *       double total = nnc_sum_squares(grad.W, 12) + nnc_sum_squares(grad.b, 3);
 *       double coef = max_norm / (sqrt(total) + 1e-6);
 *       if (!(coef >= 1)) { nnc_scale(grad.W, 12, coef); nnc_scale(grad.b, 3, coef); }
 *       nnc_adam_step(W, grad.W, W.exp_avg, W.exp_avg_sq, 12, m->lr, ..., t);
 *       nnc_adam_step(b, ...);
 *   }
 *
 * as torch.nn.utils.clip_grad_norm_ (global L2 norm over all trainable
 * gradients, coefficient clamped at 1, so it scales only when it is below;
 * a NaN norm scales by NaN as torch does) followed by torch.optim's step.
 * Clipping scales the gradient buffers in place, as clip_grad_norm_ does;
 * weight decay does not touch them.  Frozen parameters have no gradient
 * and no state and are skipped.  The optimizer state slots are named as
 * torch.optim's state keys, which is how checkpoints name them. */
#include "codegen/cg.h"

int cg_opt_slots(const TrainSpec *t, const char **names)
{
    switch (t->opt) {
    case OPT_SGD:
        names[0] = "momentum_buffer";
        return t->momentum != 0.0 ? 1 : 0;
    case OPT_ADAM:
    case OPT_ADAMW:
        names[0] = "exp_avg";
        names[1] = "exp_avg_sq";
        return 2;
    default: return 0;
    }
}

static LLVMValueRef f64c(Cg *c, double v) { return LLVMConstReal(c->f64, v); }

static int64_t param_numel(const Cg *c, int i)
{
    return ir_type_numel(&c->m->params.data[i].type);
}

static void emit_clip(Cg *c)
{
    const Module *m = c->m;
    LLVMValueRef total = f64c(c, 0.0);
    for (int i = 0; i < m->params.len; i++) {
        if (m->params.data[i].frozen)
            continue;
        LLVMValueRef a[] = {cg_inst_ptr(c, c->lay->grad_off[i]),
                            cg_i64(c, param_numel(c, i))};
        total = LLVMBuildFAdd(c->b, total,
                              cg_rt_call(c, CG_RT_SUM_SQUARES, a, 2), "");
    }
    LLVMValueRef norm = cg_intrinsic(c, "llvm.sqrt", c->f64, &total, 1);
    LLVMValueRef coef = LLVMBuildFDiv(
        c->b, f64c(c, m->train.clip_grad_norm),
        LLVMBuildFAdd(c->b, norm, f64c(c, 1e-6), ""), "clip_coef");
    LLVMBasicBlockRef scale = cg_block(c, "clip"),
                      done = cg_block(c, "clipped");
    LLVMBuildCondBr(c->b,
                    LLVMBuildFCmp(c->b, LLVMRealULT, coef, f64c(c, 1.0), ""),
                    scale, done);
    LLVMPositionBuilderAtEnd(c->b, scale);
    LLVMValueRef coef32 = LLVMBuildFPTrunc(c->b, coef, c->f32, "");
    for (int i = 0; i < m->params.len; i++) {
        if (m->params.data[i].frozen)
            continue;
        LLVMValueRef a[] = {cg_inst_ptr(c, c->lay->grad_off[i]),
                            cg_i64(c, param_numel(c, i)), coef32};
        cg_rt_call(c, CG_RT_SCALE, a, 3);
    }
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
}

static void emit_sgd(Cg *c, int i, LLVMValueRef lr, LLVMValueRef step)
{
    const TrainSpec *t = &c->m->train;
    const CgLayout *l = c->lay;
    LLVMValueRef buf =
        l->n_slots ? cg_inst_ptr(c, l->slot_off[0][i]) : LLVMConstNull(c->ptr);
    LLVMValueRef a[] = {cg_inst_ptr(c, l->param_off[i]),
                        cg_inst_ptr(c, l->grad_off[i]),
                        buf,
                        cg_i64(c, param_numel(c, i)),
                        lr,
                        f64c(c, t->momentum),
                        f64c(c, t->weight_decay),
                        cg_i32c(c, t->nesterov),
                        step};
    cg_rt_call(c, CG_RT_SGD_STEP, a, 9);
}

static void emit_adam(Cg *c, int i, LLVMValueRef lr, LLVMValueRef step)
{
    const TrainSpec *t = &c->m->train;
    const CgLayout *l = c->lay;
    LLVMValueRef a[] = {cg_inst_ptr(c, l->param_off[i]),
                        cg_inst_ptr(c, l->grad_off[i]),
                        cg_inst_ptr(c, l->slot_off[0][i]),
                        cg_inst_ptr(c, l->slot_off[1][i]),
                        cg_i64(c, param_numel(c, i)),
                        lr,
                        f64c(c, t->beta1),
                        f64c(c, t->beta2),
                        f64c(c, t->eps),
                        f64c(c, t->weight_decay),
                        cg_i32c(c, t->opt == OPT_ADAMW),
                        step};
    cg_rt_call(c, CG_RT_ADAM_STEP, a, 12);
}

LLVMValueRef cg_emit_update(Cg *c)
{
    const Module *m = c->m;
    LLVMValueRef fn = cg_begin_function(c, "update", c->void_t, &c->ptr, 1);
    c->inst = LLVMGetParam(fn, 0);
    LLVMValueRef step_p = cg_inst_ptr(c, c->lay->step_off);
    LLVMValueRef step = LLVMBuildNSWAdd(
        c->b, LLVMBuildLoad2(c->b, c->i64, step_p, "step"), cg_i64(c, 1), "t");
    LLVMBuildStore(c->b, step, step_p);
    LLVMValueRef lr =
        LLVMBuildLoad2(c->b, c->f64, cg_inst_ptr(c, c->lay->lr_off), "lr");
    if (m->train.clip_grad_norm > 0)
        emit_clip(c);
    for (int i = 0; i < m->params.len; i++) {
        if (m->params.data[i].frozen)
            continue;
        if (m->train.opt == OPT_SGD)
            emit_sgd(c, i, lr, step);
        else
            emit_adam(c, i, lr, step);
    }
    LLVMBuildRetVoid(c->b);
    return fn;
}
