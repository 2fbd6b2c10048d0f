/**
 * @file journal.h
 * The update journal record: the C copy of host/suture/formats/journal.toml, the one
 * description of the format (docs/formats/journal.md explains it). Written by hand and checked
 * against the description both ways by tests/formats/test_journal_copies.py: a constant
 * changed, missing or added here fails that test.
 *
 * The journal lives in two consecutive sectors at the start of the external flash's `journal`
 * region (ping-pong). Each sector is an array of 64-byte record slots. All fields are in
 * little-endian byte order; the struct is packed and matches the on-flash layout byte for byte
 * on a little-endian CPU (every suture target is one).
 */
#ifndef SUTURE_JOURNAL_H
#define SUTURE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

/** `magic`: the bytes "S J N L" read as a little-endian u32. */
#define SUTURE_JOURNAL_MAGIC 0x4C4E4A53u
/** Size of one record slot, in bytes. */
#define SUTURE_JOURNAL_RECORD_SIZE 64u
/** Number of bytes covered by `crc32` (bytes 0..59). */
#define SUTURE_JOURNAL_CRC_SPAN 60u
/** Number of sectors the journal occupies (A then B). */
#define SUTURE_JOURNAL_SECTORS 2u

/* component */
#define SUTURE_COMPONENT_APP 0u    /**< application bundle (littlefs) */
#define SUTURE_COMPONENT_LOADER 1u /**< loader image (stage0 acts on these) */
#define SUTURE_COMPONENT_NVM 2u    /**< NVM store */

/* state */
#define SUTURE_STATE_IDLE 1u        /**< nothing in flight */
#define SUTURE_STATE_DOWNLOADING 2u /**< staging slot being written; progress = bytes written */
#define SUTURE_STATE_STAGED 3u      /**< staging slot holds size bytes with SHA-256 digest */
#define SUTURE_STATE_BACKUP 4u      /**< copying the running image to backup; progress = bytes */
#define SUTURE_STATE_INSTALLING 5u  /**< copying the staged image in; progress = bytes */
#define SUTURE_STATE_TRIAL 6u       /**< installed, not confirmed; boot_count = trial boots */
#define SUTURE_STATE_CONFIRMED 7u   /**< new image confirmed itself */
#define SUTURE_STATE_REVERTING 8u   /**< restoring the backup; progress = bytes */
#define SUTURE_STATE_REVERTED 9u    /**< the backup is back in place */
#define SUTURE_STATE_FAILED 10u     /**< abandoned before anything was replaced; progress = error */

/* flags */
#define SUTURE_FLAG_REVERT_REQUESTED 0x01u  /**< TRIAL: revert at the next boot */
#define SUTURE_FLAG_INSTALL_REQUESTED 0x02u /**< STAGED: install at the next boot */
#define SUTURE_FLAG_KEEP_BACKUP 0x04u       /**< application: the backup is kept (see the doc) */
#define SUTURE_FLAG_MASK 0x07u              /**< every flag; every other bit is 0 */

/** One journal record, exactly as stored in flash (64 bytes, little-endian). */
typedef struct __attribute__((packed)) suture_journal_record {
    uint32_t magic;      /**< SUTURE_JOURNAL_MAGIC */
    uint32_t seq;        /**< previous record's seq + 1; the first record is 1 */
    uint8_t component;   /**< SUTURE_COMPONENT_* */
    uint8_t state;       /**< SUTURE_STATE_* */
    uint8_t boot_count;  /**< trial boots so far (state TRIAL) */
    uint8_t flags;       /**< SUTURE_FLAG_* */
    uint32_t progress;   /**< state-specific: bytes staged, bytes copied, or an error code */
    uint32_t size;       /**< size in bytes of the staged payload / image */
    uint32_t version;    /**< SUIT sequence number (loader image: its security counter) */
    uint8_t digest[32];  /**< SHA-256 of the staged payload / image */
    uint32_t reserved;   /**< 0 */
    uint32_t crc32;      /**< CRC-32 (IEEE 802.3, as zlib.crc32) of bytes 0..59 */
} suture_journal_record_t;

_Static_assert(sizeof(suture_journal_record_t) == SUTURE_JOURNAL_RECORD_SIZE,
               "journal record must be 64 bytes");
_Static_assert(offsetof(suture_journal_record_t, magic) == 0, "magic at 0");
_Static_assert(offsetof(suture_journal_record_t, seq) == 4, "seq at 4");
_Static_assert(offsetof(suture_journal_record_t, component) == 8, "component at 8");
_Static_assert(offsetof(suture_journal_record_t, state) == 9, "state at 9");
_Static_assert(offsetof(suture_journal_record_t, boot_count) == 10, "boot_count at 10");
_Static_assert(offsetof(suture_journal_record_t, flags) == 11, "flags at 11");
_Static_assert(offsetof(suture_journal_record_t, progress) == 12, "progress at 12");
_Static_assert(offsetof(suture_journal_record_t, size) == 16, "size at 16");
_Static_assert(offsetof(suture_journal_record_t, version) == 20, "version at 20");
_Static_assert(offsetof(suture_journal_record_t, digest) == 24, "digest at 24");
_Static_assert(offsetof(suture_journal_record_t, reserved) == 56, "reserved at 56");
_Static_assert(offsetof(suture_journal_record_t, crc32) == SUTURE_JOURNAL_CRC_SPAN, "crc32 at 60");

#endif /* SUTURE_JOURNAL_H */
