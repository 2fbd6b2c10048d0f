"""The one exception family of the ward simulator."""

from __future__ import annotations

from suture.errors import EXIT_USAGE, SutureError


class WardError(SutureError, RuntimeError):
    """The ward could not be set up or run (the scheduler refused something, a build failed)."""


class WardConfigError(WardError):
    """Options that do not make a ward (too many devices for the target, a probability > 1)."""

    exit_code = EXIT_USAGE


class WardServerError(WardError):
    """The ward's scheduler could not start."""
