# HMAC-SHA-256 (RFC 2104) over hashlib, HKDF-SHA-256 (RFC 5869), and COSE_Mac0 verification
# (RFC 9052 section 6.2) with HMAC 256/256 (alg 5) over a detached payload, as SUIT uses it for
# devices provisioned with a symmetric key.
import hashlib

from loader import cbor
from loader.errors import SignatureError, SuitError

ALG_HMAC_256 = 5
TAG_MAC0 = 17
_BLOCK = 64


def hmac_sha256(key, *parts):
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    for part in parts:
        inner.update(part)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def hkdf_sha256(secret, info, length, salt=None):
    prk = hmac_sha256(salt if salt else bytes(32), secret)
    out = b""
    block = b""
    n = 1
    while len(out) < length:
        block = hmac_sha256(prk, block, info, bytes((n,)))
        out += block
        n += 1
    return out[:length]


def _eq(a, b):
    acc = len(a) ^ len(b)
    for i in range(min(len(a), len(b))):
        acc |= a[i] ^ b[i]
    return acc == 0


def verify_mac0(cose_bytes, detached_payload, keys):
    """Check a COSE_Mac0 (HMAC 256/256) over detached_payload with any of keys (bytes, 32 or
    more each). Raises SignatureError unless one key verifies."""
    obj = cbor.decode(cose_bytes)
    if isinstance(obj, cbor.Tag):
        if obj.tag != TAG_MAC0:
            raise SuitError("COSE tag %d is not COSE_Mac0" % obj.tag)
        obj = obj.value
    if not isinstance(obj, list) or len(obj) != 4:
        raise SuitError("COSE_Mac0 is not a 4-element array")
    protected, unprotected, payload, tag = obj
    if not isinstance(protected, bytes) or not isinstance(unprotected, dict):
        raise SuitError("COSE_Mac0 headers malformed")
    if not isinstance(tag, bytes):
        raise SuitError("COSE_Mac0 tag is not a byte string")
    if payload is not None and payload != detached_payload:
        raise SignatureError("COSE_Mac0 payload differs from the SUIT digest")
    hdr = cbor.decode(protected) if protected else {}
    if not isinstance(hdr, dict) or hdr.get(1) != ALG_HMAC_256 or 1 in unprotected:
        raise SignatureError("COSE_Mac0 algorithm is not a protected HMAC 256/256")
    if 2 in hdr:
        raise SignatureError("COSE_Mac0 has critical headers")
    if len(tag) != 32:
        raise SignatureError("COSE_Mac0 tag of %d bytes" % len(tag))
    # MAC_structure = ["MAC0", protected, external_aad, payload]
    head = b"\x84" + cbor.enc_tstr("MAC0") + cbor.enc_bstr(protected) + b"\x40"
    body = cbor.enc_bstr(detached_payload)
    for key in keys:
        if len(key) >= 32 and _eq(hmac_sha256(key, head, body), tag):
            return True
    raise SignatureError("no provisioned MAC key verifies the COSE_Mac0")
