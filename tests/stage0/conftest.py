"""stage0 fixtures: the build (once per session), a signing key, flash images."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from suture.keys import PrivateKey, generate_private_key

REPO = Path(__file__).resolve().parents[2]
STAGE0 = REPO / "stage0"
BUILD = STAGE0 / "build"


@pytest.fixture(scope="session")
def stage0_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build every stage0 target (fetching the crypto libraries the first time)."""
    lock = tmp_path_factory.getbasetemp().parent / "stage0-build.lock"
    import fcntl

    with lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # one build even under pytest-xdist
        proc = subprocess.run(["make", "-C", str(STAGE0), "-j2"], capture_output=True,
                              text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"stage0 build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return BUILD


@pytest.fixture(scope="session")
def signing_key() -> PrivateKey:
    return generate_private_key("ES256")


@pytest.fixture(scope="session")
def other_key() -> PrivateKey:
    return generate_private_key("ES256")
