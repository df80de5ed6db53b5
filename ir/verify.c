/* verify.c — the IR verifier: checks every invariant passes rely on.
 *
 * Run by the pass manager after every pass (always in tests) and by the
 * reader on what it built.  A failure is a compiler bug, never a user
 * error, so the first problem is reported as one line
 *
 *   graph NAME: node %N (op): PROBLEM
 *
 * where %N is the number the node's first result has in the text dump
 * (print.c), so the message points into `--dump-after` output.  Problems
 * outside a node read "graph NAME: PROBLEM" or "module NAME: PROBLEM".
 *
 * The checks run in three sweeps so that no check reads through a broken
 * id: declarations; the structure of every graph (ids in range, SSA order,
 * arities, leaf indices, scan references, results); then scan cycles and
 * types, re-inferred with ir_infer (shape.c) on a copy of the attributes.
 * The verifier never trusts the module and never crashes on a corrupt one. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

typedef struct Verifier {
    const Module *m;
    char *err;
    size_t errlen;
    const Graph *g; /* graph being checked */
    int32_t *first; /* per node of g: the %N of its first result */
} Verifier;

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        ir_internal_error("verify", "out of memory");
    return p;
}

/* ---- messages ------------------------------------------------------------ */

static bool vfail(Verifier *v, const char *prefix, const char *fmt, va_list ap)
{
    if (!v->err || v->errlen == 0)
        return false;
    size_t n = (size_t)snprintf(v->err, v->errlen, "%s", prefix);
    if (n < v->errlen)
        vsnprintf(v->err + n, v->errlen - n, fmt, ap);
    return false;
}

__attribute__((format(printf, 2, 3))) static bool
fail_module(Verifier *v, const char *fmt, ...)
{
    char prefix[160];
    snprintf(prefix, sizeof prefix,
             "module %s: ", v->m->name ? v->m->name : "?");
    va_list ap;
    va_start(ap, fmt);
    vfail(v, prefix, fmt, ap);
    va_end(ap);
    return false;
}

__attribute__((format(printf, 2, 3))) static bool
fail_graph(Verifier *v, const char *fmt, ...)
{
    char prefix[160];
    snprintf(prefix, sizeof prefix,
             "graph %s: ", v->g->name ? v->g->name : "?");
    va_list ap;
    va_start(ap, fmt);
    vfail(v, prefix, fmt, ap);
    va_end(ap);
    return false;
}

__attribute__((format(printf, 3, 4))) static bool
fail_node(Verifier *v, int32_t k, const char *fmt, ...)
{
    const Node *n = &v->g->nodes.data[k];
    char prefix[200], opbuf[24];
    const char *op =
        (unsigned)n->op < OP_COUNT ? ir_op_info[n->op].name : opbuf;
    snprintf(opbuf, sizeof opbuf, "op %d", (int)n->op);
    snprintf(prefix, sizeof prefix,
             "graph %s: node %%%d (%s): ", v->g->name ? v->g->name : "?",
             (int)v->first[k], op);
    va_list ap;
    va_start(ap, fmt);
    vfail(v, prefix, fmt, ap);
    va_end(ap);
    return false;
}

static const char *plural(int64_t n) { return n == 1 ? "" : "s"; }

static const char *type_str(const Type *t, char *buf, size_t len)
{
    if (t->rank < 0 || t->rank > IR_MAX_RANK) {
        snprintf(buf, len, "<rank %d>", (int)t->rank);
        return buf;
    }
    return ir_type_str(t, buf, len);
}

/* ---- declarations -------------------------------------------------------- */

static bool type_valid(const Type *t)
{
    if ((t->dtype != DT_F32 && t->dtype != DT_I32) || t->rank < 0 ||
        t->rank > IR_MAX_RANK)
        return false;
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < 1)
            return false;
    return true;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name that occurs twice in names[0..n), or NULL (sorts names). */
