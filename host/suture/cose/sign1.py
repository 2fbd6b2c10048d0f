"""COSE_Sign1 (RFC 9052 section 4.2): sign and verify, attached or detached payload."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from suture.cose import algorithms
from suture.cose.cbor import describe
from suture.cose.errors import CoseError
from suture.cose.headers import HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID, decode_headers
from suture.cose.message import decode_message
from suture.keys import PrivateKey, PublicKey, cose_algorithm

COSE_SIGN1_TAG: Final = 18
MAX_MESSAGE_BYTES: Final = 1 << 20
MAX_DEPTH: Final = 8


@dataclass(frozen=True)
class Sign1:
    """A decoded (not yet verified) COSE_Sign1 message."""

    protected_bytes: bytes
    protected: Mapping[Any, Any]
    unprotected: Mapping[Any, Any]
    payload: bytes | None
    signature: bytes
    tagged: bool
    alg: int
    kid: bytes | None = field(default=None)

    @property
    def alg_name(self) -> str:
        return algorithms.alg_name(self.alg)


def sig_structure(protected_bytes: bytes, external_aad: bytes, payload: bytes) -> bytes:
    """The bytes that are signed: ``["Signature1", protected, external_aad, payload]``."""
    return cbor2.dumps(["Signature1", protected_bytes, external_aad, payload])


def sign1(
    payload: bytes | None,
    key: PrivateKey,
    *,
    detached_payload: bytes | None = None,
    kid: bytes | None = None,
    external_aad: bytes = b"",
    tagged: bool = True,
    alg: int | None = None,
) -> bytes:
    """A COSE_Sign1 message over ``payload``; with ``payload=None`` and ``detached_payload``
    the message carries nil and signs the detached bytes.

    ``alg`` defaults to the key's algorithm (-7 for P-256, -8 for Ed25519); -9 and -19 may be
    asked for explicitly. ``kid``, when given, goes in the unprotected header.
    """
    if payload is not None and detached_payload is not None:
        raise CoseError("give either payload or detached_payload, not both")
    signed = payload if payload is not None else detached_payload
    if signed is None:
        raise CoseError("nothing to sign: payload and detached_payload are both None")
    alg_id = cose_algorithm(key) if alg is None else alg
    if alg_id not in algorithms.SIGNATURE_ALGS:
        raise CoseError(f"unsupported COSE algorithm {alg_id}")
    if not algorithms.key_accepts(key, alg_id):
        raise CoseError(f"{algorithms.alg_name(alg_id)} cannot be used with this key type")
    protected_bytes = cbor2.dumps({HEADER_ALG: alg_id})
    unprotected: dict[int, bytes] = {} if kid is None else {HEADER_KID: bytes(kid)}
    signature = algorithms.sign(key, sig_structure(protected_bytes, external_aad, signed))
    body = [protected_bytes, unprotected, payload, signature]
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, body) if tagged else body)


def decode_sign1(message: bytes) -> Sign1:
    """Decode a COSE_Sign1 message (tagged 18 or untagged) without checking its signature."""
    item, tagged = decode_message("COSE_Sign1", message, tag=COSE_SIGN1_TAG, entries=4,
                                  max_bytes=MAX_MESSAGE_BYTES, max_depth=MAX_DEPTH)
    protected_bytes, unprotected, payload, signature = item
    headers = decode_headers("COSE_Sign1", protected_bytes, unprotected,
                             understood=(HEADER_CONTENT_TYPE,))
    if payload is not None and not isinstance(payload, bytes):
        raise CoseError(f"COSE_Sign1 payload: expected bstr or nil, got {describe(payload)}")
    if not isinstance(signature, bytes):
        raise CoseError(f"COSE_Sign1 signature: expected bstr, got {describe(signature)}")
    if headers.alg is None:
        raise CoseError("COSE_Sign1: no algorithm (label 1) in the protected header")
    return Sign1(
        protected_bytes=headers.protected_bytes,
        protected=headers.protected,
        unprotected=headers.unprotected,
        payload=payload,
        signature=signature,
        tagged=tagged,
        alg=headers.alg,
        kid=headers.kid,
    )


def _public(key: object) -> PublicKey:
    """A public key; the public half when given a private key."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        return key.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return key
    raise CoseError(f"{type(key).__name__} is not a P-256 or Ed25519 public key")


def verify1(
    message: bytes,
    keys: PublicKey | Sequence[PublicKey],
    *,
    detached_payload: bytes | None = None,
    external_aad: bytes = b"",
) -> bytes:
    """Verify a COSE_Sign1 message with any of ``keys``; return its payload.

    A message with a nil payload needs ``detached_payload``; one with a payload must not get
    one. Raises :class:`CoseError` for a malformed message, an unsupported algorithm, or a
    signature that no given key verifies.
    """
    return verify1_with_key(
        message, keys, detached_payload=detached_payload, external_aad=external_aad
    )[0]


def verify1_with_key(
    message: bytes,
    keys: PublicKey | Sequence[PublicKey],
    *,
    detached_payload: bytes | None = None,
    external_aad: bytes = b"",
) -> tuple[bytes, PublicKey]:
    """Like :func:`verify1`, and also return which key verified."""
    decoded = decode_sign1(message)
    if decoded.payload is None:
        if detached_payload is None:
            raise CoseError("COSE_Sign1 has a detached (nil) payload but none was supplied")
        payload = detached_payload
    else:
        if detached_payload is not None:
            raise CoseError("COSE_Sign1 carries its payload; a detached payload was also supplied")
        payload = decoded.payload
    if decoded.alg not in algorithms.SIGNATURE_ALGS:
        raise CoseError(f"COSE_Sign1: unsupported algorithm {decoded.alg}")
    if len(decoded.signature) != algorithms.SIGNATURE_BYTES:
        raise CoseError(
            f"COSE_Sign1 signature: {len(decoded.signature)} bytes, "
            f"{decoded.alg_name} signatures are {algorithms.SIGNATURE_BYTES}"
        )
    key_list = [_public(k) for k in (list(keys) if isinstance(keys, Sequence) else [keys])]
    usable = [k for k in key_list if algorithms.key_accepts(k, decoded.alg)]
    if not usable:
        raise CoseError(
            f"COSE_Sign1 is signed with {decoded.alg_name}; none of the {len(key_list)} "
            "given keys is of that type"
        )
    to_be_signed = sig_structure(decoded.protected_bytes, external_aad, payload)
    for key in usable:
        if algorithms.verify(key, decoded.signature, to_be_signed):
            return payload, key
    raise CoseError(
        f"COSE_Sign1 {decoded.alg_name} signature does not verify with "
        f"{'the given key' if len(usable) == 1 else f'any of the {len(usable)} given keys'}"
    )
