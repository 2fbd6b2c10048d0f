"""Trust-anchor rotations the scheduler publishes (docs/formats/trust-store.md).

A rotation is a signed trust-store update: a role ("vendor": the keys SUIT envelopes are
signed with; "scheduler": the keys schedules are signed with), a version and the role's new
keys, signed by a key the devices trust for that role now. The scheduler checks it the way a
device will, against the role's anchors as the last published rotation left them (before any:
the anchors the devices were provisioned with, ``baseline``), refuses a version that is not
above the last one published, stores it and carries it in the schedules (key 22) of the
devices whose reported version of the role is below it, one version at a time (each update is
signed by the anchors of the one before, so a device several versions behind walks the chain).
A device reports the versions it holds in every report (``trust``); once it reports the
rotation's version its schedule stops carrying it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from suture.cose.errors import CoseError
from suture.cose.sign1 import decode_sign1
from suture.formats import trust_store
from suture.keys import PublicKey
from suture.scheduler.authz import Permission, Principal, require
from suture.scheduler.errors import ConflictError, InvalidInputError
from suture.scheduler.models import Device, TrustRotation
from suture.scheduler.services import audit, tenants

ROLES = tuple(sorted(trust_store.ROLES))


@dataclass(frozen=True)
class DeviceTrust:
    """What one device holds per role, and the rotation its schedule carries (if any)."""

    device_id: str
    versions: dict[str, int]
    pending: str | None  # "role vN" carried by its schedule; None: it holds every rotation


def _role_of(document: bytes) -> str:
    """The role an update names, read before its signature is checked (to pick the anchors
    to check it against)."""
    try:
        payload = cbor2.loads(decode_sign1(document).payload or b"")
    except (CoseError, ValueError, cbor2.CBORDecodeError) as exc:
        raise InvalidInputError(f"not a trust-store update (COSE_Sign1): {exc}") from None
    role = payload.get(trust_store.K_ROLE) if isinstance(payload, dict) else None
    if role not in trust_store.ROLES:
        raise InvalidInputError(f"a trust-store update names a role: one of {list(ROLES)}")
    return str(role)


def _latest(session: Session, role: str) -> TrustRotation | None:
    return session.execute(
        select(TrustRotation).where(TrustRotation.role == role)
        .order_by(TrustRotation.version.desc()).limit(1)).scalar_one_or_none()


def current_anchors(session: Session, role: str,
                    baseline: Mapping[str, Sequence[bytes]]) -> tuple[int, list[bytes]]:
    """(version, 65-byte points) of a role as the last published rotation leaves it."""
    last = _latest(session, role)
    if last is None:
        return 0, list(baseline.get(role, ()))
    return last.version, [bytes.fromhex(k) for k in last.keys]


def publish(session: Session, *, document: bytes, baseline: Mapping[str, Sequence[bytes]],
            actor: Principal, now: int) -> TrustRotation:
    """Check and store a signed trust-store update, and have every device's schedule decided
    again (those that need it get it at their next poll). Refused, changing nothing, when it
    does not verify against the role's current anchors or its version is not above them."""
    require(actor, Permission.RELEASE_IMPORT)
    tenants.require_provider(actor, "publishing a trust-store update")
    if len(document) > trust_store.MAX_DOCUMENT:
        raise InvalidInputError(f"a trust-store update is at most {trust_store.MAX_DOCUMENT} "
                                "bytes")
    role = _role_of(document)
    with session.begin():
        version, anchors = current_anchors(session, role, baseline)
        if not anchors:
            raise InvalidInputError(f"no {role} anchor is known to check the update against")
        try:
            upd = trust_store.verify_trust_update(document, anchors)
        except trust_store.TrustStoreError as exc:
            raise InvalidInputError(f"{exc} (the {role} anchors of version {version} must "
                                    "sign it)") from None
        if upd.version <= version:
            raise ConflictError(f"{role} trust version {upd.version} is not above the "
                                f"published {version}: devices would refuse it")
        row = TrustRotation(role=role, version=upd.version, document=document,
                            document_sha256=hashlib.sha256(document).hexdigest(),
                            keys=[k.hex() for k in upd.keys], created_at=now,
                            created_by=actor.name)
        session.add(row)
        session.execute(update(Device).where(Device.decommissioned_at.is_(None))
                        .values(schedule_decision="")
                        .execution_options(synchronize_session=False))
        audit.append(session, at=now, actor=actor.name, action="trust.publish",
                     subject=f"{role} v{upd.version}",
                     detail={"role": role, "version": upd.version,
                             "document_sha256": row.document_sha256,
                             "keys_sha256": [hashlib.sha256(k).hexdigest() for k in upd.keys]})
    return row


def list_rotations(session: Session) -> list[TrustRotation]:
    with session.begin():
        return list(session.execute(select(TrustRotation).order_by(
            TrustRotation.role, TrustRotation.version)).scalars())


def pending_for(session: Session, device: Device) -> TrustRotation | None:
    """Inside the caller's transaction: the rotation the device's schedule carries, the next
    version above the one it reported (scheduler first, then vendor); None when it holds
    them all."""
    held = device.trust_versions or {}
    for role in ROLES:
        row = session.execute(
            select(TrustRotation).where(TrustRotation.role == role,
                                        TrustRotation.version > held.get(role, 0))
            .order_by(TrustRotation.version).limit(1)).scalar_one_or_none()
        if row is not None:
            return row
    return None


def decision_key(key: str, rotation: TrustRotation | None) -> str:
    """A schedule's decision key (``Decision.key``, 64 hex digits) with the rotation it
    carries folded in, so that a new rotation to carry, or one no longer needed, makes a new
    document. The same 64 hex digits as the column that keeps it (``devices
    .schedule_decision``); the decision's own key when it carries none."""
    if rotation is None:
        return key
    return hashlib.sha256(f"{key}|trust:{rotation.role}:{rotation.version}".encode()).hexdigest()


def device_trust(session: Session, *, limit: int = 1000,
                 tenant: str = tenants.DEFAULT_TENANT) -> list[DeviceTrust]:
    """Per in-service device of ``tenant``: the versions it reports and the rotation it still
    needs."""
    with session.begin():
        have = session.execute(select(func.count()).select_from(TrustRotation)).scalar_one()
        rows = session.execute(select(Device).where(Device.decommissioned_at.is_(None),
                                                    tenants.device_scope(tenant))
                               .order_by(Device.id).limit(limit)).scalars().all()
        out = []
        for d in rows:
            pending = pending_for(session, d) if have else None
            out.append(DeviceTrust(d.id, dict(d.trust_versions or {}),
                                   None if pending is None
                                   else f"{pending.role} v{pending.version}"))
        return out


def baseline(scheduler_key: PublicKey, vendor_anchors: Sequence[PublicKey]
             ) -> dict[str, list[bytes]]:
    """The anchors devices are provisioned with, as 65-byte points: the scheduler's schedule
    key and the vendors' P-256 trust anchors (a rotation before any other must be signed by
    one of them)."""
    def points(keys: Sequence[PublicKey]) -> list[bytes]:
        return [trust_store.sec1_point(k) for k in keys
                if isinstance(k, ec.EllipticCurvePublicKey) and isinstance(k.curve, ec.SECP256R1)]

    return {"scheduler": points([scheduler_key]), "vendor": points(vendor_anchors)}
