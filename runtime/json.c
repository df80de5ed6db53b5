/* json.c — a strict JSON reader for safetensors headers.
 *
 * A header is untrusted input of up to 100 MB, so the reader follows
 * RFC 8259 exactly and refuses what serde_json (the safetensors crate's
 * parser) refuses: invalid UTF-8, control characters in strings, lone
 * surrogates in \u escapes, leading zeros, trailing commas, and anything but
 * whitespace after the value.  It also rejects duplicate object keys (JSON
 * leaves them undefined; a header with two entries for one tensor is
 * ambiguous) and nesting deeper than NNCRT_JSON_MAX_DEPTH, which bounds the
 * recursion.  The result is a tree of nodes in one array, linked by index;
 * decoded strings live in one block sized by the input, so no pointer into
 * it ever moves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct Parser {
    const unsigned char *s;
    size_t n, pos;
    JsonDoc *doc;
} Parser;

static int parse_value(Parser *p, int depth, int32_t *out);

static int fail(Parser *p, const char *what)
{
    snprintf(p->doc->error, sizeof p->doc->error, "at byte %zu: %s", p->pos,
             what);
    return NNC_ERR_FORMAT;
}

static int new_node(Parser *p, JsonType type, int32_t *out)
{
    JsonDoc *d = p->doc;
    if (d->n == d->cap) {
        int32_t cap = d->cap ? d->cap * 2 : 64;
        if (cap < 0)
            return NNC_ERR_NOMEM;
        JsonNode *nodes = realloc(d->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes)
            return NNC_ERR_NOMEM;
        d->nodes = nodes;
        d->cap = cap;
    }
    JsonNode *node = &d->nodes[d->n];
    memset(node, 0, sizeof *node);
    node->type = type;
    node->next = node->child = -1;
    node->pos = p->pos;
    *out = d->n++;
    return NNC_OK;
}

static void skip_ws(Parser *p)
{
    while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                             p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int peek(Parser *p) { return p->pos < p->n ? p->s[p->pos] : -1; }

/* ---- strings ------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static int utf8_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    int len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlongs */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF; /* <= U+10FFFF */
    } else
        return 0;
    if ((size_t)len > avail || s[1] < lo || s[1] > hi)
        return 0;
    for (int i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

static int hex4(Parser *p, unsigned *out)
{
    if (p->n - p->pos < 4)
        return fail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p->s[p->pos + i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return fail(p, "invalid hex digit in \\u escape");
        v = v * 16 + (unsigned)d;
    }
    p->pos += 4;
    *out = v;
    return NNC_OK;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* After the backslash and 'u': one code point, pairing surrogates. */
static int unicode_escape(Parser *p, unsigned *cp)
{
    int rc = hex4(p, cp);
    if (rc != NNC_OK)
        return rc;
    if (*cp >= 0xDC00 && *cp <= 0xDFFF)
        return fail(p, "lone low surrogate in \\u escape");
    if (*cp < 0xD800 || *cp > 0xDBFF)
        return NNC_OK;
    unsigned lo;
    if (p->n - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
        return fail(p, "lone high surrogate in \\u escape");
    p->pos += 2;
    rc = hex4(p, &lo);
    if (rc != NNC_OK)
        return rc;
    if (lo < 0xDC00 || lo > 0xDFFF)
        return fail(p, "high surrogate not followed by a low one");
    *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
    return NNC_OK;
}

static int escape(Parser *p, char *o, size_t *len)
{
    int c = peek(p);
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit = c > 0 ? strchr(from, c) : NULL;
    p->pos++;
    if (hit) {
        o[0] = to[hit - from];
        *len = 1;
        return NNC_OK;
    }
    if (c != 'u') {
        p->pos--;
        return fail(p, "invalid escape in string");
    }
    unsigned cp;
    int rc = unicode_escape(p, &cp);
    if (rc == NNC_OK)
        *len = put_utf8(o, cp);
    return rc;
}

/* string = '"' chars '"'; decoded into doc->strings. */
static int parse_string(Parser *p, const char **out, size_t *out_len)
{
    JsonDoc *d = p->doc;
    char *start = d->strings + d->strings_used, *o = start;
    p->pos++; /* the opening quote */
    for (;;) {
        if (p->pos >= p->n)
            return fail(p, "unterminated string");
        unsigned char c = p->s[p->pos];
        if (c == '"')
            break;
        if (c < 0x20)
            return fail(p, "control character in string");
        if (c == '\\') {
            size_t len;
            p->pos++;
            int rc = escape(p, o, &len);
            if (rc != NNC_OK)
                return rc;
            o += len;
            continue;
        }
        int len = utf8_len(p->s + p->pos, p->n - p->pos);
        if (len == 0)
            return fail(p, "invalid UTF-8 in string");
        memcpy(o, p->s + p->pos, (size_t)len);
        o += len;
        p->pos += (size_t)len;
    }
    p->pos++;
    *o++ = '\0';
    *out = start;
    *out_len = (size_t)(o - start - 1);
    d->strings_used += (size_t)(o - start);
    return NNC_OK;
}

/* ---- numbers and literals ------------------------------------------------ */

static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* number = [-] int [frac] [exp]; is_uint when it is a plain integer. */
static int parse_number(Parser *p, JsonNode *node)
{
    int neg = peek(p) == '-', plain = !neg, overflow = 0;
    uint64_t v = 0;
    if (neg)
        p->pos++;
    if (peek(p) == '0') {
        p->pos++;
    } else if (is_digit(peek(p))) {
        while (is_digit(peek(p))) {
            unsigned d = (unsigned)(peek(p) - '0');
            overflow |= v > (UINT64_MAX - d) / 10;
            v = v * 10 + d;
            p->pos++;
        }
    } else
        return fail(p, "invalid number");
    if (peek(p) == '.') {
        p->pos++, plain = 0;
        if (!is_digit(peek(p)))
            return fail(p, "digit expected after '.'");
        while (is_digit(peek(p)))
            p->pos++;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++, plain = 0;
        if (peek(p) == '+' || peek(p) == '-')
            p->pos++;
        if (!is_digit(peek(p)))
            return fail(p, "digit expected in exponent");
        while (is_digit(peek(p)))
            p->pos++;
    }
    node->is_uint = plain && !overflow;
    node->uint = node->is_uint ? v : 0;
    return NNC_OK;
}

static int parse_literal(Parser *p, JsonNode *node)
{
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(words[i]);
        if (p->n - p->pos >= len && !memcmp(p->s + p->pos, words[i], len)) {
            p->pos += len;
            node->type = i < 2 ? JSON_BOOL : JSON_NULL;
            node->boolean = i == 0;
            return NNC_OK;
        }
    }
    return fail(p, "unexpected character");
}

/* ---- arrays and objects -------------------------------------------------- */

typedef struct KeyRef {
    const char *key;
    size_t len, pos;
} KeyRef;

static int key_cmp(const void *a, const void *b)
{
    const KeyRef *x = a, *y = b;
    size_t len = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, len);
    if (c != 0)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int check_duplicates(Parser *p, int32_t obj)
{
    JsonDoc *d = p->doc;
    int32_t count = d->nodes[obj].count;
    if (count < 2)
        return NNC_OK;
    KeyRef *keys = malloc((size_t)count * sizeof *keys);
    if (!keys)
        return NNC_ERR_NOMEM;
    int32_t k = 0;
    for (int32_t m = d->nodes[obj].child; m >= 0; m = d->nodes[m].next)
        keys[k++] =
            (KeyRef){d->nodes[m].key, d->nodes[m].key_len, d->nodes[m].pos};
    qsort(keys, (size_t)count, sizeof *keys, key_cmp);
    int rc = NNC_OK;
    for (int32_t i = 1; i < count && rc == NNC_OK; i++) {
        if (key_cmp(&keys[i - 1], &keys[i]) != 0)
            continue;
        char name[160], msg[200];
        nncrt_printable(name, sizeof name, keys[i].key, keys[i].len);
        snprintf(msg, sizeof msg, "duplicate key \"%s\"", name);
        size_t later =
            keys[i].pos > keys[i - 1].pos ? keys[i].pos : keys[i - 1].pos;
        p->pos = later;
        rc = fail(p, msg);
    }
    free(keys);
    return rc;
}

/* Appends `child` to `parent`'s list, after `*last`. */
static void link_child(JsonDoc *d, int32_t parent, int32_t *last, int32_t child)
{
    if (*last < 0)
        d->nodes[parent].child = child;
    else
        d->nodes[*last].next = child;
    *last = child;
    d->nodes[parent].count++;
}

/* member = string ':' value */
static int parse_member(Parser *p, int depth, int32_t *out)
{
    const char *key;
    size_t key_len;
    if (peek(p) != '"')
        return fail(p, "expected a string key");
    size_t key_pos = p->pos;
    int rc = parse_string(p, &key, &key_len);
    if (rc != NNC_OK)
        return rc;
    skip_ws(p);
    if (peek(p) != ':')
        return fail(p, "expected ':' after an object key");
    p->pos++;
    rc = parse_value(p, depth, out);
    if (rc != NNC_OK)
        return rc;
    JsonNode *m = &p->doc->nodes[*out];
    m->key = key;
    m->key_len = key_len;
    m->pos = key_pos;
    return NNC_OK;
}

/* object = '{' [member (',' member)*] '}'; array likewise with values. */
static int parse_container(Parser *p, int depth, int32_t self)
{
    int is_object = p->doc->nodes[self].type == JSON_OBJECT;
    int close = is_object ? '}' : ']';
    int32_t last = -1;
    p->pos++;
    skip_ws(p);
    if (peek(p) == close) {
        p->pos++;
        return NNC_OK;
    }
    for (;;) {
        int32_t child;
        skip_ws(p);
        int rc = is_object ? parse_member(p, depth + 1, &child)
                           : parse_value(p, depth + 1, &child);
        if (rc != NNC_OK)
            return rc;
        link_child(p->doc, self, &last, child);
        skip_ws(p);
        if (peek(p) == close)
            break;
        if (peek(p) != ',')
            return fail(p, is_object ? "expected ',' or '}'"
                                     : "expected ',' or ']'");
        p->pos++;
    }
    p->pos++;
    return is_object ? check_duplicates(p, self) : NNC_OK;
}

/* value = object | array | string | number | true | false | null */
static int parse_value(Parser *p, int depth, int32_t *out)
{
    if (depth > NNCRT_JSON_MAX_DEPTH)
        return fail(p, "nesting too deep");
    skip_ws(p);
    int c = peek(p);
    if (c < 0)
        return fail(p, "unexpected end of text");
    JsonType type = c == '{'                  ? JSON_OBJECT
                    : c == '['                ? JSON_ARRAY
                    : c == '"'                ? JSON_STRING
                    : c == '-' || is_digit(c) ? JSON_NUMBER
                                              : JSON_NULL;
    int rc = new_node(p, type, out);
    if (rc != NNC_OK)
        return rc;
    if (type == JSON_OBJECT || type == JSON_ARRAY)
        return parse_container(p, depth, *out);
    if (type == JSON_STRING) {
        const char *s;
        size_t len;
        rc = parse_string(p, &s, &len);
        p->doc->nodes[*out].str = s;
        p->doc->nodes[*out].str_len = len;
        return rc;
    }
    if (type == JSON_NUMBER)
        return parse_number(p, &p->doc->nodes[*out]);
    return parse_literal(p, &p->doc->nodes[*out]);
}

int nncrt_json_parse(JsonDoc *doc, const char *text, size_t len)
{
    memset(doc, 0, sizeof *doc);
    Parser p = {(const unsigned char *)text, len, 0, doc};
    doc->strings = malloc(len + 1);
    if (!doc->strings)
        return NNC_ERR_NOMEM;
    int32_t root;
    int rc = parse_value(&p, 1, &root);
    if (rc == NNC_ERR_NOMEM)
        snprintf(doc->error, sizeof doc->error, "out of memory");
    if (rc != NNC_OK)
        return rc;
    skip_ws(&p);
    if (p.pos != p.n)
        return fail(&p, "unexpected text after the JSON value");
    return NNC_OK;
}

void nncrt_json_free(JsonDoc *doc)
{
    free(doc->nodes);
    free(doc->strings);
    memset(doc, 0, sizeof *doc);
}
