"""Build SUIT envelopes from a description: the manifest, its sequences, and the signature.

The manifest follows the draft's example shapes (draft-ietf-suit-manifest appendix B):

- common: the components, and a shared sequence that sets vendor id, class id, image digest,
  image size (and component slot) per component and checks vendor and class id;
- install (when a component has a uri or an integrated image): set uri, fetch, image-match;
- validate: image-match for every component;
- invoke (when a component asks for it): invoke;
- text, when the description has any.

A component with ``delta`` is fetched as a delta patch (docs/formats/delta.md): the shared
sequence also sets the source image's digest and size and the patch's (suture's parameters
-259..-262) and checks condition -258, that the device holds that source image, right after
the vendor and class identifiers; the image digest and size stay the target's.

With one component, set-component-index is left out (index 0 is the default). Members listed
as ``severable`` go in the envelope and the manifest keeps only their digest.

An encrypted component (draft-ietf-suit-firmware-encryption, "fetch + copy") gets a second
component after the list, its id followed by ``'encrypted'``, that receives the ciphertext:
the install sequence fetches the ciphertext into it and checks the ciphertext's digest (before
any decryption: a wrong payload costs no decryption nor flash writes), then copies it into the
component with the SUIT_Encryption_Info (parameter 19) and source-component set, which
decrypts, and checks the plaintext's digest (the image digest of the shared sequence: the
manifest's digest covers the plaintext).

A description with ``sbom`` binds the CycloneDX SBOM: its SHA-256 is the manifest's key -257.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import cbor2

from suture.cose import CoseError
from suture.cose.encrypt import RecipientKey, encrypt_detached
from suture.cose.mac0 import SymmetricKey
from suture.keys import PrivateKey
from suture.suit import codepoints as cp
from suture.suit.authentication import sign_envelope
from suture.suit.description import ComponentDescription, UpdateDescription, parse_description
from suture.suit.digest import digest_bytes, digest_wrapped, encode_digest
from suture.suit.encoder import encode_auth_wrapper, encode_envelope
from suture.suit.errors import SuitEncryptionError
from suture.suit.sbom import parse_sbom

ENCRYPTED_SUFFIX: Final = b"encrypted"


@dataclass(frozen=True)
class BuiltManifest:
    """An encoded manifest and what travels beside it."""

    manifest: bytes
    severed: dict[str, bytes]
    integrated_payloads: dict[str, bytes]
    #: uri -> ciphertext of each encrypted component fetched by uri (to publish at that uri).
    encrypted_payloads: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Release:
    """A built envelope and the encrypted payloads to publish beside it."""

    envelope: bytes
    encrypted_payloads: dict[str, bytes]

# Reporting policy used by the draft's examples: record and report on success and failure.
REPORT_ALL = (
    cp.REPORT_RECORD_ON_SUCCESS
    | cp.REPORT_RECORD_ON_FAILURE
    | cp.REPORT_SYSINFO_ON_SUCCESS
    | cp.REPORT_SYSINFO_ON_FAILURE
)
REPORT_ON_FAILURE = cp.REPORT_RECORD_ON_FAILURE


def _select(sequence: list[Any], index: int, count: int) -> None:
    if count > 1:
        sequence += [cp.DIRECTIVE_SET_COMPONENT_INDEX, index]


def _encrypt(
    component: ComponentDescription, recipients: Sequence[RecipientKey]
) -> tuple[bytes, bytes]:
    assert component.encryption is not None
    assert component.plaintext is not None
    if not recipients:
        raise SuitEncryptionError(
            f"component {_id_text(component.identifier)} is encrypted: give the recipients "
            "(key-encryption keys or device public keys) to encrypt it for"
        )
    try:
        return encrypt_detached(component.plaintext, component.encryption, recipients)
    except CoseError as exc:
        raise SuitEncryptionError(f"cannot encrypt {_id_text(component.identifier)}: {exc}"
                                  ) from None


def _id_text(identifier: list[bytes]) -> str:
    return "[" + ", ".join(repr(e) for e in identifier) + "]"


def build_manifest(
    update: UpdateDescription, recipients: Sequence[RecipientKey] = ()
) -> BuiltManifest:
    """Encode the manifest (encrypting the components that ask for it for ``recipients``)."""
    encrypted = [c for c in update.components if c.encryption is not None]
    count = len(update.components) + len(encrypted)
    staging_index = {id(c): len(update.components) + i for i, c in enumerate(encrypted)}
    shared: list[Any] = []
    install: list[Any] = []
    validate: list[Any] = []
    invoke: list[Any] = []
    payloads: dict[str, bytes] = {}
    fetched: dict[str, bytes] = {}
    staging_shared: list[Any] = []
    for index, component in enumerate(update.components):
        params: dict[int, Any] = {
            cp.PARAMETER_VENDOR_IDENTIFIER: component.vendor_id.bytes,
            cp.PARAMETER_CLASS_IDENTIFIER: component.class_id.bytes,
            cp.PARAMETER_IMAGE_DIGEST: encode_digest(component.digest),
            cp.PARAMETER_IMAGE_SIZE: component.size,
        }
        if component.slot is not None:
            params[cp.PARAMETER_COMPONENT_SLOT] = component.slot
        delta = component.delta
        if delta is not None:
            params |= {
                cp.PARAMETER_SUTURE_DELTA_SOURCE_DIGEST: encode_digest(delta.source_digest),
                cp.PARAMETER_SUTURE_DELTA_SOURCE_SIZE: delta.source_size,
                cp.PARAMETER_SUTURE_DELTA_DIGEST: encode_digest(delta.digest),
                cp.PARAMETER_SUTURE_DELTA_SIZE: delta.size,
            }
        _select(shared, index, count)
        shared += [
            cp.DIRECTIVE_OVERRIDE_PARAMETERS,
            params,
            cp.CONDITION_VENDOR_IDENTIFIER,
            REPORT_ALL,
            cp.CONDITION_CLASS_IDENTIFIER,
            REPORT_ALL,
        ]
        if component.delta is not None:
            # in the shared sequence: the source is checked before any other sequence runs,
            # so before anything is fetched or written
            shared += [cp.CONDITION_SUTURE_DELTA_SOURCE, REPORT_ALL]
        if component.encryption is not None and component.uri is not None:
            info, ciphertext = _encrypt(component, recipients)
            staging = staging_index[id(component)]
            staging_shared += [
                cp.DIRECTIVE_SET_COMPONENT_INDEX,
                staging,
                cp.DIRECTIVE_OVERRIDE_PARAMETERS,
                {
                    cp.PARAMETER_VENDOR_IDENTIFIER: component.vendor_id.bytes,
                    cp.PARAMETER_CLASS_IDENTIFIER: component.class_id.bytes,
                    cp.PARAMETER_IMAGE_DIGEST: encode_digest(digest_bytes(ciphertext)),
                    cp.PARAMETER_IMAGE_SIZE: len(ciphertext),
                },
                cp.CONDITION_VENDOR_IDENTIFIER,
                REPORT_ALL,
                cp.CONDITION_CLASS_IDENTIFIER,
                REPORT_ALL,
            ]
            install += [
                cp.DIRECTIVE_SET_COMPONENT_INDEX,
                staging,
                cp.DIRECTIVE_OVERRIDE_PARAMETERS,
                {cp.PARAMETER_URI: component.uri},
                cp.DIRECTIVE_FETCH,
                REPORT_ON_FAILURE,
                cp.CONDITION_IMAGE_MATCH,
                REPORT_ALL,
                cp.DIRECTIVE_SET_COMPONENT_INDEX,
                index,
                cp.DIRECTIVE_OVERRIDE_PARAMETERS,
                {cp.PARAMETER_ENCRYPTION_INFO: info, cp.PARAMETER_SOURCE_COMPONENT: staging},
                cp.DIRECTIVE_COPY,
                REPORT_ON_FAILURE,
                cp.CONDITION_IMAGE_MATCH,
                REPORT_ALL,
            ]
            if component.integrated_payload is not None:
                payloads[component.uri] = ciphertext
            else:
                fetched[component.uri] = ciphertext
        elif component.uri is not None:
            _select(install, index, count)
            install += [
                cp.DIRECTIVE_OVERRIDE_PARAMETERS,
                {cp.PARAMETER_URI: component.uri},
                cp.DIRECTIVE_FETCH,
                REPORT_ON_FAILURE,
                cp.CONDITION_IMAGE_MATCH,
                REPORT_ALL,
            ]
            if component.integrated_payload is not None:
                payloads[component.uri] = component.integrated_payload
        _select(validate, index, count)
        validate += [cp.CONDITION_IMAGE_MATCH, REPORT_ALL]
        if component.invoke:
            _select(invoke, index, count)
            invoke += [cp.DIRECTIVE_INVOKE, REPORT_ON_FAILURE]

    shared += staging_shared
    identifiers = [list(c.identifier) for c in update.components]
    identifiers += [[*c.identifier, ENCRYPTED_SUFFIX] for c in encrypted]
    common = {
        cp.COMMON_COMPONENTS: identifiers,
        cp.COMMON_SHARED_SEQUENCE: cbor2.dumps(shared),
    }
    manifest: dict[int, Any] = {
        cp.MANIFEST_VERSION: cp.SUPPORTED_MANIFEST_VERSION,
        cp.MANIFEST_SEQUENCE_NUMBER: update.sequence_number,
        cp.MANIFEST_COMMON: cbor2.dumps(common),
    }
    if update.reference_uri is not None:
        manifest[cp.MANIFEST_REFERENCE_URI] = update.reference_uri
    manifest[cp.MANIFEST_VALIDATE] = cbor2.dumps(validate)
    if invoke:
        manifest[cp.MANIFEST_INVOKE] = cbor2.dumps(invoke)
    if update.sbom is not None:
        manifest[cp.MANIFEST_SUTURE_SBOM] = parse_sbom(update.sbom).digest.to_cbor()

    members: dict[str, bytes] = {}
    if install:
        members["install"] = cbor2.dumps(install)
    text = _text_map(update)
    if text is not None:
        members["text"] = text
    severed: dict[str, bytes] = {}
    for name in ("install", "text"):
        if name not in members:
            continue
        key = cp.SEVERABLE_MEMBERS[name]
        if name in update.severable:
            severed[name] = members[name]
            manifest[key] = digest_wrapped(members[name]).to_cbor()
        else:
            manifest[key] = members[name]
    return BuiltManifest(cbor2.dumps(manifest), severed, payloads, fetched)


def _text_map(update: UpdateDescription) -> bytes | None:
    by_name = {name: code for code, name in cp.TEXT_KEYS.items()}
    by_component_name = {name: code for code, name in cp.TEXT_COMPONENT_KEYS.items()}
    entries: dict[Any, Any] = {by_name[k]: v for k, v in update.text.items()}
    for component in update.components:
        if component.text:
            fields = {by_component_name[k]: v for k, v in component.text.items()}
            entries[tuple(component.identifier)] = fields
    if not entries:
        return None
    return cbor2.dumps({update.text_language: entries})


def create_unsigned_release(
    description: Mapping[str, Any],
    *,
    base_dir: Path,
    recipients: Sequence[RecipientKey] = (),
) -> Release:
    """An envelope whose authentication wrapper holds only the manifest digest, and the
    ciphertexts of its encrypted components fetched by uri.

    Verification rejects the envelope until it is signed (:func:`suture.suit.sign_envelope`).
    """
    update = parse_description(description, base_dir=base_dir)
    built = build_manifest(update, recipients)
    digest_encoded = encode_digest(digest_wrapped(built.manifest))
    envelope = encode_envelope(
        auth_wrapper=encode_auth_wrapper(digest_encoded, []),
        manifest=built.manifest,
        members=built.severed,
        integrated_payloads=built.integrated_payloads,
    )
    return Release(envelope=envelope, encrypted_payloads=built.encrypted_payloads)


def create_release(
    description: Mapping[str, Any],
    key: PrivateKey | SymmetricKey,
    *,
    base_dir: Path,
    recipients: Sequence[RecipientKey] = (),
    kid: bytes | None = None,
    alg: int | None = None,
) -> Release:
    """Build and sign (or MAC, with a symmetric key) an envelope; encrypted components are
    encrypted for ``recipients`` and their ciphertexts returned to publish at their uri."""
    unsigned = create_unsigned_release(description, base_dir=base_dir, recipients=recipients)
    return Release(
        envelope=sign_envelope(unsigned.envelope, key, kid=kid, alg=alg),
        encrypted_payloads=unsigned.encrypted_payloads,
    )


def _only_envelope(release: Release) -> bytes:
    if release.encrypted_payloads:
        raise SuitEncryptionError(
            "the description has encrypted components fetched by uri: build it with "
            "create_release, which also returns their ciphertexts"
        )
    return release.envelope


def create_unsigned_envelope(description: Mapping[str, Any], *, base_dir: Path) -> bytes:
    """An envelope whose authentication wrapper holds only the manifest digest.

    Verification rejects it until it is signed (:func:`suture.suit.sign_envelope`).
    """
    return _only_envelope(create_unsigned_release(description, base_dir=base_dir))


def create_envelope(
    description: Mapping[str, Any],
    key: PrivateKey,
    *,
    base_dir: Path,
    kid: bytes | None = None,
    alg: int | None = None,
) -> bytes:
    """Build and sign an envelope from a description (see :mod:`suture.suit.description`).

    Image files are read relative to ``base_dir``. The result is a tag-107 envelope whose
    authentication wrapper is ``[bstr(SUIT_Digest SHA-256), bstr(COSE_Sign1, detached)]``, as
    in the draft's examples; ``kid`` (unprotected header) is left out unless given.
    """
    return _only_envelope(create_release(description, key, base_dir=base_dir, kid=kid, alg=alg))
