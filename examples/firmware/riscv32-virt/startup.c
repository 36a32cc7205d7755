/*
 * startup.c -- boot code of the firmware on qemu's RISC-V `virt` board
 * (RV32IMC, machine mode): _start sets the stack and global pointers, then
 * fw_reset copies .data, zeroes .bss, paints the stack and runs main;
 * a trap handler reports faults.
 *
 * Semihosting (RISC-V Semihosting, version 0.2, on the ARM semihosting
 * operations): the uncompressed sequence `slli x0, x0, 0x1f; ebreak;
 * srai x0, x0, 7` with the operation in a0 and its argument in a1;
 * SYS_WRITE0 (0x04), SYS_EXIT (0x18, reason 0x20026 for success).
 * The clock is minstret, the retired-instruction counter.
 */
#include "firmware.h"

#include <stdint.h>

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];

int main(void);
void fw_reset(void);

__asm__(".section .text.init, \"ax\", @progbits\n"
        ".globl _start\n"
        "_start:\n"
        ".option push\n"
        ".option norelax\n"
        "    la gp, __global_pointer$\n"
        ".option pop\n"
        "    la sp, __stack_top\n"
        "    j fw_reset\n"
        ".text\n");

static long semihost(long op, const void *arg)
{
    register long a0 __asm__("a0") = op;
    register const void *a1 __asm__("a1") = arg;
    __asm__ volatile(".option push\n\t.option norvc\n\t.balign 16\n\t"
                     "slli x0, x0, 0x1f\n\tebreak\n\tsrai x0, x0, 7\n\t.option pop"
                     : "+r"(a0) : "r"(a1) : "memory");
    return a0;
}

void fw_write(const char *s) { semihost(0x04, s); }

void fw_exit(int ok)
{
    semihost(0x18, (const void *)(uintptr_t)(ok ? 0x20026u : 0x20023u));
    for (;;) {
    }
}

__attribute__((interrupt("machine"), aligned(4))) static void trap_handler(void)
{
    fw_write("firmware: unexpected exception (trap)\n");
    fw_exit(0);
}

void fw_spin(uint32_t n)
{
    __asm__ volatile("1: addi %0, %0, -1\n\tbnez %0, 1b" : "+r"(n));
}

uint64_t fw_ticks(void)
{
    uint32_t hi, lo, hi2;
    do {
        __asm__ volatile("csrr %0, minstreth" : "=r"(hi));
        __asm__ volatile("csrr %0, minstret" : "=r"(lo));
        __asm__ volatile("csrr %0, minstreth" : "=r"(hi2));
    } while (hi != hi2);
    return ((uint64_t)hi << 32) | lo;
}

__attribute__((noreturn)) void fw_reset(void)
{
    uint32_t *src = __data_load, *dst = __data_start, *sp;
    while (dst < __data_end) *dst++ = *src++;
    for (dst = __bss_start; dst < __bss_end; dst++) *dst = 0;
    __asm__ volatile("csrw mtvec, %0" : : "r"((uintptr_t)trap_handler));
    __asm__ volatile("mv %0, sp" : "=r"(sp));
    fw_paint_stack(sp);
    fw_exit(main() == 0);
    for (;;) {
    }
}
