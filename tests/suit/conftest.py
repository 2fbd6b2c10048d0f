"""Fixtures for the SUIT tests: the draft examples, keys, and a description with images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from suit_samples import sample_description, write_images
from suture import keys


@pytest.fixture(scope="session")
def suit_vectors(shared_vectors: Path) -> Path:
    """``tests/vectors/suit``: the draft's example envelopes and their test key."""
    return shared_vectors / "suit"


@pytest.fixture(scope="session")
def example_pubkey(suit_vectors: Path) -> keys.PublicKey:
    return keys.load_public_key(suit_vectors / "draft-examples-pubkey.pem")


@pytest.fixture(params=["ES256", "EdDSA"])
def signing_key(request: pytest.FixtureRequest) -> keys.PrivateKey:
    return keys.generate_private_key(request.param)


@pytest.fixture
def description(tmp_path: Path) -> dict[str, Any]:
    write_images(tmp_path)
    return sample_description()


@pytest.fixture(scope="session")
def ext_vectors(shared_vectors: Path) -> Path:
    """``tests/vectors/suit-ext``: the firmware-encryption and trust-domains drafts' examples."""
    return shared_vectors / "suit-ext"
