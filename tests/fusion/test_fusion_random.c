/* Fusion tests on randomised small graphs: fused and unfused give the same
 * outputs, loss and gradients.
 *
 * A deterministic seed loop writes N_GRAPHS small .nn programs, each a few
 * random statements over f32[N, C] / f32[N, D] values and their broadcasts
 * ([C], [N, 1], [1, C], scalars), in a third of them also f32[N, D, C]
 * values ([D, C], [N, 1, C]; reductions over one or two of their axes):
 *   - unary elementwise chains (exp, log of a positive, sqrt of a positive,
 *     tanh, sigmoid, relu, gelu, gelu_tanh, silu, softplus, neg, abs,
 *     rsqrt, pow);
 *   - binary ops with broadcasting (+ - * /, maximum, minimum; division
 *     by a positive), comparisons under where and as masks;
 *   - sum/mean/max over the last or first axis or everything, with and
 *     without keepdims;
 *   - matmul followed by bias and activation (epilogue patterns), with
 *     residual adds and shared weights;
 *   - softmax / log_softmax, cross_entropy against i32 targets;
 * values are picked at random from everything defined so far, so many are
 * used twice (the fusion passes' "outside use" rules), and an intermediate
 * value is an output besides the last one.  The loss is
 * sum(last * lw0) + mean(other * lw1) + the cross-entropy terms, so every
 * graph trains.
 *
 * Each program is compiled with and without fusion (autodiff on, and
 * again with --no-train for the forward graph alone) and run by the
 * evaluator; every N_JIT_EVERY-th one is also JIT-compiled and the
 * float32 results compared (fusion_test.h has the norm).  A failing
 * program is printed whole: it is its own reproducer.
 *
 * argv[1]: "numeric" (the comparisons) or "coverage" (how many programs
 * the passes fused: at least one fused node of each kind over the run);
 * "print SEED" writes program SEED.  NNC_FUSION_SEED=S checks program S
 * alone; NNC_FUSION_GRAPHS and NNC_FUSION_JIT_EVERY change the run's size
 * (a longer soak than ctest's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fusion_test.h"

#define N_GRAPHS 200
#define N_JIT_EVERY 7

enum { DN = 3, DC = 5, DD = 4 }; /* distinct, so broadcasts are unambiguous */
/* The sizes written into the program: the generator only needs N, C, D to
 * be distinct and above 1, so every 14th program (half the JIT-compiled
 * ones) gets sizes above the parallel code paths' thresholds (32768
 * elements), odd so that vector loops have remainders. */
#define BIG_EVERY 14
static const int BIG[3] = {129, 259, 67};   /* N, C, D: N * C >= 32768 */
static const int BIG3[3] = {33, 67, 17};    /* with rank 3: N * D * C */


typedef struct Shp {
    int rank;
    int d[3];
} Shp;

typedef struct Val {
    char name[16];
    Shp s;
    bool dep;      /* computed from an input (may be an output) */
    bool par;      /* a param or computed from one (has a gradient) */
    bool decl;     /* an input or param: declared only when used */
    bool is_input;
    bool used;
} Val;

#define MAX_VALS 96

typedef struct Gen {
    uint64_t rng;
    Val v[MAX_VALS];
    int n;
    char body[8192];
    char ce[1024]; /* " + cross_entropy(a, t) ..." */
    bool ce_par, first_ce_par; /* some / the first CE's logits read a param */
    int n_stmt, n_params, n_lw;
    bool uses_t;
    bool scan; /* the statements are a scan body (finish_scan) */
    bool big;  /* large sizes (BIG_EVERY) */
    char extra_decl[2048]; /* params and inputs made on the way */
} Gen;

static uint64_t rnd(Gen *g, uint64_t n) { return ft_next(&g->rng) % n; }

/* The size written for dim d (DN, DC, DD). */
static int dim_value(const Gen *g, int d)
{
    int k = d == DN ? 0 : d == DC ? 1 : 2;
    if (!g->big)
        return d;
    bool rank3 = false;
    for (int i = 0; i < g->n; i++)
        rank3 |= g->v[i].s.rank == 3 && (g->v[i].used || !g->v[i].decl);
    return rank3 ? BIG3[k] : BIG[k];
}

