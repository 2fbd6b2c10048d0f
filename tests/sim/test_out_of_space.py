"""littlefs out of space while the loader writes /app (the standard sim board: 2 MiB littlefs).

An install never leaves a mixed tree: a bundle that cannot fit is refused (FAILED) before /app
is touched; an install that still runs out of space midway is reverted, the revert empties /app
before it restores the backup; and a boot that finds /app not matching the installed record
restores it from an intact signed copy."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from suture.bundle import build_bundle
from suture.formats import error_codes
from suture.keys import PrivateKey
from suture.sim import load_board
from suture.sim.journal import State
from suture.sim.testing import Provisioned, provision, sign_payload

KIB = 1024
NO_SPACE = error_codes.load().code("loader", "NoSpaceError")
REPO = Path(__file__).resolve().parents[2]


def _app(version: int, sizes: dict[str, int]) -> bytes:
    files = {"main.py": f"def main():\n    print('APP', {version})\n".encode()}
    for i, (name, size) in enumerate(sorted(sizes.items())):
        files[name] = bytes([version * 16 + i]) * size
    return build_bundle(files)


V1 = _app(1, {"a.bin": 700 * KIB, "b.bin": 650 * KIB, "c.bin": 100 * KIB})
V2 = _app(2, {"a.bin": 10 * KIB, "b.bin": 700 * KIB, "c.bin": 1290 * KIB})
V1_DIGEST = hashlib.sha256(V1).hexdigest()
V2_DIGEST = hashlib.sha256(V2).hexdigest()

FILL = """
import os
n = int(args[0])
with open(board.mount_point + '/' + args[1], 'wb') as f:
    chunk = bytes(4096)
    while n > 0:
        f.write(chunk[:min(n, 4096)])
        n -= 4096
out["statvfs"] = list(os.statvfs(board.mount_point))
"""


@pytest.fixture
def device(tmp_path: Path, loader_lib: Path, signing_key: PrivateKey) -> Provisioned:
    geometry = load_board(REPO / "boards" / "sim" / "board.toml")
    p = provision(tmp_path / "dev", geometry, signing_key, lib=loader_lib, app=V1)
    p.board.put_file("fill.py", FILL.encode())
    return p


def _stage(p: Provisioned, *extra: str) -> None:
    env = p.board.put_file("v2.suit", sign_payload(V2, 2, p.key))
    r = p.device.run(["stage", env, p.board.put_file("v2.bundle", V2), *extra], timeout=300)
    assert r.ok, r.stdout + r.stderr


def _boot(p: Provisioned) -> dict[str, object]:
    r = p.device.run(["boot"], ["app"], ["report"], timeout=300)
    assert r.ok, r.stdout + r.stderr
    rep = r.report()
    assert rep["app_digest"] == rep["installed_digest"], "the running /app matches no signature"
    assert f"APP {rep['installed_version']}\n" in r.stdout
    return rep


def _fill(p: Provisioned, size: int, name: str = "data.bin") -> None:
    r = p.device.run(["exec", "fill.py", str(size), name])
    assert r.ok, r.stdout + r.stderr


def test_the_reported_sizes_install_and_revert_whole(device: Provisioned) -> None:
    """v1 {a 700, b 650, c 100 KiB} -> v2 {a 10, b 700, c 1290 KiB}: replacing file by file
    needs more than the 2 MiB; emptying /app first, v2 fits, and so does v1 on the way back."""
    p = device
    _stage(p)
    rep = _boot(p)
    assert (rep["state"], rep["installed_version"], rep["app_digest"]) == ("TRIAL", 2, V2_DIGEST)
    assert p.device.run(["revert"]).ok
    rep = _boot(p)
    assert (rep["state"], rep["installed_version"], rep["app_digest"]) == (
        "REVERTED", 1, V1_DIGEST)


def test_bundle_that_cannot_fit_is_refused_before_app_is_touched(device: Provisioned) -> None:
    p = device
    _fill(p, 300 * KIB)  # the application's own data: v2 no longer fits beside it
    _stage(p)
    internal = p.board.internal_image.read_bytes()
    rep = _boot(p)
    assert (rep["state"], rep["installed_version"], rep["app_digest"]) == ("FAILED", 1, V1_DIGEST)
    assert rep["progress"] == NO_SPACE
    assert p.board.internal_image.read_bytes() == internal  # littlefs not written at all
    states = [r.state for r in p.board.read_journal()]
    assert states[-2:] == [State.STAGED, State.FAILED]


# The space check passed (journal: BACKUP), then the application's data grew before the install
# ran: v2 runs out of space midway; v1 still fits once /app is emptied.
TO_BACKUP = """
from loader import journal as J
r = loader.journal.current
loader.journal.append(r.copy(state=J.BACKUP, progress=0))
"""


def test_out_of_space_midway_reverts_to_a_whole_v1(device: Provisioned) -> None:
    p = device
    _stage(p, "noinstall")
    p.board.put_file("to_backup.py", TO_BACKUP.encode())
    assert p.device.run(["exec", "to_backup.py"]).ok
    _fill(p, 300 * KIB)
    rep = _boot(p)
    assert (rep["state"], rep["installed_version"], rep["app_digest"]) == (
        "REVERTED", 1, V1_DIGEST)
    records = p.board.read_journal()
    assert [r.state for r in records][-3:] == [State.INSTALLING, State.REVERTING, State.REVERTED]
    assert records[-2].progress == NO_SPACE
    rep = _boot(p)  # (no `~new` leftover in /app: the canonical digest would differ)
    assert (rep["state"], rep["app_digest"]) == ("REVERTED", V1_DIGEST)


# What the previous loader left behind (the issue): FAILED after a revert that ran out of space,
# /app made of v1's a, v2's b, v1's c and a leftover `b.bin~new`; the backup is intact.
MIX = """
import os
app = board.mount_point + '/app/'
os.remove(app + 'b.bin')
for name, size, byte in (('b.bin', 700 * 1024, 2), ('b.bin~new', 9000, 2)):
    with open(app + name, 'wb') as f:
        chunk = bytes([byte]) * 4096
        while size > 0:
            f.write(chunk[:min(size, 4096)])
            size -= 4096
from loader import journal as J
from loader.errors import NoSpaceError
r = loader.journal.current
loader.journal.append(r.copy(state=J.FAILED, flags=0, progress=NoSpaceError.code))
"""


BACKUP_ONLY = """
loader._do_backup(loader.journal.current)
"""


def test_boot_restores_a_mixed_tree_from_the_backup(device: Provisioned) -> None:
    p = device
    _stage(p, "noinstall")
    p.board.put_file("backup_only.py", BACKUP_ONLY.encode())  # the backup slot gets v1
    assert p.device.run(["exec", "backup_only.py"]).ok
    p.board.put_file("mix.py", MIX.encode())
    assert p.device.run(["exec", "mix.py"]).ok
    rep = _boot(p)
    assert (rep["installed_version"], rep["app_digest"]) == (1, V1_DIGEST)
