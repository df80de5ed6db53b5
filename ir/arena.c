/* arena.c — bulk allocation for one compilation.
 *
 * Everything the compiler builds (AST, IR nodes, strings, vectors) comes
 * from one Arena and is freed at once with arena_free, so no pass frees by
 * hand.  Chunks grow geometrically; a request larger than a chunk gets a
 * chunk of its own.  Out of memory is fatal: the compiler has nothing to
 * save, and hostile input is bounded earlier (lexer and parser caps). */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

struct ArenaChunk {
    ArenaChunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

#define ARENA_MIN_CHUNK ((size_t)64 * 1024)

static _Noreturn void arena_oom(size_t n)
{
    fprintf(stderr, "nnc: error: out of memory (allocating %zu bytes)\n", n);
    exit(70);
}

Arena *arena_new(void)
{
    Arena *a = calloc(1, sizeof *a);
    if (!a)
        arena_oom(sizeof *a);
    return a;
}

void arena_free(Arena *a)
{
    if (!a)
        return;
    for (ArenaChunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

void *arena_alloc(Arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    ArenaChunk *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t want = c ? c->size * 2 : ARENA_MIN_CHUNK;
        if (want > ((size_t)16 << 20))
            want = (size_t)16 << 20;
        if (want < size)
            want = size;
        c = malloc(sizeof *c + want);
        if (!c)
            arena_oom(want);
        c->size = want;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    a->total += size;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *arena_strdup(Arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

/* The old array is left in the arena: it is freed with everything else. */
void vec_grow_(Arena *a, void **data, int32_t *cap, int32_t need, size_t elem)
{
    if (need <= *cap)
        return;
    int32_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = arena_alloc(a, (size_t)ncap * elem);
    if (*data)
        memcpy(p, *data, (size_t)*cap * elem);
    *data = p;
    *cap = ncap;
}
