"""stage0 and the signed MicroPython firmware of a QEMU board, built for a run of the HIL suite
or of the ward simulator (``--target qemu-mps2-an385``).

The build is incremental (``build/firmware/BOARD``) and signs with the build folder's
development keys; :class:`QemuFirmware` is what a QEMU board needs to boot
(:class:`suture.devicectl.qemu_firmware_target.QemuFirmwareHilTarget`,
:class:`suture.ward.qemu_fleet.QemuWardDevice`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from suture.boards.schema import Board
from suture.firmware.build import build_firmware, dev_keys
from suture.firmware.errors import FirmwareError
from suture.firmware.locking import make_stage0
from suture.firmware.source import REPO_ROOT
from suture.keys import PrivateKey, PublicKey, public_key_bytes

# Boards whose MicroPython firmware builds and boots under stage0 in QEMU. The an505 (M33) runs
# stage0 in the secure state; MicroPython's ports/qemu has no non-secure set-up to run from its
# RAM, so that board keeps stage0's own HIL tests only.
FIRMWARE_BOARDS = frozenset({"qemu-mps2-an385", "qemu-mps2-an386"})


class QemuFirmwareError(FirmwareError):
    """The firmware or stage0 could not be built, or QEMU cannot run this board."""


@dataclass(frozen=True)
class QemuFirmware:
    """What a QEMU board needs to boot: stage0, the signed firmware and the keys it trusts."""

    stage0_elf: Path
    loader_image: Path
    loader_key: PublicKey
    vendor_key: PrivateKey


def prepare_firmware(board: Board, vendor_id: str, class_id: str) -> QemuFirmware:
    """Build stage0 and the board's firmware (incrementally, in ``build/firmware/BOARD``) with
    the build folder's development keys."""
    if board.name not in FIRMWARE_BOARDS or board.qemu is None:
        raise QemuFirmwareError(f"no MicroPython firmware runs on {board.name} in QEMU "
                                f"(boards with one: {', '.join(sorted(FIRMWARE_BOARDS))})")
    try:
        make_stage0()
    except FirmwareError as e:
        raise QemuFirmwareError(str(e)) from e
    out = REPO_ROOT / "build" / "firmware" / board.name
    vendor, loader = dev_keys(out / "keys")
    build = build_firmware(board, out, vendor_keys=[public_key_bytes(vendor.public_key())],
                           vendor_id=uuid.UUID(vendor_id), class_id=uuid.UUID(class_id),
                           loader_key=loader)
    stage0 = REPO_ROOT / "stage0" / "build" / board.qemu.build / "stage0.elf"
    return QemuFirmware(stage0, build.loader_image, loader.public_key(), vendor)
