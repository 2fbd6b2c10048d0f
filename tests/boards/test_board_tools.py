"""The board definitions held against the pinned tools: pyocd's target list has every
``pyocd_target`` (built in, or named with its CMSIS pack), its flash algorithm for each built-in
target erases the sectors and programs the unit the definition claims; esptool knows the chip,
its flash size and its ROM's bootloader offset; adafruit-nrfutil takes the ``--dev-type``. And
`suture board check` fails a definition that names what the tool does not know."""

from __future__ import annotations

import builtins
import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from suture.boards import Board, board_names, load_board
from suture.boards.tools import check_board_tools, esptool_chips
from suture.cli.main import app
from typer.testing import CliRunner

runner = CliRunner()
BOARDS = [load_board(name) for name in board_names()]
PYOCD_BOARDS = [b for b in BOARDS if b.flashing.pyocd_target is not None]


def _raw(repo_root: Path, name: str) -> dict[str, Any]:
    with (repo_root / "boards" / name / "board.toml").open("rb") as fh:
        return tomllib.load(fh)


def _report(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    report = check_board_tools(Board.model_validate(data))
    return [str(p) for p in report.problems], [str(n) for n in report.notes]


def test_the_boards_name_the_tools_settings() -> None:
    names = {b.name: b for b in BOARDS}
    assert {b.name for b in PYOCD_BOARDS} == {"adafruit-feather-nrf52840", "rpi-pico",
                                              "pyboard-stm32f405"}
    assert names["esp32-s3"].flashing.esptool_chip == "esp32s3"
    assert names["adafruit-feather-nrf52840"].flashing.nrfutil_dev_type == "0x0052"


@pytest.mark.parametrize("board", PYOCD_BOARDS, ids=[b.name for b in PYOCD_BOARDS])
def test_pyocds_target_list_has_every_target(board: Board) -> None:
    from pyocd.target import TARGET

    target = board.flashing.pyocd_target
    if board.flashing.pyocd_pack is None:
        assert target in TARGET, f"pyocd builds in no target {target}"
    else:
        # A CMSIS pack's target: pyocd only knows it once the pack is installed, which needs
        # the pack index (not reachable here); it must not pose as a built-in one.
        assert target not in TARGET
        assert board.flashing.pyocd_pack == "Keil.STM32F4xx_DFP"


@pytest.mark.parametrize("board", [b for b in PYOCD_BOARDS if b.flashing.pyocd_pack is None],
                         ids=[b.name for b in PYOCD_BOARDS if b.flashing.pyocd_pack is None])
def test_pyocds_flash_algorithm_has_the_definitions_geometry(board: Board) -> None:
    """Read from pyocd's target class: the flash region holding the definition's internal
    flash, its erase sector and its algorithm's smallest program unit."""
    from pyocd.core.memory_map import FlashRegion
    from pyocd.target import TARGET

    flash = board.internal_flash
    regions = [r for r in TARGET[board.flashing.pyocd_target].MEMORY_MAP
               if isinstance(r, FlashRegion)]
    holding = [r for r in regions if r.start <= flash.base and
               flash.base + flash.size <= r.start + r.length]
    assert len(holding) == 1, [(hex(r.start), hex(r.length)) for r in regions]
    region = holding[0]
    assert region.sector_size == flash.sector
    assert region.algo["min_program_length"] == flash.page
    assert region.is_boot_memory


def test_every_definition_passes_the_tool_checks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # pyocd's pack cache: empty
    for board in BOARDS:
        report = check_board_tools(board)
        assert report.problems == [], board.name
        expected = 1 if board.flashing.pyocd_pack else 0  # the pack, not installed here
        assert len(report.notes) == expected, report.notes


def test_the_pack_targets_note_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # pyocd's pack cache: empty
    [note] = check_board_tools(load_board("pyboard-stm32f405")).notes
    assert str(note) == (
        "pyboard-stm32f405: pyocd target stm32f405rgtx comes from the CMSIS pack "
        "Keil.STM32F4xx_DFP, which is not installed: its flash geometry is not checked "
        "(`pyocd pack install stm32f405rgtx`)")


@pytest.mark.parametrize(("board", "change", "message"), [
    ("esp32-s3", {"esptool_chip": "esp32s9"},
     "flashing.esptool_chip 'esp32s9' is not a chip esptool 5.6.0 knows (esp8266, esp32, "),
    ("esp32-s3", {"esptool_image": {"bootloader": 0x1000, "app": 0x10000}},
     "the bootloader at 0x1000, but the ROM of ESP32-S3 starts it from 0x0"),
    ("esp32-s3", {"esptool_image": {"bootloader": 0, "partition_table": 0x8000, "app": 0x18000}},
     "the app at 0x18000 must follow the partition table on a 64 KiB boundary"),
    ("esp32-s3", {"esptool_image": {"bootloader": 0, "partition_table": 0x8000, "app": 0x20000}},
     "no internal region starts at the app's offset 0x20000"),
    ("adafruit-feather-nrf52840", {"nrfutil_dev_type": "nrf52"},
     "flashing.nrfutil_dev_type 'nrf52' is not a --dev-type adafruit-nrfutil 0.5.3.post16 "
     "takes: Invalid value: nrf52 is not a valid integer"),
    ("adafruit-feather-nrf52840", {"nrfutil_dev_type": "0x10052"},
     "does not fit the init packet's device type field"),
    ("adafruit-feather-nrf52840", {"pyocd_target": "nrf52480"},
     "flashing.pyocd_target 'nrf52480' is not a target pyocd 0.46.0 builds in"),
    ("adafruit-feather-nrf52840", {"pyocd_pack": "NordicSemiconductor.nRF_DeviceFamilyPack"},
     "pyocd 0.46.0 builds target nrf52840 in; drop the pack"),
    ("pyboard-stm32f405", {"pyocd_pack": None},
     "flashing.pyocd_target 'stm32f405rgtx' is not a target pyocd 0.46.0 builds in"),
    ("rpi-pico", {"pyocd_target": None}, "flashing method 'pyocd' needs flashing.pyocd_target"),
    ("rpi-pico", {"uf2_family": "RP2040"}, "flashing.uf2_family 'RP2040' is not a 32-bit hex"),
])
def test_check_refuses_what_the_tool_does_not_know(
    repo_root: Path, board: str, change: dict[str, Any], message: str
) -> None:
    data = _raw(repo_root, board)
    for key, value in change.items():
        if value is None:
            data["flashing"].pop(key, None)
        else:
            data["flashing"][key] = value
    problems, _notes = _report(data)
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize(("board", "change", "message"), [
    ("adafruit-feather-nrf52840", {"page": 256},
     "pyocd 0.46.0's flash algorithm for nrf52840 programs at least 4 bytes at 0x00000000; "
     "the definition's internal_flash.page is 256"),
    ("rpi-pico", {"sector": 0x10000},
     "pyocd 0.46.0's flash algorithm for rp2040 erases 4096-byte sectors at 0x10000000; the "
     "definition says 65536"),
    ("rpi-pico", {"base": 0x20000000},
     "internal flash at 0x20000000 is outside every flash region of pyocd 0.46.0's target "
     "rp2040"),
    ("esp32-s3", {"size": 0x300000},
     "internal_flash.size 3145728 bytes is not a flash size esptool 5.6.0 can state for esp32s3"),
])
def test_check_refuses_a_geometry_the_tool_contradicts(
    repo_root: Path, board: str, change: dict[str, Any], message: str
) -> None:
    data = copy.deepcopy(_raw(repo_root, board))
    data["internal_flash"].update(change)
    problems, _notes = _report(data)
    assert any(message in p for p in problems), problems


def test_a_missing_tool_is_a_note_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def without(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in {"esptool", "nordicsemi"}:
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)
    esp = check_board_tools(load_board("esp32-s3"))
    assert esp.problems == []
    assert [str(n) for n in esp.notes] == [
        "esp32-s3: esptool is not installed: its settings are not checked "
        "(pip install 'suture[boards]')"]
    feather = check_board_tools(load_board("adafruit-feather-nrf52840"))
    assert [str(n) for n in feather.notes] == [
        "adafruit-feather-nrf52840: adafruit-nrfutil is not installed: its settings are not "
        "checked (pip install 'suture[boards]')"]
    result = runner.invoke(app, ["board", "check", "esp32-s3"])
    assert result.exit_code == 0
    assert "note esp32-s3: esptool is not installed" in " ".join(result.output.split())


def test_suture_board_check_fails_on_a_tool_problem(tmp_path: Path, repo_root: Path) -> None:
    text = (repo_root / "boards" / "esp32-s3" / "board.toml").read_text()
    folder = tmp_path / "esp32-s3"
    folder.mkdir()
    (folder / "board.toml").write_text(text.replace('esptool_chip = "esp32s3"',
                                                    'esptool_chip = "esp32-s3"'))
    result = runner.invoke(app, ["board", "check", "--file", str(folder / "board.toml")])
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "FAIL esp32-s3: flashing.esptool_chip 'esp32-s3' is not a chip esptool" in out
    assert "esp32s3" in esptool_chips()
    result = runner.invoke(app, ["board", "check", "esp32-s3", "pyboard-stm32f405"])
    out = " ".join(result.output.split())
    assert result.exit_code == 0, out
    assert "ok esp32-s3" in out
    assert "ok pyboard-stm32f405" in out
