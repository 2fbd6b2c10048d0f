# AES Key Wrap (RFC 3394) over MicroPython's cryptolib (AES-ECB): unwrap the content-encryption
# key of a SUIT_Encryption_Info recipient (COSE A128KW/A192KW/A256KW, and the last step of
# ECDH-ES+AES-KW); wrap is here for tests. Checked against RFC 3394's vectors and
# `cryptography` (tests/loader/test_suit_ext_device.py).
import cryptolib

from loader.errors import EncryptionUnsupported, KeyUnwrapError, SuitError

_ECB = 1
_IV = b"\xa6" * 8


def _check_key(key):
    if len(key) == 24:
        raise EncryptionUnsupported("AES-192: cryptolib has AES-128 and AES-256 only")
    if len(key) not in (16, 32):
        raise SuitError("AES key of %d bytes" % len(key))


def _xor8(a, t):
    b = bytearray(a)
    for k in range(8):
        b[7 - k] ^= (t >> (8 * k)) & 0xFF
    return bytes(b)


def _eq(a, b):
    acc = len(a) ^ len(b)
    for i in range(min(len(a), len(b))):
        acc |= a[i] ^ b[i]
    return acc == 0


def unwrap(kek, wrapped):
    """The key wrapped in `wrapped`; KeyUnwrapError when the integrity check fails (not the
    KEK it was wrapped with, or altered)."""
    _check_key(kek)
    if len(wrapped) % 8 or len(wrapped) < 24:
        raise SuitError("AES-KW ciphertext of %d bytes" % len(wrapped))
    n = len(wrapped) // 8 - 1
    aes = cryptolib.aes(kek, _ECB)
    a = bytes(wrapped[:8])
    r = [bytes(wrapped[8 * i:8 * i + 8]) for i in range(1, n + 1)]
    for j in range(5, -1, -1):
        for i in range(n, 0, -1):
            b = aes.decrypt(_xor8(a, n * j + i) + r[i - 1])
            a = b[:8]
            r[i - 1] = b[8:]
    if not _eq(a, _IV):
        raise KeyUnwrapError("AES key unwrap: integrity check failed (not this KEK)")
    return b"".join(r)


def wrap(kek, key):
    if len(key) % 8 or len(key) < 16:
        raise SuitError("AES-KW plaintext of %d bytes" % len(key))
    n = len(key) // 8
    aes = cryptolib.aes(kek, _ECB)
    a = _IV
    r = [bytes(key[8 * i:8 * i + 8]) for i in range(n)]
    for j in range(6):
        for i in range(1, n + 1):
            b = aes.encrypt(a + r[i - 1])
            a = _xor8(b[:8], n * j + i)
            r[i - 1] = b[8:]
    return a + b"".join(r)
