/* internal.h — what the files of libnncrt_mpi share (hidden symbols).
 *
 * A context holds a private duplicate of the user's communicator, the
 * model's entry points and instance buffer, three span lists over that
 * buffer (gradients, parameters, optimizer state) and the two bucket
 * buffers that collectives pack into.  Files:
 *   context.c  nnc_mpi_new/free, the model table and thread checks
 *   buckets.c  the bucketed, pipelined collectives over span lists
 *   wait.c     waiting with a deadline; MPI errors and timeouts
 *   train.c    broadcast, gradient all-reduce, the step, checkpoints
 */
#ifndef NNC_MPI_INTERNAL_H
#define NNC_MPI_INTERNAL_H

#include <stdint.h>

#include "nnc_mpi.h"

/* A run of bytes in the instance buffer (or the context's extras). */
typedef struct nncmpi_span {
    char *ptr;
    int64_t bytes;
} nncmpi_span;

typedef struct nncmpi_spans {
    nncmpi_span *v;
    int n;
    int64_t bytes; /* sum of v[i].bytes */
} nncmpi_spans;

typedef enum nncmpi_op {
    NNCMPI_MEAN,      /* float sum over the ranks, divided by their number */
    NNCMPI_BROADCAST  /* bytes of the root */
} nncmpi_op;

struct nnc_mpi {
    MPI_Comm comm;
    int rank, size;
    int broken; /* an MPI call failed: later calls fail at once */
    nnc_mpi_model model;
    char *base; /* the instance buffer the table's offsets refer to */
    double timeout;
    size_t bucket_bytes;
    nncmpi_spans grads;  /* GRAD tensors in table order, then extras */
    nncmpi_spans params; /* PARAM and FROZEN_PARAM */
    nncmpi_spans state;  /* OPT_STATE, then the step counter */
    float extras[2];     /* reduced with the gradients: loss, failures */
    char *buf[2];        /* bucket buffers, bucket_bytes each */
    uint64_t *gathered;  /* NNCMPI_GATHER_WORDS per rank (nncmpi_gather) */
};

#define NNCMPI_GATHER_WORDS 4
#define NNCMPI_MSG_CAP      512

/* buckets.c: runs `op` over the concatenation of `spans`, in buckets of
 * dp->bucket_bytes, two in flight.  `what` names it in messages. */
int nncmpi_run(nnc_mpi *dp, const nncmpi_spans *spans, nncmpi_op op,
               int root, const char *what);
/* The number of buckets a span list takes. */
int nncmpi_bucket_count(const nnc_mpi *dp, const nncmpi_spans *spans);

/* wait.c: waits for `req` until done or dp->timeout seconds have passed
 * (then prints why and aborts the job through `comm`).  `what` says which
 * collective, for the message. */
int nncmpi_wait(nnc_mpi *dp, MPI_Comm comm, MPI_Request *req,
                const char *what);
/* Turns a failed MPI call's code into NNC_MPI_ERR_COMM with the message
 * "rank R of N: CALL (WHAT) failed: MPI's error string"; marks dp broken. */
int nncmpi_comm_error(nnc_mpi *dp, int code, const char *call,
                      const char *what);
/* NNC_MPI_ERR_COMM "... unusable after an earlier MPI error" if broken. */
int nncmpi_check_usable(nnc_mpi *dp);
/* Gathers NNCMPI_GATHER_WORDS words from every rank into dp->gathered
 * (rank r's at r * NNCMPI_GATHER_WORDS), waiting with the deadline. */
int nncmpi_gather(nnc_mpi *dp, const uint64_t *mine, const char *what);
/* FNV-1a, 64 bits, continuing from h (start with NNCMPI_FNV_SEED). */
#define NNCMPI_FNV_SEED 14695981039346656037ull
uint64_t nncmpi_fnv(uint64_t h, const void *data, size_t n);

/* Broadcasts a status and a message from `root`, waiting with the
 * deadline: every rank returns root's status, with root's message as its
 * last error when it is a failure. */
int nncmpi_share_status(nnc_mpi *dp, int root, int status, const char *what);

#endif /* NNC_MPI_INTERNAL_H */
