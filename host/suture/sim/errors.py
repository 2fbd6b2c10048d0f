"""The one exception family of the simulated board."""

from __future__ import annotations

from suture.errors import SutureError


class SimError(SutureError, RuntimeError):
    """The simulator could not run the device (missing tool, crash, bad output)."""
