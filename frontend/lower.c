/* lower.c — fe_lower: the AST of a `.nn` file to a Module, after the
 * parser and before the passes.  Statements are lowered in order into the
 * main graph; every semantic and shape error is reported at its place and
 * lowering goes on with the next statement, so independent mistakes are
 * all reported (a failed binding poisons its names, which keeps one
 * mistake from causing more messages).  On any error the result is NULL.
 *
 *   model mlp                     Module "mlp"
 *   dim B = 128                   dims B = 128
 *   input x : f32[B, 784]         %1 = input 0 : f32[128, 784]
 *   param W : f32[784, 10] = ...  %2 = param 0 : f32[784, 10]
 *   y = x @ W                     %3 = matmul %1, %2
 *   output y                      results: %3 "y"
 *
 * The main graph's results are the outputs in order, then the loss
 * ("loss") when the model trains.  The pieces live in lower_*.c; lower.h
 * is their map. */
#include "frontend/lower.h"

#include <string.h>

/* Every top-level name with where it is defined, for messages about names
 * used before their definition. */
static void collect_names(Lower *L, const Program *p)
{
    for (int i = 0; i < p->n_stmts; i++) {
        const Stmt *st = p->stmts[i];
        if (st->kind == ST_MODEL || st->kind == ST_OUTPUT ||
            st->kind == ST_TRAIN || st->kind == ST_RETURN)
            continue;
        for (int j = 0; j < st->n_names; j++)
            vec_push(L->a, &L->top_names,
                     ((TopName){st->names[j], st->name_locs[j]}));
    }
}

static bool has_dim(const Program *p, const char *name)
{
    for (int i = 0; i < p->n_stmts; i++)
        if (p->stmts[i]->kind == ST_DIM &&
            strcmp(p->stmts[i]->names[0], name) == 0)
            return true;
    return false;
}

/* Errors with no place of their own, reported first, at 1:1. */
static void check_whole_file(Lower *L, const Program *p)
{
    static const SrcLoc start = {1, 1};
    for (int i = 0; i < L->n_ov; i++) {
        const DimOverride *o = &L->ov[i];
        if (!has_dim(p, o->name))
            lw_error(L, start, "-D %s=%lld: the model has no dim named '%s'",
                     o->name, (long long)o->value, o->name);
        else if (o->value <= 0)
            lw_error(L, start, "-D %s=%lld: a dim must be a positive integer",
                     o->name, (long long)o->value);
    }
    bool uses = false;
    for (int i = 0; i < p->n_stmts; i++)
        uses |= p->stmts[i]->kind == ST_OUTPUT || p->stmts[i]->kind == ST_TRAIN;
    if (!uses)
        lw_error(L, start, "model has neither 'output' nor 'train'");
}

/* `model NAME`: only as the first statement; NAME prefixes C symbols. */
static void lower_model(Lower *L, const Stmt *st, int index)
{
    if (index != 0)
        lw_error(L, st->loc, "'model' must be the first statement");
    else if (lw_is_c_keyword(st->names[0]))
        lw_error(L, st->name_locs[0],
                 "the model name '%s' is a C keyword, and "
                 "it prefixes the generated C names",
                 st->names[0]);
}

static void lower_stmt(Lower *L, const Stmt *st, int index)
{
    switch (st->kind) {
    case ST_MODEL: lower_model(L, st, index); break;
    case ST_DIM: lw_dim(L, st); break;
    case ST_INPUT: lw_input(L, st); break;
    case ST_PARAM: lw_param(L, st); break;
    case ST_BIND: lw_bind_stmt(L, &L->top, st); break;
    case ST_FN: lw_fn_def(L, st); break;
    case ST_OUTPUT: lw_output(L, st); break;
    case ST_TRAIN: lw_train(L, st); break;
    case ST_RETURN:
        lw_error(L, st->loc, "'return' is only allowed inside a fn");
        break;
    }
}

static const char *model_name(const Program *p, const char *dflt)
{
    if (p->n_stmts > 0 && p->stmts[0]->kind == ST_MODEL)
        return p->stmts[0]->names[0];
    return dflt ? dflt : "model";
}

static void add_results(Lower *L)
{
    Graph *g = L->main.g;
    for (int32_t i = 0; i < L->outputs.len; i++)
        ir_add_result(L->m, g, L->outputs.data[i].v, L->outputs.data[i].name);
    L->m->n_outputs = L->outputs.len;
    if (L->m->train.opt != OPT_NONE)
        ir_add_result(L->m, g, L->loss, "loss");
}

Module *fe_lower(Arena *a, const Program *p, const char *model_default,
                 DimOverride *overrides, int n_overrides, Diag *d)
{
    int errors = d->n_errors;
    Lower *L = arena_alloc(a, sizeof *L);
    L->a = a;
    L->d = d;
    L->ov = overrides;
    L->n_ov = n_overrides;
    L->top.limit = INT32_MAX;
    L->m = ir_module_new(a, model_name(p, model_default));
    L->main.g = ir_graph_new(L->m, "main");
    L->ctx = &L->main;
    collect_names(L, p);
    check_whole_file(L, p);
    for (int i = 0; i < p->n_stmts && !L->aborted && !diag_full(d); i++)
        lower_stmt(L, p->stmts[i], i);
    if (d->n_errors > errors)
        return NULL;
    add_results(L);
    return L->m;
}
