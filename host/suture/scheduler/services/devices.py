"""The device registry: provisioning, listing, updates, and device request authentication."""

from __future__ import annotations

import base64
import difflib
import hashlib
from dataclasses import dataclass

import cbor2
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from suture.boardops.decommission import RECORD_TYPE
from suture.boards.load import board_names
from suture.cose.errors import CoseError
from suture.cose.sign1 import decode_sign1
from suture.scheduler import credentials
from suture.scheduler.authz import Permission, Principal, require
from suture.scheduler.errors import (
    AuthenticationError,
    ClockSkewError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ReplayError,
)
from suture.scheduler.models import (
    DEFAULT_TENANT,
    TERMINAL_ENTRY_STATES,
    Device,
    DeviceEvent,
    DeviceState,
    EntryState,
    RolloutDevice,
)
from suture.scheduler.schemas import DeviceCreate, DeviceCredential, DeviceUpdate
from suture.scheduler.services import audit, tenants

MAX_HISTORY = 200
# Verified against when the device is unknown, so that timing does not reveal which ids exist.
_DUMMY_SECRET = b"\x00" * 32


def _check_board(name: str) -> None:
    """A device's board names a board definition (``suture board list``), where the scheduler
    has them (the repository's ``boards/`` or ``$SUTURE_BOARDS_DIR``)."""
    known = board_names()
    if known and name not in known:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InvalidInputError(f"unknown board {name!r} (known: {', '.join(known)}){hint}")


def add_device(session: Session, *, create: DeviceCreate, root_secret: bytes,
               actor: Principal, now: int) -> tuple[Device, DeviceCredential]:
    """Register a device and issue its credential (returned once; only a fingerprint is kept).
    A decommissioned device's id is never registered again."""
    require(actor, Permission.DEVICE_WRITE)
    _check_board(create.board)
    with session.begin():
        existing = session.get(Device, create.id)
        if existing is not None and existing.decommissioned_at is not None:
            raise ConflictError(f"device {create.id!r} was decommissioned; its id is not reused")
        if existing is not None:
            raise ConflictError(f"device {create.id!r} is already registered")
        secret = credentials.derive_secret(root_secret, create.id, 1)
        device = Device(
            id=create.id, board=create.board, vendor_id=create.vendor_id,
            class_id=create.class_id, ward=create.ward, location=create.location,
            criticality=create.criticality, tags=sorted(set(create.tags)),
            groups=sorted(set(create.groups)), installed=dict(create.installed),
            state=DeviceState.IDLE.value, busy=False, created_at=now, last_seen=None,
            credential_generation=1, credential_fingerprint=credentials.fingerprint(secret),
            last_counter=0, schedule_number=0, schedule_decision="",
            public_key=(credentials.public_point(create.public_key)
                        if create.public_key is not None else None),
            trust_versions={}, tenant=actor.tenant, suit_device_id=create.suit_device_id,
            hospital_manifest=create.hospital_manifest,
        )
        session.add(device)
        session.add(DeviceEvent(device_id=create.id, at=now, kind="registered",
                                state=device.state, detail={"by": actor.name}))
        audit.append(session, at=now, actor=actor.name, action="device.add", subject=create.id,
                     detail=create.model_dump(mode="json"), tenant=actor.tenant)
    return device, DeviceCredential(device_id=device.id, secret_hex=secret.hex(), generation=1,
                                    fingerprint=device.credential_fingerprint)


def rotate_credential(session: Session, *, device_id: str, root_secret: bytes,
                      actor: Principal, now: int,
                      public_key: str | None = None) -> DeviceCredential:
    """Issue a new credential; the old one stops working at once. With ``public_key`` (the
    device was given a new key, e.g. provisioned again), its reports must be signed by that
    key from now on."""
    require(actor, Permission.DEVICE_CREDENTIAL)
    point = credentials.public_point(public_key) if public_key is not None else None
    with session.begin():
        device = _in_service(session, device_id, actor.tenant)
        device.credential_generation += 1
        secret = credentials.derive_secret(root_secret, device_id, device.credential_generation)
        device.credential_fingerprint = credentials.fingerprint(secret)
        detail: dict[str, object] = {"generation": device.credential_generation}
        if point is not None:
            device.public_key = point
            detail["public_key_sha256"] = hashlib.sha256(point).hexdigest()
        audit.append(session, at=now, actor=actor.name, action="device.rotate_credential",
                     subject=device_id, detail=detail, tenant=actor.tenant)
    return DeviceCredential(device_id=device_id, secret_hex=secret.hex(),
                            generation=device.credential_generation,
                            fingerprint=device.credential_fingerprint)


