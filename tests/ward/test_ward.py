"""End to end on the simulator: a real scheduler (SQLite, uvicorn on loopback) and simulated
devices running the update agent, through a staged rollout; the outcome read back from each
device's flash images."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from suture.cli.main import app
from suture.ward.run import WardConfig, WardError, run_ward
from typer.testing import CliRunner


def ward(tmp_path: Path, **kw: Any) -> dict[str, Any]:
    cfg = WardConfig(workdir=tmp_path / "ward", timeout_s=240, **kw)
    return run_ward(cfg).to_json()


def check_truth(result: dict[str, Any]) -> None:
    """Nothing bricked; every device reports the version its flash really holds."""
    assert result["bricked"] == 0
    for d in result["per_device"]:
        assert not d["bricked"], d
        assert d["flash_version"] == d["reported_version"], d
        assert d["crashes"] == 0, d


@pytest.mark.slow
def test_three_waves_to_twenty_devices(tmp_path: Path,
                                       figures: Callable[[str, object], None]) -> None:
    r = ward(tmp_path, devices=20)
    assert r["rollout_state"] == "completed"
    assert r["updated"] == 20
    check_truth(r)
    waves = sorted({d["wave"] for d in r["per_device"]})
    assert waves == [0, 1, 2]
    assert [sum(1 for d in r["per_device"] if d["wave"] == w) for w in waves] == [1, 5, 14]
    for d in r["per_device"]:
        assert d["flash_version"] == 2
        assert d["journal_state"] == "CONFIRMED"
        assert d["entry_state"] == "succeeded"
    figures("ward of 20, 3 waves: seconds", r["duration_s"])


@pytest.mark.slow
@pytest.mark.powercut
def test_power_cuts_and_network_faults(tmp_path: Path,
                                       figures: Callable[[str, object], None]) -> None:
    r = ward(tmp_path, devices=12, power_cuts=0.4, network_faults=0.25, seed=7,
             error_threshold=0.5, error_min_sample=3)
    assert r["rollout_state"] in ("completed", "paused")
    check_truth(r)
    cuts = sum(d["power_cuts"] for d in r["per_device"])
    assert cuts > 0  # the faults really happened
    assert r["proxy"]["dropped"] + r["proxy"]["slowed"] > 0
    if r["rollout_state"] == "completed":
        assert r["updated"] == 12
    figures("power cuts survived", cuts)
    figures("connections dropped or slowed", r["proxy"]["dropped"] + r["proxy"]["slowed"])


@pytest.mark.slow
def test_bad_release_is_contained_and_reverted(tmp_path: Path) -> None:
    r = ward(tmp_path, devices=8, bad_release=True)
    assert r["rollout_state"] == "paused"
    assert "error threshold" in r["rollout_reason"]
    check_truth(r)
    first = [d for d in r["per_device"] if d["wave"] == 0]
    rest = [d for d in r["per_device"] if d["wave"] != 0]
    assert len(first) == 1
    assert first[0]["outcome"] == "reverted"
    assert first[0]["flash_version"] == 1
    assert first[0]["journal_state"] == "REVERTED"
    for d in rest:  # the rest never installed it
        assert d["flash_version"] == 1
        assert d["journal_state"] == "CONFIRMED"
        assert d["entry_state"] == "pending"
    assert r["updated"] == 0


@pytest.mark.slow
def test_busy_devices_defer_then_install(tmp_path: Path) -> None:
    r = ward(tmp_path, devices=4, busy=1.0, busy_s=20.0, waves=("100%",))
    assert r["rollout_state"] == "completed"
    assert r["updated"] == 4
    check_truth(r)


@pytest.mark.slow
def test_devices_with_wrong_clocks_resync_and_install(tmp_path: Path) -> None:
    """Every device starts hours to weeks off the scheduler's clock: its first request is
    refused with a signed resync, after which it polls, installs inside the window and
    confirms like the others."""
    r = ward(tmp_path, devices=4, clock_skew=1.0, waves=("100%",))
    assert r["rollout_state"] == "completed"
    assert r["updated"] == 4
    check_truth(r)
    for d in r["per_device"]:
        assert abs(d["clock_skew_s"]) >= 3600, d
        assert d["clock_resyncs"] >= 1, d
        assert d["flash_version"] == 2


def test_cli_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["sim", "--devices", "2", "--json",
                                      "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("devices", "updated", "reverted", "failed", "bricked", "rollout_state",
                "duration_s", "per_device"):
        assert key in data
    assert data["devices"] == 2
    assert data["updated"] == 2
    assert {d["id"]: d["flash_version"] for d in data["per_device"]} == \
        {"bed-001": 2, "bed-002": 2}
    assert (tmp_path / "w" / "devices" / "bed-001" / "external.bin").exists()


def test_cli_refuses_bad_options() -> None:
    result = CliRunner().invoke(app, ["sim", "--network-faults", "1.5"])
    assert result.exit_code != 0
    assert "probability" in result.output


def test_config_refuses_bad_values() -> None:
    with pytest.raises(WardError, match="devices"):
        run_ward(WardConfig(devices=0))
