/* test_rt_header_c99.c — nnc.h is self-contained C99: this file is compiled
 * with -std=c99 -pedantic-errors and links the shared libnncrt.so, as a
 * user program built from generated code would.  It checks a few results
 * through the shared library (status names, a Philox known answer, error
 * messages), so the .so's exports are exercised, not just declared.
 */
#include <stdio.h>
#include <string.h>

#include "nnc.h"

static int failures;

static void check(int ok, const char *what)
{
    if (!ok) {
        printf("FAILED: %s\n", what);
        failures++;
    }
}

int main(void)
{
    uint32_t ctr[4] = {0, 0, 0, 0}, key[2] = {0, 0}, out[4];
    float buf[4];
    int64_t shape[1] = {4};
    nnc_philox4x32_10(ctr, key, out);
    check(out[0] == 0x6627e8d5u && out[3] == 0x9b00dbd8u, "philox via .so");
    check(strcmp(nnc_status_name(NNC_ERR_SHAPE), "NNC_ERR_SHAPE") == 0,
          "status name");
    check(nnc_rt_set_error(NNC_ERR_RANGE, "id %d out of range", 7) ==
              NNC_ERR_RANGE,
          "set_error returns its status");
    check(strcmp(nnc_last_error(), "id 7 out of range") == 0, "last error");
    nnc_clear_error();
    check(nnc_last_error()[0] == '\0', "clear error");
    check(nnc_init_tensor(buf, 1, shape, NNC_INIT_ONES, 0, 0, 0, 0, NULL) ==
                  NNC_OK &&
              buf[3] == 1.0f,
          "init via .so");
    check(nnc_st_load("/nonexistent/x.safetensors", NULL, buf, 0) ==
              NNC_ERR_ARG,
          "load rejects a NULL model table");
    check(nnc_get_num_threads() >= 1, "thread count");
    printf("%s\n", failures ? "header test failed" : "header test passed");
    return failures != 0;
}
