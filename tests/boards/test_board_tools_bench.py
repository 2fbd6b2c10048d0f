"""On the bench, what needs the board: the pinned tools reach it and find the board its definition
describes, a second debugger finds the probe busy, and the flash plan writes it with progress.

    .venv/bin/pytest tests/boards/test_board_tools_bench.py --target esp32-s3 --port /dev/ttyACM0
    .venv/bin/pytest tests/boards/test_board_tools_bench.py --target rpi-pico --port /dev/ttyACM0

``SUTURE_BENCH_PROBE`` names the debug probe's unique id when more than one is connected;
``SUTURE_BENCH_FIRMWARE`` (and ``SUTURE_BENCH_STAGE0`` for a board with stage0) the images the
flashing test writes. Marked ``hil`` for bench targets only: the simulator and QEMU (and so CI)
do not collect them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from suture.boardops import esp, probe
from suture.boardops.flash_runner import run_flash_plan
from suture.boardops.flashing import Images, flash_plan
from suture.boards import Board, load_board
from suture.boards.tools import esptool_flash_size
from suture.hil.plugin import target_name

pytestmark = [pytest.mark.hil, pytest.mark.hil_targets("bench")]


@pytest.fixture
def bench_board(pytestconfig: pytest.Config) -> Board:
    return load_board(target_name(pytestconfig))


@pytest.fixture
def bench_port(pytestconfig: pytest.Config) -> str:
    port = pytestconfig.getoption("port", default=None)
    if not port:
        raise pytest.UsageError("the bench tests need --port")
    return str(port)


def test_esptool_finds_the_chip_and_the_flash_the_definition_names(
    bench_board: Board, bench_port: str
) -> None:
    if bench_board.flashing.esptool_chip is None:
        pytest.skip(f"{bench_board.name} is not flashed with esptool")
    import esptool.cmds

    chip = bench_board.flashing.esptool_chip
    with esp.esptool_output(), esptool.cmds.connect_esp(port=bench_port, chip=chip) as found:
        assert found.CHIP_NAME.replace("-", "").lower() == chip
        assert esptool.cmds.detect_flash_size(found) == esptool_flash_size(
            chip, bench_board.internal_flash.size)


def test_the_probe_finds_the_target_and_its_flash(bench_board: Board) -> None:
    target = bench_board.flashing.pyocd_target
    if target is None:
        pytest.skip(f"{bench_board.name} has no SWD path")
    from pyocd.core.memory_map import FlashRegion

    flash = bench_board.internal_flash
    with probe.open_session(target, bench_board.flashing.pyocd_pack,
                            os.environ.get("SUTURE_BENCH_PROBE")) as (session, _log):
        regions = [r for r in session.target.memory_map if isinstance(r, FlashRegion)]
        holding = [r for r in regions if r.start <= flash.base < r.start + r.length]
        assert holding, [hex(r.start) for r in regions]
        assert holding[0].sector_size == flash.sector_boundaries()[1]
        # A second debugger cannot have the probe meanwhile: suture says it is busy (exit 3).
        with pytest.raises(probe.ProbeBusyError, match="is busy or failed to open") as err, \
                probe.open_session(target, bench_board.flashing.pyocd_pack,
                                   os.environ.get("SUTURE_BENCH_PROBE")):
            pass
        assert err.value.exit_code == 3


def test_the_flash_plan_writes_the_board_with_progress(bench_board: Board, bench_port: str
                                                       ) -> None:
    firmware = os.environ.get("SUTURE_BENCH_FIRMWARE")
    if firmware is None:
        pytest.skip("give SUTURE_BENCH_FIRMWARE (and SUTURE_BENCH_STAGE0) to flash the board")
    stage0 = os.environ.get("SUTURE_BENCH_STAGE0")
    images = Images(loader=Path(firmware), stage0=Path(stage0) if stage0 else None)
    with tempfile.TemporaryDirectory() as tmp:
        steps = flash_plan(bench_board, images, port=bench_port,
                           probe=os.environ.get("SUTURE_BENCH_PROBE"), workdir=Path(tmp))
        seen: dict[str, tuple[int, int]] = {}
        run_flash_plan(steps, lambda step, done, total: seen.__setitem__(step, (done, total)))
    assert seen
    assert all(done == total for done, total in seen.values()), seen
