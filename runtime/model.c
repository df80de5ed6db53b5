/* model.c — helpers over the nnc_model_info table that generated code
 * emits for each model: consistency checks (so a bad table is an error,
 * not a wild write), lookup by name (NAME_param, NAME_grad), and the
 * small formatting helpers the safetensors code shares.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

size_t nnc_dtype_size(nnc_dtype dtype)
{
    switch (dtype) {
    case NNC_F32: return 4;
    case NNC_I32: return 4;
    case NNC_I64: return 8;
    }
    return 0;
}

const char *nncrt_st_dtype_name(nnc_dtype dtype)
{
    switch (dtype) {
    case NNC_F32: return "F32";
    case NNC_I32: return "I32";
    case NNC_I64: return "I64";
    }
    return "?";
}

void nncrt_format_shape(char *out, size_t cap, int rank, const int64_t *shape)
{
    size_t o = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < rank && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%lld", i ? ", " : "",
                              (long long)shape[i]);
    if (o < cap)
        snprintf(out + o, cap - o, "]");
}

static int tensor_bad(const nnc_model_info *info, int32_t i, const char *why)
{
    const nnc_tensor_info *t = &info->tensors[i];
    return nnc_rt_set_error(NNC_ERR_ARG, "model '%s': tensor %d ('%s'): %s",
                            info->name ? info->name : "?", (int)i,
                            t->name ? t->name : "?", why);
}

/* Shape, numel, and the bytes [offset, offset + size) inside the buffer. */
static int check_tensor(const nnc_model_info *info, int32_t i)
{
    const nnc_tensor_info *t = &info->tensors[i];
    if (!t->name || t->rank < 0 || t->rank > NNC_MAX_RANK)
        return tensor_bad(info, i, "no name or rank out of range");
    if (nnc_dtype_size(t->dtype) == 0)
        return tensor_bad(info, i, "unknown dtype");
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++) {
        if (t->shape[d] < 0 || (t->shape[d] > 0 && n > INT64_MAX / t->shape[d]))
            return tensor_bad(info, i, "invalid shape");
        n *= t->shape[d];
    }
    if (n != t->numel)
        return tensor_bad(info, i, "numel does not match the shape");
    int caller_owned = t->role == NNC_ROLE_INPUT || t->role == NNC_ROLE_OUTPUT;
    if (caller_owned)
        return NNC_OK;
    int64_t size = n * (int64_t)nnc_dtype_size(t->dtype);
    if (t->offset < 0 || t->offset > info->total_bytes - size ||
        t->offset % (int64_t)nnc_dtype_size(t->dtype) != 0)
        return tensor_bad(info, i, "offset outside the instance buffer");
    int has_param = t->role == NNC_ROLE_GRAD || t->role == NNC_ROLE_OPT_STATE;
    if (has_param && (t->param < 0 || t->param >= info->n_tensors))
        return tensor_bad(info, i, "param index out of range");
    return NNC_OK;
}

int nnc_model_check(const nnc_model_info *info)
{
    if (!info)
        return nnc_rt_set_error(NNC_ERR_ARG, "model info is NULL");
    if (info->abi_version != NNC_ABI_VERSION)
        return nnc_rt_set_error(NNC_ERR_ARG,
                                "model '%s': built for runtime ABI %d, this "
                                "libnncrt has ABI %d",
                                info->name ? info->name : "?",
                                (int)info->abi_version, NNC_ABI_VERSION);
    if (!info->name || info->n_tensors < 0 ||
        (info->n_tensors > 0 && !info->tensors) || info->total_bytes < 0)
        return nnc_rt_set_error(NNC_ERR_ARG, "model '%s': malformed table",
                                info->name ? info->name : "?");
    for (int32_t i = 0; i < info->n_tensors; i++) {
        int rc = check_tensor(info, i);
        if (rc != NNC_OK)
            return rc;
    }
    if (info->step_offset >= 0 &&
        (info->step_offset > info->total_bytes - (int64_t)sizeof(int64_t) ||
         info->step_offset % (int64_t)sizeof(int64_t) != 0))
        return nnc_rt_set_error(NNC_ERR_ARG,
                                "model '%s': step offset outside the buffer",
                                info->name ? info->name : "?");
    return NNC_OK;
}

static int role_matches(nnc_role have, nnc_role want)
{
    return have == want ||
           (want == NNC_ROLE_PARAM && have == NNC_ROLE_FROZEN_PARAM);
}

const nnc_tensor_info *nnc_model_find(const nnc_model_info *info,
                                      const char *name, nnc_role role)
{
    if (!info || !name)
        return NULL;
    for (int32_t i = 0; i < info->n_tensors; i++) {
        const nnc_tensor_info *t = &info->tensors[i];
        if (role_matches(t->role, role) && strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

void *nnc_model_tensor(const nnc_model_info *info, void *base, const char *name,
                       nnc_role role)
{
    const nnc_tensor_info *t = nnc_model_find(info, name, role);
    if (!t || t->offset < 0)
        return NULL;
    return (char *)base + t->offset;
}
