"""Device reports: the device is the ground truth for what it runs and where it is.

A report updates the registry (state, installed versions, busy, last seen), appends to the
device's history and the audit log, and moves the device's rollout entry along. All in one
transaction with the counter check: a replayed or rejected report changes nothing.

The common report (no rollout named, no unfinished rollout entry driving the device, its
stored schedule still the one to serve) takes two Core statements of its own and no ORM object
(``consume_report_counter``, ``check_report_signature``, then ``record_common``): the
conditional counter ``UPDATE ... RETURNING`` (the anti-replay check, the row lock on
PostgreSQL, and what the report needs of the device, in one) and the device's new state. Its
history event and audit record are written with those of the other reports of its group, when
the group's transaction is about to commit (``ReportWrites``): one ``executemany`` of the
events, the audit head read and locked, one ``executemany`` of the records, the head moved.
Anything else (a refused request, a rollout entry to move, a decision that changes) takes the
general path in the same transaction, the counter already taken, after the group's writes so
far.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from suture.formats import error_codes
from suture.scheduler import credentials
from suture.scheduler.driver_sql import DriverStatement, json_value
from suture.scheduler.errors import AuthenticationError, InvalidInputError, NotFoundError
from suture.scheduler.models import (
    Device,
    DeviceEvent,
    DeviceState,
    EntryState,
    Release,
    Rollout,
    RolloutDevice,
)
from suture.scheduler.policies import timeouts
from suture.scheduler.policies.decide import DeviceView, decide
from suture.scheduler.schemas import ReportError, ReportIn
from suture.scheduler.services import audit, deltas, planning
from suture.scheduler.services.audit import AuditKey
from suture.scheduler.services.devices import (
    DeviceProof,
    check_device_signature,
    consume_counter,
)
from suture.scheduler.services.schedules import UNFINISHED_ENTRY, ScheduleContext, refresh_locked

# Entry state reached when the device reports this state (for the entry's current step).
_FORWARD = {
    DeviceState.DOWNLOADING: EntryState.DOWNLOADING,
    DeviceState.STAGED: EntryState.STAGED,
    DeviceState.INSTALLING: EntryState.INSTALLING,
    DeviceState.TRIAL: EntryState.TRIAL,
}
#: Entry states in which a delta is downloaded and applied: a failure there falls back to the
#: full payload when it was a delta's.
_STAGING = (EntryState.PENDING, EntryState.DOWNLOADING)
_ORDER = [EntryState.PENDING, EntryState.DOWNLOADING, EntryState.STAGED, EntryState.INSTALLING,
          EntryState.TRIAL]
#: The agent's answer to a revert when there is no trial: the version was confirmed and its
#: backup is gone (docs/formats/error-codes.md).
NO_TRIAL_TO_REVERT = error_codes.load().code("agent", "NO_TRIAL_TO_REVERT")


@dataclass(frozen=True)
class ReportOutcome:
    schedule_number: int
    schedule_changed: bool


@dataclass(frozen=True)
class ConsumedReport:
    """What the counter's ``UPDATE ... RETURNING`` read of the device (its values before the
    report), once the request's MAC verified."""

    public_key: bytes | None
    state: str
    busy: bool
    installed: dict[str, int]
    trust_versions: dict[str, int]
    schedule_number: int
    schedule_decision: str
    has_document: bool
    #: A rollout of an unfinished entry of the device, if any.
    unfinished: int | None


# Statements of the common report, compiled once a dialect and run on the driver's cursor
# (``driver_sql``): SQLAlchemy's per-call work cost more than these statements did.
_CONSUME_RETURNING = DriverStatement(
    update(Device)
    .where(Device.id == bindparam("device_id"), Device.last_counter < bindparam("counter"),
           Device.decommissioned_at.is_(None))
    .values(last_counter=bindparam("counter"), last_seen=bindparam("now"))
    .returning(Device.credential_generation, Device.public_key, Device.state, Device.busy,
               Device.installed, Device.trust_versions, Device.schedule_number,
               Device.schedule_decision, Device.schedule_document.is_not(None), UNFINISHED_ENTRY)
)
_SET_REPORTED = DriverStatement(
    update(Device)
    .where(Device.id == bindparam("device_id"))
    .values(state=bindparam("state"), busy=bindparam("busy"),
            installed=bindparam("installed"), trust_versions=bindparam("trust_versions")),
    json_params=("installed", "trust_versions"))
