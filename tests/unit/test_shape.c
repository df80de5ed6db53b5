/* test_shape.c — the type rules of ir/shape.c, family by family.
 *
 * Each test infers the result type of one op from operand types (no graph
 * needed, except for scan, whose body is a graph) and compares it, printed
 * with ir_type_str, with the shape PyTorch gives; error cases compare the
 * exact message users will read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "ir/ir.h"

static Arena *arena;
static Module *mod;
static char err[512];

static int setup(void **state)
{
    (void)state;
    arena = arena_new();
    mod = ir_module_new(arena, "test");
    ir_graph_new(mod, "main");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(arena);
    return 0;
}

/* ty(DT_F32, 2, 4, 3) is f32[4, 3]. */
static Type vty(DType dt, int rank, va_list ap)
{
    Type t = {.dtype = dt, .rank = rank};
    for (int i = 0; i < rank; i++)
        t.dims[i] = va_arg(ap, int);
    return t;
}

static Type f32(int rank, ...)
{
    va_list ap;
    va_start(ap, rank);
    Type t = vty(DT_F32, rank, ap);
    va_end(ap);
    return t;
}

static Type i32(int rank, ...)
{
    va_list ap;
    va_start(ap, rank);
    Type t = vty(DT_I32, rank, ap);
    va_end(ap);
    return t;
}

static const char *str(Type t)
{
    static char bufs[4][200];
    static int next;
    char *b = bufs[next++ % 4];
    return ir_type_str(&t, b, sizeof bufs[0]);
}

/* Runs the rule of `op` on n operand types given as varargs. */
static int vrun(Op op, Attrs *a, Type *out, int max_out, int n, va_list ap)
{
    Type in[16];
    for (int i = 0; i < n; i++)
        in[i] = va_arg(ap, Type);
    err[0] = 0;
    return ir_infer(mod, op, in, n, a, out, max_out, err, sizeof err);
}

/* Asserts that op succeeds with one result and returns its type. */
static Type ok(Op op, Attrs *a, int n, ...)
{
    Type out[4];
    va_list ap;
    va_start(ap, n);
    int r = vrun(op, a, out, 4, n, ap);
    va_end(ap);
    if (r != 1)
        fail_msg("%s failed: %s", ir_op_info[op].name, err);
    return out[0];
}

/* Asserts that op fails with exactly the message `msg`. */
static void bad(Op op, Attrs *a, const char *msg, int n, ...)
{
    Type out[4];
    va_list ap;
    va_start(ap, n);
    int r = vrun(op, a, out, 4, n, ap);
    va_end(ap);
    assert_int_equal(r, 0);
    assert_string_equal(err, msg);
}

#define assert_type(t, s) assert_string_equal(str(t), s)

/* ---- broadcasting ---------------------------------------------------- */

static void test_broadcast_shapes(void **state)
{
    (void)state;
    Type a = f32(2, 4, 1), b = f32(2, 1, 3), s = f32(0), out;
    assert_true(ir_broadcast_shapes(&a, &b, &out));
    assert_type(out, "f32[4, 3]");
    assert_true(ir_broadcast_shapes(&s, &a, &out));
    assert_type(out, "f32[4, 1]");
    Type c = f32(3, 2, 3, 4), d = f32(1, 4);
    assert_true(ir_broadcast_shapes(&c, &d, &out));
    assert_type(out, "f32[2, 3, 4]");
    assert_true(ir_broadcast_shapes(&d, &c, &out));
    assert_type(out, "f32[2, 3, 4]");
    Type e = f32(3, 3, 1, 5), f = f32(2, 4, 1);
    assert_true(ir_broadcast_shapes(&e, &f, &out));
    assert_type(out, "f32[3, 4, 5]");
    Type g = f32(2, 4, 3), h = f32(1, 5);
    assert_false(ir_broadcast_shapes(&g, &h, &out));
}

static void test_binary_broadcasting(void **state)
{
    (void)state;
    assert_type(ok(OP_ADD, NULL, 2, f32(0), f32(2, 4, 3)), "f32[4, 3]");
    assert_type(ok(OP_MUL, NULL, 2, f32(2, 4, 3), f32(0)), "f32[4, 3]");
    assert_type(ok(OP_SUB, NULL, 2, f32(2, 4, 1), f32(2, 1, 3)), "f32[4, 3]");
    assert_type(ok(OP_DIV, NULL, 2, f32(3, 8, 64, 128), f32(2, 64, 128)),
                "f32[8, 64, 128]");
    assert_type(ok(OP_MAXIMUM, NULL, 2, f32(1, 3), f32(3, 2, 1, 1)),
                "f32[2, 1, 3]");
    assert_type(ok(OP_MINIMUM, NULL, 2, f32(2, 5, 1), f32(1, 7)), "f32[5, 7]");
    bad(OP_ADD, NULL,
        "add of f32[4, 3] and f32[5]: shapes cannot be "
        "broadcast (3 and 5 differ)",
        2, f32(2, 4, 3), f32(1, 5));
    bad(OP_SUB, NULL,
        "subtract of f32[2, 3] and f32[4, 3]: shapes cannot be "
        "broadcast (2 and 4 differ)",
        2, f32(2, 2, 3), f32(2, 4, 3));
    /* the rightmost clash is named, as PyTorch does */
    bad(OP_MUL, NULL,
        "multiply of f32[2, 3] and f32[4, 5]: shapes cannot be "
        "broadcast (3 and 5 differ)",
        2, f32(2, 2, 3), f32(2, 4, 5));
    bad(OP_DIV, NULL,
        "divide of i32[4] and f32[4]: arithmetic on i32 values "
        "is not allowed",
        2, i32(1, 4), f32(1, 4));
    bad(OP_MAXIMUM, NULL,
        "maximum of f32[4] and i32[]: arithmetic on i32 "
        "values is not allowed",
        2, f32(1, 4), i32(0));
}

