"""Releases on disk: one directory per release, written once, never changed.

::

    <data>/releases/<release-id>/
        envelope.suit   the signed SUIT envelope
        payload.bin     the payload it describes
        sbom.json       the software bill of materials
        notes.md        release notes
        deltas/<source-id>/
            envelope.suit   the signed SUIT envelope of the delta from release <source-id>
            patch.bin       the patch (docs/formats/delta.md; repository/deltas.py)
        release.json    {"id": ..., "published_at": ..., "artefacts":
                         {"envelope": {"file": "envelope.suit", "size": ..., "sha256": ...}, ...},
                         "vendor": {...},   (repository/release_meta.py)
                         "deltas": {"<source-id>": {"source_sha256": ...,
                                                    "source_sequence_number": ...,
                                                    "envelope": {"file": ..., "size": ...,
                                                                 "sha256": ...},
                                                    "patch": {...}}}}
        recall.json     {"recalled_at": ..., "reason": ...}, once the vendor recalls it

A release, its deltas included, is written to a temporary directory and renamed into place, so
a reader sees a whole release or none; publishing an id that exists is refused (releases are
immutable). A recall is the one file added later: the listing then carries it as ``recall``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suture.vendor_services.errors import VendorServicesError
from suture.vendor_services.repository.release_meta import validate_metadata

RELEASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
ARTEFACTS = {
    "envelope": ("envelope.suit", "application/suit-envelope+cose"),
    "payload": ("payload.bin", "application/octet-stream"),
    "sbom": ("sbom.json", "application/json"),
    "notes": ("notes.md", "text/markdown; charset=utf-8"),
}
DELTA_ARTEFACTS = {
    "envelope": ("envelope.suit", "application/suit-envelope+cose"),
    "patch": ("patch.bin", "application/octet-stream"),
}
# Ceilings on what one release may hold.
MAX_ENVELOPE = 1 << 20
MAX_PAYLOAD = 64 << 20
MAX_DOCUMENT = 4 << 20


class ReleaseError(VendorServicesError, ValueError):
    """A release that cannot be published or found."""


@dataclass(frozen=True)
class Artefact:
    """One file of a release."""

    name: str
    path: Path
    size: int
    sha256: str
    media_type: str


@dataclass(frozen=True)
class DeltaFiles:
    """A delta of a release from an earlier release of the repository: its signed envelope and
    patch (built by repository/deltas.py)."""

    source_id: str
    source_sha256: str
    source_sequence_number: int
    envelope: bytes
    patch: bytes


class ReleaseStore:
    """The releases directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, release_id: str) -> Path:
        if not RELEASE_ID.match(release_id):
            raise ReleaseError(f"invalid release id {release_id!r}")
        return self.root / release_id

    def exists(self, release_id: str) -> bool:
        """Whether ``release_id`` is published."""
        try:
            return (self._dir(release_id) / "release.json").is_file()
        except ReleaseError:
            return False

    def list(self) -> list[str]:
        """Published release ids, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "release.json").is_file())

    def metadata(self, release_id: str) -> dict[str, Any]:
        """The ``release.json`` of a published release."""
        path = self._dir(release_id) / "release.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError as e:
            raise ReleaseError(f"no release {release_id!r}") from e
        data.setdefault("vendor", validate_metadata({}))
        recall = self.recall_of(release_id)
        if recall is not None:
            data["recall"] = recall
        return data

    def recall_of(self, release_id: str) -> dict[str, Any] | None:
        """The vendor's recall of a release (None: not recalled)."""
        path = self._dir(release_id) / "recall.json"
        try:
            recall: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        return recall

    def recall(self, release_id: str, *, reason: str, at: int) -> dict[str, Any]:
        """Recall a published release: its listing says so from now on, and the AS grants
        no rollout of it. A recall is final."""
        if not self.exists(release_id):
            raise ReleaseError(f"no release {release_id!r}")
        if not reason.strip():
            raise ReleaseError("a recall needs a reason")
        if self.recall_of(release_id) is not None:
            raise ReleaseError(f"release {release_id!r} is already recalled")
        recall = {"recalled_at": at, "reason": reason.strip()}
        target = self._dir(release_id) / "recall.json"
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".recall.")
        with os.fdopen(fd, "w") as f:
            json.dump(recall, f)
        os.replace(tmp, target)
        return recall

    def artefact(self, release_id: str, name: str) -> Artefact:
        """One file of a release, as recorded at publication."""
        if name not in ARTEFACTS:
            raise ReleaseError(f"no artefact {name!r}: one of {', '.join(ARTEFACTS)}")
        entry = self.metadata(release_id)["artefacts"][name]
        filename, media_type = ARTEFACTS[name]
        return Artefact(
            name, self._dir(release_id) / filename, entry["size"], entry["sha256"], media_type
        )

    def delta_artefact(self, release_id: str, source_id: str, name: str) -> Artefact:
        """One file of a release's delta from ``source_id``, as recorded at publication."""
        if name not in DELTA_ARTEFACTS:
            raise ReleaseError(f"no delta artefact {name!r}: one of {', '.join(DELTA_ARTEFACTS)}")
        entry = self.metadata(release_id).get("deltas", {}).get(source_id)
        if entry is None:
            raise ReleaseError(f"release {release_id!r} has no delta from {source_id!r}")
        filename, media_type = DELTA_ARTEFACTS[name]
        return Artefact(f"delta-{name}", self._dir(release_id) / "deltas" / source_id / filename,
                        entry[name]["size"], entry[name]["sha256"], media_type)

    def publish(
        self,
        release_id: str,
        *,
        envelope: bytes,
        payload: bytes,
        sbom: bytes,
        notes: bytes,
        published_at: int,
        metadata: dict[str, Any] | None = None,
        deltas: Sequence[DeltaFiles] = (),
    ) -> dict[str, Any]:
        """Write a release and its deltas; returns its ``release.json``. Nothing is written on
        error."""
        vendor = validate_metadata(metadata or {})
        target = self._dir(release_id)
        if target.exists():
            raise ReleaseError(f"release {release_id!r} is already published")
        contents = {"envelope": envelope, "payload": payload, "sbom": sbom, "notes": notes}
        limits = {"envelope": MAX_ENVELOPE, "payload": MAX_PAYLOAD}
        for name, data in contents.items():
            if len(data) > limits.get(name, MAX_DOCUMENT):
                raise ReleaseError(f"{name} is larger than {limits.get(name, MAX_DOCUMENT)} B")
        if not envelope or not payload:
            raise ReleaseError("a release needs an envelope and a payload")
        self._check_deltas(deltas)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".publish-"))
        try:
            artefacts = {}
            for name, data in contents.items():
                filename = ARTEFACTS[name][0]
                (tmp / filename).write_bytes(data)
                artefacts[name] = {
                    "file": filename,
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            meta: dict[str, Any] = {"id": release_id, "published_at": published_at,
                                    "artefacts": artefacts, "vendor": vendor}
            if deltas:
                meta["deltas"] = {d.source_id: self._write_delta(tmp, d) for d in deltas}
            (tmp / "release.json").write_text(json.dumps(meta, indent=2))
            os.rename(tmp, target)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ReleaseError(f"cannot publish {release_id}: {e}") from e
        return meta

    def _check_deltas(self, deltas: Sequence[DeltaFiles]) -> None:
        sources = [d.source_id for d in deltas]
        if len(set(sources)) != len(sources):
            raise ReleaseError("a delta source is named twice")
        for d in deltas:
            if not RELEASE_ID.match(d.source_id) or not self.exists(d.source_id):
                raise ReleaseError(f"no published release {d.source_id!r} to build a delta from")
            if not d.envelope or not d.patch:
                raise ReleaseError(f"the delta from {d.source_id} needs an envelope and a patch")
            if len(d.envelope) > MAX_ENVELOPE or len(d.patch) > MAX_PAYLOAD:
                raise ReleaseError(f"the delta from {d.source_id} is over the size limits")

    @staticmethod
    def _write_delta(tmp: Path, delta: DeltaFiles) -> dict[str, Any]:
        where = tmp / "deltas" / delta.source_id
        where.mkdir(parents=True)
        entry: dict[str, Any] = {"source_sha256": delta.source_sha256,
                                 "source_sequence_number": delta.source_sequence_number}
        for name, data in (("envelope", delta.envelope), ("patch", delta.patch)):
            filename = DELTA_ARTEFACTS[name][0]
            (where / filename).write_bytes(data)
            entry[name] = {"file": f"deltas/{delta.source_id}/{filename}", "size": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()}
        return entry
