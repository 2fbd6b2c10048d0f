"""SUIT_Digest computation (draft-ietf-suit-manifest section 8.3 and 8.4.6.2).

The manifest digest in the authentication wrapper, and the digest of each severable member,
are computed over the *bstr-wrapped* bytes: the CBOR byte-string head followed by the encoded
structure, exactly as the envelope carries them. An image digest is over the image bytes.
"""

from __future__ import annotations

import hashlib
import hmac

import cbor2

from suture.suit import codepoints as cp
from suture.suit.errors import SuitAuthenticationError
from suture.suit.model import Digest

_HASHES = {cp.DIGEST_SHA256: "sha256", cp.DIGEST_SHA384: "sha384", cp.DIGEST_SHA512: "sha512"}


def bstr_wrap(content: bytes) -> bytes:
    """``content`` as an encoded CBOR byte string (head + content)."""
    return cbor2.dumps(bytes(content))


def digest_bytes(data: bytes, algorithm: int = cp.DIGEST_SHA256) -> Digest:
    """The SUIT_Digest of plain bytes (an image)."""
    name = _HASHES.get(algorithm)
    if name is None:
        raise SuitAuthenticationError(f"digest algorithm {algorithm} is not supported")
    return Digest(algorithm, hashlib.new(name, data).digest())


def digest_wrapped(content: bytes, algorithm: int = cp.DIGEST_SHA256) -> Digest:
    """The SUIT_Digest of ``content`` bstr-wrapped (manifest, severable members)."""
    return digest_bytes(bstr_wrap(content), algorithm)


def wrapped_matches(expected: Digest, content: bytes) -> bool:
    """Whether ``expected`` is the digest of ``content`` bstr-wrapped (constant-time compare)."""
    actual = digest_wrapped(content, expected.algorithm)
    return hmac.compare_digest(actual.value, expected.value)


def encode_digest(digest: Digest) -> bytes:
    """The encoded SUIT_Digest ``[alg, bytes]``."""
    return cbor2.dumps([digest.algorithm, digest.value])
