"""The whole-device image of a QEMU board: what a factory writes before the device ships.

One file that QEMU maps as the board's flash (``memory-backend-file``): stage0 in its region
(the copy a real board boots from; QEMU boots the same build through ``-kernel``), stage0's
provisioning record, the signed loader image in the loader slot, and littlefs holding the
first application, installed and confirmed by the loader itself on an emulated power-on, so
the journal, the installed record and the filesystem are exactly what the firmware writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from suture.boards.schema import Board
from suture.firmware.errors import FirmwareError
from suture.keys import PublicKey
from suture.qemu import QemuDevice, QemuError


@dataclass(frozen=True)
class DeviceImage:
    """The image written, and what it holds."""

    path: Path
    image_bytes: int
    stage0_bytes: int
    loader_image_bytes: int
    filesystem_used_bytes: int
    app_version: int


def _region(board: Board, name: str) -> tuple[int, int]:
    region = board.internal_flash.region(name)
    if region is None:
        raise FirmwareError(f"board {board.name} has no internal region {name!r}")
    return region.offset, region.size


def build_device_image(
    board: Board,
    *,
    stage0_elf: Path,
    loader_image: bytes,
    loader_key: PublicKey,
    app_bundle: bytes,
    app_version: int,
    out: Path,
    work: Path,
) -> DeviceImage:
    """Provision a factory-fresh QEMU device with ``app_bundle`` and save its flash to
    ``out``."""
    if board.qemu is None:
        raise FirmwareError(f"board {board.name} is not a QEMU board: a whole-device image is "
                            "made on QEMU boards")
    stage0_bin = stage0_elf.with_suffix(".bin")
    if not stage0_bin.is_file():
        raise FirmwareError(f"{stage0_bin} is missing: run `make stage0`")
    stage0 = stage0_bin.read_bytes()
    s0_off, s0_size = _region(board, "stage0")
    if len(stage0) > s0_size:
        raise FirmwareError(f"stage0 is {len(stage0)} bytes, its region {s0_size}")
    if app_version < 1:
        raise FirmwareError("the first application's version must be at least 1")
    dev = QemuDevice(board, stage0_elf, work)
    try:
        dev.factory_flash(loader_image, loader_key)
        boot = dev.power_on()
        if boot.stopped:
            raise FirmwareError("the firmware did not reach its REPL at the first power-on:\n"
                                + boot.console[-1500:])
        report = dev.provision(app_bundle, app_version)
    except QemuError as e:
        raise FirmwareError(f"provisioning on QEMU failed: {e}") from None
    finally:
        dev.power_off()
    if (report.get("state"), report.get("installed_version")) != ("CONFIRMED", app_version):
        raise FirmwareError(f"the loader did not confirm the first application: {report}")
    image = bytearray(dev.read_flash())
    image[s0_off : s0_off + len(stage0)] = stage0
    fs = [r for r in board.internal_flash.regions if r.kind == "littlefs"]
    if not fs:
        raise FirmwareError(f"board {board.name} has no littlefs region")
    fs_off, fs_size = fs[0].offset, fs[0].size
    sector = board.internal_flash.sector or 4096
    used = sum(sector for i in range(fs_off, fs_off + fs_size, sector)
               if image[i : i + sector] != b"\xff" * sector)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(bytes(image))
    return DeviceImage(out, len(image), len(stage0), len(loader_image), used, app_version)
