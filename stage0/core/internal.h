/** @file internal.h  Shared between the core's files; not a port interface. */
#ifndef SUTURE_CORE_INTERNAL_H
#define SUTURE_CORE_INTERNAL_H

#include <stdint.h>

#include "suture/image.h"
#include "suture/journal.h"
#include "suture_hal.h"

/** CRC-32 (IEEE 802.3, as zlib.crc32). */
uint32_t suture_crc32(const void *data, uint32_t len);

/** A ping-pong record log in two sectors (the journal, the counter). */
typedef struct suture_log {
    suture_flash_dev_t dev;
    uint32_t off;       /**< first sector */
    uint32_t rec_size;  /**< slot size */
    /** @return the record's key (seq, value) if valid, 0 if torn or empty */
    uint32_t (*key)(const uint8_t *rec);
} suture_log_t;

/** Latest record of a log. */
typedef struct suture_log_pos {
    uint32_t key;     /**< 0: no valid record */
    uint32_t sector;  /**< 0 or 1: active sector */
    uint32_t next;    /**< first slot after the last non-empty slot of the active sector */
} suture_log_pos_t;

/** Find the latest record; copy it into rec (rec_size bytes) when there is one. */
int suture_log_scan(const suture_log_t *log, suture_log_pos_t *pos, uint8_t *rec);
/** Append rec after pos (per docs/formats/journal.md "Appending"). */
int suture_log_append(const suture_log_t *log, const suture_log_pos_t *pos, const uint8_t *rec);

/** Journal: read the current record (state IDLE, seq 0 when empty). */
int suture_journal_read(suture_journal_record_t *rec);
/** Journal: read the latest component-1 (loader image) record (state IDLE, seq 0 when none). */
int suture_journal_read_loader(suture_journal_record_t *rec);
/** Journal: append rec with seq = current + 1 (fills magic, seq, reserved, crc32). */
int suture_journal_append(suture_journal_record_t *rec);

/** Counter: read (0 when never written). */
int suture_counter_read(uint32_t *value);
/** Counter: raise to value (no-op when not higher). */
int suture_counter_raise(uint32_t value);

/** Verify the image in a slot; fills the header. @return SUTURE_OK or an error. */
int suture_image_verify(suture_flash_dev_t dev, uint32_t off, uint32_t min_counter,
                        suture_image_header_t *hdr);
/** SHA-256 of len bytes of flash. */
int suture_flash_sha256(suture_flash_dev_t dev, uint32_t off, uint32_t len, uint8_t out[32]);

/** Copy len bytes between slots, the first sector last; read back and compare. */
int suture_slot_copy(suture_flash_dev_t src, uint32_t src_off, suture_flash_dev_t dst,
                     uint32_t dst_off, uint32_t len);

/** Print pieces to the UART. */
void suture_log_msg(const char *a, const char *b, const char *c);
void suture_u32_to_dec(uint32_t v, char out[11]);

#endif
