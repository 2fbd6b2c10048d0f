"""COSE_Mac0 (RFC 9052 section 6.2) with HMAC (RFC 9053 section 3.1): create and verify.

Algorithms: HMAC 256/256 (5), HMAC 384/384 (6) and HMAC 512/512 (7); the tag is the full hash
output. The MACed bytes are ``MAC_structure = ["MAC0", protected, external_aad, payload]``;
SUIT uses a detached (nil) payload whose content is the encoded SUIT_Digest.

A key is a :class:`SymmetricKey`: at least as many bytes as the hash output (RFC 9053 section
3.1 asks for a key of that strength), and an optional key id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import cbor2
from cryptography.hazmat.primitives import constant_time, hashes, hmac

from suture.cose import CoseError
from suture.cose.cbor import describe
from suture.cose.headers import HEADER_ALG, HEADER_KID, decode_headers
from suture.cose.message import decode_message

COSE_MAC0_TAG: Final = 17
HMAC_256_256: Final = 5
HMAC_384_384: Final = 6
HMAC_512_512: Final = 7

MAC_ALGS: Final = {
    HMAC_256_256: ("HMAC 256/256", hashes.SHA256, 32),
    HMAC_384_384: ("HMAC 384/384", hashes.SHA384, 48),
    HMAC_512_512: ("HMAC 512/512", hashes.SHA512, 64),
}
MAX_MESSAGE_BYTES: Final = 1 << 20
MAX_DEPTH: Final = 8


@dataclass(frozen=True)
class SymmetricKey:
    """A secret key (an HMAC key, or a key-encryption key) and the key id it is known by."""

    key: bytes
    kid: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes) or not self.key:
            raise CoseError("a symmetric key must be a non-empty byte string")

    @property
    def key_id(self) -> bytes:
        """The kid if it has one, else SHA-256 of the key (a high-entropy key does not leak)."""
        return self.kid if self.kid is not None else hashlib.sha256(self.key).digest()

    def __repr__(self) -> str:
        return f"SymmetricKey({len(self.key)} bytes, kid={self.kid!r})"


@dataclass(frozen=True)
class Mac0:
    """A decoded (not yet verified) COSE_Mac0 message."""

    protected_bytes: bytes
    payload: bytes | None
    tag: bytes
    tagged: bool
    alg: int
    kid: bytes | None


def mac_name(alg: int) -> str:
    known = MAC_ALGS.get(alg)
    return known[0] if known else f"alg {alg}"


def mac_structure(protected_bytes: bytes, external_aad: bytes, payload: bytes) -> bytes:
    """The bytes that are MACed: ``["MAC0", protected, external_aad, payload]``."""
    return cbor2.dumps(["MAC0", protected_bytes, external_aad, payload])


def _hmac(alg: int, key: bytes, data: bytes) -> bytes:
    _, hash_cls, size = MAC_ALGS[alg]
    if len(key) < size:
        raise CoseError(f"{mac_name(alg)} needs a key of at least {size} bytes, got {len(key)}")
    h = hmac.HMAC(key, hash_cls())
    h.update(data)
    return h.finalize()


def mac0(
    payload: bytes | None,
    key: SymmetricKey,
    *,
    detached_payload: bytes | None = None,
    alg: int = HMAC_256_256,
    kid: bytes | None = None,
    external_aad: bytes = b"",
    tagged: bool = True,
) -> bytes:
    """A COSE_Mac0 over ``payload``; with ``payload=None`` the message carries nil and MACs
    ``detached_payload``. ``kid`` (unprotected) is left out unless given."""
    if (payload is None) == (detached_payload is None):
        raise CoseError("give exactly one of payload and detached_payload")
    if alg not in MAC_ALGS:
        raise CoseError(f"unsupported COSE MAC algorithm {alg}")
    content = payload if payload is not None else detached_payload
    assert content is not None
    protected_bytes = cbor2.dumps({HEADER_ALG: alg})
    unprotected = {} if kid is None else {HEADER_KID: bytes(kid)}
    tag = _hmac(alg, key.key, mac_structure(protected_bytes, external_aad, content))
    body = [protected_bytes, unprotected, payload, tag]
    return cbor2.dumps(cbor2.CBORTag(COSE_MAC0_TAG, body) if tagged else body)


def decode_mac0(message: bytes) -> Mac0:
    """Decode a COSE_Mac0 message (tagged 17 or untagged) without checking its tag."""
    item, tagged = decode_message("COSE_Mac0", message, tag=COSE_MAC0_TAG, entries=4,
                                  max_bytes=MAX_MESSAGE_BYTES, max_depth=MAX_DEPTH)
    protected_bytes, unprotected, payload, tag = item
    headers = decode_headers("COSE_Mac0", protected_bytes, unprotected, understood=())
    if headers.alg is None:
        raise CoseError("COSE_Mac0: no algorithm (label 1) in the protected header")
    if payload is not None and not isinstance(payload, bytes):
        raise CoseError(f"COSE_Mac0 payload: expected bstr or nil, got {describe(payload)}")
    if not isinstance(tag, bytes):
        raise CoseError(f"COSE_Mac0 tag: expected bstr, got {describe(tag)}")
    return Mac0(
        protected_bytes=headers.protected_bytes,
        payload=payload,
        tag=tag,
        tagged=tagged,
        alg=headers.alg,
        kid=headers.kid,
    )


def verify_mac0(
    message: bytes,
    keys: SymmetricKey | Sequence[SymmetricKey],
    *,
    detached_payload: bytes | None = None,
    external_aad: bytes = b"",
) -> tuple[bytes, SymmetricKey]:
    """Verify a COSE_Mac0 with any of ``keys``; return its payload and the key that verified.

    A key with a kid is tried only on a message with the same kid or none. Raises
    :class:`CoseError` for a malformed message, an unsupported algorithm, a wrong tag length
    or a tag that no key verifies.
    """
    decoded = decode_mac0(message)
    if decoded.payload is None:
        if detached_payload is None:
            raise CoseError("COSE_Mac0 has a detached (nil) payload but none was supplied")
        payload = detached_payload
    else:
        if detached_payload is not None:
            raise CoseError("COSE_Mac0 carries its payload; a detached payload was also supplied")
        payload = decoded.payload
    if decoded.alg not in MAC_ALGS:
        raise CoseError(f"COSE_Mac0: unsupported algorithm {decoded.alg}")
    size = MAC_ALGS[decoded.alg][2]
    if len(decoded.tag) != size:
        raise CoseError(
            f"COSE_Mac0 tag: {len(decoded.tag)} bytes, {mac_name(decoded.alg)} tags are {size}"
        )
    key_list = [keys] if isinstance(keys, SymmetricKey) else list(keys)
    usable = [
        k for k in key_list
        if k.kid is None or decoded.kid is None or k.kid == decoded.kid
    ]
    if not usable:
        raise CoseError(
            f"COSE_Mac0 names kid {decoded.kid!r}; none of the {len(key_list)} given MAC keys "
            "has it"
        )
    data = mac_structure(decoded.protected_bytes, external_aad, payload)
    for key in usable:
        if len(key.key) < size:
            continue
        if constant_time.bytes_eq(_hmac(decoded.alg, key.key, data), decoded.tag):
            return payload, key
    raise CoseError(
        f"COSE_Mac0 {mac_name(decoded.alg)} tag does not verify with "
        f"{'the given key' if len(usable) == 1 else f'any of the {len(usable)} given keys'}"
    )
