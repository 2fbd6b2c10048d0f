/**
 * @file crypto_check.c
 * `stage0-host crypto`: stage0's two primitives (core/crypto.c over HACL*) driven from
 * standard input, so that tests can run public vectors and cross-checks through the exact code
 * and build flags stage0 uses. One request per line, one answer per line:
 *
 *   sha256 CHUNK HEX             -> the digest in hex (data fed in pieces of CHUNK bytes)
 *   p256 HASH32 PUBKEY64 SIG64   -> "valid" or "invalid" (all hex; PUBKEY is x || y)
 *
 * A malformed line answers "error" and the tool exits 2 at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/crypto.h"
#include "crypto_check.h"

#define LINE_MAX_BYTES (1u << 20)

static char line[2 * LINE_MAX_BYTES + 64];
static uint8_t data[LINE_MAX_BYTES];

static int unhex(const char *hex, uint8_t *out, size_t max, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > max) {
        return -1;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

static int do_sha256(char *args)
{
    char *chunk_s = strtok(args, " \n");
    char *hex = strtok(NULL, " \n");
    size_t len = 0;
    if (chunk_s == NULL || (hex != NULL && unhex(hex, data, sizeof data, &len) != 0)) {
        return -1;
    }
    long chunk = strtol(chunk_s, NULL, 10);
    if (chunk <= 0) {
        return -1;
    }
    suture_sha256_t ctx;
    uint8_t out[32];
    suture_sha256_init(&ctx);
    for (size_t done = 0; done < len; done += (size_t)chunk) {
        size_t n = len - done < (size_t)chunk ? len - done : (size_t)chunk;
        suture_sha256_update(&ctx, data + done, (uint32_t)n);
    }
    suture_sha256_final(&ctx, out);
    for (size_t i = 0; i < sizeof out; i++) {
        printf("%02x", out[i]);
    }
    printf("\n");
    return 0;
}

static int do_p256(char *args)
{
    uint8_t hash[32], key[64], sig[64];
    size_t a, b, c;
    char *h = strtok(args, " \n"), *k = strtok(NULL, " \n"), *s = strtok(NULL, " \n");
    if (h == NULL || k == NULL || s == NULL || unhex(h, hash, sizeof hash, &a) != 0 ||
        unhex(k, key, sizeof key, &b) != 0 || unhex(s, sig, sizeof sig, &c) != 0 ||
        a != sizeof hash || b != sizeof key || c != sizeof sig) {
        return -1;
    }
    printf("%s\n", suture_p256_verify(hash, key, sig) == 0 ? "valid" : "invalid");
    return 0;
}

int suture_host_crypto_check(void)
{
    int bad = 0;
    while (fgets(line, sizeof line, stdin) != NULL) {
        int rc = -1;
        if (strncmp(line, "sha256 ", 7) == 0) {
            rc = do_sha256(line + 7);
        } else if (strncmp(line, "p256 ", 5) == 0) {
            rc = do_p256(line + 5);
        }
        if (rc != 0) {
            printf("error\n");
            bad = 1;
        }
        fflush(stdout);
    }
    return bad ? 2 : 0;
}
