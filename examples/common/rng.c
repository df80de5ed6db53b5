/* rng.c — seeded random numbers for the demos (batch order, split, random
 * windows, sampling): splitmix64, so a seed gives the same run on every
 * libc.  The model's own randomness (initializers, dropout) is the
 * runtime's, keyed by the seed given to NAME_init. */
#include "demo.h"

void demo_rng_seed(DemoRng *r, uint64_t seed)
{
    r->state = seed ^ 0x6a09e667f3bcc909ull;
}

uint64_t demo_rng_next(DemoRng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t demo_rng_below(DemoRng *r, uint64_t n)
{
    /* Rejection keeps it exactly uniform: drop the incomplete last block. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do
        x = demo_rng_next(r);
    while (x >= limit);
    return x % n;
}

double demo_rng_uniform(DemoRng *r)
{
    return (double)(demo_rng_next(r) >> 11) * 0x1.0p-53;
}

void demo_shuffle(int32_t *a, int64_t n, DemoRng *r)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)demo_rng_below(r, (uint64_t)i + 1);
        int32_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