static const char *dim_name(int d)
{
    return d == DN ? "N" : d == DC ? "C" : d == DD ? "D" : "1";
}

static void shp_str(Shp s, char *buf, size_t len)
{
    if (s.rank == 0)
        snprintf(buf, len, "[]");
    else if (s.rank == 1)
        snprintf(buf, len, "[%s]", dim_name(s.d[0]));
    else if (s.rank == 2)
        snprintf(buf, len, "[%s, %s]", dim_name(s.d[0]), dim_name(s.d[1]));
    else
        snprintf(buf, len, "[%s, %s, %s]", dim_name(s.d[0]), dim_name(s.d[1]),
                 dim_name(s.d[2]));
}

static bool broadcast(Shp a, Shp b, Shp *out)
{
    int r = a.rank > b.rank ? a.rank : b.rank;
    out->rank = r;
    for (int i = 0; i < r; i++) {
        int ia = a.rank - r + i, ib = b.rank - r + i;
        int da = ia >= 0 ? a.d[ia] : 1, db = ib >= 0 ? b.d[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return false;
        out->d[i] = da > db ? da : db;
    }
    return true;
}

static void appendf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t len, const char *fmt, ...)
{
    size_t k = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + k, len - k, fmt, ap);
    va_end(ap);
}

/* Replaces $a $b $c $d in tmpl by the names of vals[0..3]; returns
 * whether any of those read is a param or computed from one. */
static bool subst(char *out, size_t len, const char *tmpl, Val *const *vals)
{
    size_t k = 0;
    bool par = false;
    for (const char *p = tmpl; *p && k + 1 < len; p++) {
        if (*p == '$' && p[1] >= 'a' && p[1] <= 'd') {
            Val *v = vals[p[1] - 'a'];
            v->used = true;
            par |= v->par;
            for (const char *q = v->name; *q && k + 1 < len; q++)
                out[k++] = *q;
            p++;
        } else {
            out[k++] = *p;
        }
    }
    out[k] = 0;
    return par;
}

static Val *add_val(Gen *g, const char *name, Shp s, bool dep, bool decl,
                    bool is_input)
{
    Val *v = &g->v[g->n++];
    *v = (Val){.s = s, .dep = dep, .decl = decl, .is_input = is_input};
    snprintf(v->name, sizeof v->name, "%s", name);
    return v;
}

/* A new param of shape s, declared at once (it is used right away). */
static Val *new_param(Gen *g, Shp s)
{
    char name[16], ty[32];
    snprintf(name, sizeof name, "p%d", g->n_params++);
    shp_str(s, ty, sizeof ty);
    appendf(g->extra_decl, sizeof g->extra_decl, "param %s : f32%s = normal(0.5)\n",
            name, ty);
    Val *v = add_val(g, name, s, false, false, false);
    v->par = true;
    return v;
}

/* A recent value with probability 1/2, else any; not a scalar unless
 * allow_scalar. */
static Val *pick(Gen *g, bool allow_scalar)
{
    for (int tries = 0; tries < 50; tries++) {
        int i = rnd(g, 2) ? g->n - 1 - (int)rnd(g, g->n < 3 ? g->n : 3)
                          : (int)rnd(g, g->n);
        if (allow_scalar || g->v[i].s.rank > 0)
            return &g->v[i];
    }
    return &g->v[0];
}

/* A value that broadcasts with a (NULL if none found); result in *out. */
static Val *pick_compatible(Gen *g, Val *a, Shp *out)
{
    for (int tries = 0; tries < 30; tries++) {
        Val *b = pick(g, true);
        if (broadcast(a->s, b->s, out))
            return b;
    }
    return NULL;
}

static void emit(Gen *g, const char *tmpl, Val *const *vals, Shp s, bool dep)
{
    char expr[512], name[16];
    bool par = subst(expr, sizeof expr, tmpl, vals);
    snprintf(name, sizeof name, "v%d", g->n_stmt++);
    appendf(g->body, sizeof g->body, "%s = %s\n", name, expr);
    add_val(g, name, s, dep, false, false)->par = par;
}

