/**
 * @file image.h
 * The loader image header: the one C definition of docs/formats/loader-image.md.
 *
 * A loader image is a 512-byte header followed by the image body (the loader's vector table
 * first). All fields are little-endian. The header is signed with ECDSA P-256 / SHA-256 over
 * bytes 0..447; the signature (r || s, 32 bytes each, big-endian integers) fills bytes 448..511.
 * The header holds the SHA-256 of the body, so the signature covers header and image.
 */
#ifndef SUTURE_IMAGE_H
#define SUTURE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define SUTURE_IMAGE_MAGIC 0x52444C53u /**< the bytes "S L D R" */
#define SUTURE_IMAGE_HEADER_VERSION 1u
#define SUTURE_IMAGE_HEADER_SIZE 512u   /**< the body (vector table) starts here */
#define SUTURE_IMAGE_SIGNED_SIZE 448u   /**< bytes 0..447 are signed */
#define SUTURE_IMAGE_SIG_ALG_ES256 1u   /**< ECDSA P-256 with SHA-256 */

/** Loader image header, exactly as stored in flash (512 bytes, little-endian). */
typedef struct __attribute__((packed)) suture_image_header {
    uint32_t magic;            /**< SUTURE_IMAGE_MAGIC */
    uint16_t header_version;   /**< SUTURE_IMAGE_HEADER_VERSION */
    uint16_t header_size;      /**< SUTURE_IMAGE_HEADER_SIZE */
    uint8_t version_major;     /**< image version, informative */
    uint8_t version_minor;
    uint16_t version_patch;
    uint32_t security_counter; /**< anti-rollback: refused below the device's counter */
    uint32_t load_address;     /**< address of the body (vector table) when it runs */
    uint32_t image_size;       /**< body size in bytes (header excluded) */
    uint32_t sig_alg;          /**< SUTURE_IMAGE_SIG_ALG_ES256 */
    uint8_t key_id[8];         /**< first 8 bytes of the signer's key id (informative) */
    uint8_t digest[32];        /**< SHA-256 of the body */
    uint8_t reserved[380];     /**< 0, signed */
    uint8_t signature[64];     /**< ECDSA r || s over bytes 0..447 */
} suture_image_header_t;

_Static_assert(sizeof(suture_image_header_t) == SUTURE_IMAGE_HEADER_SIZE, "header is 512 bytes");
_Static_assert(offsetof(suture_image_header_t, header_version) == 4, "header_version at 4");
_Static_assert(offsetof(suture_image_header_t, header_size) == 6, "header_size at 6");
_Static_assert(offsetof(suture_image_header_t, version_major) == 8, "version at 8");
_Static_assert(offsetof(suture_image_header_t, security_counter) == 12, "security_counter at 12");
_Static_assert(offsetof(suture_image_header_t, load_address) == 16, "load_address at 16");
_Static_assert(offsetof(suture_image_header_t, image_size) == 20, "image_size at 20");
_Static_assert(offsetof(suture_image_header_t, sig_alg) == 24, "sig_alg at 24");
_Static_assert(offsetof(suture_image_header_t, key_id) == 28, "key_id at 28");
_Static_assert(offsetof(suture_image_header_t, digest) == 36, "digest at 36");
_Static_assert(offsetof(suture_image_header_t, reserved) == 68, "reserved at 68");
_Static_assert(offsetof(suture_image_header_t, signature) == SUTURE_IMAGE_SIGNED_SIZE,
               "signature at 448");

#endif /* SUTURE_IMAGE_H */
