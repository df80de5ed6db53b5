/* alloc_hook.h — heap-call counting for the no-allocation test programs
 * (alloc_hook.c interposes the allocator). */
#ifndef NNC_ALLOC_HOOK_H
#define NNC_ALLOC_HOOK_H

#include <stdio.h>

void alloc_hook_arm(void);      /* start counting from zero */
long alloc_hook_disarm(void);   /* stop; the number of allocating calls */
void alloc_hook_print(FILE *f); /* the first callers, by symbol */

#endif