static const char *const UNARY[] = {
    "exp(tanh($a))",   "log($a * $a + 0.5)",   "log(abs($a) + 0.5)",
    "tanh($a)",        "sigmoid($a)",          "relu($a)",
    "gelu($a)",        "gelu_tanh($a)",        "silu($a)",
    "softplus($a)",    "-$a",                  "neg($a)",
    "abs($a)",         "sqrt($a * $a + 0.25)", "rsqrt(abs($a) + 1)",
    "pow($a, 2)",      "pow(abs($a) + 0.5, 1.5)", "exp($a * 0.25)",
    "$a * 2 - 1",      "tanh($a) * sigmoid($a)",
};
static const char *const BINARY[] = {
    "$a + $b", "$a - $b", "$a * $b", "$a / ($b * $b + 1)",
    "maximum($a, $b)", "minimum($a, $b)", "$b - $a * 0.5",
    "$a * $b + $a",
};
static const char *const ACT[] = {"relu", "gelu", "tanh", "sigmoid", "silu",
                                  "gelu_tanh", ""};

static bool dep_of(Val *const *vals, int n)
{
    for (int i = 0; i < n; i++)
        if (vals[i]->dep)
            return true;
    return false;
}

static void gen_unary(Gen *g)
{
    Val *a = pick(g, false);
    Val *vals[4] = {a, a, a, a};
    emit(g, UNARY[rnd(g, sizeof UNARY / sizeof *UNARY)], vals, a->s, a->dep);
}

static void gen_binary(Gen *g)
{
    Val *a = pick(g, false);
    Shp s;
    Val *b = pick_compatible(g, a, &s);
    if (!b)
        return gen_unary(g);
    Val *vals[4] = {a, b, a, b};
    emit(g, BINARY[rnd(g, sizeof BINARY / sizeof *BINARY)], vals, s,
         dep_of(vals, 2));
}

static void gen_where(Gen *g)
{
    Val *a = pick(g, false);
    Shp s1, s2;
    Val *b = pick_compatible(g, a, &s1);
    if (!b)
        return gen_unary(g);
    Val c0 = {.s = s1};
    Val *c = pick_compatible(g, &c0, &s2);
    if (!c)
        return gen_unary(g);
    Val *vals[4] = {a, b, c, a};
    static const char *const T[] = {
        "where($a > $b, $c, $a)", "where($a > 0, $a, $b * 0.1)",
        "($a > $b) * $c",         "where($a <= $b, $a, $c) + $b",
        "where($b >= 0.5, $c, $a)",
    };
    int k = (int)rnd(g, 5);
    Shp s = k == 1 ? s1 : s2; /* each template broadcasts what it reads */
    emit(g, T[k], vals, s, dep_of(vals, 3));
}

static void gen_reduce(Gen *g)
{
    Val *a = pick(g, false);
    static const char *const R[] = {"sum", "mean", "max"};
    const char *r = R[rnd(g, 3)];
    bool keep = rnd(g, 2);
    int rank = a->s.rank;
    unsigned axes; /* bit i: reduce axis i */
    char tmpl[128], ax[32];
    uint64_t how = rnd(g, 6);
    if (how == 0) {
        axes = (1u << rank) - 1;
        snprintf(ax, sizeof ax, "%s", "");
    } else if (how == 1 && rank == 3) {
        static const int P[3][2] = {{0, 2}, {1, 2}, {0, 1}};
        const int *pr = P[rnd(g, 3)];
        axes = 1u << pr[0] | 1u << pr[1];
        snprintf(ax, sizeof ax, ", axis = [%d, %d]", pr[0], pr[1]);
    } else {
        int k = how <= 3 ? rank - 1 : (int)rnd(g, (uint64_t)rank);
        axes = 1u << k;
        snprintf(ax, sizeof ax, ", axis = %d", rnd(g, 2) ? k - rank : k);
    }
    snprintf(tmpl, sizeof tmpl, "%s($a%s%s)", r, ax,
             keep && ax[0] ? ", keepdims = true" : "");
    Shp s = {0};
    for (int i = 0; i < rank; i++) {
        if (!(axes >> i & 1))
            s.d[s.rank++] = a->s.d[i];
        else if (keep && ax[0])
            s.d[s.rank++] = 1;
    }
    Val *vals[4] = {a, a, a, a};
    emit(g, tmpl, vals, s, a->dep);
}