_ADD_EVENT = DriverStatement(
    insert(DeviceEvent).values(device_id=bindparam("device_id"), at=bindparam("at"),
                               kind=bindparam("kind"), state=bindparam("state"),
                               detail=bindparam("detail")),
    json_params=("detail",))


def consume_report_counter(conn: Connection, *, proof: DeviceProof, now: int
                           ) -> ConsumedReport | None:
    """Inside the caller's transaction: the request's counter taken by one conditional UPDATE,
    then its MAC checked against the credential generation that UPDATE returned (a bad MAC
    raises, and the rollback gives the counter back). ``None`` when the request is refused or
    its time is off, with nothing changed: the caller then checks it the general way
    (``devices.check_proof``), which raises the exact refusal with its resync headers."""
    req = proof.req
    if abs(now - req.time) > proof.skew_s:
        return None
    row = _CONSUME_RETURNING.first(
        conn, {"device_id": req.device_id, "counter": req.counter, "now": now})
    if row is None:
        return None
    (generation, public_key, state, busy, installed, trust, number, key, has_document,
     unfinished) = row
    secret = credentials.derive_secret(proof.root_secret, req.device_id, generation)
    if not credentials.check_mac(secret, req, method=proof.method, path=proof.path,
                                 body_digest_hex=proof.body_digest_hex):
        raise AuthenticationError("device credential does not verify")
    return ConsumedReport(public_key, state, bool(busy), dict(json_value(installed) or {}),
                          dict(json_value(trust) or {}), number, key, bool(has_document),
                          unfinished)


def check_report_signature(consumed: ConsumedReport, proof: DeviceProof) -> None:
    """A device whose key is registered signs its reports with it
    (``devices.check_device_signature``, from what the counter's UPDATE read)."""
    if consumed.public_key is not None and not credentials.check_signature(
            consumed.public_key, proof.req, proof.signature, method=proof.method,
            path=proof.path, body_digest_hex=proof.body_digest_hex):
        what = "unsigned" if proof.signature is None else "not signed by the device's key"
        raise AuthenticationError(f"device report {what} ({credentials.HEADER_SIGNATURE})")


class ReportWrites:
    """The writes of the common reports of one transaction (a group's, ``record_common``): each
    report's device row at once (a later report of the same device reads it), the history
    events and audit records together at ``flush``, one ``executemany`` each, the audit head
    read, locked and moved once (``audit.AuditBatch``). The caller flushes before the
    transaction commits, and before anything else in it writes history or audit records (the
    general path)."""

    def __init__(self, conn: Connection, key: AuditKey) -> None:
        self.conn = conn
        self.audit = audit.AuditBatch(conn, key)
        self._events: list[dict[str, Any]] = []

    def event(self, params: dict[str, Any]) -> None:
        self._events.append(params)

    def flush(self) -> None:
        events, self._events = self._events, []
        _ADD_EVENT.many(self.conn, events)
        self.audit.flush()  # last: the audit head is the last lock every transaction takes