static const char *find_duplicate(const char **names, int32_t n)
{
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    for (int32_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            return names[i];
    return NULL;
}

/* Names are looked up by name in the text form, so they must be unique. */
static bool check_unique(Verifier *v, const char *what, const char **names,
                         int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        if (!names[i]) {
            free(names);
            return fail_module(v, "%s %d has no name", what, (int)i);
        }
    const char *dup = find_duplicate(names, n);
    if (dup) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", dup);
        free(names);
        return fail_module(v, "two %ss are named %s", what, msg);
    }
    free(names);
    return true;
}

/* names = the .name of every element of a declaration vector (a macro:
 * dims, inputs and params are vectors of different element types). */
#define COLLECT_NAMES(vec, names)                                              \
    do {                                                                       \
        (names) = xcalloc((size_t)(vec).len, sizeof *(names));                 \
        for (int32_t i_ = 0; i_ < (vec).len; i_++)                             \
            (names)[i_] = (vec).data[i_].name;                                 \
    } while (0)

static bool verify_decl_types(Verifier *v)
{
    const Module *m = v->m;
    for (int32_t i = 0; i < m->inputs.len; i++)
        if (!type_valid(&m->inputs.data[i].type))
            return fail_module(v, "input %s has an invalid type",
                               m->inputs.data[i].name);
    for (int32_t i = 0; i < m->params.len; i++) {
        if (!type_valid(&m->params.data[i].type))
            return fail_module(v, "param %s has an invalid type",
                               m->params.data[i].name);
        if ((unsigned)m->params.data[i].init.kind >= INIT_COUNT)
            return fail_module(v, "param %s has an unknown initializer",
                               m->params.data[i].name);
    }
    if ((unsigned)m->train.opt > OPT_ADAMW)
        return fail_module(v, "unknown optimizer %d", (int)m->train.opt);
    if (m->n_outputs < 0)
        return fail_module(v, "negative output count %d", (int)m->n_outputs);
    return true;
}

static bool verify_decls(Verifier *v)
{
    const Module *m = v->m;
    const char **names;
    COLLECT_NAMES(m->dims, names);
    if (!check_unique(v, "dim", names, m->dims.len))
        return false;
    COLLECT_NAMES(m->inputs, names);
    if (!check_unique(v, "input", names, m->inputs.len))
        return false;
    COLLECT_NAMES(m->params, names);
    if (!check_unique(v, "param", names, m->params.len))
        return false;
    if (m->graphs.len < 1)
        return fail_module(v, "no main graph");
    names = xcalloc((size_t)m->graphs.len, sizeof *names);
    for (int32_t i = 0; i < m->graphs.len; i++) {
        const Graph *g = m->graphs.data[i];
        if (!g || g->id != i) {
            free(names);
            return fail_module(v, "graphs[%d] is %s", (int)i,
                               g ? "numbered wrongly" : "missing");
        }
        names[i] = g->name;
    }
    return check_unique(v, "graph", names, m->graphs.len) &&
           verify_decl_types(v);
}

/* ---- structure of one graph ---------------------------------------------- */

static bool value_in_range(const Graph *g, Value x)
{
    return x.id > 0 && (int32_t)x.id < g->values.len;
}

/* Operand i of node k: an existing value defined by an earlier node. */
static bool check_operand(Verifier *v, int32_t k, int i)
{
    const Graph *g = v->g;
    Value x = g->nodes.data[k].in[i];
    if (!value_in_range(g, x))
        return fail_node(v, k, "operand %d: value id %u out of range", i, x.id);
    const ValueInfo *vi = &g->values.data[x.id];
    if (vi->def < 0 || vi->def >= g->nodes.len)
        return fail_node(v, k, "operand %d: value id %u has no defining node",
                         i, x.id);
    const Node *d = &g->nodes.data[vi->def];
    if (vi->result < 0 || vi->result >= d->n_out || !d->out ||
        d->out[vi->result].id != x.id)
        return fail_node(
            v, k,
            "operand %d: value id %u is not a result of its defining node", i,
            x.id);
    if (vi->def >= k)
        return fail_node(v, k, "operand %d: %%%d is used before its definition",
                         i, (int)(v->first[vi->def] + vi->result));
    return true;
}

