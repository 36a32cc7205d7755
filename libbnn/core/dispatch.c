/*
 * dispatch.c -- choose the kernels once per process.
 *
 * The table starts as the reference kernels; the first call selects the
 * best ISA that both the CPU (CPUID) and the OS (XGETBV: the OS saves the
 * YMM / ZMM state on context switches) support, unless BNN_ISA asks for
 * one.  Every table can be forced alone: "avx512" is the AVX-512 table
 * without VNNI, "avx512vnni" the one with the VNNI first-layer kernel
 * (the default where the CPU has it); on aarch64 "neon" is the NEON table
 * without the dot product instructions and "neondot" the one with the
 * UDOT first-layer kernel (the default where AT_HWCAP has ASIMDDP).
 * Selection is guarded by pthread_once where threads exist.
 */
#include "bnn_kernels.h"

#include <stdlib.h>
#include <string.h>

#if BNN_X86 && defined(__GNUC__)
#  include <cpuid.h>
#endif
#if BNN_ARM64 && defined(__linux__)
#  include <asm/hwcap.h>
#  include <sys/auxv.h>
#  ifndef HWCAP_ASIMDDP
#    define HWCAP_ASIMDDP (1 << 20)    /* kernel headers before Linux 4.15 */
#  endif
#endif
#ifndef BNN_NO_THREADS
#  include <pthread.h>
#endif

static const bnn_kernels k_ref = {
    BNN_ISA_REF, bnn_pack_f32_ref, bnn_pack_i8_ref, bnn_unpack_f32_ref,
    bnn_popc_strip_ref, bnn_epi_f32_ref, bnn_dot_u8_strip_ref, bnn_opt_range_ref,
    bnn_epi_bits_ref, bnn_pm1_tile_ref, bnn_i8pm1_chunk_ref, bnn_absmax_f32_ref,
    bnn_round_i8_ref, bnn_bn_shift_var_ref, bnn_bn_shift_sums_ref, bnn_bn_shift_dx_ref,
};
#if BNN_X86
static const bnn_kernels k_avx2 = {
    BNN_ISA_AVX2, bnn_pack_f32_avx2, bnn_pack_i8_avx2, bnn_unpack_f32_avx2,
    bnn_popc_strip_avx2, bnn_epi_f32_avx2, bnn_dot_u8_strip_avx2, bnn_opt_range_avx2,
    bnn_epi_bits_avx2, bnn_pm1_tile_avx2, bnn_i8pm1_chunk_avx2, bnn_absmax_f32_avx2,
    bnn_round_i8_avx2, bnn_bn_shift_var_avx2, bnn_bn_shift_sums_avx2, bnn_bn_shift_dx_avx2,
};
static const bnn_kernels k_avx512 = {
    BNN_ISA_AVX512, bnn_pack_f32_avx512, bnn_pack_i8_avx512,
    bnn_unpack_f32_avx2, bnn_popc_strip_avx512, bnn_epi_f32_avx512,
    bnn_dot_u8_strip_avx2, bnn_opt_range_avx2, bnn_epi_bits_avx512, bnn_pm1_tile_avx2,
    bnn_i8pm1_chunk_avx2, bnn_absmax_f32_avx2, bnn_round_i8_avx2, bnn_bn_shift_var_avx2,
    bnn_bn_shift_sums_avx2, bnn_bn_shift_dx_avx2,
};
/* the same with the AVX-512 VNNI first-layer kernel, where the CPU has it */
static const bnn_kernels k_avx512_vnni = {
    BNN_ISA_AVX512_VNNI, bnn_pack_f32_avx512, bnn_pack_i8_avx512,
    bnn_unpack_f32_avx2, bnn_popc_strip_avx512, bnn_epi_f32_avx512,
    bnn_dot_u8_strip_avx512vnni, bnn_opt_range_avx2, bnn_epi_bits_avx512,
    bnn_pm1_tile_avx2, bnn_i8pm1_chunk_avx2, bnn_absmax_f32_avx2, bnn_round_i8_avx2,
    bnn_bn_shift_var_avx2, bnn_bn_shift_sums_avx2, bnn_bn_shift_dx_avx2,
};
#endif

