"""docs/deploy-to-a-board.md, sections 1 to 5, run as written on the simulated board: keys and
an application that confirms itself, provisioning, the developer's loop, a release built with
`suture bundle build` and `suture suit create` installed over USB, its trial confirmed by the
application, and decommissioning. The lines a block shows as output (``# …`` after a command)
must be printed. Blocks for a real board (a port, a probe, rpi-pico) are left to the bench."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REAL_BOARD = ("rpi-pico", "/dev/tty", "pyocd", "--probe", "--link swd")


def _sim_blocks(doc: str) -> list[str]:
    sections = doc[doc.index("## 1.") : doc.index("## See also")]
    blocks = re.findall(r"```sh\n(.*?)```", sections, flags=re.S)
    return [b for b in blocks if not any(word in b for word in REAL_BOARD)]


def _expected(block: str) -> list[str]:
    """The output lines a block shows: ``# …`` lines that follow a command, outside heredocs."""
    expected, in_heredoc = [], ""
    for line in block.splitlines():
        if in_heredoc:
            in_heredoc = "" if line == in_heredoc else in_heredoc
            continue
        heredoc = re.search(r"<<'(\w+)'", line)
        if heredoc:
            in_heredoc = heredoc.group(1)
        elif line.startswith("# "):
            expected.append(" ".join(line[2:].split()))
    return expected


def test_sections_1_to_5_run_on_the_simulated_board(repo_root: Path, tmp_path: Path) -> None:
    doc = (repo_root / "docs" / "deploy-to-a-board.md").read_text()
    blocks = _sim_blocks(doc)
    assert any("suture bundle build" in b for b in blocks)
    assert any("suture board decommission" in b for b in blocks)
    env = {**os.environ, "PATH": f"{repo_root / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("COLUMNS", None)
    outputs = []
    for block in blocks:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=300, check=False)
        assert proc.returncode == 0, (
            f"{block}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
        printed = " ".join(proc.stdout.split())
        for line in _expected(block):
            assert line in printed, f"{block}\nexpected: {line}\nprinted: {proc.stdout}"
        outputs.append(proc.stdout)
    update = next(out for block, out in zip(blocks, outputs, strict=True)
                  if "suture board update" in block)
    assert "board state TRIAL, installed version 2" in " ".join(update.split())
    assert "state CONFIRMED (application, version 2" in " ".join(update.split())


@pytest.mark.parametrize("page", ["deploy-to-a-board.md", "hil.md"])
def test_the_repository_paths_a_page_names_exist(repo_root: Path, page: str) -> None:
    """`device/…`, `loader/…`, `host/…`, `boards/…`, `tests/…` and `tools/…` paths in the page
    (in backticks or as a command's argument) are in the repository; build outputs are not
    checked (`stage0/build/…` exists only after `make -C stage0`)."""
    text = (repo_root / "docs" / page).read_text()
    named = set(re.findall(r"(?<![\w./-])((?:device|loader|host|boards|tests|tools|stage0)/"
                           r"[\w./-]*[\w/])", text))
    assert named
    # build outputs (stage0/build/…) exist only once built: their folder's Makefile makes them
    missing = sorted(p for p in named if "*" not in p and "<" not in p
                     and "/build/" not in f"/{p}" and not (repo_root / p).exists())
    assert not missing, f"{page} names paths that do not exist: {missing}"
