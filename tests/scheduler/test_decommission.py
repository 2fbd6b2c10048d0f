"""A decommissioned device: its credential stops working, its unfinished rollouts drop it, no
rollout targets it again and its id is never registered again; the record stays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sched_world import Api, World, cli_accounts
from suture.cli.main import app
from suture.scheduler.errors import AuthenticationError, ConflictError, InvalidInputError
from suture.scheduler.policies.decide import Action
from suture.scheduler.schemas import DeviceCreate, DeviceUpdate
from suture.scheduler.services import devices
from typer.testing import CliRunner

DEVICE_IDS = ("--vendor-id", "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe",
              "--class-id", "1492af14-2569-5e48-bf42-9b2d51f2ab45")


def test_decommissioned_device_is_never_targeted_again(world: World, api: Api) -> None:
    kept, gone = world.device("pump-1"), world.device("pump-2")
    rel = world.release(2)
    first = world.rollout(rel.id)
    world.start(first.id)
    assert gone.action() == Action.DOWNLOAD
    r = api.client.post("/api/v1/devices/pump-2/decommission", headers=api.op,
                        json={"reason": "dropped, board cracked"})
    assert r.status_code == 200, r.text
    assert r.json()["decommissioned_at"] == world.clock.now()
    assert world.status(first.id).totals == {"pending": 1, "cancelled": 1}
    # it no longer authenticates, over the API or through the services
    poll = api.device_get("pump-2", "/api/v1/devices/pump-2/schedule")
    assert poll.status_code == 401
    with pytest.raises(AuthenticationError):
        gone.poll()
    # a new rollout of the same target leaves it out; one that only it matched is refused
    kept.update_fully()
    third = world.release(3)
    second = world.rollout(third.id)
    assert second.target_count == 1
    with pytest.raises(InvalidInputError, match="matches no device"):
        world.rollout(third.id, target_groups=[], target_filter='id == "pump-2"')
    # the id is not registered again, the record is not changed, and it is all audited
    with pytest.raises(ConflictError, match="decommissioned; its id is not reused"):
        devices.add_device(world.session(), create=DeviceCreate(
            id="pump-2", board="sim", vendor_id="fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe",
            class_id="1492af14-2569-5e48-bf42-9b2d51f2ab45"), root_secret=bytes(32),
            actor=world.alice, now=world.clock.now())
    with pytest.raises(ConflictError, match="is decommissioned"):
        devices.update_device(world.session(), device_id="pump-2",
                              change=DeviceUpdate(criticality=1), actor=world.alice,
                              now=world.clock.now())
    assert api.client.post("/api/v1/devices/pump-2/credential",
                           headers=api.op).status_code == 409
    shown = api.client.get("/api/v1/devices/pump-2", headers=api.op).json()
    assert shown["history"][-1]["kind"] == "decommissioned"
    assert api.client.post("/api/v1/devices/pump-1/decommission", headers=api.as_("bob"),
                           json={}).status_code == 403


def test_decommission_from_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    cli = CliRunner()
    assert cli.invoke(app, ["scheduler", "init"]).exit_code == 0
    tokens = cli_accounts(cli, app)

    def run(*args: str, as_: str = "alice") -> tuple[int, str]:
        result = cli.invoke(app, ["scheduler", *args], env={"SUTURE_TOKEN": tokens[as_]})
        return result.exit_code, result.output

    assert run("device", "add", "pump-1", "--board", "sim", *DEVICE_IDS)[0] == 0
    code, out = run("device", "decommission", "pump-1", "--dry-run")
    assert (code, out.splitlines()) == (0, [
        "would decommission pump-1: its credential revoked, dropped from 0 unfinished "
        "rollout(s)", "dry run: nothing was changed"])
    code, out = run("device", "decommission", "pump-1", "--yes", as_="bob")
    assert code != 0
    assert "needs device:decommission" in out
    code, out = run("device", "decommission", "pump-1", "--reason", "scrapped", "--yes")
    assert (code, out.strip()) == (0, "device pump-1 decommissioned")
    code, out = run("device", "show", "pump-1", "--json")
    assert json.loads(out)["decommissioned_at"] is not None
