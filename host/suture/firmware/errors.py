"""The one exception family of the firmware build."""


class FirmwareError(Exception):
    """The firmware cannot be built or laid out; the message says why and what to do."""
