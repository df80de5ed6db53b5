/* error.c — status codes and the per-thread "last error" message.
 *
 * Every failing runtime call (and generated code, through
 * nnc_rt_set_error) formats its message into a thread-local buffer and
 * returns a negative nnc_status; nnc_last_error() reads it back.  The
 * buffer is static storage, so reporting an error never allocates.  A
 * message set inside a parallel region on a worker thread is handed to the
 * thread that owns the region (pool.c).
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char last_error[NNCRT_ERROR_CAP];
static _Thread_local unsigned error_count;

const char *nnc_last_error(void) { return last_error; }

void nnc_clear_error(void) { last_error[0] = '\0'; }

const char *nnc_status_name(int status)
{
    switch (status) {
    case NNC_OK: return "NNC_OK";
    case NNC_ERR_IO: return "NNC_ERR_IO";
    case NNC_ERR_FORMAT: return "NNC_ERR_FORMAT";
    case NNC_ERR_SHAPE: return "NNC_ERR_SHAPE";
    case NNC_ERR_RANGE: return "NNC_ERR_RANGE";
    case NNC_ERR_NOMEM: return "NNC_ERR_NOMEM";
    case NNC_ERR_ARG: return "NNC_ERR_ARG";
    case NNC_ERR_MISSING: return "NNC_ERR_MISSING";
    default: return "NNC_ERR_UNKNOWN";
    }
}

unsigned nncrt_error_count(void) { return error_count; }

void nncrt_error_adopt(const char *msg)
{
    snprintf(last_error, NNCRT_ERROR_CAP, "%s", msg);
    error_count++;
}

int nncrt_verror(int status, const char *fmt, va_list ap)
{
    error_count++;
    int n = vsnprintf(last_error, NNCRT_ERROR_CAP, fmt, ap);
    if (n >=
        NNCRT_ERROR_CAP) /* mark the cut so nobody mistakes it for the end */
        memcpy(last_error + NNCRT_ERROR_CAP - 4, "...", 4);
    return status;
}

int nnc_rt_set_error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nncrt_verror(status, fmt, ap);
    va_end(ap);
    return status;
}

void nncrt_printable(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
        } else {
            snprintf(out + o, cap - o, "\\x%02x", c);
            o += 4;
        }
    }
    if (cap > 0)
        out[o < cap ? o : cap - 1] = '\0';
}
