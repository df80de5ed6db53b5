/* info.c — the constant nnc_model_info table emitted into the object.
 *
 * The table (runtime/nnc.h) is what libnncrt's load, save and init walk:
 * one nnc_tensor_info per parameter (in declaration order, with its byte
 * offset in the instance and its initialiser), then one per input and one
 * per output (offset -1, caller-owned).  With the training API follow one
 * GRAD row per trainable parameter (named as the parameter) and its
 * OPT_STATE rows ("W.exp_avg", "W.exp_avg_sq": torch.optim's state keys,
 * saved in checkpoints as "opt.W.exp_avg"), and step_offset locates the
 * step counter, so checkpoints and NAME_grad are runtime calls over the
 * table.  The LLVM struct types below spell
 * the C structs field by field; with the target's data layout they get the
 * C ABI's padding, so the same table works on every target. */
#include "codegen/cg.h"

#include <string.h>

#include "runtime/nnc.h"

static LLVMValueRef const_string(Cg *c, const char *s, const char *name)
{
    LLVMValueRef str =
        LLVMConstStringInContext(c->ctx, s, (unsigned)strlen(s), 0);
    LLVMValueRef g = LLVMAddGlobal(c->mod, LLVMTypeOf(str), name);
    LLVMSetInitializer(g, str);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    return g;
}

static LLVMTypeRef init_type(Cg *c)
{
    LLVMTypeRef f[] = {c->i32, c->f64, c->f64};
    return LLVMStructTypeInContext(c->ctx, f, 3, 0);
}

static LLVMTypeRef tensor_type(Cg *c)
{
    LLVMTypeRef f[] = {c->ptr, c->i32, c->i32,
                       c->i32, c->i32, LLVMArrayType(c->i64, NNC_MAX_RANK),
                       c->i64, c->i64, init_type(c)};
    return LLVMStructTypeInContext(c->ctx, f, 9, 0);
}

static LLVMValueRef tensor_entry(Cg *c, const char *name, nnc_role role,
                                 const Type *t, int64_t offset,
                                 const Init *init, int32_t param)
{
    LLVMValueRef dims[NNC_MAX_RANK];
    for (int i = 0; i < NNC_MAX_RANK; i++)
        dims[i] = cg_i64(c, i < t->rank ? t->dims[i] : 0);
    LLVMValueRef iv[] = {cg_i32c(c, init ? (int32_t)init->kind : 0),
                         LLVMConstReal(c->f64, init ? init->a : 0.0),
                         LLVMConstReal(c->f64, init ? init->b : 0.0)};
    LLVMValueRef f[] = {const_string(c, name, "tensor.name"),
                        cg_i32c(c, (int32_t)role),
                        cg_i32c(c, t->dtype == DT_I32 ? NNC_I32 : NNC_F32),
                        cg_i32c(c, t->rank),
                        cg_i32c(c, param),
                        LLVMConstArray(c->i64, dims, NNC_MAX_RANK),
                        cg_i64(c, ir_type_numel(t)),
                        cg_i64(c, offset),
                        LLVMConstNamedStruct(init_type(c), iv, 3)};
    return LLVMConstNamedStruct(tensor_type(c), f, 9);
}

static const char *output_name(Cg *c, int r)
{
    const Graph *g = c->m->graphs.data[0];
    const char *name = g->result_names.data[r];
    return name ? name : arena_printf(c->arena, "output%d", r);
}

/* GRAD rows, then OPT_STATE rows, of the trainable params; `param` is the
 * parameter's row, which is its declaration index.  Returns the count. */
static int train_rows(Cg *c, LLVMValueRef *rows)
{
    const Module *m = c->m;
    const CgLayout *l = c->lay;
    const char *slots[CG_MAX_OPT_SLOTS];
    int k = 0;
    if (!l->train)
        return 0;
    cg_opt_slots(&m->train, slots);
    for (int i = 0; i < m->params.len; i++) {
        const ParamDecl *p = &m->params.data[i];
        if (!p->frozen)
            rows[k++] = tensor_entry(c, p->name, NNC_ROLE_GRAD, &p->type,
                                     l->grad_off[i], NULL, i);
    }
    for (int i = 0; i < m->params.len; i++) {
        const ParamDecl *p = &m->params.data[i];
        for (int s = 0; s < l->n_slots && !p->frozen; s++)
            rows[k++] = tensor_entry(
                c, arena_printf(c->arena, "%s.%s", p->name, slots[s]),
                NNC_ROLE_OPT_STATE, &p->type, l->slot_off[s][i], NULL, i);
    }
    return k;
}

LLVMValueRef cg_emit_info(Cg *c)
{
    const Module *m = c->m;
    const Graph *g = m->graphs.data[0];
    int n = m->params.len + m->inputs.len + m->n_outputs, k = 0;
    int n_max = n + m->params.len * (1 + CG_MAX_OPT_SLOTS);
    LLVMValueRef *rows =
        arena_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(n_max + 1));
    for (int i = 0; i < m->params.len; i++) {
        const ParamDecl *p = &m->params.data[i];
        rows[k++] = tensor_entry(
            c, p->name, p->frozen ? NNC_ROLE_FROZEN_PARAM : NNC_ROLE_PARAM,
            &p->type, c->lay->param_off[i], &p->init, -1);
    }
    for (int i = 0; i < m->inputs.len; i++)
        rows[k++] = tensor_entry(c, m->inputs.data[i].name, NNC_ROLE_INPUT,
                                 &m->inputs.data[i].type, -1, NULL, -1);
    for (int r = 0; r < m->n_outputs; r++) {
        Type t = ir_value_type(g, g->results.data[r]);
        rows[k++] = tensor_entry(c, output_name(c, r), NNC_ROLE_OUTPUT, &t, -1,
                                 NULL, -1);
    }
    n += train_rows(c, rows + k);
    LLVMValueRef arr = LLVMConstArray(tensor_type(c), rows, (unsigned)n);
    LLVMValueRef tensors = LLVMAddGlobal(c->mod, LLVMTypeOf(arr), "tensors");
    LLVMSetInitializer(tensors, arr);
    LLVMSetGlobalConstant(tensors, 1);
    LLVMSetLinkage(tensors, LLVMPrivateLinkage);
    LLVMTypeRef mf[] = {c->i32, c->i32, c->ptr, c->ptr,
                        c->i64, c->i64, c->i64, c->i64};
    LLVMTypeRef mt = LLVMStructTypeInContext(c->ctx, mf, 8, 0);
    LLVMValueRef mv[] = {cg_i32c(c, NNC_ABI_VERSION),
                         cg_i32c(c, n),
                         const_string(c, m->name, "model.name"),
                         tensors,
                         cg_i64(c, c->lay->size),
                         cg_i64(c, c->lay->workspace_off),
                         cg_i64(c, c->lay->size - c->lay->workspace_off),
                         cg_i64(c, c->lay->train ? c->lay->step_off : -1)};
    LLVMValueRef info = LLVMAddGlobal(c->mod, mt, cg_symbol(c, "info_table"));
    LLVMSetInitializer(info, LLVMConstNamedStruct(mt, mv, 8));
    LLVMSetGlobalConstant(info, 1);
    LLVMSetLinkage(info, LLVMPrivateLinkage);
    return info;
}
