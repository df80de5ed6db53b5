/* st_load.c — reading safetensors files into a model instance or into
 * caller buffers (NAME_load, NAME_load_checkpoint, `nnc run --params` and
 * `--inputs`).
 *
 * Format (github.com/huggingface/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON mapping each tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]} plus an optional
 * "__metadata__" object of strings, then the data; offsets count from the
 * start of the data.  Loading runs in stages and copies nothing until every
 * stage has passed, so a rejected file leaves the destination unchanged:
 *   1. sizes: file >= 8 bytes, N <= 100 MB, 8 + N <= file size;
 *   2. the header: strict JSON (json.c), each entry well-formed, its byte
 *      range matching dtype x shape and inside the data;
 *   3. the layout: sorted by offset, the ranges tile the data exactly (no
 *      overlap, no gap, nothing after the last tensor);
 *   4. the match: every entry is wanted (or an ignored `opt.*` entry of a
 *      plain load) with the wanted dtype and shape; every wanted tensor is
 *      present;
 *   5. the copy, with pread straight into the destination.
 * Only an I/O error during stage 5 (a disk failing, the file truncated
 * meanwhile) can leave a destination partly written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Every dtype of the format, so a wrong one is named, not "unknown". */
static const struct {
    const char *name;
    int size;
} st_dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8},
};

typedef struct StEntry {
    const char *name;
    size_t name_len;
    const char *dtype; /* a st_dtypes name */
    int elem_size;
    int rank;
    int64_t shape[NNC_MAX_RANK];
    uint64_t begin, end;
    int want; /* index into StLoad.wants, -1 if ignored */
} StEntry;

typedef struct StWant {
    const char *name; /* the name in the file */
    size_t name_len;
    const nnc_tensor_info *t; /* dtype, rank and shape to expect */
    void *dst;
    int found;
} StWant;

typedef struct StLoad {
    const char *path;
    int fd;
    uint64_t file_size, header_len, data_len;
    char *header;
    JsonDoc doc;
    StEntry *entries;
    int n_entries;
    StWant *wants;
    int n_wants;
    int ignore_opt;          /* a plain load skips `opt.*` entries */
    const char *unknown_why; /* the problem of an unwanted entry */
    char *names;             /* storage for "opt.<name>" */
} StLoad;

/* ---- messages ------------------------------------------------------------ */

static int file_error(const StLoad *L, int status, const char *fmt, ...)
    NNC_PRINTF(3, 4);
static int file_error(const StLoad *L, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nnc_rt_set_error(status, "%s: error: %s", L->path, msg);
}

static int tensor_error(const StLoad *L, int status, const char *name,
                        size_t name_len, const char *fmt, ...) NNC_PRINTF(5, 6);
