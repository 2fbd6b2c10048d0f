"""The whole-device image of the QEMU board (`suture firmware image`): the factory's flash with
stage0, the signed firmware and the first application installed, which boots as it is."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from suture.boards import load_board
from suture.cli.main import app
from suture.qemu import QemuDevice
from typer.testing import CliRunner

from .conftest import BOARD, Firmware

pytestmark = pytest.mark.qemu


def test_the_device_image_boots_its_first_application(firmware: Firmware,
                                                      tmp_path: Path) -> None:
    src = tmp_path / "app"
    src.mkdir()
    (src / "main.py").write_text("def main():\n    print('FACTORY APP running')\n")
    out = tmp_path / "device.bin"
    result = CliRunner().invoke(app, [
        "firmware", "image", "--board", BOARD, "--app", str(src), "--app-version", "3",
        "--firmware", str(firmware.build.loader_image.parent), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["image_bytes"] == 16 << 20
    assert info["stage0_bytes"] == firmware.stage0_elf.with_suffix(".bin").stat().st_size
    assert info["loader_image_bytes"] == firmware.build.loader_image.stat().st_size
    assert info["filesystem_used_bytes"] > 0
    image = out.read_bytes()
    stage0 = firmware.stage0_elf.with_suffix(".bin").read_bytes()
    assert image[: len(stage0)] == stage0
    # the image, as a factory writes it, boots: stage0, the firmware, application 3 confirmed
    dev = QemuDevice(load_board(BOARD), firmware.stage0_elf, tmp_path / "dev")
    dev.folder.mkdir()
    shutil.copyfile(out, dev.flash)
    try:
        boot = dev.power_on()
        assert "stage0: starting the loader" in boot.console
        assert "FACTORY APP running" in boot.console
        assert "SUTURE-BOOT CONFIRMED" in boot.console
        report = dev.report()
        assert (report["state"], report["installed_version"]) == ("CONFIRMED", 3)
    finally:
        dev.power_off()


def test_a_board_that_is_not_in_qemu_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["firmware", "image", "--board", "rpi-pico", "--app",
                                      str(tmp_path)])
    assert result.exit_code == 2
    assert "not a QEMU board" in result.output
