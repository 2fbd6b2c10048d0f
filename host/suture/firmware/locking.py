"""One builder at a time: the firmware's and stage0's build folders are shared by every process
that builds into them (test workers, ``make firmware`` beside a test run), so each build holds
an exclusive lock on its folder while it makes, and the next one finds the result in place."""

from __future__ import annotations

import fcntl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from suture.firmware.errors import FirmwareError
from suture.firmware.source import REPO_ROOT

STAGE0_DIR = REPO_ROOT / "stage0"


@contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s build lock (``folder/.build.lock``, made on first use) until the end of
    the ``with`` block; another process asking for it waits."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".build.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def make_stage0(stage0_dir: Path = STAGE0_DIR) -> Path:
    """Build every stage0 target (incrementally; fetching its crypto library the first time)
    under the lock of its build folder; returns the build folder."""
    build = stage0_dir / "build"
    with exclusive(build):
        proc = subprocess.run(["make", "-C", str(stage0_dir), "-j2"], capture_output=True,
                              text=True, check=False)
    if proc.returncode:
        raise FirmwareError(f"stage0 does not build:\n{proc.stdout[-2000:]}\n"
                            f"{proc.stderr[-2000:]}")
    return build
