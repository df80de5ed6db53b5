/* data.c — reading the demos' data: a gzip file uncompressed with zlib
 * (data/digits.csv.gz), the concatenated text files of a directory
 * (/usr/share/common-licenses), and the 96-symbol character vocabulary of
 * the LSTM language model.  Without zlib (DEMO_HAVE_ZLIB undefined: the
 * build found no zlib1g-dev) the gzip file is read through `gzip -dc`. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef DEMO_HAVE_ZLIB
#include <zlib.h>
#endif

#include "demo.h"

/* A growing byte buffer; always NUL-terminated. */
typedef struct Buffer {
    char *data;
    size_t len, cap;
} Buffer;

static void buffer_reserve(Buffer *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        demo_fail("out of memory (%zu bytes)", cap);
    b->data = p;
    b->cap = cap;
}

/* Appends everything f yields until end of file. */
static void append_stream(Buffer *b, FILE *f, const char *path)
{
    size_t n;
    do {
        buffer_reserve(b, 65536);
        n = fread(b->data + b->len, 1, 65536, f);
        b->len += n;
    } while (n > 0);
    if (ferror(f))
        demo_fail("%s: read error", path);
}

#ifdef DEMO_HAVE_ZLIB
static void append_gzip(Buffer *b, const char *path)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        demo_fail("%s: cannot open", path);
    for (;;) {
        buffer_reserve(b, 65536);
        int n = gzread(f, b->data + b->len, 65536);
        if (n < 0) {
            int code;
            demo_fail("%s: %s", path, gzerror(f, &code));
        }
        if (n == 0)
            break;
        b->len += (size_t)n;
    }
    gzclose(f);
}
#else
/* `gzip -dc 'PATH'` with every ' of PATH written '\'' for the shell. */
static void gzip_command(char *dst, size_t cap, const char *path)
{
    size_t k = (size_t)snprintf(dst, cap, "gzip -dc '");
    for (const char *p = path; *p; p++) {
        const char *piece = *p == '\'' ? "'\\''" : NULL;
        size_t need = piece ? strlen(piece) : 1;
        if (k + need + 2 > cap)
            demo_fail("%s: path too long", path);
        if (piece)
            memcpy(dst + k, piece, need);
        else
            dst[k] = *p;
        k += need;
    }
    memcpy(dst + k, "'", 2);
}

static void append_gzip(Buffer *b, const char *path)
{
    FILE *probe = fopen(path, "rb");
    if (!probe)
        demo_fail("%s: cannot open", path);
    fclose(probe);
    char command[4200];
    gzip_command(command, sizeof command, path);
    FILE *f = popen(command, "r");
    if (!f)
        demo_fail("%s: cannot run gzip", path);
    append_stream(b, f, path);
    if (pclose(f) != 0)
        demo_fail("%s: gzip -dc failed", path);
}
#endif

char *demo_read_gzip(const char *path, size_t *len)
{
    Buffer b = {0};
    buffer_reserve(&b, 0);
    append_gzip(&b, path);
    b.data[b.len] = 0;
    *len = b.len;
    return b.data;
}

static void append_file(Buffer *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        demo_fail("%s: cannot open", path);
    append_stream(b, f, path);
    fclose(f);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

char *demo_read_dir_text(const char *dir, size_t *len)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0)
        demo_fail("%s: cannot list the directory", dir);
    Buffer b = {0};
    buffer_reserve(&b, 0);
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
            append_file(&b, path);
        free(names[i]);
    }
    free(names);
    if (b.len == 0)
        demo_fail("%s: no text found", dir);
    b.data[b.len] = 0;
    *len = b.len;
    return b.data;
}

int32_t demo_char_to_id96(char ch)
{
    unsigned char c = (unsigned char)ch;
    if (c == '\n')
        return 0;
    if (c == '\t')
        c = ' ';
    if (c >= ' ' && c <= '~')
        return (int32_t)(c - ' ') + 1;
    return -1;
}

char demo_id96_to_char(int32_t id)
{
    return id == 0 ? '\n' : (char)(' ' + id - 1);
}

int64_t demo_text_to_ids96(const char *text, size_t len, int32_t *ids)
{
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = demo_char_to_id96(text[i]);
        if (id >= 0)
            ids[n++] = id;
    }
    return n;
}
