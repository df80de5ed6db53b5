/* test_rt_interop.c — safetensors files exchanged with an independent
 * implementation: st_interop.py, run with NNC_PYTHON (Debian's python3,
 * which has torch).  The C side writes a checkpoint that the script reads
 * with its own parser and torch.frombuffer and checks bit for bit; the
 * script writes a parameter file and an inputs file (in the safetensors
 * crate's tensor order) that the C side loads and checks bit for bit.
 * Exits 77 (ctest: skipped) when that Python or its torch is missing.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "nnc.h"

#ifndef NNC_PYTHON
#define NNC_PYTHON "/usr/bin/python3"
#endif

/* clang-format off */
enum { W = 0, B = 80, E = 100, G = 148, M = 228, STEP = 312, TOTAL = 320 };

static const nnc_tensor_info tensors[] = {
    {"w", NNC_ROLE_PARAM, NNC_F32, 2, -1, {4, 5}, 20, W, {0, 0, 0}},
    {"b", NNC_ROLE_PARAM, NNC_F32, 1, -1, {5}, 5, B, {0, 0, 0}},
    {"e", NNC_ROLE_FROZEN_PARAM, NNC_F32, 3, -1, {3, 2, 2}, 12, E, {0, 0, 0}},
    {"w", NNC_ROLE_GRAD, NNC_F32, 2, 0, {4, 5}, 20, G, {0, 0, 0}},
    {"w.exp_avg", NNC_ROLE_OPT_STATE, NNC_F32, 2, 0, {4, 5}, 20, M, {0, 0, 0}},
};
static const nnc_model_info interop = {NNC_ABI_VERSION, 5, "interop", tensors,
                                       TOTAL, TOTAL, 0, STEP};
/* clang-format on */

/* clang-format off */
static const nnc_tensor_info inputs[] = {
    {"x", NNC_ROLE_INPUT, NNC_F32, 2, -1, {2, 3}, 6, -1, {0, 0, 0}},
    {"y", NNC_ROLE_INPUT, NNC_I32, 1, -1, {4}, 4, -1, {0, 0, 0}},
};
/* clang-format on */

static char dir[64];

/* The formulas of st_interop.py: c_value for files written here, py_value
 * for files written there.  All values are exact in float. */
static float c_value(int t, int i)
{
    return (float)((i * 37 + t * 11) % 101 - 50) / 16.0f;
}
static float py_value(int t, int i)
{
    return (float)((i * 53 + t * 7) % 89 - 44) / 8.0f;
}

static int run_python(const char *mode, const char *a, const char *b)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl(NNC_PYTHON, NNC_PYTHON, NNC_INTEROP_SCRIPT, mode, a, b,
              (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void test_python_reads_c_checkpoint(void **state)
{
    unsigned char base[TOTAL];
    static const uint32_t special[4] = {0x80000000u, 0x00000001u, 0x7F7FFFFFu,
                                        0xFF800000u};
    for (int t = 0; t < 5; t++) {
        if (t == 3)
            continue; /* the gradient is not saved */
        const nnc_tensor_info *ti = &tensors[t];
        for (int i = 0; i < ti->numel; i++)
            ((float *)(base + ti->offset))[i] = c_value(t < 3 ? t : 3, i);
    }
    memcpy(base, special, sizeof special); /* -0, denormal, max, -inf */
    int64_t step = 123456789012;
    memcpy(base + STEP, &step, sizeof step);
    char path[128];
    snprintf(path, sizeof path, "%s/from_c.safetensors", dir);
    assert_int_equal(nnc_st_save(path, &interop, base, NNC_ST_OPT_STATE),
                     NNC_OK);
    assert_int_equal(run_python("check", path, ""), 0);
}

static void test_c_reads_python_files(void **state)
{
    char params[128], in[128];
    snprintf(params, sizeof params, "%s/from_py.safetensors", dir);
    snprintf(in, sizeof in, "%s/inputs.safetensors", dir);
    assert_int_equal(run_python("write", params, in), 0);

    unsigned char base[TOTAL];
    memset(base, 0x5A, sizeof base);
    assert_int_equal(nnc_st_load(params, &interop, base, 0), NNC_OK);
    for (int t = 0; t < 3; t++) {
        const nnc_tensor_info *ti = &tensors[t];
        for (int i = 0; i < ti->numel; i++)
            assert_true(((float *)(base + ti->offset))[i] == py_value(t, i));
    }
    for (int i = G; i < TOTAL; i++) /* gradient, state, step untouched */
        assert_int_equal(base[i], 0x5A);

    float x[6];
    int32_t y[4];
    void *dst[2] = {x, y};
    assert_int_equal(nnc_st_load_exact(in, 2, inputs, dst), NNC_OK);
    for (int i = 0; i < 6; i++)
        assert_true(x[i] == py_value(5, i));
    assert_int_equal(y[0], 3);
    assert_int_equal(y[1], -1);
    assert_int_equal(y[2], 2147483647);
    assert_int_equal(y[3], -2147483647 - 1);
}

static int have_torch(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl(NNC_PYTHON, NNC_PYTHON, "-c", "import torch", (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(void)
{
    if (!have_torch()) {
        printf("skipped: %s cannot import torch\n", NNC_PYTHON);
        return 77;
    }
    strcpy(dir, "/tmp/nnc_rt_interop_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_reads_c_checkpoint),
        cmocka_unit_test(test_c_reads_python_files),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    return failed;
}
