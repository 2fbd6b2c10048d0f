/**
 * @file startup.c
 * Reset for the QEMU mps2 machines: vector table, .data/.bss set-up, then stage0's decision,
 * then the jump to the loader (VTOR, MSP, reset handler) or the recovery state.
 */
#include <stdint.h>
#include <string.h>

#include "../../core/stage0.h"
#include "suture_hal.h"

extern uint32_t __stack_top, __data_load, __data_start, __data_end, __bss_start, __bss_end;

void reset_handler(void);
static void fault_handler(void);

__attribute__((section(".vectors"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)&__stack_top,    (uintptr_t)reset_handler, (uintptr_t)fault_handler,
    (uintptr_t)fault_handler,   (uintptr_t)fault_handler, (uintptr_t)fault_handler,
    (uintptr_t)fault_handler,   (uintptr_t)fault_handler,
};

#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)

static void fault_handler(void)
{
    suture_hal_puts("stage0: fault\r\n");
    for (;;) {
        __asm volatile("wfi");
    }
}

__attribute__((noreturn)) static void jump(uint32_t vector_table)
{
    const volatile uint32_t *vt = (const volatile uint32_t *)vector_table;
    uint32_t sp = vt[0], pc = vt[1];
    SCB_VTOR = vector_table;
    __asm volatile("msr msp, %0\n\tdsb\n\tisb\n\tbx %1\n" : : "r"(sp), "r"(pc) : "memory");
    __builtin_unreachable();
}

__attribute__((noreturn)) static void recovery(void)
{
    suture_hal_puts("stage0: RECOVERY: no valid loader; waiting for a local update\r\n");
    for (;;) {
        __asm volatile("wfi");
    }
}

void reset_handler(void)
{
    suture_boot_result_t res;
    memcpy(&__data_start, &__data_load,
           (size_t)((uintptr_t)&__data_end - (uintptr_t)&__data_start));
    memset(&__bss_start, 0, (size_t)((uintptr_t)&__bss_end - (uintptr_t)&__bss_start));
    suture_hal_puts("stage0: suture stage0 starting\r\n");
    suture_stage0_run(&res);
    if (!res.ok) {
        recovery();
    }
    suture_hal_puts("stage0: starting the loader\r\n");
    jump(res.vector_table);
}
