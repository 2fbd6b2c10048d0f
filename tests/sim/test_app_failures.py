"""The application is code the loader did not write: whatever its main.py raises (at import or
in main(), SystemExit included), `power_on()` (the firmware's entry, run here on the unix port)
catches it, prints one clear line, and the trial logic still holds: an application that fails
on trial is never confirmed, each failing boot counts, and after max_trial_boots the confirmed
version comes back. A confirmed application that fails is left stopped, without a reset loop."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from suture.bundle import build_bundle
from suture.sim.journal import State
from suture.sim.testing import Provisioned, sign_payload

POWER_ON = "from loader.boot import power_on\npower_on()\nprint('POWER-ON-RETURNED')\n"
EXIT_RESET = 98

FAILURES = {
    "raise-in-main": "def main():\n    raise RuntimeError('boom')\n",
    "raise-at-import": "1 // 0\n\ndef main():\n    pass\n",
    "missing-import": "import no_such_module\n\ndef main():\n    pass\n",
    "system-exit": "import sys\n\ndef main():\n    sys.exit(3)\n",
    "recursion": "def main():\n    main()\n",
    "not-callable": "main = 5\n",
}
SEEN = {
    "raise-in-main": "RuntimeError: boom",
    "raise-at-import": "ZeroDivisionError",
    "missing-import": "ImportError",
    "system-exit": "SystemExit: 3",
    "recursion": "RuntimeError: maximum recursion depth exceeded",
    "not-callable": "TypeError",
}


def _app(version: int, main: str) -> bytes:
    return build_bundle({"main.py": f"VERSION = {version}\n{main}".encode()})


def power_on(p: Provisioned) -> subprocess.CompletedProcess[str]:
    """One power-on of the simulated board through loader.boot.power_on."""
    p.board.put_file("po.py", POWER_ON.encode())
    env = dict(os.environ, MICROPYPATH=str(p.device.lib))
    micropython = Path(sys.executable).parent / "micropython"
    return subprocess.run(
        [str(micropython), "-X", f"heapsize={p.board.heapsize}", "po.py"],
        cwd=p.board.workdir, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_app_failing_on_trial_is_reverted_not_confirmed(
    make_device: Callable[..., Provisioned], kind: str
) -> None:
    good = _app(1, "def main():\n    print('APP', VERSION)\n")
    p = make_device(app=good)
    bad = _app(2, FAILURES[kind])
    env = p.board.put_file("v2.suit", sign_payload(bad, 2, p.key))
    assert p.device.run(["stage", env, p.board.put_file("v2.bundle", bad)]).ok
    max_boots = p.board.identity.max_trial_boots
    for boot in range(1, max_boots + 1):
        r = power_on(p)
        out = r.stdout + r.stderr
        assert r.returncode == EXIT_RESET, f"boot {boot}: exit {r.returncode}\n{out}"
        assert "Traceback" not in out
        assert f"suture: application failed: {SEEN[kind]}" in r.stdout, out
        assert "the trial is not confirmed; resetting" in r.stdout
        rec = p.board.current_record()
        assert rec is not None
        assert (rec.state, rec.version, rec.boot_count) == (State.TRIAL, 2, boot)
    r = power_on(p)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "APP 1" in r.stdout
    assert "suture: application returned" in r.stdout
    assert "POWER-ON-RETURNED" in r.stdout
    states = [rec.state for rec in p.board.read_journal()]
    assert State.CONFIRMED not in states[states.index(State.TRIAL):]
    assert states[-1] == State.REVERTED


def test_confirmed_app_that_fails_does_not_reset(make_device: Callable[..., Provisioned]) -> None:
    p = make_device(app=_app(1, FAILURES["raise-in-main"]))
    before = p.board.read_journal()
    r = power_on(p)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "suture: application failed: RuntimeError: boom" in r.stdout
    assert "POWER-ON-RETURNED" in r.stdout  # the boot ends (the REPL on a board), no reset
    assert "resetting" not in r.stdout
    assert p.board.read_journal() == before


def test_no_main_is_reported_missing(make_device: Callable[..., Provisioned]) -> None:
    p = make_device(app=build_bundle({"lib/x.py": b"X = 1\n"}))
    r = power_on(p)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "suture: application missing" in r.stdout