static Val *find_matrix(Gen *g, int rows)
{
    for (int i = 0; i < g->n; i++)
        if (!g->v[i].is_input && g->v[i].name[0] == 'p' && g->v[i].s.rank == 2 &&
            g->v[i].s.d[0] == rows && g->v[i].s.d[1] != 1)
            return &g->v[i];
    return NULL;
}

static void gen_matmul(Gen *g)
{
    Val *a = NULL;
    for (int tries = 0; tries < 20 && !a; tries++) {
        Val *c = pick(g, false);
        if (c->s.rank >= 2 && c->s.d[c->s.rank - 1] != 1)
            a = c;
    }
    if (!a)
        return gen_unary(g);
    int k = a->s.d[a->s.rank - 1];
    Val *w = rnd(g, 3) == 0 ? find_matrix(g, k) : NULL; /* shared weights */
    if (!w)
        w = new_param(g, (Shp){2, {k, rnd(g, 2) ? DC : DD}});
    Shp out = a->s;
    out.d[out.rank - 1] = w->s.d[1];
    Val *b = new_param(g, (Shp){1, {out.d[out.rank - 1], 0}});
    const char *act = ACT[rnd(g, sizeof ACT / sizeof *ACT)];
    char tmpl[128];
    Val *res = NULL;
    Shp rs;
    switch (rnd(g, 5)) {
    case 0:
        snprintf(tmpl, sizeof tmpl, "%s($a @ $b + $c)", act);
        break;
    case 1:
        snprintf(tmpl, sizeof tmpl, "%s($c + $a @ $b)", act);
        break;
    case 2:
        snprintf(tmpl, sizeof tmpl, "%s($a @ $b)", act);
        break;
    case 3: /* residual */
        res = pick_compatible(g, &(Val){.s = out}, &rs);
        if (res && rs.rank == out.rank &&
            memcmp(rs.d, out.d, sizeof(int) * (size_t)out.rank) == 0) {
            snprintf(tmpl, sizeof tmpl, "$a @ $b + $c + $d");
            break;
        }
        res = NULL;
        /* fall through */
    default:
        snprintf(tmpl, sizeof tmpl, "%s($a @ $b * 0.5 + $c)", act);
        break;
    }
    Val *vals[4] = {a, w, b, res ? res : a};
    emit(g, tmpl, vals, out, dep_of(vals, 4));
}

static void gen_softmax(Gen *g)
{
    Val *a = pick(g, false);
    if (a->s.rank < 2)
        return gen_unary(g);
    static const char *const T[] = {
        "softmax($a, axis = -1)", "log_softmax($a, axis = -1)",
        "softmax($a, axis = 0)",  "softmax($a * 2, axis = -1) * $a",
        "softmax($a, axis = 1)",
    };
    Val *vals[4] = {a, a, a, a};
    emit(g, T[rnd(g, a->s.rank == 3 ? 5 : 4)], vals, a->s, a->dep);
}

static void gen_xent(Gen *g)
{
    Val *a = pick(g, false);
    if (g->scan || a->s.rank != 2 || a->s.d[0] != DN || a->s.d[1] == 1)
        return gen_matmul(g);
    a->used = true;
    if (!g->ce[0])
        g->first_ce_par = a->par;
    g->ce_par |= a->par;
    g->uses_t = true;
    appendf(g->ce, sizeof g->ce, " + cross_entropy(%s, t)", a->name);
}

static void decl_used(Gen *g, char *out, size_t len)
{
    for (int i = 0; i < g->n; i++) {
        Val *v = &g->v[i];
        if (!v->decl || !v->used)
            continue;
        char ty[32];
        shp_str(v->s, ty, sizeof ty);
        if (v->is_input)
            appendf(out, len, "input %s : f32%s\n", v->name, ty);
        else
            appendf(out, len, "param %s : f32%s = normal(0.5)\n", v->name, ty);
    }
}

