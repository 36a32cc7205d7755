/*
 * startup.c -- boot code of the firmware on an MPS2 AN386 board (Cortex-M4): the vector table, the
 * reset handler (copy .data, zero .bss, enable the FPU, paint the stack),
 * a SysTick wrap counter, and ARM semihosting for output and exit.
 *
 * Semihosting (ARM "Semihosting for AArch32 and AArch64", version 2.0):
 * `bkpt 0xab` with the operation in r0 and its argument in r1; SYS_WRITE0
 * (0x04) writes a NUL-terminated string, SYS_EXIT (0x18) ends the program
 * with a reason code (ADP_Stopped_ApplicationExit, 0x20026, is success).
 */
#include "firmware.h"

#include <stdint.h>

/* From the linker script (memory.ld.in). */
extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[], __stack_top[];

int main(void);

static volatile uint32_t g_systick_wraps;

void fw_reset(void);
static void default_handler(void);
static void systick_handler(void);

/* The vector table: initial stack pointer, then the handlers (ARMv7-M
 * Architecture Reference Manual, B1.5.2). */
__attribute__((section(".vectors"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)__stack_top,
    (uintptr_t)fw_reset,
    (uintptr_t)default_handler, /* NMI */
    (uintptr_t)default_handler, /* HardFault */
    (uintptr_t)default_handler, /* MemManage */
    (uintptr_t)default_handler, /* BusFault */
    (uintptr_t)default_handler, /* UsageFault */
    0, 0, 0, 0,
    (uintptr_t)default_handler, /* SVCall */
    (uintptr_t)default_handler, /* DebugMonitor */
    0,
    (uintptr_t)default_handler, /* PendSV */
    (uintptr_t)systick_handler,
};

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void fw_write(const char *s) { semihost(0x04, s); }

void fw_exit(int ok)
{
    semihost(0x18, (const void *)(uintptr_t)(ok ? 0x20026u : 0x20023u));
    for (;;) {
    }
}

static void default_handler(void)
{
    fw_write("firmware: unexpected exception (fault)\n");
    fw_exit(0);
}

/* SysTick (ARMv7-M B3.3): a 24-bit down-counter on the processor clock;
 * its wraps are counted here, so fw_ticks() is a 64-bit clock. */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static void systick_handler(void) { g_systick_wraps++; }

/* n iterations of a two-instruction loop */
void fw_spin(uint32_t n)
{
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
}

uint64_t fw_ticks(void)
{
    uint32_t w1, w2, v;
    do {
        w1 = g_systick_wraps;
        v = SYST_CVR;
        w2 = g_systick_wraps;
    } while (w1 != w2);
    return ((uint64_t)w1 << 24) + (0xFFFFFFu - v);
}

__attribute__((noreturn)) void fw_reset(void)
{
    uint32_t *src = __data_load, *dst = __data_start, *sp;
    while (dst < __data_end) *dst++ = *src++;
    for (dst = __bss_start; dst < __bss_end; dst++) *dst = 0;
    /* CP10 and CP11 full access: the single-precision FPU (CPACR, B3.2.20) */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    fw_paint_stack(sp);
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7; /* enable, interrupt on wrap, processor clock */
    fw_exit(main() == 0);
    for (;;) {
    }
}
