"""The delta package's errors."""

from __future__ import annotations

from suture.errors import SutureError


class DeltaError(SutureError, ValueError):
    """A delta patch that cannot be built, or that does not follow docs/formats/delta.md."""
