/* init.c — the parameter initializers of language.md, and NAME_init.
 *
 * Random kinds draw element i from Philox draw i of (seed, stream), so a
 * tensor's values depend on nothing else (not on the thread count, nor on
 * other parameters: NAME_init keys each parameter by a hash of its name).
 * Fans follow language.md, not PyTorch: for rank >= 2, fan_in is the
 * second-to-last dimension and fan_out the last (a [a, b] weight is used
 * as x @ W); for rank 1 both are the length.
 *
 * Orthogonal is torch.nn.init.orthogonal_ applied to each trailing 2-D
 * slice: QR (LAPACK dgeqrf/dorgqr from OpenBLAS, in double) of a standard
 * normal matrix, transposed first when rows < cols, each column of Q
 * multiplied by the sign of R's diagonal.  That Q is the unique QR factor
 * with a positive diagonal in R.  It works in caller-provided scratch, so
 * NAME_init allocates nothing.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

/* LAPACK (Fortran ABI, 32-bit integers in Debian's OpenBLAS). */
extern void dgeqrf_(const int *m, const int *n, double *a, const int *lda,
                    double *tau, double *work, const int *lwork, int *info);
extern void dorgqr_(const int *m, const int *n, const int *k, double *a,
                    const int *lda, const double *tau, double *work,
                    const int *lwork, int *info);

/* Work columns handed to LAPACK: its blocked QR wants n * block size. */
#define ORTHO_WORK_COLS 64

static int shape_numel(int rank, const int64_t *shape, int64_t *numel)
{
    if (rank < 0 || rank > NNC_MAX_RANK || (rank > 0 && !shape))
        return nnc_rt_set_error(NNC_ERR_ARG, "init: rank %d out of range",
                                rank);
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && n > INT64_MAX / shape[i]))
            return nnc_rt_set_error(NNC_ERR_ARG,
                                    "init: dimension %d (%lld) is invalid", i,
                                    (long long)shape[i]);
        n *= shape[i];
    }
    *numel = n;
    return NNC_OK;
}

static void shape_fans(int rank, const int64_t *shape, double *fan_in,
                       double *fan_out)
{
    if (rank >= 2) {
        *fan_in = (double)shape[rank - 2];
        *fan_out = (double)shape[rank - 1];
    } else {
        *fan_in = *fan_out = rank == 1 ? (double)shape[0] : 1.0;
    }
}

/* The (m x n, m >= n) matrix factored for one rows x cols slice. */
static void ortho_dims(int rank, const int64_t *shape, int64_t *m, int64_t *n)
{
    int64_t rows = shape[rank - 2], cols = shape[rank - 1];
    *m = rows >= cols ? rows : cols;
    *n = rows >= cols ? cols : rows;
}

int64_t nnc_init_scratch_floats(int rank, const int64_t *shape,
                                nnc_init_kind kind)
{
    if (kind != NNC_INIT_ORTHOGONAL || rank < 2 || rank > NNC_MAX_RANK)
        return 0;
    int64_t m, n;
    ortho_dims(rank, shape, &m, &n);
    /* doubles: A (m*n), tau (n), signs (n), work; +1 float to align */
    return 2 * (m * n + n * (2 + ORTHO_WORK_COLS)) + 1;
}

/* Factors one slice in place: dst holds its normals and receives Q. */
static int ortho_slice(float *dst, int64_t rows, int64_t cols, double *a)
{
    int64_t m = rows >= cols ? rows : cols, n = rows >= cols ? cols : rows;
    double *tau = a + m * n, *sign = tau + n, *work = sign + n;
    int im = (int)m, in = (int)n, lwork = (int)(n * ORTHO_WORK_COLS), info;
    /* Column-major A: A = W when rows >= cols, A = W^T otherwise; W^T in
     * column-major is W's row-major memory. */
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            a[rows >= cols ? i + j * m : j + i * m] = dst[i * cols + j];
    dgeqrf_(&im, &in, a, &im, tau, work, &lwork, &info);
    if (info != 0)
        return nnc_rt_set_error(NNC_ERR_ARG, "init: dgeqrf failed (%d)", info);
    for (int64_t k = 0; k < n; k++)
        sign[k] = a[k + k * m] < 0.0 ? -1.0 : 1.0;
    dorgqr_(&im, &in, &in, a, &im, tau, work, &lwork, &info);
    if (info != 0)
        return nnc_rt_set_error(NNC_ERR_ARG, "init: dorgqr failed (%d)", info);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            int64_t at = rows >= cols ? i + j * m : j + i * m;
            double s = sign[rows >= cols ? j : i];
            dst[i * cols + j] = (float)(s * a[at]);
        }
    return NNC_OK;
}