static void test_compare(void **state)
{
    (void)state;
    assert_type(ok(OP_LT, NULL, 2, f32(2, 4, 1), f32(1, 3)), "f32[4, 3]");
    /* i32 may be compared; the result is f32 */
    assert_type(ok(OP_EQ, NULL, 2, i32(2, 8, 16), i32(0)), "f32[8, 16]");
    assert_type(ok(OP_NE, NULL, 2, i32(1, 3), i32(1, 3)), "f32[3]");
    bad(OP_GE, NULL,
        "comparison >= of f32[4] and i32[4]: operands have "
        "different dtypes (f32 and i32)",
        2, f32(1, 4), i32(1, 4));
    bad(OP_LE, NULL,
        "comparison <= of i32[2] and i32[3]: shapes cannot be "
        "broadcast (2 and 3 differ)",
        2, i32(1, 2), i32(1, 3));
}

static void test_where(void **state)
{
    (void)state;
    assert_type(ok(OP_WHERE, NULL, 3, i32(2, 4, 1), f32(1, 3), f32(0)),
                "f32[4, 3]");
    assert_type(ok(OP_WHERE, NULL, 3, f32(0), f32(0), f32(3, 2, 1, 5)),
                "f32[2, 1, 5]");
    bad(OP_WHERE, NULL,
        "where of f32[4], i32[4] and f32[4]: the values to "
        "choose from must be f32, but the second operand is i32",
        3, f32(1, 4), i32(1, 4), f32(1, 4));
    bad(OP_WHERE, NULL,
        "where of f32[4], f32[4] and i32[4]: the values to "
        "choose from must be f32, but the third operand is i32",
        3, f32(1, 4), f32(1, 4), i32(1, 4));
    bad(OP_WHERE, NULL,
        "where of i32[4, 1], f32[3] and f32[5]: shapes cannot "
        "be broadcast (3 and 5 differ)",
        3, i32(2, 4, 1), f32(1, 3), f32(1, 5));
}

/* ---- unary ------------------------------------------------------------- */

static void test_unary(void **state)
{
    (void)state;
    static const Op ops[] = {OP_NEG,      OP_EXP,  OP_LOG,       OP_SQRT,
                             OP_RSQRT,    OP_ABS,  OP_RELU,      OP_SIGMOID,
                             OP_TANH,     OP_GELU, OP_GELU_TANH, OP_SILU,
                             OP_SOFTPLUS, OP_POW};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        assert_type(ok(ops[i], NULL, 1, f32(3, 2, 3, 4)), "f32[2, 3, 4]");
        assert_type(ok(ops[i], NULL, 1, f32(0)), "f32[]");
    }
    Attrs a = {.value = 2.5};
    assert_type(ok(OP_POW, &a, 1, f32(1, 7)), "f32[7]");
    bad(OP_EXP, NULL, "exp of i32[4]: arithmetic on i32 values is not allowed",
        1, i32(1, 4));
    bad(OP_NEG, NULL,
        "negation of i32[2, 2]: arithmetic on i32 values is not "
        "allowed",
        1, i32(2, 2, 2));
    bad(OP_POW, &a, "pow of i32[]: arithmetic on i32 values is not allowed", 1,
        i32(0));
}

/* ---- matrix and shape -------------------------------------------------- */

static void test_matmul(void **state)
{
    (void)state;
    assert_type(ok(OP_MATMUL, NULL, 2, f32(2, 64, 784), f32(2, 784, 128)),
                "f32[64, 128]");
    /* b of rank 2, shared by every batch */
    assert_type(ok(OP_MATMUL, NULL, 2, f32(3, 8, 4, 5), f32(2, 5, 6)),
                "f32[8, 4, 6]");
    assert_type(ok(OP_MATMUL, NULL, 2, f32(2, 4, 5), f32(3, 8, 5, 6)),
                "f32[8, 4, 6]");
    /* batch axes broadcast */
    assert_type(ok(OP_MATMUL, NULL, 2, f32(4, 2, 1, 4, 5), f32(3, 3, 5, 6)),
                "f32[2, 3, 4, 6]");
    bad(OP_MATMUL, NULL,
        "matmul of f32[64, 784] and f32[512, 10]: inner "
        "dimensions 784 and 512 differ",
        2, f32(2, 64, 784), f32(2, 512, 10));
    bad(OP_MATMUL, NULL,
        "matmul of f32[4] and f32[4, 3]: both operands need "
        "rank 2 or more (the first has rank 1)",
        2, f32(1, 4), f32(2, 4, 3));
    bad(OP_MATMUL, NULL,
        "matmul of f32[2, 4] and f32[4]: both operands need "
        "rank 2 or more (the second has rank 1)",
        2, f32(2, 2, 4), f32(1, 4));
    bad(OP_MATMUL, NULL,
        "matmul of f32[2, 3, 4] and f32[5, 4, 6]: batch "
        "dimensions cannot be broadcast (2 and 5 differ)",
        2, f32(3, 2, 3, 4), f32(3, 5, 4, 6));
    bad(OP_MATMUL, NULL,
        "matmul of i32[2, 2] and f32[2, 2]: arithmetic on "
        "i32 values is not allowed",
        2, i32(2, 2, 2), f32(2, 2, 2));
}

