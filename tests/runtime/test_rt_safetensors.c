/* test_rt_safetensors.c — libnncrt's safetensors load and save.
 *
 * A hand-written model table ("toy": two trainable parameters, one frozen,
 * a gradient, optimizer state and a step counter) drives: the exact bytes
 * of a saved file; save/load round trips for parameters and checkpoints;
 * the generic loader and saver of `--inputs`/`--outputs`; a corpus of
 * malformed files, generated here, each rejected with its exact message
 * and with the destination left byte-for-byte unchanged; and atomic saving
 * (an unwritable directory and a write failing midway both leave the old
 * file intact and no temporary behind; a good save replaces the file and
 * keeps its permission bits; a FIFO or a directory at the target is
 * refused with a message and left in place, a symbolic link replaced).
 */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "nnc.h"

/* ---- the toy model ------------------------------------------------------- */

/* clang-format off */
enum { W1 = 0, B1 = 48, EMB = 64, G_W1 = 88, M_W1 = 136, M_B1 = 184,
       STEP = 200, TOTAL = 208 };

static const nnc_tensor_info toy_tensors[] = {
    {"x", NNC_ROLE_INPUT, NNC_F32, 2, -1, {2, 3}, 6, -1, {0, 0, 0}},
    {"w1", NNC_ROLE_PARAM, NNC_F32, 2, -1, {3, 4}, 12, W1, {0, 0, 0}},
    {"b1", NNC_ROLE_PARAM, NNC_F32, 1, -1, {4}, 4, B1, {0, 0, 0}},
    {"emb", NNC_ROLE_FROZEN_PARAM, NNC_F32, 2, -1, {2, 3}, 6, EMB, {0, 0, 0}},
    {"w1", NNC_ROLE_GRAD, NNC_F32, 2, 1, {3, 4}, 12, G_W1, {0, 0, 0}},
    {"w1.exp_avg", NNC_ROLE_OPT_STATE, NNC_F32, 2, 1, {3, 4}, 12, M_W1,
     {0, 0, 0}},
    {"b1.exp_avg", NNC_ROLE_OPT_STATE, NNC_F32, 1, 2, {4}, 4, M_B1, {0, 0, 0}},
    {"logits", NNC_ROLE_OUTPUT, NNC_F32, 2, -1, {2, 4}, 8, -1, {0, 0, 0}},
};
static const nnc_model_info toy = {NNC_ABI_VERSION, 8, "toy", toy_tensors,
                                   TOTAL, TOTAL, 0, STEP};
/* clang-format on */

static char dir[64]; /* this run's scratch directory */

static void fill_model(unsigned char *base, float salt, int64_t step)
{
    for (int i = 0; i < STEP / 4; i++)
        ((float *)base)[i] = salt + (float)i * 0.25f;
    memcpy(base + STEP, &step, sizeof step);
}

