/*
 * popcount.c -- the byte table of BNN_POPCOUNT_table8 (bnn_internal.h):
 * bits set in each byte value, built by the preprocessor (B6 counts the
 * bits of the 6-bit values, and so on up).
 */
#include "bnn_internal.h"

#if defined(BNN_POPCOUNT_table8)
#define BNN_B2(n) n, n + 1, n + 1, n + 2
#define BNN_B4(n) BNN_B2(n), BNN_B2(n + 1), BNN_B2(n + 1), BNN_B2(n + 2)
#define BNN_B6(n) BNN_B4(n), BNN_B4(n + 1), BNN_B4(n + 1), BNN_B4(n + 2)
const uint8_t bnn_popcount_table8[256] = {BNN_B6(0), BNN_B6(1), BNN_B6(1), BNN_B6(2)};
#else
typedef int bnn_popcount_table_unused; /* ISO C: no empty translation unit */
#endif
