/** @file crypto.h  The two primitives stage0 needs, over the fetched libraries. */
#ifndef SUTURE_CRYPTO_H
#define SUTURE_CRYPTO_H

#include <stdint.h>

/** SHA-256 context (holds libsodium's state). */
typedef struct suture_sha256 {
    uint64_t opaque[14];
} suture_sha256_t;

void suture_sha256_init(suture_sha256_t *ctx);
void suture_sha256_update(suture_sha256_t *ctx, const void *data, uint32_t len);
void suture_sha256_final(suture_sha256_t *ctx, uint8_t out[32]);

/** ECDSA P-256 over a SHA-256 hash. @return 0 if valid, -1 otherwise. */
int suture_p256_verify(const uint8_t hash[32], const uint8_t public_key[64],
                       const uint8_t signature[64]);

#endif
