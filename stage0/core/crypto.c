/**
 * @file crypto.c
 * The crypto stage0 uses, from HACL* (formally verified; fetched at build time by
 * tools/fetch-crypto.sh): SHA-256 compression and padding, and ECDSA P-256 verification.
 * Nothing here is crypto code: only the buffering that turns HACL*'s whole-block SHA-256
 * functions into init/update/final, and copies into the mutable buffers HACL*'s API takes.
 */
/* glibc declares le64toh and friends, which HACL*'s headers use, only with this. */
#define _DEFAULT_SOURCE
#include <stddef.h>
#include <string.h>

#include "Hacl_P256.h"
#include "internal/Hacl_Hash_SHA2.h"
#include "crypto.h"

#define BLOCK 64u

void suture_sha256_init(suture_sha256_t *ctx)
{
    Hacl_Hash_SHA2_sha256_init(ctx->state);
    ctx->total = 0;
}

void suture_sha256_update(suture_sha256_t *ctx, const void *data, uint32_t len)
{
    const uint8_t *in = data;
    uint32_t used = (uint32_t)(ctx->total % BLOCK);
    ctx->total += len;
    if (used != 0) {
        uint32_t take = BLOCK - used < len ? BLOCK - used : len;
        memcpy(ctx->block + used, in, take);
        in += take;
        len -= take;
        if (used + take < BLOCK) {
            return;
        }
        Hacl_Hash_SHA2_sha256_update_nblocks(BLOCK, ctx->block, ctx->state);
    }
    uint32_t whole = len - len % BLOCK;
    if (whole != 0) {
        /* HACL* takes a non-const pointer; it only reads the input. */
        Hacl_Hash_SHA2_sha256_update_nblocks(whole, (uint8_t *)(uintptr_t)in, ctx->state);
    }
    memcpy(ctx->block, in + whole, len - whole);
}

void suture_sha256_final(suture_sha256_t *ctx, uint8_t out[32])
{
    Hacl_Hash_SHA2_sha256_update_last(ctx->total, (uint32_t)(ctx->total % BLOCK), ctx->block,
                                      ctx->state);
    Hacl_Hash_SHA2_sha256_finish(ctx->state, out);
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
