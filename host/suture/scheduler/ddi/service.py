"""What each DDI request does: authenticate the device (target or gateway token, per tenant),
decide with the scheduler's own policies (``schedules.decide_for``: waves, windows, deadlines,
busy deferral, must-pass-through steps), and map the device's feedback onto its registry state,
its rollout entry and the audit log, in one transaction per request.

A DDI action is one device's step (a release) in one rollout (``DdiAction``). How the
scheduler's decision reads in DDI:

- a download or an install due: ``deploymentBase`` (``update: forced`` inside the rollout's
  window, ``skip`` outside it or for a download-only rollout); on a busy device (in clinical
  use) ``confirmationBase`` instead: the action waits for the device's consent;
- a revert or an abort of a device that started: ``cancelAction``;
- anything else: no link, the device polls again after ``config.polling.sleep``.

Feedback: ``proceeding``/``scheduled``/``resumed``/``download`` is ``downloading``,
``downloaded`` is ``staged``, ``closed`` with ``success`` (or ``none``) is ``confirmed`` with
the step's version installed, ``closed`` with ``failure`` is ``failed`` and counts towards the
rollout's error threshold. A device that goes silent times out as any other
(``policies/timeouts.py``: its polls keep ``last_seen`` current, its feedback the entry).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from suture.scheduler.authz import Permission, Principal, require
from suture.scheduler.ddi import schemas, tokens
from suture.scheduler.driver_sql import DriverStatement, json_value
from suture.scheduler.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from suture.scheduler.models import (
    DdiAction,
    DdiTenant,
    Device,
    DeviceEvent,
    DeviceState,
    EntryState,
    Release,
    Rollout,
    RolloutDevice,
)
from suture.scheduler.policies import timeouts
from suture.scheduler.policies.decide import NOTHING, Action, Decision
from suture.scheduler.policies.windows import ALWAYS
from suture.scheduler.services import audit, planning, tenants
from suture.scheduler.services.blobs import BlobRef, blob_ref, iter_range
from suture.scheduler.services.schedules import ScheduleContext, decide_for

#: Device events of this kind hold DDI feedback (the action history).
EVENT_KIND = "ddi"
#: Messages of an action's history shown, at most.
MAX_HISTORY_MESSAGES = 50

_DOWNLOADING = frozenset({"proceeding", "scheduled", "resumed", "download"})
_ORDER = [EntryState.PENDING, EntryState.DOWNLOADING, EntryState.STAGED, EntryState.INSTALLING,
          EntryState.TRIAL]
_DUE = (Action.DOWNLOAD, Action.INSTALL)
_STOP = (Action.REVERT, Action.ABORT)


def _ddi_auth_error(message: str) -> AuthenticationError:
    err = AuthenticationError(message)
    err.headers = {"WWW-Authenticate": f"{tokens.TARGET}, {tokens.GATEWAY}"}
    return err


def authenticated_device(session: Session, *, tenant: str, device_id: str,
                         authorization: str | None, lock: bool = False) -> Device:
    """Inside the caller's transaction: the device the request's token proves, of ``tenant``.
    A target token is the device's own; a gateway token is its tenant's. Every refusal reads
    the same (no hint which devices or tenants exist)."""
    presented = tokens.parse_authorization(authorization)
    if presented is None:
        raise _ddi_auth_error("DDI requests need 'Authorization: TargetToken <token>' or "
                              "'GatewayToken <token>'")
    query = select(Device).where(Device.id == device_id)
    device = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if presented.scheme == tokens.TARGET:
        stored = device.ddi_token_hash if device is not None else None
    else:
        row = session.get(DdiTenant, tenant)
        stored = row.gateway_token_hash if row is not None else None
    good = tokens.matches(presented.token, stored)
    if (not good or device is None or device.tenant != tenant
            or device.decommissioned_at is not None):
        raise _ddi_auth_error("DDI token does not verify for this tenant and device")
    return device


def authenticate_only(session: Session, *, tenant: str, device_id: str,
                      authorization: str | None) -> None:
    """Check the request's token, before its body is parsed (401 before any 400 or 422)."""
    with session.begin():
        authenticated_device(session, tenant=tenant, device_id=device_id,
                             authorization=authorization)


