"""Public keys as JWKs (RFC 7517) and private keys as PEM: Ed25519 and ECDSA P-256 only.

GNAP presents a client key by value as ``{"proof": "httpsig", "jwk": {...}}`` (RFC 9635
§7.1); the ``kid`` of that JWK is the ``keyid`` of every signature made with it (§7.3.1).
A JWK without a ``kid`` gets its RFC 7638 thumbprint.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from suture.vendor_services.errors import VendorServicesError

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey

# Ceiling on a JWK member: a P-256 coordinate is 43 base64url characters.
_MAX_MEMBER = 128


class JwkError(VendorServicesError, ValueError):
    """A key that is malformed, of an unsupported type, or does not match its use."""


def b64url(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; raises ``JwkError`` on bad input."""
    if not isinstance(text, str) or len(text) > _MAX_MEMBER:
        raise JwkError("JWK member is not a short base64url string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as e:
        raise JwkError("JWK member is not base64url") from e


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256) of the required members, base64url."""
    if jwk.get("kty") == "OKP":
        members = {"crv": jwk["crv"], "kty": "OKP", "x": jwk["x"]}
    else:
        members = {"crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk(key: PublicKey, kid: str | None = None) -> dict[str, str]:
    """The JWK of a public key, with ``kid`` (its thumbprint when not given)."""
    jwk: dict[str, str]
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        numbers = key.public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }
    else:
        raise JwkError("only Ed25519 and ECDSA P-256 keys are supported")
    jwk["kid"] = kid or thumbprint(jwk)
    return jwk


def load_jwk(jwk: Any) -> tuple[str, PublicKey]:
    """Parse a client's JWK: returns ``(kid, public key)``; raises ``JwkError``."""
    if not isinstance(jwk, dict):
        raise JwkError("jwk must be an object")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    key: PublicKey
    try:
        if kty == "OKP" and crv == "Ed25519":
            x = b64url_decode(jwk.get("x", ""))
            if len(x) != 32:
                raise JwkError("Ed25519 x must be 32 bytes")
            key = ed25519.Ed25519PublicKey.from_public_bytes(x)
            members = {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"]}
        elif kty == "EC" and crv == "P-256":
            x, y = b64url_decode(jwk.get("x", "")), b64url_decode(jwk.get("y", ""))
            if len(x) != 32 or len(y) != 32:
                raise JwkError("P-256 coordinates must be 32 bytes")
            # from_encoded_point checks that the point is on the curve.
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
            members = {"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]}
        else:
            raise JwkError("jwk must be an Ed25519 (OKP) or P-256 (EC) public key")
    except ValueError as e:
        if isinstance(e, JwkError):
            raise
        raise JwkError(f"jwk is not a valid public key: {e}") from e
    kid = jwk.get("kid")
    if kid is None:
        kid = thumbprint(members)
    if not isinstance(kid, str) or not kid or len(kid) > _MAX_MEMBER:
        raise JwkError("jwk kid must be a short non-empty string")
    return kid, key


@dataclass(frozen=True)
class SigningKey:
    """A private key and the ``kid`` its signatures carry."""

    kid: str
    private_key: PrivateKey

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def jwk(self) -> dict[str, str]:
        """The public JWK, with this key's ``kid``."""
        return public_jwk(self.public_key, self.kid)

    @classmethod
    def generate(cls, algorithm: str = "EdDSA", kid: str | None = None) -> SigningKey:
        """A fresh key: ``"EdDSA"`` (Ed25519) or ``"ES256"`` (ECDSA P-256)."""
        private: PrivateKey
        if algorithm == "EdDSA":
            private = ed25519.Ed25519PrivateKey.generate()
        elif algorithm == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            raise JwkError(f"unsupported algorithm {algorithm!r}: use EdDSA or ES256")
        return cls(kid or public_jwk(private.public_key())["kid"], private)

    @classmethod
    def from_pem(cls, data: bytes, kid: str | None = None) -> SigningKey:
        """Load a PKCS#8 PEM private key (Ed25519 or P-256)."""
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as e:
            raise JwkError(f"not a PEM private key: {e}") from e
        if not isinstance(private, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise JwkError("only Ed25519 and ECDSA P-256 keys are supported")
        if isinstance(private, ec.EllipticCurvePrivateKey) and not isinstance(
            private.curve, ec.SECP256R1
        ):
            raise JwkError("only the P-256 curve is supported")
        return cls(kid or public_jwk(private.public_key())["kid"], private)

    @classmethod
    def from_file(cls, path: Path, kid: str | None = None) -> SigningKey:
        """Load a PEM private key file."""
        try:
            data = path.read_bytes()
        except OSError as e:
            raise JwkError(f"cannot read key {path}: {e.strerror}") from e
        return cls.from_pem(data, kid)

    def to_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def load_public_pem(data: bytes) -> PublicKey:
    """Load a PEM public key (Ed25519 or P-256)."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise JwkError(f"not a PEM public key: {e}") from e
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise JwkError("only Ed25519 and ECDSA P-256 keys are supported")