static int tensor_error(const StLoad *L, int status, const char *name,
                        size_t name_len, const char *fmt, ...)
{
    char msg[1024], shown[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    nncrt_printable(shown, sizeof shown, name, name_len);
    return nnc_rt_set_error(status, "%s: error: tensor '%s': %s", L->path,
                            shown, msg);
}

static int entry_error(const StLoad *L, int status, const StEntry *e,
                       const char *what)
{
    return tensor_error(L, status, e->name, e->name_len, "%s", what);
}

/* ---- stage 1: sizes and the header bytes --------------------------------- */

static int pread_all(int fd, void *buf, uint64_t n, uint64_t off)
{
    char *p = buf;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t got = pread(fd, p, chunk, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got == 0 ? EIO : errno;
        p += got, off += (uint64_t)got, n -= (uint64_t)got;
    }
    return 0;
}

static uint64_t le64(const unsigned char b[8])
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static int st_read_header(StLoad *L)
{
    struct stat st;
    L->fd = open(L->path, O_RDONLY | O_CLOEXEC);
    if (L->fd < 0)
        return file_error(L, NNC_ERR_IO, "cannot open: %s", strerror(errno));
    if (fstat(L->fd, &st) != 0 || !S_ISREG(st.st_mode))
        return file_error(L, NNC_ERR_IO, "not a regular file");
    L->file_size = (uint64_t)st.st_size;
    unsigned char len8[8];
    if (L->file_size < 8)
        return file_error(L, NNC_ERR_FORMAT,
                          "file is %llu bytes, too short for the 8-byte "
                          "header length",
                          (unsigned long long)L->file_size);
    int err = pread_all(L->fd, len8, 8, 0);
    if (err)
        return file_error(L, NNC_ERR_IO, "read failed: %s", strerror(err));
    L->header_len = le64(len8);
    if (L->header_len > NNC_ST_MAX_HEADER)
        return file_error(L, NNC_ERR_FORMAT,
                          "header length %llu exceeds the 100 MB limit",
                          (unsigned long long)L->header_len);
    if (L->header_len > L->file_size - 8)
        return file_error(L, NNC_ERR_FORMAT,
                          "header length %llu runs past the end of the file "
                          "(%llu bytes)",
                          (unsigned long long)L->header_len,
                          (unsigned long long)L->file_size);
    L->data_len = L->file_size - 8 - L->header_len;
    L->header = malloc(L->header_len + 1);
    if (!L->header)
        return file_error(L, NNC_ERR_NOMEM, "out of memory for the header");
    err = pread_all(L->fd, L->header, L->header_len, 8);
    if (err)
        return file_error(L, NNC_ERR_IO, "read failed: %s", strerror(err));
    return NNC_OK;
}

/* ---- stage 2: the entries of the header ---------------------------------- */

static const JsonNode *node(const StLoad *L, int32_t i)
{
    return &L->doc.nodes[i];
}

static int parse_dtype(const StLoad *L, StEntry *e, const JsonNode *v)
{
    if (v->type != JSON_STRING)
        return entry_error(L, NNC_ERR_FORMAT, e, "dtype is not a string");
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strlen(st_dtypes[i].name) == v->str_len &&
            !memcmp(st_dtypes[i].name, v->str, v->str_len)) {
            e->dtype = st_dtypes[i].name;
            e->elem_size = st_dtypes[i].size;
            return NNC_OK;
        }
    char shown[64];
    nncrt_printable(shown, sizeof shown, v->str, v->str_len);
    return tensor_error(L, NNC_ERR_FORMAT, e->name, e->name_len,
                        "unknown dtype '%s'", shown);
}

static int parse_shape(const StLoad *L, StEntry *e, const JsonNode *v)
{
    if (v->type != JSON_ARRAY)
        return entry_error(L, NNC_ERR_FORMAT, e, "shape is not an array");
    if (v->count > NNC_MAX_RANK)
        return tensor_error(L, NNC_ERR_FORMAT, e->name, e->name_len,
                            "rank %d exceeds the maximum of %d", v->count,
                            NNC_MAX_RANK);
    e->rank = 0;
    for (int32_t d = v->child; d >= 0; d = node(L, d)->next) {
        const JsonNode *dim = node(L, d);
        if (dim->type != JSON_NUMBER || !dim->is_uint ||
            dim->uint > (uint64_t)INT64_MAX)
            return entry_error(L, NNC_ERR_FORMAT, e,
                               "shape must hold non-negative integers");
        e->shape[e->rank++] = (int64_t)dim->uint;
    }
    return NNC_OK;
}

static int parse_offsets(const StLoad *L, StEntry *e, const JsonNode *v)
{
    const JsonNode *b = v->count == 2 ? node(L, v->child) : NULL;
    const JsonNode *end = b ? node(L, b->next) : NULL;
    if (v->type != JSON_ARRAY || !b || b->type != JSON_NUMBER ||
        end->type != JSON_NUMBER || !b->is_uint || !end->is_uint)
        return entry_error(L, NNC_ERR_FORMAT, e,
                           "data_offsets must be two non-negative integers");
    e->begin = b->uint;
    e->end = end->uint;
    return NNC_OK;
}

/* {"dtype": ..., "shape": ..., "data_offsets": ...}, each exactly once
 * (the JSON reader already refused duplicate keys). */
