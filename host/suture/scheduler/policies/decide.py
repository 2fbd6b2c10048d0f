"""The per-device schedule decision: what a device should do next, and in which window.

A pure function of the device's report, its rollout entry, the rollout and the clock. The
service signs a new schedule document (with a new schedule number) only when the decision's
``key`` changes, so polls in between get the same document and its ETag (HTTP 304).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from suture.scheduler.models import DeviceState, EntryState, RolloutState
from suture.scheduler.policies import deadlines
from suture.scheduler.policies.windows import ALWAYS, Window, WindowPolicy


class Action(enum.IntEnum):
    """Schedule document key 5 (docs/formats/schedule.md)."""

    NONE = 0
    DOWNLOAD = 1
    INSTALL = 2
    REVERT = 3
    CONFIRM_WAIT = 4
    ABORT = 5


@dataclass(frozen=True)
class DeviceView:
    state: str
    busy: bool


@dataclass(frozen=True)
class RolloutView:
    id: int
    state: str
    current_wave: int
    download_only: bool
    deadline: int | None
    window: WindowPolicy | None


@dataclass(frozen=True)
class EntryView:
    state: str
    wave: int
    step_release_id: int | None


@dataclass(frozen=True)
class Decision:
    action: Action
    rollout_id: int | None = None
    release_id: int | None = None
    window: Window = ALWAYS
    forced: bool = False
    #: Why (shown to operators; part of the key so that e.g. busy -> not busy re-signs).
    reason: str = ""
    #: A time before the next regular poll when the decision may change (window opening,
    #: deadline); the schedule asks the device to poll again then.
    changes_at: int | None = None

    @property
    def key(self) -> str:
        text = (f"{int(self.action)}|{self.rollout_id}|{self.release_id}|{self.window.not_before}|"
                f"{self.window.not_after}|{int(self.forced)}|{self.reason}")
        return hashlib.sha256(text.encode()).hexdigest()


NOTHING = Decision(Action.NONE, reason="idle")


def decide(device: DeviceView, entry: EntryView | None, rollout: RolloutView | None,
           *, now: int, forced_window_s: int) -> Decision:
    if entry is None or rollout is None:
        return NOTHING
    rid, step = rollout.id, entry.step_release_id
    if entry.state == EntryState.REVERTING:
        return Decision(Action.REVERT, rid, step, reason="rollout aborted: revert")
    if entry.state == EntryState.CANCELLED:
        if device.state in (DeviceState.DOWNLOADING, DeviceState.STAGED):
            return Decision(Action.ABORT, rid, step, reason="rollout aborted: discard staged")
        return NOTHING
    if rollout.state not in (RolloutState.RUNNING, RolloutState.PAUSED):
        return NOTHING
    if entry.state in (EntryState.SUCCEEDED, EntryState.FAILED, EntryState.REVERTED):
        return NOTHING
    if entry.state == EntryState.BLOCKED:
        # Held: the schedule names no release (nothing to fetch, nothing to install).
        return Decision(Action.NONE, rid, None, reason="blocked by a dependency")
    if device.state == DeviceState.TRIAL or entry.state == EntryState.TRIAL:
        return Decision(Action.CONFIRM_WAIT, rid, step, reason="trial: confirm when healthy")
    if rollout.state == RolloutState.PAUSED:
        return Decision(Action.NONE, rid, step, reason="rollout paused")
    if entry.wave > rollout.current_wave or step is None:
        return Decision(Action.NONE, rid, None, reason="wave not open")

    forced = deadlines.is_forced(rollout.deadline, now)
    if forced:
        window = deadlines.forced_window(now - now % forced_window_s, forced_window_s)
    elif rollout.window is not None:
        window = rollout.window.window_at(now)
    else:
        window = ALWAYS
    deadline_ahead = rollout.deadline if rollout.deadline and not forced else None

    # Staging is tracked per entry (this rollout, this step): a device that staged something
    # else is told to download this step first.
    if entry.state in (EntryState.PENDING, EntryState.DOWNLOADING):
        return Decision(Action.DOWNLOAD, rid, step, window, forced, reason="download",
                        changes_at=deadline_ahead)
    if rollout.download_only:
        return Decision(Action.NONE, rid, step, reason="download-only: staged")
    if entry.state == EntryState.INSTALLING:
        return Decision(Action.INSTALL, rid, step, window, forced, reason="installing")
    # Staged: install only inside the window (or once forced), never on a busy device.
    if device.busy:
        return Decision(Action.DOWNLOAD, rid, step, window, forced, reason="busy: install later")
    if not window.contains(now):
        changes = min(t for t in (window.not_before, deadline_ahead) if t is not None)
        return Decision(Action.DOWNLOAD, rid, step, window, forced,
                        reason="staged: waiting for the window", changes_at=changes)
    return Decision(Action.INSTALL, rid, step, window, forced,
                    reason="forced: deadline passed" if forced else "install in window")
