/* fuzz_st_load.c — libFuzzer target for libnncrt's safetensors loader
 * (built with -DNNC_FUZZ=ON -DCMAKE_C_COMPILER=clang).  Each input is
 * written to a temporary file and loaded into a small model; whatever the
 * bytes, the load must return a status, and a failed load must leave the
 * destination unchanged.  The JSON reader is also fed the input directly.
 * Seeds: tests/runtime/fuzz_seeds (valid and malformed headers).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* clang-format off */
static const nnc_tensor_info tensors[] = {
    {"w1", NNC_ROLE_PARAM, NNC_F32, 2, -1, {3, 4}, 12, 0, {0, 0, 0}},
    {"b1", NNC_ROLE_PARAM, NNC_F32, 1, -1, {4}, 4, 48, {0, 0, 0}},
    {"emb", NNC_ROLE_FROZEN_PARAM, NNC_I32, 2, -1, {2, 3}, 6, 64, {0, 0, 0}},
    {"w1.m", NNC_ROLE_OPT_STATE, NNC_F32, 2, 0, {3, 4}, 12, 88, {0, 0, 0}},
};
static const nnc_model_info model = {NNC_ABI_VERSION, 4, "fuzz", tensors,
                                     144, 144, 0, 136};
/* clang-format on */

static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        strcpy(path, "/tmp/nnc_fuzz_st_XXXXXX");
        int fd = mkstemp(path);
        if (fd < 0)
            abort();
        close(fd);
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    unsigned char base[144], before[144];
    memset(base, 0xC5, sizeof base);
    memcpy(before, base, sizeof base);
    for (unsigned flags = 0; flags < 2; flags++) {
        int rc = nnc_st_load(path, &model, base, flags);
        if (rc != NNC_OK && memcmp(base, before, sizeof base) != 0)
            abort(); /* a failed load wrote into the model */
        if (rc == NNC_OK)
            memcpy(before, base, sizeof base);
    }
    JsonDoc doc;
    nncrt_json_parse(&doc, (const char *)data, size);
    nncrt_json_free(&doc);
    return 0;
}
