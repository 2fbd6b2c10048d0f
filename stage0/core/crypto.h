/** @file crypto.h  The two primitives stage0 needs, over the fetched library (HACL*). */
#ifndef SUTURE_CRYPTO_H
#define SUTURE_CRYPTO_H

#include <stdint.h>

/** SHA-256 context: HACL*'s eight-word chaining state plus a partial block. */
typedef struct suture_sha256 {
    uint32_t state[8];
    uint8_t block[64];
    uint64_t total; /**< bytes absorbed so far */
} suture_sha256_t;

void suture_sha256_init(suture_sha256_t *ctx);
void suture_sha256_update(suture_sha256_t *ctx, const void *data, uint32_t len);
void suture_sha256_final(suture_sha256_t *ctx, uint8_t out[32]);

/** ECDSA P-256 over a SHA-256 hash. @return 0 if valid, -1 otherwise. */
int suture_p256_verify(const uint8_t hash[32], const uint8_t public_key[64],
                       const uint8_t signature[64]);

#endif
