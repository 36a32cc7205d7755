/*
 * firmware.c -- a binary network on a microcontroller with no operating
 * system, no heap and no file system (the board's startup.c: boot, output,
 * clock; one per board directory): the exported model is a const array in
 * flash (bnn_fw_model.c, written by examples/c/bin2c.py from a .bnn file),
 * the test images too (bnn_fw_model_inputs.h, with the classes the host
 * runtime computed for them).  It classifies every image, prints the
 * classes, compares them with the host's, and reports:
 *
 *   - instructions per image: fw_ticks() is a clock that, under qemu's
 *     `-icount shift=0`, advances by the same amount for every instruction
 *     (SysTick on the Cortex-M4, minstret on RISC-V); a calibration loop
 *     of known length converts its ticks into instructions;
 *   - RAM: .data + .bss (the model arena and the workspace are static
 *     arrays there) and the stack's high-water mark (startup.c paints it).
 *
 * Output goes through semihosting; the exit status is 0 when every class
 * matches the host runtime's.
 */
#include <bnn.h>

#include <stdint.h>

#include "bnn_fw_model.h"
#include "bnn_fw_model_inputs.h"
#include "firmware.h"

#ifndef FW_ARENA_BYTES
#define FW_ARENA_BYTES (4 * 1024)
#endif
#ifndef FW_WORKSPACE_BYTES
#define FW_WORKSPACE_BYTES (16 * 1024)
#endif
#ifndef FW_POPCOUNT
#define FW_POPCOUNT "?"
#endif

static uint8_t arena[FW_ARENA_BYTES];
#ifdef FW_SELFTEST
static int selftest_u8(void);
#endif
static uint8_t workspace[FW_WORKSPACE_BYTES] __attribute__((aligned(64)));

/* ---- output without printf (no stdio, no heap) ---------------------------- */

static char line[256];
static unsigned used;

static void put(const char *s)
{
    while (*s) {
        if (used + 1 >= sizeof line) {
            line[used] = '\0';
            fw_write(line);
            used = 0;
        }
        line[used++] = *s++;
    }
}

static void put_u(uint64_t v)
{
    char buf[24];
    int i = (int)sizeof buf - 1;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(buf + i);
}

static void flush(void)
{
    line[used] = '\0';
    fw_write(line);
    used = 0;
}

static int fail(const char *what, bnn_status st)
{
    put("firmware: ");
    put(what);
    put(": ");
    put(bnn_status_string(st));
    put("\n");
    flush();
    return 1;
}

static void sort_u64(uint64_t *a, int n)
{
    int i, j;
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && a[j - 1] > a[j]; j--) {
            uint64_t t = a[j];
            a[j] = a[j - 1];
            a[j - 1] = t;
        }
}

int main(void)
{
    static uint64_t cost[BNN_FW_MODEL_INPUT_COUNT];
    bnn_model *model = NULL;
    bnn_model_info info;
    bnn_status st;
    size_t arena_need = 0, workspace_need = 0;
    uint64_t t0, calib, total = 0;
    const uint32_t calib_loops = 1000000;
    int i, wrong = 0;

    if ((st = bnn_set_num_threads(1)) != BNN_OK) return fail("bnn_set_num_threads", st);
#ifdef FW_SELFTEST
    if (selftest_u8() != 0) return 1;
#endif
    st = bnn_model_arena_size(bnn_fw_model, (size_t)bnn_fw_model_size, &arena_need);
    if (st != BNN_OK) return fail("the model in flash", st);
    if (arena_need > sizeof arena) {
        put("firmware: the model needs an arena of ");
        put_u(arena_need);
        put(" bytes: build with -DFW_ARENA_BYTES=");
        put_u(arena_need);
        put("\n");
        flush();
        return 1;
    }
    st = bnn_model_init(arena, sizeof arena, bnn_fw_model, (size_t)bnn_fw_model_size, &model);
    if (st != BNN_OK) return fail("bnn_model_init", st);
    if ((st = bnn_model_get_info(model, &info)) != BNN_OK) return fail("bnn_model_get_info", st);
    if ((st = bnn_model_workspace_size(model, 1, 1, &workspace_need)) != BNN_OK)
        return fail("bnn_model_workspace_size", st);
    if (workspace_need > sizeof workspace) {
        put("firmware: one image needs a workspace of ");
        put_u(workspace_need);
        put(" bytes: build with -DFW_WORKSPACE_BYTES=");
        put_u(workspace_need);
        put("\n");
        flush();
        return 1;
    }
    if (info.in_h * info.in_w * info.in_c != BNN_FW_MODEL_INPUT_BYTES) {
        put("firmware: the images do not have the model's input size\n");
        flush();
        return 1;
    }
    put("model: ");
    put_u((uint64_t)info.in_h);
    put("x");
    put_u((uint64_t)info.in_w);
    put("x");
    put_u((uint64_t)info.in_c);
    put(" uint8 -> ");
    put_u((uint64_t)info.classes);
    put(" classes, ");
    put_u((uint64_t)info.layers);
    put(" layers, ");
    put_u(bnn_fw_model_size);
    put(" bytes in flash");
    put(info.zero_copy ? " (read in place)\n" : " (copied)\n");
    put("kernels: ");
    put(bnn_isa_name());
    put(", popcount " FW_POPCOUNT "\n");
    put("memory: arena ");
    put_u(arena_need);
    put(" of ");
    put_u(sizeof arena);
    put(" bytes, workspace ");
    put_u(workspace_need);
    put(" of ");
    put_u(sizeof workspace);
    put(" bytes\n");
    flush();

    t0 = fw_ticks();
    fw_spin(calib_loops);
    calib = fw_ticks() - t0;
    put("calibration: ");
    put_u(2ull * calib_loops);
    put(" instructions in ");
    put_u(calib);
    put(" ticks\n");
    flush();
    if (calib == 0) calib = 1;

    put("classes:");
    for (i = 0; i < BNN_FW_MODEL_INPUT_COUNT; i++) {
        int32_t cls = -1;
        t0 = fw_ticks();
        st = bnn_model_run(model, 1, bnn_fw_model_inputs[i], NULL, &cls, workspace,
                           workspace_need);
        cost[i] = fw_ticks() - t0;
        if (st != BNN_OK) {
            flush();
            return fail("bnn_model_run", st);
        }
        total += cost[i];
        put(" ");
        put_u((uint64_t)cls);
        wrong += cls != bnn_fw_model_expected_classes[i];
    }
    put("\n");
    flush();
    sort_u64(cost, BNN_FW_MODEL_INPUT_COUNT);
    /* instructions = ticks * (2 * calib_loops) / calib */
    put("instructions per image: median ");
    put_u(cost[BNN_FW_MODEL_INPUT_COUNT / 2] * 2ull * calib_loops / calib);
    put(", mean ");
    put_u(total * 2ull * calib_loops / calib / BNN_FW_MODEL_INPUT_COUNT);
    put(", min ");
    put_u(cost[0] * 2ull * calib_loops / calib);
    put(", max ");
    put_u(cost[BNN_FW_MODEL_INPUT_COUNT - 1] * 2ull * calib_loops / calib);
    put("\n");
    put("ram: static ");
    put_u(fw_static_ram());
    put(" bytes (arena and workspace included), stack high-water ");
    put_u(fw_stack_high_water());
    put(" of ");
    put_u(fw_stack_size());
    put(" bytes\n");
    flush();
    if (wrong != 0) {
        put("FAIL: ");
        put_u((uint64_t)wrong);
        put(" of " );
        put_u(BNN_FW_MODEL_INPUT_COUNT);
        put(" classes differ from the host runtime's\n");
        flush();
        return 1;
    }
    put("OK: all ");
    put_u(BNN_FW_MODEL_INPUT_COUNT);
    put(" classes match the host runtime's\n");
    flush();
    return 0;
}

