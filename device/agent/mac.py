# HMAC-SHA256 (RFC 2104) on hashlib.sha256: the device request MAC of docs/formats/device-api.md.
import hashlib

from micropython import const

_BLOCK = const(64)


def hmac_sha256(key, msg):
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    k = bytearray(_BLOCK)
    k[: len(key)] = key
    inner = bytearray(_BLOCK)
    outer = bytearray(_BLOCK)
    for i in range(_BLOCK):
        inner[i] = k[i] ^ 0x36
        outer[i] = k[i] ^ 0x5C
    h = hashlib.sha256(inner)
    h.update(msg)
    o = hashlib.sha256(outer)
    o.update(h.digest())
    return o.digest()


def hexlify(b):
    import binascii

    return binascii.hexlify(b).decode()
