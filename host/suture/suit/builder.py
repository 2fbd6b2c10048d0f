"""Build SUIT envelopes from a description: the manifest, its sequences, and the signature.

The manifest follows the draft's example shapes (draft-ietf-suit-manifest appendix B):

- common: the components, and a shared sequence that sets vendor id, class id, image digest,
  image size (and component slot) per component and checks vendor and class id;
- install (when a component has a uri or an integrated image): set uri, fetch, image-match;
- validate: image-match for every component;
- invoke (when a component asks for it): invoke;
- text, when the description has any.

With one component, set-component-index is left out (index 0 is the default). Members listed
as ``severable`` go in the envelope and the manifest keeps only their digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cbor2

from suture.keys import PrivateKey
from suture.suit import codepoints as cp
from suture.suit.authentication import sign_envelope
from suture.suit.description import UpdateDescription, parse_description
from suture.suit.digest import digest_wrapped, encode_digest
from suture.suit.encoder import encode_auth_wrapper, encode_envelope

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


def build_manifest(update: UpdateDescription) -> tuple[bytes, dict[str, bytes], dict[str, bytes]]:
    """Encode the manifest; returns (manifest, severed members, integrated payloads)."""
    count = len(update.components)
    shared: list[Any] = []
    install: list[Any] = []
    validate: list[Any] = []
    invoke: list[Any] = []
    payloads: dict[str, bytes] = {}
    for index, component in enumerate(update.components):
        params: dict[int, Any] = {
            cp.PARAMETER_VENDOR_IDENTIFIER: component.vendor_id.bytes,
            cp.PARAMETER_CLASS_IDENTIFIER: component.class_id.bytes,
            cp.PARAMETER_IMAGE_DIGEST: encode_digest(component.digest),
            cp.PARAMETER_IMAGE_SIZE: component.size,
        }
        if component.slot is not None:
            params[cp.PARAMETER_COMPONENT_SLOT] = component.slot
        _select(shared, index, count)
        shared += [
            cp.DIRECTIVE_OVERRIDE_PARAMETERS,
            params,
            cp.CONDITION_VENDOR_IDENTIFIER,
            REPORT_ALL,
            cp.CONDITION_CLASS_IDENTIFIER,
            REPORT_ALL,
        ]
        if component.uri is not None:
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

    common = {
        cp.COMMON_COMPONENTS: [list(c.identifier) for c in update.components],
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
    return cbor2.dumps(manifest), severed, payloads


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


def create_unsigned_envelope(description: Mapping[str, Any], *, base_dir: Path) -> bytes:
    """An envelope whose authentication wrapper holds only the manifest digest.

    Verification rejects it until it is signed (:func:`suture.suit.sign_envelope`).
    """
    update = parse_description(description, base_dir=base_dir)
    manifest, members, payloads = build_manifest(update)
    digest_encoded = encode_digest(digest_wrapped(manifest))
    return encode_envelope(
        auth_wrapper=encode_auth_wrapper(digest_encoded, []),
        manifest=manifest,
        members=members,
        integrated_payloads=payloads,
    )


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
    unsigned = create_unsigned_envelope(description, base_dir=base_dir)
    return sign_envelope(unsigned, key, kid=kid, alg=alg)