/* Result i of node k: an id of its own, recorded as defined here. */
static bool check_result(Verifier *v, int32_t k, int i)
{
    const Graph *g = v->g;
    Value x = g->nodes.data[k].out[i];
    if (!value_in_range(g, x))
        return fail_node(v, k, "result %d: value id %u out of range", i, x.id);
    const ValueInfo *vi = &g->values.data[x.id];
    if (vi->def != k || vi->result != i)
        return fail_node(
            v, k,
            "result %d: value id %u is recorded as defined by node %d "
            "result %d",
            i, x.id, (int)vi->def, (int)vi->result);
    char buf[96];
    if (!type_valid(&vi->type))
        return fail_node(v, k, "result %d has an invalid type %s", i,
                         type_str(&vi->type, buf, sizeof buf));
    return true;
}

static bool check_counts(Verifier *v, int32_t k)
{
    const Node *n = &v->g->nodes.data[k];
    if ((unsigned)n->op >= OP_COUNT)
        return fail_node(v, k, "unknown op");
    if (n->n_in < 0 || n->n_out < 0 || (n->n_in && !n->in) ||
        (n->n_out && !n->out))
        return fail_node(v, k, "broken operand or result array");
    const OpInfo *info = &ir_op_info[n->op];
    if (info->arity >= 0 && n->n_in != info->arity)
        return fail_node(v, k, "has %d operand%s, %s takes %d", (int)n->n_in,
                         plural(n->n_in), info->name, info->arity);
    if (info->arity < 0 && n->n_in < 1)
        return fail_node(v, k, "has no operands");
    if (!(info->flags & OPF_MULTI) && n->n_out != 1)
        return fail_node(v, k, "has %d result%s, %s has 1", (int)n->n_out,
                         plural(n->n_out), info->name);
    if ((info->flags & OPF_MULTI) && n->n_out < 1)
        return fail_node(v, k, "has no results");
    return true;
}

/* The name of an attribute field the op does not use but is set, or NULL:
 * unused fields must be zero so that ir_attrs_eq and the text form, which
 * prints only used fields, see every difference. */
static const char *stray_attr(Op op, const Attrs *a, int rank)
{
    static const Type zero_type;
    static const double zero_value;
    bool leaf = op == OP_INPUT || op == OP_PARAM || op == OP_ARG;
    bool scan = op == OP_SCAN, reduce = ir_op_info[op].flags & OPF_REDUCE;
    bool graph = ir_op_info[op].flags & OPF_GRAPH;
    bool attention = op == OP_ATTENTION || op == OP_ATTENTION_GRAD;
    bool axis = op == OP_SOFTMAX || op == OP_LOG_SOFTMAX || op == OP_CONCAT;
    bool value = op == OP_CONST || op == OP_POW || op == OP_LAYERNORM ||
                 op == OP_RMSNORM || op == OP_DROPOUT || attention;
    bool type = leaf || op == OP_CONST || op == OP_RESHAPE ||
                op == OP_BROADCAST_TO || op == OP_SCATTER_ADD ||
                op == OP_ONE_HOT;
    bool index = leaf || op == OP_DROPOUT; /* dropout: its site */
    if ((!index && a->index) || (!graph && a->graph))
        return !index && a->index ? "index" : "graph";
    if (!scan && (a->n_carry || a->n_over))
        return a->n_carry ? "n_carry" : "n_over";
    if ((!axis && a->axis) || (!reduce && (a->axes || a->keepdims)))
        return !axis && a->axis ? "axis" : a->axes ? "axes" : "keepdims";
    if (!scan && !attention && a->flag)
        return "flag";
    for (int i = op == OP_PERMUTE ? rank : 0; i < IR_MAX_RANK; i++)
        if (a->perm[i])
            return "perm";
    for (int i = op == OP_SLICE ? rank : 0; i < IR_MAX_RANK; i++)
        if (a->start[i] || a->stop[i])
            return a->start[i] ? "start" : "stop";
    if (!value && memcmp(&a->value, &zero_value, sizeof zero_value) != 0)
        return "value";
    if (!type && !ir_type_eq(&a->type, &zero_type))
        return "type";
    return NULL;
}

