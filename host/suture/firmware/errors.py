"""The one exception family of the firmware build."""

from suture.errors import SutureError


class FirmwareError(SutureError):
    """The firmware cannot be built or laid out; the message says why and what to do."""
