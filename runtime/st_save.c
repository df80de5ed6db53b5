/* st_save.c — writing safetensors files (NAME_save, NAME_save_checkpoint,
 * `nnc run --save`, `--outputs`, `--grads`).
 *
 * The header lists tensors in a fixed order (the model table's order; the
 * caller's order for nnc_st_save_tensors) with contiguous data, and is
 * padded with spaces so the data starts 8-byte aligned, as the safetensors
 * crate does.  Saving is atomic: the file is written to a temporary made by
 * mkstemp in the target's directory, fsync'ed and renamed over the target,
 * then the directory is fsync'ed.  Any failure removes the temporary and
 * leaves the previous target untouched.  The new file takes the old one's
 * permission bits, or 0644 when there was none.  A target that exists and
 * is not a regular file or a symbolic link (a device such as /dev/null, a
 * FIFO, a socket, a directory) is refused before anything is written, and
 * checked again just before the rename.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

typedef struct SaveItem {
    const char *name;
    nnc_dtype dtype;
    int rank;
    const int64_t *shape;
    const void *src;
    uint64_t bytes;
} SaveItem;

/* ---- the header text ----------------------------------------------------- */

typedef struct StrBuf {
    char *p;
    size_t len, cap;
    int oom;
} StrBuf;

static void sb_reserve(StrBuf *b, size_t more)
{
    if (b->oom || b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void sb_add(StrBuf *b, const char *fmt, ...) NNC_PRINTF(2, 3);
static void sb_add(StrBuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    sb_reserve(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* A JSON string literal: quotes, backslashes and control bytes escaped. */
static void sb_json_string(StrBuf *b, const char *s)
{
    sb_add(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            sb_add(b, "\\%c", *c);
        else if (*c < 0x20)
            sb_add(b, "\\u%04x", *c);
        else
            sb_add(b, "%c", *c);
    }
    sb_add(b, "\"");
}

static void build_header(StrBuf *b, const char *model, const SaveItem *items,
                         int n)
{
    sb_add(b, "{\"__metadata__\":{\"format\":\"pt\",\"producer\":\"nnc\"");
    if (model) {
        sb_add(b, ",\"model\":");
        sb_json_string(b, model);
    }
    sb_add(b, "}");
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        sb_add(b, ",");
        sb_json_string(b, items[i].name);
        sb_add(b, ":{\"dtype\":\"%s\",\"shape\":[",
               nncrt_st_dtype_name(items[i].dtype));
        for (int d = 0; d < items[i].rank; d++)
            sb_add(b, "%s%lld", d ? "," : "", (long long)items[i].shape[d]);
        sb_add(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
               (unsigned long long)(offset + items[i].bytes));
        offset += items[i].bytes;
    }
    sb_add(b, "}");
    while (!b->oom && b->len % 8 != 0)
        sb_add(b, " ");
}

/* ---- the atomic write ---------------------------------------------------- */

static int write_all(int fd, const void *buf, uint64_t n)
{
    const char *p = buf;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t put = write(fd, p, chunk);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return put == 0 ? EIO : errno;
        p += put, n -= (uint64_t)put;
    }
    return 0;
}

static int write_contents(int fd, const StrBuf *header, const SaveItem *items,
                          int n)
{
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)header->len >> (8 * i));
    int err = write_all(fd, len8, 8);
    if (!err)
        err = write_all(fd, header->p, header->len);
    for (int i = 0; i < n && !err; i++)
        err = write_all(fd, items[i].src, items[i].bytes);
    return err;
}

/* "DIR/.BASE.tmp-XXXXXX" beside `path`, and DIR itself. */
static int temp_names(const char *path, char **tmp, char **dir)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dir_len = slash ? (size_t)(slash - path) : 0;
    *tmp = malloc(strlen(path) + 16);
    *dir = malloc(dir_len + 2);
    if (!*tmp || !*dir)
        return NNC_ERR_NOMEM;
    if (!slash)
        strcpy(*dir, ".");
    else if (slash == path)
        strcpy(*dir, "/");
    else {
        memcpy(*dir, path, dir_len);
        (*dir)[dir_len] = '\0';
    }
    sprintf(*tmp, "%.*s.%s.tmp-XXXXXX", (int)(base - path), path, base);
    return NNC_OK;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { /* best effort: some file systems refuse it */
        (void)fsync(fd);
        close(fd);
    }
}

/* What `path` is when it exists and is neither a regular file nor a
 * symbolic link (which rename replaces), else NULL: renaming over a
 * device such as /dev/null, a FIFO or a socket would replace it, and over
 * a directory fails only after all the writing. */
static const char *not_a_file(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0 || S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
        return NULL;
    return S_ISDIR(st.st_mode)    ? "a directory"
           : S_ISCHR(st.st_mode)  ? "a character device"
           : S_ISBLK(st.st_mode)  ? "a block device"
           : S_ISFIFO(st.st_mode) ? "a FIFO"
           : S_ISSOCK(st.st_mode) ? "a socket"
                                  : "not a regular file";
}

static int refuse_non_file(const char *path, const char *what)
{
    return nnc_rt_set_error(NNC_ERR_IO,
                            "%s: error: cannot write: the path exists and is "
                            "%s, not a regular file",
                            path, what);
}

