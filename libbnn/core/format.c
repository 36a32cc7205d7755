/*
 * format.c -- bnn_format(): the printf subset libbnn's messages use, with
 * no heap and no stdio, so the same code serves every build (the C
 * library's snprintf can pull in malloc, as newlib's does, which a
 * bare-metal build must not link).
 *
 * Conversions: %d %i %u %x %X %c %s %p %%, with the length modifiers hh h
 * l ll z j t (so the <inttypes.h> PRI macros of every C library work).
 * No flags, width or precision: the library's formats use none, and one
 * that does is copied as text rather than misread.  Output is truncated
 * to size - 1 bytes and NUL-terminated (size > 0); the return value is
 * the length of the whole message, as snprintf's.
 */
#include "bnn_internal.h"

#include <stdarg.h>

typedef struct {
    char *buf;
    size_t size, len;
} bnn_out;

static void out_c(bnn_out *o, char c)
{
    if (o->len + 1 < o->size) o->buf[o->len] = c;
    o->len++;
}

static void out_s(bnn_out *o, const char *s)
{
    while (*s) out_c(o, *s++);
}

static void out_u(bnn_out *o, unsigned long long v, unsigned base, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v != 0);
    while (n > 0) out_c(o, tmp[--n]);
}

int bnn_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    bnn_out o;
    o.buf = buf;
    o.size = buf == NULL ? 0 : size;
    o.len = 0;
    while (*fmt) {
        const char *spec = fmt;
        int len = 0; /* 0 int, 1 long, 2 long long, 3 size_t, 4 intmax_t, 5 ptrdiff_t */
        char conv;
        if (*fmt != '%') {
            out_c(&o, *fmt++);
            continue;
        }
        fmt++;
        if (*fmt == 'h') {
            fmt += fmt[1] == 'h' ? 2 : 1; /* promoted to int in varargs */
        } else if (*fmt == 'l') {
            len = fmt[1] == 'l' ? 2 : 1;
            fmt += len;
        } else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't') {
            len = *fmt == 'z' ? 3 : *fmt == 'j' ? 4 : 5;
            fmt++;
        }
        conv = *fmt;
        if (conv == 'd' || conv == 'i') {
            long long v = len == 0 ? va_arg(ap, int) : len == 1 ? va_arg(ap, long)
                        : len == 2 ? va_arg(ap, long long) : len == 3 ? (long long)va_arg(ap, size_t)
                        : len == 4 ? (long long)va_arg(ap, intmax_t)
                        : (long long)va_arg(ap, ptrdiff_t);
            if (v < 0) {
                out_c(&o, '-');
                out_u(&o, 0ULL - (unsigned long long)v, 10, 0);
            } else {
                out_u(&o, (unsigned long long)v, 10, 0);
            }
        } else if (conv == 'u' || conv == 'x' || conv == 'X') {
            unsigned long long v = len == 0 ? va_arg(ap, unsigned)
                                 : len == 1 ? va_arg(ap, unsigned long)
                                 : len == 2 ? va_arg(ap, unsigned long long)
                                 : len == 3 ? (unsigned long long)va_arg(ap, size_t)
                                 : len == 4 ? (unsigned long long)va_arg(ap, uintmax_t)
                                 : (unsigned long long)va_arg(ap, ptrdiff_t);
            out_u(&o, v, conv == 'u' ? 10 : 16, conv == 'X');
        } else if (conv == 'c' && len == 0) {
            out_c(&o, (char)va_arg(ap, int));
        } else if (conv == 's' && len == 0) {
            const char *s = va_arg(ap, const char *);
            out_s(&o, s == NULL ? "(null)" : s);
        } else if (conv == 'p' && len == 0) {
            out_s(&o, "0x");
            out_u(&o, (unsigned long long)(uintptr_t)va_arg(ap, void *), 16, 0);
        } else if (conv == '%' && len == 0) {
            out_c(&o, '%');
        } else {
            /* unsupported: copy the specification as text (no argument
             * is read, so the rest cannot be misaligned further) */
            while (spec < fmt + (conv != '\0')) out_c(&o, *spec++);
            if (conv == '\0') break;
        }
        fmt++;
    }
    if (o.size > 0) o.buf[o.len < o.size ? o.len : o.size - 1] = '\0';
    return o.len > (size_t)INT32_MAX ? INT32_MAX : (int)o.len;
}

int bnn_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = bnn_vformat(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
