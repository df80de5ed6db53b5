/* print.c — the text form of the graph IR (specified in docs/ir.md).
 *
 * ir_print_module writes a whole Module: its declarations, then every graph
 * in id order.  The text is what read.c parses back, so a dump can be fed to
 * a single pass in a test.  It is deterministic: values are numbered %0,
 * %1, ... in definition order per graph at print time (never raw ids or
 * pointers), doubles print in the shortest form that reads back to the same
 * bits, and a source name rides along as a `# name` hint after the node.
 *
 * The printer never trusts the module: it is used to dump graphs that fail
 * the verifier, so out-of-range ids, ops and types print as `%?17`, `op?77`,
 * `f32[?rank 9]` instead of crashing (such text is not meant to read back). */
#include "ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Column where a node's `# name` hint starts when the node is shorter. */
#define HINT_COLUMN 48

/* ---- names, numbers, types ----------------------------------------------- */

/* A name prints bare when it is a word: [A-Za-z_][A-Za-z0-9_.]*. */
static bool name_is_word(const char *s)
{
    if (!s ||
        !(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
        return false;
    for (; *s; s++)
        if (!(*s == '_' || *s == '.' || (*s >= '0' && *s <= '9') ||
              (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
            return false;
    return true;
}

/* Any other name prints as a quoted ASCII string: \" \\ \n \t, and \xHH
 * for every other byte outside 0x20..0x7e.  Returns the bytes written. */
static int print_name(FILE *f, const char *s)
{
    if (name_is_word(s))
        return fprintf(f, "%s", s);
    int n = fprintf(f, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;
         p++) {
        if (*p == '"' || *p == '\\')
            n += fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            n += fprintf(f, "\\n");
        else if (*p == '\t')
            n += fprintf(f, "\\t");
        else if (*p < 0x20 || *p >= 0x7f)
            n += fprintf(f, "\\x%02x", *p);
        else
            n += fprintf(f, "%c", *p);
    }
    return n + fprintf(f, "\"");
}

/* The shortest %.Ng that reads back (strtod) to the same double; the sign
 * of zero survives.  NaN prints as nan or -nan (its payload is not kept). */
static int print_double(FILE *f, double v)
{
    if (isnan(v))
        return fprintf(f, "%snan", signbit(v) ? "-" : "");
    if (isinf(v))
        return fprintf(f, "%sinf", v < 0 ? "-" : "");
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return fprintf(f, "%s", buf);
}

static int print_bool(FILE *f, bool b)
{
    return fprintf(f, "%s", b ? "true" : "false");
}

/* Writes t to f, or only measures it when f is NULL; returns the width. */
static int print_type(FILE *f, const Type *t)
{
    char buf[256];
    const char *dt = t->dtype == DT_F32   ? "f32"
                     : t->dtype == DT_I32 ? "i32"
                                          : "dtype?";
    if (t->rank < 0 || t->rank > IR_MAX_RANK)
        snprintf(buf, sizeof buf, "%s[?rank %d]", dt, (int)t->rank);
    else if (t->dtype == DT_F32 || t->dtype == DT_I32)
        ir_type_str(t, buf, sizeof buf);
    else
        snprintf(buf, sizeof buf, "dtype?%d[]", (int)t->dtype);
    return f ? fprintf(f, "%s", buf) : (int)strlen(buf);
}

static const char *op_name(Op op)
{
    return (unsigned)op < OP_COUNT ? ir_op_info[op].name : NULL;
}

/* ---- value numbering ----------------------------------------------------- */

/* num[id] = the %N a value id prints as, or -1 if no node defines it. */
static int32_t *number_values(const Graph *g)
{
    int32_t n_ids = g->values.len > 0 ? g->values.len : 1;
    int32_t *num = malloc(sizeof *num * (size_t)n_ids);
    if (!num)
        ir_internal_error("print", "out of memory");
    for (int32_t i = 0; i < n_ids; i++)
        num[i] = -1;
    int32_t next = 0;
    for (int32_t k = 0; k < g->nodes.len; k++) {
        const Node *n = &g->nodes.data[k];
        for (int32_t i = 0; i < n->n_out && n->out; i++, next++) {
            uint32_t id = n->out[i].id;
            if (id > 0 && (int32_t)id < g->values.len && num[id] < 0)
                num[id] = next;
        }
    }
    return num;
}

static int print_value(FILE *f, const Graph *g, const int32_t *num, Value v)
{
    if (v.id > 0 && (int32_t)v.id < g->values.len && num[v.id] >= 0)
        return fprintf(f, "%%%d", (int)num[v.id]);
    return fprintf(f, "%%?%u", v.id);
}

/* ---- nodes --------------------------------------------------------------- */

/* `@name` of a module input or param, or `@?N` when out of range. */
static int print_decl_ref(FILE *f, const char *name, int32_t index, bool ok)
{
    if (!ok)
        return fprintf(f, " @?%d", (int)index);
    int c = fprintf(f, " @");
    return c + print_name(f, name);
}

/* Attributes written between the op name and the operands. */
static int print_prefix_attrs(FILE *f, const Module *m, const Node *n)
{
    const Attrs *a = &n->attr;
    switch (n->op) {
    case OP_INPUT:
        return print_decl_ref(f,
                              a->index >= 0 && a->index < m->inputs.len
                                  ? m->inputs.data[a->index].name
                                  : NULL,
                              a->index,
                              a->index >= 0 && a->index < m->inputs.len);
    case OP_PARAM:
        return print_decl_ref(f,
                              a->index >= 0 && a->index < m->params.len
                                  ? m->params.data[a->index].name
                                  : NULL,
                              a->index,
                              a->index >= 0 && a->index < m->params.len);
    case OP_ARG: return fprintf(f, " %d", (int)a->index);
    case OP_CONST: fputc(' ', f); return 1 + print_double(f, a->value);
    case OP_SCAN: {
        bool ok = a->graph >= 0 && a->graph < m->graphs.len &&
                  m->graphs.data[a->graph];
        int c = ok ? print_decl_ref(f, m->graphs.data[a->graph]->name, a->graph,
                                    true)
                   : print_decl_ref(f, NULL, a->graph, false);
        c += fprintf(f, "(carries=%d, over=%d, reverse=", (int)a->n_carry,
                     (int)a->n_over);
        c += print_bool(f, a->flag);
        return c + fprintf(f, ")");
    }
    case OP_FUSED:
    case OP_MATMUL_EPILOGUE: {
        bool ok = a->graph >= 0 && a->graph < m->graphs.len &&
                  m->graphs.data[a->graph];
        return ok ? print_decl_ref(f, m->graphs.data[a->graph]->name, a->graph,
                                   true)
                  : print_decl_ref(f, NULL, a->graph, false);
    }
    default: return 0;
    }
}

static int print_int_list(FILE *f, const char *key, const int32_t *v, int n)
{
    int c = fprintf(f, " %s=[", key);
    for (int i = 0; i < n; i++)
        c += fprintf(f, "%s%d", i ? ", " : "", (int)v[i]);
    return c + fprintf(f, "]");
}

static int print_axes(FILE *f, uint32_t axes)
{
    int32_t list[32];
    int n = 0;
    for (int i = 0; i < 32; i++)
        if (axes & (1u << i))
            list[n++] = i;
    return print_int_list(f, "axes", list, n);
}

static int print_slice(FILE *f, const Attrs *a, int rank)
{
    int c = fprintf(f, " [");
    for (int i = 0; i < rank; i++)
        c += fprintf(f, "%s%lld:%lld", i ? ", " : "", (long long)a->start[i],
                     (long long)a->stop[i]);
    return c + fprintf(f, "]");
}

static int print_named_double(FILE *f, const char *key, double v)
{
    int c = fprintf(f, " %s=", key);
    return c + print_double(f, v);
}

/* Rank of the first operand, which sizes perm and slice lists (0 if the
 * operand is broken, so a corrupt node still prints). */
static int operand_rank(const Graph *g, const Node *n)
{
    if (n->n_in < 1 || !n->in || n->in[0].id == 0 ||
        (int32_t)n->in[0].id >= g->values.len)
        return 0;
    int r = g->values.data[n->in[0].id].type.rank;
    return r >= 0 && r <= IR_MAX_RANK ? r : 0;
}

/* Attributes written after the operands, by name. */
static int print_suffix_attrs(FILE *f, const Graph *g, const Node *n)
{
    const Attrs *a = &n->attr;
    int c;
    switch (n->op) {
    case OP_POW: return print_named_double(f, "p", a->value);
    case OP_DROPOUT:
        c = print_named_double(f, "p", a->value);
        return c + (a->index ? fprintf(f, " site=%d", (int)a->index) : 0);
    case OP_LAYERNORM:
    case OP_RMSNORM: return print_named_double(f, "eps", a->value);
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX:
    case OP_CONCAT: return fprintf(f, " axis=%d", (int)a->axis);
    case OP_SUM:
    case OP_MEAN:
    case OP_MAX:
        c = print_axes(f, a->axes);
        c += fprintf(f, " keepdims=");
        return c + print_bool(f, a->keepdims);
    case OP_PERMUTE:
        return print_int_list(f, "perm", a->perm, operand_rank(g, n));
    case OP_SLICE: return print_slice(f, a, operand_rank(g, n));
    case OP_ATTENTION:
    case OP_ATTENTION_GRAD:
        c = fprintf(f, " causal=");
        c += print_bool(f, a->flag);
        return c + print_named_double(f, "scale", a->value);
    default: return 0;
    }
}

static const ValueInfo *value_info(const Graph *g, Value v)
{
    return v.id > 0 && (int32_t)v.id < g->values.len ? &g->values.data[v.id]
                                                     : NULL;
}

/* `# name` or `# h, -, hs` when any result has a source name. */
static void print_hint(FILE *f, const Graph *g, const Node *n, int col)
{
    bool any = false;
    for (int i = 0; i < n->n_out && n->out; i++) {
        const ValueInfo *vi = value_info(g, n->out[i]);
        any |= vi && vi->name;
    }
    if (!any)
        return;
    fprintf(f, "%*s# ", col < HINT_COLUMN - 1 ? HINT_COLUMN - col : 2, "");
    for (int i = 0; i < n->n_out; i++) {
        const ValueInfo *vi = value_info(g, n->out[i]);
        fprintf(f, "%s", i ? ", " : "");
        if (vi && vi->name)
            print_name(f, vi->name);
        else
            fprintf(f, "-");
    }
}

static void print_node(FILE *f, const Module *m, const Graph *g, const Node *n,
                       const int32_t *num, int32_t first)
{
    int col = fprintf(f, "  ");
    for (int i = 0; i < n->n_out; i++)
        col += fprintf(f, "%s%%%d", i ? ", " : "", (int)(first + i));
    const char *name = op_name(n->op);
    col +=
        name ? fprintf(f, " = %s", name) : fprintf(f, " = op?%d", (int)n->op);
    col += print_prefix_attrs(f, m, n);
    for (int i = 0; i < n->n_in && n->in; i++) {
        col += fprintf(f, "%s", i ? ", " : " ");
        col += print_value(f, g, num, n->in[i]);
    }
    col += print_suffix_attrs(f, g, n);
    col += fprintf(f, " :");
    for (int i = 0; i < n->n_out && n->out; i++) {
        const ValueInfo *vi = value_info(g, n->out[i]);
        col += fprintf(f, "%s", i ? ", " : " ");
        col += vi ? print_type(f, &vi->type) : fprintf(f, "?type");
    }
    print_hint(f, g, n, col);
    fprintf(f, "\n");
}

/* ---- graphs and the module ----------------------------------------------- */

static void print_return(FILE *f, const Graph *g, const int32_t *num)
{
    fprintf(f, "  return");
    for (int32_t i = 0; i < g->results.len; i++) {
        fprintf(f, "%s", i ? ", " : " ");
        const char *name =
            i < g->result_names.len ? g->result_names.data[i] : NULL;
        if (name) {
            print_name(f, name);
            fprintf(f, "=");
        }
        print_value(f, g, num, g->results.data[i]);
    }
    fprintf(f, "\n");
}

void ir_print_graph(FILE *f, const Module *m, const Graph *g)
{
    fprintf(f, "graph ");
    print_name(f, g->name);
    if (g->n_args)
        fprintf(f, "(args=%d)", (int)g->n_args);
    fprintf(f, " {\n");
    int32_t *num = number_values(g);
    int32_t next = 0;
    for (int32_t k = 0; k < g->nodes.len; k++) {
        print_node(f, m, g, &g->nodes.data[k], num, next);
        next += g->nodes.data[k].n_out > 0 ? g->nodes.data[k].n_out : 0;
    }
    print_return(f, g, num);
    fprintf(f, "}\n");
    free(num);
}

/* Width of the widest name in a declaration section, for alignment (a
 * macro: dims, inputs and params are vectors of different element types). */
#define NAME_WIDTH(vec, out)                                                   \
    do {                                                                       \
        (out) = 0;                                                             \
        for (int32_t i_ = 0; i_ < (vec).len; i_++) {                           \
            const char *s_ = (vec).data[i_].name;                              \
            int w_ = name_is_word(s_) ? (int)strlen(s_) : 0;                   \
            (out) = w_ > (out) ? w_ : (out);                                   \
        }                                                                      \
    } while (0)

static void print_padded_name(FILE *f, const char *name, int width)
{
    int n = print_name(f, name);
    fprintf(f, "%*s", n < width ? width - n : 0, "");
}

static void print_dims(FILE *f, const Module *m)
{
    int w;
    NAME_WIDTH(m->dims, w);
    for (int32_t i = 0; i < m->dims.len; i++) {
        fprintf(f, "dim ");
        print_padded_name(f, m->dims.data[i].name, w);
        fprintf(f, " = %lld\n", (long long)m->dims.data[i].value);
    }
}

static void print_inputs(FILE *f, const Module *m)
{
    int w;
    NAME_WIDTH(m->inputs, w);
    for (int32_t i = 0; i < m->inputs.len; i++) {
        fprintf(f, "input ");
        print_padded_name(f, m->inputs.data[i].name, w);
        fprintf(f, " : ");
        print_type(f, &m->inputs.data[i].type);
        fprintf(f, "\n");
    }
}

static void print_init(FILE *f, const Init *in)
{
    if ((unsigned)in->kind >= INIT_COUNT) {
        fprintf(f, "init?%d", (int)in->kind);
        return;
    }
    fprintf(f, "%s", ir_init_names[in->kind]);
    if (in->kind == INIT_CONST) {
        fprintf(f, "(");
        print_double(f, in->a);
        fprintf(f, ")");
    } else if (in->kind == INIT_UNIFORM || in->kind == INIT_NORMAL) {
        fprintf(f, "(");
        print_double(f, in->a);
        fprintf(f, ", ");
        print_double(f, in->b);
        fprintf(f, ")");
    }
}

static void print_params(FILE *f, const Module *m)
{
    int w, tw = 0;
    NAME_WIDTH(m->params, w);
    for (int32_t i = 0; i < m->params.len; i++) {
        int n = print_type(NULL, &m->params.data[i].type);
        tw = n > tw ? n : tw;
    }
    for (int32_t i = 0; i < m->params.len; i++) {
        const ParamDecl *p = &m->params.data[i];
        fprintf(f, "param ");
        print_padded_name(f, p->name, w);
        fprintf(f, " : ");
        int n = print_type(f, &p->type);
        fprintf(f, "%*s = ", n < tw ? tw - n : 0, "");
        print_init(f, &p->init);
        fprintf(f, "%s\n", p->frozen ? " frozen" : "");
    }
}

/* Every option of the train spec, whatever the optimizer, in one order. */
static void print_train(FILE *f, const TrainSpec *t)
{
    if (t->opt == OPT_NONE)
        return;
    if ((unsigned)t->opt > OPT_ADAMW)
        fprintf(f, "train opt?%d(", (int)t->opt);
    else
        fprintf(f, "train %s(", ir_opt_names[t->opt]);
    fprintf(f, "lr=");
    print_double(f, t->lr);
    fprintf(f, ", momentum=");
    print_double(f, t->momentum);
    fprintf(f, ", nesterov=");
    print_bool(f, t->nesterov);
    fprintf(f, ", beta1=");
    print_double(f, t->beta1);
    fprintf(f, ", beta2=");
    print_double(f, t->beta2);
    fprintf(f, ", eps=");
    print_double(f, t->eps);
    fprintf(f, ", weight_decay=");
    print_double(f, t->weight_decay);
    fprintf(f, ", clip_grad_norm=");
    print_double(f, t->clip_grad_norm);
    fprintf(f, ")\n");
}

void ir_print_module(FILE *f, const Module *m)
{
    fprintf(f, "model ");
    print_name(f, m->name);
    fprintf(f, "\n");
    if (m->dims.len) {
        fprintf(f, "\n");
        print_dims(f, m);
    }
    if (m->inputs.len) {
        fprintf(f, "\n");
        print_inputs(f, m);
    }
    if (m->params.len) {
        fprintf(f, "\n");
        print_params(f, m);
    }
    fprintf(f, "\n");
    print_train(f, &m->train);
    fprintf(f, "outputs %d\n", (int)m->n_outputs);
    if (m->n_grads)
        fprintf(f, "grads %d\n", (int)m->n_grads);
    for (int32_t i = 0; i < m->graphs.len; i++) {
        fprintf(f, "\n");
        if (m->graphs.data[i])
            ir_print_graph(f, m, m->graphs.data[i]);
        else
            fprintf(f, "graph ?null {\n}\n");
    }
}
