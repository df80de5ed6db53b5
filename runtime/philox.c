/* philox.c — the counter-based random numbers behind initializers and
 * dropout.
 *
 * Philox4x32-10 turns a 128-bit counter and a 64-bit key into 128 random
 * bits with ten rounds of multiply/xor (Salmon, Moraes, Dror, Shaw,
 * "Parallel random numbers: as easy as 1, 2, 3", SC'11; constants and
 * known-answer vectors from Random123).  Draw `index` of stream `stream`
 * under `seed` is a pure function of the three, so any partition of the
 * work over threads gives the same bits.  Layout: key = seed (low word
 * first), counter = (index/4 low, index/4 high, stream low, stream high),
 * draw = lane index%4.
 */
#include <math.h>

#include "internal.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

static void philox_round(uint32_t c[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t out0 = hi1 ^ c[1] ^ k[0];
    uint32_t out2 = hi0 ^ c[3] ^ k[1];
    c[0] = out0;
    c[1] = lo1;
    c[2] = out2;
    c[3] = lo0;
}

void nnc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                       uint32_t out[4])
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(c, k);
    }
    for (int i = 0; i < 4; i++)
        out[i] = c[i];
}

/* The block holding draws 4*block .. 4*block+3 of (seed, stream). */
static void rand_block(uint64_t seed, uint64_t stream, uint64_t block,
                       uint32_t out[4])
{
    uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32),
                       (uint32_t)stream, (uint32_t)(stream >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    nnc_philox4x32_10(ctr, key, out);
}

uint32_t nnc_rand_bits(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint32_t out[4];
    rand_block(seed, stream, index / 4, out);
    return out[index % 4];
}

/* 24 random bits scaled into [0, 1): every value is exact in a float. */
static float bits_to_unit(uint32_t x) { return (float)(x >> 8) * 0x1p-24f; }

float nnc_rand_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    return bits_to_unit(nnc_rand_bits(seed, stream, index));
}

/* Two normals from two words; u1 in (0, 1) so the log is finite. */
static void box_muller(uint32_t x1, uint32_t x2, double *z0, double *z1)
{
    double u1 = ((double)x1 + 0.5) * 0x1p-32;
    double u2 = (double)x2 * 0x1p-32;
    double r = sqrt(-2.0 * log(u1));
    double theta = 2.0 * 3.14159265358979323846 * u2;
    *z0 = r * cos(theta);
    *z1 = r * sin(theta);
}

double nnc_rand_normal(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint32_t w[4];
    double z[2];
    rand_block(seed, stream, index / 4, w);
    int pair = (int)(index % 4) / 2;
    box_muller(w[2 * pair], w[2 * pair + 1], &z[0], &z[1]);
    return z[index % 2];
}

uint64_t nnc_name_stream(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a offset basis */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return h | (1ull << 63);
}

uint64_t nnc_dropout_stream(uint64_t site, uint64_t step)
{
    return ((step << 16) | (site & 0xffff)) & ~(1ull << 63);
}

/* ---- bulk fills, partitioned over the pool by Philox block --------------- */

typedef struct FillJob {
    float *dst;
    int64_t n;
    int normal;   /* 0: uniform, 1: normal */
    double scale; /* uniform: hi - lo; normal: std */
    double shift; /* uniform: lo; normal: mean */
    uint64_t seed, stream;
} FillJob;

static void fill_blocks(void *ctx, int64_t begin, int64_t end)
{
    const FillJob *j = ctx;
    for (int64_t blk = begin; blk < end; blk++) {
        uint32_t w[4];
        double v[4];
        rand_block(j->seed, j->stream, (uint64_t)blk, w);
        if (j->normal) {
            box_muller(w[0], w[1], &v[0], &v[1]);
            box_muller(w[2], w[3], &v[2], &v[3]);
        } else {
            for (int i = 0; i < 4; i++)
                v[i] = bits_to_unit(w[i]);
        }
        int64_t first = blk * 4;
        int lanes = j->n - first < 4 ? (int)(j->n - first) : 4;
        for (int i = 0; i < lanes; i++)
            j->dst[first + i] = (float)(j->shift + j->scale * v[i]);
    }
}

/* Below this many blocks the wake-up of the pool costs more than it saves. */
#define FILL_SERIAL_BLOCKS 4096

static void fill_run(FillJob *job)
{
    int64_t blocks = (job->n + 3) / 4;
    if (blocks < FILL_SERIAL_BLOCKS)
        fill_blocks(job, 0, blocks);
    else
        nnc_parallel_for(blocks, fill_blocks, job);
}

void nncrt_fill_uniform(float *dst, int64_t n, double lo, double hi,
                        uint64_t seed, uint64_t stream)
{
    FillJob job = {dst, n, 0, hi - lo, lo, seed, stream};
    fill_run(&job);
}

void nncrt_fill_normal(float *dst, int64_t n, double mean, double std,
                       uint64_t seed, uint64_t stream)
{
    FillJob job = {dst, n, 1, std, mean, seed, stream};
    fill_run(&job);
}

/* ---- dropout ------------------------------------------------------------- */

typedef struct DropJob {
    float *mask;
    int64_t n;
    float p, keep_scale;
    uint64_t seed, stream;
} DropJob;

static void dropout_blocks(void *ctx, int64_t begin, int64_t end)
{
    const DropJob *j = ctx;
    for (int64_t blk = begin; blk < end; blk++) {
        uint32_t w[4];
        rand_block(j->seed, j->stream, (uint64_t)blk, w);
        int64_t first = blk * 4;
        int lanes = j->n - first < 4 ? (int)(j->n - first) : 4;
        for (int i = 0; i < lanes; i++)
            j->mask[first + i] =
                bits_to_unit(w[i]) >= j->p ? j->keep_scale : 0.0f;
    }
}

void nnc_dropout_mask(float *mask, int64_t n, float p, uint64_t seed,
                      uint64_t site, uint64_t step)
{
    if (n <= 0)
        return;
    DropJob job = {mask, n,
                   p,    p < 1.0f ? 1.0f / (1.0f - p) : 0.0f,
                   seed, nnc_dropout_stream(site, step)};
    int64_t blocks = (n + 3) / 4;
    if (blocks < FILL_SERIAL_BLOCKS)
        dropout_blocks(&job, 0, blocks);
    else
        nnc_parallel_for(blocks, dropout_blocks, &job);
}