/* A fused op's body computes elementwise: args, constants, elementwise
 * ops (one iteration shape is the codegen's business), and for fused a
 * reduction only as the body's single result. */
static bool check_fused_body(Verifier *v, int32_t k)
{
    const Node *n = &v->g->nodes.data[k];
    const Graph *body = v->m->graphs.data[n->attr.graph];
    for (int32_t i = 0; i < body->nodes.len; i++) {
        const Node *b = &body->nodes.data[i];
        unsigned f = ir_op_info[b->op].flags;
        if (f & (OPF_UNARY | OPF_BINARY) || b->op == OP_WHERE ||
            b->op == OP_ARG || b->op == OP_CONST)
            continue;
        bool last_reduce = n->op == OP_FUSED && (f & OPF_REDUCE) &&
                           body->results.len == 1 && b->n_out == 1 &&
                           body->results.data[0].id == b->out[0].id;
        if (!last_reduce)
            return fail_node(v, k, "body graph %s holds %s, which %s cannot "
                                   "fuse",
                             body->name, ir_op_info[b->op].name,
                             ir_op_info[n->op].name);
    }
    return true;
}

/* Leaf indices and scan references, which later sweeps read through. */
static bool check_refs(Verifier *v, int32_t k, bool *arg_seen)
{
    const Module *m = v->m;
    const Graph *g = v->g;
    const Node *n = &g->nodes.data[k];
    const Attrs *a = &n->attr;
    int32_t idx = a->index;
    if (n->op == OP_INPUT && (idx < 0 || idx >= m->inputs.len))
        return fail_node(v, k, "input %d out of range (%d input%s)", (int)idx,
                         (int)m->inputs.len, plural(m->inputs.len));
    if (n->op == OP_PARAM && (idx < 0 || idx >= m->params.len))
        return fail_node(v, k, "param %d out of range (%d param%s)", (int)idx,
                         (int)m->params.len, plural(m->params.len));
    if (n->op == OP_DROPOUT && idx < 0)
        return fail_node(v, k, "negative dropout site %d", (int)idx);
    if (n->op == OP_ARG) {
        if (idx < 0 || idx >= g->n_args)
            return fail_node(v, k, "arg %d out of range (graph has %d arg%s)",
                             (int)idx, (int)g->n_args, plural(g->n_args));
        if (arg_seen[idx])
            return fail_node(v, k, "arg %d is defined twice", (int)idx);
        arg_seen[idx] = true;
    }
    if (ir_op_info[n->op].flags & OPF_GRAPH) {
        if (a->graph < 0 || a->graph >= m->graphs.len)
            return fail_node(v, k, "body graph %d does not exist",
                             (int)a->graph);
        if (a->graph == 0)
            return fail_node(v, k, "body is the main graph");
        if (a->graph == g->id)
            return fail_node(v, k, "body is its own graph");
        if (n->op != OP_SCAN && !check_fused_body(v, k))
            return false;
        if (n->op == OP_SCAN && (a->n_carry < 0 || a->n_over < 0 ||
            (int64_t)a->n_carry + a->n_over > n->n_in))
            return fail_node(v, k,
                             "carries=%d and over=%d do not fit %d operands",
                             (int)a->n_carry, (int)a->n_over, (int)n->n_in);
    }
    int rank = n->n_in > 0 ? g->values.data[n->in[0].id].type.rank : 0;
    const char *stray = stray_attr(n->op, a, rank);
    if (stray)
        return fail_node(v, k, "attribute %s is set but %s does not use it",
                         stray, ir_op_info[n->op].name);
    return true;
}

