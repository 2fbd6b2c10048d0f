"""The hospital's manifest over the vendor's, one per rollout (docs/formats/suit-extensions.md,
"The hospital's manifest over the vendor's"; docs/architecture.md for why it complements the
schedule document).

The first schedule that needs it issues it, signed with the scheduler's key (the key devices
already trust for schedules, role ``scheduler`` of their trust store): the rollout's release
envelope integrated, unchanged, and the hospital's conditions: the rollout's devices as its
device set when there are at most ``MAX_LISTED_DEVICES`` and each has a SUIT device
identifier (else no device set: any device of the class), the rollout's start as
suture-not-before, and the digest of what its approvers approved. It is stored as a blob with
a ``rollout_manifests`` row, audited (``rollout.hospital_manifest``: its digest and the
approvals' digest it carries), and served at ``/api/v1/rollouts/{id}/hospital-envelope``; the
schedule of a device whose loader processes it (``Device.hospital_manifest``) names it in keys
7-9 instead of the vendor's envelope. The other schedules stay as they were: a device enrolled
without the flag (an older loader), a step release on the way (must-pass-through, required),
a delta, a download straight from the vendor (a biscuit)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from suture.keys import PrivateKey, key_id
from suture.scheduler.errors import ForbiddenError, NotFoundError
from suture.scheduler.models import Device, Release, Rollout, RolloutDevice, RolloutManifest
from suture.scheduler.schedule_doc import Artifact, Grant
from suture.scheduler.services import audit
from suture.scheduler.services.blobs import BlobRef, blob_ref, put_blob, read_blob_bytes
from suture.scheduler.services.devices import DeviceProof, consume_counter
from suture.scheduler.services.rollouts import approval_digest
from suture.suit import HospitalConditions, decode_envelope, dependent_envelope_of
from suture.suit.model import Digest

#: A rollout of more devices is issued without a device set (about 27 bytes a device: with 32
#: the envelope is 1.5 KB over a 320-byte vendor envelope; docs/formats/suit-extensions.md).
MAX_LISTED_DEVICES: Final = 32
SHA256: Final = -16


def uri_of(public_url: str, rollout_id: int) -> str:
    return public_url.rstrip("/") + f"/api/v1/rollouts/{rollout_id}/hospital-envelope"


def _device_set(session: Session, rollout_id: int) -> tuple[uuid.UUID, ...]:
    ids = session.execute(
        select(Device.suit_device_id)
        .join(RolloutDevice, RolloutDevice.device_id == Device.id)
        .where(RolloutDevice.rollout_id == rollout_id)
        .order_by(Device.id)
        .limit(MAX_LISTED_DEVICES + 1)
    ).scalars().all()
    if not ids or len(ids) > MAX_LISTED_DEVICES or any(i is None for i in ids):
        return ()
    return tuple(uuid.UUID(i) for i in ids if i is not None)


def _issue(session: Session, rollout: Rollout, release: Release, key: PrivateKey,
           now: int) -> RolloutManifest:
    vendor_envelope = read_blob_bytes(
        session, blob_ref(session, release.envelope_digest, f"release {release.id}: envelope"))
    approvals = approval_digest(session, rollout)
    conditions = HospitalConditions(
        devices=_device_set(session, rollout.id),
        not_before=rollout.started_at if rollout.started_at is not None else now,
        approvals_digest=Digest(SHA256, bytes.fromhex(approvals)))
    envelope = dependent_envelope_of(
        decode_envelope(vendor_envelope), vendor_envelope, key,
        sequence_number=release.sequence_number, conditions=conditions,
        kid=key_id(key.public_key()))
    row = RolloutManifest(
        rollout_id=rollout.id, envelope_digest="", envelope_size=len(envelope),
        device_count=len(conditions.devices), not_before=conditions.not_before,
        not_after=conditions.not_after, approvals_digest=approvals, issued_at=now)
    try:
        with session.begin_nested():  # another node may issue it at the same moment
            row.envelope_digest = put_blob(session, envelope)
            session.add(row)
            session.flush()
            audit.append(session, at=now, tenant=rollout.tenant, actor="scheduler",
                         action="rollout.hospital_manifest", subject=f"rollout:{rollout.id}",
                         detail={"envelope_digest": row.envelope_digest,
                                 "envelope_size": row.envelope_size,
                                 "release_id": release.id, "devices": row.device_count,
                                 "not_before": row.not_before, "approvals_digest": approvals})
    except IntegrityError:
        found = session.get(RolloutManifest, rollout.id, populate_existing=True)
        if found is None:
            raise
        return found
    return row


def manifest_for(session: Session, rollout: Rollout, key: PrivateKey, now: int
                 ) -> RolloutManifest:
    """The rollout's hospital manifest, issued now if it has none yet."""
    row = session.get(RolloutManifest, rollout.id)
    if row is not None:
        return row
    release = session.get(Release, rollout.release_id)
    if release is None:
        raise NotFoundError(f"rollout {rollout.id}: no release {rollout.release_id}")
    return _issue(session, rollout, release, key, now)


def in_schedule(session: Session, device: Device, rollout_id: int | None,
                artifact: Artifact | None, grant: Grant | None, *, key: PrivateKey,
                public_url: str, now: int) -> Artifact | None:
    """The schedule's artifact, its envelope (keys 7-9) the rollout's hospital envelope when
    the device processes it and the artifact is the rollout's release as the scheduler serves
    it (not a step, a delta or a direct download)."""
    if not device.hospital_manifest or rollout_id is None or artifact is None \
            or (grant is not None and grant.biscuit is not None):
        return artifact
    rollout = session.get(Rollout, rollout_id)
    release = session.get(Release, artifact.release_id)
    if rollout is None or release is None or rollout.release_id != release.id \
            or artifact.envelope_digest != bytes.fromhex(release.envelope_digest):
        return artifact
    row = manifest_for(session, rollout, key, now)
    return dataclasses.replace(
        artifact, envelope_uri=uri_of(public_url, rollout.id),
        envelope_digest=bytes.fromhex(row.envelope_digest), envelope_size=row.envelope_size)


def device_download(session: Session, *, rollout_id: int, device_id: str, counter: int,
                    now: int, proof: DeviceProof | None = None) -> BlobRef:
    """A device's download of a rollout's hospital envelope: authenticated, and only by a
    device the rollout targets, once the envelope is issued."""
    with session.begin():
        consume_counter(session, device_id=device_id, counter=counter, now=now, proof=proof)
        targeted = session.execute(
            select(RolloutDevice.rollout_id).where(RolloutDevice.rollout_id == rollout_id,
                                                   RolloutDevice.device_id == device_id)
        ).first()
        if targeted is None:
            raise ForbiddenError(f"rollout {rollout_id} does not target {device_id}")
        row = session.get(RolloutManifest, rollout_id)
        if row is None:
            raise NotFoundError(f"rollout {rollout_id} has no hospital manifest")
        return blob_ref(session, row.envelope_digest, f"rollout {rollout_id}: hospital envelope")
