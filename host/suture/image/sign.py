"""Sign and verify loader images with ECDSA P-256 / SHA-256 (what stage0 verifies)."""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from suture.image.errors import ImageError
from suture.image.header import HEADER_SIZE, LoaderImageHeader, parse_header
from suture.keys import PrivateKey, PublicKey, key_id


class ImageVerifyError(ImageError):
    """A loader image does not verify: digest, size or signature."""


def _require_p256(key: PrivateKey | PublicKey) -> None:
    if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) or not (
        isinstance(key.curve, ec.SECP256R1)
    ):
        raise ImageError("stage0 verifies ECDSA P-256 (ES256) only: use an ES256 key")


def sign_image(
    body: bytes,
    *,
    private_key: PrivateKey,
    version: tuple[int, int, int],
    security_counter: int,
    load_address: int,
) -> bytes:
    """A signed loader image: the 512-byte header followed by ``body``."""
    _require_p256(private_key)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    if not body:
        raise ImageError("the image body is empty")
    header = LoaderImageHeader(
        version=version,
        security_counter=security_counter,
        load_address=load_address,
        image_size=len(body),
        key_id=key_id(private_key.public_key())[:8],
        digest=hashlib.sha256(body).digest(),
    )
    der = private_key.sign(header.signed_bytes(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    signed = LoaderImageHeader(**{**header.__dict__, "signature": signature})
    return signed.to_bytes() + body


def verify_image(image: bytes, public_key: PublicKey) -> LoaderImageHeader:
    """Check size, digest and signature as stage0 does; the header, or :class:`ImageVerifyError`."""
    _require_p256(public_key)
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    header = parse_header(image)
    body = image[HEADER_SIZE : HEADER_SIZE + header.image_size]
    if len(body) != header.image_size:
        raise ImageVerifyError(
            f"truncated image: header says {header.image_size} body bytes, found {len(body)}"
        )
    r = int.from_bytes(header.signature[:32], "big")
    s = int.from_bytes(header.signature[32:], "big")
    try:
        public_key.verify(
            encode_dss_signature(r, s), header.signed_bytes(), ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError):
        raise ImageVerifyError("signature does not verify with this key") from None
    if hashlib.sha256(body).digest() != header.digest:
        raise ImageVerifyError("image digest mismatch (corrupt body)")
    return header
