"""Encrypted payloads of a verified envelope (draft-ietf-suit-firmware-encryption): decrypt a
component's payload with the host's keys and check it against the manifest.

A component is encrypted when its parameters hold a SUIT_Encryption_Info (parameter 19, a
COSE_Encrypt with a detached ciphertext). The ciphertext is, in this order of preference: the
one the caller gives (fetched from the uri), the component's content parameter (directive
write), or the integrated payload its source component names (directive copy). Checks:

1. the ciphertext matches the source component's image digest and size, when the manifest
   sets them (before any decryption);
2. a given key opens a recipient; an AEAD tag verifies;
3. the plaintext matches the component's image digest and size: the manifest's own, or, when
   it sets none, those of the component with the same identifier in a verified dependency
   (the hospital's manifest over the vendor's, or the draft's dependency example).

Building encrypted releases is :func:`suture.suit.builder.create_release`.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from suture.cose import CoseError
from suture.cose.encrypt import DecryptionKey, decrypt_detached
from suture.suit.digest import digest_bytes
from suture.suit.errors import SuitEncryptionError
from suture.suit.model import ComponentInfo, Digest, Envelope


@dataclass(frozen=True)
class DecryptedPayload:
    """A component's plaintext and what it was checked against."""

    index: int
    plaintext: bytes
    #: "manifest", "dependency N" or None (no digest anywhere: nothing to check against).
    checked_against: str | None


def _matches(digest: Digest, data: bytes) -> bool:
    return hmac.compare_digest(digest_bytes(data, digest.algorithm).value, digest.value)


def _expected(envelope: Envelope, info: ComponentInfo) -> tuple[ComponentInfo, str] | None:
    if info.image_digest is not None:
        return info, "manifest"
    for dependency in envelope.dependencies:
        for candidate in dependency.envelope.manifest.component_info:
            if candidate.identifier == info.identifier and candidate.image_digest is not None:
                return candidate, f"dependency {dependency.info.index}"
    return None


def _ciphertext(envelope: Envelope, info: ComponentInfo, given: bytes | None) -> bytes:
    if given is not None:
        return given
    content = info.parameters.get("content")
    if isinstance(content, bytes):
        return content
    source = info.parameters.get("source-component")
    components = envelope.manifest.component_info
    if isinstance(source, int) and 0 <= source < len(components):
        uri = components[source].uri
        if uri is not None and uri in envelope.integrated_payloads:
            return envelope.integrated_payloads[uri]
        if uri is not None:
            raise SuitEncryptionError(
                f"component {info.index}: its ciphertext is fetched from {uri}; give it"
            )
    raise SuitEncryptionError(
        f"component {info.index}: no ciphertext (no content parameter, no integrated source)"
    )


def decrypt_component(
    envelope: Envelope,
    index: int,
    keys: Sequence[DecryptionKey],
    *,
    ciphertext: bytes | None = None,
) -> DecryptedPayload:
    """Decrypt component ``index`` of a verified envelope and check the plaintext.

    Raises :class:`SuitEncryptionError` when the component is not encrypted, the ciphertext
    or plaintext does not match the manifest, or no key opens it.
    """
    if not envelope.verified:
        raise SuitEncryptionError("verify the envelope before decrypting its payloads")
    components = envelope.manifest.component_info
    if not 0 <= index < len(components):
        raise SuitEncryptionError(f"component {index}: out of range ({len(components)})")
    info = components[index]
    if info.encryption_info is None:
        raise SuitEncryptionError(f"component {index}: not encrypted (no encryption-info)")
    data = _ciphertext(envelope, info, ciphertext)
    source = info.parameters.get("source-component")
    if isinstance(source, int) and 0 <= source < len(components) and source != index:
        staged = components[source]
        if staged.image_size is not None and staged.image_size != len(data):
            raise SuitEncryptionError(
                f"component {index}: the ciphertext is {len(data)} bytes, the manifest says "
                f"{staged.image_size}"
            )
        if staged.image_digest is not None and not _matches(staged.image_digest, data):
            raise SuitEncryptionError(
                f"component {index}: the ciphertext does not match its digest in the manifest "
                "(checked before decrypting)"
            )
    try:
        plaintext = decrypt_detached(info.encryption_info, data, keys)
    except CoseError as exc:
        raise SuitEncryptionError(f"component {index}: {exc}") from None
    expected = _expected(envelope, info)
    if expected is None:
        return DecryptedPayload(index, plaintext, None)
    reference, where = expected
    if reference.image_size is not None and reference.image_size != len(plaintext):
        raise SuitEncryptionError(
            f"component {index}: the plaintext is {len(plaintext)} bytes, the {where} says "
            f"{reference.image_size}"
        )
    assert reference.image_digest is not None
    if not _matches(reference.image_digest, plaintext):
        raise SuitEncryptionError(
            f"component {index}: the decrypted image does not match its digest in the {where}"
        )
    return DecryptedPayload(index, plaintext, where)
