"""HTTP Message Signatures for GNAP: Ed25519 and ECDSA P-256 keys, Content-Digest, nonces.

Public API: :class:`SigningKey`, :func:`sign_request`, :func:`verify_request`,
:class:`NonceCache`, :class:`SignatureError`, :func:`load_jwk`, :func:`public_jwk`.
"""

from suture.vendor.httpsig.jwk import (
    JwkError,
    PublicKey,
    SigningKey,
    load_jwk,
    load_public_pem,
    public_jwk,
)
from suture.vendor.httpsig.nonces import NonceCache
from suture.vendor.httpsig.signatures import (
    GNAP_TAG,
    SignatureError,
    VerifiedRequest,
    sign_request,
    verify_request,
)

__all__ = [
    "GNAP_TAG",
    "JwkError",
    "NonceCache",
    "PublicKey",
    "SignatureError",
    "SigningKey",
    "VerifiedRequest",
    "load_jwk",
    "load_public_pem",
    "public_jwk",
    "sign_request",
    "verify_request",
]
