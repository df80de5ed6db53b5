/* buckets.c — bucketed collectives over a list of spans of the instance.
 *
 * The tensors of a span list (gradients, parameters or optimizer state, in
 * the model table's order) are treated as one byte string cut into buckets
 * of dp->bucket_bytes: bucket k holds bytes [k*cap, (k+1)*cap) of the
 * concatenation, so a large tensor spans several buckets and many small
 * ones share one.  Each bucket is packed into one of two buffers, sent as
 * one non-blocking collective, and unpacked once it completes; while
 * bucket k is in flight, bucket k+1 is packed and started.  The plan
 * depends only on the table and the bucket size, which nnc_mpi_new checks
 * are the same on every rank, so every rank issues the same collectives
 * with the same counts, and a float sum of the same two (or N) values in
 * the same positions gives the same bits on every run.
 *
 * NNCMPI_MEAN sums floats (MPI_Iallreduce, MPI_SUM, in place) and divides
 * each sum by the number of ranks; NNCMPI_BROADCAST copies the root's
 * bytes (MPI_Ibcast) and leaves the root's instance untouched.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Where packing or unpacking stands in a span list. */
typedef struct cursor {
    int span;
    int64_t off;
} cursor;

typedef struct bucket_run {
    nnc_mpi *dp;
    const nncmpi_spans *spans;
    nncmpi_op op;
    int root;
    const char *what;
    int count; /* buckets */
    cursor pack, unpack;
    MPI_Request req[2];
} bucket_run;

/* Copies `bytes` from the spans at *c into buf (to_buf) or back. */
static void copy_spans(const nncmpi_spans *s, cursor *c, char *buf,
                       int64_t bytes, int to_buf)
{
    while (bytes > 0) {
        const nncmpi_span *sp = &s->v[c->span];
        int64_t n = sp->bytes - c->off;
        if (n > bytes)
            n = bytes;
        if (to_buf)
            memcpy(buf, sp->ptr + c->off, (size_t)n);
        else
            memcpy(sp->ptr + c->off, buf, (size_t)n);
        buf += n;
        bytes -= n;
        c->off += n;
        if (c->off == sp->bytes) {
            c->span++;
            c->off = 0;
        }
    }
}

int nncmpi_bucket_count(const nnc_mpi *dp, const nncmpi_spans *spans)
{
    int64_t cap = (int64_t)dp->bucket_bytes;
    return (int)((spans->bytes + cap - 1) / cap);
}

static int64_t bucket_len(const bucket_run *r, int k)
{
    int64_t cap = (int64_t)r->dp->bucket_bytes;
    int64_t left = r->spans->bytes - (int64_t)k * cap;
    return left < cap ? left : cap;
}

static void describe(const bucket_run *r, int k, char *out, size_t cap)
{
    snprintf(out, cap, "%s (bucket %d of %d)", r->what, k + 1, r->count);
}

static int start_bucket(bucket_run *r, int k)
{
    nnc_mpi *dp = r->dp;
    char *buf = dp->buf[k & 1];
    int64_t len = bucket_len(r, k);
    int rc;
    if (r->op == NNCMPI_MEAN) {
        copy_spans(r->spans, &r->pack, buf, len, 1);
        rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)(len / 4), MPI_FLOAT,
                            MPI_SUM, dp->comm, &r->req[k & 1]);
    } else {
        if (dp->rank == r->root)
            copy_spans(r->spans, &r->pack, buf, len, 1);
        rc = MPI_Ibcast(buf, (int)len, MPI_BYTE, r->root, dp->comm,
                        &r->req[k & 1]);
    }
    if (rc == MPI_SUCCESS)
        return NNC_OK;
    char what[160];
    describe(r, k, what, sizeof what);
    return nncmpi_comm_error(dp, rc,
                             r->op == NNCMPI_MEAN ? "MPI_Iallreduce" : "MPI_Ibcast",
                             what);
}

static void divide(float *x, int64_t n, int size)
{
    float d = (float)size;
    for (int64_t i = 0; i < n; i++)
        x[i] /= d;
}

static int finish_bucket(bucket_run *r, int k)
{
    nnc_mpi *dp = r->dp;
    char what[160];
    describe(r, k, what, sizeof what);
    int rc = nncmpi_wait(dp, dp->comm, &r->req[k & 1], what);
    if (rc != NNC_OK)
        return rc;
    char *buf = dp->buf[k & 1];
    int64_t len = bucket_len(r, k);
    if (r->op == NNCMPI_MEAN) {
        divide((float *)buf, len / 4, dp->size);
        copy_spans(r->spans, &r->unpack, buf, len, 0);
    } else if (dp->rank != r->root) {
        copy_spans(r->spans, &r->unpack, buf, len, 0);
    }
    return NNC_OK;
}

int nncmpi_run(nnc_mpi *dp, const nncmpi_spans *spans, nncmpi_op op,
               int root, const char *what)
{
    bucket_run r = {dp, spans, op, root, what, nncmpi_bucket_count(dp, spans),
                    {0, 0}, {0, 0}, {MPI_REQUEST_NULL, MPI_REQUEST_NULL}};
    for (int k = 0; k < r.count; k++) {
        int rc = k >= 2 ? finish_bucket(&r, k - 2) : NNC_OK;
        if (rc == NNC_OK)
            rc = start_bucket(&r, k);
        if (rc != NNC_OK)
            return rc;
    }
    for (int k = r.count >= 2 ? r.count - 2 : 0; k < r.count; k++) {
        int rc = finish_bucket(&r, k);
        if (rc != NNC_OK)
            return rc;
    }
    return NNC_OK;
}
