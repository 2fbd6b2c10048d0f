"""Rollouts: create (plan), approve, deny, start, pause, resume, abort (with revert), advance,
status.

``advance`` is run by every scheduler node on a timer. It locks each running rollout with
``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL), so two nodes never advance the same rollout
at once; the rollout's version column (optimistic locking) guards every other writer. The
sweep of the rollouts that ended is done by one node at a time (``cluster_lock``: an advisory
lock). Each pass
also ends the deployments that timed out (``policies/timeouts.py``), which then count as
failed for the thresholds.

Only a device in trial can revert: once it confirmed a version, its backup is gone. An abort
with revert is refused when devices of the rollout confirmed the release; an automatic one (the
error threshold, a recall) reverts the devices that can and leaves the confirmed ones.

Approvals (``policies/approval.py``) are counted when they matter: at start, at resume, and
before a wave that holds a device of criticality ``TWO_PERSON_CRITICALITY`` opens, from the
devices' criticality at that moment. An approval binds to the rollout's content (``digest``):
a change of targets or policy (``update_rollout``) resets the approvals.

An approver may deny a rollout instead, with a reason (``deny_rollout``). The denial binds to
the rollout's content like an approval: while it stands the rollout is neither approved further
nor started nor resumed. A change of its content (``update_rollout``) clears it (the record
stays); an abort withdraws the rollout.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from suture.scheduler.authz import Permission, Principal, require
from suture.scheduler.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    NotRevertibleError,
)
from suture.scheduler.filterexpr import compile_filter
from suture.scheduler.models import (
    DEFAULT_TENANT,
    TERMINAL_ENTRY_STATES,
    Device,
    EntryState,
    Release,
    Rollout,
    RolloutApproval,
    RolloutDenial,
    RolloutDevice,
    RolloutState,
)
from suture.scheduler.policies import approval, thresholds, timeouts, waves, windows
from suture.scheduler.schemas import (
    HELD_SHOWN,
    MAX_REASON,
    ApprovalPublic,
    DenialPublic,
    HeldDevice,
    RolloutCreate,
    RolloutPublic,
    RolloutStatus,
    RolloutUpdate,
    WaveStatus,
    WindowSpec,
)
from suture.scheduler.services import (
    audit,
    operators,
    planning,
    tenants,
    vendor_grants,
    vendor_releases,
)
from suture.scheduler.services import timeouts as entry_timeouts

_TERMINAL = [s.value for s in TERMINAL_ENTRY_STATES]
#: Entries whose device may have the release installed, in trial: what a revert reverts.
_REVERTIBLE = [EntryState.INSTALLING.value, EntryState.TRIAL.value]
#: Devices named in a refusal or an audit record, at most.
_NAMED = 10

#: What may change, and when: targets and waves only before the rollout started.
_BEFORE_START = (RolloutState.AWAITING_APPROVAL, RolloutState.APPROVED)
_APPROVABLE = (*_BEFORE_START, RolloutState.PAUSED)
_TARGET_FIELDS = frozenset({"target_groups", "target_filter", "waves", "order", "download_only"})


def check_reason(reason: str, *, required: bool) -> str:
    """The reason of an approval or denial, trimmed: at most ``MAX_REASON`` characters, no
    control characters but line breaks and tabs, not empty when ``required``."""
    text = reason.strip()
    if required and not text:
        raise InvalidInputError("a denial needs a reason: say what must change")
    if len(text) > MAX_REASON:
        raise InvalidInputError(f"the reason is {len(text)} characters long; at most "
                                f"{MAX_REASON}")
    if any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in text):
        raise InvalidInputError("the reason holds control characters")
    return text


def _check_spec(spec: RolloutCreate) -> None:
    if spec.target_filter.strip():
        compile_filter(spec.target_filter)
    if not spec.target_groups and not spec.target_filter.strip():
        raise InvalidInputError("a rollout needs target groups, a target filter, or both")
    waves.parse_specs(spec.waves)
    if spec.window is not None:
        windows.validate(spec.window.cron, spec.window.duration_s, spec.window.tz)


def _check_deadline(deadline: int | None, now: int) -> None:
    """A deadline already past would make every device install at once, window or not."""
    if deadline is not None and deadline <= now:
        when = datetime.fromtimestamp(deadline, UTC).isoformat(timespec="minutes")
        raise InvalidInputError(f"the deadline {when} is in the past: give a later one, or none")


def create_rollout(session: Session, *, spec: RolloutCreate, actor: Principal,
                   now: int) -> Rollout:
    """Validate the policy, plan the targets into waves; the rollout then awaits approval."""
    require(actor, Permission.ROLLOUT_PLAN)
    _check_spec(spec)
    _check_deadline(spec.deadline, now)
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
            created_by=actor.name, authors=[actor.name], created_at=now, tenant=actor.tenant,
        )
        session.add(rollout)
        session.flush()
        plan = planning.plan_targets(session, rollout=rollout, release=release, now=now)
        vendor_releases.check_targets(session, rollout, release)
        if plan.targets == 0:
            raise InvalidInputError(
                f"the target matches no device that needs release {release.id} "
                f"({plan.already_current} already current, {plan.busy_elsewhere} in another "
                f"rollout)")
        rollout.wave_count = len(plan.waves)
        rollout.target_count = plan.targets
        rollout.required_approvals = approval.required_approvals(plan.max_criticality)
        audit.append(session, at=now, tenant=rollout.tenant,
                     actor=actor.name, action="rollout.create",
                     subject=f"rollout:{rollout.id}",
                     detail={**spec.model_dump(mode="json"), "targets": plan.targets,
                             "wave_sizes": plan.waves, "blocked": plan.blocked,
                             "required_approvals": rollout.required_approvals})
    return rollout


def _locked(session: Session, rollout_id: int, tenant: str) -> Rollout:
    """The rollout, locked, when it is ``tenant``'s (another tenant's is answered as absent)."""
    rollout = session.execute(
        select(Rollout).where(Rollout.id == rollout_id, Rollout.tenant == tenant)
        .with_for_update()
    ).scalar_one_or_none()
    if rollout is None:
        raise NotFoundError(f"no rollout {rollout_id}")
    return rollout


def approval_digest(session: Session, rollout: Rollout) -> str:
    """SHA-256 of what an approver approves: the release, the targeted devices and their waves,
    and the policy (not the name, the state or the progress)."""
    entries = session.execute(
        select(RolloutDevice.device_id, RolloutDevice.wave)
        .where(RolloutDevice.rollout_id == rollout.id).order_by(RolloutDevice.device_id)
    ).all()
    content = {
        "release_id": rollout.release_id, "target_groups": sorted(rollout.target_groups or ()),
        "target_filter": rollout.target_filter, "waves": list(rollout.waves or ()),
        "order": rollout.order, "success_threshold": rollout.success_threshold,
        "error_threshold": rollout.error_threshold, "error_min_sample": rollout.error_min_sample,
        "on_error": rollout.on_error, "window": [rollout.window_cron, rollout.window_duration_s,
                                                 rollout.window_tz],
        "deadline": rollout.deadline, "download_only": rollout.download_only,
        "targets": [[device, wave] for device, wave in entries],
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def tally_approvals(session: Session, rollout: Rollout, *, wave: int | None = None
                    ) -> tuple[approval.Tally, int]:
    """Inside the caller's transaction: the approvals that count now, against the number the
    targeted devices' current criticality needs (all unfinished entries, or those of ``wave``);
    also that criticality."""
    crit_query = (select(func.max(Device.criticality))
                  .join(RolloutDevice, RolloutDevice.device_id == Device.id)
                  .where(RolloutDevice.rollout_id == rollout.id,
                         RolloutDevice.state.not_in(_TERMINAL)))
    if wave is not None:
        crit_query = crit_query.where(RolloutDevice.wave == wave)
    max_crit = int(session.execute(crit_query).scalar_one_or_none() or 0)
    given = [approval.Approval(name, digest) for name, digest in session.execute(
        select(RolloutApproval.operator, RolloutApproval.digest)
        .where(RolloutApproval.rollout_id == rollout.id)
        .order_by(RolloutApproval.at, RolloutApproval.operator)).all()]
    standing = operators.approvers_in_good_standing(session, (a.operator for a in given),
                                                    rollout.tenant)
    result = approval.tally(given, required=approval.required_approvals(max_crit),
                            digest=approval_digest(session, rollout),
                            authors=set(rollout.authors or ()) | {rollout.created_by},
                            approvers=standing)
    return result, max_crit


def standing_denial(session: Session, rollout_id: int) -> RolloutDenial | None:
    """Inside the caller's transaction: the rollout's denial that stands (the latest not
    cleared), if any."""
    return session.execute(
        select(RolloutDenial).where(RolloutDenial.rollout_id == rollout_id,
                                    RolloutDenial.cleared_at.is_(None))
        .order_by(RolloutDenial.id.desc()).limit(1)).scalar_one_or_none()


def _denied_text(rollout_id: int, denial: RolloutDenial) -> str:
    return (f"rollout {rollout_id} was denied by {denial.operator}: {denial.reason} "
            f"(change it, which clears the denial, or abort it)")


def _check_approver(rollout: Rollout, actor: Principal, verb: str) -> None:
    if rollout.state not in _APPROVABLE:
        raise ConflictError(f"rollout {rollout.id} is {rollout.state}; approvals and denials "
                            f"are given while it awaits approval, is approved or paused")
    if actor.name in set(rollout.authors or ()) | {rollout.created_by}:
        raise ForbiddenError(f"{actor.name} created or changed rollout {rollout.id}: "
                             f"another approver must {verb} it")


def approve_rollout(session: Session, *, rollout_id: int, actor: Principal,
                    now: int, reason: str = "") -> Rollout:
    """Record ``actor``'s approval of the rollout as it is now, with an optional ``reason``.
    Only an approver who neither created nor changed the rollout may approve, and not while a
    denial stands; the rollout is ``approved`` once the approvals that count reach what its
    devices' criticality needs (checked again at start)."""
    require(actor, Permission.ROLLOUT_APPROVE)
    reason = check_reason(reason, required=False)
    with session.begin():
        rollout = _locked(session, rollout_id, actor.tenant)
        _check_approver(rollout, actor, "approve")
        denial = standing_denial(session, rollout_id)
        if denial is not None:
            raise ConflictError(_denied_text(rollout_id, denial))
        digest = approval_digest(session, rollout)
        mine = session.get(RolloutApproval, (rollout_id, actor.name))
        if mine is not None and mine.digest == digest:
            raise ConflictError(
                f"{actor.name} already approved rollout {rollout_id}; "
                f"{rollout.required_approvals} distinct approvers must approve")
        if mine is None:
            session.add(RolloutApproval(rollout_id=rollout_id, operator=actor.name, at=now,
                                        digest=digest, reason=reason))
        else:
            mine.at, mine.digest, mine.reason = now, digest, reason
        session.flush()
        result, max_crit = tally_approvals(session, rollout)
        rollout.required_approvals = result.required
        if rollout.state == RolloutState.AWAITING_APPROVAL and result.ok:
            rollout.state = RolloutState.APPROVED.value
        audit.append(session, at=now, tenant=rollout.tenant,
                     actor=actor.name, action="rollout.approve",
                     subject=f"rollout:{rollout_id}",
                     detail={"approvals": result.counted, "required": result.required,
                             "max_criticality": max_crit, "digest": digest,
                             "state": rollout.state, "reason": reason})
    return rollout


