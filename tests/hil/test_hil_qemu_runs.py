"""The stage0 HIL tests run with ``--target qemu-mps2-…`` (an inner pytest run per board), and
the MicroPython scenarios are not collected there."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
HERE = Path(__file__).parent


@pytest.mark.qemu
@pytest.mark.parametrize("board", ["qemu-mps2-an385", "qemu-mps2-an505"])
def test_stage0_hil_tests_pass_on_the_qemu_board(pytester: pytest.Pytester, board: str) -> None:
    pytester.makepyfile(test_stage0_copy=(HERE / "test_hil_stage0.py").read_text())
    pytester.makepyfile(test_mpy_copy=(HERE / "test_hil_dut.py").read_text())
    result = pytester.runpytest("-p", "no:cacheprovider", "--target", board)
    result.assert_outcomes(passed=2)  # the stage0 tests; the MicroPython ones not collected
    result.stdout.fnmatch_lines(["*deselected*"])
