"""Releases: import (verify before accepting), list, mark must-pass-through, recall.

``import_release`` is the one entry point for new releases, whether an operator uploads the
files or a vendor mirror fetched them: nothing is stored unless the SUIT envelope verifies
against one of the trust anchors and the payload matches the manifest's digest and size.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from suture.keys import PublicKey
from suture.scheduler.authz import Permission, Principal, require
from suture.scheduler.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    ReleaseVerificationError,
)
from suture.scheduler.models import (
    EntryState,
    Release,
    Rollout,
    RolloutDevice,
    RolloutState,
)
from suture.scheduler.schemas import ReleaseUpdate, Requirement
from suture.scheduler.services import audit, tenants
from suture.scheduler.services.blobs import BlobRef, blob_ref, put_blob, read_blob_bytes
from suture.scheduler.services.devices import DeviceProof, consume_counter
from suture.suit.errors import SbomError
from suture.suit.sbom import check_release_sbom

MAX_NOTES = 64 * 1024
MAX_SBOM = 16 * 1024 * 1024
SHA256 = -16  # COSE algorithm id of SHA-256 (RFC 9054)


def component_name(identifier: Sequence[bytes]) -> str:
    """A SUIT component identifier as text: its parts, UTF-8 if printable else hex, joined by /."""
    parts = []
    for part in identifier:
        try:
            text = part.decode("ascii")
            parts.append(text if text.isprintable() and "/" not in text and text else part.hex())
        except UnicodeDecodeError:
            parts.append(part.hex())
    return "/".join(parts) or "0"


def import_release(
    session: Session,
    *,
    envelope: bytes,
    payload: bytes,
    sbom: bytes | None,
    notes: str | None,
    trust_anchors: Sequence[PublicKey],
    actor: Principal,
    must_pass_through: bool = False,
    requires: Sequence[Requirement] = (),
    now: int | None = None,
    allow_missing_sbom: bool = False,
) -> Release:
    """Verify the envelope against ``trust_anchors``, the payload against the manifest and the
    SBOM against the digest the manifest binds (valid CycloneDX), then store the release.
    ``allow_missing_sbom`` (the setting ``allow_releases_without_sbom``, for test releases)
    accepts a release whose manifest names no SBOM and none is given; the audit record says so.
    Raises ``ReleaseVerificationError`` (nothing stored) when anything does not verify,
    ``ConflictError`` when the same release was imported before."""
    from suture import suit  # the SUIT library: verify is pure, no I/O

    require(actor, Permission.RELEASE_IMPORT)
    tenants.require_provider(actor, "importing a release")
    when = int(time.time()) if now is None else now
    if not trust_anchors:
        raise ReleaseVerificationError("no trust anchor given: refusing an unverifiable release")
    if notes is not None and len(notes) > MAX_NOTES:
        raise InvalidInputError(f"release notes larger than {MAX_NOTES} characters")
    if sbom is not None and len(sbom) > MAX_SBOM:
        raise InvalidInputError(f"SBOM larger than {MAX_SBOM} bytes")
    try:
        env = suit.verify_envelope(envelope, list(trust_anchors))
    except suit.SuitError as exc:
        raise ReleaseVerificationError(f"envelope does not verify: {exc}") from None
    images = [c for c in env.manifest.component_info if c.image_digest is not None]
    # An encrypted release (docs/formats/suit-encryption.md): the payload is the ciphertext,
    # which the manifest's ciphertext component describes; the image's digest covers the
    # plaintext only the devices holding a key decrypt.
    encrypted = [c for c in images if c.encryption_info is not None]
    served = None
    if len(encrypted) == 1:
        source = encrypted[0].parameters.get("source-component")
        served = next((c for c in images if c.index == source), None)
        if served is None:
            raise ReleaseVerificationError(
                "the encrypted component names no ciphertext component with a digest")
        images = [c for c in images if c is not served]
    if len(images) != 1:
        raise ReleaseVerificationError(
            f"a release updates exactly one component; the manifest has {len(images)} images")
    info = images[0]
    carried = served if served is not None else info
    what = "ciphertext" if served is not None else "image"
    digest = carried.image_digest
    assert digest is not None
    if digest.algorithm != SHA256:
        raise ReleaseVerificationError(f"{what} digest algorithm {digest.algorithm} is not SHA-256")
    if hashlib.sha256(payload).digest() != digest.value:
        raise ReleaseVerificationError(f"payload SHA-256 does not match the manifest's {what} "
                                       "digest")
    if carried.image_size is not None and carried.image_size != len(payload):
        raise ReleaseVerificationError(
            f"payload is {len(payload)} bytes; the manifest says {carried.image_size}")
    if info.vendor_id is None or info.class_id is None:
        raise ReleaseVerificationError("the manifest names no vendor id and class id")
    try:
        sbom_check = check_release_sbom(env.manifest, sbom, allow_missing=allow_missing_sbom)
    except SbomError as exc:
        raise ReleaseVerificationError(
            f"{exc}" + ("" if sbom is not None or allow_missing_sbom else
                        " (a scheduler for test releases may set "
                        "allow_releases_without_sbom)")) from None
    vendor_id, class_id = str(info.vendor_id), str(info.class_id)
    component = component_name(info.identifier)
    seq = env.manifest.sequence_number
    with session.begin():
        existing = session.execute(
            select(Release.id).where(
                Release.vendor_id == vendor_id, Release.class_id == class_id,
                Release.component == component, Release.sequence_number == seq)
        ).scalar_one_or_none()
        if existing is not None:
            raise ConflictError(
                f"release {component} #{seq} for class {class_id} exists (id {existing})")
        release = Release(
            vendor_id=vendor_id, class_id=class_id, component=component, sequence_number=seq,
            envelope_digest=put_blob(session, envelope), envelope_size=len(envelope),
            payload_digest=put_blob(session, payload), payload_size=len(payload),
            sbom_digest=put_blob(session, sbom) if sbom is not None else None,
            notes=notes or "", must_pass_through=must_pass_through,
            requires=[r.model_dump() for r in requires], recalled=False, recalled_at=None,
            imported_at=when, imported_by=actor.name,
        )
        session.add(release)
        session.flush()
        audit.append(session, at=when, actor=actor.name, action="release.import",
                     subject=f"release:{release.id}",
                     detail={"component": component, "sequence_number": seq,
                             "vendor_id": vendor_id, "class_id": class_id,
                             "envelope_sha256": release.envelope_digest,
                             "payload_sha256": release.payload_digest,
                             "encrypted": served is not None,
                             "signers": [k.hex() for k in env.signer_key_ids],
                             "sbom": ({"status": sbom_check.status,
                                       "sha256": sbom_check.sbom.digest.value.hex()}
                                      if sbom_check.sbom is not None
                                      else {"status": sbom_check.status})})
    return release


def _device_may_fetch(session: Session, device_id: str, release_id: int) -> bool:
    found = session.execute(
        select(RolloutDevice.rollout_id)
        .join(Rollout, Rollout.id == RolloutDevice.rollout_id)
        .where(RolloutDevice.device_id == device_id,
               or_(RolloutDevice.step_release_id == release_id,
                   Rollout.release_id == release_id))
        .limit(1)
    ).first()
    return found is not None


def list_releases(session: Session) -> list[Release]:
    with session.begin():
        return list(session.execute(select(Release).order_by(Release.id)).scalars())


def get_release(session: Session, *, release_id: int) -> Release:
    with session.begin():
        return _get(session, release_id)


def _get(session: Session, release_id: int) -> Release:
    release = session.get(Release, release_id)
    if release is None:
        raise NotFoundError(f"no release {release_id}")
    return release


def update_release(session: Session, *, release_id: int, change: ReleaseUpdate,
                   actor: Principal, now: int) -> Release:
    require(actor, Permission.RELEASE_UPDATE)
    tenants.require_provider(actor, "changing a release")
    with session.begin():
        release = _get(session, release_id)
        detail: dict[str, Any] = {}
        if change.must_pass_through is not None:
            release.must_pass_through = change.must_pass_through
            detail["must_pass_through"] = change.must_pass_through
        if change.requires is not None:
            release.requires = [r.model_dump() for r in change.requires]
            detail["requires"] = release.requires
        audit.append(session, at=now, actor=actor.name, action="release.update",
                     subject=f"release:{release_id}", detail=detail)
    return release


def recall_release(session: Session, *, release_id: int, revert: bool, actor: Principal,
                   now: int) -> Release:
    """Withdraw a release: every rollout of it is aborted (with revert if asked), and it is
    never planned again, neither as a target nor as a must-pass-through step."""
    from suture.scheduler.services.rollouts import abort_locked

    require(actor, Permission.RELEASE_RECALL)
    tenants.require_provider(actor, "recalling a release")
    with session.begin():
        release = _get(session, release_id)
        if release.recalled:
            raise ConflictError(f"release {release_id} is already recalled")
        release.recalled = True
        release.recalled_at = now
        rollouts = session.execute(
            select(Rollout).where(
                Rollout.release_id == release_id,
                Rollout.state.in_([RolloutState.AWAITING_APPROVAL, RolloutState.APPROVED,
                                   RolloutState.RUNNING, RolloutState.PAUSED]))
            .with_for_update()
        ).scalars().all()
        for rollout in rollouts:
            abort_locked(session, rollout, revert=revert, reason=f"release {release_id} recalled",
                         now=now)
        # Devices whose next step was this release (a must-pass-through elsewhere) are
        # re-planned by the next advancement pass.
        session.execute(
            update(RolloutDevice)
            .where(RolloutDevice.step_release_id == release_id,
                   RolloutDevice.state == EntryState.PENDING)
            .values(step_release_id=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        audit.append(session, at=now, actor=actor.name, action="release.recall",
                     subject=f"release:{release_id}",
                     detail={"revert": revert, "rollouts_aborted": [r.id for r in rollouts]})
    return release


def read_blob(session: Session, *, release_id: int, kind: str) -> tuple[bytes, str]:
    """The envelope or payload bytes of a release and their SHA-256 (hex)."""
    with session.begin():
        ref = _blob(session, _get(session, release_id), kind)
        return read_blob_bytes(session, ref), ref.digest


def device_download(session: Session, *, release_id: int, kind: str, device_id: str,
                    counter: int, now: int, proof: DeviceProof | None = None) -> BlobRef:
    """A device's download: authenticated, and only of a release one of its rollouts names
    (as target or as a step). Returns what to stream (``blobs.iter_range``)."""
    with session.begin():
        consume_counter(session, device_id=device_id, counter=counter, now=now, proof=proof)
        release = _get(session, release_id)
        if not _device_may_fetch(session, device_id, release_id):
            raise ForbiddenError(f"release {release_id} is not scheduled for {device_id}")
        return _blob(session, release, kind)


def _blob(session: Session, release: Release, kind: str) -> BlobRef:
    digest = release.envelope_digest if kind == "envelope" else release.payload_digest
    return blob_ref(session, digest, f"release {release.id}: {kind}")
