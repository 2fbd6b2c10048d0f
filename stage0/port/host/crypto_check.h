/** @file crypto_check.h  `stage0-host crypto` (crypto_check.c). */
#ifndef SUTURE_HOST_CRYPTO_CHECK_H
#define SUTURE_HOST_CRYPTO_CHECK_H

/** Answer sha256/p256 requests from standard input. @return 0, or 2 after a malformed line. */
int suture_host_crypto_check(void);

#endif