/* The statements as the body of a scan over xs : f32[T, N, C] with the
 * carry h : f32[N, C]; x is the step's slice:
 *     fn step(h, x) { x = x + h * 0.5; ...; return tanh(vK), vLAST }
 *     hT, outs = scan(step, init = h0, over = xs)
 * so fusion happens inside a scan body and its gradient in the reverse
 * scan of the backward pass. */
static char *finish_scan(Gen *g, uint64_t seed)
{
    Val *out = &g->v[g->n - 1], *carry = NULL;
    for (int i = g->n - 1; i >= 0 && !carry; i--)
        if (g->v[i].name[0] == 'v' && g->v[i].s.rank == 2 &&
            g->v[i].s.d[0] == DN && g->v[i].s.d[1] == DC)
            carry = &g->v[i];
    char ty[32], oty[40];
    shp_str(out->s, ty, sizeof ty);
    snprintf(oty, sizeof oty, "[T%s%s", out->s.rank ? ", " : "", ty + 1);
    size_t len = 16384;
    char *text = malloc(len);
    snprintf(text, len,
             "model rnd%llu\ndim N = %d\ndim C = %d\ndim D = %d\ndim T = 3\n"
             "input xs : f32[T, N, C]\ninput h0 : f32[N, C]\n"
             "input lwo : f32%s\ninput lwh : f32[N, C]\n",
             (unsigned long long)seed, dim_value(g, DN), dim_value(g, DC),
             dim_value(g, DD), oty);
    bool par = out->par || (carry && carry->par);
    if (!par)
        g->v[4].used = true; /* s0 */
    decl_used(g, text, len);
    appendf(text, len, "%s", g->extra_decl);
    appendf(text, len, "fn step(h, x) {\n  x = x + h * 0.5\n");
    for (const char *p = g->body; *p;) {
        const char *e = strchr(p, '\n');
        appendf(text, len, "  %.*s\n", (int)(e - p), p);
        p = e + 1;
    }
    appendf(text, len, "  return tanh(%s), %s\n}\n", carry ? carry->name : "x",
            out->name);
    appendf(text, len, "hT, outs = scan(step, init = h0, over = xs%s)\n",
            rnd(g, 2) ? ", reverse = true" : "");
    appendf(text, len, "loss = sum(outs * lwo) + mean(hT * lwh)%s\n",
            par ? "" : " + mean(hT * s0)");
    appendf(text, len, "output hT, outs\ntrain loss with sgd(lr = 0.1)\n");
    return text;
}

