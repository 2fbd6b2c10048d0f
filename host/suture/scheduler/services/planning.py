"""Rollout planning: choose the targeted devices, order them into waves, and give each its
first step on the path to the release (must-pass-through releases first)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from suture.scheduler.filterexpr import compile_filter
from suture.scheduler.models import (
    TERMINAL_ENTRY_STATES,
    Device,
    EntryState,
    Release,
    Rollout,
    RolloutDevice,
    RolloutState,
)
from suture.scheduler.policies import paths, waves

FINISHED_ROLLOUTS = (RolloutState.COMPLETED.value, RolloutState.ABORTED.value)
_INSERT_BATCH = 5000
# Core insert (no ORM bookkeeping) for the one bulk write of planning.
_ENTRY_INSERT = insert(cast(Table, RolloutDevice.__table__))


def release_node(r: Release) -> paths.ReleaseNode:
    return paths.ReleaseNode(
        id=r.id, component=r.component, sequence_number=r.sequence_number,
        must_pass_through=r.must_pass_through, recalled=r.recalled,
        requires=tuple((str(q["component"]), int(q["min_version"])) for q in r.requires or ()),
    )


def load_graph(session: Session, release: Release) -> list[paths.ReleaseNode]:
    """Every release of the same vendor and class (all components): the version graph."""
    rows = session.execute(
        select(Release).where(Release.vendor_id == release.vendor_id,
                              Release.class_id == release.class_id)
    ).scalars()
    return [release_node(r) for r in rows]


@dataclass(frozen=True)
class PlanResult:
    targets: int
    waves: list[int]
    already_current: int
    busy_elsewhere: int
    max_criticality: int
    #: Targets held (``blocked``) because a requirement cannot be met yet.
    blocked: int = 0


_DEVICE_COLUMNS = (
    Device.id, Device.board, Device.vendor_id, Device.class_id, Device.ward, Device.location,
    Device.criticality, Device.tags, Device.groups, Device.installed, Device.state,
    Device.busy, Device.last_seen, Device.created_at,
)
_COLUMN_KEYS = tuple(col.key for col in _DEVICE_COLUMNS)


def plan_targets(session: Session, *, rollout: Rollout, release: Release, now: int) -> PlanResult:
    """Inside the caller's transaction: write one ``RolloutDevice`` per targeted device."""
    predicate = compile_filter(rollout.target_filter) if rollout.target_filter.strip() else None
    groups = set(rollout.target_groups or ())
    # Devices already in an unfinished rollout of the same component stay with that one.
    engaged = set(session.execute(
        select(RolloutDevice.device_id)
        .join(Rollout, Rollout.id == RolloutDevice.rollout_id)
        .join(Release, Release.id == Rollout.release_id)
        .where(Rollout.state.not_in(FINISHED_ROLLOUTS),
               Release.component == release.component,
               RolloutDevice.state.not_in([s.value for s in TERMINAL_ENTRY_STATES]))
    ).scalars())
    rows = session.execute(
        select(*_DEVICE_COLUMNS).where(Device.vendor_id == release.vendor_id,
                                       Device.class_id == release.class_id,
                                       Device.decommissioned_at.is_(None))
    ).all()
    graph = load_graph(session, release)
    target = release_node(release)
    cands: list[waves.Candidate] = []
    installed_of: dict[str, Mapping[str, int]] = {}
    already = busy_elsewhere = 0
    max_crit = 0
    for row in rows:
        rec = dict(zip(_COLUMN_KEYS, row, strict=True))  # keyed as the filter expects
        if groups and not groups.intersection(rec["groups"] or ()):
            continue
        if predicate is not None and not predicate(rec):
            continue
        installed = rec["installed"] or {}
        if installed.get(release.component, 0) >= release.sequence_number:
            already += 1
            continue
        if rec["id"] in engaged:
            busy_elsewhere += 1
            continue
        installed_of[rec["id"]] = installed
        max_crit = max(max_crit, int(rec["criticality"]))
        cands.append(waves.Candidate(rec["id"], int(installed.get(release.component, 0)),
                                     int(rec["criticality"]), int(rec["created_at"])))
    assigned = waves.assign_waves(cands, rollout.waves, rollout.order)
    sizes = waves.wave_sizes(rollout.waves, len(cands)) if cands else []
    batch: list[dict[str, Any]] = []
    steps: dict[tuple[tuple[str, int], ...], paths.Step] = {}  # few distinct installed sets
    reasons: dict[tuple[tuple[str, int], ...], str] = {}
    blocked = 0
    for position, (cand, wave) in enumerate(assigned):
        installed_key = tuple(sorted(installed_of[cand.device_id].items()))
        step = steps.get(installed_key)
        if step is None:
            step = steps[installed_key] = paths.next_step(dict(installed_key), target, graph)
            if step.blocked:
                reasons[installed_key] = paths.blocked_reason(step, dict(installed_key), graph)
        blocked += step.blocked
        batch.append({
            "rollout_id": rollout.id, "device_id": cand.device_id, "wave": wave,
            "position": position,
            "state": EntryState.BLOCKED.value if step.blocked else EntryState.PENDING.value,
            "step_release_id": step.release.id if step.release else None,
            "busy_skips": 0, "updated_at": now,
            "detail": reasons[installed_key] if step.blocked else "",
        })
        if len(batch) >= _INSERT_BATCH:
            session.connection().execute(_ENTRY_INSERT, batch)
            batch = []
    if batch:
        session.connection().execute(_ENTRY_INSERT, batch)
    return PlanResult(len(cands), sizes, already, busy_elsewhere, max_crit, blocked)


def replan_entry(session: Session, entry: RolloutDevice, installed: Mapping[str, int],
                 target: Release, now: int) -> paths.Step:
    """Recompute one device's next step (after it installed a step, or a recall)."""
    graph = load_graph(session, target)
    step = paths.next_step(installed, release_node(target), graph)
    entry.updated_at = now
    if step.done:
        entry.state = EntryState.SUCCEEDED.value
        entry.detail = ""
    elif step.blocked:
        entry.state = EntryState.BLOCKED.value
        entry.step_release_id = step.release.id if step.release else None
        entry.detail = paths.blocked_reason(step, installed, graph)
    else:
        entry.state = EntryState.PENDING.value
        entry.step_release_id = step.release.id if step.release else None
        entry.detail = ""
    return step


#: Entry states in which the device has not asked to install its step yet: the step may still
#: change.
BEFORE_INSTALL = frozenset({EntryState.PENDING, EntryState.DOWNLOADING, EntryState.STAGED})


def step_is_stale(step: Release, installed: Mapping[str, int], entry_state: str) -> bool:
    """The step planned for a device no longer fits what the device last reported: a
    requirement of the step is not met (the device reports an older component than planned,
    e.g. a loader that stage0 restored, or an operator changed the release's requirements), or
    the device already runs the step (it got there another way) while still pending."""
    if paths.unmet(release_node(step).requires, installed):
        return True
    return entry_state == EntryState.PENDING and \
        installed.get(step.component, 0) >= step.sequence_number
