"""The one exception family of ``suture.devicectl``: reaching a running board (its raw REPL,
the simulated board's pseudo-terminal, a QEMU target)."""

from __future__ import annotations

from suture.errors import SutureError


class DeviceCtlError(SutureError):
    """A running board that cannot be reached, started or driven; the message says why."""
