"""loader/loader/staging.py (resumable staging, the agent's api.begin_staging) under power
cuts: cut at every flash operation of a chunked staging (clean and torn), then stage again: the
slot ends STAGED with exactly the payload, resumed from the journal's checkpoint when there was
one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from suture import keys
from suture.sim.board import small_geometry
from suture.sim.device import PowerCut, SimBoard, SimDevice
from suture.sim.journal import State
from suture.sim.sweep import sweep
from suture.sim.testing import chunked_staging, example_app, provision, sign_payload


@pytest.mark.powercut
@pytest.mark.slow
def test_chunked_staging_survives_every_cut(tmp_path: Path, loader_lib: Path,
                                            figures: Callable[[str, object], None]) -> None:
    key = keys.generate_private_key("ES256")
    geometry = small_geometry(internal_size=128 * 1024, slot_size=64 * 1024)
    dev = provision(tmp_path / "dev", geometry, key, lib=loader_lib)
    payload = example_app(2, filler=40_000)
    action = chunked_staging(dev.board, sign_payload(payload, 2, key), payload)

    def check(board: SimBoard, device: SimDevice, cut: PowerCut) -> str:
        r = device.run(*action)
        assert r.ok, f"{cut}: {r.stdout}{r.stderr}"
        cur = board.current_record()
        assert cur is not None
        assert cur.state == State.STAGED, cut
        assert cur.size == len(payload)
        assert board.region_bytes("staging")[: len(payload)] == payload, cut
        offset = int(r.result["offset"])  # type: ignore[call-overload]
        assert offset % geometry.external.sector == 0
        return "resumed" if offset else "from the start"

    report = sweep(dev.device, action, check, torn_bytes=17)
    assert report.cut_points == report.total_ops
    assert report.outcomes["resumed"] > 0
    assert report.outcomes["from the start"] > 0
    figures("chunked staging: flash operations cut", report.cut_points + report.torn_points)
    figures("chunked staging: outcomes", dict(report.outcomes))
