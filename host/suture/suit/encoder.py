"""Encode SUIT envelopes: the outer map in the draft's key order, around already-encoded
authentication wrapper, manifest and severable members (their bytes are never re-encoded, so
signatures and digests over them stay valid)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cbor2

from suture.suit import codepoints as cp


def encode_auth_wrapper(digest_encoded: bytes, blocks: Sequence[bytes]) -> bytes:
    """``[bstr(SUIT_Digest), *bstr(SUIT_Authentication_Block)]``."""
    return cbor2.dumps([digest_encoded, *blocks])


def encode_envelope(
    *,
    auth_wrapper: bytes,
    manifest: bytes,
    members: Mapping[str, bytes] | None = None,
    integrated_payloads: Mapping[str, bytes] | None = None,
    extensions: Mapping[Any, Any] | None = None,
    tagged: bool = True,
) -> bytes:
    """A SUIT envelope: keys 2 and 3, then severable members (16, 20, 23), integrated payloads
    and any extensions; tagged 107 unless ``tagged`` is false."""
    envelope: dict[Any, Any] = {
        cp.ENVELOPE_AUTHENTICATION: auth_wrapper,
        cp.ENVELOPE_MANIFEST: manifest,
    }
    members = members or {}
    for name, key in sorted(cp.SEVERABLE_MEMBERS.items(), key=lambda item: item[1]):
        if name in members:
            envelope[key] = members[name]
    for key, value in (extensions or {}).items():
        envelope[key] = value
    for name, payload in sorted((integrated_payloads or {}).items()):
        envelope[name] = payload
    return cbor2.dumps(cbor2.CBORTag(cp.ENVELOPE_TAG, envelope) if tagged else envelope)
