"""`suture scheduler` for scripts: the destructive commands (`rollout abort --revert`, `release
recall --revert`) ask first, refuse without a terminal unless --yes, and say with --dry-run
what they would do without changing anything; the list, show and create commands print JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sched_world import World
from sqlalchemy import func, select
from suture.cli.main import app
from suture.keys import PrivateKey
from suture.scheduler.clock import ManualClock
from suture.scheduler.db import make_engine, make_session_factory
from suture.scheduler.models import AuditRecord, Rollout, RolloutDevice
from suture.scheduler.services.audit import load_audit_key
from suture.scheduler.services.schedules import ScheduleContext
from typer.testing import CliRunner, Result

runner = CliRunner()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ctx: ScheduleContext,
          clock: ManualClock, scheduler_key: PrivateKey, vendor_key: PrivateKey
          ) -> Iterator[World]:
    """A scheduler made by `suture scheduler init` in tmp_path, alice signed in; rollout 1 of
    release app #2 running on pump-1 (in trial), pump-2 (staged) and pump-3 (nothing yet)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home-config"))
    assert runner.invoke(app, ["scheduler", "init"]).exit_code == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'scheduler.db'}")
    key = load_audit_key(tmp_path / "audit-key.json")
    w = World(make_session_factory(engine, audit_key=key), clock, ctx, scheduler_key,
              vendor_key, tmp_path)
    monkeypatch.setenv("SUTURE_TOKEN", w.tokens["alice"])
    devices = [w.device(f"pump-{i}") for i in (1, 2, 3)]
    ro = w.rollout(w.release(2).id)
    w.start(ro.id)
    devices[0].follow()  # downloads
    devices[0].follow()  # installs: in trial
    devices[1].follow()  # downloads: staged
    yield w
    engine.dispose()


def cli(*args: str, stdin: str | None = None) -> Result:
    result = runner.invoke(app, ["scheduler", *args], input=stdin)
    assert "Traceback" not in result.output
    return result


def snapshot(w: World) -> tuple[object, ...]:
    """What a command could change: rollouts, their devices' entries, the audit log."""
    with w.session() as s:
        return (
            tuple(s.execute(select(Rollout.id, Rollout.state)).all()),
            tuple(s.execute(select(RolloutDevice.device_id, RolloutDevice.state)
                            .order_by(RolloutDevice.device_id)).all()),
            s.execute(select(func.count()).select_from(AuditRecord)).scalar_one(),
        )


def entries(w: World) -> dict[str, str]:
    with w.session() as s:
        return dict(s.execute(select(RolloutDevice.device_id, RolloutDevice.state)).all())


@pytest.mark.parametrize("command", [("rollout", "abort", "1", "--revert"),
                                     ("release", "recall", "1", "--revert")])
def test_without_a_terminal_nothing_is_done_without_yes(world: World,
                                                        command: tuple[str, ...]) -> None:
    before = snapshot(world)
    result = cli(*command)
    assert result.exit_code == 4
    assert "give --yes" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert snapshot(world) == before