#ifdef FW_SELFTEST
/* On the target itself, the first layer's methods against each other:
 * the masked byte sums (this core's own code path: USADA8 where the core
 * has the DSP instructions) and the bit planes give the same integers on
 * ragged shapes, pseudo-random and saturated (every pixel 255, every
 * weight -1).  The host tests compare both with the oracle. */
#define ST_N 3
#define ST_M 70
#define ST_K 1100
#define ST_WORDS ((ST_K + 63) / 64)
static uint8_t st_x[ST_N * ST_K];
static uint64_t st_w[ST_M * ST_WORDS];
static int32_t st_out[2][ST_N * ST_M];
static uint8_t st_ws[16 * 1024] __attribute__((aligned(64)));

static uint32_t st_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static int selftest_u8(void)
{
    static const int64_t shapes[][3] = {{1, 1, 1}, {2, 5, 31}, {2, 17, 513}, {1, 64, 784},
                                        {3, 70, 1100}, {3, 70, 1100}};
    static const bnn_u8_method methods[2] = {BNN_U8_MASKED, BNN_U8_BITPLANE};
    const int n_shapes = (int)(sizeof shapes / sizeof shapes[0]);
    uint32_t seed = 12345u;
    int si, mi;
    int64_t i, q;
    for (si = 0; si < n_shapes; si++) {
        const int64_t n = shapes[si][0], m = shapes[si][1], k = shapes[si][2];
        const int64_t words = (k + 63) / 64;
        const int saturated = si == n_shapes - 1;
        for (i = 0; i < n * k; i++) st_x[i] = saturated ? 255 : (uint8_t)st_next(&seed);
        for (i = 0; i < m; i++)
            for (q = 0; q < words; q++) {
                uint64_t v = saturated ? ~(uint64_t)0
                                       : (uint64_t)st_next(&seed) << 32 | st_next(&seed);
                if (q == words - 1 && k % 64) v &= ~(~(uint64_t)0 << (k % 64));
                st_w[i * words + q] = v;
            }
        for (mi = 0; mi < 2; mi++) {
            bnn_status st = bnn_gemm_u8(n, m, k, st_x, k, st_w, words, NULL, st_out[mi], m,
                                        methods[mi], st_ws, sizeof st_ws);
            if (st != BNN_OK) return fail("self-test bnn_gemm_u8", st);
        }
        for (i = 0; i < n * m; i++)
            if (st_out[0][i] != st_out[1][i]) {
                put("FAIL: self-test: the masked and bit-plane first layers differ at shape ");
                put_u((uint64_t)si);
                put(", element ");
                put_u((uint64_t)i);
                put("\n");
                flush();
                return 1;
            }
    }
    put("self-test: masked and bit-plane first layers equal on ");
    put_u((uint64_t)n_shapes);
    put(" shapes\n");
    flush();
    return 0;
}
#endif
