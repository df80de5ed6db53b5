/* nnc.h — the map of runtime/: the public API of libnncrt, the library that
 * programs built from nnc's generated object files link (`-lnncrt`).
 *
 * Generated code emits a constant nnc_model_info table per model and calls
 * into this library for what is not worth generating: errors, safetensors
 * load/save, initializers, random numbers, the thread pool and GEMM.  Every
 * model instance is one byte buffer; the table gives each tensor's byte
 * offset in it, so load, save, checkpoints and initialization are driven by
 * (table, base pointer) alone.  The header is self-contained C99.
 *
 * Files:  error.c (status, last error)   philox.c (counter-based RNG)
 *         init.c (initializers)   json.c (strict JSON for headers)
 *         st_load.c, st_save.c (safetensors)   model.c (table helpers)
 *         pool.c (thread pool)   gemm.c (OpenBLAS wrappers)
 *         optim.c (optimizer kernels)
 * docs/runtime.md explains the design decisions.
 */
#ifndef NNC_H
#define NNC_H

#include <stddef.h>
#include <stdint.h>

#if defined(NNC_BUILDING_RUNTIME) && defined(__GNUC__)
#define NNC_API __attribute__((visibility("default")))
#else
#define NNC_API
#endif

#if defined(__GNUC__)
#define NNC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define NNC_PRINTF(f, a)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Raised when nnc_model_info or nnc_tensor_info changes layout; generated
 * tables record the version they were built against. */
#define NNC_ABI_VERSION 1
#define NNC_MAX_RANK    8

/* ---- error.c: status codes and the last error message -------------------- */

typedef enum nnc_status {
    NNC_OK = 0,
    NNC_ERR_IO = -1,     /* open/read/write/rename failed */
    NNC_ERR_FORMAT = -2, /* a file is malformed */
    NNC_ERR_SHAPE = -3,  /* a file's dtype or shape does not match */
    NNC_ERR_RANGE = -4,  /* an id or target out of range at run time */
    NNC_ERR_NOMEM = -5,
    NNC_ERR_ARG = -6,    /* bad argument or inconsistent model table */
    NNC_ERR_MISSING = -7 /* a file lacks a tensor or has an unknown one */
} nnc_status;

/* The message of the last failed call on this thread ("" if none). */
NNC_API const char *nnc_last_error(void);
NNC_API void nnc_clear_error(void);
NNC_API const char *nnc_status_name(int status); /* "NNC_ERR_IO", ... */
/* Formats the calling thread's message and returns `status`, so that
 * `return nnc_rt_set_error(NNC_ERR_RANGE, "...", ...);` reads naturally.
 * Generated code calls it for run-time data errors. */
NNC_API int nnc_rt_set_error(int status, const char *fmt, ...) NNC_PRINTF(2, 3);

/* ---- model.c: the reflection tables generated code emits ----------------- */

typedef enum nnc_role {
    NNC_ROLE_INPUT,        /* caller-owned; offset -1 */
    NNC_ROLE_OUTPUT,       /* caller-owned; offset -1 */
    NNC_ROLE_PARAM,        /* trainable parameter */
    NNC_ROLE_FROZEN_PARAM, /* parameter without gradient */
    NNC_ROLE_GRAD,         /* gradient of tensors[param] */
    NNC_ROLE_OPT_STATE     /* optimizer slot of tensors[param] */
} nnc_role;

typedef enum nnc_dtype {
    NNC_F32,
    NNC_I32,
    NNC_I64 /* only the optimizer step counter (`opt.step`) */
} nnc_dtype;

/* Same order as the compiler's InitKind. */
typedef enum nnc_init_kind {
    NNC_INIT_ZEROS,
    NNC_INIT_ONES,
    NNC_INIT_CONST,          /* a = value */
    NNC_INIT_UNIFORM,        /* a = lo, b = hi */
    NNC_INIT_NORMAL,         /* a = mean, b = std */
    NNC_INIT_XAVIER_UNIFORM, /* U(+-sqrt(6 / (fan_in + fan_out))) */
    NNC_INIT_KAIMING_NORMAL, /* N(0, 2 / fan_in) */
    NNC_INIT_ORTHOGONAL,     /* rank >= 2; each trailing 2-D slice */
    NNC_INIT_COUNT
} nnc_init_kind;

typedef struct nnc_init_spec {
    nnc_init_kind kind;
    double a, b;
} nnc_init_spec;

