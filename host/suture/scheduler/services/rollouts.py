"""Rollouts: create (plan), approve, start, pause, resume, abort (with revert), advance, status.

``advance`` is run by every scheduler node on a timer. It locks each running rollout with
``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL), so two nodes never advance the same rollout
at once; the rollout's version column (optimistic locking) guards every other writer. Each pass
also ends the deployments that timed out (``policies/timeouts.py``), which then count as
failed for the thresholds.

Only a device in trial can revert: once it confirmed a version, its backup is gone. An abort
with revert is refused when devices of the rollout confirmed the release; an automatic one (the
error threshold, a recall) reverts the devices that can and leaves the confirmed ones.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from suture.scheduler.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    NotRevertibleError,
)
from suture.scheduler.filterexpr import compile_filter
from suture.scheduler.models import (
    TERMINAL_ENTRY_STATES,
    Device,
    EntryState,
    Release,
    Rollout,
    RolloutApproval,
    RolloutDevice,
    RolloutState,
)
from suture.scheduler.policies import approval, thresholds, timeouts, waves, windows
from suture.scheduler.schemas import (
    HELD_SHOWN,
    HeldDevice,
    RolloutCreate,
    RolloutPublic,
    RolloutStatus,
    WaveStatus,
)
from suture.scheduler.services import audit, planning
from suture.scheduler.services import timeouts as entry_timeouts

_TERMINAL = [s.value for s in TERMINAL_ENTRY_STATES]
#: Entries whose device may have the release installed, in trial: what a revert reverts.
_REVERTIBLE = [EntryState.INSTALLING.value, EntryState.TRIAL.value]
#: Devices named in a refusal or an audit record, at most.
_NAMED = 10


def create_rollout(session: Session, *, spec: RolloutCreate, actor: str, now: int) -> Rollout:
    """Validate the policy, plan the targets into waves; the rollout then awaits approval."""
    if spec.target_filter.strip():
        compile_filter(spec.target_filter)
    if not spec.target_groups and not spec.target_filter.strip():
        raise InvalidInputError("a rollout needs target groups, a target filter, or both")
    waves.parse_specs(spec.waves)
    if spec.window is not None:
        windows.validate(spec.window.cron, spec.window.duration_s, spec.window.tz)
    with session.begin():
        release = session.get(Release, spec.release_id)
        if release is None:
            raise NotFoundError(f"no release {spec.release_id}")
        if release.recalled:
            raise ConflictError(f"release {release.id} is recalled")
        rollout = Rollout(
            name=spec.name, release_id=release.id, target_groups=list(spec.target_groups),
            target_filter=spec.target_filter, waves=list(spec.waves), order=spec.order,
            success_threshold=spec.success_threshold, error_threshold=spec.error_threshold,
            error_min_sample=spec.error_min_sample, on_error=spec.on_error,
            window_cron=spec.window.cron if spec.window else None,
            window_duration_s=spec.window.duration_s if spec.window else None,
            window_tz=spec.window.tz if spec.window else "UTC",
            deadline=spec.deadline, download_only=spec.download_only,
            state=RolloutState.AWAITING_APPROVAL.value, current_wave=0, wave_count=0,
            target_count=0, required_approvals=1, revert_on_abort=False, status_reason="",
            created_by=actor, created_at=now,
        )
        session.add(rollout)
        session.flush()
        plan = planning.plan_targets(session, rollout=rollout, release=release, now=now)
        if plan.targets == 0:
            raise InvalidInputError(
                f"the target matches no device that needs release {release.id} "
                f"({plan.already_current} already current, {plan.busy_elsewhere} in another "
                f"rollout)")
        rollout.wave_count = len(plan.waves)
        rollout.target_count = plan.targets
        rollout.required_approvals = approval.required_approvals(plan.max_criticality)
        audit.append(session, at=now, actor=actor, action="rollout.create",
                     subject=f"rollout:{rollout.id}",
                     detail={**spec.model_dump(mode="json"), "targets": plan.targets,
                             "wave_sizes": plan.waves, "blocked": plan.blocked,
                             "required_approvals": rollout.required_approvals})
    return rollout


def _locked(session: Session, rollout_id: int) -> Rollout:
    rollout = session.execute(
        select(Rollout).where(Rollout.id == rollout_id).with_for_update()
    ).scalar_one_or_none()
    if rollout is None:
        raise NotFoundError(f"no rollout {rollout_id}")
    return rollout


def approve_rollout(session: Session, *, rollout_id: int, actor: str, now: int) -> Rollout:
    """Record ``actor``'s approval; the rollout becomes approved once enough distinct
    operators approved (two when it reaches a device of the highest criticality)."""
    with session.begin():
        rollout = _locked(session, rollout_id)
        if rollout.state != RolloutState.AWAITING_APPROVAL:
            raise ConflictError(f"rollout {rollout_id} is {rollout.state}, not awaiting approval")
        existing = set(session.execute(
            select(RolloutApproval.operator).where(RolloutApproval.rollout_id == rollout_id)
        ).scalars())
        if actor in existing:
            raise ConflictError(
                f"{actor} already approved rollout {rollout_id}; "
                f"{rollout.required_approvals} distinct operators must approve")
        session.add(RolloutApproval(rollout_id=rollout_id, operator=actor, at=now))
        approvers = existing | {actor}
        if approval.is_approved(approvers, rollout.required_approvals):
            rollout.state = RolloutState.APPROVED.value
        audit.append(session, at=now, actor=actor, action="rollout.approve",
                     subject=f"rollout:{rollout_id}",
                     detail={"approvals": sorted(approvers),
                             "required": rollout.required_approvals, "state": rollout.state})
    return rollout


def _transition(session: Session, *, rollout_id: int, actor: str, now: int, action: str,
                allowed: tuple[RolloutState, ...], to: RolloutState, reason: str = "") -> Rollout:
    with session.begin():
        rollout = _locked(session, rollout_id)
        if rollout.state not in allowed:
            need = " or ".join(s.value for s in allowed)
            raise ConflictError(f"rollout {rollout_id} is {rollout.state}; {action} needs {need}")
        rollout.state = to.value
        rollout.status_reason = reason
        if to == RolloutState.RUNNING:
            if rollout.started_at is None:
                rollout.started_at = now
            _restart_waiting(session, rollout, now)
        audit.append(session, at=now, actor=actor, action=f"rollout.{action}",
                     subject=f"rollout:{rollout_id}", detail={"state": to.value})
    return rollout


def start_rollout(session: Session, *, rollout_id: int, actor: str, now: int) -> Rollout:
    return _transition(session, rollout_id=rollout_id, actor=actor, now=now, action="start",
                       allowed=(RolloutState.APPROVED,), to=RolloutState.RUNNING)


def pause_rollout(session: Session, *, rollout_id: int, actor: str, now: int) -> Rollout:
    return _transition(session, rollout_id=rollout_id, actor=actor, now=now, action="pause",
                       allowed=(RolloutState.RUNNING,), to=RolloutState.PAUSED,
                       reason=f"paused by {actor}")


def resume_rollout(session: Session, *, rollout_id: int, actor: str, now: int) -> Rollout:
    return _transition(session, rollout_id=rollout_id, actor=actor, now=now, action="resume",
                       allowed=(RolloutState.PAUSED,), to=RolloutState.RUNNING)


def _restart_waiting(session: Session, rollout: Rollout, now: int, *,
                     wave: int | None = None) -> None:
    """The devices of the opened waves (or of ``wave``) are asked to act from now on: their
    pending entries' timeout (``policies/timeouts.py``) counts from now."""
    waves = (RolloutDevice.wave <= rollout.current_wave if wave is None
             else RolloutDevice.wave == wave)
    session.execute(
        update(RolloutDevice)
        .where(RolloutDevice.rollout_id == rollout.id, waves,
               RolloutDevice.state == EntryState.PENDING.value)
        .values(updated_at=now)
        .execution_options(synchronize_session=False))


