/* diag.c — located error messages, as Clang prints them:
 *
 *   mlp.nn:12:14: error: matmul of f32[64, 784] and f32[512, 10]: ...
 *      12 | h = x @ W2
 *         |       ^
 *
 * Used by the front end (syntax and shape errors) and the IR reader.
 * Internal errors (broken invariants) are separate and exit with 70. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

void diag_init(Diag *d, const char *file, const char *src, size_t src_len)
{
    memset(d, 0, sizeof *d);
    d->file = file;
    d->src = src;
    d->src_len = src_len;
    d->max_errors = 20;
    d->out = stderr;
}

bool diag_full(const Diag *d) { return d->n_errors >= d->max_errors; }

/* Prints source line `line` (1-based) and a caret under byte column `col`.
 * Long lines are cut to a window around the caret so a megabyte-long line
 * does not flood the terminal; non-printable bytes print as '?'. */
static void diag_show_line(Diag *d, int32_t line, int32_t col)
{
    if (!d->src || line <= 0)
        return;
    const char *p = d->src, *end = d->src + d->src_len;
    for (int32_t l = 1; l < line && p < end; p++)
        if (*p == '\n')
            l++;
    if (p > end)
        return;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol)
        eol = end;
    size_t len = (size_t)(eol - p);
    size_t caret = col > 0 ? (size_t)col - 1 : 0;
    size_t from = 0, window = 200;
    if (caret > window / 2 && len > window)
        from = caret - window / 2;
    size_t to = len < from + window ? len : from + window;
    fprintf(d->out, "%5d | %s", line, from ? "..." : "");
    for (size_t i = from; i < to; i++) {
        unsigned char ch = (unsigned char)p[i];
        fputc(ch == '\t' || (ch >= 32 && ch < 127) ? ch : '?', d->out);
    }
    fprintf(d->out, "%s\n      | %s", to < len ? "..." : "", from ? "   " : "");
    for (size_t i = from; i < caret && i < to; i++)
        fputc(p[i] == '\t' ? '\t' : ' ', d->out);
    fprintf(d->out, "^\n");
}

void diag_verror(Diag *d, SrcLoc loc, const char *fmt, va_list ap)
{
    d->n_errors++;
    if (d->n_errors > d->max_errors)
        return;
    fprintf(d->out, "%s:%d:%d: error: ", d->file, loc.line > 0 ? loc.line : 1,
            loc.col > 0 ? loc.col : 1);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    diag_show_line(d, loc.line > 0 ? loc.line : 1, loc.col > 0 ? loc.col : 1);
    if (d->n_errors == d->max_errors)
        fprintf(d->out, "%s: note: too many errors, stopping\n", d->file);
}

void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_verror(d, loc, fmt, ap);
    va_end(ap);
}

void ir_internal_error(const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nnc: internal error: %s: ", where);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    exit(70);
}
