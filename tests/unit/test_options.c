/* test_options.c — the command line of nnc (driver/options.c).
 *
 * The driver is not part of the nnccore library, so this test compiles
 * options.c in directly.  Each case parses one argv and checks the Options
 * it produced, or, for a wrong command line, the exact sentence the user
 * will read after "nnc: error: ". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "driver/options.c"

static Arena *arena;
static Options opts;
static char err[1024];

static int setup(void **state)
{
    (void)state;
    arena = arena_new();
    err[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(arena);
    return 0;
}

/* parse("nnc", "m.nn", ..., NULL) */
static bool parse(const char *first, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        argv[argc++] = (char *)s;
    va_end(ap);
    argv[argc] = NULL;
    return driver_parse_options(arena, argc, argv, &opts, err, sizeof err);
}

#define assert_parse_error(msg, ...)                                           \
    do {                                                                       \
        assert_false(parse("nnc", __VA_ARGS__, NULL));                         \
        assert_string_equal(err, msg);                                         \
    } while (0)

static void test_defaults(void **state)
{
    (void)state;
    assert_true(parse("nnc", "m.nn", "-o", "m.o", NULL));
    assert_int_equal(opts.cmd, CMD_COMPILE);
    assert_string_equal(opts.model, "m.nn");
    assert_string_equal(opts.output, "m.o");
    assert_int_equal(opts.opt_level, 2);
    assert_int_equal(opts.emit, EMIT_OBJ);
    assert_int_equal(opts.n_dims, 0);
    assert_false(opts.have_pass_list);
    assert_false(opts.ir_in);
    assert_null(opts.pass.dump_after);
    assert_null(opts.header);
}

static void test_commands(void **state)
{
    (void)state;
    assert_true(parse("nnc", "check", "m.nn", NULL));
    assert_int_equal(opts.cmd, CMD_CHECK);
    assert_string_equal(opts.model, "m.nn");
    assert_true(parse("nnc", "run", "m.nn", "--seed", "42", "--train-steps",
                      "3", "--outputs", "o.st", NULL));
    assert_int_equal(opts.cmd, CMD_RUN);
    assert_int_equal(opts.seed, 42);
    assert_int_equal(opts.train_steps, 3);
    assert_string_equal(opts.outputs_path, "o.st");
    /* "check" later on the line is a file name, not a command */
    assert_parse_error("more than one model file: 'm.nn' and 'check'", "m.nn",
                       "check");
}

static void test_help_and_version_win(void **state)
{
    (void)state;
    assert_true(parse("nnc", "--help", NULL));
    assert_int_equal(opts.cmd, CMD_HELP);
    assert_true(parse("nnc", "check", "--version", "--bogus", NULL));
    assert_int_equal(opts.cmd, CMD_VERSION);
    assert_true(parse("nnc", "m.nn", "--emit", "ir", "--help", NULL));
    assert_int_equal(opts.cmd, CMD_HELP);
}

static void test_defines(void **state)
{
    (void)state;
    assert_true(parse("nnc", "check", "m.nn", "-D", "B=1", "-DT=300", NULL));
    assert_int_equal(opts.n_dims, 2);
    assert_string_equal(opts.dims[0].name, "B");
    assert_int_equal(opts.dims[0].value, 1);
    assert_string_equal(opts.dims[1].name, "T");
    assert_int_equal(opts.dims[1].value, 300);
    assert_false(opts.dims[0].used);
    assert_true(parse("nnc", "m.nn", "-D", "_x9=9223372036854775807", NULL));
    assert_int_equal(opts.dims[0].value, INT64_MAX);
}

static void test_bad_defines(void **state)
{
    (void)state;
    assert_parse_error("-D B: expected NAME=INT, NAME a dim name", "m.nn", "-D",
                       "B");
    assert_parse_error("-D 3B=4: expected NAME=INT, NAME a dim name", "m.nn",
                       "-D3B=4");
    assert_parse_error("-D =4: expected NAME=INT, NAME a dim name", "m.nn",
                       "-D", "=4");
    assert_parse_error("-D B=x: 'x' is not an integer", "m.nn", "-D", "B=x");
    assert_parse_error("-D B=: '' is not an integer", "m.nn", "-D", "B=");
    assert_parse_error("-D B= 4: ' 4' is not an integer", "m.nn", "-D", "B= 4");
    assert_parse_error("-D B=0: a dim must be a positive integer", "m.nn",
                       "-DB=0");
    assert_parse_error("-D B=-3: a dim must be a positive integer", "m.nn",
                       "-DB=-3");
    assert_parse_error(
        "-D B=9223372036854775808: 9223372036854775808 does not fit in 64 bits",
        "m.nn", "-DB=9223372036854775808");
    assert_parse_error("-D B=2: dim 'B' is already set by -D", "m.nn", "-DB=1",
                       "-DB=2");
    assert_parse_error("option '-D' needs a value: -D NAME=INT", "m.nn", "-D");
}

