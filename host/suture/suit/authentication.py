"""Verify and sign SUIT envelopes (draft-ietf-suit-manifest section 8.3 and section 6.2), and
their dependency manifests (draft-ietf-suit-trust-domains).

Verification is pure: bytes and keys in, a verified :class:`Envelope` or a SuitError out.
Order of the checks:

1. the envelope decodes (structure, limits);
2. the authentication wrapper holds at least one authentication block (a digest alone is an
   unauthenticated manifest, which the draft forbids);
3. the SUIT_Digest matches the bstr-wrapped manifest;
4. at least one block verifies over the encoded SUIT_Digest (detached payload): a COSE_Sign1
   (ES256/ESP256, EdDSA/Ed25519) with a given public key, or a COSE_Mac0 (HMAC 256/256,
   384/384, 512/512) with a given symmetric key;
5. every severable member present in the envelope matches its digest in the manifest;
6. every dependency manifest the manifest names is found (integrated in the envelope under
   its URI, or supplied by the caller), its authentication-wrapper digest is the digest the
   dependent sets for it, its size is the size the dependent sets (if any), and it verifies
   by steps 1-6 with the dependency keys (its own trust anchors).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import replace

from suture.cose import CoseError, decode_sign1, sign1, verify1_with_key
from suture.cose.mac0 import HMAC_256_256, SymmetricKey, decode_mac0, mac0, verify_mac0
from suture.keys import PrivateKey, PublicKey, key_id
from suture.suit import codepoints as cp
from suture.suit import limits
from suture.suit.decoder import decode_envelope
from suture.suit.digest import digest_wrapped, encode_digest, wrapped_matches
from suture.suit.encoder import encode_auth_wrapper, encode_envelope
from suture.suit.errors import (
    SuitAuthenticationError,
    SuitDependencyError,
    SuitDigestError,
    SuitError,
    SuitLimitError,
    SuitSignatureError,
)
from suture.suit.model import DependencyInfo, Envelope, VerifiedDependency

#: A trust anchor: a public key for COSE_Sign1 blocks, a symmetric key for COSE_Mac0 blocks.
VerificationKey = PublicKey | SymmetricKey


def _key_list(keys: VerificationKey | Sequence[VerificationKey]) -> list[VerificationKey]:
    key_list = list(keys) if isinstance(keys, Sequence) else [keys]
    if not key_list:
        raise SuitError("no public key given to verify with")
    return key_list


def verify_envelope(
    data: bytes,
    keys: VerificationKey | Sequence[VerificationKey],
    *,
    dependency_keys: VerificationKey | Sequence[VerificationKey] | None = None,
    dependencies: Mapping[str, bytes] | None = None,
) -> Envelope:
    """Decode and verify an envelope: manifest digest, signature or MAC, severable members,
    and its dependency manifests.

    ``keys`` are the trust anchors of this envelope: public keys (COSE_Sign1) and symmetric
    keys (COSE_Mac0). ``dependency_keys`` are those of its dependencies, and of theirs (by
    default the same ``keys``); ``dependencies`` supplies dependency envelopes that are not
    integrated, by the URI the manifest names them with.

    Returns the envelope with ``verified`` set, ``signer_key_ids`` holding the key ids of the
    keys that verified, and ``dependencies`` holding each verified dependency. Raises a
    :class:`SuitError` subclass otherwise.
    """
    key_list = _key_list(keys)
    dep_list = key_list if dependency_keys is None else _key_list(dependency_keys)
    return _verify(data, key_list, dep_list, dependencies or {}, 0)


def _verify(
    data: bytes,
    key_list: list[VerificationKey],
    dep_list: list[VerificationKey],
    supplied: Mapping[str, bytes],
    depth: int,
) -> Envelope:
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

    public = [k for k in key_list if not isinstance(k, SymmetricKey)]
    secret = [k for k in key_list if isinstance(k, SymmetricKey)]
    signers: list[bytes] = []
    reasons: list[str] = []
    for index, block in enumerate(auth.blocks, start=1):
        where = f"authentication block {index} ({block.kind})"
        if block.kind not in ("COSE_Sign1", "COSE_Mac0"):
            reasons.append(f"{where}: not supported (only COSE_Sign1 and COSE_Mac0)")
            continue
        try:
            if block.kind == "COSE_Mac0":
                if not secret:
                    raise CoseError("no symmetric (MAC) key was given")
                kid = _verify_mac0(block.encoded, secret, auth.digest_encoded).key_id
            else:
                if not public:
                    raise CoseError("no public key was given")
                kid = key_id(_verify_sign1(block.encoded, public, auth.digest_encoded))
        except CoseError as exc:
            reasons.append(f"{where}: {exc}")
            continue
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
    verified = [
        _verify_dependency(info, envelope, dep_list, supplied, depth)
        for info in envelope.manifest.dependency_info
    ]
    return replace(envelope, verified=True, signer_key_ids=signers, dependencies=verified)


def _verify_dependency(
    info: DependencyInfo,
    dependent: Envelope,
    dep_list: list[VerificationKey],
    supplied: Mapping[str, bytes],
    depth: int,
) -> VerifiedDependency:
    where = f"dependency {info.index}" + (f" ({info.uri})" if info.uri else "")
    if depth + 1 > limits.MAX_DEPENDENCY_DEPTH:
        raise SuitLimitError(
            f"{where}: dependencies nested deeper than {limits.MAX_DEPENDENCY_DEPTH} levels"
        )
    if info.digest is None:
        raise SuitDependencyError(
            f"{where}: the manifest sets no image-digest for it (the digest of its manifest)"
        )
    if info.uri is None:
        raise SuitDependencyError(f"{where}: the manifest sets no uri for it")
    if info.uri in dependent.integrated_payloads:
        data, source = dependent.integrated_payloads[info.uri], "integrated"
    elif info.uri in supplied:
        data, source = supplied[info.uri], "supplied"
    else:
        raise SuitDependencyError(
            f"{where}: not integrated in the envelope and not supplied; "
            "give its envelope for this uri"
        )
    if info.size is not None and len(data) != info.size:
        raise SuitDependencyError(
            f"{where}: {len(data)} bytes, the dependent says {info.size}"
        )
    try:
        inner = decode_envelope(data)
        found = inner.authentication.digest
        if found.algorithm != info.digest.algorithm or not hmac.compare_digest(
            found.value, info.digest.value
        ):
            raise SuitDigestError(
                "its manifest digest is not the one the dependent names "
                f"({found.value.hex()[:16]}…, expected {info.digest.value.hex()[:16]}…)"
            )
        verified = _verify(data, dep_list, dep_list, supplied, depth + 1)
    except SuitError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    return VerifiedDependency(info=info, source=source, envelope=verified)


def _verify_mac0(block: bytes, keys: list[SymmetricKey], digest_encoded: bytes) -> SymmetricKey:
    """Verify one COSE_Mac0 over the encoded SUIT_Digest; the payload should be detached."""
    if decode_mac0(block).payload is None:
        return verify_mac0(block, keys, detached_payload=digest_encoded)[1]
    payload, key = verify_mac0(block, keys)
    if payload != digest_encoded:
        raise CoseError("the attached payload is not the manifest digest")
    return key


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
    key: PrivateKey | SymmetricKey,
    *,
    append: bool = False,
    kid: bytes | None = None,
    alg: int | None = None,
) -> bytes:
    """Sign an envelope (unsigned, or signed by others) with ``key``: a COSE_Sign1 with a
    private key, a COSE_Mac0 (HMAC 256/256 unless ``alg`` says otherwise) with a symmetric key,
    whose kid goes in the header unless ``kid`` is given.

    The manifest digest is recomputed from the manifest; the new block (detached payload)
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
        if isinstance(key, SymmetricKey):
            blocks.append(
                mac0(None, key, detached_payload=digest_encoded,
                     kid=key.kid if kid is None else kid,
                     alg=HMAC_256_256 if alg is None else alg)
            )
        else:
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