static char *path_of(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

static size_t read_file(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* Writes [8-byte length][header][data]; declared < 0 means the real one. */
static void write_raw(const char *path, const char *header, long long declared,
                      const void *data, size_t data_len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    unsigned long long len =
        declared < 0 ? strlen(header) : (unsigned long long)declared;
    for (int i = 0; i < 8; i++)
        fputc((int)(len >> (8 * i)) & 0xff, f);
    fwrite(header, 1, strlen(header), f);
    if (data_len)
        fwrite(data, 1, data_len, f);
    fclose(f);
}

/* ---- saved bytes and round trips ----------------------------------------- */

static const char toy_header[] =
    "{\"__metadata__\":{\"format\":\"pt\",\"producer\":\"nnc\",\"model\":"
    "\"toy\"},"
    "\"w1\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]},"
    "\"b1\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[48,64]},"
    "\"emb\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[64,88]}}";

static void test_saved_bytes(void **state)
{
    unsigned char base[TOTAL], file[1024];
    fill_model(base, 1.0f, 0);
    assert_int_equal(nnc_st_save(path_of("toy.safetensors"), &toy, base, 0),
                     NNC_OK);
    size_t n = read_file(path_of("toy.safetensors"), file, sizeof file);
    size_t hlen = strlen(toy_header), padded = (hlen + 7) / 8 * 8;
    assert_int_equal(n, 8 + padded + 88);
    assert_int_equal(file[0] | file[1] << 8, padded);
    for (int i = 2; i < 8; i++)
        assert_int_equal(file[i], 0);
    assert_memory_equal(file + 8, toy_header, hlen);
    for (size_t i = hlen; i < padded; i++)
        assert_int_equal(file[8 + i], ' ');
    assert_memory_equal(file + 8 + padded, base, 88); /* w1, b1, emb */
}

static void test_round_trip(void **state)
{
    unsigned char a[TOTAL], b[TOTAL];
    fill_model(a, 3.0f, 17);
    fill_model(b, -100.0f, 5);
    const char *p = path_of("rt.safetensors");
    assert_int_equal(nnc_st_save(p, &toy, a, 0), NNC_OK);
    assert_int_equal(nnc_st_load(p, &toy, b, 0), NNC_OK);
    assert_memory_equal(a, b, G_W1); /* every parameter */
    unsigned char c[TOTAL];
    fill_model(c, -100.0f, 5);
    assert_memory_equal(b + G_W1, c + G_W1, TOTAL - G_W1); /* the rest kept */
}

static void test_checkpoint(void **state)
{
    unsigned char a[TOTAL], b[TOTAL], c[TOTAL];
    fill_model(a, 7.0f, 123456789012345ll);
    fill_model(b, 0.0f, 0);
    const char *ck = path_of("ck.safetensors"), *pp = path_of("p.safetensors");
    assert_int_equal(nnc_st_save(ck, &toy, a, NNC_ST_OPT_STATE), NNC_OK);
    assert_int_equal(nnc_st_load(ck, &toy, b, NNC_ST_OPT_STATE), NNC_OK);
    assert_memory_equal(a, b, G_W1);
    assert_memory_equal(a + M_W1, b + M_W1, TOTAL - M_W1); /* state, step */

    fill_model(c, 0.0f, 0); /* a plain load of a checkpoint skips opt.* */
    memcpy(b, c, TOTAL);
    assert_int_equal(nnc_st_load(ck, &toy, b, 0), NNC_OK);
    assert_memory_equal(a, b, G_W1);
    assert_memory_equal(b + G_W1, c + G_W1, TOTAL - G_W1);

    /* a parameter file lacks the optimizer state a checkpoint needs */
    assert_int_equal(nnc_st_save(pp, &toy, a, 0), NNC_OK);
    assert_int_equal(nnc_st_load(pp, &toy, c, NNC_ST_OPT_STATE),
                     NNC_ERR_MISSING);
    char want[512];
    snprintf(want, sizeof want,
             "%s: error: tensor 'opt.b1.exp_avg': missing from the file", pp);
    assert_string_equal(nnc_last_error(), want);
}

static const nnc_tensor_info io_tensors[] = {
    {"x", NNC_ROLE_INPUT, NNC_F32, 2, -1, {2, 3}, 6, -1, {0, 0, 0}},
    {"y", NNC_ROLE_INPUT, NNC_I32, 1, -1, {2}, 2, -1, {0, 0, 0}},
    {"loss", NNC_ROLE_OUTPUT, NNC_F32, 0, -1, {0}, 1, -1, {0, 0, 0}},
};

static void test_exact_tensors(void **state)
{
    float x[6] = {1, 2, 3, 4, 5, 6}, loss = 0.125f, x2[6] = {0}, loss2 = 0;
    int32_t y[2] = {7, -3}, y2[2] = {0};
    const void *src[3] = {x, y, &loss};
    void *dst[3] = {x2, y2, &loss2};
    const char *p = path_of("io.safetensors");
    assert_int_equal(nnc_st_save_tensors(p, 3, io_tensors, src), NNC_OK);
    assert_int_equal(nnc_st_load_exact(p, 3, io_tensors, dst), NNC_OK);
    assert_memory_equal(x, x2, sizeof x);
    assert_memory_equal(y, y2, sizeof y);
    assert_true(loss2 == 0.125f);

    char want[512];
    assert_int_equal(nnc_st_load_exact(p, 2, io_tensors, dst), NNC_ERR_MISSING);
    snprintf(want, sizeof want,
             "%s: error: tensor 'loss': not one of the expected tensors", p);
    assert_string_equal(nnc_last_error(), want);
    assert_int_equal(nnc_st_save_tensors(p, 2, io_tensors, src), NNC_OK);
    assert_int_equal(nnc_st_load_exact(p, 3, io_tensors, dst), NNC_ERR_MISSING);
    snprintf(want, sizeof want,
             "%s: error: tensor 'loss': missing from the file", p);
    assert_string_equal(nnc_last_error(), want);
    nnc_tensor_info twice[2] = {io_tensors[0], io_tensors[0]};
    assert_int_equal(nnc_st_save_tensors(p, 2, twice, src), NNC_ERR_ARG);
}

/* ---- the malformed corpus ------------------------------------------------ */

/* clang-format off */
#define E_W1 "\"w1\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}"
#define E_B1 "\"b1\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[48,64]}"
#define E_EMB "\"emb\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[64,88]}"

typedef struct Bad {
    const char *what;
    const char *header;
    long long declared; /* header length to declare; -1: the real one */
    size_t data_len;
    int status;
    const char *message; /* after "FILE: error: "; %zu: see at_marker */
    const char *at_marker; /* the message's byte offset is where this
                              (2nd occurrence if dup) starts in header */
} Bad;

static const Bad corpus[] = {
    {"header length truncated", NULL, 0, 0, NNC_ERR_FORMAT,
     "file is 5 bytes, too short for the 8-byte header length", NULL},
    {"header length past the file", "{}", 1000, 0, NNC_ERR_FORMAT,
     "header length 1000 runs past the end of the file (10 bytes)", NULL},
    {"header over 100 MB", "{}", 200000000, 0, NNC_ERR_FORMAT,
     "header length 200000000 exceeds the 100 MB limit", NULL},
    {"invalid JSON", "{" E_W1 "," E_B1 "," E_EMB ", oops}", -1, 88,
     NNC_ERR_FORMAT, "malformed header JSON at byte %zu: expected a string key",
     "oops"},
    {"wrong dtype", "{\"w1\":{\"dtype\":\"I32\",\"shape\":[3,4],"
     "\"data_offsets\":[0,48]}," E_B1 "," E_EMB "}", -1, 88, NNC_ERR_SHAPE,
     "tensor 'w1': dtype I32 does not match the expected F32", NULL},
    {"wrong shape", "{\"w1\":{\"dtype\":\"F32\",\"shape\":[4,3],"
     "\"data_offsets\":[0,48]}," E_B1 "," E_EMB "}", -1, 88, NNC_ERR_SHAPE,
     "tensor 'w1': shape [4, 3] does not match the expected [3, 4]", NULL},
    {"offsets past end", "{" E_W1 "," E_B1 "," E_EMB "}", -1, 80,
     NNC_ERR_FORMAT,
     "tensor 'emb': data_offsets [64, 88] run past the end of the data "
     "(80 bytes)", NULL},
    {"overlapping offsets", "{" E_W1 ",\"b1\":{\"dtype\":\"F32\",\"shape\":[4],"
     "\"data_offsets\":[40,56]},\"emb\":{\"dtype\":\"F32\",\"shape\":[2,3],"
     "\"data_offsets\":[56,80]}}", -1, 80, NNC_ERR_FORMAT,
     "tensor 'b1': data_offsets [40, 56] overlap tensor 'w1' [0, 48]", NULL},
    {"gap between tensors", "{" E_W1 ",\"b1\":{\"dtype\":\"F32\",\"shape\":[4],"
     "\"data_offsets\":[52,68]},\"emb\":{\"dtype\":\"F32\",\"shape\":[2,3],"
     "\"data_offsets\":[68,92]}}", -1, 92, NNC_ERR_FORMAT,
     "tensor 'b1': gap of 4 bytes before its data_offsets [52, 68]", NULL},
    {"missing parameter", "{" E_W1 "," E_B1 "}", -1, 64, NNC_ERR_MISSING,
     "tensor 'emb': missing from the file", NULL},
    {"unknown tensor", "{" E_W1 "," E_B1 "," E_EMB ",\"w9\":{\"dtype\":\"F32\","
     "\"shape\":[1],\"data_offsets\":[88,92]}}", -1, 92, NNC_ERR_MISSING,
     "tensor 'w9': not a parameter of model 'toy'", NULL},
    {"duplicate key", "{" E_W1 "," E_B1 "," E_EMB "," E_W1 "}", -1, 88,
     NNC_ERR_FORMAT,
     "malformed header JSON at byte %zu: duplicate key \"w1\"", "\"w1\""},
    {"non-numeric offsets", "{\"w1\":{\"dtype\":\"F32\",\"shape\":[3,4],"
     "\"data_offsets\":[\"0\",\"48\"]}," E_B1 "," E_EMB "}", -1, 88,
     NNC_ERR_FORMAT,
     "tensor 'w1': data_offsets must be two non-negative integers", NULL},
    {"byte size mismatch", "{\"w1\":{\"dtype\":\"F32\",\"shape\":[3,4],"
     "\"data_offsets\":[0,44]}}", -1, 44, NNC_ERR_FORMAT,
     "tensor 'w1': data_offsets [0, 44] hold 44 bytes, but F32 [3, 4] needs "
     "48", NULL},
    {"reversed offsets", "{\"w1\":{\"dtype\":\"F32\",\"shape\":[3,4],"
     "\"data_offsets\":[48,0]}}", -1, 48, NNC_ERR_FORMAT,
     "tensor 'w1': data_offsets [48, 0] are reversed", NULL},
    {"bytes after the last tensor", "{" E_W1 "," E_B1 "," E_EMB "}", -1, 96,
     NNC_ERR_FORMAT, "8 bytes after the last tensor's data", NULL},
    {"unknown dtype", "{\"w1\":{\"dtype\":\"F33\",\"shape\":[3,4],"
     "\"data_offsets\":[0,48]}}", -1, 48, NNC_ERR_FORMAT,
     "tensor 'w1': unknown dtype 'F33'", NULL},
    {"negative dimension", "{\"w1\":{\"dtype\":\"F32\",\"shape\":[-3,4],"
     "\"data_offsets\":[0,48]}}", -1, 48, NNC_ERR_FORMAT,
     "tensor 'w1': shape must hold non-negative integers", NULL},
    {"missing field", "{\"w1\":{\"dtype\":\"F32\",\"shape\":[3,4]}}", -1, 0,
     NNC_ERR_FORMAT, "tensor 'w1': no 'data_offsets'", NULL},
    {"extra field", "{\"w1\":{\"dtype\":\"F32\",\"shape\":[3,4],"
     "\"data_offsets\":[0,48],\"crc\":1}}", -1, 48, NNC_ERR_FORMAT,
     "tensor 'w1': unexpected key 'crc'", NULL},
    {"not an object", "[1, 2]", -1, 0, NNC_ERR_FORMAT,
     "header is not a JSON object", NULL},
    {"garbage after JSON", "{" E_W1 "," E_B1 "," E_EMB "} x", -1, 88,
     NNC_ERR_FORMAT,
     "malformed header JSON at byte %zu: unexpected text after the JSON value",
     "x"},
    {"lone surrogate", "{\"w\\ud800\":{}}", -1, 0, NNC_ERR_FORMAT,
     "malformed header JSON at byte %zu: lone high surrogate in \\u escape",
     "\":{"},
    {"invalid UTF-8", "{\"w\xc3\x28\":{}}", -1, 0, NNC_ERR_FORMAT,
     "malformed header JSON at byte %zu: invalid UTF-8 in string", "\xc3"},
    {"metadata not strings", "{\"__metadata__\":{\"epoch\":3}," E_W1 "," E_B1
     "," E_EMB "}", -1, 88, NNC_ERR_FORMAT,
     "__metadata__ must be an object of strings", NULL},
    {"nesting too deep", NULL, -1, 0, NNC_ERR_FORMAT,
     "malformed header JSON at byte %zu: nesting too deep", NULL},
};
/* clang-format on */

/* {"__metadata__": [[[...]]]}, 100000 levels: must fail, not overflow. */
static char *deep_header(size_t *at)
{
    const size_t depth = 100000;
    const char *pre = "{\"__metadata__\":";
    char *h = malloc(strlen(pre) + 2 * depth + 2), *o = h;
    o += sprintf(o, "%s", pre);
    memset(o, '[', depth), o += depth;
    memset(o, ']', depth), o += depth;
    strcpy(o, "}");
    *at = strlen(pre) + 63; /* the 64th bracket is depth 65 */
    return h;
}

static size_t marker_offset(const char *header, const char *marker, int dup)
{
    const char *hit = strstr(header, marker);
    assert_non_null(hit);
    if (dup) {
        hit = strstr(hit + 1, marker);
        assert_non_null(hit);
    }
    return (size_t)(hit - header);
}

static void check_bad(const Bad *bad, const char *path, unsigned char *base,
                      const unsigned char *before)
{
    char want[1024], msg[512];
    unsigned char data[128];
    size_t at = 0;
    char *deep = NULL;
    for (int i = 0; i < 128; i++)
        data[i] = (unsigned char)(i * 7);
    if (!strcmp(bad->what, "header length truncated")) {
        FILE *f = fopen(path, "wb");
        fwrite("\x05\0\0\0\0", 1, 5, f);
        fclose(f);
    } else if (!strcmp(bad->what, "nesting too deep")) {
        deep = deep_header(&at);
        write_raw(path, deep, -1, NULL, 0);
    } else {
        write_raw(path, bad->header, bad->declared, data, bad->data_len);
        if (bad->at_marker)
            at = marker_offset(bad->header, bad->at_marker,
                               strstr(bad->what, "duplicate") != NULL);
    }
    snprintf(msg, sizeof msg, bad->message, at);
    snprintf(want, sizeof want, "%s: error: %s", path, msg);
    int rc = nnc_st_load(path, &toy, base, 0);
    print_message("%-28s -> %s\n", bad->what, nnc_last_error());
    assert_int_equal(rc, bad->status);
    assert_string_equal(nnc_last_error(), want);
    assert_memory_equal(base, before, TOTAL);
    free(deep);
}

static void test_malformed_corpus(void **state)
{
    unsigned char base[TOTAL], before[TOTAL];
    fill_model(base, 42.0f, 9);
    memcpy(before, base, TOTAL);
    const char *path = path_of("bad.safetensors");
    size_t n = sizeof corpus / sizeof corpus[0];
    assert_true(n >= 13);
    for (size_t i = 0; i < n; i++)
        check_bad(&corpus[i], path, base, before);
    /* an empty file and a missing one */
    FILE *f = fopen(path, "wb");
    fclose(f);
    assert_int_equal(nnc_st_load(path, &toy, base, 0), NNC_ERR_FORMAT);
    assert_int_equal(nnc_st_load(path_of("none"), &toy, base, 0), NNC_ERR_IO);
    assert_non_null(strstr(nnc_last_error(), "cannot open"));
    assert_memory_equal(base, before, TOTAL);
}

/* Entries under opt.* are skipped by a plain load, but still validated. */
static void test_opt_entries_ignored(void **state)
{
    unsigned char base[TOTAL];
    float data[26];
    for (int i = 0; i < 26; i++)
        data[i] = (float)i;
    const char *p = path_of("opt.safetensors");
    write_raw(p,
              "{" E_W1 "," E_B1 "," E_EMB ",\"opt.w1.unknown\":{\"dtype\":"
              "\"F64\",\"shape\":[1],\"data_offsets\":[88,96]}}",
              -1, data, 96);
    fill_model(base, 0, 0);
    assert_int_equal(nnc_st_load(p, &toy, base, 0), NNC_OK);
    assert_memory_equal(base, data, 88);
    assert_int_equal(nnc_st_load(p, &toy, base, NNC_ST_OPT_STATE),
                     NNC_ERR_MISSING);
}

/* ---- atomic save --------------------------------------------------------- */

static int leftover_temps(const char *d)
{
    int n = 0;
    DIR *dp = opendir(d);
    assert_non_null(dp);
    for (struct dirent *e; (e = readdir(dp));)
        n += strstr(e->d_name, ".tmp-") != NULL;
    closedir(dp);
    return n;
}

static void test_save_replaces(void **state)
{
    unsigned char old[TOTAL], new[TOTAL], back[TOTAL];
    const char *p = path_of("replace.safetensors");
    fill_model(old, 1.0f, 0);
    fill_model(new, 2.0f, 0);
    assert_int_equal(nnc_st_save(p, &toy, old, 0), NNC_OK);
    chmod(p, 0640);
    assert_int_equal(nnc_st_save(p, &toy, new, 0), NNC_OK);
    assert_int_equal(nnc_st_load(p, &toy, back, 0), NNC_OK);
    assert_memory_equal(back, new, G_W1);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(leftover_temps(dir), 0);
    assert_int_equal(
        nnc_st_save(path_of("no/such/dir/x.safetensors"), &toy, new, 0),
        NNC_ERR_IO);
}

/* Runs `fn` in a child (as user nobody when we are root, because root
 * writes to any directory) and returns its exit status. */
static int in_child(int (*fn)(const char *), const char *arg, int drop_root)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (drop_root && geteuid() == 0 &&
            (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(90);
        _exit(fn(arg));
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

static int save_expecting_io_error(const char *path)
{
    unsigned char base[TOTAL];
    fill_model(base, 5.0f, 0);
    int rc = nnc_st_save(path, &toy, base, 0);
    if (rc != NNC_ERR_IO)
        return 1;
    return strstr(nnc_last_error(), path) ? 0 : 2;
}

static void test_save_unwritable_dir(void **state)
{
    char ro[128];
    snprintf(ro, sizeof ro, "%s/ro", dir);
    assert_int_equal(mkdir(ro, 0755), 0);
    char target[160], want_bytes[1024], got_bytes[1024];
    snprintf(target, sizeof target, "%s/params.safetensors", ro);
    unsigned char base[TOTAL];
    fill_model(base, 9.0f, 0);
    assert_int_equal(nnc_st_save(target, &toy, base, 0), NNC_OK);
    size_t n =
        read_file(target, (unsigned char *)want_bytes, sizeof want_bytes);
    /* The file itself is writable: only a save that writes in place, not
     * through a temporary beside it, could succeed here. */
    assert_int_equal(chmod(target, 0666), 0);
    assert_int_equal(chmod(ro, 0555), 0);
    assert_int_equal(in_child(save_expecting_io_error, target, 1), 0);
    size_t m = read_file(target, (unsigned char *)got_bytes, sizeof got_bytes);
    assert_int_equal(n, m);
    assert_memory_equal(want_bytes, got_bytes, n);
    assert_int_equal(leftover_temps(ro), 0);
    chmod(ro, 0755);
}

/* The file size limit makes write() fail after 100 bytes. */
static int save_with_small_file_limit(const char *path)
{
    struct rlimit lim = {100, 100};
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
        return 3;
    return save_expecting_io_error(path);
}

static void test_save_write_failure(void **state)
{
    const char *p = path_of("midway.safetensors");
    unsigned char base[TOTAL], back[TOTAL];
    fill_model(base, 11.0f, 0);
    assert_int_equal(nnc_st_save(p, &toy, base, 0), NNC_OK);
    assert_int_equal(in_child(save_with_small_file_limit, p, 0), 0);
    assert_int_equal(nnc_st_load(p, &toy, back, 0), NNC_OK);
    assert_memory_equal(back, base, G_W1);
    assert_int_equal(leftover_temps(dir), 0);
}

/* Saving over something that is not a regular file fails before writing
 * and leaves it as it was (a FIFO stands in for devices like /dev/null,
 * which a test must never touch). */
static void check_refused(const char *p, const char *what, int fifo)
{
    unsigned char base[TOTAL];
    fill_model(base, 3.0f, 0);
    char want[512];
    snprintf(want, sizeof want,
             "%s: error: cannot write: the path exists and is %s, not a "
             "regular file",
             p, what);
    assert_int_equal(nnc_st_save(p, &toy, base, NNC_ST_OPT_STATE), NNC_ERR_IO);
    assert_string_equal(nnc_last_error(), want);
    nnc_tensor_info x = toy_tensors[0];
    const void *src[1] = {base};
    assert_int_equal(nnc_st_save_tensors(p, 1, &x, src), NNC_ERR_IO);
    assert_string_equal(nnc_last_error(), want);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(fifo ? S_ISFIFO(st.st_mode) : S_ISDIR(st.st_mode));
    assert_int_equal(leftover_temps(dir), 0);
}

static void test_save_refuses_non_files(void **state)
{
    const char *fifo = path_of("fifo.safetensors");
    assert_int_equal(mkfifo(fifo, 0644), 0);
    check_refused(fifo, "a FIFO", 1);
    const char *sub = path_of("sub.safetensors");
    assert_int_equal(mkdir(sub, 0755), 0);
    check_refused(sub, "a directory", 0);
    /* A symbolic link is replaced, never followed (here to the FIFO). */
    const char *link = path_of("link.safetensors");
    assert_int_equal(symlink(fifo, link), 0);
    unsigned char base[TOTAL], back[TOTAL];
    fill_model(base, 4.0f, 0);
    assert_int_equal(nnc_st_save(link, &toy, base, 0), NNC_OK);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(lstat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(nnc_st_load(link, &toy, back, 0), NNC_OK);
    assert_memory_equal(back, base, G_W1);
}

static int setup_dir(void **state)
{
    strcpy(dir, "/tmp/nnc_rt_st_XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    return chmod(dir, 0755); /* reachable by the unprivileged child */
}

static int teardown_dir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_saved_bytes),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_checkpoint),
        cmocka_unit_test(test_exact_tensors),
        cmocka_unit_test(test_malformed_corpus),
        cmocka_unit_test(test_opt_entries_ignored),
        cmocka_unit_test(test_save_replaces),
        cmocka_unit_test(test_save_unwritable_dir),
        cmocka_unit_test(test_save_write_failure),
        cmocka_unit_test(test_save_refuses_non_files),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
