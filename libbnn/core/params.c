/* params.c -- the reports of bnn_conv2d_check() and bnn_pool2d_check():
 * which field of a parameter struct is out of its domain, in words. */
#include "bnn_internal.h"

#include <stdarg.h>
#include <stdio.h>

bnn_status bnn_param_reject(bnn_param_report *r, bnn_status st, const char *field,
                            int64_t found, const char *fmt, ...)
{
    char rule[96];
    va_list ap;
    int n;
    if (r == NULL) return st;
    memset(r, 0, sizeof *r);
    r->status = st;
    r->found = found;
    strncpy(r->field, field, sizeof r->field - 1);
    va_start(ap, fmt);
    n = vsnprintf(rule, sizeof rule, fmt, ap);
    va_end(ap);
    if (n < 0) rule[0] = '\0';
    if (field[0] != '\0')
        n = snprintf(r->message, sizeof r->message, "%s %s", field, rule);
    else
        n = snprintf(r->message, sizeof r->message, "%s", rule);
    if (n < 0) r->message[0] = '\0';
    return st;
}
