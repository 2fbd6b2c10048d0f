"""Publish a release: sign its SUIT envelope with the vendor key, verify it, store it.

The envelope is built from a description file (see docs/suit.md) by :mod:`suture.suit`, then
verified against the vendor's own public key before anything is written: the repository never
holds a release its customers' schedulers would refuse. Deltas from earlier releases
(``delta_from``) are built, signed and verified the same way (repository/deltas.py) and stored
with the release, or nothing is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suture import keys, suit
from suture.vendor_services.repository.deltas import build_deltas
from suture.vendor_services.repository.store import ReleaseError, ReleaseStore


@dataclass(frozen=True)
class ReleaseFiles:
    """What a release is made of, as files on the publisher's disk."""

    description: Path
    sbom: Path
    notes: Path
    payload: Path | None = None  # default: the description's single component file


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ReleaseError(f"cannot read {what} {path}: {e.strerror or e}") from e


def publish_release(
    store: ReleaseStore,
    release_id: str,
    files: ReleaseFiles,
    key: keys.PrivateKey,
    *,
    published_at: int,
    metadata: dict[str, Any] | None = None,
    delta_from: Sequence[str] = (),
) -> dict[str, Any]:
    """Build, sign, verify and store; returns the release's ``release.json``. The manifest
    binds the SBOM (``files.sbom``): a description without an ``sbom`` entry gets it; one that
    names another file is refused, as the scheduler would refuse the release. Each release of
    ``delta_from`` (published, same component, vendor and class, earlier) gets a delta to this
    one, stored with it."""
    try:
        description = suit.load_description(files.description)
        base = files.description.parent
        if "sbom" not in description:
            description = {**description, "sbom": str(files.sbom.resolve())}
        elif (base / str(description["sbom"])).resolve() != files.sbom.resolve():
            raise ReleaseError(f"the description binds the SBOM {description['sbom']}, "
                               f"not {files.sbom}")
        components = description.get("components")
        payload_path = files.payload
        if payload_path is None:
            if not isinstance(components, list) or len(components) != 1:
                raise ReleaseError("the description must name exactly one component file")
            payload_path = base / str(components[0].get("file", ""))
        envelope = suit.create_envelope(description, key, base_dir=base)
        verified = suit.verify_envelope(envelope, [key.public_key()])
    except suit.SuitError as e:
        raise ReleaseError(f"cannot build the envelope: {e}") from e
    payload = _read(payload_path, "payload")
    digests = [
        c.image_digest.value for c in verified.manifest.component_info if c.image_digest
    ]
    if hashlib.sha256(payload).digest() not in digests:
        raise ReleaseError(f"{payload_path} is not the image the manifest describes")
    if store.exists(release_id):
        raise ReleaseError(f"release {release_id!r} is already published")
    deltas = build_deltas(store, release_id, list(delta_from), description=description,
                          release=verified, payload=payload, key=key)
    return store.publish(
        release_id,
        envelope=envelope,
        payload=payload,
        sbom=_read(files.sbom, "SBOM"),
        notes=_read(files.notes, "release notes"),
        published_at=published_at,
        metadata=metadata,
        deltas=deltas,
    )
