"""HTTP Message Signatures for GNAP: Ed25519 and ECDSA P-256 keys, Content-Digest, nonces.

Public API: :class:`SigningKey`, :func:`sign_request`, :func:`verify_request`,
:class:`NonceStore` (:class:`NonceCache` keeps one in memory), :class:`SignatureError`,
:func:`load_jwk`, :func:`public_jwk`.
"""

from suture.vendor_services.httpsig.jwk import (
    JwkError,
    PublicKey,
    SigningKey,
    load_jwk,
    load_public_pem,
    public_jwk,
)
from suture.vendor_services.httpsig.nonces import NonceCache, NonceStore
from suture.vendor_services.httpsig.signatures import (
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
    "NonceStore",
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
