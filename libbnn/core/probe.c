/* probe.c -- the peak probe's public entry (kernels live per ISA). */
#include "bnn_kernels.h"

bnn_status bnn_peak_probe(bnn_isa isa, int64_t iters, uint64_t *bit_macs,
                          uint64_t *sink)
{
    if (bit_macs == NULL || sink == NULL) return BNN_ERR_NULL;
    if (iters < 0) return BNN_ERR_INVALID;
    if (!bnn_isa_supported(isa)) return BNN_ERR_UNSUPPORTED;
    switch (isa) {
#if BNN_X86
    case BNN_ISA_AVX512:
    case BNN_ISA_AVX512_VNNI: *bit_macs = bnn_probe_avx512(iters, sink); break;
    case BNN_ISA_AVX2: *bit_macs = bnn_probe_avx2(iters, sink); break;
#endif
    default: *bit_macs = bnn_probe_ref(iters, sink); break;
    }
    return BNN_OK;
}
