"""Each rollout policy, end to end through the services, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sched_world import World
from suture.scheduler.errors import ConflictError
from suture.scheduler.policies.decide import Action
from suture.scheduler.schedule_doc import (
    K_FORCED,
    K_NEXT_POLL,
    K_NOT_AFTER,
    K_NOT_BEFORE,
    K_RELEASE_ID,
    K_SEQUENCE_NUMBER,
)
from suture.scheduler.services import audit, releases, rollouts


def test_full_update_cycle_reaches_success_and_completes(world: World) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    ro = world.rollout(rel.id)
    assert ro.state == "awaiting_approval"
    assert dev.action() == Action.NONE  # not started: nothing to do
    world.start(ro.id)
    actions = dev.update_fully()
    assert actions == [Action.DOWNLOAD, Action.INSTALL, Action.CONFIRM_WAIT, Action.NONE]
    assert dev.installed["app"] == 2
    assert world.status(ro.id).totals == {"succeeded": 1}
    assert world.advance() == ["complete"]
    assert world.status(ro.id).rollout.state == "completed"
    assert audit.verify(world.session()).ok


def test_waves_advance_on_success_threshold(world: World) -> None:
    devs = [world.device(f"d{i:02d}") for i in range(10)]
    rel = world.release(2)
    ro = world.rollout(rel.id, waves=["2", "50%", "100%"], success_threshold=1.0)
    world.start(ro.id)
    sizes = [w.size for w in world.status(ro.id).waves]
    assert sizes == [2, 5, 3]
    # Only the first wave is open: exactly two devices get something to do.
    busy = [d for d in devs if d.action() == Action.DOWNLOAD]
    assert len(busy) == 2
    busy[0].update_fully()
    assert world.advance() == []  # 1 of 2 succeeded: below the 100% threshold
    busy[1].update_fully()
    assert world.advance() == ["advance"]
    assert world.status(ro.id).rollout.current_wave == 1
    assert sum(d.action() == Action.DOWNLOAD for d in devs) == 5


def test_error_threshold_with_minimum_sample_pauses(world: World) -> None:
    devs = [world.device(f"d{i:02d}") for i in range(6)]
    rel = world.release(2)
    ro = world.rollout(rel.id, error_threshold=0.5, error_min_sample=3, success_threshold=1.0)
    world.start(ro.id)
    devs[0].update_fully(fail_install=True)
    # One failure out of one: above 50%, but below the minimum sample of 3: keep going.
    assert world.advance() == []
    devs[1].update_fully(fail_install=True)
    devs[2].update_fully()
    assert world.advance() == ["pause"]
    status = world.status(ro.id)
    assert status.rollout.state == "paused"
    assert "error threshold" in status.rollout.status_reason
    assert devs[3].action() == Action.NONE  # paused: nothing new starts
    rollouts.resume_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                            now=world.clock.now())
    assert devs[3].action() == Action.DOWNLOAD


def test_error_threshold_can_abort_and_revert(world: World) -> None:
    devs = [world.device(f"d{i:02d}") for i in range(4)]
    rel = world.release(2)
    ro = world.rollout(rel.id, error_threshold=0.5, error_min_sample=2, on_error="abort")
    world.start(ro.id)
    devs[0].follow()
    devs[0].follow()  # in trial
    devs[1].update_fully(fail_install=True)
    devs[2].update_fully(fail_install=True)
    devs[3].update_fully()  # confirmed: it cannot go back, and keeps the release
    assert world.advance() == ["abort"]
    assert devs[0].action() == Action.REVERT
    assert devs[0].follow() == Action.REVERT
    assert devs[0].installed["app"] == 1
    assert devs[3].action() == Action.NONE
    assert world.status(ro.id).totals == {"reverted": 1, "failed": 2, "succeeded": 1}


def test_window_gates_install_but_not_download(world: World) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    # Window: every day 02:00-04:00 Europe/Paris (01:00-03:00 UTC in January).
    ro = world.rollout(rel.id, window={"cron": "0 2 * * *", "duration_s": 7200,
                                      "tz": "Europe/Paris"})
    world.start(ro.id)
    world.clock.set(1_767_225_600 + 12 * 3600)  # 12:00 UTC, outside
    assert dev.follow() == Action.DOWNLOAD
    doc = dev.poll()
    assert doc[5] == Action.DOWNLOAD  # staged, waiting: no install outside the window
    nb, na = doc[K_NOT_BEFORE], doc[K_NOT_AFTER]
    assert nb == 1_767_225_600 + 86400 + 3600
    assert na == nb + 7200
    assert doc[K_NEXT_POLL] <= nb + 60  # the device is asked back when the window opens
    world.clock.set(nb + 60)
    doc = dev.poll()
    assert doc[5] == Action.INSTALL
    assert doc[K_NOT_BEFORE] == nb
    world.clock.set(na + 1)
    assert dev.action() == Action.DOWNLOAD  # missed the window: wait for the next one


def test_deadline_forces_install_outside_window(world: World) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    deadline = 1_767_225_600 + 3 * 3600
    ro = world.rollout(rel.id, window={"cron": "0 2 * * 6", "duration_s": 3600, "tz": "UTC"},
                       deadline=deadline)
    world.start(ro.id)
    world.clock.set(1_767_225_600 + 3600)
    dev.follow()
    doc = dev.poll()
    assert doc[5] == Action.DOWNLOAD
    assert K_FORCED not in doc
    assert doc[K_NEXT_POLL] <= deadline + 60
    world.clock.set(deadline + 10)
    doc = dev.poll()
    assert doc[5] == Action.INSTALL
    assert doc[K_FORCED] is True
    assert doc[K_NOT_BEFORE] <= world.clock.now() < doc[K_NOT_AFTER]


def test_must_pass_through_path_one_step_at_a_time(world: World) -> None:
    dev = world.device("pump-1", installed={"app": 1})
    world.release(2)
    v3 = world.release(3, must_pass_through=True)
    world.release(4)
    v5 = world.release(5)
    ro = world.rollout(v5.id)
    world.start(ro.id)
    first = dev.poll()
    assert first[K_RELEASE_ID] == v3.id
    assert first[K_SEQUENCE_NUMBER] == 3
    dev.update_fully()
    assert dev.installed["app"] == 5
    history = [e for e in audit.recent(world.session(), limit=100)
               if e.action == "device.report" and json.loads(e.detail)["state"] == "trial"]
    assert len(history) == 2  # two installs: v3 then v5
    assert world.status(ro.id).totals == {"succeeded": 1}


def test_dependency_is_installed_first(world: World) -> None:
    dev = world.device("pump-1", installed={"app": 1, "loader": 1})
    world.release(2, component="loader")
    loader3 = world.release(3, component="loader")
    world.release(4, component="loader")
    app2 = world.release(2, requires=[("loader", 3)])
    ro = world.rollout(app2.id)
    world.start(ro.id)
    assert dev.poll()[K_RELEASE_ID] == loader3.id
    dev.update_fully()
    assert dev.installed == {"app": 2, "loader": 3}
    assert world.status(ro.id).totals == {"succeeded": 1}


def test_dependency_blocks_until_met(world: World) -> None:
    dev = world.device("pump-1", installed={"app": 1, "loader": 1})
    rel = world.release(2, requires=[("loader", 2)])
    ro = world.rollout(rel.id)
    world.start(ro.id)
    assert world.status(ro.id).totals == {"blocked": 1}
    assert dev.action() == Action.NONE
    # The dependency becomes available: the next advancement pass plans it first.
    loader = world.release(2, component="loader")
    world.advance()
    assert dev.poll()[K_RELEASE_ID] == loader.id


def test_busy_device_is_skipped_then_retried(world: World) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    ro = world.rollout(rel.id)
    world.start(ro.id)
    assert dev.follow() == Action.DOWNLOAD
    dev.report("staged", busy=True)
    assert dev.action() == Action.DOWNLOAD  # staged but in clinical use: no install
    dev.poll()
    st = world.status(ro.id)
    assert st.totals == {"staged": 1}
    dev.report("staged", busy=False)
    assert dev.action() == Action.INSTALL
    from suture.scheduler.models import RolloutDevice
    with world.session() as s:
        entry = s.get(RolloutDevice, (ro.id, "pump-1"))
        assert entry is not None
        assert entry.busy_skips == 1


def test_two_person_approval_for_critical_devices(world: World) -> None:
    world.device("vent-1", criticality=4)
    world.device("pump-1", criticality=2)
    rel = world.release(2)
    ro = world.rollout(rel.id)
    assert ro.required_approvals == 2
    rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op("bob"),
                             now=world.clock.now())
    with pytest.raises(ConflictError, match="already approved"):
        rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op("bob"),
                                 now=world.clock.now())
    with pytest.raises(ConflictError, match="needs 2 approval"):
        rollouts.start_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                               now=world.clock.now())
    rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op("carol"),
                             now=world.clock.now())
    started = rollouts.start_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                                     now=world.clock.now())
    assert started.state == "running"


def test_single_approval_below_highest_criticality(world: World) -> None:
    world.device("pump-1", criticality=3)
    rel = world.release(2)
    ro = world.rollout(rel.id)
    assert ro.required_approvals == 1
    approved = rollouts.approve_rollout(world.session(), rollout_id=ro.id, actor=world.op("bob"),
                                        now=world.clock.now())
    assert approved.state == "approved"


def test_abort_with_revert(world: World) -> None:
    trying, staged, fresh = (world.device(n) for n in ("a", "b", "c"))
    rel = world.release(2)
    ro = world.rollout(rel.id)
    world.start(ro.id)
    trying.follow()
    trying.follow()  # in trial: it can go back
    staged.follow()
    rollouts.abort_rollout(world.session(), rollout_id=ro.id, revert=True, actor=world.alice,
                           now=world.clock.now())
    assert trying.follow() == Action.REVERT
    assert trying.installed["app"] == 1
    assert staged.follow() == Action.ABORT
    assert fresh.action() == Action.NONE
    totals = world.status(ro.id).totals
    assert totals == {"reverted": 1, "cancelled": 2}
    assert trying.action() == Action.NONE
    assert staged.action() == Action.NONE


def test_device_staged_for_an_aborted_rollout_downloads_the_new_one(world: World) -> None:
    dev = world.device("pump-1")
    v2 = world.release(2)
    v3 = world.release(3)
    first = world.rollout(v2.id)
    world.start(first.id)
    dev.follow()  # v2 staged
    rollouts.abort_rollout(world.session(), rollout_id=first.id, revert=False, actor=world.alice,
                           now=world.clock.now())
    second = world.rollout(v3.id, name="v3")
    world.start(second.id)
    doc = dev.poll()
    assert doc[5] == Action.DOWNLOAD  # never an install of what was staged for the other one
    assert doc[K_RELEASE_ID] == v3.id


def test_download_only_stages_and_never_installs(world: World) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    ro = world.rollout(rel.id, download_only=True)
    world.start(ro.id)
    assert dev.follow() == Action.DOWNLOAD
    assert dev.action() == Action.NONE  # staged: done, no install ever
    assert dev.installed["app"] == 1
    assert world.status(ro.id).totals == {"succeeded": 1}
    assert world.advance() == ["complete"]


def test_waves_ordered_by_criticality(world: World) -> None:
    crit = {"vent": 4, "pump": 2, "monitor": 1, "scale": 3}
    devs = {name: world.device(name, criticality=c) for name, c in crit.items()}
    rel = world.release(2)
    ro = world.rollout(rel.id, waves=["1", "1", "1", "1"], order="criticality")
    world.start(ro.id, approvers=("bob", "carol"))
    first = [n for n, d in devs.items() if d.action() == Action.DOWNLOAD]
    assert first == ["monitor"]  # the least critical device goes first


def test_completed_rollout_cannot_be_reverted(world: World) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    ro = world.rollout(rel.id)
    world.start(ro.id)
    dev.update_fully()
    assert world.advance() == ["complete"]
    with pytest.raises(ConflictError, match="already completed"):
        rollouts.abort_rollout(world.session(), rollout_id=ro.id, revert=False, actor=world.alice,
                               now=world.clock.now())
    # Every device confirmed: none has a backup to go back to.
    with pytest.raises(ConflictError, match="only devices in trial can be reverted"):
        rollouts.abort_rollout(world.session(), rollout_id=ro.id, revert=True, actor=world.alice,
                               now=world.clock.now())
    assert dev.action() == Action.NONE
    assert world.status(ro.id).totals == {"succeeded": 1}


def test_pause_and_resume(world: World) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    ro = world.rollout(rel.id)
    world.start(ro.id)
    rollouts.pause_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                           now=world.clock.now())
    assert dev.action() == Action.NONE
    rollouts.resume_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                            now=world.clock.now())
    assert dev.action() == Action.DOWNLOAD


def test_recall_aborts_rollouts_and_is_never_planned_again(world: World) -> None:
    dev = world.device("pump-1")
    v2 = world.release(2, must_pass_through=True)
    v3 = world.release(3)
    ro = world.rollout(v2.id)
    world.start(ro.id)
    dev.follow()  # staged v2
    releases.recall_release(world.session(), release_id=v2.id, revert=False, actor=world.alice,
                            now=world.clock.now())
    assert world.status(ro.id).rollout.state == "aborted"
    assert dev.follow() == Action.ABORT
    with pytest.raises(ConflictError, match="recalled"):
        world.rollout(v2.id, name="again")
    # A recalled must-pass-through release is no longer a step on the way to v3.
    ro3 = world.rollout(v3.id, name="v3")
    world.start(ro3.id)
    assert dev.poll()[K_RELEASE_ID] == v3.id


def test_schedule_number_is_monotonic_and_stable_between_changes(world: World) -> None:
    dev = world.device("pump-1")
    first = dev.poll()
    again = dev.poll()
    assert first == again  # nothing changed: the same signed document
    rel = world.release(2)
    ro = world.rollout(rel.id)
    world.start(ro.id)
    third = dev.poll()
    assert third[3] == first[3] + 1
