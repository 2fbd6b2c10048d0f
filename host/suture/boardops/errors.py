"""The one exception family of ``suture.boardops``: what is done to a board (flashing,
provisioning, deploying, the scheduler calls made on its behalf)."""

from __future__ import annotations

from suture.errors import SutureError


class BoardOpsError(SutureError):
    """An operation on a board that cannot be done; the message says why."""
