"""An injectable clock: seconds since the UNIX epoch, as ``time.time`` gives them.

Every expiry, ``created`` window and cache in the vendor side reads time through a ``Clock`` so
tests move time forward instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


def system_clock() -> float:
    """The wall clock."""
    return time.time()


class ManualClock:
    """A clock that only moves when told to (for tests and simulations)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds
