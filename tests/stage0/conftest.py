"""stage0 fixtures: the build (once per session), a signing key, flash images."""

from __future__ import annotations

from pathlib import Path

import pytest
from suture.firmware.errors import FirmwareError
from suture.firmware.locking import make_stage0
from suture.keys import PrivateKey, generate_private_key

REPO = Path(__file__).resolve().parents[2]
STAGE0 = REPO / "stage0"
BUILD = STAGE0 / "build"


@pytest.fixture(scope="session")
def stage0_build() -> Path:
    """Build every stage0 target (fetching the crypto libraries the first time), one build at a
    time across test workers."""
    try:
        return make_stage0(STAGE0)
    except FirmwareError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="session")
def signing_key() -> PrivateKey:
    return generate_private_key("ES256")


@pytest.fixture(scope="session")
def other_key() -> PrivateKey:
    return generate_private_key("ES256")
