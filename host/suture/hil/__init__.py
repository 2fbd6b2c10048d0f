"""Hardware-in-the-loop: drive a MicroPython board (real, or the simulator on a pty) over its
REPL, and the pytest plugin (``suture.hil.plugin``) that runs tests/hil/ against either."""

from suture.hil.link import (
    BoardAbsentError,
    BoardBusyError,
    DeviceError,
    LinkError,
    MicroPythonLink,
    WrongBoardError,
)

__all__ = [
    "BoardAbsentError",
    "BoardBusyError",
    "DeviceError",
    "LinkError",
    "MicroPythonLink",
    "WrongBoardError",
]
