"""A delta update through the real firmware on the QEMU board: the patch from the installed
application is applied by the frozen loader into the staging slot, verified against the target
digest and installed like a full update; and a MicroPython upgrade (v1.27.0 to v1.28.0, the same
frozen loader) as a loader-image delta from the loader slot, installed by stage0 and confirmed
by the new loader (docs/formats/delta.md)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from suture import suit
from suture.boards import load_board
from suture.delta import make_delta
from suture.firmware.build import FirmwareBuild, build_firmware, firmware_folder
from suture.image import parse_header
from suture.qemu import QemuDevice
from suture.sim.testing import CLASS_ID, VENDOR_ID, example_app

from .conftest import BOARD, Firmware

pytestmark = pytest.mark.qemu

LOADER_OFF = 0x20000  # the loader slot on the internal flash (boards/qemu-mps2-an385)
APP1 = example_app(1, filler=20000)
APP2 = example_app(2, filler=20000)  # one line of main.py and lib/util.py changed


@pytest.fixture
def device_v1(firmware: Firmware, tmp_path: Path) -> Iterator[QemuDevice]:
    """A device from the factory with APP1 (a 20 KB data file beside the code) confirmed."""
    dev = QemuDevice(load_board(BOARD), firmware.stage0_elf, tmp_path / "dev")
    dev.factory_flash(firmware.build.loader_image.read_bytes(),
                      firmware.loader_key.public_key())
    dev.power_on()
    report = dev.provision(APP1, 1)
    assert (report["state"], report["installed_version"]) == ("CONFIRMED", 1)
    yield dev
    dev.power_off()


def test_application_delta_installs_and_confirms(firmware: Firmware,
                                                 device_v1: QemuDevice) -> None:
    device = device_v1
    # the firmware names its MicroPython release, not the commit of the tree it was built in
    assert "MicroPython v1.28.0 on " in device.exec("import sys\nprint(sys.version)")
    d = make_delta(APP1, APP2, segment_size=8192)
    assert len(d.patch) < len(APP2) // 4
    with tempfile.TemporaryDirectory() as tmp:
        envelope = suit.create_envelope({
            "sequence-number": 2, "vendor-id": str(VENDOR_ID), "class-id": str(CLASS_ID),
            "components": [d.component(["app"], "https://updates.example/app.delta")],
        }, firmware.vendor_key, base_dir=Path(tmp))
    device.stage(envelope, d.patch)
    staged = device.report()
    assert staged["state"] == "STAGED", staged
    boots = device.reset()
    assert "APP 2" in boots[-1].console
    report = device.report()
    assert (report["state"], report["installed_version"]) == ("TRIAL", 2)
    device.exec("from loader import api\napi.confirm()")
    assert device.reset()[-1].line("suture: boot application CONFIRMED") is not None
    assert device.report()["installed_version"] == 2


@pytest.fixture(scope="module")
def firmware_1_27(firmware: Firmware, repo_root: Path) -> FirmwareBuild:
    """The same board's firmware from MicroPython v1.27.0: the same frozen loader, board
    configuration and keys (build/firmware/BOARD-micropython-1.27.0, built incrementally)."""
    board = load_board(BOARD)
    point = firmware.vendor_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return build_firmware(board, firmware_folder(repo_root / "build" / "firmware", BOARD,
                                                 "1.27.0"),
                          vendor_keys=[point], vendor_id=VENDOR_ID, class_id=CLASS_ID,
                          loader_key=firmware.loader_key, micropython_version="1.27.0")


def test_micropython_upgrade_as_a_loader_image_delta(
    firmware: Firmware, firmware_1_27: FirmwareBuild, tmp_path: Path,
    figures: Callable[[str, object], None],
) -> None:
    old = firmware_1_27.loader_image.read_bytes()
    new = firmware.build.loader_image.read_bytes()
    dev = QemuDevice(load_board(BOARD), firmware.stage0_elf, tmp_path / "dev")
    dev.factory_flash(old, firmware.loader_key.public_key())
    dev.power_on()
    try:
        assert dev.provision(APP1, 1)["state"] == "CONFIRMED"
        assert "MicroPython v1.27.0 on " in dev.exec("import sys\nprint(sys.version)")
        d = make_delta(old, new)
        figures("loader delta v1.27.0 -> v1.28.0: patch / image",
                f"{len(d.patch)} / {len(new)} B")
        assert len(d.patch) < len(new) * 15 // 100  # the goal for this pair
        with tempfile.TemporaryDirectory() as tmp:
            envelope = suit.create_envelope({
                "sequence-number": 5, "vendor-id": str(VENDOR_ID), "class-id": str(CLASS_ID),
                "components": [d.component(["loader"], "https://updates.example/loader.delta")],
            }, firmware.vendor_key, base_dir=Path(tmp))
        dev.stage(envelope, d.patch)
        staged = dev.report()
        assert (staged["component"], staged["state"]) == ("loader", "STAGED"), staged
        flash = dev.read_flash()
        assert flash[LOADER_OFF : LOADER_OFF + len(old)] == old  # the source was only read
        boots = dev.reset()
        text = "".join(b.console for b in boots)
        assert "suture: loader confirmed (release 5)" in text, text[-3000:]
        assert "APP 1" in boots[-1].console  # the application runs on the new loader
        flash = dev.read_flash()
        assert flash[LOADER_OFF : LOADER_OFF + len(new)] == new
        assert parse_header(new).version == parse_header(flash[LOADER_OFF:]).version
        report = dev.report()
        assert (report["component"], report["state"], report["loader_seq"]) == (
            "loader", "CONFIRMED", 5)
        assert "MicroPython v1.28.0 on " in dev.exec("import sys\nprint(sys.version)")
    finally:
        dev.power_off()