/* Writes program number seed into out (malloc'ed). */
static char *gen_program(uint64_t seed)
{
    Gen *g = calloc(1, sizeof *g);
    g->rng = seed * 7919 + 17;
    g->scan = rnd(g, 4) == 0;
    g->big = seed % BIG_EVERY == 0;
    /* in a scan, x is the step's slice and h the carry: not declared */
    add_val(g, "x", (Shp){2, {DN, DC}}, true, !g->scan, true);
    add_val(g, "z", (Shp){2, {DN, DD}}, true, true, true);
    add_val(g, "w0", (Shp){1, {DC, 0}}, false, true, false)->par = true;
    add_val(g, "r0", (Shp){2, {DN, 1}}, false, true, false)->par = true;
    add_val(g, "s0", (Shp){0, {0, 0}}, false, true, false)->par = true;
    add_val(g, "q0", (Shp){2, {1, DD}}, false, true, false)->par = true;
    if (rnd(g, 2) == 0) { /* rank 3 */
        add_val(g, "y3", (Shp){3, {DN, DD, DC}}, true, true, true);
        add_val(g, "m3", (Shp){2, {DD, DC}}, false, true, false)->par = true;
        add_val(g, "u3", (Shp){3, {DN, 1, DC}}, false, true, false)->par = true;
    }
    if (g->scan)
        add_val(g, "h", (Shp){2, {DN, DC}}, true, false, false);

    /* the first statement reads x (or y3), so there is always a dependent
     * value; with rank 3 values, two of the first statements read y3 */
    Val *x = &g->v[0];
    Val *first[4] = {x, x, x, x};
    emit(g, UNARY[rnd(g, sizeof UNARY / sizeof *UNARY)], first, x->s, true);
    if (g->n > 7 && strcmp(g->v[6].name, "y3") == 0) {
        Val *y3 = &g->v[6];
        Val *v3[4] = {y3, y3, y3, y3};
        emit(g, UNARY[rnd(g, sizeof UNARY / sizeof *UNARY)], v3, y3->s, true);
        gen_binary(g);
    }

    int n_stmt = 3 + (int)rnd(g, 10);
    for (int i = 0; i < n_stmt; i++) {
        uint64_t r = rnd(g, 100);
        if (r < 28)
            gen_unary(g);
        else if (r < 56)
            gen_binary(g);
        else if (r < 63)
            gen_where(g);
        else if (r < 74)
            gen_reduce(g);
        else if (r < 88)
            gen_matmul(g);
        else if (r < 94)
            gen_softmax(g);
        else
            gen_xent(g);
    }
    if (!g->scan && rnd(g, 2) == 0)
        gen_xent(g);
    if (g->scan) {
        char *text = finish_scan(g, seed);
        free(g);
        return text;
    }

    /* outputs: the last dependent value and an intermediate one */
    Val *last = NULL, *mid = NULL;
    for (int i = g->n - 1; i >= 0; i--)
        if (g->v[i].dep && !g->v[i].decl) {
            last = &g->v[i];
            break;
        }
    for (int tries = 0; tries < 20 && !mid; tries++) {
        Val *c = &g->v[rnd(g, (uint64_t)g->n)];
        if (c->dep && !c->decl && c != last)
            mid = c;
    }

    /* the loss: sums of sinks and the cross-entropy terms, or (a third of
     * the programs with one) a cross entropy alone, the form fuse-xent
     * needs (its loss read by nothing before the gradient) */
    char loss[2048] = "", decl_lw[512] = "";
    if (g->first_ce_par && rnd(g, 3) == 0) {
        char *second = strstr(g->ce + 3, " + ");
        if (second)
            *second = 0;
        snprintf(loss, sizeof loss, "%s", g->ce + 3);
        g->ce[0] = 0;
        goto write;
    }
    Val *sink2 = pick(g, true);
    Val *sinks[2] = {&g->v[g->n - 1], sink2};
    bool has_param = g->ce_par;
    for (int k = 0; k < 2; k++) {
        Val *s = sinks[k];
        s->used = true;
        if (k == 1 && s == sinks[0])
            break;
        has_param |= s->par;
        if (s->s.rank == 0) {
            appendf(loss, sizeof loss, "%s%s * %s", k ? " + " : "", s->name,
                    k ? "0.5" : "1.5");
        } else {
            char ty[32];
            shp_str(s->s, ty, sizeof ty);
            appendf(decl_lw, sizeof decl_lw, "input lw%d : f32%s\n", k, ty);
            appendf(loss, sizeof loss, "%s%s(%s * lw%d)", k ? " + " : "",
                    k ? "mean" : "sum", s->name, k);
        }
    }

    /* a loss that reads no param would not compile: add one */
    if (!has_param) {
        g->v[4].used = true; /* s0 */
        appendf(loss, sizeof loss, " + mean(%s * s0)", g->v[g->n - 1].name);
    }

write:;
    char *out = malloc(16384);
    snprintf(out, 16384, "model rnd%llu\ndim N = %d\ndim C = %d\ndim D = %d\n",
             (unsigned long long)seed, dim_value(g, DN), dim_value(g, DC),
             dim_value(g, DD));
    decl_used(g, out, 16384);
    if (g->uses_t)
        appendf(out, 16384, "input t : i32[N]\n");
    appendf(out, 16384, "%s%s%s", decl_lw, g->extra_decl, g->body);
    appendf(out, 16384, "loss = %s%s\n", loss, g->ce);
    if (last && mid)
        appendf(out, 16384, "output %s, %s\n", last->name, mid->name);
    else if (last)
        appendf(out, 16384, "output %s\n", last->name);
    appendf(out, 16384, "train loss with sgd(lr = 0.1)\n");
    free(g);
    return out;
}

