"""The ward on QEMU: `suture sim --target qemu-mps2-an385`: each device a QEMU Cortex-M3 process
running the real firmware (stage0, MicroPython with the frozen loader, the agent from the
application bundle) behind one device-link gateway (TCP), against the real scheduler. A 3-wave
rollout completes through power cuts (stage0's cut at a boot, QEMU killed mid-download) with
nothing bricked; a bad release is stopped by the error threshold and reverted."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from suture.ward.run import WardConfig, run_ward

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
BOARD = "qemu-mps2-an385"


def ward(tmp_path: Path, **kw: Any) -> dict[str, Any]:
    cfg = WardConfig(target=BOARD, workdir=tmp_path / "ward", timeout_s=420, **kw)
    return run_ward(cfg).to_json()


def check_truth(result: dict[str, Any]) -> None:
    """Nothing bricked: every device runs files whose digest is its installed record's, and
    that record is one of the two signed releases; the scheduler knows what it runs."""
    assert result["target"] == BOARD
    assert result["bricked"] == 0
    for d in result["per_device"]:
        assert not d["bricked"], d
        assert d["flash_version"] in (1, 2), d
        assert d["flash_version"] == d["reported_version"], d
        assert d["crashes"] == 0, d


def test_three_waves_with_power_cuts(tmp_path: Path,
                                     figures: Callable[[str, object], None]) -> None:
    r = ward(tmp_path, devices=4, power_cuts=0.6, seed=3, error_threshold=0.5,
             error_min_sample=3)
    assert r["rollout_state"] == "completed", r["rollout_reason"]
    check_truth(r)
    assert r["updated"] == 4
    assert sorted({d["wave"] for d in r["per_device"]}) == [0, 1, 2]
    for d in r["per_device"]:
        assert d["flash_version"] == 2
        assert d["journal_state"] == "CONFIRMED"
        assert d["entry_state"] == "succeeded"
    cuts = sum(d["power_cuts"] for d in r["per_device"])
    assert cuts > 0  # the faults really happened
    assert r["proxy"]["gateway_requests"] > 4 * 4
    figures("QEMU ward of 4, 3 waves, power cuts: seconds", r["duration_s"])
    figures("QEMU ward of 4: rollout seconds", r["rollout_s"])
    figures("QEMU ward of 4: power cuts survived", cuts)
    figures("QEMU ward of 4: host CPU s per device",
            [d["host_cpu_s"] for d in r["per_device"]])


def test_bad_release_is_contained_and_reverted(tmp_path: Path) -> None:
    r = ward(tmp_path, devices=4, bad_release=True)
    assert r["rollout_state"] == "paused"
    assert "error threshold" in r["rollout_reason"]
    check_truth(r)
    first = [d for d in r["per_device"] if d["wave"] == 0]
    rest = [d for d in r["per_device"] if d["wave"] != 0]
    assert len(first) == 1
    assert first[0]["outcome"] == "reverted"
    assert first[0]["flash_version"] == 1
    assert first[0]["journal_state"] == "REVERTED"
    assert first[0]["resets"] >= 2  # it installed, then failed its trial boots
    for d in rest:  # the rest never installed it
        assert d["flash_version"] == 1
        assert d["journal_state"] == "CONFIRMED"
        assert d["entry_state"] == "pending"
    assert r["updated"] == 0


def test_signed_digests_are_what_the_truth_compares() -> None:
    """The truth calls a device bricked unless its installed digest is a signed release's:
    the digest the loader records is the payload's SHA-256."""
    from suture.keys import generate_private_key
    from suture.ward.release import build_release

    rel = build_release(1, generate_private_key("ES256"))
    assert hashlib.sha256(rel.payload).hexdigest() in rel.envelope.hex()
