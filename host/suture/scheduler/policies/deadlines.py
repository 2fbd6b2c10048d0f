"""Deadlines: after a rollout's deadline a soft update becomes a forced one (the window no
longer gates the install). A busy device is still never interrupted."""

from __future__ import annotations

from suture.scheduler.policies.windows import Window


def is_forced(deadline: int | None, now: int) -> bool:
    return deadline is not None and now >= deadline


def forced_window(now: int, grace_s: int) -> Window:
    """The window given to a device once its update is forced: from now, for ``grace_s``."""
    return Window(now, now + grace_s)
