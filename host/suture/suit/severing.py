"""Sever members from a signed envelope (draft-ietf-suit-manifest section 8.4.11).

Severing removes a member from the envelope while the manifest keeps its digest, so the
signature stays valid and the member can be supplied, and checked, later.
"""

from __future__ import annotations

from collections.abc import Iterable

from suture.suit import codepoints as cp
from suture.suit.decoder import decode_envelope
from suture.suit.encoder import encode_auth_wrapper, encode_envelope
from suture.suit.errors import SuitSeverError


def sever_envelope(data: bytes, members: Iterable[str]) -> bytes:
    """The envelope without ``members`` (names: dependency-resolution, payload-fetch,
    candidate-verification, install, text).

    A member already severed is accepted (nothing to remove). A member that is inline in the
    manifest, or absent from it, cannot be severed: SuitSeverError.
    """
    names = list(members)
    envelope = decode_envelope(data)
    manifest = envelope.manifest
    for name in names:
        if name not in cp.SEVERABLE_MEMBERS:
            raise SuitSeverError(
                f"cannot sever {name!r}: severable members are {', '.join(cp.SEVERABLE_MEMBERS)}"
            )
        if name in manifest.severable_digests:
            continue
        present = {
            "dependency-resolution": manifest.dependency_resolution,
            "payload-fetch": manifest.payload_fetch,
            "candidate-verification": manifest.candidate_verification,
            "install": manifest.install,
            "text": manifest.text,
        }[name]
        if present is not None:
            raise SuitSeverError(
                f"cannot sever {name!r}: it is inline in the manifest (covered by the signature), "
                "not a severable member"
            )
        raise SuitSeverError(f"cannot sever {name!r}: the manifest has no {name} member")
    kept = {k: v for k, v in envelope.severable_members.items() if k not in names}
    auth = envelope.authentication
    return encode_envelope(
        auth_wrapper=encode_auth_wrapper(auth.digest_encoded, [b.encoded for b in auth.blocks]),
        manifest=envelope.manifest_bstr,
        members=kept,
        integrated_payloads=envelope.integrated_payloads,
        extensions=envelope.extensions,
        tagged=envelope.tagged,
    )
