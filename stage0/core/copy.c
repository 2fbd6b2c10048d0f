/**
 * @file copy.c
 * Copy an image between slots. The first sector (header and vector table) is written last,
 * after the rest has been read back and compared, so a half-copied slot never carries the new
 * header. A copy restarts from scratch when resumed: its source never changes meanwhile.
 */
#include <string.h>

#include "suture/image.h"
#include "stage0.h"
#include "internal.h"

#define PAGE_MAX 256u

static int copy_sector(suture_flash_dev_t src, uint32_t src_off, suture_flash_dev_t dst,
                       uint32_t dst_off, uint32_t len)
{
    const suture_layout_t *lay = suture_hal_layout();
    uint8_t a[PAGE_MAX], b[PAGE_MAX];
    uint32_t page = lay->page_size < PAGE_MAX ? lay->page_size : PAGE_MAX;

    if (suture_hal_flash_erase(dst, dst_off) != 0) {
        return SUTURE_EFLASH;
    }
    for (uint32_t done = 0; done < len; done += page) {
        uint32_t n = len - done < page ? len - done : page;
        if (suture_hal_flash_read(src, src_off + done, a, n) != 0 ||
            suture_hal_flash_program(dst, dst_off + done, a, n) != 0 ||
            suture_hal_flash_read(dst, dst_off + done, b, n) != 0) {
            return SUTURE_EFLASH;
        }
        if (memcmp(a, b, n) != 0) {
            return SUTURE_ECOPY;
        }
    }
    return SUTURE_OK;
}

int suture_slot_copy(suture_flash_dev_t src, uint32_t src_off, suture_flash_dev_t dst,
                     uint32_t dst_off, uint32_t len)
{
    uint32_t sector = suture_hal_layout()->sector_size;
    int rc;
    /* Invalidate the destination's header first: a cut mid-copy leaves no image there. */
    if (suture_hal_flash_erase(dst, dst_off) != 0) {
        return SUTURE_EFLASH;
    }
    for (uint32_t done = sector; done < len; done += sector) {
        uint32_t n = len - done < sector ? len - done : sector;
        rc = copy_sector(src, src_off + done, dst, dst_off + done, n);
        if (rc != SUTURE_OK) {
            return rc;
        }
    }
    return copy_sector(src, src_off, dst, dst_off, len < sector ? len : sector);
}
