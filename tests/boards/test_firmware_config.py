"""`suture board firmware-config`: the loader's frozen board_config module rendered from each real
board's definition, checked value by value and then run: the real-board HAL (loader/hal/mcu.py)
under the unix port opens the SPI bus as the definition says and keeps the journal and the NVM
store in the regions the definition names."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from suture.boards import load_board
from suture.boards.schema import Board
from suture.cli.main import app
from suture.firmware.board_config import (
    DEFAULT_MOUNT,
    FirmwareConfigError,
    LoaderTrust,
    machine_pin,
    render_board_config,
    write_firmware_dir,
)
from suture.keys import generate_private_key, public_key_bytes
from suture.sim.fake_spi_nor import MACHINE_PY
from typer.testing import CliRunner

REAL_BOARDS = ["adafruit-feather-nrf52840", "esp32-s3", "pyboard-stm32f405", "rpi-pico"]
LOADER_MANIFEST = Path(__file__).resolve().parents[2] / "loader" / "manifest.py"
VENDOR_KEY = public_key_bytes(generate_private_key("ES256").public_key())
TRUST = LoaderTrust(vendor_keys=[VENDOR_KEY], vendor_id=uuid.uuid4(), class_id=uuid.uuid4(),
                    max_trial_boots=4, wdt_ms=5000)


def _module(text: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(text, "board_config.py", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("name", REAL_BOARDS)
def test_config_says_what_the_definition_says(name: str) -> None:
    board = load_board(name)
    cfg = _module(render_board_config(board, TRUST))
    ext = board.external_flash
    assert ext.spi is not None
    assert board.micropython is not None
    port = board.micropython.port
    assert cfg["NAME"] == name
    assert cfg["EXT_SIZE"] == ext.size
    assert (cfg["EXT_SECTOR"], cfg["EXT_PAGE"]) == (ext.sector, ext.page)
    assert cfg["EXT_REGIONS"] == {r.role: (r.offset, r.size) for r in ext.regions
                                  if r.role != "spare"}
    assert set(cfg["EXT_REGIONS"]) == {"journal", "nvm", "staging", "backup"}
    assert cfg["SPI_BAUD"] == ext.spi.baudrate
    assert cfg["SPI_CS"] == machine_pin(port, ext.spi.cs)
    if port == "stm32":
        assert cfg["SPI_PINS"] == ()
    else:
        assert len(cfg["SPI_PINS"]) == 3
    assert cfg["KEYS"] == [VENDOR_KEY]
    assert cfg["VENDOR_ID"] == TRUST.vendor_id.bytes
    assert cfg["CLASS_ID"] == TRUST.class_id.bytes
    assert cfg["DEVICE_ID"] == b""
    assert (cfg["MAX_TRIAL_BOOTS"], cfg["WDT_MS"]) == (4, 5000)
    assert cfg["MOUNT"] == DEFAULT_MOUNT[port]


@pytest.mark.parametrize(("port", "name", "want"), [
    ("rp2", "GP17", 17), ("rp2", "GP0", 0), ("esp32", "GPIO10", 10), ("esp32", "IO4", 4),
    ("nrf", "P0.20", 20), ("nrf", "P1.02", 34), ("stm32", "X5", "X5"), ("stm32", "A4", "A4"),
])
def test_pin_names_become_what_machine_pin_takes(port: str, name: str, want: int | str) -> None:
    assert machine_pin(port, name) == want


@pytest.mark.parametrize(("port", "name"), [
    ("rp2", "GPIO17"), ("rp2", "17"), ("esp32", "GP4"), ("nrf", "P2.01"), ("nrf", "20"),
    ("unix", "GP1"),
])
def test_pin_names_a_port_does_not_use_are_refused(port: str, name: str) -> None:
    with pytest.raises(FirmwareConfigError, match="not understood"):
        machine_pin(port, name)


def _without_spi(board: Board) -> Board:
    ext = board.external_flash.model_copy(update={"spi": None})
    return board.model_copy(update={"external_flash": ext})


def _overlapping(board: Board) -> Board:
    regions = list(board.external_flash.regions)
    regions[1] = regions[1].model_copy(update={"offset": regions[0].offset})
    ext = board.external_flash.model_copy(update={"regions": tuple(regions)})
    return board.model_copy(update={"external_flash": ext})


@pytest.mark.parametrize(("make", "trust", "message"), [
    (lambda: load_board("sim"), TRUST, "no MicroPython port with a real-board HAL"),
    (lambda: load_board("qemu-mps2-an505"), TRUST, "littlefs region"),
    (lambda: _without_spi(load_board("rpi-pico")), TRUST, r"\[external_flash.spi\]"),
    (lambda: _overlapping(load_board("rpi-pico")), TRUST, "not sound"),
    (lambda: load_board("rpi-pico"), LoaderTrust([], TRUST.vendor_id, TRUST.class_id),
     "at least one vendor key"),
    (lambda: load_board("rpi-pico"), LoaderTrust([VENDOR_KEY[:33]], TRUST.vendor_id,
                                                 TRUST.class_id), "65-byte"),
    (lambda: load_board("rpi-pico"), LoaderTrust([VENDOR_KEY], TRUST.vendor_id, TRUST.class_id,
                                                 max_trial_boots=0), "max trial boots"),
])
def test_refusals_write_nothing(make: Callable[[], Board], trust: LoaderTrust, message: str,
                                tmp_path: Path) -> None:
    out = tmp_path / "fw"
    with pytest.raises(FirmwareConfigError, match=message):
        write_firmware_dir(make(), trust, out, LOADER_MANIFEST)
    assert not out.exists()


HAL_SCRIPT = """
import json
import machine
from loader.hal.mcu import McuBoard
from loader.journal import Journal, Record
from loader.nvm import Nvm
import loader.journal as J
b = McuBoard()
j = Journal(b.region("journal"))
for i in range(70):
    j.append(Record(state=J.IDLE if i % 2 else J.CONFIRMED, version=i))