static int parse_fields(const StLoad *L, StEntry *e, const JsonNode *obj)
{
    static const char *const fields[3] = {"dtype", "shape", "data_offsets"};
    const JsonNode *val[3] = {NULL, NULL, NULL};
    if (obj->type != JSON_OBJECT)
        return entry_error(L, NNC_ERR_FORMAT, e, "entry is not an object");
    for (int32_t m = obj->child; m >= 0; m = node(L, m)->next) {
        const JsonNode *mem = node(L, m);
        int f = 0;
        while (f < 3 && (strlen(fields[f]) != mem->key_len ||
                         memcmp(fields[f], mem->key, mem->key_len)))
            f++;
        char shown[64];
        nncrt_printable(shown, sizeof shown, mem->key, mem->key_len);
        if (f == 3)
            return tensor_error(L, NNC_ERR_FORMAT, e->name, e->name_len,
                                "unexpected key '%s'", shown);
        val[f] = mem;
    }
    for (int f = 0; f < 3; f++)
        if (!val[f])
            return tensor_error(L, NNC_ERR_FORMAT, e->name, e->name_len,
                                "no '%s'", fields[f]);
    int rc = parse_dtype(L, e, val[0]);
    if (rc == NNC_OK)
        rc = parse_shape(L, e, val[1]);
    if (rc == NNC_OK)
        rc = parse_offsets(L, e, val[2]);
    return rc;
}

/* The byte range must be dtype x shape long and inside the data. */
static int check_extent(const StLoad *L, const StEntry *e)
{
    uint64_t need = (uint64_t)e->elem_size;
    for (int d = 0; d < e->rank; d++) {
        uint64_t dim = (uint64_t)e->shape[d];
        if (dim != 0 && need > UINT64_MAX / dim)
            return entry_error(L, NNC_ERR_FORMAT, e, "shape is too large");
        need *= dim;
    }
    char shape[256];
    nncrt_format_shape(shape, sizeof shape, e->rank, e->shape);
    unsigned long long b = e->begin, end = e->end;
    if (e->begin > e->end)
        return tensor_error(L, NNC_ERR_FORMAT, e->name, e->name_len,
                            "data_offsets [%llu, %llu] are reversed", b, end);
    if (e->end - e->begin != need)
        return tensor_error(L, NNC_ERR_FORMAT, e->name, e->name_len,
                            "data_offsets [%llu, %llu] hold %llu bytes, but "
                            "%s %s needs %llu",
                            b, end, end - b, e->dtype, shape,
                            (unsigned long long)need);
    if (e->end > L->data_len)
        return tensor_error(L, NNC_ERR_FORMAT, e->name, e->name_len,
                            "data_offsets [%llu, %llu] run past the end of "
                            "the data (%llu bytes)",
                            b, end, (unsigned long long)L->data_len);
    return NNC_OK;
}

/* "__metadata__": an object whose values are strings. */
static int check_metadata(const StLoad *L, const JsonNode *v)
{
    int ok = v->type == JSON_OBJECT;
    for (int32_t m = ok ? v->child : -1; m >= 0; m = node(L, m)->next)
        ok &= node(L, m)->type == JSON_STRING;
    return ok ? NNC_OK
              : file_error(L, NNC_ERR_FORMAT,
                           "__metadata__ must be an object of strings");
}

static int st_parse_header(StLoad *L)
{
    int rc = nncrt_json_parse(&L->doc, L->header, L->header_len);
    if (rc == NNC_ERR_NOMEM)
        return file_error(L, rc, "out of memory for the header");
    if (rc != NNC_OK)
        return file_error(L, rc, "malformed header JSON %s", L->doc.error);
    const JsonNode *root = node(L, 0);
    if (root->type != JSON_OBJECT)
        return file_error(L, NNC_ERR_FORMAT, "header is not a JSON object");
    L->entries = calloc((size_t)root->count + 1, sizeof *L->entries);
    if (!L->entries)
        return file_error(L, NNC_ERR_NOMEM, "out of memory for the header");
    for (int32_t m = root->child; m >= 0 && rc == NNC_OK;
         m = node(L, m)->next) {
        const JsonNode *mem = node(L, m);
        if (!strcmp(mem->key, "__metadata__") && mem->key_len == 12) {
            rc = check_metadata(L, mem);
            continue;
        }
        StEntry *e = &L->entries[L->n_entries++];
        e->name = mem->key;
        e->name_len = mem->key_len;
        e->want = -1;
        rc = parse_fields(L, e, mem);
        if (rc == NNC_OK)
            rc = check_extent(L, e);
    }
    return rc;
}

/* ---- stage 3: the ranges tile the data ----------------------------------- */

