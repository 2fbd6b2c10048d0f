"""Reverting only what can be reverted, and no rollout entry waiting forever.

A device can go back only from a trial: once it confirmed a version its backup is gone (the
agent answers a revert with error 150). The scheduler refuses up front to revert a rollout
with confirmed devices, ends an entry whose device refuses a revert, and gives every
deployment a timeout after which it counts as failed for the rollout's thresholds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sched_world import Api, World
from sqlalchemy import select
from suture.cli.main import app
from suture.keys import PrivateKey
from suture.scheduler.clock import ManualClock
from suture.scheduler.config import Settings
from suture.scheduler.db import make_engine, make_session_factory
from suture.scheduler.errors import ConflictError
from suture.scheduler.models import RolloutDevice
from suture.scheduler.policies.decide import Action
from suture.scheduler.services import rollouts
from suture.scheduler.services.audit import load_audit_key
from suture.scheduler.services.schedules import ScheduleContext
from typer.testing import CliRunner

HOUR = 3600
TIMEOUT = Settings.model_fields["deployment_timeout_s"].default


def entry(world: World, rollout_id: int, device_id: str) -> RolloutDevice:
    with world.session() as s:
        row = s.execute(select(RolloutDevice).where(
            RolloutDevice.rollout_id == rollout_id, RolloutDevice.device_id == device_id)
        ).scalar_one()
        s.expunge(row)
        return row


def abort(world: World, rollout_id: int, *, revert: bool) -> None:
    rollouts.abort_rollout(world.session(), rollout_id=rollout_id, revert=revert,
                           actor=world.alice, now=world.clock.now())


# -- revert -----------------------------------------------------------------------------------

def test_revert_is_refused_up_front_when_a_device_confirmed(world: World) -> None:
    done, trying = world.device("pump-1"), world.device("pump-2")
    rel = world.release(2)
    ro = world.rollout(rel.id)
    world.start(ro.id)
    done.update_fully()
    assert [trying.follow(), trying.follow()] == [Action.DOWNLOAD, Action.INSTALL]  # in trial
    with pytest.raises(ConflictError) as refused:
        abort(world, ro.id, revert=True)
    assert refused.value.code == "not_revertible"
    message = str(refused.value)
    assert "pump-1" in message
    assert "only devices in trial can be reverted" in message
    # Nothing changed: the rollout runs on, the device in trial is still in trial.
    status = world.status(ro.id)
    assert (status.rollout.state, status.totals) == ("running", {"succeeded": 1, "trial": 1})
    abort(world, ro.id, revert=False)
    assert world.status(ro.id).rollout.state == "aborted"


def test_revert_refused_over_the_api(world: World, api: Api) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    ro = world.rollout(rel.id)
    world.start(ro.id)
    dev.update_fully()
    r = api.client.post(f"/api/v1/rollouts/{ro.id}/abort", headers=api.op,
                        json={"revert": True})
    assert r.status_code == 409
    assert r.json()["error"] == "not_revertible"
    assert "pump-1" in r.json()["message"]
    assert api.client.get(f"/api/v1/rollouts/{ro.id}", headers=api.op).json()[
        "rollout"]["state"] == "running"


def test_revert_refused_by_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   ctx: ScheduleContext, clock: ManualClock,
                                   scheduler_key: PrivateKey, vendor_key: PrivateKey) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    assert runner.invoke(app, ["scheduler", "init"]).exit_code == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'scheduler.db'}")
    key = load_audit_key(tmp_path / "audit-key.json")
    world = World(make_session_factory(engine, audit_key=key), clock, ctx, scheduler_key,
                  vendor_key, tmp_path)
    monkeypatch.setenv("SUTURE_TOKEN", world.tokens["alice"])
    dev = world.device("pump-1")
    ro = world.rollout(world.release(2).id)
    world.start(ro.id)
    dev.update_fully()
    result = runner.invoke(app, ["scheduler", "rollout", "abort", str(ro.id), "--revert",
                                 "--yes"])
    assert result.exit_code == 1
    assert "pump-1" in result.output
    assert "only devices in trial can be reverted" in result.output
    assert "Traceback" not in result.output
    engine.dispose()


def test_a_device_that_cannot_revert_ends_its_entry(world: World) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    ro = world.rollout(rel.id)
    world.start(ro.id)
    dev.follow()
    dev.follow()  # in trial when the rollout is aborted
    abort(world, ro.id, revert=True)
    assert entry(world, ro.id, "pump-1").state == "reverting"
    dev.state = "confirmed"  # it confirmed meanwhile, and its report was lost
    assert dev.follow() == Action.REVERT  # answered with error 150
    row = entry(world, ro.id, "pump-1")
    assert row.state == "failed"
    assert "150" in row.detail
    assert dev.action() == Action.NONE  # no revert asked again


def test_a_confirmed_report_while_reverting_ends_the_entry(world: World) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    ro = world.rollout(rel.id)
    world.start(ro.id)
    dev.follow()
    dev.follow()
    abort(world, ro.id, revert=True)
    dev.report("confirmed", rollout_id=ro.id, release_id=rel.id)
    assert entry(world, ro.id, "pump-1").state == "failed"


# -- deployment timeouts ----------------------------------------------------------------------

def test_a_device_that_vanishes_mid_update_counts_as_failed(world: World) -> None:
    lost, fine = world.device("pump-1"), world.device("pump-2")
    rel = world.release(2)
    ro = world.rollout(rel.id, error_threshold=0.5, error_min_sample=2)
    world.start(ro.id)
    lost.follow()
    lost.follow()  # installed, in trial: then nothing more from it
    fine.update_fully()
    world.clock.advance(TIMEOUT - 60)
    assert world.advance() == []
    world.clock.advance(120)
    assert world.advance() == ["timeout", "pause"]  # 1 failed of 2 finished: 50%
    row = entry(world, ro.id, "pump-1")
    assert (row.state, row.detail.startswith("timed out")) == ("failed", True)
    status = world.status(ro.id)
    assert status.totals == {"failed": 1, "succeeded": 1}
    assert "error threshold" in status.rollout.status_reason


def test_a_device_that_keeps_polling_while_it_waits_does_not_time_out(world: World) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    # The install window opens once a week; the device stages and waits for it, polling.
    ro = world.rollout(rel.id, window={"cron": "0 2 * * 1", "duration_s": 3600, "tz": "UTC"})
    world.start(ro.id)
    assert dev.follow() == Action.DOWNLOAD
    for _ in range(3 * TIMEOUT // HOUR):
        world.clock.advance(HOUR)
        dev.poll()
        assert world.advance() == []
    assert entry(world, ro.id, "pump-1").state == "staged"


def test_a_silent_device_times_out_from_when_its_wave_opened(world: World) -> None:
    devs = [world.device("pump-1"), world.device("pump-2")]
    rel = world.release(2)
    ro = world.rollout(rel.id, waves=["1", "100%"], success_threshold=1.0, error_threshold=1.0)
    world.start(ro.id)
    first, later = sorted(devs, key=lambda d: entry(world, ro.id, d.id).wave)
    # pump-2 waits in wave 1, silent, longer than the timeout: that is not its fault.
    world.clock.advance(2 * TIMEOUT)
    first.poll()
    assert world.advance() == []
    first.update_fully()
    assert world.advance() == ["advance"]
    assert entry(world, ro.id, later.id).state == "pending"
    world.clock.advance(TIMEOUT)  # now it has been asked for a whole timeout, and is silent
    assert world.advance() == ["timeout", "complete"]
    assert entry(world, ro.id, later.id).state == "failed"
    assert later.action() == Action.NONE


def test_a_timed_out_device_that_comes_back_and_confirms_succeeds(world: World) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    ro = world.rollout(rel.id, error_threshold=1.0)
    world.start(ro.id)
    dev.follow()
    dev.follow()  # in trial, then silent
    world.clock.advance(TIMEOUT)
    assert world.advance() == ["timeout", "complete"]
    dev.report("confirmed", rollout_id=ro.id, release_id=rel.id)  # back, and healthy
    assert entry(world, ro.id, "pump-1").state == "succeeded"


def test_a_revert_that_never_comes_times_out(world: World) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    ro = world.rollout(rel.id)
    world.start(ro.id)
    dev.follow()
    dev.follow()
    abort(world, ro.id, revert=True)
    assert dev.action() == Action.REVERT  # then the device is never heard of again
    world.clock.advance(TIMEOUT)
    assert world.advance() == ["timeout"]
    row = entry(world, ro.id, "pump-1")
    assert (row.state, row.detail.startswith("timed out")) == ("failed", True)


def test_the_timeout_is_a_setting(world: World) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    ro = world.rollout(rel.id)
    world.start(ro.id)
    dev.follow()
    dev.follow()
    world.clock.advance(2 * HOUR)
    assert rollouts.advance(world.session(), now=world.clock.now(),
                            deployment_timeout_s=3 * HOUR) == []
    changes = rollouts.advance(world.session(), now=world.clock.now(),
                               deployment_timeout_s=HOUR)
    assert [c.change for c in changes] == ["timeout", "complete"]
    assert Settings(environment="development", deployment_timeout_s=600).deployment_timeout_s \
        == 600