def confirmed_devices(session: Session, rollout: Rollout) -> list[str]:
    """The devices whose last report for this rollout confirmed its release (nothing is
    installed by a download-only rollout)."""
    if rollout.download_only:
        return []
    return list(session.execute(
        select(RolloutDevice.device_id)
        .where(RolloutDevice.rollout_id == rollout.id,
               RolloutDevice.state == EntryState.SUCCEEDED.value)
        .order_by(RolloutDevice.device_id)
    ).scalars())


def abort_locked(session: Session, rollout: Rollout, *, revert: bool, reason: str,
                 now: int) -> None:
    """Inside the caller's transaction, with the rollout row locked: stop it. Devices that
    installed and are not confirmed yet (installing, trial) revert when ``revert``; confirmed
    devices keep the release (they cannot go back); the others drop what they staged."""
    rollout.state = RolloutState.ABORTED.value
    rollout.revert_on_abort = revert
    rollout.status_reason = reason
    rollout.finished_at = now
    if revert:
        session.execute(
            update(RolloutDevice)
            .where(RolloutDevice.rollout_id == rollout.id,
                   RolloutDevice.state.in_(_REVERTIBLE))
            .values(state=EntryState.REVERTING.value, updated_at=now)
            .execution_options(synchronize_session=False))
    session.execute(
        update(RolloutDevice)
        .where(RolloutDevice.rollout_id == rollout.id,
               RolloutDevice.state.not_in([*_TERMINAL, EntryState.REVERTING.value,
                                           *([] if revert else _REVERTIBLE)]))
        .values(state=EntryState.CANCELLED.value, updated_at=now)
        .execution_options(synchronize_session=False))


