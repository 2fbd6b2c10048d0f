"""Delta tests: a board whose slots hold a target and its patch together (64 KiB)."""

from __future__ import annotations

import pytest
from suture.sim.board import BoardGeometry, small_geometry


@pytest.fixture
def geometry() -> BoardGeometry:
    return small_geometry(internal_size=192 * 1024, slot_size=64 * 1024)
