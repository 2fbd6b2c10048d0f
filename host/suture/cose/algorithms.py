"""COSE signature algorithms suture signs and verifies (RFC 9053).

ESP256 and Ed25519 are the fully-specified registrations of the same two schemes.

- ES256 (-7) and ESP256 (-9): ECDSA on P-256 with SHA-256; the signature is r || s, 32 bytes
  each (RFC 9053 section 2.1), not DER.
- EdDSA (-8) and Ed25519 (-19): Ed25519 (RFC 9053 section 2.2), 64-byte signatures.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from suture.keys import PrivateKey, PublicKey

ES256: Final = -7
ESP256: Final = -9
EDDSA: Final = -8
ED25519: Final = -19

P256_ALGS: Final = frozenset({ES256, ESP256})
ED25519_ALGS: Final = frozenset({EDDSA, ED25519})
SIGNATURE_ALGS: Final = P256_ALGS | ED25519_ALGS

ALG_NAMES: Final = {ES256: "ES256", ESP256: "ESP256", EDDSA: "EdDSA", ED25519: "Ed25519"}
SIGNATURE_BYTES: Final = 64
_P256_COORD_BYTES: Final = 32


def alg_name(alg: object) -> str:
    """``"ES256"`` for -7 and so on; ``"alg N"`` for others."""
    if isinstance(alg, int) and alg in ALG_NAMES:
        return ALG_NAMES[alg]
    return f"alg {alg!r}"


def key_accepts(key: PrivateKey | PublicKey, alg: int) -> bool:
    """Whether ``key`` is the key type that algorithm ``alg`` uses."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return alg in ED25519_ALGS
    return alg in P256_ALGS and isinstance(key.curve, ec.SECP256R1)


def sign(key: PrivateKey, data: bytes) -> bytes:
    """The 64-byte COSE signature of ``data``: r || s for P-256, raw for Ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(_P256_COORD_BYTES, "big") + s.to_bytes(_P256_COORD_BYTES, "big")


def verify(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` (COSE form) over ``data`` verifies with ``key``."""
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            r = int.from_bytes(signature[:_P256_COORD_BYTES], "big")
            s = int.from_bytes(signature[_P256_COORD_BYTES:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
