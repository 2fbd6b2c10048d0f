/**
 * @file log.c
 * Ping-pong record logs in two sectors: the journal and the counter share this logic
 * (docs/formats/journal.md, "Reading" and "Appending").
 */
#include <string.h>

#include "internal.h"

#define MAX_REC 64u

static int slot_empty(const uint8_t *rec, uint32_t size)
{
    for (uint32_t i = 0; i < size; i++) {
        if (rec[i] != 0xFFu) {
            return 0;
        }
    }
    return 1;
}

int suture_log_scan(const suture_log_t *log, suture_log_pos_t *pos, uint8_t *rec)
{
    const suture_layout_t *lay = suture_hal_layout();
    uint32_t slots = lay->sector_size / log->rec_size;
    uint32_t next[2] = {0, 0};
    uint8_t buf[MAX_REC];

    pos->key = 0;
    pos->sector = 0;
    for (uint32_t s = 0; s < 2; s++) {
        for (uint32_t i = 0; i < slots; i++) {
            uint32_t off = log->off + s * lay->sector_size + i * log->rec_size;
            if (suture_hal_flash_read(log->dev, off, buf, log->rec_size) != 0) {
                return -1;
            }
            if (!slot_empty(buf, log->rec_size)) {
                next[s] = i + 1; /* torn slots count as used: never reused */
            }
            uint32_t key = log->key(buf);
            if (key != 0 && key > pos->key) {
                pos->key = key;
                pos->sector = s;
                memcpy(rec, buf, log->rec_size);
            }
        }
    }
    pos->next = next[pos->sector];
    return 0;
}

int suture_log_append(const suture_log_t *log, const suture_log_pos_t *pos, const uint8_t *rec)
{
    const suture_layout_t *lay = suture_hal_layout();
    uint32_t slots = lay->sector_size / log->rec_size;
    uint32_t sector = pos->sector;
    uint32_t slot = pos->next;

    if (pos->key == 0 && slot == 0) {
        /* Nothing valid anywhere: start in whichever sector is clean, else erase A. */
        uint8_t buf[MAX_REC];
        if (suture_hal_flash_read(log->dev, log->off, buf, log->rec_size) != 0) {
            return -1;
        }
        if (!slot_empty(buf, log->rec_size)) {
            slot = slots; /* force the erase below */
            sector = 1;
        }
    }
    if (slot >= slots) {
        sector ^= 1u;
        slot = 0;
        if (suture_hal_flash_erase(log->dev, log->off + sector * lay->sector_size) != 0) {
            return -1;
        }
    }
    uint32_t off = log->off + sector * lay->sector_size + slot * log->rec_size;
    return suture_hal_flash_program(log->dev, off, rec, log->rec_size);
}
