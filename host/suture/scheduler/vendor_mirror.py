"""Mirror a release from a vendor's repository into the scheduler.

The scheduler is a GNAP client of the vendor (:mod:`suture.vendor.gnap.client`): it fetches
the release's files with a key-bound token whose rights name the rollout, checks each file
against the digests the repository lists, then hands them to
:func:`suture.scheduler.services.releases.import_release`, which verifies the SUIT signature
against the vendor's trust anchors and the payload against the manifest before storing
anything. A release that fails any check is not imported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from suture.keys import PublicKey
from suture.scheduler.models import Release
from suture.scheduler.services.releases import import_release
from suture.vendor.gnap.client import GnapClient, GnapClientError, GrantState

ARTEFACTS = ("envelope", "payload", "sbom", "notes")
# Ceilings on what is fetched (the repository enforces the same at publication).
MAX_ARTEFACT = {"envelope": 1 << 20, "payload": 64 << 20, "sbom": 4 << 20, "notes": 4 << 20}


class MirrorError(RuntimeError):
    """A release that could not be fetched, or whose files do not match their listing."""


@dataclass(frozen=True)
class FetchedRelease:
    """A release's files as fetched, checked against the repository's listing."""

    release_id: str
    envelope: bytes
    payload: bytes
    sbom: bytes
    notes: bytes


def fetch_release(
    client: GnapClient, grant: GrantState, repository_url: str, release_id: str
) -> FetchedRelease:
    """Fetch the four files of ``release_id`` with the grant's token."""
    base = repository_url.rstrip("/")
    try:
        listing: Any = client.fetch(grant, f"{base}/{release_id}").json()
        files: dict[str, bytes] = {}
        for name in ARTEFACTS:
            entry = listing["artefacts"][name]
            size, sha256 = int(entry["size"]), str(entry["sha256"])
            if size > MAX_ARTEFACT[name]:
                raise MirrorError(f"{release_id}/{name}: {size} bytes is over the limit")
            data = client.fetch(grant, f"{base}/{release_id}/{name}").content
            if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
                raise MirrorError(f"{release_id}/{name}: does not match the repository listing")
            files[name] = data
    except GnapClientError as e:
        raise MirrorError(f"{release_id}: the vendor refused: {e}") from e
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise MirrorError(f"{release_id}: malformed release listing: {e}") from e
    return FetchedRelease(release_id, **files)


def mirror_release(
    session: Session,
    *,
    client: GnapClient,
    grant: GrantState,
    repository_url: str,
    release_id: str,
    trust_anchors: Sequence[PublicKey],
    actor: str,
    now: int | None = None,
) -> Release:
    """Fetch ``release_id`` and import it (SUIT signature and digests verified on import)."""
    fetched = fetch_release(client, grant, repository_url, release_id)
    try:
        notes = fetched.notes.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MirrorError(f"{release_id}: release notes are not UTF-8") from e
    return import_release(
        session,
        envelope=fetched.envelope,
        payload=fetched.payload,
        sbom=fetched.sbom or None,
        notes=notes,
        trust_anchors=trust_anchors,
        actor=actor,
        now=now,
    )
