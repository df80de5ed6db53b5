/* nnc_mpi.h — libnncrt_mpi: data-parallel training of nnc models over MPI.
 *
 * N processes (on one host or many, started by mpirun) each hold one
 * instance of the same compiled model and train it on their own shard of
 * every batch.  This library keeps the instances identical: it broadcasts
 * the initial parameters from one rank, averages the gradients across
 * ranks after each backward pass (packed into fixed-size buckets, in table
 * order, so a large model sends a few large messages rather than one per
 * tensor), then lets every rank apply the same update.  With the loss a mean
 * over the batch, a step on N ranks with B examples each equals a step of
 * one process on the N*B examples concatenated, gradient clipping included
 * (NAME_update clips the averaged gradients by their global norm).
 *
 * Every collective is non-blocking and waited for with a deadline
 * (MPI_Iallreduce, MPI_Ibcast, polled with MPI_Test): a rank that died or
 * hangs makes the others print a message and end the job with MPI_Abort
 * (exit status NNC_MPI_TIMEOUT_EXIT) after the timeout, instead of waiting
 * forever.  Errors MPI reports (the library's communicator uses
 * MPI_ERRORS_RETURN) become a negative status with nnc_last_error() set.
 *
 * Link with -lnncrt_mpi -lnncrt and MPI (pkg-config nncrt_mpi, or CMake
 * find_package(nncrt_mpi) and target nnc::nncrt_mpi).  docs/mpi.md is the
 * guide.  Calls are collective unless marked otherwise: every rank of the
 * communicator makes them in the same order.  Only the thread that called
 * MPI_Init_thread (MPI_THREAD_FUNNELED is enough) may call them.
 */
#ifndef NNC_MPI_H
#define NNC_MPI_H

#include <mpi.h>

#include "nnc.h"

#if defined(NNC_BUILDING_RUNTIME_MPI) && defined(__GNUC__)
#define NNC_MPI_API __attribute__((visibility("default")))
#else
#define NNC_MPI_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Status of a failed MPI call, or of ranks that disagree (different
 * models, a failed checkpoint load on the root).  Beside nnc_status. */
#define NNC_MPI_ERR_COMM (-20)
/* The status MPI_Abort ends the job with when a collective times out. */
#define NNC_MPI_TIMEOUT_EXIT 124
#define NNC_MPI_DEFAULT_TIMEOUT      60.0
#define NNC_MPI_DEFAULT_BUCKET_BYTES (4u << 20)

/* The model's entry points, behind void pointers because the runtime does
 * not know the model's symbols.  NNC_MPI_DEFINE_MODEL(NAME) below fills it
 * for a model compiled with `train`. */
typedef struct nnc_mpi_model {
    void *instance;             /* the NAME * */
    const nnc_model_info *info; /* NAME_info() */
    float *(*param)(void *instance, const char *name); /* NAME_param */
    float *(*grad)(void *instance, const char *name);  /* NAME_grad */
    void (*update)(void *instance);                     /* NAME_update */
    int (*save_checkpoint)(const void *instance, const char *path);
    int (*load_checkpoint)(void *instance, const char *path);
} nnc_mpi_model;

/* Defines `static inline nnc_mpi_model NAME_mpi_model(NAME *m)` (and the
 * wrappers it points to) after #include "NAME.h". */
