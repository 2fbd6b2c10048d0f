"""COSE_Sign1 signing and verification (RFC 9052), ES256/ESP256 and EdDSA/Ed25519 (RFC 9053).

ES256 signatures are raw r || s (64 bytes), as RFC 9053 specifies, never DER.
"""

from suture.cose.algorithms import ED25519, EDDSA, ES256, ESP256, SIGNATURE_ALGS, alg_name
from suture.cose.errors import CoseError
from suture.cose.sign1 import (
    COSE_SIGN1_TAG,
    Sign1,
    decode_sign1,
    sig_structure,
    sign1,
    verify1,
    verify1_with_key,
)

__all__ = [
    "COSE_SIGN1_TAG",
    "ED25519",
    "EDDSA",
    "ES256",
    "ESP256",
    "SIGNATURE_ALGS",
    "CoseError",
    "Sign1",
    "alg_name",
    "decode_sign1",
    "sig_structure",
    "sign1",
    "verify1",
    "verify1_with_key",
]
