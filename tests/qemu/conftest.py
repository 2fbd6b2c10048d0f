"""The real firmware on QEMU: built once per run (incrementally in build/firmware/), then each
test gets a freshly provisioned device with its own flash file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from suture import keys
from suture.boards import load_board
from suture.firmware.build import FirmwareBuild, build_firmware, dev_keys
from suture.firmware.locking import make_stage0
from suture.formats import identity
from suture.gateway import LinkGateway
from suture.keys import PrivateKey
from suture.qemu import QemuDevice
from suture.scheduler.schemas import DeviceCreate
from suture.scheduler.services import devices
from suture.sim.testing import CLASS_ID, VENDOR_ID, example_app
from suture.ward.server import WardScheduler

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


def linked_device(firmware: Firmware, sched: WardScheduler, gateway: LinkGateway, folder: Path,
                  device_id: str, app: bytes) -> QemuDevice:
    """A device registered with ``sched`` (group ``qemu``, application v1 installed) and made
    like one from the factory, provisioned with application ``app`` v1 and enrolled; its second
    UART is ``gateway``'s link. Powered off."""
    _, cred = devices.add_device(
        sched.sessions(),
        create=DeviceCreate(id=device_id, board=BOARD, vendor_id=str(VENDOR_ID),
                            class_id=str(CLASS_ID), ward="qemu", groups=["qemu"],
                            installed={"app": 1}),
        root_secret=bytes.fromhex(sched.root_secret), actor=sched.team.device_manager,
        now=sched.clock.now())
    dev = QemuDevice(load_board(BOARD), firmware.stage0_elf, folder, link_port=gateway.port)
    dev.factory_flash(firmware.build.loader_image.read_bytes(), firmware.loader_key.public_key())
    dev.power_on()
    dev.provision(app, 1)
    dev.enrol(identity.enrolment(
        device_id=device_id, credential=bytes.fromhex(cred.secret_hex),
        scheduler_url=sched.public_url,
        scheduler_keys=[keys.public_key_bytes(sched.signing_key.public_key())]))
    dev.power_off()
    return dev
