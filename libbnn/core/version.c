/* version.c -- version numbers and status names. */
#include "bnn_internal.h"

#define BNN_STR2(x) #x
#define BNN_STR(x) BNN_STR2(x)

int bnn_version_number(void) { return BNN_VERSION_NUMBER; }

const char *bnn_version_string(void)
{
    return BNN_STR(BNN_VERSION_MAJOR) "." BNN_STR(BNN_VERSION_MINOR) "."
           BNN_STR(BNN_VERSION_PATCH);
}

const char *bnn_status_string(bnn_status s)
{
    switch (s) {
    case BNN_OK:              return "ok";
    case BNN_ERR_NULL:        return "a required pointer is NULL";
    case BNN_ERR_SHAPE:       return "invalid or mismatched dimensions";
    case BNN_ERR_OVERFLOW:    return "a size computation overflows";
    case BNN_ERR_INVALID:     return "an argument value is out of its domain";
    case BNN_ERR_UNSUPPORTED: return "not supported by this build or CPU";
    case BNN_ERR_NOMEM:       return "out of memory";
    case BNN_ERR_STRIDE:      return "a row stride is smaller than the row";
    case BNN_ERR_FORMAT:      return "malformed, truncated or corrupt model file";
    case BNN_ERR_IO:          return "the file cannot be opened or read";
    case BNN_ERR_DEVICE:      return "a GPU call failed (no driver or device, a bad device "
                                     "pointer or a failed launch)";
    }
    return "unknown status";
}
