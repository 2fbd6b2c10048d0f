/**
 * @file loader.c
 * A stand-in loader for the QEMU tests and the benchmark: it prints which image it is (from its
 * own signed header, just below its vector table) and the FPGA counter at its entry, and halts. The body can be padded to any size.
 */
#include <stdint.h>

#include "suture/image.h"

extern uint32_t __stack_top;
extern uint8_t __suture_uart0[], __suture_fpgaio[];
void loader_reset(void);

__attribute__((section(".vectors"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)&__stack_top,
    (uintptr_t)loader_reset,
};

static void put(const char *s)
{
    volatile uint32_t *uart = (volatile uint32_t *)(uintptr_t)__suture_uart0;
    uart[4] = 16;
    uart[2] = 1;
    for (; *s != '\0'; s++) {
        while ((uart[1] & 1u) != 0) {
        }
        uart[0] = (uint8_t)*s;
    }
}

static void put_dec(uint32_t v)
{
    char buf[11];
    int n = 10;
    buf[n] = '\0';
    do {
        buf[--n] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0 && n > 0);
    put(&buf[n]);
}

void loader_reset(void)
{
    /* The FPGA's free-running 25 MHz counter: under `qemu -icount shift=0` it says how many
     * instructions ran since reset (40 per tick), i.e. stage0's boot-to-jump cost. */
    uint32_t ticks = *(volatile uint32_t *)(uintptr_t)(__suture_fpgaio + 0x18);
    const suture_image_header_t *hdr =
        (const suture_image_header_t *)((uintptr_t)vectors - SUTURE_IMAGE_HEADER_SIZE);
    put("loader: running version ");
    put_dec(hdr->version_major);
    put(".");
    put_dec(hdr->version_minor);
    put(".");
    put_dec(hdr->version_patch);
    put(" security counter ");
    put_dec(hdr->security_counter);
    put("\r\nloader: fpgaio counter ");
    put_dec(ticks);
    put("\r\nloader: halted\r\n");
    for (;;) {
        __asm volatile("wfi");
    }
}
