/* alloc_hook.c — counts heap allocations in the programs test_train_noalloc
 * builds.
 *
 * Linked into the program, these definitions interpose the C library's
 * allocator for the whole process (the executable's symbols come first,
 * for libnncrt, OpenBLAS and libc's own calls alike) and forward to
 * glibc's __libc_* entry points.  While armed, every allocating call from
 * any thread is counted (malloc, calloc, realloc, posix_memalign,
 * aligned_alloc, memalign, valloc), and the first callers are recorded so
 * a failure names who allocated.  free is not an allocation and is not
 * counted. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>

#include "alloc_hook.h"

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t n);

enum { MAX_CALLERS = 8 };

static atomic_int armed;
static atomic_long count;
static void *callers[MAX_CALLERS];
static const char *caller_fn[MAX_CALLERS];

static __attribute__((noinline)) void record(const char *fn, void *caller)
{
    if (!atomic_load(&armed))
        return;
    long i = atomic_fetch_add(&count, 1);
    if (i < MAX_CALLERS) {
        callers[i] = caller;
        caller_fn[i] = fn;
    }
}
#define COUNT(fn) record(fn, __builtin_return_address(0))

void alloc_hook_arm(void)
{
    atomic_store(&count, 0);
    atomic_store(&armed, 1);
}

long alloc_hook_disarm(void)
{
    atomic_store(&armed, 0);
    return atomic_load(&count);
}

void alloc_hook_print(FILE *f)
{
    long n = atomic_load(&count);
    for (long i = 0; i < n && i < MAX_CALLERS; i++) {
        Dl_info d = {0};
        if (!dladdr(callers[i], &d))
            d = (Dl_info){0};
        fprintf(f, "  %s called from %s (%s)\n", caller_fn[i],
                d.dli_sname ? d.dli_sname : "?",
                d.dli_fname ? d.dli_fname : "?");
    }
}

void *malloc(size_t n)
{
    COUNT("malloc");
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    COUNT("calloc");
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    COUNT("realloc");
    return __libc_realloc(p, n);
}

void free(void *p) { __libc_free(p); }

void *memalign(size_t align, size_t n)
{
    COUNT("memalign");
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    COUNT("aligned_alloc");
    return __libc_memalign(align, n);
}

void *valloc(size_t n)
{
    COUNT("valloc");
    return __libc_memalign(4096, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    COUNT("posix_memalign");
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    void *p = __libc_memalign(align, n);
    if (!p && n)
        return ENOMEM;
    *out = p;
    return 0;
}