def deny_rollout(session: Session, *, rollout_id: int, actor: Principal, now: int,
                 reason: str) -> Rollout:
    """Record ``actor``'s denial of the rollout as it is now, with its (required) ``reason``.
    The same approvers as for an approval may deny. An approved rollout goes back to awaiting
    approval; until the rollout's content changes (``update_rollout``) or it is aborted, it is
    neither approved further nor started nor resumed."""
    require(actor, Permission.ROLLOUT_APPROVE)
    reason = check_reason(reason, required=True)
    with session.begin():
        rollout = _locked(session, rollout_id, actor.tenant)
        _check_approver(rollout, actor, "deny")
        denial = standing_denial(session, rollout_id)
        if denial is not None:
            raise ConflictError(f"rollout {rollout_id} is already denied by {denial.operator}: "
                                f"{denial.reason}")
        digest = approval_digest(session, rollout)
        session.add(RolloutDenial(rollout_id=rollout_id, operator=actor.name, at=now,
                                  reason=reason, digest=digest))
        if rollout.state == RolloutState.APPROVED:
            rollout.state = RolloutState.AWAITING_APPROVAL.value
        rollout.status_reason = f"denied by {actor.name}: {reason}"
        audit.append(session, at=now, tenant=rollout.tenant,
                     actor=actor.name, action="rollout.deny",
                     subject=f"rollout:{rollout_id}",
                     detail={"reason": reason, "digest": digest, "state": rollout.state})
    return rollout


