/* sizes.c -- words per packed row and packed matrix sizes, checked against
 * overflow (the checked-arithmetic helpers are in bnn_internal.h). */
#include "bnn_internal.h"

int64_t bnn_words(int64_t k)
{
    return k <= 0 ? 0 : (k / 64) + ((k % 64) != 0);
}

bnn_status bnn_packed_size(int64_t rows, int64_t k, size_t *bytes)
{
    int64_t words;
    if (bytes == NULL) return BNN_ERR_NULL;
    if (rows < 0 || k < 0) return BNN_ERR_SHAPE;
    if (!bnn_mul_ok(rows, bnn_words(k), &words)) return BNN_ERR_OVERFLOW;
    if ((uint64_t)words > (uint64_t)(SIZE_MAX / sizeof(uint64_t)))
        return BNN_ERR_OVERFLOW;
    *bytes = (size_t)words * sizeof(uint64_t);
    return BNN_OK;
}