def test_abort_dry_run_says_what_would_happen_and_then_it_does(world: World) -> None:
    before = snapshot(world)
    result = cli("rollout", "abort", "1", "--revert", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "rollout 1 (running) would be aborted" in result.output
    assert "1 device(s) would revert: pump-1" in result.output
    assert "2 device(s) would drop what they staged: pump-2, pump-3" in result.output
    assert "dry run: nothing was changed" in result.output
    assert snapshot(world) == before
    result = cli("rollout", "abort", "1", "--revert", "--yes")
    assert result.exit_code == 0, result.output
    assert entries(world) == {"pump-1": "reverting", "pump-2": "cancelled",
                              "pump-3": "cancelled"}


def test_abort_dry_run_names_the_refusal(world: World) -> None:
    """A device that confirmed the release cannot revert: the dry run says the scheduler would
    refuse, as the abort itself does."""
    with world.session() as s, s.begin():
        row = s.execute(select(RolloutDevice).where(RolloutDevice.device_id == "pump-1")
                        ).scalar_one()
        row.state = "succeeded"
    before = snapshot(world)
    result = cli("rollout", "abort", "1", "--revert", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "rollout 1: refused: 1 device(s) confirmed its release" in result.output
    assert snapshot(world) == before
    result = cli("rollout", "abort", "1", "--revert", "--yes")
    assert result.exit_code == 1
    assert "only devices in trial can be reverted" in result.output
    assert snapshot(world) == before


def test_recall_dry_run_then_recall(world: World) -> None:
    before = snapshot(world)
    result = cli("release", "recall", "1", "--revert", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "release 1 would be recalled: never planned again; 1 rollout(s) of it would be " \
        "aborted" in result.output
    assert "1 device(s) would revert: pump-1" in result.output
    assert snapshot(world) == before
    result = cli("release", "recall", "1", "--revert", "--yes")
    assert result.exit_code == 0, result.output
    assert entries(world)["pump-1"] == "reverting"
    result = cli("release", "recall", "1", "--dry-run")
    assert result.exit_code == 1
    assert "already recalled" in result.output


def test_at_a_terminal_the_answer_decides(world: World, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.setattr("suture.cli.options.stdin_is_terminal", lambda: True)
    before = snapshot(world)
    result = cli("rollout", "abort", "1", "--revert", stdin="n\n")
    assert result.exit_code == 4
    assert "Abort rollout 1 and revert its devices in trial?" in result.output
    assert snapshot(world) == before
    result = cli("rollout", "abort", "1", "--revert", stdin="y\n")
    assert result.exit_code == 0, result.output
    assert entries(world)["pump-1"] == "reverting"


def test_an_abort_without_revert_asks_nothing(world: World) -> None:
    result = cli("rollout", "abort", "1")
    assert result.exit_code == 0, result.output
    assert entries(world)["pump-1"] == "trial"  # its trial goes on


def test_list_show_and_create_print_json(world: World, tmp_path: Path,
                                         vendor_key: PrivateKey) -> None:
    from sched_world import CLASS_ID, VENDOR_ID, make_envelope
    from suture.keys import write_key_pair

    out = json.loads(cli("rollout", "list", "--json").stdout)
    assert [(r["id"], r["state"], r["target_count"]) for r in out] == [(1, "running", 3)]
    shown = json.loads(cli("release", "show", "1", "--json").stdout)
    assert (shown["id"], shown["sequence_number"], shown["component"]) == (1, 2, "app")
    assert "sequence_number" in cli("release", "show", "1").stdout
    made = json.loads(cli("device", "add", "pump-9", "--board", "sim", "--vendor-id",
                          VENDOR_ID, "--class-id", CLASS_ID, "--group", "ward-3",
                          "--json").stdout)
    assert made["id"] == "pump-9"
    assert len(made["secret"]) == 64
    write_key_pair(vendor_key, tmp_path / "vendor.pem")
    envelope, payload = make_envelope(vendor_key, tmp_path, 3)
    (tmp_path / "app-3.suit").write_bytes(envelope)
    (tmp_path / "app-3.bin").write_bytes(payload)
    imported = json.loads(cli("release", "import", "app-3.suit", "app-3.bin", "--trust-anchor",
                              "vendor.pub.pem", "--sbom", "app-3.cdx.json", "--json").stdout)
    assert (imported["sequence_number"], imported["recalled"]) == (3, False)
    planned = json.loads(cli("rollout", "create", "--release", str(imported["id"]), "--name",
                             "next", "--group", "ward-3", "--json").stdout)
    assert (planned["state"], planned["target_count"]) == ("awaiting_approval", 1)  # pump-9
    records = json.loads(cli("audit", "list", "--json").stdout)
    assert {"rollout.create", "release.import", "device.add"} <= {r["action"] for r in records}
