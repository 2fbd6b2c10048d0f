"""The device's schedule: decide, and sign a new document only when the decision changes.

A poll runs one transaction: it consumes the request counter (anti-replay, row-locking the
device on PostgreSQL), reads the device's rollout entry, decides, and, if the decision's key
differs from the stored one, bumps the device's schedule number and stores the new signed
document. Two nodes serving the same device serialise on that row; each document number is
issued once.

The common poll (a device with no unfinished rollout entry whose stored document is current)
takes one statement and no ORM object: the conditional counter ``UPDATE ... RETURNING`` (the
anti-replay check and the row lock in one), whose returned row also says whether an unfinished
entry drives the device (a subquery); then the commit, shared on SQLite with the polls of its
group. The stored document is returned as it is: an unchanged schedule is never signed again.
Anything else (a refused request, an entry to decide on, a decision that changed) takes the
general path in the same transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import bindparam, literal_column, select, update
from sqlalchemy.orm import Session

from suture.keys import PrivateKey
from suture.scheduler import credentials
from suture.scheduler.driver_sql import DriverStatement
from suture.scheduler.errors import AuthenticationError, NotFoundError
from suture.scheduler.models import (
    Device,
    DeviceEvent,
    EntryState,
    Release,
    Rollout,
    RolloutDevice,
    RolloutState,
)
from suture.scheduler.policies.decide import (
    Action,
    Decision,
    DeviceView,
    EntryView,
    RolloutView,
    decide,
)
from suture.scheduler.policies.windows import ALWAYS, WindowPolicy
from suture.scheduler.schedule_doc import Artifact, Schedule, sign_schedule
from suture.scheduler.services import (
    deltas,
    hospital_manifests,
    planning,
    trust_rotations,
    vendor_grants,
)
from suture.scheduler.services.devices import DeviceProof, consume_counter


@dataclass(frozen=True)
class ScheduleContext:
    """What signing a schedule needs besides the database."""

    key: PrivateKey
    public_url: str
    poll_interval_s: int
    poll_jitter_s: int
    forced_window_s: int


@dataclass(frozen=True)
class ScheduleResult:
    document: bytes
    number: int
    etag: str
    decision: Decision


# Statements on the poll path, built once (parameters bound per call).
_ENTRIES = (
    select(RolloutDevice, Rollout)
    .join(Rollout, Rollout.id == RolloutDevice.rollout_id)
    .where(RolloutDevice.device_id == bindparam("device_id"),
           RolloutDevice.state.not_in([EntryState.SUCCEEDED.value, EntryState.FAILED.value,
                                       EntryState.REVERTED.value]))
    .order_by(RolloutDevice.rollout_id)
)
# populate_existing: a poll sharing its transaction with earlier ones (group commit) reads the
# row as it is now, not as an earlier poll of the same device left it in the session.
_DEVICE_FOR_UPDATE = (select(Device).where(Device.id == bindparam("device_id")).with_for_update()
                      .execution_options(populate_existing=True))
# An unfinished entry of the device being updated, if any. The correlation names the outer
# table in full: SQLAlchemy renders a RETURNING clause's columns unqualified on SQLite. Plain
# comparisons rather than NOT IN: an IN list is expanded again on every execution.
UNFINISHED_ENTRY = (
    select(RolloutDevice.rollout_id)
    .where(RolloutDevice.device_id == literal_column("devices.id"),
           *(RolloutDevice.state != state.value for state in (
               EntryState.SUCCEEDED, EntryState.FAILED, EntryState.REVERTED)))
    .limit(1)
    .scalar_subquery()
)
# The anti-replay check: the counter is taken only if above every one taken before, atomically
# (on PostgreSQL the UPDATE also locks the row until the transaction ends). The row returned
# also carries an unfinished entry of the device, if any (``UNFINISHED_ENTRY``): the common poll
# needs no second statement. Run on the driver's cursor (``driver_sql``).
_CONSUME_RETURNING = DriverStatement(
    update(Device)
    .where(Device.id == bindparam("device_id"), Device.last_counter < bindparam("counter"),
           Device.decommissioned_at.is_(None))
    .values(last_counter=bindparam("counter"), last_seen=bindparam("now"))
    .returning(Device.credential_generation, Device.state, Device.busy, Device.schedule_number,
               Device.schedule_decision, Device.schedule_document, UNFINISHED_ENTRY)
)


def etag_of(document: bytes) -> str:
    return '"' + hashlib.sha256(document).hexdigest()[:32] + '"'


def _current_entry(session: Session, device: Device
                   ) -> tuple[RolloutDevice | None, Rollout | None]:
    """The entry that drives this device: one to revert, else the oldest unfinished entry of a
    running or paused rollout, else a cancelled one that still has something to discard."""
    rows = session.execute(_ENTRIES, {"device_id": device.id}).all()
    reverting = [(e, r) for e, r in rows if e.state == EntryState.REVERTING]
    if reverting:
        return reverting[0]
    active = [(e, r) for e, r in rows
              if r.state in (RolloutState.RUNNING, RolloutState.PAUSED)
              and e.state != EntryState.CANCELLED]
    if active:
        return active[0]
    cancelled = [(e, r) for e, r in rows if e.state == EntryState.CANCELLED]
    if cancelled:
        return cancelled[-1]
    return None, None


def _recheck_step(session: Session, device: Device, entry: RolloutDevice, rollout: Rollout,
                  now: int) -> None:
    """Before a download or install is handed out: the entry's step must still fit what the
    device last reported (``planning.step_is_stale``); else plan its step again, so that e.g.
    a device whose loader went back below an application's requirement is given the loader
    first (or is held), never the application."""
    if entry.step_release_id is None or entry.state not in planning.BEFORE_INSTALL \
            or rollout.state not in (RolloutState.RUNNING, RolloutState.PAUSED):
        return
    step = session.get(Release, entry.step_release_id)
    installed = device.installed or {}
    if step is None or not planning.step_is_stale(step, installed, entry.state):
        return
    target = session.get(Release, rollout.release_id)
    assert target is not None
    before = (entry.state, entry.step_release_id)
    planning.replan_entry(session, entry, installed, target, now)
    session.add(DeviceEvent(
        device_id=device.id, at=now, kind="replan", state=device.state,
        detail={"rollout_id": rollout.id, "from": {"state": before[0], "step": before[1]},
                "to": {"state": entry.state, "step": entry.step_release_id},
                "installed": dict(installed), "reason": entry.detail}))


def decide_for(session: Session, device: Device, now: int, forced_window_s: int
               ) -> tuple[Decision, RolloutDevice | None]:
    entry, rollout = _current_entry(session, device)
    if entry is not None and rollout is not None:
        _recheck_step(session, device, entry, rollout, now)
    window = None
    if rollout is not None and rollout.window_cron and rollout.window_duration_s:
        window = WindowPolicy(rollout.window_cron, rollout.window_duration_s, rollout.window_tz)
    decision = decide(
        DeviceView(device.state, device.busy),
        EntryView(entry.state, entry.wave, entry.step_release_id) if entry else None,
        RolloutView(rollout.id, rollout.state, rollout.current_wave, rollout.download_only,
                    rollout.deadline, window) if rollout else None,
        now=now, forced_window_s=forced_window_s)
    return decision, entry


def _jitter(device_id: str, number: int, span: int) -> int:
    if span <= 0:
        return 0
    h = hashlib.sha256(f"{device_id}/{number}".encode()).digest()
    return int.from_bytes(h[:4], "big") % (span + 1)


def _build(session: Session, device: Device, number: int, decision: Decision, now: int,
           ctx: ScheduleContext, trust_update: bytes | None = None) -> Schedule:
    active = decision.action in (Action.DOWNLOAD, Action.INSTALL, Action.REVERT,
                                 Action.CONFIRM_WAIT, Action.ABORT)
    interval = max(10, ctx.poll_interval_s // 10) if active else ctx.poll_interval_s
    next_poll = now + interval + _jitter(device.id, number, ctx.poll_jitter_s)
    if decision.changes_at is not None and now < decision.changes_at < next_poll:
        next_poll = decision.changes_at + _jitter(device.id, number, min(60, ctx.poll_jitter_s))
    artifact = None
    if decision.release_id is not None:
        release = session.get(Release, decision.release_id)
        if release is not None:
            base = ctx.public_url.rstrip("/") + f"/api/v1/releases/{release.id}"
            artifact = Artifact(
                release_id=release.id, component=release.component,
                sequence_number=release.sequence_number,
                envelope_uri=base + "/envelope", envelope_digest=bytes.fromhex(
                    release.envelope_digest), envelope_size=release.envelope_size,
                payload_uri=base + "/payload",
                payload_digest=bytes.fromhex(release.payload_digest),
                payload_size=release.payload_size)
            artifact = deltas.choose(session, device, release, artifact, base)
    artifact, grant = vendor_grants.in_schedule(session, decision.rollout_id, device.id, artifact)
    artifact = hospital_manifests.in_schedule(session, device, decision.rollout_id, artifact, grant,
                                              key=ctx.key, public_url=ctx.public_url, now=now)
    window = decision.window
    has_window = artifact is not None and window != ALWAYS
    return Schedule(
        device_id=device.id, number=number, issued_at=now, action=int(decision.action),
        next_poll=next_poll, poll_interval=interval, rollout_id=decision.rollout_id,
        artifact=artifact,
        not_before=window.not_before if has_window else None,
        not_after=window.not_after if has_window else None,
        forced=decision.forced, grant=grant, trust_update=trust_update,
    )


def refresh_locked(session: Session, device: Device, now: int, ctx: ScheduleContext
                   ) -> tuple[bool, Decision]:
    """Inside the caller's transaction (device row locked): re-decide and re-sign if needed."""
    decision, entry = decide_for(session, device, now, ctx.forced_window_s)
    rotation = trust_rotations.pending_for(session, device)  # key 22 (trust_rotations.py)
    key = trust_rotations.decision_key(decision.key, rotation)
    if key == device.schedule_decision and device.schedule_document is not None:
        return False, decision
    if entry is not None and decision.reason.startswith("busy"):
        entry.busy_skips += 1
        entry.detail = "busy: install deferred"
        entry.updated_at = now
    device.schedule_number += 1
    device.schedule_decision = key
    device.schedule_document = sign_schedule(
        _build(session, device, device.schedule_number, decision, now, ctx,
               rotation.document if rotation is not None else None), ctx.key)
    session.add(DeviceEvent(
        device_id=device.id, at=now, kind="schedule", state=device.state,
        detail={"number": device.schedule_number, "action": decision.action.name.lower(),
                "rollout_id": decision.rollout_id, "release_id": decision.release_id,
                "reason": decision.reason}))
    return True, decision


