/** @file counter.c  The anti-rollback counter (include/suture/counter.h). */
#include <string.h>

#include "suture/counter.h"
#include "internal.h"

/* A valid record's key is value + 1, so that a counter of 0 is still a valid record. */
static uint32_t counter_key(const uint8_t *raw)
{
    suture_counter_record_t rec;
    memcpy(&rec, raw, sizeof rec);
    if (rec.magic != SUTURE_COUNTER_MAGIC || rec.value_inv != ~rec.value ||
        rec.value == 0xFFFFFFFFu) {
        return 0;
    }
    if (suture_crc32(raw, 12) != rec.crc32) {
        return 0;
    }
    return rec.value + 1u;
}

static suture_log_t counter_log(void)
{
    suture_log_t log = {SUTURE_FLASH_INTERNAL, suture_hal_layout()->counter_off,
                        SUTURE_COUNTER_RECORD_SIZE, counter_key};
    return log;
}

int suture_counter_read(uint32_t *value)
{
    suture_log_t log = counter_log();
    suture_log_pos_t pos;
    suture_counter_record_t rec;
    if (suture_log_scan(&log, &pos, (uint8_t *)&rec) != 0) {
        return -1;
    }
    *value = pos.key == 0 ? 0 : pos.key - 1u;
    return 0;
}

int suture_counter_raise(uint32_t value)
{
    suture_log_t log = counter_log();
    suture_log_pos_t pos;
    suture_counter_record_t rec;
    if (suture_log_scan(&log, &pos, (uint8_t *)&rec) != 0) {
        return -1;
    }
    if (value == 0xFFFFFFFFu || (pos.key != 0 && value + 1u <= pos.key)) {
        return 0;
    }
    rec.magic = SUTURE_COUNTER_MAGIC;
    rec.value = value;
    rec.value_inv = ~value;
    rec.crc32 = suture_crc32(&rec, 12);
    return suture_log_append(&log, &pos, (const uint8_t *)&rec);
}
