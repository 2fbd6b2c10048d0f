"""A heap that runs out while an update is staged is a clear refusal, not a crash: the loader
raises MemoryShortError (34), the update's record is FAILED, the running application stays, and
the same update stages once memory is back."""

from __future__ import annotations

from pathlib import Path

import pytest
from suture.bundle import build_bundle
from suture.formats import error_codes
from suture.keys import PrivateKey
from suture.sim import load_board
from suture.sim.testing import Provisioned, provision, sign_payload

REPO = Path(__file__).resolve().parents[2]
MEMORY_SHORT = error_codes.load().code("loader", "MemoryShortError")
V1 = build_bundle({"main.py": b"def main():\n    print('APP 1')\n"})
V2 = build_bundle({"main.py": b"def main():\n    print('APP 2')\n", "d.bin": bytes(9000)})

SHORT = """
from loader.errors import MemoryShortError
from loader.console import FileStream
class _Short:
    def __init__(self, inner, after):
        self.inner, self.left = inner, after
    def readinto(self, buf):
        if self.left <= 0:
            raise MemoryError("memory allocation failed")
        self.left -= 1
        return self.inner.readinto(buf)
with open(args[0], "rb") as f:
    env = f.read()
try:
    loader.stage(env, _Short(FileStream(args[1]), int(args[2])))
    out["error"] = None
except MemoryShortError as e:
    out["error"] = e.code
out["state"] = loader.journal.current.name()
"""


@pytest.fixture
def device(tmp_path: Path, loader_lib: Path, signing_key: PrivateKey) -> Provisioned:
    geometry = load_board(REPO / "boards" / "sim" / "board.toml")
    p = provision(tmp_path / "dev", geometry, signing_key, lib=loader_lib, app=V1)
    p.board.put_file("short.py", SHORT.encode())
    return p


@pytest.mark.parametrize("after", [0, 2])
def test_out_of_memory_while_staging_is_refused(device: Provisioned, after: int) -> None:
    env = device.board.put_file("v2.suit", sign_payload(V2, 2, device.key))
    pay = device.board.put_file("v2.bundle", V2)
    r = device.device.run(["exec", "short.py", env, pay, str(after)])
    assert r.ok, r.stdout + r.stderr
    assert (r.result["error"], r.result["state"]) == (MEMORY_SHORT, "FAILED")
    r = device.device.run(["boot"], ["app"], ["report"])
    assert "APP 1\n" in r.stdout
    assert r.report()["installed_version"] == 1
    r = device.device.run(["stage", env, pay])
    assert r.ok, r.stdout + r.stderr
    r = device.device.run(["boot"], ["app"], ["report"])
    assert "APP 2\n" in r.stdout
