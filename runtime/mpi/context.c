/* context.c — creating and freeing a data-parallel context.
 *
 * nnc_mpi_new does the local work first (options, the instance buffer's
 * base, the span lists, the bucket buffers), then the collective part: it
 * duplicates the communicator (so the library's messages never meet the
 * application's and MPI_ERRORS_RETURN applies to its calls only) and
 * gathers from every rank whether its local work succeeded, a fingerprint
 * of its model table, its bucket size and its host.  Every rank sees the
 * same gathered words, so either all ranks get a context or all get NULL;
 * a rank compiled from another model, or with other dims, is refused
 * instead of corrupting the others' gradients.
 *
 * The base of the instance buffer is not part of the generated API; it is
 * NAME_param(first parameter) minus that parameter's table offset, and
 * every parameter and gradient pointer is checked against base + offset,
 * so the table really describes this instance.  Optimizer state and the
 * step counter are then reached through the table alone.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define MIN_BUCKET   64
#define MAX_BUCKET   (1u << 30)

uint64_t nncmpi_fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int resolve_timeout(nnc_mpi *dp, double requested)
{
    dp->timeout = NNC_MPI_DEFAULT_TIMEOUT;
    if (requested > 0) {
        dp->timeout = requested;
        return NNC_OK;
    }
    const char *env = getenv("NNC_MPI_TIMEOUT");
    if (!env || !*env)
        return NNC_OK;
    char *end;
    double t = strtod(env, &end);
    if (*end != '\0' || !(t > 0) || t > 1e9)
        return nnc_rt_set_error(NNC_ERR_ARG,
                                "NNC_MPI_TIMEOUT='%s' is not a positive number "
                                "of seconds", env);
    dp->timeout = t;
    return NNC_OK;
}

static int resolve_options(nnc_mpi *dp, const nnc_mpi_options *o)
{
    size_t bucket = o && o->bucket_bytes ? o->bucket_bytes
                                         : NNC_MPI_DEFAULT_BUCKET_BYTES;
    if (bucket > MAX_BUCKET)
        bucket = MAX_BUCKET;
    bucket -= bucket % 8;
    dp->bucket_bytes = bucket < MIN_BUCKET ? MIN_BUCKET : bucket;
    return resolve_timeout(dp, o ? o->timeout : 0);
}

static int is_param(const nnc_tensor_info *t)
{
    return t->role == NNC_ROLE_PARAM || t->role == NNC_ROLE_FROZEN_PARAM;
}

static int find_base(nnc_mpi *dp)
{
    const nnc_model_info *info = dp->model.info;
    for (int i = 0; i < info->n_tensors; i++) {
        const nnc_tensor_info *t = &info->tensors[i];
        if (!is_param(t))
            continue;
        char *p = (char *)dp->model.param(dp->model.instance, t->name);
        if (!p)
            return nnc_rt_set_error(NNC_ERR_ARG, "model '%s': param('%s') is NULL",
                                    info->name, t->name);
        dp->base = p - t->offset;
        return NNC_OK;
    }
    return nnc_rt_set_error(NNC_ERR_ARG, "model '%s' has no parameters",
                            info->name);
}

/* Every parameter and gradient pointer the model gives is base + offset. */
static int check_pointers(const nnc_mpi *dp)
{
    const nnc_mpi_model *m = &dp->model;
    for (int i = 0; i < m->info->n_tensors; i++) {
        const nnc_tensor_info *t = &m->info->tensors[i];
        const char *p = NULL;
        if (is_param(t))
            p = (const char *)m->param(m->instance, t->name);
        else if (t->role == NNC_ROLE_GRAD && m->grad)
            p = (const char *)m->grad(m->instance, t->name);
        else
            continue;
        if (p != dp->base + t->offset)
            return nnc_rt_set_error(
                NNC_ERR_ARG, "model '%s': %s('%s') is not where the table puts it",
                m->info->name, is_param(t) ? "param" : "grad", t->name);
    }
    return NNC_OK;
}

static void add_span(nncmpi_spans *s, char *ptr, int64_t bytes)
{
    s->v[s->n].ptr = ptr;
    s->v[s->n].bytes = bytes;
    s->n++;
    s->bytes += bytes;
}

static int alloc_spans(nncmpi_spans *s, int n)
{
    s->v = calloc((size_t)n + 1, sizeof *s->v);
    return s->v ? NNC_OK : nnc_rt_set_error(NNC_ERR_NOMEM, "nnc_mpi: out of memory");
}

