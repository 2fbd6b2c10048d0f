"""A tree copied by `suture board deploy` runs, and nothing else does.

The loader lets an application run only when /app is the installed record's signed bundle;
deploy records the digest of the tree it copied (kept NVM record ``dev.tree``), so exactly
that tree runs. A later change to it is still restored, and a signed install replaces it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from suture.bundle import build_bundle
from suture.keys import PrivateKey
from suture.sim import load_board
from suture.sim.testing import Provisioned, provision, sign_payload

REPO = Path(__file__).resolve().parents[2]
V1 = build_bundle({"main.py": b"def main():\n    print('APP 1')\n"})
V2 = build_bundle({"main.py": b"def main():\n    print('APP 2')\n"})

WRITE = """
with open(board.mount_point + '/app/' + args[0], 'w') as f:
    f.write(args[1])
if len(args) > 2:
    out["dev_tree"] = loader.accept_developer_tree().hex()
"""
EMPTY_DIGEST = hashlib.sha256(build_bundle({})).hexdigest()
DEV_MAIN = "def main():\n    print('APP dev')\n"


@pytest.fixture
def device(tmp_path: Path, loader_lib: Path, signing_key: PrivateKey) -> Provisioned:
    geometry = load_board(REPO / "boards" / "sim" / "board.toml")
    p = provision(tmp_path / "dev", geometry, signing_key, lib=loader_lib, app=V1)
    p.board.put_file("write.py", WRITE.encode())
    return p


def _write(p: Provisioned, name: str, text: str, accept: bool) -> None:
    r = p.device.run(["exec", "write.py", name, text, *(["accept"] if accept else [])])
    assert r.ok, r.stdout + r.stderr


def _boot(p: Provisioned) -> tuple[str, dict[str, object]]:
    r = p.device.run(["boot"], ["app"], ["report"], timeout=300)
    assert r.ok, r.stdout + r.stderr
    return r.stdout, r.report()


def test_the_deployed_tree_runs_at_every_boot(device: Provisioned) -> None:
    _write(device, "main.py", DEV_MAIN, accept=True)
    for _ in range(2):
        out, rep = _boot(device)
        assert "APP dev\n" in out
        assert rep["state"] == "CONFIRMED"
        assert rep["installed_version"] == 1


def test_a_change_after_the_deploy_is_not_run(device: Provisioned) -> None:
    _write(device, "main.py", DEV_MAIN, accept=True)
    _write(device, "extra.py", "x = 1\n", accept=False)
    out, rep = _boot(device)
    # no signed copy of v1 is left on this board (no backup yet): /app is emptied
    assert "APP" not in out
    assert rep["app_digest"] == EMPTY_DIGEST
    assert rep["installed_version"] == 1


def test_without_the_record_a_changed_tree_is_not_run(device: Provisioned) -> None:
    _write(device, "main.py", DEV_MAIN, accept=False)
    out, rep = _boot(device)
    assert "APP" not in out
    assert rep["app_digest"] == EMPTY_DIGEST


def test_a_signed_install_replaces_the_deployed_tree(device: Provisioned) -> None:
    _write(device, "main.py", DEV_MAIN, accept=True)
    env = device.board.put_file("v2.suit", sign_payload(V2, 2, device.key))
    r = device.device.run(["stage", env, device.board.put_file("v2.bundle", V2)], timeout=300)
    assert r.ok, r.stdout + r.stderr
    out, rep = _boot(device)
    assert "APP 2\n" in out
    assert "APP dev" not in out
    assert rep["app_digest"] == hashlib.sha256(V2).hexdigest()
