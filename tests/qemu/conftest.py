"""The real firmware on QEMU: built once per run (incrementally in build/firmware/), then each
test gets a freshly provisioned device with its own flash file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from suture.boards import load_board
from suture.firmware.build import FirmwareBuild, build_firmware, dev_keys
from suture.firmware.locking import make_stage0
from suture.keys import PrivateKey
from suture.qemu import QemuDevice
from suture.sim.testing import CLASS_ID, VENDOR_ID, example_app

BOARD = "qemu-mps2-an385"


@dataclass(frozen=True)
class Firmware:
    build: FirmwareBuild
    vendor_key: PrivateKey
    loader_key: PrivateKey
    stage0_elf: Path


def build(repo_root: Path, board_name: str) -> Firmware:
    """stage0 and the board's firmware, built incrementally into build/firmware/BOARD."""
    board = load_board(board_name)
    assert board.qemu is not None
    make_stage0(repo_root / "stage0")
    out = repo_root / "build" / "firmware" / board_name
    vendor, loader = dev_keys(out / "keys")
    point = vendor.public_key().public_bytes(serialization.Encoding.X962,
                                             serialization.PublicFormat.UncompressedPoint)
    fw = build_firmware(board, out, vendor_keys=[point], vendor_id=VENDOR_ID, class_id=CLASS_ID,
                        loader_key=loader)
    stage0 = repo_root / "stage0" / "build" / board.qemu.build / "stage0.elf"
    return Firmware(fw, vendor, loader, stage0)


@pytest.fixture(scope="session")
def firmware(repo_root: Path) -> Firmware:
    return build(repo_root, BOARD)


@pytest.fixture
def device(firmware: Firmware, tmp_path: Path) -> Iterator[QemuDevice]:
    """A device fresh from the factory: stage0, the signed firmware, application v1 confirmed."""
    dev = QemuDevice(load_board(BOARD), firmware.stage0_elf, tmp_path / "dev")
    dev.factory_flash(firmware.build.loader_image.read_bytes(),
                      firmware.loader_key.public_key())
    first = dev.power_on()
    assert "suture: formatting the blank filesystem" in first.console  # from the factory
    report = dev.provision(example_app(1), 1)
    assert report["state"] == "CONFIRMED"
    assert report["installed_version"] == 1
    yield dev
    dev.power_off()