static bool check_node(Verifier *v, int32_t k, bool *arg_seen)
{
    const Node *n = &v->g->nodes.data[k];
    if (!check_counts(v, k))
        return false;
    for (int i = 0; i < n->n_out; i++)
        if (!check_result(v, k, i))
            return false;
    for (int i = 0; i < n->n_in; i++)
        if (!check_operand(v, k, i))
            return false;
    return check_refs(v, k, arg_seen);
}

static bool check_graph_results(Verifier *v)
{
    const Graph *g = v->g;
    if (g->result_names.len != g->results.len)
        return fail_graph(v, "%d result%s but %d result name%s",
                          (int)g->results.len, plural(g->results.len),
                          (int)g->result_names.len,
                          plural(g->result_names.len));
    for (int32_t i = 0; i < g->results.len; i++) {
        Value x = g->results.data[i];
        if (!value_in_range(g, x))
            return fail_graph(v, "result %d: value id %u out of range", (int)i,
                              x.id);
        const ValueInfo *vi = &g->values.data[x.id];
        if (vi->def < 0 || vi->def >= g->nodes.len ||
            vi->result >= g->nodes.data[vi->def].n_out ||
            g->nodes.data[vi->def].out[vi->result].id != x.id)
            return fail_graph(v,
                              "result %d: value id %u is not defined by a node",
                              (int)i, x.id);
    }
    return true;
}

/* After autodiff (n_grads > 0): one gradient per trainable param, in
 * declaration order, each of its param's type. */
static bool check_grad_results(Verifier *v, int32_t first)
{
    const Module *m = v->m;
    const Graph *g = v->g;
    int32_t k = first;
    char a[96], b[96];
    for (int32_t i = 0; i < m->params.len; i++) {
        const ParamDecl *p = &m->params.data[i];
        if (p->frozen)
            continue;
        const Type *t = &g->values.data[g->results.data[k].id].type;
        if (!ir_type_eq(t, &p->type))
            return fail_graph(v, "the gradient of %s has type %s, not %s",
                              p->name, type_str(t, a, sizeof a),
                              type_str(&p->type, b, sizeof b));
        k++;
    }
    return true;
}

/* The main graph returns the outputs, then the scalar loss if training,
 * then (after autodiff) the gradients. */
static bool check_main_results(Verifier *v)
{
    const Module *m = v->m;
    const Graph *g = v->g;
    bool train = m->train.opt != OPT_NONE;
    int32_t trainable = 0;
    for (int32_t i = 0; i < m->params.len; i++)
        trainable += !m->params.data[i].frozen;
    if (m->n_grads != 0 && (!train || m->n_grads != trainable))
        return fail_module(v, "%d gradients, but the module has %d "
                              "trainable param%s%s",
                           (int)m->n_grads, (int)trainable, plural(trainable),
                           train ? "" : " and no train");
    int32_t want = m->n_outputs + (train ? 1 : 0);
    if (g->results.len != want + m->n_grads)
        return fail_graph(v, "%d result%s, but the module has %d output%s%s%s",
                          (int)g->results.len, plural(g->results.len),
                          (int)m->n_outputs, plural(m->n_outputs),
                          train ? " and a loss" : "",
                          m->n_grads ? " and gradients" : "");
    if (!train)
        return true;
    const ValueInfo *loss = &g->values.data[g->results.data[want - 1].id];
    Type scalar = ir_type_scalar(DT_F32);
    char buf[96];
    if (!ir_type_eq(&loss->type, &scalar))
        return fail_graph(v, "the loss has type %s, not f32[]",
                          type_str(&loss->type, buf, sizeof buf));
    return m->n_grads == 0 || check_grad_results(v, want);
}

