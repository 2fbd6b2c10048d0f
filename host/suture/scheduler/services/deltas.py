"""Delta releases (docs/formats/delta.md): import a vendor-signed delta for a release, and
choose per device between it and the full payload.

A delta is signed like any release (the device verifies it against the vendor's keys): its
manifest has the release's sequence number, component and image digest, and names the source
image by digest in a condition the device checks before it writes anything. The scheduler
knows each device's installed release of each component from its reports, hence that
release's image digest: a device whose installed image is a delta's source gets the delta, any
other the full payload. A device that reports a failure while it is served a delta (a wrong
source, a corrupt patch, a target digest that does not match, any refusal) is recorded
(``DeltaFailure``) and served the release's full payload from then on.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from suture.keys import PublicKey
from suture.scheduler.authz import Permission, Principal, require
from suture.scheduler.errors import ConflictError, NotFoundError, ReleaseVerificationError
from suture.scheduler.models import Delta, DeltaFailure, Device, Release
from suture.scheduler.schedule_doc import Artifact
from suture.scheduler.services import audit, releases, tenants
from suture.scheduler.services.blobs import BlobRef, blob_ref, put_blob
from suture.scheduler.services.devices import DeviceProof
from suture.scheduler.services.releases import component_name

SHA256 = -16


#: The audit actions of a vendor's delta not imported with its release when it was mirrored
#: (``vendor_mirror.DeltaOutcome``'s status), under the release's subject.
NOT_IMPORTED_ACTIONS: Final = {"skipped": "release.delta.skipped",
                               "refused": "release.delta.refused"}


def import_delta(
    session: Session,
    *,
    release_id: int,
    envelope: bytes,
    patch: bytes,
    trust_anchors: Sequence[PublicKey],
    actor: Principal,
    now: int | None = None,
) -> Delta:
    """Verify a delta envelope and its patch for release ``release_id`` and store them.
    ``ReleaseVerificationError`` (nothing stored) when the envelope does not verify, is not a
    delta of that release (component, sequence number, image digest and size), the patch is not
    the manifest's, or its source is no image of an earlier release of the same component."""
    from suture import suit

    require(actor, Permission.RELEASE_IMPORT)
    tenants.require_provider(actor, "importing a delta")
    when = int(time.time()) if now is None else now
    if not trust_anchors:
        raise ReleaseVerificationError("no trust anchor given: refusing an unverifiable delta")
    try:
        env = suit.verify_envelope(envelope, list(trust_anchors))
    except suit.SuitError as exc:
        raise ReleaseVerificationError(f"delta envelope does not verify: {exc}") from None
    images = [c for c in env.manifest.component_info if c.image_digest is not None]
    if len(images) != 1:
        raise ReleaseVerificationError("a delta updates exactly one component")
    info = images[0]
    params = info.parameters
    src = params.get("suture-delta-source-digest")
    pd = params.get("suture-delta-digest")
    if src is None or pd is None or info.image_digest is None:
        raise ReleaseVerificationError("the manifest names no delta source and patch")
    if pd.algorithm != SHA256 or src.algorithm != SHA256:
        raise ReleaseVerificationError("delta digests are not SHA-256")
    if hashlib.sha256(patch).digest() != pd.value or params.get("suture-delta-size") != len(
            patch):
        raise ReleaseVerificationError("the patch does not match the manifest's delta digest")
    with session.begin():
        release = session.get(Release, release_id)
        if release is None:
            raise NotFoundError(f"no release {release_id}")
        if (component_name(info.identifier) != release.component
                or env.manifest.sequence_number != release.sequence_number
                or info.image_digest.value.hex() != release.payload_digest
                or info.image_size != release.payload_size):
            raise ReleaseVerificationError(
                f"the delta is not of release {release_id} (component, sequence number, image)")
        source = session.execute(
            select(Release).where(
                Release.vendor_id == release.vendor_id, Release.class_id == release.class_id,
                Release.component == release.component,
                Release.payload_digest == src.value.hex(),
                Release.sequence_number < release.sequence_number)
        ).scalars().first()
        if source is None:
            raise ReleaseVerificationError(
                "the delta's source image is no earlier release of this component")
        if params.get("suture-delta-source-size") != source.payload_size:
            raise ReleaseVerificationError("the delta's source size is not its release's")
        existing = session.execute(
            select(Delta.id).where(Delta.release_id == release.id,
                                   Delta.source_digest == source.payload_digest)
        ).scalar_one_or_none()
        if existing is not None:
            raise ConflictError(f"release {release.id} has a delta from release {source.id}")
        delta = Delta(
            release_id=release.id, source_release_id=source.id,
            source_digest=source.payload_digest,
            envelope_digest=put_blob(session, envelope), envelope_size=len(envelope),
            payload_digest=put_blob(session, patch), payload_size=len(patch),
            imported_at=when, imported_by=actor.name,
        )
        session.add(delta)
        session.flush()
        audit.append(session, at=when, actor=actor.name, action="release.delta.import",
                     subject=f"release:{release.id}",
                     detail={"delta": delta.id, "source_release": source.id,
                             "patch_sha256": delta.payload_digest,
                             "patch_size": delta.payload_size})
    return delta


