/* dot.c — the module as a Graphviz digraph (`nnc --emit dot`).
 *
 * One cluster per graph (main first, then the scan bodies in id order), one
 * box per node labelled "%N = op" with its leaf or scan reference and its
 * result types, one edge per operand (numbered when the order matters), a
 * "return" node per graph, and a dashed edge from each scan to its body's
 * cluster.  Ids are the text IR's %N numbers and cluster/graph indices,
 * never pointers, so the output is deterministic and diffable.  Like the
 * text printer it tolerates a corrupt module (bad ids print as `?`). */
#include "ir.h"

#include <stdlib.h>

/* Writes s as the inside of a DOT string: quotes and backslashes escaped,
 * non-printable bytes as '?'. */
static void dot_escape(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : "?"); *p;
         p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', f);
        fputc(*p >= 0x20 && *p < 0x7f ? *p : '?', f);
    }
}

static bool value_ok(const Graph *g, Value v)
{
    return v.id > 0 && (int32_t)v.id < g->values.len;
}

/* The node index defining v, or -1. */
static int32_t def_of(const Graph *g, Value v)
{
    if (!value_ok(g, v))
        return -1;
    int32_t d = g->values.data[v.id].def;
    return d >= 0 && d < g->nodes.len ? d : -1;
}

static void dot_type(FILE *f, const Type *t)
{
    char buf[200];
    if (t->rank < 0 || t->rank > IR_MAX_RANK)
        fprintf(f, "?type");
    else
        fprintf(f, "%s", ir_type_str(t, buf, sizeof buf));
}

/* " @x", " @W1", " 0", " 0.5", " @body": what a leaf or scan refers to. */
static void dot_reference(FILE *f, const Module *m, const Node *n)
{
    const Attrs *a = &n->attr;
    if (n->op == OP_INPUT && a->index >= 0 && a->index < m->inputs.len) {
        fprintf(f, " @");
        dot_escape(f, m->inputs.data[a->index].name);
    } else if (n->op == OP_PARAM && a->index >= 0 && a->index < m->params.len) {
        fprintf(f, " @");
        dot_escape(f, m->params.data[a->index].name);
    } else if (n->op == OP_ARG) {
        fprintf(f, " %d", (int)a->index);
    } else if (n->op == OP_CONST) {
        fprintf(f, " %g", a->value);
    } else if ((ir_op_info[n->op].flags & OPF_GRAPH) && a->graph >= 0 &&
               a->graph < m->graphs.len &&
               m->graphs.data[a->graph]) {
        fprintf(f, " @");
        dot_escape(f, m->graphs.data[a->graph]->name);
    }
}

static void dot_node(FILE *f, const Module *m, const Graph *g, int32_t k,
                     int32_t first)
{
    const Node *n = &g->nodes.data[k];
    fprintf(f, "    g%d_n%d [label=\"", (int)g->id, (int)k);
    for (int i = 0; i < n->n_out; i++)
        fprintf(f, "%s%%%d", i ? ", " : "", (int)(first + i));
    fprintf(f, " = %s",
            (unsigned)n->op < OP_COUNT ? ir_op_info[n->op].name : "?op");
    dot_reference(f, m, n);
    for (int i = 0; i < n->n_out && n->out; i++) {
        fprintf(f, "%s", i ? ", " : "\\n");
        if (value_ok(g, n->out[i]))
            dot_type(f, &g->values.data[n->out[i].id].type);
        else
            fprintf(f, "?");
    }
    fprintf(f, "\"];\n");
}

/* Operand edges, labelled with the operand's position when there are
 * several and with the result's when the producer has several. */
static void dot_operand_edges(FILE *f, const Graph *g, int32_t k)
{
    const Node *n = &g->nodes.data[k];
    for (int i = 0; i < n->n_in && n->in; i++) {
        int32_t d = def_of(g, n->in[i]);
        if (d < 0)
            continue;
        fprintf(f, "    g%d_n%d -> g%d_n%d", (int)g->id, (int)d, (int)g->id,
                (int)k);
        if (n->n_in > 1)
            fprintf(f, " [label=\"%d\"]", i);
        if (g->nodes.data[d].n_out > 1)
            fprintf(f, " [taillabel=\"%d\"]",
                    (int)g->values.data[n->in[i].id].result);
        fprintf(f, ";\n");
    }
}

static void dot_return(FILE *f, const Graph *g)
{
    fprintf(f, "    g%d_ret [shape=ellipse, label=\"return\"];\n", (int)g->id);
    for (int32_t i = 0; i < g->results.len; i++) {
        int32_t d = def_of(g, g->results.data[i]);
        if (d < 0)
            continue;
        const char *name =
            i < g->result_names.len ? g->result_names.data[i] : NULL;
        fprintf(f, "    g%d_n%d -> g%d_ret [label=\"", (int)g->id, (int)d,
                (int)g->id);
        if (name)
            dot_escape(f, name);
        else
            fprintf(f, "%d", (int)i);
        fprintf(f, "\"];\n");
    }
}

static void dot_graph(FILE *f, const Module *m, const Graph *g)
{
    fprintf(f, "  subgraph cluster_g%d {\n    label=\"graph ", (int)g->id);
    dot_escape(f, g->name);
    fprintf(f, "\";\n");
    int32_t first = 0;
    for (int32_t k = 0; k < g->nodes.len; k++) {
        dot_node(f, m, g, k, first);
        first += g->nodes.data[k].n_out > 0 ? g->nodes.data[k].n_out : 0;
    }
    for (int32_t k = 0; k < g->nodes.len; k++)
        dot_operand_edges(f, g, k);
    dot_return(f, g);
    fprintf(f, "  }\n");
}

/* Dashed edges from each scan into its body's cluster (to its return node,
 * which every cluster has). */
static void dot_scan_edges(FILE *f, const Module *m, const Graph *g)
{
    for (int32_t k = 0; k < g->nodes.len; k++) {
        const Node *n = &g->nodes.data[k];
        int32_t b = n->attr.graph;
        if (!(ir_op_info[n->op].flags & OPF_GRAPH) || b < 0 ||
            b >= m->graphs.len ||
            !m->graphs.data[b])
            continue;
        fprintf(f,
                "  g%d_n%d -> g%d_ret [style=dashed, lhead=cluster_g%d, "
                "label=\"body\"];\n",
                (int)g->id, (int)k, (int)b, (int)b);
    }
}

void ir_print_dot(FILE *f, const Module *m)
{
    fprintf(f, "digraph \"");
    dot_escape(f, m->name);
    fprintf(f, "\" {\n  compound=true;\n  rankdir=TB;\n"
               "  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
    for (int32_t i = 0; i < m->graphs.len; i++)
        if (m->graphs.data[i])
            dot_graph(f, m, m->graphs.data[i]);
    for (int32_t i = 0; i < m->graphs.len; i++)
        if (m->graphs.data[i])
            dot_scan_edges(f, m, m->graphs.data[i]);
    fprintf(f, "}\n");
}