def _transition(session: Session, *, rollout_id: int, actor: Principal, now: int, action: str,
                allowed: tuple[RolloutState, ...], to: RolloutState, reason: str = "") -> Rollout:
    """Move the rollout to ``to``. Start and resume count the approvals first: when they fall
    short the rollout is not moved (a start goes back to awaiting approval) and the refusal is
    audited before it is raised."""
    require(actor, Permission.ROLLOUT_OPERATE)
    refused: str | None = None
    with session.begin():
        rollout = _locked(session, rollout_id, actor.tenant)
        if rollout.state not in allowed:
            need = " or ".join(s.value for s in allowed)
            raise ConflictError(f"rollout {rollout_id} is {rollout.state}; {action} needs {need}")
        detail: dict[str, Any] = {"state": to.value}
        denial = standing_denial(session, rollout_id) if to == RolloutState.RUNNING else None
        if denial is not None:
            raise ConflictError(_denied_text(rollout_id, denial))
        if to == RolloutState.RUNNING:
            result, max_crit = tally_approvals(session, rollout)
            rollout.required_approvals = result.required
            detail.update(approvals=result.counted, required=result.required,
                          max_criticality=max_crit)
            if not result.ok:
                refused = f"rollout {rollout_id} {result.explain()}"
                if rollout.state == RolloutState.APPROVED:
                    rollout.state = RolloutState.AWAITING_APPROVAL.value
                rollout.status_reason = refused
                audit.append(session, at=now, tenant=rollout.tenant,
                             actor=actor.name, action=f"rollout.{action}_refused",
                             subject=f"rollout:{rollout_id}",
                             detail={**detail, "state": rollout.state,
                                     "ignored": result.ignored})
            else:  # the vendor's grant must cover the rollout as it is (services/vendor_grants)
                refused = vendor_grants.refuse_start(session, rollout, actor=actor.name,
                                                     action=action, now=now)
        if refused is None:
            rollout.state = to.value
            rollout.status_reason = reason
            if to == RolloutState.RUNNING:
                if rollout.started_at is None:
                    rollout.started_at = now
                _restart_waiting(session, rollout, now)
            audit.append(session, at=now, tenant=rollout.tenant,
                         actor=actor.name, action=f"rollout.{action}",
                         subject=f"rollout:{rollout_id}", detail=detail)
    if refused is not None:
        raise ConflictError(refused)
    return rollout


