/* lower_scope.c — the lowering's symbols: definition, lookup, the checks
 * on redefinition and rebinding, and the messages for names that do not
 * resolve ("unknown name 'foo'; did you mean 'fo0'?").
 *
 * Top-level symbols live in one array in definition order, indexed by a
 * hash table that holds each name's newest symbol; older symbols of the
 * same name are chained through Sym.prev.  A fn body sees the top-level
 * symbols with an index below its Scope.limit (those defined above the
 * fn), so looking a name up for a fn walks the chain back past anything
 * defined later. */
#include "frontend/lower.h"

#include <stdarg.h>
#include <string.h>

void lw_error(Lower *L, SrcLoc loc, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_error(L->d, loc, "%s%s", msg, L->note ? L->note : "");
}

bool lw_spend(Lower *L, int64_t n, SrcLoc loc)
{
    if (L->aborted)
        return false;
    L->work += n;
    if (L->work <= LW_MAX_WORK)
        return true;
    lw_error(L, loc,
             "the model is too large: more than %lld operations after "
             "inlining fns",
             (long long)LW_MAX_WORK);
    L->aborted = true;
    return false;
}

bool lw_enter(Lower *L, SrcLoc loc)
{
    if (L->aborted)
        return false;
    if (L->depth < LW_MAX_DEPTH) {
        L->depth++;
        return true;
    }
    lw_error(L, loc,
             "expressions and fn calls are nested too deeply (more "
             "than %d levels)",
             LW_MAX_DEPTH);
    L->aborted = true;
    return false;
}

const char *lw_kind_phrase(SymKind k)
{
    switch (k) {
    case SYM_INPUT: return "an input";
    case SYM_VALUE:
    case SYM_POISON: return "a tensor";
    default:
        return k == SYM_DIM ? "a dim" : k == SYM_PARAM ? "a param" : "a fn";
    }
}

/* ---- the hash table ----------------------------------------------------- */

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The slot holding `name`, or the empty slot where it would go. */
static int32_t slot_of(const Lower *L, const char *name)
{
    uint32_t mask = (uint32_t)L->n_slots - 1;
    for (uint32_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
        int32_t s = L->slots[i];
        if (s < 0 || strcmp(L->syms.data[s].name, name) == 0)
            return (int32_t)i;
    }
}

static void table_grow(Lower *L)
{
    int32_t old_n = L->n_slots, *old = L->slots;
    L->n_slots = old_n ? old_n * 2 : 256;
    L->slots = arena_alloc(L->a, sizeof *L->slots * (size_t)L->n_slots);
    for (int32_t i = 0; i < L->n_slots; i++)
        L->slots[i] = -1;
    for (int32_t i = 0; i < old_n; i++)
        if (old[i] >= 0)
            L->slots[slot_of(L, L->syms.data[old[i]].name)] = old[i];
}

static int32_t newest(const Lower *L, const char *name)
{
    if (!L->n_slots)
        return -1;
    return L->slots[slot_of(L, name)];
}

void lw_define(Lower *L, Sym s)
{
    if (2 * (L->n_used + 1) > L->n_slots)
        table_grow(L);
    int32_t slot = slot_of(L, s.name);
    s.prev = L->slots[slot];
    if (s.prev < 0)
        L->n_used++;
    vec_push(L->a, &L->syms, s);
    L->slots[slot] = L->syms.len - 1;
}

void lw_bind(Lower *L, Scope *sc, Sym s)
{
    if (sc->fn)
        vec_push(L->a, &sc->locals, s);
    else
        lw_define(L, s);
}

bool lw_lookup(const Lower *L, const Scope *sc, const char *name, Sym *out)
{
    for (int32_t i = sc->locals.len - 1; i >= 0; i--)
        if (strcmp(sc->locals.data[i].name, name) == 0) {
            *out = sc->locals.data[i];
            return true;
        }
    int32_t i = newest(L, name);
    while (i >= sc->limit)
        i = L->syms.data[i].prev;
    if (i < 0)
        return false;
    *out = L->syms.data[i];
    return true;
}