def abort_rollout(session: Session, *, rollout_id: int, revert: bool, actor: str,
                  now: int) -> Rollout:
    """Stop a rollout. With ``revert``, refused (``NotRevertibleError``) when devices confirmed
    the release: only devices in trial can be reverted."""
    with session.begin():
        rollout = _locked(session, rollout_id)
        if rollout.state in (RolloutState.COMPLETED, RolloutState.ABORTED) and not (
                revert and not rollout.revert_on_abort):
            raise ConflictError(f"rollout {rollout_id} is already {rollout.state}")
        confirmed = confirmed_devices(session, rollout) if revert else []
        if confirmed:
            named = ", ".join(confirmed[:_NAMED]) + (", ..." if len(confirmed) > _NAMED else "")
            raise NotRevertibleError(
                f"rollout {rollout_id} cannot be reverted: {len(confirmed)} device(s) confirmed "
                f"its release ({named}) and a confirmed version keeps no backup to go back to; "
                f"only devices in trial can be reverted. Abort without revert, and roll out a "
                f"release that fixes the problem")
        abort_locked(session, rollout, revert=revert, reason=f"aborted by {actor}", now=now)
        audit.append(session, at=now, actor=actor, action="rollout.abort",
                     subject=f"rollout:{rollout_id}", detail={"revert": revert})
    return rollout


@dataclass(frozen=True)
class AdvanceChange:
    rollout_id: int
    change: str