def start_rollout(session: Session, *, rollout_id: int, actor: Principal, now: int) -> Rollout:
    return _transition(session, rollout_id=rollout_id, actor=actor, now=now, action="start",
                       allowed=(RolloutState.APPROVED, RolloutState.AWAITING_APPROVAL),
                       to=RolloutState.RUNNING)


def pause_rollout(session: Session, *, rollout_id: int, actor: Principal, now: int) -> Rollout:
    return _transition(session, rollout_id=rollout_id, actor=actor, now=now, action="pause",
                       allowed=(RolloutState.RUNNING,), to=RolloutState.PAUSED,
                       reason=f"paused by {actor.name}")


def resume_rollout(session: Session, *, rollout_id: int, actor: Principal, now: int) -> Rollout:
    return _transition(session, rollout_id=rollout_id, actor=actor, now=now, action="resume",
                       allowed=(RolloutState.PAUSED,), to=RolloutState.RUNNING)


def update_rollout(session: Session, *, rollout_id: int, change: RolloutUpdate,
                   actor: Principal, now: int) -> Rollout:
    """Change a rollout's targets or policy (before it starts), or its policy (while paused).
    Every approval is reset, and the changer becomes one of its authors (who never count as
    approvers); targets are planned again."""
    require(actor, Permission.ROLLOUT_PLAN)
    fields = {k: v for k, v in change.model_dump(exclude_unset=True).items()
              if v is not None or k in ("window", "deadline")}
    if not fields:
        raise InvalidInputError("nothing to change")
    if fields.get("deadline") is not None:
        _check_deadline(fields["deadline"], now)
    with session.begin():
        rollout = _locked(session, rollout_id, actor.tenant)
        allowed = _BEFORE_START if _TARGET_FIELDS & fields.keys() else _APPROVABLE
        if rollout.state not in allowed:
            need = " or ".join(s.value for s in allowed)
            raise ConflictError(f"rollout {rollout_id} is {rollout.state}; changing "
                                f"{', '.join(sorted(fields))} needs {need} (pause it first)")
        spec = RolloutCreate(
            name=fields.get("name", rollout.name), release_id=rollout.release_id,
            target_groups=fields.get("target_groups", rollout.target_groups),
            target_filter=fields.get("target_filter", rollout.target_filter),
            waves=fields.get("waves", rollout.waves), order=fields.get("order", rollout.order),
            success_threshold=fields.get("success_threshold", rollout.success_threshold),
            error_threshold=fields.get("error_threshold", rollout.error_threshold),
            error_min_sample=fields.get("error_min_sample", rollout.error_min_sample),
            on_error=fields.get("on_error", rollout.on_error),
            window=change.window if "window" in fields else (
                None if rollout.window_cron is None else
                WindowSpec(cron=rollout.window_cron, duration_s=int(rollout.window_duration_s or 0),
                           tz=rollout.window_tz)),
            deadline=fields.get("deadline", rollout.deadline),
            download_only=fields.get("download_only", rollout.download_only))
        _check_spec(spec)
        before_digest = approval_digest(session, rollout)
        rollout.name = spec.name
        rollout.target_groups, rollout.target_filter = list(spec.target_groups), spec.target_filter
        rollout.waves, rollout.order = list(spec.waves), spec.order
        rollout.success_threshold, rollout.error_threshold = (spec.success_threshold,
                                                              spec.error_threshold)
        rollout.error_min_sample, rollout.on_error = spec.error_min_sample, spec.on_error
        rollout.window_cron = spec.window.cron if spec.window else None
        rollout.window_duration_s = spec.window.duration_s if spec.window else None
        rollout.window_tz = spec.window.tz if spec.window else "UTC"
        rollout.deadline, rollout.download_only = spec.deadline, spec.download_only
        detail: dict[str, Any] = {"changed": change.model_dump(mode="json", exclude_unset=True)}
        if _TARGET_FIELDS & fields.keys():
            session.execute(delete(RolloutDevice).where(RolloutDevice.rollout_id == rollout.id))
            release = session.get(Release, rollout.release_id)
            assert release is not None
            plan = planning.plan_targets(session, rollout=rollout, release=release, now=now)
            vendor_releases.check_targets(session, rollout, release)
            if plan.targets == 0:
                raise InvalidInputError(
                    f"the new target matches no device that needs release {release.id}")
            rollout.wave_count, rollout.target_count = len(plan.waves), plan.targets
            rollout.current_wave = 0
            detail.update(targets=plan.targets, wave_sizes=plan.waves, blocked=plan.blocked)
        if approval_digest(session, rollout) != before_digest:
            reset = list(session.execute(
                select(RolloutApproval.operator).where(RolloutApproval.rollout_id == rollout.id)
                .order_by(RolloutApproval.operator)).scalars())
            session.execute(delete(RolloutApproval)
                            .where(RolloutApproval.rollout_id == rollout.id))
            if actor.name not in (rollout.authors or ()):
                rollout.authors = [*(rollout.authors or ()), actor.name]
            if rollout.state == RolloutState.APPROVED:
                rollout.state = RolloutState.AWAITING_APPROVAL.value
            result, _ = tally_approvals(session, rollout)
            rollout.required_approvals = result.required
            rollout.status_reason = f"changed by {actor.name}: approvals reset"
            detail.update(approvals_reset=reset, required=result.required)
            denial = standing_denial(session, rollout.id)
            if denial is not None:
                denial.cleared_at, denial.cleared_by = now, actor.name
                rollout.status_reason = (f"changed by {actor.name}: approvals reset, the "
                                         f"denial by {denial.operator} cleared")
                detail.update(denial_cleared=denial.operator)
        audit.append(session, at=now, tenant=rollout.tenant,
                     actor=actor.name, action="rollout.update",
                     subject=f"rollout:{rollout_id}", detail=detail)
    return rollout


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


