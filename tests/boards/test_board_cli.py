"""`suture board list|show|check` on good and broken definitions."""

from __future__ import annotations

import shutil
from pathlib import Path

from suture.cli.main import app
from typer.testing import CliRunner

runner = CliRunner()


def test_check_passes_on_every_definition() -> None:
    result = runner.invoke(app, ["board", "check"])
    assert result.exit_code == 0, result.output
    for name in ("sim", "rpi-pico", "pyboard-stm32f405", "adafruit-feather-nrf52840", "esp32-s3"):
        assert f"ok   {name}" in result.output


def test_check_fails_with_the_reason_on_a_broken_definition(
    tmp_path: Path, repo_root: Path
) -> None:
    shutil.copytree(repo_root / "boards" / "rpi-pico", tmp_path / "rpi-pico")
    shutil.copytree(repo_root / "boards" / "sim", tmp_path / "sim")
    toml = tmp_path / "rpi-pico" / "board.toml"
    toml.write_text(toml.read_text().replace("offset = 0x0A8000", "offset = 0x0A0000"))
    result = runner.invoke(app, ["board", "check", "--boards-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "ok   sim" in result.output
    assert "FAIL rpi-pico, region 'application': starts at offset 0x000A0000" in result.output
    assert "1 of 2 board definitions are broken" in result.output
    assert "Traceback" not in result.output


def test_check_a_file_that_is_not_toml(tmp_path: Path) -> None:
    bad = tmp_path / "board.toml"
    bad.write_text("name = \n")
    result = runner.invoke(app, ["board", "check", "--file", str(bad)])
    assert result.exit_code == 1
    assert "not valid TOML" in result.output


def test_list_and_show() -> None:
    listed = runner.invoke(app, ["board", "list"])
    assert listed.exit_code == 0
    assert "rpi-pico" in listed.output
    assert "esptool" in listed.output
    shown = runner.invoke(app, ["board", "show", "pyboard-stm32f405"])
    assert shown.exit_code == 0, shown.output
    assert "0x08020000" in shown.output  # the loader's address, base + offset
    assert "largest payload: 512 KiB (region loader)" in shown.output
    missing = runner.invoke(app, ["board", "show", "nope"])
    assert missing.exit_code == 2  # a wrong board name: usage
    assert "no board named 'nope'" in missing.output