typedef struct nnc_tensor_info {
    /* INPUT, OUTPUT, PARAM, FROZEN_PARAM: the declared name.  GRAD: its
     * parameter's name.  OPT_STATE: "<param>.<slot>" (e.g. "w1.exp_avg"),
     * stored in checkpoints as "opt.<param>.<slot>". */
    const char *name;
    nnc_role role;
    nnc_dtype dtype;
    int32_t rank;  /* 0 for a scalar */
    int32_t param; /* GRAD, OPT_STATE: index of the parameter; else -1 */
    int64_t shape[NNC_MAX_RANK];
    int64_t numel;      /* product of shape (1 for a scalar) */
    int64_t offset;     /* byte offset in the instance buffer; -1 for I/O */
    nnc_init_spec init; /* PARAM, FROZEN_PARAM: the declared initializer */
} nnc_tensor_info;

typedef struct nnc_model_info {
    int32_t abi_version; /* NNC_ABI_VERSION */
    int32_t n_tensors;
    const char *name; /* the model's name */
    const nnc_tensor_info *tensors;
    int64_t total_bytes;      /* size of the instance buffer */
    int64_t workspace_offset; /* planned scratch region of the buffer */
    int64_t workspace_bytes;
    int64_t step_offset; /* int64_t optimizer step; -1 without `train` */
} nnc_model_info;

/* NNC_OK if every tensor lies inside the buffer and the table is
 * consistent; NNC_ERR_ARG with a message naming the problem otherwise. */
NNC_API int nnc_model_check(const nnc_model_info *info);
/* The tensor `name` with role `role` (NNC_ROLE_PARAM also finds frozen
 * parameters), or NULL. */
NNC_API const nnc_tensor_info *nnc_model_find(const nnc_model_info *info,
                                              const char *name, nnc_role role);
/* base + that tensor's offset, or NULL (for NAME_param / NAME_grad). */
NNC_API void *nnc_model_tensor(const nnc_model_info *info, void *base,
                               const char *name, nnc_role role);
NNC_API size_t nnc_dtype_size(nnc_dtype dtype);

/* ---- st_load.c, st_save.c: safetensors files ----------------------------- */

#define NNC_ST_MAX_HEADER 100000000u /* 100 MB, as the safetensors crate */
#define NNC_ST_OPT_STATE  1u /* checkpoints: also optimizer state and step */

/* Loads every parameter (PARAM and FROZEN_PARAM) into base + offset.  A
 * plain load ignores `opt.*` entries; with NNC_ST_OPT_STATE it also loads
 * every OPT_STATE tensor from "opt.<name>" and the step from the I64
 * scalar "opt.step".  The whole header and the file size are validated
 * before any byte is copied, so a rejected file leaves `base` unchanged.
 * Errors read "FILE: error: tensor 'NAME': PROBLEM" or
 * "FILE: error: PROBLEM". */
NNC_API int nnc_st_load(const char *path, const nnc_model_info *info,
                        void *base, unsigned flags);
/* Writes every parameter in table order (and with NNC_ST_OPT_STATE the
 * optimizer state, then "opt.step"), atomically: a temporary file beside
 * the target, fsync, rename.  On failure the old target is intact. */
NNC_API int nnc_st_save(const char *path, const nnc_model_info *info,
                        const void *base, unsigned flags);
/* Loads a file that must hold exactly the n named tensors (their name,
 * dtype, rank and shape are used; role and offset are ignored) into
 * dst[i].  For `--inputs` files. */
NNC_API int nnc_st_load_exact(const char *path, int n,
                              const nnc_tensor_info *tensors, void *const *dst);
/* Writes the n tensors, data from src[i], atomically (`--outputs`,
 * `--grads`).  Names must be distinct. */
NNC_API int nnc_st_save_tensors(const char *path, int n,
                                const nnc_tensor_info *tensors,
                                const void *const *src);

/* ---- philox.c: counter-based random numbers ------------------------------ */

/* Philox4x32-10 (Salmon et al., SC'11): one block of 4 words from a
 * 128-bit counter and a 64-bit key. */
NNC_API void nnc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                               uint32_t out[4]);
/* Element `index` of random stream `stream` under `seed` is lane index%4 of
 * the block with key = seed and counter = (index/4, stream) (low words
 * first).  Everything below is a pure function of (seed, stream, index),
 * so no result depends on the thread count. */
NNC_API uint32_t nnc_rand_bits(uint64_t seed, uint64_t stream, uint64_t index);
NNC_API float nnc_rand_uniform(uint64_t seed, uint64_t stream,
                               uint64_t index); /* [0, 1), 24 bits */
/* Box-Muller: lanes (0,1) and (2,3) of a block make two normals each. */
NNC_API double nnc_rand_normal(uint64_t seed, uint64_t stream, uint64_t index);
/* The stream of a named parameter's initializer: FNV-1a of the name with
 * the top bit set (dropout streams have it clear). */
