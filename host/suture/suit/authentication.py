"""Verify and sign SUIT envelopes (draft-ietf-suit-manifest section 8.3 and section 6.2).

Verification is pure: bytes and keys in, a verified :class:`Envelope` or a SuitError out.
Order of the checks:

1. the envelope decodes (structure, limits);
2. the authentication wrapper holds at least one authentication block (a digest alone is an
   unauthenticated manifest, which the draft forbids);
3. the SUIT_Digest matches the bstr-wrapped manifest;
4. at least one COSE_Sign1 block verifies, with a given key, over the encoded SUIT_Digest
   (detached payload; ES256/ESP256, EdDSA/Ed25519);
5. every severable member present in the envelope matches its digest in the manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from suture.cose import CoseError, decode_sign1, sign1, verify1_with_key
from suture.keys import PrivateKey, PublicKey, key_id
from suture.suit import codepoints as cp
from suture.suit.decoder import decode_envelope
from suture.suit.digest import digest_wrapped, encode_digest, wrapped_matches
from suture.suit.encoder import encode_auth_wrapper, encode_envelope
from suture.suit.errors import (
    SuitAuthenticationError,
    SuitDigestError,
    SuitError,
    SuitSignatureError,
)
from suture.suit.model import Envelope


def _key_list(keys: PublicKey | Sequence[PublicKey]) -> list[PublicKey]:
    key_list = list(keys) if isinstance(keys, Sequence) else [keys]
    if not key_list:
        raise SuitError("no public key given to verify with")
    return key_list


def verify_envelope(data: bytes, keys: PublicKey | Sequence[PublicKey]) -> Envelope:
    """Decode and verify an envelope: manifest digest, signature and severable members.

    Returns the envelope with ``verified`` set and ``signer_key_ids`` holding the key ids of the
    keys whose signatures verified. Raises a :class:`SuitError` subclass otherwise.
    """
    key_list = _key_list(keys)
    envelope = decode_envelope(data)
    auth = envelope.authentication

    # draft section 8.3: an authentication wrapper with no authentication block is rejected.
    if not auth.blocks:
        raise SuitAuthenticationError(
            "authentication-wrapper: a manifest digest but no authentication block; "
            "an unsigned manifest is rejected"
        )
    if auth.digest.algorithm not in cp.DIGEST_ALGORITHMS:
        raise SuitAuthenticationError(
            f"authentication-wrapper digest: algorithm {auth.digest.algorithm} is not supported"
        )
    # The digest covers the manifest as the envelope carries it: bstr head + encoded manifest.
    if not wrapped_matches(auth.digest, envelope.manifest_bstr):
        raise SuitDigestError(
            "authentication-wrapper digest: does not match the manifest (envelope key 3)"
        )

    signers: list[bytes] = []
    reasons: list[str] = []
    for index, block in enumerate(auth.blocks, start=1):
        where = f"authentication block {index} ({block.kind})"
        if block.kind != "COSE_Sign1":
            reasons.append(f"{where}: not supported (only COSE_Sign1)")
            continue
        try:
            signer = _verify_sign1(block.encoded, key_list, auth.digest_encoded)
        except CoseError as exc:
            reasons.append(f"{where}: {exc}")
            continue
        kid = key_id(signer)
        if kid not in signers:
            signers.append(kid)
    if not signers:
        raise SuitSignatureError("; ".join(reasons))

    for name, member in envelope.severable_members.items():
        expected = envelope.manifest.severable_digests[name]
        if expected.algorithm not in cp.DIGEST_ALGORITHMS:
            raise SuitDigestError(
                f"manifest {cp.label(cp.MANIFEST_KEYS, cp.SEVERABLE_MEMBERS[name])}: "
                f"digest algorithm {expected.algorithm} is not supported"
            )
        if not wrapped_matches(expected, member):
            raise SuitDigestError(
                f"envelope {cp.label(cp.ENVELOPE_KEYS, cp.SEVERABLE_MEMBERS[name])}: "
                "does not match its digest in the manifest"
            )
    return replace(envelope, verified=True, signer_key_ids=signers)


def _verify_sign1(block: bytes, keys: list[PublicKey], digest_encoded: bytes) -> PublicKey:
    """Verify one COSE_Sign1 over the encoded SUIT_Digest; the payload should be detached."""
    attached = decode_sign1(block).payload
    if attached is None:
        _, signer = verify1_with_key(block, keys, detached_payload=digest_encoded)
        return signer
    payload, signer = verify1_with_key(block, keys)
    if payload != digest_encoded:
        raise CoseError("the attached payload is not the manifest digest")
    return signer


def sign_envelope(
    data: bytes,
    key: PrivateKey,
    *,
    append: bool = False,
    kid: bytes | None = None,
    alg: int | None = None,
) -> bytes:
    """Sign an envelope (unsigned, or signed by others) with ``key``.

    The manifest digest is recomputed from the manifest; the new COSE_Sign1 (detached payload)
    replaces existing authentication blocks, or is added after them with ``append``. The
    manifest and severable members are kept byte for byte.
    """
    envelope = decode_envelope(data)
    digest = digest_wrapped(envelope.manifest_bstr)
    digest_encoded = encode_digest(digest)
    blocks = [b.encoded for b in envelope.authentication.blocks] if append else []
    if append and envelope.authentication.digest_encoded != digest_encoded:
        raise SuitDigestError(
            "authentication-wrapper digest: does not match the manifest; "
            "cannot add a signature beside signatures over another manifest"
        )
    try:
        blocks.append(sign1(None, key, detached_payload=digest_encoded, kid=kid, alg=alg))
    except CoseError as exc:
        raise SuitError(f"cannot sign: {exc}") from None
    return encode_envelope(
        auth_wrapper=encode_auth_wrapper(digest_encoded, blocks),
        manifest=envelope.manifest_bstr,
        members=envelope.severable_members,
        integrated_payloads=envelope.integrated_payloads,
        extensions=envelope.extensions,
        tagged=envelope.tagged,
    )