static int range_cmp(const void *a, const void *b)
{
    const StEntry *x = *(const StEntry *const *)a;
    const StEntry *y = *(const StEntry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int check_tiling(const StLoad *L, StEntry **by_offset)
{
    uint64_t covered = 0;
    const StEntry *prev = NULL;
    for (int i = 0; i < L->n_entries; i++) {
        const StEntry *e = by_offset[i];
        unsigned long long b = e->begin, end = e->end;
        char other[256];
        if (e->begin < covered) {
            nncrt_printable(other, sizeof other, prev->name, prev->name_len);
            return tensor_error(L, NNC_ERR_FORMAT, e->name, e->name_len,
                                "data_offsets [%llu, %llu] overlap tensor "
                                "'%s' [%llu, %llu]",
                                b, end, other, (unsigned long long)prev->begin,
                                (unsigned long long)prev->end);
        }
        if (e->begin > covered)
            return tensor_error(L, NNC_ERR_FORMAT, e->name, e->name_len,
                                "gap of %llu bytes before its data_offsets "
                                "[%llu, %llu]",
                                b - covered, b, end);
        covered = e->end;
        prev = e;
    }
    if (covered != L->data_len)
        return file_error(L, NNC_ERR_FORMAT,
                          "%llu bytes after the last tensor's data",
                          (unsigned long long)(L->data_len - covered));
    return NNC_OK;
}

static int st_check_layout(StLoad *L)
{
    StEntry **by_offset =
        malloc(((size_t)L->n_entries + 1) * sizeof(StEntry *));
    if (!by_offset)
        return file_error(L, NNC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < L->n_entries; i++)
        by_offset[i] = &L->entries[i];
    qsort(by_offset, (size_t)L->n_entries, sizeof *by_offset, range_cmp);
    int rc = check_tiling(L, by_offset);
    free(by_offset);
    return rc;
}

/* ---- stage 4: the entries against the wanted tensors --------------------- */

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

static int want_cmp(const void *a, const void *b)
{
    const StWant *x = a, *y = b;
    return name_cmp(x->name, x->name_len, y->name, y->name_len);
}

static int find_want(const StLoad *L, const char *name, size_t len)
{
    int lo = 0, hi = L->n_wants - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const StWant *w = &L->wants[mid];
        int c = name_cmp(name, len, w->name, w->name_len);
        if (c == 0)
            return mid;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return -1;
}

static int match_entry(StLoad *L, StEntry *e)
{
    e->want = find_want(L, e->name, e->name_len);
    if (e->want < 0) {
        if (L->ignore_opt && e->name_len >= 4 && !memcmp(e->name, "opt.", 4))
            return NNC_OK;
        return entry_error(L, NNC_ERR_MISSING, e, L->unknown_why);
    }
    StWant *w = &L->wants[e->want];
    const nnc_tensor_info *t = w->t;
    w->found = 1;
    const char *dtype = nncrt_st_dtype_name(t->dtype);
    if (strcmp(dtype, e->dtype) != 0)
        return tensor_error(L, NNC_ERR_SHAPE, e->name, e->name_len,
                            "dtype %s does not match the expected %s", e->dtype,
                            dtype);
    int same = e->rank == t->rank;
    for (int d = 0; same && d < e->rank; d++)
        same = e->shape[d] == t->shape[d];
    if (same)
        return NNC_OK;
    char have[256], want[256];
    nncrt_format_shape(have, sizeof have, e->rank, e->shape);
    nncrt_format_shape(want, sizeof want, t->rank, t->shape);
    return tensor_error(L, NNC_ERR_SHAPE, e->name, e->name_len,
                        "shape %s does not match the expected %s", have, want);
}

static int st_match(StLoad *L)
{
    qsort(L->wants, (size_t)L->n_wants, sizeof *L->wants, want_cmp);
    for (int i = 0; i + 1 < L->n_wants; i++)
        if (want_cmp(&L->wants[i], &L->wants[i + 1]) == 0)
            return nnc_rt_set_error(NNC_ERR_ARG,
                                    "%s: error: tensor '%s' is wanted twice",
                                    L->path, L->wants[i].name);
    for (int i = 0; i < L->n_entries; i++) {
        int rc = match_entry(L, &L->entries[i]);
        if (rc != NNC_OK)
            return rc;
    }
    for (int i = 0; i < L->n_wants; i++)
        if (!L->wants[i].found)
            return tensor_error(L, NNC_ERR_MISSING, L->wants[i].name,
                                L->wants[i].name_len, "missing from the file");
    return NNC_OK;
}

/* ---- stage 5: the copy, and the driver ----------------------------------- */

static int st_copy(const StLoad *L)
{
    uint64_t data_start = 8 + L->header_len;
    for (int i = 0; i < L->n_entries; i++) {
        const StEntry *e = &L->entries[i];
        if (e->want < 0)
            continue;
        int err = pread_all(L->fd, L->wants[e->want].dst, e->end - e->begin,
                            data_start + e->begin);
        if (err)
            return entry_error(L, NNC_ERR_IO, e, strerror(err));
    }
    return NNC_OK;
}

static int st_run(StLoad *L)
{
    int rc = st_read_header(L);
    if (rc == NNC_OK)
        rc = st_parse_header(L);
    if (rc == NNC_OK)
        rc = st_check_layout(L);
    if (rc == NNC_OK)
        rc = st_match(L);
    if (rc == NNC_OK)
        rc = st_copy(L);
    if (L->fd >= 0)
        close(L->fd);
    free(L->header);
    nncrt_json_free(&L->doc);
    free(L->entries);
    free(L->wants);
    free(L->names);
    return rc;
}

static void st_init(StLoad *L, const char *path)
{
    memset(L, 0, sizeof *L);
    L->path = path;
    L->fd = -1;
}

static void add_want(StLoad *L, const char *name, const nnc_tensor_info *t,
                     void *dst)
{
    StWant *w = &L->wants[L->n_wants++];
    *w = (StWant){name, strlen(name), t, dst, 0};
}

int nnc_st_load_exact(const char *path, int n, const nnc_tensor_info *tensors,
                      void *const *dst)
{
    StLoad L;
    st_init(&L, path ? path : "(null)");
    if (!path || n < 0 || (n > 0 && (!tensors || !dst)))
        return nnc_rt_set_error(NNC_ERR_ARG, "nnc_st_load_exact: bad argument");
    L.wants = calloc((size_t)n + 1, sizeof *L.wants);
    if (!L.wants)
        return file_error(&L, NNC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        add_want(&L, tensors[i].name, &tensors[i], dst[i]);
    L.unknown_why = "not one of the expected tensors";
    return st_run(&L);
}

static const nnc_tensor_info step_info = {
    "opt.step", NNC_ROLE_OPT_STATE, NNC_I64, 0, -1, {0}, 1, -1, {0, 0, 0}};

/* Parameters, and for checkpoints "opt.<name>" and "opt.step". */
static int model_wants(StLoad *L, const nnc_model_info *info, void *base,
                       int with_opt)
{
    size_t names = 1;
    for (int32_t i = 0; i < info->n_tensors; i++)
        names += strlen(info->tensors[i].name) + 5;
    L->wants = calloc((size_t)info->n_tensors + 1, sizeof *L->wants);
    L->names = malloc(names);
    if (!L->wants || !L->names)
        return file_error(L, NNC_ERR_NOMEM, "out of memory");
    char *o = L->names;
    for (int32_t i = 0; i < info->n_tensors; i++) {
        const nnc_tensor_info *t = &info->tensors[i];
        void *dst = (char *)base + t->offset;
        if (t->role == NNC_ROLE_PARAM || t->role == NNC_ROLE_FROZEN_PARAM)
            add_want(L, t->name, t, dst);
        if (t->role == NNC_ROLE_OPT_STATE && with_opt) {
            char *name = o;
            o += sprintf(o, "opt.%s", t->name) + 1;
            add_want(L, name, t, dst);
        }
    }
    if (with_opt && info->step_offset >= 0)
        add_want(L, step_info.name, &step_info,
                 (char *)base + info->step_offset);
    return NNC_OK;
}

int nnc_st_load(const char *path, const nnc_model_info *info, void *base,
                unsigned flags)
{
    StLoad L;
    st_init(&L, path ? path : "(null)");
    if (!path || !base)
        return nnc_rt_set_error(NNC_ERR_ARG, "nnc_st_load: bad argument");
    int rc = nnc_model_check(info);
    if (rc != NNC_OK)
        return rc;
    int with_opt = (flags & NNC_ST_OPT_STATE) != 0;
    rc = model_wants(&L, info, base, with_opt);
    if (rc != NNC_OK) {
        free(L.wants);
        free(L.names);
        return rc;
    }
    char why[512];
    snprintf(why, sizeof why, "not a parameter%s of model '%s'",
             with_opt ? " or optimizer state" : "", info->name);
    L.unknown_why = why;
    L.ignore_opt = !with_opt;
    return st_run(&L);
}