def abort_rollout(session: Session, *, rollout_id: int, revert: bool, actor: Principal,
                  now: int) -> Rollout:
    """Stop a rollout. With ``revert``, refused (``NotRevertibleError``) when devices confirmed
    the release: only devices in trial can be reverted."""
    require(actor, Permission.ROLLOUT_OPERATE)
    with session.begin():
        rollout = _locked(session, rollout_id, actor.tenant)
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
        abort_locked(session, rollout, revert=revert, reason=f"aborted by {actor.name}", now=now)
        audit.append(session, at=now, tenant=rollout.tenant,
                     actor=actor.name, action="rollout.abort",
                     subject=f"rollout:{rollout_id}", detail={"revert": revert})
    return rollout


@dataclass(frozen=True)
class AdvanceChange:
    rollout_id: int
    change: str


def advance(session: Session, *, now: int, actor: str = "scheduler",
            deployment_timeout_s: int = timeouts.DEFAULT_DEPLOYMENT_TIMEOUT_S,
            tenant: str | None = None) -> list[AdvanceChange]:
    """One advancement pass over every running rollout (of ``tenant``, when given: an
    operator's pass) not locked by another node; the deployments that made no progress for
    ``deployment_timeout_s`` end as failed first.

    Each rollout is advanced in a transaction of its own; its audit records are appended last,
    so the audit head is always the last lock a transaction takes (no lock-order cycles).
    """
    changes: list[AdvanceChange] = []
    with session.begin():
        running = select(Rollout.id).where(Rollout.state == RolloutState.RUNNING)
        if tenant is not None:
            running = running.where(Rollout.tenant == tenant)
        ids = list(session.execute(running.order_by(Rollout.id)).scalars())
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
                audit.append(session, at=now, tenant=rollout.tenant, actor=actor,
                             action=f"rollout.{change}",
                             subject=f"rollout:{rollout.id}", detail=detail)
                changes.append(AdvanceChange(rollout.id, change))
    with session.begin():
        if not cluster_lock(session, "rollouts.timeout-sweep"):  # another node sweeps now
            return changes
        finished = entry_timeouts.end_timed_out_in_finished(session, now=now,
                                                            timeout=deployment_timeout_s)
        owners: dict[int, str] = {
            row.id: row.tenant for row in session.execute(
                select(Rollout.id, Rollout.tenant).where(Rollout.id.in_(list(finished))))
        } if finished else {}
        for rollout_id, devices in sorted(finished.items()):
            owner = owners.get(rollout_id, DEFAULT_TENANT)
            audit.append(session, at=now, tenant=owner, actor=actor, action="rollout.timeout",
                         subject=f"rollout:{rollout_id}",
                         detail=_timeout_detail(devices, deployment_timeout_s))
            if tenant is None or owner == tenant:
                changes.append(AdvanceChange(rollout_id, "timeout"))
    return changes


