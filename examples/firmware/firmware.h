/* firmware.h -- what a board's startup.c gives the firmware's main
 * (firmware.c): output and exit through semihosting, a clock, memory
 * figures. */
#ifndef BNN_FIRMWARE_H
#define BNN_FIRMWARE_H

#include <stdint.h>

void fw_write(const char *s);              /* semihosting SYS_WRITE0 */
void fw_exit(int ok);                      /* semihosting SYS_EXIT   */
uint64_t fw_ticks(void);                   /* a clock (see firmware.c) */
void fw_spin(uint32_t n);                  /* exactly 2n instructions */
/* memory.c */
void fw_paint_stack(uint32_t *sp);         /* at boot, below sp */
uint32_t fw_stack_high_water(void);        /* bytes of stack ever used */
uint32_t fw_static_ram(void);              /* .data + .bss bytes */
uint32_t fw_stack_size(void);              /* bytes reserved for the stack */

#endif
