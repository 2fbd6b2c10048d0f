"""The same firmware for the Cortex-M4 board (mps2-an386): built from the same board definition
with -mcpu=cortex-m4, booted by stage0's an386 build, the frozen loader provisions and runs the
application and reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from suture.boards import load_board
from suture.image import verify_image
from suture.qemu import QemuDevice
from suture.sim.testing import example_app

from .conftest import build

pytestmark = [pytest.mark.qemu, pytest.mark.slow]


def test_the_m4_board_boots_the_firmware(repo_root: Path, tmp_path: Path) -> None:
    fw = build(repo_root, "qemu-mps2-an386")
    image = fw.build.loader_image.read_bytes()
    assert verify_image(image, fw.loader_key.public_key()).load_address == 0x21020200
    dev = QemuDevice(load_board("qemu-mps2-an386"), fw.stage0_elf, tmp_path / "dev")
    dev.factory_flash(image, fw.loader_key.public_key())
    try:
        first = dev.power_on()
        assert "suture: formatting the blank filesystem" in first.console
        assert "mps2-an386 with cortex-m4" in first.console
        assert dev.provision(example_app(1), 1)["state"] == "CONFIRMED"
        boot = dev.reset()[-1]
        assert "stage0: starting the loader" in boot.console
        assert "SUTURE-BOOT CONFIRMED" in boot.console
        assert "APP 1" in boot.console
    finally:
        dev.power_off()
