/* test_optable.c — the op table (ir/ops.def) has no gaps.
 *
 * Walks ops.def row by row, expanded here on its own, and fails if an op
 * has no name, a name used twice or not a lower-case identifier (the text
 * IR reads names as identifiers), arity or flags that contradict each
 * other, no shape rule in ir_shape_rules, or if ir_op_by_name does not
 * return it from its name.  Later per-op tables (gradients, lowerings) get
 * their check here too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "ir/ir.h"

typedef struct Row {
    Op op;
    const char *enum_name;
    const char *name;
    int arity;
    unsigned flags;
} Row;

static const Row rows[] = {
#define OP(e, name, arity, flags) {OP_##e, #e, name, arity, flags},
#include "ir/ops.def"
#undef OP
};

#define N_ROWS ((int)(sizeof rows / sizeof rows[0]))

static bool is_identifier(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

static void test_rows_match_enum(void **state)
{
    (void)state;
    assert_int_equal(N_ROWS, OP_COUNT);
    for (int i = 0; i < N_ROWS; i++) {
        assert_int_equal(rows[i].op, i);
        assert_string_equal(ir_op_info[i].name, rows[i].name);
        assert_int_equal(ir_op_info[i].arity, rows[i].arity);
        assert_int_equal(ir_op_info[i].flags, rows[i].flags);
    }
}

static void test_names(void **state)
{
    (void)state;
    for (int i = 0; i < N_ROWS; i++) {
        if (!is_identifier(rows[i].name))
            fail_msg("op %s: name \"%s\" is not a lower-case identifier",
                     rows[i].enum_name, rows[i].name ? rows[i].name : "(null)");
        for (int j = 0; j < i; j++)
            if (strcmp(rows[i].name, rows[j].name) == 0)
                fail_msg("ops %s and %s share the name \"%s\"",
                         rows[j].enum_name, rows[i].enum_name, rows[i].name);
    }
}

static void test_op_by_name_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < N_ROWS; i++)
        assert_int_equal(ir_op_by_name(rows[i].name), rows[i].op);
    assert_int_equal(ir_op_by_name("no_such_op"), OP_COUNT);
    assert_int_equal(ir_op_by_name(""), OP_COUNT);
    assert_int_equal(ir_op_by_name("ADD"), OP_COUNT);
    assert_int_equal(ir_op_by_name("matmul"), OP_MATMUL);
}

static void test_every_op_has_a_shape_rule(void **state)
{
    (void)state;
    for (int i = 0; i < N_ROWS; i++)
        if (!ir_shape_rules[i])
            fail_msg("op %s has no shape rule", rows[i].enum_name);
}

/* The flags promise an arity; a row that breaks the promise is a typo. */
static void test_flags_agree_with_arity(void **state)
{
    (void)state;
    for (int i = 0; i < N_ROWS; i++) {
        const Row *r = &rows[i];
        if ((r->flags & OPF_LEAF) && r->arity != 0)
            fail_msg("leaf op %s has arity %d", r->enum_name, r->arity);
        if (!(r->flags & OPF_LEAF) && r->arity == 0)
            fail_msg("op %s has no operands but is not a leaf", r->enum_name);
        if ((r->flags & (OPF_UNARY | OPF_REDUCE)) && r->arity != 1)
            fail_msg("op %s has arity %d, not 1", r->enum_name, r->arity);
        if ((r->flags & OPF_BINARY) && r->arity != 2)
            fail_msg("binary op %s has arity %d", r->enum_name, r->arity);
        if ((r->flags & OPF_COMPARE) && !(r->flags & OPF_NODIFF))
            fail_msg("comparison %s must be OPF_NODIFF", r->enum_name);
        if (r->arity < -1)
            fail_msg("op %s has arity %d", r->enum_name, r->arity);
    }
}

/* Each rule rejects a wrong operand count with a message instead of
 * reading past its operands: "add takes 2 operands, not 3". */
static void test_rules_check_arity(void **state)
{
    (void)state;
    Type in[4] = {{.dtype = DT_F32},
                  {.dtype = DT_F32},
                  {.dtype = DT_F32},
                  {.dtype = DT_F32}};
    Type out[4];
    char err[256];
    for (int i = 0; i < N_ROWS; i++) {
        if (rows[i].arity < 0 || !ir_shape_rules[i]) /* a gap: see above */
            continue;
        Attrs a = {0};
        int n = ir_shape_rules[i](NULL, in, rows[i].arity + 1, &a, out, 4, err,
                                  sizeof err);
        char want[64];
        snprintf(want, sizeof want, " takes %d operand%s, not %d",
                 rows[i].arity, rows[i].arity == 1 ? "" : "s",
                 rows[i].arity + 1);
        assert_int_equal(n, 0);
        if (strstr(err, want) == NULL)
            fail_msg("op %s: unexpected message \"%s\"", rows[i].enum_name,
                     err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_match_enum),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_op_by_name_round_trip),
        cmocka_unit_test(test_every_op_has_a_shape_rule),
        cmocka_unit_test(test_flags_agree_with_arity),
        cmocka_unit_test(test_rules_check_arity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