def _sleep(seconds: int) -> str:
    seconds = max(1, min(seconds, 99 * 3600))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def poll_seconds(ctx: ScheduleContext, decision: Decision, now: int) -> int:
    """The scheduler's polling policy, as for its own devices: the regular interval, a tenth
    of it while a deployment is under way, earlier when the decision changes before then (a
    window opens, a deadline passes)."""
    active = decision.action in (*_DUE, *_STOP, Action.CONFIRM_WAIT)
    interval = ctx.poll_interval_s
    if active:
        interval = max(min(10, interval), interval // 10)
    if decision.changes_at is not None and now < decision.changes_at < now + interval:
        interval = decision.changes_at - now
    return interval


@dataclass(frozen=True)
class Links:
    """Builds the absolute links of a device's resources."""

    base_url: str
    tenant: str
    device_id: str

    def of(self, path: str) -> schemas.Href:
        return schemas.Href(href=f"{self.base_url}/{self.tenant}/controller/v1/"
                                 f"{self.device_id}{path}")


def _action(session: Session, device: Device, rollout_id: int, release_id: int,
            now: int) -> DdiAction:
    action = session.execute(
        select(DdiAction).where(DdiAction.device_id == device.id,
                                DdiAction.rollout_id == rollout_id,
                                DdiAction.release_id == release_id)).scalar_one_or_none()
    if action is None:
        action = DdiAction(device_id=device.id, rollout_id=rollout_id, release_id=release_id,
                           created_at=now, status="open", finished="")
        session.add(action)
        session.flush()
    return action


# The base poll's statements, compiled once a dialect and run on the driver's cursor
# (``driver_sql``): the device is seen (its row locked on PostgreSQL until the answer is
# decided), then, for a device no rollout drives, nothing else is read than whether it
# installed something through DDI.
_SEEN = DriverStatement(
    update(Device)
    .where(Device.id == bindparam("device_id"), Device.tenant == bindparam("in_tenant"),
           Device.decommissioned_at.is_(None))
    .values(last_seen=bindparam("now"))
    .returning(Device.ddi_token_hash, Device.attributes)
)
_UNFINISHED = DriverStatement(
    select(RolloutDevice.rollout_id)
    .where(RolloutDevice.device_id == bindparam("device_id"),
           *(RolloutDevice.state != state.value for state in (
               EntryState.SUCCEEDED, EntryState.FAILED, EntryState.REVERTED)))
    .limit(1)
)
_INSTALLED = DriverStatement(
    select(DdiAction.id)
    .where(DdiAction.device_id == bindparam("device_id"), DdiAction.status == "closed",
           or_(DdiAction.finished == "success", DdiAction.finished == "none"))
    .order_by(DdiAction.id.desc()).limit(1)
)


def base_poll_in_transaction(session: Session, *, tenant: str, device_id: str,
                             authorization: str | None, now: int, ctx: ScheduleContext,
                             links: Links) -> schemas.BasePoll:
    """``GET /{tenant}/controller/v1/{controllerId}``, inside the caller's transaction (which
    may hold other polls): the device is seen, the scheduler decides, and the answer links what
    the device should fetch. A refusal raises, and the caller must then roll the whole
    transaction back: a refused poll changes nothing."""
    presented = tokens.parse_authorization(authorization)
    if presented is None:
        raise _ddi_auth_error("DDI requests need 'Authorization: TargetToken <token>' or "
                              "'GatewayToken <token>'")
    conn = session.connection()
    row = _SEEN.first(conn, {"device_id": device_id, "in_tenant": tenant, "now": now})
    if presented.scheme == tokens.TARGET:
        stored = row[0] if row is not None else None
    else:
        gateway = session.get(DdiTenant, tenant)
        stored = gateway.gateway_token_hash if gateway is not None else None
    if not tokens.matches(presented.token, stored) or row is None:
        raise _ddi_auth_error("DDI token does not verify for this tenant and device")
    out = schemas.BaseLinks()
    if not json_value(row[1]):
        out.configData = links.of("/configData")
    installed = _INSTALLED.first(conn, {"device_id": device_id})
    if installed is not None:
        out.installedBase = links.of(f"/installedBase/{installed[0]}")
    decision = NOTHING
    if _UNFINISHED.first(conn, {"device_id": device_id}) is not None:
        device = session.execute(select(Device).where(Device.id == device_id)
                                 .with_for_update()).scalar_one()
        decision = _due_links(session, device, now, ctx, links, out)
    return schemas.BasePoll(config=schemas.PollConfig(polling=schemas.Polling(
        sleep=_sleep(poll_seconds(ctx, decision, now)))), links=out)


def _due_links(session: Session, device: Device, now: int, ctx: ScheduleContext, links: Links,
               out: schemas.BaseLinks) -> Decision:
    """The scheduler's decision for a device a rollout drives, as DDI links in ``out``."""
    decision, _ = decide_for(session, device, now, ctx.forced_window_s)
    if decision.rollout_id is None or decision.release_id is None:
        return decision
    if decision.action in _DUE:
        action = _action(session, device, decision.rollout_id, decision.release_id, now)
        if action.status == "open":
            tag = hashlib.sha256(decision.key.encode()).hexdigest()[:8]
            if device.busy:
                out.confirmationBase = links.of(f"/confirmationBase/{action.id}")
            else:
                out.deploymentBase = links.of(f"/deploymentBase/{action.id}?c={int(tag, 16)}")
    elif decision.action in _STOP:
        stopping = session.execute(
            select(DdiAction).where(DdiAction.device_id == device.id,
                                    DdiAction.rollout_id == decision.rollout_id,
                                    DdiAction.status == "open")
            .order_by(DdiAction.id.desc()).limit(1)).scalar_one_or_none()
        if stopping is not None:
            out.cancelAction = links.of(f"/cancelAction/{stopping.id}")
    return decision


def _own_action(session: Session, device: Device, action_id: int) -> DdiAction:
    """The action, if it is this device's (another device's action is not found)."""
    action = session.get(DdiAction, action_id)
    if action is None or action.device_id != device.id:
        raise NotFoundError(f"no action {action_id} for device {device.id!r}")
    return action


# --- what DDI says of an artefact, computed once per content -------------------------------

#: The file name suffix DDI clients expect, by the payload's first bytes: SWUpdate takes only
#: a ``.swu`` (a cpio "newc" archive), RAUC a ``.raucb`` (a SquashFS bundle).
_SUFFIXES: tuple[tuple[bytes, str], ...] = ((b"070701", ".swu"), (b"070702", ".swu"),
                                            (b"hsqs", ".raucb"))


@dataclass(frozen=True)
class ArtefactInfo:
    sha1: str
    md5: str
    suffix: str


_info_lock = threading.Lock()
_info_cache: dict[str, ArtefactInfo] = {}


def artefact_info(sessions: sessionmaker[Session], ref: BlobRef) -> ArtefactInfo:
    """SHA-1 and MD5 (which DDI clients check, next to the SHA-256 the release verified) and
    the file name suffix; the payload is read once per content (blobs are content-addressed,
    never changed)."""
    with _info_lock:
        known = _info_cache.get(ref.digest)
    if known is not None:
        return known
    sha1, md5 = hashlib.sha1(usedforsecurity=False), hashlib.md5(usedforsecurity=False)
    head = b""
    if ref.size:
        for piece in iter_range(sessions, ref, 0, ref.size - 1):
            if not head:
                head = piece[:8]
            sha1.update(piece)
            md5.update(piece)
    suffix = next((s for magic, s in _SUFFIXES if head.startswith(magic)), ".bin")
    known = ArtefactInfo(sha1.hexdigest(), md5.hexdigest(), suffix)
    with _info_lock:
        _info_cache[ref.digest] = known
    return known


def artefact_name(release: Release, info: ArtefactInfo) -> str:
    return f"{release.component}-{release.sequence_number}{info.suffix}"


@dataclass(frozen=True)
class ActionView:
    """What a deployment document needs, read in the request's transaction."""

    action_id: int
    release: Release
    payload: BlobRef
    decision: Decision
    download_only: bool
    #: The device is busy (in clinical use): nothing is installed until it consents.
    busy: bool
    history: schemas.ActionHistory | None


def _history(session: Session, action: DdiAction, count: int | None
             ) -> schemas.ActionHistory | None:
    if count is None:
        return None
    status = {"open": "RUNNING", "cancelled": "CANCELED"}.get(
        action.status, "FINISHED" if action.finished in ("success", "none") else "ERROR")
    wanted = MAX_HISTORY_MESSAGES if count < 0 else min(count, MAX_HISTORY_MESSAGES)
    rows = session.execute(
        select(DeviceEvent.at, DeviceEvent.detail)
        .where(DeviceEvent.device_id == action.device_id, DeviceEvent.kind == EVENT_KIND)
        .order_by(DeviceEvent.id.desc()).limit(4 * MAX_HISTORY_MESSAGES)).all()
    messages = []
    for at, detail in rows:
        if detail.get("action_id") != action.id:
            continue
        text = "; ".join(str(d) for d in detail.get("details", ()))
        messages.append(f"{at} {detail.get('execution')} {detail.get('finished')}"
                        + (f": {text}" if text else ""))
        if len(messages) >= wanted:
            break
    return schemas.ActionHistory(status=status, messages=messages)


def action_view(session: Session, *, tenant: str, device_id: str, authorization: str | None,
                action_id: int, now: int, ctx: ScheduleContext, history: int | None,
                installed: bool = False) -> ActionView:
    """The action behind ``deploymentBase``, ``confirmationBase`` or (``installed``)
    ``installedBase``, of this device."""
    with session.begin():
        device = authenticated_device(session, tenant=tenant, device_id=device_id,
                                      authorization=authorization)
        action = _own_action(session, device, action_id)
        if installed and not (action.status == "closed"
                              and action.finished in ("success", "none")):
            raise NotFoundError(f"action {action_id} installed nothing")
        release = session.get(Release, action.release_id)
        rollout = session.get(Rollout, action.rollout_id)
        assert release is not None
        assert rollout is not None
        decision, _ = decide_for(session, device, now, ctx.forced_window_s)
        return ActionView(action.id, release,
                          blob_ref(session, release.payload_digest, f"release {release.id}"),
                          decision, rollout.download_only, device.busy,
                          _history(session, action, history))


def deployment(view: ActionView, info: ArtefactInfo, links: Links, *,
               now: int) -> schemas.Deployment:
    """The deployment of an action: its one chunk (the release's component) with its one
    artefact (the payload the SUIT envelope verified), and what to do with it now."""
    decision = view.decision
    current = decision.release_id == view.release.id and decision.action in _DUE
    window = decision.window if current else ALWAYS
    in_window = decision.forced or window.contains(now)
    update: schemas.HandlingType = "forced" if (
        current and in_window and not view.busy and not view.download_only) else "skip"
    name = artefact_name(view.release, info)
    href = links.of(f"/softwaremodules/{view.release.id}/artifacts/{name}")
    hashes = schemas.Hashes(sha1=info.sha1, md5=info.md5, sha256=view.payload.digest)
    artefact = schemas.Artifact(
        filename=name, hashes=hashes, size=view.payload.size,
        links=schemas.ArtifactLinks(download=href, download_http=href))
    return schemas.Deployment(
        download="forced" if current else "skip", update=update,
        maintenanceWindow=(None if window == ALWAYS
                           else "available" if in_window else "unavailable"),
        chunks=[schemas.Chunk(part=view.release.component,
                              version=str(view.release.sequence_number),
                              name=view.release.component, artifacts=[artefact])])


def download_ref(session: Session, sessions: sessionmaker[Session], *, tenant: str,
                 device_id: str, authorization: str | None, release_id: int, filename: str,
                 now: int) -> BlobRef:
    """An artefact's bytes, for the device one of whose actions names the release."""
    with session.begin():
        device = authenticated_device(session, tenant=tenant, device_id=device_id,
                                      authorization=authorization)
        device.last_seen = now
        release = session.get(Release, release_id)
        has_action = session.execute(
            select(DdiAction.id).where(DdiAction.device_id == device.id,
                                       DdiAction.release_id == release_id).limit(1)).first()
        ref = None
        if release is not None and has_action is not None:
            ref = blob_ref(session, release.payload_digest, f"release {release.id}")
    if ref is None or release is None or filename != artefact_name(
            release, artefact_info(sessions, ref)):
        raise NotFoundError(f"no artefact {filename!r} for device {device_id!r}")
    return ref


# --- feedback ------------------------------------------------------------------------------

def _forward(entry: RolloutDevice, target: EntryState) -> None:
    current = EntryState(entry.state)
    if current in _ORDER and _ORDER.index(target) >= _ORDER.index(current):
        entry.state = target.value


#: What the history keeps of a feedback's details (an installer's log): the last lines.
KEPT_DETAILS = 16
KEPT_DETAIL_CHARS = 240


def kept_details(details: list[str]) -> list[str]:
    return [d[:KEPT_DETAIL_CHARS] for d in details[-KEPT_DETAILS:]]


def _failure_text(status: schemas.Status) -> str:
    text = "; ".join(kept_details(status.details)[-4:])[:400]
    code = f" (code {status.code})" if status.code is not None else ""
    return f"DDI client reported failure{code}" + (f": {text}" if text else "")


def _move_entry(session: Session, device: Device, entry: RolloutDevice, rollout: Rollout,
                release: Release, status: schemas.Status, now: int) -> None:
    current = EntryState(entry.state)
    timed_out = current == EntryState.FAILED and entry.detail.startswith(timeouts.TIMED_OUT)
    if current in (EntryState.CANCELLED, EntryState.REVERTING) or (
            current in (EntryState.SUCCEEDED, EntryState.FAILED, EntryState.REVERTED)
            and not timed_out):
        return
    if entry.step_release_id is not None and entry.step_release_id != release.id:
        return  # feedback on an earlier step
    execution, finished = status.execution, status.result.finished
    if execution in _DOWNLOADING:
        _forward(entry, EntryState.DOWNLOADING)
    elif execution == "downloaded":
        _forward(entry, EntryState.STAGED)
        if rollout.download_only:
            entry.state = EntryState.SUCCEEDED.value
    elif execution == "closed" and finished == "failure":
        entry.state = EntryState.FAILED.value
        entry.detail = _failure_text(status)
    elif execution == "closed" and rollout.download_only:
        entry.state = EntryState.SUCCEEDED.value
    elif execution == "closed":
        target = session.get(Release, rollout.release_id)
        assert target is not None
        planning.replan_entry(session, entry, device.installed or {}, target, now)


def _device_state(status: schemas.Status, download_only: bool) -> DeviceState | None:
    execution, finished = status.execution, status.result.finished
    if execution in _DOWNLOADING:
        return DeviceState.DOWNLOADING
    if execution == "downloaded":
        return DeviceState.STAGED
    if execution == "closed":
        if finished == "failure":
            return DeviceState.FAILED
        return DeviceState.STAGED if download_only else DeviceState.CONFIRMED
    if execution == "canceled":
        return DeviceState.IDLE
    return None  # rejected: the device keeps what it had


def record_feedback(session: Session, *, tenant: str, device_id: str,
                    authorization: str | None, action_id: int, feedback: schemas.Feedback,
                    now: int, cancel: bool = False) -> None:
    """Feedback on a deployment (or, ``cancel``, on a cancellation): the device's state, its
    installed version, its rollout entry, its history and the audit log, in one transaction."""
    with session.begin():
        device = authenticated_device(session, tenant=tenant, device_id=device_id,
                                      authorization=authorization, lock=True)
        action = _own_action(session, device, action_id)
        release = session.get(Release, action.release_id)
        rollout = session.get(Rollout, action.rollout_id)
        entry = session.get(RolloutDevice, (action.rollout_id, device.id))
        assert release is not None
        assert rollout is not None
        status = feedback.status
        previous = device.state
        device.last_seen = now
        before = entry.state if entry is not None else None
        if cancel:
            _cancel_feedback(device, action, entry, status)
        else:
            new_state = _device_state(status, rollout.download_only)
            if status.execution == "closed":
                action.status, action.finished = "closed", status.result.finished
                if status.result.finished != "failure" and not rollout.download_only:
                    installed = dict(device.installed or {})
                    installed[release.component] = max(installed.get(release.component, 0),
                                                       release.sequence_number)
                    device.installed = installed
            elif status.execution == "canceled":
                action.status = "cancelled"
            if new_state is not None:
                device.state = new_state.value
            if entry is not None:
                _move_entry(session, device, entry, rollout, release, status, now)
        detail: dict[str, object] = {
            "action_id": action.id, "rollout_id": rollout.id, "release_id": release.id,
            "channel": "cancelAction" if cancel else "deploymentBase",
            "execution": status.execution, "finished": status.result.finished,
            "details": kept_details(status.details)}
        if status.code is not None:
            detail["code"] = status.code
        if status.result.progress is not None:
            detail["progress"] = status.result.progress.model_dump(exclude_none=True)
        if entry is not None and entry.state != before:
            entry.updated_at = now
            detail["entry"] = f"{before} -> {entry.state}"
        elif entry is not None and status.execution in _DOWNLOADING:
            entry.updated_at = now  # progress: the deployment is alive
        session.add(DeviceEvent(device_id=device.id, at=now, kind=EVENT_KIND,
                                state=device.state, detail=detail))
        audit.append(session, at=now, actor=f"device:{device.id}", action="device.report",
                     subject=device.id, detail={"from": previous, "state": device.state,
                                                **detail})


def _cancel_feedback(device: Device, action: DdiAction, entry: RolloutDevice | None,
                     status: schemas.Status) -> None:
    """The device's answer to ``cancelAction``: it stopped (``canceled``, or ``closed`` with
    success), or it could not (``rejected``, ``closed`` with failure)."""
    stopped = status.execution == "canceled" or (
        status.execution == "closed" and status.result.finished != "failure")
    refused = status.execution == "rejected" or (
        status.execution == "closed" and status.result.finished == "failure")
    if stopped:
        action.status = "cancelled"
        device.state = DeviceState.IDLE.value
        if entry is not None and entry.state == EntryState.REVERTING:
            entry.state = EntryState.REVERTED.value
    elif refused and entry is not None and entry.state == EntryState.REVERTING:
        entry.state = EntryState.FAILED.value
        entry.detail = "not cancelled: " + _failure_text(status)


def cancel_action(session: Session, *, tenant: str, device_id: str, authorization: str | None,
                  action_id: int, now: int, ctx: ScheduleContext) -> schemas.CancelAction:
    """``GET .../cancelAction/{actionId}``: only while the scheduler asks the device to stop
    that action (its rollout was aborted)."""
    with session.begin():
        device = authenticated_device(session, tenant=tenant, device_id=device_id,
                                      authorization=authorization)
        action = _own_action(session, device, action_id)
        decision, _ = decide_for(session, device, now, ctx.forced_window_s)
        if decision.action not in _STOP or decision.rollout_id != action.rollout_id:
            raise NotFoundError(f"action {action_id} is not being cancelled")
        return schemas.CancelAction(id=str(action.id),
                                    cancelAction=schemas.StopId(stopId=str(action.id)))


def put_config_data(session: Session, *, tenant: str, device_id: str,
                    authorization: str | None, config: schemas.ConfigData, now: int) -> None:
    """``PUT .../configData``: the device's attributes into the registry (merged, replaced or
    removed as ``mode`` says)."""
    with session.begin():
        device = authenticated_device(session, tenant=tenant, device_id=device_id,
                                      authorization=authorization, lock=True)
        current = dict(device.attributes or {})
        if config.mode == "replace":
            current = dict(config.data)
        elif config.mode == "remove":
            for name in config.data:
                current.pop(name, None)
        else:
            current.update(config.data)
        if len(current) > schemas.MAX_ATTRIBUTES:
            raise InvalidInputError(f"a device keeps at most {schemas.MAX_ATTRIBUTES} "
                                    "attributes")
        device.attributes = current
        device.last_seen = now
        session.add(DeviceEvent(device_id=device.id, at=now, kind="attributes",
                                state=device.state,
                                detail={"mode": config.mode, "data": dict(config.data)}))
        audit.append(session, at=now, actor=f"device:{device.id}", action="device.attributes",
                     subject=device.id, detail={"mode": config.mode, "names": sorted(current)})


def confirmation_base(session: Session, *, tenant: str, device_id: str,
                      authorization: str | None, now: int, ctx: ScheduleContext,
                      links: Links) -> schemas.ConfirmationBase:
    """``GET .../confirmationBase``: auto-confirm is active while the device is not busy; an
    action due on a busy device waits for its consent."""
    with session.begin():
        device = authenticated_device(session, tenant=tenant, device_id=device_id,
                                      authorization=authorization)
        decision, _ = decide_for(session, device, now, ctx.forced_window_s)
        out = schemas.ConfirmationLinks()
        if device.busy and decision.action in _DUE and decision.rollout_id is not None \
                and decision.release_id is not None:
            action = _action(session, device, decision.rollout_id, decision.release_id, now)
            out.confirmationBase = links.of(f"/confirmationBase/{action.id}")
        return schemas.ConfirmationBase(
            autoConfirm=schemas.AutoConfirm(state="inactive" if device.busy else "active"),
            links=out)


def record_confirmation(session: Session, *, tenant: str, device_id: str,
                        authorization: str | None, action_id: int,
                        answer: schemas.ConfirmationFeedback, now: int) -> None:
    """The device's consent: ``confirmed`` ends its busy state (the install may proceed, in the
    rollout's window); ``denied`` keeps it busy and the install is deferred."""
    with session.begin():
        device = authenticated_device(session, tenant=tenant, device_id=device_id,
                                      authorization=authorization, lock=True)
        action = _own_action(session, device, action_id)
        if action.status != "open":
            raise ConflictError(f"action {action_id} is {action.status}")
        device.busy = answer.confirmation == "denied"
        device.last_seen = now
        entry = session.get(RolloutDevice, (action.rollout_id, device.id))
        if entry is not None and device.busy:
            entry.busy_skips += 1
            entry.detail = "busy: install deferred (the device denied consent)"
            entry.updated_at = now
        detail = {"action_id": action.id, "confirmation": answer.confirmation,
                  "details": list(answer.details)}
        session.add(DeviceEvent(device_id=device.id, at=now, kind="confirmation",
                                state=device.state, detail=detail))
        audit.append(session, at=now, actor=f"device:{device.id}", action="device.report",
                     subject=device.id, detail={"busy": device.busy, **detail})


# --- tokens (operators) --------------------------------------------------------------------

def _check_ddi_tenant(session: Session, tenant: str, actor: Principal) -> None:
    """Inside the caller's transaction: ``tenant`` (a DDI tenant name) is one whose devices are
    ``actor``'s (``services/tenants.py``): a registered tenant's own name for its operators;
    for ``DEFAULT``'s, a name no registered tenant holds. Refused otherwise, so no operator
    moves a device into another tenant's scope or holds a token for another tenant's devices;
    the refusal names no other tenant."""
    if actor.tenant != tenants.DEFAULT_TENANT:
        if tenant != actor.tenant:
            raise InvalidInputError(f"the devices of tenant {actor.tenant!r} answer DDI under "
                                    f"/{actor.tenant}/ only, not /{tenant}/")
    elif tenant != tenants.DEFAULT_TENANT and tenants.exists(session, tenant):
        raise InvalidInputError(f"{tenant!r} is a tenant's name: its devices and tokens are "
                                "its own operators' (services/tenants.py)")


def issue_target_token(session: Session, *, device_id: str, tenant: str, kind: str,
                       actor: Principal, now: int) -> str:
    """A new target token for the device (the previous one stops working), under ``tenant``
    and of ``kind``; returned once. The device must be the operator's tenant's (another's is
    answered as absent) and stay so (``_check_ddi_tenant``)."""
    require(actor, Permission.DEVICE_CREDENTIAL)
    token = tokens.new_token()
    with session.begin():
        device = session.get(Device, device_id)
        if device is None or not tenants.device_in_scope(session, device, actor.tenant):
            raise NotFoundError(f"no device {device_id!r}")
        if device.decommissioned_at is not None:
            raise ConflictError(f"device {device_id!r} is decommissioned")
        _check_ddi_tenant(session, tenant, actor)
        device.tenant, device.kind = tenant, kind
        device.ddi_token_hash = tokens.token_hash(token)
        session.add(DeviceEvent(device_id=device_id, at=now, kind="updated", state=device.state,
                                detail={"by": actor.name, "ddi_target_token": "issued",
                                        "tenant": tenant, "kind": kind}))
        audit.append(session, at=now, actor=actor.name, action="device.ddi_target_token",
                     subject=device_id, detail={"tenant": tenant, "kind": kind},
                     tenant=actor.tenant)
    return token


def issue_gateway_token(session: Session, *, tenant: str, actor: Principal, now: int) -> str:
    """A new gateway token for ``tenant`` (the previous one stops working); returned once. It
    authenticates every device of the tenant: keep it on the gateway only. Only for a DDI
    tenant whose devices are the operator's (``_check_ddi_tenant``)."""
    require(actor, Permission.DEVICE_CREDENTIAL)
    token = tokens.new_token()
    with session.begin():
        _check_ddi_tenant(session, tenant, actor)
        row = session.get(DdiTenant, tenant)
        if row is None:
            session.add(DdiTenant(name=tenant, gateway_token_hash=tokens.token_hash(token),
                                  created_at=now, created_by=actor.name))
        else:
            row.gateway_token_hash, row.created_at, row.created_by = (
                tokens.token_hash(token), now, actor.name)
        audit.append(session, at=now, actor=actor.name, action="ddi.gateway_token",
                     subject=f"tenant:{tenant}", detail={}, tenant=actor.tenant)
    return token