static void test_transpose_permute(void **state)
{
    (void)state;
    assert_type(ok(OP_TRANSPOSE, NULL, 1, f32(3, 2, 3, 4)), "f32[2, 4, 3]");
    assert_type(ok(OP_TRANSPOSE, NULL, 1, i32(2, 5, 7)), "i32[7, 5]");
    bad(OP_TRANSPOSE, NULL, "transpose of f32[4]: needs rank 2 or more, not 1",
        1, f32(1, 4));

    Attrs a = {.perm = {0, 2, 1, 3}};
    assert_type(ok(OP_PERMUTE, &a, 1, f32(4, 8, 64, 4, 32)),
                "f32[8, 4, 64, 32]");
    Attrs neg = {.perm = {-1, 0, 1}};
    assert_type(ok(OP_PERMUTE, &neg, 1, i32(3, 2, 3, 4)), "i32[4, 2, 3]");
    assert_int_equal(neg.perm[0], 2);
    assert_int_equal(neg.perm[1], 0);
    assert_int_equal(neg.perm[2], 1);
    Attrs dup = {.perm = {0, 0, 1}};
    bad(OP_PERMUTE, &dup,
        "permute of f32[2, 3, 4]: [0, 0, 1] is not a "
        "permutation of the axes 0..2",
        1, f32(3, 2, 3, 4));
    Attrs out_of_range = {.perm = {0, 3, 1}};
    bad(OP_PERMUTE, &out_of_range,
        "permute of f32[2, 3, 4]: [0, 3, 1] is not "
        "a permutation of the axes 0..2",
        1, f32(3, 2, 3, 4));
    Attrs same_after_norm = {.perm = {2, -1, 0}};
    bad(OP_PERMUTE, &same_after_norm,
        "permute of f32[2, 3, 4]: [2, -1, 0] is "
        "not a permutation of the axes 0..2",
        1, f32(3, 2, 3, 4));
}

static void test_reshape(void **state)
{
    (void)state;
    Attrs a = {.type = f32(2, 2, 6)};
    assert_type(ok(OP_RESHAPE, &a, 1, f32(2, 4, 3)), "f32[2, 6]");
    /* the dtype comes from the operand, and is written back */
    Attrs ids = {.type = f32(1, 12)};
    assert_type(ok(OP_RESHAPE, &ids, 1, i32(2, 3, 4)), "i32[12]");
    assert_type(ids.type, "i32[12]");
    /* one -1 is resolved and written back */
    Attrs hole = {.type = f32(3, 8, -1, 32)};
    assert_type(ok(OP_RESHAPE, &hole, 1, f32(3, 8, 64, 128)),
                "f32[8, 256, 32]");
    assert_type(hole.type, "f32[8, 256, 32]");
    Attrs scalar = {.type = f32(0)};
    assert_type(ok(OP_RESHAPE, &scalar, 1, f32(2, 1, 1)), "f32[]");

    Attrs wrong = {.type = f32(2, 5, 2)};
    bad(OP_RESHAPE, &wrong,
        "reshape of f32[4, 3] to f32[5, 2]: element "
        "counts differ (12 and 10)",
        1, f32(2, 4, 3));
    Attrs two = {.type = f32(2, -1, -1)};
    bad(OP_RESHAPE, &two,
        "reshape of f32[4, 3] to f32[-1, -1]: only one size "
        "may be -1",
        1, f32(2, 4, 3));
    Attrs uneven = {.type = f32(2, 5, -1)};
    bad(OP_RESHAPE, &uneven,
        "reshape of f32[4, 3] to f32[5, -1]: 12 elements "
        "are not a multiple of 5",
        1, f32(2, 4, 3));
    Attrs zero = {.type = f32(2, 0, 12)};
    bad(OP_RESHAPE, &zero,
        "reshape of f32[4, 3] to f32[0, 12]: size 0 of "
        "axis 0 is not positive",
        1, f32(2, 4, 3));
    Attrs huge = {.type = f32(3, 1 << 30, 1 << 30, 1 << 30)};
    bad(OP_RESHAPE, &huge,
        "reshape of f32[4, 3] to f32[1073741824, "
        "1073741824, 1073741824]: the target has too many elements",
        1, f32(2, 4, 3));
}

