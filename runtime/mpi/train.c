/* train.c — the data-parallel operations on a context: broadcast, the
 * gradient all-reduce, the step, checkpoints and the replica check.
 *
 * The all-reduce sends the loss and a failure count with the gradients (as
 * two more floats after the last gradient), so a step costs no extra
 * message and every rank learns at once whether some rank's backward pass
 * failed; then no rank updates, and the instances stay identical.  The
 * gradients are averaged before NAME_update runs, and NAME_update clips
 * the gradients it finds in place by their global norm: the norm clipping
 * sees is the averaged gradients' norm, as in one process on the whole
 * batch.  Checkpoints: rank 0 reads or writes the file and shares its
 * status; a loaded checkpoint reaches the other ranks by broadcast, so
 * only rank 0 needs the file.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int check_root(nnc_mpi *dp, int root)
{
    int rc = nncmpi_check_usable(dp);
    if (rc == NNC_OK && (root < 0 || root >= dp->size))
        rc = nnc_rt_set_error(NNC_ERR_ARG, "nnc_mpi: root %d is not a rank of 0..%d",
                              root, dp->size - 1);
    return rc;
}

static int check_trainable(nnc_mpi *dp)
{
    int rc = nncmpi_check_usable(dp);
    if (rc == NNC_OK && (!dp->model.update || dp->model.info->step_offset < 0))
        rc = nnc_rt_set_error(NNC_ERR_ARG,
                              "nnc_mpi: model '%s' has no training entry points "
                              "(update, or `train` in the model)",
                              dp->model.info->name);
    return rc;
}

int nnc_mpi_broadcast(nnc_mpi *dp, int root, unsigned what)
{
    int rc = check_root(dp, root);
    if (rc == NNC_OK && (what & NNC_MPI_PARAMS))
        rc = nncmpi_run(dp, &dp->params, NNCMPI_BROADCAST, root,
                        "the parameter broadcast");
    if (rc == NNC_OK && (what & NNC_MPI_OPT_STATE))
        rc = nncmpi_run(dp, &dp->state, NNCMPI_BROADCAST, root,
                        "the optimizer state broadcast");
    return rc;
}

/* Averages the gradients and the extras (loss, failures). */
static int reduce_grads(nnc_mpi *dp, float loss, int failed)
{
    dp->extras[0] = loss;
    dp->extras[1] = (float)failed;
    return nncmpi_run(dp, &dp->grads, NNCMPI_MEAN, 0,
                      "the gradient all-reduce");
}

int nnc_mpi_allreduce_grads(nnc_mpi *dp, float *loss)
{
    int rc = nncmpi_check_usable(dp);
    if (rc == NNC_OK)
        rc = reduce_grads(dp, loss ? *loss : 0.0f, 0);
    if (rc == NNC_OK && loss)
        *loss = dp->extras[0];
    return rc;
}

/* After a reduce: how many ranks said their backward failed. */
static int failures(const nnc_mpi *dp)
{
    return (int)lroundf(dp->extras[1] * (float)dp->size);
}

static int report_failures(nnc_mpi *dp, int failed_here, const char *msg)
{
    int n = failures(dp);
    if (failed_here)
        return nnc_rt_set_error(NNC_ERR_RANGE, "rank %d of %d: %s (no rank updated)",
                                dp->rank, dp->size, msg);
    return nnc_rt_set_error(NNC_ERR_RANGE,
                            "rank %d of %d: backward failed on %d of %d ranks (a "
                            "data error; their messages say which); no rank "
                            "updated", dp->rank, dp->size, n, dp->size);
}

int nnc_mpi_step(nnc_mpi *dp, nnc_mpi_backward_fn backward, void *batch,
                 float *loss)
{
    if (loss)
        *loss = NAN;
    int rc = check_trainable(dp);
    if (rc == NNC_OK && !backward)
        rc = nnc_rt_set_error(NNC_ERR_ARG, "nnc_mpi_step: no backward function");
    if (rc != NNC_OK)
        return rc;
    nnc_clear_error();
    float l = backward(dp->model.instance, batch);
    int failed = isnan(l) && nnc_last_error()[0] != '\0';
    char msg[NNCMPI_MSG_CAP] = "";
    if (failed)
        snprintf(msg, sizeof msg, "%s", nnc_last_error());
    rc = reduce_grads(dp, failed ? 0.0f : l, failed);
    if (rc != NNC_OK)
        return rc;
    if (failures(dp) > 0)
        return report_failures(dp, failed, msg);
    dp->model.update(dp->model.instance);
    if (loss)
        *loss = dp->extras[0];
    return NNC_OK;
}

int nnc_mpi_save_checkpoint(nnc_mpi *dp, const char *path)
{
    int rc = check_trainable(dp);
    if (rc != NNC_OK)
        return rc;
    if (!dp->model.save_checkpoint)
        return nnc_rt_set_error(NNC_ERR_ARG, "nnc_mpi: the model has no "
                                "save_checkpoint entry point");
    int status = NNC_OK;
    if (dp->rank == 0)
        status = dp->model.save_checkpoint(dp->model.instance, path);
    return nncmpi_share_status(dp, 0, status, "the checkpoint save on rank 0");
}

int nnc_mpi_load_checkpoint(nnc_mpi *dp, const char *path)
{
    int rc = check_trainable(dp);
    if (rc != NNC_OK)
        return rc;
    if (!dp->model.load_checkpoint)
        return nnc_rt_set_error(NNC_ERR_ARG, "nnc_mpi: the model has no "
                                "load_checkpoint entry point");
    int status = NNC_OK;
    if (dp->rank == 0)
        status = dp->model.load_checkpoint(dp->model.instance, path);
    rc = nncmpi_share_status(dp, 0, status, "the checkpoint load on rank 0");
    if (rc != NNC_OK)
        return rc;
    return nnc_mpi_broadcast(dp, 0, NNC_MPI_PARAMS | NNC_MPI_OPT_STATE);
}

static uint64_t checksum(const nncmpi_spans *s, uint64_t h)
{
    for (int i = 0; i < s->n; i++)
        h = nncmpi_fnv(h, s->v[i].ptr, (size_t)s->v[i].bytes);
    return h;
}

int nnc_mpi_check_replicas(nnc_mpi *dp)
{
    int rc = nncmpi_check_usable(dp);
    if (rc != NNC_OK)
        return rc;
    uint64_t mine[NNCMPI_GATHER_WORDS] = {
        checksum(&dp->state, checksum(&dp->params, NNCMPI_FNV_SEED))};
    rc = nncmpi_gather(dp, mine, "the replica check");
    if (rc != NNC_OK)
        return rc;
    int differ = 0, first = -1;
    for (int r = 1; r < dp->size; r++)
        if (dp->gathered[r * NNCMPI_GATHER_WORDS] != dp->gathered[0]) {
            differ++;
            first = first < 0 ? r : first;
        }
    if (differ)
        return nnc_rt_set_error(NNC_MPI_ERR_COMM,
                                "rank %d of %d: the parameters or optimizer state "
                                "of %d rank(s) differ from rank 0's (first: rank %d)",
                                dp->rank, dp->size, differ, first);
    return NNC_OK;
}