def record_common(writes: ReportWrites, *, device_id: str, consumed: ConsumedReport,
                  report: ReportIn, now: int, ctx: ScheduleContext) -> ReportOutcome | None:
    """Inside the caller's transaction, the counter taken (``consume_report_counter``) and the
    signature checked: the report of a device no rollout entry drives, by Core statements, its
    history event and audit record written at ``writes.flush()``. ``None``, with nothing
    written, when the report names a rollout, an unfinished entry
    drives the device, or the report would change its schedule: ``record_consumed`` then
    records it the general way."""
    if report.rollout_id is not None or consumed.unfinished is not None \
            or not consumed.has_document:
        return None
    busy = consumed.busy if report.busy is None else report.busy
    trust = dict(consumed.trust_versions)
    if report.trust is not None:
        reported = {str(role): version for role, version in report.trust.items()}
        if any(version < trust.get(role, 0) for role, version in reported.items()):
            return None  # a version gone back may make a trust rotation due again
        trust.update(reported)
    decision = decide(DeviceView(report.state, busy), None, None, now=now,
                      forced_window_s=ctx.forced_window_s)
    if decision.key != consumed.schedule_decision:
        return None
    installed = dict(report.installed) if report.installed is not None else consumed.installed
    _SET_REPORTED.rows(writes.conn, {"device_id": device_id, "state": report.state,
                                     "busy": busy, "installed": installed,
                                     "trust_versions": trust})
    detail: dict[str, Any] = report.model_dump(mode="json", exclude_none=True)
    writes.event({"device_id": device_id, "at": now, "kind": "report", "state": report.state,
                  "detail": detail})
    writes.audit.append(at=now, actor=f"device:{device_id}", action="device.report",
                        subject=device_id, detail={"from": consumed.state, **detail})
    return ReportOutcome(consumed.schedule_number, False)


def record_consumed(session: Session, *, device_id: str, report: ReportIn, now: int,
                    ctx: ScheduleContext) -> ReportOutcome:
    """Inside the caller's transaction, the counter taken and the signature checked
    (``consume_report_counter``, ``check_report_signature``): the report recorded the
    general way."""
    return _record_locked(session, device_id, report, now, ctx, None)


# The general path's device, read as it is now (populate_existing): a report sharing its
# transaction with earlier ones of the same device reads what they left.
_DEVICE_FOR_UPDATE = (select(Device).where(Device.id == bindparam("device_id")).with_for_update()
                      .execution_options(populate_existing=True))


def record_report(session: Session, *, device_id: str, counter: int, report: ReportIn, now: int,
                  ctx: ScheduleContext, proof: DeviceProof | None = None) -> ReportOutcome:
    with session.begin():
        consume_counter(session, device_id=device_id, counter=counter, now=now, proof=proof)
        return _record_locked(session, device_id, report, now, ctx, proof)


def _record_locked(session: Session, device_id: str, report: ReportIn, now: int,
                   ctx: ScheduleContext, proof: DeviceProof | None) -> ReportOutcome:
    """The general path, inside the caller's transaction, the counter taken: the device row
    locked and loaded, its entry moved, its schedule decided again."""
    device = session.execute(_DEVICE_FOR_UPDATE, {"device_id": device_id}
                             ).scalar_one_or_none()
    if device is None:
        raise NotFoundError(f"no device {device_id!r}")
    check_device_signature(device, proof)
    previous = device.state
    if report.installed is not None:
        device.installed = dict(report.installed)
    if report.busy is not None:
        device.busy = report.busy
    if report.trust is not None:
        trust = {**(device.trust_versions or {})}
        trust.update((str(role), version) for role, version in report.trust.items())
        if trust != device.trust_versions:
            device.trust_versions = trust
    device.state = report.state
    detail = report.model_dump(mode="json", exclude_none=True)
    entry_change = _move_entry(session, device, report, now)
    if entry_change:
        detail["entry"] = entry_change
    session.add(DeviceEvent(device_id=device_id, at=now, kind="report", state=report.state,
                            detail=detail))
    changed, _ = refresh_locked(session, device, now, ctx)
    # Last: the audit head is the last lock every transaction takes.
    audit.append(session, at=now, actor=f"device:{device_id}", action="device.report",
                 subject=device_id, detail={"from": previous, **detail})
    return ReportOutcome(device.schedule_number, changed)