static int build_spans(nnc_mpi *dp)
{
    const nnc_model_info *info = dp->model.info;
    int n = info->n_tensors;
    if (alloc_spans(&dp->grads, n + 1) || alloc_spans(&dp->params, n) ||
        alloc_spans(&dp->state, n + 1))
        return NNC_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        const nnc_tensor_info *t = &info->tensors[i];
        int64_t bytes = t->numel * (int64_t)nnc_dtype_size(t->dtype);
        if (t->role == NNC_ROLE_GRAD && t->dtype != NNC_F32)
            return nnc_rt_set_error(NNC_ERR_ARG, "model '%s': gradient '%s' is not F32",
                                    info->name, t->name);
        if (t->role == NNC_ROLE_GRAD)
            add_span(&dp->grads, dp->base + t->offset, bytes);
        else if (is_param(t))
            add_span(&dp->params, dp->base + t->offset, bytes);
        else if (t->role == NNC_ROLE_OPT_STATE)
            add_span(&dp->state, dp->base + t->offset, bytes);
    }
    add_span(&dp->grads, (char *)dp->extras, (int64_t)sizeof dp->extras);
    if (info->step_offset >= 0)
        add_span(&dp->state, dp->base + info->step_offset, 8);
    return NNC_OK;
}

/* Two buffers of one bucket, or of the largest span list when smaller. */
static int alloc_buffers(nnc_mpi *dp)
{
    int64_t need = dp->grads.bytes;
    if (dp->params.bytes > need)
        need = dp->params.bytes;
    if (dp->state.bytes > need)
        need = dp->state.bytes;
    size_t bytes = need < (int64_t)dp->bucket_bytes ? (size_t)(need + 7) / 8 * 8
                                                    : dp->bucket_bytes;
    for (int i = 0; i < 2; i++)
        if (!(dp->buf[i] = malloc(bytes)))
            return nnc_rt_set_error(NNC_ERR_NOMEM, "nnc_mpi: out of memory");
    return NNC_OK;
}

static int check_model(const nnc_mpi_model *m)
{
    if (!m || !m->instance || !m->info || !m->param)
        return nnc_rt_set_error(NNC_ERR_ARG,
                                "nnc_mpi_new: the model needs instance, info "
                                "and param");
    return nnc_model_check(m->info);
}

static int local_setup(nnc_mpi *dp, const nnc_mpi_model *model,
                       const nnc_mpi_options *options)
{
    int rc = resolve_options(dp, options);
    if (rc == NNC_OK)
        rc = check_model(model);
    if (rc != NNC_OK)
        return rc;
    dp->model = *model;
    rc = find_base(dp);
    if (rc == NNC_OK)
        rc = check_pointers(dp);
    if (rc == NNC_OK)
        rc = build_spans(dp);
    if (rc == NNC_OK)
        rc = alloc_buffers(dp);
    return rc;
}

static uint64_t model_hash(const nnc_model_info *info)
{
    uint64_t h = nncmpi_fnv(NNCMPI_FNV_SEED, info->name, strlen(info->name));
    int64_t head[] = {info->n_tensors, info->total_bytes, info->step_offset};
    h = nncmpi_fnv(h, head, sizeof head);
    for (int i = 0; i < info->n_tensors; i++) {
        const nnc_tensor_info *t = &info->tensors[i];
        int64_t v[] = {t->role, t->dtype, t->rank, t->numel, t->offset};
        h = nncmpi_fnv(h, t->name, strlen(t->name) + 1);
        h = nncmpi_fnv(h, v, sizeof v);
        h = nncmpi_fnv(h, t->shape, sizeof(int64_t) * (size_t)t->rank);
    }
    return h;
}

static uint64_t host_hash(void)
{
    char name[MPI_MAX_PROCESSOR_NAME + 1] = "";
    int len = 0;
    MPI_Get_processor_name(name, &len);
    return nncmpi_fnv(NNCMPI_FNV_SEED, name, (size_t)len);
}

static int dup_comm(nnc_mpi *dp, MPI_Comm comm)
{
    MPI_Request req;
    const char *what = "nnc_mpi_new (duplicating the communicator)";
    int rc = MPI_Comm_idup(comm, &dp->comm, &req);
    if (rc != MPI_SUCCESS)
        rc = nncmpi_comm_error(dp, rc, "MPI_Comm_idup", what);
    else
        rc = nncmpi_wait(dp, comm, &req, what);
    if (rc != NNC_OK) {
        dp->comm = MPI_COMM_NULL;
        return rc;
    }
    MPI_Comm_set_errhandler(dp->comm, MPI_ERRORS_RETURN);
    return NNC_OK;
}

/* The ranks whose words differ from rank 0's at `word`: the first, or -1. */
static int first_disagreeing(const nnc_mpi *dp, int word)
{
    for (int r = 1; r < dp->size; r++)
        if (dp->gathered[r * NNCMPI_GATHER_WORDS + word] != dp->gathered[word])
            return r;
    return -1;
}