static bool verify_structure_with(Verifier *v, bool *arg_seen)
{
    const Graph *g = v->g;
    for (int32_t k = 0; k < g->nodes.len; k++)
        if (!check_node(v, k, arg_seen))
            return false;
    for (int32_t i = 0; i < g->n_args; i++)
        if (!arg_seen[i])
            return fail_graph(v, "arg %d is never defined", (int)i);
    if (!check_graph_results(v))
        return false;
    return g->id != 0 || check_main_results(v);
}

/* first[k] = the %N of node k's first result, as the printer numbers them. */
static int32_t *number_nodes(const Graph *g)
{
    int32_t *first = xcalloc((size_t)g->nodes.len + 1, sizeof *first);
    int64_t next = 0;
    for (int32_t k = 0; k < g->nodes.len; k++) {
        first[k] = (int32_t)next;
        next += g->nodes.data[k].n_out > 0 ? g->nodes.data[k].n_out : 0;
        if (next > INT32_MAX)
            next = INT32_MAX;
    }
    return first;
}

static bool verify_structure(Verifier *v)
{
    const Graph *g = v->g;
    if (!g->name)
        return fail_module(v, "graph %d has no name", (int)g->id);
    if (g->values.len < 1 || g->nodes.len < 0 || g->results.len < 0)
        return fail_graph(v, "broken value table");
    if (g->id == 0 && g->n_args != 0)
        return fail_graph(v, "the main graph takes no args, but n_args is %d",
                          (int)g->n_args);
    if (g->n_args < 0 || g->n_args > g->nodes.len)
        return fail_graph(v, "n_args is %d, but the graph has %d nodes",
                          (int)g->n_args, (int)g->nodes.len);
    bool *arg_seen = xcalloc((size_t)g->n_args, sizeof *arg_seen);
    bool ok = verify_structure_with(v, arg_seen);
    free(arg_seen);
    return ok;
}

/* ---- scan cycles --------------------------------------------------------- */

/* Depth-first search over "graph runs graph" edges with an explicit stack;
 * a scan whose body is still on the stack closes a cycle. */
static bool verify_no_cycles(Verifier *v)
{
    const Module *m = v->m;
    int32_t n = m->graphs.len;
    char *state = xcalloc((size_t)n, 1); /* 0 new, 1 on stack, 2 done */
    int32_t *stack = xcalloc((size_t)n, sizeof *stack),
            *next = xcalloc((size_t)n, sizeof *next);
    bool ok = true;
    for (int32_t root = 0; root < n && ok; root++) {
        if (state[root])
            continue;
        int32_t sp = 0;
        stack[sp++] = root;
        state[root] = 1;
        while (sp > 0 && ok) {
            const Graph *g = m->graphs.data[stack[sp - 1]];
            int32_t k = next[g->id]++;
            if (k >= g->nodes.len) {
                state[g->id] = 2;
                sp--;
                continue;
            }
            if (!(ir_op_info[g->nodes.data[k].op].flags & OPF_GRAPH))
                continue;
            int32_t body = g->nodes.data[k].attr.graph;
            if (state[body] == 1) {
                v->g = g;
                v->first = number_nodes(g);
                ok = fail_node(v, k, "graph %s runs itself through its body graphs",
                               m->graphs.data[body]->name);
                free(v->first);
            } else if (state[body] == 0) {
                state[body] = 1;
                stack[sp++] = body;
            }
        }
    }
    free(state);
    free(stack);
    free(next);
    return ok;
}

/* ---- types --------------------------------------------------------------- */

/* A leaf's type is its declaration's (the argument's for ARG).  shape.c
 * returns attr.type for leaves, so the builder stores it there; graphs
 * built with ir_add_typed may leave it zero instead. */
