"""A release's SBOM as the scheduler keeps it: read back, parsed, and compared with another
release's. The import (services/releases.py) stores only an SBOM that is valid CycloneDX and
bound to the signed manifest, so what is read here was verified once already; it is parsed
again (the same checks) rather than trusted from the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from suture.scheduler.authz import Permission, Principal, require
from suture.scheduler.errors import NotFoundError
from suture.scheduler.models import Release
from suture.scheduler.services.blobs import blob_ref, read_blob_bytes
from suture.suit.sbom import Sbom, diff_sboms, diff_summary, parse_sbom, sbom_summary


def _sbom(session: Session, release_id: int) -> Sbom:
    release = session.get(Release, release_id)
    if release is None:
        raise NotFoundError(f"no release {release_id}")
    if release.sbom_digest is None:
        raise NotFoundError(f"release {release_id} carries no SBOM (imported as a test release)")
    return parse_sbom(read_blob_bytes(session, blob_ref(session, release.sbom_digest, "SBOM")))


def stored_sbom(session: Session, *, release_id: int, actor: Principal) -> Sbom:
    """Release ``release_id``'s SBOM, parsed."""
    require(actor, Permission.RELEASE_READ)
    with session.begin():
        return _sbom(session, release_id)


def release_sbom(session: Session, *, release_id: int, actor: Principal) -> dict[str, Any]:
    """The SBOM's components, licences, digest and subject (``suture release sbom show``)."""
    require(actor, Permission.RELEASE_READ)
    with session.begin():
        return {"release_id": release_id, **sbom_summary(_sbom(session, release_id))}


def release_sbom_diff(session: Session, *, release_id: int, against: int,
                      actor: Principal) -> dict[str, Any]:
    """What changed in the SBOM from release ``against`` to ``release_id``: components added,
    removed, changed (version or licences), licences that appear or disappear."""
    require(actor, Permission.RELEASE_READ)
    with session.begin():
        old, new = _sbom(session, against), _sbom(session, release_id)
    return {"release_id": release_id, "against": against, **diff_summary(diff_sboms(old, new))}