static void test_broadcast_to(void **state)
{
    (void)state;
    Attrs a = {.type = f32(3, 2, 3, 4)};
    assert_type(ok(OP_BROADCAST_TO, &a, 1, f32(2, 3, 1)), "f32[2, 3, 4]");
    Attrs b = {.type = f32(2, 5, 7)};
    assert_type(ok(OP_BROADCAST_TO, &b, 1, i32(0)), "i32[5, 7]");
    assert_type(b.type, "i32[5, 7]");
    Attrs c = {.type = f32(2, 5, 2)};
    bad(OP_BROADCAST_TO, &c,
        "broadcast_to of f32[3, 4] to f32[5, 2]: size 4 "
        "of axis 1 cannot be broadcast to 2",
        1, f32(2, 3, 4));
    Attrs d = {.type = f32(1, 3)};
    bad(OP_BROADCAST_TO, &d,
        "broadcast_to of f32[2, 3] to f32[3]: the target "
        "has fewer axes (1) than the operand (2)",
        1, f32(2, 2, 3));
    Attrs e = {.type = f32(2, -1, 3)};
    bad(OP_BROADCAST_TO, &e,
        "broadcast_to of f32[3] to f32[-1, 3]: size -1 "
        "of axis 0 is not positive",
        1, f32(1, 3));
    /* 2^62 elements fit in int64_t, their 2^64 bytes do not */
    Attrs huge = {.type = {.dtype = DT_F32,
                           .rank = 3,
                           .dims = {(int64_t)1 << 31, (int64_t)1 << 30, 2}}};
    bad(OP_BROADCAST_TO, &huge,
        "broadcast_to result f32[2147483648, "
        "1073741824, 2]: too large, its size in bytes does not fit in 63 bits",
        1, f32(0));
}

static void test_concat(void **state)
{
    (void)state;
    Attrs a = {.axis = -1};
    assert_type(ok(OP_CONCAT, &a, 3, f32(2, 4, 1), f32(2, 4, 2), f32(2, 4, 3)),
                "f32[4, 6]");
    assert_int_equal(a.axis, 1);
    Attrs z = {.axis = 0};
    assert_type(ok(OP_CONCAT, &z, 1, i32(2, 3, 5)), "i32[3, 5]");
    assert_type(ok(OP_CONCAT, &z, 2, i32(2, 3, 5), i32(2, 1, 5)), "i32[4, 5]");

    Attrs ax0 = {.axis = 0};
    bad(OP_CONCAT, &ax0,
        "concat of f32[2, 3] and f32[2, 4] along axis 0: "
        "sizes along axis 1 differ (3 and 4)",
        3, f32(2, 2, 3), f32(2, 5, 3), f32(2, 2, 4));
    bad(OP_CONCAT, &ax0,
        "concat of f32[2, 3] and i32[2, 3] along axis 0: "
        "operands have different dtypes",
        2, f32(2, 2, 3), i32(2, 2, 3));
    bad(OP_CONCAT, &ax0,
        "concat of f32[2, 3] and f32[3] along axis 0: "
        "operands have different ranks (2 and 1)",
        2, f32(2, 2, 3), f32(1, 3));
    Attrs ax2 = {.axis = 2};
    bad(OP_CONCAT, &ax2,
        "concat of f32[2, 3] and f32[2, 3]: axis 2 is out of "
        "range for rank 2 (use -2..1)",
        2, f32(2, 2, 3), f32(2, 2, 3));
    bad(OP_CONCAT, &ax2,
        "concat of f32[1], f32[1], f32[1], ... (5 operands): "
        "axis 2 is out of range for rank 1 (use -1..0)",
        5, f32(1, 1), f32(1, 1), f32(1, 1), f32(1, 1), f32(1, 1));
    bad(OP_CONCAT, &ax0,
        "concat of f32[] and f32[]: scalars cannot be "
        "concatenated",
        2, f32(0), f32(0));
    bad(OP_CONCAT, &ax0, "concat needs at least one operand", 0);
}

static void test_slice(void **state)
{
    (void)state;
    Attrs a = {.start = {1, 0, 2}, .stop = {3, 8, 3}};
    assert_type(ok(OP_SLICE, &a, 1, f32(3, 4, 8, 5)), "f32[2, 8, 1]");
    Attrs b = {.start = {5, 0}, .stop = {6, 3}};
    assert_type(ok(OP_SLICE, &b, 1, i32(2, 10, 3)), "i32[1, 3]");
    Attrs out = {.start = {0, 2}, .stop = {4, 5}};
    bad(OP_SLICE, &out,
        "slice of f32[4, 3]: the range 2:5 of axis 1 is "
        "outside 0:3",
        1, f32(2, 4, 3));
    Attrs neg = {.start = {-1, 0}, .stop = {4, 3}};
    bad(OP_SLICE, &neg,
        "slice of f32[4, 3]: the range -1:4 of axis 0 is "
        "outside 0:4",
        1, f32(2, 4, 3));
    Attrs empty = {.start = {2, 0}, .stop = {2, 3}};
    bad(OP_SLICE, &empty,
        "slice of f32[4, 3]: the range 2:2 of axis 0 is "
        "empty",
        1, f32(2, 4, 3));
}

/* ---- reductions -------------------------------------------------------- */