def cluster_lock(session: Session, name: str) -> bool:
    """Inside the caller's transaction: whether this node may do the once-only work ``name``
    now. On PostgreSQL, a transaction-level advisory lock (``pg_try_advisory_xact_lock``) on a
    key derived from ``name``, released at commit or rollback (a node that dies mid-pass
    releases it with its connection): False when another node holds it. On SQLite, True (the
    database takes one writer at a time)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    return bool(session.execute(select(func.pg_try_advisory_xact_lock(key))).scalar_one())


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
        gate = _wave_gate(session, rollout, rollout.current_wave + 1)
        if gate is not None:
            rollout.state = RolloutState.PAUSED.value
            rollout.status_reason = gate
            return "pause"
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


def _wave_gate(session: Session, rollout: Rollout, wave: int) -> str | None:
    """Why ``wave`` may not open yet (None: it may): it holds a device of criticality
    ``TWO_PERSON_CRITICALITY`` or more, by the devices' criticality now, and the approvals that
    count do not reach two."""
    result, max_crit = tally_approvals(session, rollout, wave=wave)
    if max_crit < approval.TWO_PERSON_CRITICALITY or result.ok:
        return None
    return (f"wave {wave + 1} reaches a device of criticality {max_crit}: it {result.explain()}; "
            f"approve, then resume")


def list_rollouts(session: Session, *, tenant: str = DEFAULT_TENANT) -> list[RolloutPublic]:
    """The rollouts of ``tenant``."""
    with session.begin():
        rows = session.execute(select(Rollout).where(Rollout.tenant == tenant)
                               .order_by(Rollout.id)).scalars().all()
        return [_public(session, r) for r in rows]


def _public(session: Session, rollout: Rollout) -> RolloutPublic:
    given = session.execute(
        select(RolloutApproval).where(RolloutApproval.rollout_id == rollout.id)
        .order_by(RolloutApproval.at, RolloutApproval.operator)
    ).scalars().all()
    public = RolloutPublic.model_validate(rollout)
    public.approvals = [a.operator for a in given]
    public.approval_reasons = [ApprovalPublic.model_validate(a) for a in given]
    public.denials = [DenialPublic.model_validate(d) for d in session.execute(
        select(RolloutDenial).where(RolloutDenial.rollout_id == rollout.id)
        .order_by(RolloutDenial.id)).scalars()]
    public.denied = any(d.cleared_at is None for d in public.denials)
    public.vendor = vendor_grants.public_verdict(session, rollout)
    return public


def rollout_status(session: Session, *, rollout_id: int, tenant: str = DEFAULT_TENANT
                   ) -> RolloutStatus:
    with session.begin():
        rollout = tenants.rollout_of(session, rollout_id, tenant)
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
