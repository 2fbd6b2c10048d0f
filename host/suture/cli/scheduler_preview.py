"""What `suture scheduler rollout abort` and `release recall` would do, read without changing
anything (their --dry-run): which rollouts stop, which devices revert, which keep the release
and which drop what they staged, and whether the scheduler would refuse."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from suture.scheduler.errors import ConflictError, NotFoundError
from suture.scheduler.models import (
    TERMINAL_ENTRY_STATES,
    EntryState,
    Release,
    Rollout,
    RolloutDevice,
    RolloutState,
)

#: Entries the release may be installed on, not confirmed yet: what a revert reverts.
REVERTIBLE = frozenset({EntryState.INSTALLING, EntryState.TRIAL})
#: Rollouts a recall aborts.
ACTIVE = (RolloutState.AWAITING_APPROVAL, RolloutState.APPROVED, RolloutState.RUNNING,
          RolloutState.PAUSED)


@dataclass
class AbortPreview:
    """One rollout's abort: its state now, and what becomes of its devices."""

    rollout_id: int
    state: str
    revert: bool
    reverting: list[str] = field(default_factory=list)
    keeping: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    refused: str = ""

    def to_json(self) -> dict[str, object]:
        return {"rollout": self.rollout_id, "state": self.state, "revert": self.revert,
                "reverting": self.reverting, "keeping": self.keeping,
                "cancelled": self.cancelled, "refused": self.refused or None}

    def lines(self) -> list[str]:
        if self.refused:
            return [f"rollout {self.rollout_id}: refused: {self.refused}"]
        out = [f"rollout {self.rollout_id} ({self.state}) would be aborted"]
        for verb, devices in (("revert", self.reverting), ("keep the release", self.keeping),
                              ("drop what they staged", self.cancelled)):
            if devices:
                named = ", ".join(devices[:10]) + (", ..." if len(devices) > 10 else "")
                out.append(f"  {len(devices)} device(s) would {verb}: {named}")
        return out


def _preview(session: Session, rollout: Rollout, *, revert: bool) -> AbortPreview:
    entries = session.execute(
        select(RolloutDevice.device_id, RolloutDevice.state)
        .where(RolloutDevice.rollout_id == rollout.id)
        .order_by(RolloutDevice.device_id)).all()
    preview = AbortPreview(rollout_id=rollout.id, state=rollout.state, revert=revert)
    for device_id, state in entries:
        if state == EntryState.SUCCEEDED and not rollout.download_only:
            preview.keeping.append(device_id)
        elif state in REVERTIBLE:
            (preview.reverting if revert else preview.keeping).append(device_id)
        elif state not in TERMINAL_ENTRY_STATES and state != EntryState.REVERTING:
            preview.cancelled.append(device_id)
    return preview


def preview_abort(session: Session, *, rollout_id: int, revert: bool) -> AbortPreview:
    """What aborting the rollout would do; ``refused`` says why the scheduler would not."""
    with session.begin():
        rollout = session.get(Rollout, rollout_id)
        if rollout is None:
            raise NotFoundError(f"no rollout {rollout_id}")
        preview = _preview(session, rollout, revert=revert)
        if rollout.state in (RolloutState.COMPLETED, RolloutState.ABORTED) and not (
                revert and not rollout.revert_on_abort):
            preview.refused = f"rollout {rollout_id} is already {rollout.state}"
        elif revert and preview.keeping:
            preview.refused = (f"{len(preview.keeping)} device(s) confirmed its release and "
                               "cannot be reverted; abort without --revert")
        return preview


def preview_recall(session: Session, *, release_id: int, revert: bool) -> list[AbortPreview]:
    """What recalling the release would do to each rollout of it still going."""
    with session.begin():
        release = session.get(Release, release_id)
        if release is None:
            raise NotFoundError(f"no release {release_id}")
        if release.recalled:
            raise ConflictError(f"release {release_id} is already recalled")
        rollouts = session.execute(
            select(Rollout).where(Rollout.release_id == release_id,
                                  Rollout.state.in_([s.value for s in ACTIVE]))
            .order_by(Rollout.id)).scalars().all()
        return [_preview(session, rollout, revert=revert) for rollout in rollouts]
