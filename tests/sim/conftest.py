"""Fixtures for the simulated board: the compiled loader, a signing key, provisioned devices."""

from __future__ import annotations

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