#define NNC_MPI_DEFINE_MODEL(NAME)                                            \
    static inline float *NAME##_mpi_param_(void *m, const char *n)            \
    { return NAME##_param((NAME *)m, n); }                                    \
    static inline float *NAME##_mpi_grad_(void *m, const char *n)             \
    { return NAME##_grad((NAME *)m, n); }                                     \
    static inline void NAME##_mpi_update_(void *m) { NAME##_update((NAME *)m); } \
    static inline int NAME##_mpi_save_(const void *m, const char *p)          \
    { return NAME##_save_checkpoint((const NAME *)m, p); }                    \
    static inline int NAME##_mpi_load_(void *m, const char *p)                \
    { return NAME##_load_checkpoint((NAME *)m, p); }                          \
    static inline nnc_mpi_model NAME##_mpi_model(NAME *m)                     \
    {                                                                         \
        nnc_mpi_model r = {m, NAME##_info(), NAME##_mpi_param_,               \
                           NAME##_mpi_grad_, NAME##_mpi_update_,              \
                           NAME##_mpi_save_, NAME##_mpi_load_};               \
        return r;                                                             \
    }

typedef struct nnc_mpi_options {
    /* Seconds a rank waits for the others in one collective before it
     * aborts the job.  0: the environment variable NNC_MPI_TIMEOUT, else
     * NNC_MPI_DEFAULT_TIMEOUT.  It must exceed the longest time one rank
     * can spend between two collectives (a step, a checkpoint save). */
    double timeout;
    /* Bytes per bucket (rounded down to a multiple of 8, at least 64);
     * 0: NNC_MPI_DEFAULT_BUCKET_BYTES. */
    size_t bucket_bytes;
    /* Threads of libnncrt's pool on each rank.  0: unless NNC_NUM_THREADS
     * is set, divide the CPUs among the ranks sharing a host when their
     * pools would otherwise oversubscribe it.  > 0: that many.  < 0: leave
     * the pool alone. */
    int threads;
} nnc_mpi_options;

typedef struct nnc_mpi nnc_mpi; /* a data-parallel context */

/* Duplicates `comm` (errors return), checks that every rank has the same
 * model table, plans the buckets and allocates their buffers (the only
 * allocation: later calls allocate nothing but what checkpoint files
 * need).  `model` is copied.  `options` may be NULL.  NULL with
 * nnc_last_error() set on failure (the same on every rank when the ranks
 * disagree). */
NNC_MPI_API nnc_mpi *nnc_mpi_new(MPI_Comm comm, const nnc_mpi_model *model,
                                 const nnc_mpi_options *options);
NNC_MPI_API void nnc_mpi_free(nnc_mpi *dp);

/* Local: this rank and the number of ranks. */
NNC_MPI_API int nnc_mpi_rank(const nnc_mpi *dp);
NNC_MPI_API int nnc_mpi_size(const nnc_mpi *dp);
/* Local: the timeout in seconds and the bucket size in bytes in use, and
 * the number of buckets one gradient all-reduce sends. */
NNC_MPI_API double nnc_mpi_timeout(const nnc_mpi *dp);
NNC_MPI_API size_t nnc_mpi_bucket_bytes(const nnc_mpi *dp);
NNC_MPI_API int nnc_mpi_grad_buckets(const nnc_mpi *dp);
/* Local: the optimizer steps the instance has taken (its step counter,
 * also after nnc_mpi_load_checkpoint), or -1 for a model without train. */
NNC_MPI_API int64_t nnc_mpi_steps_done(const nnc_mpi *dp);

/* What nnc_mpi_broadcast sends. */
#define NNC_MPI_PARAMS    1u /* every parameter, frozen ones too */
#define NNC_MPI_OPT_STATE 2u /* optimizer state and step counter */

/* Copies the chosen tensors of rank `root`'s instance into every other
 * rank's: after NAME_init on every rank, nnc_mpi_broadcast(dp, 0,
 * NNC_MPI_PARAMS) makes them start equal. */
NNC_MPI_API int nnc_mpi_broadcast(nnc_mpi *dp, int root, unsigned what);

/* Replaces every gradient by its average over the ranks, and *loss (when
 * not NULL) by the average of the ranks' losses. */
NNC_MPI_API int nnc_mpi_allreduce_grads(nnc_mpi *dp, float *loss);

/* The rank's part of a step: calls NAME_backward on its shard and returns
 * the loss (e.g. `return mlp_backward(instance, b->x, b->y);`). */
typedef float (*nnc_mpi_backward_fn)(void *instance, void *batch);

/* One data-parallel training step: backward(instance, batch), the average
 * of the gradients and losses over the ranks, NAME_update.  *loss (may be
 * NULL) receives the average loss.  When backward failed on some rank (a
 * data error: NaN with nnc_last_error() set), no rank updates: every rank
 * returns NNC_ERR_RANGE and *loss is NaN, and the failing rank's message
 * says what was wrong. */
NNC_MPI_API int nnc_mpi_step(nnc_mpi *dp, nnc_mpi_backward_fn backward,
                             void *batch, float *loss);

/* Rank 0 writes the checkpoint (NAME_save_checkpoint, atomic); every rank
 * returns its status once it is written. */
NNC_MPI_API int nnc_mpi_save_checkpoint(nnc_mpi *dp, const char *path);
/* Rank 0 reads the checkpoint and sends parameters, optimizer state and
 * step to every rank, so only rank 0 needs the file.  Every rank returns
 * the same status; on failure no instance changed. */
NNC_MPI_API int nnc_mpi_load_checkpoint(nnc_mpi *dp, const char *path);

/* NNC_OK when every rank's parameters, optimizer state and step are
 * bitwise identical (compares a checksum); NNC_MPI_ERR_COMM naming the
 * ranks that differ otherwise.  For tests and debugging. */
NNC_MPI_API int nnc_mpi_check_replicas(nnc_mpi *dp);

/* Local: prints "nnc_mpi: rank R of N: MESSAGE" on stderr and ends the
 * whole job with MPI_Abort(code).  For a rank that cannot go on. */
NNC_MPI_API void nnc_mpi_abort(nnc_mpi *dp, int code, const char *fmt, ...)
    NNC_PRINTF(3, 4);

#ifdef __cplusplus
}
#endif

#endif /* NNC_MPI_H */
