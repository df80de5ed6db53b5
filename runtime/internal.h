/* internal.h — declarations shared between libnncrt's files and never
 * exported: the library is built with -fvisibility=hidden, and these names
 * carry the nncrt_ prefix so that, in the static archive, they cannot clash
 * with a user's symbols.  The strict JSON reader used for safetensors
 * headers lives here too (json.c).
 */
#ifndef NNC_RUNTIME_INTERNAL_H
#define NNC_RUNTIME_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nnc.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libnncrt writes safetensors in host order: little-endian only"
#endif

/* ---- error.c ------------------------------------------------------------- */

#define NNCRT_ERROR_CAP 2048

int nncrt_verror(int status, const char *fmt, va_list ap);
/* Messages set on this thread so far: the pool compares it around a chunk
 * to learn whether the chunk failed. */
unsigned nncrt_error_count(void);
/* Sets this thread's message to `msg` (a worker's, handed to the caller). */
void nncrt_error_adopt(const char *msg);
/* Writes `s` (n bytes) into out as printable text: control and non-ASCII
 * bytes become \xNN, so a hostile name cannot garble a message. */
void nncrt_printable(char *out, size_t cap, const char *s, size_t n);

/* ---- philox.c: bulk fills, parallel and thread-count independent --------- */

/* dst[i] = lo + (hi - lo) * nnc_rand_uniform(seed, stream, i) */
void nncrt_fill_uniform(float *dst, int64_t n, double lo, double hi,
                        uint64_t seed, uint64_t stream);
/* dst[i] = mean + std * nnc_rand_normal(seed, stream, i) */
void nncrt_fill_normal(float *dst, int64_t n, double mean, double std,
                       uint64_t seed, uint64_t stream);

/* ---- pool.c -------------------------------------------------------------- */

/* Reads NNC_NUM_THREADS and pins OpenBLAS to one thread; idempotent. */
void nncrt_setup(void);

/* gemm_small.c: row-major C = alpha op(A) op(B) + beta C without OpenBLAS;
 * each element summed over k in order (bit-identical however C is cut). */
void nncrt_sgemm_small(int ta, int tb, int64_t m, int64_t n, int64_t k,
                       float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c,
                       int64_t ldc);

/* gemm_avx512.c: the same contract, packed and register-blocked with
 * AVX-512 FMAs; call only when nncrt_have_avx512() (checked once) is
 * nonzero.  Each element's sum is cut into k blocks that depend only on k,
 * so the bits do not depend on how C is cut into row or column blocks. */
int nncrt_have_avx512(void);
void nncrt_sgemm_avx512(int ta, int tb, int64_t m, int64_t n, int64_t k,
                        float alpha, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c,
                        int64_t ldc);
/* Tile sizes of its micro-kernel: gemm.c cuts C in multiples of these. */
#define NNCRT_AVX512_MR 8
#define NNCRT_AVX512_NR 32

/* ---- json.c: strict JSON (RFC 8259) into a small tree -------------------- */

typedef enum JsonType {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} JsonType;

typedef struct JsonNode {
    JsonType type;
    int32_t next;    /* next element or member, -1 at the end */
    int32_t child;   /* first element or member, -1 if empty */
    int32_t count;   /* elements or members */
    const char *key; /* member key, decoded and NUL-terminated */
    size_t key_len;
    const char *str; /* string value, decoded and NUL-terminated */
    size_t str_len;
    uint64_t uint; /* number value when is_uint */
    bool is_uint;  /* a non-negative integer that fits in 64 bits */
    bool boolean;
    size_t pos; /* byte offset of the value in the text */
} JsonNode;

typedef struct JsonDoc {
    JsonNode *nodes; /* nodes[0] is the root */
    int32_t n, cap;
    char *strings; /* decoded strings, one block sized by the text */
    size_t strings_used;
    char error[256]; /* set when nncrt_json_parse fails */
} JsonDoc;

#define NNCRT_JSON_MAX_DEPTH 64

/* Parses exactly one value followed by optional whitespace; rejects
 * invalid UTF-8, lone surrogates, duplicate keys and nesting deeper than
 * NNCRT_JSON_MAX_DEPTH.  Returns NNC_OK, NNC_ERR_FORMAT (doc->error says
 * where) or NNC_ERR_NOMEM.  Free with nncrt_json_free in every case. */
int nncrt_json_parse(JsonDoc *doc, const char *text, size_t len);
void nncrt_json_free(JsonDoc *doc);

/* ---- safetensors helpers shared by st_load.c and st_save.c --------------- */

/* The safetensors name of a dtype ("F32", ...). */
const char *nncrt_st_dtype_name(nnc_dtype dtype);
/* "[3, 4]" */
void nncrt_format_shape(char *out, size_t cap, int rank, const int64_t *shape);

#endif /* NNC_RUNTIME_INTERNAL_H */