static void test_reduce(void **state)
{
    (void)state;
    Attrs all = {0};
    assert_type(ok(OP_SUM, &all, 1, f32(3, 2, 3, 4)), "f32[]");
    assert_int_equal(all.axes, 7); /* zero mask normalised to every axis */
    Attrs keep = {.keepdims = true};
    assert_type(ok(OP_MEAN, &keep, 1, f32(2, 2, 3)), "f32[1, 1]");
    assert_int_equal(keep.axes, 3);
    Attrs last = {.axes = 1u << 2, .keepdims = true};
    assert_type(ok(OP_MEAN, &last, 1, f32(3, 2, 3, 4)), "f32[2, 3, 1]");
    Attrs mid = {.axes = 1u << 1};
    assert_type(ok(OP_MAX, &mid, 1, f32(3, 2, 3, 4)), "f32[2, 4]");
    Attrs two = {.axes = 1u << 0 | 1u << 2};
    assert_type(ok(OP_SUM, &two, 1, f32(3, 2, 3, 4)), "f32[3]");
    Attrs sc = {0};
    assert_type(ok(OP_SUM, &sc, 1, f32(0)), "f32[]");

    Attrs far = {.axes = 1u << 3};
    bad(OP_SUM, &far, "sum of f32[2, 3, 4]: axis 3 is out of range for rank 3",
        1, f32(3, 2, 3, 4));
    bad(OP_MEAN, &all,
        "mean of i32[4]: arithmetic on i32 values is not "
        "allowed",
        1, i32(1, 4));
    bad(OP_MAX, &all,
        "max of i32[4]: arithmetic on i32 values is not "
        "allowed",
        1, i32(1, 4));
}

/* ---- normalisation ----------------------------------------------------- */

static void test_softmax(void **state)
{
    (void)state;
    Attrs a = {.axis = -1};
    assert_type(ok(OP_SOFTMAX, &a, 1, f32(2, 4, 10)), "f32[4, 10]");
    assert_int_equal(a.axis, 1);
    Attrs b = {.axis = 0};
    assert_type(ok(OP_LOG_SOFTMAX, &b, 1, f32(1, 10)), "f32[10]");
    Attrs c = {.axis = 2};
    bad(OP_SOFTMAX, &c,
        "softmax of f32[4, 10]: axis 2 is out of range for "
        "rank 2 (use -2..1)",
        1, f32(2, 4, 10));
    Attrs d = {.axis = -3};
    bad(OP_LOG_SOFTMAX, &d,
        "log_softmax of f32[4, 10]: axis -3 is out of "
        "range for rank 2 (use -2..1)",
        1, f32(2, 4, 10));
    bad(OP_SOFTMAX, &a, "softmax of f32[]: needs rank 1 or more, not 0", 1,
        f32(0));
    bad(OP_SOFTMAX, &a,
        "softmax of i32[3]: arithmetic on i32 values is not "
        "allowed",
        1, i32(1, 3));
}

static void test_layernorm_rmsnorm(void **state)
{
    (void)state;
    Attrs eps = {.value = 1e-5};
    assert_type(
        ok(OP_LAYERNORM, &eps, 3, f32(3, 8, 64, 128), f32(1, 128), f32(1, 128)),
        "f32[8, 64, 128]");
    assert_type(ok(OP_RMSNORM, &eps, 2, f32(1, 16), f32(1, 16)), "f32[16]");
    bad(OP_LAYERNORM, &eps,
        "layernorm of f32[4, 8], f32[4] and f32[8]: gamma "
        "is f32[4] but must be f32[8] (the size of the last axis of x)",
        3, f32(2, 4, 8), f32(1, 4), f32(1, 8));
    bad(OP_LAYERNORM, &eps,
        "layernorm of f32[4, 8], f32[8] and f32[1, 8]: "
        "beta is f32[1, 8] but must be f32[8] (the size of the last axis of x)",
        3, f32(2, 4, 8), f32(1, 8), f32(2, 1, 8));
    bad(OP_RMSNORM, &eps,
        "rmsnorm of f32[] and f32[1]: needs rank 1 or more, "
        "not 0",
        2, f32(0), f32(1, 1));
    bad(OP_RMSNORM, &eps,
        "rmsnorm of f32[4, 8] and i32[8]: arithmetic on i32 "
        "values is not allowed",
        2, f32(2, 4, 8), i32(1, 8));
}

/* ---- lookup, attention, regularisation --------------------------------- */

static void test_gather(void **state)
{
    (void)state;
    assert_type(ok(OP_GATHER, NULL, 2, f32(2, 256, 128), i32(2, 8, 64)),
                "f32[8, 64, 128]");
    assert_type(ok(OP_GATHER, NULL, 2, f32(1, 10), i32(1, 5)), "f32[5]");
    assert_type(ok(OP_GATHER, NULL, 2, f32(3, 10, 4, 5), i32(0)), "f32[4, 5]");
    bad(OP_GATHER, NULL,
        "embedding lookup of f32[10, 4] and f32[3]: the ids "
        "must be i32, not f32",
        2, f32(2, 10, 4), f32(1, 3));
    bad(OP_GATHER, NULL,
        "embedding lookup of i32[10, 4] and i32[3]: the table "
        "must be f32, not i32",
        2, i32(2, 10, 4), i32(1, 3));
    bad(OP_GATHER, NULL,
        "embedding lookup of f32[] and i32[3]: the table "
        "needs rank 1 or more",
        2, f32(0), i32(1, 3));
    bad(OP_GATHER, NULL,
        "embedding lookup of f32[2, 2, 2, 2, 2] and i32[2, 2, "
        "2, 2, 2]: the result would have rank 9, more than 8",
        2, f32(5, 2, 2, 2, 2, 2), i32(5, 2, 2, 2, 2, 2));
}

