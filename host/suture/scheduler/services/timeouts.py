"""Ending the deployments that timed out (``policies/timeouts.py`` says which).

Run by ``rollouts.advance``: inside a running rollout's transaction (its row locked), before
its thresholds are evaluated, so a timed-out entry counts as failed at once; and, for entries
still in flight in rollouts that ended (aborted with revert, or completed while a straggler was
in trial), in a sweep of its own. A timed-out entry is ``failed``, its detail saying why; a
device heard of again later can still succeed (``reports``).

Entry rows are locked (``FOR UPDATE OF rollout_devices SKIP LOCKED`` on PostgreSQL) before
they change: an entry a device report is moving right now is left to the next pass.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from suture.scheduler.models import Device, EntryState, Rollout, RolloutDevice, RolloutState
from suture.scheduler.policies import timeouts

_STATES = [s.value for s in (*timeouts.IN_FLIGHT, *timeouts.WAITING)]
_IN_FLIGHT = [s.value for s in timeouts.IN_FLIGHT]


def _end(session: Session, *, now: int, timeout: int, states: Collection[str],
         which: ColumnElement[bool]) -> list[RolloutDevice]:
    """Fail the entries in ``states`` (and ``which``) that timed out; returns them. The
    query's conditions are the policy's, as an index-friendly filter; the policy decides."""
    cutoff = now - timeout
    query = (
        select(RolloutDevice, Device.last_seen)
        .join(Device, Device.id == RolloutDevice.device_id)
        .where(which,
               RolloutDevice.state.in_(states),
               RolloutDevice.updated_at <= cutoff,
               or_(RolloutDevice.state.in_(_IN_FLIGHT), Device.last_seen.is_(None),
                   Device.last_seen <= cutoff))
        .order_by(RolloutDevice.rollout_id, RolloutDevice.device_id)
        .with_for_update(of=RolloutDevice, skip_locked=True)
    )
    ended = []
    for entry, last_seen in session.execute(query).all():
        if timeouts.timed_out(entry.state, changed_at=entry.updated_at, last_seen=last_seen,
                              now=now, timeout=timeout):
            entry.detail = timeouts.detail(entry.state, timeout)
            entry.state = EntryState.FAILED.value
            entry.updated_at = now
            ended.append(entry)
    return ended


def end_timed_out(session: Session, rollout: Rollout, *, now: int, timeout: int) -> list[str]:
    """Inside the caller's transaction (the running rollout locked): fail the entries of its
    opened waves that timed out; returns their devices."""
    ended = _end(session, now=now, timeout=timeout, states=_STATES,
                 which=(RolloutDevice.rollout_id == rollout.id)
                 & (RolloutDevice.wave <= rollout.current_wave))
    return [e.device_id for e in ended]


def end_timed_out_in_finished(session: Session, *, now: int, timeout: int
                              ) -> dict[int, list[str]]:
    """Inside the caller's transaction: fail the entries still in flight (a revert that never
    came, a trial never ended) in rollouts that are over; returns their devices by rollout."""
    finished = select(Rollout.id).where(
        Rollout.state.in_([RolloutState.ABORTED.value, RolloutState.COMPLETED.value]))
    ended = _end(session, now=now, timeout=timeout, states=_IN_FLIGHT,
                 which=RolloutDevice.rollout_id.in_(finished.scalar_subquery()))
    by_rollout: dict[int, list[str]] = {}
    for e in ended:
        by_rollout.setdefault(e.rollout_id, []).append(e.device_id)
    return by_rollout
