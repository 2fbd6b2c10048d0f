/**
 * @file crypto.c
 * The crypto stage0 uses, from the libraries fetched at build time (tools/fetch-crypto.sh):
 * SHA-256 from libsodium, ECDSA P-256 verification from HACL*. Nothing here is crypto code.
 */
/* glibc declares le64toh and friends, which HACL*'s headers use, only with this. */
#define _DEFAULT_SOURCE
#include <stddef.h>
#include <string.h>

#include "Hacl_P256.h"
#include "crypto.h"
#include "sodium/crypto_hash_sha256.h"

_Static_assert(sizeof(crypto_hash_sha256_state) <= sizeof(suture_sha256_t),
               "suture_sha256_t too small for libsodium's state");

void suture_sha256_init(suture_sha256_t *ctx)
{
    crypto_hash_sha256_init((crypto_hash_sha256_state *)(void *)ctx->opaque);
}

void suture_sha256_update(suture_sha256_t *ctx, const void *data, uint32_t len)
{
    crypto_hash_sha256_update((crypto_hash_sha256_state *)(void *)ctx->opaque, data, len);
}

void suture_sha256_final(suture_sha256_t *ctx, uint8_t out[32])
{
    crypto_hash_sha256_final((crypto_hash_sha256_state *)(void *)ctx->opaque, out);
}

int suture_p256_verify(const uint8_t hash[32], const uint8_t public_key[64],
                       const uint8_t signature[64])
{
    uint8_t h[32], pk[64], r[32], s[32];
    memcpy(h, hash, sizeof h);
    memcpy(pk, public_key, sizeof pk);
    memcpy(r, signature, sizeof r);
    memcpy(s, signature + 32, sizeof s);
    return Hacl_P256_ecdsa_verif_without_hash(32, h, pk, r, s) ? 0 : -1;
}

/* libsodium's SHA-256 wipes its temporaries with this; the rest of libsodium is not built. */
void sodium_memzero(void *const pnt, const size_t len);
void sodium_memzero(void *const pnt, const size_t len)
{
    volatile unsigned char *p = (volatile unsigned char *)pnt;
    for (size_t i = 0; i < len; i++) {
        p[i] = 0;
    }
}