static void test_causal_mask_attention(void **state)
{
    (void)state;
    assert_type(ok(OP_CAUSAL_MASK, NULL, 1, f32(4, 8, 4, 64, 64)),
                "f32[8, 4, 64, 64]");
    assert_type(ok(OP_CAUSAL_MASK, NULL, 1, f32(2, 3, 5)), "f32[3, 5]");
    bad(OP_CAUSAL_MASK, NULL,
        "causal_mask of f32[5]: needs rank 2 or more, "
        "not 1",
        1, f32(1, 5));

    Attrs a = {.flag = true, .value = 0.125};
    assert_type(ok(OP_ATTENTION, &a, 3, f32(4, 8, 4, 64, 32),
                   f32(4, 8, 4, 80, 32), f32(4, 8, 4, 80, 16)),
                "f32[8, 4, 64, 16]");
    /* leading axes broadcast */
    assert_type(ok(OP_ATTENTION, &a, 3, f32(3, 4, 10, 8), f32(2, 12, 8),
                   f32(4, 2, 1, 12, 6)),
                "f32[2, 4, 10, 6]");
    bad(OP_ATTENTION, &a,
        "attention of f32[4, 10, 8], f32[12, 16] and "
        "f32[12, 6]: q and k have different feature sizes (8 and 16)",
        3, f32(3, 4, 10, 8), f32(2, 12, 16), f32(2, 12, 6));
    bad(OP_ATTENTION, &a,
        "attention of f32[10, 8], f32[12, 8] and f32[11, 6]: "
        "k and v have different lengths (12 and 11)",
        3, f32(2, 10, 8), f32(2, 12, 8), f32(2, 11, 6));
    bad(OP_ATTENTION, &a,
        "attention of f32[2, 10, 8], f32[3, 12, 8] and "
        "f32[12, 6]: batch dimensions cannot be broadcast (2 and 3 differ)",
        3, f32(3, 2, 10, 8), f32(3, 3, 12, 8), f32(2, 12, 6));
    bad(OP_ATTENTION, &a,
        "attention of f32[10, 8], f32[8] and f32[12, 6]: q, "
        "k and v need rank 2 or more, but k has rank 1",
        3, f32(2, 10, 8), f32(1, 8), f32(2, 12, 6));
}

static void test_dropout(void **state)
{
    (void)state;
    Attrs p = {.value = 0.1};
    assert_type(ok(OP_DROPOUT, &p, 1, f32(2, 4, 3)), "f32[4, 3]");
    Attrs zero = {.value = 0}, one = {.value = 1};
    assert_type(ok(OP_DROPOUT, &zero, 1, f32(0)), "f32[]");
    assert_type(ok(OP_DROPOUT, &one, 1, f32(1, 2)), "f32[2]");
    Attrs big = {.value = 1.5}, neg = {.value = -0.25};
    bad(OP_DROPOUT, &big,
        "dropout of f32[4]: probability 1.5 is outside "
        "[0, 1]",
        1, f32(1, 4));
    bad(OP_DROPOUT, &neg,
        "dropout of f32[4]: probability -0.25 is outside "
        "[0, 1]",
        1, f32(1, 4));
    bad(OP_DROPOUT, &p,
        "dropout of i32[4]: arithmetic on i32 values is not "
        "allowed",
        1, i32(1, 4));
}

/* ---- losses ------------------------------------------------------------ */

static void test_losses(void **state)
{
    (void)state;
    assert_type(ok(OP_CROSS_ENTROPY, NULL, 2, f32(2, 64, 10), i32(1, 64)),
                "f32[]");
    assert_type(
        ok(OP_CROSS_ENTROPY, NULL, 2, f32(3, 8, 64, 256), i32(2, 8, 64)),
        "f32[]");
    assert_type(ok(OP_CROSS_ENTROPY, NULL, 2, f32(1, 10), i32(0)), "f32[]");
    bad(OP_CROSS_ENTROPY, NULL,
        "cross_entropy of f32[64, 10] and i32[32]: the "
        "targets must be i32[64] (the logits' shape without the class axis)",
        2, f32(2, 64, 10), i32(1, 32));
    bad(OP_CROSS_ENTROPY, NULL,
        "cross_entropy of f32[64, 10] and f32[64]: the "
        "targets must be i32 class indices, not f32",
        2, f32(2, 64, 10), f32(1, 64));
    bad(OP_CROSS_ENTROPY, NULL,
        "cross_entropy of i32[64, 10] and i32[64]: the "
        "logits must be f32, not i32",
        2, i32(2, 64, 10), i32(1, 64));
    bad(OP_CROSS_ENTROPY, NULL,
        "cross_entropy of f32[] and i32[]: the logits "
        "need rank 1 or more (the last axis holds the classes)",
        2, f32(0), i32(0));

    assert_type(ok(OP_MSE, NULL, 2, f32(2, 4, 3), f32(2, 4, 3)), "f32[]");
    bad(OP_MSE, NULL,
        "mse of f32[4, 3] and f32[3]: the shapes must be equal "
        "(mse does not broadcast)",
        2, f32(2, 4, 3), f32(1, 3));
    bad(OP_MSE, NULL,
        "mse of f32[3] and i32[3]: arithmetic on i32 values is "
        "not allowed",
        2, f32(1, 3), i32(1, 3));

    assert_type(ok(OP_BCE_WITH_LOGITS, NULL, 2, f32(1, 5), f32(1, 5)), "f32[]");
    bad(OP_BCE_WITH_LOGITS, NULL,
        "bce_with_logits of f32[5] and i32[5]: the "
        "targets must be f32, not i32",
        2, f32(1, 5), i32(1, 5));
    bad(OP_BCE_WITH_LOGITS, NULL,
        "bce_with_logits of f32[5] and f32[5, 1]: "
        "the shapes must be equal (bce_with_logits does not broadcast)",
        2, f32(1, 5), f32(2, 5, 1));
}

