"""Deployment timeouts: no rollout entry waits forever.

An unfinished entry **times out**, and then counts as failed for the rollout's thresholds, when
its deployment has made no progress for ``timeout`` seconds
(``SUTURE_SCHEDULER_DEPLOYMENT_TIMEOUT_S``, 6 hours by default):

- in flight on the device (``installing``, ``trial``, ``reverting``): since the entry last
  changed. Installing, the trial and a revert must end within the timeout, whether or not the
  device still polls (a device that bricks, or loops, mid-update);
- waiting (``pending`` in an opened wave, ``downloading``, ``staged``): since the later of the
  entry's last change (a wave's entries are restarted when it opens, and when the rollout
  resumes) and the device's last request. A device that keeps polling while it waits for its
  install window, or for the end of clinical use, does not time out; one that has gone silent
  does.

``blocked`` entries wait for a dependency, not for the device: they never time out.
"""

from __future__ import annotations

from typing import Final

from suture.scheduler.models import EntryState

DEFAULT_DEPLOYMENT_TIMEOUT_S: Final = 6 * 3600
IN_FLIGHT: Final = frozenset({EntryState.INSTALLING, EntryState.TRIAL, EntryState.REVERTING})
WAITING: Final = frozenset({EntryState.PENDING, EntryState.DOWNLOADING, EntryState.STAGED})
#: How a timed-out entry's detail begins (a device heard of again can still succeed).
TIMED_OUT: Final = "timed out"


def timed_out(state: str, *, changed_at: int, last_seen: int | None, now: int,
              timeout: int) -> bool:
    """Whether an entry in ``state``, last changed at ``changed_at``, of a device last heard
    of at ``last_seen``, has timed out at ``now``."""
    if state in IN_FLIGHT:
        since = changed_at
    elif state in WAITING:
        since = max(changed_at, last_seen or 0)
    else:
        return False
    return now - since >= timeout


def detail(state: str, timeout: int) -> str:
    """The entry's detail once it timed out."""
    hours = timeout / 3600
    span = f"{hours:g} h" if hours >= 1 else f"{timeout} s"
    return f"{TIMED_OUT}: no progress for {span} ({state})"
