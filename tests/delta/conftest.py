"""Delta tests: a board whose slots hold a target and its patch together (64 KiB)."""

from __future__ import annotations

from pathlib import Path

import pytest
from stage0_host import build_stage0
from suture.sim.board import BoardGeometry, small_geometry


@pytest.fixture
def geometry() -> BoardGeometry:
    return small_geometry(internal_size=192 * 1024, slot_size=64 * 1024)


@pytest.fixture(scope="session")
def stage0_build() -> Path:
    """stage0's build folder (its host build boots the simulator's flash), built once."""
    return build_stage0()
