/** @file journal.c  The update journal (docs/formats/journal.md). */
#include <string.h>

#include "internal.h"

static uint32_t journal_key(const uint8_t *raw)
{
    suture_journal_record_t rec;
    memcpy(&rec, raw, sizeof rec);
    if (rec.magic != SUTURE_JOURNAL_MAGIC || rec.seq == 0) {
        return 0;
    }
    if (suture_crc32(raw, SUTURE_JOURNAL_CRC_SPAN) != rec.crc32) {
        return 0;
    }
    return rec.seq;
}

static suture_log_t journal_log(void)
{
    suture_log_t log = {SUTURE_FLASH_EXTERNAL, suture_hal_layout()->journal_off,
                        SUTURE_JOURNAL_RECORD_SIZE, journal_key};
    return log;
}

int suture_journal_read(suture_journal_record_t *rec)
{
    suture_log_t log = journal_log();
    suture_log_pos_t pos;
    if (suture_log_scan(&log, &pos, (uint8_t *)rec) != 0) {
        return -1;
    }
    if (pos.key == 0) {
        memset(rec, 0, sizeof *rec);
        rec->state = SUTURE_STATE_IDLE;
    }
    return 0;
}

int suture_journal_append(suture_journal_record_t *rec)
{
    suture_log_t log = journal_log();
    suture_log_pos_t pos;
    suture_journal_record_t cur;
    if (suture_log_scan(&log, &pos, (uint8_t *)&cur) != 0) {
        return -1;
    }
    rec->magic = SUTURE_JOURNAL_MAGIC;
    rec->seq = pos.key + 1u;
    rec->reserved = 0;
    rec->crc32 = suture_crc32(rec, SUTURE_JOURNAL_CRC_SPAN);
    return suture_log_append(&log, &pos, (const uint8_t *)rec);
}
