"""`suture sim` without a terminal (`make demo` in a log): one line per phase and per change of
the rollout's state or wave, never the live view's fragments."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from suture.cli.main import app
from suture.cli.sim_cmd import progress_line
from suture.ward.run import WardSnapshot
from typer.testing import CliRunner


@pytest.mark.parametrize(("snap", "line"), [
    (WardSnapshot(phase="building releases"), "building releases"),
    (WardSnapshot(phase="rollout"), "rollout"),
    (WardSnapshot(phase="rollout", rollout_state="running", current_wave=0, wave_count=3,
                  rollout_reason="wave 0 opened"), "rollout running, wave 1 of 3"),
    (WardSnapshot(phase="rollout", rollout_state="paused", current_wave=1, wave_count=3,
                  rollout_reason="error threshold reached"),
     "rollout paused, wave 2 of 3 (error threshold reached)"),
    (WardSnapshot(phase="stopping devices", rollout_state="completed"), "stopping devices"),
    (WardSnapshot(phase="reading flash images", rollout_state="completed"),
     "reading flash images"),
    (WardSnapshot(phase="done", rollout_state="completed"), ""),
])
def test_progress_lines(snap: WardSnapshot, line: str) -> None:
    assert progress_line(snap) == line


@pytest.mark.slow
def test_without_a_terminal_the_log_is_phases_then_the_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["sim", "--devices", "1", "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    summary = next(i for i, line in enumerate(lines) if line.startswith("ward: rollout "))
    progress = [re.sub(r"^\s*\d+\.\d s  ", "", line) for line in lines[:summary]]
    assert all(re.match(r"^\s*\d+\.\d s  \S", line) for line in lines[:summary]), lines
    assert progress[0] in ("starting", "building releases")
    assert "rollout running, wave 1 of 1" in progress
    assert progress[-2:] == ["stopping devices", "reading flash images"]
    assert len(progress) == len(set(progress))  # a line is printed when it changes
    assert "1 devices: 1 updated" in result.stdout
