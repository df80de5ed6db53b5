/* model.c — sizes the demos read from a model's nnc_model_info table, so the
 * C programs follow whatever -D sizes the model was compiled with. */
#include "demo.h"

int64_t demo_tensor_dim(const nnc_model_info *info, nnc_role role,
                        const char *name, int axis)
{
    const nnc_tensor_info *t = nnc_model_find(info, name, role);
    if (!t)
        demo_fail("model '%s' has no tensor '%s' of that role", info->name,
                  name);
    if (axis < 0)
        axis += t->rank;
    if (axis < 0 || axis >= t->rank)
        demo_fail("tensor '%s' of model '%s' has no axis %d", name, info->name,
                  axis);
    return t->shape[axis];
}

int64_t demo_param_count(const nnc_model_info *info)
{
    int64_t n = 0;
    for (int32_t i = 0; i < info->n_tensors; i++) {
        nnc_role role = info->tensors[i].role;
        if (role == NNC_ROLE_PARAM || role == NNC_ROLE_FROZEN_PARAM)
            n += info->tensors[i].numel;
    }
    return n;
}
