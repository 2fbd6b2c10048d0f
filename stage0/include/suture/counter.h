/**
 * @file counter.h
 * The anti-rollback counter and the provisioned key: the one C definition of their formats
 * (docs/formats/loader-image.md, "Counter" and "Provisioning").
 *
 * Counter: two internal-flash sectors used ping-pong, each an array of 16-byte records; the
 * valid record with the highest value is the counter (0 when there is none). It only rises.
 * Provisioning: one 80-byte record at the start of the provisioning sector, written once.
 */
#ifndef SUTURE_COUNTER_H
#define SUTURE_COUNTER_H

#include <stddef.h>
#include <stdint.h>

#define SUTURE_COUNTER_MAGIC 0x52544353u /**< the bytes "S C T R" */
#define SUTURE_COUNTER_RECORD_SIZE 16u

/** One counter record (16 bytes, little-endian). */
typedef struct __attribute__((packed)) suture_counter_record {
    uint32_t magic;     /**< SUTURE_COUNTER_MAGIC */
    uint32_t value;     /**< the counter */
    uint32_t value_inv; /**< ~value */
    uint32_t crc32;     /**< CRC-32 (zlib.crc32) of bytes 0..11 */
} suture_counter_record_t;

_Static_assert(sizeof(suture_counter_record_t) == SUTURE_COUNTER_RECORD_SIZE, "16 bytes");
_Static_assert(offsetof(suture_counter_record_t, crc32) == 12, "crc32 at 12");

#define SUTURE_PROVISION_MAGIC 0x59454B53u /**< the bytes "S K E Y" */
#define SUTURE_PROVISION_SIZE 80u

/** The provisioned verification key (80 bytes, little-endian). */
typedef struct __attribute__((packed)) suture_provision_record {
    uint32_t magic;          /**< SUTURE_PROVISION_MAGIC */
    uint32_t sig_alg;        /**< SUTURE_IMAGE_SIG_ALG_ES256 */
    uint8_t public_key[64];  /**< P-256 point x || y, big-endian coordinates */
    uint32_t reserved;       /**< 0 */
    uint32_t crc32;          /**< CRC-32 (zlib.crc32) of bytes 0..75 */
} suture_provision_record_t;

_Static_assert(sizeof(suture_provision_record_t) == SUTURE_PROVISION_SIZE, "80 bytes");
_Static_assert(offsetof(suture_provision_record_t, public_key) == 8, "public_key at 8");
_Static_assert(offsetof(suture_provision_record_t, crc32) == 76, "crc32 at 76");

#endif /* SUTURE_COUNTER_H */
