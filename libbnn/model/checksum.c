/*
 * checksum.c -- the .bnn checksum: FNV-1a 64 over the whole file, the
 * checksum field itself (bytes 24..31) read as zero:
 *     h = 0xcbf29ce484222325;  for each byte b: h = (h ^ b) * 0x100000001b3.
 * The one FNV of the C side: the checker, the tests and the fuzz target
 * use it.
 */
#include "model/format.h"

uint64_t bnn_model_checksum(const void *data, size_t bytes)
{
    const uint8_t *p = (const uint8_t *)data;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;
    if (p == NULL) return 0;
    for (i = 0; i < bytes; i++) {
        h ^= (i >= BNN_HDR_CHECKSUM && i < BNN_HDR_CHECKSUM_END) ? 0u : p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