def advance(session: Session, *, now: int, actor: str = "scheduler",
            deployment_timeout_s: int = timeouts.DEFAULT_DEPLOYMENT_TIMEOUT_S
            ) -> list[AdvanceChange]:
    """One advancement pass over every running rollout not locked by another node; the
    deployments that made no progress for ``deployment_timeout_s`` end as failed first.

    Each rollout is advanced in a transaction of its own; its audit records are appended last,
    so the audit head is always the last lock a transaction takes (no lock-order cycles).
    """
    changes: list[AdvanceChange] = []
    with session.begin():
        ids = list(session.execute(
            select(Rollout.id).where(Rollout.state == RolloutState.RUNNING).order_by(Rollout.id)
        ).scalars())
    for rollout_id in ids:
        with session.begin():
            rollout = session.execute(
                select(Rollout).where(Rollout.id == rollout_id,
                                      Rollout.state == RolloutState.RUNNING)
                .with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if rollout is None:  # another node holds it, or it changed state meanwhile
                continue
            _replan_unassigned(session, rollout, now)
            mine: list[tuple[str, dict[str, object]]] = []
            ended = entry_timeouts.end_timed_out(session, rollout, now=now,
                                                 timeout=deployment_timeout_s)
            if ended:
                mine.append(("timeout", _timeout_detail(ended, deployment_timeout_s)))
            while True:
                change = _advance_one(session, rollout, now)
                if change is None:
                    break
                mine.append((change, {"wave": rollout.current_wave, "state": rollout.state,
                                      "reason": rollout.status_reason}))
                if change != "advance":
                    break
            for change, detail in mine:
                audit.append(session, at=now, actor=actor, action=f"rollout.{change}",
                             subject=f"rollout:{rollout.id}", detail=detail)
                changes.append(AdvanceChange(rollout.id, change))
    with session.begin():
        finished = entry_timeouts.end_timed_out_in_finished(session, now=now,
                                                            timeout=deployment_timeout_s)
        for rollout_id, devices in sorted(finished.items()):
            audit.append(session, at=now, actor=actor, action="rollout.timeout",
                         subject=f"rollout:{rollout_id}",
                         detail=_timeout_detail(devices, deployment_timeout_s))
            changes.append(AdvanceChange(rollout_id, "timeout"))
    return changes


def _timeout_detail(devices: list[str], timeout: int) -> dict[str, object]:
    return {"count": len(devices), "devices": devices[:_NAMED], "timeout_s": timeout}


def _replan_unassigned(session: Session, rollout: Rollout, now: int) -> None:
    """Plan again: pending entries without a step (their step was recalled), and blocked
    entries (the device may have met the dependency since, or a release now provides it)."""
    entries = session.execute(
        select(RolloutDevice).where(
            RolloutDevice.rollout_id == rollout.id,
            or_(RolloutDevice.state == EntryState.BLOCKED,
                and_(RolloutDevice.state == EntryState.PENDING,
                     RolloutDevice.step_release_id.is_(None))))
    ).scalars().all()
    if not entries:
        return
    target = session.get(Release, rollout.release_id)
    assert target is not None
    for entry in entries:
        device = session.get(Device, entry.device_id)
        if device is not None:
            planning.replan_entry(session, entry, device.installed or {}, target, now)


def _progress(session: Session, rollout: Rollout) -> thresholds.Progress:
    rows = session.execute(
        select(RolloutDevice.wave, RolloutDevice.state, func.count())
        .where(RolloutDevice.rollout_id == rollout.id,
               RolloutDevice.wave <= rollout.current_wave)
        .group_by(RolloutDevice.wave, RolloutDevice.state)
    ).all()
    wave_size = wave_ok = wave_open = ok = failed = 0
    for wave, state, count in rows:
        if state == EntryState.SUCCEEDED:
            ok += count
        elif state in (EntryState.FAILED, EntryState.REVERTED):
            failed += count
        if wave == rollout.current_wave:
            wave_size += count
            if state == EntryState.SUCCEEDED:
                wave_ok += count
            if state not in _TERMINAL:
                wave_open += count
    return thresholds.Progress(wave_size, wave_ok, wave_open, ok, failed,
                               rollout.current_wave >= rollout.wave_count - 1)


def _advance_one(session: Session, rollout: Rollout, now: int) -> str | None:
    verdict = thresholds.evaluate(
        _progress(session, rollout),
        thresholds.Thresholds(rollout.success_threshold, rollout.error_threshold,
                              rollout.error_min_sample))
    if verdict == thresholds.Verdict.TRIP:
        reason = (f"error threshold {rollout.error_threshold:.0%} reached "
                  f"(minimum sample {rollout.error_min_sample})")
        if rollout.on_error == "abort":
            abort_locked(session, rollout, revert=True, reason=reason, now=now)
            return "abort"
        rollout.state = RolloutState.PAUSED.value
        rollout.status_reason = reason
        return "pause"
    if verdict == thresholds.Verdict.ADVANCE:
        rollout.current_wave += 1
        rollout.status_reason = f"wave {rollout.current_wave} opened"
        _restart_waiting(session, rollout, now, wave=rollout.current_wave)
        return "advance"
    if verdict == thresholds.Verdict.COMPLETE:
        rollout.state = RolloutState.COMPLETED.value
        rollout.finished_at = now
        rollout.status_reason = "every wave finished"
        return "complete"
    return None


def list_rollouts(session: Session) -> list[RolloutPublic]:
    with session.begin():
        rows = session.execute(select(Rollout).order_by(Rollout.id)).scalars().all()
        return [_public(session, r) for r in rows]


def _public(session: Session, rollout: Rollout) -> RolloutPublic:
    approvers = session.execute(
        select(RolloutApproval.operator).where(RolloutApproval.rollout_id == rollout.id)
        .order_by(RolloutApproval.at, RolloutApproval.operator)
    ).scalars().all()
    public = RolloutPublic.model_validate(rollout)
    public.approvals = list(approvers)
    return public


def rollout_status(session: Session, *, rollout_id: int) -> RolloutStatus:
    with session.begin():
        rollout = session.get(Rollout, rollout_id)
        if rollout is None:
            raise NotFoundError(f"no rollout {rollout_id}")
        rows = session.execute(
            select(RolloutDevice.wave, RolloutDevice.state, func.count())
            .where(RolloutDevice.rollout_id == rollout_id)
            .group_by(RolloutDevice.wave, RolloutDevice.state)
        ).all()
        per_wave: dict[int, Counter[str]] = {}
        totals: Counter[str] = Counter()
        for wave, state, count in rows:
            per_wave.setdefault(wave, Counter())[state] += count
            totals[state] += count
        wave_list = [WaveStatus(wave=w, size=sum(c.values()), states=dict(c))
                     for w, c in sorted(per_wave.items())]
        held = [] if not totals[EntryState.BLOCKED.value] else [
            HeldDevice(device_id=d, wave=w, reason=why) for d, w, why in session.execute(
                select(RolloutDevice.device_id, RolloutDevice.wave, RolloutDevice.detail)
                .where(RolloutDevice.rollout_id == rollout_id,
                       RolloutDevice.state == EntryState.BLOCKED.value)
                .order_by(RolloutDevice.position).limit(HELD_SHOWN)).all()]
        return RolloutStatus(rollout=_public(session, rollout), waves=wave_list,
                             totals=dict(totals), blocked=held)
