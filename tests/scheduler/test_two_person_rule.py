"""The two-person rule where it matters: at start (and resume), and before a wave of critical
devices opens, from the devices' criticality *then*; the creator and anyone who changed the
rollout never count; approvals come from distinct accounts that hold the approver role now; a
change of targets or policy resets them. Each test is a way around the rule that used to work.
"""

from __future__ import annotations

import pytest
from sched_world import Api, World
from suture.scheduler.authz import Role
from suture.scheduler.errors import ConflictError, ForbiddenError
from suture.scheduler.policies import approval
from suture.scheduler.policies.decide import Action
from suture.scheduler.schemas import DeviceUpdate, RolloutUpdate
from suture.scheduler.services import devices, operators, rollouts


def _crit(world: World, device_id: str, criticality: int) -> None:
    devices.update_device(world.session(), device_id=device_id,
                          change=DeviceUpdate(criticality=criticality), actor=world.alice,
                          now=world.clock.now())


def test_lowering_criticality_around_create_does_not_halve_the_approvals(world: World) -> None:
    """Lower the ventilator to 2, create (1 approval needed then), raise it back to 4: the
    start counts again from the criticality now and wants two approvers."""
    world.device("vent-1", criticality=4)
    rel = world.release(2)
    _crit(world, "vent-1", 2)
    ro = world.rollout(rel.id)
    assert ro.required_approvals == 1
    _crit(world, "vent-1", 4)
    approved = rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op("bob"),
                                        now=world.clock.now())
    assert approved.required_approvals == 2
    assert approved.state == "awaiting_approval"
    with pytest.raises(ConflictError, match=r"needs 2 approval\(s\) from distinct approvers, "
                                            r"has 1 \(bob\)"):
        rollouts.start_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                               now=world.clock.now())
    rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op("carol"),
                             now=world.clock.now())
    assert rollouts.start_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                                  now=world.clock.now()).state == "running"


def test_raising_criticality_after_approval_sends_the_rollout_back(world: World) -> None:
    """Approved with one approver while no device was critical; a device raised to 4 before
    start: the start is refused, the rollout awaits approval again, and that is audited."""
    world.device("pump-1", criticality=3)
    ro = world.rollout(world.release(2).id)
    assert rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op("bob"),
                                    now=world.clock.now()).state == "approved"
    _crit(world, "pump-1", 4)
    with pytest.raises(ConflictError, match="needs 2 approval"):
        rollouts.start_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                               now=world.clock.now())
    status = world.status(ro.id).rollout
    assert (status.state, status.required_approvals) == ("awaiting_approval", 2)
    from suture.scheduler.services import audit

    assert "rollout.start_refused" in {r.action for r in audit.recent(world.session())}


def test_the_creator_never_approves(world: World, api: Api) -> None:
    """dave plans rollouts and approves others': never his own, over the API either."""
    world.device("pump-1")
    rel = world.release(2)
    r = api.client.post("/api/v1/rollouts", headers=api.as_("dave"),
                        json={"name": "mine", "release_id": rel.id, "target_groups": ["ward-3"]})
    assert r.status_code == 201, r.text
    rid = r.json()["rollout"]["id"]
    refused = api.client.post(f"/api/v1/rollouts/{rid}/approve", headers=api.as_("dave"))
    assert refused.status_code == 403
    assert "another approver must approve it" in refused.json()["message"]
    assert api.client.post(f"/api/v1/rollouts/{rid}/start",
                           headers=api.as_("dave")).status_code == 409
    assert api.client.post(f"/api/v1/rollouts/{rid}/approve",
                           headers=api.as_("bob")).status_code == 200
    assert api.client.post(f"/api/v1/rollouts/{rid}/start",
                           headers=api.as_("dave")).json()["rollout"]["state"] == "running"


def test_the_whole_bypass_over_http_by_one_operator(world: World, api: Api) -> None:
    """The attack of issue #16 with every role one person could hold but approver: alice
    lowers the ventilator, plans, raises it back and tries to approve and start alone."""
    world.device("vent-1", criticality=4)
    rel = world.release(2)
    assert api.client.patch("/api/v1/devices/vent-1", headers=api.op,
                            json={"criticality": 2}).status_code == 200
    rid = api.client.post("/api/v1/rollouts", headers=api.op, json={
        "name": "sneaky", "release_id": rel.id, "target_groups": ["ward-3"]}).json()["rollout"][
        "id"]
    assert api.client.patch("/api/v1/devices/vent-1", headers=api.op,
                            json={"criticality": 4}).status_code == 200
    assert api.client.post(f"/api/v1/rollouts/{rid}/approve", headers=api.op).status_code == 403
    start = api.client.post(f"/api/v1/rollouts/{rid}/start", headers=api.op)
    assert start.status_code == 409
    assert "needs 2 approval(s)" in start.json()["message"]
    assert api.client.get(f"/api/v1/rollouts/{rid}", headers=api.op).json()["rollout"][
        "state"] == "awaiting_approval"