def _consume_fast(session: Session, *, counter: int, now: int, proof: DeviceProof
                  ) -> tuple[int, str, bool, int, str, bytes | None, int | None] | None:
    """The counter consumed by one conditional UPDATE, then the MAC checked against the
    generation it returned (a bad MAC raises, and the transaction's rollback gives the counter
    back). ``None`` when the request is refused or its time is off: the caller then checks it
    the general way (``consume_counter``), which raises the exact refusal with its resync."""
    req = proof.req
    if abs(now - req.time) > proof.skew_s:
        return None
    row = _CONSUME_RETURNING.first(
        session.connection(), {"device_id": req.device_id, "counter": counter, "now": now})
    if row is None:
        return None
    generation, state, busy, number, key, document, unfinished = row
    secret = credentials.derive_secret(proof.root_secret, req.device_id, generation)
    if not credentials.check_mac(secret, req, method=proof.method, path=proof.path,
                                 body_digest_hex=proof.body_digest_hex):
        raise AuthenticationError("device credential does not verify")
    return generation, state, bool(busy), number, key, document, unfinished


def poll_schedule(session: Session, *, device_id: str, counter: int, now: int,
                  ctx: ScheduleContext, proof: DeviceProof | None = None) -> ScheduleResult:
    """A device's poll: returns its current signed schedule (new if the decision changed)."""
    with session.begin():
        return poll_in_transaction(session, device_id=device_id, counter=counter, now=now,
                                   ctx=ctx, proof=proof)


