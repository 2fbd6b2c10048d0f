"""pytest fixtures for tests on the simulated board (loaded by tests/conftest.py).

``loader_lib`` (the loader compiled to .mpy once per session), ``signing_key`` (the vendor key
the simulated devices trust), ``geometry`` (a small board), ``make_device`` (a device with the
example application version 1 confirmed) and ``run_mpy`` (run a MicroPython script with the
loader importable). A test folder may override any of them in its own conftest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from suture import keys
from suture.keys import PrivateKey
from suture.sim.board import BoardGeometry, small_geometry
from suture.sim.device import build_loader
from suture.sim.testing import Provisioned, provision, run_script


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

    def make(**kwargs: Any) -> Provisioned:
        nonlocal count
        count += 1
        return provision(tmp_path / f"dev{count}", geometry, signing_key, lib=loader_lib, **kwargs)

    return make


@pytest.fixture
def run_mpy(loader_lib: Path, tmp_path: Path) -> Callable[..., Any]:
    """Run MicroPython source with the compiled loader importable; the script prints one line
    ``RESULT <json>``, which is returned."""

    def run(source: str, *args: str, heapsize: str = "96K", timeout: float = 300) -> Any:
        return run_script(
            source, *args, micropypath=[loader_lib], cwd=tmp_path, heapsize=heapsize,
            timeout=timeout,
        )

    return run
