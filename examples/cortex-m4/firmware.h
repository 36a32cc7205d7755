/* firmware.h -- what startup.c gives the firmware's main (firmware.c). */
#ifndef BNN_FIRMWARE_H
#define BNN_FIRMWARE_H

#include <stdint.h>

void fw_write(const char *s);              /* semihosting SYS_WRITE0 */
void fw_exit(int ok);                      /* semihosting SYS_EXIT   */
uint64_t fw_ticks(void);                   /* SysTick, processor clock */
uint32_t fw_stack_high_water(void);        /* bytes of stack ever used */
uint32_t fw_static_ram(void);              /* .data + .bss bytes */
uint32_t fw_stack_size(void);              /* bytes reserved for the stack */

#endif