/* ---- leaves and general checks ------------------------------------------ */

static void test_leaves(void **state)
{
    (void)state;
    Attrs c = {.value = 0.5, .type = f32(2, 4, 3)};
    assert_type(ok(OP_CONST, &c, 0), "f32[4, 3]");
    Attrs in = {.index = 1, .type = i32(1, 64)};
    assert_type(ok(OP_INPUT, &in, 0), "i32[64]");
    Attrs p = {.type = f32(0)};
    assert_type(ok(OP_PARAM, &p, 0), "f32[]");
    assert_type(ok(OP_ARG, &p, 0), "f32[]");
    Attrs zero = {.type = f32(2, 4, 0)};
    bad(OP_CONST, &zero,
        "constant result f32[4, 0]: dimension 1 has size 0, "
        "but sizes must be positive",
        0);
    Attrs rank = {.type = {.dtype = DT_F32, .rank = 9}};
    bad(OP_INPUT, &rank, "input result: not a valid type (dtype 0, rank 9)", 0);
}

static void test_arity(void **state)
{
    (void)state;
    bad(OP_ADD, NULL, "add takes 2 operands, not 3", 3, f32(0), f32(0), f32(0));
    bad(OP_EXP, NULL, "exp takes 1 operand, not 0", 0);
    bad(OP_CONST, NULL, "constant takes 0 operands, not 1", 1, f32(0));
    bad(OP_ADD, NULL,
        "add operand 2 f32[-3]: dimension 0 has size -3, but sizes must "
        "be positive",
        2, f32(1, 2), f32(1, -3));
    Type out;
    Type in = f32(0);
    assert_int_equal(
        ir_infer(mod, OP_COUNT, &in, 1, NULL, &out, 1, err, sizeof err), 0);
    char want[32];
    snprintf(want, sizeof want, "unknown op %d", (int)OP_COUNT);
    assert_string_equal(err, want);
}

/* The builder runs the rules: an ill-typed node is refused, a well-typed
 * one stores its normalised attributes. */
static void test_builder(void **state)
{
    (void)state;
    Graph *g = mod->graphs.data[0];
    Attrs xa = {.type = f32(2, 4, 10)};
    Value x = ir_add(mod, g, OP_INPUT, NULL, 0, &xa, (SrcLoc){1, 1}, NULL, err,
                     sizeof err);
    assert_int_not_equal(x.id, 0);
    Attrs sa = {.axis = -1};
    Value s = ir_add(mod, g, OP_SOFTMAX, &x, 1, &sa, (SrcLoc){2, 1}, NULL, err,
                     sizeof err);
    assert_int_not_equal(s.id, 0);
    assert_int_equal(ir_def(g, s)->attr.axis, 1);
    assert_type(ir_value_type(g, s), "f32[4, 10]");
    Value xx[2] = {x, s};
    int before = g->nodes.len;
    Attrs wa = {.type = f32(1, 7)};
    Value w = ir_add(mod, g, OP_PARAM, NULL, 0, &wa, (SrcLoc){3, 1}, NULL, err,
                     sizeof err);
    xx[1] = w;
    Value bad_sum = ir_add(mod, g, OP_ADD, xx, 2, NULL, (SrcLoc){4, 1}, NULL,
                           err, sizeof err);
    assert_int_equal(bad_sum.id, 0);
    assert_int_equal(g->nodes.len, before + 1);
    assert_string_equal(err, "add of f32[4, 10] and f32[7]: shapes cannot be "
                             "broadcast (10 and 7 differ)");
}

/* ---- scan -------------------------------------------------------------- */

/* A step function h' = tanh(x_t @ W + h), returning h' as the new carry
 * and as the per-step output: args carry h f32[B, H], slice x_t f32[B, E],
 * capture W f32[E, H]. */
static int32_t rnn_body(int B, int E, int H, bool wrong_carry)
{
    Graph *body = ir_graph_new(mod, "rnn_step");
    Type arg_types[3] = {f32(2, B, H), f32(2, B, E), f32(2, E, H)};
    Value args[3];
    for (int i = 0; i < 3; i++) {
        Attrs a = {.index = i, .type = arg_types[i]};
        int32_t n = ir_add_typed(body, OP_ARG, NULL, 0, &a, (SrcLoc){0, 0},
                                 &arg_types[i], 1);
        args[i] = body->nodes.data[n].out[0];
    }
    body->n_args = 3;
    Value xw_in[2] = {args[1], args[2]};
    Value xw = ir_add(mod, body, OP_MATMUL, xw_in, 2, NULL, (SrcLoc){0, 0},
                      NULL, err, sizeof err);
    Value sum_in[2] = {xw, args[0]};
    Value z = ir_add(mod, body, OP_ADD, sum_in, 2, NULL, (SrcLoc){0, 0}, NULL,
                     err, sizeof err);
    Value h = ir_add(mod, body, OP_TANH, &z, 1, NULL, (SrcLoc){0, 0}, NULL, err,
                     sizeof err);
    assert_int_not_equal(h.id, 0);
    Value carry = h;
    if (wrong_carry) {
        Attrs sl = {.start = {0, 0}, .stop = {B, H - 1}};
        carry = ir_add(mod, body, OP_SLICE, &h, 1, &sl, (SrcLoc){0, 0}, NULL,
                       err, sizeof err);
        assert_int_not_equal(carry.id, 0);
    }
    ir_add_result(mod, body, carry, "h");
    ir_add_result(mod, body, h, "hs");
    return body->id;
}

