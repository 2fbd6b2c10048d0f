"""Running a flash plan: a tool that is missing, a tool that fails, a board that does not answer,
a UF2 drive that is not mounted, and the progress reported along the way. dfu-util (a C program)
is stood in by a script on PATH that records its argv; esptool and pyocd run for real, against
a serial port where no chip answers and a machine with no debug probe."""

from __future__ import annotations

import builtins
import os
import pty
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from suture.boardops.flash_runner import run_flash_plan
from suture.boardops.flashing import FlashPlanError, Images, flash_plan, write_uf2
from suture.boards import load_board
from suture.cli.main import app
from typer.testing import CliRunner


def _fake_tool(bin_dir: Path, name: str, *, exit_code: int = 0) -> Path:
    log = bin_dir / f"{name}.log"
    script = bin_dir / name
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{log}"\n'
        + (f'echo "Error: no probe found" >&2\nexit {exit_code}\n' if exit_code else "exit 0\n")
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return log


@pytest.fixture
def images(tmp_path: Path) -> Images:
    (tmp_path / "stage0.bin").write_bytes(b"\x00" * 300)
    (tmp_path / "fw.bin").write_bytes(b"\x01" * 700)
    return Images(loader=tmp_path / "fw.bin", stage0=tmp_path / "stage0.bin")


def test_dfu_util_steps_run_in_order_with_progress(
    tmp_path: Path, images: Images, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = _fake_tool(bin_dir, "dfu-util")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    steps = flash_plan(load_board("pyboard-stm32f405"), images, workdir=tmp_path)
    seen: list[tuple[str, int, int]] = []
    run_flash_plan(steps, lambda d, done, total: seen.append((d, done, total)))
    lines = log.read_text().splitlines()
    assert [line.split("--dfuse-address ")[1].split()[0] for line in lines] == [
        "0x08000000", "0x08020000:leave"]
    assert seen[-1] == ("write loader image at 0x08020000 over USB DFU", 1, 1)


def test_a_failing_tool_is_reported_with_its_message(
    tmp_path: Path, images: Images, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_tool(bin_dir, "dfu-util", exit_code=74)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    steps = flash_plan(load_board("pyboard-stm32f405"), images, workdir=tmp_path)
    with pytest.raises(FlashPlanError, match=r"dfu-util failed to write stage0 at 0x08000000 "
                                             r"over USB DFU \(exit 74\): Error: no probe found"):
        run_flash_plan(steps)


def test_a_missing_tool_says_how_to_install_it(
    tmp_path: Path, images: Images, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    steps = flash_plan(load_board("pyboard-stm32f405"), images, workdir=tmp_path)
    with pytest.raises(FlashPlanError, match=r"dfu-util is not installed \(apt-get install "
                                             r"dfu-util\); needed to write stage0"):
        run_flash_plan(steps)
    real_import = builtins.__import__

    def without_esptool(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "esptool":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_esptool)
    steps = flash_plan(load_board("esp32-s3"), Images(loader=images.loader),
                       port="/dev/ttyACM0", workdir=tmp_path)
    with pytest.raises(FlashPlanError, match=r"esptool is not installed \(pip install "
                                             r"'suture\[boards\]'\); needed to write the "
                                             r"MicroPython firmware over /dev/ttyACM0"):
        run_flash_plan(steps)


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A serial port where nothing answers (a pty nobody reads)."""
    controller, device = pty.openpty()
    try:
        yield os.ttyname(device)
    finally:
        os.close(controller)
        os.close(device)


def test_esptool_says_no_chip_answers_on_a_silent_port(
    tmp_path: Path, images: Images, silent_port: str
) -> None:
    steps = flash_plan(load_board("esp32-s3"), Images(loader=images.loader), port=silent_port,
                       workdir=tmp_path)
    with pytest.raises(FlashPlanError, match=rf"no esp32s3 answers on {silent_port}: Failed "
                                             r"to connect to ESP32-S3: No serial data") as err:
        run_flash_plan(steps)
    assert err.value.exit_code == 3


def test_uf2_copy_to_the_bootloader_drive(tmp_path: Path, images: Images) -> None:
    board = load_board("rpi-pico")
    steps = flash_plan(board, images, workdir=tmp_path)
    write_uf2(board, images, tmp_path / "rpi-pico.uf2")
    media = tmp_path / "media"
    with pytest.raises(FlashPlanError, match="no RPI-RP2 drive is mounted: start the board in "
                                             "its UF2 bootloader"):
        run_flash_plan(steps, uf2_roots=(media,))
    (media / "nurse" / "RPI-RP2").mkdir(parents=True)
    seen: list[int] = []
    run_flash_plan(steps, lambda _d, done, _t: seen.append(done), uf2_roots=(media,))
    copied = (media / "nurse" / "RPI-RP2" / "rpi-pico.uf2").read_bytes()
    assert copied == (tmp_path / "rpi-pico.uf2").read_bytes()
    assert len(copied) == 512 * (2 + 3)  # 300 bytes -> 2 blocks, 700 bytes -> 3 blocks
    assert seen[-1] == len(copied)


def test_provision_flashes_first_and_stops_on_a_flashing_error(
    tmp_path: Path, images: Images, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("print(1)\n")
    from suture import keys

    _, pub = keys.write_key_pair(keys.generate_private_key("ES256"), tmp_path / "v.pem")
    result = CliRunner().invoke(app, [
        "board", "provision", "adafruit-feather-nrf52840", "--app", str(tmp_path / "app"),
        "--vendor-key", str(pub), "--firmware", str(images.loader), "--stage0",
        str(images.stage0), "--port", str(tmp_path / "ttyACM0")])
    assert result.exit_code == 3  # unreachable: this machine has no debug probe
    assert "error: no debug probe found (is it plugged in?)" in " ".join(result.output.split())
    assert "Traceback" not in result.output
