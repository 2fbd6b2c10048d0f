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

/** The key of component-1 (loader image) records only: the latest loader record wins. */
static uint32_t loader_key(const uint8_t *raw)
{
    return raw[offsetof(suture_journal_record_t, component)] == SUTURE_COMPONENT_LOADER
               ? journal_key(raw)
               : 0;
}

static suture_log_t journal_log(void)
{
    suture_log_t log = {SUTURE_FLASH_EXTERNAL, suture_hal_layout()->journal_off,
                        SUTURE_JOURNAL_RECORD_SIZE, journal_key};
    return log;
}

static int journal_read(suture_journal_record_t *rec, uint32_t (*key)(const uint8_t *))
{
    suture_log_t log = journal_log();
    suture_log_pos_t pos;
    log.key = key;
    if (suture_log_scan(&log, &pos, (uint8_t *)rec) != 0) {
        return -1;
    }
    if (pos.key == 0) {
        memset(rec, 0, sizeof *rec);
        rec->state = SUTURE_STATE_IDLE;
    }
    return 0;
}

int suture_journal_read(suture_journal_record_t *rec) { return journal_read(rec, journal_key); }

int suture_journal_read_loader(suture_journal_record_t *rec)
{
    return journal_read(rec, loader_key);
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