/* ---- the tests ------------------------------------------------------------- */

typedef struct Stats {
    int compiled, not_compiled, non_finite, jitted, failed;
    int with_op[OP_COUNT];
    int fused_in_scan; /* programs with a fused node in a scan body */
} Stats;

static void print_program(const char *what, uint64_t seed, const char *src)
{
    fprintf(stderr, "---- program %llu (%s) ----\n%s----\n",
            (unsigned long long)seed, what, src);
}

/* The program being checked, printed if the process exits in the middle
 * (an internal error of a pass exits with status 70). */
static const char *current_src;
static uint64_t current_seed;

static void print_current(void)
{
    if (current_src)
        fprintf(stderr, "---- program %llu (exited while checking it) ----\n%s----\n",
                (unsigned long long)current_seed, current_src);
}

/* Fused f against unfused u on data d: the evaluator, then (jit) the
 * compiled code.  false if they disagree; *finite is cleared when the
 * unfused results are not all finite (nothing compared). */
static bool check_pair(const char *label, Module *u, Module *f, const FtData *d,
                       bool jit, bool *finite)
{
    EvalTensor *ru = ft_eval(u, d);
    EvalTensor *rf = ft_eval(f, d);
    bool ok = true;
    int nu = u->graphs.data[0]->results.len, nf = f->graphs.data[0]->results.len;
    *finite = true;
    if (!ru || !rf) {
        ok = false;
    } else if (!ft_all_finite(u, ru)) {
        *finite = false;
    } else {
        ok = ft_compare_eval(label, f, rf, u, ru) == 0;
        if (ok && jit) {
            FtRun jf, ju;
            bool ran_u = ft_jit_run(u, d, 2, &ju);
            bool ran_f = ran_u && ft_jit_run(f, d, 2, &jf);
            if (!ran_u || !ran_f) {
                fprintf(stderr, "%s: the %s module does not JIT-compile or run\n",
                        label, ran_u ? "fused" : "unfused");
                ok = false;
            } else {
                ok = ft_compare_jit(label, u, &jf, &ju, ru) == 0;
                ft_run_free(&jf);
            }
            if (ran_u)
                ft_run_free(&ju);
        }
    }
    ft_results_free(ru, nu);
    ft_results_free(rf, nf);
    return ok;
}

/* One program, trained (outputs, loss, gradients) and inference-only
 * (--no-train: the forward graph fuses differently when no backward reads
 * its values): false if fused and unfused disagree. */
static bool check_program(uint64_t seed, Stats *st, bool jit)
{
    char *src = gen_program(seed);
    current_src = src;
    current_seed = seed;
    char file[64];
    snprintf(file, sizeof file, "random%llu.nn", (unsigned long long)seed);
    Arena *a = arena_new();
    Module *u = ft_compile(a, file, src, NULL, true, true);
    if (!u) {
        st->not_compiled++;
        if (st->not_compiled <= 3) {
            print_program("does not compile", seed, src);
            ft_compile(a, file, src, NULL, true, false); /* the errors */
        }
        arena_free(a);
        current_src = NULL;
        free(src);
        return true;
    }
    Module *f = ft_compile(a, file, src, NULL, false, false);
    Module *ui = ft_compile_mode(a, file, src, NULL, true, true, false);
    Module *fi = ft_compile_mode(a, file, src, NULL, false, true, false);
    assert_non_null(f);
    assert_non_null(ui);
    assert_non_null(fi);
    st->compiled++;
    st->jitted += jit;
    for (int op = 0; op < OP_COUNT; op++)
        st->with_op[op] += ft_count_op(f, (Op)op) > 0;
    FtData d = ft_data(u, seed, 0.5);
    char label[64];
    snprintf(label, sizeof label, "program %llu", (unsigned long long)seed);
    bool finite, ok = check_pair(label, u, f, &d, jit, &finite);
    st->non_finite += !finite;
    if (finite) {
        snprintf(label, sizeof label, "program %llu --no-train",
                 (unsigned long long)seed);
        ok &= check_pair(label, ui, fi, &d, jit, &finite);
    }
    if (!ok) {
        st->failed++;
        print_program("fused and unfused differ", seed, src);
    }
    ft_data_free(&d);
    arena_free(a);
    current_src = NULL;
    free(src);
    return ok;
}