static void test_optimisation_levels(void **state)
{
    (void)state;
    for (int level = 0; level <= 3; level++) {
        char word[4] = {'-', 'O', (char)('0' + level), '\0'};
        assert_true(parse("nnc", "m.nn", word, NULL));
        assert_int_equal(opts.opt_level, level);
    }
    assert_parse_error("-O4: expected -O0, -O1, -O2 or -O3", "m.nn", "-O4");
    assert_parse_error("-O: expected -O0, -O1, -O2 or -O3", "m.nn", "-O");
    assert_parse_error("-O22: expected -O0, -O1, -O2 or -O3", "m.nn", "-O22");
}

static void test_value_forms(void **state)
{
    (void)state;
    assert_true(parse("nnc", "m.nn", "--emit=ir", "-oout.ir", "--target",
                      "aarch64-linux-gnu", "--cpu=cortex-a72", "--header",
                      "m.h", NULL));
    assert_int_equal(opts.emit, EMIT_IR);
    assert_string_equal(opts.output, "out.ir");
    assert_string_equal(opts.target, "aarch64-linux-gnu");
    assert_string_equal(opts.cpu, "cortex-a72");
    assert_string_equal(opts.header, "m.h");
    assert_true(parse("nnc", "m.nn", "--emit", "dot", NULL));
    assert_int_equal(opts.emit, EMIT_DOT);
    assert_parse_error("--emit exe: expected obj, asm, llvm, ir, dot or stats", "m.nn",
                       "--emit", "exe");
    assert_parse_error(
        "option '--emit' needs a value: --emit obj|asm|llvm|ir|dot|stats", "m.nn",
        "--emit");
    assert_parse_error("option '-o' needs a non-empty value", "m.nn", "-o", "");
    assert_parse_error("option '-o' is given twice", "m.nn", "-o", "a", "-o",
                       "b");
    assert_parse_error("option '--verify-each' takes no value", "m.nn",
                       "--verify-each=yes");
}

static void test_flags(void **state)
{
    (void)state;
    assert_true(parse("nnc", "--no-fuse", "--no-train", "--verify-each",
                      "--time-passes", "--ir-in", "m.ir", NULL));
    assert_true(opts.no_fuse && opts.no_train && opts.ir_in);
    assert_true(opts.pass.verify_each && opts.pass.time_passes);
    assert_string_equal(opts.model, "m.ir");
}

static void test_unknown_and_misplaced_options(void **state)
{
    (void)state;
    assert_parse_error("unknown option '--bogus'", "m.nn", "--bogus");
    assert_parse_error("unknown option '--emitir'", "m.nn", "--emitir");
    assert_parse_error("unknown option '-x'", "m.nn", "-x");
    assert_parse_error("option '--seed' is only for nnc run", "m.nn", "--seed",
                       "1");
    assert_parse_error("nnc check does not take option '-o'", "check", "m.nn",
                       "-o", "x.o");
    assert_parse_error("nnc run does not take option '--emit'", "run", "m.nn",
                       "--emit", "ir");
    assert_parse_error("--seed x: expected a non-negative integer", "run",
                       "m.nn", "--seed", "x");
    assert_parse_error("--train-steps -1: expected a non-negative integer",
                       "run", "m.nn", "--train-steps", "-1");
}

static void test_model_file_count(void **state)
{
    (void)state;
    assert_false(parse("nnc", NULL));
    assert_string_equal(err, "no model file given");
    assert_parse_error("no model file given", "check");
    assert_parse_error("no model file given", "-O1");
    assert_parse_error("more than one model file: 'a.nn' and 'b.nn'", "a.nn",
                       "b.nn");
    /* after --, a word starting with '-' is a file */
    assert_true(parse("nnc", "--emit", "ir", "--", "-odd.nn", NULL));
    assert_string_equal(opts.model, "-odd.nn");
    assert_null(opts.output);
    assert_true(parse("nnc", "-", NULL));
    assert_string_equal(opts.model, "-");
}

