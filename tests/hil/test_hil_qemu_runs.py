"""The HIL suite on the QEMU boards (an inner pytest run per board, ``--target qemu-mps2-…``).

On mps2-an385 the same MicroPython scenarios as on the simulator run against the real firmware
under stage0, with stage0's own tests; a scenario QEMU cannot run is not collected and the run
names it with the reason. On mps2-an505 (no MicroPython firmware) stage0's tests run alone."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SCENARIOS = sorted(p.name for p in HERE.glob("test_hil_*.py") if p.name != Path(__file__).name)
# What QEMU cannot give: the agent on these boards reaches the scheduler through the device
# link and its gateway (tests/qemu/test_agent_link.py), not through a network on the test host.
NOT_ON_QEMU = {"test_hil_network.py::test_update_over_the_network"}


def _run(board: str, tmp_path: Path) -> tuple[dict[str, str], str]:
    report = tmp_path / "report.xml"
    proc = subprocess.run(
        # no warnings summary: the output's tail, which a failure shows, is the failures' own
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:warnings",
         "--target", board,
         f"--junitxml={report}", *SCENARIOS],
        cwd=HERE, capture_output=True, text=True, check=False, timeout=1800,
        env={**os.environ, "SUTURE_FORBID_SKIPS": "1"},
    )
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '').split('.')[-1]}.py::{case.get('name')}"
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[name] = kinds[0] if kinds else "passed"
    return outcomes, proc.stdout[-4000:] + proc.stderr[-2000:]


@pytest.mark.qemu
@pytest.mark.slow
def test_the_hil_scenarios_pass_on_the_firmware_under_stage0(tmp_path: Path) -> None:
    outcomes, out = _run("qemu-mps2-an385", tmp_path)
    bad = {k: v for k, v in outcomes.items() if v != "passed"}
    assert not bad, out
    names = {k.split("[")[0] for k in outcomes}
    # the MicroPython scenarios and stage0's own, on the same target
    assert "test_hil_updates.py::test_power_cut_during_install_finishes_at_the_next_boot" in names
    assert "test_hil_stage0.py::test_stage0_hands_over_to_the_signed_loader" in names
    assert len(outcomes) >= 30, out
    assert not names & NOT_ON_QEMU
    for scenario in NOT_ON_QEMU:
        assert f"{scenario}: target qemu-mps2-an385 lacks" in out  # said, with the reason


@pytest.mark.qemu
def test_stage0_hil_tests_pass_on_the_an505(tmp_path: Path) -> None:
    outcomes, out = _run("qemu-mps2-an505", tmp_path)
    assert {k: v for k, v in outcomes.items() if v != "passed"} == {}, out
    assert {k for k in outcomes if k.startswith("test_hil_stage0.py")} == {
        "test_hil_stage0.py::test_stage0_hands_over_to_the_signed_loader",
        "test_hil_stage0.py::test_stage0_refuses_a_loader_signed_by_another_key",
    }, out
    # no MicroPython scenario runs on a board without firmware
    assert not any(k.startswith("test_hil_updates.py") for k in outcomes), out