def update_device(session: Session, *, device_id: str, change: DeviceUpdate,
                  actor: Principal, now: int) -> Device:
    require(actor, Permission.DEVICE_WRITE)
    with session.begin():
        device = _in_service(session, device_id, actor.tenant)
        fields = change.model_dump(exclude_none=True)
        before = {name: getattr(device, name) for name in fields}
        for name, value in fields.items():
            setattr(device, name, sorted(set(value)) if name in ("tags", "groups") else value)
        session.add(DeviceEvent(device_id=device_id, at=now, kind="updated", state=device.state,
                                detail={"by": actor.name, **fields}))
        audit.append(session, at=now, actor=actor.name, action="device.update",
                     subject=device_id, detail={**fields, "before": before},
                     tenant=actor.tenant)
    return device


def _decommission_record(record: bytes, device_id: str) -> dict[str, str]:
    """What the device event keeps of a signed decommission record (COSE_Sign1 of a CBOR map,
    :mod:`suture.boardops.decommission`): the record (base64) and its SHA-256. The scheduler
    does not hold the operator's signing key: it checks the record is one, of this device."""
    try:
        payload = cbor2.loads(decode_sign1(record).payload or b"")
    except (CoseError, ValueError) as exc:
        raise InvalidInputError(f"the decommission record is not a COSE_Sign1: {exc}") from None
    if not isinstance(payload, dict) or payload.get("type") != RECORD_TYPE:
        raise InvalidInputError("the decommission record is not a suture decommission record")
    if payload.get("device_id") != device_id:
        raise InvalidInputError(f"the decommission record is of device "
                                f"{payload.get('device_id')!r}, not {device_id!r}")
    return {"record": base64.b64encode(record).decode(),
            "record_sha256": hashlib.sha256(record).hexdigest()}