static void test_pass_lists(void **state)
{
    (void)state;
    assert_true(parse("nnc", "m.nn", "--passes", "dce,cse,dce", NULL));
    assert_true(opts.have_pass_list);
    assert_int_equal(opts.n_passes, 3);
    assert_int_equal(opts.pass_list[0], PASS_DCE);
    assert_int_equal(opts.pass_list[1], PASS_CSE);
    assert_int_equal(opts.pass_list[2], PASS_DCE);
    assert_true(parse("nnc", "m.nn", "--passes=none", NULL));
    assert_true(opts.have_pass_list);
    assert_int_equal(opts.n_passes, 0);
    assert_parse_error("--passes: unknown pass 'fuse' (passes: fuse-attention, fuse-lstm, autodiff, cse, dce, hoist, fuse-xent, fuse-epilogue, fuse-elementwise)",
                       "m.nn", "--passes", "cse,fuse");
    assert_parse_error("--passes cse,,dce: empty pass name", "m.nn", "--passes",
                       "cse,,dce");
    assert_parse_error("--passes cse,: empty pass name", "m.nn", "--passes",
                       "cse,");
    assert_parse_error("--passes : empty pass name", "m.nn", "--passes", "");
}

static void test_debug_handles(void **state)
{
    (void)state;
    assert_true(parse("nnc", "m.nn", "--dump-after", "all", "--dump-before=cse",
                      "--stop-after", "dce", NULL));
    assert_string_equal(opts.pass.dump_after, "all");
    assert_string_equal(opts.pass.dump_before, "cse");
    assert_string_equal(opts.pass.stop_after, "dce");
    assert_parse_error(
        "--dump-after: unknown pass 'x' (passes: fuse-attention, fuse-lstm, autodiff, cse, dce, hoist, fuse-xent, fuse-epilogue, fuse-elementwise, or all)", "m.nn",
        "--dump-after", "x");
    assert_parse_error("--stop-after: unknown pass 'all' (passes: fuse-attention, fuse-lstm, autodiff, cse, dce, hoist, fuse-xent, fuse-epilogue, fuse-elementwise)",
                       "m.nn", "--stop-after", "all");
    assert_parse_error("--stop-after dce: pass 'dce' is not in --passes",
                       "m.nn", "--passes", "cse", "--stop-after", "dce");
    assert_parse_error("--dump-before cse: pass 'cse' is not in --passes",
                       "m.nn", "--dump-before", "cse", "--passes", "none");
    assert_true(
        parse("nnc", "m.nn", "--passes", "cse", "--dump-after", "all", NULL));
}

static void test_ir_in_takes_no_defines(void **state)
{
    (void)state;
    assert_parse_error(
        "-D cannot be used with --ir-in: the dims of text IR are fixed",
        "--ir-in", "m.ir", "-DB=2");
    assert_true(parse("nnc", "check", "--ir-in", "m.ir", NULL));
    assert_int_equal(opts.cmd, CMD_CHECK);
    assert_true(opts.ir_in);
}

/* --help names every option of the table and every pass. */
static void test_usage_lists_everything(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    driver_print_usage(f);
    long len = ftell(f);
    rewind(f);
    char *text = arena_alloc(arena, (size_t)len + 1);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    for (int i = 0; i < N_OPTION_SPECS; i++)
        if (!strstr(text, option_specs[i].synopsis))
            fail_msg("--help does not list %s", option_specs[i].synopsis);
    for (int i = 0; i < PASS_COUNT; i++)
        assert_non_null(strstr(text, pass_info[i].name));
    assert_non_null(strstr(text, "usage: nnc MODEL.nn -o OUT.o [options]"));
    assert_non_null(strstr(text, "Exit status"));
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (strlen(line) > 80)
            fail_msg("--help line longer than 80 columns: %s", line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_defaults),
        T(test_commands),
        T(test_help_and_version_win),
        T(test_defines),
        T(test_bad_defines),
        T(test_optimisation_levels),
        T(test_value_forms),
        T(test_flags),
        T(test_unknown_and_misplaced_options),
        T(test_model_file_count),
        T(test_pass_lists),
        T(test_debug_handles),
        T(test_ir_in_takes_no_defines),
        T(test_usage_lists_everything),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
