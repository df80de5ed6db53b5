/* compile.c — the front end's entry points: fe_compile runs the parser and,
 * if the file has no syntax error, the lowering (lower.c), so a model with
 * a syntax error gets only syntax messages, not a cascade from statements
 * the parser had to skip.  fe_default_model_name derives the model name
 * from the file name when there is no `model` line. */
#include "frontend/lower.h"

#include <string.h>

Module *fe_compile(Arena *a, const char *src, size_t len,
                   const char *model_default, DimOverride *overrides,
                   int n_overrides, Diag *d)
{
    int errors = d->n_errors;
    Program *p = fe_parse(a, src, len, d);
    if (!p || d->n_errors > errors)
        return NULL;
    return fe_lower(a, p, model_default, overrides, n_overrides, d);
}

bool lw_is_c_keyword(const char *s)
{
    static const char *const words[] = {
        "auto",       "break",     "case",           "char",
        "const",      "continue",  "default",        "do",
        "double",     "else",      "enum",           "extern",
        "float",      "for",       "goto",           "if",
        "inline",     "int",       "long",           "register",
        "restrict",   "return",    "short",          "signed",
        "sizeof",     "static",    "struct",         "switch",
        "typedef",    "union",     "unsigned",       "void",
        "volatile",   "while",     "_Alignas",       "_Alignof",
        "_Atomic",    "_Bool",     "_Complex",       "_Generic",
        "_Imaginary", "_Noreturn", "_Static_assert", "_Thread_local",
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(words[i], s) == 0)
            return true;
    return false;
}

/* "path/to/my-model.nn" -> "my_model"; "3d.nn" -> "_3d"; a C keyword gets
 * a trailing '_' ("int.nn" -> "int_"); no name at all ("dir/") is "model". */
const char *fe_default_model_name(Arena *a, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (n == 0)
        return "model";
    bool digit = base[0] >= '0' && base[0] <= '9';
    char *s = arena_alloc(a, n + 3);
    char *o = s;
    if (digit)
        *o++ = '_';
    for (size_t i = 0; i < n; i++) {
        char c = base[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_';
        *o++ = ok ? c : '_';
    }
    if (lw_is_c_keyword(s))
        *o++ = '_';
    return s;
}