#if BNN_ARM64
/* NEON packing, popcounts, the GEMM epilogues, the 8-bit first layer and
 * the backward products and int8 rounding of training; the reference
 * kernels for the optimizer step and the shift batch norm passes */
static const bnn_kernels k_neon = {
    BNN_ISA_NEON, bnn_pack_f32_neon, bnn_pack_i8_neon, bnn_unpack_f32_neon,
    bnn_popc_strip_neon, bnn_epi_f32_neon, bnn_dot_u8_strip_neon, bnn_opt_range_ref,
    bnn_epi_bits_neon, bnn_pm1_tile_neon, bnn_i8pm1_chunk_neon, bnn_absmax_f32_neon,
    bnn_round_i8_neon, bnn_bn_shift_var_ref, bnn_bn_shift_sums_ref, bnn_bn_shift_dx_ref,
};
/* the same with the UDOT first-layer kernel, where the CPU has ASIMDDP */
static const bnn_kernels k_neon_dot = {
    BNN_ISA_NEON_DOT, bnn_pack_f32_neon, bnn_pack_i8_neon, bnn_unpack_f32_neon,
    bnn_popc_strip_neon, bnn_epi_f32_neon, bnn_dot_u8_strip_neondot, bnn_opt_range_ref,
    bnn_epi_bits_neon, bnn_pm1_tile_neon, bnn_i8pm1_chunk_neon, bnn_absmax_f32_neon,
    bnn_round_i8_neon, bnn_bn_shift_var_ref, bnn_bn_shift_sums_ref, bnn_bn_shift_dx_ref,
};
static int g_cpu_neon = 0, g_cpu_dot = 0;
#endif

static const bnn_kernels *g_table = &k_ref;
#if BNN_X86   /* what the CPU probe found (other targets have no such kernels) */
static int g_cpu_avx2 = 0, g_cpu_avx512 = 0, g_cpu_vnni = 0;
#endif

#if BNN_X86 && defined(__GNUC__)
static uint64_t xgetbv0(void)
{
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static void probe_cpu(void)
{
    unsigned a, b, c, d;
    int osxsave, avx, fma, popcnt;
    uint64_t xcr0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    osxsave = (c >> 27) & 1;
    avx     = (c >> 28) & 1;
    fma     = (c >> 12) & 1;
    popcnt  = (c >> 23) & 1;
    if (!osxsave || !avx) return;
    xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return;               /* XMM and YMM state  */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    if (((b >> 5) & 1) && ((b >> 8) & 1) && fma && popcnt)  /* AVX2, BMI2 */
        g_cpu_avx2 = 1;
    /* AVX-512 F(b16) DQ(b17) BW(b30) VL(b31), VPOPCNTDQ (ecx b14), and the
     * OS saving opmask + ZMM state (XCR0 bits 5, 6, 7). */
    if (g_cpu_avx2 && ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1)
        && ((b >> 31) & 1) && ((c >> 14) & 1) && (xcr0 & 0xe0) == 0xe0)
        g_cpu_avx512 = 1;
    if (g_cpu_avx512 && ((c >> 11) & 1))           /* AVX512_VNNI (ecx b11) */
        g_cpu_vnni = 1;
}
#elif BNN_ARM64
static void probe_cpu(void)
{
#if defined(__linux__)
    const unsigned long hw = getauxval(AT_HWCAP);
    g_cpu_neon = (hw & HWCAP_ASIMD) != 0;
    g_cpu_dot = g_cpu_neon && (hw & HWCAP_ASIMDDP) != 0;   /* SDOT / UDOT */
#else
    g_cpu_neon = 1;                /* Advanced SIMD is part of ARMv8-A */
#  if defined(__ARM_FEATURE_DOTPROD)
    g_cpu_dot = 1;                 /* the compiler was told the CPU has it */
#  endif
#endif
}
#else
static void probe_cpu(void) {}
#endif