def decommission_device(session: Session, *, device_id: str, actor: Principal, now: int,
                        reason: str = "", record: bytes | None = None) -> Device:
    """The device leaves service for good: its credential is revoked (it no longer
    authenticates), its unfinished rollout entries are cancelled, no rollout targets it again
    and its id is never registered again. The record and its history stay; a signed
    decommission record is kept in the history (its SHA-256 in the audit log)."""
    require(actor, Permission.DEVICE_DECOMMISSION)
    kept = {} if record is None else _decommission_record(record, device_id)
    with session.begin():
        device = _in_service(session, device_id, actor.tenant)
        device.decommissioned_at = now
        device.credential_generation += 1
        device.credential_fingerprint = ""
        device.schedule_document = None
        cancelled = session.execute(
            update(RolloutDevice)
            .where(RolloutDevice.device_id == device_id,
                   RolloutDevice.state.not_in([s.value for s in TERMINAL_ENTRY_STATES]))
            .values(state=EntryState.CANCELLED.value, updated_at=now,
                    detail="the device was decommissioned")
            .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
        session.add(DeviceEvent(device_id=device_id, at=now, kind="decommissioned",
                                state=device.state,
                                detail={"by": actor.name, "reason": reason, **kept}))
        audit.append(session, at=now, actor=actor.name, action="device.decommission",
                     subject=device_id, tenant=actor.tenant, detail={
                         "reason": reason, "rollout_entries_cancelled": cancelled,
                         **({"record_sha256": kept["record_sha256"]} if kept else {})})
    return device


def list_devices(session: Session, *, limit: int = 100, offset: int = 0,
                 group: str | None = None, tenant: str = DEFAULT_TENANT
                 ) -> tuple[list[Device], int]:
    """The devices of ``tenant`` (``services/tenants.py``), a page of them."""
    scope = tenants.device_scope(tenant)
    with session.begin():
        query = select(Device).where(scope).order_by(Device.id)
        total = session.execute(select(func.count()).select_from(Device).where(scope)
                                ).scalar_one()
        rows = list(session.execute(query).scalars()) if group else list(
            session.execute(query.limit(limit).offset(offset)).scalars())
        if group:
            rows = [d for d in rows if group in (d.groups or [])]
            total = len(rows)
            rows = rows[offset : offset + limit]
        return rows, total


def unfinished_rollouts(session: Session, *, device_id: str,
                        tenant: str = DEFAULT_TENANT) -> list[int]:
    """The rollouts whose entry of this (in-service) device is not finished."""
    with session.begin():
        _in_service(session, device_id, tenant)
        return list(session.execute(
            select(RolloutDevice.rollout_id)
            .where(RolloutDevice.device_id == device_id,
                   RolloutDevice.state.not_in([s.value for s in TERMINAL_ENTRY_STATES]))
            .order_by(RolloutDevice.rollout_id)).scalars())


def get_device(session: Session, *, device_id: str, tenant: str = DEFAULT_TENANT
               ) -> tuple[Device, list[DeviceEvent]]:
    with session.begin():
        device = _get(session, device_id, tenant)
        events = session.execute(
            select(DeviceEvent).where(DeviceEvent.device_id == device_id)
            .order_by(DeviceEvent.id.desc()).limit(MAX_HISTORY)
        ).scalars().all()
        return device, list(reversed(events))


def _get(session: Session, device_id: str, tenant: str) -> Device:
    """The device, when it is ``tenant``'s (another tenant's is answered as absent)."""
    device = session.get(Device, device_id)
    if device is None or not tenants.device_in_scope(session, device, tenant):
        raise NotFoundError(f"no device {device_id!r}")
    return device


def _in_service(session: Session, device_id: str, tenant: str) -> Device:
    device = _get(session, device_id, tenant)
    if device.decommissioned_at is not None:
        raise ConflictError(f"device {device_id!r} is decommissioned")
    return device


# Statements on the poll path, built once (parameters bound per call).
_GENERATION = select(Device.credential_generation).where(
    Device.id == bindparam("device_id"), Device.decommissioned_at.is_(None))
_LAST_COUNTER = select(Device.last_counter).where(Device.id == bindparam("device_id"))
_CONSUME = (
    update(Device)
    .where(Device.id == bindparam("device_id"), Device.last_counter < bindparam("counter"),
           Device.decommissioned_at.is_(None))
    .values(last_counter=bindparam("counter"), last_seen=bindparam("now"))
    .execution_options(synchronize_session=False)
)


@dataclass(frozen=True)
class DeviceProof:
    """A device request's signature headers and what they cover, checked by
    ``consume_counter`` inside the transaction that acts on the request."""

    req: credentials.SignedRequest
    method: str
    path: str
    body_digest_hex: str
    root_secret: bytes
    skew_s: int
    #: ``Suture-Signature``: the device key's signature (reports of a device with a key).
    signature: str | None = None


def check_device_signature(device: Device, proof: DeviceProof | None) -> None:
    """A device whose key is registered signs its reports with it: a report without that
    signature (a credential copied to another device without the key, or a forgery by anyone
    holding the secret) is refused. ``proof`` None: an in-process call, not a request."""
    if device.public_key is None or proof is None:
        return
    if not credentials.check_signature(device.public_key, proof.req, proof.signature,
                                       method=proof.method, path=proof.path,
                                       body_digest_hex=proof.body_digest_hex):
        what = "unsigned" if proof.signature is None else "not signed by the device's key"
        raise AuthenticationError(f"device report {what} ({credentials.HEADER_SIGNATURE})")


def _resync(session: Session, secret: bytes, req: credentials.SignedRequest,
            now: int) -> dict[str, str]:
    """The resync headers for a refused request whose MAC verified."""
    floor = session.execute(_LAST_COUNTER, {"device_id": req.device_id}).scalar_one_or_none()
    return credentials.resync_headers(secret, device_id=req.device_id,
                                      request_counter=req.counter, server_time=now,
                                      counter_floor=floor or 0)


def _verify_proof(session: Session, proof: DeviceProof, now: int) -> bytes:
    """Check the MAC and the time; returns the device secret."""
    req = proof.req
    generation = session.execute(_GENERATION, {"device_id": req.device_id}).scalar_one_or_none()
    secret = (credentials.derive_secret(proof.root_secret, req.device_id, generation)
              if generation is not None else _DUMMY_SECRET)
    good = credentials.check_mac(secret, req, method=proof.method, path=proof.path,
                                 body_digest_hex=proof.body_digest_hex)
    if generation is None or not good:
        raise AuthenticationError("device credential does not verify")
    if abs(now - req.time) > proof.skew_s:
        err = ClockSkewError(
            f"request time is {req.time - now:+d} s from the scheduler's clock "
            f"(allowed: ±{proof.skew_s} s); the resync headers give the scheduler's time")
        err.headers = _resync(session, secret, req, now)
        raise err
    return secret


def check_proof(session: Session, *, proof: DeviceProof, now: int) -> None:
    """Check a request's MAC, time and counter without consuming anything, so that a request
    that will be refused is refused before its body is even parsed. ``consume_counter`` checks
    again, atomically, in the transaction that acts on the request."""
    with session.begin():
        secret = _verify_proof(session, proof, now)
        last = session.execute(_LAST_COUNTER, {"device_id": proof.req.device_id}).scalar_one()
        if proof.req.counter <= last:
            err = ReplayError("request counter not above the last one accepted (replay?)")
            err.headers = _resync(session, secret, proof.req, now)
            raise err


def consume_counter(session: Session, *, device_id: str, counter: int, now: int,
                    proof: DeviceProof | None = None) -> None:
    """Inside the caller's transaction: check the request's MAC and time (``proof``, from the
    API), then accept ``counter`` only if it is above every counter seen before (atomic across
    scheduler nodes), and note when the device was last seen. Any failure rolls the whole
    transaction back: a refused request changes nothing."""
    secret = None
    if proof is not None:
        if proof.req.device_id != device_id or proof.req.counter != counter:
            raise AuthenticationError("device proof does not match the request")
        secret = _verify_proof(session, proof, now)
    result = session.execute(_CONSUME, {"device_id": device_id, "counter": counter, "now": now})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        if session.execute(select(Device.decommissioned_at).where(Device.id == device_id)
                           ).scalar_one_or_none() is not None:
            raise AuthenticationError("device credential does not verify")
        err = ReplayError("request counter not above the last one accepted (replay?)")
        if secret is not None and proof is not None:
            err.headers = _resync(session, secret, proof.req, now)
        raise err
