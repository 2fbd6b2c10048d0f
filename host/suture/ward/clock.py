"""Simulated time for a ward: ``t0 + (real - t0) * scale``, shared by the scheduler (this
clock) and the devices (``SUTURE_CLOCK=t0,scale``, read by device/agent/platform.py)."""

from __future__ import annotations

import time


class ScaledClock:
    """A scheduler clock (``suture.scheduler.clock.Clock``) running ``scale`` times faster
    than the wall clock from ``t0``."""

    def __init__(self, scale: float = 1.0, t0: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("clock scale must be positive")
        self.scale = scale
        self.t0 = time.time() if t0 is None else t0

    def now_f(self) -> float:
        """Simulated unix time, fractional."""
        return self.t0 + (time.time() - self.t0) * self.scale

    def now(self) -> int:
        return int(self.now_f())

    def device_spec(self) -> str:
        """The value of SUTURE_CLOCK for the devices."""
        return f"{self.t0!r},{self.scale!r}"