NNC_API uint64_t nnc_name_stream(const char *name);
/* Dropout site `site` (< 65536) at optimizer step `step` uses stream
 * (step << 16 | site) with the top bit cleared.  mask[i] is 0 with
 * probability p, else 1/(1-p); u >= p keeps, u = nnc_rand_uniform. */
NNC_API uint64_t nnc_dropout_stream(uint64_t site, uint64_t step);
NNC_API void nnc_dropout_mask(float *mask, int64_t n, float p, uint64_t seed,
                              uint64_t site, uint64_t step);

/* ---- init.c: initializers ------------------------------------------------ */

/* fan_in is shape[rank-2] and fan_out shape[rank-1] for rank >= 2; both
 * are shape[0] for rank 1 and 1 for a scalar (language.md).  Values are
 * element i <- draw i of (seed, stream).  Orthogonal draws the normals of
 * NNC_INIT_NORMAL(0, 1) and, per slice, keeps the Q of their QR with
 * diag(R) > 0 (torch.nn.init.orthogonal_, transposed when rows < cols); it
 * needs `scratch` of nnc_init_scratch_floats() floats (NULL otherwise). */
NNC_API int64_t nnc_init_scratch_floats(int rank, const int64_t *shape,
                                        nnc_init_kind kind);
NNC_API int nnc_init_tensor(float *dst, int rank, const int64_t *shape,
                            nnc_init_kind kind, double a, double b,
                            uint64_t seed, uint64_t stream, float *scratch);
/* NAME_init: every parameter from its declared initializer with stream
 * nnc_name_stream(name); gradients, optimizer state and the step zeroed.
 * `scratch` (e.g. the workspace) must hold nnc_model_init_scratch_floats()
 * floats. */
NNC_API int64_t nnc_model_init_scratch_floats(const nnc_model_info *info);
NNC_API int nnc_model_init(const nnc_model_info *info, void *base,
                           uint64_t seed, float *scratch,
                           int64_t scratch_floats);

/* ---- pool.c: the thread pool --------------------------------------------- */

/* Threads used by nnc_parallel_for; n < 1 restores the default
 * (NNC_NUM_THREADS, else the cores this process may run on). */
NNC_API void nnc_set_num_threads(int n);
NNC_API int nnc_get_num_threads(void);
/* Called by every generated NAME_new: reads the configuration, pins
 * OpenBLAS to one thread and starts the pool's worker threads (creating a
 * thread allocates), so that no later call allocates.  From then on
 * nnc_set_num_threads also starts any workers a larger count needs.
 * Idempotent; programs that never make a model never start threads. */
NNC_API void nnc_runtime_prepare(void);

typedef void (*nnc_range_fn)(void *ctx, int64_t begin, int64_t end);
/* Calls fn on a static partition of [0, n): with T = min(threads, n)
 * chunks, chunk t is [t*q + min(t, r), (t+1)*q + min(t+1, r)) where
 * q = n / T, r = n % T; the caller runs chunk 0, and each other chunk
 * runs on whichever thread (a worker, or the caller) claims it first.  A
 * call from inside a parallel region, or while another thread owns the
 * pool, runs fn(ctx, 0, n) on the calling thread.  A message fn sets with nnc_rt_set_error on a
 * worker reaches the caller's nnc_last_error() when the call returns (the
 * lowest failing chunk's); fn reports failure itself, e.g. through ctx. */
NNC_API void nnc_parallel_for(int64_t n, nnc_range_fn fn, void *ctx);

/* ---- gemm.c: matrix products ---------------------------------------------- */

/* Row-major C = alpha * op(A) @ op(B) + beta * C, op(A) m x k, op(B) k x n.
 * On CPUs with AVX-512 every product runs on libnncrt's own kernel
 * (gemm_avx512.c), elsewhere on OpenBLAS (single-threaded); large products
 * are split by whole tiles of C over the pool, never along k, so the bits
 * do not depend on the thread count.  Dimensions and leading dimensions must fit in
 * an int (NNC_ERR_ARG otherwise). */
NNC_API int nnc_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float beta, float *c, int64_t ldc);
/* batch products; matrix i starts at a + i*stride_a, ... (a stride of 0
 * broadcasts one matrix). */
NNC_API int nnc_sgemm_batched(int trans_a, int trans_b, int64_t m, int64_t n,
                              int64_t k, float alpha, const float *a,
                              int64_t lda, int64_t stride_a, const float *b,
                              int64_t ldb, int64_t stride_b, float beta,
                              float *c, int64_t ldc, int64_t stride_c,
                              int64_t batch);

/* ---- fused kernels: the lowerings of nnc's fused ops ---------------------
 * Called by generated code for the ops the fusion passes build
 * (docs/fusion.md).  Every tensor is contiguous row-major f32 (targets
 * i32).  Each is parallel over the pool across independent rows (or
 * batch-heads) and gives bit-identical results for any thread count. */

