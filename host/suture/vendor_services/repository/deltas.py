"""Deltas published with a release (docs/formats/delta.md): the patch from an earlier release's
image to the new one, and its SUIT envelope signed with the vendor key.

The scheduler serves a delta to a device whose installed image is its source; the device
verifies the delta's manifest against the vendor's keys, so the vendor builds and signs it here,
at publication (``suture vendor publish --delta-from RELEASE``). A source must be a release of
the same repository, of the same component, vendor and class, with a lower sequence number;
the patch is applied on the host and must give the new image before anything is stored.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suture import delta, keys, suit
from suture.vendor_services.repository.store import DeltaFiles, ReleaseError, ReleaseStore

#: What a delta's component keeps of the release's component (the rest is the patch's).
CARRIED_COMPONENT_KEYS = ("vendor-id", "class-id", "slot", "invoke", "text")
CARRIED_TOP_KEYS = ("sequence-number", "vendor-id", "class-id")


def _image(manifest: suit.Manifest, what: str) -> suit.ComponentInfo:
    images = [c for c in manifest.component_info if c.image_digest is not None]
    if len(images) != 1:
        raise ReleaseError(f"{what} is not a release of one component: no delta of it")
    return images[0]


def _description(description: dict[str, Any], component: dict[str, Any],
                 built: delta.DeltaRelease, default_uri: str) -> dict[str, Any]:
    """The delta's description: the release's identity and sequence number, its component
    fetching the patch from the release's own ``uri``, or else ``default_uri`` (the patch's
    path in the repository)."""
    uri = component.get("uri")
    if not isinstance(uri, str) or uri.startswith("#"):
        uri = default_uri
    ident = component.get("id")
    if not isinstance(ident, list):
        raise ReleaseError("the release's component has no id")
    carried = {k: component[k] for k in CARRIED_COMPONENT_KEYS if k in component}
    top = {k: description[k] for k in CARRIED_TOP_KEYS if k in description}
    return {**top, "components": [{**carried, **built.component(ident, uri)}]}


def build_deltas(
    store: ReleaseStore,
    release_id: str,
    sources: Sequence[str],
    *,
    description: dict[str, Any],
    release: suit.Envelope,
    payload: bytes,
    key: keys.PrivateKey,
) -> list[DeltaFiles]:
    """A signed, verified delta from each release of ``sources`` (published in ``store``) to
    the release ``release_id`` being published (its description, its verified envelope and its
    payload). Raises ``ReleaseError`` for an unknown source, one of another component, vendor
    or class, one not earlier, a source named twice, or a release a delta cannot describe (not
    one component, encrypted)."""
    if len(set(sources)) != len(sources):
        raise ReleaseError("a delta source is named twice")
    if not sources:
        return []
    components = description.get("components")
    if not isinstance(components, list) or len(components) != 1 or not isinstance(
            components[0], dict):
        raise ReleaseError("a delta is built for a release of one component")
    if "encryption" in components[0]:
        raise ReleaseError("the release is encrypted: a delta would carry its image in the clear")
    target = _image(release.manifest, "the release")
    sequence = release.manifest.sequence_number
    out = []
    for source_id in sources:
        if not store.exists(source_id):
            raise ReleaseError(f"no published release {source_id!r} to build a delta from")
        try:
            source_manifest = suit.decode_envelope(
                store.artefact(source_id, "envelope").path.read_bytes()).manifest
        except (OSError, suit.SuitError) as e:
            raise ReleaseError(f"release {source_id}: its envelope cannot be read: {e}") from e
        source = _image(source_manifest, f"release {source_id}")
        if (source.identifier, source.vendor_id, source.class_id) != (
                target.identifier, target.vendor_id, target.class_id):
            raise ReleaseError(f"release {source_id} is of another component, vendor or class")
        if source_manifest.sequence_number >= sequence:
            raise ReleaseError(
                f"release {source_id} (sequence number {source_manifest.sequence_number}) is "
                f"not earlier than this release ({sequence})")
        try:
            source_image = store.artefact(source_id, "payload").path.read_bytes()
        except OSError as e:
            raise ReleaseError(f"release {source_id}: cannot read its payload: {e}") from e
        digest = hashlib.sha256(source_image).digest()
        if source.image_digest is None or digest != source.image_digest.value:
            raise ReleaseError(f"release {source_id}: its payload is not its manifest's image")
        out.append(_signed(source_id, source_image, source_manifest.sequence_number,
                           _Target(description, components[0], payload,
                                   f"{release_id}/deltas/{source_id}/patch"), key))
    return out


@dataclass(frozen=True)
class _Target:
    description: dict[str, Any]
    component: dict[str, Any]
    payload: bytes
    default_uri: str


def _signed(source_id: str, source: bytes, source_sequence: int, target: _Target,
            key: keys.PrivateKey) -> DeltaFiles:
    try:
        built = delta.make_delta(source, target.payload)
        if delta.apply(source, built.patch) != target.payload:
            raise ReleaseError(f"the patch from {source_id} does not give the release's image")
        description = _description(target.description, target.component, built,
                                   target.default_uri)
        with tempfile.TemporaryDirectory() as tmp:
            envelope = suit.create_envelope(description, key, base_dir=Path(tmp))
        verified = suit.verify_envelope(envelope, [key.public_key()])
    except delta.DeltaError as e:
        raise ReleaseError(f"cannot build the delta from {source_id}: {e}") from e
    except suit.SuitError as e:
        raise ReleaseError(f"cannot build the delta envelope from {source_id}: {e}") from e
    named = _image(verified.manifest, "the delta").parameters.get("suture-delta-digest")
    if getattr(named, "value", None) != built.digest:
        raise ReleaseError(f"the delta envelope from {source_id} does not name its patch")
    return DeltaFiles(source_id, built.source_digest.hex(), source_sequence, envelope,
                      built.patch)