static Stats run_all(void)
{
    Stats st = {0};
    const char *only = getenv("NNC_FUSION_SEED"); /* rerun one program */
    if (only) {
        check_program(strtoull(only, NULL, 10), &st, true);
        return st;
    }
    /* a longer soak: NNC_FUSION_GRAPHS=5000 NNC_FUSION_JIT_EVERY=50 */
    const char *ng = getenv("NNC_FUSION_GRAPHS"), *je = getenv("NNC_FUSION_JIT_EVERY");
    uint64_t n = ng ? strtoull(ng, NULL, 10) : N_GRAPHS;
    uint64_t every = je ? strtoull(je, NULL, 10) : N_JIT_EVERY;
    for (uint64_t seed = 1; seed <= n; seed++)
        check_program(seed, &st, every && seed % every == 0);
    fprintf(stderr,
            "%d programs compiled (%d did not), %d non-finite skipped, %d "
            "JIT-compiled, %d failed\n",
            st.compiled, st.not_compiled, st.non_finite, st.jitted, st.failed);
    return st;
}

static void test_numeric(void **state)
{
    (void)state;
    Stats st = run_all();
    assert_int_equal(st.failed, 0);
    /* the generator must produce valid programs, and most finite */
    assert_true(st.not_compiled * 20 <= st.compiled + st.not_compiled);
    assert_true(st.non_finite * 10 <= st.compiled);
}

static void test_coverage(void **state)
{
    (void)state;
    Stats st = {0};
    for (uint64_t seed = 1; seed <= N_GRAPHS; seed++) {
        char *src = gen_program(seed);
        Arena *a = arena_new();
        Module *f = ft_compile(a, "random.nn", src, NULL, false, true);
        if (f) {
            st.compiled++;
            for (int op = 0; op < OP_COUNT; op++)
                st.with_op[op] += ft_count_op(f, (Op)op) > 0;
            st.fused_in_scan += ft_scan_body_has_op(f, OP_FUSED) ||
                                ft_scan_body_has_op(f, OP_MATMUL_EPILOGUE);
        }
        arena_free(a);
        free(src);
    }
    fprintf(stderr,
            "%d programs: fused in %d, matmul_epilogue in %d, softmax_xent in "
            "%d, fused or matmul_epilogue in a scan body in %d\n",
            st.compiled, st.with_op[OP_FUSED], st.with_op[OP_MATMUL_EPILOGUE],
            st.with_op[OP_SOFTMAX_XENT], st.fused_in_scan);
    assert_true(st.with_op[OP_FUSED] * 2 >= st.compiled);
    assert_true(st.with_op[OP_MATMUL_EPILOGUE] > 0);
    assert_true(st.with_op[OP_SOFTMAX_XENT] > 0);
    assert_true(st.fused_in_scan > 0);
}

int main(int argc, char **argv)
{
    atexit(print_current);
    if (argc > 2 && strcmp(argv[1], "print") == 0) { /* the program text */
        char *src = gen_program(strtoull(argv[2], NULL, 10));
        fputs(src, stdout);
        free(src);
        return 0;
    }
    const struct CMUnitTest numeric[] = {cmocka_unit_test(test_numeric)};
    const struct CMUnitTest coverage[] = {cmocka_unit_test(test_coverage)};
    const char *which = argc > 1 ? argv[1] : "all";
    bool all = strcmp(which, "all") == 0;
    int rc = 0;
    if (all || strcmp(which, "numeric") == 0)
        rc |= cmocka_run_group_tests_name("numeric", numeric, NULL, NULL);
    if (all || strcmp(which, "coverage") == 0)
        rc |= cmocka_run_group_tests_name("coverage", coverage, NULL, NULL);
    return rc != 0;
}
