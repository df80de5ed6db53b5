/* module.c — one LLVM module implementing the generated C API of a model.
 *
 * For `model NAME` it defines NAME_new (one posix_memalign of the layout's
 * size, zeroed, with the declared learning rate stored when the model
 * trains, after nnc_runtime_prepare() has started the thread pool), NAME_free, NAME_init / NAME_load / NAME_save / NAME_param
 * (libnncrt calls driven by the info table, info.c; init also records its
 * seed, which keys dropout), NAME_info and NAME_forward, whose body is the
 * main graph's live nodes (lower.c) followed by copies of the outputs into
 * the caller's arrays; for the JIT also NAME_forward_argv (codegen.h).
 * With the training API (cg_has_train) train.c adds backward, train_step,
 * update and the rest.  Nothing here allocates after NAME_new: forward
 * runs in the instance's workspace. */
#include "codegen/cg.h"

#include "runtime/nnc.h"

char *cg_symbol(const Cg *c, const char *suffix)
{
    return arena_printf(c->arena, "%s_%s", c->m->name, suffix);
}

LLVMValueRef cg_begin_function(Cg *c, const char *suffix, LLVMTypeRef ret,
                               LLVMTypeRef *params, unsigned n)
{
    LLVMTypeRef ty = LLVMFunctionType(ret, params, n, 0);
    c->fn = LLVMAddFunction(c->mod, cg_symbol(c, suffix), ty);
    unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(c->fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(c->ctx, nounwind, 0));
    LLVMPositionBuilderAtEnd(
        c->b, LLVMAppendBasicBlockInContext(c->ctx, c->fn, "entry"));
    return c->fn;
}

LLVMValueRef cg_inst_ptr(Cg *c, int64_t off)
{
    return cg_gep_const(c, c->i8, c->inst, off);
}

static void emit_new(Cg *c)
{
    cg_begin_function(c, "new", c->ptr, NULL, 0);
    LLVMValueRef slot = LLVMBuildAlloca(c->b, c->ptr, "slot");
    LLVMValueRef args[] = {slot, cg_i64(c, CG_ALIGN), cg_i64(c, c->lay->size)};
    LLVMValueRef rc = cg_rt_call(c, CG_RT_MEMALIGN, args, 3);
    LLVMBasicBlockRef ok = cg_block(c, "ok"), fail = cg_block(c, "oom");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, rc, cg_i32c(c, 0), ""),
                    ok, fail);
    LLVMPositionBuilderAtEnd(c->b, fail);
    LLVMBuildRet(c->b, LLVMConstNull(c->ptr));
    LLVMPositionBuilderAtEnd(c->b, ok);
    LLVMValueRef p = LLVMBuildLoad2(c->b, c->ptr, slot, "instance");
    cg_rt_call(c, CG_RT_PREPARE, NULL, 0); /* the pool's threads, now */
    LLVMBuildMemSet(c->b, p, LLVMConstInt(c->i8, 0, 0), cg_i64(c, c->lay->size),
                    CG_ALIGN);
    if (c->lay->train)
        LLVMBuildStore(c->b, LLVMConstReal(c->f64, c->m->train.lr),
                       cg_gep_const(c, c->i8, p, c->lay->lr_off));
    LLVMBuildRet(c->b, p);
}

static void emit_free(Cg *c)
{
    cg_begin_function(c, "free", c->void_t, &c->ptr, 1);
    LLVMValueRef p = LLVMGetParam(c->fn, 0);
    cg_rt_call(c, CG_RT_FREE, &p, 1);
    LLVMBuildRetVoid(c->b);
}

static void emit_init(Cg *c, LLVMValueRef info)
{
    LLVMTypeRef params[] = {c->ptr, c->i64};
    cg_begin_function(c, "init", c->void_t, params, 2);
    LLVMValueRef inst = LLVMGetParam(c->fn, 0);
    LLVMValueRef args[] = {
        info, inst, LLVMGetParam(c->fn, 1),
        cg_gep_const(c, c->i8, inst, c->lay->workspace_off),
        cg_i64(c, (c->lay->size - c->lay->workspace_off) / 4)};
    cg_rt_call(c, CG_RT_MODEL_INIT, args, 5);
    if (c->lay->train)
        LLVMBuildStore(c->b, LLVMGetParam(c->fn, 1),
                       cg_gep_const(c, c->i8, inst, c->lay->seed_off));
    LLVMBuildRetVoid(c->b);
}

/* NAME_load(m, path) and NAME_save(m, path): the runtime's safetensors
 * functions over the info table, parameters only. */
static void emit_file_fn(Cg *c, LLVMValueRef info, const char *suffix, CgRtFn f)
{
    LLVMTypeRef params[] = {c->ptr, c->ptr};
    cg_begin_function(c, suffix, c->i32, params, 2);
    LLVMValueRef args[] = {LLVMGetParam(c->fn, 1), info, LLVMGetParam(c->fn, 0),
                           cg_i32c(c, 0)};
    LLVMBuildRet(c->b, cg_rt_call(c, f, args, 4));
}