const bnn_kernels *bnn_kernels_for(bnn_isa isa)
{
    switch (isa) {
    case BNN_ISA_REF: return &k_ref;
#if BNN_X86
    case BNN_ISA_AVX2: return g_cpu_avx2 ? &k_avx2 : NULL;
    case BNN_ISA_AVX512: return g_cpu_avx512 ? &k_avx512 : NULL;
    case BNN_ISA_AVX512_VNNI: return g_cpu_vnni ? &k_avx512_vnni : NULL;
#endif
#if BNN_ARM64
    case BNN_ISA_NEON: return g_cpu_neon ? &k_neon : NULL;
    case BNN_ISA_NEON_DOT: return g_cpu_dot ? &k_neon_dot : NULL;
#endif
    default: break;
    }
    return NULL;
}

bnn_status bnn_isa_from_name(const char *name, bnn_isa *out)
{
    if (name == NULL || out == NULL) return BNN_ERR_NULL;
    if (strcmp(name, "ref") == 0) *out = BNN_ISA_REF;
    else if (strcmp(name, "avx2") == 0) *out = BNN_ISA_AVX2;
    else if (strcmp(name, "avx512") == 0) *out = BNN_ISA_AVX512;
    else if (strcmp(name, "avx512vnni") == 0) *out = BNN_ISA_AVX512_VNNI;
    else if (strcmp(name, "neon") == 0) *out = BNN_ISA_NEON;
    else if (strcmp(name, "neondot") == 0) *out = BNN_ISA_NEON_DOT;
    else return BNN_ERR_INVALID;
    return BNN_OK;
}

static void init_once(void)
{
    const char *env;
    bnn_isa want;
    const bnn_kernels *t;
    probe_cpu();
#if BNN_X86
    if (g_cpu_avx512) g_table = g_cpu_vnni ? &k_avx512_vnni : &k_avx512;
    else if (g_cpu_avx2) g_table = &k_avx2;
#endif
#if BNN_ARM64
    if (g_cpu_neon) g_table = g_cpu_dot ? &k_neon_dot : &k_neon;
#endif
#ifdef BNN_BAREMETAL
    env = NULL;                  /* no environment: bnn_set_isa() forces */
#else
    env = getenv("BNN_ISA");
#endif
    if (env != NULL && bnn_isa_from_name(env, &want) == BNN_OK) {
        t = bnn_kernels_for(want);
        if (t != NULL) g_table = t;
    }
}

#ifndef BNN_NO_THREADS
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void ensure_init(void) { pthread_once(&g_once, init_once); }
#else
static int g_inited = 0;
static void ensure_init(void)
{
    if (!g_inited) { init_once(); g_inited = 1; }
}
#endif

const bnn_kernels *bnn_kernels_get(void)
{
    ensure_init();
    return g_table;
}

const char *bnn_isa_name(void)
{
    switch (bnn_kernels_get()->isa) {
    case BNN_ISA_AVX2: return "avx2";
    case BNN_ISA_AVX512: return "avx512";
    case BNN_ISA_AVX512_VNNI: return "avx512vnni";
    case BNN_ISA_NEON: return "neon";
    case BNN_ISA_NEON_DOT: return "neondot";
    default: return "ref";
    }
}

bnn_isa bnn_isa_current(void) { return bnn_kernels_get()->isa; }

int bnn_isa_supported(bnn_isa isa)
{
    ensure_init();
    return bnn_kernels_for(isa) != NULL;
}

bnn_status bnn_set_isa(bnn_isa isa)
{
    const bnn_kernels *t;
    ensure_init();
    t = bnn_kernels_for(isa);
    if (t == NULL) return BNN_ERR_UNSUPPORTED;
    g_table = t;
    return BNN_OK;
}
