/* link_main.c — a user program for the model test_codegen_emit.c compiles
 * to tiny.o + tiny.h: it includes only the generated header, links with
 * libnncrt and checks the generated API from the outside.  Exit status 0
 * means every check passed; otherwise the failed check is printed. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tiny.h"

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "link_main.c:%d: check failed: %s (%s)\n",         \
                    __LINE__, #cond, nnc_last_error());                        \
            return 1;                                                          \
        }                                                                      \
    } while (0)

/* y = relu(x @ W + b) + E[ids] */
static void reference(tiny *m, const float *x, const int32_t *ids, double *y)
{
    const float *w = tiny_param(m, "W"), *b = tiny_param(m, "b"),
                *e = tiny_param(m, "E");
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 4; j++) {
            double s = b[j];
            for (int k = 0; k < 3; k++)
                s += (double)x[r * 3 + k] * w[k * 4 + j];
            y[r * 4 + j] = (s > 0 ? s : 0) + e[ids[r] * 4 + j];
        }
}

static int check_forward(tiny *m, const float *x, int32_t *ids)
{
    float y[8];
    double want[8];
    CHECK(tiny_forward(m, x, ids, y) == 0);
    reference(m, x, ids, want);
    for (int i = 0; i < 8; i++)
        CHECK(fabs(y[i] - want[i]) <= 1e-5 * (1 + fabs(want[i])));
    return 0;
}

int main(int argc, char **argv)
{
    const char *params = argc > 1 ? argv[1] : "tiny_params.safetensors";
    const nnc_model_info *info = tiny_info();
    CHECK(nnc_model_check(info) == NNC_OK);
    CHECK(strcmp(info->name, "tiny") == 0);
    CHECK(info->n_tensors == 3 + 3 + 1); /* W b E, x ids t, y */
    tiny *m = tiny_new();
    CHECK(m != NULL);
    CHECK(((size_t)m & 63) == 0);
    tiny_init(m, 1);
    float *w = tiny_param(m, "W");
    CHECK(w != NULL && tiny_param(m, "nope") == NULL);
    float bound = sqrtf(6.0f / 7.0f), sum = 0;
    for (int i = 0; i < 12; i++) {
        CHECK(fabsf(w[i]) <= bound);
        sum += fabsf(w[i]);
    }
    CHECK(sum > 0);
    float x[6] = {0.5f, -1, 2, 1.5f, 0.25f, -0.75f};
    int32_t ids[2] = {4, 1};
    if (check_forward(m, x, ids))
        return 1;
    CHECK(tiny_save(m, params) == 0);
    tiny *m2 = tiny_new();
    CHECK(m2 != NULL);
    CHECK(tiny_load(m2, params) == 0);
    CHECK(memcmp(tiny_param(m2, "E"), tiny_param(m, "E"), 20 * sizeof(float)) ==
          0);
    if (check_forward(m2, x, ids))
        return 1;
    ids[1] = 9;
    float y[8];
    CHECK(tiny_forward(m2, x, ids, y) == NNC_ERR_RANGE);
    CHECK(strstr(nnc_last_error(), "id 9 at position [1]") != NULL);
    tiny_free(m);
    tiny_free(m2);
    puts("ok");
    return 0;
}
