/*
 * probe_ref.c -- the reference peak probe: scalar popcount over 16
 * independent chains, 64 binary multiply-accumulates per popcount.
 */
#include "bnn_kernels.h"

uint64_t bnn_probe_ref(int64_t iters, uint64_t *sink)
{
    uint64_t x[16], acc[16], s = 0;
    int64_t it;
    int i;
    for (i = 0; i < 16; i++) {
        x[i] = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
        acc[i] = 0;
    }
    for (it = 0; it < iters; it++) {
        for (i = 0; i < 16; i++) {
            acc[i] += (uint64_t)bnn_popcount64(x[i] ^ (uint64_t)it);
        }
    }
    for (i = 0; i < 16; i++) s += acc[i];
    *sink = s;
    return (uint64_t)iters * 16u * 64u;
}