def _move_entry(session: Session, device: Device, report: ReportIn, now: int) -> str:
    if report.rollout_id is None:
        return ""
    entry = session.get(RolloutDevice, (report.rollout_id, device.id))
    if entry is None:
        raise InvalidInputError(f"device {device.id} is not part of rollout {report.rollout_id}")
    rollout = session.get(Rollout, report.rollout_id)
    assert rollout is not None
    if report.release_id is not None and entry.step_release_id is not None \
            and report.release_id != entry.step_release_id \
            and entry.state not in (EntryState.REVERTING, EntryState.SUCCEEDED):
        return "stale report (another step)"
    state = DeviceState(report.state)
    before = entry.state
    current = EntryState(entry.state)
    timed_out = current == EntryState.FAILED and entry.detail.startswith(timeouts.TIMED_OUT)
    if current == EntryState.REVERTING:
        _move_reverting(entry, state, report)
    elif current == EntryState.CANCELLED:
        pass
    elif state in _FORWARD:
        target = _FORWARD[state]
        if current in _ORDER and _ORDER.index(target) >= _ORDER.index(current):
            entry.state = target.value
        if state == DeviceState.STAGED and rollout.download_only:
            entry.state = EntryState.SUCCEEDED.value
    elif state == DeviceState.CONFIRMED and (
            current not in (EntryState.SUCCEEDED, EntryState.FAILED) or timed_out):
        # A device that timed out and is heard of again, confirmed, counts as it should.
        release = session.get(Release, rollout.release_id)
        step = session.get(Release, entry.step_release_id) if entry.step_release_id else None
        assert release is not None
        installed = device.installed or {}
        if step is not None and installed.get(step.component, 0) < step.sequence_number:
            entry.state = EntryState.FAILED.value
            entry.detail = (f"confirmed, but reports {step.component} "
                            f"#{installed.get(step.component, 0)}, not #{step.sequence_number}")
        else:
            planning.replan_entry(session, entry, installed, release, now)
    elif state == DeviceState.FAILED and current in _STAGING \
            and _delta_failed(session, device, entry, report, now):
        entry.state = EntryState.PENDING.value
    elif state == DeviceState.FAILED and current not in (EntryState.SUCCEEDED,):
        entry.state = EntryState.FAILED.value
        entry.detail = (_error_text(report.error) if report.error else "device reported failure")
    elif state == DeviceState.REVERTED and current not in (EntryState.SUCCEEDED,):
        entry.state = EntryState.FAILED.value
        entry.detail = "device reverted (trial failed)"
    if entry.state != before:
        entry.updated_at = now
        return f"{before} -> {entry.state}"
    return ""


def _delta_failed(session: Session, device: Device, entry: RolloutDevice, report: ReportIn,
                  now: int) -> bool:
    """A failure while the device is served a delta of the entry's step: recorded, and the
    step starts again with the release's full payload (services/deltas.py). The decision
    (download this step) stays the same but its artifact changes, so the schedule is signed
    again. False when no delta was served: the failure is the full payload's."""
    step = session.get(Release, entry.step_release_id) if entry.step_release_id else None
    if step is None:
        return False
    error = report.error
    why = _error_text(error) if error is not None else "device reported failure"
    failure = deltas.record_failure(session, device, step, now=now,
                                    error_code=error.code if error is not None else None,
                                    detail=why)
    if failure is None:
        return False
    entry.detail = f"delta {failure.delta_id} failed, the full payload next: {why}"
    device.schedule_decision = ""
    return True


def _move_reverting(entry: RolloutDevice, state: DeviceState, report: ReportIn) -> None:
    """A device asked to revert: it reverted, or it cannot (it confirmed the release, so its
    backup is gone: error 150), or the revert failed. Each ends the entry."""
    error = report.error
    if (error is not None and error.code == NO_TRIAL_TO_REVERT) or state == DeviceState.CONFIRMED:
        entry.state = EntryState.FAILED.value
        why = _error_text(error) if error is not None else "it reports it"
        entry.detail = f"not reverted: the device confirmed the release ({why})"
    elif state in (DeviceState.REVERTED, DeviceState.IDLE):
        entry.state = EntryState.REVERTED.value
    elif state == DeviceState.FAILED:
        entry.state = EntryState.FAILED.value
        entry.detail = "revert failed: " + (_error_text(error) if error is not None
                                            else "device reported failure")


def _error_text(error: ReportError) -> str:
    """A device's error for people: its code named from the device's tables, and its message."""
    return f"error {error.code} ({error_codes.load().name(error.code)}): {error.message}"
