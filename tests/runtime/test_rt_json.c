/* test_rt_json.c — the strict JSON reader behind safetensors headers
 * (runtime/json.c, an internal part of libnncrt reached through the static
 * library): decoding of escapes and UTF-8, integer detection, and the
 * inputs RFC 8259 (or our stricter rules) reject.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static int parse(JsonDoc *d, const char *text)
{
    return nncrt_json_parse(d, text, strlen(text));
}

static void expect_error(const char *text, const char *error)
{
    JsonDoc d;
    int rc = parse(&d, text);
    if (rc != NNC_ERR_FORMAT || strcmp(d.error, error) != 0)
        fail_msg("%s: got %d '%s', want '%s'", text, rc, d.error, error);
    nncrt_json_free(&d);
}

static void test_strings(void **state)
{
    JsonDoc d;
    assert_int_equal(
        parse(&d, " [\"a\\n\\\"\\/\\\\\\t\", \"\\u00e9\\ud83d\\ude00\","
                  " \"x\\u0000y\", \"\xe2\x82\xac\"] "),
        NNC_OK);
    const JsonNode *root = &d.nodes[0], *s = &d.nodes[root->child];
    assert_int_equal(root->type, JSON_ARRAY);
    assert_int_equal(root->count, 4);
    assert_string_equal(s->str, "a\n\"/\\\t");
    s = &d.nodes[s->next];
    assert_string_equal(s->str, "\xc3\xa9\xf0\x9f\x98\x80");
    s = &d.nodes[s->next];
    assert_int_equal(s->str_len, 3); /* the NUL is kept, with the length */
    assert_memory_equal(s->str, "x\0y", 3);
    s = &d.nodes[s->next];
    assert_string_equal(s->str, "\xe2\x82\xac");
    nncrt_json_free(&d);
}

static void test_numbers(void **state)
{
    JsonDoc d;
    assert_int_equal(parse(&d, "[0, 18446744073709551615, 18446744073709551616,"
                               " 1.0, -0, 1e3, 42, -7.5e-3]"),
                     NNC_OK);
    static const int is_uint[] = {1, 1, 0, 0, 0, 0, 1, 0};
    static const uint64_t value[] = {0, UINT64_MAX, 0, 0, 0, 0, 42, 0};
    int i = 0;
    for (int32_t c = d.nodes[0].child; c >= 0; c = d.nodes[c].next, i++) {
        assert_int_equal(d.nodes[c].type, JSON_NUMBER);
        assert_int_equal(d.nodes[c].is_uint, is_uint[i]);
        assert_true(d.nodes[c].uint == value[i]);
    }
    assert_int_equal(i, 8);
    nncrt_json_free(&d);
}

static void test_objects(void **state)
{
    JsonDoc d;
    assert_int_equal(parse(&d, "{\"a\": {}, \"b\": [], \"c\": true, "
                               "\"d\": false, \"e\": null}"),
                     NNC_OK);
    static const JsonType types[] = {JSON_OBJECT, JSON_ARRAY, JSON_BOOL,
                                     JSON_BOOL, JSON_NULL};
    int i = 0;
    for (int32_t c = d.nodes[0].child; c >= 0; c = d.nodes[c].next, i++) {
        assert_int_equal(d.nodes[c].type, types[i]);
        assert_int_equal(d.nodes[c].key[0], 'a' + i);
    }
    assert_true(d.nodes[d.nodes[d.nodes[0].child].next].count == 0);
    nncrt_json_free(&d);
}

static void test_depth_limit(void **state)
{
    char text[200];
    JsonDoc d;
    memset(text, '[', 64), memset(text + 64, ']', 64), text[128] = '\0';
    assert_int_equal(parse(&d, text), NNC_OK); /* exactly the limit */
    nncrt_json_free(&d);
    memset(text, '[', 65), memset(text + 65, ']', 65), text[130] = '\0';
    expect_error(text, "at byte 64: nesting too deep");
}

static void test_rejections(void **state)
{
    expect_error("", "at byte 0: unexpected end of text");
    expect_error("[1,]", "at byte 3: unexpected character");
    expect_error("{\"a\":1,}", "at byte 7: expected a string key");
    expect_error("[01]", "at byte 2: expected ',' or ']'");
    expect_error("[1.]", "at byte 3: digit expected after '.'");
    expect_error("[1e]", "at byte 3: digit expected in exponent");
    expect_error("[-]", "at byte 2: invalid number");
    expect_error("[tru]", "at byte 1: unexpected character");
    expect_error("{\"a\" 1}", "at byte 5: expected ':' after an object key");
    expect_error("{\"a\":1 \"b\":2}", "at byte 7: expected ',' or '}'");
    expect_error("\"a\nb\"", "at byte 2: control character in string");
    expect_error("\"\\x\"", "at byte 2: invalid escape in string");
    expect_error("\"\\u12g4\"", "at byte 3: invalid hex digit in \\u escape");
    expect_error("\"\\udc00\"", "at byte 7: lone low surrogate in \\u escape");
    expect_error("\"\\ud800\\u0041\"",
                 "at byte 13: high surrogate not followed by a low one");
    expect_error("\"\xc0\xaf\"", "at byte 1: invalid UTF-8 in string");
    expect_error("\"\xed\xa0\x80\"", "at byte 1: invalid UTF-8 in string");
    expect_error("\"abc", "at byte 4: unterminated string");
    expect_error("{} {}", "at byte 3: unexpected text after the JSON value");
    expect_error("{\"k\":{\"a\":1,\"b\":2,\"a\":3}}",
                 "at byte 18: duplicate key \"a\"");
    JsonDoc d; /* a NUL after the value is text, not an end */
    assert_int_equal(nncrt_json_parse(&d, "[1]\0", 4), NNC_ERR_FORMAT);
    assert_string_equal(d.error,
                        "at byte 3: unexpected text after the JSON value");
    nncrt_json_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings),    cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_objects),    cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_rejections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
