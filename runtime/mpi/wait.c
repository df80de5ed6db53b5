/* wait.c — waiting for a collective with a deadline, MPI errors, and the
 * two small collectives built on them (a shared status, a gather).
 *
 * A blocking collective waits forever when a peer hangs (an infinite loop,
 * a stuck file system, a stopped process); with a dead peer the outcome
 * depends on the launcher.  Every collective of this library is therefore
 * non-blocking and completed here: MPI_Test in a loop (which also drives
 * Open MPI's progress of non-blocking collectives, so the loop must not
 * pause while data flows: with a 50 us sleep between polls a 1 MB
 * all-reduce took several times longer).  For the first SPIN_SECONDS of a
 * wait it polls without pause, as MPI's own blocking calls do; a wait that
 * lasts longer is one for a rank that is behind, and then it sleeps
 * SLEEP_NS between polls to leave the CPU to ranks that still compute.
 * Past the deadline the rank prints what it was waiting for and calls
 * MPI_Abort, which ends every process of the job: a pending collective
 * cannot be cancelled, so there is no way to hand control back safely.
 * Errors MPI reports (the communicator has
 * MPI_ERRORS_RETURN) become NNC_MPI_ERR_COMM and nnc_last_error().
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define SPIN_SECONDS 0.05
#define SLEEP_NS     50000L

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void pause_briefly(void)
{
    struct timespec t = {0, SLEEP_NS};
    nanosleep(&t, NULL);
}

static void vabort(MPI_Comm comm, int code, const char *fmt, va_list ap)
{
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    char msg[NNCMPI_MSG_CAP];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "nnc_mpi: rank %d of %d: %s\n", rank, size, msg);
    fflush(stderr);
    MPI_Abort(comm, code);
}

void nnc_mpi_abort(nnc_mpi *dp, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vabort(dp ? dp->comm : MPI_COMM_WORLD, code, fmt, ap);
    va_end(ap);
}

static void timeout_abort(MPI_Comm comm, double timeout, const char *what)
{
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    fprintf(stderr,
            "nnc_mpi: rank %d of %d: timed out after %g s waiting for the "
            "other ranks in %s: a rank died, hangs, or is that far behind; "
            "aborting the job (NNC_MPI_TIMEOUT sets the timeout)\n",
            rank, size, timeout, what);
    fflush(stderr);
    MPI_Abort(comm, NNC_MPI_TIMEOUT_EXIT);
}

int nncmpi_wait(nnc_mpi *dp, MPI_Comm comm, MPI_Request *req,
                const char *what)
{
    double start = now_seconds();
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS)
            return nncmpi_comm_error(dp, rc, "MPI_Test", what);
        if (done)
            return NNC_OK;
        double waited = now_seconds() - start;
        if (waited > dp->timeout)
            timeout_abort(comm, dp->timeout, what);
        if (waited > SPIN_SECONDS)
            pause_briefly();
    }
}

int nncmpi_comm_error(nnc_mpi *dp, int code, const char *call,
                      const char *what)
{
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", code);
    dp->broken = 1;
    return nnc_rt_set_error(NNC_MPI_ERR_COMM, "rank %d of %d: %s (%s) failed: %s",
                            dp->rank, dp->size, call, what, text);
}

int nncmpi_check_usable(nnc_mpi *dp)
{
    if (!dp)
        return nnc_rt_set_error(NNC_ERR_ARG, "nnc_mpi: no context (NULL)");
    if (dp->broken)
        return nnc_rt_set_error(NNC_MPI_ERR_COMM,
                                "rank %d of %d: the nnc_mpi context is unusable "
                                "after an earlier MPI error",
                                dp->rank, dp->size);
    return NNC_OK;
}

/* What a root tells the others after a local operation. */
typedef struct shared_status {
    int32_t status;
    char msg[NNCMPI_MSG_CAP];
} shared_status;

int nncmpi_share_status(nnc_mpi *dp, int root, int status, const char *what)
{
    shared_status s;
    memset(&s, 0, sizeof s);
    s.status = status;
    if (dp->rank == root && status != NNC_OK)
        snprintf(s.msg, sizeof s.msg, "%s", nnc_last_error());
    MPI_Request req;
    int rc = MPI_Ibcast(&s, (int)sizeof s, MPI_BYTE, root, dp->comm, &req);
    if (rc != MPI_SUCCESS)
        return nncmpi_comm_error(dp, rc, "MPI_Ibcast", what);
    rc = nncmpi_wait(dp, dp->comm, &req, what);
    if (rc != NNC_OK)
        return rc;
    if (s.status != NNC_OK && dp->rank != root)
        nnc_rt_set_error(s.status, "rank %d: %s", root, s.msg);
    return s.status;
}

int nncmpi_gather(nnc_mpi *dp, const uint64_t *mine, const char *what)
{
    MPI_Request req;
    int rc = MPI_Iallgather(mine, NNCMPI_GATHER_WORDS, MPI_UINT64_T,
                            dp->gathered, NNCMPI_GATHER_WORDS, MPI_UINT64_T,
                            dp->comm, &req);
    if (rc != MPI_SUCCESS)
        return nncmpi_comm_error(dp, rc, "MPI_Iallgather", what);
    return nncmpi_wait(dp, dp->comm, &req, what);
}