static int scan(Attrs *a, Type *out, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    int r = vrun(OP_SCAN, a, out, 4, n, ap);
    va_end(ap);
    return r;
}

static void test_scan(void **state)
{
    (void)state;
    Attrs a = {.graph = rnn_body(4, 3, 8, false), .n_carry = 1, .n_over = 1};
    Type out[4];
    assert_int_equal(
        scan(&a, out, 3, f32(2, 4, 8), f32(3, 10, 4, 3), f32(2, 3, 8)), 2);
    assert_type(out[0], "f32[4, 8]");
    assert_type(out[1], "f32[10, 4, 8]");

    assert_int_equal(
        scan(&a, out, 3, f32(2, 4, 9), f32(3, 10, 4, 3), f32(2, 3, 8)), 0);
    assert_string_equal(err, "scan carry 1: initial value is f32[4, 9] but the "
                             "step function takes f32[4, 8]");
    assert_int_equal(
        scan(&a, out, 3, f32(2, 4, 8), f32(3, 10, 4, 5), f32(2, 3, 8)), 0);
    assert_string_equal(err, "scan over tensor 1: its slice is f32[4, 5] but "
                             "the step function takes f32[4, 3]");
    assert_int_equal(
        scan(&a, out, 3, f32(2, 4, 8), f32(3, 10, 4, 3), f32(2, 8, 3)), 0);
    assert_string_equal(err, "scan captured value 1 is f32[8, 3] but the step "
                             "function takes f32[3, 8]");
    assert_int_equal(scan(&a, out, 2, f32(2, 4, 8), f32(3, 10, 4, 3)), 0);
    assert_string_equal(err,
                        "scan: the step function takes 3 arguments but is "
                        "given 2 (carries: 1, slices: 1, captured values: 0)");
    assert_int_equal(scan(&a, out, 3, f32(2, 4, 8), f32(0), f32(2, 3, 8)), 0);
    assert_string_equal(err, "scan over tensor 1: f32[] has no axis to scan "
                             "along");

    Attrs two_over = {.graph = a.graph, .n_carry = 1, .n_over = 2};
    assert_int_equal(
        scan(&two_over, out, 3, f32(2, 4, 8), f32(3, 10, 4, 3), f32(2, 7, 8)),
        0);
    assert_string_equal(err, "scan over tensors 1 and 2 have different lengths "
                             "along axis 0 (10 and 7)");
    Attrs none = {.graph = a.graph, .n_carry = 1, .n_over = 0};
    assert_int_equal(scan(&none, out, 1, f32(2, 4, 8)), 0);
    assert_string_equal(err, "scan needs at least one tensor to scan over");
    Attrs nograph = {.graph = 99, .n_carry = 1, .n_over = 1};
    assert_int_equal(scan(&nograph, out, 2, f32(2, 4, 8), f32(2, 3, 3)), 0);
    assert_string_equal(err, "scan: body graph 99 does not exist");
    Attrs toomany = {.graph = a.graph, .n_carry = 3, .n_over = 1};
    assert_int_equal(
        scan(&toomany, out, 3, f32(2, 4, 8), f32(3, 10, 4, 3), f32(2, 3, 8)),
        0);
    assert_string_equal(err, "scan has 3 operands, too few for its carries (3) "
                             "and scanned tensors (1)");

    Attrs wrong = {.graph = rnn_body(4, 3, 8, true), .n_carry = 1, .n_over = 1};
    assert_int_equal(
        scan(&wrong, out, 3, f32(2, 4, 8), f32(3, 10, 4, 3), f32(2, 3, 8)), 0);
    assert_string_equal(err, "scan carry 1: initial value is f32[4, 8] but the "
                             "step function returns f32[4, 7]");
}

/* A scan with no per-step output (the GPT layer stack) and i32 slices. */
static void test_scan_carry_only(void **state)
{
    (void)state;
    Graph *body = ir_graph_new(mod, "layer");
    Type types[2] = {f32(2, 4, 16), i32(1, 4)};
    for (int i = 0; i < 2; i++) {
        Attrs a = {.index = i, .type = types[i]};
        ir_add_typed(body, OP_ARG, NULL, 0, &a, (SrcLoc){0, 0}, &types[i], 1);
    }
    body->n_args = 2;
    ir_add_result(mod, body, body->nodes.data[0].out[0], NULL);
    Attrs a = {.graph = body->id, .n_carry = 1, .n_over = 1, .flag = true};
    Type out[4];
    assert_int_equal(scan(&a, out, 2, f32(2, 4, 16), i32(2, 6, 4)), 1);
    assert_type(out[0], "f32[4, 16]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast_shapes),
        cmocka_unit_test(test_binary_broadcasting),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_unary),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_transpose_permute),
        cmocka_unit_test(test_reshape),
        cmocka_unit_test(test_broadcast_to),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_reduce),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_layernorm_rmsnorm),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_causal_mask_attention),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_losses),
        cmocka_unit_test(test_leaves),
        cmocka_unit_test(test_arity),
        cmocka_unit_test(test_builder),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_scan_carry_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
