/* params.c -- the reports of bnn_conv2d_check() and bnn_pool2d_check():
 * which field of a parameter struct is out of its domain, in words. */
#include "bnn_internal.h"

#include <inttypes.h>

#include <stdarg.h>

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
    n = bnn_vformat(rule, sizeof rule, fmt, ap);
    va_end(ap);
    if (n < 0) rule[0] = '\0';
    if (field[0] != '\0')
        n = bnn_format(r->message, sizeof r->message, "%s %s", field, rule);
    else
        n = bnn_format(r->message, sizeof r->message, "%s", rule);
    if (n < 0) r->message[0] = '\0';
    return st;
}

bnn_status bnn_param_reserved(bnn_param_report *r, const int32_t reserved[4])
{
    static const char *const names[4] = {"reserved[0]", "reserved[1]", "reserved[2]",
                                         "reserved[3]"};
    int i;
    for (i = 0; i < 4; i++)
        if (reserved[i] != 0)
            return bnn_param_reject(r, BNN_ERR_INVALID, names[i], reserved[i],
                                    "must be 0, got %" PRId32, reserved[i]);
    return BNN_OK;
}
