/** @file image.c  Verify a loader image: header, signature, body digest, anti-rollback. */
#include <string.h>

#include "crypto.h"
#include "stage0.h"
#include "suture/counter.h"
#include "internal.h"

#define CHUNK 512u

int suture_flash_sha256(suture_flash_dev_t dev, uint32_t off, uint32_t len, uint8_t out[32])
{
    uint8_t buf[CHUNK];
    suture_sha256_t ctx;
    suture_sha256_init(&ctx);
    while (len > 0) {
        uint32_t n = len < CHUNK ? len : CHUNK;
        if (suture_hal_flash_read(dev, off, buf, n) != 0) {
            return -1;
        }
        suture_sha256_update(&ctx, buf, n);
        off += n;
        len -= n;
    }
    suture_sha256_final(&ctx, out);
    return 0;
}

static int read_key(uint8_t key[64])
{
    suture_provision_record_t rec;
    if (suture_hal_flash_read(SUTURE_FLASH_INTERNAL, suture_hal_layout()->provision_off, &rec,
                              sizeof rec) != 0) {
        return SUTURE_EFLASH;
    }
    if (rec.magic != SUTURE_PROVISION_MAGIC || rec.sig_alg != SUTURE_IMAGE_SIG_ALG_ES256 ||
        suture_crc32(&rec, offsetof(suture_provision_record_t, crc32)) != rec.crc32) {
        return SUTURE_EKEY;
    }
    memcpy(key, rec.public_key, 64);
    return SUTURE_OK;
}

int suture_image_verify(suture_flash_dev_t dev, uint32_t off, uint32_t min_counter,
                        suture_image_header_t *hdr)
{
    const suture_layout_t *lay = suture_hal_layout();
    uint8_t key[64];
    uint8_t hash[32];
    suture_sha256_t ctx;
    int rc = SUTURE_EMAGIC; /* fail closed: every path below must earn SUTURE_OK */

    if (suture_hal_flash_read(dev, off, hdr, sizeof *hdr) != 0) {
        return SUTURE_EFLASH;
    }
    if (hdr->magic != SUTURE_IMAGE_MAGIC || hdr->header_version != SUTURE_IMAGE_HEADER_VERSION ||
        hdr->header_size != SUTURE_IMAGE_HEADER_SIZE ||
        hdr->sig_alg != SUTURE_IMAGE_SIG_ALG_ES256) {
        return SUTURE_EMAGIC;
    }
    if (hdr->image_size == 0 || hdr->image_size > lay->slot_size - SUTURE_IMAGE_HEADER_SIZE) {
        return SUTURE_ESIZE;
    }
    if (hdr->load_address != lay->loader_run_addr) {
        return SUTURE_EADDRESS;
    }
    rc = read_key(key);
    if (rc != SUTURE_OK) {
        return rc;
    }
    suture_sha256_init(&ctx);
    suture_sha256_update(&ctx, hdr, SUTURE_IMAGE_SIGNED_SIZE);
    suture_sha256_final(&ctx, hash);
    if (suture_p256_verify(hash, key, hdr->signature) != 0) {
        return SUTURE_ESIGNATURE;
    }
    /* Signed from here on: the counter and the digest can be trusted. */
    if (hdr->security_counter < min_counter) {
        return SUTURE_EROLLBACK;
    }
    if (suture_flash_sha256(dev, off + SUTURE_IMAGE_HEADER_SIZE, hdr->image_size, hash) != 0) {
        return SUTURE_EFLASH;
    }
    if (memcmp(hash, hdr->digest, sizeof hash) != 0) {
        return SUTURE_EDIGEST;
    }
    return SUTURE_OK;
}
