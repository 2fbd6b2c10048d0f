"""Fixtures for the simulated board: the compiled loader, a signing key, provisioned devices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from suture import keys
from suture.keys import PrivateKey
from suture.sim.board import BoardGeometry, small_geometry
from suture.sim.device import build_loader
from suture.sim.testing import Provisioned, provision


@pytest.fixture(scope="session")
def loader_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The loader package compiled to .mpy once per session."""
    return build_loader(tmp_path_factory.mktemp("mpy"))


@pytest.fixture(scope="session")
def signing_key() -> PrivateKey:
    """The vendor's ES256 key the simulated devices trust."""
    return keys.generate_private_key("ES256")


@pytest.fixture
def geometry() -> BoardGeometry:
    """A small board: 64 KiB littlefs, 4-sector NVM, 32 KiB staging and backup slots."""
    return small_geometry()


@pytest.fixture
def make_device(
    tmp_path: Path, loader_lib: Path, signing_key: PrivateKey, geometry: BoardGeometry
) -> Callable[..., Provisioned]:
    """Factory: a device with the example application version 1 confirmed."""
    count = 0

    def make(**kwargs: object) -> Provisioned:
        nonlocal count
        count += 1
        return provision(
            tmp_path / f"dev{count}", geometry, signing_key, lib=loader_lib, **kwargs  # type: ignore[arg-type]
        )

    return make


@pytest.fixture
def run_mpy(loader_lib: Path, tmp_path: Path) -> Callable[..., dict[str, object]]:
    """Run MicroPython source with the compiled loader importable; the script prints one line
    ``RESULT <json>``, which is returned."""

    def run(
        source: str, *args: str, heapsize: str = "96K", timeout: float = 300
    ) -> dict[str, object]:
        script = tmp_path / "script.py"
        script.write_text(source)
        env = dict(os.environ, MICROPYPATH=str(loader_lib))
        micropython = Path(sys.executable).parent / "micropython"
        proc = subprocess.run(
            [str(micropython), "-X", f"heapsize={heapsize}", str(script), *args],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=timeout, check=False,
        )
        for line in proc.stdout.split("\n"):
            if line.startswith("RESULT "):
                return json.loads(line[7:])  # type: ignore[no-any-return]
        raise AssertionError(
            f"no RESULT line (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )

    return run