nvm = Nvm(b.region("nvm"), 1)
nvm.put("agent.sched", b"12", 1, True)
again = Journal(b.region("journal"))
print("RESULT " + json.dumps({
    "seq": again.current.seq, "nvm": Nvm(b.region("nvm"), 1).get("agent.sched")[1].decode(),
    "spi": machine.BUS.spi, "cs": machine.BUS.cs.n,
    "sectors": sorted(machine.BUS.mem.sectors), "keys": len(b.keys),
    "max_trial_boots": b.max_trial_boots, "mount": b.mount_point}))
"""


@pytest.mark.parametrize("name", ["rpi-pico", "pyboard-stm32f405"])
def test_the_loader_hal_runs_on_the_generated_config(
        name: str, run_mpy: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    board = load_board(name)
    write_firmware_dir(board, TRUST, tmp_path, LOADER_MANIFEST)
    (tmp_path / "machine.py").write_text(MACHINE_PY)
    cfg = _module((tmp_path / "board_config.py").read_text())
    got = run_mpy(HAL_SCRIPT, heapsize="512K")
    assert got["seq"] == 70
    assert got["nvm"] == "12"
    assert got["spi"] == [cfg["SPI_ID"], cfg["SPI_BAUD"], *cfg["SPI_PINS"]]
    assert got["cs"] == cfg["SPI_CS"]
    assert (got["keys"], got["max_trial_boots"], got["mount"]) == (1, 4, cfg["MOUNT"])
    # Every sector written lies in the journal or the NVM region of the definition.
    allowed = set()
    for role in ("journal", "nvm"):
        off, size = cfg["EXT_REGIONS"][role]
        allowed |= set(range(off // 4096, (off + size) // 4096))
    assert got["sectors"]
    assert set(got["sectors"]) <= allowed


def test_cli_writes_the_config_and_the_manifest(tmp_path: Path) -> None:
    runner = CliRunner()
    keygen = runner.invoke(app, ["keygen", "--out", str(tmp_path / "v.pem"), "--alg", "ES256"])
    assert keygen.exit_code == 0, keygen.output
    out = tmp_path / "fw"
    result = runner.invoke(app, ["board", "firmware-config", "rpi-pico", "--vendor-key",
                                 str(tmp_path / "v.pub.pem"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "FROZEN_MANIFEST=" in result.output
    cfg = _module((out / "board_config.py").read_text())
    assert cfg["NAME"] == "rpi-pico"
    assert len(cfg["KEYS"]) == 1
    manifest = (out / "manifest.py").read_text()
    assert f"include({str(LOADER_MANIFEST)!r})" in manifest
    assert 'module("board_config.py")' in manifest

    refused = runner.invoke(app, ["board", "firmware-config", "sim", "--vendor-key",
                                  str(tmp_path / "v.pub.pem"), "--out", str(tmp_path / "x")])
    assert refused.exit_code == 1
    assert "no MicroPython port" in refused.output
    assert not (tmp_path / "x").exists()
    bad_id = runner.invoke(app, ["board", "firmware-config", "rpi-pico", "--vendor-key",
                                 str(tmp_path / "v.pub.pem"), "--out", str(tmp_path / "y"),
                                 "--vendor-id", "not-a-uuid"])
    assert bad_id.exit_code == 2  # usage
    assert "not a UUID" in bad_id.output