static bool check_leaf_type(Verifier *v, int32_t k, const Type *t)
{
    const Node *n = &v->g->nodes.data[k];
    const Module *m = v->m;
    static const Type zero;
    char a[96], b[96];
    if (!ir_type_eq(&n->attr.type, t) && !ir_type_eq(&n->attr.type, &zero))
        return fail_node(
            v, k, "attribute type %s differs from the result type %s",
            type_str(&n->attr.type, a, sizeof a), type_str(t, b, sizeof b));
    if (n->op == OP_ARG)
        return true;
    const Type *decl = n->op == OP_INPUT ? &m->inputs.data[n->attr.index].type
                                         : &m->params.data[n->attr.index].type;
    const char *name = n->op == OP_INPUT ? m->inputs.data[n->attr.index].name
                                         : m->params.data[n->attr.index].name;
    if (!ir_type_eq(t, decl))
        return fail_node(v, k, "type %s differs from %s %s : %s",
                         type_str(t, a, sizeof a),
                         n->op == OP_INPUT ? "input" : "param", name,
                         type_str(decl, b, sizeof b));
    return true;
}

static bool check_inferred(Verifier *v, int32_t k, const Type *got, int n_got,
                           const char *why)
{
    const Node *n = &v->g->nodes.data[k];
    if (n_got <= 0)
        return fail_node(v, k, "does not type-check: %s", why);
    if (n_got != n->n_out)
        return fail_node(v, k, "has %d result%s, but %s gives %d",
                         (int)n->n_out, plural(n->n_out),
                         ir_op_info[n->op].name, n_got);
    char a[96], b[96];
    for (int i = 0; i < n_got; i++) {
        const Type *t = &v->g->values.data[n->out[i].id].type;
        if (!ir_type_eq(t, &got[i]))
            return fail_node(v, k, "result %d has type %s, but %s gives %s", i,
                             type_str(t, a, sizeof a), ir_op_info[n->op].name,
                             type_str(&got[i], b, sizeof b));
    }
    return true;
}

static bool check_types(Verifier *v, int32_t k)
{
    const Graph *g = v->g;
    const Node *n = &g->nodes.data[k];
    if (n->op == OP_INPUT || n->op == OP_PARAM || n->op == OP_ARG)
        return check_leaf_type(v, k, &g->values.data[n->out[0].id].type);
    Type *in = xcalloc((size_t)n->n_in, sizeof *in);
    int max_out = n->n_out + 16;
    Type *out = xcalloc((size_t)max_out, sizeof *out);
    for (int i = 0; i < n->n_in; i++)
        in[i] = g->values.data[n->in[i].id].type;
    Attrs copy = n->attr;
    char why[256] = "";
    int got = ir_infer(v->m, n->op, in, n->n_in, &copy, out, max_out, why,
                       sizeof why);
    bool ok = check_inferred(v, k, out, got, why);
    free(in);
    free(out);
    return ok;
}

static bool verify_types(Verifier *v)
{
    for (int32_t k = 0; k < v->g->nodes.len; k++)
        if (!check_types(v, k))
            return false;
    return true;
}

/* ---- entry --------------------------------------------------------------- */

/* Runs `sweep` on every graph with v->g and v->first set. */
static bool each_graph(Verifier *v, bool (*sweep)(Verifier *))
{
    for (int32_t i = 0; i < v->m->graphs.len; i++) {
        v->g = v->m->graphs.data[i];
        v->first = number_nodes(v->g);
        bool ok = sweep(v);
        free(v->first);
        v->first = NULL;
        if (!ok)
            return false;
    }
    return true;
}

bool ir_verify_module(const Module *m, char *err, size_t errlen)
{
    Verifier v = {.m = m, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = 0;
    return verify_decls(&v) && each_graph(&v, verify_structure) &&
           verify_no_cycles(&v) && each_graph(&v, verify_types);
}
