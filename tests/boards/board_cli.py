"""The `suture board` command line as the board tests call it: run a command in-process, and
read a simulated board's status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from suture.cli.main import app
from typer.testing import CliRunner

runner = CliRunner()


def cli(*args: str | Path) -> tuple[int, str]:
    """Exit code and output of `suture ARGS`; a traceback in the output fails the test."""
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def board_status(device: Path) -> dict[str, Any]:
    """`suture board status sim --device DEVICE --json`, which must succeed."""
    code, out = cli("board", "status", "sim", "--device", device, "--json")
    assert code == 0, out
    value = json.loads(out)
    assert isinstance(value, dict)
    return value