static int write_file(const char *path, const char *tmp, const char *dir,
                      const StrBuf *header, const SaveItem *items, int n)
{
    const char *what = not_a_file(path);
    if (what)
        return refuse_non_file(path, what);
    struct stat st;
    mode_t mode =
        stat(path, &st) == 0 && S_ISREG(st.st_mode) ? st.st_mode & 07777 : 0644;
    int fd = mkstemp((char *)tmp);
    if (fd < 0)
        return nnc_rt_set_error(NNC_ERR_IO,
                                "%s: error: cannot create a temporary file "
                                "in '%s': %s",
                                path, dir, strerror(errno));
    int err = fchmod(fd, mode) != 0 ? errno : 0;
    if (!err)
        err = write_contents(fd, header, items, n);
    if (!err && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && (what = not_a_file(path)) != NULL) { /* appeared meanwhile */
        unlink(tmp);
        return refuse_non_file(path, what);
    }
    if (!err && rename(tmp, path) != 0)
        err = errno;
    if (err) {
        unlink(tmp);
        return nnc_rt_set_error(NNC_ERR_IO, "%s: error: cannot write: %s", path,
                                strerror(err));
    }
    fsync_dir(dir);
    return NNC_OK;
}

static int save_items(const char *path, const char *model,
                      const SaveItem *items, int n)
{
    StrBuf header = {0};
    char *tmp = NULL, *dir = NULL;
    int rc;
    build_header(&header, model, items, n);
    if (header.oom)
        rc = nnc_rt_set_error(NNC_ERR_NOMEM, "%s: error: out of memory", path);
    else if (path[0] == '\0' || path[strlen(path) - 1] == '/')
        rc = nnc_rt_set_error(NNC_ERR_ARG, "%s: error: not a file name", path);
    else if (temp_names(path, &tmp, &dir) != NNC_OK)
        rc = nnc_rt_set_error(NNC_ERR_NOMEM, "%s: error: out of memory", path);
    else
        rc = write_file(path, tmp, dir, &header, items, n);
    free(header.p);
    free(tmp);
    free(dir);
    return rc;
}

/* ---- entry points -------------------------------------------------------- */

static SaveItem item_of(const nnc_tensor_info *t, const char *name,
                        const void *src)
{
    return (SaveItem){name,    t->dtype,
                      t->rank, t->shape,
                      src,     (uint64_t)t->numel * nnc_dtype_size(t->dtype)};
}

static const int64_t no_shape[1] = {0};

int nnc_st_save(const char *path, const nnc_model_info *info, const void *base,
                unsigned flags)
{
    if (!path || !base)
        return nnc_rt_set_error(NNC_ERR_ARG, "nnc_st_save: bad argument");
    int rc = nnc_model_check(info);
    if (rc != NNC_OK)
        return rc;
    int with_opt = (flags & NNC_ST_OPT_STATE) != 0, n = 0;
    size_t names_len = 1;
    for (int32_t i = 0; i < info->n_tensors; i++)
        names_len += strlen(info->tensors[i].name) + 5;
    SaveItem *items = malloc(((size_t)info->n_tensors + 1) * sizeof *items);
    char *names = malloc(names_len), *o = names;
    if (!items || !names) {
        free(items);
        free(names);
        return nnc_rt_set_error(NNC_ERR_NOMEM, "%s: error: out of memory",
                                path);
    }
    const char *b = base;
    for (int32_t i = 0; i < info->n_tensors; i++) {
        const nnc_tensor_info *t = &info->tensors[i];
        if (t->role == NNC_ROLE_PARAM || t->role == NNC_ROLE_FROZEN_PARAM)
            items[n++] = item_of(t, t->name, b + t->offset);
    }
    for (int32_t i = 0; i < info->n_tensors && with_opt; i++) {
        const nnc_tensor_info *t = &info->tensors[i];
        if (t->role != NNC_ROLE_OPT_STATE)
            continue;
        char *name = o;
        o += sprintf(o, "opt.%s", t->name) + 1;
        items[n++] = item_of(t, name, b + t->offset);
    }
    if (with_opt && info->step_offset >= 0)
        items[n++] = (SaveItem){
            "opt.step",     NNC_I64, 0, no_shape, b + info->step_offset,
            sizeof(int64_t)};
    rc = save_items(path, info->name, items, n);
    free(items);
    free(names);
    return rc;
}

int nnc_st_save_tensors(const char *path, int n, const nnc_tensor_info *tensors,
                        const void *const *src)
{
    if (!path || n < 0 || (n > 0 && (!tensors || !src)))
        return nnc_rt_set_error(NNC_ERR_ARG,
                                "nnc_st_save_tensors: bad argument");
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(tensors[i].name, tensors[j].name))
                return nnc_rt_set_error(NNC_ERR_ARG,
                                        "%s: error: tensor '%s' given twice",
                                        path, tensors[i].name);
    SaveItem *items = malloc(((size_t)n + 1) * sizeof *items);
    if (!items)
        return nnc_rt_set_error(NNC_ERR_NOMEM, "%s: error: out of memory",
                                path);
    for (int i = 0; i < n; i++)
        items[i] = item_of(&tensors[i], tensors[i].name, src[i]);
    int rc = save_items(path, NULL, items, n);
    free(items);
    return rc;
}