static int check_agreement(nnc_mpi *dp, int local_rc, const char *local_msg)
{
    for (int r = 0; r < dp->size; r++)
        if (!dp->gathered[r * NNCMPI_GATHER_WORDS]) {
            if (r == dp->rank)
                return nnc_rt_set_error(local_rc, "rank %d of %d: %s", dp->rank,
                                        dp->size, local_msg);
            return nnc_rt_set_error(NNC_MPI_ERR_COMM,
                                    "rank %d of %d: nnc_mpi_new failed on rank %d "
                                    "(its message says why)",
                                    dp->rank, dp->size, r);
        }
    int r = first_disagreeing(dp, 1);
    if (r >= 0)
        return nnc_rt_set_error(NNC_MPI_ERR_COMM,
                                "rank %d of %d: rank %d's model table differs from "
                                "rank 0's (another model, other dims, or another "
                                "nnc)", dp->rank, dp->size, r);
    r = first_disagreeing(dp, 2);
    if (r >= 0)
        return nnc_rt_set_error(NNC_MPI_ERR_COMM,
                                "rank %d of %d: rank %d's bucket size %llu differs "
                                "from rank 0's %llu", dp->rank, dp->size, r,
                                (unsigned long long)dp->gathered[r * NNCMPI_GATHER_WORDS + 2],
                                (unsigned long long)dp->gathered[2]);
    return NNC_OK;
}

static int agree(nnc_mpi *dp, int local_rc, const char *local_msg)
{
    uint64_t mine[NNCMPI_GATHER_WORDS] = {
        local_rc == NNC_OK, local_rc == NNC_OK ? model_hash(dp->model.info) : 0,
        dp->bucket_bytes, host_hash()};
    dp->gathered = calloc((size_t)dp->size * NNCMPI_GATHER_WORDS, sizeof(uint64_t));
    if (!dp->gathered)
        nnc_mpi_abort(dp, 1, "nnc_mpi_new: out of memory");
    int rc = nncmpi_gather(dp, mine, "nnc_mpi_new (checking the ranks agree)");
    return rc != NNC_OK ? rc : check_agreement(dp, local_rc, local_msg);
}

static int ranks_on_my_host(const nnc_mpi *dp)
{
    int n = 0;
    for (int r = 0; r < dp->size; r++)
        n += dp->gathered[r * NNCMPI_GATHER_WORDS + 3] ==
             dp->gathered[dp->rank * NNCMPI_GATHER_WORDS + 3];
    return n;
}

static void set_threads(const nnc_mpi *dp, const nnc_mpi_options *o)
{
    int want = o ? o->threads : 0;
    if (want > 0) {
        nnc_set_num_threads(want);
        return;
    }
    const char *env = getenv("NNC_NUM_THREADS");
    if (want < 0 || (env && *env))
        return;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int local = ranks_on_my_host(dp);
    if (cpus > 0 && (long)nnc_get_num_threads() * local > cpus)
        nnc_set_num_threads(cpus / local > 0 ? (int)(cpus / local) : 1);
}

nnc_mpi *nnc_mpi_new(MPI_Comm comm, const nnc_mpi_model *model,
                     const nnc_mpi_options *options)
{
    nnc_mpi *dp = calloc(1, sizeof *dp);
    if (!dp)
        nnc_mpi_abort(NULL, 1, "nnc_mpi_new: out of memory");
    dp->comm = MPI_COMM_NULL;
    MPI_Comm_rank(comm, &dp->rank);
    MPI_Comm_size(comm, &dp->size);
    int local_rc = local_setup(dp, model, options);
    char local_msg[NNCMPI_MSG_CAP] = "";
    if (local_rc != NNC_OK)
        strncpy(local_msg, nnc_last_error(), sizeof local_msg - 1);
    int rc = dup_comm(dp, comm);
    if (rc == NNC_OK)
        rc = agree(dp, local_rc, local_msg);
    if (rc != NNC_OK) {
        nnc_mpi_free(dp);
        return NULL;
    }
    set_threads(dp, options);
    return dp;
}

void nnc_mpi_free(nnc_mpi *dp)
{
    if (!dp)
        return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (dp->comm != MPI_COMM_NULL && !finalized)
        MPI_Comm_free(&dp->comm);
    free(dp->buf[0]);
    free(dp->buf[1]);
    free(dp->grads.v);
    free(dp->params.v);
    free(dp->state.v);
    free(dp->gathered);
    free(dp);
}

int nnc_mpi_rank(const nnc_mpi *dp) { return dp->rank; }
int nnc_mpi_size(const nnc_mpi *dp) { return dp->size; }
double nnc_mpi_timeout(const nnc_mpi *dp) { return dp->timeout; }
size_t nnc_mpi_bucket_bytes(const nnc_mpi *dp) { return dp->bucket_bytes; }
int nnc_mpi_grad_buckets(const nnc_mpi *dp)
{
    return nncmpi_bucket_count(dp, &dp->grads);
}

int64_t nnc_mpi_steps_done(const nnc_mpi *dp)
{
    int64_t step = -1;
    if (dp->model.info->step_offset >= 0)
        memcpy(&step, dp->base + dp->model.info->step_offset, sizeof step);
    return step;
}
