/* graph.c — modules, graphs, types and the builder.
 *
 * The builder is the one way nodes get into a graph: ir_add infers result
 * types with the op's shape rule (shape.c) and refuses ill-typed nodes, so
 * every graph the front end builds is well typed by construction; the
 * reader and passes that already know the types use ir_add_typed. */
#include "ir.h"

#include <string.h>

const OpInfo ir_op_info[OP_COUNT] = {
#define OP(e, name, arity, flags) [OP_##e] = {name, arity, flags},
#include "ops.def"
#undef OP
};

const char *const ir_init_names[INIT_COUNT] = {
    [INIT_ZEROS] = "zeros",   [INIT_ONES] = "ones",
    [INIT_CONST] = "const",   [INIT_UNIFORM] = "uniform",
    [INIT_NORMAL] = "normal", [INIT_XAVIER_UNIFORM] = "xavier_uniform",
    [INIT_KAIMING_NORMAL] = "kaiming_normal",
    [INIT_ORTHOGONAL] = "orthogonal",
};

const char *const ir_opt_names[4] = {"none", "sgd", "adam", "adamw"};

Op ir_op_by_name(const char *name)
{
    for (int i = 0; i < OP_COUNT; i++)
        if (strcmp(ir_op_info[i].name, name) == 0)
            return (Op)i;
    return OP_COUNT;
}

/* ---- types ------------------------------------------------------------ */

int64_t ir_type_numel(const Type *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->dims[i];
    return n;
}

bool ir_type_eq(const Type *a, const Type *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

const char *ir_type_str(const Type *t, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "%s[", t->dtype == DT_F32 ? "f32" : "i32");
    for (int i = 0; i < t->rank && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? ", " : "",
                              (long long)t->dims[i]);
    if (n < len)
        snprintf(buf + n, len - n, "]");
    return buf;
}

Type ir_type_make(DType dt, int32_t rank, const int64_t *dims)
{
    Type t = {.dtype = dt, .rank = rank};
    for (int i = 0; i < rank; i++)
        t.dims[i] = dims[i];
    return t;
}

Type ir_type_scalar(DType dt) { return (Type){.dtype = dt}; }

/* Attributes an op does not use are zero, so whole-struct comparison is
 * exact except for `value`, where -0.0 == 0.0 and NaN != NaN would mislead
 * CSE: compare its bits. */
bool ir_attrs_eq(Op op, const Attrs *a, const Attrs *b)
{
    (void)op;
    if (memcmp(&a->value, &b->value, sizeof a->value) != 0)
        return false;
    Attrs x = *a, y = *b;
    x.value = y.value = 0;
    return memcmp(&x, &y, sizeof x) == 0;
}

/* ---- modules and graphs ------------------------------------------------ */

Module *ir_module_new(Arena *a, const char *name)
{
    Module *m = arena_alloc(a, sizeof *m);
    m->arena = a;
    m->name = arena_strdup(a, name);
    return m;
}

Graph *ir_graph_new(Module *m, const char *name)
{
    Graph *g = arena_alloc(m->arena, sizeof *g);
    g->arena = m->arena;
    g->name = arena_strdup(m->arena, name);
    g->id = m->graphs.len;
    vec_push(m->arena, &g->values, (ValueInfo){.def = -1}); /* id 0: none */
    vec_push(m->arena, &m->graphs, g);
    return g;
}

ValueInfo *ir_value(Graph *g, Value v)
{
    if (v.id == 0 || (int32_t)v.id >= g->values.len)
        ir_internal_error("ir", "graph %s: value id %u out of range", g->name, v.id);
    return &g->values.data[v.id];
}

Type ir_value_type(const Graph *g, Value v)
{
    return ir_value((Graph *)g, v)->type;
}

Node *ir_def(Graph *g, Value v)
{
    return &g->nodes.data[ir_value(g, v)->def];
}

int32_t ir_add_typed(Graph *g, Op op, const Value *in, int n_in,
                     const Attrs *attr, SrcLoc loc, const Type *out_types,
                     int n_out)
{
    Arena *a = g->arena;
    Node n = {.op = op, .n_in = n_in, .n_out = n_out, .loc = loc};
    if (attr)
        n.attr = *attr;
    n.in = arena_alloc(a, sizeof(Value) * (size_t)(n_in ? n_in : 1));
    if (n_in)
        memcpy(n.in, in, sizeof(Value) * (size_t)n_in);
    n.out = arena_alloc(a, sizeof(Value) * (size_t)(n_out ? n_out : 1));
    int32_t id = g->nodes.len;
    for (int i = 0; i < n_out; i++) {
        n.out[i] = (Value){(uint32_t)g->values.len};
        vec_push(a, &g->values,
                 ((ValueInfo){.type = out_types[i], .def = id, .result = i}));
    }
    vec_push(a, &g->nodes, n);
    return id;
}

Value ir_add(Module *m, Graph *g, Op op, const Value *in, int n_in,
             const Attrs *attr, SrcLoc loc, Value *outs, char *err,
             size_t errlen)
{
    Type in_types[64], out_types[64];
    if (n_in > 64) {
        snprintf(err, errlen, "%s takes at most 64 operands, not %d",
                 ir_op_info[op].name, n_in);
        return IR_NONE;
    }
    for (int i = 0; i < n_in; i++)
        in_types[i] = ir_value_type(g, in[i]);
    Attrs a = attr ? *attr : (Attrs){0};
    int n_out = ir_infer(m, op, in_types, n_in, &a, out_types, 64, err, errlen);
    if (n_out <= 0)
        return IR_NONE;
    int32_t id = ir_add_typed(g, op, in, n_in, &a, loc, out_types, n_out);
    Node *n = &g->nodes.data[id];
    if (outs)
        memcpy(outs, n->out, sizeof(Value) * (size_t)n_out);
    return n->out[0];
}

void ir_add_result(Module *m, Graph *g, Value v, const char *name)
{
    vec_push(m->arena, &g->results, v);
    vec_push(m->arena, &g->result_names, name ? arena_strdup(m->arena, name) : NULL);
}