def poll_in_transaction(session: Session, *, device_id: str, counter: int, now: int,
                        ctx: ScheduleContext, proof: DeviceProof | None = None
                        ) -> ScheduleResult:
    """``poll_schedule`` inside the caller's transaction (which may hold other polls: a
    refusal raises, and the caller must then roll the whole transaction back)."""
    fast = None
    if proof is not None:
        if proof.req.device_id != device_id or proof.req.counter != counter:
            raise AuthenticationError("device proof does not match the request")
        fast = _consume_fast(session, counter=counter, now=now, proof=proof)
    if fast is None:
        consume_counter(session, device_id=device_id, counter=counter, now=now, proof=proof)
    else:
        _, state, busy, number, key, document, unfinished = fast
        if document is not None and unfinished is None:
            decision = decide(DeviceView(state, busy), None, None, now=now,
                              forced_window_s=ctx.forced_window_s)
            if decision.key == key:
                return ScheduleResult(document, number, etag_of(document), decision)
    device = session.execute(_DEVICE_FOR_UPDATE, {"device_id": device_id}
                             ).scalar_one_or_none()
    if device is None:
        raise NotFoundError(f"no device {device_id!r}")
    _, decision = refresh_locked(session, device, now, ctx)
    document = device.schedule_document
    assert document is not None
    return ScheduleResult(document, device.schedule_number, etag_of(document), decision)
