/* alloc_count.h — the allocation counter of alloc_count.c (see there). */
#ifndef NNC_E2E_ALLOC_COUNT_H
#define NNC_E2E_ALLOC_COUNT_H

#include <stdio.h>

typedef enum AllocKind {
    ALLOC_MALLOC,
    ALLOC_CALLOC,
    ALLOC_REALLOC,
    ALLOC_FREE,
    ALLOC_POSIX_MEMALIGN,
    ALLOC_ALIGNED_ALLOC,
    ALLOC_MEMALIGN,
    ALLOC_KINDS
} AllocKind;

extern const char *const alloc_kind_names[ALLOC_KINDS];

/* Zeroes the counts and starts counting. */
void alloc_count_arm(void);
/* Stops counting; per_kind[k] gets the calls of kind k; returns the sum. */
long alloc_count_disarm(long per_kind[ALLOC_KINDS]);
/* The callers of the first calls counted since arming, one line each. */
void alloc_count_print_callers(FILE *f);

#endif
