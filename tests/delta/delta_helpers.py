"""Signed delta envelopes for the simulated devices (tests/delta)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from suture import suit
from suture.delta import DeltaRelease, make_delta
from suture.keys import PrivateKey
from suture.sim.testing import CLASS_ID, VENDOR_ID

SEGMENT = 8192  # small segments: every test patch has several


def delta_for(source: bytes, target: bytes, **options: int) -> DeltaRelease:
    options.setdefault("segment_size", SEGMENT)
    return make_delta(source, target, **options)


def sign_delta(
    delta: DeltaRelease, sequence_number: int, key: PrivateKey, *, component: str = "app"
) -> bytes:
    """A signed SUIT envelope whose payload is ``delta``'s patch."""
    with tempfile.TemporaryDirectory() as tmp:
        description = {
            "sequence-number": sequence_number,
            "vendor-id": str(VENDOR_ID),
            "class-id": str(CLASS_ID),
            "components": [
                delta.component([component], "https://updates.example/app.delta")
            ],
        }
        return suit.create_envelope(description, key, base_dir=Path(tmp))