/* ---- checks on new names ------------------------------------------------ */

bool lw_check_new_decl(Lower *L, const char *name, SrcLoc loc)
{
    int32_t i = newest(L, name);
    if (i < 0)
        return true;
    SrcLoc old = L->syms.data[i].loc;
    lw_error(L, loc, "'%s' is already defined at %d:%d", name, old.line,
             old.col);
    return false;
}

bool lw_check_bindable(Lower *L, const Scope *sc, const char *name, SrcLoc loc)
{
    Sym s;
    if (!lw_lookup(L, sc, name, &s) || s.kind == SYM_VALUE ||
        s.kind == SYM_POISON)
        return true;
    lw_error(L, loc, "'%s' is %s (declared at %d:%d) and cannot be rebound",
             name, lw_kind_phrase(s.kind), s.loc.line, s.loc.col);
    return false;
}

/* ---- unknown names ------------------------------------------------------ */

/* Levenshtein distance, for names up to 63 bytes (longer: "far"). */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 1000;
    int row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            if (up + 1 < best)
                best = up + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

typedef struct Suggest {
    const char *name; /* what was written */
    const char *best;
    int dist;
} Suggest;

static void consider(Suggest *s, const char *cand)
{
    int d = edit_distance(s->name, cand);
    if (d > 0 && d < s->dist)
        s->best = cand, s->dist = d;
}

static bool callable_kind(SymKind k) { return k == SYM_FN; }

/* The closest visible name of the right sort (callable or value), within
 * a third of the name's length. */
static const char *suggest(const Lower *L, const Scope *sc, const char *name,
                           bool callable)
{
    Suggest s = {name, NULL, (int)(strlen(name) + 2) / 3 + 1};
    for (int32_t i = 0; i < L->syms.len && i < sc->limit; i++)
        if (callable_kind(L->syms.data[i].kind) == callable)
            consider(&s, L->syms.data[i].name);
    for (int32_t i = 0; i < sc->locals.len; i++)
        if (!callable)
            consider(&s, sc->locals.data[i].name);
    for (int i = 0; callable && i < lw_n_builtins(); i++)
        consider(&s, lw_builtin_name(i));
    return s.best;
}

static const TopName *top_name(const Lower *L, const char *name)
{
    for (int32_t i = 0; i < L->top_names.len; i++)
        if (strcmp(L->top_names.data[i].name, name) == 0)
            return &L->top_names.data[i];
    return NULL;
}

void lw_unknown(Lower *L, const Scope *sc, const char *name, SrcLoc loc,
                bool callable)
{
    const char *fn = sc->fn ? sc->fn->st->names[0] : NULL;
    const TopName *later = top_name(L, name);
    if (fn && strcmp(fn, name) == 0) {
        lw_error(L, loc,
                 "fn '%s' cannot call itself (recursion is not "
                 "allowed)",
                 fn);
    } else if (later && fn) {
        lw_error(L, loc,
                 "fn '%s' cannot use '%s': it is defined later, at "
                 "%d:%d (a fn sees only what is defined above it)",
                 fn, name, later->loc.line, later->loc.col);
    } else if (later) {
        lw_error(L, loc, "'%s' is used before its definition at %d:%d", name,
                 later->loc.line, later->loc.col);
    } else {
        const char *best = suggest(L, sc, name, callable);
        lw_error(L, loc, "unknown %s '%s'%s%s%s",
                 callable ? "function" : "name", name,
                 best ? "; did you mean '" : "", best ? best : "",
                 best ? "'?" : "");
    }
}

void lw_unresolved_name(Lower *L, const Scope *sc, const Expr *e)
{
    if (lw_builtin(e->name))
        lw_error(L, e->loc,
                 "'%s' is a built-in function; call it, as in "
                 "%s(x)",
                 e->name, e->name);
    else
        lw_unknown(L, sc, e->name, e->loc, false);
}