static int init_orthogonal(float *dst, int rank, const int64_t *shape,
                           int64_t numel, uint64_t seed, uint64_t stream,
                           float *scratch)
{
    if (rank < 2)
        return nnc_rt_set_error(NNC_ERR_ARG,
                                "init: orthogonal needs rank 2 or more, "
                                "got rank %d",
                                rank);
    if (!scratch)
        return nnc_rt_set_error(NNC_ERR_ARG,
                                "init: orthogonal needs a scratch buffer");
    int64_t rows = shape[rank - 2], cols = shape[rank - 1];
    if (rows > INT32_MAX / ORTHO_WORK_COLS ||
        cols > INT32_MAX / ORTHO_WORK_COLS)
        return nnc_rt_set_error(NNC_ERR_ARG,
                                "init: orthogonal slice [%lld, %lld] too large",
                                (long long)rows, (long long)cols);
    if (numel == 0)
        return NNC_OK;
    nncrt_setup(); /* LAPACK below: OpenBLAS pinned to one thread */
    uintptr_t p = (uintptr_t)scratch;
    double *a = (double *)(p + (p % sizeof(double) ? sizeof(float) : 0));
    nncrt_fill_normal(dst, numel, 0.0, 1.0, seed, stream);
    for (int64_t s = 0; s < numel / (rows * cols); s++) {
        int rc = ortho_slice(dst + s * rows * cols, rows, cols, a);
        if (rc != NNC_OK)
            return rc;
    }
    return NNC_OK;
}

static void fill_const(float *dst, int64_t n, float v)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = v;
}

int nnc_init_tensor(float *dst, int rank, const int64_t *shape,
                    nnc_init_kind kind, double a, double b, uint64_t seed,
                    uint64_t stream, float *scratch)
{
    int64_t n = 0;
    int rc = shape_numel(rank, shape, &n);
    if (rc != NNC_OK)
        return rc;
    double fan_in, fan_out;
    shape_fans(rank, shape, &fan_in, &fan_out);
    switch (kind) {
    case NNC_INIT_ZEROS: memset(dst, 0, (size_t)n * sizeof(float)); break;
    case NNC_INIT_ONES: fill_const(dst, n, 1.0f); break;
    case NNC_INIT_CONST: fill_const(dst, n, (float)a); break;
    case NNC_INIT_UNIFORM:
        nncrt_fill_uniform(dst, n, a, b, seed, stream);
        break;
    case NNC_INIT_NORMAL: nncrt_fill_normal(dst, n, a, b, seed, stream); break;
    case NNC_INIT_XAVIER_UNIFORM: {
        double bound = sqrt(6.0 / (fan_in + fan_out));
        nncrt_fill_uniform(dst, n, -bound, bound, seed, stream);
        break;
    }
    case NNC_INIT_KAIMING_NORMAL:
        nncrt_fill_normal(dst, n, 0.0, sqrt(2.0 / fan_in), seed, stream);
        break;
    case NNC_INIT_ORTHOGONAL:
        return init_orthogonal(dst, rank, shape, n, seed, stream, scratch);
    default:
        return nnc_rt_set_error(NNC_ERR_ARG, "init: unknown kind %d",
                                (int)kind);
    }
    return NNC_OK;
}

/* ---- NAME_init ----------------------------------------------------------- */

static int is_param(const nnc_tensor_info *t)
{
    return t->role == NNC_ROLE_PARAM || t->role == NNC_ROLE_FROZEN_PARAM;
}

int64_t nnc_model_init_scratch_floats(const nnc_model_info *info)
{
    int64_t need = 0;
    for (int32_t i = 0; i < info->n_tensors; i++) {
        const nnc_tensor_info *t = &info->tensors[i];
        if (!is_param(t))
            continue;
        int64_t k = nnc_init_scratch_floats(t->rank, t->shape, t->init.kind);
        need = k > need ? k : need;
    }
    return need;
}

/* Everything that could fail is checked before any byte is written. */
static int model_init_check(const nnc_model_info *info, int64_t scratch_floats)
{
    int rc = nnc_model_check(info);
    if (rc != NNC_OK)
        return rc;
    for (int32_t i = 0; i < info->n_tensors; i++) {
        const nnc_tensor_info *t = &info->tensors[i];
        if (!is_param(t))
            continue;
        int kind = t->init.kind;
        if (kind < 0 || kind >= NNC_INIT_COUNT ||
            (t->dtype != NNC_F32 && kind != NNC_INIT_ZEROS) ||
            (kind == NNC_INIT_ORTHOGONAL && t->rank < 2))
            return nnc_rt_set_error(NNC_ERR_ARG,
                                    "model '%s': parameter '%s' has an "
                                    "invalid initializer (kind %d)",
                                    info->name, t->name, kind);
    }
    int64_t need = nnc_model_init_scratch_floats(info);
    if (scratch_floats < need)
        return nnc_rt_set_error(NNC_ERR_ARG,
                                "model '%s': init needs %lld scratch floats, "
                                "got %lld",
                                info->name, (long long)need,
                                (long long)scratch_floats);
    return NNC_OK;
}

int nnc_model_init(const nnc_model_info *info, void *base, uint64_t seed,
                   float *scratch, int64_t scratch_floats)
{
    int rc = model_init_check(info, scratch_floats);
    if (rc != NNC_OK)
        return rc;
    for (int32_t i = 0; i < info->n_tensors && rc == NNC_OK; i++) {
        const nnc_tensor_info *t = &info->tensors[i];
        char *dst = (char *)base + t->offset;
        if (is_param(t))
            rc = nnc_init_tensor((float *)dst, t->rank, t->shape, t->init.kind,
                                 t->init.a, t->init.b, seed,
                                 nnc_name_stream(t->name), scratch);
        else if (t->role == NNC_ROLE_GRAD || t->role == NNC_ROLE_OPT_STATE)
            memset(dst, 0, (size_t)t->numel * nnc_dtype_size(t->dtype));
    }
    if (info->step_offset >= 0)
        memset((char *)base + info->step_offset, 0, sizeof(int64_t));
    return rc;
}