/* attention.c: o = softmax(causal?(q @ k^T * scale)) @ v for each of `bh`
 * independent (batch, head) slices: q [bh, tq, d], k [bh, tk, d], v [bh,
 * tk, dv], o [bh, tq, dv].  causal masks key j > query i (causal_mask's
 * rule).  Tiled with an online softmax (FlashAttention): no tq x tk score
 * matrix is ever stored. */
NNC_API void nnc_attention_fwd(const float *q, const float *k, const float *v,
                               float *o, int64_t bh, int64_t tq, int64_t tk,
                               int64_t d, int64_t dv, float scale, int causal);
/* Its gradient given o (the forward's result) and go (o's gradient):
 * writes dq, dk, dv (overwritten, not accumulated), recomputing the
 * probabilities block by block instead of reading stored ones. */
NNC_API void nnc_attention_bwd(const float *q, const float *k, const float *v,
                               const float *o, const float *go, float *dq,
                               float *dk, float *dv, int64_t bh, int64_t tq,
                               int64_t tk, int64_t d, int64_t dvdim,
                               float scale, int causal);

/* lstm.c: the LSTM cell's pointwise part over n rows: z [n, 4h] holds the
 * pre-activations of the gates i, f, g, o (in that order along a row), c
 * [n, h] the previous cell: c_out = sigmoid(f) c + sigmoid(i) tanh(g),
 * h_out = sigmoid(o) tanh(c_out). */
NNC_API void nnc_lstm_cell_fwd(const float *z, const float *c, float *h_out,
                               float *c_out, int64_t n, int64_t h);
/* Its gradient in one pass: given dh (h_out's gradient) and dc_out
 * (c_out's), either NULL for zero, writes dz [n, 4h] and dc [n, h]. */
NNC_API void nnc_lstm_cell_bwd(const float *z, const float *c,
                               const float *dh, const float *dc_out,
                               float *dz, float *dc, int64_t n, int64_t h);

/* xent.c: cross entropy and its gradient in one pass over the rows:
 * *loss = mean over the n rows of logsumexp(row) - row[target], and
 * dlogits = (softmax(row) - one_hot(target)) * scale, the probabilities
 * never stored.  A target outside [0, c) sets nnc_last_error
 * ("cross_entropy: target T at position P is outside 0..C-1") and returns
 * NNC_ERR_RANGE with nothing defined written; 0 otherwise.  The loss is
 * summed in double in row order (the same bits for any thread count). */
NNC_API int nnc_softmax_xent(const float *logits, const int32_t *targets,
                             float scale, float *loss, float *dlogits,
                             int64_t n, int64_t c);

/* ---- optim.c: optimizer kernels (NAME_update) ---------------------------- */

/* Each works on one tensor of n floats, as torch.optim's single-tensor
 * path computes it: scalars in double, elements in float.  Tensors of
 * 32768 elements or more are split over the pool; every result is
 * bit-identical for any thread count. */

/* sum of x[i]^2 in double: partial sums over a partition of [0, n) that
 * depends only on n (at most 1024 chunks of at least 16384 elements),
 * added in chunk order.  For clip_grad_norm's global norm. */
NNC_API double nnc_sum_squares(const float *x, int64_t n);
/* x[i] *= s (clip_grad_norm's scaling). */
NNC_API void nnc_scale(float *x, int64_t n, float s);
/* torch.optim.SGD with dampening 0: d = grad (+ weight_decay * param);
 * with momentum != 0, buf = d at step 1, else buf * momentum + d, and
 * d = d + momentum * buf (nesterov) or buf; param -= lr * d.  `step` is
 * the 1-based number of this step; momentum_buffer may be NULL when
 * momentum is 0.  grad is not modified. */
NNC_API void nnc_sgd_step(float *param, const float *grad,
                          float *momentum_buffer, int64_t n, double lr,
                          double momentum, double weight_decay, int nesterov,
                          int64_t step);
/* torch.optim.Adam (decoupled = 0: L2 weight_decay added to the gradient)
 * or AdamW (decoupled = 1: param *= 1 - lr * weight_decay first), step
 * `step` >= 1: m = beta1 m + (1 - beta1) g, v = beta2 v + (1 - beta2) g^2,
 * param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step)
 * + eps).  grad is not modified. */
NNC_API void nnc_adam_step(float *param, const float *grad, float *exp_avg,
                           float *exp_avg_sq, int64_t n, double lr,
                           double beta1, double beta2, double eps,
                           double weight_decay, int decoupled, int64_t step);

#ifdef __cplusplus
}
#endif

#endif /* NNC_H */
