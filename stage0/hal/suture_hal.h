/**
 * @file suture_hal.h
 * The hardware stage0's core reaches through. A port implements every function here; the
 * core never touches a register or an address.
 *
 * Flash devices have NOR semantics: erase sets a whole sector to 0xFF, program only clears
 * bits and never crosses a page. Offsets are relative to the start of the device.
 */
#ifndef SUTURE_HAL_H
#define SUTURE_HAL_H

#include <stdint.h>

/** The two flash devices stage0 knows. */
typedef enum suture_flash_dev {
    SUTURE_FLASH_INTERNAL = 0, /**< the MCU's flash: stage0, counter, loader slot */
    SUTURE_FLASH_EXTERNAL = 1, /**< the SPI NOR flash: journal, staging slot, backup slot */
} suture_flash_dev_t;

/** Where things are. Every offset is sector-aligned. */
typedef struct suture_layout {
    uint32_t sector_size;     /**< erase unit of both devices, bytes */
    uint32_t page_size;       /**< program unit of both devices, bytes */
    uint32_t provision_off;   /**< internal: provisioning record (the verification key) */
    uint32_t counter_off;     /**< internal: two counter sectors */
    uint32_t loader_off;      /**< internal: loader slot (header, then body) */
    uint32_t slot_size;       /**< size of the loader, staging and backup slots */
    uint32_t loader_run_addr; /**< CPU address of the loader slot's body (its vector table) */
    uint32_t journal_off;     /**< external: two journal sectors */
    uint32_t staging_off;     /**< external: staging slot */
    uint32_t backup_off;      /**< external: backup slot */
} suture_layout_t;

/** @return the board's layout. */
const suture_layout_t *suture_hal_layout(void);

/** Read len bytes at off into buf. @return 0, or -1 on a device error. */
int suture_hal_flash_read(suture_flash_dev_t dev, uint32_t off, void *buf, uint32_t len);

/** Erase the sector starting at off. @return 0, or -1. */
int suture_hal_flash_erase(suture_flash_dev_t dev, uint32_t off);

/** Program len bytes at off (inside one page; bits only cleared). @return 0, or -1. */
int suture_hal_flash_program(suture_flash_dev_t dev, uint32_t off, const void *buf,
                             uint32_t len);

/** Write a NUL-terminated string to the console UART. */
void suture_hal_puts(const char *s);

#endif /* SUTURE_HAL_H */
