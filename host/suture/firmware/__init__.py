"""The device firmware: MicroPython v1.28.0 with the frozen loader, built for a board, signed as
a loader image (stage0's header + the firmware), and laid out as a whole-device flash image for
the QEMU boards (docs/deploy-to-a-board.md)."""

from suture.firmware.build import FirmwareBuild, build_firmware
from suture.firmware.errors import FirmwareError
from suture.firmware.source import MICROPYTHON_VERSION, micropython_tree

__all__ = [
    "MICROPYTHON_VERSION",
    "FirmwareBuild",
    "FirmwareError",
    "build_firmware",
    "micropython_tree",
]
