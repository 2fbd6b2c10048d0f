/* mbed TLS configuration of the QEMU firmware: AES alone, for MicroPython's cryptolib (the
 * loader decrypts encrypted releases with AES-ECB blocks: loader/loader/aesstream.py). Only
 * library/aes.c and library/platform_util.c are compiled (mpconfigboard.mk). The tables are
 * constants in flash, not built in RAM at the first use. */
#ifndef SUTURE_MBEDTLS_CONFIG_H
#define SUTURE_MBEDTLS_CONFIG_H

#define MBEDTLS_AES_C
#define MBEDTLS_AES_ROM_TABLES
#define MBEDTLS_CIPHER_MODE_CBC
#define MBEDTLS_CIPHER_MODE_CTR

#include "mbedtls/check_config.h"

#endif