def test_an_approver_who_lost_the_role_no_longer_counts(world: World) -> None:
    world.device("vent-1", criticality=4)
    ro = world.rollout(world.release(2).id)
    for who in ("bob", "carol"):
        rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op(who),
                                 now=world.clock.now())
    operators.set_roles(world.session(), name="carol", roles=[Role.VIEWER.value],
                        actor=world.op("root"), now=world.clock.now())
    with pytest.raises(ConflictError, match="carol does not count: no longer an active "
                                            "account with the approver role"):
        rollouts.start_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                               now=world.clock.now())
    operators.set_active(world.session(), name="bob", active=False, actor=world.op("root"),
                         now=world.clock.now())
    rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op("dave"),
                             now=world.clock.now())
    with pytest.raises(ConflictError, match="has 1 \\(dave\\)"):
        rollouts.start_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                               now=world.clock.now())


def test_a_change_of_targets_or_policy_resets_the_approvals(world: World) -> None:
    world.device("pump-1")
    world.device("pump-2", groups=["ward-4"])
    ro = world.rollout(world.release(2).id)
    rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op("bob"),
                             now=world.clock.now())
    # dave (rollout operator) adds ward 4 after bob approved ward 3 only
    changed = rollouts.update_rollout(
        world.session(), rollout_id=ro.id, actor=world.op("dave"), now=world.clock.now(),
        change=RolloutUpdate(target_groups=["ward-3", "ward-4"]))
    assert (changed.state, changed.target_count) == ("awaiting_approval", 2)
    status = world.status(ro.id).rollout
    assert status.approvals == []
    assert status.authors == ["alice", "dave"]
    with pytest.raises(ForbiddenError):  # dave changed it: he may not approve it
        rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op("dave"),
                                 now=world.clock.now())
    with pytest.raises(ConflictError, match="has 0"):
        rollouts.start_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                               now=world.clock.now())
    rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op("carol"),
                             now=world.clock.now())
    world.start(ro.id, approvers=())
    # a policy change while paused resets them too, and resume then needs a new approval
    rollouts.pause_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                           now=world.clock.now())
    rollouts.update_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                            now=world.clock.now(), change=RolloutUpdate(error_threshold=0.9))
    with pytest.raises(ConflictError, match="has 0"):
        rollouts.resume_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                                now=world.clock.now())
    with pytest.raises(ConflictError, match=r"pause it first|needs awaiting_approval"):
        rollouts.update_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                                now=world.clock.now(), change=RolloutUpdate(waves=["1", "100%"]))
    rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op("bob"),
                             now=world.clock.now())
    assert rollouts.resume_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                                   now=world.clock.now()).state == "running"


def test_an_approval_binds_to_what_was_approved(world: World) -> None:
    """Approvals whose digest no longer matches the rollout (changed behind the services'
    back) do not count."""
    from sqlalchemy import update
    from suture.scheduler.models import Rollout

    world.device("pump-1")
    ro = world.rollout(world.release(2).id)
    rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op("bob"),
                             now=world.clock.now())
    with world.session() as s, s.begin():
        s.execute(update(Rollout).where(Rollout.id == ro.id).values(deadline=0))
    with pytest.raises(ConflictError, match="bob does not count: approved the rollout before"):
        rollouts.start_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                               now=world.clock.now())


def test_a_wave_of_critical_devices_waits_for_two_approvers(world: World) -> None:
    """Started with one approval (nothing critical then); the device of wave 2 becomes
    critical meanwhile: wave 2 does not open until a second approver approves; then it does."""
    first = world.device("pump-1", criticality=1)
    second = world.device("pump-2", criticality=2)
    ro = world.rollout(world.release(2).id, waves=["1", "100%"], order="criticality",
                       success_threshold=1.0)
    world.start(ro.id)
    _crit(world, "pump-2", 4)
    first.update_fully()
    assert world.advance() == ["pause"]
    status = world.status(ro.id).rollout
    assert (status.state, status.current_wave) == ("paused", 0)
    assert "wave 2 reaches a device of criticality 4" in status.status_reason
    assert second.action() == Action.NONE
    with pytest.raises(ConflictError, match="needs 2 approval"):
        rollouts.resume_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                                now=world.clock.now())
    rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op("carol"),
                             now=world.clock.now())
    rollouts.resume_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                            now=world.clock.now())
    assert world.advance() == ["advance"]
    assert second.action() == Action.DOWNLOAD


def test_tally_policy() -> None:
    approvals = [approval.Approval("alice", "d"), approval.Approval("bob", "d"),
                 approval.Approval("bob", "d"), approval.Approval("carol", "old"),
                 approval.Approval("mallory", "d")]
    t = approval.tally(approvals, required=2, digest="d", authors={"alice"},
                       approvers={"bob", "carol"})
    assert t.counted == ["bob"]
    assert not t.ok
    assert set(t.ignored) == {"alice", "carol", "mallory"}
    assert approval.tally([approval.Approval("bob", "d"), approval.Approval("carol", "d")],
                          required=2, digest="d", authors=set(),
                          approvers={"bob", "carol"}).ok