def list_deltas(session: Session, *, release_id: int, actor: Principal) -> list[Delta]:
    """The deltas of release ``release_id``, oldest first; ``NotFoundError`` when there is no
    such release."""
    require(actor, Permission.RELEASE_READ)
    with session.begin():
        if session.get(Release, release_id) is None:
            raise NotFoundError(f"no release {release_id}")
        return list(session.execute(
            select(Delta).where(Delta.release_id == release_id).order_by(Delta.id)).scalars())


def delta_for(session: Session, device: Device, release: Release) -> Delta | None:
    """The delta of ``release`` from the image the device has installed, if there is one: its
    installed release of the component (as it last reported it) has the delta's source image,
    and no delta of this release failed on this device."""
    installed = (device.installed or {}).get(release.component)
    if installed is None:
        return None
    if session.get(DeltaFailure, (device.id, release.id)) is not None:
        return None
    source = session.execute(
        select(Release.payload_digest).where(
            Release.vendor_id == release.vendor_id, Release.class_id == release.class_id,
            Release.component == release.component, Release.sequence_number == installed)
    ).scalar_one_or_none()
    if source is None:
        return None
    return session.execute(
        select(Delta).where(Delta.release_id == release.id, Delta.source_digest == source)
    ).scalar_one_or_none()


def record_failure(session: Session, device: Device, release: Release, *, now: int,
                   error_code: int | None, detail: str) -> DeltaFailure | None:
    """In the caller's transaction: the device reports a failure of ``release`` while it is
    served a delta of it. Records it (the device gets the full payload from now on) and
    returns the record; ``None`` when the device is not served a delta of the release (the
    failure is the full payload's)."""
    delta = delta_for(session, device, release)
    if delta is None:
        return None
    failure = DeltaFailure(device_id=device.id, release_id=release.id, delta_id=delta.id,
                           at=now, error_code=error_code, detail=detail)
    session.add(failure)
    session.flush()
    return failure


def choose(session: Session, device: Device, release: Release, artifact: Artifact,
           base_uri: str) -> Artifact:
    """The artifact to serve ``device`` for ``release``: its delta when one applies to the
    device's installed image, else ``artifact`` (the full payload)."""
    delta = delta_for(session, device, release)
    if delta is None:
        return artifact
    uri = base_uri.rstrip("/") + f"/deltas/{delta.id}"
    return Artifact(
        release_id=artifact.release_id, component=artifact.component,
        sequence_number=artifact.sequence_number,
        envelope_uri=uri + "/envelope", envelope_digest=bytes.fromhex(delta.envelope_digest),
        envelope_size=delta.envelope_size,
        payload_uri=uri + "/payload", payload_digest=bytes.fromhex(delta.payload_digest),
        payload_size=delta.payload_size,
    )


def device_download(session: Session, *, release_id: int, delta_id: int, kind: str,
                    device_id: str, counter: int, now: int,
                    proof: DeviceProof | None = None) -> BlobRef:
    """A device's download of a delta: authenticated and allowed as the release's own
    (releases.device_download), then the delta's envelope or patch."""
    releases.device_download(session, release_id=release_id, kind=kind, device_id=device_id,
                             counter=counter, now=now, proof=proof)
    with session.begin():
        delta = session.get(Delta, delta_id)
        if delta is None or delta.release_id != release_id:
            raise NotFoundError(f"release {release_id} has no delta {delta_id}")
        digest = delta.envelope_digest if kind == "envelope" else delta.payload_digest
        return blob_ref(session, digest, f"delta {delta.id}: {kind}")
