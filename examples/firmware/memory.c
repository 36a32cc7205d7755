/*
 * memory.c -- the firmware's memory figures, the same on every board: each
 * board's memory.ld.in defines the symbols below, and its startup code
 * calls fw_paint_stack() before main.
 */
#include "firmware.h"

#include <stdint.h>

extern uint32_t __data_start[], __bss_end[], __stack_limit[], __stack_top[];

#define PAINT 0x5EEDF00Du

/* Fill the stack below sp (less a margin for the caller's frame) with a
 * pattern; the words still holding it later were never used. */
void fw_paint_stack(uint32_t *sp)
{
    uint32_t *p;
    for (p = __stack_limit; p < sp - 16; p++) *p = PAINT;
}

uint32_t fw_stack_high_water(void)
{
    const uint32_t *p = __stack_limit;
    while (p < __stack_top && *p == PAINT) p++;
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)p);
}

uint32_t fw_static_ram(void)
{
    return (uint32_t)((uintptr_t)__bss_end - (uintptr_t)__data_start);
}

uint32_t fw_stack_size(void)
{
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)__stack_limit);
}
