"""Denials, and the reasons approvers give: a denied rollout is neither approved further nor
started until its content changes (which clears the denial) or it is aborted; a denial needs a
reason; both decisions are audited with their reasons; the API and the CLI say the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sched_world import CLASS_ID, VENDOR_ID, Api, World, cli_accounts, make_envelope
from suture.cli.main import app
from suture.keys import PrivateKey, write_key_pair
from suture.scheduler.errors import ConflictError, ForbiddenError, InvalidInputError
from suture.scheduler.schemas import MAX_REASON, RolloutUpdate
from suture.scheduler.services import audit, rollouts
from typer.testing import CliRunner


def _deny(world: World, rollout_id: int, who: str, reason: str) -> None:
    rollouts.deny_rollout(world.session(), rollout_id=rollout_id, actor=world.op(who),
                          now=world.clock.now(), reason=reason)


def _approve(world: World, rollout_id: int, who: str, reason: str = "") -> str:
    return rollouts.approve_rollout(world.session(), rollout_id=rollout_id, actor=world.op(who),
                                    now=world.clock.now(), reason=reason).state


def test_a_denial_stops_approvals_and_start_until_the_rollout_changes(world: World) -> None:
    world.device("pump-1", criticality=2)
    world.device("pump-2", criticality=2)
    ro = world.rollout(world.release(2).id)
    assert _approve(world, ro.id, "bob", "checked the release notes") == "approved"
    _deny(world, ro.id, "carol", "  not during the night shift  ")
    status = world.status(ro.id).rollout
    assert status.state == "awaiting_approval"  # the approval no longer starts it
    assert status.denied
    assert [(d.operator, d.reason, d.cleared_at) for d in status.denials] == [
        ("carol", "not during the night shift", None)]
    assert [(a.operator, a.reason) for a in status.approval_reasons] == [
        ("bob", "checked the release notes")]
    assert status.status_reason == "denied by carol: not during the night shift"
    with pytest.raises(ConflictError, match="denied by carol: not during the night shift"):
        _approve(world, ro.id, "dave")
    with pytest.raises(ConflictError, match="denied by carol"):
        rollouts.start_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                               now=world.clock.now())
    with pytest.raises(ConflictError, match="already denied by carol"):
        _deny(world, ro.id, "dave", "me too")
    assert world.status(ro.id).rollout.state == "awaiting_approval"

    world.clock.advance(60)
    rollouts.update_rollout(world.session(), rollout_id=ro.id,
                            change=RolloutUpdate(waves=["1", "100%"]), actor=world.alice,
                            now=world.clock.now())
    status = world.status(ro.id).rollout
    assert not status.denied
    assert status.approvals == []  # the change reset bob's approval too
    (cleared,) = status.denials
    assert (cleared.cleared_by, cleared.cleared_at) == ("alice", world.clock.now())
    assert "the denial by carol cleared" in status.status_reason
    assert _approve(world, ro.id, "carol", "two waves now") == "approved"
    assert rollouts.start_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                                  now=world.clock.now()).state == "running"
    actions = [(r.action, json.loads(r.detail)) for r in audit.recent(world.session())]
    deny = next(d for a, d in actions if a == "rollout.deny")
    assert deny["reason"] == "not during the night shift"
    approvals = [d["reason"] for a, d in actions if a == "rollout.approve"]
    assert {"checked the release notes", "two waves now"} <= set(approvals)
    update = next(d for a, d in actions if a == "rollout.update")
    assert update["denial_cleared"] == "carol"


def test_a_change_of_name_only_leaves_the_denial_standing(world: World) -> None:
    """The denial binds to the content, as an approval does: renaming does not clear it."""
    world.device("pump-1")
    ro = world.rollout(world.release(2).id)
    _deny(world, ro.id, "bob", "wrong release")
    rollouts.update_rollout(world.session(), rollout_id=ro.id,
                            change=RolloutUpdate(name="renamed"), actor=world.alice,
                            now=world.clock.now())
    assert world.status(ro.id).rollout.denied
    with pytest.raises(ConflictError, match="denied by bob"):
        _approve(world, ro.id, "carol")


def test_an_abort_withdraws_a_denied_rollout(world: World) -> None:
    world.device("pump-1")
    ro = world.rollout(world.release(2).id)
    _deny(world, ro.id, "bob", "wrong release")
    assert rollouts.abort_rollout(world.session(), rollout_id=ro.id, revert=False,
                                  actor=world.alice, now=world.clock.now()).state == "aborted"
    with pytest.raises(ConflictError, match="is aborted"):
        _deny(world, ro.id, "carol", "again")


@pytest.mark.parametrize(("reason", "message"), [
    ("", "needs a reason"), ("   \n ", "needs a reason"),
    ("x" * (MAX_REASON + 1), f"at most {MAX_REASON}"), ("bad\x00byte", "control characters"),
])
def test_a_denial_without_a_fit_reason_changes_nothing(world: World, reason: str,
                                                       message: str) -> None:
    world.device("pump-1")
    ro = world.rollout(world.release(2).id)
    before = len(audit.recent(world.session()))
    with pytest.raises(InvalidInputError, match=message):
        _deny(world, ro.id, "bob", reason)
    assert not world.status(ro.id).rollout.denied
    assert len(audit.recent(world.session())) == before


def test_only_approvers_who_are_not_authors_deny(world: World) -> None:
    world.device("pump-1")
    ro = world.rollout(world.release(2).id)
    with pytest.raises(ForbiddenError):
        _deny(world, ro.id, "vera", "a viewer")
    rollouts.update_rollout(world.session(), rollout_id=ro.id,
                            change=RolloutUpdate(waves=["1", "100%"]), actor=world.op("dave"),
                            now=world.clock.now())
    with pytest.raises(ForbiddenError, match="another approver must deny it"):
        _deny(world, ro.id, "dave", "mine")
    with pytest.raises(InvalidInputError, match=f"at most {MAX_REASON}"):
        _approve(world, ro.id, "bob", "y" * (MAX_REASON + 1))
    assert world.status(ro.id).rollout.approvals == []


def test_deny_and_approve_over_the_api(world: World, api: Api) -> None:
    world.device("pump-1")
    rid = world.rollout(world.release(2).id).id
    empty = api.client.post(f"/api/v1/rollouts/{rid}/deny", headers=api.as_("bob"),
                            json={"reason": ""})
    assert empty.status_code == 422
    assert api.client.post(f"/api/v1/rollouts/{rid}/deny", headers=api.as_("vera"),
                           json={"reason": "no"}).status_code == 403
    denied = api.client.post(f"/api/v1/rollouts/{rid}/deny", headers=api.as_("bob"),
                             json={"reason": "the window is wrong"})
    assert denied.status_code == 200, denied.text
    body = denied.json()["rollout"]
    assert body["denied"] is True
    assert body["denials"][0]["reason"] == "the window is wrong"
    refused = api.client.post(f"/api/v1/rollouts/{rid}/approve", headers=api.as_("carol"),
                              json={"reason": "fine by me"})
    assert refused.status_code == 409
    assert "denied by bob: the window is wrong" in refused.json()["message"]
    assert api.client.patch(f"/api/v1/rollouts/{rid}", headers=api.op,
                            json={"waves": ["1", "100%"]}).status_code == 200
    ok = api.client.post(f"/api/v1/rollouts/{rid}/approve", headers=api.as_("carol"),
                         json={"reason": "fine by me"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["rollout"]["approval_reasons"][0]["reason"] == "fine by me"
    assert api.client.post(f"/api/v1/rollouts/{rid}/approve",  # no body: as before
                           headers=api.as_("bob")).status_code == 200
    spec = api.client.get("/openapi.json").json()["paths"]["/api/v1/rollouts/{rollout_id}/deny"]
    assert spec["post"]["x-suture-permission"] == "rollout:approve"


def test_deny_from_the_command_line(cli: CliRunner, tmp_path: Path,
                                    vendor_key: PrivateKey) -> None:
    write_key_pair(vendor_key, tmp_path / "vendor.pem")
    tokens = {}

    def run(*args: str, code: int = 0, as_: str = "alice") -> str:
        result = cli.invoke(app, ["scheduler", *args], env={"SUTURE_TOKEN": tokens[as_]}
                            if as_ in tokens else None)
        assert result.exit_code == code, result.output
        return result.output

    run("init", "--trust-anchor", "vendor.pub.pem")
    tokens.update(cli_accounts(cli, app))
    run("device", "add", "pump-1", "--board", "sim", "--vendor-id", VENDOR_ID, "--class-id",
        CLASS_ID, "--group", "ward-3", "--installed", "app=1")
    envelope, payload = make_envelope(vendor_key, tmp_path, 2)
    (tmp_path / "app.suit").write_bytes(envelope)
    (tmp_path / "app.bin").write_bytes(payload)
    run("release", "import", "app.suit", "app.bin", "--sbom", "app-2.cdx.json")
    run("rollout", "create", "--release", "1", "--name", "n", "--group", "ward-3")
    assert "--reason" in run("rollout", "deny", "1", code=2, as_="bob")
    out = json.loads(run("rollout", "deny", "1", "--reason", "not this week", "--json",
                         as_="bob"))
    assert out["denied"] is True
    assert out["denials"][0]["reason"] == "not this week"
    err = run("rollout", "approve", "1", "--reason", "ok", code=1, as_="carol")
    assert "denied by bob: not this week" in err
    assert err.count("\n") == 1