static void emit_param(Cg *c, LLVMValueRef info)
{
    LLVMTypeRef params[] = {c->ptr, c->ptr};
    cg_begin_function(c, "param", c->ptr, params, 2);
    LLVMValueRef args[] = {info, LLVMGetParam(c->fn, 0), LLVMGetParam(c->fn, 1),
                           cg_i32c(c, NNC_ROLE_PARAM)};
    LLVMBuildRet(c->b, cg_rt_call(c, CG_RT_MODEL_TENSOR, args, 4));
}

static void emit_info_fn(Cg *c, LLVMValueRef info)
{
    cg_begin_function(c, "info", c->ptr, NULL, 0);
    LLVMBuildRet(c->b, info);
}

/* int NAME_forward(NAME *m, used inputs..., outputs...). */
static LLVMValueRef emit_forward(Cg *c, const bool *used, int n_used)
{
    const Module *m = c->m;
    Graph *g = m->graphs.data[0];
    int n_params = 1 + n_used + m->n_outputs;
    LLVMTypeRef *pt =
        arena_alloc(c->arena, sizeof(LLVMTypeRef) * (size_t)n_params);
    for (int i = 0; i < n_params; i++)
        pt[i] = c->ptr;
    LLVMValueRef fn =
        cg_begin_function(c, "forward", c->i32, pt, (unsigned)n_params);
    c->inst = LLVMGetParam(fn, 0);
    c->inputs = arena_alloc(c->arena,
                            sizeof(LLVMValueRef) * (size_t)(m->inputs.len + 1));
    for (int i = 0, k = 1; i < m->inputs.len; i++)
        if (used[i])
            c->inputs[i] = LLVMGetParam(fn, (unsigned)k++);
    cg_emit_graph(c, g);
    for (int r = 0; r < m->n_outputs; r++) {
        Type t = ir_value_type(g, g->results.data[r]);
        cg_memcpy(c, LLVMGetParam(fn, (unsigned)(1 + n_used + r)),
                  cg_ptr(c, g, g->results.data[r]), ir_type_numel(&t) * 4);
    }
    LLVMBuildRet(c->b, cg_i32c(c, 0));
    return fn;
}

/* int NAME_forward_argv(NAME *m, void *const *args): forward's pointer
 * arguments from an array, for callers that learn the model at run time. */
static void emit_forward_argv(Cg *c, LLVMValueRef forward, int n_args)
{
    LLVMTypeRef params[] = {c->ptr, c->ptr};
    cg_begin_function(c, "forward_argv", c->i32, params, 2);
    LLVMValueRef *args =
        arena_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(n_args + 1));
    args[0] = LLVMGetParam(c->fn, 0);
    for (int i = 0; i < n_args; i++)
        args[i + 1] = LLVMBuildLoad2(
            c->b, c->ptr, cg_gep_const(c, c->ptr, LLVMGetParam(c->fn, 1), i),
            "");
    LLVMTypeRef fty = LLVMGlobalGetValueType(forward);
    LLVMBuildRet(c->b, LLVMBuildCall2(c->b, fty, forward, args,
                                      (unsigned)n_args + 1, ""));
}

static void init_types(Cg *c)
{
    c->f32 = LLVMFloatTypeInContext(c->ctx);
    c->f64 = LLVMDoubleTypeInContext(c->ctx);
    c->i1 = LLVMInt1TypeInContext(c->ctx);
    c->i8 = LLVMInt8TypeInContext(c->ctx);
    c->i32 = LLVMInt32TypeInContext(c->ctx);
    c->i64 = LLVMInt64TypeInContext(c->ctx);
    c->ptr = LLVMPointerTypeInContext(c->ctx, 0);
    c->void_t = LLVMVoidTypeInContext(c->ctx);
}

static void init_value_tables(Cg *c)
{
    const Module *m = c->m;
    c->vals =
        arena_alloc(c->arena, sizeof(LLVMValueRef *) * (size_t)m->graphs.len);
    for (int gi = 0; gi < m->graphs.len; gi++)
        c->vals[gi] =
            arena_alloc(c->arena, sizeof(LLVMValueRef) *
                                      (size_t)m->graphs.data[gi]->values.len);
}

LLVMModuleRef cg_build_module(const Module *m, LLVMContextRef ctx, bool jit)
{
    Cg c = {.m = m, .ctx = ctx, .arena = arena_new()};
    c.mod = LLVMModuleCreateWithNameInContext(m->name, ctx);
    c.b = LLVMCreateBuilderInContext(ctx);
    init_types(&c);
    init_value_tables(&c);
    c.lay = cg_layout_new(c.arena, m);
    LLVMValueRef info = cg_emit_info(&c);
    emit_new(&c);
    emit_free(&c);
    emit_init(&c, info);
    emit_file_fn(&c, info, "load", CG_RT_ST_LOAD);
    emit_file_fn(&c, info, "save", CG_RT_ST_SAVE);
    emit_param(&c, info);
    emit_info_fn(&c, info);
    bool *used = arena_alloc(c.arena, (size_t)m->inputs.len + 1);
    int n_used = cg_forward_inputs(m, used);
    LLVMValueRef forward = emit_forward(&c, used, n_used);
    if (jit)
        emit_forward_argv(&c, forward, n_used + m->n_outputs);
    if (c.lay->train)
        cg_emit_train(&c, info, jit);
    LLVMDisposeBuilder(c.b);
    arena_free(c.arena);
    return c.mod;
}
