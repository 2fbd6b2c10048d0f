/**
 * @file hal_mps2.c
 * HAL for QEMU's mps2 machines. They have no SPI NOR, so both flash devices are RAM regions
 * that QEMU preloads, given NOR semantics here: erase sets a sector to 0xFF, program only
 * clears bits inside one page. Addresses come from the linker script (port/qemu-mps2/an385.ld, an505.ld).
 * An optional fault-injection word (see docs/stage0.md) cuts power at the N-th operation.
 */
#include <stdint.h>
#include <string.h>

#include "../layout_qemu.h"
#include "suture_hal.h"

extern uint8_t __suture_internal_base[], __suture_external_base[];
extern uint8_t __suture_internal_size[], __suture_external_size[];
extern uint8_t __suture_uart0[], __suture_cut_word[];

#define UART_DATA (*(volatile uint32_t *)(uintptr_t)(__suture_uart0 + 0x0))
#define UART_STATE (*(volatile uint32_t *)(uintptr_t)(__suture_uart0 + 0x4))
#define UART_CTRL (*(volatile uint32_t *)(uintptr_t)(__suture_uart0 + 0x8))
#define UART_BAUDDIV (*(volatile uint32_t *)(uintptr_t)(__suture_uart0 + 0x10))

/* Power-cut injection for the QEMU replays: the word holds SUTURE_CUT_MAGIC, the operation
 * number and the kind; anything else (RAM's power-on zeros) disables it. */
#define SUTURE_CUT_MAGIC 0x54554353u /* "SCUT" */
typedef struct cut_ctl {
    uint32_t magic;
    uint32_t at;      /* cut at this operation, 1-based */
    uint32_t partial; /* 1: half the operation happens */
    uint32_t ops;     /* operations so far */
} cut_ctl_t;

static suture_layout_t layout;

const suture_layout_t *suture_hal_layout(void)
{
    if (layout.sector_size == 0) {
        const suture_layout_t map = SUTURE_QEMU_LAYOUT(
            (uint32_t)(uintptr_t)__suture_internal_base + 0x20000u + 512u);
        layout = map;
    }
    return &layout;
}

static uint8_t *device(suture_flash_dev_t dev, uint32_t off, uint32_t len)
{
    uint32_t size = (uint32_t)(uintptr_t)(dev == SUTURE_FLASH_INTERNAL ? __suture_internal_size
                                                                      : __suture_external_size);
    if (off > size || len > size - off) {
        return NULL;
    }
    return (dev == SUTURE_FLASH_INTERNAL ? __suture_internal_base : __suture_external_base) + off;
}

static void power_cut(void)
{
    suture_hal_puts("stage0: POWER CUT (injected)\r\n");
    for (;;) {
        __asm volatile("wfi");
    }
}

static int cut_now(void)
{
    cut_ctl_t *ctl = (cut_ctl_t *)(uintptr_t)__suture_cut_word;
    if (ctl->magic != SUTURE_CUT_MAGIC) {
        return 0;
    }
    ctl->ops++;
    return ctl->ops == ctl->at;
}

static int cut_partial(void)
{
    return ((cut_ctl_t *)(uintptr_t)__suture_cut_word)->partial != 0;
}

int suture_hal_flash_read(suture_flash_dev_t dev, uint32_t off, void *buf, uint32_t len)
{
    const uint8_t *p = device(dev, off, len);
    if (p == NULL) {
        return -1;
    }
    memcpy(buf, p, len);
    return 0;
}

int suture_hal_flash_erase(suture_flash_dev_t dev, uint32_t off)
{
    const suture_layout_t *lay = suture_hal_layout();
    uint8_t *p = device(dev, off, lay->sector_size);
    if (p == NULL || off % lay->sector_size != 0) {
        return -1;
    }
    if (cut_now()) {
        if (cut_partial()) {
            memset(p, 0xFF, lay->sector_size / 2);
        }
        power_cut();
    }
    memset(p, 0xFF, lay->sector_size);
    return 0;
}

int suture_hal_flash_program(suture_flash_dev_t dev, uint32_t off, const void *buf, uint32_t len)
{
    const suture_layout_t *lay = suture_hal_layout();
    uint8_t *p = device(dev, off, len);
    const uint8_t *src = buf;
    if (p == NULL || len == 0 || off / lay->page_size != (off + len - 1) / lay->page_size) {
        return -1;
    }
    uint32_t n = len;
    int cut = cut_now();
    if (cut) {
        n = cut_partial() ? len / 2 : 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        p[i] &= src[i];
    }
    if (cut) {
        power_cut();
    }
    return 0;
}

void suture_hal_puts(const char *s)
{
    UART_BAUDDIV = 16;
    UART_CTRL = 1; /* TX enable */
    for (; *s != '\0'; s++) {
        while ((UART_STATE & 1u) != 0) {
        }
        UART_DATA = (uint8_t)*s;
    }
}
