/* alloc_count.c — counts heap calls in the linked end-to-end programs.
 *
 * Linked into e2e_main.c's program, these definitions interpose the C
 * library's allocator for the whole process (the executable's symbols come
 * first, for libnncrt, OpenBLAS and libc's own internal calls alike) and
 * forward to glibc's __libc_* entry points.  While armed, every call from
 * any thread is counted: malloc, calloc, realloc, free, posix_memalign,
 * aligned_alloc, memalign; the callers of the first few are kept, so a
 * failing test names who allocated.  e2e_main.c arms it right after
 * NAME_new to prove that init and forward allocate nothing. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>

#include "alloc_count.h"

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t n);

enum { MAX_CALLERS = 8 };

static atomic_int armed;
static atomic_long calls[ALLOC_KINDS];
static atomic_long n_seen;
static void *callers[MAX_CALLERS];
static AllocKind caller_kinds[MAX_CALLERS];

const char *const alloc_kind_names[ALLOC_KINDS] = {
    "malloc",         "calloc",        "realloc", "free",
    "posix_memalign", "aligned_alloc", "memalign"};

/* noinline: the return address is then the allocator's caller. */
#define count(k) record(k, __builtin_return_address(0))

static __attribute__((noinline)) void record(AllocKind k, void *caller)
{
    if (!atomic_load(&armed))
        return;
    atomic_fetch_add(&calls[k], 1);
    long i = atomic_fetch_add(&n_seen, 1);
    if (i < MAX_CALLERS) {
        callers[i] = caller;
        caller_kinds[i] = k;
    }
}

void alloc_count_print_callers(FILE *f)
{
    long n = atomic_load(&n_seen);
    for (long i = 0; i < n && i < MAX_CALLERS; i++) {
        Dl_info d = {0};
        if (!dladdr(callers[i], &d))
            d = (Dl_info){0};
        fprintf(
            f, "  %s called from %s (%s)\n", alloc_kind_names[caller_kinds[i]],
            d.dli_sname ? d.dli_sname : "?", d.dli_fname ? d.dli_fname : "?");
    }
}

void alloc_count_arm(void)
{
    for (int k = 0; k < ALLOC_KINDS; k++)
        atomic_store(&calls[k], 0);
    atomic_store(&n_seen, 0);
    atomic_store(&armed, 1);
}

long alloc_count_disarm(long per_kind[ALLOC_KINDS])
{
    atomic_store(&armed, 0);
    long total = 0;
    for (int k = 0; k < ALLOC_KINDS; k++) {
        per_kind[k] = atomic_load(&calls[k]);
        total += per_kind[k];
    }
    return total;
}

void *malloc(size_t n)
{
    count(ALLOC_MALLOC);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    count(ALLOC_CALLOC);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    count(ALLOC_REALLOC);
    return __libc_realloc(p, n);
}

void free(void *p)
{
    count(ALLOC_FREE);
    __libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    count(ALLOC_POSIX_MEMALIGN);
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    void *p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    count(ALLOC_ALIGNED_ALLOC);
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
    count(ALLOC_MEMALIGN);
    return __libc_memalign(align, n);
}
