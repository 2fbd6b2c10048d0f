"""Injectable time: every policy and service takes a clock, so tests never sleep."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Returns the current time in whole unix seconds (UTC)."""

    def now(self) -> int: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> int:
        return int(time.time())


class ManualClock:
    """A clock that moves only when told to (tests, simulations)."""

    def __init__(self, start: int = 1_767_225_600) -> None:
        self._now = start

    def now(self) -> int:
        return self._now

    def set(self, when: int) -> None:
        self._now = when

    def advance(self, seconds: int) -> None:
        self._now += seconds
