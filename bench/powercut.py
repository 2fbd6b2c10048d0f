"""Power-cut sweeps whole and a long fault campaign (what CI samples), on the simulated board.

Runs the power-cut tests of tests/sim/test_powercut.py, tests/sim/test_encrypted_powercut.py and
the delta sweeps (tests/delta: an application delta, a loader image's) with ``--full-sweep``
(every hard kind of cut at every operation, every double cut: the recovery boot cut at each of
its operations after each first cut; the encrypted staging cut at every operation) and
tests/sim/test_fault_campaign.py with ``SUTURE_CAMPAIGN_CASES`` (default 500) cases; the
figures are the counts the tests print. ``SUTURE_BENCH_SWEEPS`` narrows the sweeps (a pytest
``-k`` expression).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _pytest(args: list[str], env: dict[str, str]) -> tuple[int, dict[str, str]]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )
    figures: dict[str, str] = {}
    for m in re.finditer(r"^tests/\S+::(\S+): (.+?) = (.+)$", proc.stdout, re.M):
        figures[m.group(2)] = m.group(3)
    if proc.returncode:
        figures["FAILED"] = proc.stdout[-2000:]
    return proc.returncode, figures


def run() -> dict[str, object]:
    env = dict(os.environ, SUTURE_FULL_SWEEP="1")
    env.setdefault("SUTURE_CAMPAIGN_CASES", "500")
    out: dict[str, object] = {}
    sweeps = ["tests/sim/test_powercut.py", "tests/sim/test_encrypted_powercut.py",
              "tests/delta/test_delta_powercut.py", "tests/delta/test_delta_loader_sim.py",
              "-m", "powercut", "--full-sweep"]
    if os.environ.get("SUTURE_BENCH_SWEEPS"):
        sweeps += ["-k", os.environ["SUTURE_BENCH_SWEEPS"]]
    code, figs = _pytest(sweeps, env)
    out["sweeps_passed"] = code == 0
    out.update({f"sweep: {k}": v for k, v in figs.items() if "outcomes" not in k})
    code, figs = _pytest(["tests/sim/test_fault_campaign.py", "-k", "fault_campaign"], env)
    out["campaign_passed"] = code == 0
    out.update(figs)
    return out
